/* SPDX-License-Identifier: BSD-3-Clause */
/* Server selection for a backend. Each worker keeps its own cursor: no shared state. */
#ifndef FP_PROXY_BACKEND_H
#define FP_PROXY_BACKEND_H

#include <stdint.h>

#include "proxy/conf.h"
#include "proxy/worker.h"

/*
 * Returns the index of the next server of backend be_idx for worker w, in weighted
 * round-robin order (a server of weight k gets k consecutive turns per cycle), skipping the
 * servers whose bit is set in tried (bit i = server i; backends have at most
 * FP_MAX_SERVERS_PER_BACKEND servers). Weight 0 servers are never picked. Returns UINT32_MAX
 * when no server is left. The mask, not a count of attempts, is what guarantees that a
 * session tries each server once: other sessions move the shared cursor in between.
 */
uint32_t fp_backend_pick_server(struct fp_worker *w, uint32_t be_idx, uint64_t tried);

#endif /* FP_PROXY_BACKEND_H */
