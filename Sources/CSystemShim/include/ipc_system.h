// The system, and nothing else: the few facilities Swift cannot call directly (variadic
// functions such as prctl and fcntl, the futex syscall, cmsg macros, C11 atomics on
// shared words, CRC-32C). Every function returns its result or -errno, captured next to
// the call; none retries on EINTR (Swift's `Syscall` does, in one place; the C protocol
// code, with IPC_RETRY_EINTR).
// The layouts of the IPC objects in shared memory are in ipc_layouts.h, their protocols
// in ipc_queue.h, ipc_channel.h and ipc_sync.h; the run's own policy (its board,
// signals, reports) is in the runtime's C target, CRuntimeShim.
#ifndef IPCPLAY_IPC_SYSTEM_H
#define IPCPLAY_IPC_SYSTEM_H

#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>
#include <time.h>
#include <sys/types.h>

/// Evaluates `call`, a shim call returning a count or -errno, again while it fails with
/// EINTR: the C protocol code's one way to retry (Swift's is `Syscall`).
#define IPC_RETRY_EINTR(call) ({ __typeof__(call) ipc_r_; do { ipc_r_ = (call); } while (ipc_r_ == -EINTR); ipc_r_; })

// MARK: - The monotonic clock

/// CLOCK_MONOTONIC in nanoseconds: the one clock every part of ipcplay reads (Swift's
/// `MonotonicClock` and the async-signal-safe reports alike).
static inline int64_t ipc_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/// clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) until `deadline_ns`: 0, or -errno
/// (-EINTR when a signal came first; calling again resumes with the time left).
int ipc_sleep_until(int64_t deadline_ns);

// MARK: - Identity

/// The calling process's pid, as Swift's `ProcessIdentity` caches it (refreshed in every
/// new child): for the C fast paths, which must not make a syscall to know who they are.
extern int32_t ipc_self_pid;
static inline void ipc_set_self_pid(int32_t pid) { ipc_self_pid = pid; }

