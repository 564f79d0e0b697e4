/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fixed-capacity object pools and packet buffers. A pool's memory is allocated once, when the
 * instance is created; afterwards get and put are O(1) and never call malloc. An empty pool is a
 * normal, counted condition for the caller. Pools are owned by one instance and are not
 * thread-safe.
 */
#ifndef FP_NET_STACK_POOL_H
#define FP_NET_STACK_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "net/stack/stack_types.h"

/* Allocates room for size objects of obj_size bytes. Returns 0 or -ENOMEM. Setup time only. */
int fp_spool_init(struct fp_spool *p, uint32_t size, size_t obj_size);

/* Frees the pool's memory. Objects still out become invalid. */
void fp_spool_fini(struct fp_spool *p);

/* Returns a zero-filled object, or NULL when the pool is empty. */
void *fp_spool_get(struct fp_spool *p);

/* Returns obj (from fp_spool_get on p) to the pool. */
void fp_spool_put(struct fp_spool *p, void *obj);

/* Creates a packet buffer pool of size buffers. Returns 0 or -ENOMEM. Setup time only. */
int fp_pktpool_init(struct fp_pktpool *pp, uint32_t size);

void fp_pktpool_fini(struct fp_pktpool *pp);

/* Buffers available now. */
static inline uint32_t
fp_pktpool_avail(const struct fp_pktpool *pp)
{
    return pp->sp.nb_free;
}

/*
 * Returns a buffer with data at FP_PKT_HEADROOM and len 0, or NULL when the pool is empty.
 * Unlike fp_spool_get the payload is not cleared.
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

#endif /* FP_NET_STACK_POOL_H */
