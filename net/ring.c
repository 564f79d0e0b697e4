/* SPDX-License-Identifier: BSD-3-Clause */
/* SPSC ring: acquire/release on the indices is all the ordering two threads need here. */
#include "net/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
fp_ring_init(struct fp_ring *r, uint32_t capacity)
{
    memset(r, 0, sizeof(*r));
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
        return -EINVAL;
    }
    r->slots = calloc(capacity, sizeof(*r->slots));
    if (r->slots == NULL) {
        return -ENOMEM;
    }
    r->mask = capacity - 1;
    return 0;
}

void
fp_ring_destroy(struct fp_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

int
fp_ring_sp_enqueue(struct fp_ring *r, const struct fp_msg *m)
{
    uint32_t head = r->head;
    uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);

    if (head - tail > r->mask) {
        return -ENOBUFS;
    }
    r->slots[head & r->mask] = *m;
    __atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
    return 0;
}

unsigned
fp_ring_sc_dequeue_burst(struct fp_ring *r, struct fp_msg *out, unsigned n)
{
    uint32_t tail = r->tail;
    uint32_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    unsigned i;

    for (i = 0; i < n && tail != head; i++, tail++) {
        out[i] = r->slots[tail & r->mask];
    }
    __atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
    return i;
}
