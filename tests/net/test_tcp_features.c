/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP behaviours between two instances over the in-memory link, in virtual time: zero window and
 * persist probes, keepalive, RFC 5961 blind RST/SYN protection, bounded accept queue, SYN
 * cookies, a SYN flood during an established transfer, Nagle, and a churn of short connections
 * after which every pool is back to its initial level.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/stack/pkt.h"
#include "net/stack/tcp.h"
#include "tests/net/harness.h"

enum {
    TH_FIN = 0x01,
    TH_SYN = 0x02,
    TH_RST = 0x04,
    TH_ACK = 0x10,
};

/* ---- a small application: server reads on demand, client sends a stream ---- */

struct app {
    struct fp_tcp_listener *l;
    struct fp_tcb          *srv;
    struct fp_tcb          *cli;
    bool                    srv_reads; /* read in on_readable, or leave data queued */
    uint64_t                total;
    uint64_t                sent;
    uint64_t                received;
    uint64_t                bad;
    bool                    eof;
    int                     cli_err;
    int                     srv_err;
    int                     cli_closed;
    uint8_t                 buf[16384];
};

static void
srv_drain(struct fp_tcb *c, struct app *a)
{
    struct fp_pkt *chain;
    struct fp_pkt *p;
    ssize_t        n;
    uint32_t       i;

    for (;;) {
        n = fp_tcp_recv_pkts(c, &chain);
        if (n == -EAGAIN) {
            return;
        }
        if (n == 0) {
            a->eof = true;
            fp_tcp_close(c);
            a->srv = NULL;
            return;
        }
        while ((p = chain) != NULL) {
            chain = p->next;
            for (i = 0; i < p->len; i++) {
                if (p->data[i] != h_pattern(5, a->received + i)) {
                    a->bad++;
                }
            }
            a->received += p->len;
            fp_pkt_free(p);
        }
    }
}

static void
srv_readable(struct fp_tcb *c, void *user)
{
    struct app *a = user;

    if (a->srv_reads) {
        srv_drain(c, a);
    }
}

static void
srv_closed(struct fp_tcb *c, void *user, int err)
{
    struct app *a = user;

    a->srv_err = err;
    a->srv = NULL;
}

static const struct fp_tcp_callbacks srv_cb = {
        .on_readable = srv_readable,
        .on_closed = srv_closed,
};

static void
on_accept(struct fp_tcp_listener *l, void *user)
{
    struct app *a = user;

    a->srv = fp_tcp_accept(l);
    if (a->srv != NULL) {
        fp_tcp_set_callbacks(a->srv, &srv_cb, a);
        srv_readable(a->srv, a);
    }
}

static const struct fp_tcp_callbacks lsn_cb = {
        .on_accept = on_accept,
};

static void
cli_pump(struct fp_tcb *c, void *user)
{
    struct app *a = user;
    uint32_t    n;
    ssize_t     rc;

    while (a->sent < a->total) {
        n = a->total - a->sent < sizeof(a->buf) ? (uint32_t)(a->total - a->sent)
                                                : (uint32_t)sizeof(a->buf);
        h_pattern_fill(5, a->sent, a->buf, n);
        rc = fp_tcp_send(c, a->buf, n);
        if (rc < 0) {
            return;
        }
        a->sent += (uint64_t)rc;
    }
    if (a->total != 0) {
        fp_tcp_close(c);
        a->cli = NULL;
    }
}

static void
cli_closed(struct fp_tcb *c, void *user, int err)
{
    struct app *a = user;

    a->cli_err = err;
    a->cli_closed++;
    a->cli = NULL;
}

static const struct fp_tcp_callbacks cli_cb = {
        .on_connected = cli_pump,
        .on_writable = cli_pump,
        .on_closed = cli_closed,
};

static bool
app_eof(void *arg)
{
    return ((struct app *)arg)->eof;
}

static bool
srv_exists(void *arg)
{
    return ((struct app *)arg)->srv != NULL;
}

static bool
pools_idle(void *arg)
{
    return h_pair_pools_idle(arg);
}

