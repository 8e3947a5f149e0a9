/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * CRC32C: the check value and the RFC 3720 (iSCSI) appendix B.4 vectors on
 * every back end this CPU runs, then all back ends against a bit-at-a-time
 * reference over random lengths, alignments and split points.
 */
#include <stdint.h>

#include "storage/codec/codec.h"
#include "storage/codec/cpu.h"
#include "storage/codec/crc32c.h"
#include "storage/util/macros.h"
#include "tests/unit/test.h"

typedef uint32_t (*CrcFn)(uint32_t crc, const void *data, size_t len);

static struct {
    const char *name;
    CrcFn fn;
} paths[4];
static size_t n_paths;

static void find_paths(void)
{
    unsigned f = codec_cpu_features();

    paths[n_paths].name = "codec_crc32c";
    paths[n_paths++].fn = codec_crc32c;
    paths[n_paths].name = "portable";
    paths[n_paths++].fn = crc32c_portable;
#if defined(CRC32C_HAVE_X86)
    if (f & CODEC_CPU_SSE42) {
        paths[n_paths].name = "sse4.2";
        paths[n_paths++].fn = crc32c_sse42;
    } else {
        fprintf(stderr, "note: no SSE4.2, hardware path not tested\n");
    }
    if ((f & CODEC_CPU_SSE42) && (f & CODEC_CPU_PCLMUL)) {
        paths[n_paths].name = "sse4.2+pclmul";
        paths[n_paths++].fn = crc32c_sse42_pclmul;
    } else {
        fprintf(stderr, "note: no PCLMUL, 3-way path not tested\n");
    }
#else
    (void)f;
    fprintf(stderr, "note: not x86-64, only the portable path exists\n");
#endif
}

/* Bit at a time, straight from the definition. */
static uint32_t crc32c_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & -(crc & 1));
    }
    return ~crc;
}

static uint64_t rng_state = 0x1234567887654321ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static void test_vectors(void)
{
    static const uint8_t pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
        0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    uint8_t zeros[32] = { 0 }, ones[32], inc[32], dec[32];

    for (int i = 0; i < 32; i++) {
        ones[i] = 0xff;
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    for (size_t k = 0; k < n_paths; k++) {
        CrcFn fn = paths[k].fn;
        int before = test_failures;

        CHECK_EQ_INT(fn(0, "123456789", 9), 0xE3069283u);
        CHECK_EQ_INT(fn(0, zeros, 32), 0x8A9136AAu);
        CHECK_EQ_INT(fn(0, ones, 32), 0x62A8AB43u);
        CHECK_EQ_INT(fn(0, inc, 32), 0x46DD794Eu);
        CHECK_EQ_INT(fn(0, dec, 32), 0x113FDB5Cu);
        CHECK_EQ_INT(fn(0, pdu, sizeof(pdu)), 0xD9963A56u);
        CHECK_EQ_INT(fn(0, NULL, 0), 0);
        CHECK_EQ_INT(fn(0x12345678u, NULL, 0), 0x12345678u);
        if (test_failures != before)
            fprintf(stderr, "  (path %s)\n", paths[k].name);
    }
    CHECK_EQ_INT(crc32c_ref(0, (const uint8_t *)"123456789", 9), 0xE3069283u);
}

static void test_random(void)
{
    /* Past 3 x 8192 and 3 x 256 so every block size of the 3-way path runs. */
    size_t max = 3 * 8192 * 3 + 3 * 256 * 2 + 100;
    uint8_t *buf = malloc(max + 8);

    for (size_t i = 0; i < max + 8; i++)
        buf[i] = (uint8_t)(rng() >> 56);

    for (int iter = 0; iter < 600; iter++) {
        size_t len = iter < 300 ? (size_t)iter : (size_t)(rng() % max);
        size_t off = (size_t)(rng() % 8);   /* every alignment */
        uint32_t seed = iter % 3 ? 0 : (uint32_t)rng();
        uint32_t want = crc32c_ref(seed, buf + off, len);

        for (size_t k = 0; k < n_paths; k++) {
            uint32_t got = paths[k].fn(seed, buf + off, len);

            if (got != want) {
                fprintf(stderr, "%s len %zu off %zu: %08x != %08x\n", paths[k].name, len, off, got, want);
                test_failures++;
            }
        }
    }
    free(buf);
}

/* crc(crc(0, a), b) == crc(0, a || b) everywhere, including across paths. */
static void test_chaining(void)
{
    size_t len = 200000;
    uint8_t *buf = malloc(len);
    uint32_t whole;

    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(rng() >> 56);
    whole = crc32c_ref(0, buf, len);

    for (int iter = 0; iter < 50; iter++) {
        size_t cut = (size_t)(rng() % len);

        for (size_t k = 0; k < n_paths; k++) {
            CrcFn a = paths[k].fn, b = paths[(k + 1) % n_paths].fn;

            CHECK_EQ_INT(b(a(0, buf, cut), buf + cut, len - cut), whole);
        }
    }
    free(buf);
}

int main(void)
{
    find_paths();
    RUN(test_vectors);
    RUN(test_random);
    RUN(test_chaining);
    return TEST_EXIT();
}
