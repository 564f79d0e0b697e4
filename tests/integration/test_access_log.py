# SPDX-License-Identifier: BSD-3-Clause
"""The access log: exactly one line per request, with the bytes really sent, for requests the
server answers, for the responses the proxy writes itself (400 408 413 414 431 501 502 503 504
505), and for transfers cut at the end of the stop's grace period; the bytes_in/bytes_out
counters count the same bytes as the log (real nginx origin, curl, raw sockets, SIGTERM)."""

import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import fpt

BIG = 64 << 20
LINE = re.compile(r'^(\S+) \[[^\]]+\] (\S+) (\S+)/(\S+) (-?\d+) (\d+) (\d+) '
                  r'(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+) "([^"]*)" (\S+)')


def log_lines(fp):
    return [m for m in (LINE.match(l) for l in fp.read_log().splitlines()) if m]


def new_lines(fp, before, want, timeout=3.0):
    """The log lines after the first before ones, once there are want of them (the main
    thread writes lines every 100 ms), plus a short wait for any line too many."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lines = log_lines(fp)[before:]
        if len(lines) >= want:
            break
        time.sleep(0.05)
    time.sleep(0.25)
    return log_lines(fp)[before:]


def exchange(port, data, pause=None):
    """Sends data, reads to the proxy's close; returns every byte received."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    if pause:
        time.sleep(pause)
    return fpt.recv_all(s)


def read_response(s, buf):
    """Reads one response with a Content-Length from s; returns (its bytes, what follows)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        assert d, "closed before a response head"
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(rest) < n:
        d = s.recv(65536)
        assert d, "closed inside a response body"
        rest += d
    return head + b"\r\n\r\n" + rest[:n], rest[n:]


def test_own_responses_logged_once(env):
    fp = env["fp"]
    web, small = env["port"], env["small_port"]
    close = b"Connection: close\r\n"
    cases = [
        (400, web, b"GET /c400 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", None),
        (505, web, b"GET /c505 HTTP/2.0\r\nHost: x\r\n\r\n", None),
        (501, web, b"POST /c501 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
         None),
        (414, small, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", None),
        (431, small, b"GET /c431 HTTP/1.1\r\nHost: x\r\n" +
         b"".join(b"X-%d: y\r\n" % i for i in range(30)) + b"\r\n", None),
        (413, small, b"POST /c413 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
         b"z" * 5000, None),
        (408, web, b"GET /c408 HTTP/1.1\r\nHost: x\r\n", None),
        (502, env["dead_port"], b"GET /c502 HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n", None),
        (503, env["off_port"], b"GET /c503 HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n", None),
        (504, env["slow_port"], b"GET /c504 HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n", None),
    ]
    for status, port, data, pause in cases:
        before = len(log_lines(fp))
        got = exchange(port, data, pause)
        assert got.startswith(b"HTTP/1.1 %d " % status), (status, got[:60])
        lines = new_lines(fp, before, 1)
        assert len(lines) == 1, (status, [l.group(0) for l in lines])
        m = lines[0]
        assert int(m.group(5)) == status, (status, m.group(0))
        assert int(m.group(7)) == len(got), ("bytes_out", status, len(got), m.group(0))
    # A gateway error after a whole request keeps the connection: two requests, two pages,
    # two lines (not one more per page), each with its page's bytes.
    before = len(log_lines(fp))
    s = socket.create_connection(("127.0.0.1", env["dead_port"]), timeout=10)
    s.sendall(b"GET /ka1 HTTP/1.1\r\nHost: x\r\n\r\nGET /ka2 HTTP/1.1\r\nHost: x\r\n\r\n")
    r1, rest = read_response(s, b"")
    r2, _ = read_response(s, rest)
    s.close()
    lines = new_lines(fp, before, 2)
    assert [l.group(12) for l in lines] == ["GET /ka1", "GET /ka2"], \
        [l.group(0) for l in lines]
    assert [int(l.group(7)) for l in lines] == [len(r1), len(r2)], [l.group(0) for l in lines]
    assert all(l.group(5) == "502" for l in lines)


def curl_sizes(opts, urls):
    """Runs one curl for urls (one connection); returns the summed (request bytes, response
    bytes) curl itself counted."""
    fmt = "%{size_request} %{size_header} %{size_download}\\n"  # size_request: head and body
    argv = ["curl", "-s", "-S", "-w", fmt] + opts
    for u in urls:
        argv += ["-o", "/dev/null", u]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    sent = recv = 0
    for row in p.stdout.strip().splitlines():
        a, c, d = (int(x) for x in row.split())
        sent += a
        recv += c + d
    return sent, recv


def test_counters_count_as_the_log(env):
    fp, sp = env["fp"], env["stats_port"]
    time.sleep(0.3)
    before_lines = len(log_lines(fp))
    before = fpt.stats(sp)
    url = "http://127.0.0.1:%d/small.txt" % env["port"]
    sent1, recv1 = curl_sizes([], [url] * 10)
    sent2, recv2 = curl_sizes(["-d", "q" * 1000], ["http://127.0.0.1:%d/post" % env["port"]])
    exchange(env["port"], b"GET /x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    lines = new_lines(fp, before_lines, 12)
    after = fpt.stats(sp)
    assert len(lines) == 12, [l.group(0) for l in lines]
    log_in = sum(int(l.group(6)) for l in lines)
    log_out = sum(int(l.group(7)) for l in lines)
    d_in = (fpt.stat_sum(after, "fastproxy_bytes_in_total") -
            fpt.stat_sum(before, "fastproxy_bytes_in_total"))
    d_out = (fpt.stat_sum(after, "fastproxy_bytes_out_total") -
             fpt.stat_sum(before, "fastproxy_bytes_out_total"))
    print("     12 requests: log %d in / %d out, counters %d / %d, curl %d / %d" %
          (log_in, log_out, d_in, d_out, sent1 + sent2, recv1 + recv2))
    assert (d_in, d_out) == (log_in, log_out)
    # What curl sent (head and body) and received (heads and bodies) is what the log says;
    # one line is the 400, whose head was refused (0 in) and whose page curl did not see. The
    # main thread writes each worker's lines in turn, so the 400 need not be the last line.
    bad = [l for l in lines if l.group(5) == "400"]
    curl_lines = [l for l in lines if l.group(5) != "400"]
    assert len(bad) == 1 and bad[0].group(6) == "0", [l.group(0) for l in lines]
    assert sum(int(l.group(6)) for l in curl_lines) == sent1 + sent2
    assert sum(int(l.group(7)) for l in curl_lines) == recv1 + recv2


def test_grace_cut_logged(env):
    """A download still running when the stop's grace period ends is cut, and logged."""
    port = fpt.free_port()
    cfg = f"""global:
  workers: 1
  maxconn: 100
  grace: 1s
defaults:
  timeouts: {{ connect: 2s, client: 30s, server: 30s }}
frontends:
  - {{ name: web, bind: "127.0.0.1:{port}", access_log: true, default_backend: app }}
backends:
  - name: app
    servers: [{{ name: n1, address: "127.0.0.1:{env['nginx'].port}" }}]
"""
    fp = fpt.Fastproxy(env["tmp"], cfg, wait=[port])
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        got = 0
        while got < 256 << 10:
            got += len(s.recv(65536))
        time.sleep(0.3)  # the proxy fills the socket buffers, then waits for the client
        t0 = time.monotonic()
        rc = fp.stop(signal.SIGTERM)
        took = time.monotonic() - t0
        assert rc == 0, rc
        assert 0.8 < took < 10, took
    finally:
        s.close()
    lines = [l for l in log_lines(fp) if l.group(12) == "GET /big.bin"]
    assert len(lines) == 1, fp.read_log()[-2000:]
    m = lines[0]
    assert m.group(5) == "200" and m.group(13) == "proxy-stop", m.group(0)
    assert got <= int(m.group(7)) < BIG, (got, m.group(0))


