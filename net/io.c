/* SPDX-License-Identifier: BSD-3-Clause */
/* Backend selection: the one place that knows every backend. */
#include "net/io.h"

#include <stdio.h>

#include "net/io_kernel.h"

size_t
fp_io_conn_size(enum fp_io_kind kind)
{
    /* The bypass backend will report its own; until it exists the kernel's stands in. */
    (void)kind;
    return fp_io_kernel_conn_size();
}

struct fp_io *
fp_io_create(const struct fp_io_conf *conf, char *err, size_t errlen)
{
    switch (conf->kind) {
    case FP_IO_KERNEL:
        return fp_io_kernel_create(conf, err, errlen);
    case FP_IO_DPDK:
        snprintf(err, errlen, "io: dpdk is not available yet in this build (see issue 7 and the "
                              "DPDK backend issue); use io: kernel");
        return NULL;
    }
    snprintf(err, errlen, "unknown I/O backend %d", (int)conf->kind);
    return NULL;
}
