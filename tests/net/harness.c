/* SPDX-License-Identifier: BSD-3-Clause */
#include "tests/net/harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/stack/cksum.h"
#include "net/stack/link.h"
#include "net/stack/pkt.h"
#include "net/stack/wire.h"

#if defined(__SANITIZE_ADDRESS__)
#define H_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H_ASAN 1
#endif
#endif
#ifndef H_ASAN
#define H_ASAN 0
#endif

int
h_pair_create(struct h_pair *p, const struct fp_memlink_conf *lc, const struct fp_stack_conf *conf)
{
    struct fp_stack_conf c;
    int                  rc;

    memset(p, 0, sizeof(*p));
    p->now_us = 1000000;
    rc = fp_memlink_create(lc, &p->ml);
    if (rc < 0) {
        return rc;
    }
    if (conf != NULL) {
        c = *conf;
    } else {
        memset(&c, 0, sizeof(c));
    }
    c.prefix_len = 24;
    c.addr = H_ADDR_A;
    if (c.seed == 0) {
        c.seed = 1;
    }
    rc = fp_stack_create(&c, p->now_us, &p->a);
    if (rc < 0) {
        return rc;
    }
    c.addr = H_ADDR_B;
    c.seed++;
    rc = fp_stack_create(&c, p->now_us, &p->b);
    if (rc < 0) {
        return rc;
    }
    p->pkts0_a = fp_stack_pkts_avail(p->a);
    p->pkts0_b = fp_stack_pkts_avail(p->b);
    p->tcbs0_a = fp_stack_tcbs_avail(p->a);
    p->tcbs0_b = fp_stack_tcbs_avail(p->b);
    fp_stack_attach_link(p->a, fp_memlink_port(p->ml, 0), p->now_us);
    fp_stack_attach_link(p->b, fp_memlink_port(p->ml, 1), p->now_us);
    return 0;
}

void
h_pair_destroy(struct h_pair *p)
{
    /* Buffers cross between the instances: return them all before freeing any pool. */
    fp_memlink_destroy(p->ml);
    fp_stack_shutdown(p->a);
    fp_stack_shutdown(p->b);
    fp_stack_destroy(p->a);
    fp_stack_destroy(p->b);
    memset(p, 0, sizeof(*p));
}

uint32_t
h_pair_step(struct h_pair *p)
{
    uint32_t work;
    uint64_t next;
    uint64_t t;

    work = fp_stack_poll(p->a, p->now_us, 4);
    work += fp_stack_poll(p->b, p->now_us, 4);
    if (work != 0) {
        p->now_us++; /* processing is not free: keeps timers running under continuous load */
        return work;
    }
    next = fp_memlink_next_us(p->ml);
    if (next <= p->now_us) {
        return 1; /* frames due but not taken (pool empty): poll again */
    }
    t = fp_stack_next_timer_us(p->a);
    next = t < next ? t : next;
    t = fp_stack_next_timer_us(p->b);
    next = t < next ? t : next;
    p->now_us = next == UINT64_MAX ? p->now_us + 1000 : (next > p->now_us ? next : p->now_us + 1);
    return 0;
}

bool
h_pair_run(struct h_pair *p, bool (*done)(void *arg), void *arg, uint64_t max_us)
{
    uint64_t end = p->now_us + max_us;

    while (!done(arg)) {
        if (p->now_us >= end) {
            return done(arg);
        }
        h_pair_step(p);
    }
    return true;
}

void
h_pair_run_for(struct h_pair *p, uint64_t us)
{
    uint64_t end = p->now_us + us;

    while (p->now_us < end) {
        h_pair_step(p);
    }
}

bool
h_pair_pools_idle(const struct h_pair *p)
{
    return fp_stack_pkts_avail(p->a) == p->pkts0_a && fp_stack_pkts_avail(p->b) == p->pkts0_b &&
           fp_stack_tcbs_avail(p->a) == p->tcbs0_a && fp_stack_tcbs_avail(p->b) == p->tcbs0_b;
}

static uint64_t
mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    x ^= x >> 33;
    return x;
}

uint8_t
h_pattern(uint64_t s, uint64_t i)
{
    return (uint8_t)(mix((i >> 3) ^ (s << 40)) >> ((i & 7) * 8));
}

