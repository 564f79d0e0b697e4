/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fp-loadgen: the open-loop HTTP/1.1 load generator of bench/run --overload, on libev.
 *
 * Requests arrive at a fixed rate (evenly spaced, or Poisson with -P) whatever the server
 * does: wrk is closed loop, so it slows down with the server and never shows what overload
 * does to goodput. Each request goes out on an idle connection of a bounded pool; when none is
 * idle and the pool is full it waits in a FIFO. Latency is measured from the scheduled arrival
 * time, so the wait for a connection counts (no coordinated omission). A request with no
 * complete answer within the client timeout counts as a timeout and its connection is closed,
 * since HTTP/1.1 has no other way to abandon a request.
 *
 * Every scheduled request ends in exactly one bucket: ok (2xx), non2xx, timeout, error
 * (connect, I/O, parse) or dropped (FIFO full). Goodput counts the 2xx responses completed
 * within the arrival window, divided by its length, so the drain after it does not inflate it.
 * The latency of 2xx responses and that of refusals (non-2xx responses: how fast a client
 * learns it was shed) are kept apart, each in its own array sized at start; non-2xx responses
 * are also counted by status (4xx, 5xx, and 502, 503, 504 among them). With -C every request
 * opens its own connection and asks for close (a connection flood, as from many clients).
 * Responses must carry Content-Length; chunked bodies count as parse errors. All memory is
 * allocated before the first request. The result is one JSON line on stdout.
 *
 * Timers have a resolution of about a millisecond, so arrivals come in bursts of up to 1 ms;
 * the latency of each request still starts at its own scheduled time.
 *
 * With --retries N a logical request is tried up to N more times after a 502, a 503, a reset
 * or a close before its answer, or a failed connect, like an SDK or a service mesh that
 * resends a refused request: at once (on the same connection when it stays open, else on the
 * next free one, ahead of new arrivals) or --retry-delay MS later. The client timeout then
 * counts from the first attempt: a request still without a 2xx at that deadline is a timeout,
 * whatever attempt it is on, and its latency is from its first scheduled time. The buckets
 * above count logical requests (their final outcome); the attempt_* figures count every try.
 *
 * With --threads N the generator runs N independent copies, each on its own event loop and
 * thread pinned to a CPU (--cpus LIST, else the CPUs this process may use, in turn), each
 * with RATE / N arrivals, 1/N of the connections and its own random stream: the sum of N
 * independent Poisson processes of rate RATE / N is a Poisson process of rate RATE, and
 * evenly spaced arrivals are interleaved (copy i starts i / RATE later). A logical request
 * lives in one copy from its arrival to its last try, so its accounting is exact; the copies'
 * counters are summed and their latencies merged before the percentiles. One copy costs
 * about 20 us of CPU per try (send, epoll, recv on loopback, most of it in the kernel), so one
 * thread tops out at about 45,000 tries/s on the bench machine.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#define LG_HDR_MAX     8192
#define LG_SCRATCH     65536
#define LG_SWEEP_S     0.005
#define LG_REQ_MAX     1024
#define LG_THREADS_MAX 64

enum lg_conn_state {
    LG_CONN_CLOSED = 0,
    LG_CONN_CONNECTING,
    LG_CONN_IDLE,
    LG_CONN_BUSY,
};

struct lg;

struct lg_conn {
    struct lg         *lg;
    uint32_t           attempt; /* tries of the request in flight before this one */
    ev_io              io;
    ev_timer           timer; /* client timeout of the request in flight */
    int                fd;
    enum lg_conn_state state;
    double             sched; /* scheduled arrival of the request in flight */
    size_t             sent;  /* request bytes written */
    bool               hdr_done;
    bool               close_after;
    int                status;
    uint64_t           body_left;
    size_t             hlen; /* header bytes buffered in hbuf */
    char               hbuf[LG_HDR_MAX];
    struct lg_conn    *prev; /* idle list, or free list (next only) */
    struct lg_conn    *next;
};

struct lg_stats {
    uint64_t scheduled;
    uint64_t ok;
    uint64_t ok_in_window; /* 2xx completed before the end of the arrival window */
    uint64_t non2xx;
    uint64_t n4xx;
    uint64_t n5xx;
    uint64_t n502;
    uint64_t n503;
    uint64_t n504;
    uint64_t timeouts;       /* in flight or waiting in the FIFO past the client timeout */
    uint64_t connect_errors; /* connection attempts that failed */
    uint64_t connect_failed; /* requests failed for it (none if none was waiting) */
    uint64_t io_errors;      /* reset or EOF in the middle of a response */
    uint64_t parse_errors;   /* malformed or unsupported response */
    uint64_t dropped;        /* FIFO full */
    uint64_t conns_opened;
    /* per attempt (with --retries): every try, the first included */
    uint64_t attempts;
    uint64_t att_ok;
    uint64_t att_502;
    uint64_t att_503;
    uint64_t att_other;      /* other non-2xx answers */
    uint64_t att_io;         /* reset or close before a whole answer */
    uint64_t att_connect;    /* connect failed */
    uint64_t retries;        /* tries after the first */
    uint64_t ok_retried;     /* logical requests that got their 2xx on a retry */
    uint64_t retry_deadline; /* retries not made: the deadline had passed */
};

