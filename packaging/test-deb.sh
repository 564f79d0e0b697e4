#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Shows the Debian package on a fresh Debian 12 system booted under systemd: builds the .deb
# (packaging/build-deb.sh) unless one is given, makes a Debian 12 root file system with
# debootstrap (minbase + systemd, dbus, curl; cached under $FP_TEST_DEB_CACHE, by default
# /var/cache/fastproxy-test-deb, so reruns take about a minute), boots it with systemd-nspawn on
# a copy-on-write overlay (the cache stays pristine) in its own network namespace, then, inside:
#   - `apt-get install ./fastproxy_*.deb` resolves the Depends and its postinst starts the
#     service; `systemctl is-active` and `is-enabled`;
#   - the shipped /etc/fastproxy/proxy.yaml answers `curl` by itself: 502 Bad Gateway on
#     127.0.0.1:8080 while nothing listens on its server 127.0.0.1:9001, and /metrics on
#     127.0.0.1:9100; then, with nginx as that origin, 200 with the origin's body;
#   - global.log_file under /var/log/fastproxy (LogsDirectory=, DynamicUser=) with the access
#     log, rotated by mv + `systemctl kill -s USR1` as logrotate's postrotate does;
#   - `systemctl reload` is refused (no configuration reload yet), SIGHUP is logged as a warning;
#   - `systemctl stop`: a clean exit (Result=success, status 0) and the shutdown lines;
#   - `apt-get remove` stops the service and keeps the edited configuration (a conffile);
#     `apt-get purge` removes it and the log directory.
# It prints the unit's journal at the end. With --quickstart it then runs the README's quick
# start (packaging/quickstart.sh) as root from a copy of this tree in /root/fastproxy of another
# fresh root file system (its packages fetched first, its run without network), and checks that
# the demo page comes through fastproxy (about 2 minutes more); --readme then also runs the
# README's test command, tests/run, there (every suite; about 10 minutes more). Run as root,
# with network access
# to the Debian mirror (the packages are fetched before the boot; the booted container has no
# network, so its ports never clash with the host's).
# Usage: packaging/test-deb.sh [--quickstart | --readme] [DEB]
# Environment: FP_TEST_DEB_MIRROR (default http://deb.debian.org/debian),
#              FP_TEST_DEB_CACHE (default /var/cache/fastproxy-test-deb).
# Exit status: 0 every check passed, 1 a check failed, 77 it cannot run here (reason printed).
# The host needs no systemd: the container is managed with nsenter into its PID 1, not with
# machinectl or systemd-run -M (those need systemd-machined on the host).
set -eu
cd "$(dirname "$0")/.."
mirror=${FP_TEST_DEB_MIRROR:-http://deb.debian.org/debian}
cache=${FP_TEST_DEB_CACHE:-/var/cache/fastproxy-test-deb}
base=$cache/bookworm
quickstart=0
tests=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quickstart) quickstart=1 ;;
    --readme) quickstart=1 tests=1 ;;
    *) break ;;
    esac
    shift
done

skip() {
    echo "test-deb: SKIP: $*" >&2
    exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, mount, systemd-nspawn)"
./packaging/install-deps.sh build deb || echo "test-deb: install-deps.sh failed; going on"
for tool in debootstrap:debootstrap systemd-nspawn:systemd-container nsenter:util-linux \
    curl:curl dpkg-buildpackage:dpkg-dev; do
    command -v "${tool%%:*}" >/dev/null || skip "${tool%%:*} not found (Debian package ${tool#*:})"
done
curl -sf --max-time 15 -o /dev/null "$mirror/dists/bookworm/Release" ||
    skip "the Debian mirror $mirror is not reachable"

run=$(mktemp -d /var/tmp/fastproxy-test-deb.XXXXXX)
root=$run/pkg/root
machine=fptest$$
nspawn_pid=""
failed=0

