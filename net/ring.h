/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Single-producer single-consumer ring of fixed-size slots: the only way two threads talk.
 * One ring per (sender, receiver) pair, capacity and slot size fixed at creation; a message
 * is copied by value (or written in place with reserve/commit), so the receiver pays a couple
 * of cache misses and nobody touches another worker's state. Never blocks: a full ring
 * refuses, and the producer counts the refusal.
 */
#ifndef FP_NET_RING_H
#define FP_NET_RING_H

#include <stddef.h>
#include <stdint.h>

/* The control message main sends to a worker. */
struct fp_msg {
    uint32_t type; /* meaning defined by the two sides */
    uint32_t arg;
    uint64_t val;
};

struct fp_ring {
    uint32_t mask;     /* capacity - 1 */
    uint32_t elt_size; /* bytes per slot */
    uint8_t *slots;
    _Alignas(64) uint32_t head; /* written by the producer only */
    _Alignas(64) uint32_t tail; /* written by the consumer only */
};

/* Creates r with capacity slots (a power of two, >= 2) of elt_size bytes.
 * Returns 0, -EINVAL or -ENOMEM. Startup only. */
int fp_ring_init(struct fp_ring *r, uint32_t capacity, uint32_t elt_size);

/* Frees r's slots. */
void fp_ring_destroy(struct fp_ring *r);

/* Producer only: copies elt_size bytes from obj in. Returns 0, or -ENOBUFS when full. */
int fp_ring_sp_enqueue(struct fp_ring *r, const void *obj);

/* Producer only: returns the next free slot to write in place, or NULL when full. The slot is
 * published by fp_ring_sp_commit(); until then the consumer cannot see it. */
void *fp_ring_sp_reserve(struct fp_ring *r);

/* Producer only: publishes the slot fp_ring_sp_reserve() returned. */
void fp_ring_sp_commit(struct fp_ring *r);

/* Consumer only: copies up to n slots into out (n * elt_size bytes). Returns how many. */
unsigned fp_ring_sc_dequeue_burst(struct fp_ring *r, void *out, unsigned n);

/* Consumer only: returns the oldest slot in place, or NULL when empty. */
const void *fp_ring_sc_peek(struct fp_ring *r);

/* Consumer only: frees the slot fp_ring_sc_peek() returned. */
void fp_ring_sc_release(struct fp_ring *r);

#endif /* FP_NET_RING_H */
