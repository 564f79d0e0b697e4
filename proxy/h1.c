/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * HTTP/1.1 head parser and body framing tracker (RFC 9110, RFC 9112).
 *
 * The module owns only the parser, body and limits structs its caller hands it (see h1.h); it
 * keeps no global mutable state, never allocates and never does I/O, so it is safe on the data
 * path of any worker. Both machines examine each input byte once and keep all their state in
 * the struct, which is what makes them resumable at any byte boundary: a split can only change
 * when a byte is examined, never how. Everything found is recorded as an offset from the start
 * of the message, never as a pointer, because the caller may move its buffer between calls.
 *
 * The runs of bytes inside a target, a field name or a field value are consumed by tight loops
 * (skip_run()); the per-byte switch sees only the bytes that end them. A SIMD scanner (SSE4.2,
 * as picohttpparser has) is not needed yet: ~1.7 GB/s, 0.4 us per 700-byte browser request on
 * one core of the dev machine, is far above what one worker receives in heads.
 */
#include "proxy/h1.h"

#include <string.h>

/* Head parser states. The start-line states are contiguous (see in_start_line()). */
enum {
    HS_START = 0, /* request: first byte of the request-line or of an empty line */
    HS_LEAD_LF,   /* request: LF of an empty line before the request-line */
    HS_METHOD,    /* start-line states begin here */
    HS_TARGET,
    HS_VERSION,     /* request HTTP-version, up to CR */
    HS_RES_VERSION, /* response HTTP-version, up to SP */
    HS_STATUS,
    HS_STATUS_END,
    HS_REASON, /* start-line states end here */
    HS_LINE_LF,
    HS_HDR_START,
    HS_HDR_NAME,
    HS_HDR_OWS,
    HS_HDR_VALUE,
    HS_HDR_LF,
    HS_END_LF,
    HS_DONE,
    HS_ERROR,
};

/* Body tracker states. */
enum {
    BS_LENGTH = 0,
    BS_OPEN, /* close-delimited or tunnel: everything belongs to the message */
    BS_SIZE_FIRST,
    BS_SIZE,
    BS_EXT_BWS,
    BS_EXT_NAME_START,
    BS_EXT_NAME,
    BS_EXT_AFTER_NAME,
    BS_EXT_VAL_START,
    BS_EXT_VAL_TOKEN,
    BS_EXT_QUOTED,
    BS_EXT_QESC,
    BS_EXT_AFTER_QVAL,
    BS_SIZE_LF,
    BS_DATA,
    BS_DATA_CR,
    BS_DATA_LF,
    BS_TRL_START,
    BS_TRL_NAME,
    BS_TRL_VALUE,
    BS_TRL_LF,
    BS_END_LF,
    BS_DONE,
    BS_ERROR,
};

#define DEF_MAX_LINE_LEN      8192u
#define DEF_MAX_HEAD_BYTES    32768u
#define DEF_MAX_HEADERS       100u
#define DEF_MAX_CHUNK_LINE    4096u
#define DEF_MAX_TRAILER_BYTES 8192u
#define DEF_MAX_TRAILERS      32u
/* Keeps every offset, and offset + length, far from UINT32_MAX. */
#define MAX_HEAD_BYTES_CAP (1u << 30)
/* Body sizes stay below INT64_MAX so that callers may store them in off_t. */
#define MAX_BODY_SIZE ((uint64_t)INT64_MAX)
/* Options accepted over all Connection fields of a message. */
#define MAX_CONN_OPTIONS 32u

static const struct {
    uint16_t    status;
    const char *reason;
} error_tab[FP_H1_E_COUNT] = {
        [FP_H1_E_NONE] = {0, "no error"},
        [FP_H1_E_METHOD] = {400, "invalid method"},
        [FP_H1_E_TARGET] = {400, "invalid request-target"},
        [FP_H1_E_VERSION] = {400, "invalid HTTP version"},
        [FP_H1_E_VERSION_UNSUPPORTED] = {505, "unsupported HTTP version"},
        [FP_H1_E_LINE_TOO_LONG] = {414, "start line too long"},
        [FP_H1_E_STATUS] = {400, "invalid status line"},
        [FP_H1_E_BARE_CR] = {400, "bare CR"},
        [FP_H1_E_BARE_LF] = {400, "bare LF"},
        [FP_H1_E_CTL] = {400, "control character"},
        [FP_H1_E_OBS_FOLD] = {400, "obsolete line folding"},
        [FP_H1_E_FIELD_NAME] = {400, "invalid field name"},
        [FP_H1_E_WS_BEFORE_COLON] = {400, "whitespace before colon"},
        [FP_H1_E_HEAD_TOO_LARGE] = {431, "header section too large"},
        [FP_H1_E_TOO_MANY_HEADERS] = {431, "too many header fields"},
        [FP_H1_E_HOST_MISSING] = {400, "missing host"},
        [FP_H1_E_HOST_DUP] = {400, "duplicate host"},
        [FP_H1_E_HOST_INVALID] = {400, "invalid host"},
        [FP_H1_E_CL_INVALID] = {400, "invalid content-length"},
        [FP_H1_E_CL_MISMATCH] = {400, "conflicting content-length"},
        [FP_H1_E_TE_INVALID] = {400, "invalid transfer-encoding"},
        [FP_H1_E_TE_NOT_CHUNKED] = {400, "chunked is not the final transfer coding"},
        [FP_H1_E_TE_UNKNOWN] = {501, "unknown transfer coding"},
        [FP_H1_E_TE_HTTP10] = {400, "transfer-encoding in HTTP/1.0"},
        [FP_H1_E_CL_TE] = {400, "both content-length and transfer-encoding"},
        [FP_H1_E_CONNECTION] = {400, "invalid connection field"},
        [FP_H1_E_EXPECT] = {417, "unsupported expectation"},
        [FP_H1_E_CONNECT] = {501, "CONNECT not supported"},
        [FP_H1_E_BODY_TOO_LARGE] = {413, "payload too large"},
        [FP_H1_E_CHUNK_SIZE] = {400, "invalid chunk size"},
        [FP_H1_E_CHUNK_EXT] = {400, "invalid chunk extension"},
        [FP_H1_E_CHUNK_LINE_TOO_LONG] = {400, "chunk size line too long"},
        [FP_H1_E_CHUNK_CRLF] = {400, "missing CRLF after chunk data"},
        [FP_H1_E_TRAILER] = {400, "invalid trailer field"},
        [FP_H1_E_TRAILER_TOO_LARGE] = {400, "trailer section too large"},
        [FP_H1_E_TRUNCATED] = {400, "truncated body"},
        [FP_H1_E_CALLER] = {500, "parser misuse"},
};

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
 * "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
