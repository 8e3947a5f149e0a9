/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Decompression, compression and digests through the codec interface.
 * Inputs and outputs handed to decoders end right at an inaccessible page,
 * so any read past src_len or write past dst_len faults, including inside
 * liblz4/libzstd/zlib where ASan cannot see; ASan covers our own code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "storage/codec/blake3.h"
#include "storage/codec/codec.h"
#include "storage/util/macros.h"
#include "tests/unit/test.h"

/*
 * Frames and members made by the command-line tools (zstd 1.5.4, gzip 1.12)
 * from text_lines() below: `zstd -19 text.txt` (content size and checksum in
 * the header), `cat text.txt | zstd -3` (no content size, checksum), and
 * `gzip -9 text.txt` (FNAME set).
 */
static const uint8_t zstd_cli_with_size[356] = {
    0x28, 0xb5, 0x2f, 0xfd, 0x64, 0xb8, 0x23, 0xb5, 0x0a, 0x00, 0x66, 0x59,
    0x3b, 0x1a, 0x70, 0x4d, 0x8a, 0x0d, 0x40, 0x60, 0x84, 0x40, 0x81, 0xd8,
    0xdc, 0x5a, 0x0c, 0x00, 0x00, 0xb4, 0xdd, 0xbd, 0x69, 0xd3, 0x06, 0x08,
    0xfd, 0x6f, 0xbd, 0x17, 0x42, 0x00, 0x2f, 0x00, 0x2d, 0x00, 0x26, 0x25,
    0x24, 0x97, 0x11, 0x8b, 0x48, 0x85, 0x72, 0xb5, 0x56, 0xa9, 0xef, 0xd4,
    0x95, 0xb6, 0xec, 0xd1, 0x58, 0x24, 0x9e, 0x43, 0x53, 0x58, 0x80, 0x08,
    0x05, 0xc6, 0xd1, 0x80, 0x50, 0x60, 0x18, 0x38, 0x0e, 0x08, 0x0c, 0x1e,
    0x16, 0x8e, 0x45, 0x81, 0xc3, 0x11, 0x40, 0xf2, 0x58, 0x34, 0x0c, 0x10,
    0x8e, 0x45, 0x82, 0x00, 0x03, 0xe3, 0x50, 0x38, 0x34, 0x4c, 0x1c, 0x0d,
    0x0f, 0x0a, 0x89, 0x46, 0x57, 0x56, 0x55, 0x54, 0xaf, 0x29, 0x97, 0x54,
    0x8b, 0x75, 0x64, 0x54, 0x44, 0x74, 0x1a, 0x32, 0x09, 0x95, 0x48, 0x77,
    0x7b, 0x9d, 0xfe, 0xcf, 0x7d, 0x79, 0xcf, 0xdf, 0xd8, 0xd4, 0xd0, 0x7c,
    0x66, 0x3c, 0x32, 0x1d, 0xce, 0xd9, 0x5c, 0x26, 0xdf, 0x63, 0x5b, 0x5c,
    0xd3, 0x27, 0x01, 0x26, 0xdf, 0x63, 0x5b, 0x5c, 0xd3, 0x3d, 0x2b, 0xfa,
    0x58, 0x4a, 0xb9, 0x5a, 0xab, 0xd4, 0x77, 0xea, 0x4a, 0x5b, 0xf6, 0x68,
    0x2c, 0x12, 0xcf, 0xa1, 0x29, 0x2c, 0xc9, 0x1e, 0x77, 0x56, 0x74, 0xbf,
    0x39, 0x4b, 0x79, 0x3c, 0x33, 0x2b, 0x23, 0xfb, 0x58, 0xac, 0x46, 0x0b,
    0x67, 0x45, 0x1f, 0x4b, 0x79, 0x67, 0x66, 0x65, 0x64, 0xb7, 0x31, 0x9b,
    0x58, 0x8d, 0x76, 0x65, 0x55, 0x45, 0xf5, 0x9a, 0x72, 0x49, 0xb5, 0x58,
    0x3d, 0x2b, 0xfa, 0x58, 0x4a, 0xba, 0xdb, 0xeb, 0xf4, 0x7f, 0xee, 0xcb,
    0x7b, 0xbe, 0x67, 0x45, 0x1f, 0x4b, 0x39, 0x67, 0x73, 0x05, 0x80, 0xc8,
    0xa8, 0x11, 0xf0, 0xf0, 0xda, 0xff, 0x0e, 0xe0, 0x37, 0x03, 0x12, 0xf8,
    0x7f, 0x04, 0x01, 0x04, 0x81, 0xff, 0xfe, 0xec, 0xee, 0xee, 0xee, 0x4b,
    0x2b, 0xad, 0x65, 0xad, 0x94, 0x8a, 0xbe, 0x76, 0x77, 0x77, 0xf7, 0x93,
    0x56, 0x5a, 0x53, 0x5f, 0xbb, 0xbb, 0xbb, 0xfb, 0xa4, 0x95, 0xd6, 0xd4,
    0xd7, 0xee, 0xee, 0xee, 0x7c, 0xd2, 0x4a, 0x6b, 0xad, 0x95, 0x52, 0x51,
    0x58, 0x9e, 0x22, 0xff, 0xfb, 0xac, 0x94, 0xf9, 0x92, 0x95, 0xd6, 0x5a,
    0x2b, 0xa5, 0x94, 0xa4, 0x94, 0x52, 0x4a, 0x29, 0x4a, 0x49, 0x4a, 0x29,
    0xa5, 0x94, 0x52, 0x4a, 0x52, 0x4a, 0x29, 0xa5, 0x28, 0xe5, 0x72, 0xc8,
    0x70, 0x39, 0x4d, 0x55, 0xe5, 0x86, 0xbd, 0x0a,
};

