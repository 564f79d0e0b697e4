/* SPDX-License-Identifier: BSD-3-Clause */
/* The request queue: capacity, holes, oldest-first drop, and the FIFO/LIFO switch. */
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

static void
test_standing_queue_turns_lifo(void)
{
    struct fp_wq q;
    uint64_t     d = 0;
    int          i;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 16), 0);
    for (i = 0; i < 8; i++) {
        fp_wq_push(&q, &items[i], (uint64_t)i);
    }
    /* Oldest waited 50 ms > 5 ms target, but not yet for an interval: still FIFO. */
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 50, true, 5, 100, &d), &items[0]);
    CU_ASSERT_FALSE(q.lifo);
    /* Still above the target 100 ms later: standing, the newest goes first. */
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 150, true, 5, 100, &d), &items[7]);
    CU_ASSERT_TRUE(q.lifo);
    CU_ASSERT_EQUAL(d, 143);
    CU_ASSERT_EQUAL(q.lifo_switches, 1);
    /* With LIFO not allowed the same state serves FIFO. */
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 150, false, 5, 100, &d), &items[1]);
    CU_ASSERT_FALSE(q.lifo);
    /* Standing again; then the stale ones go and only young requests wait: a young head does
     * not end the standing state (only an empty queue does), the newest still goes first. */
    fp_wq_pop(&q, 160, true, 5, 100, &d);
    fp_wq_pop(&q, 260, true, 5, 100, &d);
    CU_ASSERT_TRUE(q.lifo);
    fp_wq_push(&q, &items[10], 259);
    while (fp_wq_pop_stale(&q, 260, 5) != NULL) {
    }
    CU_ASSERT_EQUAL(q.live, 1);
    fp_wq_push(&q, &items[11], 260);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 261, true, 5, 100, &d), &items[11]);
    CU_ASSERT_TRUE(q.lifo);
    /* Emptying the queue resets it. */
    while (fp_wq_pop(&q, 400, true, 5, 100, &d) != NULL) {
    }
    fp_wq_push(&q, &items[9], 401);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop(&q, 402, true, 5, 100, &d), &items[9]);
    CU_ASSERT_FALSE(q.lifo);
    fp_wq_destroy(&q);
}

static void
test_standing_queue_sheds_stale_and_caps(void)
{
    struct fp_wq q;
    uint64_t     d = 0;
    int          i;

    CU_ASSERT_EQUAL_FATAL(fp_wq_init(&q, 16), 0);
    CU_ASSERT_PTR_NULL(fp_wq_pop_stale(&q, 0, 5));
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 5), UINT32_MAX);
    for (i = 0; i < 8; i++) {
        fp_wq_push(&q, &items[i], 0);
    }
    fp_wq_pop(&q, 10, true, 5, 100, &d);  /* above target: the interval starts */
    fp_wq_pop(&q, 110, true, 5, 100, &d); /* standing: LIFO; 2 pops in 110 ms */
    CU_ASSERT_TRUE(q.lifo);
    CU_ASSERT_EQUAL(q.rate_per_s, 9); /* 1 pop over the 100 ms window that closed */
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 5), 1);
    CU_ASSERT_EQUAL(fp_wq_standing_cap(&q, 1000), 9);
    /* Heads older than the target go, oldest first, and only while the queue stands. */
    CU_ASSERT_PTR_EQUAL(fp_wq_pop_stale(&q, 120, 5), &items[1]);
    CU_ASSERT_PTR_EQUAL(fp_wq_pop_stale(&q, 120, 5), &items[2]);
    fp_wq_push(&q, &items[9], 118);
    while (fp_wq_pop_stale(&q, 120, 5) != NULL) {
    }
    CU_ASSERT_EQUAL(q.live, 1); /* items[9] waited 2 ms: kept */
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
        {"standing queue turns lifo", test_standing_queue_turns_lifo},
        {"standing queue sheds stale and caps", test_standing_queue_sheds_stale_and_caps},
        {"zero capacity refuses", test_zero_capacity_refuses},
        {NULL, NULL},
    };

    return fp_cu_run("queue", tests);
}
