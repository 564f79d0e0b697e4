/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kernel sockets backend: one libev loop per worker, non-blocking sockets, level-triggered
 * readiness. Each instance owns its loop, its connection pool and its listeners; nothing here
 * is shared between workers, so there are no locks. The listening sockets come from the
 * reuseport group that net/sock.c opens in the main thread before the workers start.
 */
#include "net/io_kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ev.h>

#include "net/debug.h"
#include "net/pool.h"
#include "net/sock.h"

/* How many connections one listener readiness event may accept: a burst, so one busy
 * listener cannot starve established connections of the same loop iteration. */
#define KIO_ACCEPT_BURST 16

/*
 * splice(2) (global.maxpipes): a connection read with FP_RECV_OPAQUE moves its bytes into a
 * pipe of its own (socket -> pipe) and lends them as segments with data == NULL; send_segs
 * moves them on (pipe -> socket). The bytes never enter user space. A pipe holds at most
 * KPIPE_BYTES, which is also what a session's queue holds (FP_SEGQ_MAX_BYTES), in a pipe of
 * KPIPE_SIZE so that its 64 page slots do not run out before its bytes do. Pipes are made on
 * first use and kept for reuse while empty; one that still holds bytes when its connection
 * and segments are gone is closed.
 */
#define KPIPE_BYTES FP_SEGQ_MAX_BYTES
#define KPIPE_SIZE  (256 * 1024)
/* A connection splices once one read found this much waiting (HAProxy's splice-auto): for
 * small exchanges two splices cost more than a read and a write (bench: about 5 % more CPU per
 * 1 KiB request, 20 % less per 100 KiB one). */
#define KPIPE_MIN_READ FP_IO_SEG_SIZE

struct kconn;

struct kpipe {
    int           fd[2];  /* read end, write end; -1 until made */
    uint32_t      bytes;  /* in the pipe: lent, not spliced out yet */
    uint32_t      segs;   /* segments lent and not yet sent or freed */
    struct kconn *owner;  /* the connection that fills it; NULL once it closed */
};

struct kio {
    struct fp_io    io;
    struct ev_loop *loop;
    struct fp_pool  conns;
    struct fp_pool  pipes; /* struct kpipe; count 0 when splice is off */
    uint32_t        max_pipes;
    ev_async        wake;
    ev_prepare      flush;
    /* Counters (struct fp_io_counter). */
    uint64_t splice_in;     /* bytes moved socket -> pipe */
    uint64_t splice_out;    /* bytes moved pipe -> socket */
    uint64_t splice_nopipe; /* opaque reads that copied: every pipe in use, or pipe() failed */
    uint64_t pipes_open;    /* gauge: pipes made and not closed */
    uint64_t collect_waits; /* loop iterations that gathered events before polling */
    /* global.io_collect: while busy, the least time between two polls (0 = off). */
    ev_tstamp collect;
    ev_tstamp poll_at; /* when the next poll starts, as estimated at the end of the burst */
};

struct kconn {
    struct fp_conn c;
    struct kio    *k;
    int            fd;
    unsigned       want;
    unsigned       connecting;
    struct kpipe  *pipe; /* splice: this connection's, or NULL */
    unsigned       bulk; /* splice: a read found at least KPIPE_MIN_READ bytes waiting */
    ev_io          rio;
    ev_io          wio;
};

struct klistener {
    struct fp_listener l;
    struct kio        *k;
    int                fd;
    ev_io              w;
};

_Static_assert(sizeof(ev_timer) <= sizeof(((struct fp_timer *)0)->priv),
               "fp_timer.priv too small for ev_timer");

static inline struct kio *
kio_of(struct fp_io *io)
{
    return (struct kio *)io;
}

