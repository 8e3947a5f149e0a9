/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The blob model (the seed's nydus-storage concepts in C).
 *
 *  BlobInfo      one blob: identity, sizes, compressor/digester, chunk table
 *  BlobChunkInfo one chunk: where it is compressed and uncompressed
 *  BlobIoDesc    a continuous range inside one chunk
 *  BlobIoVec     the descriptors of one request against one blob
 *
 * A raw blob (plain erofs image, mkfs.erofs --blobdev data blob, a bootstrap)
 * is a BlobInfo whose chunks are uniform, uncompressed and undigested, so the
 * same READ path serves raw and nydus blobs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum blob_compressor {
    BLOB_COMP_NONE = 0,
    BLOB_COMP_LZ4_BLOCK,
    BLOB_COMP_GZIP,
    BLOB_COMP_ZSTD,
};

enum blob_digester {
    BLOB_DIGEST_NONE = 0,
    BLOB_DIGEST_BLAKE3,
    BLOB_DIGEST_SHA256,
};

/* BlobChunkInfo.flags */
enum {
    BLOB_CHUNK_COMPRESSED = 1u << 0,
    BLOB_CHUNK_ENCRYPTED  = 1u << 1,
    BLOB_CHUNK_BATCH      = 1u << 2,
    BLOB_CHUNK_ZRAN       = 1u << 3,
    BLOB_CHUNK_HAS_CRC32  = 1u << 4,
};

#define BLOB_ID_MAX 255
#define BLOB_DIGEST_SIZE 32

typedef struct BlobChunkInfo {
    uint64_t compressed_offset;
    uint64_t uncompressed_offset;   /* 4 KiB aligned */
    uint32_t compressed_size;
    uint32_t uncompressed_size;
    uint32_t flags;
    uint32_t crc32;                 /* crc32c of uncompressed data, with BLOB_CHUNK_HAS_CRC32 */
    uint32_t ctx_index;             /* batch or zran context index */
    uint32_t ctx_offset;            /* offset of this chunk inside the batch/zran output */
} BlobChunkInfo;

typedef struct BlobInfo {
    char id[BLOB_ID_MAX + 1];       /* nydus blob id (64 hex) or a raw blob's name */
    uint64_t compressed_size;       /* bytes in the backend object */
    uint64_t uncompressed_size;     /* size of the cache file (copen size) */
    uint32_t chunk_size;
    uint32_t chunk_count;
    enum blob_compressor compressor;
    enum blob_digester digester;
    uint32_t features;              /* nydus BlobFeatures */
    bool raw;                       /* uniform uncompressed chunks, no metadata */

    BlobChunkInfo *chunks;          /* sorted by uncompressed_offset */
    uint8_t (*digests)[BLOB_DIGEST_SIZE];   /* per chunk, or NULL when the image has none */

    /* Batch/zran decompression contexts, owned by the blob meta reader. */
    void *meta_private;
    void (*meta_private_free)(void *p);

    /* Appended by the RAFS readers. */
    uint64_t compressed_data_size;  /* chunk data lies in [0, this) (prefetch range); 0 = compressed_size */

    /*
     * A raw blob whose object is shorter than its image declares: the chunk
     * table ends here (4 KiB aligned) and reads past it fail, while the cache
     * file keeps the declared size.
     */
    bool cut;
    uint64_t cut_at;
} BlobInfo;

/* Where the data that can really be read ends: cut_at, or the whole blob. */
static inline uint64_t blob_readable_end(const BlobInfo *b) { return b->cut ? b->cut_at : b->uncompressed_size; }

typedef struct BlobIoDesc {
    uint32_t chunk_index;
    uint32_t offset;                /* inside the chunk's uncompressed data */
    uint32_t size;
} BlobIoDesc;

typedef struct BlobIoVec {
    const BlobInfo *blob;
    size_t count, capacity;
    BlobIoDesc *descs;
} BlobIoVec;

/* A raw blob of `size` bytes cut into uniform chunks of `chunk_size`. */
int blob_info_new_raw(BlobInfo **ret, const char *id, uint64_t size, uint32_t chunk_size);
/*
 * The same for a blob declared `size` bytes whose object holds only
 * `object_size`: when that is less, chunks cover only its whole 4 KiB blocks
 * (cut_at), so memory follows the bytes that exist, not the declaration.
 */
int blob_info_new_raw_cut(BlobInfo **ret, const char *id, uint64_t size, uint64_t object_size, uint32_t chunk_size);
/* A blob with an empty table of `chunk_count` chunks, filled in by a reader. */
int blob_info_new(BlobInfo **ret, const char *id, uint32_t chunk_count);
BlobInfo *blob_info_free(BlobInfo *blob);

/* First chunk whose data ends after `off` (chunk_count when none does). */
uint32_t blob_chunk_lower_bound(const BlobInfo *blob, uint64_t off);

/* Index of the chunk holding uncompressed offset `off`, or -ENOENT (binary search). */
int64_t blob_find_chunk(const BlobInfo *blob, uint64_t off);

/*
 * Map [off, off+len) to I/O descriptors, one per chunk touched; the zero
 * padding up to the next 4 KiB boundary after a chunk maps to nothing. Fails
 * with -ERANGE when the range leaves the (4 KiB-rounded) blob or falls into
 * a gap of the table.
 */
int blob_iovec_build(BlobIoVec *vec, const BlobInfo *blob, uint64_t off, uint64_t len);
void blob_iovec_clear(BlobIoVec *vec);

/*
 * Check the table: chunks sorted, 4 KiB aligned, not overlapping, inside the
 * blob, sizes non-zero and within chunk_size. Returns 0 or -EINVAL with a
 * description of the first problem in `why`.
 */
int blob_info_validate(const BlobInfo *blob, char *why, size_t why_len);

const char *blob_compressor_name(enum blob_compressor c);
const char *blob_digester_name(enum blob_digester d);