/* A logical request waiting for a connection (or for its retry delay to pass). */
struct lg_pending {
    double   sched;   /* its first scheduled arrival: latency and deadline count from it */
    double   ready;   /* when its retry may go out (delayed ring only) */
    uint32_t attempt; /* tries so far */
};

struct lg {
    struct ev_loop    *loop;
    struct sockaddr_in addr;
    char               req[LG_REQ_MAX];
    size_t             req_len;
    double             rate;
    double             start_s; /* first arrival (copy i of N: i / total rate after t0) */
    double             duration_s;
    double             timeout_s;
    uint32_t           max_retries;   /* --retries */
    double             retry_delay_s; /* --retry-delay; 0: at once */
    bool               poisson;
    bool               conn_per_req; /* -C: one connection per request, Connection: close */
    uint64_t           rng;
    double             t_end;
    double             next_arrival;
    bool               arrivals_done;
    ev_timer           arrival;
    ev_timer           sweep;
    ev_timer           retry_timer; /* next delayed retry due */
    struct lg_conn    *conns;
    uint32_t           nb_conns;
    uint32_t           nb_open; /* connecting, idle or busy */
    uint32_t           nb_connecting;
    uint32_t           nb_busy;
    struct lg_conn    *idle; /* doubly linked */
    struct lg_conn    *free; /* singly linked through next */
    struct lg_pending *fifo; /* requests waiting for a connection */
    uint32_t           fifo_cap;
    uint32_t           fifo_head;
    uint32_t           fifo_len;
    struct lg_pending *delayed; /* retries waiting out --retry-delay, in ready order */
    uint32_t           delayed_head;
    uint32_t           delayed_len;
    double            *lat_us; /* latency of each 2xx response */
    uint64_t           lat_len;
    uint64_t           lat_cap;
    double            *ref_us; /* latency of each non-2xx response (refusal); lat_cap too */
    uint64_t           ref_len;
    struct lg_stats    st;
    int                cpu; /* pinned to it, or -1 */
    char               scratch[LG_SCRATCH];
};

/* The command line's parts that are not one copy's. */
struct lg_opts {
    uint32_t threads; /* --threads */
    int      cpus[LG_THREADS_MAX];
    uint32_t nb_cpus; /* --cpus; 0: this process's affinity */
};

static void dispatch(struct lg *lg);
static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);

