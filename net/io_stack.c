/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The user-space stack backend (see io_stack.h). One polling loop per worker: receive a burst
 * and run the stack (fp_stack_poll: input, TCP timers, stack callbacks, transmit), then deliver
 * the proxy's events, then its timers, then transmit what the proxy sent.
 *
 * The stack reports edges (data arrived, send room came back); net/io.h promises levels. The
 * translation lives here, in one place. The level is read from the TCB itself, as the kernel
 * reads a socket's: readable while its receive queue holds data or the peer's FIN, writable
 * while its send buffer has room. An edge (a stack callback) or a change of interest puts the
 * connection on the ready list; each loop pass computes (level & interest) for every listed
 * connection, calls the handler once if it is non-empty and keeps the connection listed for
 * the next pass, and drops it otherwise. So a connection is called while, and only while, it
 * is ready (an idle keep-alive connection that read its whole response is not woken), and one
 * busy connection cannot starve the others or the receive path.
 */
#include "net/io_stack.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/debug.h"
#include "net/pool.h"
#include "net/rss.h"
#include "net/stack/pkt.h"
#include "net/stack/stack.h"
#include "net/stack/tcp.h"
#include "net/stack/timer.h"

/* Connections one listener accepts per loop pass, so a flood cannot starve established ones. */
#define SIO_ACCEPT_BURST 32
/* Receive bursts per loop pass. */
#define SIO_RX_BUDGET 4
/* Idle passes spent spinning (with a pause) before the adaptive loop starts to sleep. */
#define SIO_IDLE_SPINS 200
/* After the loop is told to stop: how long closed connections may still send their tail. */
#define SIO_LINGER_US 2000000
/* Longest wait for the link (the link may cap it lower); timers are looked up this far. */
#define SIO_WAIT_MAX_US 10000
/* Longest adaptive sleep: the added latency bound of an idle worker. */
#define SIO_SLEEP_MAX_US 100

struct sio;

struct sconn {
    struct fp_conn c; /* first: the proxy's view */
    struct sio    *s;
    struct fp_tcb *tcb; /* NULL once the stack released the connection */
    struct sconn  *rnext;
    struct sconn  *rprev;
    unsigned       want;
    uint8_t        connecting; /* active open not yet completed */
    uint8_t        opened;     /* active open completed, not yet reported */
    uint8_t        failed;     /* active open failed, not yet reported (FP_EV_ERROR) */
    uint8_t        listed;     /* on the ready list */
    uint32_t       wr_need;    /* send room writability needs: a refused segment's length */
};

struct slistener {
    struct fp_listener      l;
    struct sio             *s;
    struct fp_tcp_listener *tl;
    uint8_t                 paused;
};

struct sio {
    struct fp_io             io;  /* first */
    struct fp_io_ops         ops; /* sio_ops, with the name the creator gave */
    struct fp_stack         *st;
    struct fp_pool           conns;
    struct sconn             ready; /* list head (only rnext/rprev used) */
    struct fp_timer_wheel    wheel; /* the proxy's timers */
    struct slistener        *lsn[FP_STK_MAX_LISTEN];
    unsigned                 nb_lsn;
    struct fp_io_stack_conf  conf;
    uint64_t                 now_us;
    unsigned                 idle_passes;
    int                      stopping;
    int                      notified; /* set by any thread, cleared by the loop */
    struct fp_io_stack_stats stats;
    const uint64_t          *stk_ctr;  /* st->ctr, for the counter table's base */
    const uint64_t          *link_ctr; /* the link's counters, or NULL */
};

/*
 * The counter table of every instance of the process (struct fp_io_counter, net/io.h): the
 * loop's, the stack's (named stack_<counter>) and the link's. Built once, by the main thread,
 * before any worker runs; read-only afterwards.
 */
#define SIO_LOOP_CTRS     7
#define SIO_LINK_CTRS_MAX 32
#define SIO_NB_CTRS       (SIO_LOOP_CTRS + FP_STK_CTR_NB + SIO_LINK_CTRS_MAX)

static struct fp_io_counter sio_ctr_table[SIO_NB_CTRS];
static unsigned             sio_ctr_nb;
static char                 sio_ctr_names[FP_STK_CTR_NB][48];

static const char *const stk_ctr_ids[FP_STK_CTR_NB] = {
#define FP_STK_CTR_ID(name, desc) #name,
        FP_STK_COUNTERS(FP_STK_CTR_ID)
#undef FP_STK_CTR_ID
};

_Static_assert(sizeof(struct fp_stk_timer) <= sizeof(((struct fp_timer *)0)->priv),
               "fp_timer.priv too small for a stack timer");

static inline struct sio *
sio_of(struct fp_io *io)
{
    return (struct sio *)io;
}

static uint64_t
clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
stat_add(uint64_t *ctr, uint64_t v)
{
    __atomic_store_n(ctr, *ctr + v, __ATOMIC_RELAXED);
}

/* ---- Readiness and the ready list ---- */

static void
ready_unlink(struct sconn *sc)
{
    if (!sc->listed) {
        return;
    }
    sc->rprev->rnext = sc->rnext;
    sc->rnext->rprev = sc->rprev;
    sc->rnext = NULL;
    sc->rprev = NULL;
    sc->listed = 0;
}

/* Puts sc on the ready list (if not there): its level is computed at the next pass. */
static void
mark(struct sconn *sc)
{
    struct sconn *head = &sc->s->ready;

    if (sc->listed) {
        return;
    }
    sc->rprev = head->rprev;
    sc->rnext = head;
    head->rprev->rnext = sc;
    head->rprev = sc;
    sc->listed = 1;
}

/* The level of sc, as epoll would report it for a socket. */
static unsigned
level(const struct sconn *sc)
{
    const struct fp_tcb *tp = sc->tcb;
    unsigned             ev = 0;

    if (tp == NULL) {
        return FP_EV_READ | FP_EV_WRITE; /* gone: reads give EOF or the error */
    }
    if (sc->connecting) {
        return 0;
    }
    if (tp->rcvq_bytes > 0 || (tp->t_flags & FP_TF_RCVD_FIN) != 0) {
        ev |= FP_EV_READ;
    }
    if ((tp->t_state == FP_TCP_ESTABLISHED || tp->t_state == FP_TCP_CLOSE_WAIT) &&
        (tp->t_flags & FP_TF_SHUTWR) == 0 && fp_tcp_send_space(tp) > 0 &&
        fp_tcp_send_space(tp) >= sc->wr_need) {
        ev |= FP_EV_WRITE;
    }
    return ev;
}

/* The events due to sc: its level within its interest, plus a failed or completed active open,
 * reported whatever the interest (as the kernel backend watches a connecting socket). */
static unsigned
due_events(const struct sconn *sc)
{
    if (sc->failed) {
        return FP_EV_ERROR;
    }
    return (level(sc) & sc->want) | (sc->opened ? FP_EV_WRITE : 0u);
}

/* ---- Stack callbacks (delivered from fp_stack_poll, never inside packet processing) ---- */

static void
on_connected(struct fp_tcb *c, void *user)
{
    struct sconn *sc = user;

    sc->connecting = 0;
    sc->opened = 1;
    mark(sc);
}

static void
on_readable(struct fp_tcb *c, void *user)
{
    mark(user);
}

static void
on_writable(struct fp_tcb *c, void *user)
{
    mark(user);
}

static void
on_closed(struct fp_tcb *c, void *user, int err)
{
    struct sconn *sc = user;

    sc->tcb = NULL;
    if (sc->connecting) {
        /* A failed active open is FP_EV_ERROR, as a refused connect(2) is. */
        sc->connecting = 0;
        sc->failed = 1;
        sc->c.err = err != 0 ? err : -ECONNREFUSED;
    } else {
        /* err 0: the connection ended cleanly (both FINs, or TIME-WAIT over) while we still
         * held it: reads give EOF. Otherwise, like EPOLLERR: both directions report, and
         * recv and send return the error. */
        sc->c.err = err;
    }
    mark(sc);
}

static void on_accept(struct fp_tcp_listener *tl, void *user);

static const struct fp_tcp_callbacks conn_cb = {
        .on_connected = on_connected,
        .on_readable = on_readable,
        .on_writable = on_writable,
        .on_closed = on_closed,
};

static const struct fp_tcp_callbacks listen_cb = {
        .on_accept = on_accept,
};

static struct sconn *
sconn_get(struct sio *s)
{
    struct sconn *sc = fp_pool_get(&s->conns);

    if (sc == NULL) {
        s->io.conn_pool_empty++;
        return NULL;
    }
    memset(sc, 0, sizeof(*sc));
    sc->c.io = &s->io;
    sc->s = s;
    return sc;
}

static void
peer_addr(struct fp_addr *a, uint32_t ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->u.sin.sin_family = AF_INET;
    a->u.sin.sin_addr.s_addr = htonl(ip);
    a->u.sin.sin_port = htons(port);
    a->len = sizeof(a->u.sin);
}

