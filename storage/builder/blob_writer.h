/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The data blob of nydus-mkimage: chunking, digests, dedup, compression,
 * then the tail (ci table + 4 KiB header, optional digest array, inlined
 * bootstrap and TOC, all framed by reverse tar headers).
 *
 * Order of calls: mk_blob_new, mk_blob_add_file per regular file,
 * mk_blob_finish_meta, [mk_blob_append_bootstrap], mk_blob_finish, then
 * mk_blob_commit renames the blob to <dir>/<blob id>.
 *
 * Batch (--batch-size): chunks smaller than the batch size are gathered in a
 * batch buffer (consecutive in ci order, so a batch never resumes after
 * another chunk) that is compressed and written as one piece; BATCH ci flag,
 * csize 0, data = batch index : offset in the buffer (docs §2.5/§2.6).
 *
 * targz-ref (MkBlobOptions.targz_ref): no chunk data is written; chunks
 * come from mk_blob_add_ref_chunk() (ZRAN slices of the original .tar.gz,
 * see targz.c) and the temporary file becomes the separate meta blob
 * (ci table ‖ contexts ‖ dictionaries, then the 4 KiB header). mk_blob_commit
 * names it <dir>/<sha256 of it> and links or copies the tarball to
 * <dir>/<blob id>.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "storage/device/blob.h"
#include "tree.h"

#define MK_CHUNK_SIZE_MIN (4u << 10)
#define MK_CHUNK_SIZE_MAX (16u << 20)
#define MK_BLOB_ID_LEN 64

typedef struct MkBlobOptions {
    uint32_t chunk_size;            /* power of two, 4 KiB..16 MiB */
    enum blob_compressor compressor;
    enum blob_digester digester;
    unsigned ci_version;            /* 1 or 2 */
    enum blob_compressor ci_compressor;
    bool crc32;                     /* V2 only: crc32c per chunk (needs nydusd >= 2.3.2) */
    bool toc;                       /* digest array + TOC (variant (c)) */
    bool inline_bootstrap;          /* image.boot inside the blob (implies toc) */
    bool legacy_inline;             /* as nydus-image before 2.2: neither INLINED_FS_META nor CAP_TAR_TOC */
    bool dedup;
    int level;                      /* compression level, 0 = library default */
    uint32_t batch_size;            /* 0, or pack chunks smaller than this into batches (V2) */
    bool targz_ref;                 /* ZRAN chunks into a .tar.gz, separate meta blob */
    bool zran_holes;                /* targz-ref: a 4 KiB hole before every chunk but the first,
                                     * as nydus-image's ZRan tables may have (a test layout) */
} MkBlobOptions;

enum mk_chunk_kind { MK_CHUNK_PLAIN, MK_CHUNK_BATCH, MK_CHUNK_ZRAN };

/* One unique chunk of the blob, in ci order. */
typedef struct MkChunk {
    uint64_t coff, uoff;
    uint32_t csize, usize;
    bool compressed;
    uint32_t crc;
    uint8_t digest[BLOB_DIGEST_SIZE];
    uint64_t file_offset;           /* in the first file that produced it */
    enum mk_chunk_kind kind;
    uint32_t ctx_index;             /* BATCH/ZRAN: context index */
    uint32_t ctx_offset;            /* BATCH/ZRAN: offset in the context's uncompressed output */
} MkChunk;

/* Where a targz-ref chunk lives in the gzip stream (from targz.c's zran generator). */
typedef struct MkRefChunk {
    uint64_t in_offset;             /* compressed bytes that produce the chunk: coff */
    uint32_t in_len;                /* csize */
    uint32_t ctx_index, ctx_offset;
} MkRefChunk;

