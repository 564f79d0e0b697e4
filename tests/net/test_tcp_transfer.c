/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bulk transfer between two instances over the in-memory link, with impairments given on the
 * command line. B connects to A, sends a deterministic stream and closes; A receives it through
 * the zero-copy API, checks every byte against the stream, and closes at end of stream. The test
 * passes when every byte arrived intact and in order, both ends closed, and both instances'
 * pools are back to their initial level once TIME_WAIT is over.
 *
 * Usage: test_tcp_transfer [--mib N] [--loss PPM] [--dup PPM] [--reorder PPM] [--corrupt PPM]
 *                          [--delay US] [--rate BPS] [--seed S] [--cubic] [--nagle]
 *                          [--no-sack] [--no-ts] [--rcvbuf B] [--sndbuf B] [--queue FRAMES]
 *                          [--slow-reader US] [--echo]
 * Sizes are divided by h_scale() (8 under ASan, or $FP_TEST_SCALE).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/stack/pkt.h"
#include "net/stack/tcp.h"
#include "tests/net/harness.h"

struct xfer {
    uint64_t       total;
    uint64_t       sent;
    uint64_t       received;
    uint64_t       mismatches;
    uint64_t       seed;
    bool           server_eof;
    bool           client_done;
    int            client_err;
    struct fp_tcb *client;
    struct fp_tcb *server;
    struct h_pair *pair;
    uint32_t       slow_us; /* --slow-reader: read 4 KiB every slow_us instead of at once */
    uint64_t       last_read_us;
    bool           echo;      /* --echo: the server sends everything back, the client checks */
    bool           echo_eof;  /* the client saw the end of the echo */
    uint64_t       echoed;    /* echo bytes the client received */
    uint32_t       epend_off; /* server: bytes of ebuf already sent */
    uint32_t       epend_len; /* server: bytes in ebuf */
    bool           srv_eof;   /* server: the client's FIN arrived */
    uint8_t        buf[65536];
    uint8_t        rbuf[4096];
    uint8_t        ebuf[16384];
    uint8_t        cbuf[16384];
};

/* Echo server: received bytes (checked) go back through a bounded buffer, by copy. */
static void
echo_server(struct fp_tcb *c, struct xfer *x)
{
    ssize_t  n;
    ssize_t  i;
    uint32_t want;

    for (;;) {
        while (x->epend_off < x->epend_len) {
            n = fp_tcp_send(c, x->ebuf + x->epend_off, x->epend_len - x->epend_off);
            if (n < 0) {
                return; /* on_writable resumes */
            }
            x->epend_off += (uint32_t)n;
        }
        x->epend_off = 0;
        x->epend_len = 0;
        if (x->srv_eof) {
            x->server_eof = true;
            fp_tcp_close(c);
            x->server = NULL;
            return;
        }
        want = fp_tcp_send_space(c);
        want = want < sizeof(x->ebuf) ? want : (uint32_t)sizeof(x->ebuf);
        if (want == 0) {
            want = 1;
        }
        n = fp_tcp_recv(c, x->ebuf, want);
        if (n == -EAGAIN) {
            return;
        }
        if (n == 0) {
            x->srv_eof = true;
            continue;
        }
        for (i = 0; i < n; i++) {
            if (x->ebuf[i] != h_pattern(x->seed, x->received + (uint64_t)i)) {
                x->mismatches++;
            }
        }
        x->received += (uint64_t)n;
        x->epend_len = (uint32_t)n;
    }
}

static void
echo_client_readable(struct fp_tcb *c, void *user)
{
    struct xfer *x = user;
    ssize_t      n;
    ssize_t      i;

    for (;;) {
        n = fp_tcp_recv(c, x->cbuf, sizeof(x->cbuf));
        if (n == -EAGAIN) {
            return;
        }
        if (n == 0) {
            x->echo_eof = true;
            fp_tcp_close(c);
            x->client = NULL;
            return;
        }
        for (i = 0; i < n; i++) {
            if (x->cbuf[i] != h_pattern(x->seed, x->echoed + (uint64_t)i)) {
                x->mismatches++;
            }
        }
        x->echoed += (uint64_t)n;
    }
}

static void
server_readable(struct fp_tcb *c, void *user)
{
    struct xfer   *x = user;
    struct fp_pkt *chain;
    struct fp_pkt *p;
    ssize_t        n;
    uint32_t       i;

    if (x->slow_us != 0) {
        return; /* the pacer in xfer_done reads */
    }
    if (x->echo) {
        echo_server(c, x);
        return;
    }
    for (;;) {
        n = fp_tcp_recv_pkts(c, &chain);
        if (n == -EAGAIN) {
            return;
        }
        if (n == 0) {
            x->server_eof = true;
            fp_tcp_close(c);
            x->server = NULL;
            return;
        }
        while ((p = chain) != NULL) {
            chain = p->next;
            for (i = 0; i < p->len; i++) {
                if (p->data[i] != h_pattern(x->seed, x->received + i)) {
                    x->mismatches++;
                }
            }
            x->received += p->len;
            fp_pkt_free(p);
        }
    }
}

