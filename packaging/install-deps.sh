#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Installs the Debian 12 packages of the named groups (all groups when none is named). Run as
# root. Skips apt entirely when everything is already installed.
#   build  compile fastproxy (its runtime libraries come with the -dev packages; liburing-dev
#          for io: uring)
#   demo   the quick start: curl and nginx for the demo origin   (packaging/quickstart.sh)
#   test   the test suites: CUnit, clang + libFuzzer, the DPDK backend, real clients and origins,
#          network namespaces, systemd-analyze (and man-db: its verify runs `man` on the unit's
#          man: pages)                                             (tests/run)
#   bench  the benchmark harness: wrk, haproxy and nginx peers, gnuplot; iproute2 for the
#          io: dpdk rows, valgrind for --profile-dpdk, perf for --syscalls   (bench/run)
#   deb    building, checking and testing the Debian package: debhelper, lintian; debootstrap
#          and systemd-nspawn for a booted Debian 12   (packaging/build-deb.sh, test-deb.sh)
# Usage: packaging/install-deps.sh [build|demo|test|bench|deb]...
set -eu
build="meson ninja-build pkg-config gcc libc6-dev libev-dev libssl-dev libyaml-dev libsystemd-dev
liburing-dev"
demo="curl nginx-light"
test="libcunit1-dev clang libclang-rt-14-dev libdpdk-dev dpdk python3 curl nginx-light
iproute2 iputils-ping procps util-linux systemd man-db"
bench="python3 nginx-light haproxy wrk gnuplot-nox util-linux procps iproute2 valgrind
linux-perf"
deb="build-essential debhelper dpkg-dev fakeroot lintian debootstrap systemd-container curl"
[ $# -gt 0 ] || set -- build demo test bench deb
pkgs=""
for group in "$@"; do
    case "$group" in
    build) pkgs="$pkgs $build" ;;
    demo) pkgs="$pkgs $demo" ;;
    test) pkgs="$pkgs $test" ;;
    bench) pkgs="$pkgs $bench" ;;
    deb) pkgs="$pkgs $deb" ;;
    *)
        echo "install-deps.sh: unknown group '$group' (build, demo, test, bench, deb)" >&2
        exit 2
        ;;
    esac
done
missing=""
for p in $pkgs; do
    case " $missing " in *" $p "*) continue ;; esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi
