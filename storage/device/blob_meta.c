/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "blob_meta.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/util/fsutil.h"
#include "storage/util/macros.h"
#include "uapi/rafs.h"
#include "uapi/why.h"

/* Our own bound for BATCH/ZRAN tables (entries + contexts + dictionaries). */
#define BLOB_META_MAX_CI_SIZE (UINT64_C(1) << 30)

typedef struct BlobMetaPrivate {
    uint8_t *ci;                    /* uncompressed ci: entries, then contexts */
    size_t ci_len;
    uint8_t header[RAFS_CI_HEADER_SIZE];
    uint32_t batch_count;
    BlobMetaBatch *batches;
    bool *batch_seen;               /* compressed_offset known from a member */
    uint32_t zran_count;
    BlobMetaZran *zrans;
} BlobMetaPrivate;

#define BAD(...) why_fail(-EBADMSG, why, why_len, __VA_ARGS__)
#define UNSUPPORTED(...) why_fail(-ENOTSUP, why, why_len, __VA_ARGS__)

static void priv_free(void *p)
{
    BlobMetaPrivate *m = p;
    if (!m)
        return;
    free(m->ci);
    free(m->batches);
    free(m->batch_seen);
    free(m->zrans);
    free(m);
}

/* What fscache mode can serve at all (FileCacheEntry::new_fs_cache). */
static int check_servable(const RafsBlob *rb, char *why, size_t why_len)
{
    if (rb->cipher != RAFS_CIPHER_NONE || (rb->features & RAFS_BLOB_ENCRYPTED))
        return UNSUPPORTED("the blob is encrypted (AES-128-XTS); encrypted images are not supported");
    if (rb->chunk_count == 0 || rb->ci_compressed_size == 0 || rb->ci_uncompressed_size == 0)
        return UNSUPPORTED("the blob has no blob meta (chunk_count %" PRIu32 ", ci sizes %" PRIu64 "/%" PRIu64
                           "); fscache mode needs the chunk table",
                           rb->chunk_count, rb->ci_compressed_size, rb->ci_uncompressed_size);
    if (rb->features & RAFS_BLOB_EXTERNAL)
        return UNSUPPORTED("the blob is EXTERNAL (chunks live in other objects); not supported");
    if (!rb->meta_blob_id[0])
        return UNSUPPORTED("the blob is SEPARATE without blob_meta_digest (inline-meta ZRan); not supported");
    bool v2 = rb->features & RAFS_BLOB_CHUNK_INFO_V2;
    bool ext = rb->features & (RAFS_BLOB_BATCH | RAFS_BLOB_ZRAN);
    uint64_t max = ext ? BLOB_META_MAX_CI_SIZE : v2 ? RAFS_CI_V2_MAX_SIZE : RAFS_CI_V1_MAX_SIZE;
    if (cfn_align_up(rb->ci_uncompressed_size, RAFS_BLOCK_SIZE) > max)
        return BAD("ci_uncompressed_size %" PRIu64 " exceeds the %" PRIu64 "-byte limit for this table kind",
                   rb->ci_uncompressed_size, max);
    /* Also bounds what we allocate for an untrusted table. */
    if (rb->ci_uncompressed_size > SIZE_MAX / 2)
        return BAD("ci_uncompressed_size %" PRIu64 " too large", rb->ci_uncompressed_size);
    return 0;
}

int blob_meta_range(const RafsBlob *rb, uint64_t *offset, uint64_t *len, char *why, size_t why_len)
{
    int r = check_servable(rb, why, why_len);
    if (r < 0)
        return r;
    /* rafs_bootstrap_parse_blob() already ruled out overflow of this sum. */
    *offset = rb->ci_offset;
    *len = rb->ci_compressed_size + RAFS_CI_HEADER_SIZE;
    return 0;
}

uint64_t blob_meta_cache_size(const RafsBlob *rb)
{
    return cfn_align_up(rb->ci_uncompressed_size, RAFS_BLOCK_SIZE) + RAFS_CI_HEADER_SIZE;
}

/* The largest ci of `entries` entries and `contexts` batch/zran contexts (with their dictionaries). */
static uint64_t ci_most(const RafsBlob *rb, uint64_t entries, uint64_t contexts)
{
    if (rb->features & RAFS_BLOB_ZRAN)
        return entries * sizeof(struct rafs_chunk_info_v2_disk) +
               contexts * (sizeof(struct rafs_zran_ctx_disk) + RAFS_ZRAN_MAX_DICT_SIZE);
    if (rb->features & RAFS_BLOB_BATCH)
        return entries * sizeof(struct rafs_chunk_info_v2_disk) + contexts * sizeof(struct rafs_batch_ctx_disk);
    return UINT64_MAX;      /* V1/V2 sizes are exact, checked with the bootstrap */
}

