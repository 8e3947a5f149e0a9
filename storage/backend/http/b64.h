/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Strict base64 (RFC 4648, padded, no whitespace) for credentials and signatures. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Encode n bytes; out needs 4*ceil(n/3)+1. Returns the length or -E2BIG. */
int b64_encode(const void *in, size_t n, char *out, size_t cap);
/* Decode; returns the number of bytes, -EINVAL for bad input, -E2BIG. */
int b64_decode(const char *in, size_t n, uint8_t *out, size_t cap);
