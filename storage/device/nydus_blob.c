/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "nydus_blob.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/device/blob_meta.h"
#include "storage/device/toc.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

/* The largest ranged read this step machine makes (ci tables, TOCs, digest arrays). */
#define NYDUS_META_READ_MAX (256u << 20)

enum step {
    STEP_SIZE,
    STEP_META_SIZE,         /* backend: size of a SEPARATE blob's meta blob */
    STEP_META_CACHE,        /* worker: try the local .blob.meta */
    STEP_META_READ,         /* backend: ci table + header */
    STEP_META_PARSE,        /* worker: parse, save to the cache */
    STEP_TOC_READ,          /* backend: blob tail */
    STEP_TOC_PARSE,         /* worker */
    STEP_DIGEST_READ,       /* backend: blob.digest entry */
    STEP_DIGEST_PARSE,      /* worker */
    STEP_DONE,
};

static void advance(NydusBlobOpen *req);

/* ZRan / tar-ref: the ci table and TOC live in their own object, meta_blob_id. */
static bool meta_separate(const NydusBlobOpen *req)
{
    return (req->rb->features & RAFS_BLOB_SEPARATE) && req->rb->meta_blob_id[0];
}

/* The backend name of the object metadata is read from. */
static const char *meta_object(const NydusBlobOpen *req)
{
    return meta_separate(req) ? req->rb->meta_blob_id : req->backend_id;
}

/*
 * Reasons do not name the blob: the front-end that reports them does, once.
 * They name the separate meta blob when that is the object concerned.
 */
static const char *object_note(const NydusBlobOpen *req, const char *object, char *buf, size_t len)
{
    if (strcmp(object, req->backend_id) == 0)
        return "";
    snprintf(buf, len, " (meta blob %.64s)", object);
    return buf;
}

static void finish(NydusBlobOpen *req, int res)
{
    free(req->buf);
    req->buf = NULL;
    if (req->toc) {
        toc_clear(req->toc);
        free(req->toc);
        req->toc = NULL;
    }
    if (res < 0)
        req->blob = blob_info_free(req->blob);
    req->done(req, res);
}

/* ---- backend reads ---- */

static void read_done(BackendRequest *breq, int res)
{
    NydusBlobOpen *req = cfn_container_of(breq, NydusBlobOpen, breq);
    char note[96];
    if (res < 0) {
        const char *obj = object_note(req, breq->blob_id, note, sizeof(note));
        if (req->step == STEP_SIZE || req->step == STEP_META_SIZE)
            snprintf(req->why, sizeof(req->why), "cannot size the object%s: %s", obj, strerror(-res));
        else
            snprintf(req->why, sizeof(req->why), "reading %" PRIu64 " bytes at %" PRIu64 "%s failed: %s",
                     req->buf_len, req->buf_off, obj, strerror(-res));
        finish(req, res);
        return;
    }
    if (req->step == STEP_SIZE)
        req->object_size = req->meta_object_size = breq->size;
    else if (req->step == STEP_META_SIZE)
        req->meta_object_size = breq->size;
    req->step++;
    advance(req);
}

static void start_read(NydusBlobOpen *req, uint64_t off, uint64_t len)
{
    char note[96];
    free(req->buf);
    req->buf = NULL;
    if (len == 0 || len > NYDUS_META_READ_MAX || off + len < off || off + len > req->meta_object_size) {
        snprintf(req->why, sizeof(req->why), "metadata range %" PRIu64 "+%" PRIu64 " lies outside the %" PRIu64
                 "-byte object%s", off, len, req->meta_object_size,
                 object_note(req, meta_object(req), note, sizeof(note)));
        finish(req, -EBADMSG);
        return;
    }
    req->buf = malloc(len);
    if (!req->buf) {
        finish(req, -ENOMEM);
        return;
    }
    req->buf_off = off;
    req->buf_len = len;
    req->breq = (BackendRequest){ .kind = BACKEND_READ, .blob_id = meta_object(req), .off = off,
                                  .len = (uint32_t)len, .buf = req->buf, .done = read_done, .fd = -1 };
    int r = backend_submit(req->backend, &req->breq);
    if (r < 0)
        read_done(&req->breq, r);
}

/* ---- the blob meta cache ---- */

/* Chunk digests come from the blob's TOC: it is read and checked. */
static bool toc_wanted(const NydusBlobOpen *req)
{
    return req->want_digests && req->rb->digester != BLOB_DIGEST_NONE && (req->rb->features & RAFS_BLOB_HAS_TOC);
}

