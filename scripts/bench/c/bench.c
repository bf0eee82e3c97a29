/* The C floor for ipcplay's benchmarks: the same workloads with plain syscalls.
 * Each prints "<workload> <count> <seconds>" like the Lua and Python versions
 * (for the byte workloads, "<workload> <bytes> <seconds>").
 *   cc -O2 -o bench bench.c -lpthread && ./bench pipe_stream 200000
 *   ./bench queue_bytes 16 16777216                                            */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void read_all(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0) { perror("read"); exit(1); }
        got += (size_t)r;
    }
}

/* 8-byte messages through a pipe, one writer, one reader. */
static void pipe_stream(long n) {
    int fd[2];
    if (pipe(fd) != 0) exit(1);
    double t0 = now();
    pid_t p = fork();
    if (p == 0) {
        close(fd[1]);
        long v;
        for (long i = 0; i < n; i++) read_all(fd[0], &v, 8);
        _exit(0);
    }
    close(fd[0]);
    for (long i = 0; i < n; i++) if (write(fd[1], &i, 8) != 8) exit(1);
    waitpid(p, NULL, 0);
    printf("pipe_stream %ld %.6f\n", n, now() - t0);
}

/* Round trips of 8 bytes over two pipes. */
static void pipe_pingpong(long n) {
    int a[2], b[2];
    if (pipe(a) || pipe(b)) exit(1);
    pid_t p = fork();
    if (p == 0) {
        long v;
        for (long i = 0; i < n; i++) { read_all(a[0], &v, 8); if (write(b[1], &v, 8) != 8) _exit(1); }
        _exit(0);
    }
    double t0 = now();
    long v = 0;
    for (long i = 0; i < n; i++) { if (write(a[1], &i, 8) != 8) exit(1); read_all(b[0], &v, 8); }
    double dt = now() - t0;
    waitpid(p, NULL, 0);
    printf("pipe_pingpong %ld %.6f\n", n, dt);
}

/* `trips` round trips through two process-shared POSIX semaphores, between this
 * process and a child; their seconds. */
static double semaphore_round_trips(long trips) {
    sem_t *s = mmap(NULL, 2 * sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sem_init(&s[0], 1, 0);
    sem_init(&s[1], 1, 0);
    pid_t p = fork();
    if (p == 0) {
        for (long i = 0; i < trips; i++) { sem_wait(&s[0]); sem_post(&s[1]); }
        _exit(0);
    }
    double t0 = now();
    for (long i = 0; i < trips; i++) { sem_post(&s[0]); sem_wait(&s[1]); }
    double dt = now() - t0;
    waitpid(p, NULL, 0);
    return dt;
}

static void semaphore_pingpong(long n) {
    double dt = semaphore_round_trips(n);
    printf("semaphore_pingpong %ld %.6f\n", n, dt);
}

/* `n` blocking handoffs between two processes pinned to one CPU, as a controlled run's
 * processes are: each wakes the other and sleeps until woken back (a semaphore round
 * trip is two handoffs). The floor of a run under --sched that hands the turn over once
 * per item (sched_overhead's). */
static void handoffs_one_cpu(long n) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof one, &one)) { perror("sched_setaffinity"); exit(1); }
    long trips = n / 2;
    double dt = semaphore_round_trips(trips);
    printf("handoffs_one_cpu %ld %.6f\n", 2 * trips, dt);
}

/* 8-byte echo round trips over a Unix stream socket. */
static void socket_echo(long n) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) exit(1);
    pid_t p = fork();
    if (p == 0) {
        close(sv[0]);
        char b[64];
        for (;;) { ssize_t r = recv(sv[1], b, 64, 0); if (r <= 0) _exit(0); if (send(sv[1], b, (size_t)r, 0) != r) _exit(1); }
    }
    close(sv[1]);
    char b[64];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        if (send(sv[0], "12345678", 8, 0) != 8) exit(1);
        ssize_t got = 0;
        while (got < 8) { ssize_t r = recv(sv[0], b, 64, 0); if (r <= 0) exit(1); got += r; }
    }
    double dt = now() - t0;
    close(sv[0]);
    waitpid(p, NULL, 0);
    printf("socket_echo %ld %.6f\n", n, dt);
}

