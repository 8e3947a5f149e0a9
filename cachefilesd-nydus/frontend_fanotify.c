/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The fanotify pre-content front-end: erofs file-backed mounts whose data
 * blobs are sparse cache files marked for FAN_PRE_ACCESS. A reader that
 * touches a missing range blocks in the kernel until we fill the range and
 * answer FAN_ALLOW (or FAN_DENY with EIO: erofs then fails the read).
 *
 * Process model (why a control socket): the daemon owns the group, and a
 * mark only takes effect for files opened after it (pre-content mode is
 * fixed at open), so the daemon must create, mark and only then mount
 * each image. `cachefilesd-nydus mount <fsid> <dir>` asks it to over the
 * control socket; the daemon records its mounts in <work_dir>/fanotify-mounts
 * so that a restarted daemon re-marks the blobs of mounts that still exist
 * (the mount itself outlives the daemon) before it says "ready".
 *
 * Layout per image (fanotify-precontent.md, sect. 4):
 *  - bootstrap + blobs: the bootstrap is the complete local file from the
 *    config, mounted as the source (erofs reads metadata without events);
 *    each device-table slot is a sparse cache file passed with device=.
 *  - plain image: the image itself is the one blob. Its metadata blocks are
 *    copied into the cache file before mount; file data stays sparse.
 *
 * No self-deadlock: every cache file is opened read-write by the daemon
 * *before* it is marked, and storage writes only through that fd, which
 * never raises events (the event fds, opened O_RDWR by the kernel with
 * FMODE_NONOTIFY, are only answered and closed). Events raised by our own
 * pid anyway (an inherited group whose marks already existed) are allowed
 * at once, so the loop never waits on a worker that waits on the loop.
 *
 * Latency: every read of a marked file raises an event, present or not.
 * A per-blob chunk bitmap answers present ranges at once, and a blob whose
 * chunks are all present loses its mark, so it raises no more events.
 *
 * Fail-open: if the group is closed (daemon gone), the kernel allows pending
 * and future reads, which then see holes as zeros. See README.
 */
#include "frontend_fanotify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "daemon.h"
#include "erofs_datamap.h"
#include "storage/cache/cache_file.h"
#include "storage/util/fsutil.h"
#include "storage/util/log.h"
#include "uapi/erofs.h"
#include "uapi/fanotify.h"

#define BLOB_BUCKETS 64
#define EVENT_BUF_SIZE (64 * 1024)
#define READS_PER_WAKEUP 16
#define STATE_FILE "fanotify-mounts"
#define FAN_MAX_CLIENT_JOBS (CONTROL_MAX_CONNS / 2)    /* the other slots stay free for `status` */
#define FAN_MOUNT_DEADLINE_FACTOR 2     /* a mount may take this many request_timeouts */

typedef struct FanFrontend FanFrontend;

/* One sparse cache file, shared by every mount that uses the blob. */
typedef struct FanBlob {
    FanFrontend *fe;
    char path[PATH_MAX];
    char name[BLOB_ID_MAX + 1];
    int fd;                         /* O_RDWR, opened before the mark: our writes raise no events */
    dev_t dev;
    ino_t ino;
    BlobCache *cache;
    const BlobInfo *info;
    SegArray ready;                 /* per chunk, 1: known to be in the file (segments on first touch) */
    uint32_t ready_chunks;
    bool marked;
    unsigned refs;
    uint64_t events, fills;
    uint64_t prefetch_end;          /* readahead issued up to here */
    unsigned prefetching;
    /* Whole-blob prefetch (images[].prefetch), see blob_prefetch_step: */
    bool pf_on;
    unsigned pf_inflight;
    uint64_t pf_next, pf_failed, pf_started_ns;
    struct FanBlob *next;
} FanBlob;

/* A fill ahead of the reader: nobody waits for it. */
typedef struct FanPrefetch {
    FanBlob *blob;
    FillRequest fill;
} FanPrefetch;

/* A permission event waiting for its fill. */
typedef struct FanEvent {
    FanFrontend *fe;
    FanBlob *blob;
    int fd;
    uint64_t started_ns;
    bool answered;
    FillRequest fill;
    LoopTimer deadline;
    struct FanEvent *prev, *next;   /* FanFrontend.live */
} FanEvent;

typedef struct FanMount {
    char mountpoint[PATH_MAX];      /* where it is (updated when found moved) */
    uint64_t mnt_id;                /* the kernel's unique mount id: what umount checks */
    const ImageConfig *image;
    FanBlob **blobs;
    size_t n_blobs;
    struct FanMount *next;
} FanMount;

enum job_kind { JOB_MOUNT, JOB_ATTACH, JOB_UMOUNT };

typedef struct JobBlob {
    struct FanJob *job;
    char name[BLOB_ID_MAX + 1];     /* the registry's cookie key and the cache file name */
    char path[PATH_MAX];
    BlobOpenRequest open;
    BlobInfo *info;                 /* owned until a BlobCache takes it */
    FanBlob *blob;                  /* shared one, or the new one once created */
    int fd;
    SegArray ready;
    int ready_count;
    dev_t dev;
    ino_t ino;
} JobBlob;

/*
 * mount / attach / umount. Steps alternate between loop and workers. Jobs
 * run concurrently unless they conflict (the same mount point, or two
 * mounts of the same volume, which would prepare the same cache files), so
 * a mount stalled on its backend holds up neither `umount` nor other mounts;
 * the last step (the mount or umount itself and the state file) runs for one
 * job at a time, so each job's state file reflects every earlier one.
 */
typedef struct FanJob {
    FanFrontend *fe;
    enum job_kind kind;
    ControlRequest *req;            /* NULL for attach at start-up */
    const ImageConfig *image;
    char volume[256];
    char mountpoint[PATH_MAX];
    int target_fd;                  /* mount: the mount point, resolved once without symlinks (O_PATH) */
    int volume_fd;                  /* the image's directory under the cache root */
    uint64_t mnt_id;                /* the mount made, attached or to unmount; 0: unknown */
    bool mounted;                   /* a mount exists that must be tracked, even if the job failed */
    bool moved;                     /* umount found the mount elsewhere, at found_at */
    char found_at[PATH_MAX];
    bool plain;                     /* single-file image: the image is the one blob */
    JobBlob *blobs;
    size_t n_blobs;
    size_t opens_pending;
    char *state_text;               /* the state file to write once the mount changed */
    WorkItem work;
    int result;
    char why[512];
    bool started;                   /* a step of it is (or was) in flight */
    bool committing;                /* in or waiting for the mount/umount step */
    bool expired;                   /* its deadline passed; fails at the next step boundary */
    LoopTimer deadline;             /* mount jobs: FAN_MOUNT_DEADLINE_FACTOR x request_timeout */
    struct FanJob *next;
} FanJob;

typedef struct FanStats {
    uint64_t events, fast_allows, self_allows, fills, allows, denies, timeouts;
    uint64_t bad_events, overflows, unknown_blobs, marks_removed, prefetches;
    uint64_t latency_ns_sum, latency_ns_max, latency_count;
} FanStats;

struct FanFrontend {
    Frontend base;
    int group;
    bool adopted;
    pid_t self;
    LoopOp poll_op;
    LoopTimer backoff;
    bool polling, stopping, ready_logged;
    ControlServer *control;
    char state_path[PATH_MAX];      /* for messages; opened as STATE_FILE in the work dir's fd */
    char cache_root[PATH_MAX];
    int cache_root_fd;              /* every cache file is opened below it, never through a symlink */
    char boot_id[40];               /* mount ids in the state file are only valid within one boot */
    FanBlob *blobs[BLOB_BUCKETS];
    FanMount *mounts;
    FanJob *jobs, *jobs_tail;       /* every job, in arrival order, running or waiting */
    unsigned n_client_jobs;         /* of them, requests from the control socket */
    FanJob *committer;              /* the job in its mount/umount step */
    bool scheduling, schedule_again;
    CfnRateLimit read_errors;       /* "reading events" failures, e.g. EMFILE, every 10 ms */
    FanStats stats;
    unsigned live_events;
    FanEvent *live;
    unsigned releasing;             /* blobs whose cache is closing: storage still uses them */
    uint8_t buf[EVENT_BUF_SIZE] __attribute__((aligned(8)));
};

static Daemon *fe_daemon(FanFrontend *fe) { return fe->base.daemon; }

static void job_schedule(FanFrontend *fe);
static void job_commit_next(FanFrontend *fe);
static void group_arm(FanFrontend *fe);

/* ---- answering ---- */

static void respond(FanFrontend *fe, int fd, uint32_t response, uint64_t started_ns)
{
    struct fanotify_response resp = { .fd = fd, .response = response };
    if (write(fe->group, &resp, sizeof(resp)) != (ssize_t)sizeof(resp)) {
        int r = -errno;
        if (r == -EINVAL && (response & ~(uint32_t)FAN_DENY) && (response & FAN_DENY)) {
            /* A kernel without FAN_DENY_ERRNO: a plain deny still gives erofs readers EIO. */
            resp.response = FAN_DENY;
            r = write(fe->group, &resp, sizeof(resp)) == (ssize_t)sizeof(resp) ? 0 : -errno;
        }
        if (r < 0)
            log_error("fanotify: answering event fd %d failed: %s", fd, strerror(-r));
    }
    close(fd);
    if (started_ns) {
        uint64_t ns = loop_now_ns() - started_ns;
        fe->stats.latency_ns_sum += ns;
        fe_daemon(fe)->stats.read_latency_ns += ns;
        fe->stats.latency_count++;
        if (ns > fe->stats.latency_ns_max)
            fe->stats.latency_ns_max = ns;
    }
    if (response == FAN_ALLOW)
        fe->stats.allows++;
    else
        fe->stats.denies++;
}

static void deny(FanFrontend *fe, int fd, uint64_t started_ns)
{
    respond(fe, fd, FAN_DENY_ERRNO(EIO), started_ns);
}

/* ---- blobs ---- */

static FanBlob **blob_bucket(FanFrontend *fe, dev_t dev, ino_t ino)
{
    return &fe->blobs[((uint64_t)dev * 31 + (uint64_t)ino) % BLOB_BUCKETS];
}

static FanBlob *blob_find_inode(FanFrontend *fe, dev_t dev, ino_t ino)
{
    for (FanBlob *b = *blob_bucket(fe, dev, ino); b; b = b->next)
        if (b->dev == dev && b->ino == ino)
            return b;
    return NULL;
}

static FanBlob *blob_find_path(FanFrontend *fe, const char *path)
{
    for (size_t i = 0; i < BLOB_BUCKETS; i++)
        for (FanBlob *b = fe->blobs[i]; b; b = b->next)
            if (strcmp(b->path, path) == 0)
                return b;
    return NULL;
}

