/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Codec throughput on 1 MiB chunks (the nydus default chunk size):
 * decompression through codec_decompress() against raw library calls, and
 * the digests and CRC on every implementation this CPU runs.
 *
 *   bench-codec [seconds-per-measurement [file]]   (default 0.5 s)
 *
 * Rates are per second of this thread's CPU time, so a busy machine skews
 * them less. With a file, it is also hashed whole with blake3 (to compare
 * with `b3sum --num-threads 1`, timed the same way).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>
#include <zstd.h>

#include "storage/codec/blake3.h"
#include "storage/codec/codec.h"
#include "storage/codec/cpu.h"
#include "storage/codec/crc32c.h"

#define CHUNK (1u << 20)

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Something like file data: text with incompressible stretches (~3:1 for zstd). */
static void make_chunk(uint8_t *p, size_t n)
{
    static const char *words[] = { "chunk ", "blob ", "nydus ", "erofs ", "cache ", "fscache\n",
                                   "rafs ", "zstd ", "0123 ", "bootstrap ", "layer ", "image " };
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t i = 0;

    while (i < n) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t r = x * 0x2545F4914F6CDD1Dull;

        if ((i / 4096) % 4 == 3) {
            p[i++] = (uint8_t)(r >> 56);
        } else {
            for (const char *w = words[(r >> 40) % 12]; *w && i < n; w++)
                p[i++] = (uint8_t)*w;
        }
    }
}

typedef struct Bench {
    double seconds;
    volatile uint32_t sink;     /* keeps results alive */
} Bench;

/*
 * Run stmt until `seconds` pass, five times; return the best rate in bytes
 * per second (the least disturbed run on a shared machine).
 */
#define MEASURE(b, bytes, stmt)                                                \
    ({                                                                         \
        double best_ = 0;                                                      \
        for (int run_ = 0; run_ < 5; run_++) {                                 \
            double t0_ = now(), t_;                                            \
            size_t iters_ = 0;                                                 \
            do {                                                               \
                stmt;                                                          \
                iters_++;                                                      \
                t_ = now() - t0_;                                              \
            } while (t_ < (b)->seconds / 5);                                   \
            if ((double)(bytes) * (double)iters_ / t_ > best_)                 \
                best_ = (double)(bytes) * (double)iters_ / t_;                 \
        }                                                                      \
        best_;                                                                 \
    })

static void report(const char *what, double bps, const char *unit)
{
    double div = strcmp(unit, "GB/s") == 0 ? 1e9 : 1e6;

    printf("  %-44s %9.1f %s\n", what, bps / div, unit);
}

