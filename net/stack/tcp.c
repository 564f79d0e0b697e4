/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP per RFC 9293. Input is split as in FreeBSD: fp_tcp_input() validates the segment and finds
 * the connection (or the listener, for SYNs and SYN-cookie ACKs); do_segment() runs the state
 * machine of RFC 9293 §3.10.7.4 in its order (sequence check, RST, SYN, ACK, data, FIN). Output
 * is tcp_output(), which sends whatever the windows, the queues and the flags call for. Each
 * connection has one wheel timer armed at the earliest of its deadlines.
 *
 * Connections are released through tcb_release(), which takes the TCB out of every table and
 * puts it on the reap list; the memory goes back to the pool only after the pending callbacks are
 * delivered, so the application never sees a handle recycled under it within one round.
 */
#include "net/stack/tcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/pool.h"
#include "net/stack/cksum.h"
#include "net/stack/ipv4.h"
#include "net/stack/link.h"
#include "net/stack/pkt.h"
#include "net/stack/seq.h"
#include "net/stack/stack.h"
#include "net/stack/tcp_cc.h"
#include "net/stack/tcp_opt.h"
#include "net/stack/timer.h"
#include "net/stack/wire.h"

enum {
    TH_FIN = 0x01,
    TH_SYN = 0x02,
    TH_RST = 0x04,
    TH_PSH = 0x08,
    TH_ACK = 0x10,
};

#define PAYLOAD_MAX      (FP_PKT_BUF_SIZE - FP_PKT_HEADROOM)
/* fp_tcp_send_pkts copies buffers up to this long into the send queue's tail buffer while that
 * one holds less than SNDQ_MERGE_TAIL bytes. */
#define SNDQ_MERGE_MAX  512
#define SNDQ_MERGE_TAIL 1024
#define FIN_WAIT_2_US    60000000ull /* orphaned FIN_WAIT_2 lifetime, as Linux tcp_fin_timeout */
#define PAWS_IDLE_US     (24ull * 86400 * 1000000) /* RFC 7323 §5.5 */
#define PERSIST_MIN_US   200000
#define COOKIE_PERIOD_US 64000000ull
#define EPHEMERAL_LO     32768
#define EPHEMERAL_NB     28232

/* A parsed incoming segment. */
struct seg {
    uint32_t           seq;
    uint32_t           ack;
    uint32_t           len; /* payload bytes */
    uint32_t           wnd; /* unscaled */
    uint32_t           saddr;
    uint32_t           daddr;
    uint16_t           sport;
    uint16_t           dport;
    uint8_t            flags;
    struct fp_tcp_opts opt;
    struct fp_pkt     *pkt; /* payload; NULL once queued */
};

static const char *const state_names[FP_TCP_STATE_NB] = {
        "CLOSED",     "LISTEN",  "SYN_SENT", "SYN_RCVD",   "ESTABLISHED", "CLOSE_WAIT",
        "FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT",
};

/* SYN cookie MSS table (index in the cookie's low bits). */
static const uint16_t cookie_mss[8] = {536, 1024, 1220, 1300, 1360, 1400, 1440, 1460};

static void tcp_output(struct fp_tcb *tp);
static void timer_update(struct fp_tcb *tp);
static void tcp_timeout(void *arg);

const char *
fp_tcp_state_name(enum fp_tcp_state s)
{
    return s < FP_TCP_STATE_NB ? state_names[s] : "?";
}

/* ---- Tables ---- */

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Keyed hash of a 4-tuple; the key keeps remote hosts from choosing our hash chains. The local
 * address only matters when the instance has source addresses beside conf.addr. */
static uint64_t
tuple_hash(const struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport,
           uint16_t lport, uint64_t k)
{
    uint64_t l = laddr == st->conf.addr ? 0 : (uint64_t)laddr * 0x9E3779B97F4A7C15ULL;

    return mix64(((uint64_t)raddr << 32 | (uint64_t)rport << 16 | lport) ^ st->secret[0] ^ k ^ l);
}

static struct fp_tcb **
bucket(struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport, uint16_t lport)
{
    return &st->tcb_hash[tuple_hash(st, laddr, raddr, rport, lport, 0) & st->tcb_hash_mask];
}

static struct fp_tcb *
lookup(struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport, uint16_t lport)
{
    struct fp_tcb *tp;

    for (tp = *bucket(st, laddr, raddr, rport, lport); tp != NULL; tp = tp->hnext) {
        if (tp->raddr == raddr && tp->rport == rport && tp->lport == lport &&
            tp->laddr == laddr) {
            return tp;
        }
    }
    return NULL;
}

struct fp_tcb *
fp_tcp_find(struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport, uint16_t lport)
{
    return lookup(st, laddr == 0 ? st->conf.addr : laddr, raddr, rport, lport);
}

uint32_t
fp_tcp_nb_unacked(struct fp_stack *st)
{
    struct fp_tcb *tp;
    uint32_t       i;
    uint32_t       n = 0;

    for (i = 0; i <= st->tcb_hash_mask; i++) {
        for (tp = st->tcb_hash[i]; tp != NULL; tp = tp->hnext) {
            if (tp->t_state == FP_TCP_FIN_WAIT_1 || tp->t_state == FP_TCP_CLOSING ||
                tp->t_state == FP_TCP_LAST_ACK ||
                ((tp->t_state == FP_TCP_ESTABLISHED || tp->t_state == FP_TCP_CLOSE_WAIT) &&
                 tp->sndq_bytes > 0)) {
                n++;
            }
        }
    }
    return n;
}

static void
hash_insert(struct fp_tcb *tp)
{
    struct fp_tcb **b = bucket(tp->st, tp->laddr, tp->raddr, tp->rport, tp->lport);

    tp->hnext = *b;
    *b = tp;
}

static void
hash_remove(struct fp_tcb *tp)
{
    struct fp_tcb **pp = bucket(tp->st, tp->laddr, tp->raddr, tp->rport, tp->lport);

    for (; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == tp) {
            *pp = tp->hnext;
            tp->hnext = NULL;
            return;
        }
    }
}

static struct fp_tcp_listener *
find_listener(struct fp_stack *st, uint16_t port)
{
    unsigned int i;

    for (i = 0; i < FP_STK_MAX_LISTEN; i++) {
        if (st->listeners[i].port == port) {
            return &st->listeners[i];
        }
    }
    return NULL;
}

/* ---- Events ---- */

static void
post_event(struct fp_tcb *tp, uint8_t ev)
{
    tp->t_events |= ev;
    if ((tp->t_flags & FP_TF_NOTIFYING) == 0) {
        tp->t_flags |= FP_TF_NOTIFYING;
        tp->nnext = tp->st->notify_head;
        tp->st->notify_head = tp;
    }
}

static void
post_accept(struct fp_tcp_listener *l)
{
    struct fp_stack *st = l->st;

    if (!l->notify_pending && st->nb_lnotify < FP_STK_MAX_LISTEN) {
        l->notify_pending = true;
        st->lnotify[st->nb_lnotify++] = l;
    }
}

void
fp_tcp_dispatch(struct fp_stack *st)
{
    struct fp_tcp_listener *l;
    struct fp_tcb          *tp;
    uint8_t                 ev;

    while (st->nb_lnotify > 0 || st->notify_head != NULL) {
        while ((tp = st->notify_head) != NULL) {
            st->notify_head = tp->nnext;
            tp->nnext = NULL;
            tp->t_flags &= ~(uint32_t)FP_TF_NOTIFYING;
            ev = tp->t_events;
            tp->t_events = 0;
            if ((tp->t_flags & FP_TF_CLOSED_APP) != 0 || tp->cb == NULL) {
                continue;
            }
            if ((ev & FP_EV_CONNECTED) != 0 && tp->cb->on_connected != NULL) {
                tp->cb->on_connected(tp, tp->user);
            }
            if ((ev & FP_EV_READABLE) != 0 && (tp->t_flags & FP_TF_CLOSED_APP) == 0 &&
                tp->cb->on_readable != NULL) {
                tp->cb->on_readable(tp, tp->user);
            }
            if ((ev & FP_EV_WRITABLE) != 0 && (tp->t_flags & FP_TF_CLOSED_APP) == 0 &&
                tp->cb->on_writable != NULL) {
                tp->cb->on_writable(tp, tp->user);
            }
            if ((ev & FP_EV_CLOSED) != 0 && (tp->t_flags & FP_TF_CLOSED_APP) == 0) {
                tp->t_flags |= FP_TF_CLOSED_APP;
                if (tp->cb->on_closed != NULL) {
                    tp->cb->on_closed(tp, tp->user, tp->t_softerr);
                }
            }
        }
        if (st->nb_lnotify > 0) {
            l = st->lnotify[--st->nb_lnotify];
            l->notify_pending = false;
            if (l->port != 0 && l->acceptq_head != NULL && l->cb != NULL &&
                l->cb->on_accept != NULL) {
                l->cb->on_accept(l, l->user);
            }
        }
    }
}

/* ---- Connection life cycle ---- */

static uint8_t
choose_rcv_wscale(uint32_t rcv_buf)
{
    uint8_t s = 0;

    while (s < 14 && (rcv_buf >> s) > 65535) {
        s++;
    }
    return s;
}

static struct fp_tcb *
tcb_new(struct fp_stack *st)
{
    struct fp_tcb *tp = fp_pool_get_zeroed(&st->tcbs);

    if (tp == NULL) {
        fp_stack_ctr_inc(st, FP_STK_TCB_POOL_EMPTY);
        return NULL;
    }
    tp->st = st;
    fp_timer_init(&tp->t_timer, tcp_timeout, tp);
    tp->laddr = st->conf.addr;
    tp->snd_buf = st->conf.snd_buf;
    tp->rcv_buf = st->conf.rcv_buf;
    tp->t_rto_us = st->conf.rto_init_ms * 1000;
    tp->t_maxseg = 536;
    tp->t_cc_algo = st->conf.cc_algo;
    tp->rcv_wscale = st->conf.no_wscale ? 0 : choose_rcv_wscale(tp->rcv_buf);
    tp->t_idle_since = st->now_us;
    if (!st->conf.nagle) {
        tp->t_flags |= FP_TF_NODELAY;
    }
    return tp;
}

/*
 * RFC 7323 §7.1: a per-connection TSval offset. Keyed on the 4-tuple rather than random, so that
 * successive incarnations of one 4-tuple have increasing timestamps (RFC 6191 recycling).
 */
static void
set_ts_offset(struct fp_tcb *tp)
{
    tp->ts_offset = (uint32_t)tuple_hash(tp->st, tp->laddr, tp->raddr, tp->rport, tp->lport, 0x75);
}

/* RFC 6528: ISN = M + F(4-tuple, secret), M a 4 us clock. */
static uint32_t
gen_iss(struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport, uint16_t lport)
{
    return (uint32_t)(st->now_us / 4) +
           (uint32_t)tuple_hash(st, laddr, raddr, rport, lport, 0x155);
}

static void
acceptq_remove(struct fp_tcb *tp)
{
    struct fp_tcp_listener *l = tp->t_lsn;
    struct fp_tcb         **pp;

    for (pp = &l->acceptq_head; *pp != NULL; pp = &(*pp)->lnext) {
        if (*pp == tp) {
            *pp = tp->lnext;
            break;
        }
    }
    l->acceptq_tail = NULL;
    for (pp = &l->acceptq_head; *pp != NULL; pp = &(*pp)->lnext) {
        l->acceptq_tail = *pp;
    }
    tp->lnext = NULL;
    l->nb_accept--;
    tp->t_flags &= ~(uint32_t)FP_TF_ACCEPTQ;
}

/* Detaches tp from the listener's queues. */
static void
leave_listener(struct fp_tcb *tp)
{
    if (tp->t_lsn == NULL) {
        return;
    }
    if ((tp->t_flags & FP_TF_ACCEPTQ) != 0) {
        acceptq_remove(tp);
    } else if (tp->t_state == FP_TCP_SYN_RCVD && (tp->t_flags & FP_TF_COOKIE) == 0) {
        tp->t_lsn->nb_syn--;
    }
    tp->t_lsn = NULL;
}

/*
 * Takes tp out of every table, frees its queues and schedules its memory for reuse. If the
 * application still holds the handle it gets on_closed(err).
 */
static void
tcb_release(struct fp_tcb *tp, int err)
{
    struct fp_stack *st = tp->st;

    if ((tp->t_flags & FP_TF_REAPING) != 0) {
        return;
    }
    leave_listener(tp);
    fp_timer_cancel(&st->wheel, &tp->t_timer);
    hash_remove(tp);
    fp_pkt_free_chain(tp->sndq_head);
    fp_pkt_free_chain(tp->rcvq_head);
    fp_pkt_free_chain(tp->ooo_head);
    tp->sndq_head = NULL;
    tp->sndq_tail = NULL;
    tp->snd_hint = NULL;
    tp->rcvq_head = NULL;
    tp->rcvq_tail = NULL;
    tp->ooo_head = NULL;
    tp->sndq_bytes = 0;
    tp->rcvq_bytes = 0;
    tp->ooo_bytes = 0;
    tp->t_state = FP_TCP_CLOSED;
    tp->t_softerr = err;
    tp->t_flags |= FP_TF_REAPING;
    tp->lnext = st->reap_head;
    st->reap_head = tp;
    fp_stack_ctr_inc(st, FP_STK_TCP_CLOSED);
    if ((tp->t_flags & FP_TF_CLOSED_APP) == 0) {
        post_event(tp, FP_EV_CLOSED);
    }
}

