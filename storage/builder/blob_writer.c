/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Chunking, dedup, compression and the blob tail (ci, header, digests, TOC). */
#include "blob_writer.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "rafs_encode.h"
#include "storage/codec/codec.h"
#include "uapi/erofs_inode.h"

/* Format limits (§2.4/§2.5 of nydus-format.md). */
#define MK_MAX_CHUNKS (1u << 24)                /* ci index is 24 bits */
#define MK_MAX_COFF (1ull << 40)
#define MK_MAX_UOFF (1ull << 44)

enum { TOC_IMAGE_BLOB, TOC_BLOB_META, TOC_META_HEADER, TOC_DIGEST, TOC_IMAGE_BOOT, TOC_MAX };

typedef struct TocRec {
    const char *name;
    enum blob_compressor compressor;
    uint8_t digest[32];
    uint64_t offset, csize, usize;
} TocRec;

struct MkBlob {
    MkBlobOptions o;
    char *dir, *tmp_path, *data_out;
    int fd, data_fd;
    uint64_t pos;                   /* bytes written to the blob */
    EVP_MD_CTX *sha;                /* running sha256 of the blob: the blob id */
    CodecCtx *codec;
    uint8_t *buf, *cbuf;
    size_t cbuf_cap;

    MkChunk *chunks;
    uint32_t nchunks, chunks_cap;
    uint64_t uoff_end;
    uint32_t *dedup;                /* open addressing: ci + 1, 0 = empty */
    size_t dedup_cap;

    /* Batch: the open batch's data, and the sizes of every batch written. */
    uint8_t *batch_buf, *batch_cbuf;
    uint32_t batch_len;
    size_t batch_cbuf_cap;
    struct rafs_batch_ctx_disk *batches;
    uint32_t nbatches, batches_cap;

    /* targz-ref: the data blob is an existing file; contexts come serialized. */
    char *ref_path;
    char ref_id[MK_BLOB_ID_LEN + 1];
    uint64_t ref_size;
    uint8_t *extra;                 /* batch or zran contexts appended to the ci entries */
    size_t extra_len;
    uint32_t extra_count;
    uint8_t meta_digest[32];
    uint64_t zran_offset, zran_size;    /* the ci header's s_ci_zran_* (batch or zran) */
    uint32_t zran_count;

    uint32_t features;
    enum blob_compressor ci_compressor;
    uint64_t ci_offset, ci_csize, ci_usize;
    TocRec toc[TOC_MAX];
    unsigned ntoc;
    uint32_t toc_size;
    uint8_t toc_digest[32];
    char id[MK_BLOB_ID_LEN + 1];
    bool committed;
};

uint32_t mk_blob_chunk_count(const MkBlob *b) { return b->nchunks; }

