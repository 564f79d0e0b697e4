/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Byte buffers exchanged between the proxy and the I/O backends. A buffer is a window
 * [head, tail) over memory of size bytes that belongs to a per-worker pool (ownership stays
 * with whoever holds the struct). The struct is passed by reference everywhere, so a bypass
 * backend can later point data at packet memory instead of copying into it (see
 * docs/architecture.md, "Buffers").
 */
#ifndef FP_NET_BUF_H
#define FP_NET_BUF_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct fp_buf {
    uint8_t *data; /* NULL when no memory is attached */
    uint32_t size; /* bytes of memory at data */
    uint32_t head; /* first byte not yet consumed */
    uint32_t tail; /* one past the last byte stored */
};

/* fp_buf_len() : returns the number of bytes stored and not yet consumed. */
static inline uint32_t
fp_buf_len(const struct fp_buf *b)
{
    return b->tail - b->head;
}

/* fp_buf_room() : returns the bytes that can be appended at tail without moving data. */
static inline uint32_t
fp_buf_room(const struct fp_buf *b)
{
    return b->size - b->tail;
}

static inline bool
fp_buf_empty(const struct fp_buf *b)
{
    return b->head == b->tail;
}

/* Marks n stored bytes consumed; resets to the start when the buffer empties. */
static inline void
fp_buf_consume(struct fp_buf *b, uint32_t n)
{
    b->head += n;
    if (b->head == b->tail) {
        b->head = 0;
        b->tail = 0;
    }
}

/* Moves the stored bytes to the start of the memory so that fp_buf_room() is maximal. */
static inline void
fp_buf_compact(struct fp_buf *b)
{
    if (b->head != 0) {
        memmove(b->data, b->data + b->head, b->tail - b->head);
        b->tail -= b->head;
        b->head = 0;
    }
}

#endif /* FP_NET_BUF_H */
