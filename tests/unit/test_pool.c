/* SPDX-License-Identifier: BSD-3-Clause */
/* Fixed-size pools, the SPSC ring and the backend picker: capacity, order and refusal. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "net/pool.h"
#include "net/ring.h"
#include "proxy/backend.h"
#include "tests/unit/cu_main.h"

static void
test_pool_exhausts_and_recycles_lifo(void)
{
    struct fp_pool p;
    void          *a;
    void          *b;
    void          *c;

    CU_ASSERT_EQUAL_FATAL(fp_pool_init(&p, 100, 2), 0);
    CU_ASSERT_EQUAL(p.elt_size, 128);
    a = fp_pool_get(&p);
    b = fp_pool_get(&p);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT_PTR_NOT_EQUAL(a, b);
    CU_ASSERT_EQUAL(fp_pool_in_use(&p), 2);
    c = fp_pool_get(&p);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(p.empty, 1);
    fp_pool_put(&p, a);
    CU_ASSERT_PTR_EQUAL(fp_pool_get(&p), a); /* the hot one comes back first */
    fp_pool_put(&p, a);
    fp_pool_put(&p, b);
    CU_ASSERT_EQUAL(fp_pool_in_use(&p), 0);
    fp_pool_destroy(&p);
    CU_ASSERT_EQUAL(fp_pool_init(&p, 10, 0), -EINVAL);
}

static void
test_ring_full_rejects(void)
{
    struct fp_ring r;
    struct fp_msg  m = {1, 2, 3};
    struct fp_msg  out[4];

    CU_ASSERT_EQUAL(fp_ring_init(&r, 3, sizeof(struct fp_msg)), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(fp_ring_init(&r, 2, sizeof(struct fp_msg)), 0);
    CU_ASSERT_EQUAL(fp_ring_sp_enqueue(&r, &m), 0);
    m.val = 4;
    CU_ASSERT_EQUAL(fp_ring_sp_enqueue(&r, &m), 0);
    CU_ASSERT_EQUAL(fp_ring_sp_enqueue(&r, &m), -ENOBUFS);
    CU_ASSERT_EQUAL(fp_ring_sc_dequeue_burst(&r, out, 4), 2);
    CU_ASSERT_EQUAL(out[0].val, 3);
    CU_ASSERT_EQUAL(out[1].val, 4);
    CU_ASSERT_EQUAL(fp_ring_sc_dequeue_burst(&r, out, 4), 0);
    fp_ring_destroy(&r);
}

#define RING_N 200000

static void *
producer(void *arg)
{
    struct fp_ring *r = arg;
    struct fp_msg   m = {0, 0, 0};
    uint64_t        i;

    for (i = 1; i <= RING_N; i++) {
        m.val = i;
        while (fp_ring_sp_enqueue(r, &m) != 0) {
            sched_yield();
        }
    }
    return NULL;
}

static void
test_ring_two_threads_in_order(void)
{
    struct fp_ring r;
    struct fp_msg  out[16];
    pthread_t      t;
    uint64_t       expect = 1;
    unsigned       n;
    unsigned       i;
    int            ok = 1;

    CU_ASSERT_EQUAL_FATAL(fp_ring_init(&r, 64, sizeof(struct fp_msg)), 0);
    pthread_create(&t, NULL, producer, &r);
    while (expect <= RING_N) {
        n = fp_ring_sc_dequeue_burst(&r, out, 16);
        for (i = 0; i < n; i++) {
            ok &= out[i].val == expect++;
        }
        if (n == 0) {
            sched_yield();
        }
    }
    pthread_join(t, NULL);
    CU_ASSERT_TRUE(ok);
    fp_ring_destroy(&r);
}

static void
test_backend_weighted_roundrobin(void)
{
    struct fp_server_conf  servers[3];
    struct fp_backend_conf be;
    struct fp_conf         conf;
    struct fp_worker       w;
    uint32_t               rr = 0;
    unsigned               count[3] = {0, 0, 0};
    unsigned               i;

    memset(servers, 0, sizeof(servers));
    memset(&be, 0, sizeof(be));
    memset(&conf, 0, sizeof(conf));
    memset(&w, 0, sizeof(w));
    servers[0].weight = 3;
    servers[1].weight = 0;
    servers[2].weight = 1;
    be.servers = servers;
    be.nb_servers = 3;
    fp_backend_conf_weights(&be);
    conf.backends = &be;
    conf.nb_backends = 1;
    w.conf = &conf;
    w.rr_next = &rr;
    for (i = 0; i < 400; i++) {
        count[fp_backend_pick_server(&w, 0, 0)]++;
    }
    CU_ASSERT_EQUAL(count[0], 300);
    CU_ASSERT_EQUAL(count[1], 0);
    CU_ASSERT_EQUAL(count[2], 100);
    /* Tried servers are skipped whatever the cursor says. */
    for (i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(fp_backend_pick_server(&w, 0, 1ULL << 0), 2);
        CU_ASSERT_EQUAL(fp_backend_pick_server(&w, 0, 1ULL << 2), 0);
    }
    CU_ASSERT_EQUAL(fp_backend_pick_server(&w, 0, (1ULL << 0) | (1ULL << 2)), UINT32_MAX);
    servers[0].weight = 0;
    servers[2].weight = 0;
    fp_backend_conf_weights(&be);
    CU_ASSERT_EQUAL(fp_backend_pick_server(&w, 0, 0), UINT32_MAX);
}

int
main(void)
{
    static const struct fp_cu_test tests[] = {
        {"pool exhausts and recycles lifo", test_pool_exhausts_and_recycles_lifo},
        {"ring full rejects", test_ring_full_rejects},
        {"ring two threads in order", test_ring_two_threads_in_order},
        {"backend weighted roundrobin", test_backend_weighted_roundrobin},
        {NULL, NULL},
    };

    return fp_cu_run("pool", tests);
}