/* validate_header(): the header must describe the table the bootstrap names. */
static int check_header(const RafsBlob *rb, const struct rafs_ci_header_disk *h, uint64_t base, const char *src,
                        char *why, size_t why_len)
{
#define HOFF(f) (base + offsetof(struct rafs_ci_header_disk, f))
    if (le32toh(h->s_magic) != RAFS_CI_MAGIC)
        return BAD("%s meta header s_magic @%" PRIu64 ": 0x%08" PRIx32 ", expected 0x%08x", src,
                   HOFF(s_magic), le32toh(h->s_magic), RAFS_CI_MAGIC);
    if (le32toh(h->s_magic2) != RAFS_CI_MAGIC)
        return BAD("%s meta header s_magic2 @%" PRIu64 ": 0x%08" PRIx32 ", expected 0x%08x", src,
                   HOFF(s_magic2), le32toh(h->s_magic2), RAFS_CI_MAGIC);
    if (!(rb->features & RAFS_BLOB_IS_CHUNKDICT_GENERATED) && le32toh(h->s_ci_entries) != rb->chunk_count)
        return BAD("%s meta header s_ci_entries @%" PRIu64 ": %" PRIu32 ", bootstrap chunk_count is %" PRIu32,
                   src, HOFF(s_ci_entries), le32toh(h->s_ci_entries), rb->chunk_count);
    if (le32toh(h->s_ci_compressor) != (uint32_t)rb->ci_compressor)
        return BAD("%s meta header s_ci_compressor @%" PRIu64 ": %" PRIu32 ", bootstrap ci_compressor is %u",
                   src, HOFF(s_ci_compressor), le32toh(h->s_ci_compressor), (unsigned)rb->ci_compressor);
    if (le64toh(h->s_ci_offset) != rb->ci_offset)
        return BAD("%s meta header s_ci_offset @%" PRIu64 ": %" PRIu64 ", bootstrap ci_offset is %" PRIu64,
                   src, HOFF(s_ci_offset), le64toh(h->s_ci_offset), rb->ci_offset);
    if (le64toh(h->s_ci_compressed_size) != rb->ci_compressed_size)
        return BAD("%s meta header s_ci_compressed_size @%" PRIu64 ": %" PRIu64 ", bootstrap says %" PRIu64,
                   src, HOFF(s_ci_compressed_size), le64toh(h->s_ci_compressed_size), rb->ci_compressed_size);
    if (le64toh(h->s_ci_uncompressed_size) != rb->ci_uncompressed_size)
        return BAD("%s meta header s_ci_uncompressed_size @%" PRIu64 ": %" PRIu64 ", bootstrap says %" PRIu64,
                   src, HOFF(s_ci_uncompressed_size), le64toh(h->s_ci_uncompressed_size),
                   rb->ci_uncompressed_size);

    uint64_t n = rb->chunk_count, ci = rb->ci_uncompressed_size;
    uint64_t off = le64toh(h->s_ci_zran_offset), size = le64toh(h->s_ci_zran_size);
    uint64_t count = le32toh(h->s_ci_zran_count);
    if (rb->features & RAFS_BLOB_ZRAN) {
        if (off != n * sizeof(struct rafs_chunk_info_v2_disk))
            return BAD("%s meta header s_ci_zran_offset @%" PRIu64 ": %" PRIu64 ", expected %" PRIu64 " (after the entries)",
                       src, HOFF(s_ci_zran_offset), off, n * sizeof(struct rafs_chunk_info_v2_disk));
        if (size > ci - off)
            return BAD("%s meta header s_ci_zran_size @%" PRIu64 ": %" PRIu64 " bytes at %" PRIu64 " pass the %" PRIu64 "-byte ci",
                       src, HOFF(s_ci_zran_size), size, off, ci);
        if (count > n)
            return BAD("%s meta header s_ci_zran_count @%" PRIu64 ": %" PRIu64 " contexts for %" PRIu64 " chunks",
                       src, HOFF(s_ci_zran_count), count, n);
        if (count * sizeof(struct rafs_zran_ctx_disk) > size)
            return BAD("%s meta header s_ci_zran_count @%" PRIu64 ": %" PRIu64 " contexts do not fit s_ci_zran_size %" PRIu64,
                       src, HOFF(s_ci_zran_count), count, size);
        if (size > count * (sizeof(struct rafs_zran_ctx_disk) + RAFS_ZRAN_MAX_DICT_SIZE))
            return BAD("%s meta header s_ci_zran_size @%" PRIu64 ": %" PRIu64 " bytes for %" PRIu64 " contexts "
                       "of at most 32 KiB of dictionary each", src, HOFF(s_ci_zran_size), size, count);
    } else if (rb->features & RAFS_BLOB_BATCH) {
        if (off < n * sizeof(struct rafs_chunk_info_v2_disk) || off > ci || count > n ||
            count * sizeof(struct rafs_batch_ctx_disk) > ci - off)
            return BAD("%s meta header s_ci_zran_offset @%" PRIu64 ": %" PRIu64 " batch contexts at %" PRIu64 " are outside the ci after its entries (%" PRIu64 " bytes)",
                       src, HOFF(s_ci_zran_offset), count, off, ci);
    }
    /* What the header says the ci holds bounds its size, before anything is decompressed. */
    uint64_t most = ci_most(rb, le32toh(h->s_ci_entries), count);
    if (ci > most)
        return BAD("%s meta header: %" PRIu64 " entries and %" PRIu64 " contexts fill at most %" PRIu64
                   " bytes, not ci_uncompressed_size %" PRIu64, src, (uint64_t)le32toh(h->s_ci_entries), count,
                   most, ci);
    return 0;
#undef HOFF
}

