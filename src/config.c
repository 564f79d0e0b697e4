/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * YAML configuration loader, startup only. libyaml builds the document tree (with the line
 * and column of every node); the tables below walk it. Each mapping in the file has one table
 * of the keys it accepts, with one function per key that checks the value's type and range
 * and stores it. Cross references (names, backends, CPUs) are checked after the walk, with
 * the positions the walk recorded.
 */
#include "src/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "fp_build_config.h"

struct cfg {
    const char      *file;
    char            *err;
    size_t           errlen;
    yaml_document_t *doc;
    struct fp_conf  *conf;
    yaml_node_t     *io_node; /* global.io, for messages about io: dpdk */
};

typedef int (*cfg_key_fn)(struct cfg *c, yaml_node_t *val, void *obj);

struct cfg_key {
    const char *name;
    cfg_key_fn  parse;
    int         required;
};

static int
cfg_error(struct cfg *c, const yaml_node_t *n, const char *fmt, ...)
{
    char    msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n != NULL) {
        snprintf(c->err, c->errlen, "%s:%zu:%zu: %s", c->file, n->start_mark.line + 1,
                 n->start_mark.column + 1, msg);
    } else {
        snprintf(c->err, c->errlen, "%s: %s", c->file, msg);
    }
    return -1;
}

static int
cfg_error_at(struct cfg *c, const struct fp_conf_loc *loc, const char *msg)
{
    snprintf(c->err, c->errlen, "%s:%u:%u: %s", c->file, loc->line, loc->col, msg);
    return -1;
}

static struct fp_conf_loc
node_loc(const yaml_node_t *n)
{
    struct fp_conf_loc l = {(uint32_t)n->start_mark.line + 1, (uint32_t)n->start_mark.column + 1};

    return l;
}

static const char *
node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static const char *
scalar(struct cfg *c, yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        cfg_error(c, n, "wrong type: expected %s, found %s", what, node_kind(n));
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

static int
parse_map(struct cfg *c, yaml_node_t *n, const struct cfg_key *keys, void *obj, const char *what)
{
    yaml_node_pair_t *p;
    yaml_node_t      *k;
    const char       *name;
    uint64_t          seen = 0;
    unsigned          i;

    if (n->type != YAML_MAPPING_NODE) {
        return cfg_error(c, n, "wrong type: %s must be a mapping, found %s", what, node_kind(n));
    }
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        k = yaml_document_get_node(c->doc, p->key);
        name = scalar(c, k, "a key");
        if (name == NULL) {
            return -1;
        }
        for (i = 0; keys[i].name != NULL; i++) {
            if (strcmp(keys[i].name, name) == 0) {
                break;
            }
        }
        if (keys[i].name == NULL) {
            return cfg_error(c, k, "unknown key '%s' in %s", name, what);
        }
        if (seen & (1ULL << i)) {
            return cfg_error(c, k, "duplicate key '%s' in %s", name, what);
        }
        seen |= 1ULL << i;
        if (keys[i].parse(c, yaml_document_get_node(c->doc, p->value), obj) != 0) {
            return -1;
        }
    }
    for (i = 0; keys[i].name != NULL; i++) {
        if (keys[i].required && !(seen & (1ULL << i))) {
            return cfg_error(c, n, "missing key '%s' in %s", keys[i].name, what);
        }
    }
    return 0;
}

