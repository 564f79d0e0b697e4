/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The io_uring backend: one ring per worker, kernel sockets. Each instance owns its ring, a
 * ring of provided receive buffers (one buffer group), a connection pool, a send buffer pool,
 * its listeners and a timer wheel; nothing is shared between workers.
 *
 * Receiving: every connection has a multishot receive armed that picks buffers from the
 * provided ring; each completion appends its buffer to the connection's receive queue (linked
 * through the per-buffer arrays, so a connection can hold any number of them and all together
 * are bounded by the ring). recv copies from the queue into the caller's fp_buf and gives the
 * emptied buffers back; recv_segs lends the buffers themselves (see is_rbuf). A connection that
 * holds UIO_RQ_HIGH bytes nobody reads has its receive cancelled (the kernel's socket buffer
 * and TCP's window then push back) and re-armed once the proxy has read them. An empty buffer
 * ring ends a multishot receive with ENOBUFS; the connection then falls back to a poll and
 * read(2) into the caller's buffer until it sees EAGAIN, and a multishot receive again after
 * that.
 *
 * Sending: send copies into the connection's send buffer (UIO_SBUF_SIZE, from a pool, attached
 * while it holds bytes) and returns -EAGAIN when it is full. The bytes leave at the end of the
 * loop iteration, after the proxy's on_flush, in one io_uring_enter with everything else: one
 * send in flight per connection, MSG_WAITALL so the kernel itself finishes a short send, and
 * MSG_MORE when the proxy said more bytes of the message follow (FP_SEND_MORE) or still holds
 * bytes the buffer could not take.
 *
 * Registered files: each connection's socket also sits in the ring's file table (see
 * slot_install), and its receives, sends, polls and connect name the slot, not the descriptor.
 *
 * Readiness: net/io.h promises levels, completions are edges. As in the stack backend, an edge
 * (a completion, a change of interest) puts the connection on the ready list; each iteration
 * computes (level & interest) for every listed connection and calls the handler while it is
 * not empty. The level: readable while the receive queue holds bytes or EOF or an error,
 * writable while the send buffer has room.
 *
 * Closing: a request in the kernel still points at its connection, so close returns the object
 * to the pool only once the last completion for it has arrived (cancelling its receive, letting
 * a graceful close's send finish, UIO_LINGER_MS at most). The descriptor is closed after that,
 * so its number cannot be reused while a request of ours still names it.
 *
 * The loop: reap every completion, call the ready connections, run the timers, on_flush, queue
 * the sends and re-arms, then submit and wait in one io_uring_enter (until a completion or the
 * next timer). With IORING_SETUP_DEFER_TASKRUN completions are posted only while we wait, so
 * the ring is created disabled and enabled by the worker's own thread (SINGLE_ISSUER).
 */
#include "net/io_uring.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "net/pool.h"
#include "net/sock.h"
#include "net/stack/timer.h"

#define UIO_SQ_ENTRIES 1024
#define UIO_CQ_ENTRIES 8192
/* Completions handled per peek; the loop peeks until the ring is empty. */
#define UIO_CQE_BATCH 128
/* One provided receive buffer: a proxy buffer's worth, so one copy fills one fp_buf. */
#define UIO_RBUF_SIZE 16384
/* Accepted connections a listener holds until they are delivered; more are reset. */
#define UIO_HELD_MAX 1024
/* Held connections delivered per listener and iteration, after the ready connections, so a
 * flood of new ones cannot starve established ones (the kernel backend accepts 16 a turn). */
#define UIO_ACCEPT_BURST 16
/* Provided buffers per worker: one per 4 connections, a power of two in [MIN, MAX]. */
#define UIO_RBUF_MIN 64
#define UIO_RBUF_MAX 1024
#define UIO_BGID     0
/* Bytes a connection's receive queue may hold before its receive is paused (read-ahead). */
#define UIO_RQ_HIGH (4 * UIO_RBUF_SIZE)
/* A connection's send buffer. */
#define UIO_SBUF_SIZE 16384
/* Timers are looked up this far ahead first (a scan of this many 1 ms slots). */
#define UIO_WAIT_MAX_US 50000
/* How long a closed connection may still send what it queued before it is cut. */
#define UIO_LINGER_MS 2000
#define UIO_NO_BUF    UINT32_MAX

/* What a completion is for: the low bits of its user_data (objects are 8-byte aligned). */
enum {
    UD_IGNORE = 0, /* cancels and closes: nothing to do */
    UD_RECV,
    UD_SEND,
    UD_CONNECT,
    UD_ACCEPT,
    UD_WAKE,
    UD_POLL,  /* a connection's readiness poll (the buffer ring was empty) */
    UD_FILES, /* a connection's socket installed in its registered file slot */
    UD_MASK = 7,
};

struct uio;

struct uconn {
    struct fp_conn      c; /* first: the proxy's view */
    struct uio         *u;
    struct uconn       *rnext; /* ready list */
    struct uconn       *rprev;
    struct uconn       *qnext; /* work queue: a send or a receive to (re-)arm */
    struct uconn       *znext; /* closed, waiting for its last completion */
    struct uconn       *zprev;
    int                 fd;
    int                 slot; /* registered file index (IOSQE_FIXED_FILE), -1 if none */
    unsigned            want;
    uint8_t             listed;     /* on the ready list */
    uint8_t             accepted;   /* a client's (ready list 1), not one we opened (0) */
    uint8_t             queued;     /* on the work queue */
    uint8_t             connecting; /* connect in flight */
    uint8_t             opened;     /* connect completed, not yet reported */
    uint8_t             failed;     /* connect failed, not yet reported (FP_EV_ERROR) */
    uint8_t             closing;    /* closed by the proxy; waiting for completions */
    uint8_t             rcv_on;     /* a multishot receive or a poll is in the kernel */
    uint8_t             rcv_poll;   /* ... a poll: recv reads the socket itself */
    uint8_t             rcv_stop;   /* ... and its cancel was asked */
    uint8_t             starved;    /* the last receive ended for want of buffers */
    uint8_t             rd_ready;   /* the poll saw the socket readable; recv has not seen EAGAIN */
    uint8_t             rcv_eof;
    uint8_t             shut_wanted; /* shutdown_write once the send buffer drains */
    uint8_t             shut_done;
    uint8_t             send_on; /* a send is in the kernel */
    uint8_t             sb_more; /* more bytes of the message follow the buffer's last byte */
    uint16_t            nb_ops;  /* requests in the kernel naming this connection */
    int                 rcv_err; /* -errno of the receive side, 0 if none */
    int                 snd_err; /* -errno of the send side, 0 if none */
    uint32_t            rq_head; /* receive queue: first buffer id, or UIO_NO_BUF */
    uint32_t            rq_tail;
    uint32_t            rq_off; /* bytes of the first buffer already read */
    uint32_t            rq_bytes;
    uint8_t            *sb;      /* send buffer, NULL while empty */
    uint32_t            sb_head; /* [sb_head, sb_head + sb_flight): in the kernel */
    uint32_t            sb_flight;
    uint32_t            sb_tail; /* [sb_head + sb_flight, sb_tail): waiting for the flush */
    struct fp_stk_timer linger;
};

struct ulistener {
    struct fp_listener l;
    struct uio        *u;
    struct ulistener  *next;
    struct ulistener  *prev;
    int                fd;
    int               *held; /* accepted while paused, not yet delivered: a FIFO */
    uint32_t           held_head;
    uint32_t           nb_held;
    uint8_t            armed; /* a multishot accept is in the kernel */
    uint8_t            paused;
    uint8_t            closing; /* closed by the proxy; freed at the accept's last completion */
};

/* Per-worker counters (struct fp_io_counter). */
struct uio_stats {
    uint64_t loops;
    uint64_t enters;        /* submit (and wait) calls into the kernel */
    uint64_t sqes;          /* requests submitted */
    uint64_t cqes;          /* completions handled */
    uint64_t recv_bufs;     /* receive completions carrying data (one provided buffer each) */
    uint64_t recv_nobufs;   /* multishot receives ended by an empty buffer ring */
    uint64_t recv_paused;   /* receives cancelled: UIO_RQ_HIGH bytes unread */
    uint64_t recv_rearms;   /* multishot receives armed again after they ended */
    uint64_t recv_polls;    /* receives through poll and read(2): the buffer ring was empty */
    uint64_t send_full;     /* sends refused (-EAGAIN): send buffer full */
    uint64_t send_short;    /* sends the kernel completed short (the rest is sent again) */
    uint64_t linger_cut;    /* closed connections whose unsent bytes were dropped at the end of
                             * the linger time */
    uint64_t sq_full;       /* early submissions: the submission queue filled up */
    uint64_t held_reset;    /* connections reset: a paused listener already held UIO_HELD_MAX */
    uint64_t rbufs_free;    /* gauge: provided buffers the kernel can fill */
    uint64_t fixed_ops;     /* requests that named a registered file, not a descriptor */
    uint64_t no_slot;       /* connections served through their descriptor: no slot */
    uint64_t send_more;     /* sends submitted with MSG_MORE */
    uint64_t collect_waits; /* waits that gathered completions (global.io_collect) */
    uint64_t segs_lent;     /* provided buffers lent to the proxy without a copy (recv_segs) */
};

struct uio {
    struct fp_io    io; /* first */
    struct io_uring ring;
    struct fp_pool  conns;
    struct fp_pool  sbufs;
    /* Ready lists (heads: rnext/rprev only): 0 for the connections we opened, served first as
     * the kernel backend serves them (a server's answer frees a server slot at once), 1 for
     * accepted ones. */
    struct uconn              ready[2];
    struct uconn             *work;    /* work queue (qnext) */
    struct uconn              zombies; /* list head (znext/zprev only) */
    struct ulistener          lsn;     /* list head (next/prev only) */
    struct fp_timer_wheel     wheel;
    struct io_uring_buf_ring *br;
    size_t                    br_size;
    uint8_t                  *rb_mem;
    uint32_t                 *rb_next; /* per buffer: the next one of its receive queue */
    uint32_t                 *rb_len;  /* per buffer: bytes received into it */
    uint32_t                  nb_rbufs;
    uint32_t                  br_added; /* buffers given back since the last advance */
    uint32_t                  nb_slots; /* registered file table: connection pool index < this */
    uint64_t                  now_us;
    uint64_t         next_due; /* at or before the earliest armed timer; UINT64_MAX: none */
    uint64_t         stop_us;  /* when stop was called (linger deadline base) */
    uint64_t         wake_val;
    int              efd;
    int              disabled; /* created IORING_SETUP_R_DISABLED: enable in run */
    int              stopping;
    int              notified;
    unsigned         nb_zombies;
    uint32_t         collect_us; /* global.io_collect; 0 = off */
    uint64_t         wait_at;    /* when the last wait began */
    struct uio_stats st;
};

_Static_assert(sizeof(struct fp_stk_timer) <= sizeof(((struct fp_timer *)0)->priv),
               "fp_timer.priv too small for a wheel timer");

static const struct fp_io_counter uio_counters[] = {
        {"uring_loops", "io_uring loop iterations.", false, offsetof(struct uio, st.loops), 0},
        {"collect_waits", "Loop iterations that gathered events before polling (io_collect).",
         false, offsetof(struct uio, st.collect_waits), 0},
        {"uring_enters", "io_uring_enter calls (submit and wait).", false,
         offsetof(struct uio, st.enters), 0},
        {"uring_sqes", "io_uring requests submitted.", false, offsetof(struct uio, st.sqes), 0},
        {"uring_cqes", "io_uring completions handled.", false, offsetof(struct uio, st.cqes), 0},
        {"uring_recv_bufs", "Receive completions with data (one provided buffer each).", false,
         offsetof(struct uio, st.recv_bufs), 0},
        {"uring_recv_nobufs",
         "Multishot receives ended because the provided buffer ring was empty.", false,
         offsetof(struct uio, st.recv_nobufs), 0},
        {"uring_recv_paused", "Receives paused: a connection held its read-ahead bound unread.",
         false, offsetof(struct uio, st.recv_paused), 0},
        {"uring_recv_rearms", "Multishot receives armed again after they ended.", false,
         offsetof(struct uio, st.recv_rearms), 0},
        {"uring_recv_polls",
         "Receives through a poll and read(2) because the provided buffer ring "
         "was empty.",
         false, offsetof(struct uio, st.recv_polls), 0},
        {"uring_send_full", "Sends refused with EAGAIN: the connection's send buffer was full.",
         false, offsetof(struct uio, st.send_full), 0},
        {"uring_send_short", "Sends the kernel completed short (the rest was sent again).", false,
         offsetof(struct uio, st.send_short), 0},
        {"uring_linger_cut",
         "Closed connections whose unsent bytes were dropped after the linger "
         "time.",
         false, offsetof(struct uio, st.linger_cut), 0},
        {"uring_sq_full", "Early submissions because the submission queue was full.", false,
         offsetof(struct uio, st.sq_full), 0},
        {"uring_held_reset",
         "Connections reset because a paused listener already held its maximum "
         "of accepted connections.",
         false, offsetof(struct uio, st.held_reset), 0},
        {"uring_rbufs_free", "Provided receive buffers the kernel can fill.", true,
         offsetof(struct uio, st.rbufs_free), 0},
        {"uring_fixed_ops",
         "Requests that named a connection's registered file (IOSQE_FIXED_FILE) instead of "
         "its descriptor.",
         false, offsetof(struct uio, st.fixed_ops), 0},
        {"uring_fixed_fallbacks",
         "Connections served through their plain descriptor: the registered file table was "
         "full, missing, or refused the socket.",
         false, offsetof(struct uio, st.no_slot), 0},
        {"uring_send_more",
         "Sends submitted with MSG_MORE: more bytes of the same message followed.", false,
         offsetof(struct uio, st.send_more), 0},
        {"uring_segs_lent",
         "Provided receive buffers lent to the proxy as segments, without a copy.", false,
         offsetof(struct uio, st.segs_lent), 0},
};

static inline struct uio *
uio_of(struct fp_io *io)
{
    return (struct uio *)io;
}

static void
stat_add(uint64_t *ctr, uint64_t v)
{
    __atomic_store_n(ctr, *ctr + v, __ATOMIC_RELAXED);
}

static uint64_t
clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t
ud_of(const void *p, unsigned tag)
{
    return (uint64_t)(uintptr_t)p | tag;
}

/* Returns a submission entry, submitting early when the queue is full (never NULL then:
 * the kernel consumed the entries). */
static struct io_uring_sqe *
get_sqe(struct uio *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    int                  rc;

    while (sqe == NULL) {
        stat_add(&u->st.sq_full, 1);
        stat_add(&u->st.enters, 1);
        rc = io_uring_submit(&u->ring);
        if (rc > 0) {
            stat_add(&u->st.sqes, (uint64_t)rc);
        }
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

static void
cancel_ud(struct uio *u, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(u);

    io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
}

/* ---- Registered files ---- */

/*
 * Every connection's socket sits in the registered file table at its own slot, its index in the
 * connection pool (no allocator: a slot is free exactly while its object is), and its requests
 * name the slot with IOSQE_FIXED_FILE, so the kernel skips fget/fput per request. Installing is
 * a request too (IORING_OP_FILES_UPDATE) queued before the connection's first one: it runs
 * inline at submission, in queue order, so it needs neither a system call of its own nor a
 * link. The descriptor stays open beside the slot for what has no request here (shutdown,
 * SO_LINGER, getpeername, the read(2) fallback); both are closed when the object is released.
 * A connection whose pool index lies beyond the table (RLIMIT_NOFILE below the pool, or a
 * kernel that refused the table) is served through its descriptor, counted.
 */
static void
slot_install(struct uio *u, struct uconn *uc)
{
    struct io_uring_sqe *sqe;
    size_t               idx = (size_t)((uint8_t *)uc - u->conns.mem) / u->conns.elt_size;

    if (idx >= u->nb_slots) {
        stat_add(&u->st.no_slot, 1);
        return;
    }
    sqe = get_sqe(u);
    /* The kernel reads uc->fd when it runs the request; finish waits for its completion. */
    io_uring_prep_files_update(sqe, &uc->fd, 1, (int)idx);
    io_uring_sqe_set_data64(sqe, ud_of(uc, UD_FILES));
    uc->slot = (int)idx;
    uc->nb_ops++;
}

/* Names uc's socket in sqe (prepared with uc->fd) by its registered slot, if it has one. */
static void
sqe_use_slot(struct uio *u, struct io_uring_sqe *sqe, const struct uconn *uc)
{
    if (uc->slot >= 0) {
        sqe->fd = uc->slot;
        sqe->flags |= IOSQE_FIXED_FILE;
        stat_add(&u->st.fixed_ops, 1);
    }
}

/* Sizes the table from the connection pool; the kernel refuses one above RLIMIT_NOFILE. No
 * table (an old kernel) leaves every connection on its descriptor, counted per connection. */
static void
slots_init(struct uio *u, uint32_t max_conns)
{
    struct rlimit rl;
    uint32_t      n = max_conns;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n) {
        n = (uint32_t)rl.rlim_cur;
    }
    if (n > 0 && io_uring_register_files_sparse(&u->ring, n) == 0) {
        u->nb_slots = n;
    }
}

/* ---- Provided receive buffers ---- */

static inline uint8_t *
rbuf(struct uio *u, uint32_t bid)
{
    return u->rb_mem + (size_t)bid * UIO_RBUF_SIZE;
}

/* Gives buffer bid back to the kernel (visible at the next advance, before the submit). */
static void
rbuf_put(struct uio *u, uint32_t bid)
{
    io_uring_buf_ring_add(u->br, rbuf(u, bid), UIO_RBUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(u->nb_rbufs), (int)u->br_added);
    u->br_added++;
}

static void
rbuf_publish(struct uio *u)
{
    if (u->br_added > 0) {
        io_uring_buf_ring_advance(u->br, (int)u->br_added);
        stat_add(&u->st.rbufs_free, u->br_added);
        u->br_added = 0;
    }
}

static void
rq_drop(struct uio *u, struct uconn *uc)
{
    uint32_t bid;

    while ((bid = uc->rq_head) != UIO_NO_BUF) {
        uc->rq_head = u->rb_next[bid];
        rbuf_put(u, bid);
    }
    uc->rq_tail = UIO_NO_BUF;
    uc->rq_off = 0;
    uc->rq_bytes = 0;
}

/* ---- Readiness and the ready list ---- */

static void
ready_unlink(struct uconn *uc)
{
    if (!uc->listed) {
        return;
    }
    uc->rprev->rnext = uc->rnext;
    uc->rnext->rprev = uc->rprev;
    uc->rnext = NULL;
    uc->rprev = NULL;
    uc->listed = 0;
}

/* Puts uc on the ready list (if not there): its level is computed at the next dispatch. */
static void
mark(struct uconn *uc)
{
    struct uconn *head = &uc->u->ready[uc->accepted];

    if (uc->listed || uc->closing) {
        return;
    }
    uc->rprev = head->rprev;
    uc->rnext = head;
    head->rprev->rnext = uc;
    head->rprev = uc;
    uc->listed = 1;
}

static uint32_t
sb_room(const struct uconn *uc)
{
    if (uc->sb == NULL) {
        return UIO_SBUF_SIZE;
    }
    return UIO_SBUF_SIZE - uc->sb_tail + (uc->sb_flight == 0 ? uc->sb_head : 0);
}

/* The level of uc, as epoll would report it for the socket. */
static unsigned
level(const struct uconn *uc)
{
    unsigned ev = 0;

    if (uc->connecting) {
        return 0;
    }
    if (uc->rq_bytes > 0 || uc->rcv_eof || uc->rcv_err != 0 || uc->rd_ready) {
        ev |= FP_EV_READ;
    }
    if (uc->snd_err != 0 || (!uc->shut_wanted && sb_room(uc) > 0)) {
        ev |= FP_EV_WRITE;
    }
    return ev;
}

static unsigned
due_events(const struct uconn *uc)
{
    if (uc->failed) {
        return FP_EV_ERROR;
    }
    return (level(uc) & uc->want) | (uc->opened ? FP_EV_WRITE : 0u);
}

/* Queues uc for the end of the iteration: a send to submit or a receive to arm. */
static void
enqueue(struct uconn *uc)
{
    if (uc->queued) {
        return;
    }
    uc->queued = 1;
    uc->qnext = uc->u->work;
    uc->u->work = uc;
}

/* ---- Timers ---- */

static void
wheel_arm(struct uio *u, struct fp_stk_timer *t, uint64_t expire_us)
{
    fp_timer_arm(&u->wheel, t, expire_us);
    if (expire_us < u->next_due) {
        u->next_due = expire_us;
    }
}

/*
 * When the loop must wake for its timers: UINT64_MAX if none is armed. next_due is a lower
 * bound kept at every arm (a cancel or a re-arm to later leaves it early, never late), so the
 * wheel is searched only when that bound comes within UIO_WAIT_MAX_US: a short search first,
 * the whole wheel (O(slots)) only when the bound was stale. An idle worker so sleeps until its
 * next timer, and a busy one rarely searches at all.
 */
static uint64_t
wake_deadline(struct uio *u)
{
    uint64_t t;

    if (u->wheel.nb_armed == 0) {
        u->next_due = UINT64_MAX;
        return UINT64_MAX;
    }
    if (u->next_due > u->now_us + UIO_WAIT_MAX_US) {
        return u->next_due;
    }
    t = fp_timer_wheel_next_within_us(&u->wheel, UIO_WAIT_MAX_US);
    if (t == UINT64_MAX) {
        t = fp_timer_wheel_next_us(&u->wheel);
    }
    u->next_due = t;
    return t;
}

/* ---- Connections ---- */

static void uconn_linger_fire(void *arg);

static struct uconn *
uconn_get(struct uio *u, int fd)
{
    struct uconn *uc = fp_pool_get(&u->conns);

    if (uc == NULL) {
        u->io.conn_pool_empty++;
        return NULL;
    }
    memset(uc, 0, sizeof(*uc));
    uc->c.io = &u->io;
    uc->u = u;
    uc->fd = fd;
    uc->slot = -1;
    uc->rq_head = UIO_NO_BUF;
    uc->rq_tail = UIO_NO_BUF;
    fp_timer_init(&uc->linger, uconn_linger_fire, uc);
    slot_install(u, uc);
    return uc;
}

static bool
rcv_can_arm(const struct uconn *uc)
{
    return !uc->rcv_on && !uc->rd_ready && !uc->rcv_eof && uc->rcv_err == 0 && !uc->closing &&
           !uc->connecting && uc->rq_bytes < UIO_RQ_HIGH;
}

/*
 * The buffer ring is empty: instead of a receive, a one-shot poll; once it fires, recv reads
 * the socket into the caller's own buffer (as the kernel backend does) until EAGAIN. Without
 * this, connections whose unread data holds every buffer (slow readers) would starve the
 * others, even the ones whose progress would free them.
 */
static void
rcv_poll_arm(struct uio *u, struct uconn *uc)
{
    struct io_uring_sqe *sqe = get_sqe(u);

    io_uring_prep_poll_add(sqe, uc->fd, POLLIN);
    sqe_use_slot(u, sqe, uc);
    io_uring_sqe_set_data64(sqe, ud_of(uc, UD_POLL));
    uc->rcv_on = 1;
    uc->rcv_poll = 1;
    uc->nb_ops++;
    stat_add(&u->st.recv_polls, 1);
}

static void
rcv_arm(struct uio *u, struct uconn *uc)
{
    struct io_uring_sqe *sqe = get_sqe(u);

    io_uring_prep_recv_multishot(sqe, uc->fd, NULL, 0, 0);
    sqe_use_slot(u, sqe, uc);
    uc->rcv_poll = 0;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = UIO_BGID;
    io_uring_sqe_set_data64(sqe, ud_of(uc, UD_RECV));
    uc->rcv_on = 1;
    uc->nb_ops++;
}

static void
snd_submit(struct uio *u, struct uconn *uc)
{
    struct io_uring_sqe *sqe;
    uint32_t             len = uc->sb_tail - uc->sb_head;
    int                  flags = MSG_NOSIGNAL | MSG_WAITALL;

    /* The proxy's "more data follows" (FP_SEND_MORE), or bytes it could not hand over yet:
     * TCP may hold a partial segment back for them, as the kernel backend's send does. */
    if (uc->sb_more) {
        flags |= MSG_MORE;
        stat_add(&u->st.send_more, 1);
    }
    sqe = get_sqe(u);
    io_uring_prep_send(sqe, uc->fd, uc->sb + uc->sb_head, len, flags);
    sqe_use_slot(u, sqe, uc);
    io_uring_sqe_set_data64(sqe, ud_of(uc, UD_SEND));
    uc->sb_flight = len;
    uc->send_on = 1;
    uc->nb_ops++;
}

static void
sb_release(struct uio *u, struct uconn *uc)
{
    if (uc->sb != NULL) {
        fp_pool_put(&u->sbufs, uc->sb);
        uc->sb = NULL;
    }
    uc->sb_head = 0;
    uc->sb_tail = 0;
    uc->sb_flight = 0;
}

static void
do_shutdown(struct uconn *uc)
{
    uc->shut_wanted = 0;
    if (!uc->shut_done) {
        uc->shut_done = 1;
        shutdown(uc->fd, SHUT_WR);
    }
}

/* A closed connection with no request left in the kernel and nothing left to send: its
 * descriptor is closed through the ring and its object goes back to the pool. */
static void
uconn_try_finish(struct uio *u, struct uconn *uc)
{
    struct io_uring_sqe *sqe;

    if (!uc->closing || uc->nb_ops > 0 || uc->queued ||
        (uc->sb_tail > uc->sb_head && uc->snd_err == 0)) {
        return;
    }
    fp_timer_cancel(&u->wheel, &uc->linger);
    if (uc->slot >= 0) {
        /* Before a next install at this slot, which queue order guarantees. */
        sqe = get_sqe(u);
        io_uring_prep_close_direct(sqe, (unsigned)uc->slot);
        io_uring_sqe_set_data64(sqe, UD_IGNORE);
        uc->slot = -1;
    }
    sqe = get_sqe(u);
    io_uring_prep_close(sqe, uc->fd);
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    uc->fd = -1;
    rq_drop(u, uc);
    sb_release(u, uc);
    uc->zprev->znext = uc->znext;
    uc->znext->zprev = uc->zprev;
    u->nb_zombies--;
    fp_pool_put(&u->conns, uc);
}

/* The linger time of a closed connection is over: whatever it still sends is cut. */
static void
uconn_linger_fire(void *arg)
{
    struct uconn *uc = arg;
    struct uio   *u = uc->u;

    stat_add(&u->st.linger_cut, 1);
    uc->snd_err = -ETIMEDOUT;
    if (uc->sb_flight > 0) {
        uc->sb_tail = uc->sb_head + uc->sb_flight;
        cancel_ud(u, ud_of(uc, UD_SEND));
    } else {
        uc->sb_tail = uc->sb_head;
    }
    uconn_try_finish(u, uc);
}

/* ---- Completions ---- */

static void
on_recv(struct uio *u, struct uconn *uc, const struct io_uring_cqe *cqe)
{
    uint32_t bid;

    if (cqe->flags & IORING_CQE_F_BUFFER) {
        bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        stat_add(&u->st.rbufs_free, (uint64_t)-1);
        if (cqe->res <= 0 || uc->closing) {
            rbuf_put(u, bid);
        } else {
            stat_add(&u->st.recv_bufs, 1);
            u->rb_len[bid] = (uint32_t)cqe->res;
            u->rb_next[bid] = UIO_NO_BUF;
            if (uc->rq_tail == UIO_NO_BUF) {
                uc->rq_head = bid;
            } else {
                u->rb_next[uc->rq_tail] = bid;
            }
            uc->rq_tail = bid;
            uc->rq_bytes += (uint32_t)cqe->res;
        }
    }
    if (cqe->res == 0) {
        uc->rcv_eof = 1;
    } else if (cqe->res == -ENOBUFS) {
        stat_add(&u->st.recv_nobufs, 1);
        uc->starved = 1;
    } else if (cqe->res < 0 && cqe->res != -ECANCELED) {
        uc->rcv_err = cqe->res;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        uc->rcv_on = 0;
        uc->rcv_stop = 0;
        uc->nb_ops--;
        if (uc->closing) {
            uconn_try_finish(u, uc);
            return;
        }
        if (rcv_can_arm(uc)) {
            enqueue(uc);
        }
    } else if (uc->rq_bytes >= UIO_RQ_HIGH && !uc->rcv_stop) {
        /* Read-ahead bound reached: the rest waits in the socket, under TCP flow control. */
        stat_add(&u->st.recv_paused, 1);
        uc->rcv_stop = 1;
        cancel_ud(u, ud_of(uc, UD_RECV));
    }
    mark(uc);
}

static void
on_poll(struct uio *u, struct uconn *uc, int res)
{
    uc->rcv_on = 0;
    uc->rcv_stop = 0;
    uc->rcv_poll = 0;
    uc->starved = 0;
    uc->nb_ops--;
    if (uc->closing) {
        uconn_try_finish(u, uc);
        return;
    }
    if (res != -ECANCELED) {
        uc->rd_ready = 1; /* readable, at EOF or in error: recv tells which */
    }
    mark(uc);
}

static void
on_send(struct uio *u, struct uconn *uc, int res)
{
    uc->send_on = 0;
    uc->nb_ops--;
    if (res < 0) {
        if (uc->snd_err == 0) {
            uc->snd_err = res;
        }
        uc->sb_tail = uc->sb_head; /* nothing more can leave */
    } else {
        if ((uint32_t)res < uc->sb_flight) {
            stat_add(&u->st.send_short, 1);
        }
        uc->sb_head += (uint32_t)res;
    }
    uc->sb_flight = 0;
    if (uc->sb_head == uc->sb_tail) {
        sb_release(u, uc);
        if (uc->shut_wanted) {
            do_shutdown(uc);
        }
    } else if (uc->snd_err == 0) {
        enqueue(uc);
    }
    if (uc->closing) {
        uconn_try_finish(u, uc);
        return;
    }
    mark(uc);
}

/* The install of uc's socket in its slot completed (res: 1, or -errno). */
static void
on_files(struct uio *u, struct uconn *uc, int res)
{
    uc->nb_ops--;
    if (res < 0 && uc->slot >= 0) {
        /* Requests already queued with the slot fail (EBADF); later ones use the descriptor. */
        stat_add(&u->st.no_slot, 1);
        uc->slot = -1;
    }
    if (uc->closing) {
        uconn_try_finish(u, uc);
    }
}

static void
on_connect(struct uio *u, struct uconn *uc, int res)
{
    uc->nb_ops--;
    uc->connecting = 0;
    if (uc->closing) {
        uconn_try_finish(u, uc);
        return;
    }
    if (res < 0) {
        uc->failed = 1;
        uc->c.err = res;
    } else {
        uc->opened = 1;
        rcv_arm(u, uc);
        if (uc->sb_tail > uc->sb_head) {
            enqueue(uc); /* sent before the connection was up */
        }
    }
    mark(uc);
}

static void
listener_arm(struct uio *u, struct ulistener *ul)
{
    struct io_uring_sqe *sqe = get_sqe(u);

    io_uring_prep_multishot_accept(sqe, ul->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_of(ul, UD_ACCEPT));
    ul->armed = 1;
}

/* Returns the oldest held connection's descriptor, or -1. */
static int
held_pop(struct ulistener *ul)
{
    int fd;

    if (ul->nb_held == 0) {
        return -1;
    }
    fd = ul->held[ul->held_head];
    ul->held_head = (ul->held_head + 1) % UIO_HELD_MAX;
    ul->nb_held--;
    return fd;
}

static void
listener_free(struct ulistener *ul)
{
    int fd;

    while ((fd = held_pop(ul)) != -1) {
        close(fd);
    }
    ul->prev->next = ul->next;
    ul->next->prev = ul->prev;
    close(ul->fd);
    free(ul->held);
    free(ul);
}

/* Hands an accepted socket to the proxy as a connection. */
static void
deliver(struct uio *u, struct ulistener *ul, int fd)
{
    struct uconn *uc = uconn_get(u, fd);

    if (uc == NULL) {
        close(fd);
        return;
    }
    uc->c.peer.len = sizeof(uc->c.peer.u);
    if (getpeername(fd, &uc->c.peer.u.sa, &uc->c.peer.len) == -1) {
        uc->c.peer.len = 0;
    }
    uc->accepted = 1;
    rcv_arm(u, uc);
    ul->l.on_accept(&ul->l, &uc->c);
}

/*
 * A multishot accept takes the whole accept queue at once, so a pause cannot leave the rest
 * in the kernel's backlog as the kernel backend does. What it takes is held here, in order,
 * delivered a burst per iteration while the listener is not paused, and counts as pending:
 * the overload control sheds it (listener_shed) or gets it, as it would from the backlog.
 */
static void
hold(struct uio *u, struct ulistener *ul, int fd)
{
    if (ul->nb_held == UIO_HELD_MAX) {
        stat_add(&u->st.held_reset, 1);
        fp_sock_set_reset(fd);
        close(fd);
        return;
    }
    ul->held[(ul->held_head + ul->nb_held) % UIO_HELD_MAX] = fd;
    ul->nb_held++;
}

/* Delivers held connections of the listeners that are no longer paused, a burst each. */
static void
deliver_held(struct uio *u)
{
    struct ulistener *ul;
    unsigned          n;

    for (ul = u->lsn.next; ul != &u->lsn; ul = ul->next) {
        /* A closing listener's owner is gone (its fp_listener.data with it): none of these
         * may reach it (uio_listener_close closed them). */
        for (n = 0; n < UIO_ACCEPT_BURST && !ul->paused && !ul->closing && ul->nb_held > 0; n++) {
            deliver(u, ul, held_pop(ul));
        }
    }
}

static void
on_accept(struct uio *u, struct ulistener *ul, const struct io_uring_cqe *cqe)
{
    int fd = cqe->res;

    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        ul->armed = 0;
    }
    if (fd >= 0) {
        if (ul->closing) {
            close(fd);
        } else {
            hold(u, ul, fd); /* delivered after the ready connections (deliver_held) */
        }
    } else if (fd != -ECANCELED && fd != -EAGAIN && fd != -EINTR && fd != -ECONNABORTED) {
        u->io.accept_errors++;
    }
    if (!ul->armed) {
        if (ul->closing) {
            listener_free(ul);
        } else if (!ul->paused) {
            listener_arm(u, ul);
        }
    }
}

static void
wake_arm(struct uio *u)
{
    struct io_uring_sqe *sqe = get_sqe(u);

    io_uring_prep_read(sqe, u->efd, &u->wake_val, sizeof(u->wake_val), 0);
    io_uring_sqe_set_data64(sqe, ud_of(u, UD_WAKE));
}

static void
handle_cqe(struct uio *u, const struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    void    *p = (void *)(uintptr_t)(ud & ~(uint64_t)UD_MASK);

    switch (ud & UD_MASK) {
    case UD_RECV:
        on_recv(u, p, cqe);
        break;
    case UD_SEND:
        on_send(u, p, cqe->res);
        break;
    case UD_CONNECT:
        on_connect(u, p, cqe->res);
        break;
    case UD_ACCEPT:
        on_accept(u, p, cqe);
        break;
    case UD_POLL:
        on_poll(u, p, cqe->res);
        break;
    case UD_FILES:
        on_files(u, p, cqe->res);
        break;
    case UD_WAKE:
        u->notified = 1;
        wake_arm(u);
        break;
    default:
        break;
    }
}

static void
reap(struct uio *u)
{
    struct io_uring_cqe *cqes[UIO_CQE_BATCH];
    unsigned             n;
    unsigned             i;

    do {
        n = io_uring_peek_batch_cqe(&u->ring, cqes, UIO_CQE_BATCH);
        for (i = 0; i < n; i++) {
            handle_cqe(u, cqes[i]);
        }
        io_uring_cq_advance(&u->ring, n);
        stat_add(&u->st.cqes, n);
    } while (n == UIO_CQE_BATCH);
}

/* Calls each connection of ready list head once; those that stay ready are looked at again
 * next time. */
static void
dispatch_list(struct uconn *head)
{
    struct uconn  work;
    struct uconn *uc;
    unsigned      ev;

    if (head->rnext == head) {
        return;
    }
    work.rnext = head->rnext;
    work.rprev = head->rprev;
    work.rnext->rprev = &work;
    work.rprev->rnext = &work;
    head->rnext = head;
    head->rprev = head;
    while ((uc = work.rnext) != &work) {
        uc->rprev->rnext = uc->rnext;
        uc->rnext->rprev = uc->rprev;
        uc->listed = 0;
        ev = due_events(uc);
        if (ev == 0 || uc->c.handler == NULL) {
            continue;
        }
        uc->opened = 0;
        uc->failed = 0;
        mark(uc);
        uc->c.handler(&uc->c, ev);
    }
}

static bool
any_ready(const struct uio *u)
{
    return u->ready[0].rnext != &u->ready[0] || u->ready[1].rnext != &u->ready[1];
}

/* The end of the iteration: the sends the proxy queued and the receives to re-arm. */
static void
run_work(struct uio *u)
{
    struct uconn *uc;

    rbuf_publish(u);
    while ((uc = u->work) != NULL) {
        u->work = uc->qnext;
        uc->queued = 0;
        if (!uc->send_on && !uc->connecting && uc->sb_tail > uc->sb_head && uc->snd_err == 0) {
            snd_submit(u, uc);
        }
        if (rcv_can_arm(uc)) {
            if (u->st.rbufs_free == 0 || uc->starved) {
                rcv_poll_arm(u, uc);
            } else {
                stat_add(&u->st.recv_rearms, 1);
                rcv_arm(u, uc);
            }
        }
        uconn_try_finish(u, uc);
    }
}

/* ---- fp_io_ops ---- */

static int
uio_listen(struct fp_io *io, const struct fp_listen_conf *lc, fp_accept_fn on_acc, void *data,
           struct fp_listener **out)
{
    struct uio       *u = uio_of(io);
    struct ulistener *ul;

    if (lc->fd < 0) {
        return -EINVAL;
    }
    ul = calloc(1, sizeof(*ul));
    if (ul == NULL) {
        return -ENOMEM;
    }
    ul->held = calloc(UIO_HELD_MAX, sizeof(*ul->held));
    if (ul->held == NULL) {
        free(ul);
        return -ENOMEM;
    }
    ul->l.io = io;
    ul->l.on_accept = on_acc;
    ul->l.data = data;
    ul->l.addr = lc->addr;
    ul->u = u;
    ul->fd = lc->fd;
    ul->next = u->lsn.next;
    ul->prev = &u->lsn;
    u->lsn.next->prev = ul;
    u->lsn.next = ul;
    /* Accepted sockets inherit TCP_NODELAY: no setsockopt per connection. */
    fp_sock_set_nodelay(ul->fd);
    listener_arm(u, ul);
    *out = &ul->l;
    return 0;
}

static void
uio_listener_pause(struct fp_listener *l, int paused)
{
    struct ulistener *ul = (struct ulistener *)l;

    ul->paused = paused != 0;
    if (ul->paused && ul->armed) {
        /* Connections accepted before the cancel lands are still delivered. */
        cancel_ud(ul->u, ud_of(ul, UD_ACCEPT));
    } else if (!ul->paused && !ul->armed) {
        listener_arm(ul->u, ul);
    }
}

static void
uio_listener_close(struct fp_listener *l)
{
    struct ulistener *ul = (struct ulistener *)l;
    int               fd;

    ul->closing = 1;
    /* The held connections were never the proxy's: closed, as closing a listening socket
     * resets its accept queue (delivering one later crashed a draining worker). */
    while ((fd = held_pop(ul)) != -1) {
        close(fd);
    }
    /* Stops listening now, as close(2) would: a request in the kernel still holds the socket
     * until its cancel completes, and the loop may be about to stop. The descriptor is
     * closed with the listener, when no request of ours can name it any more. */
    shutdown(ul->fd, SHUT_RDWR);
    if (ul->armed) {
        cancel_ud(ul->u, ud_of(ul, UD_ACCEPT));
    } else {
        listener_free(ul);
    }
}

static int
uio_listener_pending(struct fp_listener *l)
{
    struct ulistener *ul = (struct ulistener *)l;
    int               n;

    n = fp_sock_accept_queue_len(ul->fd);
    return n < 0 ? n : n + (int)ul->nb_held;
}

static unsigned
uio_listener_shed(struct fp_listener *l, const void *msg, size_t len, unsigned max)
{
    struct ulistener *ul = (struct ulistener *)l;
    unsigned          n;
    int               fd;

    /* Rare (overload), so plain system calls: nothing of ours is allocated for these. The
     * held connections are the oldest: they go first. */
    for (n = 0; n < max && (fd = held_pop(ul)) != -1; n++) {
        fp_sock_answer_close(fd, msg, len);
    }
    return n + fp_sock_shed(ul->fd, msg, len, max - n);
}

static int
uio_connect(struct fp_io *io, const struct fp_addr *to, struct fp_conn **out)
{
    struct uio          *u = uio_of(io);
    struct io_uring_sqe *sqe;
    struct uconn        *uc;
    int                  fd;

    fd = fp_sock_open(to);
    if (fd < 0) {
        return fd;
    }
    uc = uconn_get(u, fd);
    if (uc == NULL) {
        close(fd);
        return -ENOBUFS;
    }
    fp_sock_set_nodelay(fd);
    uc->c.peer = *to;
    uc->connecting = 1;
    sqe = get_sqe(u);
    io_uring_prep_connect(sqe, fd, &uc->c.peer.u.sa, uc->c.peer.len);
    sqe_use_slot(u, sqe, uc);
    io_uring_sqe_set_data64(sqe, ud_of(uc, UD_CONNECT));
    uc->nb_ops++;
    *out = &uc->c;
    return 0;
}

static void
uio_want(struct fp_conn *c, unsigned events)
{
    struct uconn *uc = (struct uconn *)c;

    uc->want = events & (FP_EV_READ | FP_EV_WRITE);
    mark(uc);
}

/* recv after a poll (rcv_poll_arm): the socket itself, into b, until EAGAIN. */
static ssize_t
recv_direct(struct uconn *uc, struct fp_buf *b)
{
    ssize_t n;

    n = recv(uc->fd, b->data + b->tail, fp_buf_room(b), MSG_DONTWAIT);
    if (n > 0) {
        b->tail += (uint32_t)n;
        return n;
    }
    uc->rd_ready = 0;
    if (n == 0) {
        uc->rcv_eof = 1;
        return 0;
    }
    if (fp_sock_would_block(errno)) {
        enqueue(uc); /* a receive (or another poll) at the end of the iteration */
        return -EAGAIN;
    }
    uc->rcv_err = -errno;
    uc->c.err = uc->rcv_err;
    return uc->rcv_err;
}

static ssize_t
uio_recv(struct fp_conn *c, struct fp_buf *b)
{
    struct uconn *uc = (struct uconn *)c;
    struct uio   *u = uc->u;
    uint32_t      room = fp_buf_room(b);
    uint32_t      n = 0;
    uint32_t      bid;
    uint32_t      k;

    if (room == 0) {
        return -ENOBUFS;
    }
    while (room > 0 && (bid = uc->rq_head) != UIO_NO_BUF) {
        k = u->rb_len[bid] - uc->rq_off;
        if (k > room) {
            k = room;
        }
        memcpy(b->data + b->tail, rbuf(u, bid) + uc->rq_off, k);
        b->tail += k;
        n += k;
        room -= k;
        uc->rq_off += k;
        uc->rq_bytes -= k;
        if (uc->rq_off == u->rb_len[bid]) {
            uc->rq_head = u->rb_next[bid];
            uc->rq_off = 0;
            rbuf_put(u, bid);
        }
    }
    if (uc->rq_head == UIO_NO_BUF) {
        uc->rq_tail = UIO_NO_BUF;
    }
    if (n > 0) {
        if (rcv_can_arm(uc)) {
            enqueue(uc);
        }
        return n;
    }
    if (uc->rd_ready) {
        return recv_direct(uc, b);
    }
    if (uc->rcv_err != 0) {
        c->err = uc->rcv_err;
        return uc->rcv_err;
    }
    return uc->rcv_eof ? 0 : -EAGAIN;
}

/* Makes room at the front of uc's send buffer when nothing is in flight; attaches one. Returns
 * the bytes that can be appended now, or a negative errno the caller returns. */
static ssize_t
sb_prepare(struct uio *u, struct uconn *uc)
{
    if (uc->snd_err != 0) {
        uc->c.err = uc->snd_err;
        return uc->snd_err;
    }
    if (uc->shut_wanted || uc->shut_done) {
        return -EPIPE;
    }
    if (uc->sb == NULL) {
        uc->sb = fp_pool_get(&u->sbufs);
        if (uc->sb == NULL) {
            return -ENOBUFS; /* cannot happen: one per connection */
        }
        uc->sb_head = 0;
        uc->sb_tail = 0;
    } else if (uc->sb_flight == 0 && uc->sb_head > 0) {
        memmove(uc->sb, uc->sb + uc->sb_head, uc->sb_tail - uc->sb_head);
        uc->sb_tail -= uc->sb_head;
        uc->sb_head = 0;
    }
    if (uc->sb_tail == UIO_SBUF_SIZE) {
        stat_add(&u->st.send_full, 1);
        return -EAGAIN;
    }
    return UIO_SBUF_SIZE - uc->sb_tail;
}

static ssize_t
uio_send(struct fp_conn *c, struct fp_buf *b, unsigned flags)
{
    struct uconn *uc = (struct uconn *)c;
    ssize_t       room;
    uint32_t      k;

    if (fp_buf_empty(b)) {
        return 0;
    }
    room = sb_prepare(uc->u, uc);
    if (room < 0) {
        return room;
    }
    k = fp_buf_len(b) < (uint32_t)room ? fp_buf_len(b) : (uint32_t)room;
    memcpy(uc->sb + uc->sb_tail, b->data + b->head, k);
    uc->sb_tail += k;
    uc->sb_more = (flags & FP_SEND_MORE) != 0 || k < fp_buf_len(b);
    fp_buf_consume(b, k);
    enqueue(uc);
    return k;
}

static ssize_t
uio_sendv(struct fp_conn *c, const struct fp_slice *slices, unsigned n, unsigned flags)
{
    struct uconn *uc = (struct uconn *)c;
    ssize_t       room;
    uint64_t      offered = 0;
    uint32_t      total = 0;
    uint32_t      k;
    unsigned      i;

    room = sb_prepare(uc->u, uc);
    if (room < 0) {
        return room;
    }
    for (i = 0; i < n; i++) {
        offered += slices[i].len;
    }
    for (i = 0; i < n && total < (uint32_t)room; i++) {
        k = slices[i].len < (uint32_t)room - total ? slices[i].len : (uint32_t)room - total;
        memcpy(uc->sb + uc->sb_tail, slices[i].data, k);
        uc->sb_tail += k;
        total += k;
    }
    if (total > 0) {
        /* The bytes the buffer could not take follow too. */
        uc->sb_more = (flags & FP_SEND_MORE) != 0 || total < offered;
        enqueue(uc);
    } else if (uc->sb_head == uc->sb_tail && uc->sb_flight == 0) {
        sb_release(uc->u, uc);
    }
    return total;
}

/*
 * Segments. recv_segs lends the buffers of the receive queue themselves (the kernel received
 * into them: no copy), each whole but for the part uio_recv already copied out. A lent buffer
 * goes back to the ring when it is freed: by the generic send_segs (net/io.c) once uio_sendv
 * has copied it into a send buffer, or by the proxy's seg_free. What the proxy holds (its
 * read-ahead, a slow peer's backlog) is out of the ring, so buffers are lent only while a
 * quarter of the ring is free; below that, and for an empty receive queue, the generic path
 * copies through uio_recv as before (which gives the ring buffers back at once, keeps the
 * generic path's reserve for connections that hold nothing, reports EOF, errors and EAGAIN,
 * and reads the socket itself after a poll). Segments of both kinds can meet in one
 * send_segs: uio_seg_free tells them apart by address.
 */
static bool
is_rbuf(const struct uio *u, const uint8_t *p)
{
    return p >= u->rb_mem && p < u->rb_mem + (size_t)u->nb_rbufs * UIO_RBUF_SIZE;
}

static void
uio_seg_free(struct fp_io *io, struct fp_seg *seg)
{
    struct uio *u = uio_of(io);

    if (is_rbuf(u, seg->data)) {
        rbuf_put(u, (uint32_t)((size_t)(seg->data - u->rb_mem) / UIO_RBUF_SIZE));
    } else {
        fp_io_generic_seg_free(io, seg);
    }
}

static ssize_t
uio_recv_segs(struct fp_conn *c, struct fp_seg *segs, unsigned max, uint32_t max_bytes,
              unsigned flags)
{
    struct uconn *uc = (struct uconn *)c;
    struct uio   *u = uc->u;
    uint32_t      got = 0;
    uint32_t      bid;
    unsigned      i = 0;

    if (uc->rq_head == UIO_NO_BUF || u->st.rbufs_free < u->nb_rbufs / 4) {
        return fp_io_generic_recv_segs(c, segs, max, max_bytes, flags);
    }
    while (i < max && (i == 0 || got < max_bytes) && (bid = uc->rq_head) != UIO_NO_BUF) {
        segs[i].data = rbuf(u, bid) + uc->rq_off;
        segs[i].len = u->rb_len[bid] - uc->rq_off;
        segs[i].ref = NULL;
        got += segs[i].len;
        uc->rq_bytes -= segs[i].len;
        uc->rq_off = 0;
        uc->rq_head = u->rb_next[bid];
        i++;
    }
    if (uc->rq_head == UIO_NO_BUF) {
        uc->rq_tail = UIO_NO_BUF;
    }
    stat_add(&u->st.segs_lent, i);
    if (rcv_can_arm(uc)) {
        enqueue(uc);
    }
    return i > 0 ? (ssize_t)i : -EAGAIN;
}

static int
uio_shutdown_write(struct fp_conn *c)
{
    struct uconn *uc = (struct uconn *)c;

    if (uc->sb_tail > uc->sb_head || uc->send_on) {
        uc->shut_wanted = 1; /* the FIN follows the queued bytes */
        return 0;
    }
    if (!uc->shut_done) {
        uc->shut_done = 1;
        if (shutdown(uc->fd, SHUT_WR) == -1) {
            return -errno;
        }
    }
    return 0;
}

static void
uio_close(struct fp_conn *c, int abort_conn)
{
    struct uconn *uc = (struct uconn *)c;
    struct uio   *u = uc->u;

    ready_unlink(uc);
    uc->c.handler = NULL;
    uc->c.data = NULL;
    uc->closing = 1;
    uc->znext = u->zombies.znext;
    uc->zprev = &u->zombies;
    u->zombies.znext->zprev = uc;
    u->zombies.znext = uc;
    u->nb_zombies++;
    rq_drop(u, uc);
    if (abort_conn) {
        fp_sock_set_reset(uc->fd);
        uc->sb_tail = uc->sb_head + uc->sb_flight;
        if (uc->send_on) {
            cancel_ud(u, ud_of(uc, UD_SEND));
        }
    } else if (uc->sb_tail > uc->sb_head) {
        wheel_arm(u, &uc->linger, u->now_us + (uint64_t)UIO_LINGER_MS * 1000);
    }
    if (uc->rcv_on && !uc->rcv_stop) {
        uc->rcv_stop = 1;
        cancel_ud(u, ud_of(uc, uc->rcv_poll ? UD_POLL : UD_RECV));
    }
    if (uc->connecting) {
        cancel_ud(u, ud_of(uc, UD_CONNECT));
    }
    uconn_try_finish(u, uc);
}

static void
uio_timer_fire(void *arg)
{
    struct fp_timer *t = arg;

    t->fn(t);
}

static void
uio_timer_init(struct fp_io *io, struct fp_timer *t, fp_timer_fn fn, void *data)
{
    t->fn = fn;
    t->data = data;
    fp_timer_init((struct fp_stk_timer *)t->priv, uio_timer_fire, t);
}

static void
uio_timer_arm(struct fp_io *io, struct fp_timer *t, uint32_t timeout_ms)
{
    struct uio *u = uio_of(io);

    wheel_arm(u, (struct fp_stk_timer *)t->priv, u->now_us + (uint64_t)timeout_ms * 1000);
}

static void
uio_timer_stop(struct fp_io *io, struct fp_timer *t)
{
    fp_timer_cancel(&uio_of(io)->wheel, (struct fp_stk_timer *)t->priv);
}

static uint64_t
uio_now_ms(struct fp_io *io)
{
    return uio_of(io)->now_us / 1000;
}

static bool
held_deliverable(const struct uio *u)
{
    const struct ulistener *ul;

    for (ul = u->lsn.next; ul != &u->lsn; ul = ul->next) {
        if (!ul->paused && ul->nb_held > 0) {
            return true;
        }
    }
    return false;
}

/* global.io_collect (net/io_kernel.c says why): while the loop is busy, a wait returns
 * after UIO_COLLECT_NR completions or io_collect, whichever comes first. Under
 * IORING_SETUP_DEFER_TASKRUN the kernel wakes the waiter only once that many are posted, so
 * completions arriving meanwhile wake no one. */
#define UIO_COLLECT_NR 16

/* Submits what the iteration queued and waits for a completion, at most until the next timer;
 * does not wait while a connection is still ready. */
static void
submit_wait(struct uio *u)
{
    struct __kernel_timespec ts;
    struct io_uring_cqe     *cqe;
    uint64_t                 due;
    uint64_t                 wait_us;
    int                      rc;
    bool                     busy;

    stat_add(&u->st.enters, 1);
    /* Busy: the last wait ended within io_collect of its start (now_us is this iteration's). */
    busy = u->collect_us > 0 && u->now_us - u->wait_at < u->collect_us;
    u->wait_at = clock_us();
    if (any_ready(u) || u->notified || held_deliverable(u)) {
        rc = io_uring_submit_and_get_events(&u->ring);
    } else if (busy) {
        due = wake_deadline(u);
        wait_us = u->collect_us;
        if (due != UINT64_MAX && due < u->now_us + wait_us) {
            wait_us = due > u->now_us ? due - u->now_us : 0;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long long)wait_us * 1000;
        stat_add(&u->st.collect_waits, 1);
        rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, UIO_COLLECT_NR, &ts, NULL);
    } else if ((due = wake_deadline(u)) == UINT64_MAX) {
        rc = io_uring_submit_and_wait(&u->ring, 1);
    } else {
        wait_us = due > u->now_us ? due - u->now_us : 0;
        ts.tv_sec = (long long)(wait_us / 1000000u);
        ts.tv_nsec = (long long)(wait_us % 1000000u) * 1000;
        rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    }
    if (rc > 0) {
        stat_add(&u->st.sqes, (uint64_t)rc);
    }
}

