/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The user-space stack backend: struct fp_io_ops over one private net/stack/ instance per
 * worker, on any struct fp_link (a DPDK port queue, or an emulated link in tests). It owns the
 * instance, its connection pool and its timers; the link belongs to whoever created it
 * (net/io_dpdk.c) and is released through the destroy hook. Everything here runs on the owning
 * worker's thread, except fp_io_ops.notify and fp_io_stack_stats(). proxy/ never includes this
 * header: only net/io.c, net/io_dpdk.c and tests do.
 */
#ifndef FP_NET_IO_STACK_H
#define FP_NET_IO_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "net/io.h"
#include "net/stack/stack_types.h"

struct fp_link;
struct fp_rss_ports;

/*
 * Waits up to timeout_us for the link to have work (a frame, a steered frame) or for wake(),
 * whichever comes first; called by an idle adaptive loop. Returns 0, or -ENOTSUP when the
 * link cannot wait (the loop then sleeps in short steps instead).
 */
typedef int (*fp_io_stack_idle_fn)(void *ctx, uint64_t timeout_us);

/* Wakes a loop blocked in the idle hook; any thread. */
typedef void (*fp_io_stack_wake_fn)(void *ctx);

/* Releases the link when the instance is destroyed. */
typedef void (*fp_io_stack_link_fn)(void *ctx);

/* Per-worker loop counters (the instance's own; the stack's are in fp_stack_counters()). */
struct fp_io_stack_stats {
    uint64_t loops;       /* loop iterations */
    uint64_t busy_ns;     /* time in iterations that did work */
    uint64_t idle_ns;     /* time in iterations that found nothing, sleeps included */
    uint64_t sleeps;      /* adaptive back-off sleeps */
    uint64_t waits;       /* adaptive waits for a link interrupt */
    uint64_t port_misses; /* candidate local ports refused by the stack (busy, TIME-WAIT) */
    uint64_t no_port;     /* active opens that found no port */
};

struct fp_io_stack_conf {
    const char          *name;     /* the backend's name in logs ("dpdk") */
    const char          *steering; /* how flows reach the instance, for logs */
    struct fp_stack_conf stack;    /* address, pools, TCP settings (copied) */
    struct fp_link      *link;     /* not owned; must outlive the instance */
    enum fp_dpdk_poll    poll;
    struct fp_rss_ports *ports; /* RSS-aware local ports; NULL: the stack's sequential ones */
    fp_io_stack_idle_fn  idle;  /* NULL: short sleeps when idle */
    fp_io_stack_wake_fn  wake;  /* with idle */
    fp_io_stack_link_fn  link_release; /* called from destroy; may be NULL */
    /* The link's own per-worker counters, exported beside the stack's: nb_link_ctr values
     * at link_ctr (written by this worker only), named and explained by the two arrays.
     * Every instance of a process must give the same names. */
    const uint64_t    *link_ctr;
    const char *const *link_ctr_names;
    const char *const *link_ctr_help;
    unsigned           nb_link_ctr;
    void              *link_ctx;
    uint32_t           backlog; /* accept queue per listener */
};

/* Creates an instance (startup, any thread). NULL with a reason in err on failure. */
struct fp_io *fp_io_stack_create(const struct fp_io_conf *ioc, const struct fp_io_stack_conf *sc,
                                 char *err, size_t errlen);

/* Bytes of a stack instance with nb_pkts packet buffers and nb_tcbs TCBs, pools full. */
size_t fp_io_stack_mem_bound(uint32_t nb_pkts, uint32_t nb_tcbs);

/* Returns sizeof the backend's connection object. */
size_t fp_io_stack_conn_size(void);

/*
 * Runs one pass of the loop (receive, stack, proxy events, timers, transmit) without idling;
 * returns the work done (0: idle). For tests that drive several instances from one thread.
 */
unsigned fp_io_stack_poll(struct fp_io *io);

/* Copies the loop counters (relaxed loads; any thread). */
void fp_io_stack_stats(const struct fp_io *io, struct fp_io_stack_stats *out);

/* The instance's stack (for its counters). */
const struct fp_stack *fp_io_stack_of(const struct fp_io *io);

#endif /* FP_NET_IO_STACK_H */
