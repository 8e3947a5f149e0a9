/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "blob.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/util/macros.h"

int blob_info_new(BlobInfo **ret, const char *id, uint32_t chunk_count)
{
    if (!id || strlen(id) > BLOB_ID_MAX)
        return -EINVAL;
    BlobInfo *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    strcpy(b->id, id);
    b->chunk_count = chunk_count;
    if (chunk_count) {
        b->chunks = calloc(chunk_count, sizeof(*b->chunks));
        if (!b->chunks) {
            free(b);
            return -ENOMEM;
        }
    }
    *ret = b;
    return 0;
}

int blob_info_new_raw(BlobInfo **ret, const char *id, uint64_t size, uint32_t chunk_size)
{
    return blob_info_new_raw_cut(ret, id, size, size, chunk_size);
}

int blob_info_new_raw_cut(BlobInfo **ret, const char *id, uint64_t size, uint64_t object_size, uint32_t chunk_size)
{
    if (chunk_size < CFN_PAGE_SIZE || chunk_size % CFN_PAGE_SIZE)
        return -EINVAL;
    /* A cut block cannot be served whole: the table stops before it. */
    uint64_t cut = object_size < size ? cfn_align_down(object_size, CFN_PAGE_SIZE) : 0;
    uint64_t mapped = object_size < size ? cut : size;
    uint64_t count = (mapped + chunk_size - 1) / chunk_size;
    if (count > UINT32_MAX)
        return -EFBIG;
    BlobInfo *b;
    int r = blob_info_new(&b, id, (uint32_t)count);
    if (r < 0)
        return r;
    b->raw = true;
    b->compressed_size = mapped;
    b->uncompressed_size = size;
    b->chunk_size = chunk_size;
    b->cut = object_size < size;
    b->cut_at = cut;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t off = (uint64_t)i * chunk_size;
        BlobChunkInfo *c = &b->chunks[i];
        c->compressed_offset = c->uncompressed_offset = off;
        c->compressed_size = c->uncompressed_size = (uint32_t)CFN_MIN((uint64_t)chunk_size, mapped - off);
    }
    *ret = b;
    return 0;
}

BlobInfo *blob_info_free(BlobInfo *blob)
{
    if (!blob)
        return NULL;
    if (blob->meta_private_free)
        blob->meta_private_free(blob->meta_private);
    free(blob->chunks);
    free(blob->digests);
    free(blob);
    return NULL;
}

