/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mode: tcp. A session passes bytes both ways between the client and one server through two
 * bounded queues of segments the backend lends (fp_io_recv_segs) and takes back to send
 * (fp_io_send_segs): the proxy never copies a byte, and the user-space stack's packet buffers go
 * from one connection to the other as they are. It never looks at the bytes (FP_RECV_OPAQUE):
 * with global.maxpipes the kernel backend keeps them in a pipe (splice). It honours half-closes (a FIN is passed on once
 * its direction's queue has drained), retries the next server when a connect fails, and ends on
 * inactivity.
 *
 * A server's maxconn counts sessions: a session holds a slot of its server from the connect
 * until it ends, and a session that finds every server full waits in the backend's queue,
 * with nothing read from its client, for at most timeouts.queue (then it is closed).
 *
 * Flow control is the queues: a direction reads ahead, until the source has nothing more or the
 * queue holds FP_SEGQ_MAX_BYTES (issue 13's read-ahead: with kernel sockets one wake-up reads
 * several buffers and sends them in one call), then stops reading while it is full, so a slow
 * reader pushes back on a fast writer through TCP's own window, and memory per session is
 * bounded by two queues. Segments are held only while their bytes wait to be sent.
 */
#include "proxy/session.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "net/debug.h"
#include "proxy/backend.h"

enum sess_end {
    SESS_END_DONE = 0,
    SESS_END_ABORT,
};

static void sess_on_cli(struct fp_conn *c, unsigned events);
static void sess_on_srv(struct fp_conn *c, unsigned events);

static uint32_t
sess_be_idx(const struct fp_session *s)
{
    return (uint32_t)(s->be - s->w->conf->backends);
}

/* Gives back s's server slot, if it holds one; dispatch as for fp_worker_slot_release. */
static void
sess_slot_release(struct fp_session *s, bool dispatch)
{
    uint32_t be_idx = sess_be_idx(s);

    if (s->has_slot) {
        s->has_slot = 0;
        fp_worker_slot_release(s->w, be_idx, s->w->srv_base[be_idx] + s->srv_idx, dispatch);
    }
}

static void
sess_end(struct fp_session *s, enum sess_end how)
{
    struct fp_worker *w = s->w;
    struct fp_io     *io = w->io;
    uint32_t          be_idx = sess_be_idx(s);
    uint32_t          gi = w->srv_base[be_idx] + s->srv_idx;
    bool              had_slot = s->has_slot;

    io->ops->timer_stop(io, &s->timer);
    fp_worker_unqueue(w, &s->wait);
    if (s->srv != NULL) {
        io->ops->close(s->srv, how == SESS_END_ABORT);
        s->srv = NULL;
    }
    if (s->cli != NULL) {
        io->ops->close(s->cli, how == SESS_END_ABORT);
        s->cli = NULL;
    }
    fp_io_segq_release(io, &s->req);
    fp_io_segq_release(io, &s->rsp);
    fp_worker_task_del(w, &s->task);
    fp_pool_put(&w->sessions, s);
    /* Last, once s is gone: the slot's next owner is granted (and may end) right here. */
    if (had_slot) {
        fp_worker_slot_release(w, be_idx, gi, true);
    }
}

static void
sess_abort(struct fp_task *t)
{
    sess_end((struct fp_session *)t, SESS_END_ABORT);
}

static void
sess_arm(struct fp_session *s, uint32_t timeout_ms)
{
    struct fp_io *io = s->w->io;

    s->timeout_ms = timeout_ms;
    s->last_ms = io->ops->now_ms(io);
    io->ops->timer_arm(io, &s->timer, timeout_ms);
}

static void sess_connect_next(struct fp_session *s);

static void
sess_on_timer(struct fp_timer *t)
{
    struct fp_session *s = t->data;
    struct fp_worker  *w = s->w;
    struct fp_io      *io = w->io;
    uint64_t           now = io->ops->now_ms(io);
    uint64_t           idle = now - s->last_ms;

    if (s->wait.queued) {
        FP_BE_STAT_INC(w, sess_be_idx(s), queue_timeouts);
        sess_end(s, SESS_END_ABORT);
        return;
    }
    if (s->connecting) {
        FP_STAT_INC(w, connect_timeouts);
        io->ops->close(s->srv, 1);
        s->srv = NULL;
        sess_slot_release(s, false);
        sess_connect_next(s);
        return;
    }
    /* The timer is armed once and activity only moves last_ms: re-arm for what is left
     * instead of touching the timer on every transfer. */
    if (idle < s->timeout_ms) {
        io->ops->timer_arm(io, &s->timer, (uint32_t)(s->timeout_ms - idle));
        return;
    }
    FP_STAT_INC(w, idle_timeouts);
    sess_end(s, SESS_END_ABORT);
}

/* Sets each side's interest from the buffers' state, passes FINs on, and ends the session
 * once both directions are closed. Returns 1 if the session ended. */
static int
sess_update(struct fp_session *s)
{
    struct fp_io *io = s->w->io;
    unsigned      cw = 0;
    unsigned      sw = 0;

    if (s->cli_eof && s->req.nb == 0 && !s->srv_shut) {
        io->ops->shutdown_write(s->srv);
        s->srv_shut = 1;
    }
    if (s->srv_eof && s->rsp.nb == 0 && !s->cli_shut) {
        io->ops->shutdown_write(s->cli);
        s->cli_shut = 1;
    }
    if (s->cli_shut && s->srv_shut) {
        sess_end(s, SESS_END_DONE);
        return 1;
    }
    if (!s->cli_eof && !fp_segq_full(&s->req)) {
        cw |= FP_EV_READ;
    }
    if (s->rsp.nb > 0) {
        cw |= FP_EV_WRITE;
    }
    if (!s->srv_eof && !fp_segq_full(&s->rsp)) {
        sw |= FP_EV_READ;
    }
    if (s->req.nb > 0) {
        sw |= FP_EV_WRITE;
    }
    io->ops->want(s->cli, cw);
    io->ops->want(s->srv, sw);
    return 0;
}

/*
 * Reads ahead what `from` has into q: until the source has no more or q is full. Returns 0, or
 * -1 if the session ended.
 */
static int
sess_forward(struct fp_session *s, struct fp_conn *from, struct fp_segq *q, uint8_t *eof,
             int from_is_cli)
{
    struct fp_worker *w = s->w;
    struct fp_io     *io = w->io;
    uint32_t          before = q->bytes;
    ssize_t           n;

    if (fp_segq_full(q)) {
        return 0;
    }
    n = fp_io_recv_segs(from, &q->seg[q->nb], fp_segq_room(q), fp_segq_byte_room(q),
                        FP_RECV_OPAQUE | (q->nb > 0 ? FP_RECV_AHEAD : 0));
    if (n == 0) {
        *eof = 1;
    } else if (n > 0) {
        fp_segq_added(q, (uint32_t)n);
        s->last_ms = io->ops->now_ms(io);
        if (from_is_cli) {
            FP_STAT_ADD(w, bytes_in, (uint64_t)(q->bytes - before));
        } else {
            FP_STAT_ADD(w, bytes_out, (uint64_t)(q->bytes - before));
        }
    } else if (n != -EAGAIN && n != -ENOBUFS) {
        if (from_is_cli) {
            FP_STAT_INC(w, client_aborts);
        } else {
            FP_STAT_INC(w, server_aborts);
        }
        sess_end(s, SESS_END_ABORT);
        return -1;
    }
    return 0;
}

/* Hands what q holds to `to` (which takes the segments it sends). Returns 0, or -1 if the
 * session ended. */
static int
sess_flush(struct fp_session *s, struct fp_conn *to, struct fp_segq *q, int to_is_cli)
{
    struct fp_worker *w = s->w;
    struct fp_io     *io = w->io;
    ssize_t           n;

    if (q->nb == 0) {
        return 0;
    }
    n = fp_io_send_segs(to, q->seg, q->nb, 0);
    if (n < 0 && n != -EAGAIN) {
        if (to_is_cli) {
            FP_STAT_INC(w, client_aborts);
        } else {
            FP_STAT_INC(w, server_aborts);
        }
        sess_end(s, SESS_END_ABORT);
        return -1;
    }
    if (n > 0) {
        fp_segq_consume(q, (uint32_t)n);
        s->last_ms = io->ops->now_ms(io);
    }
    return 0;
}

/*
 * The end of the loop iteration (fp_worker_defer): sends what this iteration read, both ways,
 * then sets the interest. The send right after the reads usually succeeds and saves a loop
 * iteration; doing it after all the reads of the burst gives each peer one wake-up for all.
 */
static void
sess_on_flush(struct fp_task *t)
{
    struct fp_session *s = (struct fp_session *)t;

    if (s->srv != NULL && sess_flush(s, s->srv, &s->req, 0) != 0) {
        return;
    }
    if (sess_flush(s, s->cli, &s->rsp, 1) != 0) {
        return;
    }
    sess_update(s);
}

static void
sess_on_cli(struct fp_conn *c, unsigned events)
{
    struct fp_session *s = c->data;

    if (events & FP_EV_READ) {
        if (sess_forward(s, s->cli, &s->req, &s->cli_eof, 1) != 0) {
            return;
        }
        fp_worker_defer(s->w, &s->task);
        return;
    }
    if (events & FP_EV_WRITE) {
        if (sess_flush(s, s->cli, &s->rsp, 1) != 0) {
            return;
        }
    }
    sess_update(s);
}

static void
sess_on_connected(struct fp_session *s)
{
    struct fp_worker *w = s->w;
    uint32_t          idle;

    s->connecting = 0;
    idle = w->conf->timeouts.client_ms < w->conf->timeouts.server_ms
                   ? w->conf->timeouts.client_ms
                   : w->conf->timeouts.server_ms;
    sess_arm(s, idle);
}

static void
sess_on_srv(struct fp_conn *c, unsigned events)
{
    struct fp_session *s = c->data;
    struct fp_worker  *w = s->w;

    if (events & FP_EV_ERROR) {
        FP_STAT_INC(w, connect_errors);
        w->io->ops->close(s->srv, 0);
        s->srv = NULL;
        sess_slot_release(s, false);
        sess_connect_next(s);
        return;
    }
    if (s->connecting) {
        sess_on_connected(s);
    }
    if (events & FP_EV_READ) {
        if (sess_forward(s, s->srv, &s->rsp, &s->srv_eof, 0) != 0) {
            return;
        }
        fp_worker_defer(w, &s->task);
        return;
    }
    if (events & FP_EV_WRITE) {
        if (sess_flush(s, s->srv, &s->req, 0) != 0) {
            return;
        }
    }
    sess_update(s);
}

static struct fp_session *
waiter_sess(struct fp_waiter *wt)
{
    return (struct fp_session *)(void *)((char *)wt - offsetof(struct fp_session, wait));
}

/* A slot freed for this waiting session: on to a server. */
static void
sess_on_queue_grant(struct fp_waiter *wt)
{
    sess_connect_next(waiter_sess(wt));
}

/* The queue dropped this session (old work first): close the client, nothing was read. */
static void
sess_on_queue_refuse(struct fp_waiter *wt)
{
    sess_end(waiter_sess(wt), SESS_END_ABORT);
}

/*
 * Tries the backend's servers in round-robin order, each at most once per session: a server
 * that refuses or does not answer in time is skipped for this attempt (HAProxy's "redispatch"
 * for a connection that never started). Servers at their maxconn are skipped too; when only
 * those remain the session waits in the backend's queue.
 */
static void
sess_connect_next(struct fp_session *s)
{
    struct fp_worker *w = s->w;
    struct fp_io     *io = w->io;
    uint32_t          be_idx = sess_be_idx(s);
    uint64_t          full = 0;
    uint32_t          idx;
    uint32_t          gi;
    int               pool_empty = 0;
    int               rc;

    for (;;) {
        idx = fp_worker_pick_slot(w, be_idx, s->tried, &full);
        if (idx == UINT32_MAX) {
            break;
        }
        gi = w->srv_base[be_idx] + idx;
        if (s->tried != 0) {
            FP_STAT_INC(w, retries);
        }
        s->tried |= 1ULL << idx;
        s->srv_idx = idx;
        rc = io->ops->connect(io, &s->be->servers[idx].addr, &s->srv);
        if (rc == 0) {
            fp_worker_slot_take(w, be_idx, gi);
            s->has_slot = 1;
            s->srv->handler = sess_on_srv;
            s->srv->data = s;
            s->connecting = 1;
            sess_arm(s, w->conf->timeouts.connect_ms);
            return;
        }
        s->srv = NULL;
        if (rc == -ENOBUFS) {
            FP_STAT_INC(w, conn_pool_empty);
            pool_empty = 1;
            break;
        }
        FP_STAT_INC(w, connect_errors);
    }
    if (full != 0 && !pool_empty) {
        s->wait.be_idx = be_idx;
        s->wait.grant = sess_on_queue_grant;
        s->wait.refuse = sess_on_queue_refuse;
        if (fp_worker_enqueue(w, &s->wait) == 0) {
            sess_arm(s, w->conf->timeouts.queue_ms);
            return;
        }
    }
    FP_STAT_INC(w, no_server);
    /* A slot this session gave back (a failed retry) is not lost for those waiting. */
    fp_worker_dispatch(w, be_idx);
    sess_end(s, SESS_END_ABORT);
}

void
fp_tcp_session_start(struct fp_worker *w, const struct fp_frontend_conf *fe, struct fp_conn *c)
{
    struct fp_io      *io = w->io;
    struct fp_session *s;

    s = fp_worker_session_alloc(w, c, sizeof(*s));
    if (s == NULL) {
        return;
    }
    s->w = w;
    s->fe = fe;
    s->be = &w->conf->backends[fe->default_backend];
    s->cli = c;
    c->handler = sess_on_cli;
    c->data = s;
    s->task.abort = sess_abort;
    s->task.flush = sess_on_flush;
    fp_worker_task_add(w, &s->task);
    io->ops->timer_init(io, &s->timer, sess_on_timer, s);
    /* Client bytes wait in the kernel until the server answers the connect: nothing is
     * read (or buffered) for a session that may not get a server. */
    io->ops->want(c, 0);
    fp_worker_demand(w, sess_be_idx(s));
    sess_connect_next(s);
}
