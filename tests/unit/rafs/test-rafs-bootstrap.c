/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Bootstrap reader rules: one mutation of the real fixture per rule, each
 * rejected with the expected error naming the field and its offset; the
 * accepted variants; every truncation length.
 */
#include "rafs-test-util.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/util/macros.h"
#include "uapi/rafs.h"

static uint8_t *fixture;
static size_t fixture_len;

/* Absolute offsets in the fixture. */
enum {
    SB = 1024, EXT = 1152, SLOT0 = 1408, BLOB0 = 0x1000,
    B_INDEX = BLOB0 + 64, B_CHUNK_SIZE = BLOB0 + 68, B_COUNT = BLOB0 + 72, B_COMP = BLOB0 + 76,
    B_DIGEST = BLOB0 + 80, B_FEATURES = BLOB0 + 84, B_CSIZE = BLOB0 + 88, B_USIZE = BLOB0 + 96,
    B_TOC_SIZE = BLOB0 + 104, B_CI_COMP = BLOB0 + 108, B_CI_OFF = BLOB0 + 112, B_CI_CSIZE = BLOB0 + 120,
    B_CI_USIZE = BLOB0 + 128, B_META_DIGEST = BLOB0 + 168, B_CIPHER = BLOB0 + 216,
};

static int parse(const uint8_t *img, size_t len, RafsBootstrap *bs, char *why, size_t why_len)
{
    /* An exact-size heap copy, so ASan sees any read past `len`. */
    uint8_t *copy = tu_dup(img, len);
    int r = rafs_bootstrap_parse(copy, len, bs, why, why_len);
    free(copy);
    return r;
}

static void expect_at(int line, const uint8_t *img, size_t len, int want, const char *sub)
{
    RafsBootstrap bs;
    char why[512] = "";
    int r = parse(img, len, &bs, why, sizeof(why));
    if (r != want || (sub && !strstr(why, sub))) {
        fprintf(stderr, "%s:%d: expected %d \"%s\", got %d \"%s\"\n", __FILE__, line, want, sub ? sub : "", r, why);
        test_failures++;
    }
    if (r == 0)
        rafs_bootstrap_clear(&bs);
    else
        CHECK(bs.blobs == NULL && bs.blob_count == 0);
}
#define EXPECT(img, want, sub) expect_at(__LINE__, (img), fixture_len, (want), (sub))

static uint8_t *fresh(void) { return tu_dup(fixture, fixture_len); }

static void test_accepts_fixture(void)
{
    EXPECT(fixture, 0, NULL);
}

static void test_superblock_rules(void)
{
    static const struct { size_t off; int width; uint64_t val; int err; const char *sub; } cases[] = {
        { SB + 0, 4, 0xe0f5e1e3, -EBADMSG, "s_magic @1024" },
        { SB + 4, 4, 1, -EBADMSG, "s_checksum @1028" },
        { SB + 8, 4, 0, -EBADMSG, "s_feature_compat @1032" },
        { SB + 12, 1, 9, -ENOTSUP, "s_blkszbits @1036" },
        { SB + 12, 1, 13, -EBADMSG, "s_blkszbits @1036" },
        { SB + 13, 1, 1, -EBADMSG, "s_extslots @1037" },
        { SB + 14, 2, 4000, -EBADMSG, "s_root_nid @1038" },
        { SB + 16, 8, 0, -EBADMSG, "s_inos @1040" },
        { SB + 40, 4, 6, -EBADMSG, "s_meta_blkaddr @1064" },
        { SB + 44, 4, 1, -EBADMSG, "s_xattr_blkaddr @1068" },
        { SB + 80, 4, 0xd, -EBADMSG, "s_feature_incompat @1104" },
        { SB + 80, 4, 0x4, -EBADMSG, "s_feature_incompat @1104" },
        { SB + 84, 2, 1, -EBADMSG, "s_u @1108" },
        { SB + 86, 2, 256, -EBADMSG, "s_extra_devices @1110" },
        { SB + 86, 2, 2, -EBADMSG, "s_extra_devices @1110 is 2" },
        { SB + 88, 2, 12, -EBADMSG, "s_devt_slotoff @1112" },
        { SB + 90, 1, 1, -EBADMSG, "dirblkbits @1114" },
    };
    for (unsigned i = 0; i < CFN_ARRAY_SIZE(cases); i++) {
        uint8_t *b = fresh();
        switch (cases[i].width) {
        case 1: b[cases[i].off] = (uint8_t)cases[i].val; break;
        case 2: tu_put16(b + cases[i].off, (uint16_t)cases[i].val); break;
        case 4: tu_put32(b + cases[i].off, (uint32_t)cases[i].val); break;
        case 8: tu_put64(b + cases[i].off, cases[i].val); break;
        }
        expect_at(__LINE__ * 1000 + (int)i, b, fixture_len, cases[i].err, cases[i].sub);
        free(b);
    }

    /* No blobs at all: s_blocks must then be 0 or 4096 (old builders wrote 4096). */
    uint8_t *b = fresh();
    tu_put16(b + SB + 86, 0);
    tu_put32(b + EXT + 16, 0);
    EXPECT(b, -EBADMSG, "s_blocks @1060");
    tu_put32(b + SB + 36, 4096);
    EXPECT(b, 0, NULL);
    tu_put32(b + SB + 36, 0);
    EXPECT(b, 0, NULL);
    free(b);
}

