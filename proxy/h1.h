/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * HTTP/1.1 message head parser and body framing tracker (RFC 9110, RFC 9112).
 *
 * This module owns three caller-allocated structs: struct fp_h1_parser (one message head),
 * struct fp_h1_body (one message body) and struct fp_h1_limits (the caller's limits, copied at
 * init). It never allocates, never does I/O and keeps no global mutable state, so any worker may
 * use it on its own structs; a struct must not be shared between workers.
 *
 * Zero copy: the parser never copies message bytes. Everything it finds (method, target, header
 * names and values...) is reported as an OFFSET + LENGTH (struct fp_h1_span) relative to the
 * first byte of the message in the caller's buffer, so the caller may move or compact its buffer
 * between calls, provided the bytes of the head stay contiguous and unchanged.
 *
 * Resumable: fp_h1_parse() is called again with the same message start and a longer length each
 * time more bytes arrive; it continues where it stopped (each byte is examined once), and gives
 * the same result whatever the split points. fp_h1_body_feed() is given only the new body bytes.
 *
 * How the proxy drives it: see the "Driving" comment at the end of this file.
 *
 * Where the parser is stricter than RFC 9112 (each is cited at the decision point in h1.c):
 * bare LF line endings, obs-fold, whitespace before ':' or between the start-line and the first
 * field, control characters, Transfer-Encoding parameters or unknown codings in a request,
 * trailing whitespace on a chunk-size line, and empty Content-Length list elements are all
 * rejected. Nothing ambiguous is ever forwarded.
 */
#ifndef FP_PROXY_H1_H
#define FP_PROXY_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result of fp_h1_parse(), fp_h1_body_feed() and fp_h1_body_eof(). */
enum fp_h1_status {
    FP_H1_DONE = 0,      /* the head (or body) is complete */
    FP_H1_NEED_MORE = 1, /* every byte given was consumed; call again with more */
    FP_H1_ERROR = -1,    /* malformed or over a limit; see the struct's err field */
};

/* Which message a parser or body tracker handles. */
enum fp_h1_kind {
    FP_H1_REQUEST = 0,
    FP_H1_RESPONSE = 1,
};

/*
 * Why a message was rejected. Each cause has its own value so that the caller can keep one
 * counter per cause. fp_h1_error_status() gives the HTTP status to answer, fp_h1_error_reason()
 * a short text for the error body or the log.
 */
enum fp_h1_error {
    FP_H1_E_NONE = 0,
    FP_H1_E_METHOD,              /* invalid method token (400) */
    FP_H1_E_TARGET,              /* invalid request-target (400) */
    FP_H1_E_VERSION,             /* malformed HTTP-version (400) */
    FP_H1_E_VERSION_UNSUPPORTED, /* well-formed version other than 1.0 / 1.1 (505) */
    FP_H1_E_LINE_TOO_LONG,       /* request-line / status-line over the limit (414) */
    FP_H1_E_STATUS,              /* malformed status-line (response only) */
    FP_H1_E_BARE_CR,             /* CR not followed by LF (400) */
    FP_H1_E_BARE_LF,             /* LF not preceded by CR (400) */
    FP_H1_E_CTL,                 /* NUL or another control character (400) */
    FP_H1_E_OBS_FOLD,            /* line folding or whitespace before the first field (400) */
    FP_H1_E_FIELD_NAME,          /* empty field name or invalid character in it (400) */
    FP_H1_E_WS_BEFORE_COLON,     /* whitespace between field name and colon (400) */
    FP_H1_E_HEAD_TOO_LARGE,      /* head bytes over the limit (431) */
    FP_H1_E_TOO_MANY_HEADERS,    /* more fields than the limit or the array (431) */
    FP_H1_E_HOST_MISSING,        /* HTTP/1.1 request without Host (400) */
    FP_H1_E_HOST_DUP,            /* more than one Host field (400) */
    FP_H1_E_HOST_INVALID,        /* Host value or target authority with invalid chars (400) */
    FP_H1_E_CL_INVALID,          /* Content-Length not 1*DIGIT, or too large (400) */
    FP_H1_E_CL_MISMATCH,         /* Content-Length values that differ (400) */
    FP_H1_E_TE_INVALID,          /* empty / malformed Transfer-Encoding, chunked twice (400) */
    FP_H1_E_TE_NOT_CHUNKED,      /* request Transfer-Encoding whose final coding isn't chunked */
    FP_H1_E_TE_UNKNOWN,          /* request transfer coding we do not know (501) */
    FP_H1_E_TE_HTTP10,           /* Transfer-Encoding in an HTTP/1.0 message (400) */
    FP_H1_E_CL_TE,               /* request with both Content-Length and Transfer-Encoding */
    FP_H1_E_CONNECTION,          /* Connection element not a token, or > 32 (400) */
    FP_H1_E_EXPECT,              /* expectation other than 100-continue (417) */
    FP_H1_E_CONNECT,             /* CONNECT method: no tunnelling in a reverse proxy (501) */
    FP_H1_E_BODY_TOO_LARGE,      /* request payload over limits.max_body_bytes (413) */
    FP_H1_E_CHUNK_SIZE,          /* missing, non-hex or overflowing chunk-size (400) */
    FP_H1_E_CHUNK_EXT,           /* malformed chunk extension (400) */
    FP_H1_E_CHUNK_LINE_TOO_LONG, /* chunk-size line over limits.max_chunk_line (400) */
    FP_H1_E_CHUNK_CRLF,          /* chunk data not followed by CRLF (400) */
    FP_H1_E_TRAILER,             /* malformed trailer field (400) */
    FP_H1_E_TRAILER_TOO_LARGE,   /* trailer section over its byte or count limit (400) */
    FP_H1_E_TRUNCATED,           /* connection closed before the body ended (400) */
    FP_H1_E_CALLER,              /* contract violation by the caller, e.g. shrinking len (500) */
    FP_H1_E_COUNT
};