void
fp_tcp_reap(struct fp_stack *st)
{
    struct fp_tcb *tp;
    struct fp_tcb *keep = NULL;

    while ((tp = st->reap_head) != NULL) {
        st->reap_head = tp->lnext;
        if ((tp->t_flags & FP_TF_NOTIFYING) != 0) {
            tp->lnext = keep; /* an event is still due: reap next round */
            keep = tp;
            continue;
        }
        fp_pool_put(&st->tcbs, tp);
    }
    st->reap_head = keep;
}

int
fp_tcp_init(struct fp_stack *st)
{
    uint32_t n = 1;
    int      rc;

    while (n < st->conf.nb_tcbs) {
        n <<= 1;
    }
    st->tcb_hash = calloc(n, sizeof(*st->tcb_hash));
    if (st->tcb_hash == NULL) {
        return -ENOMEM;
    }
    st->tcb_hash_mask = n - 1;
    rc = fp_pool_init(&st->tcbs, sizeof(struct fp_tcb), st->conf.nb_tcbs);
    if (rc < 0) {
        free(st->tcb_hash);
        st->tcb_hash = NULL;
        return rc;
    }
    return 0;
}

void
fp_tcp_release_all(struct fp_stack *st)
{
    struct fp_tcb *tp;
    uint32_t       i;

    if (st->tcb_hash == NULL) {
        return;
    }
    for (i = 0; i <= st->tcb_hash_mask; i++) {
        while ((tp = st->tcb_hash[i]) != NULL) {
            tp->t_flags |= FP_TF_CLOSED_APP;
            tcb_release(tp, 0);
        }
    }
    while ((tp = st->notify_head) != NULL) {
        st->notify_head = tp->nnext;
        tp->nnext = NULL;
        tp->t_flags &= ~(uint32_t)FP_TF_NOTIFYING;
    }
    st->nb_lnotify = 0;
    fp_tcp_reap(st);
}

void
fp_tcp_fini(struct fp_stack *st)
{
    if (st->tcb_hash == NULL) {
        return;
    }
    fp_tcp_release_all(st);
    fp_pool_destroy(&st->tcbs);
    free(st->tcb_hash);
    st->tcb_hash = NULL;
}

/* ---- Output ---- */

static uint32_t
ts_now(const struct fp_tcb *tp)
{
    return (uint32_t)(tp->st->now_us / 1000) + tp->ts_offset;
}

/* The window to advertise, never shrinking the right edge already offered (RFC 9293 §3.8.6). */
static uint32_t
rcv_space(const struct fp_tcb *tp)
{
    uint32_t space = tp->rcvq_bytes < tp->rcv_buf ? tp->rcv_buf - tp->rcvq_bytes : 0;
    uint32_t adv = tp->rcv_adv - tp->rcv_nxt;

    if (fp_seq_gt(tp->rcv_adv, tp->rcv_nxt) && adv > space) {
        space = adv;
    }
    return space;
}

/*
 * Fills SACK blocks from the out-of-order queue. RFC 2018 §4: the first block holds the newest
 * segment; the others follow in sequence order.
 */
static uint8_t
build_sack(const struct fp_tcb *tp, struct fp_sack_block *b)
{
    const struct fp_pkt *p;
    struct fp_sack_block t;
    uint8_t              n = 0;
    uint8_t              i;

    for (p = tp->ooo_head; p != NULL; p = p->next) {
        if (n > 0 && b[n - 1].end == p->seq) {
            b[n - 1].end = p->seq + p->len;
            continue;
        }
        if (n == 3) {
            break;
        }
        b[n].start = p->seq;
        b[n].end = p->seq + p->len;
        n++;
    }
    for (i = 1; i < n; i++) {
        if (fp_seq_in(tp->rcv_last_ooo, b[i].start, b[i].end)) {
            t = b[i];
            memmove(&b[1], &b[0], i * sizeof(*b));
            b[0] = t;
            break;
        }
    }
    return n;
}

/* Keeps the SACK option within the MTU when the segment carries data. */
static void
clamp_sack(const struct fp_tcb *tp, struct fp_tcp_opts *o, uint32_t len)
{
    uint32_t room = tp->t_maxseg + (o->has_ts ? 12u : 0u);
    uint32_t used = len + (o->has_ts ? 12u : 0u);
    uint32_t fit;

    if (len == 0) {
        return;
    }
    fit = room > used + 4 ? (room - used - 4) / 8 : 0;
    if (o->nsack > fit) {
        o->nsack = (uint8_t)fit;
    }
}

/* Copies len bytes starting at sequence seq of the send queue to dst. */
static void
copy_from_sndq(struct fp_tcb *tp, uint32_t seq, uint8_t *dst, uint32_t len)
{
    struct fp_pkt *p = tp->snd_hint;
    uint32_t       off;
    uint32_t       n;

    if (p == NULL || fp_seq_lt(seq, p->seq)) {
        p = tp->sndq_head;
    }
    while (fp_seq_geq(seq, p->seq + p->len)) {
        p = p->next;
    }
    while (len > 0) {
        off = seq - p->seq;
        n = p->len - off < len ? p->len - off : len;
        memcpy(dst, p->data + off, n);
        dst += n;
        seq += n;
        len -= n;
        tp->snd_hint = p;
        p = p->next;
    }
}

/*
 * Fills in the checksum of the TCP segment at p (p->len bytes, checksum field 0): the
 * pseudo-header sum, flagged for the link to finish, when the link computes checksums; else
 * the whole sum here.
 */
static void
set_cksum(struct fp_stack *st, struct fp_pkt *p, uint32_t saddr, uint32_t daddr)
{
    uint16_t sum;

    if (st->link != NULL && (st->link->caps & FP_LINK_CAP_TX_CKSUM) != 0) {
        sum = fp_cksum_tcp_phdr(saddr, daddr, p->len);
        p->flags |= FP_PKT_F_TX_CKSUM_OFFLOAD;
    } else {
        sum = fp_cksum_tcp(saddr, daddr, p->data, p->len);
    }
    memcpy(p->data + 16, &sum, 2);
}

/*
 * Builds and sends one segment. seq is its sequence number, len the payload taken from sndq.
 * Returns 0 or -ENOMEM.
 */
static int
send_segment(struct fp_tcb *tp, uint32_t seq, uint32_t len, uint8_t flags)
{
    struct fp_stack   *st = tp->st;
    struct fp_tcp_opts o;
    struct fp_pkt     *p;
    uint8_t           *th;
    uint32_t           win;
    size_t             olen;
    bool               syn = (flags & TH_SYN) != 0;

    p = fp_stack_pkt_alloc(st);
    if (p == NULL) {
        return -ENOMEM;
    }
    memset(&o, 0, sizeof(o));
    if (syn) {
        o.has_mss = true;
        o.mss = (uint16_t)(st->conf.mtu - FP_STK_IP_HLEN - FP_STK_TCP_HLEN);
        if (tp->t_state == FP_TCP_SYN_SENT) {
            o.has_wscale = !st->conf.no_wscale;
            o.sack_permitted = !st->conf.no_sack;
            o.has_ts = !st->conf.no_timestamps;
        } else {
            o.has_wscale = (tp->t_flags & FP_TF_RCVD_SCALE) != 0;
            o.sack_permitted = (tp->t_flags & FP_TF_SACK_PERMIT) != 0;
            o.has_ts = (tp->t_flags & FP_TF_RCVD_TSTMP) != 0;
        }
        o.wscale = tp->rcv_wscale;
    } else {
        o.has_ts = (tp->t_flags & FP_TF_RCVD_TSTMP) != 0;
        if ((tp->t_flags & FP_TF_SACK_PERMIT) != 0 && tp->ooo_head != NULL) {
            o.nsack = build_sack(tp, o.sack);
            clamp_sack(tp, &o, len);
        }
    }
    o.tsval = ts_now(tp);
    o.tsecr = tp->ts_recent;
    th = p->data;
    olen = fp_tcp_opt_write(th + FP_STK_TCP_HLEN, &o, syn);
    if (len > 0) {
        copy_from_sndq(tp, seq, th + FP_STK_TCP_HLEN + olen, len);
    }
    win = rcv_space(tp);
    if (syn) {
        win = win > 65535 ? 65535 : win; /* RFC 7323 §2.2: the SYN window is never scaled */
        if ((flags & TH_ACK) != 0 && fp_seq_gt(tp->rcv_nxt + win, tp->rcv_adv)) {
            tp->rcv_adv = tp->rcv_nxt + win;
        }
    } else {
        win >>= tp->rcv_wscale;
        if (win > 65535) {
            win = 65535;
        }
        if (fp_seq_gt(tp->rcv_nxt + (win << tp->rcv_wscale), tp->rcv_adv)) {
            tp->rcv_adv = tp->rcv_nxt + (win << tp->rcv_wscale);
        }
    }
    fp_put16(th, tp->lport);
    fp_put16(th + 2, tp->rport);
    fp_put32(th + 4, seq);
    fp_put32(th + 8, (flags & TH_ACK) != 0 ? tp->rcv_nxt : 0);
    th[12] = (uint8_t)(((FP_STK_TCP_HLEN + olen) / 4) << 4);
    th[13] = flags;
    fp_put16(th + 14, (uint16_t)win);
    th[16] = 0;
    th[17] = 0;
    th[18] = 0;
    th[19] = 0;
    p->len = (uint32_t)(FP_STK_TCP_HLEN + olen + len);
    set_cksum(st, p, tp->laddr, tp->raddr);
    if ((flags & TH_ACK) != 0) {
        tp->last_ack_sent = tp->rcv_nxt;
        tp->t_flags &= ~(uint32_t)(FP_TF_ACKNOW | FP_TF_DELACK);
        tp->t_delack_at = 0;
        tp->t_segs_unacked = 0;
    }
    fp_stack_ctr_inc(st, FP_STK_TCP_TX);
    fp_ipv4_output(st, p, tp->laddr, tp->raddr, FP_IPPROTO_TCP);
    return 0;
}

/*
 * The sequence number of a segment without data: snd_max, as BSD does, not snd_nxt. After an
 * RTO snd_nxt goes back to snd_una, which the peer may have passed; an ACK with such an old
 * sequence number fails its acceptability test and is dropped with the ACK it carries, and two
 * peers retransmitting at once then never hear each other.
 */
static uint32_t
pure_ack_seq(const struct fp_tcb *tp)
{
    uint32_t edge = tp->snd_una + tp->snd_wnd;

    if (tp->t_state == FP_TCP_SYN_SENT || tp->t_state == FP_TCP_SYN_RCVD) {
        return tp->snd_nxt;
    }
    /* Never past the peer's right edge, as Linux's tcp_acceptable_seq(). */
    return fp_seq_gt(tp->snd_max, edge) ? edge : tp->snd_max;
}

/*
 * The retransmission timeout in force: the RFC 6298 value from the RTT estimate, doubled for
 * each consecutive timeout (§5.5) up to rto_max. As in BSD, the backoff ends (t_rxtshift = 0)
 * when an ACK acknowledges new data, even a retransmission, while Karn's rule still keeps such an
 * ACK out of the RTT estimate.
 */
static uint32_t
cur_rto(const struct fp_tcb *tp)
{
    uint64_t rto = (uint64_t)tp->t_rto_us << (tp->t_rxtshift < 20 ? tp->t_rxtshift : 20);
    uint64_t max = (uint64_t)tp->st->conf.rto_max_ms * 1000;

    return (uint32_t)(rto < max ? rto : max);
}

static void
arm_rexmt(struct fp_tcb *tp)
{
    tp->t_rexmt_at = tp->st->now_us + cur_rto(tp);
    tp->t_persist_at = 0;
}

static bool
fin_state(const struct fp_tcb *tp)
{
    return tp->t_state == FP_TCP_ESTABLISHED || tp->t_state == FP_TCP_CLOSE_WAIT ||
           tp->t_state == FP_TCP_FIN_WAIT_1 || tp->t_state == FP_TCP_CLOSING ||
           tp->t_state == FP_TCP_LAST_ACK;
}

static void
note_fin_sent(struct fp_tcb *tp, uint32_t fin_seq)
{
    tp->t_flags |= FP_TF_SENTFIN;
    tp->snd_fin_seq = fin_seq;
    if (tp->t_state == FP_TCP_ESTABLISHED) {
        tp->t_state = FP_TCP_FIN_WAIT_1;
    } else if (tp->t_state == FP_TCP_CLOSE_WAIT) {
        tp->t_state = FP_TCP_LAST_ACK;
    }
}

/* Sends SYN or SYN-ACK when the SYN is not yet (re)sent. Returns true if in a SYN state. */
static bool
output_syn(struct fp_tcb *tp)
{
    uint8_t flags = TH_SYN;

    if (tp->t_state != FP_TCP_SYN_SENT && tp->t_state != FP_TCP_SYN_RCVD) {
        return false;
    }
    if (tp->t_state == FP_TCP_SYN_RCVD) {
        flags |= TH_ACK;
    }
    if (tp->snd_nxt == tp->iss) {
        if (send_segment(tp, tp->iss, 0, flags) == 0) {
            tp->snd_nxt = tp->iss + 1;
            tp->snd_max = fp_seq_max(tp->snd_max, tp->snd_nxt);
            if (tp->t_rexmt_at == 0) {
                arm_rexmt(tp);
            }
        }
    } else if ((tp->t_flags & FP_TF_ACKNOW) != 0) {
        send_segment(tp, tp->snd_nxt, 0, TH_ACK);
    }
    return true;
}

