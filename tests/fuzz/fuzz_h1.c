/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for proxy/h1.c. Input layout: byte 0 chooses the mode (request or response,
 * the request method a response answers, default or tiny limits), byte 1 seeds the split
 * points, the rest is the message. The message is parsed whole, at pseudo-random split points
 * and (when short) byte by byte, each time from a fresh copy of exactly the bytes given so far;
 * the head results and the body tracker results must be identical, and every span the parser
 * returns must lie inside the head. Any difference traps. With the decode bit of byte 0 the
 * body goes through fp_h1_body_decode() (a chunked response to an HTTP/1.0 client): the
 * decoded bytes, compared by length and hash, must not depend on the split points either.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h1.h"
#include "tests/proxy/h1_eq.h"

#define MAX_HDRS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
    enum fp_h1_status   head_st;
    enum fp_h1_error    head_err;
    struct fp_h1_msg    msg;
    struct fp_h1_header hdrs[MAX_HDRS];
    enum fp_h1_status   body_st;
    enum fp_h1_error    body_err;
    size_t              body_used;
    uint64_t            payload;
    uint64_t            wire;
    uint64_t            decoded;      /* decode mode: payload bytes written */
    uint64_t            decoded_hash; /* FNV-1a over them */
};

struct mode {
    enum fp_h1_kind     kind;
    enum fp_h1_method   req_method;
    struct fp_h1_limits lim;
    bool                eof;
    bool                decode;
};

#define CHECK(cond)           \
    do {                      \
        if (!(cond)) {        \
            __builtin_trap(); \
        }                     \
    } while (0)

static size_t
step_len(int how, uint32_t *rng, size_t left)
{
    size_t n;

    if (how == 0) {
        return left;
    }
    if (how == 1) {
        return 1;
    }
    *rng = *rng * 1103515245u + 12345u;
    n = 1 + ((*rng >> 16) % 23);
    return n < left ? n : left;
}

static uint64_t
fnv1a(uint64_t h, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
    }
    return h;
}

/* Feeds n bytes at copy to b, decoding in decode mode; returns the status, *used. */
static enum fp_h1_status
feed(const struct mode *m, struct fp_h1_body *b, char *copy, size_t n, size_t *used,
     struct outcome *o)
{
    enum fp_h1_status st;
    size_t            dec;

    if (!m->decode) {
        return fp_h1_body_feed(b, copy, n, used);
    }
    st = fp_h1_body_decode(b, copy, n, used, &dec);
    CHECK(dec <= *used);
    o->decoded += dec;
    o->decoded_hash = fnv1a(o->decoded_hash, copy, dec);
    return st;
}

static void
run(const struct mode *m, const char *in, size_t len, int how, uint32_t rng, struct outcome *o)
{
    struct fp_h1_parser p;
    struct fp_h1_body   b;
    char               *copy = NULL;
    size_t              have = 0;
    size_t              n;
    size_t              used;

    memset(o, 0, sizeof(*o));
    fp_h1_parser_init(&p, m->kind, m->req_method, &m->lim, o->hdrs, MAX_HDRS);
    o->head_st = fp_h1_parse(&p, in, 0);
    while (have < len && o->head_st == FP_H1_NEED_MORE) {
        have += step_len(how, &rng, len - have);
        free(copy);
        copy = malloc(have);
        CHECK(copy != NULL);
        memcpy(copy, in, have);
        o->head_st = fp_h1_parse(&p, copy, have);
    }
    free(copy);
    o->head_err = p.err;
    o->msg = p.msg;
    if (o->head_st != FP_H1_DONE) {
        return;
    }
    fp_h1_body_init(&b, &p.msg, &m->lim);
    o->decoded_hash = 0xcbf29ce484222325ull;
    o->body_st = fp_h1_body_feed(&b, in, 0, &used);
    have = p.msg.head_len;
    while (have < len && o->body_st == FP_H1_NEED_MORE) {
        n = step_len(how, &rng, len - have);
        copy = malloc(n);
        CHECK(copy != NULL);
        memcpy(copy, in + have, n);
        o->body_st = feed(m, &b, copy, n, &used, o);
        free(copy);
        CHECK(used <= n);
        CHECK(o->body_st != FP_H1_NEED_MORE || used == n);
        have += used;
    }
    if (m->eof && o->body_st == FP_H1_NEED_MORE) {
        o->body_st = fp_h1_body_eof(&b);
    }
    o->body_err = b.err;
    o->body_used = have - p.msg.head_len;
    o->payload = b.payload_bytes;
    o->wire = b.wire_bytes;
}

static bool
span_in(struct fp_h1_span s, uint32_t end)
{
    return s.off <= end && s.len <= end - s.off;
}