static const uint8_t tchar_tab[256] = {
        ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
        ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
        ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* RFC 3986 reg-name / IP-literal / port characters: unreserved, sub-delims, pct-encoded and
 * the ':' '[' ']' of ports and IPv6 literals. No '@': userinfo is refused (RFC 9110 §4.2.4). */
static const uint8_t host_tab[256] = {
        ['-'] = 1, ['.'] = 1,         ['_'] = 1,         ['~'] = 1,         ['!'] = 1, ['$'] = 1,
        ['&'] = 1, ['\''] = 1,        ['('] = 1,         [')'] = 1,         ['*'] = 1, ['+'] = 1,
        [','] = 1, [';'] = 1,         ['='] = 1,         [':'] = 1,         ['['] = 1, [']'] = 1,
        ['%'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static inline bool
is_tchar(unsigned char c)
{
    return tchar_tab[c] != 0;
}

static inline bool
is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static inline bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 §5.5: field-vchar = VCHAR / obs-text. */
static inline bool
is_field_vchar(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static inline unsigned char
lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static int
hex_value(unsigned char c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    c = lower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static bool
all_tchar(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!is_tchar((unsigned char)s[i])) {
            return false;
        }
    }
    return n > 0;
}

static bool
all_host_chars(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (host_tab[(unsigned char)s[i]] == 0) {
            return false;
        }
    }
    return true;
}

/* Whether name (any case) is lit, a lower-case literal of litlen bytes. */
static inline bool
name_eq_lit(const char *name, size_t len, const char *lit, size_t litlen)
{
    size_t i;

    if (len != litlen) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (lower((unsigned char)name[i]) != (unsigned char)lit[i]) {
            return false;
        }
    }
    return true;
}

/* name_is(name, len, "lower-case literal"): the length compare is inline, so a field whose
 * name has another length costs one comparison. */
#define name_is(name, len, lit) name_eq_lit((name), (len), "" lit, sizeof("" lit) - 1)

/* The parser's notes on a field (FP_H1_HDR_PARSER bits), set by on_field(). */
#define HDR_HOP  0x0100u /* hop-by-hop (fp_h1_is_hop_by_hop) */
#define HDR_CONN 0x0200u /* Connection */
#define HDR_CL   0x0400u /* Content-Length */

/*
 * Steps through a comma-separated list (RFC 9110 §5.6.1). Returns the next element, without
 * its surrounding OWS, in *elt / *elen (an empty element has *elen == 0) and advances *cur;
 * returns false when the list is exhausted (*cur == NULL). Quoted strings are not parsed: none
 * of the fields we read as lists (Connection, Content-Length, Transfer-Encoding, Expect) may
 * legitimately contain a quoted comma, and the element checks reject the quotes.
 */
static bool
list_next(const char **cur, const char *end, const char **elt, size_t *elen)
{
    const char *s = *cur;
    const char *e;
    const char *comma;

    if (s == NULL) {
        return false;
    }
    comma = memchr(s, ',', (size_t)(end - s));
    e = (comma != NULL) ? comma : end;
    *cur = (comma != NULL) ? comma + 1 : NULL;
    while (s < e && is_ws((unsigned char)*s)) {
        s++;
    }
    while (e > s && is_ws((unsigned char)e[-1])) {
        e--;
    }
    *elt = s;
    *elen = (size_t)(e - s);
    return true;
}

void
fp_h1_limits_default(struct fp_h1_limits *lim)
{
    lim->max_line_len = DEF_MAX_LINE_LEN;
    lim->max_head_bytes = DEF_MAX_HEAD_BYTES;
    lim->max_headers = DEF_MAX_HEADERS;
    lim->max_chunk_line = DEF_MAX_CHUNK_LINE;
    lim->max_trailer_bytes = DEF_MAX_TRAILER_BYTES;
    lim->max_trailers = DEF_MAX_TRAILERS;
    lim->max_body_bytes = 0;
}

/* Copies lim (or the defaults) to *out, replacing zeros by defaults and capping the head. */
static void
normalize_limits(struct fp_h1_limits *out, const struct fp_h1_limits *lim)
{
    struct fp_h1_limits def;

    fp_h1_limits_default(&def);
    if (lim == NULL) {
        *out = def;
        return;
    }
    *out = *lim;
    if (out->max_line_len == 0) {
        out->max_line_len = def.max_line_len;
    }
    if (out->max_head_bytes == 0) {
        out->max_head_bytes = def.max_head_bytes;
    }
    if (out->max_head_bytes > MAX_HEAD_BYTES_CAP) {
        out->max_head_bytes = MAX_HEAD_BYTES_CAP;
    }
    if (out->max_headers == 0) {
        out->max_headers = def.max_headers;
    }
    if (out->max_chunk_line == 0) {
        out->max_chunk_line = def.max_chunk_line;
    }
    if (out->max_trailer_bytes == 0) {
        out->max_trailer_bytes = def.max_trailer_bytes;
    }
    if (out->max_trailers == 0) {
        out->max_trailers = def.max_trailers;
    }
}

int
fp_h1_error_status(enum fp_h1_error err, enum fp_h1_kind kind)
{
    if (err == FP_H1_E_NONE) {
        return 0;
    }
    if ((unsigned)err >= FP_H1_E_COUNT) {
        return 500;
    }
    /* A malformed response is the server's fault: the client gets 502 (RFC 9110 §15.6.3). */
    if (kind == FP_H1_RESPONSE) {
        return 502;
    }
    return error_tab[err].status;
}

const char *
fp_h1_error_reason(enum fp_h1_error err)
{
    if ((unsigned)err >= FP_H1_E_COUNT) {
        return "unknown error";
    }
    return error_tab[err].reason;
}

bool
fp_h1_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;

    if (alen != blen) {
        return false;
    }
    for (i = 0; i < alen; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) {
            return false;
        }
    }
    return true;
}

bool
fp_h1_is_hop_by_hop(const char *name, size_t len)
{
    /* RFC 9110 §7.6.1 names Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding
     * and Upgrade; Trailer was hop-by-hop in RFC 2616 §13.5.1 and only announces trailer
     * fields, which pass unchanged anyway. Transfer-Encoding is left out on purpose: bodies are
     * forwarded with their chunked framing unchanged, so the field must go with them. */
    switch (len) {
    case 2:
        return name_is(name, len, "te");
    case 7:
        return name_is(name, len, "trailer") || name_is(name, len, "upgrade");
    case 10:
        return name_is(name, len, "connection") || name_is(name, len, "keep-alive");
    case 16:
        return name_is(name, len, "proxy-connection");
    default:
        return false;
    }
}

bool
fp_h1_connection_lists(const struct fp_h1_msg *msg, const char *buf, const char *name, size_t len)
{
    const struct fp_h1_header *h;
    const char                *cur;
    const char                *elt;
    size_t                     elen;
    uint32_t                   i;

    for (i = 0; i < msg->nb_headers; i++) {
        h = &msg->hdrs[i];
        if (!name_is(buf + h->name.off, h->name.len, "connection")) {
            continue;
        }
        cur = buf + h->value.off;
        while (list_next(&cur, buf + h->value.off + h->value.len, &elt, &elen)) {
            if (fp_h1_name_eq(elt, elen, name, len)) {
                return true;
            }
        }
    }
    return false;
}

/* ---- Head parser: field semantics ---- */

static enum fp_h1_method
lookup_method(const char *m, size_t n)
{
    static const struct {
        const char       *name;
        enum fp_h1_method method;
    } methods[] = {
            {"GET", FP_H1_METH_GET},         {"HEAD", FP_H1_METH_HEAD},
            {"POST", FP_H1_METH_POST},       {"PUT", FP_H1_METH_PUT},
            {"DELETE", FP_H1_METH_DELETE},   {"CONNECT", FP_H1_METH_CONNECT},
            {"OPTIONS", FP_H1_METH_OPTIONS}, {"TRACE", FP_H1_METH_TRACE},
            {"PATCH", FP_H1_METH_PATCH},
    };
    size_t i;

    /* RFC 9110 §9.1: the method token is case-sensitive. */
    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, m, n) == 0) {
            return methods[i].method;
        }
    }
    return FP_H1_METH_OTHER;
}

/* RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive. */
static enum fp_h1_error
parse_version(struct fp_h1_msg *msg, const char *v, size_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit((unsigned char)v[5]) || v[6] != '.' ||
        !is_digit((unsigned char)v[7])) {
        return FP_H1_E_VERSION;
    }
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
        return FP_H1_E_VERSION_UNSUPPORTED;
    }
    msg->version_minor = (uint8_t)(v[7] - '0');
    return FP_H1_E_NONE;
}

