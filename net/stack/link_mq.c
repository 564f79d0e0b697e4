/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NIC side polls the wire (a struct fp_memlink, side 1) whenever any queue's instance
 * receives: every frame due is steered into the ring of its queue at once, as NIC hardware would
 * do on arrival, and each queue's rx_burst then takes only from its own ring. A ring slot holds
 * the frame itself, or, for the ARP copies of the fan-out, up to ARP_COPY_MAX bytes inline that
 * become a buffer of the receiving instance's pool when that instance takes them.
 */
#include "net/stack/link_mq.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net/stack/pkt.h"
#include "net/stack/wire.h"

#define PULL_BURST   32
#define ARP_COPY_MAX 128
#define ETH_HLEN     14
#define ETH_P_IPV4   0x0800
#define ETH_P_ARP    0x0806
#define IP_P_TCP     6

struct slot {
    struct fp_pkt *pkt; /* the frame, or NULL for an inline copy */
    uint32_t       len;
    uint8_t        copy[ARP_COPY_MAX];
};

struct queue {
    struct fp_link               port;
    struct fp_mqlink            *mq;
    uint16_t                     id;
    struct slot                 *ring;
    uint32_t                     head;
    uint32_t                     count;
    struct fp_mqlink_queue_stats stats;
};

struct fp_mqlink {
    struct fp_memlink *wire;
    struct fp_rss      rss;
    uint32_t           ring_frames;
    fp_mqlink_rx_fn    on_rx;
    void              *on_rx_arg;
    uint16_t           nb_queues;
    struct queue      *q;
};

/*
 * The queue a NIC with RSS on IPv4/TCP gives this frame, or -1 for ARP (every queue). Frames the
 * hash cannot cover (not IPv4/TCP, fragments, truncated headers) go to queue 0, where the
 * instance drops and counts what is malformed.
 */
static int
steer(const struct fp_mqlink *mq, const uint8_t *f, uint32_t len, bool *tcp)
{
    uint16_t type;
    uint32_t ihl;

    *tcp = false;
    if (len < ETH_HLEN) {
        return 0;
    }
    type = (uint16_t)(f[12] << 8 | f[13]);
    if (type == ETH_P_ARP) {
        return -1;
    }
    if (type != ETH_P_IPV4 || len < ETH_HLEN + 20 || (f[ETH_HLEN] >> 4) != 4) {
        return 0;
    }
    ihl = (uint32_t)(f[ETH_HLEN] & 0x0f) * 4;
    /* Fragment offset or MF set: the ports are not in every fragment, NICs hash L3 only. */
    if (ihl < 20 || f[ETH_HLEN + 9] != IP_P_TCP || (fp_get16(f + ETH_HLEN + 6) & 0x3fff) != 0 ||
        len < ETH_HLEN + ihl + 4) {
        return 0;
    }
    *tcp = true;
    return fp_rss_queue(&mq->rss, fp_get32(f + ETH_HLEN + 12), fp_get32(f + ETH_HLEN + 16),
                        fp_get16(f + ETH_HLEN + ihl), fp_get16(f + ETH_HLEN + ihl + 2));
}

/* Takes a slot at the end of q's ring, or NULL (counted) when the ring is full. */
static struct slot *
ring_slot(struct queue *q)
{
    struct slot *s;

    if (q->count == q->mq->ring_frames) {
        q->stats.rx_ring_full++;
        return NULL;
    }
    s = &q->ring[(q->head + q->count) % q->mq->ring_frames];
    q->count++;
    return s;
}

/* Appends pkt to q's ring; drops it when the ring is full. */
static void
ring_put(struct queue *q, struct fp_pkt *pkt)
{
    struct slot *s = ring_slot(q);

    if (s == NULL) {
        fp_pkt_free(pkt);
        return;
    }
    s->pkt = pkt;
    s->len = pkt->len;
}

/* Appends an inline copy of data (at most ARP_COPY_MAX bytes) to q's ring. Kept apart from
 * ring_put so that no path passes memcpy a NULL source (a release build's -Wnonnull). */
static void
ring_put_copy(struct queue *q, const uint8_t *data, uint32_t len)
{
    struct slot *s = ring_slot(q);

    if (s == NULL) {
        return;
    }
    s->pkt = NULL;
    s->len = len;
    memcpy(s->copy, data, len);
}

static void
fan_out_arp(struct fp_mqlink *mq, struct fp_pkt *p)
{
    uint16_t i;

    for (i = 1; i < mq->nb_queues; i++) {
        if (p->len > ARP_COPY_MAX) {
            mq->q[i].stats.rx_ring_full++; /* no room for the copy: as good as a full ring */
            continue;
        }
        mq->q[i].stats.rx_arp++;
        ring_put_copy(&mq->q[i], p->data, p->len);
    }
    mq->q[0].stats.rx_arp++;
    ring_put(&mq->q[0], p);
}

/* Takes every frame due on the wire and steers it into its queue's ring. */
static void
pull(struct fp_mqlink *mq, struct fp_pktpool *pool, uint64_t now_us)
{
    struct fp_link *side = fp_memlink_port(mq->wire, 1);
    struct fp_pkt  *pkts[PULL_BURST];
    struct queue   *q;
    uint16_t        n;
    uint16_t        i;
    bool            tcp;
    int             qi;

    do {
        n = side->ops->rx_burst(side, pool, pkts, PULL_BURST, now_us);
        for (i = 0; i < n; i++) {
            qi = steer(mq, pkts[i]->data, pkts[i]->len, &tcp);
            if (qi < 0) {
                fan_out_arp(mq, pkts[i]);
                continue;
            }
            q = &mq->q[qi];
            if (tcp) {
                q->stats.rx_tcp++;
            } else {
                q->stats.rx_other++;
            }
            ring_put(q, pkts[i]);
        }
    } while (n == PULL_BURST);
}