/// Words in shared memory that hold this process's pid while it plays a part other
/// processes act on (a pipe's receiver that senders put frames to directly): the process
/// notes each (at most IPC_EXIT_WORDS), forgets one it clears itself, and clears those
/// left when it ends. A process killed leaves them set: whoever reads them must cope.
#define IPC_EXIT_WORDS 64
/// 1 when `word` is noted (now or before); 0 when the list is full.
int ipc_exit_note_word(uint32_t *word);
void ipc_exit_forget_word(uint32_t *word);
/// Each noted word that still holds `pid` becomes 0; the list is emptied.
void ipc_exit_clear_words(uint32_t pid);
/// In a new child: the parent's list is not its own.
void ipc_exit_reset_words(void);

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
/// A release store: a plain `mov` on x86, which retires without waiting for the cache
/// line (a sequentially consistent store is an `xchg`, which waits).
static inline void ipc_store32_release(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
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
/// The most pauses between two looks at a taken lock that scripts hold (a value's, an
/// `ipc.lock()`): see ipc_robust_lock_try_spinning.
#define IPC_OWNED_LOCK_MAX_GAP 64
/// pthread_mutex_trylock while the lock looks free, for up to `budget` pauses: 0, EBUSY
/// (still taken), EOWNERDEAD. A lock whose holder died never looks free (its word keeps
/// the owner-died bit): EBUSY, and the caller's blocking acquire takes it over. The wait
/// between two looks doubles up to `max_gap` pauses. For a script's lock, contended by
/// processes that each take it again and again: a waiter that looked after every pause
/// would take the lock word's cache line from the holder each time, and the lock itself
/// at each release, a cross-CPU handoff per critical section; one that looks less often
/// lets the holder run on in its own cache. (An internal lock, whose holder is the other
/// side of a queue or pipe and holds it for tens of nanoseconds, looks after every pause.)
/// The last wait may pass the budget by less than `max_gap` pauses: clamping it measured
/// 4-10% slower on the queue rows, whose internal locks spin here too.
static inline int ipc_robust_lock_try_spinning(ipc_robust_lock *lock, int budget, int max_gap) {
    for (int spent = 0, gap = 1;;) {
        if (ipc_robust_lock_looks_free(lock)) {
            int r = pthread_mutex_trylock(&lock->mutex);
            if (r != EBUSY) return r;
        }
        if (spent >= budget) return EBUSY;
        for (int i = 0; i < gap; i++) ipc_pause();
        spent += gap;
        if (gap < max_gap) gap *= 2;
    }
}
/// What `ipc_robust_lock_take` did.
enum { IPC_LOCK_BUSY = 0, IPC_LOCK_TAKEN = 1, IPC_LOCK_TAKEN_OVER = 2 };
/// Records `me` as the holder of a lock just taken; returns the holder it replaces (the
/// pid of a holder that died, when the take returned EOWNERDEAD).
static inline uint32_t ipc_robust_lock_record(ipc_robust_lock *lock, uint32_t me) {
    uint32_t previous = lock->holder;
    lock->holder = me;
    return previous;
}
/// Takes a lock found free, or come free within `budget` pauses (see
/// ipc_robust_lock_try_spinning), and records `me` as its holder: IPC_LOCK_TAKEN;
/// IPC_LOCK_BUSY when it stays taken, or when its holder died before we looked (the
/// blocking acquire takes it over); IPC_LOCK_TAKEN_OVER when its holder died in between:
/// `*dead` is its pid, and the caller repairs what it left half done, then marks the
/// lock consistent (ipc_robust_lock_consistent).
static inline int ipc_robust_lock_take(ipc_robust_lock *lock, int budget, int max_gap, uint32_t me, uint32_t *dead) {
    int r = ipc_robust_lock_try_spinning(lock, budget, max_gap);
    if (r != 0 && r != EOWNERDEAD) return IPC_LOCK_BUSY;
    *dead = ipc_robust_lock_record(lock, me);
    return r == EOWNERDEAD ? IPC_LOCK_TAKEN_OVER : IPC_LOCK_TAKEN;
}
/// Releases a lock the caller holds (recorded by ipc_robust_lock_record).
static inline void ipc_robust_lock_give(ipc_robust_lock *lock) {
    lock->holder = 0;
    pthread_mutex_unlock(&lock->mutex);
}
/// True when no live process owns the mutex: free, or its owner died (the kernel then
/// leaves only the OWNER_DIED bit in the word). A plain read, for a scheduler's probe.
static inline int ipc_robust_lock_available(ipc_robust_lock *lock) {
    return (__atomic_load_n(&lock->mutex.__data.__lock, __ATOMIC_SEQ_CST) & 0x3fffffff) == 0;
}
/// The mutex's word that `ipc_robust_lock_available` reads (its owner, under that mask).
static inline uint32_t *ipc_robust_lock_word(ipc_robust_lock *lock) {
    return (uint32_t *)&lock->mutex.__data.__lock;
}

// MARK: - Processes

int ipc_pidfd_open(pid_t pid);
/// prctl(PR_SET_CHILD_SUBREAPER, 1).
int ipc_set_child_subreaper(void);
/// Restricts the calling process (and what it forks later) to the CPU it runs on now;
/// returns 0 or -errno.
int ipc_pin_to_current_cpu(void);
/// The CPUs this process may run on (at least 1).
int ipc_allowed_cpus(void);
/// Restricts the calling process to the `n`-th (modulo their count) of the CPUs it may run
/// on; returns 0 or -errno.
int ipc_pin_to_allowed_cpu(int n);
/// prctl(PR_SET_PDEATHSIG, sig): `sig` is sent to the caller when its parent dies.
/// Returns 0 or -errno.
int ipc_set_parent_death_signal(int sig);
/// A no-op SIGCHLD handler (SA_RESTART): a child's exit interrupts the calls that are
/// never restarted (poll, nanosleep, futex waits with a deadline), so every blocking call
/// of the runtime is written to resume after EINTR with the time it has left.
void ipc_install_sigchld_handler(void);
/// From now on, that handler also tells of each child's exit: it sets `*flag` to 1, then
/// bumps the futex word `*word` and wakes it (a process waiting there for its turn learns
/// that a child died). NULLs: no longer.
void ipc_set_child_notice(uint32_t *word, uint32_t *flag);
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

/// Sets or clears O_NONBLOCK; 0 or -errno.
int ipc_set_nonblocking(int fd, int on);
/// read(2) on a non-blocking descriptor: bytes read, 0 at end of stream, or -errno
/// (-EAGAIN when nothing is ready).
ssize_t ipc_read_nowait(int fd, void *buf, size_t n);
/// Writes two pieces as one write(2) (copied together when small: a single segment is
/// the kernel's cheaper path) or one writev(2): bytes written or -errno (-EAGAIN when a
/// non-blocking pipe is full).
ssize_t ipc_write2(int fd, const void *a, size_t alen, const void *b, size_t blen);

/// Raises the capacity of the pipe `fd` to at least `size` bytes (F_SETPIPE_SZ); returns
/// the capacity it has, or -errno (the kernel may refuse: /proc/sys/fs/pipe-max-size, or
/// the user's pipe budget).
int ipc_pipe_grow(int fd, int size);
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
/// Closes every descriptor >= lowfd (close_range) but `keep` (-1: none).
void ipc_close_from(int lowfd, int keep);

// MARK: - Unix domain sockets

/// Binds `fd` to `path`; -ENAMETOOLONG when it does not fit sun_path.
int ipc_unix_bind(int fd, const char *path);
int ipc_unix_connect(int fd, const char *path);
/// sendto/recvfrom on a datagram socket; the sender path is written into `from`.
ssize_t ipc_unix_sendto(int fd, const void *buf, size_t len, const char *path);
ssize_t ipc_unix_recvfrom(int fd, void *buf, size_t len, char *from, size_t fromcap);
/// sendmsg with SCM_RIGHTS: `nfds` descriptors and `len` bytes (at least one).
ssize_t ipc_send_fds(int sock, const int *fds, int nfds, const void *buf, size_t len);
/// recvmsg accepting up to `maxfds` descriptors (close-on-exec); *nfds gets their count.
ssize_t ipc_recv_fds(int sock, int *fds, int maxfds, int *nfds, void *buf, size_t len);
/// The size of sun_path.
size_t ipc_sun_path_cap(void);

#endif
