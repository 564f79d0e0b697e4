/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests for proxy/h1.c: the HTTP/1.1 head parser and body tracker.
 *
 * Every message is run through run_msg(), which parses it whole, byte by byte and at random
 * split points (fixed seeds), each time from a freshly allocated copy of exactly the bytes
 * given so far (so ASan catches any pointer kept into an old buffer or any read past len),
 * and asserts that all ways give the same result before the test checks the exact values.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h1.h"
#include "tests/proxy/h1_eq.h"

#define MAX_HDRS    16
#define NB_SEEDS    64
#define FEED_WHOLE  0
#define FEED_BYTES  1
#define FEED_RANDOM 2

struct result {
    enum fp_h1_status   head_st;
    enum fp_h1_error    head_err;
    struct fp_h1_msg    msg;
    struct fp_h1_header hdrs[MAX_HDRS];
    enum fp_h1_status   body_st;
    enum fp_h1_error    body_err;
    size_t              body_consumed;
    uint64_t            payload;
};

struct msg_opts {
    enum fp_h1_kind     kind;
    enum fp_h1_method   req_method;
    struct fp_h1_limits lim;
    uint32_t            nb_hdrs; /* header array capacity, 0 = MAX_HDRS */
    bool                eof;     /* call fp_h1_body_eof() after the last byte */
};

/* xorshift64: a fixed-seed generator keeps the split points reproducible. */
static uint64_t
rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Next split length: whole, one byte, or random in [1, 2 * avg]. */
static size_t
next_step(int mode, uint64_t *rng, size_t left)
{
    size_t n;

    if (mode == FEED_WHOLE) {
        return left;
    }
    if (mode == FEED_BYTES) {
        return 1;
    }
    n = 1 + (size_t)(rng_next(rng) % 16);
    return n < left ? n : left;
}

static void
parse_head(const struct msg_opts *o, const char *in, size_t len, int mode, uint64_t seed,
           struct result *r, struct fp_h1_parser *p)
{
    char  *copy = NULL;
    size_t have = 0;

    fp_h1_parser_init(p, o->kind, o->req_method, &o->lim, r->hdrs,
                      o->nb_hdrs != 0 ? o->nb_hdrs : MAX_HDRS);
    r->head_st = FP_H1_NEED_MORE;
    while (have < len && r->head_st == FP_H1_NEED_MORE) {
        have += next_step(mode, &seed, len - have);
        /* A new buffer each time: the parser may keep offsets only. */
        free(copy);
        copy = malloc(have);
        if (copy == NULL) {
            abort();
        }
        memcpy(copy, in, have);
        r->head_st = fp_h1_parse(p, copy, have);
    }
    free(copy);
    r->head_err = p->err;
    r->msg = p->msg;
}

static void
track_body(const struct msg_opts *o, const char *in, size_t len, int mode, uint64_t seed,
           struct result *r)
{
    struct fp_h1_body b;
    size_t            off = 0;
    size_t            n;
    size_t            used;
    char             *copy;

    fp_h1_body_init(&b, &r->msg, &o->lim);
    r->body_st = fp_h1_body_feed(&b, in, 0, &used);
    CU_ASSERT_EQUAL(used, 0);
    while (off < len && r->body_st == FP_H1_NEED_MORE) {
        n = next_step(mode, &seed, len - off);
        copy = malloc(n);
        if (copy == NULL) {
            abort();
        }
        memcpy(copy, in + off, n);
        r->body_st = fp_h1_body_feed(&b, copy, n, &used);
        free(copy);
        CU_ASSERT(used <= n);
        if (r->body_st == FP_H1_NEED_MORE) {
            CU_ASSERT_EQUAL(used, n);
        }
        off += used;
    }
    if (o->eof && r->body_st == FP_H1_NEED_MORE) {
        r->body_st = fp_h1_body_eof(&b);
    }
    r->body_err = b.err;
    r->body_consumed = off;
    r->payload = b.payload_bytes;
    CU_ASSERT_EQUAL(b.wire_bytes, off);
}

static bool
result_eq(const struct result *a, const struct result *b)
{
    if (a->head_st != b->head_st || a->head_err != b->head_err) {
        return false;
    }
    if (a->head_st != FP_H1_DONE) {
        return true;
    }
    return h1_msg_eq(&a->msg, &b->msg) && h1_hdrs_eq(a->hdrs, b->hdrs, a->msg.nb_headers) &&
           a->body_st == b->body_st && a->body_err == b->body_err &&
           a->body_consumed == b->body_consumed && a->payload == b->payload;
}

static void
run_one(const struct msg_opts *o, const char *in, size_t len, int mode, uint64_t seed,
        struct result *r)
{
    struct fp_h1_parser p;

    memset(r, 0, sizeof(*r));
    parse_head(o, in, len, mode, seed, r, &p);
    if (r->head_st == FP_H1_DONE) {
        /* The tracker gets its bytes split independently from the head. */
        track_body(o, in + r->msg.head_len, len - r->msg.head_len, mode, seed * 7 + 1, r);
    }
}

/* Runs the message every way, asserts the results agree and returns the whole-input one. */
static void
run_msg(const struct msg_opts *o, const char *in, size_t len, struct result *out)
{
    struct result r;
    int           i;

    run_one(o, in, len, FEED_WHOLE, 0, out);
    run_one(o, in, len, FEED_BYTES, 0, &r);
    if (!result_eq(out, &r)) {
        fprintf(stderr, "byte-by-byte result differs for: %.*s\n", (int)len, in);
        CU_FAIL("byte-by-byte result differs");
    }
    for (i = 1; i <= NB_SEEDS; i++) {
        run_one(o, in, len, FEED_RANDOM, 0x9e3779b97f4a7c15ull * (uint64_t)i, &r);
        if (!result_eq(out, &r)) {
            fprintf(stderr, "split result (seed %d) differs for: %.*s\n", i, (int)len, in);
            CU_FAIL("random split result differs");
        }
    }
}

static void
opts_init(struct msg_opts *o, enum fp_h1_kind kind, enum fp_h1_method req_method)
{
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->req_method = req_method;
    fp_h1_limits_default(&o->lim);
}

static void
req(const char *in, struct result *r)
{
    struct msg_opts o;

    opts_init(&o, FP_H1_REQUEST, FP_H1_METH_OTHER);
    run_msg(&o, in, strlen(in), r);
}

static void
res(enum fp_h1_method m, const char *in, struct result *r)
{
    struct msg_opts o;

    opts_init(&o, FP_H1_RESPONSE, m);
    o.eof = true;
    run_msg(&o, in, strlen(in), r);
}

/* Expects a request head error err (and HTTP status) for in. */
static void
req_err(const char *in, enum fp_h1_error err, int status)
{
    struct result r;

    req(in, &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_ERROR);
    CU_ASSERT_EQUAL(r.head_err, err);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.head_err, FP_H1_REQUEST), status);
    if (r.head_err != err) {
        fprintf(stderr, "for %s: got error %d (%s), want %d\n", in, r.head_err,
                fp_h1_error_reason(r.head_err), err);
    }
}

static void
res_err(enum fp_h1_method m, const char *in, enum fp_h1_error err)
{
    struct result r;

    res(m, in, &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_ERROR);
    CU_ASSERT_EQUAL(r.head_err, err);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.head_err, FP_H1_RESPONSE), 502);
    if (r.head_err != err) {
        fprintf(stderr, "for %s: got error %d, want %d\n", in, r.head_err, err);
    }
}