static void
start(struct h_pair *p, struct app *a, const struct fp_memlink_conf *lc,
      const struct fp_stack_conf *sc, uint64_t total, bool srv_reads)
{
    memset(a, 0, sizeof(*a));
    a->total = total;
    a->srv_reads = srv_reads;
    CU_ASSERT_EQUAL_FATAL(h_pair_create(p, lc, sc), 0);
    CU_ASSERT_EQUAL_FATAL(fp_tcp_listen(p->a, 80, 8, FP_TCP_SYN_BACKLOG_DEFAULT, &lsn_cb, a, &a->l),
                          0);
    CU_ASSERT_EQUAL_FATAL(fp_tcp_connect(p->b, H_ADDR_A, 80, 0, &cli_cb, a, &a->cli), 0);
}

/* ---- zero window and persist ---- */

static void
test_zero_window_persist(void)
{
    struct fp_memlink_conf lc = {.seed = 9, .delay_us = 200};
    struct fp_stack_conf   sc = {.rcv_buf = 65536, .snd_buf = 65536};
    struct h_pair          p;
    struct app             a;
    struct fp_tcb         *srv;

    start(&p, &a, &lc, &sc, 1 << 20, false);
    h_pair_run_for(&p, 10000000); /* 10 s with a receiver that does not read */
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.srv);
    srv = a.srv;
    CU_ASSERT_EQUAL(fp_tcp_get_state(srv), FP_TCP_ESTABLISHED);
    CU_ASSERT_EQUAL(srv->rcvq_bytes, 65536); /* window full */
    CU_ASSERT_TRUE(h_ctr(p.b, FP_STK_TCP_PERSIST_PROBE) >= 3);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_CONN_TIMEOUT), 0);
    /* The application reads: the window opens and the transfer completes intact. */
    a.srv_reads = true;
    srv_drain(srv, &a);
    CU_ASSERT_TRUE(h_pair_run(&p, app_eof, &a, 60000000));
    CU_ASSERT_EQUAL(a.received, 1 << 20);
    CU_ASSERT_EQUAL(a.bad, 0);
    CU_ASSERT_TRUE(h_pair_run(&p, pools_idle, &p, 30000000));
    h_pair_destroy(&p);
}

/* ---- keepalive ---- */

static void
test_keepalive(void)
{
    struct fp_memlink_conf lc = {.seed = 9, .delay_us = 200};
    struct fp_memlink_conf dead = {.loss_ppm = 1000000};
    struct fp_stack_conf   sc = {
              .keepalive_idle_ms = 1000, .keepalive_intvl_ms = 200, .keepalive_probes = 3};
    struct h_pair p;
    struct app    a;

    start(&p, &a, &lc, &sc, 0, true);
    h_pair_run_for(&p, 5000000);
    /* Idle but alive: probes are answered, nobody is dropped. */
    CU_ASSERT_TRUE(h_ctr(p.b, FP_STK_TCP_KEEPALIVE_PROBE) >= 3);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_KEEPALIVE_DROP), 0);
    CU_ASSERT_PTR_NOT_NULL(a.cli);
    /* The peer disappears: after idle + 3 probes the client gets ETIMEDOUT. */
    fp_memlink_set_impairments(p.ml, &dead);
    h_pair_run_for(&p, 3000000);
    CU_ASSERT_EQUAL(a.cli_closed, 1);
    CU_ASSERT_EQUAL(a.cli_err, -ETIMEDOUT);
    CU_ASSERT_TRUE(h_ctr(p.b, FP_STK_TCP_KEEPALIVE_DROP) >= 1);
    h_pair_destroy(&p);
}

/* ---- RFC 5961 ---- */