static double
next_gap(struct lg *lg)
{
    double u;

    if (!lg->poisson) {
        return 1.0 / lg->rate;
    }
    /* xorshift64*: enough for arrival times, and reproducible with -s. */
    lg->rng ^= lg->rng >> 12;
    lg->rng ^= lg->rng << 25;
    lg->rng ^= lg->rng >> 27;
    u = (double)((lg->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
    return -log(1.0 - u) / lg->rate;
}

static void
idle_remove(struct lg *lg, struct lg_conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        lg->idle = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = NULL;
    c->next = NULL;
}

static void
idle_push(struct lg *lg, struct lg_conn *c)
{
    c->state = LG_CONN_IDLE;
    c->prev = NULL;
    c->next = lg->idle;
    if (lg->idle != NULL) {
        lg->idle->prev = c;
    }
    lg->idle = c;
}

static void
conn_close(struct lg *lg, struct lg_conn *c)
{
    if (c->state == LG_CONN_IDLE) {
        idle_remove(lg, c);
    } else if (c->state == LG_CONN_CONNECTING) {
        lg->nb_connecting--;
    } else if (c->state == LG_CONN_BUSY) {
        lg->nb_busy--;
    }
    ev_io_stop(lg->loop, &c->io);
    ev_timer_stop(lg->loop, &c->timer);
    close(c->fd);
    c->fd = -1;
    c->state = LG_CONN_CLOSED;
    lg->nb_open--;
    c->prev = NULL;
    c->next = lg->free;
    lg->free = c;
}

static struct lg_pending
fifo_pop(struct lg *lg)
{
    struct lg_pending p = lg->fifo[lg->fifo_head];

    lg->fifo_head = (lg->fifo_head + 1) % lg->fifo_cap;
    lg->fifo_len--;
    return p;
}

static void
fifo_push(struct lg *lg, double t)
{
    lg->st.scheduled++;
    if (lg->fifo_len == lg->fifo_cap) {
        lg->st.dropped++;
        return;
    }
    lg->fifo[(lg->fifo_head + lg->fifo_len) % lg->fifo_cap] =
            (struct lg_pending){.sched = t, .ready = 0, .attempt = 0};
    lg->fifo_len++;
}

/* An immediate retry goes ahead of new arrivals: the client resends at once. */
static void
fifo_push_front(struct lg *lg, struct lg_pending p)
{
    if (lg->fifo_len == lg->fifo_cap) {
        lg->st.dropped++;
        return;
    }
    lg->fifo_head = (lg->fifo_head + lg->fifo_cap - 1) % lg->fifo_cap;
    lg->fifo[lg->fifo_head] = p;
    lg->fifo_len++;
}

/*
 * Requests that waited for a connection past their deadline are timeouts. Retries go to the
 * front, so the FIFO stays about in deadline order; one that is not expires at the front.
 */
static void
fifo_expire(struct lg *lg, double now)
{
    while (lg->fifo_len > 0 && lg->fifo[lg->fifo_head].sched + lg->timeout_s <= now) {
        (void)fifo_pop(lg);
        lg->st.timeouts++;
    }
}

static void
conn_set_events(struct lg *lg, struct lg_conn *c, int events)
{
    if (c->io.events == events && ev_is_active(&c->io)) {
        return;
    }
    ev_io_stop(lg->loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(lg->loop, &c->io);
}

static void retry_arm(struct lg *lg);

/*
 * A try of the logical request (first scheduled at sched, attempt tries before this one)
 * failed in a way a retrying client resends. Returns true when it is retried (at once, or
 * after the retry delay), false when the caller counts its final outcome.
 */
static bool
retry(struct lg *lg, double sched, uint32_t attempt)
{
    struct lg_pending p = {.sched = sched, .ready = 0, .attempt = attempt + 1};
    double            now = ev_time();

    if (attempt >= lg->max_retries) {
        return false;
    }
    if (sched + lg->timeout_s <= now + lg->retry_delay_s) {
        lg->st.retry_deadline++;
        return false;
    }
    if (lg->retry_delay_s <= 0) {
        fifo_push_front(lg, p);
        return true;
    }
    if (lg->delayed_len == lg->fifo_cap) {
        lg->st.dropped++;
        return true;
    }
    p.ready = now + lg->retry_delay_s;
    lg->delayed[(lg->delayed_head + lg->delayed_len) % lg->fifo_cap] = p;
    lg->delayed_len++;
    if (lg->delayed_len == 1) {
        retry_arm(lg);
    }
    return true;
}

/* The request in flight on c was reset or its connection closed before a whole answer. */
static void
attempt_io_failed(struct lg *lg, struct lg_conn *c)
{
    lg->st.att_io++;
    if (!retry(lg, c->sched, c->attempt)) {
        lg->st.io_errors++;
    }
}

static void
conn_send(struct lg *lg, struct lg_conn *c)
{
    ssize_t n;

    while (c->sent < lg->req_len) {
        n = send(c->fd, lg->req + c->sent, lg->req_len - c->sent, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_set_events(lg, c, EV_READ | EV_WRITE);
                return;
            }
            attempt_io_failed(lg, c);
            conn_close(lg, c);
            return;
        }
        c->sent += (size_t)n;
    }
    conn_set_events(lg, c, EV_READ);
}

static void
conn_start_request(struct lg *lg, struct lg_conn *c, struct lg_pending p)
{
    double after = p.sched + lg->timeout_s - ev_now(lg->loop);

    idle_remove(lg, c);
    c->state = LG_CONN_BUSY;
    lg->nb_busy++;
    lg->st.attempts++;
    if (p.attempt > 0) {
        lg->st.retries++;
    }
    c->sched = p.sched;
    c->attempt = p.attempt;
    c->sent = 0;
    c->hdr_done = false;
    c->close_after = false;
    c->status = 0;
    c->body_left = 0;
    c->hlen = 0;
    ev_timer_set(&c->timer, after > 0 ? after : 0, 0);
    ev_timer_start(lg->loop, &c->timer);
    conn_send(lg, c);
}

/* Opens one more connection of the pool; 0 or -errno (counted as a failed request). */
static int
conn_open(struct lg *lg)
{
    struct lg_conn *c = lg->free;
    int             one = 1;
    int             fd;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -errno;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&lg->addr, sizeof(lg->addr)) == -1 && errno != EINPROGRESS) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    lg->free = c->next;
    c->next = NULL;
    c->fd = fd;
    c->state = LG_CONN_CONNECTING;
    lg->nb_open++;
    lg->nb_connecting++;
    lg->st.conns_opened++;
    ev_io_init(&c->io, conn_io_cb, fd, EV_WRITE);
    ev_io_start(lg->loop, &c->io);
    return 0;
}

/* A connection failure fails one waiting request, so a dead server cannot make us spin. */
static void
fail_one_waiting(struct lg *lg)
{
    struct lg_pending p;

    lg->st.connect_errors++;
    if (lg->fifo_len > 0) {
        p = fifo_pop(lg);
        lg->st.att_connect++;
        if (!retry(lg, p.sched, p.attempt)) {
            lg->st.connect_failed++;
        }
    }
}

static void
dispatch(struct lg *lg)
{
    fifo_expire(lg, ev_time());
    while (lg->fifo_len > 0 && lg->idle != NULL) {
        conn_start_request(lg, lg->idle, fifo_pop(lg));
    }
    while (lg->fifo_len > lg->nb_connecting && lg->nb_open < lg->nb_conns) {
        if (conn_open(lg) < 0) {
            fail_one_waiting(lg);
        }
    }
}

