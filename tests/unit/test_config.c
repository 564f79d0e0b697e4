/* SPDX-License-Identifier: BSD-3-Clause */
/* The config loader: every error class with its exact position, and the values it stores. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "fp_build_config.h"

#include "src/config.h"
#include "tests/unit/cu_main.h"

static char err[1024];

static int
load(struct fp_conf *c, const char *text)
{
    return fp_conf_load_string(c, "t.yaml", text, strlen(text), err, sizeof(err));
}

#define GOOD_TAIL                                                                           \
    "frontends:\n"                                                                          \
    "  - name: web\n"                                                                       \
    "    bind: [\"127.0.0.1:8080\"]\n"                                                      \
    "    default_backend: app\n"                                                            \
    "backends:\n"                                                                           \
    "  - name: app\n"                                                                       \
    "    servers:\n"                                                                        \
    "      - { name: s1, address: \"127.0.0.1:9001\" }\n"

static void
expect_error(const char *text, const char *msg)
{
    struct fp_conf c;

    CU_ASSERT_EQUAL(load(&c, text), -1);
    CU_ASSERT_STRING_EQUAL(err, msg);
    if (strcmp(err, msg) != 0) {
        fprintf(stderr, "\n  got:      %s\n  expected: %s\n", err, msg);
    }
}

static void
test_full_config(void)
{
    struct fp_conf c;
    const char    *text = "global:\n"
                          "  workers: 2\n"
                          "  cpus: [0]\n"
                          "  io: kernel\n"
                          "  maxconn: 100000\n"
                          "  bufsize: 32k\n"
                          "defaults:\n"
                          "  timeouts: { connect: 5s, client: 30s, server: 1m, http_request: 10s,"
                          " keep_alive: 60s, queue: 250ms }\n"
                          "frontends:\n"
                          "  - name: web\n"
                          "    bind: [\"127.0.0.1:8080\", \"[::1]:8081\"]\n"
                          "    mode: tcp\n"
                          "    default_backend: app\n"
                          "backends:\n"
                          "  - name: other\n"
                          "    servers: [{ name: a, address: \"127.0.0.1:1\" }]\n"
                          "  - name: app\n"
                          "    balance: roundrobin\n"
                          "    servers:\n"
                          "      - { name: s1, address: \"127.0.0.1:9001\", weight: 3 }\n"
                          "      - { name: s2, address: \"127.0.0.2:9002\", maxconn: 32 }\n"
                          "stats:\n"
                          "  bind: \"127.0.0.1:9100\"\n";

    CU_ASSERT_EQUAL_FATAL(load(&c, text), 0);
    CU_ASSERT_EQUAL(c.global.workers, 2);
    CU_ASSERT_EQUAL(c.global.nb_cpus, 1);
    CU_ASSERT_EQUAL(c.global.cpus[0], 0);
    CU_ASSERT_EQUAL(c.global.maxconn, 100000);
    CU_ASSERT_EQUAL(c.global.bufsize, 32768);
    CU_ASSERT_EQUAL(c.timeouts.connect_ms, 5000);
    CU_ASSERT_EQUAL(c.timeouts.server_ms, 60000);
    CU_ASSERT_EQUAL(c.timeouts.queue_ms, 250);
    CU_ASSERT_EQUAL(c.nb_frontends, 1);
    CU_ASSERT_EQUAL(c.frontends[0].nb_binds, 2);
    CU_ASSERT_EQUAL(fp_addr_port(&c.frontends[0].binds[1]), 8081);
    CU_ASSERT_EQUAL(c.frontends[0].mode, FP_MODE_TCP);
    CU_ASSERT_EQUAL(c.frontends[0].default_backend, 1);
    CU_ASSERT_EQUAL(c.backends[1].nb_servers, 2);
    CU_ASSERT_EQUAL(c.backends[1].servers[0].weight, 3);
    CU_ASSERT_EQUAL(c.backends[1].servers[1].weight, 1);
    CU_ASSERT_EQUAL(c.backends[1].servers[1].maxconn, 32);
    CU_ASSERT_TRUE(c.has_stats);
    fp_conf_free(&c);
}

static void
test_defaults(void)
{
    struct fp_conf c;

    CU_ASSERT_EQUAL_FATAL(load(&c, GOOD_TAIL), 0);
    CU_ASSERT_EQUAL(c.global.workers, 0);
    CU_ASSERT_EQUAL(c.global.io, FP_IO_KERNEL);
    CU_ASSERT_EQUAL(c.frontends[0].mode, FP_MODE_HTTP);
    CU_ASSERT_EQUAL(c.timeouts.keep_alive_ms, 60000);
    CU_ASSERT_EQUAL(c.global.grace_ms, 10000);
    CU_ASSERT_FALSE(c.has_stats);
    fp_conf_free(&c);
}

static void
test_unknown_key(void)
{
    expect_error("global:\n  wrkers: 2\n" GOOD_TAIL, "t.yaml:2:3: unknown key 'wrkers' in global");
    expect_error(GOOD_TAIL "extra: 1\n", "t.yaml:9:1: unknown key 'extra' in the configuration");
}

static void
test_wrong_type(void)
{
    expect_error("global:\n  maxconn: [1]\n" GOOD_TAIL,
                 "t.yaml:2:12: wrong type: expected an integer, found a list");
    expect_error("global:\n  maxconn: lots\n" GOOD_TAIL,
                 "t.yaml:2:12: wrong type: expected an integer, found 'lots'");
    expect_error("global: 3\n" GOOD_TAIL,
                 "t.yaml:1:9: wrong type: global must be a mapping, found a scalar");
}

static void
test_bad_duration(void)
{
    expect_error("defaults:\n  timeouts: { connect: 5x }\n" GOOD_TAIL,
                 "t.yaml:2:24: bad duration '5x' (expected a number with ms, s, m, h or d)");
    expect_error("defaults:\n  timeouts: { queue: 0s }\n" GOOD_TAIL,
                 "t.yaml:2:22: duration must be greater than 0");
}

static void
test_io_collect(void)
{
    static const char *const ok[] = {"0", "1us", "50us", "1000us", "1ms"};
    static const uint32_t    us[] = {0, 1, 50, 1000, 1000};
    struct fp_conf           c;
    char                     text[512];
    size_t                   i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(text, sizeof(text), "global:\n  io_collect: %s\n" GOOD_TAIL, ok[i]);
        CU_ASSERT_EQUAL_FATAL(load(&c, text), 0);
        CU_ASSERT_EQUAL(c.global.io_collect_us, us[i]);
        fp_conf_free(&c);
    }
    CU_ASSERT_EQUAL_FATAL(load(&c, "global:\n  workers: 1\n" GOOD_TAIL), 0);
    CU_ASSERT_EQUAL(c.global.io_collect_us, 50);
    fp_conf_free(&c);
    expect_error("global:\n  io_collect: 50\n" GOOD_TAIL,
                 "t.yaml:2:15: bad io_collect '50' (expected 0, a number with us, or 1ms)");
    expect_error("global:\n  io_collect: 5s\n" GOOD_TAIL,
                 "t.yaml:2:15: bad io_collect '5s' (expected 0, a number with us, or 1ms)");
    expect_error("global:\n  io_collect: 1001us\n" GOOD_TAIL,
                 "t.yaml:2:15: io_collect '1001us' is too long (at most 1ms)");
    expect_error("global:\n  io_collect: 2ms\n" GOOD_TAIL,
                 "t.yaml:2:15: io_collect '2ms' is too long (at most 1ms)");
    expect_error("global:\n  io_collect: -1us\n" GOOD_TAIL,
                 "t.yaml:2:15: bad io_collect '-1us' (expected 0, a number with us, or 1ms)");
}

/* maxconn auto (servers, mode http) and maxpipes auto (global, the default). */
static void
test_auto_values(void)
{
    struct fp_conf c;

    CU_ASSERT_EQUAL_FATAL(load(&c, "global:\n  maxpipes: 0\n"
                                   "frontends:\n  - { name: w, bind: \"127.0.0.1:80\", "
                                   "default_backend: a }\n"
                                   "backends:\n  - { name: a, servers: [{ name: s, address: "
                                   "\"1.2.3.4:1\", maxconn: auto }] }\n"),
                          0);
    CU_ASSERT_EQUAL(c.backends[0].servers[0].maxconn, FP_SRV_MAXCONN_AUTO);
    CU_ASSERT_EQUAL(c.global.maxpipes, 0);
    fp_conf_free(&c);
    CU_ASSERT_EQUAL_FATAL(load(&c, GOOD_TAIL), 0);
    CU_ASSERT_EQUAL(c.global.maxpipes, FP_MAXPIPES_AUTO);
    CU_ASSERT_EQUAL(c.backends[0].servers[0].maxconn, 0);
    fp_conf_free(&c);
    expect_error("frontends:\n"
                 "  - { name: w, bind: \"127.0.0.1:80\", mode: tcp, default_backend: a }\n"
                 "backends:\n  - name: a\n    servers:\n"
                 "      - { name: s, address: \"1.2.3.4:1\", maxconn: auto }\n",
                 "t.yaml:6:17: server 's': maxconn auto needs mode http (backend 'a' serves mode "
                 "tcp frontend 'w'); give a number");
    expect_error("global:\n  maxpipes: some\n" GOOD_TAIL,
                 "t.yaml:2:13: wrong type: expected an integer, found 'some'");
}

