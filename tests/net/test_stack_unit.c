/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the stack's modules: checksums, sequence arithmetic, the timer wheel, TCP option
 * parsing and writing, pools, ARP between two instances, ICMP echo and TCP state transitions.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/stack/arp.h"
#include "net/stack/cksum.h"
#include "net/stack/link.h"
#include "net/stack/pkt.h"
#include "net/stack/seq.h"
#include "net/stack/tcp.h"
#include "net/stack/tcp_cc.h"
#include "net/stack/tcp_opt.h"
#include "net/stack/timer.h"
#include "net/stack/wire.h"
#include "tests/net/harness.h"

/* ---- checksums ---- */

static void
test_cksum_rfc1071_example(void)
{
    /* RFC 1071 §3 example: the sum of these bytes is ddf2, so the checksum is 220d. */
    static const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    uint16_t             c = fp_cksum(b, sizeof(b));
    uint8_t              out[2];

    memcpy(out, &c, 2);
    CU_ASSERT_EQUAL(fp_get16(out), 0x220d);
}

static void
test_cksum_ipv4_header(void)
{
    /* A real IPv4 header (checksum 0xb861), verified to 0 once the checksum is in place. */
    uint8_t  h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                      0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    uint16_t c = fp_cksum(h, 20);

    memcpy(h + 10, &c, 2);
    CU_ASSERT_EQUAL(fp_get16(h + 10), 0xb861);
    CU_ASSERT_EQUAL(fp_cksum(h, 20), 0);
}

static void
test_cksum_odd_length(void)
{
    uint8_t  b[5] = {0x12, 0x34, 0x56, 0x78, 0x9a};
    uint8_t  padded[6] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0x00};
    uint16_t a = fp_cksum(b, 5);
    uint16_t p = fp_cksum(padded, 6);

    CU_ASSERT_EQUAL(a, p);
}

static void
test_cksum_tcp_pseudo(void)
{
    uint8_t  seg[24];
    uint16_t c;

    memset(seg, 0, sizeof(seg));
    fp_put16(seg, 1234);
    fp_put16(seg + 2, 80);
    seg[12] = 0x50;
    seg[20] = 'a';
    c = fp_cksum_tcp(0x0a000001, 0x0a000002, seg, sizeof(seg));
    memcpy(seg + 16, &c, 2);
    CU_ASSERT_EQUAL(fp_cksum_tcp(0x0a000001, 0x0a000002, seg, sizeof(seg)), 0);
    CU_ASSERT_NOT_EQUAL(fp_cksum_tcp(0x0a000001, 0x0a000003, seg, sizeof(seg)), 0);
    seg[21] ^= 1;
    CU_ASSERT_NOT_EQUAL(fp_cksum_tcp(0x0a000001, 0x0a000002, seg, sizeof(seg)), 0);
}