static unsigned
accept_burst(struct slistener *sl, unsigned max)
{
    struct sio    *s = sl->s;
    struct sconn  *sc;
    struct fp_tcb *tcb;
    unsigned       n = 0;

    while (n < max && (tcb = fp_tcp_accept(sl->tl)) != NULL) {
        n++;
        sc = sconn_get(s);
        if (sc == NULL) {
            fp_tcp_abort(tcb);
            continue;
        }
        sc->tcb = tcb;
        peer_addr(&sc->c.peer, tcb->raddr, tcb->rport);
        fp_tcp_set_callbacks(tcb, &conn_cb, sc);
        sl->l.on_accept(&sl->l, &sc->c);
    }
    return n;
}

static void
on_accept(struct fp_tcp_listener *tl, void *user)
{
    /* Accepting is done in the loop (sio_dispatch), where paused listeners are skipped. */
}

/* ---- fp_io_ops ---- */

static int
sio_listen(struct fp_io *io, const struct fp_listen_conf *lc, fp_accept_fn on_acc, void *data,
           struct fp_listener **out)
{
    struct sio       *s = sio_of(io);
    struct slistener *sl;
    int               rc;

    if (lc->addr.u.sa.sa_family != AF_INET) {
        return -EAFNOSUPPORT;
    }
    if (lc->addr.u.sin.sin_addr.s_addr != htonl(INADDR_ANY) &&
        ntohl(lc->addr.u.sin.sin_addr.s_addr) != s->st->conf.addr) {
        return -EADDRNOTAVAIL;
    }
    if (s->nb_lsn == FP_STK_MAX_LISTEN) {
        return -ENOSPC;
    }
    sl = calloc(1, sizeof(*sl));
    if (sl == NULL) {
        return -ENOMEM;
    }
    rc = fp_tcp_listen(s->st, (uint16_t)fp_addr_port(&lc->addr),
                       lc->backlog != 0 ? lc->backlog : s->conf.backlog, FP_TCP_SYN_BACKLOG_DEFAULT,
                       &listen_cb, sl, &sl->tl);
    if (rc != 0) {
        free(sl);
        return rc;
    }
    sl->l.io = io;
    sl->l.on_accept = on_acc;
    sl->l.data = data;
    sl->l.addr = lc->addr;
    sl->s = s;
    s->lsn[s->nb_lsn++] = sl;
    *out = &sl->l;
    return 0;
}

static void
sio_listener_pause(struct fp_listener *l, int paused)
{
    ((struct slistener *)l)->paused = paused != 0;
}

static void
sio_listener_close(struct fp_listener *l)
{
    struct slistener *sl = (struct slistener *)l;
    struct sio       *s = sl->s;
    unsigned          i;

    fp_tcp_unlisten(sl->tl);
    for (i = 0; i < s->nb_lsn; i++) {
        if (s->lsn[i] == sl) {
            s->lsn[i] = s->lsn[--s->nb_lsn];
            break;
        }
    }
    free(sl);
}

static int
sio_listener_pending(struct fp_listener *l)
{
    return (int)((struct slistener *)l)->tl->nb_accept;
}

static unsigned
sio_listener_shed(struct fp_listener *l, const void *msg, size_t len, unsigned max)
{
    struct slistener *sl = (struct slistener *)l;
    struct fp_tcb    *tcb;
    unsigned          n;

    /* No connection object is taken: the TCB answers and closes (FIN after the message). */
    for (n = 0; n < max && (tcb = fp_tcp_accept(sl->tl)) != NULL; n++) {
        fp_tcp_set_callbacks(tcb, NULL, NULL);
        (void)fp_tcp_send(tcb, msg, len);
        fp_tcp_close(tcb);
    }
    return n;
}

/* Opens a stack connection from a local port whose reply hashes to our queue (net/rss.h);
 * a candidate the stack refuses (busy, or in TIME-WAIT, for that peer) moves to the next, and
 * once the ports of one local address are used up, the next address's (dpdk.source_addresses)
 * are tried. */
static int
open_rss(struct sio *s, struct sconn *sc, uint32_t raddr, uint16_t rport)
{
    struct fp_rss_port_iter it;
    uint32_t                laddr;
    uint16_t                lport;
    int                     rc;

    fp_rss_ports_begin(s->conf.ports, raddr, rport, &it);
    while (fp_rss_ports_next(s->conf.ports, &it, &laddr, &lport) == 0) {
        rc = fp_tcp_connect_from(s->st, laddr, raddr, rport, lport, &conn_cb, sc, &sc->tcb);
        if (rc != -EADDRINUSE) {
            return rc;
        }
        stat_add(&s->stats.port_misses, 1);
    }
    return -EADDRNOTAVAIL;
}