static void
test_bad_size(void)
{
    expect_error("global:\n  bufsize: 12q\n" GOOD_TAIL,
                 "t.yaml:2:12: bad size '12q' (expected a number with k, m or g)");
    expect_error("global:\n  bufsize: 100\n" GOOD_TAIL,
                 "t.yaml:2:12: bufsize 100 is out of range (1k to 16m)");
}

static void
test_bad_address(void)
{
    expect_error("frontends:\n  - { name: w, bind: \"localhost:80\", default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"1.2.3.4:1\" }] }\n",
                 "t.yaml:2:22: bad address 'localhost:80' (expected IPv4:port or [IPv6]:port)");
    expect_error("frontends:\n  - { name: w, bind: \"1.2.3.4:70000\", default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"1.2.3.4:1\" }] }\n",
                 "t.yaml:2:22: port out of range in '1.2.3.4:70000' (1 to 65535)");
    expect_error("frontends:\n  - { name: w, bind: \"1.2.3.4:0\", default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"1.2.3.4:1\" }] }\n",
                 "t.yaml:2:22: port out of range in '1.2.3.4:0' (1 to 65535)");
}

static void
test_duplicate_names(void)
{
    expect_error(GOOD_TAIL "  - name: app\n    servers: [{ name: s, address: \"1.2.3.4:1\" }]\n",
                 "t.yaml:9:11: duplicate backend name 'app' (first at line 6)");
    expect_error("frontends:\n  - { name: w, bind: \"1.2.3.4:1\", default_backend: a }\n"
                 "  - { name: w, bind: \"1.2.3.4:2\", default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"1.2.3.4:1\" }] }\n",
                 "t.yaml:3:13: duplicate frontend name 'w' (first at line 2)");
    expect_error("frontends:\n  - { name: w, bind: \"1.2.3.4:1\", default_backend: a }\n"
                 "backends:\n  - name: a\n    servers:\n"
                 "      - { name: s, address: \"1.2.3.4:1\" }\n"
                 "      - { name: s, address: \"1.2.3.4:2\" }\n",
                 "t.yaml:7:17: duplicate server name 's' in backend 'a' (first at line 6)");
    /* The backend's name may come after its servers. */
    expect_error("frontends:\n  - { name: w, bind: \"1.2.3.4:1\", default_backend: a }\n"
                 "backends:\n  - servers:\n"
                 "      - { name: s, address: \"1.2.3.4:1\" }\n"
                 "      - { name: s, address: \"1.2.3.4:2\" }\n"
                 "    name: a\n",
                 "t.yaml:6:17: duplicate server name 's' in backend 'a' (first at line 5)");
    expect_error("global:\n  io: kernel\n  io: dpdk\n" GOOD_TAIL,
                 "t.yaml:3:3: duplicate key 'io' in global");
}

