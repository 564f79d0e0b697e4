/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fp-slow-origin: the slow HTTP/1.1 origin of bench/run --overload, on libev.
 *
 * It models a server with a fixed number of concurrent slots (default 32), each busy for a
 * fixed service time per request (default 10 ms), so its capacity is slots / service time
 * (3200 requests/s by default) whatever the CPU. Requests beyond the free slots wait in a FIFO
 * of bounded length; past it they get an immediate 503 (counted). Every request gets the same
 * body (default 1 KiB) with Content-Length, on a keep-alive connection unless the client asks
 * for close or speaks HTTP/1.0. Request bodies are not supported (400 and close).
 *
 * One request per connection is handled at a time (HTTP/1.1 without pipelining). A request
 * whose client closes while it waits in the FIFO is removed; one already in a slot keeps the
 * slot until its service time ends, as a real application thread would. Connections and slots are
 * allocated at start; SIGTERM or SIGINT stop it and print counters on stderr.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#define SO_RBUF       4096
#define SO_ACCEPT_MAX 64

enum so_conn_state {
    SO_CONN_FREE = 0,
    SO_CONN_READING,
    SO_CONN_WAITING, /* in the FIFO */
    SO_CONN_SERVING, /* holds a slot */
    SO_CONN_WRITING,
};

struct so;

struct so_conn {
    struct so         *so;
    ev_io              io;
    int                fd;
    enum so_conn_state state;
    bool               close_after;
    const char        *out; /* response being written */
    size_t             out_len;
    size_t             out_sent;
    size_t             rlen;
    char               rbuf[SO_RBUF];
    struct so_conn    *next; /* FIFO or free list */
    struct so_conn    *prev; /* FIFO */
};

struct so_slot {
    struct so      *so;
    ev_timer        timer;
    struct so_conn *conn;
    struct so_slot *next_free;
};

struct so_stats {
    uint64_t accepted;
    uint64_t refused_pool_empty;
    uint64_t served;
    uint64_t rejected_503; /* FIFO full */
    uint64_t bad_requests;
    uint64_t abandoned; /* client closed while its request waited in the FIFO */
    uint64_t write_errors;
};

struct so {
    struct ev_loop *loop;
    int             lfd;
    ev_io           accept_io;
    ev_signal       sigterm;
    ev_signal       sigint;
    double          service_s;
    struct so_conn *conns;
    uint32_t        nb_conns;
    struct so_conn *free_conns;
    struct so_slot *slots;
    uint32_t        nb_slots;
    struct so_slot *free_slots;
    struct so_conn *q_head;
    struct so_conn *q_tail;
    uint32_t        q_len;
    uint32_t        q_cap;
    char           *resp_ka;
    size_t          resp_ka_len;
    char           *resp_close;
    size_t          resp_close_len;
    struct so_stats st;
};

static const char RESP_503[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
static const char RESP_400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_try_request(struct so *so, struct so_conn *c);

static void
queue_remove(struct so *so, struct so_conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        so->q_head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        so->q_tail = c->prev;
    }
    c->next = NULL;
    c->prev = NULL;
    so->q_len--;
}

static void
conn_close(struct so *so, struct so_conn *c)
{
    ev_io_stop(so->loop, &c->io);
    close(c->fd);
    c->fd = -1;
    c->state = SO_CONN_FREE;
    c->next = so->free_conns;
    so->free_conns = c;
}

static void
conn_watch(struct so *so, struct so_conn *c, int events)
{
    ev_io_stop(so->loop, &c->io);
    if (events != 0) {
        ev_io_set(&c->io, c->fd, events);
        ev_io_start(so->loop, &c->io);
    }
}

static void
conn_write(struct so *so, struct so_conn *c)
{
    ssize_t n;

    while (c->out_sent < c->out_len) {
        n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_watch(so, c, EV_WRITE);
                return;
            }
            so->st.write_errors++;
            conn_close(so, c);
            return;
        }
        c->out_sent += (size_t)n;
    }
    if (c->close_after) {
        conn_close(so, c);
        return;
    }
    c->state = SO_CONN_READING;
    conn_watch(so, c, EV_READ);
    conn_try_request(so, c); /* a pipelined request may already be buffered */
}

static void
conn_respond(struct so *so, struct so_conn *c, const char *out, size_t len)
{
    c->state = SO_CONN_WRITING;
    c->out = out;
    c->out_len = len;
    c->out_sent = 0;
    conn_write(so, c);
}

static void
slot_start(struct so *so, struct so_slot *s, struct so_conn *c)
{
    s->conn = c;
    c->state = SO_CONN_SERVING;
    ev_timer_set(&s->timer, so->service_s, 0);
    ev_timer_start(so->loop, &s->timer);
}

static void
slot_done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct so_slot *s = w->data;
    struct so      *so = s->so;
    struct so_conn *c = s->conn;

    (void)loop;
    (void)revents;
    s->conn = NULL;
    so->st.served++;
    if (so->q_head != NULL) {
        struct so_conn *next = so->q_head;

        queue_remove(so, next);
        conn_watch(so, next, 0);
        slot_start(so, s, next);
    } else {
        s->next_free = so->free_slots;
        so->free_slots = s;
    }
    if (c->close_after) {
        conn_respond(so, c, so->resp_close, so->resp_close_len);
    } else {
        conn_respond(so, c, so->resp_ka, so->resp_ka_len);
    }
}