static int load_contexts(const RafsBlob *rb, BlobMetaPrivate *m, char *why, size_t why_len)
{
    const struct rafs_ci_header_disk *h = (const void *)m->header;
    uint64_t off = le64toh(h->s_ci_zran_offset);
    uint32_t count = le32toh(h->s_ci_zran_count);

    if (rb->features & RAFS_BLOB_ZRAN) {
        uint64_t dict_base = off + (uint64_t)count * sizeof(struct rafs_zran_ctx_disk);
        uint64_t dict_len = le64toh(h->s_ci_zran_size) - (uint64_t)count * sizeof(struct rafs_zran_ctx_disk);
        m->zran_count = count;
        m->zrans = count ? calloc(count, sizeof(*m->zrans)) : NULL;
        if (count && !m->zrans)
            return -ENOMEM;
        for (uint32_t i = 0; i < count; i++) {
            struct rafs_zran_ctx_disk z;
            uint64_t at = off + (uint64_t)i * sizeof(z);
            BlobMetaZran *o = &m->zrans[i];
            uint64_t end, doff;
            memcpy(&z, m->ci + at, sizeof(z));
            o->in_offset = le64toh(z.in_offset);
            o->out_offset = le64toh(z.out_offset);
            o->in_len = le32toh(z.in_len);
            o->out_len = le32toh(z.out_len);
            o->ctx_byte = z.ctx_byte;
            o->ctx_bits = z.ctx_bits;
            o->dict_size = le32toh(z.dict_size);
            doff = le64toh(z.dict_offset);
            if (o->dict_size > RAFS_ZRAN_MAX_DICT_SIZE || doff > dict_len || o->dict_size > dict_len - doff)
                return BAD("zran context %" PRIu32 " (ci byte %" PRIu64 "): dictionary [%" PRIu64 ", +%" PRIu32 ") is outside the %" PRIu64 "-byte dictionary table",
                           i, at, doff, o->dict_size, dict_len);
            if (o->ctx_bits > 7)
                return BAD("zran context %" PRIu32 " (ci byte %" PRIu64 "): ctx_bits %u > 7", i,
                           at + offsetof(struct rafs_zran_ctx_disk, ctx_bits), o->ctx_bits);
            if (o->in_len == 0 || o->out_len == 0 || cfn_add_overflow(o->in_offset, (uint64_t)o->in_len, &end) ||
                end > rb->compressed_data_size)
                return BAD("zran context %" PRIu32 " (ci byte %" PRIu64 "): input [%" PRIu64 ", +%" PRIu32 ") / output %" PRIu32 " outside the %" PRIu64 "-byte compressed data",
                           i, at, o->in_offset, o->in_len, o->out_len, rb->compressed_data_size);
            o->dict = m->ci + dict_base + doff;
        }
    } else if (rb->features & RAFS_BLOB_BATCH) {
        m->batch_count = count;
        if (count) {
            m->batches = calloc(count, sizeof(*m->batches));
            m->batch_seen = calloc(count, sizeof(*m->batch_seen));
            if (!m->batches || !m->batch_seen)
                return -ENOMEM;
        }
        for (uint32_t i = 0; i < count; i++) {
            struct rafs_batch_ctx_disk b;
            uint64_t at = off + (uint64_t)i * sizeof(b);
            memcpy(&b, m->ci + at, sizeof(b));
            BlobMetaBatch *o = &m->batches[i];
            o->compressed_size = le32toh(b.compressed_size);
            o->uncompressed_size = le32toh(b.uncompressed_batch_size);
            o->compressed = o->compressed_size != o->uncompressed_size;
            if (o->compressed_size == 0 || o->compressed_size > o->uncompressed_size)
                return BAD("batch context %" PRIu32 " (ci byte %" PRIu64 "): compressed_size %" PRIu32 " not in 1..uncompressed_batch_size %" PRIu32,
                           i, at, o->compressed_size, o->uncompressed_size);
            if (o->uncompressed_size > RAFS_MAX_CHUNK_SIZE)
                return BAD("batch context %" PRIu32 " (ci byte %" PRIu64 "): uncompressed_batch_size %" PRIu32 " exceeds 16 MiB",
                           i, at + 4, o->uncompressed_size);
        }
    }
    return 0;
}