static void
test_duplicate_binds(void)
{
    /* Reported where the second address is written, naming the first. */
    expect_error("frontends:\n  - name: w\n    bind: \"1.2.3.4:1\"\n    default_backend: a\n"
                 "  - name: v\n    default_backend: a\n"
                 "    bind: [\"1.2.3.4:2\", \"1.2.3.4:1\"]\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"1.2.3.4:1\" }] }\n",
                 "t.yaml:7:25: 1.2.3.4:1 is bound by frontend 'w' too (line 3)");
    expect_error("frontends:\n  - name: w\n    default_backend: a\n    bind:\n"
                 "      - \"[::1]:80\"\n      - \"[::1]:80\"\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"1.2.3.4:1\" }] }\n",
                 "t.yaml:6:9: [::1]:80 is listed twice in bind (first at line 5, column 9)");
}

static void
test_missing_backend(void)
{
    expect_error("frontends:\n  - { name: w, bind: \"1.2.3.4:1\", default_backend: nope }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"1.2.3.4:1\" }] }\n",
                 "t.yaml:2:52: frontend 'w' names a missing backend 'nope'");
}

static void
test_missing_key_and_syntax(void)
{
    expect_error("frontends:\n  - { name: w, default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"1.2.3.4:1\" }] }\n",
                 "t.yaml:2:5: missing key 'bind' in a frontend");
    expect_error("global: {\n", "t.yaml:2:1: did not find expected node content while parsing "
                                "a flow node");
    expect_error("", "t.yaml:1:1: the file is empty");
}

