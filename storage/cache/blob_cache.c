/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "blob_cache.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cache_file.h"
#include "storage/codec/codec.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

/* CHUNK_READY is 1 so that cache_file_scan_ready() can mark the state array directly. */
enum chunk_state { CHUNK_MISSING = 0, CHUNK_READY = 1, CHUNK_INFLIGHT = 2 };

typedef struct Fetch Fetch;
typedef struct Waiter Waiter;

/* A request waiting for the chunks [lo, hi] of one fetch. */
struct Waiter {
    FillRequest *req;
    uint32_t lo, hi;
    Waiter *next;
};

/* One backend read covering chunks [first, last], contiguous in the blob. */
struct Fetch {
    BlobCache *bc;
    uint32_t first, last;
    uint64_t coff;
    uint32_t clen;
    void *buf;
    BackendRequest breq;
    WorkItem work;
    Waiter *waiters;
    Fetch *next_queued;
    int result;                     /* backend result, then first chunk error */
    char why[160];
    int chunk_res[];                /* per chunk, set by the worker */
};

struct CacheService {
    Loop *loop;
    WorkPool *pool;
    CacheServiceConfig cfg;
    uint64_t inflight_bytes;
    Fetch *queue_head, *queue_tail;     /* fetches waiting for buffer budget */
    CacheStats stats;
};

struct BlobCache {
    CacheService *svc;
    BlobInfo *blob;
    Backend *backend;
    char *backend_id;
    int fd;
    bool scanned;
    atomic_bool closed;
    uint32_t inflight_fetches;
    uint32_t ready_chunks;
    uint8_t *state;
    Fetch **inflight;
    void (*released)(void *arg);
    void *released_arg;
};

/* ---- worker side ---- */

typedef struct WorkerCtx {
    CodecCtx *codec;
    void *scratch;
    size_t scratch_size;
} WorkerCtx;

static void *worker_ctx_new(void *arg)
{
    WorkerCtx *w = calloc(1, sizeof(*w));
    if (w && codec_ctx_new(&w->codec) < 0) {
        free(w);
        w = NULL;
    }
    return w;
}

static void worker_ctx_free(void *p)
{
    WorkerCtx *w = p;
    if (!w)
        return;
    codec_ctx_free(w->codec);
    free(w->scratch);
    free(w);
}

const WorkPoolHooks cache_worker_hooks = { .ctx_new = worker_ctx_new, .ctx_free = worker_ctx_free };

static void *worker_scratch(WorkerCtx *w, size_t size)
{
    size = cfn_align_up(size, CFN_PAGE_SIZE);
    if (w->scratch_size < size) {
        free(w->scratch);
        w->scratch = cache_buf_alloc(size);
        w->scratch_size = w->scratch ? size : 0;
    }
    return w->scratch;
}

static int verify_chunk(BlobCache *bc, WorkerCtx *w, uint32_t i, const void *data, char *why, size_t why_len)
{
    const BlobInfo *blob = bc->blob;
    const BlobChunkInfo *c = &blob->chunks[i];
    if (!bc->svc->cfg.verify)
        return 0;
    if (c->flags & BLOB_CHUNK_HAS_CRC32) {
        uint32_t crc = codec_crc32c(0, data, c->uncompressed_size);
        if (crc != c->crc32) {
            snprintf(why, why_len, "crc32c mismatch (got %08x, want %08x)", crc, c->crc32);
            return -EBADMSG;
        }
    }
    if (blob->digests && blob->digester != BLOB_DIGEST_NONE) {
        uint8_t d[BLOB_DIGEST_SIZE];
        int r = codec_digest(w->codec, blob->digester, data, c->uncompressed_size, d);
        if (r < 0) {
            snprintf(why, why_len, "%s digest failed", blob_digester_name(blob->digester));
            return r;
        }
        if (memcmp(d, blob->digests[i], BLOB_DIGEST_SIZE) != 0) {
            snprintf(why, why_len, "%s digest mismatch", blob_digester_name(blob->digester));
            return -EBADMSG;
        }
    }
    return 0;
}

