/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Blob TOC reader (docs §3): the table of contents at the tail of a data
 * blob, framed by reverse-tar headers. Needed only for `blob.digest` (chunk
 * digests) and `image.boot` (a bootstrap inlined in the blob); the ci table
 * is found from the bootstrap alone (blob_meta.h).
 *
 * WHAT TO FETCH, in order (data may come from a remote backend):
 *  1. toc_tail_range(): the last bytes of the blob. With a known
 *     blob_toc_size that is exactly the TOC, else the last
 *     min(4096, blob_size & ~127) bytes. `blob_size` is the object size
 *     (backend HEAD; RafsBlob.compressed_size when the blob has CAP_TAR_TOC).
 *  2. toc_parse() on exactly those bytes.
 *  3. toc_find() + toc_entry_range() for each entry wanted: one ranged read
 *     each, [compressed_offset, compressed_offset + compressed_size).
 *  4. toc_load_digests() / toc_extract_bootstrap() on those bytes.
 *
 * The TOC digest is checked against the bootstrap's blob_toc_digest whenever
 * that is non-zero (nydusd checks it only with a known size; the digest is
 * the same either way). Entry contents are checked against the sha256 each
 * entry records, when non-zero.
 *
 * If the tail holds no TOC but a reverse-tar `image.boot` header (inline
 * bootstrap without a TOC, docs §2.1 (d')), toc_parse() returns a synthetic
 * TOC with that single entry, as nydusd's extract_rafs_meta fallback does
 * (unless a TOC digest was expected: then the blob is not what the
 * bootstrap describes).
 *
 * Tar headers must carry a valid checksum (Go's archive/tar, used by the
 * snapshotter, requires it; nydusd does not check). Entry names must be
 * printable ASCII, NUL padded and unique; reserved bytes are ignored.
 *
 * Errors: -EBADMSG malformed (message names the field and blob offset),
 * -ENOENT entry missing, -ENOTSUP unsupported entry compression, -ENOMEM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/codec/codec.h"
#include "storage/device/blob.h"
#include "storage/device/rafs_bootstrap.h"
#include "uapi/rafs.h"

typedef struct TocEntry {
    char name[RAFS_TOC_NAME_LEN + 1];
    uint32_t flags;                     /* RAFS_TOC_COMPRESSION_* (exactly one) */
    enum blob_compressor compressor;    /* none, zstd or lz4_block */
    bool has_digest;                    /* false: the entry records all zero */
    uint8_t digest[32];                 /* sha256 of the uncompressed content */
    uint64_t compressed_offset;         /* in the blob */
    uint64_t compressed_size;
    uint64_t uncompressed_size;
} TocEntry;

typedef struct Toc {
    uint64_t offset;                    /* blob offset of the first entry */
    uint32_t size;                      /* entries + 512-byte tar header */
    uint8_t digest[32];                 /* sha256(entries || tar header) */
    bool synthetic;                     /* no TOC: built from a trailing image.boot header */
    uint32_t count;
    TocEntry *entries;
} Toc;

/* Step 1: the tail range to read. Validates blob_toc_size (512..64 KiB, multiple of 128). */
int toc_tail_range(const RafsBlob *rb, uint64_t blob_size, uint64_t *offset, uint64_t *len,
                   char *why, size_t why_len);

/*
 * Step 2: parse `len` bytes read at blob offset `offset` (the tail: offset +
 * len == blob size). `expect_digest` (32 bytes) or NULL: the TOC digest the
 * bootstrap records. `out` is cleared first; free with toc_clear().
 */
int toc_parse(CodecCtx *codec, const void *buf, size_t len, uint64_t offset, const uint8_t *expect_digest,
              Toc *out, char *why, size_t why_len);
void toc_clear(Toc *toc);

const TocEntry *toc_find(const Toc *toc, const char *name);

/* Step 3: the blob range holding an entry; it must lie before the TOC itself. */
int toc_entry_range(const Toc *toc, const TocEntry *e, uint64_t *offset, uint64_t *len,
                    char *why, size_t why_len);

/*
 * Step 4a: `blob.digest` bytes (toc_entry_range of that entry) into
 * blob->digests: 32 bytes per ci entry, checked for size and sha256.
 */
int toc_load_digests(CodecCtx *codec, const Toc *toc, const void *buf, size_t len, BlobInfo *blob,
                     char *why, size_t why_len);

/* Step 4b: `image.boot` bytes into a malloc'd bootstrap (decompressed, sha256 checked). */
int toc_extract_bootstrap(CodecCtx *codec, const Toc *toc, const void *buf, size_t len,
                          uint8_t **out, size_t *out_len, char *why, size_t why_len);

/*
 * Cross-check a parsed blob meta (blob_meta_parse) against the TOC's
 * `blob.meta` and `blob.meta.header` entries: location, sizes, sha256.
 * Entries absent from the TOC are skipped.
 */
int toc_verify_blob_meta(CodecCtx *codec, const Toc *toc, const BlobInfo *blob, char *why, size_t why_len);

/*
 * A reverse-tar GNU header (512 bytes): checksum, magic, regular type,
 * octal size. For walking the chain backwards from a known header: its
 * data is the `size` bytes before it.
 */
typedef struct TocTarHeader {
    char name[101];
    uint64_t size;
} TocTarHeader;

int toc_tar_header_parse(const void *hdr, uint64_t where, TocTarHeader *out, char *why, size_t why_len);
