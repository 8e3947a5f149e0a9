/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "toc.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/device/blob_meta.h"
#include "storage/util/macros.h"
#include "uapi/why.h"

/* Bounds for what an untrusted entry can make us allocate. */
#define TOC_MAX_BOOTSTRAP_SIZE (UINT64_C(1) << 30)


#define BAD(...) why_fail(-EBADMSG, why, why_len, __VA_ARGS__)

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void hex8(const uint8_t *d, char out[17])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[16] = '\0';
}

int toc_tail_range(const RafsBlob *rb, uint64_t blob_size, uint64_t *offset, uint64_t *len,
                   char *why, size_t why_len)
{
    uint64_t n;
    if (rb && rb->toc_size) {
        n = rb->toc_size;
        if (n < RAFS_TOC_MIN_SIZE || n > RAFS_TOC_MAX_SIZE || n % RAFS_TOC_ENTRY_SIZE)
            return BAD("blob_toc_size %" PRIu64 ": not a multiple of 128 in 512..65536", n);
        if (n > blob_size)
            return BAD("blob_toc_size %" PRIu64 " exceeds the %" PRIu64 "-byte blob", n, blob_size);
    } else {
        n = blob_size > RAFS_TOC_AUTODETECT_SIZE ? RAFS_TOC_AUTODETECT_SIZE : blob_size & ~(uint64_t)127;
        if (n < RAFS_TAR_HEADER_SIZE)
            return BAD("blob of %" PRIu64 " bytes is too small to hold a TOC", blob_size);
    }
    *offset = blob_size - n;
    *len = n;
    return 0;
}

/* Octal field of `n` bytes: optional leading spaces, digits, then NUL/space. */
static int parse_octal(const char *f, size_t n, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    bool digits = false;
    while (i < n && f[i] == ' ')
        i++;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 61)
            return -ERANGE;
        v = v * 8 + (uint64_t)(f[i] - '0');
        digits = true;
    }
    for (; i < n; i++)
        if (f[i] != '\0' && f[i] != ' ')
            return -EINVAL;
    if (!digits)
        return -EINVAL;
    *out = v;
    return 0;
}

int toc_tar_header_parse(const void *hdr, uint64_t where, TocTarHeader *out, char *why, size_t why_len)
{
    struct rafs_tar_header_disk h;
    const uint8_t *b = hdr;
    uint64_t sum_u = 0, stored;
    int64_t sum_s = 0;

    memcpy(&h, hdr, sizeof(h));
#define TOFF(f) (where + offsetof(struct rafs_tar_header_disk, f))
    if (memcmp(h.magic, RAFS_TAR_GNU_MAGIC, sizeof(h.magic)))
        return BAD("tar header magic @%" PRIu64 ": not the GNU \"ustar  \" magic", TOFF(magic));
    for (size_t i = 0; i < sizeof(h); i++) {
        uint8_t c = (i >= 148 && i < 156) ? ' ' : b[i];
        sum_u += c;
        sum_s += (int8_t)c;
    }
    if (parse_octal(h.chksum, sizeof(h.chksum), &stored) < 0)
        return BAD("tar header chksum @%" PRIu64 ": not an octal number", TOFF(chksum));
    /* Go's archive/tar (the snapshotter) accepts the unsigned or the signed sum. */
    if (stored != sum_u && (int64_t)stored != sum_s)
        return BAD("tar header chksum @%" PRIu64 ": 0%" PRIo64 ", computed 0%" PRIo64, TOFF(chksum), stored, sum_u);
    if (h.typeflag != '0' && h.typeflag != '\0')
        return BAD("tar header typeflag @%" PRIu64 ": '%c' is not a regular file", TOFF(typeflag),
                   h.typeflag >= 0x20 && h.typeflag < 0x7f ? h.typeflag : '?');
    size_t nl = strnlen(h.name, sizeof(h.name));
    if (nl == 0 || nl == sizeof(h.name))
        return BAD("tar header name @%" PRIu64 ": empty or not NUL terminated", TOFF(name));
    for (size_t i = 0; i < nl; i++)
        if ((uint8_t)h.name[i] < 0x20 || (uint8_t)h.name[i] >= 0x7f)
            return BAD("tar header name @%" PRIu64 ": byte %zu (0x%02x) is not printable", TOFF(name) + i, i,
                       (uint8_t)h.name[i]);
    memcpy(out->name, h.name, nl);
    out->name[nl] = '\0';
    /* Base-256 sizes (high bit set) never occur here: entries are small. */
    if (parse_octal(h.size, sizeof(h.size), &out->size) < 0)
        return BAD("tar header size @%" PRIu64 ": not an octal number", TOFF(size));
    return 0;
#undef TOFF
}

