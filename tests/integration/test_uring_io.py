#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""What only io: uring has (net/io_uring.c): -c on io: uring passes, or says the build lacks
liburing (exit 1, FILE:LINE:COL); a kernel that refuses io_uring stops the start with a clear
reason (exit 2); slow readers of big responses pause receives at the read-ahead bound and drain
the provided buffer ring without losing a byte, and every buffer comes back; requests name
registered files, the slots are freed at close and reused, and a body that goes on leaves with
MSG_MORE. The rest of the integration suite runs on io: uring too (tests/meson.build: uring_*)."""

import ctypes
import os
import platform
import socket
import struct
import subprocess
import time

import fpt

HAVE = os.environ.get("FP_HAVE_URING")


def uring_config(port, oport, maxconn=2000, stats=None):
    text = fpt.with_io(fpt.tcp_config(port, [oport], workers=1, stats_port=stats,
                                      mode="http").replace("maxconn: 2000",
                                                           "maxconn: %d" % maxconn), "uring")
    return text


def test_check():
    """-c: valid on a build with liburing; otherwise exit 1 with FILE:LINE:COL and the cause."""
    tmp = fpt.tmpdir()
    path = os.path.join(tmp, "u.yaml")
    with open(path, "w") as f:
        f.write(uring_config(fpt.free_port(), fpt.free_port()))
    p = subprocess.run([fpt.fastproxy_path(), "-c", "-f", path], capture_output=True, text=True,
                       timeout=10)
    if HAVE == "0":
        assert p.returncode == 1, p
        assert p.stderr.strip() == ("%s:2:7: io: uring: this fastproxy was built without "
                                    "liburing (meson -During=disabled or liburing-dev missing); "
                                    "use io: kernel" % path), p.stderr
        return None
    assert p.returncode == 0 and "configuration valid" in p.stdout, p
    return None


def _deny_io_uring_setup():
    """preexec_fn: a seccomp filter that fails io_uring_setup(2) with ENOSYS, as a kernel
    built without io_uring does (x86_64 only)."""
    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    # BPF: A = arch; if A != AUDIT_ARCH_X86_64 allow; A = nr; if A == 425 errno ENOSYS; allow.
    insns = [(0x20, 0, 0, 4), (0x15, 0, 3, 0xC000003E), (0x20, 0, 0, 0),
             (0x15, 0, 1, 425), (0x06, 0, 0, 0x00050000 | 38), (0x06, 0, 0, 0x7FFF0000)]
    code = (Insn * len(insns))(*[Insn(*i) for i in insns])
    prog = Prog(len(insns), code)
    if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        os._exit(99)
    if libc.prctl(22, 2, ctypes.cast(ctypes.pointer(prog), ctypes.c_void_p), 0, 0) != 0:
        os._exit(98)  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def test_kernel_without_io_uring():
    """io_uring_setup fails with ENOSYS: the start stops with the reason, exit 2."""
    if HAVE == "0":
        print("     skipped: the build has no io_uring backend")
        return fpt.SKIP
    if platform.machine() != "x86_64":
        print("     skipped: the seccomp filter is written for x86_64")
        return fpt.SKIP
    tmp = fpt.tmpdir()
    path = os.path.join(tmp, "u.yaml")
    with open(path, "w") as f:
        f.write(uring_config(fpt.free_port(), fpt.free_port()))
    p = subprocess.run([fpt.fastproxy_path(), "-f", path], capture_output=True, text=True,
                       timeout=20, preexec_fn=_deny_io_uring_setup)
    assert p.returncode == 2, p
    assert ("io: uring: the kernel refuses io_uring (io_uring_setup: Function not implemented: "
            "not built in, disabled by sysctl kernel.io_uring_disabled, or blocked by a seccomp "
            "filter); use io: kernel") in p.stderr, p.stderr
    return None


def counters(sport):
    st = fpt.stats(sport)
    return {k.split("{")[0][len("fastproxy_io_uring_"):]: v for k, v in st.items()
            if k.startswith("fastproxy_io_uring_")}


def test_slow_readers(env):
    """32 clients ask for 4 MiB each and read nothing for a while: the worker (maxconn 40:
    64 receive buffers of 16 KiB, 1 MiB for everyone) pauses receives at the read-ahead bound
    and runs its buffer ring dry; then the clients read their bodies one after the other (those
    read last wait on those read first, which need buffers to progress), each byte for byte,
    and every buffer is back in the ring at the end."""
    if HAVE == "0":
        print("     skipped: the build has no io_uring backend")
        return fpt.SKIP
    body = os.urandom(4 << 20)
    ng = fpt.Nginx(env["tmp"], files={"big": body})
    port, sport = fpt.free_port(), fpt.free_port()
    fp = fpt.Fastproxy(env["tmp"], uring_config(port, ng.port, maxconn=40, stats=sport),
                       wait=[port])
    socks = []
    try:
        for _ in range(32):
            # A receive buffer below the loopback MSS (64 KiB) would stall TCP itself once
            # the window closed (no window update opens it by a whole segment).
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 131072)
            s.settimeout(20)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            socks.append(s)
        time.sleep(1.0)
        mid = counters(sport)
        for s in socks:
            data = fpt.recv_all(s)
            head, _, got = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            assert fpt.sha256(got) == fpt.sha256(body), (len(got), len(body))
        socks = []
        end = time.monotonic() + 5
        c = counters(sport)
        while c["rbufs_free"] != 64 and time.monotonic() < end:
            time.sleep(0.1)
            c = counters(sport)
        print("     paused %d, ring empty %d, rearms %d; free buffers %d of 64" %
              (c["recv_paused_total"], c["recv_nobufs_total"], c["recv_rearms_total"],
               c["rbufs_free"]))
        assert mid["recv_paused_total"] > 0, mid
        assert c["recv_nobufs_total"] > 0, c
        assert c["rbufs_free"] == 64, c
    finally:
        for s in socks:
            s.close()
        fp.stop()
        ng.stop()
    return None


def get_close(port, path):
    """GET path with Connection: close; reads to EOF (a slot that kept the proxy's socket open
    would hang here until the timeout). Returns (body, segments the client's socket received:
    tcp_info.tcpi_segs_in)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        chunks = []
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            chunks.append(d)
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 144)
        segs_in = struct.unpack_from("I", info, 140)[0] if len(info) >= 144 else -1
    finally:
        s.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:100]
    return body, segs_in


