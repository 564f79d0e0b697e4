/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fp-stackd: one stack instance on a TAP interface it creates, serving TCP echo or discard, or
 * (with --connect) acting as a client that sends a deterministic stream and checks the echo.
 * For interoperability tests against the kernel's TCP and for probing the stack from outside.
 * Foreground, logs to stderr, prints its counters on SIGUSR1 and at exit, exits 0 on SIGTERM.
 * It configures nothing on the kernel side of the TAP beyond setting the link up.
 *
 * Usage: fp-stackd --tap NAME --address A/LEN [--gateway A] --port P --mode echo|discard
 *                  [--syn-backlog N] [--backlog N] [--mac XX:XX:XX:XX:XX:XX]
 *                  [--connect A:P --bytes N] [--loss-ppm N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "net/stack/link_tap.h"
#include "net/pool.h"
#include "net/stack/pkt.h"
#include "net/stack/stack.h"
#include "net/stack/tcp.h"

enum mode {
    MODE_ECHO = 0,
    MODE_DISCARD,
};

struct app;

struct app_conn {
    struct app    *app;
    struct fp_tcb *c;
    struct fp_pkt *pending; /* received data not yet accepted by the send buffer (echo) */
    bool           eof;
};

struct app {
    struct fp_stack *st;
    struct fp_pool   conns;
    enum mode        mode;
    /* client mode */
    uint64_t total;
    uint64_t sent;
    uint64_t received;
    uint64_t mismatches;
    bool     client_done;
    int      client_rc;
    uint8_t  buf[65536];
};

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The client stream: byte i is a function of i, so the echo can be checked as it arrives. */
static uint8_t
stream_byte(uint64_t i)
{
    uint64_t x = (i >> 3) * 0x9E3779B97F4A7C15ULL;

    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 32;
    return (uint8_t)(x >> ((i & 7) * 8));
}

static void
conn_release(struct app *a, struct app_conn *ac)
{
    fp_pkt_free_chain(ac->pending);
    ac->pending = NULL;
    fp_pool_put(&a->conns, ac);
}

/* Echo: pass received buffers straight to the send queue (zero copy). */
static void
srv_readable(struct fp_tcb *c, void *user)
{
    struct app_conn *ac = user;
    struct fp_pkt   *chain;
    ssize_t          n;

    while (ac->pending == NULL && !ac->eof) {
        n = fp_tcp_recv_pkts(c, &chain);
        if (n == -EAGAIN) {
            return;
        }
        if (n == 0) {
            ac->eof = true;
            break;
        }
        ac->pending = chain;
        if (fp_tcp_send_pkts(c, &ac->pending) < 0 && ac->pending != NULL) {
            return; /* on_writable resumes */
        }
    }
    if (ac->eof && ac->pending == NULL) {
        fp_tcp_close(c);
        conn_release(ac->app, ac);
    }
}

static void
srv_writable(struct fp_tcb *c, void *user)
{
    struct app_conn *ac = user;

    if (ac->pending != NULL) {
        fp_tcp_send_pkts(c, &ac->pending);
        if (ac->pending != NULL) {
            return;
        }
    }
    srv_readable(c, user);
}

static void
discard_readable(struct fp_tcb *c, void *user)
{
    struct app_conn *ac = user;
    struct fp_pkt   *chain;
    ssize_t          n;

    for (;;) {
        n = fp_tcp_recv_pkts(c, &chain);
        if (n == -EAGAIN) {
            return;
        }
        if (n == 0) {
            fp_tcp_close(c);
            conn_release(ac->app, ac);
            return;
        }
        fp_pkt_free_chain(chain);
    }
}

static void
srv_closed(struct fp_tcb *c, void *user, int err)
{
    struct app_conn *ac = user;

    (void)c;
    fprintf(stderr, "fp-stackd: connection closed: %s\n", strerror(-err));
    conn_release(ac->app, ac);
}

static const struct fp_tcp_callbacks echo_cb = {
        .on_readable = srv_readable,
        .on_writable = srv_writable,
        .on_closed = srv_closed,
};

static const struct fp_tcp_callbacks discard_cb = {
        .on_readable = discard_readable,
        .on_closed = srv_closed,
};

static void
on_accept(struct fp_tcp_listener *l, void *user)
{
    struct app      *a = user;
    struct app_conn *ac;
    struct fp_tcb   *c;

    while ((c = fp_tcp_accept(l)) != NULL) {
        ac = fp_pool_get_zeroed(&a->conns);
        if (ac == NULL) {
            fp_tcp_abort(c); /* more connections than TCBs cannot happen; be safe */
            continue;
        }
        ac->app = a;
        ac->c = c;
        fp_tcp_set_callbacks(c, a->mode == MODE_ECHO ? &echo_cb : &discard_cb, ac);
        if (a->mode == MODE_ECHO) {
            srv_readable(c, ac);
        } else {
            discard_readable(c, ac);
        }
    }
}

static const struct fp_tcp_callbacks listen_cb = {
        .on_accept = on_accept,
};

/* Client mode. */
static void
cli_pump(struct fp_tcb *c, void *user)
{
    struct app *a = user;
    uint32_t    n;
    uint32_t    i;
    ssize_t     rc;

    while (a->sent < a->total) {
        n = fp_tcp_send_space(c);
        n = n < sizeof(a->buf) ? n : (uint32_t)sizeof(a->buf);
        n = a->total - a->sent < n ? (uint32_t)(a->total - a->sent) : n;
        if (n == 0) {
            n = 1;
        }
        for (i = 0; i < n; i++) {
            a->buf[i] = stream_byte(a->sent + i);
        }
        rc = fp_tcp_send(c, a->buf, n);
        if (rc < 0) {
            return;
        }
        a->sent += (uint64_t)rc;
    }
    fp_tcp_shutdown(c);
}

static void
cli_readable(struct fp_tcb *c, void *user)
{
    struct app *a = user;
    ssize_t     n;
    ssize_t     i;

    for (;;) {
        n = fp_tcp_recv(c, a->buf, sizeof(a->buf));
        if (n == -EAGAIN) {
            return;
        }
        if (n == 0) {
            fprintf(stderr,
                    "fp-stackd: client sent %" PRIu64 " received %" PRIu64 " mismatches %" PRIu64
                    "\n",
                    a->sent, a->received, a->mismatches);
            a->client_rc = (a->received == a->total && a->mismatches == 0) ? 0 : 1;
            a->client_done = true;
            fp_tcp_close(c);
            return;
        }
        for (i = 0; i < n; i++) {
            if (a->buf[i] != stream_byte(a->received + (uint64_t)i)) {
                a->mismatches++;
            }
        }
        a->received += (uint64_t)n;
    }
}

static void
cli_connected(struct fp_tcb *c, void *user)
{
    fprintf(stderr, "fp-stackd: connected\n");
    cli_pump(c, user);
}

static void
cli_closed(struct fp_tcb *c, void *user, int err)
{
    struct app *a = user;

    (void)c;
    fprintf(stderr, "fp-stackd: client connection failed: %s\n", strerror(-err));
    a->client_rc = 1;
    a->client_done = true;
}

static const struct fp_tcp_callbacks client_cb = {
        .on_connected = cli_connected,
        .on_readable = cli_readable,
        .on_writable = cli_pump,
        .on_closed = cli_closed,
};

static void
print_counters(const struct fp_stack *st, const struct fp_taplink *t)
{
    uint64_t     c[FP_STK_CTR_NB];
    unsigned int i;

    fp_stack_counters(st, c);
    fprintf(stderr, "fp-stackd: counters\n");
    for (i = 0; i < FP_STK_CTR_NB; i++) {
        if (c[i] != 0) {
            fprintf(stderr, "  %-60s %" PRIu64 "\n", fp_stack_counter_name(i), c[i]);
        }
    }
    fprintf(stderr, "  %-60s %" PRIu64 "\n  %-60s %" PRIu64 "\n", "TAP read errors", t->rx_errors,
            "TAP write errors", t->tx_errors);
}

static int
parse_ip(const char *s, uint32_t *out)
{
    struct in_addr ia;

    if (inet_pton(AF_INET, s, &ia) != 1) {
        return -EINVAL;
    }
    *out = ntohl(ia.s_addr);
    return 0;
}

static void
usage(void)
{
    fprintf(stderr, "usage: fp-stackd --tap NAME --address A/LEN [--gateway A] --port P "
                    "--mode echo|discard [--syn-backlog N] [--backlog N] [--mac MAC] "
                    "[--connect A:P --bytes N] [--loss-ppm N]\n");
    exit(2);
}

struct opts {
    const char *tap;
    uint32_t    addr;
    uint8_t     plen;
    uint32_t    gw;
    uint16_t    port;
    enum mode   mode;
    uint32_t    syn_backlog;
    uint32_t    backlog;
    uint8_t     mac[6];
    uint32_t    connect_addr;
    uint16_t    connect_port;
    uint64_t    bytes;
    uint32_t    loss_ppm;
};

/*
 * --loss-ppm: a lossy wrapper around the TAP link that drops received and sent frames at random
 * (seeded), to test loss recovery against the kernel's TCP where netem is not available.
 */
struct lossy_link {
    struct fp_link  link;
    struct fp_link *inner;
    uint32_t        ppm;
    uint64_t        rng;
    uint64_t        dropped;
};

static bool
lossy_drop(struct lossy_link *ll)
{
    ll->rng ^= ll->rng << 13;
    ll->rng ^= ll->rng >> 7;
    ll->rng ^= ll->rng << 17;
    return ll->rng % 1000000 < ll->ppm;
}

static uint16_t
lossy_rx(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
         uint64_t now_us)
{
    struct lossy_link *ll = l->ctx;
    uint16_t           got = ll->inner->ops->rx_burst(ll->inner, pool, pkts, n, now_us);
    uint16_t           i;
    uint16_t           k = 0;

    for (i = 0; i < got; i++) {
        if (lossy_drop(ll)) {
            ll->dropped++;
            fp_pkt_free(pkts[i]);
        } else {
            pkts[k++] = pkts[i];
        }
    }
    return k;
}

static uint16_t
lossy_tx(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    struct lossy_link *ll = l->ctx;
    struct fp_pkt     *keep[FP_STK_BURST];
    uint16_t           taken = n < FP_STK_BURST ? n : FP_STK_BURST;
    uint16_t           i;
    uint16_t           k = 0;
    uint16_t           sent;

    for (i = 0; i < taken; i++) {
        if (lossy_drop(ll)) {
            ll->dropped++;
            fp_pkt_free(pkts[i]);
        } else {
            keep[k++] = pkts[i];
        }
    }
    sent = ll->inner->ops->tx_burst(ll->inner, keep, k, now_us);
    for (i = sent; i < k; i++) {
        fp_pkt_free(keep[i]); /* counted as sent: a full TAP queue loses them like a wire */
    }
    return taken;
}

static const struct fp_link_ops lossy_ops = {
        .rx_burst = lossy_rx,
        .tx_burst = lossy_tx,
};

static void
parse_args(int argc, char **argv, struct opts *o)
{
    char *slash;
    char *colon;
    int   i;

    memset(o, 0, sizeof(*o));
    o->backlog = 128;
    o->syn_backlog = FP_TCP_SYN_BACKLOG_DEFAULT;
    o->mac[0] = 0x02;
    o->mac[1] = 0xfa;
    o->mac[5] = (uint8_t)getpid();
    o->mac[4] = (uint8_t)(getpid() >> 8);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        char       *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL) {
            usage();
        }
        i++;
        if (strcmp(a, "--tap") == 0) {
            o->tap = v;
        } else if (strcmp(a, "--address") == 0) {
            slash = strchr(v, '/');
            if (slash == NULL) {
                usage();
            }
            *slash = '\0';
            o->plen = (uint8_t)atoi(slash + 1);
            if (parse_ip(v, &o->addr) < 0 || o->plen > 32) {
                usage();
            }
        } else if (strcmp(a, "--gateway") == 0) {
            if (parse_ip(v, &o->gw) < 0) {
                usage();
            }
        } else if (strcmp(a, "--port") == 0) {
            o->port = (uint16_t)atoi(v);
        } else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "echo") == 0) {
                o->mode = MODE_ECHO;
            } else if (strcmp(v, "discard") == 0) {
                o->mode = MODE_DISCARD;
            } else {
                usage();
            }
        } else if (strcmp(a, "--syn-backlog") == 0) {
            o->syn_backlog = (uint32_t)atoi(v);
        } else if (strcmp(a, "--backlog") == 0) {
            o->backlog = (uint32_t)atoi(v);
        } else if (strcmp(a, "--mac") == 0) {
            if (sscanf(v, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &o->mac[0], &o->mac[1], &o->mac[2],
                       &o->mac[3], &o->mac[4], &o->mac[5]) != 6) {
                usage();
            }
        } else if (strcmp(a, "--connect") == 0) {
            colon = strchr(v, ':');
            if (colon == NULL) {
                usage();
            }
            *colon = '\0';
            o->connect_port = (uint16_t)atoi(colon + 1);
            if (parse_ip(v, &o->connect_addr) < 0) {
                usage();
            }
        } else if (strcmp(a, "--bytes") == 0) {
            o->bytes = strtoull(v, NULL, 0);
        } else if (strcmp(a, "--loss-ppm") == 0) {
            o->loss_ppm = (uint32_t)strtoul(v, NULL, 0);
        } else {
            usage();
        }
    }
    if (o->tap == NULL || o->addr == 0 || (o->port == 0 && o->connect_port == 0)) {
        usage();
    }
}