static void
test_rfc5961_blind_rst_and_syn(void)
{
    struct fp_memlink_conf lc = {.seed = 9, .delay_us = 100};
    struct h_pair          p;
    struct app             a;
    struct fp_tcb         *srv;
    uint64_t               chal;

    start(&p, &a, &lc, NULL, 0, true);
    h_pair_run_for(&p, 100000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.srv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.cli);
    srv = a.srv;
    chal = h_ctr(p.a, FP_STK_TCP_CHALLENGE_ACK);
    /* In-window but not exact RST: challenge ACK, connection kept (RFC 5961 §3.2). */
    h_inject_tcp(&p, p.a, H_ADDR_B, a.cli->lport, 80, srv->rcv_nxt + 1000, 0, TH_RST, 0, NULL, 0,
                 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_CHALLENGE_ACK), chal + 1);
    CU_ASSERT_EQUAL(fp_tcp_get_state(srv), FP_TCP_ESTABLISHED);
    /* Out-of-window RST: ignored silently. */
    h_inject_tcp(&p, p.a, H_ADDR_B, a.cli->lport, 80, srv->rcv_nxt + 0x40000000u, 0, TH_RST, 0,
                 NULL, 0, 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_RST_IGNORED), 1);
    CU_ASSERT_EQUAL(fp_tcp_get_state(srv), FP_TCP_ESTABLISHED);
    /* SYN on an established connection: challenge ACK (RFC 5961 §4.2). */
    h_inject_tcp(&p, p.a, H_ADDR_B, a.cli->lport, 80, srv->rcv_nxt + 5, 0, TH_SYN, 1000, NULL, 0,
                 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_CHALLENGE_ACK), chal + 2);
    CU_ASSERT_EQUAL(fp_tcp_get_state(srv), FP_TCP_ESTABLISHED);
    /* ACK for data never sent: dropped (RFC 5961 §5.2). */
    h_inject_tcp(&p, p.a, H_ADDR_B, a.cli->lport, 80, srv->rcv_nxt, srv->snd_max + 100000, TH_ACK,
                 1000, NULL, 0, 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_ACK_TOO_NEW), 1);
    /* The exact RST resets. */
    h_inject_tcp(&p, p.a, H_ADDR_B, a.cli->lport, 80, srv->rcv_nxt, 0, TH_RST, 0, NULL, 0, 0);
    CU_ASSERT_PTR_NULL(a.srv);
    CU_ASSERT_EQUAL(a.srv_err, -ECONNRESET);
    h_pair_destroy(&p);
}

/* ---- accept queue bound ---- */

static void
noop_accept(struct fp_tcp_listener *l, void *user)
{
    (void)l;
    (void)user;
}

static const struct fp_tcp_callbacks noaccept_cb = {
        .on_accept = noop_accept,
};

static void
test_accept_queue_bound(void)
{
    struct fp_memlink_conf  lc = {.seed = 9, .delay_us = 100};
    struct fp_stack_conf    sc = {.syn_rexmt = 2};
    struct fp_tcp_listener *l;
    struct fp_tcb          *c[5];
    struct app              a;
    struct h_pair           p;
    int                     i;

    memset(&a, 0, sizeof(a));
    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &lc, &sc), 0);
    CU_ASSERT_EQUAL_FATAL(
            fp_tcp_listen(p.a, 81, 2, FP_TCP_SYN_BACKLOG_DEFAULT, &noaccept_cb, NULL, &l), 0);
    for (i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(fp_tcp_connect(p.b, H_ADDR_A, 81, 0, &cli_cb, &a, &c[i]), 0);
    }
    h_pair_run_for(&p, 100000);
    CU_ASSERT_EQUAL(l->nb_accept, 2);
    CU_ASSERT_TRUE(h_ctr(p.a, FP_STK_TCP_ACCEPTQ_FULL) >= 3);
    /* The three others never complete: their SYNs time out. */
    h_pair_run_for(&p, 20000000);
    /* Refused at the third step (RST, as Linux with tcp_abort_on_overflow) or at the first. */
    CU_ASSERT_EQUAL(a.cli_closed, 3);
    CU_ASSERT_TRUE(a.cli_err == -ECONNRESET || a.cli_err == -ETIMEDOUT);
    CU_ASSERT_PTR_NOT_NULL(fp_tcp_accept(l));
    CU_ASSERT_PTR_NOT_NULL(fp_tcp_accept(l));
    CU_ASSERT_PTR_NULL(fp_tcp_accept(l));
    h_pair_destroy(&p);
}

/* ---- SYN cookies ---- */

