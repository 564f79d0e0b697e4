/* SPDX-License-Identifier: BSD-3-Clause */
/* Fixed-size object pools; see pool.h for the ownership rules. */
#include "net/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "net/debug.h"

#define FP_CACHE_LINE 64

int
fp_pool_init(struct fp_pool *p, size_t elt_size, uint32_t count)
{
    size_t   total;
    uint32_t i;

    memset(p, 0, sizeof(*p));
    if (count == 0 || elt_size == 0) {
        return -EINVAL;
    }
    p->elt_size = (elt_size + FP_CACHE_LINE - 1) & ~(size_t)(FP_CACHE_LINE - 1);
    total = p->elt_size * count;
    /* mmap gives zeroed pages that cost nothing until touched. */
    p->mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p->mem == MAP_FAILED) {
        p->mem = NULL;
        return -ENOMEM;
    }
    p->free = malloc(sizeof(void *) * count);
    if (p->free == NULL) {
        munmap(p->mem, total);
        p->mem = NULL;
        return -ENOMEM;
    }
    /* Stack order: object 0 on top, so a lightly loaded worker touches few pages. */
    for (i = 0; i < count; i++) {
        p->free[i] = p->mem + (size_t)(count - 1 - i) * p->elt_size;
    }
    p->count = count;
    p->nb_free = count;
    return 0;
}

void
fp_pool_destroy(struct fp_pool *p)
{
    if (p->mem != NULL) {
        munmap(p->mem, p->elt_size * p->count);
    }
    free(p->free);
    memset(p, 0, sizeof(*p));
}

void *
fp_pool_get(struct fp_pool *p)
{
    if (p->nb_free == 0) {
        p->empty++;
        return NULL;
    }
    return p->free[--p->nb_free];
}

void *
fp_pool_get_zeroed(struct fp_pool *p)
{
    void *obj = fp_pool_get(p);

    if (obj != NULL) {
        memset(obj, 0, p->elt_size);
    }
    return obj;
}

void
fp_pool_put(struct fp_pool *p, void *obj)
{
    FP_ASSERT((uint8_t *)obj >= p->mem && (uint8_t *)obj < p->mem + p->elt_size * p->count);
    FP_ASSERT(p->nb_free < p->count);
    p->free[p->nb_free++] = obj;
}
