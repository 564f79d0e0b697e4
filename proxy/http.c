/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mode: http. One session per client connection, serving its requests one at a time: the
 * request head is parsed in the client buffer (proxy/h1.c, zero copy), rewritten into a small
 * head buffer (hop-by-hop fields dropped, X-Forwarded-* added), and sent to a server connection
 * taken from this worker's idle pool or opened for it; the body is then streamed through the
 * bounded client buffer, exactly as many bytes as the framing says. The response takes the
 * same path back. Pipelined requests wait in the client buffer and are served in order once
 * the current response has been sent, so responses can never be reordered.
 *
 * Every failure has one exit: an error response (if nothing of the response has been sent
 * yet) followed by a lingering close, or a reset once the client already has part of a
 * response. Each is counted by cause.
 */
#include "proxy/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "net/debug.h"
#include "proxy/backend.h"
#include "proxy/h1.h"

/* After an error response, how long the client may go on sending before we close. */
#define LINGER_MS 1000

enum hstate {
    H_WAIT_REQ = 0, /* waiting for (the rest of) a request head */
    H_QUEUED,       /* request parsed, waiting for a server slot */
    H_CONNECT,      /* request parsed, server connection being opened */
    H_XFER,         /* request and response flowing */
    H_ERROR_OUT,    /* sending an error response, then lingering */
};

struct hsess {
    struct fp_task                 task; /* first: in w->active */
    struct fp_worker              *w;
    const struct fp_frontend_conf *fe;
    struct fp_conn                *cli;
    struct fp_conn                *srv;
    struct fp_buf                  req;  /* client input: heads and request bodies */
    struct fp_buf                  rsp;  /* server input */
    struct fp_buf                  hreq; /* the rewritten request head */
    struct fp_buf                  hrsp; /* rewritten response heads, or an error page */
    struct fp_segq                 rsq;  /* response body segments (hs_rsp_zero_copy) */
    struct fp_segq                 qsq;  /* request body segments (hs_req_zero_copy) */
    struct fp_timer                timer;
    uint64_t                       last_ms;
    uint64_t                       arm_ms;  /* when timeout_ms started */
    uint64_t                       fire_ms; /* when the timer fires, 0 = not armed */
    uint32_t                       timeout_ms;
    enum hstate                    state;
    uint32_t                       be_idx;
    uint32_t                       srv_gi; /* server's index in w->idle_n */
    uint64_t                       tried; /* servers tried for this request */
    uint32_t                       hreq_sent; /* bytes of hreq already sent */
    uint32_t                       req_fwd;   /* body bytes at req's head cleared to send */
    uint32_t                       rsp_fwd;   /* body bytes at rsp's head cleared to send */
    uint64_t                       req_body_sent;
    uint32_t                       req_head_len; /* the request head as received, once parsed */
    uint64_t                       rsp_sent; /* response bytes sent to the client */
    enum fp_h1_method              method;
    uint8_t                        req_done;
    uint8_t                        rsp_head_done;
    uint8_t                        rsp_got; /* any response byte received */
    uint8_t                        rsp_done;
    uint8_t                        cli_ka;
    uint8_t                        cli_eof;
    uint8_t                        srv_reused;
    uint8_t                        srv_dirty; /* not reusable (bytes past the response...) */
    uint8_t                        dechunk;   /* chunked response, HTTP/1.0 client: decode */
    uint8_t                        has_slot;  /* counts in w->srv_active[srv_gi] */
    uint8_t                        polled;    /* hs_poll_task reads the server connection */
    uint64_t                       refused_ms; /* our last 503 on this connection, or 0 */
    struct fp_waiter               wait;      /* in w->queues[be_idx] while H_QUEUED */
    uint16_t                       status;   /* final status sent, for the log */
    const char                    *term;     /* why the request ended badly, or NULL */
    enum fp_h1_error               term_err; /* the framing error behind term, if any */
    uint64_t                       t_req_ms;  /* first byte of the request */
    uint64_t                       t_head_ms; /* request head parsed */
    uint64_t                       t_srv_ms;  /* server connection ready */
    uint64_t                       t_rsp_ms; /* response head received */
    char                           reqline[96]; /* "METHOD target", for the log */
    struct fp_h1_limits            lim;
    struct fp_h1_body              qb;
    struct fp_h1_body              sb;
    struct fp_h1_parser            qp;
    struct fp_h1_parser            sp;
    /* Header arrays come from the worker's pool only while a head is being parsed and
     * rewritten: an idle or streaming session holds none, which keeps the working set small
     * with many connections (the pool hands the same hot arrays around). */
    struct fp_h1_header *qh;
    struct fp_h1_header *sh;
};

static void hs_on_cli(struct fp_conn *c, unsigned events);
static void hs_on_srv(struct fp_conn *c, unsigned events);
static int  hs_process_req(struct hsess *s);
static int  hs_acquire_server(struct hsess *s);
static int  hs_srv_write(struct hsess *s);
static int  hs_cli_write(struct hsess *s);

size_t
fp_session_size(void)
{
    return sizeof(struct hsess) > sizeof(struct fp_session) ? sizeof(struct hsess)
                                                            : sizeof(struct fp_session);
}

/* ---- error pages ---- */

/* The body is the text and a newline: its length is sizeof(text). Built at compile time, in
 * both Connection variants, so a refusal under overload costs no formatting. */
#define ERROR_PAGE(code, text, len, conn, extra)                                            \
    "HTTP/1.1 " #code " " text "\r\nContent-Type: text/plain\r\nContent-Length: " #len        \
    "\r\nConnection: " conn "\r\n" extra "\r\n" text "\n"

struct error_page {
    int         status;
    const char *keep; /* Connection: keep-alive */
    const char *close;
    size_t      keep_len;
    size_t      close_len;
    size_t      stat; /* offset of its counter in struct fp_worker_stats */
};

