/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Field-by-field equality of parser results, shared by the unit test (tests/proxy/test_h1.c)
 * and the fuzz target (tests/fuzz/fuzz_h1.c), which both compare the results of one message
 * parsed at different split points. Test code only.
 */
#ifndef FP_TESTS_PROXY_H1_EQ_H
#define FP_TESTS_PROXY_H1_EQ_H

#include <stdbool.h>

#include "proxy/h1.h"

static inline bool
h1_span_eq(struct fp_h1_span a, struct fp_h1_span b)
{
    return a.off == b.off && a.len == b.len;
}

/* True if the two messages hold the same results (the hdrs pointers are not compared). */
static inline bool
h1_msg_eq(const struct fp_h1_msg *a, const struct fp_h1_msg *b)
{
    return a->kind == b->kind && a->flags == b->flags && a->version_minor == b->version_minor &&
           a->body == b->body && a->content_length == b->content_length &&
           a->start_off == b->start_off && a->head_len == b->head_len &&
           a->nb_headers == b->nb_headers && a->host_hdr == b->host_hdr && a->method == b->method &&
           h1_span_eq(a->method_span, b->method_span) && a->target_form == b->target_form &&
           h1_span_eq(a->target, b->target) && h1_span_eq(a->authority, b->authority) &&
           h1_span_eq(a->path, b->path) && h1_span_eq(a->host, b->host) &&
           a->req_method == b->req_method && a->status == b->status &&
           h1_span_eq(a->reason, b->reason);
}

/* True if the first n header entries of a and b are equal. */
static inline bool
h1_hdrs_eq(const struct fp_h1_header *a, const struct fp_h1_header *b, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        if (!h1_span_eq(a[i].name, b[i].name) || !h1_span_eq(a[i].value, b[i].value) ||
            a[i].flags != b[i].flags) {
            return false;
        }
    }
    return true;
}

#endif /* FP_TESTS_PROXY_H1_EQ_H */