static int
get_u32(struct cfg *c, yaml_node_t *n, uint32_t min, uint32_t max, uint32_t *out)
{
    const char   *s = scalar(c, n, "an integer");
    char         *end;
    unsigned long v;

    if (s == NULL) {
        return -1;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    /*
     * The error paths return -1 themselves rather than cfg_error's result, so the compiler sees
     * that 0 is returned only when *out is written (callers read *out after a 0 only).
     */
    if (*s < '0' || *s > '9' || *end != '\0') {
        cfg_error(c, n, "wrong type: expected an integer, found '%s'", s);
        return -1;
    }
    if (errno == ERANGE || v < min || v > max) {
        cfg_error(c, n, "%s is out of range (%u to %u)", s, min, max);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

struct cfg_enum {
    const char *name;
    int         value;
};

/* Stores in *out the value of the table entry named by n; the message lists the names. */
static int
get_enum(struct cfg *c, yaml_node_t *n, const char *what, const struct cfg_enum *e, int *out)
{
    const char *s = scalar(c, n, "a name");
    char        names[128] = "";
    size_t      i;

    if (s == NULL) {
        return -1;
    }
    for (i = 0; e[i].name != NULL; i++) {
        if (strcmp(s, e[i].name) == 0) {
            *out = e[i].value;
            return 0;
        }
    }
    for (i = 0; e[i].name != NULL; i++) {
        if (i > 0) {
            strncat(names, e[i + 1].name == NULL ? " or " : ", ",
                    sizeof(names) - strlen(names) - 1);
        }
        strncat(names, e[i].name, sizeof(names) - strlen(names) - 1);
    }
    return cfg_error(c, n, "bad %s '%s' (expected %s)", what, s, names);
}

int
fp_conf_parse_duration(const char *s, uint32_t *ms)
{
    char              *end;
    unsigned long long v;
    unsigned long long mult;

    if (*s < '0' || *s > '9') {
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (*end == '\0' || strcmp(end, "ms") == 0) {
        mult = 1;
    } else if (strcmp(end, "s") == 0) {
        mult = 1000;
    } else if (strcmp(end, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(end, "h") == 0) {
        mult = 3600 * 1000;
    } else if (strcmp(end, "d") == 0) {
        mult = 86400 * 1000;
    } else {
        return -EINVAL;
    }
    if (v > UINT32_MAX / mult) {
        return -ERANGE;
    }
    *ms = (uint32_t)(v * mult);
    return 0;
}

int
fp_conf_parse_size(const char *s, uint64_t *bytes)
{
    char              *end;
    unsigned long long v;
    unsigned           shift;

    if (*s < '0' || *s > '9') {
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (*end == '\0') {
        shift = 0;
    } else if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0) {
        shift = 10;
    } else if (strcmp(end, "m") == 0 || strcmp(end, "M") == 0) {
        shift = 20;
    } else if (strcmp(end, "g") == 0 || strcmp(end, "G") == 0) {
        shift = 30;
    } else {
        return -EINVAL;
    }
    if (v > (UINT64_MAX >> shift)) {
        return -ERANGE;
    }
    *bytes = (uint64_t)v << shift;
    return 0;
}

static int
get_duration(struct cfg *c, yaml_node_t *n, uint32_t *out)
{
    const char *s = scalar(c, n, "a duration");
    int         rc;

    if (s == NULL) {
        return -1;
    }
    rc = fp_conf_parse_duration(s, out);
    if (rc == -ERANGE) {
        return cfg_error(c, n, "duration '%s' is too long (at most 49d)", s);
    }
    if (rc != 0) {
        return cfg_error(c, n, "bad duration '%s' (expected a number with ms, s, m, h or d)", s);
    }
    if (*out == 0) {
        return cfg_error(c, n, "duration must be greater than 0");
    }
    return 0;
}

static int
get_addr(struct cfg *c, yaml_node_t *n, struct fp_addr *a)
{
    const char *s = scalar(c, n, "an address");
    int         rc;

    if (s == NULL) {
        return -1;
    }
    rc = fp_addr_parse(a, s);
    if (rc == -ERANGE) {
        return cfg_error(c, n, "port out of range in '%s' (1 to 65535)", s);
    }
    if (rc != 0) {
        return cfg_error(c, n, "bad address '%s' (expected IPv4:port or [IPv6]:port)", s);
    }
    return 0;
}

static int
get_name(struct cfg *c, yaml_node_t *n, char **out)
{
    const char *s = scalar(c, n, "a name");
    size_t      i;

    if (s == NULL) {
        return -1;
    }
    if (s[0] == '\0' || strlen(s) > 63) {
        return cfg_error(c, n, "a name must have 1 to 63 characters");
    }
    for (i = 0; s[i] != '\0'; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.')) {
            return cfg_error(c, n, "bad name '%s' (letters, digits, '_', '-', '.')", s);
        }
    }
    *out = strdup(s);
    if (*out == NULL) {
        return cfg_error(c, n, "out of memory");
    }
    return 0;
}

static yaml_node_t *
seq_item(struct cfg *c, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(c->doc, seq->data.sequence.items.start[i]);
}

static size_t
seq_len(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static int
need_seq(struct cfg *c, yaml_node_t *n, const char *what, size_t min)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        return cfg_error(c, n, "wrong type: %s must be a list, found %s", what, node_kind(n));
    }
    if (seq_len(n) < min) {
        return cfg_error(c, n, "%s must have at least %zu item(s)", what, min);
    }
    return 0;
}

/* ---- global ---- */

/* True when n is the scalar "auto" (workers, maxpipes, a server's maxconn). */
static bool
is_auto(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && strcmp((char *)n->data.scalar.value, "auto") == 0;
}

static int
g_workers(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_global_conf *g = obj;

    if (is_auto(n)) {
        g->workers = 0;
        return 0;
    }
    return get_u32(c, n, 1, FP_MAX_WORKERS, &g->workers);
}

static int
g_cpus(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_global_conf *g = obj;
    cpu_set_t              allowed;
    uint32_t               cpu;
    size_t                 i;
    size_t                 j;

    if (need_seq(c, n, "cpus", 1) != 0) {
        return -1;
    }
    if (seq_len(n) > FP_MAX_WORKERS) {
        return cfg_error(c, n, "cpus: at most %d entries", FP_MAX_WORKERS);
    }
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        return cfg_error(c, n, "cannot read the allowed CPUs: %s", strerror(errno));
    }
    for (i = 0; i < seq_len(n); i++) {
        if (get_u32(c, seq_item(c, n, i), 0, CPU_SETSIZE - 1, &cpu) != 0) {
            return -1;
        }
        if (!CPU_ISSET(cpu, &allowed)) {
            return cfg_error(c, seq_item(c, n, i), "cpu %u is not available to this process",
                             cpu);
        }
        for (j = 0; j < i; j++) {
            if (g->cpus[j] == (int)cpu) {
                return cfg_error(c, seq_item(c, n, i), "cpu %u is listed twice", cpu);
            }
        }
        g->cpus[i] = (int)cpu;
    }
    g->nb_cpus = (uint32_t)seq_len(n);
    return 0;
}

static int
g_io(struct cfg *c, yaml_node_t *n, void *obj)
{
    static const struct cfg_enum ios[] = {
        {"kernel", FP_IO_KERNEL}, {"dpdk", FP_IO_DPDK}, {"uring", FP_IO_URING}, {NULL, 0}};
    int v;

    c->io_node = n;
    if (get_enum(c, n, "io", ios, &v) != 0) {
        return -1;
    }
#if !FP_HAVE_URING
    if (v == FP_IO_URING) {
        return cfg_error(c, n, "io: uring: this fastproxy was built without liburing "
                         "(meson -During=disabled or liburing-dev missing); use io: kernel");
    }
#endif
    ((struct fp_global_conf *)obj)->io = (enum fp_io_kind)v;
    return 0;
}

static int
g_maxconn(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_u32(c, n, 1, 10000000, &((struct fp_global_conf *)obj)->maxconn);
}

static int
g_bufsize(struct cfg *c, yaml_node_t *n, void *obj)
{
    const char *s = scalar(c, n, "a size");
    uint64_t    v;

    if (s == NULL) {
        return -1;
    }
    if (fp_conf_parse_size(s, &v) != 0) {
        return cfg_error(c, n, "bad size '%s' (expected a number with k, m or g)", s);
    }
    if (v < 1024 || v > (16u << 20)) {
        return cfg_error(c, n, "bufsize %s is out of range (1k to 16m)", s);
    }
    ((struct fp_global_conf *)obj)->bufsize = (uint32_t)v;
    return 0;
}

static int
g_backlog(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_u32(c, n, 1, 65535, &((struct fp_global_conf *)obj)->backlog);
}

static int
g_maxpipes(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_global_conf *g = obj;

    if (is_auto(n)) {
        g->maxpipes = FP_MAXPIPES_AUTO;
        return 0;
    }
    return get_u32(c, n, 0, 100000, &g->maxpipes);
}

/* "0", "Nus" or "Nms", at most 1 ms: how long a busy kernel-backend loop gathers events. */
static int
g_io_collect(struct cfg *c, yaml_node_t *n, void *obj)
{
    const char        *s = scalar(c, n, "a duration");
    char              *end;
    unsigned long long v;

    if (s == NULL) {
        return -1;
    }
    if (*s < '0' || *s > '9') {
        goto bad;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE) {
        goto range;
    }
    if (strcmp(end, "ms") == 0) {
        if (v > 1) {
            goto range;
        }
        v *= 1000;
    } else if (strcmp(end, "us") != 0 && !(*end == '\0' && v == 0)) {
        goto bad;
    }
    if (v > 1000) {
        goto range;
    }
    ((struct fp_global_conf *)obj)->io_collect_us = (uint32_t)v;
    ((struct fp_global_conf *)obj)->io_collect_set = true;
    return 0;
bad:
    return cfg_error(c, n, "bad io_collect '%s' (expected 0, a number with us, or 1ms)", s);
range:
    return cfg_error(c, n, "io_collect '%s' is too long (at most 1ms)", s);
}

static int
g_grace(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_duration(c, n, &((struct fp_global_conf *)obj)->grace_ms);
}

static int
o_discipline(struct cfg *c, yaml_node_t *n, void *obj)
{
    static const struct cfg_enum disciplines[] = {
        {"adaptive_lifo", FP_QUEUE_ADAPTIVE_LIFO}, {"fifo", FP_QUEUE_FIFO}, {NULL, 0}};
    int v;

    if (get_enum(c, n, "queue_discipline", disciplines, &v) != 0) {
        return -1;
    }
    ((struct fp_overload_conf *)obj)->discipline = (enum fp_queue_discipline)v;
    return 0;
}

static int
o_codel_target(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_duration(c, n, &((struct fp_overload_conf *)obj)->codel_target_ms);
}

static int
o_codel_interval(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_duration(c, n, &((struct fp_overload_conf *)obj)->codel_interval_ms);
}

static int
o_shed_queue(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_u32(c, n, 0, 65535, &((struct fp_overload_conf *)obj)->shed_queue);
}

static const struct cfg_key overload_keys[] = {
    {"queue_discipline", o_discipline, 0},
    {"codel_target", o_codel_target, 0},
    {"codel_interval", o_codel_interval, 0},
    {"shed_queue", o_shed_queue, 0},
    {NULL, NULL, 0},
};

static int
g_overload(struct cfg *c, yaml_node_t *n, void *obj)
{
    return parse_map(c, n, overload_keys, &((struct fp_global_conf *)obj)->overload, "overload");
}

/* An absolute path, so that reopening it on SIGUSR1 does not depend on the working directory. */
static int
g_log_file(struct cfg *c, yaml_node_t *n, void *obj)
{
    const char *s = scalar(c, n, "a file path");

    if (s == NULL) {
        return -1;
    }
    if (s[0] != '/') {
        return cfg_error(c, n, "log_file must be an absolute path, found '%s'", s);
    }
    c->conf->log_file = strdup(s);
    if (c->conf->log_file == NULL) {
        return cfg_error(c, n, "out of memory");
    }
    return 0;
}

static const struct cfg_key global_keys[] = {
    {"workers", g_workers, 0}, {"cpus", g_cpus, 0},       {"io", g_io, 0},
    {"maxconn", g_maxconn, 0}, {"bufsize", g_bufsize, 0}, {"backlog", g_backlog, 0},
    {"grace", g_grace, 0},     {"overload", g_overload, 0}, {"log_file", g_log_file, 0},
    {"maxpipes", g_maxpipes, 0}, {"io_collect", g_io_collect, 0},
    {NULL, NULL, 0},
};

/* ---- defaults ---- */

#define TIMEOUT_KEY(field)                                                                  \
    static int t_##field(struct cfg *c, yaml_node_t *n, void *obj)                          \
    {                                                                                       \
        return get_duration(c, n, &((struct fp_timeouts_conf *)obj)->field##_ms);           \
    }
TIMEOUT_KEY(connect)
TIMEOUT_KEY(client)
TIMEOUT_KEY(server)
TIMEOUT_KEY(http_request)
TIMEOUT_KEY(keep_alive)
TIMEOUT_KEY(queue)

static const struct cfg_key timeout_keys[] = {
    {"connect", t_connect, 0},           {"client", t_client, 0},
    {"server", t_server, 0},             {"http_request", t_http_request, 0},
    {"keep_alive", t_keep_alive, 0},     {"queue", t_queue, 0},
    {NULL, NULL, 0},
};

static int
d_timeouts(struct cfg *c, yaml_node_t *n, void *obj)
{
    return parse_map(c, n, timeout_keys, obj, "timeouts");
}

static const struct cfg_key defaults_keys[] = {
    {"timeouts", d_timeouts, 0},
    {NULL, NULL, 0},
};

/* ---- frontends ---- */

static int
f_name(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_frontend_conf *f = obj;

    f->loc = node_loc(n);
    return get_name(c, n, &f->name);
}

/* Parses one bind address; the place it is written is kept for the whole-file checks. */
static int
bind_item(struct cfg *c, yaml_node_t *n, struct fp_frontend_conf *f)
{
    if (get_addr(c, n, &f->binds[f->nb_binds]) != 0) {
        return -1;
    }
    f->bind_locs[f->nb_binds] = node_loc(n);
    f->nb_binds++;
    return 0;
}

static int
f_bind(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_frontend_conf *f = obj;
    size_t                   nb = 1;
    size_t                   i;

    if (n->type != YAML_SCALAR_NODE) {
        if (need_seq(c, n, "bind", 1) != 0) {
            return -1;
        }
        nb = seq_len(n);
    }
    f->binds = calloc(nb, sizeof(*f->binds));
    f->bind_locs = calloc(nb, sizeof(*f->bind_locs));
    if (f->binds == NULL || f->bind_locs == NULL) {
        return cfg_error(c, n, "out of memory");
    }
    if (n->type == YAML_SCALAR_NODE) {
        return bind_item(c, n, f);
    }
    for (i = 0; i < nb; i++) {
        if (bind_item(c, seq_item(c, n, i), f) != 0) {
            return -1;
        }
    }
    return 0;
}

static int
f_mode(struct cfg *c, yaml_node_t *n, void *obj)
{
    static const struct cfg_enum modes[] = {
        {"http", FP_MODE_HTTP}, {"tcp", FP_MODE_TCP}, {NULL, 0}};
    int v;

    if (get_enum(c, n, "mode", modes, &v) != 0) {
        return -1;
    }
    ((struct fp_frontend_conf *)obj)->mode = (enum fp_mode)v;
    return 0;
}

static int
f_default_backend(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_frontend_conf *f = obj;

    f->default_backend_loc = node_loc(n);
    return get_name(c, n, &f->default_backend_name);
}

static int
get_bool(struct cfg *c, yaml_node_t *n, bool *out)
{
    const char *s = scalar(c, n, "true or false");

    if (s == NULL) {
        return -1;
    }
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0) {
        *out = true;
    } else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0) {
        *out = false;
    } else {
        return cfg_error(c, n, "wrong type: expected true or false, found '%s'", s);
    }
    return 0;
}

static int
get_size(struct cfg *c, yaml_node_t *n, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *s = scalar(c, n, "a size");

    if (s == NULL) {
        return -1;
    }
    if (fp_conf_parse_size(s, out) != 0) {
        return cfg_error(c, n, "bad size '%s' (expected a number with k, m or g)", s);
    }
    if (*out < min || *out > max) {
        return cfg_error(c, n, "size %s is out of range (%llu to %llu bytes)", s,
                         (unsigned long long)min, (unsigned long long)max);
    }
    return 0;
}

static int
get_text(struct cfg *c, yaml_node_t *n, const char *what, char **out)
{
    const char *s = scalar(c, n, what);
    size_t      i;

    if (s == NULL) {
        return -1;
    }
    if (s[0] == '\0' || strlen(s) > 255) {
        return cfg_error(c, n, "%s must have 1 to 255 characters", what);
    }
    for (i = 0; s[i] != '\0'; i++) {
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f) {
            return cfg_error(c, n, "%s '%s' has a space or a control character", what, s);
        }
    }
    *out = strdup(s);
    if (*out == NULL) {
        return cfg_error(c, n, "out of memory");
    }
    return 0;
}

