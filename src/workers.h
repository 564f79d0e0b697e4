/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker threads: one per configured CPU, pinned, each running its own I/O backend loop
 * over its own fp_worker. The main thread creates everything here before any worker runs,
 * then only talks to the workers through one SPSC ring each (main -> worker).
 */
#ifndef FP_SRC_WORKERS_H
#define FP_SRC_WORKERS_H

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#include "net/io.h"
#include "net/ring.h"
#include "proxy/conf.h"
#include "proxy/worker.h"

enum fp_wmsg {
    FP_WMSG_DRAIN = 1, /* stop accepting, finish open sessions, then exit the loop */
    FP_WMSG_STOP,      /* reset every session and exit the loop now */
};

struct fp_wthread {
    unsigned         id;
    int              cpu;
    pthread_t        tid;
    int              started;
    volatile int     exited;
    struct fp_io    *io;
    struct fp_ring   inbox; /* main -> this worker */
    struct fp_worker w;
    void            *group; /* back pointer to the fp_workers */
};

struct fp_workers {
    const struct fp_conf *conf;
    unsigned              n;
    struct fp_wthread    *t;
    uint32_t              maxconn;    /* effective, all workers */
    size_t                mem_bound;  /* bytes, from fp_workers_plan() */
    int                   steered;    /* reuseport CPU steering attached */
    void (*on_exit)(void *data);      /* called from a worker thread when its loop ends */
    void *on_exit_data;
};

/* What a configuration will run as: computed without starting anything. */
struct fp_workers_plan {
    unsigned workers;
    uint32_t maxconn;    /* effective, all workers */
    uint32_t per_worker; /* sessions per worker */
    uint32_t maxpipes;   /* splice pipes, all workers (0: io is not kernel, or maxpipes 0) */
    size_t   mem_bound;  /* bytes the process can use at most, all pools full */
};

/* Fills plan for conf (worker count, maxconn sized to the descriptor limit, memory bound).
 * Returns 0 or -1 with a reason in err. */
int fp_workers_plan(const struct fp_conf *conf, struct fp_workers_plan *plan, char *err,
                    size_t errlen);

/*
 * Resolves the worker count and CPUs, sizes maxconn to the file-descriptor limit, opens the
 * listening sockets (one reuseport group per bind) and creates every worker's backend and
 * pools. Main thread, startup. Returns 0, or -1 with a one-line reason in err; exit code 2.
 */
int fp_workers_create(struct fp_workers *ws, const struct fp_conf *conf, char *err,
                      size_t errlen);

/* Starts the threads, each pinned to its CPU. Returns 0 or -1 with err set. */
int fp_workers_start(struct fp_workers *ws, char *err, size_t errlen);

/* Sends msg to every worker. Main thread. */
void fp_workers_send(struct fp_workers *ws, enum fp_wmsg msg);

/* Returns how many workers have left their loop. */
unsigned fp_workers_exited(const struct fp_workers *ws);

/* Writes every access log line the workers have queued to out, one per line. Main thread. */
void fp_workers_drain_logs(struct fp_workers *ws, FILE *out);

/* Joins the threads and releases everything. */
void fp_workers_destroy(struct fp_workers *ws);

#endif /* FP_SRC_WORKERS_H */