static int sha256_buf(const void *p, size_t len, uint8_t out[32])
{
    unsigned n = 32;
    return EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int mk_blob_new(MkBlob **ret, const MkBlobOptions *opts, const char *dir, const char *data_out)
{
    if (opts->chunk_size < MK_CHUNK_SIZE_MIN || opts->chunk_size > MK_CHUNK_SIZE_MAX ||
        (opts->chunk_size & (opts->chunk_size - 1)))
        return -EINVAL;
    if (opts->ci_version != 1 && opts->ci_version != 2)
        return -EINVAL;
    if (opts->crc32 && opts->ci_version != 2)
        return -EINVAL;
    /* Batch and ZRAN chunks exist only in V2 entries; a batch buffer is at most 16 MiB. */
    if ((opts->batch_size || opts->targz_ref) && opts->ci_version != 2)
        return -EINVAL;
    if (opts->batch_size > MK_CHUNK_SIZE_MAX || (opts->batch_size && opts->targz_ref))
        return -EINVAL;

    _cleanup_(mk_blob_freep) MkBlob *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->fd = b->data_fd = -1;
    b->o = *opts;
    if (b->o.inline_bootstrap)
        b->o.toc = true;
    b->dir = strdup(dir);
    if (asprintf(&b->tmp_path, "%s/.nydus-mkimage-blob-XXXXXX", dir) < 0)
        b->tmp_path = NULL;
    if (!b->dir || !b->tmp_path)
        return -ENOMEM;
    b->fd = mkostemp(b->tmp_path, O_CLOEXEC);
    if (b->fd < 0) {
        int r = -errno;
        mk_err("creating a temporary blob in %s: %s", dir, strerror(-r));
        free(b->tmp_path);
        b->tmp_path = NULL;
        return r;
    }
    if (fchmod(b->fd, 0644) < 0)
        return -errno;
    if (data_out) {
        b->data_out = strdup(data_out);
        if (!b->data_out)
            return -ENOMEM;
        b->data_fd = open(data_out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (b->data_fd < 0) {
            int r = -errno;
            mk_err("%s: %s", data_out, strerror(-r));
            return r;
        }
    }
    b->sha = EVP_MD_CTX_new();
    if (!b->sha || EVP_DigestInit_ex(b->sha, EVP_sha256(), NULL) != 1)
        return -ENOMEM;
    int r = codec_ctx_new(&b->codec);
    if (r < 0)
        return r;
    b->cbuf_cap = codec_compress_bound(opts->compressor, opts->chunk_size);
    b->buf = malloc(opts->chunk_size);
    b->cbuf = malloc(CFN_MAX(b->cbuf_cap, (size_t)opts->chunk_size));
    if (!b->buf || !b->cbuf)
        return -ENOMEM;
    if (opts->batch_size) {
        b->batch_cbuf_cap = codec_compress_bound(opts->compressor, opts->batch_size);
        b->batch_buf = malloc(opts->batch_size);
        b->batch_cbuf = malloc(CFN_MAX(b->batch_cbuf_cap, (size_t)opts->batch_size));
        if (!b->batch_buf || !b->batch_cbuf)
            return -ENOMEM;
    }
    *ret = CFN_TAKE_PTR(b);
    return 0;
}

MkBlob *mk_blob_free(MkBlob *b)
{
    if (!b)
        return NULL;
    if (b->fd >= 0)
        close(b->fd);
    if (b->data_fd >= 0)
        close(b->data_fd);
    if (b->tmp_path && !b->committed)
        unlink(b->tmp_path);
    EVP_MD_CTX_free(b->sha);
    codec_ctx_free(b->codec);
    free(b->buf);
    free(b->cbuf);
    free(b->chunks);
    free(b->dedup);
    free(b->batch_buf);
    free(b->batch_cbuf);
    free(b->batches);
    free(b->ref_path);
    free(b->extra);
    free(b->dir);
    free(b->tmp_path);
    free(b->data_out);
    free(b);
    return NULL;
}

static int blob_write(MkBlob *b, const void *p, size_t len)
{
    const uint8_t *q = p;
    size_t left = len;
    while (left) {
        ssize_t n = write(b->fd, q, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int r = -errno;
            mk_err("writing the blob: %s", strerror(-r));
            return r;
        }
        q += n;
        left -= (size_t)n;
    }
    if (EVP_DigestUpdate(b->sha, p, len) != 1)
        return -EIO;
    b->pos += len;
    return 0;
}

static int blob_write_tar(MkBlob *b, const char *name, uint64_t size)
{
    uint8_t hdr[MK_TAR_HEADER_SIZE];
    mk_encode_tar_header(name, size, hdr);
    return blob_write(b, hdr, sizeof(hdr));
}

/* Dedup index keyed by the chunk digest (which covers the length, too). */
static uint32_t *dedup_slot(MkBlob *b, const uint8_t digest[32], uint32_t usize)
{
    uint64_t h;
    memcpy(&h, digest, sizeof(h));
    size_t mask = b->dedup_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t v = b->dedup[i];
        if (!v)
            return &b->dedup[i];
        const MkChunk *c = &b->chunks[v - 1];
        if (c->usize == usize && !memcmp(c->digest, digest, 32))
            return &b->dedup[i];
    }
}

static int dedup_grow(MkBlob *b)
{
    if (b->dedup_cap && (size_t)(b->nchunks + 1) * 2 <= b->dedup_cap)
        return 0;
    size_t cap = b->dedup_cap ? b->dedup_cap * 2 : 1024;
    uint32_t *old = b->dedup;
    b->dedup = calloc(cap, sizeof(*b->dedup));
    if (!b->dedup) {
        b->dedup = old;
        return -ENOMEM;
    }
    b->dedup_cap = cap;
    for (uint32_t ci = 0; ci < b->nchunks; ci++)
        *dedup_slot(b, b->chunks[ci].digest, b->chunks[ci].usize) = ci + 1;
    free(old);
    return 0;
}

/* Room for one more ci entry. */
static int chunk_reserve(MkBlob *b)
{
    if (b->nchunks >= MK_MAX_CHUNKS) {
        mk_err("more than %u unique chunks: the ci index is 24 bits; use a larger --chunk-size",
               MK_MAX_CHUNKS);
        return -EFBIG;
    }
    if (b->nchunks == b->chunks_cap) {
        uint32_t cap = b->chunks_cap ? b->chunks_cap * 2 : 256;
        MkChunk *n = realloc(b->chunks, (size_t)cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        b->chunks = n;
        b->chunks_cap = cap;
    }
    return 0;
}

/*
 * Append ci entry `t` at the next 4 KiB-aligned uncompressed offset (the dense
 * packing nydusd and the kernel need) and mirror its data into --blob-data.
 */
static int chunk_push(MkBlob *b, const MkChunk *t, const uint8_t *data, uint32_t *ci_out)
{
    uint64_t uoff = cfn_align_up(b->uoff_end, EROFS_BLKSIZ);
    if (uoff + t->usize > MK_MAX_UOFF) {
        mk_err("blob too large: the uncompressed address space must stay below 16 TiB");
        return -EFBIG;
    }
    MkChunk *c = &b->chunks[b->nchunks];
    *c = *t;
    c->uoff = uoff;
    if (b->data_fd >= 0 && pwrite(b->data_fd, data, t->usize, (off_t)uoff) != (ssize_t)t->usize) {
        int r = -errno;
        mk_err("%s: %s", b->data_out, r ? strerror(-r) : "short write");
        return r ? r : -EIO;
    }
    b->uoff_end = uoff + t->usize;
    *ci_out = b->nchunks++;
    return 0;
}

/* Compress `len` bytes into `out` (capacity `cap`); false when nydus would keep them raw. */
static int try_compress(MkBlob *b, const uint8_t *data, size_t len, uint8_t *out, size_t cap,
                        size_t *out_len)
{
    *out_len = 0;
    if (b->o.compressor == BLOB_COMP_NONE)
        return 0;
    ssize_t z = codec_compress(b->o.compressor, b->o.level, data, len, out, cap);
    if (z < 0 && z != -ENOSPC && z != -E2BIG)
        return (int)z;
    /* nydus keeps the raw bytes unless compression shrinks them. */
    if (z > 0 && (size_t)z < len)
        *out_len = (size_t)z;
    return 0;
}

/* Write the open batch as one piece and record its BatchInflateContext. */
static int batch_flush(MkBlob *b)
{
    if (!b->batch_len)
        return 0;
    size_t zlen;
    int r = try_compress(b, b->batch_buf, b->batch_len, b->batch_cbuf, b->batch_cbuf_cap, &zlen);
    if (r < 0) {
        mk_err("compressing a batch: %s", strerror(-r));
        return r;
    }
    const uint8_t *out = zlen ? b->batch_cbuf : b->batch_buf;
    uint32_t out_len = zlen ? (uint32_t)zlen : b->batch_len;
    if (b->pos + out_len > MK_MAX_COFF) {
        mk_err("blob too large: compressed data must stay below 1 TiB");
        return -EFBIG;
    }
    if (b->nbatches == b->batches_cap) {
        uint32_t cap = b->batches_cap ? b->batches_cap * 2 : 64;
        struct rafs_batch_ctx_disk *n = realloc(b->batches, (size_t)cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        b->batches = n;
        b->batches_cap = cap;
    }
    /* Stored raw iff compressed_size == uncompressed_batch_size (docs §2.6). */
    b->batches[b->nbatches++] = (struct rafs_batch_ctx_disk){
        .compressed_size = htole32(out_len),
        .uncompressed_batch_size = htole32(b->batch_len),
    };
    b->batch_len = 0;
    return blob_write(b, out, out_len);
}

/*
 * A small chunk joins the open batch: its compressed offset is where the batch
 * will be written (nothing else is written while a batch is open), its
 * compressed size 0, its data word the batch index and its offset in the batch.
 */
static int batch_add(MkBlob *b, const uint8_t *data, uint32_t len, const uint8_t digest[32],
                     uint64_t file_offset, uint32_t *ci_out)
{
    int r;
    if (b->batch_len + (uint64_t)len > b->o.batch_size && (r = batch_flush(b)) < 0)
        return r;
    MkChunk t = { .coff = b->pos, .usize = len, .compressed = true, .file_offset = file_offset,
                  .kind = MK_CHUNK_BATCH, .ctx_index = b->nbatches, .ctx_offset = b->batch_len };
    memcpy(t.digest, digest, 32);
    memcpy(b->batch_buf + b->batch_len, data, len);
    b->batch_len += len;
    return chunk_push(b, &t, data, ci_out);
}

static int chunk_store(MkBlob *b, const MkNode *node, const uint8_t *data, uint32_t len,
                       const uint8_t digest[32], uint64_t file_offset, uint32_t *ci_out)
{
    int r = chunk_reserve(b);
    if (r < 0)
        return r;
    if (b->o.batch_size && len < b->o.batch_size)
        return batch_add(b, data, len, digest, file_offset, ci_out);
    /* A batch's members stay contiguous in ci order: close it before a plain chunk. */
    if ((r = batch_flush(b)) < 0)
        return r;

    size_t zlen;
    r = try_compress(b, data, len, b->cbuf, b->cbuf_cap, &zlen);
    if (r < 0) {
        _cleanup_free_ char *p = mk_node_path(node);
        mk_err("%s: compressing a chunk: %s", p ? p : "?", strerror(-r));
        return r;
    }
    const uint8_t *out = zlen ? b->cbuf : data;
    uint32_t csize = zlen ? (uint32_t)zlen : len;
    if (b->pos + csize > MK_MAX_COFF) {
        mk_err("blob too large: compressed data must stay below 1 TiB");
        return -EFBIG;
    }
    MkChunk t = { .coff = b->pos, .csize = csize, .usize = len, .compressed = zlen != 0,
                  .file_offset = file_offset, .kind = MK_CHUNK_PLAIN };
    memcpy(t.digest, digest, 32);
    if (b->o.crc32)
        t.crc = codec_crc32c(0, data, len);
    if ((r = blob_write(b, out, csize)) < 0)
        return r;
    return chunk_push(b, &t, data, ci_out);
}

bool mk_blob_lookup(MkBlob *b, const uint8_t digest[BLOB_DIGEST_SIZE], uint32_t len, uint32_t *ci)
{
    if (!b->o.dedup || !b->dedup_cap)
        return false;
    uint32_t v = *dedup_slot(b, digest, len);
    if (v)
        *ci = v - 1;
    return v != 0;
}

int mk_blob_add_ref_chunk(MkBlob *b, const MkNode *node, const uint8_t *data, uint32_t len,
                          const uint8_t digest[BLOB_DIGEST_SIZE], uint64_t file_offset,
                          const MkRefChunk *ref, uint32_t *ci)
{
    if (!b->o.targz_ref)
        return -EINVAL;
    int r = chunk_reserve(b);
    if (r < 0)
        return r;
    /* V2 csize is 24 bits and coff 40 bits. */
    if (ref->in_len > 0xffffffu || ref->in_offset + ref->in_len > MK_MAX_COFF) {
        _cleanup_free_ char *p = mk_node_path(node);
        mk_err("%s: a chunk needs %u compressed bytes at %llu: does not fit a ci entry", p ? p : "?",
               ref->in_len, (unsigned long long)ref->in_offset);
        return -EFBIG;
    }
    if (b->o.zran_holes && b->nchunks)
        b->uoff_end = cfn_align_up(b->uoff_end, EROFS_BLKSIZ) + EROFS_BLKSIZ;
    MkChunk t = { .coff = ref->in_offset, .csize = ref->in_len, .usize = len, .compressed = true,
                  .file_offset = file_offset, .kind = MK_CHUNK_ZRAN,
                  .ctx_index = ref->ctx_index, .ctx_offset = ref->ctx_offset };
    memcpy(t.digest, digest, 32);
    if ((r = chunk_push(b, &t, data, ci)) < 0)
        return r;
    if (b->o.dedup) {
        if ((r = dedup_grow(b)) < 0)
            return r;
        *dedup_slot(b, digest, len) = *ci + 1;
    }
    return 0;
}

int mk_blob_set_ref(MkBlob *b, const char *path, const char *id, uint64_t size,
                    const uint8_t *ctx, size_t len, uint32_t count)
{
    if (!b->o.targz_ref || strlen(id) != MK_BLOB_ID_LEN)
        return -EINVAL;
    free(b->ref_path);
    free(b->extra);
    b->ref_path = strdup(path);
    b->extra = malloc(len ? len : 1);
    if (!b->ref_path || !b->extra)
        return -ENOMEM;
    memcpy(b->extra, ctx, len);
    b->extra_len = len;
    b->extra_count = count;
    memcpy(b->ref_id, id, sizeof(b->ref_id));
    memcpy(b->id, id, sizeof(b->id));
    b->ref_size = size;
    return 0;
}

/* Read [off, off+len) of the file: holes are zero-filled without reading them. */
static int read_chunk(MkBlob *b, const MkNode *node, int fd, uint64_t off, uint32_t len)
{
    off_t data = lseek(fd, (off_t)off, SEEK_DATA);
    if ((data < 0 && errno == ENXIO) || (data >= 0 && (uint64_t)data >= off + len)) {
        memset(b->buf, 0, len);
        return 0;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, b->buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int r = n < 0 ? -errno : -EIO;
            _cleanup_free_ char *p = mk_node_path(node);
            mk_err("%s: %s", p ? p : "?", n < 0 ? strerror(-r) : "file shrank while reading it");
            return r;
        }
        done += (size_t)n;
    }
    return 0;
}

int mk_node_chunk_room(MkNode *node, uint64_t k, uint64_t *cap)
{
    if (k < *cap)
        return 0;
    uint64_t ncap = CFN_MIN(node->nchunks, *cap ? *cap * 2 : 64);
    uint32_t *p = realloc(node->chunk_ci, (size_t)ncap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    node->chunk_ci = p;
    *cap = ncap;
    return 0;
}

int mk_blob_add_file(MkBlob *b, MkNode *node, int fd)
{
    uint64_t size = node->size, cs = b->o.chunk_size;
    uint64_t n = (size + cs - 1) / cs;
    node->nchunks = n;
    if (!n)
        return 0;
    if (n > UINT32_MAX / sizeof(uint32_t)) {
        _cleanup_free_ char *p = mk_node_path(node);
        mk_err("%s: too many chunks for one file", p ? p : "?");
        return -EFBIG;
    }
    uint64_t cap = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t off = k * cs;
        uint32_t len = (uint32_t)CFN_MIN(cs, size - off);
        int r = mk_node_chunk_room(node, k, &cap);
        if (r < 0 || (r = read_chunk(b, node, fd, off, len)) < 0)
            return r;
        uint8_t digest[BLOB_DIGEST_SIZE];
        r = codec_digest(b->codec, b->o.digester, b->buf, len, digest);
        if (r < 0) {
            mk_err("chunk digest: %s", strerror(-r));
            return r;
        }
        uint32_t *slot = NULL;
        if (b->o.dedup) {
            r = dedup_grow(b);
            if (r < 0)
                return r;
            slot = dedup_slot(b, digest, len);
            if (*slot) {
                node->chunk_ci[k] = *slot - 1;
                continue;
            }
        }
        r = chunk_store(b, node, b->buf, len, digest, off, &node->chunk_ci[k]);
        if (r < 0)
            return r;
        if (slot)
            *slot = node->chunk_ci[k] + 1;
    }

    /* Refuse a file that grew or changed size while we read it. */
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size != size) {
        _cleanup_free_ char *p = mk_node_path(node);
        mk_err("%s: file size changed while reading it", p ? p : "?");
        return -EAGAIN;
    }
    return 0;
}

static void toc_add(MkBlob *b, unsigned idx, const char *name, enum blob_compressor c,
                    uint64_t offset, uint64_t csize, uint64_t usize, const uint8_t digest[32])
{
    TocRec *t = &b->toc[idx];
    *t = (TocRec){ .name = name, .compressor = c, .offset = offset, .csize = csize, .usize = usize };
    memcpy(t->digest, digest, 32);
    b->ntoc = CFN_MAX(b->ntoc, idx + 1);
}

int mk_blob_finish_meta(MkBlob *b)
{
    int r;
    if (!b->nchunks) {
        mk_err("the source tree holds no file data: a RAFS v6 blob needs at least one chunk "
               "(fscache cannot serve a blob without a ci table)");
        return -ENODATA;
    }
    if ((r = batch_flush(b)) < 0)
        return r;
    b->features = RAFS_BLOB_ALIGNED | (b->o.legacy_inline ? 0 : RAFS_BLOB_CAP_TAR_TOC);
    if (b->o.ci_version == 2)
        b->features |= RAFS_BLOB_CHUNK_INFO_V2;
    if (b->o.batch_size)
        b->features |= RAFS_BLOB_BATCH;
    if (b->o.targz_ref)
        b->features |= RAFS_BLOB_ZRAN | RAFS_BLOB_SEPARATE;
    if (b->o.toc)
        b->features |= RAFS_BLOB_HAS_TAR_HEADER | RAFS_BLOB_HAS_TOC | RAFS_BLOB_INLINED_CHUNK_DIGEST;
    if (b->o.inline_bootstrap && !b->o.legacy_inline)
        b->features |= RAFS_BLOB_INLINED_FS_META;

    uint64_t data_end = b->pos;
    if (b->o.toc) {
        r = blob_write_tar(b, "image.blob", data_end);
        if (r < 0)
            return r;
        /* The image.blob entry digests the chunk bytes and their tar header. */
        uint8_t d[32];
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned dl = 32;
        if (!c || EVP_MD_CTX_copy_ex(c, b->sha) != 1 || EVP_DigestFinal_ex(c, d, &dl) != 1) {
            EVP_MD_CTX_free(c);
            return -ENOMEM;
        }
        EVP_MD_CTX_free(c);
        toc_add(b, TOC_IMAGE_BLOB, "image.blob", BLOB_COMP_NONE, 0, data_end,
                cfn_align_up(b->uoff_end, EROFS_BLKSIZ), d);
    }

    /*
     * The ci table: the entries, then (BATCH/ZRAN) the context array the
     * header's s_ci_zran_* fields point at, all compressed as one piece with
     * the ci compressor unless that does not shrink it.
     */
    size_t esz = mk_ci_entry_size(b->o.ci_version);
    size_t entries = (size_t)b->nchunks * esz;
    const uint8_t *extra = b->o.batch_size ? (const uint8_t *)b->batches : b->extra;
    size_t extra_len = b->o.batch_size ? (size_t)b->nbatches * sizeof(*b->batches) : b->extra_len;
    if (b->o.batch_size || b->o.targz_ref) {
        b->zran_offset = entries;
        b->zran_size = extra_len;
        b->zran_count = b->o.batch_size ? b->nbatches : b->extra_count;
    }
    size_t usize = entries + extra_len;
    if (cfn_align_up(usize, EROFS_BLKSIZ) > RAFS_CI_V2_MAX_SIZE) {
        mk_err("the ci table would take %zu bytes; nydusd accepts at most %llu", usize,
               (unsigned long long)RAFS_CI_V2_MAX_SIZE);
        return -EFBIG;
    }
    _cleanup_free_ uint8_t *ci = malloc(usize);
    if (!ci)
        return -ENOMEM;
    for (uint32_t i = 0; i < b->nchunks; i++)
        mk_encode_ci(b->o.ci_version, &b->chunks[i], b->o.crc32, ci + (size_t)i * esz);
    if (extra_len)
        memcpy(ci + entries, extra, extra_len);
    const uint8_t *ci_out = ci;
    size_t ci_len = usize;
    b->ci_compressor = BLOB_COMP_NONE;
    _cleanup_free_ uint8_t *zci = NULL;
    if (b->o.ci_compressor != BLOB_COMP_NONE) {
        size_t cap = codec_compress_bound(b->o.ci_compressor, usize);
        zci = malloc(cap);
        if (!zci)
            return -ENOMEM;
        /* --level is for chunks; the small ci table uses the default level. */
        ssize_t z = codec_compress(b->o.ci_compressor, 0, ci, usize, zci, cap);
        if (z < 0 && z != -ENOSPC && z != -E2BIG) {
            mk_err("compressing the ci table: %s", strerror((int)-z));
            return (int)z;
        }
        if (z > 0 && (size_t)z < usize) {
            ci_out = zci;
            ci_len = (size_t)z;
            b->ci_compressor = b->o.ci_compressor;
        }
    }
    b->ci_offset = b->pos;
    b->ci_csize = ci_len;
    b->ci_usize = usize;
    r = blob_write(b, ci_out, ci_len);
    if (r < 0)
        return r;

    MkBlobDesc desc;
    mk_blob_describe(b, &desc);
    uint8_t hdr[MK_META_HEADER_SIZE];
    mk_encode_meta_header(&desc, hdr);
    r = blob_write(b, hdr, sizeof(hdr));
    if (r < 0)
        return r;

    if (b->o.toc) {
        uint8_t d[32];
        if ((r = sha256_buf(ci, usize, d)) < 0)
            return r;
        toc_add(b, TOC_BLOB_META, "blob.meta", b->ci_compressor, b->ci_offset, b->ci_csize,
                b->ci_usize, d);
        if ((r = sha256_buf(hdr, sizeof(hdr), d)) < 0)
            return r;
        toc_add(b, TOC_META_HEADER, "blob.meta.header", BLOB_COMP_NONE, b->ci_offset + b->ci_csize,
                sizeof(hdr), sizeof(hdr), d);
        r = blob_write_tar(b, "blob.meta", b->ci_csize + sizeof(hdr));
        if (r < 0)
            return r;

        size_t dlen = (size_t)b->nchunks * 32;
        _cleanup_free_ uint8_t *digests = malloc(dlen);
        if (!digests)
            return -ENOMEM;
        for (uint32_t i = 0; i < b->nchunks; i++)
            memcpy(digests + (size_t)i * 32, b->chunks[i].digest, 32);
        if ((r = sha256_buf(digests, dlen, d)) < 0)
            return r;
        toc_add(b, TOC_DIGEST, "blob.digest", BLOB_COMP_NONE, b->pos, dlen, dlen, d);
        if ((r = blob_write(b, digests, dlen)) < 0)
            return r;
        if ((r = blob_write_tar(b, "blob.digest", dlen)) < 0)
            return r;
    }
    return 0;
}

void mk_blob_describe(const MkBlob *b, MkBlobDesc *d)
{
    memset(d, 0, sizeof(*d));
    if (b->id[0])
        memcpy(d->id, b->id, sizeof(d->id));
    else
        memset(d->id, 'x', MK_BLOB_ID_LEN);     /* nydus's placeholder before the id is known */
    d->chunk_size = b->o.chunk_size;
    d->chunk_count = b->nchunks;
    d->compressor = b->o.compressor;
    d->digester = b->o.digester;
    d->features = b->features;
    d->compressed_size = b->o.targz_ref ? b->ref_size : b->pos;
    d->uncompressed_size = cfn_align_up(b->uoff_end, EROFS_BLKSIZ);
    d->toc_size = b->toc_size;
    memcpy(d->toc_digest, b->toc_digest, 32);
    d->ci_compressor = b->ci_compressor;
    d->ci_offset = b->ci_offset;
    d->ci_compressed_size = b->ci_csize;
    d->ci_uncompressed_size = b->ci_usize;
    d->ci_zran_offset = b->zran_offset;
    d->ci_zran_size = b->zran_size;
    d->ci_zran_count = b->zran_count;
    if (b->o.targz_ref) {
        memcpy(d->meta_digest, b->meta_digest, 32);
        d->meta_size = b->pos;
    }
    d->has_crc32 = b->o.crc32;
    d->chunks = b->chunks;
}

int mk_blob_partial_id(const MkBlob *b, char out[MK_BLOB_ID_LEN + 1])
{
    uint8_t d[32];
    unsigned dl = sizeof(d);
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    int ok = copy && EVP_MD_CTX_copy_ex(copy, b->sha) == 1 && EVP_DigestFinal_ex(copy, d, &dl) == 1;
    EVP_MD_CTX_free(copy);
    if (!ok)
        return -EIO;
    for (unsigned i = 0; i < sizeof(d); i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    return 0;
}

int mk_blob_append_bootstrap(MkBlob *b, const void *boot, size_t len)
{
    if (!b->o.inline_bootstrap)
        return -EINVAL;
    size_t cap = codec_compress_bound(BLOB_COMP_ZSTD, len);
    _cleanup_free_ uint8_t *z = malloc(cap);
    if (!z)
        return -ENOMEM;
    ssize_t zl = codec_compress(BLOB_COMP_ZSTD, 0, boot, len, z, cap);
    if (zl < 0 && zl != -ENOSPC && zl != -E2BIG) {
        mk_err("compressing the inline bootstrap: %s", strerror((int)-zl));
        return (int)zl;
    }
    bool compressed = zl > 0 && (size_t)zl < len;
    const void *out = compressed ? (const void *)z : boot;
    size_t out_len = compressed ? (size_t)zl : len;
    uint8_t d[32];
    int r = sha256_buf(boot, len, d);
    if (r < 0)
        return r;
    toc_add(b, TOC_IMAGE_BOOT, "image.boot", compressed ? BLOB_COMP_ZSTD : BLOB_COMP_NONE, b->pos,
            out_len, len, d);
    if ((r = blob_write(b, out, out_len)) < 0)
        return r;
    return blob_write_tar(b, "image.boot", out_len);
}

int mk_blob_finish(MkBlob *b)
{
    int r;
    if (b->o.toc) {
        uint8_t toc[TOC_MAX * MK_TOC_ENTRY_SIZE + MK_TAR_HEADER_SIZE];
        size_t n = 0;
        for (unsigned i = 0; i < b->ntoc; i++) {
            const TocRec *t = &b->toc[i];
            if (!t->name)
                continue;
            mk_encode_toc_entry(t->name, t->compressor, t->digest, t->offset, t->csize, t->usize,
                                toc + n);
            n += MK_TOC_ENTRY_SIZE;
        }
        mk_encode_tar_header("rafs.blob.toc", n, toc + n);
        b->toc_size = (uint32_t)(n + MK_TAR_HEADER_SIZE);
        if ((r = sha256_buf(toc, b->toc_size, b->toc_digest)) < 0)
            return r;
        if ((r = blob_write(b, toc, b->toc_size)) < 0)
            return r;
    }
    uint8_t d[32];
    unsigned dl = 32;
    if (EVP_DigestFinal_ex(b->sha, d, &dl) != 1)
        return -EIO;
    if (b->o.targz_ref)
        memcpy(b->meta_digest, d, 32);      /* the blob id is the tarball's */
    else
        for (unsigned i = 0; i < 32; i++)
            snprintf(b->id + 2 * i, 3, "%02x", d[i]);
    if (fsync(b->fd) < 0)
        return -errno;
    if (b->data_fd >= 0) {
        if (ftruncate(b->data_fd, (off_t)cfn_align_up(b->uoff_end, EROFS_BLKSIZ)) < 0)
            return -errno;
    }
    return 0;
}

/* Copy the tarball to `path` through a temporary file (link() was not possible). */
static int copy_tarball(MkBlob *b, const char *path)
{
    _cleanup_free_ char *tmp = NULL;
    if (asprintf(&tmp, "%s/.nydus-mkimage-ref-XXXXXX", b->dir) < 0)
        return -ENOMEM;
    _cleanup_close_ int in = open(b->ref_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    _cleanup_close_ int out = mkostemp(tmp, O_CLOEXEC);
    if (out < 0)
        return -errno;
    int r = fchmod(out, 0644) < 0 ? -errno : 0;
    uint64_t done = 0;
    while (r == 0) {
        ssize_t n = sendfile(out, in, NULL, 1 << 30);
        if (n < 0 && errno != EINTR)
            r = -errno;
        else if (n == 0)
            break;
        else if (n > 0)
            done += (uint64_t)n;
    }
    if (r == 0 && done != b->ref_size)
        r = -EAGAIN;                /* the tarball changed since it was hashed */
    if (r == 0 && fsync(out) < 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

/* targz-ref: the meta blob as <dir>/<its sha256>, the tarball as <dir>/<blob id>. */
static int commit_ref(MkBlob *b)
{
    char meta_id[MK_BLOB_ID_LEN + 1];
    for (unsigned i = 0; i < 32; i++)
        snprintf(meta_id + 2 * i, 3, "%02x", b->meta_digest[i]);
    _cleanup_free_ char *meta = NULL, *data = NULL;
    if (asprintf(&meta, "%s/%s", b->dir, meta_id) < 0 || asprintf(&data, "%s/%s", b->dir, b->ref_id) < 0)
        return -ENOMEM;
    int r = 0;
    struct stat a, c;
    bool same = stat(b->ref_path, &a) == 0 && stat(data, &c) == 0 && a.st_dev == c.st_dev &&
                a.st_ino == c.st_ino;
    if (!same && link(b->ref_path, data) < 0)
        r = copy_tarball(b, data);
    if (r < 0) {
        mk_err("%s: %s", data, r == -EAGAIN ? "the tarball changed while building" : strerror(-r));
        return r;
    }
    if (rename(b->tmp_path, meta) < 0) {
        r = -errno;
        mk_err("%s: %s", meta, strerror(-r));
        return r;
    }
    b->committed = true;
    return 0;
}

int mk_blob_commit(MkBlob *b)
{
    if (b->o.targz_ref)
        return commit_ref(b);
    _cleanup_free_ char *path = NULL;
    if (!b->id[0] || asprintf(&path, "%s/%s", b->dir, b->id) < 0)
        return -EINVAL;
    if (rename(b->tmp_path, path) < 0) {
        int r = -errno;
        mk_err("%s: %s", path, strerror(-r));
        return r;
    }
    b->committed = true;
    return 0;
}
