/* SPDX-License-Identifier: BSD-3-Clause */
/* Request queue with adaptive LIFO; see queue.h. Worker-private, no locks. */
#include "proxy/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
fp_wq_init(struct fp_wq *q, uint32_t cap)
{
    memset(q, 0, sizeof(*q));
    q->cap = cap;
    q->detect_ms = 25;
    if (cap == 0) {
        return 0;
    }
    q->items = calloc(cap, sizeof(*q->items));
    q->enq_ms = calloc(cap, sizeof(*q->enq_ms));
    if (q->items == NULL || q->enq_ms == NULL) {
        fp_wq_destroy(q);
        return -ENOMEM;
    }
    return 0;
}

void
fp_wq_destroy(struct fp_wq *q)
{
    free(q->items);
    free(q->enq_ms);
    q->items = NULL;
    q->enq_ms = NULL;
}

/* Drops holes at both ends so that head and tail are live items (or the queue is empty). */
static void
trim(struct fp_wq *q)
{
    while (q->count > 0 && q->items[q->head % q->cap] == NULL) {
        q->head++;
        q->count--;
    }
    while (q->count > 0 && q->items[(q->head + q->count - 1) % q->cap] == NULL) {
        q->count--;
    }
}

/*
 * Samples the service rate at the end of a detection window in which the queue held requests
 * at both ends: every slot was then busy, so what finished is what the servers can do. A
 * window stretched past twice its length (the worker, or the clients, were not running) is
 * left out: it measures the stall. The queue's own pops are no measure: below capacity most
 * requests take a free slot without queueing, and a rate of the few pops (2-6/s at 0.5x)
 * capped a queue that a stall had built to one request (fp_wq_standing_cap).
 */
static void
sample_rate(struct fp_wq *q, uint64_t len_ms, int64_t served)
{
    uint32_t r;

    if (q->ow_live0 == 0 || q->live == 0 || len_ms > 2 * (uint64_t)q->detect_ms || served <= 0) {
        return;
    }
    r = (uint32_t)((uint64_t)served * 1000 / len_ms);
    q->rate_per_s = q->rate_per_s == 0 ? r : (3 * q->rate_per_s + r) / 4;
}

/*
 * Whether the windows of the last interval (FP_WQ_ONSET_WINDOWS of them) show overload
 * starting: each one over 1.2 times service, all together over 1.8 times, and arrivals over
 * 1.2 times the service rate measured before (when known). One window is not enough: when the
 * worker or its clients were off the CPU (a shared machine: tens to hundreds of ms), the
 * requests of the stall are read in one burst, and the window that reads them has several
 * times the demand the servers serve in it although the load is half of capacity; the windows
 * after it, which drain the queue, have less. And while the servers themselves stall (their
 * process off the CPU: nothing finishes for 100 ms with every slot held), every window has
 * more demand than service, but arrivals are what the servers did before: the queue waits
 * for them FIFO (bounded by the standing cap, queue_size and timeouts.queue) rather than
 * refusing what waited 2.5 ms.
 */
static bool
onset(struct fp_wq *q, uint32_t demand, int64_t served, uint64_t len_ms)
{
    uint64_t sum_demand = 0;
    uint64_t sum_served = 0;
    uint64_t sum_ms = 0;
    uint32_t i;

    if ((uint64_t)demand * 10 <= (uint64_t)served * 12) {
        q->on_len = 0;
        return false;
    }
    q->on_demand[q->on_pos] = demand;
    q->on_served[q->on_pos] = (uint32_t)served;
    q->on_ms[q->on_pos] = (uint32_t)len_ms;
    q->on_pos = (q->on_pos + 1) % FP_WQ_ONSET_WINDOWS;
    if (q->on_len < FP_WQ_ONSET_WINDOWS) {
        q->on_len++;
    }
    if (q->on_len < FP_WQ_ONSET_WINDOWS) {
        return false;
    }
    for (i = 0; i < FP_WQ_ONSET_WINDOWS; i++) {
        sum_demand += q->on_demand[i];
        sum_served += q->on_served[i];
        sum_ms += q->on_ms[i];
    }
    if (q->rate_per_s != 0 && sum_demand * 1000 * 10 <= (uint64_t)q->rate_per_s * sum_ms * 12) {
        return false;
    }
    return sum_demand * 10 > sum_served * 18;
}

/*
 * Ends the detection window after detect_ms. Shorter windows, of less than a couple of service
 * times, are too noisy (completions come in bunches when the servers' slots run in step) and
 * would take a burst that the queue absorbs in a few ms for overload. Service is what finished
 * plus the slots newly taken: a load that rises to a level the servers handle fills slots
 * first, which is not overload. Overload starts after an interval of windows where demand was
 * over service (onset()) and ends after an interval of windows at or under 1.2 times service
 * (symmetric, so that a window read after a stall neither starts nor ends it; a Schmitt
 * trigger, so that overload does not flicker).
 */