static void blob_unmark(FanBlob *b)
{
    if (!b->marked)
        return;
    if (fanotify_mark(b->fe->group, FAN_MARK_REMOVE, FAN_PRE_ACCESS, b->fd, NULL) < 0) {
        int r = errno;
        if (r != ENOENT)
            log_warn("fanotify: removing the mark of %s: %s", b->path, strerror(r));
    }
    b->marked = false;
}

static void blob_released(void *arg)
{
    FanBlob *b = arg;
    b->fe->releasing--;
    close(b->fd);
    seg_array_clear(&b->ready);
    free(b);
}

static void blob_unref(FanBlob *b)
{
    if (--b->refs)
        return;
    FanBlob **p = blob_bucket(b->fe, b->dev, b->ino);
    while (*p && *p != b)
        p = &(*p)->next;
    if (*p)
        *p = b->next;
    blob_unmark(b);
    log_info("fanotify: released blob %s (%" PRIu32 "/%" PRIu32 " chunks present)", b->name, b->ready_chunks,
             b->info->chunk_count);
    /* Storage may still be writing through b->fd: close it once storage lets go. */
    b->fe->releasing++;
    blob_cache_close(b->cache, blob_released, b);
}

/* Every byte of the blob is in the file. A cut blob never is: past the cut only errors may answer. */
static bool blob_complete(const FanBlob *b)
{
    return b->ready_chunks == b->info->chunk_count && !b->info->cut;
}

static bool blob_range_ready(const FanBlob *b, uint64_t off, uint64_t end)
{
    const BlobInfo *info = b->info;
    if (info->cut && end > info->cut_at)
        return false;       /* nothing can fill it: the fill fails and the reader gets EIO */
    if (b->ready_chunks == info->chunk_count)
        return true;
    for (uint32_t i = blob_chunk_lower_bound(info, off); i < info->chunk_count && info->chunks[i].uncompressed_offset < end; i++)
        if (!seg_array_u8(&b->ready, i))
            return false;
    return true;
}

static void blob_check_complete(FanBlob *b)
{
    if (b->info->cut)
        return;
    if (b->marked && (b->ready_chunks == b->info->chunk_count ||
                      blob_cache_ready_chunks(b->cache) >= b->info->chunk_count)) {
        /* Nothing left to fill: stop paying an event round trip per read (and keeping a bitmap). */
        b->ready_chunks = b->info->chunk_count;
        seg_array_reset(&b->ready);
        blob_unmark(b);
        b->fe->stats.marks_removed++;
        log_info("fanotify: blob %s is complete; mark removed", b->name);
    }
}

static void blob_set_ready(FanBlob *b, uint64_t off, uint64_t end)
{
    const BlobInfo *info = b->info;
    if (b->ready_chunks == info->chunk_count)
        return;             /* all present: the bitmap is gone */
    for (uint32_t i = blob_chunk_lower_bound(info, off); i < info->chunk_count && info->chunks[i].uncompressed_offset < end; i++)
        /* Without memory for the bit the chunk only looks missing: a later read re-checks it. */
        if (!seg_array_u8(&b->ready, i) && seg_array_set_u8(&b->ready, i, 1) == 0)
            b->ready_chunks++;
    blob_check_complete(b);
}

/* ---- events ---- */

static void event_answer(FanEvent *ev, int res, const char *why)
{
    FanFrontend *fe = ev->fe;
    Daemon *d = fe_daemon(fe);
    if (ev->answered)
        return;
    ev->answered = true;
    loop_timer_cancel(d->loop, &ev->deadline);
    if (res < 0) {
        d->stats.read_failures++;
        log_error("fanotify: blob %s [%" PRIu64 ", +%" PRIu64 ") cannot be served, reader gets EIO: %s%s%s",
                  ev->blob->name, ev->fill.off, ev->fill.len, strerror(-res), why && why[0] ? ": " : "",
                  why ? why : "");
        deny(fe, ev->fd, ev->started_ns);
    } else {
        respond(fe, ev->fd, FAN_ALLOW, ev->started_ns);
    }
    ev->fd = -1;
}

static void event_unlink(FanEvent *ev)
{
    FanFrontend *fe = ev->fe;
    if (ev->prev)
        ev->prev->next = ev->next;
    else
        fe->live = ev->next;
    if (ev->next)
        ev->next->prev = ev->prev;
    fe->live_events--;
}

static void event_fill_done(FillRequest *fill, int res)
{
    FanEvent *ev = cfn_container_of(fill, FanEvent, fill);
    if (res == 0)
        blob_set_ready(ev->blob, fill->off, fill->off + fill->len);
    event_answer(ev, res, fill->why);
    event_unlink(ev);
    blob_unref(ev->blob);
    free(ev);
}

static void prefetch_done(FillRequest *fill, int res)
{
    FanPrefetch *p = cfn_container_of(fill, FanPrefetch, fill);
    FanBlob *b = p->blob;
    b->prefetching--;
    if (res == 0)
        blob_set_ready(b, fill->off, fill->off + fill->len);
    else
        log_debug("fanotify: readahead of %s [%" PRIu64 ", +%" PRIu64 ") failed: %s", b->name, fill->off,
                  fill->len, fill->why);
    blob_unref(b);
    free(p);
}

/*
 * Keep fills ahead of a reader that moves forward through the blob, so its
 * next events find the data present instead of waiting for a fetch each
 * (the local-disk equivalent is the kernel's readahead, which a pre-content
 * event cannot see past). The window is `fanotify_readahead` bytes past the
 * reader, filled as a stream of read_window-sized fills (1 MiB): each is a
 * fetch of its own, so the workers verify and write several in parallel
 * and a reader that catches up with the stream waits for one window, not a
 * whole merged fetch. At most readahead / step + 1 fills per blob are in
 * flight; storage never fetches a chunk twice.
 */
static void blob_readahead(FanBlob *b, uint64_t end)
{
    FanFrontend *fe = b->fe;
    const Config *cfg = fe_daemon(fe)->cfg;
    uint64_t ra = cfg->fanotify_readahead, size = blob_readable_end(b->info);
    if (!ra || fe->stopping || !b->marked || end >= size)
        return;
    uint64_t step = CFN_MAX((uint64_t)cfg->read_window, (uint64_t)CFN_PAGE_SIZE);
    step = CFN_MAX(step, cfn_align_up(ra / 64, CFN_PAGE_SIZE));     /* a huge window: fewer, larger fills */
    unsigned max_fills = (unsigned)CFN_MIN(ra / step + 1, 256u);
    uint64_t want = CFN_MIN(end + ra, size);
    /* A jump back or far ahead starts a new stream at the reader. */
    uint64_t from = b->prefetch_end >= end && b->prefetch_end <= end + 2 * ra ? b->prefetch_end : end;
    while (from < want && b->prefetching < max_fills) {
        uint64_t to = CFN_MIN(cfn_align_down(from, step) + step, size);
        b->prefetch_end = to;
        if (blob_range_ready(b, from, to)) {
            from = to;
            continue;
        }
        FanPrefetch *p = calloc(1, sizeof(*p));
        if (!p)
            return;
        p->blob = b;
        b->refs++;
        b->prefetching++;
        fe->stats.prefetches++;
        p->fill.off = from;
        p->fill.len = to - from;
        p->fill.done = prefetch_done;
        blob_cache_fill(b->cache, &p->fill);
        from = to;
    }
}

/* A prefetch gives up after this many failed ranges: a broken backend is not hammered for a whole blob. */
#define PREFETCH_MAX_FAILURES 3

static void blob_prefetch_done(FillRequest *fill, int res);

/*
 * images[].prefetch: fill the whole blob in blob order behind the readers,
 * a few merge_limit-sized fills at a time (a quarter of max_inflight).
 * It ends when the blob is complete (its mark is then removed), when the
 * daemon stops, or after PREFETCH_MAX_FAILURES failed ranges; reads fetch
 * whatever is still missing on demand.
 */
static void blob_prefetch_step(FanBlob *b)
{
    FanFrontend *fe = b->fe;
    const Config *cfg = fe_daemon(fe)->cfg;
    uint64_t size = blob_readable_end(b->info), budget = cfg->max_inflight_bytes / 4;
    uint64_t step = CFN_MAX(cfn_align_down(CFN_MIN((uint64_t)cfg->merge_limit, budget), CFN_PAGE_SIZE),
                            (uint64_t)CFN_PAGE_SIZE);
    unsigned max_fills = (unsigned)CFN_MAX(budget / step, 1u);
    if (!b->pf_on)
        return;
    if (fe->stopping || !b->marked || b->pf_failed >= PREFETCH_MAX_FAILURES)
        b->pf_next = size;
    while (b->pf_next < size && b->pf_inflight < max_fills) {
        uint64_t off = b->pf_next, len = CFN_MIN(step, size - off);
        b->pf_next = off + len;
        if (blob_range_ready(b, off, off + len))
            continue;
        FanPrefetch *p = calloc(1, sizeof(*p));
        if (!p) {
            b->pf_next = off;
            break;
        }
        p->blob = b;
        b->refs++;
        b->pf_inflight++;
        fe->stats.prefetches++;
        p->fill.off = off;
        p->fill.len = len;
        p->fill.done = blob_prefetch_done;
        blob_cache_fill(b->cache, &p->fill);
    }
    if (b->pf_next < size || b->pf_inflight)
        return;
    b->pf_on = false;
    double secs = (double)(loop_now_ns() - b->pf_started_ns) / 1e9;
    if (fe->stopping)
        log_debug("fanotify: prefetch of %s interrupted by shutdown after %.2f s", b->name, secs);
    else if (b->pf_failed)
        log_warn("fanotify: prefetch of %s stopped after %.2f s: %" PRIu64 " range(s) failed; reads fetch what "
                 "is missing on demand", b->name, secs, b->pf_failed);
    else if (b->info->cut)
        log_warn("fanotify: prefetch of %s stopped after %.2f s at byte %" PRIu64 ", where its object ends; the "
                 "image declares %" PRIu64 " bytes", b->name, secs, size, b->info->uncompressed_size);
    else
        log_info("fanotify: prefetch of %s done: %.1f MiB in %.2f s", b->name, (double)size / (1 << 20), secs);
}

static void blob_prefetch_done(FillRequest *fill, int res)
{
    FanPrefetch *p = cfn_container_of(fill, FanPrefetch, fill);
    FanBlob *b = p->blob;
    b->pf_inflight--;
    if (res == 0)
        blob_set_ready(b, fill->off, fill->off + fill->len);
    else if (res != -ESHUTDOWN)
        b->pf_failed++;
    free(p);
    blob_prefetch_step(b);
    blob_unref(b);
}

static void blob_prefetch_start(FanBlob *b)
{
    if (b->pf_on || !b->marked)
        return;         /* already running, or complete */
    b->pf_on = true;
    b->pf_next = 0;
    b->pf_failed = 0;
    b->pf_started_ns = loop_now_ns();
    log_info("fanotify: prefetch of %s started", b->name);
    blob_prefetch_step(b);
}

