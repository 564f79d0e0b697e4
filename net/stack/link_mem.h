/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An in-memory Ethernet link joining two instances (side 0 and side 1), with deterministic,
 * seeded impairments per direction: loss, duplication, reordering, delay, bit corruption and a
 * bandwidth limit with a drop-tail queue. Frames pass without a copy (unless copy_frames): a
 * received buffer may belong to the other instance's pool and returns there when freed. Both sides must therefore be
 * driven from one thread (tests, benchmarks), and destroyed after the link
 * (fp_memlink_destroy frees the frames still in flight into their pools).
 */
#ifndef FP_NET_STACK_LINK_MEM_H
#define FP_NET_STACK_LINK_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "net/stack/link.h"

struct fp_memlink;

struct fp_memlink_conf {
    uint64_t seed;             /* PRNG seed: same seed and same traffic, same impairments */
    uint32_t loss_ppm;         /* frames lost, per million */
    uint32_t dup_ppm;          /* frames duplicated */
    uint32_t reorder_ppm;      /* frames held back by reorder_delay_us */
    uint32_t corrupt_ppm;      /* IPv4 packets with one bit flipped (past the FCS's reach) */
    uint32_t delay_us;         /* one-way propagation delay */
    uint32_t reorder_delay_us; /* extra delay of a reordered frame (default 2 * delay_us + 100) */
    uint64_t rate_bps;         /* serialisation rate, 0 = unlimited */
    uint32_t queue_frames;     /* frames in flight per direction (default 4096) */
    bool     copy_frames;      /* deliver copies in the receiver's buffers, as a NIC's DMA
                                * does, instead of the sender's buffers */
};

struct fp_memlink_stats {
    uint64_t sent;
    uint64_t delivered;
    uint64_t lost;
    uint64_t duplicated;
    uint64_t reordered;
    uint64_t corrupted;
    uint64_t queue_full;
};

/* Creates a link (allocates its queues). Returns 0 and *out, or -ENOMEM. Setup time only. */
int fp_memlink_create(const struct fp_memlink_conf *conf, struct fp_memlink **out);

void fp_memlink_destroy(struct fp_memlink *ml);

/* The link endpoint of side (0 or 1), to pass to fp_stack_attach_link(). Its MAC is
 * 02:00:00:00:00:0(side+1). */
struct fp_link *fp_memlink_port(struct fp_memlink *ml, unsigned int side);

/* Changes the impairments (the seed and queue size are kept). */
void fp_memlink_set_impairments(struct fp_memlink *ml, const struct fp_memlink_conf *conf);

/* Statistics of frames sent by side. */
void fp_memlink_stats(const struct fp_memlink *ml, unsigned int side, struct fp_memlink_stats *out);

/* Earliest time a queued frame becomes deliverable (us), UINT64_MAX when both queues are empty. */
uint64_t fp_memlink_next_us(const struct fp_memlink *ml);

#endif /* FP_NET_STACK_LINK_MEM_H */