static void test_size_rules(void)
{
    expect_at(__LINE__, fixture, 4095, -EBADMSG, "shorter than one 4096-byte block");
    expect_at(__LINE__, fixture, 8000, -EBADMSG, "not a multiple of 4096");
    /* 16 KiB: the chunk table at 0x4000 falls off the end. */
    expect_at(__LINE__, fixture, 16384, -EBADMSG, "s_chunk_table_offset @1176");
}

static void test_ext_rules(void)
{
    uint8_t *b = fresh();
    tu_put64(b + EXT, 0x194 | 0x400);
    EXPECT(b, -EBADMSG, "s_flags @1152: 0x594 has unknown bits 0x400");
    tu_put64(b + EXT, 0x194 | (1ull << 32));
    EXPECT(b, -EBADMSG, "unknown bits 0x100000000");
    tu_put64(b + EXT, 0x194 | RAFS_SUPER_COMPRESSION_NONE);
    EXPECT(b, -EBADMSG, "exactly one compression bit");
    tu_put64(b + EXT, 0x194 & ~RAFS_SUPER_COMPRESSION_ZSTD);
    EXPECT(b, -EBADMSG, "exactly one compression bit");
    tu_put64(b + EXT, 0x194 & ~RAFS_SUPER_HASH_BLAKE3);
    EXPECT(b, -EBADMSG, "exactly one hash bit");
    tu_put64(b + EXT, 0x194 | RAFS_SUPER_HASH_SHA256);
    EXPECT(b, -EBADMSG, "exactly one hash bit");
    tu_put64(b + EXT, 0x194 | RAFS_SUPER_TARTFS_MODE);
    EXPECT(b, -ENOTSUP, "s_flags @1152: TARTFS_MODE");
    /* v2.3+ builders always set ENCRYPTION_NONE; the preserved compat bits are allowed. */
    tu_put64(b + EXT, 0x194 | RAFS_SUPER_ENCRYPTION_NONE | RAFS_SUPER_PRESERVED_COMPAT | RAFS_SUPER_HAS_XATTR);
    EXPECT(b, 0, NULL);
    /* INLINED_CHUNK_DIGEST needs every blob to carry the digests. */
    tu_put64(b + EXT, 0x194);
    tu_put32(b + B_FEATURES, 0x70000001);
    EXPECT(b, -EBADMSG, "INLINED_CHUNK_DIGEST set but blob");
    tu_put64(b + EXT, 0x094);
    EXPECT(b, 0, NULL);
    free(b);

    static const uint32_t bad_chunk_sizes[] = { 0, 0x800, 0x100001, 0x2000000, 0x180000 };
    for (unsigned i = 0; i < CFN_ARRAY_SIZE(bad_chunk_sizes); i++) {
        b = fresh();
        tu_put32(b + EXT + 20, bad_chunk_sizes[i]);
        EXPECT(b, -EBADMSG, "s_chunk_size @1172");
        free(b);
    }
    /* A valid fs chunk size the blob entry disagrees with. */
    b = fresh();
    tu_put32(b + EXT + 20, 0x200000);
    EXPECT(b, -EBADMSG, "chunk_size @4164: 0x100000, expected the filesystem chunk size 0x200000");
    free(b);
}

