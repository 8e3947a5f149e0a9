/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Blob meta reader on synthetic tables: V1, V2 (crc, batch, zran), ci
 * compressed with none/zstd/lz4, the `.blob.meta` cache format, and one
 * rejected table per validation rule. Truncations and byte flips must never
 * crash (ASan).
 */
#include <dirent.h>

#include "rafs-test-util.h"
#include "storage/codec/codec.h"
#include "storage/device/blob_meta.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/util/macros.h"
#include "uapi/rafs.h"

#define MiB (1u << 20)

static CodecCtx *codec;

typedef struct Chunk {
    uint64_t coff, uoff;
    uint32_t csize, usize;
    unsigned flags;
    uint64_t data;
} Chunk;

typedef struct Spec {
    uint32_t features;
    enum blob_compressor ci_comp;
    uint32_t n;
    const Chunk *chunks;
    const uint8_t *extra;           /* contexts + dictionaries after the entries */
    size_t extra_len;
    uint64_t zran_off, zran_size;
    uint32_t zran_count;
    uint64_t data_size;             /* chunk data bytes (ci_offset for non-SEPARATE) */
    uint64_t uncompressed_size;
    uint32_t cipher;
} Spec;

typedef struct Meta {
    RafsBlob rb;
    uint8_t *buf;                   /* compressed ci || 4 KiB header */
    size_t len;
    size_t csize;                   /* offset of the header in buf */
} Meta;

static int build(const Spec *s, Meta *m)
{
    bool v2 = s->features & RAFS_BLOB_CHUNK_INFO_V2;
    size_t esize = v2 ? 24 : 16;
    size_t ci_len = s->n * esize + s->extra_len;
    uint8_t *ci = calloc(1, ci_len + 1);
    for (uint32_t i = 0; i < s->n; i++) {
        const Chunk *c = &s->chunks[i];
        if (v2)
            rafs_ci_v2_encode((void *)(ci + i * esize), c->coff, c->csize, c->uoff, c->usize, c->flags, c->data);
        else
            rafs_ci_v1_encode((void *)(ci + i * esize), c->coff, c->csize, c->uoff, c->usize);
    }
    if (s->extra_len)
        memcpy(ci + s->n * esize, s->extra, s->extra_len);

    size_t csize = ci_len;
    uint8_t *cbuf = ci;
    if (s->ci_comp != BLOB_COMP_NONE) {
        size_t cap = codec_compress_bound(s->ci_comp, ci_len);
        cbuf = malloc(cap);
        ssize_t n = codec_compress(s->ci_comp, 0, ci, ci_len, cbuf, cap);
        CHECK(n > 0);
        csize = n > 0 ? (size_t)n : 0;
    }

    struct rafs_v6_blob_disk d;
    memset(&d, 0, sizeof(d));
    memset(d.blob_id, 'a', sizeof(d.blob_id));
    d.chunk_size = htole32(MiB);
    d.chunk_count = htole32(s->n);
    d.compression_algo = htole32(RAFS_COMPRESSOR_ZSTD);
    d.features = htole32(s->features);
    d.ci_compressor = htole32((uint32_t)s->ci_comp);
    bool separate = s->features & RAFS_BLOB_SEPARATE;
    d.ci_offset = htole64(separate ? 0 : s->data_size);
    d.ci_compressed_size = htole64(csize);
    d.ci_uncompressed_size = htole64(ci_len);
    d.compressed_size = htole64(separate ? s->data_size : s->data_size + csize + 4096);
    d.uncompressed_size = htole64(s->uncompressed_size);
    d.cipher_algo = htole32(s->cipher);
    if (separate)
        memset(d.blob_meta_digest, 0x5a, 32);
    char why[256] = "";
    int r = rafs_bootstrap_parse_blob(&d, 0, MiB, RAFS_SUPER_COMPRESSION_ZSTD | RAFS_SUPER_HASH_BLAKE3, 4096,
                                      &m->rb, why, sizeof(why));
    if (r < 0)
        fprintf(stderr, "build: %s\n", why);
    CHECK_EQ_INT(r, 0);

    struct rafs_ci_header_disk h;
    memset(&h, 0, sizeof(h));
    h.s_magic = h.s_magic2 = htole32(RAFS_CI_MAGIC);
    h.s_features = htole32(s->features);
    h.s_ci_compressor = htole32((uint32_t)s->ci_comp);
    h.s_ci_entries = htole32(s->n);
    h.s_ci_offset = d.ci_offset;
    h.s_ci_compressed_size = d.ci_compressed_size;
    h.s_ci_uncompressed_size = d.ci_uncompressed_size;
    h.s_ci_zran_offset = htole64(s->zran_off);
    h.s_ci_zran_size = htole64(s->zran_size);
    h.s_ci_zran_count = htole32(s->zran_count);

    m->csize = csize;
    m->len = csize + sizeof(h);
    m->buf = malloc(m->len);
    memcpy(m->buf, cbuf, csize);
    memcpy(m->buf + csize, &h, sizeof(h));
    if (cbuf != ci)
        free(cbuf);
    free(ci);
    return r;
}

static void meta_free(Meta *m)
{
    free(m->buf);
    m->buf = NULL;
}