/* True if span s of in holds exactly the text want. */
static bool
span_is(const char *in, struct fp_h1_span s, const char *want)
{
    return s.len == strlen(want) && memcmp(in + s.off, want, s.len) == 0;
}

/* ---- Request line and target ---- */

static void
test_req_simple_get(void)
{
    const char   *in = "GET /index.html?a=1 HTTP/1.1\r\nHost: example.com\r\n"
                       "User-Agent: t\r\nAccept:   */*  \r\nX-Empty:\r\n\r\n";
    struct result r;

    req(in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.head_len, strlen(in));
    CU_ASSERT_EQUAL(r.msg.method, FP_H1_METH_GET);
    CU_ASSERT(span_is(in, r.msg.method_span, "GET"));
    CU_ASSERT_EQUAL(r.msg.target_form, FP_H1_TARGET_ORIGIN);
    CU_ASSERT(span_is(in, r.msg.target, "/index.html?a=1"));
    CU_ASSERT(span_is(in, r.msg.path, "/index.html?a=1"));
    CU_ASSERT_EQUAL(r.msg.authority.len, 0);
    CU_ASSERT(span_is(in, r.msg.host, "example.com"));
    CU_ASSERT_EQUAL(r.msg.version_minor, 1);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_NONE);
    CU_ASSERT_EQUAL(r.msg.flags, FP_H1_F_HOST | FP_H1_F_KEEP_ALIVE);
    CU_ASSERT_EQUAL(r.msg.nb_headers, 4);
    CU_ASSERT_EQUAL(r.msg.host_hdr, 0);
    CU_ASSERT(span_is(in, r.hdrs[2].name, "Accept"));
    CU_ASSERT(span_is(in, r.hdrs[2].value, "*/*"));
    CU_ASSERT(span_is(in, r.hdrs[3].name, "X-Empty"));
    CU_ASSERT_EQUAL(r.hdrs[3].value.len, 0);
    CU_ASSERT_EQUAL(r.hdrs[1].flags, 0);
    CU_ASSERT_EQUAL(r.msg.start_off, 0);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.body_consumed, 0);
}

static void
test_req_methods(void)
{
    struct result r;

    req("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.method, FP_H1_METH_HEAD);
    req("PATCH / HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.method, FP_H1_METH_PATCH);
    /* RFC 9110 §9.1: case-sensitive, so "get" is some other (valid) method. */
    req("get / HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.method, FP_H1_METH_OTHER);
    req("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_ERROR);
    req_err("G(ET / HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_METHOD, 400);
    req_err(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_METHOD, 400);
    req_err("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_CTL, 400);
    req_err("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", FP_H1_E_CONNECT, 501);
}

static void
test_req_leading_crlf(void)
{
    const char   *in = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct result r;

    req(in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.start_off, 4);
    CU_ASSERT(span_is(in, r.msg.method_span, "GET"));
    req_err("\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_BARE_LF, 400);
}

static void
test_req_absolute_form(void)
{
    const char   *in = "GET http://api.example.com:8080/v1/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n";
    const char   *in2 = "GET HTTPS://h.example?q HTTP/1.1\r\nHost: h.example\r\n\r\n";
    struct result r;

    req(in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.target_form, FP_H1_TARGET_ABSOLUTE);
    CU_ASSERT(span_is(in, r.msg.authority, "api.example.com:8080"));
    CU_ASSERT(span_is(in, r.msg.path, "/v1/x?y=1"));
    /* RFC 9112 §3.2.2: the target's authority overrides Host. */
    CU_ASSERT(span_is(in, r.msg.host, "api.example.com:8080"));
    req(in2, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT(span_is(in2, r.msg.authority, "h.example"));
    CU_ASSERT(span_is(in2, r.msg.path, "?q"));
    req("GET http://[::1]:80 HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.path.len, 0);
    req_err("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET http://user@h/x HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET http:/h/x HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET 1http://h/ HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET ftp://h/x HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET httpx://h/x HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET http:x HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
}

static void
test_req_asterisk_form(void)
{
    const char   *in = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    struct result r;

    req(in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.method, FP_H1_METH_OPTIONS);
    CU_ASSERT_EQUAL(r.msg.target_form, FP_H1_TARGET_ASTERISK);
    CU_ASSERT(span_is(in, r.msg.target, "*"));
    req_err("GET * HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
}

static void
test_req_target_chars(void)
{
    req_err("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_CTL, 400);
    req_err("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", FP_H1_E_TARGET, 400);
    req_err("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", FP_H1_E_VERSION, 400);
    req_err("GET /\r\n\r\n", FP_H1_E_VERSION, 400);
}

static void
test_req_versions(void)
{
    struct result r;

    req("GET / HTTP/1.0\r\n\r\n", &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.version_minor, 0);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, 0);
    CU_ASSERT_EQUAL(r.msg.host.len, 0);
    req_err("GET / HTTP/2.0\r\nHost: a\r\n\r\n", FP_H1_E_VERSION_UNSUPPORTED, 505);
    req_err("GET / HTTP/1.2\r\nHost: a\r\n\r\n", FP_H1_E_VERSION_UNSUPPORTED, 505);
    req_err("GET / HTTP/0.9\r\nHost: a\r\n\r\n", FP_H1_E_VERSION_UNSUPPORTED, 505);
    req_err("GET / http/1.1\r\nHost: a\r\n\r\n", FP_H1_E_VERSION, 400);
    req_err("GET / HTTP/1.10\r\nHost: a\r\n\r\n", FP_H1_E_VERSION, 400);
    req_err("GET / HTTP/1\r\nHost: a\r\n\r\n", FP_H1_E_VERSION, 400);
    req_err("GET / HTTP/1.1\nHost: a\r\n\r\n", FP_H1_E_BARE_LF, 400);
    req_err("GET / HTTP/1.1\x01\r\nHost: a\r\n\r\n", FP_H1_E_CTL, 400);
}

/* ---- Host ---- */

static void
test_req_host(void)
{
    struct result r;

    req_err("GET / HTTP/1.1\r\n\r\n", FP_H1_E_HOST_MISSING, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", FP_H1_E_HOST_DUP, 400);
    req_err("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", FP_H1_E_HOST_INVALID, 400);
    req_err("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", FP_H1_E_HOST_INVALID, 400);
    req_err("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", FP_H1_E_HOST_INVALID, 400);
    req("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    /* RFC 9110 §7.2: an empty Host is valid when the target has no authority. */
    req("GET / HTTP/1.1\r\nHost:\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.host.len, 0);
    CU_ASSERT_EQUAL(r.msg.host_hdr, 0);
}

/* ---- Content-Length ---- */

static void
test_req_content_length(void)
{
    const char   *in = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
    struct result r;

    req(in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_LENGTH);
    CU_ASSERT_EQUAL(r.msg.content_length, 5);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_CONTENT_LENGTH, FP_H1_F_CONTENT_LENGTH);
    CU_ASSERT_EQUAL(r.msg.head_len, strlen(in) - 8);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.body_consumed, 5);
    CU_ASSERT_EQUAL(r.payload, 5);

    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_LENGTH);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.body_consumed, 0);
    /* RFC 9110 §8.6: a list of identical values, or identical repeated fields. */
    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.content_length, 5);
    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.content_length, 5);
    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.content_length, 9223372036854775807ull);
    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.content_length, 7);

    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            FP_H1_E_CL_MISMATCH, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", FP_H1_E_CL_MISMATCH, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", FP_H1_E_CL_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", FP_H1_E_CL_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", FP_H1_E_CL_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", FP_H1_E_CL_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", FP_H1_E_CL_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", FP_H1_E_CL_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n", FP_H1_E_CL_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n",
            FP_H1_E_CL_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            FP_H1_E_CL_INVALID, 400);
}

/* ---- Transfer-Encoding ---- */

static void
test_req_transfer_encoding(void)
{
    const char   *in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    struct result r;

    req(in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CHUNKED);
    CU_ASSERT_EQUAL(r.msg.flags & (FP_H1_F_TRANSFER_ENC | FP_H1_F_CHUNKED),
                    FP_H1_F_TRANSFER_ENC | FP_H1_F_CHUNKED);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.body_consumed, strlen("5\r\nhello\r\n0\r\n\r\n"));
    CU_ASSERT_EQUAL(r.payload, 5);
    /* Transfer-Encoding is forwarded with the unchanged chunked body. */
    CU_ASSERT_EQUAL(r.hdrs[1].flags, 0);

    req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CHUNKED);
    req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CHUNKED);
    req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, \r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CHUNKED);

    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            FP_H1_E_TE_NOT_CHUNKED, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: gzip\r\n\r\n",
            FP_H1_E_TE_NOT_CHUNKED, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", FP_H1_E_TE_NOT_CHUNKED,
            400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
            FP_H1_E_TE_UNKNOWN, 501);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            FP_H1_E_TE_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
            FP_H1_E_TE_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
            FP_H1_E_TE_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", FP_H1_E_TE_INVALID, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", FP_H1_E_TE_INVALID, 400);
    req_err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", FP_H1_E_TE_HTTP10, 400);
}

