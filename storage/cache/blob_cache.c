/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "blob_cache.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cache_file.h"
#include "chunk_group.h"
#include "storage/codec/codec.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"
#include "storage/util/seg_array.h"

/* CHUNK_READY is 1 so that cache_file_scan_ready() can mark the state array directly. Untouched chunks read 0. */
enum chunk_state { CHUNK_MISSING = 0, CHUNK_READY = 1, CHUNK_INFLIGHT = 2 };

typedef struct Fetch Fetch;
typedef struct Waiter Waiter;

/* A request waiting for the chunks [lo, hi] of one fetch. */
struct Waiter {
    FillRequest *req;
    uint32_t lo, hi;
    Waiter *next;
};

/*
 * chunk_res[] of a chunk in [first, last] that this fetch does not own: a
 * member of one of its batch/zran groups that was already ready.
 */
#define CHUNK_RES_SKIP 1

/*
 * One backend read covering chunks [first, last], whole groups of them
 * (chunk_group.h), contiguous or overlapping in the blob.
 */
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
    bool split;                     /* one group of a fetch split after -ENODATA */
    char why[160];
    int chunk_res[];                /* per chunk, set by the worker (or CHUNK_RES_SKIP) */
};

struct CacheService {
    Loop *loop;
    WorkPool *pool;
    CacheServiceConfig cfg;
    uint64_t inflight_bytes;
    Fetch *queue_head, *queue_tail;     /* fetches waiting for buffer budget */
    CacheStats stats;
    struct SpareBuf *spares;            /* finished fetches' buffers, for the next ones */
    uint64_t spare_bytes;
    LoopTimer spare_timer;              /* frees the spares once fetching pauses */
};

struct BlobCache {
    CacheService *svc;
    BlobInfo *blob;
    Backend *backend;
    char *backend_id;
    int fd;
    pthread_mutex_t write_lock;     /* see blob_cache_write() */
    bool scanned;
    atomic_bool closed;
    uint32_t inflight_fetches;
    uint32_t ready_chunks;
    SegArray state;                 /* enum chunk_state per chunk, allocated where touched */
    SegArray inflight;              /* Fetch * per CHUNK_INFLIGHT chunk */
    void (*released)(void *arg);
    void *released_arg;
};

/* ---- worker side ---- */

typedef struct WorkerCtx {
    CodecCtx *codec;
    void *scratch;                  /* one chunk, 4 KiB-padded, page aligned */
    size_t scratch_size;
    void *group;                    /* a decoded batch or zran context */
    size_t group_size;
} WorkerCtx;

/* Decoded-group buffers above this are freed after use rather than kept per worker. */
#define GROUP_BUF_KEEP (16u << 20)

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
    free(w->group);
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

/*
 * Workers write into one cache file in turn. The kernel serializes buffered
 * writes to a file on its inode lock anyway, but a writer waiting there spins
 * on its CPU while the owner copies (rwsem optimistic spinning): with as many
 * workers as cores, that spin takes the CPU the reader or the next chunk's
 * verification needs. A writer waiting on this mutex sleeps instead.
 */
static int blob_cache_write(BlobCache *bc, const void *buf, size_t len, uint64_t off)
{
    pthread_mutex_lock(&bc->write_lock);
    int r = cache_file_write(bc->fd, buf, len, off);
    pthread_mutex_unlock(&bc->write_lock);
    return r;
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
        if (f->chunk_res[i - f->first] == CHUNK_RES_SKIP)
            return false;
        if (c->flags & (BLOB_CHUNK_COMPRESSED | BLOB_CHUNK_BATCH | BLOB_CHUNK_ZRAN | BLOB_CHUNK_ENCRYPTED))
            return false;
        if (c->uncompressed_offset - first->uncompressed_offset != c->compressed_offset - f->coff)
            return false;
        if (i != f->last && c->uncompressed_size % CFN_PAGE_SIZE)
            return false;
    }
    return first->uncompressed_offset % CFN_PAGE_SIZE == 0;
}

