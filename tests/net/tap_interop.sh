#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Interoperability of the user-space stack with the Linux kernel's TCP over TAP interfaces, inside
# a network namespace this test creates and deletes:
#   1. ping to the stack's address is answered;
#   2. a kernel client sends MIB MiB to fp-stackd's echo server and checks the echo (SHA-256);
#   3. fp-stackd connects to a kernel echo server, sends MIB MiB and checks the echo byte by byte;
#   3b. the same with 1% of frames dropped each way at the stack (SACK interop);
#   4. 2000 short kernel connections (16 at a time) and a transfer to a second echo server that
#      has no SYN queue (--syn-backlog 0), so that SYN cookies open every one of them;
#   5. fp-stackd prints its counters on SIGUSR1 and goes on, exits 0 on SIGTERM.
# Usage: tap_interop.sh FP_STACKD TAP_PEER_PY MIB. Exits 77 when root, /dev/net/tun or netns is
# missing.
set -u
STACKD=$1
PEER=$2
MIB=$3
skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "not root"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
command -v ip >/dev/null || skip "no ip(8)"
command -v python3 >/dev/null || skip "no python3"
NS=fpstk$$
ip netns add "$NS" 2>/dev/null || skip "ip netns add not permitted"
LOG=$(mktemp -d)
SRV_PID=
CK_PID=
PEER_PID=
cleanup() {
    for p in $SRV_PID $CK_PID $PEER_PID; do
        kill "$p" 2>/dev/null
    done
    for p in $SRV_PID $CK_PID $PEER_PID; do
        wait "$p" 2>/dev/null
    done
    ip netns del "$NS" 2>/dev/null
    rm -rf "$LOG"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
NX="ip netns exec $NS"
$NX ip link set lo up

# The TAP devices are created here (persistent) and configured before fp-stackd attaches, so the
# kernel side is ready when the stack sends its first frame.
for t in 0 1 2; do
    $NX ip tuntap add dev fptap$t mode tap || fail "ip tuntap add"
    $NX ip addr add 10.99.$t.1/24 dev fptap$t
    $NX ip link set fptap$t up
done

# Server instance on fptap0, 10.99.0.2; the kernel side is 10.99.0.1.
$NX "$STACKD" --tap fptap0 --address 10.99.0.2/24 --port 7 --mode echo --syn-backlog 2 \
    2>"$LOG/srv.log" &
SRV_PID=$!
i=0
while ! grep -qs "up, port" "$LOG/srv.log"; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat "$LOG/srv.log"; fail "fp-stackd did not start"; }
    sleep 0.05
done

if command -v ping >/dev/null; then
    $NX ping -c 3 -i 0.2 -W 2 10.99.0.2 >"$LOG/ping.log" 2>&1 || { cat "$LOG/ping.log"; fail "ping"; }
    grep -E "3 received|3 packets received" "$LOG/ping.log" || fail "ping replies"
else
    echo "ping not installed: ping check skipped" >&2
fi

BYTES=$((MIB * 1024 * 1024))
timeout 100 $NX python3 "$PEER" client 10.99.0.2 7 "$BYTES" || { cat "$LOG/srv.log"; fail "kernel client -> stack echo"; }

# Client instance on fptap1, 10.99.1.2, connecting to a kernel echo server on 10.99.1.1:9000.
$NX python3 "$PEER" echo-server 10.99.1.1 9000 >"$LOG/peer.log" 2>&1 &
PEER_PID=$!
i=0
while ! grep -qs listening "$LOG/peer.log"; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat "$LOG/peer.log"; fail "kernel echo server did not start"; }
    sleep 0.05
done
T0=$(date +%s%N)
timeout 100 $NX "$STACKD" --tap fptap1 --address 10.99.1.2/24 --connect 10.99.1.1:9000 \
    --bytes "$BYTES" 2>"$LOG/cli.log"
RC=$?
T1=$(date +%s%N)
cat "$LOG/peer.log"
grep "client sent" "$LOG/cli.log"
[ $RC = 0 ] || { cat "$LOG/cli.log"; fail "stack client -> kernel echo server (rc $RC)"; }
echo "stack client -> kernel echo: $BYTES bytes each way in $(((T1 - T0) / 1000000)) ms"
wait "$PEER_PID"
PEER_PID=

# The same with 1% of frames dropped each way at the stack's edge: the stack recovers from the
# kernel's SACKs, the kernel from the stack's. A fifth of the size keeps the test short.
LBYTES=$((BYTES / 5))
$NX python3 "$PEER" echo-server 10.99.1.1 9000 >"$LOG/peer2.log" 2>&1 &
PEER_PID=$!
i=0
while ! grep -qs listening "$LOG/peer2.log"; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat "$LOG/peer2.log"; fail "kernel echo server did not start"; }
    sleep 0.05
done
T0=$(date +%s%N)
timeout 100 $NX "$STACKD" --tap fptap1 --address 10.99.1.2/24 --connect 10.99.1.1:9000 \
    --bytes "$LBYTES" --loss-ppm 10000 2>"$LOG/cli.log"
RC=$?
T1=$(date +%s%N)
grep -E "client sent|dropped by --loss|retransmits|retransmission timeouts" "$LOG/cli.log"
[ $RC = 0 ] || { cat "$LOG/cli.log"; fail "stack client -> kernel echo server with 1% loss (rc $RC)"; }
echo "stack client -> kernel echo, 1% loss each way: $LBYTES bytes each way in $(((T1 - T0) / 1000000)) ms"
wait "$PEER_PID"
PEER_PID=

# A second server on fptap2 (10.99.2.2) with no SYN queue at all: every connection is opened by
# a SYN cookie, so the cookie path meets the kernel's TCP deterministically.
$NX "$STACKD" --tap fptap2 --address 10.99.2.2/24 --port 7 --mode echo --syn-backlog 0 \
    2>"$LOG/ck.log" &
CK_PID=$!
i=0
while ! grep -qs "up, port" "$LOG/ck.log"; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat "$LOG/ck.log"; fail "fp-stackd (cookies) did not start"; }
    sleep 0.05
done
# 2000 connections take well under a second; 30 s means something stalls.
timeout 30 $NX python3 "$PEER" churn 10.99.2.2 7 2000 16 || { cat "$LOG/ck.log"; fail "kernel churn"; }
timeout 100 $NX python3 "$PEER" client 10.99.2.2 7 $((BYTES / 10)) || { cat "$LOG/ck.log"; fail "transfer over a cookie connection"; }
kill -TERM "$CK_PID"
wait "$CK_PID"
RC=$?
CK_PID=
[ $RC = 0 ] || fail "fp-stackd (cookies) exit status $RC on SIGTERM"
grep -E "SYN cookies (sent|validated)" "$LOG/ck.log"
grep -q "SYN cookies validated .* 2001$" "$LOG/ck.log" || fail "not every connection was opened by a SYN cookie"

kill -USR1 "$SRV_PID"
i=0
while ! grep -qs "fp-stackd: counters" "$LOG/srv.log"; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "no counters printed on SIGUSR1"
    sleep 0.05
done
kill -0 "$SRV_PID" || fail "fp-stackd died on SIGUSR1"

kill -TERM "$SRV_PID"
wait "$SRV_PID"
RC=$?
SRV_PID=
CK_PID=
[ $RC = 0 ] || fail "fp-stackd exit status $RC on SIGTERM"
grep -q "echo requests answered" "$LOG/srv.log" || fail "counters not printed at exit"
echo "PASS"
exit 0
