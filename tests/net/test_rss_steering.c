/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Issue 11 items 4 and 6 end to end: N stack instances (one address, one MAC) on the N queues of
 * the in-memory multi-queue NIC (net/stack/link_mq.h), a peer instance on the wire running an
 * echo server. Each instance opens --conns connections to the peer at once, sends --bytes of a
 * deterministic stream on each, and checks the echo byte by byte. The link's observer checks
 * every TCP frame handed to a queue against the owner of its destination port: with ports from
 * struct fp_rss_ports (--ports rss) no frame may reach another instance's queue; with plain
 * sequential ports (--ports seq, disjoint ranges per instance, which is the best a picker that
 * ignores RSS can do) replies land on the wrong queue and the test expects that
 * (--expect-misdelivery), which shows the check can fail. --rounds opens the connections again
 * on a port range small enough (--port-lo/--port-hi) that later rounds reuse ports of earlier
 * ones, still in TIME_WAIT. Virtual time; sizes divided by 8 under ASan.
 *
 * Exit 0 when every expectation holds, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/rss.h"
#include "net/stack/link_mq.h"
#include "net/pool.h"
#include "net/stack/pkt.h"
#include "net/stack/stack.h"
#include "net/stack/tcp.h"
#include "net/stack/wire.h"
#include "tests/net/harness.h"

#define PEER_ADDR 0x0a000001u
#define NIC_ADDR  0x0a000002u
#define ECHO_PORT 7
#define MAX_Q     8
#define CHUNK     16384

struct opts {
    unsigned queues;
    unsigned conns;
    uint64_t bytes;
    bool     seq_ports;
    bool     expect_misdelivery;
    uint32_t loss_ppm;
    uint64_t seed;
    unsigned rounds;
    uint16_t port_lo;
    uint16_t port_hi;
    uint16_t reta_size;
};

struct inst;

struct conn {
    struct inst   *in;
    struct fp_tcb *c;
    uint64_t       id; /* pattern seed */
    uint64_t       sent;
    uint64_t       rcvd;
    uint16_t       lport;
    bool           done;
    bool           ok;
    bool           mismatch;
    bool           shut;
};

struct inst {
    struct fp_stack     *st;
    struct fp_rss_ports *ports;
    uint16_t             q;
    uint16_t             seq_next;
    uint32_t             tcbs0;
    struct conn         *conns;
    uint64_t             addrinuse; /* candidates the stack refused */
    uint64_t             no_port;
};

struct world {
    struct opts       o;
    struct fp_rss     rss;
    struct fp_mqlink *mq;
    struct fp_stack  *peer;
    struct fp_pool    srv_conns;
    struct inst       in[MAX_Q];
    uint64_t          now_us;
    int8_t            owner[65536]; /* instance that opened a connection from this port, -1 */
    uint64_t          right_queue;  /* TCP frames of our connections seen on the owner's queue */
    uint64_t          wrong_queue;
    uint64_t          done;
    uint64_t          failed;
    uint64_t          echoed;
};

static struct world W; /* large (owner map, rss tables): static */
static uint8_t      buf[CHUNK];

/*
 * ---- the peer: echo by copy ----
 * Received buffers belong to the sending instance's pool (the link passes frames without a
 * copy), and fp_tcp_send_pkts takes only the instance's own buffers: copy through a small
 * per-connection buffer.
 */

#define SRV_BUF 2048

struct srv_conn {
    uint32_t off;
    uint32_t len;
    bool     eof;
    uint8_t  data[SRV_BUF];
};

static void
srv_release(struct srv_conn *sc)
{
    fp_pool_put(&W.srv_conns, sc);
}

static void
srv_readable(struct fp_tcb *c, void *user)
{
    struct srv_conn *sc = user;
    ssize_t          n;

    for (;;) {
        while (sc->off < sc->len) {
            n = fp_tcp_send(c, sc->data + sc->off, sc->len - sc->off);
            if (n < 0) {
                return; /* on_writable resumes */
            }
            sc->off += (uint32_t)n;
        }
        sc->off = 0;
        sc->len = 0;
        if (sc->eof) {
            fp_tcp_close(c);
            srv_release(sc);
            return;
        }
        n = fp_tcp_recv(c, sc->data, sizeof(sc->data));
        if (n == -EAGAIN) {
            return;
        }
        if (n <= 0) {
            sc->eof = true;
            continue;
        }
        sc->len = (uint32_t)n;
    }
}

static void
srv_writable(struct fp_tcb *c, void *user)
{
    srv_readable(c, user);
}

