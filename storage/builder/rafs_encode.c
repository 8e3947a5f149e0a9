/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Host-endian builder descriptions -> uapi/rafs.h on-disk structures. */
#include "rafs_encode.h"

#include <stdio.h>
#include <string.h>

uint32_t mk_rafs_compressor_id(enum blob_compressor c)
{
    switch (c) {
    case BLOB_COMP_LZ4_BLOCK: return RAFS_COMPRESSOR_LZ4_BLOCK;
    case BLOB_COMP_GZIP: return RAFS_COMPRESSOR_GZIP;
    case BLOB_COMP_ZSTD: return RAFS_COMPRESSOR_ZSTD;
    default: return RAFS_COMPRESSOR_NONE;
    }
}

uint32_t mk_rafs_digester_id(enum blob_digester d)
{
    return d == BLOB_DIGEST_SHA256 ? RAFS_DIGESTER_SHA256 : RAFS_DIGESTER_BLAKE3;
}

uint64_t mk_rafs_super_flags(enum blob_compressor c, enum blob_digester d)
{
    uint64_t f = RAFS_SUPER_EXPLICIT_UID_GID;
    switch (c) {
    case BLOB_COMP_LZ4_BLOCK: f |= RAFS_SUPER_COMPRESSION_LZ4; break;
    case BLOB_COMP_GZIP: f |= RAFS_SUPER_COMPRESSION_GZIP; break;
    case BLOB_COMP_ZSTD: f |= RAFS_SUPER_COMPRESSION_ZSTD; break;
    default: f |= RAFS_SUPER_COMPRESSION_NONE; break;
    }
    f |= d == BLOB_DIGEST_SHA256 ? RAFS_SUPER_HASH_SHA256 : RAFS_SUPER_HASH_BLAKE3;
    return f;
}

size_t mk_ci_entry_size(unsigned version)
{
    return version == 2 ? sizeof(struct rafs_chunk_info_v2_disk) : sizeof(struct rafs_chunk_info_v1_disk);
}

void mk_encode_ci(unsigned version, const MkChunk *c, bool with_crc, uint8_t *out)
{
    if (version == 2) {
        struct rafs_chunk_info_v2_disk e;
        unsigned flags = c->compressed ? RAFS_CI_V2_COMPRESSED : 0;
        uint64_t data = 0;
        if (c->kind == MK_CHUNK_PLAIN && with_crc) {
            flags |= RAFS_CI_V2_HAS_CRC32;
            data = c->crc;
        } else if (c->kind != MK_CHUNK_PLAIN) {
            /* The data word: context index (hi32) and offset in its output (lo32); no crc. */
            flags |= c->kind == MK_CHUNK_BATCH ? RAFS_CI_V2_BATCH : RAFS_CI_V2_ZRAN;
            data = (uint64_t)c->ctx_index << 32 | c->ctx_offset;
        }
        rafs_ci_v2_encode(&e, c->coff, c->csize, c->uoff, c->usize, flags, data);
        memcpy(out, &e, sizeof(e));
    } else {
        struct rafs_chunk_info_v1_disk e;
        rafs_ci_v1_encode(&e, c->coff, c->csize, c->uoff, c->usize);
        memcpy(out, &e, sizeof(e));
    }
}

void mk_encode_meta_header(const MkBlobDesc *d, uint8_t out[MK_META_HEADER_SIZE])
{
    struct rafs_ci_header_disk h;
    memset(&h, 0, sizeof(h));
    h.s_magic = htole32(RAFS_CI_MAGIC);
    h.s_features = htole32(d->features);
    h.s_ci_compressor = htole32(mk_rafs_compressor_id(d->ci_compressor));
    h.s_ci_entries = htole32(d->chunk_count);
    h.s_ci_offset = htole64(d->ci_offset);
    h.s_ci_compressed_size = htole64(d->ci_compressed_size);
    h.s_ci_uncompressed_size = htole64(d->ci_uncompressed_size);
    h.s_ci_zran_offset = htole64(d->ci_zran_offset);
    h.s_ci_zran_size = htole64(d->ci_zran_size);
    h.s_ci_zran_count = htole32(d->ci_zran_count);
    h.s_magic2 = htole32(RAFS_CI_MAGIC);
    memcpy(out, &h, sizeof(h));
}

void mk_encode_toc_entry(const char *name, enum blob_compressor compressor, const uint8_t digest[32],
                         uint64_t offset, uint64_t csize, uint64_t usize,
                         uint8_t out[MK_TOC_ENTRY_SIZE])
{
    struct rafs_toc_entry_disk e;
    memset(&e, 0, sizeof(e));
    uint32_t flags = compressor == BLOB_COMP_ZSTD        ? RAFS_TOC_COMPRESSION_ZSTD
                     : compressor == BLOB_COMP_LZ4_BLOCK ? RAFS_TOC_COMPRESSION_LZ4_BLOCK
                                                         : RAFS_TOC_COMPRESSION_NONE;
    e.flags = htole32(flags);
    memcpy(e.name, name, CFN_MIN(strlen(name), sizeof(e.name)));   /* NUL padded, not terminated */
    memcpy(e.uncompressed_digest, digest, 32);
    e.compressed_offset = htole64(offset);
    e.compressed_size = htole64(csize);
    e.uncompressed_size = htole64(usize);
    memcpy(out, &e, sizeof(e));
}