/* Request smuggling: CL and TE together are refused in either order. */
static void
test_req_cl_te_smuggling(void)
{
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            FP_H1_E_CL_TE, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 4\r\n\r\n0\r\n\r\n",
            FP_H1_E_CL_TE, 400);
    /* Space before the colon is the classic way to hide a TE from one of two parsers. */
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
            "Transfer-Encoding : chunked\r\n\r\n",
            FP_H1_E_WS_BEFORE_COLON, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
            "Transfer-Encoding:\x0b"
            "chunked\r\n\r\n",
            FP_H1_E_CTL, 400);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nX: y\r\n"
            " Transfer-Encoding: chunked\r\n\r\n",
            FP_H1_E_OBS_FOLD, 400);
}

/* Known request smuggling variants (PortSwigger, HAProxy and nginx advisories): each one is
 * refused with the error that names its cause, never parsed with a framing. */
static void
test_req_smuggling_variants(void)
{
    static const struct {
        const char      *fields;
        enum fp_h1_error err;
    } cases[] = {
            {"Transfer-Encoding: xchunked\r\n", FP_H1_E_TE_UNKNOWN},
            {"Transfer-Encoding: chunk\r\n", FP_H1_E_TE_UNKNOWN},
            {"Transfer-Encoding: chunked, identity\r\n", FP_H1_E_TE_UNKNOWN},
            {"Transfer-Encoding: chunked\r\nTransfer-encoding: x\r\n", FP_H1_E_TE_UNKNOWN},
            {"Transfer-Encoding: chunked\xff\r\n", FP_H1_E_TE_INVALID},
            {"Transfer-Encoding: \"chunked\"\r\n", FP_H1_E_TE_INVALID},
            {"Transfer-Encoding : chunked\r\n", FP_H1_E_WS_BEFORE_COLON},
            {"Transfer-Encoding\n: chunked\r\n", FP_H1_E_BARE_LF},
            {"X: X\nTransfer-Encoding: chunked\r\n", FP_H1_E_BARE_LF},
            {"X: X\rTransfer-Encoding: chunked\r\n", FP_H1_E_BARE_CR},
            {"X: X\r\n Transfer-Encoding: chunked\r\n", FP_H1_E_OBS_FOLD},
            {"X: X\r\n\tTransfer-Encoding: chunked\r\n", FP_H1_E_OBS_FOLD},
            {"Transfer-Encoding: \x0b"
             "chunked\r\n",
             FP_H1_E_CTL},
            {"Transfer-Encoding: \x0c"
             "chunked\r\n",
             FP_H1_E_CTL},
            {"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", FP_H1_E_CL_TE},
            {"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", FP_H1_E_CL_TE},
            {"Content-Length: 0\r\nContent-Length: 5\r\n", FP_H1_E_CL_MISMATCH},
            {"Content-Length: 1e1\r\n", FP_H1_E_CL_INVALID},
            {"Content-Length: 5.0\r\n", FP_H1_E_CL_INVALID},
            {"Content-Length: \"5\"\r\n", FP_H1_E_CL_INVALID},
            {"Content-Length : 5\r\n", FP_H1_E_WS_BEFORE_COLON},
            {"Content-Length: 5\r\r\n", FP_H1_E_BARE_CR},
    };
    char   in[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n0\r\n\r\n", cases[i].fields);
        req_err(in, cases[i].err, fp_h1_error_status(cases[i].err, FP_H1_REQUEST));
    }
}

/* ---- Connection, persistence, Expect ---- */

