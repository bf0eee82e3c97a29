#define _GNU_SOURCE
#include "ipc_run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

int ipc_gate_hooked;

/// `sig` to `handler` (or SIG_IGN) with `flags`; no other signal blocked while it runs.
static void set_handler(int sig, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

// MARK: - The supervisor

static void on_host_death(int sig) {
    (void)sig;
    kill(0, SIGKILL);  // the whole group, this process included
}

void ipc_supervisor_arm(pid_t host) {
    ipc_reset_signals();
    set_handler(SIGUSR1, on_host_death, 0);
    set_handler(SIGINT, SIG_IGN, 0);
    set_handler(SIGHUP, SIG_IGN, 0);
    prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
    if (getppid() != host) kill(0, SIGKILL);  // the host died before we armed
}

// MARK: - Output discipline

static ipc_robust_lock *g_output_lock;

static void write_all(int fd, const char *buf, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, buf, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // EPIPE and friends: the output is gone; drop it
        }
        buf += n;
        size -= (size_t)n;
    }
}

static ssize_t line_stream_write(void *cookie, const char *buf, size_t size) {
    int fd = (int)(intptr_t)cookie;
    ipc_robust_lock *lock = g_output_lock;
    int locked = 0;
    if (lock != NULL) {
        int r = pthread_mutex_lock(&lock->mutex);
        if (r == EOWNERDEAD) { pthread_mutex_consistent(&lock->mutex); r = 0; }
        locked = (r == 0);
    }
    write_all(fd, buf, size);
    if (locked) pthread_mutex_unlock(&lock->mutex);
    return (ssize_t)size;
}

static FILE *line_stream(int fd, size_t buffer) {
    cookie_io_functions_t io = {NULL, line_stream_write, NULL, NULL};
    FILE *f = fopencookie((void *)(intptr_t)fd, "w", io);
    if (f != NULL) setvbuf(f, NULL, _IOLBF, buffer);
    return f;
}

int ipc_install_line_streams(ipc_robust_lock *lock) {
    g_output_lock = lock;
    fflush(stdout);
    fflush(stderr);
    FILE *out = line_stream(1, 1 << 16);
    FILE *err = line_stream(2, 1 << 16);
    if (out == NULL || err == NULL) return -1;
    // glibc documents stdin, stdout and stderr as ordinary variables that may be set.
    stdout = out;
    stderr = err;
    return 0;
}

void ipc_flush_all(void) { fflush(NULL); }

void ipc_detach_stdin(void) {
    if (freopen("/dev/null", "r", stdin) == NULL) close(0);
}

// MARK: - Shutdown

static ipc_run_header *g_run;
static volatile sig_atomic_t g_shutting_down;
static int g_report_fd = -1;

static size_t cstrlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

