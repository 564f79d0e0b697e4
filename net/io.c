/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Backend selection: the one place that knows every backend. Also the generic segment path
 * (net/io.h, fp_io_generic_*), which gives every backend without recv_segs/send_segs the
 * zero-copy interface at the price of one copy: received bytes land in buffers of a pool the
 * instance owns (one recvv per four buffers where the backend has it, else one recv per buffer,
 * until the kernel has no more or the caller's bound is reached), and a send hands them to
 * sendv, then frees what the kernel took.
 */
#include "net/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fp_build_config.h"
#include "net/io_kernel.h"
#include "net/io_stack.h"
#include "net/pool.h"
#include "net/sock.h"
#if FP_HAVE_DPDK
#include "net/io_dpdk.h"
#endif
#if FP_HAVE_URING
#include "net/io_uring.h"
#endif

int
fp_io_check_unused(enum fp_io_kind kind, const struct fp_addr *a, char *err, size_t errlen)
{
    /* io: uring listens on the same kernel sockets as io: kernel. */
    return kind != FP_IO_DPDK ? fp_sock_check_unused(a, err, errlen) : 0;
}

int
fp_io_listen_group(enum fp_io_kind kind, const struct fp_addr *a, unsigned n, const int *cpus,
                   int backlog, int *fds, int *steered, char *err, size_t errlen)
{
    unsigned i;

    if (kind != FP_IO_DPDK) {
        return fp_sock_listen_group(a, n, cpus, backlog, fds, steered, err, errlen);
    }
    for (i = 0; i < n; i++) {
        fds[i] = -1;
    }
    *steered = 1;
    return 0;
}

/*
 * The generic path's buffers: one per connection is the reserve (a connection that holds none
 * always gets one, so its read never fails for want of memory), and half as many again are
 * spare, lent to connections that read ahead (FP_RECV_AHEAD) only while the reserve is intact
 * (segpool_may_lend). A session's two directions read ahead up to FP_SEGQ_MAX_BYTES each when
 * spare buffers are free, and one buffer at a time when they are not.
 */
struct fp_io_segpool {
    struct fp_pool pool;    /* FP_IO_SEG_SIZE-byte buffers */
    uint32_t       reserve; /* buffers read-ahead never takes: max_conns */
};

static uint32_t
segpool_count(uint32_t max_conns)
{
    return max_conns + max_conns / 2 + 1;
}

/*
 * A buffer taken without FP_RECV_AHEAD (the caller held none of the connection's) is a
 * "first"; at most one per connection is held at a time, so at most reserve. Read-ahead takes
 * one only while in_use < count - reserve, so read-ahead holds at most count - reserve: a first
 * always finds a free buffer.
 */
static bool
segpool_may_lend(const struct fp_io_segpool *sp, bool ahead)
{
    return ahead ? sp->pool.nb_free > sp->reserve : sp->pool.nb_free > 0;
}

static int
segpool_create(struct fp_io *io, uint32_t max_conns)
{
    struct fp_io_segpool *sp = calloc(1, sizeof(*sp));

    if (sp == NULL) {
        return -ENOMEM;
    }
    if (fp_pool_init(&sp->pool, FP_IO_SEG_SIZE, segpool_count(max_conns)) != 0) {
        free(sp);
        return -ENOMEM;
    }
    sp->reserve = max_conns;
    io->segpool = sp;
    return 0;
}

/* Buffers per scatter read (fp_io_ops.recvv): four hold a direction's read-ahead bound. */
#define SEGS_RECVV_MAX 4

/*
 * One recvv into up to SEGS_RECVV_MAX buffers (the last one cut to max_bytes), so that a large
 * transfer costs one system call per 64 KiB instead of one per 16 KiB; buffers are a pointer
 * pop each, so the ones a short read leaves empty cost nothing but their push back. ahead: the
 * first buffer too is read-ahead (segpool_may_lend). Lends the buffers that got bytes at
 * segs[0..], gives the others back, and sets *nb to how many were lent and *full to whether the
 * read filled them all (more may wait). Returns the bytes read, 0 at EOF, -EAGAIN, -ENOBUFS (no
 * buffer may be lent) or -errno.
 */
static ssize_t
recv_scatter(struct fp_conn *c, struct fp_io_segpool *sp, struct fp_seg *segs, unsigned max,
             uint32_t max_bytes, bool ahead, unsigned *nb, bool *full)
{
    struct fp_buf b[SEGS_RECVV_MAX];
    uint32_t      want = 0;
    unsigned      k = 0;
    unsigned      i;
    ssize_t       n;

    while (k < max && k < SEGS_RECVV_MAX && want < max_bytes &&
           segpool_may_lend(sp, ahead || k > 0)) {
        b[k].data = fp_pool_get(&sp->pool);
        b[k].size = max_bytes - want < FP_IO_SEG_SIZE ? max_bytes - want : FP_IO_SEG_SIZE;
        b[k].head = 0;
        b[k].tail = 0;
        want += b[k].size;
        k++;
    }
    *nb = 0;
    *full = false;
    if (k == 0) {
        return -ENOBUFS;
    }
    n = c->io->ops->recvv(c, b, k);
    for (i = 0; i < k; i++) {
        if (n <= 0 || b[i].tail == 0) {
            fp_pool_put(&sp->pool, b[i].data);
            continue;
        }
        segs[*nb].data = b[i].data;
        segs[*nb].len = b[i].tail;
        segs[*nb].ref = b[i].data;
        (*nb)++;
    }
    *full = n > 0 && (uint32_t)n == want;
    return n;
}

ssize_t
fp_io_generic_recv_segs(struct fp_conn *c, struct fp_seg *segs, unsigned max, uint32_t max_bytes,
                        unsigned flags)
{
    struct fp_io_segpool *sp = c->io->segpool;
    struct fp_buf         b;
    uint32_t              got = 0;
    uint32_t              room;
    unsigned              i = 0;
    unsigned              nb;
    bool                  ahead;
    bool                  full;
    ssize_t               n = -EAGAIN;

    while (i < max && (i == 0 || got < max_bytes)) {
        room = max_bytes > got ? max_bytes - got : 0;
        ahead = i > 0 || (flags & FP_RECV_AHEAD) != 0;
        if (c->io->ops->recvv != NULL && room > FP_IO_SEG_SIZE && max - i > 1) {
            n = recv_scatter(c, sp, segs + i, max - i, room, ahead, &nb, &full);
            i += nb;
            if (n <= 0 || !full) {
                break;
            }
            got += (uint32_t)n;
            continue;
        }
        if (!segpool_may_lend(sp, ahead)) {
            n = -ENOBUFS;
            break;
        }
        b.data = fp_pool_get(&sp->pool);
        b.size = room > 0 && room < FP_IO_SEG_SIZE ? room : FP_IO_SEG_SIZE;
        b.head = 0;
        b.tail = 0;
        n = c->io->ops->recv(c, &b);
        if (n <= 0) {
            fp_pool_put(&sp->pool, b.data);
            break;
        }
        segs[i].data = b.data;
        segs[i].len = (uint32_t)n;
        segs[i].ref = b.data;
        got += (uint32_t)n;
        i++;
        /* A short read drained the socket: another recv would only say EAGAIN. */
        if ((uint32_t)n < b.size) {
            break;
        }
    }
    return i > 0 ? (ssize_t)i : n;
}

ssize_t
fp_io_generic_send_segs(struct fp_conn *c, const struct fp_seg *segs, unsigned n, unsigned flags)
{
    struct fp_slice sl[FP_SEGQ_CAP];
    struct fp_seg   done;
    ssize_t         sent;
    size_t          left;
    unsigned        i;

    if (n == 0) {
        return -EAGAIN;
    }
    if (n > FP_SEGQ_CAP) {
        n = FP_SEGQ_CAP;
    }
    for (i = 0; i < n; i++) {
        sl[i].data = segs[i].data;
        sl[i].len = segs[i].len;
    }
    sent = c->io->ops->sendv(c, sl, n, flags);
    if (sent <= 0) {
        return sent == 0 ? -EAGAIN : sent;
    }
    /* sendv copied what it took (into the socket, or io: uring's send buffer): the wholly sent
     * segments go back now, through the backend's seg_free when it has one, since a backend
     * may lend buffers of its own beside the generic path's (io: uring's provided buffers). */
    left = (size_t)sent;
    for (i = 0; i < n && left >= segs[i].len; i++) {
        left -= segs[i].len;
        done = segs[i];
        fp_io_seg_free(c->io, &done);
    }
    return sent;
}

void
fp_io_generic_seg_free(struct fp_io *io, struct fp_seg *seg)
{
    fp_pool_put(&io->segpool->pool, seg->ref);
}

uint32_t
fp_io_seg_in_use(const struct fp_io *io)
{
    return io->segpool != NULL ? fp_pool_in_use(&io->segpool->pool) : 0;
}

size_t
fp_io_mem_bound(enum fp_io_kind kind, const struct fp_dpdk_conf *dc, uint32_t max_conns)
{
#if FP_HAVE_DPDK
    if (kind == FP_IO_DPDK) {
        return fp_io_dpdk_mem_bound(dc, max_conns);
    }
#endif
    /* The generic segment path's buffers (the stack backend lends its packet buffers); io:
     * uring has its own on top of them (it lends them, and uses these after a read(2)). */
#if FP_HAVE_URING
    if (kind == FP_IO_URING) {
        return fp_io_uring_mem_bound(max_conns) +
               (size_t)segpool_count(max_conns) * (FP_IO_SEG_SIZE + sizeof(void *));
    }
#endif
    return (size_t)segpool_count(max_conns) * (FP_IO_SEG_SIZE + sizeof(void *));
}

size_t
fp_io_conn_size(enum fp_io_kind kind)
{
    if (kind == FP_IO_DPDK) {
        return fp_io_stack_conn_size();
    }
#if FP_HAVE_URING
    if (kind == FP_IO_URING) {
        return fp_io_uring_conn_size();
    }
#endif
    return fp_io_kernel_conn_size();
}

static struct fp_io *
create_backend(const struct fp_io_conf *conf, char *err, size_t errlen)
{
    switch (conf->kind) {
    case FP_IO_KERNEL:
        return fp_io_kernel_create(conf, err, errlen);
    case FP_IO_DPDK:
#if FP_HAVE_DPDK
        return fp_io_dpdk_create(conf, err, errlen);
#else
        snprintf(err, errlen, "io: dpdk is not available in this build (built without DPDK); "
                              "use io: kernel");
        return NULL;
#endif
    case FP_IO_URING:
#if FP_HAVE_URING
        return fp_io_uring_create(conf, err, errlen);
#else
        snprintf(err, errlen, "io: uring is not available in this build (built without "
                              "liburing); use io: kernel");
        return NULL;
#endif
    }
    snprintf(err, errlen, "unknown I/O backend %d", (int)conf->kind);
    return NULL;
}

struct fp_io *
fp_io_create(const struct fp_io_conf *conf, char *err, size_t errlen)
{
    struct fp_io *io = create_backend(conf, err, errlen);

    if (io == NULL || (io->ops->recv_segs != NULL && !io->ops->generic_segs)) {
        return io;
    }
    if (segpool_create(io, conf->max_conns) != 0) {
        snprintf(err, errlen, "cannot allocate %u segment buffers", segpool_count(conf->max_conns));
        io->ops->destroy(io);
        return NULL;
    }
    return io;
}

void
fp_io_destroy(struct fp_io *io)
{
    struct fp_io_segpool *sp = io->segpool;

    io->segpool = NULL;
    io->ops->destroy(io);
    if (sp != NULL) {
        fp_pool_destroy(&sp->pool);
        free(sp);
    }
}