static void fetch_plain_run(BlobCache *bc, WorkerCtx *w, Fetch *f)
{
    const BlobInfo *blob = bc->blob;
    int r = 0;
    for (uint32_t i = f->first; i <= f->last && r == 0; i++) {
        const BlobChunkInfo *c = &blob->chunks[i];
        char why[128];
        r = verify_chunk(bc, w, i, (uint8_t *)f->buf + (c->compressed_offset - f->coff), why, sizeof(why));
        if (r < 0)
            snprintf(f->why, sizeof(f->why), "chunk %u: %s", i, why);
    }
    if (r == 0 && !atomic_load(&bc->closed)) {
        r = blob_cache_write(bc, f->buf, cfn_align_up(f->clen, CFN_PAGE_SIZE),
                             blob->chunks[f->first].uncompressed_offset);
        if (r < 0)
            snprintf(f->why, sizeof(f->why), "chunks %u-%u: cache write failed: %s", f->first,
                     f->last, strerror(-r));
    } else if (r == 0) {
        r = -ESHUTDOWN;
    }
    for (uint32_t i = f->first; i <= f->last; i++)
        f->chunk_res[i - f->first] = r;
}

/* Verify chunk i's uncompressed bytes, already at the start of the worker scratch, then pad and write them. */
static int chunk_store(BlobCache *bc, WorkerCtx *w, uint32_t i, uint8_t *out, char *why, size_t why_len)
{
    const BlobChunkInfo *c = &bc->blob->chunks[i];
    size_t padded = cfn_align_up(c->uncompressed_size, CFN_PAGE_SIZE);
    int r = verify_chunk(bc, w, i, out, why, why_len);
    if (r < 0)
        return r;
    memset(out + c->uncompressed_size, 0, padded - c->uncompressed_size);
    if (atomic_load(&bc->closed))
        return -ESHUTDOWN;
    r = blob_cache_write(bc, out, padded, c->uncompressed_offset);
    if (r < 0)
        snprintf(why, why_len, "cache write failed: %s", strerror(-r));
    return r;
}

static int fetch_plain_chunk(BlobCache *bc, WorkerCtx *w, Fetch *f, uint32_t i, char *why, size_t why_len)
{
    const BlobInfo *blob = bc->blob;
    const BlobChunkInfo *c = &blob->chunks[i];
    size_t padded = cfn_align_up(c->uncompressed_size, CFN_PAGE_SIZE);
    uint8_t *out = worker_scratch(w, padded);
    if (!out) {
        snprintf(why, why_len, "no memory for a %zu-byte chunk", padded);
        return -ENOMEM;
    }
    if (c->flags & BLOB_CHUNK_ENCRYPTED) {
        snprintf(why, why_len, "encrypted chunks are not supported");
        return -ENOTSUP;
    }
    const uint8_t *src = (uint8_t *)f->buf + (c->compressed_offset - f->coff);
    enum blob_compressor comp = (c->flags & BLOB_CHUNK_COMPRESSED) ? blob->compressor : BLOB_COMP_NONE;
    int r = codec_decompress(w->codec, comp, src, c->compressed_size, out, c->uncompressed_size);
    if (r < 0) {
        snprintf(why, why_len, "%s decompression failed: %s", blob_compressor_name(comp), strerror(-r));
        return r;
    }
    return chunk_store(bc, w, i, out, why, why_len);
}

static void *worker_group_buf(WorkerCtx *w, size_t size)
{
    if (w->group_size < size) {
        free(w->group);
        w->group = malloc(size ? size : 1);
        w->group_size = w->group ? size : 0;
    }
    return w->group;
}

static void worker_group_release(WorkerCtx *w)
{
    if (w->group_size > GROUP_BUF_KEEP) {
        free(w->group);
        w->group = NULL;
        w->group_size = 0;
    }
}

/* Keep the first failure's reason: the chunk (or for a bad batch/zran context, all its chunks) and why. */
static void fetch_note_error(Fetch *f, uint32_t i, const ChunkGroup *g, const char *why)
{
    if (f->why[0] || !why[0])
        return;
    if (i == UINT32_MAX && g->first != g->last)
        snprintf(f->why, sizeof(f->why), "chunks %u-%u (%s %u): %s", g->first, g->last,
                 chunk_group_kind_name(g->kind), g->ctx_index, why);
    else if (i == UINT32_MAX)
        fetch_note_error(f, g->first, g, why);
    else if (g->kind == CHUNK_GROUP_PLAIN)
        snprintf(f->why, sizeof(f->why), "chunk %u: %s", i, why);
    else
        snprintf(f->why, sizeof(f->why), "chunk %u (%s %u): %s", i, chunk_group_kind_name(g->kind), g->ctx_index, why);
}

