/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The proxy on the stack backend over an emulated multi-queue NIC with RSS (issue 11 items 4
 * and 6): N workers, each a real proxy worker (proxy/worker.c) on its own io_stack instance and
 * its own queue of an in-memory link that steers frames with the Toeplitz hash and a
 * redirection table (net/stack/link_mq.h), as a NIC with RSS does. On the other side of the
 * wire one peer instance runs the clients and the origin. Everything runs in this one thread,
 * one loop pass per instance in turn.
 *
 * Checked: every client gets exactly what it should through the proxy, every worker serves,
 * and no frame of a backend connection reaches a queue whose worker does not own that
 * connection (the link's observer looks the tuple up in the receiving worker's stack before it
 * sees the frame). --control turns the RSS-aware port choice off (the stack's sequential
 * ports) and then asserts that frames DO land on the wrong queue: the check can fail.
 *
 * --ports LO-HI narrows the local ports of backend connections and --src-addrs N gives the
 * workers N more local addresses (10.0.0.3 on, as dpdk.source_addresses does), so that a
 * worker runs out of one address's ports: then backend frames must reach the extra addresses
 * and still their owner. With --ports and no --src-addrs the test is the control: it asserts
 * that some backend connections found no port.
 *
 * Usage: test_proxy_rss --workers N --mode http|tcp [--conns C] [--reqs R] [--bytes B]
 *                       [--download MIB] [--loss PPM] [--control]
 *                       [--ports LO-HI] [--src-addrs N]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/io.h"
#include "net/io_stack.h"
#include "net/rss.h"
#include "net/stack/link_mq.h"
#include "net/stack/stack.h"
#include "net/stack/tcp.h"
#include "proxy/worker.h"
#include "src/config.h"

#define MAX_WORKERS 8
#define MAX_CONNS   1024
#define PROXY_ADDR  0x0a000002u /* 10.0.0.2 */
#define PEER_ADDR   0x0a000001u /* 10.0.0.1 */
#define PROXY_PORT  8080
#define ORIGIN_PORT 9000
#define BUF_SIZE    65536
#define HTTP_BODY   "hello"

static const char http_req[] = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
static const char http_rsp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" HTTP_BODY;

enum role {
    ROLE_CLIENT = 0,
    ROLE_ORIGIN,
};

struct test;

struct pconn {
    struct test   *t;
    struct fp_tcb *c;
    enum role      role;
    uint64_t       sent;        /* bytes sent (pattern position for tcp clients/downloads) */
    uint64_t       recvd;       /* bytes received */
    unsigned       reqs;        /* http: requests sent (client) */
    unsigned       rsps;        /* http: responses completed (client) or requests seen (origin) */
    unsigned       crlf;        /* http: progress through "\r\n\r\n" */
    unsigned       body;        /* http client: body bytes still expected */
    uint8_t        pend[16384]; /* origin echo: bytes received, not yet sent */
    uint32_t       pend_len;
    bool           done;
    bool           failed;
    bool           eof; /* origin: the proxy closed its side */
};

struct opts {
    unsigned workers;
    bool     http;
    unsigned conns;
    unsigned reqs;
    uint64_t bytes;
    uint64_t download;
    uint32_t loss_ppm;
    bool     control;
    uint16_t port_lo; /* 0: the default range */
    uint16_t port_hi;
    unsigned nb_src;  /* extra local addresses PROXY_ADDR + 1 .. */
};

