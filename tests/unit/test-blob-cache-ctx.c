/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The fill path on BATCH and ZRAN chunks. Synthetic blobs (batches
 * compressed with zstd or lz4_block or stored raw, next to plain chunks;
 * zran contexts over a real gzip stream, one from its start and one from a
 * mid-stream checkpoint with a window and pending bits) go through the blob
 * meta reader and are served by BlobCache from the localfs backend: the
 * cache file must hold exactly the chunks, members of a group are fetched
 * once and become ready together. Corrupt contexts and data must fail the
 * reads that need them with EIO, name the chunk, and never write a byte.
 * A SEPARATE blob is also opened through nydus_blob_open(), which must read
 * its ci table from the meta blob object.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "storage/backend/backend.h"
#include "storage/cache/blob_cache.h"
#include "storage/codec/codec.h"
#include "storage/device/blob_meta.h"
#include "storage/device/nydus_blob.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"
#include "tests/unit/test.h"
#include "uapi/rafs.h"

#define BLOB_ID "b10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10bb10b"
#define META_ID "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
#define MAX_CHUNKS 32
#define MAX_CTX 8

static CodecCtx *codec;
static char tmpdir[64];

/* ---- synthetic blobs ---------------------------------------------------- */

typedef struct TChunk {
    uint8_t *raw;                   /* uncompressed bytes (owned) */
    uint32_t usize;
    unsigned flags;                 /* RAFS_CI_V2_* */
    uint64_t coff;
    uint32_t csize;
    uint32_t ctx, ctx_off;
    uint64_t uoff;                  /* set by tblob_parse() */
} TChunk;

typedef struct TBlob {
    uint32_t features;              /* RAFS_BLOB_* */
    enum blob_compressor comp;
    uint32_t n;
    TChunk c[MAX_CHUNKS];
    uint32_t ctx_count;
    uint8_t ctx[MAX_CTX][40];       /* batch or zran contexts */
    uint8_t *dict;                  /* zran dictionary table */
    size_t dict_len;
    uint8_t *data;                  /* the data blob */
    size_t data_len;
    uint64_t usize;
    bool toc;                       /* meta blob: + blob.digest + TOC (HAS_TOC | INLINED_CHUNK_DIGEST) */
    RafsBlob rb;
    uint8_t *meta;                  /* ci || 4 KiB header [|| digests || TOC || tar header] */
    size_t meta_len;                /* ci || header: what blob_meta_parse() takes */
    size_t meta_file_len;           /* the whole meta blob */
} TBlob;

static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

static void fill_text(uint8_t *p, size_t n, uint32_t seed)
{
    static const char *words[] = { "batch ", "zran ", "chunk ", "erofs ", "nydus ", "inflate ", "tar ", "gz " };
    uint32_t x = seed * 2654435761u + 3;
    size_t i = 0;
    while (i < n) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        for (const char *w = words[x % CFN_ARRAY_SIZE(words)]; *w && i < n; w++)
            p[i++] = (uint8_t)*w;
    }
}

static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2246822519u + 11;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (uint8_t)(x >> 7);
    }
}

static uint8_t *make_bytes(size_t n, bool text, uint32_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        abort();
    if (text)
        fill_text(p, n, seed);
    else
        fill_random(p, n, seed);
    return p;
}

static void data_append(TBlob *t, const void *p, size_t n)
{
    t->data = realloc(t->data, t->data_len + n);
    if (!t->data)
        abort();
    memcpy(t->data + t->data_len, p, n);
    t->data_len += n;
}

/* Compressed with the blob's compressor when that helps (as nydus does); returns the stored size. */
static size_t store(TBlob *t, const uint8_t *raw, size_t n, bool *compressed)
{
    *compressed = false;
    if (t->comp != BLOB_COMP_NONE) {
        size_t cap = codec_compress_bound(t->comp, n);
        uint8_t *z = malloc(cap);
        ssize_t zn = codec_compress(t->comp, 0, raw, n, z, cap);
        CHECK(zn > 0);
        if (zn > 0 && (size_t)zn < n) {
            data_append(t, z, (size_t)zn);
            free(z);
            *compressed = true;
            return (size_t)zn;
        }
        free(z);
    }
    data_append(t, raw, n);
    return n;
}

static void add_plain(TBlob *t, uint32_t usize, bool text, uint32_t seed)
{
    TChunk *c = &t->c[t->n++];
    bool z;
    c->raw = make_bytes(usize, text, seed);
    c->usize = usize;
    c->coff = t->data_len;
    c->csize = (uint32_t)store(t, c->raw, usize, &z);
    c->flags = z ? RAFS_CI_V2_COMPRESSED : 0;
}

/* Members back to back in one buffer, stored as a whole (compressed iff that helps). */
static void add_batch(TBlob *t, const uint32_t *sizes, uint32_t count, bool text, uint32_t seed)
{
    uint32_t total = 0, index = t->ctx_count++;
    for (uint32_t k = 0; k < count; k++)
        total += sizes[k];
    uint8_t *buf = malloc(total);
    uint64_t coff = t->data_len;
    for (uint32_t k = 0, at = 0; k < count; at += sizes[k], k++) {
        TChunk *c = &t->c[t->n++];
        c->raw = make_bytes(sizes[k], text, seed + k);
        memcpy(buf + at, c->raw, sizes[k]);
        c->usize = sizes[k];
        c->coff = coff;
        c->csize = 0;
        /* blob_meta (like nydusd's validate) wants COMPRESSED on members: csize 0 != usize. */
        c->flags = RAFS_CI_V2_BATCH | RAFS_CI_V2_COMPRESSED;
        c->ctx = index;
        c->ctx_off = at;
    }
    bool z;
    size_t stored = store(t, buf, total, &z);
    memset(t->ctx[index], 0, 40);
    put32(t->ctx[index], (uint32_t)stored);
    put32(t->ctx[index] + 4, total);
    free(buf);
}