/* Parse from an exact-size heap copy; returns the BlobInfo on success. */
static int parse(const Meta *m, size_t len, BlobInfo **out, char *why, size_t why_len)
{
    BlobInfo *b = NULL;
    *out = NULL;
    if (rafs_bootstrap_blob_info(&m->rb, &b) < 0)
        return -ENOMEM;
    uint8_t *copy = tu_dup(m->buf, len);
    int r = blob_meta_parse(codec, &m->rb, copy, len, b, why, why_len);
    free(copy);
    if (r < 0) {
        CHECK(b->meta_private == NULL);
        blob_info_free(b);
        return r;
    }
    *out = b;
    return 0;
}

static void expect_at(int line, const Spec *s, int want, const char *sub)
{
    Meta m;
    BlobInfo *b;
    char why[512] = "";
    build(s, &m);
    int r = parse(&m, m.len, &b, why, sizeof(why));
    if (r != want || (sub && !strstr(why, sub))) {
        fprintf(stderr, "%s:%d: expected %d \"%s\", got %d \"%s\"\n", __FILE__, line, want, sub ? sub : "", r, why);
        test_failures++;
    }
    blob_info_free(b);
    meta_free(&m);
}
#define EXPECT(s, want, sub) expect_at(__LINE__, (s), (want), (sub))

/* ---- V1 ---------------------------------------------------------------- */

static const Chunk v1_chunks[] = {
    { .coff = 0, .csize = 100, .uoff = 0, .usize = 5000 },
    { .coff = 100, .csize = 4096, .uoff = 0x2000, .usize = 4096 },
    { .coff = 4196, .csize = 50, .uoff = 0x3000, .usize = 1 },
};

static Spec v1_spec(const Chunk *c)
{
    return (Spec){ .features = RAFS_BLOB_CAP_TAR_TOC | RAFS_BLOB_ALIGNED, .n = 3, .chunks = c,
                   .data_size = 4246, .uncompressed_size = 0x3001 };
}

/* A regular table that compresses well: n chunks of 4096 bytes, 1000 compressed. */
#define GEN_N 64
static Chunk gen_chunks[GEN_N];

static Spec gen_spec(bool v2)
{
    for (uint32_t i = 0; i < GEN_N; i++)
        gen_chunks[i] = (Chunk){ .coff = i * 1000, .csize = 1000, .uoff = i * 4096ull, .usize = 4096,
                                 .flags = RAFS_CI_V2_COMPRESSED };
    Spec s = { .features = RAFS_BLOB_CAP_TAR_TOC | RAFS_BLOB_ALIGNED, .n = GEN_N, .chunks = gen_chunks,
               .data_size = GEN_N * 1000, .uncompressed_size = GEN_N * 4096 };
    if (v2)
        s.features |= RAFS_BLOB_CHUNK_INFO_V2;
    return s;
}

static void test_v1(void)
{
    static const enum blob_compressor comps[] = { BLOB_COMP_ZSTD, BLOB_COMP_LZ4_BLOCK };
    for (unsigned k = 0; k < 2; k++) {
        for (int v2 = 0; v2 < 2; v2++) {
            Spec s = gen_spec(v2);
            s.ci_comp = comps[k];
            Meta m;
            BlobInfo *b;
            char why[256] = "";
            build(&s, &m);
            CHECK(m.csize < m.rb.ci_uncompressed_size);
            CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), 0);
            if (b) {
                CHECK_EQ_INT(b->chunks[GEN_N - 1].uncompressed_offset, (GEN_N - 1) * 4096);
                CHECK_EQ_INT(b->chunks[GEN_N - 1].compressed_offset, (GEN_N - 1) * 1000);
                CHECK_EQ_INT(b->chunks[GEN_N - 1].flags, BLOB_CHUNK_COMPRESSED);
            }
            blob_info_free(b);
            meta_free(&m);
        }
    }
    for (unsigned k = 0; k < 1; k++) {
        Spec s = v1_spec(v1_chunks);
        Meta m;
        BlobInfo *b;
        char why[256] = "";
        build(&s, &m);
        uint64_t off, len;
        CHECK_EQ_INT(blob_meta_range(&m.rb, &off, &len, why, sizeof(why)), 0);
        CHECK_EQ_INT(off, 4246);
        CHECK_EQ_INT(len, m.len);
        CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), 0);
        if (!b) {
            fprintf(stderr, "%s\n", why);
            meta_free(&m);
            continue;
        }
        for (unsigned i = 0; i < 3; i++) {
            CHECK_EQ_INT(b->chunks[i].compressed_offset, v1_chunks[i].coff);
            CHECK_EQ_INT(b->chunks[i].compressed_size, v1_chunks[i].csize);
            CHECK_EQ_INT(b->chunks[i].uncompressed_offset, v1_chunks[i].uoff);
            CHECK_EQ_INT(b->chunks[i].uncompressed_size, v1_chunks[i].usize);
        }
        CHECK_EQ_INT(b->chunks[0].flags, BLOB_CHUNK_COMPRESSED);
        CHECK_EQ_INT(b->chunks[1].flags, 0);
        CHECK_EQ_INT(b->chunks[2].flags, BLOB_CHUNK_COMPRESSED);
        CHECK_EQ_INT(blob_info_validate(b, why, sizeof(why)), 0);
        blob_info_free(b);
        meta_free(&m);
    }

    /* 16 MiB chunks: sizes stored as size-1 in 24 bits. */
    static const Chunk big[] = {
        { .coff = 0, .csize = 16 * MiB, .uoff = 0, .usize = 16 * MiB },
        { .coff = 16 * MiB, .csize = 0xabcdef, .uoff = 16 * MiB, .usize = 16 * MiB },
    };
    struct rafs_chunk_info_v1_disk e;
    rafs_ci_v1_encode(&e, big[1].coff, big[1].csize, big[1].uoff, big[1].usize);
    CHECK_EQ_INT(rafs_ci_v1_compressed_size(&e), 0xabcdef);
    CHECK_EQ_INT(rafs_ci_v1_uncompressed_size(&e), 16 * MiB);
    CHECK_EQ_INT(rafs_ci_v1_uncompressed_offset(&e), 16 * MiB);
    CHECK_EQ_INT(rafs_ci_v1_compressed_offset(&e), 16 * MiB);
    rafs_ci_v1_encode(&e, 0xffffffffffull, 1, 0xffffffff000ull, 1);
    CHECK_EQ_INT(rafs_ci_v1_compressed_offset(&e), 0xffffffffffull);
    CHECK_EQ_INT(rafs_ci_v1_uncompressed_offset(&e), 0xffffffff000ull);
    (void)big;
}