/*
 * Decode a batch or zran context once, then slice, verify and write every
 * member this fetch owns. Bad data fails the members with -EIO.
 */
static void fetch_group(BlobCache *bc, WorkerCtx *w, Fetch *f, const ChunkGroup *g)
{
    const BlobInfo *blob = bc->blob;
    char why[128] = "";
    int gr = 0;
    uint8_t *dec = NULL;

    /* The planner fetched this range; check it anyway before slicing the buffer. */
    if (g->coff < f->coff || g->coff - f->coff > f->clen || g->clen > f->clen - (g->coff - f->coff)) {
        snprintf(why, sizeof(why), "data [%" PRIu64 ", +%u) is outside the fetched [%" PRIu64 ", +%u)", g->coff,
                 g->clen, f->coff, f->clen);
        gr = -EIO;
    } else if (!(dec = worker_group_buf(w, g->out_len))) {
        snprintf(why, sizeof(why), "no memory for %u decoded bytes", g->out_len);
        gr = -ENOMEM;
    } else {
        gr = chunk_group_decode(w->codec, blob, g, (uint8_t *)f->buf + (g->coff - f->coff), g->clen, dec,
                                g->out_len, why, sizeof(why));
    }

    for (uint32_t i = g->first; i <= g->last; i++) {
        int *res = &f->chunk_res[i - f->first];
        const BlobChunkInfo *c = &blob->chunks[i];
        char mwhy[128] = "";
        size_t off;
        if (*res == CHUNK_RES_SKIP)
            continue;
        if (gr < 0) {
            *res = gr;
            fetch_note_error(f, UINT32_MAX, g, why);
            continue;
        }
        uint8_t *out = worker_scratch(w, cfn_align_up(c->uncompressed_size, CFN_PAGE_SIZE));
        if (!out) {
            snprintf(mwhy, sizeof(mwhy), "no memory for a %u-byte chunk", c->uncompressed_size);
            *res = -ENOMEM;
        } else if ((*res = chunk_group_member(blob, g, i, &off, mwhy, sizeof(mwhy))) == 0) {
            memcpy(out, dec + off, c->uncompressed_size);
            *res = chunk_store(bc, w, i, out, mwhy, sizeof(mwhy));
            if (*res == -EBADMSG)
                *res = -EIO;        /* a digest mismatch: bad data like the rest */
        }
        fetch_note_error(f, i, g, mwhy);
    }
    worker_group_release(w);
}

static void fetch_work(WorkItem *item, void *ctx)
{
    Fetch *f = cfn_container_of(item, Fetch, work);
    BlobCache *bc = f->bc;
    WorkerCtx *w = ctx;
    const BlobInfo *blob = bc->blob;

    for (uint32_t i = f->first; i <= f->last; i++)
        if (f->chunk_res[i - f->first] != CHUNK_RES_SKIP)
            f->chunk_res[i - f->first] = -EIO;
    if (!w) {
        snprintf(f->why, sizeof(f->why), "worker has no codec context");
        return;
    }
    if (fetch_is_plain_run(bc, f)) {
        fetch_plain_run(bc, w, f);
        return;
    }

    for (uint32_t i = f->first; i <= f->last;) {
        ChunkGroup g;
        char why[128] = "";
        int r = chunk_group_of(blob, i, &g, why, sizeof(why));
        if (r == 0 && (g.first < f->first || g.last > f->last)) {
            /* The planner adds whole groups; anything else is a bug, never a reason to write. */
            snprintf(why, sizeof(why), "group [%u, %u] straddles the fetch [%u, %u]", g.first, g.last, f->first,
                     f->last);
            r = -EIO;
        }
        uint32_t last = CFN_MIN(g.last, f->last);
        if (r < 0) {
            for (uint32_t k = i; k <= last; k++)
                if (f->chunk_res[k - f->first] != CHUNK_RES_SKIP)
                    f->chunk_res[k - f->first] = r;
            fetch_note_error(f, i, &g, why);
        } else if (g.kind == CHUNK_GROUP_PLAIN) {
            f->chunk_res[i - f->first] = fetch_plain_chunk(bc, w, f, i, why, sizeof(why));
            fetch_note_error(f, i, &g, why);
        } else {
            fetch_group(bc, w, f, &g);
        }
        i = last + 1;
    }
}

