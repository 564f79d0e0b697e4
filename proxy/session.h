/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A session: one client connection and the server connection it is forwarded to, with one
 * bounded queue of lent segments per direction (net/io.h, fp_io_recv_segs). Sessions come from
 * the worker's pool, live on that worker only, and go back to it when both directions are done
 * or on error or timeout.
 */
#ifndef FP_PROXY_SESSION_H
#define FP_PROXY_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "net/buf.h"
#include "net/io.h"
#include "proxy/worker.h"

/* Most pool buffers one session holds at once (HTTP: two directions plus two rewritten heads). */
#define FP_SESSION_MAX_BUFS 4

/* Connections of the backend's pool per session: the client's, the server's, and room for
 * as many idle server connections kept for reuse as there are sessions. */
#define FP_CONNS_PER_SESSION 3

struct fp_session {
    struct fp_task                 task; /* first: in w->active */
    struct fp_worker              *w;
    const struct fp_frontend_conf *fe;
    const struct fp_backend_conf  *be;
    struct fp_conn                *cli;
    struct fp_conn                *srv;
    struct fp_segq                 req; /* client to server */
    struct fp_segq                 rsp; /* server to client */
    struct fp_timer                timer;
    uint64_t                       last_ms;    /* last transfer, for the inactivity timeout */
    uint32_t                       timeout_ms; /* what the timer currently enforces */
    uint32_t                       srv_idx;    /* server being used or tried */
    struct fp_waiter               wait;       /* waiting for a server slot (maxconn) */
    uint64_t                       tried;      /* servers tried so far, bit per server */
    uint8_t                        connecting;
    uint8_t                        has_slot; /* holds a slot of server srv_idx */
    uint8_t                        cli_eof;  /* client sent FIN */
    uint8_t                        srv_eof;  /* server sent FIN */
    uint8_t                        cli_shut; /* FIN sent to the client */
    uint8_t                        srv_shut; /* FIN sent to the server */
};

/* Takes over a new client connection c of frontend fe (TCP mode). Worker thread only. */
void fp_tcp_session_start(struct fp_worker *w, const struct fp_frontend_conf *fe,
                          struct fp_conn *c);

/* Takes over a new client connection c of frontend fe (HTTP mode). Worker thread only. */
void fp_http_session_start(struct fp_worker *w, const struct fp_frontend_conf *fe,
                           struct fp_conn *c);

/* Returns the size of the largest session object of any mode (the pool's element size). */
size_t fp_session_size(void);

#endif /* FP_PROXY_SESSION_H */
