/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sum, in software. With a link
 * that computes checksums (FP_LINK_CAP_TX_CKSUM, net/stack/link.h) the stack stores only
 * fp_cksum_tcp_phdr() and flags the frame FP_PKT_F_TX_CKSUM_OFFLOAD.
 */
#ifndef FP_NET_STACK_CKSUM_H
#define FP_NET_STACK_CKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Returns the 32-bit partial one's complement sum of len bytes at buf, added to sum. */
uint32_t fp_cksum_partial(const void *buf, size_t len, uint32_t sum);

/* Folds a partial sum and returns its one's complement, ready to store (network order bytes). */
uint16_t fp_cksum_fold(uint32_t sum);

/* Checksum of len bytes: fp_cksum_fold(fp_cksum_partial(buf, len, 0)). 0 means "valid" on input. */
uint16_t fp_cksum(const void *buf, size_t len);

/*
 * Checksum of a TCP segment (header and payload, len bytes at seg) with the IPv4 pseudo-header
 * (RFC 9293 §3.1). saddr and daddr are in host order. On receive, 0 means valid.
 */
uint16_t fp_cksum_tcp(uint32_t saddr, uint32_t daddr, const void *seg, size_t len);

/*
 * The folded, not complemented, pseudo-header sum of a TCP segment of len bytes, ready to store
 * in its checksum field for a link that computes the rest (what DPDK's rte_ipv4_phdr_cksum()
 * gives for checksum offload).
 */
uint16_t fp_cksum_tcp_phdr(uint32_t saddr, uint32_t daddr, size_t len);

#endif /* FP_NET_STACK_CKSUM_H */
