/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * net/rss: the Toeplitz hash against the Microsoft RSS verification vectors and against DPDK's
 * rte_softrss (when the build has DPDK), the redirection table, and the RSS-aware port classes
 * (every candidate hashes back to the worker's queue; a pick reaches every such port; bounded
 * tries, address moves and exhaustion are counted).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fp_build_config.h"
#if FP_HAVE_DPDK
#include <rte_thash.h>
#endif

#include "net/rss.h"
#include "tests/unit/cu_main.h"

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/*
 * Microsoft, "Verifying the RSS Hash Calculation" (also the 82599 datasheet §7.1.2.8.3): IPv4
 * with the default key. The table lists destination first; the hash input is source first.
 */
static const struct {
    uint32_t daddr;
    uint16_t dport;
    uint32_t saddr;
    uint16_t sport;
    uint32_t hash_ip;
    uint32_t hash_tcp;
} ms_v4[] = {
        {IP4(161, 142, 100, 80), 1766, IP4(66, 9, 149, 187), 2794, 0x323e8fc2, 0x51ccc178},
        {IP4(65, 69, 140, 83), 4739, IP4(199, 92, 111, 2), 14230, 0xd718262a, 0xc626b0ea},
        {IP4(12, 22, 207, 184), 38024, IP4(24, 19, 198, 95), 12898, 0xd2d0a5de, 0x5c2b394a},
        {IP4(209, 142, 163, 6), 2217, IP4(38, 27, 205, 30), 48228, 0x82989176, 0xafc7327f},
        {IP4(202, 188, 127, 2), 1303, IP4(153, 39, 163, 191), 44251, 0x5d1809c5, 0x10e828a2},
};

static struct fp_rss rss; /* 13 KiB: kept off the stack */

static uint64_t rng = 88172645463325252ull;

static uint32_t
rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
test_ms_vectors(void)
{
    uint8_t  in[FP_RSS_V4_INPUT_LEN];
    unsigned i;

    CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, NULL, 0, 128, 4), 0);
    CU_ASSERT_EQUAL(fp_rss_default_key[0], 0x6d);
    CU_ASSERT_EQUAL(fp_rss_default_key[FP_RSS_KEY_LEN - 1], 0xfa);
    for (i = 0; i < sizeof(ms_v4) / sizeof(ms_v4[0]); i++) {
        CU_ASSERT_EQUAL(fp_rss_hash_v4(&rss, ms_v4[i].saddr, ms_v4[i].daddr, ms_v4[i].sport,
                                       ms_v4[i].dport),
                        ms_v4[i].hash_tcp);
        put32(in, ms_v4[i].saddr);
        put32(in + 4, ms_v4[i].daddr);
        CU_ASSERT_EQUAL(fp_rss_toeplitz(fp_rss_default_key, FP_RSS_KEY_LEN, in, 8),
                        ms_v4[i].hash_ip);
        in[8] = (uint8_t)(ms_v4[i].sport >> 8);
        in[9] = (uint8_t)ms_v4[i].sport;
        in[10] = (uint8_t)(ms_v4[i].dport >> 8);
        in[11] = (uint8_t)ms_v4[i].dport;
        CU_ASSERT_EQUAL(fp_rss_toeplitz(fp_rss_default_key, FP_RSS_KEY_LEN, in, 12),
                        ms_v4[i].hash_tcp);
        CU_ASSERT_EQUAL(
                fp_rss_queue(&rss, ms_v4[i].saddr, ms_v4[i].daddr, ms_v4[i].sport, ms_v4[i].dport),
                (ms_v4[i].hash_tcp & 127) % 4);
    }
}

