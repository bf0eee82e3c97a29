#define _GNU_SOURCE
#include "ipc_system.h"
#include "ipc_layouts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
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

int32_t ipc_self_pid;

static uint32_t *exit_words[IPC_EXIT_WORDS];
static int exit_word_count;

int ipc_exit_note_word(uint32_t *word) {
    for (int i = 0; i < exit_word_count; i++) if (exit_words[i] == word) return 1;
    if (exit_word_count == IPC_EXIT_WORDS) return 0;
    exit_words[exit_word_count++] = word;
    return 1;
}

void ipc_exit_forget_word(uint32_t *word) {
    for (int i = 0; i < exit_word_count; i++) {
        if (exit_words[i] == word) {
            exit_words[i] = exit_words[--exit_word_count];
            return;
        }
    }
}

void ipc_exit_clear_words(uint32_t pid) {
    for (int i = 0; i < exit_word_count; i++) {
        uint32_t expected = pid;
        __atomic_compare_exchange_n(exit_words[i], &expected, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
    exit_word_count = 0;
}

void ipc_exit_reset_words(void) { exit_word_count = 0; }

// MARK: - Clock

int ipc_sleep_until(int64_t deadline_ns) {
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    return -r;  // clock_nanosleep returns the error number itself
}

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
// The crc32 instruction has a latency of three cycles and a throughput of one: three
// independent streams over three adjacent blocks run three times as fast as one, and are
// joined by shifting a block's CRC over the length of the next (multiplying by x^(8n)
// modulo the polynomial: four table lookups), as in Mark Adler's crc32c.c.
#define CRC_LONG 1024
#define CRC_SHORT 256
static uint32_t crc_long[4][256], crc_short[4][256];
static int crc_shift_ready;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

/// The operator that appends `len` zero bytes (a power of two) to a CRC.
static void crc_zeros_op(uint32_t *even, size_t len) {
    uint32_t odd[32];
    odd[0] = 0x82F63B78u;  // one zero bit
    uint32_t row = 1;
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_square(even, odd);  // two zero bits
    gf2_square(odd, even);  // four
    do {
        gf2_square(even, odd);  // a byte, then 4, 16, ... bytes
        len >>= 1;
        if (len == 0) return;
        gf2_square(odd, even);
        len >>= 1;
    } while (len);
    for (int n = 0; n < 32; n++) even[n] = odd[n];
}

static void crc_zeros(uint32_t zeros[][256], size_t len) {
    uint32_t op[32];
    crc_zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_times(op, n);
        zeros[1][n] = gf2_times(op, n << 8);
        zeros[2][n] = gf2_times(op, n << 16);
        zeros[3][n] = gf2_times(op, n << 24);
    }
}

static inline uint32_t crc_shift(uint32_t zeros[][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

__attribute__((target("sse4.2")))
static uint64_t crc_three(uint64_t c0, const uint8_t **pp, size_t *lenp, size_t block, uint32_t zeros[][256]) {
    const uint8_t *p = *pp;
    size_t len = *lenp;
    while (len >= 3 * block) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *end = p + block;
        do {
            uint64_t v0, v1, v2;
            memcpy(&v0, p, 8);
            memcpy(&v1, p + block, 8);
            memcpy(&v2, p + 2 * block, 8);
            c0 = __builtin_ia32_crc32di(c0, v0);
            c1 = __builtin_ia32_crc32di(c1, v1);
            c2 = __builtin_ia32_crc32di(c2, v2);
            p += 8;
        } while (p < end);
        c0 = crc_shift(zeros, (uint32_t)c0) ^ (uint32_t)c1;
        c0 = crc_shift(zeros, (uint32_t)c0) ^ (uint32_t)c2;
        p += 2 * block;
        len -= 3 * block;
    }
    *pp = p;
    *lenp = len;
    return c0;
}

__attribute__((target("sse4.2")))
static uint32_t crc_hardware(uint32_t crc, const uint8_t *p, size_t len) {
    uint64_t c = crc;
    if (len >= 3 * CRC_SHORT) {
        if (!crc_shift_ready) {
            crc_zeros(crc_long, CRC_LONG);
            crc_zeros(crc_short, CRC_SHORT);
            crc_shift_ready = 1;
        }
        c = crc_three(c, &p, &len, CRC_LONG, crc_long);
        c = crc_three(c, &p, &len, CRC_SHORT, crc_short);
    }
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

int ipc_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : -errno; }

int ipc_pin_to_current_cpu(void) {
    int cpu = sched_getcpu();
    if (cpu < 0) return -errno;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}
int ipc_allowed_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}
int ipc_pin_to_allowed_cpu(int n) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -errno;
    int count = CPU_COUNT(&set);
    if (count <= 0) return -EINVAL;
    n %= count;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (n-- > 0) continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        return sched_setaffinity(0, sizeof one, &one) == 0 ? 0 : -errno;
    }
    return -EINVAL;
}
int ipc_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0 ? 0 : -errno; }

// Where a child's exit is told (ipc_set_child_notice), or NULL.
static uint32_t *volatile g_notice_word;
static uint32_t *volatile g_notice_flag;

static void on_child(int sig) {
    (void)sig;
    uint32_t *word = g_notice_word, *flag = g_notice_flag;
    if (word == NULL || flag == NULL) return;
    int saved = errno;
    __atomic_store_n(flag, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST);
    ipc_futex_wake(word, 1);
    errno = saved;
}

void ipc_set_child_notice(uint32_t *word, uint32_t *flag) {
    g_notice_word = NULL;
    g_notice_flag = flag;
    g_notice_word = word;
}

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

int ipc_pipe_grow(int fd, int size) {
    int now = fcntl(fd, F_GETPIPE_SZ);
    if (now < 0) return -errno;
    if (now >= size) return now;
    int r = fcntl(fd, F_SETPIPE_SZ, size);
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

static void close_range_of(unsigned from, unsigned to) {
    if (from > to) return;
    if (syscall(SYS_close_range, from, to, 0) == 0) return;
    for (unsigned fd = from; fd <= to && fd < 65536; fd++) close((int)fd);
}

void ipc_close_from(int lowfd, int keep) {
    if (keep < lowfd) { close_range_of((unsigned)lowfd, ~0U); return; }
    close_range_of((unsigned)lowfd, (unsigned)keep - 1);
    close_range_of((unsigned)keep + 1, ~0U);
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

