#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""mode: http framing in both directions (issue 14) and keep-alive and timeout blame (issue 12
items 2 and 3). A raw-socket origin misbehaves on purpose (chunked to HTTP/1.0, Content-Length
lists, broken chunk lines) and the checks compare the exact bytes the client receives; a real
nginx origin closes its connections after two requests, or waits for a body that never comes."""

import shutil
import socket
import subprocess
import threading
import time

import fpt

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# Path -> list of (delay in s, bytes) the raw origin sends after the request head.
SCRIPTS = {
    b"/ok": [(0, OK)],
    b"/chunked": [(0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
                      b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")],
    b"/chunked-slow": [(0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
                       (0.2, b"lo\r\n"), (0.2, b"6\r\n world\r\n0\r\n\r\n")],
    b"/chunked-gzip": [(0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                           b"2\r\nxx\r\n0\r\n\r\n")],
    b"/head-chunked": [(0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")],
    b"/cl-list": [(0, b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello")],
    b"/cl-twice": [(0, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-B: 2\r\n"
                       b"content-length: 5\r\n\r\nhello")],
    b"/cl-differ": [(0, b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello")],
    b"/bad-chunk-size": [(0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"zz\r\nhello\r\n0\r\n\r\n")],
    b"/chunk-no-crlf": [(0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhelloX0\r\n\r\n")],
    b"/bad-length": [(0, b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello")],
    b"/bad-chunk-late": [(0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nhello\r\n"), (0.3, b"zz\r\n")],
    b"/early-answer": [(0, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")],
    b"/expect-hang": [],
    b"/interim": [(0, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n"
                      b"\r\n" + OK)],
}
# Paths answered as soon as the head is in, without waiting for the request body.
EARLY = (b"/early-answer", b"/expect-hang")


class RawOrigin:
    """Answers each request head with the script named by its path, on a keep-alive
    connection, and records the request heads it received."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.heads.append(head)
                path = head.split(b" ")[1]
                for k, v in (l.split(b":", 1) for l in head.split(b"\r\n")[1:]):
                    if k.lower() == b"content-length" and path not in EARLY:
                        n = int(v)
                        while len(buf) < n:
                            buf += c.recv(65536)
                        buf = buf[n:]
                for delay, data in SCRIPTS.get(path, [(0, OK)]):
                    time.sleep(delay)
                    c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.sock.close()


def exchange(port, data, pause=None, more=None):
    """Sends data, optionally more after pause, and returns all bytes up to the proxy's close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    if more is not None:
        time.sleep(pause)
        s.sendall(more)
    try:
        return fpt.recv_all(s)
    except ConnectionResetError:
        s.close()
        return None


def page(code, text, conn):
    body = text.encode() + b"\n"
    return (b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: %s\r\n\r\n" % (code, text.encode(), len(body), conn.encode()) + body)


def fresh_ok(port):
    """A following request on a fresh connection is served normally."""
    assert exchange(port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == \
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def stat_delta(env, before, name):
    """The change of counter name (all workers); "http_502" is the proxy's own 502s."""
    fam, labels = "fastproxy_%s_total" % name, {}
    if name[5:].isdigit():
        fam, labels = "fastproxy_http_errors_total", {"code": name[5:]}
    after = fpt.stats(env["stats_port"])
    return fpt.stat_sum(after, fam, **labels) - fpt.stat_sum(before, fam, **labels)


