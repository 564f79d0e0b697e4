/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker's proxy context: creates its pools at start, accepts on its own listeners, hands
 * each client connection to the session code of its frontend's mode, and stops gracefully.
 */
#include "proxy/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/session.h"

struct fe_listener {
    struct fp_worker              *w;
    const struct fp_frontend_conf *fe;
};

int
fp_worker_init(struct fp_worker *w, unsigned id, const struct fp_conf *conf, struct fp_io *io,
               uint32_t max_sessions)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->conf = conf;
    w->io = io;
    w->max_sessions = max_sessions;
    if (fp_pool_init(&w->sessions, sizeof(struct fp_session), max_sessions) != 0) {
        goto err;
    }
    /* Two buffers per session at most, so a buffer is never missing for a live session. */
    if (fp_pool_init(&w->bufs, conf->global.bufsize, 2 * max_sessions) != 0) {
        goto err_sessions;
    }
    w->rr_next = calloc(conf->nb_backends + 1, sizeof(*w->rr_next));
    if (w->rr_next == NULL) {
        goto err_bufs;
    }
    return 0;

err_bufs:
    fp_pool_destroy(&w->bufs);
err_sessions:
    fp_pool_destroy(&w->sessions);
err:
    return -ENOMEM;
}

static void
worker_on_accept(struct fp_listener *l, struct fp_conn *c)
{
    struct fe_listener *fl = l->data;
    struct fp_worker   *w = fl->w;

    FP_STAT_INC(w, accepted);
    switch (fl->fe->mode) {
    case FP_MODE_TCP:
    case FP_MODE_HTTP:
        fp_tcp_session_start(w, fl->fe, c);
        break;
    }
}

int
fp_worker_listen(struct fp_worker *w, uint32_t fe_idx, const struct fp_listen_conf *lc)
{
    struct fp_listener **ls;
    struct fe_listener  *fl;
    int                  rc;

    ls = realloc(w->listeners, sizeof(*ls) * (w->nb_listeners + 1));
    if (ls == NULL) {
        return -ENOMEM;
    }
    w->listeners = ls;
    fl = calloc(1, sizeof(*fl));
    if (fl == NULL) {
        return -ENOMEM;
    }
    fl->w = w;
    fl->fe = &w->conf->frontends[fe_idx];
    rc = w->io->ops->listen(w->io, lc, worker_on_accept, fl, &ls[w->nb_listeners]);
    if (rc != 0) {
        free(fl);
        return rc;
    }
    w->nb_listeners++;
    return 0;
}

static void
worker_close_listeners(struct fp_worker *w)
{
    uint32_t i;

    for (i = 0; i < w->nb_listeners; i++) {
        free(w->listeners[i]->data);
        w->io->ops->listener_close(w->listeners[i]);
        w->listeners[i] = NULL;
    }
    w->nb_listeners = 0;
}

void
fp_worker_drain(struct fp_worker *w)
{
    if (w->draining) {
        return;
    }
    w->draining = true;
    worker_close_listeners(w);
    if (w->active == NULL) {
        w->io->ops->stop(w->io);
    }
}

void
fp_worker_stop_now(struct fp_worker *w)
{
    w->draining = true;
    worker_close_listeners(w);
    while (w->active != NULL) {
        fp_session_abort(w->active);
    }
    w->io->ops->stop(w->io);
}

void
fp_worker_destroy(struct fp_worker *w)
{
    worker_close_listeners(w);
    free(w->listeners);
    w->listeners = NULL;
    free(w->rr_next);
    w->rr_next = NULL;
    fp_pool_destroy(&w->bufs);
    fp_pool_destroy(&w->sessions);
}