static void *shared(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    return p;
}

/* A process-shared robust mutex (ipcplay's locks are robust too), and condition
 * variables to go with it (with the default clock: nothing here waits with a timeout). */
static void robust_init(pthread_mutex_t *m) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(m, &a)) { fprintf(stderr, "pthread_mutex_init failed\n"); exit(1); }
    pthread_mutexattr_destroy(&a);
}

static void cond_init(pthread_cond_t *c) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (pthread_cond_init(c, &a)) { fprintf(stderr, "pthread_cond_init failed\n"); exit(1); }
    pthread_condattr_destroy(&a);
}

static void check_lock(pthread_mutex_t *m, int r) {
    if (r == EOWNERDEAD) pthread_mutex_consistent(m);  /* a holder died: take it over */
    else if (r) { fprintf(stderr, "pthread_mutex_lock: %s\n", strerror(r)); exit(1); }
}

static void lock(pthread_mutex_t *m) { check_lock(m, pthread_mutex_lock(m)); }
static void unlock(pthread_mutex_t *m) { pthread_mutex_unlock(m); }
static void wait_on(pthread_cond_t *c, pthread_mutex_t *m) { check_lock(m, pthread_cond_wait(c, m)); }

/* A bounded queue of 8-byte items, like ipcplay's queue(1000) and multiprocessing's
 * Queue(1000): a ring in shared memory under one robust mutex, with the two classic
 * condition variables, and a count of unfinished items for the joinable variant. */
#define QUEUE_MAX 1000
struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full, all_done;
    long head, count, unfinished;
    long items[QUEUE_MAX];
};

static struct queue *queue_new(void) {
    struct queue *q = shared(sizeof *q);
    robust_init(&q->lock);
    cond_init(&q->not_empty);
    cond_init(&q->not_full);
    cond_init(&q->all_done);
    return q;
}

static void queue_put(struct queue *q, long v) {
    lock(&q->lock);
    while (q->count == QUEUE_MAX) wait_on(&q->not_full, &q->lock);
    q->items[(q->head + q->count) % QUEUE_MAX] = v;
    q->count++;
    q->unfinished++;
    pthread_cond_signal(&q->not_empty);
    unlock(&q->lock);
}

static long queue_get(struct queue *q) {
    lock(&q->lock);
    while (q->count == 0) wait_on(&q->not_empty, &q->lock);
    long v = q->items[q->head];
    q->head = (q->head + 1) % QUEUE_MAX;
    q->count--;
    pthread_cond_signal(&q->not_full);
    unlock(&q->lock);
    return v;
}

/* task_done takes the lock again, as ipcplay's and Python's do. */
static void queue_task_done(struct queue *q) {
    lock(&q->lock);
    if (--q->unfinished == 0) pthread_cond_broadcast(&q->all_done);
    unlock(&q->lock);
}

static void queue_join(struct queue *q) {
    lock(&q->lock);
    while (q->unfinished > 0) wait_on(&q->all_done, &q->lock);
    unlock(&q->lock);
}

/* One producer, one consumer, n items through the queue. */
static void queue_stream(long n) {
    struct queue *q = queue_new();
    pid_t p = fork();
    if (p == 0) { for (long i = 0; i < n; i++) queue_get(q); _exit(0); }
    double t0 = now();
    for (long i = 0; i < n; i++) queue_put(q, i);
    waitpid(p, NULL, 0);
    printf("queue_stream %ld %.6f\n", n, now() - t0);
}

/* Four producers and four consumers, n/4 items each. */
static void queue_stream_4x4(long n) {
    struct queue *q = queue_new();
    long per = n / 4;
    pid_t ps[8];
    double t0 = now();
    for (int k = 0; k < 4; k++) if ((ps[k] = fork()) == 0) { for (long i = 0; i < per; i++) queue_get(q); _exit(0); }
    for (int k = 4; k < 8; k++) if ((ps[k] = fork()) == 0) { for (long i = 0; i < per; i++) queue_put(q, i); _exit(0); }
    for (int k = 0; k < 8; k++) waitpid(ps[k], NULL, 0);
    printf("queue_stream_4x4 %ld %.6f\n", per * 4, now() - t0);
}

