/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK backend (see io_dpdk.h): EAL and port setup, and the link each worker's stack
 * runs on. The link's receive path is where flows are kept on their core:
 *
 *  - with hardware RSS the NIC already puts every frame of a flow on its owner's queue;
 *  - without it (net_tap reports no RSS key or table), each worker computes the same Toeplitz
 *    hash over the frame's 4-tuple, with our key and redirection table, and hands a frame
 *    owned by another worker to that worker over the SPSC ring of the pair. It never touches
 *    the owner's stack: the owner dequeues its rings in its own receive burst.
 *
 * Active opens choose their local port so that the reply's hash selects the opener's queue
 * (pick_port), so backend connections come back to the worker that opened them either way.
 * ARP frames are copied to every worker, so each keeps its own table and learns the answers
 * to requests any worker sent. Frames are copied into the stack's packet buffers on receive,
 * and the mbuf goes back to its pool at once: the pool stays small and hot in the cache.
 */
#include "net/io_dpdk.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_random.h>
#include <rte_ring.h>

#include "net/io_stack.h"
#include "net/rss.h"
#include "net/stack/link.h"
#include "net/stack/pkt.h"
#include "net/stack/stack_types.h"

#define DP_MAX_WORKERS 64
#define DP_RING_SIZE   1024
#define DP_NB_RXD      1024
#define DP_NB_TXD      1024
#define DP_RETA_SIZE   128   /* our software table; a power of two */
#define DP_IDLE_MAX_US 10000 /* longest wait for an RX interrupt */

struct dlink {
    struct fp_link       link;
    unsigned             id;
    struct rte_mempool  *mp;
    struct fp_rss_ports *ports;    /* RSS-aware local ports for active opens */
    int                  efd;      /* eventfd: steered frames or a message arrived */
    int                  epfd;     /* waits on efd and the RX queue's interrupt */
    int                  sleeping; /* in dl_idle: producers must write efd */
    uint64_t             ctr[FP_DPDK_CTR_NB];
} __attribute__((aligned(64)));

/* Set up once by the main thread before any worker runs; read-only afterwards (ctr aside). */
static struct {
    int                        ready;
    unsigned                   nb_workers;
    unsigned                   nb_released;
    uint16_t                   port;
    int                        sw_rss;
    int                        rx_intr;      /* RX queue interrupts are enabled */
    uint32_t                   caps;         /* checksum offloads in use (enum fp_link_cap) */
    char                       steering[64]; /* for the start-up log line */
    struct fp_rss              rss; /* key and table: the NIC's choice, or ours in software */
    struct rte_ether_addr      mac;
    struct dlink              *links;
    struct rte_ring           *ring[DP_MAX_WORKERS][DP_MAX_WORKERS]; /* [from][to] */
    const struct fp_dpdk_conf *conf;
} dp;

/* TCBs of a worker's stack: TIME-WAIT keeps one after its connection is gone, so room for
 * as many again as the connections. */
static uint32_t
nb_tcbs(uint32_t max_conns)
{
    return max_conns * 2 > 1024 ? max_conns * 2 : 1024;
}

static const char *const ctr_names[FP_DPDK_CTR_NB] = {
#define FP_DPDK_CTR_NAME(e, name, help) name,
        FP_DPDK_COUNTERS(FP_DPDK_CTR_NAME)
#undef FP_DPDK_CTR_NAME
};

static const char *const ctr_help[FP_DPDK_CTR_NB] = {
#define FP_DPDK_CTR_HELP(e, name, help) help,
        FP_DPDK_COUNTERS(FP_DPDK_CTR_HELP)
#undef FP_DPDK_CTR_HELP
};

static inline void
ctr_add(struct dlink *dl, enum fp_dpdk_counter c, uint64_t v)
{
    __atomic_store_n(&dl->ctr[c], dl->ctr[c] + v, __ATOMIC_RELAXED);
}

/* The worker whose queue the 4-tuple (as seen on a received frame) hashes to. */
static unsigned
flow_owner(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport)
{
    return fp_rss_queue(&dp.rss, saddr, daddr, sport, dport);
}

enum frame_kind {
    FRAME_LOCAL = 0, /* handled by the receiving worker (ICMP, fragments, foreign frames) */
    FRAME_TCP,       /* steered by its 4-tuple */
    FRAME_ARP,       /* handled here and copied to every other worker */
};

