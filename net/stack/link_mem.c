/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Each direction is a FIFO ring of frame slots stamped with their delivery time, plus one
 * "held" slot for a reordered frame: it is delivered once its later time comes, after the frames
 * sent behind it. One held slot gives adjacent and near reordering, which is what real networks
 * mostly show; deeper reordering would need a priority queue.
 *
 * Frames move without a copy: the slot keeps the sender's buffer and the receiver gets it as is
 * (it returns to the sender's pool when freed, as an mbuf returns to its mempool). Only the
 * duplicate of a duplicated frame is copied, into a buffer of the receiver's pool.
 */
#include "net/stack/link_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/stack/pkt.h"

struct slot {
    uint64_t       deliver_us;
    struct fp_pkt *pkt; /* the frame, or NULL when it is a copy in data */
    uint32_t       len;
    uint8_t        data[FP_PKT_BUF_SIZE];
};

struct dir {
    struct slot            *ring;
    uint32_t                size;
    uint32_t                head; /* next to deliver */
    uint32_t                count;
    struct slot             held;
    bool                    held_busy;
    uint64_t                busy_until_us; /* serialisation of the previous frame ends */
    struct fp_memlink_stats stats;
};

struct fp_memlink {
    struct fp_memlink_conf conf;
    uint64_t               rng;
    struct dir             dir[2]; /* dir[s]: frames sent by side s */
    struct fp_link         port[2];
};

static uint64_t
rnd(struct fp_memlink *ml)
{
    uint64_t x = ml->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ml->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static bool
chance(struct fp_memlink *ml, uint32_t ppm)
{
    return ppm != 0 && rnd(ml) % 1000000 < ppm;
}

/*
 * Takes the slot a frame of len bytes sent at now_us goes into, stamped with its delivery time,
 * or returns NULL (counted) when the direction's queue is full.
 */
static struct slot *
take_slot(struct fp_memlink *ml, struct dir *d, uint32_t len, uint64_t now_us)
{
    struct slot *s;
    uint64_t     start = now_us > d->busy_until_us ? now_us : d->busy_until_us;
    uint64_t     at;

    if (d->count == d->size) {
        d->stats.queue_full++;
        return NULL;
    }
    if (ml->conf.rate_bps != 0) {
        start += (uint64_t)len * 8 * 1000000 / ml->conf.rate_bps;
        d->busy_until_us = start;
    }
    at = start + ml->conf.delay_us;
    if (!d->held_busy && chance(ml, ml->conf.reorder_ppm)) {
        s = &d->held;
        d->held_busy = true;
        d->stats.reordered++;
        at += ml->conf.reorder_delay_us != 0 ? ml->conf.reorder_delay_us
                                             : 2ull * ml->conf.delay_us + 100;
    } else {
        s = &d->ring[(d->head + d->count) % d->size];
        d->count++;
    }
    s->deliver_us = at;
    s->len = len;
    return s;
}

/*
 * Corruption models errors the Ethernet FCS would not catch (a faulty router or memory):
 * one bit of an IPv4 packet, after the Ethernet header. ARP has no checksum of its own and
 * relies on the FCS, so it is left alone.
 */
static void
maybe_corrupt(struct fp_memlink *ml, struct dir *d, uint8_t *bytes, uint32_t len)
{
    if (len > FP_STK_ETH_HLEN && bytes[12] == 0x08 && bytes[13] == 0x00 &&
        chance(ml, ml->conf.corrupt_ppm)) {
        bytes[FP_STK_ETH_HLEN + rnd(ml) % (len - FP_STK_ETH_HLEN)] ^=
                (uint8_t)(1u << (rnd(ml) % 8));
        d->stats.corrupted++;
    }
}

/* Queues frame pkt without a copy; the slot owns it until delivery (freed if the queue is full). */
static void
enqueue_pkt(struct fp_memlink *ml, struct dir *d, struct fp_pkt *pkt, uint64_t now_us)
{
    struct slot *s = take_slot(ml, d, pkt->len, now_us);

    if (s == NULL) {
        fp_pkt_free(pkt);
        return;
    }
    s->pkt = pkt;
    maybe_corrupt(ml, d, pkt->data, pkt->len);
}

/* Queues a copy of frame pkt (a duplicate); pkt stays the caller's. */
static void
enqueue_copy(struct fp_memlink *ml, struct dir *d, const struct fp_pkt *pkt, uint64_t now_us)
{
    struct slot *s = take_slot(ml, d, pkt->len, now_us);

    if (s == NULL) {
        return;
    }
    s->pkt = NULL;
    memcpy(s->data, pkt->data, pkt->len);
    maybe_corrupt(ml, d, s->data, pkt->len);
}

static uint16_t
mem_tx_burst(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    struct fp_memlink *ml = l->ctx;
    struct dir        *d = &ml->dir[l == &ml->port[0] ? 0 : 1];
    uint16_t           i;

    for (i = 0; i < n; i++) {
        d->stats.sent++;
        if (chance(ml, ml->conf.loss_ppm)) {
            d->stats.lost++;
            fp_pkt_free(pkts[i]);
            continue;
        }
        if (chance(ml, ml->conf.dup_ppm)) {
            d->stats.duplicated++;
            enqueue_copy(ml, d, pkts[i], now_us);
        }
        if (ml->conf.copy_frames) {
            enqueue_copy(ml, d, pkts[i], now_us);
            fp_pkt_free(pkts[i]);
            continue;
        }
        enqueue_pkt(ml, d, pkts[i], now_us);
    }
    return n;
}

static bool
deliver(struct dir *d, struct slot *s, struct fp_pktpool *pool, struct fp_pkt **out)
{
    struct fp_pkt *p = s->pkt;

    if (p == NULL) {
        p = fp_pkt_alloc(pool);
        if (p == NULL) {
            return false; /* leave it queued: the instance is out of buffers */
        }
        memcpy(p->data, s->data, s->len);
        p->len = s->len;
    }
    s->pkt = NULL;
    d->stats.delivered++;
    *out = p;
    return true;
}

static uint16_t
mem_rx_burst(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
             uint64_t now_us)
{
    struct fp_memlink *ml = l->ctx;
    struct dir        *d = &ml->dir[l == &ml->port[0] ? 1 : 0];
    struct slot       *s;
    uint16_t           k = 0;

    while (k < n && d->count > 0) {
        s = &d->ring[d->head];
        if (s->deliver_us > now_us || !deliver(d, s, pool, &pkts[k])) {
            break;
        }
        k++;
        d->head = (d->head + 1) % d->size;
        d->count--;
    }
    if (k < n && d->held_busy && d->held.deliver_us <= now_us &&
        deliver(d, &d->held, pool, &pkts[k])) {
        d->held_busy = false;
        k++;
    }
    return k;
}

static const struct fp_link_ops mem_ops = {
        .rx_burst = mem_rx_burst,
        .tx_burst = mem_tx_burst,
};

int
fp_memlink_create(const struct fp_memlink_conf *conf, struct fp_memlink **out)
{
    struct fp_memlink *ml = calloc(1, sizeof(*ml));
    unsigned int       i;

    if (ml == NULL) {
        return -ENOMEM;
    }
    ml->conf = *conf;
    if (ml->conf.queue_frames == 0) {
        ml->conf.queue_frames = 4096;
    }
    ml->rng = conf->seed * 0x9E3779B97F4A7C15ULL + 1;
    for (i = 0; i < 2; i++) {
        ml->dir[i].size = ml->conf.queue_frames;
        ml->dir[i].ring = calloc(ml->conf.queue_frames, sizeof(struct slot));
        if (ml->dir[i].ring == NULL) {
            fp_memlink_destroy(ml);
            return -ENOMEM;
        }
        ml->port[i].ops = &mem_ops;
        ml->port[i].ctx = ml;
        ml->port[i].mtu = 1500;
        ml->port[i].mac[0] = 0x02;
        ml->port[i].mac[5] = (uint8_t)(i + 1);
    }
    *out = ml;
    return 0;
}

void
fp_memlink_destroy(struct fp_memlink *ml)
{
    struct dir  *d;
    unsigned int i;

    if (ml == NULL) {
        return;
    }
    for (i = 0; i < 2; i++) {
        d = &ml->dir[i];
        while (d->ring != NULL && d->count > 0) {
            fp_pkt_free(d->ring[d->head].pkt);
            d->head = (d->head + 1) % d->size;
            d->count--;
        }
        if (d->held_busy) {
            fp_pkt_free(d->held.pkt);
        }
        free(d->ring);
    }
    free(ml);
}

struct fp_link *
fp_memlink_port(struct fp_memlink *ml, unsigned int side)
{
    return &ml->port[side & 1];
}

void
fp_memlink_set_impairments(struct fp_memlink *ml, const struct fp_memlink_conf *conf)
{
    uint32_t q = ml->conf.queue_frames;

    ml->conf = *conf;
    ml->conf.queue_frames = q;
}

void
fp_memlink_stats(const struct fp_memlink *ml, unsigned int side, struct fp_memlink_stats *out)
{
    *out = ml->dir[side & 1].stats;
}

uint64_t
fp_memlink_next_us(const struct fp_memlink *ml)
{
    uint64_t     best = UINT64_MAX;
    unsigned int i;

    for (i = 0; i < 2; i++) {
        const struct dir *d = &ml->dir[i];

        if (d->count > 0 && d->ring[d->head].deliver_us < best) {
            best = d->ring[d->head].deliver_us;
        }
        if (d->held_busy && d->held.deliver_us < best) {
            best = d->held.deliver_us;
        }
    }
    return best;
}
