/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test and benchmark harness: two stack instances (A = 10.0.0.1, B = 10.0.0.2) joined by the
 * in-memory link, driven in virtual time. When neither instance has work, time jumps to the next
 * frame delivery or timer, so a test of minutes of TCP time runs in milliseconds.
 */
#ifndef FP_TESTS_NET_HARNESS_H
#define FP_TESTS_NET_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "net/stack/link_mem.h"
#include "net/stack/stack.h"

#define H_ADDR_A 0x0a000001u
#define H_ADDR_B 0x0a000002u

struct h_pair {
    struct fp_memlink *ml;
    struct fp_stack   *a;
    struct fp_stack   *b;
    uint64_t           now_us;
    uint32_t           pkts0_a; /* pool levels right after creation */
    uint32_t           pkts0_b;
    uint32_t           tcbs0_a;
    uint32_t           tcbs0_b;
};

/* Creates the pair. conf (may be NULL) is the template for both instances. Returns 0 or -errno. */
int h_pair_create(struct h_pair *p, const struct fp_memlink_conf *lc,
                  const struct fp_stack_conf *conf);

void h_pair_destroy(struct h_pair *p);

/* One round: polls both instances, then advances virtual time. Returns the work done. */
uint32_t h_pair_step(struct h_pair *p);

/* Steps until done(arg) is true or max_us of virtual time passed. Returns done's last value. */
bool h_pair_run(struct h_pair *p, bool (*done)(void *arg), void *arg, uint64_t max_us);

/* Steps for us microseconds of virtual time. */
void h_pair_run_for(struct h_pair *p, uint64_t us);

/* True when both pools are back at their initial level (no leak). */
bool h_pair_pools_idle(const struct h_pair *p);

/* Byte i of the deterministic test stream with seed s. */
uint8_t h_pattern(uint64_t s, uint64_t i);

/* Fills buf with len pattern bytes starting at offset off. */
void h_pattern_fill(uint64_t s, uint64_t off, uint8_t *buf, uint32_t len);

/* Returns the scale-down divisor for sizes: 1 normally, 8 under ASan, or $FP_TEST_SCALE. */
uint32_t h_scale(void);

/*
 * Builds a TCP segment from saddr:sport to the instance `to` (port dport), with optional options
 * (optlen a multiple of 4) and plen zero bytes of payload, and feeds it to `to` at p->now_us.
 */
void h_inject_tcp(struct h_pair *p, struct fp_stack *to, uint32_t saddr, uint16_t sport,
                  uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t wnd,
                  const uint8_t *opt, uint32_t optlen, uint32_t plen);

/*
 * Builds an IPv4 packet (protocol proto, fragment field frag, len bytes of L4 data at l4) from
 * saddr to the instance `to` and feeds it at p->now_us. The L4 checksum is the caller's.
 */
void h_inject_ip(struct h_pair *p, struct fp_stack *to, uint32_t saddr, uint8_t proto,
                 uint16_t frag, const uint8_t *l4, uint32_t len);

/* Reads counter c of st. */
uint64_t h_ctr(const struct fp_stack *st, enum fp_stk_counter c);

/* Prints the non-zero counters of st to stderr, prefixed by name. */
void h_dump_counters(const char *name, const struct fp_stack *st);

#endif /* FP_TESTS_NET_HARNESS_H */
