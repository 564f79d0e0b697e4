/* SPDX-License-Identifier: BSD-3-Clause */
/* TCP options. Multi-byte fields are big-endian on the wire and read byte by byte. */
#include "net/stack/tcp_opt.h"

#include <errno.h>
#include <string.h>

#include "net/stack/wire.h"

enum {
    OPT_EOL = 0,
    OPT_NOP = 1,
    OPT_MSS = 2,
    OPT_WSCALE = 3,
    OPT_SACK_PERMITTED = 4,
    OPT_SACK = 5,
    OPT_TS = 8,
};

int
fp_tcp_opt_parse(const uint8_t *p, size_t len, bool syn, struct fp_tcp_opts *o)
{
    size_t  i = 0;
    uint8_t kind;
    uint8_t olen;
    uint8_t n;

    memset(o, 0, sizeof(*o));
    while (i < len) {
        kind = p[i];
        if (kind == OPT_EOL) {
            break;
        }
        if (kind == OPT_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= len) {
            return -EINVAL;
        }
        olen = p[i + 1];
        if (olen < 2 || i + olen > len) {
            return -EINVAL;
        }
        switch (kind) {
        case OPT_MSS:
            if (olen != 4) {
                return -EINVAL;
            }
            if (syn) {
                o->has_mss = true;
                o->mss = (uint16_t)(p[i + 2] << 8 | p[i + 3]);
            }
            break;
        case OPT_WSCALE:
            if (olen != 3) {
                return -EINVAL;
            }
            if (syn) {
                o->has_wscale = true;
                o->wscale = p[i + 2] > 14 ? 14 : p[i + 2];
            }
            break;
        case OPT_SACK_PERMITTED:
            if (olen != 2) {
                return -EINVAL;
            }
            if (syn) {
                o->sack_permitted = true;
            }
            break;
        case OPT_TS:
            if (olen != 10) {
                return -EINVAL;
            }
            o->has_ts = true;
            o->tsval = fp_get32(p + i + 2);
            o->tsecr = fp_get32(p + i + 6);
            break;
        case OPT_SACK:
            if ((olen - 2) % 8 != 0 || olen == 2) {
                return -EINVAL;
            }
            for (n = 0; n < (olen - 2) / 8 && n < FP_STK_MAX_SACK; n++) {
                o->sack[n].start = fp_get32(p + i + 2 + 8 * (size_t)n);
                o->sack[n].end = fp_get32(p + i + 6 + 8 * (size_t)n);
            }
            o->nsack = n;
            break;
        default:
            break;
        }
        i += olen;
    }
    return 0;
}

size_t
fp_tcp_opt_write(uint8_t *p, const struct fp_tcp_opts *o, bool syn)
{
    size_t  i = 0;
    uint8_t n;
    uint8_t room;

    if (syn && o->has_mss) {
        p[i++] = OPT_MSS;
        p[i++] = 4;
        p[i++] = (uint8_t)(o->mss >> 8);
        p[i++] = (uint8_t)o->mss;
    }
    if (syn && o->sack_permitted) {
        if (o->has_ts) {
            p[i++] = OPT_SACK_PERMITTED; /* Linux's layout: SACK-permitted then timestamps */
            p[i++] = 2;
        } else {
            p[i++] = OPT_NOP;
            p[i++] = OPT_NOP;
            p[i++] = OPT_SACK_PERMITTED;
            p[i++] = 2;
        }
    } else if (o->has_ts) {
        p[i++] = OPT_NOP;
        p[i++] = OPT_NOP;
    }
    if (o->has_ts) {
        p[i++] = OPT_TS;
        p[i++] = 10;
        fp_put32(p + i, o->tsval);
        fp_put32(p + i + 4, o->tsecr);
        i += 8;
    }
    if (syn && o->has_wscale) {
        p[i++] = OPT_NOP;
        p[i++] = OPT_WSCALE;
        p[i++] = 3;
        p[i++] = o->wscale;
    }
    if (!syn && o->nsack > 0 && i + 4 + 8 <= FP_STK_TCP_MAXOPT) {
        room = (uint8_t)((FP_STK_TCP_MAXOPT - i - 4) / 8);
        n = o->nsack < room ? o->nsack : room;
        p[i++] = OPT_NOP;
        p[i++] = OPT_NOP;
        p[i++] = OPT_SACK;
        p[i++] = (uint8_t)(2 + 8 * n);
        for (uint8_t k = 0; k < n; k++) {
            fp_put32(p + i, o->sack[k].start);
            fp_put32(p + i + 4, o->sack[k].end);
            i += 8;
        }
    }
    return i;
}
