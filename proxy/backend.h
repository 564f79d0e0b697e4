/* SPDX-License-Identifier: BSD-3-Clause */
/* Server selection for a backend. Each worker keeps its own cursor: no shared state. */
#ifndef FP_PROXY_BACKEND_H
#define FP_PROXY_BACKEND_H

#include <stdint.h>

#include "proxy/conf.h"
#include "proxy/worker.h"

/*
 * Returns the index of the next server of backend be_idx for worker w, in weighted
 * round-robin order (a server of weight k gets k consecutive turns per cycle).
 * Weight 0 servers are never picked; returns UINT32_MAX if no server has a weight.
 */
uint32_t fp_backend_pick_server(struct fp_worker *w, uint32_t be_idx);

#endif /* FP_PROXY_BACKEND_H */