static const uint8_t zstd_cli_piped[244] = {
    0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x3d, 0x07, 0x00, 0xf2, 0x4f, 0x23,
    0x1b, 0x70, 0x69, 0x9a, 0x35, 0xd0, 0xfc, 0xff, 0xc8, 0xac, 0xa0, 0xaa,
    0xec, 0xb7, 0x6a, 0xa0, 0xaa, 0xa3, 0xee, 0xee, 0xee, 0xee, 0x4d, 0x3a,
    0xfd, 0xef, 0x7a, 0x22, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xdf, 0xd8, 0x52, 0x09, 0x1d, 0xf3, 0x5a, 0x63,
    0x4b, 0x25, 0x74, 0xcc, 0x63, 0x8d, 0x2d, 0x95, 0xd0, 0x31, 0x6f, 0x35,
    0xb6, 0x54, 0x42, 0xc7, 0x3c, 0xd5, 0xd8, 0x52, 0x09, 0x1d, 0xf3, 0x52,
    0x63, 0x4b, 0x25, 0x74, 0xcc, 0x43, 0x8d, 0x2d, 0x95, 0xd0, 0x31, 0xef,
    0x34, 0xb6, 0x54, 0x42, 0xc7, 0x3c, 0xd3, 0xd8, 0x52, 0x09, 0x1d, 0xf3,
    0x36, 0xb6, 0x54, 0x42, 0xc7, 0x04, 0x58, 0x48, 0x1c, 0x4a, 0xa2, 0x90,
    0x50, 0x0c, 0x14, 0x03, 0x02, 0x44, 0x23, 0xa1, 0x20, 0x05, 0x8c, 0x12,
    0x70, 0x77, 0x05, 0x49, 0x10, 0x07, 0x05, 0x41, 0x10, 0x50, 0x1c, 0xca,
    0xc1, 0x58, 0x34, 0x94, 0x45, 0xe3, 0x60, 0x48, 0x02, 0x80, 0xc8, 0xa8,
    0x11, 0xd0, 0xbb, 0xff, 0x6f, 0xf0, 0x35, 0xb6, 0x03, 0x12, 0xf8, 0x7f,
    0x05, 0x81, 0xff, 0xfe, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbf, 0xff, 0x25, 0xfd, 0xff,
    0x2f, 0xf7, 0x7f, 0x3f, 0xdb, 0xff, 0xff, 0xe7, 0xee, 0xff, 0xcf, 0xf7,
    0xff, 0x3f, 0xdb, 0xff, 0xff, 0x79, 0xf7, 0xff, 0xf3, 0xfd, 0xff, 0xcf,
    0xf6, 0xff, 0xff, 0xdc, 0xfb, 0xff, 0xaf, 0x06, 0x77, 0x09, 0x90, 0x55,
    0xe5, 0x86, 0xbd, 0x0a,
};
static const uint8_t gzip_cli_named[563] = {
    0x1f, 0x8b, 0x08, 0x08, 0x71, 0xe7, 0x0b, 0x6b, 0x02, 0x03, 0x74, 0x65,
    0x78, 0x74, 0x2e, 0x74, 0x78, 0x74, 0x00, 0x95, 0xd8, 0xb9, 0x71, 0x14,
    0x51, 0x00, 0x00, 0x51, 0x9f, 0x28, 0x26, 0x84, 0xed, 0xb9, 0xfe, 0x0c,
    0xd9, 0x00, 0x5a, 0x95, 0x54, 0xc0, 0xaa, 0xd0, 0x51, 0x02, 0xa2, 0x57,
    0x04, 0x32, 0x9e, 0xdf, 0x5e, 0x7b, 0xef, 0xf6, 0xef, 0xee, 0xed, 0x65,
    0xfa, 0xff, 0xf2, 0x7a, 0x37, 0xdd, 0x3f, 0x7f, 0xfb, 0x7d, 0x9d, 0x7e,
    0x3d, 0xde, 0xae, 0xd3, 0xe5, 0x72, 0xf9, 0x3a, 0xbd, 0x3e, 0x5c, 0xa7,
    0x3f, 0x6f, 0x8f, 0x3f, 0x7e, 0x4e, 0xdf, 0x9f, 0x9f, 0xde, 0x6f, 0xd3,
    0xfd, 0xd3, 0xdf, 0x2f, 0xb7, 0x4f, 0xf2, 0x2c, 0x9f, 0x2d, 0x5f, 0x2c,
    0x5f, 0x2d, 0xdf, 0x2c, 0xdf, 0x2d, 0x1f, 0x96, 0x1f, 0x96, 0x9f, 0x94,
    0x67, 0x57, 0xb3, 0xab, 0xd9, 0xd5, 0xec, 0x6a, 0x76, 0x35, 0xbb, 0x9a,
    0x5d, 0xcd, 0xae, 0x66, 0x57, 0xb3, 0xab, 0xb3, 0x5d, 0x9d, 0xed, 0xea,
    0x6c, 0x57, 0x67, 0xbb, 0x3a, 0xdb, 0xd5, 0xd9, 0xae, 0xce, 0x76, 0x75,
    0xb6, 0xab, 0xb3, 0x5d, 0x9d, 0xed, 0xea, 0x62, 0x57, 0x17, 0xbb, 0xba,
    0xd8, 0xd5, 0xc5, 0xae, 0x2e, 0x76, 0x75, 0xb1, 0xab, 0x8b, 0x5d, 0x5d,
    0xec, 0xea, 0x62, 0x57, 0x17, 0xbb, 0xba, 0xda, 0xd5, 0xd5, 0xae, 0xae,
    0x76, 0x75, 0xb5, 0xab, 0xab, 0x5d, 0x5d, 0xed, 0xea, 0x6a, 0x57, 0x57,
    0xbb, 0xba, 0xda, 0xd5, 0xd5, 0xae, 0x6e, 0x76, 0x75, 0xb3, 0xab, 0x9b,
    0x5d, 0xdd, 0xec, 0xea, 0x66, 0x57, 0x37, 0xbb, 0xba, 0xd9, 0xd5, 0xcd,
    0xae, 0x6e, 0x76, 0x75, 0xb3, 0xab, 0xbb, 0x5d, 0xdd, 0xed, 0xea, 0x6e,
    0x57, 0x77, 0xbb, 0xba, 0xdb, 0xd5, 0xdd, 0xae, 0xee, 0x76, 0x75, 0xb7,
    0xab, 0xbb, 0x5d, 0xdd, 0xed, 0xea, 0xb0, 0xab, 0xc3, 0xae, 0x0e, 0xbb,
    0x3a, 0xec, 0xea, 0xb0, 0xab, 0xc3, 0xae, 0x0e, 0xbb, 0x3a, 0xec, 0xea,
    0xb0, 0xab, 0xc3, 0xae, 0x1e, 0x76, 0xf5, 0xb0, 0xab, 0x87, 0x5d, 0x3d,
    0xec, 0xea, 0x61, 0x57, 0x0f, 0xbb, 0x7a, 0xd8, 0xd5, 0xc3, 0xae, 0x1e,
    0x76, 0xf5, 0xb0, 0xab, 0xa7, 0x5d, 0x3d, 0xed, 0xea, 0x69, 0x57, 0x4f,
    0xbb, 0x7a, 0xda, 0xd5, 0xd3, 0xae, 0x9e, 0x76, 0xf5, 0xb4, 0xab, 0xa7,
    0x5d, 0x3d, 0xe9, 0x6a, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9,
    0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b,
    0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65,
    0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9,
    0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b,
    0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65,
    0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9,
    0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b,
    0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65,
    0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9,
    0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b,
    0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65,
    0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9,
    0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b,
    0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65,
    0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9,
    0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b,
    0x99, 0x2d, 0x65, 0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65,
    0xb6, 0x94, 0xd9, 0x52, 0x66, 0x4b, 0x99, 0x2d, 0x65, 0xb6, 0xd4, 0x67,
    0xb6, 0xf4, 0x01, 0xb4, 0x84, 0xdb, 0x21, 0xb8, 0x24, 0x00, 0x00,
};

