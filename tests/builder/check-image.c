/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * check-image: the offline oracle for nydus-mkimage and the RAFS readers.
 *
 *   check-image BOOTSTRAP BLOB [--source DIR] [--cache-file OUT] [--allow-id-mismatch] [--tar]
 *               [--no-xattrs]
 *
 * 1. Parses the bootstrap with rafs_bootstrap_parse() and the blob's ci table
 *    with blob_meta_range()/blob_meta_parse() (the daemon's readers); with a
 *    TOC, checks it with toc.c, loads blob.digest and compares the inlined
 *    image.boot with the bootstrap.
 *    For SEPARATE (targz-ref) blobs the ci table comes from the meta blob
 *    <dir of BLOB>/<hex blob_meta_digest>, whose sha256 and size are checked.
 * 2. Decompresses every chunk with the codec (BATCH chunks: the whole batch
 *    through its BatchInflateContext, then the member's slice; ZRAN chunks:
 *    raw inflate of the tarball from the context's checkpoint with its
 *    dictionary and primed bits), checks its exact length, its
 *    digest (against the bootstrap's v5 chunk table and the TOC's digest
 *    array) and crc, and rebuilds
 *    the cache file (the uncompressed address space the kernel reads).
 * 3. Walks the erofs metadata from the root nid the way the kernel does
 *    (dirent blocks, inline tails, inline xattrs, chunk indexes into device
 *    1) and checks the on-disk invariants; with --source, compares every
 *    entry (type, mode, owner, mtime, size, sha256 of the data, symlink
 *    target, rdev, xattrs, nlink, hardlinks = same nid) with the source tree.
 *    --tar: the image came from `tar --owner=0 --group=0 --mtime=...` of the
 *    source: owners must be 0, mtimes are compared in whole seconds.
 *    --no-xattrs: the image must hold no xattrs (a tar made without them).
 * Exit 0 when everything matches; every problem is printed.
 */
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "storage/codec/codec.h"
#include "storage/device/blob_meta.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/device/toc.h"
#include "storage/util/macros.h"
#include "uapi/erofs.h"
#include "uapi/erofs_inode.h"
#include "uapi/rafs.h"

typedef struct Seen {
    uint64_t nid;
    dev_t dev;
    ino_t ino;
} Seen;

typedef struct Checker {
    const uint8_t *boot;
    size_t boot_len;
    RafsBootstrap bs;
    BlobInfo *blob;
    CodecCtx *codec;
    uint8_t *cache;                 /* uncompressed address space */
    uint64_t cache_len;
    uint32_t *chunk_refs;           /* references per ci entry */
    uint8_t *batch_buf;             /* the last batch decompressed */
    uint32_t batch_index;
    unsigned batches, contexts;
    const char *source;
    bool from_tar, no_xattrs;
    unsigned errors;
    uint64_t inodes, files, dirs, bytes, xattrs;
    Seen *seen;                     /* nid <-> source inode, for hardlinks */
    size_t nseen, seen_cap;
} Checker;

static void err(Checker *c, const char *fmt, ...) _printf_(2, 3);
static void err(Checker *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "check-image: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    c->errors++;
}

static int read_all(const char *path, uint8_t **buf, size_t *len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -errno;
    uint8_t *b = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!b)
        return -ENOMEM;
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, b + done, (size_t)st.st_size - done);
        if (n <= 0) {
            free(b);
            return n < 0 ? -errno : -EIO;
        }
        done += (size_t)n;
    }
    *buf = b;
    *len = done;
    return 0;
}

/* ---- blob: ci table, chunks, digests ---------------------------------- */

static const uint8_t *v5_digest(Checker *c, uint32_t ci)
{
    uint64_t n = c->bs.chunk_table_size / sizeof(struct rafs_v5_chunk_info_disk);
    for (uint64_t i = 0; i < n; i++) {
        struct rafs_v5_chunk_info_disk e;
        memcpy(&e, c->boot + c->bs.chunk_table_offset + i * sizeof(e), sizeof(e));
        if (le32toh(e.index) == ci)
            return c->boot + c->bs.chunk_table_offset + i * sizeof(e);
    }
    return NULL;
}

/*
 * The TOC through toc.c: digest, blob.meta cross-check, the chunk digest
 * array (checked per chunk below) and the inlined bootstrap, whose erofs
 * part must equal the external bootstrap's.
 */