static int parse_entry(const uint8_t *raw, uint64_t where, TocEntry *e, char *why, size_t why_len)
{
    struct rafs_toc_entry_disk d;
    size_t n = 0;

    memcpy(&d, raw, sizeof(d));
#define EOFF(f) (where + offsetof(struct rafs_toc_entry_disk, f))
    while (n < RAFS_TOC_NAME_LEN && d.name[n])
        n++;
    if (n == 0)
        return BAD("TOC entry name @%" PRIu64 ": empty", EOFF(name));
    for (size_t i = 0; i < RAFS_TOC_NAME_LEN; i++) {
        uint8_t c = d.name[i];
        if ((i < n && (c <= 0x20 || c >= 0x7f)) || (i >= n && c))
            return BAD("TOC entry name @%" PRIu64 ": byte %zu (0x%02x) is not printable ASCII with NUL padding",
                       EOFF(name) + i, i, c);
    }
    memcpy(e->name, d.name, n);
    e->name[n] = '\0';

    e->flags = le32toh(d.flags);
    switch (e->flags) {
    case RAFS_TOC_COMPRESSION_NONE: e->compressor = BLOB_COMP_NONE; break;
    case RAFS_TOC_COMPRESSION_ZSTD: e->compressor = BLOB_COMP_ZSTD; break;
    case RAFS_TOC_COMPRESSION_LZ4_BLOCK: e->compressor = BLOB_COMP_LZ4_BLOCK; break;
    default:
        return BAD("TOC entry %s flags @%" PRIu64 ": 0x%08" PRIx32 " is not exactly one known compression", e->name,
                   EOFF(flags), e->flags);
    }
    memcpy(e->digest, d.uncompressed_digest, sizeof(e->digest));
    e->has_digest = !all_zero(e->digest, sizeof(e->digest));
    e->compressed_offset = le64toh(d.compressed_offset);
    e->compressed_size = le64toh(d.compressed_size);
    e->uncompressed_size = le64toh(d.uncompressed_size);
    /* reserved1/reserved2 are ignored: pre-release builders left bytes there. */
    return 0;
#undef EOFF
}

static int sha256(CodecCtx *codec, const void *p, size_t n, uint8_t out[32], const char *what, char *why,
                  size_t why_len)
{
    int r = codec_digest(codec, BLOB_DIGEST_SHA256, p, n, out);
    if (r < 0)
        return why_fail(r, why, why_len, "sha256 of %s: %s", what, strerror(-r));
    return 0;
}

int toc_parse(CodecCtx *codec, const void *buf, size_t len, uint64_t offset, const uint8_t *expect_digest,
              Toc *out, char *why, size_t why_len)
{
    const uint8_t *b = buf;
    TocTarHeader th;
    int r;

    memset(out, 0, sizeof(*out));
    if (len < RAFS_TAR_HEADER_SIZE)
        return BAD("blob TOC tail is %zu bytes, too small for its 512-byte tar header", len);
    size_t hpos = len - RAFS_TAR_HEADER_SIZE;
    uint64_t hwhere = offset + hpos;
    r = toc_tar_header_parse(b + hpos, hwhere, &th, why, why_len);
    if (r < 0)
        return r;

    if (!strcmp(th.name, RAFS_TOC_NAME_BOOTSTRAP)) {
        /* No TOC: a bare inline bootstrap right before its header. */
        if (expect_digest && !all_zero(expect_digest, 32))
            return BAD("tar header name @%" PRIu64 ": a bare image.boot, but the bootstrap records a TOC digest",
                       hwhere);
        if (th.size > hwhere)
            return BAD("tar header size @%" PRIu64 ": image.boot of %" PRIu64 " bytes starts before the blob",
                       hwhere + 124, th.size);
        out->entries = calloc(1, sizeof(*out->entries));
        if (!out->entries)
            return -ENOMEM;
        out->count = 1;
        out->synthetic = true;
        out->offset = hwhere;
        TocEntry *e = &out->entries[0];
        strcpy(e->name, RAFS_TOC_NAME_BOOTSTRAP);
        e->flags = RAFS_TOC_COMPRESSION_NONE;
        e->compressor = BLOB_COMP_NONE;
        e->compressed_offset = hwhere - th.size;
        e->compressed_size = e->uncompressed_size = th.size;
        return 0;
    }
    if (strcmp(th.name, RAFS_TOC_NAME_TOC))
        return BAD("tar header name @%" PRIu64 ": \"%s\", expected \"" RAFS_TOC_NAME_TOC "\"", hwhere, th.name);
    if (th.size > hpos)
        return BAD("tar header size @%" PRIu64 ": TOC of %" PRIu64 " bytes exceeds the %zu bytes read before it",
                   hwhere + 124, th.size, hpos);
    if (th.size % RAFS_TOC_ENTRY_SIZE)
        return BAD("tar header size @%" PRIu64 ": TOC of %" PRIu64 " bytes is not a multiple of 128", hwhere + 124,
                   th.size);

    size_t start = hpos - (size_t)th.size;
    out->offset = offset + start;
    out->size = (uint32_t)th.size + RAFS_TAR_HEADER_SIZE;
    r = sha256(codec, b + start, out->size, out->digest, "the TOC", why, why_len);
    if (r < 0)
        return r;
    if (expect_digest && !all_zero(expect_digest, 32) && memcmp(expect_digest, out->digest, 32)) {
        char want[17], got[17];
        hex8(expect_digest, want);
        hex8(out->digest, got);
        r = BAD("blob TOC @%" PRIu64 " (+%" PRIu32 "): sha256 %s... differs from blob_toc_digest %s...", out->offset,
                out->size, got, want);
        memset(out, 0, sizeof(*out));
        return r;
    }

    out->count = (uint32_t)(th.size / RAFS_TOC_ENTRY_SIZE);
    if (out->count) {
        out->entries = calloc(out->count, sizeof(*out->entries));
        if (!out->entries)
            return -ENOMEM;
    }
    for (uint32_t i = 0; i < out->count; i++) {
        size_t pos = start + (size_t)i * RAFS_TOC_ENTRY_SIZE;
        r = parse_entry(b + pos, offset + pos, &out->entries[i], why, why_len);
        if (r < 0)
            goto fail;
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(out->entries[j].name, out->entries[i].name)) {
                r = BAD("TOC entry name @%" PRIu64 ": \"%s\" appears twice", offset + pos + 8, out->entries[i].name);
                goto fail;
            }
    }
    return 0;

