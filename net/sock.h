/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Kernel sockets: the set-up that the two backends on kernel sockets (io: kernel, net/io_kernel.c;
 * io: uring, net/io_uring.c) share, so that it has one home. Startup builds their listening
 * groups here (SO_REUSEPORT, the CPU-steering program); the backends open their outgoing
 * sockets, set the options every proxied connection gets, and make the plain system calls of
 * the rare paths (overload shedding, the accept queue's length, a reset on close) here. The
 * data path (receives, sends, splice) stays in each backend, which drives it its own way.
 * Internal to net/: neither proxy/ nor src/ includes this header. No state: every function
 * works on the descriptor or address it is given, on any thread.
 */
#ifndef FP_NET_SOCK_H
#define FP_NET_SOCK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "net/addr.h"

/* True when a failed call on a non-blocking socket only means "not now" (err: its errno). */
static inline bool
fp_sock_would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/*
 * Startup, main thread, before any group is opened: checks that no other socket listens on a
 * (or on an address that overlaps it: the wildcard of its family, or IPv4 under a dual-stack
 * IPv6 wildcard), by binding a probe socket without SO_REUSEPORT, then closing it. Without
 * this check a second process of the same user would silently join the reuseport group and
 * take half the connections. SO_REUSEADDR on the probe lets connections in TIME_WAIT pass.
 * Returns 0, -EADDRINUSE with "ADDR is already in use by another process..." in err, or
 * another -errno from socket(2)/bind(2) with the reason in err.
 */
int fp_sock_check_unused(const struct fp_addr *a, char *err, size_t errlen);

/*
 * Startup, main thread: opens n non-blocking listening sockets on a, all in one SO_REUSEPORT
 * group, in worker order (fds[i] is worker i's), and attaches a classic BPF program that sends
 * a new connection to the socket of the worker pinned on the CPU that received its packets
 * (cpus[i] is worker i's CPU, -1 if not pinned). *steered is set to 1 if the program is
 * attached, 0 if the group falls back to the kernel's plain hash. Returns 0, or -errno with a
 * reason in err; on failure every socket opened is closed and fds[0..n-1] are -1.
 */
int fp_sock_listen_group(const struct fp_addr *a, unsigned n, const int *cpus, int backlog,
                         int *fds, int *steered, char *err, size_t errlen);

/* Opens a non-blocking, close-on-exec stream socket of to's family, for a connection to to.
 * Returns the descriptor, or -errno from socket(2). */
int fp_sock_open(const struct fp_addr *to);

/* Sets TCP_NODELAY on fd (sockets accepted from a listener that has it inherit it). Best
 * effort: a socket without it is slower, not wrong. */
void fp_sock_set_nodelay(int fd);

/* Makes close(fd) reset the connection (SO_LINGER with a zero timeout) instead of sending what
 * is queued and a FIN. Best effort, as above. */
void fp_sock_set_reset(int fd);

/* Returns how many connections wait in listening socket fd's accept queue, or -errno from
 * getsockopt(2). */
int fp_sock_accept_queue_len(int fd);

/* Answers accepted socket fd with the len bytes at msg (if its send buffer takes them at once;
 * nothing waits), then half-closes and closes it: load shedding (a canned 503). fd is closed
 * on return. */
void fp_sock_answer_close(int fd, const void *msg, size_t len);

/* Accepts up to max connections waiting on listening socket fd and answers each with
 * fp_sock_answer_close. Returns how many it answered (fewer than max: the queue ran empty, or
 * accept4(2) failed). */
unsigned fp_sock_shed(int fd, const void *msg, size_t len, unsigned max);

#endif /* FP_NET_SOCK_H */