static int
f_forwarded_for(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_bool(c, n, &((struct fp_frontend_conf *)obj)->forwarded_for);
}

static int
f_access_log(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_bool(c, n, &((struct fp_frontend_conf *)obj)->access_log);
}

static int
l_request_line(struct cfg *c, yaml_node_t *n, void *obj)
{
    uint64_t v;

    if (get_size(c, n, 64, 1u << 20, &v) != 0) {
        return -1;
    }
    ((struct fp_http_limits_conf *)obj)->request_line = (uint32_t)v;
    return 0;
}

static int
l_header_size(struct cfg *c, yaml_node_t *n, void *obj)
{
    uint64_t v;

    if (get_size(c, n, 256, 1u << 20, &v) != 0) {
        return -1;
    }
    ((struct fp_http_limits_conf *)obj)->header_size = (uint32_t)v;
    return 0;
}

static int
l_headers(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_u32(c, n, 1, FP_HTTP_MAX_HEADERS, &((struct fp_http_limits_conf *)obj)->headers);
}

static int
l_body_size(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_size(c, n, 0, UINT64_MAX, &((struct fp_http_limits_conf *)obj)->body_size);
}

static const struct cfg_key limits_keys[] = {
    {"request_line", l_request_line, 0},
    {"header_size", l_header_size, 0},
    {"headers", l_headers, 0},
    {"body_size", l_body_size, 0},
    {NULL, NULL, 0},
};

