/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The real nydus v2.2 fixture, decoded end to end: every field of
 * nydus-format.md Appendix A, the blob's ci table and TOC, the chunk
 * digests, and the content of both files (decompress + blake3).
 */
#include <dirent.h>

#include "rafs-test-util.h"
#include "storage/codec/codec.h"
#include "storage/device/blob_meta.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/device/toc.h"
#include "uapi/erofs.h"
#include "uapi/rafs.h"

#define DIGEST0 "f7e2735f1c6ae9cde91e537416b09d8bb71b306a421d19cc1012a51f93a7fe69"
#define DIGEST1 "812465bcc9e88393598311dc5fc93abaeccef0185bcd99f9701d17ebdf9adc3f"
#define TOC_DIGEST "cfc89ed0739aef4eb1bf0904f0dfdb1c857134eca7319465baae95a99b84acde"

static uint8_t *boot, *blob;
static size_t boot_len, blob_len;
static CodecCtx *codec;

static void test_superblock(void)
{
    struct erofs_super_block_disk sb;
    memcpy(&sb, boot + EROFS_SUPER_OFFSET, sizeof(sb));
    CHECK_EQ_INT(le32toh(sb.magic), 0xe0f5e1e2u);
    CHECK_EQ_INT(sb.checksum, 0);
    CHECK_EQ_INT(le32toh(sb.feature_compat), 0x40000000u);
    CHECK_EQ_INT(sb.blkszbits, 12);
    CHECK_EQ_INT(le16toh(sb.root_nid), 128);
    CHECK_EQ_INT(le64toh(sb.inos), 3);
    CHECK_EQ_INT(le32toh(sb.blocks), 9);
    CHECK_EQ_INT(le32toh(sb.meta_blkaddr), 2);
    CHECK_EQ_INT(le32toh(sb.feature_incompat), 0xc);
    CHECK_EQ_INT(le16toh(sb.extra_devices), 1);
    CHECK_EQ_INT(le16toh(sb.devt_slotoff), 11);

    RafsBootstrap bs;
    char why[256] = "";
    int r = rafs_bootstrap_parse(boot, boot_len, &bs, why, sizeof(why));
    CHECK_EQ_INT(r, 0);
    if (r < 0) {
        fprintf(stderr, "parse: %s\n", why);
        return;
    }
    CHECK_EQ_INT(bs.size, 20480);
    CHECK_EQ_INT(bs.feature_compat, 0x40000000u);
    CHECK_EQ_INT(bs.root_nid, 128);
    CHECK_EQ_INT(bs.inos, 3);
    CHECK_EQ_INT(bs.blocks, 9);
    CHECK_EQ_INT(bs.meta_blkaddr, 2);
    CHECK_EQ_INT(bs.blob_count, 1);
    rafs_bootstrap_clear(&bs);
}