uint32_t blob_chunk_lower_bound(const BlobInfo *blob, uint64_t off)
{
    uint32_t lo = 0, hi = blob->chunk_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const BlobChunkInfo *c = &blob->chunks[mid];
        if (c->uncompressed_offset + c->uncompressed_size <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int64_t blob_find_chunk(const BlobInfo *blob, uint64_t off)
{
    uint32_t i = blob_chunk_lower_bound(blob, off);
    if (i < blob->chunk_count && blob->chunks[i].uncompressed_offset <= off)
        return i;
    return -ENOENT;
}

/* The last chunk starting at or before `off`, or -1. */
static int64_t blob_chunk_at_or_before(const BlobInfo *blob, uint64_t off)
{
    uint32_t lo = 0, hi = blob->chunk_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (blob->chunks[mid].uncompressed_offset <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int64_t)lo - 1;
}

void blob_iovec_clear(BlobIoVec *vec)
{
    free(vec->descs);
    memset(vec, 0, sizeof(*vec));
}

static int iovec_push(BlobIoVec *vec, uint32_t index, uint32_t offset, uint32_t size)
{
    if (vec->count == vec->capacity) {
        size_t cap = vec->capacity ? vec->capacity * 2 : 8;
        BlobIoDesc *d = realloc(vec->descs, cap * sizeof(*d));
        if (!d)
            return -ENOMEM;
        vec->descs = d;
        vec->capacity = cap;
    }
    vec->descs[vec->count++] = (BlobIoDesc){ .chunk_index = index, .offset = offset, .size = size };
    return 0;
}

int blob_iovec_build(BlobIoVec *vec, const BlobInfo *blob, uint64_t off, uint64_t len)
{
    uint64_t end;
    vec->blob = blob;
    vec->count = 0;
    /* Kernel reads are page-aligned and may cover the padding of the last chunk. */
    if (cfn_add_overflow(off, len, &end) || end > cfn_align_up(blob->uncompressed_size, CFN_PAGE_SIZE))
        return -ERANGE;
    while (off < end) {
        int64_t i = blob_find_chunk(blob, off);
        if (i < 0) {
            /* The 4 KiB padding after a chunk belongs to it (the cache holds zeros there). */
            int64_t p = blob_chunk_at_or_before(blob, off);
            const BlobChunkInfo *c = p >= 0 ? &blob->chunks[p] : NULL;
            uint64_t pad_end = c ? cfn_align_up(c->uncompressed_offset + c->uncompressed_size, CFN_PAGE_SIZE) : 0;
            if (off >= pad_end)
                return -ERANGE;     /* a gap: nothing maps this offset */
            off = CFN_MIN(pad_end, end);
            continue;
        }
        const BlobChunkInfo *c = &blob->chunks[i];
        uint32_t in = (uint32_t)(off - c->uncompressed_offset);
        uint32_t n = (uint32_t)CFN_MIN((uint64_t)(c->uncompressed_size - in), end - off);
        int r = iovec_push(vec, (uint32_t)i, in, n);
        if (r < 0)
            return r;
        off += n;
    }
    return 0;
}

int blob_info_validate(const BlobInfo *blob, char *why, size_t why_len)
{
#define FAIL(...) do { snprintf(why, why_len, __VA_ARGS__); return -EINVAL; } while (0)
    if (blob->chunk_count && !blob->chunks)
        FAIL("chunk table missing");
    uint64_t prev_end = 0;
    for (uint32_t i = 0; i < blob->chunk_count; i++) {
        const BlobChunkInfo *c = &blob->chunks[i];
        uint64_t uend, cend;
        if (c->uncompressed_size == 0 || c->uncompressed_size > blob->chunk_size)
            FAIL("chunk %u: uncompressed size %u not in 1..%u", i, c->uncompressed_size, blob->chunk_size);
        if (c->compressed_size == 0 && !(c->flags & (BLOB_CHUNK_BATCH | BLOB_CHUNK_ZRAN)))
            FAIL("chunk %u: compressed size is zero", i);
        if (c->uncompressed_offset % CFN_PAGE_SIZE)
            FAIL("chunk %u: uncompressed offset 0x%" PRIx64 " not 4 KiB aligned", i, c->uncompressed_offset);
        if (c->uncompressed_offset < prev_end)
            FAIL("chunk %u: uncompressed offset 0x%" PRIx64 " overlaps or precedes chunk %u", i,
                 c->uncompressed_offset, i ? i - 1 : 0);
        if (cfn_add_overflow(c->uncompressed_offset, (uint64_t)c->uncompressed_size, &uend) ||
            uend > blob->uncompressed_size)
            FAIL("chunk %u: ends past the uncompressed blob size %" PRIu64, i, blob->uncompressed_size);
        if (cfn_add_overflow(c->compressed_offset, (uint64_t)c->compressed_size, &cend) ||
            cend > blob->compressed_size)
            FAIL("chunk %u: compressed range ends past the blob size %" PRIu64, i, blob->compressed_size);
        if (!(c->flags & BLOB_CHUNK_COMPRESSED) && !(c->flags & (BLOB_CHUNK_BATCH | BLOB_CHUNK_ZRAN)) &&
            c->compressed_size != c->uncompressed_size)
            FAIL("chunk %u: uncompressed chunk with differing sizes", i);
        prev_end = uend;
    }
    return 0;
#undef FAIL
}

const char *blob_compressor_name(enum blob_compressor c)
{
    switch (c) {
    case BLOB_COMP_NONE: return "none";
    case BLOB_COMP_LZ4_BLOCK: return "lz4_block";
    case BLOB_COMP_GZIP: return "gzip";
    case BLOB_COMP_ZSTD: return "zstd";
    }
    return "unknown";
}

const char *blob_digester_name(enum blob_digester d)
{
    switch (d) {
    case BLOB_DIGEST_NONE: return "none";
    case BLOB_DIGEST_BLAKE3: return "blake3";
    case BLOB_DIGEST_SHA256: return "sha256";
    }
    return "unknown";
}