static void
test_req_persistence(void)
{
    struct result r;

    req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.flags & (FP_H1_F_KEEP_ALIVE | FP_H1_F_CONN_CLOSE), FP_H1_F_CONN_CLOSE);
    req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.flags & (FP_H1_F_KEEP_ALIVE | FP_H1_F_CONN_KEEPALIVE),
                    FP_H1_F_KEEP_ALIVE | FP_H1_F_CONN_KEEPALIVE);
    req("GET / HTTP/1.0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, 0);
    req("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, 0);
    req("GET / HTTP/1.1\r\nHost: a\r\nConnection: ,, upgrade\r\nUpgrade: websocket\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.flags & (FP_H1_F_CONN_UPGRADE | FP_H1_F_UPGRADE | FP_H1_F_KEEP_ALIVE),
                    FP_H1_F_CONN_UPGRADE | FP_H1_F_UPGRADE | FP_H1_F_KEEP_ALIVE);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nConnection: clo se\r\n\r\n", FP_H1_E_CONNECTION, 400);
}

static void
test_req_hop_by_hop_marking(void)
{
    const char   *in = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Foo, "
                       "content-length, Transfer-Encoding, host\r\nKeep-Alive: 5\r\nX-Foo: 1\r\n"
                       "X-Bar: 2\r\nTE: trailers\r\nContent-Length: 0\r\nProxy-Connection: x\r\n"
                       "Upgrade: h2c\r\nTrailer: X\r\n\r\n";
    struct result r;
    uint32_t      i;
    const char   *kept[] = {"Host", "X-Bar", "Content-Length"};
    bool          want;
    size_t        k;

    req(in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.nb_headers, 10);
    CU_ASSERT(r.msg.flags & FP_H1_F_CONN_OTHER);
    for (i = 0; i < r.msg.nb_headers; i++) {
        want = true;
        for (k = 0; k < 3; k++) {
            if (span_is(in, r.hdrs[i].name, kept[k])) {
                want = false;
            }
        }
        CU_ASSERT_EQUAL(r.hdrs[i].flags & FP_H1_HDR_DROP, want ? FP_H1_HDR_DROP : 0);
    }
    CU_ASSERT(fp_h1_connection_lists(&r.msg, in, "x-foo", 5));
    CU_ASSERT(!fp_h1_connection_lists(&r.msg, in, "x-bar", 5));
    CU_ASSERT(!fp_h1_connection_lists(&r.msg, in, "x-fo", 4));
}

/* Connection options over several fields; the cap of 32 options (tightened). */
static void
test_req_connection_options(void)
{
    const char   *in = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nConnection: x-a\r\nX-B: 2\r\n"
                       "Connection: X-B,\t x-c\r\nX-A: 3\r\nX-D: 4\r\n\r\n";
    char          big[1024];
    int           n;
    int           i;
    struct result r;

    req(in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.nb_headers, 7);
    CU_ASSERT_EQUAL(r.hdrs[0].flags, 0);              /* Host */
    CU_ASSERT_EQUAL(r.hdrs[1].flags, FP_H1_HDR_DROP); /* X-A */
    CU_ASSERT_EQUAL(r.hdrs[2].flags, FP_H1_HDR_DROP); /* Connection */
    CU_ASSERT_EQUAL(r.hdrs[3].flags, FP_H1_HDR_DROP); /* X-B */
    CU_ASSERT_EQUAL(r.hdrs[5].flags, FP_H1_HDR_DROP); /* X-A again */
    CU_ASSERT_EQUAL(r.hdrs[6].flags, 0);              /* X-D */
    CU_ASSERT(fp_h1_connection_lists(&r.msg, in, "X-C", 3));

    n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close");
    for (i = 0; i < 31; i++) {
        n += snprintf(big + n, sizeof(big) - (size_t)n, ", o%d", i);
    }
    snprintf(big + n, sizeof(big) - (size_t)n, "\r\n\r\n");
    req(big, &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    snprintf(big + n, sizeof(big) - (size_t)n, ",,, o31\r\n\r\n");
    req_err(big, FP_H1_E_CONNECTION, 400);
}

static void
test_req_expect(void)
{
    struct result r;

    req("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc", &r);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_EXPECT_CONTINUE, FP_H1_F_EXPECT_CONTINUE);
    CU_ASSERT_EQUAL(r.payload, 3);
    /* RFC 9110 §10.1.1: ignored in HTTP/1.0. */
    req("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_EXPECT_CONTINUE, 0);
    req_err("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", FP_H1_E_EXPECT, 417);
}

/* ---- Field syntax ---- */

static void
test_req_field_syntax(void)
{
    struct result   r;
    const char      nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    struct msg_opts o;

    req_err("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", FP_H1_E_OBS_FOLD, 400);
    req_err("GET / HTTP/1.1\r\n Host: a\r\n\r\n", FP_H1_E_OBS_FOLD, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", FP_H1_E_BARE_CR, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n", FP_H1_E_BARE_LF, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\n", FP_H1_E_BARE_LF, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\rX", FP_H1_E_BARE_CR, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", FP_H1_E_CTL, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", FP_H1_E_CTL, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", FP_H1_E_WS_BEFORE_COLON, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX\t: a\r\n\r\n", FP_H1_E_WS_BEFORE_COLON, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n", FP_H1_E_FIELD_NAME, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX@Y: a\r\n\r\n", FP_H1_E_FIELD_NAME, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nX(Y): a\r\n\r\n", FP_H1_E_FIELD_NAME, 400);
    req_err("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", FP_H1_E_FIELD_NAME, 400);

    opts_init(&o, FP_H1_REQUEST, FP_H1_METH_OTHER);
    run_msg(&o, nul, sizeof(nul) - 1, &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_ERROR);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_CTL);

    /* obs-text and HTAB are valid in values (RFC 9110 §5.5). */
    req("GET / HTTP/1.1\r\nHost: a\r\nX: \xff\xfe\ta\t\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.hdrs[1].value.len, 4);
}

/* ---- Limits ---- */

static void
test_req_limits(void)
{
    struct msg_opts o;
    struct result   r;
    char            line[200];
    char            big[600];

    opts_init(&o, FP_H1_REQUEST, FP_H1_METH_OTHER);
    o.lim.max_line_len = 30;
    /* "GET /" + path + " HTTP/1.1" is exactly 30 bytes: accepted. */
    snprintf(line, sizeof(line), "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", "aaaaaaaaaaaaaaaa");
    run_msg(&o, line, strlen(line), &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    snprintf(line, sizeof(line), "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n", "aaaaaaaaaaaaaaaaa");
    run_msg(&o, line, strlen(line), &r);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_LINE_TOO_LONG);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.head_err, FP_H1_REQUEST), 414);
    /* Found before the end of the line arrives. */
    run_msg(&o, line, 32, &r);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_LINE_TOO_LONG);

    opts_init(&o, FP_H1_REQUEST, FP_H1_METH_OTHER);
    o.lim.max_head_bytes = 64;
    snprintf(line, sizeof(line), "GET / HTTP/1.1\r\nHost: a\r\nX-Long: %s\r\n\r\n",
             "012345678901234567890123456");
    CU_ASSERT_EQUAL(strlen(line), 64);
    run_msg(&o, line, strlen(line), &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    snprintf(line, sizeof(line), "GET / HTTP/1.1\r\nHost: a\r\nX-Long: %s\r\n\r\n",
             "0123456789012345678901234567");
    run_msg(&o, line, strlen(line), &r);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_HEAD_TOO_LARGE);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.head_err, FP_H1_REQUEST), 431);

    /* A request-line longer than the whole head limit is still a 414. */
    opts_init(&o, FP_H1_REQUEST, FP_H1_METH_OTHER);
    o.lim.max_head_bytes = 20;
    snprintf(line, sizeof(line), "GET /aaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n");
    run_msg(&o, line, strlen(line), &r);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_LINE_TOO_LONG);

    /* Header count: the limit and the array capacity, whichever is smaller. */
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n",
             "X: 1\r\nX: 1\r\nX: 1\r\nX: 1\r\n");
    opts_init(&o, FP_H1_REQUEST, FP_H1_METH_OTHER);
    o.lim.max_headers = 5;
    run_msg(&o, big, strlen(big), &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    o.lim.max_headers = 4;
    run_msg(&o, big, strlen(big), &r);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_TOO_MANY_HEADERS);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.head_err, FP_H1_REQUEST), 431);
    fp_h1_limits_default(&o.lim);
    o.nb_hdrs = 4;
    run_msg(&o, big, strlen(big), &r);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_TOO_MANY_HEADERS);

    /* Optional body limit: 413 from Content-Length at once. */
    opts_init(&o, FP_H1_REQUEST, FP_H1_METH_OTHER);
    o.lim.max_body_bytes = 10;
    snprintf(big, sizeof(big), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n");
    run_msg(&o, big, strlen(big), &r);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_BODY_TOO_LARGE);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.head_err, FP_H1_REQUEST), 413);
    snprintf(big, sizeof(big), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n");
    run_msg(&o, big, strlen(big), &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
}

static void
test_req_defaults_and_misuse(void)
{
    struct fp_h1_limits lim;
    struct fp_h1_parser p;
    struct fp_h1_header h[4];
    const char         *in = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

    fp_h1_limits_default(&lim);
    CU_ASSERT_EQUAL(lim.max_line_len, 8192);
    CU_ASSERT_EQUAL(lim.max_head_bytes, 32768);
    CU_ASSERT_EQUAL(lim.max_headers, 100);
    CU_ASSERT_EQUAL(lim.max_body_bytes, 0);

    fp_h1_parser_init(&p, FP_H1_REQUEST, FP_H1_METH_OTHER, NULL, h, 4);
    CU_ASSERT_EQUAL(fp_h1_parse(&p, in, 10), FP_H1_NEED_MORE);
    CU_ASSERT_EQUAL(fp_h1_parse(&p, in, 5), FP_H1_ERROR);
    CU_ASSERT_EQUAL(p.err, FP_H1_E_CALLER);
    /* Errors are sticky. */
    CU_ASSERT_EQUAL(fp_h1_parse(&p, in, strlen(in)), FP_H1_ERROR);

    fp_h1_parser_init(&p, FP_H1_REQUEST, FP_H1_METH_OTHER, NULL, h, 4);
    CU_ASSERT_EQUAL(fp_h1_parse(&p, in, 0), FP_H1_NEED_MORE);
    CU_ASSERT_EQUAL(fp_h1_parse(&p, in, strlen(in)), FP_H1_DONE);
    CU_ASSERT_EQUAL(fp_h1_parse(&p, in, strlen(in)), FP_H1_DONE);
    CU_ASSERT_EQUAL(p.msg.head_len, strlen(in));
}

/* A zero limit means its default; the head limit is capped at 1 GiB. */
static void
test_req_zero_limits(void)
{
    static char         line[9000];
    static const char   tail[] = " HTTP/1.1\r\nHost: a\r\n\r\n";
    struct fp_h1_limits lim;
    struct fp_h1_parser p;
    struct fp_h1_header h[4];
    struct result       r;
    size_t              n;

    memset(&lim, 0, sizeof(lim));
    fp_h1_parser_init(&p, FP_H1_REQUEST, FP_H1_METH_OTHER, &lim, h, 4);
    CU_ASSERT_EQUAL(p.p_lim.max_head_bytes, 32768);
    lim.max_head_bytes = UINT32_MAX;
    fp_h1_parser_init(&p, FP_H1_REQUEST, FP_H1_METH_OTHER, &lim, h, 4);
    CU_ASSERT_EQUAL(p.p_lim.max_line_len, 8192);
    CU_ASSERT_EQUAL(p.p_lim.max_head_bytes, 1u << 30);
    CU_ASSERT_EQUAL(p.p_lim.max_headers, 100);
    CU_ASSERT_EQUAL(p.p_lim.max_chunk_line, 4096);
    CU_ASSERT_EQUAL(p.p_lim.max_trailer_bytes, 8192);
    CU_ASSERT_EQUAL(p.p_lim.max_trailers, 32);
    CU_ASSERT_EQUAL(p.p_max_hdrs, 4);

    /* The default line limit, seen through the parser: 8192 bytes pass, 8193 do not. */
    memset(line, 'a', sizeof(line));
    memcpy(line, "GET /", 5);
    n = 8192 - strlen(" HTTP/1.1");
    memcpy(line + n, tail, sizeof(tail) - 1);
    fp_h1_parser_init(&p, FP_H1_REQUEST, FP_H1_METH_OTHER, NULL, h, 4);
    CU_ASSERT_EQUAL(fp_h1_parse(&p, line, n + sizeof(tail) - 1), FP_H1_DONE);
    memset(line, 'a', sizeof(line));
    memcpy(line, "GET /", 5);
    memcpy(line + n + 1, tail, sizeof(tail) - 1);
    fp_h1_parser_init(&p, FP_H1_REQUEST, FP_H1_METH_OTHER, NULL, h, 4);
    CU_ASSERT_EQUAL(fp_h1_parse(&p, line, n + sizeof(tail)), FP_H1_ERROR);
    CU_ASSERT_EQUAL(p.err, FP_H1_E_LINE_TOO_LONG);

    /* OWS around list elements, and empty ones, in every list field. */
    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2 ,\t2\r\nExpect: ,100-continue ,\r\n"
        "\r\nab",
        &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.content_length, 2);
    CU_ASSERT(r.msg.flags & FP_H1_F_EXPECT_CONTINUE);
}