static void test_ext_superblock_and_tables(void)
{
    RafsBootstrap bs;
    char why[256] = "";
    if (rafs_bootstrap_parse(boot, boot_len, &bs, why, sizeof(why)) < 0) {
        CHECK(!"parse");
        return;
    }
    CHECK_EQ_INT(bs.flags, 0x194);
    CHECK(bs.flags == (RAFS_SUPER_INLINED_CHUNK_DIGEST | RAFS_SUPER_COMPRESSION_ZSTD |
                       RAFS_SUPER_EXPLICIT_UID_GID | RAFS_SUPER_HASH_BLAKE3));
    CHECK_EQ_INT(bs.compressor, BLOB_COMP_ZSTD);
    CHECK_EQ_INT(bs.digester, BLOB_DIGEST_BLAKE3);
    CHECK_EQ_INT(bs.blob_table_offset, 0x1000);
    CHECK_EQ_INT(bs.blob_table_size, 0x100);
    CHECK_EQ_INT(bs.chunk_size, 0x100000);
    CHECK_EQ_INT(bs.chunk_table_offset, 0x4000);
    CHECK_EQ_INT(bs.chunk_table_size, 0xa0);
    CHECK_EQ_INT(bs.prefetch_table_offset, 0);
    CHECK_EQ_INT(bs.prefetch_table_size, 0);
    CHECK_EQ_INT(bs.prefetch_count, 0);

    /* Device slot @0x580 and blob entry @0x1000. */
    const RafsBlob *b = &bs.blobs[0];
    CHECK(!strcmp(b->id, FIXTURE_BLOB_ID));
    CHECK(rafs_bootstrap_find_blob(&bs, FIXTURE_BLOB_ID) == b);
    CHECK(rafs_bootstrap_find_blob(&bs, "nope") == NULL);
    CHECK(!memcmp(boot + 0x580, FIXTURE_BLOB_ID, 64));
    CHECK_EQ_INT(b->dev_blocks, 9);
    CHECK_EQ_INT(b->dev_mapped_blkaddr, 0x200);
    CHECK_EQ_INT(b->index, 0);
    CHECK_EQ_INT(b->chunk_size, 0x100000);
    CHECK_EQ_INT(b->chunk_count, 2);
    CHECK_EQ_INT(b->compressor, BLOB_COMP_ZSTD);
    CHECK_EQ_INT(b->digester, BLOB_DIGEST_BLAKE3);
    CHECK_EQ_INT(b->features, 0x70000021u);
    CHECK_EQ_INT(b->compressed_size, 14554);
    CHECK_EQ_INT(b->compressed_size, blob_len);
    CHECK_EQ_INT(b->uncompressed_size, 0x9000);
    CHECK_EQ_INT(b->compressed_data_size, 7802);
    CHECK_EQ_INT(b->toc_size, 1024);
    CHECK(b->has_toc_digest);
    CHECK(tu_hex_eq(b->toc_digest, 32, TOC_DIGEST));
    CHECK_EQ_INT(b->ci_compressor, BLOB_COMP_NONE);
    CHECK_EQ_INT(b->ci_offset, 8314);
    CHECK_EQ_INT(b->ci_compressed_size, 32);
    CHECK_EQ_INT(b->ci_uncompressed_size, 32);
    CHECK_EQ_INT(b->cipher, RAFS_CIPHER_NONE);
    CHECK(!strcmp(b->meta_blob_id, FIXTURE_BLOB_ID));

    BlobInfo *info = NULL;
    CHECK_EQ_INT(rafs_bootstrap_blob_info(b, &info), 0);
    if (info) {
        CHECK(!strcmp(info->id, FIXTURE_BLOB_ID));
        CHECK_EQ_INT(info->chunk_count, 2);
        CHECK_EQ_INT(info->uncompressed_size, 0x9000);
        CHECK_EQ_INT(info->compressed_size, 14554);
        CHECK_EQ_INT(info->compressed_data_size, 7802);
        CHECK_EQ_INT(info->chunk_size, 0x100000);
        CHECK_EQ_INT(info->compressor, BLOB_COMP_ZSTD);
        CHECK_EQ_INT(info->digester, BLOB_DIGEST_BLAKE3);
        CHECK_EQ_INT(info->features, 0x70000021u);
        blob_info_free(info);
    }
    rafs_bootstrap_clear(&bs);
}

/* erofs inode fields by offset (extended inode, 64 bytes). */
static void check_inode(uint64_t nid, uint64_t at, unsigned layout, unsigned mode, uint64_t size, uint32_t u)
{
    const uint8_t *i = boot + 2 * 4096 + nid * 32;
    CHECK_EQ_INT(2 * 4096 + nid * 32, at);
    CHECK_EQ_INT(tu_le16(i) & 1, 1);                 /* extended */
    CHECK_EQ_INT((tu_le16(i) >> 1) & 7, layout);
    CHECK_EQ_INT(tu_le16(i + 4), mode);
    CHECK_EQ_INT(tu_le64(i + 8), size);
    CHECK_EQ_INT(tu_le32(i + 16), u);
}