static int
sio_connect(struct fp_io *io, const struct fp_addr *to, struct fp_conn **out)
{
    struct sio   *s = sio_of(io);
    struct sconn *sc;
    uint32_t      raddr;
    uint16_t      rport;
    int           rc;

    if (to->u.sa.sa_family != AF_INET) {
        return -EAFNOSUPPORT;
    }
    sc = sconn_get(s);
    if (sc == NULL) {
        return -ENOBUFS;
    }
    raddr = ntohl(to->u.sin.sin_addr.s_addr);
    rport = ntohs(to->u.sin.sin_port);
    if (s->conf.ports != NULL) {
        rc = open_rss(s, sc, raddr, rport);
    } else {
        rc = fp_tcp_connect(s->st, raddr, rport, 0, &conn_cb, sc, &sc->tcb);
    }
    if (rc != 0) {
        if (rc == -EADDRNOTAVAIL) {
            stat_add(&s->stats.no_port, 1);
        }
        goto err_put;
    }
    sc->c.peer = *to;
    sc->connecting = 1;
    *out = &sc->c;
    return 0;

err_put:
    fp_pool_put(&s->conns, sc);
    return rc == -ENOMEM ? -ENOBUFS : rc;
}

static void
sio_want(struct fp_conn *c, unsigned events)
{
    struct sconn *sc = (struct sconn *)c;

    sc->want = events & (FP_EV_READ | FP_EV_WRITE);
    if ((sc->want & FP_EV_WRITE) != 0 && sc->tcb != NULL && fp_tcp_send_space(sc->tcb) == 0) {
        /* Room comes back as an edge only to those who asked: ask. */
        sc->tcb->t_flags |= FP_TF_WANT_WRITE;
    }
    if (sc->want != 0) {
        mark(sc);
    }
}

static ssize_t
sio_recv(struct fp_conn *c, struct fp_buf *b)
{
    struct sconn *sc = (struct sconn *)c;
    ssize_t       n;

    if (fp_buf_room(b) == 0) {
        return -ENOBUFS;
    }
    if (sc->tcb == NULL) {
        return c->err;
    }
    n = fp_tcp_recv(sc->tcb, b->data + b->tail, fp_buf_room(b));
    if (n > 0) {
        b->tail += (uint32_t)n;
    }
    return n;
}

/* Sends len bytes; clears write readiness when the stack took less (on_writable follows). */
static ssize_t
send_bytes(struct sconn *sc, const uint8_t *data, size_t len)
{
    ssize_t n;

    if (sc->tcb == NULL) {
        return sc->c.err != 0 ? sc->c.err : -EPIPE;
    }
    sc->wr_need = 0;
    n = fp_tcp_send(sc->tcb, data, len);
    if (n == -ENOMEM) {
        /* Packet pool empty: no edge will come, so look again at the next pass. */
        mark(sc);
        return -EAGAIN;
    }
    return n;
}

/* FP_SEND_MORE is not acted on yet: the stack cuts segments at each send, so a short send
 * followed by more of the same message leaves as a short segment (a cork is issue 13's). */
static ssize_t
sio_send(struct fp_conn *c, struct fp_buf *b, unsigned flags)
{
    ssize_t n;

    if (fp_buf_empty(b)) {
        return 0;
    }
    n = send_bytes((struct sconn *)c, b->data + b->head, fp_buf_len(b));
    if (n > 0) {
        fp_buf_consume(b, (uint32_t)n);
    }
    return n;
}

static ssize_t
sio_sendv(struct fp_conn *c, const struct fp_slice *slices, unsigned n, unsigned flags)
{
    ssize_t  total = 0;
    ssize_t  rc;
    unsigned i;

    for (i = 0; i < n; i++) {
        if (slices[i].len == 0) {
            continue;
        }
        rc = send_bytes((struct sconn *)c, slices[i].data, slices[i].len);
        if (rc < 0) {
            return total > 0 ? total : rc;
        }
        total += rc;
        if ((uint32_t)rc < slices[i].len) {
            break;
        }
    }
    return total;
}

/*
 * Zero-copy receive: the TCB's receive-queue buffers themselves are lent, each segment's data
 * pointing at the payload behind the old headers. Nothing is copied.
 */
static ssize_t
sio_recv_segs(struct fp_conn *c, struct fp_seg *segs, unsigned max, uint32_t max_bytes,
              unsigned flags)
{
    struct sconn  *sc = (struct sconn *)c;
    struct fp_pkt *chain;
    struct fp_pkt *p;
    ssize_t        n;
    unsigned       i = 0;

    if (sc->tcb == NULL) {
        return c->err;
    }
    if (max == 0) {
        return -ENOBUFS;
    }
    n = fp_tcp_recv_pkts_upto(sc->tcb, &chain, max, max_bytes);
    if (n <= 0) {
        return n;
    }
    while ((p = chain) != NULL) {
        chain = p->next;
        p->next = NULL;
        segs[i].data = p->data;
        segs[i].len = p->len;
        segs[i].ref = p;
        i++;
    }
    return (ssize_t)i;
}

