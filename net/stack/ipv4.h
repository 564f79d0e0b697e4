/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ethernet II, IPv4 (RFC 791, RFC 1122 §3.2.1 checks) and ICMP echo (RFC 792) for one instance.
 * Fragments are dropped and counted: no reassembly (TCP never needs it, since we advertise an MSS
 * that fits the MTU and set DF).
 */
#ifndef FP_NET_STACK_IPV4_H
#define FP_NET_STACK_IPV4_H

#include <stdint.h>

#include "net/stack/stack_types.h"

enum {
    FP_IPPROTO_ICMP = 1,
    FP_IPPROTO_TCP = 6,
};

/* Handles a received frame (pkt->data at the Ethernet header). Consumes pkt. */
void fp_eth_input(struct fp_stack *st, struct fp_pkt *pkt);

/* Prepends an Ethernet header (our MAC to dmac) and queues the frame. Consumes pkt. */
void fp_eth_output(struct fp_stack *st, struct fp_pkt *pkt, const uint8_t dmac[6],
                   uint16_t ethertype);

/*
 * Prepends an IPv4 header (our address to daddr, host order), routes (on-link or through the
 * gateway; dropped and counted when there is none) and sends via ARP. pkt->data is at the L4
 * header and needs FP_STK_IP_HLEN + FP_STK_ETH_HLEN bytes of headroom. Consumes pkt.
 */
void fp_ipv4_output(struct fp_stack *st, struct fp_pkt *pkt, uint32_t saddr, uint32_t daddr,
                    uint8_t proto);

#endif /* FP_NET_STACK_IPV4_H */
