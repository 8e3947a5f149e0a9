/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * localfs: blobs are files named by blob id in one directory. Reads go
 * through the loop's io_uring. A blob stays open once used, so a blob file
 * removed while mounted keeps serving the bytes it had.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

typedef struct LocalFile {
    char *name;
    int fd;
} LocalFile;

typedef struct LocalFs {
    Backend base;
    int dirfd;
    LocalFile *files;
    size_t n_files, cap_files;
} LocalFs;

/* A blob name is one path component: no separators, no dot entries. */
static bool name_is_safe(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return strchr(name, '/') == NULL;
}

static int localfs_fd(LocalFs *fs, const char *name)
{
    for (size_t i = 0; i < fs->n_files; i++)
        if (strcmp(fs->files[i].name, name) == 0)
            return fs->files[i].fd;
    if (!name_is_safe(name))
        return -EINVAL;
    if (fs->n_files == fs->cap_files) {
        size_t cap = fs->cap_files ? fs->cap_files * 2 : 8;
        LocalFile *f = realloc(fs->files, cap * sizeof(*f));
        if (!f)
            return -ENOMEM;
        fs->files = f;
        fs->cap_files = cap;
    }
    int fd = openat(fs->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    char *copy = strdup(name);
    if (!copy) {
        close(fd);
        return -ENOMEM;
    }
    fs->files[fs->n_files++] = (LocalFile){ .name = copy, .fd = fd };
    return fd;
}

static void localfs_read_step(LoopOp *op, int res);

static int localfs_read_next(LocalFs *fs, BackendRequest *req)
{
    req->op.fn = localfs_read_step;
    return loop_read(fs->base.loop, &req->op, req->fd, (uint8_t *)req->buf + req->done_bytes,
                     req->len - req->done_bytes, req->off + req->done_bytes);
}

static void localfs_read_step(LoopOp *op, int res)
{
    BackendRequest *req = cfn_container_of(op, BackendRequest, op);
    LocalFs *fs = req->priv;
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
    int r = localfs_read_next(fs, req);
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
    int fd = localfs_fd(fs, req->blob_id);
    if (fd < 0)
        return fd;
    req->fd = fd;
    req->priv = fs;
    req->done_bytes = 0;
    if (req->kind == BACKEND_SIZE) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            return -errno;
        req->size = (uint64_t)st.st_size;
        /* A zero-length read on the ring completes at once and keeps done() asynchronous. */
        req->op.fn = localfs_size_done;
        return loop_read(fs->base.loop, &req->op, fd, NULL, 0, 0);
    }
    if (req->len == 0)
        return -EINVAL;
    return localfs_read_next(fs, req);
}

static void localfs_free(Backend *b)
{
    LocalFs *fs = cfn_container_of(b, LocalFs, base);
    for (size_t i = 0; i < fs->n_files; i++) {
        close(fs->files[i].fd);
        free(fs->files[i].name);
    }
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