static void test_inodes(void)
{
    /* Root @0x3000: FLAT_INLINE (2) directory, 67 bytes of dirents inline. */
    check_inode(128, 0x3000, 2, 040755, 67, tu_le32(boot + 0x3000 + 16));
    const uint8_t *d = boot + 0x3040;
    static const struct { uint64_t nid; const char *name; uint8_t type; } want[] = {
        { 128, ".", 2 }, { 128, "..", 2 }, { 133, "lib.rs", 1 }, { 136, "sync_io.rs", 1 },
    };
    CHECK_EQ_INT(tu_le16(d + 8), 4 * 12);
    for (unsigned k = 0; k < 4; k++) {
        const uint8_t *e = d + 12 * k;
        unsigned off = tu_le16(e + 8);
        unsigned end = k < 3 ? tu_le16(e + 12 + 8) : 67;
        CHECK_EQ_INT(tu_le64(e), want[k].nid);
        CHECK_EQ_INT(e[10], want[k].type);
        CHECK_EQ_INT(end - off, strlen(want[k].name));
        CHECK(!memcmp(d + off, want[k].name, strlen(want[k].name)));
    }

    /* Regular files: CHUNK_BASED (4), i_u 0x28 = indexes | log2(1 MiB) - 12. */
    check_inode(133, 0x30a0, 4, 0100644, 16931, 0x28);
    check_inode(136, 0x3100, 4, 0100644, 13400, 0x28);
    struct rafs_v6_inode_chunk_addr_disk a;
    memcpy(&a, boot + 0x30a0 + 64, sizeof(a));
    CHECK_EQ_INT(rafs_chunk_addr_ci_index(&a), 0);
    CHECK_EQ_INT(rafs_chunk_addr_blob_index(&a), 0);
    CHECK_EQ_INT(le16toh(a.c_blob_addr_hi), 1);
    CHECK_EQ_INT(le32toh(a.c_blk_addr), 0);
    memcpy(&a, boot + 0x3100 + 64, sizeof(a));
    CHECK_EQ_INT(rafs_chunk_addr_ci_index(&a), 1);
    CHECK_EQ_INT(rafs_chunk_addr_blob_index(&a), 0);
    CHECK_EQ_INT(le32toh(a.c_blk_addr), 5);
}

static void test_chunk_table(void)
{
    struct rafs_v5_chunk_info_disk c[2];
    memcpy(c, boot + 0x4000, sizeof(c));
    /* Sorted by digest: chunk 1 first. */
    CHECK(tu_hex_eq(c[0].block_id, 32, DIGEST1));
    CHECK_EQ_INT(le32toh(c[0].blob_index), 0);
    CHECK_EQ_INT(le32toh(c[0].flags), RAFS_V5_CHUNK_COMPRESSED);
    CHECK_EQ_INT(le32toh(c[0].compressed_size), 2974);
    CHECK_EQ_INT(le32toh(c[0].uncompressed_size), 13400);
    CHECK_EQ_INT(le64toh(c[0].compressed_offset), 0x12dc);
    CHECK_EQ_INT(le64toh(c[0].uncompressed_offset), 0x5000);
    CHECK_EQ_INT(le32toh(c[0].index), 1);
    CHECK(tu_hex_eq(c[1].block_id, 32, DIGEST0));
    CHECK_EQ_INT(le32toh(c[1].flags), RAFS_V5_CHUNK_COMPRESSED);
    CHECK_EQ_INT(le32toh(c[1].compressed_size), 4828);
    CHECK_EQ_INT(le32toh(c[1].uncompressed_size), 16931);
    CHECK_EQ_INT(le64toh(c[1].compressed_offset), 0);
    CHECK_EQ_INT(le64toh(c[1].uncompressed_offset), 0);
    CHECK_EQ_INT(le32toh(c[1].index), 0);
}

