/* SPDX-License-Identifier: BSD-3-Clause */
/* Big-endian (network order) field access on byte buffers, alignment-safe. */
#ifndef FP_NET_STACK_WIRE_H
#define FP_NET_STACK_WIRE_H

#include <stdint.h>

static inline uint16_t
fp_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
fp_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void
fp_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
fp_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif /* FP_NET_STACK_WIRE_H */
