/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Encoders from the builder's host-endian descriptions to the RAFS on-disk
 * structures of uapi/rafs.h (ci entries, blob-meta header, TOC entries,
 * blob table entry, ext superblock, v5 chunk info) and the reverse-tar
 * header. The only builder file that knows those byte layouts.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "blob_writer.h"
#include "uapi/rafs.h"

#define MK_TAR_HEADER_SIZE RAFS_TAR_HEADER_SIZE
#define MK_META_HEADER_SIZE RAFS_CI_HEADER_SIZE
#define MK_TOC_ENTRY_SIZE RAFS_TOC_ENTRY_SIZE
#define MK_BLOB_ENTRY_SIZE sizeof(struct rafs_v6_blob_disk)
#define MK_CHUNK_INFO_V5_SIZE sizeof(struct rafs_v5_chunk_info_disk)

/* Size of one ci entry for a version (16 or 24). */
size_t mk_ci_entry_size(unsigned version);
/* Encode chunk `c` as a ci entry of `version` into out (mk_ci_entry_size bytes). */
void mk_encode_ci(unsigned version, const MkChunk *c, bool with_crc, uint8_t *out);

/* The 4096-byte blob-meta header. */
void mk_encode_meta_header(const MkBlobDesc *d, uint8_t out[MK_META_HEADER_SIZE]);

/* A TOC entry; `compressor` is the content's compressor (none, lz4_block or zstd). */
void mk_encode_toc_entry(const char *name, enum blob_compressor compressor, const uint8_t digest[32],
                         uint64_t offset, uint64_t csize, uint64_t usize,
                         uint8_t out[MK_TOC_ENTRY_SIZE]);

/* A GNU "reverse tar" header for `size` bytes named `name` (valid checksum). */
void mk_encode_tar_header(const char *name, uint64_t size, uint8_t out[MK_TAR_HEADER_SIZE]);

/* RafsV6Blob for blob `index`. */
void mk_encode_blob_entry(const MkBlobDesc *d, uint32_t index, uint8_t out[MK_BLOB_ENTRY_SIZE]);

/* RafsV6SuperBlockExt. */
typedef struct MkExtSb {
    uint64_t flags;
    uint64_t blob_table_offset;
    uint32_t blob_table_size;
    uint32_t chunk_size;
    uint64_t chunk_table_offset, chunk_table_size;
} MkExtSb;
void mk_encode_ext_sb(const MkExtSb *e, uint8_t out[RAFS_EXT_SUPER_SIZE]);

/* RafsV5ChunkInfo for ci entry `ci` of blob `blob_index`. */
void mk_encode_chunk_info_v5(const MkChunk *c, uint32_t blob_index, uint32_t ci, bool with_crc,
                             uint8_t out[MK_CHUNK_INFO_V5_SIZE]);

/* On-disk ids (RAFS): compressor 0 none/1 lz4/2 gzip/3 zstd; digester 0 blake3/1 sha256. */
uint32_t mk_rafs_compressor_id(enum blob_compressor c);
uint32_t mk_rafs_digester_id(enum blob_digester d);
/* RafsSuperFlags bits for a compressor / digester. */
uint64_t mk_rafs_super_flags(enum blob_compressor c, enum blob_digester d);