static void
srv_closed(struct fp_tcb *c, void *user, int err)
{
    (void)c;
    (void)err;
    srv_release(user);
}

static const struct fp_tcp_callbacks srv_cb = {
        .on_readable = srv_readable,
        .on_writable = srv_writable,
        .on_closed = srv_closed,
};

static void
srv_accept(struct fp_tcp_listener *l, void *user)
{
    struct srv_conn *sc;
    struct fp_tcb   *c;

    (void)user;
    while ((c = fp_tcp_accept(l)) != NULL) {
        sc = fp_pool_get_zeroed(&W.srv_conns);
        if (sc == NULL) {
            fp_tcp_abort(c);
            continue;
        }
        fp_tcp_set_callbacks(c, &srv_cb, sc);
        srv_readable(c, sc);
    }
}

static const struct fp_tcp_callbacks listen_cb = {
        .on_accept = srv_accept,
};

/* ---- the clients ---- */

static void
conn_finish(struct conn *cn, bool ok)
{
    cn->done = true;
    cn->ok = ok;
    W.done++;
    if (!ok) {
        W.failed++;
    }
}

static void
cli_pump(struct fp_tcb *c, struct conn *cn)
{
    uint64_t n;
    ssize_t  rc;

    while (cn->sent < W.o.bytes) {
        n = W.o.bytes - cn->sent < CHUNK ? W.o.bytes - cn->sent : CHUNK;
        h_pattern_fill(cn->id, cn->sent, buf, (uint32_t)n);
        rc = fp_tcp_send(c, buf, n);
        if (rc < 0) {
            return; /* -EAGAIN: on_writable resumes */
        }
        cn->sent += (uint64_t)rc;
    }
    if (!cn->shut) {
        cn->shut = true;
        fp_tcp_shutdown(c);
    }
}

static void
cli_connected(struct fp_tcb *c, void *user)
{
    cli_pump(c, user);
}

static void
cli_readable(struct fp_tcb *c, void *user)
{
    struct conn *cn = user;
    ssize_t      n;
    ssize_t      i;

    for (;;) {
        n = fp_tcp_recv(c, buf, sizeof(buf));
        if (n == -EAGAIN) {
            return;
        }
        if (n <= 0) {
            fp_tcp_close(c);
            cn->c = NULL;
            conn_finish(cn, n == 0 && cn->rcvd == W.o.bytes && !cn->mismatch);
            return;
        }
        for (i = 0; i < n; i++) {
            if (buf[i] != h_pattern(cn->id, cn->rcvd + (uint64_t)i)) {
                cn->mismatch = true;
            }
        }
        cn->rcvd += (uint64_t)n;
        W.echoed += (uint64_t)n;
    }
}

static void
cli_writable(struct fp_tcb *c, void *user)
{
    cli_pump(c, user);
}

static void
cli_closed(struct fp_tcb *c, void *user, int err)
{
    struct conn *cn = user;

    (void)c;
    (void)err;
    cn->c = NULL;
    conn_finish(cn, false);
}

static const struct fp_tcp_callbacks cli_cb = {
        .on_connected = cli_connected,
        .on_readable = cli_readable,
        .on_writable = cli_writable,
        .on_closed = cli_closed,
};

/* The next port of a picker that ignores RSS: sequential in the instance's own slice. */
static uint16_t
seq_port(struct inst *in)
{
    uint32_t span = ((uint32_t)W.o.port_hi - W.o.port_lo + 1) / W.o.queues;
    uint16_t p = (uint16_t)(W.o.port_lo + in->q * span + in->seq_next % span);

    in->seq_next++;
    return p;
}

/*
 * Opens cn from a port whose reply hashes to the instance's queue (or a sequential one),
 * taking the next candidate while the stack refuses a port (busy, or TIME_WAIT without
 * timestamps). Returns 0 or -errno.
 */
static int
conn_open(struct inst *in, struct conn *cn)
{
    struct fp_rss_port_iter it;
    uint32_t                laddr;
    uint16_t                lport;
    unsigned                tries;
    int                     rc = -EADDRNOTAVAIL;

    if (!W.o.seq_ports) {
        fp_rss_ports_begin(in->ports, PEER_ADDR, ECHO_PORT, &it);
        while (fp_rss_ports_next(in->ports, &it, &laddr, &lport) == 0) {
            rc = fp_tcp_connect(in->st, PEER_ADDR, ECHO_PORT, lport, &cli_cb, cn, &cn->c);
            if (rc != -EADDRINUSE) {
                break;
            }
            in->addrinuse++;
        }
    } else {
        for (tries = 0; tries < 64; tries++) {
            lport = seq_port(in);
            rc = fp_tcp_connect(in->st, PEER_ADDR, ECHO_PORT, lport, &cli_cb, cn, &cn->c);
            if (rc != -EADDRINUSE) {
                break;
            }
            in->addrinuse++;
        }
    }
    if (rc < 0) {
        in->no_port++;
        return rc;
    }
    cn->lport = lport;
    W.owner[lport] = (int8_t)in->q;
    return 0;
}

