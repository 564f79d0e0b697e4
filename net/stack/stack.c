/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Instance life cycle and the main loop: receive a burst, hand each frame to Ethernet input, run
 * due timers, deliver the application events collected meanwhile, release dead connections, and
 * flush the transmit burst. Callbacks run only from fp_tcp_dispatch(), after packet processing,
 * so protocol code never sees the application re-enter it.
 */
#include "net/stack/stack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/stack/arp.h"
#include "net/stack/ipv4.h"
#include "net/stack/link.h"
#include "net/stack/pkt.h"
#include "net/stack/tcp.h"
#include "net/stack/timer.h"

static const char *const ctr_names[FP_STK_CTR_NB] = {
#define FP_STK_CTR_NAME(name, desc) desc,
        FP_STK_COUNTERS(FP_STK_CTR_NAME)
#undef FP_STK_CTR_NAME
};

static void
set_default(uint32_t *v, uint32_t def)
{
    if (*v == 0) {
        *v = def;
    }
}

void
fp_stack_conf_defaults(struct fp_stack_conf *c)
{
    if (c->mtu == 0) {
        c->mtu = 1500;
    }
    set_default(&c->nb_pkts, 4096);
    set_default(&c->nb_tcbs, 1024);
    set_default(&c->arp_entries, 64);
    set_default(&c->arp_wait_max, 8);
    set_default(&c->arp_timeout_ms, 300000);
    set_default(&c->snd_buf, 262144);
    set_default(&c->rcv_buf, 262144);
    set_default(&c->rto_min_ms, 200);
    set_default(&c->rto_max_ms, 60000);
    set_default(&c->rto_init_ms, 1000);
    set_default(&c->max_rexmt, 12);
    set_default(&c->syn_rexmt, 5);
    set_default(&c->time_wait_ms, 2000);
    set_default(&c->delack_ms, 40);
    set_default(&c->keepalive_intvl_ms, 75000);
    set_default(&c->keepalive_probes, 9);
    set_default(&c->challenge_ack_limit, 1000);
}

