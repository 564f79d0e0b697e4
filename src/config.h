/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The YAML configuration loader. It turns a file into a struct fp_conf (proxy/conf.h) or
 * into one message "FILE:LINE:COL: what is wrong". The schema (every key, its type and its
 * default) lives in config.c, in one set of tables; docs/configuration.md documents it.
 */
#ifndef FP_SRC_CONFIG_H
#define FP_SRC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/conf.h"

/*
 * Loads path into conf. Returns 0, or -1 with "FILE:LINE:COL: message" (or "FILE: message"
 * when no position applies) in err. Startup only; allocates, fp_conf_free() releases.
 */
int fp_conf_load(struct fp_conf *conf, const char *path, char *err, size_t errlen);

/* Same, from a string in memory; name is what error messages call the file. */
int fp_conf_load_string(struct fp_conf *conf, const char *name, const char *text, size_t len,
                        char *err, size_t errlen);

/* Releases what fp_conf_load() allocated. */
void fp_conf_free(struct fp_conf *conf);

/* Parses "10s", "250ms", "1m", "2h", "1d" or a plain number of milliseconds.
 * Returns 0, -EINVAL (syntax) or -ERANGE (over 2^32-1 ms). */
int fp_conf_parse_duration(const char *s, uint32_t *ms);

/* Parses "16k", "1m", "1g" (powers of 1024) or plain bytes. Returns 0, -EINVAL or -ERANGE. */
int fp_conf_parse_size(const char *s, uint64_t *bytes);

#endif /* FP_SRC_CONFIG_H */
