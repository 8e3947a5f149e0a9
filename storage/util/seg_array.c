/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "seg_array.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int seg_array_init(SegArray *a, uint64_t count, size_t elem_size)
{
    memset(a, 0, sizeof(*a));
    if (elem_size == 0)
        return -EINVAL;
    a->elem_size = elem_size;
    a->count = count;
    a->n_segs = (count + SEG_ARRAY_SEGMENT - 1) / SEG_ARRAY_SEGMENT;
    a->segs = calloc(a->n_segs ? a->n_segs : 1, sizeof(*a->segs));
    return a->segs ? 0 : -ENOMEM;
}

void seg_array_clear(SegArray *a)
{
    for (uint64_t s = 0; a->segs && s < a->n_segs; s++)
        free(a->segs[s]);
    free(a->segs);
    memset(a, 0, sizeof(*a));
}

void seg_array_reset(SegArray *a)
{
    for (uint64_t s = 0; a->segs && s < a->n_segs; s++) {
        free(a->segs[s]);
        a->segs[s] = NULL;
    }
}

int seg_array_copy(SegArray *dst, const SegArray *src)
{
    if (dst->count != src->count || dst->elem_size != src->elem_size)
        return -EINVAL;
    seg_array_reset(dst);
    size_t seg_bytes = (size_t)SEG_ARRAY_SEGMENT * src->elem_size;
    for (uint64_t s = 0; s < src->n_segs; s++) {
        if (!src->segs[s])
            continue;
        if (!(dst->segs[s] = malloc(seg_bytes)))
            return -ENOMEM;
        memcpy(dst->segs[s], src->segs[s], seg_bytes);
    }
    return 0;
}

const void *seg_array_peek(const SegArray *a, uint64_t i)
{
    if (i >= a->count)
        return NULL;
    const uint8_t *seg = a->segs[i / SEG_ARRAY_SEGMENT];
    return seg ? seg + (i % SEG_ARRAY_SEGMENT) * a->elem_size : NULL;
}

void *seg_array_at(SegArray *a, uint64_t i)
{
    if (i >= a->count)
        return NULL;
    uint8_t **seg = (uint8_t **)&a->segs[i / SEG_ARRAY_SEGMENT];
    if (!*seg && !(*seg = calloc(SEG_ARRAY_SEGMENT, a->elem_size)))
        return NULL;
    return *seg + (i % SEG_ARRAY_SEGMENT) * a->elem_size;
}

uint64_t seg_array_bytes(const SegArray *a)
{
    uint64_t n = 0;
    for (uint64_t s = 0; a->segs && s < a->n_segs; s++)
        n += a->segs[s] ? (uint64_t)SEG_ARRAY_SEGMENT * a->elem_size : 0;
    return n;
}

int seg_array_set_u8(SegArray *a, uint64_t i, uint8_t v)
{
    if (i >= a->count)
        return -ERANGE;
    if (v == 0 && !seg_array_peek(a, i))
        return 0;
    uint8_t *p = seg_array_at(a, i);
    if (!p)
        return -ENOMEM;
    *p = v;
    return 0;
}

int seg_array_set_ptr(SegArray *a, uint64_t i, void *v)
{
    if (i >= a->count)
        return -ERANGE;
    if (!v && !seg_array_peek(a, i))
        return 0;
    void **p = seg_array_at(a, i);
    if (!p)
        return -ENOMEM;
    *p = v;
    return 0;
}
