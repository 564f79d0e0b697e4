# SPDX-License-Identifier: BSD-3-Clause
"""Helpers for fastproxy's integration tests: free ports, a real nginx origin, a Python echo
origin, and fastproxy itself, each started in a private temp dir and stopped by PID.
Standard library only.

The backend under test comes from FP_IO (kernel, the default, uring or dpdk). FP_IO=uring only
adds io: uring to each config (the same kernel sockets, through io_uring). With FP_IO=dpdk,
enter_backend() re-runs the test inside a network namespace of its own; each Fastproxy then
runs io: dpdk on a net_tap port (TAP fpN, stack address 10.77.N.2/24, kernel side 10.77.N.1),
origins listen in that namespace, and tests reach a proxy at host_of(port) rather than
127.0.0.1. Nothing of a test's traffic leaves its namespace."""

import faulthandler
import hashlib
import os
import random
import re
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

IO = os.environ.get("FP_IO", "kernel")
DPDK = IO == "dpdk"
URING = IO == "uring"
# FP_MAXPIPES=N: io: kernel configs that do not set global.maxpipes splice with N pipes; 0 (the
# default here, not fastproxy's) copies.
SPLICE = int(os.environ.get("FP_MAXPIPES", "0") or 0)
# Origins listen here. Under dpdk they start before the TAP they are reached through exists
# (fastproxy creates it), so they take every address of the test's own namespace.
ORIGIN_BIND = "0.0.0.0" if DPDK else "127.0.0.1"
DPDK_NET = "10.77"  # instance N: 10.77.N.0/24, stack .2, kernel side of the TAP .1
_NETNS_ENV = "FPT_NETNS"
_hosts = {}  # listening port -> the address a client uses for it (kernel: 127.0.0.1)
_instances = [0]


def skip_now(reason):
    """Ends the whole test program as skipped (exit 77), printing the reason."""
    print("SKIP: %s" % reason, flush=True)
    sys.exit(SKIP)


def kernel_only(reason):
    """For a test that depends on kernel sockets: SKIP under another backend, saying why."""
    if DPDK:
        print("     skipped under io: dpdk: %s" % reason)
        return SKIP
    return None


def enter_backend():
    """Call first in a test program. Under FP_IO=dpdk: exits 77 with the reason when the
    machine or the build cannot run io: dpdk; otherwise re-runs this program inside a new
    network namespace (removed at exit) and returns there, with loopback up. A no-op under
    FP_IO=kernel. Under FP_IO=uring: exits 77 when the build has no io_uring backend."""
    if IO not in ("kernel", "dpdk", "uring"):
        skip_now("FP_IO=%s: expected kernel, uring or dpdk" % IO)
    if URING and os.environ.get("FP_HAVE_URING") == "0":
        skip_now("io: uring not available in this build (built without liburing)")
    if not DPDK or os.environ.get(_NETNS_ENV):
        if DPDK:
            _dpdk_probe()
        return
    if os.geteuid() != 0:
        skip_now("io: dpdk tests need root (a network namespace and a TAP device)")
    if not os.path.exists("/dev/net/tun"):
        skip_now("io: dpdk tests need /dev/net/tun (the net_tap PMD)")
    if not shutil.which("ip"):
        skip_now("io: dpdk tests need ip(8) from iproute2")
    if not build_has_dpdk():
        skip_now("io: dpdk not available in this build (built without DPDK)")
    ns = "fpt-%s-%d" % (os.path.basename(sys.argv[0]).split(".")[0][:12], os.getpid())
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        skip_now("cannot create a network namespace (ip netns add %s)" % ns)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        env = dict(os.environ)
        env[_NETNS_ENV] = ns
        child = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable] + sys.argv, env=env)
        try:
            rc = child.wait()
        except BaseException:
            child.terminate()
            rc = child.wait()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    sys.exit(rc)