/* The table-driven hash equals the bitwise definition, for random keys and tuples. */
static void
test_table_matches_reference(void)
{
    uint8_t  key[FP_RSS_KEY_MAX];
    uint8_t  in[FP_RSS_V4_INPUT_LEN];
    uint32_t s, d;
    uint16_t sp, dp;
    unsigned k, i, j;

    for (k = 0; k < 20; k++) {
        for (j = 0; j < sizeof(key); j++) {
            key[j] = (uint8_t)rnd32();
        }
        CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, key, k % 2 == 0 ? 40 : 52, 512, 3), 0);
        for (i = 0; i < 500; i++) {
            s = rnd32();
            d = rnd32();
            sp = (uint16_t)rnd32();
            dp = (uint16_t)rnd32();
            put32(in, s);
            put32(in + 4, d);
            in[8] = (uint8_t)(sp >> 8);
            in[9] = (uint8_t)sp;
            in[10] = (uint8_t)(dp >> 8);
            in[11] = (uint8_t)dp;
            CU_ASSERT_EQUAL(fp_rss_hash_v4(&rss, s, d, sp, dp),
                            fp_rss_toeplitz(key, sizeof(key), in, sizeof(in)));
        }
    }
}

static void
test_config_checks(void)
{
    uint16_t reta[4] = {1, 0, 1, 1};
    uint8_t  key[FP_RSS_KEY_MAX + 1] = {0};

    CU_ASSERT_EQUAL(fp_rss_init(&rss, NULL, 0, 0, 1), -EINVAL);
    CU_ASSERT_EQUAL(fp_rss_init(&rss, NULL, 0, 96, 2), -EINVAL);
    CU_ASSERT_EQUAL(fp_rss_init(&rss, NULL, 0, 4096, 2), -EINVAL);
    CU_ASSERT_EQUAL(fp_rss_init(&rss, NULL, 0, 128, 0), -EINVAL);
    CU_ASSERT_EQUAL(fp_rss_init(&rss, NULL, 0, 4, 5), -EINVAL);
    CU_ASSERT_EQUAL(fp_rss_init(&rss, key, FP_RSS_KEY_MIN - 1, 128, 2), -EINVAL);
    CU_ASSERT_EQUAL(fp_rss_init(&rss, key, FP_RSS_KEY_MAX + 1, 128, 2), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, NULL, 0, 8, 3), 0);
    CU_ASSERT_EQUAL(rss.reta[0], 0);
    CU_ASSERT_EQUAL(rss.reta[4], 1);
    CU_ASSERT_EQUAL(rss.reta[7], 1);
    CU_ASSERT_EQUAL(fp_rss_set_reta(&rss, reta, 3, 2), -EINVAL);
    reta[2] = 2;
    CU_ASSERT_EQUAL(fp_rss_set_reta(&rss, reta, 4, 2), -EINVAL);
    CU_ASSERT_EQUAL(rss.reta_size, 8); /* unchanged on error */
    reta[2] = 1;
    CU_ASSERT_EQUAL(fp_rss_set_reta(&rss, reta, 4, 2), 0);
    CU_ASSERT_EQUAL(rss.reta_size, 4);
    CU_ASSERT_EQUAL(rss.nb_queues, 2);
    /* Loaded table: queue = reta[hash & 3]. */
    CU_ASSERT_EQUAL(
            fp_rss_queue(&rss, ms_v4[0].saddr, ms_v4[0].daddr, ms_v4[0].sport, ms_v4[0].dport),
            reta[ms_v4[0].hash_tcp & 3]);
}

