/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The erofs on-disk structures the daemon reads (little-endian, as the
 * kernel's struct erofs_super_block / erofs_deviceslot), and checked
 * accessors that never trust an image.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EROFS_SUPER_OFFSET 1024
#define EROFS_SUPER_MAGIC_V1 0xE0F5E1E2u
#define EROFS_DEVSLOT_SIZE 128
#define EROFS_DEVSLOT_TAG_SIZE 64

#define EROFS_FEATURE_INCOMPAT_CHUNKED_FILE 0x00000004u
#define EROFS_FEATURE_INCOMPAT_DEVICE_TABLE 0x00000008u
#define EROFS_FEATURE_COMPAT_RAFS_V6 0x40000000u

struct erofs_super_block_disk {
    uint32_t magic;
    uint32_t checksum;
    uint32_t feature_compat;
    uint8_t blkszbits;
    uint8_t sb_extslots;
    uint16_t root_nid;
    uint64_t inos;
    uint64_t build_time;
    uint32_t build_time_nsec;
    uint32_t blocks;
    uint32_t meta_blkaddr;
    uint32_t xattr_blkaddr;
    uint8_t uuid[16];
    uint8_t volume_name[16];
    uint32_t feature_incompat;
    uint16_t u1;                    /* available_compr_algs / lz4_max_distance */
    uint16_t extra_devices;
    uint16_t devt_slotoff;          /* device table offset, in 128-byte slots */
    uint8_t reserved[38];
} __attribute__((packed));

struct erofs_deviceslot_disk {
    uint8_t tag[EROFS_DEVSLOT_TAG_SIZE];
    uint32_t blocks;
    uint32_t mapped_blkaddr;
    uint8_t reserved[56];
} __attribute__((packed));

_Static_assert(sizeof(struct erofs_super_block_disk) == 128, "erofs superblock is 128 bytes");
_Static_assert(sizeof(struct erofs_deviceslot_disk) == 128, "erofs device slot is 128 bytes");

/* What the daemon needs from an erofs image head, host-endian and validated. */
typedef struct ErofsDevice {
    char tag[EROFS_DEVSLOT_TAG_SIZE + 1];   /* NUL-terminated copy */
    uint64_t size;                          /* blocks << blkszbits */
} ErofsDevice;

typedef struct ErofsImageInfo {
    uint32_t block_size;
    uint32_t feature_compat, feature_incompat;
    uint64_t blocks;                /* superblock s_blocks */
    uint16_t extra_devices;
    uint32_t devt_offset;           /* byte offset of the device table */
    ErofsDevice *devices;           /* extra_devices entries, malloc'd */
} ErofsImageInfo;

/* Bytes of the image head needed to parse the superblock. */
#define EROFS_SUPER_END (EROFS_SUPER_OFFSET + sizeof(struct erofs_super_block_disk))

/*
 * Parse the superblock from `buf` (the first `len` bytes of the image).
 * Returns 0, -EBADMSG for a bad image (with a reason in `why`), or -EAGAIN
 * with *need set when the device table lies beyond `len`.
 */
int erofs_image_parse(const void *buf, size_t len, ErofsImageInfo *out, size_t *need,
                      char *why, size_t why_len);
void erofs_image_info_clear(ErofsImageInfo *info);
