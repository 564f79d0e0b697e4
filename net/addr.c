/* SPDX-License-Identifier: BSD-3-Clause */
/* Address parsing and formatting; startup code, called by the config loader and logs. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
parse_port(const char *s, unsigned *port)
{
    char         *end;
    unsigned long v;

    if (*s < '0' || *s > '9') {
        return -EINVAL;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (*end != '\0') {
        return -EINVAL;
    }
    if (errno == ERANGE || v == 0 || v > 65535) {
        return -ERANGE;
    }
    *port = (unsigned)v;
    return 0;
}

int
fp_addr_parse(struct fp_addr *a, const char *text)
{
    char        host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    const char *h;
    size_t      hlen;
    unsigned    port;
    int         rc;

    memset(a, 0, sizeof(*a));
    colon = strrchr(text, ':');
    if (colon == NULL) {
        return -EINVAL;
    }
    h = text;
    hlen = (size_t)(colon - text);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    rc = parse_port(colon + 1, &port);
    if (rc < 0) {
        return rc;
    }
    if (strcmp(host, "*") == 0) {
        strcpy(host, "0.0.0.0");
    }
    if (inet_pton(AF_INET, host, &a->u.sin.sin_addr) == 1) {
        a->u.sin.sin_family = AF_INET;
        a->u.sin.sin_port = htons((uint16_t)port);
        a->len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a->u.sin6.sin6_addr) == 1) {
        a->u.sin6.sin6_family = AF_INET6;
        a->u.sin6.sin6_port = htons((uint16_t)port);
        a->len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return -EINVAL;
}

char *
fp_addr_format(const struct fp_addr *a, char *out, size_t size)
{
    char ip[INET6_ADDRSTRLEN];

    if (a->u.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->u.sin6.sin6_addr, ip, sizeof(ip));
        snprintf(out, size, "[%s]:%u", ip, fp_addr_port(a));
    } else if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.sin.sin_addr, ip, sizeof(ip));
        snprintf(out, size, "%s:%u", ip, fp_addr_port(a));
    } else {
        snprintf(out, size, "-");
    }
    return out;
}

unsigned
fp_addr_port(const struct fp_addr *a)
{
    if (a->u.sa.sa_family == AF_INET6) {
        return ntohs(a->u.sin6.sin6_port);
    }
    return ntohs(a->u.sin.sin_port);
}