static void
test_bad_enum_values(void)
{
    expect_error("global:\n  io: netmap\n" GOOD_TAIL,
                 "t.yaml:2:7: bad io 'netmap' (expected kernel, dpdk or uring)");
    expect_error("global:\n  workers: 0\n" GOOD_TAIL, "t.yaml:2:12: 0 is out of range (1 to 64)");
    expect_error("global:\n  overload: { queue_discipline: lifo }\n" GOOD_TAIL,
                 "t.yaml:2:33: bad queue_discipline 'lifo' (expected adaptive_lifo or fifo)");
    expect_error("backends:\n  - { name: a, balance: random, servers: [] }\n",
                 "t.yaml:2:25: bad balance 'random' (expected roundrobin)");
    expect_error("global:\n  cpus: [4096]\n" GOOD_TAIL,
                 "t.yaml:2:10: 4096 is out of range (0 to 1023)");
}

static void
test_parse_duration(void)
{
    uint32_t ms = 0;

    CU_ASSERT_EQUAL(fp_conf_parse_duration("250ms", &ms), 0);
    CU_ASSERT_EQUAL(ms, 250);
    CU_ASSERT_EQUAL(fp_conf_parse_duration("2h", &ms), 0);
    CU_ASSERT_EQUAL(ms, 7200000);
    CU_ASSERT_EQUAL(fp_conf_parse_duration("42", &ms), 0);
    CU_ASSERT_EQUAL(ms, 42);
    CU_ASSERT_EQUAL(fp_conf_parse_duration("1d", &ms), 0);
    CU_ASSERT_EQUAL(ms, 86400000);
    CU_ASSERT_EQUAL(fp_conf_parse_duration("50d", &ms), -ERANGE);
    CU_ASSERT_EQUAL(fp_conf_parse_duration("-1s", &ms), -EINVAL);
    CU_ASSERT_EQUAL(fp_conf_parse_duration("1 s", &ms), -EINVAL);
    CU_ASSERT_EQUAL(fp_conf_parse_duration("", &ms), -EINVAL);
}

