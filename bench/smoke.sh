#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# meson test --suite bench: runs bench/run on one tiny case (1 run, 2 s, plus a 1 s open-loop
# pair) and checks that the report is complete and that every closed-loop request of every peer
# got a 2xx (no error, no timeout) at a non-zero rate. Asserts nothing about speed.
# Environment (set by bench/meson.build): FP_BENCH_FASTPROXY, FP_BENCH_LOADGEN,
# FP_BENCH_SLOW_ORIGIN. Exit 77 when nginx, haproxy, wrk, taskset or python3 is missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
for tool in nginx haproxy wrk taskset python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench smoke: $tool not installed, skipping" >&2
        exit 77
    fi
done
out=$(mktemp -d /tmp/fp-bench-smoke.XXXXXX)
cleanup() { rm -rf "$out"; }
trap cleanup EXIT

args=(--smoke --overload --out "$out/r")
check=(--overload --no-errors)
fp=${FP_BENCH_FASTPROXY:-}
if [ -n "$fp" ] && [ -x "$fp" ]; then
    args+=(--fastproxy "$fp")
    check+=(--fastproxy)
else
    args+=(--fastproxy /nonexistent/fastproxy)
fi
[ -n "${FP_BENCH_LOADGEN:-}" ] && args+=(--loadgen "$FP_BENCH_LOADGEN")
[ -n "${FP_BENCH_SLOW_ORIGIN:-}" ] && args+=(--slow-origin "$FP_BENCH_SLOW_ORIGIN")

# The usage text a user reads first (its help strings are %-formatted: a lone % broke it).
if ! "$here/run" --help >/dev/null; then
    echo "bench smoke: bench/run --help failed" >&2
    exit 1
fi
"$here/run" "${args[@]}"
rc=$?
# meson shows the last lines of a failed test's output: the reason goes last.
if [ "$rc" -ne 0 ]; then
    [ -f "$out/r/report.md" ] && cat "$out/r/report.md" >&2
    for f in "$out"/r/logs/*.log; do
        [ -f "$f" ] && { echo "== $f" >&2; tail -n 20 "$f" >&2; }
    done
    echo "bench smoke: bench/run exited $rc" >&2
    exit 1
fi
if ! "$here/check_report" "$out/r" "${check[@]}" >"$out/check.txt" 2>&1; then
    cat "$out/r/report.md" >&2
    cat "$out/check.txt" >&2
    exit 1
fi
cat "$out/check.txt"
