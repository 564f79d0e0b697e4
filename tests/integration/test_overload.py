#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Overload control end to end (mode http, kernel I/O): a slow origin behind fastproxy driven
open loop above capacity, the queue's drop-oldest and LIFO order, clients that leave, and a
connection flood beyond maxconn."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fpt


class RecordingOrigin:
    """A slow origin that records the order in which requests arrive and are served. A path
    in hold waits until release(path): the tests order events by what the proxy and the origin
    report, not by sleeps, so a loaded machine cannot reorder them."""

    def __init__(self, service_s, hold=()):
        served = self.served = []
        arrived = self.arrived = []
        gates = self.gates = {p: threading.Event() for p in hold}

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                arrived.append(self.path)
                if self.path in gates:
                    gates[self.path].wait(20)
                else:
                    time.sleep(service_s)
                served.append(self.path)
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def release(self, path):
        self.gates[path].set()

    def stop(self):
        for g in self.gates.values():
            g.set()
        self.srv.shutdown()
        self.srv.server_close()


def wait_until(cond, what, timeout=10.0):
    """Polls cond() every 5 ms until it is true; fails the test after timeout seconds."""
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting for " + what
        time.sleep(0.005)


def wait_stat(sport, name, value):
    wait_until(lambda: fpt.stat_sum(fpt.stats(sport), name) >= value,
               "%s >= %d" % (name, value))


def cfg(port, origin_port, workers=1, maxconn_srv=1, queue=3, queue_to="5s", extra_global="",
        stats=None, maxconn=2000):
    text = f"""global:
  workers: {workers}
  maxconn: {maxconn}
{extra_global}
defaults:
  timeouts: {{ connect: 2s, client: 10s, server: 10s, queue: {queue_to} }}
frontends:
  - {{ name: web, bind: "127.0.0.1:{port}", default_backend: app }}
backends:
  - name: app
    queue_size: {queue}
    servers: [{{ name: s1, address: "127.0.0.1:{origin_port}", maxconn: {maxconn_srv} }}]
"""
    if stats:
        text += 'stats: {bind: "127.0.0.1:%d"}\n' % stats
    return text


