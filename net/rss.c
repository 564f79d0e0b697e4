/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Toeplitz hashing (Microsoft RSS specification, "Verifying the RSS Hash Calculation") and the
 * RSS-aware local port classes. The hash is computed from a table of 12 x 256 words made at
 * init: Toeplitz XORs one 32-bit key window per set input bit, so it is linear over XOR and the
 * hash of an input is the XOR of the hashes of its bytes taken alone. The same linearity splits
 * the hash of a reply tuple into a part fixed by (peer, local address) and the share of the
 * local port, which is what makes an O(1) port choice possible.
 */
#include "net/rss.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net/debug.h"

const uint8_t fp_rss_default_key[FP_RSS_KEY_LEN] = {
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
        0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
        0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

/* Offsets of the fields in the IPv4/TCP hash input. */
#define IN_SADDR 0
#define IN_DADDR 4
#define IN_SPORT 8
#define IN_DPORT 10

struct fp_rss_ports {
    struct fp_rss             rss;
    uint16_t                  queue;
    uint32_t                  laddrs[FP_RSS_LADDR_MAX];
    uint32_t                  nb_laddrs;
    uint32_t                  max_tries;
    uint32_t                  mask;  /* reta_size - 1 */
    uint16_t                 *owned; /* reta indices that map to queue */
    uint32_t                  nb_owned;
    uint32_t                  owned_cur;
    uint32_t                 *class_start; /* reta_size + 1 offsets into ports */
    uint32_t                 *class_cur;   /* next port of each class, relative to its start */
    uint16_t                 *ports;       /* the range, grouped by class */
    struct fp_rss_ports_stats stats;
};

static bool
key_bit(const uint8_t *key, size_t pos)
{
    return ((key[pos / 8] >> (7 - pos % 8)) & 1) != 0;
}

uint32_t
fp_rss_toeplitz(const uint8_t *key, size_t key_len, const uint8_t *input, size_t len)
{
    uint32_t window;
    uint32_t hash = 0;
    size_t   i;
    int      b;

    FP_ASSERT(key_len >= len + 4);
    window = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
    for (i = 0; i < len; i++) {
        for (b = 7; b >= 0; b--) {
            if ((input[i] >> b & 1) != 0) {
                hash ^= window;
            }
            /* Slide the window one bit: bit 32 + (i * 8 + 7 - b) of the key comes in. */
            window = window << 1 | (key_bit(key, 32 + i * 8 + (size_t)(7 - b)) ? 1u : 0u);
        }
    }
    return hash;
}

static bool
valid_reta_size(uint16_t reta_size)
{
    return reta_size >= 1 && reta_size <= FP_RSS_RETA_MAX && (reta_size & (reta_size - 1)) == 0;
}

/* Fills tbl[i][v] = toeplitz(input with byte i = v, others 0), from the 8 single-bit hashes. */
static void
build_table(struct fp_rss *rss)
{
    uint8_t  in[FP_RSS_V4_INPUT_LEN];
    uint32_t bit[8];
    uint32_t h;
    unsigned i;
    unsigned v;
    unsigned b;

    for (i = 0; i < FP_RSS_V4_INPUT_LEN; i++) {
        for (b = 0; b < 8; b++) {
            memset(in, 0, sizeof(in));
            in[i] = (uint8_t)(1u << b);
            bit[b] = fp_rss_toeplitz(rss->key, rss->key_len, in, sizeof(in));
        }
        for (v = 0; v < 256; v++) {
            h = 0;
            for (b = 0; b < 8; b++) {
                if ((v >> b & 1) != 0) {
                    h ^= bit[b];
                }
            }
            rss->tbl[i][v] = h;
        }
    }
}

int
fp_rss_set_key(struct fp_rss *rss, const uint8_t *key, size_t key_len)
{
    if (key == NULL) {
        key = fp_rss_default_key;
        key_len = FP_RSS_KEY_LEN;
    }
    if (key_len < FP_RSS_KEY_MIN || key_len > FP_RSS_KEY_MAX) {
        return -EINVAL;
    }
    memset(rss->key, 0, sizeof(rss->key));
    memcpy(rss->key, key, key_len);
    rss->key_len = (uint16_t)key_len;
    build_table(rss);
    return 0;
}

int
fp_rss_set_reta(struct fp_rss *rss, const uint16_t *reta, uint16_t reta_size, uint16_t nb_queues)
{
    uint16_t i;

    if (!valid_reta_size(reta_size) || nb_queues == 0) {
        return -EINVAL;
    }
    for (i = 0; i < reta_size; i++) {
        if (reta[i] >= nb_queues) {
            return -EINVAL;
        }
    }
    memcpy(rss->reta, reta, reta_size * sizeof(reta[0]));
    rss->reta_size = reta_size;
    rss->nb_queues = nb_queues;
    return 0;
}

int
fp_rss_init(struct fp_rss *rss, const uint8_t *key, size_t key_len, uint16_t reta_size,
            uint16_t nb_queues)
{
    uint16_t i;
    int      rc;

    if (!valid_reta_size(reta_size) || nb_queues == 0 || nb_queues > reta_size) {
        return -EINVAL;
    }
    memset(rss, 0, sizeof(*rss));
    rc = fp_rss_set_key(rss, key, key_len);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < reta_size; i++) {
        rss->reta[i] = (uint16_t)(i % nb_queues);
    }
    rss->reta_size = reta_size;
    rss->nb_queues = nb_queues;
    return 0;
}

