/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Filling one blob's cache file: the READ path of ARCHITECTURE.md.
 *
 * A FillRequest asks for [off, off+len) of the blob's uncompressed address
 * space. The range is mapped to chunks and widened to the read window;
 * chunks already in the file are skipped, chunks being fetched are waited
 * for (never fetched twice), and contiguous missing chunks are merged into
 * few backend reads. Workers decompress, verify and write each chunk at its
 * uncompressed offset, padded to 4 KiB. BATCH and ZRAN chunks are fetched
 * and decoded per batch / zran context (chunk_group.h): a READ that needs one
 * member fetches the whole group once, every member becomes ready together,
 * and corrupt contexts or data fail the reads needing them with -EIO (a warning
 * names the blob, chunks and reason). done() runs once on the loop thread
 * when every chunk of the request's own range is written, or with -errno.
 *
 * Nothing here knows about the kernel interface: the front-end hands over a
 * writable fd for the cache file and turns done() into its own reply.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "storage/backend/backend.h"
#include "storage/device/blob.h"
#include "storage/util/loop.h"
#include "storage/util/seg_array.h"
#include "storage/util/workpool.h"

typedef struct CacheService CacheService;
typedef struct BlobCache BlobCache;
typedef struct FillRequest FillRequest;

typedef struct CacheServiceConfig {
    uint32_t read_window;           /* widen fills to aligned windows (bytes, 4 KiB multiple) */
    uint32_t merge_limit;           /* largest single backend read (bytes) */
    uint64_t max_inflight_bytes;    /* buffer memory held by fetches in flight */
    bool verify;                    /* check chunk digests and crcs when the image has them */
} CacheServiceConfig;

typedef struct CacheStats {
    uint64_t fills;                 /* FillRequests received */
    uint64_t fetches;               /* backend reads issued */
    uint64_t chunks_written;
    uint64_t bytes_fetched;         /* compressed bytes from backends */
    uint64_t bytes_written;         /* uncompressed bytes into cache files */
    uint64_t chunk_errors;
} CacheStats;

struct FillRequest {
    uint64_t off, len;
    void (*done)(FillRequest *req, int res);
    char why[192];                  /* set with a failure: blob, chunk and reason */

    /* private to blob_cache */
    BlobCache *cache;
    uint32_t waiting;
    int error;
    LoopTimer defer;
};

/* Work-pool hooks that give each worker its codec context and scratch buffer. */
extern const WorkPoolHooks cache_worker_hooks;

int cache_service_new(CacheService **ret, Loop *loop, WorkPool *pool, const CacheServiceConfig *cfg);
CacheService *cache_service_free(CacheService *svc);
CacheStats cache_service_stats(const CacheService *svc);

/*
 * A cache for `blob` (ownership taken, freed with the cache), fetched from
 * `backend` under the name `backend_id`, written through `cache_fd` (not
 * owned: the front-end closes it after release).
 */
int blob_cache_new(BlobCache **ret, CacheService *svc, BlobInfo *blob, Backend *backend,
                   const char *backend_id, int cache_fd);
const BlobInfo *blob_cache_blob(const BlobCache *bc);

/* Start a fill; req->done runs later on the loop, exactly once. */
void blob_cache_fill(BlobCache *bc, FillRequest *req);

/*
 * Stop: no new writes start. released(arg) runs on the loop once no fetch of
 * this cache is in flight; the cache is freed right after it returns.
 */
void blob_cache_close(BlobCache *bc, void (*released)(void *arg), void *arg);

/*
 * Take `ready` (1 per chunk present, e.g. from cache_file_scan_ready() on a
 * worker; `count` of them) as what the file holds, instead of scanning it
 * on the loop thread at the first fill. Only before the first fill.
 */
int blob_cache_adopt_ready(BlobCache *bc, const SegArray *ready, uint32_t count);

/*
 * Whether a backend read of this cache is still in flight: a fill's read
 * window may fetch chunks nobody waits for, so no fill outstanding does not
 * mean no fetch. Shutdown waits for this before it frees anything.
 */
bool blob_cache_busy(const BlobCache *bc);

/* Chunks known to be in the cache file. */
uint32_t blob_cache_ready_chunks(const BlobCache *bc);

/*
 * Whether a fill of [off, end) would fetch anything: some chunk there is
 * neither written nor in flight (true before the first fill has scanned the
 * file). Lets read-ahead skip ranges that need nothing.
 */
bool blob_cache_range_missing(const BlobCache *bc, uint64_t off, uint64_t end);