/* Load bootstrap + blob meta; returns the BlobInfo (caller frees). */
static BlobInfo *load_blob(RafsBootstrap *bs)
{
    char why[256] = "";
    BlobInfo *info = NULL;
    uint64_t off, len;
    if (rafs_bootstrap_parse(boot, boot_len, bs, why, sizeof(why)) < 0 ||
        blob_meta_range(&bs->blobs[0], &off, &len, why, sizeof(why)) < 0 ||
        rafs_bootstrap_blob_info(&bs->blobs[0], &info) < 0) {
        fprintf(stderr, "load_blob: %s\n", why);
        CHECK(!"load_blob");
        return NULL;
    }
    CHECK_EQ_INT(off, 8314);
    CHECK_EQ_INT(len, 32 + 4096);
    int r = blob_meta_parse(codec, &bs->blobs[0], blob + off, (size_t)len, info, why, sizeof(why));
    CHECK_EQ_INT(r, 0);
    if (r < 0) {
        fprintf(stderr, "blob_meta_parse: %s\n", why);
        blob_info_free(info);
        return NULL;
    }
    return info;
}

/* The chunk table as a digest source: the same digests the TOC carries; contradictions refused. */
static void test_chunk_table_digests(void)
{
    RafsBootstrap bs;
    BlobInfo *info = load_blob(&bs);
    if (!info)
        return;
    const size_t esz = sizeof(struct rafs_v5_chunk_info_disk);
    uint8_t table[3 * 80];
    char why[256] = "";
    memcpy(table, boot + bs.chunk_table_offset, 2 * esz);
    CHECK_EQ_INT(bs.chunk_table_size, 2 * esz);

    CHECK_EQ_INT(rafs_chunk_table_digests(table, 2 * esz, 0, info, why, sizeof(why)), 0);
    CHECK(info->digests && tu_hex_eq(info->digests[0], 32, DIGEST0) && tu_hex_eq(info->digests[1], 32, DIGEST1));
    CHECK_EQ_INT(rafs_chunk_table_digests(table, 2 * esz, 1, info, why, sizeof(why)), -ENOENT);
    CHECK_EQ_INT(rafs_chunk_table_digests(table, 2 * esz - 1, 0, info, why, sizeof(why)), -EBADMSG);
    /* One entry only: chunk 0 would go unverified. */
    CHECK_EQ_INT(rafs_chunk_table_digests(table, esz, 0, info, why, sizeof(why)), -EBADMSG);
    CHECK(strstr(why, "covers 1 of the 2 chunks") != NULL);
    /* A duplicate entry with another digest. */
    memcpy(table + 2 * esz, table, esz);
    table[2 * esz] ^= 1;
    CHECK_EQ_INT(rafs_chunk_table_digests(table, 3 * esz, 0, info, why, sizeof(why)), -EBADMSG);
    CHECK(strstr(why, "different digests") != NULL);
    /* An uncompressed range that disagrees with the blob meta. */
    memcpy(table + 2 * esz, table, esz);
    table[2 * esz + 56] ^= 0x10;
    CHECK_EQ_INT(rafs_chunk_table_digests(table + esz, 2 * esz, 0, info, why, sizeof(why)), -EBADMSG);
    CHECK(strstr(why, "the blob meta says") != NULL);
    /* A ci index past the blob's chunks. */
    memcpy(table + 2 * esz, table, esz);
    table[2 * esz + 72] = 7;
    CHECK_EQ_INT(rafs_chunk_table_digests(table + esz, 2 * esz, 0, info, why, sizeof(why)), -EBADMSG);
    CHECK(strstr(why, "past the 2 chunks") != NULL);
    /* A crc in the table is adopted for a chunk whose ci entry has none. */
    memcpy(table + 2 * esz, table + esz, esz);
    uint32_t flags = htole32(RAFS_V5_CHUNK_COMPRESSED | RAFS_V5_CHUNK_HAS_CRC32), crc = htole32(0x1234abcd);
    memcpy(table + 2 * esz + 36, &flags, 4);
    memcpy(table + 2 * esz + 76, &crc, 4);
    CHECK_EQ_INT(rafs_chunk_table_digests(table, 3 * esz, 0, info, why, sizeof(why)), 0);
    CHECK(info->chunks[0].flags & BLOB_CHUNK_HAS_CRC32);
    CHECK_EQ_INT(info->chunks[0].crc32, 0x1234abcd);
    blob_info_free(info);
    rafs_bootstrap_clear(&bs);
}

