/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The stats listener. Each client slot owns a read/write watcher, a deadline timer, a bounded
 * request buffer and a response buffer, all taken at start; a client moves from reading its
 * request head to writing the answer, then is closed. Nothing here blocks: a client that
 * sends nothing, or reads nothing, costs one slot until its deadline.
 */
#include "src/stats_http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ev.h>

#include "src/log.h"
#include "src/stats.h"

/* A scraper's request head is a few hundred bytes; more is refused with 431. */
#define REQ_MAX 4096

struct sclient {
    struct fp_stats_http *sh;
    ev_io                 io;
    ev_timer              timer;
    int                   fd; /* -1: the slot is free */
    size_t                req_len;
    char                  req[REQ_MAX];
    char                  head[256];
    size_t                head_len;
    char                 *body; /* body_size bytes, taken at start */
    size_t                body_len;
    size_t                sent; /* of head and body together */
};

struct fp_stats_http {
    struct ev_loop          *loop;
    const struct fp_workers *ws;
    int                      fd;
    ev_io                    accept_io;
    bool                     stopped; /* no longer accepting, for good */
    size_t                   body_size;
    struct sclient           clients[FP_STATS_CLIENTS];
};

static void
client_close(struct sclient *c)
{
    struct fp_stats_http *sh = c->sh;
    char                  drain[512];

    ev_io_stop(sh->loop, &c->io);
    ev_timer_stop(sh->loop, &c->timer);
    /* What the client sent past its head is read first, so that the close is not a reset
     * that could destroy the answer before the client reads it. */
    while (recv(c->fd, drain, sizeof(drain), 0) > 0) {
    }
    close(c->fd);
    c->fd = -1;
    if (!sh->stopped) {
        ev_io_start(sh->loop, &sh->accept_io); /* a slot is free again */
    }
}

/* Sends what is left of the answer. Returns true once it has all gone (or cannot). */
static bool
client_send(struct sclient *c)
{
    struct iovec iov[2];
    int          n = 0;
    ssize_t      r;

    for (;;) {
        n = 0;
        if (c->sent < c->head_len) {
            iov[n].iov_base = c->head + c->sent;
            iov[n++].iov_len = c->head_len - c->sent;
        }
        if (c->sent < c->head_len + c->body_len) {
            size_t boff = c->sent > c->head_len ? c->sent - c->head_len : 0;

            iov[n].iov_base = c->body + boff;
            iov[n++].iov_len = c->body_len - boff;
        }
        if (n == 0) {
            shutdown(c->fd, SHUT_WR);
            return true;
        }
        r = writev(c->fd, iov, n);
        if (r == -1) {
            return errno != EAGAIN && errno != EINTR;
        }
        c->sent += (size_t)r;
    }
}

static void
client_respond(struct sclient *c, int status, const char *reason, const char *ctype,
               const char *extra, bool head_only)
{
    size_t len = c->body_len;
    int    n;

    if (head_only) {
        c->body_len = 0;
    }
    n = snprintf(c->head, sizeof(c->head),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                 status, reason, ctype, len, extra);
    c->head_len = n > 0 && (size_t)n < sizeof(c->head) ? (size_t)n : 0;
    c->sent = 0;
    ev_io_stop(c->sh->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_WRITE);
    ev_io_start(c->sh->loop, &c->io);
    if (client_send(c)) {
        client_close(c);
    }
}

static void
client_error(struct sclient *c, int status, const char *reason, const char *extra, bool head_only)
{
    c->body_len = (size_t)snprintf(c->body, c->sh->body_size, "%s\n", reason);
    client_respond(c, status, reason, "text/plain; charset=utf-8", extra, head_only);
}

/*
 * Answers the request line in c->req (RFC 9112 §3: method SP target SP version). Only the
 * path counts: a query string is ignored, header fields are not looked at.
 */
static void
client_answer(struct sclient *c)
{
    const struct fp_workers *ws = c->sh->ws;
    char                     method[16];
    char                     target[512];
    char                     version[16];
    char                    *q;
    bool                     head_only;
    enum fp_stats_fmt        fmt;

    if (sscanf(c->req, "%15[A-Z] %511[^ \r\n] %15[^ \r\n]", method, target, version) != 3 ||
        (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0)) {
        client_error(c, 400, "Bad Request", "", false);
        return;
    }
    head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        client_error(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", false);
        return;
    }
    q = strchr(target, '?');
    if (q != NULL) {
        *q = '\0';
    }
    if (strcmp(target, "/metrics") == 0) {
        fmt = FP_STATS_PROMETHEUS;
    } else if (strcmp(target, "/stats") == 0) {
        fmt = FP_STATS_JSON;
    } else {
        client_error(c, 404, "Not Found", "", head_only);
        return;
    }
    c->body_len = fp_stats_format(ws, fmt, c->body, c->sh->body_size);
    if (c->body_len >= c->sh->body_size) {
        /* Cannot happen with fp_stats_bound(); answered rather than cut if it does. */
        fp_log(FP_LOG_ERR, "stats: the page (%zu bytes) does not fit its buffer", c->body_len);
        client_error(c, 500, "Internal Server Error", "", head_only);
        return;
    }
    client_respond(c, 200, "OK",
                   fmt == FP_STATS_PROMETHEUS ? "text/plain; version=0.0.4; charset=utf-8"
                                              : "application/json",
                   "", head_only);
}