#if FP_HAVE_DPDK
/* Cross-check with DPDK's software Toeplitz: {saddr, daddr, sport << 16 | dport}, host order. */
static void
test_dpdk_softrss(void)
{
    uint8_t  key[FP_RSS_KEY_LEN];
    uint32_t tuple[RTE_THASH_V4_L4_LEN];
    unsigned k, i, j;

    CU_ASSERT_EQUAL_FATAL(RTE_THASH_V4_L4_LEN, 3);
    for (k = 0; k < 20; k++) {
        for (j = 0; j < sizeof(key); j++) {
            key[j] = k == 0 ? fp_rss_default_key[j] : (uint8_t)rnd32();
        }
        CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, key, sizeof(key), 128, 2), 0);
        for (i = 0; i < 2000; i++) {
            tuple[0] = rnd32();
            tuple[1] = rnd32();
            tuple[2] = rnd32();
            CU_ASSERT_EQUAL(fp_rss_hash_v4(&rss, tuple[0], tuple[1], (uint16_t)(tuple[2] >> 16),
                                           (uint16_t)tuple[2]),
                            rte_softrss(tuple, RTE_THASH_V4_L4_LEN, key));
        }
    }
    /* And DPDK agrees with the Microsoft vectors in this order. */
    for (i = 0; i < sizeof(ms_v4) / sizeof(ms_v4[0]); i++) {
        tuple[0] = ms_v4[i].saddr;
        tuple[1] = ms_v4[i].daddr;
        tuple[2] = (uint32_t)ms_v4[i].sport << 16 | ms_v4[i].dport;
        CU_ASSERT_EQUAL(rte_softrss(tuple, RTE_THASH_V4_L4_LEN, fp_rss_default_key),
                        ms_v4[i].hash_tcp);
    }
}
#endif

/* A NIC-like table: random entries, every queue present at least once. */
static void
random_reta(uint16_t size, uint16_t nb_queues)
{
    uint16_t reta[FP_RSS_RETA_MAX];
    uint16_t i;

    for (i = 0; i < size; i++) {
        reta[i] = i < nb_queues ? i : (uint16_t)(rnd32() % nb_queues);
    }
    CU_ASSERT_EQUAL_FATAL(fp_rss_set_reta(&rss, reta, size, nb_queues), 0);
}

/*
 * For each queue, a pick of nb_owned * range candidates from one address reaches exactly the
 * ports of the range whose reply tuple hashes to the queue (brute force), each candidate hashing
 * to the queue.
 */
static void
check_pick_covers(uint16_t queue, uint32_t raddr, uint16_t rport, uint32_t laddr, uint16_t lo,
                  uint16_t hi)
{
    static bool               want[65536];
    static bool               got[65536];
    struct fp_rss_ports_conf  pc = {.rss = &rss,
                                    .queue = queue,
                                    .laddrs = &laddr,
                                    .nb_laddrs = 1,
                                    .port_lo = lo,
                                    .port_hi = hi};
    struct fp_rss_ports      *pp;
    struct fp_rss_port_iter   it;
    struct fp_rss_ports_stats st;
    uint32_t                  a;
    uint32_t                  p;
    uint32_t                  nwant = 0;
    uint32_t                  ngot = 0;
    uint16_t                  port;
    int                       rc;

    pc.max_tries = (uint32_t)rss.reta_size * (hi - lo + 1u);
    CU_ASSERT_EQUAL_FATAL(fp_rss_ports_create(&pc, &pp), 0);
    memset(want, 0, sizeof(want));
    memset(got, 0, sizeof(got));
    for (p = lo; p <= hi; p++) {
        want[p] = fp_rss_queue(&rss, raddr, laddr, rport, (uint16_t)p) == queue;
        nwant += want[p];
    }
    fp_rss_ports_begin(pp, raddr, rport, &it);
    while ((rc = fp_rss_ports_next(pp, &it, &a, &port)) == 0) {
        CU_ASSERT_EQUAL(a, laddr);
        CU_ASSERT_TRUE(port >= lo && port <= hi);
        CU_ASSERT_TRUE(want[port]);
        if (!got[port]) {
            got[port] = true;
            ngot++;
        }
    }
    CU_ASSERT_EQUAL(rc, -EADDRNOTAVAIL);
    CU_ASSERT_EQUAL(ngot, nwant);
    fp_rss_ports_stats(pp, &st);
    CU_ASSERT_EQUAL(st.picks, 1);
    CU_ASSERT_EQUAL(st.exhausted, 1);
    CU_ASSERT_EQUAL(st.candidates, st.misses + 1);
    fp_rss_ports_destroy(pp);
}

