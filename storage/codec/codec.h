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
 */
int codec_decompress(CodecCtx *ctx, enum blob_compressor c, const void *src, size_t src_len,
                     void *dst, size_t dst_len);

/* Worst-case compressed size of `len` bytes, for sizing the output buffer. */
size_t codec_compress_bound(enum blob_compressor c, size_t len);
/* Compress; returns the compressed size or -errno. level 0 = library default. */
ssize_t codec_compress(enum blob_compressor c, int level, const void *src, size_t len,
                       void *dst, size_t cap);

/* Digest of `len` bytes into out (32 bytes for blake3 and sha256). */
int codec_digest(CodecCtx *ctx, enum blob_digester d, const void *data, size_t len,
                 uint8_t out[BLOB_DIGEST_SIZE]);

/* CRC32C (Castagnoli), the nydus chunk crc. Start with crc = 0. */
uint32_t codec_crc32c(uint32_t crc, const void *data, size_t len);
