/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The readers of untrusted formats (kernel messages, erofs and RAFS images,
 * blob metadata) explain every rejection in a caller-supplied buffer.
 */
#pragma once

#include <stddef.h>

/* Format the reason into why (when given) and return err (a negative errno). */
int why_fail(int err, char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