static void test_table_rules(void)
{
    uint8_t *b = fresh();
    tu_put32(b + EXT + 16, 0x101);
    EXPECT(b, -EBADMSG, "s_blob_table_size @1168: 257 is not a multiple of 256");
    tu_put32(b + EXT + 16, 0x100);
    tu_put64(b + EXT + 8, 0x1100);
    EXPECT(b, -EBADMSG, "s_blob_table_offset @1160");
    tu_put64(b + EXT + 8, 0);
    EXPECT(b, -EBADMSG, "s_blob_table_offset @1160");
    tu_put64(b + EXT + 8, 0x5000);
    EXPECT(b, -EBADMSG, "s_blob_table_offset @1160: table [20480, +256) is past");
    tu_put64(b + EXT + 8, UINT64_MAX & ~0xfffull);
    EXPECT(b, -EBADMSG, "s_blob_table_offset @1160");
    free(b);

    b = fresh();
    tu_put64(b + EXT + 32, 0xa1);
    EXPECT(b, -EBADMSG, "s_chunk_table_size @1184: 161 is not a multiple of 80");
    tu_put64(b + EXT + 32, 0xa0);
    tu_put64(b + EXT + 24, 0x4010);
    EXPECT(b, -EBADMSG, "s_chunk_table_offset @1176");
    tu_put64(b + EXT + 24, 0x1000);
    EXPECT(b, -EBADMSG, "chunk table overlaps the blob table");
    tu_put64(b + EXT + 24, 0x4000);
    tu_put64(b + EXT + 32, 80 * 103);
    EXPECT(b, -EBADMSG, "s_chunk_table_offset @1176: table [16384, +8240) is past");
    /* Size 0: offset ignored, as nydusd does. */
    tu_put64(b + EXT + 32, 0);
    tu_put64(b + EXT + 24, 0x123);
    EXPECT(b, 0, NULL);
    free(b);
}

static void test_prefetch_table(void)
{
    uint8_t *b = fresh();
    /* Three nids after the blob table, the last a terminator. */
    tu_put32(b + 0x1100, 133);
    tu_put32(b + 0x1104, 136);
    tu_put32(b + 0x1108, 0);
    tu_put32(b + 0x110c, 128);
    tu_put64(b + EXT + 40, 0x1100);
    tu_put32(b + EXT + 48, 16);
    RafsBootstrap bs;
    char why[256] = "";
    CHECK_EQ_INT(parse(b, fixture_len, &bs, why, sizeof(why)), 0);
    CHECK_EQ_INT(bs.prefetch_count, 2);
    if (bs.prefetch_count == 2) {
        CHECK_EQ_INT(bs.prefetch_nids[0], 133);
        CHECK_EQ_INT(bs.prefetch_nids[1], 136);
    }
    rafs_bootstrap_clear(&bs);

    tu_put32(b + 0x1104, 1000000);
    EXPECT(b, -EBADMSG, "prefetch table entry 1 @4356: nid 1000000");
    tu_put32(b + 0x1104, 136);
    tu_put32(b + EXT + 48, 15);
    EXPECT(b, -EBADMSG, "s_prefetch_table_size @1200: 15 is not a multiple of 4");
    tu_put32(b + EXT + 48, 16);
    tu_put64(b + EXT + 40, 0x800);
    EXPECT(b, -EBADMSG, "s_prefetch_table_offset @1192");
    tu_put64(b + EXT + 40, 0x10f8);
    EXPECT(b, -EBADMSG, "prefetch table overlaps the blob table");
    tu_put64(b + EXT + 40, 0x4010);
    EXPECT(b, -EBADMSG, "prefetch table overlaps the chunk table");
    tu_put64(b + EXT + 40, 0x4ffc);
    EXPECT(b, -EBADMSG, "s_prefetch_table_offset @1192: table [20476, +16) is past");
    /* Legacy: a size with offset 0 means no table. */
    tu_put64(b + EXT + 40, 0);
    EXPECT(b, 0, NULL);
    free(b);
}