/* Request methods we recognise (RFC 9110 §9; methods are case-sensitive). */
enum fp_h1_method {
    FP_H1_METH_OTHER = 0, /* a valid token we do not know: forwarded as-is */
    FP_H1_METH_GET,
    FP_H1_METH_HEAD,
    FP_H1_METH_POST,
    FP_H1_METH_PUT,
    FP_H1_METH_DELETE,
    FP_H1_METH_CONNECT,
    FP_H1_METH_OPTIONS,
    FP_H1_METH_TRACE,
    FP_H1_METH_PATCH,
};

/* RFC 9112 §3.2. Authority-form (CONNECT) is rejected with 501 (FP_H1_E_CONNECT). */
enum fp_h1_target_form {
    FP_H1_TARGET_ORIGIN = 0, /* "/path?query" */
    FP_H1_TARGET_ABSOLUTE,   /* "http://host:port/path?query" */
    FP_H1_TARGET_ASTERISK,   /* "*", OPTIONS only */
};

/* How the body of a message is delimited (RFC 9112 §6.3). */
enum fp_h1_body_kind {
    FP_H1_BODY_NONE = 0, /* no body: the message ends with its head */
    FP_H1_BODY_LENGTH,   /* exactly msg.content_length bytes (possibly 0) */
    FP_H1_BODY_CHUNKED,  /* chunked coding, forwarded as-is */
    FP_H1_BODY_CLOSE,    /* response only: the body ends when the server closes */
    FP_H1_BODY_TUNNEL,   /* response only: 101, or 2xx to CONNECT; bytes after are opaque */
};

/* Message flags (msg.flags). */
#define FP_H1_F_CONTENT_LENGTH  0x0001u /* a valid Content-Length was received */
#define FP_H1_F_TRANSFER_ENC    0x0002u /* a Transfer-Encoding was received */
#define FP_H1_F_CHUNKED         0x0004u /* chunked is the final transfer coding */
#define FP_H1_F_CONN_CLOSE      0x0008u /* Connection lists "close" */
#define FP_H1_F_CONN_KEEPALIVE  0x0010u /* Connection lists "keep-alive" */
#define FP_H1_F_CONN_UPGRADE    0x0020u /* Connection lists "upgrade" */
#define FP_H1_F_CONN_OTHER      0x0040u /* Connection lists other field names */
#define FP_H1_F_EXPECT_CONTINUE 0x0080u /* HTTP/1.1 request with Expect: 100-continue */
#define FP_H1_F_KEEP_ALIVE      0x0100u /* persistence decision (RFC 9112 §9.3): see below */
#define FP_H1_F_HOST            0x0200u /* a Host field was received */
#define FP_H1_F_UPGRADE         0x0400u /* an Upgrade field was received */
#define FP_H1_F_CL_IGNORED      0x0800u /* response with CL and TE: CL ignored and marked DROP */
#define FP_H1_F_CL_REWRITE      0x1000u /* CL was a list or repeated: see below */
#define FP_H1_F_TE_OTHER        0x2000u /* a transfer coding other than chunked was received */

/* Header flags (fp_h1_header.flags). DROP: hop-by-hop, named by Connection, or an overridden
 * Content-Length; the proxy must not forward the field (see fp_h1_is_hop_by_hop()). */