void mk_encode_tar_header(const char *name, uint64_t size, uint8_t out[MK_TAR_HEADER_SIZE])
{
    struct rafs_tar_header_disk h;
    memset(&h, 0, sizeof(h));
    snprintf(h.name, sizeof(h.name), "%s", name);
    snprintf(h.size, sizeof(h.size), "%011llo", (unsigned long long)size);
    snprintf(h.mtime, sizeof(h.mtime), "%011o", 0);
    h.typeflag = '0';
    memcpy(h.magic, RAFS_TAR_GNU_MAGIC, sizeof(h.magic));   /* "ustar  \0" */
    /* The checksum is the byte sum with the field itself counted as spaces. */
    memset(h.chksum, ' ', sizeof(h.chksum));
    unsigned sum = 0;
    const uint8_t *p = (const uint8_t *)&h;
    for (size_t i = 0; i < sizeof(h); i++)
        sum += p[i];
    char ck[sizeof(h.chksum) + 1];
    snprintf(ck, sizeof(ck), "%07o", sum & 07777777u);
    memcpy(h.chksum, ck, sizeof(h.chksum));     /* seven digits and a NUL, like nydus */
    memcpy(out, &h, sizeof(h));
}

void mk_encode_blob_entry(const MkBlobDesc *d, uint32_t index, uint8_t out[MK_BLOB_ENTRY_SIZE])
{
    struct rafs_v6_blob_disk e;
    memset(&e, 0, sizeof(e));
    memcpy(e.blob_id, d->id, RAFS_BLOB_ID_LEN);
    e.blob_index = htole32(index);
    e.chunk_size = htole32(d->chunk_size);
    e.chunk_count = htole32(d->chunk_count);
    e.compression_algo = htole32(mk_rafs_compressor_id(d->compressor));
    e.digest_algo = htole32(mk_rafs_digester_id(d->digester));
    e.features = htole32(d->features);
    e.compressed_size = htole64(d->compressed_size);
    e.uncompressed_size = htole64(d->uncompressed_size);
    e.blob_toc_size = htole32(d->toc_size);
    e.ci_compressor = htole32(mk_rafs_compressor_id(d->ci_compressor));
    e.ci_offset = htole64(d->ci_offset);
    e.ci_compressed_size = htole64(d->ci_compressed_size);
    e.ci_uncompressed_size = htole64(d->ci_uncompressed_size);
    memcpy(e.blob_toc_digest, d->toc_digest, 32);
    if (d->features & RAFS_BLOB_SEPARATE) {
        memcpy(e.blob_meta_digest, d->meta_digest, 32);
        e.blob_meta_size = htole64(d->meta_size);
    }
    memcpy(out, &e, sizeof(e));
}

void mk_encode_ext_sb(const MkExtSb *x, uint8_t out[RAFS_EXT_SUPER_SIZE])
{
    struct rafs_v6_super_block_ext_disk e;
    memset(&e, 0, sizeof(e));
    e.s_flags = htole64(x->flags);
    e.s_blob_table_offset = htole64(x->blob_table_offset);
    e.s_blob_table_size = htole32(x->blob_table_size);
    e.s_chunk_size = htole32(x->chunk_size);
    if (x->chunk_table_size) {
        e.s_chunk_table_offset = htole64(x->chunk_table_offset);
        e.s_chunk_table_size = htole64(x->chunk_table_size);
    }
    memcpy(out, &e, sizeof(e));
}

void mk_encode_chunk_info_v5(const MkChunk *c, uint32_t blob_index, uint32_t ci, bool with_crc,
                             uint8_t out[MK_CHUNK_INFO_V5_SIZE])
{
    struct rafs_v5_chunk_info_disk e;
    memset(&e, 0, sizeof(e));
    memcpy(e.block_id, c->digest, sizeof(e.block_id));
    e.blob_index = htole32(blob_index);
    bool crc = with_crc && c->kind == MK_CHUNK_PLAIN;
    e.flags = htole32((c->compressed ? RAFS_V5_CHUNK_COMPRESSED : 0) | (crc ? RAFS_V5_CHUNK_HAS_CRC32 : 0) |
                      (c->kind == MK_CHUNK_BATCH ? RAFS_V5_CHUNK_BATCH : 0));
    e.compressed_size = htole32(c->csize);
    e.uncompressed_size = htole32(c->usize);
    e.compressed_offset = htole64(c->coff);
    e.uncompressed_offset = htole64(c->uoff);
    e.file_offset = htole64(c->file_offset);
    e.index = htole32(ci);
    e.crc32 = htole32(crc ? c->crc : 0);
    memcpy(out, &e, sizeof(e));
}
