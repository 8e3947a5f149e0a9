/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * BLAKE3 over several independent inputs at once (whole chunks, or the
 * pairs of chaining values under parent nodes): lane i of every vector
 * belongs to input i, so one instruction advances 4 (SSE4.1) or 8 (AVX2)
 * compressions. Message words are transposed from the inputs' rows into
 * the lanes on load, and the chaining values are transposed back at the
 * end. Built with target attributes; callers dispatch on
 * codec_cpu_features(). The AVX2 rounds themselves are generated assembly
 * (gen-blake3-avx2.py), the SSE4.1 ones the VROUNDS macro below.
 */
#include <string.h>

#include "blake3-impl.h"

#if defined(BLAKE3_HAVE_X86)

#include <immintrin.h>

#define BLOCKS_PER_CHUNK (BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN)

/*
 * One round over vectors, written column-then-diagonal in four independent
 * lanes of work so the CPU overlaps them. ADD/XOR/ROTn are the ISA's ops.
 * s0..s15 is the round's message order (the spec's permutation applied r
 * times), literal so every message load is a fixed stack offset.
 */
#define VROUND(v, m, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, \
               s14, s15)                                                       \
    do {                                                                       \
        /* columns */                                                          \
        v[0] = ADD(ADD(v[0], v[4]), m[s0]);                                    \
        v[1] = ADD(ADD(v[1], v[5]), m[s2]);                                    \
        v[2] = ADD(ADD(v[2], v[6]), m[s4]);                                    \
        v[3] = ADD(ADD(v[3], v[7]), m[s6]);                                    \
        v[12] = ROT16(XOR(v[12], v[0])); v[13] = ROT16(XOR(v[13], v[1]));      \
        v[14] = ROT16(XOR(v[14], v[2])); v[15] = ROT16(XOR(v[15], v[3]));      \
        v[8] = ADD(v[8], v[12]);  v[9] = ADD(v[9], v[13]);                     \
        v[10] = ADD(v[10], v[14]); v[11] = ADD(v[11], v[15]);                  \
        v[4] = ROT12(XOR(v[4], v[8])); v[5] = ROT12(XOR(v[5], v[9]));          \
        v[6] = ROT12(XOR(v[6], v[10])); v[7] = ROT12(XOR(v[7], v[11]));        \
        v[0] = ADD(ADD(v[0], v[4]), m[s1]);                                    \
        v[1] = ADD(ADD(v[1], v[5]), m[s3]);                                    \
        v[2] = ADD(ADD(v[2], v[6]), m[s5]);                                    \
        v[3] = ADD(ADD(v[3], v[7]), m[s7]);                                    \
        v[12] = ROT8(XOR(v[12], v[0])); v[13] = ROT8(XOR(v[13], v[1]));        \
        v[14] = ROT8(XOR(v[14], v[2])); v[15] = ROT8(XOR(v[15], v[3]));        \
        v[8] = ADD(v[8], v[12]);  v[9] = ADD(v[9], v[13]);                     \
        v[10] = ADD(v[10], v[14]); v[11] = ADD(v[11], v[15]);                  \
        v[4] = ROT7(XOR(v[4], v[8])); v[5] = ROT7(XOR(v[5], v[9]));            \
        v[6] = ROT7(XOR(v[6], v[10])); v[7] = ROT7(XOR(v[7], v[11]));          \
        /* diagonals: (0,5,10,15) (1,6,11,12) (2,7,8,13) (3,4,9,14) */         \
        v[0] = ADD(ADD(v[0], v[5]), m[s8]);                                    \
        v[1] = ADD(ADD(v[1], v[6]), m[s10]);                                   \
        v[2] = ADD(ADD(v[2], v[7]), m[s12]);                                   \
        v[3] = ADD(ADD(v[3], v[4]), m[s14]);                                   \
        v[15] = ROT16(XOR(v[15], v[0])); v[12] = ROT16(XOR(v[12], v[1]));      \
        v[13] = ROT16(XOR(v[13], v[2])); v[14] = ROT16(XOR(v[14], v[3]));      \
        v[10] = ADD(v[10], v[15]); v[11] = ADD(v[11], v[12]);                  \
        v[8] = ADD(v[8], v[13]);   v[9] = ADD(v[9], v[14]);                    \
        v[5] = ROT12(XOR(v[5], v[10])); v[6] = ROT12(XOR(v[6], v[11]));        \
        v[7] = ROT12(XOR(v[7], v[8]));  v[4] = ROT12(XOR(v[4], v[9]));         \
        v[0] = ADD(ADD(v[0], v[5]), m[s9]);                                    \
        v[1] = ADD(ADD(v[1], v[6]), m[s11]);                                   \
        v[2] = ADD(ADD(v[2], v[7]), m[s13]);                                   \
        v[3] = ADD(ADD(v[3], v[4]), m[s15]);                                   \
        v[15] = ROT8(XOR(v[15], v[0])); v[12] = ROT8(XOR(v[12], v[1]));        \
        v[13] = ROT8(XOR(v[13], v[2])); v[14] = ROT8(XOR(v[14], v[3]));        \
        v[10] = ADD(v[10], v[15]); v[11] = ADD(v[11], v[12]);                  \
        v[8] = ADD(v[8], v[13]);   v[9] = ADD(v[9], v[14]);                    \
        v[5] = ROT7(XOR(v[5], v[10])); v[6] = ROT7(XOR(v[6], v[11]));          \
        v[7] = ROT7(XOR(v[7], v[8]));  v[4] = ROT7(XOR(v[4], v[9]));           \
    } while (0)

