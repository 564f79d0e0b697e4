/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A stack instance: one per worker. fp_stack_create() allocates every pool the instance will
 * ever use; afterwards the data path never allocates. All calls on an instance come from one
 * thread; the only cross-thread operation is fp_stack_counters(). Time is injected: each call that
 * may do protocol work takes now_us (a monotonic clock, or virtual time in tests).
 */
#ifndef FP_NET_STACK_STACK_H
#define FP_NET_STACK_STACK_H

#include <stdint.h>

#include "net/stack/stack_types.h"

struct fp_link;

/*
 * Defaults for fields left 0 in struct fp_stack_conf: mtu 1500, nb_pkts 4096, nb_tcbs 1024,
 * arp_entries 64, arp_wait_max 8, arp_timeout_ms 300000, snd_buf and rcv_buf 262144,
 * rto_min_ms 200 (RFC 6298 says 1 s; 200 ms is the Linux value, fit for data-centre RTTs),
 * rto_max_ms 60000, rto_init_ms 1000, max_rexmt 12, syn_rexmt 5, time_wait_ms 2000 (much shorter
 * than 2*MSL: a proxy that opens many connections cannot hold them for minutes; timestamps
 * protect reuse), delack_ms 40, keepalive off (intvl 75000, probes 9 when idle is set),
 * challenge_ack_limit 1000.
 */
void fp_stack_conf_defaults(struct fp_stack_conf *conf);

/*
 * Creates an instance from conf (copied; 0 fields take defaults) at time now_us. Returns 0 and
 * *out, or -EINVAL (no address), -ENOMEM. Setup time only: this allocates.
 */
int fp_stack_create(const struct fp_stack_conf *conf, uint64_t now_us, struct fp_stack **out);

/*
 * Drops every connection silently and frees every buffer the instance holds (queues, ARP waits,
 * unsent frames) back to the pools they came from, without freeing memory. Needed before
 * destroying instances that hold each other's buffers (the in-memory link, a zero-copy link
 * whose buffers belong to a NIC mempool).
 */
void fp_stack_shutdown(struct fp_stack *st);

/* Shuts the instance down and frees all its memory. */
void fp_stack_destroy(struct fp_stack *st);

/*
 * Attaches link (not owned; it must outlive the instance) and announces our address with a
 * gratuitous ARP. The instance's MAC is conf.mac if set, else link->mac.
 */
void fp_stack_attach_link(struct fp_stack *st, struct fp_link *link, uint64_t now_us);

/*
 * Does one round of work at now_us: receives up to budget bursts from the link, runs due timers,
 * delivers application callbacks and flushes transmit frames. Returns the number of frames
 * received plus timers fired (0 = idle). When the last burst was full (frames still wait), the
 * timers wait for a later round, for at most FP_STK_TIMER_DEFER_MAX rounds in a row
 * (counter TIMERS_DEFERRED).
 */
uint32_t fp_stack_poll(struct fp_stack *st, uint64_t now_us, uint32_t budget);

/*
 * Processes n received frames at now_us (for links that push frames instead of being polled).
 * Takes ownership of the frames. Delivers callbacks and flushes transmit frames before returning.
 */
void fp_stack_input(struct fp_stack *st, struct fp_pkt **pkts, uint16_t n, uint64_t now_us);

/* Earliest armed timer deadline (us), UINT64_MAX if none. O(wheel slots): for idle sleeps. */
uint64_t fp_stack_next_timer_us(const struct fp_stack *st);

/*
 * Copies the counters (indexed by enum fp_stk_counter) into out. Safe from any thread: each
 * counter is a relaxed atomic 64-bit load, so values are individually consistent.
 */
void fp_stack_counters(const struct fp_stack *st, uint64_t out[FP_STK_CTR_NB]);

/* Human-readable description of counter i, or NULL past the end. */
const char *fp_stack_counter_name(unsigned int i);

/* Packet buffers and connections available now (pool levels). */
uint32_t fp_stack_pkts_avail(const struct fp_stack *st);
uint32_t fp_stack_tcbs_avail(const struct fp_stack *st);

/* The instance's packet pool: links allocate received frames here. */
struct fp_pktpool *fp_stack_pktpool(struct fp_stack *st);

/*
 * Increments a counter. Only the owning thread writes; the relaxed store keeps readers on other
 * threads free of torn values without a locked instruction.
 */
static inline void
fp_stack_ctr_add(struct fp_stack *st, enum fp_stk_counter c, uint64_t v)
{
    __atomic_store_n(&st->ctr[c], st->ctr[c] + v, __ATOMIC_RELAXED);
}

static inline void
fp_stack_ctr_inc(struct fp_stack *st, enum fp_stk_counter c)
{
    fp_stack_ctr_add(st, c, 1);
}

/* Returns whether a (host order) is one of the instance's addresses: conf.addr or a source
 * address. */
static inline bool
fp_stack_is_local(const struct fp_stack *st, uint32_t a)
{
    uint32_t i;

    if (a == st->conf.addr) {
        return true;
    }
    for (i = 0; i < st->conf.nb_src_addrs; i++) {
        if (a == st->conf.src_addrs[i]) {
            return true;
        }
    }
    return false;
}

/* Queues a complete frame for transmission (flushed when the burst is full or the call ends). */
void fp_stack_tx(struct fp_stack *st, struct fp_pkt *frame);

/* Sends queued frames now. */
void fp_stack_tx_flush(struct fp_stack *st);

/* Per-instance pseudo-random numbers (xorshift64*); not cryptographic. */
uint64_t fp_stack_random(struct fp_stack *st);

/* Allocates a packet buffer, counting an empty pool. */
struct fp_pkt *fp_stack_pkt_alloc(struct fp_stack *st);

#endif /* FP_NET_STACK_STACK_H */