/* RFC 1071 reference: 16-bit big-endian words, end-around carry. */
static uint16_t
ref_cksum(const uint8_t *b, size_t len)
{
    uint64_t sum = 0;
    size_t   i;

    for (i = 0; i + 1 < len; i += 2) {
        sum += (uint64_t)(b[i] << 8 | b[i + 1]);
    }
    if (len & 1) {
        sum += (uint64_t)(b[len - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

static void
test_cksum_matches_reference(void)
{
    static uint8_t buf[2100];
    uint64_t       x = 88172645463325252ULL;
    uint16_t       c;
    uint8_t        out[2];
    size_t         len;
    size_t         off;
    int            bad = 0;

    for (len = 0; len < sizeof(buf); len++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[len] = (uint8_t)x;
    }
    memset(buf + 1000, 0xff, 200); /* long runs of 0xffff stress the carries */
    for (off = 0; off < 8; off++) {
        for (len = 0; len + off <= 2048; len += (len < 80 ? 1 : 37)) {
            c = fp_cksum(buf + off, len);
            memcpy(out, &c, 2);
            if (fp_get16(out) != ref_cksum(buf + off, len)) {
                bad++;
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Buffers past the vector loop's chunk (512 KiB), all 0xff bytes (every lane at its maximum)
 * and random ones, at every alignment: the same sum as the 16-bit reference. */
static void
test_cksum_long_buffers(void)
{
    static uint8_t buf[(3u << 19) + 64];
    static size_t  lens[] = {64, 65, 127, 1448, 65536, 1u << 19, (1u << 19) + 63, 3u << 19};
    uint64_t       x = 88172645463325252ULL;
    uint16_t       c;
    uint8_t        out[2];
    size_t         i;
    size_t         off;
    int            fill;
    int            bad = 0;

    for (fill = 0; fill < 2; fill++) {
        for (i = 0; i < sizeof(buf); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = fill == 0 ? 0xff : (uint8_t)x;
        }
        for (off = 0; off < 4; off++) {
            for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                c = fp_cksum(buf + off, lens[i]);
                memcpy(out, &c, 2);
                if (fp_get16(out) != ref_cksum(buf + off, lens[i])) {
                    bad++;
                }
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- sequence arithmetic ---- */

static void
test_seq_wraparound(void)
{
    CU_ASSERT_TRUE(fp_seq_lt(1, 2));
    CU_ASSERT_FALSE(fp_seq_lt(2, 1));
    CU_ASSERT_TRUE(fp_seq_lt(0xfffffff0u, 0x10));
    CU_ASSERT_TRUE(fp_seq_gt(0x10, 0xfffffff0u));
    CU_ASSERT_TRUE(fp_seq_leq(5, 5));
    CU_ASSERT_TRUE(fp_seq_geq(5, 5));
    CU_ASSERT_FALSE(fp_seq_lt(5, 5));
    CU_ASSERT_TRUE(fp_seq_in(0xffffffffu, 0xfffffff0u, 0x10));
    CU_ASSERT_TRUE(fp_seq_in(0x0f, 0xfffffff0u, 0x10));
    CU_ASSERT_FALSE(fp_seq_in(0x10, 0xfffffff0u, 0x10));
    CU_ASSERT_EQUAL(fp_seq_max(0xfffffff0u, 0x10), 0x10);
    CU_ASSERT_EQUAL(fp_seq_min(0xfffffff0u, 0x10), 0xfffffff0u);
}

/* ---- timer wheel ---- */

struct fired {
    int      count;
    uint64_t order[8];
    int      n;
};

static void
on_fire(void *arg)
{
    struct fired *f = arg;

    f->count++;
}

static void
test_timer_fire_and_cancel(void)
{
    struct fp_timer_wheel w;
    struct fp_stk_timer       t1;
    struct fp_stk_timer       t2;
    struct fired          f1 = {0};
    struct fired          f2 = {0};

    CU_ASSERT_EQUAL_FATAL(fp_timer_wheel_init(&w, 64, 1000, 0), 0);
    fp_timer_init(&t1, on_fire, &f1);
    fp_timer_init(&t2, on_fire, &f2);
    fp_timer_arm(&w, &t1, 5000);
    fp_timer_arm(&w, &t2, 7000);
    CU_ASSERT_TRUE(fp_timer_armed(&t1));
    CU_ASSERT_EQUAL(fp_timer_wheel_next_us(&w), 5000);
    CU_ASSERT_EQUAL(fp_timer_wheel_advance(&w, 4999), 0);
    CU_ASSERT_EQUAL(f1.count, 0);
    CU_ASSERT_EQUAL(fp_timer_wheel_advance(&w, 5000), 1);
    CU_ASSERT_EQUAL(f1.count, 1);
    CU_ASSERT_FALSE(fp_timer_armed(&t1));
    fp_timer_cancel(&w, &t2);
    CU_ASSERT_EQUAL(fp_timer_wheel_advance(&w, 10000), 0);
    CU_ASSERT_EQUAL(f2.count, 0);
    CU_ASSERT_EQUAL(fp_timer_wheel_next_us(&w), UINT64_MAX);
    fp_timer_wheel_fini(&w);
}

static void
test_timer_beyond_one_revolution(void)
{
    struct fp_timer_wheel w;
    struct fp_stk_timer       t;
    struct fired          f = {0};

    CU_ASSERT_EQUAL_FATAL(fp_timer_wheel_init(&w, 16, 1000, 0), 0);
    fp_timer_init(&t, on_fire, &f);
    fp_timer_arm(&w, &t, 100000); /* 100 ticks on a 16-slot wheel */
    CU_ASSERT_EQUAL(fp_timer_wheel_next_us(&w), 100000);
    fp_timer_wheel_advance(&w, 20000);
    fp_timer_wheel_advance(&w, 99000);
    CU_ASSERT_EQUAL(f.count, 0);
    fp_timer_wheel_advance(&w, 100000);
    CU_ASSERT_EQUAL(f.count, 1);
    /* A jump of many revolutions still fires a due timer exactly once. */
    fp_timer_arm(&w, &t, 150000);
    fp_timer_wheel_advance(&w, 10000000);
    CU_ASSERT_EQUAL(f.count, 2);
    fp_timer_wheel_fini(&w);
}

struct rearm {
    struct fp_timer_wheel *w;
    struct fp_stk_timer        t;
    int                    count;
};

static void
on_rearm(void *arg)
{
    struct rearm *r = arg;

    if (++r->count < 3) {
        fp_timer_arm(r->w, &r->t, 0); /* "now": must fire on the next tick, not loop */
    }
}

static void
test_timer_rearm_from_callback(void)
{
    struct fp_timer_wheel w;
    struct rearm          r = {.w = &w};

    CU_ASSERT_EQUAL_FATAL(fp_timer_wheel_init(&w, 8, 1000, 0), 0);
    fp_timer_init(&r.t, on_rearm, &r);
    fp_timer_arm(&w, &r.t, 1000);
    fp_timer_wheel_advance(&w, 1000);
    CU_ASSERT_EQUAL(r.count, 1);
    fp_timer_wheel_advance(&w, 2000);
    CU_ASSERT_EQUAL(r.count, 2);
    fp_timer_wheel_advance(&w, 5000);
    CU_ASSERT_EQUAL(r.count, 3);
    CU_ASSERT_FALSE(fp_timer_armed(&r.t));
    fp_timer_wheel_fini(&w);
}

/* ---- TCP options ---- */

static void
test_opt_roundtrip_syn(void)
{
    struct fp_tcp_opts o = {.has_mss = true,
                            .mss = 1460,
                            .has_wscale = true,
                            .wscale = 7,
                            .sack_permitted = true,
                            .has_ts = true,
                            .tsval = 0x01020304,
                            .tsecr = 0xa0b0c0d0};
    struct fp_tcp_opts r;
    uint8_t            buf[40];
    size_t             n = fp_tcp_opt_write(buf, &o, true);

    CU_ASSERT_EQUAL(n, 20);
    CU_ASSERT_EQUAL(n % 4, 0);
    CU_ASSERT_EQUAL(fp_tcp_opt_parse(buf, n, true, &r), 0);
    CU_ASSERT_TRUE(r.has_mss);
    CU_ASSERT_EQUAL(r.mss, 1460);
    CU_ASSERT_TRUE(r.has_wscale);
    CU_ASSERT_EQUAL(r.wscale, 7);
    CU_ASSERT_TRUE(r.sack_permitted);
    CU_ASSERT_TRUE(r.has_ts);
    CU_ASSERT_EQUAL(r.tsval, 0x01020304);
    CU_ASSERT_EQUAL(r.tsecr, 0xa0b0c0d0);
    /* The same bytes on a non-SYN segment: only timestamps count (RFC 7323 §2.2). */
    CU_ASSERT_EQUAL(fp_tcp_opt_parse(buf, n, false, &r), 0);
    CU_ASSERT_FALSE(r.has_mss);
    CU_ASSERT_FALSE(r.has_wscale);
    CU_ASSERT_TRUE(r.has_ts);
}

static void
test_opt_sack_blocks(void)
{
    struct fp_tcp_opts o = {.has_ts = true, .nsack = 4};
    struct fp_tcp_opts r;
    uint8_t            buf[40];
    size_t             n;
    int                i;

    for (i = 0; i < 4; i++) {
        o.sack[i].start = 1000u * (uint32_t)i;
        o.sack[i].end = 1000u * (uint32_t)i + 500;
    }
    n = fp_tcp_opt_write(buf, &o, false);
    CU_ASSERT_TRUE(n <= 40);
    CU_ASSERT_EQUAL(fp_tcp_opt_parse(buf, n, false, &r), 0);
    CU_ASSERT_EQUAL(r.nsack, 3); /* with timestamps only 3 blocks fit in 40 bytes */
    CU_ASSERT_EQUAL(r.sack[2].start, 2000);
    CU_ASSERT_EQUAL(r.sack[2].end, 2500);
}

static void
test_opt_malformed(void)
{
    struct fp_tcp_opts r;
    uint8_t            zero_len[] = {2, 0, 1, 1};
    uint8_t            overrun[] = {8, 10, 0, 0};
    uint8_t            bad_mss[] = {2, 3, 5, 1};
    uint8_t            truncated[] = {1, 1, 1, 3};
    uint8_t            unknown[] = {99, 4, 0, 0, 2, 4, 0x05, 0xb4};
    uint8_t            big_ws[] = {3, 3, 20, 0};

    CU_ASSERT_EQUAL(fp_tcp_opt_parse(zero_len, 4, true, &r), -EINVAL);
    CU_ASSERT_EQUAL(fp_tcp_opt_parse(overrun, 4, true, &r), -EINVAL);
    CU_ASSERT_EQUAL(fp_tcp_opt_parse(bad_mss, 4, true, &r), -EINVAL);
    CU_ASSERT_EQUAL(fp_tcp_opt_parse(truncated, 4, true, &r), -EINVAL);
    CU_ASSERT_EQUAL(fp_tcp_opt_parse(unknown, 8, true, &r), 0);
    CU_ASSERT_EQUAL(r.mss, 1460);
    CU_ASSERT_EQUAL(fp_tcp_opt_parse(big_ws, 4, true, &r), 0);
    CU_ASSERT_EQUAL(r.wscale, 14); /* RFC 7323 §2.3 */
}

/* ---- pools ---- */

static void
test_pool_exhaustion(void)
{
    struct fp_pktpool pp;
    struct fp_pkt    *a;
    struct fp_pkt    *b;

    CU_ASSERT_EQUAL_FATAL(fp_pktpool_init(&pp, 2), 0);
    a = fp_pkt_alloc(&pp);
    b = fp_pkt_alloc(&pp);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT_PTR_NULL(fp_pkt_alloc(&pp));
    CU_ASSERT_EQUAL(fp_pktpool_avail(&pp), 0);
    a->next = b;
    fp_pkt_free_chain(a);
    CU_ASSERT_EQUAL(fp_pktpool_avail(&pp), 2);
    fp_pktpool_fini(&pp);
}

struct ext_log {
    int   calls;
    void *last;
};

static void
ext_free_cb(void *ctx, void *ext)
{
    struct ext_log *l = ctx;

    l->calls++;
    l->last = ext;
}

static void
test_pool_external_buffer(void)
{
    struct fp_pktpool pp;
    struct ext_log    log = {0};
    struct fp_pkt    *p;
    uint8_t           mbuf_data[256];

    CU_ASSERT_EQUAL_FATAL(fp_pktpool_init(&pp, 1), 0);
    pp.ext_free = ext_free_cb;
    pp.ext_ctx = &log;
    /* A zero-copy link points data into its own buffer and keeps the reference in ext. */
    p = fp_pkt_alloc(&pp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p->ext = mbuf_data;
    p->data = mbuf_data + 64;
    p->len = 100;
    fp_pkt_free(p);
    CU_ASSERT_EQUAL(log.calls, 1);
    CU_ASSERT_PTR_EQUAL(log.last, mbuf_data);
    /* The descriptor is back and clean: the next user gets its own buffer. */
    p = fp_pkt_alloc(&pp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_PTR_NULL(p->ext);
    CU_ASSERT_PTR_EQUAL(p->data, p->buf + FP_PKT_HEADROOM);
    fp_pkt_free(p);
    CU_ASSERT_EQUAL(log.calls, 1);
    fp_pktpool_fini(&pp);
}

/* ---- congestion control ---- */

static void
cc_setup(struct fp_stack *st, struct fp_tcb *tp, enum fp_tcp_cc_algo algo)
{
    memset(st, 0, sizeof(*st));
    memset(tp, 0, sizeof(*tp));
    st->now_us = 1000000;
    tp->st = st;
    tp->t_maxseg = 1000;
    tp->t_srtt_us = 10000;
    tp->cc = fp_tcp_cc_get(algo);
    tp->cc->init(tp);
}

/* One RTT of ACKs for a full window, one segment per ACK. */
static void
cc_rtt(struct fp_tcb *tp)
{
    uint32_t w = tp->snd_cwnd;
    uint32_t k;

    tp->snd_una = 0;
    tp->snd_max = w;
    for (k = 0; k < w / tp->t_maxseg; k++) {
        tp->cc->on_ack(tp, tp->t_maxseg);
    }
    tp->st->now_us += tp->t_srtt_us;
}

static void
test_cc_newreno_and_cubic(void)
{
    struct fp_stack st;
    struct fp_tcb   tp;
    uint32_t        w;
    int             i;

    /* NewReno: IW 10 (RFC 6928), slow start doubles, loss halves, RTO to one segment. */
    cc_setup(&st, &tp, FP_TCP_CC_NEWRENO);
    CU_ASSERT_STRING_EQUAL(tp.cc->name, "newreno");
    CU_ASSERT_EQUAL(tp.snd_cwnd, 10000);
    cc_rtt(&tp);
    CU_ASSERT_EQUAL(tp.snd_cwnd, 20000);
    tp.snd_max = 20000;
    tp.cc->on_loss(&tp);
    CU_ASSERT_EQUAL(tp.snd_ssthresh, 10000);
    tp.snd_cwnd = tp.snd_ssthresh;
    cc_rtt(&tp); /* congestion avoidance: about one segment per RTT */
    CU_ASSERT_TRUE(tp.snd_cwnd >= 10900 && tp.snd_cwnd <= 11000);
    tp.cc->on_timeout(&tp);
    CU_ASSERT_EQUAL(tp.snd_cwnd, 1000);

    /* CUBIC: beta 0.7 (RFC 9438 §4.6), and growth back past W_max (concave, then convex). */
    cc_setup(&st, &tp, FP_TCP_CC_CUBIC);
    CU_ASSERT_STRING_EQUAL(tp.cc->name, "cubic");
    tp.snd_cwnd = 100000;
    tp.snd_max = 100000;
    tp.cc->on_loss(&tp);
    CU_ASSERT_EQUAL(tp.snd_ssthresh, 70000);
    CU_ASSERT_EQUAL(tp.cc_wmax, 100000);
    tp.snd_cwnd = tp.snd_ssthresh;
    w = tp.snd_cwnd;
    for (i = 0; i < 50; i++) {
        cc_rtt(&tp);
        CU_ASSERT_TRUE(tp.snd_cwnd >= w);                /* never shrinks without a loss */
        CU_ASSERT_TRUE(tp.snd_cwnd <= w + w / 2 + 1000); /* at most 1.5x per RTT */
        w = tp.snd_cwnd;
    }
    CU_ASSERT_TRUE(tp.snd_cwnd > 70000);
    for (i = 0; i < 1000 && tp.snd_cwnd < 100000; i++) {
        cc_rtt(&tp);
    }
    CU_ASSERT_TRUE(tp.snd_cwnd >= 100000);
    tp.cc->on_timeout(&tp);
    CU_ASSERT_EQUAL(tp.snd_cwnd, 1000);
}

/* ---- instances over the in-memory link ---- */

static void
test_arp_resolution(void)
{
    struct fp_memlink_conf lc = {.seed = 1};
    struct h_pair          p;
    uint8_t                mac[6];

    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &lc, NULL), 0);
    /* Gratuitous ARP announcements are not for the other side's address: nothing is learnt. */
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(fp_arp_lookup(p.a, H_ADDR_B, mac), -ENOENT);
    h_pair_destroy(&p);
}

struct conn_state {
    struct fp_tcb *srv;
    struct fp_tcb *cli;
    int            connected;
    int            closed_err;
    int            closed;
    int            readable;
};

static void
st_connected(struct fp_tcb *c, void *user)
{
    struct conn_state *s = user;

    s->connected++;
}

static void
st_closed(struct fp_tcb *c, void *user, int err)
{
    struct conn_state *s = user;

    s->closed++;
    s->closed_err = err;
    if (c == s->cli) {
        s->cli = NULL;
    }
    if (c == s->srv) {
        s->srv = NULL;
    }
}

static void
st_readable(struct fp_tcb *c, void *user)
{
    struct conn_state *s = user;

    s->readable++;
}

static const struct fp_tcp_callbacks st_cb = {
        .on_connected = st_connected,
        .on_readable = st_readable,
        .on_closed = st_closed,
};

static void
st_accept(struct fp_tcp_listener *l, void *user)
{
    struct conn_state *s = user;

    s->srv = fp_tcp_accept(l);
}

static const struct fp_tcp_callbacks st_lcb = {
        .on_accept = st_accept,
};

static void
noop_accept(struct fp_tcp_listener *l, void *user)
{
    (void)l;
    (void)user;
}

static const struct fp_tcp_callbacks noop_lcb = {
        .on_accept = noop_accept,
};

static void
setup_conn_conf(struct h_pair *p, struct conn_state *s, const struct fp_stack_conf *sc)
{
    struct fp_tcp_listener *l;

    memset(s, 0, sizeof(*s));
    CU_ASSERT_EQUAL_FATAL(
            h_pair_create(p, &(struct fp_memlink_conf){.seed = 3, .delay_us = 50}, sc), 0);
    CU_ASSERT_EQUAL(fp_tcp_listen(p->a, 80, 4, FP_TCP_SYN_BACKLOG_DEFAULT, &st_lcb, s, &l), 0);
    CU_ASSERT_EQUAL(fp_tcp_listen(p->a, 80, 4, FP_TCP_SYN_BACKLOG_DEFAULT, &st_lcb, s, &l),
                    -EADDRINUSE);
    CU_ASSERT_EQUAL(fp_tcp_connect(p->b, H_ADDR_A, 80, 40000, &st_cb, s, &s->cli), 0);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s->cli), FP_TCP_SYN_SENT);
    h_pair_run_for(p, 10000);
    CU_ASSERT_EQUAL(s->connected, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->srv);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s->cli), FP_TCP_ESTABLISHED);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s->srv), FP_TCP_ESTABLISHED);
    fp_tcp_set_callbacks(s->srv, &st_cb, s);
}

static void
setup_conn(struct h_pair *p, struct conn_state *s)
{
    setup_conn_conf(p, s, NULL);
}

static void
test_tcp_handshake_and_close(void)
{
    struct h_pair     p;
    struct conn_state s;
    char              buf[16];

    setup_conn(&p, &s);
    CU_ASSERT_EQUAL(fp_tcp_send(s.cli, "hello", 5), 5);
    h_pair_run_for(&p, 100000);
    CU_ASSERT_TRUE(s.readable > 0);
    CU_ASSERT_EQUAL(fp_tcp_recv(s.srv, buf, sizeof(buf)), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "hello", 5), 0);
    CU_ASSERT_EQUAL(fp_tcp_recv(s.srv, buf, sizeof(buf)), -EAGAIN);
    /* Half-close from the client: the server sees EOF, can still send. */
    CU_ASSERT_EQUAL(fp_tcp_shutdown(s.cli), 0);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s.cli), FP_TCP_FIN_WAIT_1);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s.cli), FP_TCP_FIN_WAIT_2);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s.srv), FP_TCP_CLOSE_WAIT);
    CU_ASSERT_EQUAL(fp_tcp_recv(s.srv, buf, sizeof(buf)), 0);
    CU_ASSERT_EQUAL(fp_tcp_send(s.cli, "x", 1), -EPIPE);
    CU_ASSERT_EQUAL(fp_tcp_send(s.srv, "world", 5), 5);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(fp_tcp_recv(s.cli, buf, sizeof(buf)), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "world", 5), 0);
    fp_tcp_close(s.srv);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s.srv), FP_TCP_LAST_ACK);
    s.srv = NULL;
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s.cli), FP_TCP_TIME_WAIT);
    CU_ASSERT_EQUAL(fp_tcp_recv(s.cli, buf, sizeof(buf)), 0);
    fp_tcp_close(s.cli);
    s.cli = NULL;
    /* TIME_WAIT (2 s by default) ends and every buffer and TCB is back. */
    h_pair_run_for(&p, 3000000);
    CU_ASSERT_TRUE(h_pair_pools_idle(&p));
    h_pair_destroy(&p);
}

