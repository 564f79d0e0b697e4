/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The queue of requests waiting for a server slot: one per backend and worker, fixed capacity,
 * owned by that worker. It is a ring of slots in arrival order; a request that leaves early
 * (its client left, its queue timeout expired) leaves a hole that the next pop skips, so every
 * operation is O(1) but a pop over holes.
 *
 * Service order (from CoDel, Nichols & Jacobson 2012, and Facebook's adaptive LIFO): first-in
 * first-out below and at capacity, which absorbs bursts fairly and keeps every wait short;
 * last-in first-out under overload, so the requests whose clients most likely still wait are
 * served first while the old ones are refused. Once the oldest request has waited longer than
 * target for a whole interval the queue is standing (CoDel), and holds at most what service
 * drains in an interval (fp_wq_standing_cap), its oldest dropped first.
 *
 * Overload is told apart from a queue that merely stands near capacity by rates: over windows
 * of detect_ms, requests that wanted a server slot against requests that finished with one or
 * newly took one. Overload starts when, over the last FP_WQ_ONSET_WINDOWS windows (an
 * interval), demand was over 1.2 times service in each and over 1.8 times in all, and the
 * arrival rate over 1.2 times the service rate measured while every slot was busy: a burst
 * read after the worker or its clients were off the CPU fills one window, not an interval,
 * and servers that stall for a while do not make the usual arrivals overload. It ends after an
 * interval of windows at or under 1.2 times service. While it lasts the queue turns LIFO and
 * requests that waited over target / 2 are refused: the newer requests that overtook one are more
 * than the servers will serve before its client gives up, and its refusal stays fast. Near capacity
 * (demand about equal to service) nothing is refused for its age: the queue absorbs the random walk
 * FIFO, bounded by queue_size, timeouts.queue, and what service drains in an interval.
 */
#ifndef FP_PROXY_QUEUE_H
#define FP_PROXY_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

/* Detection windows in a row that overload needs to start (detect_ms = interval / 4). */
#define FP_WQ_ONSET_WINDOWS 4

struct fp_wq {
    void    **items;  /* cap slots; NULL marks a request that left */
    uint64_t *enq_ms; /* when each slot's request arrived */
    uint32_t  cap;
    uint32_t  head;           /* absolute position of the oldest slot */
    uint32_t  count;          /* slots between head and tail, holes included */
    uint32_t  live;           /* requests waiting */
    uint64_t  above_since_ms; /* 0, or since when the oldest wait exceeds the target */
    bool      standing;       /* oldest wait above target for an interval (CoDel) */
    bool      lifo;           /* served newest first: overloaded */
    uint64_t  lifo_switches;  /* times the queue turned LIFO */
    uint32_t  rate_per_s;     /* service rate, from windows with every slot busy; 0: unknown */
    uint32_t  detect_ms;      /* overload detection window (set after init; default 25) */
    uint64_t  ow_start_ms;    /* start of the current detection window */
    uint32_t  ow_demand;      /* requests that wanted a slot in the window */
    uint32_t  ow_done;        /* requests that finished with a slot in the window */
    uint32_t  ow_busy0;       /* server slots held when the window started */
    uint32_t  ow_live0;       /* requests waiting when the window started */
    uint32_t  on_demand[FP_WQ_ONSET_WINDOWS]; /* the last windows over 1.2 times service */
    uint32_t  on_served[FP_WQ_ONSET_WINDOWS];
    uint32_t  on_ms[FP_WQ_ONSET_WINDOWS]; /* their lengths */
    uint32_t  on_pos;                     /* next entry of on_demand / on_served */
    uint32_t  on_len;     /* windows in a row over 1.2 times service (at most the array's) */
    uint32_t  off_len;    /* while overloaded: windows in a row at or under 1.2 times service */
    bool      overloaded; /* demand outruns service (see detect() in queue.c) */
};

/* Allocates room for cap requests (0: a queue that refuses everything). Startup only.
 * Returns 0 or -ENOMEM. */
int fp_wq_init(struct fp_wq *q, uint32_t cap);

void fp_wq_destroy(struct fp_wq *q);

/* Appends item, arrived at now_ms. Returns its position (for fp_wq_remove) or -ENOBUFS when
 * the queue is full (the caller drops the oldest with fp_wq_pop_oldest first). */
int64_t fp_wq_push(struct fp_wq *q, void *item, uint64_t now_ms);

/* Counts a request that wants a server slot of this queue's backend (served at once or not);
 * busy: the backend's slots held now. */
void fp_wq_demand(struct fp_wq *q, uint64_t now_ms, uint32_t busy);

/* Counts a request that finished with its server slot; busy: the backend's slots held now. */
void fp_wq_done(struct fp_wq *q, uint64_t now_ms, uint32_t busy);

/* Removes the item at pos (from fp_wq_push) that has not been popped yet. */
void fp_wq_remove(struct fp_wq *q, uint32_t pos);

/* Takes the oldest waiting item, or NULL. */
void *fp_wq_pop_oldest(struct fp_wq *q);

/*
 * Takes the next item to serve, or NULL when none waits. lifo_allowed false gives plain FIFO.
 * *delay_ms receives how long the item waited.
 */
void *fp_wq_pop(struct fp_wq *q, uint64_t now_ms, bool lifo_allowed, uint32_t target_ms,
                uint32_t interval_ms, uint64_t *delay_ms);

/*
 * While the queue is overloaded, requests older than target_ms / 2 are not worth serving any
 * more: returns the oldest such item, taken out of the queue, or NULL. The caller refuses it.
 * This is CoDel's drop at the head, which bounds how long a refused request waited.
 */
void *fp_wq_pop_stale(struct fp_wq *q, uint64_t now_ms, uint32_t target_ms);

/*
 * How many requests may wait while the queue stands or is overloaded: what the measured
 * service rate drains within span_ms (at least 1). UINT32_MAX otherwise, and while no
 * service rate has been measured yet (no window with every slot busy).
 */
uint32_t fp_wq_standing_cap(const struct fp_wq *q, uint32_t span_ms);

#endif /* FP_PROXY_QUEUE_H */
