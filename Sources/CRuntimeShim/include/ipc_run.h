// The run's policy where it must be C: the layout of the run's shared board (what every
// process of a run publishes), the output discipline, and everything that runs in a
// signal handler (the ends of a run: Ctrl-C, SIGTERM, --timeout, a reported deadlock),
// which must be async-signal-safe: no allocation, no stdio, no locks but the board's.
//
// Swift's IPCRuntime owns the rest of the policy and reads and writes the same board.
#ifndef IPCPLAY_IPC_RUN_H
#define IPCPLAY_IPC_RUN_H

#include "ipc_system.h"
#include "ipc_layouts.h"

// MARK: - The gate

/// Nonzero while some hook watches the gate (tracing, jitter, a controlled scheduler):
/// the C fast paths of the bindings stand aside then, and every call goes through Swift.
extern int ipc_gate_hooked;
static inline void ipc_gate_set_hooked(int hooked) { ipc_gate_hooked = hooked; }

// MARK: - The run report ("key: value" lines for `ipcplay test` and `explore`)

// The keys of the run report. Swift's `RunReport` reads and writes the same keys; the
// handlers below write the lines that a run ended by a signal leaves.
#define IPC_REPORT_OUTCOME "outcome"
#define IPC_REPORT_BLOCKED "blocked"
#define IPC_REPORT_BLOCKED_PID "blocked-pid"
#define IPC_REPORT_BLOCKED_STATE "blocked-state"
#define IPC_REPORT_BLOCKED_CALL "blocked-call"
#define IPC_REPORT_BLOCKED_OBJECT "blocked-object"
#define IPC_REPORT_BLOCKED_AT "blocked-at"
#define IPC_REPORT_BLOCKED_WAITED "blocked-waited-ns"
#define IPC_REPORT_BLOCKED_HOLDER "blocked-holder"
#define IPC_REPORT_OUTCOME_TIMEOUT "timeout"
#define IPC_REPORT_OUTCOME_INTERRUPTED "interrupted"

// MARK: - The run's status board

#define IPC_PROCESS_SLOTS 1024
#define IPC_SOCKET_SLOTS 256
#define IPC_CALL_CAP 32
#define IPC_WHERE_CAP 160  // "f.lua:16 (from f.lua:42)" with paths
#define IPC_HOLDERS_CAP 8

/// Who holds what a blocked process waits for, as it published it when it blocked.
enum {
    IPC_AWAITED_UNKNOWN = 0,    // nobody can be named (a queue, an event, a semaphore)
    IPC_AWAITED_PROCESSES = 1,  // the processes in `holders` (a lock's owner, a joined child)
    IPC_AWAITED_WRITE_END = 2,  // whoever still has the write end of the pipe `pipe_dev/ino`
};

/// What one process of the run is, and what it is blocked in. Written only by the
/// process itself (and by its parent when the slot is claimed or freed); readers use
/// `seq` (odd while a write is in progress) to get a consistent copy.
typedef struct ipc_process_slot {
    uint32_t state;        // 0 free, 1 running, 2 ended
    uint32_t pid;
    uint32_t ppid;
    uint32_t spawn_index;  // 0 for the main process
    uint32_t seq;
    uint32_t blocked;      // 1 while parked in an IPC call
    int64_t since_ns;      // CLOCK_MONOTONIC when it parked
    int64_t deadline_ns;   // when the park times out, 0 = never
    uint32_t external;     // 1 when an outside program could end the wait (sockets)
    uint32_t holder;       // pid that holds what it waits for (a lock), 0 when unknown
    uint32_t awaited;      // what `holders` mean: IPC_AWAITED_*
    uint32_t holder_count; // pids in `holders` (IPC_AWAITED_PROCESSES)
    uint32_t holders[IPC_HOLDERS_CAP];
    uint64_t pipe_dev;     // the pipe whose write end it waits on (IPC_AWAITED_WRITE_END)
    uint64_t pipe_ino;
    char name[IPC_NAME_CAP];
    char call[IPC_CALL_CAP];
    char object[IPC_NAME_CAP];
    char where[IPC_WHERE_CAP];
} ipc_process_slot;