static void
test_tcp_simultaneous_close(void)
{
    struct h_pair     p;
    struct conn_state s;

    struct fp_tcb *a;
    struct fp_tcb *b;

    setup_conn(&p, &s);
    a = s.cli;
    b = s.srv;
    fp_tcp_close(a);
    fp_tcp_close(b);
    s.cli = NULL;
    s.srv = NULL;
    /* The handles are released but the TCBs live on; their states are read for the test only. */
    CU_ASSERT_EQUAL(fp_tcp_get_state(a), FP_TCP_FIN_WAIT_1);
    CU_ASSERT_EQUAL(fp_tcp_get_state(b), FP_TCP_FIN_WAIT_1);
    h_pair_run_for(&p, 75); /* the FINs crossed (50 us), their ACKs have not arrived */
    CU_ASSERT_EQUAL(fp_tcp_get_state(a), FP_TCP_CLOSING);
    CU_ASSERT_EQUAL(fp_tcp_get_state(b), FP_TCP_CLOSING);
    h_pair_run_for(&p, 100);
    CU_ASSERT_EQUAL(fp_tcp_get_state(a), FP_TCP_TIME_WAIT);
    CU_ASSERT_EQUAL(fp_tcp_get_state(b), FP_TCP_TIME_WAIT);
    h_pair_run_for(&p, 3000000);
    CU_ASSERT_TRUE(h_pair_pools_idle(&p));
    h_pair_destroy(&p);
}