static enum frame_kind
classify(const uint8_t *b, uint32_t len, unsigned *owner)
{
    uint32_t ihl;
    uint16_t type;

    if (len < 14) {
        return FRAME_LOCAL;
    }
    type = (uint16_t)(b[12] << 8 | b[13]);
    if (type == 0x0806) {
        return FRAME_ARP;
    }
    if (type != 0x0800 || len < 14 + 20 || b[14 + 9] != 6) {
        return FRAME_LOCAL;
    }
    ihl = (uint32_t)(b[14] & 0xf) * 4;
    /* Fragments carry no ports past the first: the stack drops and counts them. */
    if (ihl < 20 || len < 14 + ihl + 4 || ((b[20] << 8 | b[21]) & 0x3fff) != 0) {
        return FRAME_LOCAL;
    }
    *owner = flow_owner(
            (uint32_t)b[26] << 24 | (uint32_t)b[27] << 16 | (uint32_t)b[28] << 8 | b[29],
            (uint32_t)b[30] << 24 | (uint32_t)b[31] << 16 | (uint32_t)b[32] << 8 | b[33],
            (uint16_t)(b[14 + ihl] << 8 | b[15 + ihl]), (uint16_t)(b[16 + ihl] << 8 | b[17 + ihl]));
    return FRAME_TCP;
}

static void
wake(struct dlink *dl)
{
    uint64_t one = 1;

    if (dl->efd != -1) {
        (void)!write(dl->efd, &one, sizeof(one));
    }
}

/*
 * Wakes the owners (a bit per worker) that sleep in dl_idle. Pairs with dl_idle: the ring
 * enqueue, a full fence, then the load of sleeping here; the store of sleeping, a full
 * fence, then the ring check there. One of the two sides sees the other.
 */
static void
wake_owners(uint64_t owners)
{
    unsigned w;

    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (w = 0; w < dp.nb_workers; w++) {
        if ((owners >> w & 1) != 0 && __atomic_load_n(&dp.links[w].sleeping, __ATOMIC_SEQ_CST)) {
            wake(&dp.links[w]);
        }
    }
}

static void
arp_fanout(struct dlink *dl, struct rte_mbuf *m)
{
    struct rte_mbuf *copy;
    unsigned         w;

    for (w = 0; w < dp.nb_workers; w++) {
        if (w == dl->id) {
            continue;
        }
        copy = rte_pktmbuf_copy(m, dl->mp, 0, UINT32_MAX);
        if (copy == NULL) {
            ctr_add(dl, FP_DPDK_NO_MBUF, 1);
            continue;
        }
        if (rte_ring_sp_enqueue(dp.ring[dl->id][w], copy) != 0) {
            ctr_add(dl, FP_DPDK_RING_FULL, 1);
            rte_pktmbuf_free(copy);
            continue;
        }
        ctr_add(dl, FP_DPDK_ARP_FANOUT, 1);
        wake_owners(1ULL << w);
    }
}