void
h_pattern_fill(uint64_t s, uint64_t off, uint8_t *buf, uint32_t len)
{
    uint32_t k = 0;
    uint64_t w;

    while (k < len && ((off + k) & 7) != 0) {
        buf[k] = h_pattern(s, off + k);
        k++;
    }
    while (k + 8 <= len) {
        w = mix(((off + k) >> 3) ^ (s << 40));
        memcpy(buf + k, &w, 8); /* little-endian: byte j is bits 8j..8j+7, as h_pattern */
        k += 8;
    }
    while (k < len) {
        buf[k] = h_pattern(s, off + k);
        k++;
    }
}

uint32_t
h_scale(void)
{
    const char *e = getenv("FP_TEST_SCALE");

    if (e != NULL && atoi(e) > 0) {
        return (uint32_t)atoi(e);
    }
    return H_ASAN ? 8 : 1;
}

void
h_dump_counters(const char *name, const struct fp_stack *st)
{
    uint64_t     c[FP_STK_CTR_NB];
    unsigned int i;

    fp_stack_counters(st, c);
    for (i = 0; i < FP_STK_CTR_NB; i++) {
        if (c[i] != 0) {
            fprintf(stderr, "  %s: %-55s %llu\n", name, fp_stack_counter_name(i),
                    (unsigned long long)c[i]);
        }
    }
}

void
h_inject_tcp(struct h_pair *p, struct fp_stack *to, uint32_t saddr, uint16_t sport, uint16_t dport,
             uint32_t seq, uint32_t ack, uint8_t flags, uint16_t wnd, const uint8_t *opt,
             uint32_t optlen, uint32_t plen)
{
    struct fp_pkt *pkt = fp_stack_pkt_alloc(to);
    uint8_t       *f;
    uint8_t       *ip;
    uint8_t       *th;
    uint32_t       tlen = 20 + optlen + plen;
    uint16_t       sum;

    if (pkt == NULL) {
        return;
    }
    f = pkt->data;
    memset(f, 0, 14 + 20 + tlen);
    memcpy(f, to->conf.mac, 6);
    f[6] = 0x02;
    f[11] = 0x99;
    fp_put16(f + 12, 0x0800);
    ip = f + 14;
    ip[0] = 0x45;
    fp_put16(ip + 2, (uint16_t)(20 + tlen));
    ip[8] = 64;
    ip[9] = 6;
    fp_put32(ip + 12, saddr);
    fp_put32(ip + 16, to->conf.addr);
    sum = fp_cksum(ip, 20);
    memcpy(ip + 10, &sum, 2);
    th = ip + 20;
    fp_put16(th, sport);
    fp_put16(th + 2, dport);
    fp_put32(th + 4, seq);
    fp_put32(th + 8, ack);
    th[12] = (uint8_t)(((20 + optlen) / 4) << 4);
    th[13] = flags;
    fp_put16(th + 14, wnd);
    if (optlen > 0) {
        memcpy(th + 20, opt, optlen);
    }
    sum = fp_cksum_tcp(saddr, to->conf.addr, th, tlen);
    memcpy(th + 16, &sum, 2);
    pkt->len = 14 + 20 + tlen;
    fp_stack_input(to, &pkt, 1, p->now_us);
}

uint64_t
h_ctr(const struct fp_stack *st, enum fp_stk_counter c)
{
    uint64_t v[FP_STK_CTR_NB];

    fp_stack_counters(st, v);
    return v[c];
}

void
h_inject_ip(struct h_pair *p, struct fp_stack *to, uint32_t saddr, uint8_t proto, uint16_t frag,
            const uint8_t *l4, uint32_t len)
{
    struct fp_pkt *pkt = fp_stack_pkt_alloc(to);
    uint8_t       *f;
    uint8_t       *ip;
    uint16_t       sum;

    if (pkt == NULL) {
        return;
    }
    f = pkt->data;
    memset(f, 0, 14 + 20);
    memcpy(f, to->conf.mac, 6);
    f[6] = 0x02;
    f[11] = 0x99;
    fp_put16(f + 12, 0x0800);
    ip = f + 14;
    ip[0] = 0x45;
    fp_put16(ip + 2, (uint16_t)(20 + len));
    fp_put16(ip + 6, frag);
    ip[8] = 64;
    ip[9] = proto;
    fp_put32(ip + 12, saddr);
    fp_put32(ip + 16, to->conf.addr);
    sum = fp_cksum(ip, 20);
    memcpy(ip + 10, &sum, 2);
    memcpy(ip + 20, l4, len);
    pkt->len = 14 + 20 + len;
    fp_stack_input(to, &pkt, 1, p->now_us);
}