/*
 * RFC 9112 §3.2: origin-form, absolute-form, asterisk-form (OPTIONS only). Authority-form is
 * only for CONNECT, which was refused with its method. In absolute-form the authority is split
 * out for routing; RFC 9112 §3.2.2 makes it override the Host field.
 */
static enum fp_h1_error
classify_target(struct fp_h1_msg *msg, const char *buf)
{
    const char *t = buf + msg->target.off;
    const char *colon;
    uint32_t    n = msg->target.len;
    uint32_t    i;
    uint32_t    a;

    if (t[0] == '/') {
        msg->target_form = FP_H1_TARGET_ORIGIN;
        msg->path = msg->target;
        return FP_H1_E_NONE;
    }
    if (n == 1 && t[0] == '*') {
        if (msg->method != FP_H1_METH_OPTIONS) {
            return FP_H1_E_TARGET;
        }
        msg->target_form = FP_H1_TARGET_ASTERISK;
        msg->path = msg->target;
        return FP_H1_E_NONE;
    }
    colon = memchr(t, ':', n);
    i = (colon != NULL) ? (uint32_t)(colon - t) : n;
    /* Only http and https URIs (RFC 9110 §4.2) name resources a reverse proxy can forward to
     * its servers; any other scheme, or none, is refused. */
    if (!name_is(t, i, "http") && !name_is(t, i, "https")) {
        return FP_H1_E_TARGET;
    }
    if (n - i < 3 || t[i + 1] != '/' || t[i + 2] != '/') {
        return FP_H1_E_TARGET;
    }
    a = i + 3;
    for (i = a; i < n && t[i] != '/' && t[i] != '?'; i++) {
        if (host_tab[(unsigned char)t[i]] == 0) {
            return FP_H1_E_TARGET;
        }
    }
    /* RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid. */
    if (i == a) {
        return FP_H1_E_TARGET;
    }
    msg->target_form = FP_H1_TARGET_ABSOLUTE;
    msg->authority.off = msg->target.off + a;
    msg->authority.len = i - a;
    msg->path.off = msg->target.off + i;
    msg->path.len = n - i;
    return FP_H1_E_NONE;
}

/*
 * RFC 9112 §6.3 item 5 and RFC 9110 §8.6: Content-Length = 1*DIGIT. A list of identical values
 * ("5, 5") and repeated identical fields are accepted as one value, which the proxy sends as
 * one field in their place (FP_H1_F_CL_REWRITE; §8.6 allows rejecting them or replacing them
 * by a single value, never passing them on). Values that differ are refused, since two parsers
 * could pick different ones (request smuggling). We tighten the RFC by refusing empty list
 * elements and values at or above 2^63.
 */
static enum fp_h1_error
on_content_length(struct fp_h1_msg *msg, const char *v, size_t vlen)
{
    const char *cur = v;
    const char *elt;
    size_t      elen;
    size_t      i;
    uint64_t    cl;

    if (vlen == 0) {
        return FP_H1_E_CL_INVALID;
    }
    while (list_next(&cur, v + vlen, &elt, &elen)) {
        if (elen == 0) {
            return FP_H1_E_CL_INVALID;
        }
        cl = 0;
        for (i = 0; i < elen; i++) {
            if (!is_digit((unsigned char)elt[i])) {
                return FP_H1_E_CL_INVALID;
            }
            if (cl > (MAX_BODY_SIZE - (uint64_t)(elt[i] - '0')) / 10) {
                return FP_H1_E_CL_INVALID;
            }
            cl = cl * 10 + (uint64_t)(elt[i] - '0');
        }
        if ((msg->flags & FP_H1_F_CONTENT_LENGTH) != 0) {
            if (cl != msg->content_length) {
                return FP_H1_E_CL_MISMATCH;
            }
            msg->flags |= FP_H1_F_CL_REWRITE;
        }
        msg->flags |= FP_H1_F_CONTENT_LENGTH;
        msg->content_length = cl;
    }
    return FP_H1_E_NONE;
}

static bool
is_known_coding(const char *c, size_t n)
{
    return name_is(c, n, "gzip") || name_is(c, n, "x-gzip") || name_is(c, n, "deflate") ||
           name_is(c, n, "compress") || name_is(c, n, "x-compress");
}

/*
 * RFC 9112 §6.1. Codings accumulate over repeated fields. Chunked applied twice is invalid.
 * Tightened: transfer-coding parameters are refused (no registered coding we accept has any),
 * and so is a field with no coding at all. RFC 9112 §6.1 lets a server answer 501 to codings it
 * does not understand, which we do for requests; a response's unknown codings are forwarded
 * (its body is then delimited by close, RFC 9112 §6.3 item 4).
 */
static enum fp_h1_error
on_transfer_encoding(struct fp_h1_parser *p, const char *v, size_t vlen)
{
    const char *cur = v;
    const char *elt;
    size_t      elen;
    bool        any = false;

    p->msg.flags |= FP_H1_F_TRANSFER_ENC;
    while (list_next(&cur, v + vlen, &elt, &elen)) {
        if (elen == 0) {
            continue; /* RFC 9110 §5.6.1: empty list elements are ignored */
        }
        if (!all_tchar(elt, elen)) {
            return FP_H1_E_TE_INVALID;
        }
        any = true;
        if (name_is(elt, elen, "chunked")) {
            if (p->p_te_chunked != 0) {
                return FP_H1_E_TE_INVALID;
            }
            p->p_te_chunked = 1;
            p->p_te_last = true;
            continue;
        }
        if (p->msg.kind == FP_H1_REQUEST && !is_known_coding(elt, elen)) {
            return FP_H1_E_TE_UNKNOWN;
        }
        p->msg.flags |= FP_H1_F_TE_OTHER;
        p->p_te_last = false;
    }
    return any ? FP_H1_E_NONE : FP_H1_E_TE_INVALID;
}

/* RFC 9110 §7.6.1: Connection = #connection-option, each a token; at most MAX_CONN_OPTIONS. */
static enum fp_h1_error
on_connection(struct fp_h1_parser *p, const char *v, size_t vlen)
{
    struct fp_h1_msg *msg = &p->msg;
    const char       *cur = v;
    const char       *elt;
    size_t            elen;

    while (list_next(&cur, v + vlen, &elt, &elen)) {
        if (elen == 0) {
            continue;
        }
        /* Tightened: real clients send one to three options; a cap keeps mark_dropped()
         * linear in the head size. */
        if (!all_tchar(elt, elen) || ++p->p_conn_opts > MAX_CONN_OPTIONS) {
            return FP_H1_E_CONNECTION;
        }
        if (name_is(elt, elen, "close")) {
            msg->flags |= FP_H1_F_CONN_CLOSE;
        } else if (name_is(elt, elen, "keep-alive")) {
            msg->flags |= FP_H1_F_CONN_KEEPALIVE;
        } else if (name_is(elt, elen, "upgrade")) {
            msg->flags |= FP_H1_F_CONN_UPGRADE;
        } else {
            msg->flags |= FP_H1_F_CONN_OTHER;
        }
    }
    return FP_H1_E_NONE;
}

