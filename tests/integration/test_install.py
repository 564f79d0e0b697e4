#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""`meson install` of this build into a DESTDIR: the binary, the systemd unit whose ExecStart
is the installed binary under this build's prefix, /etc/fastproxy/proxy.yaml (valid, and kept
when an edited one is there), the man pages fastproxy(8) and fastproxy.yaml(5) (rendered without
groff warnings), every document the unit's Documentation= names, and `systemd-analyze verify`
on the installed unit (skipped, 77, without systemd-analyze)."""

import json
import os
import re
import shutil
import subprocess

import fpt

BUILD = os.environ.get("FP_BUILD_ROOT", "")


def meson_install(root):
    p = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", root],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def prefix_of_build():
    p = subprocess.run(["meson", "introspect", "--buildoptions", BUILD], capture_output=True,
                       text=True, timeout=60)
    opts = {o["name"]: o["value"] for o in json.loads(p.stdout)}
    return opts["prefix"]


def unit_values(text, key):
    return [l.split("=", 1)[1] for l in text.splitlines() if l.startswith(key + "=")]


def check_layout(root, prefix):
    units = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
             if f == "fastproxy.service"]
    assert len(units) == 1, units
    unit = units[0]
    with open(unit) as f:
        text = f.read()
    assert "@" not in text.replace("$MAINPID", ""), "unsubstituted template: " + text
    binary = prefix + "/bin/fastproxy"
    (start,) = unit_values(text, "ExecStart")
    (pre,) = unit_values(text, "ExecStartPre")
    assert start == binary + " -f ${CONFIG}", start
    assert pre == binary + " -c -f ${CONFIG}", pre
    assert os.access(root + binary, os.X_OK), binary
    (env,) = unit_values(text, "Environment")
    assert env == "CONFIG=/etc/fastproxy/proxy.yaml", env
    conf = root + "/etc/fastproxy/proxy.yaml"
    p = subprocess.run([root + binary, "-c", "-f", conf], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0 and "configuration valid" in p.stdout, p
    docs = " ".join(unit_values(text, "Documentation")).split()
    assert "man:fastproxy(8)" in docs and "man:fastproxy.yaml(5)" in docs, docs
    for d in docs:
        if d.startswith("file://"):
            assert os.path.isfile(root + d[len("file://"):]), "Documentation= %s missing" % d
        else:
            m = re.fullmatch(r"man:([\w.]+)\((\d)\)", d)
            assert m, d
            page = "%s%s/share/man/man%s/%s.%s" % (root, prefix, m[2], m[1], m[2])
            assert os.path.isfile(page), page
            if shutil.which("groff"):
                w = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True,
                                   text=True, timeout=30)
                assert w.returncode == 0 and w.stderr == "", (page, w.stderr)
    return unit, text, binary


def test_install_layout_and_unit(tmp):
    if not BUILD or not shutil.which("meson"):
        print("FP_BUILD_ROOT or meson missing")
        return fpt.SKIP
    root = os.path.join(tmp, "root")
    prefix = prefix_of_build()
    meson_install(root)
    unit, text, binary = check_layout(root, prefix)

    # An edited configuration survives a second install.
    conf = root + "/etc/fastproxy/proxy.yaml"
    with open(conf, "a") as f:
        f.write("# edited by the operator\n")
    meson_install(root)
    with open(conf) as f:
        assert f.read().endswith("# edited by the operator\n"), "proxy.yaml was overwritten"

    if not shutil.which("systemd-analyze"):
        print("systemd-analyze not installed: verify skipped")
        return fpt.SKIP
    # verify runs ExecStart's binary path and `man` for each man: page, on this machine's
    # root: point both at the DESTDIR copies, nothing else changed.
    path = os.path.join(tmp, "fastproxy.service")
    with open(path, "w") as f:
        f.write(text.replace(binary, root + binary))
    env = dict(os.environ, MANPATH=root + prefix + "/share/man")
    p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                       timeout=60, env=env)
    problems = [l for l in p.stderr.splitlines() if "fastproxy.service" in l]
    assert p.returncode == 0 and not problems, p.stderr


def test_debian_version_is_project_version():
    """packaging/build-deb.sh builds the version of packaging/debian/changelog (native)."""
    if not BUILD:
        return fpt.SKIP
    root = os.environ.get("FP_SOURCE_ROOT", "")
    with open(os.path.join(root, "packaging", "debian", "changelog")) as f:
        m = re.match(r"fastproxy \(([^)]+)\) ", f.readline())
    p = subprocess.run(["meson", "introspect", "--projectinfo", BUILD], capture_output=True,
                       text=True, timeout=60)
    version = json.loads(p.stdout)["version"]
    assert m and m[1] == version, (m and m[1], version)


def main():
    r = fpt.Runner()
    tmp = fpt.tmpdir()
    try:
        r.run("meson install: binary, unit, config kept, man pages, docs; systemd-analyze verify",
              test_install_layout_and_unit, tmp)
        r.run("packaging/debian/changelog has the project's version",
              test_debian_version_is_project_version)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r.finish()


if __name__ == "__main__":
    main()
