/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * TOC reader: mutations of the fixture's TOC (one per rule), synthetic blob
 * tails (zstd image.boot, zstd blob.digest, a bare image.boot without TOC),
 * and every truncation of the tail.
 */
#include "rafs-test-util.h"
#include "storage/codec/codec.h"
#include "storage/device/blob_meta.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/device/toc.h"
#include "storage/util/macros.h"
#include "uapi/rafs.h"

static uint8_t *blob, *boot;
static size_t blob_len, boot_len;
static CodecCtx *codec;
static RafsBootstrap bs;

enum { TOC_AT = 13530, TOC_HDR = 14042 };

static void tar_checksum(uint8_t *h)
{
    unsigned sum = 0;
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* A GNU header as nydus writes it, checksum included. */
static void tar_header(uint8_t *h, const char *name, uint64_t size)
{
    memset(h, 0, 512);
    strncpy((char *)h, name, 100);
    memcpy(h + 100, "0000644", 7);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    memcpy(h + 136, "00000000000", 11);
    h[156] = '0';
    memcpy(h + 257, "ustar  ", 8);
    tar_checksum(h);
}

static void toc_entry(uint8_t *e, uint32_t flags, const char *name, CodecCtx *c, const void *content, size_t usize,
                      uint64_t off, uint64_t csize)
{
    memset(e, 0, 128);
    tu_put32(e, flags);
    strncpy((char *)e + 8, name, 16);
    if (content)
        codec_digest(c, BLOB_DIGEST_SHA256, content, usize, e + 24);
    tu_put64(e + 56, off);
    tu_put64(e + 64, csize);
    tu_put64(e + 72, usize);
}

static int parse_tail(const uint8_t *b, size_t len, uint64_t off, const uint8_t *digest, Toc *t, char *why,
                      size_t why_len)
{
    uint8_t *copy = tu_dup(b, len);
    int r = toc_parse(codec, copy, len, off, digest, t, why, why_len);
    free(copy);
    return r;
}

static void expect_at(int line, const uint8_t *b, int want, const char *sub)
{
    Toc t;
    char why[512] = "";
    int r = parse_tail(b + TOC_AT, 1024, TOC_AT, bs.blobs[0].toc_digest, &t, why, sizeof(why));
    if (r != want || (sub && !strstr(why, sub))) {
        fprintf(stderr, "%s:%d: expected %d \"%s\", got %d \"%s\"\n", __FILE__, line, want, sub ? sub : "", r, why);
        test_failures++;
    }
    if (r == 0)
        toc_clear(&t);
    else
        CHECK(t.entries == NULL && t.count == 0);
}
#define EXPECT(b, want, sub) expect_at(__LINE__, (b), (want), (sub))

static void test_tail_range(void)
{
    RafsBlob rb = bs.blobs[0];
    uint64_t off, len;
    char why[256] = "";
    static const uint32_t bad[] = { 100, 511, 640 + 1, 0x10080 };
    for (unsigned i = 0; i < CFN_ARRAY_SIZE(bad); i++) {
        rb.toc_size = bad[i];
        CHECK_EQ_INT(toc_tail_range(&rb, blob_len, &off, &len, why, sizeof(why)), -EBADMSG);
        CHECK_WHY(why, "blob_toc_size");
    }
    rb.toc_size = 1024;
    CHECK_EQ_INT(toc_tail_range(&rb, 1000, &off, &len, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "exceeds the 1000-byte blob");
    rb.toc_size = 0;
    CHECK_EQ_INT(toc_tail_range(&rb, 700, &off, &len, why, sizeof(why)), 0);
    CHECK_EQ_INT(off, 700 - 640);
    CHECK_EQ_INT(len, 640);
    CHECK_EQ_INT(toc_tail_range(&rb, 511, &off, &len, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "too small");
    CHECK_EQ_INT(toc_tail_range(NULL, 100000, &off, &len, why, sizeof(why)), 0);
    CHECK_EQ_INT(len, 4096);
}

static void test_toc_rules(void)
{
    uint8_t *b = tu_dup(blob, blob_len);
    EXPECT(b, 0, NULL);

    /* The bootstrap's digest covers entries + header: any byte change is caught. */
    b[TOC_AT + 100] ^= 1;
    EXPECT(b, -EBADMSG, "blob TOC @13530 (+1024): sha256 ");
    EXPECT(b, -EBADMSG, "differs from blob_toc_digest cfc89ed0739aef4e...");
    memcpy(b, blob, blob_len);

    /* Tar header rules (checked before the digest). */
    b[TOC_HDR + 148] = '1';
    EXPECT(b, -EBADMSG, "tar header chksum @14190");
    memcpy(b, blob, blob_len);
    b[TOC_HDR + 257] = 'U';
    tar_checksum(b + TOC_HDR);
    EXPECT(b, -EBADMSG, "tar header magic @14299");
    memcpy(b, blob, blob_len);
    b[TOC_HDR + 156] = '5';
    tar_checksum(b + TOC_HDR);
    EXPECT(b, -EBADMSG, "tar header typeflag @14198: '5'");
    memcpy(b, blob, blob_len);
    b[TOC_HDR + 0] = 'R';
    tar_checksum(b + TOC_HDR);
    EXPECT(b, -EBADMSG, "tar header name @14042: \"Rafs.blob.toc\", expected \"rafs.blob.toc\"");
    memcpy(b, blob, blob_len);
    b[TOC_HDR + 3] = 0x01;
    tar_checksum(b + TOC_HDR);
    EXPECT(b, -EBADMSG, "tar header name @14045: byte 3 (0x01) is not printable");
    memcpy(b, blob, blob_len);
    memset(b + TOC_HDR + 124, 'x', 3);
    tar_checksum(b + TOC_HDR);
    EXPECT(b, -EBADMSG, "tar header size @14166: not an octal number");
    tar_header(b + TOC_HDR, "rafs.blob.toc", 500);
    EXPECT(b, -EBADMSG, "TOC of 500 bytes is not a multiple of 128");
    tar_header(b + TOC_HDR, "rafs.blob.toc", 640);
    EXPECT(b, -EBADMSG, "TOC of 640 bytes exceeds the 512 bytes read before it");
    memset(b + TOC_HDR, 0, 100);
    tar_checksum(b + TOC_HDR);
    EXPECT(b, -EBADMSG, "tar header name @14042: empty");

    /* Entry rules: checked with the digest check off. */
    static const struct { size_t off; int width; uint64_t val; const char *sub; } cases[] = {
        { 0, 4, 3, "TOC entry image.blob flags @13530: 0x00000003" },
        { 0, 4, 0x11, "flags @13530: 0x00000011" },
        { 0, 4, 0, "flags @13530: 0x00000000" },
        { 128 + 0, 4, 8, "TOC entry blob.meta flags @13658: 0x00000008" },
        { 8, 1, 0, "TOC entry name @13538: empty" },
        { 8 + 3, 1, 0x01, "TOC entry name @13541: byte 3 (0x01)" },
        { 8 + 3, 1, ' ', "TOC entry name @13541: byte 3 (0x20)" },
        { 128 + 8 + 12, 1, 'x', "TOC entry name @13678: byte 12 (0x78)" },
    };
    for (unsigned i = 0; i < CFN_ARRAY_SIZE(cases); i++) {
        memcpy(b, blob, blob_len);
        if (cases[i].width == 1)
            b[TOC_AT + cases[i].off] = (uint8_t)cases[i].val;
        else
            tu_put32(b + TOC_AT + cases[i].off, (uint32_t)cases[i].val);
        Toc t;
        char why[512] = "";
        CHECK_EQ_INT(parse_tail(b + TOC_AT, 1024, TOC_AT, NULL, &t, why, sizeof(why)), -EBADMSG);
        CHECK_WHY(why, cases[i].sub);
    }
    memcpy(b, blob, blob_len);
    memcpy(b + TOC_AT + 128 + 8, "image.blob\0\0\0\0\0\0", 16);
    Toc t;
    char why[512] = "";
    CHECK_EQ_INT(parse_tail(b + TOC_AT, 1024, TOC_AT, NULL, &t, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "TOC entry name @13666: \"image.blob\" appears twice");
    /* reserved bytes are ignored (the fixture has some set). */
    memcpy(b, blob, blob_len);
    b[TOC_AT + 4] = 1;
    b[TOC_AT + 100] = 1;
    CHECK_EQ_INT(parse_tail(b + TOC_AT, 1024, TOC_AT, NULL, &t, why, sizeof(why)), 0);
    toc_clear(&t);
    free(b);
}

static void test_entries(void)
{
    Toc t;
    char why[512] = "";
    uint64_t off, len;
    CHECK_EQ_INT(parse_tail(blob + TOC_AT, 1024, TOC_AT, NULL, &t, why, sizeof(why)), 0);
    /* The pre-release image.blob entry points past the TOC: rejected if anyone asks. */
    const TocEntry *ib = toc_find(&t, RAFS_TOC_NAME_BLOB_RAW);
    CHECK(ib != NULL);
    if (ib) {
        CHECK_EQ_INT(toc_entry_range(&t, ib, &off, &len, why, sizeof(why)), -EBADMSG);
        CHECK_WHY(why, "TOC entry image.blob: range [7802, +7802) does not end before the TOC at 13530");
    }

    BlobInfo *info;
    CHECK_EQ_INT(rafs_bootstrap_blob_info(&bs.blobs[0], &info), 0);
    /* Wrong length, corrupt content, wrong declared size, missing entry. */
    CHECK_EQ_INT(toc_load_digests(codec, &t, blob + 12954, 63, info, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "TOC entry blob.digest: got 63 bytes, the entry at 12954 holds 64");
    uint8_t *d = tu_dup(blob + 12954, 64);
    d[5] ^= 1;
    CHECK_EQ_INT(toc_load_digests(codec, &t, d, 64, info, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "TOC entry blob.digest: sha256 of the 64 bytes at 12954 differs");
    free(d);
    CHECK(info->digests == NULL);
    info->chunk_count = 3;
    CHECK_EQ_INT(toc_load_digests(codec, &t, blob + 12954, 64, info, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "uncompressed_size 64, expected 32 x 3 chunks");
    info->chunk_count = 2;
    Toc one = t;
    one.count = 3;      /* drop blob.digest */
    CHECK_EQ_INT(toc_load_digests(codec, &one, blob + 12954, 64, info, why, sizeof(why)), -ENOENT);
    CHECK_WHY(why, "no blob.digest entry");
    /* An lz4 entry: nydusd cannot extract those either. */
    t.entries[3].compressor = BLOB_COMP_LZ4_BLOCK;
    t.entries[3].flags = RAFS_TOC_COMPRESSION_LZ4_BLOCK;
    CHECK_EQ_INT(toc_load_digests(codec, &t, blob + 12954, 64, info, why, sizeof(why)), -ENOTSUP);
    /* NONE with differing sizes. */
    t.entries[3].compressor = BLOB_COMP_NONE;
    t.entries[3].compressed_size = 60;
    CHECK_EQ_INT(toc_load_digests(codec, &t, blob + 12954, 60, info, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "uncompressed but compressed_size 60 != uncompressed_size 64");
    blob_info_free(info);
    toc_clear(&t);
}

static void test_verify_blob_meta(void)
{
    Toc t;
    char why[512] = "";
    BlobInfo *info;
    CHECK_EQ_INT(parse_tail(blob + TOC_AT, 1024, TOC_AT, NULL, &t, why, sizeof(why)), 0);
    CHECK_EQ_INT(rafs_bootstrap_blob_info(&bs.blobs[0], &info), 0);
    CHECK_EQ_INT(toc_verify_blob_meta(codec, &t, info, why, sizeof(why)), -ENOENT);
    CHECK_EQ_INT(blob_meta_parse(codec, &bs.blobs[0], blob + 8314, 32 + 4096, info, why, sizeof(why)), 0);
    CHECK_EQ_INT(toc_verify_blob_meta(codec, &t, info, why, sizeof(why)), 0);
    t.entries[1].digest[0] ^= 1;
    CHECK_EQ_INT(toc_verify_blob_meta(codec, &t, info, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "TOC entry blob.meta: sha256 of the uncompressed ci table differs");
    t.entries[1].digest[0] ^= 1;
    t.entries[1].compressed_offset++;
    CHECK_EQ_INT(toc_verify_blob_meta(codec, &t, info, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "TOC entry blob.meta: [8315, +32) -> 32 disagrees");
    t.entries[1].compressed_offset--;
    t.entries[2].digest[31] ^= 1;
    CHECK_EQ_INT(toc_verify_blob_meta(codec, &t, info, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "TOC entry blob.meta.header: sha256");
    t.entries[2].digest[31] ^= 1;
    t.entries[2].compressed_offset = 1;
    CHECK_EQ_INT(toc_verify_blob_meta(codec, &t, info, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "TOC entry blob.meta.header: at 1 size 4096, the header is at 8346");
    blob_info_free(info);
    toc_clear(&t);
}

/*
 * A synthetic inline-meta blob tail (variant (d)):
 * junk || zstd(bootstrap) || T(image.boot) || zstd(digests) || T(blob.digest) ||
 * entries || T(rafs.blob.toc)
 */
static void test_inline_bootstrap(void)
{
    size_t cap = codec_compress_bound(BLOB_COMP_ZSTD, boot_len) + 4096 * 4;
    uint8_t *b = calloc(1, cap);
    size_t pos = 100;
    memset(b, 0x77, pos);
    ssize_t zb = codec_compress(BLOB_COMP_ZSTD, 0, boot, boot_len, b + pos, cap - pos);
    CHECK(zb > 0);
    size_t boot_off = pos;
    pos += (size_t)zb;
    tar_header(b + pos, "image.boot", (uint64_t)zb);
    pos += 512;
    uint8_t digests[64];
    memcpy(digests, blob + 12954, 64);
    size_t dig_off = pos;
    ssize_t zd = codec_compress(BLOB_COMP_ZSTD, 0, digests, 64, b + pos, cap - pos);
    CHECK(zd > 0);
    pos += (size_t)zd;
    tar_header(b + pos, "blob.digest", (uint64_t)zd);
    pos += 512;
    size_t toc_off = pos;
    toc_entry(b + pos, RAFS_TOC_COMPRESSION_ZSTD, "image.boot", codec, boot, boot_len, boot_off, (uint64_t)zb);
    toc_entry(b + pos + 128, RAFS_TOC_COMPRESSION_ZSTD, "blob.digest", codec, digests, 64, dig_off, (uint64_t)zd);
    pos += 256;
    tar_header(b + pos, "rafs.blob.toc", 256);
    pos += 512;
    size_t total = pos;

    uint8_t want[32];
    codec_digest(codec, BLOB_DIGEST_SHA256, b + toc_off, 768, want);
    uint64_t off, len;
    char why[512] = "";
    Toc t;
    CHECK_EQ_INT(toc_tail_range(NULL, total, &off, &len, why, sizeof(why)), 0);
    CHECK_EQ_INT(parse_tail(b + off, (size_t)len, off, want, &t, why, sizeof(why)), 0);
    CHECK_EQ_INT(t.count, 2);
    CHECK_EQ_INT(t.offset, toc_off);
    CHECK_EQ_INT(t.size, 768);
    const TocEntry *e = toc_find(&t, RAFS_TOC_NAME_BOOTSTRAP);
    CHECK(e && e->compressor == BLOB_COMP_ZSTD);
    if (e && toc_entry_range(&t, e, &off, &len, why, sizeof(why)) == 0) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        CHECK_EQ_INT(toc_extract_bootstrap(codec, &t, b + off, (size_t)len, &out, &out_len, why, sizeof(why)), 0);
        CHECK_EQ_INT(out_len, boot_len);
        if (out) {
            CHECK(!memcmp(out, boot, boot_len));
            RafsBootstrap x;
            CHECK_EQ_INT(rafs_bootstrap_parse(out, out_len, &x, why, sizeof(why)), 0);
            rafs_bootstrap_clear(&x);
        }
        free(out);
        /* Corrupt zstd data. */
        uint8_t *bad = tu_dup(b + off, (size_t)len);
        bad[len / 2] ^= 0x40;
        bad[len - 1] ^= 0x40;
        CHECK_EQ_INT(toc_extract_bootstrap(codec, &t, bad, (size_t)len, &out, &out_len, why, sizeof(why)), -EBADMSG);
        free(bad);
    }
    e = toc_find(&t, RAFS_TOC_NAME_BLOB_DIGEST);
    if (e && toc_entry_range(&t, e, &off, &len, why, sizeof(why)) == 0) {
        BlobInfo *info;
        CHECK_EQ_INT(blob_info_new(&info, "x", 2), 0);
        CHECK_EQ_INT(toc_load_digests(codec, &t, b + off, (size_t)len, info, why, sizeof(why)), 0);
        if (info->digests)
            CHECK(!memcmp(info->digests, digests, 64));
        blob_info_free(info);
    }
    toc_clear(&t);

    /* A wrong expected digest, then the bare-header fallback: cut the TOC off. */
    want[0] ^= 1;
    CHECK_EQ_INT(toc_tail_range(NULL, total, &off, &len, why, sizeof(why)), 0);
    CHECK_EQ_INT(parse_tail(b + off, (size_t)len, off, want, &t, why, sizeof(why)), -EBADMSG);
    /* Make image.boot raw so the synthetic NONE entry holds; read just its header. */
    memcpy(b + boot_off, boot, boot_len);
    tar_header(b + boot_off + boot_len, "image.boot", boot_len);
    size_t bare = boot_off + boot_len + 512;
    off = bare - 512;
    len = 512;
    CHECK_EQ_INT(parse_tail(b + off, (size_t)len, off, bs.blobs[0].toc_digest, &t, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "a bare image.boot, but the bootstrap records a TOC digest");
    CHECK_EQ_INT(parse_tail(b + off, (size_t)len, off, NULL, &t, why, sizeof(why)), 0);
    CHECK(t.synthetic);
    CHECK_EQ_INT(t.count, 1);
    e = toc_find(&t, RAFS_TOC_NAME_BOOTSTRAP);
    if (e) {
        CHECK_EQ_INT(e->compressed_offset, boot_off);
        CHECK_EQ_INT(e->compressed_size, boot_len);
        uint8_t *out = NULL;
        size_t out_len = 0;
        CHECK_EQ_INT(toc_extract_bootstrap(codec, &t, b + boot_off, boot_len, &out, &out_len, why, sizeof(why)), 0);
        CHECK(out && out_len == boot_len && !memcmp(out, boot, boot_len));
        free(out);
    }
    toc_clear(&t);
    /* A bare header claiming more data than precedes it. */
    tar_header(b + bare - 512, "image.boot", bare);
    CHECK_EQ_INT(parse_tail(b + bare - 512, 512, bare - 512, NULL, &t, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "image.boot of");
    free(b);
}

/* Every suffix of the real tail, and byte flips: no crash. */
static void test_robustness(void)
{
    uint64_t off = blob_len - 4096;
    for (size_t cut = 0; cut <= 4096; cut++) {
        Toc t;
        char why[256];
        size_t len = 4096 - cut;
        if (parse_tail(blob + off + cut, len, off + cut, NULL, &t, why, sizeof(why)) == 0)
            toc_clear(&t);
        /* Also prefixes: the header then is not at the end. */
        if (parse_tail(blob + off, len, off, NULL, &t, why, sizeof(why)) == 0)
            toc_clear(&t);
    }
    uint64_t seed = 0x13198a2e03707344ull;
    uint8_t *b = tu_dup(blob + off, 4096);
    for (int it = 0; it < 5000; it++) {
        for (int k = 0; k < 1 + it % 3; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = 4096 - 1024 + (size_t)((seed >> 33) % 1024);
            b[at] ^= (uint8_t)(1u << ((seed >> 20) & 7));
        }
        Toc t;
        char why[256];
        if (parse_tail(b, 4096, off, NULL, &t, why, sizeof(why)) == 0) {
            for (uint32_t i = 0; i < t.count; i++) {
                uint64_t eo, el;
                if (toc_entry_range(&t, &t.entries[i], &eo, &el, why, sizeof(why)) == 0)
                    CHECK(eo + el <= t.offset);
            }
            toc_clear(&t);
        }
        memcpy(b, blob + off, 4096);
    }
    free(b);
}

int main(void)
{
    char why[256] = "";
    blob = tu_fixture(FIXTURE_BLOB_ID, &blob_len);
    boot = tu_fixture(FIXTURE_BOOT, &boot_len);
    if (codec_ctx_new(&codec) < 0 || rafs_bootstrap_parse(boot, boot_len, &bs, why, sizeof(why)) < 0) {
        fprintf(stderr, "setup: %s\n", why);
        return 1;
    }
    RUN(test_tail_range);
    RUN(test_toc_rules);
    RUN(test_entries);
    RUN(test_verify_blob_meta);
    RUN(test_inline_bootstrap);
    RUN(test_robustness);
    rafs_bootstrap_clear(&bs);
    codec_ctx_free(codec);
    free(blob);
    free(boot);
    return TEST_EXIT();
}