static void tar_header(uint8_t *h, const char *name, uint64_t size)
{
    unsigned sum = 0;
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 7);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    memcpy(h + 136, "00000000000", 11);
    h[156] = '0';
    memcpy(h + 257, "ustar  ", 8);
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/*
 * After ci || header: the blob.digest array, then a one-entry TOC and its
 * reverse-tar header (docs §3). Returns the TOC size; its sha256 in digest.
 */
static uint32_t append_toc(TBlob *t, uint8_t **meta, size_t *len, uint8_t toc_digest[32])
{
    size_t dlen = (size_t)t->n * 32, at = *len;
    *meta = realloc(*meta, *len + dlen + 128 + 512);
    uint8_t *p = *meta;
    for (uint32_t i = 0; i < t->n; i++)
        CHECK_EQ_INT(codec_digest(codec, BLOB_DIGEST_BLAKE3, t->c[i].raw, t->c[i].usize, p + at + 32 * i), 0);
    uint8_t *e = p + at + dlen;
    memset(e, 0, 128);
    put32(e, RAFS_TOC_COMPRESSION_NONE);
    memcpy(e + 8, "blob.digest", 11);
    CHECK_EQ_INT(codec_digest(codec, BLOB_DIGEST_SHA256, p + at, dlen, e + 24), 0);
    put64(e + 56, at);
    put64(e + 64, dlen);
    put64(e + 72, dlen);
    tar_header(e + 128, "rafs.blob.toc", 128);
    CHECK_EQ_INT(codec_digest(codec, BLOB_DIGEST_SHA256, e, 640, toc_digest), 0);
    *len += dlen + 640;
    return 640;
}

/* Encode ci + header, parse them with blob_meta_parse(), add blake3 digests. */
static BlobInfo *tblob_parse(TBlob *t, uint32_t chunk_size)
{
    bool zran = t->features & RAFS_BLOB_ZRAN, separate = t->features & RAFS_BLOB_SEPARATE;
    size_t ctx_bytes = (size_t)t->ctx_count * 40;
    size_t ci_len = (size_t)t->n * 24 + ctx_bytes + (zran ? t->dict_len : 0);
    uint8_t *ci = calloc(1, ci_len);
    uint64_t uoff = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        TChunk *c = &t->c[i];
        uint64_t data = (c->flags & (RAFS_CI_V2_BATCH | RAFS_CI_V2_ZRAN)) ? (uint64_t)c->ctx << 32 | c->ctx_off : 0;
        c->uoff = uoff;
        rafs_ci_v2_encode((void *)(ci + (size_t)i * 24), c->coff, c->csize, uoff, c->usize, c->flags, data);
        uoff = cfn_align_up(uoff + c->usize, CFN_PAGE_SIZE);
    }
    t->usize = uoff;
    memcpy(ci + (size_t)t->n * 24, t->ctx, ctx_bytes);
    if (zran && t->dict_len)
        memcpy(ci + (size_t)t->n * 24 + ctx_bytes, t->dict, t->dict_len);

    struct rafs_v6_blob_disk d;
    memset(&d, 0, sizeof(d));
    memcpy(d.blob_id, BLOB_ID, 64);
    d.chunk_size = htole32(chunk_size);
    d.chunk_count = htole32(t->n);
    d.compression_algo = htole32(t->comp == BLOB_COMP_LZ4_BLOCK ? RAFS_COMPRESSOR_LZ4_BLOCK
                                 : t->comp == BLOB_COMP_NONE    ? RAFS_COMPRESSOR_NONE
                                 : t->comp == BLOB_COMP_GZIP    ? RAFS_COMPRESSOR_GZIP
                                                                : RAFS_COMPRESSOR_ZSTD);
    d.features = htole32(t->features);
    d.ci_compressor = htole32(RAFS_COMPRESSOR_NONE);
    d.ci_offset = htole64(separate ? 0 : t->data_len);
    d.ci_compressed_size = d.ci_uncompressed_size = htole64(ci_len);
    d.compressed_size = htole64(separate ? t->data_len : t->data_len + ci_len + 4096);
    d.uncompressed_size = htole64(t->usize);
    uint8_t *meta = malloc(ci_len + 4096);
    size_t meta_file_len = ci_len + 4096;
    memcpy(meta, ci, ci_len);
    if (t->toc) {
        d.blob_toc_size = htole32(append_toc(t, &meta, &meta_file_len, d.blob_toc_digest));
        t->features |= RAFS_BLOB_HAS_TOC | RAFS_BLOB_INLINED_CHUNK_DIGEST;
        d.features = htole32(t->features);
    }
    if (separate) {
        memset(d.blob_meta_digest, 0x5a, 32);
        d.blob_meta_size = htole64(meta_file_len);
    }
    uint64_t sb = RAFS_SUPER_HASH_BLAKE3 | (t->comp == BLOB_COMP_LZ4_BLOCK ? RAFS_SUPER_COMPRESSION_LZ4
                                           : t->comp == BLOB_COMP_NONE    ? RAFS_SUPER_COMPRESSION_NONE
                                           : t->comp == BLOB_COMP_GZIP    ? RAFS_SUPER_COMPRESSION_GZIP
                                                                          : RAFS_SUPER_COMPRESSION_ZSTD);
    char why[256] = "";
    int r = rafs_bootstrap_parse_blob(&d, 0, chunk_size, sb, 4096, &t->rb, why, sizeof(why));
    if (r < 0)
        fprintf(stderr, "blob entry: %s\n", why);
    CHECK_EQ_INT(r, 0);

    struct rafs_ci_header_disk h;
    memset(&h, 0, sizeof(h));
    h.s_magic = h.s_magic2 = htole32(RAFS_CI_MAGIC);
    h.s_features = htole32(t->features);
    h.s_ci_entries = htole32(t->n);
    h.s_ci_offset = d.ci_offset;
    h.s_ci_compressed_size = h.s_ci_uncompressed_size = htole64(ci_len);
    h.s_ci_zran_offset = htole64((uint64_t)t->n * 24);
    h.s_ci_zran_size = htole64(ctx_bytes + (zran ? t->dict_len : 0));
    h.s_ci_zran_count = htole32(t->ctx_count);
    t->meta_len = ci_len + sizeof(h);
    t->meta_file_len = meta_file_len;
    t->meta = meta;
    memcpy(t->meta + ci_len, &h, sizeof(h));
    free(ci);

    BlobInfo *b = NULL;
    CHECK_EQ_INT(rafs_bootstrap_blob_info(&t->rb, &b), 0);
    r = blob_meta_parse(codec, &t->rb, t->meta, t->meta_len, b, why, sizeof(why));
    if (r < 0)
        fprintf(stderr, "blob meta: %s\n", why);
    CHECK_EQ_INT(r, 0);
    r = blob_info_validate(b, why, sizeof(why));
    if (r < 0)
        fprintf(stderr, "validate: %s\n", why);
    CHECK_EQ_INT(r, 0);
    b->digests = calloc(t->n, BLOB_DIGEST_SIZE);
    for (uint32_t i = 0; i < t->n; i++)
        CHECK_EQ_INT(codec_digest(codec, BLOB_DIGEST_BLAKE3, t->c[i].raw, t->c[i].usize, b->digests[i]), 0);
    return b;
}

