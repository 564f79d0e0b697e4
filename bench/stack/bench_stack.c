/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Stack micro-benchmark: two instances over the in-memory link on one core, no impairments.
 *   bulk: one connection, B sends MiB to A (copy send, zero-copy receive, no data check);
 *   rr:   64-byte request / 64-byte response transactions on 16 persistent connections;
 *   crr:  connect, 64-byte request, 64-byte response, close (short connections).
 * Reports CPU time (both instances, link copies included), throughput, transactions per second
 * and nanoseconds of CPU per TCP segment processed (segments received by either instance).
 * Usage: fp-bench-stack [--mib N] [--transactions N] [--conns N]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/stack/pkt.h"
#include "net/stack/tcp.h"
#include "tests/net/harness.h"

struct bench {
    struct h_pair *p;
    uint64_t       total;
    uint64_t       sent;
    uint64_t       received;
    uint64_t       target;
    uint64_t       done;
    uint64_t       started;
    bool           eof;
    uint8_t        buf[65536];
};

static double
cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
segments(const struct h_pair *p)
{
    return h_ctr(p->a, FP_STK_TCP_RX) + h_ctr(p->b, FP_STK_TCP_RX);
}

/* ---- bulk ---- */

static void
bulk_readable(struct fp_tcb *c, void *user)
{
    struct bench  *b = user;
    struct fp_pkt *chain;
    struct fp_pkt *n;
    ssize_t        r;

    for (;;) {
        r = fp_tcp_recv_pkts(c, &chain);
        if (r == -EAGAIN) {
            return;
        }
        if (r == 0) {
            b->eof = true;
            fp_tcp_close(c);
            return;
        }
        b->received += (uint64_t)r;
        for (; chain != NULL; chain = n) {
            n = chain->next;
            fp_pkt_free(chain);
        }
    }
}

static const struct fp_tcp_callbacks bulk_srv_cb = {
        .on_readable = bulk_readable,
};

static void
bulk_accept(struct fp_tcp_listener *l, void *user)
{
    struct fp_tcb *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        fp_tcp_set_callbacks(c, &bulk_srv_cb, user);
        bulk_readable(c, user);
    }
}

static const struct fp_tcp_callbacks bulk_lsn_cb = {
        .on_accept = bulk_accept,
};

static void
bulk_pump(struct fp_tcb *c, void *user)
{
    struct bench *b = user;
    uint64_t      n;
    ssize_t       r;

    while (b->sent < b->total) {
        n = b->total - b->sent < sizeof(b->buf) ? b->total - b->sent : sizeof(b->buf);
        r = fp_tcp_send(c, b->buf, n);
        if (r < 0) {
            return;
        }
        b->sent += (uint64_t)r;
    }
    fp_tcp_close(c);
}

static const struct fp_tcp_callbacks bulk_cli_cb = {
        .on_connected = bulk_pump,
        .on_writable = bulk_pump,
};

static bool
bulk_done(void *arg)
{
    return ((struct bench *)arg)->eof;
}

static void
run_bulk(uint64_t mib)
{
    struct fp_memlink_conf  lc = {.seed = 1};
    struct fp_stack_conf    sc = {.nb_pkts = 8192, .nb_tcbs = 64};
    struct fp_tcp_listener *l;
    struct fp_tcb          *c;
    struct h_pair           p;
    struct bench           *b = calloc(1, sizeof(*b));
    uint64_t                seg0;
    double                  t0;
    double                  dt;
    uint64_t                segs;

    if (b == NULL || h_pair_create(&p, &lc, &sc) != 0) {
        exit(1);
    }
    b->total = mib << 20;
    fp_tcp_listen(p.a, 5001, 16, FP_TCP_SYN_BACKLOG_DEFAULT, &bulk_lsn_cb, b, &l);
    fp_tcp_connect(p.b, H_ADDR_A, 5001, 0, &bulk_cli_cb, b, &c);
    seg0 = segments(&p);
    t0 = cpu_s();
    h_pair_run(&p, bulk_done, b, 3600ull * 1000000);
    dt = cpu_s() - t0;
    segs = segments(&p) - seg0;
    printf("bulk: %" PRIu64 " MiB in %.3f s CPU: %.2f Gbit/s, %" PRIu64
           " segments, %.0f ns CPU per segment\n",
           mib, dt, (double)b->received * 8 / dt / 1e9, segs, dt * 1e9 / (double)segs);
    h_pair_destroy(&p);
    free(b);
}

/* ---- request/response ---- */

static void rr_send(struct fp_tcb *c, struct bench *b);

static void
rr_srv_readable(struct fp_tcb *c, void *user)
{
    struct bench *b = user;
    ssize_t       n;

    while ((n = fp_tcp_recv(c, b->buf, sizeof(b->buf))) > 0) {
        fp_tcp_send(c, b->buf, (size_t)n);
    }
    if (n == 0) {
        fp_tcp_close(c);
    }
}

static const struct fp_tcp_callbacks rr_srv_cb = {
        .on_readable = rr_srv_readable,
};

static void
rr_accept(struct fp_tcp_listener *l, void *user)
{
    struct fp_tcb *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        fp_tcp_set_callbacks(c, &rr_srv_cb, user);
    }
}

static const struct fp_tcp_callbacks rr_lsn_cb = {
        .on_accept = rr_accept,
};

static void
rr_send(struct fp_tcb *c, struct bench *b)
{
    if (b->started >= b->target) {
        fp_tcp_close(c);
        return;
    }
    b->started++;
    fp_tcp_send(c, b->buf, 64);
}

