/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Nydus RAFS v6 on-disk structures that the kernel never reads: the
 * extended superblock, the blob table, the blob-meta ("ci") header and
 * entries, batch/zran contexts, the blob TOC and the reverse-tar header.
 * See docs/nydus-format.md for the byte layouts and their history.
 *
 * Every multi-byte field is little-endian. Structures are packed and
 * size-checked; read them with memcpy from an untrusted buffer, then
 * convert each field with le*toh (or the accessors below).
 */
#pragma once

#include <endian.h>
#include <stddef.h>
#include <stdint.h>

/* ---- RAFS v5 (FUSE-only format, not served) --------------------------- */

/* A v5 superblock starts the file with this magic ('RAFS'); a v6 one has zeros there. */
#define RAFS_V5_SUPER_MAGIC 0x52414653u
#define RAFS_V5_NOT_SUPPORTED "RAFS v5 is not supported (v6 only)"

static inline int rafs_is_v5(const void *buf, size_t len)
{
    uint32_t magic;
    if (len < sizeof(magic))
        return 0;
    __builtin_memcpy(&magic, buf, sizeof(magic));
    return le32toh(magic) == RAFS_V5_SUPER_MAGIC;
}

/* ---- bootstrap file map ------------------------------------------------ */

#define RAFS_BLOCK_SIZE 4096u
#define RAFS_BLOCK_BITS 12
#define RAFS_INODE_SLOT_SIZE 32u              /* erofs: inode at meta_blkaddr * 4096 + nid * 32 */
#define RAFS_EXT_SUPER_OFFSET 1152u         /* right after the erofs superblock */
#define RAFS_EXT_SUPER_SIZE 256u
#define RAFS_DEVT_OFFSET 1408u              /* device table, s_devt_slotoff = 11 */
#define RAFS_DEVT_SLOTOFF 11u
#define RAFS_BLOB_ID_LEN 64u                /* hex sha256, NUL padded if shorter */
#define RAFS_MAX_BLOBS 255u                 /* device id is 8 bits and 0 is the bootstrap */

#define RAFS_MIN_CHUNK_SIZE 0x1000u
#define RAFS_MAX_CHUNK_SIZE 0x1000000u      /* 16 MiB */
#define RAFS_MAX_CHUNKS_PER_BLOB (1u << 24)
#define RAFS_BLOB_MAX_COMPRESSED_SIZE (UINT64_C(1) << 40)
#define RAFS_BLOB_MAX_UNCOMPRESSED_SIZE (UINT64_C(1) << 44)

/* RafsSuperFlags (ext superblock s_flags). */
#define RAFS_SUPER_COMPRESSION_NONE     UINT64_C(0x00000001)
#define RAFS_SUPER_COMPRESSION_LZ4      UINT64_C(0x00000002)
#define RAFS_SUPER_HASH_BLAKE3          UINT64_C(0x00000004)
#define RAFS_SUPER_HASH_SHA256          UINT64_C(0x00000008)
#define RAFS_SUPER_EXPLICIT_UID_GID     UINT64_C(0x00000010)
#define RAFS_SUPER_HAS_XATTR            UINT64_C(0x00000020)
#define RAFS_SUPER_COMPRESSION_GZIP     UINT64_C(0x00000040)
#define RAFS_SUPER_COMPRESSION_ZSTD     UINT64_C(0x00000080)
#define RAFS_SUPER_INLINED_CHUNK_DIGEST UINT64_C(0x00000100)
#define RAFS_SUPER_TARTFS_MODE          UINT64_C(0x00000200)
#define RAFS_SUPER_ENCRYPTION_NONE      UINT64_C(0x01000000)   /* PRESERVED_COMPAT_7 before v2.3 */
#define RAFS_SUPER_ENCRYPTION_AES128XTS UINT64_C(0x02000000)
#define RAFS_SUPER_PRESERVED_COMPAT     UINT64_C(0xfc000000)   /* PRESERVED_COMPAT_5..0 */
#define RAFS_SUPER_COMPRESSION_MASK \
    (RAFS_SUPER_COMPRESSION_NONE | RAFS_SUPER_COMPRESSION_LZ4 | \
     RAFS_SUPER_COMPRESSION_GZIP | RAFS_SUPER_COMPRESSION_ZSTD)