#define FP_H1_HDR_DROP 0x1u
/* While a head is being parsed, other bits hold the parser's own notes on the field (what its
 * name is); once the head is complete, flags is FP_H1_HDR_DROP or 0. */

/* A byte range relative to the first byte of the message. */
struct fp_h1_span {
    uint32_t off;
    uint32_t len;
};

/* One field line. The value has its leading and trailing whitespace (OWS) removed. */
struct fp_h1_header {
    struct fp_h1_span name;
    struct fp_h1_span value;
    uint32_t          flags; /* FP_H1_HDR_* */
};

/*
 * Limits; fill with fp_h1_limits_default() and then change what the configuration sets.
 * A limit of 0 is replaced by its default, except max_body_bytes where 0 means unlimited.
 */
struct fp_h1_limits {
    uint32_t max_line_len;      /* request-line / status-line bytes without CRLF (414) */
    uint32_t max_head_bytes;    /* whole head, start-line to final CRLF included (431) */
    uint32_t max_headers;       /* field lines (431); also bounded by the header array */
    uint32_t max_chunk_line;    /* chunk-size line with extensions, without CRLF */
    uint32_t max_trailer_bytes; /* trailer section, final CRLF included */
    uint32_t max_trailers;      /* trailer field lines */
    uint64_t max_body_bytes;    /* request payload bytes (413); 0 = unlimited */
};

/*
 * What the parser found in a head. Valid once fp_h1_parse() returned FP_H1_DONE; the spans are
 * offsets from the message start given to fp_h1_parse().
 *
 * Absolute-form (only http and https URIs are accepted): path is what follows the authority;
 * it may be empty ("http://h") or start with '?' ("http://h?q"), and then the origin-form to
 * send is "/" followed by path.
 *
 * Content-Length lists (RFC 9110 §8.6): a list of identical values ("5, 5") or several
 * Content-Length fields with the same value are accepted as that one value, never forwarded as
 * received: FP_H1_F_CL_REWRITE is set, every Content-Length field is marked FP_H1_HDR_DROP, and
 * the proxy writes one "Content-Length: <content_length>" in their place. Values that differ
 * are refused (FP_H1_E_CL_MISMATCH). In a response whose CL is ignored (FP_H1_F_CL_IGNORED)
 * the flag is cleared: nothing replaces the dropped fields.
 *
 * Persistence (FP_H1_F_KEEP_ALIVE), RFC 9112 §9.3: set when the message allows the connection
 * to stay open after it: no "close" token, and HTTP/1.1 or HTTP/1.0 with "keep-alive"; for a
 * response also a body that is not delimited by close and not a tunnel. The proxy keeps the
 * client connection only if both the request and its response allow it.
 */
struct fp_h1_msg {
    enum fp_h1_kind      kind;
    uint32_t             flags;          /* FP_H1_F_* */
    uint8_t              version_minor;  /* 0 or 1: the major version is always 1 */
    enum fp_h1_body_kind body;           /* how the body is delimited */
    uint64_t             content_length; /* valid when body == FP_H1_BODY_LENGTH */
    uint32_t             start_off;      /* start-line offset (after skipped empty lines) */
    uint32_t             head_len;       /* bytes of the head, final CRLF included */
    struct fp_h1_header *hdrs;           /* the caller's array given to fp_h1_parser_init */
    uint32_t             nb_headers;     /* entries used in hdrs */
    int32_t              host_hdr;       /* index of the Host field in hdrs, or -1 */
    /* Request only. */
    enum fp_h1_method      method;
    struct fp_h1_span      method_span;
    enum fp_h1_target_form target_form;
    struct fp_h1_span      target;    /* the request-target as received */
    struct fp_h1_span      authority; /* absolute-form: "host[:port]"; otherwise len 0 */
    struct fp_h1_span      path;      /* path and query; absolute-form: see above */
    struct fp_h1_span      host;      /* effective host: absolute-form authority, else Host */
    /* Response only. */
    enum fp_h1_method req_method; /* method of the request it answers (given at init) */
    uint16_t          status;
    struct fp_h1_span reason;
};

/* Head parser state. Opaque to the caller except msg, err (valid after FP_H1_ERROR). */
struct fp_h1_parser {
    struct fp_h1_msg msg;
    enum fp_h1_error err;
    /* Private: everything below belongs to h1.c. */
    struct fp_h1_limits p_lim;
    uint32_t            p_max_hdrs; /* min(limits.max_headers, array capacity) */
    uint32_t            p_state;
    uint32_t            p_pos;        /* next byte to examine */
    uint32_t            p_tok;        /* start of the token / field being scanned */
    uint32_t            p_name_end;   /* end of the field name */
    uint32_t            p_val_off;    /* first byte of the field value, or 0 if none yet */
    uint32_t            p_val_end;    /* end of the value without trailing OWS */
    uint8_t             p_te_chunked; /* number of "chunked" codings seen */
    bool                p_te_last;    /* the last coding seen so far is chunked */
    uint32_t            p_conn_opts;  /* Connection options seen */
};