# systemd-nspawn turns SIGTERM into an orderly shutdown of the booted container.
stop_container() {
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        kill "$nspawn_pid"
        i=0
        while kill -0 "$nspawn_pid" 2>/dev/null && [ $i -lt 300 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -0 "$nspawn_pid" 2>/dev/null && kill -KILL "$nspawn_pid"
    fi
    nspawn_pid=""
}
cleanup() {
    stop_container
    for d in "$run"/*/root; do
        mountpoint -q "$d" && umount "$d"
    done
    # nspawn leaves these behind when /run is not a tmpfs.
    rm -rf "$run" "/run/systemd/nspawn/propagate/$machine" \
        "/run/systemd/nspawn/propagate/$machine-run"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The root file system, made once: debootstrap writes to a temporary directory renamed when
# complete, so an interrupted run never leaves a broken cache behind.
if ! [ -x "$base/lib/systemd/systemd" ]; then
    echo "=== debootstrap bookworm into $base (once; about 2 minutes)"
    mkdir -p "$cache"
    rm -rf "$base.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl bookworm \
        "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        { tail -20 "$cache/debootstrap.log" >&2; echo "test-deb: debootstrap failed" >&2; exit 1; }
    mv "$base.tmp" "$base"
fi

if [ $# -gt 0 ]; then
    deb=$(realpath "$1")
else
    echo "=== packaging/build-deb.sh"
    ./packaging/build-deb.sh "$run/deb" >"$run/build-deb.log" 2>&1 ||
        { tail -30 "$run/build-deb.log" >&2; echo "test-deb: build-deb.sh failed" >&2; exit 1; }
    sed -n '/^=== lintian/,$p' "$run/build-deb.log"
    deb=$(ls "$run"/deb/fastproxy_*.deb)
fi

# Makes $1/root a fresh system: an overlay on the cached one, or a copy without overlayfs.
fresh_root() {
    mkdir -p "$1/upper" "$1/work" "$1/root"
    if ! mount -t overlay overlay -o "lowerdir=$base,upperdir=$1/upper,workdir=$1/work" \
        "$1/root" 2>"$1/mount.log"; then
        echo "test-deb: no overlayfs ($(cat "$1/mount.log")): copying the root instead"
        rmdir "$1/root"
        cp -a "$base" "$1/root"
    fi
}
# nspawn_run ROOT [nspawn options] -- COMMAND...: runs COMMAND in ROOT, not booted.
nspawn_run() {
    r=$1
    shift
    systemd-nspawn -q --register=no --keep-unit -M "$machine-run" -D "$r" --pipe "$@"
}

fresh_root "$run/pkg"
cp "$deb" "$root/var/tmp/fastproxy.deb"
# nginx-light is the origin of the last curl; its site listens where proxy.yaml's server is.
mkdir -p "$root/etc/nginx/conf.d"
cat >"$root/etc/nginx/conf.d/fastproxy-origin.conf" <<'EOF'
server {
    listen 127.0.0.1:9001;
    location / { return 200 "hello from the origin\n"; }
}
EOF

echo "=== fetch the packages (host network; the container has none once booted)"
nspawn_run "$root" env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -q &&
        apt-get install -y -q --download-only --no-install-recommends \
            /var/tmp/fastproxy.deb nginx-light' >"$run/fetch.log" 2>&1 ||
    { tail -20 "$run/fetch.log" >&2; echo "test-deb: apt-get could not fetch" >&2; exit 1; }

echo "=== boot: systemd-nspawn -b -D $root -M $machine --private-network"
setsid systemd-nspawn -q --register=no --keep-unit --private-network --console=passive \
    -b -M "$machine" -D "$root" </dev/null >"$run/console.log" 2>&1 &
nspawn_pid=$!
init=""
i=0
while [ -z "$init" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
    kill -0 "$nspawn_pid" 2>/dev/null || break
    init=$(awk '{print $1}' "/proc/$nspawn_pid/task/$nspawn_pid/children" 2>/dev/null || true)
    # The child becomes the container's PID 1 when it execs systemd.
    [ -n "$init" ] && [ "$(cat "/proc/$init/comm" 2>/dev/null)" != systemd ] && init=""
done
if [ -z "$init" ]; then
    cat "$run/console.log" >&2
    skip "systemd-nspawn did not start a container (output above)"
fi

# Runs a command inside the container, in all its namespaces, with a clean environment.
in_ct() {
    timeout 120 nsenter -t "$init" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        TERM=dumb DEBIAN_FRONTEND=noninteractive SYSTEMD_PAGER= "$@"
}
# check NAME EXPECTED ACTUAL: prints one line, counts a failure.
check() {
    if [ "$2" = "$3" ]; then
        echo "ok   - $1: $3"
    else
        echo "FAIL - $1: expected '$2', got '$3'"
        failed=$((failed + 1))
    fi
}
# check_grep NAME PATTERN TEXT
check_grep() {
    if printf '%s\n' "$3" | grep -q -- "$2"; then
        echo "ok   - $1: $(printf '%s\n' "$3" | grep -m1 -- "$2")"
    else
        echo "FAIL - $1: no line matches '$2' in:"
        printf '%s\n' "$3" | sed 's/^/       /'
        failed=$((failed + 1))
    fi
}
http_code() {
    in_ct curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true
}

# No answer ("Failed to connect to bus") or "offline" until systemd listens on its socket.
i=0
state=""
while { [ -z "$state" ] || [ "$state" = offline ]; } && [ $i -lt 60 ]; do
    state=$(in_ct systemctl is-system-running --wait 2>"$run/state.log" || true)
    { [ -z "$state" ] || [ "$state" = offline ]; } && sleep 1
    i=$((i + 1))
done
echo "container $machine: init pid $init (host), system $state"
case "$state" in
running | degraded) ;;
*) cat "$run/console.log" "$run/state.log" >&2; echo "test-deb: the container did not boot" >&2; exit 1 ;;
esac
[ "$state" = running ] || in_ct systemctl --failed --no-pager --no-legend

echo "=== install"
out=$(in_ct apt-get install -y -q --no-install-recommends /var/tmp/fastproxy.deb 2>&1) || true
check_grep "apt-get install ./fastproxy.deb resolves its Depends" "^Setting up fastproxy" "$out"
check "systemctl is-active fastproxy (started by the postinst)" active \
    "$(in_ct systemctl is-active fastproxy || true)"
check "systemctl is-enabled fastproxy" enabled "$(in_ct systemctl is-enabled fastproxy || true)"

echo "=== the shipped /etc/fastproxy/proxy.yaml"
check "curl http://127.0.0.1:8080/ with no server on 127.0.0.1:9001" 502 \
    "$(http_code http://127.0.0.1:8080/)"
check "curl http://127.0.0.1:9100/metrics" 200 "$(http_code http://127.0.0.1:9100/metrics)"
check_grep "/metrics in the exposition format" "^# TYPE fastproxy_workers gauge" \
    "$(in_ct curl -s --max-time 5 http://127.0.0.1:9100/metrics || true)"
out=$(in_ct apt-get install -y -q --no-install-recommends nginx-light 2>&1) || true
check "nginx-light as the origin on 127.0.0.1:9001" active "$(in_ct systemctl is-active nginx || true)"
check "curl http://127.0.0.1:8080/ through fastproxy to nginx" "hello from the origin" \
    "$(in_ct curl -s --max-time 5 http://127.0.0.1:8080/ || true)"

echo "=== log file, access log, logrotate's SIGUSR1"
in_ct sed -i 's|^global:$|global:\n  log_file: /var/log/fastproxy/fastproxy.log|;
    s|^\(    mode: http\)$|\1\n    access_log: true|' /etc/fastproxy/proxy.yaml
in_ct systemctl restart fastproxy || true
check "systemctl restart fastproxy with log_file and access_log" active \
    "$(in_ct systemctl is-active fastproxy || true)"
check "curl /first" 200 "$(http_code http://127.0.0.1:8080/first)"
in_ct mv /var/log/fastproxy/fastproxy.log /var/log/fastproxy/fastproxy.log.1
in_ct systemctl kill -s USR1 --kill-whom=main fastproxy
sleep 0.5
check "curl /second" 200 "$(http_code http://127.0.0.1:8080/second)"
sleep 0.5
old=$(in_ct cat /var/log/fastproxy/fastproxy.log.1 || true)
new=$(in_ct cat /var/log/fastproxy/fastproxy.log || true)
check_grep "the rotated file has /first" 'web app/s1 200 .*"GET /first"' "$old"
check_grep "the reopened file has the reopen line" "SIGUSR1: reopened" "$new"
check_grep "the reopened file has /second" 'web app/s1 200 .*"GET /second"' "$new"
check "no journal priority prefix (<N>) in the log file" 0 \
    "$(printf '%s\n%s\n' "$old" "$new" | grep -c '^<[0-9]>' || true)"
# Without libnss-systemd (not in minbase) the dynamic user has no name: compare the uid.
uid=$(in_ct stat -c %u /var/log/fastproxy/fastproxy.log || true)
pid=$(in_ct systemctl show -p MainPID --value fastproxy || true)
check "the log file belongs to the service's dynamic user (DynamicUser=)" \
    "$(in_ct stat -c %u "/proc/$pid" || true)" "$uid"
in_ct sed -i '/^  log_file: /d' /etc/fastproxy/proxy.yaml
in_ct systemctl restart fastproxy

echo "=== reload, signals, stop"
out=$(in_ct systemctl reload fastproxy 2>&1) && out="reload accepted: $out"
check_grep "systemctl reload is refused (no configuration reload yet)" "not applicable" "$out"
in_ct systemctl kill -s USR1 --kill-whom=main fastproxy
in_ct systemctl kill -s HUP --kill-whom=main fastproxy
sleep 0.5
check "still active after USR1 and HUP" active "$(in_ct systemctl is-active fastproxy || true)"
check_grep "journal, priority warning: SIGHUP" "SIGHUP: configuration reload is not supported" \
    "$(in_ct journalctl -u fastproxy -p warning -o cat --no-pager || true)"
check "systemctl stop fastproxy" 0 "$(in_ct systemctl stop fastproxy >/dev/null 2>&1; echo $?)"
check "after stop" "Result=success ExecMainStatus=0 ActiveState=inactive" \
    "$(in_ct systemctl show -p Result -p ExecMainStatus -p ActiveState fastproxy | sort -r |
        tr '\n' ' ' | sed 's/ $//')"
journal=$(in_ct journalctl -u fastproxy -o short-precise --no-pager || true)
check_grep "journal: drained and stopped" "fastproxy\[[0-9]*\]: info: stopped" "$journal"
check "journal: no line at priority err or worse" "" \
    "$(in_ct journalctl -u fastproxy -p err -o cat --no-pager -q || true)"

echo "=== remove"
in_ct systemctl start fastproxy
out=$(in_ct apt-get remove -y -q fastproxy 2>&1) || true
check_grep "apt-get remove fastproxy" "^Removing fastproxy" "$out"
check "service after remove" inactive "$(in_ct systemctl is-active fastproxy || true)"
check "the edited /etc/fastproxy/proxy.yaml is kept" 1 \
    "$(in_ct grep -c '^    access_log: true$' /etc/fastproxy/proxy.yaml || true)"
out=$(in_ct apt-get purge -y -q fastproxy 2>&1) || true
check_grep "apt-get purge fastproxy" "^Purging configuration files for fastproxy" "$out"
check "after purge: /etc/fastproxy, /var/log/fastproxy, /var/log/private/fastproxy" "" \
    "$(in_ct ls -d /etc/fastproxy /var/log/fastproxy /var/log/private/fastproxy 2>/dev/null || true)"

echo "=== journalctl -u fastproxy"
printf '%s\n' "$journal"
stop_container

if [ "$quickstart" = 1 ]; then
    echo "=== the README's quick start on another fresh Debian 12, as root in /root/fastproxy"
    fresh_root "$run/qs"
    qs=$run/qs/root
    mkdir "$qs/root/fastproxy"
    tar --exclude=./.git --exclude='./build*' --exclude=./bench/results -cf - . |
        tar -xf - -C "$qs/root/fastproxy"
    # What the quick start (and tests/run) install, fetched, not installed, with the host's
    # network: install-deps.sh with no group names every group.
    groups="build demo"
    [ "$tests" = 1 ] && groups=""
    echo 'APT::Get::Download-Only "true";' >"$qs/var/tmp/download-only.conf"
    # shellcheck disable=SC2086
    nspawn_run "$qs" --chdir=/root/fastproxy env DEBIAN_FRONTEND=noninteractive \
        APT_CONFIG=/var/tmp/download-only.conf ./packaging/install-deps.sh $groups \
        >"$run/qs-fetch.log" 2>&1 ||
        { tail -20 "$run/qs-fetch.log" >&2; echo "test-deb: apt-get could not fetch" >&2; exit 1; }
    # Without network its apt-get update fails (a warning) and apt-get install takes the
    # fetched packages; the demo and its curl run in the container's own loopback.
    rc=0
    nspawn_run "$qs" --private-network --chdir=/root/fastproxy env DEBIAN_FRONTEND=noninteractive \
        sh -c './packaging/quickstart.sh </dev/null && echo "=== curl again" &&
            curl -s --max-time 5 http://127.0.0.1:8080/' >"$run/qs.log" 2>&1 || rc=$?
    check "packaging/quickstart.sh, exit status" 0 "$rc"
    check_grep "the quick start's curl: 200" "^HTTP/1.1 200" "$(tail -n 40 "$run/qs.log")"
    check_grep "curl again: the demo page through fastproxy" "Hello from the demo origin" \
        "$(sed -n '/^=== curl again/,$p' "$run/qs.log")"
    [ "$rc" = 0 ] || tail -30 "$run/qs.log"
fi

if [ "$tests" = 1 ]; then
    echo "=== the README's test command, tests/run, after the quick start, in the same checkout"
    # The DPDK suite's net_tap ports need the TUN device.
    tun=""
    [ -c /dev/net/tun ] && tun=--bind=/dev/net/tun
    rc=0
    # shellcheck disable=SC2086
    nspawn_run "$qs" --private-network $tun --chdir=/root/fastproxy \
        env DEBIAN_FRONTEND=noninteractive ./tests/run >"$run/tests.log" 2>&1 || rc=$?
    check "tests/run, exit status" 0 "$rc"
    grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)|^(Ok|Fail|Skipped|Timeout): ' "$run/tests.log" |
        sort -u
    [ "$rc" = 0 ] || tail -60 "$run/tests.log"
fi
if [ "$failed" -gt 0 ]; then
    echo "test-deb: $failed check(s) failed"
    exit 1
fi
echo "test-deb: every check passed"