static void test_v1_rules(void)
{
    Chunk c[3];
    Spec s;
#define RESET() (memcpy(c, v1_chunks, sizeof(c)), s = v1_spec(c))
    RESET();
    c[1].uoff = 0x1000;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 16): uncompressed range at 0x1000 overlaps ci[0] (ends 0x2000)");
    RESET();
    c[2].uoff = 0;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 32): uncompressed offset 0x0 is below ci[1]'s 0x2000: table not sorted");
    RESET();
    c[2].uoff = 0x4000;
    s.uncompressed_size = 0x5000;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 32): uncompressed offset 0x4000, dense 4 KiB packing requires 0x3000");
    RESET();
    c[0].uoff = 0x1000;
    EXPECT(&s, -EBADMSG, "ci[0] (ci byte 0): uncompressed offset 0x1000, dense 4 KiB packing requires 0x0");
    RESET();
    s.uncompressed_size = 0x3000;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 32): uncompressed range [0x3000, 0x3001) ends past the blob's uncompressed_size 0x3000");
    RESET();
    s.data_size = 4200;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 32): compressed range [4196, 4246) ends past the chunk data (4200 bytes)");
    RESET();
    c[1].coff = 99;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 16): compressed range [99, 4195) overlaps the previous chunk (ends 100)");
    RESET();
    c[2].coff = 50;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 32): compressed offset 50 is below ci[1]'s 100");
    RESET();
    s.uncompressed_size = 0x5000;
    EXPECT(&s, -EBADMSG, "uncompressed_size 20480 runs past its last chunk, which ends at 16384");
    RESET();
    c[1].usize = c[1].csize = 2 * MiB;
    s.uncompressed_size = 3 * MiB;     /* the most 3 chunks of 1 MiB can hold */
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 16): uncompressed size 2097152 exceeds the chunk size 1048576");
    RESET();
    c[0].csize = 2 * MiB;
    EXPECT(&s, -EBADMSG, "ci[0] (ci byte 0): compressed size 2097152 exceeds the chunk size");
#undef RESET
}

static void test_header_rules(void)
{
    static const struct { size_t off; int width; uint64_t val; const char *sub; } cases[] = {
        { 0, 4, 0xb10bb10c, "blob meta header s_magic @4294: 0xb10bb10c" },
        { 4092, 4, 0, "blob meta header s_magic2 @8386" },
        { 12, 4, 4, "s_ci_entries @4306: 4, bootstrap chunk_count is 3" },
        { 8, 4, 3, "s_ci_compressor @4302: 3, bootstrap ci_compressor is 0" },
        { 16, 8, 4247, "s_ci_offset @4310: 4247, bootstrap ci_offset is 4246" },
        { 24, 8, 47, "s_ci_compressed_size @4318: 47, bootstrap says 48" },
        { 32, 8, 64, "s_ci_uncompressed_size @4326: 64, bootstrap says 48" },
    };
    for (unsigned i = 0; i < CFN_ARRAY_SIZE(cases); i++) {
        Spec s = v1_spec(v1_chunks);
        Meta m;
        BlobInfo *b;
        char why[512] = "";
        build(&s, &m);
        uint8_t *h = m.buf + m.csize;
        if (cases[i].width == 4)
            tu_put32(h + cases[i].off, (uint32_t)cases[i].val);
        else
            tu_put64(h + cases[i].off, cases[i].val);
        int r = parse(&m, m.len, &b, why, sizeof(why));
        CHECK_EQ_INT(r, -EBADMSG);
        CHECK_WHY(why, cases[i].sub);
        blob_info_free(b);
        meta_free(&m);
    }

    /* Header features are not compared (merged bootstraps clear INLINED_FS_META). */
    Spec s = v1_spec(v1_chunks);
    Meta m;
    BlobInfo *b;
    char why[256] = "";
    build(&s, &m);
    tu_put32(m.buf + m.csize + 4, 0x70000023);
    CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), 0);
    blob_info_free(b);
    /* Wrong buffer length (short read). */
    CHECK_EQ_INT(parse(&m, m.len - 1, &b, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "blob meta is 4143 bytes, expected ci_compressed_size 48 + 4096 from offset 4246");
    meta_free(&m);

    /* A corrupt compressed ci. */
    s = gen_spec(false);
    s.ci_comp = BLOB_COMP_ZSTD;
    build(&s, &m);
    m.buf[m.csize / 2] ^= 0xff;
    m.buf[1] ^= 0xff;
    CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "ci table @64000");
    CHECK_WHY(why, "zstd) does not decompress to 1024 bytes");
    meta_free(&m);
    s.ci_comp = BLOB_COMP_LZ4_BLOCK;
    build(&s, &m);
    m.buf[0] ^= 0xf0;       /* the first token's literal length */
    CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "lz4_block) does not decompress to 1024 bytes");
    meta_free(&m);
}

