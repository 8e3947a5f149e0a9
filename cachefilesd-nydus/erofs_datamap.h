/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Which blocks of a plain (single-file) erofs image are regular-file data.
 *
 * erofs reads its metadata (superblock, inodes, xattrs, inline tails,
 * chunk and compression indexes) straight from the backing file's page
 * cache, bypassing the fanotify pre-content hook: those blocks must be in
 * the cache file before mount(2). Only file data is read through the hook
 * and may stay sparse. This walks the directory tree of the complete local
 * image and marks the blocks of uncompressed regular-file data (flat and
 * chunk-based layouts); everything else, including anything it does not
 * understand (compressed files), counts as metadata, so the error is always
 * "prefilled too much", never "left metadata out".
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct ErofsDataMap {
    uint64_t blocks;            /* 4 KiB blocks in the image */
    uint8_t *data;              /* one bit per block: 1 = file data, may be lazy */
    uint64_t data_blocks;
    uint64_t inodes;            /* inodes visited */
} ErofsDataMap;

/* Blocking (pread): run it on a worker. Returns 0 or -errno with a reason in why. */
int erofs_datamap_build(int image_fd, uint64_t image_size, ErofsDataMap *map, char *why, size_t why_len);
void erofs_datamap_clear(ErofsDataMap *map);

static inline int erofs_datamap_is_data(const ErofsDataMap *m, uint64_t blk)
{
    return blk < m->blocks && (m->data[blk / 8] >> (blk % 8)) & 1;
}
