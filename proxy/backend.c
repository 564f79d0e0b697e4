/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Weighted round-robin. The cursor walks a virtual cycle of sum(weights) slots; slot k goes
 * to the server whose cumulative weight range holds k (both precomputed at config load:
 * fp_backend_conf_weights). Cheap for the handful of servers a backend has; a precomputed
 * smooth sequence (nginx's smooth WRR) is the faster version once backends grow large.
 */
#include "proxy/backend.h"

/* Returns the server that owns slot of the weighted cycle. */
static uint32_t
server_at(const struct fp_backend_conf *be, uint32_t slot)
{
    uint32_t i;

    for (i = 0; i < be->nb_servers; i++) {
        if (slot < be->servers[i].weight_end) {
            return i;
        }
    }
    return UINT32_MAX;
}

uint32_t
fp_backend_pick_server(struct fp_worker *w, uint32_t be_idx, uint64_t tried)
{
    const struct fp_backend_conf *be = &w->conf->backends[be_idx];
    uint32_t                      total = be->total_weight;
    uint32_t                      first;
    uint32_t                      k;
    uint32_t                      i;

    if (total == 0) {
        return UINT32_MAX;
    }
    /* Start each worker at a different offset so N workers do not hit server 0 together. */
    first = w->rr_next[be_idx]++ + w->id;
    for (k = 0; k < total; k++) {
        i = server_at(be, (first + k) % total);
        if (!(tried & (1ULL << i))) {
            return i;
        }
    }
    return UINT32_MAX;
}
