#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""mode: http end to end: fastproxy (2 workers) in front of a real nginx, driven by curl, wrk
and raw sockets. Every check reads what the client and the origin really saw. FP_IO selects
the backend (kernel by default; dpdk: see fpt.enter_backend)."""

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time

import fpt

fpt.enter_backend()

SCALE = int(os.environ.get("FP_TEST_BIG_MIB", "100"))
BIG = os.urandom(SCALE << 20)
TEXT = b"".join(b"line %06d of a text that compresses well\n" % i for i in range(6000))


class Reader:
    """Reads HTTP/1.1 responses off a socket by their framing (RFC 9112 section 6.3)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def response(self, method="GET"):
        status_line = self.line()
        status = int(status_line.split(b" ")[1])
        headers = {}
        while True:
            l = self.line()
            if not l:
                break
            k, v = l.split(b":", 1)
            headers[k.strip().lower().decode()] = v.strip().decode()
        body = b""
        if method == "HEAD" or status in (204, 304) or status < 200:
            pass
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    break
                body += self.exact(size)
                assert self.exact(2) == b"\r\n"
        elif "content-length" in headers:
            body = self.exact(int(headers["content-length"]))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                body, self.buf = self.buf, b""
        return status, headers, body

    def closed(self, timeout=3):
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True


def conn(port):
    s = socket.create_connection((fpt.host_of(port), port), timeout=10)
    return s, Reader(s)


def curl(*args, timeout=120):
    p = subprocess.run(["curl", "-s", "-S"] + list(args), capture_output=True, timeout=timeout)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def origin_lines(env, needle):
    return [l for l in env["nginx"].access_log() if needle in l]


def test_curl_keepalive(env):
    out = curl("-v", fpt.url(env["port"], "/small.txt"), fpt.url(env["port"], "/small.txt"))
    assert out == b"small\n" * 2, out
    p = subprocess.run(["curl", "-sv", "-o", "/dev/null", "-o", "/dev/null",
                        fpt.url(env["port"], "/small.txt"),
                        fpt.url(env["port"], "/small.txt")],
                       capture_output=True, timeout=10)
    err = p.stderr.decode()
    assert "Re-using existing connection" in err, err
    assert "Connection: close" not in err, err


def test_origin_connection_reuse(env):
    before = set(l.split()[0] for l in origin_lines(env, "/reuse.txt"))
    assert not before
    for _ in range(60):
        assert curl(fpt.url(env["port"], "/reuse.txt")) == b"reuse\n"
    lines = env["nginx"].access_lines("/reuse.txt", 60)
    conns = set(l.split()[0] for l in lines)
    print("     60 requests on 60 client connections -> %d origin connections" % len(conns))
    assert len(lines) == 60, len(lines)
    assert len(conns) <= 4, conns


