/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RFC 1071 checksum. Sums 32-bit words into 64-bit accumulators so carries are folded once at
 * the end; this is several times faster than the 16-bit loop of the RFC's reference code. An
 * SSE/AVX2 version, or folding the sum into the copy, is the next step if profiles ask for it.
 */
#include "net/stack/cksum.h"

#include <string.h>

uint32_t
fp_cksum_partial(const void *buf, size_t len, uint32_t sum)
{
    const uint8_t *p = buf;
    uint64_t       a0 = sum;
    uint64_t       a1 = 0;
    uint64_t       a2 = 0;
    uint64_t       a3 = 0;
    uint64_t       q[4];
    uint32_t       w;
    uint16_t       h;

    /*
     * 32 bytes per round into four independent accumulators of 32-bit halves: no carry to
     * propagate (2^32 rounds would be needed to overflow) and no dependency chain between them.
     */
    while (len >= 32) {
        memcpy(q, p, 32);
        a0 += q[0] & 0xffffffffu;
        a1 += q[0] >> 32;
        a2 += q[1] & 0xffffffffu;
        a3 += q[1] >> 32;
        a0 += q[2] & 0xffffffffu;
        a1 += q[2] >> 32;
        a2 += q[3] & 0xffffffffu;
        a3 += q[3] >> 32;
        p += 32;
        len -= 32;
    }
    a0 += a1 + a2 + a3;
    while (len >= 4) {
        memcpy(&w, p, 4);
        a0 += w;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        memcpy(&h, p, 2);
        a0 += h;
        p += 2;
        len -= 2;
    }
    if (len == 1) {
        h = 0;
        memcpy(&h, p, 1); /* the odd byte is the high-order byte of a zero-padded word */
        a0 += h;
    }
    a0 = (a0 & 0xffffffffu) + (a0 >> 32);
    a0 = (a0 & 0xffffffffu) + (a0 >> 32);
    return (uint32_t)a0;
}

uint16_t
fp_cksum_fold(uint32_t sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint16_t
fp_cksum(const void *buf, size_t len)
{
    return fp_cksum_fold(fp_cksum_partial(buf, len, 0));
}

uint16_t
fp_cksum_tcp(uint32_t saddr, uint32_t daddr, const void *seg, size_t len)
{
    uint8_t ph[12];

    ph[0] = (uint8_t)(saddr >> 24);
    ph[1] = (uint8_t)(saddr >> 16);
    ph[2] = (uint8_t)(saddr >> 8);
    ph[3] = (uint8_t)saddr;
    ph[4] = (uint8_t)(daddr >> 24);
    ph[5] = (uint8_t)(daddr >> 16);
    ph[6] = (uint8_t)(daddr >> 8);
    ph[7] = (uint8_t)daddr;
    ph[8] = 0;
    ph[9] = 6;
    ph[10] = (uint8_t)(len >> 8);
    ph[11] = (uint8_t)len;
    return fp_cksum_fold(fp_cksum_partial(seg, len, fp_cksum_partial(ph, sizeof(ph), 0)));
}
