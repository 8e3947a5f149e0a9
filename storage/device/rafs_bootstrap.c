/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "rafs_bootstrap.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/util/macros.h"
#include "uapi/erofs.h"
#include "uapi/why.h"


#define BAD(...) why_fail(-EBADMSG, why, why_len, __VA_ARGS__)
#define UNSUPPORTED(...) why_fail(-ENOTSUP, why, why_len, __VA_ARGS__)

/* Absolute offsets of the fields named in messages. */
#define SB_OFF(f) (EROFS_SUPER_OFFSET + offsetof(struct erofs_super_block_disk, f))
#define EXT_OFF(f) (RAFS_EXT_SUPER_OFFSET + offsetof(struct rafs_v6_super_block_ext_disk, f))
#define BLOB_OFF(f) (where + offsetof(struct rafs_v6_blob_disk, f))

static bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

static bool id_char_ok(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '.' || c == '_' || c == '-';
}

bool rafs_bootstrap_id_valid(const char *id)
{
    size_t n = strnlen(id, RAFS_BLOB_ID_LEN + 1);
    /* Ids become file names (<id>.blob.meta) and URL path segments. */
    if (n == 0 || n > RAFS_BLOB_ID_LEN || id[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_char_ok((unsigned char)id[i]))
            return false;
    return true;
}

/*
 * A 64-byte id field: the id, then NUL padding only. nydusd accepts any
 * UTF-8; we also need it to be a safe file name, so the charset is narrower.
 */
static int parse_id(const uint8_t raw[RAFS_BLOB_ID_LEN], char out[RAFS_BLOB_ID_LEN + 1],
                    const char *what, uint64_t where, char *why, size_t why_len)
{
    size_t n = 0;
    while (n < RAFS_BLOB_ID_LEN && raw[n])
        n++;
    for (size_t i = n; i < RAFS_BLOB_ID_LEN; i++)
        if (raw[i])
            return BAD("%s @%" PRIu64 ": byte %zu is 0x%02x after the NUL padding started at %zu",
                       what, where, i, raw[i], n);
    if (n == 0)
        return BAD("%s @%" PRIu64 ": empty blob id", what, where);
    for (size_t i = 0; i < n; i++)
        if (!id_char_ok(raw[i]) || (i == 0 && raw[i] == '.'))
            return BAD("%s @%" PRIu64 ": byte %zu (0x%02x) is not allowed in a blob id", what,
                       where + i, i, raw[i]);
    memcpy(out, raw, n);
    out[n] = '\0';
    return 0;
}

static int map_compressor(uint32_t v, enum blob_compressor *out)
{
    switch (v) {
    case RAFS_COMPRESSOR_NONE: *out = BLOB_COMP_NONE; return 0;
    case RAFS_COMPRESSOR_LZ4_BLOCK: *out = BLOB_COMP_LZ4_BLOCK; return 0;
    case RAFS_COMPRESSOR_GZIP: *out = BLOB_COMP_GZIP; return 0;
    case RAFS_COMPRESSOR_ZSTD: *out = BLOB_COMP_ZSTD; return 0;
    }
    return -EINVAL;
}

static void hex32(const uint8_t d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/*
 * The largest ci table a BATCH/ZRAN blob of `n` chunks can have: the entries,
 * then at most one context per chunk (and for ZRAN its dictionary). Anything
 * larger is a table that decompresses into memory nothing will use.
 */
static uint64_t ext_ci_max_size(uint32_t features, uint64_t n)
{
    uint64_t per_chunk = sizeof(struct rafs_chunk_info_v2_disk);
    if (features & RAFS_BLOB_ZRAN)
        per_chunk += sizeof(struct rafs_zran_ctx_disk) + RAFS_ZRAN_MAX_DICT_SIZE;
    else if (features & RAFS_BLOB_BATCH)
        per_chunk += sizeof(struct rafs_batch_ctx_disk);
    return n * per_chunk;
}

/*
 * Sizes must agree with the chunk count: chunks sit 4 KiB aligned without
 * overlapping, so n chunks need at least n blocks; and packed densely (all
 * but ZRAN, whose chunks follow the tar stream with gaps) they cover at most
 * n * chunk_size bytes. A larger uncompressed_size would only make the cache
 * file and per-chunk state follow a number the table cannot back.
 */
static int check_chunk_room(const RafsBlob *b, uint64_t where, char *why, size_t why_len)
{
    uint64_t n = b->chunk_count;
    if (n == 0)
        return 0;       /* no blob meta: refused when opened, with its own reason */
    if (n > cfn_align_up(b->uncompressed_size, RAFS_BLOCK_SIZE) / RAFS_BLOCK_SIZE)
        return BAD("blob %s chunk_count @%" PRIu64 ": %" PRIu64 " chunks do not fit its uncompressed_size %" PRIu64
                   " (one 4 KiB block each at least)", b->id, BLOB_OFF(chunk_count),
                   n, b->uncompressed_size);
    if (!(b->features & (RAFS_BLOB_ZRAN | RAFS_BLOB_IS_CHUNKDICT_GENERATED)) &&
        b->uncompressed_size > n * b->chunk_size)
        return BAD("blob %s uncompressed_size @%" PRIu64 ": %" PRIu64 " bytes is more than its %" PRIu64
                   " chunks of at most %" PRIu32 " bytes hold", b->id,
                   BLOB_OFF(uncompressed_size), b->uncompressed_size, n,
                   b->chunk_size);
    return 0;
}

int rafs_bootstrap_parse_blob(const void *entry, uint32_t index, uint32_t fs_chunk_size,
                              uint64_t sb_flags, uint64_t where, RafsBlob *out,
                              char *why, size_t why_len)
{
    struct rafs_v6_blob_disk d;
    char what[64];
    int r;

    memcpy(&d, entry, sizeof(d));
    memset(out, 0, sizeof(*out));
    snprintf(what, sizeof(what), "blob table entry %" PRIu32 " blob_id", index);
    r = parse_id(d.blob_id, out->id, what, BLOB_OFF(blob_id), why, why_len);
    if (r < 0)
        return r;

    uint32_t bi = le32toh(d.blob_index);
    if (bi != index)
        return BAD("blob %s blob_index @%" PRIu64 ": %" PRIu32 ", expected its position %" PRIu32,
                   out->id, BLOB_OFF(blob_index), bi, index);
    out->index = index;

    uint32_t cs = le32toh(d.chunk_size);
    if (!is_pow2(cs) || cs < RAFS_MIN_CHUNK_SIZE || cs > RAFS_MAX_CHUNK_SIZE || cs != fs_chunk_size)
        return BAD("blob %s chunk_size @%" PRIu64 ": 0x%" PRIx32 ", expected the filesystem chunk size 0x%" PRIx32,
                   out->id, BLOB_OFF(chunk_size), cs, fs_chunk_size);
    out->chunk_size = cs;

    out->chunk_count = le32toh(d.chunk_count);
    if (out->chunk_count > RAFS_MAX_CHUNKS_PER_BLOB)
        return BAD("blob %s chunk_count @%" PRIu64 ": %" PRIu32 " exceeds %u", out->id,
                   BLOB_OFF(chunk_count), out->chunk_count, RAFS_MAX_CHUNKS_PER_BLOB);

    if (map_compressor(le32toh(d.compression_algo), &out->compressor) < 0)
        return BAD("blob %s compression_algo @%" PRIu64 ": unknown algorithm %" PRIu32, out->id,
                   BLOB_OFF(compression_algo), le32toh(d.compression_algo));
    if (map_compressor(le32toh(d.ci_compressor), &out->ci_compressor) < 0)
        return BAD("blob %s ci_compressor @%" PRIu64 ": unknown algorithm %" PRIu32, out->id,
                   BLOB_OFF(ci_compressor), le32toh(d.ci_compressor));
    switch (le32toh(d.digest_algo)) {
    case RAFS_DIGESTER_BLAKE3: out->digester = BLOB_DIGEST_BLAKE3; break;
    case RAFS_DIGESTER_SHA256: out->digester = BLOB_DIGEST_SHA256; break;
    default:
        return BAD("blob %s digest_algo @%" PRIu64 ": unknown algorithm %" PRIu32, out->id,
                   BLOB_OFF(digest_algo), le32toh(d.digest_algo));
    }
    out->cipher = le32toh(d.cipher_algo);
    if (out->cipher > RAFS_CIPHER_AES128XTS)
        return BAD("blob %s cipher_algo @%" PRIu64 ": %" PRIu32 " is not none (0) or aes128xts (1)",
                   out->id, BLOB_OFF(cipher_algo), out->cipher);

    out->compressed_size = le64toh(d.compressed_size);
    out->uncompressed_size = le64toh(d.uncompressed_size);
    if (out->uncompressed_size > RAFS_BLOB_MAX_UNCOMPRESSED_SIZE)
        return BAD("blob %s uncompressed_size @%" PRIu64 ": 0x%" PRIx64 " exceeds 2^44", out->id,
                   BLOB_OFF(uncompressed_size), out->uncompressed_size);
    if (out->compressed_size > RAFS_BLOB_MAX_COMPRESSED_SIZE)
        return BAD("blob %s compressed_size @%" PRIu64 ": 0x%" PRIx64 " exceeds 2^40", out->id,
                   BLOB_OFF(compressed_size), out->compressed_size);

    uint32_t f = le32toh(d.features);
    out->features = f;
    if ((f & 0xffffu & ~RAFS_BLOB_INCOMPAT_MASK) || (f & RAFS_BLOB_V5_NO_EXT_BLOB_TABLE))
        return BAD("blob %s features @%" PRIu64 ": 0x%08" PRIx32 " has unknown incompatible bits 0x%08" PRIx32,
                   out->id, BLOB_OFF(features), f,
                   (f & 0xffffu & ~RAFS_BLOB_INCOMPAT_MASK) | (f & RAFS_BLOB_V5_NO_EXT_BLOB_TABLE));
    if (f & RAFS_BLOB_TARFS)
        return UNSUPPORTED("blob %s features @%" PRIu64 ": TARFS blobs have no chunk table; fscache mode cannot serve them",
                           out->id, BLOB_OFF(features));
    if (!(f & RAFS_BLOB_ALIGNED))
        return BAD("blob %s features @%" PRIu64 ": 0x%08" PRIx32 " lacks ALIGNED (0x1), required for RAFS v6",
                   out->id, BLOB_OFF(features), f);
    bool v2 = f & RAFS_BLOB_CHUNK_INFO_V2;
    bool ext = f & (RAFS_BLOB_BATCH | RAFS_BLOB_ZRAN | RAFS_BLOB_ENCRYPTED);
    if (ext && !v2)
        return BAD("blob %s features @%" PRIu64 ": 0x%08" PRIx32 " has BATCH/ZRAN/ENCRYPTED without CHUNK_INFO_V2",
                   out->id, BLOB_OFF(features), f);
    /* Both would own the header's s_ci_zran_* fields. */
    if ((f & RAFS_BLOB_BATCH) && (f & RAFS_BLOB_ZRAN))
        return BAD("blob %s features @%" PRIu64 ": 0x%08" PRIx32 " has both BATCH and ZRAN", out->id,
                   BLOB_OFF(features), f);
    if (!!(f & RAFS_BLOB_ENCRYPTED) != (out->cipher != RAFS_CIPHER_NONE))
        return BAD("blob %s features @%" PRIu64 ": ENCRYPTED bit disagrees with cipher_algo %" PRIu32 " @%" PRIu64,
                   out->id, BLOB_OFF(features), out->cipher, BLOB_OFF(cipher_algo));
    /* tarfs mode has no ci table and 512-byte blocks; the superblock check refuses it too. */
    if (sb_flags & RAFS_SUPER_TARTFS_MODE)
        return UNSUPPORTED("blob %s: the filesystem is in TARTFS mode; fscache mode cannot serve it", out->id);

    out->ci_offset = le64toh(d.ci_offset);
    out->ci_compressed_size = le64toh(d.ci_compressed_size);
    out->ci_uncompressed_size = le64toh(d.ci_uncompressed_size);
    uint64_t ci_end;
    if (cfn_add_overflow(out->ci_offset, out->ci_compressed_size, &ci_end) ||
        cfn_add_overflow(ci_end, (uint64_t)RAFS_CI_HEADER_SIZE, &ci_end))
        return BAD("blob %s ci_offset @%" PRIu64 " + ci_compressed_size @%" PRIu64 " overflows", out->id,
                   BLOB_OFF(ci_offset), BLOB_OFF(ci_compressed_size));
    if (out->ci_compressed_size > out->ci_uncompressed_size)
        return BAD("blob %s ci_compressed_size @%" PRIu64 ": %" PRIu64 " exceeds ci_uncompressed_size %" PRIu64,
                   out->id, BLOB_OFF(ci_compressed_size), out->ci_compressed_size, out->ci_uncompressed_size);
    uint64_t n = out->chunk_count;
    if (v2 && ext) {
        if (out->ci_uncompressed_size < n * sizeof(struct rafs_chunk_info_v2_disk))
            return BAD("blob %s ci_uncompressed_size @%" PRIu64 ": %" PRIu64 " is smaller than %" PRIu64 " V2 entries",
                       out->id, BLOB_OFF(ci_uncompressed_size), out->ci_uncompressed_size, n);
        uint64_t max = ext_ci_max_size(f, n);
        if (!(f & RAFS_BLOB_IS_CHUNKDICT_GENERATED) && out->ci_uncompressed_size > max)
            return BAD("blob %s ci_uncompressed_size @%" PRIu64 ": %" PRIu64 " is more than %" PRIu64 " entries and "
                       "their contexts can fill (%" PRIu64 " bytes)", out->id, BLOB_OFF(ci_uncompressed_size),
                       out->ci_uncompressed_size, n, max);
    } else if (v2) {
        if (out->ci_uncompressed_size != n * sizeof(struct rafs_chunk_info_v2_disk))
            return BAD("blob %s ci_uncompressed_size @%" PRIu64 ": %" PRIu64 ", expected %" PRIu64 " x 24 (V2)",
                       out->id, BLOB_OFF(ci_uncompressed_size), out->ci_uncompressed_size, n);
    } else if (!(f & RAFS_BLOB_IS_CHUNKDICT_GENERATED) &&
               out->ci_uncompressed_size != n * sizeof(struct rafs_chunk_info_v1_disk)) {
        return BAD("blob %s ci_uncompressed_size @%" PRIu64 ": %" PRIu64 ", expected %" PRIu64 " x 16 (V1)",
                   out->id, BLOB_OFF(ci_uncompressed_size), out->ci_uncompressed_size, n);
    }

    r = check_chunk_room(out, where, why, why_len);
    if (r < 0)
        return r;

    /* Where chunk data ends (BlobInfo::compressed_data_size). */
    bool ci_valid = out->ci_compressed_size && out->ci_uncompressed_size;
    out->compressed_data_size = out->compressed_size;
    if (!(f & RAFS_BLOB_SEPARATE) && (f & RAFS_BLOB_CAP_TAR_TOC) && ci_valid) {
        if (f & RAFS_BLOB_HAS_TAR_HEADER) {
            if (out->ci_offset < RAFS_TAR_HEADER_SIZE)
                return BAD("blob %s ci_offset @%" PRIu64 ": %" PRIu64 " leaves no room for the image.blob tar header",
                           out->id, BLOB_OFF(ci_offset), out->ci_offset);
            out->compressed_data_size = out->ci_offset - RAFS_TAR_HEADER_SIZE;
        } else {
            out->compressed_data_size = out->ci_offset;
        }
        /* compressed_size is the whole file here, so the meta must fit in it. */
        if (ci_end > out->compressed_size)
            return BAD("blob %s ci_offset @%" PRIu64 ": blob meta [%" PRIu64 ", %" PRIu64 ") ends past compressed_size %" PRIu64,
                       out->id, BLOB_OFF(ci_offset), out->ci_offset, ci_end, out->compressed_size);
    }

    out->toc_size = le32toh(d.blob_toc_size);
    out->has_toc_digest = !all_zero(d.blob_toc_digest, sizeof(d.blob_toc_digest));
    memcpy(out->toc_digest, d.blob_toc_digest, sizeof(out->toc_digest));

    if (f & RAFS_BLOB_SEPARATE) {
        if (out->cipher == RAFS_CIPHER_NONE && !all_zero(d.blob_meta_digest, 32)) {
            hex32(d.blob_meta_digest, out->meta_blob_id);
            out->meta_blob_size = le64toh(d.blob_meta_size);
        }
    } else {
        memcpy(out->meta_blob_id, out->id, sizeof(out->id));
    }
    return 0;
}

/* A table [off, off+size) inside the file, after the device table, not overlapping `other`. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

int rafs_bootstrap_parse(const void *buf, size_t len, RafsBootstrap *out, char *why, size_t why_len)
{
    const uint8_t *p = buf;
    struct erofs_super_block_disk sb;
    struct rafs_v6_super_block_ext_disk ext;
    int r;

    memset(out, 0, sizeof(*out));
    if (len < RAFS_BLOCK_SIZE)
        return BAD("bootstrap is %zu bytes, shorter than one 4096-byte block", len);
    if (len % RAFS_BLOCK_SIZE)
        return BAD("bootstrap size %zu is not a multiple of 4096", len);
    out->size = len;

    memcpy(&sb, p + EROFS_SUPER_OFFSET, sizeof(sb));
    if (le32toh(sb.magic) != EROFS_SUPER_MAGIC_V1 && rafs_is_v5(p, len))
        return UNSUPPORTED(RAFS_V5_NOT_SUPPORTED);
    if (le32toh(sb.magic) != EROFS_SUPER_MAGIC_V1)
        return BAD("erofs superblock s_magic @%zu: 0x%08" PRIx32 ", expected 0x%08x", SB_OFF(magic),
                   le32toh(sb.magic), EROFS_SUPER_MAGIC_V1);
    if (sb.checksum)
        return BAD("erofs superblock s_checksum @%zu: 0x%08" PRIx32 ", RAFS v6 requires 0", SB_OFF(checksum),
                   le32toh(sb.checksum));
    if (sb.blkszbits == 9)
        return UNSUPPORTED("erofs superblock s_blkszbits @%zu: 9 (512-byte blocks, tarfs mode) cannot be served through fscache",
                           SB_OFF(blkszbits));
    if (sb.blkszbits != RAFS_BLOCK_BITS)
        return BAD("erofs superblock s_blkszbits @%zu: %u, expected 12", SB_OFF(blkszbits), sb.blkszbits);
    if (sb.sb_extslots)
        return BAD("erofs superblock s_extslots @%zu: %u, expected 0", SB_OFF(sb_extslots), sb.sb_extslots);
    out->inos = le64toh(sb.inos);
    if (out->inos == 0)
        return BAD("erofs superblock s_inos @%zu: 0 inodes", SB_OFF(inos));
    if (sb.u1)
        return BAD("erofs superblock s_u @%zu: 0x%04x, expected 0 (no compression)", SB_OFF(u1), le16toh(sb.u1));
    if (sb.xattr_blkaddr)
        return BAD("erofs superblock s_xattr_blkaddr @%zu: %" PRIu32 ", RAFS v6 has no shared xattrs",
                   SB_OFF(xattr_blkaddr), le32toh(sb.xattr_blkaddr));
    uint32_t incompat = le32toh(sb.feature_incompat);
    if (incompat != (EROFS_FEATURE_INCOMPAT_CHUNKED_FILE | EROFS_FEATURE_INCOMPAT_DEVICE_TABLE))
        return BAD("erofs superblock s_feature_incompat @%zu: 0x%08" PRIx32 ", expected exactly 0x0000000c",
                   SB_OFF(feature_incompat), incompat);
    out->feature_compat = le32toh(sb.feature_compat);
    if (!(out->feature_compat & EROFS_FEATURE_COMPAT_RAFS_V6))
        return BAD("erofs superblock s_feature_compat @%zu: 0x%08" PRIx32 " lacks RAFS_V6 (0x40000000)",
                   SB_OFF(feature_compat), out->feature_compat);
    if (le16toh(sb.devt_slotoff) != RAFS_DEVT_SLOTOFF)
        return BAD("erofs superblock s_devt_slotoff @%zu: %u, expected 11 (device table at 1408)",
                   SB_OFF(devt_slotoff), le16toh(sb.devt_slotoff));
    /* Newer kernels read dirblkbits here without a feature bit. */
    if (sb.reserved[0])
        return BAD("erofs superblock dirblkbits @%zu: %u, expected 0", SB_OFF(reserved), sb.reserved[0]);

    out->meta_blkaddr = le32toh(sb.meta_blkaddr);
    out->root_nid = le16toh(sb.root_nid);
    out->blocks = le32toh(sb.blocks);
    uint64_t meta_off = (uint64_t)out->meta_blkaddr * RAFS_BLOCK_SIZE;
    if (meta_off > len)
        return BAD("erofs superblock s_meta_blkaddr @%zu: block %" PRIu32 " is past the %zu-byte bootstrap",
                   SB_OFF(meta_blkaddr), out->meta_blkaddr, len);
    if (meta_off + ((uint64_t)out->root_nid + 1) * RAFS_INODE_SLOT_SIZE > len)
        return BAD("erofs superblock s_root_nid @%zu: root inode %u lies past the %zu-byte bootstrap",
                   SB_OFF(root_nid), out->root_nid, len);

    uint16_t ndev = le16toh(sb.extra_devices);
    if (ndev > RAFS_MAX_BLOBS)
        return BAD("erofs superblock s_extra_devices @%zu: %u, at most %u blobs fit the 8-bit device id",
                   SB_OFF(extra_devices), ndev, RAFS_MAX_BLOBS);
    if (ndev == 0 && out->blocks != 0 && out->blocks != 4096)
        return BAD("erofs superblock s_blocks @%zu: %" PRIu32 " with no extra devices, expected 0 or 4096",
                   SB_OFF(blocks), out->blocks);
    uint64_t devt_end = RAFS_DEVT_OFFSET + (uint64_t)ndev * EROFS_DEVSLOT_SIZE;
    if (devt_end > len)
        return BAD("erofs superblock s_extra_devices @%zu: %u device slots end at %" PRIu64 ", past the bootstrap",
                   SB_OFF(extra_devices), ndev, devt_end);

    memcpy(&ext, p + RAFS_EXT_SUPER_OFFSET, sizeof(ext));
    out->flags = le64toh(ext.s_flags);
    if (out->flags & ~RAFS_SUPER_KNOWN_FLAGS)
        return BAD("ext superblock s_flags @%zu: 0x%" PRIx64 " has unknown bits 0x%" PRIx64, EXT_OFF(s_flags),
                   out->flags, out->flags & ~RAFS_SUPER_KNOWN_FLAGS);
    switch (out->flags & RAFS_SUPER_COMPRESSION_MASK) {
    case RAFS_SUPER_COMPRESSION_NONE: out->compressor = BLOB_COMP_NONE; break;
    case RAFS_SUPER_COMPRESSION_LZ4: out->compressor = BLOB_COMP_LZ4_BLOCK; break;
    case RAFS_SUPER_COMPRESSION_GZIP: out->compressor = BLOB_COMP_GZIP; break;
    case RAFS_SUPER_COMPRESSION_ZSTD: out->compressor = BLOB_COMP_ZSTD; break;
    default:
        return BAD("ext superblock s_flags @%zu: 0x%" PRIx64 " must have exactly one compression bit",
                   EXT_OFF(s_flags), out->flags);
    }
    switch (out->flags & RAFS_SUPER_HASH_MASK) {
    case RAFS_SUPER_HASH_BLAKE3: out->digester = BLOB_DIGEST_BLAKE3; break;
    case RAFS_SUPER_HASH_SHA256: out->digester = BLOB_DIGEST_SHA256; break;
    default:
        return BAD("ext superblock s_flags @%zu: 0x%" PRIx64 " must have exactly one hash bit",
                   EXT_OFF(s_flags), out->flags);
    }
    if (out->flags & RAFS_SUPER_TARTFS_MODE)
        return UNSUPPORTED("ext superblock s_flags @%zu: TARTFS_MODE images cannot be served through fscache",
                           EXT_OFF(s_flags));

    out->chunk_size = le32toh(ext.s_chunk_size);
    if (!is_pow2(out->chunk_size) || out->chunk_size < RAFS_MIN_CHUNK_SIZE || out->chunk_size > RAFS_MAX_CHUNK_SIZE)
        return BAD("ext superblock s_chunk_size @%zu: 0x%" PRIx32 " is not a power of two in 4 KiB..16 MiB",
                   EXT_OFF(s_chunk_size), out->chunk_size);

    out->blob_table_offset = le64toh(ext.s_blob_table_offset);
    out->blob_table_size = le32toh(ext.s_blob_table_size);
    uint64_t bt = out->blob_table_offset, bts = out->blob_table_size;
    if (bts % sizeof(struct rafs_v6_blob_disk))
        return BAD("ext superblock s_blob_table_size @%zu: %" PRIu64 " is not a multiple of 256",
                   EXT_OFF(s_blob_table_size), bts);
    if (bt % RAFS_BLOCK_SIZE || bt < RAFS_BLOCK_SIZE || bt < devt_end)
        return BAD("ext superblock s_blob_table_offset @%zu: 0x%" PRIx64 " must be 4 KiB aligned, >= 4096 and after the device table (ends %" PRIu64 ")",
                   EXT_OFF(s_blob_table_offset), bt, devt_end);
    if (bt > len || bts > len - bt)
        return BAD("ext superblock s_blob_table_offset @%zu: table [%" PRIu64 ", +%" PRIu64 ") is past the %zu-byte bootstrap",
                   EXT_OFF(s_blob_table_offset), bt, bts, len);
    if (bts / sizeof(struct rafs_v6_blob_disk) != ndev)
        return BAD("ext superblock s_blob_table_size @%zu: %" PRIu64 " entries but s_extra_devices @%zu is %u",
                   EXT_OFF(s_blob_table_size), bts / sizeof(struct rafs_v6_blob_disk), SB_OFF(extra_devices), ndev);

    out->chunk_table_offset = le64toh(ext.s_chunk_table_offset);
    out->chunk_table_size = le64toh(ext.s_chunk_table_size);
    uint64_t ct = out->chunk_table_offset, cts = out->chunk_table_size;
    if (cts) {
        if (cts % sizeof(struct rafs_v5_chunk_info_disk))
            return BAD("ext superblock s_chunk_table_size @%zu: %" PRIu64 " is not a multiple of 80",
                       EXT_OFF(s_chunk_table_size), cts);
        if (ct % RAFS_BLOCK_SIZE || ct < RAFS_BLOCK_SIZE || ct < devt_end)
            return BAD("ext superblock s_chunk_table_offset @%zu: 0x%" PRIx64 " must be 4 KiB aligned, >= 4096 and after the device table",
                       EXT_OFF(s_chunk_table_offset), ct);
        if (ct > len || cts > len - ct)
            return BAD("ext superblock s_chunk_table_offset @%zu: table [%" PRIu64 ", +%" PRIu64 ") is past the %zu-byte bootstrap",
                       EXT_OFF(s_chunk_table_offset), ct, cts, len);
        if (ranges_overlap(bt, bts, ct, cts))
            return BAD("ext superblock s_chunk_table_offset @%zu: chunk table overlaps the blob table",
                       EXT_OFF(s_chunk_table_offset));
    }

    out->prefetch_table_offset = le64toh(ext.s_prefetch_table_offset);
    out->prefetch_table_size = le32toh(ext.s_prefetch_table_size);
    uint64_t pt = out->prefetch_table_offset, pts = out->prefetch_table_size;
    /* Legacy images may have a size with a zero offset: no table. */
    if (pts && pt) {
        if (pts % sizeof(uint32_t))
            return BAD("ext superblock s_prefetch_table_size @%zu: %" PRIu64 " is not a multiple of 4",
                       EXT_OFF(s_prefetch_table_size), pts);
        if (pt < RAFS_BLOCK_SIZE || pt < devt_end)
            return BAD("ext superblock s_prefetch_table_offset @%zu: 0x%" PRIx64 " must be >= 4096 and after the device table",
                       EXT_OFF(s_prefetch_table_offset), pt);
        if (pt > len || pts > len - pt)
            return BAD("ext superblock s_prefetch_table_offset @%zu: table [%" PRIu64 ", +%" PRIu64 ") is past the %zu-byte bootstrap",
                       EXT_OFF(s_prefetch_table_offset), pt, pts, len);
        if (ranges_overlap(bt, bts, pt, pts))
            return BAD("ext superblock s_prefetch_table_offset @%zu: prefetch table overlaps the blob table",
                       EXT_OFF(s_prefetch_table_offset));
        if (ranges_overlap(ct, cts, pt, pts))
            return BAD("ext superblock s_prefetch_table_offset @%zu: prefetch table overlaps the chunk table",
                       EXT_OFF(s_prefetch_table_offset));
    }

    if (ndev) {
        out->blobs = calloc(ndev, sizeof(*out->blobs));
        if (!out->blobs)
            return -ENOMEM;
    }
    out->blob_count = ndev;
    for (uint32_t i = 0; i < ndev; i++) {
        uint64_t where = bt + (uint64_t)i * sizeof(struct rafs_v6_blob_disk);
        r = rafs_bootstrap_parse_blob(p + where, i, out->chunk_size, out->flags, where, &out->blobs[i],
                                      why, why_len);
        if (r < 0)
            goto fail;
    }

    for (uint32_t i = 0; i < ndev; i++) {
        RafsBlob *b = &out->blobs[i];
        uint64_t where = RAFS_DEVT_OFFSET + (uint64_t)i * EROFS_DEVSLOT_SIZE;
        struct erofs_deviceslot_disk slot;
        char tag[RAFS_BLOB_ID_LEN + 1], what[48];

        memcpy(&slot, p + where, sizeof(slot));
        snprintf(what, sizeof(what), "device slot %" PRIu32 " tag", i);
        r = parse_id(slot.tag, tag, what, where, why, why_len);
        if (r < 0)
            goto fail;
        /* The kernel opens the cookie named by the tag; nydusd serves the blob-table id. */
        if (strcmp(tag, b->id)) {
            r = BAD("device slot %" PRIu32 " tag @%" PRIu64 ": \"%s\" differs from blob table entry %" PRIu32 " id \"%s\"",
                    i, where, tag, i, b->id);
            goto fail;
        }
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(out->blobs[j].id, b->id)) {
                r = BAD("device slot %" PRIu32 " tag @%" PRIu64 ": blob id %s duplicates slot %" PRIu32, i, where,
                        b->id, j);
                goto fail;
            }
        b->dev_blocks = le32toh(slot.blocks);
        b->dev_mapped_blkaddr = le32toh(slot.mapped_blkaddr);
        uint64_t bw = where + offsetof(struct erofs_deviceslot_disk, blocks);
        if (b->dev_blocks == 0) {
            r = BAD("device slot %" PRIu32 " blocks @%" PRIu64 ": 0", i, bw);
            goto fail;
        }
        /* The kernel sizes the device from blocks; copen uses uncompressed_size. */
        if ((uint64_t)b->dev_blocks != b->uncompressed_size / RAFS_BLOCK_SIZE &&
            (uint64_t)b->dev_blocks != cfn_align_up(b->uncompressed_size, RAFS_BLOCK_SIZE) / RAFS_BLOCK_SIZE) {
            r = BAD("device slot %" PRIu32 " blocks @%" PRIu64 ": %" PRIu32 " disagrees with blob %s uncompressed_size %" PRIu64,
                    i, bw, b->dev_blocks, b->id, b->uncompressed_size);
            goto fail;
        }
        /* A flatdev address inside the bootstrap would redirect its own reads. */
        if (b->dev_mapped_blkaddr && (uint64_t)b->dev_mapped_blkaddr < len / RAFS_BLOCK_SIZE) {
            r = BAD("device slot %" PRIu32 " mapped_blkaddr @%" PRIu64 ": block %" PRIu32 " lies inside the %zu-block bootstrap",
                    i, where + offsetof(struct erofs_deviceslot_disk, mapped_blkaddr), b->dev_mapped_blkaddr,
                    len / RAFS_BLOCK_SIZE);
            goto fail;
        }
        if ((out->flags & RAFS_SUPER_INLINED_CHUNK_DIGEST) && !(b->features & RAFS_BLOB_INLINED_CHUNK_DIGEST)) {
            r = BAD("ext superblock s_flags @%zu: INLINED_CHUNK_DIGEST set but blob %s features @%" PRIu64 " lack it",
                    EXT_OFF(s_flags), b->id,
                    bt + (uint64_t)i * sizeof(struct rafs_v6_blob_disk) + offsetof(struct rafs_v6_blob_disk, features));
            goto fail;
        }
    }

    if (pts && pt) {
        uint32_t n = (uint32_t)(pts / sizeof(uint32_t));
        out->prefetch_nids = calloc(n, sizeof(uint32_t));
        if (!out->prefetch_nids) {
            r = -ENOMEM;
            goto fail;
        }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t nid;
            memcpy(&nid, p + pt + (uint64_t)i * 4, 4);
            nid = le32toh(nid);
            if (!nid)
                break;      /* 0 terminates the list */
            if (meta_off + ((uint64_t)nid + 1) * RAFS_INODE_SLOT_SIZE > len) {
                r = BAD("prefetch table entry %" PRIu32 " @%" PRIu64 ": nid %" PRIu32 " lies past the bootstrap", i,
                        pt + (uint64_t)i * 4, nid);
                goto fail;
            }
            out->prefetch_nids[out->prefetch_count++] = nid;
        }
    }
    return 0;