static void test_blob_entry_rules(void)
{
    static const struct { size_t off; int width; uint64_t val; int err; const char *sub; } cases[] = {
        { BLOB0 + 3, 1, '/', -EBADMSG, "blob_id @4099: byte 3 (0x2f) is not allowed" },
        { BLOB0 + 0, 1, '.', -EBADMSG, "blob_id @4096: byte 0 (0x2e)" },
        { BLOB0 + 10, 1, 0, -EBADMSG, "blob_id @4096: byte 11 is 0x" },
        { BLOB0 + 0, 1, 0, -EBADMSG, "blob_id @4096: byte 1 is 0x" },
        { B_INDEX, 4, 1, -EBADMSG, "blob_index @4160: 1, expected its position 0" },
        { B_CHUNK_SIZE, 4, 0x80000, -EBADMSG, "chunk_size @4164" },
        { B_COUNT, 4, (1u << 24) + 1, -EBADMSG, "chunk_count @4168" },
        { B_COMP, 4, 4, -EBADMSG, "compression_algo @4172: unknown algorithm 4" },
        { B_DIGEST, 4, 2, -EBADMSG, "digest_algo @4176: unknown algorithm 2" },
        { B_CI_COMP, 4, 9, -EBADMSG, "ci_compressor @4204: unknown algorithm 9" },
        { B_CIPHER, 4, 2, -EBADMSG, "cipher_algo @4312: 2" },
        { B_CIPHER, 4, 1, -EBADMSG, "ENCRYPTED bit disagrees with cipher_algo 1 @4312" },
        { B_USIZE, 8, (1ull << 44) + 0x1000, -EBADMSG, "uncompressed_size @4192" },
        { B_CSIZE, 8, (1ull << 40) + 1, -EBADMSG, "compressed_size @4184" },
        { B_FEATURES, 4, 0x70001021, -EBADMSG, "features @4180: 0x70001021 has unknown incompatible bits 0x00001000" },
        { B_FEATURES, 4, 0xf0000021, -EBADMSG, "incompatible bits 0x80000000" },
        { B_FEATURES, 4, 0x70000061, -ENOTSUP, "features @4180: TARFS" },
        { B_FEATURES, 4, 0x70000020, -EBADMSG, "lacks ALIGNED" },
        { B_FEATURES, 4, 0x700000a1, -EBADMSG, "BATCH/ZRAN/ENCRYPTED without CHUNK_INFO_V2" },
        { B_FEATURES, 4, 0x70000029, -EBADMSG, "BATCH/ZRAN/ENCRYPTED without CHUNK_INFO_V2" },
        { B_FEATURES, 4, 0x70000121, -EBADMSG, "BATCH/ZRAN/ENCRYPTED without CHUNK_INFO_V2" },
        { B_FEATURES, 4, 0x70000025, -EBADMSG, "ci_uncompressed_size @4224: 32, expected 2 x 24 (V2)" },
        { B_FEATURES, 4, 0x700000ad, -EBADMSG, "features @4180: 0x700000ad has both BATCH and ZRAN" },
        { B_CI_OFF, 8, UINT64_MAX - 8, -EBADMSG, "ci_offset @4208 + ci_compressed_size @4216 overflows" },
        { B_CI_CSIZE, 8, 33, -EBADMSG, "ci_compressed_size @4216: 33 exceeds ci_uncompressed_size 32" },
        { B_CI_USIZE, 8, 48, -EBADMSG, "ci_uncompressed_size @4224: 48, expected 2 x 16 (V1)" },
        { B_CI_OFF, 8, 100, -EBADMSG, "ci_offset @4208: 100 leaves no room for the image.blob tar header" },
        { B_CI_OFF, 8, 14554 - 4096, -EBADMSG, "ci_offset @4208: blob meta [10458, 14586) ends past compressed_size 14554" },
        { B_CSIZE, 8, 12000, -EBADMSG, "ends past compressed_size 12000" },
    };
    for (unsigned i = 0; i < CFN_ARRAY_SIZE(cases); i++) {
        uint8_t *b = fresh();
        switch (cases[i].width) {
        case 1: b[cases[i].off] = (uint8_t)cases[i].val; break;
        case 4: tu_put32(b + cases[i].off, (uint32_t)cases[i].val); break;
        case 8: tu_put64(b + cases[i].off, cases[i].val); break;
        }
        expect_at(__LINE__ * 1000 + (int)i, b, fixture_len, cases[i].err, cases[i].sub);
        free(b);
    }

    /* IS_CHUNKDICT_GENERATED relaxes the V1 size check. */
    uint8_t *b = fresh();
    tu_put32(b + B_FEATURES, 0x70000221);
    tu_put64(b + B_CI_USIZE, 48);
    EXPECT(b, 0, NULL);
    /* The v2.1 layout: features ALIGNED only, compressed_size = chunk bytes, zero TOC fields. */
    memcpy(b, fixture, fixture_len);
    tu_put64(b + EXT, 0x094);
    tu_put32(b + B_FEATURES, 0x1);
    tu_put64(b + B_CSIZE, 7802);
    tu_put32(b + B_TOC_SIZE, 0);
    memset(b + BLOB0 + 136, 0, 32);
    RafsBootstrap bs;
    char why[256] = "";
    CHECK_EQ_INT(parse(b, fixture_len, &bs, why, sizeof(why)), 0);
    if (bs.blob_count == 1) {
        CHECK_EQ_INT(bs.blobs[0].compressed_data_size, 7802);
        CHECK(!bs.blobs[0].has_toc_digest);
        CHECK_EQ_INT(bs.blobs[0].toc_size, 0);
    }
    rafs_bootstrap_clear(&bs);
    /* CAP_TAR_TOC without HAS_TAR_HEADER: chunk data ends at ci_offset. */
    memcpy(b, fixture, fixture_len);
    tu_put32(b + B_FEATURES, 0x60000021);
    CHECK_EQ_INT(parse(b, fixture_len, &bs, why, sizeof(why)), 0);
    if (bs.blob_count == 1)
        CHECK_EQ_INT(bs.blobs[0].compressed_data_size, 8314);
    rafs_bootstrap_clear(&bs);
    /* SEPARATE: the ci lives in hex(blob_meta_digest). */
    memcpy(b, fixture, fixture_len);
    tu_put32(b + B_FEATURES, 0x70000031);
    for (int i = 0; i < 32; i++)
        b[B_META_DIGEST + i] = (uint8_t)(0xa0 + i);
    tu_put64(b + BLOB0 + 200, 12345);
    CHECK_EQ_INT(parse(b, fixture_len, &bs, why, sizeof(why)), 0);
    if (bs.blob_count == 1) {
        CHECK(!strcmp(bs.blobs[0].meta_blob_id, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"));
        CHECK_EQ_INT(bs.blobs[0].meta_blob_size, 12345);
        CHECK_EQ_INT(bs.blobs[0].compressed_data_size, 14554);
    }
    rafs_bootstrap_clear(&bs);
    /* Encrypted (v2.3+): accepted here, refused by blob_meta. */
    memcpy(b, fixture, fixture_len);
    tu_put32(b + B_FEATURES, 0x70000125);
    tu_put64(b + B_CI_USIZE, 48);
    tu_put32(b + B_CIPHER, 1);
    tu_put64(b + EXT, 0x194 | RAFS_SUPER_ENCRYPTION_AES128XTS);
    CHECK_EQ_INT(parse(b, fixture_len, &bs, why, sizeof(why)), 0);
    if (bs.blob_count == 1)
        CHECK_EQ_INT(bs.blobs[0].cipher, RAFS_CIPHER_AES128XTS);
    rafs_bootstrap_clear(&bs);
    free(b);
}

static void test_device_slot_rules(void)
{
    uint8_t *b = fresh();
    b[SLOT0 + 5] = 'X';
    EXPECT(b, -EBADMSG, "device slot 0 tag @1408: \"be7d7X");
    b[SLOT0 + 5] = 0xc3;
    EXPECT(b, -EBADMSG, "device slot 0 tag @1413: byte 5 (0xc3)");
    memcpy(b, fixture, fixture_len);
    tu_put32(b + SLOT0 + 64, 0);
    EXPECT(b, -EBADMSG, "device slot 0 blocks @1472: 0");
    tu_put32(b + SLOT0 + 64, 10);
    EXPECT(b, -EBADMSG, "device slot 0 blocks @1472: 10 disagrees with blob");
    tu_put32(b + SLOT0 + 64, 9);
    tu_put32(b + SLOT0 + 68, 4);
    EXPECT(b, -EBADMSG, "device slot 0 mapped_blkaddr @1476: block 4 lies inside the 5-block bootstrap");
    tu_put32(b + SLOT0 + 68, 5);
    EXPECT(b, 0, NULL);
    tu_put32(b + SLOT0 + 68, 0);
    EXPECT(b, 0, NULL);
    free(b);
}

/* Two blobs: slot/entry order, duplicates. */
static void test_two_blobs(void)
{
    uint8_t *b = fresh();
    tu_put16(b + SB + 86, 2);
    tu_put32(b + EXT + 16, 0x200);
    memcpy(b + SLOT0 + 128, b + SLOT0, 128);
    memcpy(b + BLOB0 + 256, b + BLOB0, 256);
    tu_put32(b + BLOB0 + 256 + 64, 1);
    EXPECT(b, -EBADMSG, "device slot 1 tag @1536: blob id " FIXTURE_BLOB_ID " duplicates slot 0");
    b[BLOB0 + 256] = 'c';
    EXPECT(b, -EBADMSG, "device slot 1 tag @1536: \"be7d");
    b[SLOT0 + 128] = 'c';
    RafsBootstrap bs;
    char why[256] = "";
    CHECK_EQ_INT(parse(b, fixture_len, &bs, why, sizeof(why)), 0);
    CHECK_EQ_INT(bs.blob_count, 2);
    if (bs.blob_count == 2) {
        CHECK_EQ_INT(bs.blobs[1].index, 1);
        CHECK_EQ_INT(bs.blobs[1].id[0], 'c');
        CHECK(rafs_bootstrap_find_blob(&bs, bs.blobs[1].id) == &bs.blobs[1]);
    }
    rafs_bootstrap_clear(&bs);
    tu_put32(b + BLOB0 + 256 + 64, 0);
    EXPECT(b, -EBADMSG, "blob_index @4416: 0, expected its position 1");
    free(b);
}

static void test_id_valid(void)
{
    CHECK(rafs_bootstrap_id_valid(FIXTURE_BLOB_ID));
    CHECK(rafs_bootstrap_id_valid("xxxxxxxx"));
    CHECK(!rafs_bootstrap_id_valid(""));
    CHECK(!rafs_bootstrap_id_valid(".."));
    CHECK(!rafs_bootstrap_id_valid("a/b"));
    CHECK(!rafs_bootstrap_id_valid(FIXTURE_BLOB_ID "0"));
}

/* Every prefix of the fixture is rejected cleanly (ASan watches the reads). */
static void test_truncation(void)
{
    unsigned accepted = 0;
    for (size_t len = 0; len < fixture_len; len++) {
        RafsBootstrap bs;
        char why[256];
        int r = parse(fixture, len, &bs, why, sizeof(why));
        if (r == 0) {
            accepted++;
            rafs_bootstrap_clear(&bs);
        }
    }
    CHECK_EQ_INT(accepted, 0);
}

/* Byte flips anywhere in the first 5 blocks: never a crash, sane results. */
static void test_flips(void)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int it = 0; it < 20000; it++) {
        uint8_t *b = fresh();
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)((seed >> 33) % 0x1200);     /* headers, slots, blob table */
            b[at] ^= (uint8_t)(1u << ((seed >> 20) & 7));
        }
        RafsBootstrap bs;
        char why[256];
        if (parse(b, fixture_len, &bs, why, sizeof(why)) == 0) {
            CHECK(bs.blob_count <= RAFS_MAX_BLOBS);
            for (uint32_t i = 0; i < bs.blob_count; i++)
                CHECK(rafs_bootstrap_id_valid(bs.blobs[i].id));
            rafs_bootstrap_clear(&bs);
        }
        free(b);
    }
}

