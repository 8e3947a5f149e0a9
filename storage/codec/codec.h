/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Decompression and digests for blob chunks. A CodecCtx holds the reusable
 * per-thread state (zstd/zlib contexts, digest contexts): create one per
 * worker and never share it between threads. All foreign error codes
 * (ZSTD_isError, LZ4 negatives, Z_* codes) stop here and become -errno.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage/device/blob.h"

typedef struct CodecCtx CodecCtx;

int codec_ctx_new(CodecCtx **ret);
CodecCtx *codec_ctx_free(CodecCtx *ctx);

/*
 * Decompress `src` into exactly `dst_len` bytes. Returns 0, or -EBADMSG when
 * the input is corrupt or does not produce exactly dst_len bytes, -ENOTSUP
 * for an unknown compressor. BLOB_COMP_NONE copies (src_len must equal dst_len).
 *
 *   lz4_block  a raw LZ4 block that must decode to dst_len bytes and be
 *              consumed completely; a zero match offset (corrupt by the
 *              format, decoded anyway by liblz4) is refused
 *   zstd       one or more zstd frames (skippable frames allowed, as
 *              libzstd does); a frame whose header declares a content size
 *              is rejected unless the sizes add up to dst_len, and the
 *              checksum is verified when present
 *   gzip       exactly one gzip member producing dst_len bytes, nothing
 *              after it; the CRC32 and ISIZE trailer are verified
 *              (see codec_gunzip_prefix() for legacy stargz chunks)
 */
int codec_decompress(CodecCtx *ctx, enum blob_compressor c, const void *src, size_t src_len,
                     void *dst, size_t dst_len);

/*
 * Worst-case compressed size of `len` bytes, for sizing the output buffer;
 * 0 when the compressor is unknown or cannot take `len` bytes at all.
 */
size_t codec_compress_bound(enum blob_compressor c, size_t len);
/*
 * Compress; returns the compressed size or -errno: -ENOSPC when cap is too
 * small, -EINVAL for a bad level, -E2BIG when len is beyond the format,
 * -ENOTSUP for an unknown compressor. level 0 = library default (zstd 3,
 * gzip 6, lz4 fast); lz4 levels > 0 use LZ4 HC, which writes the same raw
 * block format. The output is what nydus writes: a raw LZ4 block, one zstd
 * frame with the content size, one gzip member. Like nydus, callers should
 * keep the raw bytes when the result is not smaller than len.
 */
ssize_t codec_compress(enum blob_compressor c, int level, const void *src, size_t len,
                       void *dst, size_t cap);

/*
 * Digest of `len` bytes into out (32 bytes for blake3 and sha256). -ENOTSUP
 * for BLOB_DIGEST_NONE or an unknown digester, -EIO if OpenSSL fails.
 */
int codec_digest(CodecCtx *ctx, enum blob_digester d, const void *data, size_t len,
                 uint8_t out[BLOB_DIGEST_SIZE]);

/* CRC32C (Castagnoli), the nydus chunk crc. Start with crc = 0. */
uint32_t codec_crc32c(uint32_t crc, const void *data, size_t len);

/*
 * Legacy stargz chunks: their compressed size is only an estimate, and the
 * gzip member may run on past the chunk (into the next tar header). Yields
 * exactly the first dst_len bytes of the gzip stream at src, ignoring
 * whatever follows. The member's CRC is not reached, so the caller must
 * verify the chunk digest. -EBADMSG if the stream is corrupt or ends (or
 * src runs out) before dst_len bytes.
 */
int codec_gunzip_prefix(CodecCtx *ctx, const void *src, size_t src_len, void *dst, size_t dst_len);

/* Size of a ZRan window (deflate's maximum distance). */
#define CODEC_ZRAN_WINDOW_MAX 32768u

/*
 * Random access into a gzip'd tar for nydus ZRan chunks (targz-ref images).
 * A ZranInflateContext marks a deflate block boundary inside the original
 * stream: decoding resumes there as raw deflate (no gzip header or trailer)
 * given the state at that point:
 *   window, window_len   the output preceding the boundary (its dictionary,
 *                        at most CODEC_ZRAN_WINDOW_MAX bytes, may be empty)
 *   bits, prime_byte     ctx_bits and ctx_byte: the boundary fell `bits`
 *                        (0..7) bits before the end of the byte preceding src,
 *                        and those bits are the high bits of prime_byte
 *   src, src_len         the compressed bytes from the context's in_offset
 *                        (normally in_len of them)
 * It discards the first `skip` bytes of output (a chunk's ctx_offset inside
 * the context) and writes exactly the next dst_len bytes to dst; the stream
 * may go on afterwards. Returns 0, -EINVAL for bits > 7 (nydus writes 0-7)
 * or an oversized window, -EBADMSG if the data is corrupt or ends before
 * skip + dst_len bytes, -ENOMEM. When a gzip member ends before that, its
 * trailer and the next member's header are skipped and inflate goes on in
 * that member (nydus does the same: concatenated .gz files, bgzip). No check
 * value is verified: verify the
 * chunk digest. The work is bounded by skip + dst_len bytes of output, so
 * check ctx_offset + size against the context's out_len before calling.
 */
int codec_inflate_zran(CodecCtx *ctx, const void *window, size_t window_len, unsigned bits,
                       uint8_t prime_byte, const void *src, size_t src_len, size_t skip,
                       void *dst, size_t dst_len);