static void
count_refusal(struct lg *lg, int status, double lat_us)
{
    struct lg_stats *s = &lg->st;

    s->non2xx++;
    if (status >= 400 && status < 500) {
        s->n4xx++;
    } else if (status >= 500 && status < 600) {
        s->n5xx++;
        s->n502 += status == 502;
        s->n503 += status == 503;
        s->n504 += status == 504;
    }
    if (lg->ref_len < lg->lat_cap) {
        lg->ref_us[lg->ref_len++] = lat_us;
    }
}

static void
request_done(struct lg *lg, struct lg_conn *c)
{
    double lat_us = (ev_time() - c->sched) * 1e6;
    bool   retried = false;

    if (lat_us > lg->timeout_s * 1e6) {
        /* Read after the client's deadline (this loop ran late, its timer had not fired
         * yet): a client whose timer fired in time had given up, so it counts as a timeout,
         * whatever the answer. The connection is whole and stays in use. */
        lg->st.timeouts++;
        goto done;
    }
    if (c->status >= 200 && c->status < 300) {
        lg->st.att_ok++;
    } else if (c->status == 502) {
        lg->st.att_502++;
    } else if (c->status == 503) {
        lg->st.att_503++;
    } else {
        lg->st.att_other++;
    }
    if (c->status == 502 || c->status == 503) {
        retried = retry(lg, c->sched, c->attempt);
    }
    if (c->status >= 200 && c->status < 300) {
        lg->st.ok++;
        lg->st.ok_retried += c->attempt > 0;
        if (ev_time() <= lg->t_end) {
            lg->st.ok_in_window++;
        }
        if (lg->lat_len < lg->lat_cap) {
            lg->lat_us[lg->lat_len++] = lat_us;
        }
    } else if (!retried) {
        count_refusal(lg, c->status, lat_us); /* a retried one counts when its last try ends */
    }
done:
    ev_timer_stop(lg->loop, &c->timer);
    if (c->close_after || lg->conn_per_req) {
        conn_close(lg, c);
        return;
    }
    lg->nb_busy--;
    idle_push(lg, c);
}

/* Parses the status line and the headers we need; 0 or -EPROTO. */
static int
parse_head(struct lg_conn *c, const char *h, size_t len)
{
    const char *p = h;
    const char *end = h + len;
    bool        have_len = false;

    if (len < 12 || strncmp(h, "HTTP/1.", 7) != 0) {
        return -EPROTO;
    }
    c->status = atoi(h + 9);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));

        if (eol == NULL) {
            break;
        }
        if (strncasecmp(p, "content-length:", 15) == 0) {
            c->body_left = strtoull(p + 15, NULL, 10);
            have_len = true;
        } else if (strncasecmp(p, "transfer-encoding:", 18) == 0) {
            return -EPROTO; /* chunked bodies are not supported by this generator */
        } else if (strncasecmp(p, "connection:", 11) == 0 &&
                   memmem(p, (size_t)(eol - p), "close", 5) != NULL) {
            c->close_after = true;
        }
        p = eol + 1;
    }
    if (!have_len && c->status != 204 && c->status != 304) {
        return -EPROTO;
    }
    return 0;
}

/* Consumes n body bytes; 1 when the response is complete, 0 if more is needed, -EPROTO. */
static int
eat_body(struct lg_conn *c, size_t n)
{
    if (n > c->body_left) {
        return -EPROTO; /* bytes after the response: the server answered what we did not ask */
    }
    c->body_left -= n;
    return c->body_left == 0 ? 1 : 0;
}

static int
read_head(struct lg_conn *c, size_t n)
{
    char  *eoh;
    size_t hdr_len;

    c->hlen += n;
    c->hbuf[c->hlen] = '\0';
    eoh = memmem(c->hbuf, c->hlen, "\r\n\r\n", 4);
    if (eoh == NULL) {
        return c->hlen >= LG_HDR_MAX - 1 ? -EPROTO : 0;
    }
    hdr_len = (size_t)(eoh - c->hbuf) + 4;
    if (parse_head(c, c->hbuf, hdr_len) < 0) {
        return -EPROTO;
    }
    c->hdr_done = true;
    if (c->hlen - hdr_len == 0 && c->body_left == 0) {
        return 1;
    }
    return eat_body(c, c->hlen - hdr_len);
}

static void
conn_read(struct lg *lg, struct lg_conn *c)
{
    ssize_t n;
    int     rc;

    for (;;) {
        if (c->state != LG_CONN_BUSY) {
            /* An idle connection must not receive anything but EOF. */
            n = recv(c->fd, lg->scratch, sizeof(lg->scratch), 0);
            if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            conn_close(lg, c);
            return;
        }
        if (!c->hdr_done) {
            n = recv(c->fd, c->hbuf + c->hlen, LG_HDR_MAX - 1 - c->hlen, 0);
        } else {
            n = recv(c->fd, lg->scratch,
                     c->body_left < sizeof(lg->scratch) ? c->body_left : sizeof(lg->scratch), 0);
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            attempt_io_failed(lg, c);
            conn_close(lg, c);
            return;
        }
        rc = c->hdr_done ? eat_body(c, (size_t)n) : read_head(c, (size_t)n);
        if (rc < 0) {
            lg->st.parse_errors++;
            conn_close(lg, c);
            return;
        }
        if (rc == 1) {
            request_done(lg, c);
            return;
        }
    }
}

