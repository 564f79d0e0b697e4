/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NewReno and CUBIC. CUBIC follows RFC 9438 §4 with C = 0.4 and beta = 0.7, computed in double
 * precision on the ACK path: a handful of flops per ACK, cheaper than the integer cube-root
 * tables of Linux, which we may adopt if profiles say so.
 */
#include "net/stack/tcp_cc.h"

#include <math.h>

#include "net/stack/stack.h"

#define CUBIC_C    0.4
#define CUBIC_BETA 0.7

uint32_t
fp_tcp_flight(const struct fp_tcb *tp)
{
    return tp->snd_max - tp->snd_una;
}

static uint32_t
half_flight(const struct fp_tcb *tp)
{
    uint32_t h = fp_tcp_flight(tp) / 2;

    return h > 2u * tp->t_maxseg ? h : 2u * tp->t_maxseg;
}

/* RFC 6928 initial window: 10 segments. */
static void
newreno_init(struct fp_tcb *tp)
{
    tp->snd_cwnd = 10u * tp->t_maxseg;
    tp->snd_ssthresh = UINT32_MAX / 2;
}

/* RFC 5681 §3.1 with appropriate byte counting (RFC 3465, L = 2 SMSS). */
static void
newreno_on_ack(struct fp_tcb *tp, uint32_t acked)
{
    uint32_t mss = tp->t_maxseg;
    uint32_t incr;

    if (tp->snd_cwnd < tp->snd_ssthresh) {
        incr = acked < 2 * mss ? acked : 2 * mss;
    } else {
        incr = (uint32_t)((uint64_t)mss * mss / tp->snd_cwnd);
        if (incr == 0) {
            incr = 1;
        }
    }
    if (tp->snd_cwnd + incr > tp->snd_cwnd) {
        tp->snd_cwnd += incr;
    }
}

static void
newreno_on_loss(struct fp_tcb *tp)
{
    tp->snd_ssthresh = half_flight(tp);
}

static void
newreno_on_timeout(struct fp_tcb *tp)
{
    tp->snd_ssthresh = half_flight(tp);
    tp->snd_cwnd = tp->t_maxseg;
}

static void
cubic_init(struct fp_tcb *tp)
{
    newreno_init(tp);
    tp->cc_wmax = 0;
    tp->cc_epoch_us = 0;
}

static void
cubic_on_ack(struct fp_tcb *tp, uint32_t acked)
{
    double   mss = tp->t_maxseg;
    double   t;
    double   k;
    double   target;
    double   cwnd = tp->snd_cwnd;
    uint64_t now = tp->st->now_us;
    double   rtt = tp->t_srtt_us > 0 ? tp->t_srtt_us / 1e6 : 0.1;

    if (tp->snd_cwnd < tp->snd_ssthresh) {
        newreno_on_ack(tp, acked);
        return;
    }
    if (tp->cc_epoch_us == 0) {
        /* RFC 9438 §4.2: a new congestion avoidance epoch. */
        tp->cc_epoch_us = now;
        if (tp->cc_wmax < tp->snd_cwnd) {
            tp->cc_wmax = tp->snd_cwnd;
        }
        tp->cc_west = tp->snd_cwnd;
    }
    k = cbrt((tp->cc_wmax / mss) * (1.0 - CUBIC_BETA) / CUBIC_C);
    t = (double)(now - tp->cc_epoch_us) / 1e6 + rtt;
    target = (CUBIC_C * (t - k) * (t - k) * (t - k) + tp->cc_wmax / mss) * mss;
    /* RFC 9438 §4.3: the Reno-friendly estimate. */
    tp->cc_west += (uint32_t)(mss * (3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA)) * acked / cwnd);
    if (target < tp->cc_west) {
        target = tp->cc_west;
    }
    if (target > 1.5 * cwnd) {
        target = 1.5 * cwnd;
    }
    if (target > cwnd) {
        tp->snd_cwnd += (uint32_t)((target - cwnd) * acked / cwnd) + 1;
    }
}

static void
cubic_reduce(struct fp_tcb *tp)
{
    uint32_t w = tp->snd_cwnd;

    /* RFC 9438 §4.7 fast convergence. */
    if (w < tp->cc_wmax) {
        tp->cc_wmax = (uint32_t)(w * (1.0 + CUBIC_BETA) / 2.0);
    } else {
        tp->cc_wmax = w;
    }
    tp->cc_epoch_us = 0;
    tp->snd_ssthresh = (uint32_t)(fp_tcp_flight(tp) * CUBIC_BETA);
    if (tp->snd_ssthresh < 2u * tp->t_maxseg) {
        tp->snd_ssthresh = 2u * tp->t_maxseg;
    }
}

static void
cubic_on_loss(struct fp_tcb *tp)
{
    cubic_reduce(tp);
}

static void
cubic_on_timeout(struct fp_tcb *tp)
{
    cubic_reduce(tp);
    tp->snd_cwnd = tp->t_maxseg;
}

static const struct fp_tcp_cc_ops newreno_ops = {
        .name = "newreno",
        .init = newreno_init,
        .on_ack = newreno_on_ack,
        .on_loss = newreno_on_loss,
        .on_timeout = newreno_on_timeout,
};

static const struct fp_tcp_cc_ops cubic_ops = {
        .name = "cubic",
        .init = cubic_init,
        .on_ack = cubic_on_ack,
        .on_loss = cubic_on_loss,
        .on_timeout = cubic_on_timeout,
};

const struct fp_tcp_cc_ops *
fp_tcp_cc_get(enum fp_tcp_cc_algo algo)
{
    return algo == FP_TCP_CC_CUBIC ? &cubic_ops : &newreno_ops;
}
