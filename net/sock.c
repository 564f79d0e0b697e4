/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Kernel socket set-up shared by io: kernel and io: uring (net/sock.h says what belongs here).
 * The listening groups are made by the main thread at startup; the rest is called by a
 * worker on its own sockets. Nothing here keeps state or allocates.
 */
#include "net/sock.h"

#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * ld cpu; for each worker i: if cpu == cpus[i] return i; otherwise return cpu % n.
 * The index returned selects the socket in the reuseport group, which the kernel numbers in
 * the order the sockets started listening: worker order.
 */
static int
attach_cpu_steering(int fd, unsigned n, const int *cpus)
{
    struct sock_filter code[2 + 2 * 64 + 2];
    struct sock_fprog  prog;
    unsigned           i;
    unsigned           pc = 0;

    if (n > 64) {
        return -E2BIG;
    }
    code[pc++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_CPU);
    for (i = 0; i < n; i++) {
        code[pc++] =
                (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)cpus[i], 0, 1);
        code[pc++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, i);
    }
    code[pc++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n);
    code[pc++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
    prog.len = (unsigned short)pc;
    prog.filter = code;
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) == -1) {
        return -errno;
    }
    return 0;
}

int
fp_sock_check_unused(const struct fp_addr *a, char *err, size_t errlen)
{
    char text[FP_ADDR_STRLEN];
    int  one = 1;
    int  fd;
    int  rc = 0;

    fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        rc = -errno;
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return rc;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, &a->u.sa, a->len) == -1) {
        rc = -errno;
        fp_addr_format(a, text, sizeof(text));
        if (rc == -EADDRINUSE) {
            snprintf(err, errlen,
                     "cannot listen on %s: already in use by another process "
                     "(another fastproxy?); refusing to share it (ss -ltnp shows who)",
                     text);
        } else {
            snprintf(err, errlen, "cannot listen on %s: %s", text, strerror(-rc));
        }
    }
    close(fd);
    return rc;
}

int
fp_sock_listen_group(const struct fp_addr *a, unsigned n, const int *cpus, int backlog, int *fds,
                     int *steered, char *err, size_t errlen)
{
    char     text[FP_ADDR_STRLEN];
    unsigned i;
    int      one = 1;
    int      rc;

    for (i = 0; i < n; i++) {
        fds[i] = -1;
    }
    for (i = 0; i < n; i++) {
        rc = fp_sock_open(a);
        if (rc < 0) {
            snprintf(err, errlen, "socket: %s", strerror(-rc));
            goto err_close;
        }
        fds[i] = rc;
        setsockopt(fds[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
            bind(fds[i], &a->u.sa, a->len) == -1 || listen(fds[i], backlog) == -1) {
            rc = -errno;
            snprintf(err, errlen, "cannot listen on %s: %s", fp_addr_format(a, text, sizeof(text)),
                     strerror(errno));
            goto err_close;
        }
        if (cpus[i] >= 0) {
            /* A hint for the kernel's own lookup; the BPF program below is what steers. */
            setsockopt(fds[i], SOL_SOCKET, SO_INCOMING_CPU, &cpus[i], sizeof(cpus[i]));
        }
    }
    *steered = n > 1 && attach_cpu_steering(fds[0], n, cpus) == 0;
    return 0;

err_close:
    for (i = 0; i < n; i++) {
        if (fds[i] != -1) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    return rc;
}

int
fp_sock_open(const struct fp_addr *to)
{
    int fd;

    fd = socket(to->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd == -1 ? -errno : fd;
}

void
fp_sock_set_nodelay(int fd)
{
    int one = 1;

    /* A proxy forwards what it has at once; Nagle would add a round trip of delay. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void
fp_sock_set_reset(int fd)
{
    struct linger lg = {1, 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

int
fp_sock_accept_queue_len(int fd)
{
    struct tcp_info ti;
    socklen_t       len = sizeof(ti);

    /* For a listening socket, tcpi_unacked is the accept queue's length (tcp_diag). */
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1) {
        return -errno;
    }
    return (int)ti.tcpi_unacked;
}

void
fp_sock_answer_close(int fd, const void *msg, size_t len)
{
    (void)send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    close(fd);
}

unsigned
fp_sock_shed(int fd, const void *msg, size_t len, unsigned max)
{
    unsigned n;
    int      cfd;

    for (n = 0; n < max; n++) {
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd == -1) {
            break;
        }
        fp_sock_answer_close(cfd, msg, len);
    }
    return n;
}
