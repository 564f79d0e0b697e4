/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packet buffers (struct fp_pkt) of one stack instance, on net/pool.h's fixed-capacity pool: the
 * memory is allocated once, when the instance is created; afterwards alloc and free are O(1)
 * and never call malloc. An empty pool is a normal, counted condition for the caller. A packet
 * pool is owned by one instance and is not thread-safe.
 */
#ifndef FP_NET_STACK_PKT_H
#define FP_NET_STACK_PKT_H

#include <stddef.h>
#include <stdint.h>

#include "net/stack/stack_types.h"

/* Creates a packet buffer pool of size buffers. Returns 0 or -ENOMEM. Setup time only. */
int fp_pktpool_init(struct fp_pktpool *pp, uint32_t size);

void fp_pktpool_fini(struct fp_pktpool *pp);

/* Buffers available now. */
static inline uint32_t
fp_pktpool_avail(const struct fp_pktpool *pp)
{
    return pp->objs.nb_free;
}

/*
 * Returns a buffer with data at FP_PKT_HEADROOM and len 0, or NULL when the pool is empty.
 * The payload is not cleared.
 */
struct fp_pkt *fp_pkt_alloc(struct fp_pktpool *pp);

/* Returns p to its pool (through ext_free first if it holds an external buffer). NULL is a no-op.
 */
void fp_pkt_free(struct fp_pkt *p);

/* Frees a whole chain linked by next. */
void fp_pkt_free_chain(struct fp_pkt *p);

/* Bytes that can still be appended after data + len. */
static inline uint32_t
fp_pkt_tailroom(const struct fp_pkt *p)
{
    return (uint32_t)(p->buf + FP_PKT_BUF_SIZE - (p->data + p->len));
}

#endif /* FP_NET_STACK_PKT_H */