static int check_toc(Checker *c, const uint8_t *blob, size_t blob_len)
{
    const RafsBlob *rb = &c->bs.blobs[0];
    char why[256] = "";
    uint64_t off, len;
    Toc toc;
    int r = toc_tail_range(rb, blob_len, &off, &len, why, sizeof(why));
    if (r >= 0)
        r = toc_parse(c->codec, blob + off, len, off, rb->has_toc_digest ? rb->toc_digest : NULL, &toc,
                      why, sizeof(why));
    if (r < 0) {
        err(c, "TOC: %s", why);
        return r;
    }
    if ((r = toc_verify_blob_meta(c->codec, &toc, c->blob, why, sizeof(why))) < 0)
        err(c, "TOC blob.meta: %s", why);
    const TocEntry *e = toc_find(&toc, RAFS_TOC_NAME_BLOB_DIGEST);
    if (!e || toc_entry_range(&toc, e, &off, &len, why, sizeof(why)) < 0 ||
        toc_load_digests(c->codec, &toc, blob + off, len, c->blob, why, sizeof(why)) < 0)
        err(c, "TOC blob.digest: %s", e ? why : "missing");
    e = toc_find(&toc, RAFS_TOC_NAME_BOOTSTRAP);
    if (e) {
        uint8_t *inl = NULL;
        size_t inl_len = 0;
        RafsBootstrap ibs;
        if (toc_entry_range(&toc, e, &off, &len, why, sizeof(why)) < 0 ||
            toc_extract_bootstrap(c->codec, &toc, blob + off, len, &inl, &inl_len, why, sizeof(why)) < 0) {
            err(c, "TOC image.boot: %s", why);
        } else if (rafs_bootstrap_parse(inl, inl_len, &ibs, why, sizeof(why)) < 0) {
            err(c, "inlined bootstrap: %s", why);
        } else {
            uint64_t meta = (uint64_t)c->bs.meta_blkaddr * EROFS_BLKSIZ;
            if (inl_len != c->boot_len || memcmp(inl + meta, c->boot + meta, inl_len - meta))
                err(c, "inlined bootstrap's erofs part differs from the external bootstrap");
            if (!(ibs.blobs[0].features & RAFS_BLOB_INLINED_FS_META))
                err(c, "inlined bootstrap lacks INLINED_FS_META");
            rafs_bootstrap_clear(&ibs);
        }
        free(inl);
    }
    toc_clear(&toc);
    return 0;
}

/* A SEPARATE blob's meta blob: <dir of blob_path>/<meta_blob_id>, named by its sha256. */
static int load_meta_blob(Checker *c, const char *blob_path, uint8_t **buf, size_t *len)
{
    const RafsBlob *rb = &c->bs.blobs[0];
    if (!rb->meta_blob_id[0]) {
        err(c, "SEPARATE blob without blob_meta_digest");
        return -EBADMSG;
    }
    const char *slash = strrchr(blob_path, '/');
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%.*s%s", slash ? (int)(slash - blob_path + 1) : 0, blob_path, rb->meta_blob_id) < 0)
        return -ENOMEM;
    int r = read_all(path, buf, len);
    if (r < 0) {
        err(c, "meta blob %s: %s", path, strerror(-r));
        return r;
    }
    uint8_t d[32];
    char hex[65];
    if ((r = codec_digest(c->codec, BLOB_DIGEST_SHA256, *buf, *len, d)) < 0)
        return r;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    if (strcmp(hex, rb->meta_blob_id))
        err(c, "meta blob %s: sha256 is %s", path, hex);
    if (rb->meta_blob_size != *len)
        err(c, "meta blob %s: %zu bytes, blob_meta_size says %" PRIu64, path, *len, rb->meta_blob_size);
    return 0;
}

/* The batch holding a chunk, decompressed whole (the last one is kept). */
static int decode_batch(Checker *c, const uint8_t *blob, size_t blob_len, const BlobChunkInfo *ch, uint8_t *dst)
{
    BlobMetaBatch bt;
    if (blob_meta_batch(c->blob, ch->ctx_index, &bt) < 0)
        return -ENOENT;
    if (bt.compressed_offset + bt.compressed_size > blob_len || ch->compressed_offset != bt.compressed_offset ||
        ch->compressed_size != 0 || (ch->flags & BLOB_CHUNK_HAS_CRC32))
        return -EBADMSG;
    if (!c->batch_buf || c->batch_index != ch->ctx_index) {
        free(c->batch_buf);
        c->batch_buf = malloc(bt.uncompressed_size ? bt.uncompressed_size : 1);
        if (!c->batch_buf)
            return -ENOMEM;
        c->batch_index = UINT32_MAX;
        int r = codec_decompress(c->codec, bt.compressed ? c->blob->compressor : BLOB_COMP_NONE,
                                 blob + bt.compressed_offset, bt.compressed_size, c->batch_buf,
                                 bt.uncompressed_size);
        if (r < 0)
            return r;
        c->batch_index = ch->ctx_index;
        c->batches++;
    }
    if (ch->ctx_offset > bt.uncompressed_size || ch->uncompressed_size > bt.uncompressed_size - ch->ctx_offset)
        return -EBADMSG;
    memcpy(dst, c->batch_buf + ch->ctx_offset, ch->uncompressed_size);
    return 0;
}