/* Uncompressed chunks laid out identically in both address spaces go out in one write. */
static bool fetch_is_plain_run(const BlobCache *bc, const Fetch *f)
{
    const BlobChunkInfo *first = &bc->blob->chunks[f->first];
    for (uint32_t i = f->first; i <= f->last; i++) {
        const BlobChunkInfo *c = &bc->blob->chunks[i];
        if (c->flags & (BLOB_CHUNK_COMPRESSED | BLOB_CHUNK_BATCH | BLOB_CHUNK_ZRAN | BLOB_CHUNK_ENCRYPTED))
            return false;
        if (c->uncompressed_offset - first->uncompressed_offset != c->compressed_offset - f->coff)
            return false;
        if (i != f->last && c->uncompressed_size % CFN_PAGE_SIZE)
            return false;
    }
    return first->uncompressed_offset % CFN_PAGE_SIZE == 0;
}

static void fetch_work(WorkItem *item, void *ctx)
{
    Fetch *f = cfn_container_of(item, Fetch, work);
    BlobCache *bc = f->bc;
    WorkerCtx *w = ctx;
    const BlobInfo *blob = bc->blob;

    for (uint32_t i = f->first; i <= f->last; i++)
        f->chunk_res[i - f->first] = -EIO;
    if (!w) {
        snprintf(f->why, sizeof(f->why), "worker has no codec context");
        return;
    }

    if (fetch_is_plain_run(bc, f)) {
        int r = 0;
        for (uint32_t i = f->first; i <= f->last && r == 0; i++) {
            const BlobChunkInfo *c = &blob->chunks[i];
            char why[128];
            r = verify_chunk(bc, w, i, (uint8_t *)f->buf + (c->compressed_offset - f->coff), why, sizeof(why));
            if (r < 0)
                snprintf(f->why, sizeof(f->why), "chunk %u: %s", i, why);
        }
        if (r == 0 && !atomic_load(&bc->closed)) {
            r = cache_file_write(bc->fd, f->buf, cfn_align_up(f->clen, CFN_PAGE_SIZE),
                                 blob->chunks[f->first].uncompressed_offset);
            if (r < 0)
                snprintf(f->why, sizeof(f->why), "chunks %u-%u: cache write failed: %s", f->first,
                         f->last, strerror(-r));
        } else if (r == 0) {
            r = -ESHUTDOWN;
        }
        for (uint32_t i = f->first; i <= f->last; i++)
            f->chunk_res[i - f->first] = r;
        return;
    }

    for (uint32_t i = f->first; i <= f->last; i++) {
        const BlobChunkInfo *c = &blob->chunks[i];
        int *res = &f->chunk_res[i - f->first];
        char why[128] = "";
        size_t padded = cfn_align_up(c->uncompressed_size, CFN_PAGE_SIZE);
        uint8_t *out = worker_scratch(w, padded);
        if (!out) {
            *res = -ENOMEM;
            snprintf(why, sizeof(why), "no memory for a %zu-byte chunk", padded);
        } else if (c->flags & (BLOB_CHUNK_BATCH | BLOB_CHUNK_ZRAN | BLOB_CHUNK_ENCRYPTED)) {
            *res = -ENOTSUP;
            snprintf(why, sizeof(why), "batch, zran and encrypted chunks are not supported yet");
        } else {
            const uint8_t *src = (uint8_t *)f->buf + (c->compressed_offset - f->coff);
            enum blob_compressor comp = (c->flags & BLOB_CHUNK_COMPRESSED) ? blob->compressor : BLOB_COMP_NONE;
            *res = codec_decompress(w->codec, comp, src, c->compressed_size, out, c->uncompressed_size);
            if (*res < 0)
                snprintf(why, sizeof(why), "%s decompression failed: %s", blob_compressor_name(comp),
                         strerror(-*res));
            else
                *res = verify_chunk(bc, w, i, out, why, sizeof(why));
        }
        if (*res == 0) {
            memset(out + c->uncompressed_size, 0, padded - c->uncompressed_size);
            if (atomic_load(&bc->closed)) {
                *res = -ESHUTDOWN;
            } else {
                *res = cache_file_write(bc->fd, out, padded, c->uncompressed_offset);
                if (*res < 0)
                    snprintf(why, sizeof(why), "cache write failed: %s", strerror(-*res));
            }
        }
        if (*res < 0 && !f->why[0] && why[0])
            snprintf(f->why, sizeof(f->why), "chunk %u: %s", i, why);
    }
}

