#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""io: dpdk end to end (issue 11): fastproxy with 2 workers on a net_tap port (--no-huge), in a
network namespace this test creates, in front of a real nginx listening in that namespace.
For mode http and mode tcp: 100 MiB down and up through curl, checksummed; 1,000 concurrent
keep-alive connections (wrk); both workers serve, and the steering counters add up; SIGTERM
drains an in-flight transfer and exits 0. Then malformed frames written to the TAP (bad
checksums, truncated headers, IP options, fragments, a SYN flood) are dropped and counted
while the proxy keeps serving. Exits 77 with the reason when the machine or the build cannot
run io: dpdk (not root, no /dev/net/tun, no DPDK, backend not available)."""

import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

os.environ.setdefault("FP_IO", "dpdk")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import fpt  # noqa: E402

if not fpt.DPDK:
    fpt.skip_now("tests/dpdk runs with FP_IO=dpdk only (FP_IO=%s)" % fpt.IO)
fpt.enter_backend()

MIB = int(os.environ.get("FP_DPDK_BIG_MIB", "100"))
BIG = os.urandom(MIB << 20)
MID = BIG[:8 << 20]  # for the drain test: long enough to be in flight at SIGTERM


def curl(*args, timeout=120):
    p = subprocess.run(["curl", "-s", "-S", "-f"] + list(args), capture_output=True,
                       timeout=timeout)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def proxy_config(port, sport, mode, origin_port):
    return f"""global:
  workers: 2
  maxconn: 4000
  grace: 5s
defaults:
  timeouts: {{ connect: 5s, client: 30s, server: 30s, http_request: 10s, keep_alive: 30s }}
frontends:
  - name: web
    bind: ["127.0.0.1:{port}"]
    mode: {mode}
    default_backend: app
backends:
  - name: app
    servers: [{{ name: n1, address: "127.0.0.1:{origin_port}" }}]
stats:
  bind: "127.0.0.1:{sport}"
"""


COPIED = "fastproxy_io_stack_tcp_app_copy_bytes_total"


def test_100mib_down_and_up(env):
    """Both ways, checksummed. The bytes go through the zero-copy segment path (net/io.h): the
    stack's count of payload bytes copied between the proxy and its TCP queues stays below 1 %
    of what moved, both ways (mode http: bodies with a Content-Length; only the heads, and the
    body bytes that come with them, are copied)."""
    port = env["port"]

    def copied():
        page = fpt.stats(env["stats_port"])
        assert any(k.startswith(COPIED + "{") for k in page), "no %s on /metrics" % COPIED
        return fpt.stat_sum(page, COPIED)

    copied0 = copied()
    t0 = time.monotonic()
    got = curl(fpt.url(port, "/big.bin"), timeout=300)
    down = time.monotonic() - t0
    assert len(got) == len(BIG) and fpt.sha256(got) == fpt.sha256(BIG), len(got)
    copied_down = copied() - copied0
    path = os.path.join(env["tmp"], "up.bin")
    with open(path, "wb") as f:
        f.write(BIG)
    name = "up-%s.bin" % env["mode"]
    t0 = time.monotonic()
    curl("-T", path, fpt.url(port, "/dav/" + name), timeout=300)
    up = time.monotonic() - t0
    with open(os.path.join(env["nginx"].www, "dav", name), "rb") as f:
        assert fpt.sha256(f.read()) == fpt.sha256(BIG)
    os.unlink(path)
    copied_up = copied() - copied0 - copied_down
    print("     %d MiB down %.2fs, up %.2fs, sha256 equal; payload bytes copied: %d down, %d up"
          % (MIB, down, up, copied_down, copied_up))
    assert copied_down < len(BIG) // 100, (copied_down, len(BIG))
    assert copied_up < len(BIG) // 100, (copied_up, len(BIG))


def test_1000_keepalive(env):
    if not shutil.which("wrk"):
        return fpt.SKIP
    before = fpt.worker_counters(env["stats_port"])
    p = subprocess.run(["wrk", "-t2", "-c1000", "-d3s", "--timeout", "5s",
                        fpt.url(env["port"], "/small.txt")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    print("     " + [l for l in out.splitlines() if "Requests/sec" in l][0].strip())
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    reqs = int(out.split(" requests in ")[0].split()[-1])
    assert reqs >= 1000, out
    after = fpt.worker_counters(env["stats_port"])
    accepted = sum(after[w].get("accepted", 0) - before.get(w, {}).get("accepted", 0)
                   for w in after)
    assert accepted >= 1000, (accepted, after)


def test_sessions_closed(env):
    """wrk closed every connection: within 5 s the proxy has noticed each close."""
    def active():
        return fpt.stat_sum(fpt.stats(env["stats_port"]), "fastproxy_sessions_active")

    end = time.monotonic() + 5
    while active() and time.monotonic() < end:
        time.sleep(0.2)
    n = active()
    assert n == 0, "%d sessions still open 5 s after wrk closed its connections" % n


def test_workers_and_steering(env):
    """Both workers accepted connections and received frames. Each worker's TCP frames either
    arrived on their owner's queue (rx_on_owner) or were handed to the owner (steered_out);
    what was handed over arrived (steered_in) or was counted as a full ring: so every TCP
    frame is processed by its flow's owner."""
    c = fpt.worker_counters(env["stats_port"])
    print("     " + "; ".join("worker %d: %s" % (w, ", ".join("%s %d" % kv for kv in
                                                             sorted(c[w].items())))
                              for w in sorted(c)))
    assert sorted(c) == [0, 1], sorted(c)
    for w in (0, 1):
        assert c[w].get("accepted", 0) > 0, ("worker %d accepted nothing" % w, c)
    missing = [n for n in ("rx_packets", "steered_in", "steered_out", "rx_on_owner",
                           "ring_full") if fpt.counter_total(c, n) is None]
    assert not missing, "stats page lacks %s (names: fpt.COUNTER_NAMES)" % missing
    for w in (0, 1):
        assert c[w]["rx_on_owner"] > 0, ("worker %d owned no frame" % w, c)
        assert c[w]["rx_packets"] >= c[w]["rx_on_owner"] + c[w]["steered_out"], (w, c[w])
    # Frames still in a ring when the page is read are handed over within a pass of their
    # owner's loop: read again until the books balance (they must within a few seconds).
    end = time.monotonic() + 3
    while True:
        out = fpt.counter_total(c, "steered_out")
        if out == fpt.counter_total(c, "steered_in") + fpt.counter_total(c, "ring_full"):
            break
        assert time.monotonic() < end, ("steered frames never arrived", c)
        time.sleep(0.1)
        c = fpt.worker_counters(env["stats_port"])


