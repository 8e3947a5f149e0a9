/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * localfs: blobs are files named by blob id in one directory. Reads go
 * through the loop's io_uring. A blob stays open once used, so a blob file
 * removed while mounted keeps serving the bytes it had.
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
    LocalFs *fs;
    char *name;
    int fd;
    int direct_fd;          /* the same file opened O_DIRECT, or -1 */
    bool direct_refused;    /* a direct read failed with EINVAL: page cache only from then on */
} LocalFile;

struct LocalFs {
    Backend base;
    int dirfd;
    LocalFile **files;
    size_t n_files, cap_files;
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
    close(f->fd);
    free(f->name);
    free(f);
}

static int localfs_file(LocalFs *fs, const char *name, LocalFile **ret)
{
    for (size_t i = 0; i < fs->n_files; i++)
        if (strcmp(fs->files[i]->name, name) == 0) {
            *ret = fs->files[i];
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
    int fd = openat(fs->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    LocalFile *f = calloc(1, sizeof(*f));
    if (!f || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int r = f ? -EINVAL : -ENOMEM;
        free(f);
        close(fd);
        return r;
    }
    *f = (LocalFile){ .fs = fs, .name = strdup(name), .fd = fd, .direct_fd = -1 };
    if (!f->name) {
        local_file_free(f);
        return -ENOMEM;
    }
    /* Through /proc: the same inode, even if the name was replaced in between. */
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    f->direct_fd = open(self, O_RDONLY | O_CLOEXEC | O_DIRECT);
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
    req->done(req, res);
}

static int localfs_submit(Backend *b, BackendRequest *req)
{
    LocalFs *fs = cfn_container_of(b, LocalFs, base);
    LocalFile *f = NULL;
    int r = localfs_file(fs, req->blob_id, &f);
    if (r < 0)
        return r;
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
        return loop_read(fs->base.loop, &req->op, f->fd, NULL, 0, 0);
    }
    if (req->len == 0)
        return -EINVAL;
    return localfs_read_next(f, req);
}

static void localfs_free(Backend *b)
{
    LocalFs *fs = cfn_container_of(b, LocalFs, base);
    for (size_t i = 0; i < fs->n_files; i++)
        local_file_free(fs->files[i]);
    free(fs->files);
    if (fs->dirfd >= 0)
        close(fs->dirfd);
    free(fs);
}

static const BackendOps localfs_ops = {
    .name = "localfs",
    .submit = localfs_submit,
    .free = localfs_free,
};

int backend_localfs_new(Backend **ret, Loop *loop, const char *dir)
{
    LocalFs *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    fs->base.ops = &localfs_ops;
    fs->base.loop = loop;
    fs->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->dirfd < 0) {
        int r = -errno;
        free(fs);
        return r;
    }
    *ret = &fs->base;
    return 0;
}
