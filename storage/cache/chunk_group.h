/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Chunk groups: the unit the READ path fetches and decodes.
 *
 * A plain chunk is a group of one. BATCH chunks of one batch context, and
 * ZRAN chunks of one zran context, form a group: their data is a single
 * backend range that is decoded as a whole, and each member is sliced out of
 * the result at its ctx_offset (docs §2.6). Members are consecutive in the
 * chunk table (the blob meta reader guarantees it for batches; for zran a
 * context that reappears later simply forms a second group), so the groups
 * partition the table and a group is always fetched by exactly one Fetch.
 *
 * The blob meta is untrusted: chunk_group_of() re-checks everything it uses
 * (the context exists, its backend range lies inside the chunk data and
 * below CHUNK_GROUP_MAX, every member lies inside the decoded bytes), and
 * chunk_group_decode() insists on the exact decoded length.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "storage/codec/codec.h"
#include "storage/device/blob.h"
#include "storage/device/blob_meta.h"

/* Largest backend range or decoded buffer of one batch/zran group (bounds hostile contexts). */
#define CHUNK_GROUP_MAX (64u << 20)

typedef enum ChunkGroupKind {
    CHUNK_GROUP_PLAIN,
    CHUNK_GROUP_BATCH,
    CHUNK_GROUP_ZRAN,
} ChunkGroupKind;

typedef struct ChunkGroup {
    ChunkGroupKind kind;
    uint32_t first, last;           /* member chunk indexes */
    uint32_t ctx_index;             /* batch or zran context */
    uint64_t coff;                  /* backend range [coff, coff + clen) */
    uint32_t clen;
    uint32_t skip;                  /* zran: output discarded before the first member */
    uint32_t out_len;               /* bytes chunk_group_decode() produces */
    BlobMetaBatch batch;            /* kind BATCH */
    BlobMetaZran zran;              /* kind ZRAN */
} ChunkGroup;

const char *chunk_group_kind_name(ChunkGroupKind kind);

/*
 * The group holding chunk `i`. kind, first and last are always set (so a
 * caller can skip a bad group); returns 0, or -EIO with the reason in `why`
 * when the context is missing or inconsistent.
 */
int chunk_group_of(const BlobInfo *blob, uint32_t i, ChunkGroup *g, char *why, size_t why_len);

/*
 * Decode a BATCH/ZRAN group: `src` is its backend range (g->clen bytes),
 * `out` receives exactly g->out_len bytes. -EIO with `why` on bad data
 * (the reason only: callers name the chunks and the context).
 */
int chunk_group_decode(CodecCtx *codec, const BlobInfo *blob, const ChunkGroup *g, const void *src,
                       size_t src_len, void *out, size_t out_len, char *why, size_t why_len);

/* Where member `i` starts in the decoded bytes; -EIO when it does not lie inside them. */
int chunk_group_member(const BlobInfo *blob, const ChunkGroup *g, uint32_t i, size_t *off,
                       char *why, size_t why_len);