def _dpdk_probe():
    """Starts io: dpdk once with a minimal config; exits 77 when the build says the backend
    is not available, and leaves any other failure to the tests themselves."""
    tmp = tmpdir()
    port = free_port()
    text = tcp_config(port, [free_port()], workers=1)
    fp = None
    try:
        fp = Fastproxy(tmp, text, wait=[], tap_timeout=15)
    except RuntimeError as e:
        why = [l.split("error: ", 1)[-1] for l in str(e).splitlines() if "not available" in l]
        if why:
            skip_now("io: dpdk not available in this build (fastproxy: %s)" % why[-1][:200])
        raise
    finally:
        if fp is not None:
            fp.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def host_of(port):
    """The address a client connects to for a proxy's listening port."""
    return _hosts.get(port, "127.0.0.1")


def url(port, path="/"):
    return "http://%s:%d%s" % (host_of(port), port, path)


def client_host(port):
    """The address a proxy (and behind it an origin) sees a local test client come from."""
    h = host_of(port)
    return h.rsplit(".", 1)[0] + ".1" if h != "127.0.0.1" else h


def dpdk_config(text, n):
    """Rewrites a kernel test config (127.0.0.1 everywhere) for io: dpdk instance n: io: dpdk
    in global, frontend binds on the stack address, servers on the kernel side of the TAP, a
    dpdk: section on TAP fp<n> with two source addresses (.3, .4) for server connections.
    stats.bind stays on loopback."""
    stack, kside = "%s.%d.2" % (DPDK_NET, n), "%s.%d.1" % (DPDK_NET, n)
    out = []
    section = None
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+):", line)
        if m:
            section = m.group(1)
        if section == "frontends":
            line = line.replace("127.0.0.1:", stack + ":")
        elif section == "backends":
            line = line.replace("127.0.0.1:", kside + ":")
        if line.startswith("global: {"):
            line = line.replace("global: {", "global: { io: dpdk,", 1)
        out.append(line)
        if line.rstrip() == "global:":
            out.append("  io: dpdk")
    if "global:" not in text:
        out.insert(0, "global:\n  io: dpdk")
    out.append("""dpdk:
  eal: ["--no-huge", "-m", "512", "--no-shconf", "--no-pci", "--file-prefix=fpt%d-%d",
        "--vdev=net_tap%d,iface=fp%d"]
  address: %s/24
  source_addresses: [%s.%d.3, %s.%d.4]
  mbufs: 8192
  poll: adaptive
  rss: auto""" % (os.getpid(), n, n, n, stack, DPDK_NET, n, DPDK_NET, n))
    return "\n".join(out) + "\n"


def with_global(text, key, value):
    """text (a config) with `<key>: <value>` added to its global section (created if missing);
    text itself if it sets key already."""
    if re.search(r"(^|[{,\s])%s:\s" % key, text, re.M):
        return text
    if re.search(r"^global: \{", text, re.M):
        return re.sub(r"^global: \{", "global: { %s: %s," % (key, value), text, count=1,
                      flags=re.M)
    if re.search(r"^global:\s*$", text, re.M):
        return re.sub(r"^global:\s*$", "global:\n  %s: %s" % (key, value), text, count=1,
                      flags=re.M)
    return "global:\n  %s: %s\n" % (key, value) + text


def with_io(text, io):
    """text (a config) with `io: <io>` added to its global section; text itself if it names a
    backend already."""
    return with_global(text, "io", io)


def _tap_exists(name):
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0



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


_ports_given = set()
_port_rng = random.Random(os.getpid() ^ time.monotonic_ns())