static void
test_req_pipelined(void)
{
    const char         *in = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n";
    struct fp_h1_parser p;
    struct fp_h1_header h[4];
    uint32_t            first;

    fp_h1_parser_init(&p, FP_H1_REQUEST, FP_H1_METH_OTHER, NULL, h, 4);
    CU_ASSERT_EQUAL_FATAL(fp_h1_parse(&p, in, strlen(in)), FP_H1_DONE);
    first = p.msg.head_len;
    CU_ASSERT_EQUAL(first, strlen(in) / 2);
    fp_h1_parser_init(&p, FP_H1_REQUEST, FP_H1_METH_OTHER, NULL, h, 4);
    CU_ASSERT_EQUAL_FATAL(fp_h1_parse(&p, in + first, strlen(in) - first), FP_H1_DONE);
    CU_ASSERT(span_is(in + first, p.msg.target, "/b"));
}

/* ---- Responses ---- */

static void
test_res_framing(void)
{
    const char   *in = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: x\r\n\r\nabcHTTP";
    struct result r;

    res(FP_H1_METH_GET, in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.status, 200);
    CU_ASSERT(span_is(in, r.msg.reason, "OK"));
    CU_ASSERT_EQUAL(r.msg.version_minor, 1);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_LENGTH);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, FP_H1_F_KEEP_ALIVE);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.body_consumed, 3);

    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CHUNKED);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.body_consumed, 5);

    /* RFC 9112 §6.3 item 7: no framing, delimited by close; not persistent. */
    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\n\r\nall of this", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CLOSE);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, 0);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.body_consumed, 11);
    CU_ASSERT_EQUAL(r.payload, 11);

    /* Item 4: TE without final chunked: close-delimited. */
    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CLOSE);
    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CLOSE);

    /* Item 3: TE overrides CL; the CL is not forwarded. */
    in = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
         "1\r\na\r\n0\r\n\r\n";
    res(FP_H1_METH_GET, in, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CHUNKED);
    CU_ASSERT(r.msg.flags & FP_H1_F_CL_IGNORED);
    CU_ASSERT_EQUAL(r.hdrs[0].flags, FP_H1_HDR_DROP);
    CU_ASSERT_EQUAL(r.hdrs[1].flags, 0);
    CU_ASSERT_EQUAL(r.payload, 1);
}

static void
test_res_no_body(void)
{
    const char   *cl = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    struct result r;

    res(FP_H1_METH_HEAD, cl, &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_NONE);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, FP_H1_F_KEEP_ALIVE);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    res(FP_H1_METH_GET, "HTTP/1.1 204 No Content\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_NONE);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, FP_H1_F_KEEP_ALIVE);
    res(FP_H1_METH_GET, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_NONE);
    res(FP_H1_METH_GET, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_NONE);
    res(FP_H1_METH_POST, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.status, 100);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_NONE);
    CU_ASSERT_EQUAL(r.msg.head_len, 25);
    CU_ASSERT_EQUAL(r.body_consumed, 0);
    res(FP_H1_METH_GET,
        "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
        "Upgrade: websocket\r\n\r\nxx",
        &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_TUNNEL);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, 0);
    CU_ASSERT_EQUAL(r.body_consumed, 2);
    res(FP_H1_METH_CONNECT, "HTTP/1.1 200 OK\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_TUNNEL);
    res(FP_H1_METH_CONNECT, "HTTP/1.1 403 No\r\nContent-Length: 0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_LENGTH);
}

static void
test_res_persistence(void)
{
    struct result r;

    res(FP_H1_METH_GET, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.version_minor, 0);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, 0);
    res(FP_H1_METH_GET, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        &r);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, FP_H1_F_KEEP_ALIVE);
    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_KEEP_ALIVE, 0);
}

