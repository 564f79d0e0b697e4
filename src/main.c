/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fastproxy: the command line, the main thread's event loop (signals, the stats listener,
 * the graceful stop) and the exit status: 0 clean stop, 1 configuration error, 2 runtime
 * failure. The data path runs in the worker threads (src/workers.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "src/config.h"
#include "src/log.h"
#include "src/notify.h"
#include "src/stats.h"
#include "src/stats_http.h"
#include "src/workers.h"

enum {
    EXIT_OK = 0,
    EXIT_CONFIG = 1,
    EXIT_RUNTIME = 2,
};

/* The signals the main loop handles; every other one is ignored or keeps its default (below). */
enum {
    SIG_TERM = 0,
    SIG_INT,
    SIG_QUIT,
    SIG_HUP,
    SIG_USR1,
    SIG_USR2,
    SIG_COUNT,
};

struct fp_main {
    struct ev_loop       *loop;
    struct fp_conf        conf;
    struct fp_workers     ws;
    ev_signal             sigs[SIG_COUNT];
    ev_async              worker_exit;
    ev_timer              grace;
    ev_timer              alog;
    struct fp_stats_http *stats; /* NULL without a stats section */
    int                   stopping;
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: fastproxy -f FILE [-c]\n"
            "  -f FILE  configuration file (YAML)\n"
            "  -c       check the configuration and exit (0 valid, 1 invalid)\n"
            "  -V       print the version and exit\n"
            "  -h       print this help and exit\n"
            "Runs in the foreground and logs to stderr (or global.log_file).\n"
            "SIGTERM, SIGINT, SIGQUIT: graceful stop; SIGUSR1: reopen the log file;\n"
            "SIGHUP, SIGUSR2: logged and ignored. See fastproxy(8).\n");
}

static void
on_worker_exit(void *data)
{
    struct fp_main *m = data;

    ev_async_send(m->loop, &m->worker_exit);
}

static void
main_check_done(struct ev_loop *loop, ev_async *w, int revents)
{
    struct fp_main *m = w->data;

    if (fp_workers_exited(&m->ws) == m->ws.n) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void
main_on_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fp_main *m = w->data;

    fp_log(FP_LOG_WARNING, "grace period over: closing the remaining connections");
    fp_workers_send(&m->ws, FP_WMSG_STOP);
}

static void
main_on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct fp_main *m = w->data;

    if (m->stopping) {
        fp_log(FP_LOG_WARNING, "second stop signal: closing every connection now");
        fp_workers_send(&m->ws, FP_WMSG_STOP);
        return;
    }
    m->stopping = 1;
    fp_notify("STOPPING=1");
    fp_log(FP_LOG_INFO, "signal %d: no longer accepting, draining for up to %u ms",
           w->signum, m->conf.global.grace_ms);
    fp_workers_send(&m->ws, FP_WMSG_DRAIN);
    ev_timer_set(&m->grace, m->conf.global.grace_ms / 1000.0, 0);
    ev_timer_start(loop, &m->grace);
    fp_stats_http_stop(m->stats);
}

static bool
main_any_access_log(const struct fp_conf *conf)
{
    uint32_t i;

    for (i = 0; i < conf->nb_frontends; i++) {
        if (conf->frontends[i].access_log) {
            return true;
        }
    }
    return false;
}

static void
main_on_alog(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fp_main *m = w->data;

    fp_workers_drain_logs(&m->ws, stderr);
}

/*
 * SIGUSR1 (nginx's convention, what logrotate's postrotate sends): the lines queued so far go
 * to the file being rotated away, then the configured path is opened afresh. Without
 * global.log_file, stderr belongs to whoever started us and there is nothing to reopen.
 */
static void
main_on_reopen(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct fp_main *m = w->data;
    int             rc;

    if (m->conf.log_file == NULL) {
        fp_log(FP_LOG_INFO, "SIGUSR1: logging to stderr, no log file to reopen");
        return;
    }
    fp_workers_drain_logs(&m->ws, stderr);
    rc = fp_log_open_file(m->conf.log_file);
    if (rc != 0) {
        fp_log(FP_LOG_ERR, "SIGUSR1: cannot reopen %s: %s; still logging to the old file",
               m->conf.log_file, strerror(-rc));
        return;
    }
    fp_log(FP_LOG_INFO, "SIGUSR1: reopened %s", m->conf.log_file);
}

/* SIGHUP and SIGUSR2 ask nginx for a reload and a binary upgrade, which we cannot do yet. */
static void
main_on_unsupported(struct ev_loop *loop, ev_signal *w, int revents)
{
    fp_log(FP_LOG_WARNING, "%s: %s is not supported yet; ignored, still running",
           w->signum == SIGHUP ? "SIGHUP" : "SIGUSR2",
           w->signum == SIGHUP ? "configuration reload" : "binary upgrade");
}

