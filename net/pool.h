/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fixed-size object pools. A pool is created at startup with all its memory, owned by one
 * worker, and never grows: an empty pool is a normal, counted event that the caller turns
 * into load shedding. Objects are handed out last-in first-out so that the most recently
 * used (cache-hot) object is reused first. Not thread-safe by design: only the owner calls it.
 * This is the one pool of net/: the proxy's sessions and buffers, the backends' connections,
 * and the user-space stack's packet buffers and TCBs (net/stack/pkt.h) all come from one.
 */
#ifndef FP_NET_POOL_H
#define FP_NET_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "net/pool_types.h"

/*
 * Creates a pool of count objects of elt_size bytes each, zeroed. Startup only.
 * Returns 0, or -ENOMEM. The memory is reserved, not touched: pages become resident as
 * objects are first used, so a large maxconn costs address space, not RAM, until used.
 */
int fp_pool_init(struct fp_pool *p, size_t elt_size, uint32_t count);

/* Releases the pool's memory. Every object must have been put back. */
void fp_pool_destroy(struct fp_pool *p);

/* Returns a free object, or NULL (counted in p->empty) when none is left. */
void *fp_pool_get(struct fp_pool *p);

/* Returns a free object with its first elt_size bytes zeroed, or NULL (counted) when none is
 * left. */
void *fp_pool_get_zeroed(struct fp_pool *p);

/* Returns obj, which came from fp_pool_get(p), to p. */
void fp_pool_put(struct fp_pool *p, void *obj);

/* Returns the number of objects currently handed out. */
static inline uint32_t
fp_pool_in_use(const struct fp_pool *p)
{
    return p->count - p->nb_free;
}

#endif /* FP_NET_POOL_H */