static void
conn_connected(struct lg *lg, struct lg_conn *c)
{
    int       err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
        conn_close(lg, c);
        fail_one_waiting(lg);
        return;
    }
    lg->nb_connecting--;
    conn_set_events(lg, c, EV_READ);
    idle_push(lg, c);
}

static void
conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct lg_conn *c = w->data;
    struct lg      *lg = c->lg;

    (void)loop;
    if (c->state == LG_CONN_CONNECTING) {
        conn_connected(lg, c);
    } else {
        if ((revents & EV_WRITE) && c->state == LG_CONN_BUSY) {
            conn_send(lg, c);
        }
        if ((revents & EV_READ) && c->state != LG_CONN_CLOSED) {
            conn_read(lg, c);
        }
    }
    dispatch(lg);
}

static void
conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct lg_conn *c = w->data;
    struct lg      *lg = c->lg;

    (void)loop;
    (void)revents;
    lg->st.timeouts++;
    conn_close(lg, c);
    dispatch(lg);
}

static void
arrival_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct lg *lg = w->data;
    double     now = ev_time();

    (void)revents;
    while (lg->next_arrival <= now && lg->next_arrival < lg->t_end) {
        fifo_push(lg, lg->next_arrival);
        lg->next_arrival += next_gap(lg);
    }
    dispatch(lg);
    if (lg->next_arrival >= lg->t_end) {
        lg->arrivals_done = true;
        return;
    }
    ev_timer_set(w, lg->next_arrival - ev_now(loop), 0);
    ev_timer_start(loop, w);
}

/* Delayed retries whose delay has passed join the front of the FIFO, oldest first. */
static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct lg        *lg = w->data;
    double            now = ev_time();
    struct lg_pending p;
    uint32_t          n = 0;

    (void)loop;
    (void)revents;
    /* Due retries keep their order among themselves, ahead of new arrivals. */
    while (n < lg->delayed_len && lg->delayed[(lg->delayed_head + n) % lg->fifo_cap].ready <= now) {
        n++;
    }
    while (n > 0) {
        n--;
        p = lg->delayed[(lg->delayed_head + n) % lg->fifo_cap];
        fifo_push_front(lg, p);
    }
    while (lg->delayed_len > 0 && lg->delayed[lg->delayed_head].ready <= now) {
        lg->delayed_head = (lg->delayed_head + 1) % lg->fifo_cap;
        lg->delayed_len--;
    }
    retry_arm(lg);
    dispatch(lg);
}

static void
retry_arm(struct lg *lg)
{
    double after;

    if (lg->delayed_len == 0 || ev_is_active(&lg->retry_timer)) {
        return;
    }
    after = lg->delayed[lg->delayed_head].ready - ev_now(lg->loop);
    ev_timer_set(&lg->retry_timer, after > 0 ? after : 0, 0);
    ev_timer_start(lg->loop, &lg->retry_timer);
}

