#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Kernel-side peer for the TAP interop test.

client HOST PORT BYTES: connects, sends BYTES of seeded random data while reading the echo,
    and exits 0 only if the echo's SHA-256 equals the sent data's. Prints size and time.
echo-server HOST PORT: accepts one connection, echoes until EOF, closes, exits 0.
churn HOST PORT N PAR: N short connections, PAR at a time, each sending 100 bytes and checking
    the echo before closing; exits 0 only if all N succeed.
"""
import hashlib
import random
import socket
import sys
import threading
import time


def client(host, port, total):
    rnd = random.Random(1234)
    block = rnd.randbytes(1 << 20)
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent_hash = hashlib.sha256()
    err = []

    def sender():
        try:
            left = total
            off = 0
            while left > 0:
                n = min(left, 65536)
                start = off % len(block)
                chunk = (block[start:] + block)[:n]
                s.sendall(chunk)
                sent_hash.update(chunk)
                off += n * 7 + 13  # vary the alignment so reordering would show
                left -= n
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t0 = time.monotonic()
    th = threading.Thread(target=sender)
    th.start()
    got = hashlib.sha256()
    received = 0
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        got.update(d)
        received += len(d)
    th.join()
    dt = time.monotonic() - t0
    s.close()
    ok = not err and received == total and got.digest() == sent_hash.digest()
    print("kernel client -> stack echo: %d bytes sent, %d echoed in %.2f s (%.1f MB/s), sha256 %s"
          % (total, received, dt, 2 * received / dt / 1e6, "match" if ok else "MISMATCH"))
    return 0 if ok else 1


def echo_server(host, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(30)
    print("listening", flush=True)
    c, _ = ls.accept()
    c.settimeout(60)
    n = 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        c.sendall(d)
        n += len(d)
    c.shutdown(socket.SHUT_WR)
    c.close()
    print("kernel echo server: echoed %d bytes" % n)
    return 0


def churn(host, port, n, par):
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "err": []}

    def worker():
        while True:
            with lock:
                if state["next"] >= n:
                    return
                i = state["next"]
                state["next"] += 1
            msg = (b"%08d" % i) * 12 + b"done"
            try:
                with socket.create_connection((host, port), timeout=10) as s:
                    s.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        d = s.recv(4096)
                        if not d:
                            break
                        got += d
                if got != msg:
                    raise OSError("bad echo on connection %d" % i)
                with lock:
                    state["ok"] += 1
            except OSError as e:
                with lock:
                    state["err"].append(str(e))

    t0 = time.monotonic()
    ths = [threading.Thread(target=worker) for _ in range(par)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    dt = time.monotonic() - t0
    print("kernel churn -> stack echo: %d/%d short connections ok in %.2f s (%.0f/s)%s"
          % (state["ok"], n, dt, state["ok"] / dt,
             "" if not state["err"] else ", first error: " + state["err"][0]))
    return 0 if state["ok"] == n else 1


if __name__ == "__main__":
    if sys.argv[1] == "churn":
        sys.exit(churn(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
    if sys.argv[1] == "client":
        sys.exit(client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    sys.exit(echo_server(sys.argv[2], int(sys.argv[3])))