static void
client_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sclient *c = w->data;
    ssize_t         n;

    if (revents & EV_WRITE) {
        if (client_send(c)) {
            client_close(c);
        }
        return;
    }
    n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len, 0);
    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        client_close(c); /* gone before a whole request */
        return;
    }
    c->req_len += (size_t)n;
    c->req[c->req_len] = '\0';
    if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL) {
        client_answer(c);
    } else if (c->req_len == sizeof(c->req) - 1) {
        client_error(c, 431, "Request Header Fields Too Large", "", false);
    }
}

static void
client_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sclient *c = w->data;

    fp_log(FP_LOG_WARNING, "stats: client closed after %d ms without %s",
           FP_STATS_CLIENT_TIMEOUT_MS, c->head_len == 0 ? "a whole request" : "reading");
    client_close(c);
}

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fp_stats_http *sh = w->data;
    struct sclient       *c = NULL;
    size_t                i;
    int                   fd;

    for (i = 0; i < FP_STATS_CLIENTS; i++) {
        if (sh->clients[i].fd == -1) {
            c = &sh->clients[i];
            break;
        }
    }
    if (c == NULL) {
        ev_io_stop(loop, &sh->accept_io); /* restarted when a slot frees */
        return;
    }
    fd = accept4(sh->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            fp_log(FP_LOG_WARNING, "stats: accept: %s", strerror(errno));
        }
        return;
    }
    c->fd = fd;
    c->req_len = 0;
    c->head_len = 0;
    c->body_len = 0;
    c->sent = 0;
    ev_io_set(&c->io, fd, EV_READ);
    ev_io_start(loop, &c->io);
    ev_timer_set(&c->timer, FP_STATS_CLIENT_TIMEOUT_MS / 1000.0, 0);
    ev_timer_start(loop, &c->timer);
}

struct fp_stats_http *
fp_stats_http_open(struct ev_loop *loop, const struct fp_workers *ws, const struct fp_addr *addr,
                   char *err, size_t errlen)
{
    struct fp_stats_http *sh;
    char                  text[FP_ADDR_STRLEN];
    size_t                i;
    int                   one = 1;

    sh = calloc(1, sizeof(*sh));
    if (sh == NULL) {
        snprintf(err, errlen, "stats: out of memory");
        return NULL;
    }
    sh->loop = loop;
    sh->ws = ws;
    for (i = 0; i < FP_STATS_CLIENTS; i++) {
        struct sclient *c = &sh->clients[i];

        c->sh = sh;
        c->fd = -1;
        ev_init(&c->io, client_on_io);
        c->io.data = c;
        ev_init(&c->timer, client_on_timeout);
        c->timer.data = c;
    }
    sh->fd = socket(addr->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sh->fd == -1) {
        snprintf(err, errlen, "stats: socket: %s", strerror(errno));
        goto err_free;
    }
    setsockopt(sh->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(sh->fd, &addr->u.sa, addr->len) == -1 || listen(sh->fd, 16) == -1) {
        snprintf(err, errlen, "stats: cannot listen on %s: %s",
                 fp_addr_format(addr, text, sizeof(text)), strerror(errno));
        goto err_close;
    }
    sh->body_size = fp_stats_bound(ws);
    for (i = 0; i < FP_STATS_CLIENTS; i++) {
        sh->clients[i].body = malloc(sh->body_size);
        if (sh->clients[i].body == NULL) {
            snprintf(err, errlen, "stats: out of memory (%zu bytes per client)", sh->body_size);
            goto err_close;
        }
    }
    ev_io_init(&sh->accept_io, on_accept, sh->fd, EV_READ);
    sh->accept_io.data = sh;
    ev_io_start(loop, &sh->accept_io);
    return sh;

err_close:
    close(sh->fd);
err_free:
    for (i = 0; i < FP_STATS_CLIENTS; i++) {
        free(sh->clients[i].body);
    }
    free(sh);
    return NULL;
}

void
fp_stats_http_stop(struct fp_stats_http *sh)
{
    if (sh != NULL) {
        sh->stopped = true;
        ev_io_stop(sh->loop, &sh->accept_io);
    }
}

void
fp_stats_http_close(struct fp_stats_http *sh)
{
    size_t i;

    if (sh == NULL) {
        return;
    }
    sh->stopped = true;
    ev_io_stop(sh->loop, &sh->accept_io);
    for (i = 0; i < FP_STATS_CLIENTS; i++) {
        if (sh->clients[i].fd != -1) {
            client_close(&sh->clients[i]);
        }
        free(sh->clients[i].body);
    }
    close(sh->fd);
    free(sh);
}