def free_port():
    """A loopback TCP port nothing listens on, chosen at random below the kernel's ephemeral
    range: a port the kernel handed out for bind(0) may be handed out again, to another test's
    listener or to any connect(), before the caller binds it (a CI run failed that way). Ports
    already given by this process are not given twice."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    hi = max(lo - 1, 11000)
    for _ in range(1000):
        port = _port_rng.randint(10000, hi)
        if port in _ports_given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    raise RuntimeError("no free loopback port in 10000-%d" % hi)


def wait_refused(host, port, timeout=5.0):
    """True once a connection to host:port is refused (or times out), within timeout seconds:
    a stopping proxy closes its listeners when its workers get to it, which a loaded machine
    may delay; every connection accepted before that is closed at once."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.05)
    return False


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
    listen {ORIGIN_BIND}:{self.port} reuseport;
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

    def access_lines(self, needle, count, timeout=5.0):
        """The access-log lines holding needle, once there are at least count of them (nginx
        writes a line after its response has left, so a client may see the answer first); the
        lines found when timeout runs out otherwise, for the caller's assertion to show."""
        end = time.monotonic() + timeout
        while True:
            lines = [l for l in self.access_log() if needle in l]
            if len(lines) >= count or time.monotonic() >= end:
                return lines
            time.sleep(0.02)

    def stop(self):
        self.proc.stop(signal.SIGQUIT)


class EchoServer:
    """A threaded TCP echo origin: echoes until the client half-closes, then closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ORIGIN_BIND, 0))
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
    """fastproxy on yaml_text (written for io: kernel on 127.0.0.1); under FP_IO=dpdk the
    config is rewritten by dpdk_config() and, once the TAP exists, its kernel side is
    addressed. wait: ports to see listening before returning."""

    def __init__(self, tmp, yaml_text, env=None, wait=None, tap_timeout=30):
        self.host = "127.0.0.1"
        self.tap = None
        if DPDK:
            n = _instances[0] % 250
            _instances[0] += 1
            self.tap = "fp%d" % n
            self.host = "%s.%d.2" % (DPDK_NET, n)
            self.kernel_side = "%s.%d.1" % (DPDK_NET, n)
            yaml_text = dpdk_config(yaml_text, n)
            for p in re.findall(r"%s:(\d+)" % re.escape(self.host), yaml_text):
                _hosts[int(p)] = self.host
        if URING:
            yaml_text = with_io(yaml_text, "uring")
        elif IO == "kernel":
            # The default (maxpipes auto) splices large transfers; a test run says which path
            # it checks: copies (the plain run) or splice (FP_MAXPIPES, the *_splice runs).
            yaml_text = with_global(yaml_text, "maxpipes", SPLICE)
        self.conf = os.path.join(tmp, "fp-%d.yaml" % free_port())
        with open(self.conf, "w") as f:
            f.write(yaml_text)
        self.log = self.conf + ".log"
        self.logf = open(self.log, "wb")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = Proc([fastproxy_path(), "-f", self.conf], stdout=subprocess.DEVNULL,
                         stderr=self.logf, env=e)
        if DPDK:
            self._address_tap(tap_timeout)
        # The stats listener (always a kernel socket on loopback) opens just after the
        # proxy's ports: wait for it too.
        waits = [(self.host, port) for port in wait or []]
        m = re.search(r'stats:\s*\{?\s*bind:\s*"127\.0\.0\.1:(\d+)"', yaml_text)
        if waits and m:
            waits.append(("127.0.0.1", int(m.group(1))))
        for host, port in waits:
            if not wait_port(port, host=host):
                rc = self.stop()
                raise RuntimeError("fastproxy (exit %s) did not listen on %s:%d: %s" %
                                   (rc, host, port, self.read_log()))

    def _address_tap(self, timeout):
        """Waits for the TAP fastproxy creates, then gives its kernel side an address."""
        end = time.monotonic() + timeout
        while not _tap_exists(self.tap):
            if self.proc.p.poll() is not None or time.monotonic() > end:
                rc = self.stop()
                raise RuntimeError("fastproxy (exit %s) created no TAP %s: %s" %
                                   (rc, self.tap, self.read_log()))
            time.sleep(0.05)
        # txqueuelen: the kernel side's queue towards fastproxy. At its default of 1000 a burst
        # (1000 clients closing at once) overflows it and the kernel drops frames, resets
        # among them, which no one sends again: the sessions would then wait for a timeout.
        # A NIC's RX ring is sized the same way (docs/dpdk.md).
        for cmd in (["ip", "addr", "add", self.kernel_side + "/24", "dev", self.tap],
                    ["ip", "link", "set", self.tap, "txqueuelen", "10000"],
                    ["ip", "link", "set", self.tap, "up"]):
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                self.stop()
                raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr))

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


def stats_get(port, path="/metrics", method="GET"):
    """One request to the stats listener; returns (status, headers {lower: value}, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("%s %s HTTP/1.1\r\nHost: stats\r\n\r\n" % (method, path)).encode())
    data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ", 2)[1]), hdrs, body


METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
FLOAT = re.compile(r"[+-]?(Inf|NaN|([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)\Z")


def _labels(text, where):
    """Parses 'a="x",b="y"' strictly (text format 0.0.4 escapes); returns [(name, value)]."""
    out = []
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq]
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError("%s: bad label name %r" % (where, name))
        if text[eq + 1:eq + 2] != '"':
            raise ValueError("%s: label value not quoted" % where)
        j = eq + 2
        val = []
        while True:
            if j >= len(text):
                raise ValueError("%s: unterminated label value" % where)
            ch = text[j]
            if ch == "\\":
                nxt = text[j + 1:j + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError("%s: bad escape \\%s" % (where, nxt))
                val.append("\n" if nxt == "n" else nxt)
                j += 2
                continue
            if ch == '"':
                break
            if ch == "\n":
                raise ValueError("%s: raw newline in a label value" % where)
            val.append(ch)
            j += 1
        out.append((name, "".join(val)))
        i = j + 1
        if i < len(text):
            if text[i] != ",":
                raise ValueError("%s: expected ',' between labels" % where)
            i += 1
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError("%s: a label repeated" % where)
    return out


def parse_prometheus(text):
    """A strict parser of the Prometheus text exposition format 0.0.4, stricter than the
    format where fastproxy promises more: every family has # HELP and # TYPE before its
    samples, its samples are contiguous, counters are named *_total and are >= 0, no series
    repeats, and a histogram's buckets are cumulative, end with le="+Inf" equal to _count,
    and come with _sum. Raises ValueError naming the line; returns
    {family: {"type", "help", "samples": [(name, {label: value}, float)]}}."""
    if not text.endswith("\n"):
        raise ValueError("the page does not end with a newline")
    fams = {}
    cur = None
    seen = set()
    for no, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (no, line[:80])
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
                raise ValueError("%s: a comment other than HELP or TYPE" % where)
            name = parts[2]
            if not METRIC_NAME.match(name):
                raise ValueError("%s: bad metric name" % where)
            if cur is None or cur != name:
                if name in fams:
                    raise ValueError("%s: family %s appears twice" % (where, name))
                fams[name] = {"type": None, "help": None, "samples": []}
                cur = name
            f = fams[name]
            if f["samples"]:
                raise ValueError("%s: HELP/TYPE after samples" % where)
            key = parts[1].lower()
            if f[key] is not None:
                raise ValueError("%s: second %s" % (where, parts[1]))
            arg = parts[3] if len(parts) == 4 else ""
            if key == "type" and arg not in ("counter", "gauge", "histogram", "summary",
                                             "untyped"):
                raise ValueError("%s: unknown type" % where)
            f[key] = arg
            continue
        if line == "":
            raise ValueError("%s: empty line" % where)
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?[0-9]+)?\Z", line, re.S)
        if not m:
            raise ValueError("%s: not a sample line" % where)
        name, labels, value = m.group(1), _labels(m.group(3) or "", where), m.group(4)
        if not FLOAT.match(value):
            raise ValueError("%s: bad value" % where)
        f = fams.get(cur)
        if f is None or f["type"] is None or f["help"] is None:
            raise ValueError("%s: sample without HELP and TYPE before it" % where)
        allowed = {"histogram": (cur + "_bucket", cur + "_sum", cur + "_count"),
                   "summary": (cur, cur + "_sum", cur + "_count")}.get(f["type"], (cur,))
        if name not in allowed:
            raise ValueError("%s: sample of another family than %s" % (where, cur))
        series = (name, tuple(sorted(labels)))
        if series in seen:
            raise ValueError("%s: series repeated" % where)
        seen.add(series)
        v = float(value)
        if f["type"] == "counter" and (not cur.endswith("_total") or v < 0):
            raise ValueError("%s: counter not named *_total, or negative" % where)
        f["samples"].append((name, dict(labels), v))
    for name, f in fams.items():
        if f["type"] is None or f["help"] is None or not f["samples"]:
            raise ValueError("family %s lacks HELP, TYPE or samples" % name)
        if f["type"] == "histogram":
            _check_histogram(name, f["samples"])
    return fams


