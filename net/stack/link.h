/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The link interface: how an instance exchanges Ethernet frames with the outside, in bursts.
 * Implementations: link_mem (two instances joined in memory, with impairments), link_tap (a Linux
 * TAP fd); a DPDK port-queue link fits the same shape (see docs/stack.md). A link is used by one
 * instance, from that instance's thread only.
 */
#ifndef FP_NET_STACK_LINK_H
#define FP_NET_STACK_LINK_H

#include <stdint.h>

#include "net/stack/stack_types.h"

struct fp_link;

struct fp_link_ops {
    /*
     * Receives up to n frames into pkts. Buffers come from pool (the instance's packet pool):
     * a link either copies into fp_pkt_alloc(pool) buffers or, for zero copy, sets pkt->ext to
     * its own buffer reference and data/len into that buffer (pool->ext_free releases it).
     * Returns the number of frames stored (0..n). Must not block.
     */
    uint16_t (*rx_burst)(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts,
                         uint16_t n, uint64_t now_us);
    /*
     * Sends up to n frames (data/len is the whole Ethernet frame). Takes ownership of the first k
     * frames, k being the return value, and frees them (fp_pkt_free) when done; the caller keeps
     * and frees the rest. Must not block.
     */
    uint16_t (*tx_burst)(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us);
};

/* Offloads a link offers (struct fp_link.caps). */
enum fp_link_cap {
    /* Frames flagged FP_PKT_F_TX_CKSUM_OFFLOAD get their IPv4 header and TCP checksums from
     * the link (the stack flags TCP segments only). */
    FP_LINK_CAP_TX_CKSUM = 0x1,
    /* Received frames may carry FP_PKT_F_RX_{IP,L4}_{GOOD,BAD}. */
    FP_LINK_CAP_RX_CKSUM = 0x2,
};

struct fp_link {
    const struct fp_link_ops *ops;
    void                     *ctx; /* the implementation's state */
    uint8_t                   mac[6];
    uint16_t                  mtu;
    uint32_t                  caps; /* enum fp_link_cap */
};

#endif /* FP_NET_STACK_LINK_H */