static void
kconn_set_want(struct kconn *kc)
{
    struct ev_loop *loop = kc->k->loop;
    unsigned        w = kc->want;

    if (kc->connecting) {
        w |= FP_EV_WRITE;
    }
    if ((w & FP_EV_READ) && !ev_is_active(&kc->rio)) {
        ev_io_start(loop, &kc->rio);
    } else if (!(w & FP_EV_READ) && ev_is_active(&kc->rio)) {
        ev_io_stop(loop, &kc->rio);
    }
    if ((w & FP_EV_WRITE) && !ev_is_active(&kc->wio)) {
        ev_io_start(loop, &kc->wio);
    } else if (!(w & FP_EV_WRITE) && ev_is_active(&kc->wio)) {
        ev_io_stop(loop, &kc->wio);
    }
}

static void
kconn_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct kconn *kc = w->data;

    kc->c.handler(&kc->c, FP_EV_READ);
}

static void
kconn_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    struct kconn *kc = w->data;
    int           soerr = 0;
    socklen_t     len = sizeof(soerr);

    if (kc->connecting) {
        kc->connecting = 0;
        if (getsockopt(kc->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1) {
            soerr = errno;
        }
        if (soerr != 0) {
            kc->c.err = -soerr;
            kc->want = 0;
            kconn_set_want(kc);
            kc->c.handler(&kc->c, FP_EV_ERROR);
            return;
        }
        kconn_set_want(kc);
    }
    kc->c.handler(&kc->c, FP_EV_WRITE);
}

static struct kconn *
kconn_get(struct kio *k, int fd)
{
    struct kconn *kc = fp_pool_get(&k->conns);

    if (kc == NULL) {
        k->io.conn_pool_empty++;
        return NULL;
    }
    memset(kc, 0, sizeof(*kc));
    kc->c.io = &k->io;
    kc->k = k;
    kc->fd = fd;
    ev_io_init(&kc->rio, kconn_on_read, fd, EV_READ);
    ev_io_init(&kc->wio, kconn_on_write, fd, EV_WRITE);
    kc->rio.data = kc;
    kc->wio.data = kc;
    fp_sock_set_nodelay(fd);
    return kc;
}

static void
klistener_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct klistener *kl = w->data;
    struct kio       *k = kl->k;
    struct kconn     *kc;
    struct fp_addr    peer;
    int               fd;
    int               i;

    for (i = 0; i < KIO_ACCEPT_BURST; i++) {
        peer.len = sizeof(peer.u);
        fd = accept4(kl->fd, &peer.u.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (!fp_sock_would_block(errno) && errno != ECONNABORTED) {
                k->io.accept_errors++;
            }
            return;
        }
        kc = kconn_get(k, fd);
        if (kc == NULL) {
            close(fd);
            continue;
        }
        kc->c.peer = peer;
        kl->l.on_accept(&kl->l, &kc->c);
    }
}

static int
kio_listen(struct fp_io *io, const struct fp_listen_conf *lc, fp_accept_fn on_accept, void *data,
           struct fp_listener **out)
{
    struct kio       *k = kio_of(io);
    struct klistener *kl;

    if (lc->fd < 0) {
        return -EINVAL;
    }
    kl = calloc(1, sizeof(*kl));
    if (kl == NULL) {
        return -ENOMEM;
    }
    kl->l.io = io;
    kl->l.on_accept = on_accept;
    kl->l.data = data;
    kl->l.addr = lc->addr;
    kl->k = k;
    kl->fd = lc->fd;
    ev_io_init(&kl->w, klistener_on_accept, kl->fd, EV_READ);
    /* Established connections first: libev runs pending watchers by priority, so a loop
     * iteration serves every ready connection before it accepts new ones. */
    ev_set_priority(&kl->w, EV_MINPRI);
    kl->w.data = kl;
    ev_io_start(k->loop, &kl->w);
    *out = &kl->l;
    return 0;
}

static void
kio_listener_pause(struct fp_listener *l, int paused)
{
    struct klistener *kl = (struct klistener *)l;

    if (paused) {
        ev_io_stop(kl->k->loop, &kl->w);
    } else {
        ev_io_start(kl->k->loop, &kl->w);
    }
}

static void
kio_listener_close(struct fp_listener *l)
{
    struct klistener *kl = (struct klistener *)l;

    ev_io_stop(kl->k->loop, &kl->w);
    close(kl->fd);
    free(kl);
}