static void
test_tcp_reset(void)
{
    struct h_pair     p;
    struct conn_state s;

    setup_conn(&p, &s);
    fp_tcp_abort(s.cli);
    s.cli = NULL;
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(s.closed, 1);
    CU_ASSERT_EQUAL(s.closed_err, -ECONNRESET);
    CU_ASSERT_PTR_NULL(s.srv);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_TRUE(h_pair_pools_idle(&p));
    h_pair_destroy(&p);
}

static void
test_tcp_unlisten(void)
{
    struct h_pair           p;
    struct conn_state       s;
    struct fp_tcp_listener *l;

    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &(struct fp_memlink_conf){.seed = 3}, NULL), 0);
    CU_ASSERT_EQUAL(fp_tcp_listen(p.a, 90, 4, FP_TCP_SYN_BACKLOG_DEFAULT, &noop_lcb, &s, &l), 0);
    CU_ASSERT_EQUAL(fp_tcp_connect(p.b, H_ADDR_A, 90, 0, &st_cb, &s, &s.cli), 0);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(s.connected, 1);
    CU_ASSERT_EQUAL(l->nb_accept, 1);
    /* Unlisten resets what was never accepted, and the port refuses from then on. */
    fp_tcp_unlisten(l);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(s.closed, 1);
    CU_ASSERT_EQUAL(s.closed_err, -ECONNRESET);
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(fp_tcp_connect(p.b, H_ADDR_A, 90, 0, &st_cb, &s, &s.cli), 0);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(s.closed_err, -ECONNREFUSED);
    /* The port can be listened on again. */
    CU_ASSERT_EQUAL(fp_tcp_listen(p.a, 90, 4, FP_TCP_SYN_BACKLOG_DEFAULT, &noop_lcb, &s, &l), 0);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_TRUE(h_pair_pools_idle(&p));
    h_pair_destroy(&p);
}

