/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Instances share nothing: four threads, each with its own pair of instances and in-memory link,
 * transfer 16 MiB at the same time (divided by h_scale() under ASan). Every transfer must arrive
 * intact and every pool return to its initial level; a hidden shared state (a static buffer, a
 * global counter, a shared PRNG) would corrupt data or break determinism here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "net/stack/pkt.h"
#include "net/stack/tcp.h"
#include "tests/net/harness.h"

#define NB_THREADS 4

struct job {
    int      id;
    uint64_t total;
    uint64_t sent;
    uint64_t received;
    uint64_t bad;
    bool     eof;
    bool     ok;
    uint64_t virt_us;
    uint8_t  buf[16384];
};

static void
srv_readable(struct fp_tcb *c, void *user)
{
    struct job    *j = user;
    struct fp_pkt *chain;
    struct fp_pkt *p;
    ssize_t        n;
    uint32_t       i;

    while ((n = fp_tcp_recv_pkts(c, &chain)) != -EAGAIN) {
        if (n == 0) {
            j->eof = true;
            fp_tcp_close(c);
            return;
        }
        for (p = chain; p != NULL; p = p->next) {
            for (i = 0; i < p->len; i++) {
                j->bad += p->data[i] != h_pattern((uint64_t)j->id, j->received + i);
            }
            j->received += p->len;
        }
        fp_pkt_free_chain(chain);
    }
}

static const struct fp_tcp_callbacks srv_cb = {
        .on_readable = srv_readable,
};

static void
on_accept(struct fp_tcp_listener *l, void *user)
{
    struct fp_tcb *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        fp_tcp_set_callbacks(c, &srv_cb, user);
        srv_readable(c, user);
    }
}

static const struct fp_tcp_callbacks lsn_cb = {
        .on_accept = on_accept,
};

static void
pump(struct fp_tcb *c, void *user)
{
    struct job *j = user;
    uint32_t    n;
    ssize_t     rc;

    while (j->sent < j->total) {
        n = j->total - j->sent < sizeof(j->buf) ? (uint32_t)(j->total - j->sent)
                                                : (uint32_t)sizeof(j->buf);
        h_pattern_fill((uint64_t)j->id, j->sent, j->buf, n);
        rc = fp_tcp_send(c, j->buf, n);
        if (rc < 0) {
            return;
        }
        j->sent += (uint64_t)rc;
    }
    fp_tcp_close(c);
}

static const struct fp_tcp_callbacks cli_cb = {
        .on_connected = pump,
        .on_writable = pump,
};

static bool
job_done(void *arg)
{
    return ((struct job *)arg)->eof;
}

static bool
idle(void *arg)
{
    return h_pair_pools_idle(arg);
}

static void *
run(void *arg)
{
    struct job             *j = arg;
    struct fp_memlink_conf  lc = {.seed = (uint64_t)j->id, .delay_us = 100, .loss_ppm = 5000};
    struct fp_stack_conf    sc = {.nb_pkts = 4096, .nb_tcbs = 16};
    struct fp_tcp_listener *l;
    struct fp_tcb          *c;
    struct h_pair           p;
    uint64_t                t0;

    if (h_pair_create(&p, &lc, &sc) != 0 ||
        fp_tcp_listen(p.a, 80, 4, FP_TCP_SYN_BACKLOG_DEFAULT, &lsn_cb, j, &l) != 0 ||
        fp_tcp_connect(p.b, H_ADDR_A, 80, 0, &cli_cb, j, &c) != 0) {
        return NULL;
    }
    t0 = p.now_us;
    h_pair_run(&p, job_done, j, 600000000ull);
    j->virt_us = p.now_us - t0;
    h_pair_run(&p, idle, &p, 60000000ull);
    j->ok = j->eof && j->received == j->total && j->bad == 0 && h_pair_pools_idle(&p);
    h_pair_destroy(&p);
    return NULL;
}

int
main(void)
{
    static struct job jobs[NB_THREADS];
    pthread_t         th[NB_THREADS];
    int               i;
    int               failed = 0;

    for (i = 0; i < NB_THREADS; i++) {
        jobs[i].id = i + 1;
        jobs[i].total = (16u << 20) / h_scale();
        if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0) {
            return 1;
        }
    }
    for (i = 0; i < NB_THREADS; i++) {
        pthread_join(th[i], NULL);
        printf("thread %d: %llu/%llu bytes, %llu bad, virtual %.3f s: %s\n", jobs[i].id,
               (unsigned long long)jobs[i].received, (unsigned long long)jobs[i].total,
               (unsigned long long)jobs[i].bad, (double)jobs[i].virt_us / 1e6,
               jobs[i].ok ? "ok" : "FAIL");
        failed += !jobs[i].ok;
    }
    return failed == 0 ? 0 : 1;
}