static int
kio_listener_pending(struct fp_listener *l)
{
    struct klistener *kl = (struct klistener *)l;

    return fp_sock_accept_queue_len(kl->fd);
}

static unsigned
kio_listener_shed(struct fp_listener *l, const void *msg, size_t len, unsigned max)
{
    struct klistener *kl = (struct klistener *)l;

    return fp_sock_shed(kl->fd, msg, len, max);
}

static int
kio_connect(struct fp_io *io, const struct fp_addr *to, struct fp_conn **out)
{
    struct kio   *k = kio_of(io);
    struct kconn *kc;
    int           fd;
    int           rc;

    fd = fp_sock_open(to);
    if (fd < 0) {
        return fd;
    }
    kc = kconn_get(k, fd);
    if (kc == NULL) {
        close(fd);
        return -ENOBUFS;
    }
    kc->c.peer = *to;
    /* Connections we open (to servers) before accepted ones: a server's answer frees a
     * server slot, and under overload a loop iteration holds many client requests; served
     * first, the slot goes back to work at once instead of idling through the iteration. */
    ev_set_priority(&kc->rio, EV_MAXPRI);
    ev_set_priority(&kc->wio, EV_MAXPRI);
    if (connect(fd, &to->u.sa, to->len) == -1 && errno != EINPROGRESS) {
        rc = -errno;
        goto err_put;
    }
    kc->connecting = 1;
    kconn_set_want(kc);
    *out = &kc->c;
    return 0;

err_put:
    close(fd);
    fp_pool_put(&k->conns, kc);
    return rc;
}

static void
kio_want(struct fp_conn *c, unsigned events)
{
    struct kconn *kc = (struct kconn *)c;

    kc->want = events & (FP_EV_READ | FP_EV_WRITE);
    kconn_set_want(kc);
}

/* After a read or send on c failed (errno set): -EAGAIN when it only would block, else the
 * error, kept in c->err (the connection is dead, but still needs close). */
static ssize_t
kconn_failed(struct fp_conn *c)
{
    if (fp_sock_would_block(errno)) {
        return -EAGAIN;
    }
    c->err = -errno;
    return -errno;
}

static ssize_t
kio_recv(struct fp_conn *c, struct fp_buf *b)
{
    struct kconn *kc = (struct kconn *)c;
    ssize_t       n;

    if (fp_buf_room(b) == 0) {
        return -ENOBUFS;
    }
    n = read(kc->fd, b->data + b->tail, fp_buf_room(b));
    if (n == -1) {
        return kconn_failed(c);
    }
    b->tail += (uint32_t)n;
    return n;
}

/* Buffers per readv at most (net/io.c gives four: a direction's read-ahead bound). */
#define KIO_RECVV_MAX 8

static ssize_t
kio_recvv(struct fp_conn *c, struct fp_buf *bufs, unsigned n)
{
    struct kconn *kc = (struct kconn *)c;
    struct iovec  iov[KIO_RECVV_MAX];
    size_t        left;
    unsigned      i;
    uint32_t      take;
    ssize_t       rc;

    if (n == 0) {
        return -EINVAL;
    }
    if (n > KIO_RECVV_MAX) {
        n = KIO_RECVV_MAX;
    }
    for (i = 0; i < n; i++) {
        iov[i].iov_base = bufs[i].data + bufs[i].tail;
        iov[i].iov_len = fp_buf_room(&bufs[i]);
    }
    rc = readv(kc->fd, iov, (int)n);
    if (rc == -1) {
        return kconn_failed(c);
    }
    left = (size_t)rc;
    for (i = 0; i < n && left > 0; i++) {
        take = left < iov[i].iov_len ? (uint32_t)left : (uint32_t)iov[i].iov_len;
        bufs[i].tail += take;
        left -= take;
    }
    return rc;
}

/* The socket flags of a send with flags FP_SEND_*. */
static int
send_flags(unsigned flags)
{
    return MSG_NOSIGNAL | MSG_DONTWAIT | ((flags & FP_SEND_MORE) ? MSG_MORE : 0);
}

