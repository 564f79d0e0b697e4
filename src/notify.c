/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sd_notify(3) from libsystemd when the build has it; otherwise the documented protocol:
 * one datagram with the state text to the AF_UNIX socket named by $NOTIFY_SOCKET
 * (a leading '@' means the abstract namespace).
 */
#include "src/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fp_build_config.h"

#if FP_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

int
fp_notify(const char *state)
{
    int rc = sd_notify(0, state);

    return rc < 0 ? rc : 0;
}

#else

int
fp_notify(const char *state)
{
    const char        *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    socklen_t          len;
    size_t             plen;
    int                fd;
    int                rc = 0;

    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
        return -EINVAL;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@') {
        sun.sun_path[0] = '\0';
    }
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -errno;
    }
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) == -1) {
        rc = -errno;
    }
    close(fd);
    return rc;
}

#endif
