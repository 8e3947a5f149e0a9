/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Opening a nydus data blob: everything the READ path needs before the first
 * chunk is fetched. The steps, each asynchronous (backend reads on the loop,
 * parsing and file I/O on a worker):
 *
 *   1. the object's size from the backend (also proves the blob exists), and
 *      for a SEPARATE blob (ZRan / tar-ref: the data blob is the original
 *      .tar.gz) the size of the meta blob RafsBlob.meta_blob_id as well;
 *   2. the chunk table: from `<work_dir>/<id>.blob.meta` when valid, else one
 *      ranged read of the ci table + header, parsed and saved (a table that
 *      no TOC recorded in the bootstrap vouches for is kept per backend
 *      source: see meta_cache_vouched() in nydus_blob.c);
 *   3. chunk digests, when the blob has a TOC with `blob.digest`: the tail,
 *      then that entry (both checked against the digests the image records);
 *   4. the finished table is validated (sorted, aligned, inside the blob),
 *      on the worker that parsed or loaded it.
 *
 * Steps 2 and 3 read the meta blob: the data blob itself, or for SEPARATE
 * blobs the object named meta_blob_id, through the same backend.
 *
 * done() runs once on the loop thread; on success req->blob is set and owned
 * by the caller. Errors carry a reason in req->why; it does
 * not name the blob (the front-end reporting it does, once).
 */
#pragma once

#include <stdbool.h>

#include "storage/backend/backend.h"
#include "storage/device/blob.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/util/workpool.h"

typedef struct NydusBlobOpen NydusBlobOpen;

struct NydusBlobOpen {
    /* inputs */
    Loop *loop;
    WorkPool *pool;
    Backend *backend;
    const char *backend_id;
    const RafsBlob *rb;
    const char *work_dir;           /* blob meta cache; NULL disables it */
    const char *source_tag;         /* names the backend in the cache of tables no TOC vouches for
                                     * (`<id>.<tag>.blob.meta`, [0-9a-z-]{1,32}); NULL: not cached */
    bool want_digests;              /* load chunk digests from the TOC when present */
    void (*done)(NydusBlobOpen *req, int res);

    /* outputs */
    BlobInfo *blob;
    uint64_t object_size;           /* the data blob */
    uint64_t meta_object_size;      /* the object holding the ci table and TOC */
    bool meta_from_cache;
    bool meta_cache_stale;          /* the cached table failed its TOC check: refetch */
    bool have_digests;
    char why[256];

    /* private */
    int step, res;
    BackendRequest breq;
    WorkItem work;
    uint8_t *buf;
    uint64_t buf_off, buf_len;
    void *toc;
};

void nydus_blob_open(NydusBlobOpen *req);
