/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One worker's data-path context: its I/O backend instance, its pools, its listeners, its
 * sessions and its counters. Everything a worker touches on the data path is reached from
 * here; nothing here is touched by another thread except the counters, which the stats code
 * reads (single writer, relaxed loads, no locks).
 */
#ifndef FP_PROXY_WORKER_H
#define FP_PROXY_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "net/io.h"
#include "net/pool.h"
#include "proxy/conf.h"

/* Counters: each written by its worker only, read by the stats code from another thread. */
struct fp_worker_stats {
    uint64_t accepted;         /* client connections accepted */
    uint64_t sessions_active;  /* gauge: sessions open now */
    uint64_t sess_pool_empty;  /* client refused: no free session (maxconn reached) */
    uint64_t buf_pool_empty;   /* session ended: no buffer to read into */
    uint64_t conn_pool_empty;  /* server connection refused: no free connection */
    uint64_t connect_errors;   /* server connections refused or failed */
    uint64_t connect_timeouts; /* server connections that timed out */
    uint64_t retries;          /* further servers tried after a failed connect */
    uint64_t no_server;        /* sessions ended because no server could be reached */
    uint64_t idle_timeouts;    /* sessions ended by inactivity */
    uint64_t client_aborts;    /* client reset or errored */
    uint64_t server_aborts;    /* server reset or errored */
    uint64_t bytes_in;         /* client to server */
    uint64_t bytes_out;        /* server to client */
    uint64_t sessions_done;    /* sessions ended, for any reason */
};

/* Adds n to a counter. A plain load and store, not a locked add: the worker is the only
 * writer, and the relaxed atomics only keep the reader's loads whole. */
#define FP_STAT_ADD(w, field, n)                                                            \
    __atomic_store_n(&(w)->stats.field,                                                     \
                     __atomic_load_n(&(w)->stats.field, __ATOMIC_RELAXED) + (n),            \
                     __ATOMIC_RELAXED)
#define FP_STAT_INC(w, field) FP_STAT_ADD(w, field, 1)

/* Reads a counter of another worker. */
#define FP_STAT_READ(w, field) __atomic_load_n(&(w)->stats.field, __ATOMIC_RELAXED)

struct fp_session;

struct fp_worker {
    unsigned              id;
    const struct fp_conf *conf;
    struct fp_io         *io;
    struct fp_pool        sessions;
    struct fp_pool        bufs;
    uint32_t              max_sessions;
    uint32_t             *rr_next; /* per backend: round-robin cursor of this worker */
    struct fp_listener  **listeners;
    uint32_t              nb_listeners;
    struct fp_session    *active;  /* list of open sessions, for a forced stop */
    bool                  draining;
    struct fp_worker_stats stats;
};

/*
 * Prepares w for worker id: pools for max_sessions client sessions and their buffers.
 * Startup only. Returns 0 or -ENOMEM.
 */
int fp_worker_init(struct fp_worker *w, unsigned id, const struct fp_conf *conf,
                   struct fp_io *io, uint32_t max_sessions);

/* Starts accepting on lc for frontend fe_idx. Startup only. Returns 0 or -errno. */
int fp_worker_listen(struct fp_worker *w, uint32_t fe_idx, const struct fp_listen_conf *lc);

/*
 * Stops accepting; the loop stops by itself once the last session ends. Worker thread only.
 */
void fp_worker_drain(struct fp_worker *w);

/* Ends every session at once (reset) and stops the loop. Worker thread only. */
void fp_worker_stop_now(struct fp_worker *w);

/* Releases w's memory; the loop must have stopped. */
void fp_worker_destroy(struct fp_worker *w);

#endif /* FP_PROXY_WORKER_H */
