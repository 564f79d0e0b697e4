/* SPDX-License-Identifier: BSD-3-Clause */
/* Counter formatting. The table ties each counter to its name once, for both outputs. */
#include "src/stats.h"

#include <stdbool.h>
#include <stdio.h>

#include "src/log.h"

struct stat_field {
    const char *name;
    size_t      off;
};

#define STAT_FIELD(f) {#f, offsetof(struct fp_worker_stats, f)}

static const struct stat_field fields[] = {
    STAT_FIELD(accepted),        STAT_FIELD(sessions_active),  STAT_FIELD(sessions_done),
    STAT_FIELD(sess_pool_empty), STAT_FIELD(buf_pool_empty),   STAT_FIELD(hdrs_pool_empty),   STAT_FIELD(conn_pool_empty),
    STAT_FIELD(connect_errors),  STAT_FIELD(connect_timeouts), STAT_FIELD(retries),
    STAT_FIELD(no_server),       STAT_FIELD(idle_timeouts),    STAT_FIELD(client_aborts),
    STAT_FIELD(server_aborts),   STAT_FIELD(bytes_in),         STAT_FIELD(bytes_out),
    STAT_FIELD(http_requests),   STAT_FIELD(http_responses),   STAT_FIELD(srv_conn_new),
    STAT_FIELD(srv_conn_reused), STAT_FIELD(srv_idle_closed),  STAT_FIELD(http_400),
    STAT_FIELD(http_408),        STAT_FIELD(http_413),         STAT_FIELD(http_414),
    STAT_FIELD(http_417),        STAT_FIELD(http_431),         STAT_FIELD(http_501),
    STAT_FIELD(http_505),        STAT_FIELD(http_502),         STAT_FIELD(http_503),
    STAT_FIELD(http_504),        STAT_FIELD(http_truncated),   STAT_FIELD(alog_dropped),
    STAT_FIELD(accept_paused),    STAT_FIELD(shed_503),
    STAT_FIELD(http_rsp_bad_head), STAT_FIELD(http_rsp_bad_body), STAT_FIELD(client_timeouts),
};

#define NB_FIELDS (sizeof(fields) / sizeof(fields[0]))

/* Per worker and backend. A worker's line sums its backends, except maxima (queue_max). */
struct be_field {
    const char *name;
    size_t      off;
    bool        is_max;
};

#define BE_FIELD(f, m) {#f, offsetof(struct fp_backend_stats, f), m}

static const struct be_field be_fields[] = {
        BE_FIELD(slots_busy, false),          BE_FIELD(queue_len, false),
        BE_FIELD(queue_max, true),            BE_FIELD(queued, false),
        BE_FIELD(queue_timeouts, false),      BE_FIELD(queue_dropped_oldest, false),
        BE_FIELD(queue_full, false),          BE_FIELD(queue_dropped_stale, false),
        BE_FIELD(queue_client_gone, false),   BE_FIELD(queue_lifo, false),
        /* the histogram, bucket by bucket (fp_qdelay_bound_ms) */
        {"qdelay_le_1ms", offsetof(struct fp_backend_stats, qdelay[0]), false},
        {"qdelay_le_5ms", offsetof(struct fp_backend_stats, qdelay[1]), false},
        {"qdelay_le_10ms", offsetof(struct fp_backend_stats, qdelay[2]), false},
        {"qdelay_le_50ms", offsetof(struct fp_backend_stats, qdelay[3]), false},
        {"qdelay_le_100ms", offsetof(struct fp_backend_stats, qdelay[4]), false},
        {"qdelay_le_500ms", offsetof(struct fp_backend_stats, qdelay[5]), false},
        {"qdelay_le_1s", offsetof(struct fp_backend_stats, qdelay[6]), false},
        {"qdelay_gt_1s", offsetof(struct fp_backend_stats, qdelay[7]), false},
};

#define NB_BE_FIELDS (sizeof(be_fields) / sizeof(be_fields[0]))