def read_status(s):
    """Reads a response head from s; its status code, or 0 if s closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(4096)
        if not d:
            break
        data += d
    return int(data.split(b" ")[1]) if data else 0


class Req(threading.Thread):
    """One GET on its own connection; records status and completion time."""

    def __init__(self, port, path, close_after=None):
        super().__init__(daemon=True)
        self.port, self.path, self.close_after = port, path, close_after
        self.status = None
        self.done_at = None
        self.start()

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % self.path.encode())
        if self.close_after is not None:
            time.sleep(self.close_after)
            s.close()
            self.status = "closed"
            return
        self.status = read_status(s)
        self.done_at = time.monotonic()
        s.close()


def test_drop_oldest_fifo(env):
    origin = RecordingOrigin(0.2, hold=("/r0",))
    port, sport = fpt.free_port(), fpt.free_port()
    fp = fpt.Fastproxy(env["tmp"], cfg(port, origin.port, queue=3, stats=sport), wait=[port])
    try:
        reqs = [Req(port, "/r0")]
        wait_until(lambda: "/r0" in origin.arrived, "r0 at the origin")
        for i in range(1, 5):  # r1..r3 queue; r4 finds the queue full: r1, the oldest, goes
            reqs.append(Req(port, "/r%d" % i))
            wait_stat(sport, "fastproxy_queued_total", i)
        wait_until(lambda: reqs[1].status is not None, "r1's answer")
        assert reqs[1].status == 503 and reqs[0].status is None, "the dropped one not at once"
        time.sleep(0.15)  # every queued request waits at least this long
        origin.release("/r0")
        for r in reqs:
            r.join(10)
        st = [r.status for r in reqs]
        assert st == [200, 503, 200, 200, 200], st
        # Five requests are no overload to tell from noise: the queue stays FIFO, however long
        # they wait (LIFO under overload: test_open_loop_overload_bounded).
        assert origin.served == ["/r0", "/r2", "/r3", "/r4"], origin.served
        s = fpt.stats(sport)
        assert fpt.stat_sum(s, "fastproxy_queue_dropped_oldest_total") == 1, s
        assert fpt.stat_sum(s, "fastproxy_queue_dropped_stale_total") == 0, s
        assert fpt.stat_sum(s, "fastproxy_queue_lifo_total") == 0, s
        assert fpt.stat_max(s, "fastproxy_queue_max") == 3, s
        assert fpt.stat_sum(s, "fastproxy_queued_total") == 4, s
        # The same, per worker and backend. r2, r3 and r4 were served after waiting between
        # 150 ms and about 600 ms (r0 never queued): the histogram and its percentiles say so.
        b = '{worker="0",backend="app"}'
        assert s["fastproxy_queue_dropped_oldest_total" + b] == 1, s
        assert s["fastproxy_queue_max" + b] == 3, s
        h = "fastproxy_queue_delay_seconds"
        le = lambda x: s[h + '_bucket{worker="0",backend="app",le="%s"}' % x]
        assert le("0.1") == 0 and le("1") == 3 and s[h + "_count" + b] == 3, s
        assert 0.3 <= s[h + "_sum" + b] <= 3.0, s
    finally:
        assert fp.stop() == 0
        origin.stop()


def test_fifo_discipline_and_queue_timeout(env):
    origin = RecordingOrigin(0.05, hold=("/f0", "/f1"))
    port, sport = fpt.free_port(), fpt.free_port()
    text = cfg(port, origin.port, queue=8, queue_to="1s", stats=sport,
               extra_global="  overload: { queue_discipline: fifo }")
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    try:
        reqs = [Req(port, "/f0")]
        wait_until(lambda: "/f0" in origin.arrived, "f0 at the origin")
        for i in range(1, 4):
            reqs.append(Req(port, "/f%d" % i))
            wait_stat(sport, "fastproxy_queued_total", i)
        # f1, the oldest, gets the slot at once; f2 and f3 wait behind it for 1 s: 503.
        origin.release("/f0")
        wait_until(lambda: "/f1" in origin.arrived, "f1 at the origin")
        wait_stat(sport, "fastproxy_queue_timeouts_total", 2)
        origin.release("/f1")
        for r in reqs:
            r.join(10)
        assert [r.status for r in reqs] == [200, 200, 503, 503], [r.status for r in reqs]
        assert origin.served == ["/f0", "/f1"], origin.served
        s = fpt.stats(sport)
        assert fpt.stat_sum(s, "fastproxy_queue_timeouts_total") == 2, s
        assert fpt.stat_sum(s, "fastproxy_queue_lifo_total") == 0, s
    finally:
        assert fp.stop() == 0
        origin.stop()


def test_client_left_never_forwarded(env):
    origin = RecordingOrigin(0.05, hold=("/held",))
    port, sport = fpt.free_port(), fpt.free_port()
    fp = fpt.Fastproxy(env["tmp"], cfg(port, origin.port, queue=8, stats=sport), wait=[port])
    try:
        a = Req(port, "/held")
        wait_until(lambda: "/held" in origin.arrived, "the first request at the origin")
        gone = Req(port, "/gone", close_after=0.05)
        wait_stat(sport, "fastproxy_queued_total", 1)
        b = Req(port, "/after")
        wait_stat(sport, "fastproxy_queued_total", 2)
        gone.join(10)
        time.sleep(0.1)  # the proxy sees the close while /gone is still queued
        origin.release("/held")
        for r in (a, gone, b):
            r.join(10)
        assert a.status == 200 and b.status == 200, (a.status, b.status)
        assert origin.served == ["/held", "/after"], origin.served
        assert fpt.stat_sum(fpt.stats(sport), "fastproxy_queue_client_gone_total") == 1
    finally:
        assert fp.stop() == 0
        origin.stop()


def start_slow(slow, port, args):
    """fp-slow-origin on port; stopped again if it does not listen (a leaked origin would
    outlive the test)."""
    origin = fpt.Proc([slow, "-p", str(port)] + args, stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
    if not fpt.wait_port(port, timeout=10):
        origin.stop()
        raise AssertionError("fp-slow-origin did not listen on %d" % port)
    return origin


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_open_loop_overload_bounded(env):
    loadgen, slow = os.environ.get("FP_LOADGEN"), os.environ.get("FP_SLOW_ORIGIN")
    if not loadgen or not slow:
        return fpt.SKIP
    oport, port, sport = fpt.free_port(), fpt.free_port(), fpt.free_port()
    origin = start_slow(slow, oport, ["-s", "8", "-m", "20"])
    text = cfg(port, oport, workers=2, maxconn_srv=8, queue=40, queue_to="300ms", stats=sport,
               maxconn=600)
    path = os.path.join(env["tmp"], "overload.yaml")
    with open(path, "w") as f:
        f.write(text)
    check = subprocess.run([fpt.fastproxy_path(), "-c", "-f", path], capture_output=True,
                           text=True, timeout=10)
    bound = int(check.stdout.split("memory bound: ")[1].split()[0]) << 20
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    try:
        peak = 0
        # Capacity is 8 slots / 20 ms = 400 req/s; offer 4x that, open loop, 3 s.
        lg = subprocess.Popen([loadgen, "-p", str(port), "-r", "1600", "-d", "3", "-c", "512",
                               "-t", "2000", "-P"], stdout=subprocess.PIPE, text=True)
        while lg.poll() is None:
            peak = max(peak, rss_bytes(fp.proc.pid))
            time.sleep(0.05)
        out = json.loads(lg.stdout.read().strip().splitlines()[-1])
        s = fpt.stats(sport)
        print("     offered 1600/s: goodput %.0f/s, 503 %d, timeouts %d, errors %d, p99 ok %.1f ms,"
              " p99 refused %.1f ms; queue max %d/20 per worker, LIFO switches %d, stale drops"
              " %d; idle yielded %d; rss peak %.1f MiB <= bound %d MiB" %
              (out["goodput_rps"], out["non2xx"], out["timeouts"], out["errors"],
               out["p99_us"] / 1000, out["refused_p99_us"] / 1000,
               fpt.stat_max(s, "fastproxy_queue_max"),
               fpt.stat_sum(s, "fastproxy_queue_lifo_total"),
               fpt.stat_sum(s, "fastproxy_queue_dropped_stale_total"),
               fpt.stat_sum(s, "fastproxy_idle_yielded_total"), peak / 2**20,
               bound >> 20))
        assert out["timeouts"] == 0 and out["errors"] == 0, out
        assert out["ok"] + out["non2xx"] == out["scheduled"], out
        assert out["ok"] > 0 and out["non2xx"] > 0, out
        for w in ("0", "1"):
            assert fpt.stat_max(s, "fastproxy_queue_max", worker=w) <= 20, s
        assert peak <= bound, (peak, bound)
        # Overload is detected: LIFO serves the newest, the old are refused for their age.
        # A FIFO queue of 20 per worker at 200/s per worker would make served requests wait
        # about 100 ms and refused ones up to the 300 ms queue timeout; here both stay short
        # (bounds loose for sanitizer builds on a shared machine). The median tells LIFO from
        # FIFO (20-35 ms against over 100 ms); p99 only catches gross delays: on a machine
        # shared with other builds a few scheduling stalls put it at 80-300 ms, in main's
        # code as well.
        assert fpt.stat_sum(s, "fastproxy_queue_lifo_total") >= 1, s
        assert fpt.stat_sum(s, "fastproxy_queue_dropped_stale_total") > 0, s
        # p50: 20-35 ms when the generator's connections all land on one worker (loopback,
        # CPU-steered reuseport: half the slots serve), 55-77 ms when both workers share the
        # load and the machine's two cores (seen in main's code too); FIFO would be over 100.
        assert out["p50_us"] < 90000 and out["p99_us"] < 400000, out
        assert out["refused_p50_us"] < 30000 and out["refused_p99_us"] < 400000, out
    finally:
        assert fp.stop() == 0
        origin.stop()


def get_small(s):
    """Reads one whole response to GET /small.txt (head and 6-byte body may come apart)."""
    data = b""
    while not data.endswith(b"\r\n\r\nsmall\n"):
        d = s.recv(4096)
        if not d:
            break
        data += d
    return data


def test_flood_beyond_maxconn(env):
    port, sport = fpt.free_port(), fpt.free_port()
    text = cfg(port, env["nginx"].port, workers=1, maxconn_srv=0, queue=8, stats=sport,
               maxconn=40, extra_global="  overload: { shed_queue: 8 }")
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    try:
        clients = []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert get_small(s).startswith(b"HTTP/1.1 200")
            # The next request begins: the connection is busy, not idle (idle ones would
            # yield their sessions to the flood: test_idle_keepalive_yields).
            s.sendall(b"GET /small.txt HTTP/1.1\r\n")
            clients.append(s)
        time.sleep(0.1)
        flood = []
        for _ in range(200):
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                pass
        time.sleep(0.3)
        t0 = time.monotonic()
        for s in clients:
            s.sendall(b"Host: x\r\n\r\n")
            got = get_small(s)
            assert got.startswith(b"HTTP/1.1 200"), got
        served_in = time.monotonic() - t0
        shed = 0
        for f in flood:
            f.settimeout(0.01)
            try:
                if f.recv(64).startswith(b"HTTP/1.1 503"):
                    shed += 1
            except OSError:
                pass
        st = fpt.stats(sport)
        shed_503 = fpt.stat_sum(st, "fastproxy_shed_503_total")
        paused = fpt.stat_sum(st, "fastproxy_accept_paused_total")
        print("     10 keep-alive clients served in %.1f ms during a flood of %d; %d shed 503, "
              "accept paused %d times" % (served_in * 1000, len(flood), shed_503, paused))
        assert served_in < 1.0
        assert paused >= 1 and shed_503 >= 1, st
        assert shed >= 1
        for f in flood:
            f.close()
        for s in clients:
            s.close()
        time.sleep(0.3)
        status, body = fpt.http_get(port, "/small.txt")
        assert status == 200 and body == b"small\n"
    finally:
        assert fp.stop() == 0


def test_idle_keepalive_yields(env):
    """At maxconn, the oldest idle keep-alive connections are closed to admit new ones."""
    port, sport = fpt.free_port(), fpt.free_port()
    text = cfg(port, env["nginx"].port, workers=1, maxconn_srv=0, queue=8, stats=sport,
               maxconn=20)
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    try:
        idle = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert get_small(s).startswith(b"HTTP/1.1 200")
            idle.append(s)
            time.sleep(0.01)
        time.sleep(1.1)  # only connections idle for a second yield
        for _ in range(5):  # each takes the session of the oldest idle one
            n = socket.create_connection(("127.0.0.1", port), timeout=5)
            n.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            got = get_small(n)
            assert got.startswith(b"HTTP/1.1 200"), got
            n.close()
        st = fpt.stats(sport)
        print("     20 idle keep-alive connections at maxconn 20, 5 new ones served; "
              "idle_yielded %d, shed_503 %d" % (fpt.stat_sum(st, "fastproxy_idle_yielded_total"),
                                                fpt.stat_sum(st, "fastproxy_shed_503_total")))
        assert fpt.stat_sum(st, "fastproxy_idle_yielded_total") >= 1 and fpt.stat_sum(st, "fastproxy_shed_503_total") == 0, st
        assert fpt.stat_sum(st, "fastproxy_sess_pool_empty_total") == 0, st
        # Oldest first: the first connections were closed (EOF), the newest still serve.
        idle[0].settimeout(2)
        assert idle[0].recv(64) == b""
        last = idle[-1]
        last.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert get_small(last).startswith(b"HTTP/1.1 200")
        for s in idle:
            s.close()
    finally:
        assert fp.stop() == 0


def test_burst_after_stall_served(env):
    """A burst of requests read at once after the worker was off the CPU (SIGSTOP) is not
    overload: the queue serves it FIFO, nothing is refused (issue 15, 0.5x refusals)."""
    slow = os.environ.get("FP_SLOW_ORIGIN")
    if not slow:
        return fpt.SKIP
    oport, port, sport = fpt.free_port(), fpt.free_port(), fpt.free_port()
    # 8 slots x 20 ms: the 48 requests drain in about 120 ms, far within the queue timeout.
    origin = start_slow(slow, oport, ["-s", "8", "-m", "20"])
    text = cfg(port, oport, workers=1, maxconn_srv=8, queue=256, queue_to="2s", stats=sport)
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    socks = []
    try:
        os.kill(fp.proc.pid, signal.SIGSTOP)
        try:
            # The kernel completes the handshakes and buffers the requests while the worker
            # is stopped: when it runs again it reads all 48 within a few milliseconds.
            for _ in range(48):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
        finally:
            os.kill(fp.proc.pid, signal.SIGCONT)
        codes = []
        for s in socks:
            codes.append(read_status(s))
        st = fpt.stats(sport)
        print("     48 requests read at once after SIGSTOP/SIGCONT, 8 slots x 20 ms: %d x 200, "
              "LIFO switches %d, stale refusals %d, queue max %d" %
              (codes.count(200), fpt.stat_sum(st, "fastproxy_queue_lifo_total"),
               fpt.stat_sum(st, "fastproxy_queue_dropped_stale_total"),
               fpt.stat_max(st, "fastproxy_queue_max")))
        assert codes == [200] * 48, codes
        assert fpt.stat_sum(st, "fastproxy_queue_lifo_total") == 0, st
        assert fpt.stat_sum(st, "fastproxy_queue_dropped_stale_total") == 0, st
    finally:
        for s in socks:
            s.close()
        assert fp.stop() == 0
        origin.stop()


def test_slots_looked_at_in_long_iteration(env):
    """Requests read in one long loop iteration keep the server slots working: the slot
    holders' connections are read when their answer is due (slot_poll_answers), a few reads
    per answer rather than one per slot and look (issue 15)."""
    slow = os.environ.get("FP_SLOW_ORIGIN")
    if not slow:
        return fpt.SKIP
    n, slots = 1000, 32
    oport, port, sport = fpt.free_port(), fpt.free_port(), fpt.free_port()
    origin = start_slow(slow, oport, ["-s", str(slots), "-m", "2", "-q", "4096"])
    # FIFO: the burst is no overload, and the queue's age refusals are not what is tested.
    text = cfg(port, oport, workers=1, maxconn_srv=slots, queue=4096, queue_to="10s",
               stats=sport, maxconn=4000, extra_global="  overload: { queue_discipline: fifo }")
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    socks = []
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        # n keep-alive connections, each served once: the server's answer time is known.
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=20))
        first = []
        for i in range(0, n, slots):
            for s in socks[i:i + slots]:
                s.sendall(req)
            first += [read_status(s) for s in socks[i:i + slots]]
        assert first == [200] * n, [c for c in first if c != 200][:10]
        st0 = fpt.stats(sport)
        # Stopped, the worker finds n requests ready when it runs again: one poll returns
        # hundreds of them, read in one iteration that lasts longer than the server's 2 ms.
        os.kill(fp.proc.pid, signal.SIGSTOP)
        try:
            for s in socks:
                s.sendall(req)
        finally:
            os.kill(fp.proc.pid, signal.SIGCONT)
        codes = [read_status(s) for s in socks]
        st = fpt.stats(sport)
        d = {k: fpt.stat_sum(st, "fastproxy_%s_total" % k) - fpt.stat_sum(st0, "fastproxy_%s_total" % k)
             for k in ("srv_send_early", "slot_polls", "slot_poll_reads", "slot_poll_answers")}
        print("     %d requests read at once by a stopped worker, %d slots x 2 ms: %d x 200; "
              "sent at once %d, looks %d, reads %d, answers found %d"
              % (n, slots, codes.count(200), d["srv_send_early"], d["slot_polls"],
                 d["slot_poll_reads"], d["slot_poll_answers"]))
        assert codes == [200] * n, ([c for c in codes if c != 200][:10], st)
        if fpt.URING:
            # A server's answer comes with the ring's next wait: nothing to look for before.
            assert d["slot_poll_reads"] == 0, d
            return None
        # srv_send_early is printed, not asserted: whether a free slot is taken after the 16th
        # head of an iteration depends on how the poll batches the ready connections (0-21
        # in this test's runs).
        assert d["slot_poll_answers"] >= 1, d
        # Due reads only: reading every holder at every look would take 32 per look. Every
        # answer found was a read (a build without the reads counter fails here).
        assert d["slot_poll_answers"] <= d["slot_poll_reads"], d
        assert d["slot_poll_reads"] <= 4 * d["slot_poll_answers"] + 2 * slots, d
    finally:
        for s in socks:
            s.close()
        assert fp.stop() == 0
        origin.stop()


def wrk_run(port, conns, secs, path="/"):
    """wrk -t1 -cCONNS for SECS seconds on port and path; its output, after checking that every
    answer was a 2xx and no socket failed."""
    p = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % secs,
                        "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, text=True,
                       timeout=secs + 30)
    assert p.returncode == 0, p.stderr
    assert "Non-2xx" not in p.stdout and "Socket errors" not in p.stdout, p.stdout
    return p.stdout


def test_auto_limit_follows_answer_times(env):
    """maxconn auto: in front of a server that answers later than the target (a queue of its
    own), the limit shrinks and the requests wait in fastproxy's queue instead, all answered;
    in front of a quick server, a limit that holds requests back grows (issue 13)."""
    slow = os.environ.get("FP_SLOW_ORIGIN")
    if not slow or not shutil.which("wrk"):
        print("     needs fp-slow-origin and wrk")
        return fpt.SKIP
    # 4 slots of 2 ms: 2,000 requests/s. 200 clients without a limit would keep 200 requests
    # at the server, answered after 100 ms; the target (codel_target 5 ms) allows about 10.
    # Held back, they wait in fastproxy's queue under its usual rules: a queue standing for an
    # interval holds what the server drains in one (docs/overload.md), here 1,000 (500 ms).
    oport, port, sport = fpt.free_port(), fpt.free_port(), fpt.free_port()
    origin = start_slow(slow, oport, ["-s", "4", "-m", "2", "-q", "4096"])
    text = cfg(port, oport, workers=1, maxconn_srv="auto", queue=4096, queue_to="10s",
               stats=sport, maxconn=4000,
               extra_global="  overload: { queue_discipline: fifo, codel_interval: 500ms }")
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    try:
        assert fpt.stat_sum(fpt.stats(sport), "fastproxy_server_limit") == 64
        out = wrk_run(port, 200, 2)
        st = fpt.stats(sport)
        lim = fpt.stat_sum(st, "fastproxy_server_limit")
        queued = fpt.stat_sum(st, "fastproxy_queued_total")
        print("     slow server (4 x 2 ms), 200 clients: limit 64 -> %d, %d requests waited in "
              "fastproxy; %s" % (lim, queued,
                                 [l for l in out.splitlines() if "Requests/sec" in l][0].strip()))
        assert 4 <= lim <= 32, st
        assert queued > 0, st
    finally:
        assert fp.stop() == 0
        origin.stop()
    # nginx answers at once: the limit of 64 holds 136 of 200 clients back, and grows. The
    # target is wide here (50 ms) so that a slow build's own loop does not count as the server's.
    port, sport = fpt.free_port(), fpt.free_port()
    text = cfg(port, env["nginx"].port, workers=1, maxconn_srv="auto", queue=4096,
               queue_to="10s", stats=sport, maxconn=4000,
               extra_global="  overload: { queue_discipline: fifo, codel_target: 50ms }")
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    try:
        out = wrk_run(port, 200, 2, "/small.txt")
        st = fpt.stats(sport)
        lim = fpt.stat_sum(st, "fastproxy_server_limit")
        print("     quick server (nginx), 200 clients: limit 64 -> %d; %s" % (
            lim, [l for l in out.splitlines() if "Requests/sec" in l][0].strip()))
        assert lim > 64, st
    finally:
        assert fp.stop() == 0


def retry_storm(env, delay_ms):
    """4x open-loop load whose clients retry every refusal (3 times, at once or delay_ms
    later): the proxy keeps serving near the origin's capacity, and it is back to idle within a
    second of the end."""
    loadgen, slow = os.environ.get("FP_LOADGEN"), os.environ.get("FP_SLOW_ORIGIN")
    if not loadgen or not slow:
        return fpt.SKIP
    oport, port, sport = fpt.free_port(), fpt.free_port(), fpt.free_port()
    # Capacity 8 slots / 50 ms = 160 req/s: small, so that the test measures the proxy's
    # policy rather than the CPU a shared machine (or a sanitizer build) lends it.
    origin = start_slow(slow, oport, ["-s", "8", "-m", "50"])
    text = cfg(port, oport, workers=1, maxconn_srv=8, queue=1024, queue_to="1s", stats=sport,
               maxconn=2000)
    fp = fpt.Fastproxy(env["tmp"], text, wait=[port])
    try:
        cap = 160
        samples = []
        lg = subprocess.Popen([loadgen, "-p", str(port), "-r", str(4 * cap), "-d", "3", "-c",
                               "1024", "-t", "2000", "-P", "--retries", "3",
                               "--retry-delay", str(delay_ms)],
                              stdout=subprocess.PIPE, text=True)
        while lg.poll() is None:
            samples.append(fpt.stats(sport))
            time.sleep(0.2)
        out = json.loads(lg.stdout.read().strip().splitlines()[-1])
        t_end = time.monotonic()
        after = None
        while time.monotonic() - t_end < 1.0:
            s = fpt.stats(sport)
            if (fpt.stat_sum(s, "fastproxy_sessions_active") <= 2
                    and fpt.stat_sum(s, "fastproxy_slots_busy") == 0
                    and fpt.stat_sum(s, "fastproxy_queue_len") == 0):
                after = time.monotonic() - t_end
                break
            time.sleep(0.05)
        peak = max(fpt.stat_sum(x, "fastproxy_sessions_active") for x in samples) if samples else 0
        print("     offered %d/s (4x), 3 retries %s: logical goodput %.0f/s (%.0f%%), "
              "%.2f tries per request, p99 %.0f ms, timeouts %d; proxy: %d requests, %d retries, "
              "%d stale refusals, %d queue timeouts, sessions peak %d, idle again after %s" %
              (4 * cap, "after %d ms" % delay_ms if delay_ms else "at once", out["goodput_rps"],
               out["goodput_rps"] / cap * 100, out["attempts_per_req"], out["p99_us"] / 1000,
               out["timeouts"], fpt.stat_sum(s, "fastproxy_http_requests_total"),
               fpt.stat_sum(s, "fastproxy_http_retries_total"),
               fpt.stat_sum(s, "fastproxy_queue_dropped_stale_total"),
               fpt.stat_sum(s, "fastproxy_queue_timeouts_total"), peak,
               "%.0f ms" % (after * 1000) if after is not None else "NOT within 1 s: %s" % {
                   k: fpt.stat_sum(s, k) for k in ("fastproxy_sessions_active",
                                                    "fastproxy_slots_busy", "fastproxy_queue_len")}))
        # The clients did retry, and the proxy saw them as retries.
        assert out["retries"] > 0 and fpt.stat_sum(s, "fastproxy_http_retries_total") > 0, out
        # Logical goodput: requests that got a 2xx on any try within 2 s of the first. When
        # the proxy collapsed it was a few % of capacity (issue 15); healthy runs give 90-97 %
        # on a loaded 2-core machine, and the bound leaves room for a sanitizer build.
        assert out["goodput_rps"] >= 0.5 * cap, out
        # Every logical request ends (2xx, refusal after its last try, or its deadline): none
        # is lost, and most are not timeouts (a stuck proxy times them all out).
        assert out["ok"] + out["non2xx"] + out["timeouts"] + out["errors"] == out["scheduled"], out
        assert out["timeouts"] < 0.1 * out["scheduled"], out
        assert after is not None, "sessions, slots or queue still busy 1 s after the load"
    finally:
        assert fp.stop() == 0
        origin.stop()


def test_retry_storm_no_collapse(env):
    return retry_storm(env, 0)


def test_retry_storm_delayed(env):
    return retry_storm(env, 100)


def main():
    tmp = fpt.tmpdir()
    nginx = fpt.Nginx(tmp, {"small.txt": b"small\n"})
    env = {"tmp": tmp, "nginx": nginx}
    r = fpt.Runner()
    try:
        r.run("full queue drops the oldest; no overload: FIFO", test_drop_oldest_fifo,
              env)
        r.run("fifo discipline and queue timeout 503", test_fifo_discipline_and_queue_timeout, env)
        r.run("a request whose client left is never forwarded", test_client_left_never_forwarded,
              env)
        r.run("open loop at 4x capacity: LIFO, old refused fast, bounded queue and memory",
              test_open_loop_overload_bounded, env)
        r.run("a burst read after the worker was stopped is served, not refused",
              test_burst_after_stall_served, env)
        r.run("a long loop iteration keeps the server slots working",
              test_slots_looked_at_in_long_iteration, env)
        r.run("maxconn auto: the limit follows the server's answer times",
              test_auto_limit_follows_answer_times, env)
        r.run("flood beyond maxconn: established clients still served", test_flood_beyond_maxconn,
              env)
        r.run("at maxconn idle keep-alive connections yield, oldest first",
              test_idle_keepalive_yields, env)
        r.run("4x load with immediate retries: no collapse, idle within 1 s after",
              test_retry_storm_no_collapse, env)
        r.run("4x load with retries after 100 ms: no collapse, idle within 1 s after",
              test_retry_storm_delayed, env)
    finally:
        nginx.stop()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    r.finish()


if __name__ == "__main__":
    main()
