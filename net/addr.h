/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Socket addresses as plain values, shared by the config, the proxy and every I/O backend.
 * Parsing happens at startup only; the data path copies these by value.
 */
#ifndef FP_NET_ADDR_H
#define FP_NET_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

struct fp_addr {
    union {
        struct sockaddr     sa;
        struct sockaddr_in  sin;
        struct sockaddr_in6 sin6;
    } u;
    socklen_t len;
};

/* Longest text fp_addr_format() writes, with the NUL: "[v6]:port". */
#define FP_ADDR_STRLEN (INET6_ADDRSTRLEN + 8)

/*
 * Parses "IPv4:port", "[IPv6]:port" or "*:port" (any IPv4 address) into a.
 * Returns 0, -EINVAL for a malformed address, or -ERANGE for a port outside 1..65535.
 * Names are not resolved: a proxy must not block on DNS at startup or reload.
 */
int fp_addr_parse(struct fp_addr *a, const char *text);

/* Writes a as "ip:port" into out (at least FP_ADDR_STRLEN bytes) and returns out. */
char *fp_addr_format(const struct fp_addr *a, char *out, size_t size);

/* Returns the port of a in host byte order. */
unsigned fp_addr_port(const struct fp_addr *a);

#endif /* FP_NET_ADDR_H */