void ipc_remove_socket_slot(ipc_run_header *run, int i) {
    ipc_socket_slot *slot = &run->sockets[i];
    if (ipc_load32(&slot->state) != 2) return;
    struct stat st;
    // lstat: never follow a symlink; remove only the very socket this run bound.
    if (lstat(slot->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        (uint64_t)st.st_dev == slot->dev && (uint64_t)st.st_ino == slot->ino) {
        unlink(slot->path);
    }
    ipc_store32(&slot->state, 0);
}

/// Signals every process of the run but this one: its group, or, when this process
/// leads the group itself, every process the board lists (none of them reaped yet, so no
/// pid has been reused). Returns 1 when some process was there to signal.
static int signal_run(ipc_run_header *run, int sig) {
    uint32_t group = ipc_load32(&run->group);
    if (group == 0) return 0;
    if (!ipc_load32(&run->self_group)) return kill(-(pid_t)group, sig) == 0;
    int found = 0;
    pid_t me = getpid();
    for (int i = 0, n = (int)ipc_load32(&run->slots_used); i < n && i < IPC_PROCESS_SLOTS; i++) {
        ipc_process_slot *s = &run->processes[i];
        uint32_t state = ipc_load32(&s->state);
        pid_t pid = (pid_t)ipc_load32(&s->pid);
        if ((state == 1 || state == 2) && pid > 0 && pid != me && kill(pid, sig) == 0) found = 1;
    }
    return found;
}

/// Waits up to `ms` for a child to change state: until SIGCHLD, not for the whole period
/// (SIGCHLD is blocked around the wait, so that one sent meanwhile is not missed).
static void await_child(int ms) {
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    (void)sigtimedwait(&chld, NULL, &ts);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/// Reaps children without blocking for more than about `budget_ms`; returns 1 when none
/// is left. Each round ends the group again: a process that joined it after the last
/// kill (a child between its fork and its setpgid) does not outlive the run.
static int reap_all(ipc_run_header *run, int budget_ms) {
    for (int waited = 0;; waited += 5) {
        signal_run(run, SIGKILL);
        for (;;) {
            pid_t p = waitpid(-1, NULL, WNOHANG);
            if (p > 0) continue;
            if (p < 0 && errno == EINTR) continue;
            if (p < 0) return 1;  // ECHILD: nothing left
            break;                // children remain, none exited yet
        }
        if (waited >= budget_ms) return 0;
        await_child(5);
    }
}

void ipc_teardown(int grace_ms) {
    ipc_run_header *run = g_run;
    if (run == NULL) return;
    if (grace_ms > 0 && signal_run(run, SIGTERM)) {
        // SIGTERM first, so that what can end cleanly does; then wait until the group
        // is empty or the grace period is over.
        for (int waited = 0; waited < grace_ms; waited += 5) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {}
            if (!signal_run(run, 0)) break;
            await_child(5);
        }
    }
    reap_all(run, 2000);
    for (int i = 0, n = (int)ipc_load32(&run->sockets_used); i < n && i < IPC_SOCKET_SLOTS; i++) ipc_remove_socket_slot(run, i);
    if (getpid() == (pid_t)run->host_pid) ipc_trace_close();
}

static void on_shutdown_signal(int sig) {
    int code = 128 + sig;
    if (g_shutting_down) {
        // A second SIGTERM or SIGHUP (`ipcplay test` cancelling asks twice) waits for the
        // first to finish: its report of what each process was doing must be written
        // whole. A second Ctrl-C means no more grace.
        if (sig != SIGINT) return;
        if (g_run != NULL) signal_run(g_run, SIGKILL);
        if (g_run != NULL) for (int i = 0, n = (int)ipc_load32(&g_run->sockets_used); i < n && i < IPC_SOCKET_SLOTS; i++) ipc_remove_socket_slot(g_run, i);
        _exit(code);
    }
    g_shutting_down = 1;
    const char *msg = sig == SIGINT ? "\nipcplay: interrupted; ending every process\n"
                                    : "ipcplay: terminated; ending every process\n";
    (void)!write(2, msg, cstrlen(msg));
    if (g_report_fd >= 0 && g_run != NULL && getpid() == (pid_t)g_run->host_pid) {
        // For `ipcplay test`: what each process was doing when the run was cut short.
        const char *outcome = IPC_REPORT_OUTCOME ": " IPC_REPORT_OUTCOME_INTERRUPTED "\n";
        (void)!write(g_report_fd, outcome, cstrlen(outcome));
        ipc_report_entries(g_run, g_report_fd);
    }
    ipc_teardown(300);
    // What the run's group did not hold: the host's own os.execute children, say. Every
    // orphan of the run was handed to the host (a child subreaper).
    ipc_end_descendants(300);
    _exit(code);
}

// MARK: - Reports (async-signal-safe: no stdio, no allocation)

typedef struct { char buf[1024]; size_t n; } line_t;

static void put_str(line_t *l, const char *s) {
    while (*s && l->n < sizeof l->buf - 1) l->buf[l->n++] = *s++;
}

static void put_field(line_t *l, const char *s, size_t cap) {
    for (size_t i = 0; i < cap && s[i] && l->n < sizeof l->buf - 1; i++) {
        char c = s[i];
        l->buf[l->n++] = (c >= 32 && c < 127) || (unsigned char)c >= 128 ? c : '?';
    }
}

static void put_uint(line_t *l, unsigned long long v) {
    char tmp[24];
    int k = 0;
    do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v && k < 24);
    while (k > 0 && l->n < sizeof l->buf - 1) l->buf[l->n++] = tmp[--k];
}

static void put_seconds(line_t *l, int64_t ns) {
    if (ns < 0) ns = 0;
    put_uint(l, (unsigned long long)(ns / 1000000000));
    put_str(l, ".");
    put_uint(l, (unsigned long long)((ns / 100000000) % 10));
    put_str(l, " s");
}

