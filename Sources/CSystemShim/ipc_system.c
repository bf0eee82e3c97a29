#define _GNU_SOURCE
#include "ipc_system.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

// MARK: - Futex

int ipc_futex_wait(uint32_t *word, uint32_t expected, const struct timespec *deadline) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a wait that is
    // interrupted and retried keeps its original end.
    long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline, NULL, FUTEX_BITSET_MATCH_ANY);
    return r == 0 ? 0 : -errno;
}

int ipc_futex_wake(uint32_t *word, int count) {
    long r = syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
    return r >= 0 ? (int)r : -errno;
}

// MARK: - CRC-32C

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
    crc_ready = 1;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hardware(uint32_t crc, const uint8_t *p, size_t len) {
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t ipc_crc32c(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = data;
    crc = ~crc;
#if defined(__x86_64__)
    static int hw = -1;
    if (hw < 0) hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (hw) return ~crc_hardware(crc, p, len);
#endif
    if (!crc_ready) crc_init();
    while (len--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

// MARK: - Robust mutexes

int ipc_robust_lock_init(ipc_robust_lock *lock) {
    pthread_mutexattr_t attr;
    int r = pthread_mutexattr_init(&attr);
    if (r) return r;
    r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!r) r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (!r) r = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    if (!r) r = pthread_mutex_init(&lock->mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    lock->holder = 0;
    lock->depth = 0;
    return r;
}

int ipc_robust_lock_acquire(ipc_robust_lock *lock, const struct timespec *deadline) {
    if (deadline == NULL) return pthread_mutex_lock(&lock->mutex);
    return pthread_mutex_clocklock(&lock->mutex, CLOCK_MONOTONIC, deadline);
}

int ipc_robust_lock_try(ipc_robust_lock *lock) { return pthread_mutex_trylock(&lock->mutex); }
int ipc_robust_lock_release(ipc_robust_lock *lock) { return pthread_mutex_unlock(&lock->mutex); }
int ipc_robust_lock_consistent(ipc_robust_lock *lock) { return pthread_mutex_consistent(&lock->mutex); }

// MARK: - Processes

int ipc_pidfd_open(pid_t pid) {
    long r = syscall(SYS_pidfd_open, pid, 0);
    return r >= 0 ? (int)r : -errno;
}

int ipc_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int ipc_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

static void on_host_death(int sig) {
    (void)sig;
    kill(0, SIGKILL);  // the whole group, this process included
}

void ipc_supervisor_arm(pid_t host) {
    ipc_reset_signals();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_host_death;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
    if (getppid() != host) kill(0, SIGKILL);  // the host died before we armed
}

static void on_child(int sig) { (void)sig; }

void ipc_install_sigchld_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
}

static sigset_t g_mask_before_fork;

void ipc_block_signals_for_fork(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &g_mask_before_fork);
}

void ipc_unblock_signals_after_fork(void) { sigprocmask(SIG_SETMASK, &g_mask_before_fork, NULL); }

void ipc_reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sa.sa_handler = (sig == SIGPIPE) ? SIG_IGN : SIG_DFL;
        sigaction(sig, &sa, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

// MARK: - Descriptors

int ipc_set_cloexec(int fd, int on) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -errno;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

int ipc_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

ssize_t ipc_read_nowait(int fd, void *buf, size_t n) {
    ssize_t r = read(fd, buf, n);
    return r >= 0 ? r : -errno;
}

ssize_t ipc_write2(int fd, const void *a, size_t alen, const void *b, size_t blen) {
    ssize_t r;
    if (blen == 0) {
        r = write(fd, a, alen);
    } else if (alen + blen <= 512) {
        char one[512];
        memcpy(one, a, alen);
        memcpy(one + alen, b, blen);
        r = write(fd, one, alen + blen);
    } else {
        struct iovec v[2] = {{(void *)a, alen}, {(void *)b, blen}};
        r = writev(fd, v, 2);
    }
    return r >= 0 ? r : -errno;
}

int ipc_memfd(const char *name, size_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (ftruncate(fd, (off_t)size) < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

void *ipc_map_fd(int fd, size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

long long ipc_fd_size(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    return (long long)st.st_size;
}

int ipc_unix_socket(int dgram) {
    int fd = socket(AF_UNIX, (dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

int ipc_unix_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : -errno;
}

int ipc_accept(int fd) {
    // Non-blocking even on a blocking socket: several processes may accept on one
    // server, and the one that loses the race must go back to poll, not block.
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) == 0) return -EAGAIN;
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    return c >= 0 ? c : -errno;
}

int ipc_set_send_timeout(int fd, long long ns) {
    struct timeval tv = {(time_t)(ns / 1000000000LL), (suseconds_t)((ns % 1000000000LL) / 1000)};
    if (ns > 0 && tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;
    return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 ? 0 : -errno;
}

ssize_t ipc_send(int fd, const void *buf, size_t len, int nowait) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | (nowait ? MSG_DONTWAIT : 0));
    return n >= 0 ? n : -errno;
}

ssize_t ipc_recv(int fd, void *buf, size_t len, int nowait) {
    ssize_t n = recv(fd, buf, len, nowait ? MSG_DONTWAIT : 0);
    return n >= 0 ? n : -errno;
}

ssize_t ipc_next_datagram_size(int fd) {
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    return n >= 0 ? n : -errno;
}

int ipc_fd_kind(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    if (S_ISSOCK(st.st_mode)) return 1;
    if (S_ISFIFO(st.st_mode)) return 2;
    if (S_ISREG(st.st_mode)) return 3;
    return 0;
}

int ipc_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd >= 0 ? fd : -errno;
}

int ipc_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0 ? 0 : -errno; }

void ipc_close_from(int lowfd) {
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0) return;
    for (int fd = lowfd; fd < 65536; fd++) close(fd);
}

// MARK: - Unix domain sockets

size_t ipc_sun_path_cap(void) {
    struct sockaddr_un a;
    return sizeof a.sun_path;
}

static int fill_address(struct sockaddr_un *addr, const char *path) {
    size_t n = strlen(path);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (n == 0 || n >= sizeof addr->sun_path) return -ENAMETOOLONG;
    memcpy(addr->sun_path, path, n);
    return 0;
}

int ipc_unix_bind(int fd, const char *path) {
    struct sockaddr_un addr;
    int r = fill_address(&addr, path);
    if (r) return r;
    return bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 ? 0 : -errno;
}

int ipc_unix_connect(int fd, const char *path) {
    struct sockaddr_un addr;
    int r = fill_address(&addr, path);
    if (r) return r;
    return connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 ? 0 : -errno;
}

ssize_t ipc_unix_sendto(int fd, const void *buf, size_t len, const char *path) {
    struct sockaddr_un addr;
    int r = fill_address(&addr, path);
    if (r) return r;
    ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL, (struct sockaddr *)&addr, sizeof addr);
    return n >= 0 ? n : -errno;
}