/* ---- V2 ---------------------------------------------------------------- */

static Spec v2_spec(const Chunk *c, uint32_t n)
{
    return (Spec){ .features = RAFS_BLOB_CAP_TAR_TOC | RAFS_BLOB_CHUNK_INFO_V2 | RAFS_BLOB_ALIGNED, .n = n,
                   .chunks = c, .data_size = 4246, .uncompressed_size = 0x3001 };
}

static const Chunk v2_chunks[] = {
    { .coff = 0, .csize = 100, .uoff = 0, .usize = 5000, .flags = RAFS_CI_V2_COMPRESSED | RAFS_CI_V2_HAS_CRC32,
      .data = 0xdeadbeef },
    { .coff = 100, .csize = 4096, .uoff = 0x2000, .usize = 4096, .flags = 0 },
    { .coff = 4196, .csize = 50, .uoff = 0x3000, .usize = 1, .flags = RAFS_CI_V2_COMPRESSED },
};

static void test_v2(void)
{
    Spec s = v2_spec(v2_chunks, 3);
    Meta m;
    BlobInfo *b;
    char why[256] = "";
    build(&s, &m);
    CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), 0);
    if (b) {
        CHECK_EQ_INT(b->chunks[0].flags, BLOB_CHUNK_COMPRESSED | BLOB_CHUNK_HAS_CRC32);
        CHECK_EQ_INT(b->chunks[0].crc32, 0xdeadbeef);
        CHECK_EQ_INT(b->chunks[1].flags, 0);
        CHECK_EQ_INT(b->chunks[2].uncompressed_size, 1);
        CHECK_EQ_INT(b->chunks[2].compressed_offset, 4196);
    }
    blob_info_free(b);
    meta_free(&m);

    struct rafs_chunk_info_v2_disk e;
    rafs_ci_v2_encode(&e, 0xffffffffffull, 0xffffff, 0xffffffff000ull, 16 * MiB, 0x1f, 0x0123456789abcdefull);
    CHECK_EQ_INT(rafs_ci_v2_compressed_offset(&e), 0xffffffffffull);
    CHECK_EQ_INT(rafs_ci_v2_compressed_size(&e), 0xffffff);
    CHECK_EQ_INT(rafs_ci_v2_uncompressed_offset(&e), 0xffffffff000ull);
    CHECK_EQ_INT(rafs_ci_v2_uncompressed_size(&e), 16 * MiB);
    CHECK_EQ_INT(rafs_ci_v2_flags(&e), 0x1f);
    CHECK_EQ_INT(rafs_ci_v2_data_hi(&e), 0x01234567);
    CHECK_EQ_INT(rafs_ci_v2_data_lo(&e), 0x89abcdef);
}

static void test_v2_rules(void)
{
    Chunk c[3];
    Spec s;
#define RESET() (memcpy(c, v2_chunks, sizeof(c)), s = v2_spec(c, 3))
    RESET();
    c[1].flags = 0x20;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): unknown chunk flags 0x20");
    RESET();
    c[1].flags = RAFS_CI_V2_ENCRYPTED;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): ENCRYPTED chunk in a blob without ENCRYPTED");
    RESET();
    c[1].flags = RAFS_CI_V2_ZRAN;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): ZRAN chunk in a blob without the ZRAN feature");
    RESET();
    c[1].flags = RAFS_CI_V2_BATCH | RAFS_CI_V2_COMPRESSED;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): BATCH chunk in a blob without the BATCH feature");
    RESET();
    c[0].data = 0xffffffff00000000ull;
    EXPECT(&s, -EBADMSG, "ci[0] (ci byte 0): HAS_CRC32 with a zero crc32");
    RESET();
    c[2].csize = 0;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 48): compressed size is 0");
    RESET();
    c[1].csize = 4000;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): uncompressed chunk with compressed size 4000 != uncompressed size 4096");
    RESET();
    c[2].uoff = 0x2000;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 48): uncompressed range at 0x2000 overlaps ci[1]");
#undef RESET
}

/* ---- batch ------------------------------------------------------------- */

#define BATCH_FEATURES (RAFS_BLOB_CAP_TAR_TOC | RAFS_BLOB_BATCH | RAFS_BLOB_CHUNK_INFO_V2 | RAFS_BLOB_ALIGNED)

