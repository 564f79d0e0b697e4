/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The ARP cache is a small array searched linearly with a one-entry hint: a worker talks to a
 * handful of next hops (its gateway and a few local servers), where a hash would cost more than it
 * saves. Stale entries are re-resolved; the frames that arrive meanwhile wait in the entry's
 * bounded queue.
 */
#include "net/stack/arp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/stack/ipv4.h"
#include "net/stack/pkt.h"
#include "net/stack/stack.h"
#include "net/stack/timer.h"
#include "net/stack/wire.h"

#define ARP_HLEN        28
#define ARP_RETRY_US    1000000
#define ARP_MAX_RETRIES 3
#define ARP_TIMER_US    100000

static const uint8_t bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void
send_arp(struct fp_stack *st, uint16_t op, uint32_t spa, const uint8_t *tha, uint32_t tpa,
         const uint8_t *dmac)
{
    struct fp_pkt *p = fp_stack_pkt_alloc(st);
    uint8_t       *a;

    if (p == NULL) {
        return;
    }
    a = p->data;
    fp_put16(a, 1);
    fp_put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    fp_put16(a + 6, op);
    memcpy(a + 8, st->conf.mac, 6);
    fp_put32(a + 14, spa);
    memcpy(a + 18, tha, 6);
    fp_put32(a + 24, tpa);
    p->len = ARP_HLEN;
    fp_stack_ctr_inc(st, op == 1 ? FP_STK_ARP_REQ_TX : FP_STK_ARP_REPLY_TX);
    fp_eth_output(st, p, dmac, 0x0806);
}

static void
send_request(struct fp_stack *st, uint32_t spa, uint32_t ip)
{
    static const uint8_t zero[6] = {0};

    send_arp(st, 1, spa, zero, ip, bcast_mac);
}

void
fp_arp_announce(struct fp_stack *st)
{
    uint32_t i;

    send_request(st, st->conf.addr, st->conf.addr);
    for (i = 0; i < st->conf.nb_src_addrs; i++) {
        send_request(st, st->conf.src_addrs[i], st->conf.src_addrs[i]);
    }
}

static struct fp_arp_entry *
find(const struct fp_stack *st, uint32_t ip)
{
    struct fp_arp_entry *e = &st->arp[st->arp_hint];
    uint32_t             i;

    if (e->state != FP_ARP_FREE && e->ip == ip) {
        return e;
    }
    for (i = 0; i < st->conf.arp_entries; i++) {
        e = &st->arp[i];
        if (e->state != FP_ARP_FREE && e->ip == ip) {
            return e;
        }
    }
    return NULL;
}

static void
drop_waitq(struct fp_stack *st, struct fp_arp_entry *e)
{
    fp_stack_ctr_add(st, FP_STK_ARP_TIMEOUT, e->nb_wait);
    fp_pkt_free_chain(e->waitq);
    e->waitq = NULL;
    e->nb_wait = 0;
}

/* Takes a free entry, else evicts the resolved entry that expires first. */
static struct fp_arp_entry *
alloc_entry(struct fp_stack *st, uint32_t ip)
{
    struct fp_arp_entry *victim = NULL;
    struct fp_arp_entry *e;
    uint32_t             i;

    for (i = 0; i < st->conf.arp_entries; i++) {
        e = &st->arp[i];
        if (e->state == FP_ARP_FREE) {
            victim = e;
            break;
        }
        if (e->state == FP_ARP_RESOLVED && (victim == NULL || e->expire_us < victim->expire_us)) {
            victim = e;
        }
    }
    if (victim == NULL) {
        fp_stack_ctr_inc(st, FP_STK_ARP_CACHE_FULL);
        return NULL;
    }
    memset(victim, 0, sizeof(*victim));
    victim->ip = ip;
    return victim;
}

static void
flush_waitq(struct fp_stack *st, struct fp_arp_entry *e)
{
    struct fp_pkt *p = e->waitq;
    struct fp_pkt *n;

    e->waitq = NULL;
    e->nb_wait = 0;
    for (; p != NULL; p = n) {
        n = p->next;
        p->next = NULL;
        fp_eth_output(st, p, e->mac, 0x0800);
    }
}

static void
learn(struct fp_stack *st, struct fp_arp_entry *e, const uint8_t *mac)
{
    memcpy(e->mac, mac, 6);
    e->state = FP_ARP_RESOLVED;
    e->expire_us = st->now_us + (uint64_t)st->conf.arp_timeout_ms * 1000;
    flush_waitq(st, e);
}