static void
iteration(struct uio *u)
{
    u->now_us = clock_us();
    reap(u);
    if (u->notified) {
        u->notified = 0;
        if (u->io.on_notify != NULL) {
            u->io.on_notify(&u->io, u->io.notify_data);
        }
    }
    /* Connections we opened, then accepted ones, then new ones (the kernel backend's order). */
    dispatch_list(&u->ready[0]);
    dispatch_list(&u->ready[1]);
    deliver_held(u);
    fp_timer_wheel_advance(&u->wheel, u->now_us);
    if (u->io.on_flush != NULL) {
        u->io.on_flush(&u->io, u->io.flush_data);
    }
    run_work(u);
    stat_add(&u->st.loops, 1);
    submit_wait(u);
}

static void
uio_run(struct fp_io *io)
{
    struct uio *u = uio_of(io);

    if (u->disabled) {
        /* SINGLE_ISSUER: the ring belongs to the thread that enables it, this one. */
        io_uring_register(u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
        u->disabled = 0;
    }
    io_uring_register_ring_fd(&u->ring);
    u->stopping = 0;
    while (!u->stopping) {
        iteration(u);
    }
    /* Closed connections may still send what they queued: the kernel would do that after
     * close(2); here the ring holds it. Bounded by the linger time. */
    while (u->nb_zombies > 0 && u->now_us < u->stop_us + (uint64_t)UIO_LINGER_MS * 1000) {
        iteration(u);
    }
    io_uring_unregister_ring_fd(&u->ring);
}

static void
uio_stop(struct fp_io *io)
{
    struct uio *u = uio_of(io);

    u->stopping = 1;
    u->stop_us = u->now_us;
}

static void
uio_notify(struct fp_io *io)
{
    eventfd_write(uio_of(io)->efd, 1);
}

static void
uio_destroy(struct fp_io *io)
{
    struct uio   *u = uio_of(io);
    struct uconn *uc;

    /* Cancels and waits for every request still in the kernel. */
    io_uring_queue_exit(&u->ring);
    while ((uc = u->zombies.znext) != &u->zombies) {
        uc->zprev->znext = uc->znext;
        uc->znext->zprev = uc->zprev;
        close(uc->fd);
    }
    while (u->lsn.next != &u->lsn) {
        listener_free(u->lsn.next);
    }
    close(u->efd);
    munmap(u->br, u->br_size);
    free(u->rb_mem);
    free(u->rb_next);
    free(u->rb_len);
    fp_timer_wheel_fini(&u->wheel);
    fp_pool_destroy(&u->sbufs);
    fp_pool_destroy(&u->conns);
    free(u);
}

static const struct fp_io_ops uio_ops = {
        .name = "uring",
        .counters = uio_counters,
        .nb_counters = sizeof(uio_counters) / sizeof(uio_counters[0]),
        .listen = uio_listen,
        .listener_pause = uio_listener_pause,
        .listener_close = uio_listener_close,
        .listener_pending = uio_listener_pending,
        .listener_shed = uio_listener_shed,
        .connect = uio_connect,
        .want = uio_want,
        .recv = uio_recv,
        .send = uio_send,
        .sendv = uio_sendv,
        .recv_segs = uio_recv_segs,
        .seg_free = uio_seg_free,
        .generic_segs = true,
        .shutdown_write = uio_shutdown_write,
        .close = uio_close,
        .timer_init = uio_timer_init,
        .timer_arm = uio_timer_arm,
        .timer_stop = uio_timer_stop,
        .now_ms = uio_now_ms,
        .run = uio_run,
        .stop = uio_stop,
        .notify = uio_notify,
        .destroy = uio_destroy,
};

static uint32_t
nb_rbufs_for(uint32_t max_conns)
{
    uint32_t n = UIO_RBUF_MIN;

    while (n < max_conns / 4 && n < UIO_RBUF_MAX) {
        n <<= 1;
    }
    return n;
}

size_t
fp_io_uring_conn_size(void)
{
    return sizeof(struct uconn);
}

size_t
fp_io_uring_mem_bound(uint32_t max_conns)
{
    size_t nb = nb_rbufs_for(max_conns);

    return nb * (UIO_RBUF_SIZE + sizeof(struct io_uring_buf) + 2 * sizeof(uint32_t)) +
           (size_t)max_conns * UIO_SBUF_SIZE + UIO_SQ_ENTRIES * sizeof(struct io_uring_sqe) +
           UIO_CQ_ENTRIES * sizeof(struct io_uring_cqe) + 4096 * sizeof(void *) +
           sizeof(struct uio);
}

/* Creates the ring: deferred task running on the worker's own thread if the kernel has it
 * (6.1+), a plain ring otherwise. */
static int
ring_init(struct uio *u, char *err, size_t errlen)
{
    struct io_uring_params p;
    int                    rc;

    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_R_DISABLED;
    p.cq_entries = UIO_CQ_ENTRIES;
    rc = io_uring_queue_init_params(UIO_SQ_ENTRIES, &u->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN;
        p.cq_entries = UIO_CQ_ENTRIES;
        rc = io_uring_queue_init_params(UIO_SQ_ENTRIES, &u->ring, &p);
    } else if (rc == 0) {
        u->disabled = 1;
    }
    if (rc != 0) {
        snprintf(err, errlen,
                 "io: uring: the kernel refuses io_uring (io_uring_setup: %s%s); "
                 "use io: kernel",
                 strerror(-rc),
                 rc == -ENOSYS || rc == -EPERM
                         ? ": not built in, disabled by sysctl kernel.io_uring_disabled, "
                           "or blocked by a seccomp filter"
                         : "");
        return rc;
    }
    if (!(p.features & IORING_FEAT_EXT_ARG)) {
        snprintf(err, errlen,
                 "io: uring needs Linux 5.11 or later (IORING_FEAT_EXT_ARG); "
                 "use io: kernel");
        io_uring_queue_exit(&u->ring);
        return -ENOTSUP;
    }
    return 0;
}

/* The provided buffer ring (group UIO_BGID), every buffer handed to the kernel. */
static int
rbufs_init(struct uio *u, uint32_t max_conns, char *err, size_t errlen)
{
    struct io_uring_buf_reg reg;
    uint32_t                i;
    int                     rc;

    u->nb_rbufs = nb_rbufs_for(max_conns);
    u->br_size = u->nb_rbufs * sizeof(struct io_uring_buf);
    u->br = mmap(NULL, u->br_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (u->br == MAP_FAILED) {
        u->br = NULL;
        snprintf(err, errlen, "cannot map the provided buffer ring");
        return -ENOMEM;
    }
    u->rb_mem = aligned_alloc(4096, (size_t)u->nb_rbufs * UIO_RBUF_SIZE);
    u->rb_next = calloc(u->nb_rbufs, sizeof(uint32_t));
    u->rb_len = calloc(u->nb_rbufs, sizeof(uint32_t));
    if (u->rb_mem == NULL || u->rb_next == NULL || u->rb_len == NULL) {
        snprintf(err, errlen, "cannot allocate %u receive buffers", u->nb_rbufs);
        return -ENOMEM;
    }
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)u->br;
    reg.ring_entries = u->nb_rbufs;
    reg.bgid = UIO_BGID;
    rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc != 0) {
        snprintf(err, errlen,
                 "io: uring needs provided buffer rings (Linux 5.19 or later): "
                 "%s; use io: kernel",
                 strerror(-rc));
        return rc;
    }
    io_uring_buf_ring_init(u->br);
    for (i = 0; i < u->nb_rbufs; i++) {
        rbuf_put(u, i);
    }
    rbuf_publish(u);
    return 0;
}