typedef struct Entry {
    uint64_t uoff, coff;
    uint32_t usize, csize;
    unsigned flags;                 /* V2 flags; V1 synthesises COMPRESSED */
    uint32_t hi, lo;
} Entry;

static void decode_entry(const uint8_t *ci, bool v2, uint32_t i, Entry *e)
{
    if (v2) {
        struct rafs_chunk_info_v2_disk d;
        memcpy(&d, ci + (size_t)i * sizeof(d), sizeof(d));
        e->uoff = rafs_ci_v2_uncompressed_offset(&d);
        e->usize = rafs_ci_v2_uncompressed_size(&d);
        e->coff = rafs_ci_v2_compressed_offset(&d);
        e->csize = rafs_ci_v2_compressed_size(&d);
        e->flags = rafs_ci_v2_flags(&d);
        e->hi = rafs_ci_v2_data_hi(&d);
        e->lo = rafs_ci_v2_data_lo(&d);
    } else {
        struct rafs_chunk_info_v1_disk d;
        memcpy(&d, ci + (size_t)i * sizeof(d), sizeof(d));
        e->uoff = rafs_ci_v1_uncompressed_offset(&d);
        e->usize = rafs_ci_v1_uncompressed_size(&d);
        e->coff = rafs_ci_v1_compressed_offset(&d);
        e->csize = rafs_ci_v1_compressed_size(&d);
        e->flags = e->csize != e->usize ? RAFS_CI_V2_COMPRESSED : 0;
        e->hi = e->lo = 0;
    }
}