/* A ZRAN chunk: raw inflate from its context's checkpoint in the tarball. */
static int decode_zran(Checker *c, const uint8_t *blob, size_t blob_len, const BlobChunkInfo *ch, uint8_t *dst)
{
    BlobMetaZran z;
    if (blob_meta_zran(c->blob, ch->ctx_index, &z) < 0)
        return -ENOENT;
    if (z.in_offset + z.in_len > blob_len)
        return -EBADMSG;
    /* The chunk's own compressed range lies inside its context's. */
    if (ch->compressed_offset < z.in_offset ||
        ch->compressed_offset + ch->compressed_size > z.in_offset + z.in_len)
        return -ERANGE;
    return codec_inflate_zran(c->codec, z.dict, z.dict_size, z.ctx_bits, z.ctx_byte, blob + z.in_offset,
                              z.in_len, ch->ctx_offset, dst, ch->uncompressed_size);
}

/* Every zran context must inflate to exactly out_len bytes from its in_len bytes (nydusd decodes whole contexts). */
static void check_zran_contexts(Checker *c, const uint8_t *blob, size_t blob_len)
{
    BlobMetaZran z;
    for (uint32_t i = 0; blob_meta_zran(c->blob, i, &z) == 0; i++) {
        uint8_t *out = malloc(z.out_len);
        if (!out || z.in_offset + z.in_len > blob_len ||
            codec_inflate_zran(c->codec, z.dict, z.dict_size, z.ctx_bits, z.ctx_byte, blob + z.in_offset,
                               z.in_len, 0, out, z.out_len) < 0)
            err(c, "zran context %u (in %" PRIu64 "+%u, out %" PRIu64 "+%u) does not inflate", i, z.in_offset,
                z.in_len, z.out_offset, z.out_len);
        free(out);
        c->contexts++;
    }
}

static int check_blob(Checker *c, const uint8_t *blob, size_t blob_len, const char *blob_path)
{
    const RafsBlob *rb = &c->bs.blobs[0];
    char why[256] = "";
    uint64_t off, len;
    const uint8_t *meta = blob;
    size_t meta_len = blob_len;
    _cleanup_free_ uint8_t *meta_buf = NULL;
    int r;
    if (rb->features & RAFS_BLOB_SEPARATE) {
        if ((r = load_meta_blob(c, blob_path, &meta_buf, &meta_len)) < 0)
            return r;
        meta = meta_buf;
    }
    r = blob_meta_range(rb, &off, &len, why, sizeof(why));
    if (r < 0 || off > meta_len || len > meta_len - off) {
        err(c, "blob meta range: %s", why);
        return -EBADMSG;
    }
    if ((r = rafs_bootstrap_blob_info(rb, &c->blob)) < 0)
        return r;
    r = blob_meta_parse(c->codec, rb, meta + off, len, c->blob, why, sizeof(why));
    if (r < 0) {
        err(c, "blob_meta_parse: %s", why);
        return r;
    }
    if ((rb->features & RAFS_BLOB_HAS_TOC) && (r = check_toc(c, blob, blob_len)) < 0)
        return r;
    if (blob_info_validate(c->blob, why, sizeof(why)) < 0) {
        err(c, "blob_info_validate: %s", why);
        return -EBADMSG;
    }
    if (c->blob->uncompressed_size > (8ull << 30)) {
        err(c, "blob too large for this checker");
        return -EFBIG;
    }
    c->cache_len = c->blob->uncompressed_size;
    c->cache = calloc(1, c->cache_len ? c->cache_len : 1);
    c->chunk_refs = calloc(c->blob->chunk_count ? c->blob->chunk_count : 1, sizeof(uint32_t));
    if (!c->cache || !c->chunk_refs)
        return -ENOMEM;

    for (uint32_t i = 0; i < c->blob->chunk_count; i++) {
        const BlobChunkInfo *ch = &c->blob->chunks[i];
        if (ch->compressed_offset + ch->compressed_size > c->blob->compressed_data_size) {
            err(c, "chunk %u: compressed data beyond compressed_data_size", i);
            continue;
        }
        uint8_t *dst = c->cache + ch->uncompressed_offset;
        enum blob_compressor comp = ch->flags & BLOB_CHUNK_COMPRESSED ? c->blob->compressor : BLOB_COMP_NONE;
        if (ch->flags & BLOB_CHUNK_BATCH)
            r = decode_batch(c, blob, blob_len, ch, dst);
        else if (ch->flags & BLOB_CHUNK_ZRAN)
            r = decode_zran(c, blob, blob_len, ch, dst);
        else
            r = codec_decompress(c->codec, comp, blob + ch->compressed_offset, ch->compressed_size, dst,
                                 ch->uncompressed_size);
        if (r < 0) {
            err(c, "chunk %u: decompress: %s", i, strerror(-r));
            continue;
        }
        uint8_t d[BLOB_DIGEST_SIZE];
        if ((r = codec_digest(c->codec, c->blob->digester, dst, ch->uncompressed_size, d)) < 0)
            return r;
        const uint8_t *v5 = v5_digest(c, i);
        if (!v5)
            err(c, "chunk %u: not in the bootstrap chunk table", i);
        else if (memcmp(v5, d, sizeof(d)))
            err(c, "chunk %u: digest mismatch", i);
        if (c->blob->digests && memcmp(c->blob->digests[i], d, sizeof(d)))
            err(c, "chunk %u: digest array mismatch", i);
        if ((ch->flags & BLOB_CHUNK_HAS_CRC32) &&
            codec_crc32c(0, dst, ch->uncompressed_size) != ch->crc32)
            err(c, "chunk %u: crc32c mismatch", i);
    }
    if (rb->features & RAFS_BLOB_ZRAN)
        check_zran_contexts(c, blob, blob_len);
    return 0;
}

