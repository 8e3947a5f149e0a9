/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "chunk_group.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "storage/util/macros.h"
#include "uapi/why.h"

#define CTX_FLAGS (BLOB_CHUNK_BATCH | BLOB_CHUNK_ZRAN)

#define BAD(...) why_fail(-EIO, why, why_len, __VA_ARGS__)

const char *chunk_group_kind_name(ChunkGroupKind kind)
{
    switch (kind) {
    case CHUNK_GROUP_PLAIN: return "chunk";
    case CHUNK_GROUP_BATCH: return "batch";
    case CHUNK_GROUP_ZRAN: return "zran context";
    }
    return "group";
}

static bool same_group(const BlobChunkInfo *a, const BlobChunkInfo *b)
{
    return (a->flags & CTX_FLAGS) == (b->flags & CTX_FLAGS) && a->ctx_index == b->ctx_index;
}

/* Chunk data ends here (the prefetch range); nothing may be read past it. */
static uint64_t data_end(const BlobInfo *blob)
{
    return blob->compressed_data_size ? blob->compressed_data_size : blob->compressed_size;
}

static bool range_inside(uint64_t off, uint64_t len, uint64_t limit)
{
    uint64_t end;
    return !cfn_add_overflow(off, len, &end) && end <= limit;
}

/* A batch is read and decompressed whole; members are checked when sliced. */
static int batch_bounds(const BlobInfo *blob, ChunkGroup *g, char *why, size_t why_len)
{
    BlobMetaBatch *b = &g->batch;
    if (blob_meta_batch(blob, g->ctx_index, b) < 0)
        return BAD("batch %" PRIu32 " does not exist", g->ctx_index);
    if (b->compressed_size == 0 || b->uncompressed_size == 0 || b->uncompressed_size > CHUNK_GROUP_MAX ||
        b->compressed_size > b->uncompressed_size || b->compressed != (b->compressed_size != b->uncompressed_size))
        return BAD("batch %" PRIu32 ": sizes %" PRIu32 "/%" PRIu32 " are invalid", g->ctx_index,
                   b->compressed_size, b->uncompressed_size);
    if (!range_inside(b->compressed_offset, b->compressed_size, data_end(blob)))
        return BAD("batch %" PRIu32 ": data [%" PRIu64 ", +%" PRIu32 ") ends past the chunk data (%" PRIu64 " bytes)",
                   g->ctx_index, b->compressed_offset, b->compressed_size, data_end(blob));
    /* Members share the batch's data: a member pointing elsewhere is a bad table. */
    for (uint32_t i = g->first; i <= g->last; i++)
        if (blob->chunks[i].compressed_offset != b->compressed_offset)
            return BAD("chunk %" PRIu32 ": compressed offset %" PRIu64 " is not batch %" PRIu32 "'s %" PRIu64, i,
                       blob->chunks[i].compressed_offset, g->ctx_index, b->compressed_offset);
    g->coff = b->compressed_offset;
    g->clen = b->compressed_size;
    g->out_len = b->uncompressed_size;
    return 0;
}

/* A zran context is inflated from its start up to the last member's end only. */
static int zran_bounds(const BlobInfo *blob, ChunkGroup *g, char *why, size_t why_len)
{
    BlobMetaZran *z = &g->zran;
    if (blob_meta_zran(blob, g->ctx_index, z) < 0)
        return BAD("zran context %" PRIu32 " does not exist", g->ctx_index);
    if (z->in_len == 0 || z->in_len > CHUNK_GROUP_MAX || !range_inside(z->in_offset, z->in_len, data_end(blob)))
        return BAD("zran context %" PRIu32 ": input [%" PRIu64 ", +%" PRIu32 ") is empty, above %u bytes or past "
                   "the %" PRIu64 "-byte blob", g->ctx_index, z->in_offset, z->in_len, CHUNK_GROUP_MAX,
                   data_end(blob));
    if (z->ctx_bits > 7 || z->dict_size > CODEC_ZRAN_WINDOW_MAX || (z->dict_size && !z->dict))
        return BAD("zran context %" PRIu32 ": ctx_bits %u / dictionary of %" PRIu32 " bytes are invalid",
                   g->ctx_index, z->ctx_bits, z->dict_size);

    /* Members outside out_len are left out here and fail alone in chunk_group_member(). */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t i = g->first; i <= g->last; i++) {
        const BlobChunkInfo *c = &blob->chunks[i];
        if (!range_inside(c->ctx_offset, c->uncompressed_size, z->out_len))
            continue;
        lo = CFN_MIN(lo, (uint64_t)c->ctx_offset);
        hi = CFN_MAX(hi, (uint64_t)c->ctx_offset + c->uncompressed_size);
    }
    if (lo >= hi)
        return BAD("zran context %" PRIu32 ": no chunk lies inside its %" PRIu32 " output bytes", g->ctx_index,
                   z->out_len);
    /* Inflating is bounded by hi: refuse contexts that would decode more than a group may hold. */
    if (hi > CHUNK_GROUP_MAX)
        return BAD("zran context %" PRIu32 ": chunks end at output byte %" PRIu64 ", above %u", g->ctx_index, hi,
                   CHUNK_GROUP_MAX);
    g->coff = z->in_offset;
    g->clen = z->in_len;
    g->skip = (uint32_t)lo;
    g->out_len = (uint32_t)(hi - lo);
    return 0;
}