/* len must be sizeof(text) (the array size is negative otherwise: a compile error). */
#define PAGE(code, text, len, extra)                                                        \
    {code,                                                                                  \
     ERROR_PAGE(code, text, len, "keep-alive", extra),                                      \
     ERROR_PAGE(code, text, len, "close", extra),                                           \
     sizeof(ERROR_PAGE(code, text, len, "keep-alive", extra)) - 1 +                         \
         0 * sizeof(char[sizeof(text) == (len) ? 1 : -1]),                                  \
     sizeof(ERROR_PAGE(code, text, len, "close", extra)) - 1,                               \
     offsetof(struct fp_worker_stats, http_##code)}

/* The first entry is the fallback for a status without a page of its own. */
static const struct error_page error_pages[] = {
    PAGE(400, "Bad Request", 12, ""),
    PAGE(408, "Request Timeout", 16, ""),
    PAGE(413, "Content Too Large", 18, ""),
    PAGE(414, "URI Too Long", 13, ""),
    PAGE(417, "Expectation Failed", 19, ""),
    PAGE(431, "Request Header Fields Too Large", 32, ""),
    PAGE(501, "Not Implemented", 16, ""),
    PAGE(502, "Bad Gateway", 12, ""),
    PAGE(503, "Service Unavailable", 20, "Retry-After: 1\r\n"),
    PAGE(504, "Gateway Timeout", 16, ""),
    PAGE(505, "HTTP Version Not Supported", 27, ""),
};

static const struct error_page *
error_page_for(int status)
{
    size_t i;

    for (i = 0; i < sizeof(error_pages) / sizeof(error_pages[0]); i++) {
        if (error_pages[i].status == status) {
            return &error_pages[i];
        }
    }
    return &error_pages[0];
}

/* ---- buffers and timers ---- */

/* Appends len bytes to b. Returns 0 or -ENOSPC. */
static int
buf_put(struct fp_buf *b, const void *data, size_t len)
{
    if (len > fp_buf_room(b)) {
        return -ENOSPC;
    }
    memcpy(b->data + b->tail, data, len);
    b->tail += (uint32_t)len;
    return 0;
}

static int
buf_put_span(struct fp_buf *b, const uint8_t *msg, struct fp_h1_span sp)
{
    return buf_put(b, msg + sp.off, sp.len);
}

static int
buf_put_str(struct fp_buf *b, const char *s)
{
    return buf_put(b, s, strlen(s));
}

/*
 * Copies the fields of m (at msg) that are not marked FP_H1_HDR_DROP, and the one
 * Content-Length that replaces a list or repeated fields (FP_H1_F_CL_REWRITE). skip_te leaves
 * out Transfer-Encoding as well (toward an HTTP/1.0 client). skip_idx: a field index to leave
 * out, or -1. Returns 0 or -ENOSPC.
 */
static int
buf_put_fields(struct fp_buf *b, const uint8_t *msg, const struct fp_h1_msg *m, int skip_te,
               int32_t skip_idx)
{
    const struct fp_h1_header *h;
    char                       cl[40];
    uint32_t                   i;
    int                        rc = 0;

    for (i = 0; i < m->nb_headers; i++) {
        h = &m->hdrs[i];
        if ((h->flags & FP_H1_HDR_DROP) || (int32_t)i == skip_idx ||
            (skip_te && fp_h1_name_eq((const char *)msg + h->name.off, h->name.len,
                                      "transfer-encoding", 17))) {
            continue;
        }
        rc |= buf_put_span(b, msg, h->name);
        rc |= buf_put(b, ": ", 2);
        rc |= buf_put_span(b, msg, h->value);
        rc |= buf_put(b, "\r\n", 2);
    }
    if (m->flags & FP_H1_F_CL_REWRITE) {
        snprintf(cl, sizeof(cl), "Content-Length: %llu\r\n", (unsigned long long)m->content_length);
        rc |= buf_put_str(b, cl);
    }
    return rc != 0 ? -ENOSPC : 0;
}

/*
 * Sends blen bytes of b's stored data after the first hlen bytes of h's, starting at offset
 * hoff of h, in one gathered send with flags FP_SEND_*. Returns what sendv returned.
 */
static ssize_t
send_two(struct fp_io *io, struct fp_conn *c, const struct fp_buf *h, uint32_t hoff,
         uint32_t hlen, const struct fp_buf *b, uint32_t blen, unsigned flags)
{
    struct fp_slice sl[2];
    unsigned        n = 0;

    if (hlen > 0) {
        sl[n].data = h->data + h->head + hoff;
        sl[n++].len = hlen;
    }
    if (blen > 0) {
        sl[n].data = b->data + b->head;
        sl[n++].len = blen;
    }
    return io->ops->sendv(c, sl, n, flags);
}

/*
 * FP_SEND_MORE when a send of body_len body bytes leaves a body delimited by its length
 * unfinished: the peer has committed to sending the rest, so a next send surely follows and a
 * partial segment may wait for it. A head sent without body bytes always leaves at once (a
 * client that sent Expect: 100-continue waits for the server's answer to the head alone), and
 * a chunked or close-delimited body may be a stream of small messages (server-sent events)
 * that must not wait for the next one.
 */
static unsigned
body_send_flags(const struct fp_h1_body *b, uint32_t body_len, uint8_t done)
{
    return body_len > 0 && !done && b->kind == FP_H1_BODY_LENGTH ? FP_SEND_MORE : 0;
}

/*
 * Hands the body segments q holds to c (which takes those it sends whole) and forgets what was
 * taken; FP_SEND_MORE as body_send_flags() says for body b. Returns what fp_io_send_segs
 * returned.
 */
static ssize_t
send_segq(struct fp_conn *c, struct fp_segq *q, const struct fp_h1_body *b, uint8_t done)
{
    ssize_t n = fp_io_send_segs(c, q->seg, q->nb, body_send_flags(b, q->bytes, done));

    if (n > 0) {
        fp_segq_consume(q, (uint32_t)n);
    }
    return n;
}

/* Gives *hdrs an array from the worker's pool. Returns 0 or -ENOBUFS (counted). */
static int
hdrs_get(struct fp_worker *w, struct fp_h1_header **hdrs)
{
    if (*hdrs == NULL) {
        *hdrs = fp_pool_get(&w->hdrs);
        if (*hdrs == NULL) {
            FP_STAT_INC(w, hdrs_pool_empty);
            return -ENOBUFS;
        }
    }
    return 0;
}

static void
hdrs_put(struct fp_worker *w, struct fp_h1_header **hdrs)
{
    if (*hdrs != NULL) {
        fp_pool_put(&w->hdrs, *hdrs);
        *hdrs = NULL;
    }
}

/* Arms the timer to fire in ms (at least 1) and remembers when. */
static void
hs_timer_set(struct hsess *s, uint64_t now, uint64_t ms)
{
    struct fp_io *io = s->w->io;

    s->fire_ms = now + ms;
    io->ops->timer_arm(io, &s->timer, (uint32_t)ms);
}

/*
 * Starts a timeout of timeout_ms from now. The timer moves only when this deadline is earlier
 * than the one it is armed for; otherwise it fires early and hs_on_timer() arms it again for
 * what is left. A keep-alive request so costs no timer operation in the steady state (it
 * used to re-arm three times per request: head, server, keep-alive).
 */
static void
hs_arm(struct hsess *s, uint32_t timeout_ms)
{
    uint64_t now = s->w->io->ops->now_ms(s->w->io);

    s->timeout_ms = timeout_ms;
    s->last_ms = now;
    s->arm_ms = now;
    if (s->fire_ms == 0 || now + timeout_ms < s->fire_ms) {
        hs_timer_set(s, now, timeout_ms);
    }
}

/*
 * Whom a session in H_XFER waits for: the client when it does not take what we hold for it,
 * or when its request body is incomplete and all it sent has gone on to the server (which may
 * rightly wait for the rest); the server otherwise. The side waited for is the one whose
 * timeout applies and who is blamed when it expires.
 */
static bool
hs_waits_for_client(const struct hsess *s)
{
    if (!fp_buf_empty(&s->hrsp) || s->rsp_fwd > 0 || s->rsq.nb > 0) {
        return true;
    }
    /* A client that sent Expect: 100-continue may wait for the server's answer before it
     * sends the body (RFC 9110 §10.1.1). */
    if ((s->qp.msg.flags & FP_H1_F_EXPECT_CONTINUE) && !s->rsp_got) {
        return false;
    }
    return !s->req_done && s->req_fwd == 0 && s->qsq.nb == 0 &&
           s->hreq_sent == fp_buf_len(&s->hreq);
}

/* The inactivity timeout that applies in H_XFER now. */
static uint32_t
hs_xfer_timeout(const struct hsess *s)
{
    const struct fp_timeouts_conf *t = &s->w->conf->timeouts;

    return hs_waits_for_client(s) ? t->client_ms : t->server_ms;
}

/* Arms the timer for H_XFER. Who is waited for changes without a timer event, so the timer
 * runs at the shorter of the two timeouts and hs_on_timer() checks the one that applies. */
static void
hs_arm_xfer(struct hsess *s)
{
    const struct fp_timeouts_conf *t = &s->w->conf->timeouts;

    hs_arm(s, t->client_ms < t->server_ms ? t->client_ms : t->server_ms);
}

static void
hs_touch(struct hsess *s)
{
    s->last_ms = s->w->io->ops->now_ms(s->w->io);
}

/* ---- access log ---- */

static int
ms_since(uint64_t later, uint64_t t)
{
    return t == 0 || later == 0 ? -1 : (int)(later - t);
}

/*
 * One line per request, HAProxy-like: client, frontend, backend/server, status, bytes from
 * the client and to it, then Tq (head), Tc (server connection; 0 when reused), Tr (server
 * response head), Tt (total) in ms, the request line, and how the request ended: "-", or the
 * side to blame and why (client-timeout, server-timeout, server-bad-head, server-bad-body,
 * server-truncated), followed by the framing error in quotes. Formatted straight into the ring
 * slot and handed to the main thread, which writes it: the worker never blocks on the log. A
 * full ring drops the line and counts it.
 *
 * Bytes are counted as the bytes_in and bytes_out counters count them (docs/configuration.md):
 * from the client, the request head as received (once parsed) and the body bytes sent on to
 * the server; to the client, every byte the client connection took for this request: heads,
 * body and the proxy's own responses. The status is -1 when nothing was answered.
 */
static void
hs_log(struct hsess *s)
{
    struct fp_worker             *w = s->w;
    const struct fp_backend_conf *be = &w->conf->backends[s->be_idx];
    uint64_t                      now = w->io->ops->now_ms(w->io);
    char                          peer[FP_ADDR_STRLEN];
    char                          date[32];
    struct timespec               ts;
    struct tm                     tm;
    char                         *line;
    const char                   *srv = "-";

    if (!s->fe->access_log) {
        return;
    }
    line = fp_ring_sp_reserve(&w->alog);
    if (line == NULL) {
        FP_STAT_INC(w, alog_dropped);
        return;
    }
    if (s->t_srv_ms != 0) {
        srv = be->servers[s->srv_gi - w->srv_base[s->be_idx]].name;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(date, sizeof(date), "%d/%b/%Y:%H:%M:%S", &tm);
    snprintf(line, FP_ALOG_LINE,
             "%s [%s.%03ld] %s %s/%s %d %llu %llu %d/%d/%d/%d \"%s\" %s%s%s%s",
             fp_addr_format(&s->cli->peer, peer, sizeof(peer)), date, ts.tv_nsec / 1000000,
             s->fe->name, be->name, srv, s->status != 0 ? (int)s->status : -1,
             (unsigned long long)(s->req_head_len + s->req_body_sent),
             (unsigned long long)s->rsp_sent, ms_since(s->t_head_ms, s->t_req_ms),
             s->t_srv_ms ? ms_since(s->t_srv_ms, s->t_head_ms) : -1,
             s->t_rsp_ms ? ms_since(s->t_rsp_ms, s->t_srv_ms) : -1, ms_since(now, s->t_req_ms),
             s->reqline[0] != '\0' ? s->reqline : "-", s->term != NULL ? s->term : "-",
             s->term_err != FP_H1_E_NONE ? " \"" : "",
             s->term_err != FP_H1_E_NONE ? fp_h1_error_reason(s->term_err) : "",
             s->term_err != FP_H1_E_NONE ? "\"" : "");
    fp_ring_sp_commit(&w->alog);
}

/*
 * The request under way ends, however it ends (answered, refused, cut by either side, by a
 * timeout or by the end of the stop's grace period): its one log line. t_req_ms marks a
 * request under way; it is cleared here so that no path logs a request twice.
 */
static void
hs_log_end(struct hsess *s)
{
    if (s->t_req_ms != 0) {
        hs_log(s);
        s->t_req_ms = 0;
    }
}

/* ---- server slots and the queue ---- */

static void hs_slot_release(struct hsess *s);

/* Takes s out of its backend's queue (it timed out, its client left, or it ends). */
static void
hs_unqueue(struct hsess *s)
{
    fp_worker_unqueue(s->w, &s->wait);
}

/* ---- ending ---- */

static void
hs_close_srv(struct hsess *s, int abort_conn)
{
    if (s->srv != NULL) {
        s->w->io->ops->close(s->srv, abort_conn);
        s->srv = NULL;
    }
}

static void
hs_end(struct hsess *s, int abort_conn)
{
    struct fp_worker *w = s->w;
    struct fp_io     *io = w->io;

    hs_log_end(s);
    io->ops->timer_stop(io, &s->timer);
    hs_unqueue(s);
    hs_close_srv(s, abort_conn);
    hs_slot_release(s);
    if (s->cli != NULL) {
        io->ops->close(s->cli, abort_conn);
        s->cli = NULL;
    }
    fp_worker_buf_release(w, &s->req);
    fp_worker_buf_release(w, &s->rsp);
    fp_worker_buf_release(w, &s->hreq);
    fp_worker_buf_release(w, &s->hrsp);
    fp_io_segq_release(io, &s->rsq);
    fp_io_segq_release(io, &s->qsq);
    hdrs_put(w, &s->qh);
    hdrs_put(w, &s->sh);
    fp_worker_task_del(w, &s->task);
    fp_pool_put(&w->sessions, s);
}

static void
hs_abort_task(struct fp_task *t)
{
    struct hsess *s = (struct hsess *)t;

    if (s->term == NULL) {
        s->term = "proxy-stop"; /* the stop's grace period ended (or a second signal) */
    }
    hs_end(s, 1);
}

/* An idle keep-alive connection gives its session to a new one (fp_worker_idle_add). */
static void
hs_yield_task(struct fp_task *t)
{
    hs_end((struct hsess *)t, 0);
}

/*
 * Answers status and closes. Once the client has part of a response, a status can no longer
 * be sent: the connection is reset so that the client sees the failure. A server's response
 * head that is still waiting unsent in hrsp is not part of what the client has: it is
 * dropped for the error page. Returns -1 when the session ended, 0 when the error page is on
 * its way.
 */
static int
hs_error(struct hsess *s, int status)
{
    struct fp_worker        *w = s->w;
    const struct error_page *e = error_page_for(status);
    int                      keep;

    fp_worker_stat_inc(w, e->stat);
    hs_unqueue(s);
    hs_close_srv(s, 1);
    hs_slot_release(s);
    /* rsp_got tells a server's head (replaceable) from an error page already queued. The log
     * keeps the status the client saw, if any: this one is never sent. */
    if (s->rsp_sent > 0 || s->cli_eof || (!fp_buf_empty(&s->hrsp) && !s->rsp_got)) {
        hs_end(s, 1);
        return -1;
    }
    s->status = (uint16_t)status;
    fp_worker_buf_release(w, &s->hrsp);
    /*
     * A request that was framed correctly and read whole leaves the connection usable: a
     * server-side failure or a refusal under overload (5xx) answers it and goes on with the
     * client's next request, so shedding does not cost the client a new connection.
     * Anything else closes (after a linger, so that the page is not lost to a reset).
     */
    keep = status >= 500 && status != 501 && status != 505 && s->req_done && s->cli_ka &&
           !s->w->draining;
    fp_worker_buf_release(w, &s->rsp);
    fp_worker_buf_release(w, &s->hreq);
    fp_io_segq_release(w->io, &s->rsq);
    s->rsp_fwd = 0;
    s->rsp_done = 0;
    fp_buf_consume(&s->req, s->req_fwd); /* the unsent body of this request, if any */
    s->req_fwd = 0;
    fp_io_segq_release(w->io, &s->qsq);
    if (fp_worker_buf_attach(w, &s->hrsp) != 0 ||
        buf_put(&s->hrsp, keep ? e->keep : e->close, keep ? e->keep_len : e->close_len) != 0) {
        hs_end(s, 1);
        return -1;
    }
    if (keep) {
        /* The next request on this connection within Retry-After is a retry. */
        s->refused_ms = status == 503 ? w->io->ops->now_ms(w->io) : 0;
        s->rsp_head_done = 1;
        s->rsp_done = 1;
        s->state = H_XFER; /* without a server: the page is the whole response */
        hs_arm_xfer(s);
        return 0;
    }
    s->state = H_ERROR_OUT;
    hs_arm(s, LINGER_MS);
    return 0;
}

/* ---- idle server connections ---- */

static void
idle_remove(struct fp_worker *w, uint32_t gi, struct fp_conn *c)
{
    struct fp_conn **stack = &w->idle[(size_t)gi * w->idle_cap];
    uint32_t         i;

    for (i = 0; i < w->idle_n[gi]; i++) {
        if (stack[i] == c) {
            stack[i] = stack[--w->idle_n[gi]];
            w->idle_total--;
            return;
        }
    }
}

/* An idle connection that becomes readable was closed by the server (or sent garbage). */
static void
idle_on_event(struct fp_conn *c, unsigned events)
{
    struct fp_idle_owner *o = c->data;
    struct fp_worker     *w = o->w;

    FP_STAT_INC(w, srv_idle_closed);
    idle_remove(w, o->gi, c);
    w->io->ops->close(c, 0);
}

static void
idle_park(struct hsess *s)
{
    struct fp_worker *w = s->w;
    struct fp_conn   *c = s->srv;
    uint32_t          gi = s->srv_gi;

    s->srv = NULL;
    if (w->draining || w->idle_total == w->idle_cap) {
        w->io->ops->close(c, 0);
        return;
    }
    w->idle[(size_t)gi * w->idle_cap + w->idle_n[gi]++] = c;
    w->idle_total++;
    c->handler = idle_on_event;
    c->data = &w->idle_owner[gi];
    w->io->ops->want(c, FP_EV_READ);
}

/* Most recently parked first: the likeliest to be still open and cache-warm. */
static struct fp_conn *
idle_take(struct fp_worker *w, uint32_t gi)
{
    if (w->idle_n[gi] == 0) {
        return NULL;
    }
    w->idle_total--;
    return w->idle[(size_t)gi * w->idle_cap + --w->idle_n[gi]];
}

/*
 * Whether the response body goes through lent segments (net/io.h, fp_io_recv_segs): once its
 * head is parsed and rsp holds nothing of it, a body framed by its length or by the close
 * needs no look at its bytes beyond counting them, so the server connection's segments are
 * handed to the client's as they are (no copy into rsp; none at all on the user-space stack).
 * A chunked body stays on rsp, where its framing is parsed (and decoded for HTTP/1.0).
 */
static bool
hs_rsp_zero_copy(const struct hsess *s)
{
    return s->rsp_head_done && !s->rsp_done && !s->dechunk &&
           (s->sb.kind == FP_H1_BODY_LENGTH || s->sb.kind == FP_H1_BODY_CLOSE) &&
           fp_buf_empty(&s->rsp);
}

/* Whether response bytes wait to be sent to the client (a head, body bytes, segments). */
static bool
hs_rsp_pending(const struct hsess *s)
{
    return !fp_buf_empty(&s->hrsp) || s->rsp_fwd > 0 || s->rsq.nb > 0;
}

/* Whether request body bytes wait to be sent to the server (in req, or segments). */
static bool
hs_req_pending(const struct hsess *s)
{
    return s->req_fwd > 0 || s->qsq.nb > 0;
}

/*
 * The request body's counterpart of hs_rsp_zero_copy(): once the server connection is up and
 * req holds nothing (no body bytes, no pipelined request), a body framed by its length is read
 * as segments into qsq and handed to the server connection. A chunked body stays on req.
 */
static bool
hs_req_zero_copy(const struct hsess *s)
{
    return s->state == H_XFER && s->srv != NULL && !s->req_done &&
           s->qb.kind == FP_H1_BODY_LENGTH && fp_buf_empty(&s->req);
}

/*
 * Whether the client may be read in H_CONNECT or H_XFER: into qsq on the segment path, into req
 * otherwise, but never while body segments wait for a server again (a retry): nothing may pass
 * them.
 */
static bool
hs_cli_room(const struct hsess *s)
{
    if (s->cli_eof) {
        return false;
    }
    if (hs_req_zero_copy(s)) {
        return !fp_segq_full(&s->qsq);
    }
    return s->qsq.nb == 0 && (s->req.data == NULL || fp_buf_len(&s->req) < s->req.size);
}

/* ---- interest ---- */

static void
hs_update(struct hsess *s)
{
    struct fp_io *io = s->w->io;
    unsigned      cw = 0;
    unsigned      sw = 0;
    int           rsp_pending = hs_rsp_pending(s);

    switch (s->state) {
    case H_WAIT_REQ:
        if (!s->cli_eof) {
            cw = FP_EV_READ;
        }
        break;
    case H_QUEUED:
        /* Keep reading (into the bounded buffer) only to notice a client that leaves. */
        if (!s->cli_eof && (s->req.data == NULL || fp_buf_len(&s->req) < s->req.size)) {
            cw = FP_EV_READ;
        }
        break;
    case H_CONNECT:
    case H_XFER:
        /*
         * Read interest stays on whenever there is room, even with nothing expected (a
         * pipelined request waits in the buffer, an early close is noticed): toggling it per
         * request would cost an epoll_ctl() each way. Write interest is only asked for after
         * a send would have blocked.
         */
        if (hs_cli_room(s)) {
            cw |= FP_EV_READ;
        }
        if (rsp_pending) {
            cw |= FP_EV_WRITE;
        }
        if (s->state == H_XFER) {
            if (s->hreq_sent < fp_buf_len(&s->hreq) || hs_req_pending(s)) {
                sw |= FP_EV_WRITE;
            }
            if (hs_rsp_zero_copy(s) ? !fp_segq_full(&s->rsq)
                                    : s->rsp.data == NULL || fp_buf_len(&s->rsp) < s->rsp.size) {
                sw |= FP_EV_READ;
            }
            if (s->srv != NULL) {
                io->ops->want(s->srv, sw);
            }
        }
        break;
    case H_ERROR_OUT:
        cw = fp_buf_empty(&s->hrsp) ? FP_EV_READ : FP_EV_WRITE;
        break;
    }
    io->ops->want(s->cli, cw);
}

/* ---- request ---- */

static uint32_t
hs_route(const struct hsess *s, const uint8_t *msg)
{
    const struct fp_h1_msg *m = &s->qp.msg;
    const char             *host = (const char *)msg + m->host.off;
    const char             *path = (const char *)msg + m->path.off;
    size_t                  hlen = m->host.len;
    size_t                  plen = m->path.len;
    const char             *colon;
    uint32_t                i;

    colon = hlen > 0 ? memchr(host, ':', hlen) : NULL;
    if (colon != NULL && host[0] != '[') {
        hlen = (size_t)(colon - host);
    }
    if (plen == 0) {
        path = "/";
        plen = 1;
    }
    for (i = 0; i < s->fe->nb_routes; i++) {
        const struct fp_route_conf *r = &s->fe->routes[i];

        if (r->host != NULL) {
            size_t rl = r->host_len;

            if (r->host[0] == '*' && r->host[1] == '.') {
                /* "*.example.com" matches "a.example.com", not "example.com" (nginx). */
                if (hlen < rl || !fp_h1_name_eq(host + hlen - (rl - 1), rl - 1, r->host + 1,
                                                rl - 1)) {
                    continue;
                }
            } else if (!fp_h1_name_eq(host, hlen, r->host, rl)) {
                continue;
            }
        }
        if (r->path_prefix != NULL) {
            size_t pl = r->path_prefix_len;

            if (plen < pl || memcmp(path, r->path_prefix, pl) != 0) {
                continue;
            }
        }
        return r->backend;
    }
    return s->fe->default_backend;
}

/* Writes the head sent to the server into hreq. Returns 0 or -ENOSPC / -ENOBUFS. */
static int
hs_build_req_head(struct hsess *s, const uint8_t *msg)
{
    const struct fp_h1_msg *m = &s->qp.msg;
    struct fp_buf          *b = &s->hreq;
    char                    ip[INET6_ADDRSTRLEN];
    const struct fp_addr   *peer = &s->cli->peer;
    int                     rc = 0;

    rc = fp_worker_buf_attach(s->w, b);
    if (rc != 0) {
        return rc;
    }
    rc |= buf_put_span(b, msg, m->method_span);
    rc |= buf_put(b, " ", 1);
    if (m->target_form == FP_H1_TARGET_ABSOLUTE) {
        /* RFC 9112 §3.2.2: a server must accept absolute-form, but origin-form is what every
         * origin expects from a gateway; the authority moves to Host. */
        if (m->path.len == 0 || msg[m->path.off] == '?') {
            rc |= buf_put(b, "/", 1);
        }
        rc |= buf_put_span(b, msg, m->path);
    } else {
        rc |= buf_put_span(b, msg, m->target);
    }
    /* An HTTP/1.0 client cannot read chunked responses (RFC 9112 §6.1): its requests go
     * upstream as 1.0, asking to keep the server connection all the same. */
    rc |= buf_put_str(b, m->version_minor == 0 ? " HTTP/1.0\r\nConnection: keep-alive\r\n"
                                               : " HTTP/1.1\r\n");
    rc |= buf_put_fields(b, msg, m, 0, m->target_form == FP_H1_TARGET_ABSOLUTE ? m->host_hdr : -1);
    if (m->target_form == FP_H1_TARGET_ABSOLUTE) {
        rc |= buf_put_str(b, "Host: ");
        rc |= buf_put_span(b, msg, m->authority);
        rc |= buf_put(b, "\r\n", 2);
    }
    if (s->fe->forwarded_for) {
        if (peer->u.sa.sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &peer->u.sin6.sin6_addr, ip, sizeof(ip));
        } else {
            inet_ntop(AF_INET, &peer->u.sin.sin_addr, ip, sizeof(ip));
        }
        rc |= buf_put_str(b, "X-Forwarded-For: ");
        rc |= buf_put_str(b, ip);
        rc |= buf_put_str(b, "\r\nX-Forwarded-Proto: http\r\n");
    }
    rc |= buf_put(b, "\r\n", 2);
    return rc != 0 ? -ENOSPC : 0;
}

/* Feeds the body bytes not yet examined to the request framing tracker. */
static int
hs_feed_req_body(struct hsess *s)
{
    const char       *data;
    size_t            len;
    size_t            used = 0;
    enum fp_h1_status st;

    if (s->req_done) {
        return 0;
    }
    data = (const char *)s->req.data + s->req.head + s->req_fwd;
    len = fp_buf_len(&s->req) - s->req_fwd;
    st = fp_h1_body_feed(&s->qb, data, len, &used);
    s->req_fwd += (uint32_t)used;
    if (st == FP_H1_DONE) {
        s->req_done = 1;
    } else if (st == FP_H1_ERROR) {
        return hs_error(s, fp_h1_error_status(s->qb.err, FP_H1_REQUEST)) == 0 ? 1 : -1;
    }
    return 0;
}

static int
hs_on_req_head(struct hsess *s)
{
    struct fp_worker *w = s->w;
    const uint8_t    *msg = s->req.data + s->req.head;
    int               rc;

    FP_STAT_INC(w, http_requests);
    fp_worker_head_read(w);
    s->req_head_len = s->qp.msg.head_len;
    FP_STAT_ADD(w, bytes_in, s->req_head_len);
    s->t_head_ms = w->io->ops->now_ms(w->io);
    if (s->fe->access_log) {
        const struct fp_h1_msg *m = &s->qp.msg;

        snprintf(s->reqline, sizeof(s->reqline), "%.*s %.*s", (int)m->method_span.len,
                 (const char *)msg + m->method_span.off, (int)m->target.len,
                 (const char *)msg + m->target.off);
    }
    s->method = s->qp.msg.method;
    s->cli_ka = (s->qp.msg.flags & FP_H1_F_KEEP_ALIVE) != 0;
    s->be_idx = hs_route(s, msg);
    if (hs_build_req_head(s, msg) != 0) {
        return hs_error(s, 431);
    }
    fp_buf_consume(&s->req, s->qp.msg.head_len);
    fp_h1_body_init(&s->qb, &s->qp.msg, &s->lim);
    s->qp.msg.hdrs = NULL; /* the head is rewritten: its fields are not looked at again */
    hdrs_put(w, &s->qh);
    if (hdrs_get(w, &s->sh) != 0) {
        return hs_error(s, 503);
    }
    fp_h1_parser_init(&s->sp, FP_H1_RESPONSE, s->method, &s->lim, s->sh, FP_HTTP_MAX_HEADERS);
    s->req_fwd = 0;
    s->hreq_sent = 0;
    s->req_body_sent = 0;
    rc = hs_feed_req_body(s);
    if (rc != 0) {
        return rc;
    }
    s->tried = 0;
    /* Most likely a client's retry, but a client's pool may as well reuse the connection for
     * a new request: counted, and weighed as demand all the same (docs/overload.md). */
    if (s->refused_ms != 0 && s->t_head_ms - s->refused_ms < FP_RETRY_AFTER_S * 1000) {
        FP_STAT_INC(w, http_retries);
    }
    s->refused_ms = 0;
    fp_worker_demand(w, s->be_idx);
    rc = hs_acquire_server(s);
    if (rc == 0 && s->state == H_XFER && s->srv != NULL) {
        if (s->has_slot && w->srv_limit[s->srv_gi] != 0 && fp_worker_iter_long(w)) {
            /* A slot of a limited server, taken in a long loop iteration: the request goes
             * now, or the slot would idle through the rest of the iteration (issue 15). */
            FP_STAT_INC(w, srv_send_early);
            return hs_srv_write(s) < 0 ? -1 : 0;
        }
        /* A reused connection is writable: send at the end of this loop iteration, with the
         * other requests it read, rather than after a poll: the server gets them as one
         * burst. */
        fp_worker_defer(w, &s->task);
    }
    return rc;
}

/* Parses what the client buffer holds. Returns 0, or -1 if the session ended. */
static int
hs_process_req(struct hsess *s)
{
    enum fp_h1_status st;

    if (s->state != H_WAIT_REQ) {
        return hs_feed_req_body(s) < 0 ? -1 : 0;
    }
    if (s->req.data == NULL || fp_buf_empty(&s->req)) {
        return 0;
    }
    if (s->t_req_ms == 0) {
        s->t_req_ms = s->w->io->ops->now_ms(s->w->io);
    }
    if (s->qh == NULL) {
        /* The first byte of a request: its parser starts now, with an array of the pool. */
        if (hdrs_get(s->w, &s->qh) != 0) {
            return hs_error(s, 503) == 0 ? 0 : -1;
        }
        fp_h1_parser_init(&s->qp, FP_H1_REQUEST, FP_H1_METH_OTHER, &s->lim, s->qh,
                          FP_HTTP_MAX_HEADERS);
    }
    if (s->qp.msg.head_len == 0 && s->timeout_ms != s->w->conf->timeouts.http_request_ms) {
        /* The first byte of a request starts its head timer; activity does not extend it. */
        hs_arm(s, s->w->conf->timeouts.http_request_ms);
    }
    st = fp_h1_parse(&s->qp, (const char *)s->req.data + s->req.head, fp_buf_len(&s->req));
    if (st == FP_H1_NEED_MORE) {
        if (fp_buf_len(&s->req) == s->req.size) {
            return hs_error(s, 431) == 0 ? 0 : -1;
        }
        if (s->req.head > 0 && fp_buf_room(&s->req) == 0) {
            fp_buf_compact(&s->req);
        }
        return 0;
    }
    if (st == FP_H1_ERROR) {
        return hs_error(s, fp_h1_error_status(s->qp.err, FP_H1_REQUEST)) == 0 ? 0 : -1;
    }
    return hs_on_req_head(s) < 0 ? -1 : 0;
}

/* ---- server connection ---- */

static void hs_flush(struct fp_task *t);

static struct hsess *
waiter_sess(struct fp_waiter *wt)
{
    return (struct hsess *)(void *)((char *)wt - offsetof(struct hsess, wait));
}

/* The queue dropped this request (old work first): 503 at once. */
static void
hs_on_queue_refuse(struct fp_waiter *wt)
{
    struct hsess *s = waiter_sess(wt);

    if (hs_error(s, 503) != 0) {
        return;
    }
    /* Sent at the end of this loop iteration rather than after a poll for writability: under
     * overload refusals are most of the work, and this saves two epoll_ctl() and a loop
     * iteration each (and the queue operation that refused it is over by then). */
    if (s->state == H_XFER) {
        fp_worker_defer(s->w, &s->task);
        return;
    }
    hs_update(s);
}

/* A slot of the backend freed for this queued request: on to a server. */
static void
hs_on_queue_grant(struct fp_waiter *wt)
{
    struct hsess *s = waiter_sess(wt);

    s->state = H_CONNECT;
    if (hs_acquire_server(s) != 0) {
        return;
    }
    /* A reused connection is writable: send now, neither after a poll nor at the end of the
     * loop iteration (under load an iteration is long, and the slot would idle through it). */
    if (s->state == H_XFER && s->srv != NULL) {
        hs_flush(&s->task);
        return;
    }
    hs_update(s);
}

/* Waits for a server slot. Returns 0, or -1 if s ended. */
static int
hs_enqueue(struct hsess *s)
{
    struct fp_worker *w = s->w;

    s->wait.be_idx = s->be_idx;
    s->wait.grant = hs_on_queue_grant;
    s->wait.refuse = hs_on_queue_refuse;
    if (fp_worker_enqueue(w, &s->wait) != 0) {
        return hs_error(s, 503) == 0 ? 0 : -1;
    }
    s->state = H_QUEUED;
    hs_arm(s, w->conf->timeouts.queue_ms);
    return 0;
}

static void
hs_slot_release(struct hsess *s)
{
    if (!s->has_slot) {
        return;
    }
    s->has_slot = 0;
    fp_worker_slot_unwatch(s->w, &s->task);
    fp_worker_slot_release(s->w, s->be_idx, s->srv_gi, true);
}

/*
 * Finds s a server with a free slot, in round-robin order, each server at most once per
 * request, and takes an idle connection to it or opens one. All servers at their maxconn:
 * the request waits in the queue. Returns 0, or -1 if s ended.
 */
static int
hs_acquire_server(struct hsess *s)
{
    struct fp_worker             *w = s->w;
    struct fp_io                 *io = w->io;
    const struct fp_backend_conf *be = &w->conf->backends[s->be_idx];
    uint64_t                      full = 0;
    uint32_t                      idx;
    uint32_t                      gi;
    int                           rc;
    int                           pool_empty = 0;

    for (;;) {
        idx = fp_worker_pick_slot(w, s->be_idx, s->tried, &full);
        if (idx == UINT32_MAX) {
            break;
        }
        gi = w->srv_base[s->be_idx] + idx;
        if (s->tried != 0) {
            FP_STAT_INC(w, retries);
        }
        s->tried |= 1ULL << idx;
        s->srv_gi = gi;
        s->has_slot = 1;
        fp_worker_slot_take(w, s->be_idx, gi);
        fp_worker_slot_watch(w, &s->task, gi);
        s->srv = idle_take(w, gi);
        if (s->srv != NULL) {
            FP_STAT_INC(w, srv_conn_reused);
            s->srv_reused = 1;
            s->t_srv_ms = s->t_head_ms;
            s->srv->handler = hs_on_srv;
            s->srv->data = s;
            s->state = H_XFER;
            hs_arm_xfer(s);
            return 0;
        }
        rc = io->ops->connect(io, &be->servers[idx].addr, &s->srv);
        if (rc == 0) {
            FP_STAT_INC(w, srv_conn_new);
            s->srv_reused = 0;
            s->srv->handler = hs_on_srv;
            s->srv->data = s;
            s->state = H_CONNECT;
            hs_arm(s, w->conf->timeouts.connect_ms);
            return 0;
        }
        s->srv = NULL;
        s->has_slot = 0;
        fp_worker_slot_unwatch(w, &s->task);
        fp_worker_slot_release(w, s->be_idx, gi, false);
        if (rc == -ENOBUFS) {
            FP_STAT_INC(w, conn_pool_empty);
            pool_empty = 1;
            break;
        }
        FP_STAT_INC(w, connect_errors);
    }
    if (full != 0 && !pool_empty) {
        return hs_enqueue(s);
    }
    FP_STAT_INC(w, no_server);
    /* A slot this request gave back (a failed retry) is not lost for those waiting. */
    fp_worker_dispatch(w, s->be_idx);
    /* 502 when servers were tried and failed; 503 when none could even be tried. */
    return hs_error(s, s->tried != 0 && !pool_empty ? 502 : 503) == 0 ? 0 : -1;
}

/*
 * The server connection failed. A connect that failed never carried the request, so the next
 * server is tried. A reused idle connection that fails before any response byte, with none of
 * the body sent, was most likely closed by the server while it sat idle (the race every
 * keep-alive client must handle, RFC 9112 §9.3.1): the request goes to a new connection.
 * Anything else may have reached the server, and is not replayed: 502.
 */
static int
hs_server_failed(struct hsess *s, int connect_failed)
{
    int retry = connect_failed || (s->srv_reused && !s->rsp_got && s->req_body_sent == 0);

    hs_close_srv(s, 1);
    if (retry) {
        /* The slot goes back first: the retry may pick another server, or wait in turn. */
        s->has_slot = 0;
        fp_worker_slot_unwatch(s->w, &s->task);
        fp_worker_slot_release(s->w, s->be_idx, s->srv_gi, false);
        if (s->srv_reused) {
            /* A dead idle connection is not the server's refusal: it may be tried again. */
            s->tried &= ~(1ULL << (s->srv_gi - s->w->srv_base[s->be_idx]));
        }
        s->hreq_sent = 0;
        s->srv_reused = 0;
        return hs_acquire_server(s);
    }
    return hs_error(s, 502) == 0 ? 0 : -1;
}

/* A send to the server failed: retry elsewhere or answer 502 (hs_server_failed). */
static int
hs_srv_send_failed(struct hsess *s)
{
    FP_STAT_INC(s->w, server_aborts);
    return hs_server_failed(s, 0);
}

static void
hs_srv_sent_body(struct hsess *s, uint32_t n)
{
    s->req_body_sent += n;
    FP_STAT_ADD(s->w, bytes_in, n);
}

/* Hands the body segments in qsq to the server once the head and the body bytes of req have
 * gone. Returns 0, or what hs_server_failed() returned. */
static int
hs_srv_write_segs(struct hsess *s)
{
    ssize_t n;

    if (s->qsq.nb == 0 || s->hreq_sent < fp_buf_len(&s->hreq) || s->req_fwd > 0) {
        return 0;
    }
    n = send_segq(s->srv, &s->qsq, &s->qb, s->req_done);
    if (n == -EAGAIN) {
        return 0;
    }
    if (n < 0) {
        return hs_srv_send_failed(s);
    }
    hs_srv_sent_body(s, (uint32_t)n);
    hs_touch(s);
    return 0;
}

static int
hs_srv_write(struct hsess *s)
{
    struct fp_io *io = s->w->io;
    uint32_t      hlen = fp_buf_len(&s->hreq) - s->hreq_sent;
    uint32_t      sent_head;
    uint32_t      sent_body;
    ssize_t       n;

    if (hlen + s->req_fwd == 0) {
        return hs_srv_write_segs(s);
    }
    n = send_two(io, s->srv, &s->hreq, s->hreq_sent, hlen, &s->req, s->req_fwd,
                 body_send_flags(&s->qb, s->req_fwd, s->req_done && s->qsq.nb == 0));
    if (n == -EAGAIN) {
        return 0;
    }
    if (n < 0) {
        return hs_srv_send_failed(s);
    }
    sent_head = (uint32_t)n < hlen ? (uint32_t)n : hlen;
    sent_body = (uint32_t)n - sent_head;
    s->hreq_sent += sent_head;
    if (sent_head > 0 && s->hreq_sent == fp_buf_len(&s->hreq)) {
        fp_worker_slot_sent(s->w, &s->task); /* the head is out: its answer may come */
    }
    if (sent_body > 0) {
        fp_buf_consume(&s->req, sent_body);
        s->req_fwd -= sent_body;
        hs_srv_sent_body(s, sent_body);
    }
    hs_touch(s);
    return hs_srv_write_segs(s);
}

/* ---- response ---- */

/*
 * The server broke the response's framing (RFC 9112 §6.3, §7.1): the server connection is
 * closed, never reused, and the client gets 502 if no byte of the response reached it yet,
 * a reset otherwise (hs_error()). term and err name the cause in the access log; the caller
 * counts it. Returns 1 when the session goes on (the error page), -1 when it ended.
 */
static int
hs_bad_response(struct hsess *s, const char *term, enum fp_h1_error err)
{
    s->term = term;
    s->term_err = err;
    return hs_error(s, 502) == 0 ? 1 : -1;
}

static int
hs_build_rsp_head(struct hsess *s, const uint8_t *msg, int final)
{
    const struct fp_h1_msg *m = &s->sp.msg;
    struct fp_buf          *b = &s->hrsp;
    char                    line[48];
    int                     rc = 0;

    rc = fp_worker_buf_attach(s->w, b);
    if (rc != 0) {
        return rc;
    }
    /* The parser took exactly three digits: no printf on the path of every response. */
    memcpy(line, "HTTP/1.1 000 ", 13);
    line[9] = (char)('0' + m->status / 100 % 10);
    line[10] = (char)('0' + m->status / 10 % 10);
    line[11] = (char)('0' + m->status % 10);
    rc |= buf_put(b, line, 13);
    rc |= buf_put_span(b, msg, m->reason);
    rc |= buf_put(b, "\r\n", 2);
    /* RFC 9112 §6.1: no Transfer-Encoding toward an HTTP/1.0 client (the body, if chunked,
     * is decoded: hs_feed_rsp_body()). */
    rc |= buf_put_fields(b, msg, m, s->qp.msg.version_minor == 0, -1);
    if (final && s->dechunk && s->rsp_done) {
        /* The whole chunked body came with the head: its decoded length is known. */
        snprintf(line, sizeof(line), "Content-Length: %llu\r\n",
                 (unsigned long long)s->sb.payload_bytes);
        rc |= buf_put_str(b, line);
    }
    if (final && !s->cli_ka) {
        rc |= buf_put_str(b, "Connection: close\r\n");
    } else if (final && s->qp.msg.version_minor == 0) {
        rc |= buf_put_str(b, "Connection: keep-alive\r\n");
    }
    rc |= buf_put(b, "\r\n", 2);
    return rc != 0 ? -ENOSPC : 0;
}

/*
 * Decodes the chunked body bytes at data in place (an HTTP/1.0 client, hs_http10_framing())
 * and closes the gap the framing leaves, so that the payload stays contiguous with the bytes
 * not yet examined. Returns the status; *used and *out: bytes examined, payload bytes.
 */
static enum fp_h1_status
hs_decode_rsp_body(struct hsess *s, char *data, size_t len, size_t *used, size_t *out)
{
    enum fp_h1_status st;

    st = fp_h1_body_decode(&s->sb, data, len, used, out);
    if (*out < *used) {
        memmove(data + *out, data + *used, len - *used);
        s->rsp.tail -= (uint32_t)(*used - *out);
    }
    return st;
}

static int
hs_feed_rsp_body(struct hsess *s)
{
    char             *data = (char *)s->rsp.data + s->rsp.head + s->rsp_fwd;
    size_t            len = fp_buf_len(&s->rsp) - s->rsp_fwd;
    size_t            used = 0;
    size_t            out;
    enum fp_h1_status st;

    if (s->rsp_done) {
        if (len > 0) {
            s->srv_dirty = 1; /* bytes past the response: never reuse this connection */
        }
        return 0;
    }
    if (s->dechunk) {
        st = hs_decode_rsp_body(s, data, len, &used, &out);
    } else {
        st = fp_h1_body_feed(&s->sb, data, len, &used);
        out = used;
    }
    s->rsp_fwd += (uint32_t)out;
    if (st == FP_H1_DONE) {
        s->rsp_done = 1;
        if (used < len) {
            s->srv_dirty = 1;
        }
    } else if (st == FP_H1_ERROR) {
        FP_STAT_INC(s->w, http_rsp_bad_body);
        return hs_bad_response(s, "server-bad-body", s->sb.err);
    }
    return 0;
}

/*
 * RFC 9112 §6.1: a response to an HTTP/1.0 request carries no Transfer-Encoding. The field is
 * left out of the head (hs_build_rsp_head()) and a chunked body is decoded on its way. What
 * of it came with the head (msg, still in rsp) is decoded now: if that is the whole body, its
 * length is known before the head goes out and is sent as Content-Length; otherwise the body
 * is delimited by closing the client connection. Other transfer codings cannot be removed:
 * such a response (with a body) cannot be delivered. Returns 0 (go on), or what
 * hs_bad_response() returned.
 */
static int
hs_http10_framing(struct hsess *s, const uint8_t *msg)
{
    const struct fp_h1_msg *m = &s->sp.msg;
    size_t                  len = fp_buf_len(&s->rsp) - m->head_len;
    size_t                  used;
    size_t                  out;
    enum fp_h1_status       st;

    if (m->body == FP_H1_BODY_NONE) {
        return 0;
    }
    if (m->flags & FP_H1_F_TE_OTHER) {
        FP_STAT_INC(s->w, http_rsp_bad_head);
        return hs_bad_response(s, "server-coding", FP_H1_E_TE_HTTP10);
    }
    if (m->body != FP_H1_BODY_CHUNKED) {
        return 0;
    }
    s->dechunk = 1;
    fp_h1_body_init(&s->sb, m, &s->lim);
    st = hs_decode_rsp_body(s, (char *)msg + m->head_len, len, &used, &out);
    if (st == FP_H1_ERROR) {
        FP_STAT_INC(s->w, http_rsp_bad_body);
        return hs_bad_response(s, "server-bad-body", s->sb.err);
    }
    /* The decoded bytes follow the head; hs_process_rsp() clears them to send. */
    s->rsp_fwd = (uint32_t)out;
    if (st == FP_H1_DONE) {
        s->rsp_done = 1;
    } else {
        s->cli_ka = 0;
    }
    return 0;
}

static int
hs_process_rsp(struct hsess *s)
{
    const uint8_t    *msg;
    enum fp_h1_status st;
    int               final;
    int               rc;

    while (!s->rsp_head_done) {
        msg = s->rsp.data + s->rsp.head;
        st = fp_h1_parse(&s->sp, (const char *)msg, fp_buf_len(&s->rsp));
        if (st == FP_H1_NEED_MORE) {
            if (fp_buf_len(&s->rsp) == s->rsp.size) {
                FP_STAT_INC(s->w, http_rsp_bad_head);
                return hs_bad_response(s, "server-bad-head", FP_H1_E_HEAD_TOO_LARGE);
            }
            if (fp_buf_room(&s->rsp) == 0) {
                fp_buf_compact(&s->rsp);
            }
            return 0;
        }
        if (st == FP_H1_ERROR || s->sp.msg.body == FP_H1_BODY_TUNNEL) {
            /* A tunnel (101, 2xx to CONNECT) is nothing a reverse proxy asked for. */
            FP_STAT_INC(s->w, http_rsp_bad_head);
            return hs_bad_response(s, "server-bad-head", s->sp.err);
        }
        /* RFC 9110 §15.2: interim responses are forwarded; the final one follows. */
        final = s->sp.msg.status >= 200;
        if (final) {
            s->status = s->sp.msg.status;
            s->t_rsp_ms = s->w->io->ops->now_ms(s->w->io);
            fp_worker_slot_answered(s->w, &s->task);
            /* The server closing its own connection after this response (RFC 9112 §9.6)
             * only retires that connection: the client's survives whenever the response is
             * delimited by something other than the close (§6.3). */
            s->cli_ka = s->cli_ka && s->sp.msg.body != FP_H1_BODY_CLOSE && s->req_done &&
                        !s->cli_eof && !s->w->draining;
            if (s->qp.msg.version_minor == 0) {
                rc = hs_http10_framing(s, msg);
                if (rc != 0) {
                    return rc;
                }
            }
        }
        /* RFC 9110 §15.2: a server MUST NOT send a 1xx response to an HTTP/1.0 client. */
        if (!final && s->qp.msg.version_minor == 0) {
            fp_buf_consume(&s->rsp, s->sp.msg.head_len);
            fp_h1_parser_init(&s->sp, FP_H1_RESPONSE, s->method, &s->lim, s->sh,
                              FP_HTTP_MAX_HEADERS);
            continue;
        }
        if (hs_build_rsp_head(s, msg, final) != 0) {
            return hs_error(s, 502) == 0 ? 1 : -1;
        }
        fp_buf_consume(&s->rsp, s->sp.msg.head_len);
        if (!final) {
            fp_h1_parser_init(&s->sp, FP_H1_RESPONSE, s->method, &s->lim, s->sh,
                              FP_HTTP_MAX_HEADERS);
            continue;
        }
        s->rsp_head_done = 1;
        if (!s->dechunk) {
            fp_h1_body_init(&s->sb, &s->sp.msg, &s->lim);
            s->rsp_fwd = 0;
        }
        s->sp.msg.hdrs = NULL;
        hdrs_put(s->w, &s->sh);
    }
    return hs_feed_rsp_body(s);
}

/*
 * The server closed (n == 0) or failed (n < 0): the end of a close-delimited body, or a
 * truncated response. Returns as hs_srv_read().
 */
static int
hs_srv_closed(struct hsess *s, ssize_t n)
{
    struct fp_worker *w = s->w;

    if (n < 0) {
        FP_STAT_INC(w, server_aborts);
    }
    if (!s->rsp_head_done) {
        return hs_server_failed(s, 0) < 0 ? -1 : 1;
    }
    s->srv_dirty = 1;
    if (!s->rsp_done && fp_h1_body_eof(&s->sb) == FP_H1_DONE && n == 0) {
        s->rsp_done = 1; /* close-delimited body: the close is its end */
        hs_close_srv(s, 0);
        return 0;
    }
    if (!s->rsp_done) {
        FP_STAT_INC(w, http_truncated);
        return hs_bad_response(s, "server-truncated", s->sb.err);
    }
    hs_close_srv(s, 0);
    return 0;
}

/*
 * Counts the nb segments just lent at q->seg[q->nb..] against the body's framing and keeps
 * them. Bytes past the end of a length-delimited body are not forwarded: the segment that
 * holds the end is cut there, the ones after it are given back, and the connection is never
 * reused.
 */
static void
hs_take_rsp_segs(struct hsess *s, struct fp_segq *q, uint32_t nb)
{
    struct fp_seg    *seg = &q->seg[q->nb];
    uint32_t          kept = 0;
    uint32_t          i;
    size_t            used;
    enum fp_h1_status st;

    while (kept < nb && !s->rsp_done) {
        st = fp_h1_body_feed(&s->sb, (const char *)seg[kept].data, seg[kept].len, &used);
        if (st == FP_H1_DONE) {
            s->rsp_done = 1;
            if (used < seg[kept].len) {
                s->srv_dirty = 1;
                seg[kept].len = (uint32_t)used;
            }
        }
        if (seg[kept].len == 0) {
            break;
        }
        kept++;
    }
    if (kept < nb) {
        s->srv_dirty = 1;
    }
    for (i = kept; i < nb; i++) {
        fp_io_seg_free(s->w->io, &seg[i]);
    }
    fp_segq_added(q, kept);
}

/*
 * hs_srv_read() for a body on the segment path (hs_rsp_zero_copy): reads ahead into rsq, no
 * further than a length-delimited body's end. Nothing looks at these bytes (their framing is
 * counted, not parsed), so the backend may keep them out of memory (FP_RECV_OPAQUE: a pipe,
 * global.maxpipes); reading no further than the end keeps a pipe from holding bytes that are
 * not the body's.
 */
static int
hs_srv_read_segs(struct hsess *s)
{
    struct fp_segq *q = &s->rsq;
    uint32_t        room = fp_segq_byte_room(q);
    ssize_t         n;

    if (fp_segq_full(q)) {
        return 0;
    }
    if (s->sb.kind == FP_H1_BODY_LENGTH && s->sb.b_left < room) {
        room = (uint32_t)s->sb.b_left;
    }
    n = fp_io_recv_segs(s->srv, &q->seg[q->nb], fp_segq_room(q), room,
                        (q->nb > 0 ? FP_RECV_AHEAD : 0) | FP_RECV_OPAQUE);
    if (n == -EAGAIN || n == -ENOBUFS) {
        return 0;
    }
    if (n <= 0) {
        return hs_srv_closed(s, n);
    }
    hs_take_rsp_segs(s, q, (uint32_t)n);
    s->rsp_got = 1;
    hs_touch(s);
    return 0;
}

static int
hs_srv_read(struct hsess *s)
{
    struct fp_worker *w = s->w;
    ssize_t           n;

    if (hs_rsp_zero_copy(s)) {
        return hs_srv_read_segs(s);
    }
    if (fp_worker_buf_attach(w, &s->rsp) != 0) {
        return hs_error(s, 503) == 0 ? 0 : -1;
    }
    if (fp_buf_room(&s->rsp) == 0) {
        fp_buf_compact(&s->rsp);
    }
    n = w->io->ops->recv(s->srv, &s->rsp);
    if (s->polled) {
        s->polled = 0;
        if (n > 0) {
            FP_STAT_INC(w, slot_poll_answers);
        }
    }
    if (n == -EAGAIN || n == -ENOBUFS) {
        return 0;
    }
    if (n <= 0) {
        return hs_srv_closed(s, n);
    }
    s->rsp_got = 1;
    hs_touch(s);
    return hs_process_rsp(s);
}

/* ---- transaction end ---- */

static int
hs_txn_done(struct hsess *s)
{
    struct fp_worker *w = s->w;
    struct fp_io     *io = w->io;

    FP_STAT_INC(w, http_responses);
    hs_log_end(s);
    if (s->qsq.nb > 0) {
        /* The response came before the request body went out: the rest of the body will not,
         * and the server connection, mid-request, cannot be reused. */
        s->srv_dirty = 1;
        fp_io_segq_release(io, &s->qsq);
    }
    if (s->srv != NULL) {
        if (!s->srv_dirty && s->req_done && (s->sp.msg.flags & FP_H1_F_KEEP_ALIVE)) {
            idle_park(s);
        } else {
            hs_close_srv(s, 0);
        }
    }
    hs_slot_release(s);
    fp_worker_buf_release(w, &s->rsp);
    fp_worker_buf_release(w, &s->hreq);
    fp_worker_buf_trim(w, &s->hrsp);
    if (!s->cli_ka) {
        io->ops->shutdown_write(s->cli);
        hs_end(s, 0);
        return -1;
    }
    s->state = H_WAIT_REQ;
    s->req_done = 0;
    s->rsp_head_done = 0;
    s->rsp_done = 0;
    s->rsp_got = 0;
    s->rsp_sent = 0;
    s->req_head_len = 0;
    s->srv_dirty = 0;
    s->dechunk = 0;
    s->req_fwd = 0;
    s->rsp_fwd = 0;
    s->t_req_ms = 0;
    s->t_head_ms = 0;
    s->t_srv_ms = 0;
    s->t_rsp_ms = 0;
    s->reqline[0] = '\0';
    s->term = NULL;
    s->term_err = FP_H1_E_NONE;
    hdrs_put(w, &s->sh);
    hs_arm(s, w->conf->timeouts.keep_alive_ms);
    fp_worker_buf_trim(w, &s->req);
    if (s->req.data == NULL) {
        fp_worker_idle_add(w, &s->task);
    }
    /* A pipelined request may already be here. */
    return hs_process_req(s);
}

/* A send to the client failed: the session ends (reset). Returns -1. */
static int
hs_cli_send_failed(struct hsess *s)
{
    FP_STAT_INC(s->w, client_aborts);
    s->term = s->term != NULL ? s->term : "client-reset";
    hs_end(s, 1);
    return -1;
}

static void
hs_cli_sent(struct hsess *s, uint64_t n)
{
    s->rsp_sent += n;
    FP_STAT_ADD(s->w, bytes_out, n);
    hs_touch(s);
}

/*
 * Hands the body segments in rsq to the client once everything before them has gone (the
 * head, bytes of the body that came with it). FP_SEND_MORE while the length says more
 * follows. Returns 0, or -1 if the session ended.
 */
static int
hs_cli_write_segs(struct hsess *s)
{
    ssize_t n;

    if (s->rsq.nb == 0 || !fp_buf_empty(&s->hrsp) || s->rsp_fwd > 0) {
        return 0;
    }
    n = send_segq(s->cli, &s->rsq, &s->sb, s->rsp_done);
    if (n == -EAGAIN) {
        return 0;
    }
    if (n < 0) {
        return hs_cli_send_failed(s);
    }
    hs_cli_sent(s, (uint64_t)n);
    return 0;
}

static int
hs_cli_write(struct hsess *s)
{
    struct fp_worker *w = s->w;
    struct fp_io     *io = w->io;
    uint32_t          hlen = fp_buf_len(&s->hrsp);
    uint32_t          sent_head;
    uint32_t          sent_body;
    ssize_t           n;

    if (hlen + s->rsp_fwd > 0) {
        n = send_two(io, s->cli, &s->hrsp, 0, hlen, &s->rsp, s->rsp_fwd,
                     body_send_flags(&s->sb, s->rsp_fwd, s->rsp_done));
        if (n == -EAGAIN) {
            return 0;
        }
        if (n < 0) {
            return hs_cli_send_failed(s);
        }
        sent_head = (uint32_t)n < hlen ? (uint32_t)n : hlen;
        sent_body = (uint32_t)n - sent_head;
        fp_buf_consume(&s->hrsp, sent_head);
        if (sent_body > 0) {
            fp_buf_consume(&s->rsp, sent_body);
            s->rsp_fwd -= sent_body;
        }
        hs_cli_sent(s, (uint64_t)n);
        if (s->state == H_ERROR_OUT && fp_buf_empty(&s->hrsp)) {
            /* Lingering close: stop sending, keep reading (and dropping) what the client
             * still sends, so that our error page is not destroyed by a reset. The page
             * has gone: its request is logged now, not when the linger ends. */
            io->ops->shutdown_write(s->cli);
            hs_log_end(s);
            return 0;
        }
    }
    if (hs_cli_write_segs(s) != 0) {
        return -1;
    }
    if (s->rsp_done && s->rsp_fwd == 0 && fp_buf_empty(&s->hrsp) && s->rsq.nb == 0) {
        return hs_txn_done(s);
    }
    return 0;
}

/* ---- client input ---- */

/*
 * The client closed (n == 0) or failed (n < 0). Returns 0 (the response still goes out),
 * or -1 when the session ended.
 */
static int
hs_cli_closed(struct hsess *s, ssize_t n)
{
    struct fp_worker *w = s->w;

    if (n < 0) {
        FP_STAT_INC(w, client_aborts);
    }
    s->cli_eof = 1;
    if (s->state == H_QUEUED && n == 0) {
        /* Nobody waits for this answer any more: never send it (abortonclose). */
        FP_BE_STAT_INC(w, s->be_idx, queue_client_gone);
        s->term = "client-close";
        hs_end(s, 0);
        return -1;
    }
    if (s->state == H_WAIT_REQ || s->state == H_ERROR_OUT || n < 0 || !s->req_done) {
        /* Nothing to answer: an idle keep-alive close, the end of a linger, or a client
         * that gave up during its request (nothing more may reach the server). Only
         * the last is a request still under way, logged with this cause. */
        s->term = s->term != NULL ? s->term : n < 0 ? "client-reset" : "client-close";
        hs_end(s, n < 0 || (s->state != H_WAIT_REQ && s->state != H_ERROR_OUT));
        return -1;
    }
    s->cli_ka = 0;
    return 0;
}

/*
 * Counts the nb segments just lent at q->seg[q->nb..] against the request body's length and
 * keeps them. Bytes after the body's end are the client's next (pipelined) request: they are
 * copied into req, where its head is parsed once this transaction is over. Returns 0, or -1
 * when the session ended (those bytes did not fit in req).
 */
static int
hs_take_req_segs(struct hsess *s, struct fp_segq *q, uint32_t nb)
{
    struct fp_seg    *seg = &q->seg[q->nb];
    uint32_t          kept = nb;
    uint32_t          i;
    size_t            used = 0;
    enum fp_h1_status st;
    int               rc = 0;

    for (i = 0; i < nb; i++) {
        st = fp_h1_body_feed(&s->qb, (const char *)seg[i].data, seg[i].len, &used);
        if (st == FP_H1_DONE) {
            s->req_done = 1;
            break;
        }
    }
    if (i < nb) {
        /* seg[i] holds the body's end at used: the rest, and every segment after, is the
         * next request's. */
        rc = fp_worker_buf_attach(s->w, &s->req);
        for (kept = i; kept < nb && rc == 0; kept++) {
            size_t off = kept == i ? used : 0;

            /* A segment kept out of memory (data NULL) never crosses the end: it is read no
             * further than the body's length. */
            if (seg[kept].len > off) {
                rc = buf_put(&s->req, seg[kept].data + off, seg[kept].len - off);
            }
        }
        seg[i].len = (uint32_t)used;
        kept = used > 0 ? i + 1 : i;
    }
    for (i = kept; i < nb; i++) {
        fp_io_seg_free(s->w->io, &seg[i]);
    }
    fp_segq_added(q, kept);
    if (rc != 0) {
        /* Only with a bufsize under one segment: counted as the head it cannot hold. */
        FP_STAT_INC(s->w, http_431);
        s->term = "client-pipeline-overflow";
        hs_end(s, 1);
        return -1;
    }
    return 0;
}

/* hs_cli_read() for a request body on the segment path (hs_req_zero_copy): reads ahead into
 * qsq, no further than the body's end where the backend allows it (a pipe always does: its
 * bytes, FP_RECV_OPAQUE, are never looked at). */
static int
hs_cli_read_segs(struct hsess *s)
{
    struct fp_segq *q = &s->qsq;
    uint64_t        left = s->qp.msg.content_length - s->qb.payload_bytes;
    uint32_t        room = fp_segq_byte_room(q);
    ssize_t         n;

    if (fp_segq_full(q)) {
        return 0;
    }
    n = fp_io_recv_segs(s->cli, &q->seg[q->nb], fp_segq_room(q),
                        left < room ? (uint32_t)left : room,
                        (q->nb > 0 ? FP_RECV_AHEAD : 0) | FP_RECV_OPAQUE);
    if (n == -EAGAIN || n == -ENOBUFS) {
        return 0;
    }
    if (n <= 0) {
        return hs_cli_closed(s, n);
    }
    hs_touch(s);
    return hs_take_req_segs(s, q, (uint32_t)n);
}

static int
hs_cli_read(struct hsess *s)
{
    struct fp_worker *w = s->w;
    ssize_t           n;

    if (hs_req_zero_copy(s)) {
        return hs_cli_read_segs(s);
    }
    if (s->qsq.nb > 0) {
        return 0; /* body segments wait for a server again (a retry): nothing may pass them */
    }
    if (fp_worker_buf_attach(w, &s->req) != 0) {
        hs_end(s, 1);
        return -1;
    }
    if (s->state == H_ERROR_OUT) {
        s->req.head = 0;
        s->req.tail = 0;
    }
    if (fp_buf_room(&s->req) == 0) {
        fp_buf_compact(&s->req);
    }
    n = w->io->ops->recv(s->cli, &s->req);
    if (n == -EAGAIN || n == -ENOBUFS) {
        return 0;
    }
    if (n <= 0) {
        return hs_cli_closed(s, n);
    }
    if (s->state == H_ERROR_OUT) {
        return 0;
    }
    fp_worker_idle_del(w, &s->task);
    if (s->state != H_WAIT_REQ && s->state != H_QUEUED) {
        hs_touch(s);
    }
    return hs_process_req(s);
}

/* ---- events ---- */

/*
 * The end of the loop iteration (fp_worker_defer): sends what this iteration's reads produced
 * on both sides, then sets the interest. Events only read and queue, so the origin and the
 * client get every request and response of a burst at once, not one wake-up per event.
 */
static void
hs_flush(struct fp_task *t)
{
    struct hsess *s = (struct hsess *)t;

    if (s->state == H_XFER && s->srv != NULL && hs_srv_write(s) < 0) {
        return;
    }
    if (s->state == H_XFER && (hs_rsp_pending(s) || s->rsp_done) && hs_cli_write(s) < 0) {
        return;
    }
    hs_update(s);
}

/* After an event: a session with sends deferred sets its interest once they are done. */
static void
hs_event_done(struct hsess *s)
{
    if (!s->task.fl_queued) {
        hs_update(s);
    }
}

static void
hs_cli_event(struct hsess *s, unsigned events)
{
    if ((events & FP_EV_READ) && hs_cli_read(s) < 0) {
        return;
    }
    if ((events & FP_EV_WRITE) && hs_cli_write(s) < 0) {
        return;
    }
    if (s->state == H_XFER && s->srv != NULL && hs_req_pending(s)) {
        fp_worker_defer(s->w, &s->task);
    }
    hs_event_done(s);
}

static void
hs_on_cli(struct fp_conn *c, unsigned events)
{
    struct hsess     *s = c->data;
    struct fp_worker *w = s->w;

    hs_cli_event(s, events);
    fp_worker_slot_poll(w);
}

static void
hs_on_srv(struct fp_conn *c, unsigned events)
{
    struct hsess *s = c->data;
    int           rc;

    if (events & FP_EV_ERROR) {
        FP_STAT_INC(s->w, connect_errors);
        if (hs_server_failed(s, 1) == 0) {
            hs_update(s);
        }
        return;
    }
    if (s->state == H_CONNECT) {
        s->t_srv_ms = s->w->io->ops->now_ms(s->w->io);
        s->state = H_XFER;
        hs_arm_xfer(s);
    }
    if (events & FP_EV_WRITE) {
        if (hs_srv_write(s) < 0) {
            return;
        }
    }
    if ((events & FP_EV_READ) && s->srv != NULL) {
        rc = hs_srv_read(s);
        if (rc < 0) {
            return;
        }
    }
    if (s->state == H_XFER && s->rsp_done && !s->task.fl_queued) {
        /* The whole response is here: hand it to the client now rather than at the end of
         * the loop iteration, so that the server slot it holds goes back to work at once. A
         * retry storm fills an iteration with thousands of client requests, and a slot that
         * idled through them served a fraction of the origin's capacity (issue 15). */
        hs_flush(&s->task);
        return;
    }
    if (s->state == H_XFER && (hs_rsp_pending(s) || s->rsp_done)) {
        fp_worker_defer(s->w, &s->task);
    }
    hs_event_done(s);
}

/* fp_worker_slot_poll: reads the server's answer if it is here (most often it is not). */
static void
hs_poll_task(struct fp_task *t)
{
    struct hsess *s = (struct hsess *)t;

    if (s->state != H_XFER || s->srv == NULL || s->rsp_done) {
        return;
    }
    s->polled = 1;
    hs_on_srv(s->srv, FP_EV_READ);
}

static void
hs_on_timer(struct fp_timer *t)
{
    struct hsess *s = t->data;
    struct fp_io *io = s->w->io;
    uint64_t      now = io->ops->now_ms(io);
    uint64_t      idle = now - s->last_ms;
    uint64_t      limit = s->state == H_XFER ? hs_xfer_timeout(s) : s->timeout_ms;
    uint64_t      rest;

    s->fire_ms = 0;
    if ((s->state == H_CONNECT || s->state == H_QUEUED) && now < s->arm_ms + s->timeout_ms) {
        /* Armed for an earlier deadline (hs_arm): these timeouts run from their start. */
        hs_timer_set(s, now, s->arm_ms + s->timeout_ms - now);
        return;
    }
    if (idle < limit && s->state != H_CONNECT && s->state != H_QUEUED) {
        rest = limit - idle < s->timeout_ms ? limit - idle : s->timeout_ms;
        hs_timer_set(s, now, rest);
        return;
    }
    switch (s->state) {
    case H_WAIT_REQ:
        if (s->req.data != NULL && !fp_buf_empty(&s->req)) {
            FP_STAT_INC(s->w, client_timeouts);
            s->term = "client-timeout";
            if (hs_error(s, 408) < 0) {
                return;
            }
            break;
        }
        FP_STAT_INC(s->w, idle_timeouts);
        hs_end(s, 0);
        return;
    case H_QUEUED:
        FP_BE_STAT_INC(s->w, s->be_idx, queue_timeouts);
        if (hs_error(s, 503) < 0) {
            return;
        }
        break;
    case H_CONNECT:
        FP_STAT_INC(s->w, connect_timeouts);
        hs_close_srv(s, 1);
        s->has_slot = 0;
        fp_worker_slot_release(s->w, s->be_idx, s->srv_gi, false);
        if (hs_acquire_server(s) < 0) {
            return;
        }
        break;
    case H_XFER:
        if (hs_waits_for_client(s)) {
            /* 408 while nothing of the response went out, else a cut (hs_error()); either
             * way the server connection is closed: it holds a request it cannot finish. */
            FP_STAT_INC(s->w, client_timeouts);
            s->term = "client-timeout";
            if (hs_error(s, 408) < 0) {
                return;
            }
            break;
        }
        s->term = "server-timeout";
        if (!s->rsp_got) {
            if (hs_error(s, 504) < 0) {
                return;
            }
            break;
        }
        FP_STAT_INC(s->w, idle_timeouts);
        hs_end(s, 1);
        return;
    case H_ERROR_OUT:
        hs_end(s, 0);
        return;
    }
    hs_update(s);
}

void
fp_http_session_start(struct fp_worker *w, const struct fp_frontend_conf *fe, struct fp_conn *c)
{
    struct fp_io *io = w->io;
    struct hsess *s;

    s = fp_worker_session_alloc(w, c, sizeof(*s));
    if (s == NULL) {
        return;
    }
    s->w = w;
    s->fe = fe;
    s->cli = c;
    c->handler = hs_on_cli;
    c->data = s;
    s->task.abort = hs_abort_task;
    s->task.flush = hs_flush;
    s->task.yield = hs_yield_task;
    s->task.poll = hs_poll_task;
    fp_worker_task_add(w, &s->task);
    fp_h1_limits_default(&s->lim);
    if (fe->limits.request_line != 0) {
        s->lim.max_line_len = fe->limits.request_line;
    }
    if (fe->limits.header_size != 0) {
        s->lim.max_head_bytes = fe->limits.header_size;
    }
    if (fe->limits.headers != 0) {
        s->lim.max_headers = fe->limits.headers;
    }
    s->lim.max_body_bytes = fe->limits.body_size;
    io->ops->timer_init(io, &s->timer, hs_on_timer, s);
    s->state = H_WAIT_REQ;
    hs_arm(s, w->conf->timeouts.http_request_ms);
    io->ops->want(c, FP_EV_READ);
}
