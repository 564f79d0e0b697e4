/* SPDX-License-Identifier: BSD-3-Clause */
/* Counter formatting. The table ties each counter to its name once, for both outputs. */
#include "src/stats.h"

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
    STAT_FIELD(queue_len),       STAT_FIELD(queue_max),        STAT_FIELD(queued),
    STAT_FIELD(queue_timeouts),  STAT_FIELD(queue_dropped_oldest), STAT_FIELD(queue_full), STAT_FIELD(queue_dropped_stale),
    STAT_FIELD(queue_client_gone), STAT_FIELD(queue_lifo),     STAT_FIELD(qdelay_le_1ms),
    STAT_FIELD(qdelay_le_5ms),   STAT_FIELD(qdelay_le_10ms),   STAT_FIELD(qdelay_le_50ms),
    STAT_FIELD(qdelay_le_100ms), STAT_FIELD(qdelay_le_500ms),  STAT_FIELD(qdelay_le_1s),
    STAT_FIELD(qdelay_gt_1s),    STAT_FIELD(accept_paused),    STAT_FIELD(shed_503),
};

#define NB_FIELDS (sizeof(fields) / sizeof(fields[0]))

static uint64_t
read_field(const struct fp_worker *w, size_t off)
{
    const uint64_t *p = (const uint64_t *)((const char *)&w->stats + off);

    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

size_t
fp_stats_format(const struct fp_workers *ws, char *out, size_t size)
{
    size_t   len = 0;
    size_t   f;
    unsigned i;
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