def test_source_addresses(env):
    """dpdk.source_addresses (.3 and .4, see fpt.dpdk_config) are the stack's own: the kernel
    side resolves them by ARP and they answer ping; .5, on the subnet but not configured, does
    not answer."""
    net = env["fp"].host.rsplit(".", 1)[0]
    for last, want in ((3, 0), (4, 0), (5, 1)):
        p = subprocess.run(["ping", "-c", "1", "-W", "2", "%s.%d" % (net, last)],
                           capture_output=True, text=True)
        got = 0 if p.returncode == 0 else 1
        assert got == want, ("ping %s.%d: exit %d" % (net, last, p.returncode), p.stdout)


def test_no_rx_signal(env):
    """net_tap would have the kernel signal the process for every frame queued to the TAP
    (O_ASYNC and a real-time signal on its queue fds, taken by the main thread: 0.8 ms of CPU
    per 100 KiB response). net/io_dpdk.c leaves it no signal to take: no TAP fd of the process
    is O_ASYNC, and net_tap logged that it reads on every burst instead."""
    pid = env["fp"].proc.p.pid
    tun = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "/dev/net/tun":
                tun.append(fd)
        except OSError:
            pass
    assert tun, "fastproxy (pid %d) holds no /dev/net/tun fd" % pid
    for fd in tun:
        with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
            flags = int(re.search(r"flags:\s+([0-7]+)", f.read()).group(1), 8)
        assert flags & os.O_ASYNC == 0, "TAP fd %s is O_ASYNC (flags %o)" % (fd, flags)
    assert "No Rx trigger signal available" in env["fp"].read_log(), \
        env["fp"].read_log()[-2000:]


def test_cksum_offload(env):
    """net_tap offers IPv4 and TCP checksum offload, but computes them in its own slow software
    loop: the backend leaves them off on net_tap and says so at start-up, so the stack's own
    checksum (and its bad-checksum counters, test_bad_input) are what this suite exercises.
    The offload path itself is covered by tests/net stack_unit cksum_offload."""
    log = env["fp"].read_log()
    assert "checksum offload none" in log, log[-2000:]