static void
test_ports_cover_queue(void)
{
    uint16_t q;

    CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, NULL, 0, 128, 2), 0);
    for (q = 0; q < 2; q++) {
        check_pick_covers(q, IP4(10, 0, 0, 1), 80, IP4(10, 0, 0, 2), 32768, 36000);
    }
    CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, NULL, 0, 512, 4), 0);
    random_reta(512, 4);
    for (q = 0; q < 4; q++) {
        check_pick_covers(q, rnd32(), (uint16_t)rnd32(), rnd32(), 40000, 44000);
    }
    /* A range smaller than the table: most classes are empty and are skipped. */
    check_pick_covers(3, IP4(192, 168, 1, 1), 443, IP4(192, 168, 1, 2), 50000, 50100);
}

/* Every candidate of many picks to many peers hashes back to the queue; few repeats per pick. */
static void
test_ports_random_peers(void)
{
    uint32_t                  laddr = IP4(10, 1, 0, 2);
    struct fp_rss_ports_conf  pc = {.rss = &rss, .laddrs = &laddr, .nb_laddrs = 1};
    struct fp_rss_ports      *pp;
    struct fp_rss_port_iter   it;
    struct fp_rss_ports_stats st;
    uint32_t                  raddr, a, i, k;
    uint16_t                  rport, port, first;
    bool                      ok = true;

    CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, NULL, 0, 128, 8), 0);
    random_reta(128, 8);
    for (pc.queue = 0; pc.queue < 8; pc.queue++) {
        CU_ASSERT_EQUAL_FATAL(fp_rss_ports_create(&pc, &pp), 0);
        for (i = 0; i < 2000; i++) {
            raddr = rnd32();
            rport = (uint16_t)(rnd32() | 1);
            fp_rss_ports_begin(pp, raddr, rport, &it);
            CU_ASSERT_EQUAL_FATAL(fp_rss_ports_next(pp, &it, &a, &first), 0);
            ok = ok && fp_rss_queue(&rss, raddr, a, rport, first) == pc.queue;
            ok = ok && first >= FP_RSS_PORT_LO && first <= FP_RSS_PORT_HI;
            for (k = 0; k < 3; k++) {
                CU_ASSERT_EQUAL_FATAL(fp_rss_ports_next(pp, &it, &a, &port), 0);
                ok = ok && fp_rss_queue(&rss, raddr, a, rport, port) == pc.queue;
                ok = ok && port != first;
            }
        }
        fp_rss_ports_stats(pp, &st);
        CU_ASSERT_EQUAL(st.picks, 2000);
        CU_ASSERT_EQUAL(st.candidates, 8000);
        CU_ASSERT_EQUAL(st.misses, 6000);
        CU_ASSERT_EQUAL(st.exhausted, 0);
        fp_rss_ports_destroy(pp);
    }
    CU_ASSERT_TRUE(ok);
}