/* The PMD's verdict on a received frame's checksums, as stack flags (none: not verified). */
static uint32_t
rx_cksum_flags(uint64_t ol)
{
    uint32_t f = 0;

    if ((ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD) {
        f |= FP_PKT_F_RX_IP_GOOD;
    } else if ((ol & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD) {
        f |= FP_PKT_F_RX_IP_BAD;
    }
    if ((ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD) {
        f |= FP_PKT_F_RX_L4_GOOD;
    } else if ((ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
        f |= FP_PKT_F_RX_L4_BAD;
    }
    return f;
}

/* Copies m into a stack packet buffer and frees m. Returns 1 if stored in pkts. */
static int
take_frame(struct dlink *dl, struct fp_pktpool *pool, struct rte_mbuf *m, struct fp_pkt **out)
{
    struct fp_pkt *p;
    uint32_t       len = rte_pktmbuf_pkt_len(m);

    if (m->nb_segs != 1 || len > FP_PKT_BUF_SIZE - (FP_PKT_HEADROOM - 64)) {
        ctr_add(dl, FP_DPDK_BAD_FRAME, 1);
        rte_pktmbuf_free(m);
        return 0;
    }
    p = fp_pkt_alloc(pool);
    if (p == NULL) {
        ctr_add(dl, FP_DPDK_NO_PKT, 1);
        rte_pktmbuf_free(m);
        return 0;
    }
    /* Leave 64 bytes in front, as link_tap does, so a reply built in place has headroom. */
    p->data = p->buf + FP_PKT_HEADROOM - 64;
    memcpy(p->data, rte_pktmbuf_mtod(m, const uint8_t *), len);
    p->len = len;
    if ((dp.caps & FP_LINK_CAP_RX_CKSUM) != 0) {
        p->flags |= rx_cksum_flags(m->ol_flags);
    }
    rte_pktmbuf_free(m);
    *out = p;
    return 1;
}

/* Frames other workers received for flows we own, into pkts (at most n). */
static uint16_t
drain_rings(struct dlink *dl, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n)
{
    struct rte_mbuf *mb[FP_STK_BURST];
    const uint8_t   *b;
    unsigned         w;
    uint16_t         nb;
    uint16_t         i;
    uint16_t         k = 0;

    for (w = 0; w < dp.nb_workers && k < n; w++) {
        if (w == dl->id) {
            continue;
        }
        nb = (uint16_t)rte_ring_sc_dequeue_burst(dp.ring[w][dl->id], (void **)mb, n - k, NULL);
        for (i = 0; i < nb; i++) {
            /* ARP copies travel the same rings but are counted as fan-out, not steering:
             * steered_out of all workers equals steered_in plus ring drops. */
            b = rte_pktmbuf_mtod(mb[i], const uint8_t *);
            if (rte_pktmbuf_data_len(mb[i]) < 14 || b[12] != 0x08 || b[13] != 0x06) {
                ctr_add(dl, FP_DPDK_STEERED_IN, 1);
            }
            k += (uint16_t)take_frame(dl, pool, mb[i], &pkts[k]);
        }
    }
    return k;
}

/*
 * The link's receive burst. Steered frames go first: another worker received them before
 * anything now on our own queue (the TAP, like a NIC with flow steering, moves a flow to the
 * queue its owner transmits on), so taking them first keeps each flow's segments in order.
 */
static uint16_t
dl_rx_burst(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
            uint64_t now_us)
{
    struct dlink    *dl = l->ctx;
    struct rte_mbuf *mb[FP_STK_BURST];
    enum frame_kind  kind;
    unsigned         owner = dl->id;
    uint64_t         woken = 0;
    uint16_t         nb;
    uint16_t         i;
    uint16_t         k;

    if (n > FP_STK_BURST) {
        n = FP_STK_BURST;
    }
    k = dp.nb_workers > 1 ? drain_rings(dl, pool, pkts, n) : 0;
    if (k == n) {
        return k;
    }
    nb = rte_eth_rx_burst(dp.port, (uint16_t)dl->id, mb, n - k);
    for (i = 0; i < nb; i++) {
        const uint8_t *b = rte_pktmbuf_mtod(mb[i], const uint8_t *);

        ctr_add(dl, FP_DPDK_RX_PACKETS, 1);
        ctr_add(dl, FP_DPDK_RX_BYTES, rte_pktmbuf_pkt_len(mb[i]));
        kind = classify(b, rte_pktmbuf_data_len(mb[i]), &owner);
        if (kind == FRAME_TCP && owner != dl->id) {
            if (rte_ring_sp_enqueue(dp.ring[dl->id][owner], mb[i]) != 0) {
                ctr_add(dl, FP_DPDK_RING_FULL, 1);
                rte_pktmbuf_free(mb[i]);
            } else {
                ctr_add(dl, FP_DPDK_STEERED_OUT, 1);
                woken |= 1ULL << owner;
            }
            continue;
        }
        if (kind == FRAME_TCP) {
            ctr_add(dl, FP_DPDK_RX_ON_OWNER, 1);
        } else if (kind == FRAME_ARP && dp.nb_workers > 1) {
            arp_fanout(dl, mb[i]);
        }
        k += (uint16_t)take_frame(dl, pool, mb[i], &pkts[k]);
    }
    if (woken != 0) {
        wake_owners(woken);
    }
    /* A full burst of steered frames may have arrived meanwhile: the stack polls again
     * while bursts are full, so a short return here is enough. */
    return k;
}

static uint16_t
dl_tx_burst(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    struct dlink    *dl = l->ctx;
    struct rte_mbuf *mb[FP_STK_BURST];
    uint64_t         bytes = 0;
    uint16_t         nb = 0;
    uint16_t         sent;
    uint16_t         i;
    char            *dst;

    if (n > FP_STK_BURST) {
        n = FP_STK_BURST;
    }
    for (i = 0; i < n; i++) {
        mb[nb] = rte_pktmbuf_alloc(dl->mp);
        if (mb[nb] == NULL) {
            ctr_add(dl, FP_DPDK_NO_MBUF, 1);
            break;
        }
        dst = rte_pktmbuf_append(mb[nb], (uint16_t)pkts[i]->len);
        if (dst == NULL) {
            ctr_add(dl, FP_DPDK_BAD_FRAME, 1);
            rte_pktmbuf_free(mb[nb]);
            fp_pkt_free(pkts[i]);
            continue;
        }
        memcpy(dst, pkts[i]->data, pkts[i]->len);
        if ((pkts[i]->flags & FP_PKT_F_TX_CKSUM_OFFLOAD) != 0) {
            /* The stack left the IPv4 checksum 0 and put the pseudo-header sum in TCP's. */
            mb[nb]->ol_flags |=
                    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
            mb[nb]->l2_len = 14;
            mb[nb]->l3_len = (uint64_t)(dst[14] & 0xf) * 4;
        }
        bytes += pkts[i]->len;
        fp_pkt_free(pkts[i]);
        nb++;
    }
    sent = rte_eth_tx_burst(dp.port, (uint16_t)dl->id, mb, nb);
    if (sent < nb) {
        /* The frames are already copied out of the stack's buffers: drop them, counted, as a
         * full NIC ring would. TCP retransmits. */
        ctr_add(dl, FP_DPDK_TX_FULL, nb - sent);
        rte_pktmbuf_free_bulk(&mb[sent], nb - sent);
    }
    ctr_add(dl, FP_DPDK_TX_PACKETS, sent);
    ctr_add(dl, FP_DPDK_TX_BYTES, bytes);
    return i;
}

static const struct fp_link_ops dl_ops = {
        .rx_burst = dl_rx_burst,
        .tx_burst = dl_tx_burst,
};

static int
rings_pending(const struct dlink *dl)
{
    unsigned w;

    for (w = 0; w < dp.nb_workers; w++) {
        if (w != dl->id && rte_ring_count(dp.ring[w][dl->id]) != 0) {
            return 1;
        }
    }
    return 0;
}

/* The adaptive loop's wait: the RX queue's interrupt, or efd (steered frames, messages). */
static int
dl_idle(void *ctx, uint64_t timeout_us)
{
    struct dlink      *dl = ctx;
    struct epoll_event ev[4];
    uint64_t           v;
    int                n;
    int                i;

    if (!dp.rx_intr || dl->epfd == -1) {
        return -ENOTSUP;
    }
    __atomic_store_n(&dl->sleeping, 1, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!rings_pending(dl)) {
        rte_eth_dev_rx_intr_enable(dp.port, (uint16_t)dl->id);
        /* A frame that came in before the interrupt was armed may raise none on some NICs:
         * the wait is bounded, so it costs at most DP_IDLE_MAX_US of latency. */
        if (timeout_us > DP_IDLE_MAX_US) {
            timeout_us = DP_IDLE_MAX_US;
        }
        n = epoll_wait(dl->epfd, ev, 4, (int)((timeout_us + 999) / 1000));
        for (i = 0; i < n; i++) {
            if (ev[i].data.fd == dl->efd) {
                (void)!read(dl->efd, &v, sizeof(v));
            }
        }
        rte_eth_dev_rx_intr_disable(dp.port, (uint16_t)dl->id);
    }
    __atomic_store_n(&dl->sleeping, 0, __ATOMIC_RELAXED);
    return 0;
}

static void
dl_wake(void *ctx)
{
    wake(ctx);
}

/* Per-worker wait set: its eventfd and, when the port has them, its RX queue interrupt. */
static int
waitset_init(struct dlink *dl)
{
    struct epoll_event ev;
    int                qfd;

    dl->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    dl->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (dl->efd == -1 || dl->epfd == -1) {
        return -errno;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = dl->efd;
    if (epoll_ctl(dl->epfd, EPOLL_CTL_ADD, dl->efd, &ev) == -1) {
        return -errno;
    }
    if (!dp.rx_intr) {
        return 0;
    }
    qfd = rte_eth_dev_rx_intr_ctl_q_get_fd(dp.port, (uint16_t)dl->id);
    ev.data.fd = qfd;
    if (qfd < 0 || epoll_ctl(dl->epfd, EPOLL_CTL_ADD, qfd, &ev) == -1) {
        dp.rx_intr = 0;
    }
    return 0;
}

static void
dl_release(void *ctx)
{
    struct dlink *dl = ctx;

    fp_rss_ports_destroy(dl->ports);
    dl->ports = NULL;
    if (dl->epfd != -1) {
        close(dl->epfd);
        dl->epfd = -1;
    }
    if (dl->efd != -1) {
        close(dl->efd);
        dl->efd = -1;
    }
    if (++dp.nb_released < dp.nb_workers) {
        return;
    }
    rte_eth_dev_stop(dp.port);
    rte_eth_dev_close(dp.port);
    rte_eal_cleanup();
}

static int
eal_init(const struct fp_dpdk_conf *dc, char *err, size_t errlen)
{
    char     *argv[FP_DPDK_MAX_EAL_ARGS + 2];
    cpu_set_t cpus;
    sigset_t  all;
    sigset_t  old;
    int       argc = 0;
    unsigned  i;
    int       rc;

    argv[argc++] = (char *)"fastproxy";
    for (i = 0; i < dc->nb_eal; i++) {
        argv[argc++] = dc->eal[i];
    }
    argv[argc] = NULL;
    /* rte_eal_init pins the calling thread to the main lcore: keep the main thread's set.
     * Its threads (lcores, interrupts, telemetry) inherit our signal mask: with every signal
     * blocked, SIGTERM and the rest reach the main thread's handlers only. */
    sched_getaffinity(0, sizeof(cpus), &cpus);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = rte_eal_init(argc, argv);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sched_setaffinity(0, sizeof(cpus), &cpus);
    if (rc < 0) {
        snprintf(err, errlen, "dpdk: EAL initialisation failed: %s", rte_strerror(rte_errno));
        return -1;
    }
    return 0;
}

/*
 * Chooses hardware or software steering. Both use one struct fp_rss: with hardware RSS we
 * program the NIC with its key and round-robin table, so the NIC's choice, the software hash
 * and the port choice of active opens all agree.
 */
static int
rss_setup(struct rte_eth_conf *pc, const struct rte_eth_dev_info *info, char *err, size_t errlen)
{
    const struct fp_dpdk_conf *dc = dp.conf;
    uint64_t                   hf = RTE_ETH_RSS_NONFRAG_IPV4_TCP;
    uint8_t                    key[FP_RSS_KEY_MAX];
    int                        hw;

    hw = dc->rss != FP_DPDK_RSS_SOFTWARE && dp.nb_workers > 1 &&
         (info->flow_type_rss_offloads & hf) != 0 && info->hash_key_size >= FP_RSS_KEY_MIN &&
         info->hash_key_size <= FP_RSS_KEY_MAX && info->reta_size >= dp.nb_workers &&
         info->reta_size <= 512 && (info->reta_size & (info->reta_size - 1)) == 0;
    if (!hw && dc->rss == FP_DPDK_RSS_HARDWARE && dp.nb_workers > 1) {
        snprintf(err, errlen,
                 "dpdk: port %u has no usable RSS (rss: hardware); use rss: auto "
                 "or software",
                 dp.port);
        return -1;
    }
    dp.sw_rss = !hw;
    if (!hw) {
        return fp_rss_init(&dp.rss, NULL, 0, DP_RETA_SIZE, (uint16_t)dp.nb_workers);
    }
    /* The default key, zero-padded to the NIC's length: IPv4/TCP hashes use 16 bytes. */
    memset(key, 0, sizeof(key));
    memcpy(key, fp_rss_default_key,
           FP_RSS_KEY_LEN < info->hash_key_size ? FP_RSS_KEY_LEN : info->hash_key_size);
    if (fp_rss_init(&dp.rss, key, info->hash_key_size, info->reta_size, (uint16_t)dp.nb_workers) !=
        0) {
        snprintf(err, errlen, "dpdk: port %u: unusable RSS key or table size", dp.port);
        return -1;
    }
    pc->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    pc->rx_adv_conf.rss_conf.rss_key = dp.rss.key;
    pc->rx_adv_conf.rss_conf.rss_key_len = (uint8_t)dp.rss.key_len;
    pc->rx_adv_conf.rss_conf.rss_hf = hf;
    return 0;
}

/*
 * Checksum offloads, each direction where the port has both IPv4 header and TCP: the stack then
 * leaves those checksums to the port on transmit (FP_LINK_CAP_TX_CKSUM) and takes the port's
 * verdict on receive (FP_LINK_CAP_RX_CKSUM); bad ones are dropped and counted by the stack as
 * before. Where the port lacks them the stack computes everything in software. net_tap offers
 * both but computes them itself, in software, with DPDK 22.11's 16-bit loop: under callgrind
 * at 100 KiB keep-alive that was 600,000 instructions per request in the PMD against 73,000
 * in the stack's own vector checksum, so on net_tap the offloads are left off.
 */
static void
cksum_setup(struct rte_eth_conf *pc, const struct rte_eth_dev_info *info)
{
    const uint64_t tx = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    const uint64_t rx = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;

    dp.caps = 0;
    if (info->driver_name != NULL && strcmp(info->driver_name, "net_tap") == 0) {
        return;
    }
    if ((info->tx_offload_capa & tx) == tx) {
        pc->txmode.offloads |= tx;
        dp.caps |= FP_LINK_CAP_TX_CKSUM;
    }
    if ((info->rx_offload_capa & rx) == rx) {
        pc->rxmode.offloads |= rx;
        dp.caps |= FP_LINK_CAP_RX_CKSUM;
    }
}

/* Loads our round-robin table into the NIC, so its choice and our port choice agree. */
static int
reta_program(char *err, size_t errlen)
{
    struct rte_eth_rss_reta_entry64 conf[512 / RTE_ETH_RETA_GROUP_SIZE];
    unsigned                        i;

    if (dp.sw_rss) {
        return 0;
    }
    memset(conf, 0, sizeof(conf));
    for (i = 0; i < dp.rss.reta_size; i++) {
        conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
        conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = dp.rss.reta[i];
    }
    if (rte_eth_dev_rss_reta_update(dp.port, conf, dp.rss.reta_size) != 0) {
        snprintf(err, errlen, "dpdk: port %u: cannot program the RSS table", dp.port);
        return -1;
    }
    return 0;
}

static int
port_open(const struct fp_io_conf *ioc, char *err, size_t errlen)
{
    const struct fp_dpdk_conf *dc = ioc->dpdk;
    struct rte_eth_dev_info    info;
    struct rte_eth_conf        pc;
    uint16_t                   nb_rxd = DP_NB_RXD;
    uint16_t                   nb_txd = DP_NB_TXD;
    char                       name[64];
    unsigned                   i;
    unsigned                   j;
    int                        socket;
    int                        rc;

    dp.conf = dc;
    dp.port = dc->port;
    dp.nb_workers = ioc->nb_workers;
    if (dp.nb_workers > DP_MAX_WORKERS) {
        snprintf(err, errlen, "dpdk: at most %u workers", DP_MAX_WORKERS);
        return -1;
    }
    if (eal_init(dc, err, errlen) != 0) {
        return -1;
    }
    if (!rte_eth_dev_is_valid_port(dp.port)) {
        snprintf(err, errlen,
                 "dpdk: no port %u (%u ports available; check the eal: vdev or "
                 "the bound NIC)",
                 dp.port, rte_eth_dev_count_avail());
        return -1;
    }
    rc = rte_eth_dev_info_get(dp.port, &info);
    if (rc != 0) {
        snprintf(err, errlen, "dpdk: port %u: %s", dp.port, strerror(-rc));
        return -1;
    }
    if (info.max_rx_queues < dp.nb_workers || info.max_tx_queues < dp.nb_workers) {
        snprintf(err, errlen,
                 "dpdk: port %u has %u RX / %u TX queues, %u workers need one "
                 "each",
                 dp.port, info.max_rx_queues, info.max_tx_queues, dp.nb_workers);
        return -1;
    }
    memset(&pc, 0, sizeof(pc));
    if (rss_setup(&pc, &info, err, errlen) != 0) {
        return -1;
    }
    cksum_setup(&pc, &info);
    /* RX interrupts let an idle adaptive worker sleep until a frame comes; a port without
     * them is configured again without, and its idle workers sleep in short steps. */
    pc.intr_conf.rxq = dc->poll == FP_DPDK_POLL_ADAPTIVE;
    rc = rte_eth_dev_configure(dp.port, (uint16_t)dp.nb_workers, (uint16_t)dp.nb_workers, &pc);
    if (rc != 0 && pc.intr_conf.rxq) {
        pc.intr_conf.rxq = 0;
        rc = rte_eth_dev_configure(dp.port, (uint16_t)dp.nb_workers, (uint16_t)dp.nb_workers, &pc);
    }
    dp.rx_intr = pc.intr_conf.rxq;
    if (rc != 0) {
        snprintf(err, errlen, "dpdk: port %u: configure: %s", dp.port, strerror(-rc));
        return -1;
    }
    rte_eth_dev_adjust_nb_rx_tx_desc(dp.port, &nb_rxd, &nb_txd);
    socket = rte_eth_dev_socket_id(dp.port);
    if (socket < 0) {
        socket = 0;
    }
    dp.links = rte_zmalloc_socket("fp_links", sizeof(*dp.links) * dp.nb_workers, 64, socket);
    if (dp.links == NULL) {
        snprintf(err, errlen, "dpdk: out of memory");
        return -1;
    }
    for (i = 0; i < dp.nb_workers; i++) {
        /* The pool lives on the NIC's NUMA node: DMA lands in that node's memory. */
        snprintf(name, sizeof(name), "fp_mb_%u", i);
        dp.links[i].mp =
                rte_pktmbuf_pool_create(name, dc->mbufs, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
        if (dp.links[i].mp == NULL) {
            snprintf(err, errlen, "dpdk: cannot create %u mbufs for worker %u: %s", dc->mbufs, i,
                     rte_strerror(rte_errno));
            return -1;
        }
        rc = rte_eth_rx_queue_setup(dp.port, (uint16_t)i, nb_rxd, (unsigned)socket, NULL,
                                    dp.links[i].mp);
        if (rc == 0) {
            rc = rte_eth_tx_queue_setup(dp.port, (uint16_t)i, nb_txd, (unsigned)socket, NULL);
        }
        if (rc != 0) {
            snprintf(err, errlen, "dpdk: port %u queue %u: %s", dp.port, i, strerror(-rc));
            return -1;
        }
        for (j = 0; j < dp.nb_workers; j++) {
            if (i == j) {
                continue;
            }
            snprintf(name, sizeof(name), "fp_st_%u_%u", i, j);
            dp.ring[i][j] =
                    rte_ring_create(name, DP_RING_SIZE, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (dp.ring[i][j] == NULL) {
                snprintf(err, errlen, "dpdk: cannot create steering ring %s", name);
                return -1;
            }
        }
    }
    rc = rte_eth_dev_start(dp.port);
    if (rc != 0) {
        snprintf(err, errlen, "dpdk: port %u: start: %s", dp.port, strerror(-rc));
        return -1;
    }
    if (reta_program(err, errlen) != 0) {
        return -1;
    }
    rte_eth_macaddr_get(dp.port, &dp.mac);
    for (i = 0; i < dp.nb_workers; i++) {
        dp.links[i].id = i;
        dp.links[i].efd = -1;
        dp.links[i].epfd = -1;
        rc = waitset_init(&dp.links[i]);
        if (rc != 0) {
            snprintf(err, errlen, "dpdk: worker %u wait set: %s", i, strerror(-rc));
            return -1;
        }
    }
    dp.ready = 1;
    return 0;
}

/*
 * Sets the port up with no real-time signal free. net_tap (DPDK 22.11), as it opens a queue,
 * takes the first real-time signal whose handler is SIG_DFL and has the kernel send it to the
 * process for every frame queued to the TAP (O_ASYNC, F_SETSIG), only so that an empty receive
 * burst can return without a read(). Real-time signals queue: one delivery per received frame,
 * taken by the main thread (workers block signals). Measured at 100 KiB keep-alive, the main
 * thread spent 0.8 ms of CPU per request in signal delivery, half as much as the worker, on
 * the same cores. A loaded worker reads until the queue is empty anyway, and an idle adaptive
 * worker sleeps on the queue's interrupt, so the shortcut saves nothing here. With every
 * candidate signal ignored while the queues are opened, net_tap finds none, says so ("No Rx
 * trigger signal available") and reads on every burst; the dispositions are restored after.
 * Other PMDs do not look at these signals.
 */
static int
port_setup(const struct fp_io_conf *ioc, char *err, size_t errlen)
{
    struct sigaction ign;
    struct sigaction cur;
    uint64_t         taken = 0;
    int              sig;
    int              rc;

    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    for (sig = SIGRTMIN; sig <= SIGRTMAX && sig - SIGRTMIN < 64; sig++) {
        if (sigaction(sig, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL &&
            sigaction(sig, &ign, NULL) == 0) {
            taken |= 1ULL << (sig - SIGRTMIN);
        }
    }
    rc = port_open(ioc, err, errlen);
    memset(&cur, 0, sizeof(cur));
    cur.sa_handler = SIG_DFL;
    sigemptyset(&cur.sa_mask);
    for (sig = SIGRTMIN; sig <= SIGRTMAX && sig - SIGRTMIN < 64; sig++) {
        if ((taken >> (sig - SIGRTMIN) & 1) != 0) {
            sigaction(sig, &cur, NULL);
        }
    }
    return rc;
}

struct fp_io *
fp_io_dpdk_create(const struct fp_io_conf *conf, char *err, size_t errlen)
{
    struct fp_io_stack_conf sc;
    struct dlink           *dl;
    struct fp_io           *io;
    uint32_t                i;

    if (conf->dpdk == NULL || !conf->dpdk->present) {
        snprintf(err, errlen, "io: dpdk needs a dpdk: section");
        return NULL;
    }
    if (!dp.ready && port_setup(conf, err, errlen) != 0) {
        return NULL;
    }
    if (conf->id >= dp.nb_workers) {
        snprintf(err, errlen, "dpdk: worker %u out of range", conf->id);
        return NULL;
    }
    dl = &dp.links[conf->id];
    dl->id = conf->id;
    dl->link.ops = &dl_ops;
    dl->link.ctx = dl;
    dl->link.mtu = 1500;
    dl->link.caps = dp.caps;
    memcpy(dl->link.mac, dp.mac.addr_bytes, 6);
    if (dl->ports == NULL) {
        struct fp_rss_ports_conf pc;
        uint32_t                 laddrs[1 + FP_DPDK_MAX_SRC_ADDRS];

        /* The port's address first; the source addresses once its ports are used up. */
        laddrs[0] = ntohl(conf->dpdk->addr.s_addr);
        for (i = 0; i < conf->dpdk->nb_src_addrs; i++) {
            laddrs[1 + i] = ntohl(conf->dpdk->src_addrs[i].s_addr);
        }
        memset(&pc, 0, sizeof(pc));
        pc.rss = &dp.rss;
        pc.queue = (uint16_t)dl->id;
        pc.laddrs = laddrs;
        pc.nb_laddrs = 1 + conf->dpdk->nb_src_addrs;
        if (fp_rss_ports_create(&pc, &dl->ports) != 0) {
            snprintf(err, errlen, "dpdk: worker %u: cannot build its local port classes", dl->id);
            return NULL;
        }
    }

    memset(&sc, 0, sizeof(sc));
    sc.stack.addr = ntohl(conf->dpdk->addr.s_addr);
    sc.stack.prefix_len = conf->dpdk->prefix_len;
    sc.stack.gateway = ntohl(conf->dpdk->gateway.s_addr);
    for (i = 0; i < conf->dpdk->nb_src_addrs; i++) {
        sc.stack.src_addrs[i] = ntohl(conf->dpdk->src_addrs[i].s_addr);
    }
    sc.stack.nb_src_addrs = conf->dpdk->nb_src_addrs;
    sc.stack.nb_pkts = conf->dpdk->mbufs;
    /* TIME-WAIT keeps a TCB after its connection is gone: room for as many again. */
    sc.stack.nb_tcbs = nb_tcbs(conf->max_conns);
    /* A proxy opens bursts of connections to a few servers: frames waiting for one ARP
     * answer must not be cut at the stack's default of 8 (each cut SYN costs a 1 s RTO). */
    sc.stack.arp_wait_max = 256;
    sc.stack.seed = rte_rand() | 1;
    sc.link = &dl->link;
    sc.poll = conf->dpdk->poll;
    sc.name = "dpdk";
    snprintf(dp.steering, sizeof(dp.steering), "rss %s, checksum offload %s",
             dp.sw_rss ? "software" : "hardware",
             dp.caps == (FP_LINK_CAP_TX_CKSUM | FP_LINK_CAP_RX_CKSUM) ? "tx+rx"
             : dp.caps == FP_LINK_CAP_TX_CKSUM                        ? "tx"
             : dp.caps == FP_LINK_CAP_RX_CKSUM                        ? "rx"
                                                                      : "none");
    sc.steering = dp.steering;
    sc.ports = dl->ports;
    sc.link_ctr = dl->ctr;
    sc.link_ctr_names = ctr_names;
    sc.link_ctr_help = ctr_help;
    sc.nb_link_ctr = FP_DPDK_CTR_NB;
    sc.idle = dl_idle;
    sc.wake = dl_wake;
    sc.link_release = dl_release;
    sc.link_ctx = dl;
    io = fp_io_stack_create(conf, &sc, err, errlen);
    return io;
}

size_t
fp_io_dpdk_mem_bound(const struct fp_dpdk_conf *dc, uint32_t max_conns)
{
    /* An mbuf: its data room, the struct and the mempool's header; its ring slot. */
    size_t mbuf = RTE_MBUF_DEFAULT_BUF_SIZE + sizeof(struct rte_mbuf) + 64 + 8;

    return (size_t)dc->mbufs * mbuf + fp_io_stack_mem_bound(dc->mbufs, nb_tcbs(max_conns)) +
           (size_t)DP_MAX_WORKERS * DP_RING_SIZE * sizeof(void *);
}

size_t
fp_io_dpdk_conn_size(void)
{
    return fp_io_stack_conn_size();
}

void
fp_io_dpdk_counters(unsigned id, uint64_t out[FP_DPDK_CTR_NB])
{
    unsigned i;

    for (i = 0; i < FP_DPDK_CTR_NB; i++) {
        out[i] = dp.links != NULL && id < dp.nb_workers
                         ? __atomic_load_n(&dp.links[id].ctr[i], __ATOMIC_RELAXED)
                         : 0;
    }
}

const char *
fp_io_dpdk_counter_name(unsigned i)
{
    return i < FP_DPDK_CTR_NB ? ctr_names[i] : NULL;
}

const char *
fp_io_dpdk_counter_help(unsigned i)
{
    return i < FP_DPDK_CTR_NB ? ctr_help[i] : NULL;
}

int
fp_io_dpdk_software_rss(void)
{
    return dp.sw_rss;
}
