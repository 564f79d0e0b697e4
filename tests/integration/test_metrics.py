# SPDX-License-Identifier: BSD-3-Clause
"""The stats listener: /metrics in the Prometheus text format 0.0.4 (checked by a strict parser,
and by promtool when Debian's prometheus package is installed), /stats with the same figures
as JSON, 404 and 405, counters that move with real traffic (curl, wrk, nginx origin), and a
listener that slow clients cannot block."""

import json
import shutil
import socket
import subprocess
import time

import fpt

# The only series without a worker label: facts of the whole process, not sums of workers.
GLOBAL = {"fastproxy_workers", "fastproxy_maxconn", "fastproxy_reuseport_cpu_steering"}


def scrape(env):
    status, hdrs, body = fpt.stats_get(env["stats_port"])
    assert status == 200, status
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs
    assert int(hdrs["content-length"]) == len(body), hdrs
    return body.decode()


def promtool(text):
    """Runs promtool check metrics on text; returns None when promtool is not installed."""
    tool = shutil.which("promtool")
    if tool is None:
        return None
    p = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == "" and p.stderr.strip() == "", \
        (p.returncode, p.stdout, p.stderr)
    return True


def test_exposition_format(env):
    fams = fpt.parse_prometheus(scrape(env))
    for name, f in fams.items():
        assert f["help"].strip(), name
        for sname, labels, _ in f["samples"]:
            if name in GLOBAL:
                assert labels == {}, (sname, labels)
                continue
            # No unlabelled total beside per-worker series: sum() over a family is right.
            assert "worker" in labels, (sname, labels)
            if name in ("fastproxy_server_slots_busy", "fastproxy_server_selected_total"):
                assert {"backend", "server"} <= set(labels), (sname, labels)
            if name.startswith("fastproxy_frontend_"):
                assert "frontend" in labels, (sname, labels)
    for name in ("fastproxy_accepted_total", "fastproxy_io_accept_errors_total",
                 "fastproxy_io_conn_pool_empty_total", "fastproxy_conn_pool_empty_total",
                 "fastproxy_sess_pool_empty_total", "fastproxy_buf_pool_empty_total",
                 "fastproxy_hdrs_pool_empty_total", "fastproxy_http_errors_total",
                 "fastproxy_frontend_accepted_total", "fastproxy_server_selected_total",
                 "fastproxy_queue_len", "fastproxy_bytes_out_total"):
        assert name in fams, name
    h = fams["fastproxy_queue_delay_seconds"]
    assert h["type"] == "histogram", h["type"]
    les = [l["le"] for n, l, _ in h["samples"] if n.endswith("_bucket") and
           l["worker"] == "0" and l["backend"] == "app"]
    assert les == ["0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf"], les
    assert fams["fastproxy_workers"]["samples"][0][2] == 2
    if promtool(scrape(env)) is None:
        print("     promtool not installed: the strict parser only")


