/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The contract between proxy/ and the I/O backends (kernel sockets + libev, DPDK + the
 * user-space stack). proxy/ includes this file and nothing else from net/ but the plain value
 * headers it names (addr, buf, pool, ring). Each backend fills in one struct fp_io_ops; a
 * worker picks one backend at start and keeps it.
 *
 * Threading: an struct fp_io is one worker's backend instance. Every function here is called
 * on that worker's thread only, except fp_io_ops.notify, which any thread may call.
 *
 * Events are level-triggered: a connection reports FP_EV_READ while data (or EOF) is pending
 * and read interest is on, FP_EV_WRITE while there is send room and write interest is on.
 * The handler runs on the worker thread, from the backend's loop.
 */
#ifndef FP_NET_IO_H
#define FP_NET_IO_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"
#include "net/buf.h"

enum {
    FP_EV_READ = 0x1,  /* data or EOF can be read */
    FP_EV_WRITE = 0x2, /* data can be sent; also: an outgoing connect completed */
    FP_EV_ERROR = 0x4, /* an outgoing connect failed; fp_conn.err holds -errno */
};

/* Flags of fp_io_ops.send / sendv. */
enum {
    /*
     * More bytes of the same message follow this send at once (they are already held, or
     * the message's framing says the peer is still sending them): the backend may hold a
     * partial segment back until the next send (kernel: MSG_MORE). The caller promises a
     * next send without the flag; without one the held bytes may wait indefinitely. A
     * backend may ignore the flag.
     */
    FP_SEND_MORE = 0x1,
};

/* Flags of fp_io_ops.recv_segs. */
enum {
    /*
     * The caller still holds segments of this connection (it reads ahead): a backend that
     * lends memory from a shared pool may refuse (-ENOBUFS) to keep its reserve for the
     * connections that hold none, so that their reads never fail for want of memory.
     */
    FP_RECV_AHEAD = 0x1,
    /*
     * The caller will not look at the bytes: it only passes the segments to send_segs of a
     * connection of the same instance, or to seg_free (mode tcp). A backend may then lend
     * segments whose bytes are not in memory, with data == NULL (the kernel backend keeps
     * them in a pipe: splice(2), global.maxpipes).
     */
    FP_RECV_OPAQUE = 0x2,
};

enum fp_io_kind {
    FP_IO_KERNEL = 0,
    FP_IO_DPDK,
    FP_IO_URING, /* kernel sockets through io_uring (net/io_uring.c) */
};

struct fp_io;
struct fp_conn;
struct fp_listener;
struct fp_timer;
struct fp_io_segpool;

typedef void (*fp_conn_event_fn)(struct fp_conn *c, unsigned events);
typedef void (*fp_accept_fn)(struct fp_listener *l, struct fp_conn *c);
typedef void (*fp_timer_fn)(struct fp_timer *t);
typedef void (*fp_notify_fn)(struct fp_io *io, void *data);

/* A run of bytes to send, for the gathered send (writev): a rewritten head and the body bytes
 * after it leave in one call and, usually, one segment. */
struct fp_slice {
    const uint8_t *data;
    uint32_t       len;
};

/* The part of a connection the proxy sees; each backend embeds it first in its own struct. */
struct fp_conn {
    struct fp_io    *io;
    fp_conn_event_fn handler; /* set by the owner before events can arrive */
    void            *data;    /* the owner's object (a session) */
    struct fp_addr   peer;    /* remote address */
    int              err;     /* -errno of the last failure, 0 if none */
};

/* A listening endpoint of one worker. */
struct fp_listener {
    struct fp_io  *io;
    fp_accept_fn   on_accept;
    void          *data;
    struct fp_addr addr;
};

/*
 * A one-shot timer. The backend keeps its state in priv, so the proxy can embed timers in its
 * own objects without knowing the backend's types and without allocating.
 */
struct fp_timer {
    fp_timer_fn fn;
    void       *data;
    uint64_t    priv[8];
};

/* What a listener is created from: the address, and for the kernel backend a socket that
 * the main thread already bound (so that reuseport group order matches worker order). */
struct fp_listen_conf {
    struct fp_addr addr;
    int            fd;      /* kernel: a bound, listening socket handed over; -1 otherwise */
    uint32_t       backlog; /* accept queue bound (the stack backend; the kernel's is set) */
};