fail:
    rafs_bootstrap_clear(out);
    return r;
}

void rafs_bootstrap_clear(RafsBootstrap *bs)
{
    free(bs->blobs);
    free(bs->prefetch_nids);
    memset(bs, 0, sizeof(*bs));
}

const RafsBlob *rafs_bootstrap_find_blob(const RafsBootstrap *bs, const char *id)
{
    for (uint32_t i = 0; i < bs->blob_count; i++)
        if (!strcmp(bs->blobs[i].id, id))
            return &bs->blobs[i];
    return NULL;
}

int rafs_bootstrap_blob_info(const RafsBlob *rb, BlobInfo **ret)
{
    BlobInfo *b;
    int r = blob_info_new(&b, rb->id, rb->chunk_count);
    if (r < 0)
        return r;
    b->compressed_size = rb->compressed_size;
    b->uncompressed_size = rb->uncompressed_size;
    b->compressed_data_size = rb->compressed_data_size;
    b->chunk_size = rb->chunk_size;
    b->compressor = rb->compressor;
    b->digester = rb->digester;
    b->features = rb->features;
    *ret = b;
    return 0;
}

int rafs_chunk_table_digests(const void *table, size_t table_len, uint32_t blob_index, BlobInfo *blob,
                             char *why, size_t why_len)
{
    const size_t esz = sizeof(struct rafs_v5_chunk_info_disk);
    if (table_len % esz)
        return BAD("chunk table of %zu bytes is not a whole number of %zu-byte entries", table_len, esz);
    if (!blob->chunk_count)
        return why_fail(-ENOENT, why, why_len, "the blob has no chunks");
    uint8_t (*digests)[BLOB_DIGEST_SIZE] = calloc(blob->chunk_count, BLOB_DIGEST_SIZE);
    uint8_t *seen = calloc(blob->chunk_count, 1);
    uint32_t *crcs = calloc(blob->chunk_count, sizeof(*crcs));
    int r = digests && seen && crcs ? 0 : -ENOMEM;
    uint32_t covered = 0;
    for (size_t k = 0; r == 0 && k < table_len / esz; k++) {
        struct rafs_v5_chunk_info_disk e;
        memcpy(&e, (const uint8_t *)table + k * esz, esz);
        if (le32toh(e.blob_index) != blob_index)
            continue;
        uint32_t i = le32toh(e.index), flags = le32toh(e.flags);
        if (i >= blob->chunk_count) {
            r = BAD("chunk table entry %zu: ci index %" PRIu32 " is past the %" PRIu32 " chunks of the blob", k, i,
                    blob->chunk_count);
            break;
        }
        const BlobChunkInfo *c = &blob->chunks[i];
        if (le64toh(e.uncompressed_offset) != c->uncompressed_offset ||
            le32toh(e.uncompressed_size) != c->uncompressed_size) {
            r = BAD("chunk table entry %zu: chunk %" PRIu32 " at [%" PRIu64 ", +%" PRIu32 "), the blob meta says [%"
                    PRIu64 ", +%" PRIu32 ")", k, i, (uint64_t)le64toh(e.uncompressed_offset),
                    le32toh(e.uncompressed_size), c->uncompressed_offset, c->uncompressed_size);
            break;
        }
        if (seen[i] && memcmp(digests[i], e.block_id, BLOB_DIGEST_SIZE) != 0) {
            r = BAD("chunk table entry %zu: chunk %" PRIu32 " listed twice with different digests", k, i);
            break;
        }
        if (!seen[i])
            covered++;
        seen[i] |= 1;
        memcpy(digests[i], e.block_id, BLOB_DIGEST_SIZE);
        if (flags & RAFS_V5_CHUNK_HAS_CRC32) {
            crcs[i] = le32toh(e.crc32);
            seen[i] |= 2;
        }
    }
    if (r == 0 && covered == 0)
        r = why_fail(-ENOENT, why, why_len, "the chunk table lists no chunk of blob %s", blob->id);
    else if (r == 0 && covered != blob->chunk_count)
        r = BAD("the chunk table covers %" PRIu32 " of the %" PRIu32 " chunks of blob %s", covered, blob->chunk_count,
                blob->id);
    if (r == 0) {
        for (uint32_t i = 0; i < blob->chunk_count; i++) {
            BlobChunkInfo *c = &blob->chunks[i];
            if ((seen[i] & 2) && !(c->flags & (BLOB_CHUNK_HAS_CRC32 | BLOB_CHUNK_BATCH))) {
                c->flags |= BLOB_CHUNK_HAS_CRC32;
                c->crc32 = crcs[i];
            }
        }
        free(blob->digests);
        blob->digests = digests;
        digests = NULL;
    }
    free(digests);
    free(seen);
    free(crcs);
    return r;
}
