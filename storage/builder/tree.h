/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The in-memory source tree of nydus-mkimage: one MkNode per directory entry,
 * children sorted by name bytes, hardlinks pointing at their primary node.
 * Built by walk.c, chunked by blob_writer.c, laid out by erofs_writer.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage/util/macros.h"

/* Deepest directory nesting accepted (each level holds one fd while walked). */
#define MK_MAX_DEPTH 512

typedef struct MkXattr {
    uint8_t index;                  /* EROFS_XATTR_INDEX_* */
    uint8_t suffix_len;
    char *suffix;                   /* name without the prefix, not NUL-terminated on disk */
    uint16_t value_len;
    uint8_t *value;
} MkXattr;

typedef struct MkNode MkNode;

/* Where erofs_writer.c put an inode (primary nodes only). */
typedef struct MkInodeLayout {
    uint64_t offset;                /* byte offset of the inode in the bootstrap */
    uint64_t nid;
    uint32_t ino;                   /* 1-based, dense */
    uint8_t datalayout;             /* EROFS_INODE_* */
    uint16_t xattr_icount;
    uint32_t meta_size;             /* inode + xattrs (+ chunk indexes or inline tail) */
    uint64_t data_size;             /* dirents or symlink bytes (i_size for dirs/symlinks) */
    uint32_t data_blocks;           /* whole blocks stored at raw_blkaddr */
    uint32_t raw_blkaddr;
} MkInodeLayout;

struct MkNode {
    char *name;                     /* entry name; "/" for the root */
    size_t name_len;
    MkNode *parent;                 /* NULL for the root */
    MkNode *primary;                /* hardlink alias: the node that owns the inode */

    mode_t mode;
    uint32_t uid, gid;
    uint64_t rdev;
    uint64_t size;                  /* st_size of regular files; symlink target length */
    int64_t mtime;
    uint32_t mtime_nsec;
    uint32_t nlink;                 /* links inside the tree (dirs: 2 + subdirs) */

    char *symlink;                  /* target bytes (symlinks) */
    MkXattr *xattrs;                /* sorted by (index, suffix) */
    size_t nxattrs;

    MkNode **children;              /* sorted by name bytes */
    size_t nchildren;

    uint32_t *chunk_ci;             /* regular files: ci index of each chunk */
    uint64_t nchunks;

    MkInodeLayout lay;
};

typedef struct MkTree {
    MkNode *root;
    uint64_t inodes;                /* primary nodes (hardlinks counted once) */
    bool has_xattrs;
} MkTree;

/* Called once per regular file inode (not again for its hardlinks) with an open fd. */
typedef int (*mk_file_fn)(void *opaque, MkNode *node, int fd);

/*
 * Walk `path` (a directory) in sorted order. Every non-directory inode with
 * several names in the tree becomes one primary node plus aliases. Returns 0
 * or -errno; the reason is printed to stderr.
 */
int mk_tree_walk(const char *path, mk_file_fn on_file, void *opaque, MkTree **ret);
MkTree *mk_tree_free(MkTree *tree);
static inline void mk_tree_freep(MkTree **t) { mk_tree_free(*t); }

/* The node's path inside the tree ("/a/b"), malloc'd, for messages. NULL on ENOMEM. */
char *mk_node_path(const MkNode *node);

/* The node that owns the inode of `node`. */
static inline MkNode *mk_node_inode(MkNode *node) { return node->primary ? node->primary : node; }

/* Split an xattr name into its erofs prefix index and suffix; -EOPNOTSUPP for other prefixes. */
int mk_xattr_split(const char *name, uint8_t *index, const char **suffix);
/* Sort node->xattrs as erofs stores them; -EINVAL on a duplicate name. */
int mk_node_sort_xattrs(MkNode *node);

/* Print "nydus-mkimage: <message>" to stderr. */
void mk_err(const char *fmt, ...) _printf_(1, 2);