/// An uncaught error in a child, kept until the process that started it joins it: a
/// test fails when an error is left that nobody looked at.
#define IPC_ERROR_SLOTS 64
typedef struct ipc_error_record {
    uint32_t state;  // 0 free, 1 recorded, 2 seen (joined), 3 being written
    uint32_t pid;
    char name[IPC_NAME_CAP];
    char message[208];
} ipc_error_record;

/// A socket file that the run made, removed on every way out.
typedef struct ipc_socket_slot {
    uint32_t state;  // 0 free, 1 claimed, 2 live
    uint32_t owner;  // pid of the process that bound it
    uint64_t dev, ino;
    char path[108];
} ipc_socket_slot;

typedef struct ipc_run_header {
    uint64_t magic;
    uint32_t host_pid;
    uint32_t group;           // process group of every worker (the supervisor's pid), 0 until made
    uint32_t self_group;      // 1: the host leads the group itself (explore runs: no supervisor)
    uint32_t pad0;
    int64_t start_ns;
    uint64_t progress;        // bumped by every IPC call that can wake another process
    uint32_t spawn_counter;
    uint32_t supervisor_word; // futex the supervisor sleeps on
    uint32_t live;            // processes running (listed, not ended)
    uint32_t parked;          // of them, parked for ever on an object of the run
    uint32_t deadlock_check;  // 1: the supervisor reports deadlocks
    uint32_t object_counter;  // run-wide object ids (1, 2, ...)
    uint32_t slots_used;      // process slots ever claimed: every scan stops there
    uint32_t sockets_used;    // socket slots ever claimed
    uint32_t errors_used;     // error records ever claimed
    uint32_t end_status;      // the status a run ended by a report (SIGUSR2) exits with; 0: 124
    uint32_t name_counters[32];
    ipc_error_record errors[IPC_ERROR_SLOTS];
    ipc_process_slot processes[IPC_PROCESS_SLOTS];
    ipc_socket_slot sockets[IPC_SOCKET_SLOTS];
} ipc_run_header;

// MARK: - The controlled scheduler

// Under `--sched`, `explore`, `replay` and `step`, one process of the run executes at a
// time. Each process has a record here; the process holding the turn decides who makes
// the next step and hands the turn over with a futex wake on that process's own word.

#define IPC_SCHED_PROCESSES 1024
#define IPC_SCHED_STRATEGY 4096

enum {
    IPC_SCHED_NONE = 0,     // no such process (yet)
    IPC_SCHED_READY = 1,    // its pending call can go ahead
    IPC_SCHED_BLOCKED = 2,  // its pending call would wait (until `key` changes, or `deadline`)
    IPC_SCHED_RECHECK = 3,  // blocked, but a step may have changed what it waits for
    IPC_SCHED_ENDED = 4,
    IPC_SCHED_EXITING = 5,  // it made its end step; the kernel has yet to end it (its heir waits)
};

enum {
    IPC_VISIT_RUN = 0,      // go ahead with the pending call
    IPC_VISIT_PROBE = 1,    // check whether the pending call would wait, then hand back
    IPC_VISIT_TIMEOUT = 2,  // the virtual clock reached the deadline: go ahead, timed out
    IPC_VISIT_ANSWER = 3,   // (to the prober) the probed process has answered
    IPC_VISIT_SUCCEED = 4,  // a process made its end step: wait until it is gone, then decide
};

/// One clause of a blocked call's probe (IPCCore's `Probe`): a word of a shared region,
/// named by the region's identity, so that any process mapping it can test it.
typedef struct ipc_sched_probe_clause {
    uint64_t region;      // SharedRegion.identity
    uint64_t offset;      // of the word in the region
    uint64_t mask;
    uint64_t value;
    uint32_t test;        // Probe.Test
    uint32_t wide;        // a 64-bit word (else 32)
} ipc_sched_probe_clause;