/// A consistent copy of slot `i` into `copy`; 0 when it holds no live process.
static int copy_live_slot(ipc_run_header *run, int i, ipc_process_slot *copy) {
    ipc_process_slot *s = &run->processes[i];
    if (ipc_load32(&s->state) != 1) return 0;
    if (kill((pid_t)s->pid, 0) < 0 && errno == ESRCH) return 0;
    for (int tries = 0; tries < 100; tries++) {
        uint32_t before = ipc_load32(&s->seq);
        memcpy(copy, s, sizeof *copy);
        if (!(before & 1) && ipc_load32(&s->seq) == before) break;
    }
    return 1;
}

/// Puts the name of the live process `pid`, if the board lists it; 1 when it did.
static int put_process_name(ipc_run_header *run, uint32_t pid, line_t *l) {
    for (int j = 0, n = (int)ipc_load32(&run->slots_used); j < n && j < IPC_PROCESS_SLOTS; j++) {
        ipc_process_slot *h = &run->processes[j];
        if (ipc_load32(&h->state) == 1 && ipc_load32(&h->pid) == pid) {
            put_field(l, h->name, IPC_NAME_CAP);
            return 1;
        }
    }
    return 0;
}

/// Formats the line of live process `i` into `l`; 0 when slot `i` holds no live process.
static int format_process(ipc_run_header *run, int i, int64_t now, const char *prefix, line_t *l) {
    ipc_process_slot copy;
    if (!copy_live_slot(run, i, &copy)) return 0;
    l->n = 0;
    put_str(l, prefix);
    put_field(l, copy.name, IPC_NAME_CAP);
    put_str(l, " (pid ");
    put_uint(l, copy.pid);
    put_str(l, "): ");
    if (copy.blocked) {
        put_str(l, "blocked in ");
        put_field(l, copy.call, IPC_CALL_CAP);
        if (copy.object[0]) { put_str(l, " on "); put_field(l, copy.object, IPC_NAME_CAP); }
        put_str(l, " for ");
        put_seconds(l, now - copy.since_ns);
        if (copy.where[0]) { put_str(l, ", at "); put_field(l, copy.where, IPC_WHERE_CAP); }
        if (copy.holder != 0) {
            put_str(l, ", held by ");
            if (put_process_name(run, copy.holder, l)) put_str(l, " ");
            put_str(l, "(pid ");
            put_uint(l, copy.holder);
            put_str(l, ")");
        }
    } else {
        put_str(l, "running (not blocked in an IPC call)");
    }
    put_str(l, "\n");
    return 1;
}

void ipc_report_processes(ipc_run_header *run, int fd, const char *prefix) {
    int64_t now = ipc_monotonic_ns();
    line_t l;
    for (int i = 0, n = (int)ipc_load32(&run->slots_used); i < n && i < IPC_PROCESS_SLOTS; i++) {
        if (format_process(run, i, now, prefix, &l)) (void)!write(fd, l.buf, l.n);
    }
}

/// Writes one report field, `key: value`, the value cut to `cap` bytes.
static void put_report_field(int fd, const char *key, const char *value, size_t cap) {
    line_t l = {.n = 0};
    put_str(&l, key);
    put_str(&l, ": ");
    put_field(&l, value, cap);
    put_str(&l, "\n");
    (void)!write(fd, l.buf, l.n);
}

static void put_report_number(int fd, const char *key, unsigned long long v) {
    line_t l = {.n = 0};
    put_str(&l, key);
    put_str(&l, ": ");
    put_uint(&l, v);
    put_str(&l, "\n");
    (void)!write(fd, l.buf, l.n);
}

void ipc_report_entries(ipc_run_header *run, int fd) {
    int64_t now = ipc_monotonic_ns();
    ipc_process_slot copy;
    for (int i = 0, n = (int)ipc_load32(&run->slots_used); i < n && i < IPC_PROCESS_SLOTS; i++) {
        if (!copy_live_slot(run, i, &copy)) continue;
        put_report_field(fd, IPC_REPORT_BLOCKED, copy.name, IPC_NAME_CAP);
        put_report_number(fd, IPC_REPORT_BLOCKED_PID, copy.pid);
        put_report_field(fd, IPC_REPORT_BLOCKED_STATE, copy.blocked ? "blocked in" : "running", 16);
        if (!copy.blocked) continue;
        put_report_field(fd, IPC_REPORT_BLOCKED_CALL, copy.call, IPC_CALL_CAP);
        if (copy.object[0]) put_report_field(fd, IPC_REPORT_BLOCKED_OBJECT, copy.object, IPC_NAME_CAP);
        if (copy.where[0]) put_report_field(fd, IPC_REPORT_BLOCKED_AT, copy.where, IPC_WHERE_CAP);
        put_report_number(fd, IPC_REPORT_BLOCKED_WAITED, (unsigned long long)(now > copy.since_ns ? now - copy.since_ns : 0));
        if (copy.holder != 0) {
            line_t l = {.n = 0};
            put_str(&l, IPC_REPORT_BLOCKED_HOLDER ": ");
            put_uint(&l, copy.holder);
            put_str(&l, " ");
            put_process_name(run, copy.holder, &l);
            put_str(&l, "\n");
            (void)!write(fd, l.buf, l.n);
        }
    }
}