static void test_blob_meta(void)
{
    RafsBootstrap bs;
    BlobInfo *info = load_blob(&bs);
    if (!info)
        return;
    const BlobChunkInfo *c = info->chunks;
    CHECK_EQ_INT(c[0].compressed_offset, 0);
    CHECK_EQ_INT(c[0].compressed_size, 4828);
    CHECK_EQ_INT(c[0].uncompressed_offset, 0);
    CHECK_EQ_INT(c[0].uncompressed_size, 16931);
    CHECK_EQ_INT(c[0].flags, BLOB_CHUNK_COMPRESSED);
    CHECK_EQ_INT(c[1].compressed_offset, 4828);
    CHECK_EQ_INT(c[1].compressed_size, 2974);
    CHECK_EQ_INT(c[1].uncompressed_offset, 0x5000);
    CHECK_EQ_INT(c[1].uncompressed_size, 13400);
    CHECK_EQ_INT(c[1].flags, BLOB_CHUNK_COMPRESSED);
    /*
     * Raw ci entry 1. Appendix A prints these as 0x0003457000005000 and
     * 0x000B9D00000012DC, dropping a nibble; its decoded values are right.
     */
    CHECK_EQ_INT(tu_le64(blob + 8314 + 16), 0x0345700000005000ull);
    CHECK_EQ_INT(tu_le64(blob + 8314 + 24), 0x00B9D000000012DCull);

    const uint8_t *ci, *hdr;
    size_t ci_len;
    CHECK_EQ_INT(blob_meta_raw(info, &ci, &ci_len, &hdr), 0);
    CHECK_EQ_INT(ci_len, 32);
    const struct rafs_ci_header_disk *h = (const void *)hdr;
    CHECK_EQ_INT(le32toh(h->s_magic), RAFS_CI_MAGIC);
    CHECK_EQ_INT(le32toh(h->s_features), 0x70000021u);
    CHECK_EQ_INT(le32toh(h->s_ci_compressor), 0);
    CHECK_EQ_INT(le32toh(h->s_ci_entries), 2);
    CHECK_EQ_INT(le64toh(h->s_ci_offset), 8314);
    CHECK_EQ_INT(le64toh(h->s_ci_compressed_size), 32);
    CHECK_EQ_INT(le64toh(h->s_ci_uncompressed_size), 32);
    CHECK_EQ_INT(le64toh(h->s_ci_zran_offset), 0);
    CHECK_EQ_INT(le64toh(h->s_ci_zran_size), 0);
    CHECK_EQ_INT(le32toh(h->s_ci_zran_count), 0);
    CHECK_EQ_INT(le32toh(h->s_magic2), RAFS_CI_MAGIC);

    BlobMetaBatch bt;
    BlobMetaZran zr;
    CHECK_EQ_INT(blob_meta_batch(info, 0, &bt), -ENOENT);
    CHECK_EQ_INT(blob_meta_zran(info, 0, &zr), -ENOENT);

    /* blob.c agrees with the table we produced. */
    char why[256] = "";
    CHECK_EQ_INT(blob_info_validate(info, why, sizeof(why)), 0);
    CHECK_EQ_INT(blob_find_chunk(info, 0x4222), 0);
    CHECK_EQ_INT(blob_find_chunk(info, 0x5000), 1);
    blob_info_free(info);
    rafs_bootstrap_clear(&bs);
}