struct test {
    struct opts          o;
    struct fp_stack     *peer;
    struct fp_mqlink    *mq;
    struct fp_rss        rss;
    struct fp_io        *io[MAX_WORKERS];
    struct fp_rss_ports *ports[MAX_WORKERS];
    struct fp_worker     w[MAX_WORKERS];
    struct fp_conf       conf;
    struct pconn        *pc; /* MAX_CONNS * 2 */
    unsigned             nb_pc;
    unsigned             clients_done;
    unsigned             clients_failed;
    uint64_t             misdelivered; /* backend frames on a queue whose worker lacks the flow */
    uint64_t             backend_frames[MAX_WORKERS];
    uint64_t             src_frames; /* backend frames to an extra local address */
    uint64_t             mismatches;
};

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint8_t
pattern(uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

static struct pconn *
pconn_new(struct test *t, enum role role)
{
    struct pconn *p;

    if (t->nb_pc == 2 * MAX_CONNS) {
        return NULL;
    }
    p = &t->pc[t->nb_pc++];
    memset(p, 0, offsetof(struct pconn, pend));
    p->pend_len = 0;
    p->role = role;
    p->t = t;
    return p;
}

static void
client_finish(struct test *t, struct pconn *p, bool ok)
{
    if (p->done) {
        return;
    }
    p->done = true;
    p->failed = !ok;
    t->clients_done++;
    t->clients_failed += !ok;
    if (p->c != NULL) {
        fp_tcp_close(p->c);
        p->c = NULL;
    }
}

/* Sends the pattern from p->sent up to limit, as far as the send buffer takes it. */
static void
send_pattern(struct pconn *p, uint64_t limit)
{
    uint8_t buf[16384];
    size_t  n;
    size_t  i;
    ssize_t rc;

    while (p->c != NULL && p->sent < limit) {
        n = limit - p->sent < sizeof(buf) ? (size_t)(limit - p->sent) : sizeof(buf);
        for (i = 0; i < n; i++) {
            buf[i] = pattern(p->sent + i);
        }
        rc = fp_tcp_send(p->c, buf, n);
        if (rc <= 0) {
            return;
        }
        p->sent += (uint64_t)rc;
    }
}

static void
client_send_next(struct test *t, struct pconn *p)
{
    if (t->o.http) {
        if (p->reqs == p->rsps && p->reqs < t->o.reqs &&
            fp_tcp_send(p->c, http_req, sizeof(http_req) - 1) == sizeof(http_req) - 1) {
            p->reqs++;
        }
        return;
    }
    if (t->o.download == 0) {
        send_pattern(p, t->o.bytes);
    }
}

/* Counts "\r\n\r\n" ends of heads in data; returns the offset just past the first one. */
static size_t
scan_head_end(struct pconn *p, const uint8_t *data, size_t len, bool *found)
{
    static const char end[] = "\r\n\r\n";
    size_t            i;

    *found = false;
    for (i = 0; i < len; i++) {
        p->crlf = data[i] == (uint8_t)end[p->crlf] ? p->crlf + 1 : data[i] == '\r' ? 1 : 0;
        if (p->crlf == 4) {
            p->crlf = 0;
            *found = true;
            return i + 1;
        }
    }
    return len;
}

static void
flush_pending(struct pconn *p)
{
    ssize_t n;

    if (p->pend_len == 0 || p->c == NULL) {
        return;
    }
    n = fp_tcp_send(p->c, p->pend, p->pend_len);
    if (n > 0) {
        memmove(p->pend, p->pend + n, p->pend_len - (size_t)n);
        p->pend_len -= (uint32_t)n;
    }
}

static void
client_read(struct test *t, struct pconn *p, const uint8_t *data, size_t len)
{
    size_t off = 0;
    size_t k;
    bool   found;

    if (!t->o.http) {
        for (k = 0; k < len; k++) {
            if (data[k] != pattern(p->recvd + k)) {
                t->mismatches++;
            }
        }
        p->recvd += len;
        return;
    }
    p->recvd += len;
    while (off < len) {
        if (p->body > 0) {
            k = len - off < p->body ? len - off : p->body;
            p->body -= (unsigned)k;
            off += k;
            if (p->body == 0) {
                p->rsps++;
            }
            continue;
        }
        off += scan_head_end(p, data + off, len - off, &found);
        if (found) {
            p->body = sizeof(HTTP_BODY) - 1;
        }
    }
}

static void
origin_read(struct test *t, struct pconn *p)
{
    uint8_t buf[BUF_SIZE];
    size_t  off;
    ssize_t n = -EAGAIN;
    bool    found;

    while (p->c != NULL && p->pend_len < sizeof(p->pend)) {
        if (t->o.http || t->o.download != 0) {
            n = fp_tcp_recv(p->c, buf, sizeof(buf));
        } else {
            n = fp_tcp_recv(p->c, p->pend + p->pend_len, sizeof(p->pend) - p->pend_len);
        }
        if (n <= 0) {
            break;
        }
        if (t->o.http) {
            for (off = 0; off < (size_t)n;) {
                off += scan_head_end(p, buf + off, (size_t)n - off, &found);
                if (found && fp_tcp_send(p->c, http_rsp, sizeof(http_rsp) - 1) > 0) {
                    p->rsps++;
                }
            }
        } else if (t->o.download == 0) {
            /* Echo, with what the send buffer refuses kept until on_writable. */
            p->pend_len += (uint32_t)n;
            flush_pending(p);
        }
    }
    if (n == 0) {
        p->eof = true;
    }
    if (p->c != NULL && p->eof && p->pend_len == 0) {
        fp_tcp_close(p->c);
        p->c = NULL;
    }
}

static void
peer_on_connected(struct fp_tcb *c, void *user)
{
    struct pconn *p = user;

    client_send_next(p->t, p);
}

static void
peer_on_readable(struct fp_tcb *c, void *user)
{
    struct pconn *p = user;
    struct test  *t = p->t;
    uint8_t       buf[BUF_SIZE];
    ssize_t       n = -EAGAIN;

    if (p->role == ROLE_ORIGIN) {
        origin_read(t, p);
        return;
    }
    while (p->c != NULL && (n = fp_tcp_recv(p->c, buf, sizeof(buf))) > 0) {
        client_read(t, p, buf, (size_t)n);
    }
    if (t->o.http) {
        if (p->rsps == t->o.reqs) {
            client_finish(t, p, true);
        } else {
            client_send_next(t, p);
        }
    } else {
        uint64_t want = t->o.download != 0 ? t->o.download : t->o.bytes;

        if (p->recvd >= want) {
            client_finish(t, p, p->recvd == want);
        }
    }
    if (p->c != NULL && n == 0) {
        client_finish(t, p, false); /* EOF before the end */
    }
}

static void
peer_on_writable(struct fp_tcb *c, void *user)
{
    struct pconn *p = user;
    struct test  *t = p->t;

    if (p->role == ROLE_CLIENT) {
        client_send_next(t, p);
        return;
    }
    if (t->o.download != 0) {
        send_pattern(p, t->o.download);
        return;
    }
    flush_pending(p);
    origin_read(t, p);
}

static void
peer_on_closed(struct fp_tcb *c, void *user, int err)
{
    struct pconn *p = user;

    p->c = NULL;
    if (p->role == ROLE_CLIENT) {
        client_finish(p->t, p, false);
    }
}

static const struct fp_tcp_callbacks peer_cb = {
        .on_connected = peer_on_connected,
        .on_readable = peer_on_readable,
        .on_writable = peer_on_writable,
        .on_closed = peer_on_closed,
};

static void
origin_on_accept(struct fp_tcp_listener *l, void *user)
{
    struct test   *t = user;
    struct pconn  *p;
    struct fp_tcb *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        p = pconn_new(t, ROLE_ORIGIN);
        if (p == NULL) {
            fp_tcp_abort(c);
            continue;
        }
        p->c = c;
        fp_tcp_set_callbacks(c, &peer_cb, p);
        if (t->o.download != 0) {
            send_pattern(p, t->o.download);
        }
    }
}

