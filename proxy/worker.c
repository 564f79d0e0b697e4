/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's proxy context: creates its pools at start, accepts on its own listeners, hands
 * each client connection to the session code of its frontend's mode, and stops gracefully.
 */
#include "proxy/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "proxy/backend.h"
#include "proxy/h1.h"
#include "proxy/session.h"

struct fe_listener {
    struct fp_worker              *w;
    const struct fp_frontend_conf *fe;
};

/* Frees every per-server and per-backend array of w (init failure and destroy alike). */
static void
free_arrays(struct fp_worker *w)
{
    uint32_t i;

    if (w->queues != NULL) {
        for (i = 0; i < w->conf->nb_backends; i++) {
            fp_wq_destroy(&w->queues[i]);
        }
    }
    if (w->block != NULL) {
        munmap(w->block, w->block_size);
    }
    w->block = NULL;
    w->block_size = 0;
    w->queues = NULL;
    w->be_stats = NULL;
    w->srv_stats = NULL;
    w->fe_stats = NULL;
    w->srv_active = NULL;
    w->srv_limit = NULL;
    w->idle_owner = NULL;
    w->rr_next = NULL;
    w->srv_base = NULL;
    w->idle_n = NULL;
    w->idle = NULL;
}

static void     worker_on_shed_timer(struct fp_timer *t);
static uint32_t idle_yield(struct fp_worker *w, uint32_t n);

/* Most idle connections closed at once by the shed timer to make room. */
#define IDLE_YIELD_BURST 32

/* Only connections idle this long yield: a client's pool reuses its connections within
 * milliseconds, and closing those would only make it reconnect at once (churn). */
#define IDLE_YIELD_MIN_MS 1000

/* A worker resumes accepting once this many sessions are free again (hysteresis). */
static uint32_t
resume_margin(const struct fp_worker *w)
{
    return w->max_sessions / 16 > 0 ? w->max_sessions / 16 : 1;
}

static uint32_t
share(uint32_t total, unsigned nb_workers)
{
    return (total + nb_workers - 1) / nb_workers;
}

/*
 * maxconn auto (struct fp_srv_auto). A worker starts at AUTO_START requests in flight per
 * server and stays within [AUTO_MIN, AUTO_MAX]. A window ends after the limit's worth of
 * answers, at least AUTO_WIN_MIN. A probe holds the limit at AUTO_PROBE_LIMIT until
 * AUTO_PROBE_ANSWERS requests sent during it were answered: the first one a second after the
 * server's first answer, then every ten seconds (a few milliseconds of a short queue each time).
 */
#define AUTO_START          64
#define AUTO_MIN            4
#define AUTO_MAX            100000
#define AUTO_WIN_MIN        16
#define AUTO_PROBE_LIMIT    4
#define AUTO_PROBE_ANSWERS  8
#define AUTO_FIRST_PROBE_US 1000000
#define AUTO_PROBE_EVERY_US 10000000

static void
auto_set_limit(struct fp_worker *w, uint32_t gi, uint32_t lim)
{
    FP_SRV_STAT_ADD(w, gi, limit, (uint64_t)lim - w->srv_limit[gi]);
    w->srv_limit[gi] = lim;
}

static void
auto_init(struct fp_worker *w, uint32_t gi)
{
    struct fp_srv_auto *a = &w->srv_auto[gi];

    memset(a, 0, sizeof(*a));
    a->on = true;
    a->lim = AUTO_START;
    w->srv_limit[gi] = AUTO_START;
}

/* Counts an answer that took rt_us to a request sent at sent_us, of server gi with maxconn
 * auto, and moves its limit at the end of a window or a probe. */
static void
auto_answered(struct fp_worker *w, uint32_t gi, uint64_t now_us, uint64_t sent_us, uint64_t rt_us)
{
    struct fp_srv_auto *a = &w->srv_auto[gi];
    uint64_t            target;
    uint64_t            avg;
    uint32_t            lim;

    if (a->probing) {
        if (sent_us < a->probe_us) {
            return; /* sent before the probe: it waited behind the longer queue */
        }
        a->probe_sum_us += rt_us;
        if (++a->probe_n < AUTO_PROBE_ANSWERS) {
            return;
        }
        a->base_us = (uint32_t)(a->probe_sum_us / a->probe_n);
        a->probing = false;
        a->probe_us = now_us + AUTO_PROBE_EVERY_US;
        a->win_n = 0;
        a->win_sum_us = 0;
        a->limited = false;
        auto_set_limit(w, gi, a->lim);
        return;
    }
    if (a->probe_us == 0) {
        a->probe_us = now_us + AUTO_FIRST_PROBE_US;
    } else if (now_us >= a->probe_us) {
        a->probing = true;
        a->probe_us = now_us;
        a->probe_n = 0;
        a->probe_sum_us = 0;
        auto_set_limit(w, gi, AUTO_PROBE_LIMIT);
        return;
    }
    a->win_sum_us += rt_us;
    if (++a->win_n < (a->lim > AUTO_WIN_MIN ? a->lim : AUTO_WIN_MIN)) {
        return;
    }
    avg = a->win_sum_us / a->win_n;
    target = (uint64_t)w->conf->global.overload.codel_target_ms * 1000;
    if (target < 2 * (uint64_t)a->base_us) {
        target = 2 * (uint64_t)a->base_us;
    }
    lim = a->lim;
    if (avg > target) {
        lim -= lim / 8;
        lim = lim > AUTO_MIN ? lim : AUTO_MIN;
    } else if (a->limited) {
        lim += lim / 16 > 0 ? lim / 16 : 1;
        lim = lim < AUTO_MAX ? lim : AUTO_MAX;
    }
    a->lim = lim;
    a->win_n = 0;
    a->win_sum_us = 0;
    a->limited = false;
    auto_set_limit(w, gi, lim);
}

