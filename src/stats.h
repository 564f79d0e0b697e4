/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Statistics: reads the workers' counters (single writer each, relaxed loads, no locks) and
 * writes them as one list of metric families, in two forms: the Prometheus text exposition
 * format 0.0.4 (/metrics) and JSON (/stats) with the same families, samples and values.
 * Every series is labelled with its worker, and with its frontend, backend or server where it
 * belongs to one; no unlabelled total stands beside them, so sum() is right. The families are
 * listed in docs/configuration.md (`stats`). Main thread only.
 */
#ifndef FP_SRC_STATS_H
#define FP_SRC_STATS_H

#include <stddef.h>

#include "src/workers.h"

enum fp_stats_fmt {
    FP_STATS_PROMETHEUS = 0, /* text/plain; version=0.0.4 */
    FP_STATS_JSON,           /* {"families": [{"name", "type", "help", "samples": [...]}]} */
};

/*
 * Writes every metric family of ws in format fmt into out (size bytes, not NUL-terminated).
 * Returns the length of the whole page: when it is larger than size, out holds only a
 * prefix and the caller must not use it (fp_stats_bound() gives a size that always fits).
 */
size_t fp_stats_format(const struct fp_workers *ws, enum fp_stats_fmt fmt, char *out, size_t size);

/*
 * Returns a buffer size that fits the page of ws in either format for the process's whole
 * life: the page's shape is fixed at start, and only the digits of its values grow. Startup.
 */
size_t fp_stats_bound(const struct fp_workers *ws);

/* Logs one line per worker with its main counters (at shutdown). */
void fp_stats_log(const struct fp_workers *ws);

#endif /* FP_SRC_STATS_H */