static ssize_t
kio_send(struct fp_conn *c, struct fp_buf *b, unsigned flags)
{
    struct kconn *kc = (struct kconn *)c;
    ssize_t       n;

    if (fp_buf_empty(b)) {
        return 0;
    }
    n = send(kc->fd, b->data + b->head, fp_buf_len(b), send_flags(flags));
    if (n == -1) {
        return kconn_failed(c);
    }
    fp_buf_consume(b, (uint32_t)n);
    return n;
}

static ssize_t
kio_sendv(struct fp_conn *c, const struct fp_slice *slices, unsigned n, unsigned flags)
{
    struct kconn *kc = (struct kconn *)c;
    struct iovec  iov[8];
    struct msghdr mh;
    unsigned      i;
    ssize_t       rc;

    if (n > 8) {
        n = 8;
    }
    for (i = 0; i < n; i++) {
        iov[i].iov_base = (void *)slices[i].data;
        iov[i].iov_len = slices[i].len;
    }
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = n;
    rc = sendmsg(kc->fd, &mh, send_flags(flags));
    if (rc == -1) {
        return kconn_failed(c);
    }
    return rc;
}

/* ---- splice(2) through per-connection pipes (see struct kpipe) ---- */

/* A pipe for c, made on first use; NULL (counted) when none is free or pipe() fails. */
static struct kpipe *
kpipe_get(struct kio *k)
{
    struct kpipe *kp = fp_pool_get(&k->pipes);

    if (kp == NULL) {
        return NULL;
    }
    if (kp->fd[0] < 0) {
        if (pipe2(kp->fd, O_NONBLOCK | O_CLOEXEC) != 0) {
            kp->fd[0] = -1;
            kp->fd[1] = -1;
            fp_pool_put(&k->pipes, kp);
            return NULL;
        }
        /* Best effort: at the default 64 KiB, page slots could run out before bytes do. */
        (void)fcntl(kp->fd[1], F_SETPIPE_SZ, KPIPE_SIZE);
        k->pipes_open++;
    }
    kp->bytes = 0;
    kp->segs = 0;
    return kp;
}

/* Returns kp to the pool once no segment needs it and its connection is gone, or once it is
 * empty: a connection holds a pipe only while bytes are in it (as HAProxy does), so a few pipes
 * serve many keep-alive connections. A pipe that still holds bytes nobody will read is closed
 * rather than reused. */
static void
kpipe_maybe_put(struct kio *k, struct kpipe *kp)
{
    if (kp->segs != 0) {
        return;
    }
    if (kp->owner != NULL) {
        if (kp->bytes != 0) {
            return;
        }
        kp->owner->pipe = NULL;
        kp->owner = NULL;
    }
    if (kp->bytes != 0) {
        close(kp->fd[0]);
        close(kp->fd[1]);
        kp->fd[0] = -1;
        kp->fd[1] = -1;
        kp->bytes = 0;
        k->pipes_open--;
    }
    fp_pool_put(&k->pipes, kp);
}

static ssize_t
kio_recv_segs(struct fp_conn *c, struct fp_seg *segs, unsigned max, uint32_t max_bytes,
              unsigned flags)
{
    struct kconn *kc = (struct kconn *)c;
    struct kio   *k = kc->k;
    struct kpipe *kp = kc->pipe;
    uint32_t      room;
    ssize_t       n;

    if ((flags & FP_RECV_OPAQUE) == 0 || k->max_pipes == 0 || max == 0) {
        return fp_io_generic_recv_segs(c, segs, max, max_bytes, flags);
    }
    if (!kc->bulk) {
        n = fp_io_generic_recv_segs(c, segs, max, max_bytes, flags);
        if (n > 1 || (n == 1 && segs[0].len >= KPIPE_MIN_READ)) {
            kc->bulk = 1; /* the next reads splice */
        }
        return n;
    }
    if (kp == NULL) {
        kp = kpipe_get(k);
        if (kp == NULL) {
            k->splice_nopipe++;
            return fp_io_generic_recv_segs(c, segs, max, max_bytes, flags);
        }
        kp->owner = kc;
        kc->pipe = kp;
    }
    room = KPIPE_BYTES - kp->bytes;
    if (max_bytes < room) {
        room = max_bytes;
    }
    if (room == 0) {
        return -ENOBUFS;
    }
    n = splice(kc->fd, NULL, kp->fd[1], NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        segs[0].data = NULL;
        segs[0].len = (uint32_t)n;
        segs[0].ref = kp;
        kp->bytes += (uint32_t)n;
        kp->segs++;
        k->splice_in += (uint64_t)n;
        return 1;
    }
    if (n == 0) {
        return 0;
    }
    if (fp_sock_would_block(errno)) {
        /* The socket is empty, or the pipe has no slot left for what it holds: callers treat
         * both alike (wait, send what is held), so no syscall is spent telling them apart. */
        return -EAGAIN;
    }
    c->err = -errno;
    return -errno;
}

