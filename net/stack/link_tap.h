/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A Linux TAP interface as a link: frames are read and written on a non-blocking fd, one
 * syscall per frame. For interoperability tests against the kernel's TCP and for probing the
 * stack from outside; not a fast path.
 */
#ifndef FP_NET_STACK_LINK_TAP_H
#define FP_NET_STACK_LINK_TAP_H

#include <net/if.h>
#include <stdint.h>

#include "net/stack/link.h"

struct fp_taplink {
    struct fp_link link;
    int            fd;
    char           name[IFNAMSIZ];
    uint64_t       rx_errors; /* read() failures other than EAGAIN */
    uint64_t       tx_errors; /* write() failures other than EAGAIN */
};

/*
 * Creates (or attaches to) TAP interface name, non-blocking, without packet information, and
 * sets it up (IFF_UP): no address or route is touched. mac is the stack side's address.
 * Returns 0, or -errno (-EPERM without CAP_NET_ADMIN, -ENOENT without /dev/net/tun).
 */
int fp_taplink_open(struct fp_taplink *t, const char *name, const uint8_t mac[6]);

void fp_taplink_close(struct fp_taplink *t);

#endif /* FP_NET_STACK_LINK_TAP_H */