/* What the bootstrap says about the blob (host-endian; encoded by erofs_writer.c). */
typedef struct MkBlobDesc {
    char id[MK_BLOB_ID_LEN + 1];
    uint32_t chunk_size;
    uint32_t chunk_count;
    enum blob_compressor compressor;
    enum blob_digester digester;
    uint32_t features;              /* nydus BlobFeatures */
    uint64_t compressed_size;       /* whole blob file */
    uint64_t uncompressed_size;     /* 4 KiB aligned, the cache file size */
    uint32_t toc_size;
    uint8_t toc_digest[32];
    enum blob_compressor ci_compressor;
    uint64_t ci_offset, ci_compressed_size, ci_uncompressed_size;
    uint64_t ci_zran_offset, ci_zran_size;  /* batch/zran contexts inside the uncompressed ci */
    uint32_t ci_zran_count;
    uint8_t meta_digest[32];        /* SEPARATE: sha256 of the meta blob (its id) */
    uint64_t meta_size;
    bool has_crc32;                 /* chunks carry crc32c (ci V2 flag) */
    const MkChunk *chunks;          /* chunk_count entries */
} MkBlobDesc;

typedef struct MkBlob MkBlob;

/* Create the blob as a temporary file in `dir`; `data_out` (optional) gets the expected cache file. */
int mk_blob_new(MkBlob **ret, const MkBlobOptions *opts, const char *dir, const char *data_out);
MkBlob *mk_blob_free(MkBlob *b);
static inline void mk_blob_freep(MkBlob **b) { mk_blob_free(*b); }

/*
 * Room for chunk index k of node->chunk_ci (capacity in *cap, grown by
 * doubling up to node->nchunks): the table follows the data actually read,
 * never a size an input header claims.
 */
int mk_node_chunk_room(MkNode *node, uint64_t k, uint64_t *cap);

/* Chunk one regular file read from `fd`; sets node->chunk_ci/nchunks. */
int mk_blob_add_file(MkBlob *b, MkNode *node, int fd);

/* Is a chunk with this digest and size already stored? Sets *ci. (false without dedup) */
bool mk_blob_lookup(MkBlob *b, const uint8_t digest[BLOB_DIGEST_SIZE], uint32_t len, uint32_t *ci);
/*
 * targz-ref: record chunk `data` (len bytes, already read from the tar) of
 * `node` at `file_offset`, found in the gzip stream at `ref`. The caller did
 * the dedup lookup. Sets *ci to the new ci index.
 */
int mk_blob_add_ref_chunk(MkBlob *b, const MkNode *node, const uint8_t *data, uint32_t len,
                          const uint8_t digest[BLOB_DIGEST_SIZE], uint64_t file_offset,
                          const MkRefChunk *ref, uint32_t *ci);
/*
 * targz-ref: the data blob (`path`, `size` bytes, hex sha256 `id`) and the
 * serialized ZranInflateContext array followed by the dictionaries (`count`
 * contexts, `len` bytes), appended to the ci entries by mk_blob_finish_meta.
 */
int mk_blob_set_ref(MkBlob *b, const char *path, const char *id, uint64_t size,
                    const uint8_t *ctx, size_t len, uint32_t count);

/* Write the chunk-data tar header, ci table, header and digest array. */
int mk_blob_finish_meta(MkBlob *b);
/* Describe the blob as the bootstrap records it (valid after mk_blob_finish_meta). */
void mk_blob_describe(const MkBlob *b, MkBlobDesc *out);
/*
 * The id nydus-image before 2.2 gave a blob inside its own inline bootstrap:
 * the sha256 of the blob written so far (before image.boot and the TOC), not
 * the final blob id. Valid after mk_blob_finish_meta.
 */
int mk_blob_partial_id(const MkBlob *b, char out[MK_BLOB_ID_LEN + 1]);
/* Append a bootstrap (zstd-compressed unless that does not shrink it) as image.boot. */
int mk_blob_append_bootstrap(MkBlob *b, const void *boot, size_t len);
/* Write the TOC, compute the blob id. mk_blob_describe then gives the final values. */
int mk_blob_finish(MkBlob *b);
/* Rename the blob to <dir>/<blob id> (targz-ref: see above). */
int mk_blob_commit(MkBlob *b);

uint32_t mk_blob_chunk_count(const MkBlob *b);