static void
test_syn_cookie_handshake(void)
{
    struct fp_memlink_conf  lc = {.seed = 9, .delay_us = 100};
    struct fp_stack_conf    sc = {.gateway = H_ADDR_B};
    struct h_pair           p;
    struct app              a;
    struct fp_tcp_listener *l;
    struct fp_tcb          *cli;

    memset(&a, 0, sizeof(a));
    a.total = 200000;
    a.srv_reads = true;
    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &lc, &sc), 0);
    /* A SYN queue of one, already taken by a spoofed SYN that will never complete. */
    CU_ASSERT_EQUAL_FATAL(fp_tcp_listen(p.a, 80, 8, 1, &lsn_cb, &a, &l), 0);
    a.l = l;
    h_inject_tcp(&p, p.a, 0xc0a80101u, 999, 80, 12345, 0, TH_SYN, 1000, NULL, 0, 0);
    CU_ASSERT_EQUAL(l->nb_syn, 1);
    CU_ASSERT_EQUAL_FATAL(fp_tcp_connect(p.b, H_ADDR_A, 80, 0, &cli_cb, &a, &a.cli), 0);
    cli = a.cli; /* the client closes its handle once all is queued; the TCB lives on */
    CU_ASSERT_TRUE(h_pair_run(&p, srv_exists, &a, 10000000));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.srv);
    /* Window scale and SACK came back through the timestamp echo; both sides agree. */
    CU_ASSERT_TRUE((a.srv->t_flags & FP_TF_RCVD_TSTMP) != 0);
    CU_ASSERT_TRUE((a.srv->t_flags & FP_TF_RCVD_SCALE) != 0);
    CU_ASSERT_TRUE((a.srv->t_flags & FP_TF_SACK_PERMIT) != 0);
    CU_ASSERT_EQUAL(a.srv->snd_wscale, cli->rcv_wscale);
    CU_ASSERT_EQUAL(a.srv->rcv_wscale, cli->snd_wscale);
    CU_ASSERT_TRUE(a.srv->rcv_wscale > 0);
    CU_ASSERT_TRUE(h_pair_run(&p, app_eof, &a, 10000000));
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_COOKIE_SENT), 1);
    /* The cookie's TSval is never ahead of the connection's clock: nothing fails PAWS. */
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_PAWS_DROP), 0);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_REXMT_TIMEOUT), 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_COOKIE_OK), 1);
    CU_ASSERT_EQUAL(a.received, 200000);
    CU_ASSERT_EQUAL(a.bad, 0);
    /* A forged ACK with a wrong cookie is refused. */
    h_inject_tcp(&p, p.a, H_ADDR_B, 998, 80, 5000, 0x12345678, TH_ACK, 1000, NULL, 0, 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_COOKIE_BAD), 1);
    h_pair_destroy(&p);
}

/* A link that keeps the last frame sent, to read what an instance answered. */
struct capture {
    struct fp_link link;
    uint8_t        last[2048];
    uint32_t       last_len;
};

static uint16_t
cap_rx(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
       uint64_t now_us)
{
    return 0;
}

static uint16_t
cap_tx(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    struct capture *c = l->ctx;
    uint16_t        i;

    for (i = 0; i < n; i++) {
        memcpy(c->last, pkts[i]->data, pkts[i]->len);
        c->last_len = pkts[i]->len;
        fp_pkt_free(pkts[i]);
    }
    return n;
}

static const struct fp_link_ops cap_ops = {
        .rx_burst = cap_rx,
        .tx_burst = cap_tx,
};

