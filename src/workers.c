/* SPDX-License-Identifier: BSD-3-Clause */
/* Worker threads: creation, pinning, the main -> worker message path, and teardown. */
#include "src/workers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "proxy/session.h"
#include "src/log.h"

/* File descriptors kept for everything but client and server connections. */
#define FD_RESERVE 64

static void
worker_on_notify(struct fp_io *io, void *data)
{
    struct fp_wthread *t = data;
    struct fp_msg      msgs[8];
    unsigned           n;
    unsigned           i;

    while ((n = fp_ring_sc_dequeue_burst(&t->inbox, msgs, 8)) > 0) {
        for (i = 0; i < n; i++) {
            if (msgs[i].type == FP_WMSG_DRAIN) {
                fp_worker_drain(&t->w);
            } else if (msgs[i].type == FP_WMSG_STOP) {
                fp_worker_stop_now(&t->w);
            }
        }
    }
}

static int
resolve_cpus(struct fp_workers *ws, int *cpus, char *err, size_t errlen)
{
    const struct fp_global_conf *g = &ws->conf->global;
    cpu_set_t                    allowed;
    int                          list[CPU_SETSIZE];
    unsigned                     nb = 0;
    unsigned                     i;

    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        snprintf(err, errlen, "sched_getaffinity: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, &allowed)) {
            list[nb++] = (int)i;
        }
    }
    if (g->workers != 0) {
        ws->n = g->workers;
    } else if (g->nb_cpus != 0) {
        ws->n = g->nb_cpus;
    } else {
        ws->n = nb < FP_MAX_WORKERS ? nb : FP_MAX_WORKERS;
    }
    if (g->nb_cpus != 0 && g->nb_cpus < ws->n) {
        snprintf(err, errlen, "workers: %u but cpus lists only %u", ws->n, g->nb_cpus);
        return -1;
    }
    for (i = 0; i < ws->n; i++) {
        cpus[i] = g->nb_cpus != 0 ? g->cpus[i] : list[i % nb];
    }
    return 0;
}

/* Pipes of maxpipes "auto" (io: kernel): enough for the transfers in flight at once, since a
 * connection holds one only while bytes are in it; and at most a sixteenth of the open-file
 * limit (two descriptors each), so that connections keep most of it. */
#define MAXPIPES_AUTO 256

/* Sizes global.maxpipes (io: kernel only; "auto" from the open-file limit) and, from what the
 * limit leaves, maxconn: each client session holds two descriptors (client and server side). */
static void
size_fds(const struct fp_conf *conf, uint32_t *maxconn, uint32_t *maxpipes)
{
    struct rlimit rl;
    uint32_t      budget;
    rlim_t        reserve;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        rl.rlim_cur = 1 << 20;
    }
    *maxpipes = conf->global.maxpipes;
    if (conf->global.io != FP_IO_KERNEL) {
        *maxpipes = 0;
    } else if (*maxpipes == FP_MAXPIPES_AUTO) {
        *maxpipes = rl.rlim_cur / 16 < MAXPIPES_AUTO ? (uint32_t)(rl.rlim_cur / 16) : MAXPIPES_AUTO;
    }
    /* Each splice pipe holds two descriptors. */
    reserve = FD_RESERVE + 2 * (rlim_t)*maxpipes;
    budget = rl.rlim_cur > reserve * 2 ? (uint32_t)((rl.rlim_cur - reserve) / 2) : 16;
    *maxconn = conf->global.maxconn;
    if (*maxconn == 0) {
        *maxconn = budget;
    } else if (*maxconn > budget && conf->global.io == FP_IO_DPDK) {
        /* The stack backend's connections are no file descriptors. */
    } else if (*maxconn > budget) {
        fp_log(FP_LOG_WARNING, "maxconn %u lowered to %u: the open-file limit is %llu "
               "(2 descriptors per connection)", conf->global.maxconn, budget,
               (unsigned long long)rl.rlim_cur);
        *maxconn = budget;
    }
}

