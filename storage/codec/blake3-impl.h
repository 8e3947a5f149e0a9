/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Shared between the portable BLAKE3 core and the SIMD chunk hashers. */
#pragma once

#include <stdbool.h>
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
 * Hash 4 (SSE4.1) or 8 (AVX2) independent inputs of `blocks` full blocks
 * each; input i starts at in + i * stride. Input i uses counter + i when
 * counter_step (chunks) or counter for all (parents). Every block gets
 * flags, the first also flags_start, the last also flags_end. Writes each
 * input's final chaining value to out[i].
 */
void blake3_hash4_sse41(const uint8_t *in, size_t stride, size_t blocks, const uint32_t key[8],
                        uint64_t counter, bool counter_step, uint8_t flags, uint8_t flags_start,
                        uint8_t flags_end, uint32_t out[4][8]);
void blake3_hash8_avx2(const uint8_t *in, size_t stride, size_t blocks, const uint32_t key[8],
                       uint64_t counter, bool counter_step, uint8_t flags, uint8_t flags_start,
                       uint8_t flags_end, uint32_t out[8][8]);
/* One compression; out gets all 16 words (0-7 are the next chaining value). */
void blake3_compress_sse41(uint32_t out[16], const uint32_t cv[8], const uint8_t block[64],
                           uint32_t block_len, uint64_t counter, uint32_t flags);
#endif