size_t
fp_worker_mem_bound(const struct fp_conf *conf, unsigned nb_workers, uint32_t max_sessions,
                    size_t conn_size)
{
    size_t   bytes = 0;
    uint32_t i;

    bytes += (size_t)max_sessions * (fp_session_size() + 64);
    bytes += (size_t)max_sessions * FP_SESSION_MAX_BUFS * conf->global.bufsize;
    bytes += (size_t)2 * max_sessions * FP_HTTP_MAX_HEADERS * sizeof(struct fp_h1_header);
    /* Each session holds at most one server connection, and idle ones at most fill their
     * per-server stacks. */
    bytes += (size_t)FP_CONNS_PER_SESSION * max_sessions * (conn_size + 64);
    for (i = 0; i < conf->nb_backends; i++) {
        bytes += (size_t)conf->backends[i].nb_servers * (max_sessions * sizeof(void *) + 64);
        bytes += (size_t)share(conf->backends[i].queue_size, nb_workers) * 16;
    }
    bytes += 4096 * FP_ALOG_LINE; /* the access log ring, when enabled */
    return bytes;
}

static void worker_on_flush(struct fp_io *io, void *data);

/* Rounds n up to a whole number of cache lines. */
static size_t
line_up(size_t n)
{
    return (n + FP_WORKER_LINE - 1) & ~(size_t)(FP_WORKER_LINE - 1);
}

/*
 * The worker's per-backend, per-server and per-frontend arrays, in one mapping of its own:
 * every array starts on its own cache line, and nothing of another worker shares a line with
 * them (separate callocs interleaved the workers' small arrays, so that one line held worker
 * 1's round-robin cursors and worker 0's backend counters). The pages are zero and untouched
 * until first written: by the thread that initializes the worker, pinned to the worker's CPU
 * (src/workers.c), so they come from the worker's NUMA node.
 */
static int
alloc_block(struct fp_worker *w, uint32_t nb_be, uint32_t nb_srv, uint32_t nb_fe)
{
    size_t   off[13];
    size_t   total = 0;
    uint8_t *b;
    unsigned k = 0;

#define FP_WB_ARRAY(n, type) (off[k++] = total, total += line_up((size_t)((n) + 1) * sizeof(type)))
    FP_WB_ARRAY(nb_be, *w->rr_next);
    FP_WB_ARRAY(nb_be, *w->srv_base);
    FP_WB_ARRAY(nb_srv, *w->idle_n);
    FP_WB_ARRAY((size_t)(nb_srv + 1) * w->idle_cap - 1, *w->idle);
    FP_WB_ARRAY(nb_srv, *w->idle_owner);
    FP_WB_ARRAY(nb_srv, *w->srv_active);
    FP_WB_ARRAY(nb_srv, *w->srv_limit);
    FP_WB_ARRAY(nb_srv, *w->srv_rt_us);
    FP_WB_ARRAY(nb_srv, *w->srv_auto);
    FP_WB_ARRAY(nb_be, *w->queues);
    FP_WB_ARRAY(nb_be, *w->be_stats);
    FP_WB_ARRAY(nb_srv, *w->srv_stats);
    FP_WB_ARRAY(nb_fe, *w->fe_stats);
#undef FP_WB_ARRAY
    b = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) {
        return -ENOMEM;
    }
    w->block = b;
    w->block_size = total;
    k = 0;
    w->rr_next = (void *)(b + off[k++]);
    w->srv_base = (void *)(b + off[k++]);
    w->idle_n = (void *)(b + off[k++]);
    w->idle = (void *)(b + off[k++]);
    w->idle_owner = (void *)(b + off[k++]);
    w->srv_active = (void *)(b + off[k++]);
    w->srv_limit = (void *)(b + off[k++]);
    w->srv_rt_us = (void *)(b + off[k++]);
    w->srv_auto = (void *)(b + off[k++]);
    w->queues = (void *)(b + off[k++]);
    w->be_stats = (void *)(b + off[k++]);
    w->srv_stats = (void *)(b + off[k++]);
    w->fe_stats = (void *)(b + off[k++]);
    return 0;
}

