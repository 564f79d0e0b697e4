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

/*
 * Sends stderr (these lines and the access log) to the file at path, appending, creating it
 * (mode 0640) if needed: the file is opened and put on fd 2, so a log rotated away keeps the
 * lines written before and the new file gets every line after (SIGUSR1 calls it again).
 * Main thread only, while no other thread writes a line. Returns 0, or -errno from open(2)
 * or dup2(2) with stderr unchanged.
 */
int fp_log_open_file(const char *path);

#endif /* FP_SRC_LOG_H */