static int g_trace_fd = -1;

void ipc_trace_set_fd(int fd) { g_trace_fd = fd; }

/// Writes out the repair's output buffer at `at` (retrying EINTR and short writes).
static int trace_put(int fd, const char *buf, size_t n, off_t at) {
    while (n > 0) {
        ssize_t w = pwrite(fd, buf, n, at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        buf += w;
        n -= (size_t)w;
        at += w;
    }
    return 0;
}

/// Static, not on the stack: the teardown may run in a signal handler.
static char g_trace_in[1 << 16], g_trace_out[1 << 16];

/// The repair's output: bytes for [flushed, flushed + pending), written back once the
/// first fragment has moved what follows it (`moved`).
typedef struct {
    off_t flushed;
    size_t pending;
    int moved;
} trace_output;

/// Drops the output from `at` on (a fragment starts there).
static void trace_drop_from(trace_output *o, off_t at) {
    if (!o->moved) {
        o->moved = 1;
        o->flushed = at;
        o->pending = 0;
    } else if (at >= o->flushed) {
        o->pending = (size_t)(at - o->flushed);
    } else {
        o->flushed = at;
        o->pending = 0;
    }
}

/// A process SIGKILLed inside the `write` of its batch leaves part of it: the kernel stops
/// copying a write into a file at a page boundary once a fatal signal is pending. That
/// fragment, a line cut short, is then continued by the next batch, or it ends the file.
/// Every event begins `{"ph":"` and no string in the trace holds a bare `"`, so an event
/// beginning anywhere but at a line's start marks a fragment before it. The file is read
/// once; from the first fragment on, each byte kept is written back where it now belongs.
int ipc_trace_cut_fragments(int fd) {
    static const char start[] = "{\"ph\":\"";
    const int start_len = (int)sizeof start - 1;
    off_t read_at = 0, kept = 0, line_start = 0;
    trace_output o = {0, 0, 0};
    int matched = 0, cut = 0;
    char last = '\n';
    for (;;) {
        ssize_t n = pread(fd, g_trace_in, sizeof g_trace_in, read_at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        read_at += n;
        for (ssize_t i = 0; i < n; i++) {
            char c = g_trace_in[i];
            if (o.moved) {
                if (o.pending == sizeof g_trace_out) {
                    if (trace_put(fd, g_trace_out, o.pending, o.flushed) < 0) return -1;
                    o.flushed += (off_t)o.pending;
                    o.pending = 0;
                }
                g_trace_out[o.pending++] = c;
            }
            kept++;
            last = c;
            if (c == '\n') { line_start = kept; matched = 0; continue; }
            matched = c == start[matched] ? matched + 1 : (c == start[0] ? 1 : 0);
            if (matched < start_len) continue;
            matched = 0;
            off_t event = kept - start_len;
            if (event == line_start) continue;
            // A fragment [line_start, event): the event's first bytes move to line_start.
            cut++;
            trace_drop_from(&o, line_start);
            memcpy(g_trace_out + o.pending, start, (size_t)start_len);
            o.pending += (size_t)start_len;
            kept = line_start + start_len;
        }
    }
    if (last != '\n') {  // the file ends inside a fragment: the truncation drops it
        cut++;
        if (o.moved) trace_drop_from(&o, line_start);
        kept = line_start;
    }
    if (o.moved && trace_put(fd, g_trace_out, o.pending, o.flushed) < 0) return -1;
    if (cut > 0) {
        int r;
        do { r = ftruncate(fd, kept); } while (r < 0 && errno == EINTR);
        if (r < 0) return -1;
    }
    return cut;
}

void ipc_trace_close(void) {
    int fd = g_trace_fd;
    if (fd < 0) return;
    g_trace_fd = -1;
    // Every writer is gone now (the teardown has reaped the run). pwrite on an O_APPEND
    // descriptor appends, so the repair runs without it; the closing write appends again.
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_APPEND) == 0) {
        (void)ipc_trace_cut_fragments(fd);
        (void)fcntl(fd, F_SETFL, flags);
    }
    const char *end = "{\"ph\":\"M\",\"name\":\"trace_end\",\"pid\":0,\"tid\":0,\"args\":{}}\n]\n";
    (void)!write(fd, end, cstrlen(end));
}