static const Chunk batch_chunks[] = {
    { .coff = 0, .csize = 0, .uoff = 0, .usize = 100, .flags = RAFS_CI_V2_BATCH | RAFS_CI_V2_COMPRESSED, .data = 0 },
    { .coff = 0, .csize = 0, .uoff = 0x1000, .usize = 200, .flags = RAFS_CI_V2_BATCH | RAFS_CI_V2_COMPRESSED,
      .data = 100 },
    { .coff = 60, .csize = 10, .uoff = 0x2000, .usize = 4096, .flags = RAFS_CI_V2_COMPRESSED },
};

static void batch_ctx(uint8_t out[40], uint32_t csize, uint32_t usize)
{
    memset(out, 0, 40);
    tu_put32(out, csize);
    tu_put32(out + 4, usize);
}

static Spec batch_spec(const Chunk *c, const uint8_t *ctx)
{
    return (Spec){ .features = BATCH_FEATURES, .n = 3, .chunks = c, .extra = ctx, .extra_len = 40,
                   .zran_off = 72, .zran_size = 40, .zran_count = 1, .data_size = 70, .uncompressed_size = 0x3000 };
}

static void test_batch(void)
{
    uint8_t ctx[40];
    batch_ctx(ctx, 60, 300);
    Spec s = batch_spec(batch_chunks, ctx);
    s.ci_comp = BLOB_COMP_ZSTD;
    Meta m;
    BlobInfo *b;
    char why[256] = "";
    build(&s, &m);
    CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), 0);
    if (!b) {
        fprintf(stderr, "%s\n", why);
        meta_free(&m);
        return;
    }
    CHECK_EQ_INT(b->chunks[0].flags, BLOB_CHUNK_BATCH | BLOB_CHUNK_COMPRESSED);
    CHECK_EQ_INT(b->chunks[0].ctx_index, 0);
    CHECK_EQ_INT(b->chunks[0].ctx_offset, 0);
    CHECK_EQ_INT(b->chunks[1].ctx_offset, 100);
    CHECK_EQ_INT(b->chunks[2].flags, BLOB_CHUNK_COMPRESSED);
    BlobMetaBatch bt;
    CHECK_EQ_INT(blob_meta_batch(b, 0, &bt), 0);
    CHECK_EQ_INT(bt.compressed_offset, 0);
    CHECK_EQ_INT(bt.compressed_size, 60);
    CHECK_EQ_INT(bt.uncompressed_size, 300);
    CHECK(bt.compressed);
    CHECK_EQ_INT(blob_meta_batch(b, 1, &bt), -ENOENT);
    CHECK_EQ_INT(blob_info_validate(b, why, sizeof(why)), 0);

    /* The cache file keeps the contexts. */
    char *dir = tu_tmpdir();
    BlobInfo *again = NULL;
    CHECK_EQ_INT(blob_meta_cache_save(dir, b, why, sizeof(why)), 0);
    CHECK_EQ_INT(rafs_bootstrap_blob_info(&m.rb, &again), 0);
    CHECK_EQ_INT(blob_meta_cache_load(dir, &m.rb, again, why, sizeof(why)), 0);
    CHECK_EQ_INT(blob_meta_batch(again, 0, &bt), 0);
    CHECK_EQ_INT(bt.compressed_size, 60);
    if (again->meta_private)
        CHECK(!memcmp(again->chunks, b->chunks, 3 * sizeof(BlobChunkInfo)));
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.blob.meta", dir, m.rb.id);
    unlink(path);
    rmdir(dir);
    free(dir);
    blob_info_free(again);
    blob_info_free(b);
    meta_free(&m);
}

/*
 * A ci table that zstd squeezes into a few KiB but that claims 64 MiB: its
 * header names 3 entries and 1 batch context, so it is refused before a
 * byte is decompressed (or written to work_dir). IS_CHUNKDICT_GENERATED
 * takes the bootstrap's own size check out of the way.
 */
static void test_ci_bomb(void)
{
    size_t pad = 64u << 20;
    uint8_t *ctx = calloc(1, 40 + pad);
    batch_ctx(ctx, 60, 300);
    Spec s = batch_spec(batch_chunks, ctx);
    s.features |= RAFS_BLOB_IS_CHUNKDICT_GENERATED;
    s.ci_comp = BLOB_COMP_ZSTD;
    s.extra_len = 40 + pad;
    Meta m;
    BlobInfo *b;
    char why[256] = "";
    build(&s, &m);
    free(ctx);
    CHECK(m.csize < 64 * 1024);
    CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), -EBADMSG);
    if (!strstr(why, "3 entries and 1 contexts fill at most 112 bytes, not ci_uncompressed_size 67108976")) {
        fprintf(stderr, "unexpected: %s\n", why);
        CHECK(!"ci bomb message");
    }
    fprintf(stderr, "%zu-byte ci claiming %" PRIu64 " bytes: %s\n", m.csize, m.rb.ci_uncompressed_size, why);
    blob_info_free(b);
    meta_free(&m);
}