#define RAFS_SUPER_HASH_MASK (RAFS_SUPER_HASH_BLAKE3 | RAFS_SUPER_HASH_SHA256)
#define RAFS_SUPER_KNOWN_FLAGS UINT64_C(0xff0003ff)

/* Algorithm ids in the blob table, the ci header and ci_compressor. */
#define RAFS_COMPRESSOR_NONE 0u
#define RAFS_COMPRESSOR_LZ4_BLOCK 1u
#define RAFS_COMPRESSOR_GZIP 2u
#define RAFS_COMPRESSOR_ZSTD 3u
#define RAFS_DIGESTER_BLAKE3 0u
#define RAFS_DIGESTER_SHA256 1u
#define RAFS_CIPHER_NONE 0u
#define RAFS_CIPHER_AES128XTS 1u

/* BlobFeatures (blob table `features`, ci header `s_features`). */
#define RAFS_BLOB_ALIGNED                0x00000001u
#define RAFS_BLOB_INLINED_FS_META        0x00000002u
#define RAFS_BLOB_CHUNK_INFO_V2          0x00000004u
#define RAFS_BLOB_ZRAN                   0x00000008u
#define RAFS_BLOB_SEPARATE               0x00000010u
#define RAFS_BLOB_INLINED_CHUNK_DIGEST   0x00000020u
#define RAFS_BLOB_TARFS                  0x00000040u
#define RAFS_BLOB_BATCH                  0x00000080u
#define RAFS_BLOB_ENCRYPTED              0x00000100u
#define RAFS_BLOB_IS_CHUNKDICT_GENERATED 0x00000200u
#define RAFS_BLOB_IS_SEPARATED_WITH_PREFETCH_FILES 0x00000400u
#define RAFS_BLOB_EXTERNAL               0x00000800u
#define RAFS_BLOB_HAS_TAR_HEADER         0x10000000u
#define RAFS_BLOB_HAS_TOC                0x20000000u
#define RAFS_BLOB_CAP_TAR_TOC            0x40000000u
#define RAFS_BLOB_V5_NO_EXT_BLOB_TABLE   0x80000000u    /* internal to nydus, rejected on disk */
/* nydusd: (features & 0xffff & ~INCOMPAT) must be 0 (0x003f in v2.2, 0x0fff since v2.3). */
#define RAFS_BLOB_INCOMPAT_MASK          0x00000fffu

/* ---- extended superblock @1152 ---------------------------------------- */

struct rafs_v6_super_block_ext_disk {
    uint64_t s_flags;                       /* @0    RafsSuperFlags */
    uint64_t s_blob_table_offset;           /* @8 */
    uint32_t s_blob_table_size;             /* @16   multiple of 256 */
    uint32_t s_chunk_size;                  /* @20 */
    uint64_t s_chunk_table_offset;          /* @24   RafsV5ChunkInfo[] */
    uint64_t s_chunk_table_size;            /* @32   multiple of 80 */
    uint64_t s_prefetch_table_offset;       /* @40   u32 nids */
    uint32_t s_prefetch_table_size;         /* @48   bytes */
    uint32_t s_padding;                     /* @52 */
    uint8_t s_reserved[200];                /* @56 */
} __attribute__((packed));

/* ---- blob table entry (RafsV6Blob), 256 bytes -------------------------- */

/*
 * Offsets 104..220 changed meaning over time (docs §1.5, §7): v2.1 had
 * reserved1 / ci_digest (must be zero) / reserved; v2.2 added the TOC and
 * separate-meta fields; v2.3 added the cipher. Zero in the newer fields
 * means "absent", so one reader handles every layout.
 */