/* Decode and check every entry (chunk_info_v{1,2}.rs validate + the fscache lookup rules, docs §2.4-2.8). */
static int decode_chunks(const RafsBlob *rb, BlobMetaPrivate *m, BlobInfo *blob, char *why, size_t why_len)
{
    bool v2 = rb->features & RAFS_BLOB_CHUNK_INFO_V2;
    bool zran_blob = rb->features & RAFS_BLOB_ZRAN;
    bool separate = rb->features & RAFS_BLOB_SEPARATE;
    size_t esize = v2 ? sizeof(struct rafs_chunk_info_v2_disk) : sizeof(struct rafs_chunk_info_v1_disk);
    /* nydusd allows round_up_4k(uncompressed_size); the cache file is exactly uncompressed_size. */
    uint64_t ulimit = rb->uncompressed_size;
    uint64_t cds = rb->compressed_data_size;
    uint64_t next_uoff = 0, prev_coff = 0, prev_cend = 0;
    uint32_t prev_batch = UINT32_MAX;

    if ((uint64_t)rb->chunk_count * esize > m->ci_len)
        return BAD("%" PRIu32 " entries of %zu bytes do not fit the %zu-byte ci", rb->chunk_count,
                   esize, m->ci_len);

    for (uint32_t i = 0; i < rb->chunk_count; i++) {
        Entry e;
        uint64_t at = (uint64_t)i * esize, uend, cend;
        BlobChunkInfo *c = &blob->chunks[i];

        decode_entry(m->ci, v2, i, &e);
#define CBAD(fmt, ...) BAD("ci[%" PRIu32 "] (ci byte %" PRIu64 "): " fmt, i, at, __VA_ARGS__)
        if (e.flags & ~RAFS_CI_V2_KNOWN_FLAGS)
            return CBAD("unknown chunk flags 0x%02x", e.flags & ~RAFS_CI_V2_KNOWN_FLAGS);
        if (e.flags & RAFS_CI_V2_ENCRYPTED)
            return CBAD("ENCRYPTED chunk in a blob without ENCRYPTED (0x%x)", 0x100);
        bool zran = e.flags & RAFS_CI_V2_ZRAN, batch = e.flags & RAFS_CI_V2_BATCH;
        if (zran && !zran_blob)
            return CBAD("ZRAN chunk in a blob without the ZRAN feature (features 0x%08" PRIx32 ")", rb->features);
        if (zran_blob && !zran)
            return CBAD("non-ZRAN chunk in a ZRAN blob (flags 0x%02x)", e.flags);
        if (batch && !(rb->features & RAFS_BLOB_BATCH))
            return CBAD("BATCH chunk in a blob without the BATCH feature (features 0x%08" PRIx32 ")", rb->features);
        if (zran && batch)
            return CBAD("flags 0x%02x: ZRAN and BATCH both claim the data word", e.flags);
        if ((e.flags & RAFS_CI_V2_HAS_CRC32) && (zran || batch))
            return CBAD("flags 0x%02x: HAS_CRC32 on a ZRAN/BATCH chunk", e.flags);
        if ((e.flags & RAFS_CI_V2_HAS_CRC32) && e.lo == 0)
            return CBAD("HAS_CRC32 with a zero crc32 %s", "(nydusd rejects it)");
        if (!separate && !batch && e.csize == 0)
            return CBAD("compressed size is 0 (coff 0x%" PRIx64 ")", e.coff);
        if (!(e.flags & RAFS_CI_V2_COMPRESSED) && e.csize != e.usize)
            return CBAD("uncompressed chunk with compressed size %" PRIu32 " != uncompressed size %" PRIu32, e.csize,
                        e.usize);
        if (e.usize > rb->chunk_size)
            return CBAD("uncompressed size %" PRIu32 " exceeds the chunk size %" PRIu32, e.usize, rb->chunk_size);
        if (!zran && e.csize > rb->chunk_size)
            return CBAD("compressed size %" PRIu32 " exceeds the chunk size %" PRIu32, e.csize, rb->chunk_size);
        if (e.uoff % RAFS_BLOCK_SIZE)
            return CBAD("uncompressed offset 0x%" PRIx64 " is not 4 KiB aligned", e.uoff);
        uend = e.uoff + e.usize;
        if (uend > ulimit)
            return CBAD("uncompressed range [0x%" PRIx64 ", 0x%" PRIx64 ") ends past the blob's uncompressed_size 0x%" PRIx64,
                        e.uoff, uend, rb->uncompressed_size);
        cend = e.coff + e.csize;
        if (cend > cds)
            return CBAD("compressed range [%" PRIu64 ", %" PRIu64 ") ends past the chunk data (%" PRIu64 " bytes)", e.coff,
                        cend, cds);
        /* Sorted and densely packed: what the uncompressed binary search assumes. */
        if (i && e.uoff < blob->chunks[i - 1].uncompressed_offset)
            return CBAD("uncompressed offset 0x%" PRIx64 " is below ci[%" PRIu32 "]'s 0x%" PRIx64 ": table not sorted",
                        e.uoff, i - 1, blob->chunks[i - 1].uncompressed_offset);
        if (e.uoff < next_uoff)
            return CBAD("uncompressed range at 0x%" PRIx64 " overlaps ci[%" PRIu32 "] (ends 0x%" PRIx64 ")", e.uoff,
                        i - 1, next_uoff);
        /* ZRan tables may leave holes (nydusd's lookups allow them; no file maps them). */
        if (e.uoff != next_uoff && !zran)
            return CBAD("uncompressed offset 0x%" PRIx64 ", dense 4 KiB packing requires 0x%" PRIx64, e.uoff,
                        next_uoff);
        if (e.coff < prev_coff)
            return CBAD("compressed offset %" PRIu64 " is below ci[%" PRIu32 "]'s %" PRIu64, e.coff, i - 1,
                        prev_coff);

        c->compressed_offset = e.coff;
        c->compressed_size = e.csize;
        c->uncompressed_offset = e.uoff;
        c->uncompressed_size = e.usize;
        c->flags = 0;
        if (e.flags & RAFS_CI_V2_COMPRESSED)
            c->flags |= BLOB_CHUNK_COMPRESSED;
        if (e.flags & RAFS_CI_V2_HAS_CRC32) {
            c->flags |= BLOB_CHUNK_HAS_CRC32;
            c->crc32 = e.lo;
        }

        if (zran) {
            if (e.hi >= m->zran_count)
                return CBAD("zran index %" PRIu32 " >= %" PRIu32 " contexts", e.hi, m->zran_count);
            const BlobMetaZran *z = &m->zrans[e.hi];
            if (e.lo >= z->out_len || e.usize > z->out_len - e.lo)
                return CBAD("zran range [%" PRIu32 ", +%" PRIu32 ") outside context %" PRIu32 "'s %" PRIu32 " output bytes",
                            e.lo, e.usize, e.hi, z->out_len);
            c->flags |= BLOB_CHUNK_ZRAN;
            c->ctx_index = e.hi;
            c->ctx_offset = e.lo;
        } else if (batch) {
            if (e.hi >= m->batch_count)
                return CBAD("batch index %" PRIu32 " >= %" PRIu32 " contexts", e.hi, m->batch_count);
            BlobMetaBatch *b = &m->batches[e.hi];
            if (e.lo > b->uncompressed_size || e.usize > b->uncompressed_size - e.lo)
                return CBAD("batch range [%" PRIu32 ", +%" PRIu32 ") outside batch %" PRIu32 "'s %" PRIu32 " bytes", e.lo,
                            e.usize, e.hi, b->uncompressed_size);
            if (e.hi == prev_batch) {
                /* Members share the batch's data. */
                if (e.coff != b->compressed_offset)
                    return CBAD("compressed offset %" PRIu64 " differs from batch %" PRIu32 "'s %" PRIu64, e.coff, e.hi,
                                b->compressed_offset);
            } else {
                if (m->batch_seen[e.hi])
                    return CBAD("batch %" PRIu32 " resumes after other chunks", e.hi);
                if (e.coff + b->compressed_size > cds)
                    return CBAD("batch %" PRIu32 " data [%" PRIu64 ", +%" PRIu32 ") ends past the chunk data (%" PRIu64 " bytes)",
                                e.hi, e.coff, b->compressed_size, cds);
                if (e.coff < prev_cend)
                    return CBAD("batch %" PRIu32 " data at %" PRIu64 " overlaps the previous chunk (ends %" PRIu64 ")",
                                e.hi, e.coff, prev_cend);
                m->batch_seen[e.hi] = true;
                b->compressed_offset = e.coff;
                prev_cend = e.coff + b->compressed_size;
                prev_batch = e.hi;
            }
            c->flags |= BLOB_CHUNK_BATCH;
            c->ctx_index = e.hi;
            c->ctx_offset = e.lo;
        } else {
            if (e.coff < prev_cend)
                return CBAD("compressed range [%" PRIu64 ", %" PRIu64 ") overlaps the previous chunk (ends %" PRIu64 ")",
                            e.coff, cend, prev_cend);
            prev_cend = cend;
            prev_batch = UINT32_MAX;
        }
#undef CBAD
        next_uoff = cfn_align_up(uend, RAFS_BLOCK_SIZE);
        prev_coff = e.coff;
    }
    return 0;
}

