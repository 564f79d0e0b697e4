/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging to stderr (journald takes it from there under systemd). Not for the data path. */
#ifndef FP_SRC_LOG_H
#define FP_SRC_LOG_H

enum fp_log_level {
    FP_LOG_ERR = 0,
    FP_LOG_WARNING,
    FP_LOG_INFO,
    FP_LOG_DEBUG,
};

/* Writes one line "fastproxy[pid]: <level>: message" with a "<N>" prefix systemd understands
 * when stderr is the journal. */
void fp_log(enum fp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* FP_SRC_LOG_H */
