/* SPDX-License-Identifier: BSD-3-Clause */
/* The request queue: capacity, holes, oldest-first drop, overload detection and LIFO. */
#include <errno.h>

#include "proxy/queue.h"
#include "tests/unit/cu_main.h"

static int items[16];

static void
test_fifo_and_capacity(void)
{
    struct fp_wq q;
    uint64_t     d = 0;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 3), 0);
    CU_ASSERT_EQUAL(fp_wq_push(&q, &items[0], 10), 0);
    CU_ASSERT_EQUAL(fp_wq_push(&q, &items[1], 11), 1);
    CU_ASSERT_EQUAL(fp_wq_push(&q, &items[2], 12), 2);
    CU_ASSERT_EQUAL(fp_wq_push(&q, &items[3], 13), -ENOBUFS);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 14, true, 5, 100, &d), &items[0]);
    CU_ASSERT_EQUAL(d, 4);
    CU_ASSERT_EQUAL(fp_wq_push(&q, &items[3], 15), 3);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 15, true, 5, 100, &d), &items[1]);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 15, true, 5, 100, &d), &items[2]);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 15, true, 5, 100, &d), &items[3]);
    CU_ASSERT_PTR_NULL(fp_wq_pop(&q, 15, true, 5, 100, &d));
    fp_wq_destroy(&q);
}

static void
test_remove_leaves_hole(void)
{
    struct fp_wq q;
    uint64_t     d = 0;
    int64_t      pos1;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 4), 0);
    fp_wq_push(&q, &items[0], 0);
    pos1 = fp_wq_push(&q, &items[1], 0);
    fp_wq_push(&q, &items[2], 0);
    fp_wq_remove(&q, (uint32_t)pos1);
    CU_ASSERT_EQUAL(q.live, 2);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 1, true, 5, 100, &d), &items[0]);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 1, true, 5, 100, &d), &items[2]);
    CU_ASSERT_EQUAL(q.live, 0);
    CU_ASSERT_EQUAL(q.count, 0);
    fp_wq_destroy(&q);
}

static void
test_drop_oldest(void)
{
    struct fp_wq q;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 2), 0);
    fp_wq_push(&q, &items[0], 0);
    fp_wq_push(&q, &items[1], 0);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop_oldest(&q), &items[0]);
    CU_ASSERT_EQUAL(fp_wq_push(&q, &items[2], 0), 2);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop_oldest(&q), &items[1]);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop_oldest(&q), &items[2]);
    CU_ASSERT_PTR_NULL(fp_wq_pop_oldest(&q));
    fp_wq_destroy(&q);
}

/*
 * One detection window of q from start lasting len_ms: demand requests wanted a slot, done
 * finished, busy slots held at its end. Its last request, at start + len_ms, ends it.
 */
static void
window_len(struct fp_wq *q, uint64_t start, uint64_t len_ms, uint32_t demand, uint32_t done,
           uint32_t busy)
{
    uint32_t i;

    for (i = 0; i < done; i++) {
        fp_wq_done(q, start, busy);
    }
    for (i = 0; i + 1 < demand; i++) {
        fp_wq_demand(q, start, busy);
    }
    fp_wq_demand(q, start + len_ms, busy);
}

/* One 25 ms detection window (see window_len). */
static void
window(struct fp_wq *q, uint64_t start, uint32_t demand, uint32_t done, uint32_t busy)
{
    window_len(q, start, 25, demand, done, busy);
}

