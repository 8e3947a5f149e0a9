/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Per-chunk state that takes memory only where chunks are touched: the
 * elements live in fixed segments of SEG_ARRAY_SEGMENT entries, each
 * allocated (zeroed) on its first non-zero write. An untouched element reads
 * as zero. A blob that declares millions of chunks therefore costs one
 * pointer per segment until it is read, not a table per chunk up front.
 *
 * Not thread-safe: one owner at a time (a worker that builds it, then the
 * loop thread).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SEG_ARRAY_SEGMENT 4096u

typedef struct SegArray {
    size_t elem_size;
    uint64_t count;
    uint64_t n_segs;
    void **segs;
} SegArray;

/* count elements of elem_size bytes, all zero. Allocates only the segment table. */
int seg_array_init(SegArray *a, uint64_t count, size_t elem_size);
void seg_array_clear(SegArray *a);
/* Every element back to zero (frees the segments, keeps the table). */
void seg_array_reset(SegArray *a);

/* dst (same count and element size) becomes a copy of src, segment by segment. -EINVAL, -ENOMEM. */
int seg_array_copy(SegArray *dst, const SegArray *src);

/* Element i, or NULL while its segment was never written (it reads as zero). */
const void *seg_array_peek(const SegArray *a, uint64_t i);
/* Element i for writing: allocates its segment on first use; NULL without memory. */
void *seg_array_at(SegArray *a, uint64_t i);
/* Bytes held by the allocated segments (tests and status). */
uint64_t seg_array_bytes(const SegArray *a);

/* Typed accessors for the two kinds in use: byte states and pointers. */
static inline uint8_t seg_array_u8(const SegArray *a, uint64_t i)
{
    const uint8_t *p = seg_array_peek(a, i);
    return p ? *p : 0;
}

/* Set byte i; writing 0 to an untouched segment allocates nothing. -ENOMEM when it cannot. */
int seg_array_set_u8(SegArray *a, uint64_t i, uint8_t v);

static inline void *seg_array_ptr(const SegArray *a, uint64_t i)
{
    void *const *p = seg_array_peek(a, i);
    return p ? *p : NULL;
}

int seg_array_set_ptr(SegArray *a, uint64_t i, void *v);
