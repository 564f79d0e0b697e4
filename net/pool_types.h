/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The layout of struct fp_pool, for headers that embed a pool (the stack's types); the
 * functions are in net/pool.h. System headers only (the _types.h rule).
 */
#ifndef FP_NET_POOL_TYPES_H
#define FP_NET_POOL_TYPES_H

#include <stddef.h>
#include <stdint.h>

struct fp_pool {
    uint8_t *mem;      /* count * elt_size bytes, one allocation */
    void   **free;     /* stack of free objects */
    size_t   elt_size; /* rounded up to a cache line */
    uint32_t count;    /* objects in the pool */
    uint32_t nb_free;  /* objects on the free stack */
    uint64_t empty;    /* gets refused because the pool was empty */
};

#endif /* FP_NET_POOL_TYPES_H */