/*
 * Sends what the windows, queues and flags call for (RFC 9293 §3.8, RFC 5681). Data goes in
 * segments of t_maxseg; FIN rides on the last one once the application shut down writing.
 */
static void
tcp_output(struct fp_tcb *tp)
{
    uint32_t off;
    uint32_t avail;
    uint32_t wnd;
    uint32_t len;
    uint8_t  flags;
    bool     fin;

    if (tp->t_state == FP_TCP_CLOSED || tp->t_state == FP_TCP_LISTEN) {
        return;
    }
    if (output_syn(tp)) {
        timer_update(tp);
        return;
    }
    for (;;) {
        off = tp->snd_nxt - tp->snd_una;
        avail = off < tp->sndq_bytes ? tp->sndq_bytes - off : 0;
        /* RFC 3042 limited transmit: one new segment for each of the first two dup ACKs. */
        wnd = tp->snd_cwnd;
        if ((tp->t_flags & FP_TF_FASTRECOV) == 0 && tp->t_dupacks < 3) {
            wnd += (uint32_t)tp->t_dupacks * tp->t_maxseg;
        }
        wnd = tp->snd_wnd < wnd ? tp->snd_wnd : wnd;
        len = avail < tp->t_maxseg ? avail : tp->t_maxseg;
        if (off >= wnd) {
            len = 0;
        } else if (len > wnd - off) {
            len = wnd - off;
        }
        /* off + len == sndq_bytes also rules out a FIN already sent: then off > sndq_bytes. */
        fin = (tp->t_flags & FP_TF_SHUTWR) != 0 && fin_state(tp) && off + len == tp->sndq_bytes;
        /*
         * RFC 896 Nagle: hold a small segment of new data while data is unacknowledged. Never
         * a retransmission (snd_nxt behind snd_max): that would stall a window smaller than a
         * segment for good.
         */
        if ((tp->t_flags & FP_TF_NODELAY) == 0 && len < tp->t_maxseg && len > 0 && !fin &&
            tp->snd_max != tp->snd_una && tp->snd_nxt == tp->snd_max) {
            len = 0;
        }
        if (len == 0 && !fin) {
            if ((tp->t_flags & FP_TF_ACKNOW) != 0) {
                send_segment(tp, pure_ack_seq(tp), 0, TH_ACK);
            }
            break;
        }
        flags = TH_ACK;
        if (fin) {
            flags |= TH_FIN;
        }
        if (len > 0 && off + len == tp->sndq_bytes) {
            flags |= TH_PSH;
        }
        if (send_segment(tp, tp->snd_nxt, len, flags) < 0) {
            break;
        }
        if (tp->t_rttime == 0 && tp->snd_nxt == tp->snd_max && len > 0) {
            tp->t_rttime = tp->st->now_us; /* Karn: time only first transmissions */
            tp->t_rtseq = tp->snd_nxt;
        }
        if (fin) {
            note_fin_sent(tp, tp->snd_nxt + len);
        }
        tp->snd_nxt += len + (fin ? 1 : 0);
        if (fp_seq_gt(tp->snd_nxt, tp->snd_max)) {
            tp->snd_max = tp->snd_nxt;
        }
        if (tp->t_rexmt_at == 0) {
            arm_rexmt(tp);
        }
        if (fin) {
            break;
        }
    }
    /*
     * Liveness: data in flight always has a retransmission or persist deadline. (After an RTO
     * into a zero window nothing could be sent, so nothing above re-armed the timer.)
     */
    if (tp->snd_max != tp->snd_una && tp->t_rexmt_at == 0 && tp->t_persist_at == 0 &&
        tp->snd_wnd != 0) {
        arm_rexmt(tp);
    }
    /* Zero window with data waiting: probe (RFC 9293 §3.8.6.1). */
    if (tp->snd_wnd == 0 && tp->sndq_bytes > 0 && tp->t_rexmt_at == 0 && tp->t_persist_at == 0) {
        tp->t_persist_at =
                tp->st->now_us + (tp->t_rto_us > PERSIST_MIN_US ? tp->t_rto_us : PERSIST_MIN_US);
        tp->t_persist_shift = 0;
    }
    timer_update(tp);
}

/* Sends a segment without a TCB (RST, or a SYN-ACK carrying a SYN cookie and options o). */
static void
respond(struct fp_stack *st, const struct seg *s, uint32_t seq, uint32_t ack, uint8_t flags,
        const struct fp_tcp_opts *o)
{
    struct fp_pkt *p = fp_stack_pkt_alloc(st);
    uint8_t       *th;
    uint32_t       hl = FP_STK_TCP_HLEN;

    if (p == NULL) {
        return;
    }
    th = p->data;
    if (o != NULL) {
        hl += (uint32_t)fp_tcp_opt_write(th + FP_STK_TCP_HLEN, o, true);
    }
    fp_put16(th, s->dport);
    fp_put16(th + 2, s->sport);
    fp_put32(th + 4, seq);
    fp_put32(th + 8, ack);
    th[12] = (uint8_t)((hl / 4) << 4);
    th[13] = flags;
    fp_put16(th + 14, (flags & TH_SYN) != 0 ? 65535 : 0);
    memset(th + 16, 0, 4);
    p->len = hl;
    set_cksum(st, p, s->daddr, s->saddr);
    if ((flags & TH_RST) != 0) {
        fp_stack_ctr_inc(st, FP_STK_TCP_RST_TX);
    }
    fp_stack_ctr_inc(st, FP_STK_TCP_TX);
    fp_ipv4_output(st, p, s->daddr, s->saddr, FP_IPPROTO_TCP);
}

/* RFC 9293 §3.10.7.1: the reset for a segment that has no connection. */
static void
respond_rst(struct fp_stack *st, const struct seg *s)
{
    uint32_t seglen = s->len + ((s->flags & TH_SYN) ? 1 : 0) + ((s->flags & TH_FIN) ? 1 : 0);

    if ((s->flags & TH_RST) != 0) {
        return;
    }
    if ((s->flags & TH_ACK) != 0) {
        respond(st, s, s->ack, 0, TH_RST, NULL);
    } else {
        respond(st, s, 0, s->seq + seglen, TH_RST | TH_ACK, NULL);
    }
}

/* Sends a pure ACK, subject to the RFC 5961 §7 rate limit when challenge is true. */
static void
send_ack(struct fp_tcb *tp, bool challenge)
{
    struct fp_stack *st = tp->st;

    if (challenge) {
        if (st->now_us - tp->t_chack_epoch >= 1000000) {
            tp->t_chack_epoch = st->now_us;
            tp->t_chack_count = 0;
        }
        if (tp->t_chack_count >= st->conf.challenge_ack_limit) {
            fp_stack_ctr_inc(st, FP_STK_TCP_CHALLENGE_LIMIT);
            return;
        }
        tp->t_chack_count++;
        fp_stack_ctr_inc(st, FP_STK_TCP_CHALLENGE_ACK);
    }
    send_segment(tp, pure_ack_seq(tp), 0, TH_ACK);
}

static void
send_rst(struct fp_tcb *tp)
{
    if (send_segment(tp, tp->snd_max, 0, TH_RST | TH_ACK) == 0) {
        fp_stack_ctr_inc(tp->st, FP_STK_TCP_RST_TX);
    }
}

/* ---- Timers ---- */

static void
timer_update(struct fp_tcb *tp)
{
    uint64_t     d[5] = {tp->t_rexmt_at, tp->t_delack_at, tp->t_persist_at, tp->t_keep_at,
                         tp->t_2msl_at};
    uint64_t     best = 0;
    unsigned int i;

    if ((tp->t_flags & FP_TF_REAPING) != 0) {
        return;
    }
    for (i = 0; i < 5; i++) {
        if (d[i] != 0 && (best == 0 || d[i] < best)) {
            best = d[i];
        }
    }
    if (best == 0) {
        fp_timer_cancel(&tp->st->wheel, &tp->t_timer);
        return;
    }
    if (fp_timer_armed(&tp->t_timer) &&
        tp->t_timer.expire_tick == (best + tp->st->wheel.tick_us - 1) / tp->st->wheel.tick_us) {
        return;
    }
    fp_timer_arm(&tp->st->wheel, &tp->t_timer, best);
}

/* RFC 6298 §5.4-5.7, with RFC 6582 §3.2 step 1 after a timeout. */
static void
rexmt_timeout(struct fp_tcb *tp)
{
    struct fp_stack *st = tp->st;
    uint32_t         limit;

    tp->t_rexmt_at = 0;
    limit = (tp->t_state == FP_TCP_SYN_SENT || tp->t_state == FP_TCP_SYN_RCVD) ? st->conf.syn_rexmt
                                                                               : st->conf.max_rexmt;
    if (tp->t_rxtshift >= limit) {
        fp_stack_ctr_inc(st, FP_STK_TCP_CONN_TIMEOUT);
        if (tp->t_state != FP_TCP_SYN_SENT) {
            send_rst(tp);
        }
        tcb_release(tp, -ETIMEDOUT);
        return;
    }
    tp->t_rxtshift++; /* RFC 6298 §5.5: back off (cur_rto doubles) */
    fp_stack_ctr_inc(st, FP_STK_TCP_REXMT_TIMEOUT);
    tp->t_rttime = 0;
    if (tp->t_state == FP_TCP_SYN_SENT || tp->t_state == FP_TCP_SYN_RCVD) {
        tp->snd_nxt = tp->iss;
    } else {
        tp->cc->on_timeout(tp);
        tp->snd_recover = tp->snd_max;
        tp->t_flags &= ~(uint32_t)FP_TF_FASTRECOV;
        tp->t_dupacks = 0;
        tp->snd_nsack = 0;
        tp->snd_nxt = tp->snd_una;
    }
    fp_stack_ctr_inc(st, FP_STK_TCP_REXMT_SEGS);
    tcp_output(tp);
}

/* Zero-window probe or keepalive: an ACK for old data makes the peer answer with its state. */
static void
send_probe(struct fp_tcb *tp)
{
    send_segment(tp, tp->snd_una - 1, 0, TH_ACK);
}

static void
persist_timeout(struct fp_tcb *tp)
{
    uint64_t next = (uint64_t)(tp->t_rto_us > PERSIST_MIN_US ? tp->t_rto_us : PERSIST_MIN_US)
                    << (tp->t_persist_shift < 6 ? ++tp->t_persist_shift : 6);

    fp_stack_ctr_inc(tp->st, FP_STK_TCP_PERSIST_PROBE);
    if (next > (uint64_t)tp->st->conf.rto_max_ms * 1000) {
        next = (uint64_t)tp->st->conf.rto_max_ms * 1000;
    }
    tp->t_persist_at = tp->st->now_us + next;
    send_probe(tp);
}

static void
keep_timeout(struct fp_tcb *tp)
{
    struct fp_stack *st = tp->st;

    if (tp->t_keep_probes >= st->conf.keepalive_probes) {
        fp_stack_ctr_inc(st, FP_STK_TCP_KEEPALIVE_DROP);
        send_rst(tp);
        tcb_release(tp, -ETIMEDOUT);
        return;
    }
    tp->t_keep_probes++;
    fp_stack_ctr_inc(st, FP_STK_TCP_KEEPALIVE_PROBE);
    tp->t_keep_at = st->now_us + (uint64_t)st->conf.keepalive_intvl_ms * 1000;
    send_probe(tp);
}

static void
tcp_timeout(void *arg)
{
    struct fp_tcb *tp = arg;
    uint64_t       now = tp->st->now_us;

    if (tp->t_2msl_at != 0 && tp->t_2msl_at <= now) {
        if (tp->rcvq_bytes > 0 && (tp->t_flags & FP_TF_CLOSED_APP) == 0) {
            /*
             * The application has not read all the data yet (it pushes back, e.g. on a slow
             * client of a proxy): releasing now would drop it. A socket keeps its data until
             * close() too; the wait starts again, and ends at the latest with the close.
             */
            tp->t_2msl_at = now + (uint64_t)tp->st->conf.time_wait_ms * 1000;
            timer_update(tp);
            return;
        }
        tcb_release(tp, 0);
        return;
    }
    if (tp->t_rexmt_at != 0 && tp->t_rexmt_at <= now) {
        rexmt_timeout(tp);
        if ((tp->t_flags & FP_TF_REAPING) != 0) {
            return;
        }
    }
    if (tp->t_persist_at != 0 && tp->t_persist_at <= now) {
        persist_timeout(tp);
    }
    if (tp->t_keep_at != 0 && tp->t_keep_at <= now) {
        keep_timeout(tp);
        if ((tp->t_flags & FP_TF_REAPING) != 0) {
            return;
        }
    }
    if (tp->t_delack_at != 0 && tp->t_delack_at <= now) {
        tp->t_delack_at = 0;
        tp->t_flags |= FP_TF_ACKNOW;
        fp_stack_ctr_inc(tp->st, FP_STK_TCP_DELACK);
        tcp_output(tp);
    }
    timer_update(tp);
}