/*
 * A blob id names the same bytes only by convention: another image may name
 * the same id with other bytes behind it (its own backend, `verify: false`).
 * So a cached chunk table is either
 *   - vouched for: `<id>.blob.meta` (nydusd's name), written only once
 *     checked against a TOC whose digest this image's bootstrap records, and
 *     used only by images that check it the same way (a mismatch: refetch);
 *   - or, for images without such a TOC, kept per source:
 *     `<id>.<source_tag>.blob.meta`, written from what this image's backend
 *     served, so no other source's bytes can stand in for it.
 */
static bool meta_cache_vouched(const NydusBlobOpen *req)
{
    return req->work_dir && toc_wanted(req) && req->rb->has_toc_digest;
}

static bool meta_cache_by_source(const NydusBlobOpen *req)
{
    return req->work_dir && req->source_tag && !meta_cache_vouched(req);
}

/* The TOC vouches for the whole ci table: its blob.meta entry carries a sha256. */
static bool toc_vouches_for_meta(const NydusBlobOpen *req, const Toc *toc)
{
    const TocEntry *e = toc_find(toc, "blob.meta");
    return req->rb->has_toc_digest && e && e->has_digest;
}

static void meta_cache_save(const NydusBlobOpen *req, const char *tag)
{
    /* Best effort: a read-only work dir costs a refetch next time, nothing more. */
    char why[200];
    mkdir(req->work_dir, 0700);
    blob_meta_cache_save_tagged(req->work_dir, tag, req->blob, why, sizeof(why));
}

/* Worker: parse and check the TOC; a cached table it does not vouch for is dropped (refetched). */
static int toc_parse_step(NydusBlobOpen *req, CodecCtx *codec, char *why, size_t why_len)
{
    Toc *toc = calloc(1, sizeof(*toc));
    if (!toc)
        return -ENOMEM;
    int r = toc_parse(codec, req->buf, req->buf_len, req->buf_off,
                      req->rb->has_toc_digest ? req->rb->toc_digest : NULL, toc, why, why_len);
    if (r == 0) {
        r = toc_verify_blob_meta(codec, toc, req->blob, why, why_len);
        bool vouched = r == 0 && toc_vouches_for_meta(req, toc);
        if (req->meta_from_cache && (r < 0 || (meta_cache_vouched(req) && !vouched))) {
            req->meta_cache_stale = true;
            r = 0;
        } else if (vouched && !req->meta_from_cache && meta_cache_vouched(req)) {
            meta_cache_save(req, NULL);
        }
    }
    if (r < 0 || req->meta_cache_stale) {
        toc_clear(toc);
        free(toc);
    } else {
        req->toc = toc;
    }
    return r;
}

/* ---- worker steps ---- */

/* The finished table, checked here on a worker: a blob may have millions of chunks. */
static int table_valid(const BlobInfo *blob, char *why, size_t why_len)
{
    char what[160];
    if (blob_info_validate(blob, what, sizeof(what)) < 0) {
        snprintf(why, why_len, "chunk table rejected: %s", what);
        return -EBADMSG;
    }
    return 0;
}

static void work_step(WorkItem *item, void *worker_ctx)
{
    NydusBlobOpen *req = cfn_container_of(item, NydusBlobOpen, work);
    CodecCtx *codec = NULL;
    char why[200] = "";
    int r = 0;

    switch (req->step) {
    case STEP_META_CACHE:
        if (meta_cache_vouched(req) || meta_cache_by_source(req))
            r = blob_meta_cache_load_tagged(req->work_dir, meta_cache_vouched(req) ? NULL : req->source_tag, req->rb,
                                            req->blob, why, sizeof(why));
        else
            r = -ENOENT;
        req->meta_from_cache = r == 0 && table_valid(req->blob, why, sizeof(why)) == 0;
        r = 0;      /* a missing or stale cache only means: fetch it */
        break;
    case STEP_META_PARSE:
        if ((r = codec_ctx_new(&codec)) < 0)
            break;
        r = blob_meta_parse(codec, req->rb, req->buf, req->buf_len, req->blob, why, sizeof(why));
        if (r == 0)
            r = table_valid(req->blob, why, sizeof(why));
        if (r == 0 && meta_cache_by_source(req))
            meta_cache_save(req, req->source_tag);
        break;
    case STEP_TOC_PARSE:
        if ((r = codec_ctx_new(&codec)) < 0)
            break;
        r = toc_parse_step(req, codec, why, sizeof(why));
        break;
    case STEP_DIGEST_PARSE:
        if ((r = codec_ctx_new(&codec)) < 0)
            break;
        r = toc_load_digests(codec, req->toc, req->buf, req->buf_len, req->blob, why, sizeof(why));
        req->have_digests = r == 0;
        break;
    }
    codec_ctx_free(codec);
    req->res = r;
    if (r < 0)
        snprintf(req->why, sizeof(req->why), "%.200s", why[0] ? why : strerror(-r));
}

