#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Signals an operator sends, delivered for real with kill(2) to the running binary in front of
a real nginx: SIGUSR1 reopens global.log_file as logrotate expects (the lines before the
rotation stay in the renamed file, every later line goes to the new one), every other signal
is handled or ignored (the proxy keeps serving), SIGQUIT stops gracefully with the last
access-log line written."""

import os
import signal
import time

import fpt


def config(port, origin, log_file=None):
    g = "  log_file: %s\n" % log_file if log_file else ""
    return f"""global:
  workers: 2
  maxconn: 200
{g}frontends:
  - name: fe
    bind: ["127.0.0.1:{port}"]
    mode: http
    access_log: true
    default_backend: be
backends:
  - name: be
    servers:
      - {{ name: s1, address: "127.0.0.1:{origin}" }}
"""


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def alive(fp):
    return fp.proc.p.poll() is None


def get_ok(port, path):
    status, body = fpt.http_get(port, path)
    assert status == 200 and body == b"hello\n", (status, body)


def test_usr1_reopens_log_file(tmp, origin):
    port = fpt.free_port()
    log = os.path.join(tmp, "fastproxy.log")
    fp = fpt.Fastproxy(tmp, config(port, origin.port, log), wait=[port])
    try:
        get_ok(port, "/hello.txt?before-rotation")
        assert wait_for(lambda: "before-rotation" in read(log)), read(log)
        os.rename(log, log + ".1")  # what logrotate does, then postrotate sends SIGUSR1
        os.kill(fp.proc.pid, signal.SIGUSR1)
        assert wait_for(lambda: os.path.exists(log)), "SIGUSR1 did not reopen %s" % log
        assert alive(fp), "SIGUSR1 killed fastproxy (exit %s)" % fp.proc.p.returncode
        get_ok(port, "/hello.txt?after-rotation")
        assert wait_for(lambda: "after-rotation" in read(log)), read(log)
        old = read(log + ".1")
        assert "before-rotation" in old and "after-rotation" not in old, old
        assert "SIGUSR1: reopened " + log in read(log), read(log)
        # A SIGUSR1 without a rotation appends to the same file.
        os.kill(fp.proc.pid, signal.SIGUSR1)
        assert wait_for(lambda: read(log).count("SIGUSR1: reopened") == 2), read(log)
    finally:
        rc = fp.stop()
    assert rc == 0, (rc, read(log))
    new = read(log)
    assert "stopped" in new and "before-rotation" not in new, new
    assert fp.read_log() == "", "nothing goes to stderr with a log_file: " + fp.read_log()


def test_log_file_unwritable_is_exit_2(tmp, origin):
    port = fpt.free_port()
    log = os.path.join(tmp, "no-such-dir", "fastproxy.log")
    fp = fpt.Fastproxy(tmp, config(port, origin.port, log))
    try:
        fp.proc.p.wait(10)
    finally:
        rc = fp.stop()
    assert rc == 2, rc
    assert "cannot open the log file %s: No such file or directory" % log in fp.read_log(), \
        fp.read_log()


# Each is sent twice: a handler that runs once and then reverts to the default would pass once.
OTHER_SIGNALS = ["SIGHUP", "SIGUSR2", "SIGUSR1", "SIGPIPE", "SIGALRM", "SIGVTALRM", "SIGPROF",
                 "SIGIO", "SIGPWR", "SIGXFSZ", "SIGTTIN", "SIGTTOU", "SIGWINCH", "SIGURG",
                 "SIGSTKFLT"]


def test_other_signals_keep_serving(tmp, origin):
    port = fpt.free_port()
    fp = fpt.Fastproxy(tmp, config(port, origin.port), wait=[port])
    try:
        for name in OTHER_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            for _ in range(2):
                os.kill(fp.proc.pid, sig)
                time.sleep(0.05)
                assert alive(fp), "%s: fastproxy exited %s: %s" % (
                    name, fp.proc.p.returncode, fp.read_log())
                get_ok(port, "/hello.txt?after-" + name)
        log = fp.read_log()
        assert "SIGHUP: configuration reload is not supported yet" in log, log
        assert "SIGUSR2: binary upgrade is not supported yet" in log, log
        assert "SIGUSR1: logging to stderr, no log file to reopen" in log, log
        # SIGQUIT is a graceful stop (nginx's convention), and the last request is logged.
        get_ok(port, "/hello.txt?last-request")
        os.kill(fp.proc.pid, signal.SIGQUIT)
        fp.proc.p.wait(15)
    finally:
        rc = fp.stop()
    log = fp.read_log()
    assert rc == 0, (rc, log)
    assert "no longer accepting" in log and "stopped" in log, log
    assert "last-request" in log, log


def main():
    r = fpt.Runner()
    tmp = fpt.tmpdir()
    origin = fpt.Nginx(tmp, files={"hello.txt": b"hello\n"})
    try:
        r.run("usr1_reopens_log_file", test_usr1_reopens_log_file, tmp, origin)
        r.run("log_file_unwritable_is_exit_2", test_log_file_unwritable_is_exit_2, tmp, origin)
        r.run("other_signals_keep_serving", test_other_signals_keep_serving, tmp, origin)
    finally:
        origin.stop()
    r.finish()


if __name__ == "__main__":
    main()
