/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef FP_PROXY_H1_H
#define FP_PROXY_H1_H
#endif /* FP_PROXY_H1_H */
