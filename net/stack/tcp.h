/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP (RFC 9293) for one instance: connection table, state machine, output, timers, and the
 * socket-like event API used by applications. Connections (struct fp_tcb) come from the
 * instance's pool; a handle given to the application stays valid until it calls fp_tcp_close() or
 * fp_tcp_abort(), or until its on_closed callback returns. All functions must be called from the
 * instance's thread; callbacks are delivered from fp_stack_poll()/fp_stack_input().
 */
#ifndef FP_NET_STACK_TCP_H
#define FP_NET_STACK_TCP_H

#include <stdint.h>
#include <sys/types.h>

#include "net/stack/stack_types.h"

/* fp_tcp_listen's syn_backlog for the default SYN queue, 4 * backlog. */
#define FP_TCP_SYN_BACKLOG_DEFAULT UINT32_MAX

/*
 * Listens on port (host order) with an accept queue of backlog connections and a SYN queue of
 * syn_backlog embryonic ones (FP_TCP_SYN_BACKLOG_DEFAULT: 4 * backlog; 0: no SYN queue, every
 * SYN is answered with a cookie). When the SYN queue is full, SYN cookies answer
 * (RFC 4987 §3.6). Accepted connections inherit cb and user. Returns 0 and *out, -EADDRINUSE,
 * -ENOSPC (no listener slot) or -EINVAL.
 */
int fp_tcp_listen(struct fp_stack *st, uint16_t port, uint32_t backlog, uint32_t syn_backlog,
                  const struct fp_tcp_callbacks *cb, void *user, struct fp_tcp_listener **out);

/* Stops listening. Connections on the accept queue are reset; accepted ones are unaffected. */
void fp_tcp_unlisten(struct fp_tcp_listener *l);

/* Returns the oldest established connection of l's accept queue, or NULL when it is empty. */
struct fp_tcb *fp_tcp_accept(struct fp_tcp_listener *l);

/*
 * Opens a connection to raddr:rport (host order) from local port lport (0: an ephemeral port).
 * Completion is reported by on_connected, failure by on_closed. Returns 0 and *out, or -ENOMEM
 * (connection pool empty), -EADDRINUSE (lport busy for that peer), -EADDRNOTAVAIL (no ephemeral
 * port free).
 */
int fp_tcp_connect(struct fp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
                   const struct fp_tcp_callbacks *cb, void *user, struct fp_tcb **out);

/*
 * fp_tcp_connect from local address laddr (host order): conf.addr or one of conf.src_addrs;
 * 0 means conf.addr. Ports are per local address: the same lport may be open to the same peer
 * from two addresses. Also returns -EADDRNOTAVAIL when laddr is not one of ours.
 */
int fp_tcp_connect_from(struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport,
                        uint16_t lport, const struct fp_tcp_callbacks *cb, void *user,
                        struct fp_tcb **out);

/* Replaces the callbacks and user pointer of c (e.g. right after fp_tcp_accept). */
void fp_tcp_set_callbacks(struct fp_tcb *c, const struct fp_tcp_callbacks *cb, void *user);

/*
 * Copies up to len bytes into c's send buffer and transmits what the windows allow. Returns the
 * bytes taken (may be short), -EAGAIN when the buffer is full (on_writable follows), -EPIPE after
 * shutdown, -ENOTCONN before the connection is established, -ENOMEM when the packet pool is empty.
 */
ssize_t fp_tcp_send(struct fp_tcb *c, const void *buf, size_t len);

