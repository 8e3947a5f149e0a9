/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Chunk decompression and digests. Every input is treated as hostile: sizes
 * come from an image or the network, so each decoder is bounded by dst_len
 * and must land on exactly dst_len bytes. Library error codes are turned
 * into -errno here and go no further.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lz4hc.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "blake3.h"
#include "codec.h"

/* zlib counts in uInt; feed it pieces no larger than this. */
#define ZLIB_PIECE ((size_t)1 << 30)

/* inflateInit2's windowBits: 15-bit window, +16 for the gzip wrapper, negative for raw. */
#define WBITS_GZIP (16 + 15)
#define WBITS_RAW (-15)

struct CodecCtx {
    ZSTD_DCtx *zstd;
    z_stream z;
    bool z_ready;
    EVP_MD_CTX *md;
    EVP_MD *sha256_fetched;     /* OpenSSL 3: fetched once instead of per digest */
    const EVP_MD *sha256;
    /* Sink for the output a ZRan decode skips over. */
    uint8_t scratch[16384];
};

CodecCtx *codec_ctx_free(CodecCtx *ctx)
{
    if (!ctx)
        return NULL;
    ZSTD_freeDCtx(ctx->zstd);
    if (ctx->z_ready)
        inflateEnd(&ctx->z);
    EVP_MD_CTX_free(ctx->md);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD_free(ctx->sha256_fetched);
#endif
    free(ctx);
    return NULL;
}

int codec_ctx_new(CodecCtx **ret)
{
    CodecCtx *ctx = calloc(1, sizeof(*ctx));

    if (!ctx)
        return -ENOMEM;

    ctx->zstd = ZSTD_createDCtx();
    if (!ctx->zstd)
        goto nomem;

    /* zalloc/zfree/opaque are zero from calloc: zlib's defaults. */
    if (inflateInit2(&ctx->z, WBITS_GZIP) != Z_OK)
        goto nomem;
    ctx->z_ready = true;

    ctx->md = EVP_MD_CTX_new();
    if (!ctx->md)
        goto nomem;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    ctx->sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    ctx->sha256 = ctx->sha256_fetched;
#endif
    if (!ctx->sha256)
        ctx->sha256 = EVP_sha256();
    if (!ctx->sha256)
        goto nomem;

    *ret = ctx;
    return 0;

nomem:
    codec_ctx_free(ctx);
    return -ENOMEM;
}

/* ---- zstd ---------------------------------------------------------------- */

/*
 * Sum of the content sizes the frame headers declare. -EBADMSG for a
 * malformed or truncated frame, or when the declared sizes already exceed
 * dst_len; *unknown when a frame does not declare its size.
 */
static int zstd_declared_size(const uint8_t *p, size_t left, size_t dst_len, size_t *total,
                              bool *unknown)
{
    *total = 0;
    *unknown = false;
    while (left > 0) {
        size_t fsz = ZSTD_findFrameCompressedSize(p, left);
        unsigned long long cs;

        if (ZSTD_isError(fsz) || fsz == 0 || fsz > left)
            return -EBADMSG;
        cs = ZSTD_getFrameContentSize(p, left);     /* 0 for skippable frames */
        if (cs == ZSTD_CONTENTSIZE_ERROR)
            return -EBADMSG;
        if (cs == ZSTD_CONTENTSIZE_UNKNOWN)
            *unknown = true;
        else if (cs > dst_len - *total)
            return -EBADMSG;
        else
            *total += (size_t)cs;
        p += fsz;
        left -= fsz;
    }
    return 0;
}

static int unzstd(CodecCtx *ctx, const void *src, size_t src_len, void *dst, size_t dst_len)
{
    uint8_t dummy;
    size_t declared, r;
    bool unknown;
    int ret;

    /* libzstd takes empty input as zero frames; a chunk is at least one frame. */
    if (src_len == 0)
        return -EBADMSG;
    /* A wrong declared size is rejected before any decoding work. */
    ret = zstd_declared_size(src, src_len, dst_len, &declared, &unknown);
    if (ret < 0)
        return ret;
    if (!unknown && declared != dst_len)
        return -EBADMSG;

    r = ZSTD_decompressDCtx(ctx->zstd, dst_len ? dst : &dummy, dst_len, src, src_len);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return -ENOMEM;
        return -EBADMSG;
    }
    return r == dst_len ? 0 : -EBADMSG;
}

/* ---- lz4 ----------------------------------------------------------------- */

/*
 * The block format calls a zero match offset corrupt, but liblz4 1.9.x
 * decodes it (as zeros, or by copying not-yet-written dst bytes in other
 * versions). Walk the sequences once and refuse it; this also requires the
 * block to end with a literals-only sequence, as the format does.
 */