/* Whether fp_tcp_send_pkts would take data on tp (else it returns an error, taking nothing). */
static bool
sendable(const struct fp_tcb *tp)
{
    return (tp->t_state == FP_TCP_ESTABLISHED || tp->t_state == FP_TCP_CLOSE_WAIT) &&
           (tp->t_flags & FP_TF_SHUTWR) == 0;
}

/*
 * A buffer of another instance's pool (an in-memory test link passes the sender's buffers) is
 * copied into one of ours, counted: queued as it is, it would go back to a pool this thread may
 * not own. Returns the buffer to queue, or NULL when our pool is empty.
 */
static struct fp_pkt *
rehome(struct fp_stack *st, struct fp_pkt *p, const struct fp_seg *seg)
{
    struct fp_pkt *q;

    if (p->pool == fp_stack_pktpool(st)) {
        p->data = seg->data;
        p->len = seg->len;
        return p;
    }
    q = fp_stack_pkt_alloc(st);
    if (q == NULL) {
        return NULL;
    }
    memcpy(q->data, seg->data, seg->len);
    q->len = seg->len;
    fp_stack_ctr_add(st, FP_STK_TCP_APP_COPY_BYTES, seg->len);
    fp_pkt_free(p);
    return q;
}

/*
 * Zero-copy send: the lent buffers are linked into a chain and queued on this TCB as they are
 * (the holder may have advanced data), so bytes received on one connection leave on another
 * without a copy into or out of the proxy. Buffers are taken whole, and only the prefix of segs
 * that fits the send buffer is offered, so the stack takes all it is offered.
 */
static ssize_t
sio_send_segs(struct fp_conn *c, const struct fp_seg *segs, unsigned n, unsigned flags)
{
    struct sconn  *sc = (struct sconn *)c;
    struct fp_pkt *head = NULL;
    struct fp_pkt *tail = NULL;
    struct fp_pkt *p;
    uint32_t       space;
    uint32_t       bytes = 0;
    ssize_t        rc;
    unsigned       i;

    if (sc->tcb == NULL) {
        return c->err != 0 ? c->err : -EPIPE;
    }
    if (!sendable(sc->tcb)) {
        return fp_tcp_send_pkts(sc->tcb, &head); /* nothing offered: its error code */
    }
    space = fp_tcp_send_space(sc->tcb);
    for (i = 0; i < n && bytes + segs[i].len <= space; i++) {
        p = rehome(sc->s->st, segs[i].ref, &segs[i]);
        if (p == NULL) {
            mark(sc); /* our pool is empty: no edge will come, look again next pass */
            break;
        }
        p->next = NULL;
        if (tail == NULL) {
            head = p;
        } else {
            tail->next = p;
        }
        tail = p;
        bytes += segs[i].len;
    }
    if (head == NULL) {
        rc = i == n ? 0 : -EAGAIN;
    } else {
        rc = fp_tcp_send_pkts(sc->tcb, &head);
        FP_ASSERT(rc < 0 || head == NULL);
    }
    /* A refused buffer waits whole: writable again once it fits. The stack's edge (when a
     * quarter of the send buffer is free) comes only to those who ask: ask, since the stack
     * was not offered the buffer it could not take. */
    sc->wr_need = i < n ? segs[i].len : 0;
    if (i < n && sc->tcb != NULL) {
        sc->tcb->t_flags |= FP_TF_WANT_WRITE;
    }
    return rc;
}

static void
sio_seg_free(struct fp_io *io, struct fp_seg *seg)
{
    fp_pkt_free(seg->ref);
}

static int
sio_shutdown_write(struct fp_conn *c)
{
    struct sconn *sc = (struct sconn *)c;

    if (sc->tcb == NULL) {
        return c->err != 0 ? c->err : -ENOTCONN;
    }
    return fp_tcp_shutdown(sc->tcb);
}

static void
sio_close(struct fp_conn *c, int abort_conn)
{
    struct sconn *sc = (struct sconn *)c;
    struct sio   *s = sc->s;

    ready_unlink(sc);
    if (sc->tcb != NULL) {
        if (abort_conn) {
            fp_tcp_abort(sc->tcb);
        } else {
            fp_tcp_close(sc->tcb);
        }
        sc->tcb = NULL;
    }
    sc->c.handler = NULL;
    sc->c.data = NULL;
    fp_pool_put(&s->conns, sc);
}

static void
sio_timer_fire(void *arg)
{
    struct fp_timer *t = arg;

    t->fn(t);
}

static void
sio_timer_init(struct fp_io *io, struct fp_timer *t, fp_timer_fn fn, void *data)
{
    t->fn = fn;
    t->data = data;
    fp_timer_init((struct fp_stk_timer *)t->priv, sio_timer_fire, t);
}