/* Checks every TCP frame from the echo server against the owner of its destination port. */
static void
on_rx(void *arg, uint16_t q, const uint8_t *f, uint32_t len)
{
    uint32_t ihl;
    uint16_t dport;

    (void)arg;
    if (len < 14 + 20 || fp_get16(f + 12) != 0x0800 || f[14 + 9] != 6) {
        return;
    }
    ihl = (uint32_t)(f[14] & 0x0f) * 4;
    if (len < 14 + ihl + 4 || fp_get32(f + 14 + 12) != PEER_ADDR ||
        fp_get16(f + 14 + ihl) != ECHO_PORT) {
        return;
    }
    dport = fp_get16(f + 14 + ihl + 2);
    if (W.owner[dport] < 0) {
        return;
    }
    if (W.owner[dport] == (int8_t)q) {
        W.right_queue++;
    } else {
        W.wrong_queue++;
    }
}

/* ---- driving ---- */

static uint32_t
step(void)
{
    uint32_t work = 0;
    uint64_t next;
    uint64_t t;
    unsigned i;

    work += fp_stack_poll(W.peer, W.now_us, 4);
    for (i = 0; i < W.o.queues; i++) {
        work += fp_stack_poll(W.in[i].st, W.now_us, 4);
    }
    if (work != 0) {
        W.now_us++;
        return work;
    }
    next = fp_mqlink_next_us(W.mq);
    if (next <= W.now_us) {
        W.now_us++;
        return 1;
    }
    t = fp_stack_next_timer_us(W.peer);
    next = t < next ? t : next;
    for (i = 0; i < W.o.queues; i++) {
        t = fp_stack_next_timer_us(W.in[i].st);
        next = t < next ? t : next;
    }
    W.now_us = next == UINT64_MAX ? W.now_us + 1000 : (next > W.now_us ? next : W.now_us + 1);
    return 0;
}

static int
setup(void)
{
    struct fp_mqlink_conf    mc;
    struct fp_stack_conf     sc;
    struct fp_rss_ports_conf pc;
    struct fp_tcp_listener  *l;
    uint32_t                 laddr = NIC_ADDR;
    unsigned                 i;
    int                      rc;

    W.now_us = 1000000;
    memset(W.owner, -1, sizeof(W.owner));
    rc = fp_rss_init(&W.rss, NULL, 0, W.o.reta_size, (uint16_t)W.o.queues);
    if (rc < 0) {
        return rc;
    }
    memset(&mc, 0, sizeof(mc));
    mc.wire.seed = W.o.seed;
    mc.wire.loss_ppm = W.o.loss_ppm;
    mc.wire.delay_us = 50;
    mc.wire.queue_frames = 8192; /* 800 connections answering at once: no tail drop */
    mc.rss = &W.rss;
    mc.on_rx = on_rx;
    rc = fp_mqlink_create(&mc, &W.mq);
    if (rc < 0) {
        return rc;
    }
    memset(&sc, 0, sizeof(sc));
    sc.prefix_len = 24;
    sc.addr = PEER_ADDR;
    sc.seed = W.o.seed + 100;
    sc.nb_tcbs = 2 * W.o.queues * W.o.conns + 64;
    sc.nb_pkts = 32768;
    rc = fp_stack_create(&sc, W.now_us, &W.peer);
    if (rc < 0) {
        return rc;
    }
    fp_stack_attach_link(W.peer, fp_mqlink_peer(W.mq), W.now_us);
    rc = fp_pool_init(&W.srv_conns, sizeof(struct srv_conn), sc.nb_tcbs);
    if (rc < 0) {
        return rc;
    }
    rc = fp_tcp_listen(W.peer, ECHO_PORT, 4096, FP_TCP_SYN_BACKLOG_DEFAULT, &listen_cb, NULL, &l);
    if (rc < 0) {
        return rc;
    }
    memset(&pc, 0, sizeof(pc));
    pc.rss = &W.rss;
    pc.laddrs = &laddr;
    pc.nb_laddrs = 1;
    pc.port_lo = W.o.port_lo;
    pc.port_hi = W.o.port_hi;
    for (i = 0; i < W.o.queues; i++) {
        memset(&sc, 0, sizeof(sc));
        sc.prefix_len = 24;
        sc.addr = NIC_ADDR;
        sc.seed = W.o.seed + 1 + i;
        sc.nb_tcbs = 2 * W.o.conns + 64;
        sc.nb_pkts = 16384;
        sc.arp_wait_max = W.o.conns; /* every first SYN waits for the peer's MAC */
        W.in[i].q = (uint16_t)i;
        rc = fp_stack_create(&sc, W.now_us, &W.in[i].st);
        if (rc < 0) {
            return rc;
        }
        W.in[i].tcbs0 = fp_stack_tcbs_avail(W.in[i].st);
        fp_stack_attach_link(W.in[i].st, fp_mqlink_queue(W.mq, (uint16_t)i), W.now_us);
        pc.queue = (uint16_t)i;
        rc = fp_rss_ports_create(&pc, &W.in[i].ports);
        if (rc < 0) {
            return rc;
        }
        W.in[i].conns = calloc(W.o.conns, sizeof(struct conn));
        if (W.in[i].conns == NULL) {
            return -ENOMEM;
        }
    }
    return 0;
}

