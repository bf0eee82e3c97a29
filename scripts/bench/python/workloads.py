# Python multiprocessing's side of the benchmark workloads (fork start method):
#   python3 workloads.py NAME N [ARG]   prints "<name> <count> <seconds>" (or bytes).
import multiprocessing as mp
import os
import socket
import sys
import time

name = sys.argv[1]
n = int(sys.argv[2])
extra = sys.argv[3] if len(sys.argv) > 3 else None


def report(count, seconds):
    print("%s %d %.6f" % (name, count, seconds))


def stream(count, consumer, args, produce, spawned=None):
    """A stream to one consumer process, `consumer(*args)`: this process then runs
    `produce`, timed until the consumer has joined. `spawned`, if given, runs between the
    start and the clock (a pipe's sender closes its read end there)."""
    c = mp.Process(target=consumer, args=args)
    c.start()
    if spawned is not None:
        spawned()
    t0 = time.monotonic()
    produce()
    c.join()
    report(count, time.monotonic() - t0)


def consume(q, k):
    for _ in range(k):
        q.get()


def produce(q, k):
    for i in range(k):
        q.put(i)


def queue_stream():
    q = mp.Queue(1000)
    stream(n, consume, (q, n), lambda: produce(q, n))


def queue_stream_4x4():
    q = mp.Queue(1000)
    per = n // 4
    t0 = time.monotonic()
    ps = [mp.Process(target=consume, args=(q, per)) for _ in range(4)]
    ps += [mp.Process(target=produce, args=(q, per)) for _ in range(4)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    report(per * 4, time.monotonic() - t0)


def done_consumer(q):
    while True:
        q.get()
        q.task_done()


def joinable_queue():
    q = mp.JoinableQueue(1000)
    c = mp.Process(target=done_consumer, args=(q,), daemon=True)
    c.start()
    t0 = time.monotonic()
    produce(q, n)
    q.join()
    report(n, time.monotonic() - t0)


def size_consumer(q, k, size):
    for _ in range(k):
        assert len(q.get()) == size


def queue_bytes():
    size = int(extra)
    q = mp.Queue(64)
    payload = b"x" * size

    def send_all():
        for _ in range(n):
            q.put(payload)
    stream(n * size, size_consumer, (q, n, size), send_all)


def receive_bytes(r, w, k, size):
    w.close()
    for _ in range(k):
        assert len(r.recv_bytes()) == size


def pipe_bytes():
    size = int(extra)
    r, w = mp.Pipe(False)
    payload = b"x" * size

    def send_all():
        for _ in range(n):
            w.send_bytes(payload)
    stream(n * size, receive_bytes, (r, w, n, size), send_all, r.close)


def receive(r, w, k):
    w.close()
    for _ in range(k):
        r.recv()


def pipe_stream():
    r, w = mp.Pipe(False)

    def send_all():
        for i in range(n):
            w.send(i)
    stream(n, receive, (r, w, n), send_all, r.close)


def echo(b, k):
    for _ in range(k):
        b.send(b.recv())


def pipe_pingpong():
    a, b = mp.Pipe()
    c = mp.Process(target=echo, args=(b, n))
    c.start()
    t0 = time.monotonic()
    for i in range(n):
        a.send(i)
        a.recv()
    dt = time.monotonic() - t0
    c.join()
    report(n, dt)


def sem_echo(s1, s2, k):
    for _ in range(k):
        s1.acquire()
        s2.release()


def semaphore_pingpong():
    s1, s2 = mp.Semaphore(0), mp.Semaphore(0)
    c = mp.Process(target=sem_echo, args=(s1, s2, n))
    c.start()
    t0 = time.monotonic()
    for _ in range(n):
        s1.release()
        s2.acquire()
    dt = time.monotonic() - t0
    c.join()
    report(n, dt)


def locked_increments(v, k):
    for _ in range(k):
        with v.get_lock():
            v.value += 1


def increments(k):
    v = mp.Value("q", 0)
    per = n // k
    t0 = time.monotonic()
    ps = [mp.Process(target=locked_increments, args=(v, per)) for _ in range(k)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    assert v.value == per * k
    report(per * k, time.monotonic() - t0)


def serve(srv):
    c, _ = srv.accept()
    while True:
        d = c.recv(64)
        if not d:
            break
        c.sendall(d)


def socket_echo():
    path = "/tmp/python-bench-%d.sock" % os.getpid()
    if os.path.exists(path):
        os.remove(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(5)
    p = mp.Process(target=serve, args=(srv,))
    p.start()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    t0 = time.monotonic()
    for _ in range(n):
        c.sendall(b"12345678")
        got = len(c.recv(64))
        while got < 8:
            got += len(c.recv(64))
    dt = time.monotonic() - t0
    c.close()
    p.join()
    os.remove(path)
    report(n, dt)


def nothing():
    pass


def spawn_join():
    t0 = time.monotonic()
    ps = [mp.Process(target=nothing) for _ in range(n)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    report(n, time.monotonic() - t0)


def kb(pid, field):
    source = "smaps_rollup" if field.startswith("Private") else "status"
    with open("/proc/%s/%s" % (pid, source)) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_receiver(get, k, size, peak, w=None):
    if w is not None:
        w.close()
    for _ in range(k):
        assert len(get()) == size
    peak.value = kb("self", "VmHWM")


def peak_memory(channel, side):
    """Peak RSS (VmHWM) of the sender or the receiver of n messages of `extra` bytes, as
    in workloads.lua: "<name> <size> <peak bytes>"; the payload is made after the fork
    and the sender's peak reset once it is made."""
    size = int(extra)
    peak = mp.Value("q", 0)
    if channel == "queue":
        q = mp.Queue(64)
        c = mp.Process(target=peak_receiver, args=(q.get, n, size, peak))
        c.start()
        send = q.put
    else:
        r, w = mp.Pipe(False)
        c = mp.Process(target=peak_receiver, args=(r.recv_bytes, n, size, peak, w))
        c.start()
        r.close()
        send = w.send_bytes
    payload = b"x" * size
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak to the current RSS
    for _ in range(n):
        send(payload)
    c.join()
    used = kb("self", "VmHWM") if side == "tx" else peak.value
    print("%s %d %d" % (name, size, used * 1024))


def idle(ev):
    ev.set()
    time.sleep(30)


def memory_idle_child():
    ev = mp.Event()
    c = mp.Process(target=idle, args=(ev,))
    c.start()
    ev.wait()
    time.sleep(0.2)
    used = kb(c.pid, "Private_Clean") + kb(c.pid, "Private_Dirty")
    c.kill()
    c.join()
    print("%s 1 %d" % (name, used * 1024))


if __name__ == "__main__":
    mp.set_start_method("fork")
    table = {
        "queue_stream": queue_stream, "queue_stream_4x4": queue_stream_4x4,
        "joinable_queue": joinable_queue, "queue_bytes": queue_bytes,
        "pipe_stream": pipe_stream, "pipe_pingpong": pipe_pingpong,
        "semaphore_pingpong": semaphore_pingpong, "socket_echo": socket_echo,
        "value_lock_2": lambda: increments(2), "value_lock_8": lambda: increments(8),
        "spawn_join": spawn_join, "memory_idle_child": memory_idle_child,
        "pipe_bytes": pipe_bytes,
        "memory_queue_tx": lambda: peak_memory("queue", "tx"),
        "memory_queue_rx": lambda: peak_memory("queue", "rx"),
        "memory_pipe_tx": lambda: peak_memory("pipe", "tx"),
        "memory_pipe_rx": lambda: peak_memory("pipe", "rx"),
    }
    table[name]()
