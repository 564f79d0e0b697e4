/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The segment path of net/io.h (fp_io_recv_segs / fp_io_send_segs / fp_io_seg_free) on both
 * backends: segments lent by one connection are handed to another, which takes ownership.
 *
 * Kernel backend (the generic path of net/io.c): two connections to a plain listening socket on
 * loopback; bytes written into one arrive as segments of the pool, leave on the other, and
 * the pool gets every buffer back; the read-ahead reserve (FP_RECV_AHEAD) keeps a buffer for a
 * connection that holds none.
 *
 * Stack backend: an io_stack instance and a peer stack on the in-memory link (copy_frames: each
 * instance receives into its own buffers, as from a NIC). The peer sends on one connection;
 * the instance forwards the received packet buffers to its other connection; the peer reads the
 * bytes back intact, and the instance's count of copied payload bytes stays 0. Without
 * copy_frames the buffers belong to the peer and are copied (and counted) once. As the proxy
 * does, the forwarder sends again only after new segments came or FP_EV_WRITE was reported:
 * the peer reads nothing at first, so the send buffer (32 KiB) fills and segments are refused,
 * and only the writability event can restart the transfer.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/io.h"
#include "net/io_stack.h"
#include "net/stack/link_mem.h"
#include "net/stack/stack.h"
#include "net/stack/tcp.h"

#define XFER_BYTES (300u * 1024)

static uint8_t
pattern(uint64_t i)
{
    return (uint8_t)(i * 31 + (i >> 9));
}

static void
noop_handler(struct fp_conn *c, unsigned events)
{
}

/* Records the events a connection got (c->data: an unsigned). */
static void
record_handler(struct fp_conn *c, unsigned events)
{
    *(unsigned *)c->data |= events;
}

/* ---- Kernel backend ---- */

static int
listen_loopback(struct fp_addr *a)
{
    struct sockaddr_in sin;
    socklen_t          len = sizeof(sin);
    int                fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(fd, 8) == -1 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
        return -1;
    }
    memset(a, 0, sizeof(*a));
    a->u.sin = sin;
    a->len = sizeof(sin);
    return fd;
}

/* Opens a backend connection to the listener and returns the peer's accepted socket. */
static int
kernel_pair(struct fp_io *io, int lfd, const struct fp_addr *a, struct fp_conn **c)
{
    int fd;

    if (io->ops->connect(io, a, c) != 0) {
        return -1;
    }
    (*c)->handler = noop_handler;
    fd = accept(lfd, NULL, NULL);
    return fd;
}