/* RFC 9112 §3.2: more than one Host, or an invalid one, gets 400. An empty Host is valid. */
static enum fp_h1_error
on_host(struct fp_h1_msg *msg, uint32_t idx, const char *v, size_t vlen)
{
    if ((msg->flags & FP_H1_F_HOST) != 0) {
        return FP_H1_E_HOST_DUP;
    }
    if (!all_host_chars(v, vlen)) {
        return FP_H1_E_HOST_INVALID;
    }
    msg->flags |= FP_H1_F_HOST;
    msg->host_hdr = (int32_t)idx;
    return FP_H1_E_NONE;
}

/* RFC 9110 §10.1.1: only 100-continue is defined; other expectations MAY get 417. */
static enum fp_h1_error
on_expect(struct fp_h1_msg *msg, const char *v, size_t vlen)
{
    const char *cur = v;
    const char *elt;
    size_t      elen;

    while (list_next(&cur, v + vlen, &elt, &elen)) {
        if (elen == 0) {
            continue;
        }
        if (!name_is(elt, elen, "100-continue")) {
            return FP_H1_E_EXPECT;
        }
        msg->flags |= FP_H1_F_EXPECT_CONTINUE;
    }
    return FP_H1_E_NONE;
}

/* Interprets the field just stored at hdrs[idx]. Fields we do not know are only stored. */
static enum fp_h1_error
on_field(struct fp_h1_parser *p, const char *buf, uint32_t idx)
{
    struct fp_h1_header *h = &p->msg.hdrs[idx];
    const char          *name = buf + h->name.off;
    const char          *v = buf + h->value.off;
    size_t               nlen = h->name.len;
    size_t               vlen = h->value.len;
    bool                 req = p->msg.kind == FP_H1_REQUEST;

    /* What the name is, noted once: mark_dropped() reads the notes instead of the names. */
    if (fp_h1_is_hop_by_hop(name, nlen)) {
        h->flags |= HDR_HOP;
    }
    if (name_is(name, nlen, "content-length")) {
        h->flags |= HDR_CL;
        return on_content_length(&p->msg, v, vlen);
    }
    if (name_is(name, nlen, "transfer-encoding")) {
        return on_transfer_encoding(p, v, vlen);
    }
    if (name_is(name, nlen, "connection")) {
        h->flags |= HDR_CONN;
        return on_connection(p, v, vlen);
    }
    if (req && name_is(name, nlen, "host")) {
        return on_host(&p->msg, idx, v, vlen);
    }
    if (req && name_is(name, nlen, "expect")) {
        return on_expect(&p->msg, v, vlen);
    }
    if (name_is(name, nlen, "upgrade")) {
        p->msg.flags |= FP_H1_F_UPGRADE;
    }
    return FP_H1_E_NONE;
}

/* RFC 9112 §9.3: close wins; else HTTP/1.1 persists; HTTP/1.0 persists only on keep-alive. */
static bool
wants_persistence(const struct fp_h1_msg *msg)
{
    if ((msg->flags & FP_H1_F_CONN_CLOSE) != 0) {
        return false;
    }
    return msg->version_minor == 1 || (msg->flags & FP_H1_F_CONN_KEEPALIVE) != 0;
}

/* Drops every field named name, except the framing fields (see mark_dropped()). */
static void
drop_named(struct fp_h1_msg *msg, const char *buf, const char *name, size_t len)
{
    struct fp_h1_header *h;
    uint32_t             i;

    if (name_is(name, len, "content-length") || name_is(name, len, "transfer-encoding") ||
        name_is(name, len, "host")) {
        return;
    }
    for (i = 0; i < msg->nb_headers; i++) {
        h = &msg->hdrs[i];
        if (fp_h1_name_eq(buf + h->name.off, h->name.len, name, len)) {
            h->flags |= FP_H1_HDR_DROP;
        }
    }
}

/*
 * Marks the fields the proxy must not forward: hop-by-hop ones, and those the Connection field
 * names (RFC 9110 §7.6.1). Framing fields (Content-Length, Transfer-Encoding, Host) are never
 * dropped because Connection names them: "Connection: content-length" would otherwise let a
 * client make us forward a body the server cannot delimit. The Connection values are walked
 * once, and on_connection() caps their options, so this costs O(options x fields) at most.
 */
static void
mark_dropped(struct fp_h1_msg *msg, const char *buf)
{
    struct fp_h1_header *h;
    const char          *cur;
    const char          *elt;
    size_t               elen;
    uint32_t             i;
    uint32_t             drop = HDR_HOP | FP_H1_HDR_DROP;

    if ((msg->flags & FP_H1_F_CONN_OTHER) != 0) {
        for (i = 0; i < msg->nb_headers; i++) {
            h = &msg->hdrs[i];
            if ((h->flags & HDR_CONN) == 0) {
                continue;
            }
            cur = buf + h->value.off;
            while (list_next(&cur, buf + h->value.off + h->value.len, &elt, &elen)) {
                if (elen != 0) {
                    drop_named(msg, buf, elt, elen);
                }
            }
        }
    }
    if ((msg->flags & (FP_H1_F_CL_IGNORED | FP_H1_F_CL_REWRITE)) != 0) {
        drop |= HDR_CL;
    }
    /* The notes served their purpose: a finished head's fields carry FP_H1_HDR_DROP or 0. */
    for (i = 0; i < msg->nb_headers; i++) {
        h = &msg->hdrs[i];
        h->flags = (h->flags & drop) != 0 ? FP_H1_HDR_DROP : 0;
    }
}

/* RFC 9112 §6.3 for a request: TE chunked, else Content-Length, else no body. */
static enum fp_h1_error
finish_request(struct fp_h1_parser *p, const char *buf)
{
    struct fp_h1_msg *msg = &p->msg;

    if (msg->version_minor == 1 && (msg->flags & FP_H1_F_HOST) == 0) {
        return FP_H1_E_HOST_MISSING;
    }
    if ((msg->flags & FP_H1_F_TRANSFER_ENC) != 0) {
        /* RFC 9112 §6.1: TE in HTTP/1.0 means faulty framing; we refuse rather than guess. */
        if (msg->version_minor == 0) {
            return FP_H1_E_TE_HTTP10;
        }
        /* RFC 9112 §6.1 lets a server reject CL + TE; a proxy must, or it smuggles. */
        if ((msg->flags & FP_H1_F_CONTENT_LENGTH) != 0) {
            return FP_H1_E_CL_TE;
        }
        /* RFC 9112 §6.3 item 4: a request whose final coding is not chunked: 400. */
        if (!p->p_te_last) {
            return FP_H1_E_TE_NOT_CHUNKED;
        }
        msg->flags |= FP_H1_F_CHUNKED;
        msg->body = FP_H1_BODY_CHUNKED;
    } else if ((msg->flags & FP_H1_F_CONTENT_LENGTH) != 0) {
        if (p->p_lim.max_body_bytes != 0 && msg->content_length > p->p_lim.max_body_bytes) {
            return FP_H1_E_BODY_TOO_LARGE;
        }
        msg->body = FP_H1_BODY_LENGTH;
    } else {
        msg->body = FP_H1_BODY_NONE;
    }
    if (msg->target_form == FP_H1_TARGET_ABSOLUTE) {
        msg->host = msg->authority;
    } else if (msg->host_hdr >= 0) {
        msg->host = msg->hdrs[msg->host_hdr].value;
    }
    /* RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 is ignored. */
    if (msg->version_minor == 0) {
        msg->flags &= ~FP_H1_F_EXPECT_CONTINUE;
    }
    if (wants_persistence(msg)) {
        msg->flags |= FP_H1_F_KEEP_ALIVE;
    }
    mark_dropped(msg, buf);
    return FP_H1_E_NONE;
}

