/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Congestion control algorithms behind struct fp_tcp_cc_ops: NewReno (RFC 5681, RFC 6582) and
 * CUBIC (RFC 9438). The loss-recovery machinery (fast retransmit, partial ACKs, RTO) lives in
 * tcp.c; an algorithm only decides cwnd growth and the reduction on loss.
 */
#ifndef FP_NET_STACK_TCP_CC_H
#define FP_NET_STACK_TCP_CC_H

#include <stdint.h>

#include "net/stack/stack_types.h"

/* Returns the operations of algo (NewReno for unknown values). */
const struct fp_tcp_cc_ops *fp_tcp_cc_get(enum fp_tcp_cc_algo algo);

/* Bytes sent and not yet acknowledged. */
uint32_t fp_tcp_flight(const struct fp_tcb *tp);

#endif /* FP_NET_STACK_TCP_CC_H */