/* A consumer that marks every item done; the producer puts n items, then joins. */
static void joinable_queue(long n) {
    struct queue *q = queue_new();
    pid_t p = fork();
    if (p == 0) { for (;;) { queue_get(q); queue_task_done(q); } }
    double t0 = now();
    for (long i = 0; i < n; i++) queue_put(q, i);
    queue_join(q);
    double dt = now() - t0;
    kill(p, SIGKILL);  /* the consumer is a daemon, as in the Lua and Python versions */
    waitpid(p, NULL, 0);
    printf("joinable_queue %ld %.6f\n", n, dt);
}

/* k processes increment one shared integer n/k times each: under a robust mutex, or
 * with an atomic add. They start together (a C loop is over before the next fork
 * otherwise, and would never meet the others at the lock). */
struct counter { pthread_mutex_t lock; long value; int ready; };

static void increments(const char *name, long n, int k, int locked) {
    struct counter *c = shared(sizeof *c);
    robust_init(&c->lock);
    long per = n / k;
    pid_t ps[64];
    double t0 = now();
    for (int j = 0; j < k; j++) {
        if ((ps[j] = fork()) == 0) {
            __atomic_fetch_add(&c->ready, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE) < k) sched_yield();
            if (locked) {
                for (long i = 0; i < per; i++) { lock(&c->lock); c->value++; unlock(&c->lock); }
            } else {
                for (long i = 0; i < per; i++) __atomic_fetch_add(&c->value, 1, __ATOMIC_SEQ_CST);
            }
            _exit(0);
        }
    }
    for (int j = 0; j < k; j++) waitpid(ps[j], NULL, 0);
    double dt = now() - t0;
    if (c->value != per * k) { fprintf(stderr, "%s: counted %ld, expected %ld\n", name, c->value, per * k); exit(1); }
    printf("%s %ld %.6f\n", name, per * k, dt);
}

static void write_all(int fd, const void *buf, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t r = write(fd, (const char *)buf + put, n - put);
        if (r <= 0) { perror("write"); exit(1); }
        put += (size_t)r;
    }
}

/* n messages of `size` bytes through a pipe: an 8-byte length, then the bytes in as few
 * writes as the kernel takes; the receiver reads each into one reused buffer. */
static void pipe_bytes(long n, size_t size) {
    int fd[2];
    if (pipe(fd) != 0) exit(1);
    char *payload = malloc(size);
    memset(payload, 'x', size);
    pid_t p = fork();
    if (p == 0) {
        close(fd[1]);
        char *buf = malloc(size);
        for (long i = 0; i < n; i++) {
            size_t len;
            read_all(fd[0], &len, 8);
            if (len != size) _exit(1);
            read_all(fd[0], buf, len);
        }
        _exit(0);
    }
    close(fd[0]);
    double t0 = now();
    for (long i = 0; i < n; i++) { write_all(fd[1], &size, 8); write_all(fd[1], payload, size); }
    close(fd[1]);
    waitpid(p, NULL, 0);
    printf("pipe_bytes %ld %.6f\n", n * (long)size, now() - t0);
}

/* n messages of `size` bytes through a byte ring in shared memory (16 MiB, like the
 * frames of ipcplay's queue): the producer copies in and the consumer copies out to a
 * reused private buffer, each without the lock, which guards only the counters. */
#define RING (16 << 20)
struct ring {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    size_t head, used;
    char bytes[];
};