static void
test_cookie_checks(void)
{
    struct fp_stack_conf sc = {
            .addr = H_ADDR_A, .prefix_len = 24, .seed = 5, .mac = {2, 0, 0, 0, 0, 1}};
    struct capture          cap = {.link = {.ops = &cap_ops, .mtu = 1500}};
    struct h_pair           p;
    struct fp_tcp_listener *l;
    uint32_t                cookie;
    uint32_t                tcbs;
    const uint8_t          *th;

    memset(&p, 0, sizeof(p));
    p.now_us = 1000000;
    cap.link.ctx = &cap;
    CU_ASSERT_EQUAL_FATAL(fp_stack_create(&sc, p.now_us, &p.a), 0);
    fp_stack_attach_link(p.a, &cap.link, p.now_us);
    CU_ASSERT_EQUAL_FATAL(fp_tcp_listen(p.a, 80, 8, 1, &noaccept_cb, NULL, &l), 0);
    /* An ARP request from B teaches A its MAC, so that answers leave at once. */
    {
        static const uint8_t arp[42] = {2,  0, 0,    0, 0, 1, 2, 0, 0, 0, 0,  2, 0x08, 0x06,
                                        0,  1, 0x08, 0, 6, 4, 0, 1, 2, 0, 0,  0, 0,    2,
                                        10, 0, 0,    2, 0, 0, 0, 0, 0, 0, 10, 0, 0,    1};
        struct fp_pkt       *f = fp_stack_pkt_alloc(p.a);

        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        memcpy(f->data, arp, sizeof(arp));
        f->len = sizeof(arp);
        fp_stack_input(p.a, &f, 1, p.now_us);
    }
    /* Fill the SYN queue (one entry), then the next SYN gets a cookie. */
    h_inject_tcp(&p, p.a, H_ADDR_B, 1000, 80, 1, 0, TH_SYN, 1000, NULL, 0, 0);
    tcbs = fp_stack_tcbs_avail(p.a);
    h_inject_tcp(&p, p.a, H_ADDR_B, 1001, 80, 5000, 0, TH_SYN, 1000, NULL, 0, 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_COOKIE_SENT), 1);
    th = cap.last + 14 + 20;
    if (cap.last_len >= 54 && cap.last[12] == 0x08 && cap.last[13] == 0x00 && th[13] == 0x12) {
        cookie = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
        /* SYN+ACK carrying the right acknowledgment cannot open: no TCB is kept. */
        h_inject_tcp(&p, p.a, H_ADDR_B, 1001, 80, 5001, cookie + 1, TH_SYN | TH_ACK, 1000, NULL, 0,
                     0);
        CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_COOKIE_OK), 0);
        CU_ASSERT_EQUAL(fp_stack_tcbs_avail(p.a), tcbs);
        /* A wrong sequence number (not the SYN's + 1) fails the cookie too. */
        h_inject_tcp(&p, p.a, H_ADDR_B, 1001, 80, 7001, cookie + 1, TH_ACK, 1000, NULL, 0, 0);
        CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_COOKIE_OK), 0);
        CU_ASSERT_EQUAL(fp_stack_tcbs_avail(p.a), tcbs);
        /* The plain ACK completes it: established and on the accept queue. */
        h_inject_tcp(&p, p.a, H_ADDR_B, 1001, 80, 5001, cookie + 1, TH_ACK, 1000, NULL, 0, 0);
        CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_COOKIE_OK), 1);
        CU_ASSERT_EQUAL(l->nb_accept, 1);
        CU_ASSERT_EQUAL(fp_stack_tcbs_avail(p.a), tcbs - 1);
    } else {
        CU_FAIL("no SYN-ACK captured");
    }
    fp_stack_destroy(p.a);
}

/* ---- SYN flood while a transfer runs ---- */

static void
test_syn_flood(void)
{
    struct fp_memlink_conf lc = {.seed = 13, .delay_us = 500, .rate_bps = 1000000000ull};
    struct fp_stack_conf   sc = {.nb_pkts = 8192, .nb_tcbs = 256, .gateway = H_ADDR_B};
    struct h_pair          p;
    struct app             a;
    uint64_t               end;
    uint32_t               spoof = 0xc0a80000u;
    int                    i;

    memset(&a, 0, sizeof(a));
    a.total = (64u << 20) / h_scale();
    a.srv_reads = true;
    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &lc, &sc), 0);
    CU_ASSERT_EQUAL_FATAL(fp_tcp_listen(p.a, 80, 16, 32, &lsn_cb, &a, &a.l), 0);
    CU_ASSERT_EQUAL_FATAL(fp_tcp_connect(p.b, H_ADDR_A, 80, 0, &cli_cb, &a, &a.cli), 0);
    h_pair_run_for(&p, 50000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.srv);
    /*
     * 50 spoofed SYNs every 50 us (1 million per second) from addresses behind the gateway, until
     * the transfer ends. Time is advanced by hand: the flood always leaves work to do.
     */
    end = p.now_us + 600000000ull;
    while (!a.eof && p.now_us < end) {
        for (i = 0; i < 50; i++) {
            spoof++;
            h_inject_tcp(&p, p.a, spoof, (uint16_t)(1024 + (spoof & 0x7fff)), 80, spoof * 7919u, 0,
                         TH_SYN, 65535, NULL, 0, 0);
        }
        h_pair_step(&p);
        h_pair_step(&p);
        p.now_us += 50;
    }
    CU_ASSERT_TRUE(a.eof);
    CU_ASSERT_EQUAL(a.received, a.total);
    CU_ASSERT_EQUAL(a.bad, 0);
    CU_ASSERT_TRUE(a.l->nb_syn <= 32);
    CU_ASSERT_TRUE(h_ctr(p.a, FP_STK_TCP_COOKIE_SENT) > 1000);
    fprintf(stderr, "\n  syn flood: %u spoofed SYNs, %llu cookies, transfer %llu bytes intact\n",
            spoof - 0xc0a80000u, (unsigned long long)h_ctr(p.a, FP_STK_TCP_COOKIE_SENT),
            (unsigned long long)a.received);
    /* The embryonic connections time out and every TCB comes back. */
    CU_ASSERT_TRUE(h_pair_run(&p, pools_idle, &p, 200000000ull));
    h_pair_destroy(&p);
}

