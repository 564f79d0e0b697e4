/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Linux sockets backend (libev, SO_REUSEPORT). Its listening groups and the socket set-up
 * it shares with io: uring are net/sock.c's. proxy/ never includes this header: only net/io.c
 * does.
 */
#ifndef FP_NET_IO_KERNEL_H
#define FP_NET_IO_KERNEL_H

#include <stddef.h>

#include "net/io.h"

/* Creates a kernel backend instance (libev loop + connection pool). NULL on failure. */
struct fp_io *fp_io_kernel_create(const struct fp_io_conf *conf, char *err, size_t errlen);

/* Returns sizeof the backend's connection object. */
size_t fp_io_kernel_conn_size(void);

#endif /* FP_NET_IO_KERNEL_H */
