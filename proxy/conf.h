/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The configuration as plain values. src/config.c fills these from YAML at startup; the data
 * path only reads them, and they are frozen before the first worker starts, so every worker
 * may read them without locks. Nothing here knows about YAML.
 */
#ifndef FP_PROXY_CONF_H
#define FP_PROXY_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"
#include "net/io.h"

#define FP_MAX_WORKERS 64
/* Most header fields an HTTP message may carry (the parser's array per message). */
#define FP_HTTP_MAX_HEADERS 256
/* Servers per backend: a session's tried servers fit in one 64-bit mask. */
#define FP_MAX_SERVERS_PER_BACKEND 64

enum fp_mode {
    FP_MODE_HTTP = 0,
    FP_MODE_TCP,
};

enum fp_balance {
    FP_LB_ROUNDROBIN = 0,
};

/* Where a value came from in the config file, for messages found after parsing. */
struct fp_conf_loc {
    uint32_t line;
    uint32_t col;
};

struct fp_timeouts_conf {
    uint32_t connect_ms;      /* server connection establishment */
    uint32_t client_ms;       /* client inactivity */
    uint32_t server_ms;       /* server inactivity */
    uint32_t http_request_ms; /* a complete request head must arrive within this */
    uint32_t keep_alive_ms;   /* idle time between two requests of a client */
    uint32_t queue_ms;        /* longest wait for a server slot */
};

/* A server's maxconn "auto": each worker adapts its limit on requests in flight to the server's
 * answer times (proxy/worker.c, docs/overload.md). */
#define FP_SRV_MAXCONN_AUTO UINT32_MAX

struct fp_server_conf {
    char              *name;
    struct fp_addr     addr;
    uint32_t           weight;
    uint32_t           weight_end; /* weights of servers 0..this one: fp_backend_conf_weights */
    uint32_t           maxconn; /* 0 = unlimited, FP_SRV_MAXCONN_AUTO: adaptive (mode http) */
    struct fp_conf_loc loc;
};

struct fp_backend_conf {
    char                  *name;
    enum fp_balance        balance;
    uint32_t               queue_size; /* requests that may wait for a server slot */
    struct fp_server_conf *servers;
    uint32_t               nb_servers;
    uint32_t               total_weight; /* sum of the weights: fp_backend_conf_weights */
    struct fp_conf_loc     loc;
};

/* Sets be's total_weight and each server's weight_end from the weights, so that a pick does
 * not sum them. The config loader calls it once per backend; call it again after changing a
 * weight. */
static inline void
fp_backend_conf_weights(struct fp_backend_conf *be)
{
    uint32_t total = 0;
    uint32_t i;

    for (i = 0; i < be->nb_servers; i++) {
        total += be->servers[i].weight;
        be->servers[i].weight_end = total;
    }
    be->total_weight = total;
}

/* An HTTP routing rule: every condition given must match; the first matching rule wins. */
struct fp_route_conf {
    char              *host;        /* exact host (case-insensitive), "*.suffix", or NULL */
    char              *path_prefix; /* NULL: any path */
    uint32_t           host_len;    /* strlen(host), set at load */
    uint32_t           path_prefix_len;
    char              *backend_name;
    uint32_t           backend; /* index into fp_conf.backends, resolved at load */
    struct fp_conf_loc backend_loc;
};

/* HTTP message limits of a frontend (RFC 9112 framing is enforced whatever these are). */
struct fp_http_limits_conf {
    uint32_t request_line; /* bytes; longer: 414 */
    uint32_t header_size;  /* bytes of the whole head; larger: 431 */
    uint32_t headers;      /* field lines; more: 431 */
    uint64_t body_size;    /* request body bytes, 0 = no limit; larger: 413 */
};

struct fp_frontend_conf {
    char                      *name;
    enum fp_mode               mode;
    struct fp_addr            *binds;
    struct fp_conf_loc        *bind_locs; /* where each of binds is written */
    uint32_t                   nb_binds;
    bool                       forwarded_for; /* add X-Forwarded-For / X-Forwarded-Proto */
    bool                       access_log;    /* one log line per HTTP request */
    struct fp_route_conf      *routes;
    uint32_t                   nb_routes;
    struct fp_http_limits_conf limits;
    char              *default_backend_name;
    uint32_t           default_backend; /* index into fp_conf.backends, resolved at load */
    struct fp_conf_loc loc;
    struct fp_conf_loc default_backend_loc;
};

enum fp_queue_discipline {
    FP_QUEUE_ADAPTIVE_LIFO = 0, /* FIFO until a standing queue, then LIFO (CoDel-style) */
    FP_QUEUE_FIFO,
};

/* Overload control (docs/overload.md). */
struct fp_overload_conf {
    enum fp_queue_discipline discipline;
    uint32_t                 codel_target_ms;   /* acceptable standing queueing delay */
    uint32_t                 codel_interval_ms; /* how long above target makes it standing */
    uint32_t                 shed_queue; /* pending connections of a full worker past which
                                            they are accepted and answered 503 */
};

/* global.maxpipes unset or "auto": sized from the open-file limit (src/workers.c). */
#define FP_MAXPIPES_AUTO UINT32_MAX

struct fp_global_conf {
    uint32_t        workers; /* 0 until resolved: "auto" = one per allowed CPU */
    int             cpus[FP_MAX_WORKERS];
    uint32_t        nb_cpus; /* 0 = worker i on the i-th allowed CPU */
    enum fp_io_kind io;
    uint32_t        maxconn;  /* client connections, all workers together */
    uint32_t        bufsize;  /* bytes per connection buffer */
    uint32_t        backlog;  /* listen(2) backlog per worker socket */
    uint32_t        maxpipes; /* io: kernel: pipes for splice(2), all workers; 0 = off, or
                               * FP_MAXPIPES_AUTO (fp_workers_plan sizes it) */
    uint32_t        io_collect_us; /* kernel, uring: least time between two polls while busy */
    bool            io_collect_set; /* io_collect was in the file (-c notes it if ignored) */
    uint32_t        grace_ms; /* how long a stop waits for open connections */
    struct fp_overload_conf overload;
};

struct fp_conf {
    char                    *file;
    char                    *log_file; /* global.log_file: NULL = stderr as inherited */
    struct fp_global_conf    global;
    struct fp_timeouts_conf  timeouts;
    struct fp_frontend_conf *frontends;
    uint32_t                 nb_frontends;
    struct fp_backend_conf  *backends;
    uint32_t                 nb_backends;
    bool                     has_stats;
    struct fp_addr           stats_addr;
    struct fp_dpdk_conf      dpdk; /* io: dpdk */
};

#endif /* FP_PROXY_CONF_H */
