/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "erofs_datamap.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/util/macros.h"
#include "uapi/erofs.h"
#include "uapi/erofs_inode.h"

typedef struct Walker {
    int fd;
    uint64_t size;
    uint64_t meta_off;              /* byte offset of nid 0 */
    ErofsDataMap *map;
    uint8_t *visited;               /* one bit per nid */
    uint64_t max_nid;
    uint64_t *queue;                /* directories still to read */
    size_t q_len, q_cap;
    uint8_t block[EROFS_BLKSIZ];
    uint64_t walked;                /* directory and chunk-index bytes read so far */
    char *why;
    size_t why_len;
} Walker;

static int bad(Walker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(Walker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, w->why_len, fmt, ap);
    va_end(ap);
    return -EBADMSG;
}

static int read_at(Walker *w, void *buf, size_t len, uint64_t off)
{
    if (off > w->size || len > w->size - off)
        return bad(w, "read of %zu bytes at %llu past the end of the image", len, (unsigned long long)off);
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(w->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int r = -errno;
            snprintf(w->why, w->why_len, "reading the image: %s", strerror(-r));
            return r;
        }
        if (n == 0)
            return bad(w, "image ends early at %llu", (unsigned long long)(off + done));
        done += (size_t)n;
    }
    return 0;
}

static int mark_data(Walker *w, uint64_t blk, uint64_t count)
{
    if (blk > w->map->blocks || count > w->map->blocks - blk)
        return bad(w, "data blocks %llu+%llu outside the image", (unsigned long long)blk,
                   (unsigned long long)count);
    for (uint64_t b = blk; b < blk + count; b++) {
        if (!((w->map->data[b / 8] >> (b % 8)) & 1))
            w->map->data_blocks++;
        w->map->data[b / 8] |= (uint8_t)(1u << (b % 8));
    }
    return 0;
}

typedef struct Inode {
    uint64_t nid, pos;              /* byte offset of the inode */
    unsigned layout;
    uint16_t mode;
    uint64_t size;
    uint32_t u;
    uint32_t isize, xsize;
} Inode;

static int read_inode(Walker *w, uint64_t nid, Inode *ino)
{
    struct erofs_inode_extended_disk ext;
    if (nid > w->max_nid)
        return bad(w, "nid %llu outside the image", (unsigned long long)nid);
    ino->nid = nid;
    ino->pos = w->meta_off + nid * EROFS_ISLOT_SIZE;
    int r = read_at(w, &ext, sizeof(struct erofs_inode_compact_disk), ino->pos);
    if (r < 0)
        return r;
    uint16_t fmt = le16toh(ext.i_format);
    ino->layout = (fmt >> EROFS_I_DATALAYOUT_BIT) & EROFS_I_DATALAYOUT_MASK;
    if ((fmt >> EROFS_I_VERSION_BIT) & 1) {
        if ((r = read_at(w, &ext, sizeof(ext), ino->pos)) < 0)
            return r;
        ino->isize = sizeof(ext);
        ino->mode = le16toh(ext.i_mode);
        ino->size = le64toh(ext.i_size);
        ino->u = le32toh(ext.i_u);
    } else {
        struct erofs_inode_compact_disk c;
        memcpy(&c, &ext, sizeof(c));
        ino->isize = sizeof(c);
        ino->mode = le16toh(c.i_mode);
        ino->size = le32toh(c.i_size);
        ino->u = le32toh(c.i_u);
    }
    ino->xsize = erofs_xattr_ibody_size(le16toh(ext.i_xattr_icount));
    if (ino->size > w->size * 64)   /* chunked files may be sparse, but not absurdly */
        return bad(w, "inode %llu claims %llu bytes", (unsigned long long)nid, (unsigned long long)ino->size);
    return 0;
}

/*
 * Directory blocks and chunk indexes are distinct bytes of the image, so
 * walking more of them than the image holds means inodes that lie about
 * their sizes or share one area over and over: stop before that costs a
 * pass over the image per inode.
 */