/*
 * A counter that a backend keeps in its own instance, for the stats page. The stats code
 * (main thread) exports each one as the family fastproxy_io_<name>_total (a counter) or
 * fastproxy_io_<name> (a gauge), labelled worker="N", with help as its # HELP text, beside
 * the common ones of struct fp_io (conn_pool_empty, accept_errors). It reads the uint64_t
 * at byte offset off from the start of the instance (the struct fp_io the backend embeds
 * first) with a relaxed atomic load; the worker writes it, and only the worker (a plain
 * increment, or __atomic_store_n relaxed to keep the reader's loads whole). name is
 * lower_snake ([a-z0-9_]), without the fastproxy_io_ prefix and the _total suffix; every
 * worker of a process uses the same backend, hence the same table. Example, in a backend:
 *
 *     static const struct fp_io_counter dpdk_counters[] = {
 *         {"rx_nombuf", "packets dropped: no mbuf", false,
 *          offsetof(struct dpdk_io, rx_nombuf)},
 *     };
 *     ... .counters = dpdk_counters, .nb_counters = 1, ...
 */
struct fp_io_counter {
    const char *name;
    const char *help;
    bool        gauge; /* a level (exported as is) rather than a count of events */
    size_t      off;   /* of a uint64_t, from the start of the backend's instance */
    size_t      base;  /* 0, or: the instance holds at this byte offset a pointer to the
                        * block (a stack's or a link's counters) off is then counted from */
};

/* Reads counter c of instance io (relaxed load; any thread). */
static inline uint64_t
fp_io_counter_load(const struct fp_io *io, const struct fp_io_counter *c)
{
    const char *block = (const char *)io;

    if (c->base != 0) {
        block = *(const char *const *)(const void *)(block + c->base);
    }
    return __atomic_load_n((const uint64_t *)(const void *)(block + c->off), __ATOMIC_RELAXED);
}

struct fp_io_ops {
    const char *name;
    /* The backend's own per-worker counters (see struct fp_io_counter); NULL and 0 if none. */
    const struct fp_io_counter *counters;
    unsigned                    nb_counters;

    /* Starts accepting on lc; on_accept gets each new connection (owned by the callee, who
     * must set handler and later close it). Returns 0 or -errno. */
    int (*listen)(struct fp_io *io, const struct fp_listen_conf *lc, fp_accept_fn on_accept,
                  void *data, struct fp_listener **out);
    /* Stops (paused = 1) or restarts accepting; pending connections wait in the backlog. */
    void (*listener_pause)(struct fp_listener *l, int paused);
    /* Stops accepting for good and releases the listener. */
    void (*listener_close)(struct fp_listener *l);
    /* Returns how many connections wait in l's accept queue, or -errno. */
    int (*listener_pending)(struct fp_listener *l);
    /* Load shedding at the cheapest point: takes up to max waiting connections and, without
     * allocating anything for them, sends each msg (a prebuilt response; best effort) and
     * closes it. Returns how many were shed. */
    unsigned (*listener_shed)(struct fp_listener *l, const void *msg, size_t len, unsigned max);