static int
f_limits(struct cfg *c, yaml_node_t *n, void *obj)
{
    return parse_map(c, n, limits_keys, &((struct fp_frontend_conf *)obj)->limits, "limits");
}

static int
r_host(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_route_conf *r = obj;

    if (get_text(c, n, "host", &r->host) != 0) {
        return -1;
    }
    r->host_len = (uint32_t)strlen(r->host);
    return 0;
}

static int
r_path_prefix(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_route_conf *r = obj;

    if (get_text(c, n, "path_prefix", &r->path_prefix) != 0) {
        return -1;
    }
    if (r->path_prefix[0] != '/') {
        return cfg_error(c, n, "path_prefix must start with '/'");
    }
    r->path_prefix_len = (uint32_t)strlen(r->path_prefix);
    return 0;
}

static int
r_backend(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_route_conf *r = obj;

    r->backend_loc = node_loc(n);
    return get_name(c, n, &r->backend_name);
}

static const struct cfg_key route_keys[] = {
    {"host", r_host, 0},
    {"path_prefix", r_path_prefix, 0},
    {"backend", r_backend, 1},
    {NULL, NULL, 0},
};

static int
f_routes(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_frontend_conf *f = obj;
    size_t                   i;

    if (need_seq(c, n, "routes", 0) != 0) {
        return -1;
    }
    f->routes = calloc(seq_len(n) + 1, sizeof(*f->routes));
    if (f->routes == NULL) {
        return cfg_error(c, n, "out of memory");
    }
    for (i = 0; i < seq_len(n); i++) {
        f->nb_routes++;
        if (parse_map(c, seq_item(c, n, i), route_keys, &f->routes[i], "a route") != 0) {
            return -1;
        }
    }
    return 0;
}

static const struct cfg_key frontend_keys[] = {
    {"name", f_name, 1},
    {"bind", f_bind, 1},
    {"mode", f_mode, 0},
    {"default_backend", f_default_backend, 1},
    {"forwarded_for", f_forwarded_for, 0},
    {"access_log", f_access_log, 0},
    {"routes", f_routes, 0},
    {"limits", f_limits, 0},
    {NULL, NULL, 0},
};

/* ---- backends ---- */

static int
s_name(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_server_conf *s = obj;

    s->loc = node_loc(n);
    return get_name(c, n, &s->name);
}

static int
s_address(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_addr(c, n, &((struct fp_server_conf *)obj)->addr);
}

static int
s_weight(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_u32(c, n, 0, 256, &((struct fp_server_conf *)obj)->weight);
}

static int
s_maxconn(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_server_conf *s = obj;

    if (is_auto(n)) {
        s->maxconn = FP_SRV_MAXCONN_AUTO;
        return 0;
    }
    return get_u32(c, n, 0, 10000000, &s->maxconn);
}

static const struct cfg_key server_keys[] = {
    {"name", s_name, 1},     {"address", s_address, 1}, {"weight", s_weight, 0},
    {"maxconn", s_maxconn, 0}, {NULL, NULL, 0},
};

static int
b_name(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_backend_conf *b = obj;

    b->loc = node_loc(n);
    return get_name(c, n, &b->name);
}

static int
b_balance(struct cfg *c, yaml_node_t *n, void *obj)
{
    static const struct cfg_enum algos[] = {{"roundrobin", FP_LB_ROUNDROBIN}, {NULL, 0}};
    int v;

    if (get_enum(c, n, "balance", algos, &v) != 0) {
        return -1;
    }
    ((struct fp_backend_conf *)obj)->balance = (enum fp_balance)v;
    return 0;
}

static int
b_servers(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_backend_conf *b = obj;
    size_t                  i;

    if (need_seq(c, n, "servers", 1) != 0) {
        return -1;
    }
    if (seq_len(n) > FP_MAX_SERVERS_PER_BACKEND) {
        return cfg_error(c, n, "a backend has at most %d servers", FP_MAX_SERVERS_PER_BACKEND);
    }
    b->servers = calloc(seq_len(n), sizeof(*b->servers));
    if (b->servers == NULL) {
        return cfg_error(c, n, "out of memory");
    }
    for (i = 0; i < seq_len(n); i++) {
        b->servers[i].weight = 1;
        b->nb_servers++;
        if (parse_map(c, seq_item(c, n, i), server_keys, &b->servers[i], "a server") != 0) {
            return -1;
        }
    }
    fp_backend_conf_weights(b);
    return 0;
}