int
fp_worker_init(struct fp_worker *w, unsigned id, unsigned nb_workers, const struct fp_conf *conf,
               struct fp_io *io, uint32_t max_sessions)
{
    uint32_t nb_servers = 0;
    uint32_t i;

    memset(w, 0, sizeof(*w));
    w->id = id;
    w->conf = conf;
    w->io = io;
    io->on_flush = worker_on_flush;
    io->flush_data = w;
    w->max_sessions = max_sessions;
    if (fp_pool_init(&w->sessions, fp_session_size(), max_sessions) != 0) {
        goto err;
    }
    /* FP_SESSION_MAX_BUFS buffers per session at most, so a buffer is never missing for a
     * live session; untouched buffers cost address space only. */
    if (fp_pool_init(&w->bufs, conf->global.bufsize, FP_SESSION_MAX_BUFS * max_sessions) != 0) {
        goto err_sessions;
    }
    /* A session parses at most a request head and a response head at a time. */
    if (fp_pool_init(&w->hdrs, FP_HTTP_MAX_HEADERS * sizeof(struct fp_h1_header),
                     2 * max_sessions) != 0) {
        goto err_bufs;
    }
    for (i = 0; i < conf->nb_backends; i++) {
        nb_servers += conf->backends[i].nb_servers;
    }
    /* As many idle server connections as sessions: at 1,000 concurrent requests a smaller
     * pool closes and reopens server connections all the time (a connect() costs more than
     * the whole rest of a request). */
    w->idle_cap = max_sessions;
    if (alloc_block(w, conf->nb_backends, nb_servers, conf->nb_frontends) != 0) {
        goto err_arrays;
    }
    nb_servers = 0;
    for (i = 0; i < conf->nb_backends; i++) {
        w->srv_base[i] = nb_servers;
        nb_servers += conf->backends[i].nb_servers;
    }
    /* Share-nothing limits: each worker owns its share of every server's maxconn and of
     * every backend's queue, so no counter is shared between cores. */
    for (i = 0; i < conf->nb_backends; i++) {
        const struct fp_backend_conf *be = &conf->backends[i];
        uint32_t                      k;

        for (k = 0; k < be->nb_servers; k++) {
            uint32_t gi = w->srv_base[i] + k;

            if (be->servers[k].maxconn == FP_SRV_MAXCONN_AUTO) {
                auto_init(w, gi);
            } else {
                w->srv_limit[gi] =
                        be->servers[k].maxconn ? share(be->servers[k].maxconn, nb_workers) : 0;
            }
            FP_SRV_STAT_ADD(w, gi, limit, w->srv_limit[gi]);
        }
        if (fp_wq_init(&w->queues[i], share(be->queue_size, nb_workers)) != 0) {
            goto err_arrays;
        }
        /* Overload shows within a quarter interval; at least 5 ms so that a window sees
         * enough arrivals to tell overload from noise. */
        w->queues[i].detect_ms = conf->global.overload.codel_interval_ms / 4 > 5
                                         ? conf->global.overload.codel_interval_ms / 4
                                         : 5;
    }
    for (i = 0; i < nb_servers; i++) {
        w->idle_owner[i].w = w;
        w->idle_owner[i].gi = i;
    }
    io->ops->timer_init(io, &w->shed_timer, worker_on_shed_timer, w);
    for (i = 0; i < conf->nb_frontends; i++) {
        if (conf->frontends[i].access_log) {
            /* 4096 lines: a few hundred ms at full speed before lines are dropped. */
            if (fp_ring_init(&w->alog, 4096, FP_ALOG_LINE) != 0) {
                goto err_arrays;
            }
            break;
        }
    }
    return 0;

err_arrays:
    free_arrays(w);
    fp_ring_destroy(&w->alog);
    fp_pool_destroy(&w->hdrs);
err_bufs:
    fp_pool_destroy(&w->bufs);
err_sessions:
    fp_pool_destroy(&w->sessions);
err:
    return -ENOMEM;
}

/* While paused, how often the accept queue is looked at: a shed connection waits at most
 * this long for its 503 (refusals answered within a few ms); the look is one getsockopt. */
#define SHED_TICK_MS 2

