# The same workload as pipe_stream.lua, with multiprocessing (fork).
import multiprocessing as mp
import sys
import time


def receiver(r, w, n):
    w.close()
    for _ in range(n):
        r.recv()


if __name__ == "__main__":
    mp.set_start_method("fork")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    r, w = mp.Pipe(False)
    p = mp.Process(target=receiver, args=(r, w, n))
    p.start()
    r.close()
    t0 = time.monotonic()
    for i in range(n):
        w.send(i)
    p.join()
    print("pipe_stream %d %.6f" % (n, time.monotonic() - t0))