static int
setup_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1) {
        return -1;
    }
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Returns 1 to exit, 0 to go on. */
static int
handle_signals(int sfd, const struct fp_stack *st, const struct fp_taplink *t)
{
    struct signalfd_siginfo si;

    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGUSR1) {
            print_counters(st, t);
        } else {
            fprintf(stderr, "fp-stackd: signal %u, exiting\n", si.ssi_signo);
            return 1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct fp_stack_conf    sc;
    struct fp_taplink       tap;
    struct lossy_link       lossy;
    struct fp_tcp_listener *l;
    struct fp_tcb          *c;
    struct pollfd           pfd[2];
    struct opts             o;
    struct app              app;
    struct app             *a = &app;
    uint64_t                now;
    uint64_t                next;
    int                     timeout_ms;
    int                     sfd;
    int                     rc;
    int                     exit_rc = 0;

    parse_args(argc, argv, &o);
    memset(a, 0, sizeof(*a));
    memset(&sc, 0, sizeof(sc));
    sc.addr = o.addr;
    sc.prefix_len = o.plen;
    sc.gateway = o.gw;
    memcpy(sc.mac, o.mac, 6);
    sc.nb_pkts = 16384;
    sc.nb_tcbs = 4096;
    sfd = setup_signals();
    if (sfd == -1) {
        fprintf(stderr, "fp-stackd: signalfd: %s\n", strerror(errno));
        return 1;
    }
    rc = fp_taplink_open(&tap, o.tap, o.mac);
    if (rc < 0) {
        fprintf(stderr, "fp-stackd: cannot open TAP %s: %s\n", o.tap, strerror(-rc));
        return 1;
    }
    now = now_us();
    rc = fp_stack_create(&sc, now, &a->st);
    if (rc < 0 || fp_pool_init(&a->conns, sizeof(struct app_conn), sc.nb_tcbs) < 0) {
        fprintf(stderr, "fp-stackd: cannot create the instance: %s\n", strerror(-rc));
        return 1;
    }
    a->mode = o.mode;
    if (o.loss_ppm != 0) {
        memset(&lossy, 0, sizeof(lossy));
        lossy.link = tap.link;
        lossy.link.ops = &lossy_ops;
        lossy.link.ctx = &lossy;
        lossy.inner = &tap.link;
        lossy.ppm = o.loss_ppm;
        lossy.rng = 0x9E3779B97F4A7C15ULL;
        fp_stack_attach_link(a->st, &lossy.link, now);
    } else {
        fp_stack_attach_link(a->st, &tap.link, now);
    }
    if (o.port != 0) {
        rc = fp_tcp_listen(a->st, o.port, o.backlog, o.syn_backlog, &listen_cb, a, &l);
        if (rc < 0) {
            fprintf(stderr, "fp-stackd: listen: %s\n", strerror(-rc));
            return 1;
        }
    }
    fprintf(stderr, "fp-stackd: %s up, port %u, mode %s\n", tap.name, o.port,
            o.mode == MODE_ECHO ? "echo" : "discard");
    if (o.connect_port != 0) {
        a->total = o.bytes;
        rc = fp_tcp_connect(a->st, o.connect_addr, o.connect_port, 0, &client_cb, a, &c);
        if (rc < 0) {
            fprintf(stderr, "fp-stackd: connect: %s\n", strerror(-rc));
            return 1;
        }
    }
    pfd[0].fd = tap.fd;
    pfd[0].events = POLLIN;
    pfd[1].fd = sfd;
    pfd[1].events = POLLIN;
    for (;;) {
        now = now_us();
        fp_stack_poll(a->st, now, 64);
        if (a->client_done) {
            exit_rc = a->client_rc;
            fp_stack_poll(a->st, now_us(), 64); /* flush the last ACK and FIN */
            break;
        }
        next = fp_stack_next_timer_us(a->st);
        timeout_ms = next == UINT64_MAX ? 1000 : (int)((next > now ? next - now : 0) / 1000);
        if (timeout_ms > 1000) {
            timeout_ms = 1000;
        }
        if (poll(pfd, 2, timeout_ms) == -1 && errno != EINTR) {
            fprintf(stderr, "fp-stackd: poll: %s\n", strerror(errno));
            exit_rc = 1;
            break;
        }
        if ((pfd[1].revents & POLLIN) != 0 && handle_signals(sfd, a->st, &tap) != 0) {
            break;
        }
    }
    print_counters(a->st, &tap);
    if (o.loss_ppm != 0) {
        fprintf(stderr, "  %-60s %" PRIu64 "\n", "frames dropped by --loss-ppm", lossy.dropped);
    }
    fp_stack_destroy(a->st);
    fp_pool_destroy(&a->conns);
    fp_taplink_close(&tap);
    close(sfd);
    return exit_rc;
}