static void
enter_time_wait(struct fp_tcb *tp)
{
    tp->t_state = FP_TCP_TIME_WAIT;
    tp->t_rexmt_at = 0;
    tp->t_persist_at = 0;
    tp->t_keep_at = 0;
    tp->t_delack_at = 0;
    tp->t_2msl_at = tp->st->now_us + (uint64_t)tp->st->conf.time_wait_ms * 1000;
    fp_pkt_free_chain(tp->sndq_head);
    tp->sndq_head = NULL;
    tp->sndq_tail = NULL;
    tp->snd_hint = NULL;
    tp->sndq_bytes = 0;
    if ((tp->t_flags & FP_TF_CLOSED_APP) == 0) {
        post_event(tp, FP_EV_READABLE);
    }
}

/* ---- Input ---- */

/* RFC 6298 §2: a new RTT sample r (us). */
static void
rtt_sample(struct fp_tcb *tp, uint32_t r)
{
    struct fp_stack *st = tp->st;
    uint32_t         delta;
    uint64_t         rto;

    if (r == 0) {
        r = 1;
    }
    if (tp->t_srtt_us == 0) {
        tp->t_srtt_us = r;
        tp->t_rttvar_us = r / 2;
    } else {
        delta = tp->t_srtt_us > r ? tp->t_srtt_us - r : r - tp->t_srtt_us;
        tp->t_rttvar_us = tp->t_rttvar_us - tp->t_rttvar_us / 4 + delta / 4;
        tp->t_srtt_us = tp->t_srtt_us - tp->t_srtt_us / 8 + r / 8;
    }
    rto = (uint64_t)tp->t_srtt_us + (4ull * tp->t_rttvar_us > 1000 ? 4ull * tp->t_rttvar_us : 1000);
    if (rto < (uint64_t)st->conf.rto_min_ms * 1000) {
        rto = (uint64_t)st->conf.rto_min_ms * 1000;
    }
    if (rto > (uint64_t)st->conf.rto_max_ms * 1000) {
        rto = (uint64_t)st->conf.rto_max_ms * 1000;
    }
    tp->t_rto_us = (uint32_t)rto;
}

/* Applies the options of a SYN we received (RFC 7323 §2.2, §3.2; RFC 2018 §2). */
static void
take_syn_options(struct fp_tcb *tp, const struct seg *s, bool we_offered)
{
    struct fp_stack *st = tp->st;
    uint32_t         mtu_mss = st->conf.mtu - FP_STK_IP_HLEN - FP_STK_TCP_HLEN;
    uint32_t         mss = s->opt.has_mss ? s->opt.mss : 536;

    if (mss > mtu_mss) {
        mss = mtu_mss;
    }
    if (mss < 64) {
        mss = 64;
    }
    tp->t_peer_mss = (uint16_t)mss;
    if (s->opt.has_wscale && !st->conf.no_wscale && we_offered) {
        tp->t_flags |= FP_TF_RCVD_SCALE;
        tp->snd_wscale = s->opt.wscale;
    } else {
        tp->snd_wscale = 0;
        tp->rcv_wscale = 0;
    }
    if (s->opt.has_ts && !st->conf.no_timestamps) {
        tp->t_flags |= FP_TF_RCVD_TSTMP;
        tp->ts_recent = s->opt.tsval;
        tp->ts_recent_age = st->now_us;
        mss -= 12;
    }
    if (s->opt.sack_permitted && !st->conf.no_sack) {
        tp->t_flags |= FP_TF_SACK_PERMIT;
    }
    tp->t_maxseg = (uint16_t)mss;
}

static void
conn_established(struct fp_tcb *tp)
{
    tp->t_state = FP_TCP_ESTABLISHED;
    tp->t_rxtshift = 0; /* SYN retransmissions do not back off the data's timer */
    tp->cc = fp_tcp_cc_get((enum fp_tcp_cc_algo)tp->t_cc_algo);
    tp->cc->init(tp);
    fp_stack_ctr_inc(tp->st, FP_STK_TCP_ESTABLISHED);
    if (tp->st->conf.keepalive_idle_ms != 0) {
        tp->t_keep_at = tp->st->now_us + (uint64_t)tp->st->conf.keepalive_idle_ms * 1000;
    }
}

static void
update_window(struct fp_tcb *tp, const struct seg *s)
{
    uint32_t wnd = s->wnd << tp->snd_wscale;

    /* RFC 9293 §3.10.7.4, fifth check: only a newer segment may update the window. */
    if (fp_seq_lt(tp->snd_wl1, s->seq) ||
        (tp->snd_wl1 == s->seq && fp_seq_leq(tp->snd_wl2, s->ack))) {
        tp->snd_wnd = wnd;
        tp->snd_wl1 = s->seq;
        tp->snd_wl2 = s->ack;
        if (wnd > tp->max_sndwnd) {
            tp->max_sndwnd = wnd;
        }
        if (wnd > 0) {
            tp->t_persist_at = 0;
        }
    }
}

/* Drops n acknowledged bytes from the head of the send queue. */
static void
sndq_drop(struct fp_tcb *tp, uint32_t n)
{
    struct fp_pkt *p;

    if (n > tp->sndq_bytes) {
        n = tp->sndq_bytes;
    }
    tp->sndq_bytes -= n;
    while (n > 0) {
        p = tp->sndq_head;
        if (p->len <= n) {
            n -= p->len;
            tp->sndq_head = p->next;
            if (tp->snd_hint == p) {
                tp->snd_hint = NULL;
            }
            fp_pkt_free(p);
        } else {
            p->data += n;
            p->len -= n;
            p->seq += n;
            n = 0;
        }
    }
    if (tp->sndq_head == NULL) {
        tp->sndq_tail = NULL;
    }
}

/*
 * Retransmits one segment at snd_una (fast retransmit and NewReno partial ACKs): at most what was
 * sent before (snd_max), never new data, which would leave snd_max behind the peer's ACKs.
 */
static void
retransmit_head(struct fp_tcb *tp)
{
    uint32_t sent = tp->snd_max - tp->snd_una;
    uint32_t len;
    uint8_t  flags = TH_ACK;
    bool fin_sent = (tp->t_flags & FP_TF_SENTFIN) != 0 && fp_seq_gt(tp->snd_max, tp->snd_fin_seq);

    if (fin_sent) {
        sent--; /* the FIN's sequence number carries no byte */
    }
    len = sent < tp->sndq_bytes ? sent : tp->sndq_bytes;
    len = len < tp->t_maxseg ? len : tp->t_maxseg;
    if (fin_sent && tp->snd_una + len == tp->snd_fin_seq) {
        flags |= TH_FIN;
    }
    if (len == 0 && (flags & TH_FIN) == 0) {
        return;
    }
    tp->t_rttime = 0;
    fp_stack_ctr_inc(tp->st, FP_STK_TCP_REXMT_SEGS);
    send_segment(tp, tp->snd_una, len, flags);
}

/*
 * RFC 2018 §4: merges the peer's SACK blocks into the scoreboard. Blocks outside
 * (snd_una, snd_max] are ignored; blocks the cumulative ACK covered are dropped.
 */
static void
sack_update(struct fp_tcb *tp, const struct seg *s)
{
    struct fp_sack_block *sb = tp->snd_sack;
    struct fp_sack_block  b;
    uint8_t               i;
    uint8_t               j;
    uint8_t               n;

    for (i = 0; i < s->opt.nsack; i++) {
        b = s->opt.sack[i];
        if (!fp_seq_lt(b.start, b.end) || fp_seq_leq(b.end, s->ack) ||
            fp_seq_gt(b.end, tp->snd_max) || fp_seq_lt(b.start, tp->snd_una)) {
            continue;
        }
        /* Insert sorted, then merge overlapping or adjacent neighbours. */
        n = tp->snd_nsack;
        if (n == FP_STK_SACK_SB) {
            n--; /* full: forget the highest block */
        }
        for (j = n; j > 0 && fp_seq_gt(sb[j - 1].start, b.start); j--) {
            sb[j] = sb[j - 1];
        }
        sb[j] = b;
        n++;
        for (j = 0; j + 1 < n;) {
            if (fp_seq_geq(sb[j].end, sb[j + 1].start)) {
                sb[j].end = fp_seq_max(sb[j].end, sb[j + 1].end);
                memmove(&sb[j + 1], &sb[j + 2], (size_t)(n - j - 2) * sizeof(*sb));
                n--;
            } else {
                j++;
            }
        }
        tp->snd_nsack = n;
    }
    /* Drop what the cumulative ACK covers. */
    for (i = 0; i < tp->snd_nsack && fp_seq_leq(sb[i].end, s->ack); i++) {
    }
    if (i > 0) {
        memmove(sb, sb + i, (size_t)(tp->snd_nsack - i) * sizeof(*sb));
        tp->snd_nsack = (uint8_t)(tp->snd_nsack - i);
    }
}

/*
 * SACK loss recovery (RFC 6675 §5, simplified): retransmits up to max_segs segments from the
 * holes below the highest SACKed block, starting after the last one retransmitted. Without SACK
 * information, and if fallback_head, this is NewReno's single retransmission at snd_una.
 */
static void
retransmit_holes(struct fp_tcb *tp, unsigned int max_segs, bool fallback_head)
{
    const struct fp_sack_block *sb = tp->snd_sack;
    uint32_t                    seq;
    uint32_t                    len;
    uint8_t                     i;

    if ((tp->t_flags & FP_TF_SACK_PERMIT) == 0 || tp->snd_nsack == 0) {
        if (fallback_head) {
            retransmit_head(tp);
        }
        return;
    }
    seq = fp_seq_max(tp->snd_una, tp->snd_sack_hint);
    while (max_segs > 0) {
        for (i = 0; i < tp->snd_nsack && fp_seq_geq(seq, sb[i].start); i++) {
            if (fp_seq_lt(seq, sb[i].end)) {
                seq = sb[i].end; /* inside a SACKed block: skip it */
            }
        }
        if (i == tp->snd_nsack) {
            return; /* no hole left below the highest SACKed byte */
        }
        len = sb[i].start - seq;
        len = len < tp->t_maxseg ? len : tp->t_maxseg;
        tp->t_rttime = 0;
        if (send_segment(tp, seq, len, TH_ACK) < 0) {
            return;
        }
        fp_stack_ctr_inc(tp->st, FP_STK_TCP_REXMT_SEGS);
        fp_stack_ctr_inc(tp->st, FP_STK_TCP_SACK_REXMT);
        seq += len;
        tp->snd_sack_hint = seq;
        max_segs--;
    }
}

static uint32_t
sacked_bytes(const struct fp_tcb *tp)
{
    uint32_t n = 0;
    uint8_t  i;

    for (i = 0; i < tp->snd_nsack; i++) {
        n += tp->snd_sack[i].end - tp->snd_sack[i].start;
    }
    return n;
}

/* RFC 5681 §3.2 and RFC 6582 §3.2: duplicate ACK handling. */
static void
dup_ack(struct fp_tcb *tp)
{
    fp_stack_ctr_inc(tp->st, FP_STK_TCP_DUP_ACK);
    if ((tp->t_flags & FP_TF_FASTRECOV) != 0) {
        tp->snd_cwnd += tp->t_maxseg;   /* inflate for the segment that left the network */
        retransmit_holes(tp, 1, false); /* a duplicate ACK alone never resends snd_una */
        return;
    }
    /*
     * Three duplicate ACKs, or (RFC 6675 §5, IsLost) three segments' worth of SACKed data above
     * snd_una: the second also works when the peer's ACKs ride on data, which RFC 5681 does not
     * count as duplicates.
     */
    if (++tp->t_dupacks < 3 && sacked_bytes(tp) < 3u * tp->t_maxseg) {
        return;
    }
    /* RFC 6582 §3.2 step 2: no new recovery for losses of the window already recovered. */
    if (fp_seq_lt(tp->snd_una, tp->snd_recover)) {
        return;
    }
    fp_stack_ctr_inc(tp->st, FP_STK_TCP_FAST_REXMT);
    tp->cc->on_loss(tp);
    tp->snd_recover = tp->snd_max;
    tp->t_flags |= FP_TF_FASTRECOV;
    tp->snd_sack_hint = tp->snd_una;
    retransmit_holes(tp, 1, true);
    tp->snd_cwnd = tp->snd_ssthresh + 3u * tp->t_maxseg;
}