#define TEXT_LINES_LEN 9400

static const enum blob_compressor all_comps[] = {
    BLOB_COMP_NONE, BLOB_COMP_LZ4_BLOCK, BLOB_COMP_GZIP, BLOB_COMP_ZSTD,
};

static CodecCtx *ctx;

static uint64_t rng_state = 0xC0DECC0DEull;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* An exact-size allocation; malloc(0) may return NULL, so keep one byte. */
static uint8_t *xalloc(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);

    if (!p)
        abort();
    return p;
}

static uint8_t *xdup(const void *src, size_t n)
{
    uint8_t *p = xalloc(n);

    if (n)
        memcpy(p, src, n);
    return p;
}

/* n bytes that end exactly where a PROT_NONE page begins. */
static uint8_t *galloc(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), data = (n + pg - 1) / pg * pg;
    uint8_t *base = mmap(NULL, data + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (base == MAP_FAILED || mprotect(base + data, pg, PROT_NONE))
        abort();
    return base + data - n;
}

static uint8_t *gdup(const void *src, size_t n)
{
    uint8_t *p = galloc(n);

    if (n)
        memcpy(p, src, n);
    return p;
}

static void gfree(uint8_t *p, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), data = (n + pg - 1) / pg * pg;

    munmap(p + n - data, data + pg);
}

enum data_kind { DATA_RANDOM, DATA_TEXT, DATA_ZERO };

static void fill(uint8_t *p, size_t n, enum data_kind kind)
{
    static const char *words[] = { "chunk ", "blob ", "nydus ", "erofs ", "cache ", "fscache\n",
                                   "rafs ", "zstd ", "0123 ", "bootstrap " };
    size_t i = 0;

    switch (kind) {
    case DATA_RANDOM:
        for (; i < n; i++)
            p[i] = (uint8_t)(rng() >> 56);
        break;
    case DATA_ZERO:
        memset(p, 0, n);
        break;
    case DATA_TEXT:
        while (i < n) {
            const char *w = words[rng() % CFN_ARRAY_SIZE(words)];

            for (; *w && i < n; w++)
                p[i++] = (uint8_t)*w;
        }
        break;
    }
}

static uint8_t *text_lines(void)
{
    uint8_t *p = xalloc(TEXT_LINES_LEN + 1);
    size_t off = 0;

    for (int i = 0; i < 200; i++)
        off += (size_t)sprintf((char *)p + off, "nydus zstd frame line %03d: the quick brown fox\n", i);
    CHECK_EQ_INT(off, TEXT_LINES_LEN);
    return p;
}

/* Compress with an exact-size result buffer; returns it and sets *clen. */
static uint8_t *compress_exact(enum blob_compressor c, int level, const uint8_t *src, size_t len,
                               size_t *clen)
{
    size_t bound = codec_compress_bound(c, len);
    uint8_t *tmp = xalloc(bound), *out;
    ssize_t n;

    CHECK(bound >= len || c != BLOB_COMP_NONE);
    n = codec_compress(c, level, src, len, tmp, bound);
    CHECK(n >= 0);
    if (n < 0)
        n = 0;
    out = xdup(tmp, (size_t)n);
    free(tmp);
    *clen = (size_t)n;
    return out;
}

/* Decompress into an exact dst_len buffer; when want is given, compare. */
static int decomp(enum blob_compressor c, const uint8_t *src, size_t src_len, size_t dst_len,
                  const uint8_t *want)
{
    uint8_t *s = gdup(src, src_len), *d = galloc(dst_len);
    int r = codec_decompress(ctx, c, s, src_len, d, dst_len);

    if (r == 0 && want)
        CHECK(memcmp(d, want, dst_len) == 0);
    gfree(s, src_len);
    gfree(d, dst_len);
    return r;
}

static void test_roundtrip(void)
{
    static const size_t sizes[] = { 0, 1, 4095, 4096, 65537, 1 << 20 };
    static const int levels[][4] = {
        [BLOB_COMP_NONE] = { 0 },
        [BLOB_COMP_LZ4_BLOCK] = { 0, 9 },
        [BLOB_COMP_GZIP] = { 0, 1, 9 },
        [BLOB_COMP_ZSTD] = { 0, 1, 19, -5 },
    };

    for (size_t ci = 0; ci < CFN_ARRAY_SIZE(all_comps); ci++) {
        enum blob_compressor c = all_comps[ci];

        for (size_t si = 0; si < CFN_ARRAY_SIZE(sizes); si++) {
            for (int kind = DATA_RANDOM; kind <= DATA_ZERO; kind++) {
                for (size_t li = 0; li < 4; li++) {
                    int level = levels[c][li];
                    size_t len = sizes[si], clen;
                    uint8_t *in, *comp;

                    if (li > 0 && level == 0)
                        break;
                    /* Slow levels only on small inputs. */
                    if (level >= 19 && len > 65537)
                        continue;
                    in = xalloc(len);
                    fill(in, len, (enum data_kind)kind);
                    comp = compress_exact(c, level, in, len, &clen);

                    int before = test_failures;

                    CHECK_EQ_INT(decomp(c, comp, clen, len, in), 0);
                    /* Anything but the exact length is corrupt. */
                    CHECK_EQ_INT(decomp(c, comp, clen, len + 1, NULL), -EBADMSG);
                    if (len > 0)
                        CHECK_EQ_INT(decomp(c, comp, clen, len - 1, NULL), -EBADMSG);
                    if (len > 10)
                        CHECK_EQ_INT(decomp(c, comp, clen, len / 2, NULL), -EBADMSG);
                    /* One byte less room than needed is -ENOSPC, not a short result. */
                    if (clen > 0) {
                        uint8_t *small = xalloc(clen - 1);

                        CHECK_EQ_INT(codec_compress(c, level, in, len, small, clen - 1), -ENOSPC);
                        free(small);
                    }
                    if (c == BLOB_COMP_GZIP) {
                        uint8_t *d = xalloc(len);

                        CHECK_EQ_INT(codec_gunzip_prefix(ctx, comp, clen, d, len), 0);
                        CHECK(len == 0 || memcmp(d, in, len) == 0);
                        CHECK_EQ_INT(codec_gunzip_prefix(ctx, comp, clen, d, len / 3), 0);
                        CHECK(len < 3 || memcmp(d, in, len / 3) == 0);
                        free(d);
                        CHECK_EQ_INT(decomp(c, comp, clen, len + 1, NULL), -EBADMSG);
                    }
                    if (test_failures != before)
                        fprintf(stderr, "  (%s level %d, %zu bytes, kind %d, %zu compressed)\n",
                                blob_compressor_name(c), level, len, kind, clen);
                    free(comp);
                    free(in);
                }
            }
        }
    }
}