static void
server_closed(struct fp_tcb *c, void *user, int err)
{
    struct xfer *x = user;

    fprintf(stderr, "server connection closed: %d\n", err);
    x->server = NULL;
}

static const struct fp_tcp_callbacks server_cb = {
        .on_readable = server_readable,
        .on_writable = server_readable,
        .on_closed = server_closed,
};

static void
server_accept(struct fp_tcp_listener *l, void *user)
{
    struct xfer   *x = user;
    struct fp_tcb *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        x->server = c;
        fp_tcp_set_callbacks(c, &server_cb, x);
        server_readable(c, x);
    }
}

static const struct fp_tcp_callbacks listen_cb = {
        .on_accept = server_accept,
};

static void
client_pump(struct fp_tcb *c, void *user)
{
    struct xfer *x = user;
    uint64_t     left;
    uint32_t     n;
    ssize_t      rc;

    while (x->sent < x->total) {
        left = x->total - x->sent;
        n = fp_tcp_send_space(c);
        n = n < sizeof(x->buf) ? n : (uint32_t)sizeof(x->buf);
        n = left < n ? (uint32_t)left : n;
        if (n == 0) {
            n = 1; /* let send report -EAGAIN and arm on_writable */
        }
        h_pattern_fill(x->seed, x->sent, x->buf, n);
        rc = fp_tcp_send(c, x->buf, n);
        if (rc < 0) {
            return;
        }
        x->sent += (uint64_t)rc;
    }
    x->client_done = true;
    if (x->echo) {
        fp_tcp_shutdown(c); /* FIN after the data; the echo still has to come back */
        return;
    }
    fp_tcp_close(c); /* queued data still goes out, then FIN */
    x->client = NULL;
}

static void
client_closed(struct fp_tcb *c, void *user, int err)
{
    struct xfer *x = user;

    x->client_err = err;
    x->client = NULL;
    fprintf(stderr, "client connection failed: %d\n", err);
}

static void
client_writable(struct fp_tcb *c, void *user)
{
    struct xfer *x = user;

    if (!x->client_done) {
        client_pump(c, user);
    }
}

static void
client_readable(struct fp_tcb *c, void *user)
{
    struct xfer *x = user;

    if (x->echo) {
        echo_client_readable(c, user);
    }
}

static const struct fp_tcp_callbacks client_cb = {
        .on_connected = client_pump,
        .on_readable = client_readable,
        .on_writable = client_writable,
        .on_closed = client_closed,
};

/* A slow application: 4 KiB every slow_us, so the window closes and reopens (persist). */
static void
slow_read(struct xfer *x)
{
    ssize_t n;
    ssize_t i;

    if (x->server == NULL || x->pair->now_us - x->last_read_us < x->slow_us) {
        return;
    }
    x->last_read_us = x->pair->now_us;
    n = fp_tcp_recv(x->server, x->rbuf, sizeof(x->rbuf));
    if (n == 0) {
        x->server_eof = true;
        fp_tcp_close(x->server);
        x->server = NULL;
        return;
    }
    for (i = 0; i < n; i++) {
        if (x->rbuf[i] != h_pattern(x->seed, x->received + (uint64_t)i)) {
            x->mismatches++;
        }
    }
    if (n > 0) {
        x->received += (uint64_t)n;
    }
}

static bool
xfer_done(void *arg)
{
    struct xfer *x = arg;

    if (x->slow_us != 0) {
        slow_read(x);
    }
    if (x->echo) {
        return (x->server_eof && x->echo_eof) || x->client_err != 0;
    }
    return x->server_eof || x->client_err != 0;
}


static bool
pools_idle(void *arg)
{
    return h_pair_pools_idle(arg);
}

