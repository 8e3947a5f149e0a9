/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The images the daemon serves, and the answer to a kernel OPEN: which blob
 * a (volume key, cookie key) pair names, where its bytes come from and how
 * large its cache file is.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "storage/backend/backend.h"
#include "storage/device/blob.h"
#include "storage/device/nydus_blob.h"
#include "storage/util/workpool.h"
#include "storage/util/loop.h"
#include "storage/util/seg_array.h"
#include "uapi/erofs.h"

typedef struct ImageRegistry ImageRegistry;

enum blob_role { BLOB_ROLE_BOOTSTRAP, BLOB_ROLE_DATA };

typedef struct BlobSource {
    enum blob_role role;
    const ImageConfig *image;
    Backend *backend;
    const char *backend_id;         /* name the backend knows the blob by */
    uint64_t declared_size;         /* size the image declares, 0 when unknown */
    bool prefill;                   /* write the whole blob right after OPEN */
    bool prefetch;                  /* fill the whole blob in the background (images[].prefetch) */
    const RafsBlob *rafs_blob;      /* a nydus data blob: chunk table from its blob meta */
} BlobSource;

/*
 * Describe the blob a BlobSource names: its size and chunk table. Raw blobs
 * get uniform chunks; nydus blobs get the table from their blob meta. Sizes
 * above max_blob_size are refused (-EFBIG); a raw blob shorter than declared
 * gets chunks only for what its object holds (BlobInfo.cut). The
 * request's done() runs later on the loop thread exactly once; on success
 * req->blob is set and owned by the caller.
 */
typedef struct BlobOpenRequest BlobOpenRequest;
struct BlobOpenRequest {
    BlobSource src;
    void (*done)(BlobOpenRequest *req, int res);
    bool scan_cache;                /* also scan cache_fd for chunks already there (on a worker) */
    int cache_fd;
    BlobInfo *blob;
    char why[256];
    SegArray ready;                 /* with scan_cache: 1 per chunk present; the caller clears it */
    int ready_count;                /* chunks present, or -1 when not scanned */

    /* private */
    ImageRegistry *reg;
    BackendRequest breq;
    NydusBlobOpen nydus;
    WorkItem work;                  /* a raw blob's chunk table is built on a worker */
    uint64_t size, object_size;
    int res;
};
void image_registry_open_blob(ImageRegistry *reg, BlobOpenRequest *req);

/*
 * Reads every image's superblock and device table. An image that cannot be
 * set up (or whose setup_errors[i] is set: a reason found earlier; the
 * array may be NULL) is logged and kept as not served, with its
 * reason, so that the others still are. Fails only for lack of memory.
 */
int image_registry_new(ImageRegistry **ret, const Config *cfg, Loop *loop, WorkPool *pool, char **setup_errors,
                       char *err, size_t err_len);

/*
 * Where an image's blobs come from, as a short file name part ("src-" and 16
 * hex digits): what is cached in work_dir from a blob that nothing else
 * vouches for (chunk tables without a TOC, bootstraps taken out of blobs) is
 * kept per source, so that an image cannot hand another one, with another
 * backend, its copy for the same blob id. Hashes the fields that select the
 * objects (localfs dir, or scheme/host/repo/endpoint/bucket/prefix/...);
 * never credentials. `boot_dir` stands in for a localfs backend without dir.
 */
#define IMAGE_SOURCE_TAG_SIZE 24
void image_source_tag(const ImageConfig *ic, const char *boot_dir, char out[IMAGE_SOURCE_TAG_SIZE]);

/* Why image `fsid` is not served, or NULL (served, or not configured). */
const char *image_registry_error(const ImageRegistry *reg, const char *fsid);

/* "image FSID not served: REASON" lines for `status`; returns the length written. */
size_t image_registry_render_errors(const ImageRegistry *reg, char *out, size_t len);

/* Shutdown: every backend transfer in flight ends with -ECANCELED (backend_cancel()). */
void image_registry_cancel(ImageRegistry *reg);
ImageRegistry *image_registry_free(ImageRegistry *reg);

/*
 * Serve the data blobs of image `fsid` from `backend` instead (ownership
 * taken; the old one is freed). Used by tests to inject faults.
 */
int image_registry_replace_blob_backend(ImageRegistry *reg, const char *fsid, Backend *backend);

/*
 * Resolve an OPEN. volume_key is "erofs,<domain_id or fsid>", cookie_key is
 * the fsid (bootstrap) or a data blob's device tag or device= name.
 * Returns 0, -ENOENT with the reason in why, or -EIO for an image that is
 * not served (why says why).
 */
int image_registry_lookup(ImageRegistry *reg, const char *volume_key, const char *cookie_key,
                          BlobSource *out, char *why, size_t why_len);
