/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* gzip checkpointing reader for targz-ref images (see zran.h). */
#include "zran.h"

#include <endian.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "uapi/rafs.h"

#define IN_BUF_SIZE (64u << 10)
#define WINDOW_SIZE RAFS_ZRAN_MAX_DICT_SIZE     /* 32 KiB, deflate's history */

/* A deflate block boundary: where raw inflate can resume. */
typedef struct Point {
    uint64_t in, out;
    uint8_t bits, byte;             /* pending bits of the byte before `in` (high bits of byte) */
    uint32_t member;
    uint32_t dict_len;
    uint8_t dict[WINDOW_SIZE];
} Point;

typedef struct Ctx {
    uint64_t in, out;
    uint64_t in_len, out_len;
    uint8_t bits, byte;
    uint32_t member;
    uint64_t dict_off;
    uint32_t dict_len;
} Ctx;

struct MkZran {
    int fd;
    char *name;
    z_stream zs;
    bool zs_init;
    uint8_t *in;
    uint64_t fed;                   /* bytes read from the file (and hashed) */
    uint64_t out;                   /* bytes of decompressed output */
    EVP_MD_CTX *sha;
    uint32_t member;                /* index of the current gzip member */
    bool member_ended;              /* Z_STREAM_END seen, next member not started */
    bool eof;                       /* no more members */
    uint8_t last_byte;              /* the most recently consumed input byte */

    Point *last;                    /* latest block boundary */
    bool have_last;
    Point *pending;                 /* where the chunk being read would start a context */
    bool pending_new;
    uint64_t chunk_in, chunk_out;
    bool in_chunk;

    Ctx *ctx;
    uint32_t nctx, ctx_cap;
    int64_t cur;                    /* context of the last committed chunk, -1 = none */
    uint8_t *dicts;
    size_t dicts_len, dicts_cap;
};

static uint64_t in_pos(const MkZran *z) { return z->fed - z->zs.avail_in; }

static int bad(MkZran *z, const char *what)
{
    mk_err("%s: %s (at gzip byte %llu)", z->name, what, (unsigned long long)in_pos(z));
    return -EBADMSG;
}

/* Refill the input buffer; 0 at end of file. */
static ssize_t refill(MkZran *z)
{
    ssize_t n;
    do
        n = read(z->fd, z->in, IN_BUF_SIZE);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int r = -errno;
        mk_err("%s: %s", z->name, strerror(-r));
        return r;
    }
    if (n > 0 && EVP_DigestUpdate(z->sha, z->in, (size_t)n) != 1)
        return -EIO;
    z->fed += (uint64_t)n;
    z->zs.next_in = z->in;
    z->zs.avail_in = (uInt)n;
    return n;
}

/*
 * One inflate(Z_BLOCK) step: counts the output, remembers the last consumed
 * byte and the block boundary it stopped at, if any.
 */
static int step(MkZran *z, int *zr)
{
    const uint8_t *before = z->zs.next_in;
    uInt avail_out = z->zs.avail_out;
    *zr = inflate(&z->zs, Z_BLOCK);
    z->out += avail_out - z->zs.avail_out;
    if (z->zs.next_in != before)
        z->last_byte = z->zs.next_in[-1];
    if (*zr != Z_OK && *zr != Z_STREAM_END && *zr != Z_BUF_ERROR) {
        mk_err("%s: not gzip data or corrupt: %s (at byte %llu)", z->name,
               z->zs.msg ? z->zs.msg : "inflate failed", (unsigned long long)in_pos(z));
        return -EBADMSG;
    }
    /* 128: stopped at a block boundary (or after the header); 64: in the last block. */
    if (*zr == Z_OK && (z->zs.data_type & 128) && !(z->zs.data_type & 64)) {
        Point *p = z->last;
        p->in = in_pos(z);
        p->out = z->out;
        p->bits = (uint8_t)(z->zs.data_type & 7);
        p->byte = p->bits ? z->last_byte : 0;
        p->member = z->member;
        uInt len = 0;
        if (inflateGetDictionary(&z->zs, p->dict, &len) != Z_OK || len > WINDOW_SIZE)
            return bad(z, "cannot read the inflate window");
        p->dict_len = len;
        z->have_last = true;
    }
    return 0;
}

/*
 * Start the next gzip member: parse its header so that its first block
 * boundary is known before any of its output is read. Zero bytes after the
 * last member are accepted as padding (and hashed: they are part of the blob).
 */
