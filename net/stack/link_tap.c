/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TAP link. A received frame is read at offset FP_PKT_HEADROOM - 64 of the buffer so that
 * replies built in place (ICMP echo) still have headroom for their headers.
 */
#include "net/stack/link_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/stack/pkt.h"

#define RX_OFFSET (FP_PKT_HEADROOM - 64)

static uint16_t
tap_rx_burst(struct fp_link *l, struct fp_pktpool *pool, struct fp_pkt **pkts, uint16_t n,
             uint64_t now_us)
{
    struct fp_taplink *t = l->ctx;
    struct fp_pkt     *p;
    ssize_t            r;
    uint16_t           k = 0;

    while (k < n) {
        p = fp_pkt_alloc(pool);
        if (p == NULL) {
            break;
        }
        p->data = p->buf + RX_OFFSET;
        r = read(t->fd, p->data, FP_PKT_BUF_SIZE - RX_OFFSET);
        if (r == -1 || r == 0) {
            if (r == -1 && errno != EAGAIN && errno != EINTR) {
                t->rx_errors++;
            }
            fp_pkt_free(p);
            break;
        }
        p->len = (uint32_t)r;
        pkts[k++] = p;
    }
    return k;
}

static uint16_t
tap_tx_burst(struct fp_link *l, struct fp_pkt **pkts, uint16_t n, uint64_t now_us)
{
    struct fp_taplink *t = l->ctx;
    uint16_t           k;

    for (k = 0; k < n; k++) {
        if (write(t->fd, pkts[k]->data, pkts[k]->len) == -1) {
            if (errno == EAGAIN) {
                break;
            }
            t->tx_errors++; /* the frame is lost, as on a wire */
        }
        fp_pkt_free(pkts[k]);
    }
    return k;
}

static const struct fp_link_ops tap_ops = {
        .rx_burst = tap_rx_burst,
        .tx_burst = tap_tx_burst,
};

int
fp_taplink_open(struct fp_taplink *t, const char *name, const uint8_t mac[6])
{
    struct ifreq ifr;
    int          sock;
    int          rc;

    memset(t, 0, sizeof(*t));
    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->fd == -1) {
        return -errno;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(t->fd, TUNSETIFF, &ifr) == -1) {
        rc = -errno;
        goto err_close;
    }
    memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock == -1) {
        rc = -errno;
        goto err_close;
    }
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) == -1) {
        rc = -errno;
        close(sock);
        goto err_close;
    }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) == -1) {
        rc = -errno;
        close(sock);
        goto err_close;
    }
    close(sock);
    t->link.ops = &tap_ops;
    t->link.ctx = t;
    t->link.mtu = 1500;
    memcpy(t->link.mac, mac, 6);
    return 0;

err_close:
    close(t->fd);
    t->fd = -1;
    return rc;
}

void
fp_taplink_close(struct fp_taplink *t)
{
    if (t->fd != -1) {
        close(t->fd);
        t->fd = -1;
    }
}