def test_sigterm_drains(env):
    tmp = env["tmp"]
    port, sport = fpt.free_port(), fpt.free_port()
    fp = fpt.Fastproxy(tmp, proxy_config(port, sport, env["mode"], env["nginx"].port),
                       wait=[port])
    host = fpt.host_of(port)
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /mid.bin HTTP/1.0\r\n\r\n")
    data = s.recv(65536)
    fp.proc.p.send_signal(signal.SIGTERM)
    refused = fpt.wait_refused(host, port)
    # The reader has been idle since the signal: most of the 8 MiB still waits in the proxy.
    assert fp.proc.p.poll() is None, "fastproxy exited before the transfer finished"
    data += fpt.recv_all(s)
    body = data.split(b"\r\n\r\n", 1)[1]
    assert fpt.sha256(body) == fpt.sha256(MID), len(body)
    assert refused, "a new connection was accepted after SIGTERM"
    assert fp.proc.p.wait(15) == 0, fp.read_log()[-2000:]
    log = fp.read_log()
    assert "draining" in log and "stopped" in log, log[-2000:]


# ---- malformed input written to the TAP as Ethernet frames ----

def cksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip_header(src, dst, payload_len, ihl=5, options=b"", frag=0, proto=6, bad_sum=False,
              total=None):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total or (ihl * 4 + payload_len),
                      random.randrange(65536), frag, 64, proto, 0, socket.inet_aton(src),
                      socket.inet_aton(dst)) + options
    c = cksum(hdr)
    if bad_sum:
        c ^= 0x5a5a
    return hdr[:10] + struct.pack("!H", c) + hdr[12:]


def tcp_syn(src, dst, sport, dport, bad_sum=False):
    seg = struct.pack("!HHIIBBHHH", sport, dport, random.randrange(1 << 32), 0, 5 << 4, 0x02,
                      65535, 0, 0)
    pseudo = struct.pack("!4s4sBBH", socket.inet_aton(src), socket.inet_aton(dst), 0, 6,
                         len(seg))
    c = cksum(pseudo + seg)
    if bad_sum:
        c ^= 0x1234
    return seg[:16] + struct.pack("!H", c) + seg[18:]


class Tap:
    """Writes raw frames on the kernel side of a proxy's TAP, addressed to its stack."""

    def __init__(self, fp):
        self.ifname = fp.tap
        self.src = fp.kernel_side
        self.dst = fp.host
        with open("/sys/class/net/%s/address" % self.ifname) as f:
            self.mac_src = bytes.fromhex(f.read().strip().replace(":", ""))
        neigh = subprocess.run(["ip", "neigh", "show", self.dst, "dev", self.ifname],
                               capture_output=True, text=True).stdout
        m = re.search(r"lladdr ([0-9a-f:]{17})", neigh)
        assert m, "no ARP entry for %s: %r" % (self.dst, neigh)
        self.mac_dst = bytes.fromhex(m.group(1).replace(":", ""))
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.s.bind((self.ifname, 0))

    def send_ip(self, packet):
        self.s.send(self.mac_dst + self.mac_src + b"\x08\x00" + packet)

    def close(self):
        self.s.close()


def bad_frames(tap, port):
    """The malformed packets, by the counter that should see each kind."""
    src, dst = tap.src, tap.dst
    syn = tcp_syn(src, dst, 40000, port)
    frames = {
        "ip_bad_cksum": [ip_header(src, dst, len(syn), bad_sum=True) + syn],
        "tcp_bad_cksum": [ip_header(src, dst, 20) + tcp_syn(src, dst, 40001, port,
                                                               bad_sum=True)],
        # Total length beyond the frame, a header length under 20 bytes, a TCP header cut.
        "ip_short": [ip_header(src, dst, len(syn), total=400) + syn],
        "ip_bad_ver": [ip_header(src, dst, len(syn), ihl=4) + syn],
        "tcp_short": [ip_header(src, dst, 10) + syn[:10]],
        # A first fragment (MF) and a later one (offset 1480 bytes).
        "ip_frag": [ip_header(src, dst, len(syn), frag=0x2000) + syn,
                    ip_header(src, dst, len(syn), frag=185) + syn],
    }
    return frames


