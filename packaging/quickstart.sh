#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# README command (1): install what the demo needs (build packages, curl, nginx), build, then run
# fastproxy on conf/proxy.yaml in front of a demo origin (nginx serving conf/demo-origin/ on
# 127.0.0.1:9001), and show a request through it. Both keep running in the background, detached
# from this script's output; their PIDs are in /tmp/fastproxy-demo/{fastproxy,origin}.pid.
# Running it again replaces a demo it started before. Works before or after tests/run (both use
# build/; the test command only adds -Werror to it).
set -eu
cd "$(dirname "$0")/.."
./packaging/install-deps.sh build demo
[ -f build/meson-private/coredata.dat ] || meson setup build --buildtype=release
ninja -C build
run=/tmp/fastproxy-demo
# nginx's workers run as nobody: they read the page from here (world-readable), never from the
# checkout, which may sit where only root can read (/root/fastproxy gave 403 Forbidden).
mkdir -p "$run/www"
chmod 0755 "$run" "$run/www"
install -m 0644 conf/demo-origin/index.html "$run/www/index.html"

# Stops the process whose PID file is $1 if it is still the program $2 (a PID can be reused).
stop_pidfile() {
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    rm -f "$1"
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
    *"$2" | *"$2 (deleted)") ;;
    *) return 0 ;;
    esac
    kill "$pid" 2>/dev/null || return 0
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}
stop_pidfile "$run/fastproxy.pid" /fastproxy
stop_pidfile "$run/origin.pid" /nginx

# Each program writes its own PID and is exec'd in place, so the PID file names the process
# itself whatever setsid does; setsid and the redirections detach it from this script's
# session, terminal and output (a caller reading our output sees its end when we exit).
sed "s|@ROOT@|$run/www|; s|@RUN@|$run|g" conf/demo-origin/nginx.conf.in > "$run/nginx.conf"
setsid sh -c 'echo $$ > "$1/origin.pid"; exec nginx -p "$1" -c "$1/nginx.conf" \
    -g "daemon off; pid $1/origin-nginx.pid;"' sh "$run" </dev/null >"$run/origin.log" 2>&1 &
setsid sh -c 'echo $$ > "$1/fastproxy.pid"; exec build/src/fastproxy -f conf/proxy.yaml' sh "$run" \
    </dev/null >"$run/fastproxy.log" 2>&1 &
i=0
until curl -sf -o /dev/null http://127.0.0.1:8080/ || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
for p in origin fastproxy; do
    if ! [ -f "$run/$p.pid" ] || ! kill -0 "$(cat "$run/$p.pid")" 2>/dev/null; then
        echo "quickstart: $p did not start (is its port taken?); its log, $run/$p.log:" >&2
        cat "$run/$p.log" >&2
        stop_pidfile "$run/fastproxy.pid" /fastproxy
        stop_pidfile "$run/origin.pid" /nginx
        exit 1
    fi
done
# The demo must answer 2xx through the proxy: a 403 or 502 is a failed quick start too.
if ! curl -sfi http://127.0.0.1:8080/; then
    echo "quickstart: http://127.0.0.1:8080/ did not answer 2xx; it answered:" >&2
    curl -si http://127.0.0.1:8080/ >&2 || true
    echo "quickstart: logs in $run (origin-error.log, fastproxy.log)" >&2
    exit 1
fi
echo
echo "fastproxy (pid $(cat "$run/fastproxy.pid")) listens on 127.0.0.1:8080, stats on 127.0.0.1:9100;"
echo "the demo origin (pid $(cat "$run/origin.pid")) on 127.0.0.1:9001. Logs in $run."
echo "Stop both: kill \$(cat $run/fastproxy.pid) \$(cat $run/origin.pid)"
