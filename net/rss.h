/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Receive-side scaling as a NIC computes it, in software: the Toeplitz hash of an IPv4/TCP
 * 4-tuple (Microsoft RSS specification), a redirection table (reta) that maps the hash to a
 * queue, and the RSS-aware choice of local ports for active opens (struct fp_rss_ports), so that
 * the replies of a connection a worker opens come back on that worker's queue (issue 11 item 4).
 *
 * struct fp_rss is a value filled at start (fp_rss_init, then optionally fp_rss_set_key and
 * fp_rss_set_reta with the NIC's real key and table) and read-only afterwards: any number of
 * workers may hash with one shared instance. struct fp_rss_ports is per worker (its cursors and
 * counters change on every pick) and is used by its worker only. Plain C, no DPDK: the DPDK
 * backend, the multi-queue test link (net/stack/link_mq.c) and the unit tests all use it.
 *
 * Byte order: every address and port argument is in host order (as the stack takes them); the
 * hashed input is built in network order, as the NIC sees the header fields.
 */
#ifndef FP_NET_RSS_H
#define FP_NET_RSS_H

#include <stddef.h>
#include <stdint.h>

/* Longest key accepted (i40e/ice use 52 bytes; most NICs 40). IPv4/TCP uses the first 16. */
#define FP_RSS_KEY_MAX 52
/* The default key's length. */
#define FP_RSS_KEY_LEN 40
/* Shortest key that covers the 12-byte IPv4/TCP input (12 + 4 bytes). */
#define FP_RSS_KEY_MIN 16
/* Largest redirection table (ice has 2048 entries; ixgbe 128, i40e 512, mlx5 up to 512). */
#define FP_RSS_RETA_MAX 2048
/* Bytes of the IPv4/TCP hash input: saddr, daddr, sport, dport. */
#define FP_RSS_V4_INPUT_LEN 12

/*
 * The default key of the Microsoft RSS specification, also the default of Intel NICs
 * (82599 datasheet §7.1.2.8) and the key DPDK applications commonly program (testpmd's
 * "rss_intel_key"): 6d 5a 56 da 25 5b 0e c2 ... It is not symmetric: the two directions of a
 * flow hash differently. A proxy endpoint only ever receives one direction of each flow (the
 * client's packets to us, or the server's replies to us), so it does not need a symmetric key;
 * fp_rss_ports hashes the reply direction, which is what arrives at our NIC.
 */
extern const uint8_t fp_rss_default_key[FP_RSS_KEY_LEN];

struct fp_rss {
    uint8_t  key[FP_RSS_KEY_MAX];
    uint16_t key_len;
    uint16_t reta_size; /* power of two; reta index = hash & (reta_size - 1) */
    uint16_t nb_queues;
    uint16_t reta[FP_RSS_RETA_MAX];
    /*
     * tbl[i][v]: the hash of an input whose byte i is v and all other bytes 0. Toeplitz is linear
     * over XOR in its input bits, so the hash of any 12-byte input is the XOR of 12 lookups.
     */
    uint32_t tbl[FP_RSS_V4_INPUT_LEN][256];
};

/*
 * Initialises rss with the given key (NULL: fp_rss_default_key, key_len ignored) and a
 * redirection table of reta_size entries filled round-robin over nb_queues (entry i -> queue
 * i % nb_queues), the usual NIC default. Returns 0, or -EINVAL when reta_size is not a power of
 * two in 1..FP_RSS_RETA_MAX, nb_queues is 0 or larger than reta_size, or key_len is outside
 * FP_RSS_KEY_MIN..FP_RSS_KEY_MAX. Setup time; rss is then read-only and shareable.
 */
int fp_rss_init(struct fp_rss *rss, const uint8_t *key, size_t key_len, uint16_t reta_size,
                uint16_t nb_queues);

/* Loads another key (the NIC's, from rte_eth_dev_rss_hash_conf_get). 0 or -EINVAL as above. */
int fp_rss_set_key(struct fp_rss *rss, const uint8_t *key, size_t key_len);

/*
 * Loads a redirection table (the NIC's, from rte_eth_dev_rss_reta_query): reta_size entries,
 * each a queue below nb_queues. Returns 0 or -EINVAL (size not a power of two in
 * 1..FP_RSS_RETA_MAX, nb_queues 0, or an entry >= nb_queues); rss is unchanged on error.
 */
int fp_rss_set_reta(struct fp_rss *rss, const uint16_t *reta, uint16_t reta_size,
                    uint16_t nb_queues);

/*
 * The Toeplitz hash of the IPv4/TCP 4-tuple of a packet as received: saddr, daddr, sport, dport
 * in host order, hashed as the 12 bytes saddr|daddr|sport|dport in network order (the Microsoft
 * RSS input order). Equals rte_softrss() over {saddr, daddr, sport << 16 | dport} with the same
 * key, and the hash a NIC programmed with rss's key reports in mbuf->hash.rss. O(1): 12 lookups.
 */
uint32_t fp_rss_hash_v4(const struct fp_rss *rss, uint32_t saddr, uint32_t daddr, uint16_t sport,
                        uint16_t dport);

/* The queue a NIC programmed like rss delivers that packet to: reta[hash & (reta_size - 1)]. */
uint16_t fp_rss_queue(const struct fp_rss *rss, uint32_t saddr, uint32_t daddr, uint16_t sport,
                      uint16_t dport);

/*
 * The reference bitwise Toeplitz hash of len bytes of input with key (key_len >= len + 4), as
 * the specification defines it. Slow (one step per input bit): for tests and setup only.
 */
uint32_t fp_rss_toeplitz(const uint8_t *key, size_t key_len, const uint8_t *input, size_t len);

/*
 * ---- RSS-aware local ports for active opens ----
 *
 * Use (per worker, at connect time):
 *
 *     fp_rss_ports_begin(pp, raddr, rport, &it);
 *     while ((rc = fp_rss_ports_next(pp, &it, &laddr, &lport)) == 0) {
 *         rc = fp_tcp_connect(st, raddr, rport, lport, cb, user, &c);
 *         if (rc != -EADDRINUSE) {
 *             break;
 *         }
 *     }
 *
 * TIME_WAIT: the stack's fp_tcp_connect with an explicit lport refuses (-EADDRINUSE) a port
 * whose connection to the same peer is still open or in TIME_WAIT without timestamps; a
 * TIME_WAIT connection that used timestamps is taken over (counted as TCP_TW_REUSE), which is
 * safe because the TSval offset is a keyed hash of the 4-tuple and the clock only moves forward,
 * so the new incarnation's timestamps are above the old one's (RFC 7323 §5, RFC 6191 on the
 * peer's side). The candidate order rotates over the whole range, so a port that just closed is
 * the last one offered again.
 *
 * Several local addresses: the local address is part of the fixed part of the hash, not of the
 * port classes, so one set of classes serves every address and moving to the next address costs
 * one more fixed-part hash. Today a stack instance has one address (struct fp_stack_conf.addr)
 * and fp_tcp_connect takes no local address, so the backend passes one address until the stack
 * learns more.
 *
 * Keep listening ports out of the range: unlike the stack's own ephemeral choice, a port given
 * here is not checked against the instance's listeners.
 */

/* At most this many local addresses per worker. */
#define FP_RSS_LADDR_MAX 16
/* Default port range (Linux's ip_local_port_range). */
#define FP_RSS_PORT_LO 32768
#define FP_RSS_PORT_HI 60999
/* Default candidates tried per local address per pick. */
#define FP_RSS_TRIES_DEFAULT 64

struct fp_rss_ports_conf {
    const struct fp_rss *rss;       /* copied at create: later changes to *rss are not seen */
    uint16_t             queue;     /* this worker's queue */
    const uint32_t      *laddrs;    /* local addresses, host order, tried in this order */
    uint32_t             nb_laddrs; /* 1..FP_RSS_LADDR_MAX */
    uint16_t             port_lo;   /* inclusive range; both 0: FP_RSS_PORT_LO..FP_RSS_PORT_HI */
    uint16_t             port_hi;
    uint32_t             max_tries; /* candidates per address per pick; 0: FP_RSS_TRIES_DEFAULT */
};

/* Per-worker counters, plain (written by the owning worker only). */
struct fp_rss_ports_stats {
    uint64_t picks;      /* fp_rss_ports_begin calls */
    uint64_t candidates; /* candidates handed out */
    uint64_t misses;     /* candidates after the first of a pick (the previous one was refused) */
    uint64_t addr_moves; /* a pick moved on to the next local address */
    uint64_t exhausted;  /* picks that ran out of candidates (-EADDRNOTAVAIL) */
};

struct fp_rss_ports;

/*
 * State of one pick, on the caller's stack. Fields are private to rss.c.
 */
struct fp_rss_port_iter {
    uint32_t raddr;
    uint16_t rport;
    uint16_t addr_idx;
    uint32_t tries; /* candidates given for the current address */
    uint32_t fixed; /* hash of the reply tuple with dport 0, for the current address */
    uint32_t total; /* candidates given in this pick */
};

/*
 * Builds the per-worker port classes: for each value c of the reta index bits, the ports p of
 * the range whose own share of the hash (the hash of an input that is all zero but the
 * destination port p) has low bits c. Since hash(reply) = hash(raddr, laddr, rport, 0) XOR
 * share(lport), a port of class (fixed ^ i) & mask lands on reta index i, for any peer.
 * Returns 0 and *out, -EINVAL (bad conf: no rss, queue >= nb_queues, nb_laddrs out of range,
 * port_lo > port_hi or port 0 in range), -ENOENT (no reta entry maps to queue) or -ENOMEM.
 * Setup time only (allocates about 2 bytes per port and 6 per reta entry).
 */
int fp_rss_ports_create(const struct fp_rss_ports_conf *conf, struct fp_rss_ports **out);

void fp_rss_ports_destroy(struct fp_rss_ports *pp);

/* Starts a pick of a local address and port to connect to raddr:rport (host order). O(1). */
void fp_rss_ports_begin(struct fp_rss_ports *pp, uint32_t raddr, uint16_t rport,
                        struct fp_rss_port_iter *it);

/*
 * The next candidate of the pick: a local address and port such that the reply tuple
 * (raddr:rport -> *laddr:*lport) hashes to this worker's queue. The caller tries it
 * (fp_tcp_connect(st, raddr, rport, *lport, ...)) and calls again when it is refused with
 * -EADDRINUSE (port busy for that peer, or in TIME_WAIT without timestamps). Candidates rotate
 * over the reta entries the queue owns and, within a class, over its ports (a cursor per class),
 * so successive picks spread over the whole range. After max_tries candidates on one address the
 * pick moves to the next address. O(1) per call (amortised over empty classes at worst
 * O(reta_size) once, when the range is so small that some classes are empty).
 * Returns 0, or -EADDRNOTAVAIL when every address has had its max_tries (counted in exhausted).
 */
int fp_rss_ports_next(struct fp_rss_ports *pp, struct fp_rss_port_iter *it, uint32_t *laddr,
                      uint16_t *lport);

/* Copies the counters. */
void fp_rss_ports_stats(const struct fp_rss_ports *pp, struct fp_rss_ports_stats *out);

#endif /* FP_NET_RSS_H */