ssize_t ipc_unix_recvfrom(int fd, void *buf, size_t len, char *from, size_t fromcap) {
    struct sockaddr_un addr;
    socklen_t alen = sizeof addr;
    memset(&addr, 0, sizeof addr);
    ssize_t n = recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&addr, &alen);
    if (n < 0) return -errno;
    size_t plen = alen > offsetof(struct sockaddr_un, sun_path) ? alen - offsetof(struct sockaddr_un, sun_path) : 0;
    if (plen >= fromcap) plen = fromcap - 1;
    memcpy(from, addr.sun_path, plen);
    from[plen] = '\0';
    return n;
}

int ipc_unix_localpath(int fd, char *out, size_t cap) {
    struct sockaddr_un addr;
    socklen_t alen = sizeof addr;
    memset(&addr, 0, sizeof addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &alen) < 0) return -errno;
    snprintf(out, cap, "%s", addr.sun_path);
    return 0;
}

ssize_t ipc_send_fds(int sock, const int *fds, int nfds, const void *buf, size_t len) {
    char control[CMSG_SPACE(sizeof(int) * 16)];
    if (nfds < 0 || nfds > 16) return -EINVAL;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(control, 0, sizeof control);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    return n >= 0 ? n : -errno;
}

ssize_t ipc_recv_fds(int sock, int *fds, int maxfds, int *nfds, void *buf, size_t len) {
    char control[CMSG_SPACE(sizeof(int) * 16)];
    if (maxfds > 16) maxfds = 16;
    struct iovec iov = {buf, len};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * maxfds);
    *nfds = 0;
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (*nfds < maxfds) fds[(*nfds)++] = fd; else close(fd);
            }
        }
    }
    return n;
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

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/// Reaps children without blocking for more than `budget_ms`; returns 1 when none is left.
/// Each round ends the group again: a process that joined it after the last kill (a child
/// between its fork and its setpgid) does not outlive the run.
static int reap_all(uint32_t group, int budget_ms) {
    for (int waited = 0;; waited += 5) {
        if (group != 0) kill(-(pid_t)group, SIGKILL);
        for (;;) {
            pid_t p = waitpid(-1, NULL, WNOHANG);
            if (p > 0) continue;
            if (p < 0 && errno == EINTR) continue;
            if (p < 0) return 1;  // ECHILD: nothing left
            break;                // children remain, none exited yet
        }
        if (waited >= budget_ms) return 0;
        sleep_ms(5);
    }
}