/* An io: kernel instance with max_conns connections and max_pipes splice pipes. */
static struct fp_io *
kernel_io(uint32_t max_conns, uint32_t max_pipes)
{
    struct fp_io_conf ioc;
    struct fp_io     *io;
    char              err[128];

    memset(&ioc, 0, sizeof(ioc));
    ioc.kind = FP_IO_KERNEL;
    ioc.max_conns = max_conns;
    ioc.cpu = -1;
    ioc.max_pipes = max_pipes;
    io = fp_io_create(&ioc, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    return io;
}

/* The value of the backend counter called name; UINT64_MAX when the backend has none. */
static uint64_t
io_counter(const struct fp_io *io, const char *name)
{
    unsigned i;

    for (i = 0; i < io->ops->nb_counters; i++) {
        if (strcmp(io->ops->counters[i].name, name) == 0) {
            return fp_io_counter_load(io, &io->ops->counters[i]);
        }
    }
    return UINT64_MAX;
}

static void
kernel_forward(uint32_t max_pipes)
{
    struct fp_io     *io;
    struct fp_conn   *c1;
    struct fp_conn   *c2;
    struct fp_addr    a;
    struct fp_segq    q;
    static uint8_t    buf[XFER_BYTES];
    uint64_t          sent = 0;
    uint64_t          got = 0;
    uint64_t          moved = 0;
    ssize_t           n;
    int               lfd;
    int               p1;
    int               p2;
    int               i;
    bool              eof = false;

    io = kernel_io(4, max_pipes);
    CU_ASSERT_TRUE(io->ops->generic_segs); /* copies (generic path) unless it splices */
    lfd = listen_loopback(&a);
    CU_ASSERT_FATAL(lfd >= 0);
    p1 = kernel_pair(io, lfd, &a, &c1);
    p2 = kernel_pair(io, lfd, &a, &c2);
    CU_ASSERT_FATAL(p1 >= 0 && p2 >= 0);
    for (i = 0; i < (int)sizeof(buf); i++) {
        buf[i] = pattern((uint64_t)i);
    }
    memset(&q, 0, sizeof(q));
    CU_ASSERT_EQUAL(fp_io_recv_segs(c1, q.seg, FP_SEGQ_CAP, FP_SEGQ_MAX_BYTES, 0), -EAGAIN);
    /* The peer writes into c1; what c1 lends goes out on c2; the peer reads it from p2. */
    while (got < sizeof(buf)) {
        if (sent < sizeof(buf)) {
            n = write(p1, buf + sent, sizeof(buf) - sent > 65536 ? 65536 : sizeof(buf) - sent);
            CU_ASSERT_FATAL(n > 0);
            sent += (uint64_t)n;
            if (sent == sizeof(buf)) {
                shutdown(p1, SHUT_WR);
            }
        }
        if (!fp_segq_full(&q) && !eof) {
            n = fp_io_recv_segs(c1, &q.seg[q.nb], fp_segq_room(&q), fp_segq_byte_room(&q),
                                FP_RECV_OPAQUE | (q.nb > 0 ? FP_RECV_AHEAD : 0));
            CU_ASSERT(n >= 0 || n == -EAGAIN || n == -ENOBUFS);
            if (n > 0) {
                /* Spliced bytes stay in the kernel: their segments have no data. */
                CU_ASSERT(max_pipes > 0 || q.seg[q.nb].data != NULL);
                fp_segq_added(&q, (uint32_t)n);
            } else if (n == 0) {
                eof = true;
            }
        }
        if (q.nb > 0) {
            n = fp_io_send_segs(c2, q.seg, q.nb, 0);
            CU_ASSERT(n > 0 || n == -EAGAIN);
            if (n > 0) {
                fp_segq_consume(&q, (uint32_t)n);
                moved += (uint64_t)n;
            }
        }
        n = recv(p2, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (uint64_t)n;
        }
    }
    for (i = 0; i < (int)sizeof(buf); i++) {
        if (buf[i] != pattern((uint64_t)i)) {
            break;
        }
    }
    CU_ASSERT_EQUAL(i, (int)sizeof(buf));
    CU_ASSERT_EQUAL(moved, sizeof(buf));
    CU_ASSERT_EQUAL(q.nb, 0);
    /* Every buffer lent came back when the kernel took its bytes. */
    CU_ASSERT_EQUAL(fp_io_seg_in_use(io), 0);
    while (!eof) {
        n = fp_io_recv_segs(c1, q.seg, FP_SEGQ_CAP, FP_SEGQ_MAX_BYTES, 0);
        CU_ASSERT(n == 0 || n == -EAGAIN);
        eof = n == 0;
    }
    if (max_pipes > 0) {
        /* After the first large read (copied) the bytes went through the pipe: the splice
         * counters (struct fp_io_counter) saw most of them go in, and all of those go out. */
        uint64_t in = io_counter(io, "splice_in_bytes");
        uint64_t out = io_counter(io, "splice_out_bytes");

        CU_ASSERT(in != UINT64_MAX && in >= sizeof(buf) / 2);
        CU_ASSERT_EQUAL(in, out);
    }
    io->ops->close(c1, 0);
    io->ops->close(c2, 0);
    close(p1);
    close(p2);
    close(lfd);
    fp_io_destroy(io);
}

static void
test_kernel_forward(void)
{
    kernel_forward(0);
}

/* The same through pipes (splice, global.maxpipes): no byte enters user space. */
static void
test_kernel_forward_splice(void)
{
    kernel_forward(4);
}

/* Moves one 32 KiB burst in at pin (read by cin) and out through cout; returns how many of the
 * burst's segments were spliced (their bytes never left the kernel). */
static int
splice_burst(int pin, struct fp_conn *cin, struct fp_conn *cout, int pout)
{
    static uint8_t big[2 * FP_IO_SEG_SIZE];
    struct fp_seg  segs[8];
    ssize_t        n;
    ssize_t        m;
    int            spliced = 0;
    int            i;

    CU_ASSERT_EQUAL(write(pin, big, sizeof(big)), (ssize_t)sizeof(big));
    usleep(20000);
    n = fp_io_recv_segs(cin, segs, 8, FP_SEGQ_MAX_BYTES, FP_RECV_OPAQUE);
    CU_ASSERT_FATAL(n > 0);
    for (i = 0; i < n; i++) {
        spliced += segs[i].data == NULL;
    }
    /* All of it goes: the backend takes back the segments it sent (buffers and pipe bytes). */
    m = fp_io_send_segs(cout, segs, (unsigned)n, 0);
    CU_ASSERT_EQUAL(m, (ssize_t)sizeof(big));
    usleep(20000);
    CU_ASSERT_EQUAL(recv(pout, big, sizeof(big), MSG_DONTWAIT | MSG_WAITALL), (ssize_t)sizeof(big));
    return spliced;
}

/*
 * One pipe, two keep-alive forwards: a connection holds the pipe only while bytes are in it, so
 * once the first forward's burst has gone out, the second one splices through the same pipe
 * (it would copy, counted in splice_nopipe, if the first connection kept it while idle).
 */
static void
test_kernel_pipe_shared(void)
{
    struct fp_io     *io;
    struct fp_conn   *c[4];
    struct fp_addr    a;
    int               p[4];
    int               lfd;
    int               i;

    io = kernel_io(8, 1);
    lfd = listen_loopback(&a);
    CU_ASSERT_FATAL(lfd >= 0);
    for (i = 0; i < 4; i++) {
        p[i] = kernel_pair(io, lfd, &a, &c[i]);
        CU_ASSERT_FATAL(p[i] >= 0);
    }
    /* A connection's first large read copies and marks it bulk; its next ones splice. */
    CU_ASSERT_EQUAL(splice_burst(p[0], c[0], c[1], p[1]), 0);
    CU_ASSERT(splice_burst(p[0], c[0], c[1], p[1]) > 0);
    CU_ASSERT_EQUAL(splice_burst(p[2], c[2], c[3], p[3]), 0);
    CU_ASSERT(splice_burst(p[2], c[2], c[3], p[3]) > 0);
    CU_ASSERT(splice_burst(p[0], c[0], c[1], p[1]) > 0);
    CU_ASSERT_EQUAL(io_counter(io, "splice_nopipe"), 0);
    CU_ASSERT_EQUAL(io_counter(io, "pipes_open"), 1);
    CU_ASSERT_EQUAL(fp_io_seg_in_use(io), 0);
    for (i = 0; i < 4; i++) {
        io->ops->close(c[i], 0);
        close(p[i]);
    }
    close(lfd);
    fp_io_destroy(io);
}

/*
 * max_conns 2: 2 reserved buffers and 2 spare. A connection that reads ahead takes the spares
 * and is then refused (-ENOBUFS with FP_RECV_AHEAD); the other connection, which holds none,
 * still gets its buffer; seg_free gives buffers back.
 */
static void
test_kernel_reserve(void)
{
    struct fp_io     *io;
    struct fp_conn   *c1;
    struct fp_conn   *c2;
    struct fp_addr    a;
    struct fp_seg     s1[8];
    struct fp_seg     s2[8];
    static uint8_t    big[8 * FP_IO_SEG_SIZE];
    ssize_t           n;
    int               lfd;
    int               p1;
    int               p2;
    int               i;

    io = kernel_io(2, 0);
    lfd = listen_loopback(&a);
    CU_ASSERT_FATAL(lfd >= 0);
    p1 = kernel_pair(io, lfd, &a, &c1);
    p2 = kernel_pair(io, lfd, &a, &c2);
    CU_ASSERT_FATAL(p1 >= 0 && p2 >= 0);
    CU_ASSERT_EQUAL(write(p1, big, sizeof(big)), (ssize_t)sizeof(big));
    CU_ASSERT_EQUAL(write(p2, big, 100), 100);
    usleep(20000);
    n = fp_io_recv_segs(c1, s1, 8, 8 * FP_IO_SEG_SIZE, 0);
    CU_ASSERT_EQUAL(n, 2); /* the first buffer, then the spare ones while the reserve holds */
    CU_ASSERT_EQUAL(fp_io_recv_segs(c1, s1 + 2, 6, FP_IO_SEG_SIZE, FP_RECV_AHEAD), -ENOBUFS);
    n = fp_io_recv_segs(c2, s2, 8, FP_SEGQ_MAX_BYTES, 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(s2[0].len, 100);
    CU_ASSERT_EQUAL(fp_io_seg_in_use(io), 3);
    for (i = 0; i < 2; i++) {
        fp_io_seg_free(io, &s1[i]);
        CU_ASSERT_PTR_NULL(s1[i].ref);
    }
    fp_io_seg_free(io, &s2[0]);
    CU_ASSERT_EQUAL(fp_io_seg_in_use(io), 0);
    io->ops->close(c1, 1);
    io->ops->close(c2, 1);
    close(p1);
    close(p2);
    close(lfd);
    fp_io_destroy(io);
}

/* Calls of the kernel backend's recv and recvv (test_kernel_scatter_read). */
static const struct fp_io_ops *kernel_ops;
static unsigned                nb_recv;
static unsigned                nb_recvv;

static ssize_t
counting_recv(struct fp_conn *c, struct fp_buf *b)
{
    nb_recv++;
    return kernel_ops->recv(c, b);
}

static ssize_t
counting_recvv(struct fp_conn *c, struct fp_buf *bufs, unsigned n)
{
    nb_recvv++;
    return kernel_ops->recvv(c, bufs, n);
}

/*
 * 64 KiB waiting (a direction's read-ahead bound) come in one system call: recvv fills four
 * buffers, where one recv per 16 KiB buffer took four (issue 13: 8 reads per 100 KiB response,
 * against 4 sends). A short message takes one recvv and lends one buffer; the buffers the read
 * left empty are back in the pool.
 */
static void
test_kernel_scatter_read(void)
{
    struct fp_io_ops  ops;
    struct fp_io     *io;
    struct fp_conn   *c1;
    struct fp_addr    a;
    struct fp_seg     sg[8];
    static uint8_t    big[FP_SEGQ_MAX_BYTES];
    ssize_t           n;
    int               lfd;
    int               p1;
    int               i;

    io = kernel_io(8, 0); /* 8 reserved buffers, 5 spare: the read-ahead needs 3 */
    CU_ASSERT_PTR_NOT_NULL_FATAL(io->ops->recvv);
    kernel_ops = io->ops;
    ops = *io->ops;
    ops.recv = counting_recv;
    ops.recvv = counting_recvv;
    io->ops = &ops;
    lfd = listen_loopback(&a);
    CU_ASSERT_FATAL(lfd >= 0);
    p1 = kernel_pair(io, lfd, &a, &c1);
    CU_ASSERT_FATAL(p1 >= 0);
    CU_ASSERT_EQUAL(write(p1, big, sizeof(big)), (ssize_t)sizeof(big));
    usleep(20000);
    nb_recv = 0;
    nb_recvv = 0;
    n = fp_io_recv_segs(c1, sg, 8, FP_SEGQ_MAX_BYTES, 0);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(nb_recvv, 1);
    CU_ASSERT_EQUAL(nb_recv, 0);
    for (i = 0; i < 4 && i < n; i++) {
        CU_ASSERT_EQUAL(sg[i].len, FP_IO_SEG_SIZE);
        fp_io_seg_free(io, &sg[i]);
    }
    CU_ASSERT_EQUAL(fp_io_seg_in_use(io), 0);
    CU_ASSERT_EQUAL(write(p1, big, 100), 100);
    usleep(20000);
    n = fp_io_recv_segs(c1, sg, 8, FP_SEGQ_MAX_BYTES, 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(sg[0].len, 100);
    CU_ASSERT_EQUAL(nb_recvv, 2);
    CU_ASSERT_EQUAL(fp_io_seg_in_use(io), 1);
    fp_io_seg_free(io, &sg[0]);
    CU_ASSERT_EQUAL(fp_io_recv_segs(c1, sg, 8, FP_SEGQ_MAX_BYTES, 0), -EAGAIN);
    CU_ASSERT_EQUAL(fp_io_seg_in_use(io), 0);
    io->ops->close(c1, 1);
    close(p1);
    close(lfd);
    io->ops = kernel_ops;
    fp_io_destroy(io);
}

/* ---- Stack backend ---- */

#define PEER_ADDR  0x0a000001u
#define PROXY_ADDR 0x0a000002u
#define PEER_PORT  9000

struct peer {
    struct fp_stack *st;
    struct fp_tcb   *acc[2];
    unsigned         nb_acc;
};

static void
peer_on_accept(struct fp_tcp_listener *l, void *user)
{
    struct peer   *p = user;
    struct fp_tcb *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        if (p->nb_acc < 2) {
            p->acc[p->nb_acc++] = c;
        } else {
            fp_tcp_abort(c);
        }
    }
}

static void
peer_noop(struct fp_tcb *c, void *user)
{
}

static void
peer_closed(struct fp_tcb *c, void *user, int err)
{
}

static const struct fp_tcp_callbacks peer_cb = {
        .on_accept = peer_on_accept,
        .on_connected = peer_noop,
        .on_readable = peer_noop,
        .on_writable = peer_noop,
        .on_closed = peer_closed,
};

static uint64_t
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void
pump(struct peer *p, struct fp_io *io)
{
    fp_stack_poll(p->st, mono_us(), 4);
    fp_io_stack_poll(io);
}

static uint64_t
copied_bytes(const struct fp_io *io)
{
    uint64_t ctr[FP_STK_CTR_NB];

    fp_stack_counters(fp_io_stack_of(io), ctr);
    return ctr[FP_STK_TCP_APP_COPY_BYTES];
}

/*
 * The peer sends XFER_BYTES on its first connection; the instance lends them as segments and
 * sends them on its second; the peer reads them back. Returns the instance's copied bytes.
 */
/* Buffers in the send queue of the instance's connection to the peer's acc (its local port is
 * the peer's remote port). */
static uint32_t
sndq_pkts(const struct fp_io *io, const struct fp_tcb *acc)
{
    const struct fp_tcb *tp;
    const struct fp_pkt *q;
    uint32_t             n = 0;

    tp = fp_tcp_find((struct fp_stack *)fp_io_stack_of(io), 0, PEER_ADDR, PEER_PORT, acc->rport);
    if (tp == NULL) {
        return 0;
    }
    for (q = tp->sndq_head; q != NULL; q = q->next) {
        n++;
    }
    return n;
}

/*
 * chunk: the peer sends that many bytes per loop pass (0: all it can), so that small segments
 * arrive. *max_sndq: the most buffers the forwarding connection's send queue held.
 */
static uint64_t
stack_forward(bool copy_frames, uint32_t chunk, uint32_t *max_sndq)
{
    struct fp_memlink_conf  lc;
    struct fp_memlink      *ml;
    struct fp_stack_conf    pc;
    struct fp_io_conf       ioc;
    struct fp_io_stack_conf sc;
    struct fp_tcp_listener *l;
    struct peer             p;
    struct fp_io           *io;
    struct fp_conn         *c[2];
    struct fp_addr          to;
    struct sockaddr_in      sin;
    struct fp_segq          q;
    static uint8_t          buf[XFER_BYTES];
    static uint8_t          rbuf[XFER_BYTES];
    char                    err[128];
    uint64_t                sent = 0;
    uint64_t                got = 0;
    uint64_t                copied;
    uint64_t                end;
    uint64_t                start;
    uint32_t                pkts0;
    unsigned                events = 0;
    unsigned                refused = 0;
    unsigned                wanted = 0;
    bool                    fresh;
    ssize_t                 n;
    unsigned                i;

    memset(&lc, 0, sizeof(lc));
    lc.seed = 1;
    lc.copy_frames = copy_frames;
    CU_ASSERT_EQUAL_FATAL(fp_memlink_create(&lc, &ml), 0);
    memset(&pc, 0, sizeof(pc));
    pc.addr = PEER_ADDR;
    pc.prefix_len = 24;
    pc.nb_pkts = 4096;
    pc.nb_tcbs = 16;
    pc.seed = 3;
    memset(&p, 0, sizeof(p));
    CU_ASSERT_EQUAL_FATAL(fp_stack_create(&pc, mono_us(), &p.st), 0);
    fp_stack_attach_link(p.st, fp_memlink_port(ml, 0), mono_us());
    n = fp_tcp_listen(p.st, PEER_PORT, 8, FP_TCP_SYN_BACKLOG_DEFAULT, &peer_cb, &p, &l);
    CU_ASSERT_EQUAL_FATAL(n, 0);
    memset(&ioc, 0, sizeof(ioc));
    ioc.kind = FP_IO_DPDK;
    ioc.max_conns = 8;
    memset(&sc, 0, sizeof(sc));
    sc.stack.addr = PROXY_ADDR;
    sc.stack.prefix_len = 24;
    sc.stack.nb_pkts = 4096;
    sc.stack.nb_tcbs = 16;
    sc.stack.seed = 5;
    sc.stack.snd_buf = 32768;
    sc.link = fp_memlink_port(ml, 1);
    io = fp_io_stack_create(&ioc, &sc, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(io);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(PEER_ADDR);
    sin.sin_port = htons(PEER_PORT);
    memset(&to, 0, sizeof(to));
    to.u.sin = sin;
    to.len = sizeof(sin);
    for (i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(io->ops->connect(io, &to, &c[i]), 0);
        c[i]->handler = record_handler;
        c[i]->data = &events;
        end = mono_us() + 2000000;
        while (p.nb_acc <= i && mono_us() < end) {
            pump(&p, io);
        }
        CU_ASSERT_EQUAL_FATAL(p.nb_acc, i + 1);
    }
    end = mono_us() + 200000;
    while (mono_us() < end) {
        pump(&p, io); /* let the handshakes settle (the opened events are delivered) */
    }
    pkts0 = fp_stack_pkts_avail(fp_io_stack_of(io));
    for (i = 0; i < XFER_BYTES; i++) {
        buf[i] = pattern(i);
    }
    memset(&q, 0, sizeof(q));
    start = mono_us();
    end = start + 10000000;
    events = 0;
    while (got < XFER_BYTES && mono_us() < end) {
        if (sent < XFER_BYTES) {
            n = fp_tcp_send(p.acc[0], buf + sent,
                            chunk != 0 && XFER_BYTES - sent > chunk ? chunk : XFER_BYTES - sent);
            if (n > 0) {
                sent += (uint64_t)n;
            }
        }
        pump(&p, io);
        fresh = false;
        if (!fp_segq_full(&q)) {
            n = fp_io_recv_segs(c[0], &q.seg[q.nb], fp_segq_room(&q), fp_segq_byte_room(&q),
                                q.nb > 0 ? FP_RECV_AHEAD : 0);
            if (n <= 0 && n != -EAGAIN) {
                CU_FAIL("recv_segs failed");
            }
            if (n > 0) {
                fp_segq_added(&q, (uint32_t)n);
                fresh = true;
            }
        }
        if (q.nb > 0 && (fresh || (events & FP_EV_WRITE) != 0)) {
            events = 0;
            n = fp_io_send_segs(c[1], q.seg, q.nb, 0);
            if (n <= 0 && n != -EAGAIN) {
                CU_FAIL("send_segs failed");
            }
            if (n > 0) {
                fp_segq_consume(&q, (uint32_t)n);
            }
            refused += q.nb > 0;
        }
        if (wanted != (q.nb > 0 ? FP_EV_WRITE : 0u)) {
            /* Only on a change, as the proxy does: a fresh want() would look at the level
             * again by itself and hide a missing event. */
            wanted = q.nb > 0 ? FP_EV_WRITE : 0u;
            io->ops->want(c[1], wanted);
        }
        if (sndq_pkts(io, p.acc[1]) > *max_sndq) {
            *max_sndq = sndq_pkts(io, p.acc[1]);
        }
        if (mono_us() - start > 200000) {
            n = fp_tcp_recv(p.acc[1], rbuf + got, XFER_BYTES - got);
            if (n > 0) {
                got += (uint64_t)n;
            }
        }
    }
    CU_ASSERT_EQUAL(got, XFER_BYTES);
    CU_ASSERT_EQUAL(memcmp(rbuf, buf, XFER_BYTES), 0);
    if (chunk == 0) {
        /* The send buffer did fill: the event path was exercised. (Sent 100 bytes a pass, the
         * peer may not fill it in 200 ms on a slow, sanitized build.) */
        CU_ASSERT(refused > 0);
    }
    CU_ASSERT_EQUAL(q.nb, 0);
    /* Once the peer acknowledged everything, every buffer lent is back in the pool. */
    end = mono_us() + 2000000;
    while (fp_stack_pkts_avail(fp_io_stack_of(io)) != pkts0 && mono_us() < end) {
        pump(&p, io);
    }
    CU_ASSERT_EQUAL(fp_stack_pkts_avail(fp_io_stack_of(io)), pkts0);
    copied = copied_bytes(io);
    io->ops->close(c[0], 1);
    io->ops->close(c[1], 1);
    fp_stack_shutdown(p.st);
    fp_stack_shutdown((struct fp_stack *)fp_io_stack_of(io));
    fp_io_destroy(io);
    fp_stack_destroy(p.st);
    fp_memlink_destroy(ml);
    return copied;
}

static void
test_stack_forward_zero_copy(void)
{
    uint32_t max_sndq = 0;

    CU_ASSERT_EQUAL(stack_forward(true, 0, &max_sndq), 0);
}

/*
 * The peer sends 100-byte segments: passed on as they are, they would fill the 32 KiB send
 * queue with about 330 nearly empty 2 KiB buffers. Short ones are merged into a short tail
 * buffer instead (copied, and counted), so the queue holds about 1 KiB per buffer.
 */
static void
test_stack_forward_small_segments(void)
{
    uint32_t max_sndq = 0;
    uint64_t copied = stack_forward(true, 100, &max_sndq);

    CU_ASSERT(copied > 0);
    CU_ASSERT(copied < XFER_BYTES);
    CU_ASSERT(max_sndq > 0);
    CU_ASSERT(max_sndq <= 64);
}

static void
test_stack_forward_foreign_buffers(void)
{
    uint32_t max_sndq = 0;

    /* The peer's own buffers arrive: each is copied into ours once, and counted. */
    CU_ASSERT_EQUAL(stack_forward(false, 0, &max_sndq), XFER_BYTES);
}

int
main(void)
{
    CU_pSuite s;
    unsigned  failed;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    s = CU_add_suite("io_segs", NULL, NULL);
    CU_add_test(s, "kernel_forward", test_kernel_forward);
    CU_add_test(s, "kernel_forward_splice", test_kernel_forward_splice);
    CU_add_test(s, "kernel_pipe_shared", test_kernel_pipe_shared);
    CU_add_test(s, "kernel_reserve", test_kernel_reserve);
    CU_add_test(s, "kernel_scatter_read", test_kernel_scatter_read);
    CU_add_test(s, "stack_forward_zero_copy", test_stack_forward_zero_copy);
    CU_add_test(s, "stack_forward_foreign_buffers", test_stack_forward_foreign_buffers);
    CU_add_test(s, "stack_forward_small_segments", test_stack_forward_small_segments);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