static int walk_budget(Walker *w, const Inode *ino, uint64_t bytes)
{
    if (bytes > w->size - w->walked)
        return bad(w, "inode %llu: its %llu bytes of %s take the metadata walked past the %llu-byte image",
                   (unsigned long long)ino->nid, (unsigned long long)bytes,
                   S_ISDIR(ino->mode) ? "directory" : "chunk indexes", (unsigned long long)w->size);
    w->walked += bytes;
    return 0;
}

/* Chunk-based file: its indexes, read a block at a time, name the data blocks on device 0. */
static int chunk_data(Walker *w, const Inode *ino)
{
    unsigned chunkbits = EROFS_BLKSIZ_BITS + (ino->u & EROFS_CHUNK_FORMAT_BLKBITS_MASK);
    if (chunkbits > 40)
        return bad(w, "inode %llu: chunk size 2^%u", (unsigned long long)ino->nid, chunkbits);
    uint64_t chunk = 1ull << chunkbits;
    uint64_t nchunks = cfn_align_up(ino->size, chunk) >> chunkbits;
    bool indexes = ino->u & EROFS_CHUNK_FORMAT_INDEXES;
    uint32_t unit = indexes ? sizeof(struct erofs_inode_chunk_index_disk) : 4;
    uint64_t pos = cfn_align_up(ino->pos + ino->isize + ino->xsize, unit);
    if (pos > w->size || nchunks > (w->size - pos) / unit)
        return bad(w, "inode %llu: %llu chunk indexes at %llu run past the end of the image",
                   (unsigned long long)ino->nid, (unsigned long long)nchunks, (unsigned long long)pos);
    int r = walk_budget(w, ino, nchunks * unit);
    if (r < 0)
        return r;
    const uint32_t per_read = EROFS_BLKSIZ / unit;
    for (uint64_t i = 0; i < nchunks; i += per_read) {
        uint32_t n = (uint32_t)CFN_MIN((uint64_t)per_read, nchunks - i);
        if ((r = read_at(w, w->block, (size_t)n * unit, pos + i * unit)) < 0)
            return r;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t blk;
            unsigned device = 0;
            if (indexes) {
                struct erofs_inode_chunk_index_disk ci;
                memcpy(&ci, w->block + (size_t)k * unit, sizeof(ci));
                blk = le32toh(ci.blkaddr);
                device = le16toh(ci.device_id) & 0xff;
            } else {
                uint32_t le;
                memcpy(&le, w->block + (size_t)k * unit, sizeof(le));
                blk = le32toh(le);
            }
            if (blk == EROFS_NULL_ADDR || device != 0)
                continue;   /* a hole, or data on another device */
            uint64_t len = CFN_MIN(chunk, ino->size - (i + k) * chunk);
            if ((r = mark_data(w, blk, cfn_align_up(len, EROFS_BLKSIZ) / EROFS_BLKSIZ)) < 0)
                return r;
        }
    }
    return 0;
}

static int file_data(Walker *w, const Inode *ino)
{
    uint64_t nblocks = cfn_align_up(ino->size, EROFS_BLKSIZ) / EROFS_BLKSIZ;
    switch (ino->layout) {
    case EROFS_INODE_FLAT_PLAIN:
        return nblocks ? mark_data(w, ino->u, nblocks) : 0;
    case EROFS_INODE_FLAT_INLINE:
        /* The last block is the inline tail, in the inode area. */
        return nblocks > 1 ? mark_data(w, ino->u, nblocks - 1) : 0;
    case EROFS_INODE_CHUNK_BASED:
        return chunk_data(w, ino);
    default:
        return 0;   /* compressed: pclusters stay with the metadata (prefilled) */
    }
}