/* New data acknowledged: RTT, congestion window, queues, timers. */
static void
new_ack(struct fp_tcb *tp, const struct seg *s)
{
    uint32_t acked = s->ack - tp->snd_una;
    uint32_t data_acked = acked;
    uint32_t flight;

    /*
     * The right edge of the send window stays where the last window update put it: an ACK
     * that moves snd_una without updating the window (an older segment, RFC 9293 §3.10.7.4)
     * must not move the edge along (BSD's snd_wnd -= acked). Otherwise we send past the
     * peer's window.
     */
    tp->snd_wnd = tp->snd_wnd > acked ? tp->snd_wnd - acked : 0;

    if ((tp->t_flags & FP_TF_SENTFIN) != 0 && fp_seq_gt(s->ack, tp->snd_fin_seq)) {
        data_acked--; /* the FIN takes a sequence number, not a byte of the queue */
    }
    if (tp->t_rttime != 0 && fp_seq_gt(s->ack, tp->t_rtseq)) {
        rtt_sample(tp, (uint32_t)(tp->st->now_us - tp->t_rttime));
        tp->t_rttime = 0;
    }
    if ((tp->t_flags & FP_TF_FASTRECOV) != 0) {
        if (fp_seq_geq(s->ack, tp->snd_recover)) {
            /* RFC 6582 §3.2 step 3: full acknowledgment, deflate. */
            flight = tp->snd_max - s->ack;
            tp->snd_cwnd = flight + tp->t_maxseg < tp->snd_ssthresh ? flight + tp->t_maxseg
                                                                    : tp->snd_ssthresh;
            tp->t_flags &= ~(uint32_t)FP_TF_FASTRECOV;
            tp->t_dupacks = 0;
        } else {
            /* Step 4: partial acknowledgment, retransmit the next hole. */
            sndq_drop(tp, data_acked);
            tp->snd_una = s->ack;
            retransmit_holes(tp, 2, true);
            tp->snd_cwnd = tp->snd_cwnd > acked ? tp->snd_cwnd - acked : 0;
            tp->snd_cwnd += tp->t_maxseg;
            tp->t_rexmt_at = tp->st->now_us + cur_rto(tp);
            data_acked = 0;
            acked = 0;
        }
    } else {
        tp->t_dupacks = 0;
        tp->cc->on_ack(tp, acked);
    }
    if (acked > 0) {
        sndq_drop(tp, data_acked);
        tp->snd_una = s->ack;
    }
    tp->t_rxtshift = 0;
    if (fp_seq_lt(tp->snd_nxt, tp->snd_una)) {
        tp->snd_nxt = tp->snd_una;
    }
    /* RFC 6298 §5.2-5.3. */
    if (tp->snd_una == tp->snd_max) {
        tp->t_rexmt_at = 0;
    } else {
        tp->t_rexmt_at = tp->st->now_us + cur_rto(tp);
    }
    if ((tp->t_flags & FP_TF_WANT_WRITE) != 0 && tp->snd_buf - tp->sndq_bytes >= tp->snd_buf / 4) {
        tp->t_flags &= ~(uint32_t)FP_TF_WANT_WRITE;
        post_event(tp, FP_EV_WRITABLE);
    }
}

static bool
our_fin_acked(const struct fp_tcb *tp)
{
    return (tp->t_flags & FP_TF_SENTFIN) != 0 && fp_seq_gt(tp->snd_una, tp->snd_fin_seq);
}

/*
 * RFC 9293 §3.10.7.4, fifth check, with RFC 5961 §5.2. Returns false when the segment must be
 * dropped (the connection may have been released).
 */
static bool
process_ack(struct fp_tcb *tp, const struct seg *s)
{
    struct fp_stack *st = tp->st;
    uint32_t         maxwnd = tp->max_sndwnd > 65535 ? tp->max_sndwnd : 65535;

    if (fp_seq_gt(s->ack, tp->snd_max)) {
        fp_stack_ctr_inc(st, FP_STK_TCP_ACK_TOO_NEW);
        send_ack(tp, false);
        return false;
    }
    if (fp_seq_lt(s->ack, tp->snd_una - maxwnd)) {
        fp_stack_ctr_inc(st, FP_STK_TCP_ACK_TOO_OLD);
        send_ack(tp, true);
        return false;
    }
    if ((tp->t_flags & FP_TF_SACK_PERMIT) != 0 && (s->opt.nsack > 0 || tp->snd_nsack > 0)) {
        sack_update(tp, s);
    }
    if (fp_seq_gt(s->ack, tp->snd_una)) {
        new_ack(tp, s);
    } else if (s->ack == tp->snd_una && tp->snd_max != tp->snd_una &&
               ((s->len == 0 && (s->flags & TH_FIN) == 0 &&
                 (s->wnd << tp->snd_wscale) == tp->snd_wnd) ||
                (s->opt.nsack > 0 && (tp->t_flags & FP_TF_SACK_PERMIT) != 0))) {
        dup_ack(tp); /* RFC 5681's duplicate, or any ACK bringing SACK information (RFC 6675) */
    }
    update_window(tp, s);
    switch (tp->t_state) {
    case FP_TCP_FIN_WAIT_1:
        if (our_fin_acked(tp)) {
            tp->t_state = FP_TCP_FIN_WAIT_2;
            if ((tp->t_flags & FP_TF_CLOSED_APP) != 0) {
                tp->t_2msl_at = st->now_us + FIN_WAIT_2_US;
            }
        }
        break;
    case FP_TCP_CLOSING:
        if (our_fin_acked(tp)) {
            enter_time_wait(tp);
        }
        break;
    case FP_TCP_LAST_ACK:
        if (our_fin_acked(tp) && tp->rcvq_bytes > 0 && (tp->t_flags & FP_TF_CLOSED_APP) == 0) {
            /* Unread data the application still holds a handle for: keep the TCB (quiet, as
             * in TIME-WAIT) until it is read and closed, instead of dropping the data. */
            enter_time_wait(tp);
        } else if (our_fin_acked(tp)) {
            tcb_release(tp, 0);
            return false;
        }
        break;
    default:
        break;
    }
    return true;
}

static void
rcvq_append(struct fp_tcb *tp, struct fp_pkt *p)
{
    p->next = NULL;
    if (tp->rcvq_tail == NULL) {
        tp->rcvq_head = p;
    } else {
        tp->rcvq_tail->next = p;
    }
    tp->rcvq_tail = p;
    tp->rcvq_bytes += p->len;
}

/* Trims n bytes from the front of a queued segment. */
static void
pkt_trim_front(struct fp_pkt *p, uint32_t n)
{
    p->data += n;
    p->len -= n;
    p->seq += n;
}

/*
 * Inserts p (payload, seq) into the out-of-order queue, sorted and without overlap: parts
 * already queued are cut from p, and queued segments p covers entirely are freed.
 */
static void
ooo_insert(struct fp_tcb *tp, struct fp_pkt *p)
{
    struct fp_stack *st = tp->st;
    struct fp_pkt  **pp = &tp->ooo_head;
    struct fp_pkt   *q;
    uint32_t         end;

    while (*pp != NULL && fp_seq_leq((*pp)->seq + (*pp)->len, p->seq)) {
        pp = &(*pp)->next;
    }
    q = *pp;
    if (q != NULL && fp_seq_leq(q->seq, p->seq)) {
        end = q->seq + q->len;
        if (fp_seq_geq(end, p->seq + p->len)) {
            fp_stack_ctr_add(st, FP_STK_TCP_DUP_DATA, p->len);
            q->flags |= p->flags & FP_PKT_F_FIN;
            fp_pkt_free(p);
            return;
        }
        pkt_trim_front(p, end - p->seq);
        pp = &q->next;
    }
    while ((q = *pp) != NULL && fp_seq_lt(q->seq, p->seq + p->len)) {
        if (fp_seq_leq(q->seq + q->len, p->seq + p->len)) {
            *pp = q->next;
            tp->ooo_bytes -= q->len;
            p->flags |= q->flags & FP_PKT_F_FIN;
            fp_pkt_free(q);
            continue;
        }
        p->len = q->seq - p->seq;
        p->flags &= ~(uint32_t)FP_PKT_F_FIN;
        break;
    }
    p->next = *pp;
    *pp = p;
    tp->rcv_last_ooo = p->seq;
    tp->ooo_bytes += p->len;
    fp_stack_ctr_inc(st, FP_STK_TCP_OOO);
}

static void
take_fin(struct fp_tcb *tp)
{
    tp->rcv_nxt++;
    tp->t_flags |= FP_TF_RCVD_FIN | FP_TF_ACKNOW;
    if ((tp->t_flags & FP_TF_CLOSED_APP) == 0) {
        post_event(tp, FP_EV_READABLE);
    }
    /* RFC 9293 §3.10.7.4, eighth check. */
    switch (tp->t_state) {
    case FP_TCP_SYN_RCVD:
    case FP_TCP_ESTABLISHED:
        tp->t_state = FP_TCP_CLOSE_WAIT;
        break;
    case FP_TCP_FIN_WAIT_1:
        if (our_fin_acked(tp)) {
            enter_time_wait(tp);
        } else {
            tp->t_state = FP_TCP_CLOSING; /* simultaneous close */
        }
        break;
    case FP_TCP_FIN_WAIT_2:
        tp->t_2msl_at = 0;
        enter_time_wait(tp);
        break;
    case FP_TCP_TIME_WAIT:
        tp->rcv_nxt--; /* a retransmitted FIN: restart the 2 MSL wait */
        enter_time_wait(tp);
        break;
    default:
        tp->rcv_nxt--; /* FIN already taken */
        break;
    }
}

/* Moves segments that became in-order from the out-of-order queue. */
static void
ooo_pull(struct fp_tcb *tp)
{
    struct fp_pkt *p;
    bool           fin;

    while ((p = tp->ooo_head) != NULL && fp_seq_leq(p->seq, tp->rcv_nxt)) {
        tp->ooo_head = p->next;
        tp->ooo_bytes -= p->len;
        fin = (p->flags & FP_PKT_F_FIN) != 0;
        if (fp_seq_leq(p->seq + p->len, tp->rcv_nxt)) {
            fp_pkt_free(p);
        } else {
            pkt_trim_front(p, tp->rcv_nxt - p->seq);
            tp->rcv_nxt += p->len;
            rcvq_append(tp, p);
        }
        if (fin) {
            take_fin(tp);
            fp_pkt_free_chain(tp->ooo_head);
            tp->ooo_head = NULL;
            tp->ooo_bytes = 0;
            return;
        }
    }
}

/* RFC 9293 §3.10.7.4 seventh and eighth checks: segment text and FIN. */
static void
process_data(struct fp_tcb *tp, struct seg *s)
{
    struct fp_stack *st = tp->st;
    struct fp_pkt   *p = s->pkt;
    bool             fin = (s->flags & TH_FIN) != 0;
    bool             had_ooo = tp->ooo_head != NULL;
    uint32_t         wnd_end = tp->rcv_nxt + rcv_space(tp);
    uint32_t         n;

    if (tp->t_state != FP_TCP_ESTABLISHED && tp->t_state != FP_TCP_FIN_WAIT_1 &&
        tp->t_state != FP_TCP_FIN_WAIT_2 && tp->t_state != FP_TCP_SYN_RCVD) {
        if (fin && tp->t_state == FP_TCP_TIME_WAIT) {
            take_fin(tp);
        }
        if (s->len > 0 || fin) {
            tp->t_flags |= FP_TF_ACKNOW;
        }
        return;
    }
    if (s->len == 0) {
        if (fin && s->seq == tp->rcv_nxt) {
            take_fin(tp);
        } else if (fin) {
            tp->t_flags |= FP_TF_ACKNOW;
        }
        return;
    }
    p->seq = s->seq;
    p->flags = fin ? FP_PKT_F_FIN : 0;
    if (fp_seq_lt(p->seq, tp->rcv_nxt)) {
        n = tp->rcv_nxt - p->seq;
        fp_stack_ctr_add(st, FP_STK_TCP_DUP_DATA, n);
        pkt_trim_front(p, n);
    }
    if (fp_seq_gt(p->seq + p->len, wnd_end)) {
        fp_stack_ctr_add(st, FP_STK_TCP_RCVBUF_DROP, p->seq + p->len - wnd_end);
        p->len = wnd_end - p->seq; /* beyond the window: the peer will send it again */
        p->flags = 0;
    }
    tp->t_flags |= FP_TF_ACKNOW;
    if ((tp->t_flags & FP_TF_CLOSED_APP) != 0 && (tp->t_flags & FP_TF_ACCEPTQ) == 0 &&
        p->seq == tp->rcv_nxt) {
        /* Nobody will read: acknowledge and discard. */
        tp->rcv_nxt += p->len;
        if ((p->flags & FP_PKT_F_FIN) != 0) {
            take_fin(tp);
        }
        return;
    }
    if (p->len == 0) {
        if ((p->flags & FP_PKT_F_FIN) != 0 && p->seq == tp->rcv_nxt) {
            take_fin(tp);
        }
        return;
    }
    s->pkt = NULL;
    if (p->seq != tp->rcv_nxt) {
        ooo_insert(tp, p);
        return;
    }
    tp->rcv_nxt += p->len;
    rcvq_append(tp, p);
    if ((p->flags & FP_PKT_F_FIN) != 0) {
        take_fin(tp);
    } else if (tp->ooo_head != NULL) {
        ooo_pull(tp);
    }
    if ((tp->t_flags & FP_TF_CLOSED_APP) == 0) {
        post_event(tp, FP_EV_READABLE);
    }
    /* RFC 1122 §4.2.3.2 / RFC 5681 §4.2: ACK every second full segment, else delay. */
    if (!had_ooo && (p->flags & FP_PKT_F_FIN) == 0 && st->conf.delack_ms != UINT32_MAX &&
        ++tp->t_segs_unacked < 2) {
        tp->t_flags &= ~(uint32_t)FP_TF_ACKNOW;
        if ((tp->t_flags & FP_TF_DELACK) == 0) {
            tp->t_flags |= FP_TF_DELACK;
            tp->t_delack_at = st->now_us + (uint64_t)st->conf.delack_ms * 1000;
        }
    }
}