/*
 * Signal dispositions, set before anything else runs. Handled in the main loop (signalfd,
 * workers block every signal): TERM, INT, QUIT (graceful stop), USR1 (reopen the log file),
 * HUP and USR2 (logged). Ignored, because their default would kill a proxy for no reason:
 * PIPE (a peer went away: send() reports it), ALRM, VTALRM, PROF, IO, PWR, STKFLT (nothing
 * here asked for them), XFSZ (a full log file: write() fails instead), TTIN and TTOU (a
 * background run that writes to the terminal must not stop), WINCH and URG (already ignored by
 * default, listed for completeness). Default kept: TSTP/CONT (job control), XCPU (the CPU
 * limit), and the faults SEGV, BUS, ILL, FPE, ABRT, TRAP, SYS, whose core dump is wanted.
 */
static void
main_init_signals(struct fp_main *m)
{
    static const int ignored[] = {SIGPIPE, SIGALRM, SIGVTALRM, SIGPROF,  SIGIO,   SIGPWR,
                                  SIGXFSZ, SIGTTIN, SIGTTOU,   SIGWINCH, SIGURG,
#ifdef SIGSTKFLT
                                  SIGSTKFLT,
#endif
    };
    static const struct {
        int signum;
        void (*cb)(struct ev_loop *loop, ev_signal *w, int revents);
    } handled[SIG_COUNT] = {
            [SIG_TERM] = {SIGTERM, main_on_stop},   [SIG_INT] = {SIGINT, main_on_stop},
            [SIG_QUIT] = {SIGQUIT, main_on_stop},   [SIG_HUP] = {SIGHUP, main_on_unsupported},
            [SIG_USR1] = {SIGUSR1, main_on_reopen}, [SIG_USR2] = {SIGUSR2, main_on_unsupported},
    };
    size_t i;

    for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        signal(ignored[i], SIG_IGN);
    }
    for (i = 0; i < SIG_COUNT; i++) {
        ev_signal_init(&m->sigs[i], handled[i].cb, handled[i].signum);
        m->sigs[i].data = m;
        ev_signal_start(m->loop, &m->sigs[i]);
    }
}

static void
main_print_dpdk(const struct fp_conf *conf)
{
    static const char *const polls[] = {"adaptive", "busy"};
    static const char *const rss[] = {"auto", "hardware", "software"};
    const struct fp_dpdk_conf *d = &conf->dpdk;
    char                       a[INET_ADDRSTRLEN];
    char                       gw[INET_ADDRSTRLEN] = "none";
    uint32_t                   i;

    if (conf->global.io == FP_IO_DPDK && conf->global.io_collect_set) {
        printf("note: io_collect is ignored under io: dpdk (dpdk.poll sets how it waits)\n");
    }
    if (conf->global.io != FP_IO_DPDK) {
        if (d->present) {
            printf("note: the dpdk: section is ignored under io: %s\n",
                   conf->global.io == FP_IO_URING ? "uring" : "kernel");
        }
        return;
    }
    inet_ntop(AF_INET, &d->addr, a, sizeof(a));
    if (d->gateway.s_addr != htonl(INADDR_ANY)) {
        inet_ntop(AF_INET, &d->gateway, gw, sizeof(gw));
    }
    printf("io dpdk: port %u, address %s/%u, gateway %s, %u mbufs per worker, poll %s, rss %s\n"
           "eal:", d->port, a, d->prefix_len, gw, d->mbufs, polls[d->poll], rss[d->rss]);
    for (i = 0; i < d->nb_eal; i++) {
        printf(" %s", d->eal[i]);
    }
    printf("\n");
    for (i = 0; i < d->nb_src_addrs; i++) {
        printf("%s %s", i == 0 ? "source addresses:" : "", inet_ntop(AF_INET, &d->src_addrs[i],
                                                                     a, sizeof(a)));
    }
    if (d->nb_src_addrs > 0) {
        printf("\n");
    }
}

/* The memory bound as printed by -c and at start alike: MiB, rounded up (a bound). */
static size_t
mib_ceil(size_t bytes)
{
    return (bytes + (1 << 20) - 1) >> 20;
}

