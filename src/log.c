/* SPDX-License-Identifier: BSD-3-Clause */
/* One fprintf per line: stdio's own lock keeps lines from different threads whole. */
#include "src/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void
fp_log(enum fp_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    static const int         syslog_prio[] = {3, 4, 6, 7};
    char                     msg[1024];
    char                     ts[32];
    struct timespec          now;
    struct tm                tm;
    va_list                  ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (getenv("JOURNAL_STREAM") != NULL) {
        fprintf(stderr, "<%d>%s: %s\n", syslog_prio[level], names[level], msg);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ fastproxy[%d]: %s: %s\n", ts, now.tv_nsec / 1000000,
            (int)getpid(), names[level], msg);
}

int
fp_log_open_file(const char *path)
{
    int fd;
    int rc = 0;

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd == -1) {
        return -errno;
    }
    fflush(stderr);
    if (dup2(fd, STDERR_FILENO) == -1) {
        rc = -errno;
    }
    close(fd);
    return rc;
}
