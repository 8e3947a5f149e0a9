/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * RAFS v6 bootstrap reader: the parts the daemon needs in fscache mode
 * (erofs superblock, RAFS extended superblock, device table, blob table,
 * prefetch table), validated the way nydusd validates them, plus the
 * cross-checks the kernel relies on (devslot tag == blob id, sizes).
 *
 * Input: the whole bootstrap file in memory (bootstraps are small). Nothing
 * is read lazily, so the buffer may be freed after rafs_bootstrap_parse().
 *
 * Errors: -EBADMSG for a malformed image, -ENOTSUP for a valid image this
 * daemon cannot serve (tarfs mode), -ENOMEM. On error `why` names the field
 * and its absolute byte offset in the bootstrap.
 *
 * Beyond nydusd (each guards something the daemon or kernel relies on):
 * blob ids must be safe file names ([A-Za-z0-9._-], NUL padded); device
 * slot i must carry blob i's id and blocks == uncompressed_size / 4096;
 * s_extra_devices == blob table entries <= 255; mapped_blkaddr is 0 or past
 * the bootstrap; dirblkbits (byte 90) is 0; the root inode and prefetch nids
 * lie inside the file; INLINED_CHUNK_DIGEST needs every blob to have the
 * digests; ENCRYPTED <=> cipher_algo; BATCH and ZRAN exclude each other.
 * Encrypted blobs parse here and are refused by blob_meta.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/device/blob.h"
#include "uapi/rafs.h"

/* One blob-table entry, host-endian, validated, joined with its device slot. */
typedef struct RafsBlob {
    char id[RAFS_BLOB_ID_LEN + 1];      /* trimmed of NUL padding; [A-Za-z0-9._-] */
    uint32_t index;                     /* position in the table; erofs device id - 1 */
    uint32_t chunk_size;
    uint32_t chunk_count;
    enum blob_compressor compressor;
    enum blob_digester digester;
    uint32_t features;                  /* RAFS_BLOB_* */
    uint64_t compressed_size;           /* v2.2+: whole blob file; v2.1: chunk bytes */
    uint64_t uncompressed_size;         /* cache file size (copen size) */
    uint64_t compressed_data_size;      /* chunk data lies in [0, this), docs §2.1 */

    enum blob_compressor ci_compressor;
    uint64_t ci_offset;                 /* in the meta blob (see meta_blob_id) */
    uint64_t ci_compressed_size;
    uint64_t ci_uncompressed_size;

    uint32_t toc_size;                  /* TOC entries + 512; 0 = unknown, auto-detect */
    bool has_toc_digest;                /* false when the table holds all zero */
    uint8_t toc_digest[32];             /* sha256(TOC entries || TOC tar header) */

    /*
     * Object holding the ci table: the blob itself, or for SEPARATE (ZRan,
     * tar-ref) blobs the RAFS blob hex(blob_meta_digest). Empty when a
     * SEPARATE blob does not name it (inline-meta ZRan): not supported.
     */
    char meta_blob_id[RAFS_BLOB_ID_LEN + 1];
    uint64_t meta_blob_size;            /* SEPARATE only; 0 = unknown */
    uint32_t cipher;                    /* RAFS_CIPHER_*; the key is not kept */

    uint32_t dev_blocks;                /* device slot: uncompressed_size / 4096 */
    uint32_t dev_mapped_blkaddr;        /* device slot: flatdev address, unused by fscache */
} RafsBlob;

typedef struct RafsBootstrap {
    uint64_t size;                      /* bytes, a multiple of 4096 */

    /* erofs superblock */
    uint32_t feature_compat;
    uint16_t root_nid;
    uint64_t inos;
    uint32_t blocks;                    /* s_blocks, for statfs */
    uint32_t meta_blkaddr;

    /* RAFS extended superblock */
    uint64_t flags;                     /* RAFS_SUPER_* */
    uint32_t chunk_size;
    enum blob_compressor compressor;    /* fs-wide default; each blob carries its own */
    enum blob_digester digester;
    uint64_t blob_table_offset;
    uint32_t blob_table_size;
    uint64_t chunk_table_offset;        /* RafsV5ChunkInfo[], FUSE mode only; 0/0 = none */
    uint64_t chunk_table_size;
    uint64_t prefetch_table_offset;
    uint32_t prefetch_table_size;

    uint32_t prefetch_count;            /* nids before the first 0 entry */
    uint32_t *prefetch_nids;

    uint32_t blob_count;                /* == s_extra_devices == device slots */
    RafsBlob *blobs;
} RafsBootstrap;

/* Parse and validate a whole bootstrap. `out` is cleared first; free with rafs_bootstrap_clear(). */
int rafs_bootstrap_parse(const void *buf, size_t len, RafsBootstrap *out, char *why, size_t why_len);
void rafs_bootstrap_clear(RafsBootstrap *bs);

/*
 * Validate one 256-byte blob-table entry (`entry` need not be aligned) at
 * absolute offset `where` as entry `index` of a filesystem with chunk size
 * `fs_chunk_size` and super flags `sb_flags`. Fills everything but the
 * device slot fields. Used by rafs_bootstrap_parse() and the fuzzers.
 */
int rafs_bootstrap_parse_blob(const void *entry, uint32_t index, uint32_t fs_chunk_size,
                              uint64_t sb_flags, uint64_t where, RafsBlob *out,
                              char *why, size_t why_len);

/*
 * Chunk digests from the bootstrap's chunk table (RafsV5ChunkInfo[]: the
 * `table_len` bytes at chunk_table_offset), for blobs whose data carries no
 * `blob.digest` array (images without a TOC, targz-ref). Every entry of blob
 * `blob_index` must name a ci index of `blob` with the same uncompressed
 * offset and size, duplicates must agree, and every ci entry must be
 * covered; a crc32 there is adopted for chunks whose ci entry has none.
 * On success blob->digests is set. -ENOENT: the table lists no chunk of
 * this blob (nothing to verify with); -EBADMSG: the table contradicts the
 * blob meta (why names the entry).
 */
int rafs_chunk_table_digests(const void *table, size_t table_len, uint32_t blob_index, BlobInfo *blob,
                             char *why, size_t why_len);

const RafsBlob *rafs_bootstrap_find_blob(const RafsBootstrap *bs, const char *id);

/*
 * A BlobInfo carrying the entry's identity, sizes, algorithms and features,
 * with an empty chunk table of chunk_count entries for blob_meta to fill.
 */
int rafs_bootstrap_blob_info(const RafsBlob *rb, BlobInfo **ret);

/* A blob id usable as a backend key and as a file name in the work dir. */
bool rafs_bootstrap_id_valid(const char *id);