def test_bad_input(env):
    fp = env["fp"]
    sport = env["stats_port"]
    assert curl(fpt.url(env["port"], "/small.txt")) == b"small\n"  # fills the ARP entry
    tap = Tap(fp)
    before = fpt.worker_counters(sport)
    frames = bad_frames(tap, env["port"])
    for pkts in frames.values():
        for p in pkts:
            for _ in range(10):
                tap.send_ip(p)
    # IP options (4 NOPs): a valid packet a stack may process or drop, but must survive.
    syn = tcp_syn(tap.src, tap.dst, 40002, env["port"])
    tap.send_ip(ip_header(tap.src, tap.dst, len(syn), ihl=6, options=b"\x01\x01\x01\x00") +
                syn)
    # A SYN flood from many ports of the kernel side (which answers the SYN-ACKs with RSTs).
    t0 = time.monotonic()
    for i in range(5000):
        sp = 1024 + i
        tap.send_ip(ip_header(tap.src, tap.dst, 20) + tcp_syn(tap.src, tap.dst, sp,
                                                               env["port"]))
    flood_s = time.monotonic() - t0
    tap.close()
    time.sleep(0.5)
    assert fp.proc.p.poll() is None, fp.read_log()[-2000:]
    for _ in range(20):
        assert curl(fpt.url(env["port"], "/small.txt")) == b"small\n"
    after = fpt.worker_counters(sport)

    def delta(name):
        a, b = fpt.counter_total(after, name), fpt.counter_total(before, name)
        return None if a is None else a - (b or 0)

    seen = {name: delta(name) for name in list(frames) + ["ip_rx", "tcp_synq_full",
                                                         "tcp_cookie_sent"]}
    print("     5000 SYNs in %.2fs; counter deltas: %s" %
          (flood_s, ", ".join("%s %s" % kv for kv in sorted(seen.items()))))
    missing = [n for n in frames if seen[n] is None]
    assert not missing, "stats page lacks %s (names: fpt.COUNTER_NAMES)" % missing
    for name, pkts in frames.items():
        assert seen[name] >= 10 * len(pkts), (name, seen)
    assert seen["ip_rx"] is None or seen["ip_rx"] >= 5000, seen


def run_mode(r, mode, tmp, nginx):
    port, sport = fpt.free_port(), fpt.free_port()
    fp = fpt.Fastproxy(tmp, proxy_config(port, sport, mode, nginx.port), wait=[port])
    env = {"tmp": tmp, "nginx": nginx, "port": port, "stats_port": sport, "mode": mode,
           "fp": fp}
    http = mode == "http"
    try:
        r.run("%s: %d MiB down and up, checksummed" % (mode, MIB), test_100mib_down_and_up, env)
        r.run("%s: 1000 concurrent keep-alive connections (wrk)" % mode, test_1000_keepalive,
              env)
        r.run("%s: no session outlives wrk's connections" % mode, test_sessions_closed, env)
        r.run("%s: both workers serve, steering counters add up" % mode,
              test_workers_and_steering, env)
        r.run("%s: no signal per received frame (net_tap's Rx trigger is off)" % mode,
              test_no_rx_signal, env)
        r.run("%s: checksum offload left off on net_tap (its own software is slower)" % mode,
              test_cksum_offload, env)
        if http:
            r.run("malformed frames dropped and counted, still serving", test_bad_input, env)
            r.run("source addresses answer ARP and ping; others do not", test_source_addresses,
                  env)
        r.run("%s: SIGTERM drains an in-flight transfer, exit 0" % mode, test_sigterm_drains,
              env)
    finally:
        rc = fp.stop()
        if rc != 0:
            print("fastproxy (%s) exited %s\n%s" % (mode, rc, fp.read_log()[-3000:]))
            r.failed += 1


def main():
    tmp = fpt.tmpdir()
    nginx = fpt.Nginx(tmp, {"big.bin": BIG, "mid.bin": MID, "small.txt": b"small\n"},
                      extra_server="location /dav/ { dav_methods PUT; create_full_put_path on; }")
    r = fpt.Runner()
    try:
        for mode in ("http", "tcp"):
            try:
                run_mode(r, mode, tmp, nginx)
            except RuntimeError as e:
                print("FAIL %s: fastproxy did not start: %s" % (mode, e))
                r.failed += 1
    finally:
        nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    r.finish()


if __name__ == "__main__":
    main()