static uint16_t
mq_rx_burst(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
            uint64_t now_us)
{
    struct queue     *q = l->ctx;
    struct fp_mqlink *mq = q->mq;
    struct slot      *s;
    struct fp_pkt    *p;
    uint16_t          k = 0;

    pull(mq, pool, now_us);
    while (k < n && q->count > 0) {
        s = &q->ring[q->head];
        p = s->pkt;
        if (p == NULL) {
            p = fp_pkt_alloc(pool);
            if (p == NULL) {
                break; /* the instance is out of buffers: the copy waits in the ring */
            }
            memcpy(p->data, s->copy, s->len);
            p->len = s->len;
        }
        s->pkt = NULL;
        q->head = (q->head + 1) % mq->ring_frames;
        q->count--;
        q->stats.rx++;
        if (mq->on_rx != NULL) {
            mq->on_rx(mq->on_rx_arg, q->id, p->data, p->len);
        }
        pkts[k++] = p;
    }
    return k;
}

static uint16_t
mq_tx_burst(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    struct queue   *q = l->ctx;
    struct fp_link *side = fp_memlink_port(q->mq->wire, 1);
    uint16_t        k;

    k = side->ops->tx_burst(side, pkts, n, now_us);
    q->stats.tx += k;
    return k;
}

static const struct fp_link_ops mq_ops = {
        .rx_burst = mq_rx_burst,
        .tx_burst = mq_tx_burst,
};

int
fp_mqlink_create(const struct fp_mqlink_conf *conf, struct fp_mqlink **out)
{
    struct fp_mqlink *mq;
    struct fp_link   *side;
    uint16_t          i;
    int               rc;

    if (conf->rss == NULL || conf->rss->nb_queues == 0) {
        return -EINVAL;
    }
    mq = calloc(1, sizeof(*mq));
    if (mq == NULL) {
        return -ENOMEM;
    }
    mq->rss = *conf->rss;
    mq->nb_queues = conf->rss->nb_queues;
    mq->ring_frames = conf->ring_frames != 0 ? conf->ring_frames : 4096;
    mq->on_rx = conf->on_rx;
    mq->on_rx_arg = conf->on_rx_arg;
    rc = fp_memlink_create(&conf->wire, &mq->wire);
    if (rc < 0) {
        goto err_destroy;
    }
    mq->q = calloc(mq->nb_queues, sizeof(mq->q[0]));
    if (mq->q == NULL) {
        rc = -ENOMEM;
        goto err_destroy;
    }
    side = fp_memlink_port(mq->wire, 1);
    for (i = 0; i < mq->nb_queues; i++) {
        mq->q[i].mq = mq;
        mq->q[i].id = i;
        mq->q[i].port = *side;
        mq->q[i].port.ops = &mq_ops;
        mq->q[i].port.ctx = &mq->q[i];
        mq->q[i].ring = calloc(mq->ring_frames, sizeof(struct slot));
        if (mq->q[i].ring == NULL) {
            rc = -ENOMEM;
            goto err_destroy;
        }
    }
    *out = mq;
    return 0;

err_destroy:
    fp_mqlink_destroy(mq);
    return rc;
}

void
fp_mqlink_destroy(struct fp_mqlink *mq)
{
    struct queue *q;
    uint16_t      i;

    if (mq == NULL) {
        return;
    }
    for (i = 0; mq->q != NULL && i < mq->nb_queues; i++) {
        q = &mq->q[i];
        while (q->ring != NULL && q->count > 0) {
            fp_pkt_free(q->ring[q->head].pkt);
            q->head = (q->head + 1) % mq->ring_frames;
            q->count--;
        }
        free(q->ring);
    }
    free(mq->q);
    fp_memlink_destroy(mq->wire);
    free(mq);
}

struct fp_link *
fp_mqlink_peer(struct fp_mqlink *mq)
{
    return fp_memlink_port(mq->wire, 0);
}

struct fp_link *
fp_mqlink_queue(struct fp_mqlink *mq, uint16_t q)
{
    return q < mq->nb_queues ? &mq->q[q].port : NULL;
}

uint16_t
fp_mqlink_nb_queues(const struct fp_mqlink *mq)
{
    return mq->nb_queues;
}

void
fp_mqlink_queue_stats(const struct fp_mqlink *mq, uint16_t q, struct fp_mqlink_queue_stats *out)
{
    *out = mq->q[q].stats;
}

void
fp_mqlink_wire_stats(const struct fp_mqlink *mq, unsigned int side, struct fp_memlink_stats *out)
{
    fp_memlink_stats(mq->wire, side, out);
}

void
fp_mqlink_set_impairments(struct fp_mqlink *mq, const struct fp_memlink_conf *conf)
{
    fp_memlink_set_impairments(mq->wire, conf);
}

uint64_t
fp_mqlink_next_us(const struct fp_mqlink *mq)
{
    uint16_t i;

    for (i = 0; i < mq->nb_queues; i++) {
        if (mq->q[i].count > 0) {
            return 0;
        }
    }
    return fp_memlink_next_us(mq->wire);
}