static void test_compress_args(void)
{
    uint8_t in[100], out[512];

    fill(in, sizeof(in), DATA_TEXT);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_GZIP, 10, in, sizeof(in), out, sizeof(out)), -EINVAL);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_GZIP, -1, in, sizeof(in), out, sizeof(out)), -EINVAL);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_ZSTD, 1000, in, sizeof(in), out, sizeof(out)), -EINVAL);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_LZ4_BLOCK, 13, in, sizeof(in), out, sizeof(out)), -EINVAL);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_LZ4_BLOCK, -1, in, sizeof(in), out, sizeof(out)), -EINVAL);
    CHECK_EQ_INT(codec_compress((enum blob_compressor)42, 0, in, sizeof(in), out, sizeof(out)), -ENOTSUP);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_NONE, 0, in, sizeof(in), out, 99), -ENOSPC);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_ZSTD, 0, in, sizeof(in), out, 0), -ENOSPC);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_GZIP, 0, in, sizeof(in), out, 0), -ENOSPC);
    CHECK_EQ_INT(codec_compress(BLOB_COMP_LZ4_BLOCK, 0, in, sizeof(in), out, 0), -ENOSPC);
    CHECK_EQ_INT(codec_compress_bound((enum blob_compressor)42, 100), 0);
    CHECK_EQ_INT(codec_compress_bound(BLOB_COMP_LZ4_BLOCK, (size_t)1 << 40), 0);
    CHECK_EQ_INT(codec_compress_bound(BLOB_COMP_GZIP, SIZE_MAX), 0);
    CHECK(codec_compress_bound(BLOB_COMP_ZSTD, 100) >= 100);
    CHECK_EQ_INT(codec_compress_bound(BLOB_COMP_NONE, 100), 100);
    CHECK_EQ_INT(codec_decompress(ctx, (enum blob_compressor)42, in, 10, out, 10), -ENOTSUP);
}

/* The exact-length contract holds for a raw copy too. */
static void test_none(void)
{
    uint8_t a[64], b[64];

    fill(a, sizeof(a), DATA_RANDOM);
    CHECK_EQ_INT(codec_decompress(ctx, BLOB_COMP_NONE, a, 64, b, 64), 0);
    CHECK(memcmp(a, b, 64) == 0);
    CHECK_EQ_INT(codec_decompress(ctx, BLOB_COMP_NONE, a, 64, b, 63), -EBADMSG);
    CHECK_EQ_INT(codec_decompress(ctx, BLOB_COMP_NONE, a, 63, b, 64), -EBADMSG);
    CHECK_EQ_INT(codec_decompress(ctx, BLOB_COMP_NONE, NULL, 0, NULL, 0), 0);
    CHECK_EQ_INT(codec_decompress(ctx, BLOB_COMP_NONE, a, 64, a, 64), 0);
}

/* Every strict prefix of a valid stream is corrupt. */
static void test_truncated(void)
{
    for (size_t ci = 1; ci < CFN_ARRAY_SIZE(all_comps); ci++) {
        enum blob_compressor c = all_comps[ci];

        for (int kind = DATA_RANDOM; kind <= DATA_TEXT; kind++) {
            size_t len = kind == DATA_RANDOM ? 4096 : 65536, clen;
            uint8_t *in = xalloc(len), *comp;
            int bad = 0;

            fill(in, len, (enum data_kind)kind);
            comp = compress_exact(c, 0, in, len, &clen);
            for (size_t t = 0; t < clen; t += (clen > 2000 && t > 64 && t < clen - 64) ? 7 : 1) {
                int r = decomp(c, comp, t, len, NULL);

                if (r != -EBADMSG) {
                    if (bad++ < 5)
                        fprintf(stderr, "%s: prefix %zu/%zu gave %d\n", blob_compressor_name(c), t, clen, r);
                    test_failures++;
                }
            }
            free(comp);
            free(in);
        }
    }
}

/*
 * Flipped bytes: the result is 0 or -EBADMSG, never a crash or an overrun.
 * LZ4 blocks and checksum-less zstd frames carry nothing that can detect a
 * flipped literal (the chunk digest does), so for them we only count. With
 * a check value (gzip's CRC32, the zstd CLI's checksum) a flip may go
 * unnoticed only where it cannot change the output: MTIME, FNAME, or a
 * redundant bit of the entropy coding.
 */
static void flip_test(enum blob_compressor c, const uint8_t *comp, size_t clen, const uint8_t *orig,
                      size_t len, bool checked, const char *what)
{
    size_t detected = 0, silent_same = 0, silent_diff = 0, tries = 0;
    uint8_t *s = galloc(clen), *d = galloc(len);

    for (size_t iter = 0; iter < 3000; iter++) {
        size_t pos = iter < clen ? iter : (size_t)(rng() % clen);
        size_t run = iter < clen ? 1 : 1 + (size_t)(rng() % 8);
        int r;

        memcpy(s, comp, clen);
        for (size_t k = 0; k < run && pos + k < clen; k++)
            s[pos + k] ^= (uint8_t)(1 + rng() % 255);
        r = codec_decompress(ctx, c, s, clen, d, len);
        tries++;
        if (r == -EBADMSG) {
            detected++;
        } else if (r == 0) {
            if (memcmp(d, orig, len) == 0) {
                silent_same++;
            } else {
                silent_diff++;
                if (checked) {
                    fprintf(stderr, "%s: flip at %zu (+%zu) gave different output\n", what, pos, run);
                    test_failures++;
                }
            }
        } else {
            fprintf(stderr, "%s: flip at %zu gave %d\n", what, pos, r);
            test_failures++;
        }
    }
    fprintf(stderr, "  %-28s %zu flips: %zu detected, %zu undetected (%zu same output)\n", what, tries,
            detected, silent_same + silent_diff, silent_same);
    gfree(s, clen);
    gfree(d, len);
}

