/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Sequential reader of a .tar.gz that records the random-access checkpoints
 * (nydus ZranInflateContext, docs §2.6) needed to re-read any chunk of the
 * decompressed tar later from the original gzip bytes, in the manner of
 * zlib's examples/zran.c:
 *
 *   inflate with Z_BLOCK; at every deflate block boundary remember the input
 *   offset, the pending bits of the last input byte (ctx_bits / ctx_byte for
 *   inflatePrime) and the 32 KiB window (inflateGetDictionary).
 *
 * Chunks are bracketed by mk_zran_begin_chunk() / mk_zran_end_chunk() around
 * the mk_zran_read() of their bytes. A chunk joins the current context unless
 * that context already spans MK_ZRAN_SPAN_IN bytes of gzip input, or would
 * span more than MK_ZRAN_SPAN_OUT bytes of output with this chunk, or a new
 * gzip member began; then a new context starts at the last block boundary
 * before the chunk (if there is one after the current context's start).
 * These are nydus's ZranContextGenerator limits (new slice after 512 KiB of
 * compressed input, at most 2 MiB of output), so the daemon inflates at most
 * about that much to serve one chunk, except inside one huge deflate block
 * (long zero runs), where no earlier checkpoint exists.
 *
 * Offsets: in_offset is absolute in the .tar.gz file (gzip header included);
 * out_offset is the offset in the decompressed tar. A context starts inside
 * one gzip member; a chunk whose bytes run on into the next members (bgzip
 * output, concatenated .gz files) keeps its context, which then spans them:
 * the daemon, like nydus's ZranDecoder, skips each member's trailer and the
 * next one's header.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blob_writer.h"

#define MK_ZRAN_SPAN_IN (512u << 10)
#define MK_ZRAN_SPAN_OUT (2u << 20)

typedef struct MkZran MkZran;

/* Start reading the gzip file `fd` (kept open by the caller); `name` is for messages. */
int mk_zran_new(MkZran **ret, int fd, const char *name);
MkZran *mk_zran_free(MkZran *z);
static inline void mk_zran_freep(MkZran **z) { mk_zran_free(*z); }

/* Read up to `len` bytes of the decompressed stream; fewer only at its end. -errno on error. */
ssize_t mk_zran_read(MkZran *z, void *buf, size_t len);

/* Bracket the read of one chunk of `len` bytes. end_chunk commits the context. */
int mk_zran_begin_chunk(MkZran *z, uint32_t len);
int mk_zran_end_chunk(MkZran *z, MkRefChunk *out);

/*
 * Read the rest of the file (validating the gzip trailers), then return the
 * file size, its sha256 as hex (the blob id) and the serialized contexts
 * (ZranInflateContext[count] then the dictionaries; malloc'd).
 */
int mk_zran_finish(MkZran *z, uint64_t *size, char id[MK_BLOB_ID_LEN + 1], uint8_t **ctx,
                   size_t *ctx_len, uint32_t *count);