/* RFC 7323 §5.3: PAWS. Returns true if the segment is old and must be dropped. */
static bool
paws_reject(struct fp_tcb *tp, const struct seg *s)
{
    if ((tp->t_flags & FP_TF_RCVD_TSTMP) == 0 || !s->opt.has_ts || (s->flags & TH_RST) != 0) {
        return false;
    }
    if (fp_seq_geq(s->opt.tsval, tp->ts_recent)) {
        return false;
    }
    if (tp->st->now_us - tp->ts_recent_age > PAWS_IDLE_US) {
        tp->ts_recent = s->opt.tsval; /* RFC 7323 §5.5: ts_recent is too old to trust */
        return false;
    }
    return true;
}

/* RFC 9293 §3.10.7.4, first check: is any of the segment in the receive window? */
static bool
seq_acceptable(const struct fp_tcb *tp, const struct seg *s)
{
    uint32_t wnd = rcv_space(tp);
    uint32_t len = s->len + ((s->flags & TH_SYN) ? 1 : 0) + ((s->flags & TH_FIN) ? 1 : 0);

    if (len == 0) {
        /*
         * The right edge is included (as BSD's trimming does): our pure ACKs carry snd_max, and
         * a peer whose window we filled exactly sends its ACKs at our right edge.
         */
        return fp_seq_geq(s->seq, tp->rcv_nxt) && fp_seq_leq(s->seq, tp->rcv_nxt + wnd);
    }
    if (wnd == 0) {
        /*
         * RFC 9293 §3.10.7.4: with a zero window no data is acceptable, "but special allowance
         * should be made to accept valid ACKs". An in-sequence segment goes on, its ACK is
         * processed and its data trimmed away; dropping it whole deadlocks two peers that
         * both have a closed window and data to send.
         */
        return s->seq == tp->rcv_nxt;
    }
    return fp_seq_in(s->seq, tp->rcv_nxt, tp->rcv_nxt + wnd) ||
           fp_seq_in(s->seq + len - 1, tp->rcv_nxt, tp->rcv_nxt + wnd);
}

/* Moves an established passive connection from the SYN queue to the accept queue. */
static bool
to_accept_queue(struct fp_tcb *tp)
{
    struct fp_tcp_listener *l = tp->t_lsn;

    if (l == NULL) {
        if ((tp->t_flags & FP_TF_CLOSED_APP) != 0) {
            send_rst(tp); /* its listener went away: nobody can accept it */
            tcb_release(tp, 0);
            return false;
        }
        return true; /* simultaneous open: the application already has the handle */
    }
    if ((tp->t_flags & FP_TF_COOKIE) == 0) {
        l->nb_syn--;
    }
    if (l->nb_accept >= l->backlog) {
        fp_stack_ctr_inc(tp->st, FP_STK_TCP_ACCEPTQ_FULL);
        tp->t_lsn = NULL;
        send_rst(tp);
        tcb_release(tp, -ECONNRESET);
        return false;
    }
    tp->t_flags |= FP_TF_ACCEPTQ;
    tp->lnext = NULL;
    if (l->acceptq_tail == NULL) {
        l->acceptq_head = tp;
    } else {
        l->acceptq_tail->lnext = tp;
    }
    l->acceptq_tail = tp;
    l->nb_accept++;
    post_accept(l);
    return true;
}

/* The ACK that completes a passive (or simultaneous) open. */
static bool
syn_rcvd_ack(struct fp_tcb *tp, const struct seg *s)
{
    if (fp_seq_leq(s->ack, tp->snd_una) || fp_seq_gt(s->ack, tp->snd_max)) {
        respond_rst(tp->st, s);
        return false;
    }
    tp->snd_una = tp->iss + 1;
    tp->t_rexmt_at = 0;
    if (tp->t_rttime != 0) {
        rtt_sample(tp, (uint32_t)(tp->st->now_us - tp->t_rttime));
        tp->t_rttime = 0;
    }
    tp->snd_wnd = s->wnd << tp->snd_wscale;
    tp->max_sndwnd = tp->snd_wnd;
    tp->snd_wl1 = s->seq;
    tp->snd_wl2 = s->ack;
    conn_established(tp);
    if (tp->t_lsn == NULL) {
        post_event(tp, FP_EV_CONNECTED);
    }
    return to_accept_queue(tp);
}

/* RFC 9293 §3.10.7.3: SYN-SENT. */
static void
syn_sent_input(struct fp_tcb *tp, struct seg *s)
{
    bool ack_ok = false;

    if ((s->flags & TH_ACK) != 0) {
        if (fp_seq_leq(s->ack, tp->iss) || fp_seq_gt(s->ack, tp->snd_max)) {
            respond_rst(tp->st, s);
            return;
        }
        ack_ok = true;
    }
    if ((s->flags & TH_RST) != 0) {
        if (ack_ok) {
            fp_stack_ctr_inc(tp->st, FP_STK_TCP_RST_RX);
            tcb_release(tp, -ECONNREFUSED);
        }
        return;
    }
    if ((s->flags & TH_SYN) == 0) {
        return;
    }
    tp->irs = s->seq;
    tp->rcv_nxt = s->seq + 1;
    tp->rcv_adv = tp->rcv_nxt;
    take_syn_options(tp, s, true);
    tp->snd_wnd = s->wnd; /* RFC 7323 §2.2: not scaled in a SYN */
    tp->snd_wl1 = s->seq;
    tp->snd_wl2 = s->ack;
    tp->t_flags |= FP_TF_ACKNOW;
    if (ack_ok) {
        tp->snd_una = s->ack;
        tp->t_rexmt_at = 0;
        if (tp->t_rttime != 0) {
            rtt_sample(tp, (uint32_t)(tp->st->now_us - tp->t_rttime));
            tp->t_rttime = 0;
        }
        tp->max_sndwnd = tp->snd_wnd;
        conn_established(tp);
        post_event(tp, FP_EV_CONNECTED);
        tcp_output(tp);
        return;
    }
    /* Simultaneous open: answer with SYN-ACK from our ISS. */
    tp->t_state = FP_TCP_SYN_RCVD;
    tp->snd_nxt = tp->iss;
    tcp_output(tp);
}

/* RFC 9293 §3.10.7.4 second check with RFC 5961 §3.2. Returns false to stop processing. */
static bool
process_rst(struct fp_tcb *tp, const struct seg *s)
{
    struct fp_stack *st = tp->st;

    if (s->seq != tp->rcv_nxt) {
        /* In the window but not exact: a blind attacker's guess, answered with a challenge. */
        send_ack(tp, true);
        return false;
    }
    if (tp->t_state == FP_TCP_TIME_WAIT && tp->rcvq_bytes > 0 &&
        (tp->t_flags & FP_TF_CLOSED_APP) == 0) {
        /* RFC 1337: a reset in TIME-WAIT is ignored. Here it matters beyond assassination:
         * the TCB still holds data the application has not read, received and acknowledged
         * in full, which the peer's reset must not take back. */
        fp_stack_ctr_inc(st, FP_STK_TCP_RST_IGNORED);
        return false;
    }
    fp_stack_ctr_inc(st, FP_STK_TCP_RST_RX);
    /* Closing states, or a passive open (back to LISTEN): released without an error. */
    if (tp->t_state == FP_TCP_TIME_WAIT || tp->t_state == FP_TCP_LAST_ACK ||
        tp->t_state == FP_TCP_CLOSING || (tp->t_state == FP_TCP_SYN_RCVD && tp->t_lsn != NULL)) {
        tcb_release(tp, 0);
    } else {
        tcb_release(tp, tp->t_state == FP_TCP_SYN_RCVD ? -ECONNREFUSED : -ECONNRESET);
    }
    return false;
}

/* Updates ts_recent (RFC 7323 §4.3) for a segment that passed the sequence check. */
static void
update_ts_recent(struct fp_tcb *tp, const struct seg *s)
{
    if ((tp->t_flags & FP_TF_RCVD_TSTMP) != 0 && s->opt.has_ts &&
        fp_seq_leq(s->seq, tp->last_ack_sent) && fp_seq_geq(s->opt.tsval, tp->ts_recent)) {
        tp->ts_recent = s->opt.tsval;
        tp->ts_recent_age = tp->st->now_us;
    }
}

/* The state machine for a segment of a known connection. */
static void
do_segment(struct fp_tcb *tp, struct seg *s)
{
    struct fp_stack *st = tp->st;

    tp->t_idle_since = st->now_us;
    tp->t_keep_probes = 0;
    if (tp->t_keep_at != 0) {
        tp->t_keep_at = st->now_us + (uint64_t)st->conf.keepalive_idle_ms * 1000;
    }
    if (tp->t_state == FP_TCP_SYN_SENT) {
        syn_sent_input(tp, s);
        goto out;
    }
    if (tp->t_state == FP_TCP_SYN_RCVD && (s->flags & TH_SYN) != 0 && (s->flags & TH_ACK) == 0 &&
        s->seq == tp->irs) {
        tp->snd_nxt = tp->iss; /* our SYN-ACK was lost: send it again */
        tcp_output(tp);
        goto out;
    }
    if (paws_reject(tp, s)) {
        fp_stack_ctr_inc(st, FP_STK_TCP_PAWS_DROP);
        send_ack(tp, false);
        goto out;
    }
    if (!seq_acceptable(tp, s)) {
        fp_stack_ctr_inc(st, FP_STK_TCP_OUT_OF_WINDOW);
        if ((s->flags & TH_RST) == 0) {
            send_ack(tp, false);
        } else {
            fp_stack_ctr_inc(st, FP_STK_TCP_RST_IGNORED);
        }
        goto out;
    }
    if ((s->flags & TH_RST) != 0) {
        process_rst(tp, s);
        goto out;
    }
    /* RFC 5961 §4.2: any SYN in a synchronized state gets a challenge ACK. */
    if ((s->flags & TH_SYN) != 0) {
        send_ack(tp, true);
        goto out;
    }
    if ((s->flags & TH_ACK) == 0) {
        goto out;
    }
    update_ts_recent(tp, s);
    if (tp->t_state == FP_TCP_SYN_RCVD && !syn_rcvd_ack(tp, s)) {
        goto out;
    }
    if (!process_ack(tp, s)) {
        goto out;
    }
    process_data(tp, s);
    if ((tp->t_flags & FP_TF_REAPING) == 0) {
        tcp_output(tp);
    }
out:
    if ((tp->t_flags & FP_TF_REAPING) == 0) {
        timer_update(tp);
    }
}

/* ---- SYN cookies (RFC 4987 §3.6) ---- */

static uint32_t
cookie_hash(const struct fp_stack *st, const struct seg *s, uint64_t t)
{
    return (uint32_t)mix64(tuple_hash(st, s->daddr, s->saddr, s->sport, s->dport, st->secret[1]) ^
                           ((uint64_t)(s->seq - ((s->flags & TH_SYN) ? 0 : 1)) << 8) ^ t);
}

/* The cookie: 24 bits of keyed hash, 5 bits of time counter, 3 bits of MSS index. */
static uint32_t
cookie_make(const struct fp_stack *st, const struct seg *s, uint8_t mss_idx)
{
    uint64_t t = st->now_us / COOKIE_PERIOD_US;

    return (cookie_hash(st, s, t) & 0xffffff00u) | (uint32_t)(t & 0x1f) << 3 | mss_idx;
}

/* Returns the MSS encoded in a valid cookie (from this or the previous period), or 0. */
static uint16_t
cookie_check(const struct fp_stack *st, const struct seg *s)
{
    uint32_t cookie = s->ack - 1;
    uint64_t now_t = st->now_us / COOKIE_PERIOD_US;
    uint64_t t;
    int      back;

    for (back = 0; back < 2; back++) {
        if (now_t < (uint64_t)back) {
            break;
        }
        t = now_t - (uint64_t)back;
        if ((t & 0x1f) == ((cookie >> 3) & 0x1f) &&
            (cookie_hash(st, s, t) & 0xffffff00u) == (cookie & 0xffffff00u)) {
            return cookie_mss[cookie & 7];
        }
    }
    return 0;
}

/*
 * The low bits of the TSval of a cookie SYN-ACK carry the options the cookie cannot: bits 0-3
 * the peer's window scale (15: none), bit 4 SACK-permitted. The peer echoes them in TSecr, so a
 * cookie connection keeps window scaling and SACK when the peer uses timestamps (as Linux does).
 */
#define COOKIE_TS_BITS   5
#define COOKIE_TS_NOWS   0xf
#define COOKIE_TS_SACK   0x10
#define COOKIE_TS_MAXAGE 128000u /* ms: an older TSecr is not one of our cookies */

static uint32_t
cookie_ts_base(const struct fp_stack *st, const struct seg *s)
{
    return (uint32_t)(st->now_us / 1000) +
           (uint32_t)tuple_hash(st, s->daddr, s->saddr, s->sport, s->dport, 0x75);
}