static double g_timeout_seconds;

void ipc_set_report_fd(int fd) { g_report_fd = fd; }

static void on_timeout(int sig) {
    (void)sig;
    if (g_shutting_down) return;
    g_shutting_down = 1;
    line_t l = {.n = 0};
    put_str(&l, "ipcplay: timeout: the run was still going after ");
    put_seconds(&l, (int64_t)(g_timeout_seconds * 1e9));
    put_str(&l, "; every process:\n");
    (void)!write(2, l.buf, l.n);
    if (g_run != NULL) ipc_report_processes(g_run, 2, "  ");
    if (g_report_fd >= 0) {
        const char *outcome = IPC_REPORT_OUTCOME ": " IPC_REPORT_OUTCOME_TIMEOUT "\n";
        (void)!write(g_report_fd, outcome, cstrlen(outcome));
        if (g_run != NULL) ipc_report_entries(g_run, g_report_fd);
    }
    ipc_teardown(0);
    _exit(124);
}

static void on_deadlock_reported(int sig) {
    (void)sig;
    g_shutting_down = 1;
    int status = g_run != NULL && g_run->end_status != 0 ? (int)g_run->end_status : 124;
    ipc_teardown(0);
    _exit(status);
}

void ipc_deadlock_exit_install(void) {
    set_handler(SIGUSR2, on_deadlock_reported, 0);
}

void ipc_timeout_arm(double seconds) {
    g_timeout_seconds = seconds;
    set_handler(SIGALRM, on_timeout, SA_RESTART);
    struct itimerval t;
    memset(&t, 0, sizeof t);
    t.it_value.tv_sec = (time_t)seconds;
    t.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
    if (t.it_value.tv_sec == 0 && t.it_value.tv_usec == 0) t.it_value.tv_usec = 1;
    setitimer(ITIMER_REAL, &t, NULL);
}

/// SIGINT, SIGTERM and SIGHUP to `handler`, re-entrant (SA_NODEFER): a second Ctrl-C
/// re-enters the handler and ends at once.
static void install_end_signals(void (*handler)(int)) {
    set_handler(SIGINT, handler, SA_NODEFER);
    set_handler(SIGTERM, handler, SA_NODEFER);
    set_handler(SIGHUP, handler, SA_NODEFER);
}

void ipc_shutdown_install(ipc_run_header *run) {
    g_run = run;
    // Whoever started us may have left signals blocked (Foundation's Process does);
    // the handlers below must be able to run.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    install_end_signals(on_shutdown_signal);
    set_handler(SIGPIPE, SIG_IGN, 0);
}

// MARK: - Cancelling a command (async-signal-safe: no stdio, no allocation)

/// Appends to `l` the decimal `v` and a NUL (a path being built).
static void put_path(line_t *l, const char *a, long v, const char *b) {
    l->n = 0;
    put_str(l, a);
    if (v >= 0) put_uint(l, (unsigned long long)v);
    put_str(l, b);
    l->buf[l->n] = 0;
}

static int parse_pid(const char *s, size_t n, size_t *i) {
    while (*i < n && (s[*i] < '0' || s[*i] > '9')) (*i)++;
    int v = 0, any = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') { v = v * 10 + (s[*i] - '0'); (*i)++; any = 1; }
    return any ? v : -1;
}