static int
main_print_check(const struct fp_conf *conf)
{
    struct fp_workers_plan plan;
    char                   err[256];
    uint32_t               i;
    uint32_t               n = 0;

    for (i = 0; i < conf->nb_backends; i++) {
        n += conf->backends[i].nb_servers;
    }
    if (fp_workers_plan(conf, &plan, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", conf->file, err);
        return EXIT_CONFIG;
    }
    printf("%s: configuration valid: %u frontend(s), %u backend(s), %u server(s)\n"
           "workers %u, maxconn %u (%u per worker), bufsize %u, maxpipes %u\n"
           "memory bound: %zu MiB (every pool full; resident memory never exceeds it)\n",
           conf->file, conf->nb_frontends, conf->nb_backends, n, plan.workers, plan.maxconn,
           plan.per_worker, conf->global.bufsize, plan.maxpipes, mib_ceil(plan.mem_bound));
    main_print_dpdk(conf);
    return EXIT_OK;
}

static int
main_run(struct fp_main *m)
{
    char err[512];
    int  rc = EXIT_RUNTIME;
    int  lrc;

    m->loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_SIGNALFD);
    if (m->loop == NULL) {
        fp_log(FP_LOG_ERR, "cannot create the main event loop");
        return EXIT_RUNTIME;
    }
    main_init_signals(m);
    if (m->conf.log_file != NULL) {
        lrc = fp_log_open_file(m->conf.log_file);
        if (lrc != 0) {
            fp_log(FP_LOG_ERR, "cannot open the log file %s: %s", m->conf.log_file,
                   strerror(-lrc));
            return EXIT_RUNTIME;
        }
        /* The lines now go to a file, not to the journal's stream: no syslog prefixes. */
        unsetenv("JOURNAL_STREAM");
    }
    if (fp_workers_create(&m->ws, &m->conf, err, sizeof(err)) != 0) {
        fp_log(FP_LOG_ERR, "%s", err);
        goto out;
    }
    if (m->conf.has_stats) {
        m->stats = fp_stats_http_open(m->loop, &m->ws, &m->conf.stats_addr, err, sizeof(err));
        if (m->stats == NULL) {
            fp_log(FP_LOG_ERR, "%s", err);
            goto out;
        }
    }
    ev_async_init(&m->worker_exit, main_check_done);
    ev_init(&m->grace, main_on_grace);
    m->worker_exit.data = m;
    m->grace.data = m;
    ev_async_start(m->loop, &m->worker_exit);
    /* Access log lines are written by this thread, 10 times a second, never by a worker;
     * without a logging frontend there is nothing to drain and nothing wakes this thread. */
    ev_timer_init(&m->alog, main_on_alog, 0.1, 0.1);
    m->alog.data = m;
    if (main_any_access_log(&m->conf)) {
        ev_timer_start(m->loop, &m->alog);
    }
    m->ws.on_exit = on_worker_exit;
    m->ws.on_exit_data = m;
    if (fp_workers_start(&m->ws, err, sizeof(err)) != 0) {
        fp_log(FP_LOG_ERR, "%s", err);
        fp_workers_send(&m->ws, FP_WMSG_STOP);
        goto out;
    }
    fp_log(FP_LOG_INFO, "%u worker(s) listening, io %s, maxconn %u, steering %s, "
           "memory bound %zu MiB", m->ws.n, m->ws.t[0].io->ops->name, m->ws.maxconn,
           m->ws.t[0].io->steering != NULL ? m->ws.t[0].io->steering
           : m->ws.steered ? "reuseport cpu" : "reuseport hash", mib_ceil(m->ws.mem_bound));
    fp_notify("READY=1");
    ev_run(m->loop, 0);
    fp_workers_drain_logs(&m->ws, stderr);
    fp_stats_log(&m->ws);
    fp_log(FP_LOG_INFO, "stopped");
    rc = EXIT_OK;

out:
    fp_stats_http_close(m->stats);
    m->stats = NULL;
    fp_workers_destroy(&m->ws);
    return rc;
}

int
main(int argc, char **argv)
{
    struct fp_main m;
    const char    *file = NULL;
    char           err[1024];
    int            check = 0;
    int            opt;
    int            rc;

    memset(&m, 0, sizeof(m));
    while ((opt = getopt(argc, argv, "f:cVh")) != -1) {
        switch (opt) {
        case 'f':
            file = optarg;
            break;
        case 'c':
            check = 1;
            break;
        case 'V':
            printf("fastproxy %s\n", FP_VERSION);
            return EXIT_OK;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    if (file == NULL || optind != argc) {
        fprintf(stderr, "fastproxy: %s\n", file == NULL ? "missing -f FILE" : "unexpected argument");
        usage(stderr);
        return EXIT_CONFIG;
    }
    if (fp_conf_load(&m.conf, file, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_CONFIG;
    }
    if (check) {
        rc = main_print_check(&m.conf);
        fp_conf_free(&m.conf);
        return rc;
    }
    rc = main_run(&m);
    fp_conf_free(&m.conf);
    return rc;
}
