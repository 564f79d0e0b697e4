#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The command line: -V, -h, -c on every shipped config (exit 0) and on broken ones (exit 1
with FILE:LINE:COL), bad usage. The systemd unit is checked as installed, in test_install.py."""

import glob
import os
import shutil
import subprocess

import fpt

ROOT = os.environ.get("FP_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args):
    return subprocess.run([fpt.fastproxy_path()] + list(args), capture_output=True, text=True,
                          timeout=10)


def test_version_and_help():
    p = run("-V")
    assert p.returncode == 0 and p.stdout.startswith("fastproxy "), p
    p = run("-h")
    assert p.returncode == 0 and "-f FILE" in p.stdout, p
    p = run()
    assert p.returncode == 1 and "missing -f FILE" in p.stderr, p
    p = run("-x")
    assert p.returncode == 1, p


def test_shipped_configs_valid():
    files = sorted(glob.glob(os.path.join(ROOT, "conf", "*.yaml")))
    assert files, "no config in conf/"
    for f in files:
        p = run("-c", "-f", f)
        if not fpt.build_has_dpdk() and "io: dpdk" in open(f).read():
            assert p.returncode == 1 and "built without DPDK" in p.stderr, (f, p.stderr)
            continue
        assert p.returncode == 0, (f, p.stderr)
        assert "configuration valid" in p.stdout, p.stdout


def test_broken_configs_rejected():
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "bad", "*.yaml")))
    assert len(files) >= 5
    for f in files:
        with open(f) as fh:
            expect = fh.readline().split("# expect: ", 1)[1].strip()
        p = run("-c", "-f", f)
        assert p.returncode == 1, (f, p)
        assert p.stderr.strip() == "%s:%s" % (f, expect), (p.stderr, expect)
        # Running (not only checking) a broken config is the same error, exit 1.
        p = run("-f", f)
        assert p.returncode == 1 and p.stderr.strip() == "%s:%s" % (f, expect), p.stderr


def test_dpdk_check():
    """-c on io: dpdk prints the port setup, or says the build has no DPDK (exit 1)."""
    f = os.path.join(ROOT, "conf", "proxy-dpdk.yaml")
    p = run("-c", "-f", f)
    if not fpt.build_has_dpdk():
        assert p.returncode == 1, p
        assert p.stderr.strip() == ("%s:6:7: io: dpdk: this fastproxy was built without DPDK "
                                    "(meson -Ddpdk=disabled or libdpdk missing); use io: kernel"
                                    % f), p.stderr
        return
    assert p.returncode == 0, p.stderr
    assert "io dpdk: port 0, address 10.77.0.2/24, gateway 10.77.0.1, 8192 mbufs per worker, " \
        "poll adaptive, rss auto" in p.stdout, p.stdout
    assert "eal: --no-huge -m 512 --no-shconf --no-pci --vdev=net_tap0,iface=fp0" in p.stdout
    # The same section under io: kernel is checked, then ignored, and -c says so.
    tmp = fpt.tmpdir()
    path = os.path.join(tmp, "k.yaml")
    with open(f) as fh:
        text = fh.read().replace("io: dpdk", "io: kernel").replace("10.77.0.2:8080",
                                                                    "127.0.0.1:8080")
    with open(path, "w") as fh:
        fh.write(text)
    p = run("-c", "-f", path)
    shutil.rmtree(tmp, ignore_errors=True)
    assert p.returncode == 0 and "the dpdk: section is ignored under io: kernel" in p.stdout, p


def test_missing_file():
    p = run("-c", "-f", "/nonexistent/proxy.yaml")
    assert p.returncode == 1
    assert p.stderr.startswith("/nonexistent/proxy.yaml: cannot open"), p.stderr


def main():
    r = fpt.Runner()
    r.run("-V, -h and usage errors", test_version_and_help)
    r.run("fastproxy -c on every conf/*.yaml exits 0", test_shipped_configs_valid)
    r.run("broken configs exit 1 with FILE:LINE:COL", test_broken_configs_rejected)
    r.run("-c on io: dpdk: port setup, or no DPDK in this build", test_dpdk_check)
    r.run("missing config file exits 1", test_missing_file)
    r.finish()


if __name__ == "__main__":
    main()
