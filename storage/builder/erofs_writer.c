/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* erofs metadata of the bootstrap: layout (nids, blocks) and emission. */
#include "erofs_writer.h"

#include <endian.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "rafs_encode.h"
#include "uapi/erofs.h"
#include "uapi/erofs_inode.h"

#define MK_EXT_SB_OFFSET (EROFS_SUPER_OFFSET + 128)
#define MK_DEVT_SLOTOFF 11                      /* device table at 1408 = 11 * 128 */
#define MK_INODE_SIZE sizeof(struct erofs_inode_extended_disk)

/* One directory entry, "." and ".." included. */
typedef struct MkDirent {
    const char *name;
    size_t len;
    const MkNode *target;
} MkDirent;

static int dirent_cmp(const void *a, const void *b)
{
    const MkDirent *x = a, *y = b;
    int c = memcmp(x->name, y->name, CFN_MIN(x->len, y->len));
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* The sorted entries of a directory (names are distinct, so the order is total). */
static int dir_entries(const MkNode *dir, MkDirent **ret, size_t *ret_n)
{
    size_t n = dir->nchildren + 2;
    MkDirent *e = calloc(n, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e[0] = (MkDirent){ ".", 1, dir };
    e[1] = (MkDirent){ "..", 2, dir->parent ? dir->parent : dir };
    for (size_t i = 0; i < dir->nchildren; i++)
        e[i + 2] = (MkDirent){ dir->children[i]->name, dir->children[i]->name_len, dir->children[i] };
    qsort(e, n, sizeof(*e), dirent_cmp);
    *ret = e;
    *ret_n = n;
    return 0;
}

/* Bytes of directory data: dirents never straddle a block; i_size counts the padding. */
static uint64_t dir_data_size(const MkDirent *e, size_t n)
{
    uint64_t full = 0, used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t need = sizeof(struct erofs_dirent_disk) + e[i].len;
        if (used + need > EROFS_BLKSIZ) {
            full += EROFS_BLKSIZ;
            used = 0;
        }
        used += need;
    }
    return full + used;
}

static uint32_t xattr_body_size(const MkNode *n)
{
    if (!n->nxattrs)
        return 0;
    uint64_t s = sizeof(struct erofs_xattr_ibody_header_disk);
    for (size_t i = 0; i < n->nxattrs; i++)
        s += cfn_align_up(sizeof(struct erofs_xattr_entry_disk) + n->xattrs[i].suffix_len +
                          n->xattrs[i].value_len, 4);
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static uint8_t file_type(mode_t m)
{
    switch (m & S_IFMT) {
    case S_IFREG: return EROFS_FT_REG_FILE;
    case S_IFDIR: return EROFS_FT_DIR;
    case S_IFCHR: return EROFS_FT_CHRDEV;
    case S_IFBLK: return EROFS_FT_BLKDEV;
    case S_IFIFO: return EROFS_FT_FIFO;
    case S_IFSOCK: return EROFS_FT_SOCK;
    case S_IFLNK: return EROFS_FT_SYMLINK;
    default: return EROFS_FT_UNKNOWN;
    }
}

/* Breadth-first list of primary nodes: the root first, siblings together. */
static int collect_inodes(MkTree *tree, MkLayout *lay)
{
    if (tree->inodes > UINT32_MAX) {
        mk_err("%" PRIu64 " inodes: erofs inode numbers are 32 bits", tree->inodes);
        return -EFBIG;
    }
    lay->inodes = calloc(tree->inodes, sizeof(*lay->inodes));
    if (!lay->inodes)
        return -ENOMEM;
    uint64_t head = 0;
    lay->inodes[lay->ninodes++] = tree->root;
    while (head < lay->ninodes) {
        MkNode *d = lay->inodes[head++];
        for (size_t i = 0; i < d->nchildren; i++) {
            MkNode *c = d->children[i];
            if (c->primary)
                continue;
            if (lay->ninodes >= tree->inodes)
                return -EINVAL;
            lay->inodes[lay->ninodes++] = c;
        }
    }
    return lay->ninodes == tree->inodes ? 0 : -EINVAL;
}

/* Start an inode at pos, moving to the next block when `must_fit` bytes would cross one. */
static uint64_t place(uint64_t pos, uint64_t must_fit)
{
    pos = cfn_align_up(pos, EROFS_ISLOT_SIZE);
    if (must_fit <= EROFS_BLKSIZ && pos % EROFS_BLKSIZ + must_fit > EROFS_BLKSIZ)
        pos = cfn_align_up(pos, EROFS_BLKSIZ);
    if (must_fit > EROFS_BLKSIZ)
        pos = cfn_align_up(pos, EROFS_BLKSIZ);
    return pos;
}

int mk_erofs_layout(MkTree *tree, uint32_t chunk_count, MkLayout *lay)
{
    memset(lay, 0, sizeof(*lay));
    int r = collect_inodes(tree, lay);
    if (r < 0)
        return r;

    /* One blob: blob table at 4096, inodes one block after meta_blkaddr (root nid != 0). */
    uint64_t blob_table_end = cfn_align_up(MK_DEVT_SLOTOFF * EROFS_DEVSLOT_SIZE + EROFS_DEVSLOT_SIZE,
                                           EROFS_BLKSIZ) + MK_BLOB_ENTRY_SIZE;
    lay->meta_blkaddr = (uint32_t)(cfn_align_up(blob_table_end, EROFS_BLKSIZ) / EROFS_BLKSIZ);
    uint64_t meta_base = (uint64_t)lay->meta_blkaddr * EROFS_BLKSIZ;
    uint64_t pos = meta_base + EROFS_BLKSIZ;

    for (uint64_t i = 0; i < lay->ninodes; i++) {
        MkNode *n = lay->inodes[i];
        MkInodeLayout *l = &n->lay;
        l->ino = (uint32_t)(i + 1);
        uint32_t xsize = xattr_body_size(n);
        if (xsize > erofs_xattr_ibody_size(UINT16_MAX)) {
            _cleanup_free_ char *p = mk_node_path(n);
            mk_err("%s: inline xattrs take %u bytes, erofs holds at most %u", p ? p : "?", xsize,
                   erofs_xattr_ibody_size(UINT16_MAX));
            return -E2BIG;
        }
        l->xattr_icount = xsize ? (uint16_t)((xsize - sizeof(struct erofs_xattr_ibody_header_disk)) / 4 + 1) : 0;
        uint64_t base = MK_INODE_SIZE + xsize;

        if (S_ISREG(n->mode)) {
            l->datalayout = EROFS_INODE_CHUNK_BASED;
            l->meta_size = (uint32_t)(cfn_align_up(base, 8) + n->nchunks * sizeof(struct erofs_inode_chunk_index_disk));
            pos = place(pos, base);
        } else if (S_ISDIR(n->mode) || S_ISLNK(n->mode)) {
            if (S_ISDIR(n->mode)) {
                MkDirent *e;
                size_t ne;
                if ((r = dir_entries(n, &e, &ne)) < 0)
                    return r;
                l->data_size = dir_data_size(e, ne);
                free(e);
            } else {
                l->data_size = n->size;
            }
            uint64_t tail = l->data_size % EROFS_BLKSIZ;
            if (l->data_size / EROFS_BLKSIZ > UINT32_MAX) {
                _cleanup_free_ char *p = mk_node_path(n);
                mk_err("%s: directory too large", p ? p : "?");
                return -EFBIG;
            }
            if (tail && base + tail <= EROFS_BLKSIZ) {
                /* The tail shares the inode's block (the kernel requires that). */
                l->datalayout = EROFS_INODE_FLAT_INLINE;
                l->data_blocks = (uint32_t)(l->data_size / EROFS_BLKSIZ);
                l->meta_size = (uint32_t)(base + tail);
                pos = place(pos, base + tail);
            } else {
                l->datalayout = EROFS_INODE_FLAT_PLAIN;
                l->data_blocks = (uint32_t)cfn_align_up(l->data_size, EROFS_BLKSIZ) / EROFS_BLKSIZ;
                l->meta_size = (uint32_t)base;
                pos = place(pos, base);
            }
        } else {
            l->datalayout = EROFS_INODE_FLAT_PLAIN;
            l->meta_size = (uint32_t)base;
            pos = place(pos, base);
        }
        l->offset = pos;
        l->nid = (pos - meta_base) >> EROFS_ISLOT_BITS;
        pos += l->meta_size;
    }
    if (tree->root->lay.nid > UINT16_MAX)
        return -EINVAL;             /* cannot happen: the root is placed first */

    /* Whole data blocks of dirs and symlinks follow the inode area. */
    lay->data_start = cfn_align_up(pos, EROFS_BLKSIZ);
    uint64_t blk = lay->data_start / EROFS_BLKSIZ;
    for (uint64_t i = 0; i < lay->ninodes; i++) {
        MkInodeLayout *l = &lay->inodes[i]->lay;
        if (!l->data_blocks)
            continue;
        if (blk + l->data_blocks > UINT32_MAX) {
            mk_err("bootstrap larger than 16 TiB");
            return -EFBIG;
        }
        l->raw_blkaddr = (uint32_t)blk;
        blk += l->data_blocks;
    }
    lay->chunk_table_offset = blk * EROFS_BLKSIZ;
    lay->size = cfn_align_up(lay->chunk_table_offset + (uint64_t)chunk_count * MK_CHUNK_INFO_V5_SIZE,
                             EROFS_BLKSIZ);
    if (lay->size > SIZE_MAX / 2)
        return -EFBIG;
    return 0;
}

void mk_erofs_layout_clear(MkLayout *lay)
{
    free(lay->inodes);
    memset(lay, 0, sizeof(*lay));
}

static uint32_t encode_dev(uint64_t rdev)
{
    /* The kernel's new_encode_dev(), read back with new_decode_dev(). */
    uint32_t ma = major(rdev), mi = minor(rdev);
    return (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
}

static void write_inode(uint8_t *img, const MkNode *n, uint32_t chunk_size)
{
    const MkInodeLayout *l = &n->lay;
    struct erofs_inode_extended_disk di = {
        .i_format = htole16(erofs_i_format(EROFS_INODE_LAYOUT_EXTENDED, l->datalayout)),
        .i_xattr_icount = htole16(l->xattr_icount),
        .i_mode = htole16((uint16_t)n->mode),
        .i_ino = htole32(l->ino),
        .i_uid = htole32(n->uid),
        .i_gid = htole32(n->gid),
        .i_mtime = htole64((uint64_t)n->mtime),
        .i_mtime_nsec = htole32(n->mtime_nsec),
        .i_nlink = htole32(n->nlink),
    };
    uint32_t u = 0;
    uint64_t size = 0;
    switch (n->mode & S_IFMT) {
    case S_IFREG:
        size = n->size;
        u = EROFS_CHUNK_FORMAT_INDEXES | (uint32_t)(__builtin_ctz(chunk_size) - EROFS_BLKSIZ_BITS);
        break;
    case S_IFDIR:
    case S_IFLNK:
        size = l->data_size;
        u = l->raw_blkaddr;
        break;
    case S_IFCHR:
    case S_IFBLK:
        u = encode_dev(n->rdev);
        break;
    }
    di.i_size = htole64(size);
    di.i_u = htole32(u);
    memcpy(img + l->offset, &di, sizeof(di));

    uint64_t p = l->offset + sizeof(di);
    if (n->nxattrs) {
        p += sizeof(struct erofs_xattr_ibody_header_disk);     /* all zero: no shared xattrs */
        for (size_t i = 0; i < n->nxattrs; i++) {
            const MkXattr *x = &n->xattrs[i];
            struct erofs_xattr_entry_disk e = {
                .e_name_len = x->suffix_len, .e_name_index = x->index,
                .e_value_size = htole16(x->value_len),
            };
            memcpy(img + p, &e, sizeof(e));
            memcpy(img + p + sizeof(e), x->suffix, x->suffix_len);
            memcpy(img + p + sizeof(e) + x->suffix_len, x->value, x->value_len);
            p += cfn_align_up(sizeof(e) + x->suffix_len + x->value_len, 4);
        }
    }
}

static void write_chunk_indexes(uint8_t *img, const MkNode *n, const MkBlobDesc *blob)
{
    const MkInodeLayout *l = &n->lay;
    uint64_t p = cfn_align_up(l->offset + MK_INODE_SIZE + erofs_xattr_ibody_size(l->xattr_icount), 8);
    for (uint64_t k = 0; k < n->nchunks; k++) {
        uint32_t ci = n->chunk_ci[k];
        /* RAFS: ci index bits 0..15 in advise, 16..23 above the device id (blob 0 = device 1). */
        struct erofs_inode_chunk_index_disk idx = {
            .advise = htole16((uint16_t)(ci & 0xffff)),
            .device_id = htole16((uint16_t)(1u | ((ci >> 16) & 0xff) << 8)),
            .blkaddr = htole32((uint32_t)(blob->chunks[ci].uoff / EROFS_BLKSIZ)),
        };
        memcpy(img + p + k * sizeof(idx), &idx, sizeof(idx));
    }
}

/* Write a directory's blocks: whole blocks at raw_blkaddr, the tail inline. */
static int write_dir(uint8_t *img, const MkNode *n)
{
    const MkInodeLayout *l = &n->lay;
    MkDirent *e;
    size_t ne;
    int r = dir_entries(n, &e, &ne);
    if (r < 0)
        return r;
    uint64_t inline_at = l->offset + MK_INODE_SIZE + erofs_xattr_ibody_size(l->xattr_icount);
    size_t i = 0;
    for (uint32_t b = 0; i < ne; b++) {
        /* Entries [i, j) fit in block b. */
        size_t j = i, used = 0;
        while (j < ne && used + sizeof(struct erofs_dirent_disk) + e[j].len <= EROFS_BLKSIZ)
            used += sizeof(struct erofs_dirent_disk) + e[j++].len;
        uint8_t *blk = b < l->data_blocks ? img + ((uint64_t)l->raw_blkaddr + b) * EROFS_BLKSIZ
                                          : img + inline_at;
        if (l->datalayout == EROFS_INODE_FLAT_PLAIN)
            blk = img + ((uint64_t)l->raw_blkaddr + b) * EROFS_BLKSIZ;
        size_t nameoff = (j - i) * sizeof(struct erofs_dirent_disk);
        for (size_t k = i; k < j; k++) {
            const MkNode *t = mk_node_inode((MkNode *)e[k].target);
            struct erofs_dirent_disk de = {
                .nid = htole64(t->lay.nid),
                .nameoff = htole16((uint16_t)nameoff),
                .file_type = file_type(t->mode),
            };
            memcpy(blk + (k - i) * sizeof(de), &de, sizeof(de));
            memcpy(blk + nameoff, e[k].name, e[k].len);
            nameoff += e[k].len;
        }
        i = j;
    }
    free(e);
    return 0;
}

static void write_symlink(uint8_t *img, const MkNode *n)
{
    const MkInodeLayout *l = &n->lay;
    uint64_t at = l->datalayout == EROFS_INODE_FLAT_INLINE
                      ? l->offset + MK_INODE_SIZE + erofs_xattr_ibody_size(l->xattr_icount)
                      : (uint64_t)l->raw_blkaddr * EROFS_BLKSIZ;
    memcpy(img + at, n->symlink, n->size);
}

static int chunk_digest_cmp(const void *a, const void *b, void *arg)
{
    const MkChunk *ch = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = memcmp(ch[x].digest, ch[y].digest, BLOB_DIGEST_SIZE);
    if (c)
        return c;
    return x < y ? -1 : x > y;
}

/* The v5 chunk table (nydusd FUSE mode, nydus-image check): sorted by digest like nydus. */
static int write_chunk_table(uint8_t *img, const MkLayout *lay, const MkBlobDesc *blob)
{
    uint32_t n = blob->chunk_count;
    _cleanup_free_ uint32_t *order = malloc((size_t)n * sizeof(*order));
    if (!order)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof(*order), chunk_digest_cmp, (void *)blob->chunks);
    for (uint32_t i = 0; i < n; i++)
        mk_encode_chunk_info_v5(&blob->chunks[order[i]], 0, order[i], blob->has_crc32,
                                img + lay->chunk_table_offset + (uint64_t)i * MK_CHUNK_INFO_V5_SIZE);
    return 0;
}

int mk_bootstrap_build(const MkTree *tree, const MkLayout *lay, const MkBlobDesc *blob,
                       uint8_t **out)
{
    _cleanup_free_ uint8_t *img = calloc(1, lay->size);
    if (!img)
        return -ENOMEM;

    uint64_t blob_blocks = blob->uncompressed_size / EROFS_BLKSIZ;
    if (!blob_blocks || blob_blocks > UINT32_MAX)
        return -EFBIG;
    struct erofs_super_block_disk sb = {
        .magic = htole32(EROFS_SUPER_MAGIC_V1),
        .feature_compat = htole32(EROFS_FEATURE_COMPAT_RAFS_V6),
        .blkszbits = EROFS_BLKSIZ_BITS,
        .root_nid = htole16((uint16_t)tree->root->lay.nid),
        .inos = htole64(tree->inodes),
        .blocks = htole32((uint32_t)blob_blocks),
        .meta_blkaddr = htole32(lay->meta_blkaddr),
        .feature_incompat = htole32(EROFS_FEATURE_INCOMPAT_CHUNKED_FILE |
                                    EROFS_FEATURE_INCOMPAT_DEVICE_TABLE),
        .extra_devices = htole16(1),
        .devt_slotoff = htole16(MK_DEVT_SLOTOFF),
    };
    memcpy(img + EROFS_SUPER_OFFSET, &sb, sizeof(sb));

    uint64_t blob_table = cfn_align_up(MK_DEVT_SLOTOFF * EROFS_DEVSLOT_SIZE + EROFS_DEVSLOT_SIZE,
                                       EROFS_BLKSIZ);
    uint64_t flags = mk_rafs_super_flags(blob->compressor, blob->digester);
    if (tree->has_xattrs)
        flags |= RAFS_SUPER_HAS_XATTR;
    if (blob->features & RAFS_BLOB_INLINED_CHUNK_DIGEST)
        flags |= RAFS_SUPER_INLINED_CHUNK_DIGEST;    /* every blob has the digest array */
    MkExtSb ext = {
        .flags = flags,
        .blob_table_offset = blob_table,
        .blob_table_size = MK_BLOB_ENTRY_SIZE,
        .chunk_size = blob->chunk_size,
        .chunk_table_offset = lay->chunk_table_offset,
        .chunk_table_size = (uint64_t)blob->chunk_count * MK_CHUNK_INFO_V5_SIZE,
    };
    mk_encode_ext_sb(&ext, img + MK_EXT_SB_OFFSET);

    struct erofs_deviceslot_disk slot = { .blocks = htole32((uint32_t)blob_blocks) };
    memcpy(slot.tag, blob->id, EROFS_DEVSLOT_TAG_SIZE);
    memcpy(img + MK_DEVT_SLOTOFF * EROFS_DEVSLOT_SIZE, &slot, sizeof(slot));
    mk_encode_blob_entry(blob, 0, img + blob_table);

    for (uint64_t i = 0; i < lay->ninodes; i++) {
        const MkNode *n = lay->inodes[i];
        write_inode(img, n, blob->chunk_size);
        int r = 0;
        if (S_ISREG(n->mode))
            write_chunk_indexes(img, n, blob);
        else if (S_ISDIR(n->mode))
            r = write_dir(img, n);
        else if (S_ISLNK(n->mode))
            write_symlink(img, n);
        if (r < 0)
            return r;
    }
    int r = write_chunk_table(img, lay, blob);
    if (r < 0)
        return r;
    *out = CFN_TAKE_PTR(img);
    return 0;
}
