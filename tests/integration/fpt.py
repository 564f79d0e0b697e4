# SPDX-License-Identifier: BSD-3-Clause
"""Helpers for fastproxy's integration tests: free ports, a real nginx origin, a Python echo
origin, and fastproxy itself, each started in a private temp dir and stopped by PID.
Standard library only."""

import faulthandler
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKIP = 77


def fastproxy_path():
    p = os.environ.get("FASTPROXY")
    if not p or not os.access(p, os.X_OK):
        sys.stderr.write("FASTPROXY is not set to the fastproxy binary\n")
        sys.exit(SKIP)
    return p


def build_has_dpdk():
    """True when fastproxy was built with DPDK (meson sets FP_HAVE_DPDK for the tests; run by
    hand, the binary's own -c on conf/proxy-dpdk.yaml tells)."""
    v = os.environ.get("FP_HAVE_DPDK")
    if v in ("0", "1"):
        return v == "1"
    root = os.environ.get("FP_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
    p = subprocess.run([fastproxy_path(), "-c", "-f", os.path.join(root, "conf",
                                                                   "proxy-dpdk.yaml")],
                       capture_output=True, text=True, timeout=10)
    return "built without DPDK" not in p.stderr


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=5.0, host="127.0.0.1"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Proc:
    """A child process we started; stop() signals it by PID and waits."""

    def __init__(self, argv, **kw):
        self.p = subprocess.Popen(argv, **kw)

    @property
    def pid(self):
        return self.p.pid

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


class Nginx:
    """nginx from Debian as the origin, in its own prefix, logging each request with the
    connection serial number so tests can count origin connections."""

    def __init__(self, tmp, files=None, extra_http="", extra_server="", port=None):
        self.port = port or free_port()
        self.dir = os.path.join(tmp, "nginx-%d" % self.port)
        self.www = os.path.join(self.dir, "www")
        os.makedirs(self.www)
        for name, data in (files or {}).items():
            path = os.path.join(self.www, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        conf = os.path.join(self.dir, "nginx.conf")
        user = "user root;\n" if os.geteuid() == 0 else ""
        with open(conf, "w") as f:
            f.write(f"""{user}worker_processes 1;
daemon off;
error_log {self.dir}/error.log warn;
pid {self.dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  log_format conn '$connection $request_method $uri $status xff=$http_x_forwarded_for conn=$http_connection te=$http_te';
  access_log {self.dir}/access.log conn;
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/proxy;
  fastcgi_temp_path {self.dir}/fastcgi;
  uwsgi_temp_path {self.dir}/uwsgi;
  scgi_temp_path {self.dir}/scgi;
  keepalive_requests 100000;
  client_max_body_size 0;
  {extra_http}
  server {{
    listen 127.0.0.1:{self.port} reuseport;
    root {self.www};
    {extra_server}
  }}
}}
""")
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(binary, os.X_OK):
            sys.stderr.write("nginx is not installed\n")
            sys.exit(SKIP)
        # No inherited stdout: a leftover child must not hold the test runner's pipe open.
        self.proc = Proc([binary, "-p", self.dir, "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            self.proc.stop()
            raise RuntimeError("nginx did not start: " + open(self.dir + "/error.log").read())

    def access_log(self):
        with open(os.path.join(self.dir, "access.log")) as f:
            return f.read().splitlines()

    def stop(self):
        self.proc.stop(signal.SIGQUIT)


class EchoServer:
    """A threaded TCP echo origin: echoes until the client half-closes, then closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _serve(c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.running = False
        self.sock.close()


class Fastproxy:
    def __init__(self, tmp, yaml_text, env=None, wait=None):
        self.conf = os.path.join(tmp, "fp-%d.yaml" % free_port())
        with open(self.conf, "w") as f:
            f.write(yaml_text)
        self.log = self.conf + ".log"
        self.logf = open(self.log, "wb")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = Proc([fastproxy_path(), "-f", self.conf], stdout=subprocess.DEVNULL,
                         stderr=self.logf, env=e)
        for port in wait or []:
            if not wait_port(port):
                rc = self.stop()
                raise RuntimeError("fastproxy (exit %s) did not listen on %d: %s" %
                                   (rc, port, self.read_log()))

    def read_log(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        rc = self.proc.stop(sig, timeout)
        self.logf.close()
        return rc


def recv_all(s):
    """Reads s until the peer closes, then closes s; returns the bytes."""
    chunks = []
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        chunks.append(d)
    s.close()
    return b"".join(chunks)


def stats(port):
    """Returns the stats page as {name: value}, names with their labels."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = recv_all(s)
    body = data.split(b"\r\n\r\n", 1)[1].decode()
    out = {}
    for line in body.splitlines():
        k, v = line.rsplit(" ", 1)
        out[k] = int(v)
    return out


def http_get(port, path="/", host="localhost", timeout=10):
    """One HTTP/1.0-style GET with Connection: close over a raw socket; returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
    data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body


def tcp_config(listen_port, servers, workers=2, stats_port=None, extra_global="",
               timeouts="", mode="tcp"):
    srv = "\n".join('      - { name: s%d, address: "127.0.0.1:%d" }' % (i, p)
                    for i, p in enumerate(servers))
    text = f"""global:
  workers: {workers}
  maxconn: 2000
{extra_global}
defaults:
  timeouts: {{ connect: 2s, client: 10s, server: 10s {timeouts} }}
frontends:
  - name: fe
    bind: ["127.0.0.1:{listen_port}"]
    mode: {mode}
    default_backend: be
backends:
  - name: be
    servers:
{srv}
"""
    if stats_port:
        text += 'stats:\n  bind: "127.0.0.1:%d"\n' % stats_port
    return text


class Runner:
    """Runs named test functions, prints one line each and the plain summary line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def run(self, name, fn, *args):
        t0 = time.monotonic()
        # A test stuck for 90 s prints where it is stuck (then goes on to its own timeouts).
        faulthandler.dump_traceback_later(90, exit=False)
        print("...  %s" % name, flush=True)
        try:
            r = fn(*args)
            if r == SKIP:
                self.skipped += 1
                print("SKIP %s" % name, flush=True)
                return
            self.passed += 1
            print("ok   %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
        except Exception:
            self.failed += 1
            print("FAIL %s" % name, flush=True)
            traceback.print_exc()
        finally:
            faulthandler.cancel_dump_traceback_later()

    def finish(self):
        print("%d passed, %d failed, %d skipped" % (self.passed, self.failed, self.skipped))
        if self.failed:
            sys.exit(1)
        if self.passed == 0 and self.skipped:
            sys.exit(SKIP)
        sys.exit(0)


def tmpdir():
    d = tempfile.mkdtemp(prefix="fpt-")
    os.chmod(d, 0o755)
    return d
