/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Shared between the portable BLAKE3 core and the SIMD chunk hashers. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "blake3.h"

enum {
    B3_CHUNK_START = 1u << 0,
    B3_CHUNK_END   = 1u << 1,
    B3_PARENT      = 1u << 2,
    B3_ROOT        = 1u << 3,
};

extern const uint32_t blake3_iv[8];

#if defined(__x86_64__)
#define BLAKE3_HAVE_X86 1
/*
 * Hash 4 (SSE4.1) or 8 (AVX2) whole consecutive chunks starting at `in`;
 * chunk i uses counter + i. Writes one chaining value per chunk to out.
 */
void blake3_hash4_sse41(const uint8_t *in, const uint32_t key[8], uint64_t counter,
                        uint8_t flags, uint32_t out[4][8]);
void blake3_hash8_avx2(const uint8_t *in, const uint32_t key[8], uint64_t counter,
                       uint8_t flags, uint32_t out[8][8]);
#endif
