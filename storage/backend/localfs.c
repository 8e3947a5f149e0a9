/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * localfs: blobs are files named by blob id in one directory. Opens and
 * reads go through the loop's io_uring (opens always on io-wq: a hung network
 * file system or a FIFO in the directory never blocks the loop; anything but
 * a regular file is refused, EINVAL). A blob stays open once used, so a blob
 * file removed while mounted keeps serving the bytes it had.
 *
 * Page-aligned reads into page-aligned buffers (raw blobs' chunks) bypass the
 * page cache (O_DIRECT): the bytes are copied into the cache file anyway, so
 * caching the source too would cost a second copy of every byte and as much
 * memory again. Everything else, and file systems that refuse O_DIRECT, read
 * through the page cache.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

typedef struct LocalFs LocalFs;

typedef struct LocalFile {
    LocalFs *fs;            /* NULL once the backend was freed while the file was opening */
    char *name;
    int fd;
    int direct_fd;          /* the same file opened O_DIRECT, or -1 */
    bool direct_refused;    /* a direct read failed with EINVAL: page cache only from then on */
    bool ready;             /* both opens done; until then requests wait in `waiting` */
    LoopOp open_op;
    char proc_path[40];     /* /proc/self/fd/N, for the O_DIRECT open */
    BackendRequest **waiting;
    size_t n_waiting, cap_waiting;
} LocalFile;

struct LocalFs {
    Backend base;
    int dirfd;
    LocalFile **files;
    size_t n_files, cap_files;
    bool cancelled;                 /* shutdown: requests end with -ECANCELED */
    BackendRequest **cancelled_reqs;    /* waited for an open; done(-ECANCELED) on the next turn */
    size_t n_cancelled;
    LoopTimer cancel_timer;
};

/* A blob name is one path component: no separators, no dot entries. */
static bool name_is_safe(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return strchr(name, '/') == NULL;
}

static void local_file_free(LocalFile *f)
{
    if (f->direct_fd >= 0)
        close(f->direct_fd);
    if (f->fd >= 0)
        close(f->fd);
    free(f->waiting);
    free(f->name);
    free(f);
}

static LocalFile *localfs_find(LocalFs *fs, const char *name)
{
    for (size_t i = 0; i < fs->n_files; i++)
        if (strcmp(fs->files[i]->name, name) == 0)
            return fs->files[i];
    return NULL;
}

static void localfs_forget(LocalFs *fs, LocalFile *f)
{
    for (size_t i = 0; i < fs->n_files; i++)
        if (fs->files[i] == f) {
            fs->files[i] = fs->files[--fs->n_files];
            return;
        }
}

static int localfs_wait(LocalFile *f, BackendRequest *req)
{
    if (f->n_waiting == f->cap_waiting) {
        size_t cap = f->cap_waiting ? f->cap_waiting * 2 : 4;
        BackendRequest **w = realloc(f->waiting, cap * sizeof(*w));
        if (!w)
            return -ENOMEM;
        f->waiting = w;
        f->cap_waiting = cap;
    }
    f->waiting[f->n_waiting++] = req;
    return 0;
}

static int localfs_start(LocalFile *f, BackendRequest *req);

/* The open is over: start (or fail) everything that waited for it. */
static void localfs_release_waiting(LocalFile *f, int res)
{
    BackendRequest **waiting = f->waiting;
    size_t n = f->n_waiting;
    f->waiting = NULL;
    f->n_waiting = f->cap_waiting = 0;
    if (res < 0) {
        localfs_forget(f->fs, f);
        local_file_free(f);     /* a later request tries the open again */
    }
    for (size_t i = 0; i < n; i++) {
        int r = res < 0 ? res : localfs_start(f, waiting[i]);
        if (r < 0)
            waiting[i]->done(waiting[i], r);
    }
    free(waiting);
}

static void localfs_direct_opened(LoopOp *op, int res)
{
    LocalFile *f = cfn_container_of(op, LocalFile, open_op);
    f->direct_fd = res >= 0 ? res : -1;
    if (!f->fs) {
        local_file_free(f);
        return;
    }
    f->ready = true;
    localfs_release_waiting(f, 0);
}

static const char *file_type_name(mode_t mode)
{
    return S_ISFIFO(mode) ? "a FIFO" : S_ISDIR(mode) ? "a directory" : S_ISCHR(mode) ? "a character device"
         : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : "not a regular file";
}

/*
 * Opened with O_NONBLOCK, so that a FIFO named like a blob opens at once (and
 * is refused here) instead of waiting for a writer; a regular file then gets
 * ordinary blocking semantics back.
 */
static int check_regular(LocalFile *f, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode)) {
        log_warn("localfs: blob %s is %s, not a regular file: refused", f->name, file_type_name(st.st_mode));
        return -EINVAL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static void localfs_opened(LoopOp *op, int res)
{
    LocalFile *f = cfn_container_of(op, LocalFile, open_op);
    if (!f->fs) {
        if (res >= 0)
            close(res);
        local_file_free(f);
        return;
    }
    if (res >= 0) {
        int r = check_regular(f, res);
        if (r < 0) {
            close(res);
            res = r;
        }
    }
    if (res < 0) {
        localfs_release_waiting(f, res);
        return;
    }
    f->fd = res;
    /* Through /proc: the same inode, even if the name was replaced in between. */
    snprintf(f->proc_path, sizeof(f->proc_path), "/proc/self/fd/%d", f->fd);
    f->open_op.fn = localfs_direct_opened;
    int r = loop_openat(f->fs->base.loop, &f->open_op, AT_FDCWD, f->proc_path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (r < 0)
        localfs_direct_opened(&f->open_op, r);
}

/*
 * The file of blob `name`, opening it on first use. The opens run on io-wq
 * (loop_openat): a blob directory on a hung network file system, or a FIFO
 * in it, never blocks the loop thread.
 */
static int localfs_file(LocalFs *fs, const char *name, LocalFile **ret)
{
    LocalFile *f = localfs_find(fs, name);
    if (f) {
        *ret = f;
        return 0;
    }
    if (!name_is_safe(name))
        return -EINVAL;
    if (fs->n_files == fs->cap_files) {
        size_t cap = fs->cap_files ? fs->cap_files * 2 : 8;
        LocalFile **files = realloc(fs->files, cap * sizeof(*files));
        if (!files)
            return -ENOMEM;
        fs->files = files;
        fs->cap_files = cap;
    }
    f = calloc(1, sizeof(*f));
    if (!f || !(f->name = strdup(name))) {
        free(f);
        return -ENOMEM;
    }
    f->fs = fs;
    f->fd = f->direct_fd = -1;
    f->open_op.fn = localfs_opened;
    int r = loop_openat(fs->base.loop, &f->open_op, fs->dirfd, f->name,
                        O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (r < 0) {
        local_file_free(f);
        return r;
    }
    fs->files[fs->n_files++] = f;
    *ret = f;
    return 0;
}

static bool read_can_be_direct(const LocalFile *f, const BackendRequest *req)
{
    uint64_t off = req->off + req->done_bytes;
    uint32_t len = req->len - req->done_bytes;
    uintptr_t buf = (uintptr_t)req->buf + req->done_bytes;
    /* O_DIRECT needs offset, length and buffer aligned to the logical block size; a page covers them all. */
    return f->direct_fd >= 0 && !f->direct_refused && off % CFN_PAGE_SIZE == 0 && len % CFN_PAGE_SIZE == 0 &&
           buf % CFN_PAGE_SIZE == 0;
}

static void localfs_read_step(LoopOp *op, int res);

static int localfs_read_next(LocalFile *f, BackendRequest *req)
{
    req->op.fn = localfs_read_step;
    /* After a short direct read the rest may be unaligned: it goes through the page cache. */
    req->fd = read_can_be_direct(f, req) ? f->direct_fd : f->fd;
    return loop_read(f->fs->base.loop, &req->op, req->fd, (uint8_t *)req->buf + req->done_bytes,
                     req->len - req->done_bytes, req->off + req->done_bytes);
}

static void localfs_read_step(LoopOp *op, int res)
{
    BackendRequest *req = cfn_container_of(op, BackendRequest, op);
    LocalFile *f = req->priv;
    if (f->fs->cancelled) {
        /* A read on the ring cannot be aborted; what it brought is dropped rather than continued. */
        req->done(req, -ECANCELED);
        return;
    }
    if (res == -EINVAL && req->fd == f->direct_fd) {
        /*
         * The file system took O_DIRECT at open but not this read: use the page
         * cache from now on. The fd stays open, so that other direct reads
         * still in flight are recognised here too and retried the same way.
         */
        if (!f->direct_refused)
            log_debug("localfs: %s: direct reads refused, reading through the page cache", f->name);
        f->direct_refused = true;
        res = 0;
    }
    if (res == -EINTR || res == -EAGAIN)
        res = 0;            /* retry the same range */
    else if (res == 0)
        res = -ENODATA;     /* the file ends before the range does */
    if (res < 0) {
        req->done(req, res);
        return;
    }
    req->done_bytes += (uint32_t)res;
    if (req->done_bytes == req->len) {
        req->done(req, (int)req->len);
        return;
    }
    int r = localfs_read_next(f, req);
    if (r < 0)
        req->done(req, r);
}

static void localfs_size_done(LoopOp *op, int res)
{
    BackendRequest *req = cfn_container_of(op, BackendRequest, op);
    LocalFile *f = req->priv;
    req->done(req, f->fs->cancelled ? -ECANCELED : res);
}

static int localfs_start(LocalFile *f, BackendRequest *req)
{
    req->fd = f->fd;
    req->priv = f;
    req->done_bytes = 0;
    if (req->kind == BACKEND_SIZE) {
        struct stat st;
        if (fstat(f->fd, &st) < 0)
            return -errno;
        req->size = (uint64_t)st.st_size;
        /* A zero-length read on the ring completes at once and keeps done() asynchronous. */
        req->op.fn = localfs_size_done;
        return loop_read(f->fs->base.loop, &req->op, f->fd, NULL, 0, 0);
    }
    return localfs_read_next(f, req);
}

static int localfs_submit(Backend *b, BackendRequest *req)
{
    LocalFs *fs = cfn_container_of(b, LocalFs, base);
    LocalFile *f = NULL;
    if (fs->cancelled)
        return -ECANCELED;
    if (req->kind == BACKEND_READ && req->len == 0)
        return -EINVAL;
    int r = localfs_file(fs, req->blob_id, &f);
    if (r < 0)
        return r;
    if (!f->ready)
        return localfs_wait(f, req);
    return localfs_start(f, req);
}

static void localfs_cancelled_fire(LoopTimer *t)
{
    LocalFs *fs = cfn_container_of(t, LocalFs, cancel_timer);
    BackendRequest **reqs = fs->cancelled_reqs;
    size_t n = fs->n_cancelled;
    fs->cancelled_reqs = NULL;
    fs->n_cancelled = 0;
    for (size_t i = 0; i < n; i++)
        reqs[i]->done(reqs[i], -ECANCELED);
    free(reqs);
}

/*
 * Shutdown: requests waiting for an open (which may never end on a hung file
 * system) end with -ECANCELED on the next loop turn; reads on the ring end
 * at their next step.
 */
static void localfs_cancel(Backend *b)
{
    LocalFs *fs = cfn_container_of(b, LocalFs, base);
    fs->cancelled = true;
    size_t n = 0;
    for (size_t i = 0; i < fs->n_files; i++)
        n += fs->files[i]->n_waiting;
    if (!n || !(fs->cancelled_reqs = calloc(n, sizeof(*fs->cancelled_reqs))))
        return;     /* without memory they end when their open does */
    for (size_t i = 0; i < fs->n_files; i++) {
        LocalFile *f = fs->files[i];
        for (size_t k = 0; k < f->n_waiting; k++)
            fs->cancelled_reqs[fs->n_cancelled++] = f->waiting[k];
        f->n_waiting = 0;
    }
    loop_timer_arm(fs->base.loop, &fs->cancel_timer, 0);
}

static void localfs_free(Backend *b)
{
    LocalFs *fs = cfn_container_of(b, LocalFs, base);
    loop_timer_cancel(fs->base.loop, &fs->cancel_timer);
    free(fs->cancelled_reqs);
    for (size_t i = 0; i < fs->n_files; i++) {
        LocalFile *f = fs->files[i];
        if (f->ready) {
            local_file_free(f);
        } else {
            /* Its open is in flight: the completion frees it. Whoever waited is going away too. */
            f->fs = NULL;
            f->n_waiting = 0;
        }
    }
    free(fs->files);
    if (fs->dirfd >= 0)
        close(fs->dirfd);
    free(fs);
}

static const BackendOps localfs_ops = {
    .name = "localfs",
    .submit = localfs_submit,
    .cancel = localfs_cancel,
    .free = localfs_free,
};

int backend_localfs_new(Backend **ret, Loop *loop, const char *dir)
{
    LocalFs *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    fs->base.ops = &localfs_ops;
    fs->base.loop = loop;
    loop_timer_init(&fs->cancel_timer, localfs_cancelled_fire);
    fs->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->dirfd < 0) {
        int r = -errno;
        free(fs);
        return r;
    }
    *ret = &fs->base;
    return 0;
}
