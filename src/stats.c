/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Counter formatting. The tables below tie each counter to its family name, type and help
 * once; one walk over them writes either format, so /metrics and /stats cannot disagree.
 */
#include "src/stats.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "src/log.h"

enum mtype {
    M_COUNTER = 0,
    M_GAUGE,
    M_HISTOGRAM,
};

static const char *const mtype_name[] = {"counter", "gauge", "histogram"};

/* The page being written: len counts the whole page even past size (nothing is written
 * there), so that a caller can tell a page that did not fit. */
struct out {
    char             *buf;
    size_t            size;
    size_t            len;
    enum fp_stats_fmt fmt;
    unsigned          nb_samples;
    bool              first_fam;
    bool              first_sample;
    const char       *fam; /* the family being written */
};

struct label {
    const char *k;
    const char *v;
};

#define MAX_LABELS 4

/* A per-worker counter of struct fp_worker_stats. */
struct wfield {
    const char *name;
    const char *help;
    enum mtype  type;
    size_t      off;
};

/* clang-format off */
#define WF(f, t, h) {#f, h, t, offsetof(struct fp_worker_stats, f)}
/* clang-format on */

static const struct wfield wfields[] = {
        WF(accepted, M_COUNTER, "Client connections accepted."),
        WF(sessions_active, M_GAUGE, "Client sessions open now."),
        WF(sessions_done, M_COUNTER, "Client sessions ended, for any reason."),
        WF(sess_pool_empty, M_COUNTER, "Client connections refused: no free session (maxconn)."),
        WF(buf_pool_empty, M_COUNTER, "Sessions ended: no buffer to read into."),
        WF(hdrs_pool_empty, M_COUNTER, "Requests answered 503: no header array for a head."),
        WF(conn_pool_empty, M_COUNTER, "Server connections not opened: no free connection."),
        WF(connect_errors, M_COUNTER, "Server connections refused or failed."),
        WF(connect_timeouts, M_COUNTER, "Server connections that timed out."),
        WF(retries, M_COUNTER, "Further servers tried after a failed connect."),
        WF(no_server, M_COUNTER, "Requests or sessions that found no server to reach."),
        WF(idle_timeouts, M_COUNTER, "Sessions ended by inactivity."),
        WF(client_aborts, M_COUNTER, "Client connections reset or failed."),
        WF(server_aborts, M_COUNTER, "Server connections reset or failed."),
        WF(bytes_in, M_COUNTER,
           "Bytes from clients: mode tcp all; mode http request heads as received and the body "
           "bytes sent on (the access log's bytes_in)."),
        WF(bytes_out, M_COUNTER,
           "Bytes written to clients: mode tcp all; mode http heads, bodies and the proxy's own "
           "responses (the access log's bytes_out)."),
        WF(http_requests, M_COUNTER, "Request heads parsed and accepted (mode http)."),
        WF(http_responses, M_COUNTER, "Responses sent to the end (mode http)."),
        WF(srv_conn_new, M_COUNTER, "Server connections opened for a request."),
        WF(srv_conn_reused, M_COUNTER, "Requests sent on an idle server connection."),
        WF(srv_idle_closed, M_COUNTER, "Idle server connections closed by the server."),
        WF(http_truncated, M_COUNTER, "Responses cut short by the server after they started."),
        WF(alog_dropped, M_COUNTER, "Access log lines lost: the log ring was full."),
        WF(accept_paused, M_COUNTER, "Times the worker stopped accepting at its maxconn."),
        WF(shed_503, M_COUNTER, "Connections accepted only to be answered 503 (overload)."),
        WF(http_retries, M_COUNTER,
           "Requests on a connection refused 503 less than Retry-After before (likely retries)."),
        WF(idle_yielded, M_COUNTER, "Idle keep-alive connections closed at maxconn for new ones."),
        WF(slot_polls, M_COUNTER,
           "Looks at the server connections holding slots within a long loop iteration."),
        WF(slot_poll_answers, M_COUNTER, "Server answers found by those looks."),
        WF(slot_poll_reads, M_COUNTER,
           "Server connections read by those looks, answer or not (due ones only)."),
        WF(srv_send_early, M_COUNTER,
           "Requests sent as their server slot was taken, in a long loop iteration."),
        WF(http_rsp_bad_head, M_COUNTER,
           "502: malformed server response head, or over the buffer."),
        WF(http_rsp_bad_body, M_COUNTER, "502 or reset: broken chunked framing in a response."),
        WF(client_timeouts, M_COUNTER,
           "Requests stalled by their client: 408, or a cut once the response began."),
};