def _check_histogram(name, samples):
    groups = {}
    for sname, labels, v in samples:
        key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        g = groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            if "le" not in labels:
                raise ValueError("%s: bucket without le" % name)
            g["buckets"].append((float(labels["le"]), v))
        elif sname.endswith("_sum"):
            g["sum"] = v
        else:
            g["count"] = v
    for key, g in groups.items():
        b = g["buckets"]
        if not b or b[-1][0] != float("inf") or g["sum"] is None or g["count"] is None:
            raise ValueError("%s %s: needs +Inf, _sum and _count" % (name, key))
        if [x for x, _ in b] != sorted(x for x, _ in b):
            raise ValueError("%s %s: buckets out of order" % (name, key))
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            raise ValueError("%s %s: buckets not cumulative" % (name, key))
        if b[-1][1] != g["count"]:
            raise ValueError("%s %s: +Inf bucket != _count" % (name, key))


def stats(port):
    """Scrapes /metrics, checks it with parse_prometheus(), and returns {series: value}, each
    series written as on the page: 'fastproxy_x_total{worker="0"}'."""
    status, _, body = stats_get(port)
    assert status == 200, status
    out = {}
    for f in parse_prometheus(body.decode()).values():
        for name, labels, v in f["samples"]:
            lab = ",".join('%s="%s"' % kv for kv in labels.items())
            out[name + ("{%s}" % lab if lab else "")] = int(v) if v == int(v) else v
    return out


def stat_values(st, name, **labels):
    """The values of the series of name in a stats() result whose labels include labels."""
    out = []
    for key, v in st.items():
        n, _, lab = key.partition("{")
        if n == name and all(('%s="%s"' % (k, x)) in lab for k, x in labels.items()):
            out.append(v)
    return out


def stat_sum(st, name, **labels):
    """Sums the series of name (over workers, backends...) whose labels include labels."""
    return sum(stat_values(st, name, **labels))


def stat_max(st, name, **labels):
    """The largest of the series of name whose labels include labels (0 if none)."""
    return max(stat_values(st, name, **labels) or [0])


# Per-worker counters of the DPDK backend and of its stack, by the short names the tests use;
# each lists the names the stats page may give it (without the fastproxy_ prefix). Adjust
# here when the backend names them otherwise.
COUNTER_NAMES = {
    "rx_packets": ("dpdk_rx_packets", "dpdk_rx_pkts", "rx_packets"),
    "tx_packets": ("dpdk_tx_packets", "dpdk_tx_pkts", "tx_packets"),
    "steered_in": ("dpdk_steered_in", "steered_in"),
    "steered_out": ("dpdk_steered_out", "steered_out"),
    "rx_on_owner": ("dpdk_rx_on_owner", "rx_on_owner"),
    "ring_full": ("dpdk_ring_full_drops", "dpdk_ring_full", "ring_full"),
    "accepted": ("accepted",),
    "ip_rx": ("stack_ip_rx", "ip_rx"),
    "ip_bad_cksum": ("stack_ip_bad_cksum", "ip_bad_cksum", "dpdk_bad_cksum"),
    "ip_short": ("stack_ip_short", "ip_short"),
    "ip_bad_ver": ("stack_ip_bad_ver", "ip_bad_ver"),
    "ip_frag": ("stack_ip_frag", "ip_frag"),
    "tcp_rx": ("stack_tcp_rx", "tcp_rx"),
    "tcp_bad_cksum": ("stack_tcp_bad_cksum", "tcp_bad_cksum"),
    "tcp_short": ("stack_tcp_short", "tcp_short"),
    "tcp_synq_full": ("stack_tcp_synq_full", "tcp_synq_full"),
    "tcp_cookie_sent": ("stack_tcp_cookie_sent", "tcp_cookie_sent"),
    "tcp_acceptq_full": ("stack_tcp_acceptq_full", "tcp_acceptq_full"),
}