struct rafs_v6_blob_disk {
    uint8_t blob_id[RAFS_BLOB_ID_LEN];      /* @0    ASCII hex, NUL padded */
    uint32_t blob_index;                    /* @64   == position in the table */
    uint32_t chunk_size;                    /* @68   == s_chunk_size */
    uint32_t chunk_count;                   /* @72   ci entries */
    uint32_t compression_algo;              /* @76   RAFS_COMPRESSOR_* */
    uint32_t digest_algo;                   /* @80   RAFS_DIGESTER_* */
    uint32_t features;                      /* @84   RAFS_BLOB_* (v2.1: meta_features) */
    uint64_t compressed_size;               /* @88   v2.2+: whole blob file; v2.1: chunk bytes */
    uint64_t uncompressed_size;             /* @96   cache file size */
    union {
        uint32_t blob_toc_size;             /* @104  v2.2+: TOC entries + 512, 0 = unknown */
        uint32_t reserved1;                 /*       v2.1 */
    };
    uint32_t ci_compressor;                 /* @108 */
    uint64_t ci_offset;                     /* @112  compressed ci inside the blob */
    uint64_t ci_compressed_size;            /* @120 */
    uint64_t ci_uncompressed_size;          /* @128 */
    union {
        uint8_t blob_toc_digest[32];        /* @136  v2.2+: sha256(TOC entries || tar header) */
        uint8_t ci_digest[32];              /*       v2.1: must be zero */
    };
    union {
        uint8_t blob_meta_digest[32];       /* @168  SEPARATE: sha256 of the RAFS blob */
        uint8_t cipher_key[32];             /*       encrypted: AES-128-XTS key */
    };
    union {
        uint64_t blob_meta_size;            /* @200  SEPARATE: size of the RAFS blob */
        uint8_t cipher_iv_lo[8];            /*       encrypted: IV bytes 0..7 */
    };
    uint8_t cipher_iv[8];                   /* @208  v2.3+: IV bytes 8..15 */
    uint32_t cipher_algo;                   /* @216  v2.3+: RAFS_CIPHER_* */
    uint8_t reserved2[36];                  /* @220 */
} __attribute__((packed));

/* ---- chunk table entry (RafsV5ChunkInfo), 80 bytes; FUSE mode only ----- */

#define RAFS_V5_CHUNK_COMPRESSED 0x1u
#define RAFS_V5_CHUNK_ENCRYPTED 0x4u
#define RAFS_V5_CHUNK_BATCH 0x8u
#define RAFS_V5_CHUNK_HAS_CRC32 0x10u

struct rafs_v5_chunk_info_disk {
    uint8_t block_id[32];                   /* @0    chunk digest */
    uint32_t blob_index;                    /* @32 */
    uint32_t flags;                         /* @36   RAFS_V5_CHUNK_* */
    uint32_t compressed_size;               /* @40 */
    uint32_t uncompressed_size;             /* @44 */
    uint64_t compressed_offset;             /* @48 */
    uint64_t uncompressed_offset;           /* @56 */
    uint64_t file_offset;                   /* @64 */
    uint32_t index;                         /* @72   ci index */
    uint32_t crc32;                         /* @76   v2.3.2+ */
} __attribute__((packed));

/* ---- chunk index of a chunk-based inode (RafsV6InodeChunkAddr), 8 bytes - */

struct rafs_v6_inode_chunk_addr_disk {
    uint16_t c_blob_addr_lo;                /* ci index bits 0..15 */
    uint16_t c_blob_addr_hi;                /* bits 0..7 blob index + 1, bits 8..15 ci index bits 16..23 */
    uint32_t c_blk_addr;                    /* uncompressed offset / 4096 */
} __attribute__((packed));

/* Blob index (0-based), or -1 for the invalid device id 0. */
static inline int rafs_chunk_addr_blob_index(const struct rafs_v6_inode_chunk_addr_disk *a)
{
    unsigned dev = le16toh(a->c_blob_addr_hi) & 0xffu;
    return dev ? (int)dev - 1 : -1;
}

static inline uint32_t rafs_chunk_addr_ci_index(const struct rafs_v6_inode_chunk_addr_disk *a)
{
    return ((uint32_t)(le16toh(a->c_blob_addr_hi) >> 8) << 16) | le16toh(a->c_blob_addr_lo);
}

/* ---- blob meta header (BlobCompressionContextHeader), 4096 bytes ------- */

#define RAFS_CI_MAGIC 0xB10BB10Bu
#define RAFS_CI_HEADER_SIZE 4096u
#define RAFS_CI_V1_MAX_SIZE (RAFS_MAX_CHUNK_SIZE * UINT64_C(16))    /* 256 MiB, round_up_4k(ci) */
#define RAFS_CI_V2_MAX_SIZE (RAFS_MAX_CHUNK_SIZE * UINT64_C(24))    /* 384 MiB */

