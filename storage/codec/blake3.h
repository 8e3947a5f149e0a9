/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * BLAKE3 (hash mode): incremental hashing of any length with 32 bytes or
 * any longer extended output. Debian ships no C library for it, so this is
 * our own implementation of the published spec: a portable core plus
 * SSE4.1 (4 chunks) and AVX2 (8 chunks) paths picked at run time.
 *
 * A Blake3Hasher is plain memory (about 1.9 KiB): no allocation, no cleanup,
 * one per thread at a time.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define BLAKE3_OUT_LEN 32
#define BLAKE3_BLOCK_LEN 64
#define BLAKE3_CHUNK_LEN 1024
/* 2^54 chunks of 1 KiB is 2^64 bytes, more than size_t can ever feed. */
#define BLAKE3_MAX_DEPTH 54

enum blake3_impl {
    BLAKE3_IMPL_PORTABLE,
    BLAKE3_IMPL_SSE41,
    BLAKE3_IMPL_AVX2,
};

typedef struct Blake3Hasher {
    uint32_t key[8];
    uint32_t cv[8];             /* chaining value of the chunk being absorbed */
    uint64_t chunk_counter;     /* index of that chunk */
    uint8_t buf[BLAKE3_BLOCK_LEN];
    uint8_t buf_len;
    uint8_t blocks_compressed;  /* blocks of this chunk already compressed */
    uint8_t flags;
    uint8_t impl;               /* enum blake3_impl */
    uint8_t cv_stack_len;
    uint32_t cv_stack[BLAKE3_MAX_DEPTH][8]; /* roots of completed subtrees */
} Blake3Hasher;

void blake3_hasher_init(Blake3Hasher *h);
/* Force an implementation (tests, benchmarks); -ENOTSUP if the CPU lacks it. */
int blake3_hasher_init_impl(Blake3Hasher *h, enum blake3_impl impl);
void blake3_hasher_update(Blake3Hasher *h, const void *input, size_t len);
/* Does not change the hasher: more input may follow; out_len may be anything. */
void blake3_hasher_finalize(const Blake3Hasher *h, uint8_t *out, size_t out_len);

/* One call: 32-byte hash of input. */
void blake3_hash(const void *input, size_t len, uint8_t out[BLAKE3_OUT_LEN]);

/* The fastest implementation this CPU runs, and a name for logs. */
enum blake3_impl blake3_impl_best(void);
const char *blake3_impl_name(enum blake3_impl impl);
