#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Installs the Debian 12 packages fastproxy needs to build, test and benchmark. Run as root.
# Skips apt entirely when everything is already installed.
set -eu
PKGS="meson ninja-build pkg-config gcc libc6-dev libev-dev libssl-dev libyaml-dev libcunit1-dev
libsystemd-dev libdpdk-dev dpdk clang libclang-rt-14-dev python3 curl nginx-light haproxy wrk
gnuplot-nox iproute2 iputils-ping procps util-linux systemd"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi
