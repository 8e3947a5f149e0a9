/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The cachefiles on-demand front-end: reads OPEN/READ/CLOSE messages from
 * /dev/cachefiles, answers OPEN with copen, turns READ into a fill of the
 * object's blob cache and completes it exactly once, also on failure or
 * deadline (the reader then gets EIO instead of hanging).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cachefiles_device.h"
#include "control.h"
#include "daemon.h"
#include "frontend_fanotify.h"
#include "storage/cache/readahead.h"
#include "storage/util/fsutil.h"
#include "storage/util/log.h"
#include "uapi/cachefiles.h"

#define OBJECT_BUCKETS 1024
#define MSGS_PER_WAKEUP 256

typedef struct CfObject CfObject;

struct CfObject {
    struct CachefilesFrontend *fe;
    uint32_t object_id;
    int fd;                         /* the anon fd; closed once storage released it */
    unsigned refs;
    bool closed;
    enum blob_role role;
    char name[CACHEFILES_KEY_MAX + 1];
    BlobCache *cache;
    FillRequest prefill;
    ReadAheadState ra;
    /* Background prefetch (images[].prefetch): */
    uint64_t pf_next;               /* next offset to prefetch */
    unsigned pf_inflight;
    uint64_t pf_failed;             /* ranges that failed */
    uint64_t pf_started_ns;
    CfObject *pf_link;              /* the front-end's list of prefetching objects */
    CfObject *next;                 /* hash chain */
};

/* A fill nobody waits for: read-ahead or prefetch. */
typedef struct CfBackgroundFill {
    CfObject *obj;
    bool prefetch;
    FillRequest fill;
} CfBackgroundFill;

typedef struct CfRequest {
    struct CachefilesFrontend *fe;
    uint32_t msg_id;
    CfObject *obj;
    bool answered;
    uint64_t started_ns;
    FillRequest fill;
    LoopTimer deadline;
} CfRequest;

typedef struct CfPendingOpen {
    struct CachefilesFrontend *fe;
    uint32_t msg_id, object_id;
    int fd;
    char volume[CACHEFILES_KEY_MAX + 1], cookie[CACHEFILES_KEY_MAX + 1];
    BlobOpenRequest blob_open;
} CfPendingOpen;

typedef struct CachefilesFrontend {
    Frontend base;
    CachefilesDevice *dev;
    LoopOp poll_op;
    LoopTimer backoff;
    unsigned empty_wakeups;
    bool stopping;
    unsigned live_objects;          /* objects not yet released by storage */
    unsigned live_requests;         /* READs whose fill has not ended */
    uint64_t ra_bytes, pf_bytes;    /* read-ahead and prefetch fills not ended, in bytes */
    CfObject *prefetching;          /* objects still prefetching, oldest first (each holds a ref) */
    unsigned live_prefills;         /* bootstrap prefills not ended */
    unsigned live_opens;            /* OPENs still resolving their blob */
    CfObject *objects[OBJECT_BUCKETS];
    ControlServer *control;         /* `status`; NULL when the socket could not be made */
    uint8_t msg_buf[CACHEFILES_MSG_MAX_SIZE];
} CachefilesFrontend;

static Daemon *fe_daemon(CachefilesFrontend *fe) { return fe->base.daemon; }

/* ---- object table ---- */

static CfObject **object_slot(CachefilesFrontend *fe, uint32_t id)
{
    CfObject **p = &fe->objects[id % OBJECT_BUCKETS];
    while (*p && (*p)->object_id != id)
        p = &(*p)->next;
    return p;
}

static CfObject *object_find(CachefilesFrontend *fe, uint32_t id) { return *object_slot(fe, id); }

static void object_unref(CfObject *obj)
{
    if (--obj->refs)
        return;
    if (obj->fd >= 0)
        close(obj->fd);
    free(obj);
}

static void object_released(void *arg)
{
    /* Storage is done with the fd: closing it lets the next mount of this blob proceed. */
    CfObject *obj = arg;
    obj->cache = NULL;
    obj->fe->live_objects--;
    if (obj->fd >= 0) {
        close(obj->fd);
        obj->fd = -1;
    }
    object_unref(obj);
}

static void object_drop(CachefilesFrontend *fe, CfObject *obj)
{
    CfObject **slot = object_slot(fe, obj->object_id);
    if (*slot == obj)
        *slot = obj->next;
    obj->next = NULL;
    obj->closed = true;
    if (obj->cache)
        blob_cache_close(obj->cache, object_released, obj);     /* holds the table's ref */
    else
        object_released(obj);
}

/* ---- commands ---- */

static int send_copen(CachefilesFrontend *fe, uint32_t msg_id, int64_t size_or_err)
{
    char cmd[64];
    int n = cachefiles_cmd_copen(cmd, sizeof(cmd), msg_id, size_or_err);
    if (n < 0)
        return n;
    int r = fe->dev->ops->write_cmd(fe->dev, cmd, (size_t)n);
    if (r < 0)
        log_error("copen msg_id=%" PRIu32 " failed: %s", msg_id, strerror(-r));
    return r;
}

/* ---- READ ---- */

/* Complete a READ exactly once. Without data written, the kernel's re-check fails it with EIO. */
static void request_answer(CfRequest *req, int res, const char *why)
{
    CachefilesFrontend *fe = req->fe;
    Daemon *d = fe_daemon(fe);
    CfObject *obj = req->obj;

    if (req->answered)
        return;
    req->answered = true;
    loop_timer_cancel(d->loop, &req->deadline);
    if (res < 0) {
        d->stats.read_failures++;
        log_error("READ object=%" PRIu32 " msg_id=%" PRIu32 " off=%" PRIu64 " len=%" PRIu64
                  " failed: %s%s%s", obj->object_id, req->msg_id, req->fill.off, req->fill.len,
                  strerror(-res), why && why[0] ? ": " : "", why ? why : "");
    }
    d->stats.read_latency_ns += loop_now_ns() - req->started_ns;
    if (obj->closed || obj->fd < 0)
        return;     /* after CLOSE the kernel has failed the request itself */
    int r = fe->dev->ops->read_complete(fe->dev, obj->fd, req->msg_id);
    if (r < 0)
        log_warn("READ_COMPLETE object=%" PRIu32 " msg_id=%" PRIu32 ": %s", obj->object_id,
                 req->msg_id, strerror(-r));
}

static void request_fill_done(FillRequest *fill, int res)
{
    CfRequest *req = cfn_container_of(fill, CfRequest, fill);
    request_answer(req, res, fill->why);
    req->fe->live_requests--;
    object_unref(req->obj);
    free(req);
}

static void request_deadline(LoopTimer *t)
{
    CfRequest *req = cfn_container_of(t, CfRequest, deadline);
    /* Answer now; the fill goes on and frees the request when it ends. */
    fe_daemon(req->fe)->stats.read_timeouts++;
    request_answer(req, -ETIMEDOUT, "deadline passed before the data arrived");
}

/*
 * Read-ahead and prefetch together may hold half of the fetch budget,
 * prefetch alone a quarter: READs never queue behind more than that, and
 * a reader's read-ahead is not starved by a whole-blob prefetch.
 */
static bool background_budget_ok(const CachefilesFrontend *fe, uint64_t len, bool prefetch)
{
    uint64_t max = fe_daemon((CachefilesFrontend *)fe)->cfg->max_inflight_bytes;
    if (fe->ra_bytes + fe->pf_bytes + len > max / 2)
        return false;
    return !prefetch || fe->pf_bytes + len <= max / 4;
}

static void background_fill_done(FillRequest *fill, int res);

static int background_fill(CachefilesFrontend *fe, CfObject *obj, uint64_t off, uint64_t len, bool prefetch)
{
    CfBackgroundFill *bf = calloc(1, sizeof(*bf));
    if (!bf)
        return -ENOMEM;
    bf->obj = obj;
    bf->prefetch = prefetch;
    obj->refs++;
    if (prefetch) {
        fe->pf_bytes += len;
        obj->pf_inflight++;
        fe_daemon(fe)->stats.prefetches++;
    } else {
        fe->ra_bytes += len;
        fe_daemon(fe)->stats.readaheads++;
    }
    bf->fill.off = off;
    bf->fill.len = len;
    bf->fill.done = background_fill_done;
    blob_cache_fill(obj->cache, &bf->fill);
    return 0;
}

/* A prefetch gives up after this many failed ranges: a broken backend is not hammered for a whole blob. */
#define PREFETCH_MAX_FAILURES 3

/*
 * One prefetch step of obj: issue fills from its cursor while the budget
 * allows. True when the object is finished with (done, closed or stopping)
 * and should leave the prefetch list.
 */
static bool object_prefetch_step(CachefilesFrontend *fe, CfObject *obj)
{
    const Config *cfg = fe_daemon(fe)->cfg;
    if (fe->stopping || obj->closed)
        return true;
    const BlobInfo *blob = blob_cache_blob(obj->cache);
    uint64_t size = blob_readable_end(blob);    /* a cut blob has nothing to fetch past its object */
    /* One backend read, and small enough for the prefetch budget (or it would never start). */
    uint64_t step = CFN_MIN((uint64_t)cfg->merge_limit, cfg->max_inflight_bytes / 4);
    step = CFN_MAX(cfn_align_down(step, CFN_PAGE_SIZE), (uint64_t)CFN_PAGE_SIZE);
    if (obj->pf_failed >= PREFETCH_MAX_FAILURES)
        obj->pf_next = size;
    while (obj->pf_next < size) {
        uint64_t off = obj->pf_next, len = CFN_MIN(step, size - off);
        if (blob_cache_range_missing(obj->cache, off, off + len)) {
            if (!background_budget_ok(fe, len, true) || background_fill(fe, obj, off, len, true) < 0)
                return false;       /* resumed when a background fill ends */
        }
        obj->pf_next = off + len;
    }
    if (obj->pf_inflight)
        return false;
    double secs = (double)(loop_now_ns() - obj->pf_started_ns) / 1e9;
    if (obj->pf_failed)
        log_warn("prefetch of %s (object %" PRIu32 ") stopped after %.2f s: %" PRIu64
                 " range(s) failed; reads fetch what is missing on demand", obj->name, obj->object_id, secs,
                 obj->pf_failed);
    else if (blob->cut)
        log_warn("prefetch of %s (object %" PRIu32 ") stopped after %.2f s at byte %" PRIu64 ", where its object "
                 "ends; the image declares %" PRIu64 " bytes", obj->name, obj->object_id, secs, size,
                 blob->uncompressed_size);
    else
        log_info("prefetch of %s (object %" PRIu32 ") done: %.1f MiB in %.2f s", obj->name, obj->object_id,
                 (double)size / (1 << 20), secs);
    return true;
}

/* Move every prefetching object's cursor on, oldest first, within the budget. */
static void prefetch_resume(CachefilesFrontend *fe)
{
    CfObject **pp = &fe->prefetching;
    while (*pp) {
        CfObject *obj = *pp;
        if (!object_prefetch_step(fe, obj)) {
            pp = &obj->pf_link;
            continue;
        }
        *pp = obj->pf_link;
        obj->pf_link = NULL;
        object_unref(obj);
    }
}

static void object_prefetch_start(CachefilesFrontend *fe, CfObject *obj)
{
    CfObject **pp = &fe->prefetching;
    while (*pp)
        pp = &(*pp)->pf_link;
    *pp = obj;
    obj->refs++;
    obj->pf_next = 0;
    obj->pf_started_ns = loop_now_ns();
    log_info("prefetch of %s (object %" PRIu32 ") started", obj->name, obj->object_id);
    prefetch_resume(fe);
}

static void background_fill_done(FillRequest *fill, int res)
{
    CfBackgroundFill *bf = cfn_container_of(fill, CfBackgroundFill, fill);
    CfObject *obj = bf->obj;
    CachefilesFrontend *fe = obj->fe;
    if (bf->prefetch) {
        fe->pf_bytes -= fill->len;
        obj->pf_inflight--;
        if (res < 0 && res != -ESHUTDOWN)
            obj->pf_failed++;
    } else {
        fe->ra_bytes -= fill->len;
    }
    if (res < 0)
        log_debug("%s of %s [%" PRIu64 ", +%" PRIu64 ") failed: %s", bf->prefetch ? "prefetch" : "read-ahead",
                  obj->name, fill->off, fill->len, fill->why);
    free(bf);
    prefetch_resume(fe);
    object_unref(obj);
}

/* Fill ahead of a sequential reader (storage/cache/readahead.h says when and how far). */
static void object_readahead(CachefilesFrontend *fe, CfObject *obj, uint64_t off, uint64_t end)
{
    const Config *cfg = fe_daemon(fe)->cfg;
    const BlobInfo *blob = blob_cache_blob(obj->cache);
    if (fe->stopping || obj->closed)
        return;
    /* Fills cover whole chunks, so the next miss may start up to a chunk past the window. */
    ReadAheadParams params = { .blob_size = blob->uncompressed_size, .window = cfg->read_window,
                               .slack = CFN_MAX((uint64_t)cfg->read_window, (uint64_t)blob->chunk_size),
                               .max = cfg->readahead };
    uint64_t from, to;
    readahead_on_miss(&obj->ra, &params, off, end, &from, &to);
    /* Fills of a quarter of the range (a read window at least, one backend read at most) run in parallel. */
    uint64_t win = CFN_MAX((uint64_t)cfg->read_window, (uint64_t)CFN_PAGE_SIZE);
    uint64_t step = CFN_MIN(CFN_MAX(cfn_align_up((to - from) / 4, win), win), (uint64_t)cfg->merge_limit);
    step = CFN_MAX(cfn_align_down(step, CFN_PAGE_SIZE), (uint64_t)CFN_PAGE_SIZE);
    for (; from < to && background_budget_ok(fe, step, false); from += step) {
        uint64_t len = CFN_MIN(step, to - from);
        if (blob_cache_range_missing(obj->cache, from, from + len) && background_fill(fe, obj, from, len, false) < 0)
            return;
    }
}

static void handle_read(CachefilesFrontend *fe, const CachefilesMsg *msg)
{
    Daemon *d = fe_daemon(fe);
    CfObject *obj = object_find(fe, msg->object_id);

    d->stats.reads++;
    log_debug("READ object=%" PRIu32 " off=%" PRIu64 " len=%" PRIu64 " msg_id=%" PRIu32,
              msg->object_id, msg->read.off, msg->read.len, msg->msg_id);
    if (!obj || !obj->cache) {
        /* No anon fd to answer through; the kernel fails it when the object goes. */
        log_error("READ msg_id=%" PRIu32 " names unknown object %" PRIu32, msg->msg_id, msg->object_id);
        d->stats.read_failures++;
        return;
    }
    CfRequest *req = calloc(1, sizeof(*req));
    if (!req) {
        log_error("READ object=%" PRIu32 " msg_id=%" PRIu32 ": out of memory", obj->object_id, msg->msg_id);
        fe->dev->ops->read_complete(fe->dev, obj->fd, msg->msg_id);
        return;
    }
    req->fe = fe;
    fe->live_requests++;
    req->msg_id = msg->msg_id;
    req->obj = obj;
    obj->refs++;
    req->started_ns = loop_now_ns();
    req->fill.off = msg->read.off;
    req->fill.len = msg->read.len;
    req->fill.done = request_fill_done;
    loop_timer_init(&req->deadline, request_deadline);
    loop_timer_arm(d->loop, &req->deadline, d->cfg->request_timeout_ms);
    blob_cache_fill(obj->cache, &req->fill);
    uint64_t end;
    if (!cfn_add_overflow(msg->read.off, msg->read.len, &end))
        object_readahead(fe, obj, msg->read.off, end);
}

/* ---- OPEN ---- */

static void prefill_done(FillRequest *fill, int res)
{
    CfObject *obj = cfn_container_of(fill, CfObject, prefill);
    obj->fe->live_prefills--;
    if (res < 0)
        log_warn("prefill of %s (object %" PRIu32 ") failed: %s: %s; reads will fetch on demand",
                 obj->name, obj->object_id, strerror(-res), fill->why);
    else
        log_debug("prefill of %s (object %" PRIu32 ") done", obj->name, obj->object_id);
    object_unref(obj);
}

static void open_fail(CachefilesFrontend *fe, CfPendingOpen *po, int err, const char *why)
{
    Daemon *d = fe_daemon(fe);
    d->stats.open_failures++;
    log_warn("OPEN object=%" PRIu32 " volume=%s blob=%s refused: %s", po->object_id, po->volume,
             po->cookie, why);
    /* Close our end first: the kernel then sees the OPEN fail cleanly. */
    if (po->fd >= 0)
        close(po->fd);
    po->fd = -1;
    send_copen(fe, po->msg_id, err);
}

static void open_complete(CachefilesFrontend *fe, CfPendingOpen *po, BlobInfo *blob)
{
    Daemon *d = fe_daemon(fe);
    const BlobSource *src = &po->blob_open.src;
    uint64_t size = blob->uncompressed_size;
    int r;

    if (object_find(fe, po->object_id)) {
        blob_info_free(blob);
        open_fail(fe, po, -EALREADY, "object id already in use");
        return;
    }
    CfObject *obj = calloc(1, sizeof(*obj));
    if (!obj || (r = blob_cache_new(&obj->cache, d->cache, blob, src->backend, src->backend_id, po->fd)) < 0) {
        blob_info_free(blob);
        free(obj);
        open_fail(fe, po, -ENOMEM, "out of memory");
        return;
    }
    /* The open scanned the cache file on a worker: storage need not on the loop. */
    if (po->blob_open.ready_count >= 0)
        blob_cache_adopt_ready(obj->cache, &po->blob_open.ready, (uint32_t)po->blob_open.ready_count);
    obj->fe = fe;
    fe->live_objects++;
    obj->object_id = po->object_id;
    obj->fd = po->fd;
    obj->refs = 1;              /* the table's */
    obj->role = src->role;
    snprintf(obj->name, sizeof(obj->name), "%s", po->cookie);
    po->fd = -1;

    /* Register before copen: READs for it may arrive right after. */
    CfObject **slot = object_slot(fe, obj->object_id);
    *slot = obj;
    if (send_copen(fe, po->msg_id, (int64_t)size) < 0) {
        object_drop(fe, obj);
        return;
    }
    d->stats.opens++;
    log_info("OPEN object=%" PRIu32 " volume=%s blob=%s size=%" PRIu64 " (%s)", obj->object_id,
             po->volume, po->cookie, size, obj->role == BLOB_ROLE_BOOTSTRAP ? "bootstrap" : "data");
    if (po->blob_open.why[0])
        log_warn("OPEN object=%" PRIu32 " blob=%s: %s", obj->object_id, po->cookie, po->blob_open.why);
    if (src->prefill && size) {
        obj->refs++;
        fe->live_prefills++;
        obj->prefill.off = 0;
        obj->prefill.len = size;
        obj->prefill.done = prefill_done;
        blob_cache_fill(obj->cache, &obj->prefill);
    } else if (src->prefetch && size) {
        object_prefetch_start(fe, obj);
    }
}

static void open_blob_done(BlobOpenRequest *breq, int res)
{
    CfPendingOpen *po = cfn_container_of(breq, CfPendingOpen, blob_open);
    po->fe->live_opens--;
    if (res < 0)
        open_fail(po->fe, po, res, breq->why);
    else
        open_complete(po->fe, po, breq->blob);
    seg_array_clear(&breq->ready);
    free(po);
}

static void handle_open(CachefilesFrontend *fe, const CachefilesMsg *msg)
{
    char why[192];
    CfPendingOpen *po = calloc(1, sizeof(*po));
    int fd = msg->open.fd;

    /* The kernel does not set close-on-exec on the anon fd. */
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        log_warn("OPEN object=%" PRIu32 ": cannot set FD_CLOEXEC: %s", msg->object_id, strerror(errno));
    if (!po) {
        close(fd);
        send_copen(fe, msg->msg_id, -ENOMEM);
        return;
    }
    po->fe = fe;
    po->msg_id = msg->msg_id;
    po->object_id = msg->object_id;
    po->fd = fd;
    snprintf(po->volume, sizeof(po->volume), "%s", msg->open.volume_key);
    snprintf(po->cookie, sizeof(po->cookie), "%s", msg->open.cookie_key);

    int r = image_registry_lookup(fe_daemon(fe)->images, po->volume, po->cookie, &po->blob_open.src, why, sizeof(why));
    if (r < 0) {
        open_fail(fe, po, r, why);
        free(po);
        return;
    }
    po->blob_open.done = open_blob_done;
    po->blob_open.scan_cache = true;
    po->blob_open.cache_fd = fd;
    fe->live_opens++;
    image_registry_open_blob(fe_daemon(fe)->images, &po->blob_open);
}

/* ---- CLOSE ---- */

static void handle_close(CachefilesFrontend *fe, const CachefilesMsg *msg)
{
    CfObject *obj = object_find(fe, msg->object_id);
    if (!obj) {
        log_warn("CLOSE for unknown object %" PRIu32, msg->object_id);
        return;
    }
    fe_daemon(fe)->stats.closes++;
    log_info("CLOSE object=%" PRIu32 " blob=%s", obj->object_id, obj->name);
    object_drop(fe, obj);
    prefetch_resume(fe);    /* a closed object leaves the prefetch list */
}

/* ---- message loop ---- */

static void device_arm(CachefilesFrontend *fe);

static void handle_message(CachefilesFrontend *fe, size_t n)
{
    CachefilesMsg msg;
    int stray_fd;
    char why[160];
    int r = cachefiles_msg_parse(fe->msg_buf, n, &msg, &stray_fd, why, sizeof(why));
    if (r < 0) {
        struct cachefiles_msg_hdr hdr = { 0 };
        memcpy(&hdr, fe->msg_buf, CFN_MIN(n, sizeof(hdr)));
        fe_daemon(fe)->stats.bad_messages++;
        log_error("rejected malformed message (%zu bytes, msg_id=%" PRIu32 "): %s", n, hdr.msg_id, why);
        /* A bad OPEN still installed an fd and waits for an answer: fail it. */
        if (stray_fd >= 0 && n >= sizeof(hdr) && hdr.opcode == CACHEFILES_OP_OPEN) {
            close(stray_fd);
            send_copen(fe, hdr.msg_id, -EINVAL);
        }
        return;
    }
    switch (msg.opcode) {
    case CACHEFILES_OP_OPEN:
        handle_open(fe, &msg);
        break;
    case CACHEFILES_OP_READ:
        handle_read(fe, &msg);
        break;
    case CACHEFILES_OP_CLOSE:
        handle_close(fe, &msg);
        break;
    }
}

static void device_backoff_fire(LoopTimer *t)
{
    device_arm(cfn_container_of(t, CachefilesFrontend, backoff));
}

static void device_ready(LoopOp *op, int res)
{
    CachefilesFrontend *fe = cfn_container_of(op, CachefilesFrontend, poll_op);
    unsigned handled = 0;

    if (fe->stopping)
        return;
    if (res < 0) {
        log_error("poll on the cache device failed: %s", strerror(-res));
        daemon_stop(fe_daemon(fe));
        return;
    }
    while (handled < MSGS_PER_WAKEUP) {
        ssize_t n = fe->dev->ops->read_msg(fe->dev, fe->msg_buf, sizeof(fe->msg_buf));
        if (n == 0)
            break;
        if (n < 0) {
            /* A failed read() has failed that request in the kernel; keep serving. */
            log_error("reading the cache device: %s", strerror((int)-n));
            if (n == -EBADF || n == -EIO) {
                daemon_stop(fe_daemon(fe));
                return;
            }
            break;
        }
        handled++;
        handle_message(fe, (size_t)n);
    }
    /* Kernels before 6.8 keep POLLIN up while any request is outstanding: back off. */
    if (handled == 0 && ++fe->empty_wakeups >= 3) {
        loop_timer_arm(fe_daemon(fe)->loop, &fe->backoff, 5);
        return;
    }
    if (handled)
        fe->empty_wakeups = 0;
    device_arm(fe);
}

static void device_arm(CachefilesFrontend *fe)
{
    if (fe->stopping)
        return;
    fe->poll_op.fn = device_ready;
    if (loop_poll(fe_daemon(fe)->loop, &fe->poll_op, fe->dev->poll_fd, POLLIN) < 0) {
        log_warn("submission queue full; retrying the device poll");
        loop_timer_arm(fe_daemon(fe)->loop, &fe->backoff, 1);
    }
}

/* ---- control socket: `status` only (mounts are the kernel's: mount -t erofs -o fsid=) ---- */

static void control_handle(void *ctx, ControlRequest *req)
{
    CachefilesFrontend *fe = ctx;
    const DaemonStats *s = &fe_daemon(fe)->stats;
    if (strcmp(req->argv[0], "status") != 0 || req->argc != 1) {
        control_reply(req, -EOPNOTSUPP, "the fscache front-end answers 'status' only; mount with "
                      "mount -t erofs none -o fsid=FSID DIR");
        return;
    }
    char out[CONTROL_MAX_MSG - 16];
    size_t n = (size_t)snprintf(out, sizeof(out), "frontend=fscache pid=%d opens=%" PRIu64 " open_failures=%" PRIu64
                                " closes=%" PRIu64 " reads=%" PRIu64 " read_failures=%" PRIu64 " read_timeouts=%"
                                PRIu64 " live_objects=%u\n", (int)getpid(), s->opens, s->open_failures, s->closes,
                                s->reads, s->read_failures, s->read_timeouts, fe->live_objects);
    if (n < sizeof(out))
        image_registry_render_errors(fe_daemon(fe)->images, out + n, sizeof(out) - n);
    control_reply(req, 0, "%s", out);
}

/* Best effort: the daemon serves mounts without it. */
static void control_start(CachefilesFrontend *fe)
{
    const Config *cfg = fe_daemon(fe)->cfg;
    char sock[4096], err[512];
    int r = fs_mkdir_p(cfg->work_dir, 0755);
    if (r == 0 && (r = fanotify_control_path(cfg->work_dir, sock, sizeof(sock))) < 0)
        snprintf(err, sizeof(err), "work_dir path is too long for a socket");
    else if (r == 0)
        r = control_server_new(&fe->control, fe_daemon(fe)->loop, sock, control_handle, fe, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "cannot create %s: %s", cfg->work_dir, strerror(-r));
    if (r < 0)
        log_warn("no control socket, `status` will not answer: %s", err);
}

static int write_setup_cmd(CachefilesFrontend *fe, const char *cmd, int n)
{
    if (n < 0)
        return n;
    return fe->dev->ops->write_cmd(fe->dev, cmd, (size_t)n);
}

static int cf_start(Frontend *base)
{
    CachefilesFrontend *fe = cfn_container_of(base, CachefilesFrontend, base);
    const Config *cfg = fe_daemon(fe)->cfg;
    char cmd[4200];
    int r;

    if (fe->dev->bound) {
        /*
         * Failover: the device stayed open across the previous daemon, so
         * the cache is bound already. "restore" re-queues every request the
         * old daemon read but never answered; kernels before 6.8 lack it.
         */
        r = write_setup_cmd(fe, cmd, cachefiles_cmd_restore(cmd, sizeof(cmd)));
        if (r == -EOPNOTSUPP || r == -EINVAL)
            log_warn("cachefiles: this kernel has no 'restore'; requests the previous daemon held are lost");
        else if (r < 0)
            log_warn("cachefiles: 'restore' failed: %s", strerror(-r));
        device_arm(fe);
        control_start(fe);
        log_info("ready: took over the cache device (%zu image(s))", cfg->n_images);
        return 0;
    }
    /* cachefiles needs the directory to exist; make it like `mkdir -p`. */
    r = fs_mkdir_p(cfg->cache_dir, 0700);
    if (r < 0) {
        log_error("cannot create the cache directory %s: %s", cfg->cache_dir, strerror(-r));
        return r;
    }
    r = write_setup_cmd(fe, cmd, cachefiles_cmd_dir(cmd, sizeof(cmd), cfg->cache_dir));
    if (r < 0) {
        log_error("cachefiles: 'dir %s' failed: %s", cfg->cache_dir, strerror(-r));
        return r;
    }
    if (cfg->tag) {
        r = write_setup_cmd(fe, cmd, cachefiles_cmd_tag(cmd, sizeof(cmd), cfg->tag));
        if (r < 0) {
            log_error("cachefiles: 'tag %s' failed: %s", cfg->tag, strerror(-r));
            return r;
        }
    }
    r = write_setup_cmd(fe, cmd, cachefiles_cmd_bind_ondemand(cmd, sizeof(cmd)));
    if (r < 0) {
        if (r == -EINVAL)
            log_error("cachefiles: 'bind ondemand' rejected: this kernel lacks CONFIG_CACHEFILES_ONDEMAND");
        else if (r == -EOPNOTSUPP)
            log_error("cachefiles: 'bind ondemand' failed: the cache directory %s must be on a filesystem "
                      "with user xattrs (ext4, xfs), not tmpfs", cfg->cache_dir);
        else
            log_error("cachefiles: 'bind ondemand' failed: %s", strerror(-r));
        return r;
    }
    device_arm(fe);
    control_start(fe);
    log_info("ready: serving erofs fscache mounts from %s (%zu image(s))", cfg->cache_dir, cfg->n_images);
    return 0;
}

static void cf_stop(Frontend *base)
{
    CachefilesFrontend *fe = cfn_container_of(base, CachefilesFrontend, base);
    fe->stopping = true;
}

static void drop_all_objects(CachefilesFrontend *fe)
{
    for (size_t i = 0; i < OBJECT_BUCKETS; i++)
        while (fe->objects[i])
            object_drop(fe, fe->objects[i]);
    prefetch_resume(fe);    /* closed objects leave the prefetch list */
}

/*
 * Shutdown: close every object's cache (an OPEN that resolves meanwhile
 * registers a new one: closed on the next call), and report whether any
 * fill, open or cache is still outstanding. READs still in flight are not
 * answered: closing the device fails them with EIO, or a daemon taking the
 * device over re-sends them ("restore").
 */
static bool cf_drain(Frontend *base)
{
    CachefilesFrontend *fe = cfn_container_of(base, CachefilesFrontend, base);
    drop_all_objects(fe);
    return !(fe->live_objects || fe->live_requests || fe->live_opens || fe->ra_bytes || fe->pf_bytes ||
             fe->live_prefills);
}

static void cf_free(Frontend *base)
{
    CachefilesFrontend *fe = cfn_container_of(base, CachefilesFrontend, base);
    loop_timer_cancel(fe_daemon(fe)->loop, &fe->backoff);
    fe->control = control_server_free(fe->control);
    cachefiles_device_free(fe->dev);
    free(fe);
}

static const FrontendOps cachefiles_frontend_ops = {
    .name = "fscache",
    .start = cf_start,
    .stop = cf_stop,
    .drain = cf_drain,
    .free = cf_free,
};

int frontend_cachefiles_new(Frontend **ret, Daemon *d, CachefilesDevice *dev)
{
    CachefilesFrontend *fe = calloc(1, sizeof(*fe));
    if (!fe) {
        cachefiles_device_free(dev);
        return -ENOMEM;
    }
    fe->base.ops = &cachefiles_frontend_ops;
    fe->base.daemon = d;
    fe->dev = dev;
    loop_timer_init(&fe->backoff, device_backoff_fire);
    *ret = &fe->base;
    return 0;
}