static void
test_parse_size(void)
{
    uint64_t b = 0;

    CU_ASSERT_EQUAL(fp_conf_parse_size("16k", &b), 0);
    CU_ASSERT_EQUAL(b, 16384);
    CU_ASSERT_EQUAL(fp_conf_parse_size("3M", &b), 0);
    CU_ASSERT_EQUAL(b, 3u << 20);
    CU_ASSERT_EQUAL(fp_conf_parse_size("7", &b), 0);
    CU_ASSERT_EQUAL(b, 7);
    CU_ASSERT_EQUAL(fp_conf_parse_size("1kb", &b), -EINVAL);
    CU_ASSERT_EQUAL(fp_conf_parse_size("99999999999999999999", &b), -ERANGE);
}

static void
test_parse_addr(void)
{
    struct fp_addr a;
    char           out[FP_ADDR_STRLEN];

    CU_ASSERT_EQUAL(fp_addr_parse(&a, "127.0.0.1:80"), 0);
    CU_ASSERT_STRING_EQUAL(fp_addr_format(&a, out, sizeof(out)), "127.0.0.1:80");
    CU_ASSERT_EQUAL(fp_addr_parse(&a, "[::1]:443"), 0);
    CU_ASSERT_STRING_EQUAL(fp_addr_format(&a, out, sizeof(out)), "[::1]:443");
    CU_ASSERT_EQUAL(fp_addr_parse(&a, "*:8080"), 0);
    CU_ASSERT_STRING_EQUAL(fp_addr_format(&a, out, sizeof(out)), "0.0.0.0:8080");
    CU_ASSERT_EQUAL(fp_addr_parse(&a, "127.0.0.1"), -EINVAL);
    CU_ASSERT_EQUAL(fp_addr_parse(&a, "127.0.0.1:"), -EINVAL);
    CU_ASSERT_EQUAL(fp_addr_parse(&a, "127.0.0.1:65536"), -ERANGE);
    CU_ASSERT_EQUAL(fp_addr_parse(&a, "127.0.0.1:x1"), -EINVAL);
    CU_ASSERT_EQUAL(fp_addr_parse(&a, "example.com:80"), -EINVAL);
    CU_ASSERT_EQUAL(fp_addr_parse(&a, "::1:80"), 0); /* the last colon splits the port */
}

/* io: uring loads in a build with liburing; without, the io key says why, at its position. */
static void
test_io_uring(void)
{
    struct fp_conf c;
    int            rc = load(&c, "global:\n  io: uring\n" GOOD_TAIL);

#if FP_HAVE_URING
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(c.global.io, FP_IO_URING);
    fp_conf_free(&c);
#else
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_STRING_EQUAL(err, "t.yaml:2:7: io: uring: this fastproxy was built without "
                                "liburing (meson -During=disabled or liburing-dev missing); "
                                "use io: kernel");
#endif
}

/* ---- the dpdk: section ---- */

#define DPDK_TAIL                                                                           \
    "frontends:\n"                                                                          \
    "  - { name: web, bind: \"10.77.0.2:8080\", default_backend: app }\n"                   \
    "backends:\n"                                                                           \
    "  - name: app\n"                                                                       \
    "    servers:\n"                                                                        \
    "      - { name: s1, address: \"10.77.0.1:8080\" }\n"

/*
 * Loads a valid io: dpdk configuration. Returns 0 in a build with DPDK. In a build without,
 * checks that the loader says so at the io key, and returns -1: the caller skips the values.
 */
static int
load_dpdk(struct fp_conf *c, const char *text)
{
    int rc = load(c, text);

#if FP_HAVE_DPDK
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "\n  unexpected: %s\n", err);
    }
#else
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ": io: dpdk: this fastproxy was built without DPDK"));
#endif
    return rc;
}

