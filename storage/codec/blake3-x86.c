/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * BLAKE3 over several whole chunks at once: lane i of every vector belongs
 * to chunk i, so one instruction advances 4 (SSE4.1) or 8 (AVX2) independent
 * compressions. Message words are transposed from the chunks' rows into the
 * lanes on load, and the chaining values are transposed back at the end.
 * Built with target attributes; callers dispatch on codec_cpu_features().
 */
#include "blake3-impl.h"

#if defined(BLAKE3_HAVE_X86)

#include <immintrin.h>

#define BLOCKS_PER_CHUNK (BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN)

/*
 * The message word order of each round (the spec's permutation applied r
 * times). The vector code indexes an in-memory message array anyway.
 */
static const uint8_t schedule[7][16] = {
    { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
    { 2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8 },
    { 3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1 },
    { 10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6 },
    { 12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4 },
    { 9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7 },
    { 11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13 },
};

/*
 * One round over vectors, written column-then-diagonal in four independent
 * lanes of work so the CPU overlaps them. ADD/XOR/ROTn are the ISA's ops.
 */
#define VROUND(v, m, s)                                                       \
    do {                                                                      \
        /* columns */                                                         \
        v[0] = ADD(ADD(v[0], v[4]), m[s[0]]);                                 \
        v[1] = ADD(ADD(v[1], v[5]), m[s[2]]);                                 \
        v[2] = ADD(ADD(v[2], v[6]), m[s[4]]);                                 \
        v[3] = ADD(ADD(v[3], v[7]), m[s[6]]);                                 \
        v[12] = ROT16(XOR(v[12], v[0])); v[13] = ROT16(XOR(v[13], v[1]));     \
        v[14] = ROT16(XOR(v[14], v[2])); v[15] = ROT16(XOR(v[15], v[3]));     \
        v[8] = ADD(v[8], v[12]);  v[9] = ADD(v[9], v[13]);                    \
        v[10] = ADD(v[10], v[14]); v[11] = ADD(v[11], v[15]);                 \
        v[4] = ROT12(XOR(v[4], v[8])); v[5] = ROT12(XOR(v[5], v[9]));         \
        v[6] = ROT12(XOR(v[6], v[10])); v[7] = ROT12(XOR(v[7], v[11]));       \
        v[0] = ADD(ADD(v[0], v[4]), m[s[1]]);                                 \
        v[1] = ADD(ADD(v[1], v[5]), m[s[3]]);                                 \
        v[2] = ADD(ADD(v[2], v[6]), m[s[5]]);                                 \
        v[3] = ADD(ADD(v[3], v[7]), m[s[7]]);                                 \
        v[12] = ROT8(XOR(v[12], v[0])); v[13] = ROT8(XOR(v[13], v[1]));       \
        v[14] = ROT8(XOR(v[14], v[2])); v[15] = ROT8(XOR(v[15], v[3]));       \
        v[8] = ADD(v[8], v[12]);  v[9] = ADD(v[9], v[13]);                    \
        v[10] = ADD(v[10], v[14]); v[11] = ADD(v[11], v[15]);                 \
        v[4] = ROT7(XOR(v[4], v[8])); v[5] = ROT7(XOR(v[5], v[9]));           \
        v[6] = ROT7(XOR(v[6], v[10])); v[7] = ROT7(XOR(v[7], v[11]));         \
        /* diagonals: (0,5,10,15) (1,6,11,12) (2,7,8,13) (3,4,9,14) */        \
        v[0] = ADD(ADD(v[0], v[5]), m[s[8]]);                                 \
        v[1] = ADD(ADD(v[1], v[6]), m[s[10]]);                                \
        v[2] = ADD(ADD(v[2], v[7]), m[s[12]]);                                \
        v[3] = ADD(ADD(v[3], v[4]), m[s[14]]);                                \
        v[15] = ROT16(XOR(v[15], v[0])); v[12] = ROT16(XOR(v[12], v[1]));     \
        v[13] = ROT16(XOR(v[13], v[2])); v[14] = ROT16(XOR(v[14], v[3]));     \
        v[10] = ADD(v[10], v[15]); v[11] = ADD(v[11], v[12]);                 \
        v[8] = ADD(v[8], v[13]);   v[9] = ADD(v[9], v[14]);                   \
        v[5] = ROT12(XOR(v[5], v[10])); v[6] = ROT12(XOR(v[6], v[11]));       \
        v[7] = ROT12(XOR(v[7], v[8]));  v[4] = ROT12(XOR(v[4], v[9]));        \
        v[0] = ADD(ADD(v[0], v[5]), m[s[9]]);                                 \
        v[1] = ADD(ADD(v[1], v[6]), m[s[11]]);                                \
        v[2] = ADD(ADD(v[2], v[7]), m[s[13]]);                                \
        v[3] = ADD(ADD(v[3], v[4]), m[s[15]]);                                \
        v[15] = ROT8(XOR(v[15], v[0])); v[12] = ROT8(XOR(v[12], v[1]));       \
        v[13] = ROT8(XOR(v[13], v[2])); v[14] = ROT8(XOR(v[14], v[3]));       \
        v[10] = ADD(v[10], v[15]); v[11] = ADD(v[11], v[12]);                 \
        v[8] = ADD(v[8], v[13]);   v[9] = ADD(v[9], v[14]);                   \
        v[5] = ROT7(XOR(v[5], v[10])); v[6] = ROT7(XOR(v[6], v[11]));         \
        v[7] = ROT7(XOR(v[7], v[8]));  v[4] = ROT7(XOR(v[4], v[9]));          \
    } while (0)

/* ---- SSE4.1: 4 chunks ---------------------------------------------------- */

#define ADD(a, b) _mm_add_epi32(a, b)
#define XOR(a, b) _mm_xor_si128(a, b)
#define ROT16(x) _mm_shuffle_epi8(x, rot16)
#define ROT8(x) _mm_shuffle_epi8(x, rot8)
#define ROT12(x) _mm_or_si128(_mm_srli_epi32(x, 12), _mm_slli_epi32(x, 20))
#define ROT7(x) _mm_or_si128(_mm_srli_epi32(x, 7), _mm_slli_epi32(x, 25))

/* Rows r[0..3] (one per chunk) become columns (one per word). */
__attribute__((target("sse4.1")))
static inline void transpose4(__m128i r[4])
{
    __m128i t0 = _mm_unpacklo_epi32(r[0], r[1]);
    __m128i t1 = _mm_unpackhi_epi32(r[0], r[1]);
    __m128i t2 = _mm_unpacklo_epi32(r[2], r[3]);
    __m128i t3 = _mm_unpackhi_epi32(r[2], r[3]);

    r[0] = _mm_unpacklo_epi64(t0, t2);
    r[1] = _mm_unpackhi_epi64(t0, t2);
    r[2] = _mm_unpacklo_epi64(t1, t3);
    r[3] = _mm_unpackhi_epi64(t1, t3);
}

__attribute__((target("sse4.1")))
void blake3_hash4_sse41(const uint8_t *in, const uint32_t key[8], uint64_t counter,
                        uint8_t flags, uint32_t out[4][8])
{
    const __m128i rot16 = _mm_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    const __m128i rot8 = _mm_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
    __m128i h[8], v[16], m[16];
    __m128i ctr_lo, ctr_hi;

    for (int i = 0; i < 8; i++)
        h[i] = _mm_set1_epi32((int)key[i]);
    ctr_lo = _mm_setr_epi32((int)(uint32_t)counter, (int)(uint32_t)(counter + 1),
                            (int)(uint32_t)(counter + 2), (int)(uint32_t)(counter + 3));
    ctr_hi = _mm_setr_epi32((int)(uint32_t)(counter >> 32), (int)(uint32_t)((counter + 1) >> 32),
                            (int)(uint32_t)((counter + 2) >> 32), (int)(uint32_t)((counter + 3) >> 32));

    for (int b = 0; b < BLOCKS_PER_CHUNK; b++) {
        uint32_t f = flags;

        if (b == 0)
            f |= B3_CHUNK_START;
        if (b == BLOCKS_PER_CHUNK - 1)
            f |= B3_CHUNK_END;

        for (int q = 0; q < 4; q++) {
            for (int lane = 0; lane < 4; lane++)
                m[4 * q + lane] = _mm_loadu_si128(
                    (const __m128i *)(in + lane * BLAKE3_CHUNK_LEN + b * BLAKE3_BLOCK_LEN + 16 * q));
            transpose4(&m[4 * q]);
        }

        for (int i = 0; i < 8; i++)
            v[i] = h[i];
        v[8] = _mm_set1_epi32((int)blake3_iv[0]);
        v[9] = _mm_set1_epi32((int)blake3_iv[1]);
        v[10] = _mm_set1_epi32((int)blake3_iv[2]);
        v[11] = _mm_set1_epi32((int)blake3_iv[3]);
        v[12] = ctr_lo;
        v[13] = ctr_hi;
        v[14] = _mm_set1_epi32(BLAKE3_BLOCK_LEN);
        v[15] = _mm_set1_epi32((int)f);

        for (int r = 0; r < 7; r++)
            VROUND(v, m, schedule[r]);
        for (int i = 0; i < 8; i++)
            h[i] = XOR(v[i], v[i + 8]);
    }

    transpose4(&h[0]);
    transpose4(&h[4]);
    for (int lane = 0; lane < 4; lane++) {
        _mm_storeu_si128((__m128i *)&out[lane][0], h[lane]);
        _mm_storeu_si128((__m128i *)&out[lane][4], h[4 + lane]);
    }
}

#undef ADD
#undef XOR
#undef ROT16
#undef ROT8
#undef ROT12
#undef ROT7

/* ---- AVX2: 8 chunks ------------------------------------------------------ */

#define ADD(a, b) _mm256_add_epi32(a, b)
#define XOR(a, b) _mm256_xor_si256(a, b)
#define ROT16(x) _mm256_shuffle_epi8(x, rot16)
#define ROT8(x) _mm256_shuffle_epi8(x, rot8)
#define ROT12(x) _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20))
#define ROT7(x) _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25))

__attribute__((target("avx2")))
static inline void transpose8(__m256i r[8])
{
    __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    __m256i t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    __m256i t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    __m256i t7 = _mm256_unpackhi_epi32(r[6], r[7]);

    /* uK holds word K (low 128 bits) and word K+4 (high) of rows 0-3 or 4-7. */
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2);
    __m256i u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3);
    __m256i u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6);
    __m256i u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7);
    __m256i u7 = _mm256_unpackhi_epi64(t5, t7);

    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