/* ---- Nagle ---- */

static void
test_nagle(void)
{
    struct fp_memlink_conf lc = {.seed = 9, .delay_us = 1000};
    struct fp_stack_conf   sc = {.nagle = true};
    struct h_pair          p;
    struct app             a;
    uint64_t               tx0;
    int                    i;

    start(&p, &a, &lc, &sc, 0, true);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.cli);
    tx0 = h_ctr(p.b, FP_STK_TCP_TX);
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(fp_tcp_send(a.cli, "0123456789", 10), 10);
    }
    /* One small segment in flight; the other nine writes wait for its ACK and go as one. */
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_TX) - tx0, 1);
    h_pair_run_for(&p, 100000);
    CU_ASSERT_EQUAL(a.received, 100);
    CU_ASSERT_TRUE(h_ctr(p.b, FP_STK_TCP_TX) - tx0 <= 3);
    h_pair_destroy(&p);
}

/* ---- delayed ACK ---- */

static void
test_delayed_ack(void)
{
    struct fp_memlink_conf lc = {.seed = 9, .delay_us = 100};
    struct h_pair          p;
    struct app             a;
    uint64_t               tx0;

    start(&p, &a, &lc, NULL, 0, true);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.cli);
    /* Warm-up: the first read opens the window from the SYN's 64 KiB to 256 KiB (an update). */
    CU_ASSERT_EQUAL(fp_tcp_send(a.cli, "0123456789", 10), 10);
    h_pair_run_for(&p, 100000);
    /* One segment: the receiver holds its ACK for delack_ms (40 ms). */
    tx0 = h_ctr(p.a, FP_STK_TCP_TX);
    CU_ASSERT_EQUAL(fp_tcp_send(a.cli, "0123456789", 10), 10);
    h_pair_run_for(&p, 20000);
    CU_ASSERT_EQUAL(a.received, 20);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_TX), tx0);
    h_pair_run_for(&p, 30000);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_TX), tx0 + 1);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_DELACK), 1);
    /* Two segments back to back: the second is acknowledged at once (RFC 5681 §4.2). */
    tx0 = h_ctr(p.a, FP_STK_TCP_TX);
    CU_ASSERT_EQUAL(fp_tcp_send(a.cli, "0123456789", 10), 10);
    CU_ASSERT_EQUAL(fp_tcp_send(a.cli, "0123456789", 10), 10);
    h_pair_run_for(&p, 1000);
    CU_ASSERT_EQUAL(a.received, 40);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_TX), tx0 + 1);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_DELACK), 1);
    h_pair_destroy(&p);
}

/* ---- churn ---- */

struct churn {
    struct h_pair *p;
    uint32_t       target;
    uint32_t       started;
    uint32_t       done;
    uint32_t       failed;
    uint32_t       active;
    uint8_t        buf[512];
};

static void
churn_srv_readable(struct fp_tcb *c, void *user)
{
    struct churn *ch = user;
    ssize_t       n;

    n = fp_tcp_recv(c, ch->buf, sizeof(ch->buf));
    if (n == 100) {
        fp_tcp_send(c, ch->buf, 200); /* response, then the client closes first */
    } else if (n == 0) {
        fp_tcp_close(c);
    }
}

static void
churn_closed(struct fp_tcb *c, void *user, int err)
{
    struct churn *ch = user;

    ch->failed++;
}

static const struct fp_tcp_callbacks churn_srv_cb = {
        .on_readable = churn_srv_readable,
        .on_closed = churn_closed,
};

static void
churn_accept(struct fp_tcp_listener *l, void *user)
{
    struct fp_tcb *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        fp_tcp_set_callbacks(c, &churn_srv_cb, user);
        churn_srv_readable(c, user);
    }
}

static const struct fp_tcp_callbacks churn_lsn_cb = {
        .on_accept = churn_accept,
};

static void
churn_cli_connected(struct fp_tcb *c, void *user)
{
    struct churn *ch = user;

    memset(ch->buf, 'q', 100);
    fp_tcp_send(c, ch->buf, 100);
}

static void churn_start_one(struct churn *ch);