static void event_deadline(LoopTimer *t)
{
    FanEvent *ev = cfn_container_of(t, FanEvent, deadline);
    /* Answer now (EIO, never zeros); the fill goes on and frees the event when it ends. */
    ev->fe->stats.timeouts++;
    fe_daemon(ev->fe)->stats.read_timeouts++;
    event_answer(ev, -ETIMEDOUT, "deadline passed before the data arrived");
}

static void handle_event(FanFrontend *fe, const FanotifyEvent *ev)
{
    Daemon *d = fe_daemon(fe);
    uint64_t t0 = loop_now_ns();

    if (ev->mask & FAN_Q_OVERFLOW) {
        /* With FAN_UNLIMITED_QUEUE this cannot happen; if it does, events were lost and allowed. */
        fe->stats.overflows++;
        log_error("fanotify: event queue overflow: some reads were allowed without their data");
        if (ev->fd >= 0)
            close(ev->fd);
        return;
    }
    if (ev->fd < 0) {
        fe->stats.bad_events++;
        log_error("fanotify: event mask 0x%" PRIx64 " without a file descriptor (%d)", ev->mask, ev->fd);
        return;
    }
    if (!(ev->mask & CFN_FAN_PERM_EVENTS)) {
        close(ev->fd);      /* a notification: nothing to answer */
        return;
    }
    fe->stats.events++;
    d->stats.reads++;
    if (!(ev->mask & FAN_PRE_ACCESS) || ev->pid == fe->self) {
        /* Not an event we gate, or our own access: never make ourselves wait. */
        fe->stats.self_allows++;
        respond(fe, ev->fd, FAN_ALLOW, t0);
        return;
    }
    struct stat st;
    if (fstat(ev->fd, &st) < 0) {
        int r = errno;
        log_error("fanotify: fstat of an event fd: %s", strerror(r));
        deny(fe, ev->fd, t0);
        return;
    }
    FanBlob *b = blob_find_inode(fe, st.st_dev, st.st_ino);
    if (!b) {
        /* Marked by us, but no longer known: never let it read holes. */
        fe->stats.unknown_blobs++;
        log_error("fanotify: event for an unknown file (dev %lu ino %lu, pid %d): denied",
                  (unsigned long)st.st_dev, (unsigned long)st.st_ino, (int)ev->pid);
        deny(fe, ev->fd, t0);
        return;
    }
    b->events++;
    uint64_t size = b->info->uncompressed_size;
    if (!ev->has_range) {
        if (blob_complete(b)) {
            respond(fe, ev->fd, FAN_ALLOW, t0);
        } else {
            log_error("fanotify: event on %s without a range record: denied", b->name);
            deny(fe, ev->fd, t0);
        }
        return;
    }
    /* count 0 is a truncate; a range past EOF has nothing to fill (the kernel does not clamp). */
    uint64_t off = ev->offset, end = CFN_MIN(ev->offset + ev->count, size);
    log_debug("fanotify: event blob=%s off=%" PRIu64 " count=%" PRIu64 " pid=%d", b->name, ev->offset, ev->count,
              (int)ev->pid);
    if (ev->count == 0 || off >= end || blob_range_ready(b, off, end)) {
        fe->stats.fast_allows++;
        respond(fe, ev->fd, FAN_ALLOW, t0);
        if (off < end)
            blob_readahead(b, end);
        return;
    }
    FanEvent *fev = calloc(1, sizeof(*fev));
    if (!fev) {
        log_error("fanotify: out of memory for an event on %s", b->name);
        deny(fe, ev->fd, t0);
        return;
    }
    fev->fe = fe;
    fev->blob = b;
    b->refs++;
    fev->fd = ev->fd;
    fev->started_ns = t0;
    fev->fill.off = off;
    fev->fill.len = end - off;
    fev->fill.done = event_fill_done;
    fe->live_events++;
    fev->next = fe->live;
    if (fe->live)
        fe->live->prev = fev;
    fe->live = fev;
    fe->stats.fills++;
    b->fills++;
    loop_timer_init(&fev->deadline, event_deadline);
    loop_timer_arm(d->loop, &fev->deadline, d->cfg->request_timeout_ms);
    blob_cache_fill(b->cache, &fev->fill);
    blob_readahead(b, end);
}

static void handle_buffer(FanFrontend *fe, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        FanotifyEvent ev;
        size_t skip;
        char why[160];
        int r = fanotify_event_parse(fe->buf + pos, n - pos, &ev, &skip, why, sizeof(why));
        if (r < 0) {
            fe->stats.bad_events++;
            log_error("fanotify: malformed event record at byte %zu of %zu: %s", pos, n, why);
            /* Still answer it: a permission event left unanswered blocks its reader forever. */
            if (ev.fd >= 0) {
                if (ev.mask & CFN_FAN_PERM_EVENTS)
                    deny(fe, ev.fd, 0);
                else
                    close(ev.fd);
            }
            if (!skip) {
                log_error("fanotify: dropping the %zu bytes after it (cannot find the next record)", n - pos);
                return;
            }
            pos += skip;
            continue;
        }
        handle_event(fe, &ev);
        pos += (size_t)r;
    }
}

static void group_backoff(LoopTimer *t) { group_arm(cfn_container_of(t, FanFrontend, backoff)); }

static void group_ready(LoopOp *op, int res)
{
    FanFrontend *fe = cfn_container_of(op, FanFrontend, poll_op);
    fe->polling = false;
    if (fe->stopping)
        return;     /* what is queued now is answered by fan_drain() without a fill */
    if (res < 0) {
        log_error("fanotify: poll on the group failed: %s", strerror(-res));
        daemon_stop(fe_daemon(fe));
        return;
    }
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        ssize_t n = read(fe->group, fe->buf, sizeof(fe->buf));
        if (n < 0) {
            int r = errno;
            if (r == EINTR)
                continue;
            if (r == EAGAIN)
                break;
            /* e.g. EMFILE: retry shortly rather than spin, and say so at most every few seconds. */
            unsigned dropped;
            if (cfn_ratelimit_pass(&fe->read_errors, &dropped))
                log_error("fanotify: reading events: %s%s (%u more failures since the last report)", strerror(r),
                          r == EMFILE || r == ENFILE ? "; the kernel fails each event it cannot give us an fd for "
                          "(EIO to its reader): raise the open file limit" : "", dropped);
            loop_timer_arm(fe_daemon(fe)->loop, &fe->backoff, 10);
            return;
        }
        if (n == 0)
            break;
        handle_buffer(fe, (size_t)n);
    }
    group_arm(fe);
}

static void group_arm(FanFrontend *fe)
{
    if (fe->polling || fe->stopping)
        return;
    fe->poll_op.fn = group_ready;
    if (loop_poll(fe_daemon(fe)->loop, &fe->poll_op, fe->group, POLLIN) < 0) {
        loop_timer_arm(fe_daemon(fe)->loop, &fe->backoff, 1);
        return;
    }
    fe->polling = true;
}

/* ---- jobs: mount, attach (after a restart), umount ---- */

static FanMount *mount_find(FanFrontend *fe, const char *mountpoint)
{
    for (FanMount *m = fe->mounts; m; m = m->next)
        if (strcmp(m->mountpoint, mountpoint) == 0)
            return m;
    return NULL;
}

static const ImageConfig *image_find(FanFrontend *fe, const char *fsid)
{
    const Config *cfg = fe_daemon(fe)->cfg;
    for (size_t i = 0; i < cfg->n_images; i++)
        if (strcmp(cfg->images[i].fsid, fsid) == 0)
            return &cfg->images[i];
    return NULL;
}

/* One state file line: "fsid<TAB>mountpoint<TAB>mount id<TAB>boot id". */
static int state_line(char *out, size_t len, const char *fsid, const char *mountpoint, uint64_t mnt_id,
                      const char *boot_id)
{
    return snprintf(out, len, "%s\t%s\t%" PRIu64 "\t%s\n", fsid, mountpoint, mnt_id, boot_id);
}

/*
 * The state file as it must read after this job, but for the line of a
 * mount being made: its mount id is known only once it exists, so the
 * worker appends that line (state_append_job).
 */
static char *state_render(FanFrontend *fe, const FanJob *job)
{
    size_t cap = 1, len = 0;
    for (FanMount *m = fe->mounts; m; m = m->next)
        cap += (size_t)state_line(NULL, 0, m->image->fsid, m->mountpoint, m->mnt_id, fe->boot_id) + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (FanMount *m = fe->mounts; m; m = m->next)
        if (job->kind != JOB_UMOUNT || strcmp(m->mountpoint, job->mountpoint) != 0)
            len += (size_t)state_line(s + len, cap - len, m->image->fsid, m->mountpoint, m->mnt_id, fe->boot_id);
    return s;
}

/* Worker: add the line of the mount this job made. */
static int state_append_job(FanJob *job)
{
    const char *boot_id = job->fe->boot_id;
    size_t old = strlen(job->state_text);
    size_t add = (size_t)state_line(NULL, 0, job->image->fsid, job->mountpoint, job->mnt_id, boot_id);
    char *s = realloc(job->state_text, old + add + 1);
    if (!s)
        return -ENOMEM;
    state_line(s + old, add + 1, job->image->fsid, job->mountpoint, job->mnt_id, boot_id);
    job->state_text = s;
    return 0;
}

/* Worker: replace the state file atomically, in the work dir and never through a symlink. */
static int state_write(FanFrontend *fe, const char *text)
{
    struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
    return fs_write_atomic_at(fe_daemon(fe)->work_dir_fd, STATE_FILE, &iov, 1, 0600);
}

static void job_fail(FanJob *job, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void job_fail(FanJob *job, int r, const char *fmt, ...)
{
    if (job->result == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->why, sizeof(job->why), fmt, ap);
        va_end(ap);
        job->result = r;
    }
}

static unsigned job_deadline_ms(FanFrontend *fe)
{
    return fe_daemon(fe)->cfg->request_timeout_ms * FAN_MOUNT_DEADLINE_FACTOR;
}

/*
 * At a step boundary on the loop: a job whose deadline passed fails here
 * (never from the timer while a worker may be running one of its steps).
 */
static bool job_stopped(FanJob *job)
{
    if (job->expired)
        job_fail(job, -ETIMEDOUT, "did not finish within %u ms", job_deadline_ms(job->fe));
    return job->result < 0;
}

static void job_unlink(FanFrontend *fe, FanJob *job)
{
    FanJob **p = &fe->jobs, *prev = NULL;
    while (*p != job) {
        prev = *p;
        p = &(*p)->next;
    }
    *p = job->next;
    if (fe->jobs_tail == job)
        fe->jobs_tail = prev;
}

static void job_finish(FanJob *job)
{
    FanFrontend *fe = job->fe;
    const char *what = job->kind == JOB_MOUNT ? "mount" : job->kind == JOB_ATTACH ? "attach" : "umount";
    for (size_t i = 0; i < job->n_blobs; i++) {
        JobBlob *jb = &job->blobs[i];
        if (jb->blob)
            blob_unref(jb->blob);           /* the job's reference; mounts hold their own */
        if (jb->fd >= 0)
            close(jb->fd);                  /* opened, but the blob turned out to be served already */
        blob_info_free(jb->info);
        seg_array_clear(&jb->ready);
    }
    if (job->target_fd >= 0)
        close(job->target_fd);
    if (job->volume_fd >= 0)
        close(job->volume_fd);
    if (job->result < 0)
        log_error("fanotify: %s %s on %s failed: %s", what, job->image ? job->image->fsid : "?", job->mountpoint,
                  job->why);
    else
        log_info("fanotify: %s %s on %s: done", what, job->image ? job->image->fsid : "-", job->mountpoint);
    if (job->kind == JOB_ATTACH && job->result < 0)
        log_error("fanotify: %s stays mounted but NOT served: reads of data not yet fetched return zeros; "
                  "unmount it (umount %s) and mount it again", job->mountpoint, job->mountpoint);
    if (job->req)
        control_reply(job->req, job->result, "%s", job->result < 0 ? job->why : "ok");
    loop_timer_cancel(fe_daemon(fe)->loop, &job->deadline);
    if (job->kind != JOB_ATTACH)
        fe->n_client_jobs--;
    job_unlink(fe, job);
    bool was_committer = fe->committer == job;
    free(job->blobs);
    free(job->state_text);
    free(job);
    if (was_committer) {
        fe->committer = NULL;
        job_commit_next(fe);
    }
    job_schedule(fe);
}

/* Loop: serve the mount a mount or attach job made (its blobs keep their marks while it exists). */
static void mount_track(FanJob *job)
{
    FanFrontend *fe = job->fe;
    FanMount *m = calloc(1, sizeof(*m));
    FanBlob **blobs = calloc(job->n_blobs, sizeof(*blobs));
    if (!m || !blobs) {
        free(m);
        free(blobs);
        /* Mounted but not tracked: it is still served while the blobs live; say so. */
        job_fail(job, -ENOMEM, "mounted, but out of memory tracking the mount");
        return;
    }
    snprintf(m->mountpoint, sizeof(m->mountpoint), "%s", job->mountpoint);
    m->mnt_id = job->mnt_id;
    m->image = job->image;
    m->blobs = blobs;
    m->n_blobs = job->n_blobs;
    for (size_t i = 0; i < job->n_blobs; i++) {
        m->blobs[i] = job->blobs[i].blob;
        m->blobs[i]->refs++;
    }
    m->next = fe->mounts;
    fe->mounts = m;
    if (job->image->prefetch)
        for (size_t i = 0; i < m->n_blobs; i++)
            blob_prefetch_start(m->blobs[i]);
}

/* Loop: after an umount job. Only a mount that is gone is forgotten (and its blobs released). */
static void mount_untrack(FanJob *job)
{
    FanFrontend *fe = job->fe;
    FanMount **p = &fe->mounts;
    while (*p && strcmp((*p)->mountpoint, job->mountpoint) != 0)
        p = &(*p)->next;
    FanMount *m = *p;
    if (!m)
        return;
    if (job->result < 0) {
        if (job->moved)
            snprintf(m->mountpoint, sizeof(m->mountpoint), "%s", job->found_at);
        return;
    }
    *p = m->next;
    for (size_t i = 0; i < m->n_blobs; i++)
        blob_unref(m->blobs[i]);
    free(m->blobs);
    free(m);
}

static void job_mounted(WorkItem *item)
{
    FanJob *job = cfn_container_of(item, FanJob, work);
    if (job->kind == JOB_UMOUNT)
        mount_untrack(job);
    else if (job->result == 0 || job->mounted)
        mount_track(job);
    job_finish(job);
}

/* The kernel's own account of a failed fsconfig (erofs explains itself there), as " (kernel: ...)". */
static void fs_context_log(int fsfd, char *out, size_t len)
{
    char msg[256];
    size_t used = 0;
    ssize_t n;
    out[0] = '\0';
    while (used + 4 < len && (n = read(fsfd, msg, sizeof(msg) - 1)) > 0) {
        msg[n] = '\0';
        used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "; " : " (kernel: ", msg);
    }
    if (used && used + 1 < len)
        snprintf(out + used, len - used, ")");
}

/*
 * Worker: make the erofs mount, still detached (fsopen/fsmount): the source
 * is the bootstrap (or, for a plain image, its cache file) and every blob's
 * cache file is a device=. Never a loop device: only a direct file-backed
 * mount goes through the pre-content hook. The mount's fd, or -errno.
 */
static int erofs_mount_create(FanJob *job)
{
    const char *source = job->plain ? job->blobs[0].path : job->image->bootstrap;
    int fs = fsopen("erofs", FSOPEN_CLOEXEC), mnt = -1, r = 0;
    if (fs < 0)
        r = -errno;
    if (r == 0 && fsconfig(fs, FSCONFIG_SET_STRING, "source", source, 0) < 0)
        r = -errno;
    for (size_t i = 0; r == 0 && !job->plain && i < job->n_blobs; i++)
        if (fsconfig(fs, FSCONFIG_SET_STRING, "device", job->blobs[i].path, 0) < 0)
            r = -errno;
    if (r == 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        r = -errno;
    if (r == 0 && (mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID)) < 0)
        r = -errno;
    if (r < 0) {
        char klog[300] = "";
        if (fs >= 0)
            fs_context_log(fs, klog, sizeof(klog));
        job_fail(job, r, "mounting erofs from %s%s: %s%s", source, job->plain ? "" : " and its blobs", strerror(-r),
                 klog[0] ? klog : r == -EINVAL ? " (the kernel needs CONFIG_EROFS_FS_BACKED_BY_FILE)" : "");
    }
    if (fs >= 0)
        close(fs);
    return r < 0 ? r : mnt;
}

/* The path an fd refers to now ("... (deleted)" once removed). */
static int fd_path(int fd, char *out, size_t len)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    if (n < 0)
        return -errno;
    out[n] = '\0';
    return 0;
}

/*
 * Worker: a mount that landed elsewhere than asked (its directory was
 * renamed between the check and the attach): take it down, or, if that
 * fails, keep it tracked where it is so its reads are still served.
 */
static void erofs_mount_misplaced(FanJob *job, const char *where)
{
    int r = fs_umount_verified(where, job->mnt_id);
    if (r == 0) {
        job->mounted = false;
        job_fail(job, -ESTALE, "mount point %s was moved to %s while it was mounted; unmounted again",
                 job->mountpoint, where);
        return;
    }
    job_fail(job, -ESTALE, "mount point %s was moved while it was mounted: the image is mounted at %s and "
             "served there (taking it down failed: %s); umount %s", job->mountpoint, where, strerror(-r), where);
    snprintf(job->mountpoint, sizeof(job->mountpoint), "%s", where);
}

/*
 * Worker: mount onto the directory resolved when the request began
 * (job->target_fd, never through a symlink), only while it is still at
 * the path asked for, and record the mount's id.
 */
static int job_do_mount(FanJob *job)
{
    char where[PATH_MAX];
    int mnt = erofs_mount_create(job);
    if (mnt < 0)
        return mnt;
    int r = fs_mount_id(mnt, &job->mnt_id);
    if (r < 0)
        job_fail(job, r, "the new mount has no unique id: %s (the fanotify front-end needs Linux >= 6.8)",
                 strerror(-r));
    if (r == 0 && (r = fd_path(job->target_fd, where, sizeof(where))) == 0 && strcmp(where, job->mountpoint) != 0)
        r = -ESTALE;
    if (r == -ESTALE)
        job_fail(job, r, "mount point %s was moved or replaced while the mount was prepared (it is now %s); "
                 "not mounted", job->mountpoint, where);
    if (r == 0 && move_mount(mnt, "", job->target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
        r = -errno;
        job_fail(job, r, "attaching the mount on %s: %s", job->mountpoint, strerror(-r));
    }
    close(mnt);     /* a detached mount that was never attached goes away with its fd */
    if (r < 0)
        return r;
    job->mounted = true;
    /* The directory may have been renamed between the check and the attach. */
    r = fs_mount_lookup(job->mnt_id, where, sizeof(where), NULL, 0);
    if (r == 0 && strcmp(where, job->mountpoint) != 0) {
        erofs_mount_misplaced(job, where);
        return -ESTALE;
    }
    return 0;
}

/*
 * Worker: unmount job->mnt_id, but only where it is: a mount that is gone
 * is forgotten; one found elsewhere, or whose umount fails, stays tracked
 * and served (forgetting it would release its marks: reads of zeros).
 */
static int job_do_umount(FanJob *job)
{
    int r = job->mnt_id ? fs_mount_lookup(job->mnt_id, job->found_at, sizeof(job->found_at), NULL, 0) : -ENOENT;
    if (r == -ENOENT && job->mnt_id) {
        log_info("fanotify: %s was no longer mounted; forgetting it", job->mountpoint);
        return 0;
    }
    if (r == 0 && strcmp(job->found_at, job->mountpoint) != 0) {
        job->moved = true;
        job_fail(job, -ESTALE, "the mount of %s is now at %s (a directory above it was renamed); it stays mounted "
                 "and served: umount %s", job->mountpoint, job->found_at, job->found_at);
        return -ESTALE;
    }
    if (r == 0)
        r = fs_umount_verified(job->mountpoint, job->mnt_id);
    else if (r == -ENOENT)      /* no id (recorded by an older daemon): by path, and never forgotten on failure */
        r = umount2(job->mountpoint, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
    if (r < 0)
        job_fail(job, r, "umount %s: %s%s; it stays mounted and served", job->mountpoint, strerror(-r),
                 r == -ESTALE ? " (the mount on top of that path is not the daemon's)" : "");
    return r;
}

/* Worker: the mount or umount itself, then the state file. */
static void job_mount_work(WorkItem *item, void *ctx)
{
    FanJob *job = cfn_container_of(item, FanJob, work);
    FanFrontend *fe = job->fe;
    int r = 0;
    if (job->kind == JOB_UMOUNT)
        r = job_do_umount(job);
    else if (job->kind == JOB_MOUNT)
        r = job_do_mount(job);
    /* Record what exists now: a mount made (even where it was not asked for), or one gone. */
    bool changed = job->kind == JOB_MOUNT ? job->mounted : job->kind == JOB_UMOUNT && r == 0;
    if (!changed)
        return;
    r = job->kind == JOB_MOUNT ? state_append_job(job) : 0;
    if (r == 0)
        r = state_write(fe, job->state_text);
    if (r < 0)
        log_warn("fanotify: cannot record mounts in %s: %s; a restarted daemon will not serve them",
                 fe->state_path, strerror(-r));
}

/* The job's mount/umount step: one job at a time (fe->committer). */
static void job_commit(FanJob *job)
{
    FanFrontend *fe = job->fe;
    fe->committer = job;
    if (fe->stopping && job->kind != JOB_UMOUNT) {
        /* No new mount the daemon would no longer serve. */
        job_fail(job, -ESHUTDOWN, "the daemon is shutting down");
        job_finish(job);
        return;
    }
    if (job->kind != JOB_ATTACH) {
        job->state_text = state_render(fe, job);
        if (!job->state_text) {
            job_fail(job, -ENOMEM, "out of memory");
            job_finish(job);
            return;
        }
    }
    job->work.work = job_mount_work;
    job->work.done = job_mounted;
    workpool_submit(fe_daemon(fe)->pool, &job->work);
}

static void job_commit_next(FanFrontend *fe)
{
    for (FanJob *j = fe->jobs; j; j = j->next)
        if (j->committing) {
            job_commit(j);      /* may finish j (and start the next one) at once: stop here */
            return;
        }
}

/* From here on the deadline no longer applies: the mount may already be made. */
static void job_run_mount(FanJob *job)
{
    job->committing = true;
    if (!job->fe->committer)
        job_commit(job);
}

/* Loop: every blob's cache file exists and was scanned; create, mark, then mount. */
static void job_files_done(WorkItem *item)
{
    FanJob *job = cfn_container_of(item, FanJob, work);
    FanFrontend *fe = job->fe;
    Daemon *d = fe_daemon(fe);
    if (job_stopped(job)) {
        job_finish(job);
        return;
    }
    for (size_t i = 0; i < job->n_blobs; i++) {
        JobBlob *jb = &job->blobs[i];
        if (jb->blob)
            continue;
        /* A blob another mount already serves (or that this job lists twice) is shared. */
        FanBlob *b = blob_find_inode(fe, jb->dev, jb->ino);
        if (b) {
            b->refs++;
            jb->blob = b;
            continue;
        }
        b = calloc(1, sizeof(*b));
        if (!b) {
            job_fail(job, -ENOMEM, "out of memory");
            break;
        }
        int r = blob_cache_new(&b->cache, d->cache, jb->info, jb->open.src.backend, jb->open.src.backend_id, jb->fd);
        if (r < 0) {
            free(b);
            job_fail(job, r, "blob %s: %s", jb->name, strerror(-r));
            break;
        }
        b->info = CFN_TAKE_PTR(jb->info);
        b->fe = fe;
        b->fd = CFN_TAKE_FD(jb->fd);
        b->dev = jb->dev;
        b->ino = jb->ino;
        b->ready = jb->ready;
        jb->ready = (SegArray){ 0 };
        b->ready_chunks = (uint32_t)jb->ready_count;
        /* The worker scanned the file already: storage need not scan it again on the loop. */
        if (blob_cache_adopt_ready(b->cache, &b->ready, b->ready_chunks) < 0)
            log_debug("fanotify: blob %s: storage rescans its cache file at the first fill", jb->name);
        b->refs = 1;                /* the job's */
        snprintf(b->path, sizeof(b->path), "%s", jb->path);
        snprintf(b->name, sizeof(b->name), "%s", jb->name);
        jb->blob = b;
        FanBlob **bucket = blob_bucket(fe, b->dev, b->ino);
        b->next = *bucket;
        *bucket = b;
        /* An inherited group may still hold an old mark: take it over, so completion removes it. */
        if (!blob_complete(b) || fe->adopted) {
            /* Marked before the mount opens it: the mount's file is then in pre-content mode. */
            if (fanotify_mark(fe->group, FAN_MARK_ADD, FAN_PRE_ACCESS, b->fd, NULL) < 0) {
                r = -errno;
                job_fail(job, r, "cannot mark %s for pre-content events: %s%s", b->path, strerror(-r),
                         r == -EOPNOTSUPP ? " (the cache dir must be on ext4, xfs or btrfs, not tmpfs)" : "");
                break;
            }
            b->marked = true;
            blob_check_complete(b);
        }
        log_info("fanotify: blob %s: %s, %" PRIu64 " bytes, %" PRIu32 "/%" PRIu32 " chunks present%s", b->name,
                 b->path, b->info->uncompressed_size, b->ready_chunks, b->info->chunk_count,
                 b->marked ? ", marked" : ", complete (not marked)");
    }
    if (job_stopped(job)) {
        job_finish(job);
        return;
    }
    job_run_mount(job);
}

/* Copy every metadata block of a plain image into its cache file (worker). */
static int prefill_metadata(FanJob *job, JobBlob *jb)
{
    int src = open(job->image->bootstrap, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        int r = -errno;
        job_fail(job, r, "%s: %s", job->image->bootstrap, strerror(-r));
        return r;
    }
    struct stat st;
    ErofsDataMap map;
    char why[256];
    int r = fstat(src, &st) < 0 ? -errno : 0;
    if (r == 0)
        r = erofs_datamap_build(src, (uint64_t)st.st_size, &map, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "fstat: %s", strerror(-r));
    if (r < 0) {
        close(src);
        job_fail(job, r, "%s: cannot find its metadata: %s", job->image->bootstrap, why);
        return r;
    }
    void *buf = cache_buf_alloc(1u << 20);
    uint64_t meta_blocks = 0;
    for (uint64_t blk = 0; r == 0 && blk < map.blocks;) {
        if (erofs_datamap_is_data(&map, blk)) {
            blk++;
            continue;
        }
        uint64_t run = 1;
        while (blk + run < map.blocks && run < 256 && !erofs_datamap_is_data(&map, blk + run))
            run++;
        size_t len = (size_t)CFN_MIN(run * 4096, (uint64_t)st.st_size - blk * 4096);
        if (!buf) {
            r = -ENOMEM;
        } else if (pread(src, buf, len, (off_t)(blk * 4096)) != (ssize_t)len) {
            r = -EIO;
        } else {
            memset((uint8_t *)buf + len, 0, cfn_align_up(len, 4096) - len);
            r = cache_file_write(jb->fd, buf, cfn_align_up(len, 4096), blk * 4096);
        }
        meta_blocks += run;
        blk += run;
    }
    free(buf);
    close(src);
    if (r < 0)
        job_fail(job, r, "copying the metadata of %s: %s", job->image->bootstrap, strerror(-r));
    else
        log_info("fanotify: %s: %" PRIu64 " inodes, %" PRIu64 " metadata blocks copied, %" PRIu64
                 " data blocks left to fetch on demand", job->image->fsid, map.inodes, meta_blocks, map.data_blocks);
    erofs_datamap_clear(&map);
    return r;
}

/*
 * Worker: open (or create) a blob's cache file in its image's directory,
 * never through a symlink, and only a plain file with no other link: the
 * daemon truncates and writes it as root. The fd or -errno.
 */
static int cache_file_open(int volume_fd, const char *name, bool create, struct stat *st)
{
    int fd = fs_openat2(volume_fd, name, O_RDWR | O_CLOEXEC | O_NOCTTY | (create ? O_CREAT : 0), 0600,
                        FS_RESOLVE_PRIVATE);
    if (fd < 0)
        return fd;
    int r = fstat(fd, st) < 0 ? -errno : !S_ISREG(st->st_mode) ? -EINVAL : st->st_nlink != 1 ? -EMLINK : 0;
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* Worker: create or reuse each new blob's sparse cache file, before anything marks it. */
static void job_files_work(WorkItem *item, void *ctx)
{
    FanJob *job = cfn_container_of(item, FanJob, work);
    for (size_t i = 0; i < job->n_blobs && job->result == 0; i++) {
        JobBlob *jb = &job->blobs[i];
        if (jb->blob)
            continue;
        const BlobInfo *info = jb->info;
        uint64_t size = cfn_align_up(info->uncompressed_size, CFN_PAGE_SIZE);
        /* A live mount still reads the file it opened: re-attaching must find that very file. */
        bool attach = job->kind == JOB_ATTACH;
        struct stat st;
        jb->fd = cache_file_open(job->volume_fd, jb->name, !attach, &st);
        if (jb->fd < 0) {
            int r = jb->fd;
            job_fail(job, r, "cache file %s: %s%s", jb->path, strerror(-r),
                     r == -ELOOP ? " (a symlink: refused, nothing written through it)"
                     : r == -EMLINK ? " (it has other hard links: refused, nothing written)"
                     : r == -EINVAL ? " (not a regular file)"
                     : attach && r == -ENOENT ? " (removed while mounted)" : "");
            return;
        }
        if (attach && (uint64_t)st.st_size != size) {
            job_fail(job, -ESTALE, "cache file %s is %lld bytes, the blob %" PRIu64 " (changed while mounted)",
                     jb->path, (long long)st.st_size, size);
            return;
        }
        if ((uint64_t)st.st_size != size) {
            /* A different size is a different blob: start over rather than serve stale bytes. */
            if (st.st_size)
                log_warn("fanotify: cache file %s is %lld bytes, the blob %" PRIu64 ": discarding it", jb->path,
                         (long long)st.st_size, size);
            if ((st.st_size && ftruncate(jb->fd, 0) < 0) || ftruncate(jb->fd, (off_t)size) < 0) {
                int r = -errno;
                job_fail(job, r, "cache file %s: %s", jb->path, strerror(-r));
                return;
            }
        }
        jb->dev = st.st_dev;
        jb->ino = st.st_ino;
        if (job->plain && job->kind == JOB_MOUNT && prefill_metadata(job, jb) < 0)
            return;
        if (seg_array_init(&jb->ready, info->chunk_count, 1) < 0) {
            job_fail(job, -ENOMEM, "out of memory");
            return;
        }
        /* What an earlier run wrote is still there: do not fetch it again. */
        jb->ready_count = cache_file_scan_ready(jb->fd, info, &jb->ready);
        if (jb->ready_count < 0) {
            seg_array_reset(&jb->ready);
            jb->ready_count = 0;
        }
    }
}

/* The last open to finish (or the hold, dropped) starts the file step. */
static void job_opens_release(FanJob *job)
{
    if (--job->opens_pending)
        return;
    if (job_stopped(job)) {
        job_finish(job);
        return;
    }
    job->work.work = job_files_work;
    job->work.done = job_files_done;
    workpool_submit(fe_daemon(job->fe)->pool, &job->work);
}

static void job_blob_opened(BlobOpenRequest *req, int res)
{
    JobBlob *jb = cfn_container_of(req, JobBlob, open);
    FanJob *job = jb->job;
    if (res < 0)
        job_fail(job, res, "blob %s: %s", jb->name, req->why);
    else {
        jb->info = req->blob;
        if (req->why[0])
            log_warn("fanotify: blob %s: %s", jb->name, req->why);
    }
    job_opens_release(job);
}

/* Loop: the bootstrap head is known; resolve each blob (shared, or opened through the registry). */
static void job_head_done(WorkItem *item)
{
    FanJob *job = cfn_container_of(item, FanJob, work);
    FanFrontend *fe = job->fe;
    Daemon *d = fe_daemon(fe);
    if (job_stopped(job)) {
        job_finish(job);
        return;
    }
    char volume_key[300];
    snprintf(volume_key, sizeof(volume_key), "erofs,%s", job->volume);
    job->opens_pending = 1;     /* held until every open is started */
    for (size_t i = 0; i < job->n_blobs && job->result == 0; i++) {
        JobBlob *jb = &job->blobs[i];
        FanBlob *b = blob_find_path(fe, jb->path);
        if (b) {
            b->refs++;
            jb->blob = b;
            continue;
        }
        char why[192];
        int r = image_registry_lookup(d->images, volume_key, jb->name, &jb->open.src, why, sizeof(why));
        if (r < 0) {
            job_fail(job, r, "%s", why);
            break;
        }
        job->opens_pending++;
        jb->open.done = job_blob_opened;
        image_registry_open_blob(d->images, &jb->open);
    }
    job_opens_release(job);     /* drop the hold: this may start the next step at once */
}

/*
 * Worker: resolve the mount point once, now, to the directory it names,
 * through no symlink: the mount goes onto that directory (job_do_mount),
 * whatever is done to the path meanwhile.
 */
static int job_resolve_mountpoint(FanJob *job)
{
    job->target_fd = fs_openat2(AT_FDCWD, job->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS);
    /* From now on the path is what the kernel says ("//", "." and ".." gone): job_do_mount compares it. */
    int r = job->target_fd;
    if (r >= 0 && (r = fd_path(job->target_fd, job->mountpoint, sizeof(job->mountpoint))) == 0)
        return 0;
    job_fail(job, r, "mount point %s: %s%s", job->mountpoint, strerror(-r),
             r == -ELOOP ? " (it or a directory above it is a symlink: refused; pass the resolved path)" : "");
    return r;
}

/* Worker: a mount recorded by an older daemon has no id: learn it from the path, never through a symlink. */
static void job_find_mount_id(FanJob *job)
{
    int fd = fs_openat2(AT_FDCWD, job->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS);
    int r = fd < 0 ? fd : fs_mount_id(fd, &job->mnt_id);
    if (fd >= 0)
        close(fd);
    if (r < 0)
        log_warn("fanotify: cannot identify the mount at %s (%s): a umount that fails will keep it", job->mountpoint,
                 strerror(-r));
}

/* Worker: read the bootstrap head and name the blobs. */
static void job_head_work(WorkItem *item, void *ctx)
{
    FanJob *job = cfn_container_of(item, FanJob, work);
    FanFrontend *fe = job->fe;
    const ImageConfig *ic = job->image;
    if (job->kind == JOB_MOUNT && job_resolve_mountpoint(job) < 0)
        return;
    if (job->kind == JOB_ATTACH && !job->mnt_id)
        job_find_mount_id(job);
    int fd = open(ic->bootstrap, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        job_fail(job, r, "bootstrap %s: %s", ic->bootstrap, strerror(-r));
        return;
    }
    size_t want = 4096;
    ErofsImageInfo info;
    int r = -EINVAL;
    char why[160] = "";
    for (int attempt = 0; attempt < 2; attempt++) {
        uint8_t *buf = calloc(1, want);
        ssize_t n = buf ? pread(fd, buf, want, 0) : -1;
        size_t need = 0;
        r = n < 0 ? -EIO : erofs_image_parse(buf, (size_t)n, &info, &need, why, sizeof(why));
        free(buf);
        if (r == -EAGAIN && attempt == 0 && need <= (1u << 20) && (size_t)n == want) {
            want = need;
            continue;
        }
        break;
    }
    close(fd);
    if (r < 0) {
        job_fail(job, r, "bootstrap %s is not a usable erofs image: %s", ic->bootstrap, why[0] ? why : strerror(-r));
        return;
    }
    job->plain = info.extra_devices == 0;
    job->n_blobs = job->plain ? 1 : info.extra_devices;
    job->blobs = calloc(job->n_blobs, sizeof(*job->blobs));
    if (!job->blobs) {
        erofs_image_info_clear(&info);
        job_fail(job, -ENOMEM, "out of memory");
        return;
    }
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/%s", fe->cache_root, job->volume) >= (int)sizeof(dir)) {
        erofs_image_info_clear(&info);
        job_fail(job, -ENAMETOOLONG, "cache directory %s/%s: path too long", fe->cache_root, job->volume);
        return;
    }
    job->volume_fd = fs_mkdirat_private(fe->cache_root_fd, job->volume, 0700);
    if (job->volume_fd < 0) {
        r = job->volume_fd;
        erofs_image_info_clear(&info);
        job_fail(job, r, "cache directory %s: %s%s", dir, strerror(-r),
                 r == -ELOOP ? " (a symlink: refused)" : r == -EPERM ? " (not owned by the daemon, or writable by "
                 "others: refused)" : "");
        return;
    }
    for (size_t i = 0; i < job->n_blobs; i++) {
        JobBlob *jb = &job->blobs[i];
        jb->job = job;
        jb->fd = -1;
        const char *name = job->plain ? ic->fsid
                           : info.devices[i].tag[0] ? info.devices[i].tag
                           : i < ic->n_blobs ? ic->blobs[i] : NULL;
        if (!name || !config_name_is_valid(name)) {
            job_fail(job, -EINVAL, "device slot %zu of %s has %s tag; list the blob names in images[].blobs",
                     i, ic->bootstrap, name ? "an unusable" : "no");
            break;
        }
        snprintf(jb->name, sizeof(jb->name), "%s", name);
        if (snprintf(jb->path, sizeof(jb->path), "%s/%s", dir, name) >= (int)sizeof(jb->path)) {
            job_fail(job, -ENAMETOOLONG, "cache path for %s is too long", name);
            break;
        }
    }
    erofs_image_info_clear(&info);
}

static void job_start(FanJob *job)
{
    FanFrontend *fe = job->fe;
    if (fe->stopping) {
        job_fail(job, -ESHUTDOWN, "the daemon is shutting down");
        job_finish(job);
        return;
    }
    if (job->kind == JOB_UMOUNT) {
        FanMount *m = mount_find(fe, job->mountpoint);
        job->mnt_id = m ? m->mnt_id : 0;
        job_run_mount(job);
        return;
    }
    job->work.work = job_head_work;
    job->work.done = job_head_done;
    workpool_submit(fe_daemon(fe)->pool, &job->work);
}

static void log_ready(FanFrontend *fe)
{
    if (fe->ready_logged)
        return;
    fe->ready_logged = true;
    log_info("ready: serving erofs file-backed mounts through fanotify pre-content events (%zu image(s), "
             "cache %s)", fe_daemon(fe)->cfg->n_images, fe->cache_root);
    /*
     * Only now read events: after a crash under `hold`, events queued for
     * mounts being re-attached must wait for their blobs, not meet "unknown".
     */
    group_arm(fe);
}

/* Two jobs that must not overlap: the later one waits for the earlier one. */
static bool jobs_conflict(const FanJob *a, const FanJob *b)
{
    if (strcmp(a->mountpoint, b->mountpoint) == 0)
        return true;
    return a->kind != JOB_UMOUNT && b->kind != JOB_UMOUNT && strcmp(a->volume, b->volume) == 0;
}

static bool job_blocked(const FanFrontend *fe, const FanJob *job)
{
    for (const FanJob *e = fe->jobs; e != job; e = e->next)
        if (jobs_conflict(e, job))
            return true;
    return false;
}

/* Start every waiting job that conflicts with no earlier one. */
static void job_schedule(FanFrontend *fe)
{
    if (fe->scheduling) {
        fe->schedule_again = true;  /* a job finished inside job_start: the outer walk goes again */
        return;
    }
    fe->scheduling = true;
    do {
        fe->schedule_again = false;
        for (FanJob *j = fe->jobs; j; j = j->next) {
            if (j->started || job_blocked(fe, j))
                continue;
            j->started = true;
            job_start(j);
            fe->schedule_again = true;  /* j may be gone already: walk again from the head */
            break;
        }
    } while (fe->schedule_again);
    fe->scheduling = false;
    /* Re-attached mounts are served again only now: announce readiness after them. */
    if (!fe->jobs && !fe->stopping)
        log_ready(fe);
}

/*
 * A mount that has not reached its mount step by its deadline is answered with
 * ETIMEDOUT now; a step in flight (a backend open, a worker) finishes in the
 * background, sees the failure at its boundary and cleans up.
 */
static void job_deadline(LoopTimer *t)
{
    FanJob *job = cfn_container_of(t, FanJob, deadline);
    if (job->committing)
        return;
    unsigned ms = job_deadline_ms(job->fe);
    log_warn("fanotify: mount %s on %s: not done within %u ms; failing it%s", job->image->fsid, job->mountpoint,
             ms, job->started ? " (steps in flight finish in the background)" : " (it was waiting for another job)");
    if (!job->started) {
        job_fail(job, -ETIMEDOUT, "waited %u ms for another mount or umount of the same image or mount point", ms);
        job_finish(job);
        return;
    }
    job->expired = true;
    if (job->req) {
        control_reply(job->req, -ETIMEDOUT, "mount %s on %s did not finish within %u ms (twice request_timeout): "
                      "the backend is slow or unreachable", job->image->fsid, job->mountpoint, ms);
        job->req = NULL;
    }
}

static void job_enqueue(FanFrontend *fe, FanJob *job)
{
    job->fe = fe;
    job->target_fd = job->volume_fd = -1;
    loop_timer_init(&job->deadline, job_deadline);
    if (job->kind == JOB_MOUNT)
        loop_timer_arm(fe_daemon(fe)->loop, &job->deadline, job_deadline_ms(fe));
    if (fe->jobs_tail)
        fe->jobs_tail->next = job;
    else
        fe->jobs = job;
    fe->jobs_tail = job;
    job_schedule(fe);
}

static FanJob *job_find(FanFrontend *fe, const char *mountpoint)
{
    for (FanJob *j = fe->jobs; j; j = j->next)
        if (strcmp(j->mountpoint, mountpoint) == 0)
            return j;
    return NULL;
}

/* ---- control requests ---- */

static void render_status(FanFrontend *fe, char *out, size_t len)
{
    CacheStats cs = cache_service_stats(fe_daemon(fe)->cache);
    const FanStats *s = &fe->stats;
    size_t n = (size_t)snprintf(out, len,
        "frontend=fanotify pid=%d events=%" PRIu64 " fast_allows=%" PRIu64 " self_allows=%" PRIu64 " fills=%" PRIu64
        " allows=%" PRIu64 " denies=%" PRIu64 " timeouts=%" PRIu64 " bad_events=%" PRIu64 " overflows=%" PRIu64
        " marks_removed=%" PRIu64 " prefetches=%" PRIu64 " avg_latency_us=%.1f max_latency_us=%.1f live_events=%u"
        " fetches=%" PRIu64 " bytes_fetched=%" PRIu64 " chunks_written=%" PRIu64 " bytes_written=%" PRIu64
        " chunk_errors=%" PRIu64 "\n",
        (int)fe->self, s->events, s->fast_allows, s->self_allows, s->fills, s->allows, s->denies, s->timeouts, s->bad_events,
        s->overflows, s->marks_removed, s->prefetches,
        s->latency_count ? (double)s->latency_ns_sum / (double)s->latency_count / 1000.0 : 0.0,
        (double)s->latency_ns_max / 1000.0, fe->live_events, cs.fetches, cs.bytes_fetched, cs.chunks_written,
        cs.bytes_written, cs.chunk_errors);
    if (n < len)
        n += image_registry_render_errors(fe_daemon(fe)->images, out + n, len - n);
    for (FanMount *m = fe->mounts; m && n < len; m = m->next)
        n += (size_t)snprintf(out + n, len - n, "mount %s %s\n", m->image->fsid, m->mountpoint);
    for (size_t i = 0; i < BLOB_BUCKETS; i++)
        for (FanBlob *b = fe->blobs[i]; b && n < len; b = b->next)
            n += (size_t)snprintf(out + n, len - n, "blob %s chunks=%" PRIu32 "/%" PRIu32 " marked=%d events=%"
                                  PRIu64 " fills=%" PRIu64 "\n", b->name, b->ready_chunks, b->info->chunk_count,
                                  b->marked, b->events, b->fills);
}

static void control_handle(void *ctx, ControlRequest *req)
{
    FanFrontend *fe = ctx;
    const char *cmd = req->argv[0];
    if (fe->stopping) {
        control_reply(req, -ESHUTDOWN, "the daemon is shutting down");
        return;
    }
    if (strcmp(cmd, "status") == 0 && req->argc == 1) {
        char out[CONTROL_MAX_MSG - 16];
        render_status(fe, out, sizeof(out));
        control_reply(req, 0, "%s", out);
        return;
    }
    bool is_mount = strcmp(cmd, "mount") == 0 && req->argc == 3;
    bool is_umount = strcmp(cmd, "umount") == 0 && req->argc == 2;
    if (!is_mount && !is_umount) {
        control_reply(req, -EINVAL, "usage: mount FSID MOUNTPOINT | umount MOUNTPOINT | status");
        return;
    }
    const char *mnt = req->argv[is_mount ? 2 : 1];
    if (mnt[0] != '/' || strlen(mnt) >= PATH_MAX || strchr(mnt, '\n') || strchr(mnt, '\t')) {
        control_reply(req, -EINVAL, "the mount point must be an absolute path without tabs or newlines");
        return;
    }
    if (job_find(fe, mnt)) {
        control_reply(req, -EBUSY, "a mount or umount of %s is in progress", mnt);
        return;
    }
    if (fe->n_client_jobs >= FAN_MAX_CLIENT_JOBS) {
        control_reply(req, -EBUSY, "%u mount/umount requests are in progress; try again later", fe->n_client_jobs);
        return;
    }
    FanMount *m = mount_find(fe, mnt);
    const ImageConfig *ic = NULL;
    if (is_mount) {
        ic = image_find(fe, req->argv[1]);
        if (!ic) {
            control_reply(req, -ENOENT, "no image with fsid '%s' in the configuration", req->argv[1]);
            return;
        }
        const char *unserved = image_registry_error(fe_daemon(fe)->images, ic->fsid);
        if (unserved) {
            control_reply(req, -EIO, "image %s is not served: %s", ic->fsid, unserved);
            return;
        }
        if (m) {
            control_reply(req, -EBUSY, "%s is already mounted by this daemon (%s)", mnt, m->image->fsid);
            return;
        }
    } else if (!m) {
        control_reply(req, -ENOENT, "%s is not mounted by this daemon", mnt);
        return;
    }
    FanJob *job = calloc(1, sizeof(*job));
    if (!job) {
        control_reply(req, -ENOMEM, "out of memory");
        return;
    }
    job->kind = is_mount ? JOB_MOUNT : JOB_UMOUNT;
    job->req = req;
    job->image = is_mount ? ic : m->image;
    snprintf(job->volume, sizeof(job->volume), "%s", job->image->domain_id ? job->image->domain_id : job->image->fsid);
    snprintf(job->mountpoint, sizeof(job->mountpoint), "%s", mnt);
    fe->n_client_jobs++;
    job_enqueue(fe, job);
}

/* ---- start-up: re-attach the mounts a previous daemon made ---- */

static bool erofs_mounted_at(const char *mountpoint)
{
    FILE *f = fopen("/proc/self/mounts", "re");
    if (!f)
        return false;
    char line[2 * PATH_MAX];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        char src[PATH_MAX], dst[PATH_MAX], type[64];
        if (sscanf(line, "%4095s %4095s %63s", src, dst, type) == 3 && strcmp(type, "erofs") == 0) {
            /* /proc/self/mounts escapes spaces and tabs as \040 and \011. */
            char unesc[PATH_MAX];
            size_t j = 0;
            for (size_t i = 0; dst[i] && j + 1 < sizeof(unesc); i++) {
                if (dst[i] == '\\' && dst[i + 1] >= '0' && dst[i + 1] <= '3' && dst[i + 2] && dst[i + 3]) {
                    unesc[j++] = (char)(((dst[i + 1] - '0') << 6) | ((dst[i + 2] - '0') << 3) | (dst[i + 3] - '0'));
                    i += 3;
                } else {
                    unesc[j++] = dst[i];
                }
            }
            unesc[j] = '\0';
            found = strcmp(unesc, mountpoint) == 0;
        }
    }
    fclose(f);
    return found;
}

/*
 * Where a recorded mount is now: by its id when it was recorded in this
 * boot (it may have moved with a renamed parent), else (an older daemon's
 * line) by its path. Sets *mnt_id to the id, or 0 when unknown; false when
 * it is no longer mounted.
 */
static bool recorded_mount_find(FanFrontend *fe, const char *mnt, const char *id_text, const char *boot_id,
                                char *where, size_t where_len, uint64_t *mnt_id)
{
    char *end = NULL, fstype[64];
    unsigned long long id = id_text ? strtoull(id_text, &end, 10) : 0;
    *mnt_id = 0;
    snprintf(where, where_len, "%s", mnt);
    if (id && end && !*end && boot_id && strcmp(boot_id, fe->boot_id) == 0) {
        /* Unique ids are never reused within a boot; still, it must be an erofs mount. */
        if (fs_mount_lookup(id, where, where_len, fstype, sizeof(fstype)) < 0 || strcmp(fstype, "erofs") != 0)
            return false;
        *mnt_id = id;
        return true;
    }
    return erofs_mounted_at(mnt);
}

static void attach_recorded_mounts(FanFrontend *fe)
{
    int fd = fs_openat2(fe_daemon(fe)->work_dir_fd, STATE_FILE, O_RDONLY | O_CLOEXEC, 0, FS_RESOLVE_PRIVATE);
    FILE *f = fd >= 0 ? fdopen(fd, "re") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        if (fd != -ENOENT)
            log_error("fanotify: cannot read %s: %s; mounts of the previous run are not served", fe->state_path,
                      strerror(fd < 0 ? -fd : errno));
        return;
    }
    char line[PATH_MAX + 256], where[PATH_MAX];
    while (fgets(line, sizeof(line), f)) {
        char *nl = strchr(line, '\n');
        if (!nl || !strchr(line, '\t'))
            continue;
        *nl = '\0';
        char *save = NULL;
        const char *fsid = strtok_r(line, "\t", &save), *mnt = strtok_r(NULL, "\t", &save);
        const char *id_text = strtok_r(NULL, "\t", &save), *boot_id = strtok_r(NULL, "\t", &save);
        uint64_t mnt_id;
        if (!fsid || !mnt)
            continue;
        const ImageConfig *ic = image_find(fe, fsid);
        if (!recorded_mount_find(fe, mnt, id_text, boot_id, where, sizeof(where), &mnt_id)) {
            log_info("fanotify: %s (%s) from the previous run is no longer mounted", mnt, fsid);
            continue;
        }
        if (strcmp(where, mnt) != 0) {
            log_warn("fanotify: %s (%s) from the previous run is now mounted at %s", mnt, fsid, where);
            mnt = where;
        }
        if (!ic) {
            log_error("fanotify: %s is mounted with image %s, which is no longer configured: NOT served, reads of "
                      "missing data return zeros; unmount it", mnt, fsid);
            continue;
        }
        const char *unserved = image_registry_error(fe_daemon(fe)->images, fsid);
        if (unserved) {
            log_error("fanotify: %s is mounted with image %s, which is not served (%s): reads of missing data "
                      "return zeros; unmount it", mnt, fsid, unserved);
            continue;
        }
        FanJob *job = calloc(1, sizeof(*job));
        if (!job)
            break;
        job->kind = JOB_ATTACH;
        job->mnt_id = mnt_id;
        job->image = ic;
        snprintf(job->volume, sizeof(job->volume), "%s", ic->domain_id ? ic->domain_id : ic->fsid);
        snprintf(job->mountpoint, sizeof(job->mountpoint), "%s", mnt);
        log_info("fanotify: re-attaching %s (%s) from the previous run", mnt, fsid);
        job_enqueue(fe, job);
    }
    fclose(f);
}