static int start_member(MkZran *z, bool first)
{
    if (!z->zs.avail_in) {
        ssize_t n = refill(z);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            if (first)
                return bad(z, "empty file");
            z->eof = true;
            return 0;
        }
    }
    if (!first && z->zs.next_in[0] == 0) {
        for (;;) {
            for (uInt i = 0; i < z->zs.avail_in; i++)
                if (z->zs.next_in[i])
                    return bad(z, "garbage after the last gzip member");
            z->zs.avail_in = 0;
            ssize_t n = refill(z);
            if (n < 0)
                return (int)n;
            if (n == 0)
                break;
        }
        z->eof = true;
        return 0;
    }
    if (!first) {
        if (inflateReset(&z->zs) != Z_OK)
            return -EIO;
        z->member++;
    }
    uint8_t dummy;
    for (;;) {
        z->zs.next_out = &dummy;
        z->zs.avail_out = 0;
        int zr, r = step(z, &zr);
        if (r < 0)
            return r;
        if (zr == Z_STREAM_END)
            return bad(z, "empty gzip member");
        if (z->have_last && z->last->member == z->member && z->last->out == z->out &&
            (z->zs.data_type & 128))
            break;
        if (!z->zs.avail_in) {
            ssize_t n = refill(z);
            if (n < 0)
                return (int)n;
            if (n == 0)
                return bad(z, "truncated gzip header");
        }
    }
    z->member_ended = false;
    return 0;
}

int mk_zran_new(MkZran **ret, int fd, const char *name)
{
    MkZran *z = calloc(1, sizeof(*z));
    if (!z)
        return -ENOMEM;
    z->fd = fd;
    z->cur = -1;
    z->name = strdup(name);
    z->in = malloc(IN_BUF_SIZE);
    z->last = malloc(sizeof(*z->last));
    z->pending = malloc(sizeof(*z->pending));
    z->sha = EVP_MD_CTX_new();
    if (!z->name || !z->in || !z->last || !z->pending || !z->sha ||
        EVP_DigestInit_ex(z->sha, EVP_sha256(), NULL) != 1) {
        mk_zran_free(z);
        return -ENOMEM;
    }
    /* 16 + 15: gzip wrapper (checks each member's crc and size), 32 KiB window. */
    if (inflateInit2(&z->zs, 16 + 15) != Z_OK) {
        mk_zran_free(z);
        return -ENOMEM;
    }
    z->zs_init = true;
    int r = start_member(z, true);
    if (r < 0) {
        mk_zran_free(z);
        return r;
    }
    *ret = z;
    return 0;
}

MkZran *mk_zran_free(MkZran *z)
{
    if (!z)
        return NULL;
    if (z->zs_init)
        inflateEnd(&z->zs);
    EVP_MD_CTX_free(z->sha);
    free(z->name);
    free(z->in);
    free(z->last);
    free(z->pending);
    free(z->ctx);
    free(z->dicts);
    free(z);
    return NULL;
}

ssize_t mk_zran_read(MkZran *z, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len && !z->eof) {
        int r;
        if (z->member_ended) {
            if ((r = start_member(z, false)) < 0)
                return r;
            continue;
        }
        if (!z->zs.avail_in) {
            ssize_t n = refill(z);
            if (n < 0)
                return n;
            if (n == 0)
                return bad(z, "truncated gzip stream");
        }
        size_t want = CFN_MIN(len - done, (size_t)UINT32_MAX);
        z->zs.next_out = (uint8_t *)buf + done;
        z->zs.avail_out = (uInt)want;
        int zr;
        r = step(z, &zr);
        size_t got = want - z->zs.avail_out;
        done += got;
        if (r < 0)
            return r;
        if (zr == Z_STREAM_END)
            z->member_ended = true;
        else if (zr == Z_BUF_ERROR && z->zs.avail_in && !got)
            return bad(z, "inflate made no progress");
    }
    return (ssize_t)done;
}

int mk_zran_begin_chunk(MkZran *z, uint32_t len)
{
    /* A chunk that starts exactly at the end of a member belongs to the next one. */
    if (z->member_ended && !z->eof) {
        int r = start_member(z, false);
        if (r < 0)
            return r;
    }
    z->chunk_in = in_pos(z);
    z->chunk_out = z->out;
    z->in_chunk = true;
    z->pending_new = false;

    bool need = z->cur < 0;
    if (!need) {
        const Ctx *c = &z->ctx[z->cur];
        need = c->member != z->member || z->chunk_in - c->in >= MK_ZRAN_SPAN_IN ||
               z->chunk_out + len - c->out > MK_ZRAN_SPAN_OUT;
        /* No boundary since the current context began: keep it. */
        if (need && c->member == z->member && z->have_last && z->last->in == c->in)
            need = false;
    }
    if (need) {
        if (!z->have_last || z->last->member != z->member)
            return bad(z, "no deflate block boundary before a chunk");
        /* Copied now: more boundaries may pass while the chunk is read. */
        memcpy(z->pending, z->last, offsetof(Point, dict) + z->last->dict_len);
        z->pending_new = true;
    }
    return 0;
}

