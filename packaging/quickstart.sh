#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# README command (1): install, build, then run fastproxy on conf/proxy.yaml in front of a demo
# origin (nginx serving conf/demo-origin/ on 127.0.0.1:9001), and show a request through it.
# Both keep running in the background; the script prints how to stop them.
set -eu
cd "$(dirname "$0")/.."
./packaging/install-deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build
run=/tmp/fastproxy-demo
mkdir -p "$run"
for f in "$run/origin.pid" "$run/fastproxy.pid"; do
    if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then kill "$(cat "$f")"; sleep 0.5; fi
done
sed "s|@ROOT@|$(pwd)/conf/demo-origin|; s|@RUN@|$run|g" conf/demo-origin/nginx.conf.in > "$run/nginx.conf"
nginx -p "$run" -c "$run/nginx.conf" -g "daemon off; pid $run/origin-nginx.pid;" >"$run/origin.log" 2>&1 &
echo $! > "$run/origin.pid"
sleep 0.3
if ! kill -0 "$(cat "$run/origin.pid")" 2>/dev/null; then
    echo "the demo origin did not start (is 127.0.0.1:9001 taken?):" >&2
    cat "$run/origin.log" >&2
    exit 1
fi
setsid build/src/fastproxy -f conf/proxy.yaml >"$run/fastproxy.log" 2>&1 < /dev/null &
echo $! > "$run/fastproxy.pid"
i=0
until curl -sf -o /dev/null http://127.0.0.1:8080/ || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
curl -si http://127.0.0.1:8080/
echo
echo "fastproxy (pid $(cat "$run/fastproxy.pid")) listens on 127.0.0.1:8080, stats on 127.0.0.1:9100;"
echo "the demo origin (pid $(cat "$run/origin.pid")) on 127.0.0.1:9001. Logs in $run."
echo "Stop both: kill \$(cat $run/fastproxy.pid) \$(cat $run/origin.pid)"