static bool lz4_sequences_valid(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;

    while (p < end) {
        unsigned token = *p++;
        size_t lit = token >> 4;
        uint8_t b;

        if (lit == 15) {
            do {
                if (p == end)
                    return false;
                b = *p++;
                lit += b;
            } while (b == 255);
        }
        if (lit > (size_t)(end - p))
            return false;
        p += lit;
        if (p == end)
            return true;
        if (end - p < 2 || (p[0] | p[1]) == 0)
            return false;
        p += 2;
        if ((token & 15) == 15) {
            do {
                if (p == end)
                    return false;
                b = *p++;
            } while (b == 255);
        }
    }
    return false;
}

static int unlz4(const void *src, size_t src_len, void *dst, size_t dst_len)
{
    char dummy;
    int r;

    if (src_len > INT_MAX || dst_len > INT_MAX)
        return -EBADMSG;
    if (!lz4_sequences_valid(src, src_len))
        return -EBADMSG;
    /* The safe decoder never writes past dst_len and fails on trailing input. */
    r = LZ4_decompress_safe(src_len ? src : &dummy, dst_len ? dst : &dummy, (int)src_len, (int)dst_len);
    if (r < 0 || (size_t)r != dst_len)
        return -EBADMSG;
    return 0;
}

/* ---- zlib (gzip, raw) ---------------------------------------------------- */

/* Input and output left beyond what is currently loaded into the z_stream. */
typedef struct ZPieces {
    const uint8_t *in;
    size_t in_left;
    uint8_t *out;
    size_t out_left;
} ZPieces;

static void zpieces_load(z_stream *z, ZPieces *p)
{
    if (z->avail_in == 0 && p->in_left > 0) {
        size_t n = p->in_left < ZLIB_PIECE ? p->in_left : ZLIB_PIECE;

        z->next_in = (Bytef *)p->in;
        z->avail_in = (uInt)n;
        p->in += n;
        p->in_left -= n;
    }
    if (z->avail_out == 0 && p->out_left > 0) {
        size_t n = p->out_left < ZLIB_PIECE ? p->out_left : ZLIB_PIECE;

        z->next_out = p->out;
        z->avail_out = (uInt)n;
        p->out += n;
        p->out_left -= n;
    }
}

static int zlib_err(int zr)
{
    return zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
}

/*
 * Inflate into [out, out+out_len) until it is full or the stream ends.
 * Returns 1 on stream end, 0 when the output filled first, or -errno.
 * *produced tells how much was written either way.
 */
static int inflate_into(z_stream *z, ZPieces *p, uint8_t *out, size_t out_len, size_t *produced)
{
    uint8_t dummy;
    int zr;

    /* zlib refuses a NULL next_out even with no room, so point it somewhere. */
    z->next_out = out_len ? out : &dummy;
    z->avail_out = 0;
    p->out = out;
    p->out_left = out_len;
    *produced = 0;

    for (;;) {
        zpieces_load(z, p);
        uInt before = z->avail_out;

        zr = inflate(z, Z_NO_FLUSH);
        *produced += before - z->avail_out;
        if (zr == Z_STREAM_END)
            return 1;
        if (zr == Z_OK) {
            if (z->avail_out == 0 && p->out_left == 0)
                return 0;
            continue;
        }
        if (zr == Z_BUF_ERROR) {
            /* No progress: out of room (done) or out of input (truncated). */
            if (z->avail_out == 0 && p->out_left == 0)
                return 0;
            return -EBADMSG;
        }
        /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR, Z_MEM_ERROR */
        return zlib_err(zr);
    }
}

static int gunzip(CodecCtx *ctx, const void *src, size_t src_len, void *dst, size_t dst_len,
                  bool prefix)
{
    z_stream *z = &ctx->z;
    ZPieces p = { .in = src, .in_left = src_len };
    size_t produced;
    int r;

    if (inflateReset2(z, WBITS_GZIP) != Z_OK)
        return -EBADMSG;
    z->next_in = NULL;
    z->avail_in = 0;

    r = inflate_into(z, &p, dst, dst_len, &produced);
    if (r < 0)
        return r;
    if (produced != dst_len)
        return -EBADMSG;            /* the member ended early */
    if (prefix)
        return 0;

    if (r == 0) {
        /* Output is full; the member must end right here, trailer included. */
        uint8_t extra;

        r = inflate_into(z, &p, &extra, 1, &produced);
        if (r < 0)
            return r;
        if (r != 1 || produced != 0)
            return -EBADMSG;        /* more data than dst_len, or no end */
    }
    /* One member, nothing after it. */
    if (z->avail_in != 0 || p.in_left != 0)
        return -EBADMSG;
    return 0;
}

int codec_gunzip_prefix(CodecCtx *ctx, const void *src, size_t src_len, void *dst, size_t dst_len)
{
    return gunzip(ctx, src, src_len, dst, dst_len, true);
}