/*
 * The cache file (uncompressed_size) ends with the last chunk: a larger size
 * is a cache file and per-chunk state no chunk will ever fill. ZRAN chunks
 * follow the tar stream, whose end (padding, trailer) may lie up to a chunk
 * beyond its last file data.
 */
static int check_blob_end(const RafsBlob *rb, const BlobInfo *blob, char *why, size_t why_len)
{
    if (rb->features & RAFS_BLOB_IS_CHUNKDICT_GENERATED)
        return 0;       /* a chunk dictionary's table need not reach its end */
    const BlobChunkInfo *last = &blob->chunks[rb->chunk_count - 1];
    uint64_t end = cfn_align_up(last->uncompressed_offset + last->uncompressed_size, RAFS_BLOCK_SIZE);
    uint64_t slack = (rb->features & RAFS_BLOB_ZRAN) ? rb->chunk_size : 0;
    if (rb->uncompressed_size > end + slack)
        return BAD("uncompressed_size %" PRIu64 " runs past its last chunk, which ends at %" PRIu64,
                   rb->uncompressed_size, end);
    return 0;
}

/* Check the header, take ownership of `ci`, decode. On success blob owns the private state. */
static int finish(const RafsBlob *rb, uint8_t *ci, const void *header, uint64_t header_at, const char *src,
                  BlobInfo *blob, char *why, size_t why_len)
{
    BlobMetaPrivate *m = calloc(1, sizeof(*m));
    int r;

    if (!m) {
        free(ci);
        return -ENOMEM;
    }
    m->ci = ci;
    m->ci_len = rb->ci_uncompressed_size;
    memcpy(m->header, header, sizeof(m->header));
    r = check_header(rb, (const void *)m->header, header_at, src, why, why_len);
    if (r < 0)
        goto fail;
    r = load_contexts(rb, m, why, why_len);
    if (r < 0)
        goto fail;
    r = decode_chunks(rb, m, blob, why, why_len);
    if (r < 0)
        goto fail;
    r = check_blob_end(rb, blob, why, why_len);
    if (r < 0)
        goto fail;

    free(m->batch_seen);
    m->batch_seen = NULL;
    if (blob->meta_private_free)
        blob->meta_private_free(blob->meta_private);
    blob->meta_private = m;
    blob->meta_private_free = priv_free;
    return 0;

fail:
    priv_free(m);
    return r;
}