typedef struct ipc_sched_process {
    uint32_t word;        // futex: bumped to hand this process the turn
    uint32_t state;
    uint32_t visit;       // why it was handed the turn
    uint32_t pid;
    uint32_t site;        // the pending call (a CallSite id)
    uint32_t object;      // the pending call's object id
    uint32_t key;         // what its wait depends on (an object key; 0: anything)
    uint32_t yielding;    // its last step was an explicit yield (a call with timeout 0
                          // that found nothing): PCT lowers it
    int64_t deadline;     // blocked: when its wait times out (virtual ns), -1: never
    uint32_t blocking;    // its pending call can wait (a probe tells whether it would)
    uint32_t in_core;     // it waits inside a call it began (not at the gate)
    uint32_t child_died;  // set by its SIGCHLD handler: one of its children exited
    uint32_t steps_made;  // steps it made (its kill rows aside): where a kill comes in it
    uint32_t has_probe;   // its wait's readiness is `probe` (else only a visit tells)
    uint32_t probe_clauses;  // 0: it never becomes ready (only its deadline ends it)
    ipc_sched_probe_clause probe[2];
    char name[IPC_NAME_CAP];
    char object_name[IPC_NAME_CAP];
    char where[IPC_WHERE_CAP];  // file:line of the pending call
} ipc_sched_process;

typedef struct ipc_sched_header {
    uint64_t magic;
    uint32_t turn;            // the process holding the turn
    uint32_t count;           // processes registered (their spawn indices are 0..<count)
    uint64_t now;             // the virtual clock, in nanoseconds
    uint64_t steps;           // steps made
    uint64_t choices;         // steps at which more than one process was ready
    uint64_t max_steps;
    uint32_t over;            // the run has failed (deadlock, livelock, divergence)
    uint32_t prober;          // the process that asked for a probe, waiting for the answer
    uint64_t handoffs;        // turns handed to another process (visits included)
    uint64_t visits;          // probes asked of the blocked process (no probe to evaluate here)
    uint8_t strategy[IPC_SCHED_STRATEGY];          // the strategy's state (a Swift value)
    uint16_t order[IPC_SCHED_PROCESSES];           // PCT: processes by priority, highest first
    ipc_sched_process processes[IPC_SCHED_PROCESSES];
} ipc_sched_header;

/// One step of a controlled run, as the log that `explore` reads keeps it.
typedef struct ipc_step_record {
    uint32_t process;     // who made it
    uint32_t site;        // the call
    uint32_t object;      // its object id
    uint16_t ready;       // how many processes could have gone
    uint8_t preempted;    // 1: a process that could have gone on was switched away from
    uint8_t timeout;      // bit 0: a wait that timed out (the clock moved); bit 1: it resumes a wait;
                          // bit 2: the process was killed before this call (--kill)
    uint64_t ready_mask;  // which of processes 0..63 could have gone
    uint32_t key;         // the object its wait and its effects depend on (a condition's lock, every socket); 0: its object
    uint32_t reserved;    // keeps the record a multiple of 8 bytes
} ipc_step_record;

/// One object, as the log names it, and how many steps were made on it. (`hash` is
/// unused: a run's interleaving is computed from its steps, see InterleavingClass.)
#define IPC_LOG_OBJECTS 65536
#define IPC_STATE_CAP 64
typedef struct ipc_log_object {
    uint64_t hash;
    uint32_t steps;
    uint32_t kind;        // ObjectKind + 1; 0: not seen
    char name[IPC_NAME_CAP];
    char state[IPC_STATE_CAP];  // interactive runs: its state after its last step ("= 3", "held by P")
} ipc_log_object;