static void work_done(WorkItem *item)
{
    NydusBlobOpen *req = cfn_container_of(item, NydusBlobOpen, work);
    if (req->res < 0) {
        finish(req, req->res);
        return;
    }
    if (req->step == STEP_META_CACHE && req->meta_from_cache) {
        req->step = STEP_TOC_READ;
    } else if (req->step == STEP_TOC_PARSE && req->meta_cache_stale) {
        log_warn("blob %.64s: the cached chunk table in %s does not match the blob's TOC; fetching it again",
                 req->rb->id, req->work_dir);
        req->meta_from_cache = req->meta_cache_stale = false;
        req->step = STEP_META_READ;
    } else
        req->step++;
    advance(req);
}

static void start_work(NydusBlobOpen *req)
{
    req->work.work = work_step;
    req->work.done = work_done;
    workpool_submit(req->pool, &req->work);
}

static void advance(NydusBlobOpen *req)
{
    uint64_t off, len;
    char why[200];

    switch (req->step) {
    case STEP_META_SIZE: {
        if (!meta_separate(req)) {
            req->step++;
            advance(req);
            return;
        }
        req->breq = (BackendRequest){ .kind = BACKEND_SIZE, .blob_id = meta_object(req), .done = read_done,
                                      .fd = -1 };
        int r = backend_submit(req->backend, &req->breq);
        if (r < 0)
            read_done(&req->breq, r);
        return;
    }
    case STEP_META_CACHE:
    case STEP_META_PARSE:
    case STEP_TOC_PARSE:
    case STEP_DIGEST_PARSE:
        start_work(req);
        return;
    case STEP_META_READ:
        if (blob_meta_range(req->rb, &off, &len, why, sizeof(why)) < 0) {
            snprintf(req->why, sizeof(req->why), "%.200s", why);
            finish(req, -EBADMSG);
            return;
        }
        start_read(req, off, len);
        return;
    case STEP_TOC_READ:
        /* Digests are optional: without a TOC the chunks are checked by length (and crc). */
        if (!toc_wanted(req)) {
            finish(req, 0);
            return;
        }
        if (toc_tail_range(req->rb, req->meta_object_size, &off, &len, why, sizeof(why)) < 0) {
            snprintf(req->why, sizeof(req->why), "%.200s", why);
            finish(req, -EBADMSG);
            return;
        }
        start_read(req, off, len);
        return;
    case STEP_DIGEST_READ: {
        const TocEntry *e = toc_find(req->toc, "blob.digest");
        if (!e) {
            finish(req, 0);
            return;
        }
        if (toc_entry_range(req->toc, e, &off, &len, why, sizeof(why)) < 0) {
            snprintf(req->why, sizeof(req->why), "%.200s", why);
            finish(req, -EBADMSG);
            return;
        }
        start_read(req, off, len);
        return;
    }
    case STEP_DONE:
        finish(req, 0);
        return;
    }
}

void nydus_blob_open(NydusBlobOpen *req)
{
    req->blob = NULL;
    req->buf = NULL;
    req->toc = NULL;
    req->why[0] = '\0';
    req->meta_from_cache = req->meta_cache_stale = req->have_digests = false;
    req->step = STEP_SIZE;
    int r = rafs_bootstrap_blob_info(req->rb, &req->blob);
    if (r < 0) {
        snprintf(req->why, sizeof(req->why), "%s", strerror(-r));
    }
    req->breq = (BackendRequest){ .kind = BACKEND_SIZE, .blob_id = req->backend_id, .done = read_done, .fd = -1 };
    r = r < 0 ? r : backend_submit(req->backend, &req->breq);
    if (r < 0)
        read_done(&req->breq, r);
}