static void
detect(struct fp_wq *q, uint64_t now_ms, uint32_t busy)
{
    uint64_t len_ms = now_ms - q->ow_start_ms;
    int64_t  served = (int64_t)q->ow_done + (int64_t)busy - (int64_t)q->ow_busy0;

    if (len_ms < q->detect_ms) {
        return;
    }
    if (served < 0) {
        served = 0;
    }
    sample_rate(q, len_ms, served);
    if (q->overloaded) {
        q->on_len = 0;
        if (q->ow_demand >= 8 && (uint64_t)q->ow_demand * 10 > (uint64_t)served * 12) {
            q->off_len = 0;
        } else if (++q->off_len >= FP_WQ_ONSET_WINDOWS) {
            q->overloaded = false;
            q->off_len = 0;
        }
    } else if (q->ow_demand < 8) {
        q->on_len = 0;
    } else {
        q->overloaded = onset(q, q->ow_demand, served, len_ms);
    }
    q->ow_start_ms = now_ms;
    q->ow_demand = 0;
    q->ow_done = 0;
    q->ow_busy0 = busy;
    q->ow_live0 = q->live;
}

void
fp_wq_demand(struct fp_wq *q, uint64_t now_ms, uint32_t busy)
{
    q->ow_demand++;
    detect(q, now_ms, busy);
}

void
fp_wq_done(struct fp_wq *q, uint64_t now_ms, uint32_t busy)
{
    q->ow_done++;
    detect(q, now_ms, busy);
}

int64_t
fp_wq_push(struct fp_wq *q, void *item, uint64_t now_ms)
{
    uint32_t pos;

    trim(q);
    if (q->count == q->cap) {
        return -ENOBUFS;
    }
    pos = q->head + q->count;
    q->items[pos % q->cap] = item;
    q->enq_ms[pos % q->cap] = now_ms;
    q->count++;
    q->live++;
    return pos;
}

void
fp_wq_remove(struct fp_wq *q, uint32_t pos)
{
    q->items[pos % q->cap] = NULL;
    q->live--;
    trim(q);
}

/* Takes the item at pos out of the queue. */
static void *
take(struct fp_wq *q, uint32_t pos)
{
    void *item = q->items[pos % q->cap];

    q->items[pos % q->cap] = NULL;
    q->live--;
    trim(q);
    return item;
}

void *
fp_wq_pop_oldest(struct fp_wq *q)
{
    trim(q);
    if (q->live == 0) {
        return NULL;
    }
    return take(q, q->head);
}

void *
fp_wq_pop(struct fp_wq *q, uint64_t now_ms, bool lifo_allowed, uint32_t target_ms,
          uint32_t interval_ms, uint64_t *delay_ms)
{
    uint64_t oldest_wait;
    uint32_t pos;
    void    *item;

    trim(q);
    if (q->live == 0) {
        return NULL;
    }
    /* CoDel's standing queue: the oldest wait above target for a whole interval. It bounds
     * the queue (fp_wq_standing_cap) but keeps it FIFO: near capacity a FIFO queue keeps
     * every wait short, where LIFO would starve the oldest into their timeout. */
    oldest_wait = now_ms - q->enq_ms[q->head % q->cap];
    if (oldest_wait <= target_ms) {
        q->above_since_ms = 0;
    } else if (q->above_since_ms == 0) {
        q->above_since_ms = now_ms;
    }
    q->standing = q->above_since_ms != 0 && now_ms - q->above_since_ms >= interval_ms;
    /* LIFO exactly while demand outruns service: then the newest requests are the ones still
     * wanted, and the old ones are refused for their age (fp_wq_pop_stale). */
    if (lifo_allowed && q->overloaded) {
        if (!q->lifo) {
            q->lifo = true;
            q->lifo_switches++;
        }
    } else {
        q->lifo = false;
    }
    pos = q->lifo ? q->head + q->count - 1 : q->head;
    *delay_ms = now_ms - q->enq_ms[pos % q->cap];
    item = take(q, pos);
    if (q->live == 0) {
        q->above_since_ms = 0;
        q->standing = false;
    }
    return item;
}

void *
fp_wq_pop_stale(struct fp_wq *q, uint64_t now_ms, uint32_t target_ms)
{
    trim(q);
    if (!q->lifo || !q->overloaded || q->live == 0 ||
        now_ms - q->enq_ms[q->head % q->cap] <= target_ms / 2) {
        return NULL;
    }
    return take(q, q->head);
}

uint32_t
fp_wq_standing_cap(const struct fp_wq *q, uint32_t span_ms)
{
    uint64_t cap;

    if ((!q->lifo && !q->standing) || q->rate_per_s == 0) {
        return UINT32_MAX;
    }
    cap = (uint64_t)q->rate_per_s * span_ms / 1000;
    return cap > 0 ? (uint32_t)cap : 1;
}