static uint64_t
read_field(const struct fp_worker *w, size_t off)
{
    const uint64_t *p = (const uint64_t *)((const char *)&w->stats + off);

    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static uint64_t
read_be_field(const struct fp_worker *w, uint32_t be, size_t off)
{
    const uint64_t *p = (const uint64_t *)((const char *)&w->be_stats[be] + off);

    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/*
 * The queueing-delay percentile pct of a histogram, as the upper bound (ms) of the bucket it
 * falls in: -1 when nothing was served, 0 past the last bound.
 */
static int64_t
qdelay_pct(const uint64_t *h, unsigned pct)
{
    uint64_t total = 0;
    uint64_t acc = 0;
    size_t   i;

    for (i = 0; i < FP_QDELAY_BUCKETS; i++) {
        total += h[i];
    }
    if (total == 0) {
        return -1;
    }
    for (i = 0; i < FP_QDELAY_BUCKETS; i++) {
        acc += h[i];
        if (acc * 100 >= total * pct) {
            break;
        }
    }
    return i < FP_QDELAY_BUCKETS - 1 ? fp_qdelay_bound_ms[i] : 0;
}

size_t
fp_stats_format(const struct fp_workers *ws, char *out, size_t size)
{
    size_t   len = 0;
    size_t   f;
    unsigned i;
    uint32_t b;
    uint64_t total;
    uint64_t v;
    int      n;

#define APPEND(...)                                                                         \
    do {                                                                                    \
        n = snprintf(out + len, size - len, __VA_ARGS__);                                   \
        if (n < 0 || (size_t)n >= size - len) {                                             \
            return len;                                                                     \
        }                                                                                   \
        len += (size_t)n;                                                                   \
    } while (0)

    APPEND("fastproxy_workers %u\nfastproxy_maxconn %u\nfastproxy_reuseport_cpu_steering %d\n",
           ws->n, ws->maxconn, ws->steered);
    for (f = 0; f < NB_FIELDS; f++) {
        total = 0;
        for (i = 0; i < ws->n; i++) {
            v = read_field(&ws->t[i].w, fields[f].off);
            total += v;
            APPEND("fastproxy_%s{worker=\"%u\"} %llu\n", fields[f].name, i,
                   (unsigned long long)v);
        }
        APPEND("fastproxy_%s %llu\n", fields[f].name, (unsigned long long)total);
    }
    for (f = 0; f < NB_BE_FIELDS; f++) {
        total = 0;
        for (i = 0; i < ws->n; i++) {
            uint64_t wsum = 0;

            for (b = 0; b < ws->conf->nb_backends; b++) {
                v = read_be_field(&ws->t[i].w, b, be_fields[f].off);
                wsum = be_fields[f].is_max ? (v > wsum ? v : wsum) : wsum + v;
                APPEND("fastproxy_%s{worker=\"%u\",backend=\"%s\"} %llu\n", be_fields[f].name,
                       i, ws->conf->backends[b].name, (unsigned long long)v);
            }
            total = be_fields[f].is_max ? (wsum > total ? wsum : total) : total + wsum;
            APPEND("fastproxy_%s{worker=\"%u\"} %llu\n", be_fields[f].name, i,
                   (unsigned long long)wsum);
        }
        APPEND("fastproxy_%s %llu\n", be_fields[f].name, (unsigned long long)total);
    }
    /* Queueing-delay percentiles of served requests, per worker and backend, from the
     * histogram (bucket upper bounds, ms; -1: none served yet; 0: over 1 s). */
    for (i = 0; i < ws->n; i++) {
        for (b = 0; b < ws->conf->nb_backends; b++) {
            uint64_t h[FP_QDELAY_BUCKETS];
            size_t   k;

            for (k = 0; k < FP_QDELAY_BUCKETS; k++) {
                h[k] = __atomic_load_n(&ws->t[i].w.be_stats[b].qdelay[k], __ATOMIC_RELAXED);
            }
            APPEND("fastproxy_queue_delay_p50_ms{worker=\"%u\",backend=\"%s\"} %lld\n"
                   "fastproxy_queue_delay_p99_ms{worker=\"%u\",backend=\"%s\"} %lld\n",
                   i, ws->conf->backends[b].name, (long long)qdelay_pct(h, 50), i,
                   ws->conf->backends[b].name, (long long)qdelay_pct(h, 99));
        }
    }
#undef APPEND
    return len;
}

void
fp_stats_log(const struct fp_workers *ws)
{
    const struct fp_worker *w;
    unsigned                i;

    for (i = 0; i < ws->n; i++) {
        w = &ws->t[i].w;
        fp_log(FP_LOG_INFO,
               "worker %u (cpu %d): accepted=%llu sessions_done=%llu connect_errors=%llu "
               "no_server=%llu idle_timeouts=%llu bytes_in=%llu bytes_out=%llu",
               i, ws->t[i].cpu, (unsigned long long)FP_STAT_READ(w, accepted),
               (unsigned long long)FP_STAT_READ(w, sessions_done),
               (unsigned long long)FP_STAT_READ(w, connect_errors),
               (unsigned long long)FP_STAT_READ(w, no_server),
               (unsigned long long)FP_STAT_READ(w, idle_timeouts),
               (unsigned long long)FP_STAT_READ(w, bytes_in),
               (unsigned long long)FP_STAT_READ(w, bytes_out));
    }
}
