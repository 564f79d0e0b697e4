/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: arbitrary frames into a stack instance (issue 7). The instance, created
 * afresh for each input so that runs are independent, is 10.0.0.1/24 with MAC 02:00:00:00:00:01,
 * an echo server on port 80 and an active open to 10.0.0.2:80 in progress; frames it sends are
 * dropped by a null link. The input is a sequence of records:
 *   [length: 2 bytes, big-endian][flags: 1 byte][frame: length bytes]
 * flags bit 0: fix the IPv4 header checksum and the TCP or ICMP checksum before input, so that
 * the fuzzer reaches the protocol code; bit 1: advance the clock by 250 ms first (timers run).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/stack/cksum.h"
#include "net/stack/link.h"
#include "net/stack/pkt.h"
#include "net/stack/stack.h"
#include "net/stack/tcp.h"
#include "net/stack/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t
null_rx(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
        uint64_t now_us)
{
    return 0;
}

static uint16_t
null_tx(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    uint16_t i;

    for (i = 0; i < n; i++) {
        fp_pkt_free(pkts[i]);
    }
    return n;
}

static const struct fp_link_ops null_ops = {
        .rx_burst = null_rx,
        .tx_burst = null_tx,
};

static void
echo_readable(struct fp_tcb *c, void *user)
{
    struct fp_pkt *chain;
    ssize_t        n = fp_tcp_recv_pkts(c, &chain);

    if (n > 0) {
        if (fp_tcp_send_pkts(c, &chain) < 0 || chain != NULL) {
            fp_pkt_free_chain(chain);
        }
    } else if (n == 0) {
        fp_tcp_close(c);
    }
}

static const struct fp_tcp_callbacks echo_cb = {
        .on_readable = echo_readable,
};

static void
on_accept(struct fp_tcp_listener *l, void *user)
{
    struct fp_tcb *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        fp_tcp_set_callbacks(c, &echo_cb, NULL);
    }
}

static const struct fp_tcp_callbacks lsn_cb = {
        .on_accept = on_accept,
};

static void
fix_checksums(uint8_t *f, uint32_t len)
{
    uint8_t *ip = f + 14;
    uint32_t hl;
    uint32_t tl;
    uint16_t sum;

    if (len < 34 || fp_get16(f + 12) != 0x0800) {
        return;
    }
    hl = (uint32_t)(ip[0] & 0x0f) * 4;
    tl = fp_get16(ip + 2);
    if (hl < 20 || 14 + hl > len || tl < hl || 14 + tl > len) {
        return;
    }
    ip[10] = 0;
    ip[11] = 0;
    sum = fp_cksum(ip, hl);
    memcpy(ip + 10, &sum, 2);
    if (ip[9] == 6 && tl - hl >= 20) {
        ip[hl + 16] = 0;
        ip[hl + 17] = 0;
        sum = fp_cksum_tcp(fp_get32(ip + 12), fp_get32(ip + 16), ip + hl, tl - hl);
        memcpy(ip + hl + 16, &sum, 2);
    } else if (ip[9] == 1 && tl - hl >= 8) {
        ip[hl + 2] = 0;
        ip[hl + 3] = 0;
        sum = fp_cksum(ip + hl, tl - hl);
        memcpy(ip + hl + 2, &sum, 2);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fp_stack_conf    sc = {.addr = 0x0a000001,
                                  .prefix_len = 24,
                                  .gateway = 0x0a0000fe,
                                  .nb_pkts = 128,
                                  .nb_tcbs = 16,
                                  .seed = 1,
                                  .mac = {2, 0, 0, 0, 0, 1}};
    struct fp_link          link = {.ops = &null_ops, .mtu = 1500};
    struct fp_tcp_listener *l;
    struct fp_stack        *st;
    struct fp_tcb          *c;
    struct fp_pkt          *p;
    uint64_t                now = 1000000;
    size_t                  off = 0;
    uint32_t                len;
    uint8_t                 flags;

    if (fp_stack_create(&sc, now, &st) != 0) {
        return 0;
    }
    fp_stack_attach_link(st, &link, now);
    fp_tcp_listen(st, 80, 4, 2, &lsn_cb, NULL, &l);
    fp_tcp_connect(st, 0x0a000002, 80, 40000, &echo_cb, NULL, &c);
    while (off + 3 <= size) {
        len = fp_get16(data + off);
        flags = data[off + 2];
        off += 3;
        if (len > size - off) {
            len = (uint32_t)(size - off);
        }
        if ((flags & 2) != 0) {
            now += 250000;
            fp_stack_poll(st, now, 1);
        }
        p = fp_pkt_alloc(fp_stack_pktpool(st));
        if (p == NULL) {
            break;
        }
        if (len > fp_pkt_tailroom(p)) {
            len = fp_pkt_tailroom(p);
        }
        memcpy(p->data, data + off, len);
        p->len = len;
        off += len;
        if ((flags & 1) != 0) {
            fix_checksums(p->data, p->len);
        }
        fp_stack_input(st, &p, 1, now);
    }
    fp_stack_poll(st, now + 100000000, 1);
    fp_stack_destroy(st);
    return 0;
}