/* ---- erofs metadata --------------------------------------------------- */

typedef struct Inode {
    uint64_t nid, pos;              /* pos: byte offset in the bootstrap */
    unsigned isize, xsize, layout;
    uint16_t mode;
    uint32_t uid, gid, nlink, u;
    uint64_t size, mtime;
    uint32_t mtime_nsec;
} Inode;

static int read_inode(Checker *c, uint64_t nid, Inode *ino)
{
    uint64_t pos = (uint64_t)c->bs.meta_blkaddr * EROFS_BLKSIZ + nid * EROFS_ISLOT_SIZE;
    memset(ino, 0, sizeof(*ino));
    if (pos + sizeof(struct erofs_inode_compact_disk) > c->boot_len) {
        err(c, "nid %" PRIu64 ": inode beyond the bootstrap", nid);
        return -EBADMSG;
    }
    struct erofs_inode_compact_disk dc;
    memcpy(&dc, c->boot + pos, sizeof(dc));
    uint16_t fmt = le16toh(dc.i_format);
    ino->nid = nid;
    ino->pos = pos;
    ino->layout = (fmt >> EROFS_I_DATALAYOUT_BIT) & EROFS_I_DATALAYOUT_MASK;
    if (fmt & ~0xfu) {
        err(c, "nid %" PRIu64 ": unknown i_format bits %#x", nid, fmt);
        return -EBADMSG;
    }
    if (fmt & 1) {
        struct erofs_inode_extended_disk de;
        if (pos + sizeof(de) > c->boot_len)
            return -EBADMSG;
        memcpy(&de, c->boot + pos, sizeof(de));
        ino->isize = sizeof(de);
        ino->mode = le16toh(de.i_mode);
        ino->size = le64toh(de.i_size);
        ino->u = le32toh(de.i_u);
        ino->uid = le32toh(de.i_uid);
        ino->gid = le32toh(de.i_gid);
        ino->mtime = le64toh(de.i_mtime);
        ino->mtime_nsec = le32toh(de.i_mtime_nsec);
        ino->nlink = le32toh(de.i_nlink);
    } else {
        ino->isize = sizeof(dc);
        ino->mode = le16toh(dc.i_mode);
        ino->size = le32toh(dc.i_size);
        ino->u = le32toh(dc.i_u);
        ino->uid = le16toh(dc.i_uid);
        ino->gid = le16toh(dc.i_gid);
        ino->nlink = le16toh(dc.i_nlink);
    }
    ino->xsize = erofs_xattr_ibody_size(le16toh(dc.i_xattr_icount));
    if (pos + ino->isize + ino->xsize > c->boot_len) {
        err(c, "nid %" PRIu64 ": xattrs beyond the bootstrap", nid);
        return -EBADMSG;
    }
    return 0;
}

/*
 * The bytes of a FLAT_PLAIN/FLAT_INLINE inode (dirs, symlinks) into a malloc'd
 * buffer, checking the kernel's rule that an inline tail stays in its block.
 */
static int read_flat(Checker *c, const Inode *ino, uint8_t **out)
{
    if (ino->size > (64u << 20)) {
        err(c, "nid %" PRIu64 ": flat data of %" PRIu64 " bytes", ino->nid, ino->size);
        return -EFBIG;
    }
    uint8_t *buf = malloc(ino->size ? ino->size : 1);
    if (!buf)
        return -ENOMEM;
    uint64_t nblocks = (ino->size + EROFS_BLKSIZ - 1) / EROFS_BLKSIZ;
    uint64_t full = ino->layout == EROFS_INODE_FLAT_INLINE ? ino->size / EROFS_BLKSIZ : nblocks;
    if (ino->layout != EROFS_INODE_FLAT_INLINE && ino->layout != EROFS_INODE_FLAT_PLAIN) {
        err(c, "nid %" PRIu64 ": dir/symlink with data layout %u", ino->nid, ino->layout);
        free(buf);
        return -EBADMSG;
    }
    for (uint64_t b = 0; b < nblocks; b++) {
        uint64_t n = CFN_MIN((uint64_t)EROFS_BLKSIZ, ino->size - b * EROFS_BLKSIZ);
        uint64_t src;
        if (b < full) {
            src = ((uint64_t)ino->u + b) * EROFS_BLKSIZ;
        } else {
            src = ino->pos + ino->isize + ino->xsize;
            if (src % EROFS_BLKSIZ + n > EROFS_BLKSIZ)
                err(c, "nid %" PRIu64 ": inline data crosses a block boundary", ino->nid);
        }
        if (src + n > c->boot_len) {
            err(c, "nid %" PRIu64 ": data beyond the bootstrap", ino->nid);
            free(buf);
            return -EBADMSG;
        }
        memcpy(buf + b * EROFS_BLKSIZ, c->boot + src, n);
    }
    *out = buf;
    return 0;
}