static void
teardown(void)
{
    unsigned i;

    fp_mqlink_destroy(W.mq);
    fp_stack_shutdown(W.peer);
    for (i = 0; i < W.o.queues; i++) {
        fp_stack_shutdown(W.in[i].st);
    }
    fp_stack_destroy(W.peer);
    fp_pool_destroy(&W.srv_conns);
    for (i = 0; i < W.o.queues; i++) {
        fp_stack_destroy(W.in[i].st);
        fp_rss_ports_destroy(W.in[i].ports);
        free(W.in[i].conns);
    }
}

/* Opens every instance's connections and runs until all are done (or 120 s of virtual time). */
static bool
run_round(unsigned round)
{
    uint64_t want = 0;
    uint64_t end;
    unsigned i;
    unsigned k;

    W.done = 0;
    for (i = 0; i < W.o.queues; i++) {
        for (k = 0; k < W.o.conns; k++) {
            struct conn *cn = &W.in[i].conns[k];

            memset(cn, 0, sizeof(*cn));
            cn->in = &W.in[i];
            cn->id = ((uint64_t)round << 32) | (i << 16) | k;
            if (conn_open(&W.in[i], cn) == 0) {
                want++;
            } else {
                W.failed++;
            }
        }
    }
    end = W.now_us + 120000000;
    while (W.done < want && W.now_us < end) {
        step();
    }
    return W.done == want;
}

static bool
pools_back(void)
{
    unsigned i;

    for (i = 0; i < W.o.queues; i++) {
        if (fp_stack_tcbs_avail(W.in[i].st) != W.in[i].tcbs0) {
            return false;
        }
    }
    return true;
}

static int
usage(void)
{
    fprintf(stderr, "usage: test_rss_steering [--queues N] [--conns N] [--bytes N] "
                    "[--ports rss|seq] [--expect-misdelivery] [--loss PPM] [--seed N] "
                    "[--rounds N] [--port-lo P --port-hi P] [--reta N]\n");
    return 2;
}

static int
parse(int argc, char **argv)
{
    int i;

    W.o.queues = 2;
    W.o.conns = 200;
    W.o.bytes = 4096;
    W.o.seed = 1;
    W.o.rounds = 1;
    W.o.port_lo = FP_RSS_PORT_LO;
    W.o.port_hi = FP_RSS_PORT_HI;
    W.o.reta_size = 128;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--expect-misdelivery") == 0) {
            W.o.expect_misdelivery = true;
            continue;
        }
        if (v == NULL) {
            return usage();
        }
        i++;
        if (strcmp(a, "--queues") == 0) {
            W.o.queues = (unsigned)strtoul(v, NULL, 0);
        } else if (strcmp(a, "--conns") == 0) {
            W.o.conns = (unsigned)strtoul(v, NULL, 0);
        } else if (strcmp(a, "--bytes") == 0) {
            W.o.bytes = strtoull(v, NULL, 0);
        } else if (strcmp(a, "--ports") == 0) {
            W.o.seq_ports = strcmp(v, "seq") == 0;
        } else if (strcmp(a, "--loss") == 0) {
            W.o.loss_ppm = (uint32_t)strtoul(v, NULL, 0);
        } else if (strcmp(a, "--seed") == 0) {
            W.o.seed = strtoull(v, NULL, 0);
        } else if (strcmp(a, "--rounds") == 0) {
            W.o.rounds = (unsigned)strtoul(v, NULL, 0);
        } else if (strcmp(a, "--port-lo") == 0) {
            W.o.port_lo = (uint16_t)strtoul(v, NULL, 0);
        } else if (strcmp(a, "--port-hi") == 0) {
            W.o.port_hi = (uint16_t)strtoul(v, NULL, 0);
        } else if (strcmp(a, "--reta") == 0) {
            W.o.reta_size = (uint16_t)strtoul(v, NULL, 0);
        } else {
            return usage();
        }
    }
    if (W.o.queues == 0 || W.o.queues > MAX_Q || W.o.conns == 0 || W.o.rounds == 0) {
        return usage();
    }
    return 0;
}

