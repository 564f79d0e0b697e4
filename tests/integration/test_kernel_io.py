#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""How fastproxy hands bytes to the kernel (issue 13): a send marked "more data follows"
(MSG_MORE) must never hold back bytes that a client waits for. A scripted origin sends a
response in parts and writes each next part only once the client has seen the last one; a
part held back by the kernel arrives about 200 ms late (Linux's cork ceiling), one sent at
once within a millisecond or so on loopback."""

import os
import socket
import threading
import time

import fpt

import statistics

PAUSE = 1.5  # the origin's longest wait for the client to see a part
HELD_S = 0.1  # a part that took longer (median over the parts) was held back


def scripted_origin(parts):
    """An origin that answers each request of a keep-alive connection with parts[0], waits
    until the test releases it (or PAUSE), sends parts[1], and so on. Returns (socket,
    release semaphore)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    release = threading.Semaphore(0)

    def serve(c):
        try:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(4096)
                    if not d:
                        return
                    buf += d
                buf = buf.split(b"\r\n\r\n", 1)[1]
                for i, p in enumerate(parts):
                    if i > 0:
                        release.acquire(timeout=PAUSE)
                    c.sendall(p)
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv, release


def read_until(s, needle, timeout):
    """Reads s until needle arrived; returns (bytes, seconds) or raises on timeout."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    data = b""
    while needle not in data:
        d = s.recv(65536)
        if not d:
            break
        data += d
    return data, time.monotonic() - t0


def stream_test(fp_port, origin, marker_parts, final):
    srv, release = origin
    s = socket.create_connection(("127.0.0.1", fp_port), timeout=5)
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    waits = []
    for m in marker_parts:
        data, dt = read_until(s, m, PAUSE)
        assert m in data, (m, data[-200:])
        waits.append(dt)
        got += data
        release.release()
    data, _ = read_until(s, final, PAUSE * 2)
    got += data
    assert got.endswith(final), got[-200:]
    s.close()
    # The median tolerates a scheduling hiccup of this shared machine on a part or two.
    assert statistics.median(waits) < HELD_S, "parts held back: %s" % waits
    return got


LENGTH_BODY = bytes(range(256)) * 400  # 100 KiB
LENGTH_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(LENGTH_BODY)
LENGTH_PARTS = [LENGTH_HEAD + LENGTH_BODY[:1000], LENGTH_BODY[1000:70000], LENGTH_BODY[70000:]]
CHUNKS = [b"first\n", b"second\n", b"third\n", b"fourth\n", b"fifth\n"]


def test_chunked_stream_not_held(env):
    # Server-sent-events style: each chunk must reach the client before the next is written.
    stream_test(env["chunked_port"], env["chunked"], CHUNKS, b"0\r\n\r\n")


def test_length_body_tail_sent(env):
    # A body delimited by its length is sent "with more to follow" while unfinished; its last
    # bytes leave with the send that completes it, whatever the parts' sizes.
    srv, release = env["length"]
    took = []
    for _ in range(3):
        for _ in LENGTH_PARTS[1:]:
            release.release()  # no pauses: the parts follow each other at once
        s = socket.create_connection(("127.0.0.1", env["length_port"]), timeout=5)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        t0 = time.monotonic()
        s.settimeout(PAUSE)
        while len(data) < len(LENGTH_HEAD) + len(LENGTH_BODY):
            d = s.recv(65536)
            assert d, "closed after %d bytes" % len(data)
            data += d
        took.append(time.monotonic() - t0)
        assert data.split(b"\r\n\r\n", 1)[1] == LENGTH_BODY
        s.close()
    assert statistics.median(took) < HELD_S, "the tail waited: %s" % took


def vcs(pid, tid):
    with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    return 0


def test_idle_threads_sleep(env):
    # Without a logging frontend nothing wakes the main thread (it drained an empty log ring
    # 10 times a second), and an idle worker sleeps until its next timer.
    pid = env["fp"].proc.pid
    tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    before = {t: vcs(pid, t) for t in tids}
    time.sleep(1.0)
    woke = {t: vcs(pid, t) - before[t] for t in tids}
    assert woke[pid] <= 2, "main thread woke %d times in 1 s" % woke[pid]
    assert max(woke.values()) <= 3, woke


def keepalive_client(port, n, out):
    """n GETs on one keep-alive connection; appends the statuses to out."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    buf = b""
    for _ in range(n):
        s.sendall(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        while b"\r\n\r\n" not in buf or len(buf.split(b"\r\n\r\n", 1)[1]) < 2:
            d = s.recv(65536)
            if not d:
                out.append(0)
                return
            buf += d
        out.append(int(buf.split(b" ", 2)[1]))
        buf = buf.split(b"\r\n\r\n", 1)[1][2:]
    s.close()


def test_io_collect(env):
    # global.io_collect: a busy loop gathers events before it polls again (counted), answers
    # stay right, and an idle worker still sleeps instead of gathering.
    if fpt.IO not in ("kernel", "uring"):
        return fpt.SKIP
    srv, _ = scripted_origin([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    port, sport = fpt.free_port(), fpt.free_port()
    cfg = f"""global: {{ workers: 1, maxconn: 100, io_collect: 200us }}
frontends:
  - {{ name: web, bind: "127.0.0.1:{port}", mode: http, default_backend: b }}
backends:
  - {{ name: b, servers: [{{ name: s1, address: "127.0.0.1:{srv.getsockname()[1]}" }}] }}
stats: {{ bind: "127.0.0.1:{sport}" }}
"""
    fp = fpt.Fastproxy(env["tmp"], cfg, wait=[port])
    try:
        before = fpt.stat_sum(fpt.stats(sport), "fastproxy_io_collect_waits_total")
        statuses = []
        clients = [threading.Thread(target=keepalive_client, args=(port, 300, statuses))
                   for _ in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(30)
        assert statuses == [200] * 1200, (len(statuses), set(statuses))
        waits = fpt.stat_sum(fpt.stats(sport), "fastproxy_io_collect_waits_total") - before
        print("     1,200 requests on 4 connections: %d loop iterations gathered events" % waits)
        assert waits > 0, "io_collect set, but no iteration gathered events"
        pid = fp.proc.pid
        tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
        idle0 = {t: vcs(pid, t) for t in tids}
        time.sleep(1.0)
        woke = {t: vcs(pid, t) - idle0[t] for t in tids}
        assert max(woke.values()) <= 3, "an idle worker kept waking: %s" % woke
    finally:
        assert fp.stop() == 0
        srv.close()


def main():
    tmp = fpt.tmpdir()
    chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in CHUNKS]
    chunked = scripted_origin([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                               chunks[0]] + chunks[1:] + [b"0\r\n\r\n"])
    length = scripted_origin(LENGTH_PARTS)
    ports = {k: fpt.free_port() for k in ("chunked_port", "length_port")}
    cfg = f"""global:
  workers: 1
  maxconn: 200
defaults:
  timeouts: {{ connect: 2s, client: 10s, server: 10s, http_request: 5s, keep_alive: 5s }}
frontends:
  - {{ name: chunked, bind: "127.0.0.1:{ports['chunked_port']}", mode: http, default_backend: c }}
  - {{ name: length, bind: "127.0.0.1:{ports['length_port']}", mode: http, default_backend: l }}
backends:
  - {{ name: c, servers: [{{ name: c1, address: "127.0.0.1:{chunked[0].getsockname()[1]}" }}] }}
  - {{ name: l, servers: [{{ name: l1, address: "127.0.0.1:{length[0].getsockname()[1]}" }}] }}
"""
    r = fpt.Runner()
    fp = None
    try:
        fp = fpt.Fastproxy(tmp, cfg, wait=list(ports.values()))
        env = dict(ports, tmp=tmp, fp=fp, chunked=chunked, length=length)
        r.run("chunks of a chunked stream are not held back", test_chunked_stream_not_held,
              env)
        r.run("a length-delimited body arrives whole, tail included", test_length_body_tail_sent,
              env)
        r.run("idle threads sleep: no periodic wake-up without a log", test_idle_threads_sleep,
              env)
        r.run("io_collect: a busy loop gathers events, an idle one sleeps", test_io_collect, env)
    finally:
        rc = fp.stop() if fp is not None else -1
        if rc != 0:
            print("fastproxy exited %s\n%s" % (rc, fp.read_log()[-3000:] if fp else ""))
            r.failed += 1
    r.finish()


if __name__ == "__main__":
    main()
