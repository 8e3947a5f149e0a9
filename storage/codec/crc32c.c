/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor
 * 0xFFFFFFFF): the nydus chunk crc. The fast path runs three independent
 * crc32 instruction streams, because one stream is bound by the
 * instruction's 3-cycle latency, and merges them with a carry-less multiply.
 */
#include <string.h>

#include "codec.h"
#include "cpu.h"
#include "crc32c.h"
#include "crc32c-table.h"

#if defined(CRC32C_HAVE_X86)
#include <immintrin.h>
#endif

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Works on the raw state (already inverted). */
static uint32_t crc32c_sw_state(uint32_t c, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t v = load_le64(p) ^ c;

        c = crc32c_table[7][v & 0xff] ^ crc32c_table[6][(v >> 8) & 0xff] ^
            crc32c_table[5][(v >> 16) & 0xff] ^ crc32c_table[4][(v >> 24) & 0xff] ^
            crc32c_table[3][(v >> 32) & 0xff] ^ crc32c_table[2][(v >> 40) & 0xff] ^
            crc32c_table[1][(v >> 48) & 0xff] ^ crc32c_table[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc32c_table[0][(c ^ *p++) & 0xff];
    return c;
}

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    if (!len)
        return crc;
    return ~crc32c_sw_state(~crc, data, len);
}

#if defined(CRC32C_HAVE_X86)

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw_state(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;

    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        c64 = _mm_crc32_u64(c64, v);
    }
    c = (uint32_t)c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}

uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t len)
{
    if (!len)
        return crc;
    return ~crc32c_hw_state(~crc, data, len);
}

/* State c advanced over n zero bytes, where k = x^(8n-33) mod P. */
__attribute__((target("sse4.2,pclmul")))
static inline uint32_t crc32c_shift(uint32_t c, uint32_t k)
{
    __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)c), _mm_cvtsi32_si128((int)k), 0);

    return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(prod));
}

/* Three streams over [p, p+3*blk); the result is the state after all of it. */
#define CRC32C_3WAY(c, p, blk, k1, k2)                                       \
    do {                                                                     \
        uint64_t a_ = (c), b_ = 0, d_ = 0;                                   \
        for (size_t i_ = 0; i_ < (blk); i_ += 8) {                           \
            uint64_t va_, vb_, vd_;                                          \
            memcpy(&va_, (p) + i_, 8);                                       \
            memcpy(&vb_, (p) + (blk) + i_, 8);                               \
            memcpy(&vd_, (p) + 2 * (blk) + i_, 8);                           \
            a_ = _mm_crc32_u64(a_, va_);                                     \
            b_ = _mm_crc32_u64(b_, vb_);                                     \
            d_ = _mm_crc32_u64(d_, vd_);                                     \
        }                                                                    \
        (c) = crc32c_shift((uint32_t)a_, (k2)) ^                             \
              crc32c_shift((uint32_t)b_, (k1)) ^ (uint32_t)d_;               \
    } while (0)

__attribute__((target("sse4.2,pclmul")))
static uint32_t crc32c_hw3_state(uint32_t c, const uint8_t *p, size_t n)
{
    for (; n >= 3 * CRC32C_LONG; p += 3 * CRC32C_LONG, n -= 3 * CRC32C_LONG)
        CRC32C_3WAY(c, p, CRC32C_LONG, CRC32C_LONG_K1, CRC32C_LONG_K2);
    for (; n >= 3 * CRC32C_SHORT; p += 3 * CRC32C_SHORT, n -= 3 * CRC32C_SHORT)
        CRC32C_3WAY(c, p, CRC32C_SHORT, CRC32C_SHORT_K1, CRC32C_SHORT_K2);
    return crc32c_hw_state(c, p, n);
}

uint32_t crc32c_sse42_pclmul(uint32_t crc, const void *data, size_t len)
{
    if (!len)
        return crc;
    return ~crc32c_hw3_state(~crc, data, len);
}

#endif /* CRC32C_HAVE_X86 */

uint32_t codec_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(CRC32C_HAVE_X86)
    unsigned f = codec_cpu_features();

    if ((f & (CODEC_CPU_SSE42 | CODEC_CPU_PCLMUL)) == (CODEC_CPU_SSE42 | CODEC_CPU_PCLMUL))
        return crc32c_sse42_pclmul(crc, data, len);
    if (f & CODEC_CPU_SSE42)
        return crc32c_sse42(crc, data, len);
#endif
    return crc32c_portable(crc, data, len);
}