/* RFC 9112 §6.3 for a response, items 1 to 7 in order. */
static enum fp_h1_error
finish_response(struct fp_h1_parser *p, const char *buf)
{
    struct fp_h1_msg *msg = &p->msg;
    bool              te = (msg->flags & FP_H1_F_TRANSFER_ENC) != 0;

    if (te && msg->version_minor == 0) {
        return FP_H1_E_TE_HTTP10;
    }
    if (te && p->p_te_last) {
        msg->flags |= FP_H1_F_CHUNKED;
    }
    if (msg->status < 200) {
        msg->body = (msg->status == 101) ? FP_H1_BODY_TUNNEL : FP_H1_BODY_NONE;
    } else if (msg->req_method == FP_H1_METH_HEAD || msg->status == 204 || msg->status == 304) {
        msg->body = FP_H1_BODY_NONE;
    } else if (msg->req_method == FP_H1_METH_CONNECT && msg->status < 300) {
        msg->body = FP_H1_BODY_TUNNEL;
    } else if (te) {
        /* Item 3: TE overrides CL, and the CL must not be forwarded, not even rewritten. */
        if ((msg->flags & FP_H1_F_CONTENT_LENGTH) != 0) {
            msg->flags |= FP_H1_F_CL_IGNORED;
            msg->flags &= ~FP_H1_F_CL_REWRITE;
        }
        msg->body = p->p_te_last ? FP_H1_BODY_CHUNKED : FP_H1_BODY_CLOSE;
    } else if ((msg->flags & FP_H1_F_CONTENT_LENGTH) != 0) {
        msg->body = FP_H1_BODY_LENGTH;
    } else {
        msg->body = FP_H1_BODY_CLOSE;
    }
    if (wants_persistence(msg) && msg->body != FP_H1_BODY_CLOSE && msg->body != FP_H1_BODY_TUNNEL) {
        msg->flags |= FP_H1_F_KEEP_ALIVE;
    }
    mark_dropped(msg, buf);
    return FP_H1_E_NONE;
}

/* ---- Head parser: syntax ---- */

void
fp_h1_parser_init(struct fp_h1_parser *p, enum fp_h1_kind kind, enum fp_h1_method req_method,
                  const struct fp_h1_limits *lim, struct fp_h1_header *hdrs, uint32_t max_hdrs)
{
    memset(p, 0, sizeof(*p));
    normalize_limits(&p->p_lim, lim);
    p->p_max_hdrs = (max_hdrs < p->p_lim.max_headers) ? max_hdrs : p->p_lim.max_headers;
    p->msg.kind = kind;
    p->msg.hdrs = hdrs;
    p->msg.host_hdr = -1;
    p->msg.req_method = (kind == FP_H1_RESPONSE) ? req_method : FP_H1_METH_OTHER;
    p->p_state = (kind == FP_H1_REQUEST) ? HS_START : HS_RES_VERSION;
}

static inline bool
in_start_line(uint32_t state)
{
    return state >= HS_METHOD && state <= HS_REASON;
}

/* The error for an unexpected byte c, when dflt is the error for a printable one. */
static enum fp_h1_error
bad_char(unsigned char c, enum fp_h1_error dflt)
{
    if (c == '\n') {
        return FP_H1_E_BARE_LF; /* RFC 9112 §2.2 allows LF alone; we do not (smuggling) */
    }
    if ((c < 0x20 && c != '\r') || c == 0x7f) {
        return FP_H1_E_CTL;
    }
    return dflt;
}

static enum fp_h1_error
step_start(struct fp_h1_parser *p, unsigned char c, uint32_t pos)
{
    /* RFC 9112 §2.2: a server SHOULD ignore empty lines received before the request-line. */
    if (c == '\r') {
        p->p_state = HS_LEAD_LF;
        return FP_H1_E_NONE;
    }
    if (!is_tchar(c)) {
        return bad_char(c, FP_H1_E_METHOD);
    }
    p->msg.start_off = pos;
    p->p_tok = pos;
    p->p_state = HS_METHOD;
    return FP_H1_E_NONE;
}

static enum fp_h1_error
step_method(struct fp_h1_parser *p, const char *buf, unsigned char c, uint32_t pos)
{
    if (is_tchar(c)) {
        return FP_H1_E_NONE;
    }
    /* RFC 9112 §3: exactly one SP between the parts of the request-line. */
    if (c != ' ') {
        return bad_char(c, FP_H1_E_METHOD);
    }
    p->msg.method_span.off = p->p_tok;
    p->msg.method_span.len = pos - p->p_tok;
    p->msg.method = lookup_method(buf + p->p_tok, pos - p->p_tok);
    /* A reverse proxy does not tunnel: authority-form requests are not implemented (501). */
    if (p->msg.method == FP_H1_METH_CONNECT) {
        return FP_H1_E_CONNECT;
    }
    p->p_tok = pos + 1;
    p->p_state = HS_TARGET;
    return FP_H1_E_NONE;
}

static enum fp_h1_error
step_target(struct fp_h1_parser *p, const char *buf, unsigned char c, uint32_t pos)
{
    /* RFC 3986 characters are all printable ASCII. A fragment is not part of a
     * request-target (RFC 9112 §3.2), so '#' is refused too. */
    if (c > 0x20 && c < 0x7f && c != '#') {
        return FP_H1_E_NONE;
    }
    if (c == '\r') {
        return FP_H1_E_VERSION; /* HTTP/0.9 simple request */
    }
    if (c != ' ' || pos == p->p_tok) {
        return bad_char(c, FP_H1_E_TARGET);
    }
    p->msg.target.off = p->p_tok;
    p->msg.target.len = pos - p->p_tok;
    p->p_tok = pos + 1;
    p->p_state = HS_VERSION;
    return classify_target(&p->msg, buf);
}

static enum fp_h1_error
step_version(struct fp_h1_parser *p, const char *buf, unsigned char c, uint32_t pos)
{
    uint32_t n = pos - p->p_tok;

    if (c == (p->msg.kind == FP_H1_REQUEST ? '\r' : ' ')) {
        p->p_state = (p->msg.kind == FP_H1_REQUEST) ? HS_LINE_LF : HS_STATUS;
        p->p_tok = pos + 1;
        return parse_version(&p->msg, buf + pos - n, n);
    }
    if (n >= 8 || c <= 0x20 || c >= 0x7f) {
        return bad_char(c, p->msg.kind == FP_H1_REQUEST ? FP_H1_E_VERSION : FP_H1_E_STATUS);
    }
    return FP_H1_E_NONE;
}

/* RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]. */
static enum fp_h1_error
step_status(struct fp_h1_parser *p, unsigned char c, uint32_t pos)
{
    if (!is_digit(c)) {
        return bad_char(c, FP_H1_E_STATUS);
    }
    p->msg.status = (uint16_t)(p->msg.status * 10 + (c - '0'));
    if (pos - p->p_tok == 2) {
        p->p_state = HS_STATUS_END;
    }
    return FP_H1_E_NONE;
}

static enum fp_h1_error
step_status_end(struct fp_h1_parser *p, unsigned char c, uint32_t pos)
{
    if (p->msg.status < 100) {
        return FP_H1_E_STATUS;
    }
    /* Tolerated: no SP before an empty reason, as sent by some servers; the reason-phrase
     * carries no meaning (RFC 9112 §4). */
    if (c == '\r') {
        p->msg.reason.off = pos;
        p->p_state = HS_LINE_LF;
        return FP_H1_E_NONE;
    }
    if (c != ' ') {
        return bad_char(c, FP_H1_E_STATUS);
    }
    p->p_tok = pos + 1;
    p->p_state = HS_REASON;
    return FP_H1_E_NONE;
}

