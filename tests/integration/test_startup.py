#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Startup refusals: a bind address another process listens on (a second fastproxy, or any
socket, with or without SO_REUSEPORT, IPv4 and IPv6, exact or overlapping wildcard) makes
fastproxy exit 2 with a clear message instead of sharing the port; a port left only with
connections in TIME_WAIT is not refused. The memory bound `-c` prints is the one the running
process logs; a directory given as the configuration is named as such."""

import os
import re
import socket
import subprocess
import time
import time

import fpt

REFUSED = "already in use by another process"


def config(binds, origin, stats_port=None):
    text = f"""global:
  workers: 2
  maxconn: 200
frontends:
  - name: fe
    bind: [{", ".join('"%s"' % b for b in binds)}]
    mode: http
    default_backend: be
backends:
  - name: be
    servers:
      - {{ name: s1, address: "127.0.0.1:{origin}" }}
"""
    if stats_port:
        text += 'stats:\n  bind: "127.0.0.1:%d"\n' % stats_port
    return text


def run_expect_refused(tmp, binds, origin, what):
    """Starts fastproxy on binds; it must exit 2 within 10 s naming what it refused."""
    fp = fpt.Fastproxy(tmp, config(binds, origin))
    try:
        rc = fp.proc.p.wait(10)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        fp.stop()
    log = fp.read_log()
    assert rc == 2, "%s: fastproxy did not refuse (exit %s): %s" % (what, rc, log)
    assert "cannot listen on %s: %s" % (what, REFUSED) in log, log


def listener(family, addr, reuseport):
    s = socket.socket(family, socket.SOCK_STREAM)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(addr)
    s.listen(16)
    return s


def test_second_fastproxy_refused(tmp, origin):
    port = fpt.free_port()
    first = fpt.Fastproxy(tmp, config(["127.0.0.1:%d" % port], origin.port), wait=[port])
    try:
        run_expect_refused(tmp, ["127.0.0.1:%d" % port], origin.port, "127.0.0.1:%d" % port)
        # The first one is untouched and still gets every connection.
        for _ in range(4):
            assert fpt.http_get(port, "/hello.txt") == (200, b"hello\n")
        assert first.proc.p.poll() is None
    finally:
        assert first.stop() == 0, first.read_log()


def test_foreign_listeners_refused(tmp, origin):
    cases = [
        # (listener family, listener address, fastproxy bind, reported address)
        (socket.AF_INET, "127.0.0.1", "127.0.0.1:%d", "127.0.0.1:%d"),
        (socket.AF_INET, "0.0.0.0", "127.0.0.1:%d", "127.0.0.1:%d"),
        (socket.AF_INET, "127.0.0.1", "0.0.0.0:%d", "0.0.0.0:%d"),
    ]
    if socket.has_ipv6:
        try:
            socket.socket(socket.AF_INET6).bind(("::1", 0))
            cases += [(socket.AF_INET6, "::1", "[::1]:%d", "[::1]:%d"),
                      (socket.AF_INET6, "::", "127.0.0.1:%d", "127.0.0.1:%d")]
        except OSError:
            print("no IPv6 loopback: IPv6 cases skipped")
    for family, laddr, bind, shown in cases:
        for reuseport in (False, True):
            port = fpt.free_port()
            s = listener(family, (laddr, port), reuseport)
            try:
                run_expect_refused(tmp, [bind % port], origin.port, shown % port)
            finally:
                s.close()


def test_time_wait_not_refused(tmp, origin):
    """A restart right after a stop: the port holds connections in TIME_WAIT, not a listener."""
    port = fpt.free_port()
    for i in range(2):
        fp = fpt.Fastproxy(tmp, config(["127.0.0.1:%d" % port], origin.port), wait=[port])
        try:
            for _ in range(3):
                assert fpt.http_get(port, "/hello.txt") == (200, b"hello\n")
        finally:
            assert fp.stop() == 0, (i, fp.read_log())
    out = subprocess.run(["ss", "-tan", "state", "time-wait", "sport", "= :%d" % port],
                         capture_output=True, text=True).stdout
    print("TIME_WAIT on the port after the restart: %d" % (len(out.splitlines()) - 1))


def test_memory_bound_agrees(tmp, origin):
    for maxconn in (200, 3000, 8000):
        port = fpt.free_port()
        text = config(["127.0.0.1:%d" % port], origin.port).replace(
            "maxconn: 200", "maxconn: %d" % maxconn)
        path = os.path.join(tmp, "bound-%d.yaml" % maxconn)
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([fpt.fastproxy_path(), "-c", "-f", path], capture_output=True,
                           text=True, timeout=10)
        checked = re.search(r"memory bound: (\d+) MiB", p.stdout)
        assert p.returncode == 0 and checked, p
        fp = fpt.Fastproxy(tmp, text, wait=[port])
        try:
            # The line comes once every worker listens, a moment after the port answers.
            for _ in range(250):
                started = re.search(r"memory bound (\d+) MiB", fp.read_log())
                if started:
                    break
                time.sleep(0.02)
        finally:
            fp.stop()
        assert started, fp.read_log()
        assert checked[1] == started[1], "maxconn %d: -c says %s MiB, the start %s MiB" % (
            maxconn, checked[1], started[1])


def test_directory_as_config(tmp):
    for args in (["-c", "-f", tmp], ["-f", tmp]):
        p = subprocess.run([fpt.fastproxy_path()] + args, capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 1, p
        assert p.stderr.strip() == "%s: is a directory, not a configuration file" % tmp, p


def main():
    r = fpt.Runner()
    tmp = fpt.tmpdir()
    origin = fpt.Nginx(tmp, files={"hello.txt": b"hello\n"})
    try:
        r.run("second fastproxy on the same bind exits 2", test_second_fastproxy_refused,
              tmp, origin)
        r.run("any other listener (reuseport or not, v4/v6, wildcards) exits 2",
              test_foreign_listeners_refused, tmp, origin)
        r.run("restart over TIME_WAIT is not refused", test_time_wait_not_refused, tmp, origin)
        r.run("memory bound: -c and the start agree", test_memory_bound_agrees, tmp, origin)
        r.run("a directory as the configuration is named as such", test_directory_as_config, tmp)
    finally:
        origin.stop()
    r.finish()


if __name__ == "__main__":
    main()
