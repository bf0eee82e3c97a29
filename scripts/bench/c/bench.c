/* The C floor for ipcplay's benchmarks: the same workloads with plain syscalls.
 * Each prints "<workload> <count> <seconds>" like the Lua and Python versions.
 *   cc -O2 -o bench bench.c -lpthread && ./bench pipe_stream 200000            */
#define _GNU_SOURCE
#include <semaphore.h>
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

/* Round trips through two process-shared POSIX semaphores. */
static void semaphore_pingpong(long n) {
    sem_t *s = mmap(NULL, 2 * sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sem_init(&s[0], 1, 0);
    sem_init(&s[1], 1, 0);
    pid_t p = fork();
    if (p == 0) {
        for (long i = 0; i < n; i++) { sem_wait(&s[0]); sem_post(&s[1]); }
        _exit(0);
    }
    double t0 = now();
    for (long i = 0; i < n; i++) { sem_post(&s[0]); sem_wait(&s[1]); }
    double dt = now() - t0;
    waitpid(p, NULL, 0);
    printf("semaphore_pingpong %ld %.6f\n", n, dt);
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
    if (argc < 3) { fprintf(stderr, "usage: bench WORKLOAD N [command...]\n"); return 2; }
    long n = atol(argv[2]);
    const char *w = argv[1];
    if (!strcmp(w, "pipe_stream")) pipe_stream(n);
    else if (!strcmp(w, "pipe_pingpong")) pipe_pingpong(n);
    else if (!strcmp(w, "semaphore_pingpong")) semaphore_pingpong(n);
    else if (!strcmp(w, "socket_echo")) socket_echo(n);
    else if (!strcmp(w, "spawn_join")) spawn_join(n);
    else if (!strcmp(w, "startup") && argc > 3) startup(n, argv + 3);
    else { fprintf(stderr, "unknown workload %s\n", w); return 2; }
    return 0;
}