static enum fp_h1_error
step_reason(struct fp_h1_parser *p, unsigned char c, uint32_t pos)
{
    if (c == '\r') {
        p->msg.reason.off = p->p_tok;
        p->msg.reason.len = pos - p->p_tok;
        p->p_state = HS_LINE_LF;
        return FP_H1_E_NONE;
    }
    if (is_ws(c) || is_field_vchar(c)) {
        return FP_H1_E_NONE;
    }
    return bad_char(c, FP_H1_E_STATUS);
}

static enum fp_h1_error
step_field_start(struct fp_h1_parser *p, unsigned char c, uint32_t pos)
{
    if (c == '\r') {
        p->p_state = HS_END_LF;
        return FP_H1_E_NONE;
    }
    /* RFC 9112 §5.2: obs-fold is refused with 400; §2.2: so is whitespace between the
     * start-line and the first field. */
    if (is_ws(c)) {
        return FP_H1_E_OBS_FOLD;
    }
    if (!is_tchar(c)) {
        return bad_char(c, FP_H1_E_FIELD_NAME);
    }
    if (p->msg.nb_headers >= p->p_max_hdrs) {
        return FP_H1_E_TOO_MANY_HEADERS;
    }
    p->p_tok = pos;
    p->p_state = HS_HDR_NAME;
    return FP_H1_E_NONE;
}

static enum fp_h1_error
step_field_name(struct fp_h1_parser *p, unsigned char c, uint32_t pos)
{
    if (is_tchar(c)) {
        return FP_H1_E_NONE;
    }
    if (c == ':') {
        p->p_name_end = pos;
        p->p_val_off = pos + 1;
        p->p_val_end = pos + 1;
        p->p_state = HS_HDR_OWS;
        return FP_H1_E_NONE;
    }
    /* RFC 9112 §5.1: whitespace between name and colon MUST be rejected with 400. */
    if (is_ws(c)) {
        return FP_H1_E_WS_BEFORE_COLON;
    }
    return bad_char(c, FP_H1_E_FIELD_NAME);
}

/* The field value: leading OWS skipped (HS_HDR_OWS), trailing OWS trimmed via p_val_end. */
static enum fp_h1_error
step_field_value(struct fp_h1_parser *p, unsigned char c, uint32_t pos)
{
    if (is_field_vchar(c)) {
        if (p->p_state == HS_HDR_OWS) {
            p->p_val_off = pos;
            p->p_state = HS_HDR_VALUE;
        }
        p->p_val_end = pos + 1;
        return FP_H1_E_NONE;
    }
    if (is_ws(c)) {
        return FP_H1_E_NONE;
    }
    if (c == '\r') {
        if (p->p_state == HS_HDR_OWS) {
            p->p_val_off = pos;
            p->p_val_end = pos;
        }
        p->p_state = HS_HDR_LF;
        return FP_H1_E_NONE;
    }
    return bad_char(c, FP_H1_E_CTL);
}

static enum fp_h1_error
commit_field(struct fp_h1_parser *p, const char *buf)
{
    struct fp_h1_header *h = &p->msg.hdrs[p->msg.nb_headers];

    h->name.off = p->p_tok;
    h->name.len = p->p_name_end - p->p_tok;
    h->value.off = p->p_val_off;
    h->value.len = p->p_val_end - p->p_val_off;
    h->flags = 0;
    p->msg.nb_headers++;
    p->p_state = HS_HDR_START;
    return on_field(p, buf, p->msg.nb_headers - 1);
}

static enum fp_h1_error
step_lf(struct fp_h1_parser *p, const char *buf, unsigned char c, uint32_t pos)
{
    if (c != '\n') {
        return FP_H1_E_BARE_CR;
    }
    switch (p->p_state) {
    case HS_LEAD_LF:
        p->p_state = HS_START;
        return FP_H1_E_NONE;
    case HS_LINE_LF:
        p->p_state = HS_HDR_START;
        return FP_H1_E_NONE;
    case HS_HDR_LF:
        return commit_field(p, buf);
    default:
        p->msg.head_len = pos + 1;
        p->p_state = HS_DONE;
        if (p->msg.kind == FP_H1_REQUEST) {
            return finish_request(p, buf);
        }
        return finish_response(p, buf);
    }
}

static enum fp_h1_error
step_head(struct fp_h1_parser *p, const char *buf, unsigned char c, uint32_t pos)
{
    switch (p->p_state) {
    case HS_START:
        return step_start(p, c, pos);
    case HS_METHOD:
        return step_method(p, buf, c, pos);
    case HS_TARGET:
        return step_target(p, buf, c, pos);
    case HS_VERSION:
    case HS_RES_VERSION:
        return step_version(p, buf, c, pos);
    case HS_STATUS:
        return step_status(p, c, pos);
    case HS_STATUS_END:
        return step_status_end(p, c, pos);
    case HS_REASON:
        return step_reason(p, c, pos);
    case HS_HDR_START:
        return step_field_start(p, c, pos);
    case HS_HDR_NAME:
        return step_field_name(p, c, pos);
    case HS_HDR_OWS:
    case HS_HDR_VALUE:
        return step_field_value(p, c, pos);
    default:
        return step_lf(p, buf, c, pos);
    }
}

/*
 * Whether one of the 8 bytes of x is below 0x20 or is 0x7f (bit tricks from "Bit Twiddling
 * Hacks": a byte below n, n <= 128, borrows into its high bit; bytes of 0x80 and above have
 * theirs cleared by ~x; DEL is the byte that x ^ 0x7f... turns into zero).
 */
static inline bool
has_ctl(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t highs = 0x8080808080808080ULL;
    uint64_t       del = x ^ (ones * 0x7f);

    return (((x - ones * 0x20) & ~x) | ((del - ones) & ~del)) & highs;
}

/*
 * Fast path: consumes the run of bytes at pos that cannot change the state (the inside of a
 * target, a field name or a field value), bounded by len and by the limits, so that the
 * per-byte machine only sees the bytes that end a run. This roughly doubles the throughput on
 * browser-like heads. Returns the new position.
 */
static uint32_t
skip_run(struct fp_h1_parser *p, const unsigned char *s, uint32_t pos, size_t len)
{
    uint64_t end;
    uint64_t line_end;
    uint32_t start;
    uint32_t q;

    if (p->p_state != HS_TARGET && (p->p_state < HS_HDR_START || p->p_state > HS_HDR_VALUE)) {
        return pos;
    }
    end = p->p_lim.max_head_bytes;
    if (len < end) {
        end = len;
    }
    switch (p->p_state) {
    case HS_TARGET:
        line_end = (uint64_t)p->msg.start_off + p->p_lim.max_line_len;
        if (line_end < end) {
            end = line_end;
        }
        while (pos < end && s[pos] > 0x20 && s[pos] < 0x7f && s[pos] != '#') {
            pos++;
        }
        return pos;
    /*
     * A field line, from its first byte to the end of its value, in one pass while it has the
     * common shape; each step below does what step_field_start/_name/_value would do for the
     * same byte, and whatever else (CR, obs-fold, a bad byte, one field too many) is left to
     * them, to take the same transition or report the same error.
     */
    case HS_HDR_START:
        if (pos >= end || !is_tchar(s[pos]) || p->msg.nb_headers >= p->p_max_hdrs) {
            return pos;
        }
        p->p_tok = pos;
        p->p_state = HS_HDR_NAME;
        pos++;
        /* fall through */
    case HS_HDR_NAME:
        while (pos < end && is_tchar(s[pos])) {
            pos++;
        }
        if (pos >= end || s[pos] != ':') {
            return pos;
        }
        p->p_name_end = pos;
        p->p_val_off = pos + 1;
        p->p_val_end = pos + 1;
        p->p_state = HS_HDR_OWS;
        pos++;
        /* fall through */
    case HS_HDR_OWS:
        while (pos < end && is_ws(s[pos])) {
            pos++;
        }
        if (pos >= end || !is_field_vchar(s[pos])) {
            return pos;
        }
        p->p_val_off = pos;
        p->p_val_end = pos + 1;
        p->p_state = HS_HDR_VALUE;
        pos++;
        /* fall through */
    case HS_HDR_VALUE:
        start = pos;
        /* Eight bytes at a time while none is a control (< 0x20, tab included) or DEL; the
         * byte loop takes the word that has one. */
        while (pos + 8 <= end) {
            uint64_t x;

            memcpy(&x, s + pos, 8);
            if (has_ctl(x)) {
                break;
            }
            pos += 8;
        }
        while (pos < end && (is_field_vchar(s[pos]) || is_ws(s[pos]))) {
            pos++;
        }
        /* The value ends after its last field-vchar: trailing OWS is not part of it. */
        q = pos;
        while (q > start && is_ws(s[q - 1])) {
            q--;
        }
        if (q > start) {
            p->p_val_end = q;
        }
        return pos;
    default:
        return pos;
    }
}