fail:
    toc_clear(out);
    return r;
}

void toc_clear(Toc *toc)
{
    free(toc->entries);
    memset(toc, 0, sizeof(*toc));
}

const TocEntry *toc_find(const Toc *toc, const char *name)
{
    for (uint32_t i = 0; i < toc->count; i++)
        if (!strcmp(toc->entries[i].name, name))
            return &toc->entries[i];
    return NULL;
}

int toc_entry_range(const Toc *toc, const TocEntry *e, uint64_t *offset, uint64_t *len,
                    char *why, size_t why_len)
{
    uint64_t end;
    if (cfn_add_overflow(e->compressed_offset, e->compressed_size, &end) || end > toc->offset)
        return BAD("TOC entry %s: range [%" PRIu64 ", +%" PRIu64 ") does not end before the TOC at %" PRIu64, e->name,
                   e->compressed_offset, e->compressed_size, toc->offset);
    *offset = e->compressed_offset;
    *len = e->compressed_size;
    return 0;
}

/*
 * Decode an entry's bytes into a malloc'd buffer of exactly uncompressed_size
 * bytes (limit `max`) and check its sha256.
 */
static int extract(CodecCtx *codec, const Toc *toc, const char *name, const void *buf, size_t len, uint64_t max,
                   uint8_t **out, char *why, size_t why_len)
{
    const TocEntry *e = toc_find(toc, name);
    uint64_t off, n;
    uint8_t d[32];
    int r;

    if (!e)
        return why_fail(-ENOENT, why, why_len, "the blob TOC has no %s entry", name);
    r = toc_entry_range(toc, e, &off, &n, why, why_len);
    if (r < 0)
        return r;
    if (len != n)
        return BAD("TOC entry %s: got %zu bytes, the entry at %" PRIu64 " holds %" PRIu64, name, len, off, n);
    if (e->uncompressed_size > max)
        return BAD("TOC entry %s: uncompressed_size %" PRIu64 " exceeds %" PRIu64, name, e->uncompressed_size, max);
    size_t usize = (size_t)e->uncompressed_size;
    uint8_t *p = malloc(usize ? usize : 1);
    if (!p)
        return -ENOMEM;
    switch (e->compressor) {
    case BLOB_COMP_NONE:
        if (n != e->uncompressed_size) {
            r = BAD("TOC entry %s: uncompressed but compressed_size %" PRIu64 " != uncompressed_size %" PRIu64, name, n,
                    e->uncompressed_size);
            goto fail;
        }
        memcpy(p, buf, usize);
        break;
    case BLOB_COMP_ZSTD:
        r = codec_decompress(codec, BLOB_COMP_ZSTD, buf, len, p, usize);
        if (r < 0) {
            r = why_fail(r == -ENOMEM ? r : -EBADMSG, why, why_len, "TOC entry %s: zstd data at %" PRIu64 " does not decompress to %zu bytes",
                     name, off, usize);
            goto fail;
        }
        break;
    default:
        /* nydusd cannot extract lz4_block entries either. */
        r = why_fail(-ENOTSUP, why, why_len, "TOC entry %s: lz4_block entries are not supported", name);
        goto fail;
    }
    if (e->has_digest) {
        r = sha256(codec, p, usize, d, name, why, why_len);
        if (r < 0)
            goto fail;
        if (memcmp(d, e->digest, 32)) {
            r = BAD("TOC entry %s: sha256 of the %zu bytes at %" PRIu64 " differs from the TOC's", name, usize, off);
            goto fail;
        }
    }
    *out = p;
    return 0;

fail:
    free(p);
    return r;
}