static void
sio_timer_arm(struct fp_io *io, struct fp_timer *t, uint32_t timeout_ms)
{
    struct sio *s = sio_of(io);

    fp_timer_arm(&s->wheel, (struct fp_stk_timer *)t->priv,
                 s->now_us + (uint64_t)timeout_ms * 1000);
}

static void
sio_timer_stop(struct fp_io *io, struct fp_timer *t)
{
    fp_timer_cancel(&sio_of(io)->wheel, (struct fp_stk_timer *)t->priv);
}

static uint64_t
sio_now_ms(struct fp_io *io)
{
    return sio_of(io)->now_us / 1000;
}

/* Accepts on every listener that is not paused, then calls each ready connection once. */
static unsigned
sio_dispatch(struct sio *s)
{
    struct sconn  work;
    struct sconn *sc;
    unsigned      ev;
    unsigned      n = 0;
    unsigned      i;

    for (i = 0; i < s->nb_lsn; i++) {
        if (!s->lsn[i]->paused) {
            n += accept_burst(s->lsn[i], SIO_ACCEPT_BURST);
        }
    }
    if (s->ready.rnext == &s->ready) {
        return n;
    }
    /* Move the list aside: connections that stay ready go back on s->ready for next pass. */
    work.rnext = s->ready.rnext;
    work.rprev = s->ready.rprev;
    work.rnext->rprev = &work;
    work.rprev->rnext = &work;
    s->ready.rnext = &s->ready;
    s->ready.rprev = &s->ready;
    while ((sc = work.rnext) != &work) {
        sc->rprev->rnext = sc->rnext;
        sc->rnext->rprev = sc->rprev;
        sc->listed = 0;
        ev = due_events(sc);
        if (ev == 0 || sc->c.handler == NULL) {
            continue;
        }
        sc->opened = 0;
        sc->failed = 0;
        /* Listed again first: ready connections are looked at again next pass, and the
         * handler may close sc (which unlinks it) or change its interest. */
        mark(sc);
        n++;
        sc->c.handler(&sc->c, ev);
    }
    return n;
}

/* Microseconds until the earliest timer of the stack or the proxy, at most max_us. */
static uint64_t
next_deadline_us(struct sio *s, uint64_t max_us)
{
    uint64_t t = fp_timer_wheel_next_within_us(&s->st->wheel, max_us);
    uint64_t p = fp_timer_wheel_next_within_us(&s->wheel, max_us);

    if (p < t) {
        t = p;
    }
    if (t <= s->now_us) {
        return 0;
    }
    return t - s->now_us < max_us ? t - s->now_us : max_us;
}

/*
 * Adaptive polling: spin (with a pause) for SIO_IDLE_SPINS empty passes, then wait for the
 * link's interrupt (or a wake-up) until the next timer, or, where the link cannot wait, sleep
 * in steps of SIO_SLEEP_MAX_US. An idle worker so leaves its core to the rest of the machine,
 * and a busy one never makes a system call to find its next packet.
 */
static void
idle_wait(struct sio *s)
{
    struct timespec ts;
    uint64_t        timeout_us;

    if (s->conf.poll == FP_DPDK_POLL_BUSY || ++s->idle_passes < SIO_IDLE_SPINS) {
        __builtin_ia32_pause();
        return;
    }
    if (s->conf.idle != NULL) {
        timeout_us = next_deadline_us(s, SIO_WAIT_MAX_US);
        if (timeout_us == 0 || __atomic_load_n(&s->notified, __ATOMIC_ACQUIRE)) {
            return;
        }
        if (s->conf.idle(s->conf.link_ctx, timeout_us) == 0) {
            stat_add(&s->stats.waits, 1);
            return;
        }
    }
    ts.tv_sec = 0;
    ts.tv_nsec = SIO_SLEEP_MAX_US * 1000;
    nanosleep(&ts, NULL);
    stat_add(&s->stats.sleeps, 1);
}

/* One loop pass at now_ns (the caller's clock read, so a pass reads the clock once). */
static unsigned
poll_at(struct sio *s, uint64_t now_ns)
{
    unsigned work = 0;

    s->now_us = now_ns / 1000;
    if (__atomic_exchange_n(&s->notified, 0, __ATOMIC_ACQUIRE) && s->io.on_notify != NULL) {
        s->io.on_notify(&s->io, s->io.notify_data);
        work++;
    }
    work += fp_stack_poll(s->st, s->now_us, SIO_RX_BUDGET);
    work += sio_dispatch(s);
    work += fp_timer_wheel_advance(&s->wheel, s->now_us);
    /* The proxy's sends of this pass (net/io.h, on_flush), then one transmit burst. */
    if (s->io.on_flush != NULL) {
        s->io.on_flush(&s->io, s->io.flush_data);
    }
    fp_stack_tx_flush(s->st);
    return work;
}