def ring_files(pid):
    """The sockets in the registered file tables of pid's rings ('socket:[inode]', from
    /proc/PID/fdinfo of each io_uring descriptor), and the sockets pid holds as descriptors.
    The kernel lists the table only when it gets the ring's lock at once: a few tries. Returns
    (None, fds) when this kernel's fdinfo has no table."""
    fds = set()
    rings = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:"):
            fds.add(link)
        elif link == "anon_inode:[io_uring]":
            rings.append(fd)
    table = set()
    for fd in rings:
        for _ in range(50):
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                text = f.read()
            if "UserFiles:" in text:
                break
            time.sleep(0.01)
        else:
            return None, fds
        part = text.split("UserFiles:", 1)[1].split("UserBufs:", 1)[0]
        table |= {ln.split(":", 1)[1].strip() for ln in part.splitlines()[1:] if ":" in ln}
    return table, fds


def test_fixed_files_and_more(env):
    """maxconn 40 (a registered file table of the connection pool's size): 3 bodies of 1 MiB
    and 100 small requests, each on its own connection, all answered to EOF (a slot that were
    not freed at close would hold the socket open: no EOF) while slots are reused; the requests
    named registered files, none fell back to a descriptor, and the 1 MiB bodies (Content-Length:
    more follows each 16 KiB send) left with MSG_MORE, their bytes lent to the proxy in the
    provided buffers themselves (native recv_segs: no copy into the generic path's buffers;
    uring_segs_lent counts them). The ring's file table (fdinfo) holds a keep-alive
    connection's sockets while it is open, and at the end no socket the proxy closed."""
    if HAVE == "0":
        print("     skipped: the build has no io_uring backend")
        return fpt.SKIP
    big = os.urandom(1 << 20)
    ng = fpt.Nginx(env["tmp"], files={"big": big, "small": b"s" * 100})
    port, sport = fpt.free_port(), fpt.free_port()
    fp = fpt.Fastproxy(env["tmp"], uring_config(port, ng.port, maxconn=40, stats=sport),
                       wait=[port])
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        open_table, open_fds = ring_files(fp.proc.pid)
        s.close()
        before = counters(sport)
        segs = []
        for _ in range(3):
            got, n = get_close(port, "/big")
            assert fpt.sha256(got) == fpt.sha256(big), len(got)
            segs.append(n)
        mid = counters(sport)
        for _ in range(100):
            got, _ = get_close(port, "/small")
            assert got == b"s" * 100, got[:100]
        c = counters(sport)
        table, fds = ring_files(fp.proc.pid)
        if table is None:
            print("     this kernel's fdinfo lists no registered files: table not checked")
        else:
            print("     registered sockets: %d with a keep-alive connection open, %d at the end "
                  "(%d not open as descriptors)" % (len(open_table), len(table), len(table - fds)))
            assert len(open_table) >= 2 and open_table <= open_fds, (open_table, open_fds)
            assert table <= fds, ("slots not freed at close", table - fds)
        print("     fixed-file requests %d, fallbacks %d, MSG_MORE sends %d, buffers lent %d "
              "(1 MiB bodies); segments per 1 MiB body at the client: %s" %
              (c["fixed_ops_total"] - before["fixed_ops_total"], c["fixed_fallbacks_total"],
               mid["send_more_total"] - before["send_more_total"],
               mid["segs_lent_total"] - before["segs_lent_total"], segs))
        # Each connection: its receive, its sends and its connect name a slot.
        assert c["fixed_ops_total"] - mid["fixed_ops_total"] >= 200, (mid, c)
        assert c["fixed_fallbacks_total"] == 0, c
        assert mid["send_more_total"] - before["send_more_total"] >= 3, (before, mid)
        # 3 MiB in 16 KiB buffers is 192; the rest came through the read(2) fallback or uio_recv.
        assert mid["segs_lent_total"] - before["segs_lent_total"] >= 96, (before, mid)
    finally:
        fp.stop()
        ng.stop()
    return None


def main():
    r = fpt.Runner()
    env = {"tmp": fpt.tmpdir()}
    r.run("-c on io: uring: valid, or the build lacks liburing (FILE:LINE:COL)", test_check)
    r.run("a kernel without io_uring: a clear error at start, exit 2",
          test_kernel_without_io_uring)
    r.run("slow readers: receives pause, the buffer ring runs dry, no byte lost",
          test_slow_readers, env)
    r.run("registered files, freed and reused; MSG_MORE while a body goes on",
          test_fixed_files_and_more, env)
    r.finish()


if __name__ == "__main__":
    main()