static void tblob_free(TBlob *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        free(t->c[i].raw);
    free(t->dict);
    free(t->data);
    free(t->meta);
    memset(t, 0, sizeof(*t));
}

/* What the cache file must hold: every chunk at its offset, zeros elsewhere. */
static uint8_t *tblob_expected(const TBlob *t)
{
    uint8_t *e = calloc(1, t->usize ? t->usize : 1);
    for (uint32_t i = 0; i < t->n; i++)
        memcpy(e + t->c[i].uoff, t->c[i].raw, t->c[i].usize);
    return e;
}

static void write_file(const char *name, const void *p, size_t n)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, p, n) == (ssize_t)n);
    close(fd);
}

/* ---- the cache service around one blob ----------------------------------- */

typedef struct Harness {
    Loop *loop;
    WorkPool *pool;
    CacheService *svc;
    Backend *backend;
    BlobCache *bc;
    int cfd;
    uint64_t usize;
    bool released;
} Harness;

typedef struct Req {
    FillRequest fill;
    bool done;
    int res;
} Req;

static void req_done(FillRequest *f, int res)
{
    Req *r = cfn_container_of(f, Req, fill);
    r->done = true;
    r->res = res;
}

/* The blob is handed over; the data blob is written to tmpdir first. */
static void h_start(Harness *h, const TBlob *t, BlobInfo *blob, uint32_t window)
{
    char path[160];
    memset(h, 0, sizeof(*h));
    write_file(BLOB_ID, t->data, t->data_len);
    snprintf(path, sizeof(path), "%s/cache", tmpdir);
    h->cfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(h->cfd >= 0);
    h->usize = blob->uncompressed_size;
    CHECK_EQ_INT(ftruncate(h->cfd, (off_t)cfn_align_up(h->usize, CFN_PAGE_SIZE)), 0);
    CacheServiceConfig cc = { .read_window = window, .merge_limit = 4u << 20, .max_inflight_bytes = 64u << 20,
                              .verify = true };
    CHECK_EQ_INT(loop_new(&h->loop, 64), 0);
    CHECK_EQ_INT(workpool_new(&h->pool, h->loop, 2, &cache_worker_hooks), 0);
    CHECK_EQ_INT(cache_service_new(&h->svc, h->loop, h->pool, &cc), 0);
    CHECK_EQ_INT(backend_localfs_new(&h->backend, h->loop, tmpdir), 0);
    CHECK_EQ_INT(blob_cache_new(&h->bc, h->svc, blob, h->backend, BLOB_ID, h->cfd), 0);
}

static void h_released(void *arg) { ((Harness *)arg)->released = true; }

static void h_stop(Harness *h)
{
    blob_cache_close(h->bc, h_released, h);
    for (int i = 0; i < 1000 && !h->released; i++)
        loop_run_once(h->loop, 10);
    CHECK(h->released);
    cache_service_free(h->svc);
    backend_free(h->backend);
    workpool_free(h->pool);
    loop_free(h->loop);
    close(h->cfd);
}

static void h_submit(Harness *h, Req *r, uint64_t off, uint64_t len)
{
    memset(r, 0, sizeof(*r));
    r->fill.off = off;
    r->fill.len = len;
    r->fill.done = req_done;
    blob_cache_fill(h->bc, &r->fill);
}

static void h_wait(Harness *h, Req *r, size_t n)
{
    for (int i = 0; i < 3000; i++) {
        size_t done = 0;
        for (size_t k = 0; k < n; k++)
            done += r[k].done;
        if (done == n)
            return;
        loop_run_once(h->loop, 10);
    }
    CHECK(!"fill never completed");
}

/* Fill the 4 KiB blocks of chunk i (a kernel-style page-aligned READ). */
static int h_read_chunk(Harness *h, const TBlob *t, uint32_t i, char *why, size_t why_len)
{
    Req r;
    h_submit(h, &r, t->c[i].uoff, cfn_align_up(t->c[i].usize, CFN_PAGE_SIZE));
    h_wait(h, &r, 1);
    snprintf(why, why_len, "%s", r.fill.why);
    return r.res;
}

static int h_read_all(Harness *h)
{
    Req r;
    h_submit(h, &r, 0, cfn_align_up(h->usize, CFN_PAGE_SIZE));
    h_wait(h, &r, 1);
    if (r.res < 0)
        fprintf(stderr, "  read all: %s (%s)\n", strerror(-r.res), r.fill.why);
    return r.res;
}

