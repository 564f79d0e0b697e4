/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * net/sock: on loopback sockets, a listening group (every socket listening, non-blocking, in
 * one SO_REUSEPORT group, the steering program attached), the probe that refuses an address
 * in use, the options of an outgoing socket, the accept queue's length, shedding (each shed
 * client reads the answer, then EOF) and a reset on close.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/sock.h"
#include "tests/unit/cu_main.h"

/* 127.0.0.1 on a port nothing listens on now (the kernel's pick for a probe, then closed). */
static struct fp_addr
free_loopback(void)
{
    struct fp_addr a;
    int            fd;

    memset(&a, 0, sizeof(a));
    a.u.sin.sin_family = AF_INET;
    a.u.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.len = sizeof(a.u.sin);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, &a.u.sa, a.len) == 0);
    CU_ASSERT_FATAL(getsockname(fd, &a.u.sa, &a.len) == 0);
    close(fd);
    return a;
}

static int
sockopt_int(int fd, int level, int name)
{
    int       v = -1;
    socklen_t len = sizeof(v);

    CU_ASSERT_EQUAL(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

/* A blocking client connected to a (the handshake completes in the accept queue). */
static int
client(const struct fp_addr *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(connect(fd, &a->u.sa, a->len) == 0);
    return fd;
}

static void
test_listen_group(void)
{
    struct fp_addr a = free_loopback();
    char           err[256];
    int            cpus[2] = {0, 1};
    int            fds[2] = {-1, -1};
    int            steered = -1;
    unsigned       i;

    CU_ASSERT_EQUAL(fp_sock_check_unused(&a, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(fp_sock_listen_group(&a, 2, cpus, 16, fds, &steered, err, sizeof(err)),
                          0);
    CU_ASSERT_EQUAL(steered, 1);
    for (i = 0; i < 2; i++) {
        CU_ASSERT(fds[i] >= 0);
        CU_ASSERT_EQUAL(sockopt_int(fds[i], SOL_SOCKET, SO_ACCEPTCONN), 1);
        CU_ASSERT_EQUAL(sockopt_int(fds[i], SOL_SOCKET, SO_REUSEPORT), 1);
        CU_ASSERT_EQUAL(sockopt_int(fds[i], SOL_SOCKET, SO_INCOMING_CPU), cpus[i]);
        CU_ASSERT((fcntl(fds[i], F_GETFL) & O_NONBLOCK) != 0);
        CU_ASSERT((fcntl(fds[i], F_GETFD) & FD_CLOEXEC) != 0);
    }
    /* Another process joining the group is what the probe exists to refuse. */
    CU_ASSERT_EQUAL(fp_sock_check_unused(&a, err, sizeof(err)), -EADDRINUSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already in use by another process"));
    for (i = 0; i < 2; i++) {
        close(fds[i]);
    }
    CU_ASSERT_EQUAL(fp_sock_check_unused(&a, err, sizeof(err)), 0);
}

static void
test_listen_group_fails_clean(void)
{
    struct fp_addr a = free_loopback();
    char           err[256];
    int            cpus[2] = {-1, -1};
    int            fds[2] = {-1, -1};
    int            steered = -1;
    int            other;

    /* A socket outside the group (no SO_REUSEPORT) holds the port: the group cannot bind. */
    other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(other >= 0);
    CU_ASSERT_FATAL(bind(other, &a.u.sa, a.len) == 0);
    CU_ASSERT_EQUAL(fp_sock_listen_group(&a, 2, cpus, 16, fds, &steered, err, sizeof(err)),
                    -EADDRINUSE);
    CU_ASSERT_EQUAL(fds[0], -1);
    CU_ASSERT_EQUAL(fds[1], -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot listen on 127.0.0.1:"));
    close(other);
}

static void
test_open_nodelay(void)
{
    struct fp_addr a = free_loopback();
    int            fd;

    fd = fp_sock_open(&a);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CU_ASSERT((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CU_ASSERT_EQUAL(sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    fp_sock_set_nodelay(fd);
    CU_ASSERT_EQUAL(sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    close(fd);
}

static void
test_queue_len_and_shed(void)
{
    static const char msg[] = "HTTP/1.1 503 x\r\n\r\n";
    struct fp_addr    a = free_loopback();
    char              err[256];
    char              got[64];
    int               cpus[1] = {-1};
    int               lfd = -1;
    int               steered = -1;
    int               c[3];
    unsigned          i;

    CU_ASSERT_EQUAL_FATAL(fp_sock_listen_group(&a, 1, cpus, 16, &lfd, &steered, err, sizeof(err)),
                          0);
    CU_ASSERT_EQUAL(steered, 0); /* one socket: nothing to steer */
    CU_ASSERT_EQUAL(fp_sock_accept_queue_len(lfd), 0);
    for (i = 0; i < 3; i++) {
        c[i] = client(&a);
    }
    CU_ASSERT_EQUAL(fp_sock_accept_queue_len(lfd), 3);
    CU_ASSERT_EQUAL(fp_sock_shed(lfd, msg, sizeof(msg) - 1, 2), 2);
    CU_ASSERT_EQUAL(fp_sock_accept_queue_len(lfd), 1);
    CU_ASSERT_EQUAL(fp_sock_shed(lfd, msg, sizeof(msg) - 1, 5), 1);
    CU_ASSERT_EQUAL(fp_sock_accept_queue_len(lfd), 0);
    for (i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(recv(c[i], got, sizeof(got), MSG_WAITALL), (ssize_t)sizeof(msg) - 1);
        CU_ASSERT_EQUAL(memcmp(got, msg, sizeof(msg) - 1), 0);
        CU_ASSERT_EQUAL(recv(c[i], got, sizeof(got), 0), 0); /* then EOF, not a reset */
        close(c[i]);
    }
    CU_ASSERT_EQUAL(fp_sock_accept_queue_len(-1), -EBADF);
    close(lfd);
}

static void
test_reset_on_close(void)
{
    struct fp_addr a = free_loopback();
    struct linger  lg;
    socklen_t      len = sizeof(lg);
    char           err[256];
    char           b;
    int            cpus[1] = {-1};
    int            lfd = -1;
    int            steered;
    int            c;
    int            s;

    CU_ASSERT_EQUAL_FATAL(fp_sock_listen_group(&a, 1, cpus, 16, &lfd, &steered, err, sizeof(err)),
                          0);
    c = client(&a);
    s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    CU_ASSERT_FATAL(s >= 0);
    fp_sock_set_reset(s);
    CU_ASSERT_EQUAL(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    CU_ASSERT_EQUAL(lg.l_onoff, 1);
    CU_ASSERT_EQUAL(lg.l_linger, 0);
    close(s);
    CU_ASSERT_EQUAL(recv(c, &b, 1, 0), -1);
    CU_ASSERT_EQUAL(errno, ECONNRESET);
    close(c);
    close(lfd);
}

int
main(void)
{
    static const struct fp_cu_test tests[] = {
            {"a listening group: reuseport, steered, non-blocking", test_listen_group},
            {"a group that cannot bind closes what it opened", test_listen_group_fails_clean},
            {"an outgoing socket: non-blocking, close-on-exec, TCP_NODELAY", test_open_nodelay},
            {"accept queue length and shedding", test_queue_len_and_shed},
            {"a reset on close", test_reset_on_close},
            {NULL, NULL},
    };

    return fp_cu_run("sock", tests);
}