/* Drop the next n input bytes; -EBADMSG if the input ends first. */
static int skip_input(z_stream *z, ZPieces *p, size_t n)
{
    while (n) {
        zpieces_load(z, p);
        if (z->avail_in == 0)
            return -EBADMSG;
        uInt k = (uInt)(z->avail_in < n ? z->avail_in : n);
        z->next_in += k;
        z->avail_in -= k;
        n -= k;
    }
    return 0;
}

/*
 * Raw inflate stopped at the end of a gzip member's last block: skip the
 * member's 8-byte trailer and the next member's header, and resume raw
 * inflate at its first block (what nydus's ZranDecoder does: concatenated
 * .gz files, bgzip). The new member starts with an empty window.
 */
static int next_gzip_member(z_stream *z, ZPieces *p)
{
    uint8_t discard[64];
    int r = skip_input(z, p, 8);
    if (r < 0)
        return r;
    if (inflateReset2(z, WBITS_GZIP) != Z_OK)
        return -EBADMSG;
    p->out_left = 0;        /* no output while the header is parsed */
    for (;;) {
        zpieces_load(z, p);
        if (z->avail_in == 0)
            return -EBADMSG;            /* no next member */
        z->next_out = discard;
        z->avail_out = sizeof(discard);
        int zr = inflate(z, Z_BLOCK);   /* stops at the end of the header */
        if (z->avail_out != sizeof(discard))
            return -EBADMSG;
        if (zr == Z_OK && (z->data_type & 128))
            break;
        if (zr != Z_OK && !(zr == Z_BUF_ERROR && z->avail_in == 0))
            return zlib_err(zr);
    }
    return inflateReset2(z, WBITS_RAW) == Z_OK ? 0 : -EBADMSG;
}

/* inflate_into() for zran contexts: continues across gzip members until out is full. */
static int zran_inflate_into(z_stream *z, ZPieces *p, uint8_t *out, size_t out_len, size_t *produced)
{
    *produced = 0;
    for (;;) {
        size_t got;
        int r = inflate_into(z, p, out + *produced, out_len - *produced, &got);
        *produced += got;
        if (r < 0 || *produced == out_len)
            return r < 0 ? r : 0;
        if (r == 0)
            return -EBADMSG;
        if ((r = next_gzip_member(z, p)) < 0)
            return r;
    }
}

int codec_inflate_zran(CodecCtx *ctx, const void *window, size_t window_len, unsigned bits,
                       uint8_t prime_byte, const void *src, size_t src_len, size_t skip,
                       void *dst, size_t dst_len)
{
    z_stream *z = &ctx->z;
    ZPieces p = { .in = src, .in_left = src_len };
    size_t produced;
    int r;

    if (bits > 7 || window_len > CODEC_ZRAN_WINDOW_MAX || (window_len && !window))
        return -EINVAL;
    if (inflateReset2(z, WBITS_RAW) != Z_OK)
        return -EBADMSG;
    z->next_in = NULL;
    z->avail_in = 0;

    /* The unused bits are the high ones: deflate consumes each byte from bit 0 up. */
    if (bits && inflatePrime(z, (int)bits, prime_byte >> (8 - bits)) != Z_OK)
        return -EBADMSG;
    if (window_len && inflateSetDictionary(z, window, (uInt)window_len) != Z_OK)
        return -EBADMSG;

    /* zlib keeps its own 32 KiB history, so skipped output can go to a sink. */
    while (skip > 0) {
        size_t n = skip < sizeof(ctx->scratch) ? skip : sizeof(ctx->scratch);

        r = zran_inflate_into(z, &p, ctx->scratch, n, &produced);
        if (r < 0)
            return r;
        skip -= n;
    }

    r = zran_inflate_into(z, &p, dst, dst_len, &produced);
    if (r < 0)
        return r;
    return produced == dst_len ? 0 : -EBADMSG;
}

/* ---- dispatch ------------------------------------------------------------ */

int codec_decompress(CodecCtx *ctx, enum blob_compressor c, const void *src, size_t src_len,
                     void *dst, size_t dst_len)
{
    switch (c) {
    case BLOB_COMP_NONE:
        if (src_len != dst_len)
            return -EBADMSG;
        if (dst_len && dst != src)
            memcpy(dst, src, dst_len);
        return 0;
    case BLOB_COMP_LZ4_BLOCK:
        return unlz4(src, src_len, dst, dst_len);
    case BLOB_COMP_GZIP:
        return gunzip(ctx, src, src_len, dst, dst_len, false);
    case BLOB_COMP_ZSTD:
        return unzstd(ctx, src, src_len, dst, dst_len);
    }
    return -ENOTSUP;
}

/* ---- compression (image builder) ----------------------------------------- */