static double
wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    struct fp_memlink_conf  lc = {.seed = 42};
    struct fp_stack_conf    sc = {.nb_pkts = 8192, .nb_tcbs = 64};
    struct fp_memlink_stats ls;
    struct fp_tcp_listener *l;
    struct h_pair           p;
    struct xfer            *x = calloc(1, sizeof(*x));
    uint64_t                mib = 100;
    uint64_t                t0;
    double                  w0;
    double                  wall;
    double                  virt;
    int                     i;
    int                     rc;
    bool                    ok = true;

    if (x == NULL) {
        return 1;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";

        if (strcmp(a, "--mib") == 0) {
            mib = strtoull(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--loss") == 0) {
            lc.loss_ppm = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--dup") == 0) {
            lc.dup_ppm = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--reorder") == 0) {
            lc.reorder_ppm = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--corrupt") == 0) {
            lc.corrupt_ppm = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--delay") == 0) {
            lc.delay_us = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--rate") == 0) {
            lc.rate_bps = strtoull(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            lc.seed = strtoull(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--rcvbuf") == 0) {
            sc.rcv_buf = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--sndbuf") == 0) {
            sc.snd_buf = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--queue") == 0) {
            lc.queue_frames = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--slow-reader") == 0) {
            x->slow_us = (uint32_t)strtoul(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--echo") == 0) {
            x->echo = true;
        } else if (strcmp(a, "--cubic") == 0) {
            sc.cc_algo = FP_TCP_CC_CUBIC;
        } else if (strcmp(a, "--nagle") == 0) {
            sc.nagle = true;
        } else if (strcmp(a, "--no-sack") == 0) {
            sc.no_sack = true;
        } else if (strcmp(a, "--no-ts") == 0) {
            sc.no_timestamps = true;
        } else {
            fprintf(stderr, "unknown argument %s\n", a);
            return 2;
        }
    }
    x->total = mib * 1024 * 1024 / h_scale();
    x->seed = lc.seed;
    rc = h_pair_create(&p, &lc, &sc);
    x->pair = &p;
    if (rc < 0) {
        fprintf(stderr, "pair: %d\n", rc);
        return 1;
    }
    if (fp_tcp_listen(p.a, 5001, 16, FP_TCP_SYN_BACKLOG_DEFAULT, &listen_cb, x, &l) != 0 ||
        fp_tcp_connect(p.b, H_ADDR_A, 5001, 0, &client_cb, x, &x->client) != 0) {
        fprintf(stderr, "listen/connect failed\n");
        return 1;
    }
    t0 = p.now_us;
    w0 = wall_s();
    h_pair_run(&p, xfer_done, x, 3600ull * 1000000);
    virt = (double)(p.now_us - t0) / 1e6;
    wall = wall_s() - w0;
    h_pair_run(&p, pools_idle, &p, 120ull * 1000000);
    fp_memlink_stats(p.ml, 1, &ls);
    printf("transfer: %" PRIu64 " bytes, received %" PRIu64 ", mismatches %" PRIu64
           ", virtual %.3f s, wall %.3f s (%.1f MB/s wall)\n",
           x->total, x->received, x->mismatches, virt, wall, (double)x->received / wall / 1e6);
    printf("link B->A: sent %" PRIu64 " lost %" PRIu64 " dup %" PRIu64 " reordered %" PRIu64
           " corrupted %" PRIu64 "\n",
           ls.sent, ls.lost, ls.duplicated, ls.reordered, ls.corrupted);
    if (x->echo) {
        printf("echo: %" PRIu64 " bytes back\n", x->echoed);
    }
    if (x->received != x->total || x->mismatches != 0 || !x->server_eof || x->client_err != 0 ||
        (x->echo && (x->echoed != x->total || !x->echo_eof))) {
        fprintf(stderr, "FAIL: data\n");
        if (x->client != NULL) {
            struct fp_tcb *c = x->client;

            fprintf(stderr,
                    "client: state %s una %u nxt %u max %u wnd %u cwnd %u ssthresh %u "
                    "sndq %u rexmt_at %llu persist_at %llu now %llu flags %#x armed %d\n",
                    fp_tcp_state_name(fp_tcp_get_state(c)), c->snd_una, c->snd_nxt, c->snd_max,
                    c->snd_wnd, c->snd_cwnd, c->snd_ssthresh, c->sndq_bytes,
                    (unsigned long long)c->t_rexmt_at, (unsigned long long)c->t_persist_at,
                    (unsigned long long)p.now_us, c->t_flags, c->t_timer.pprev != NULL);
        }
        if (x->server != NULL) {
            fprintf(stderr, "server: state %s rcv_nxt %u adv %u rcvq %u ooo %u\n",
                    fp_tcp_state_name(fp_tcp_get_state(x->server)), x->server->rcv_nxt,
                    x->server->rcv_adv, x->server->rcvq_bytes, x->server->ooo_bytes);
        }
        ok = false;
    }
    if (!h_pair_pools_idle(&p)) {
        fprintf(stderr,
                "FAIL: pools not back to initial level: pkts A %u/%u B %u/%u, tcbs A %u/%u B "
                "%u/%u\n",
                fp_stack_pkts_avail(p.a), p.pkts0_a, fp_stack_pkts_avail(p.b), p.pkts0_b,
                fp_stack_tcbs_avail(p.a), p.tcbs0_a, fp_stack_tcbs_avail(p.b), p.tcbs0_b);
        ok = false;
    }
    h_dump_counters("A", p.a);
    h_dump_counters("B", p.b);
    fp_tcp_unlisten(l);
    h_pair_destroy(&p);
    free(x);
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