static void queue_bytes(long n, size_t size) {
    struct ring *r = shared(sizeof *r + RING);
    robust_init(&r->lock);
    cond_init(&r->not_empty);
    cond_init(&r->not_full);
    char *payload = malloc(size);
    memset(payload, 'x', size);
    pid_t p = fork();
    if (p == 0) {
        char *buf = malloc(size);
        size_t total = (size_t)n * size, taken = 0;
        while (taken < total) {
            lock(&r->lock);
            while (r->used == 0) wait_on(&r->not_empty, &r->lock);
            size_t head = r->head, k = r->used;
            unlock(&r->lock);
            if (k > RING - head) k = RING - head;
            size_t off = taken % size;
            if (k > size - off) k = size - off;
            memcpy(buf + off, r->bytes + head, k);
            lock(&r->lock);
            r->head = (head + k) % RING;
            r->used -= k;
            pthread_cond_signal(&r->not_full);
            unlock(&r->lock);
            taken += k;
        }
        _exit(buf[size - 1] == 'x' ? 0 : 1);
    }
    double t0 = now();
    size_t tail = 0;
    for (long i = 0; i < n; i++) {
        size_t off = 0;
        while (off < size) {
            lock(&r->lock);
            while (r->used == RING) wait_on(&r->not_full, &r->lock);
            size_t room = RING - r->used;
            unlock(&r->lock);
            size_t k = size - off;
            if (k > room) k = room;
            if (k > RING - tail) k = RING - tail;
            memcpy(r->bytes + tail, payload + off, k);
            lock(&r->lock);
            r->used += k;
            pthread_cond_signal(&r->not_empty);
            unlock(&r->lock);
            tail = (tail + k) % RING;
            off += k;
        }
    }
    int st;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "queue_bytes: consumer failed\n"); exit(1); }
    printf("queue_bytes %ld %.6f\n", n * (long)size, now() - t0);
}

/* Fork n processes that do nothing, then reap them. */
static void spawn_join(long n) {
    double t0 = now();
    pid_t *ps = malloc(sizeof(pid_t) * (size_t)n);
    for (long i = 0; i < n; i++) { ps[i] = fork(); if (ps[i] == 0) _exit(0); }
    for (long i = 0; i < n; i++) waitpid(ps[i], NULL, 0);
    printf("spawn_join %ld %.6f\n", n, now() - t0);
}

/* n runs of a command (fork + exec + wait); argv holds the command. */
static void startup(long n, char **argv) {
    double t0 = now();
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) { execvp(argv[0], argv); _exit(127); }
        int st;
        waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "%s failed\n", argv[0]); exit(1); }
    }
    printf("startup %ld %.6f\n", n, now() - t0);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: bench WORKLOAD N [size | command...]\n"); return 2; }
    long n = atol(argv[2]);
    const char *w = argv[1];
    if (!strcmp(w, "pipe_stream")) pipe_stream(n);
    else if (!strcmp(w, "pipe_pingpong")) pipe_pingpong(n);
    else if (!strcmp(w, "semaphore_pingpong")) semaphore_pingpong(n);
    else if (!strcmp(w, "handoffs_one_cpu")) handoffs_one_cpu(n);
    else if (!strcmp(w, "socket_echo")) socket_echo(n);
    else if (!strcmp(w, "spawn_join")) spawn_join(n);
    else if (!strcmp(w, "queue_stream")) queue_stream(n);
    else if (!strcmp(w, "queue_stream_4x4")) queue_stream_4x4(n);
    else if (!strcmp(w, "joinable_queue")) joinable_queue(n);
    else if (!strcmp(w, "value_lock_2")) increments(w, n, 2, 1);
    else if (!strcmp(w, "value_lock_8")) increments(w, n, 8, 1);
    else if (!strcmp(w, "value_add_2")) increments(w, n, 2, 0);
    else if (!strcmp(w, "value_add_8")) increments(w, n, 8, 0);
    else if (!strcmp(w, "pipe_bytes") && argc > 3) pipe_bytes(n, (size_t)atol(argv[3]));
    else if (!strcmp(w, "queue_bytes") && argc > 3) queue_bytes(n, (size_t)atol(argv[3]));
    else if (!strcmp(w, "startup") && argc > 3) startup(n, argv + 3);
    else { fprintf(stderr, "unknown workload %s\n", w); return 2; }
    return 0;
}