static void
test_res_status_line(void)
{
    struct result r;
    const char   *in = "HTTP/1.1 404 \xe9t\xe9 perdu\r\n\r\n";

    res(FP_H1_METH_GET, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.reason.len, 0);
    res(FP_H1_METH_GET, "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.reason.len, 0);
    res(FP_H1_METH_GET, in, &r);
    CU_ASSERT_EQUAL(r.head_st, FP_H1_DONE);
    CU_ASSERT(span_is(in, r.msg.reason, "\xe9t\xe9 perdu"));
    res_err(FP_H1_METH_GET, "HTTP/1.1 20 OK\r\n\r\n", FP_H1_E_STATUS);
    res_err(FP_H1_METH_GET, "HTTP/1.1 2000 OK\r\n\r\n", FP_H1_E_STATUS);
    res_err(FP_H1_METH_GET, "HTTP/1.1 099 OK\r\n\r\n", FP_H1_E_STATUS);
    res_err(FP_H1_METH_GET, "HTTP/1.1  200 OK\r\n\r\n", FP_H1_E_STATUS);
    res_err(FP_H1_METH_GET, "HTTP/1.1 200 O\x01K\r\n\r\n", FP_H1_E_CTL);
    res_err(FP_H1_METH_GET, "HTTP/2.0 200 OK\r\n\r\n", FP_H1_E_VERSION_UNSUPPORTED);
    res_err(FP_H1_METH_GET, "HTTP/1.1\r\n\r\n", FP_H1_E_STATUS);
    res_err(FP_H1_METH_GET, "ICY 200 OK\r\n\r\n", FP_H1_E_VERSION);
    res_err(FP_H1_METH_GET, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            FP_H1_E_TE_HTTP10);
    res_err(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            FP_H1_E_CL_MISMATCH);
    res_err(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", FP_H1_E_OBS_FOLD);
}

static void
test_res_limits(void)
{
    struct msg_opts o;
    struct result   r;
    const char     *in = "HTTP/1.1 200 A long reason phrase\r\n\r\n";

    opts_init(&o, FP_H1_RESPONSE, FP_H1_METH_GET);
    o.lim.max_line_len = 20;
    run_msg(&o, in, strlen(in), &r);
    CU_ASSERT_EQUAL(r.head_err, FP_H1_E_LINE_TOO_LONG);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.head_err, FP_H1_RESPONSE), 502);
}

/* ---- Body tracker ---- */

/* Runs a chunked request body (after a fixed head) every way. */
static void
chunked_req(const char *body, const struct fp_h1_limits *lim, struct result *r)
{
    struct msg_opts o;
    char            in[4096];

    opts_init(&o, FP_H1_REQUEST, FP_H1_METH_OTHER);
    if (lim != NULL) {
        o.lim = *lim;
    }
    o.eof = true;
    snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%s",
             body);
    run_msg(&o, in, strlen(in), r);
    CU_ASSERT_EQUAL(r->head_st, FP_H1_DONE);
}

static void
chunked_ok(const char *body, size_t consumed, uint64_t payload)
{
    struct result r;

    chunked_req(body, NULL, &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.body_consumed, consumed);
    CU_ASSERT_EQUAL(r.payload, payload);
    if (r.body_st != FP_H1_DONE || r.body_consumed != consumed) {
        fprintf(stderr, "chunked body %s: status %d err %d consumed %zu\n", body, r.body_st,
                r.body_err, r.body_consumed);
    }
}

static void
chunked_err(const char *body, enum fp_h1_error err)
{
    struct result r;

    chunked_req(body, NULL, &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_ERROR);
    CU_ASSERT_EQUAL(r.body_err, err);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.body_err, FP_H1_REQUEST), 400);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.body_err, FP_H1_RESPONSE), 502);
    if (r.body_err != err) {
        fprintf(stderr, "chunked body %s: err %d want %d\n", body, r.body_err, err);
    }
}