static int
b_queue_size(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_u32(c, n, 0, 1000000, &((struct fp_backend_conf *)obj)->queue_size);
}

static const struct cfg_key backend_keys[] = {
    {"name", b_name, 1},
    {"balance", b_balance, 0},
    {"queue_size", b_queue_size, 0},
    {"servers", b_servers, 1},
    {NULL, NULL, 0},
};

/* ---- dpdk ---- */

/* Parses a dotted IPv4 address (no port, no prefix) into *out. */
static int
get_ipv4(struct cfg *c, yaml_node_t *n, const char *what, struct in_addr *out)
{
    const char *s = scalar(c, n, "an IPv4 address");

    if (s == NULL) {
        return -1;
    }
    if (inet_pton(AF_INET, s, out) != 1) {
        return cfg_error(c, n, "bad %s '%s' (expected an IPv4 address A.B.C.D)", what, s);
    }
    return 0;
}

static int
dp_eal(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_dpdk_conf *d = obj;
    yaml_node_t         *it;
    const char          *s;
    size_t               i;

    if (need_seq(c, n, "eal", 0) != 0) {
        return -1;
    }
    if (seq_len(n) > FP_DPDK_MAX_EAL_ARGS) {
        return cfg_error(c, n, "eal: at most %d arguments", FP_DPDK_MAX_EAL_ARGS);
    }
    for (i = 0; i < seq_len(n); i++) {
        it = seq_item(c, n, i);
        s = scalar(c, it, "a string");
        if (s == NULL) {
            return -1;
        }
        if (s[0] == '\0' || strlen(s) > 255) {
            return cfg_error(c, it, "an eal argument must have 1 to 255 characters");
        }
        /* The list is an argv, not a shell line: "-m 512" is one argument, which EAL rejects. */
        if (strpbrk(s, " \t\n") != NULL) {
            return cfg_error(c, it, "eal argument '%s' has a space: give each argument as its "
                             "own list item", s);
        }
        d->eal[i] = strdup(s);
        if (d->eal[i] == NULL) {
            return cfg_error(c, it, "out of memory");
        }
        d->nb_eal++;
    }
    return 0;
}

static int
dp_port(struct cfg *c, yaml_node_t *n, void *obj)
{
    uint32_t v;

    if (get_u32(c, n, 0, FP_DPDK_MAX_PORT, &v) != 0) {
        return -1;
    }
    ((struct fp_dpdk_conf *)obj)->port = (uint16_t)v;
    return 0;
}

/* The netmask of a prefix length 0..32, in host order. */
static uint32_t
prefix_mask(unsigned len)
{
    return len == 0 ? 0 : 0xffffffffu << (32 - len);
}

static int
dp_address(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_dpdk_conf *d = obj;
    const char          *s = scalar(c, n, "an address with a prefix length");
    const char          *slash;
    char                 host[INET_ADDRSTRLEN];
    char                *end;
    unsigned long        len;
    uint32_t             a;
    uint32_t             hostmask;

    if (s == NULL) {
        return -1;
    }
    slash = strchr(s, '/');
    if (slash == NULL || (size_t)(slash - s) >= sizeof(host) || slash[1] < '0' ||
        slash[1] > '9') {
        return cfg_error(c, n, "bad address '%s' (expected A.B.C.D/LEN, e.g. 10.77.0.2/24)", s);
    }
    memcpy(host, s, (size_t)(slash - s));
    host[slash - s] = '\0';
    len = strtoul(slash + 1, &end, 10);
    if (inet_pton(AF_INET, host, &d->addr) != 1 || *end != '\0') {
        return cfg_error(c, n, "bad address '%s' (expected A.B.C.D/LEN, e.g. 10.77.0.2/24)", s);
    }
    if (len < 1 || len > 32) {
        return cfg_error(c, n, "prefix length /%lu is out of range (1 to 32)", len);
    }
    d->prefix_len = (uint8_t)len;
    a = ntohl(d->addr.s_addr);
    hostmask = ~prefix_mask((unsigned)len);
    /* RFC 3021: on /31 and /32 every address is a host; otherwise the all-zeros and all-ones
     * host parts name the network and its broadcast. */
    if (a == 0 || (a >> 24) == 127 || (a >> 28) >= 14 ||
        (len <= 30 && ((a & hostmask) == 0 || (a & hostmask) == hostmask))) {
        return cfg_error(c, n, "'%s' is not a usable host address", s);
    }
    return 0;
}

static int
dp_gateway(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_dpdk_conf *d = obj;

    if (get_ipv4(c, n, "gateway", &d->gateway) != 0) {
        return -1;
    }
    if (d->gateway.s_addr == htonl(INADDR_ANY)) {
        return cfg_error(c, n, "gateway 0.0.0.0: leave the key out for no gateway");
    }
    return 0;
}

static int
dp_source_addresses(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_dpdk_conf *d = obj;
    size_t               i;

    if (need_seq(c, n, "source_addresses", 1) != 0) {
        return -1;
    }
    if (seq_len(n) > FP_DPDK_MAX_SRC_ADDRS) {
        return cfg_error(c, n, "source_addresses: at most %d addresses", FP_DPDK_MAX_SRC_ADDRS);
    }
    for (i = 0; i < seq_len(n); i++) {
        if (get_ipv4(c, seq_item(c, n, i), "source address", &d->src_addrs[i]) != 0) {
            return -1;
        }
        d->nb_src_addrs++;
    }
    return 0;
}

static int
dp_mbufs(struct cfg *c, yaml_node_t *n, void *obj)
{
    return get_u32(c, n, FP_DPDK_MIN_MBUFS, FP_DPDK_MAX_MBUFS,
                   &((struct fp_dpdk_conf *)obj)->mbufs);
}

static int
dp_poll(struct cfg *c, yaml_node_t *n, void *obj)
{
    static const struct cfg_enum polls[] = {
        {"busy", FP_DPDK_POLL_BUSY}, {"adaptive", FP_DPDK_POLL_ADAPTIVE}, {NULL, 0}};
    int v;

    if (get_enum(c, n, "poll", polls, &v) != 0) {
        return -1;
    }
    ((struct fp_dpdk_conf *)obj)->poll = (enum fp_dpdk_poll)v;
    return 0;
}

static int
dp_rss(struct cfg *c, yaml_node_t *n, void *obj)
{
    static const struct cfg_enum modes[] = {{"auto", FP_DPDK_RSS_AUTO},
                                            {"hardware", FP_DPDK_RSS_HARDWARE},
                                            {"software", FP_DPDK_RSS_SOFTWARE},
                                            {NULL, 0}};
    int v;

    if (get_enum(c, n, "rss", modes, &v) != 0) {
        return -1;
    }
    ((struct fp_dpdk_conf *)obj)->rss = (enum fp_dpdk_rss)v;
    return 0;
}