    /* Opens a connection to `to`. Returns 0 with *out set (completion is reported later as
     * FP_EV_WRITE, failure as FP_EV_ERROR), -ENOBUFS when the connection pool is empty, or
     * another -errno for an immediate failure. */
    int (*connect)(struct fp_io *io, const struct fp_addr *to, struct fp_conn **out);
    /* Sets the events the handler wants (FP_EV_READ | FP_EV_WRITE, or 0). */
    void (*want)(struct fp_conn *c, unsigned events);
    /* Reads into b's free room. Returns bytes read, 0 at EOF, -EAGAIN, -ENOBUFS when b has
     * no room, or -errno (the connection is then dead, but still needs close). */
    ssize_t (*recv)(struct fp_conn *c, struct fp_buf *b);
    /*
     * Optional (NULL: the generic segment path reads one buffer per recv): reads into the free
     * room of the n buffers in order, in one call (readv), advancing each one's tail. Returns
     * the bytes read (>= 1), 0 at EOF, -EAGAIN, or -errno (the connection is then dead, but
     * still needs close).
     */
    ssize_t (*recvv)(struct fp_conn *c, struct fp_buf *bufs, unsigned n);
    /* Sends b's stored bytes, consuming what was taken; flags: FP_SEND_*. Returns bytes
     * taken, -EAGAIN or -errno. */
    ssize_t (*send)(struct fp_conn *c, struct fp_buf *b, unsigned flags);
    /* Sends the n slices in order, in one call; flags: FP_SEND_*. Returns the bytes taken (the
     * caller consumes them from its slices, in order), -EAGAIN or -errno. */
    ssize_t (*sendv)(struct fp_conn *c, const struct fp_slice *slices, unsigned n,
                     unsigned flags);
    /*
     * Zero-copy receive; optional (NULL: net/io.c's generic path, which copies into pool
     * buffers). Callers use fp_io_recv_segs. Lends up to max segments of received bytes, in
     * order, at segs[0..], about max_bytes in all (the last segment may cross it). Each is the
     * caller's until it passes it to send_segs of a connection of the same instance, or to
     * seg_free. flags: FP_RECV_*. Returns the number of segments (>= 1), 0 at EOF (nothing
     * lent), -EAGAIN, -ENOBUFS (FP_RECV_AHEAD only: no spare memory now; send what is held and
     * read again later), or -errno (the connection is then dead, but still needs close).
     */
    ssize_t (*recv_segs)(struct fp_conn *c, struct fp_seg *segs, unsigned max,
                         uint32_t max_bytes, unsigned flags);
    /*
     * Zero-copy send; optional (NULL: the generic path). Callers use fp_io_send_segs. Sends
     * the n segments in order; flags: FP_SEND_*. Returns the bytes taken (> 0), -EAGAIN or
     * -errno. A segment whose bytes were all taken belongs to the backend from then on (the
     * caller forgets it, fp_segq_consume); one taken in part stays the caller's, advanced by
     * the bytes taken; after an error nothing was taken. segs must come from recv_segs of the
     * same instance.
     */
    ssize_t (*send_segs)(struct fp_conn *c, const struct fp_seg *segs, unsigned n,
                         unsigned flags);
    /* Gives back a segment from recv_segs that will not be sent; optional, as above. */
    void (*seg_free)(struct fp_io *io, struct fp_seg *seg);
    /* The backend has segment ops but falls back on the generic path (fp_io_generic_*) for
     * some calls, so fp_io_create gives it the generic path's buffers too. */
    bool generic_segs;
    /* Half-closes the sending direction (FIN after queued data). Returns 0 or -errno. */
    int (*shutdown_write)(struct fp_conn *c);
    /* Closes c and returns it to the pool; abort = 1 resets instead of a graceful close.
     * No event for c arrives afterwards; the caller must forget c. */
    void (*close)(struct fp_conn *c, int abort);

    /* Timers: init once, then arm (one-shot, re-arming replaces the deadline) or stop. */
    void (*timer_init)(struct fp_io *io, struct fp_timer *t, fp_timer_fn fn, void *data);
    void (*timer_arm)(struct fp_io *io, struct fp_timer *t, uint32_t timeout_ms);
    void (*timer_stop)(struct fp_io *io, struct fp_timer *t);
    /* Milliseconds of a monotonic clock, cached per loop iteration (cheap). */
    uint64_t (*now_ms)(struct fp_io *io);

    /* Runs the loop until stop() is called from inside it. */
    void (*run)(struct fp_io *io);
    void (*stop)(struct fp_io *io);
    /* Any thread: wakes the loop, which then calls the notify callback on its thread. */
    void (*notify)(struct fp_io *io);
    /* Releases the instance; every connection and listener must be closed. */
    void (*destroy)(struct fp_io *io);
};