static uint32_t
hash_u32(const struct fp_rss *rss, unsigned off, uint32_t v)
{
    return rss->tbl[off][v >> 24] ^ rss->tbl[off + 1][(v >> 16) & 0xff] ^
           rss->tbl[off + 2][(v >> 8) & 0xff] ^ rss->tbl[off + 3][v & 0xff];
}

static uint32_t
hash_u16(const struct fp_rss *rss, unsigned off, uint16_t v)
{
    return rss->tbl[off][v >> 8] ^ rss->tbl[off + 1][v & 0xff];
}

uint32_t
fp_rss_hash_v4(const struct fp_rss *rss, uint32_t saddr, uint32_t daddr, uint16_t sport,
               uint16_t dport)
{
    return hash_u32(rss, IN_SADDR, saddr) ^ hash_u32(rss, IN_DADDR, daddr) ^
           hash_u16(rss, IN_SPORT, sport) ^ hash_u16(rss, IN_DPORT, dport);
}

uint16_t
fp_rss_queue(const struct fp_rss *rss, uint32_t saddr, uint32_t daddr, uint16_t sport,
             uint16_t dport)
{
    return rss->reta[fp_rss_hash_v4(rss, saddr, daddr, sport, dport) & (rss->reta_size - 1u)];
}

/* ---- ports ---- */

static int
check_ports_conf(const struct fp_rss_ports_conf *conf, uint16_t *lo, uint16_t *hi)
{
    if (conf->rss == NULL || conf->queue >= conf->rss->nb_queues || conf->laddrs == NULL ||
        conf->nb_laddrs == 0 || conf->nb_laddrs > FP_RSS_LADDR_MAX) {
        return -EINVAL;
    }
    *lo = conf->port_lo;
    *hi = conf->port_hi;
    if (*lo == 0 && *hi == 0) {
        *lo = FP_RSS_PORT_LO;
        *hi = FP_RSS_PORT_HI;
    }
    if (*lo == 0 || *lo > *hi) {
        return -EINVAL;
    }
    return 0;
}

/* Groups the ports lo..hi by class (counting sort on the low bits of their share). */
static void
build_classes(struct fp_rss_ports *pp, uint16_t lo, uint16_t hi)
{
    uint32_t p;
    uint32_t c;

    for (p = lo; p <= hi; p++) {
        c = hash_u16(&pp->rss, IN_DPORT, (uint16_t)p) & pp->mask;
        pp->class_start[c + 1]++;
    }
    for (c = 0; c < pp->mask + 1; c++) {
        pp->class_start[c + 1] += pp->class_start[c];
    }
    /* class_cur serves as the fill position here, and is reset to 0 below. */
    for (p = lo; p <= hi; p++) {
        c = hash_u16(&pp->rss, IN_DPORT, (uint16_t)p) & pp->mask;
        pp->ports[pp->class_start[c] + pp->class_cur[c]++] = (uint16_t)p;
    }
    memset(pp->class_cur, 0, (pp->mask + 1) * sizeof(pp->class_cur[0]));
}

