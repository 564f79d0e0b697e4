/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Statistics: sums the workers' counters (read without locks) and serves them as text on
 * the optional stats address, one "name{worker="N"} value" line per counter and worker, in
 * the Prometheus text format. Runs on the main thread only.
 */
#ifndef FP_SRC_STATS_H
#define FP_SRC_STATS_H

#include <stddef.h>

#include "src/workers.h"

/* Writes the counters of every worker and their totals into out. Returns the length. */
size_t fp_stats_format(const struct fp_workers *ws, char *out, size_t size);

/* Logs one line per worker with its main counters (at shutdown). */
void fp_stats_log(const struct fp_workers *ws);

#endif /* FP_SRC_STATS_H */