static void test_batch_rules(void)
{
    Chunk c[3];
    uint8_t ctx[40];
    Spec s;
#define RESET() (memcpy(c, batch_chunks, sizeof(c)), batch_ctx(ctx, 60, 300), s = batch_spec(c, ctx))
    RESET();
    c[1].data = 1ull << 32;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): batch index 1 >= 1 contexts");
    RESET();
    c[1].data = 101;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): batch range [101, +200) outside batch 0's 300 bytes");
    RESET();
    batch_ctx(ctx, 301, 300);
    EXPECT(&s, -EBADMSG, "batch context 0 (ci byte 72): compressed_size 301 not in 1..uncompressed_batch_size 300");
    RESET();
    batch_ctx(ctx, 0, 300);
    EXPECT(&s, -EBADMSG, "batch context 0 (ci byte 72): compressed_size 0");
    RESET();
    batch_ctx(ctx, 60, 17 * MiB);
    EXPECT(&s, -EBADMSG, "batch context 0 (ci byte 76): uncompressed_batch_size 17825792 exceeds 16 MiB");
    RESET();
    c[1].coff = 1;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): compressed offset 1 differs from batch 0's 0");
    RESET();
    c[2].coff = 59;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 48): compressed range [59, 69) overlaps the previous chunk (ends 60)");
    RESET();
    c[2].coff = 65;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 48): compressed range [65, 75) ends past the chunk data (70 bytes)");
    RESET();
    batch_ctx(ctx, 71, 300);
    EXPECT(&s, -EBADMSG, "ci[0] (ci byte 0): batch 0 data [0, +71) ends past the chunk data (70 bytes)");
    RESET();
    c[2].flags |= RAFS_CI_V2_BATCH;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 48): batch range [0, +4096) outside batch 0's 300 bytes");
    RESET();
    c[0].flags |= RAFS_CI_V2_HAS_CRC32;
    EXPECT(&s, -EBADMSG, "ci[0] (ci byte 0): flags 0x15: HAS_CRC32 on a ZRAN/BATCH chunk");
    RESET();
    s.zran_off = 48;
    EXPECT(&s, -EBADMSG, "s_ci_zran_offset @222: 1 batch contexts at 48");
    RESET();
    s.zran_count = 2;
    EXPECT(&s, -EBADMSG, "s_ci_zran_offset @222: 2 batch contexts at 72 are outside the ci");
    RESET();
    /* A batch that resumes after a plain chunk. */
    Chunk r4[4];
    memcpy(r4, batch_chunks, sizeof(batch_chunks));
    r4[3] = (Chunk){ .coff = 0, .csize = 0, .uoff = 0x3000, .usize = 10, .flags = RAFS_CI_V2_BATCH | RAFS_CI_V2_COMPRESSED };
    s.chunks = r4;
    s.n = 4;
    s.zran_off = 96;
    s.uncompressed_size = 0x4000;
    EXPECT(&s, -EBADMSG, "ci[3] (ci byte 72): compressed offset 0 is below ci[2]'s 60");
#undef RESET
}

/* ---- ZRan (SEPARATE) --------------------------------------------------- */

#define ZRAN_FEATURES (RAFS_BLOB_SEPARATE | RAFS_BLOB_ZRAN | RAFS_BLOB_CHUNK_INFO_V2 | RAFS_BLOB_ALIGNED)

static const Chunk zran_chunks[] = {
    { .coff = 0, .csize = 1000, .uoff = 0, .usize = 4096, .flags = RAFS_CI_V2_ZRAN | RAFS_CI_V2_COMPRESSED,
      .data = 0 },
    { .coff = 0, .csize = 1000, .uoff = 0x1000, .usize = 4096, .flags = RAFS_CI_V2_ZRAN | RAFS_CI_V2_COMPRESSED,
      .data = 4096 },
    { .coff = 1000, .csize = 500, .uoff = 0x2000, .usize = 4096, .flags = RAFS_CI_V2_ZRAN | RAFS_CI_V2_COMPRESSED,
      .data = 1ull << 32 },
};

static void zran_ctx(uint8_t *out, uint64_t in_off, uint32_t in_len, uint64_t out_off, uint32_t out_len,
                     uint64_t dict_off, uint32_t dict_size, uint8_t byte, uint8_t bits)
{
    memset(out, 0, 40);
    tu_put64(out, in_off);
    tu_put64(out + 8, out_off);
    tu_put64(out + 16, dict_off);
    tu_put32(out + 24, in_len);
    tu_put32(out + 28, out_len);
    tu_put32(out + 32, dict_size);
    out[36] = byte;
    out[37] = bits;
}

static void zran_extra(uint8_t extra[112])
{
    zran_ctx(extra, 0, 1000, 0, 8192, 0, 16, 0x55, 3);
    zran_ctx(extra + 40, 1000, 500, 8192, 4096, 16, 16, 0, 0);
    for (int i = 0; i < 32; i++)
        extra[80 + i] = (uint8_t)i;
}

static Spec zran_spec(const Chunk *c, const uint8_t *extra)
{
    return (Spec){ .features = ZRAN_FEATURES, .ci_comp = BLOB_COMP_ZSTD, .n = 3, .chunks = c, .extra = extra,
                   .extra_len = 112, .zran_off = 72, .zran_size = 112, .zran_count = 2, .data_size = 1500,
                   .uncompressed_size = 0x3000 };
}