/* Sizes that the chunk count cannot back are refused before anything is allocated for them. */
static void test_size_bounds(void)
{
    uint8_t *b = fresh();
    /* 2 chunks of at most 1 MiB cannot make a 1 TiB blob (nor fill its cache file). */
    tu_put64(b + B_USIZE, 1ull << 40);
    tu_put32(b + SLOT0 + 64, (uint32_t)((1ull << 40) / 4096));
    EXPECT(b, -EBADMSG, "uncompressed_size @4192: 1099511627776 bytes is more than its 2 chunks of at most 1048576 bytes hold");
    /* 10 chunks need 10 blocks at least; the blob has 9. */
    memcpy(b, fixture, fixture_len);
    tu_put32(b + B_COUNT, 10);
    tu_put64(b + B_CI_USIZE, 160);
    EXPECT(b, -EBADMSG, "chunk_count @4168: 10 chunks do not fit its uncompressed_size 36864");
    /* A BATCH ci table of 1 GiB for 2 chunks: at most 2 entries and 2 contexts are real. */
    memcpy(b, fixture, fixture_len);
    tu_put32(b + B_FEATURES, 0x700000a5);
    tu_put64(b + B_CI_USIZE, 1ull << 30);
    EXPECT(b, -EBADMSG, "ci_uncompressed_size @4224: 1073741824 is more than 2 entries and their contexts can fill (128 bytes)");
    tu_put64(b + B_CI_USIZE, 128);
    EXPECT(b, 0, NULL);
    /* ZRAN: a dictionary of up to 32 KiB per context. */
    memcpy(b, fixture, fixture_len);
    tu_put32(b + B_FEATURES, 0x7000003d);
    for (int i = 0; i < 32; i++)
        b[B_META_DIGEST + i] = (uint8_t)(0xa0 + i);
    tu_put64(b + B_CI_USIZE, 1ull << 30);
    EXPECT(b, -EBADMSG, "ci_uncompressed_size @4224: 1073741824 is more than 2 entries");
    free(b);
}

/* A RAFS v5 bootstrap (magic 'RAFS' at offset 0, no erofs superblock) is named as such. */
static void test_rafs_v5(void)
{
    uint8_t *b = fresh();
    memset(b, 0, 8192);
    tu_put32(b, RAFS_V5_SUPER_MAGIC);
    tu_put32(b + 4, 0x500);
    EXPECT(b, -ENOTSUP, "RAFS v5 is not supported (v6 only)");
    free(b);
}

int main(void)
{
    fixture = tu_fixture(FIXTURE_BOOT, &fixture_len);
    RUN(test_accepts_fixture);
    RUN(test_superblock_rules);
    RUN(test_size_rules);
    RUN(test_ext_rules);
    RUN(test_table_rules);
    RUN(test_prefetch_table);
    RUN(test_blob_entry_rules);
    RUN(test_device_slot_rules);
    RUN(test_two_blobs);
    RUN(test_id_valid);
    RUN(test_truncation);
    RUN(test_flips);
    RUN(test_size_bounds);
    RUN(test_rafs_v5);
    free(fixture);
    return TEST_EXIT();
}