/* ---- front-end ops ---- */

int fanotify_control_path(const char *work_dir, char *out, size_t out_len)
{
    if (snprintf(out, out_len, "%s/control.sock", work_dir) >= (int)out_len)
        return -ENAMETOOLONG;
    return 0;
}

/* This boot's id: mount ids recorded in another boot mean nothing. */
static void read_boot_id(char *out, size_t len)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    out[0] = '\0';
    if (f) {
        if (fgets(out, (int)len, f))
            out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
    if (!out[0])
        snprintf(out, len, "unknown");
}

/*
 * An inherited group may still hold events the previous daemon read but
 * never answered; their readers would wait forever. Their fd numbers were
 * the old process's, so answer every plausible number with EIO (a number
 * that matches nothing is rejected with ENOENT, harmlessly).
 */
static void adopt_sweep(FanFrontend *fe)
{
    unsigned answered = 0;
    for (int fd = 0; fd < 65536; fd++) {
        struct fanotify_response resp = { .fd = fd, .response = FAN_DENY_ERRNO(EIO) };
        if (write(fe->group, &resp, sizeof(resp)) == (ssize_t)sizeof(resp))
            answered++;
    }
    if (answered)
        log_warn("fanotify: %u event(s) read but never answered by the previous daemon were failed with EIO", answered);
}

