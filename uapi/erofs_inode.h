/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * erofs on-disk inode-area structures (little-endian, as the kernel's
 * include/linux/erofs_fs.h): inodes, inline xattrs, dirents and chunk
 * indexes. Only the subset RAFS v6 uses: no compression, no shared xattrs.
 */
#pragma once

#include <stdint.h>

#define EROFS_BLKSIZ_BITS 12
#define EROFS_BLKSIZ (1u << EROFS_BLKSIZ_BITS)
#define EROFS_ISLOT_BITS 5                      /* nid = (offset - meta) >> 5 */
#define EROFS_ISLOT_SIZE (1u << EROFS_ISLOT_BITS)
#define EROFS_NAME_LEN 255

/* i_format: bit 0 = inode version, bits 1..3 = data layout. */
#define EROFS_INODE_LAYOUT_COMPACT 0
#define EROFS_INODE_LAYOUT_EXTENDED 1
#define EROFS_I_VERSION_BIT 0
#define EROFS_I_DATALAYOUT_BIT 1
#define EROFS_I_DATALAYOUT_MASK 0x7

enum erofs_datalayout {
    EROFS_INODE_FLAT_PLAIN = 0,
    EROFS_INODE_FLAT_COMPRESSION_LEGACY = 1,
    EROFS_INODE_FLAT_INLINE = 2,
    EROFS_INODE_FLAT_COMPRESSION = 3,
    EROFS_INODE_CHUNK_BASED = 4,
};

static inline uint16_t erofs_i_format(unsigned version, unsigned datalayout)
{
    return (uint16_t)((version << EROFS_I_VERSION_BIT) | (datalayout << EROFS_I_DATALAYOUT_BIT));
}

/* i_u of a chunk-based inode. */
#define EROFS_CHUNK_FORMAT_BLKBITS_MASK 0x001F
#define EROFS_CHUNK_FORMAT_INDEXES 0x0020

struct erofs_inode_compact_disk {
    uint16_t i_format;
    uint16_t i_xattr_icount;
    uint16_t i_mode;
    uint16_t i_nlink;
    uint32_t i_size;
    uint32_t i_reserved;
    uint32_t i_u;                   /* raw_blkaddr / rdev / chunk format */
    uint32_t i_ino;
    uint16_t i_uid;
    uint16_t i_gid;
    uint32_t i_reserved2;
} __attribute__((packed));

struct erofs_inode_extended_disk {
    uint16_t i_format;
    uint16_t i_xattr_icount;
    uint16_t i_mode;
    uint16_t i_reserved;
    uint64_t i_size;
    uint32_t i_u;
    uint32_t i_ino;
    uint32_t i_uid;
    uint32_t i_gid;
    uint64_t i_mtime;
    uint32_t i_mtime_nsec;
    uint32_t i_nlink;
    uint8_t i_reserved2[16];
} __attribute__((packed));

/* Inline xattrs follow the inode; i_xattr_icount counts 4-byte units after the first. */
struct erofs_xattr_ibody_header_disk {
    uint32_t h_reserved;            /* h_name_filter in newer kernels: 0 = no filter */
    uint8_t h_shared_count;
    uint8_t h_reserved2[7];
} __attribute__((packed));

struct erofs_xattr_entry_disk {
    uint8_t e_name_len;             /* length of the name suffix */
    uint8_t e_name_index;           /* prefix index, EROFS_XATTR_INDEX_* */
    uint16_t e_value_size;
    /* name suffix, then value, the entry padded to 4 bytes */
} __attribute__((packed));

enum {
    EROFS_XATTR_INDEX_USER = 1,
    EROFS_XATTR_INDEX_POSIX_ACL_ACCESS = 2,
    EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT = 3,
    EROFS_XATTR_INDEX_TRUSTED = 4,
    EROFS_XATTR_INDEX_LUSTRE = 5,
    EROFS_XATTR_INDEX_SECURITY = 6,
};

/* Bytes of inline xattr area for an icount, and back (0 = no xattrs). */
static inline uint32_t erofs_xattr_ibody_size(uint16_t icount)
{
    return icount ? (uint32_t)sizeof(struct erofs_xattr_ibody_header_disk) + (icount - 1u) * 4u : 0;
}

struct erofs_dirent_disk {
    uint64_t nid;
    uint16_t nameoff;               /* from the start of the dir block */
    uint8_t file_type;
    uint8_t reserved;
} __attribute__((packed));

enum {
    EROFS_FT_UNKNOWN = 0,
    EROFS_FT_REG_FILE = 1,
    EROFS_FT_DIR = 2,
    EROFS_FT_CHRDEV = 3,
    EROFS_FT_BLKDEV = 4,
    EROFS_FT_FIFO = 5,
    EROFS_FT_SOCK = 6,
    EROFS_FT_SYMLINK = 7,
};

/* One per chunk of a chunk-based file, at align8(inode + xattrs). */
struct erofs_inode_chunk_index_disk {
    uint16_t advise;                /* RAFS: ci index bits 0..15 */
    uint16_t device_id;             /* bits 0..7 device (blob index + 1); RAFS: ci bits 16..23 in 8..15 */
    uint32_t blkaddr;               /* start block in that device */
} __attribute__((packed));

#define EROFS_NULL_ADDR 0xFFFFFFFFu

_Static_assert(sizeof(struct erofs_inode_compact_disk) == 32, "compact inode is 32 bytes");
_Static_assert(sizeof(struct erofs_inode_extended_disk) == 64, "extended inode is 64 bytes");
_Static_assert(sizeof(struct erofs_xattr_ibody_header_disk) == 12, "xattr header is 12 bytes");
_Static_assert(sizeof(struct erofs_xattr_entry_disk) == 4, "xattr entry is 4 bytes");
_Static_assert(sizeof(struct erofs_dirent_disk) == 12, "dirent is 12 bytes");
_Static_assert(sizeof(struct erofs_inode_chunk_index_disk) == 8, "chunk index is 8 bytes");
