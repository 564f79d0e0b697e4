/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Types of the user-space TCP/IP stack. Everything an instance owns (interfaces, ARP cache,
 * connection tables, timers, pools, counters) is reachable from one struct fp_stack value, so N
 * instances can run in one process, one per thread, without locks. Only this header's types are
 * shared between the stack's modules; each module's functions are declared in its own header.
 * This file includes only system headers and net/pool_types.h (HAProxy's -t.h rule).
 */
#ifndef FP_NET_STACK_STACK_TYPES_H
#define FP_NET_STACK_STACK_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/pool_types.h"

#define FP_PKT_BUF_SIZE   2048 /* bytes of storage in one packet buffer */
#define FP_PKT_HEADROOM   128  /* room kept in front of L4 data for IPv4 and Ethernet headers */
#define FP_STK_BURST      32   /* frames per rx/tx burst */
#define FP_STK_MAX_LISTEN 16   /* listening ports per instance */
#define FP_STK_MAX_SRC_ADDRS 8 /* local addresses for active opens, beside addr */
#define FP_STK_ETH_HLEN   14
#define FP_STK_IP_HLEN    20
#define FP_STK_TCP_HLEN   20
#define FP_STK_TCP_MAXOPT 40
#define FP_STK_MAX_SACK   4 /* SACK blocks in one option */
#define FP_STK_SACK_SB    8 /* SACK scoreboard blocks kept by the sender */

/* Polls in a row that may put the timers off while frames wait (fp_stack_poll). */
#define FP_STK_TIMER_DEFER_MAX 16

/* Packet buffer flags. */
enum fp_pkt_flag {
    /* Transmit: the link computes the IPv4 header and TCP checksums (FP_LINK_CAP_TX_CKSUM);
     * the IPv4 checksum field is 0, the TCP one holds the pseudo-header sum. */
    FP_PKT_F_TX_CKSUM_OFFLOAD = 0x1,
    FP_PKT_F_FIN = 0x2, /* TCP out-of-order queue: the segment carried FIN */
    /* Receive (FP_LINK_CAP_RX_CKSUM): the link verified the IPv4 header checksum, or the L4
     * checksum, and found it good or bad. Neither flag: not verified, the stack does it. */
    FP_PKT_F_RX_IP_GOOD = 0x4,
    FP_PKT_F_RX_IP_BAD = 0x8,
    FP_PKT_F_RX_L4_GOOD = 0x10,
    FP_PKT_F_RX_L4_BAD = 0x20,
};

struct fp_pktpool;

/*
 * A packet buffer. On the wire path data/len delimit a frame; in a TCP queue they delimit
 * payload whose first byte has sequence number seq. ext is the zero-copy hook: a link that owns
 * the memory (a DPDK mbuf) stores its reference there and points data into it; fp_pkt_free()
 * then hands ext back through the pool's ext_free callback instead of using buf.
 */
struct fp_pkt {
    struct fp_pkt     *next; /* chain: burst, queue, or an application's chain */
    struct fp_pktpool *pool; /* the pool this buffer returns to */
    uint8_t           *data; /* first valid byte */
    uint32_t           len;  /* valid bytes from data */
    uint32_t           seq;  /* TCP queues: sequence number of data[0] */
    uint32_t           flags;
    void              *ext; /* external buffer reference (e.g. struct rte_mbuf *) or NULL */
    uint8_t            buf[FP_PKT_BUF_SIZE];
};

typedef void (*fp_pkt_ext_free_fn)(void *ctx, void *ext);

/* Packet buffers: an fp_pool of struct fp_pkt (net/stack/pkt.h). */
struct fp_pktpool {
    struct fp_pool     objs;
    fp_pkt_ext_free_fn ext_free; /* called for buffers with ext != NULL */
    void              *ext_ctx;
};

/* Timers: a hashed timing wheel (Varghese and Lauck, scheme 6). */
typedef void (*fp_stk_timer_fn)(void *arg);

struct fp_stk_timer {
    struct fp_stk_timer  *next;
    struct fp_stk_timer **pprev; /* NULL when not armed */
    uint64_t          expire_tick;
    fp_stk_timer_fn       fn;
    void             *arg;
};

struct fp_timer_wheel {
    struct fp_stk_timer **slots;
    uint32_t          mask; /* slots - 1, slots a power of two */
    uint32_t          tick_us;
    uint64_t          cur_tick; /* every tick <= cur_tick has been processed */
    uint32_t          nb_armed;
};

/* Counters: one per drop or error cause, written only by the owning instance. */
#define FP_STK_COUNTERS(X)                                                         \
    X(RX_FRAMES, "frames received")                                                \
    X(TX_FRAMES, "frames sent")                                                    \
    X(TX_LINK_FULL, "frames dropped: link tx queue full")                          \
    X(PKT_POOL_EMPTY, "packet buffer pool empty")                                  \
    X(TIMERS_DEFERRED, "timer runs put off while received frames waited")          \
    X(TCB_POOL_EMPTY, "connection pool empty")                                     \
    X(ETH_SHORT, "Ethernet: frame too short")                                      \
    X(ETH_NOT_US, "Ethernet: destination MAC not ours")                            \
    X(ETH_BAD_TYPE, "Ethernet: unknown ethertype")                                 \
    X(ARP_RX, "ARP: packets received")                                             \
    X(ARP_BAD, "ARP: malformed")                                                   \
    X(ARP_NOT_US, "ARP: not for our address")                                      \
    X(ARP_REQ_TX, "ARP: requests sent")                                            \
    X(ARP_REPLY_TX, "ARP: replies sent")                                           \
    X(ARP_CACHE_FULL, "ARP: cache full")                                           \
    X(ARP_QUEUE_FULL, "ARP: waiting queue full, packet dropped")                   \
    X(ARP_TIMEOUT, "ARP: resolution timed out, packets dropped")                   \
    X(IP_RX, "IPv4: packets received")                                             \
    X(IP_SHORT, "IPv4: truncated")                                                 \
    X(IP_BAD_VER, "IPv4: bad version or header length")                            \
    X(IP_BAD_CKSUM, "IPv4: bad header checksum")                                   \
    X(IP_NOT_US, "IPv4: destination not ours")                                     \
    X(IP_FRAG, "IPv4: fragment dropped (no reassembly)")                           \
    X(IP_BAD_PROTO, "IPv4: unknown protocol")                                      \
    X(IP_NO_ROUTE, "IPv4: no route (no gateway)")                                  \
    X(ICMP_RX, "ICMP: packets received")                                           \
    X(ICMP_BAD, "ICMP: malformed or bad checksum")                                 \
    X(ICMP_ECHO_REPLIED, "ICMP: echo requests answered")                           \
    X(ICMP_OTHER, "ICMP: other types ignored")                                     \
    X(TCP_RX, "TCP: segments received")                                            \
    X(TCP_TX, "TCP: segments sent")                                                \
    X(TCP_SHORT, "TCP: truncated or bad data offset")                              \
    X(TCP_BAD_CKSUM, "TCP: bad checksum")                                          \
    X(TCP_BAD_OPT, "TCP: malformed options")                                       \
    X(TCP_NO_CONN, "TCP: no connection or listener, reset sent")                   \
    X(TCP_RST_TX, "TCP: resets sent")                                              \
    X(TCP_RST_RX, "TCP: resets accepted")                                          \
    X(TCP_RST_IGNORED, "TCP: resets out of window ignored")                        \
    X(TCP_CHALLENGE_ACK, "TCP: challenge ACKs sent (RFC 5961)")                    \
    X(TCP_CHALLENGE_LIMIT, "TCP: challenge ACKs suppressed by rate limit")         \
    X(TCP_PAWS_DROP, "TCP: dropped by PAWS")                                       \
    X(TCP_OUT_OF_WINDOW, "TCP: segments outside the receive window")               \
    X(TCP_ACK_TOO_NEW, "TCP: ACK of unsent data, dropped")                         \
    X(TCP_ACK_TOO_OLD, "TCP: ACK too old (RFC 5961 §5), dropped")                  \
    X(TCP_DUP_ACK, "TCP: duplicate ACKs")                                          \
    X(TCP_OOO, "TCP: out-of-order segments queued")                                \
    X(TCP_OOO_DROP, "TCP: out-of-order segments dropped (no buffer)")              \
    X(TCP_DUP_DATA, "TCP: duplicate data bytes discarded")                         \
    X(TCP_RCVBUF_DROP, "TCP: data dropped, no buffer")                             \
    X(TCP_REXMT_TIMEOUT, "TCP: retransmission timeouts")                           \
    X(TCP_REXMT_SEGS, "TCP: segments retransmitted")                               \
    X(TCP_FAST_REXMT, "TCP: fast retransmits")                                     \
    X(TCP_SACK_REXMT, "TCP: SACK-driven retransmits")                              \
    X(TCP_CONN_TIMEOUT, "TCP: connections dropped after too many retransmissions") \
    X(TCP_PERSIST_PROBE, "TCP: zero-window probes sent")                           \
    X(TCP_KEEPALIVE_PROBE, "TCP: keepalive probes sent")                           \
    X(TCP_KEEPALIVE_DROP, "TCP: connections dropped by keepalive")                 \
    X(TCP_DELACK, "TCP: delayed ACKs sent")                                        \
    X(TCP_ACTIVE_OPEN, "TCP: active opens")                                        \
    X(TCP_PASSIVE_OPEN, "TCP: passive opens")                                      \
    X(TCP_ESTABLISHED, "TCP: connections established")                             \
    X(TCP_CLOSED, "TCP: connections released")                                     \
    X(TCP_SYNQ_FULL, "TCP: SYN queue full")                                        \
    X(TCP_ACCEPTQ_FULL, "TCP: accept queue full, SYN dropped")                     \
    X(TCP_COOKIE_SENT, "TCP: SYN cookies sent")                                    \
    X(TCP_COOKIE_OK, "TCP: SYN cookies validated")                                 \
    X(TCP_COOKIE_BAD, "TCP: bad SYN cookies, dropped")                             \
    X(TCP_TW_REUSE, "TCP: TIME_WAIT reused by active open")                        \
    X(TCP_TW_RECYCLED, "TCP: TIME_WAIT reused by new SYN")                         \
    X(TCP_PORT_EXHAUSTED, "TCP: no free local port")                               \
    X(TCP_SNDBUF_FULL, "TCP: send refused, buffer full")                           \
    X(TCP_APP_COPY_BYTES, "TCP: payload bytes copied between the application and the queues")

enum fp_stk_counter {
#define FP_STK_CTR_ENUM(name, desc) FP_STK_##name,
    FP_STK_COUNTERS(FP_STK_CTR_ENUM)
#undef FP_STK_CTR_ENUM
            FP_STK_CTR_NB
};

/* TCP states, RFC 9293 §3.3.2. */
enum fp_tcp_state {
    FP_TCP_CLOSED = 0,
    FP_TCP_LISTEN,
    FP_TCP_SYN_SENT,
    FP_TCP_SYN_RCVD,
    FP_TCP_ESTABLISHED,
    FP_TCP_CLOSE_WAIT,
    FP_TCP_FIN_WAIT_1,
    FP_TCP_CLOSING,
    FP_TCP_LAST_ACK,
    FP_TCP_FIN_WAIT_2,
    FP_TCP_TIME_WAIT,
    FP_TCP_STATE_NB
};

struct fp_tcb;
struct fp_tcp_listener;
struct fp_stack;

/*
 * Application callbacks. They are never called from inside packet processing: events are
 * collected and delivered once the burst is done, so a callback may send, close or abort.
 */
struct fp_tcp_callbacks {
    /* The listener's accept queue became non-empty: call fp_tcp_accept() until it returns NULL. */
    void (*on_accept)(struct fp_tcp_listener *l, void *user);
    /* An active open completed. */
    void (*on_connected)(struct fp_tcb *c, void *user);
    /* Data or end of stream can be read. */
    void (*on_readable)(struct fp_tcb *c, void *user);
    /* Send buffer space became available after a send was refused or partial. */
    void (*on_writable)(struct fp_tcb *c, void *user);
    /* The connection died (err: -ECONNRESET, -ECONNREFUSED, -ETIMEDOUT). c is invalid after. */
    void (*on_closed)(struct fp_tcb *c, void *user, int err);
};

/* Congestion control interface (FreeBSD's cc_algo, reduced). */
struct fp_tcp_cc_ops {
    const char *name;
    void (*init)(struct fp_tcb *tp);
    void (*on_ack)(struct fp_tcb *tp, uint32_t acked); /* new data acked outside recovery */
    void (*on_loss)(struct fp_tcb *tp);                /* entering fast recovery: set ssthresh */
    void (*on_timeout)(struct fp_tcb *tp);             /* RTO fired */
};

enum fp_tcp_cc_algo {
    FP_TCP_CC_NEWRENO = 0,
    FP_TCP_CC_CUBIC,
};

/* TCB flags. */
enum fp_tcb_flag {
    FP_TF_ACKNOW = 0x0001,      /* send an ACK at the next output */
    FP_TF_DELACK = 0x0002,      /* an ACK is being delayed */
    FP_TF_SENTFIN = 0x0004,     /* our FIN has been sent at least once */
    FP_TF_SHUTWR = 0x0008,      /* the application will send no more: FIN after sndq */
    FP_TF_CLOSED_APP = 0x0010,  /* the application released its handle */
    FP_TF_RCVD_TSTMP = 0x0020,  /* timestamps negotiated (RFC 7323) */
    FP_TF_RCVD_SCALE = 0x0040,  /* window scaling negotiated */
    FP_TF_SACK_PERMIT = 0x0080, /* SACK negotiated */
    FP_TF_FASTRECOV = 0x0100,   /* in fast recovery (RFC 6582) */
    FP_TF_WANT_WRITE = 0x0200,  /* the application wants on_writable */
    FP_TF_RCVD_FIN = 0x0400,    /* peer's FIN received: EOF after rcvq */
    FP_TF_REAPING = 0x0800,     /* on the reap list */
    FP_TF_NOTIFYING = 0x1000,   /* on the notify list */
    FP_TF_NODELAY = 0x2000,     /* Nagle off */
    FP_TF_COOKIE = 0x4000,      /* created from a SYN cookie */
    FP_TF_ACCEPTQ = 0x8000,     /* on a listener's accept queue */
};

/* Pending application events. */
enum fp_tcb_event {
    FP_EV_CONNECTED = 0x1,
    FP_EV_READABLE = 0x2,
    FP_EV_WRITABLE = 0x4,
    FP_EV_CLOSED = 0x8,
    FP_EV_ACCEPT = 0x10,
};

struct fp_sack_block {
    uint32_t start;
    uint32_t end;
};

/*
 * The TCP control block. Field families follow FreeBSD's tcpcb: t_ for state and timers, snd_
 * and rcv_ for the sequence space (RFC 9293 §3.3.1). Addresses and ports are in host order.
 */
struct fp_tcb {
    struct fp_tcb          *hnext;        /* connection hash chain */
    struct fp_tcb          *lnext;        /* reap list or accept queue */
    struct fp_tcb          *nnext;        /* notify list */
    struct fp_stack        *st;           /* owning instance */
    struct fp_tcp_listener *t_lsn;        /* listener while in SYN queue or accept queue */
    struct fp_stk_timer         t_timer;      /* one wheel entry at the earliest deadline below */
    uint64_t                t_rexmt_at;   /* retransmission (or SYN) deadline, 0 = off */
    uint64_t                t_delack_at;  /* delayed ACK deadline */
    uint64_t                t_persist_at; /* zero-window probe deadline */
    uint64_t                t_keep_at;    /* keepalive deadline */
    uint64_t                t_2msl_at;    /* TIME_WAIT end */
    uint64_t                t_idle_since; /* last segment received, for keepalive */
    uint32_t                laddr;
    uint32_t                raddr;
    uint16_t                lport;
    uint16_t                rport;
    uint8_t                 t_state;
    uint8_t                 t_rxtshift; /* consecutive retransmissions of the same data */
    uint8_t                 t_dupacks;
    uint8_t                 t_events; /* enum fp_tcb_event pending */
    uint32_t                t_flags;  /* enum fp_tcb_flag */
    uint8_t                 t_keep_probes;
    uint8_t                 t_persist_shift;
    int                     t_softerr; /* error reported by on_closed */

    /* Send sequence space. */
    uint32_t iss;
    uint32_t snd_una;
    uint32_t snd_nxt;
    uint32_t snd_max;     /* highest sequence sent + 1 */
    uint32_t snd_wnd;     /* peer's window, scaled */
    uint32_t snd_wl1;     /* segment seq used for the last window update */
    uint32_t snd_wl2;     /* segment ack used for the last window update */
    uint32_t snd_fin_seq; /* sequence of our FIN once queued */
    uint32_t snd_recover; /* RFC 6582 recover */
    uint32_t snd_cwnd;
    uint32_t snd_ssthresh;
    uint32_t snd_buf;  /* send buffer limit, bytes */
    uint16_t t_maxseg; /* payload bytes per segment (options excluded) */
    uint16_t t_peer_mss;
    uint8_t  snd_wscale; /* shift applied to the peer's window */
    uint8_t  rcv_wscale; /* shift we apply to our window */
    uint8_t  t_cc_algo;

    /* Receive sequence space. */
    uint32_t irs;
    uint32_t rcv_nxt;
    uint32_t rcv_adv;        /* right edge we advertised */
    uint32_t rcv_buf;        /* receive buffer limit, bytes */
    uint32_t t_segs_unacked; /* full segments received since our last ACK */

    /* RTT (RFC 6298), microseconds. */
    uint32_t t_srtt_us; /* 0 = no sample yet */
    uint32_t t_rttvar_us;
    uint32_t t_rto_us;
    uint32_t t_rtseq;  /* sequence being timed, valid while t_rttime != 0 */
    uint64_t t_rttime; /* when it was sent (Karn: only first transmissions are timed) */

    /* Timestamps (RFC 7323). */
    uint32_t ts_recent;
    uint64_t ts_recent_age; /* when ts_recent was set, for the 24-day PAWS rule */
    uint32_t last_ack_sent;

    /* SACK (RFC 2018): blocks we report, and the scoreboard of blocks the peer reported. */
    struct fp_sack_block snd_sack[FP_STK_SACK_SB]; /* sorted, disjoint, above snd_una */
    uint8_t              snd_nsack;
    uint32_t             snd_sack_hint; /* highest sequence retransmitted in SACK recovery */
    uint32_t             rcv_last_ooo;  /* start of the newest out-of-order segment */

    /* CUBIC state (RFC 9438). */
    uint32_t cc_wmax;     /* bytes */
    uint64_t cc_epoch_us; /* start of the current epoch, 0 = none */
    uint32_t cc_k_ms;
    uint32_t cc_west; /* Reno-friendly estimate, bytes */

    /* Queues. sndq holds unacknowledged and unsent bytes starting at snd_una. */
    struct fp_pkt *sndq_head;
    struct fp_pkt *sndq_tail;
    uint32_t       sndq_bytes;
    struct fp_pkt *snd_hint;  /* a pkt of sndq, to avoid walking from the head */
    struct fp_pkt *rcvq_head; /* in-order data not yet read */
    struct fp_pkt *rcvq_tail;
    uint32_t       rcvq_bytes;
    struct fp_pkt *ooo_head; /* out-of-order segments sorted by seq, no overlap */
    uint32_t       ooo_bytes;

    uint32_t max_sndwnd; /* largest window the peer offered (RFC 5961 §5.2 MAX.SND.WND) */
    uint32_t ts_offset;  /* per-connection TSval offset (RFC 7323 §7.1) */

    /* Challenge ACK rate limit (RFC 5961 §7). */
    uint64_t t_chack_epoch;
    uint32_t t_chack_count;

    const struct fp_tcp_cc_ops    *cc; /* set when the connection is established */
    const struct fp_tcp_callbacks *cb;
    void                          *user;
};

struct fp_tcp_listener {
    struct fp_stack               *st;
    const struct fp_tcp_callbacks *cb;
    void                          *user;
    uint16_t                       port;        /* 0 = slot free */
    uint32_t                       backlog;     /* accept queue bound */
    uint32_t                       syn_backlog; /* SYN queue bound */
    uint32_t                       nb_syn;      /* connections in SYN_RCVD */
    uint32_t                       nb_accept;
    struct fp_tcb                 *acceptq_head;
    struct fp_tcb                 *acceptq_tail;
    bool                           notify_pending;
};

enum fp_arp_state {
    FP_ARP_FREE = 0,
    FP_ARP_PENDING,
    FP_ARP_RESOLVED,
};

struct fp_arp_entry {
    uint32_t       ip;
    uint8_t        mac[6];
    uint8_t        state;
    uint8_t        retries;
    uint64_t       expire_us; /* RESOLVED: stale after; PENDING: next request */
    struct fp_pkt *waitq;     /* frames waiting for resolution (L3 data) */
    uint32_t       nb_wait;
};

struct fp_link;

/* Instance configuration; fields left 0 take the defaults documented in stack.h. */
struct fp_stack_conf {
    uint32_t addr; /* IPv4 address, host order */
    /* More local addresses on addr's subnet, host order, for active opens only (a caller that
     * has used up addr's ports to a peer opens from one of these): answered in ARP, accepted
     * as destinations; SYNs to them find no listener. */
    uint32_t src_addrs[FP_STK_MAX_SRC_ADDRS];
    uint32_t nb_src_addrs;
    uint8_t  prefix_len;
    uint32_t gateway; /* 0 = none */
    uint8_t  mac[6];
    uint16_t mtu;
    uint32_t nb_pkts; /* packet buffers */
    uint32_t nb_tcbs; /* connections, all states */
    uint32_t arp_entries;
    uint32_t arp_wait_max;   /* frames queued per unresolved entry */
    uint32_t arp_timeout_ms; /* resolved entry lifetime */
    uint32_t snd_buf;        /* per connection, bytes */
    uint32_t rcv_buf;
    uint32_t rto_min_ms;
    uint32_t rto_max_ms;
    uint32_t rto_init_ms;
    uint32_t max_rexmt; /* retransmissions before giving up */
    uint32_t syn_rexmt; /* SYN retransmissions before giving up */
    uint32_t time_wait_ms;
    uint32_t delack_ms;         /* 0xffffffff = disabled */
    uint32_t keepalive_idle_ms; /* 0 = off */
    uint32_t keepalive_intvl_ms;
    uint32_t keepalive_probes;
    uint32_t challenge_ack_limit; /* per second, RFC 5961 §7 */
    uint8_t  cc_algo;             /* enum fp_tcp_cc_algo */
    bool     nagle;               /* Nagle's algorithm (RFC 896); off by default */
    bool     no_timestamps;
    bool     no_sack;
    bool     no_wscale;
    uint64_t seed; /* ISN, ports and cookie secret; 0 = from the clock */
};

/* One instance. */
struct fp_stack {
    struct fp_stack_conf    conf;
    uint64_t                now_us; /* injected time of the current call */
    struct fp_link         *link;
    uint32_t                netmask;
    struct fp_pktpool       pkts;
    struct fp_pool          tcbs;
    struct fp_tcb         **tcb_hash;
    uint32_t                tcb_hash_mask;
    struct fp_tcp_listener  listeners[FP_STK_MAX_LISTEN];
    struct fp_arp_entry    *arp;
    uint32_t                arp_hint;
    struct fp_timer_wheel   wheel;
    struct fp_stk_timer         arp_timer;
    struct fp_pkt          *txq[FP_STK_BURST];
    uint16_t                nb_tx;
    uint16_t                timer_defers; /* passes in a row that put the timers off */
    struct fp_tcb          *notify_head;
    struct fp_tcb          *reap_head;
    struct fp_tcp_listener *lnotify[FP_STK_MAX_LISTEN];
    uint32_t                nb_lnotify;
    uint64_t                rng;
    uint64_t                secret[2];
    uint16_t                next_port;
    uint16_t                ip_id;
    uint64_t                ctr[FP_STK_CTR_NB]; /* read with fp_stack_counters() */
};

#endif /* FP_NET_STACK_STACK_TYPES_H */