static void
sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct lg *lg = w->data;

    (void)revents;
    fifo_expire(lg, ev_time());
    if (lg->arrivals_done && lg->fifo_len == 0 && lg->nb_busy == 0 && lg->delayed_len == 0) {
        ev_timer_stop(loop, w);
        ev_break(loop, EVBREAK_ALL);
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

static double
percentile(const double *v, uint64_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    return v[(uint64_t)((double)(n - 1) * p / 100.0 + 0.5)];
}

static double
sort_and_mean(double *v, uint64_t n)
{
    double   sum = 0;
    uint64_t i;

    qsort(v, n, sizeof(double), cmp_double);
    for (i = 0; i < n; i++) {
        sum += v[i];
    }
    return n ? sum / (double)n : 0.0;
}

/* The refusal part of the JSON line: non-2xx counts by status and their latency. */
static void
report_refusals(struct lg *lg)
{
    const struct lg_stats *s = &lg->st;
    double                 mean = sort_and_mean(lg->ref_us, lg->ref_len);

    printf(", \"n4xx\": %llu, \"n5xx\": %llu, \"n502\": %llu, \"n503\": %llu, \"n504\": %llu, "
           "\"refused\": %llu, \"refused_p50_us\": %.0f, \"refused_p90_us\": %.0f, "
           "\"refused_p99_us\": %.0f, \"refused_max_us\": %.0f, \"refused_mean_us\": %.1f",
           (unsigned long long)s->n4xx, (unsigned long long)s->n5xx, (unsigned long long)s->n502,
           (unsigned long long)s->n503, (unsigned long long)s->n504,
           (unsigned long long)lg->ref_len, percentile(lg->ref_us, lg->ref_len, 50),
           percentile(lg->ref_us, lg->ref_len, 90), percentile(lg->ref_us, lg->ref_len, 99),
           lg->ref_len ? lg->ref_us[lg->ref_len - 1] : 0.0, mean);
}

static void
report(struct lg *lg)
{
    const struct lg_stats *s = &lg->st;
    uint64_t               errors = s->connect_failed + s->io_errors + s->parse_errors + s->dropped;
    double                 mean = sort_and_mean(lg->lat_us, lg->lat_len);

    printf("{\"offered_rps\": %.1f, \"duration_s\": %.3f, \"poisson\": %s, \"scheduled\": %llu, "
           "\"ok\": %llu, \"goodput_rps\": %.1f, \"non2xx\": %llu, \"timeouts\": %llu, "
           "\"errors\": %llu, \"connect_errors\": %llu, \"connect_failed\": %llu, "
           "\"io_errors\": %llu, "
           "\"parse_errors\": %llu, \"dropped\": %llu, \"conns_opened\": %llu, "
           "\"p50_us\": %.0f, \"p90_us\": %.0f, \"p99_us\": %.0f, \"max_us\": %.0f, "
           "\"mean_us\": %.1f, \"conn_per_req\": %s",
           lg->rate, lg->duration_s, lg->poisson ? "true" : "false",
           (unsigned long long)s->scheduled, (unsigned long long)s->ok,
           (double)s->ok_in_window / lg->duration_s, (unsigned long long)s->non2xx,
           (unsigned long long)s->timeouts, (unsigned long long)errors,
           (unsigned long long)s->connect_errors, (unsigned long long)s->connect_failed,
           (unsigned long long)s->io_errors, (unsigned long long)s->parse_errors,
           (unsigned long long)s->dropped, (unsigned long long)s->conns_opened,
           percentile(lg->lat_us, lg->lat_len, 50), percentile(lg->lat_us, lg->lat_len, 90),
           percentile(lg->lat_us, lg->lat_len, 99), lg->lat_len ? lg->lat_us[lg->lat_len - 1] : 0.0,
           mean, lg->conn_per_req ? "true" : "false");
    report_refusals(lg);
    printf(", \"retries_max\": %u, \"retry_delay_ms\": %.0f, \"attempts\": %llu, "
           "\"attempts_per_req\": %.3f, \"retries\": %llu, \"ok_retried\": %llu, "
           "\"retry_deadline\": %llu, \"att_ok\": %llu, \"att_502\": %llu, \"att_503\": %llu, "
           "\"att_other\": %llu, \"att_io\": %llu, \"att_connect\": %llu",
           lg->max_retries, lg->retry_delay_s * 1000, (unsigned long long)s->attempts,
           s->scheduled ? (double)s->attempts / (double)s->scheduled : 0.0,
           (unsigned long long)s->retries, (unsigned long long)s->ok_retried,
           (unsigned long long)s->retry_deadline, (unsigned long long)s->att_ok,
           (unsigned long long)s->att_502, (unsigned long long)s->att_503,
           (unsigned long long)s->att_other, (unsigned long long)s->att_io,
           (unsigned long long)s->att_connect);
    printf("}\n");
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: fp-loadgen -p PORT -r RATE [-a ADDR] [-u PATH] [-d SECONDS] [-c CONNS]\n"
               "                  [-t TIMEOUT_MS] [-P] [-C] [-s SEED] [--retries N]\n"
               "                  [--retry-delay MS] [--threads N] [--cpus LIST]\n"
               "  open-loop HTTP/1.1 GETs at RATE requests/s (evenly spaced, Poisson with -P)\n"
               "  over at most CONNS connections (default 256), for SECONDS (default 5), each\n"
               "  with a client timeout (default 1000 ms); -C: a new connection per request\n"
               "  (Connection: close). --retries: resend a request answered 502 or 503, reset,\n"
               "  closed or not connected up to N more times, at once or MS later, within the\n"
               "  timeout counted from the first try. --threads: N copies, each with 1/N of\n"
               "  the rate and connections on its own thread, pinned to the CPUs of LIST\n"
               "  (default: the allowed ones) in turn. Prints one JSON line.\n");
}

/* Parses a comma-separated CPU list into o->cpus; 0 or -EINVAL. */
static int
parse_cpus(struct lg_opts *o, const char *list)
{
    const char *p = list;
    char       *end;
    long        cpu;

    o->nb_cpus = 0;
    while (*p != '\0') {
        cpu = strtol(p, &end, 10);
        if (end == p || cpu < 0 || cpu >= CPU_SETSIZE || o->nb_cpus == LG_THREADS_MAX) {
            return -EINVAL;
        }
        o->cpus[o->nb_cpus++] = (int)cpu;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') {
            return -EINVAL;
        }
    }
    return o->nb_cpus > 0 ? 0 : -EINVAL;
}