/* The responses the proxy writes itself, one series per status. */
struct efield {
    const char *code;
    size_t      off;
};

/* clang-format off */
#define EF(c) {#c, offsetof(struct fp_worker_stats, http_##c)}
/* clang-format on */

static const struct efield efields[] = {
        EF(400), EF(408), EF(413), EF(414), EF(417), EF(431),
        EF(501), EF(502), EF(503), EF(504), EF(505),
};

/* A counter of one backend in one worker (struct fp_backend_stats). */
struct bfield {
    const char *name;
    const char *help;
    enum mtype  type;
    size_t      off;
};

/* clang-format off */
#define BF(f, t, h) {#f, h, t, offsetof(struct fp_backend_stats, f)}
/* clang-format on */

static const struct bfield bfields[] = {
        BF(slots_busy, M_GAUGE, "Requests or sessions holding a server slot."),
        BF(queue_len, M_GAUGE, "Requests or sessions waiting for a server slot."),
        BF(queue_max, M_GAUGE, "Highest queue_len seen."),
        BF(queued, M_COUNTER, "Requests or sessions that had to wait for a slot."),
        BF(queue_timeouts, M_COUNTER, "Refused: waited timeouts.queue without a slot."),
        BF(queue_dropped_oldest, M_COUNTER, "Refused: oldest waiting, dropped for a newer one."),
        BF(queue_full, M_COUNTER, "Refused: no queue (queue_size 0) and no slot."),
        BF(queue_dropped_stale, M_COUNTER,
           "Refused: waited over codel_target in a standing queue."),
        BF(queue_client_gone, M_COUNTER, "Left the queue because the client closed."),
        BF(queue_lifo, M_COUNTER, "Times the queue turned standing (LIFO)."),
};

#define NB(a) (sizeof(a) / sizeof((a)[0]))

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int     n;
    bool    room = o->len < o->size;

    va_start(ap, fmt);
    n = vsnprintf(room ? o->buf + o->len : NULL, room ? o->size - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        o->len += (size_t)n;
    }
}

/*
 * Writes s as a label value (Prometheus: backslash, quote and newline escaped) or a JSON
 * string body (also every other control character). Names come from the configuration.
 */
static void
out_escaped(struct out *o, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '\\' || ch == '"') {
            out_printf(o, "\\%c", ch);
        } else if (ch == '\n') {
            out_printf(o, "\\n");
        } else if (ch < 0x20 && o->fmt == FP_STATS_JSON) {
            out_printf(o, "\\u%04x", ch);
        } else {
            out_printf(o, "%c", ch);
        }
    }
}

static void
fam_open(struct out *o, const char *name, enum mtype type, const char *help)
{
    o->fam = name;
    if (o->fmt == FP_STATS_PROMETHEUS) {
        out_printf(o, "# HELP %s ", name);
        out_escaped(o, help);
        out_printf(o, "\n# TYPE %s %s\n", name, mtype_name[type]);
        return;
    }
    out_printf(o, "%s{\"name\":\"%s\",\"type\":\"%s\",\"help\":\"", o->first_fam ? "" : ",", name,
               mtype_name[type]);
    out_escaped(o, help);
    out_printf(o, "\",\"samples\":[");
    o->first_fam = false;
    o->first_sample = true;
}

static void
fam_close(struct out *o)
{
    if (o->fmt == FP_STATS_JSON) {
        out_printf(o, "]}");
    }
}