static void test_flips(void)
{
    for (size_t ci = 1; ci < CFN_ARRAY_SIZE(all_comps); ci++) {
        enum blob_compressor c = all_comps[ci];

        for (int kind = DATA_RANDOM; kind <= DATA_ZERO; kind++) {
            size_t len = kind == DATA_RANDOM ? 4096 : 65536, clen;
            uint8_t *in = xalloc(len), *comp;
            char what[64];

            fill(in, len, (enum data_kind)kind);
            comp = compress_exact(c, 0, in, len, &clen);
            snprintf(what, sizeof(what), "%s/%s", blob_compressor_name(c),
                     kind == DATA_RANDOM ? "random" : kind == DATA_TEXT ? "text" : "zeros");
            flip_test(c, comp, clen, in, len, c == BLOB_COMP_GZIP, what);
            free(comp);
            free(in);
        }
    }

    uint8_t *text = text_lines();

    flip_test(BLOB_COMP_ZSTD, zstd_cli_with_size, sizeof(zstd_cli_with_size), text, TEXT_LINES_LEN,
              true, "zstd CLI frame (checksum)");
    flip_test(BLOB_COMP_ZSTD, zstd_cli_piped, sizeof(zstd_cli_piped), text, TEXT_LINES_LEN,
              true, "zstd CLI piped (checksum)");
    flip_test(BLOB_COMP_GZIP, gzip_cli_named, sizeof(gzip_cli_named), text, TEXT_LINES_LEN,
              true, "gzip CLI member");
    free(text);
}

/* Random bytes, and random bytes behind a valid magic, are never accepted. */
static void test_garbage(void)
{
    static const size_t src_lens[] = { 0, 1, 2, 3, 7, 18, 64, 513, 4096 };
    static const size_t dst_lens[] = { 0, 1, 100, 4096, 1 << 20 };
    static const uint8_t zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
    static const uint8_t gzip_magic[] = { 0x1f, 0x8b, 0x08, 0x00 };
    int accepted = 0;

    for (size_t ci = 1; ci < CFN_ARRAY_SIZE(all_comps); ci++) {
        enum blob_compressor c = all_comps[ci];

        for (size_t si = 0; si < CFN_ARRAY_SIZE(src_lens); si++) {
            for (size_t di = 0; di < CFN_ARRAY_SIZE(dst_lens); di++) {
                for (int magic = 0; magic < 2; magic++) {
                    size_t n = src_lens[si];
                    uint8_t *g = xalloc(n);
                    int r;

                    fill(g, n, DATA_RANDOM);
                    if (magic && c == BLOB_COMP_ZSTD)
                        memcpy(g, zstd_magic, CFN_MIN(n, sizeof(zstd_magic)));
                    if (magic && c == BLOB_COMP_GZIP)
                        memcpy(g, gzip_magic, CFN_MIN(n, sizeof(gzip_magic)));
                    r = decomp(c, g, n, dst_lens[di], NULL);
                    if (r != -EBADMSG) {
                        fprintf(stderr, "%s: %zu garbage bytes -> %zu gave %d\n", blob_compressor_name(c),
                                n, dst_lens[di], r);
                        accepted++;
                    }
                    free(g);
                }
            }
        }
    }
    CHECK_EQ_INT(accepted, 0);

    /* Sizes no decoder can honour are refused before anything is touched. */
    uint8_t small[16] = { 0 };

    CHECK_EQ_INT(codec_decompress(ctx, BLOB_COMP_LZ4_BLOCK, small, sizeof(small), small, (size_t)1 << 32),
                 -EBADMSG);
    CHECK_EQ_INT(codec_decompress(ctx, BLOB_COMP_LZ4_BLOCK, small, (size_t)1 << 32, small, 16), -EBADMSG);
}

static void test_zstd_cli(void)
{
    uint8_t *text = text_lines();
    size_t a = sizeof(zstd_cli_with_size), b = sizeof(zstd_cli_piped);
    uint8_t *both = xalloc(a + b), *two = xalloc(2 * TEXT_LINES_LEN);

    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, zstd_cli_with_size, a, TEXT_LINES_LEN, text), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, zstd_cli_with_size, a, TEXT_LINES_LEN - 1, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, zstd_cli_with_size, a, TEXT_LINES_LEN + 1, NULL), -EBADMSG);
    /* No content size in the header: the decoded length alone decides. */
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, zstd_cli_piped, b, TEXT_LINES_LEN, text), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, zstd_cli_piped, b, TEXT_LINES_LEN - 1, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, zstd_cli_piped, b, TEXT_LINES_LEN + 1, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, zstd_cli_piped, b, 0, NULL), -EBADMSG);

    /* Concatenated frames decode as one, as libzstd (and so nydusd) does. */
    memcpy(both, zstd_cli_with_size, a);
    memcpy(both + a, zstd_cli_piped, b);
    memcpy(two, text, TEXT_LINES_LEN);
    memcpy(two + TEXT_LINES_LEN, text, TEXT_LINES_LEN);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, both, a + b, 2 * TEXT_LINES_LEN, two), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, both, a + b, TEXT_LINES_LEN, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, both, a + b - 1, 2 * TEXT_LINES_LEN, NULL), -EBADMSG);

    /* A skippable frame in front is fine; a trailing stray byte is not. */
    uint8_t *skip = xalloc(12 + a);
    static const uint8_t skippable[12] = { 0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4 };

    memcpy(skip, skippable, 12);
    memcpy(skip + 12, zstd_cli_with_size, a);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, skip, 12 + a, TEXT_LINES_LEN, text), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, skip, 12, 0, NULL), 0);
    memcpy(both, zstd_cli_with_size, a);
    both[a] = 0;
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, both, a + 1, TEXT_LINES_LEN, NULL), -EBADMSG);

    /* A lying content size (patched FCS field) is caught from the header. */
    memcpy(both, zstd_cli_with_size, a);
    both[6] ^= 0x01;
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, both, a, TEXT_LINES_LEN, NULL), -EBADMSG);

    free(skip);
    free(both);
    free(two);
    free(text);
}