static void
test_overload_turns_lifo_and_sheds_stale(void)
{
    struct fp_wq q;
    uint64_t     d = 0;
    int          i;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 16), 0);
    q.detect_ms = 25;
    for (i = 0; i < 8; i++) {
        fp_wq_push(&q, &items[i], (uint64_t)i);
    }
    fp_wq_demand(&q, 100, 0); /* ends the first (empty) window */
    /* Demand at capacity: FIFO, however long the oldest waited. */
    window(&q, 100, 128, 100, 0);
    CU_ASSERT_FALSE(q.overloaded);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 125, true, 5, 100, &d), &items[0]);
    CU_ASSERT_EQUAL(d, 125);
    CU_ASSERT_FALSE(q.lifo);
    CU_ASSERT_PTR_NULL(fp_wq_pop_stale(&q, 125, 5));
    /* A window of 1.5 times the service: a chance excess, not overload. */
    window(&q, 125, 128, 86, 0);
    CU_ASSERT_FALSE(q.overloaded);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 150, true, 5, 100, &d), &items[1]);
    CU_ASSERT_FALSE(q.lifo);
    /* Twice the service, but not yet for an interval: a burst is not overload. */
    window(&q, 150, 128, 64, 0);
    window(&q, 175, 128, 64, 0);
    CU_ASSERT_FALSE(q.overloaded);
    /* Four windows in a row over 1.2 times service, over 1.8 times in all: overloaded, the
     * newest goes first. */
    window(&q, 200, 128, 64, 0);
    CU_ASSERT_TRUE(q.overloaded);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 225, true, 5, 100, &d), &items[7]);
    CU_ASSERT_TRUE(q.lifo);
    CU_ASSERT_EQUAL(q.lifo_switches, 1);
    /* With LIFO not allowed (fifo discipline) the same state serves FIFO and sheds nothing. */
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 225, false, 5, 100, &d), &items[2]);
    CU_ASSERT_FALSE(q.lifo);
    CU_ASSERT_PTR_NULL(fp_wq_pop_stale(&q, 225, 5));
    /* Overloaded and LIFO: what waited over target / 2 goes, oldest first; 2 ms is kept. */
    fp_wq_push(&q, &items[10], 223);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 225, true, 5, 100, &d), &items[10]);
    fp_wq_push(&q, &items[11], 223);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop_stale(&q, 225, 5), &items[3]);
    while (fp_wq_pop_stale(&q, 225, 5) != NULL) {
    }
    CU_ASSERT_EQUAL(q.live, 1); /* items[11] */
    /* Overload lasts while demand stays over 1.2 times service. */
    window(&q, 225, 128, 96, 0);
    CU_ASSERT_TRUE(q.overloaded);
    /* Demand back to what service does, or a window read after a stall with little demand:
     * still overloaded until an interval of such windows. */
    window(&q, 250, 128, 128, 0);
    window(&q, 275, 4, 128, 0);
    window(&q, 300, 128, 128, 0);
    CU_ASSERT_TRUE(q.overloaded);
    /* A window over 1.2 times service starts the count again. */
    window(&q, 325, 128, 96, 0);
    CU_ASSERT_TRUE(q.overloaded);
    for (i = 0; i < 3; i++) {
        window(&q, 350 + 25 * (uint64_t)i, 128, 128, 0);
        CU_ASSERT_TRUE(q.overloaded);
    }
    /* The fourth in a row: FIFO again. */
    window(&q, 425, 128, 128, 0);
    CU_ASSERT_FALSE(q.overloaded);
    fp_wq_push(&q, &items[12], 450);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 451, true, 5, 100, &d), &items[11]);
    CU_ASSERT_FALSE(q.lifo);
    fp_wq_destroy(&q);
}

/*
 * The windows a worker saw at half of capacity on a shared 2-core machine (bench, 0.5x, the
 * worker's run delay from /proc/thread-self/schedstat): off the CPU for 181 of 200 ms, then
 * 315 requests read in one window against 64 served. Before the onset needed an interval,
 * that one window turned the queue LIFO and its requests were refused for waiting 2.5 ms.
 */
static void
test_burst_after_stall_is_not_overload(void)
{
    struct fp_wq q;
    uint64_t     d = 0;
    int          i;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 16), 0);
    q.detect_ms = 25;
    fp_wq_demand(&q, 100, 20); /* ends the first (empty) window */
    window(&q, 100, 40, 40, 20);
    window(&q, 125, 40, 40, 20);
    window_len(&q, 150, 200, 29, 35, 13);
    CU_ASSERT_FALSE(q.overloaded);
    for (i = 0; i < 16; i++) {
        fp_wq_push(&q, &items[i], 350);
    }
    window(&q, 350, 315, 46, 31);
    CU_ASSERT_FALSE(q.overloaded);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 376, true, 5, 100, &d), &items[0]);
    CU_ASSERT_FALSE(q.lifo);
    CU_ASSERT_PTR_NULL(fp_wq_pop_stale(&q, 376, 5));
    /* The queue drains at twice the arrivals: never overloaded. */
    for (i = 0; i < 4; i++) {
        window(&q, 375 + 25 * (uint64_t)i, 40, 80, 32);
        CU_ASSERT_FALSE(q.overloaded);
    }
    CU_ASSERT_EQUAL(q.lifo_switches, 0);
    fp_wq_destroy(&q);
}

/*
 * The servers stop for a while (their process off the CPU: nothing finishes, every slot held)
 * under the usual arrivals: the queue grows, but arrivals stay under the service rate measured
 * before, so it waits FIFO. Twice that rate for an interval is overload.
 */