static ssize_t
kio_send_segs(struct fp_conn *c, const struct fp_seg *segs, unsigned n, unsigned flags)
{
    struct kconn *kc = (struct kconn *)c;
    struct kio   *k = kc->k;
    struct kpipe *kp;
    ssize_t       total = 0;
    ssize_t       r;
    uint32_t      run;
    unsigned      i = 0;
    unsigned      j;
    unsigned      more;

    while (i < n) {
        if (segs[i].data != NULL) {
            /* A run of segments in memory: one gathered send. */
            run = 0;
            for (j = i; j < n && segs[j].data != NULL; j++) {
                run += segs[j].len;
            }
            more = j < n ? FP_SEND_MORE : 0;
            r = fp_io_generic_send_segs(c, segs + i, j - i, flags | more);
            if (r < 0) {
                return total > 0 ? total : r;
            }
            total += r;
            if ((uint32_t)r < run) {
                return total;
            }
            i = j;
            continue;
        }
        kp = segs[i].ref;
        more = (i + 1 < n || (flags & FP_SEND_MORE) != 0) ? SPLICE_F_MORE : 0;
        r = splice(kp->fd[0], NULL, kc->fd, NULL, segs[i].len,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK | more);
        if (r <= 0) {
            if (r == 0 || fp_sock_would_block(errno)) {
                return total > 0 ? total : -EAGAIN;
            }
            c->err = -errno;
            return total > 0 ? total : -errno;
        }
        kp->bytes -= (uint32_t)r;
        k->splice_out += (uint64_t)r;
        total += r;
        if ((uint32_t)r < segs[i].len) {
            return total;
        }
        kp->segs--;
        kpipe_maybe_put(k, kp);
        i++;
    }
    return total > 0 ? total : -EAGAIN;
}

static void
kio_seg_free(struct fp_io *io, struct fp_seg *seg)
{
    struct kpipe *kp;

    if (seg->data != NULL) {
        fp_io_generic_seg_free(io, seg);
        return;
    }
    /* Its bytes stay in the pipe, which is closed when nothing needs it any more. */
    kp = seg->ref;
    kp->segs--;
    kpipe_maybe_put(kio_of(io), kp);
}

static int
kio_shutdown_write(struct fp_conn *c)
{
    struct kconn *kc = (struct kconn *)c;

    if (shutdown(kc->fd, SHUT_WR) == -1) {
        return -errno;
    }
    return 0;
}

static void
kio_close(struct fp_conn *c, int abort_conn)
{
    struct kconn *kc = (struct kconn *)c;
    struct kio   *k = kc->k;

    ev_io_stop(k->loop, &kc->rio);
    ev_io_stop(k->loop, &kc->wio);
    if (abort_conn) {
        fp_sock_set_reset(kc->fd);
    }
    close(kc->fd);
    kc->fd = -1;
    if (kc->pipe != NULL) {
        kc->pipe->owner = NULL;
        kpipe_maybe_put(k, kc->pipe);
        kc->pipe = NULL;
    }
    kc->c.handler = NULL;
    kc->c.data = NULL;
    fp_pool_put(&k->conns, kc);
}

static void
kio_timer_cb(struct ev_loop *loop, ev_timer *ev, int revents)
{
    struct fp_timer *t = ev->data;

    ev_timer_stop(loop, ev);
    t->fn(t);
}