static int push_ctx(MkZran *z, const Point *p)
{
    if (z->nctx >= (1u << 24))
        return bad(z, "too many zran contexts");
    if (z->nctx == z->ctx_cap) {
        uint32_t cap = z->ctx_cap ? z->ctx_cap * 2 : 64;
        Ctx *n = realloc(z->ctx, (size_t)cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        z->ctx = n;
        z->ctx_cap = cap;
    }
    if (z->dicts_len + p->dict_len > z->dicts_cap) {
        size_t cap = CFN_MAX(z->dicts_cap * 2, z->dicts_len + p->dict_len + (256u << 10));
        uint8_t *n = realloc(z->dicts, cap);
        if (!n)
            return -ENOMEM;
        z->dicts = n;
        z->dicts_cap = cap;
    }
    if (p->dict_len)        /* the first context has no window (and dicts may still be NULL) */
        memcpy(z->dicts + z->dicts_len, p->dict, p->dict_len);
    z->ctx[z->nctx] = (Ctx){ .in = p->in, .out = p->out, .bits = p->bits, .byte = p->byte,
                             .member = p->member, .dict_off = z->dicts_len, .dict_len = p->dict_len };
    z->dicts_len += p->dict_len;
    z->cur = z->nctx++;
    return 0;
}

int mk_zran_end_chunk(MkZran *z, MkRefChunk *out)
{
    if (!z->in_chunk)
        return -EINVAL;
    z->in_chunk = false;
    /* A chunk may run on into the next gzip members (bgzip, concatenated .gz files): its
     * context then spans them, and the daemon skips trailer and header as nydus does. */
    int r;
    if (z->pending_new && (r = push_ctx(z, z->pending)) < 0)
        return r;
    Ctx *c = &z->ctx[z->cur];
    uint64_t in_end = in_pos(z);
    /* At least one input byte: nydusd rejects empty contexts; an extra byte is harmless. */
    uint64_t in_len = CFN_MAX(in_end - c->in, (uint64_t)1);
    uint64_t out_len = z->out - c->out;
    if (in_len > UINT32_MAX || out_len > UINT32_MAX)
        return bad(z, "a zran context would exceed 4 GiB");
    c->in_len = CFN_MAX(c->in_len, in_len);
    c->out_len = CFN_MAX(c->out_len, out_len);
    /* The chunk's own compressed span (in_len <= the context's, so it fits 32 bits). */
    *out = (MkRefChunk){ .in_offset = z->chunk_in, .in_len = (uint32_t)(in_end - z->chunk_in),
                         .ctx_index = (uint32_t)z->cur, .ctx_offset = (uint32_t)(z->chunk_out - c->out) };
    return 0;
}

int mk_zran_finish(MkZran *z, uint64_t *size, char id[MK_BLOB_ID_LEN + 1], uint8_t **ctx,
                   size_t *ctx_len, uint32_t *count)
{
    /* Drain: the tar's end-of-archive padding, the trailers, later members. */
    uint8_t *sink = malloc(IN_BUF_SIZE);
    if (!sink)
        return -ENOMEM;
    ssize_t n;
    while ((n = mk_zran_read(z, sink, IN_BUF_SIZE)) > 0)
        ;
    free(sink);
    if (n < 0)
        return (int)n;
    if (!z->eof)
        return bad(z, "unexpected end of the gzip stream");

    uint8_t d[32];
    unsigned dl = 32;
    if (EVP_DigestFinal_ex(z->sha, d, &dl) != 1)
        return -EIO;
    for (unsigned i = 0; i < 32; i++)
        snprintf(id + 2 * i, 3, "%02x", d[i]);
    *size = z->fed;

    size_t table = (size_t)z->nctx * sizeof(struct rafs_zran_ctx_disk);
    uint8_t *buf = malloc(table + z->dicts_len + 1);
    if (!buf)
        return -ENOMEM;
    for (uint32_t i = 0; i < z->nctx; i++) {
        const Ctx *c = &z->ctx[i];
        struct rafs_zran_ctx_disk e = {
            .in_offset = htole64(c->in),
            .out_offset = htole64(c->out),
            .dict_offset = htole64(c->dict_off),
            .in_len = htole32((uint32_t)c->in_len),
            .out_len = htole32((uint32_t)c->out_len),
            .dict_size = htole32(c->dict_len),
            .ctx_byte = c->byte,
            .ctx_bits = c->bits,
        };
        memcpy(buf + (size_t)i * sizeof(e), &e, sizeof(e));
    }
    if (z->dicts_len)
        memcpy(buf + table, z->dicts, z->dicts_len);
    *ctx = buf;
    *ctx_len = table + z->dicts_len;
    *count = z->nctx;
    return 0;
}