static void
test_tcp_refused(void)
{
    struct h_pair     p;
    struct conn_state s;
    uint64_t          c[FP_STK_CTR_NB];

    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &(struct fp_memlink_conf){.seed = 3}, NULL), 0);
    CU_ASSERT_EQUAL(fp_tcp_connect(p.b, H_ADDR_A, 81, 0, &st_cb, &s, &s.cli), 0);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(s.closed, 1);
    CU_ASSERT_EQUAL(s.closed_err, -ECONNREFUSED);
    fp_stack_counters(p.a, c);
    CU_ASSERT_EQUAL(c[FP_STK_TCP_NO_CONN], 1);
    CU_ASSERT_EQUAL(c[FP_STK_TCP_RST_TX], 1);
    h_pair_destroy(&p);
}

static void
test_tcp_simultaneous_open(void)
{
    struct h_pair     p;
    struct conn_state s1;
    struct conn_state s2;

    memset(&s1, 0, sizeof(s1));
    memset(&s2, 0, sizeof(s2));
    CU_ASSERT_EQUAL_FATAL(
            h_pair_create(&p, &(struct fp_memlink_conf){.seed = 3, .delay_us = 500}, NULL), 0);
    /* Resolve ARP first so that both SYNs cross on the wire. */
    CU_ASSERT_EQUAL(fp_tcp_connect(p.a, H_ADDR_B, 9, 0, &st_cb, &s1, &s1.cli), 0);
    h_pair_run_for(&p, 20000);
    memset(&s1, 0, sizeof(s1));
    memset(&s2, 0, sizeof(s2));
    CU_ASSERT_EQUAL(fp_tcp_connect(p.a, H_ADDR_B, 7000, 7001, &st_cb, &s1, &s1.cli), 0);
    CU_ASSERT_EQUAL(fp_tcp_connect(p.b, H_ADDR_A, 7001, 7000, &st_cb, &s2, &s2.cli), 0);
    h_pair_run_for(&p, 100000);
    CU_ASSERT_EQUAL(s1.connected, 1);
    CU_ASSERT_EQUAL(s2.connected, 1);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s1.cli), FP_TCP_ESTABLISHED);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s2.cli), FP_TCP_ESTABLISHED);
    fp_tcp_close(s1.cli);
    fp_tcp_close(s2.cli);
    h_pair_run_for(&p, 3000000);
    CU_ASSERT_TRUE(h_pair_pools_idle(&p));
    h_pair_destroy(&p);
}

static void
test_arp_learn_and_expire(void)
{
    struct fp_stack_conf sc = {.arp_timeout_ms = 500};
    struct h_pair        p;
    struct conn_state    s;
    uint8_t              mac[6];
    uint64_t             req;
    char                 buf[8];

    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &(struct fp_memlink_conf){.seed = 3}, &sc), 0);
    CU_ASSERT_EQUAL(fp_tcp_connect(p.b, H_ADDR_A, 81, 0, &st_cb, &s, &s.cli), 0);
    h_pair_run_for(&p, 10000);
    /* B asked for A; A learnt B from the request, B learnt A from the reply. */
    CU_ASSERT_EQUAL(fp_arp_lookup(p.b, H_ADDR_A, mac), 0);
    CU_ASSERT_EQUAL(mac[5], 1);
    CU_ASSERT_EQUAL(fp_arp_lookup(p.a, H_ADDR_B, mac), 0);
    CU_ASSERT_EQUAL(mac[5], 2);
    h_pair_destroy(&p);

    /* Expiry: after arp_timeout_ms the entry is resolved again before use. */
    setup_conn_conf(&p, &s, &sc);
    req = h_ctr(p.b, FP_STK_ARP_REQ_TX);
    h_pair_run_for(&p, 2000000);
    CU_ASSERT_EQUAL(fp_tcp_send(s.cli, "abc", 3), 3);
    h_pair_run_for(&p, 100000);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_ARP_REQ_TX), req + 1);
    CU_ASSERT_EQUAL(fp_tcp_recv(s.srv, buf, sizeof(buf)), 3);
    h_pair_destroy(&p);
}

static void
test_arp_wait_queue_and_timeout(void)
{
    struct h_pair     p;
    struct conn_state s[10];
    int               i;

    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &(struct fp_memlink_conf){.seed = 3}, NULL), 0);
    /* Gratuitous ARP at start. */
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_ARP_REQ_TX), 1);
    /* Ten SYNs to an address nobody answers: 8 wait (arp_wait_max), 2 are dropped. */
    for (i = 0; i < 10; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        CU_ASSERT_EQUAL(fp_tcp_connect(p.a, 0x0a000077, 80, 0, &st_cb, &s[i], &s[i].cli), 0);
    }
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_ARP_QUEUE_FULL), 2);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_ARP_REQ_TX), 2);
    /* Three requests one second apart, then the waiting frames are dropped and counted. */
    h_pair_run_for(&p, 3500000);
    CU_ASSERT_TRUE(h_ctr(p.a, FP_STK_ARP_TIMEOUT) >= 8);
    CU_ASSERT_EQUAL(fp_arp_lookup(p.a, 0x0a000077, (uint8_t[6]){0}), -ENOENT);
    h_pair_destroy(&p);
}

static void
test_icmp_echo_and_ip_checks(void)
{
    struct h_pair p;
    uint8_t       icmp[16] = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'};
    uint16_t      sum;

    CU_ASSERT_EQUAL_FATAL(h_pair_create(&p, &(struct fp_memlink_conf){.seed = 3}, NULL), 0);
    sum = fp_cksum(icmp, sizeof(icmp));
    memcpy(icmp + 2, &sum, 2);
    h_inject_ip(&p, p.a, H_ADDR_B, 1, 0, icmp, sizeof(icmp));
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_ICMP_ECHO_REPLIED), 1);
    h_pair_run_for(&p, 10000);
    /* B received the reply with a valid checksum (type 0 is "other" for it). */
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_ICMP_OTHER), 1);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_ICMP_BAD), 0);
    /* Bad ICMP checksum, fragments, unknown protocol: dropped and counted. */
    icmp[9] ^= 0xff;
    h_inject_ip(&p, p.a, H_ADDR_B, 1, 0, icmp, sizeof(icmp));
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_ICMP_BAD), 1);
    h_inject_ip(&p, p.a, H_ADDR_B, 1, 0x2000, icmp, sizeof(icmp));
    h_inject_ip(&p, p.a, H_ADDR_B, 1, 0x0010, icmp, sizeof(icmp));
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_IP_FRAG), 2);
    h_inject_ip(&p, p.a, H_ADDR_B, 17, 0, icmp, sizeof(icmp));
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_IP_BAD_PROTO), 1);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_ICMP_ECHO_REPLIED), 1);
    h_pair_destroy(&p);
}

