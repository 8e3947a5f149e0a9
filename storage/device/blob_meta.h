/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Blob meta ("ci" table) reader: turns a blob's compression-context table
 * into BlobInfo.chunks, validated the way nydusd validates it.
 *
 * WHAT TO FETCH. One ranged read of the object named RafsBlob.meta_blob_id
 * (the data blob itself, or the separate RAFS blob for ZRan/tar-ref):
 *
 *     [ci_offset, ci_offset + ci_compressed_size + 4096)
 *
 * = the compressed ci table immediately followed by the 4 KiB plaintext
 * header (docs §2.1, §3.3). blob_meta_range() returns exactly this range;
 * pass exactly those bytes to blob_meta_parse(). No TOC is needed.
 *
 * LOCAL CACHE. nydusd's `<work_dir>/<blob_id>.blob.meta` format (docs §2.7):
 * uncompressed ci (entries + batch/zran contexts) || zero pad to 4 KiB ||
 * 4096-byte header, exactly round_up_4k(ci_uncompressed_size) + 4096 bytes.
 * blob_meta_cache_load() reads and validates it (any mismatch: -EBADMSG,
 * refetch and save again); blob_meta_cache_save() writes it atomically.
 * Both do blocking file I/O: call them from a worker, not the event loop.
 *
 * RESULT. blob->chunks[i] is ci entry i (ci index == chunk index, sorted by
 * uncompressed offset, densely packed at 4 KiB, except that ZRAN chunks may
 * leave 4 KiB-aligned holes between them, as upstream allows); BATCH and ZRAN chunks carry
 * ctx_index/ctx_offset, and blob_meta_batch()/blob_meta_zran() return the
 * context decompression needs. The contexts and the raw ci live in
 * blob->meta_private and are freed by blob_info_free().
 *
 * Errors: -EBADMSG malformed, -ENOTSUP valid but unsupported (encrypted
 * blobs, blobs without a ci table, EXTERNAL blobs, inline-meta ZRan),
 * -EINVAL for a BlobInfo of the wrong shape, -ENOMEM. `why` names the field
 * and its offset: in the blob for header fields, "ci byte N" (offset in the
 * uncompressed ci table) for entries and contexts.
 *
 * Beyond nydusd: chunks must also end within uncompressed_size itself (the
 * cache file size; nydusd allows its 4 KiB round-up), sizes must be within
 * the chunk size, compressed ranges of plain chunks and batches must not
 * overlap, and a ZRAN blob must hold ZRAN chunks only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/codec/codec.h"
#include "storage/device/blob.h"
#include "storage/device/rafs_bootstrap.h"

/* The byte range of RafsBlob.meta_blob_id to read for blob_meta_parse(). */
int blob_meta_range(const RafsBlob *rb, uint64_t *offset, uint64_t *len, char *why, size_t why_len);

/*
 * Parse the bytes of blob_meta_range() into `blob`, which must come from
 * rafs_bootstrap_blob_info(rb) (chunk table of rb->chunk_count entries,
 * no meta yet). On failure `blob` keeps no meta and its chunks are garbage.
 */
int blob_meta_parse(CodecCtx *codec, const RafsBlob *rb, const void *buf, size_t len, BlobInfo *blob,
                    char *why, size_t why_len);

/* Same, from the bytes of a `.blob.meta` cache file. */
int blob_meta_parse_cache(const RafsBlob *rb, const void *buf, size_t len, BlobInfo *blob,
                          char *why, size_t why_len);

/* Size of a valid `.blob.meta` file for this blob. */
uint64_t blob_meta_cache_size(const RafsBlob *rb);

/*
 * Load `<dir>/<rb->id>.blob.meta` into `blob`. -ENOENT when absent,
 * -EBADMSG when stale or corrupt (refetch, then blob_meta_cache_save()).
 */
int blob_meta_cache_load(const char *dir, const RafsBlob *rb, BlobInfo *blob, char *why, size_t why_len);

/* Write `<dir>/<blob->id>.blob.meta` from a parsed blob: temp file, fsync, rename. */
int blob_meta_cache_save(const char *dir, const BlobInfo *blob, char *why, size_t why_len);

/*
 * The same for `<dir>/<id>.<tag>.blob.meta` (tag: 1..32 of [0-9a-z-]; NULL:
 * the plain name). The plain name is nydusd's; a tag keeps a table apart
 * from other images' tables of the same blob id (see nydus_blob.c).
 */
int blob_meta_cache_load_tagged(const char *dir, const char *tag, const RafsBlob *rb, BlobInfo *blob,
                                char *why, size_t why_len);
int blob_meta_cache_save_tagged(const char *dir, const char *tag, const BlobInfo *blob, char *why, size_t why_len);

/* A batch: several small chunks compressed together (docs §2.6). */
typedef struct BlobMetaBatch {
    uint64_t compressed_offset;     /* start of the batch's data (its members' compressed_offset) */
    uint32_t compressed_size;       /* bytes to read */
    uint32_t uncompressed_size;     /* decompressed batch buffer, members sliced at ctx_offset */
    bool compressed;                /* false: stored raw (compressed_size == uncompressed_size) */
} BlobMetaBatch;

/* A ZRan context: inflate [in_offset, +in_len) raw (windowBits -15) after priming. */
typedef struct BlobMetaZran {
    uint64_t in_offset;
    uint64_t out_offset;
    uint32_t in_len;
    uint32_t out_len;               /* member chunks are sliced at ctx_offset */
    uint8_t ctx_byte, ctx_bits;     /* inflatePrime(ctx_bits, ctx_byte >> (8 - ctx_bits)) */
    const uint8_t *dict;            /* inflateSetDictionary window; owned by the blob */
    uint32_t dict_size;
} BlobMetaZran;

/* Context `index` of a parsed blob: 0, or -ENOENT (no such context / no meta). */
int blob_meta_batch(const BlobInfo *blob, uint32_t index, BlobMetaBatch *out);
int blob_meta_zran(const BlobInfo *blob, uint32_t index, BlobMetaZran *out);

/* The uncompressed ci bytes and the 4 KiB header of a parsed blob (TOC digest checks). */
int blob_meta_raw(const BlobInfo *blob, const uint8_t **ci, size_t *ci_len, const uint8_t **header);
