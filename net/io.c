/* SPDX-License-Identifier: BSD-3-Clause */
/* Backend selection: the one place that knows every backend. */
#include "net/io.h"

#include <stdio.h>

#include "fp_build_config.h"
#include "net/io_kernel.h"
#include "net/io_stack.h"
#if FP_HAVE_DPDK
#include "net/io_dpdk.h"
#endif

int
fp_io_check_unused(enum fp_io_kind kind, const struct fp_addr *a, char *err, size_t errlen)
{
    return kind == FP_IO_KERNEL ? fp_io_kernel_check_unused(a, err, errlen) : 0;
}

int
fp_io_listen_group(enum fp_io_kind kind, const struct fp_addr *a, unsigned n, const int *cpus,
                   int backlog, int *fds, int *steered, char *err, size_t errlen)
{
    unsigned i;

    if (kind == FP_IO_KERNEL) {
        return fp_io_kernel_listen_group(a, n, cpus, backlog, fds, steered, err, errlen);
    }
    for (i = 0; i < n; i++) {
        fds[i] = -1;
    }
    *steered = 1;
    return 0;
}

size_t
fp_io_mem_bound(enum fp_io_kind kind, const struct fp_dpdk_conf *dc, uint32_t max_conns)
{
#if FP_HAVE_DPDK
    if (kind == FP_IO_DPDK) {
        return fp_io_dpdk_mem_bound(dc, max_conns);
    }
#endif
    return 0;
}

size_t
fp_io_conn_size(enum fp_io_kind kind)
{
    if (kind == FP_IO_DPDK) {
        return fp_io_stack_conn_size();
    }
    return fp_io_kernel_conn_size();
}

struct fp_io *
fp_io_create(const struct fp_io_conf *conf, char *err, size_t errlen)
{
    switch (conf->kind) {
    case FP_IO_KERNEL:
        return fp_io_kernel_create(conf, err, errlen);
    case FP_IO_DPDK:
#if FP_HAVE_DPDK
        return fp_io_dpdk_create(conf, err, errlen);
#else
        snprintf(err, errlen, "io: dpdk is not available in this build (built without DPDK); "
                              "use io: kernel");
        return NULL;
#endif
    }
    snprintf(err, errlen, "unknown I/O backend %d", (int)conf->kind);
    return NULL;
}