/* ---- loop side ---- */

static void fetch_start(CacheService *svc, Fetch *f);
static void cache_service_drain(CacheService *svc);

static void request_finish(FillRequest *req)
{
    req->done(req, req->error);
}

static void request_defer_fire(LoopTimer *t)
{
    request_finish(cfn_container_of(t, FillRequest, defer));
}

/* Complete from a fresh loop turn so done() never runs inside blob_cache_fill(). */
static void request_defer(BlobCache *bc, FillRequest *req, int error)
{
    req->error = error;
    loop_timer_init(&req->defer, request_defer_fire);
    loop_timer_arm(bc->svc->loop, &req->defer, 0);
}

static void request_fail_why(FillRequest *req, const BlobCache *bc, const char *what)
{
    if (!req->why[0])
        snprintf(req->why, sizeof(req->why), "blob %.64s: %.120s", bc->blob->id, what);
}

static void blob_cache_maybe_release(BlobCache *bc)
{
    if (!atomic_load(&bc->closed) || bc->inflight_fetches || !bc->released)
        return;
    void (*released)(void *) = bc->released;
    bc->released = NULL;
    released(bc->released_arg);
    blob_info_free(bc->blob);
    free(bc->backend_id);
    free(bc->state);
    free(bc->inflight);
    free(bc);
}

static void fetch_finish(Fetch *f)
{
    BlobCache *bc = f->bc;
    CacheService *svc = bc->svc;

    for (uint32_t i = f->first; i <= f->last; i++) {
        int r = f->result < 0 ? f->result : f->chunk_res[i - f->first];
        bc->inflight[i] = NULL;
        if (r == 0) {
            bc->state[i] = CHUNK_READY;
            bc->ready_chunks++;
            svc->stats.chunks_written++;
            svc->stats.bytes_written += bc->blob->chunks[i].uncompressed_size;
        } else {
            bc->state[i] = CHUNK_MISSING;   /* a later request may try again */
            svc->stats.chunk_errors++;
        }
    }
    while (f->waiters) {
        Waiter *wt = f->waiters;
        f->waiters = wt->next;
        FillRequest *req = wt->req;
        for (uint32_t i = wt->lo; i <= wt->hi; i++) {
            int r = f->result < 0 ? f->result : f->chunk_res[i - f->first];
            if (r < 0) {
                if (!req->error)
                    req->error = r;
                request_fail_why(req, bc, f->why[0] ? f->why : strerror(-r));
                break;
            }
        }
        free(wt);
        if (--req->waiting == 0)
            request_finish(req);
    }

    svc->inflight_bytes -= f->clen;
    bc->inflight_fetches--;
    free(f->buf);
    free(f);

    /* Release before draining: a drained fetch may be this cache's last. */
    blob_cache_maybe_release(bc);
    cache_service_drain(svc);
}

/* Budget freed: start what was queued behind it. */
static void cache_service_drain(CacheService *svc)
{
    while (svc->queue_head &&
           (svc->inflight_bytes == 0 ||
            svc->inflight_bytes + svc->queue_head->clen <= svc->cfg.max_inflight_bytes)) {
        Fetch *next = svc->queue_head;
        svc->queue_head = next->next_queued;
        if (!svc->queue_head)
            svc->queue_tail = NULL;
        fetch_start(svc, next);
    }
}

static void fetch_work_done(WorkItem *item)
{
    fetch_finish(cfn_container_of(item, Fetch, work));
}

static void fetch_read_done(BackendRequest *breq, int res)
{
    Fetch *f = cfn_container_of(breq, Fetch, breq);
    BlobCache *bc = f->bc;
    bc->svc->stats.bytes_fetched += res > 0 ? (uint64_t)res : 0;
    if (res < 0 || atomic_load(&bc->closed)) {
        f->result = res < 0 ? res : -ESHUTDOWN;
        snprintf(f->why, sizeof(f->why), "chunks %u-%u: backend read of %u bytes at 0x%" PRIx64 " failed: %s",
                 f->first, f->last, f->clen, f->coff, strerror(-f->result));
        fetch_finish(f);
        return;
    }
    f->work.work = fetch_work;
    f->work.done = fetch_work_done;
    workpool_submit(bc->svc->pool, &f->work);
}