/// A decision to follow (replay, shrinking, step mode): who makes the step at a point
/// where more than one process could.
typedef struct ipc_log_decision {
    int32_t process;      // by spawn index; -1: by name
    uint32_t site;        // the call expected (CallSite id), or UINT32_MAX: any
    uint32_t kill_at;     // not 0: not a choice, a kill of this process before its kill_at-th
                          // step (1-based, --kill)
    char process_name[IPC_NAME_CAP];
    char object_name[IPC_NAME_CAP];
} ipc_log_decision;

/// What a process was about to do, or waiting in, when its run ended.
typedef struct ipc_log_pending {
    uint32_t site;        // CallSite id; UINT32_MAX: nothing (it had ended)
    uint32_t object;
    char object_name[IPC_NAME_CAP];
    char where[IPC_WHERE_CAP];
} ipc_log_pending;

/// One choice offered to the person at `ipcplay step`.
#define IPC_STEP_CHOICES 64
typedef struct ipc_step_choice {
    uint32_t process;
    uint32_t site;
    char name[IPC_NAME_CAP];
    char object[IPC_NAME_CAP];
    char where[IPC_WHERE_CAP];
} ipc_step_choice;

/// What a controlled run leaves for the program that started it (`explore`, `replay`,
/// `step`): its steps, the decisions it was told to follow, its objects. Made by that
/// program before it forks the run; the step records, decisions and locations follow
/// this header.
typedef struct ipc_sched_log {
    uint64_t magic;
    uint64_t capacity;        // step records (and decisions) the log holds
    uint64_t steps;           // steps logged in this run
    uint64_t decisions;       // decisions to follow
    uint64_t next_decision;   // the next one to follow
    uint32_t by_index;        // 1: decisions name processes by index, falling back to no
                              // preemption where one does not fit (shrinking); 0: by name,
                              // and a decision that does not fit is a divergence (replay)
    uint32_t keep_locations;  // 1: log each step's file:line
    uint32_t processes;       // processes the run had
    uint32_t diverged;        // 1: a decision did not fit
    uint64_t choices;         // steps where more than one process was ready
    uint32_t interactive;     // 1: ask the controller at each choice (`ipcplay step`)
    uint32_t random_rest;     // 1: the person said "random for the rest"
    uint32_t left_pct;        // PCT's conditions did not hold for the whole run: bit 0, a
                              // process was lowered at an explicit yield; bit 1, the run
                              // passed the fair bound and went on with random choices
    // The conversation with `ipcplay step` (interactive runs).
    uint32_t request;         // futex: bumped by the deciding process to ask
    uint32_t answer;          // futex: bumped by the controller when it has answered
    int32_t choice;           // the process chosen, or -1: random for the rest
    uint32_t choice_count;
    uint32_t highest_object;  // the highest object id whose record the last prepare cleared
    int32_t request_fd;       // a pipe's write end: a byte tells the controller to look
    ipc_step_choice choices_offered[IPC_STEP_CHOICES];
    char message[1024];       // a divergence, described
    char process_names[IPC_SCHED_PROCESSES][IPC_NAME_CAP];
    ipc_log_pending pending[IPC_SCHED_PROCESSES];  // when the run failed
    ipc_log_object objects[IPC_LOG_OBJECTS];
} ipc_sched_log;

/// What process `i` was about to do when its run failed.
static inline ipc_log_pending *ipc_sched_log_pending(ipc_sched_log *log, int i) { return &log->pending[i]; }

/// The log's object records (Swift does not import an array this large as a field).
static inline ipc_log_object *ipc_sched_log_objects(ipc_sched_log *log) { return log->objects; }
/// The name of process `i` of the run (its spawn index).
static inline char *ipc_sched_log_process_name(ipc_sched_log *log, int i) { return log->process_names[i]; }

// MARK: - Output discipline

/// Replaces stdout and stderr with line-buffered streams that write each flushed block
/// with one write(2) when it fits PIPE_BUF, and under `lock` otherwise, so that lines
/// from many processes never splice.
int ipc_install_line_streams(ipc_robust_lock *lock);
/// fflush(NULL).
void ipc_flush_all(void);
/// Reopens stdin on /dev/null (children do not share the terminal's input).
void ipc_detach_stdin(void);