static void
send_cookie(struct fp_stack *st, const struct seg *s)
{
    struct fp_tcp_opts o;
    uint16_t           mss = s->opt.has_mss ? s->opt.mss : 536;
    uint8_t            idx = 0;
    uint8_t            i;
    uint32_t           enc;

    for (i = 0; i < 8; i++) {
        if (cookie_mss[i] <= mss) {
            idx = i;
        }
    }
    memset(&o, 0, sizeof(o));
    o.has_mss = true;
    o.mss = cookie_mss[idx];
    if (s->opt.has_ts && !st->conf.no_timestamps) {
        enc = COOKIE_TS_NOWS;
        if (s->opt.has_wscale && !st->conf.no_wscale) {
            o.has_wscale = true;
            o.wscale = choose_rcv_wscale(st->conf.rcv_buf);
            enc = s->opt.wscale;
        }
        if (s->opt.sack_permitted && !st->conf.no_sack) {
            o.sack_permitted = true;
            enc |= COOKIE_TS_SACK;
        }
        o.has_ts = true;
        o.tsval = (cookie_ts_base(st, s) & ~((1u << COOKIE_TS_BITS) - 1)) | enc;
        if (fp_seq_gt(o.tsval, cookie_ts_base(st, s))) {
            /* Never ahead of the clock the connection will use, or the peer's PAWS would drop
             * our next segments as old (Linux's cookie_init_timestamp does the same). */
            o.tsval -= 1u << COOKIE_TS_BITS;
        }
        o.tsecr = s->opt.tsval;
    }
    fp_stack_ctr_inc(st, FP_STK_TCP_COOKIE_SENT);
    respond(st, s, cookie_make(st, s, idx), s->seq + 1, TH_SYN | TH_ACK, &o);
}

/* Restores the options a cookie SYN-ACK stored in its TSval (see send_cookie). */
static void
cookie_take_options(struct fp_tcb *tp, const struct seg *s)
{
    struct fp_stack *st = tp->st;
    uint32_t         enc = s->opt.tsecr & ((1u << COOKIE_TS_BITS) - 1);

    tp->rcv_wscale = 0;
    tp->snd_wscale = 0;
    if (!s->opt.has_ts || st->conf.no_timestamps ||
        (cookie_ts_base(st, s) & ~0x1fu) - (s->opt.tsecr & ~0x1fu) > COOKIE_TS_MAXAGE) {
        return; /* only the MSS survives (RFC 4987 §3.6) */
    }
    tp->t_flags |= FP_TF_RCVD_TSTMP;
    tp->ts_recent = s->opt.tsval;
    tp->ts_recent_age = st->now_us;
    tp->t_maxseg = (uint16_t)(tp->t_maxseg - 12);
    if ((enc & COOKIE_TS_NOWS) != COOKIE_TS_NOWS && !st->conf.no_wscale) {
        tp->t_flags |= FP_TF_RCVD_SCALE;
        tp->snd_wscale = (uint8_t)((enc & COOKIE_TS_NOWS) > 14 ? 14 : (enc & COOKIE_TS_NOWS));
        tp->rcv_wscale = choose_rcv_wscale(tp->rcv_buf);
    }
    if ((enc & COOKIE_TS_SACK) != 0 && !st->conf.no_sack) {
        tp->t_flags |= FP_TF_SACK_PERMIT;
    }
}

/* ---- Passive open ---- */

static struct fp_tcb *
new_passive(struct fp_stack *st, struct fp_tcp_listener *l, const struct seg *s)
{
    struct fp_tcb *tp = tcb_new(st);

    if (tp == NULL) {
        return NULL;
    }
    tp->laddr = s->daddr;
    tp->raddr = s->saddr;
    tp->rport = s->sport;
    tp->lport = s->dport;
    tp->t_lsn = l;
    tp->cb = l->cb;
    tp->user = l->user;
    set_ts_offset(tp);
    tp->t_flags |= FP_TF_CLOSED_APP; /* no handle until fp_tcp_accept */
    tp->irs = s->seq;
    tp->rcv_nxt = s->seq + 1;
    tp->rcv_adv = tp->rcv_nxt;
    hash_insert(tp);
    fp_stack_ctr_inc(st, FP_STK_TCP_PASSIVE_OPEN);
    return tp;
}

/* A SYN for a listener: a SYN_RCVD connection, or a cookie when the SYN queue is full. */
static void
listen_syn(struct fp_stack *st, struct fp_tcp_listener *l, const struct seg *s)
{
    struct fp_tcb *tp;

    if (l->nb_accept >= l->backlog) {
        fp_stack_ctr_inc(st, FP_STK_TCP_ACCEPTQ_FULL);
        return;
    }
    if (l->nb_syn >= l->syn_backlog) {
        fp_stack_ctr_inc(st, FP_STK_TCP_SYNQ_FULL);
        send_cookie(st, s);
        return;
    }
    tp = new_passive(st, l, s);
    if (tp == NULL) {
        send_cookie(st, s); /* no TCB to spare: cookies cost none */
        return;
    }
    l->nb_syn++;
    tp->t_state = FP_TCP_SYN_RCVD;
    take_syn_options(tp, s, true);
    tp->iss = gen_iss(st, s->daddr, s->saddr, s->sport, s->dport);
    tp->snd_una = tp->iss;
    tp->snd_nxt = tp->iss;
    tp->snd_max = tp->iss;
    tp->snd_recover = tp->iss;
    tp->snd_wnd = s->wnd;
    tcp_output(tp);
}

/* An ACK for a listener: maybe the third step of a cookie handshake. */
static struct fp_tcb *
listen_ack(struct fp_stack *st, struct fp_tcp_listener *l, const struct seg *s)
{
    struct fp_tcb *tp;
    uint16_t       mss = cookie_check(st, s);

    if (mss == 0) {
        fp_stack_ctr_inc(st, FP_STK_TCP_COOKIE_BAD);
        return NULL;
    }
    if (l->nb_accept >= l->backlog) {
        fp_stack_ctr_inc(st, FP_STK_TCP_ACCEPTQ_FULL);
        return NULL;
    }
    tp = new_passive(st, l, s);
    if (tp == NULL) {
        return NULL;
    }
    fp_stack_ctr_inc(st, FP_STK_TCP_COOKIE_OK);
    tp->t_flags |= FP_TF_COOKIE;
    tp->irs = s->seq - 1;
    tp->rcv_nxt = s->seq;
    tp->rcv_adv = tp->rcv_nxt;
    tp->t_maxseg = mss;
    tp->t_peer_mss = mss;
    cookie_take_options(tp, s);
    tp->iss = s->ack - 1;
    tp->snd_una = s->ack - 1;
    tp->snd_nxt = s->ack;
    tp->snd_max = s->ack;
    tp->snd_recover = tp->iss;
    tp->t_state = FP_TCP_SYN_RCVD;
    return tp;
}

/* A segment for no connection (RFC 9293 §3.10.7.1 and §3.10.7.2). */
static void
no_conn_input(struct fp_stack *st, struct seg *s)
{
    struct fp_tcp_listener *l = NULL;
    struct fp_tcb          *tp;

    if ((s->flags & TH_RST) != 0) {
        return;
    }
    /* Listeners are on conf.addr only: the source addresses serve active opens. */
    if (s->daddr == st->conf.addr) {
        l = find_listener(st, s->dport);
    }
    if (l == NULL) {
        fp_stack_ctr_inc(st, FP_STK_TCP_NO_CONN);
        respond_rst(st, s);
        return;
    }
    if ((s->flags & TH_ACK) != 0) {
        tp = listen_ack(st, l, s);
        if (tp == NULL) {
            respond_rst(st, s);
            return;
        }
        do_segment(tp, s);
        if (tp->t_state == FP_TCP_SYN_RCVD && (tp->t_flags & FP_TF_REAPING) == 0) {
            /* The cookie was good but the segment did not complete the open: no state kept. */
            tcb_release(tp, 0);
        }
        return;
    }
    if ((s->flags & TH_SYN) != 0) {
        listen_syn(st, l, s);
    }
}

/* RFC 6191: a new SYN may take over a TIME_WAIT connection if it is clearly newer. */
static bool
time_wait_recycle(struct fp_tcb *tp, const struct seg *s)
{
    if ((s->flags & (TH_SYN | TH_ACK | TH_RST)) != TH_SYN) {
        return false;
    }
    if ((tp->t_flags & FP_TF_RCVD_TSTMP) != 0 && s->opt.has_ts) {
        if (!fp_seq_gt(s->opt.tsval, tp->ts_recent)) {
            return false;
        }
    } else if (!fp_seq_gt(s->seq, tp->rcv_nxt)) {
        return false;
    }
    fp_stack_ctr_inc(tp->st, FP_STK_TCP_TW_RECYCLED);
    tcb_release(tp, 0);
    return true;
}

void
fp_tcp_input(struct fp_stack *st, struct fp_pkt *pkt, uint32_t saddr, uint32_t daddr)
{
    struct seg     s;
    struct fp_tcb *tp;
    const uint8_t *th = pkt->data;
    uint32_t       off;
    bool           bad_sum;

    fp_stack_ctr_inc(st, FP_STK_TCP_RX);
    if (pkt->len < FP_STK_TCP_HLEN) {
        fp_stack_ctr_inc(st, FP_STK_TCP_SHORT);
        goto drop;
    }
    off = (uint32_t)(th[12] >> 4) * 4;
    if (off < FP_STK_TCP_HLEN || off > pkt->len) {
        fp_stack_ctr_inc(st, FP_STK_TCP_SHORT);
        goto drop;
    }
    /* The link's verdict where it verified (FP_LINK_CAP_RX_CKSUM), else ours. */
    bad_sum = (pkt->flags & FP_PKT_F_RX_L4_BAD) != 0;
    if (!bad_sum && (pkt->flags & FP_PKT_F_RX_L4_GOOD) == 0) {
        bad_sum = fp_cksum_tcp(saddr, daddr, th, pkt->len) != 0;
    }
    if (bad_sum) {
        fp_stack_ctr_inc(st, FP_STK_TCP_BAD_CKSUM);
        goto drop;
    }
    s.flags = th[13] & 0x3f;
    if (fp_tcp_opt_parse(th + FP_STK_TCP_HLEN, off - FP_STK_TCP_HLEN, (s.flags & TH_SYN) != 0,
                         &s.opt) < 0) {
        fp_stack_ctr_inc(st, FP_STK_TCP_BAD_OPT);
        goto drop;
    }
    s.sport = fp_get16(th);
    s.dport = fp_get16(th + 2);
    s.seq = fp_get32(th + 4);
    s.ack = fp_get32(th + 8);
    s.wnd = fp_get16(th + 14);
    s.saddr = saddr;
    s.daddr = daddr;
    pkt->data += off;
    pkt->len -= off;
    s.len = pkt->len;
    s.pkt = pkt;
    tp = lookup(st, daddr, saddr, s.sport, s.dport);
    if (tp != NULL && tp->t_state == FP_TCP_TIME_WAIT && time_wait_recycle(tp, &s)) {
        tp = NULL;
    }
    if (tp == NULL) {
        no_conn_input(st, &s);
    } else {
        do_segment(tp, &s);
    }
    pkt = s.pkt;
drop:
    fp_pkt_free(pkt);
}

/* ---- Application API ---- */

int
fp_tcp_listen(struct fp_stack *st, uint16_t port, uint32_t backlog, uint32_t syn_backlog,
              const struct fp_tcp_callbacks *cb, void *user, struct fp_tcp_listener **out)
{
    struct fp_tcp_listener *l;
    unsigned int            i;

    if (port == 0 || backlog == 0) {
        return -EINVAL;
    }
    if (find_listener(st, port) != NULL) {
        return -EADDRINUSE;
    }
    for (i = 0; i < FP_STK_MAX_LISTEN; i++) {
        l = &st->listeners[i];
        if (l->port == 0) {
            memset(l, 0, sizeof(*l));
            l->st = st;
            l->port = port;
            l->backlog = backlog;
            l->syn_backlog = syn_backlog != FP_TCP_SYN_BACKLOG_DEFAULT ? syn_backlog : 4 * backlog;
            l->cb = cb;
            l->user = user;
            *out = l;
            return 0;
        }
    }
    return -ENOSPC;
}

void
fp_tcp_unlisten(struct fp_tcp_listener *l)
{
    struct fp_tcb *tp;
    uint32_t       i;

    while ((tp = l->acceptq_head) != NULL) {
        send_rst(tp);
        tcb_release(tp, -ECONNRESET);
    }
    for (i = 0; i <= l->st->tcb_hash_mask; i++) {
        for (tp = l->st->tcb_hash[i]; tp != NULL; tp = tp->hnext) {
            if (tp->t_lsn == l) {
                tp->t_lsn = NULL; /* embryonic: it completes as an orphan and gets reset */
            }
        }
    }
    l->port = 0;
    l->nb_syn = 0;
}

struct fp_tcb *
fp_tcp_accept(struct fp_tcp_listener *l)
{
    struct fp_tcb *tp = l->acceptq_head;

    if (tp == NULL) {
        return NULL;
    }
    acceptq_remove(tp);
    tp->t_lsn = NULL;
    tp->t_flags &= ~(uint32_t)FP_TF_CLOSED_APP;
    if (tp->rcvq_bytes > 0 || (tp->t_flags & FP_TF_RCVD_FIN) != 0) {
        post_event(tp, FP_EV_READABLE);
    }
    return tp;
}

void
fp_tcp_set_callbacks(struct fp_tcb *c, const struct fp_tcp_callbacks *cb, void *user)
{
    c->cb = cb;
    c->user = user;
}