static void
test_dpdk_full(void)
{
    struct fp_conf c;
    const char    *text = "global: { io: dpdk, workers: 2 }\n"
                          "dpdk:\n"
                          "  eal: [\"--no-huge\", \"-m\", 512, \"--vdev=net_tap0,iface=fp0\"]\n"
                          "  port: 1\n"
                          "  address: 10.77.0.2/24\n"
                          "  gateway: 10.77.0.1\n"
                          "  source_addresses: [10.77.0.3, 10.77.0.4]\n"
                          "  mbufs: 4095\n"
                          "  poll: busy\n"
                          "  rss: software\n" DPDK_TAIL;

    if (load_dpdk(&c, text) != 0) {
        return;
    }
    CU_ASSERT_EQUAL(c.global.io, FP_IO_DPDK);
    CU_ASSERT_TRUE(c.dpdk.present);
    CU_ASSERT_EQUAL_FATAL(c.dpdk.nb_eal, 4);
    CU_ASSERT_STRING_EQUAL(c.dpdk.eal[0], "--no-huge");
    CU_ASSERT_STRING_EQUAL(c.dpdk.eal[2], "512");
    CU_ASSERT_STRING_EQUAL(c.dpdk.eal[3], "--vdev=net_tap0,iface=fp0");
    CU_ASSERT_EQUAL(c.dpdk.port, 1);
    CU_ASSERT_EQUAL(c.dpdk.addr.s_addr, htonl(0x0a4d0002));
    CU_ASSERT_EQUAL(c.dpdk.prefix_len, 24);
    CU_ASSERT_EQUAL(c.dpdk.gateway.s_addr, htonl(0x0a4d0001));
    CU_ASSERT_EQUAL(c.dpdk.nb_src_addrs, 2);
    CU_ASSERT_EQUAL(c.dpdk.src_addrs[1].s_addr, htonl(0x0a4d0004));
    CU_ASSERT_EQUAL(c.dpdk.mbufs, 4095);
    CU_ASSERT_EQUAL(c.dpdk.poll, FP_DPDK_POLL_BUSY);
    CU_ASSERT_EQUAL(c.dpdk.rss, FP_DPDK_RSS_SOFTWARE);
    fp_conf_free(&c);
}

static void
test_dpdk_defaults(void)
{
    struct fp_conf c;

    if (load_dpdk(&c, "global: { io: dpdk }\ndpdk: { address: 10.77.0.2/24 }\n"
                      "frontends:\n  - { name: w, bind: \"*:80\", default_backend: a }\n"
                      "backends:\n  - { name: a, servers: [{ name: s, address: \"10.77.0.9:1\" "
                      "}] }\n") != 0) {
        return;
    }
    CU_ASSERT_EQUAL(c.dpdk.nb_eal, 0);
    CU_ASSERT_EQUAL(c.dpdk.port, 0);
    CU_ASSERT_EQUAL(c.dpdk.gateway.s_addr, htonl(INADDR_ANY));
    CU_ASSERT_EQUAL(c.dpdk.nb_src_addrs, 0);
    CU_ASSERT_EQUAL(c.dpdk.mbufs, 8192);
    CU_ASSERT_EQUAL(c.dpdk.poll, FP_DPDK_POLL_ADAPTIVE);
    CU_ASSERT_EQUAL(c.dpdk.rss, FP_DPDK_RSS_AUTO);
    fp_conf_free(&c);
}

/* A dpdk: section under io: kernel is checked, then ignored (switching io is a one-line edit). */
static void
test_dpdk_section_under_kernel(void)
{
    struct fp_conf c;

    CU_ASSERT_EQUAL_FATAL(load(&c, "dpdk: { address: 10.77.0.2/24, poll: busy }\n" GOOD_TAIL), 0);
    CU_ASSERT_EQUAL(c.global.io, FP_IO_KERNEL);
    CU_ASSERT_TRUE(c.dpdk.present);
    CU_ASSERT_EQUAL(c.dpdk.poll, FP_DPDK_POLL_BUSY);
    fp_conf_free(&c);
    expect_error("dpdk: { address: 10.77.0.2/24, mbufs: 10 }\n" GOOD_TAIL,
                 "t.yaml:1:39: 10 is out of range (1024 to 262144)");
}