unsigned
fp_io_stack_poll(struct fp_io *io)
{
    return poll_at(sio_of(io), clock_ns());
}

/*
 * The kernel keeps sending what a process wrote before close() after the process is gone;
 * here the stack is the process. So a stopping loop goes on polling, bounded, until every
 * closed connection's data and FIN are acknowledged.
 */
static void
linger(struct sio *s)
{
    uint64_t end = clock_ns() / 1000 + SIO_LINGER_US;

    while (fp_tcp_nb_unacked(s->st) > 0 && s->now_us < end) {
        if (fp_io_stack_poll(&s->io) == 0) {
            idle_wait(s);
        }
    }
}

static void
sio_run(struct fp_io *io)
{
    struct sio *s = sio_of(io);
    uint64_t    t0;
    uint64_t    t1;
    unsigned    work;

    s->stopping = 0;
    t0 = clock_ns();
    while (!s->stopping) {
        work = poll_at(s, t0);
        if (work == 0) {
            idle_wait(s);
        } else {
            s->idle_passes = 0;
        }
        t1 = clock_ns();
        stat_add(work != 0 ? &s->stats.busy_ns : &s->stats.idle_ns, t1 - t0);
        stat_add(&s->stats.loops, 1);
        t0 = t1;
    }
    linger(s);
}

static void
sio_stop(struct fp_io *io)
{
    sio_of(io)->stopping = 1;
}

static void
sio_notify(struct fp_io *io)
{
    struct sio *s = sio_of(io);

    __atomic_store_n(&s->notified, 1, __ATOMIC_SEQ_CST);
    if (s->conf.wake != NULL) {
        s->conf.wake(s->conf.link_ctx);
    }
}

static void
sio_destroy(struct fp_io *io)
{
    struct sio *s = sio_of(io);

    while (s->nb_lsn > 0) {
        sio_listener_close(&s->lsn[s->nb_lsn - 1]->l);
    }
    fp_stack_destroy(s->st);
    if (s->conf.link_release != NULL) {
        s->conf.link_release(s->conf.link_ctx);
    }
    fp_timer_wheel_fini(&s->wheel);
    fp_pool_destroy(&s->conns);
    free(s);
}

static const struct fp_io_ops sio_ops = {
        .name = "stack",
        .listen = sio_listen,
        .listener_pause = sio_listener_pause,
        .listener_close = sio_listener_close,
        .listener_pending = sio_listener_pending,
        .listener_shed = sio_listener_shed,
        .connect = sio_connect,
        .want = sio_want,
        .recv = sio_recv,
        .send = sio_send,
        .sendv = sio_sendv,
        .recv_segs = sio_recv_segs,
        .send_segs = sio_send_segs,
        .seg_free = sio_seg_free,
        .shutdown_write = sio_shutdown_write,
        .close = sio_close,
        .timer_init = sio_timer_init,
        .timer_arm = sio_timer_arm,
        .timer_stop = sio_timer_stop,
        .now_ms = sio_now_ms,
        .run = sio_run,
        .stop = sio_stop,
        .notify = sio_notify,
        .destroy = sio_destroy,
};

static void
ctr_add_entry(const char *name, const char *help, size_t off, size_t base)
{
    struct fp_io_counter *c = &sio_ctr_table[sio_ctr_nb++];

    c->name = name;
    c->help = help;
    c->gauge = false;
    c->off = off;
    c->base = base;
}

static void
build_counter_table(const struct fp_io_stack_conf *sc)
{
    unsigned i;
    size_t   k;

    if (sio_ctr_nb != 0) {
        return;
    }
    ctr_add_entry("loops", "Polling loop passes.", offsetof(struct sio, stats.loops), 0);
    ctr_add_entry("busy_ns", "Nanoseconds of loop passes that found work (busy cycles).",
                  offsetof(struct sio, stats.busy_ns), 0);
    ctr_add_entry("idle_ns", "Nanoseconds of loop passes that found nothing, sleeps included.",
                  offsetof(struct sio, stats.idle_ns), 0);
    ctr_add_entry("idle_sleeps", "Adaptive polling: short sleeps of an idle worker.",
                  offsetof(struct sio, stats.sleeps), 0);
    ctr_add_entry("idle_waits", "Adaptive polling: waits for the RX interrupt or a wake-up.",
                  offsetof(struct sio, stats.waits), 0);
    ctr_add_entry("rss_port_misses",
                  "Active opens: RSS-chosen local ports refused (busy or TIME-WAIT for the peer).",
                  offsetof(struct sio, stats.port_misses), 0);
    ctr_add_entry("rss_no_port", "Active opens that found no local port for this worker's queue.",
                  offsetof(struct sio, stats.no_port), 0);
    for (i = 0; i < FP_STK_CTR_NB; i++) {
        snprintf(sio_ctr_names[i], sizeof(sio_ctr_names[i]), "stack_%s", stk_ctr_ids[i]);
        for (k = 0; sio_ctr_names[i][k] != '\0'; k++) {
            sio_ctr_names[i][k] = (char)tolower((unsigned char)sio_ctr_names[i][k]);
        }
        ctr_add_entry(sio_ctr_names[i], fp_stack_counter_name(i), i * sizeof(uint64_t),
                      offsetof(struct sio, stk_ctr));
    }
    for (i = 0; i < sc->nb_link_ctr && i < SIO_LINK_CTRS_MAX; i++) {
        ctr_add_entry(sc->link_ctr_names[i], sc->link_ctr_help[i], i * sizeof(uint64_t),
                      offsetof(struct sio, link_ctr));
    }
}