static void
churn_cli_readable(struct fp_tcb *c, void *user)
{
    struct churn *ch = user;
    ssize_t       n = fp_tcp_recv(c, ch->buf, sizeof(ch->buf));

    if (n == 200) {
        fp_tcp_close(c);
        ch->done++;
        ch->active--;
        churn_start_one(ch);
    }
}

static void
churn_cli_closed(struct fp_tcb *c, void *user, int err)
{
    struct churn *ch = user;

    ch->failed++;
    ch->active--;
    churn_start_one(ch);
}

static const struct fp_tcp_callbacks churn_cli_cb = {
        .on_connected = churn_cli_connected,
        .on_readable = churn_cli_readable,
        .on_closed = churn_cli_closed,
};

static void
churn_start_one(struct churn *ch)
{
    struct fp_tcb *c;

    if (ch->started >= ch->target) {
        return;
    }
    if (fp_tcp_connect(ch->p->b, H_ADDR_A, 80, 0, &churn_cli_cb, ch, &c) == 0) {
        ch->started++;
        ch->active++;
    } else {
        ch->failed++;
    }
}

static bool
churn_done(void *arg)
{
    struct churn *ch = arg;

    return ch->done + ch->failed >= ch->target;
}

static void
run_churn(const struct fp_memlink_conf *lc, uint32_t target, uint32_t parallel)
{
    struct fp_stack_conf    sc = {.nb_pkts = 4096, .nb_tcbs = 8192, .time_wait_ms = 20};
    struct fp_tcp_listener *l;
    struct h_pair           p;
    struct churn           *ch = calloc(1, sizeof(*ch));
    uint32_t                i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, lc, &sc), 0);
    ch->p = &p;
    ch->target = target;
    CU_ASSERT_EQUAL_FATAL(
            fp_tcp_listen(p.a, 80, 128, FP_TCP_SYN_BACKLOG_DEFAULT, &churn_lsn_cb, ch, &l), 0);
    for (i = 0; i < parallel; i++) {
        churn_start_one(ch);
    }
    CU_ASSERT_TRUE(h_pair_run(&p, churn_done, ch, 3600000000ull));
    CU_ASSERT_EQUAL(ch->done, ch->target);
    CU_ASSERT_EQUAL(ch->failed, 0);
    /* Orphaned FIN_WAIT_2 lasts 60 s at most: give every connection time to end. */
    CU_ASSERT_TRUE(h_pair_run(&p, pools_idle, &p, 120000000ull));
    CU_ASSERT_TRUE(h_pair_pools_idle(&p));
    if (ch->failed != 0 || !h_pair_pools_idle(&p)) {
        h_dump_counters("A", p.a);
        h_dump_counters("B", p.b);
    }
    fprintf(stderr,
            "\n  churn: %u connections (%u failed, loss %u ppm), pools back to initial "
            "level: %s\n",
            ch->done, ch->failed, lc->loss_ppm, h_pair_pools_idle(&p) ? "yes" : "NO");
    h_pair_destroy(&p);
    free(ch);
}

static void
test_churn(void)
{
    struct fp_memlink_conf lc = {.seed = 21, .delay_us = 50};

    run_churn(&lc, 100000 / h_scale(), 32);
}

/* Short connections over a lossy link: handshakes, FINs and TIME_WAIT under loss. */
static void
test_churn_lossy(void)
{
    struct fp_memlink_conf lc = {
            .seed = 23, .delay_us = 200, .loss_ppm = 20000, .dup_ppm = 20000, .reorder_ppm = 20000};

    run_churn(&lc, 5000 / h_scale(), 32);
}

int
main(void)
{
    CU_pSuite s;
    unsigned  failed;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    s = CU_add_suite("tcp_features", NULL, NULL);
    CU_add_test(s, "zero_window_persist", test_zero_window_persist);
    CU_add_test(s, "keepalive", test_keepalive);
    CU_add_test(s, "rfc5961_blind_rst_and_syn", test_rfc5961_blind_rst_and_syn);
    CU_add_test(s, "accept_queue_bound", test_accept_queue_bound);
    CU_add_test(s, "syn_cookie_handshake", test_syn_cookie_handshake);
    CU_add_test(s, "cookie_checks", test_cookie_checks);
    CU_add_test(s, "syn_flood", test_syn_flood);
    CU_add_test(s, "nagle", test_nagle);
    CU_add_test(s, "delayed_ack", test_delayed_ack);
    CU_add_test(s, "churn", test_churn);
    CU_add_test(s, "churn_lossy", test_churn_lossy);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