static int queue_nid(Walker *w, uint64_t nid)
{
    if (nid > w->max_nid)
        return bad(w, "dirent names nid %llu outside the image", (unsigned long long)nid);
    if ((w->visited[nid / 8] >> (nid % 8)) & 1)
        return 0;
    w->visited[nid / 8] |= (uint8_t)(1u << (nid % 8));
    if (w->q_len == w->q_cap) {
        size_t cap = w->q_cap ? w->q_cap * 2 : 256;
        uint64_t *q = realloc(w->queue, cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        w->queue = q;
        w->q_cap = cap;
    }
    w->queue[w->q_len++] = nid;
    return 0;
}

static int dir_entries(Walker *w, const Inode *ino)
{
    if (ino->layout != EROFS_INODE_FLAT_PLAIN && ino->layout != EROFS_INODE_FLAT_INLINE)
        return bad(w, "directory nid %llu has layout %u", (unsigned long long)ino->nid, ino->layout);
    uint64_t nblocks = cfn_align_up(ino->size, EROFS_BLKSIZ) / EROFS_BLKSIZ;
    int r = walk_budget(w, ino, ino->size);
    if (r < 0)
        return r;
    for (uint64_t b = 0; b < nblocks; b++) {
        uint32_t len = (uint32_t)CFN_MIN((uint64_t)EROFS_BLKSIZ, ino->size - b * EROFS_BLKSIZ);
        uint64_t pos = (ino->layout == EROFS_INODE_FLAT_INLINE && b == nblocks - 1)
                           ? ino->pos + ino->isize + ino->xsize
                           : ((uint64_t)ino->u + b) * EROFS_BLKSIZ;
        r = read_at(w, w->block, len, pos);
        if (r < 0)
            return r;
        struct erofs_dirent_disk de;
        if (len < sizeof(de))
            return bad(w, "directory nid %llu block %llu is %u bytes", (unsigned long long)ino->nid,
                       (unsigned long long)b, len);
        memcpy(&de, w->block, sizeof(de));
        uint32_t n = le16toh(de.nameoff) / sizeof(de);
        if (n == 0 || (size_t)n * sizeof(de) > len)
            return bad(w, "directory nid %llu block %llu: bad first name offset",
                       (unsigned long long)ino->nid, (unsigned long long)b);
        for (uint32_t i = 0; i < n; i++) {
            memcpy(&de, w->block + (size_t)i * sizeof(de), sizeof(de));
            if ((r = queue_nid(w, le64toh(de.nid))) < 0)
                return r;
        }
    }
    return 0;
}

int erofs_datamap_build(int image_fd, uint64_t image_size, ErofsDataMap *map, char *why, size_t why_len)
{
    Walker w = { .fd = image_fd, .size = image_size, .map = map, .why = why, .why_len = why_len };
    struct erofs_super_block_disk sb;
    int r;

    memset(map, 0, sizeof(*map));
    why[0] = '\0';
    if ((r = read_at(&w, &sb, sizeof(sb), EROFS_SUPER_OFFSET)) < 0)
        return r;
    if (le32toh(sb.magic) != EROFS_SUPER_MAGIC_V1)
        return bad(&w, "not an erofs image");
    if (sb.blkszbits != EROFS_BLKSIZ_BITS)
        return bad(&w, "block size 2^%u; only 4 KiB blocks are supported", sb.blkszbits);
    map->blocks = cfn_align_up(image_size, EROFS_BLKSIZ) / EROFS_BLKSIZ;
    w.meta_off = (uint64_t)le32toh(sb.meta_blkaddr) * EROFS_BLKSIZ;
    if (w.meta_off >= image_size)
        return bad(&w, "meta_blkaddr outside the image");
    w.max_nid = (image_size - w.meta_off) / EROFS_ISLOT_SIZE;
    map->data = calloc(map->blocks / 8 + 1, 1);
    w.visited = calloc(w.max_nid / 8 + 1, 1);
    if (!map->data || !w.visited) {
        r = -ENOMEM;
        goto out;
    }
    if ((r = queue_nid(&w, le16toh(sb.root_nid))) < 0)
        goto out;
    /* Breadth-first; `visited` makes hard links and hostile cycles cost nothing. */
    for (size_t next = 0; next < w.q_len; next++) {
        Inode ino = { 0 };
        if ((r = read_inode(&w, w.queue[next], &ino)) < 0)
            goto out;
        map->inodes++;
        if (S_ISDIR(ino.mode))
            r = dir_entries(&w, &ino);
        else if (S_ISREG(ino.mode))
            r = file_data(&w, &ino);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    free(w.visited);
    free(w.queue);
    if (r < 0) {
        if (!why[0])
            snprintf(why, why_len, "%s", strerror(-r));
        erofs_datamap_clear(map);
    }
    return r;
}

void erofs_datamap_clear(ErofsDataMap *map)
{
    free(map->data);
    memset(map, 0, sizeof(*map));
}
