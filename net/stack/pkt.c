/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packet buffers on net/pool.c's object pool. LIFO reuse keeps recently used (cache-warm)
 * buffers in play; the stack counts every pool-empty event itself (FP_STK_PKT_POOL_EMPTY).
 */
#include "net/stack/pkt.h"

#include <errno.h>
#include <string.h>

#include "net/pool.h"

int
fp_pktpool_init(struct fp_pktpool *pp, uint32_t size)
{
    memset(pp, 0, sizeof(*pp));
    return fp_pool_init(&pp->objs, sizeof(struct fp_pkt), size) == 0 ? 0 : -ENOMEM;
}

void
fp_pktpool_fini(struct fp_pktpool *pp)
{
    fp_pool_destroy(&pp->objs);
}

struct fp_pkt *
fp_pkt_alloc(struct fp_pktpool *pp)
{
    struct fp_pkt *p = fp_pool_get(&pp->objs);

    if (p == NULL) {
        return NULL;
    }
    p->next = NULL;
    p->pool = pp;
    p->data = p->buf + FP_PKT_HEADROOM;
    p->len = 0;
    p->seq = 0;
    p->flags = 0;
    p->ext = NULL;
    return p;
}

void
fp_pkt_free(struct fp_pkt *p)
{
    struct fp_pktpool *pp;

    if (p == NULL) {
        return;
    }
    pp = p->pool;
    if (p->ext != NULL && pp->ext_free != NULL) {
        pp->ext_free(pp->ext_ctx, p->ext);
        p->ext = NULL;
    }
    p->next = NULL;
    fp_pool_put(&pp->objs, p);
}

void
fp_pkt_free_chain(struct fp_pkt *p)
{
    struct fp_pkt *n;

    while (p != NULL) {
        n = p->next;
        fp_pkt_free(p);
        p = n;
    }
}
