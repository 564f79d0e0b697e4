/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Weighted round-robin. The cursor walks a virtual cycle of sum(weights) slots; slot k goes
 * to the server whose cumulative weight range holds k. Cheap for the handful of servers a
 * backend has; a precomputed smooth sequence (nginx's smooth WRR) is the faster version
 * once backends grow large.
 */
#include "proxy/backend.h"

uint32_t
fp_backend_pick_server(struct fp_worker *w, uint32_t be_idx)
{
    const struct fp_backend_conf *be = &w->conf->backends[be_idx];
    uint32_t                      total = 0;
    uint32_t                      slot;
    uint32_t                      i;

    for (i = 0; i < be->nb_servers; i++) {
        total += be->servers[i].weight;
    }
    if (total == 0) {
        return UINT32_MAX;
    }
    /* Start each worker at a different offset so N workers do not hit server 0 together. */
    slot = (w->rr_next[be_idx]++ + w->id) % total;
    for (i = 0; i < be->nb_servers; i++) {
        if (slot < be->servers[i].weight) {
            return i;
        }
        slot -= be->servers[i].weight;
    }
    return UINT32_MAX;
}