static int fan_start(Frontend *base)
{
    FanFrontend *fe = cfn_container_of(base, FanFrontend, base);
    Daemon *d = fe_daemon(fe);
    const Config *cfg = d->cfg;
    char err[512];
    int r;

    fe->self = getpid();
    if (snprintf(fe->cache_root, sizeof(fe->cache_root), "%s/fanotify", cfg->cache_dir) >= (int)sizeof(fe->cache_root) ||
        snprintf(fe->state_path, sizeof(fe->state_path), "%s/%s", cfg->work_dir, STATE_FILE) >= (int)sizeof(fe->state_path)) {
        log_error("fanotify: cache_dir or work_dir path is too long");
        return -ENAMETOOLONG;
    }
    /* cache_dir and work_dir were checked and opened at start-up (daemon_new). */
    fe->cache_root_fd = fs_mkdirat_private(d->cache_dir_fd, "fanotify", 0700);
    if (fe->cache_root_fd < 0) {
        r = fe->cache_root_fd;
        log_error("fanotify: cache directory %s: %s%s", fe->cache_root, strerror(-r),
                  r == -ELOOP ? " (a symlink: refused)" : r == -EPERM ? " (not owned by the daemon, or writable by "
                  "others: refused)" : "");
        return r;
    }
    read_boot_id(fe->boot_id, sizeof(fe->boot_id));
    if (fe->group < 0) {
        /*
         * O_RDWR event fds (FMODE_NONOTIFY) could be written without raising events.
         * FAN_UNLIMITED_QUEUE: every queued permission event is a blocked task, so the
         * queue is bounded by the tasks anyway, and an overflow would allow reads of holes.
         */
        fe->group = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE,
                                  O_RDWR | O_LARGEFILE);
        if (fe->group < 0) {
            r = -errno;
            log_error("fanotify: cannot create a pre-content group: %s%s", strerror(-r),
                      r == -EINVAL ? " (kernel older than 6.14 or without CONFIG_FANOTIFY_ACCESS_PERMISSIONS)"
                      : r == -EPERM ? " (needs CAP_SYS_ADMIN)" : "");
            return r;
        }
    } else {
        int fl = fcntl(fe->group, F_GETFL);
        if (fl < 0 || fcntl(fe->group, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fe->group, F_SETFD, FD_CLOEXEC) < 0) {
            r = -errno;
            log_error("fanotify: inherited group fd %d is not usable: %s", fe->group, strerror(-r));
            return r;
        }
        fe->adopted = true;
        adopt_sweep(fe);
    }
    char sock[PATH_MAX];
    if ((r = fanotify_control_path(cfg->work_dir, sock, sizeof(sock))) < 0 ||
        (r = control_server_new(&fe->control, d->loop, sock, control_handle, fe, err, sizeof(err))) < 0) {
        log_error("fanotify: %s", r == -ENAMETOOLONG ? "work_dir path is too long for a socket" : err);
        return r;
    }
    log_info("fanotify: control socket %s%s", sock, fe->adopted ? "; inherited group: marks kept across the restart" : "");
    attach_recorded_mounts(fe);
    if (!fe->jobs)
        log_ready(fe);
    return 0;
}