/* The common head of every backend instance. */
struct fp_io {
    const struct fp_io_ops *ops;
    const char             *steering; /* how flows reach this worker: "rss software", ... */
    fp_notify_fn            on_notify;
    void                   *notify_data;
    /* Set by the owner before run; NULL = none. Every backend's loop calls it on the worker
     * thread once per iteration, after it handled all the events it had ready (timers
     * included) and before it waits for more: the proxy issues the sends those events
     * produced here, as a burst (DPDK's l3fwd drains its TX queues the same way). */
    fp_notify_fn on_flush;
    void        *flush_data;
    /* A recv between two waits for events sees bytes that arrived since the last wait
     * (kernel sockets). False where a connection's bytes come only with a wait (io_uring's
     * completions, the DPDK stack's receive burst): looking early finds nothing there. */
    bool recv_live;
    uint64_t                conn_pool_empty; /* connections refused: pool exhausted */
    uint64_t                accept_errors;   /* accept() failures other than EAGAIN */
    /* The generic segment path's buffers (net/io.c), for a backend without recv_segs. */
    struct fp_io_segpool *segpool;
};

enum fp_dpdk_poll {
    FP_DPDK_POLL_ADAPTIVE = 0, /* spin while busy, then pause and sleep up to ~100 us */
    FP_DPDK_POLL_BUSY,         /* spin always: lowest latency, one core at 100 % */
};

enum fp_dpdk_rss {
    FP_DPDK_RSS_AUTO = 0,  /* the port's RSS if it reports key and table, else software */
    FP_DPDK_RSS_HARDWARE,  /* require the port's RSS; fail at start otherwise */
    FP_DPDK_RSS_SOFTWARE,  /* steer every packet in software (Toeplitz, our key and table) */
};

#define FP_DPDK_MAX_EAL_ARGS  32
#define FP_DPDK_MAX_PORT      1023   /* highest port id the config accepts */
#define FP_DPDK_MIN_MBUFS     1024   /* fills an RX ring of 512 plus TX and bursts in flight */
#define FP_DPDK_MAX_MBUFS     262144 /* about 550 MiB of 2 KiB buffers per worker */
#define FP_DPDK_MAX_SRC_ADDRS 8

/* The `dpdk:` section (docs/configuration.md); read-only once the workers start. */
struct fp_dpdk_conf {
    bool              present; /* the section was given */
    char             *eal[FP_DPDK_MAX_EAL_ARGS]; /* EAL arguments, without argv[0] */
    uint32_t          nb_eal;
    uint16_t          port;       /* DPDK port id */
    struct in_addr    addr;       /* our IPv4 address on the port */
    uint8_t           prefix_len; /* 1..32 */
    struct in_addr    gateway;    /* INADDR_ANY = none */
    /* More local addresses on the same subnet for backend connections, when a worker has
     * used up the ports of addr that hash to its queue (issue 11 item 4); answered in ARP. */
    struct in_addr    src_addrs[FP_DPDK_MAX_SRC_ADDRS];
    uint32_t          nb_src_addrs;
    uint32_t          mbufs;      /* packet buffers per worker */
    enum fp_dpdk_poll poll;
    enum fp_dpdk_rss  rss;
};

struct fp_io_conf {
    enum fp_io_kind kind;
    uint32_t        max_conns; /* size of the connection pool (both directions) */
    int             cpu;       /* the worker's CPU, -1 if not pinned */
    unsigned        id;        /* worker index, 0..nb_workers-1 */
    unsigned        nb_workers;
    const struct fp_dpdk_conf *dpdk; /* io: dpdk only; outlives the instance */
    uint32_t        max_pipes; /* kernel backend: pipes for splice(2), 0 = never splice */
    uint32_t        collect_us; /* kernel, uring: while busy, poll at most once per this */
    fp_notify_fn    on_notify;
    void           *notify_data;
};

/*
 * Startup, main thread: prepares the n per-worker listening endpoints of address a, in worker
 * order, for backend kind. The kernel backend opens one socket per worker in one
 * SO_REUSEPORT group (fds[i] is worker i's; cpus[i] its CPU, for the steering program;
 * *steered tells whether that program is attached); the stack backend listens in each
 * worker's own stack instance and needs no socket (fds[i] = -1, *steered = 1: the NIC's RSS
 * or the software steering plays the group's part). Returns 0, or -errno with a reason in err.
 */
int fp_io_listen_group(enum fp_io_kind kind, const struct fp_addr *a, unsigned n,
                       const int *cpus, int backlog, int *fds, int *steered, char *err,
                       size_t errlen);

/*
 * Startup, main thread, before any group is opened: fails when another process already
 * listens on a (kernel backend: a plain bind without SO_REUSEPORT; the stack backend owns its
 * port and address, so nothing can share them). Returns 0, or -errno with a reason in err.
 */
