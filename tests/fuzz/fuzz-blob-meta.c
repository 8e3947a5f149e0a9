/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Blob meta reader. Input: 1 mode byte (bit 0: `.blob.meta` cache layout
 * instead of the blob range), a 256-byte blob-table entry, then the bytes
 * handed to the parser. An accepted table must pass blob.c's own checks.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/codec/codec.h"
#include "storage/device/blob_meta.h"
#include "storage/device/rafs_bootstrap.h"

/* Keep allocations small enough for the fuzzer's memory limit. */
#define MAX_CHUNKS 65536u
#define MAX_CI (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static CodecCtx *codec;     /* harness state, reused across inputs */
    struct rafs_v6_blob_disk d;
    RafsBlob rb;
    char why[512];

    if (size < 1 + sizeof(d))
        return 0;
    if (!codec && codec_ctx_new(&codec) < 0)
        abort();
    memcpy(&d, data + 1, sizeof(d));
    if (rafs_bootstrap_parse_blob(&d, 0, le32toh(d.chunk_size), RAFS_SUPER_COMPRESSION_ZSTD | RAFS_SUPER_HASH_BLAKE3,
                                  4096, &rb, why, sizeof(why)) < 0) {
        fuzz_note("entry rejected", why);
        return 0;
    }
    if (rb.chunk_count > MAX_CHUNKS || rb.ci_uncompressed_size > MAX_CI)
        return 0;

    const uint8_t *buf = data + 1 + sizeof(d);
    size_t len = size - 1 - sizeof(d);
    BlobInfo *b = NULL;
    if (rafs_bootstrap_blob_info(&rb, &b) < 0)
        return 0;
    int r = (data[0] & 1) ? blob_meta_parse_cache(&rb, buf, len, b, why, sizeof(why))
                          : blob_meta_parse(codec, &rb, buf, len, b, why, sizeof(why));
    if (r < 0) {
        fuzz_note("meta rejected", why);
        FUZZ_ASSERT(b->meta_private == NULL);
        blob_info_free(b);
        return 0;
    }

    char vwhy[512];
    if (blob_info_validate(b, vwhy, sizeof(vwhy)) < 0) {
        fprintf(stderr, "blob.c rejects an accepted table: %s\n", vwhy);
        abort();
    }
    uint64_t next = 0;
    for (uint32_t i = 0; i < b->chunk_count; i++) {
        const BlobChunkInfo *c = &b->chunks[i];
        FUZZ_ASSERT(c->uncompressed_offset == next);
        FUZZ_ASSERT(c->uncompressed_size >= 1 && c->uncompressed_size <= b->chunk_size);
        FUZZ_ASSERT(c->uncompressed_offset + c->uncompressed_size <= b->uncompressed_size);
        next = (c->uncompressed_offset + c->uncompressed_size + 4095) & ~4095ull;
        if (c->flags & BLOB_CHUNK_BATCH) {
            BlobMetaBatch bt;
            FUZZ_ASSERT(blob_meta_batch(b, c->ctx_index, &bt) == 0);
            FUZZ_ASSERT(bt.compressed_offset == c->compressed_offset);
            FUZZ_ASSERT(bt.compressed_offset + bt.compressed_size <= rb.compressed_data_size);
            FUZZ_ASSERT((uint64_t)c->ctx_offset + c->uncompressed_size <= bt.uncompressed_size);
        } else if (c->flags & BLOB_CHUNK_ZRAN) {
            BlobMetaZran z;
            FUZZ_ASSERT(blob_meta_zran(b, c->ctx_index, &z) == 0);
            FUZZ_ASSERT((uint64_t)c->ctx_offset + c->uncompressed_size <= z.out_len);
            FUZZ_ASSERT(z.in_offset + z.in_len <= rb.compressed_data_size);
            /* Touch the whole dictionary: ASan checks it is inside the ci. */
            unsigned sum = 0;
            for (uint32_t k = 0; k < z.dict_size; k++)
                sum += z.dict[k];
            (void)sum;
        } else {
            FUZZ_ASSERT(c->compressed_offset + c->compressed_size <= rb.compressed_data_size);
        }
    }
    const uint8_t *ci, *hdr;
    size_t ci_len;
    FUZZ_ASSERT(blob_meta_raw(b, &ci, &ci_len, &hdr) == 0 && ci_len == rb.ci_uncompressed_size);
    fuzz_note("meta", "accepted");
    blob_info_free(b);
    return 0;
}
