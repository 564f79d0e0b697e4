/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP sequence number arithmetic modulo 2^32 (RFC 9293 §3.4, RFC 1982): a < b when the signed
 * distance from a to b is positive. Meaningful only for numbers less than 2^31 apart.
 */
#ifndef FP_NET_STACK_SEQ_H
#define FP_NET_STACK_SEQ_H

#include <stdbool.h>
#include <stdint.h>

static inline bool
fp_seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static inline bool
fp_seq_leq(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}

static inline bool
fp_seq_gt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

static inline bool
fp_seq_geq(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) >= 0;
}

/* True when lo <= s < hi. */
static inline bool
fp_seq_in(uint32_t s, uint32_t lo, uint32_t hi)
{
    return fp_seq_geq(s, lo) && fp_seq_lt(s, hi);
}

static inline uint32_t
fp_seq_max(uint32_t a, uint32_t b)
{
    return fp_seq_gt(a, b) ? a : b;
}

static inline uint32_t
fp_seq_min(uint32_t a, uint32_t b)
{
    return fp_seq_lt(a, b) ? a : b;
}

#endif /* FP_NET_STACK_SEQ_H */
