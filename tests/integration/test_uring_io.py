#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""What only io: uring has (net/io_uring.c): -c on io: uring passes, or says the build lacks
liburing (exit 1, FILE:LINE:COL); a kernel that refuses io_uring stops the start with a clear
reason (exit 2); slow readers of big responses pause receives at the read-ahead bound and drain
the provided buffer ring without losing a byte, and every buffer comes back. The rest of the
integration suite runs on io: uring too (tests/meson.build: uring_*)."""

import ctypes
import os
import platform
import socket
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


def main():
    r = fpt.Runner()
    env = {"tmp": fpt.tmpdir()}
    r.run("-c on io: uring: valid, or the build lacks liburing (FILE:LINE:COL)", test_check)
    r.run("a kernel without io_uring: a clear error at start, exit 2",
          test_kernel_without_io_uring)
    r.run("slow readers: receives pause, the buffer ring runs dry, no byte lost",
          test_slow_readers, env)
    r.finish()


if __name__ == "__main__":
    main()