static void test_tar_headers(void)
{
    static const struct { uint64_t at; const char *name; uint64_t size; } hs[] = {
        { 7802, "image.blob", 7802 }, { 12442, "blob.meta", 4128 },
        { 13018, "blob.digest", 64 }, { 14042, "rafs.blob.toc", 512 },
    };
    for (unsigned i = 0; i < 4; i++) {
        TocTarHeader th;
        char why[256] = "";
        CHECK_EQ_INT(toc_tar_header_parse(blob + hs[i].at, hs[i].at, &th, why, sizeof(why)), 0);
        CHECK(!strcmp(th.name, hs[i].name));
        CHECK_EQ_INT(th.size, hs[i].size);
    }
}

static void test_toc(void)
{
    RafsBootstrap bs;
    char why[256] = "";
    uint64_t off, len;
    Toc toc;
    BlobInfo *info = load_blob(&bs);
    if (!info)
        return;
    const RafsBlob *rb = &bs.blobs[0];

    CHECK_EQ_INT(toc_tail_range(rb, blob_len, &off, &len, why, sizeof(why)), 0);
    CHECK_EQ_INT(off, 13530);
    CHECK_EQ_INT(len, 1024);
    int r = toc_parse(codec, blob + off, (size_t)len, off, rb->toc_digest, &toc, why, sizeof(why));
    CHECK_EQ_INT(r, 0);
    if (r < 0) {
        fprintf(stderr, "toc_parse: %s\n", why);
        goto out;
    }
    CHECK_EQ_INT(toc.offset, 13530);
    CHECK_EQ_INT(toc.size, 1024);
    CHECK(!toc.synthetic);
    CHECK(tu_hex_eq(toc.digest, 32, TOC_DIGEST));
    CHECK_EQ_INT(toc.count, 4);
    static const struct { const char *name; uint64_t off, cs, us; const char *digest; } want[] = {
        { "image.blob", 7802, 7802, 36864, "632d11c76e652544684d73053a4656d3cca2c693539bd4bae5ea226355cfdd1d" },
        { "blob.meta", 8314, 32, 32, "cae7cc4bc024ca68bd0c4f5c9cdf612d6cb9622271d787c8c79ccba91852b6b1" },
        { "blob.meta.header", 8346, 4096, 4096, "1a4559316dbcfca5ff8cd1f005172a429a9e9f6b885bfda6a43cf4098a4f8db1" },
        { "blob.digest", 12954, 64, 64, "910f7305f347bacd48d1221e0fb91c6af903f34eddcfc124004f3c5ff7e8bfdd" },
    };
    for (unsigned i = 0; i < 4 && i < toc.count; i++) {
        const TocEntry *e = &toc.entries[i];
        CHECK(!strcmp(e->name, want[i].name));
        CHECK(toc_find(&toc, want[i].name) == e);
        CHECK_EQ_INT(e->flags, RAFS_TOC_COMPRESSION_NONE);
        CHECK_EQ_INT(e->compressor, BLOB_COMP_NONE);
        CHECK_EQ_INT(e->compressed_offset, want[i].off);
        CHECK_EQ_INT(e->compressed_size, want[i].cs);
        CHECK_EQ_INT(e->uncompressed_size, want[i].us);
        CHECK(e->has_digest);
        CHECK(tu_hex_eq(e->digest, 32, want[i].digest));
    }
    CHECK(toc_find(&toc, RAFS_TOC_NAME_BOOTSTRAP) == NULL);

    /* The ci table and header agree with their TOC entries. */
    CHECK_EQ_INT(toc_verify_blob_meta(codec, &toc, info, why, sizeof(why)), 0);

    /* blob.digest -> BlobInfo.digests. */
    const TocEntry *de = toc_find(&toc, RAFS_TOC_NAME_BLOB_DIGEST);
    CHECK(de != NULL);
    if (de) {
        CHECK_EQ_INT(toc_entry_range(&toc, de, &off, &len, why, sizeof(why)), 0);
        CHECK_EQ_INT(off, 12954);
        CHECK_EQ_INT(len, 64);
        r = toc_load_digests(codec, &toc, blob + off, (size_t)len, info, why, sizeof(why));
        CHECK_EQ_INT(r, 0);
        if (r == 0) {
            CHECK(tu_hex_eq(info->digests[0], 32, DIGEST0));
            CHECK(tu_hex_eq(info->digests[1], 32, DIGEST1));
        }
    }
    /* No inline bootstrap in this blob. */
    uint8_t *bb = NULL;
    size_t bl = 0;
    CHECK_EQ_INT(toc_extract_bootstrap(codec, &toc, blob, 0, &bb, &bl, why, sizeof(why)), -ENOENT);

    /* Auto-detect (size unknown): last 4096 bytes, same TOC. */
    RafsBlob nosize = *rb;
    nosize.toc_size = 0;
    CHECK_EQ_INT(toc_tail_range(&nosize, blob_len, &off, &len, why, sizeof(why)), 0);
    CHECK_EQ_INT(off, blob_len - 4096);
    CHECK_EQ_INT(len, 4096);
    Toc t2;
    CHECK_EQ_INT(toc_parse(codec, blob + off, (size_t)len, off, rb->toc_digest, &t2, why, sizeof(why)), 0);
    CHECK_EQ_INT(t2.offset, 13530);
    CHECK_EQ_INT(t2.count, 4);
    toc_clear(&t2);
    toc_clear(&toc);
out:
    blob_info_free(info);
    rafs_bootstrap_clear(&bs);
}