typedef struct Xattr {
    char name[300];
    const uint8_t *value;
    size_t len;
} Xattr;

static const char *xattr_prefix(uint8_t index)
{
    switch (index) {
    case EROFS_XATTR_INDEX_USER: return "user.";
    case EROFS_XATTR_INDEX_POSIX_ACL_ACCESS: return "system.posix_acl_access";
    case EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT: return "system.posix_acl_default";
    case EROFS_XATTR_INDEX_TRUSTED: return "trusted.";
    case EROFS_XATTR_INDEX_SECURITY: return "security.";
    default: return NULL;
    }
}

static int read_xattrs(Checker *c, const Inode *ino, Xattr **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!ino->xsize)
        return 0;
    const uint8_t *p = c->boot + ino->pos + ino->isize;
    struct erofs_xattr_ibody_header_disk h;
    memcpy(&h, p, sizeof(h));
    if (h.h_shared_count) {
        err(c, "nid %" PRIu64 ": shared xattrs", ino->nid);
        return -EBADMSG;
    }
    size_t cap = ino->xsize / 4, n = 0;
    Xattr *x = calloc(cap ? cap : 1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    for (size_t o = sizeof(h); o < ino->xsize;) {
        struct erofs_xattr_entry_disk e;
        if (o + sizeof(e) > ino->xsize)
            break;
        memcpy(&e, p + o, sizeof(e));
        size_t vl = le16toh(e.e_value_size), tot = sizeof(e) + e.e_name_len + vl;
        const char *pre = xattr_prefix(e.e_name_index);
        if (o + tot > ino->xsize || !pre || n == cap) {
            err(c, "nid %" PRIu64 ": bad xattr entry at +%zu", ino->nid, o);
            free(x);
            return -EBADMSG;
        }
        snprintf(x[n].name, sizeof(x[n].name), "%s%.*s", pre, e.e_name_len, (const char *)p + o + sizeof(e));
        x[n].value = p + o + sizeof(e) + e.e_name_len;
        x[n].len = vl;
        n++;
        o += cfn_align_up(tot, 4);
    }
    *out = x;
    *n_out = n;
    return 0;
}

static void compare_xattrs(Checker *c, const char *path, const Xattr *x, size_t n)
{
    if (c->no_xattrs) {
        if (n)
            err(c, "%s: %zu xattrs in an image made from a tar without them", path, n);
        return;
    }
    char list[65536];
    ssize_t len = llistxattr(path, list, sizeof(list));
    if (len < 0)
        len = 0;
    size_t src_n = 0;
    for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1) {
        src_n++;
        const Xattr *m = NULL;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(x[k].name, list + i))
                m = &x[k];
        if (!m) {
            err(c, "%s: xattr %s missing in the image", path, list + i);
            continue;
        }
        uint8_t v[65536];
        ssize_t vl = lgetxattr(path, list + i, v, sizeof(v));
        if (vl < 0 || (size_t)vl != m->len || memcmp(v, m->value, m->len))
            err(c, "%s: xattr %s value differs", path, list + i);
    }
    if (src_n != n)
        err(c, "%s: %zu xattrs in the image, %zu in the source", path, n, src_n);
    c->xattrs += n;
}

