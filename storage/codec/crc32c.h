/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * CRC32C back ends behind codec_crc32c(), exported so tests can hold every
 * path against the others. All take and return a finished CRC (start with 0)
 * exactly like codec_crc32c().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Slicing-by-8 tables; works everywhere. */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);

#if defined(__x86_64__)
#define CRC32C_HAVE_X86 1
/* Callers check codec_cpu_features() for CODEC_CPU_SSE42 (and PCLMUL) first. */
uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_sse42_pclmul(uint32_t crc, const void *data, size_t len);
#endif