enum fp_h1_status
fp_h1_parse(struct fp_h1_parser *p, const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    enum fp_h1_error     err = FP_H1_E_NONE;
    uint32_t             pos = p->p_pos;
    bool                 start_line;

    if (p->p_state == HS_DONE) {
        return FP_H1_DONE;
    }
    if (p->p_state == HS_ERROR) {
        return FP_H1_ERROR;
    }
    if (len < pos) {
        err = FP_H1_E_CALLER;
        goto fail;
    }
    while (pos < len) {
        pos = skip_run(p, s, pos, len);
        if (pos == len) {
            break;
        }
        start_line = in_start_line(p->p_state);
        /* A response's start-line starts at 0; a request's at msg.start_off. */
        if (start_line && pos - p->msg.start_off >= p->p_lim.max_line_len && s[pos] != '\r') {
            err = FP_H1_E_LINE_TOO_LONG;
            goto fail;
        }
        if (pos >= p->p_lim.max_head_bytes) {
            err = start_line ? FP_H1_E_LINE_TOO_LONG : FP_H1_E_HEAD_TOO_LARGE;
            goto fail;
        }
        err = step_head(p, buf, s[pos], pos);
        pos++;
        if (err != FP_H1_E_NONE) {
            goto fail;
        }
        if (p->p_state == HS_DONE) {
            p->p_pos = pos;
            return FP_H1_DONE;
        }
    }
    p->p_pos = pos;
    return FP_H1_NEED_MORE;

fail:
    p->p_pos = pos;
    p->err = err;
    p->p_state = HS_ERROR;
    return FP_H1_ERROR;
}

/* ---- Body tracker ---- */

void
fp_h1_body_init(struct fp_h1_body *b, const struct fp_h1_msg *msg, const struct fp_h1_limits *lim)
{
    memset(b, 0, sizeof(*b));
    normalize_limits(&b->b_lim, lim);
    b->kind = msg->body;
    b->b_msg_kind = msg->kind;
    /* The 413 limit protects the server from clients; responses are not limited. */
    if (msg->kind == FP_H1_RESPONSE) {
        b->b_lim.max_body_bytes = 0;
    }
    switch (msg->body) {
    case FP_H1_BODY_LENGTH:
        b->b_left = msg->content_length;
        b->b_state = BS_LENGTH;
        break;
    case FP_H1_BODY_CHUNKED:
        b->b_state = BS_SIZE_FIRST;
        break;
    case FP_H1_BODY_CLOSE:
    case FP_H1_BODY_TUNNEL:
        b->b_state = BS_OPEN;
        break;
    default:
        b->b_state = BS_DONE;
        break;
    }
}

static inline bool
in_chunk_line(uint32_t state)
{
    return state >= BS_SIZE_FIRST && state <= BS_EXT_AFTER_QVAL;
}

static inline bool
in_trailer(uint32_t state)
{
    return state >= BS_TRL_START && state <= BS_END_LF;
}

/* RFC 9112 §7.1: chunk-size = 1*HEXDIG, then [ chunk-ext ] CRLF. */
static enum fp_h1_error
step_chunk_size(struct fp_h1_body *b, unsigned char c)
{
    int v = hex_value(c);

    if (v >= 0) {
        if (b->b_left > (MAX_BODY_SIZE >> 4)) {
            return FP_H1_E_CHUNK_SIZE;
        }
        b->b_left = (b->b_left << 4) | (uint64_t)v;
        b->b_state = BS_SIZE;
        return FP_H1_E_NONE;
    }
    if (b->b_state == BS_SIZE_FIRST) {
        return FP_H1_E_CHUNK_SIZE;
    }
    switch (c) {
    case ';':
        b->b_state = BS_EXT_NAME_START;
        return FP_H1_E_NONE;
    case ' ':
    case '\t':
        b->b_state = BS_EXT_BWS;
        return FP_H1_E_NONE;
    case '\r':
        b->b_state = BS_SIZE_LF;
        return FP_H1_E_NONE;
    default:
        return FP_H1_E_CHUNK_SIZE;
    }
}

/*
 * RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
 * chunk-ext-val = token / quoted-string. Extensions are validated and ignored. Tightened:
 * whitespace at the end of the line (no ';' after it) is refused.
 */
static enum fp_h1_error
step_chunk_ext(struct fp_h1_body *b, unsigned char c)
{
    uint32_t st = b->b_state;

    if (st == BS_EXT_QUOTED) {
        if (c == '"') {
            b->b_state = BS_EXT_AFTER_QVAL;
        } else if (c == '\\') {
            b->b_state = BS_EXT_QESC;
        } else if (!is_ws(c) && !is_field_vchar(c)) {
            return FP_H1_E_CHUNK_EXT;
        }
        return FP_H1_E_NONE;
    }
    if (st == BS_EXT_QESC) {
        b->b_state = BS_EXT_QUOTED;
        return (is_ws(c) || is_field_vchar(c)) ? FP_H1_E_NONE : FP_H1_E_CHUNK_EXT;
    }
    if (is_tchar(c)) {
        if (st == BS_EXT_NAME_START || st == BS_EXT_NAME) {
            b->b_state = BS_EXT_NAME;
            return FP_H1_E_NONE;
        }
        if (st == BS_EXT_VAL_START || st == BS_EXT_VAL_TOKEN) {
            b->b_state = BS_EXT_VAL_TOKEN;
            return FP_H1_E_NONE;
        }
        return FP_H1_E_CHUNK_EXT;
    }
    switch (c) {
    case ' ':
    case '\t':
        if (st == BS_EXT_NAME) {
            b->b_state = BS_EXT_AFTER_NAME;
        } else if (st == BS_EXT_VAL_TOKEN || st == BS_EXT_AFTER_QVAL) {
            b->b_state = BS_EXT_BWS;
        }
        return FP_H1_E_NONE;
    case ';':
        if (st == BS_EXT_NAME_START || st == BS_EXT_VAL_START) {
            return FP_H1_E_CHUNK_EXT;
        }
        b->b_state = BS_EXT_NAME_START;
        return FP_H1_E_NONE;
    case '=':
        if (st != BS_EXT_NAME && st != BS_EXT_AFTER_NAME) {
            return FP_H1_E_CHUNK_EXT;
        }
        b->b_state = BS_EXT_VAL_START;
        return FP_H1_E_NONE;
    case '"':
        if (st != BS_EXT_VAL_START) {
            return FP_H1_E_CHUNK_EXT;
        }
        b->b_state = BS_EXT_QUOTED;
        return FP_H1_E_NONE;
    case '\r':
        if (st != BS_EXT_NAME && st != BS_EXT_VAL_TOKEN && st != BS_EXT_AFTER_QVAL) {
            return FP_H1_E_CHUNK_EXT;
        }
        b->b_state = BS_SIZE_LF;
        return FP_H1_E_NONE;
    default:
        return FP_H1_E_CHUNK_EXT;
    }
}