/* A complete request head: take a slot, else wait in the FIFO, else 503. */
static void
conn_admit(struct so *so, struct so_conn *c)
{
    struct so_slot *s = so->free_slots;

    conn_watch(so, c, 0);
    if (s != NULL) {
        so->free_slots = s->next_free;
        slot_start(so, s, c);
        return;
    }
    if (so->q_len >= so->q_cap) {
        so->st.rejected_503++;
        c->close_after = true;
        conn_respond(so, c, RESP_503, sizeof(RESP_503) - 1);
        return;
    }
    /* Keep reading while it waits, to see the client leave (EOF) and drop its request. */
    c->state = SO_CONN_WAITING;
    c->next = NULL;
    c->prev = so->q_tail;
    if (so->q_tail != NULL) {
        so->q_tail->next = c;
    } else {
        so->q_head = c;
    }
    so->q_tail = c;
    so->q_len++;
    conn_watch(so, c, EV_READ);
}

static void
conn_read_waiting(struct so *so, struct so_conn *c)
{
    ssize_t n;

    if (c->rlen == sizeof(c->rbuf)) {
        conn_watch(so, c, 0); /* pipelined data fills the buffer: stop watching until served */
        return;
    }
    n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (n <= 0) {
        so->st.abandoned++;
        queue_remove(so, c);
        conn_close(so, c);
        return;
    }
    c->rlen += (size_t)n;
}

static bool
head_has(const char *h, size_t len, const char *name, const char *value)
{
    const char *p = h;
    const char *end = h + len;
    size_t      nlen = strlen(name);

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));

        if (eol == NULL) {
            return false;
        }
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 &&
            (value == NULL ||
             memmem(p + nlen, (size_t)(eol - p) - nlen, value, strlen(value)) != NULL)) {
            return true;
        }
        p = eol + 1;
    }
    return false;
}

static void
conn_try_request(struct so *so, struct so_conn *c)
{
    char  *eoh;
    size_t hlen;

    eoh = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (eoh == NULL) {
        if (c->rlen == sizeof(c->rbuf)) {
            so->st.bad_requests++;
            c->close_after = true;
            conn_respond(so, c, RESP_400, sizeof(RESP_400) - 1);
        }
        return;
    }
    hlen = (size_t)(eoh - c->rbuf) + 4;
    if (head_has(c->rbuf, hlen, "content-length:", NULL) ||
        head_has(c->rbuf, hlen, "transfer-encoding:", NULL)) {
        so->st.bad_requests++;
        c->close_after = true;
        conn_respond(so, c, RESP_400, sizeof(RESP_400) - 1);
        return;
    }
    /* RFC 9112 §9.3: HTTP/1.0 without keep-alive, or "Connection: close", ends the connection. */
    c->close_after = head_has(c->rbuf, hlen, "connection:", "close") ||
                     memmem(c->rbuf, hlen, " HTTP/1.0\r\n", 11) != NULL;
    memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
    c->rlen -= hlen;
    conn_admit(so, c);
}

static void
conn_read(struct so *so, struct so_conn *c)
{
    ssize_t n;

    n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (n <= 0) {
        conn_close(so, c);
        return;
    }
    c->rlen += (size_t)n;
    conn_try_request(so, c);
}

static void
conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct so_conn *c = w->data;

    (void)loop;
    (void)revents;
    if (c->state == SO_CONN_WRITING) {
        conn_write(c->so, c);
    } else if (c->state == SO_CONN_READING) {
        conn_read(c->so, c);
    } else if (c->state == SO_CONN_WAITING) {
        conn_read_waiting(c->so, c);
    }
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct so      *so = w->data;
    struct so_conn *c;
    int             one = 1;
    int             fd;
    int             i;

    (void)loop;
    (void)revents;
    for (i = 0; i < SO_ACCEPT_MAX; i++) {
        fd = accept4(so->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            return;
        }
        c = so->free_conns;
        if (c == NULL) {
            so->st.refused_pool_empty++;
            close(fd);
            continue;
        }
        so->free_conns = c->next;
        so->st.accepted++;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->rlen = 0;
        c->next = NULL;
        c->close_after = false;
        c->state = SO_CONN_READING;
        ev_io_set(&c->io, fd, EV_READ);
        ev_io_start(so->loop, &c->io);
    }
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static char *
make_response(size_t body, bool close_conn, size_t *len)
{
    char  *r;
    int    n;
    size_t cap = body + 256;

    r = malloc(cap);
    if (r == NULL) {
        return NULL;
    }
    n = snprintf(r, cap,
                 "HTTP/1.1 200 OK\r\nServer: fp-slow-origin\r\nContent-Type: "
                 "application/octet-stream\r\nContent-Length: %zu\r\n%s\r\n",
                 body, close_conn ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= cap - body) {
        free(r);
        return NULL;
    }
    memset(r + n, 'x', body);
    *len = (size_t)n + body;
    return r;
}

