/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Each slot holds an unsorted doubly linked list of the timers whose expiry tick maps to it;
 * timers more than one revolution away stay in their slot until their tick comes round. With TCP
 * timers mostly cancelled before they fire this is cheaper than a hierarchical wheel, whose
 * cascading we do not need yet.
 */
#include "net/stack/timer.h"

#include <errno.h>
#include <stdlib.h>

int
fp_timer_wheel_init(struct fp_timer_wheel *w, uint32_t nb_slots, uint32_t tick_us, uint64_t now_us)
{
    uint32_t n = 1;

    if (nb_slots == 0 || tick_us == 0 || nb_slots > (1u << 24)) {
        return -EINVAL;
    }
    while (n < nb_slots) {
        n <<= 1;
    }
    w->slots = calloc(n, sizeof(*w->slots));
    if (w->slots == NULL) {
        return -ENOMEM;
    }
    w->mask = n - 1;
    w->tick_us = tick_us;
    w->cur_tick = now_us / tick_us;
    w->nb_armed = 0;
    return 0;
}

void
fp_timer_wheel_fini(struct fp_timer_wheel *w)
{
    free(w->slots);
    w->slots = NULL;
}

void
fp_timer_init(struct fp_stk_timer *t, fp_stk_timer_fn fn, void *arg)
{
    t->next = NULL;
    t->pprev = NULL;
    t->expire_tick = 0;
    t->fn = fn;
    t->arg = arg;
}

static void
slot_insert(struct fp_stk_timer **head, struct fp_stk_timer *t)
{
    t->next = *head;
    if (t->next != NULL) {
        t->next->pprev = &t->next;
    }
    *head = t;
    t->pprev = head;
}

static void
slot_remove(struct fp_stk_timer *t)
{
    *t->pprev = t->next;
    if (t->next != NULL) {
        t->next->pprev = t->pprev;
    }
    t->next = NULL;
    t->pprev = NULL;
}

void
fp_timer_arm(struct fp_timer_wheel *w, struct fp_stk_timer *t, uint64_t expire_us)
{
    uint64_t tick = (expire_us + w->tick_us - 1) / w->tick_us;

    if (t->pprev != NULL) {
        slot_remove(t);
        w->nb_armed--;
    }
    if (tick <= w->cur_tick) {
        tick = w->cur_tick + 1;
    }
    t->expire_tick = tick;
    slot_insert(&w->slots[tick & w->mask], t);
    w->nb_armed++;
}

void
fp_timer_cancel(struct fp_timer_wheel *w, struct fp_stk_timer *t)
{
    if (t->pprev == NULL) {
        return;
    }
    slot_remove(t);
    w->nb_armed--;
}

/* Moves the timers of slot due at tick to a private list, then fires them. */
static uint32_t
fire_slot(struct fp_timer_wheel *w, uint32_t slot, uint64_t tick)
{
    struct fp_stk_timer *due = NULL;
    struct fp_stk_timer *t;
    struct fp_stk_timer *n;
    uint32_t         fired = 0;

    for (t = w->slots[slot]; t != NULL; t = n) {
        n = t->next;
        if (t->expire_tick <= tick) {
            slot_remove(t);
            w->nb_armed--;
            t->next = due;
            due = t;
        }
    }
    /* A callback may re-arm or cancel any timer, so each is detached before its call. */
    while (due != NULL) {
        t = due;
        due = t->next;
        t->next = NULL;
        t->fn(t->arg);
        fired++;
    }
    return fired;
}

uint32_t
fp_timer_wheel_advance(struct fp_timer_wheel *w, uint64_t now_us)
{
    uint64_t target = now_us / w->tick_us;
    uint32_t fired = 0;
    uint32_t i;

    if (target <= w->cur_tick) {
        return 0;
    }
    if (w->nb_armed == 0) {
        w->cur_tick = target;
        return 0;
    }
    if (target - w->cur_tick > w->mask) {
        /* More than a revolution elapsed: one pass over every slot is enough. */
        w->cur_tick = target;
        for (i = 0; i <= w->mask; i++) {
            fired += fire_slot(w, i, target);
        }
        return fired;
    }
    while (w->cur_tick < target) {
        w->cur_tick++;
        fired += fire_slot(w, (uint32_t)(w->cur_tick & w->mask), w->cur_tick);
    }
    return fired;
}

uint64_t
fp_timer_wheel_next_within_us(const struct fp_timer_wheel *w, uint64_t horizon_us)
{
    struct fp_stk_timer *t;
    uint64_t             tick;
    uint64_t             last;

    if (w->nb_armed == 0) {
        return UINT64_MAX;
    }
    last = w->cur_tick + (horizon_us + w->tick_us - 1) / w->tick_us;
    if (last > w->cur_tick + w->mask + 1) {
        last = w->cur_tick + w->mask + 1;
    }
    for (tick = w->cur_tick + 1; tick <= last; tick++) {
        for (t = w->slots[tick & w->mask]; t != NULL; t = t->next) {
            if (t->expire_tick <= tick) {
                return tick * w->tick_us;
            }
        }
    }
    return UINT64_MAX;
}

uint64_t
fp_timer_wheel_next_us(const struct fp_timer_wheel *w)
{
    uint64_t         best = UINT64_MAX;
    struct fp_stk_timer *t;
    uint64_t         tick;
    uint32_t         i;

    if (w->nb_armed == 0) {
        return UINT64_MAX;
    }
    /* Walk one revolution forward: the first timer due in its own revolution is the earliest. */
    for (tick = w->cur_tick + 1; tick <= w->cur_tick + w->mask + 1; tick++) {
        for (t = w->slots[tick & w->mask]; t != NULL; t = t->next) {
            if (t->expire_tick <= tick) {
                return tick * w->tick_us;
            }
        }
    }
    /* Everything is more than a revolution away. */
    for (i = 0; i <= w->mask; i++) {
        for (t = w->slots[i]; t != NULL; t = t->next) {
            if (t->expire_tick < best) {
                best = t->expire_tick;
            }
        }
    }
    return best * w->tick_us;
}