static void
test_time_wait_reuse_and_recycle(void)
{
    struct h_pair     p;
    struct conn_state s;

    /* Active closer in TIME_WAIT: a new connect from the same port reuses it (timestamps). */
    setup_conn(&p, &s);
    fp_tcp_close(s.cli);
    h_pair_run_for(&p, 1000);
    fp_tcp_close(s.srv);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s.cli), FP_TCP_TIME_WAIT);
    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(fp_tcp_connect(p.b, H_ADDR_A, 80, 40000, &st_cb, &s, &s.cli), 0);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_TW_REUSE), 1);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(s.connected, 1);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s.cli), FP_TCP_ESTABLISHED);
    /* Passive closer in TIME_WAIT: a newer SYN for the same 4-tuple recycles it (RFC 6191). */
    fp_tcp_close(s.srv);
    h_pair_run_for(&p, 1000);
    fp_tcp_close(s.cli);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(fp_tcp_get_state(s.srv), FP_TCP_TIME_WAIT);
    memset(&s, 0, sizeof(s));
    h_pair_run_for(&p, 50000); /* newer timestamps */
    CU_ASSERT_EQUAL(fp_tcp_connect(p.b, H_ADDR_A, 80, 40000, &st_cb, &s, &s.cli), 0);
    h_pair_run_for(&p, 10000);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_TW_RECYCLED), 1);
    CU_ASSERT_EQUAL(s.connected, 1);
    h_pair_destroy(&p);
}

static void
test_paws(void)
{
    struct h_pair     p;
    struct conn_state s;
    uint8_t           ts[12] = {1, 1, 8, 10};
    uint32_t          old;

    setup_conn(&p, &s);
    CU_ASSERT_TRUE((s.srv->t_flags & FP_TF_RCVD_TSTMP) != 0);
    old = s.srv->ts_recent - 1000;
    ts[4] = (uint8_t)(old >> 24);
    ts[5] = (uint8_t)(old >> 16);
    ts[6] = (uint8_t)(old >> 8);
    ts[7] = (uint8_t)old;
    h_inject_tcp(&p, p.a, H_ADDR_B, 40000, 80, s.srv->rcv_nxt, s.srv->snd_nxt, 0x18, 1000, ts, 12,
                 10);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_PAWS_DROP), 1);
    CU_ASSERT_EQUAL(s.srv->rcvq_bytes, 0);
    h_pair_destroy(&p);
}

static void
test_tcp_zero_copy_send_recv(void)
{
    struct h_pair     p;
    struct conn_state s;
    struct fp_pktpool foreign;
    struct fp_pkt    *chain = NULL;
    struct fp_pkt    *q;
    struct fp_pkt    *f;
    ssize_t           n;
    int               i;

    setup_conn(&p, &s);
    /* A chain of 300 buffers of 1000 bytes: only what fits the 256 KiB send buffer is taken. */
    for (i = 0; i < 300; i++) {
        q = fp_stack_pkt_alloc(p.b);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        memset(q->data, 'a' + i % 26, 1000);
        q->len = 1000;
        q->next = chain;
        chain = q;
    }
    n = fp_tcp_send_pkts(s.cli, &chain);
    CU_ASSERT_EQUAL(n, 262000);
    CU_ASSERT_PTR_NOT_NULL(chain);
    CU_ASSERT_EQUAL(fp_tcp_send_pkts(s.cli, &chain), -EAGAIN);
    /* A buffer from another pool is refused and stays the caller's. */
    CU_ASSERT_EQUAL_FATAL(fp_pktpool_init(&foreign, 1), 0);
    f = fp_pkt_alloc(&foreign);
    f->len = 10;
    q = f;
    CU_ASSERT_EQUAL(fp_tcp_send_pkts(s.cli, &q), -EINVAL);
    CU_ASSERT_PTR_EQUAL(q, f);
    fp_pkt_free(f);
    fp_pktpool_fini(&foreign);
    /* The receiver takes everything as buffers. */
    h_pair_run_for(&p, 200000);
    n = fp_tcp_send_pkts(s.cli, &chain);
    CU_ASSERT_EQUAL(n, 38000);
    CU_ASSERT_PTR_NULL(chain);
    {
        size_t got = 0;

        for (i = 0; i < 100 && got < 300000; i++) {
            h_pair_run_for(&p, 10000);
            n = fp_tcp_recv_pkts(s.srv, &chain);
            if (n > 0) {
                got += (size_t)n;
                fp_pkt_free_chain(chain);
                chain = NULL;
            }
        }
        CU_ASSERT_EQUAL(got, 300000);
    }
    CU_ASSERT_EQUAL(fp_tcp_recv_pkts(s.srv, &chain), -EAGAIN);
    h_pair_destroy(&p);
}

/*
 * The receiver of a bulk transfer, read a few segments at a time, sends about one ACK per two
 * segments (RFC 5681 §4.2), not, as before, a window update after nearly every read on top
 * (0.83 ACKs per segment here before the change).
 */
static void
test_window_updates_sparse(void)
{
    struct h_pair     p;
    struct conn_state s;
    struct fp_pkt    *chain;
    static uint8_t    buf[200000];
    size_t            sent = 0;
    size_t            got = 0;
    uint64_t          segs0;
    uint64_t          acks0;
    uint64_t          segs;
    uint64_t          acks;
    ssize_t           n;
    int               i;

    setup_conn(&p, &s);
    segs0 = h_ctr(p.b, FP_STK_TCP_TX);
    acks0 = h_ctr(p.a, FP_STK_TCP_TX);
    for (i = 0; i < 100000 && got < sizeof(buf); i++) {
        if (sent < sizeof(buf)) {
            n = fp_tcp_send(s.cli, buf + sent, sizeof(buf) - sent);
            sent += n > 0 ? (size_t)n : 0;
        }
        h_pair_step(&p);
        /* A proxy serving many connections takes a few segments of each per loop pass. */
        n = fp_tcp_recv_pkts_upto(s.srv, &chain, 3, UINT32_MAX);
        if (n > 0) {
            got += (size_t)n;
            fp_pkt_free_chain(chain);
        }
    }
    h_pair_run_for(&p, 100000);
    CU_ASSERT_EQUAL(got, sizeof(buf));
    segs = h_ctr(p.b, FP_STK_TCP_TX) - segs0;
    acks = h_ctr(p.a, FP_STK_TCP_TX) - acks0;
    CU_ASSERT_TRUE(segs >= sizeof(buf) / 1460);
    CU_ASSERT_TRUE(acks * 10 <= segs * 6);
    if (acks * 10 > segs * 6) {
        fprintf(stderr, "%llu segments, %llu ACKs\n", (unsigned long long)segs,
                (unsigned long long)acks);
    }
    h_pair_destroy(&p);
}

/* A link that hands out junk frames (for no MAC of ours) for a while, then the real link's. */
struct junk_link {
    struct fp_link  link;
    struct fp_link *real;
    unsigned        full_bursts; /* bursts of junk still to give */
};

static uint16_t
junk_rx(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
        uint64_t now_us)
{
    struct junk_link *j = l->ctx;
    uint16_t          i;

    if (j->full_bursts == 0) {
        return j->real->ops->rx_burst(j->real, pool, pkts, n, now_us);
    }
    j->full_bursts--;
    for (i = 0; i < n; i++) {
        pkts[i] = fp_pkt_alloc(pool);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pkts[i]);
        memset(pkts[i]->data, 0x02, 60); /* a unicast MAC that is not ours */
        pkts[i]->len = 60;
    }
    return n;
}