size_t codec_compress_bound(enum blob_compressor c, size_t len)
{
    size_t b;

    switch (c) {
    case BLOB_COMP_NONE:
        return len;
    case BLOB_COMP_LZ4_BLOCK:
        if (len > LZ4_MAX_INPUT_SIZE)
            return 0;
        return (size_t)LZ4_compressBound((int)len);
    case BLOB_COMP_GZIP:
        /* zlib's bound for its 6-byte wrapper; gzip's header and trailer take 18. */
        if (len > SIZE_MAX / 2)
            return 0;
        b = (size_t)compressBound((uLong)len);
        return b + (18 - 6);
    case BLOB_COMP_ZSTD:
        b = ZSTD_compressBound(len);
        return ZSTD_isError(b) ? 0 : b;
    }
    return 0;
}

static ssize_t gzip_compress(int level, const void *src, size_t len, void *dst, size_t cap)
{
    z_stream z = { 0 };
    ZPieces p = { .in = src, .in_left = len, .out = dst, .out_left = cap };
    ssize_t ret;
    int zr;

    if (level == 0)
        level = Z_DEFAULT_COMPRESSION;
    else if (level < 1 || level > 9)
        return -EINVAL;
    zr = deflateInit2(&z, level, Z_DEFLATED, WBITS_GZIP, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;

    for (;;) {
        zpieces_load(&z, &p);
        if (z.avail_out == 0) {
            ret = -ENOSPC;
            break;
        }
        zr = deflate(&z, p.in_left ? Z_NO_FLUSH : Z_FINISH);
        if (zr == Z_STREAM_END) {
            ret = (ssize_t)(cap - p.out_left - z.avail_out);
            break;
        }
        /* With room and input loaded every call makes progress; anything else is fatal. */
        if (zr != Z_OK) {
            ret = zr == Z_MEM_ERROR ? -ENOMEM : -EIO;
            break;
        }
    }
    deflateEnd(&z);
    return ret;
}

ssize_t codec_compress(enum blob_compressor c, int level, const void *src, size_t len,
                       void *dst, size_t cap)
{
    static const char empty;
    size_t r;
    int n;

    if (!len)
        src = &empty;
    if (len > SSIZE_MAX)
        return -E2BIG;

    switch (c) {
    case BLOB_COMP_NONE:
        if (cap < len)
            return -ENOSPC;
        if (len)
            memcpy(dst, src, len);
        return (ssize_t)len;

    case BLOB_COMP_LZ4_BLOCK:
        if (len > LZ4_MAX_INPUT_SIZE)
            return -E2BIG;
        if (level < 0 || level > LZ4HC_CLEVEL_MAX)
            return -EINVAL;
        if (cap > INT_MAX)
            cap = INT_MAX;
        if (level == 0)
            n = LZ4_compress_default(src, dst, (int)len, (int)cap);
        else
            n = LZ4_compress_HC(src, dst, (int)len, (int)cap, level);
        /* LZ4 reports every failure as 0; with valid sizes only room can be short. */
        return n > 0 ? n : -ENOSPC;

    case BLOB_COMP_GZIP:
        return gzip_compress(level, src, len, dst, cap);

    case BLOB_COMP_ZSTD:
        if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
            return -EINVAL;
        /* ZSTD_compress writes the content size into the frame, as nydus does. */
        r = ZSTD_compress(dst, cap, src, len, level ? level : ZSTD_CLEVEL_DEFAULT);
        if (!ZSTD_isError(r))
            return (ssize_t)r;
        switch (ZSTD_getErrorCode(r)) {
        case ZSTD_error_dstSize_tooSmall: return -ENOSPC;
        case ZSTD_error_memory_allocation: return -ENOMEM;
        case ZSTD_error_srcSize_wrong: return -E2BIG;
        default: return -EIO;
        }
    }
    return -ENOTSUP;
}

/* ---- digests ------------------------------------------------------------- */

static int sha256(CodecCtx *ctx, const void *data, size_t len, uint8_t out[BLOB_DIGEST_SIZE])
{
    unsigned int n = 0;

    if (EVP_DigestInit_ex(ctx->md, ctx->sha256, NULL) != 1 ||
        EVP_DigestUpdate(ctx->md, data, len) != 1 ||
        EVP_DigestFinal_ex(ctx->md, out, &n) != 1 || n != BLOB_DIGEST_SIZE)
        return -EIO;
    return 0;
}

int codec_digest(CodecCtx *ctx, enum blob_digester d, const void *data, size_t len,
                 uint8_t out[BLOB_DIGEST_SIZE])
{
    switch (d) {
    case BLOB_DIGEST_BLAKE3:
        blake3_hash(data, len, out);
        return 0;
    case BLOB_DIGEST_SHA256:
        return sha256(ctx, data, len, out);
    case BLOB_DIGEST_NONE:
        break;
    }
    return -ENOTSUP;
}
