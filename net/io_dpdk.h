/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK backend: one RX and one TX queue of one port per worker, each under the worker's
 * private user-space stack (net/io_stack.h). The port, its mempools (one per worker) and the
 * steering rings (one per ordered pair of workers, single producer, single consumer) are set
 * up once, by the main thread, when the first worker's instance is created; afterwards they
 * are read-only shared state, and each worker touches only its own queue, pool and the rings
 * it produces into or consumes from. proxy/ never includes this header.
 */
#ifndef FP_NET_IO_DPDK_H
#define FP_NET_IO_DPDK_H

#include <stddef.h>
#include <stdint.h>

#include "net/io.h"

/* Per-worker counters of the DPDK link, beside the stack's own. */
#define FP_DPDK_COUNTERS(X)                                                              \
    X(RX_PACKETS, "dpdk_rx_packets", "frames received from this worker's RX queue")      \
    X(RX_BYTES, "dpdk_rx_bytes", "bytes received from this worker's RX queue")           \
    X(TX_PACKETS, "dpdk_tx_packets", "frames sent on this worker's TX queue")            \
    X(TX_BYTES, "dpdk_tx_bytes", "bytes sent on this worker's TX queue")                 \
    X(RX_ON_OWNER, "dpdk_rx_on_owner", "TCP frames that arrived on their owner's queue") \
    X(STEERED_OUT, "dpdk_steered_out", "frames handed to their owner worker")            \
    X(STEERED_IN, "dpdk_steered_in", "frames received from another worker's queue")      \
    X(RING_FULL, "dpdk_ring_full_drops", "frames dropped: steering ring full")           \
    X(ARP_FANOUT, "dpdk_arp_fanout", "ARP frames copied to the other workers")           \
    X(NO_MBUF, "dpdk_no_mbuf_drops", "frames dropped: mbuf pool empty")                  \
    X(NO_PKT, "dpdk_no_pkt_drops", "frames dropped: stack packet pool empty")            \
    X(TX_FULL, "dpdk_tx_full_drops", "frames dropped: TX queue full")                    \
    X(BAD_FRAME, "dpdk_bad_frame_drops", "frames dropped: chained or oversized")

enum fp_dpdk_counter {
#define FP_DPDK_CTR_ENUM(e, name, help) FP_DPDK_##e,
    FP_DPDK_COUNTERS(FP_DPDK_CTR_ENUM)
#undef FP_DPDK_CTR_ENUM
            FP_DPDK_CTR_NB
};

/*
 * Creates worker conf->id's instance. The first call (conf->id 0) initialises the EAL from
 * conf->dpdk->eal, configures the port with conf->nb_workers queue pairs and creates every
 * worker's mempool and the steering rings. Main thread, startup. NULL with a reason in err.
 */
struct fp_io *fp_io_dpdk_create(const struct fp_io_conf *conf, char *err, size_t errlen);

/* Per-worker memory beyond the connection objects (see fp_io_mem_bound in net/io.h). */
size_t fp_io_dpdk_mem_bound(const struct fp_dpdk_conf *dc, uint32_t max_conns);

/* Returns sizeof the backend's connection object. */
size_t fp_io_dpdk_conn_size(void);

/* Copies worker id's link counters (indexed by enum fp_dpdk_counter); any thread. */
void fp_io_dpdk_counters(unsigned id, uint64_t out[FP_DPDK_CTR_NB]);

/* Name and help text of link counter i, or NULL past the end. */
const char *fp_io_dpdk_counter_name(unsigned i);
const char *fp_io_dpdk_counter_help(unsigned i);

/* Whether steering is done in software (the port gave no usable RSS). */
int fp_io_dpdk_software_rss(void);

#endif /* FP_NET_IO_DPDK_H */
