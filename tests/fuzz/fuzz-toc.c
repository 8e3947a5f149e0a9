/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * TOC reader. Input: a whole blob (or just its tail, read as a small blob):
 * the TOC is parsed from the end, then entries are extracted
 * (blob.digest -> digests, image.boot -> bootstrap -> parsed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/codec/codec.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/device/toc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static CodecCtx *codec;     /* harness state, reused across inputs */
    char why[512];
    Toc t;

    if (!codec && codec_ctx_new(&codec) < 0)
        abort();
    if (toc_parse(codec, data, size, 0, NULL, &t, why, sizeof(why)) < 0) {
        fuzz_note("toc rejected", why);
        FUZZ_ASSERT(t.entries == NULL && t.count == 0);
        return 0;
    }
    FUZZ_ASSERT(t.offset <= size);
    for (uint32_t i = 0; i < t.count; i++) {
        const TocEntry *e = &t.entries[i];
        uint64_t off, len;
        FUZZ_ASSERT(toc_find(&t, e->name) == e);
        if (toc_entry_range(&t, e, &off, &len, why, sizeof(why)) < 0)
            continue;
        FUZZ_ASSERT(off + len <= t.offset);
        FUZZ_ASSERT(off + len <= size);
        const uint8_t *p = data + off;
        if (!strcmp(e->name, RAFS_TOC_NAME_BLOB_DIGEST) && e->uncompressed_size % 32 == 0 &&
            e->uncompressed_size <= (1u << 20)) {
            BlobInfo *b;
            if (blob_info_new(&b, "x", (uint32_t)(e->uncompressed_size / 32)) == 0) {
                if (toc_load_digests(codec, &t, p, (size_t)len, b, why, sizeof(why)) == 0) {
                    FUZZ_ASSERT(b->chunk_count == 0 || b->digests != NULL);
                    fuzz_note("digests", "loaded");
                } else {
                    fuzz_note("digests rejected", why);
                }
                blob_info_free(b);
            }
        } else if (!strcmp(e->name, RAFS_TOC_NAME_BOOTSTRAP) && e->uncompressed_size <= (16u << 20)) {
            uint8_t *boot = NULL;
            size_t boot_len = 0;
            if (toc_extract_bootstrap(codec, &t, p, (size_t)len, &boot, &boot_len, why, sizeof(why)) == 0) {
                FUZZ_ASSERT(boot_len == e->uncompressed_size);
                RafsBootstrap bs;
                if (rafs_bootstrap_parse(boot, boot_len, &bs, why, sizeof(why)) == 0) {
                    fuzz_note("inline bootstrap", "parsed");
                    rafs_bootstrap_clear(&bs);
                }
                free(boot);
            } else {
                fuzz_note("image.boot rejected", why);
            }
        }
    }
    toc_clear(&t);
    return 0;
}
