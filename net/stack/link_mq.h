/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An in-memory multi-queue NIC with RSS, for tests and benchmarks on a machine with no NIC
 * (issue 11 item 6). One side is a peer (one struct fp_link, one instance); the other side is a
 * NIC with N queues, each a struct fp_link that one instance uses, all sharing one MAC (and the
 * instances one IP address). Frames sent by the peer are steered as a NIC with RSS would:
 *
 *   - IPv4/TCP (not a fragment): to queue reta[toeplitz(saddr, daddr, sport, dport)] (net/rss.h,
 *     with the key and table given at creation);
 *   - ARP: a copy to every queue. This stands in for the software ARP fan-out the DPDK backend
 *     does (a real NIC delivers ARP to one queue, and the backend hands it to every worker so
 *     that each keeps its own ARP table);
 *   - anything else (other protocols, IPv4 fragments, truncated headers): to queue 0.
 *
 * Frames sent by any queue go to the peer. The wire between the peer and the NIC is a
 * struct fp_memlink (link_mem.h) with all its seeded impairments (loss, duplication,
 * reordering, delay, corruption, rate); each queue has a receive ring of its own, where a frame
 * waits until that queue's instance polls, as in a NIC's RX descriptor ring. Frames pass without
 * a copy (ARP copies and duplicates excepted), so every instance must be driven from one thread
 * and the link destroyed before the instances' pools (as with link_mem).
 */
#ifndef FP_NET_STACK_LINK_MQ_H
#define FP_NET_STACK_LINK_MQ_H

#include <stdint.h>

#include "net/rss.h"
#include "net/stack/link.h"
#include "net/stack/link_mem.h"

struct fp_mqlink;

/*
 * Called for every frame handed to queue q's instance (after steering, before the instance
 * sees it), for tests that check where each flow's packets land. May read, not change, the frame.
 */
typedef void (*fp_mqlink_rx_fn)(void *arg, uint16_t q, const uint8_t *frame, uint32_t len);

struct fp_mqlink_conf {
    struct fp_memlink_conf wire; /* impairments between the peer and the NIC */
    const struct fp_rss   *rss;  /* key and table (copied); its nb_queues is the queue count */
    uint32_t               ring_frames; /* receive ring per queue (default 4096) */
    fp_mqlink_rx_fn        on_rx;       /* optional observer */
    void                  *on_rx_arg;
};

/* Per queue. */
struct fp_mqlink_queue_stats {
    uint64_t rx;           /* frames handed to the queue's instance */
    uint64_t rx_tcp;       /* IPv4/TCP frames steered here by the hash */
    uint64_t rx_arp;       /* ARP frames (every queue gets each) */
    uint64_t rx_other;     /* other frames (queue 0 only) */
    uint64_t rx_ring_full; /* frames dropped: this queue's ring was full */
    uint64_t tx;           /* frames this queue sent towards the peer */
};

/*
 * Creates the link: the wire, and one ring of ring_frames per queue. Returns 0 and *out,
 * -EINVAL (no rss) or -ENOMEM. Setup time only.
 */
int fp_mqlink_create(const struct fp_mqlink_conf *conf, struct fp_mqlink **out);

/* Frees the frames still in flight (into their pools, which must still exist) and the link. */
void fp_mqlink_destroy(struct fp_mqlink *mq);

/* The peer's link endpoint, MAC 02:00:00:00:00:01. */
struct fp_link *fp_mqlink_peer(struct fp_mqlink *mq);

/* Queue q's link endpoint (q < nb_queues), MAC 02:00:00:00:00:02 for every queue; NULL past. */
struct fp_link *fp_mqlink_queue(struct fp_mqlink *mq, uint16_t q);

uint16_t fp_mqlink_nb_queues(const struct fp_mqlink *mq);

/* Counters of queue q. */
void fp_mqlink_queue_stats(const struct fp_mqlink *mq, uint16_t q,
                           struct fp_mqlink_queue_stats *out);

/* Counters of the wire: side 0 = frames sent by the peer, side 1 = by the NIC's queues. */
void fp_mqlink_wire_stats(const struct fp_mqlink *mq, unsigned int side,
                          struct fp_memlink_stats *out);

/* Changes the wire's impairments (seed and queue size kept). */
void fp_mqlink_set_impairments(struct fp_mqlink *mq, const struct fp_memlink_conf *conf);

/* Earliest time a frame becomes deliverable (us): 0 when a queue's ring holds frames now,
 * UINT64_MAX when nothing is in flight. */
uint64_t fp_mqlink_next_us(const struct fp_mqlink *mq);

#endif /* FP_NET_STACK_LINK_MQ_H */