/* Chunked body tracker and close/length countdown. Opaque except the counters and err. */
struct fp_h1_body {
    enum fp_h1_body_kind kind;
    enum fp_h1_error     err;
    uint64_t             payload_bytes; /* body payload seen: chunk data or CL bytes */
    uint64_t             wire_bytes;    /* every byte consumed, chunk framing included */
    /* Private: everything below belongs to h1.c. */
    enum fp_h1_kind     b_msg_kind;
    uint32_t            b_state;
    uint64_t            b_left; /* LENGTH: bytes left; CHUNKED: left in this chunk */
    uint32_t            b_line; /* bytes in the current chunk-size line */
    uint32_t            b_trl_bytes;
    uint32_t            b_trl_count;
    struct fp_h1_limits b_lim;
};

/* Fills *lim with the defaults: line 8 KiB, head 32 KiB, 100 fields, chunk line 4 KiB, trailer
 * 8 KiB and 32 fields, no body limit. Any worker may call it. */
void fp_h1_limits_default(struct fp_h1_limits *lim);

/*
 * Prepares p to parse one message head.
 * kind: FP_H1_REQUEST or FP_H1_RESPONSE. req_method: for a response, the method of the request
 * it answers (decides the body of a HEAD / CONNECT response); ignored for a request.
 * lim: copied; NULL means the defaults. hdrs/max_hdrs: the caller's header array; it must outlive
 * the use of p->msg, and the effective field limit is min(max_hdrs, lim->max_headers).
 * Never fails. Call it again (on the same or a new array) for each new message.
 */
void fp_h1_parser_init(struct fp_h1_parser *p, enum fp_h1_kind kind, enum fp_h1_method req_method,
                       const struct fp_h1_limits *lim, struct fp_h1_header *hdrs,
                       uint32_t max_hdrs);

/*
 * Parses the head of the message starting at buf[0], of which len bytes are available so far.
 * Call it again, with the same message start (possibly moved: only offsets are kept) and a
 * len at least as large, until it returns something other than FP_H1_NEED_MORE.
 * Returns:
 *  FP_H1_DONE: p->msg is complete; the head is buf[0 .. msg.head_len); body bytes (or the next
 *    pipelined message) begin at buf[msg.head_len].
 *  FP_H1_NEED_MORE: all len bytes examined, the head is not finished.
 *  FP_H1_ERROR: p->err says why (fp_h1_error_status() gives the status to answer); the caller
 *    answers (for a request) and closes the connection. Later calls return FP_H1_ERROR again.
 * A shrinking len is reported as FP_H1_E_CALLER.
 */
enum fp_h1_status fp_h1_parse(struct fp_h1_parser *p, const char *buf, size_t len);

/*
 * Prepares b to track the body of msg, a head for which fp_h1_parse() returned FP_H1_DONE.
 * lim: copied, NULL means the defaults; max_body_bytes applies to requests only.
 * Never fails.
 */
void fp_h1_body_init(struct fp_h1_body *b, const struct fp_h1_msg *msg,
                     const struct fp_h1_limits *lim);

/*
 * Examines the next len body bytes at data (only new bytes: the tracker keeps its own state).
 * Sets *consumed to how many of them belong to this message.
 * Returns:
 *  FP_H1_DONE: the message ends after *consumed bytes; the rest belongs to the next message.
 *    For FP_H1_BODY_NONE this happens at once with *consumed == 0.
 *  FP_H1_NEED_MORE: *consumed == len, the body goes on.
 *  FP_H1_ERROR: malformed chunked framing or a body limit; b->err says why; *consumed is the
 *    count of bytes before the offending one. Answer 400 / 413 to a client, 502 for a server
 *    (fp_h1_error_status() does that mapping).
 * After FP_H1_DONE or FP_H1_ERROR, further calls return the same and consume nothing.
 */
enum fp_h1_status fp_h1_body_feed(struct fp_h1_body *b, const char *data, size_t len,
                                  size_t *consumed);

