/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP option parsing and writing: MSS (RFC 9293 §3.7.1), window scale and timestamps
 * (RFC 7323), SACK-permitted and SACK blocks (RFC 2018). Pure functions over byte buffers.
 */
#ifndef FP_NET_STACK_TCP_OPT_H
#define FP_NET_STACK_TCP_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/stack/stack_types.h"

struct fp_tcp_opts {
    bool                 has_mss;
    bool                 has_wscale;
    bool                 sack_permitted;
    bool                 has_ts;
    uint16_t             mss;
    uint8_t              wscale; /* clamped to 14 (RFC 7323 §2.3) */
    uint8_t              nsack;
    uint32_t             tsval;
    uint32_t             tsecr;
    struct fp_sack_block sack[FP_STK_MAX_SACK];
};

/*
 * Parses len bytes of options at p into o (cleared first). MSS, window scale and SACK-permitted
 * are taken only when syn is true (RFC 7323 §2.2, RFC 2018 §2). Returns 0, or -EINVAL when an
 * option's length is malformed or runs past the end. Unknown options are skipped.
 */
int fp_tcp_opt_parse(const uint8_t *p, size_t len, bool syn, struct fp_tcp_opts *o);

/*
 * Writes the options set in o to p, padded with NOPs to a multiple of 4, at most
 * FP_STK_TCP_MAXOPT bytes (SACK blocks that do not fit are left out). MSS, window scale and
 * SACK-permitted are written only when syn is true. Returns the number of bytes written.
 */
size_t fp_tcp_opt_write(uint8_t *p, const struct fp_tcp_opts *o, bool syn);

#endif /* FP_NET_STACK_TCP_OPT_H */