__attribute__((target("avx2")))
void blake3_hash8_avx2(const uint8_t *in, const uint32_t key[8], uint64_t counter,
                       uint8_t flags, uint32_t out[8][8])
{
    const __m256i rot16 = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                                           2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    const __m256i rot8 = _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
                                          1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
    __m256i h[8], v[16], m[16];
    uint32_t lo[8], hi[8];

    for (int i = 0; i < 8; i++) {
        h[i] = _mm256_set1_epi32((int)key[i]);
        lo[i] = (uint32_t)(counter + (uint64_t)i);
        hi[i] = (uint32_t)((counter + (uint64_t)i) >> 32);
    }
    const __m256i ctr_lo = _mm256_loadu_si256((const __m256i *)lo);
    const __m256i ctr_hi = _mm256_loadu_si256((const __m256i *)hi);

    for (int b = 0; b < BLOCKS_PER_CHUNK; b++) {
        uint32_t f = flags;

        if (b == 0)
            f |= B3_CHUNK_START;
        if (b == BLOCKS_PER_CHUNK - 1)
            f |= B3_CHUNK_END;

        for (int half = 0; half < 2; half++) {
            for (int lane = 0; lane < 8; lane++)
                m[8 * half + lane] = _mm256_loadu_si256(
                    (const __m256i *)(in + lane * BLAKE3_CHUNK_LEN + b * BLAKE3_BLOCK_LEN + 32 * half));
            transpose8(&m[8 * half]);
        }

        for (int i = 0; i < 8; i++)
            v[i] = h[i];
        v[8] = _mm256_set1_epi32((int)blake3_iv[0]);
        v[9] = _mm256_set1_epi32((int)blake3_iv[1]);
        v[10] = _mm256_set1_epi32((int)blake3_iv[2]);
        v[11] = _mm256_set1_epi32((int)blake3_iv[3]);
        v[12] = ctr_lo;
        v[13] = ctr_hi;
        v[14] = _mm256_set1_epi32(BLAKE3_BLOCK_LEN);
        v[15] = _mm256_set1_epi32((int)f);

        for (int r = 0; r < 7; r++)
            VROUND(v, m, schedule[r]);
        for (int i = 0; i < 8; i++)
            h[i] = XOR(v[i], v[i + 8]);
    }

    transpose8(h);
    for (int lane = 0; lane < 8; lane++)
        _mm256_storeu_si256((__m256i *)out[lane], h[lane]);
}

#endif /* BLAKE3_HAVE_X86 */