/* Decompress each chunk; blake3(uncompressed) must equal the stored digest. */
static void test_chunks_content(void)
{
    RafsBootstrap bs;
    char why[256] = "";
    Toc toc;
    uint64_t off, len;
    BlobInfo *info = load_blob(&bs);
    if (!info)
        return;
    if (toc_tail_range(&bs.blobs[0], blob_len, &off, &len, why, sizeof(why)) < 0 ||
        toc_parse(codec, blob + off, (size_t)len, off, bs.blobs[0].toc_digest, &toc, why, sizeof(why)) < 0) {
        CHECK(!"toc");
        goto out;
    }
    const TocEntry *de = toc_find(&toc, RAFS_TOC_NAME_BLOB_DIGEST);
    if (!de || toc_entry_range(&toc, de, &off, &len, why, sizeof(why)) < 0 ||
        toc_load_digests(codec, &toc, blob + off, (size_t)len, info, why, sizeof(why)) < 0) {
        CHECK(!"digests");
        toc_clear(&toc);
        goto out;
    }
    toc_clear(&toc);

    /* The cache file oracle: chunks at their uncompressed offsets, zero elsewhere. */
    uint8_t *cache = calloc(1, info->uncompressed_size);
    static const uint32_t file_size[2] = { 16931, 13400 };
    for (uint32_t i = 0; i < info->chunk_count && cache; i++) {
        const BlobChunkInfo *c = &info->chunks[i];
        uint8_t d[32];
        CHECK(c->compressed_offset + c->compressed_size <= info->compressed_data_size);
        CHECK(c->flags & BLOB_CHUNK_COMPRESSED);
        int r = codec_decompress(codec, info->compressor, blob + c->compressed_offset, c->compressed_size,
                                 cache + c->uncompressed_offset, c->uncompressed_size);
        CHECK_EQ_INT(r, 0);
        CHECK_EQ_INT(c->uncompressed_size, file_size[i]);
        CHECK_EQ_INT(codec_digest(codec, info->digester, cache + c->uncompressed_offset, c->uncompressed_size, d), 0);
        CHECK(!memcmp(d, info->digests[i], 32));
    }
    if (cache) {
        /* Both files are Rust sources with the nydus licence header. */
        CHECK(!memcmp(cache, "// Copyright", 12));
        CHECK(!memcmp(cache + 0x5000, "// Copyright", 12));
        CHECK(cache[16931] == 0 && cache[0x5000 - 1] == 0 && cache[0x9000 - 1] == 0);
        uint8_t d[32];
        CHECK_EQ_INT(codec_digest(codec, BLOB_DIGEST_SHA256, cache, 16931, d), 0);
        CHECK(tu_hex_eq(d, 32, "1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69"));
        CHECK_EQ_INT(codec_digest(codec, BLOB_DIGEST_SHA256, cache + 0x5000, 13400, d), 0);
        CHECK(tu_hex_eq(d, 32, "e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96"));
    }
    free(cache);
out:
    blob_info_free(info);
    rafs_bootstrap_clear(&bs);
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void test_cache_file(void)
{
    RafsBootstrap bs;
    char why[256] = "", path[4096];
    BlobInfo *info = load_blob(&bs), *again = NULL;
    char *dir = tu_tmpdir();
    if (!info)
        goto out;
    const RafsBlob *rb = &bs.blobs[0];

    CHECK_EQ_INT(rafs_bootstrap_blob_info(rb, &again), 0);
    CHECK_EQ_INT(blob_meta_cache_load(dir, rb, again, why, sizeof(why)), -ENOENT);
    CHECK_EQ_INT(blob_meta_cache_save(dir, info, why, sizeof(why)), 0);
    snprintf(path, sizeof(path), "%s/%s.blob.meta", dir, FIXTURE_BLOB_ID);
    size_t n = 0;
    uint8_t *f = tu_read_file(path, &n);
    CHECK_EQ_INT(n, 8192);
    CHECK_EQ_INT(blob_meta_cache_size(rb), 8192);
    if (f) {
        /* ci || zero pad || header, byte for byte what the blob holds. */
        CHECK(!memcmp(f, blob + 8314, 32));
        for (size_t i = 32; i < 4096; i++)
            if (f[i]) {
                CHECK(!"padding is zero");
                break;
            }
        CHECK(!memcmp(f + 4096, blob + 8346, 4096));
    }
    CHECK_EQ_INT(blob_meta_cache_load(dir, rb, again, why, sizeof(why)), 0);
    if (again && again->meta_private)
        CHECK(!memcmp(again->chunks, info->chunks, 2 * sizeof(BlobChunkInfo)));

    /* A stale file (other ci offset) is rejected, and a save replaces it. */
    RafsBlob other = *rb;
    other.ci_offset = 8000;
    BlobInfo *x = NULL;
    CHECK_EQ_INT(rafs_bootstrap_blob_info(&other, &x), 0);
    CHECK_EQ_INT(blob_meta_cache_load(dir, &other, x, why, sizeof(why)), -EBADMSG);
    CHECK_WHY(why, "s_ci_offset @");
    blob_info_free(x);
    /* Truncated file. */
    if (f) {
        FILE *w = fopen(path, "w");
        if (w) {
            fwrite(f, 1, 4096, w);
            fclose(w);
        }
        blob_info_free(again);
        again = NULL;
        CHECK_EQ_INT(rafs_bootstrap_blob_info(rb, &again), 0);
        CHECK_EQ_INT(blob_meta_cache_load(dir, rb, again, why, sizeof(why)), -EBADMSG);
        CHECK_WHY(why, "expected 8192");
        CHECK_EQ_INT(blob_meta_cache_save(dir, info, why, sizeof(why)), 0);
        CHECK_EQ_INT(blob_meta_cache_load(dir, rb, again, why, sizeof(why)), 0);
    }
    free(f);
out:
    blob_info_free(info);
    blob_info_free(again);
    rafs_bootstrap_clear(&bs);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    boot = tu_fixture(FIXTURE_BOOT, &boot_len);
    blob = tu_fixture(FIXTURE_BLOB_ID, &blob_len);
    if (codec_ctx_new(&codec) < 0)
        return 1;
    RUN(test_superblock);
    RUN(test_ext_superblock_and_tables);
    RUN(test_inodes);
    RUN(test_chunk_table);
    RUN(test_blob_meta);
    RUN(test_chunk_table_digests);
    RUN(test_tar_headers);
    RUN(test_toc);
    RUN(test_chunks_content);
    RUN(test_cache_file);
    codec_ctx_free(codec);
    free(boot);
    free(blob);
    return TEST_EXIT();
}
