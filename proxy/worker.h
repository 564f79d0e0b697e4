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

#include "net/buf.h"
#include "net/io.h"
#include "net/pool.h"
#include "net/ring.h"
#include "proxy/conf.h"
#include "proxy/queue.h"

/* Counters: each written by its worker only, read by the stats code from another thread. */
struct fp_worker_stats {
    uint64_t accepted;         /* client connections accepted */
    uint64_t sessions_active;  /* gauge: sessions open now */
    uint64_t sess_pool_empty;  /* client refused: no free session (maxconn reached) */
    uint64_t buf_pool_empty;   /* session ended: no buffer to read into */
    uint64_t hdrs_pool_empty;  /* 503: no header array for a head (cannot happen by sizing) */
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
    /* mode http */
    uint64_t http_requests;    /* request heads parsed and accepted */
    uint64_t http_responses;   /* responses forwarded to the end */
    uint64_t srv_conn_new;     /* server connections opened for a request */
    uint64_t srv_conn_reused;  /* requests sent on an idle server connection */
    uint64_t srv_idle_closed;  /* idle server connections closed by the server */
    uint64_t http_400;         /* malformed requests (framing, syntax, smuggling) */
    uint64_t http_408;         /* client too slow to send its request (head or body) */
    uint64_t http_413;         /* request body over limits.body_size */
    uint64_t http_414;         /* request line over limits.request_line */
    uint64_t http_417;         /* expectation we do not support */
    uint64_t http_431;         /* request head over the size or count limit */
    uint64_t http_501;         /* method or transfer coding we do not implement */
    uint64_t http_505;         /* HTTP version other than 1.0 / 1.1 */
    uint64_t http_502;         /* server refused, reset or sent a malformed response */
    uint64_t http_503;         /* no server available */
    uint64_t http_504;         /* server timed out before its response */
    uint64_t http_truncated;   /* response cut short by the server after it started */
    uint64_t http_rsp_bad_head; /* 502: malformed response head, or over the buffer */
    uint64_t http_rsp_bad_body; /* 502 or reset: broken chunked framing in a response */
    uint64_t client_timeouts;   /* request stalled by its client (408, or a cut once the
                                   response began) */
    uint64_t alog_dropped;     /* access log lines lost because the log ring was full */
    /* overload control (docs/overload.md); the queues' counters are per backend below */
    uint64_t accept_paused;     /* times the worker stopped accepting at its maxconn */
    uint64_t shed_503;          /* connections accepted only to be answered 503 */
    uint64_t http_retries;      /* requests on a connection refused 503 less than Retry-After
                                   before: most likely a client's retry */
    uint64_t idle_yielded;      /* idle client connections closed at maxconn for new ones */
    uint64_t slot_polls;        /* looks at the slot holders' server connections within a long
                                   loop iteration (fp_worker_head_read) */
    uint64_t slot_poll_answers; /* server answers those looks found */
    uint64_t slot_poll_reads;   /* server connections those looks read (answer or not) */
    uint64_t srv_send_early;    /* requests sent as their slot was taken, in a long loop
                                   iteration (fp_worker_iter_long), not at its end */
};

#define FP_QDELAY_BUCKETS 8

/* Counters of one backend's server slots and queue in one worker (docs/overload.md). */
struct fp_backend_stats {
    uint64_t slots_busy;           /* gauge: requests or sessions holding a server slot */
    uint64_t queue_len;            /* gauge: waiting for a server slot */
    uint64_t queue_max;            /* highest queue_len seen */
    uint64_t queued;               /* had to wait */
    uint64_t queue_timeouts;       /* refused: waited timeouts.queue without a slot */
    uint64_t queue_dropped_oldest; /* refused: oldest waiting, dropped for a newer one */
    uint64_t queue_full;           /* refused: queue_size 0, nothing to drop */
    uint64_t queue_dropped_stale;  /* refused: waited over codel_target in a standing queue */
    uint64_t queue_client_gone;    /* left the queue because the client closed */
    uint64_t queue_lifo;           /* times the queue turned standing (LIFO) */
    uint64_t qdelay[FP_QDELAY_BUCKETS]; /* queueing delay histogram of those served: bucket i
                                           up to fp_qdelay_bound_ms[i], the last beyond */
    uint64_t qdelay_sum_ms;        /* the histogram's sum: queueing delays of those served */
};