void
fp_arp_input(struct fp_stack *st, struct fp_pkt *pkt)
{
    const uint8_t       *a = pkt->data;
    struct fp_arp_entry *e;
    uint32_t             spa;
    uint32_t             tpa;
    uint16_t             op;

    fp_stack_ctr_inc(st, FP_STK_ARP_RX);
    if (pkt->len < ARP_HLEN || fp_get16(a) != 1 || fp_get16(a + 2) != 0x0800 || a[4] != 6 ||
        a[5] != 4) {
        fp_stack_ctr_inc(st, FP_STK_ARP_BAD);
        goto drop;
    }
    op = fp_get16(a + 6);
    spa = fp_get32(a + 14);
    tpa = fp_get32(a + 24);
    if (spa == 0 || fp_stack_is_local(st, spa) || (a[8] & 1) != 0) {
        fp_stack_ctr_inc(st, FP_STK_ARP_BAD); /* probe, conflict or multicast sender */
        goto drop;
    }
    /* RFC 826 "merge": refresh a known sender even when the packet is not for us. */
    e = find(st, spa);
    if (e != NULL) {
        learn(st, e, a + 8);
    }
    if (!fp_stack_is_local(st, tpa)) {
        fp_stack_ctr_inc(st, FP_STK_ARP_NOT_US);
        goto drop;
    }
    if (e == NULL) {
        e = alloc_entry(st, spa);
        if (e != NULL) {
            learn(st, e, a + 8);
        }
    }
    if (op == 1) {
        send_arp(st, 2, tpa, a + 8, spa, a + 8);
    }
drop:
    fp_pkt_free(pkt);
}

void
fp_arp_output(struct fp_stack *st, struct fp_pkt *pkt, uint32_t nexthop)
{
    struct fp_arp_entry *e = find(st, nexthop);

    if (e != NULL && e->state == FP_ARP_RESOLVED && e->expire_us > st->now_us) {
        st->arp_hint = (uint32_t)(e - st->arp);
        fp_eth_output(st, pkt, e->mac, 0x0800);
        return;
    }
    if (e == NULL) {
        e = alloc_entry(st, nexthop);
        if (e == NULL) {
            fp_pkt_free(pkt);
            return;
        }
    }
    if (e->state != FP_ARP_PENDING) {
        e->state = FP_ARP_PENDING;
        e->retries = 0;
        e->expire_us = st->now_us + ARP_RETRY_US;
        send_request(st, st->conf.addr, nexthop);
    }
    if (e->nb_wait >= st->conf.arp_wait_max) {
        fp_stack_ctr_inc(st, FP_STK_ARP_QUEUE_FULL);
        fp_pkt_free(pkt);
        return;
    }
    pkt->next = e->waitq; /* order within the queue does not matter to TCP */
    e->waitq = pkt;
    e->nb_wait++;
}

static void
arp_timer(void *arg)
{
    struct fp_stack     *st = arg;
    struct fp_arp_entry *e;
    uint32_t             i;

    for (i = 0; i < st->conf.arp_entries; i++) {
        e = &st->arp[i];
        if (e->state != FP_ARP_PENDING || e->expire_us > st->now_us) {
            continue;
        }
        if (++e->retries >= ARP_MAX_RETRIES) {
            drop_waitq(st, e);
            e->state = FP_ARP_FREE;
            continue;
        }
        e->expire_us = st->now_us + ARP_RETRY_US;
        send_request(st, st->conf.addr, e->ip);
    }
    fp_timer_arm(&st->wheel, &st->arp_timer, st->now_us + ARP_TIMER_US);
}

int
fp_arp_init(struct fp_stack *st)
{
    st->arp = calloc(st->conf.arp_entries, sizeof(*st->arp));
    if (st->arp == NULL) {
        return -ENOMEM;
    }
    fp_timer_init(&st->arp_timer, arp_timer, st);
    fp_timer_arm(&st->wheel, &st->arp_timer, st->now_us + ARP_TIMER_US);
    return 0;
}

void
fp_arp_flush(struct fp_stack *st)
{
    uint32_t i;

    for (i = 0; st->arp != NULL && i < st->conf.arp_entries; i++) {
        fp_pkt_free_chain(st->arp[i].waitq);
        st->arp[i].waitq = NULL;
        st->arp[i].nb_wait = 0;
    }
}

void
fp_arp_fini(struct fp_stack *st)
{
    if (st->arp == NULL) {
        return;
    }
    fp_arp_flush(st);
    fp_timer_cancel(&st->wheel, &st->arp_timer);
    free(st->arp);
    st->arp = NULL;
}

int
fp_arp_lookup(const struct fp_stack *st, uint32_t ip, uint8_t mac[6])
{
    const struct fp_arp_entry *e = find(st, ip);

    if (e == NULL || e->state != FP_ARP_RESOLVED) {
        return -ENOENT;
    }
    memcpy(mac, e->mac, 6);
    return 0;
}