static int check_target(const RafsBlob *rb, const BlobInfo *blob, char *why, size_t why_len)
{
    if (blob->chunk_count != rb->chunk_count || (rb->chunk_count && !blob->chunks))
        return why_fail(-EINVAL, why, why_len, "BlobInfo has %" PRIu32 " chunks, bootstrap says %" PRIu32,
                    blob->chunk_count, rb->chunk_count);
    return check_servable(rb, why, why_len);
}

int blob_meta_parse(CodecCtx *codec, const RafsBlob *rb, const void *buf, size_t len, BlobInfo *blob,
                    char *why, size_t why_len)
{
    int r = check_target(rb, blob, why, why_len);
    if (r < 0)
        return r;
    if (len != rb->ci_compressed_size + RAFS_CI_HEADER_SIZE)
        return BAD("blob meta is %zu bytes, expected ci_compressed_size %" PRIu64 " + 4096 from offset %" PRIu64,
                   len, rb->ci_compressed_size, rb->ci_offset);

    size_t csize = (size_t)rb->ci_compressed_size, usize = (size_t)rb->ci_uncompressed_size;
    /* The plaintext header names what the table holds: check it before decompressing anything. */
    r = check_header(rb, (const void *)((const uint8_t *)buf + csize), rb->ci_offset + csize, "blob", why, why_len);
    if (r < 0)
        return r;
    uint8_t *ci = malloc(usize);
    if (!ci)
        return -ENOMEM;
    if (rb->ci_compressor == BLOB_COMP_NONE) {
        if (csize != usize) {
            free(ci);
            return BAD("ci_compressor none but ci sizes %zu/%zu differ", csize, usize);
        }
        memcpy(ci, buf, usize);
    } else {
        r = codec_decompress(codec, rb->ci_compressor, buf, csize, ci, usize);
        if (r < 0) {
            free(ci);
            return why_fail(r == -ENOTSUP || r == -ENOMEM ? r : -EBADMSG, why, why_len,
                        "ci table @%" PRIu64 " (+%zu, %s) does not decompress to %zu bytes: %s",
                        rb->ci_offset, csize, blob_compressor_name(rb->ci_compressor), usize, strerror(-r));
        }
    }
    return finish(rb, ci, (const uint8_t *)buf + csize, rb->ci_offset + csize, "blob", blob, why, why_len);
}

int blob_meta_parse_cache(const RafsBlob *rb, const void *buf, size_t len, BlobInfo *blob,
                          char *why, size_t why_len)
{
    int r = check_target(rb, blob, why, why_len);
    if (r < 0)
        return r;
    uint64_t want = blob_meta_cache_size(rb);
    if (len != want)
        return BAD(".blob.meta file is %zu bytes, expected round_up_4k(%" PRIu64 ") + 4096 = %" PRIu64,
                   len, rb->ci_uncompressed_size, want);
    size_t usize = (size_t)rb->ci_uncompressed_size;
    uint8_t *ci = malloc(usize);
    if (!ci)
        return -ENOMEM;
    memcpy(ci, buf, usize);
    return finish(rb, ci, (const uint8_t *)buf + (len - RAFS_CI_HEADER_SIZE), len - RAFS_CI_HEADER_SIZE,
                  ".blob.meta", blob, why, why_len);
}

static bool tag_valid(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((tag[i] >= '0' && tag[i] <= '9') || (tag[i] >= 'a' && tag[i] <= 'z') || tag[i] == '-'))
            return false;
    return true;
}