static void
report(void)
{
    struct fp_mqlink_queue_stats qs;
    struct fp_rss_ports_stats    ps;
    struct fp_memlink_stats      ws[2];
    unsigned                     i;

    fp_mqlink_wire_stats(W.mq, 0, &ws[0]);
    fp_mqlink_wire_stats(W.mq, 1, &ws[1]);
    printf("queues %u conns %u x %u rounds, %llu bytes each (%s ports), echoed %llu bytes, "
           "%.3f s virtual\n",
           W.o.queues, W.o.conns, W.o.rounds, (unsigned long long)W.o.bytes,
           W.o.seq_ports ? "sequential" : "rss", (unsigned long long)W.echoed,
           (double)(W.now_us - 1000000) / 1e6);
    printf("frames of our connections: %llu on the owner's queue, %llu on another queue; "
           "failed connections %llu; wire lost %llu + %llu, queue full %llu + %llu\n",
           (unsigned long long)W.right_queue, (unsigned long long)W.wrong_queue,
           (unsigned long long)W.failed, (unsigned long long)ws[0].lost,
           (unsigned long long)ws[1].lost, (unsigned long long)ws[0].queue_full,
           (unsigned long long)ws[1].queue_full);
    for (i = 0; i < W.o.queues; i++) {
        fp_mqlink_queue_stats(W.mq, (uint16_t)i, &qs);
        fp_rss_ports_stats(W.in[i].ports, &ps);
        printf("  queue %u: rx %llu (tcp %llu arp %llu other %llu ring_full %llu) tx %llu; "
               "picks %llu misses %llu exhausted %llu; refused %llu; tw_reuse %llu\n",
               i, (unsigned long long)qs.rx, (unsigned long long)qs.rx_tcp,
               (unsigned long long)qs.rx_arp, (unsigned long long)qs.rx_other,
               (unsigned long long)qs.rx_ring_full, (unsigned long long)qs.tx,
               (unsigned long long)ps.picks, (unsigned long long)ps.misses,
               (unsigned long long)ps.exhausted, (unsigned long long)W.in[i].addrinuse,
               (unsigned long long)h_ctr(W.in[i].st, FP_STK_TCP_TW_REUSE));
    }
}

int
main(int argc, char **argv)
{
    bool     all_done = true;
    bool     ok;
    unsigned r;
    int      rc;

    rc = parse(argc, argv);
    if (rc != 0) {
        return rc;
    }
    W.o.bytes = W.o.bytes / h_scale() > 0 ? W.o.bytes / h_scale() : 1;
    rc = setup();
    if (rc < 0) {
        fprintf(stderr, "setup: %s\n", strerror(-rc));
        return 1;
    }
    for (r = 0; r < W.o.rounds; r++) {
        all_done = run_round(r) && all_done;
    }
    /* Past TIME_WAIT: every connection must have released its TCB. */
    {
        uint64_t end = W.now_us + 5000000;

        while (W.now_us < end) {
            step();
        }
    }
    report();
    if (getenv("FP_RSS_DUMP") != NULL) {
        for (r = 0; r < W.o.queues; r++) {
            h_dump_counters("inst", W.in[r].st);
        }
        h_dump_counters("peer", W.peer);
    }
    if (W.o.expect_misdelivery) {
        ok = W.wrong_queue > 0 && W.failed > 0;
        printf("%s: expected misdelivery with ports chosen without RSS\n", ok ? "ok" : "FAIL");
    } else {
        ok = all_done && W.wrong_queue == 0 && W.failed == 0 && W.right_queue > 0 &&
             W.echoed == (uint64_t)W.o.rounds * W.o.queues * W.o.conns * W.o.bytes && pools_back();
        printf("%s: every frame on its owner's queue, every byte echoed intact, pools back\n",
               ok ? "ok" : "FAIL");
    }
    teardown();
    return ok ? 0 : 1;
}