static void
rr_connected(struct fp_tcb *c, void *user)
{
    rr_send(c, user);
}

static void
rr_cli_readable(struct fp_tcb *c, void *user)
{
    struct bench *b = user;
    uint8_t       tmp[256];
    ssize_t       n;

    while ((n = fp_tcp_recv(c, tmp, sizeof(tmp))) > 0) {
        b->received += (uint64_t)n;
        if (b->received >= 64) {
            b->received -= 64;
            b->done++;
            rr_send(c, b);
            return;
        }
    }
}

static const struct fp_tcp_callbacks rr_cli_cb = {
        .on_connected = rr_connected,
        .on_readable = rr_cli_readable,
};

static bool
rr_done(void *arg)
{
    struct bench *b = arg;

    return b->done >= b->target;
}

static void
run_rr(uint64_t transactions, uint32_t conns)
{
    struct fp_memlink_conf  lc = {.seed = 1};
    struct fp_stack_conf    sc = {.nb_pkts = 8192, .nb_tcbs = 1024, .delack_ms = UINT32_MAX};
    struct fp_tcp_listener *l;
    struct fp_tcb          *c;
    struct h_pair           p;
    struct bench           *b = calloc(1, sizeof(*b));
    uint64_t                seg0;
    double                  t0;
    double                  dt;
    uint32_t                i;

    if (b == NULL || h_pair_create(&p, &lc, &sc) != 0) {
        exit(1);
    }
    b->target = transactions;
    fp_tcp_listen(p.a, 5002, 128, FP_TCP_SYN_BACKLOG_DEFAULT, &rr_lsn_cb, b, &l);
    seg0 = segments(&p);
    t0 = cpu_s();
    for (i = 0; i < conns; i++) {
        fp_tcp_connect(p.b, H_ADDR_A, 5002, 0, &rr_cli_cb, b, &c);
    }
    h_pair_run(&p, rr_done, b, 3600ull * 1000000);
    dt = cpu_s() - t0;
    printf("rr: %" PRIu64 " transactions (64 B each way, %u connections) in %.3f s CPU: "
           "%.0f transactions/s, %.0f ns CPU per segment\n",
           b->done, conns, dt, (double)b->done / dt, dt * 1e9 / (double)(segments(&p) - seg0));
    h_pair_destroy(&p);
    free(b);
}

/* ---- connect / request / response / close ---- */

static void crr_start(struct bench *b);

static void
crr_cli_readable(struct fp_tcb *c, void *user)
{
    struct bench *b = user;
    uint8_t       tmp[256];

    if (fp_tcp_recv(c, tmp, sizeof(tmp)) == 64) {
        fp_tcp_close(c);
        b->done++;
        crr_start(b);
    }
}

static void
crr_connected(struct fp_tcb *c, void *user)
{
    struct bench *b = user;

    fp_tcp_send(c, b->buf, 64);
}

static const struct fp_tcp_callbacks crr_cli_cb = {
        .on_connected = crr_connected,
        .on_readable = crr_cli_readable,
};

static void
crr_start(struct bench *b)
{
    struct fp_tcb *c;

    if (b->started < b->target &&
        fp_tcp_connect(b->p->b, H_ADDR_A, 5002, 0, &crr_cli_cb, b, &c) == 0) {
        b->started++;
    }
}

static void
run_crr(uint64_t transactions, uint32_t conns)
{
    struct fp_memlink_conf  lc = {.seed = 1};
    struct fp_stack_conf    sc = {.nb_pkts = 8192, .nb_tcbs = 32768, .time_wait_ms = 5};
    struct fp_tcp_listener *l;
    struct h_pair           p;
    struct bench           *b = calloc(1, sizeof(*b));
    uint64_t                seg0;
    double                  t0;
    double                  dt;
    uint32_t                i;

    if (b == NULL || h_pair_create(&p, &lc, &sc) != 0) {
        exit(1);
    }
    b->p = &p;
    b->target = transactions;
    fp_tcp_listen(p.a, 5002, 1024, FP_TCP_SYN_BACKLOG_DEFAULT, &rr_lsn_cb, b, &l);
    h_pair_run_for(&p, 1000);
    seg0 = segments(&p);
    t0 = cpu_s();
    for (i = 0; i < conns; i++) {
        crr_start(b);
    }
    h_pair_run(&p, rr_done, b, 3600ull * 1000000);
    dt = cpu_s() - t0;
    printf("crr: %" PRIu64 " short connections (%u in parallel) in %.3f s CPU: %.0f "
           "connections/s, %.0f ns CPU per segment\n",
           b->done, conns, dt, (double)b->done / dt, dt * 1e9 / (double)(segments(&p) - seg0));
    if (b->done < b->target) {
        h_dump_counters("A", p.a);
        h_dump_counters("B", p.b);
    }
    h_pair_destroy(&p);
    free(b);
}

int
main(int argc, char **argv)
{
    uint64_t mib = 1024;
    uint64_t tr = 1000000;
    uint32_t conns = 16;
    int      i;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mib") == 0) {
            mib = strtoull(argv[i + 1], NULL, 0);
        } else if (strcmp(argv[i], "--transactions") == 0) {
            tr = strtoull(argv[i + 1], NULL, 0);
        } else if (strcmp(argv[i], "--conns") == 0) {
            conns = (uint32_t)strtoul(argv[i + 1], NULL, 0);
        }
    }
    run_bulk(mib);
    run_rr(tr, conns);
    run_crr(tr / 4, conns);
    return 0;
}