/*
 * The same as fp_h1_body_feed(), and also removes the chunked framing in place (RFC 9112
 * §7.1.3): the payload bytes among the *consumed bytes are moved, in order, to
 * data[0 .. *decoded); the chunk-size lines, chunk CRLFs and trailer section are dropped. For
 * any other body kind *decoded == *consumed and data is not written. Used to forward a chunked
 * body to a recipient that must not get the chunked coding (an HTTP/1.0 client, §6.1).
 * The bytes after *consumed are not moved: the caller closes the gap.
 */
enum fp_h1_status fp_h1_body_decode(struct fp_h1_body *b, char *data, size_t len, size_t *consumed,
                                    size_t *decoded);

/*
 * Tells b that the connection was closed by the peer (no more bytes will come).
 * Returns FP_H1_DONE if the message is complete (always for FP_H1_BODY_CLOSE and TUNNEL, or
 * if it was already done), otherwise FP_H1_ERROR with b->err = FP_H1_E_TRUNCATED.
 */
enum fp_h1_status fp_h1_body_eof(struct fp_h1_body *b);

/* HTTP status to answer for err: the request statuses listed in enum fp_h1_error for a
 * request, 502 for every error in a response. Returns 0 for FP_H1_E_NONE. */
int fp_h1_error_status(enum fp_h1_error err, enum fp_h1_kind kind);

/* Short static text naming err ("bad content-length"...). Never NULL. */
const char *fp_h1_error_reason(enum fp_h1_error err);

/* True if the field names a and b (lengths alen, blen) are equal, ASCII case-insensitively. */
bool fp_h1_name_eq(const char *a, size_t alen, const char *b, size_t blen);

/*
 * True if the field name is hop-by-hop by name alone (RFC 9110 §7.6.1): Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Upgrade. Transfer-Encoding is hop-by-hop too, but it is NOT in
 * this list: the proxy forwards chunked bodies as received, so it forwards the field with them
 * (except toward an HTTP/1.0 client, see "Driving" below).
 */
bool fp_h1_is_hop_by_hop(const char *name, size_t len);

/*
 * True if a Connection field of msg (parsed from buf) lists the field name (case-insensitive).
 * msg must be complete (fp_h1_parse() returned FP_H1_DONE).
 */
bool fp_h1_connection_lists(const struct fp_h1_msg *msg, const char *buf, const char *name,
                            size_t len);

/*
 * Driving (how the proxy uses this module), per connection direction:
 *
 * 1. Head. fp_h1_parser_init(&p, FP_H1_REQUEST, 0, &lim, hdrs, N), then after every recv call
 *    fp_h1_parse(&p, msg_start, bytes_buffered_from_msg_start). On FP_H1_ERROR answer
 *    fp_h1_error_status(p.err, FP_H1_REQUEST) with a short body, count p.err, close. If the
 *    buffer fills before FP_H1_DONE, the head is over the buffer size: answer 431.
 * 2. Decisions on p.msg: route with msg.host / msg.path; forward the start-line and every header
 *    without FP_H1_HDR_DROP (in absolute-form, send origin-form msg.path and Host: msg.host);
 *    with FP_H1_F_CL_REWRITE add one Content-Length field; add the proxy's own Connection /
 *    X-Forwarded-* fields. FP_H1_F_EXPECT_CONTINUE: forward
 *    the Expect field (the server answers 100) or answer 100 yourself. Remember
 *    msg.method for the response parser and FP_H1_F_KEEP_ALIVE for the client connection.
 * 3. Body. fp_h1_body_init(&b, &p.msg, &lim); feed it the bytes after head_len and every later
 *    recv; forward exactly *consumed bytes each time. On FP_H1_DONE the request is over: the
 *    remaining bytes are the next pipelined request (restart at 1 from them).
 * 4. Response: fp_h1_parser_init(&p, FP_H1_RESPONSE, request_method, ...), the same loop; a 1xx
 *    (other than 101) is forwarded and followed by another response head for the same request.
 *    FP_H1_BODY_CLOSE: forward until the server closes (fp_h1_body_eof() then says DONE), and
 *    close the client connection after it. Any response error: 502 if nothing was sent yet.
 *    Bodies pass unchanged, except toward an HTTP/1.0 client, which must not get
 *    Transfer-Encoding (RFC 9112 §6.1): send its request to the server as HTTP/1.0, so that
 *    the server frames its answer by length or close, and if the server answers chunked
 *    anyway, drop the field, decode with fp_h1_body_decode() and delimit by closing.
 * 5. Keep the client connection when the request and the response both have FP_H1_F_KEEP_ALIVE,
 *    and the server connection (back to the idle pool) when the response does and both bodies
 *    ended with FP_H1_DONE.
 */

#endif /* FP_PROXY_H1_H */
