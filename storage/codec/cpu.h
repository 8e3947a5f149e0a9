/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * CPU features the codec's SIMD paths need. Resolved once, lazily, and safe
 * to call from any thread: racing first callers compute the same value.
 */
#pragma once

enum {
    CODEC_CPU_SSE41  = 1u << 0,
    CODEC_CPU_SSE42  = 1u << 1,
    CODEC_CPU_PCLMUL = 1u << 2,
    CODEC_CPU_AVX2   = 1u << 3,
};

unsigned codec_cpu_features(void);