static uint16_t
junk_tx(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    struct junk_link *j = l->ctx;

    return j->real->ops->tx_burst(j->real, pkts, n, now_us);
}

static const struct fp_link_ops junk_ops = {.rx_burst = junk_rx, .tx_burst = junk_tx};

/*
 * The ACK that answers a segment waits on the link behind full bursts of other frames when its
 * retransmission timer expires (the worker was away): the timers run only once the frames are
 * read, and nothing is retransmitted.
 */
static void
test_timers_wait_for_queued_frames(void)
{
    struct h_pair     p;
    struct conn_state s;
    struct junk_link  j;
    char              buf[8];
    uint64_t          t;

    setup_conn(&p, &s);
    CU_ASSERT_EQUAL(fp_tcp_send(s.cli, "x", 1), 1);
    fp_stack_poll(p.b, p.now_us, 4); /* b sends the byte; its timer is armed (RTO 1 s, no RTT
                                      * sample yet) */
    /* Only a runs: it receives the byte and acknowledges it; the ACK waits on b's side. */
    for (t = p.now_us + 1500000; p.now_us < t; p.now_us += 1000) {
        fp_stack_poll(p.a, p.now_us, 4);
    }
    CU_ASSERT_EQUAL(fp_tcp_recv(s.srv, buf, sizeof(buf)), 1);
    memset(&j, 0, sizeof(j));
    j.link = *p.b->link;
    j.link.ops = &junk_ops;
    j.link.ctx = &j;
    j.real = p.b->link;
    j.full_bursts = 8; /* two polls of four full bursts */
    p.b->link = &j.link;
    fp_stack_poll(p.b, p.now_us, 4);
    fp_stack_poll(p.b, p.now_us, 4);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TIMERS_DEFERRED), 2);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_REXMT_TIMEOUT), 0);
    fp_stack_poll(p.b, p.now_us, 4); /* the ACK, then the timers */
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_REXMT_TIMEOUT), 0);
    p.b->link = j.real;
    h_pair_run_for(&p, 1000000);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_REXMT_TIMEOUT), 0);
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TCP_REXMT_SEGS), 0);
    /* A flood that never drains puts the timers off for a bounded number of polls only. */
    j.full_bursts = UINT32_MAX;
    p.b->link = &j.link;
    for (t = 0; t < FP_STK_TIMER_DEFER_MAX + 1; t++) {
        fp_stack_poll(p.b, p.now_us, 1);
    }
    CU_ASSERT_EQUAL(h_ctr(p.b, FP_STK_TIMERS_DEFERRED), 2 + FP_STK_TIMER_DEFER_MAX);
    p.b->link = j.real;
    h_pair_destroy(&p);
}

/*
 * A link that does what a NIC with checksum offload does: completes the IPv4 and TCP checksums
 * of frames flagged FP_PKT_F_TX_CKSUM_OFFLOAD (checking first that the stack left the IPv4 one
 * 0 and put the pseudo-header sum in TCP's), and marks received IPv4/TCP frames good or bad.
 */
struct csum_link {
    struct fp_link  link;
    struct fp_link *real;
    uint64_t        offloaded; /* frames it completed */
    uint64_t        not_left;  /* flagged frames whose fields were not as the stack promises */
};

static uint16_t
csum_tx(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    struct csum_link *c = l->ctx;
    uint8_t          *ip;
    uint8_t          *th;
    uint32_t          tlen;
    uint16_t          sum;
    uint16_t          i;

    for (i = 0; i < n; i++) {
        if ((pkts[i]->flags & FP_PKT_F_TX_CKSUM_OFFLOAD) == 0) {
            continue;
        }
        ip = pkts[i]->data + 14;
        th = ip + 20;
        tlen = fp_get16(ip + 2) - 20u;
        memcpy(&sum, th + 16, 2);
        if (fp_get16(ip + 10) != 0 || sum != fp_cksum_tcp_phdr(fp_get32(ip + 12),
                                                             fp_get32(ip + 16), tlen)) {
            c->not_left++;
        }
        sum = fp_cksum(ip, 20);
        memcpy(ip + 10, &sum, 2);
        sum = fp_cksum(th, tlen); /* the field holds the pseudo-header sum */
        memcpy(th + 16, &sum, 2);
        pkts[i]->flags &= ~(uint32_t)FP_PKT_F_TX_CKSUM_OFFLOAD;
        c->offloaded++;
    }
    return c->real->ops->tx_burst(c->real, pkts, n, now_us);
}

static uint16_t
csum_rx(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
        uint64_t now_us)
{
    struct csum_link *c = l->ctx;
    uint8_t          *ip;
    uint16_t          k = c->real->ops->rx_burst(c->real, pool, pkts, n, now_us);
    uint16_t          i;

    for (i = 0; i < k; i++) {
        ip = pkts[i]->data + 14;
        if (pkts[i]->len < 54 || fp_get16(pkts[i]->data + 12) != 0x0800 || ip[9] != 6) {
            continue;
        }
        pkts[i]->flags |= fp_cksum(ip, 20) == 0 ? FP_PKT_F_RX_IP_GOOD : FP_PKT_F_RX_IP_BAD;
        pkts[i]->flags |= fp_cksum_tcp(fp_get32(ip + 12), fp_get32(ip + 16), ip + 20,
                                       fp_get16(ip + 2) - 20u) == 0
                                  ? FP_PKT_F_RX_L4_GOOD
                                  : FP_PKT_F_RX_L4_BAD;
    }
    return k;
}

static const struct fp_link_ops csum_ops = {.rx_burst = csum_rx, .tx_burst = csum_tx};

static void
csum_wrap(struct csum_link *c, struct fp_stack *st)
{
    memset(c, 0, sizeof(*c));
    c->link = *st->link;
    c->link.ops = &csum_ops;
    c->link.ctx = c;
    c->link.caps = FP_LINK_CAP_TX_CKSUM | FP_LINK_CAP_RX_CKSUM;
    c->real = st->link;
    st->link = &c->link;
}

/*
 * With a link that offloads checksums, the stack leaves them to it on transmit and takes its
 * verdict on receive: 300 KB cross byte-exact, every TCP segment was completed by the link,
 * and a segment the link marks bad is dropped and counted as before, though its sum is right.
 */