static const char shed_page[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 20\r\nRetry-After: 1\r\n"
                                "Connection: close\r\n\r\nService Unavailable\n";

static void
worker_pause(struct fp_worker *w, bool paused)
{
    uint32_t i;

    if (w->paused == paused || w->draining) {
        return;
    }
    w->paused = paused;
    for (i = 0; i < w->nb_listeners; i++) {
        w->io->ops->listener_pause(w->listeners[i], paused);
    }
    if (paused) {
        FP_STAT_INC(w, accept_paused);
        w->io->ops->timer_arm(w->io, &w->shed_timer, SHED_TICK_MS);
    } else {
        w->io->ops->timer_stop(w->io, &w->shed_timer);
    }
}

/*
 * While the worker is full its listeners are paused, so new connections wait in the kernel's
 * accept queue (its reuseport siblings keep accepting theirs). Past overload.shed_queue
 * waiting connections, the excess is answered with a prebuilt 503 and closed: three system
 * calls each (accept, send, close; about 18-20 us of CPU measured by bench/run --overload,
 * most of it the kernel's connection teardown), no session, no buffer, no server connection.
 */
static void
worker_on_shed_timer(struct fp_timer *t)
{
    struct fp_worker *w = t->data;
    uint32_t          limit = w->conf->global.overload.shed_queue;
    uint32_t          i;
    int               pending;
    unsigned          n;

    if (!w->paused || w->draining) {
        return;
    }
    /* Sessions that went idle since the pause give their place to waiting connections. */
    if (idle_yield(w, IDLE_YIELD_BURST) > 0) {
        if (fp_pool_in_use(&w->sessions) + 1 < w->max_sessions) {
            worker_pause(w, false);
            return;
        }
    }
    for (i = 0; i < w->nb_listeners; i++) {
        pending = w->io->ops->listener_pending(w->listeners[i]);
        if (pending > (int)limit) {
            n = w->io->ops->listener_shed(w->listeners[i], shed_page, sizeof(shed_page) - 1,
                                          (unsigned)pending - limit);
            FP_STAT_ADD(w, shed_503, n);
        }
    }
    w->io->ops->timer_arm(w->io, &w->shed_timer, SHED_TICK_MS);
}

/* ---- server slots and backend queues ---- */

static void
queue_gauge(struct fp_worker *w, uint32_t be_idx, int64_t delta)
{
    struct fp_backend_stats *bs = &w->be_stats[be_idx];
    uint64_t                 len = __atomic_load_n(&bs->queue_len, __ATOMIC_RELAXED) +
                   (uint64_t)delta;

    __atomic_store_n(&bs->queue_len, len, __ATOMIC_RELAXED);
    if (len > __atomic_load_n(&bs->queue_max, __ATOMIC_RELAXED)) {
        __atomic_store_n(&bs->queue_max, len, __ATOMIC_RELAXED);
    }
}

const uint32_t fp_qdelay_bound_ms[FP_QDELAY_BUCKETS - 1] = {1, 5, 10, 50, 100, 500, 1000};

static void
count_qdelay(struct fp_worker *w, uint32_t be, uint64_t ms)
{
    uint32_t i = 0;

    while (i < FP_QDELAY_BUCKETS - 1 && ms > fp_qdelay_bound_ms[i]) {
        i++;
    }
    FP_BE_STAT_INC(w, be, qdelay[i]);
    FP_BE_STAT_ADD(w, be, qdelay_sum_ms, ms);
}

/* Refuses a waiter the queue discipline took out. */
static void
refuse_dropped(struct fp_worker *w, struct fp_waiter *victim)
{
    victim->queued = 0;
    queue_gauge(w, victim->be_idx, -1);
    victim->refuse(victim);
}

/*
 * While the queue is overloaded (LIFO), refuses what waited longer than codel_target / 2: old
 * work goes first, and a refusal never waits much longer than that (CoDel's drop at the head).
 */
static void
drop_stale(struct fp_worker *w, uint32_t be_idx, uint64_t now)
{
    struct fp_waiter *victim;

    while ((victim = fp_wq_pop_stale(&w->queues[be_idx], now,
                                     w->conf->global.overload.codel_target_ms)) != NULL) {
        FP_BE_STAT_INC(w, be_idx, queue_dropped_stale);
        refuse_dropped(w, victim);
    }
}

void
fp_worker_demand(struct fp_worker *w, uint32_t be_idx)
{
    fp_wq_demand(&w->queues[be_idx], w->io->ops->now_ms(w->io),
                 (uint32_t)FP_BE_STAT_READ(w, be_idx, slots_busy));
}

uint32_t
fp_worker_pick_slot(struct fp_worker *w, uint32_t be_idx, uint64_t tried, uint64_t *full)
{
    uint32_t idx;
    uint32_t gi;

    for (;;) {
        idx = fp_backend_pick_server(w, be_idx, tried | *full);
        if (idx == UINT32_MAX) {
            return idx;
        }
        gi = w->srv_base[be_idx] + idx;
        if (w->srv_limit[gi] == 0 || w->srv_active[gi] < w->srv_limit[gi]) {
            return idx;
        }
        w->srv_auto[gi].limited = true;
        *full |= 1ULL << idx;
    }
}

void
fp_worker_slot_take(struct fp_worker *w, uint32_t be_idx, uint32_t gi)
{
    w->srv_active[gi]++;
    FP_BE_STAT_INC(w, be_idx, slots_busy);
    FP_SRV_STAT_ADD(w, gi, slots_busy, 1);
    FP_SRV_STAT_ADD(w, gi, selected, 1);
}

/* Request heads read or deferred sends made between two looks at the server connections that
 * hold slots: a few hundred microseconds of client work (15-30 us each under a retry storm),
 * so that a slot waits at most that long for its answer to be seen (a few per cent of the slow
 * origin's 10 ms service). A look reads only the connections whose answer is due (see
 * fp_worker_slot_poll), so most looks cost a clock read and a walk of the slot holders. */
#define SLOT_POLL_WORK 16

/* Request heads read in one loop iteration that make it a long one (fp_worker_iter_long). */
#define ITER_LONG_HEADS 16

static uint64_t
clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
fp_worker_slot_watch(struct fp_worker *w, struct fp_task *t, uint32_t gi)
{
    if (t->sl_watched) {
        return;
    }
    t->sl_watched = true;
    t->sl_gi = gi;
    t->sl_sent_us = 0;
    t->sl_due_us = UINT64_MAX; /* nothing to look for before the request went out */
    t->sl_prev = NULL;
    t->sl_next = w->sl_head;
    if (w->sl_head != NULL) {
        w->sl_head->sl_prev = t;
    }
    w->sl_head = t;
}

void
fp_worker_slot_unwatch(struct fp_worker *w, struct fp_task *t)
{
    if (!t->sl_watched) {
        return;
    }
    if (t->sl_prev != NULL) {
        t->sl_prev->sl_next = t->sl_next;
    } else {
        w->sl_head = t->sl_next;
    }
    if (t->sl_next != NULL) {
        t->sl_next->sl_prev = t->sl_prev;
    }
    t->sl_next = NULL;
    t->sl_prev = NULL;
    t->sl_watched = false;
}

static bool
any_queued(const struct fp_worker *w)
{
    uint32_t i;

    for (i = 0; i < w->conf->nb_backends; i++) {
        if (w->queues[i].live > 0) {
            return true;
        }
    }
    return false;
}

void
fp_worker_slot_sent(struct fp_worker *w, struct fp_task *t)
{
    if (!t->sl_watched) {
        return;
    }
    t->sl_sent_us = clock_us();
    /* A sixteenth early: the estimate follows the quickest answers, and a look a little early
     * costs one read that finds nothing. */
    t->sl_due_us = t->sl_sent_us + w->srv_rt_us[t->sl_gi] - w->srv_rt_us[t->sl_gi] / 16;
}

void
fp_worker_slot_answered(struct fp_worker *w, struct fp_task *t)
{
    uint32_t *est;
    uint64_t  now;
    uint64_t  rt;

    if (!t->sl_watched || t->sl_sent_us == 0) {
        return;
    }
    est = &w->srv_rt_us[t->sl_gi];
    now = clock_us();
    rt = now - t->sl_sent_us;
    if (w->srv_auto[t->sl_gi].on) {
        auto_answered(w, t->sl_gi, now, t->sl_sent_us, rt);
    }
    rt = rt < UINT32_MAX ? rt : UINT32_MAX;
    /* A low quantile of the answer times (about the 6th percentile): down by 1/16 after a
     * quicker answer, up by 1/256 after a slower one, whatever the amount. An answer seen
     * late (a look missed it, the loop was busy) must not push the looks later, which would
     * make the next answers late too; and an answer there at the first look (due 1/16 early)
     * is seen quicker than the estimate, so an estimate above the server's time comes down. */
    if (*est == 0) {
        *est = (uint32_t)rt;
    } else if (rt < *est) {
        *est -= *est / 16;
    } else {
        *est += *est / 256 + 1;
    }
    t->sl_sent_us = 0;
    t->sl_due_us = UINT64_MAX;
}

void
fp_worker_head_read(struct fp_worker *w)
{
    w->work_since_poll++;
    w->iter_heads++;
}

bool
fp_worker_iter_long(const struct fp_worker *w)
{
    return w->iter_heads >= ITER_LONG_HEADS;
}

/* Reads the server connection of each slot holder whose answer is due (fp_worker_slot_poll). */
static void
slot_looks(struct fp_worker *w)
{
    struct fp_task *t;
    struct fp_task *next;
    uint64_t        now;

    FP_STAT_INC(w, slot_polls);
    now = clock_us();
    /* A session whose answer is here releases its slot, which goes to a waiting request: that
     * one is linked at the head, behind this walk. A poll ends at most its own session. */
    for (t = w->sl_head; t != NULL; t = next) {
        next = t->sl_next;
        if (t->sl_due_us > now) {
            continue;
        }
        /* Not there yet: look again after a sixteenth of the time the request has been out
         * (at least 100 us), so that a slow answer costs a few reads, not one per look. */
        t->sl_due_us = now + ((now - t->sl_sent_us) / 16 > 100 ? (now - t->sl_sent_us) / 16 : 100);
        FP_STAT_INC(w, slot_poll_reads);
        t->poll(t);
    }
}

void
fp_worker_slot_poll(struct fp_worker *w)
{
    if (w->work_since_poll < SLOT_POLL_WORK) {
        return;
    }
    w->work_since_poll = 0;
    if (!any_queued(w)) {
        return;
    }
    if (w->io->recv_live) {
        slot_looks(w);
    }
}

void
fp_worker_slot_release(struct fp_worker *w, uint32_t be_idx, uint32_t gi, bool dispatch)
{
    w->srv_active[gi]--;
    FP_BE_STAT_ADD(w, be_idx, slots_busy, (uint64_t)-1);
    FP_SRV_STAT_ADD(w, gi, slots_busy, (uint64_t)-1);
    if (dispatch) {
        unsigned n = 0;

        fp_wq_done(&w->queues[be_idx], w->io->ops->now_ms(w->io),
                   (uint32_t)FP_BE_STAT_READ(w, be_idx, slots_busy));
        fp_worker_dispatch(w, be_idx);
        /* maxconn auto: a limit that grew lets more waiters go than the slot freed, a few per
         * release (the growth per window is a sixteenth of the limit). */
        while (w->srv_auto[gi].on && w->srv_active[gi] < w->srv_limit[gi] &&
               w->queues[be_idx].live > 0 && n++ < 4) {
            fp_worker_dispatch(w, be_idx);
        }
    }
}

void
fp_worker_dispatch(struct fp_worker *w, uint32_t be_idx)
{
    const struct fp_overload_conf *o = &w->conf->global.overload;
    struct fp_wq                  *q = &w->queues[be_idx];
    uint64_t                       switches = q->lifo_switches;
    uint64_t                       now = w->io->ops->now_ms(w->io);
    uint64_t                       delay = 0;
    struct fp_waiter              *wt;

    if (q->live == 0) {
        return;
    }
    wt = fp_wq_pop(q, now, o->discipline == FP_QUEUE_ADAPTIVE_LIFO, o->codel_target_ms,
                   o->codel_interval_ms, &delay);
    drop_stale(w, be_idx, now);
    if (wt == NULL) {
        return;
    }
    if (q->lifo_switches != switches) {
        FP_BE_STAT_INC(w, be_idx, queue_lifo);
    }
    wt->queued = 0;
    queue_gauge(w, be_idx, -1);
    count_qdelay(w, be_idx, delay);
    wt->grant(wt);
}

int
fp_worker_enqueue(struct fp_worker *w, struct fp_waiter *wt)
{
    uint32_t          be = wt->be_idx;
    struct fp_wq     *q = &w->queues[be];
    uint64_t          now = w->io->ops->now_ms(w->io);
    uint32_t          cap;
    struct fp_waiter *victim;
    int64_t           pos;

    if (q->cap == 0) {
        FP_BE_STAT_INC(w, be, queue_full);
        return -ENOBUFS;
    }
    drop_stale(w, be, now);
    /* While the queue stands or is overloaded, it holds what the servers drain in one
     * interval: waits stay within about an interval, and memory is bounded. */
    cap = fp_wq_standing_cap(q, w->conf->global.overload.codel_interval_ms);
    while (q->live >= cap && (victim = fp_wq_pop_oldest(q)) != NULL) {
        FP_BE_STAT_INC(w, be, queue_dropped_stale);
        refuse_dropped(w, victim);
    }
    pos = fp_wq_push(q, wt, now);
    if (pos == -ENOBUFS) {
        victim = fp_wq_pop_oldest(q);
        FP_BE_STAT_INC(w, be, queue_dropped_oldest);
        refuse_dropped(w, victim);
        pos = fp_wq_push(q, wt, now);
    }
    wt->q_pos = (uint32_t)pos;
    wt->queued = 1;
    FP_BE_STAT_INC(w, be, queued);
    queue_gauge(w, be, 1);
    return 0;
}

void
fp_worker_unqueue(struct fp_worker *w, struct fp_waiter *wt)
{
    if (wt->queued) {
        wt->queued = 0;
        fp_wq_remove(&w->queues[wt->be_idx], wt->q_pos);
        queue_gauge(w, wt->be_idx, -1);
    }
}

static void
worker_on_accept(struct fp_listener *l, struct fp_conn *c)
{
    struct fe_listener *fl = l->data;
    struct fp_worker   *w = fl->w;

    FP_STAT_INC(w, accepted);
    FP_FE_STAT_INC(w, (uint32_t)(fl->fe - w->conf->frontends), accepted);
    /* This connection takes the last session: the oldest idle keep-alive connection makes
     * room for the next one, and the listeners pause only when none is left. Only at maxconn
     * itself: a client may be sending on an idle connection as we close it (it then resends,
     * RFC 9112 §9.3.1), which is not worth risking while sessions are free. */
    if (fp_pool_in_use(&w->sessions) + 1 >= w->max_sessions) {
        idle_yield(w, 1);
    }
    if (fp_pool_in_use(&w->sessions) + 1 >= w->max_sessions &&
        (w->idle_head == NULL ||
         w->io->ops->now_ms(w->io) - w->idle_head->idle_ms < IDLE_YIELD_MIN_MS)) {
        worker_pause(w, true);
    }
    switch (fl->fe->mode) {
    case FP_MODE_TCP:
        fp_tcp_session_start(w, fl->fe, c);
        break;
    case FP_MODE_HTTP:
        fp_http_session_start(w, fl->fe, c);
        break;
    }
}

int
fp_worker_listen(struct fp_worker *w, uint32_t fe_idx, const struct fp_listen_conf *lc)
{
    struct fp_listener **ls;
    struct fe_listener  *fl;
    int                  rc;

    ls = realloc(w->listeners, sizeof(*ls) * (w->nb_listeners + 1));
    if (ls == NULL) {
        return -ENOMEM;
    }
    w->listeners = ls;
    fl = calloc(1, sizeof(*fl));
    if (fl == NULL) {
        return -ENOMEM;
    }
    fl->w = w;
    fl->fe = &w->conf->frontends[fe_idx];
    rc = w->io->ops->listen(w->io, lc, worker_on_accept, fl, &ls[w->nb_listeners]);
    if (rc != 0) {
        free(fl);
        return rc;
    }
    w->nb_listeners++;
    return 0;
}

static void
worker_close_listeners(struct fp_worker *w)
{
    uint32_t i;

    for (i = 0; i < w->nb_listeners; i++) {
        free(w->listeners[i]->data);
        w->io->ops->listener_close(w->listeners[i]);
        w->listeners[i] = NULL;
    }
    w->nb_listeners = 0;
}

void
fp_worker_buf_release(struct fp_worker *w, struct fp_buf *b)
{
    if (b->data != NULL) {
        fp_pool_put(&w->bufs, b->data);
        b->data = NULL;
    }
    b->head = 0;
    b->tail = 0;
}

int
fp_worker_buf_attach(struct fp_worker *w, struct fp_buf *b)
{
    if (b->data != NULL) {
        return 0;
    }
    b->data = fp_pool_get(&w->bufs);
    if (b->data == NULL) {
        FP_STAT_INC(w, buf_pool_empty);
        return -ENOBUFS;
    }
    b->size = w->conf->global.bufsize;
    b->head = 0;
    b->tail = 0;
    return 0;
}

void
fp_worker_buf_trim(struct fp_worker *w, struct fp_buf *b)
{
    if (b->data != NULL && fp_buf_empty(b)) {
        fp_worker_buf_release(w, b);
    }
}

void *
fp_worker_session_alloc(struct fp_worker *w, struct fp_conn *c, size_t size)
{
    void *obj = fp_pool_get(&w->sessions);

    if (obj == NULL) {
        FP_STAT_INC(w, sess_pool_empty);
        w->io->ops->close(c, 1);
        return NULL;
    }
    memset(obj, 0, size);
    return obj;
}

void
fp_worker_idle_add(struct fp_worker *w, struct fp_task *t)
{
    if (t->idle) {
        return;
    }
    t->idle = true;
    t->idle_ms = w->io->ops->now_ms(w->io);
    t->idle_next = NULL;
    t->idle_prev = w->idle_tail;
    if (w->idle_tail != NULL) {
        w->idle_tail->idle_next = t;
    } else {
        w->idle_head = t;
    }
    w->idle_tail = t;
}

void
fp_worker_idle_del(struct fp_worker *w, struct fp_task *t)
{
    if (!t->idle) {
        return;
    }
    if (t->idle_prev != NULL) {
        t->idle_prev->idle_next = t->idle_next;
    } else {
        w->idle_head = t->idle_next;
    }
    if (t->idle_next != NULL) {
        t->idle_next->idle_prev = t->idle_prev;
    } else {
        w->idle_tail = t->idle_prev;
    }
    t->idle_next = NULL;
    t->idle_prev = NULL;
    t->idle = false;
}

/* Closes up to n of the oldest idle keep-alive sessions idle for IDLE_YIELD_MIN_MS. Returns how
 * many. */
static uint32_t
idle_yield(struct fp_worker *w, uint32_t n)
{
    uint64_t        now = w->io->ops->now_ms(w->io);
    struct fp_task *t;
    uint32_t        done = 0;

    while (done < n && (t = w->idle_head) != NULL && now - t->idle_ms >= IDLE_YIELD_MIN_MS) {
        fp_worker_idle_del(w, t);
        FP_STAT_INC(w, idle_yielded);
        t->yield(t);
        done++;
    }
    return done;
}

void
fp_worker_task_add(struct fp_worker *w, struct fp_task *t)
{
    t->prev = NULL;
    t->next = w->active;
    if (w->active != NULL) {
        w->active->prev = t;
    }
    w->active = t;
    FP_STAT_INC(w, sessions_active);
}

static void
flush_unlink(struct fp_worker *w, struct fp_task *t)
{
    if (t->fl_prev != NULL) {
        t->fl_prev->fl_next = t->fl_next;
    } else {
        w->fl_head = t->fl_next;
    }
    if (t->fl_next != NULL) {
        t->fl_next->fl_prev = t->fl_prev;
    } else {
        w->fl_tail = t->fl_prev;
    }
    t->fl_next = NULL;
    t->fl_prev = NULL;
    t->fl_queued = false;
}

void
fp_worker_defer(struct fp_worker *w, struct fp_task *t)
{
    if (t->fl_queued) {
        return;
    }
    t->fl_queued = true;
    t->fl_next = NULL;
    t->fl_prev = w->fl_tail;
    if (w->fl_tail != NULL) {
        w->fl_tail->fl_next = t;
    } else {
        w->fl_head = t;
    }
    w->fl_tail = t;
}

/*
 * Runs the deferred sends in the order they came. The next iteration starts with a poll for
 * events, which sees every server's answer; until then, the sends of a long iteration
 * (thousands of refusals under a retry storm) are client work through which the server slots
 * are looked at, too.
 */
static void
flush_run(struct fp_worker *w)
{
    struct fp_task *t;

    while ((t = w->fl_head) != NULL) {
        flush_unlink(w, t);
        t->flush(t);
        w->work_since_poll++;
        fp_worker_slot_poll(w);
    }
}

/* The backend's end of a loop iteration. */
static void
worker_on_flush(struct fp_io *io, void *data)
{
    struct fp_worker *w = data;

    w->iter_heads = 0;
    flush_run(w);
    w->work_since_poll = 0;
}

void
fp_worker_task_del(struct fp_worker *w, struct fp_task *t)
{
    if (t->fl_queued) {
        flush_unlink(w, t);
    }
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        w->active = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    t->next = NULL;
    t->prev = NULL;
    fp_worker_idle_del(w, t);
    fp_worker_slot_unwatch(w, t);
    FP_STAT_ADD(w, sessions_active, (uint64_t)-1);
    FP_STAT_INC(w, sessions_done);
    if (w->paused && fp_pool_in_use(&w->sessions) + resume_margin(w) <= w->max_sessions) {
        worker_pause(w, false);
    }
    if (w->draining && w->active == NULL) {
        w->io->ops->stop(w->io);
    }
}

/* Closes every idle server connection (they hold no request). */
static void
worker_close_idle(struct fp_worker *w)
{
    uint32_t total = 0;
    uint32_t i;
    uint32_t k;

    for (i = 0; i < w->conf->nb_backends; i++) {
        total += w->conf->backends[i].nb_servers;
    }
    for (i = 0; i < total; i++) {
        for (k = 0; k < w->idle_n[i]; k++) {
            w->io->ops->close(w->idle[(size_t)i * w->idle_cap + k], 0);
        }
        w->idle_n[i] = 0;
    }
    w->idle_total = 0;
}

void
fp_worker_drain(struct fp_worker *w)
{
    if (w->draining) {
        return;
    }
    w->io->ops->timer_stop(w->io, &w->shed_timer);
    w->draining = true;
    worker_close_listeners(w);
    worker_close_idle(w);
    if (w->active == NULL) {
        w->io->ops->stop(w->io);
    }
}

void
fp_worker_stop_now(struct fp_worker *w)
{
    w->io->ops->timer_stop(w->io, &w->shed_timer);
    w->draining = true;
    worker_close_listeners(w);
    worker_close_idle(w);
    while (w->active != NULL) {
        w->active->abort(w->active);
    }
    w->io->ops->stop(w->io);
}

void
fp_worker_destroy(struct fp_worker *w)
{
    worker_close_listeners(w);
    free(w->listeners);
    w->listeners = NULL;
    if (w->idle_n != NULL) {
        worker_close_idle(w);
    }
    free_arrays(w);
    fp_ring_destroy(&w->alog);
    fp_pool_destroy(&w->hdrs);
    fp_pool_destroy(&w->bufs);
    fp_pool_destroy(&w->sessions);
}
