/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Single-producer single-consumer message ring: the only way two threads talk. One ring per
 * (sender, receiver) pair, fixed capacity, fixed-size messages copied by value, so a message
 * costs the receiver a couple of cache misses and nobody touches another worker's state.
 */
#ifndef FP_NET_RING_H
#define FP_NET_RING_H

#include <stdint.h>

struct fp_msg {
    uint32_t type; /* meaning defined by the two sides */
    uint32_t arg;
    uint64_t val;
};

struct fp_ring {
    uint32_t       mask;                            /* capacity - 1 */
    struct fp_msg *slots;
    _Alignas(64) uint32_t head;                     /* written by the producer only */
    _Alignas(64) uint32_t tail;                     /* written by the consumer only */
};

/* Creates r with room for capacity messages (a power of two, >= 2). Returns 0 or -EINVAL/-ENOMEM. */
int fp_ring_init(struct fp_ring *r, uint32_t capacity);

/* Frees r's slots. */
void fp_ring_destroy(struct fp_ring *r);

/* Producer side only: copies m in. Returns 0, or -ENOBUFS when the ring is full. */
int fp_ring_sp_enqueue(struct fp_ring *r, const struct fp_msg *m);

/* Consumer side only: takes up to n messages into out. Returns how many were taken. */
unsigned fp_ring_sc_dequeue_burst(struct fp_ring *r, struct fp_msg *out, unsigned n);

#endif /* FP_NET_RING_H */