/* One sample of the open family: its name plus suffix ("_bucket", ...), labels, value. */
static void
sample(struct out *o, const char *suffix, const struct label *l, unsigned nl, const char *value)
{
    unsigned i;

    o->nb_samples++;
    if (o->fmt == FP_STATS_PROMETHEUS) {
        out_printf(o, "%s%s", o->fam, suffix);
        for (i = 0; i < nl; i++) {
            out_printf(o, "%s%s=\"", i == 0 ? "{" : ",", l[i].k);
            out_escaped(o, l[i].v);
            out_printf(o, "\"");
        }
        out_printf(o, "%s %s\n", nl > 0 ? "}" : "", value);
        return;
    }
    out_printf(o, "%s{\"name\":\"%s%s\",\"labels\":{", o->first_sample ? "" : ",", o->fam, suffix);
    for (i = 0; i < nl; i++) {
        out_printf(o, "%s\"%s\":\"", i == 0 ? "" : ",", l[i].k);
        out_escaped(o, l[i].v);
        out_printf(o, "\"");
    }
    out_printf(o, "},\"value\":%s}", value);
    o->first_sample = false;
}

static void
sample_u64(struct out *o, const char *suffix, const struct label *l, unsigned nl, uint64_t v)
{
    char value[24];

    snprintf(value, sizeof(value), "%llu", (unsigned long long)v);
    sample(o, suffix, l, nl, value);
}

/* "fastproxy_" name, and "_total" for a counter. */
static const char *
fam_name(char *buf, size_t size, const char *prefix, const char *name, enum mtype type)
{
    snprintf(buf, size, "fastproxy_%s%s%s", prefix, name, type == M_COUNTER ? "_total" : "");
    return buf;
}

static uint64_t
load(const void *base, size_t off)
{
    return __atomic_load_n((const uint64_t *)(const void *)((const char *)base + off),
                           __ATOMIC_RELAXED);
}

static void
put_globals(struct out *o, const struct fp_workers *ws)
{
    fam_open(o, "fastproxy_workers", M_GAUGE, "Worker threads.");
    sample_u64(o, "", NULL, 0, ws->n);
    fam_close(o);
    fam_open(o, "fastproxy_maxconn", M_GAUGE, "Client sessions allowed, all workers together.");
    sample_u64(o, "", NULL, 0, ws->maxconn);
    fam_close(o);
    fam_open(o, "fastproxy_reuseport_cpu_steering", M_GAUGE,
             "1 when connections are steered to the worker of the CPU that received them.");
    sample_u64(o, "", NULL, 0, (uint64_t)ws->steered);
    fam_close(o);
}

static void
put_workers(struct out *o, const struct fp_workers *ws)
{
    struct label l[2];
    char         wid[16];
    char         name[96];
    unsigned     i;
    size_t       f;

    for (f = 0; f < NB(wfields); f++) {
        fam_open(o, fam_name(name, sizeof(name), "", wfields[f].name, wfields[f].type),
                 wfields[f].type, wfields[f].help);
        for (i = 0; i < ws->n; i++) {
            snprintf(wid, sizeof(wid), "%u", i);
            l[0] = (struct label){"worker", wid};
            sample_u64(o, "", l, 1, load(&ws->t[i].w.stats, wfields[f].off));
        }
        fam_close(o);
    }
    fam_open(o, "fastproxy_http_errors_total", M_COUNTER,
             "Responses the proxy wrote itself, by status code (mode http).");
    for (i = 0; i < ws->n; i++) {
        snprintf(wid, sizeof(wid), "%u", i);
        for (f = 0; f < NB(efields); f++) {
            l[0] = (struct label){"worker", wid};
            l[1] = (struct label){"code", efields[f].code};
            sample_u64(o, "", l, 2, load(&ws->t[i].w.stats, efields[f].off));
        }
    }
    fam_close(o);
}

static void
put_frontends(struct out *o, const struct fp_workers *ws)
{
    struct label l[2];
    char         wid[16];
    unsigned     i;
    uint32_t     fe;

    fam_open(o, "fastproxy_frontend_accepted_total", M_COUNTER,
             "Client connections accepted, by frontend.");
    for (i = 0; i < ws->n; i++) {
        snprintf(wid, sizeof(wid), "%u", i);
        for (fe = 0; fe < ws->conf->nb_frontends; fe++) {
            l[0] = (struct label){"worker", wid};
            l[1] = (struct label){"frontend", ws->conf->frontends[fe].name};
            sample_u64(o, "", l, 2,
                       __atomic_load_n(&ws->t[i].w.fe_stats[fe].accepted, __ATOMIC_RELAXED));
        }
    }
    fam_close(o);
}