int toc_load_digests(CodecCtx *codec, const Toc *toc, const void *buf, size_t len, BlobInfo *blob,
                     char *why, size_t why_len)
{
    const TocEntry *e = toc_find(toc, RAFS_TOC_NAME_BLOB_DIGEST);
    uint64_t want = (uint64_t)blob->chunk_count * BLOB_DIGEST_SIZE;
    uint8_t *p = NULL;
    int r;

    if (e && e->uncompressed_size != want)
        return BAD("TOC entry blob.digest: uncompressed_size %" PRIu64 ", expected 32 x %" PRIu32 " chunks",
                   e->uncompressed_size, blob->chunk_count);
    r = extract(codec, toc, RAFS_TOC_NAME_BLOB_DIGEST, buf, len, want, &p, why, why_len);
    if (r < 0)
        return r;
    free(blob->digests);
    blob->digests = (uint8_t(*)[BLOB_DIGEST_SIZE])p;
    return 0;
}

int toc_extract_bootstrap(CodecCtx *codec, const Toc *toc, const void *buf, size_t len,
                          uint8_t **out, size_t *out_len, char *why, size_t why_len)
{
    const TocEntry *e = toc_find(toc, RAFS_TOC_NAME_BOOTSTRAP);
    int r = extract(codec, toc, RAFS_TOC_NAME_BOOTSTRAP, buf, len, TOC_MAX_BOOTSTRAP_SIZE, out, why, why_len);
    if (r < 0)
        return r;
    *out_len = (size_t)e->uncompressed_size;
    return 0;
}

int toc_verify_blob_meta(CodecCtx *codec, const Toc *toc, const BlobInfo *blob, char *why, size_t why_len)
{
    const uint8_t *ci, *hdr;
    size_t ci_len;
    uint8_t d[32];
    int r = blob_meta_raw(blob, &ci, &ci_len, &hdr);
    if (r < 0)
        return why_fail(r, why, why_len, "the blob has no parsed blob meta");

    const struct rafs_ci_header_disk *h = (const void *)hdr;
    uint64_t ci_off = le64toh(h->s_ci_offset), ci_csize = le64toh(h->s_ci_compressed_size);
    const TocEntry *e = toc_find(toc, RAFS_TOC_NAME_BLOB_META);
    if (e) {
        if (e->compressed_offset != ci_off || e->compressed_size != ci_csize || e->uncompressed_size != ci_len)
            return BAD("TOC entry blob.meta: [%" PRIu64 ", +%" PRIu64 ") -> %" PRIu64 " disagrees with the blob meta header (%" PRIu64 ", +%" PRIu64 ") -> %zu",
                       e->compressed_offset, e->compressed_size, e->uncompressed_size, ci_off, ci_csize, ci_len);
        if (e->has_digest) {
            r = sha256(codec, ci, ci_len, d, "the ci table", why, why_len);
            if (r < 0)
                return r;
            if (memcmp(d, e->digest, 32))
                return BAD("TOC entry blob.meta: sha256 of the uncompressed ci table differs from the TOC's");
        }
    }
    e = toc_find(toc, RAFS_TOC_NAME_BLOB_META_HEADER);
    if (e) {
        if (e->compressed_offset != ci_off + ci_csize || e->uncompressed_size != RAFS_CI_HEADER_SIZE)
            return BAD("TOC entry blob.meta.header: at %" PRIu64 " size %" PRIu64 ", the header is at %" PRIu64 " size 4096",
                       e->compressed_offset, e->uncompressed_size, ci_off + ci_csize);
        if (e->has_digest) {
            r = sha256(codec, hdr, RAFS_CI_HEADER_SIZE, d, "the blob meta header", why, why_len);
            if (r < 0)
                return r;
            if (memcmp(d, e->digest, 32))
                return BAD("TOC entry blob.meta.header: sha256 of the blob meta header differs from the TOC's");
        }
    }
    return 0;
}