static int
open_listeners(struct fp_workers *ws, const int *cpus, char *err, size_t errlen)
{
    const struct fp_conf *conf = ws->conf;
    struct fp_listen_conf lc;
    int                   fds[FP_MAX_WORKERS];
    int                   steered;
    uint32_t              f;
    uint32_t              b;
    unsigned              i;
    int                   rc;

    /*
     * Every address is checked before the first group opens: our own groups may overlap
     * (0.0.0.0:80 and 127.0.0.1:80 in two frontends) and would fail the later checks.
     */
    for (f = 0; f < conf->nb_frontends; f++) {
        for (b = 0; b < conf->frontends[f].nb_binds; b++) {
            if (fp_io_check_unused(conf->global.io, &conf->frontends[f].binds[b], err,
                                   errlen) != 0) {
                return -1;
            }
        }
    }
    ws->steered = 1;
    for (f = 0; f < conf->nb_frontends; f++) {
        for (b = 0; b < conf->frontends[f].nb_binds; b++) {
            lc.addr = conf->frontends[f].binds[b];
            lc.backlog = conf->global.backlog;
            rc = fp_io_listen_group(conf->global.io, &lc.addr, ws->n, cpus,
                                    (int)conf->global.backlog, fds, &steered, err, errlen);
            if (rc != 0) {
                return -1;
            }
            ws->steered &= steered;
            for (i = 0; i < ws->n; i++) {
                lc.fd = fds[i];
                rc = fp_worker_listen(&ws->t[i].w, f, &lc);
                if (rc != 0) {
                    snprintf(err, errlen, "listen: %s", strerror(-rc));
                    for (; i < ws->n; i++) {
                        if (fds[i] != -1) {
                            close(fds[i]);
                        }
                    }
                    return -1;
                }
            }
        }
    }
    if (ws->n > 1 && !ws->steered) {
        fp_log(FP_LOG_WARNING, "cannot attach the reuseport CPU steering program; new "
               "connections are spread by the kernel's reuseport hash instead");
    }
    return 0;
}

/* Fixed cost of the process beside the pools: code, libraries, stacks, loops, the main
 * thread. Measured well under this (about 6 MiB RSS idle with 2 workers). */
#define MEM_BASE ((size_t)32 << 20)

int
fp_workers_plan(const struct fp_conf *conf, struct fp_workers_plan *plan, char *err,
                size_t errlen)
{
    struct fp_workers ws;
    int               cpus[FP_MAX_WORKERS];

    memset(&ws, 0, sizeof(ws));
    ws.conf = conf;
    if (resolve_cpus(&ws, cpus, err, errlen) != 0) {
        return -1;
    }
    plan->workers = ws.n;
    size_fds(conf, &plan->maxconn, &plan->maxpipes);
    plan->per_worker = (plan->maxconn + ws.n - 1) / ws.n;
    plan->mem_bound = MEM_BASE + ws.n * (fp_worker_mem_bound(conf, ws.n, plan->per_worker,
                                                               fp_io_conn_size(conf->global.io)) +
                                         fp_io_mem_bound(conf->global.io, &conf->dpdk,
                                                         FP_CONNS_PER_SESSION * plan->per_worker));
    return 0;
}