static int
parse_args(struct lg *lg, struct lg_opts *o, int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    const char *path = "/";
    long        port = 0;
    int         opt;
    int         n;

    lg->duration_s = 5;
    lg->timeout_s = 1;
    lg->nb_conns = 256;
    lg->rng = 0x9e3779b97f4a7c15ULL;
    o->threads = 1;
    static const struct option longopts[] = {
            {"retries", required_argument, NULL, 'R'},
            {"retry-delay", required_argument, NULL, 'D'},
            {"threads", required_argument, NULL, 'T'},
            {"cpus", required_argument, NULL, 'U'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };

    while ((opt = getopt_long(argc, argv, "a:p:u:r:d:c:t:PCs:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'R':
            lg->max_retries = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'D':
            lg->retry_delay_s = strtod(optarg, NULL) / 1000.0;
            break;
        case 'T':
            o->threads = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'U':
            if (parse_cpus(o, optarg) < 0) {
                fprintf(stderr, "fp-loadgen: bad --cpus list %s\n", optarg);
                return -EINVAL;
            }
            break;
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = strtol(optarg, NULL, 10);
            break;
        case 'u':
            path = optarg;
            break;
        case 'r':
            lg->rate = strtod(optarg, NULL);
            break;
        case 'd':
            lg->duration_s = strtod(optarg, NULL);
            break;
        case 'c':
            lg->nb_conns = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            lg->timeout_s = strtod(optarg, NULL) / 1000.0;
            break;
        case 'P':
            lg->poisson = true;
            break;
        case 'C':
            lg->conn_per_req = true;
            break;
        case 's':
            lg->rng = strtoull(optarg, NULL, 0) | 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (port <= 0 || port > 65535 || lg->rate <= 0 || lg->duration_s <= 0 || lg->timeout_s <= 0 ||
        lg->nb_conns == 0 || lg->rate * lg->duration_s > 1e9 || lg->max_retries > 100 ||
        lg->retry_delay_s < 0 || o->threads == 0 || o->threads > LG_THREADS_MAX ||
        o->threads > lg->nb_conns) {
        usage(stderr);
        return -EINVAL;
    }
    lg->addr.sin_family = AF_INET;
    lg->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &lg->addr.sin_addr) != 1) {
        fprintf(stderr, "fp-loadgen: bad IPv4 address %s\n", addr);
        return -EINVAL;
    }
    n = snprintf(lg->req, sizeof(lg->req),
                 "GET %s HTTP/1.1\r\nHost: %s:%ld\r\nUser-Agent: fp-loadgen\r\n%s\r\n", path, addr,
                 port, lg->conn_per_req ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(lg->req)) {
        fprintf(stderr, "fp-loadgen: path too long\n");
        return -EINVAL;
    }
    lg->req_len = (size_t)n;
    return 0;
}

/* Startup only: every buffer the run needs, sized from the rate, duration and timeout. */
static int
alloc_all(struct lg *lg)
{
    uint32_t i;

    lg->conns = calloc(lg->nb_conns, sizeof(*lg->conns));
    lg->fifo_cap = (uint32_t)(lg->rate * lg->timeout_s * 1.5) + 1024;
    lg->fifo = calloc(lg->fifo_cap, sizeof(*lg->fifo));
    lg->delayed = calloc(lg->fifo_cap, sizeof(*lg->delayed));
    lg->lat_cap = (uint64_t)(lg->rate * lg->duration_s * 1.1) + 1024;
    lg->lat_us = calloc(lg->lat_cap, sizeof(double));
    lg->ref_us = calloc(lg->lat_cap, sizeof(double));
    if (lg->conns == NULL || lg->fifo == NULL || lg->delayed == NULL || lg->lat_us == NULL ||
        lg->ref_us == NULL) {
        return -ENOMEM;
    }
    for (i = lg->nb_conns; i > 0; i--) {
        struct lg_conn *c = &lg->conns[i - 1];

        c->lg = lg;
        c->fd = -1;
        ev_init(&c->io, conn_io_cb);
        c->io.data = c;
        ev_init(&c->timer, conn_timeout_cb);
        c->timer.data = c;
        c->next = lg->free;
        lg->free = c;
    }
    return 0;
}

static void
free_lg(struct lg *lg)
{
    if (lg == NULL) {
        return;
    }
    if (lg->loop != NULL) {
        ev_loop_destroy(lg->loop);
    }
    free(lg->conns);
    free(lg->fifo);
    free(lg->delayed);
    free(lg->lat_us);
    free(lg->ref_us);
    free(lg);
}

/* One copy's run: its own loop, pinned to its CPU. */
static void *
run_copy(void *arg)
{
    struct lg *lg = arg;
    cpu_set_t  set;

    if (lg->cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET(lg->cpu, &set);
        (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    lg->next_arrival = lg->start_s;
    ev_timer_init(&lg->arrival, arrival_cb, 0, 0);
    lg->arrival.data = lg;
    ev_timer_start(lg->loop, &lg->arrival);
    ev_timer_init(&lg->retry_timer, retry_cb, 0, 0);
    lg->retry_timer.data = lg;
    ev_timer_init(&lg->sweep, sweep_cb, LG_SWEEP_S, LG_SWEEP_S);
    lg->sweep.data = lg;
    ev_timer_start(lg->loop, &lg->sweep);
    ev_run(lg->loop, 0);
    return NULL;
}

/*
 * Copy i of n: the template's settings with 1/n of the rate and connections, its own random
 * stream and loop, and buffers sized for its share. NULL when out of memory.
 */
static struct lg *
make_copy(const struct lg *tmpl, const struct lg_opts *o, uint32_t i, const cpu_set_t *allowed)
{
    struct lg *lg = malloc(sizeof(*lg));
    uint32_t   n = o->threads;
    uint32_t   k = 0;
    int        cpu;

    if (lg == NULL) {
        return NULL;
    }
    memcpy(lg, tmpl, sizeof(*lg));
    lg->rate = tmpl->rate / n;
    lg->nb_conns = tmpl->nb_conns / n + (i < tmpl->nb_conns % n ? 1 : 0);
    lg->rng = (tmpl->rng ^ (0xbf58476d1ce4e5b9ULL * i)) | 1;
    lg->start_s = tmpl->start_s + (double)i / tmpl->rate;
    lg->cpu = -1;
    if (o->nb_cpus > 0) {
        lg->cpu = o->cpus[i % o->nb_cpus];
    } else if (n > 1) {
        /* The (i mod count)-th CPU this process may run on. */
        for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
            if (CPU_ISSET(cpu, allowed) && k++ == i % (uint32_t)CPU_COUNT(allowed)) {
                lg->cpu = cpu;
                break;
            }
        }
    }
    lg->loop = ev_loop_new(EVFLAG_AUTO);
    if (lg->loop == NULL || alloc_all(lg) < 0) {
        free_lg(lg);
        return NULL;
    }
    return lg;
}

/*
 * Sums the copies' counters into the first and merges their latencies, so that report()
 * prints one run. Returns 0 or -ENOMEM.
 */
static int
merge(struct lg **copies, uint32_t n, double rate)
{
    struct lg *m = copies[0];
    uint64_t  *sum = (uint64_t *)&m->st;
    uint64_t   lat = 0;
    uint64_t   ref = 0;
    double    *lat_us;
    double    *ref_us;
    uint32_t   i;
    size_t     f;

    /* Every field of struct lg_stats is a uint64_t counter. */
    for (i = 1; i < n; i++) {
        const uint64_t *add = (const uint64_t *)&copies[i]->st;

        for (f = 0; f < sizeof(m->st) / sizeof(uint64_t); f++) {
            sum[f] += add[f];
        }
    }
    for (i = 0; i < n; i++) {
        lat += copies[i]->lat_len;
        ref += copies[i]->ref_len;
    }
    lat_us = calloc(lat + 1, sizeof(double));
    ref_us = calloc(ref + 1, sizeof(double));
    if (lat_us == NULL || ref_us == NULL) {
        free(lat_us);
        free(ref_us);
        return -ENOMEM;
    }
    lat = 0;
    ref = 0;
    for (i = 0; i < n; i++) {
        memcpy(lat_us + lat, copies[i]->lat_us, copies[i]->lat_len * sizeof(double));
        memcpy(ref_us + ref, copies[i]->ref_us, copies[i]->ref_len * sizeof(double));
        lat += copies[i]->lat_len;
        ref += copies[i]->ref_len;
    }
    free(m->lat_us);
    free(m->ref_us);
    m->lat_us = lat_us;
    m->ref_us = ref_us;
    m->lat_len = lat;
    m->ref_len = ref;
    m->rate = rate;
    return 0;
}

int
main(int argc, char **argv)
{
    struct lg     *copies[LG_THREADS_MAX] = {NULL};
    pthread_t      tids[LG_THREADS_MAX];
    struct lg_opts o = {0};
    struct lg     *tmpl;
    cpu_set_t      allowed;
    uint32_t       started = 0;
    uint32_t       i;
    int            rc = 1;

    tmpl = calloc(1, sizeof(*tmpl));
    if (tmpl == NULL || parse_args(tmpl, &o, argc, argv) < 0) {
        goto out_free;
    }
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == -1) {
        CPU_SET(0, &allowed);
    }
    tmpl->start_s = ev_time();
    tmpl->t_end = tmpl->start_s + tmpl->duration_s;
    for (i = 0; i < o.threads; i++) {
        copies[i] = make_copy(tmpl, &o, i, &allowed);
        if (copies[i] == NULL) {
            fprintf(stderr, "fp-loadgen: out of memory or no event loop\n");
            goto out_free;
        }
    }
    for (i = 0; i < o.threads; i++) {
        if (pthread_create(&tids[i], NULL, run_copy, copies[i]) != 0) {
            fprintf(stderr, "fp-loadgen: cannot start thread %u\n", i);
            break;
        }
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    if (started < o.threads || merge(copies, o.threads, tmpl->rate) < 0) {
        goto out_free;
    }
    report(copies[0]);
    rc = 0;

out_free:
    for (i = 0; i < LG_THREADS_MAX; i++) {
        free_lg(copies[i]);
    }
    free(tmpl);
    return rc;
}