struct rafs_ci_header_disk {
    uint32_t s_magic;                       /* @0    RAFS_CI_MAGIC */
    uint32_t s_features;                    /* @4    RAFS_BLOB_* (not compared, see docs §2.3) */
    uint32_t s_ci_compressor;               /* @8 */
    uint32_t s_ci_entries;                  /* @12 */
    uint64_t s_ci_offset;                   /* @16 */
    uint64_t s_ci_compressed_size;          /* @24 */
    uint64_t s_ci_uncompressed_size;        /* @32 */
    uint64_t s_ci_zran_offset;              /* @40   ZRAN/BATCH: context array offset in the ci */
    uint64_t s_ci_zran_size;                /* @48 */
    uint32_t s_ci_zran_count;               /* @56 */
    uint8_t s_reserved[4032];               /* @60 */
    uint32_t s_magic2;                      /* @4092 RAFS_CI_MAGIC */
} __attribute__((packed));

/* ---- chunk info V1 (BlobChunkInfoV1Ondisk), 16 bytes ------------------- */

/*
 * uncomp_info: 63..44 (usize-1) bits 0..19 | 43..12 uoff bits 12..43 |
 *              11..8 (usize-1) bits 20..23 | 7..0 reserved
 * comp_info:   63..44 (csize-1) bits 0..19 | 43..40 (csize-1) bits 20..23 |
 *              39..0 coff
 * A V1 chunk is compressed iff csize != usize.
 */
struct rafs_chunk_info_v1_disk {
    uint64_t uncomp_info;
    uint64_t comp_info;
} __attribute__((packed));

static inline uint64_t rafs_ci_v1_uncompressed_offset(const struct rafs_chunk_info_v1_disk *e)
{
    return le64toh(e->uncomp_info) & 0xffffffff000ull;
}

static inline uint32_t rafs_ci_v1_uncompressed_size(const struct rafs_chunk_info_v1_disk *e)
{
    uint64_t u = le64toh(e->uncomp_info);
    return (uint32_t)((u >> 44) | ((u & 0xf00ull) << 12)) + 1;
}

static inline uint64_t rafs_ci_v1_compressed_offset(const struct rafs_chunk_info_v1_disk *e)
{
    return le64toh(e->comp_info) & 0xffffffffffull;
}

static inline uint32_t rafs_ci_v1_compressed_size(const struct rafs_chunk_info_v1_disk *e)
{
    uint64_t c = le64toh(e->comp_info);
    return (uint32_t)((c >> 44) | ((c & 0xf0000000000ull) >> 20)) + 1;
}

/* Encode (builder side). Sizes 1..16 MiB, uoff 4 KiB aligned < 2^44, coff < 2^40. */
static inline void rafs_ci_v1_encode(struct rafs_chunk_info_v1_disk *e, uint64_t coff, uint32_t csize,
                                     uint64_t uoff, uint32_t usize)
{
    uint64_t us = (uint64_t)usize - 1, cs = (uint64_t)csize - 1;
    uint64_t u = ((us & 0xfffffull) << 44) | (uoff & 0xffffffff000ull) | ((us & 0xf00000ull) >> 12);
    uint64_t c = ((cs & 0xfffffull) << 44) | ((cs & 0xf00000ull) << 20) | (coff & 0xffffffffffull);
    e->uncomp_info = htole64(u);
    e->comp_info = htole64(c);
}

/* ---- chunk info V2 (BlobChunkInfoV2Ondisk), 24 bytes ------------------- */

/*
 * uncomp_info: 63..56 flags | 55..32 usize-1 | 31..0 uoff >> 12
 * comp_info:   63..40 csize (not minus one) | 39..0 coff
 * data:        ZRAN: hi32 zran index, lo32 offset in the context output
 *              BATCH: hi32 batch index, lo32 offset in the batch buffer
 *              HAS_CRC32: lo32 crc32c of the uncompressed chunk
 */
#define RAFS_CI_V2_COMPRESSED 0x01u
#define RAFS_CI_V2_ZRAN 0x02u
#define RAFS_CI_V2_BATCH 0x04u
#define RAFS_CI_V2_ENCRYPTED 0x08u
#define RAFS_CI_V2_HAS_CRC32 0x10u
#define RAFS_CI_V2_KNOWN_FLAGS 0x1fu

struct rafs_chunk_info_v2_disk {
    uint64_t uncomp_info;
    uint64_t comp_info;
    uint64_t data;
} __attribute__((packed));