struct fp_io *
fp_io_uring_create(const struct fp_io_conf *conf, char *err, size_t errlen)
{
    struct uio *u;
    int         i;

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->io.ops = &uio_ops;
    u->io.on_notify = conf->on_notify;
    u->io.notify_data = conf->notify_data;
    for (i = 0; i < 2; i++) {
        u->ready[i].rnext = &u->ready[i];
        u->ready[i].rprev = &u->ready[i];
    }
    u->zombies.znext = &u->zombies;
    u->zombies.zprev = &u->zombies;
    u->lsn.next = &u->lsn;
    u->lsn.prev = &u->lsn;
    u->now_us = clock_us();
    u->next_due = UINT64_MAX;
    u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->efd == -1) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto err_free;
    }
    if (ring_init(u, err, errlen) != 0) {
        goto err_efd;
    }
    if (rbufs_init(u, conf->max_conns, err, errlen) != 0) {
        goto err_rbufs;
    }
    slots_init(u, conf->max_conns);
    u->collect_us = conf->collect_us;
    if (fp_pool_init(&u->conns, sizeof(struct uconn), conf->max_conns) != 0 ||
        fp_pool_init(&u->sbufs, UIO_SBUF_SIZE, conf->max_conns) != 0) {
        snprintf(err, errlen, "cannot allocate %u connections", conf->max_conns);
        goto err_pools;
    }
    if (fp_timer_wheel_init(&u->wheel, 4096, 1000, u->now_us) != 0) {
        snprintf(err, errlen, "cannot allocate the timer wheel");
        goto err_pools;
    }
    wake_arm(u);
    return &u->io;

err_pools:
    fp_pool_destroy(&u->sbufs);
    fp_pool_destroy(&u->conns);
err_rbufs:
    io_uring_queue_exit(&u->ring);
    if (u->br != NULL) {
        munmap(u->br, u->br_size);
    }
    free(u->rb_mem);
    free(u->rb_next);
    free(u->rb_len);
err_efd:
    close(u->efd);
err_free:
    free(u);
    return NULL;
}