static uint8_t *h_cache(const Harness *h)
{
    uint8_t *got = calloc(1, h->usize ? h->usize : 1);
    CHECK(pread(h->cfd, got, h->usize, 0) == (ssize_t)h->usize);
    return got;
}

/* Chunk i's bytes in the cache file are exactly right (true) or all zero (false); anything else fails. */
static bool chunk_written(const Harness *h, const TBlob *t, uint32_t i)
{
    const TChunk *c = &t->c[i];
    uint8_t *got = malloc(c->usize);
    CHECK(pread(h->cfd, got, c->usize, (off_t)c->uoff) == (ssize_t)c->usize);
    bool right = memcmp(got, c->raw, c->usize) == 0, zero = true;
    for (uint32_t k = 0; k < c->usize; k++)
        zero &= got[k] == 0;
    if (!right && !zero)
        fprintf(stderr, "  chunk %u holds wrong bytes\n", i);
    CHECK(right || zero);
    free(got);
    return right;
}

/* The reason names chunk n itself, or a range "chunks a-b" holding it. */
static bool why_names_chunk(const char *why, uint32_t n)
{
    char want[32];
    snprintf(want, sizeof(want), "chunk %u", n);
    const char *p = strstr(why, want);
    if (p && (p[strlen(want)] < '0' || p[strlen(want)] > '9'))
        return true;
    for (p = strstr(why, "chunks "); p; p = strstr(p + 1, "chunks ")) {
        unsigned a, b;
        if (sscanf(p, "chunks %u-%u", &a, &b) == 2 && a <= n && n <= b)
            return true;
    }
    fprintf(stderr, "  \"%s\" does not name chunk %u\n", why, n);
    return false;
}

#define CHECK_WHY(why, sub)                                                                       \
    do {                                                                                          \
        if (!strstr((why), (sub))) {                                                              \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, (why), (sub)); \
            test_failures++;                                                                      \
        }                                                                                         \
    } while (0)

/* ---- batch ---------------------------------------------------------------- */

/*
 * 0 plain text | 1-4 batch 0 (text) | 5-6 batch 1 (random: stored raw) |
 * 7 plain random | 8-10 batch 2 (text)
 */
static void build_batch_blob(TBlob *t, enum blob_compressor comp)
{
    static const uint32_t b0[] = { 100, 3000, 1, 6000 }, b1[] = { 500, 2000 }, b2[] = { 4096, 77, 9000 };
    memset(t, 0, sizeof(*t));
    t->features = RAFS_BLOB_CAP_TAR_TOC | RAFS_BLOB_BATCH | RAFS_BLOB_CHUNK_INFO_V2 | RAFS_BLOB_ALIGNED;
    t->comp = comp;
    add_plain(t, 10000, true, 1);
    add_batch(t, b0, 4, true, 10);
    add_batch(t, b1, 2, false, 20);
    add_plain(t, 8192, false, 2);
    add_batch(t, b2, 3, true, 30);
}

static void test_batch_comp(enum blob_compressor comp)
{
    TBlob t;
    Harness h;
    Req r[2];
    char why[192];
    build_batch_blob(&t, comp);
    BlobInfo *b = tblob_parse(&t, 64 * 1024);
    CHECK(b->chunks[3].flags & BLOB_CHUNK_BATCH);
    BlobMetaBatch bt;
    CHECK_EQ_INT(blob_meta_batch(b, 1, &bt), 0);
    CHECK(!bt.compressed);                      /* random members: stored raw */
    CHECK_EQ_INT(blob_meta_batch(b, 0, &bt), 0);
    CHECK(bt.compressed == (comp != BLOB_COMP_NONE));
    h_start(&h, &t, b, 0);

    /* One member of batch 0: the whole batch is fetched once and all four are written. */
    CHECK_EQ_INT(h_read_chunk(&h, &t, 3, why, sizeof(why)), 0);
    CacheStats st = cache_service_stats(h.svc);
    CHECK_EQ_INT(st.fetches, 1);
    CHECK_EQ_INT(blob_cache_ready_chunks(h.bc), 4);
    for (uint32_t i = 1; i <= 4; i++)
        CHECK(chunk_written(&h, &t, i));
    CHECK(!chunk_written(&h, &t, 0));

    /* Two readers of different members of batch 2 share one fetch. */
    h_submit(&h, &r[0], t.c[8].uoff, 4096);
    h_submit(&h, &r[1], t.c[10].uoff, 4096);
    h_wait(&h, r, 2);
    CHECK_EQ_INT(r[0].res, 0);
    CHECK_EQ_INT(r[1].res, 0);
    CHECK_EQ_INT(cache_service_stats(h.svc).fetches, 2);
    CHECK(chunk_written(&h, &t, 9));

    /* The rest: plain chunk 0 alone, then raw batch 1 and plain chunk 7 in one merged read. */
    CHECK_EQ_INT(h_read_all(&h), 0);
    st = cache_service_stats(h.svc);
    CHECK_EQ_INT(st.fetches, 4);
    CHECK_EQ_INT(st.chunk_errors, 0);
    CHECK_EQ_INT(st.chunks_written, t.n);
    uint8_t *want = tblob_expected(&t), *got = h_cache(&h);
    CHECK(memcmp(want, got, t.usize) == 0);
    free(want);
    free(got);
    h_stop(&h);
    tblob_free(&t);
}

static void test_batch_zstd(void) { test_batch_comp(BLOB_COMP_ZSTD); }
static void test_batch_lz4(void) { test_batch_comp(BLOB_COMP_LZ4_BLOCK); }
static void test_batch_uncompressed(void) { test_batch_comp(BLOB_COMP_NONE); }