static const struct fp_tcp_callbacks origin_lcb = {
        .on_accept = origin_on_accept,
};

/* The link's observer: is the frame, if it belongs to a backend connection (from the
 * origin's port), delivered to the worker whose stack holds that connection? */
static void
on_rx(void *arg, uint16_t q, const uint8_t *f, uint32_t len)
{
    struct test *t = arg;
    uint32_t     ihl;
    uint32_t     daddr;
    uint16_t     sport;
    uint16_t     dport;

    if (len < 14 + 20 + 4 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 6) {
        return;
    }
    ihl = (uint32_t)(f[14] & 0xf) * 4;
    daddr = (uint32_t)f[30] << 24 | (uint32_t)f[31] << 16 | (uint32_t)f[32] << 8 | f[33];
    sport = (uint16_t)(f[14 + ihl] << 8 | f[15 + ihl]);
    dport = (uint16_t)(f[16 + ihl] << 8 | f[17 + ihl]);
    if (sport != ORIGIN_PORT) {
        return;
    }
    t->backend_frames[q]++;
    if (daddr != PROXY_ADDR) {
        t->src_frames++;
    }
    if (fp_tcp_find((struct fp_stack *)fp_io_stack_of(t->io[q]), daddr, PEER_ADDR, ORIGIN_PORT,
                    dport) == NULL) {
        t->misdelivered++;
    }
}