def worker_counters(port):
    """Reads the stats page on port; returns {worker: {short name: value}} for the names in
    COUNTER_NAMES that the page has (a counter with more labels than the worker, such as a
    queue, is summed over them). A name the page lacks is absent, not 0."""
    by_worker = {}
    page = stats(port)
    for key, v in page.items():
        m = re.match(r'^fastproxy_([a-z0-9_]+)\{(.*)\}$', key)
        if not m:
            continue
        # The page names counters fastproxy_x_total and the I/O backend's own
        # fastproxy_io_x_total (net/io.h): the short names here have neither.
        name = re.sub(r"_total$", "", m.group(1))
        name = name[3:] if name.startswith("io_") else name
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if "worker" not in labels:
            continue
        w = int(labels["worker"])
        for short, names in COUNTER_NAMES.items():
            if name in names:
                d = by_worker.setdefault(w, {})
                d[short] = d.get(short, 0) + v
    return by_worker


def counter_total(per_worker, short):
    """Sum of a counter over the workers, or None when no worker reports it."""
    vals = [c[short] for c in per_worker.values() if short in c]
    return sum(vals) if vals else None


def http_get(port, path="/", host="localhost", timeout=10):
    """One HTTP/1.0-style GET with Connection: close over a raw socket; returns (status, body)."""
    s = socket.create_connection((host_of(port), port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
    data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body


def tcp_config(listen_port, servers, workers=2, stats_port=None, extra_global="",
               timeouts="", mode="tcp"):
    srv = "\n".join('      - { name: s%d, address: "127.0.0.1:%d" }' % (i, p)
                    for i, p in enumerate(servers))
    if SPLICE and IO == "kernel":
        extra_global = "  maxpipes: %d\n%s" % (SPLICE, extra_global)
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
    """Runs named test functions, prints one line each and the plain summary line.

    known_bug (see dpdk_bug): a failure is reported as XFAIL with the reason and does not fail
    the program; a pass is reported as XPASS (some known bugs show in some runs only)."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.xfailed = 0

    def run(self, name, fn, *args, known_bug=None):
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
            if known_bug:
                print("XPASS %s: passed despite its known_bug marker (%s); remove the marker "
                      "once the bug is fixed" % (name, known_bug), flush=True)
        except Exception:
            if known_bug:
                self.xfailed += 1
                print("XFAIL %s: known bug: %s" % (name, known_bug), flush=True)
            else:
                self.failed += 1
                print("FAIL %s" % name, flush=True)
            traceback.print_exc()
        finally:
            faulthandler.cancel_dump_traceback_later()

    def finish(self):
        print("%d passed, %d failed, %d skipped, %d known bugs" %
              (self.passed, self.failed, self.skipped, self.xfailed))
        if self.failed:
            sys.exit(1)
        if self.passed == 0 and self.skipped:
            sys.exit(SKIP)
        sys.exit(0)


def dpdk_bug(reason):
    """A known_bug marker for Runner.run that applies under FP_IO=dpdk only: the same test
    still has to pass on io: kernel."""
    return reason if DPDK else None


def tmpdir():
    d = tempfile.mkdtemp(prefix="fpt-")
    os.chmod(d, 0o755)
    return d
