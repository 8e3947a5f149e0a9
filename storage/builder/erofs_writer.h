/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The RAFS v6 bootstrap: erofs superblock, RAFS ext superblock, device
 * slot, blob table, then the erofs inode area (extended inodes, inline
 * xattrs, dirents, chunk indexes into device 1), dir/symlink blocks and the
 * v5 chunk table. Layout is computed once; the bootstrap can then be
 * emitted for several blob descriptions (the inlined copy and the final one).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "blob_writer.h"
#include "tree.h"

typedef struct MkLayout {
    MkNode **inodes;                /* primary nodes in inode (BFS) order */
    uint64_t ninodes;
    uint32_t meta_blkaddr;
    uint64_t data_start;            /* first dir/symlink data block, byte offset */
    uint64_t chunk_table_offset;
    uint64_t size;                  /* bootstrap size, 4 KiB aligned */
} MkLayout;

/* Assign nids, data layouts and block addresses; the tree must be fully chunked. */
int mk_erofs_layout(MkTree *tree, uint32_t chunk_count, MkLayout *lay);
void mk_erofs_layout_clear(MkLayout *lay);

/* Emit the bootstrap for one blob into a malloc'd buffer of lay->size bytes. */
int mk_bootstrap_build(const MkTree *tree, const MkLayout *lay, const MkBlobDesc *blob,
                       uint8_t **out);