int main(int argc, char **argv)
{
    Bench b = { .seconds = argc > 1 ? atof(argv[1]) : 0.5 };
    uint8_t *in = malloc(CHUNK), *out = malloc(CHUNK), *zc, *lc, *gc;
    size_t zlen, llen, glen, cap = codec_compress_bound(BLOB_COMP_ZSTD, CHUNK) + 4096;
    unsigned f = codec_cpu_features();
    ZSTD_DCtx *raw = ZSTD_createDCtx();
    CodecCtx *ctx;
    uint8_t digest[32];

    if (b.seconds <= 0)
        b.seconds = 0.5;
    if (!in || !out || !raw || codec_ctx_new(&ctx) < 0)
        return 1;
    make_chunk(in, CHUNK);
    zc = malloc(cap);
    lc = malloc(cap);
    gc = malloc(cap);
    zlen = (size_t)codec_compress(BLOB_COMP_ZSTD, 0, in, CHUNK, zc, cap);
    llen = (size_t)codec_compress(BLOB_COMP_LZ4_BLOCK, 0, in, CHUNK, lc, cap);
    glen = (size_t)codec_compress(BLOB_COMP_GZIP, 0, in, CHUNK, gc, cap);

    printf("1 MiB chunks; MB/s of uncompressed data; cpu:%s%s%s%s\n",
           f & CODEC_CPU_SSE41 ? " sse4.1" : "", f & CODEC_CPU_SSE42 ? " sse4.2" : "",
           f & CODEC_CPU_PCLMUL ? " pclmul" : "", f & CODEC_CPU_AVX2 ? " avx2" : "");
    printf("decompression (zstd %zu B, lz4 %zu B, gzip %zu B compressed):\n", zlen, llen, glen);

    report("zstd  codec_decompress", MEASURE(&b, CHUNK, b.sink += (uint32_t)codec_decompress(
               ctx, BLOB_COMP_ZSTD, zc, zlen, out, CHUNK)), "MB/s");
    report("zstd  raw ZSTD_decompressDCtx", MEASURE(&b, CHUNK, b.sink += (uint32_t)ZSTD_decompressDCtx(
               raw, out, CHUNK, zc, zlen)), "MB/s");
    report("lz4   codec_decompress", MEASURE(&b, CHUNK, b.sink += (uint32_t)codec_decompress(
               ctx, BLOB_COMP_LZ4_BLOCK, lc, llen, out, CHUNK)), "MB/s");
    report("lz4   raw LZ4_decompress_safe", MEASURE(&b, CHUNK, b.sink += (uint32_t)LZ4_decompress_safe(
               (const char *)lc, (char *)out, (int)llen, CHUNK)), "MB/s");
    report("gzip  codec_decompress", MEASURE(&b, CHUNK, b.sink += (uint32_t)codec_decompress(
               ctx, BLOB_COMP_GZIP, gc, glen, out, CHUNK)), "MB/s");
    if (memcmp(in, out, CHUNK))
        fprintf(stderr, "warning: round trip mismatch\n");

    printf("digests:\n");
    for (int i = BLAKE3_IMPL_PORTABLE; i <= BLAKE3_IMPL_AVX2; i++) {
        Blake3Hasher h;
        char name[64];

        if (blake3_hasher_init_impl(&h, (enum blake3_impl)i) < 0)
            continue;
        snprintf(name, sizeof(name), "blake3 %s", blake3_impl_name((enum blake3_impl)i));
        report(name, MEASURE(&b, CHUNK, ({
                   blake3_hasher_init_impl(&h, (enum blake3_impl)i);
                   blake3_hasher_update(&h, in, CHUNK);
                   blake3_hasher_finalize(&h, digest, 32);
                   b.sink += digest[0];
               })), "MB/s");
    }
    for (size_t small = 64; small <= 4096; small *= 4) {
        char name[64];

        snprintf(name, sizeof(name), "blake3 %s, %zu-byte inputs",
                 blake3_impl_name(blake3_impl_best()), small);
        report(name, MEASURE(&b, CHUNK, ({
                   for (size_t off = 0; off < CHUNK; off += small)
                       blake3_hash(in + off, small, digest);
                   b.sink += digest[0];
               })), "MB/s");
    }
    report("blake3 codec_digest", MEASURE(&b, CHUNK, ({
               codec_digest(ctx, BLOB_DIGEST_BLAKE3, in, CHUNK, digest);
               b.sink += digest[0];
           })), "MB/s");
    report("sha256 codec_digest (OpenSSL)", MEASURE(&b, CHUNK, ({
               codec_digest(ctx, BLOB_DIGEST_SHA256, in, CHUNK, digest);
               b.sink += digest[0];
           })), "MB/s");

    printf("crc32c:\n");
    report("crc32c portable (slicing-by-8)", MEASURE(&b, CHUNK, b.sink += crc32c_portable(0, in, CHUNK)),
           "GB/s");
#if defined(CRC32C_HAVE_X86)
    if (f & CODEC_CPU_SSE42)
        report("crc32c sse4.2 (1 stream)", MEASURE(&b, CHUNK, b.sink += crc32c_sse42(0, in, CHUNK)), "GB/s");
    if ((f & CODEC_CPU_SSE42) && (f & CODEC_CPU_PCLMUL))
        report("crc32c sse4.2+pclmul (3 streams)",
               MEASURE(&b, CHUNK, b.sink += crc32c_sse42_pclmul(0, in, CHUNK)), "GB/s");
#endif
    report("crc32c codec_crc32c", MEASURE(&b, CHUNK, b.sink += codec_crc32c(0, in, CHUNK)), "GB/s");

    if (argc > 2) {
        struct stat st;
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        void *map;

        if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
            perror(argv[2]);
            return 1;
        }
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        close(fd);
        if (map == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        double t0 = now();

        blake3_hash(map, (size_t)st.st_size, digest);
        double t = now() - t0;

        printf("blake3 of %s (%lld bytes): ", argv[2], (long long)st.st_size);
        for (int i = 0; i < 32; i++)
            printf("%02x", digest[i]);
        printf("\n  %-44s %9.1f MB/s (%.2f s cpu)\n", "whole file, one thread", (double)st.st_size / t / 1e6, t);
        munmap(map, (size_t)st.st_size);
    }

    ZSTD_freeDCtx(raw);
    codec_ctx_free(ctx);
    free(in);
    free(out);
    free(zc);
    free(lc);
    free(gc);
    return 0;
}