// MARK: - The supervisor

/// In the supervisor: when the host (`host`) dies, kill the whole process group. Also
/// ignores SIGINT and SIGHUP, which the terminal sends to the whole foreground group.
void ipc_supervisor_arm(pid_t host);

// MARK: - The ends of a run (async-signal-safe)

/// Arms the host's handlers for SIGINT, SIGTERM and SIGHUP: they kill the worker group,
/// remove the run's socket files, reap, and _exit(128+signal). SIGPIPE is ignored.
void ipc_shutdown_install(ipc_run_header *run);
/// Kills the worker group (if any), removes the run's socket files, and reaps every child
/// (waiting up to `grace_ms` before SIGKILL). Async-signal-safe.
void ipc_teardown(int grace_ms);
/// Arms --timeout: after `seconds`, report what every process of the run is blocked in
/// (to stderr, and to the report descriptor if one is set), end them all, _exit(124).
void ipc_timeout_arm(double seconds);
/// The trace file's descriptor: every way out of the host closes its JSON array.
void ipc_trace_set_fd(int fd);
/// Closes the trace's JSON array (once), after cutting out what processes killed in the
/// middle of a write left. Async-signal-safe.
void ipc_trace_close(void);
/// Cuts out of a trace file (not O_APPEND) the partial lines of interrupted writes: the
/// number cut, or -1 with errno. Async-signal-safe.
int ipc_trace_cut_fragments(int fd);
/// A descriptor that also receives the timeout report, as run-report lines.
void ipc_set_report_fd(int fd);
/// In the host: SIGUSR2 (sent when a deadlock has been reported) ends the run with
/// status 124.
void ipc_deadlock_exit_install(void);
/// Writes the report of every live process of the run (what it is blocked in) to `fd`,
/// each line starting with `prefix`. Async-signal-safe.
void ipc_report_processes(ipc_run_header *run, int fd, const char *prefix);
/// What every live process is blocked in as report fields (`blocked: NAME`, then
/// `blocked-pid:`, `blocked-call:`, ...: see RunReport.swift), for the report descriptor.
/// Async-signal-safe.
void ipc_report_entries(ipc_run_header *run, int fd);
/// Removes the socket file of slot `i` if it is still the socket that was made there.
void ipc_remove_socket_slot(ipc_run_header *run, int i);

// MARK: - Cancelling a command that starts runs (test, explore, replay, step)

/// Arms SIGINT, SIGTERM and SIGHUP whatever their disposition was at start (an inherited
/// SIG_IGN included) and unblocks them. The first signal is recorded
/// (`ipc_cancel_signal`) and ends the runs at once: with `graceful`, SIGTERM to each
/// direct child (a run's host then ends its run cleanly; the caller ends what is left
/// with `ipc_end_descendants`); else SIGKILL to every descendant and every group one of
/// them leads. A second signal kills every descendant and _exits with 128 + the first.
void ipc_cancel_install(int graceful);
/// The signal that cancelled the command, or 0.
int ipc_cancel_signal(void);
/// Sends `sig` to every descendant of this process, and to every group one of them
/// leads (so a process that has left the tree, a double fork, goes too while its group
/// lives). Returns how many descendants there were. Async-signal-safe.
int ipc_signal_descendants(int sig);
/// Kills and reaps every descendant (with PR_SET_CHILD_SUBREAPER set, orphans come back
/// here to be reaped), for at most about `budget_ms`; 1 when none is left.
int ipc_end_descendants(int budget_ms);

// MARK: - Process titles

/// Makes `title` what `ps` shows for this process (written over the area of its
/// arguments, cut to fit it) and `short_name` its name for `top` (PR_SET_NAME, 15 bytes).
void ipc_set_process_title(const char *title, const char *short_name);

#endif