static inline unsigned rafs_ci_v2_flags(const struct rafs_chunk_info_v2_disk *e)
{
    return (unsigned)(le64toh(e->uncomp_info) >> 56);
}

static inline uint64_t rafs_ci_v2_uncompressed_offset(const struct rafs_chunk_info_v2_disk *e)
{
    return (le64toh(e->uncomp_info) & 0xffffffffull) << 12;
}

static inline uint32_t rafs_ci_v2_uncompressed_size(const struct rafs_chunk_info_v2_disk *e)
{
    return (uint32_t)((le64toh(e->uncomp_info) >> 32) & 0xffffffull) + 1;
}

static inline uint64_t rafs_ci_v2_compressed_offset(const struct rafs_chunk_info_v2_disk *e)
{
    return le64toh(e->comp_info) & 0xffffffffffull;
}

static inline uint32_t rafs_ci_v2_compressed_size(const struct rafs_chunk_info_v2_disk *e)
{
    return (uint32_t)(le64toh(e->comp_info) >> 40);
}

static inline uint32_t rafs_ci_v2_data_hi(const struct rafs_chunk_info_v2_disk *e)
{
    return (uint32_t)(le64toh(e->data) >> 32);
}

static inline uint32_t rafs_ci_v2_data_lo(const struct rafs_chunk_info_v2_disk *e)
{
    return (uint32_t)le64toh(e->data);
}

/* Encode (builder side). usize 1..16 MiB, csize < 16 MiB, uoff 4 KiB aligned. */
static inline void rafs_ci_v2_encode(struct rafs_chunk_info_v2_disk *e, uint64_t coff, uint32_t csize,
                                     uint64_t uoff, uint32_t usize, unsigned flags, uint64_t data)
{
    uint64_t u = ((uint64_t)(flags & 0xffu) << 56) | ((((uint64_t)usize - 1) & 0xffffffull) << 32) |
                 ((uoff >> 12) & 0xffffffffull);
    uint64_t c = (((uint64_t)csize & 0xffffffull) << 40) | (coff & 0xffffffffffull);
    e->uncomp_info = htole64(u);
    e->comp_info = htole64(c);
    e->data = htole64(data);
}

/* ---- contexts after the ci entries (same decompressed ci blob) --------- */

struct rafs_batch_ctx_disk {
    uint32_t compressed_size;               /* @0    whole batch, compressed */
    uint32_t uncompressed_batch_size;       /* @4    not 4 KiB aligned */
    uint8_t reserved[32];                   /* @8 */
} __attribute__((packed));

#define RAFS_ZRAN_MAX_DICT_SIZE 32768u

struct rafs_zran_ctx_disk {
    uint64_t in_offset;                     /* @0    gzip stream offset */
    uint64_t out_offset;                    /* @8    decompressed tar offset */
    uint64_t dict_offset;                   /* @16   inside the dictionary table */
    uint32_t in_len;                        /* @24 */
    uint32_t out_len;                       /* @28 */
    uint32_t dict_size;                     /* @32 */
    uint8_t ctx_byte;                       /* @36   inflatePrime value */
    uint8_t ctx_bits;                       /* @37   inflatePrime bits */
    uint16_t reserved;                      /* @38 */
} __attribute__((packed));

/* ---- blob TOC (TocEntry), 128 bytes ----------------------------------- */

#define RAFS_TOC_ENTRY_SIZE 128u
#define RAFS_TOC_NAME_LEN 16u
#define RAFS_TOC_COMPRESSION_NONE 0x1u
#define RAFS_TOC_COMPRESSION_ZSTD 0x2u
#define RAFS_TOC_COMPRESSION_LZ4_BLOCK 0x4u
#define RAFS_TOC_COMPRESSION_MASK 0xfu
#define RAFS_TOC_MIN_SIZE 512u                  /* explicit blob_toc_size limits */
#define RAFS_TOC_MAX_SIZE 0x10000u
#define RAFS_TOC_AUTODETECT_SIZE 0x1000u        /* tail read when the size is unknown */

#define RAFS_TOC_NAME_BLOB_RAW "image.blob"
#define RAFS_TOC_NAME_BOOTSTRAP "image.boot"
#define RAFS_TOC_NAME_BLOB_META "blob.meta"
#define RAFS_TOC_NAME_BLOB_META_HEADER "blob.meta.header"
#define RAFS_TOC_NAME_BLOB_DIGEST "blob.digest"
#define RAFS_TOC_NAME_TOC "rafs.blob.toc"