def hanging_origin():
    """Accepts connections and never answers (for 504)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held = []

    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            held.append(c)

    threading.Thread(target=loop, daemon=True).start()
    return srv


def main():
    tmp = fpt.tmpdir()
    nginx = fpt.Nginx(tmp, {"small.txt": b"small\n", "big.bin": b"b" * BIG})
    hang = hanging_origin()
    ports = {k: fpt.free_port() for k in ("port", "small_port", "dead_port", "off_port",
                                          "slow_port", "stats_port")}
    cfg = f"""global:
  workers: 2
  maxconn: 2000
defaults:
  timeouts: {{ connect: 2s, client: 10s, server: 1s, http_request: 1s, keep_alive: 5s }}
frontends:
  - {{ name: web, bind: "127.0.0.1:{ports['port']}", access_log: true, default_backend: app }}
  - name: small
    bind: "127.0.0.1:{ports['small_port']}"
    access_log: true
    limits: {{ request_line: 1k, headers: 20, body_size: 1k }}
    default_backend: app
  - {{ name: dead, bind: "127.0.0.1:{ports['dead_port']}", access_log: true,
      default_backend: dead }}
  - {{ name: off, bind: "127.0.0.1:{ports['off_port']}", access_log: true,
      default_backend: off }}
  - {{ name: slow, bind: "127.0.0.1:{ports['slow_port']}", access_log: true,
      default_backend: slow }}
backends:
  - name: app
    servers: [{{ name: n1, address: "127.0.0.1:{nginx.port}" }}]
  - {{ name: dead, servers: [{{ name: d1, address: "127.0.0.1:{fpt.free_port()}" }}] }}
  - {{ name: off, servers: [{{ name: z1, address: "127.0.0.1:{nginx.port}", weight: 0 }}] }}
  - {{ name: slow, servers: [{{ name: h1, address: "127.0.0.1:{hang.getsockname()[1]}" }}] }}
stats:
  bind: "127.0.0.1:{ports['stats_port']}"
"""
    r = fpt.Runner()
    fp = None
    try:
        fp = fpt.Fastproxy(tmp, cfg, wait=[ports["port"]])
        env = dict(ports, tmp=tmp, nginx=nginx, fp=fp)
        r.run("the proxy's own responses: one line each, with the bytes sent",
              test_own_responses_logged_once, env)
        r.run("bytes counters count what the log counts (curl agrees)",
              test_counters_count_as_the_log, env)
        r.run("a transfer cut at the end of the grace period is logged", test_grace_cut_logged,
              env)
    finally:
        rc = fp.stop() if fp is not None else -1
        if rc != 0:
            print("fastproxy exited %s\n%s" % (rc, fp.read_log()[-3000:] if fp else ""))
            r.failed += 1
        nginx.stop()
        hang.close()
        shutil.rmtree(tmp, ignore_errors=True)
    r.finish()


if __name__ == "__main__":
    main()