/* "0.005" for 5 ms: the bound in seconds, as Prometheus names its buckets. */
static void
le_seconds(uint32_t ms, char *buf, size_t size)
{
    size_t n;

    snprintf(buf, size, "%u.%03u", ms / 1000, ms % 1000);
    n = strlen(buf);
    while (buf[n - 1] == '0') {
        buf[--n] = '\0';
    }
    if (buf[n - 1] == '.') {
        buf[n - 1] = '\0';
    }
}

/* The queueing delay of served requests as a histogram: cumulative buckets, sum, count. */
static void
put_qdelay(struct out *o, const struct fp_workers *ws)
{
    struct label l[3];
    char         wid[16];
    char         le[16];
    char         sum[32];
    unsigned     i;
    uint32_t     b;
    size_t       k;

    fam_open(o, "fastproxy_queue_delay_seconds", M_HISTOGRAM,
             "Time served requests (http) or sessions (tcp) waited for a server slot.");
    for (i = 0; i < ws->n; i++) {
        snprintf(wid, sizeof(wid), "%u", i);
        for (b = 0; b < ws->conf->nb_backends; b++) {
            const struct fp_backend_stats *bs = &ws->t[i].w.be_stats[b];
            uint64_t                       acc = 0;
            uint64_t                       ms;

            l[0] = (struct label){"worker", wid};
            l[1] = (struct label){"backend", ws->conf->backends[b].name};
            for (k = 0; k < FP_QDELAY_BUCKETS; k++) {
                acc += __atomic_load_n(&bs->qdelay[k], __ATOMIC_RELAXED);
                if (k < FP_QDELAY_BUCKETS - 1) {
                    le_seconds(fp_qdelay_bound_ms[k], le, sizeof(le));
                } else {
                    snprintf(le, sizeof(le), "+Inf");
                }
                l[2] = (struct label){"le", le};
                sample_u64(o, "_bucket", l, 3, acc);
            }
            ms = __atomic_load_n(&bs->qdelay_sum_ms, __ATOMIC_RELAXED);
            snprintf(sum, sizeof(sum), "%llu.%03llu", (unsigned long long)(ms / 1000),
                     (unsigned long long)(ms % 1000));
            sample(o, "_sum", l, 2, sum);
            sample_u64(o, "_count", l, 2, acc);
        }
    }
    fam_close(o);
}

static void
put_backends(struct out *o, const struct fp_workers *ws)
{
    struct label l[2];
    char         wid[16];
    char         name[96];
    unsigned     i;
    uint32_t     b;
    size_t       f;

    for (f = 0; f < NB(bfields); f++) {
        fam_open(o, fam_name(name, sizeof(name), "", bfields[f].name, bfields[f].type),
                 bfields[f].type, bfields[f].help);
        for (i = 0; i < ws->n; i++) {
            snprintf(wid, sizeof(wid), "%u", i);
            for (b = 0; b < ws->conf->nb_backends; b++) {
                l[0] = (struct label){"worker", wid};
                l[1] = (struct label){"backend", ws->conf->backends[b].name};
                sample_u64(o, "", l, 2, load(&ws->t[i].w.be_stats[b], bfields[f].off));
            }
        }
        fam_close(o);
    }
    put_qdelay(o, ws);
}