static enum fp_h1_error
end_chunk_line(struct fp_h1_body *b, unsigned char c)
{
    uint64_t max = b->b_lim.max_body_bytes;

    if (c != '\n') {
        return FP_H1_E_CHUNK_SIZE;
    }
    if (max != 0 && b->b_left > max - b->payload_bytes) {
        return FP_H1_E_BODY_TOO_LARGE;
    }
    b->b_line = 0;
    b->b_state = (b->b_left == 0) ? BS_TRL_START : BS_DATA;
    return FP_H1_E_NONE;
}

/* RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ), then the final CRLF. Fields are
 * validated like header fields (without obs-fold) and forwarded as they are. */
static enum fp_h1_error
step_trailer(struct fp_h1_body *b, unsigned char c)
{
    switch (b->b_state) {
    case BS_TRL_START:
        if (c == '\r') {
            b->b_state = BS_END_LF;
            return FP_H1_E_NONE;
        }
        if (!is_tchar(c)) {
            return FP_H1_E_TRAILER;
        }
        if (++b->b_trl_count > b->b_lim.max_trailers) {
            return FP_H1_E_TRAILER_TOO_LARGE;
        }
        b->b_state = BS_TRL_NAME;
        return FP_H1_E_NONE;
    case BS_TRL_NAME:
        if (c == ':') {
            b->b_state = BS_TRL_VALUE;
        }
        return (c == ':' || is_tchar(c)) ? FP_H1_E_NONE : FP_H1_E_TRAILER;
    case BS_TRL_VALUE:
        if (c == '\r') {
            b->b_state = BS_TRL_LF;
        }
        return (c == '\r' || is_ws(c) || is_field_vchar(c)) ? FP_H1_E_NONE : FP_H1_E_TRAILER;
    case BS_TRL_LF:
        b->b_state = BS_TRL_START;
        return (c == '\n') ? FP_H1_E_NONE : FP_H1_E_TRAILER;
    default:
        b->b_state = BS_DONE;
        return (c == '\n') ? FP_H1_E_NONE : FP_H1_E_TRAILER;
    }
}

static enum fp_h1_error
step_chunk(struct fp_h1_body *b, unsigned char c)
{
    switch (b->b_state) {
    case BS_SIZE_FIRST:
    case BS_SIZE:
        return step_chunk_size(b, c);
    case BS_SIZE_LF:
        return end_chunk_line(b, c);
    case BS_DATA_CR:
        b->b_state = BS_DATA_LF;
        return (c == '\r') ? FP_H1_E_NONE : FP_H1_E_CHUNK_CRLF;
    case BS_DATA_LF:
        b->b_state = BS_SIZE_FIRST;
        return (c == '\n') ? FP_H1_E_NONE : FP_H1_E_CHUNK_CRLF;
    default:
        if (in_trailer(b->b_state)) {
            return step_trailer(b, c);
        }
        return step_chunk_ext(b, c);
    }
}

/*
 * Examines chunked bytes; returns how many belong to the message, or sets b->err. With
 * decoded (else NULL, and so is dst), chunk data is also moved down to dst[*decoded ..), dst
 * being s itself: the write position never passes the read position, so the move is safe.
 */
static size_t
feed_chunked(struct fp_h1_body *b, const unsigned char *s, size_t len, unsigned char *dst,
             size_t *decoded)
{
    enum fp_h1_error err;
    uint64_t         n;
    size_t           i = 0;

    while (i < len && b->b_state != BS_DONE) {
        if (b->b_state == BS_DATA) {
            n = (b->b_left < len - i) ? b->b_left : len - i;
            if (decoded != NULL) {
                memmove(dst + *decoded, s + i, n);
                *decoded += n;
            }
            i += n;
            b->b_left -= n;
            b->payload_bytes += n;
            if (b->b_left == 0) {
                b->b_state = BS_DATA_CR;
            }
            continue;
        }
        if (in_chunk_line(b->b_state) && s[i] != '\r' && ++b->b_line > b->b_lim.max_chunk_line) {
            b->err = FP_H1_E_CHUNK_LINE_TOO_LONG;
            return i;
        }
        if (in_trailer(b->b_state) && ++b->b_trl_bytes > b->b_lim.max_trailer_bytes) {
            b->err = FP_H1_E_TRAILER_TOO_LARGE;
            return i;
        }
        err = step_chunk(b, s[i]);
        if (err != FP_H1_E_NONE) {
            b->err = err;
            return i;
        }
        i++;
    }
    return i;
}

static enum fp_h1_status
body_feed(struct fp_h1_body *b, const char *data, size_t len, size_t *consumed, unsigned char *dst,
          size_t *decoded)
{
    size_t n;

    *consumed = 0;
    switch (b->b_state) {
    case BS_DONE:
        return FP_H1_DONE;
    case BS_ERROR:
        return FP_H1_ERROR;
    case BS_OPEN:
        n = len;
        b->payload_bytes += n;
        break;
    case BS_LENGTH:
        n = (b->b_left < len) ? (size_t)b->b_left : len;
        b->b_left -= n;
        b->payload_bytes += n;
        if (b->b_left == 0) {
            b->b_state = BS_DONE;
        }
        break;
    default:
        n = feed_chunked(b, (const unsigned char *)data, len, dst, decoded);
        if (b->err != FP_H1_E_NONE) {
            b->b_state = BS_ERROR;
        }
        break;
    }
    *consumed = n;
    b->wire_bytes += n;
    if (b->b_state == BS_ERROR) {
        return FP_H1_ERROR;
    }
    return (b->b_state == BS_DONE) ? FP_H1_DONE : FP_H1_NEED_MORE;
}

enum fp_h1_status
fp_h1_body_feed(struct fp_h1_body *b, const char *data, size_t len, size_t *consumed)
{
    return body_feed(b, data, len, consumed, NULL, NULL);
}

enum fp_h1_status
fp_h1_body_decode(struct fp_h1_body *b, char *data, size_t len, size_t *consumed, size_t *decoded)
{
    enum fp_h1_status st;

    /* Only the chunked tracker writes to dst; every other kind leaves its bytes as they are. */
    *decoded = 0;
    st = body_feed(b, data, len, consumed, (unsigned char *)data, decoded);
    if (b->kind != FP_H1_BODY_CHUNKED) {
        *decoded = *consumed;
    }
    return st;
}

enum fp_h1_status
fp_h1_body_eof(struct fp_h1_body *b)
{
    switch (b->b_state) {
    case BS_DONE:
        return FP_H1_DONE;
    case BS_OPEN:
        b->b_state = BS_DONE;
        return FP_H1_DONE;
    case BS_ERROR:
        return FP_H1_ERROR;
    default:
        b->err = FP_H1_E_TRUNCATED;
        b->b_state = BS_ERROR;
        return FP_H1_ERROR;
    }
}
