# The same workload as queue_stream.lua, with multiprocessing (fork).
import multiprocessing as mp
import sys
import time


def consumer(q, n):
    for _ in range(n):
        q.get()


if __name__ == "__main__":
    mp.set_start_method("fork")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    q = mp.Queue(1000)
    c = mp.Process(target=consumer, args=(q, n))
    c.start()
    t0 = time.monotonic()
    for i in range(n):
        q.put(i)
    c.join()
    print("queue_stream %d %.6f" % (n, time.monotonic() - t0))