static void
kio_timer_init(struct fp_io *io, struct fp_timer *t, fp_timer_fn fn, void *data)
{
    ev_timer *ev = (ev_timer *)t->priv;

    t->fn = fn;
    t->data = data;
    ev_init(ev, kio_timer_cb);
    ev->data = t;
}

static void
kio_timer_arm(struct fp_io *io, struct fp_timer *t, uint32_t timeout_ms)
{
    ev_timer *ev = (ev_timer *)t->priv;

    /* ev_timer_again re-arms in place: cheaper than stop + start on every activity. */
    ev->repeat = timeout_ms / 1000.0;
    ev_timer_again(kio_of(io)->loop, ev);
}

static void
kio_timer_stop(struct fp_io *io, struct fp_timer *t)
{
    ev_timer_stop(kio_of(io)->loop, (ev_timer *)t->priv);
}

static uint64_t
kio_now_ms(struct fp_io *io)
{
    return (uint64_t)(ev_now(kio_of(io)->loop) * 1000.0);
}

static void
kio_run(struct fp_io *io)
{
    struct kio *k = kio_of(io);

    if (k->collect > 0.) {
        /* The gathering sleep is tens of microseconds: the default slack (50 us) would double
         * it. Per thread, and this is the worker's. */
        (void)prctl(PR_SET_TIMERSLACK, 5000UL, 0UL, 0UL, 0UL);
        k->poll_at = ev_time();
    }
    ev_run(k->loop, 0);
}

static void
kio_stop(struct fp_io *io)
{
    ev_break(kio_of(io)->loop, EVBREAK_ALL);
}

static void
kio_notify(struct fp_io *io)
{
    ev_async_send(kio_of(io)->loop, &kio_of(io)->wake);
}

static void
kio_on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    struct kio *k = w->data;

    if (k->io.on_notify != NULL) {
        k->io.on_notify(&k->io, k->io.notify_data);
    }
}

/*
 * global.io_collect. A worker that polls as soon as it has run its events wakes once per event
 * while the peers keep it just short of busy: each wake-up is one event, one send to the other
 * side, and on a virtual machine an inter-processor interrupt that the peer sending the event
 * pays for (issue 13's first defect: 0.6-0.9 wake-ups per request against HAProxy's 0.05, and
 * the origin's CPU per request up to 20 % higher behind fastproxy). While the loop is busy (its
 * last poll waited less than the collect time), libev sleeps out the rest of that time before
 * it polls again: events that arrive meanwhile are queued without waking anyone and come back
 * as one burst, whose sends then leave together. An idle loop (its last poll waited longer)
 * polls at once, so a lone request pays nothing.
 */
static void
kio_collect_adapt(struct kio *k)
{
    ev_tstamp now = ev_time();
    ev_tstamp last = ev_now(k->loop); /* when the last poll returned */
    int       busy = last - k->poll_at < k->collect;

    if (busy) {
        k->collect_waits++;
        ev_set_io_collect_interval(k->loop, k->collect);
        k->poll_at = last + k->collect > now ? last + k->collect : now;
    } else {
        ev_set_io_collect_interval(k->loop, 0.);
        k->poll_at = now;
    }
}

/* libev runs prepare watchers once per iteration, after every pending callback and right
 * before it reifies interest changes and polls: the end of the burst. */
static void
kio_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct kio *k = w->data;

    if (k->io.on_flush != NULL) {
        k->io.on_flush(&k->io, k->io.flush_data);
    }
    if (k->collect > 0.) {
        kio_collect_adapt(k);
    }
}

/* Closes every pipe made (all are back in the pool: every connection is closed). */
static void
kpipes_destroy(struct kio *k)
{
    struct kpipe *kp;
    uint32_t      i;

    for (i = 0; i < k->pipes.count; i++) {
        kp = (struct kpipe *)(void *)(k->pipes.mem + (size_t)i * k->pipes.elt_size);
        if (kp->fd[0] >= 0) {
            close(kp->fd[0]);
            close(kp->fd[1]);
        }
    }
    fp_pool_destroy(&k->pipes);
}