/* max_tries per address, then the next address, then -EADDRNOTAVAIL; all counted. */
static void
test_ports_addresses_and_exhaustion(void)
{
    uint32_t                 laddrs[3] = {IP4(10, 2, 0, 2), IP4(10, 2, 0, 3), IP4(10, 2, 0, 4)};
    struct fp_rss_ports_conf pc = {
            .rss = &rss, .queue = 1, .laddrs = laddrs, .nb_laddrs = 3, .max_tries = 5};
    struct fp_rss_ports      *pp;
    struct fp_rss_port_iter   it;
    struct fp_rss_ports_stats st;
    uint32_t                  a;
    uint16_t                  port;
    unsigned                  i;

    CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, NULL, 0, 128, 2), 0);
    CU_ASSERT_EQUAL_FATAL(fp_rss_ports_create(&pc, &pp), 0);
    fp_rss_ports_begin(pp, IP4(10, 2, 0, 1), 8080, &it);
    for (i = 0; i < 15; i++) {
        CU_ASSERT_EQUAL_FATAL(fp_rss_ports_next(pp, &it, &a, &port), 0);
        CU_ASSERT_EQUAL(a, laddrs[i / 5]);
        CU_ASSERT_EQUAL(fp_rss_queue(&rss, IP4(10, 2, 0, 1), a, 8080, port), 1);
    }
    CU_ASSERT_EQUAL(fp_rss_ports_next(pp, &it, &a, &port), -EADDRNOTAVAIL);
    CU_ASSERT_EQUAL(fp_rss_ports_next(pp, &it, &a, &port), -EADDRNOTAVAIL);
    fp_rss_ports_stats(pp, &st);
    CU_ASSERT_EQUAL(st.picks, 1);
    CU_ASSERT_EQUAL(st.candidates, 15);
    CU_ASSERT_EQUAL(st.misses, 14);
    CU_ASSERT_EQUAL(st.addr_moves, 2);
    CU_ASSERT_EQUAL(st.exhausted, 2);
    fp_rss_ports_destroy(pp);
}

static void
test_ports_conf_checks(void)
{
    uint32_t                 laddr = IP4(10, 3, 0, 2);
    struct fp_rss_ports_conf pc = {.rss = &rss, .queue = 0, .laddrs = &laddr, .nb_laddrs = 1};
    struct fp_rss_ports     *pp = NULL;
    uint16_t                 reta[4] = {0, 0, 2, 0};

    CU_ASSERT_EQUAL_FATAL(fp_rss_init(&rss, NULL, 0, 4, 3), 0);
    pc.queue = 3;
    CU_ASSERT_EQUAL(fp_rss_ports_create(&pc, &pp), -EINVAL);
    pc.queue = 0;
    pc.nb_laddrs = 0;
    CU_ASSERT_EQUAL(fp_rss_ports_create(&pc, &pp), -EINVAL);
    pc.nb_laddrs = FP_RSS_LADDR_MAX + 1;
    CU_ASSERT_EQUAL(fp_rss_ports_create(&pc, &pp), -EINVAL);
    pc.nb_laddrs = 1;
    pc.port_lo = 0;
    pc.port_hi = 100;
    CU_ASSERT_EQUAL(fp_rss_ports_create(&pc, &pp), -EINVAL);
    pc.port_lo = 200;
    CU_ASSERT_EQUAL(fp_rss_ports_create(&pc, &pp), -EINVAL);
    /* A queue the table never names has no port. */
    CU_ASSERT_EQUAL_FATAL(fp_rss_set_reta(&rss, reta, 4, 3), 0);
    pc.port_lo = 0;
    pc.port_hi = 0;
    pc.queue = 1;
    CU_ASSERT_EQUAL(fp_rss_ports_create(&pc, &pp), -ENOENT);
    CU_ASSERT_PTR_NULL(pp);
    pc.queue = 2;
    CU_ASSERT_EQUAL(fp_rss_ports_create(&pc, &pp), 0);
    fp_rss_ports_destroy(pp);
}

int
main(void)
{
    static const struct fp_cu_test tests[] = {
        {"microsoft_vectors", test_ms_vectors},
        {"table_matches_reference", test_table_matches_reference},
        {"config_checks", test_config_checks},
#if FP_HAVE_DPDK
        {"dpdk_softrss", test_dpdk_softrss},
#endif
        {"ports_cover_queue", test_ports_cover_queue},
        {"ports_random_peers", test_ports_random_peers},
        {"ports_addresses_and_exhaustion", test_ports_addresses_and_exhaustion},
        {"ports_conf_checks", test_ports_conf_checks},
        {NULL, NULL},
    };

    return fp_cu_run("rss", tests);
}