static void
test_servers_stall_is_not_overload(void)
{
    struct fp_wq q;
    int          i;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 16), 0);
    q.detect_ms = 25;
    fp_wq_push(&q, &items[0], 90);
    fp_wq_demand(&q, 100, 32);   /* ends the first (empty) window */
    window(&q, 100, 80, 80, 32); /* every slot busy, a request waiting: 3,200/s */
    CU_ASSERT_EQUAL(q.rate_per_s, 3200);
    for (i = 0; i < 6; i++) {
        window(&q, 125 + 25 * (uint64_t)i, 40, 0, 32);
        CU_ASSERT_FALSE(q.overloaded);
    }
    CU_ASSERT_EQUAL(q.rate_per_s, 3200); /* nothing served: no sample */
    /* Arrivals at twice the service: overloaded within an interval. */
    for (i = 0; i < 4; i++) {
        window(&q, 275 + 25 * (uint64_t)i, 160, 80, 32);
    }
    CU_ASSERT_TRUE(q.overloaded);
    fp_wq_destroy(&q);
}

static void
test_rising_load_fills_slots_first(void)
{
    struct fp_wq q;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 16), 0);
    fp_wq_demand(&q, 100, 0); /* ends the first (empty) window */
    /* 128 requests, none finished yet, 80 slots newly taken: the servers take the load. */
    window(&q, 100, 128, 0, 80);
    CU_ASSERT_FALSE(q.overloaded);
    /* The same with every slot already held from the start, until the four windows in a row
     * (the first included: 1.6 times what it served) make an interval: overload. */
    window(&q, 125, 128, 0, 80);
    window(&q, 150, 128, 0, 80);
    CU_ASSERT_FALSE(q.overloaded);
    window(&q, 175, 128, 0, 80);
    CU_ASSERT_TRUE(q.overloaded);
    fp_wq_destroy(&q);
}

static void
test_standing_queue_caps(void)
{
    struct fp_wq q;
    uint64_t     d = 0;
    int          i;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 16), 0);
    q.detect_ms = 25;
    CU_ASSERT_PTR_NULL(fp_wq_pop_stale(&q, 0, 5));
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 5), UINT32_MAX);
    for (i = 0; i < 8; i++) {
        fp_wq_push(&q, &items[i], 0);
    }
    fp_wq_pop(&q, 10, true, 5, 100, &d); /* above target: the interval starts */
    CU_ASSERT_FALSE(q.standing);
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 100), UINT32_MAX);
    fp_wq_pop(&q, 110, true, 5, 100, &d); /* above target for an interval: standing */
    CU_ASSERT_TRUE(q.standing);
    CU_ASSERT_FALSE(q.lifo); /* standing is not overload: still FIFO, nothing stale */
    CU_ASSERT_PTR_NULL(fp_wq_pop_stale(&q, 120, 5));
    /* Two pops in 110 ms say nothing of what the servers do (most requests never queue):
     * no cap until a window with the queue held at both ends measured the service. */
    CU_ASSERT_EQUAL(q.rate_per_s, 0);
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 100), UINT32_MAX);
    fp_wq_demand(&q, 110, 32); /* ends the first window: 6 waiting, 32 slots held */
    window(&q, 110, 10, 20, 32);
    CU_ASSERT_EQUAL(q.rate_per_s, 800); /* 20 finished in 25 ms */
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 5), 4);
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 100), 80);
    /* A window stretched by a stall measures the stall: left out. */
    window_len(&q, 135, 60, 10, 20, 32);
    CU_ASSERT_EQUAL(q.rate_per_s, 800);
    /* Another full window: a moving average. */
    window(&q, 195, 10, 40, 32);
    CU_ASSERT_EQUAL(q.rate_per_s, 1000); /* (3 * 800 + 1600) / 4 */
    /* Service empties it: no longer standing. */
    while (fp_wq_pop(&q, 220, true, 5, 100, &d) != NULL) {
    }
    CU_ASSERT_FALSE(q.standing);
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 100), UINT32_MAX);
    fp_wq_destroy(&q);
}

static void
test_zero_capacity_refuses(void)
{
    struct fp_wq q;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 0), 0);
    CU_ASSERT_EQUAL(fp_wq_push(&q, &items[0], 0), -ENOBUFS);
    CU_ASSERT_PTR_NULL(fp_wq_pop_oldest(&q));
    fp_wq_destroy(&q);
}

int
main(void)
{
    static const struct fp_cu_test tests[] = {
            {"fifo and capacity", test_fifo_and_capacity},
            {"remove leaves hole", test_remove_leaves_hole},
            {"drop oldest", test_drop_oldest},
            {"overload turns lifo and sheds stale", test_overload_turns_lifo_and_sheds_stale},
            {"burst after a stall is not overload", test_burst_after_stall_is_not_overload},
            {"servers that stall are not overload", test_servers_stall_is_not_overload},
            {"rising load fills slots first", test_rising_load_fills_slots_first},
            {"standing queue caps", test_standing_queue_caps},
            {"zero capacity refuses", test_zero_capacity_refuses},
            {NULL, NULL},
    };

    return fp_cu_run("queue", tests);
}