static void test_zran(void)
{
    uint8_t extra[112];
    zran_extra(extra);
    Spec s = zran_spec(zran_chunks, extra);
    Meta m;
    BlobInfo *b;
    char why[256] = "";
    build(&s, &m);
    CHECK(!strcmp(m.rb.meta_blob_id, "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"));
    uint64_t off, len;
    CHECK_EQ_INT(blob_meta_range(&m.rb, &off, &len, why, sizeof(why)), 0);
    CHECK_EQ_INT(off, 0);
    CHECK_EQ_INT(len, m.len);
    CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), 0);
    if (!b) {
        fprintf(stderr, "%s\n", why);
        meta_free(&m);
        return;
    }
    CHECK_EQ_INT(b->chunks[1].flags, BLOB_CHUNK_ZRAN | BLOB_CHUNK_COMPRESSED);
    CHECK_EQ_INT(b->chunks[1].ctx_index, 0);
    CHECK_EQ_INT(b->chunks[1].ctx_offset, 4096);
    CHECK_EQ_INT(b->chunks[2].ctx_index, 1);
    BlobMetaZran z;
    CHECK_EQ_INT(blob_meta_zran(b, 1, &z), 0);
    CHECK_EQ_INT(z.in_offset, 1000);
    CHECK_EQ_INT(z.in_len, 500);
    CHECK_EQ_INT(z.out_offset, 8192);
    CHECK_EQ_INT(z.out_len, 4096);
    CHECK_EQ_INT(z.dict_size, 16);
    CHECK(z.dict && z.dict[0] == 16 && z.dict[15] == 31);
    CHECK_EQ_INT(blob_meta_zran(b, 0, &z), 0);
    CHECK_EQ_INT(z.ctx_byte, 0x55);
    CHECK_EQ_INT(z.ctx_bits, 3);
    CHECK(z.dict && z.dict[0] == 0);
    CHECK_EQ_INT(blob_meta_zran(b, 2, &z), -ENOENT);
    CHECK_EQ_INT(blob_info_validate(b, why, sizeof(why)), 0);
    blob_info_free(b);
    meta_free(&m);
}

static void test_zran_rules(void)
{
    Chunk c[3];
    uint8_t extra[112];
    Spec s;
#define RESET() (memcpy(c, zran_chunks, sizeof(c)), zran_extra(extra), s = zran_spec(c, extra))
    RESET();
    c[2].data = 2ull << 32;
    EXPECT(&s, -EBADMSG, "ci[2] (ci byte 48): zran index 2 >= 2 contexts");
    RESET();
    c[1].data = 4097;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): zran range [4097, +4096) outside context 0's 8192 output bytes");
    RESET();
    c[1].flags = RAFS_CI_V2_COMPRESSED;
    EXPECT(&s, -EBADMSG, "ci[1] (ci byte 24): non-ZRAN chunk in a ZRAN blob");
    RESET();
    c[1].flags |= RAFS_CI_V2_BATCH;
    EXPECT(&s, -EBADMSG, "BATCH chunk in a blob without the BATCH feature");
    RESET();
    zran_ctx(extra + 40, 1000, 500, 8192, 4096, 20, 16, 0, 0);
    EXPECT(&s, -EBADMSG, "zran context 1 (ci byte 112): dictionary [20, +16) is outside the 32-byte dictionary table");
    RESET();
    zran_ctx(extra + 40, 1000, 501, 8192, 4096, 16, 16, 0, 0);
    EXPECT(&s, -EBADMSG, "zran context 1 (ci byte 112): input [1000, +501)");
    RESET();
    zran_ctx(extra, 0, 1000, 0, 8192, 0, 16, 0x55, 8);
    EXPECT(&s, -EBADMSG, "zran context 0 (ci byte 109): ctx_bits 8 > 7");
    RESET();
    s.zran_off = 80;
    EXPECT(&s, -EBADMSG, "s_ci_zran_offset @");
    RESET();
    s.zran_size = 113;
    EXPECT(&s, -EBADMSG, "s_ci_zran_size @");
    RESET();
    s.zran_count = 4;
    EXPECT(&s, -EBADMSG, "s_ci_zran_count @");
    RESET();
    s.zran_count = 3;
    s.zran_size = 112;
    EXPECT(&s, -EBADMSG, "3 contexts do not fit s_ci_zran_size 112");
    RESET();
    s.data_size = 1499;
    EXPECT(&s, -EBADMSG, "zran context 1 (ci byte 112): input [1000, +500)");
    RESET();
    s.zran_count = 0;
    EXPECT(&s, -EBADMSG, "s_ci_zran_size @");
#undef RESET
}

/* ---- refusals ---------------------------------------------------------- */