/* Counters of one server in one worker (indexed like idle_n: srv_base[be] + server). */
struct fp_server_stats {
    uint64_t limit;      /* gauge: this worker's limit on the server's slots (0: none) */
    uint64_t slots_busy; /* gauge: requests or sessions holding a slot of this server */
    uint64_t selected;   /* slots taken: requests (http) or sessions (tcp), retries included */
};

/*
 * The limit of a server with maxconn "auto", in one worker (see fp_worker_slot_answered). Over
 * windows of answers, the limit on requests in flight grows while the server answers within
 * its target and the limit held requests back, and shrinks while it answers later: requests
 * then wait in the worker's queue, not in the server's sockets. The target is the larger of
 * overload.codel_target and twice the answer time of a probe, a few answers with the server's
 * queue held short (as Envoy's adaptive concurrency measures its minimum round trip).
 */
struct fp_srv_auto {
    uint64_t win_sum_us;   /* answer times of the window's answers */
    uint64_t probe_sum_us; /* probing: answer times of the probe's answers */
    uint64_t probe_us;     /* when the next probe starts; while probing: when it started */
    uint32_t win_n;        /* answers in the window */
    uint32_t lim;          /* the limit outside probes */
    uint32_t base_us;      /* answer time the last probe measured; 0: none yet */
    uint32_t probe_n;      /* probing: answers to requests sent since it started */
    bool     on;           /* the server has maxconn auto (mode http) */
    bool     probing;
    bool     limited;      /* a request found the limit reached in this window */
};

/* Counters of one frontend in one worker. */
struct fp_frontend_stats {
    uint64_t accepted; /* client connections accepted */
};

/* Upper bounds (ms) of the queueing-delay buckets but the last, which is open. */
extern const uint32_t fp_qdelay_bound_ms[FP_QDELAY_BUCKETS - 1];

/*
 * A request (mode http) or a session (mode tcp) that waits for a server slot of its backend.
 * The owner embeds it and fills the two callbacks; the worker's queue code calls them.
 */
struct fp_waiter {
    /* A slot of the backend was freed for this waiter (no longer queued): pick a server. */
    void (*grant)(struct fp_waiter *wt);
    /* The queue dropped this waiter (no longer queued): refuse it. May end its owner. */
    void (*refuse)(struct fp_waiter *wt);
    uint32_t be_idx;
    uint32_t q_pos;  /* position in the backend queue while queued */
    uint8_t  queued;
};

/* One access log line, with its NUL, as it travels from a worker to the main thread. */
#define FP_ALOG_LINE 320

/* Adds n to a counter. A plain load and store, not a locked add: the worker is the only
 * writer, and the relaxed atomics only keep the reader's loads whole. */
#define FP_STAT_ADD(w, field, n)                                                            \
    __atomic_store_n(&(w)->stats.field,                                                     \
                     __atomic_load_n(&(w)->stats.field, __ATOMIC_RELAXED) + (n),            \
                     __ATOMIC_RELAXED)
#define FP_STAT_INC(w, field) FP_STAT_ADD(w, field, 1)

/* Same, for a counter of backend be of worker w. */
#define FP_BE_STAT_ADD(w, be, field, n)                                                     \
    __atomic_store_n(&(w)->be_stats[be].field,                                              \
                     __atomic_load_n(&(w)->be_stats[be].field, __ATOMIC_RELAXED) + (n),     \
                     __ATOMIC_RELAXED)
#define FP_BE_STAT_INC(w, be, field) FP_BE_STAT_ADD(w, be, field, 1)
#define FP_BE_STAT_READ(w, be, field) __atomic_load_n(&(w)->be_stats[be].field, __ATOMIC_RELAXED)

/* Same, for a counter of server gi (srv_base[be] + index) or of frontend fe of worker w. */
#define FP_SRV_STAT_ADD(w, gi, field, n)                                                    \
    __atomic_store_n(&(w)->srv_stats[gi].field,                                             \
                     __atomic_load_n(&(w)->srv_stats[gi].field, __ATOMIC_RELAXED) + (n),    \
                     __ATOMIC_RELAXED)