/* A member already in the cache file (an earlier run) is not rewritten; the others are. */
static void test_batch_partly_ready(void)
{
    TBlob t;
    Harness h;
    char why[192];
    build_batch_blob(&t, BLOB_COMP_ZSTD);
    BlobInfo *b = tblob_parse(&t, 64 * 1024);
    h_start(&h, &t, b, 0);
    uint8_t marker[4096];
    memset(marker, 'X', sizeof(marker));
    CHECK(pwrite(h.cfd, marker, sizeof(marker), (off_t)t.c[2].uoff) == (ssize_t)sizeof(marker));

    CHECK_EQ_INT(h_read_chunk(&h, &t, 1, why, sizeof(why)), 0);
    CHECK(chunk_written(&h, &t, 1));
    CHECK(chunk_written(&h, &t, 3));
    CHECK(chunk_written(&h, &t, 4));
    uint8_t got[4096];
    CHECK(pread(h.cfd, got, sizeof(got), (off_t)t.c[2].uoff) == (ssize_t)sizeof(got));
    CHECK(memcmp(got, marker, sizeof(got)) == 0);
    CHECK_EQ_INT(cache_service_stats(h.svc).chunks_written, 3);
    h_stop(&h);
    tblob_free(&t);
}

/* A read window that starts in the middle of a batch still takes the whole batch. */
static void test_batch_window(void)
{
    TBlob t;
    Harness h;
    Req r;
    build_batch_blob(&t, BLOB_COMP_ZSTD);
    BlobInfo *b = tblob_parse(&t, 64 * 1024);
    h_start(&h, &t, b, 8192);
    /* The 8 KiB window [0x4000, 0x6000) starts at chunk 2, but batch 0 is chunks 1-4. */
    CHECK_EQ_INT(t.c[2].uoff, 0x4000);
    h_submit(&h, &r, t.c[2].uoff, 4096);
    h_wait(&h, &r, 1);
    CHECK_EQ_INT(r.res, 0);
    for (uint32_t i = 1; i <= 4; i++)
        CHECK(chunk_written(&h, &t, i));
    CHECK_EQ_INT(cache_service_stats(h.svc).fetches, 1);
    h_stop(&h);
    tblob_free(&t);
}

typedef enum BatchFault {
    FAULT_CTX_INDEX,        /* a member names a batch that does not exist */
    FAULT_SLICE,            /* a member's slice runs past the batch */
    FAULT_TRUNCATED,        /* the batch's compressed_size is short */
    FAULT_DSIZE,            /* uncompressed_batch_size larger than the data decompresses to */
    FAULT_DIGEST,           /* a member's digest does not match */
    FAULT_DATA,             /* the batch's compressed bytes are corrupt */
} BatchFault;

static void test_batch_fault(BatchFault fault, uint32_t victim, const char *reason)
{
    TBlob t;
    Harness h;
    char why[192] = "";
    build_batch_blob(&t, BLOB_COMP_ZSTD);
    if (fault == FAULT_TRUNCATED)
        put32(t.ctx[0], get32(t.ctx[0]) - 3);
    if (fault == FAULT_DSIZE)
        put32(t.ctx[0] + 4, get32(t.ctx[0] + 4) + 16);
    if (fault == FAULT_DATA)
        t.data[t.c[1].coff] ^= 0x55;       /* the zstd magic: the batch cannot decompress */
    BlobInfo *b = tblob_parse(&t, 64 * 1024);
    if (fault == FAULT_CTX_INDEX)
        b->chunks[victim].ctx_index = 7;
    if (fault == FAULT_SLICE)
        b->chunks[victim].ctx_offset = 9095;    /* batch 0 is 9101 bytes */
    if (fault == FAULT_DIGEST)
        b->digests[victim][5] ^= 1;
    h_start(&h, &t, b, 0);

    int r = h_read_chunk(&h, &t, victim, why, sizeof(why));
    CHECK_EQ_INT(r, -EIO);
    CHECK_WHY(why, BLOB_ID);
    CHECK(why_names_chunk(why, victim));
    CHECK_WHY(why, reason);
    CHECK(!chunk_written(&h, &t, victim));
    CHECK(cache_service_stats(h.svc).chunk_errors > 0 || fault == FAULT_CTX_INDEX);

    /* Whatever else is read is right, and the victim never turns into wrong bytes. */
    h_read_all(&h);
    for (uint32_t i = 0; i < t.n; i++) {
        bool ok = chunk_written(&h, &t, i);
        bool whole_batch = fault == FAULT_TRUNCATED || fault == FAULT_DSIZE || fault == FAULT_DATA;
        if (i == victim || (whole_batch && i >= 1 && i <= 4))
            CHECK(!ok);
        else
            CHECK(ok);
    }
    /* A failed chunk stays missing: asking again fails again (and does not hang). */
    CHECK_EQ_INT(h_read_chunk(&h, &t, victim, why, sizeof(why)), -EIO);
    h_stop(&h);
    tblob_free(&t);
}

static void test_batch_corrupt(void)
{
    test_batch_fault(FAULT_CTX_INDEX, 2, "batch 7 does not exist");
    test_batch_fault(FAULT_SLICE, 4, "lies outside batch 0");
    test_batch_fault(FAULT_TRUNCATED, 3,
                     "(batch 0): zstd data [1702, +1574) does not decompress to exactly 9101 bytes");
    test_batch_fault(FAULT_DSIZE, 1, "(batch 0): zstd data [1702, +1577) does not decompress to exactly 9117 bytes");
    test_batch_fault(FAULT_DIGEST, 3, "blake3 digest mismatch");
    test_batch_fault(FAULT_DATA, 2, "batch 0");
}

/* ---- zran ----------------------------------------------------------------- */

typedef struct ZPoint {
    size_t in_pos, out_pos;
    unsigned bits;
    uint8_t byte;
    uint8_t window[32768];
    unsigned window_len;
} ZPoint;

/*
 * Walk a gzip stream with inflate(Z_BLOCK) as nydus's zran generator does:
 * *hdr = where the deflate data starts, and the first block boundary past
 * `min_out` output bytes, preferring one with pending bits.
 */