static const struct cfg_key dpdk_keys[] = {
    {"eal", dp_eal, 0},
    {"port", dp_port, 0},
    {"address", dp_address, 1},
    {"gateway", dp_gateway, 0},
    {"source_addresses", dp_source_addresses, 0},
    {"mbufs", dp_mbufs, 0},
    {"poll", dp_poll, 0},
    {"rss", dp_rss, 0},
    {NULL, NULL, 0},
};

/* Returns the value of key in the mapping n, or NULL. For positions in checks after a walk. */
static yaml_node_t *
map_value(struct cfg *c, yaml_node_t *n, const char *key)
{
    yaml_node_pair_t *p;
    yaml_node_t      *k;

    if (n == NULL || n->type != YAML_MAPPING_NODE) {
        return NULL;
    }
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        k = yaml_document_get_node(c->doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0) {
            return yaml_document_get_node(c->doc, p->value);
        }
    }
    return NULL;
}

static bool
dpdk_on_link(const struct fp_dpdk_conf *d, struct in_addr a)
{
    uint32_t mask = prefix_mask(d->prefix_len);

    return (ntohl(a.s_addr) & mask) == (ntohl(d->addr.s_addr) & mask);
}

/* The checks that need the whole section: the gateway and the source addresses are on the
 * port's subnet, and no address is given twice. */
static int
dpdk_check_section(struct cfg *c, yaml_node_t *n, const struct fp_dpdk_conf *d)
{
    yaml_node_t   *srcs = map_value(c, n, "source_addresses");
    char           net[INET_ADDRSTRLEN];
    struct in_addr na;
    uint32_t       i;
    uint32_t       j;

    na.s_addr = htonl(ntohl(d->addr.s_addr) & prefix_mask(d->prefix_len));
    inet_ntop(AF_INET, &na, net, sizeof(net));
    if (d->gateway.s_addr != htonl(INADDR_ANY)) {
        if (!dpdk_on_link(d, d->gateway)) {
            return cfg_error(c, map_value(c, n, "gateway"), "gateway is not on %s/%u, the "
                             "subnet of address", net, d->prefix_len);
        }
        if (d->gateway.s_addr == d->addr.s_addr) {
            return cfg_error(c, map_value(c, n, "gateway"), "gateway is our own address");
        }
    }
    for (i = 0; i < d->nb_src_addrs; i++) {
        if (!dpdk_on_link(d, d->src_addrs[i])) {
            return cfg_error(c, seq_item(c, srcs, i), "source address is not on %s/%u, the "
                             "subnet of address", net, d->prefix_len);
        }
        if (d->src_addrs[i].s_addr == d->addr.s_addr ||
            d->src_addrs[i].s_addr == d->gateway.s_addr) {
            return cfg_error(c, seq_item(c, srcs, i), "source address repeats address or "
                             "gateway");
        }
        for (j = 0; j < i; j++) {
            if (d->src_addrs[i].s_addr == d->src_addrs[j].s_addr) {
                return cfg_error(c, seq_item(c, srcs, i), "source address is listed twice");
            }
        }
    }
    return 0;
}

static int
r_dpdk(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_dpdk_conf *d = &c->conf->dpdk;

    d->present = true;
    if (parse_map(c, n, dpdk_keys, d, "dpdk") != 0) {
        return -1;
    }
    return dpdk_check_section(c, n, d);
}

/* Under io: dpdk every frontend listens in the user-space stack, which owns one IPv4 address:
 * a bind must name it or 0.0.0.0. Servers are reached through the same stack. */
static int
dpdk_check_binds(struct cfg *c, yaml_node_t *root)
{
    const struct fp_dpdk_conf *d = &c->conf->dpdk;
    const struct fp_addr      *a;
    yaml_node_t               *fes = map_value(c, root, "frontends");
    yaml_node_t               *bind;
    yaml_node_t               *at;
    char                       ip[INET_ADDRSTRLEN];
    uint32_t                   i;
    uint32_t                   k;

    inet_ntop(AF_INET, &d->addr, ip, sizeof(ip));
    for (i = 0; i < c->conf->nb_frontends; i++) {
        bind = map_value(c, seq_item(c, fes, i), "bind");
        for (k = 0; k < c->conf->frontends[i].nb_binds; k++) {
            a = &c->conf->frontends[i].binds[k];
            at = bind->type == YAML_SEQUENCE_NODE ? seq_item(c, bind, k) : bind;
            if (a->u.sa.sa_family != AF_INET) {
                return cfg_error(c, at, "io: dpdk binds IPv4 only (the stack is IPv4)");
            }
            if (a->u.sin.sin_addr.s_addr != htonl(INADDR_ANY) &&
                a->u.sin.sin_addr.s_addr != d->addr.s_addr) {
                return cfg_error(c, at, "io: dpdk can bind only %s (dpdk.address) or 0.0.0.0",
                                 ip);
            }
        }
    }
    return 0;
}

static int
dpdk_check_servers(struct cfg *c, yaml_node_t *root)
{
    const struct fp_dpdk_conf *d = &c->conf->dpdk;
    const struct fp_addr      *a;
    yaml_node_t               *bes = map_value(c, root, "backends");
    yaml_node_t               *srvs;
    yaml_node_t               *at;
    uint32_t                   i;
    uint32_t                   j;
    uint32_t                   k;

    for (i = 0; i < c->conf->nb_backends; i++) {
        srvs = map_value(c, seq_item(c, bes, i), "servers");
        for (j = 0; j < c->conf->backends[i].nb_servers; j++) {
            a = &c->conf->backends[i].servers[j].addr;
            at = map_value(c, seq_item(c, srvs, j), "address");
            if (a->u.sa.sa_family != AF_INET) {
                return cfg_error(c, at, "io: dpdk reaches IPv4 servers only");
            }
            if (a->u.sin.sin_addr.s_addr == d->addr.s_addr) {
                return cfg_error(c, at, "server address is the stack's own address");
            }
            for (k = 0; k < d->nb_src_addrs; k++) {
                if (a->u.sin.sin_addr.s_addr == d->src_addrs[k].s_addr) {
                    return cfg_error(c, at, "server address is one of dpdk.source_addresses");
                }
            }
            if (!dpdk_on_link(d, a->u.sin.sin_addr) && d->gateway.s_addr == htonl(INADDR_ANY)) {
                return cfg_error(c, at, "server is not on the subnet of dpdk.address and "
                                 "dpdk has no gateway");
            }
        }
    }
    return 0;
}