static bool find_in_path(const char *name, char *out, size_t out_len)
{
    const char *path = getenv("PATH");

    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);

        if (n > 0 && (size_t)snprintf(out, out_len, "%.*s/%s", (int)n, path, name) < out_len &&
            access(out, X_OK) == 0)
            return true;
        path += n + (end ? 1 : 0);
    }
    return false;
}

/* A big multi-block frame straight from the installed zstd CLI. */
static void test_zstd_cli_runtime(void)
{
    const char *tmp = getenv("TMPDIR");
    size_t len = 3 * (1 << 20) + 12345, clen = 0, cap;
    char zstd[4096], path[4096], cmd[8400];
    uint8_t *in, *comp;
    FILE *f;
    int fd;

    if (!find_in_path("zstd", zstd, sizeof(zstd))) {
        fprintf(stderr, "skip: zstd CLI not in PATH, only the embedded frames were tested\n");
        return;
    }
    in = xalloc(len);
    fill(in, len / 2, DATA_TEXT);
    fill(in + len / 2, len - len / 2, DATA_RANDOM);
    snprintf(path, sizeof(path), "%s/test-codec-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) {
        free(in);
        return;
    }
    CHECK(write(fd, in, len) == (ssize_t)len);
    close(fd);

    cap = len + (1 << 16);
    comp = xalloc(cap);
    snprintf(cmd, sizeof(cmd), "'%s' -q -c -5 '%s'", zstd, path);
    f = popen(cmd, "r");
    CHECK(f != NULL);
    if (f) {
        size_t n;

        while ((n = fread(comp + clen, 1, cap - clen, f)) > 0)
            clen += n;
        CHECK_EQ_INT(pclose(f), 0);
    }
    unlink(path);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, comp, clen, len, in), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, comp, clen, len - 1, NULL), -EBADMSG);
    free(comp);
    free(in);
}

/* Raw LZ4 blocks written by hand from the block format description. */
static void test_lz4_block(void)
{
    static const uint8_t blk1[] = {
        0x8f, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 0x08, 0x00, 0x05,    /* 8 literals, match 24 @8 */
        0xc0, '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', /* 12 final literals */
    };
    static const char out1[] = "abcdefghabcdefghabcdefghabcdefgh0123456789ab";
    static const uint8_t blk2[] = {
        0x1f, 'a', 0x01, 0x00, 0x01,                 /* 'a', match 20 @1 (overlapping run) */
        0x60, 'x', 'y', 'z', 'x', 'y', 'z',
    };
    static const char out2[] = "aaaaaaaaaaaaaaaaaaaaaxyzxyz";
    static const uint8_t bad_offset0[] = { 0x1f, 'a', 0x00, 0x00, 0x01, 0x60, 'x', 'y', 'z', 'x', 'y', 'z' };
    static const uint8_t bad_far[] = { 0x1f, 'a', 0x05, 0x00, 0x01, 0x60, 'x', 'y', 'z', 'x', 'y', 'z' };
    static const uint8_t bad_litlen[] = { 0xf0, 0xff, 0xff, 0x10, 'a' };
    static const uint8_t empty[] = { 0x00 };
    uint8_t trailing[sizeof(blk1) + 1];

    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, blk1, sizeof(blk1), 44, (const uint8_t *)out1), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, blk1, sizeof(blk1), 43, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, blk1, sizeof(blk1), 45, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, blk2, sizeof(blk2), 27, (const uint8_t *)out2), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, bad_offset0, sizeof(bad_offset0), 27, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, bad_far, sizeof(bad_far), 27, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, bad_litlen, sizeof(bad_litlen), 1000, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, empty, 1, 0, NULL), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, empty, 0, 0, NULL), -EBADMSG);
    memcpy(trailing, blk1, sizeof(blk1));
    trailing[sizeof(blk1)] = 0;
    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, trailing, sizeof(trailing), 44, NULL), -EBADMSG);

    /* Our compressor (fast and HC) emits the same format the hand-made blocks use. */
    size_t clen;
    uint8_t *c1 = compress_exact(BLOB_COMP_LZ4_BLOCK, 0, (const uint8_t *)out1, 44, &clen);

    CHECK_EQ_INT(decomp(BLOB_COMP_LZ4_BLOCK, c1, clen, 44, (const uint8_t *)out1), 0);
    free(c1);
}

static void test_gzip_cli(void)
{
    uint8_t *text = text_lines();
    size_t n = sizeof(gzip_cli_named);
    uint8_t *two = xalloc(2 * n), *d = xalloc(TEXT_LINES_LEN);

    CHECK_EQ_INT(decomp(BLOB_COMP_GZIP, gzip_cli_named, n, TEXT_LINES_LEN, text), 0);
    CHECK_EQ_INT(decomp(BLOB_COMP_GZIP, gzip_cli_named, n, TEXT_LINES_LEN - 1, NULL), -EBADMSG);

    /* A second member (or anything) after the first is not one chunk. */
    memcpy(two, gzip_cli_named, n);
    memcpy(two + n, gzip_cli_named, n);
    CHECK_EQ_INT(decomp(BLOB_COMP_GZIP, two, 2 * n, TEXT_LINES_LEN, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_GZIP, two, 2 * n, 2 * TEXT_LINES_LEN, NULL), -EBADMSG);
    CHECK_EQ_INT(decomp(BLOB_COMP_GZIP, two, n + 1, TEXT_LINES_LEN, NULL), -EBADMSG);

    /* Legacy stargz: the estimated range runs past the member; take the prefix. */
    CHECK_EQ_INT(codec_gunzip_prefix(ctx, two, 2 * n, d, TEXT_LINES_LEN), 0);
    CHECK(memcmp(d, text, TEXT_LINES_LEN) == 0);
    CHECK_EQ_INT(codec_gunzip_prefix(ctx, two, n - 30, d, 1000), 0);
    CHECK(memcmp(d, text, 1000) == 0);
    CHECK_EQ_INT(codec_gunzip_prefix(ctx, two, 100, d, TEXT_LINES_LEN), -EBADMSG);
    free(d);
    d = xalloc(TEXT_LINES_LEN + 1);
    CHECK_EQ_INT(codec_gunzip_prefix(ctx, two, 2 * n, d, TEXT_LINES_LEN + 1), -EBADMSG);
    free(d);

    /* The zlib wrapper is not gzip. */
    uLongf zlen = compressBound(TEXT_LINES_LEN);
    uint8_t *z = xalloc(zlen);

    CHECK_EQ_INT(compress2(z, &zlen, text, TEXT_LINES_LEN, 6), Z_OK);
    CHECK_EQ_INT(decomp(BLOB_COMP_GZIP, z, zlen, TEXT_LINES_LEN, NULL), -EBADMSG);
    free(z);
    free(two);
    free(text);
}

