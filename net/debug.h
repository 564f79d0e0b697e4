/* SPDX-License-Identifier: BSD-3-Clause */
/* Assertions on our own invariants (never on untrusted input). Active unless NDEBUG. */
#ifndef FP_NET_DEBUG_H
#define FP_NET_DEBUG_H

#include <stdio.h>
#include <stdlib.h>

#ifdef NDEBUG
#define FP_ASSERT(cond) ((void)0)
#else
#define FP_ASSERT(cond)                                                                     \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: %s: assertion failed: %s\n", __FILE__, __LINE__,       \
                    __func__, #cond);                                                       \
            abort();                                                                        \
        }                                                                                   \
    } while (0)
#endif

#define fp_likely(x)   __builtin_expect(!!(x), 1)
#define fp_unlikely(x) __builtin_expect(!!(x), 0)

#endif /* FP_NET_DEBUG_H */