/* io: dpdk needs the section, a build with DPDK, and binds and servers the stack can serve. */
static int
dpdk_check(struct cfg *c)
{
    yaml_node_t *root = yaml_document_get_root_node(c->doc);

    if (c->conf->global.io != FP_IO_DPDK) {
        return 0; /* a dpdk: section is checked, then ignored under io: kernel */
    }
    if (!c->conf->dpdk.present) {
        return cfg_error(c, c->io_node, "io: dpdk needs a dpdk: section (docs/dpdk.md)");
    }
    if (dpdk_check_binds(c, root) != 0 || dpdk_check_servers(c, root) != 0) {
        return -1;
    }
#if !FP_HAVE_DPDK
    return cfg_error(c, c->io_node, "io: dpdk: this fastproxy was built without DPDK "
                     "(meson -Ddpdk=disabled or libdpdk missing); use io: kernel");
#else
    return 0;
#endif
}

/* ---- stats and the root ---- */

static int
st_bind(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_conf *conf = obj;

    conf->has_stats = true;
    return get_addr(c, n, &conf->stats_addr);
}

static const struct cfg_key stats_keys[] = {
    {"bind", st_bind, 1},
    {NULL, NULL, 0},
};

static int
r_global(struct cfg *c, yaml_node_t *n, void *obj)
{
    return parse_map(c, n, global_keys, &c->conf->global, "global");
}

static int
r_defaults(struct cfg *c, yaml_node_t *n, void *obj)
{
    return parse_map(c, n, defaults_keys, &c->conf->timeouts, "defaults");
}

static int
r_frontends(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_conf *conf = c->conf;
    size_t          i;

    if (need_seq(c, n, "frontends", 1) != 0) {
        return -1;
    }
    conf->frontends = calloc(seq_len(n), sizeof(*conf->frontends));
    if (conf->frontends == NULL) {
        return cfg_error(c, n, "out of memory");
    }
    for (i = 0; i < seq_len(n); i++) {
        conf->nb_frontends++;
        if (parse_map(c, seq_item(c, n, i), frontend_keys, &conf->frontends[i],
                      "a frontend") != 0) {
            return -1;
        }
    }
    return 0;
}

static int
r_backends(struct cfg *c, yaml_node_t *n, void *obj)
{
    struct fp_conf *conf = c->conf;
    size_t          i;

    if (need_seq(c, n, "backends", 1) != 0) {
        return -1;
    }
    conf->backends = calloc(seq_len(n), sizeof(*conf->backends));
    if (conf->backends == NULL) {
        return cfg_error(c, n, "out of memory");
    }
    for (i = 0; i < seq_len(n); i++) {
        conf->nb_backends++;
        conf->backends[i].queue_size = 1024;
        if (parse_map(c, seq_item(c, n, i), backend_keys, &conf->backends[i], "a backend") !=
            0) {
            return -1;
        }
    }
    return 0;
}

static int
r_stats(struct cfg *c, yaml_node_t *n, void *obj)
{
    return parse_map(c, n, stats_keys, c->conf, "stats");
}

static const struct cfg_key root_keys[] = {
    {"global", r_global, 0},       {"defaults", r_defaults, 0}, {"frontends", r_frontends, 1},
    {"backends", r_backends, 1},   {"stats", r_stats, 0},       {"dpdk", r_dpdk, 0},
    {NULL, NULL, 0},
};

static void
conf_set_defaults(struct fp_conf *conf)
{
    conf->global.workers = 0;
    conf->global.io = FP_IO_KERNEL;
    conf->global.maxconn = 0;
    conf->global.bufsize = 16 * 1024;
    conf->global.backlog = 1024;
    conf->global.grace_ms = 10 * 1000;
    conf->global.io_collect_us = 50; /* docs/benchmarks.md: "io_collect" */
    conf->global.maxpipes = FP_MAXPIPES_AUTO; /* docs/benchmarks.md: "splice(2)" */
    conf->global.overload.discipline = FP_QUEUE_ADAPTIVE_LIFO;
    conf->global.overload.codel_target_ms = 5;
    conf->global.overload.codel_interval_ms = 100;
    conf->global.overload.shed_queue = 8;
    conf->timeouts.connect_ms = 5 * 1000;
    conf->timeouts.client_ms = 30 * 1000;
    conf->timeouts.server_ms = 30 * 1000;
    conf->timeouts.http_request_ms = 10 * 1000;
    conf->timeouts.keep_alive_ms = 60 * 1000;
    conf->timeouts.queue_ms = 1000;
    conf->dpdk.port = 0;
    conf->dpdk.mbufs = 8192;
    conf->dpdk.poll = FP_DPDK_POLL_ADAPTIVE;
    conf->dpdk.rss = FP_DPDK_RSS_AUTO;
}

static int
addr_equal(const struct fp_addr *a, const struct fp_addr *b)
{
    return a->len == b->len && memcmp(&a->u, &b->u, a->len) == 0;
}

/* maxconn auto adapts to answer times, which only mode http has: an error (at the server) in a
 * backend that a mode tcp frontend uses. Returns 0 or -1. */
static int
check_auto_maxconn(struct cfg *c, const struct fp_frontend_conf *f, uint32_t be_idx)
{
    const struct fp_backend_conf *be = &c->conf->backends[be_idx];
    char                          msg[256];
    uint32_t                      k;

    if (f->mode != FP_MODE_TCP) {
        return 0;
    }
    for (k = 0; k < be->nb_servers; k++) {
        if (be->servers[k].maxconn == FP_SRV_MAXCONN_AUTO) {
            snprintf(msg, sizeof(msg), "server '%s': maxconn auto needs mode http (backend '%s' "
                     "serves mode tcp frontend '%s'); give a number", be->servers[k].name,
                     be->name, f->name);
            return cfg_error_at(c, &be->servers[k].loc, msg);
        }
    }
    return 0;
}

/* Returns the index of the backend called name, or -1 after reporting it at loc. */
static int
find_backend(struct cfg *c, const char *fe, const char *name, const struct fp_conf_loc *loc)
{
    char     msg[256];
    uint32_t i;

    for (i = 0; i < c->conf->nb_backends; i++) {
        if (strcmp(name, c->conf->backends[i].name) == 0) {
            return (int)i;
        }
    }
    snprintf(msg, sizeof(msg), "frontend '%s' names a missing backend '%s'", fe, name);
    return cfg_error_at(c, loc, msg);
}

/* Server names are checked once the whole backend is read: its name may come after them. */
static int
check_server_names(struct cfg *c, const struct fp_backend_conf *b)
{
    char     msg[256];
    uint32_t i;
    uint32_t j;

    for (i = 0; i < b->nb_servers; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(b->servers[i].name, b->servers[j].name) == 0) {
                snprintf(msg, sizeof(msg),
                         "duplicate server name '%s' in backend '%s' (first at line %u)",
                         b->servers[i].name, b->name, b->servers[j].loc.line);
                return cfg_error_at(c, &b->servers[i].loc, msg);
            }
        }
    }
    return 0;
}