static void test_unsupported(void)
{
    Spec s = v2_spec(v2_chunks, 3);
    s.features |= RAFS_BLOB_ENCRYPTED;
    s.cipher = RAFS_CIPHER_AES128XTS;
    Meta m;
    BlobInfo *b;
    char why[256] = "";
    uint64_t off, len;
    build(&s, &m);
    CHECK_EQ_INT(blob_meta_range(&m.rb, &off, &len, why, sizeof(why)), -ENOTSUP);
    CHECK_WHY(why, "is encrypted (AES-128-XTS); encrypted images are not supported");
    CHECK_EQ_INT(parse(&m, m.len, &b, why, sizeof(why)), -ENOTSUP);
    meta_free(&m);

    /* EXTERNAL blobs keep their chunks elsewhere. */
    s = v1_spec(v1_chunks);
    s.features |= RAFS_BLOB_EXTERNAL;
    build(&s, &m);
    CHECK_EQ_INT(blob_meta_range(&m.rb, &off, &len, why, sizeof(why)), -ENOTSUP);
    CHECK_WHY(why, "is EXTERNAL");
    meta_free(&m);

    /* No ci at all. */
    s = v1_spec(v1_chunks);
    build(&s, &m);
    m.rb.ci_compressed_size = m.rb.ci_uncompressed_size = 0;
    CHECK_EQ_INT(blob_meta_range(&m.rb, &off, &len, why, sizeof(why)), -ENOTSUP);
    CHECK_WHY(why, "has no blob meta");
    meta_free(&m);

    /* SEPARATE without naming the meta blob (inline-meta ZRan). */
    uint8_t extra[112];
    zran_extra(extra);
    s = zran_spec(zran_chunks, extra);
    build(&s, &m);
    m.rb.meta_blob_id[0] = '\0';
    CHECK_EQ_INT(blob_meta_range(&m.rb, &off, &len, why, sizeof(why)), -ENOTSUP);
    CHECK_WHY(why, "inline-meta ZRan");
    meta_free(&m);

    /* A BlobInfo of the wrong shape. */
    s = v1_spec(v1_chunks);
    build(&s, &m);
    BlobInfo *wrong;
    CHECK_EQ_INT(blob_info_new(&wrong, "x", 2), 0);
    CHECK_EQ_INT(blob_meta_parse(codec, &m.rb, m.buf, m.len, wrong, why, sizeof(why)), -EINVAL);
    blob_info_free(wrong);
    /* Saving needs a parsed blob; ids must be safe file names. */
    CHECK_EQ_INT(blob_info_new(&wrong, "../x", 3), 0);
    CHECK_EQ_INT(blob_meta_cache_save("/tmp", wrong, why, sizeof(why)), -EINVAL);
    blob_info_free(wrong);
    meta_free(&m);
}

/* ---- robustness -------------------------------------------------------- */

static void robustness(const Spec *s)
{
    Meta m;
    BlobInfo *b;
    char why[256];
    build(s, &m);
    for (size_t len = 0; len <= m.len; len++) {
        if (parse(&m, len, &b, why, sizeof(why)) == 0) {
            CHECK_EQ_INT(len, m.len);
            blob_info_free(b);
        }
    }
    /* The cache layout: every length, and the right length. */
    BlobInfo *full = NULL;
    if (parse(&m, m.len, &full, why, sizeof(why)) == 0) {
        const uint8_t *ci, *hdr;
        size_t ci_len;
        blob_meta_raw(full, &ci, &ci_len, &hdr);
        size_t clen = (size_t)blob_meta_cache_size(&m.rb);
        uint8_t *cf = calloc(1, clen);
        memcpy(cf, ci, ci_len);
        memcpy(cf + clen - 4096, hdr, 4096);
        for (size_t len = 0; len <= clen; len++) {
            BlobInfo *x = NULL;
            uint8_t *copy = tu_dup(cf, len);
            if (rafs_bootstrap_blob_info(&m.rb, &x) == 0) {
                int r = blob_meta_parse_cache(&m.rb, copy, len, x, why, sizeof(why));
                CHECK(r == (len == clen ? 0 : -EBADMSG));
                blob_info_free(x);
            }
            free(copy);
        }
        free(cf);
        blob_info_free(full);
    }
    /* Byte flips in the table and header. */
    uint64_t seed = 0x243f6a8885a308d3ull;
    for (int it = 0; it < 3000; it++) {
        uint8_t *save = tu_dup(m.buf, m.len);
        for (int k = 0; k < 1 + it % 3; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)((seed >> 33) % (m.csize + 64));
            m.buf[at] ^= (uint8_t)(1u << ((seed >> 20) & 7));
        }
        if (parse(&m, m.len, &b, why, sizeof(why)) == 0) {
            if (blob_info_validate(b, why, sizeof(why))) {
                fprintf(stderr, "accepted a table blob.c rejects: %s\n", why);
                test_failures++;
            }
            blob_info_free(b);
        }
        memcpy(m.buf, save, m.len);
        free(save);
    }
    meta_free(&m);
}

static void test_robustness(void)
{
    uint8_t ctx[40], extra[112];
    batch_ctx(ctx, 60, 300);
    zran_extra(extra);
    Spec v1 = v1_spec(v1_chunks), v2 = v2_spec(v2_chunks, 3);
    Spec bt = batch_spec(batch_chunks, ctx), zr = zran_spec(zran_chunks, extra);
    robustness(&v1);
    robustness(&v2);
    Spec g = gen_spec(true);
    g.ci_comp = BLOB_COMP_LZ4_BLOCK;
    robustness(&g);
    robustness(&bt);
    zr.ci_comp = BLOB_COMP_NONE;
    robustness(&zr);
    zr.ci_comp = BLOB_COMP_ZSTD;
    robustness(&zr);
}

int main(void)
{
    if (codec_ctx_new(&codec) < 0)
        return 1;
    RUN(test_v1);
    RUN(test_v1_rules);
    RUN(test_header_rules);
    RUN(test_v2);
    RUN(test_v2_rules);
    RUN(test_batch);
    RUN(test_batch_rules);
    RUN(test_ci_bomb);
    RUN(test_zran);
    RUN(test_zran_rules);
    RUN(test_unsupported);
    RUN(test_robustness);
    codec_ctx_free(codec);
    return TEST_EXIT();
}