static void fan_stop(Frontend *base)
{
    FanFrontend *fe = cfn_container_of(base, FanFrontend, base);
    fe->stopping = true;
    /*
     * Their fills end only once the backends are cancelled: answer the
     * readers now with EIO rather than keep them waiting, and never let
     * the group's close allow them onto holes.
     */
    for (FanEvent *ev = fe->live; ev; ev = ev->next)
        event_answer(ev, -ESHUTDOWN, "the daemon is stopping");
}

/* At exit: the answer an event can get without a fill. */
static void answer_without_fill(FanFrontend *fe, const FanotifyEvent *ev)
{
    struct stat st;
    FanBlob *b = NULL;
    if (!(ev->mask & CFN_FAN_PERM_EVENTS)) {
        close(ev->fd);
        return;
    }
    if (!(ev->mask & FAN_PRE_ACCESS) || ev->pid == fe->self) {
        respond(fe, ev->fd, FAN_ALLOW, 0);
        return;
    }
    if (fstat(ev->fd, &st) == 0)
        b = blob_find_inode(fe, st.st_dev, st.st_ino);
    if (b && ev->has_range) {
        uint64_t end = CFN_MIN(ev->offset + ev->count, b->info->uncompressed_size);
        if (ev->offset >= end || blob_range_ready(b, ev->offset, end)) {
            respond(fe, ev->fd, FAN_ALLOW, 0);
            return;
        }
    }
    deny(fe, ev->fd, 0);
}

static void drain_queued(FanFrontend *fe)
{
    /* Events still queued would be allowed onto holes by the group's close: answer them now. */
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(fe->group, fe->buf, sizeof(fe->buf));
        if (n <= 0)
            break;
        for (size_t pos = 0; pos < (size_t)n;) {
            FanotifyEvent ev;
            size_t skip;
            char why[160];
            int r = fanotify_event_parse(fe->buf + pos, (size_t)n - pos, &ev, &skip, why, sizeof(why));
            if (ev.fd >= 0 && r < 0 && !(ev.mask & CFN_FAN_PERM_EVENTS))
                close(ev.fd);
            else if (ev.fd >= 0 && r < 0)
                deny(fe, ev.fd, 0);
            else if (ev.fd >= 0)
                answer_without_fill(fe, &ev);
            if (r < 0 && !skip)
                break;
            pos += r < 0 ? skip : (size_t)r;
        }
    }
}

/* Fills ahead of readers, whole-blob prefetches or fetches still in flight. */
static bool storage_busy(FanFrontend *fe)
{
    for (size_t i = 0; i < BLOB_BUCKETS; i++)
        for (FanBlob *b = fe->blobs[i]; b; b = b->next)
            if (b->prefetching || b->pf_inflight || blob_cache_busy(b->cache))
                return true;
    return false;
}

/* Shutdown: drop the mounts' blob references; nothing is in flight, so every cache closes at once. */
static void release_mounts(FanFrontend *fe)
{
    unsigned incomplete = 0;
    for (size_t i = 0; i < BLOB_BUCKETS; i++)
        for (FanBlob *b = fe->blobs[i]; b; b = b->next)
            incomplete += b->marked;
    if (fe->mounts && incomplete)
        log_warn("fanotify: %u blob(s) of mounts that stay behind are incomplete: until a daemon serves them "
                 "again, reads of missing data return zeros (run under `cachefilesd-nydus hold` to keep "
                 "readers waiting instead)", incomplete);
    while (fe->mounts) {
        FanMount *m = fe->mounts;
        fe->mounts = m->next;
        for (size_t i = 0; i < m->n_blobs; i++)
            blob_unref(m->blobs[i]);
        free(m->blobs);
        free(m);
    }
}

/*
 * A reader denied at shutdown retries its page at once (the kernel's
 * read_folio after a failed readahead): answer such retries too before the
 * group closes, or they would be allowed onto holes (the fanotify-shutdown
 * tests saw zeros without this). Until the group has been quiet for 100 ms
 * (a busy machine may take that long to run the reader again), at most 1 s.
 */
static void answer_until_quiet(FanFrontend *fe)
{
    uint64_t end = loop_now_ns() + 1000 * 1000000ull;
    drain_queued(fe);
    while (loop_now_ns() < end) {
        struct pollfd p = { .fd = fe->group, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            break;
        drain_queued(fe);
    }
}

/*
 * Shutdown: answer what was queued since stop() without a fill, let the
 * running job end (its transfers are cancelled; queued ones are refused);
 * done once no event, fill, fetch or closing cache is left.
 */
static bool fan_drain(Frontend *base)
{
    FanFrontend *fe = cfn_container_of(base, FanFrontend, base);
    if (fe->group >= 0)
        drain_queued(fe);
    return !fe->jobs && !fe->live_events && !storage_busy(fe) && !fe->releasing;
}

static void fan_free(Frontend *base)
{
    FanFrontend *fe = cfn_container_of(base, FanFrontend, base);
    Daemon *d = fe_daemon(fe);
    loop_timer_cancel(d->loop, &fe->backoff);
    fe->control = control_server_free(fe->control);
    if (fe->group >= 0)
        answer_until_quiet(fe);     /* the blobs are still known: present ranges are allowed */
    release_mounts(fe);
    /* Closing the group removes every mark; the mounts and cache files stay for the next daemon. */
    if (fe->group >= 0) {
        drain_queued(fe);
        close(fe->group);
    }
    if (fe->cache_root_fd >= 0)
        close(fe->cache_root_fd);
    free(fe);
}

static const FrontendOps fanotify_frontend_ops = {
    .name = "fanotify",
    .start = fan_start,
    .stop = fan_stop,
    .drain = fan_drain,
    .free = fan_free,
};

int frontend_fanotify_new(Frontend **ret, Daemon *d, int group_fd)
{
    FanFrontend *fe = calloc(1, sizeof(*fe));
    if (!fe)
        return -ENOMEM;
    fe->base.ops = &fanotify_frontend_ops;
    fe->base.daemon = d;
    fe->group = group_fd;
    fe->cache_root_fd = -1;
    loop_timer_init(&fe->backoff, group_backoff);
    fe->read_errors.interval_ms = 10000;
    *ret = &fe->base;
    return 0;
}

int fanotify_probe(const char *dir, char *why, size_t why_len)
{
    int r = fs_mkdir_p(dir, 0755);
    if (r < 0) {
        snprintf(why, why_len, "cannot create %s: %s", dir, strerror(-r));
        return r;
    }
    int g = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDWR | O_LARGEFILE);
    if (g < 0) {
        r = -errno;
        snprintf(why, why_len, "fanotify_init(FAN_CLASS_PRE_CONTENT): %s%s", strerror(-r),
                 r == -EINVAL ? ": kernel older than 6.14 or without CONFIG_FANOTIFY_ACCESS_PERMISSIONS"
                 : r == -EPERM ? ": needs CAP_SYS_ADMIN" : "");
        return r;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.fanotify-probe-XXXXXX", dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(why, why_len, "cannot create a file in %s: %s", dir, strerror(-r));
        close(g);
        return r;
    }
    r = fanotify_mark(g, FAN_MARK_ADD, FAN_PRE_ACCESS, fd, NULL) < 0 ? -errno : 0;
    if (r < 0)
        snprintf(why, why_len, "FAN_PRE_ACCESS mark on a file in %s: %s%s", dir, strerror(-r),
                 r == -EOPNOTSUPP ? ": the file system cannot raise pre-content events (use ext4, xfs or btrfs)"
                 : r == -EINVAL ? ": kernel older than 6.14" : "");
    unlink(path);
    close(fd);
    close(g);
    return r;
}