/// The children of `pid` (every thread's: /proc/PID/task/TID/children), up to `cap`.
static int read_children(pid_t pid, pid_t *out, int cap) {
    line_t path;
    put_path(&path, "/proc/", pid, "/task");
    int dir = open(path.buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return 0;
    int count = 0;
    char entries[1024];
    for (;;) {
        long got = syscall(SYS_getdents64, dir, entries, sizeof entries);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (long at = 0; at < got;) {
            // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
            unsigned short reclen;
            memcpy(&reclen, entries + at + 16, sizeof reclen);
            const char *name = entries + at + 19;
            at += reclen;
            if (name[0] < '0' || name[0] > '9') continue;
            size_t k = 0;
            int tid = parse_pid(name, cstrlen(name), &k);
            if (tid <= 0) continue;
            line_t file;
            put_path(&file, "/proc/", pid, "/task/");
            put_uint(&file, (unsigned long long)tid);
            put_str(&file, "/children");
            file.buf[file.n] = 0;
            int fd = open(file.buf, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            char text[2048];
            ssize_t n;
            do { n = read(fd, text, sizeof text); } while (n < 0 && errno == EINTR);
            close(fd);
            for (size_t i = 0; n > 0 && i < (size_t)n && count < cap;) {
                int child = parse_pid(text, (size_t)n, &i);
                if (child > 0) out[count++] = child;
            }
        }
    }
    close(dir);
    return count;
}

/// Signals the descendants of `pid`, deepest first (a parent killed first would hand its
/// children over before they were read), and the groups they lead.
static int signal_tree(pid_t pid, int sig, int depth) {
    pid_t kids[256];
    int n = read_children(pid, kids, 256);
    int count = n;
    for (int i = 0; i < n; i++) {
        if (depth < 32) count += signal_tree(kids[i], sig, depth + 1);
        if (kids[i] != getpgrp()) kill(-kids[i], sig);
        kill(kids[i], sig);
    }
    return count;
}

int ipc_signal_descendants(int sig) { return signal_tree(getpid(), sig, 0); }

int ipc_end_descendants(int budget_ms) {
    for (int waited = 0;; waited += 5) {
        ipc_signal_descendants(SIGKILL);
        for (;;) {
            pid_t p = waitpid(-1, NULL, WNOHANG);
            if (p > 0) continue;
            if (p < 0 && errno == EINTR) continue;
            if (p < 0) return 1;  // ECHILD: nothing left
            break;
        }
        if (waited >= budget_ms) return 0;
        await_child(5);
    }
}

static volatile sig_atomic_t g_cancel_signal;
static int g_cancel_graceful;

static void on_cancel_signal(int sig) {
    int saved = errno;
    if (g_cancel_signal) {
        // A second signal: no more grace.
        ipc_signal_descendants(SIGKILL);
        _exit(128 + g_cancel_signal);
    }
    g_cancel_signal = sig;
    if (g_cancel_graceful) {
        pid_t kids[256];
        int n = read_children(getpid(), kids, 256);
        for (int i = 0; i < n; i++) kill(kids[i], SIGTERM);
    } else {
        ipc_signal_descendants(SIGKILL);
    }
    errno = saved;
}

void ipc_cancel_install(int graceful) {
    g_cancel_graceful = graceful;
    install_end_signals(on_cancel_signal);
    sigset_t these;
    sigemptyset(&these);
    sigaddset(&these, SIGINT);
    sigaddset(&these, SIGTERM);
    sigaddset(&these, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &these, NULL);
}

int ipc_cancel_signal(void) { return g_cancel_signal; }

// MARK: - Process titles

/// The argv strings, contiguous in memory as the kernel laid them out: what `ps` shows.
static char *g_title_area;
static size_t g_title_size;

/// Run by glibc before main, with main's arguments (an .init_array entry gets them).
static void capture_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc <= 0 || argv == NULL || argv[0] == NULL) return;
    char *end = argv[0] + strlen(argv[0]);
    for (int i = 1; i < argc && argv[i] == end + 1; i++) end = argv[i] + strlen(argv[i]);
    g_title_area = argv[0];
    g_title_size = (size_t)(end - argv[0]) + 1;
}

__attribute__((section(".init_array"), used)) static void (*const g_capture_arguments)(int, char **, char **) = capture_arguments;

void ipc_set_process_title(const char *title, const char *short_name) {
    if (g_title_area != NULL && g_title_size > 1) {
        size_t n = strlen(title);
        if (n > g_title_size - 1) n = g_title_size - 1;
        memcpy(g_title_area, title, n);
        memset(g_title_area + n, 0, g_title_size - n);
    }
    char comm[16];
    size_t k = 0;
    for (; short_name[k] && k < sizeof comm - 1; k++) comm[k] = short_name[k];
    comm[k] = 0;
    prctl(PR_SET_NAME, comm, 0, 0, 0);
}