size_t
fp_io_stack_mem_bound(uint32_t nb_pkts, uint32_t nb_tcbs)
{
    /* Packets and TCBs with their free-list slots, the TCB hash (a power of two at most
     * twice the TCBs), the proxy's and the stack's timer wheels. */
    return (size_t)nb_pkts * (sizeof(struct fp_pkt) + sizeof(void *)) +
           (size_t)nb_tcbs * (sizeof(struct fp_tcb) + 3 * sizeof(void *)) +
           2 * 4096 * sizeof(void *) + sizeof(struct sio);
}

size_t
fp_io_stack_conn_size(void)
{
    return sizeof(struct sconn);
}

void
fp_io_stack_stats(const struct fp_io *io, struct fp_io_stack_stats *out)
{
    const struct sio *s = (const struct sio *)io;

    out->loops = __atomic_load_n(&s->stats.loops, __ATOMIC_RELAXED);
    out->busy_ns = __atomic_load_n(&s->stats.busy_ns, __ATOMIC_RELAXED);
    out->idle_ns = __atomic_load_n(&s->stats.idle_ns, __ATOMIC_RELAXED);
    out->sleeps = __atomic_load_n(&s->stats.sleeps, __ATOMIC_RELAXED);
    out->waits = __atomic_load_n(&s->stats.waits, __ATOMIC_RELAXED);
    out->port_misses = __atomic_load_n(&s->stats.port_misses, __ATOMIC_RELAXED);
    out->no_port = __atomic_load_n(&s->stats.no_port, __ATOMIC_RELAXED);
}

const struct fp_stack *
fp_io_stack_of(const struct fp_io *io)
{
    return ((const struct sio *)io)->st;
}

struct fp_io *
fp_io_stack_create(const struct fp_io_conf *ioc, const struct fp_io_stack_conf *sc, char *err,
                   size_t errlen)
{
    struct sio *s;
    uint64_t    now_us = clock_ns() / 1000;
    int         rc;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->ops = sio_ops;
    if (sc->name != NULL) {
        s->ops.name = sc->name;
    }
    build_counter_table(sc);
    s->ops.counters = sio_ctr_table;
    s->ops.nb_counters = sio_ctr_nb;
    s->io.ops = &s->ops;
    s->io.steering = sc->steering;
    s->link_ctr = sc->link_ctr;
    s->io.on_notify = ioc->on_notify;
    s->io.notify_data = ioc->notify_data;
    s->conf = *sc;
    if (s->conf.backlog == 0) {
        s->conf.backlog = 1024;
    }
    s->ready.rnext = &s->ready;
    s->ready.rprev = &s->ready;
    s->now_us = now_us;
    if (fp_pool_init(&s->conns, sizeof(struct sconn), ioc->max_conns) != 0) {
        snprintf(err, errlen, "cannot allocate %u connections", ioc->max_conns);
        goto err_free;
    }
    if (fp_timer_wheel_init(&s->wheel, 4096, 1000, now_us) != 0) {
        snprintf(err, errlen, "cannot allocate the timer wheel");
        goto err_pool;
    }
    rc = fp_stack_create(&sc->stack, now_us, &s->st);
    if (rc != 0) {
        snprintf(err, errlen, "cannot create the TCP/IP stack: %s", strerror(-rc));
        goto err_wheel;
    }
    s->stk_ctr = s->st->ctr;
    fp_stack_attach_link(s->st, sc->link, now_us);
    return &s->io;

err_wheel:
    fp_timer_wheel_fini(&s->wheel);
err_pool:
    fp_pool_destroy(&s->conns);
err_free:
    free(s);
    return NULL;
}