/* The seven rounds, with their message schedules. */
#define VROUNDS(v, m)                                                          \
    do {                                                                       \
        VROUND(v, m, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);    \
        VROUND(v, m, 2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8);    \
        VROUND(v, m, 3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1);    \
        VROUND(v, m, 10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6);    \
        VROUND(v, m, 12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4);    \
        VROUND(v, m, 9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7);    \
        VROUND(v, m, 11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13);    \
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
void blake3_hash4_sse41(const uint8_t *in, size_t stride, size_t blocks, const uint32_t key[8],
                        uint64_t counter, bool counter_step, uint8_t flags, uint8_t flags_start,
                        uint8_t flags_end, uint32_t out[4][8])
{
    const __m128i rot16 = _mm_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    const __m128i rot8 = _mm_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
    __m128i h[8], v[16], m[16];
    uint32_t lo[4], hi[4];

    for (int i = 0; i < 8; i++)
        h[i] = _mm_set1_epi32((int)key[i]);
    for (int i = 0; i < 4; i++) {
        uint64_t c = counter + (counter_step ? (uint64_t)i : 0);

        lo[i] = (uint32_t)c;
        hi[i] = (uint32_t)(c >> 32);
    }
    const __m128i ctr_lo = _mm_loadu_si128((const __m128i *)lo);
    const __m128i ctr_hi = _mm_loadu_si128((const __m128i *)hi);

    for (size_t b = 0; b < blocks; b++) {
        uint32_t f = flags;

        if (b == 0)
            f |= flags_start;
        if (b == blocks - 1)
            f |= flags_end;

        for (int q = 0; q < 4; q++) {
            for (int lane = 0; lane < 4; lane++)
                m[4 * q + lane] = _mm_loadu_si128(
                    (const __m128i *)(in + lane * stride + b * BLAKE3_BLOCK_LEN + 16 * q));
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

        VROUNDS(v, m);
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

/*
 * A single compression with the state as four rows in four registers: G
 * runs on all columns at once, then on the diagonals after rotating rows
 * 1-3 so each diagonal lines up in one lane. Used where nothing can be
 * batched: chunks of small inputs, parent nodes, the root.
 */
#define G_ROWS(r0, r1, r2, r3, mx, my)                                         \
    do {                                                                       \
        r0 = ADD(ADD(r0, r1), mx);                                             \
        r3 = ROT16(XOR(r3, r0));                                               \
        r2 = ADD(r2, r3);                                                      \
        r1 = ROT12(XOR(r1, r2));                                               \
        r0 = ADD(ADD(r0, r1), my);                                             \
        r3 = ROT8(XOR(r3, r0));                                                \
        r2 = ADD(r2, r3);                                                      \
        r1 = ROT7(XOR(r1, r2));                                                \
    } while (0)

#define MSG4(a, b, c, d) _mm_setr_epi32((int)m[a], (int)m[b], (int)m[c], (int)m[d])

#define SROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15) \
    do {                                                                       \
        G_ROWS(r0, r1, r2, r3, MSG4(s0, s2, s4, s6), MSG4(s1, s3, s5, s7));    \
        r1 = _mm_shuffle_epi32(r1, 0x39);   /* lane i <- i+1 */                \
        r2 = _mm_shuffle_epi32(r2, 0x4E);   /* lane i <- i+2 */                \
        r3 = _mm_shuffle_epi32(r3, 0x93);   /* lane i <- i+3 */                \
        G_ROWS(r0, r1, r2, r3, MSG4(s8, s10, s12, s14), MSG4(s9, s11, s13, s15)); \
        r1 = _mm_shuffle_epi32(r1, 0x93);                                      \
        r2 = _mm_shuffle_epi32(r2, 0x4E);                                      \
        r3 = _mm_shuffle_epi32(r3, 0x39);                                      \
    } while (0)

__attribute__((target("sse4.1")))
void blake3_compress_sse41(uint32_t out[16], const uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                           uint32_t block_len, uint64_t counter, uint32_t flags)
{
    const __m128i rot16 = _mm_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    const __m128i rot8 = _mm_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
    const __m128i cv_lo = _mm_loadu_si128((const __m128i *)&cv[0]);
    const __m128i cv_hi = _mm_loadu_si128((const __m128i *)&cv[4]);
    __m128i r0 = cv_lo, r1 = cv_hi;
    __m128i r2 = _mm_loadu_si128((const __m128i *)&blake3_iv[0]);
    __m128i r3 = _mm_setr_epi32((int)(uint32_t)counter, (int)(uint32_t)(counter >> 32),
                                (int)block_len, (int)flags);
    uint32_t m[16];

    memcpy(m, block, sizeof(m));    /* x86 is little-endian, like the spec */

    SROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    SROUND(2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8);
    SROUND(3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1);
    SROUND(10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6);
    SROUND(12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4);
    SROUND(9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7);
    SROUND(11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13);

    _mm_storeu_si128((__m128i *)&out[0], XOR(r0, r2));
    _mm_storeu_si128((__m128i *)&out[4], XOR(r1, r3));
    _mm_storeu_si128((__m128i *)&out[8], XOR(r2, cv_lo));
    _mm_storeu_si128((__m128i *)&out[12], XOR(r3, cv_hi));
}

#undef ADD
#undef XOR
#undef ROT16
#undef ROT8
#undef ROT12
#undef ROT7

/* ---- AVX2: 8 chunks ------------------------------------------------------ */

#define XOR(a, b) _mm256_xor_si256(a, b)

/* The seven rounds in generated assembly (gen-blake3-avx2.py says why). */
void blake3_rounds8_avx2(__m256i v[16], const __m256i m[16]);

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
void blake3_hash8_avx2(const uint8_t *in, size_t stride, size_t blocks, const uint32_t key[8],
                       uint64_t counter, bool counter_step, uint8_t flags, uint8_t flags_start,
                       uint8_t flags_end, uint32_t out[8][8])
{
    __m256i h[8], v[16], m[16];
    uint32_t lo[8], hi[8];

    for (int i = 0; i < 8; i++) {
        uint64_t c = counter + (counter_step ? (uint64_t)i : 0);

        h[i] = _mm256_set1_epi32((int)key[i]);
        lo[i] = (uint32_t)c;
        hi[i] = (uint32_t)(c >> 32);
    }
    const __m256i ctr_lo = _mm256_loadu_si256((const __m256i *)lo);
    const __m256i ctr_hi = _mm256_loadu_si256((const __m256i *)hi);

    for (size_t b = 0; b < blocks; b++) {
        uint32_t f = flags;

        if (b == 0)
            f |= flags_start;
        if (b == blocks - 1)
            f |= flags_end;

        for (int half = 0; half < 2; half++) {
            for (int lane = 0; lane < 8; lane++)
                m[8 * half + lane] = _mm256_loadu_si256(
                    (const __m256i *)(in + lane * stride + b * BLAKE3_BLOCK_LEN + 32 * half));
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

        blake3_rounds8_avx2(v, m);
        for (int i = 0; i < 8; i++)
            h[i] = XOR(v[i], v[i + 8]);
    }

    transpose8(h);
    for (int lane = 0; lane < 8; lane++)
        _mm256_storeu_si256((__m256i *)out[lane], h[lane]);
}

#endif /* BLAKE3_HAVE_X86 */