static void fetch_start(CacheService *svc, Fetch *f)
{
    BlobCache *bc = f->bc;
    svc->inflight_bytes += f->clen;
    svc->stats.fetches++;
    if (atomic_load(&bc->closed)) {
        f->result = -ESHUTDOWN;
        snprintf(f->why, sizeof(f->why), "cache closed");
        fetch_finish(f);
        return;
    }
    f->buf = cache_buf_alloc(f->clen);
    if (!f->buf) {
        f->result = -ENOMEM;
        snprintf(f->why, sizeof(f->why), "no memory for a %u-byte fetch", f->clen);
        fetch_finish(f);
        return;
    }
    f->breq = (BackendRequest){
        .kind = BACKEND_READ,
        .blob_id = bc->backend_id,
        .off = f->coff,
        .len = f->clen,
        .buf = f->buf,
        .done = fetch_read_done,
        .fd = -1,
    };
    int r = backend_submit(bc->backend, &f->breq);
    if (r < 0) {
        f->result = r;
        snprintf(f->why, sizeof(f->why), "backend refused the read: %s", strerror(-r));
        fetch_finish(f);
    }
}

static void fetch_enqueue(CacheService *svc, Fetch *f)
{
    if (svc->inflight_bytes == 0 || svc->inflight_bytes + f->clen <= svc->cfg.max_inflight_bytes) {
        fetch_start(svc, f);
        return;
    }
    f->next_queued = NULL;
    if (svc->queue_tail)
        svc->queue_tail->next_queued = f;
    else
        svc->queue_head = f;
    svc->queue_tail = f;
}

static int waiter_add(Fetch *f, FillRequest *req, uint32_t i)
{
    /* Chunks of one fetch are visited in order, so the head is the latest waiter. */
    if (f->waiters && f->waiters->req == req) {
        f->waiters->hi = i;
        return 0;
    }
    Waiter *wt = malloc(sizeof(*wt));
    if (!wt)
        return -ENOMEM;
    *wt = (Waiter){ .req = req, .lo = i, .hi = i, .next = f->waiters };
    f->waiters = wt;
    req->waiting++;
    return 0;
}

static Fetch *fetch_new(BlobCache *bc, uint32_t first, uint32_t last)
{
    Fetch *f = calloc(1, sizeof(*f) + sizeof(int) * (last - first + 1));
    if (!f)
        return NULL;
    f->bc = bc;
    f->first = first;
    f->last = last;
    return f;
}

static bool can_extend(const BlobCache *bc, const Fetch *f, uint32_t i)
{
    const BlobChunkInfo *prev = &bc->blob->chunks[f->last];
    const BlobChunkInfo *c = &bc->blob->chunks[i];
    return i == f->last + 1 &&
           c->compressed_offset == prev->compressed_offset + prev->compressed_size &&
           (uint64_t)f->clen + c->compressed_size <= bc->svc->cfg.merge_limit;
}