static bool zran_checkpoint(const uint8_t *gz, size_t gz_len, size_t out_len, size_t min_out, size_t *hdr,
                            ZPoint *pt)
{
    z_stream z = { 0 };
    uint8_t *out = malloc(out_len);
    bool found = false, any = false;
    ZPoint cand;
    CHECK_EQ_INT(inflateInit2(&z, 16 + 15), Z_OK);
    z.next_in = (Bytef *)gz;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    *hdr = 0;
    while (!found) {
        z.avail_in = (uInt)CFN_MIN((size_t)(gz + gz_len - z.next_in), (size_t)509);
        int zr = inflate(&z, Z_BLOCK);
        if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR))
            break;
        if (!(z.data_type & 128) || (z.data_type & 64))
            continue;
        if (z.total_out == 0) {
            *hdr = z.total_in;      /* after the gzip header, before the first block */
            continue;
        }
        if (z.total_out < min_out || (any && z.total_in == cand.in_pos))
            continue;
        cand.in_pos = z.total_in;
        cand.out_pos = z.total_out;
        cand.bits = (unsigned)z.data_type & 7;
        cand.byte = cand.bits ? gz[cand.in_pos - 1] : 0;
        cand.window_len = 0;
        CHECK_EQ_INT(inflateGetDictionary(&z, cand.window, &cand.window_len), Z_OK);
        if (!any || cand.bits) {
            *pt = cand;
            any = true;
        }
        found = cand.bits != 0 || z.total_out > min_out + 200000;
    }
    inflateEnd(&z);
    free(out);
    return any;
}

