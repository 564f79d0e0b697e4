/* SPDX-License-Identifier: BSD-3-Clause */
/* systemd readiness notification (Type=notify). A no-op when NOTIFY_SOCKET is not set. */
#ifndef FP_SRC_NOTIFY_H
#define FP_SRC_NOTIFY_H

/* Sends state (e.g. "READY=1") to the service manager. Returns 0, or -errno. */
int fp_notify(const char *state);

#endif /* FP_SRC_NOTIFY_H */