uint64_t
fp_stack_random(struct fp_stack *st)
{
    uint64_t x = st->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int
fp_stack_create(const struct fp_stack_conf *conf, uint64_t now_us, struct fp_stack **out)
{
    struct fp_stack *st;
    struct timespec  ts;
    int              rc;

    if (conf->addr == 0 || conf->prefix_len > 32 || conf->nb_src_addrs > FP_STK_MAX_SRC_ADDRS) {
        return -EINVAL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return -ENOMEM;
    }
    st->conf = *conf;
    fp_stack_conf_defaults(&st->conf);
    st->now_us = now_us;
    st->netmask = st->conf.prefix_len == 0 ? 0 : ~0u << (32 - st->conf.prefix_len);
    st->rng = st->conf.seed;
    if (st->rng == 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
        st->rng =
                (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec ^ (uintptr_t)st;
    }
    st->rng |= 1;
    st->secret[0] = fp_stack_random(st);
    st->secret[1] = fp_stack_random(st);
    st->next_port = (uint16_t)(32768 + fp_stack_random(st) % 28232);
    rc = fp_pktpool_init(&st->pkts, st->conf.nb_pkts);
    if (rc < 0) {
        goto err_free_st;
    }
    rc = fp_timer_wheel_init(&st->wheel, 4096, 1000, now_us);
    if (rc < 0) {
        goto err_fini_pkts;
    }
    rc = fp_arp_init(st);
    if (rc < 0) {
        goto err_fini_wheel;
    }
    rc = fp_tcp_init(st);
    if (rc < 0) {
        goto err_fini_arp;
    }
    *out = st;
    return 0;

err_fini_arp:
    fp_arp_fini(st);
err_fini_wheel:
    fp_timer_wheel_fini(&st->wheel);
err_fini_pkts:
    fp_pktpool_fini(&st->pkts);
err_free_st:
    free(st);
    return rc;
}

void
fp_stack_shutdown(struct fp_stack *st)
{
    fp_tcp_release_all(st);
    fp_arp_flush(st);
    while (st->nb_tx > 0) {
        fp_pkt_free(st->txq[--st->nb_tx]);
    }
}

void
fp_stack_destroy(struct fp_stack *st)
{
    if (st == NULL) {
        return;
    }
    fp_stack_shutdown(st);
    fp_tcp_fini(st);
    fp_arp_fini(st);
    fp_timer_wheel_fini(&st->wheel);
    fp_pktpool_fini(&st->pkts);
    free(st);
}

void
fp_stack_attach_link(struct fp_stack *st, struct fp_link *link, uint64_t now_us)
{
    static const uint8_t zero[6] = {0};

    st->link = link;
    st->now_us = now_us;
    if (memcmp(st->conf.mac, zero, 6) == 0) {
        memcpy(st->conf.mac, link->mac, 6);
    }
    fp_arp_announce(st);
    fp_stack_tx_flush(st);
}

void
fp_stack_tx(struct fp_stack *st, struct fp_pkt *frame)
{
    if (st->nb_tx == FP_STK_BURST) {
        fp_stack_tx_flush(st);
    }
    st->txq[st->nb_tx++] = frame;
}

void
fp_stack_tx_flush(struct fp_stack *st)
{
    uint16_t sent;
    uint16_t i;

    if (st->nb_tx == 0) {
        return;
    }
    if (st->link == NULL) {
        sent = 0;
    } else {
        sent = st->link->ops->tx_burst(st->link, st->txq, st->nb_tx, st->now_us);
    }
    fp_stack_ctr_add(st, FP_STK_TX_FRAMES, sent);
    for (i = sent; i < st->nb_tx; i++) {
        fp_stack_ctr_inc(st, FP_STK_TX_LINK_FULL);
        fp_pkt_free(st->txq[i]);
    }
    st->nb_tx = 0;
}

static void
finish_round(struct fp_stack *st)
{
    fp_tcp_dispatch(st);
    fp_tcp_reap(st);
    fp_stack_tx_flush(st);
}

void
fp_stack_input(struct fp_stack *st, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    uint16_t i;

    st->now_us = now_us;
    fp_stack_ctr_add(st, FP_STK_RX_FRAMES, n);
    for (i = 0; i < n; i++) {
        fp_eth_input(st, pkts[i]);
    }
    finish_round(st);
}

/*
 * Whether this pass runs the timers. Not while received frames still wait on the link (the
 * last burst was full), for up to FP_STK_TIMER_DEFER_MAX passes in a row: an expired
 * retransmission timer says that no ACK came, which is not known before the frames are read.
 * After the worker lost its core for a while (a loaded machine), its queue holds the ACKs of
 * that time, and running the timers after the first bursts retransmitted, as if lost, segments
 * whose ACKs were still queued; the receivers then count duplicates (Linux's
 * TCPDSACKOldSent) and the senders collapse their windows. The bound keeps timers alive under
 * a flood that never lets the queue drain.
 */
static bool
timers_due(struct fp_stack *st, bool drained)
{
    if (drained || st->timer_defers >= FP_STK_TIMER_DEFER_MAX) {
        st->timer_defers = 0;
        return true;
    }
    st->timer_defers++;
    fp_stack_ctr_inc(st, FP_STK_TIMERS_DEFERRED);
    return false;
}

uint32_t
fp_stack_poll(struct fp_stack *st, uint64_t now_us, uint32_t budget)
{
    struct fp_pkt *pkts[FP_STK_BURST];
    uint32_t       work = 0;
    uint16_t       n = 0;
    uint16_t       i;

    st->now_us = now_us;
    while (st->link != NULL && budget-- > 0) {
        n = st->link->ops->rx_burst(st->link, &st->pkts, pkts, FP_STK_BURST, now_us);
        fp_stack_ctr_add(st, FP_STK_RX_FRAMES, n);
        for (i = 0; i < n; i++) {
            fp_eth_input(st, pkts[i]);
        }
        work += n;
        if (n < FP_STK_BURST) {
            break;
        }
    }
    if (timers_due(st, n < FP_STK_BURST)) {
        work += fp_timer_wheel_advance(&st->wheel, now_us);
    }
    finish_round(st);
    return work;
}

uint64_t
fp_stack_next_timer_us(const struct fp_stack *st)
{
    return fp_timer_wheel_next_us(&st->wheel);
}

void
fp_stack_counters(const struct fp_stack *st, uint64_t out[FP_STK_CTR_NB])
{
    unsigned int i;

    for (i = 0; i < FP_STK_CTR_NB; i++) {
        out[i] = __atomic_load_n(&st->ctr[i], __ATOMIC_RELAXED);
    }
}

const char *
fp_stack_counter_name(unsigned int i)
{
    return i < FP_STK_CTR_NB ? ctr_names[i] : NULL;
}

uint32_t
fp_stack_pkts_avail(const struct fp_stack *st)
{
    return fp_pktpool_avail(&st->pkts);
}

uint32_t
fp_stack_tcbs_avail(const struct fp_stack *st)
{
    return st->tcbs.nb_free;
}

struct fp_pktpool *
fp_stack_pktpool(struct fp_stack *st)
{
    return &st->pkts;
}

struct fp_pkt *
fp_stack_pkt_alloc(struct fp_stack *st)
{
    struct fp_pkt *p = fp_pkt_alloc(&st->pkts);

    if (p == NULL) {
        fp_stack_ctr_inc(st, FP_STK_PKT_POOL_EMPTY);
    }
    return p;
}
