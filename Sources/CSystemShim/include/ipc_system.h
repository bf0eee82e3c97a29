// The few system facilities Swift cannot call directly (variadic functions such as
// prctl and fcntl, the futex syscall, cmsg macros, C11 atomics on shared words) and the
// layouts of the structures that live in shared memory.
#ifndef IPCPLAY_IPC_SYSTEM_H
#define IPCPLAY_IPC_SYSTEM_H

#include <stdint.h>
#include <stddef.h>
#include <pthread.h>
#include <time.h>
#include <sys/types.h>

// MARK: - Futex (futex(2), process-shared)

/// Waits while `*word == expected`, until `deadline` on CLOCK_MONOTONIC (NULL: forever).
/// Returns 0 when woken (or spuriously), or -errno: -EAGAIN (the word had changed),
/// -ETIMEDOUT, -EINTR.
int ipc_futex_wait(uint32_t *word, uint32_t expected, const struct timespec *deadline);
/// Wakes at most `count` waiters; returns how many were woken or -errno.
int ipc_futex_wake(uint32_t *word, int count);

// MARK: - Atomics on shared words (C11 semantics, sequentially consistent)

static inline uint32_t ipc_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void ipc_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t ipc_add32(uint32_t *p, uint32_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t ipc_sub32(uint32_t *p, uint32_t v) { return __atomic_sub_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline int ipc_cas32(uint32_t *p, uint32_t *expected, uint32_t desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint64_t ipc_load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void ipc_store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t ipc_add64(uint64_t *p, uint64_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline int ipc_cas64(uint64_t *p, uint64_t *expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint8_t ipc_load8(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void ipc_store8(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int ipc_cas8(uint8_t *p, uint8_t *expected, uint8_t desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint16_t ipc_load16(const uint16_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void ipc_store16(uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int ipc_cas16(uint16_t *p, uint16_t *expected, uint16_t desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline void ipc_pause(void) { __builtin_ia32_pause(); }

/// Loads, stores and compare-and-swaps an element of 1, 2, 4 or 8 bytes, so that shared
/// values are never read or written torn.
static inline uint64_t ipc_load_sized(const void *p, int size) {
    switch (size) {
    case 1: return __atomic_load_n((const uint8_t *)p, __ATOMIC_SEQ_CST);
    case 2: return __atomic_load_n((const uint16_t *)p, __ATOMIC_SEQ_CST);
    case 4: return __atomic_load_n((const uint32_t *)p, __ATOMIC_SEQ_CST);
    default: return __atomic_load_n((const uint64_t *)p, __ATOMIC_SEQ_CST);
    }
}
static inline void ipc_store_sized(void *p, int size, uint64_t v) {
    switch (size) {
    case 1: __atomic_store_n((uint8_t *)p, (uint8_t)v, __ATOMIC_SEQ_CST); break;
    case 2: __atomic_store_n((uint16_t *)p, (uint16_t)v, __ATOMIC_SEQ_CST); break;
    case 4: __atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_SEQ_CST); break;
    default: __atomic_store_n((uint64_t *)p, v, __ATOMIC_SEQ_CST); break;
    }
}
/// Returns 1 and stores `desired` when the element equals *expected; otherwise 0 and the
/// current bits in *expected.
static inline int ipc_cas_sized(void *p, int size, uint64_t *expected, uint64_t desired) {
    switch (size) {
    case 1: { uint8_t e = (uint8_t)*expected; int r = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return r; }
    case 2: { uint16_t e = (uint16_t)*expected; int r = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return r; }
    case 4: { uint32_t e = (uint32_t)*expected; int r = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); *expected = e; return r; }
    default: return __atomic_compare_exchange_n((uint64_t *)p, expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}
/// Keeps the compiler from moving memory accesses across this point. A process can be
/// killed between any two instructions; journaled updates rely on their order.
static inline void ipc_compiler_barrier(void) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

/// CRC-32C (Castagnoli) of `len` bytes, continuing from `crc` (0 to start); the SSE4.2
/// instruction when the CPU has it, a table otherwise.
uint32_t ipc_crc32c(uint32_t crc, const void *data, size_t len);

// MARK: - Robust, process-shared mutexes

/// A pthread mutex that lives in shared memory, is robust (the next locker learns of a
/// holder that died) and records its holder's pid (for warnings and re-entrancy).
typedef struct ipc_robust_lock {
    pthread_mutex_t mutex;
    uint32_t holder;  // pid of the holder, 0 when free; written by the holder
    uint32_t depth;   // re-entrant depth (rlock); written by the holder
} ipc_robust_lock;

/// Initialises `lock` as PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST; 0 or an errno.
int ipc_robust_lock_init(ipc_robust_lock *lock);
/// pthread_mutex_clocklock on CLOCK_MONOTONIC (deadline NULL: pthread_mutex_lock).
/// Returns 0, EOWNERDEAD (acquired; the state must be repaired and made consistent),
/// ETIMEDOUT, ENOTRECOVERABLE or EDEADLK.
int ipc_robust_lock_acquire(ipc_robust_lock *lock, const struct timespec *deadline);
/// pthread_mutex_trylock: 0, EBUSY, EOWNERDEAD.
int ipc_robust_lock_try(ipc_robust_lock *lock);
int ipc_robust_lock_release(ipc_robust_lock *lock);
/// True when the mutex looks free (a plain read of glibc's lock word, for spinning
/// before a trylock without bouncing the cache line).
static inline int ipc_robust_lock_looks_free(ipc_robust_lock *lock) {
    return __atomic_load_n(&lock->mutex.__data.__lock, __ATOMIC_RELAXED) == 0;
}
int ipc_robust_lock_consistent(ipc_robust_lock *lock);

// MARK: - Shared-memory layouts

#define IPC_NAME_CAP 48

/// A queue: a byte ring of frames in the memory that follows this header.
typedef struct ipc_queue_journal {
    uint32_t kind;  // 0: nothing in flight; otherwise the saved fields are restored
    uint32_t stream_writer, stream_reader, skipping;
    uint64_t head, tail, used, items, unfinished;
} ipc_queue_journal;

typedef struct ipc_queue_header {
    uint64_t magic;
    ipc_robust_lock state_lock;  // protects every field below
    ipc_robust_lock put_lock;    // held by a producer for a whole streamed item
    ipc_robust_lock get_lock;    // held by a consumer for a whole streamed item
    uint64_t capacity;           // bytes of ring after the header
    uint64_t max_frame;          // payload bytes of the largest frame
    uint64_t head, tail, used;   // ring positions; used counts wrap padding too
    uint64_t items;              // items put and not yet taken (their first frame)
    uint64_t maxsize;            // item limit, 0 = none
    uint64_t unfinished;         // joinable: items put and not yet marked done
    uint64_t high_water;         // highest ring offset written since the last trim
    uint32_t stream_writer;      // pid of the producer in the middle of a streamed item
    uint32_t stream_reader;      // pid of the consumer in the middle of a streamed item
    uint32_t skipping;           // a consumer died half way: drop frames to the item's end
    uint32_t data_seq;           // futex: bumped when an item arrives
    uint32_t space_seq;          // futex: bumped when room is made
    uint32_t join_seq;           // futex: bumped when unfinished reaches 0
    uint32_t readers_waiting, writers_waiting, joiners_waiting, selectors;
    ipc_queue_journal journal;
    char name[IPC_NAME_CAP];
} ipc_queue_header;

/// A semaphore: a futex word and a count of sleepers.
typedef struct ipc_semaphore_header {
    uint64_t magic;
    uint32_t value;    // futex word
    uint32_t waiters;  // sleepers (a hint: a killed sleeper leaves it high, costing a wake)
    int64_t bound;     // bounded semaphore's maximum, or -1
    char name[IPC_NAME_CAP];
} ipc_semaphore_header;

/// A lock or rlock.
typedef struct ipc_lock_header {
    uint64_t magic;
    ipc_robust_lock lock;
    uint32_t recursive;
    uint32_t pad;
    char name[IPC_NAME_CAP];
} ipc_lock_header;

/// An event.
typedef struct ipc_event_header {
    uint64_t magic;
    uint32_t flag;     // futex word: 0 clear, 1 set
    uint32_t waiters;
    char name[IPC_NAME_CAP];
} ipc_event_header;

/// A condition's waiters, each parked on its own word so that notify(n) wakes exactly n.
#define IPC_CONDITION_SLOTS 256
typedef struct ipc_condition_slot {
    uint64_t ticket;  // arrival order; 0 = free
    uint32_t pid;
    uint32_t word;    // futex: 0 waiting, 1 notified
} ipc_condition_slot;

typedef struct ipc_condition_header {
    uint64_t magic;
    uint64_t next_ticket;
    char name[IPC_NAME_CAP];
    ipc_condition_slot slots[IPC_CONDITION_SLOTS];
} ipc_condition_header;

/// A barrier.
typedef struct ipc_barrier_header {
    uint64_t magic;
    ipc_robust_lock lock;
    uint32_t parties;
    uint32_t count;       // arrived in this generation
    uint32_t generation;  // futex: bumped when the barrier trips, breaks or resets
    uint32_t broken;      // 1 until reset
    uint32_t broken_generation;  // the generation whose waiters were released broken
    uint32_t pad;
    char name[IPC_NAME_CAP];
} ipc_barrier_header;

/// A shared value or array: its lock, then `count` elements of `item_size` bytes. A single
/// value lives in `inline_value`, in the lock's own cache line, so that a locked update
/// moves one line between processes, not two.
typedef struct ipc_scalar_header {
    uint64_t magic;
    ipc_robust_lock lock;
    uint64_t inline_value;
    uint64_t count;
    uint32_t item_size;
    uint8_t typecode;
    uint8_t pad[3];
    char name[IPC_NAME_CAP];
} ipc_scalar_header;

/// Bytes read from a pipe and not yet consumed: receivers read ahead into it, under the
/// direction's receive lock, so that one read(2) serves many messages, and so that a
/// receiver that exits leaves what it read for the next one.
///
/// The unconsumed bytes are half[active][start..<end]; `state` packs (active, start, end)
/// in one word, so that every change (consume, read more, compact into the other half
/// and switch) is a single store, and a receiver killed at any instant leaves a consistent
/// inbox. Frames carry sequence numbers (reserved under the send lock, so they rise in
/// pipe order): a receiver killed between its read(2) and the store that records it
/// leaves fresh frames past `end`, which the next receiver tells from stale bytes by
/// their numbers, above `consumed` and above every frame before `end`.
#define IPC_INBOX_HALF 16384
typedef struct ipc_channel_inbox {
    // Written by senders and watched by spinning receivers, so on a cache line of their
    // own: a send then does not take the receivers' line (nor the bytes) from their CPU.
    // (Explicit padding, not _Alignas: Swift does not import over-aligned fields.)
    uint32_t written;   // frames written so far: receivers spin on it
    uint32_t sequence;  // the last sequence number a sender reserved
    uint8_t senders_line_pad[56];
    // Written by receivers.
    uint64_t state;     // active << 63 | start << 32 | end
    uint32_t consumed;  // the sequence number of the last frame consumed
    uint32_t pad;
    uint8_t bytes[2 * IPC_INBOX_HALF];
    uint8_t tail_pad[48];
} ipc_channel_inbox;
_Static_assert(offsetof(ipc_channel_inbox, state) == 64, "senders' line");
_Static_assert(offsetof(ipc_channel_inbox, bytes) == 80, "Connection.inboxBytesOffset");
_Static_assert(sizeof(ipc_channel_inbox) % 64 == 0, "inboxes on line boundaries");

/// A Connection pair's shared state: per direction a send lock, a receive lock and an
/// inbox.
typedef struct ipc_channel_header {
    uint64_t magic;
    uint64_t salt;  // frame check seed
    ipc_robust_lock send_lock[2];
    ipc_robust_lock recv_lock[2];
    char name[IPC_NAME_CAP];
    ipc_channel_inbox inbox[2];
} ipc_channel_header;
_Static_assert(offsetof(ipc_channel_header, inbox) % 64 == 0, "inboxes on line boundaries");

// MARK: - The run's status board

#define IPC_PROCESS_SLOTS 1024
#define IPC_SOCKET_SLOTS 256
#define IPC_CALL_CAP 32
#define IPC_WHERE_CAP 96

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
    uint32_t pad;
    char name[IPC_NAME_CAP];
    char call[IPC_CALL_CAP];
    char object[IPC_NAME_CAP];
    char where[IPC_WHERE_CAP];
} ipc_process_slot;

/// An uncaught error in a child, kept until the process that started it joins it: a
/// test fails when an error is left that nobody looked at.
#define IPC_ERROR_SLOTS 64
typedef struct ipc_error_record {
    uint32_t state;  // 0 free, 1 recorded, 2 seen (joined)
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
    int64_t start_ns;
    ipc_robust_lock output_lock;  // serialises writes longer than PIPE_BUF
    uint64_t progress;        // bumped by every IPC call that can wake another process
    uint32_t spawn_counter;
    uint32_t supervisor_word; // futex the supervisor sleeps on
    uint32_t live;            // processes running (listed, not ended)
    uint32_t parked;          // of them, parked for ever on an object of the run
    uint32_t deadlock_check;  // 1: the supervisor reports deadlocks
    uint32_t pad2;
    uint32_t name_counters[32];
    ipc_error_record errors[IPC_ERROR_SLOTS];
    ipc_process_slot processes[IPC_PROCESS_SLOTS];
    ipc_socket_slot sockets[IPC_SOCKET_SLOTS];
} ipc_run_header;

// MARK: - Processes

int ipc_pidfd_open(pid_t pid);
/// prctl(PR_SET_CHILD_SUBREAPER, 1).
int ipc_set_child_subreaper(void);
/// prctl(PR_SET_PDEATHSIG, sig).
int ipc_set_parent_death_signal(int sig);
/// In the supervisor: when the host (`host`) dies, kill the whole process group. Also
/// ignores SIGINT, SIGHUP and SIGTERM-free job control signals the terminal may send.
void ipc_supervisor_arm(pid_t host);
/// A no-op SIGCHLD handler (SA_RESTART): a child's exit interrupts the calls that are
/// never restarted (poll, nanosleep, futex waits with a deadline), so every blocking call
/// of the runtime is written to resume after EINTR with the time it has left.
void ipc_install_sigchld_handler(void);
/// Restores every signal's default action and unblocks all signals (for a new child),
/// keeping SIGPIPE ignored.
void ipc_reset_signals(void);
/// sigprocmask(SIG_BLOCK, all): from before a fork until the new child is in the run's
/// process group (the parent's setpgid), so that no handler ending the run (timeout,
/// Ctrl-C) runs while a child it would miss exists. The mask is saved for
/// `ipc_unblock_signals_after_fork`; the child resets its own (`ipc_reset_signals`).
void ipc_block_signals_for_fork(void);
/// Restores the mask saved by `ipc_block_signals_for_fork`.
void ipc_unblock_signals_after_fork(void);

// MARK: - Descriptors

int ipc_set_cloexec(int fd, int on);
int ipc_set_nonblocking(int fd, int on);
/// read(2) on a non-blocking descriptor: bytes read, 0 at end of stream, or -errno
/// (-EAGAIN when nothing is ready).
ssize_t ipc_read_nowait(int fd, void *buf, size_t n);
/// Writes two pieces as one write(2) (copied together when small: a single segment is
/// the kernel's cheaper path) or one writev(2): bytes written or -errno (-EAGAIN when a
/// non-blocking pipe is full).
ssize_t ipc_write2(int fd, const void *a, size_t alen, const void *b, size_t blen);
/// memfd_create(name, MFD_CLOEXEC) sized to `size` bytes, or -errno.
int ipc_memfd(const char *name, size_t size);
/// mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0), or NULL.
void *ipc_map_fd(int fd, size_t size);
/// The size of the file behind `fd` (fstat), or -errno.
long long ipc_fd_size(int fd);
/// socket(AF_UNIX, type|SOCK_CLOEXEC, 0), or -errno. type: SOCK_STREAM or SOCK_DGRAM.
int ipc_unix_socket(int dgram);
/// socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC), 0 or -errno.
int ipc_unix_socketpair(int fds[2]);
/// accept4(fd, NULL, NULL, SOCK_CLOEXEC), or -errno.
int ipc_accept(int fd);
/// Sets SO_SNDTIMEO (0: none), used to bound a connect that waits for a full backlog.
int ipc_set_send_timeout(int fd, long long nanoseconds);
/// send(fd, buf, len, MSG_NOSIGNAL | (nowait ? MSG_DONTWAIT : 0)), bytes or -errno.
ssize_t ipc_send(int fd, const void *buf, size_t len, int nowait);
/// recv(fd, buf, len, nowait ? MSG_DONTWAIT : 0), bytes or -errno.
ssize_t ipc_recv(int fd, void *buf, size_t len, int nowait);
/// The length of the next datagram (recv with MSG_PEEK|MSG_TRUNC|MSG_DONTWAIT), or -errno.
ssize_t ipc_next_datagram_size(int fd);
/// The kind of a descriptor: 1 socket, 2 fifo/pipe, 3 regular file, 0 other, -errno.
int ipc_fd_kind(int fd);
/// eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK), or -errno.
int ipc_eventfd(void);
/// pipe2(fds, O_CLOEXEC|O_NONBLOCK), 0 or -errno.
int ipc_pipe(int fds[2]);
/// Closes every descriptor >= lowfd (close_range).
void ipc_close_from(int lowfd);

// MARK: - Unix domain sockets

/// Binds `fd` to `path`; -ENAMETOOLONG when it does not fit sun_path.
int ipc_unix_bind(int fd, const char *path);
int ipc_unix_connect(int fd, const char *path);
/// sendto/recvfrom on a datagram socket; the sender path is written into `from`.
ssize_t ipc_unix_sendto(int fd, const void *buf, size_t len, const char *path);
ssize_t ipc_unix_recvfrom(int fd, void *buf, size_t len, char *from, size_t fromcap);
/// The path a socket is bound to ("" for unnamed).
int ipc_unix_localpath(int fd, char *out, size_t cap);
/// sendmsg with SCM_RIGHTS: `nfds` descriptors and `len` bytes (at least one).
ssize_t ipc_send_fds(int sock, const int *fds, int nfds, const void *buf, size_t len);
/// recvmsg accepting up to `maxfds` descriptors (close-on-exec); *nfds gets their count.
ssize_t ipc_recv_fds(int sock, int *fds, int maxfds, int *nfds, void *buf, size_t len);
/// The size of sun_path.
size_t ipc_sun_path_cap(void);

// MARK: - Output discipline

/// Replaces stdout and stderr with line-buffered streams that write each flushed block
/// with one write(2) when it fits PIPE_BUF, and under `lock` otherwise, so that lines
/// from many processes never splice.
int ipc_install_line_streams(ipc_robust_lock *lock);
/// fflush(NULL).
void ipc_flush_all(void);
/// Reopens stdin on /dev/null (children do not share the terminal's input).
void ipc_detach_stdin(void);

// MARK: - Shutdown (async-signal-safe)

/// Arms the host's handlers for SIGINT, SIGTERM and SIGHUP: they kill the worker group,
/// remove the run's socket files, reap, and _exit(128+signal). SIGPIPE is ignored.
void ipc_shutdown_install(ipc_run_header *run);
/// The same teardown, callable from a normal context; ends the process with `code`.
void ipc_shutdown_now(int code, const char *message);
/// Kills the worker group (if any), removes the run's socket files, and reaps every child
/// (waiting up to `grace_ms` before SIGKILL). Returns nothing; async-signal-safe.
void ipc_teardown(int grace_ms);
/// Arms --timeout: after `seconds`, report what every process of the run is blocked in
/// (to stderr, and to the report descriptor if one is set), end them all, _exit(124).
void ipc_timeout_arm(double seconds);
/// The trace file's descriptor: every way out of the host closes its JSON array.
void ipc_trace_set_fd(int fd);
/// Closes the trace's JSON array (once). Async-signal-safe.
void ipc_trace_close(void);
/// A descriptor that also receives the timeout report, as "blocked: ..." lines.
void ipc_set_report_fd(int fd);
/// In the host: SIGUSR2 (sent by the supervisor after it reported a deadlock) ends the
/// run with status 124.
void ipc_deadlock_exit_install(void);
/// Writes the report of every live process of the run (what it is blocked in) to `fd`,
/// each line starting with `prefix`. Async-signal-safe.
void ipc_report_processes(ipc_run_header *run, int fd, const char *prefix);
/// Removes the socket file of slot `i` if it is still the socket that was made there.
void ipc_remove_socket_slot(ipc_run_header *run, int i);

#endif
