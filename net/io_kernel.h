/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Linux sockets backend (libev, SO_REUSEPORT). Besides its fp_io_ops, it exports the
 * startup helper that builds one reuseport listening group per bind address. proxy/ never
 * includes this header: only src/ (startup) and net/io.c do.
 */
#ifndef FP_NET_IO_KERNEL_H
#define FP_NET_IO_KERNEL_H

#include <stddef.h>

#include "net/io.h"

/* Creates a kernel backend instance (libev loop + connection pool). NULL on failure. */
struct fp_io *fp_io_kernel_create(const struct fp_io_conf *conf, char *err, size_t errlen);

/* Returns sizeof the backend's connection object. */
size_t fp_io_kernel_conn_size(void);

/*
 * Startup, main thread: opens n listening sockets on a, all in one SO_REUSEPORT group, in
 * worker order (socket i is worker i's), and attaches a classic BPF program that sends a new
 * connection to the socket of the worker pinned on the CPU that received its packets
 * (cpus[i] is worker i's CPU). *steered is set to 1 if the program is attached, 0 if the
 * group falls back to the kernel's plain hash. Returns 0, or -errno with a reason in err.
 */
/*
 * Startup, main thread, before any group is opened: checks that no other socket listens on a
 * (or on an address that overlaps it: the wildcard of its family, or IPv4 under a dual-stack
 * IPv6 wildcard), by binding a probe socket without SO_REUSEPORT, then closing it. Without
 * this check a second process of the same user would silently join the reuseport group and
 * take half the connections. SO_REUSEADDR on the probe lets connections in TIME_WAIT pass.
 * Returns 0, -EADDRINUSE with "ADDR is already in use by another process..." in err, or
 * another -errno from socket(2)/bind(2) with the reason in err.
 */
int fp_io_kernel_check_unused(const struct fp_addr *a, char *err, size_t errlen);

int fp_io_kernel_listen_group(const struct fp_addr *a, unsigned n, const int *cpus, int backlog,
                              int *fds, int *steered, char *err, size_t errlen);

#endif /* FP_NET_IO_KERNEL_H */