int
fp_workers_create(struct fp_workers *ws, const struct fp_conf *conf, char *err, size_t errlen)
{
    struct fp_io_conf ioc;
    int               cpus[FP_MAX_WORKERS];
    uint32_t          per_worker;
    unsigned          i;
    cpu_set_t         mask;
    bool              have_mask;
    size_t            tsize;

    struct fp_workers_plan plan;

    memset(ws, 0, sizeof(*ws));
    ws->conf = conf;
    if (resolve_cpus(ws, cpus, err, errlen) != 0 ||
        fp_workers_plan(conf, &plan, err, errlen) != 0) {
        return -1;
    }
    ws->maxconn = plan.maxconn;
    ws->mem_bound = plan.mem_bound;
    per_worker = plan.per_worker;
    /* Each worker's struct on cache lines of its own (struct fp_worker is line-aligned). */
    tsize = (ws->n * sizeof(*ws->t) + FP_WORKER_LINE - 1) & ~(size_t)(FP_WORKER_LINE - 1);
    ws->t = aligned_alloc(FP_WORKER_LINE, tsize);
    if (ws->t == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memset(ws->t, 0, ws->n * sizeof(*ws->t));
    /* Every worker's memory is first touched on the worker's own CPU, so it comes from that
     * CPU's NUMA node: this thread moves to each worker's CPU while it builds that worker. */
    have_mask = pthread_getaffinity_np(pthread_self(), sizeof(mask), &mask) == 0;
    for (i = 0; i < ws->n; i++) {
        struct fp_wthread *t = &ws->t[i];

        if (have_mask && cpus[i] >= 0) {
            cpu_set_t one;

            CPU_ZERO(&one);
            CPU_SET(cpus[i], &one);
            (void)pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
        }

        t->id = i;
        t->cpu = cpus[i];
        t->group = ws;
        if (fp_ring_init(&t->inbox, 16, sizeof(struct fp_msg)) != 0) {
            snprintf(err, errlen, "out of memory");
            goto err_affinity;
        }
        memset(&ioc, 0, sizeof(ioc));
        ioc.kind = conf->global.io;
        ioc.max_conns = FP_CONNS_PER_SESSION * per_worker;
        ioc.cpu = cpus[i];
        ioc.id = i;
        ioc.nb_workers = ws->n;
        ioc.dpdk = &conf->dpdk;
        ioc.max_pipes = (plan.maxpipes + ws->n - 1) / ws->n;
        ioc.collect_us = conf->global.io_collect_us;
        ioc.on_notify = worker_on_notify;
        ioc.notify_data = t;
        t->io = fp_io_create(&ioc, err, errlen);
        if (t->io == NULL) {
            goto err_affinity;
        }
        if (fp_worker_init(&t->w, i, ws->n, conf, t->io, per_worker) != 0) {
            snprintf(err, errlen, "cannot allocate pools for %u connections", per_worker);
            goto err_affinity;
        }
    }
    if (have_mask) {
        (void)pthread_setaffinity_np(pthread_self(), sizeof(mask), &mask);
    }
    return open_listeners(ws, cpus, err, errlen);

err_affinity:
    if (have_mask) {
        (void)pthread_setaffinity_np(pthread_self(), sizeof(mask), &mask);
    }
    return -1;
}

static void *
worker_main(void *arg)
{
    struct fp_wthread *t = arg;
    struct fp_workers *ws = t->group;

    t->io->ops->run(t->io);
    __atomic_store_n(&t->exited, 1, __ATOMIC_RELEASE);
    if (ws->on_exit != NULL) {
        ws->on_exit(ws->on_exit_data);
    }
    return NULL;
}

int
fp_workers_start(struct fp_workers *ws, char *err, size_t errlen)
{
    pthread_attr_t attr;
    cpu_set_t      set;
    sigset_t       all;
    sigset_t       old;
    unsigned       i;
    int            rc = 0;

    /* Workers never take signals: the main thread handles them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (i = 0; i < ws->n && rc == 0; i++) {
        pthread_attr_init(&attr);
        CPU_ZERO(&set);
        CPU_SET(ws->t[i].cpu, &set);
        pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
        rc = pthread_create(&ws->t[i].tid, &attr, worker_main, &ws->t[i]);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker %u: %s", i, strerror(rc));
        } else {
            ws->t[i].started = 1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

void
fp_workers_send(struct fp_workers *ws, enum fp_wmsg type)
{
    struct fp_msg m = {(uint32_t)type, 0, 0};
    unsigned      i;

    for (i = 0; i < ws->n; i++) {
        if (fp_ring_sp_enqueue(&ws->t[i].inbox, &m) != 0) {
            fp_log(FP_LOG_WARNING, "worker %u: message ring full", i);
        }
        ws->t[i].io->ops->notify(ws->t[i].io);
    }
}

unsigned
fp_workers_exited(const struct fp_workers *ws)
{
    unsigned i;
    unsigned n = 0;

    for (i = 0; i < ws->n; i++) {
        n += __atomic_load_n(&ws->t[i].exited, __ATOMIC_ACQUIRE) != 0;
    }
    return n;
}

void
fp_workers_drain_logs(struct fp_workers *ws, FILE *out)
{
    const char *line;
    unsigned    i;
    int         any = 0;

    for (i = 0; i < ws->n; i++) {
        if (ws->t[i].w.alog.slots == NULL) {
            continue;
        }
        while ((line = fp_ring_sc_peek(&ws->t[i].w.alog)) != NULL) {
            fputs(line, out);
            fputc('\n', out);
            fp_ring_sc_release(&ws->t[i].w.alog);
            any = 1;
        }
    }
    if (any) {
        fflush(out);
    }
}

void
fp_workers_destroy(struct fp_workers *ws)
{
    unsigned i;

    for (i = 0; i < ws->n; i++) {
        if (ws->t[i].started) {
            pthread_join(ws->t[i].tid, NULL);
        }
    }
    for (i = 0; i < ws->n; i++) {
        if (ws->t[i].io != NULL) {
            fp_worker_destroy(&ws->t[i].w);
            fp_io_destroy(ws->t[i].io);
            ws->t[i].io = NULL;
        }
        fp_ring_destroy(&ws->t[i].inbox);
    }
    free(ws->t);
    ws->t = NULL;
}