int chunk_group_of(const BlobInfo *blob, uint32_t i, ChunkGroup *g, char *why, size_t why_len)
{
    const BlobChunkInfo *c = &blob->chunks[i];

    memset(g, 0, sizeof(*g));
    g->first = g->last = i;
    if (!(c->flags & CTX_FLAGS)) {
        g->kind = CHUNK_GROUP_PLAIN;
        g->coff = c->compressed_offset;
        g->clen = c->compressed_size;
        g->out_len = c->uncompressed_size;
        return 0;
    }
    while (g->first > 0 && same_group(&blob->chunks[g->first - 1], c))
        g->first--;
    while (g->last + 1 < blob->chunk_count && same_group(&blob->chunks[g->last + 1], c))
        g->last++;
    g->ctx_index = c->ctx_index;
    g->kind = (c->flags & BLOB_CHUNK_BATCH) ? CHUNK_GROUP_BATCH : CHUNK_GROUP_ZRAN;
    if ((c->flags & CTX_FLAGS) == CTX_FLAGS)
        return BAD("flags 0x%" PRIx32 ": both BATCH and ZRAN", c->flags);
    if (c->flags & BLOB_CHUNK_ENCRYPTED)
        return BAD("encrypted %s chunks are not supported", chunk_group_kind_name(g->kind));
    return g->kind == CHUNK_GROUP_BATCH ? batch_bounds(blob, g, why, why_len) : zran_bounds(blob, g, why, why_len);
}

int chunk_group_decode(CodecCtx *codec, const BlobInfo *blob, const ChunkGroup *g, const void *src,
                       size_t src_len, void *out, size_t out_len, char *why, size_t why_len)
{
    int r;

    if (src_len != g->clen || out_len != g->out_len)
        return BAD("%s %" PRIu32 ": buffers of %zu/%zu bytes, expected %" PRIu32 "/%" PRIu32,
                   chunk_group_kind_name(g->kind), g->ctx_index, src_len, out_len, g->clen, g->out_len);
    switch (g->kind) {
    case CHUNK_GROUP_BATCH: {
        /* Compressed iff the sizes differ (docs §2.6); the length must come out exact. */
        enum blob_compressor comp = g->batch.compressed ? blob->compressor : BLOB_COMP_NONE;
        r = codec_decompress(codec, comp, src, src_len, out, out_len);
        if (r < 0)
            return BAD("%s data [%" PRIu64 ", +%zu) does not decompress to exactly %zu bytes: %s",
                       blob_compressor_name(comp), g->coff, src_len, out_len, strerror(-r));
        return 0;
    }
    case CHUNK_GROUP_ZRAN: {
        const BlobMetaZran *z = &g->zran;
        r = codec_inflate_zran(codec, z->dict, z->dict_size, z->ctx_bits, z->ctx_byte, src, src_len, g->skip,
                               out, out_len);
        if (r < 0)
            return BAD("inflating [%" PRIu64 ", +%zu) to output [%" PRIu32 ", +%zu) failed: %s", g->coff, src_len,
                       g->skip, out_len, strerror(-r));
        return 0;
    }
    case CHUNK_GROUP_PLAIN:
        break;
    }
    return BAD("chunk %" PRIu32 " is not part of a batch or zran context", g->first);
}

int chunk_group_member(const BlobInfo *blob, const ChunkGroup *g, uint32_t i, size_t *off,
                       char *why, size_t why_len)
{
    const BlobChunkInfo *c = &blob->chunks[i];
    if (i < g->first || i > g->last)
        return BAD("not a member of %s %" PRIu32, chunk_group_kind_name(g->kind), g->ctx_index);
    if (c->ctx_offset < g->skip || !range_inside(c->ctx_offset - g->skip, c->uncompressed_size, g->out_len))
        return BAD("slice [%" PRIu32 ", +%" PRIu32 ") lies outside %s %" PRIu32 "'s decoded bytes [%" PRIu32
                   ", %" PRIu64 ")", c->ctx_offset, c->uncompressed_size, chunk_group_kind_name(g->kind),
                   g->ctx_index, g->skip, (uint64_t)g->skip + g->out_len);
    *off = c->ctx_offset - g->skip;
    return 0;
}