static int meta_path(char *out, size_t out_len, const char *dir, const char *id, const char *tag,
                     char *why, size_t why_len)
{
    if (!rafs_bootstrap_id_valid(id))
        return why_fail(-EINVAL, why, why_len, "blob id \"%.64s\" is not a safe file name", id);
    if (tag && !tag_valid(tag))
        return why_fail(-EINVAL, why, why_len, "cache tag \"%.32s\" is not a safe file name part", tag);
    int n = snprintf(out, out_len, "%s/%s%s%s.blob.meta", dir, id, tag ? "." : "", tag ? tag : "");
    if (n < 0 || (size_t)n >= out_len)
        return why_fail(-ENAMETOOLONG, why, why_len, "path of %s.blob.meta in %s is too long", id, dir);
    return 0;
}

int blob_meta_cache_load(const char *dir, const RafsBlob *rb, BlobInfo *blob, char *why, size_t why_len)
{
    return blob_meta_cache_load_tagged(dir, NULL, rb, blob, why, why_len);
}

int blob_meta_cache_save(const char *dir, const BlobInfo *blob, char *why, size_t why_len)
{
    return blob_meta_cache_save_tagged(dir, NULL, blob, why, why_len);
}

int blob_meta_cache_load_tagged(const char *dir, const char *tag, const RafsBlob *rb, BlobInfo *blob,
                                char *why, size_t why_len)
{
    char path[PATH_MAX];
    struct stat st;
    int r = meta_path(path, sizeof(path), dir, rb->id, tag, why, why_len);
    if (r < 0)
        return r;
    r = check_target(rb, blob, why, why_len);
    if (r < 0)
        return r;

    /* Not blocking: a FIFO planted in work_dir must not hold a worker forever (refused below). */
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        r = -errno;
        return why_fail(r, why, why_len, "open %s: %s", path, strerror(-r));
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        return why_fail(r, why, why_len, "stat %s: %s", path, strerror(-r));
    }
    uint64_t want = blob_meta_cache_size(rb);
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != want)
        return BAD("%s is %jd bytes, expected %" PRIu64, path, (intmax_t)st.st_size, want);

    _cleanup_free_ uint8_t *buf = malloc(want);
    if (!buf)
        return -ENOMEM;
    for (size_t done = 0; done < want;) {
        ssize_t n = pread(fd, buf + done, want - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            return why_fail(r, why, why_len, "read %s: %s", path, strerror(-r));
        }
        if (n == 0)
            return BAD("%s shrank while reading (%zu of %" PRIu64 " bytes)", path, done, want);
        done += (size_t)n;
    }
    return blob_meta_parse_cache(rb, buf, want, blob, why, why_len);
}

int blob_meta_cache_save_tagged(const char *dir, const char *tag, const BlobInfo *blob, char *why, size_t why_len)
{
    const BlobMetaPrivate *m = blob->meta_private;
    char path[PATH_MAX];
    static const uint8_t zero[RAFS_BLOCK_SIZE];
    int r;

    if (!m || blob->meta_private_free != priv_free)
        return why_fail(-EINVAL, why, why_len, "blob %s has no parsed blob meta to save", blob->id);
    r = meta_path(path, sizeof(path), dir, blob->id, tag, why, why_len);
    if (r < 0)
        return r;
    size_t pad = (size_t)(cfn_align_up(m->ci_len, RAFS_BLOCK_SIZE) - m->ci_len);
    struct iovec iov[] = {
        { .iov_base = (void *)m->ci, .iov_len = m->ci_len },
        { .iov_base = (void *)zero, .iov_len = pad },
        { .iov_base = (void *)m->header, .iov_len = sizeof(m->header) },
    };
    r = fs_write_atomic(path, iov, 3, 0644);
    if (r < 0)
        return why_fail(r, why, why_len, "write %s: %s", path, strerror(-r));
    return 0;
}

int blob_meta_batch(const BlobInfo *blob, uint32_t index, BlobMetaBatch *out)
{
    const BlobMetaPrivate *m = blob->meta_private;
    if (!m || blob->meta_private_free != priv_free || index >= m->batch_count)
        return -ENOENT;
    *out = m->batches[index];
    return 0;
}

int blob_meta_zran(const BlobInfo *blob, uint32_t index, BlobMetaZran *out)
{
    const BlobMetaPrivate *m = blob->meta_private;
    if (!m || blob->meta_private_free != priv_free || index >= m->zran_count)
        return -ENOENT;
    *out = m->zrans[index];
    return 0;
}

int blob_meta_raw(const BlobInfo *blob, const uint8_t **ci, size_t *ci_len, const uint8_t **header)
{
    const BlobMetaPrivate *m = blob->meta_private;
    if (!m || blob->meta_private_free != priv_free)
        return -ENOENT;
    *ci = m->ci;
    *ci_len = m->ci_len;
    *header = m->header;
    return 0;
}