static void
kio_destroy(struct fp_io *io)
{
    struct kio *k = kio_of(io);

    ev_prepare_stop(k->loop, &k->flush);
    ev_async_stop(k->loop, &k->wake);
    ev_loop_destroy(k->loop);
    fp_pool_destroy(&k->conns);
    kpipes_destroy(k);
    free(k);
}

static const struct fp_io_counter kio_counters[] = {
        {"splice_in_bytes", "Bytes moved from a socket into a pipe (splice, global.maxpipes).",
         false, offsetof(struct kio, splice_in), 0},
        {"splice_out_bytes", "Bytes moved from a pipe into a socket (splice).", false,
         offsetof(struct kio, splice_out), 0},
        {"splice_nopipe", "Reads that could have spliced but copied: every pipe was in use.",
         false, offsetof(struct kio, splice_nopipe), 0},
        {"pipes_open", "Pipes this worker holds for splice.", true,
         offsetof(struct kio, pipes_open), 0},
        {"collect_waits", "Loop iterations that gathered events before polling (io_collect).",
         false, offsetof(struct kio, collect_waits), 0},
};

static const struct fp_io_ops kio_ops = {
    .name = "kernel",
    .counters = kio_counters,
    .nb_counters = sizeof(kio_counters) / sizeof(kio_counters[0]),
    .listen = kio_listen,
    .listener_pause = kio_listener_pause,
    .listener_close = kio_listener_close,
    .listener_pending = kio_listener_pending,
    .listener_shed = kio_listener_shed,
    .connect = kio_connect,
    .want = kio_want,
    .recv = kio_recv,
    .recvv = kio_recvv,
    .send = kio_send,
    .sendv = kio_sendv,
    .recv_segs = kio_recv_segs,
    .send_segs = kio_send_segs,
    .seg_free = kio_seg_free,
    .generic_segs = true,
    .shutdown_write = kio_shutdown_write,
    .close = kio_close,
    .timer_init = kio_timer_init,
    .timer_arm = kio_timer_arm,
    .timer_stop = kio_timer_stop,
    .now_ms = kio_now_ms,
    .run = kio_run,
    .stop = kio_stop,
    .notify = kio_notify,
    .destroy = kio_destroy,
};

size_t
fp_io_kernel_conn_size(void)
{
    return sizeof(struct kconn);
}

struct fp_io *
fp_io_kernel_create(const struct fp_io_conf *conf, char *err, size_t errlen)
{
    struct kio *k;

    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->io.ops = &kio_ops;
    k->io.recv_live = true;
    k->io.on_notify = conf->on_notify;
    k->io.notify_data = conf->notify_data;
    k->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (k->loop == NULL) {
        snprintf(err, errlen, "cannot create an event loop");
        goto err_free;
    }
    if (fp_pool_init(&k->conns, sizeof(struct kconn), conf->max_conns) != 0) {
        snprintf(err, errlen, "cannot allocate %u connections", conf->max_conns);
        goto err_loop;
    }
    k->max_pipes = conf->max_pipes;
    k->collect = conf->collect_us / 1e6;
    if (k->max_pipes > 0) {
        struct kpipe *kp;
        uint32_t      i;

        if (fp_pool_init(&k->pipes, sizeof(struct kpipe), k->max_pipes) != 0) {
            snprintf(err, errlen, "cannot allocate %u pipes", k->max_pipes);
            fp_pool_destroy(&k->conns);
            goto err_loop;
        }
        for (i = 0; i < k->max_pipes; i++) {
            kp = (struct kpipe *)(void *)(k->pipes.mem + (size_t)i * k->pipes.elt_size);
            kp->fd[0] = -1;
            kp->fd[1] = -1;
        }
    }
    ev_async_init(&k->wake, kio_on_wake);
    k->wake.data = k;
    ev_async_start(k->loop, &k->wake);
    ev_prepare_init(&k->flush, kio_on_prepare);
    k->flush.data = k;
    ev_prepare_start(k->loop, &k->flush);
    return &k->io;

err_loop:
    ev_loop_destroy(k->loop);
err_free:
    free(k);
    return NULL;
}