def test_counters_move(env):
    before = fpt.stats(env["stats_port"])
    n = 20
    urls = ["http://127.0.0.1:%d/small.txt" % env["port"]] * n
    p = subprocess.run(["curl", "-s", "-S", "-o", "/dev/null"] + urls, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert fpt.http_get(env["dead_port"])[0] == 502
    time.sleep(0.2)
    after = fpt.stats(env["stats_port"])

    def d(name, **labels):
        return fpt.stat_sum(after, name, **labels) - fpt.stat_sum(before, name, **labels)

    assert d("fastproxy_http_requests_total") == n + 1, d("fastproxy_http_requests_total")
    assert d("fastproxy_http_responses_total") == n  # the 502 was not the server's
    assert d("fastproxy_accepted_total") == 2, d("fastproxy_accepted_total")
    assert d("fastproxy_frontend_accepted_total", frontend="web") == 1
    assert d("fastproxy_frontend_accepted_total", frontend="dead") == 1
    assert d("fastproxy_server_selected_total", backend="app", server="n1") == n
    assert d("fastproxy_server_selected_total", backend="dead", server="d1") == 1
    assert d("fastproxy_http_errors_total", code="502") == 1
    assert d("fastproxy_connect_errors_total") == 1
    assert d("fastproxy_bytes_out_total") >= n * len(b"small\n")
    assert d("fastproxy_queue_delay_seconds_count") == 0  # nothing had to wait
    assert fpt.stat_sum(after, "fastproxy_sessions_active") == 0


def test_scrape_under_load(env):
    """A real scrape taken while wrk loads the proxy passes the strict parser and promtool."""
    if not shutil.which("wrk"):
        return fpt.SKIP
    w = subprocess.Popen(["wrk", "-t2", "-c20", "-d3s", "http://127.0.0.1:%d/small.txt" %
                          env["port"]], stdout=subprocess.PIPE, text=True)
    st = {}
    try:
        # The first scrape that sees wrk's connections open (wrk may be slow to start).
        end = time.monotonic() + 2.5
        while time.monotonic() < end and w.poll() is None:
            text = scrape(env)
            st = fpt.stats(env["stats_port"])
            if fpt.stat_sum(st, "fastproxy_sessions_active") > 0:
                break
            time.sleep(0.1)
    finally:
        out = w.communicate(timeout=30)[0]
    assert fpt.stat_sum(st, "fastproxy_sessions_active") > 0, "no load during the scrape"
    fpt.parse_prometheus(text)
    assert promtool(text) in (True, None)
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    print("     scrape under load: %d series, %d sessions open, promtool %s" %
          (len(st), fpt.stat_sum(st, "fastproxy_sessions_active"),
           "ok" if shutil.which("promtool") else "not installed"))


def test_json_same_figures(env):
    time.sleep(0.2)
    status, hdrs, body = fpt.stats_get(env["stats_port"], "/stats")
    assert status == 200 and hdrs["content-type"] == "application/json", (status, hdrs)
    fams_json = json.loads(body)["families"]
    fams_text = fpt.parse_prometheus(scrape(env))
    assert [f["name"] for f in fams_json] == list(fams_text), "families differ"
    for f in fams_json:
        t = fams_text[f["name"]]
        assert (f["type"], f["help"]) == (t["type"], t["help"]), f["name"]
        got = [(s["name"], s["labels"], float(s["value"])) for s in f["samples"]]
        assert got == t["samples"], (f["name"], got[:3], t["samples"][:3])


def test_paths_and_methods(env):
    sp = env["stats_port"]
    for path in ("/", "/metricsx", "/stats/", "/favicon.ico"):
        assert fpt.stats_get(sp, path)[0] == 404, path
    for method in ("POST", "PUT", "DELETE"):
        status, hdrs, _ = fpt.stats_get(sp, "/metrics", method)
        assert status == 405 and hdrs["allow"] == "GET, HEAD", (method, status, hdrs)
    status, hdrs, body = fpt.stats_get(sp, "/metrics", "HEAD")
    assert status == 200 and int(hdrs["content-length"]) > 1000 and body == b"", hdrs
    assert fpt.stats_get(sp, "/metrics?x=1")[0] == 200
    s = socket.create_connection(("127.0.0.1", sp), timeout=5)
    s.sendall(b"HELLO\r\n\r\n")
    assert fpt.recv_all(s).startswith(b"HTTP/1.1 400 "), "garbage not answered 400"
    s = socket.create_connection(("127.0.0.1", sp), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 8000 + b"\r\n\r\n")
    assert fpt.recv_all(s).startswith(b"HTTP/1.1 431 "), "oversized head not refused"


def test_slow_clients_do_not_block(env):
    """Silent and half-sent clients of the stats port hold a slot each, not the main thread:
    a scrape beside them is answered at once, and they are closed at their deadline."""
    sp = env["stats_port"]
    slow = []
    for i in range(5):
        s = socket.create_connection(("127.0.0.1", sp), timeout=10)
        if i % 2:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
        slow.append(s)
    time.sleep(0.1)
    t0 = time.monotonic()
    scrape(env)
    took = time.monotonic() - t0
    # The proxy's own traffic is served meanwhile too (the main thread writes its log).
    assert fpt.http_get(env["port"], "/small.txt")[0] == 200
    assert took < 0.5, "a scrape took %.2f s beside %d slow clients" % (took, len(slow))
    t0 = time.monotonic()
    for s in slow:
        assert fpt.recv_all(s) == b"", "a slow client got an answer"
    waited = time.monotonic() - t0
    assert 3.5 < waited < 8, "slow clients closed after %.1f s, not at the 5 s deadline" % waited


def main():
    tmp = fpt.tmpdir()
    nginx = fpt.Nginx(tmp, {"small.txt": b"small\n"})
    ports = {k: fpt.free_port() for k in ("port", "dead_port", "stats_port")}
    cfg = f"""global:
  workers: 2
  maxconn: 2000
defaults:
  timeouts: {{ connect: 2s, client: 10s, server: 5s }}
frontends:
  - {{ name: web, bind: "127.0.0.1:{ports['port']}", default_backend: app }}
  - {{ name: dead, bind: "127.0.0.1:{ports['dead_port']}", default_backend: dead }}
backends:
  - name: app
    servers: [{{ name: n1, address: "127.0.0.1:{nginx.port}" }}]
  - {{ name: dead, servers: [{{ name: d1, address: "127.0.0.1:{fpt.free_port()}" }}] }}
stats:
  bind: "127.0.0.1:{ports['stats_port']}"
"""
    r = fpt.Runner()
    fp = None
    try:
        fp = fpt.Fastproxy(tmp, cfg, wait=[ports["port"], ports["stats_port"]])
        env = dict(ports, tmp=tmp, nginx=nginx, fp=fp)
        r.run("exposition format 0.0.4: HELP, TYPE, _total, histogram, labels",
              test_exposition_format, env)
        r.run("counters move with curl traffic", test_counters_move, env)
        r.run("scrape under wrk load passes the parser and promtool", test_scrape_under_load,
              env)
        r.run("/stats: the same families and values as JSON", test_json_same_figures, env)
        r.run("404 for other paths, 405 for other methods, HEAD, 400, 431",
              test_paths_and_methods, env)
        r.run("slow stats clients never block the main thread", test_slow_clients_do_not_block,
              env)
    finally:
        rc = fp.stop() if fp is not None else -1
        if rc != 0:
            print("fastproxy exited %s\n%s" % (rc, fp.read_log()[-3000:] if fp else ""))
            r.failed += 1
        nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    r.finish()


if __name__ == "__main__":
    main()