#define FP_FE_STAT_INC(w, fe, field)                                                        \
    __atomic_store_n(&(w)->fe_stats[fe].field,                                              \
                     __atomic_load_n(&(w)->fe_stats[fe].field, __ATOMIC_RELAXED) + 1,       \
                     __ATOMIC_RELAXED)

/* Adds one to the counter at byte offset off of w->stats (for tables of counters). */
#define fp_worker_stat_inc(w, off)                                                          \
    do {                                                                                    \
        uint64_t *p_ = (uint64_t *)((char *)&(w)->stats + (off));                           \
        __atomic_store_n(p_, __atomic_load_n(p_, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);  \
    } while (0)

/* Reads a counter of another worker. */
#define FP_STAT_READ(w, field) __atomic_load_n(&(w)->stats.field, __ATOMIC_RELAXED)

/* What a worker must be able to end at once on a forced stop: every open session, whatever
 * its mode, is one of these, linked in the worker's active list. */
struct fp_task {
    struct fp_task *next;
    struct fp_task *prev;
    void (*abort)(struct fp_task *t);
    /* Sends what the session's events of this loop iteration produced (fp_worker_defer). */
    void (*flush)(struct fp_task *t);
    struct fp_task *fl_next; /* in w's flush list while fl_queued */
    struct fp_task *fl_prev;
    bool            fl_queued;
    /* While the session is an idle keep-alive connection (fp_worker_idle_add): its place in
     * the worker's idle list, oldest first, and how to close it when a new one needs room. */
    struct fp_task *idle_next;
    struct fp_task *idle_prev;
    void (*yield)(struct fp_task *t);
    uint64_t idle_ms; /* idle since (loop time) */
    bool     idle;
    /* While the session holds a server slot (fp_worker_slot_watch): its place in the worker's
     * list of them, and how to look for its server's answer without waiting for a poll. */
    struct fp_task *sl_next;
    struct fp_task *sl_prev;
    void (*poll)(struct fp_task *t);
    uint64_t sl_sent_us; /* the request went to the server (fp_worker_slot_sent), 0: not yet */
    uint64_t sl_due_us;  /* next look at the server connection, monotonic us */
    uint32_t sl_gi;      /* the server's index in idle_n */
    bool     sl_watched;
};

/* Who owns an idle server connection: set as its fp_conn.data while it waits for reuse. */
struct fp_idle_owner {
    struct fp_worker *w;
    uint32_t          gi; /* the server's index in idle_n */
};

/* Cache line size assumed for per-worker placement. */
#define FP_WORKER_LINE 64

struct fp_worker {
    unsigned              id;
    const struct fp_conf *conf;
    struct fp_io         *io;
    struct fp_pool        sessions;
    struct fp_pool        bufs;
    struct fp_pool        hdrs; /* header arrays of heads being parsed (mode http) */
    uint32_t              max_sessions;
    uint32_t             *rr_next; /* per backend: round-robin cursor of this worker */
    struct fp_listener  **listeners;
    uint32_t              nb_listeners;
    struct fp_task       *active;  /* open sessions, for a forced stop */
    struct fp_task       *fl_head; /* sessions with sends deferred to the end of the loop */
    struct fp_task       *fl_tail; /* iteration (fp_worker_defer), in the order they came */
    struct fp_task       *idle_head; /* idle keep-alive sessions, oldest first */
    struct fp_task       *idle_tail;
    struct fp_conn      **idle;    /* per server: a stack of idle_cap idle connections */
    uint32_t             *idle_n;  /* per server: how many are on its stack */
    uint32_t              idle_cap;   /* idle server connections kept, all servers together */
    uint32_t              idle_total;
    uint32_t             *srv_base; /* per backend: index of its first server in idle_n */
    struct fp_idle_owner *idle_owner; /* per server */
    uint32_t             *srv_active; /* per server: requests holding a slot */
    uint32_t             *srv_limit;  /* per server: this worker's share of maxconn, 0 = none */
    uint32_t             *srv_rt_us;  /* per server: its answer time, a low estimate (us) */
    struct fp_srv_auto   *srv_auto;   /* per server: the adaptive limit (maxconn auto) */
    struct fp_wq         *queues;     /* per backend: requests waiting for a slot */
    struct fp_backend_stats *be_stats; /* per backend */
    struct fp_server_stats  *srv_stats; /* per server, indexed like idle_n */
    struct fp_frontend_stats *fe_stats; /* per frontend */
    struct fp_task       *sl_head;    /* sessions holding a server slot (fp_worker_slot_watch) */
    uint32_t              work_since_poll; /* heads read and sends flushed since the last slot
                                              poll */
    uint32_t              iter_heads; /* request heads read in this loop iteration */
    bool                  paused;     /* listeners stopped: at maxconn */
    struct fp_timer       shed_timer; /* while paused: answers 503 past overload.shed_queue */
    bool                  draining;
    struct fp_ring        alog; /* access log lines for the main thread; unused if no
                                   frontend logs */
    struct fp_worker_stats stats;
    void                  *block; /* the arrays above, one mapping (see alloc_block) */
    size_t                 block_size;
} __attribute__((aligned(FP_WORKER_LINE)));

/* Returns a zeroed session object of size bytes (at most fp_session_size()) for client c,
 * or NULL after resetting c when w is at its maxconn (counted in sess_pool_empty). */
void *fp_worker_session_alloc(struct fp_worker *w, struct fp_conn *c, size_t size);

/* Links t into w's active list and counts a session. */
void fp_worker_task_add(struct fp_worker *w, struct fp_task *t);

/* Unlinks t, counts a finished session, and stops the loop if w drains and t was the last. */
void fp_worker_task_del(struct fp_worker *w, struct fp_task *t);

/*
 * Defers t's sends to the end of the loop iteration: t->flush runs once after every event
 * the loop has ready now was handled, so a burst of events gives each peer a burst of sends
 * (one wake-up of the origin for many requests) instead of one send, and one wake-up, per
 * event. Queuing an already queued task does nothing. A flush may defer again (a pipelined
 * request): it runs in the same end-of-iteration pass. fp_worker_task_del forgets t.
 */
void fp_worker_defer(struct fp_worker *w, struct fp_task *t);

/*
 * t (its yield set) is an idle keep-alive client connection: between requests, nothing
 * buffered. When w reaches its maxconn, new connections take the place of the oldest idle
 * ones, which are closed through t->yield (counted in idle_yielded), as nginx does when it
 * runs out of connections: an idle client holds a session that a waiting one could use, and
 * HTTP lets a server close an idle connection at any time (RFC 9112 §9.5).
 */
void fp_worker_idle_add(struct fp_worker *w, struct fp_task *t);

/* t is no longer idle (a request began, or it ends). No-op if it was not idle. */
void fp_worker_idle_del(struct fp_worker *w, struct fp_task *t);

/* Gives b a buffer from w's pool if it has none. Returns 0, or -ENOBUFS (counted). */
int fp_worker_buf_attach(struct fp_worker *w, struct fp_buf *b);

/* Returns b's memory to the pool (if any) and empties b. */
void fp_worker_buf_release(struct fp_worker *w, struct fp_buf *b);

/* Returns b's memory to the pool if b holds nothing: idle connections then hold no buffer,
 * and the pool hands the same few cache-hot buffers around. */
void fp_worker_buf_trim(struct fp_worker *w, struct fp_buf *b);

/*
 * Server slots (per-server maxconn, this worker's share) and the backend queues. A slot is
 * held from the moment a server is picked until the request (http) or session (tcp) is done
 * with it; releasing one hands it to the waiter the queue discipline picks.
 */

/*
 * Picks the next server of backend be_idx in round-robin order that is not in tried and has a
 * free slot; servers at their maxconn are added to *full on the way. Returns its index in the
 * backend, or UINT32_MAX when none is left (then *full says whether any was only full).
 */
uint32_t fp_worker_pick_slot(struct fp_worker *w, uint32_t be_idx, uint64_t tried,
                             uint64_t *full);

/* Counts a new request (or tcp session) of backend be_idx that wants a server slot: the
 * queue's overload detection weighs these against finished ones. Once per request, a
 * client's retry included (docs/overload.md, "Clients that retry at once"). */
void fp_worker_demand(struct fp_worker *w, uint32_t be_idx);

/* A refused request's Retry-After (seconds), and the window in which a request on the same
 * connection counts as a retry. */
#define FP_RETRY_AFTER_S 1

/* Takes a slot of server gi of backend be_idx (one fp_worker_pick_slot found free). */
void fp_worker_slot_take(struct fp_worker *w, uint32_t be_idx, uint32_t gi);

/*
 * t (its poll set) holds a slot of server gi and waits for the server's answer; unwatch
 * forgets it (both do nothing when t already is or is not watched). See fp_worker_slot_poll.
 */
void fp_worker_slot_watch(struct fp_worker *w, struct fp_task *t, uint32_t gi);
void fp_worker_slot_unwatch(struct fp_worker *w, struct fp_task *t);

/*
 * The watched t's request went to its server now: t's first look is due when the server's
 * answers usually come (its estimate, srv_rt_us). fp_worker_slot_answered: the answer's head
 * came now, which refines that estimate. Both do nothing when t is not watched.
 */
void fp_worker_slot_sent(struct fp_worker *w, struct fp_task *t);
void fp_worker_slot_answered(struct fp_worker *w, struct fp_task *t);

/*
 * Counts a client request head read in this loop iteration: fp_worker_slot_poll looks at the
 * slot holders after every SLOT_POLL_WORK (16) heads or deferred sends.
 */
void fp_worker_head_read(struct fp_worker *w);

/*
 * True once ITER_LONG_HEADS (16) request heads were read in this loop iteration: a long one,
 * through which work deferred to its end (fp_worker_defer) would wait.
 */
bool fp_worker_iter_long(const struct fp_worker *w);

/*
 * After every SLOT_POLL_WORK (16) request heads read or deferred sends made in one loop
 * iteration, while any request waits in a backend queue, calls t->poll of each watched
 * session whose look is due (it reads its server connection if an answer is there). The kernel
 * backend learns of a server's answer only at its next poll for events, which under a retry
 * storm comes after thousands of client requests and their refusals: the slot would idle
 * through them while requests wait for it. A look is due once the request has been at the
 * server for about the server's usual answer time, then again after a sixteenth of the time
 * it has been there: a few reads per answer, not one per slot and look. Call it when no session is
 * half-way through its processing. Nothing to do on a backend whose recv sees only what its
 * last wait delivered (fp_io.recv_live false: io_uring, DPDK).
 */
void fp_worker_slot_poll(struct fp_worker *w);

/* Gives back a slot of server gi and grants the backend's next waiter, if any. dispatch false
 * only gives it back (the caller is about to retry and competes for it itself); true also
 * counts a request finished with its slot. */
void fp_worker_slot_release(struct fp_worker *w, uint32_t be_idx, uint32_t gi, bool dispatch);

/*
 * Grants a slot of backend be_idx to the next waiter if a server has one free: used after a
 * slot was given back without dispatch. The waiter's grant may end other sessions.
 */
void fp_worker_dispatch(struct fp_worker *w, uint32_t be_idx);

/*
 * Queues wt (its be_idx set) until a slot of its backend frees. While full (queue_size, or
 * while the queue stands, what the servers drain within codel_interval) the oldest waiters are
 * refused first to make room: the newest is the one whose client most likely still waits.
 * Returns 0 when queued, or -ENOBUFS when the backend has no queue (queue_size 0; counted):
 * the caller refuses wt itself.
 */
int fp_worker_enqueue(struct fp_worker *w, struct fp_waiter *wt);

/* Takes wt out of its queue if it is in one; the caller counts why (timeout, client gone). */
void fp_worker_unqueue(struct fp_worker *w, struct fp_waiter *wt);

/*
 * Prepares w for worker id: pools for max_sessions client sessions and their buffers.
 * Startup only. Returns 0 or -ENOMEM.
 */
int fp_worker_init(struct fp_worker *w, unsigned id, unsigned nb_workers,
                   const struct fp_conf *conf, struct fp_io *io, uint32_t max_sessions);

/*
 * Returns an upper bound of the memory (bytes) one worker of conf with max_sessions sessions
 * may ever use: every pool full and every buffer in use. conn_size is the backend's
 * connection size. Startup only; used by `fastproxy -c`.
 */
size_t fp_worker_mem_bound(const struct fp_conf *conf, unsigned nb_workers,
                           uint32_t max_sessions, size_t conn_size);

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