/* ---- loop side ---- */

static void fetch_start(CacheService *svc, Fetch *f);
static void cache_service_drain(CacheService *svc);
static void fetch_buf_put(CacheService *svc, void *buf, uint32_t len);

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
    seg_array_clear(&bc->state);
    seg_array_clear(&bc->inflight);
    pthread_mutex_destroy(&bc->write_lock);
    free(bc);
}

static void fetch_finish(Fetch *f)
{
    BlobCache *bc = f->bc;
    CacheService *svc = bc->svc;

    bool bad_data = false;
    for (uint32_t i = f->first; i <= f->last; i++) {
        if (f->chunk_res[i - f->first] == CHUNK_RES_SKIP)
            continue;       /* ready before this fetch, not ours */
        int r = f->result < 0 ? f->result : f->chunk_res[i - f->first];
        bad_data |= f->result == 0 && r < 0 && r != -ESHUTDOWN;
        /* Both segments exist: group_state_room() made them. */
        seg_array_set_ptr(&bc->inflight, i, NULL);
        if (r == 0) {
            seg_array_set_u8(&bc->state, i, CHUNK_READY);
            bc->ready_chunks++;
            svc->stats.chunks_written++;
            svc->stats.bytes_written += bc->blob->chunks[i].uncompressed_size;
        } else {
            seg_array_set_u8(&bc->state, i, CHUNK_MISSING);   /* a later request may try again */
            svc->stats.chunk_errors++;
        }
    }
    /* Say so even when no request needed these chunks (read-window or group members). */
    if (bad_data)
        log_warn("blob %.64s: %s", bc->blob->id, f->why[0] ? f->why : "chunk data rejected");
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
    fetch_buf_put(svc, f->buf, f->clen);
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

static void fetch_enqueue(CacheService *svc, Fetch *f);

/* Move f's waiters onto the sub-fetch s where their chunk ranges overlap. */
static int waiters_share(Fetch *f, Fetch *s)
{
    for (Waiter *wt = f->waiters; wt; wt = wt->next) {
        uint32_t lo = CFN_MAX(wt->lo, s->first), hi = CFN_MIN(wt->hi, s->last);
        if (lo > hi)
            continue;
        Waiter *n = malloc(sizeof(*n));
        if (!n)
            return -ENOMEM;
        *n = (Waiter){ .req = wt->req, .lo = lo, .hi = hi, .next = s->waiters };
        s->waiters = n;
        wt->req->waiting++;
    }
    return 0;
}

/*
 * A merged read that ran past the end of a short object (-ENODATA) says
 * nothing about the chunks before the cut. Read each group on its own
 * instead, so that only the groups past the end fail. Returns false (and
 * changes nothing) when f holds a single group or memory is short.
 */
static bool fetch_split(Fetch *f)
{
    BlobCache *bc = f->bc;
    CacheService *svc = bc->svc;
    Fetch *subs = NULL, **tail = &subs;
    uint32_t n = 0;
    bool ok = true;
    for (uint32_t i = f->first; i <= f->last && ok;) {
        ChunkGroup g;
        char why[160];
        if (chunk_group_of(bc->blob, i, &g, why, sizeof(why)) < 0 || g.first < f->first || g.last > f->last) {
            ok = false;
            break;
        }
        i = g.last + 1;
        bool owned = false;
        for (uint32_t k = g.first; k <= g.last; k++)
            owned |= f->chunk_res[k - f->first] != CHUNK_RES_SKIP;
        if (!owned)
            continue;
        Fetch *s = calloc(1, sizeof(*s) + sizeof(int) * (g.last - g.first + 1));
        if (!s) {
            ok = false;
            break;
        }
        *s = (Fetch){ .bc = bc, .first = g.first, .last = g.last, .coff = g.coff, .clen = g.clen, .split = true };
        memcpy(s->chunk_res, &f->chunk_res[g.first - f->first], sizeof(int) * (g.last - g.first + 1));
        *tail = s;
        tail = &s->next_queued;
        n++;
        ok = waiters_share(f, s) == 0;
    }
    if (!ok || n < 2) {
        /* Undo: nothing was moved yet but the waiter counts. */
        while (subs) {
            Fetch *s = subs;
            subs = s->next_queued;
            while (s->waiters) {
                Waiter *wt = s->waiters;
                s->waiters = wt->next;
                wt->req->waiting--;
                free(wt);
            }
            free(s);
        }
        return false;
    }
    log_info("blob %.64s: chunks %u-%u: the object ends inside the %u bytes at 0x%" PRIx64
             "; reading their %u groups one by one", bc->blob->id, f->first, f->last, f->clen, f->coff, n);
    while (f->waiters) {
        Waiter *wt = f->waiters;
        f->waiters = wt->next;
        wt->req->waiting--;         /* still > 0: the sub-fetches hold it now */
        free(wt);
    }
    svc->inflight_bytes -= f->clen;
    bc->inflight_fetches += n - 1;
    fetch_buf_put(svc, f->buf, f->clen);
    free(f);
    while (subs) {
        Fetch *s = subs;
        subs = s->next_queued;
        for (uint32_t k = s->first; k <= s->last; k++)
            if (s->chunk_res[k - s->first] != CHUNK_RES_SKIP)
                seg_array_set_ptr(&bc->inflight, k, s);
        fetch_enqueue(svc, s);
    }
    return true;
}

static void fetch_read_done(BackendRequest *breq, int res)
{
    Fetch *f = cfn_container_of(breq, Fetch, breq);
    BlobCache *bc = f->bc;
    bc->svc->stats.bytes_fetched += res > 0 ? (uint64_t)res : 0;
    if (res == -ENODATA && !f->split && !atomic_load(&bc->closed) && fetch_split(f))
        return;
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

/*
 * Fetch buffers are recycled while fetching goes on: a fresh multi-MiB buffer
 * costs a page fault per 4 KiB page when the backend fills it and an munmap
 * when it is freed, about as much CPU as the network receive itself. Spares
 * are bounded by max_inflight_bytes and freed after a second without fetches.
 */
#define FETCH_BUF_GRAIN     (64u * 1024)
#define FETCH_SPARE_IDLE_MS 1000

typedef struct SpareBuf {
    struct SpareBuf *next;
    size_t cap;
} SpareBuf;

static size_t fetch_buf_cap(uint32_t len) { return cfn_align_up((size_t)(len ? len : 1), FETCH_BUF_GRAIN); }

static void fetch_spares_free(CacheService *svc)
{
    while (svc->spares) {
        SpareBuf *b = svc->spares;
        svc->spares = b->next;
        free(b);
    }
    svc->spare_bytes = 0;
}

static void fetch_spare_timer_fire(LoopTimer *t)
{
    fetch_spares_free(cfn_container_of(t, CacheService, spare_timer));
}

/* Like cache_buf_alloc(len): page aligned, [len, page end) zeroed. */
static void *fetch_buf_get(CacheService *svc, uint32_t len)
{
    size_t cap = fetch_buf_cap(len);
    SpareBuf **best = NULL;
    for (SpareBuf **pp = &svc->spares; *pp; pp = &(*pp)->next)
        if ((*pp)->cap >= cap && (*pp)->cap - cap <= cap / 2 && (!best || (*pp)->cap < (*best)->cap))
            best = pp;
    void *buf;
    if (best) {
        SpareBuf *b = *best;
        *best = b->next;
        svc->spare_bytes -= b->cap;
        buf = b;
    } else if (!(buf = cache_buf_alloc(cap))) {
        return NULL;
    }
    memset((uint8_t *)buf + len, 0, cfn_align_up((size_t)len, CFN_PAGE_SIZE) - len);
    return buf;
}

static void fetch_buf_put(CacheService *svc, void *buf, uint32_t len)
{
    size_t cap = fetch_buf_cap(len);
    if (!buf)
        return;
    if (svc->spare_bytes + cap > CFN_MAX(svc->cfg.max_inflight_bytes, (uint64_t)cap)) {
        free(buf);
        return;
    }
    SpareBuf *b = buf;
    b->next = svc->spares;
    b->cap = cap;
    svc->spares = b;
    svc->spare_bytes += cap;
    loop_timer_arm(svc->loop, &svc->spare_timer, FETCH_SPARE_IDLE_MS);
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
    f->buf = fetch_buf_get(svc, f->clen);
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

static bool chunk_needed(const BlobChunkInfo *c, uint64_t off, uint64_t end)
{
    return c->uncompressed_offset < end && c->uncompressed_offset + c->uncompressed_size > off;
}

/* Can group g ride in f's backend read: next in the table, its data joining or overlapping f's range? */
static bool can_extend(const BlobCache *bc, const Fetch *f, const ChunkGroup *g)
{
    uint64_t f_end = f->coff + f->clen;
    uint64_t end = CFN_MAX(f_end, g->coff + g->clen);
    return g->first == f->last + 1 && g->coff >= f->coff && g->coff <= f_end &&
           end - f->coff <= bc->svc->cfg.merge_limit;
}

/*
 * Take group g's missing members into fetch f (NULL: a new fetch). Returns
 * the fetch, which may have moved, or NULL without memory (f is unchanged).
 */
static Fetch *fetch_add_group(BlobCache *bc, Fetch *f, const ChunkGroup *g)
{
    bool fresh = !f;
    uintptr_t was = (uintptr_t)f;       /* compared as a number: f is not used after realloc */
    uint32_t first = f ? f->first : g->first;
    Fetch *n = realloc(f, sizeof(*n) + sizeof(int) * (g->last - first + 1));
    if (!n)
        return NULL;
    if (fresh) {
        memset(n, 0, sizeof(*n));
        n->bc = bc;
        n->first = g->first;
        n->coff = g->coff;
        bc->inflight_fetches++;
    } else if ((uintptr_t)n != was) {
        /* realloc moved it: its members point at the new place. */
        for (uint32_t k = n->first; k <= n->last; k++)
            if (n->chunk_res[k - first] != CHUNK_RES_SKIP)
                seg_array_set_ptr(&bc->inflight, k, n);
    }
    n->clen = (uint32_t)(CFN_MAX(n->coff + n->clen, g->coff + g->clen) - n->coff);
    n->last = g->last;
    /* Ready members stay as they are: the group is decoded whole, but they are not rewritten. */
    for (uint32_t k = g->first; k <= g->last; k++) {
        if (seg_array_u8(&bc->state, k) == CHUNK_MISSING) {
            seg_array_set_u8(&bc->state, k, CHUNK_INFLIGHT);
            seg_array_set_ptr(&bc->inflight, k, n);
            n->chunk_res[k - first] = 0;
        } else {
            n->chunk_res[k - first] = CHUNK_RES_SKIP;
        }
    }
    return n;
}

/* Allocate the state segments of group g's members, so that tracking them cannot fail half-way. */
static int group_state_room(BlobCache *bc, const ChunkGroup *g)
{
    for (uint32_t k = g->first; k <= g->last; k++)
        if (!seg_array_at(&bc->state, k) || !seg_array_at(&bc->inflight, k))
            return -ENOMEM;
    return 0;
}

/* A group whose context is bad cannot be fetched: fail the request if it needs a member. */
static void group_refuse(BlobCache *bc, FillRequest *req, const ChunkGroup *g, uint64_t end, const char *why)
{
    char what[192];
    snprintf(what, sizeof(what), "chunk %u (%s %u): %.120s", g->first, chunk_group_kind_name(g->kind),
             g->ctx_index, why);
    log_warn("blob %.64s: %s", bc->blob->id, what);
    for (uint32_t k = g->first; k <= g->last; k++) {
        if (chunk_needed(&bc->blob->chunks[k], req->off, end)) {
            if (!req->error)
                req->error = -EIO;
            request_fail_why(req, bc, what);
            return;
        }
    }
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
        int n = cache_file_scan_ready(bc->fd, blob, &bc->state);
        if (n > 0)
            bc->ready_chunks = (uint32_t)n;
        else if (n < 0)
            seg_array_reset(&bc->state);
    }
    /* A raw blob shorter than its image says has nothing past the cut: never answer that with holes. */
    if (blob->cut && end > blob->cut_at) {
        char what[160];
        snprintf(what, sizeof(what), "[%" PRIu64 ", %" PRIu64 ") lies past byte %" PRIu64 ", where the blob object "
                 "ends (the image declares %" PRIu64 ")", req->off, end, blob->cut_at, blob->uncompressed_size);
        request_fail_why(req, bc, what);
        request_defer(bc, req, -EIO);
        return;
    }

    uint64_t win = svc->cfg.read_window;
    uint64_t win_lo = win ? cfn_align_down(req->off, win) : req->off;
    uint64_t win_hi = win ? CFN_MIN(cfn_align_up(end, win), blob->uncompressed_size) : end;
    win_hi = CFN_MAX(win_hi, end);

    Fetch *building = NULL;
    int error = 0;
    for (uint32_t i = blob_chunk_lower_bound(blob, win_lo);
         i < blob->chunk_count && blob->chunks[i].uncompressed_offset < win_hi; i++) {
        enum chunk_state st = seg_array_u8(&bc->state, i);
        if (st == CHUNK_READY)
            continue;
        if (st == CHUNK_INFLIGHT) {
            /* Group members are in flight together, so this waits on the fetch that has the whole group. */
            Fetch *owner = seg_array_ptr(&bc->inflight, i);
            if (chunk_needed(&blob->chunks[i], req->off, end) && (error = owner ? waiter_add(owner, req, i) : -EIO) < 0)
                break;
            continue;
        }

        /* Missing: fetch its whole group (a batch or zran context decodes as one). */
        ChunkGroup g;
        char why[160];
        if (chunk_group_of(blob, i, &g, why, sizeof(why)) < 0) {
            group_refuse(bc, req, &g, end, why);
            i = g.last;
            continue;
        }
        if ((error = group_state_room(bc, &g)) < 0)
            break;
        if (building && !can_extend(bc, building, &g)) {
            fetch_enqueue(svc, building);
            building = NULL;
        }
        Fetch *f = fetch_add_group(bc, building, &g);
        if (!f) {
            error = -ENOMEM;
            break;
        }
        building = f;
        for (uint32_t k = g.first; k <= g.last && error == 0; k++)
            if (f->chunk_res[k - f->first] == 0 && chunk_needed(&blob->chunks[k], req->off, end))
                error = waiter_add(f, req, k);
        if (error < 0)
            break;
        i = g.last;
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
    if (!bc->backend_id || seg_array_init(&bc->state, blob->chunk_count, 1) < 0 ||
        seg_array_init(&bc->inflight, blob->chunk_count, sizeof(Fetch *)) < 0) {
        free(bc->backend_id);
        seg_array_clear(&bc->state);
        seg_array_clear(&bc->inflight);
        free(bc);
        return -ENOMEM;
    }
    pthread_mutex_init(&bc->write_lock, NULL);
    bc->blob = blob;
    *ret = bc;
    return 0;
}

int blob_cache_adopt_ready(BlobCache *bc, const SegArray *ready, uint32_t count)
{
    if (bc->scanned)
        return -EBUSY;
    int r = seg_array_copy(&bc->state, ready);
    if (r < 0) {
        seg_array_reset(&bc->state);
        return r;
    }
    bc->ready_chunks = count;
    bc->scanned = true;
    return 0;
}

const BlobInfo *blob_cache_blob(const BlobCache *bc) { return bc->blob; }
uint32_t blob_cache_ready_chunks(const BlobCache *bc) { return bc->ready_chunks; }
bool blob_cache_busy(const BlobCache *bc) { return bc->inflight_fetches > 0; }

bool blob_cache_range_missing(const BlobCache *bc, uint64_t off, uint64_t end)
{
    const BlobInfo *blob = bc->blob;
    if (!bc->scanned)
        return true;
    for (uint32_t i = blob_chunk_lower_bound(blob, off);
         i < blob->chunk_count && blob->chunks[i].uncompressed_offset < end; i++)
        if (seg_array_u8(&bc->state, i) == CHUNK_MISSING && chunk_needed(&blob->chunks[i], off, end))
            return true;
    return false;
}

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
    loop_timer_init(&svc->spare_timer, fetch_spare_timer_fire);
    *ret = svc;
    return 0;
}

CacheService *cache_service_free(CacheService *svc)
{
    if (!svc)
        return NULL;
    loop_timer_cancel(svc->loop, &svc->spare_timer);
    fetch_spares_free(svc);
    free(svc);
    return NULL;
}

CacheStats cache_service_stats(const CacheService *svc) { return svc->stats; }
