/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Byte buffers exchanged between the proxy and the I/O backends. A buffer is a window
 * [head, tail) over memory of size bytes that belongs to a per-worker pool (ownership stays
 * with whoever holds the struct). The struct is passed by reference everywhere, so a bypass
 * backend can later point data at packet memory instead of copying into it (see
 * docs/architecture.md, "Buffers").
 *
 * Segments (struct fp_seg) are the zero-copy form: memory a backend lends to the proxy
 * (net/io.h, fp_io_recv_segs) and takes back to send (fp_io_send_segs) or to free. A
 * struct fp_segq is one direction's bounded queue of them (its read-ahead).
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

/*
 * A segment: len bytes at data, lent by a backend. ref is the backend's handle (a packet
 * buffer of the user-space stack, a pool buffer of the generic path); only the backend reads
 * it. The holder may advance data and shrink len (bytes consumed), nothing else. data is NULL
 * when the backend holds the bytes out of memory (FP_RECV_OPAQUE, e.g. in a pipe).
 */
struct fp_seg {
    uint8_t *data;
    uint32_t len;
    void    *ref;
};

/* Segments one fp_segq holds at most: 64 KiB of 1448-byte TCP segments fit. */
#define FP_SEGQ_CAP 48
/* Bytes one fp_segq holds at most (a direction's read-ahead, issue 13 item 2); the last segment
 * read may cross it. */
#define FP_SEGQ_MAX_BYTES (64u * 1024)

/* A bounded FIFO of segments, oldest first at seg[0]. */
struct fp_segq {
    struct fp_seg seg[FP_SEGQ_CAP];
    uint32_t      nb;    /* segments held */
    uint32_t      bytes; /* bytes held */
};

/* fp_segq_room() : returns how many more segments q can take. */
static inline uint32_t
fp_segq_room(const struct fp_segq *q)
{
    return FP_SEGQ_CAP - q->nb;
}

/* fp_segq_byte_room() : returns how many more bytes q may read ahead (0 when full). */
static inline uint32_t
fp_segq_byte_room(const struct fp_segq *q)
{
    return q->bytes < FP_SEGQ_MAX_BYTES ? FP_SEGQ_MAX_BYTES - q->bytes : 0;
}

/* fp_segq_full() : returns whether q may read no more (segments or bytes). */
static inline bool
fp_segq_full(const struct fp_segq *q)
{
    return q->nb == FP_SEGQ_CAP || q->bytes >= FP_SEGQ_MAX_BYTES;
}

/* Accounts for n segments appended at seg[nb..nb+n) (by a backend's recv_segs). */
static inline void
fp_segq_added(struct fp_segq *q, uint32_t n)
{
    uint32_t i;

    for (i = q->nb; i < q->nb + n; i++) {
        q->bytes += q->seg[i].len;
    }
    q->nb += n;
}

/*
 * Forgets the first `bytes` bytes of q after a send took them: whole segments are dropped
 * (their memory belongs to the backend now), a partly sent one is advanced and stays.
 */
static inline void
fp_segq_consume(struct fp_segq *q, uint32_t bytes)
{
    uint32_t k = 0;

    q->bytes -= bytes;
    while (k < q->nb && bytes >= q->seg[k].len) {
        bytes -= q->seg[k].len;
        k++;
    }
    if (k < q->nb && bytes > 0) {
        if (q->seg[k].data != NULL) { /* NULL: bytes the backend holds (FP_RECV_OPAQUE) */
            q->seg[k].data += bytes;
        }
        q->seg[k].len -= bytes;
    }
    if (k > 0) {
        memmove(&q->seg[0], &q->seg[k], (q->nb - k) * sizeof(q->seg[0]));
        q->nb -= k;
    }
}

#endif /* FP_NET_BUF_H */
