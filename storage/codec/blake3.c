/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * BLAKE3 hash mode: the portable compression function, the chunk state and
 * the chaining-value stack that builds the binary tree over 1 KiB chunks.
 *
 * Tree rule used here: a chunk's chaining value is pushed as soon as the
 * chunk is known not to be the last one; whenever the number of completed
 * chunks is even, the top two subtrees are merged into a parent first. The
 * last chunk therefore always stays in the chunk state, so finalize can give
 * the root node its ROOT flag.
 */
#include <errno.h>
#include <string.h>

#include "blake3-impl.h"
#include "cpu.h"

const uint32_t blake3_iv[8] = {
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
};

static inline uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store32(uint8_t *p, uint32_t w)
{
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

static inline uint32_t rotr32(uint32_t w, unsigned c)
{
    return (w >> c) | (w << (32 - c));
}

#define G(a, b, c, d, x, y)                 \
    do {                                    \
        a = a + b + (x);                    \
        d = rotr32(d ^ a, 16);              \
        c = c + d;                          \
        b = rotr32(b ^ c, 12);              \
        a = a + b + (y);                    \
        d = rotr32(d ^ a, 8);               \
        c = c + d;                          \
        b = rotr32(b ^ c, 7);               \
    } while (0)

/*
 * One round; the arguments are the message word order for that round (the
 * spec's permutation applied r times), spelled out so every index is a
 * compile-time constant and the message stays in registers.
 */
#define ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15) \
    do {                                                                           \
        G(v0, v4, v8, v12, m[s0], m[s1]);                                          \
        G(v1, v5, v9, v13, m[s2], m[s3]);                                          \
        G(v2, v6, v10, v14, m[s4], m[s5]);                                         \
        G(v3, v7, v11, v15, m[s6], m[s7]);                                         \
        G(v0, v5, v10, v15, m[s8], m[s9]);                                         \
        G(v1, v6, v11, v12, m[s10], m[s11]);                                       \
        G(v2, v7, v8, v13, m[s12], m[s13]);                                        \
        G(v3, v4, v9, v14, m[s14], m[s15]);                                        \
    } while (0)

/* The full 16-word output: words 0-7 are the next chaining value. */
static void compress_portable(uint32_t out[16], const uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                     uint32_t block_len, uint64_t counter, uint32_t flags)
{
    uint32_t m[16];

    for (int i = 0; i < 16; i++)
        m[i] = load32(block + 4 * i);

    uint32_t v0 = cv[0], v1 = cv[1], v2 = cv[2], v3 = cv[3];
    uint32_t v4 = cv[4], v5 = cv[5], v6 = cv[6], v7 = cv[7];
    uint32_t v8 = blake3_iv[0], v9 = blake3_iv[1], v10 = blake3_iv[2], v11 = blake3_iv[3];
    uint32_t v12 = (uint32_t)counter, v13 = (uint32_t)(counter >> 32), v14 = block_len, v15 = flags;

    ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    ROUND(2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8);
    ROUND(3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1);
    ROUND(10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6);
    ROUND(12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4);
    ROUND(9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7);
    ROUND(11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13);

    out[0] = v0 ^ v8;   out[8] = v8 ^ cv[0];
    out[1] = v1 ^ v9;   out[9] = v9 ^ cv[1];
    out[2] = v2 ^ v10;  out[10] = v10 ^ cv[2];
    out[3] = v3 ^ v11;  out[11] = v11 ^ cv[3];
    out[4] = v4 ^ v12;  out[12] = v12 ^ cv[4];
    out[5] = v5 ^ v13;  out[13] = v13 ^ cv[5];
    out[6] = v6 ^ v14;  out[14] = v14 ^ cv[6];
    out[7] = v7 ^ v15;  out[15] = v15 ^ cv[7];
}

static void compress(uint8_t impl, uint32_t out[16], const uint32_t cv[8],
                     const uint8_t block[BLAKE3_BLOCK_LEN], uint32_t block_len, uint64_t counter,
                     uint32_t flags)
{
#if defined(BLAKE3_HAVE_X86)
    if (impl >= BLAKE3_IMPL_SSE41) {
        blake3_compress_sse41(out, cv, block, block_len, counter, flags);
        return;
    }
#endif
    (void)impl;
    compress_portable(out, cv, block, block_len, counter, flags);
}

/* cv = first half of compress(); in-place use (cv aliasing out) is fine. */
static void compress_cv(uint8_t impl, uint32_t cv[8], const uint8_t block[BLAKE3_BLOCK_LEN],
                        uint32_t block_len, uint64_t counter, uint32_t flags)
{
    uint32_t full[16];

    compress(impl, full, cv, block, block_len, counter, flags);
    memcpy(cv, full, 8 * sizeof(uint32_t));
}

/* A node whose output is not yet needed: it becomes a CV or the root. */
typedef struct Output {
    uint32_t cv[8];
    uint8_t block[BLAKE3_BLOCK_LEN];
    uint64_t counter;
    uint8_t block_len;
    uint8_t flags;
    uint8_t impl;
} Output;

static void output_cv(const Output *o, uint32_t cv[8])
{
    memcpy(cv, o->cv, sizeof(o->cv));
    compress_cv(o->impl, cv, o->block, o->block_len, o->counter, o->flags);
}

static void parent_output(Output *o, const uint32_t left[8], const uint32_t right[8],
                          const uint32_t key[8], uint8_t flags, uint8_t impl)
{
    memcpy(o->cv, key, sizeof(o->cv));
    for (int i = 0; i < 8; i++) {
        store32(o->block + 4 * i, left[i]);
        store32(o->block + 32 + 4 * i, right[i]);
    }
    o->counter = 0;
    o->block_len = BLAKE3_BLOCK_LEN;
    o->flags = flags | B3_PARENT;
    o->impl = impl;
}

static void chunk_output(const Blake3Hasher *h, Output *o)
{
    memcpy(o->cv, h->cv, sizeof(o->cv));
    /* The final block is zero-padded; buf past buf_len may hold stale bytes. */
    memset(o->block, 0, sizeof(o->block));
    memcpy(o->block, h->buf, h->buf_len);
    o->counter = h->chunk_counter;
    o->block_len = h->buf_len;
    o->flags = h->flags | B3_CHUNK_END | (h->blocks_compressed == 0 ? B3_CHUNK_START : 0);
    o->impl = h->impl;
}

static inline size_t chunk_len(const Blake3Hasher *h)
{
    return (size_t)h->blocks_compressed * BLAKE3_BLOCK_LEN + h->buf_len;
}

static void chunk_reset(Blake3Hasher *h)
{
    memcpy(h->cv, h->key, sizeof(h->cv));
    h->buf_len = 0;
    h->blocks_compressed = 0;
}

/*
 * Push the root of the 2^level chunks that start at chunk_counter, after
 * merging it with every stacked subtree it completes a larger one with.
 */
static void push_subtree(Blake3Hasher *h, const uint32_t root[8], unsigned level)
{
    uint32_t cv[8];
    uint64_t t;

    memcpy(cv, root, sizeof(cv));
    h->chunk_counter += (uint64_t)1 << level;
    for (t = h->chunk_counter >> level; !(t & 1); t >>= 1) {
        Output o;

        parent_output(&o, h->cv_stack[--h->cv_stack_len], cv, h->key, h->flags, h->impl);
        output_cv(&o, cv);
    }
    memcpy(h->cv_stack[h->cv_stack_len++], cv, sizeof(cv));
}

/* One whole chunk straight from the input, never the root. */
static void hash_chunk(uint8_t impl, const uint8_t *in, const uint32_t key[8], uint64_t counter,
                       uint8_t flags, uint32_t cv[8])
{
    memcpy(cv, key, 8 * sizeof(uint32_t));
    for (int b = 0; b < BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN; b++) {
        uint32_t f = flags;

        if (b == 0)
            f |= B3_CHUNK_START;
        if (b == BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN - 1)
            f |= B3_CHUNK_END;
        compress_cv(impl, cv, in + b * BLAKE3_BLOCK_LEN, BLAKE3_BLOCK_LEN, counter, f);
    }
}

/* Chaining values of n whole chunks, the first numbered chunk_counter. */
static void hash_chunks(const Blake3Hasher *h, const uint8_t *in, size_t n, uint32_t cvs[][8])
{
    for (size_t i = 0; i < n;) {
        const uint8_t *p = in + i * BLAKE3_CHUNK_LEN;
        uint64_t counter = h->chunk_counter + i;

#if defined(BLAKE3_HAVE_X86)
        if (h->impl >= BLAKE3_IMPL_AVX2 && n - i >= 8) {
            blake3_hash8_avx2(p, BLAKE3_CHUNK_LEN, BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN, h->key, counter,
                              true, h->flags, B3_CHUNK_START, B3_CHUNK_END, &cvs[i]);
            i += 8;
            continue;
        }
        if (h->impl >= BLAKE3_IMPL_SSE41 && n - i >= 4) {
            blake3_hash4_sse41(p, BLAKE3_CHUNK_LEN, BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN, h->key, counter,
                               true, h->flags, B3_CHUNK_START, B3_CHUNK_END, &cvs[i]);
            i += 4;
            continue;
        }
#endif
        hash_chunk(h->impl, p, h->key, counter, h->flags, cvs[i]);
        i++;
    }
}

/* out[i] = parent(in[2i], in[2i+1]) for the n/2 pairs. */
static void hash_parents(const Blake3Hasher *h, uint32_t in[][8], size_t n, uint32_t out[][8])
{
    size_t pairs = n / 2;

    for (size_t i = 0; i < pairs;) {
#if defined(BLAKE3_HAVE_X86)
        /* A pair of adjacent CVs is exactly a parent's 64-byte block (x86 is LE). */
        const uint8_t *blocks = (const uint8_t *)in[2 * i];

        if (h->impl >= BLAKE3_IMPL_AVX2 && pairs - i >= 8) {
            blake3_hash8_avx2(blocks, BLAKE3_BLOCK_LEN, 1, h->key, 0, false, h->flags | B3_PARENT, 0, 0,
                              &out[i]);
            i += 8;
            continue;
        }
        if (h->impl >= BLAKE3_IMPL_SSE41 && pairs - i >= 4) {
            blake3_hash4_sse41(blocks, BLAKE3_BLOCK_LEN, 1, h->key, 0, false, h->flags | B3_PARENT, 0, 0,
                               &out[i]);
            i += 4;
            continue;
        }
#endif
        Output o;

        parent_output(&o, in[2 * i], in[2 * i + 1], h->key, h->flags, h->impl);
        output_cv(&o, out[i]);
        i++;
    }
}

/* Chunks hashed, then merged into one subtree, per step; a power of two. */
#define B3_BATCH_LOG 6

/*
 * n whole chunks at a chunk boundary, with input known to follow them. They
 * go in aligned power-of-two groups: every chunk and every parent inside a
 * group is independent of its neighbours, so all of them can use the wide
 * kernels, and the group's root then joins the stack like one big chunk.
 */
static void hash_whole_chunks(Blake3Hasher *h, const uint8_t *in, size_t n)
{
    uint32_t a[1 << B3_BATCH_LOG][8], b[1 << (B3_BATCH_LOG - 1)][8];

    while (n > 0) {
        unsigned level = B3_BATCH_LOG;
        size_t size = (size_t)1 << level;
        uint32_t (*src)[8] = a, (*dst)[8] = b, (*tmp)[8];

        while (size > n || (h->chunk_counter & (size - 1))) {
            level--;
            size >>= 1;
        }
        hash_chunks(h, in, size, a);
        for (size_t k = size; k > 1; k /= 2) {
            hash_parents(h, src, k, dst);
            tmp = src;
            src = dst;
            dst = tmp;
        }
        push_subtree(h, src[0], level);
        in += size * BLAKE3_CHUNK_LEN;
        n -= size;
    }
}

enum blake3_impl blake3_impl_best(void)
{
    unsigned f = codec_cpu_features();

#if defined(BLAKE3_HAVE_X86)
    if (f & CODEC_CPU_AVX2)
        return BLAKE3_IMPL_AVX2;
    if (f & CODEC_CPU_SSE41)
        return BLAKE3_IMPL_SSE41;
#endif
    (void)f;
    return BLAKE3_IMPL_PORTABLE;
}

const char *blake3_impl_name(enum blake3_impl impl)
{
    switch (impl) {
    case BLAKE3_IMPL_PORTABLE: return "portable";
    case BLAKE3_IMPL_SSE41: return "sse4.1";
    case BLAKE3_IMPL_AVX2: return "avx2";
    }
    return "unknown";
}

int blake3_hasher_init_impl(Blake3Hasher *h, enum blake3_impl impl)
{
    if ((unsigned)impl > (unsigned)blake3_impl_best())
        return -ENOTSUP;
    memcpy(h->key, blake3_iv, sizeof(h->key));
    h->chunk_counter = 0;
    h->flags = 0;
    h->impl = (uint8_t)impl;
    h->cv_stack_len = 0;
    chunk_reset(h);
    return 0;
}

void blake3_hasher_init(Blake3Hasher *h)
{
    (void)blake3_hasher_init_impl(h, blake3_impl_best());
}

void blake3_hasher_update(Blake3Hasher *h, const void *input, size_t len)
{
    const uint8_t *in = input;

    while (len > 0) {
        /* A full chunk with more input behind it is not the root: retire it. */
        if (chunk_len(h) == BLAKE3_CHUNK_LEN) {
            Output o;
            uint32_t cv[8];

            chunk_output(h, &o);
            output_cv(&o, cv);
            push_subtree(h, cv, 0);
            chunk_reset(h);
        }

        /* Whole chunks, keeping at least one byte back for the final chunk. */
        if (chunk_len(h) == 0 && len > BLAKE3_CHUNK_LEN) {
            size_t n = (len - 1) / BLAKE3_CHUNK_LEN;

            hash_whole_chunks(h, in, n);
            in += n * BLAKE3_CHUNK_LEN;
            len -= n * BLAKE3_CHUNK_LEN;
            continue;
        }

        if (h->buf_len == BLAKE3_BLOCK_LEN) {
            compress_cv(h->impl, h->cv, h->buf, BLAKE3_BLOCK_LEN, h->chunk_counter,
                        h->flags | (h->blocks_compressed == 0 ? B3_CHUNK_START : 0));
            h->blocks_compressed++;
            h->buf_len = 0;
        }

        /* Blocks that are neither the chunk's last nor the input's last skip the buffer. */
        while (h->buf_len == 0 && len > BLAKE3_BLOCK_LEN &&
               h->blocks_compressed < BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN - 1) {
            compress_cv(h->impl, h->cv, in, BLAKE3_BLOCK_LEN, h->chunk_counter,
                        h->flags | (h->blocks_compressed == 0 ? B3_CHUNK_START : 0));
            h->blocks_compressed++;
            in += BLAKE3_BLOCK_LEN;
            len -= BLAKE3_BLOCK_LEN;
        }

        size_t take = BLAKE3_BLOCK_LEN - h->buf_len;

        if (take > len)
            take = len;
        memcpy(h->buf + h->buf_len, in, take);
        h->buf_len += (uint8_t)take;
        in += take;
        len -= take;
    }
}

void blake3_hasher_finalize(const Blake3Hasher *h, uint8_t *out, size_t out_len)
{
    Output o;

    chunk_output(h, &o);
    for (size_t i = h->cv_stack_len; i-- > 0;) {
        uint32_t cv[8];

        output_cv(&o, cv);
        parent_output(&o, h->cv_stack[i], cv, h->key, h->flags, h->impl);
    }

    /* Extended output: the root node compressed again with counter 0, 1, 2, ... */
    for (uint64_t counter = 0; out_len > 0; counter++) {
        uint32_t words[16];
        uint8_t block[BLAKE3_BLOCK_LEN];
        size_t n = out_len < BLAKE3_BLOCK_LEN ? out_len : BLAKE3_BLOCK_LEN;

        compress(o.impl, words, o.cv, o.block, o.block_len, counter, o.flags | B3_ROOT);
        for (int i = 0; i < 16; i++)
            store32(block + 4 * i, words[i]);
        memcpy(out, block, n);
        out += n;
        out_len -= n;
    }
}

void blake3_hash(const void *input, size_t len, uint8_t out[BLAKE3_OUT_LEN])
{
    Blake3Hasher h;

    blake3_hasher_init(&h);
    blake3_hasher_update(&h, input, len);
    blake3_hasher_finalize(&h, out, BLAKE3_OUT_LEN);
}
