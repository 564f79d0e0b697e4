/* SPDX-License-Identifier: BSD-3-Clause */
#include "proxy/h1.h"