static int
listen_on(const char *addr, long port)
{
    struct sockaddr_in sin;
    int                one = 1;
    int                fd;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "fp-slow-origin: bad IPv4 address %s\n", addr);
        return -EINVAL;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -errno;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(fd, 4096) == -1) {
        int rc = -errno;

        fprintf(stderr, "fp-slow-origin: cannot listen on %s:%ld: %s\n", addr, port,
                strerror(errno));
        close(fd);
        return rc;
    }
    return fd;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: fp-slow-origin -p PORT [-a ADDR] [-s SLOTS] [-m SERVICE_MS] [-b BODY]\n"
               "                      [-q QUEUE] [-n CONNS]\n"
               "  HTTP/1.1 origin with SLOTS (32) concurrent requests of SERVICE_MS (10) each,\n"
               "  a FIFO of QUEUE (4096) waiting requests (then 503), BODY (1024) bytes per\n"
               "  response and at most CONNS (8192) connections.\n");
}

/* Startup only: connections and slots, all allocated before the first accept. */
static int
alloc_all(struct so *so, size_t body)
{
    uint32_t i;

    so->conns = calloc(so->nb_conns, sizeof(*so->conns));
    so->slots = calloc(so->nb_slots, sizeof(*so->slots));
    so->resp_ka = make_response(body, false, &so->resp_ka_len);
    so->resp_close = make_response(body, true, &so->resp_close_len);
    if (so->conns == NULL || so->slots == NULL || so->resp_ka == NULL || so->resp_close == NULL) {
        return -ENOMEM;
    }
    for (i = so->nb_conns; i > 0; i--) {
        struct so_conn *c = &so->conns[i - 1];

        c->so = so;
        c->fd = -1;
        ev_init(&c->io, conn_io_cb);
        c->io.data = c;
        c->next = so->free_conns;
        so->free_conns = c;
    }
    for (i = so->nb_slots; i > 0; i--) {
        struct so_slot *s = &so->slots[i - 1];

        s->so = so;
        ev_init(&s->timer, slot_done_cb);
        s->timer.data = s;
        s->next_free = so->free_slots;
        so->free_slots = s;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct so  *so;
    const char *addr = "127.0.0.1";
    long        port = 0;
    size_t      body = 1024;
    int         rc = 1;
    int         opt;

    so = calloc(1, sizeof(*so));
    if (so == NULL) {
        return 1;
    }
    so->lfd = -1;
    so->nb_slots = 32;
    so->service_s = 0.010;
    so->q_cap = 4096;
    so->nb_conns = 8192;
    while ((opt = getopt(argc, argv, "a:p:s:m:b:q:n:h")) != -1) {
        switch (opt) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            port = strtol(optarg, NULL, 10);
            break;
        case 's':
            so->nb_slots = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'm':
            so->service_s = strtod(optarg, NULL) / 1000.0;
            break;
        case 'b':
            body = strtoul(optarg, NULL, 10);
            break;
        case 'q':
            so->q_cap = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            so->nb_conns = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out_free;
        default:
            usage(stderr);
            goto out_free;
        }
    }
    if (port <= 0 || port > 65535 || so->nb_slots == 0 || so->service_s < 0 || so->nb_conns == 0 ||
        body > (64u << 20)) {
        usage(stderr);
        goto out_free;
    }
    if (alloc_all(so, body) < 0) {
        fprintf(stderr, "fp-slow-origin: out of memory\n");
        goto out_free;
    }
    so->lfd = listen_on(addr, port);
    if (so->lfd < 0) {
        goto out_free;
    }
    so->loop = ev_default_loop(EVFLAG_AUTO);
    if (so->loop == NULL) {
        fprintf(stderr, "fp-slow-origin: cannot create the event loop\n");
        goto out_free;
    }
    signal(SIGPIPE, SIG_IGN);
    ev_io_init(&so->accept_io, accept_cb, so->lfd, EV_READ);
    so->accept_io.data = so;
    ev_io_start(so->loop, &so->accept_io);
    ev_signal_init(&so->sigterm, signal_cb, SIGTERM);
    ev_signal_start(so->loop, &so->sigterm);
    ev_signal_init(&so->sigint, signal_cb, SIGINT);
    ev_signal_start(so->loop, &so->sigint);
    ev_run(so->loop, 0);
    fprintf(stderr,
            "fp-slow-origin: accepted %llu refused_pool_empty %llu served %llu "
            "rejected_503 %llu abandoned %llu bad_requests %llu write_errors %llu\n",
            (unsigned long long)so->st.accepted, (unsigned long long)so->st.refused_pool_empty,
            (unsigned long long)so->st.served, (unsigned long long)so->st.rejected_503,
            (unsigned long long)so->st.abandoned, (unsigned long long)so->st.bad_requests,
            (unsigned long long)so->st.write_errors);
    rc = 0;

out_free:
    if (so->lfd >= 0) {
        close(so->lfd);
    }
    free(so->conns);
    free(so->slots);
    free(so->resp_ka);
    free(so->resp_close);
    free(so);
    return rc;
}
