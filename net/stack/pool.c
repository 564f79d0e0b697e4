/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Object pools: a contiguous array of objects and a stack of pointers to the free ones. LIFO
 * reuse keeps recently used (cache-warm) objects in play. Debug builds could add cookies to catch
 * double frees, as rte_mempool does; the stack counts every pool-empty event instead.
 */
#include "net/stack/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
fp_spool_init(struct fp_spool *p, uint32_t size, size_t obj_size)
{
    uint32_t i;

    memset(p, 0, sizeof(*p));
    obj_size = (obj_size + 63) & ~(size_t)63; /* cache-line aligned objects */
    p->mem = aligned_alloc(64, (size_t)size * obj_size);
    if (p->mem == NULL) {
        return -ENOMEM;
    }
    p->free = calloc(size, sizeof(*p->free));
    if (p->free == NULL) {
        goto err_free_mem;
    }
    p->size = size;
    p->obj_size = obj_size;
    for (i = 0; i < size; i++) {
        p->free[i] = p->mem + (size_t)(size - 1 - i) * obj_size;
    }
    p->nb_free = size;
    return 0;

err_free_mem:
    free(p->mem);
    p->mem = NULL;
    return -ENOMEM;
}

void
fp_spool_fini(struct fp_spool *p)
{
    free(p->free);
    free(p->mem);
    memset(p, 0, sizeof(*p));
}

void *
fp_spool_get(struct fp_spool *p)
{
    void *obj;

    if (p->nb_free == 0) {
        return NULL;
    }
    obj = p->free[--p->nb_free];
    memset(obj, 0, p->obj_size);
    return obj;
}

void
fp_spool_put(struct fp_spool *p, void *obj)
{
    p->free[p->nb_free++] = obj;
}

int
fp_pktpool_init(struct fp_pktpool *pp, uint32_t size)
{
    memset(pp, 0, sizeof(*pp));
    return fp_spool_init(&pp->sp, size, sizeof(struct fp_pkt));
}

void
fp_pktpool_fini(struct fp_pktpool *pp)
{
    fp_spool_fini(&pp->sp);
}

struct fp_pkt *
fp_pkt_alloc(struct fp_pktpool *pp)
{
    struct fp_pkt *p;

    if (pp->sp.nb_free == 0) {
        return NULL;
    }
    p = pp->sp.free[--pp->sp.nb_free];
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
    fp_spool_put(&pp->sp, p);
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