def test_pipelining_in_order(env):
    s, r = conn(env["port"])
    s.sendall(b"".join(b"GET /%s.txt HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in (b"a", b"b", b"c")) +
              b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = [r.response()[2] for _ in range(3)]
    assert got == [b"A" * 3000, b"B" * 5, b"C" * 70000], [len(g) for g in got]
    st, h, body = r.response("HEAD")
    assert st == 200 and h["content-length"] == "3000" and body == b""
    st, h, body = r.response()
    assert body == b"B" * 5 and h.get("connection") == "close"
    assert r.closed()
    s.close()


def test_pipelined_after_big_body(env):
    # A request right behind a 2 MiB body, in the same send: the body's reads stop at its end
    # (with maxpipes they go through a pipe, which cannot give back what it read too far), so
    # the next request is parsed and answered, and the origin gets exactly the body.
    body = os.urandom(2 << 20)
    s, r = conn(env["port"])
    threading.Thread(target=s.sendall, daemon=True, args=(
        b"PUT /dav/piped.bin HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) +
        body + b"GET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",)).start()
    st, _, _ = r.response()
    assert st in (201, 204), st
    st, h, got = r.response()
    assert st == 200 and got == b"B" * 5 and h.get("connection") == "close", (st, h, got)
    assert r.closed()
    s.close()
    with open(os.path.join(env["nginx"].www, "dav", "piped.bin"), "rb") as f:
        assert fpt.sha256(f.read()) == fpt.sha256(body)


def test_chunked_request_body(env):
    path = os.path.join(env["tmp"], "chunked-up.bin")
    data = os.urandom(3 << 20)
    with open(path, "wb") as f:
        f.write(data)
    curl("-f", "-T", path, "-H", "Transfer-Encoding: chunked",
         fpt.url(env["port"], "/dav/chunked.bin"))
    with open(os.path.join(env["nginx"].www, "dav", "chunked.bin"), "rb") as f:
        assert fpt.sha256(f.read()) == fpt.sha256(data)
    # Chunked, with extensions and a trailer, from a raw socket.
    s, r = conn(env["port"])
    s.sendall(b"PUT /dav/raw.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    st, _, _ = r.response()
    assert st in (201, 204), st
    s.close()
    with open(os.path.join(env["nginx"].www, "dav", "raw.txt"), "rb") as f:
        assert f.read() == b"hello world"


def test_chunked_response(env):
    s, r = conn(env["port"])
    s.sendall(b"GET /text.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
              b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body = r.response()
    assert st == 200 and h.get("transfer-encoding") == "chunked", h
    import gzip
    assert gzip.decompress(body) == TEXT
    assert r.response()[2] == b"small\n"  # the connection survived the chunked body
    s.close()
    # An HTTP/1.0 client must not get chunked coding (RFC 9112 section 6.1).
    s, r = conn(env["port"])
    s.sendall(b"GET /text.txt HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
    st, h, body = r.response()
    assert st == 200 and "transfer-encoding" not in h, h
    assert gzip.decompress(body) == TEXT
    s.close()
    out = curl("--compressed", fpt.url(env["port"], "/text.txt"))
    assert out == TEXT


def spliced(env):
    return fpt.stat_sum(fpt.stats(env["stats_port"]), "fastproxy_io_splice_out_bytes_total")


def test_big_upload_and_download(env):
    splice0 = spliced(env)
    path = os.path.join(env["tmp"], "big-up.bin")
    with open(path, "wb") as f:
        f.write(BIG)
    t0 = time.monotonic()
    curl("-f", "-T", path, fpt.url(env["port"], "/dav/big-up.bin"), timeout=300)
    up = time.monotonic() - t0
    with open(os.path.join(env["nginx"].www, "dav", "big-up.bin"), "rb") as f:
        assert fpt.sha256(f.read()) == fpt.sha256(BIG)
    t0 = time.monotonic()
    got = curl("-f", fpt.url(env["port"], "/big.bin"), timeout=300)
    down = time.monotonic() - t0
    assert len(got) == len(BIG) and fpt.sha256(got) == fpt.sha256(BIG)
    print("     %d MiB up %.2fs, down %.2fs, sha256 equal" % (SCALE, up, down))
    if fpt.SPLICE and fpt.IO == "kernel":
        # With maxpipes, both bodies (framed by their length) went socket -> pipe -> socket:
        # all but the first reads, which show a transfer is a large one.
        moved = spliced(env) - splice0
        print("     %d of %d body bytes spliced" % (moved, 2 * len(BIG)))
        assert moved >= 2 * len(BIG) * 9 // 10, (moved, 2 * len(BIG))


def test_head_204_304(env):
    s, r = conn(env["port"])
    s.sendall(b"HEAD /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body = r.response("HEAD")
    assert st == 200 and h["content-length"] == "6" and body == b""
    etag = h["etag"]
    s.sendall(b"GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body = r.response()
    assert st == 204 and body == b""
    s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n" % etag.encode())
    st, h, body = r.response()
    assert st == 304 and body == b"", st
    s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body = r.response()
    assert st == 200 and body == b"small\n"
    s.close()


def test_100_continue(env):
    s, r = conn(env["port"])
    s.sendall(b"PUT /dav/cont.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: 8\r\n\r\n")
    st, h, _ = r.response()
    assert st == 100, st
    s.sendall(b"continue")
    st, h, _ = r.response()
    assert st in (201, 204), st
    s.close()
    with open(os.path.join(env["nginx"].www, "dav", "cont.txt"), "rb") as f:
        assert f.read() == b"continue"
    # curl sends Expect: 100-continue itself for a large upload.
    path = os.path.join(env["tmp"], "cont.bin")
    with open(path, "wb") as f:
        f.write(BIG[:2 << 20])
    p = subprocess.run(["curl", "-sv", "-f", "-H", "Expect: 100-continue", "-T", path,
                        fpt.url(env["port"], "/dav/cont.bin")],
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and b"HTTP/1.1 100 Continue" in p.stderr, p.stderr[-500:]


def test_routing(env):
    port = env["port"]
    assert curl("-H", "Host: api.example.com", fpt.url(port, "/v1/users")) == \
        b"api /v1/users\n"
    assert curl("-H", "Host: API.Example.com:8080", fpt.url(port, "/v1/x")) == \
        b"api /v1/x\n"
    assert curl("-H", "Host: api.example.com", fpt.url(port, "/small.txt")) == \
        b"small\n"
    assert curl("-H", "Host: shop.example.org", fpt.url(port, "/any")) == \
        b"org /any\n"
    assert curl("-H", "Host: example.org", fpt.url(port, "/small.txt")) == b"small\n"
    s, r = conn(port)
    s.sendall(b"GET http://api.example.com/v1/abs HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
    assert r.response()[2] == b"api /v1/abs\n"
    s.sendall(b"GET http://shop.example.org?q=1 HTTP/1.1\r\nHost: shop.example.org\r\n\r\n")
    assert r.response()[2] == b"org /?q=1\n"
    s.close()


def test_forwarded_for_and_hop_by_hop(env):
    n = len(origin_lines(env, "/small.txt"))
    s, r = conn(env["port"])
    s.sendall(b"GET /small.txt?hop HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\n"
              b"X-Secret: 1\r\nTE: trailers\r\nKeep-Alive: timeout=5\r\n\r\n")
    assert r.response()[2] == b"small\n"
    s.close()
    line = env["nginx"].access_lines("/small.txt", n + 1)[-1]
    xff = "xff=%s " % fpt.client_host(env["port"])
    assert xff in line and "conn=- " in line and "te=-" in line, line


def test_smuggling_rejected(env):
    before = len(env["nginx"].access_log())
    s, r = conn(env["port"])
    s.sendall(b"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
              b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, _ = r.response()
    assert st == 400 and h.get("connection") == "close", (st, h)
    assert r.closed()
    s.close()
    time.sleep(0.2)
    after = env["nginx"].access_log()
    assert len(after) == before, after[before:]


def raw_status(port, data, wait_close=True, pause=None):
    s, r = conn(port)
    s.sendall(data)
    if pause:
        time.sleep(pause)
    st = r.response()[0]
    if wait_close:
        assert r.closed(), "connection left open after %d" % st
    s.close()
    return st


def test_error_statuses(env):
    sp = env["stats_port"]
    before = fpt.stats(sp)
    small = env["small_port"]
    cases = [
        ("400 bad header", env["port"], b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        ("400 bare LF", env["port"], b"GET / HTTP/1.1\nHost: x\n\n", 400),
        ("505 version", env["port"], b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("501 coding", env["port"],
         b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501),
        ("414 long uri", small, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ("431 headers", small,
         b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(30)) +
         b"\r\n", 431),
        ("413 body", small, b"POST /dav/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
         b"z" * 5000, 413),
        ("502 refused", env["dead_port"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 502),
        ("503 no server", env["off_port"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 503),
    ]
    for name, port, data, expect in cases:
        st = raw_status(port, data, wait_close=expect < 500 or expect in (501, 505))
        assert st == expect, (name, st)
    # A gateway error after a whole request keeps the connection: the next request on it is
    # answered too (here: the same error again).
    for port, expect in ((env["dead_port"], 502), (env["off_port"], 503)):
        s, r = conn(port)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        st1, h1, _ = r.response()
        st2, h2, _ = r.response()
        assert (st1, st2) == (expect, expect) and h1["connection"] == "keep-alive", (st1, h1)
        s.close()
    t0 = time.monotonic()
    assert raw_status(env["slow_port"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                      wait_close=False) == 504
    assert 0.8 < time.monotonic() - t0 < 5
    t0 = time.monotonic()
    assert raw_status(env["port"], b"GET /small.txt HTTP/1.1\r\nHost: x\r\n") == 408
    assert 0.8 < time.monotonic() - t0 < 5
    after = fpt.stats(sp)
    for code, n in (("400", 2), ("505", 1), ("501", 1), ("414", 1), ("431", 1), ("413", 1),
                    ("502", 3), ("503", 3), ("504", 1), ("408", 1)):
        d = (fpt.stat_sum(after, "fastproxy_http_errors_total", code=code) -
             fpt.stat_sum(before, "fastproxy_http_errors_total", code=code))
        assert d == n, (code, d)


def test_access_log(env):
    assert curl(fpt.url(env["port"], "/small.txt?logme")) == b"small\n"
    raw_status(env["port"], b"GET /?badlog HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    time.sleep(0.4)
    log = env["fp"].read_log()
    ok = [l for l in log.splitlines() if '"GET /small.txt?logme"' in l]
    assert len(ok) == 1, log[-2000:]
    f = ok[0].split()
    # client [date] frontend backend/server status bytes_in bytes_out Tq/Tc/Tr/Tt "request"
    # (bytes_in: the request head, no body here)
    assert f[0].startswith(fpt.client_host(env["port"]) + ":"), ok[0]
    assert f[2] == "web" and f[3] == "app/n1", ok[0]
    assert f[4] == "200" and int(f[5]) > 20 and int(f[6]) > 6, ok[0]
    assert all(int(x) >= 0 for x in f[7].split("/")), ok[0]
    assert any(" web app/- 400 " in l for l in log.splitlines()), log[-2000:]


def test_wrk_keepalive(env):
    if not shutil.which("wrk"):
        return fpt.SKIP
    p = subprocess.run(["wrk", "-t2", "-c50", "-d2s", fpt.url(env["port"], "/small.txt")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    print("     " + [l for l in out.splitlines() if "Requests/sec" in l][0].strip())
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    reqs = int(out.split(" requests in ")[0].split()[-1])
    assert reqs > 1000, out


def hanging_origin():
    """Accepts connections and never answers (for 504)."""
    srv = socket.socket()
    srv.bind((fpt.ORIGIN_BIND, 0))
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
    api_port, org_port = fpt.free_port(), fpt.free_port()
    files = {"big.bin": BIG, "small.txt": b"small\n", "reuse.txt": b"reuse\n",
             "a.txt": b"A" * 3000, "b.txt": b"B" * 5, "c.txt": b"C" * 70000, "text.txt": TEXT}
    extra_http = ("gzip on; gzip_types text/plain; gzip_min_length 100; gzip_http_version 1.0;\n"
                  "  server { listen %s:%d; location / { return 200 \"api $request_uri\\n\"; } }\n"
                  "  server { listen %s:%d; location / { return 200 \"org $request_uri\\n\"; } }\n"
                  % (fpt.ORIGIN_BIND, api_port, fpt.ORIGIN_BIND, org_port))
    extra_server = ("location /dav/ { dav_methods PUT; create_full_put_path on; }\n"
                    "    location = /nocontent { return 204; }\n")
    nginx = fpt.Nginx(tmp, files, extra_http=extra_http, extra_server=extra_server)
    hang = hanging_origin()
    ports = {k: fpt.free_port() for k in ("port", "small_port", "dead_port", "off_port",
                                          "slow_port", "stats_port")}
    splice = "  maxpipes: %d\n" % fpt.SPLICE if fpt.SPLICE and fpt.IO == "kernel" else ""
    cfg = f"""global:
  workers: 2
  maxconn: 2000
{splice}defaults:
  timeouts: {{ connect: 2s, client: 10s, server: 1s, http_request: 1s, keep_alive: 5s }}
frontends:
  - name: web
    bind: ["127.0.0.1:{ports['port']}"]
    mode: http
    forwarded_for: true
    access_log: true
    routes:
      - {{ host: "api.example.com", path_prefix: "/v1/", backend: api }}
      - {{ host: "*.example.org", backend: org }}
    default_backend: app
  - name: small
    bind: ["127.0.0.1:{ports['small_port']}"]
    limits: {{ request_line: 1k, headers: 20, body_size: 1k }}
    default_backend: app
  - {{ name: dead, bind: "127.0.0.1:{ports['dead_port']}", default_backend: dead }}
  - {{ name: off, bind: "127.0.0.1:{ports['off_port']}", default_backend: off }}
  - {{ name: slow, bind: "127.0.0.1:{ports['slow_port']}", default_backend: slow }}
backends:
  - name: app
    servers: [{{ name: n1, address: "127.0.0.1:{nginx.port}" }}]
  - {{ name: api, servers: [{{ name: a1, address: "127.0.0.1:{api_port}" }}] }}
  - {{ name: org, servers: [{{ name: o1, address: "127.0.0.1:{org_port}" }}] }}
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
        r.run("curl keep-alive through conf", test_curl_keepalive, env)
        r.run("origin sees fewer connections than requests", test_origin_connection_reuse, env)
        r.run("pipelined requests answered in order", test_pipelining_in_order, env)
        r.run("a request pipelined right behind a 2 MiB body", test_pipelined_after_big_body,
              env)
        r.run("chunked request bodies", test_chunked_request_body, env)
        r.run("chunked response body", test_chunked_response, env)
        r.run("%d MiB upload and download checksummed" % SCALE, test_big_upload_and_download,
              env)
        r.run("HEAD, 204 and 304 keep the connection", test_head_204_304, env)
        r.run("Expect: 100-continue", test_100_continue, env)
        r.run("routing by host and path", test_routing, env)
        r.run("X-Forwarded-For added, hop-by-hop dropped", test_forwarded_for_and_hop_by_hop,
              env)
        r.run("CL+TE smuggling rejected, nothing reaches the origin", test_smuggling_rejected,
              env)
        r.run("error statuses 400 408 413 414 431 501 502 503 504 505", test_error_statuses, env)
        r.run("access log lines written by the main thread", test_access_log, env)
        r.run("wrk keep-alive, no errors", test_wrk_keepalive, env)
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
