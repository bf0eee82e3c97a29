# The same echo workload with Python's socket module (AF_UNIX) and a forked server.
import multiprocessing as mp
import os
import socket
import sys
import time


def serve(srv):
    c, _ = srv.accept()
    while True:
        data = c.recv(64)
        if not data:
            break
        c.sendall(data)


if __name__ == "__main__":
    mp.set_start_method("fork")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
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
    print("socket_echo %d %.6f" % (n, dt))