static uint8_t *gzip(const uint8_t *in, size_t len, size_t *out_len)
{
    z_stream z = { 0 };
    CHECK_EQ_INT(deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, len);
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    CHECK_EQ_INT(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

static void zran_ctx(uint8_t *o, uint64_t in_off, uint32_t in_len, uint64_t out_off, uint32_t out_len,
                     uint64_t dict_off, uint32_t dict_size, uint8_t byte, uint8_t bits)
{
    memset(o, 0, 40);
    put64(o, in_off);
    put64(o + 8, out_off);
    put64(o + 16, dict_off);
    put32(o + 24, in_len);
    put32(o + 28, out_len);
    put32(o + 32, dict_size);
    o[36] = byte;
    o[37] = bits;
}

static void add_zran_chunk(TBlob *t, const uint8_t *tar, uint32_t ctx, uint64_t ctx_out, uint64_t out,
                           uint32_t usize, uint64_t in_off, uint32_t in_len)
{
    TChunk *c = &t->c[t->n++];
    c->raw = malloc(usize);
    memcpy(c->raw, tar + out, usize);
    c->usize = usize;
    c->coff = in_off;
    c->csize = in_len;
    c->flags = RAFS_CI_V2_ZRAN | RAFS_CI_V2_COMPRESSED;
    c->ctx = ctx;
    c->ctx_off = (uint32_t)(out - ctx_out);
}

/*
 * A "tar" of text with two random stretches, gzip'd. Context 0 runs from the
 * start of the deflate data with no dictionary, context 1 from a mid-stream
 * block boundary with its 32 KiB window and pending bits. Chunks 0-2 come
 * from context 0 (the last ends exactly at its end), 3-5 from context 1.
 */
static bool build_zran_blob(TBlob *t, uint32_t ctx1_in_len_cut)
{
    size_t len = 900 * 1024, gz_len, hdr;
    uint8_t *tar = malloc(len);
    for (size_t off = 0; off < len; off += 32768) {
        size_t n = CFN_MIN((size_t)32768, len - off);
        if (off / 32768 == 3 || off / 32768 == 20)     /* far from the checkpoint: its window is text */
            fill_random(tar + off, n, (uint32_t)off);
        else
            fill_text(tar + off, n, (uint32_t)off);
    }
    uint8_t *gz = gzip(tar, len, &gz_len);
    ZPoint *p = calloc(1, sizeof(*p));
    bool ok = zran_checkpoint(gz, gz_len, len, 300 * 1024, &hdr, p);
    CHECK(ok);
    CHECK(hdr == 10);
    if (!ok) {
        free(tar), free(gz), free(p);
        return false;
    }

    memset(t, 0, sizeof(*t));
    t->features = RAFS_BLOB_SEPARATE | RAFS_BLOB_ZRAN | RAFS_BLOB_CHUNK_INFO_V2 | RAFS_BLOB_ALIGNED;
    t->comp = BLOB_COMP_GZIP;
    t->ctx_count = 2;
    uint32_t in0 = (uint32_t)(p->in_pos - hdr), out0 = (uint32_t)p->out_pos;
    uint32_t in1 = (uint32_t)(gz_len - p->in_pos) - ctx1_in_len_cut, out1 = (uint32_t)(len - p->out_pos);
    zran_ctx(t->ctx[0], hdr, in0, 0, out0, 0, 0, 0, 0);
    zran_ctx(t->ctx[1], p->in_pos, in1, p->out_pos, out1, 0, p->window_len, p->byte, (uint8_t)p->bits);
    t->dict = malloc(p->window_len);
    memcpy(t->dict, p->window, p->window_len);
    t->dict_len = p->window_len;

    add_zran_chunk(t, tar, 0, 0, 1000, 20000, hdr, in0);
    add_zran_chunk(t, tar, 0, 0, 50000, 3 * 4096, hdr, in0);
    add_zran_chunk(t, tar, 0, 0, out0 - 7000, 7000, hdr, in0);
    add_zran_chunk(t, tar, 1, p->out_pos, p->out_pos, 30000, p->in_pos, in1);
    add_zran_chunk(t, tar, 1, p->out_pos, p->out_pos + 100000, 65536, p->in_pos, in1);
    add_zran_chunk(t, tar, 1, p->out_pos, len - 5000, 5000, p->in_pos, in1);
    data_append(t, gz, gz_len);
    fprintf(stderr, "  zran: %zu -> %zu bytes, checkpoint at in %zu / out %zu, %u bits, %u-byte window\n", len,
            gz_len, p->in_pos, p->out_pos, p->bits, p->window_len);
    free(tar);
    free(gz);
    free(p);
    return true;
}

static void test_zran_fill(void)
{
    TBlob t;
    Harness h;
    Req r[2];
    char why[192];
    if (!build_zran_blob(&t, 0))
        return;
    BlobInfo *b = tblob_parse(&t, 1u << 20);
    CHECK_EQ_INT(b->compressed_size, t.data_len);
    h_start(&h, &t, b, 0);

    /* The middle chunk of context 0: the context is inflated once, its three chunks written. */
    CHECK_EQ_INT(h_read_chunk(&h, &t, 1, why, sizeof(why)), 0);
    CHECK_EQ_INT(cache_service_stats(h.svc).fetches, 1);
    CHECK_EQ_INT(blob_cache_ready_chunks(h.bc), 3);
    for (uint32_t i = 0; i < 3; i++)
        CHECK(chunk_written(&h, &t, i));

    /* Context 1 (window + pending bits), two readers, one fetch. */
    h_submit(&h, &r[0], t.c[3].uoff, 4096);
    h_submit(&h, &r[1], t.c[5].uoff, 4096);
    h_wait(&h, r, 2);
    CHECK_EQ_INT(r[0].res, 0);
    CHECK_EQ_INT(r[1].res, 0);
    CHECK_EQ_INT(cache_service_stats(h.svc).fetches, 2);

    CHECK_EQ_INT(h_read_all(&h), 0);
    CacheStats st = cache_service_stats(h.svc);
    CHECK_EQ_INT(st.fetches, 2);
    CHECK_EQ_INT(st.chunk_errors, 0);
    uint8_t *want = tblob_expected(&t), *got = h_cache(&h);
    CHECK(memcmp(want, got, t.usize) == 0);
    free(want);
    free(got);
    h_stop(&h);
    tblob_free(&t);
}

typedef enum ZranFault {
    ZFAULT_CTX_INDEX,
    ZFAULT_SLICE,
    ZFAULT_SHORT_INPUT,
    ZFAULT_DICT,
    ZFAULT_BITS,
} ZranFault;

static void test_zran_fault(ZranFault fault, uint32_t victim, const char *reason)
{
    TBlob t;
    Harness h;
    char why[192] = "";
    if (!build_zran_blob(&t, fault == ZFAULT_SHORT_INPUT ? 50000 : 0))
        return;
    if (fault == ZFAULT_DICT)
        for (size_t k = 0; k < t.dict_len; k++)
            t.dict[k] ^= 0x20;
    if (fault == ZFAULT_BITS)
        t.ctx[1][37] = (uint8_t)((t.ctx[1][37] + 3) % 8);
    BlobInfo *b = tblob_parse(&t, 1u << 20);
    if (fault == ZFAULT_CTX_INDEX)
        b->chunks[victim].ctx_index = 5;
    if (fault == ZFAULT_SLICE) {
        BlobMetaZran z;
        CHECK_EQ_INT(blob_meta_zran(b, 1, &z), 0);
        b->chunks[victim].ctx_offset = z.out_len - 100;
    }
    h_start(&h, &t, b, 0);

    CHECK_EQ_INT(h_read_chunk(&h, &t, victim, why, sizeof(why)), -EIO);
    CHECK_WHY(why, BLOB_ID);
    CHECK(why_names_chunk(why, victim));
    CHECK_WHY(why, reason);

    h_read_all(&h);
    for (uint32_t i = 0; i < t.n; i++) {
        bool ok = chunk_written(&h, &t, i);
        /* A wrong window or bit count may spoil only some chunks; each is caught on its own. */
        bool spoilt = fault == ZFAULT_DICT || fault == ZFAULT_BITS;
        if (i == victim || (i >= 3 && fault == ZFAULT_SHORT_INPUT))
            CHECK(!ok);
        else if (!(spoilt && i >= 3))
            CHECK(ok);
    }
    h_stop(&h);
    tblob_free(&t);
}

static void test_zran_corrupt(void)
{
    test_zran_fault(ZFAULT_CTX_INDEX, 4, "zran context 5 does not exist");
    test_zran_fault(ZFAULT_SLICE, 4, "lies outside zran context 1");
    test_zran_fault(ZFAULT_SHORT_INPUT, 5, "(zran context 1): inflating [");
    /* A wrong window inflates "fine" into wrong bytes: only the digest catches it. */
    test_zran_fault(ZFAULT_DICT, 3, "digest mismatch");
    test_zran_fault(ZFAULT_BITS, 3, "zran context 1");
}

/* ---- opening a SEPARATE blob: the ci table comes from the meta blob ------- */

typedef struct OpenCtx {
    NydusBlobOpen open;
    bool done;
    int res;
} OpenCtx;

static void open_done(NydusBlobOpen *o, int res)
{
    OpenCtx *c = cfn_container_of(o, OpenCtx, open);
    c->done = true;
    c->res = res;
}

static void test_zran_open_separate(void)
{
    TBlob t;
    if (!build_zran_blob(&t, 0))
        return;
    BlobInfo *parsed = tblob_parse(&t, 1u << 20);
    blob_info_free(parsed);
    CHECK(!strcmp(t.rb.meta_blob_id, META_ID));
    write_file(BLOB_ID, t.data, t.data_len);
    write_file(META_ID, t.meta, t.meta_file_len);

    Loop *loop;
    WorkPool *pool;
    Backend *backend;
    CHECK_EQ_INT(loop_new(&loop, 64), 0);
    CHECK_EQ_INT(workpool_new(&pool, loop, 1, NULL), 0);
    CHECK_EQ_INT(backend_localfs_new(&backend, loop, tmpdir), 0);
    OpenCtx oc = { .open = { .loop = loop, .pool = pool, .backend = backend, .backend_id = BLOB_ID,
                             .rb = &t.rb, .work_dir = NULL, .want_digests = true, .done = open_done } };
    nydus_blob_open(&oc.open);
    for (int i = 0; i < 1000 && !oc.done; i++)
        loop_run_once(loop, 10);
    CHECK(oc.done);
    if (oc.res < 0)
        fprintf(stderr, "  open: %s\n", oc.open.why);
    CHECK_EQ_INT(oc.res, 0);
    CHECK_EQ_INT(oc.open.object_size, t.data_len);
    CHECK_EQ_INT(oc.open.meta_object_size, t.meta_file_len);
    CHECK(!oc.open.have_digests);     /* images.c then takes them from the bootstrap's chunk table */
    if (oc.res == 0) {
        BlobInfo *b = oc.open.blob;
        CHECK_EQ_INT(b->chunk_count, 6);
        CHECK(b->chunks[4].flags & BLOB_CHUNK_ZRAN);
        CHECK_EQ_INT(b->chunks[4].ctx_index, 1);

        /* Served from the tar.gz (no digests loaded: the inflate itself must be right). */
        Harness h;
        workpool_free(pool);
        backend_free(backend);
        loop_free(loop);
        loop = NULL;
        h_start(&h, &t, b, 128 * 1024);
        CHECK_EQ_INT(h_read_all(&h), 0);
        uint8_t *want = tblob_expected(&t), *got = h_cache(&h);
        CHECK(memcmp(want, got, t.usize) == 0);
        free(want);
        free(got);
        h_stop(&h);
    }
    if (loop) {
        blob_info_free(oc.open.blob);
        workpool_free(pool);
        backend_free(backend);
        loop_free(loop);
    }

    /* Without the meta blob object the open fails and says which object. */
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, META_ID);
    unlink(path);
    CHECK_EQ_INT(loop_new(&loop, 64), 0);
    CHECK_EQ_INT(workpool_new(&pool, loop, 1, NULL), 0);
    CHECK_EQ_INT(backend_localfs_new(&backend, loop, tmpdir), 0);
    oc = (OpenCtx){ .open = { .loop = loop, .pool = pool, .backend = backend, .backend_id = BLOB_ID, .rb = &t.rb,
                              .done = open_done } };
    nydus_blob_open(&oc.open);
    for (int i = 0; i < 1000 && !oc.done; i++)
        loop_run_once(loop, 10);
    CHECK(oc.done && oc.res < 0);
    CHECK_WHY(oc.open.why, META_ID);
    workpool_free(pool);
    backend_free(backend);
    loop_free(loop);
    tblob_free(&t);
}

/*
 * With blob.digest and a TOC in the meta blob, nydus_blob_open() loads the
 * chunk digests from there, and a corrupt tar.gz then never reaches the
 * cache file: without them a flipped bit can inflate into wrong bytes.
 */
static void test_zran_separate_toc(void)
{
    TBlob t;
    if (!build_zran_blob(&t, 0))
        return;
    t.toc = true;
    blob_info_free(tblob_parse(&t, 1u << 20));
    CHECK(t.rb.features & RAFS_BLOB_HAS_TOC);
    write_file(META_ID, t.meta, t.meta_file_len);
    write_file(BLOB_ID, t.data, t.data_len);

    Loop *loop;
    WorkPool *pool;
    Backend *backend;
    CHECK_EQ_INT(loop_new(&loop, 64), 0);
    CHECK_EQ_INT(workpool_new(&pool, loop, 1, NULL), 0);
    CHECK_EQ_INT(backend_localfs_new(&backend, loop, tmpdir), 0);
    OpenCtx oc = { .open = { .loop = loop, .pool = pool, .backend = backend, .backend_id = BLOB_ID,
                             .rb = &t.rb, .want_digests = true, .done = open_done } };
    nydus_blob_open(&oc.open);
    for (int i = 0; i < 1000 && !oc.done; i++)
        loop_run_once(loop, 10);
    CHECK(oc.done);
    if (oc.res < 0)
        fprintf(stderr, "  open: %s\n", oc.open.why);
    CHECK_EQ_INT(oc.res, 0);
    CHECK(oc.open.have_digests);
    workpool_free(pool);
    backend_free(backend);
    loop_free(loop);
    if (oc.res < 0) {
        tblob_free(&t);
        return;
    }

    /* Context 1 starts at the checkpoint: spoil its first deflate bytes. */
    BlobMetaZran z;
    CHECK_EQ_INT(blob_meta_zran(oc.open.blob, 1, &z), 0);
    t.data[z.in_offset + 10] ^= 0x10;
    Harness h;
    h_start(&h, &t, oc.open.blob, 0);
    CHECK_EQ_INT(h_read_all(&h), -EIO);
    for (uint32_t i = 0; i < t.n; i++) {
        bool ok = chunk_written(&h, &t, i);     /* right or absent, never wrong */
        if (i < 3)
            CHECK(ok);
    }
    CHECK(!chunk_written(&h, &t, 3));
    h_stop(&h);
    tblob_free(&t);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/cfn-ctx-XXXXXX", tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(tmpdir) || codec_ctx_new(&codec) < 0)
        return 1;
    cfn_log_set_level(getenv("TEST_DEBUG") ? CFN_LOG_DEBUG : CFN_LOG_ERROR);

    RUN(test_batch_zstd);
    RUN(test_batch_lz4);
    RUN(test_batch_uncompressed);
    RUN(test_batch_partly_ready);
    RUN(test_batch_window);
    RUN(test_batch_corrupt);
    RUN(test_zran_fill);
    RUN(test_zran_corrupt);
    RUN(test_zran_open_separate);
    RUN(test_zran_separate_toc);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    codec_ctx_free(codec);
    return TEST_EXIT();
}