static void
test_dpdk_section_errors(void)
{
    expect_error("dpdk: { adress: 10.77.0.2/24 }\n" GOOD_TAIL,
                 "t.yaml:1:9: unknown key 'adress' in dpdk");
    expect_error("dpdk: { port: 1 }\n" GOOD_TAIL, "t.yaml:1:7: missing key 'address' in dpdk");
    expect_error("dpdk: [1]\n" GOOD_TAIL,
                 "t.yaml:1:7: wrong type: dpdk must be a mapping, found a list");
    expect_error("dpdk: { address: 10.77.0.2 }\n" GOOD_TAIL,
                 "t.yaml:1:18: bad address '10.77.0.2' (expected A.B.C.D/LEN, e.g. 10.77.0.2/24)");
    expect_error("dpdk: { address: 10.77.0.300/24 }\n" GOOD_TAIL,
                 "t.yaml:1:18: bad address '10.77.0.300/24' (expected A.B.C.D/LEN, e.g. "
                 "10.77.0.2/24)");
    expect_error("dpdk: { address: 10.77.0.2/24x }\n" GOOD_TAIL,
                 "t.yaml:1:18: bad address '10.77.0.2/24x' (expected A.B.C.D/LEN, e.g. "
                 "10.77.0.2/24)");
    expect_error("dpdk: { address: 10.77.0.2/33 }\n" GOOD_TAIL,
                 "t.yaml:1:18: prefix length /33 is out of range (1 to 32)");
    expect_error("dpdk: { address: 10.77.0.0/24 }\n" GOOD_TAIL,
                 "t.yaml:1:18: '10.77.0.0/24' is not a usable host address");
    expect_error("dpdk: { address: 10.77.0.255/24 }\n" GOOD_TAIL,
                 "t.yaml:1:18: '10.77.0.255/24' is not a usable host address");
    expect_error("dpdk: { address: 127.0.0.2/8 }\n" GOOD_TAIL,
                 "t.yaml:1:18: '127.0.0.2/8' is not a usable host address");
    expect_error("dpdk: { address: 10.77.0.2/24, gateway: 10.78.0.1 }\n" GOOD_TAIL,
                 "t.yaml:1:41: gateway is not on 10.77.0.0/24, the subnet of address");
    expect_error("dpdk: { address: 10.77.0.2/24, gateway: 10.77.0.2 }\n" GOOD_TAIL,
                 "t.yaml:1:41: gateway is our own address");
    expect_error("dpdk: { address: 10.77.0.2/24, gateway: gw.example }\n" GOOD_TAIL,
                 "t.yaml:1:41: bad gateway 'gw.example' (expected an IPv4 address A.B.C.D)");
    expect_error("dpdk: { address: 10.77.0.2/24, source_addresses: [10.77.0.3, 10.77.0.3] }\n"
                 GOOD_TAIL, "t.yaml:1:62: source address is listed twice");
    expect_error("dpdk: { address: 10.77.0.2/24, source_addresses: [10.1.0.3] }\n" GOOD_TAIL,
                 "t.yaml:1:51: source address is not on 10.77.0.0/24, the subnet of address");
    expect_error("dpdk: { address: 10.77.0.2/24, mbufs: 1000000 }\n" GOOD_TAIL,
                 "t.yaml:1:39: 1000000 is out of range (1024 to 262144)");
    expect_error("dpdk: { address: 10.77.0.2/24, port: 1024 }\n" GOOD_TAIL,
                 "t.yaml:1:38: 1024 is out of range (0 to 1023)");
    expect_error("dpdk: { address: 10.77.0.2/24, poll: spin }\n" GOOD_TAIL,
                 "t.yaml:1:38: bad poll 'spin' (expected busy or adaptive)");
    expect_error("dpdk: { address: 10.77.0.2/24, rss: toeplitz }\n" GOOD_TAIL,
                 "t.yaml:1:37: bad rss 'toeplitz' (expected auto, hardware or software)");
    expect_error("dpdk: { address: 10.77.0.2/24, eal: \"--no-huge -m 512\" }\n" GOOD_TAIL,
                 "t.yaml:1:37: wrong type: eal must be a list, found a scalar");
    expect_error("dpdk: { address: 10.77.0.2/24, eal: [\"--no-huge\", \"-m 512\"] }\n" GOOD_TAIL,
                 "t.yaml:1:51: eal argument '-m 512' has a space: give each argument as its own "
                 "list item");
    expect_error("dpdk: { address: 10.77.0.2/24, eal: [[\"-m\"]] }\n" GOOD_TAIL,
                 "t.yaml:1:38: wrong type: expected a string, found a list");
}