def test_bad_framing_502(env):
    port = env["raw"]
    before = fpt.stats(env["stats_port"])
    for path in (b"/bad-chunk-size", b"/chunk-no-crlf", b"/bad-length"):
        got = exchange(port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
        assert got == page(502, "Bad Gateway", "close"), (path, got)
        fresh_ok(port)
    # A keep-alive client keeps its connection after the 502: the request was whole.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /bad-chunk-size HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert fpt.recv_all(s) == page(502, "Bad Gateway", "keep-alive") + \
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    assert stat_delta(env, before, "http_rsp_bad_body") == 3
    assert stat_delta(env, before, "http_rsp_bad_head") == 1
    assert stat_delta(env, before, "http_502") == 4
    time.sleep(0.3)
    log = env["fp"].read_log()
    assert '"GET /bad-chunk-size" server-bad-body "invalid chunk size"' in log, log[-2000:]
    assert '"GET /chunk-no-crlf" server-bad-body "missing CRLF after chunk data"' in log
    assert '"GET /bad-length" server-bad-head "invalid content-length"' in log


def test_bad_framing_after_start_closes(env):
    port = env["raw"]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /bad-chunk-late HTTP/1.1\r\nHost: x\r\n\r\n")
    got, _ = read_until_close(s)
    # The head and the first chunk went out as they came; then the connection is cut, with
    # no last chunk: the client sees an incomplete body, never a spliced 502.
    assert got == (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"), got
    fresh_ok(port)


def test_keepalive_survives_server_close(env):
    """Issue 12 item 2: nginx closes its connection after every second request; the client's
    connection must not follow it."""
    if not shutil.which("curl"):
        return fpt.SKIP
    urls = ["http://127.0.0.1:%d/ka%d.txt" % (env["web"], i) for i in range(6)]
    p = subprocess.run(["curl", "-sv"] + urls, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"small\n" * 6, p.stdout
    err = p.stderr.decode()
    assert err.count("Connected to") == 1, err
    assert err.count("Re-using existing connection") == 5, err
    assert "Connection: close" not in err, err
    conns = [l.split()[0] for l in env["nginx"].access_lines(" /ka", 6)]
    print("     6 requests on 1 client connection -> %d origin connections" % len(set(conns)))
    assert len(conns) == 6 and len(set(conns)) == 3, conns


def test_no_chunked_to_http10(env):
    """Issue 14 item 1 (RFC 9112 section 6.1): a server that answers an HTTP/1.0 request with
    a chunked body anyway: the client gets the body decoded, delimited by Content-Length when
    the whole body came with the head, else by the close."""
    port = env["raw"]
    before = fpt.stats(env["stats_port"])
    assert exchange(port, b"GET /chunked HTTP/1.0\r\n\r\n") == \
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world"
    # The request went upstream as HTTP/1.0; the server chunked it all the same.
    assert env["origin"].heads[-1] == b"GET /chunked HTTP/1.0\r\nConnection: keep-alive", \
        env["origin"].heads[-1]
    # A keep-alive HTTP/1.0 client keeps its connection when the length is known...
    assert exchange(port, b"GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                          b"GET /ok HTTP/1.0\r\n\r\n") == \
        (b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n"
         b"hello world"
         b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    # ...and loses it when the chunks come split over several reads (the chunk-size line
    # split too): only the close can end that body.
    assert exchange(port, b"GET /chunked-slow HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") \
        == b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world"
    # No Transfer-Encoding either where there is no body (HEAD), and no 1xx (RFC 9110 15.2).
    assert exchange(port, b"HEAD /head-chunked HTTP/1.0\r\n\r\n") == \
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    assert exchange(port, b"GET /interim HTTP/1.0\r\n\r\n") == \
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    # Broken chunks are still a 502 when nothing was sent.
    assert exchange(port, b"GET /bad-chunk-size HTTP/1.0\r\n\r\n") == \
        page(502, "Bad Gateway", "close")
    # A coding the proxy cannot remove: 502, counted, logged.
    assert exchange(port, b"GET /chunked-gzip HTTP/1.0\r\n\r\n") == \
        page(502, "Bad Gateway", "close")
    assert stat_delta(env, before, "http_rsp_bad_head") == 1
    # An HTTP/1.1 client still gets the chunked body and the 1xx as they came.
    assert exchange(port, b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == \
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nConnection: close\r\n\r\n"
         b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert exchange(port, b"GET /interim HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") \
        == (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    time.sleep(0.3)
    assert '"GET /chunked-gzip" server-coding "transfer-encoding in HTTP/1.0"' in \
        env["fp"].read_log()
    fresh_ok(port)


def test_content_length_lists(env):
    """Issue 14 item 2 (RFC 9110 section 8.6): identical Content-Length values, as a list or
    as repeated fields, go on as one field in both directions; different values are refused."""
    port = env["raw"]
    close = b"Host: x\r\nConnection: close\r\n\r\n"
    assert exchange(port, b"GET /cl-list HTTP/1.1\r\n" + close) == \
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    assert exchange(port, b"GET /cl-twice HTTP/1.1\r\n" + close) == \
        b"HTTP/1.1 200 OK\r\nX-B: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    assert exchange(port, b"GET /cl-differ HTTP/1.1\r\n" + close) == \
        page(502, "Bad Gateway", "close")
    for cl in (b"Content-Length: 5, 5\r\n", b"Content-Length: 5\r\ncontent-length: 5\r\n"):
        got = exchange(port, b"POST /ok HTTP/1.1\r\nHost: x\r\n" + cl +
                       b"Connection: close\r\n\r\nhello")
        assert got == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", got
        assert env["origin"].heads[-1] == \
            b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5", env["origin"].heads[-1]
    n = len(env["origin"].heads)
    assert exchange(port, b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello") \
        == page(400, "Bad Request", "close")
    assert len(env["origin"].heads) == n
    fresh_ok(port)


def read_until_close(s):
    """Reads s until the peer closes or resets it; returns (bytes, seconds)."""
    t0 = time.monotonic()
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except ConnectionResetError:
        pass
    s.close()
    return got, time.monotonic() - t0


def test_client_stall_blamed(env):
    """Issue 12 item 3: with client 3s and server 12s, a client that sends 10 of 100 body bytes
    gets 408 after about 3 s, logged and counted as its own timeout, and the server
    connection that holds the half request is closed, not reused."""
    before = fpt.stats(env["stats_port"])
    s = socket.create_connection(("127.0.0.1", env["web"]), timeout=20)
    s.sendall(b"PUT /dav/stall.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
              b"0123456789")
    got, dt = read_until_close(s)
    print("     408 after %.2f s" % dt)
    assert got == page(408, "Request Timeout", "close"), got
    assert 2.5 < dt < 6, dt
    assert stat_delta(env, before, "client_timeouts") == 1
    assert stat_delta(env, before, "http_408") == 1
    assert stat_delta(env, before, "http_504") == 0
    time.sleep(0.3)
    assert '"PUT /dav/stall.txt" client-timeout' in env["fp"].read_log()
    stalled = [l.split()[0] for l in env["nginx"].access_lines("/dav/stall.txt", 1)]
    assert len(stalled) == 1, env["nginx"].access_log()
    n = len(env["nginx"].access_lines(" /ka1.txt", 0))
    out = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/ka1.txt?after" % env["web"]],
                         capture_output=True, timeout=10).stdout
    assert out == b"small\n", out
    after = [l.split()[0] for l in env["nginx"].access_lines(" /ka1.txt", n + 1)][-1]
    assert after != stalled[0], (after, stalled)


def test_client_stall_after_response_began(env):
    """The same stall once the server has begun its answer: the client connection is cut
    after the client timeout, and the response is not completed or spliced."""
    before = fpt.stats(env["stats_port"])
    s = socket.create_connection(("127.0.0.1", env["raw"]), timeout=20)
    s.sendall(b"PUT /early-answer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
              b"0123456789")
    got, dt = read_until_close(s)
    assert got == b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello", got
    assert 2.5 < dt < 6, dt
    assert stat_delta(env, before, "client_timeouts") == 1
    assert stat_delta(env, before, "http_504") == 0
    time.sleep(0.3)
    assert '"PUT /early-answer" client-timeout' in env["fp"].read_log()
    fresh_ok(env["raw"])


def test_expect_continue_waits_for_server(env):
    """A client that sent Expect: 100-continue waits for the server before its body: while no
    answer came, the stall is the server's, so no 408 after the client timeout (3 s)."""
    before = fpt.stats(env["stats_port"])
    s = socket.create_connection(("127.0.0.1", env["raw"]), timeout=5)
    s.sendall(b"PUT /expect-hang HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: 10\r\n\r\n")
    try:
        got = s.recv(65536)
    except socket.timeout:
        got = None
    s.close()
    assert got is None, got
    assert stat_delta(env, before, "client_timeouts") == 0


def main():
    tmp = fpt.tmpdir()
    origin = RawOrigin()
    nginx = fpt.Nginx(tmp, dict(("ka%d.txt" % i, b"small\n") for i in range(6)), extra_server="keepalive_requests 2;\n"
                      "    location /dav/ { dav_methods PUT; create_full_put_path on; }\n")
    ports = {k: fpt.free_port() for k in ("raw", "web", "stats_port")}
    cfg = f"""global:
  workers: 1
  maxconn: 200
defaults:
  timeouts: {{ connect: 2s, client: 3s, server: 12s, http_request: 5s, keep_alive: 5s }}
frontends:
  - name: raw
    bind: ["127.0.0.1:{ports['raw']}"]
    mode: http
    access_log: true
    default_backend: raw
  - name: web
    bind: ["127.0.0.1:{ports['web']}"]
    mode: http
    access_log: true
    default_backend: web
backends:
  - {{ name: raw, servers: [{{ name: r1, address: "127.0.0.1:{origin.port}" }}] }}
  - {{ name: web, servers: [{{ name: n1, address: "127.0.0.1:{nginx.port}" }}] }}
stats:
  bind: "127.0.0.1:{ports['stats_port']}"
"""
    r = fpt.Runner()
    fp = None
    try:
        fp = fpt.Fastproxy(tmp, cfg, wait=[ports["raw"]])
        env = dict(ports, tmp=tmp, fp=fp, origin=origin, nginx=nginx)
        r.run("broken response framing before any byte: 502, counted, logged",
              test_bad_framing_502, env)
        r.run("broken response framing after the head: client connection cut",
              test_bad_framing_after_start_closes, env)
        r.run("no Transfer-Encoding toward HTTP/1.0 clients", test_no_chunked_to_http10, env)
        r.run("Content-Length lists normalised, both directions", test_content_length_lists,
              env)
        r.run("client keep-alive survives the server closing after 2 requests",
              test_keepalive_survives_server_close, env)
        r.run("client stalls its body: 408 after the client timeout, server closed",
              test_client_stall_blamed, env)
        r.run("client stalls after the response began: cut after the client timeout",
              test_client_stall_after_response_began, env)
        r.run("Expect: 100-continue unanswered: the server is waited for, no 408",
              test_expect_continue_waits_for_server, env)
    finally:
        rc = fp.stop() if fp is not None else -1
        if rc != 0:
            print("fastproxy exited %s\n%s" % (rc, fp.read_log()[-3000:] if fp else ""))
            r.failed += 1
        origin.stop()
        nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    r.finish()


if __name__ == "__main__":
    main()