/*
 * Fails on f's bind address k if frontend g (f itself included, before k) binds it too: two
 * groups on one address would split its connections between the frontends.
 */
static int
check_bind_unique(struct cfg *c, const struct fp_frontend_conf *f, uint32_t k,
                  const struct fp_frontend_conf *g)
{
    char     text[FP_ADDR_STRLEN];
    char     msg[256];
    uint32_t n = g == f ? k : g->nb_binds;
    uint32_t l;

    for (l = 0; l < n; l++) {
        if (!addr_equal(&f->binds[k], &g->binds[l])) {
            continue;
        }
        fp_addr_format(&f->binds[k], text, sizeof(text));
        if (g == f) {
            snprintf(msg, sizeof(msg), "%s is listed twice in bind (first at line %u, column %u)",
                     text, g->bind_locs[l].line, g->bind_locs[l].col);
        } else {
            snprintf(msg, sizeof(msg), "%s is bound by frontend '%s' too (line %u)", text,
                     g->name, g->bind_locs[l].line);
        }
        return cfg_error_at(c, &f->bind_locs[k], msg);
    }
    return 0;
}

/* Checks what only the whole file can tell: unique names, known backends, unique binds. */
static int
conf_check(struct cfg *c)
{
    struct fp_conf          *conf = c->conf;
    struct fp_frontend_conf *f;
    char                     msg[256];
    uint32_t                 i;
    uint32_t                 j;
    uint32_t                 k;
    int                      rc;

    for (i = 0; i < conf->nb_backends; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(conf->backends[i].name, conf->backends[j].name) == 0) {
                snprintf(msg, sizeof(msg), "duplicate backend name '%s' (first at line %u)",
                         conf->backends[i].name, conf->backends[j].loc.line);
                return cfg_error_at(c, &conf->backends[i].loc, msg);
            }
        }
        if (check_server_names(c, &conf->backends[i]) != 0) {
            return -1;
        }
    }
    for (i = 0; i < conf->nb_frontends; i++) {
        f = &conf->frontends[i];
        for (j = 0; j < i; j++) {
            if (strcmp(f->name, conf->frontends[j].name) == 0) {
                snprintf(msg, sizeof(msg), "duplicate frontend name '%s' (first at line %u)",
                         f->name, conf->frontends[j].loc.line);
                return cfg_error_at(c, &f->loc, msg);
            }
        }
        for (j = 0; j <= i; j++) {
            for (k = 0; k < f->nb_binds; k++) {
                if (check_bind_unique(c, f, k, &conf->frontends[j]) != 0) {
                    return -1;
                }
            }
        }
        rc = find_backend(c, f->name, f->default_backend_name, &f->default_backend_loc);
        if (rc < 0) {
            return -1;
        }
        f->default_backend = (uint32_t)rc;
        if (check_auto_maxconn(c, f, f->default_backend) != 0) {
            return -1;
        }
        for (j = 0; j < f->nb_routes; j++) {
            rc = find_backend(c, f->name, f->routes[j].backend_name, &f->routes[j].backend_loc);
            if (rc < 0) {
                return -1;
            }
            f->routes[j].backend = (uint32_t)rc;
        }
    }
    return 0;
}

static int
conf_load_parser(struct fp_conf *conf, const char *name, yaml_parser_t *parser, char *err,
                 size_t errlen)
{
    yaml_document_t doc;
    yaml_node_t    *root;
    struct cfg      c = {name, err, errlen, &doc, conf, NULL};
    int             rc = -1;

    memset(conf, 0, sizeof(*conf));
    conf_set_defaults(conf);
    conf->file = strdup(name);
    if (!yaml_parser_load(parser, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", name, parser->problem_mark.line + 1,
                 parser->problem_mark.column + 1,
                 parser->problem != NULL ? parser->problem : "syntax error",
                 parser->context != NULL ? " " : "",
                 parser->context != NULL ? parser->context : "");
        return -1;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        snprintf(err, errlen, "%s:1:1: the file is empty", name);
        goto out;
    }
    if (parse_map(&c, root, root_keys, conf, "the configuration") != 0 || conf_check(&c) != 0 ||
        dpdk_check(&c) != 0) {
        goto out;
    }
    rc = 0;

out:
    yaml_document_delete(&doc);
    return rc;
}

int
fp_conf_load_string(struct fp_conf *conf, const char *name, const char *text, size_t len,
                    char *err, size_t errlen)
{
    yaml_parser_t parser;
    int           rc;

    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    rc = conf_load_parser(conf, name, &parser, err, errlen);
    yaml_parser_delete(&parser);
    if (rc != 0) {
        fp_conf_free(conf);
    }
    return rc;
}

int
fp_conf_load(struct fp_conf *conf, const char *path, char *err, size_t errlen)
{
    yaml_parser_t parser;
    struct stat   st;
    FILE         *f;
    int           rc;

    memset(conf, 0, sizeof(*conf));
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* fopen() accepts a directory on Linux; only reading it fails, with a vaguer message. */
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        snprintf(err, errlen, "%s: is a directory, not a configuration file", path);
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    rc = conf_load_parser(conf, path, &parser, err, errlen);
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc != 0) {
        fp_conf_free(conf);
    }
    return rc;
}

void
fp_conf_free(struct fp_conf *conf)
{
    uint32_t i;
    uint32_t j;

    for (i = 0; i < conf->nb_frontends; i++) {
        for (j = 0; j < conf->frontends[i].nb_routes; j++) {
            free(conf->frontends[i].routes[j].host);
            free(conf->frontends[i].routes[j].path_prefix);
            free(conf->frontends[i].routes[j].backend_name);
        }
        free(conf->frontends[i].routes);
        free(conf->frontends[i].name);
        free(conf->frontends[i].binds);
        free(conf->frontends[i].bind_locs);
        free(conf->frontends[i].default_backend_name);
    }
    free(conf->frontends);
    for (i = 0; i < conf->nb_backends; i++) {
        for (j = 0; j < conf->backends[i].nb_servers; j++) {
            free(conf->backends[i].servers[j].name);
        }
        free(conf->backends[i].servers);
        free(conf->backends[i].name);
    }
    free(conf->backends);
    for (i = 0; i < conf->dpdk.nb_eal; i++) {
        free(conf->dpdk.eal[i]);
    }
    free(conf->log_file);
    free(conf->file);
    memset(conf, 0, sizeof(*conf));
}