/* What io: dpdk asks of the rest of the file; all found before the build is looked at. */
static void
test_dpdk_cross_checks(void)
{
    expect_error("global:\n  io: dpdk\n" GOOD_TAIL,
                 "t.yaml:2:7: io: dpdk needs a dpdk: section (docs/dpdk.md)");
    expect_error("global: { io: dpdk }\ndpdk: { address: 10.77.0.2/24 }\n"
                 "frontends:\n  - { name: w, bind: [\"10.77.0.2:1\", \"[::]:80\"], "
                 "default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"10.77.0.1:1\" }] }\n",
                 "t.yaml:4:38: io: dpdk binds IPv4 only (the stack is IPv4)");
    expect_error("global: { io: dpdk }\ndpdk: { address: 10.77.0.2/24 }\n" GOOD_TAIL,
                 "t.yaml:5:12: io: dpdk can bind only 10.77.0.2 (dpdk.address) or 0.0.0.0");
    expect_error("global: { io: dpdk }\ndpdk: { address: 10.77.0.2/24 }\n"
                 "frontends:\n  - { name: w, bind: \"*:80\", default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"[fd00::1]:1\" }] }\n",
                 "t.yaml:6:46: io: dpdk reaches IPv4 servers only");
    expect_error("global: { io: dpdk }\ndpdk: { address: 10.77.0.2/24 }\n"
                 "frontends:\n  - { name: w, bind: \"*:80\", default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"10.77.0.2:81\" }] }\n",
                 "t.yaml:6:46: server address is the stack's own address");
    expect_error("global: { io: dpdk }\ndpdk: { address: 10.77.0.2/24 }\n"
                 "frontends:\n  - { name: w, bind: \"*:80\", default_backend: a }\n"
                 "backends:\n  - { name: a, servers: [{ name: s, address: \"192.0.2.1:80\" }] }\n",
                 "t.yaml:6:46: server is not on the subnet of dpdk.address and dpdk has no "
                 "gateway");
}

/* With a gateway, servers on other subnets are reachable. */
static void
test_dpdk_gateway_routes(void)
{
    struct fp_conf c;

    if (load_dpdk(&c, "global: { io: dpdk }\ndpdk: { address: 10.77.0.2/24, gateway: 10.77.0.1 }\n"
                      "frontends:\n  - { name: w, bind: \"0.0.0.0:80\", default_backend: a }\n"
                      "backends:\n  - { name: a, servers: [{ name: s, address: \"192.0.2.1:80\" "
                      "}] }\n") != 0) {
        return;
    }
    CU_ASSERT_EQUAL(c.backends[0].nb_servers, 1);
    fp_conf_free(&c);
}

int
main(void)
{
    static const struct fp_cu_test tests[] = {
        {"full config", test_full_config},
        {"defaults", test_defaults},
        {"unknown key", test_unknown_key},
        {"wrong type", test_wrong_type},
        {"bad duration", test_bad_duration},
        {"io_collect", test_io_collect},
        {"bad size", test_bad_size},
        {"bad address", test_bad_address},
        {"duplicate names", test_duplicate_names},
        {"duplicate binds (same or other frontend)", test_duplicate_binds},
        {"missing backend", test_missing_backend},
        {"missing key and syntax", test_missing_key_and_syntax},
        {"bad enum values", test_bad_enum_values},
        {"io uring", test_io_uring},
        {"parse duration", test_parse_duration},
        {"parse size", test_parse_size},
        {"auto values", test_auto_values},
        {"parse addr", test_parse_addr},
        {"dpdk full", test_dpdk_full},
        {"dpdk defaults", test_dpdk_defaults},
        {"dpdk section under io kernel", test_dpdk_section_under_kernel},
        {"dpdk section errors", test_dpdk_section_errors},
        {"dpdk cross checks", test_dpdk_cross_checks},
        {"dpdk gateway routes", test_dpdk_gateway_routes},
        {NULL, NULL},
    };

    return fp_cu_run("config", tests);
}
