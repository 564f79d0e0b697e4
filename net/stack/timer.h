/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A hashed timing wheel (Varghese and Lauck, scheme 6): O(1) arm and cancel; advancing costs one
 * slot per elapsed tick plus the timers that fire. A timer lives inside the object it times (the
 * TCB), so arming never allocates. Time is injected: the wheel only knows the microseconds it is
 * given. Owned by one instance, not thread-safe.
 */
#ifndef FP_NET_STACK_TIMER_H
#define FP_NET_STACK_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "net/stack/stack_types.h"

/*
 * Creates a wheel of nb_slots (rounded up to a power of two) ticks of tick_us each, starting at
 * now_us. Returns 0 or -ENOMEM / -EINVAL. Setup time only.
 */
int fp_timer_wheel_init(struct fp_timer_wheel *w, uint32_t nb_slots, uint32_t tick_us,
                        uint64_t now_us);

void fp_timer_wheel_fini(struct fp_timer_wheel *w);

/* Prepares t to call fn(arg) when it fires. t must not be armed. */
void fp_timer_init(struct fp_stk_timer *t, fp_stk_timer_fn fn, void *arg);

/*
 * Arms (or re-arms) t to fire at the first tick boundary at or after expire_us, and never earlier
 * than the next tick. O(1).
 */
void fp_timer_arm(struct fp_timer_wheel *w, struct fp_stk_timer *t, uint64_t expire_us);

/* Disarms t if armed. O(1). */
void fp_timer_cancel(struct fp_timer_wheel *w, struct fp_stk_timer *t);

static inline bool
fp_timer_armed(const struct fp_stk_timer *t)
{
    return t->pprev != NULL;
}

/*
 * Fires every timer due at or before now_us, in tick order (in slot order after a jump of more
 * than one revolution). A callback may arm or cancel any
 * timer, including its own; a timer armed from a callback for the current time fires on the next
 * tick. Returns the number of timers fired.
 */
uint32_t fp_timer_wheel_advance(struct fp_timer_wheel *w, uint64_t now_us);

/* Returns the earliest expiry (us) of an armed timer, or UINT64_MAX. At most O(slots): idle path
 * only. */
uint64_t fp_timer_wheel_next_us(const struct fp_timer_wheel *w);

/*
 * Returns the earliest expiry (us) of a timer due within horizon_us of the wheel's current
 * tick, or UINT64_MAX when none is: O(horizon in ticks), for an idle loop that waits at most
 * that long anyway (a full scan costs a whole revolution of slots).
 */
uint64_t fp_timer_wheel_next_within_us(const struct fp_timer_wheel *w, uint64_t horizon_us);

#endif /* FP_NET_STACK_TIMER_H */
