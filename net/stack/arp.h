/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ARP (RFC 826) for one instance: a fixed-size cache with expiry, a bounded queue of frames per
 * unresolved address, request retries, and a gratuitous ARP when a link is attached.
 */
#ifndef FP_NET_STACK_ARP_H
#define FP_NET_STACK_ARP_H

#include <stdint.h>

#include "net/stack/stack_types.h"

/* Allocates the cache (conf.arp_entries) and starts the retry timer. Returns 0 or -ENOMEM. */
int fp_arp_init(struct fp_stack *st);

/* Frees the frames waiting for resolution. */
void fp_arp_flush(struct fp_stack *st);

/* Frees the cache and any frames waiting in it. */
void fp_arp_fini(struct fp_stack *st);

/* Handles a received ARP packet (pkt->data at the ARP header). Consumes pkt. */
void fp_arp_input(struct fp_stack *st, struct fp_pkt *pkt);

/*
 * Sends an IPv4 packet (pkt->data at the IP header) to nexthop (host order): at once when the
 * address is resolved, else queued (bounded, counted when full) while a request is sent.
 * Consumes pkt.
 */
void fp_arp_output(struct fp_stack *st, struct fp_pkt *pkt, uint32_t nexthop);

/* Broadcasts a gratuitous ARP request for our address (RFC 5227 §3 announcement). */
void fp_arp_announce(struct fp_stack *st);

/* Returns the cached MAC for ip into mac and 0, or -ENOENT. For tests and tools. */
int fp_arp_lookup(const struct fp_stack *st, uint32_t ip, uint8_t mac[6]);

#endif /* FP_NET_STACK_ARP_H */