struct rafs_toc_entry_disk {
    uint32_t flags;                         /* @0    exactly one RAFS_TOC_COMPRESSION_* */
    uint32_t reserved1;                     /* @4 */
    uint8_t name[RAFS_TOC_NAME_LEN];        /* @8    NUL padded */
    uint8_t uncompressed_digest[32];        /* @24   sha256 of the uncompressed content */
    uint64_t compressed_offset;             /* @56 */
    uint64_t compressed_size;               /* @64 */
    uint64_t uncompressed_size;             /* @72 */
    uint8_t reserved2[48];                  /* @80   not always zero in the wild; ignored */
} __attribute__((packed));

/* ---- reverse-tar framing: a GNU tar header written after its data ------ */

#define RAFS_TAR_HEADER_SIZE 512u
#define RAFS_TAR_GNU_MAGIC "ustar  "        /* magic "ustar " + version " \0", 8 bytes @257 */

struct rafs_tar_header_disk {
    char name[100];                         /* @0 */
    char mode[8];                           /* @100 */
    char uid[8];                            /* @108 */
    char gid[8];                            /* @116 */
    char size[12];                          /* @124  octal, NUL terminated */
    char mtime[12];                         /* @136 */
    char chksum[8];                         /* @148  octal; sum with this field as spaces */
    char typeflag;                          /* @156  '0' regular */
    char linkname[100];                     /* @157 */
    char magic[8];                          /* @257  "ustar  \0" (GNU) */
    char uname[32];                         /* @265 */
    char gname[32];                         /* @297 */
    char devmajor[8];                       /* @329 */
    char devminor[8];                       /* @337 */
    char pad[167];                          /* @345 */
} __attribute__((packed));

_Static_assert(sizeof(struct rafs_v6_super_block_ext_disk) == 256, "RafsV6SuperBlockExt is 256 bytes");
_Static_assert(sizeof(struct rafs_v6_blob_disk) == 256, "RafsV6Blob is 256 bytes");
_Static_assert(sizeof(struct rafs_v5_chunk_info_disk) == 80, "RafsV5ChunkInfo is 80 bytes");
_Static_assert(sizeof(struct rafs_v6_inode_chunk_addr_disk) == 8, "RafsV6InodeChunkAddr is 8 bytes");
_Static_assert(sizeof(struct rafs_ci_header_disk) == 4096, "BlobCompressionContextHeader is 4096 bytes");
_Static_assert(sizeof(struct rafs_chunk_info_v1_disk) == 16, "chunk info V1 is 16 bytes");
_Static_assert(sizeof(struct rafs_chunk_info_v2_disk) == 24, "chunk info V2 is 24 bytes");
_Static_assert(sizeof(struct rafs_batch_ctx_disk) == 40, "BatchInflateContext is 40 bytes");
_Static_assert(sizeof(struct rafs_zran_ctx_disk) == 40, "ZranInflateContext is 40 bytes");
_Static_assert(sizeof(struct rafs_toc_entry_disk) == 128, "TocEntry is 128 bytes");
_Static_assert(sizeof(struct rafs_tar_header_disk) == 512, "tar header is 512 bytes");
_Static_assert(offsetof(struct rafs_v6_blob_disk, ci_offset) == 112, "RafsV6Blob.ci_offset @112");
_Static_assert(offsetof(struct rafs_v6_blob_disk, blob_toc_digest) == 136, "RafsV6Blob.blob_toc_digest @136");
_Static_assert(offsetof(struct rafs_v6_blob_disk, cipher_algo) == 216, "RafsV6Blob.cipher_algo @216");
_Static_assert(offsetof(struct rafs_ci_header_disk, s_ci_zran_count) == 56, "ci header s_ci_zran_count @56");
_Static_assert(offsetof(struct rafs_ci_header_disk, s_magic2) == 4092, "ci header s_magic2 @4092");
_Static_assert(offsetof(struct rafs_toc_entry_disk, uncompressed_size) == 72, "TocEntry.uncompressed_size @72");
_Static_assert(offsetof(struct rafs_tar_header_disk, magic) == 257, "tar magic @257");