void blob_cache_fill(BlobCache *bc, FillRequest *req)
{
    const BlobInfo *blob = bc->blob;
    CacheService *svc = bc->svc;
    uint64_t end;

    req->cache = bc;
    req->waiting = 0;
    req->error = 0;
    req->why[0] = '\0';
    svc->stats.fills++;

    if (atomic_load(&bc->closed)) {
        request_fail_why(req, bc, "cache is closed");
        request_defer(bc, req, -ESHUTDOWN);
        return;
    }
    /* The kernel may ask up to the 4 KiB-rounded size; more means a bad image. */
    if (cfn_add_overflow(req->off, req->len, &end) ||
        end > cfn_align_up(blob->uncompressed_size, CFN_PAGE_SIZE)) {
        request_fail_why(req, bc, "range beyond the end of the blob");
        request_defer(bc, req, -ERANGE);
        return;
    }
    end = CFN_MIN(end, blob->uncompressed_size);
    if (req->off >= end) {
        request_defer(bc, req, 0);
        return;
    }

    if (!bc->scanned) {
        /* What an earlier run (or mount) already wrote stays valid. */
        bc->scanned = true;
        int n = cache_file_scan_ready(bc->fd, blob, bc->state);
        if (n > 0)
            bc->ready_chunks = (uint32_t)n;
        else if (n < 0)
            memset(bc->state, CHUNK_MISSING, blob->chunk_count);
    }

    uint64_t win = svc->cfg.read_window;
    uint64_t win_lo = win ? cfn_align_down(req->off, win) : req->off;
    uint64_t win_hi = win ? CFN_MIN(cfn_align_up(end, win), blob->uncompressed_size) : end;
    win_hi = CFN_MAX(win_hi, end);

    Fetch *building = NULL;
    int error = 0;
    for (uint32_t i = blob_chunk_lower_bound(blob, win_lo);
         i < blob->chunk_count && blob->chunks[i].uncompressed_offset < win_hi; i++) {
        const BlobChunkInfo *c = &blob->chunks[i];
        bool needed = c->uncompressed_offset < end && c->uncompressed_offset + c->uncompressed_size > req->off;

        if (bc->state[i] == CHUNK_READY)
            continue;
        if (bc->state[i] == CHUNK_INFLIGHT) {
            if (needed && (error = waiter_add(bc->inflight[i], req, i)) < 0)
                break;
            continue;
        }
        if (building && !can_extend(bc, building, i)) {
            fetch_enqueue(svc, building);
            building = NULL;
        }
        if (!building) {
            building = fetch_new(bc, i, i);
            if (!building) {
                error = -ENOMEM;
                break;
            }
            building->coff = c->compressed_offset;
            building->clen = c->compressed_size;
            bc->inflight_fetches++;
        } else {
            /* Widen the fetch: chunk_res[] was sized for one, so reallocate. */
            Fetch *g = realloc(building, sizeof(*g) + sizeof(int) * (i - building->first + 1));
            if (!g) {
                error = -ENOMEM;
                break;
            }
            if (g != building)
                for (uint32_t k = g->first; k <= g->last; k++)
                    bc->inflight[k] = g;
            building = g;
            building->last = i;
            building->clen += c->compressed_size;
        }
        bc->state[i] = CHUNK_INFLIGHT;
        bc->inflight[i] = building;
        if (needed && (error = waiter_add(building, req, i)) < 0)
            break;
    }
    if (building)
        fetch_enqueue(svc, building);

    if (error < 0) {
        req->error = error;
        request_fail_why(req, bc, strerror(-error));
    }
    if (req->waiting == 0)
        request_defer(bc, req, req->error);
}

int blob_cache_new(BlobCache **ret, CacheService *svc, BlobInfo *blob, Backend *backend,
                   const char *backend_id, int cache_fd)
{
    BlobCache *bc = calloc(1, sizeof(*bc));
    if (!bc)
        return -ENOMEM;
    bc->svc = svc;
    bc->backend = backend;
    bc->fd = cache_fd;
    bc->backend_id = strdup(backend_id);
    bc->state = calloc(blob->chunk_count ? blob->chunk_count : 1, 1);
    bc->inflight = calloc(blob->chunk_count ? blob->chunk_count : 1, sizeof(*bc->inflight));
    if (!bc->backend_id || !bc->state || !bc->inflight) {
        free(bc->backend_id);
        free(bc->state);
        free(bc->inflight);
        free(bc);
        return -ENOMEM;
    }
    bc->blob = blob;
    *ret = bc;
    return 0;
}

const BlobInfo *blob_cache_blob(const BlobCache *bc) { return bc->blob; }
uint32_t blob_cache_ready_chunks(const BlobCache *bc) { return bc->ready_chunks; }

void blob_cache_close(BlobCache *bc, void (*released)(void *arg), void *arg)
{
    atomic_store(&bc->closed, true);
    bc->released = released;
    bc->released_arg = arg;
    blob_cache_maybe_release(bc);
}

int cache_service_new(CacheService **ret, Loop *loop, WorkPool *pool, const CacheServiceConfig *cfg)
{
    if (cfg->read_window % CFN_PAGE_SIZE || cfg->merge_limit == 0)
        return -EINVAL;
    CacheService *svc = calloc(1, sizeof(*svc));
    if (!svc)
        return -ENOMEM;
    svc->loop = loop;
    svc->pool = pool;
    svc->cfg = *cfg;
    *ret = svc;
    return 0;
}

CacheService *cache_service_free(CacheService *svc)
{
    free(svc);
    return NULL;
}

CacheStats cache_service_stats(const CacheService *svc) { return svc->stats; }