static void
put_servers(struct out *o, const struct fp_workers *ws)
{
    static const struct {
        const char *name;
        const char *help;
        enum mtype  type;
        size_t      off;
    } sfields[] = {
            {"server_limit",
             "This worker's limit on the slots of this server: its share of maxconn, or with "
             "maxconn auto the adaptive limit now (0: none).",
             M_GAUGE, offsetof(struct fp_server_stats, limit)},
            {"server_slots_busy", "Requests or sessions holding a slot of this server.", M_GAUGE,
             offsetof(struct fp_server_stats, slots_busy)},
            {"server_selected",
             "Slots of this server taken (requests or sessions, retries "
             "included).",
             M_COUNTER, offsetof(struct fp_server_stats, selected)},
    };
    struct label l[3];
    char         wid[16];
    char         name[96];
    unsigned     i;
    uint32_t     b;
    uint32_t     k;
    size_t       f;

    for (f = 0; f < NB(sfields); f++) {
        fam_open(o, fam_name(name, sizeof(name), "", sfields[f].name, sfields[f].type),
                 sfields[f].type, sfields[f].help);
        for (i = 0; i < ws->n; i++) {
            const struct fp_worker *w = &ws->t[i].w;

            snprintf(wid, sizeof(wid), "%u", i);
            for (b = 0; b < ws->conf->nb_backends; b++) {
                const struct fp_backend_conf *be = &ws->conf->backends[b];

                for (k = 0; k < be->nb_servers; k++) {
                    l[0] = (struct label){"worker", wid};
                    l[1] = (struct label){"backend", be->name};
                    l[2] = (struct label){"server", be->servers[k].name};
                    sample_u64(o, "", l, 3,
                               load(&w->srv_stats[w->srv_base[b] + k], sfields[f].off));
                }
            }
        }
        fam_close(o);
    }
}

/* The I/O backend's counters: the common ones, then those the backend lists (net/io.h). */
static void
put_io(struct out *o, const struct fp_workers *ws)
{
    static const struct fp_io_counter common[] = {
            {"conn_pool_empty", "Connections refused by the I/O backend: its pool was empty.",
             false, offsetof(struct fp_io, conn_pool_empty), 0},
            {"accept_errors", "accept() failures other than would-block.", false,
             offsetof(struct fp_io, accept_errors), 0},
    };
    const struct fp_io_ops *ops = ws->t[0].io->ops;
    struct label            l[1];
    char                    wid[16];
    char                    name[96];
    unsigned                i;
    unsigned                f;

    for (f = 0; f < NB(common) + ops->nb_counters; f++) {
        const struct fp_io_counter *c =
                f < NB(common) ? &common[f] : &ops->counters[f - NB(common)];
        enum mtype type = c->gauge ? M_GAUGE : M_COUNTER;

        fam_open(o, fam_name(name, sizeof(name), "io_", c->name, type), type, c->help);
        for (i = 0; i < ws->n; i++) {
            if (f >= NB(common) && ws->t[i].io->ops->counters != ops->counters) {
                continue;
            }
            snprintf(wid, sizeof(wid), "%u", i);
            l[0] = (struct label){"worker", wid};
            sample_u64(o, "", l, 1, fp_io_counter_load(ws->t[i].io, c));
        }
        fam_close(o);
    }
}

/* Writes the whole page into o (or, with no room, only measures it). */
static void
put_page(struct out *o, const struct fp_workers *ws, enum fp_stats_fmt fmt, char *buf, size_t size)
{
    memset(o, 0, sizeof(*o));
    o->buf = buf;
    o->size = size;
    o->fmt = fmt;
    o->first_fam = true;
    if (fmt == FP_STATS_JSON) {
        out_printf(o, "{\"families\":[");
    }
    put_globals(o, ws);
    put_workers(o, ws);
    put_frontends(o, ws);
    put_backends(o, ws);
    put_servers(o, ws);
    put_io(o, ws);
    if (fmt == FP_STATS_JSON) {
        out_printf(o, "]}\n");
    }
}

size_t
fp_stats_format(const struct fp_workers *ws, enum fp_stats_fmt fmt, char *out, size_t size)
{
    struct out o;

    put_page(&o, ws, fmt, out, size);
    return o.len;
}

size_t
fp_stats_bound(const struct fp_workers *ws)
{
    struct out o;
    size_t     bound = 0;
    size_t     need;
    int        fmt;

    for (fmt = FP_STATS_PROMETHEUS; fmt <= FP_STATS_JSON; fmt++) {
        /* Measured now, when the values are small: each may grow to 20 digits, a histogram
         * sum to 24 characters. */
        put_page(&o, ws, (enum fp_stats_fmt)fmt, NULL, 0);
        need = o.len + (size_t)o.nb_samples * 24;
        bound = need > bound ? need : bound;
    }
    return bound + 1; /* vsnprintf's NUL */
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
