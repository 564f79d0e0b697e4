/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The io_uring backend (io: uring, liburing): kernel sockets like the kernel backend, but every
 * receive, send, accept and connect goes through one io_uring per worker, so a loop iteration
 * makes one system call for all its I/O. proxy/ never includes this header: only net/io.c does.
 */
#ifndef FP_NET_IO_URING_H
#define FP_NET_IO_URING_H

#include <stddef.h>
#include <stdint.h>

#include "net/io.h"

/*
 * Creates an io_uring backend instance for one worker (a ring, its provided receive buffers, a
 * connection pool and a send buffer pool for conf->max_conns connections). Startup, main
 * thread; the ring is enabled on the worker's thread when run starts. Returns NULL with a
 * reason in err when the kernel refuses io_uring (ENOSYS, EPERM: io_uring_disabled, seccomp),
 * lacks a feature it needs, or memory runs out.
 */
struct fp_io *fp_io_uring_create(const struct fp_io_conf *conf, char *err, size_t errlen);

/* Returns sizeof the backend's connection object. */
size_t fp_io_uring_conn_size(void);

/* Returns the bytes one worker's instance may use beyond its connection objects for max_conns
 * connections: the provided receive buffers, the send buffers, the rings and the timer wheel. */
size_t fp_io_uring_mem_bound(uint32_t max_conns);

#endif /* FP_NET_IO_URING_H */
