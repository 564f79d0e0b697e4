/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The stats listener (`stats.bind`): a small HTTP/1.x server on the main thread's libev loop
 * that answers GET or HEAD /metrics (Prometheus text) and /stats (JSON), 404 for any other
 * path, 405 for any other method, one request per connection. Every socket is non-blocking
 * and every client has a deadline (FP_STATS_CLIENT_TIMEOUT_MS), a bounded request buffer and
 * a response buffer sized at start, so a slow or idle client never holds up the main thread
 * (signals, the access log, the graceful stop). At most FP_STATS_CLIENTS are served at once;
 * further ones wait in the listen backlog. Main thread only.
 */
#ifndef FP_SRC_STATS_HTTP_H
#define FP_SRC_STATS_HTTP_H

#include <stddef.h>

#include "net/addr.h"
#include "src/workers.h"

struct ev_loop;
struct fp_stats_http;

#define FP_STATS_CLIENTS           8
#define FP_STATS_CLIENT_TIMEOUT_MS 5000

/*
 * Listens on addr and serves the counters of ws from loop. Startup: allocates every buffer
 * it will use. Returns the listener, or NULL with a one-line reason in err.
 */
struct fp_stats_http *fp_stats_http_open(struct ev_loop *loop, const struct fp_workers *ws,
                                         const struct fp_addr *addr, char *err, size_t errlen);

/* Stops accepting (the graceful stop); clients being served are finished. */
void fp_stats_http_stop(struct fp_stats_http *sh);

/* Closes the listener and every client and frees sh. NULL is allowed. */
void fp_stats_http_close(struct fp_stats_http *sh);

#endif /* FP_SRC_STATS_HTTP_H */
