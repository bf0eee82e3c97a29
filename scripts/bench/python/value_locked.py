# Locked increments of one multiprocessing.Value by two processes (fork).
import multiprocessing as mp
import sys
import time


def work(v, per):
    for _ in range(per):
        with v.get_lock():
            v.value += 1


if __name__ == "__main__":
    mp.set_start_method("fork")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    per = n // 2
    v = mp.Value("q", 0)
    t0 = time.monotonic()
    ps = [mp.Process(target=work, args=(v, per)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    assert v.value == 2 * per
    print("value_lock %d %.6f" % (2 * per, time.monotonic() - t0))