void ipc_teardown(int grace_ms) {
    ipc_run_header *run = g_run;
    if (run == NULL) return;
    uint32_t group = ipc_load32(&run->group);
    if (group != 0 && grace_ms > 0) {
        // SIGTERM first, so that what can end cleanly does; then wait until the group
        // is empty or the grace period is over.
        kill(-(pid_t)group, SIGTERM);
        for (int waited = 0; waited < grace_ms; waited += 5) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {}
            if (kill(-(pid_t)group, 0) < 0 && errno == ESRCH) break;
            sleep_ms(5);
        }
    }
    reap_all(group, 2000);
    for (int i = 0; i < IPC_SOCKET_SLOTS; i++) ipc_remove_socket_slot(run, i);
    if (getpid() == (pid_t)run->host_pid) ipc_trace_close();
}

static void on_shutdown_signal(int sig) {
    int code = 128 + sig;
    if (g_shutting_down) {
        // A second signal: no more grace.
        if (g_run != NULL && g_run->group != 0) kill(-(pid_t)g_run->group, SIGKILL);
        if (g_run != NULL) for (int i = 0; i < IPC_SOCKET_SLOTS; i++) ipc_remove_socket_slot(g_run, i);
        _exit(code);
    }
    g_shutting_down = 1;
    const char *msg = sig == SIGINT ? "\nipcplay: interrupted; ending every process\n"
                                    : "ipcplay: terminated; ending every process\n";
    (void)!write(2, msg, cstrlen(msg));
    ipc_teardown(300);
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

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ipc_report_processes(ipc_run_header *run, int fd, const char *prefix) {
    int64_t now = now_ns();
    for (int i = 0; i < IPC_PROCESS_SLOTS; i++) {
        ipc_process_slot *s = &run->processes[i];
        if (ipc_load32(&s->state) != 1) continue;
        if (kill((pid_t)s->pid, 0) < 0 && errno == ESRCH) continue;
        ipc_process_slot copy;
        for (int tries = 0; tries < 100; tries++) {
            uint32_t before = ipc_load32(&s->seq);
            memcpy(&copy, s, sizeof copy);
            if (!(before & 1) && ipc_load32(&s->seq) == before) break;
        }
        line_t l = {.n = 0};
        put_str(&l, prefix);
        put_field(&l, copy.name, IPC_NAME_CAP);
        put_str(&l, " (pid ");
        put_uint(&l, copy.pid);
        put_str(&l, "): ");
        if (copy.blocked) {
            put_str(&l, "blocked in ");
            put_field(&l, copy.call, IPC_CALL_CAP);
            if (copy.object[0]) { put_str(&l, " on "); put_field(&l, copy.object, IPC_NAME_CAP); }
            put_str(&l, " for ");
            put_seconds(&l, now - copy.since_ns);
            if (copy.where[0]) { put_str(&l, ", at "); put_field(&l, copy.where, IPC_WHERE_CAP); }
        } else {
            put_str(&l, "running (not blocked in an IPC call)");
        }
        put_str(&l, "\n");
        (void)!write(fd, l.buf, l.n);
    }
}

static int g_trace_fd = -1;

void ipc_trace_set_fd(int fd) { g_trace_fd = fd; }

void ipc_trace_close(void) {
    int fd = g_trace_fd;
    if (fd < 0) return;
    g_trace_fd = -1;
    const char *end = "{\"ph\":\"M\",\"name\":\"trace_end\",\"pid\":0,\"tid\":0,\"args\":{}}\n]\n";
    (void)!write(fd, end, cstrlen(end));
}

static double g_timeout_seconds;
static int g_report_fd = -1;

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
        const char *outcome = "outcome: timeout\n";
        (void)!write(g_report_fd, outcome, cstrlen(outcome));
        if (g_run != NULL) ipc_report_processes(g_run, g_report_fd, "blocked: ");
    }
    ipc_teardown(0);
    _exit(124);
}

static void on_deadlock_reported(int sig) {
    (void)sig;
    g_shutting_down = 1;
    ipc_teardown(0);
    _exit(124);
}

void ipc_deadlock_exit_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_deadlock_reported;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}

void ipc_timeout_arm(double seconds) {
    g_timeout_seconds = seconds;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timeout;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval t;
    memset(&t, 0, sizeof t);
    t.it_value.tv_sec = (time_t)seconds;
    t.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
    if (t.it_value.tv_sec == 0 && t.it_value.tv_usec == 0) t.it_value.tv_usec = 1;
    setitimer(ITIMER_REAL, &t, NULL);
}

void ipc_shutdown_install(ipc_run_header *run) {
    g_run = run;
    // Whoever started us may have left signals blocked (Foundation's Process does);
    // the handlers below must be able to run.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_shutdown_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;  // a second Ctrl-C re-enters and ends at once
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

void ipc_shutdown_now(int code, const char *message) {
    g_shutting_down = 1;
    if (message != NULL) (void)!write(2, message, cstrlen(message));
    ipc_teardown(0);
    _exit(code);
}