int
fp_rss_ports_create(const struct fp_rss_ports_conf *conf, struct fp_rss_ports **out)
{
    struct fp_rss_ports *pp;
    uint16_t             lo;
    uint16_t             hi;
    uint32_t             i;
    uint32_t             n;
    int                  rc;

    rc = check_ports_conf(conf, &lo, &hi);
    if (rc < 0) {
        return rc;
    }
    pp = calloc(1, sizeof(*pp));
    if (pp == NULL) {
        return -ENOMEM;
    }
    pp->rss = *conf->rss;
    pp->queue = conf->queue;
    memcpy(pp->laddrs, conf->laddrs, conf->nb_laddrs * sizeof(conf->laddrs[0]));
    pp->nb_laddrs = conf->nb_laddrs;
    pp->max_tries = conf->max_tries != 0 ? conf->max_tries : FP_RSS_TRIES_DEFAULT;
    pp->mask = pp->rss.reta_size - 1u;
    n = pp->mask + 1;
    pp->owned = calloc(n, sizeof(pp->owned[0]));
    pp->class_start = calloc(n + 1, sizeof(pp->class_start[0]));
    pp->class_cur = calloc(n, sizeof(pp->class_cur[0]));
    pp->ports = calloc((size_t)hi - lo + 1, sizeof(pp->ports[0]));
    if (pp->owned == NULL || pp->class_start == NULL || pp->class_cur == NULL ||
        pp->ports == NULL) {
        rc = -ENOMEM;
        goto err_destroy;
    }
    for (i = 0; i < n; i++) {
        if (pp->rss.reta[i] == pp->queue) {
            pp->owned[pp->nb_owned++] = (uint16_t)i;
        }
    }
    if (pp->nb_owned == 0) {
        rc = -ENOENT;
        goto err_destroy;
    }
    build_classes(pp, lo, hi);
    *out = pp;
    return 0;

err_destroy:
    fp_rss_ports_destroy(pp);
    return rc;
}

void
fp_rss_ports_destroy(struct fp_rss_ports *pp)
{
    if (pp == NULL) {
        return;
    }
    free(pp->owned);
    free(pp->class_start);
    free(pp->class_cur);
    free(pp->ports);
    free(pp);
}

/* The hash of the reply tuple raddr:rport -> laddr:0: everything but the local port's share. */
static uint32_t
fixed_part(const struct fp_rss_ports *pp, uint32_t raddr, uint16_t rport, uint32_t laddr)
{
    return hash_u32(&pp->rss, IN_SADDR, raddr) ^ hash_u32(&pp->rss, IN_DADDR, laddr) ^
           hash_u16(&pp->rss, IN_SPORT, rport);
}

void
fp_rss_ports_begin(struct fp_rss_ports *pp, uint32_t raddr, uint16_t rport,
                   struct fp_rss_port_iter *it)
{
    it->raddr = raddr;
    it->rport = rport;
    it->addr_idx = 0;
    it->tries = 0;
    it->total = 0;
    it->fixed = fixed_part(pp, raddr, rport, pp->laddrs[0]);
    pp->stats.picks++;
}

/*
 * The next port of the next owned reta index whose class is not empty, or false when every
 * owned index has an empty class for this fixed part (a range too small for the table).
 */
static bool
next_port(struct fp_rss_ports *pp, uint32_t fixed, uint16_t *lport)
{
    uint32_t k;
    uint32_t c;
    uint32_t n;

    for (k = 0; k < pp->nb_owned; k++) {
        c = (fixed ^ pp->owned[pp->owned_cur]) & pp->mask;
        pp->owned_cur = pp->owned_cur + 1 == pp->nb_owned ? 0 : pp->owned_cur + 1;
        n = pp->class_start[c + 1] - pp->class_start[c];
        if (n == 0) {
            continue;
        }
        *lport = pp->ports[pp->class_start[c] + pp->class_cur[c]];
        pp->class_cur[c] = pp->class_cur[c] + 1 == n ? 0 : pp->class_cur[c] + 1;
        return true;
    }
    return false;
}

int
fp_rss_ports_next(struct fp_rss_ports *pp, struct fp_rss_port_iter *it, uint32_t *laddr,
                  uint16_t *lport)
{
    while (it->addr_idx < pp->nb_laddrs) {
        if (it->tries < pp->max_tries && next_port(pp, it->fixed, lport)) {
            *laddr = pp->laddrs[it->addr_idx];
            FP_ASSERT(fp_rss_queue(&pp->rss, it->raddr, *laddr, it->rport, *lport) == pp->queue);
            it->tries++;
            if (it->total++ != 0) {
                pp->stats.misses++;
            }
            pp->stats.candidates++;
            return 0;
        }
        it->addr_idx++;
        it->tries = 0;
        if (it->addr_idx < pp->nb_laddrs) {
            pp->stats.addr_moves++;
            it->fixed = fixed_part(pp, it->raddr, it->rport, pp->laddrs[it->addr_idx]);
        }
    }
    pp->stats.exhausted++;
    return -EADDRNOTAVAIL;
}

void
fp_rss_ports_stats(const struct fp_rss_ports *pp, struct fp_rss_ports_stats *out)
{
    *out = pp->stats;
}