static int
load_conf(struct test *t)
{
    char text[2048];
    char err[512];
    int  n;

    n = snprintf(text, sizeof(text),
                 "global: { workers: %u, maxconn: %u }\n"
                 "defaults: { timeouts: { connect: 2s, client: 10s, server: 10s } }\n"
                 "frontends:\n"
                 "  - { name: f, bind: [\"10.0.0.2:%u\"], mode: %s, default_backend: b }\n"
                 "backends:\n"
                 "  - name: b\n"
                 "    servers: [ { name: s, address: \"10.0.0.1:%u\" } ]\n",
                 t->o.workers, 1024 * t->o.workers, PROXY_PORT, t->o.http ? "http" : "tcp",
                 ORIGIN_PORT);
    if (fp_conf_load_string(&t->conf, "test", text, (size_t)n, err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    return 0;
}

static int
setup(struct test *t)
{
    struct fp_mqlink_conf    mc;
    struct fp_stack_conf     pc;
    struct fp_io_stack_conf  sc;
    struct fp_io_conf        ioc;
    struct fp_rss_ports_conf rc;
    struct fp_listen_conf    lc;
    struct fp_tcp_listener  *ol;
    struct fp_rss_ports     *ports;
    uint32_t                 laddrs[1 + FP_STK_MAX_SRC_ADDRS];
    char                     err[256];
    unsigned                 i;
    unsigned                 k;

    if (load_conf(t) != 0 || fp_rss_init(&t->rss, NULL, 0, 128, (uint16_t)t->o.workers) != 0) {
        return -1;
    }
    memset(&mc, 0, sizeof(mc));
    mc.wire.seed = 42;
    mc.wire.loss_ppm = t->o.loss_ppm;
    mc.wire.queue_frames = 16384;
    mc.rss = &t->rss;
    mc.on_rx = on_rx;
    mc.on_rx_arg = t;
    if (fp_mqlink_create(&mc, &t->mq) != 0) {
        return -1;
    }
    memset(&pc, 0, sizeof(pc));
    pc.addr = PEER_ADDR;
    pc.prefix_len = 24;
    pc.nb_pkts = 65536;
    pc.nb_tcbs = 4 * MAX_CONNS;
    pc.seed = 7;
    if (fp_stack_create(&pc, now_us(), &t->peer) != 0) {
        return -1;
    }
    fp_stack_attach_link(t->peer, fp_mqlink_peer(t->mq), now_us());
    if (fp_tcp_listen(t->peer, ORIGIN_PORT, 4096, FP_TCP_SYN_BACKLOG_DEFAULT, &origin_lcb, t,
                      &ol) != 0) {
        return -1;
    }
    for (k = 0; k <= t->o.nb_src; k++) {
        laddrs[k] = PROXY_ADDR + k;
    }
    for (i = 0; i < t->o.workers; i++) {
        ports = NULL;
        if (!t->o.control) {
            memset(&rc, 0, sizeof(rc));
            rc.rss = &t->rss;
            rc.queue = (uint16_t)i;
            rc.laddrs = laddrs;
            rc.nb_laddrs = 1 + t->o.nb_src;
            rc.port_lo = t->o.port_lo;
            rc.port_hi = t->o.port_hi;
            if (fp_rss_ports_create(&rc, &ports) != 0) {
                return -1;
            }
        }
        memset(&ioc, 0, sizeof(ioc));
        ioc.kind = FP_IO_DPDK;
        ioc.max_conns = 4 * MAX_CONNS;
        ioc.id = i;
        ioc.nb_workers = t->o.workers;
        memset(&sc, 0, sizeof(sc));
        sc.stack.addr = PROXY_ADDR;
        for (k = 0; k < t->o.nb_src; k++) {
            sc.stack.src_addrs[k] = laddrs[1 + k];
        }
        sc.stack.nb_src_addrs = t->o.nb_src;
        sc.stack.prefix_len = 24;
        sc.stack.nb_pkts = 16384;
        sc.stack.nb_tcbs = 8 * MAX_CONNS;
        sc.stack.seed = 100 + i;
        sc.link = fp_mqlink_queue(t->mq, (uint16_t)i);
        sc.ports = ports;
        t->ports[i] = ports;
        t->io[i] = fp_io_stack_create(&ioc, &sc, err, sizeof(err));
        if (t->io[i] == NULL) {
            fprintf(stderr, "worker %u: %s\n", i, err);
            return -1;
        }
        if (fp_worker_init(&t->w[i], i, t->o.workers, &t->conf, t->io[i], 2 * MAX_CONNS) != 0) {
            return -1;
        }
        memset(&lc, 0, sizeof(lc));
        lc.addr = t->conf.frontends[0].binds[0];
        lc.fd = -1;
        lc.backlog = 1024;
        if (fp_worker_listen(&t->w[i], 0, &lc) != 0) {
            return -1;
        }
    }
    return 0;
}

static void
run(struct test *t, uint64_t timeout_us)
{
    struct pconn *p;
    uint64_t      end = now_us() + timeout_us;
    unsigned      started = 0;
    unsigned      i;

    while (t->clients_done < t->o.conns && now_us() < end) {
        /* Open the clients gradually, a few per pass, from ephemeral peer ports. */
        for (i = 0; i < 8 && started < t->o.conns; i++, started++) {
            p = pconn_new(t, ROLE_CLIENT);
            if (p == NULL ||
                fp_tcp_connect(t->peer, PROXY_ADDR, PROXY_PORT, 0, &peer_cb, p, &p->c) != 0) {
                fprintf(stderr, "cannot open client %u\n", started);
                t->clients_done = t->o.conns;
                return;
            }
        }
        for (i = 0; i < t->o.workers; i++) {
            fp_io_stack_poll(t->io[i]);
        }
        fp_stack_poll(t->peer, now_us(), 4);
    }
}

static int
parse_opts(struct opts *o, int argc, char **argv)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->workers = 2;
    o->conns = 200;
    o->reqs = 10;
    o->bytes = 32768;
    for (i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";

        if (strcmp(argv[i], "--control") == 0) {
            o->control = true;
            continue;
        }
        if (strcmp(argv[i], "--workers") == 0) {
            o->workers = (unsigned)atoi(v);
        } else if (strcmp(argv[i], "--mode") == 0) {
            o->http = strcmp(v, "http") == 0;
        } else if (strcmp(argv[i], "--conns") == 0) {
            o->conns = (unsigned)atoi(v);
        } else if (strcmp(argv[i], "--reqs") == 0) {
            o->reqs = (unsigned)atoi(v);
        } else if (strcmp(argv[i], "--bytes") == 0) {
            o->bytes = strtoull(v, NULL, 10);
        } else if (strcmp(argv[i], "--download") == 0) {
            o->download = strtoull(v, NULL, 10) << 20;
        } else if (strcmp(argv[i], "--loss") == 0) {
            o->loss_ppm = (uint32_t)atoi(v);
        } else if (strcmp(argv[i], "--ports") == 0) {
            unsigned lo = 0;
            unsigned hi = 0;

            if (sscanf(v, "%u-%u", &lo, &hi) != 2 || lo == 0 || hi < lo || hi > 65535) {
                fprintf(stderr, "--ports LO-HI\n");
                return -1;
            }
            o->port_lo = (uint16_t)lo;
            o->port_hi = (uint16_t)hi;
        } else if (strcmp(argv[i], "--src-addrs") == 0) {
            o->nb_src = (unsigned)atoi(v);
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return -1;
        }
        i++;
    }
    if (o->workers == 0 || o->workers > MAX_WORKERS || o->conns == 0 || o->conns > MAX_CONNS ||
        o->nb_src > FP_STK_MAX_SRC_ADDRS) {
        fprintf(stderr, "workers 1..%d, conns 1..%d, src-addrs 0..%d\n", MAX_WORKERS, MAX_CONNS,
                FP_STK_MAX_SRC_ADDRS);
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static struct test      t;
    struct fp_memlink_stats ws;
    uint64_t                lost = 0;
    uint64_t                no_port = 0;
    uint64_t                addr_moves = 0;
    uint64_t                t0;
    unsigned                i;
    int                     fail = 0;

    if (parse_opts(&t.o, argc, argv) != 0) {
        return 2;
    }
    t.pc = calloc(2 * MAX_CONNS, sizeof(*t.pc));
    if (t.pc == NULL || setup(&t) != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    t0 = now_us();
    run(&t, t.o.control ? 3000000 : 60000000);
    printf("%u workers, mode %s, %u clients%s: %u done, %u failed, %llu mismatched bytes, "
           "%.2f s\n",
           t.o.workers, t.o.http ? "http" : "tcp", t.o.conns,
           t.o.control ? " (control: sequential ports)" : "", t.clients_done, t.clients_failed,
           (unsigned long long)t.mismatches, (double)(now_us() - t0) / 1e6);
    for (i = 0; i < t.o.workers; i++) {
        printf("worker %u: accepted %llu, backend connections %llu, backend frames received "
               "%llu\n",
               i, (unsigned long long)t.w[i].stats.accepted,
               (unsigned long long)t.w[i].stats.srv_conn_new,
               (unsigned long long)t.backend_frames[i]);
    }
    printf("backend frames on a queue whose worker does not own the connection: %llu\n",
           (unsigned long long)t.misdelivered);
    for (i = 0; i < t.o.workers; i++) {
        struct fp_io_stack_stats  ss;
        struct fp_rss_ports_stats ps;

        fp_io_stack_stats(t.io[i], &ss);
        memset(&ps, 0, sizeof(ps));
        if (t.ports[i] != NULL) {
            fp_rss_ports_stats(t.ports[i], &ps);
        }
        printf("worker %u: port picks %llu, moves to the next address %llu, opens without a "
               "port %llu\n",
               i, (unsigned long long)ps.picks, (unsigned long long)ps.addr_moves,
               (unsigned long long)ss.no_port);
        no_port += ss.no_port;
        addr_moves += ps.addr_moves;
    }
    printf("backend frames to a source address: %llu\n", (unsigned long long)t.src_frames);
    for (i = 0; i < 2; i++) {
        fp_mqlink_wire_stats(t.mq, i, &ws);
        lost += ws.lost;
    }
    printf("frames lost on the wire: %llu\n", (unsigned long long)lost);
    if (t.o.port_lo != 0 && t.o.nb_src == 0) {
        /* The exhaustion control: one address's ports in the narrow range do not suffice. */
        fail = no_port == 0;
    } else if (t.o.control) {
        /* Sequential ports: with 2 or more queues some replies must land elsewhere. Such a
         * frame may even find a connection of the same 4-tuple that the wrong worker opened
         * from the same port: then it is not counted, but its session fails. */
        fail = t.o.workers > 1 && t.misdelivered == 0 && t.clients_failed == 0;
    } else {
        fail = t.clients_done != t.o.conns || t.clients_failed != 0 || t.mismatches != 0 ||
               t.misdelivered != 0;
        for (i = 0; i < t.o.workers && t.o.conns >= 4 * t.o.workers; i++) {
            fail |= t.w[i].stats.accepted == 0 || t.backend_frames[i] == 0;
        }
        fail |= t.o.loss_ppm != 0 && lost == 0;
        fail |= t.o.nb_src != 0 && (t.src_frames == 0 || addr_moves == 0 || no_port != 0);
    }
    printf("%s\n", fail ? "FAIL" : "PASS");
    for (i = 0; i < t.o.workers; i++) {
        fp_worker_stop_now(&t.w[i]);
        fp_io_stack_poll(t.io[i]);
    }
    fp_mqlink_destroy(t.mq);
    for (i = 0; i < t.o.workers; i++) {
        fp_worker_destroy(&t.w[i]);
        t.io[i]->ops->destroy(t.io[i]);
        fp_rss_ports_destroy(t.ports[i]);
    }
    fp_stack_destroy(t.peer);
    fp_conf_free(&t.conf);
    free(t.pc);
    return fail;
}