static void
test_body_chunked_valid(void)
{
    const char *b1 = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

    chunked_ok(b1, strlen(b1), 11);
    chunked_ok("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 15, 5);
    chunked_ok("0\r\n\r\n", 5, 0);
    chunked_ok("000\r\n\r\n", 7, 0);
    chunked_ok("A\r\n0123456789\r\n0\r\n\r\n", 20, 10);
    chunked_ok("a\r\n0123456789\r\n0\r\n\r\n", 20, 10);
    chunked_ok("1;ext\r\nx\r\n0;a=b;c=\"q \\\" ;x\"\r\n\r\n", 31, 1);
    chunked_ok("1 ; a = b ;c\r\nx\r\n0\r\n\r\n", 22, 1);
    chunked_ok("0\r\nX-Trailer: 1\r\nY: \r\n\r\n", 24, 0);
    chunked_ok("3\r\n\r\n\r\r\n0\r\n\r\n", 13, 3);
}

static void
test_body_chunked_invalid(void)
{
    chunked_err("g\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("-1\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("0x5\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("+5\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("5\nhello\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("5\r\rhello\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("10000000000000000\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("8000000000000000\r\n", FP_H1_E_CHUNK_SIZE);
    chunked_err("5\r\nhelloX\r\n", FP_H1_E_CHUNK_CRLF);
    chunked_err("5\r\nhello\r0\r\n", FP_H1_E_CHUNK_CRLF);
    chunked_err("5\r\nhello\n0\r\n", FP_H1_E_CHUNK_CRLF);
    chunked_err("5 \r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a=\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a b\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a=\"x\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a=\"x\"y\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;=b\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a\x01\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("0\r\nX: 1\r\n cont\r\n\r\n", FP_H1_E_TRAILER);
    chunked_err("0\r\nX : 1\r\n\r\n", FP_H1_E_TRAILER);
    chunked_err("0\r\nX: \x01\r\n\r\n", FP_H1_E_TRAILER);
    chunked_err("0\r\nX: 1\n\r\n", FP_H1_E_TRAILER);
    chunked_err("0\r\n\r\r", FP_H1_E_TRAILER);
    chunked_err("0\r\nX: 1\rX", FP_H1_E_TRAILER);
    chunked_err("5;;a\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a= ;b\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a\"b\"\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a=\"\\\x01\"\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
    chunked_err("5;a=b=c\r\nhello\r\n", FP_H1_E_CHUNK_EXT);
}

static void
test_body_chunked_limits(void)
{
    struct fp_h1_limits lim;
    struct result       r;

    fp_h1_limits_default(&lim);
    lim.max_chunk_line = 4;
    chunked_req("0005\r\nhello\r\n0\r\n\r\n", &lim, &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    chunked_req("00005\r\nhello\r\n0\r\n\r\n", &lim, &r);
    CU_ASSERT_EQUAL(r.body_err, FP_H1_E_CHUNK_LINE_TOO_LONG);
    CU_ASSERT_EQUAL(r.body_consumed, 4);

    fp_h1_limits_default(&lim);
    lim.max_trailers = 2;
    chunked_req("0\r\nA: 1\r\nB: 2\r\n\r\n", &lim, &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    chunked_req("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &lim, &r);
    CU_ASSERT_EQUAL(r.body_err, FP_H1_E_TRAILER_TOO_LARGE);

    fp_h1_limits_default(&lim);
    lim.max_trailer_bytes = 8; /* "A: 12\r\n\r\n" is 9 */
    chunked_req("0\r\nA: 1\r\n\r\n", &lim, &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    chunked_req("0\r\nA: 12\r\n\r\n", &lim, &r);
    CU_ASSERT_EQUAL(r.body_err, FP_H1_E_TRAILER_TOO_LARGE);

    fp_h1_limits_default(&lim);
    lim.max_body_bytes = 10;
    chunked_req("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", &lim, &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.payload, 10);
    chunked_req("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", &lim, &r);
    CU_ASSERT_EQUAL(r.body_err, FP_H1_E_BODY_TOO_LARGE);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.body_err, FP_H1_REQUEST), 413);
    CU_ASSERT_EQUAL(r.payload, 5);
}

static void
test_body_response_unlimited(void)
{
    struct msg_opts o;
    struct result   r;
    const char     *in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n";

    opts_init(&o, FP_H1_RESPONSE, FP_H1_METH_GET);
    o.lim.max_body_bytes = 10;
    run_msg(&o, in, strlen(in), &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.payload, 11);
}

static void
test_body_eof(void)
{
    struct result r;

    /* A truncated Content-Length body. */
    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_ERROR);
    CU_ASSERT_EQUAL(r.body_err, FP_H1_E_TRUNCATED);
    CU_ASSERT_EQUAL(r.body_consumed, 3);
    CU_ASSERT_EQUAL(fp_h1_error_status(r.body_err, FP_H1_RESPONSE), 502);
    /* A truncated chunked body. */
    chunked_req("5\r\nhel", NULL, &r);
    CU_ASSERT_EQUAL(r.body_st, FP_H1_ERROR);
    CU_ASSERT_EQUAL(r.body_err, FP_H1_E_TRUNCATED);
    CU_ASSERT_EQUAL(r.payload, 3);
}

/* ---- Content-Length lists, transfer codings and decoding (issue 14) ---- */

static void
test_cl_list_rewrite(void)
{
    const char   *two = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX: y\r\n"
                        "content-length: 5\r\n\r\nhello";
    struct result r;

    /* RFC 9110 §8.6: accepted as the one value, every field dropped, one written instead. */
    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_CL_REWRITE, FP_H1_F_CL_REWRITE);
    CU_ASSERT_EQUAL(r.msg.content_length, 5);
    CU_ASSERT_EQUAL(r.hdrs[1].flags, FP_H1_HDR_DROP);
    CU_ASSERT_EQUAL(r.body_consumed, 5);
    req(two, &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_CL_REWRITE, FP_H1_F_CL_REWRITE);
    CU_ASSERT_EQUAL(r.hdrs[1].flags, FP_H1_HDR_DROP);
    CU_ASSERT_EQUAL(r.hdrs[2].flags, 0);
    CU_ASSERT_EQUAL(r.hdrs[3].flags, FP_H1_HDR_DROP);
    /* A single value passes as received. */
    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", &r);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_CL_REWRITE, 0);
    CU_ASSERT_EQUAL(r.hdrs[1].flags, 0);

    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", &r);
    CU_ASSERT_EQUAL_FATAL(r.head_st, FP_H1_DONE);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_CL_REWRITE, FP_H1_F_CL_REWRITE);
    CU_ASSERT_EQUAL(r.hdrs[0].flags, FP_H1_HDR_DROP);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_LENGTH);
    /* A HEAD response keeps its (rewritten) length although it has no body. */
    res(FP_H1_METH_HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_CL_REWRITE, FP_H1_F_CL_REWRITE);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_NONE);
    /* TE overrides CL (RFC 9112 §6.3 item 3): dropped, and nothing written in its place. */
    res(FP_H1_METH_GET,
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        &r);
    CU_ASSERT_EQUAL(r.msg.flags & (FP_H1_F_CL_REWRITE | FP_H1_F_CL_IGNORED), FP_H1_F_CL_IGNORED);
    CU_ASSERT_EQUAL(r.hdrs[0].flags, FP_H1_HDR_DROP);
    res_err(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", FP_H1_E_CL_MISMATCH);
    res_err(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            FP_H1_E_CL_MISMATCH);
}

static void
test_res_te_other(void)
{
    struct result r;

    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_TE_OTHER, 0);
    res(FP_H1_METH_GET,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CHUNKED);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_TE_OTHER, FP_H1_F_TE_OTHER);
    res(FP_H1_METH_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.msg.body, FP_H1_BODY_CLOSE);
    CU_ASSERT_EQUAL(r.msg.flags & FP_H1_F_TE_OTHER, FP_H1_F_TE_OTHER);
}

/*
 * Decodes in (a whole body of kind from msg) fed in steps of mode; returns the status and
 * fills out with the decoded bytes and *consumed with the bytes examined.
 */
static enum fp_h1_status
decode_all(const struct fp_h1_msg *msg, const char *in, size_t len, int mode, uint64_t seed,
           char *out, size_t *outlen, size_t *consumed)
{
    struct fp_h1_body b;
    enum fp_h1_status st = FP_H1_NEED_MORE;
    char              buf[256];
    size_t            off = 0;
    size_t            n;
    size_t            used;
    size_t            dec;

    fp_h1_body_init(&b, msg, NULL);
    *outlen = 0;
    while (off < len && st == FP_H1_NEED_MORE) {
        n = next_step(mode, &seed, len - off);
        memcpy(buf, in + off, n);
        st = fp_h1_body_decode(&b, buf, n, &used, &dec);
        CU_ASSERT(dec <= used && used <= n);
        memcpy(out + *outlen, buf, dec);
        *outlen += dec;
        off += used;
    }
    *consumed = off;
    CU_ASSERT_EQUAL(b.payload_bytes, *outlen);
    return st;
}

static void
test_body_decode(void)
{
    const char      *in = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: t\r\n\r\nNEXT";
    struct fp_h1_msg msg;
    char             out[256];
    size_t           outlen;
    size_t           used;
    int              i;

    memset(&msg, 0, sizeof(msg));
    msg.kind = FP_H1_RESPONSE;
    msg.body = FP_H1_BODY_CHUNKED;
    for (i = 0; i <= NB_SEEDS; i++) {
        CU_ASSERT_EQUAL(decode_all(&msg, in, strlen(in), i == 0 ? FEED_BYTES : FEED_RANDOM,
                                   (uint64_t)i * 0x9e3779b97f4a7c15ull, out, &outlen, &used),
                        FP_H1_DONE);
        CU_ASSERT_EQUAL(used, strlen(in) - 4);
        CU_ASSERT(outlen == 11 && memcmp(out, "hello world", 11) == 0);
    }
    CU_ASSERT_EQUAL(decode_all(&msg, in, strlen(in), FEED_WHOLE, 0, out, &outlen, &used),
                    FP_H1_DONE);
    CU_ASSERT(outlen == 11 && memcmp(out, "hello world", 11) == 0);
    /* Broken framing: the payload before the error is decoded, nothing after it. */
    in = "5\r\nhello\r\nzz\r\n";
    CU_ASSERT_EQUAL(decode_all(&msg, in, strlen(in), FEED_WHOLE, 0, out, &outlen, &used),
                    FP_H1_ERROR);
    CU_ASSERT(outlen == 5 && used == 10);
    /* Other kinds pass unchanged. */
    msg.body = FP_H1_BODY_LENGTH;
    msg.content_length = 3;
    CU_ASSERT_EQUAL(decode_all(&msg, "3\r\nabc", 6, FEED_WHOLE, 0, out, &outlen, &used),
                    FP_H1_DONE);
    CU_ASSERT(outlen == 3 && used == 3 && memcmp(out, "3\r\n", 3) == 0);
}

static void
test_body_sticky(void)
{
    struct fp_h1_msg  msg;
    struct fp_h1_body b;
    size_t            used;

    memset(&msg, 0, sizeof(msg));
    msg.kind = FP_H1_REQUEST;
    msg.body = FP_H1_BODY_CHUNKED;
    fp_h1_body_init(&b, &msg, NULL);
    CU_ASSERT_EQUAL(fp_h1_body_feed(&b, "2\r\nabXY", 7, &used), FP_H1_ERROR);
    CU_ASSERT_EQUAL(used, 5);
    CU_ASSERT_EQUAL(fp_h1_body_feed(&b, "\r\n", 2, &used), FP_H1_ERROR);
    CU_ASSERT_EQUAL(used, 0);
    CU_ASSERT_EQUAL(fp_h1_body_eof(&b), FP_H1_ERROR);
    CU_ASSERT_EQUAL(b.err, FP_H1_E_CHUNK_CRLF);

    fp_h1_body_init(&b, &msg, NULL);
    CU_ASSERT_EQUAL(fp_h1_body_feed(&b, "0\r\n\r\nrest", 9, &used), FP_H1_DONE);
    CU_ASSERT_EQUAL(used, 5);
    CU_ASSERT_EQUAL(fp_h1_body_feed(&b, "rest", 4, &used), FP_H1_DONE);
    CU_ASSERT_EQUAL(used, 0);
    CU_ASSERT_EQUAL(fp_h1_body_eof(&b), FP_H1_DONE);
    CU_ASSERT_EQUAL(b.wire_bytes, 5);
}

/* ---- Helpers ---- */

static void
test_helpers(void)
{
    CU_ASSERT(fp_h1_name_eq("Content-Length", 14, "content-length", 14));
    CU_ASSERT(!fp_h1_name_eq("Content-Length", 14, "content-lengtH2", 15));
    CU_ASSERT(!fp_h1_name_eq("abc", 3, "abd", 3));
    CU_ASSERT(fp_h1_is_hop_by_hop("Connection", 10));
    CU_ASSERT(fp_h1_is_hop_by_hop("KEEP-ALIVE", 10));
    CU_ASSERT(fp_h1_is_hop_by_hop("te", 2));
    CU_ASSERT(fp_h1_is_hop_by_hop("Trailer", 7));
    CU_ASSERT(fp_h1_is_hop_by_hop("Upgrade", 7));
    CU_ASSERT(fp_h1_is_hop_by_hop("Proxy-Connection", 16));
    CU_ASSERT(!fp_h1_is_hop_by_hop("Transfer-Encoding", 17));
    CU_ASSERT(!fp_h1_is_hop_by_hop("Content-Length", 14));
    CU_ASSERT(!fp_h1_is_hop_by_hop("Host", 4));
    CU_ASSERT(!fp_h1_is_hop_by_hop("Trailers", 8));
    CU_ASSERT_EQUAL(fp_h1_error_status(FP_H1_E_NONE, FP_H1_REQUEST), 0);
    CU_ASSERT_EQUAL(fp_h1_error_status(FP_H1_E_CL_TE, FP_H1_REQUEST), 400);
    CU_ASSERT_EQUAL(fp_h1_error_status(FP_H1_E_TE_UNKNOWN, FP_H1_REQUEST), 501);
    CU_ASSERT_EQUAL(fp_h1_error_status(FP_H1_E_CL_TE, FP_H1_RESPONSE), 502);
    CU_ASSERT_STRING_EQUAL(fp_h1_error_reason(FP_H1_E_CL_TE),
                           "both content-length and transfer-encoding");
    CU_ASSERT_STRING_EQUAL(fp_h1_error_reason(FP_H1_E_COUNT), "unknown error");
}

/* Every error has a status and a reason: a new enum value cannot be left out of the table. */
static void
test_error_table_complete(void)
{
    int e;

    for (e = 1; e < FP_H1_E_COUNT; e++) {
        CU_ASSERT(fp_h1_error_status((enum fp_h1_error)e, FP_H1_REQUEST) >= 400);
        CU_ASSERT_PTR_NOT_NULL(fp_h1_error_reason((enum fp_h1_error)e));
    }
}

int
main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
            {"req_simple_get", test_req_simple_get},
            {"req_methods", test_req_methods},
            {"req_leading_crlf", test_req_leading_crlf},
            {"req_absolute_form", test_req_absolute_form},
            {"req_asterisk_form", test_req_asterisk_form},
            {"req_target_chars", test_req_target_chars},
            {"req_versions", test_req_versions},
            {"req_host", test_req_host},
            {"req_content_length", test_req_content_length},
            {"req_transfer_encoding", test_req_transfer_encoding},
            {"req_cl_te_smuggling", test_req_cl_te_smuggling},
            {"req_smuggling_variants", test_req_smuggling_variants},
            {"req_persistence", test_req_persistence},
            {"req_hop_by_hop_marking", test_req_hop_by_hop_marking},
            {"req_connection_options", test_req_connection_options},
            {"req_expect", test_req_expect},
            {"req_field_syntax", test_req_field_syntax},
            {"req_limits", test_req_limits},
            {"req_defaults_and_misuse", test_req_defaults_and_misuse},
            {"req_zero_limits", test_req_zero_limits},
            {"req_pipelined", test_req_pipelined},
            {"res_framing", test_res_framing},
            {"res_no_body", test_res_no_body},
            {"res_persistence", test_res_persistence},
            {"res_status_line", test_res_status_line},
            {"res_limits", test_res_limits},
            {"body_chunked_valid", test_body_chunked_valid},
            {"body_chunked_invalid", test_body_chunked_invalid},
            {"body_chunked_limits", test_body_chunked_limits},
            {"body_response_unlimited", test_body_response_unlimited},
            {"body_eof", test_body_eof},
            {"body_sticky", test_body_sticky},
            {"cl_list_rewrite", test_cl_list_rewrite},
            {"res_te_other", test_res_te_other},
            {"body_decode", test_body_decode},
            {"helpers", test_helpers},
            {"error_table_complete", test_error_table_complete},
    };
    CU_pSuite    suite;
    unsigned int failed;
    size_t       i;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        return CU_get_error();
    }
    suite = CU_add_suite("h1", NULL, NULL);
    if (suite == NULL) {
        goto err_cleanup;
    }
    for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (CU_add_test(suite, tests[i].name, tests[i].fn) == NULL) {
            goto err_cleanup;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;

err_cleanup:
    CU_cleanup_registry();
    return 1;
}
