/* SPDX-License-Identifier: BSD-3-Clause */
/* SPSC ring: acquire/release on the indices is all the ordering two threads need here. */
#include "net/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
fp_ring_init(struct fp_ring *r, uint32_t capacity, uint32_t elt_size)
{
    memset(r, 0, sizeof(*r));
    if (capacity < 2 || (capacity & (capacity - 1)) != 0 || elt_size == 0) {
        return -EINVAL;
    }
    r->slots = calloc(capacity, elt_size);
    if (r->slots == NULL) {
        return -ENOMEM;
    }
    r->mask = capacity - 1;
    r->elt_size = elt_size;
    return 0;
}

void
fp_ring_destroy(struct fp_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

void *
fp_ring_sp_reserve(struct fp_ring *r)
{
    uint32_t head = r->head;
    uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);

    if (head - tail > r->mask) {
        return NULL;
    }
    return r->slots + (size_t)(head & r->mask) * r->elt_size;
}

void
fp_ring_sp_commit(struct fp_ring *r)
{
    __atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELEASE);
}

int
fp_ring_sp_enqueue(struct fp_ring *r, const void *obj)
{
    void *slot = fp_ring_sp_reserve(r);

    if (slot == NULL) {
        return -ENOBUFS;
    }
    memcpy(slot, obj, r->elt_size);
    fp_ring_sp_commit(r);
    return 0;
}

const void *
fp_ring_sc_peek(struct fp_ring *r)
{
    uint32_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);

    if (r->tail == head) {
        return NULL;
    }
    return r->slots + (size_t)(r->tail & r->mask) * r->elt_size;
}

void
fp_ring_sc_release(struct fp_ring *r)
{
    __atomic_store_n(&r->tail, r->tail + 1, __ATOMIC_RELEASE);
}

unsigned
fp_ring_sc_dequeue_burst(struct fp_ring *r, void *out, unsigned n)
{
    const void *slot;
    unsigned    i;

    for (i = 0; i < n; i++) {
        slot = fp_ring_sc_peek(r);
        if (slot == NULL) {
            break;
        }
        memcpy((uint8_t *)out + (size_t)i * r->elt_size, slot, r->elt_size);
        fp_ring_sc_release(r);
    }
    return i;
}