/* Read a chunk-based file through its chunk indexes and the rebuilt cache. */
static void check_file(Checker *c, const Inode *ino, const char *path)
{
    if (ino->layout != EROFS_INODE_CHUNK_BASED) {
        err(c, "%s: regular file with data layout %u", path, ino->layout);
        return;
    }
    if (!(ino->u & EROFS_CHUNK_FORMAT_INDEXES) ||
        (ino->u & ~(uint32_t)(EROFS_CHUNK_FORMAT_INDEXES | EROFS_CHUNK_FORMAT_BLKBITS_MASK))) {
        err(c, "%s: chunk format %#x", path, ino->u);
        return;
    }
    uint64_t cs = 1ull << (EROFS_BLKSIZ_BITS + (ino->u & EROFS_CHUNK_FORMAT_BLKBITS_MASK));
    if (cs != c->bs.chunk_size)
        err(c, "%s: chunk size %" PRIu64 " != fs chunk size %u", path, cs, c->bs.chunk_size);
    uint64_t n = (ino->size + cs - 1) / cs;
    uint64_t at = cfn_align_up(ino->pos + ino->isize + ino->xsize, 8);
    if (at + n * 8 > c->boot_len) {
        err(c, "%s: chunk indexes beyond the bootstrap", path);
        return;
    }
    int fd = -1;
    if (c->source) {
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            err(c, "%s: %s", path, strerror(errno));
    }
    uint8_t *src = malloc(cs);
    for (uint64_t k = 0; src && k < n; k++) {
        struct rafs_v6_inode_chunk_addr_disk a;
        memcpy(&a, c->boot + at + k * 8, sizeof(a));
        uint32_t ci = rafs_chunk_addr_ci_index(&a);
        uint64_t want = CFN_MIN(cs, ino->size - k * cs);
        if (rafs_chunk_addr_blob_index(&a) != 0 || ci >= c->blob->chunk_count) {
            err(c, "%s: chunk %" PRIu64 ": device %d ci %u", path, k, rafs_chunk_addr_blob_index(&a) + 1, ci);
            break;
        }
        const BlobChunkInfo *ch = &c->blob->chunks[ci];
        c->chunk_refs[ci]++;
        if ((uint64_t)le32toh(a.c_blk_addr) * EROFS_BLKSIZ != ch->uncompressed_offset ||
            ch->uncompressed_size != want) {
            err(c, "%s: chunk %" PRIu64 ": blkaddr %u / size %u do not match ci %u", path, k,
                le32toh(a.c_blk_addr), ch->uncompressed_size, ci);
            break;
        }
        if (fd >= 0) {
            ssize_t got = pread(fd, src, want, (off_t)(k * cs));
            if (got != (ssize_t)want || memcmp(src, c->cache + ch->uncompressed_offset, want)) {
                err(c, "%s: chunk %" PRIu64 " data differs from the source", path, k);
                break;
            }
        }
        c->bytes += want;
    }
    free(src);
    if (fd >= 0)
        close(fd);
    c->files++;
}

static Seen *seen_find(Checker *c, uint64_t nid, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < c->nseen; i++)
        if (c->seen[i].nid == nid || (c->seen[i].dev == dev && c->seen[i].ino == ino))
            return &c->seen[i];
    return NULL;
}

static void compare_meta(Checker *c, const Inode *ino, const char *path, bool is_dir)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        err(c, "%s: in the image but not in the source", path);
        return;
    }
    if (st.st_mode != ino->mode)
        err(c, "%s: mode %o != %o", path, ino->mode, st.st_mode);
    if (c->from_tar ? ino->uid || ino->gid : st.st_uid != ino->uid || st.st_gid != ino->gid)
        err(c, "%s: owner %u:%u != %u:%u", path, ino->uid, ino->gid, c->from_tar ? 0 : st.st_uid,
            c->from_tar ? 0 : st.st_gid);
    if ((int64_t)ino->mtime != st.st_mtim.tv_sec ||
        (!c->from_tar && ino->mtime_nsec != st.st_mtim.tv_nsec))
        err(c, "%s: mtime differs", path);
    if (st.st_nlink != ino->nlink)
        err(c, "%s: nlink %u != %ju", path, ino->nlink, (uintmax_t)st.st_nlink);
    if ((S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) && (uint64_t)st.st_size != ino->size)
        err(c, "%s: size %" PRIu64 " != %jd", path, ino->size, (intmax_t)st.st_size);
    if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
        uint32_t u = ino->u;
        dev_t d = makedev((u & 0xfff00) >> 8, (u & 0xff) | ((u >> 12) & 0xfff00));
        if (d != st.st_rdev)
            err(c, "%s: rdev differs", path);
    }
    if (is_dir)
        return;
    Seen *s = seen_find(c, ino->nid, st.st_dev, st.st_ino);
    if (s && (s->nid != ino->nid || s->dev != st.st_dev || s->ino != st.st_ino))
        err(c, "%s: hardlink mismatch (nid %" PRIu64 ")", path, ino->nid);
    if (!s && c->nseen < c->seen_cap)
        c->seen[c->nseen++] = (Seen){ ino->nid, st.st_dev, st.st_ino };
}

