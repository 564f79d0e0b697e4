/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ethernet, IPv4 and ICMP input and output. Every drop increments its counter and goes to the
 * single drop label, as in FreeBSD's ip_input.
 */
#include "net/stack/ipv4.h"

#include <string.h>

#include "net/stack/arp.h"
#include "net/stack/cksum.h"
#include "net/stack/pkt.h"
#include "net/stack/stack.h"
#include "net/stack/tcp.h"
#include "net/stack/wire.h"

void
fp_eth_output(struct fp_stack *st, struct fp_pkt *pkt, const uint8_t dmac[6], uint16_t ethertype)
{
    pkt->data -= FP_STK_ETH_HLEN;
    pkt->len += FP_STK_ETH_HLEN;
    memcpy(pkt->data, dmac, 6);
    memcpy(pkt->data + 6, st->conf.mac, 6);
    fp_put16(pkt->data + 12, ethertype);
    fp_stack_tx(st, pkt);
}

static void
icmp_input(struct fp_stack *st, struct fp_pkt *pkt, uint32_t saddr, uint32_t daddr)
{
    uint8_t *ic = pkt->data;
    uint16_t sum;

    fp_stack_ctr_inc(st, FP_STK_ICMP_RX);
    if (pkt->len < 8 || fp_cksum(ic, pkt->len) != 0) {
        fp_stack_ctr_inc(st, FP_STK_ICMP_BAD);
        goto drop;
    }
    if (ic[0] != 8 || ic[1] != 0) {
        fp_stack_ctr_inc(st, FP_STK_ICMP_OTHER);
        goto drop;
    }
    /* RFC 792: the echo reply carries the request's identifier, sequence and data. */
    ic[0] = 0;
    ic[2] = 0;
    ic[3] = 0;
    sum = fp_cksum(ic, pkt->len);
    memcpy(ic + 2, &sum, 2);
    fp_stack_ctr_inc(st, FP_STK_ICMP_ECHO_REPLIED);
    fp_ipv4_output(st, pkt, daddr, saddr, FP_IPPROTO_ICMP);
    return;

drop:
    fp_pkt_free(pkt);
}

static void
ipv4_input(struct fp_stack *st, struct fp_pkt *pkt)
{
    const uint8_t *ip = pkt->data;
    uint32_t       hlen;
    uint32_t       tlen;
    uint32_t       saddr;
    uint32_t       daddr;

    fp_stack_ctr_inc(st, FP_STK_IP_RX);
    if (pkt->len < FP_STK_IP_HLEN) {
        fp_stack_ctr_inc(st, FP_STK_IP_SHORT);
        goto drop;
    }
    hlen = (uint32_t)(ip[0] & 0x0f) * 4;
    if ((ip[0] >> 4) != 4 || hlen < FP_STK_IP_HLEN) {
        fp_stack_ctr_inc(st, FP_STK_IP_BAD_VER);
        goto drop;
    }
    tlen = fp_get16(ip + 2);
    if (tlen < hlen || tlen > pkt->len) {
        fp_stack_ctr_inc(st, FP_STK_IP_SHORT);
        goto drop;
    }
    /* A link that verified the checksum said so (FP_LINK_CAP_RX_CKSUM); bad is counted the
     * same either way. */
    if ((pkt->flags & FP_PKT_F_RX_IP_BAD) != 0 ||
        ((pkt->flags & FP_PKT_F_RX_IP_GOOD) == 0 && fp_cksum(ip, hlen) != 0)) {
        fp_stack_ctr_inc(st, FP_STK_IP_BAD_CKSUM);
        goto drop;
    }
    daddr = fp_get32(ip + 16);
    saddr = fp_get32(ip + 12);
    if (!fp_stack_is_local(st, daddr)) {
        fp_stack_ctr_inc(st, FP_STK_IP_NOT_US); /* no forwarding, no broadcast services */
        goto drop;
    }
    if ((fp_get16(ip + 6) & 0x3fff) != 0) {
        fp_stack_ctr_inc(st, FP_STK_IP_FRAG); /* MF set or a non-zero offset */
        goto drop;
    }
    pkt->len = tlen - hlen; /* trims Ethernet padding */
    pkt->data += hlen;
    switch (ip[9]) {
    case FP_IPPROTO_TCP:
        fp_tcp_input(st, pkt, saddr, daddr);
        return;
    case FP_IPPROTO_ICMP:
        icmp_input(st, pkt, saddr, daddr);
        return;
    default:
        fp_stack_ctr_inc(st, FP_STK_IP_BAD_PROTO);
        goto drop;
    }

drop:
    fp_pkt_free(pkt);
}

void
fp_eth_input(struct fp_stack *st, struct fp_pkt *pkt)
{
    const uint8_t *eh = pkt->data;
    uint16_t       type;

    if (pkt->len < FP_STK_ETH_HLEN) {
        fp_stack_ctr_inc(st, FP_STK_ETH_SHORT);
        goto drop;
    }
    if ((eh[0] & 1) == 0 && memcmp(eh, st->conf.mac, 6) != 0) {
        fp_stack_ctr_inc(st, FP_STK_ETH_NOT_US);
        goto drop;
    }
    type = fp_get16(eh + 12);
    pkt->data += FP_STK_ETH_HLEN;
    pkt->len -= FP_STK_ETH_HLEN;
    if (type == 0x0800) {
        ipv4_input(st, pkt);
        return;
    }
    if (type == 0x0806) {
        fp_arp_input(st, pkt);
        return;
    }
    fp_stack_ctr_inc(st, FP_STK_ETH_BAD_TYPE);
drop:
    fp_pkt_free(pkt);
}

void
fp_ipv4_output(struct fp_stack *st, struct fp_pkt *pkt, uint32_t saddr, uint32_t daddr,
               uint8_t proto)
{
    uint32_t nexthop = daddr;
    uint8_t *ip;
    uint16_t sum;

    if ((daddr & st->netmask) != (st->conf.addr & st->netmask)) {
        nexthop = st->conf.gateway;
        if (nexthop == 0) {
            fp_stack_ctr_inc(st, FP_STK_IP_NO_ROUTE);
            fp_pkt_free(pkt);
            return;
        }
    }
    pkt->data -= FP_STK_IP_HLEN;
    pkt->len += FP_STK_IP_HLEN;
    ip = pkt->data;
    ip[0] = 0x45;
    ip[1] = 0;
    fp_put16(ip + 2, (uint16_t)pkt->len);
    fp_put16(ip + 4, st->ip_id++);
    fp_put16(ip + 6, 0x4000); /* DF: we never fragment (RFC 1191 path MTU discovery) */
    ip[8] = 64;
    ip[9] = proto;
    ip[10] = 0;
    ip[11] = 0;
    fp_put32(ip + 12, saddr);
    fp_put32(ip + 16, daddr);
    if ((pkt->flags & FP_PKT_F_TX_CKSUM_OFFLOAD) == 0) {
        sum = fp_cksum(ip, FP_STK_IP_HLEN);
        memcpy(ip + 10, &sum, 2);
    }
    fp_arp_output(st, pkt, nexthop);
}