static void
test_cksum_offload(void)
{
    struct h_pair     p;
    struct conn_state s;
    struct csum_link  ca;
    struct csum_link  cb;
    static uint8_t    out[300000];
    static uint8_t    in[sizeof(out)];
    size_t            sent = 0;
    size_t            got = 0;
    ssize_t           n;
    uint64_t          bad0;
    int               i;

    setup_conn(&p, &s);
    csum_wrap(&ca, p.a);
    csum_wrap(&cb, p.b);
    h_pattern_fill(7, 0, out, sizeof(out));
    for (i = 0; i < 100000 && got < sizeof(out); i++) {
        if (sent < sizeof(out)) {
            n = fp_tcp_send(s.cli, out + sent, sizeof(out) - sent);
            sent += n > 0 ? (size_t)n : 0;
        }
        h_pair_step(&p);
        n = fp_tcp_recv(s.srv, in + got, sizeof(in) - got);
        got += n > 0 ? (size_t)n : 0;
    }
    CU_ASSERT_EQUAL(got, sizeof(out));
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof(out)), 0);
    CU_ASSERT_TRUE(cb.offloaded >= sizeof(out) / 1460);
    CU_ASSERT_TRUE(ca.offloaded > 0);
    CU_ASSERT_EQUAL(ca.not_left + cb.not_left, 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_BAD_CKSUM) + h_ctr(p.b, FP_STK_TCP_BAD_CKSUM), 0);
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_IP_BAD_CKSUM) + h_ctr(p.b, FP_STK_IP_BAD_CKSUM), 0);
    /* The link's verdict wins over a sum that happens to be right. */
    bad0 = h_ctr(p.a, FP_STK_TCP_BAD_CKSUM);
    {
        struct fp_pkt *f = fp_stack_pkt_alloc(p.a);
        uint8_t       *ip;
        uint16_t       sum;

        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        memset(f->data, 0, 54);
        memcpy(f->data, p.a->conf.mac, 6);
        fp_put16(f->data + 12, 0x0800);
        ip = f->data + 14;
        ip[0] = 0x45;
        fp_put16(ip + 2, 40);
        ip[8] = 64;
        ip[9] = 6;
        fp_put32(ip + 12, H_ADDR_B);
        fp_put32(ip + 16, H_ADDR_A);
        sum = fp_cksum(ip, 20);
        memcpy(ip + 10, &sum, 2);
        fp_put16(ip + 20, 1234);
        fp_put16(ip + 22, 80);
        ip[32] = 5 << 4;
        ip[33] = 0x02;
        sum = fp_cksum_tcp(H_ADDR_B, H_ADDR_A, ip + 20, 20);
        memcpy(ip + 36, &sum, 2);
        f->len = 54;
        f->flags = FP_PKT_F_RX_IP_GOOD | FP_PKT_F_RX_L4_BAD;
        fp_stack_input(p.a, &f, 1, p.now_us);
    }
    CU_ASSERT_EQUAL(h_ctr(p.a, FP_STK_TCP_BAD_CKSUM), bad0 + 1);
    p.a->link = ca.real;
    p.b->link = cb.real;
    h_pair_destroy(&p);
}

struct reader {
    const struct fp_stack *st;
    bool                   stop; /* atomic */
    uint64_t               reads;
    bool                   monotonic;
};

static void *
counter_reader(void *arg)
{
    struct reader *r = arg;
    uint64_t       c[FP_STK_CTR_NB];
    uint64_t       last = 0;

    r->monotonic = true;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        fp_stack_counters(r->st, c);
        if (c[FP_STK_TCP_RX] < last) {
            r->monotonic = false;
        }
        last = c[FP_STK_TCP_RX];
        __atomic_store_n(&r->reads, r->reads + 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void
test_counters_from_another_thread(void)
{
    struct h_pair     p;
    struct conn_state s;
    struct reader     r = {0};
    pthread_t         th;
    char              buf[1000];
    int               i;

    setup_conn(&p, &s);
    r.st = p.a;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, counter_reader, &r), 0);
    memset(buf, 'x', sizeof(buf));
    for (i = 0; i < 2000; i++) {
        fp_tcp_send(s.cli, buf, sizeof(buf));
        h_pair_run_for(&p, 200);
        while (fp_tcp_recv(s.srv, buf, sizeof(buf)) > 0) {
        }
    }
    for (i = 0; i < 1000 && __atomic_load_n(&r.reads, __ATOMIC_RELAXED) == 0; i++) {
        usleep(1000); /* make sure the reader ran at least once */
    }
    __atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    CU_ASSERT_TRUE(r.monotonic);
    CU_ASSERT_TRUE(r.reads > 0);
    CU_ASSERT_TRUE(h_ctr(p.a, FP_STK_TCP_RX) > 1000);
    h_pair_destroy(&p);
}

int
main(void)
{
    CU_pSuite s;
    unsigned  failed;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    s = CU_add_suite("stack", NULL, NULL);
    CU_add_test(s, "cksum_rfc1071_example", test_cksum_rfc1071_example);
    CU_add_test(s, "cksum_ipv4_header", test_cksum_ipv4_header);
    CU_add_test(s, "cksum_odd_length", test_cksum_odd_length);
    CU_add_test(s, "cksum_tcp_pseudo", test_cksum_tcp_pseudo);
    CU_add_test(s, "cksum_matches_reference", test_cksum_matches_reference);
    CU_add_test(s, "cksum_long_buffers", test_cksum_long_buffers);
    CU_add_test(s, "seq_wraparound", test_seq_wraparound);
    CU_add_test(s, "timer_fire_and_cancel", test_timer_fire_and_cancel);
    CU_add_test(s, "timer_beyond_one_revolution", test_timer_beyond_one_revolution);
    CU_add_test(s, "timer_rearm_from_callback", test_timer_rearm_from_callback);
    CU_add_test(s, "opt_roundtrip_syn", test_opt_roundtrip_syn);
    CU_add_test(s, "opt_sack_blocks", test_opt_sack_blocks);
    CU_add_test(s, "opt_malformed", test_opt_malformed);
    CU_add_test(s, "pool_exhaustion", test_pool_exhaustion);
    CU_add_test(s, "pool_external_buffer", test_pool_external_buffer);
    CU_add_test(s, "arp_resolution", test_arp_resolution);
    CU_add_test(s, "tcp_handshake_and_close", test_tcp_handshake_and_close);
    CU_add_test(s, "tcp_simultaneous_close", test_tcp_simultaneous_close);
    CU_add_test(s, "tcp_reset", test_tcp_reset);
    CU_add_test(s, "tcp_refused", test_tcp_refused);
    CU_add_test(s, "tcp_unlisten", test_tcp_unlisten);
    CU_add_test(s, "cc_newreno_and_cubic", test_cc_newreno_and_cubic);
    CU_add_test(s, "tcp_simultaneous_open", test_tcp_simultaneous_open);
    CU_add_test(s, "arp_learn_and_expire", test_arp_learn_and_expire);
    CU_add_test(s, "arp_wait_queue_and_timeout", test_arp_wait_queue_and_timeout);
    CU_add_test(s, "icmp_echo_and_ip_checks", test_icmp_echo_and_ip_checks);
    CU_add_test(s, "time_wait_reuse_and_recycle", test_time_wait_reuse_and_recycle);
    CU_add_test(s, "paws", test_paws);
    CU_add_test(s, "tcp_zero_copy_send_recv", test_tcp_zero_copy_send_recv);
    CU_add_test(s, "counters_from_another_thread", test_counters_from_another_thread);
    CU_add_test(s, "window_updates_sparse", test_window_updates_sparse);
    CU_add_test(s, "timers_wait_for_queued_frames", test_timers_wait_for_queued_frames);
    CU_add_test(s, "cksum_offload", test_cksum_offload);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