/* Properties every successful parse must have, whatever the input. */
static void
check_invariants(const struct mode *m, const char *in, size_t len, const struct outcome *o)
{
    const struct fp_h1_msg *msg = &o->msg;
    uint32_t                end = msg->head_len;
    uint32_t                i;
    uint32_t                k;

    if (o->head_st == FP_H1_ERROR) {
        CHECK(o->head_err != FP_H1_E_NONE && o->head_err != FP_H1_E_CALLER);
        CHECK(fp_h1_error_status(o->head_err, m->kind) >= 400);
        return;
    }
    if (o->head_st != FP_H1_DONE) {
        return;
    }
    CHECK(end >= 4 && end <= len && end <= m->lim.max_head_bytes);
    CHECK(memcmp(in + end - 4, "\r\n\r\n", 4) == 0);
    CHECK(msg->nb_headers <= MAX_HDRS && msg->nb_headers <= m->lim.max_headers);
    for (i = 0; i < msg->nb_headers; i++) {
        CHECK(span_in(o->hdrs[i].name, end) && span_in(o->hdrs[i].value, end));
        CHECK(o->hdrs[i].name.len > 0);
        for (k = 0; k < o->hdrs[i].value.len; k++) {
            char c = in[o->hdrs[i].value.off + k];
            CHECK(c != '\r' && c != '\n' && c != '\0');
        }
    }
    CHECK(span_in(msg->target, end) && span_in(msg->path, end) && span_in(msg->host, end));
    CHECK(span_in(msg->authority, end) && span_in(msg->reason, end));
    if (m->kind == FP_H1_REQUEST) {
        CHECK(msg->body != FP_H1_BODY_CLOSE && msg->body != FP_H1_BODY_TUNNEL);
        CHECK(msg->method != FP_H1_METH_CONNECT);
        /* Never both framings in a request: that is how smuggling starts. */
        CHECK((msg->flags & (FP_H1_F_CONTENT_LENGTH | FP_H1_F_TRANSFER_ENC)) !=
              (FP_H1_F_CONTENT_LENGTH | FP_H1_F_TRANSFER_ENC));
        CHECK(msg->version_minor == 0 || (msg->flags & FP_H1_F_HOST) != 0);
    } else {
        CHECK(msg->status >= 100 && msg->status <= 999);
    }
    if (msg->body == FP_H1_BODY_LENGTH) {
        CHECK(msg->content_length <= (uint64_t)INT64_MAX);
    }
    if (o->body_st == FP_H1_DONE && msg->body == FP_H1_BODY_LENGTH) {
        CHECK(o->body_used == msg->content_length);
    }
    CHECK(o->payload <= o->wire && o->wire == o->body_used);
    if (m->decode) {
        CHECK(o->decoded == (msg->body == FP_H1_BODY_CHUNKED ? o->payload : o->wire));
    }
}

static bool
same(const struct outcome *a, const struct outcome *b)
{
    if (a->head_st != b->head_st || a->head_err != b->head_err) {
        return false;
    }
    if (a->head_st != FP_H1_DONE) {
        return true;
    }
    return h1_msg_eq(&a->msg, &b->msg) && h1_hdrs_eq(a->hdrs, b->hdrs, a->msg.nb_headers) &&
           a->body_st == b->body_st && a->body_err == b->body_err && a->body_used == b->body_used &&
           a->payload == b->payload && a->wire == b->wire && a->decoded == b->decoded &&
           a->decoded_hash == b->decoded_hash;
}

static void
pick_mode(uint8_t sel, struct mode *m)
{
    static const enum fp_h1_method methods[4] = {FP_H1_METH_GET, FP_H1_METH_HEAD,
                                                 FP_H1_METH_CONNECT, FP_H1_METH_POST};

    memset(m, 0, sizeof(*m));
    m->kind = (sel & 1) ? FP_H1_RESPONSE : FP_H1_REQUEST;
    m->req_method = methods[(sel >> 1) & 3];
    m->eof = (sel & 8) != 0;
    m->decode = (sel & 32) != 0;
    fp_h1_limits_default(&m->lim);
    if (sel & 16) {
        m->lim.max_line_len = 40;
        m->lim.max_head_bytes = 200;
        m->lim.max_headers = 6;
        m->lim.max_chunk_line = 12;
        m->lim.max_trailer_bytes = 30;
        m->lim.max_trailers = 2;
        m->lim.max_body_bytes = 64;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole;
    struct outcome split;
    struct mode    m;
    const char    *in;
    size_t         len;
    uint32_t       seed;

    if (size < 2) {
        return 0;
    }
    pick_mode(data[0], &m);
    seed = data[1];
    in = (const char *)data + 2;
    len = size - 2;

    run(&m, in, len, 0, 0, &whole);
    check_invariants(&m, in, len, &whole);
    run(&m, in, len, 2, seed, &split);
    CHECK(same(&whole, &split));
    run(&m, in, len, 2, seed * 2654435761u + 1, &split);
    CHECK(same(&whole, &split));
    if (len <= 1024) {
        run(&m, in, len, 1, 0, &split);
        CHECK(same(&whole, &split));
    }
    return 0;
}