static int source_count(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int walk(Checker *c, uint64_t nid, uint64_t parent, const char *path, unsigned depth);

static int walk_dir(Checker *c, const Inode *ino, uint64_t parent, const char *path, unsigned depth)
{
    _cleanup_free_ uint8_t *data = NULL;
    int r = read_flat(c, ino, &data);
    if (r < 0)
        return r;
    char prev[EROFS_NAME_LEN + 1] = "";
    size_t prev_len = 0;
    bool have_prev = false, dot = false, dotdot = false;
    unsigned subdirs = 0, entries = 0;
    for (uint64_t b = 0; b * EROFS_BLKSIZ < ino->size; b++) {
        const uint8_t *blk = data + b * EROFS_BLKSIZ;
        uint64_t maxsize = CFN_MIN((uint64_t)EROFS_BLKSIZ, ino->size - b * EROFS_BLKSIZ);
        struct erofs_dirent_disk de;
        memcpy(&de, blk, sizeof(de));
        uint16_t nameoff0 = le16toh(de.nameoff);
        if (nameoff0 < sizeof(de) || nameoff0 % sizeof(de) || nameoff0 >= maxsize) {
            err(c, "%s: dir block %" PRIu64 ": bad first nameoff %u", path, b, nameoff0);
            return -EBADMSG;
        }
        unsigned n = nameoff0 / sizeof(de);
        for (unsigned i = 0; i < n; i++) {
            memcpy(&de, blk + i * sizeof(de), sizeof(de));
            uint16_t off = le16toh(de.nameoff), end;
            if (i + 1 < n) {
                struct erofs_dirent_disk nx;
                memcpy(&nx, blk + (i + 1) * sizeof(nx), sizeof(nx));
                end = le16toh(nx.nameoff);
            } else {
                end = (uint16_t)maxsize;
                while (end > off && blk[end - 1] == 0)
                    end--;      /* the last name ends at the zero padding */
            }
            if (off > end || end > maxsize || end - off == 0 || end - off > EROFS_NAME_LEN) {
                err(c, "%s: dir block %" PRIu64 ": bad name bounds", path, b);
                return -EBADMSG;
            }
            size_t len = end - off;
            char name[EROFS_NAME_LEN + 1];
            memcpy(name, blk + off, len);
            name[len] = '\0';
            if (have_prev) {
                int cmp = memcmp(prev, name, CFN_MIN(prev_len, len));
                if (cmp > 0 || (cmp == 0 && prev_len >= len))
                    err(c, "%s: dirents not sorted: \"%s\" before \"%s\"", path, prev, name);
            }
            memcpy(prev, name, len + 1);
            prev_len = len;
            have_prev = true;
            uint64_t child = le64toh(de.nid);
            if (!strcmp(name, ".")) {
                dot = true;
                if (child != ino->nid)
                    err(c, "%s: \".\" points at nid %" PRIu64, path, child);
                continue;
            }
            if (!strcmp(name, "..")) {
                dotdot = true;
                if (child != parent)
                    err(c, "%s: \"..\" points at nid %" PRIu64, path, child);
                continue;
            }
            entries++;
            _cleanup_free_ char *cp = NULL;
            if (asprintf(&cp, "%s/%s", path, name) < 0)
                return -ENOMEM;
            Inode ci;
            if ((r = read_inode(c, child, &ci)) < 0)
                return r;
            static const uint8_t ft[16] = { [S_IFREG >> 12] = EROFS_FT_REG_FILE, [S_IFDIR >> 12] = EROFS_FT_DIR,
                                            [S_IFCHR >> 12] = EROFS_FT_CHRDEV, [S_IFBLK >> 12] = EROFS_FT_BLKDEV,
                                            [S_IFIFO >> 12] = EROFS_FT_FIFO, [S_IFSOCK >> 12] = EROFS_FT_SOCK,
                                            [S_IFLNK >> 12] = EROFS_FT_SYMLINK };
            if (de.file_type != ft[(ci.mode & S_IFMT) >> 12])
                err(c, "%s: dirent file type %u does not match mode %o", cp, de.file_type, ci.mode);
            if (S_ISDIR(ci.mode))
                subdirs++;
            if ((r = walk(c, child, ino->nid, cp, depth + 1)) < 0)
                return r;
        }
    }
    if (!dot || !dotdot)
        err(c, "%s: missing \".\" or \"..\"", path);
    if (ino->nlink != 2 + subdirs)
        err(c, "%s: nlink %u, expected %u", path, ino->nlink, 2 + subdirs);
    if (c->source && source_count(path) != (int)entries)
        err(c, "%s: %u entries in the image, %d in the source", path, entries, source_count(path));
    c->dirs++;
    return 0;
}

static int walk(Checker *c, uint64_t nid, uint64_t parent, const char *path, unsigned depth)
{
    if (depth > 4096) {
        err(c, "%s: directory loop?", path);
        return -ELOOP;
    }
    Inode ino;
    int r = read_inode(c, nid, &ino);
    if (r < 0)
        return r;
    c->inodes++;
    _cleanup_free_ Xattr *x = NULL;
    size_t nx;
    if ((r = read_xattrs(c, &ino, &x, &nx)) < 0)
        return r;
    if (c->source) {
        compare_meta(c, &ino, path, S_ISDIR(ino.mode));
        compare_xattrs(c, path, x, nx);
    }
    switch (ino.mode & S_IFMT) {
    case S_IFDIR:
        return walk_dir(c, &ino, parent, path, depth);
    case S_IFREG:
        check_file(c, &ino, path);
        return 0;
    case S_IFLNK: {
        _cleanup_free_ uint8_t *t = NULL;
        if ((r = read_flat(c, &ino, &t)) < 0)
            return r;
        if (c->source) {
            char buf[EROFS_BLKSIZ];
            ssize_t n = readlink(path, buf, sizeof(buf));
            if (n < 0 || (uint64_t)n != ino.size || memcmp(buf, t, ino.size))
                err(c, "%s: symlink target differs", path);
        }
        return 0;
    }
    case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
        if (ino.layout != EROFS_INODE_FLAT_PLAIN)
            err(c, "%s: special file with data layout %u", path, ino.layout);
        return 0;
    default:
        err(c, "%s: unknown mode %o", path, ino.mode);
        return -EBADMSG;
    }
}

static int write_cache(Checker *c, const char *path)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    for (uint64_t done = 0; done < c->cache_len;) {
        ssize_t n = write(fd, c->cache + done, c->cache_len - done);
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (uint64_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *boot_path = NULL, *blob_path = NULL, *cache_out = NULL;
    Checker c = { 0 };
    bool allow_id_mismatch = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--source") && i + 1 < argc)
            c.source = argv[++i];
        else if (!strcmp(argv[i], "--allow-id-mismatch"))
            allow_id_mismatch = true;
        else if (!strcmp(argv[i], "--tar"))
            c.from_tar = true;
        else if (!strcmp(argv[i], "--no-xattrs"))
            c.no_xattrs = true;
        else if (!strcmp(argv[i], "--cache-file") && i + 1 < argc)
            cache_out = argv[++i];
        else if (!boot_path)
            boot_path = argv[i];
        else if (!blob_path)
            blob_path = argv[i];
        else
            boot_path = NULL, i = argc;
    }
    if (!boot_path || !blob_path) {
        fprintf(stderr, "usage: check-image BOOTSTRAP BLOB [--source DIR] [--cache-file OUT] [--allow-id-mismatch] [--tar] [--no-xattrs]\n");
        return 2;
    }
    _cleanup_free_ uint8_t *boot = NULL, *blob = NULL;
    size_t boot_len, blob_len;
    int r = read_all(boot_path, &boot, &boot_len);
    if (r >= 0)
        r = read_all(blob_path, &blob, &blob_len);
    if (r < 0) {
        fprintf(stderr, "check-image: reading inputs: %s\n", strerror(-r));
        return 1;
    }
    c.boot = boot;
    c.boot_len = boot_len;
    char why[256] = "";
    r = rafs_bootstrap_parse(boot, boot_len, &c.bs, why, sizeof(why));
    if (r < 0) {
        fprintf(stderr, "check-image: rafs_bootstrap_parse: %s (%s)\n", why, strerror(-r));
        return 1;
    }
    if (c.bs.blob_count != 1 || c.bs.root_nid == 0) {
        fprintf(stderr, "check-image: expected one blob and a root nid != 0\n");
        return 1;
    }
    const char *base = strrchr(blob_path, '/');
    if (strcmp(base ? base + 1 : blob_path, c.bs.blobs[0].id))
        err(&c, "blob file name %s != blob id %s", blob_path, c.bs.blobs[0].id);
    if (codec_ctx_new(&c.codec) < 0)
        return 1;
    uint8_t id[32];
    char hex[65];
    if (codec_digest(c.codec, BLOB_DIGEST_SHA256, blob, blob_len, id) == 0) {
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", id[i]);
        /* nydusd never checks this and the repo fixtures break it: --allow-id-mismatch. */
        if (strcmp(hex, c.bs.blobs[0].id) && !allow_id_mismatch)
            err(&c, "blob id %s is not sha256 of the blob (%s)", c.bs.blobs[0].id, hex);
    }
    c.seen_cap = 1 << 20;
    c.seen = calloc(c.seen_cap, sizeof(*c.seen));
    if (!c.seen)
        return 1;
    r = check_blob(&c, blob, blob_len, blob_path);
    if (r >= 0 && c.source) {
        /* Paths are source-relative: run from inside the source tree. */
        if (chdir(c.source) < 0) {
            err(&c, "%s: %s", c.source, strerror(errno));
            r = -errno;
        }
    }
    if (r >= 0)
        r = walk(&c, c.bs.root_nid, c.bs.root_nid, ".", 0);
    if (r >= 0 && c.inodes && c.nseen + c.dirs > c.bs.inos)
        err(&c, "more inodes reached than s_inos");
    for (uint32_t i = 0; r >= 0 && i < c.blob->chunk_count; i++)
        if (!c.chunk_refs[i])
            err(&c, "ci %u is referenced by no file", i);
    if (r >= 0 && cache_out && (r = write_cache(&c, cache_out)) < 0)
        err(&c, "%s: %s", cache_out, strerror(-r));
    printf("check-image: %s: %" PRIu64 " entries (%" PRIu64 " dirs, %" PRIu64 " files, %" PRIu64
           " xattrs), %u chunks (%u batches, %u zran contexts), %" PRIu64 " file bytes compared, %u problems\n",
           c.errors || r < 0 ? "FAIL" : "ok", c.inodes, c.dirs, c.files, c.xattrs,
           c.blob ? c.blob->chunk_count : 0, c.batches, c.contexts, c.bytes, c.errors);
    free(c.cache);
    free(c.chunk_refs);
    free(c.batch_buf);
    free(c.seen);
    blob_info_free(c.blob);
    codec_ctx_free(c.codec);
    rafs_bootstrap_clear(&c.bs);
    return c.errors || r < 0 ? 1 : 0;
}