/*
 * ZRan: gzip some data, walk it with inflate(Z_BLOCK) the way nydus's
 * generator does, and at each deflate block boundary record what a
 * ZranInflateContext holds (input/output offsets, the window, the pending
 * bits and their byte). Decoding from each boundary must reproduce the
 * original bytes, at any skip and length.
 */
typedef struct ZranPoint {
    size_t in_pos, out_pos;
    unsigned bits;
    uint8_t byte;
    uint8_t window[CODEC_ZRAN_WINDOW_MAX];
    unsigned window_len;
} ZranPoint;

static size_t zran_points(const uint8_t *gz, size_t gz_len, size_t out_len, ZranPoint *pts, size_t max)
{
    z_stream z = { 0 };
    uint8_t *out = xalloc(out_len);
    size_t n = 0;

    CHECK_EQ_INT(inflateInit2(&z, 16 + 15), Z_OK);
    z.next_in = (Bytef *)gz;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    while (n < max) {
        int zr;

        /* Trickle the input so boundaries are seen wherever they fall. */
        z.avail_in = (uInt)CFN_MIN((size_t)(gz + gz_len - z.next_in), (size_t)997);
        zr = inflate(&z, Z_BLOCK);
        if (zr == Z_STREAM_END)
            break;
        CHECK(zr == Z_OK || zr == Z_BUF_ERROR);
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            break;
        /* 128: at a block boundary; 64: the last block is done (trailer next). */
        if ((z.data_type & 128) && !(z.data_type & 64) && z.total_out > 0 &&
            (n == 0 || pts[n - 1].in_pos != z.total_in)) {
            ZranPoint *p = &pts[n++];

            p->in_pos = z.total_in;
            p->out_pos = z.total_out;
            p->bits = (unsigned)z.data_type & 7;
            p->byte = p->bits ? gz[p->in_pos - 1] : 0;
            p->window_len = 0;
            CHECK_EQ_INT(inflateGetDictionary(&z, p->window, &p->window_len), Z_OK);
        }
    }
    inflateEnd(&z);
    free(out);
    return n;
}

/*
 * Multi-member gzip (bgzip, cat a.gz b.gz): from a boundary in the first
 * member, output runs on into the second, as nydus's ZranDecoder does it:
 * trailer and header skipped, the new member inflated with an empty window.
 */
static void test_zran_across_members(void)
{
    size_t len = 1 << 20, half = len / 2 + 777, c1, c2;
    uint8_t *in = xalloc(len);
    fill(in, len, DATA_TEXT);
    uint8_t *g1 = compress_exact(BLOB_COMP_GZIP, 6, in, half, &c1);
    uint8_t *g2 = compress_exact(BLOB_COMP_GZIP, 6, in + half, len - half, &c2);
    uint8_t *gz = xalloc(c1 + c2);
    memcpy(gz, g1, c1);
    memcpy(gz + c1, g2, c2);
    ZranPoint *pts = calloc(64, sizeof(*pts));
    size_t n = zran_points(g1, c1, half, pts, 64);      /* boundaries of the first member */
    CHECK(n >= 1);
    ZranPoint *p = &pts[n - 1];
    size_t avail = len - p->out_pos;
    uint8_t *d = xalloc(avail + 1);

    /* Across the boundary, skipping into it, and to the very end. */
    CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, gz + p->in_pos,
                                    c1 + c2 - p->in_pos, 0, d, avail), 0);
    CHECK(memcmp(d, in + p->out_pos, avail) == 0);
    size_t skip = half - p->out_pos - 10;
    CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, gz + p->in_pos,
                                    c1 + c2 - p->in_pos, skip, d, 5000), 0);
    CHECK(memcmp(d, in + p->out_pos + skip, 5000) == 0);
    /* Past the last member; a cut inside the second header; garbage instead of a header. */
    CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, gz + p->in_pos,
                                    c1 + c2 - p->in_pos, 0, d, avail + 1), -EBADMSG);
    CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, gz + p->in_pos,
                                    c1 + 5 - p->in_pos, 0, d, avail), -EBADMSG);
    gz[c1] ^= 0xff;
    CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, gz + p->in_pos,
                                    c1 + c2 - p->in_pos, 0, d, avail), -EBADMSG);
    free(d);
    free(pts);
    free(gz);
    free(g1);
    free(g2);
    free(in);
}