int fp_io_check_unused(enum fp_io_kind kind, const struct fp_addr *a, char *err, size_t errlen);

/*
 * Returns the bytes one worker's backend instance of kind may use beyond its connection
 * objects, every pool full (for memory bounds): 0 for the kernel backend (the kernel's
 * socket memory is not ours to bound); for io: dpdk, the worker's mbuf pool, the stack's
 * packet buffers and TCBs for max_conns connections. dc: the dpdk: section (io: dpdk only).
 */
size_t fp_io_mem_bound(enum fp_io_kind kind, const struct fp_dpdk_conf *dc, uint32_t max_conns);

/* Returns the bytes one connection of backend kind takes in its pool (for memory bounds). */
size_t fp_io_conn_size(enum fp_io_kind kind);

/* Creates a backend instance for the calling worker. Startup only. Returns NULL and writes a
 * reason into err on failure (unknown kind, backend not built, out of memory). */
struct fp_io *fp_io_create(const struct fp_io_conf *conf, char *err, size_t errlen);

/* Releases an instance made by fp_io_create (the backend's destroy, and what net/io.c added).
 * Every connection and listener must be closed, every segment given back. */
void fp_io_destroy(struct fp_io *io);

/* The generic segment path (net/io.c) for backends without recv_segs/send_segs/seg_free:
 * recv (recvv where the backend has it) into FP_IO_SEG_SIZE-byte buffers of a per-worker pool,
 * send with sendv, then give the wholly sent segments back through fp_io_seg_free (the
 * backend's seg_free, if it has one: a backend may mix segments of its own with the generic
 * path's and use this send for both). */
#define FP_IO_SEG_SIZE (16u * 1024)

ssize_t fp_io_generic_recv_segs(struct fp_conn *c, struct fp_seg *segs, unsigned max,
                                uint32_t max_bytes, unsigned flags);
ssize_t fp_io_generic_send_segs(struct fp_conn *c, const struct fp_seg *segs, unsigned n,
                                unsigned flags);
void    fp_io_generic_seg_free(struct fp_io *io, struct fp_seg *seg);

/* Returns how many buffers of the generic path io has lent and not got back (0 when its
 * backend lends its own). Any thread may read it (an estimate); tests use it on the owner's. */
uint32_t fp_io_seg_in_use(const struct fp_io *io);

/* fp_io_recv_segs() : fp_io_ops.recv_segs of c's backend, or the generic path. */
static inline ssize_t
fp_io_recv_segs(struct fp_conn *c, struct fp_seg *segs, unsigned max, uint32_t max_bytes,
                unsigned flags)
{
    if (c->io->ops->recv_segs != NULL) {
        return c->io->ops->recv_segs(c, segs, max, max_bytes, flags);
    }
    return fp_io_generic_recv_segs(c, segs, max, max_bytes, flags);
}

/* fp_io_send_segs() : fp_io_ops.send_segs of c's backend, or the generic path. */
static inline ssize_t
fp_io_send_segs(struct fp_conn *c, const struct fp_seg *segs, unsigned n, unsigned flags)
{
    if (c->io->ops->send_segs != NULL) {
        return c->io->ops->send_segs(c, segs, n, flags);
    }
    return fp_io_generic_send_segs(c, segs, n, flags);
}

/* fp_io_seg_free() : fp_io_ops.seg_free of io's backend, or the generic path. */
static inline void
fp_io_seg_free(struct fp_io *io, struct fp_seg *seg)
{
    if (io->ops->seg_free != NULL) {
        io->ops->seg_free(io, seg);
    } else {
        fp_io_generic_seg_free(io, seg);
    }
    seg->data = NULL;
    seg->len = 0;
    seg->ref = NULL;
}

/* Gives back every segment q holds (fp_io_seg_free) and empties it. */
static inline void
fp_io_segq_release(struct fp_io *io, struct fp_segq *q)
{
    uint32_t i;

    for (i = 0; i < q->nb; i++) {
        fp_io_seg_free(io, &q->seg[i]);
    }
    q->nb = 0;
    q->bytes = 0;
}

#endif /* FP_NET_IO_H */
