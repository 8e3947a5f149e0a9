/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Bootstrap reader. Input: a whole bootstrap file. A parsed bootstrap must
 * satisfy what the rest of the daemon relies on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/device/blob_meta.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/device/toc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    RafsBootstrap bs;
    char why[512];
    if (rafs_bootstrap_parse(data, size, &bs, why, sizeof(why)) < 0) {
        fuzz_note("bootstrap rejected", why);
        FUZZ_ASSERT(bs.blobs == NULL && bs.blob_count == 0 && bs.prefetch_nids == NULL);
        return 0;
    }
    FUZZ_ASSERT(bs.size == size && size % 4096 == 0);
    FUZZ_ASSERT(bs.blob_count <= RAFS_MAX_BLOBS);
    for (uint32_t i = 0; i < bs.blob_count; i++) {
        const RafsBlob *rb = &bs.blobs[i];
        uint64_t off, len;
        FUZZ_ASSERT(rafs_bootstrap_id_valid(rb->id));
        FUZZ_ASSERT(rb->index == i && rb->chunk_size == bs.chunk_size);
        FUZZ_ASSERT(rafs_bootstrap_find_blob(&bs, rb->id) == rb);
        FUZZ_ASSERT(rb->compressed_data_size <= rb->compressed_size);
        /* Sizes agree with the chunk count (a cache file and state no chunk can back are refused). */
        FUZZ_ASSERT(rb->chunk_count <= (rb->uncompressed_size + 4095) / 4096);
        if (rb->chunk_count && !(rb->features & (RAFS_BLOB_ZRAN | RAFS_BLOB_IS_CHUNKDICT_GENERATED)))
            FUZZ_ASSERT(rb->uncompressed_size <= (uint64_t)rb->chunk_count * rb->chunk_size);
        if (blob_meta_range(rb, &off, &len, why, sizeof(why)) == 0)
            FUZZ_ASSERT(off == rb->ci_offset && len == rb->ci_compressed_size + 4096);
        else
            fuzz_note("blob meta refused", why);
        if (toc_tail_range(rb, rb->compressed_size, &off, &len, why, sizeof(why)) == 0)
            FUZZ_ASSERT(off + len == rb->compressed_size && len >= 512);
        BlobInfo *b = NULL;
        if (rafs_bootstrap_blob_info(rb, &b) == 0) {
            FUZZ_ASSERT(b->chunk_count == rb->chunk_count);
            blob_info_free(b);
        }
    }
    for (uint32_t i = 0; i < bs.prefetch_count; i++)
        FUZZ_ASSERT(bs.prefetch_nids[i] != 0);
    fuzz_note("bootstrap", "accepted");
    rafs_bootstrap_clear(&bs);
    return 0;
}