static void test_zran(void)
{
    size_t len = 3 * (1 << 20), clen;
    uint8_t *in = xalloc(len), *gz, *d;
    ZranPoint *pts = calloc(64, sizeof(*pts));
    size_t n, with_bits = 0;

    /* Mostly text with random stretches: many blocks, long back references. */
    for (size_t off = 0; off < len; off += 65536)
        fill(in + off, CFN_MIN((size_t)65536, len - off), (off / 65536) % 5 == 3 ? DATA_RANDOM : DATA_TEXT);
    gz = compress_exact(BLOB_COMP_GZIP, 6, in, len, &clen);
    n = zran_points(gz, clen, len, pts, 64);
    CHECK(n >= 8);

    for (size_t i = 0; i < n; i++) {
        ZranPoint *p = &pts[i];
        size_t avail = len - p->out_pos;
        const uint8_t *src = gz + p->in_pos;
        size_t src_len = clen - p->in_pos;
        static const size_t skips[] = { 0, 1, 4095, 20000, 100000 };

        with_bits += p->bits != 0;
        CHECK(p->window_len == CFN_MIN(p->out_pos, (size_t)CODEC_ZRAN_WINDOW_MAX));
        for (size_t s = 0; s < CFN_ARRAY_SIZE(skips); s++) {
            size_t skip = skips[s], want = CFN_MIN((size_t)70000, avail > skip ? avail - skip : 0);
            uint8_t *sc = gdup(src, src_len);

            d = galloc(want);
            CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, sc,
                                            src_len, skip, d, want), 0);
            CHECK(want == 0 || memcmp(d, in + p->out_pos + skip, want) == 0);
            gfree(d, want);
            gfree(sc, src_len);
        }
        /* To the very end of the stream, then one byte too many. */
        d = xalloc(avail + 1);
        CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, src, src_len, 0,
                                        d, avail), 0);
        CHECK(memcmp(d, in + p->out_pos, avail) == 0);
        CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, src, src_len, 0,
                                        d, avail + 1), -EBADMSG);
        CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, src, src_len, avail,
                                        d, 1), -EBADMSG);
        free(d);

        /* Input that stops short (a ctx in_len that is too small). */
        uint8_t *sc = gdup(src, CFN_MIN(src_len, (size_t)100));

        d = galloc(avail);
        CHECK_EQ_INT(codec_inflate_zran(ctx, p->window, p->window_len, p->bits, p->byte, sc,
                                        CFN_MIN(src_len, (size_t)100), 0, d, avail), -EBADMSG);
        gfree(d, avail);
        gfree(sc, CFN_MIN(src_len, (size_t)100));
    }
    fprintf(stderr, "  %zu zran points, %zu with pending bits\n", n, with_bits);
    CHECK(with_bits > 0);

    /* Bad context fields and hostile data never crash. */
    d = galloc(4096);
    CHECK_EQ_INT(codec_inflate_zran(ctx, NULL, 0, 8, 0, gz, clen, 0, d, 10), -EINVAL);
    CHECK_EQ_INT(codec_inflate_zran(ctx, in, CODEC_ZRAN_WINDOW_MAX + 1, 0, 0, gz, clen, 0, d, 10), -EINVAL);
    CHECK_EQ_INT(codec_inflate_zran(ctx, NULL, 10, 0, 0, gz, clen, 0, d, 10), -EINVAL);
    for (int iter = 0; iter < 300 && n > 1; iter++) {
        ZranPoint *p = &pts[1 + rng() % (n - 1)];
        size_t src_len = CFN_MIN(clen - p->in_pos, (size_t)5000);
        uint8_t *sc = gdup(gz + p->in_pos, src_len);
        int r;

        sc[rng() % src_len] ^= (uint8_t)(1 + rng() % 255);
        /* A wrong window or wrong bits must not read outside what it was given. */
        r = codec_inflate_zran(ctx, p->window, iter % 2 ? p->window_len : p->window_len / 4,
                               (p->bits + (unsigned)(iter % 3)) % 8, p->byte, sc, src_len,
                               (size_t)(rng() % 2000), d, 4096);
        CHECK(r == 0 || r == -EBADMSG);
        gfree(sc, src_len);
    }
    gfree(d, 4096);

    /* The context still serves ordinary gzip after raw inflates. */
    uint8_t *text = text_lines();

    CHECK_EQ_INT(decomp(BLOB_COMP_GZIP, gzip_cli_named, sizeof(gzip_cli_named), TEXT_LINES_LEN, text), 0);
    free(text);
    free(pts);
    free(gz);
    free(in);
}

static void hex32(const char *hex, uint8_t out[32])
{
    for (int i = 0; i < 32; i++) {
        unsigned v;

        CHECK(sscanf(hex + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
}

static void test_sha256(void)
{
    static const struct {
        const char *in;
        const char *hex;
    } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    };
    uint8_t want[32], got[32];

    for (size_t i = 0; i < CFN_ARRAY_SIZE(v); i++) {
        hex32(v[i].hex, want);
        CHECK_EQ_INT(codec_digest(ctx, BLOB_DIGEST_SHA256, v[i].in, strlen(v[i].in), got), 0);
        CHECK(memcmp(got, want, 32) == 0);
    }
    uint8_t *a = xalloc(1000000);

    memset(a, 'a', 1000000);
    hex32("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want);
    CHECK_EQ_INT(codec_digest(ctx, BLOB_DIGEST_SHA256, a, 1000000, got), 0);
    CHECK(memcmp(got, want, 32) == 0);
    free(a);

    CHECK_EQ_INT(codec_digest(ctx, BLOB_DIGEST_NONE, "x", 1, got), -ENOTSUP);
    CHECK_EQ_INT(codec_digest(ctx, (enum blob_digester)9, "x", 1, got), -ENOTSUP);
}

/*
 * The nydus v2.2 fixture blob: two zstd chunks whose blake3 digests sit in
 * the blob's own digest table (see nydus-format.md, appendix A).
 */
static void test_fixture(void)
{
    static const struct {
        size_t coff, csize, usize;
    } chunks[] = { { 0, 4828, 16931 }, { 4828, 2974, 13400 } };
    const char *fixture = getenv("CFN_FIXTURE_DIR");
    char path[4096];
    uint8_t blob[14554];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef",
             fixture ? fixture : "tests/fixtures/nydus-v6-2.2");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "skip: %s: %s\n", path, strerror(errno));
        return;
    }
    n = read(fd, blob, sizeof(blob));
    close(fd);
    CHECK_EQ_INT(n, sizeof(blob));
    if (n != (ssize_t)sizeof(blob))
        return;

    for (size_t i = 0; i < CFN_ARRAY_SIZE(chunks); i++) {
        uint8_t *d = xalloc(chunks[i].usize), digest[32];
        uint8_t *src = xdup(blob + chunks[i].coff, chunks[i].csize);

        CHECK_EQ_INT(codec_decompress(ctx, BLOB_COMP_ZSTD, src, chunks[i].csize, d, chunks[i].usize), 0);
        CHECK_EQ_INT(codec_digest(ctx, BLOB_DIGEST_BLAKE3, d, chunks[i].usize, digest), 0);
        CHECK(memcmp(digest, blob + 12954 + 32 * i, 32) == 0);
        CHECK_EQ_INT(decomp(BLOB_COMP_ZSTD, src, chunks[i].csize, chunks[i].usize - 1, NULL), -EBADMSG);
        free(src);
        free(d);
    }
}

int main(void)
{
    CodecCtx *other;

    CHECK_EQ_INT(codec_ctx_new(&ctx), 0);
    CHECK_EQ_INT(codec_ctx_new(&other), 0);
    CHECK(codec_ctx_free(other) == NULL);
    CHECK(codec_ctx_free(NULL) == NULL);

    RUN(test_roundtrip);
    RUN(test_compress_args);
    RUN(test_none);
    RUN(test_truncated);
    RUN(test_flips);
    RUN(test_garbage);
    RUN(test_zstd_cli);
    RUN(test_zstd_cli_runtime);
    RUN(test_lz4_block);
    RUN(test_gzip_cli);
    RUN(test_zran);
    RUN(test_zran_across_members);
    RUN(test_sha256);
    RUN(test_fixture);

    codec_ctx_free(ctx);
    return TEST_EXIT();
}