/* Picks a free ephemeral port for raddr:rport, reusing a TIME_WAIT slot with timestamps. */
static int
pick_port(struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport, uint16_t *lport)
{
    struct fp_tcb *tp;
    uint32_t       i;
    uint16_t       port;

    for (i = 0; i < EPHEMERAL_NB; i++) {
        port = st->next_port;
        st->next_port =
                (uint16_t)(port + 1 >= EPHEMERAL_LO + EPHEMERAL_NB ? EPHEMERAL_LO : port + 1);
        if (find_listener(st, port) != NULL) {
            continue;
        }
        tp = lookup(st, laddr, raddr, rport, port);
        if (tp == NULL) {
            *lport = port;
            return 0;
        }
        if (tp->t_state == FP_TCP_TIME_WAIT && (tp->t_flags & FP_TF_RCVD_TSTMP) != 0) {
            fp_stack_ctr_inc(st, FP_STK_TCP_TW_REUSE);
            tcb_release(tp, 0);
            *lport = port;
            return 0;
        }
    }
    fp_stack_ctr_inc(st, FP_STK_TCP_PORT_EXHAUSTED);
    return -EADDRNOTAVAIL;
}

int
fp_tcp_connect(struct fp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
               const struct fp_tcp_callbacks *cb, void *user, struct fp_tcb **out)
{
    return fp_tcp_connect_from(st, 0, raddr, rport, lport, cb, user, out);
}

int
fp_tcp_connect_from(struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport,
                    uint16_t lport, const struct fp_tcp_callbacks *cb, void *user,
                    struct fp_tcb **out)
{
    struct fp_tcb *tp;
    struct fp_tcb *old;
    int            rc;

    if (laddr == 0) {
        laddr = st->conf.addr;
    } else if (!fp_stack_is_local(st, laddr)) {
        return -EADDRNOTAVAIL;
    }
    if (lport == 0) {
        rc = pick_port(st, laddr, raddr, rport, &lport);
        if (rc < 0) {
            return rc;
        }
    } else {
        old = lookup(st, laddr, raddr, rport, lport);
        if (old != NULL) {
            if (old->t_state != FP_TCP_TIME_WAIT || (old->t_flags & FP_TF_RCVD_TSTMP) == 0) {
                return -EADDRINUSE;
            }
            fp_stack_ctr_inc(st, FP_STK_TCP_TW_REUSE);
            tcb_release(old, 0);
        }
    }
    tp = tcb_new(st);
    if (tp == NULL) {
        return -ENOMEM;
    }
    tp->laddr = laddr;
    tp->raddr = raddr;
    tp->rport = rport;
    tp->lport = lport;
    tp->cb = cb;
    tp->user = user;
    set_ts_offset(tp);
    tp->iss = gen_iss(st, laddr, raddr, rport, lport);
    tp->snd_una = tp->iss;
    tp->snd_nxt = tp->iss;
    tp->snd_max = tp->iss;
    tp->snd_recover = tp->iss;
    tp->t_state = FP_TCP_SYN_SENT;
    hash_insert(tp);
    fp_stack_ctr_inc(st, FP_STK_TCP_ACTIVE_OPEN);
    tcp_output(tp);
    *out = tp;
    return 0;
}

static int
check_sendable(const struct fp_tcb *tp)
{
    if ((tp->t_flags & FP_TF_SHUTWR) != 0) {
        return -EPIPE;
    }
    if (tp->t_state != FP_TCP_ESTABLISHED && tp->t_state != FP_TCP_CLOSE_WAIT) {
        return tp->t_state == FP_TCP_SYN_SENT || tp->t_state == FP_TCP_SYN_RCVD ? -ENOTCONN
                                                                                : -EPIPE;
    }
    return 0;
}

static void
sndq_append(struct fp_tcb *tp, struct fp_pkt *p)
{
    p->next = NULL;
    p->seq = tp->snd_una + tp->sndq_bytes;
    if (tp->sndq_tail == NULL) {
        tp->sndq_head = p;
    } else {
        tp->sndq_tail->next = p;
    }
    tp->sndq_tail = p;
    tp->sndq_bytes += p->len;
}

/*
 * A short buffer goes into the free room of a short tail buffer, when it fits, instead of being
 * queued whole: otherwise a peer that sends 1-byte segments, passed on zero-copy, would fill
 * the send queue with 2 KiB buffers holding a byte each, and drain the packet pool. So every
 * queued buffer holds at least SNDQ_MERGE_MAX bytes or sits in front of one that does not fit
 * it; a bulk transfer (full segments and a short last one) copies nothing. Returns whether p
 * was merged (and freed).
 */
static bool
sndq_merge_small(struct fp_tcb *tp, struct fp_pkt *p)
{
    struct fp_pkt *t = tp->sndq_tail;

    if (p->len > SNDQ_MERGE_MAX || t == NULL || t->len >= SNDQ_MERGE_TAIL || t->ext != NULL ||
        fp_pkt_tailroom(t) < p->len) {
        return false;
    }
    memcpy(t->data + t->len, p->data, p->len);
    fp_stack_ctr_add(tp->st, FP_STK_TCP_APP_COPY_BYTES, p->len);
    t->len += p->len;
    tp->sndq_bytes += p->len;
    fp_pkt_free(p);
    return true;
}

uint32_t
fp_tcp_send_space(const struct fp_tcb *c)
{
    return c->sndq_bytes < c->snd_buf ? c->snd_buf - c->sndq_bytes : 0;
}

ssize_t
fp_tcp_send(struct fp_tcb *c, const void *buf, size_t len)
{
    const uint8_t *src = buf;
    struct fp_pkt *p;
    uint32_t       space = fp_tcp_send_space(c);
    uint32_t       n;
    size_t         done = 0;
    int            rc = check_sendable(c);

    if (rc < 0) {
        return rc;
    }
    if (space == 0) {
        c->t_flags |= FP_TF_WANT_WRITE;
        fp_stack_ctr_inc(c->st, FP_STK_TCP_SNDBUF_FULL);
        return -EAGAIN;
    }
    if (len > space) {
        len = space;
        c->t_flags |= FP_TF_WANT_WRITE;
    }
    while (done < len) {
        p = c->sndq_tail;
        if (p != NULL && fp_pkt_tailroom(p) > 0 && p->ext == NULL) {
            n = fp_pkt_tailroom(p);
            n = n < len - done ? n : (uint32_t)(len - done);
            memcpy(p->data + p->len, src + done, n);
            fp_stack_ctr_add(c->st, FP_STK_TCP_APP_COPY_BYTES, n);
            p->len += n;
            c->sndq_bytes += n;
            done += n;
            continue;
        }
        p = fp_stack_pkt_alloc(c->st);
        if (p == NULL) {
            break;
        }
        p->data = p->buf + FP_PKT_HEADROOM;
        sndq_append(c, p);
    }
    tcp_output(c);
    if (done == 0) {
        c->t_flags |= FP_TF_WANT_WRITE;
        return -ENOMEM;
    }
    return (ssize_t)done;
}

ssize_t
fp_tcp_send_pkts(struct fp_tcb *c, struct fp_pkt **chain)
{
    struct fp_pkt *p;
    size_t         total = 0;
    int            rc = check_sendable(c);

    if (rc < 0) {
        return rc;
    }
    while ((p = *chain) != NULL) {
        if (p->pool != &c->st->pkts || p->len > PAYLOAD_MAX) {
            break;
        }
        if (p->len > fp_tcp_send_space(c)) {
            c->t_flags |= FP_TF_WANT_WRITE;
            break;
        }
        *chain = p->next;
        total += p->len;
        if (p->len == 0) {
            fp_pkt_free(p);
            continue;
        }
        if (sndq_merge_small(c, p)) {
            continue;
        }
        p->flags = 0;
        sndq_append(c, p);
    }
    if (total == 0 && *chain != NULL) {
        if ((*chain)->pool != &c->st->pkts || (*chain)->len > PAYLOAD_MAX) {
            return -EINVAL;
        }
        fp_stack_ctr_inc(c->st, FP_STK_TCP_SNDBUF_FULL);
        return -EAGAIN;
    }
    tcp_output(c);
    return (ssize_t)total;
}

/*
 * After the application consumed data: send a window update when the peer may be held back by
 * the window it has (RFC 1122 §4.2.3.3 receiver SWS avoidance, with FreeBSD's tcp_output()
 * thresholds). The window must grow by two segments, and by a quarter of the buffer, or what
 * the peer has left must be down to an eighth of it (or the buffer is small). Growing by two
 * segments alone, as before, sent an update after nearly every second segment read: with
 * the ACK of every second segment (process_data) that was an ACK per segment received, each
 * one a frame on the link and a segment for the peer's stack to process (measured: 0.9 pure
 * ACKs per data segment from the origin at 100 KiB keep-alive). The ACKs of data carry the
 * current window anyway.
 */
static void
window_update(struct fp_tcb *c)
{
    uint32_t adv = fp_seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
    uint32_t space = rcv_space(c);
    uint32_t grow = space - adv;

    /* After the peer's FIN no more data comes: a window update would only reach a peer that
     * may have forgotten the connection, and draw a reset. */
    if ((c->t_flags & FP_TF_RCVD_FIN) != 0) {
        return;
    }
    if ((grow >= 2u * c->t_maxseg &&
         (grow >= c->rcv_buf / 4 || adv <= c->rcv_buf / 8 || c->rcv_buf <= 8u * c->t_maxseg)) ||
        grow >= c->rcv_buf / 2) {
        c->t_flags |= FP_TF_ACKNOW;
        tcp_output(c);
    }
}

static ssize_t
recv_eof_or_again(const struct fp_tcb *c)
{
    if ((c->t_flags & FP_TF_RCVD_FIN) != 0 || c->t_state == FP_TCP_CLOSED) {
        return 0;
    }
    return -EAGAIN;
}

ssize_t
fp_tcp_recv(struct fp_tcb *c, void *buf, size_t len)
{
    uint8_t       *dst = buf;
    struct fp_pkt *p;
    size_t         done = 0;
    uint32_t       n;

    if (c->rcvq_head == NULL) {
        return recv_eof_or_again(c);
    }
    while (done < len && (p = c->rcvq_head) != NULL) {
        n = p->len < len - done ? p->len : (uint32_t)(len - done);
        memcpy(dst + done, p->data, n);
        fp_stack_ctr_add(c->st, FP_STK_TCP_APP_COPY_BYTES, n);
        done += n;
        p->data += n;
        p->len -= n;
        p->seq += n;
        c->rcvq_bytes -= n;
        if (p->len == 0) {
            c->rcvq_head = p->next;
            if (c->rcvq_head == NULL) {
                c->rcvq_tail = NULL;
            }
            fp_pkt_free(p);
        }
    }
    window_update(c);
    return (ssize_t)done;
}

ssize_t
fp_tcp_recv_pkts_upto(struct fp_tcb *c, struct fp_pkt **chain, uint32_t max_pkts,
                      uint32_t max_bytes)
{
    struct fp_pkt *p;
    struct fp_pkt *last = NULL;
    uint32_t       bytes = 0;
    uint32_t       nb = 0;

    *chain = NULL;
    if (c->rcvq_head == NULL) {
        return recv_eof_or_again(c);
    }
    if (max_pkts == 0) {
        return -EINVAL;
    }
    for (p = c->rcvq_head; p != NULL && nb < max_pkts && (nb == 0 || bytes < max_bytes);
         p = p->next) {
        bytes += p->len;
        nb++;
        last = p;
    }
    *chain = c->rcvq_head;
    c->rcvq_head = last->next;
    last->next = NULL;
    if (c->rcvq_head == NULL) {
        c->rcvq_tail = NULL;
    }
    c->rcvq_bytes -= bytes;
    window_update(c);
    return bytes;
}

ssize_t
fp_tcp_recv_pkts(struct fp_tcb *c, struct fp_pkt **chain)
{
    return fp_tcp_recv_pkts_upto(c, chain, UINT32_MAX, UINT32_MAX);
}

int
fp_tcp_shutdown(struct fp_tcb *c)
{
    if (c->t_state != FP_TCP_ESTABLISHED && c->t_state != FP_TCP_CLOSE_WAIT &&
        c->t_state != FP_TCP_SYN_RCVD && c->t_state != FP_TCP_SYN_SENT) {
        return (c->t_flags & FP_TF_SHUTWR) != 0 ? 0 : -ENOTCONN;
    }
    c->t_flags |= FP_TF_SHUTWR;
    tcp_output(c);
    return 0;
}

void
fp_tcp_close(struct fp_tcb *c)
{
    c->t_flags |= FP_TF_CLOSED_APP;
    c->t_events = 0;
    fp_pkt_free_chain(c->rcvq_head);
    c->rcvq_head = NULL;
    c->rcvq_tail = NULL;
    c->rcvq_bytes = 0;
    switch (c->t_state) {
    case FP_TCP_SYN_SENT:
    case FP_TCP_CLOSED:
        tcb_release(c, 0);
        return;
    case FP_TCP_FIN_WAIT_2:
        c->t_2msl_at = c->st->now_us + FIN_WAIT_2_US;
        timer_update(c);
        return;
    default:
        c->t_flags |= FP_TF_SHUTWR;
        tcp_output(c);
        return;
    }
}

void
fp_tcp_abort(struct fp_tcb *c)
{
    c->t_flags |= FP_TF_CLOSED_APP;
    c->t_events = 0;
    if (c->t_state != FP_TCP_CLOSED && c->t_state != FP_TCP_SYN_SENT &&
        c->t_state != FP_TCP_TIME_WAIT) {
        send_rst(c);
    }
    tcb_release(c, 0);
}

enum fp_tcp_state
fp_tcp_get_state(const struct fp_tcb *c)
{
    return (enum fp_tcp_state)c->t_state;
}