/*
 * Zero-copy send: takes whole buffers from the head of *chain (buffers of the instance's pool,
 * data/len is payload, at most FP_PKT_BUF_SIZE - FP_PKT_HEADROOM bytes each) while they fit in
 * the send buffer; *chain is left pointing at the buffers not taken (still the caller's). A
 * buffer's data may sit anywhere in it (a received one keeps its old headers in front): the
 * segments sent are built in fresh buffers. A short buffer (at most 512 bytes) is copied into
 * the free room of the queue's last one when that is short too (under 1 KiB) and it fits, and
 * freed (counted in FP_STK_TCP_APP_COPY_BYTES with every copy between the application and the
 * queues): tiny segments passed on cannot fill the queue with nearly empty buffers.
 * Returns the bytes taken, -EAGAIN when not even the first fits (on_writable follows), -EINVAL
 * for a foreign or oversized buffer, or the codes of fp_tcp_send.
 */
ssize_t fp_tcp_send_pkts(struct fp_tcb *c, struct fp_pkt **chain);

/* Copies up to len received bytes into buf. Returns the bytes, 0 at end of stream, -EAGAIN. */
ssize_t fp_tcp_recv(struct fp_tcb *c, void *buf, size_t len);

/*
 * Zero-copy receive: detaches all in-order received data as a chain of buffers (data/len is
 * payload) into *chain. The caller owns them and frees each with fp_pkt_free (or passes them to
 * fp_tcp_send_pkts of a connection of the same instance). Returns the bytes, 0 at end of stream,
 * -EAGAIN.
 */
ssize_t fp_tcp_recv_pkts(struct fp_tcb *c, struct fp_pkt **chain);

/*
 * fp_tcp_recv_pkts bounded: detaches in-order buffers from the head of the receive queue, at
 * most max_pkts (>= 1) of them, and stops once they hold max_bytes (the last may cross it).
 * Returns the bytes, 0 at end of stream, -EAGAIN, or -EINVAL when max_pkts is 0.
 */
ssize_t fp_tcp_recv_pkts_upto(struct fp_tcb *c, struct fp_pkt **chain, uint32_t max_pkts,
                              uint32_t max_bytes);

/* Sends FIN once queued data is out; receiving continues. Returns 0 or -ENOTCONN. */
int fp_tcp_shutdown(struct fp_tcb *c);

/* Releases the handle: queued data is still sent, then FIN. No more callbacks for c. */
void fp_tcp_close(struct fp_tcb *c);

/* Releases the handle and resets the connection at once (RST). No more callbacks for c. */
void fp_tcp_abort(struct fp_tcb *c);

/* The connection of this instance with that 4-tuple (host order; laddr 0: conf.addr), any
 * state, or NULL. For tests and tools. */
struct fp_tcb *fp_tcp_find(struct fp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport,
                           uint16_t lport);

/*
 * Returns how many connections still have data or a FIN the peer has not acknowledged: what
 * a process must keep polling for before it exits, or the peers miss the tail.
 */
uint32_t fp_tcp_nb_unacked(struct fp_stack *st);

/* State, for tests and tools. */
enum fp_tcp_state fp_tcp_get_state(const struct fp_tcb *c);

/* Free space in the send buffer, bytes. */
uint32_t fp_tcp_send_space(const struct fp_tcb *c);

/* Human-readable name of state s. */
const char *fp_tcp_state_name(enum fp_tcp_state s);

/* --- Used by the rest of the stack --- */

/* Allocates the connection pool and hash table. Returns 0 or -ENOMEM. */
int fp_tcp_init(struct fp_stack *st);

/* Releases every connection silently (no segment, no callback), returning its buffers. */
void fp_tcp_release_all(struct fp_stack *st);

/* Releases every connection and frees the tables. */
void fp_tcp_fini(struct fp_stack *st);

/* Handles a segment (pkt->data at the TCP header, len = segment length). Consumes pkt. */
void fp_tcp_input(struct fp_stack *st, struct fp_pkt *pkt, uint32_t saddr, uint32_t daddr);

/* Delivers pending application events. */
void fp_tcp_dispatch(struct fp_stack *st);

/* Returns released connections to the pool. */
void fp_tcp_reap(struct fp_stack *st);

#endif /* FP_NET_STACK_TCP_H */
