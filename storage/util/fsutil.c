/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macros.h"

int fs_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = c;
        if (!c)
            return 0;
    }
}

int fs_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve)
{
    struct open_how how = {
        .flags = (uint64_t)(unsigned)flags,
        .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
        .resolve = resolve,
    };
    for (;;) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        if (errno != EINTR && errno != EAGAIN)  /* EAGAIN: a concurrent rename under RESOLVE_BENEATH */
            return -errno;
    }
}

/* Owned by root or `owner`, and not writable by group or others. */
static bool dir_is_private(const struct stat *st, uid_t owner)
{
    return (st->st_uid == 0 || st->st_uid == owner) && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

int fs_mkdirat_private(int dirfd, const char *name, mode_t mode)
{
    if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
        return -errno;
    int fd = fs_openat2(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, FS_RESOLVE_PRIVATE);
    if (fd < 0)
        return fd;
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : dir_is_private(&st, geteuid()) ? 0 : -EPERM;
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* ---- fs_open_private_dir: the StrictModes walk ---- */

#define MAX_SYMLINKS 40

typedef struct DirWalk {
    uid_t owner;
    mode_t mode;
    char shown[PATH_MAX];           /* the path as walked, for messages */
    char *why;
    size_t why_len;
} DirWalk;

static int walk_fail(DirWalk *w, int r, const char *fmt, ...) _printf_(3, 4);
static int walk_fail(DirWalk *w, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, w->why_len, fmt, ap);
    va_end(ap);
    return r;
}

static void shown_step(DirWalk *w, const char *comp, size_t len)
{
    size_t n = strlen(w->shown);
    if (len == 2 && comp[0] == '.' && comp[1] == '.') {
        char *slash = strrchr(w->shown, '/');
        if (slash)
            *slash = '\0';
        return;
    }
    snprintf(w->shown + n, sizeof(w->shown) - n, "/%.*s", (int)len, comp);
}

static const char *shown(const DirWalk *w) { return w->shown[0] ? w->shown : "/"; }

static int check_owner(DirWalk *w, const struct stat *st, const char *what)
{
    if (st->st_uid == 0 || st->st_uid == w->owner)
        return 0;
    return walk_fail(w, -EPERM, "%s %s is owned by uid %u; it must belong to root or uid %u (another user could "
                     "redirect the daemon's files)", what, shown(w), (unsigned)st->st_uid, (unsigned)w->owner);
}

static int check_dir(DirWalk *w, const struct stat *st, bool last)
{
    int r = check_owner(w, st, last ? "directory" : "parent directory");
    if (r < 0)
        return r;
    if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
        return 0;
    if (!last && (st->st_mode & S_ISVTX))
        return 0;   /* sticky: nobody else may rename or remove what root owns in it */
    return walk_fail(w, -EPERM, "%s %s is writable by %s (mode %04o): other users could plant files or symlinks "
                     "in it; chmod go-w %s", last ? "directory" : "parent directory", shown(w),
                     (st->st_mode & S_IWOTH) ? "others" : "its group", (unsigned)(st->st_mode & 07777), shown(w));
}

/* Replace the walk's remaining path with `target` + "/" + `rest`. */
static int splice_link(DirWalk *w, char *todo, size_t todo_size, const char *target, const char *rest)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/%s", target, rest) >= (int)sizeof(tmp) ||
        snprintf(todo, todo_size, "%s", tmp) >= (int)todo_size)
        return walk_fail(w, -ENAMETOOLONG, "%s: the path is too long after following its symlinks", shown(w));
    return 0;
}

/*
 * One step of the walk from directory `*cur` into component comp[0..len):
 * 1 when *cur is now that directory (checked), 0 when it was a symlink
 * (checked; `todo` now holds its target followed by `rest`), or -errno.
 */
static int walk_step(DirWalk *w, int *cur, const char *comp, size_t len, bool last, char *todo, size_t todo_size,
                     const char *rest, unsigned *links)
{
    char name[NAME_MAX + 1];
    struct stat st;
    if (len > NAME_MAX)
        return walk_fail(w, -ENAMETOOLONG, "%s/%.*s: name too long", shown(w), (int)len, comp);
    memcpy(name, comp, len);
    name[len] = '\0';
    if (fstatat(*cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT || !w->mode)
            return walk_fail(w, -errno, "%s/%s: %s", shown(w), name, strerror(errno));
        if (mkdirat(*cur, name, w->mode) < 0 && errno != EEXIST)
            return walk_fail(w, -errno, "cannot create %s/%s: %s", shown(w), name, strerror(errno));
        if (fstatat(*cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return walk_fail(w, -errno, "%s/%s: %s", shown(w), name, strerror(errno));
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        shown_step(w, comp, len);
        int r = check_owner(w, &st, "symlink");
        if (r < 0)
            return r;
        if (++*links > MAX_SYMLINKS)
            return walk_fail(w, -ELOOP, "%s: too many levels of symbolic links", shown(w));
        ssize_t n = readlinkat(*cur, name, target, sizeof(target) - 1);
        if (n < 0)
            return walk_fail(w, -errno, "readlink %s: %s", shown(w), strerror(errno));
        target[n] = '\0';
        char *slash = strrchr(w->shown, '/');
        if (slash)
            *slash = '\0';  /* a relative target continues from the link's directory */
        if (target[0] == '/') {
            int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (root < 0)
                return walk_fail(w, -errno, "open /: %s", strerror(errno));
            close(*cur);
            *cur = root;
            w->shown[0] = '\0';
        }
        return splice_link(w, todo, todo_size, target, rest);
    }
    shown_step(w, comp, len);
    int next = openat(*cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0)
        return walk_fail(w, -errno, "%s: %s", shown(w), strerror(errno));
    close(*cur);
    *cur = next;
    if (fstat(next, &st) < 0)
        return walk_fail(w, -errno, "%s: %s", shown(w), strerror(errno));
    int r = check_dir(w, &st, last);
    /* A new component (or a replaced one) is checked on the opened fd: no window between check and use. */
    return r < 0 ? r : 1;
}

int fs_open_private_dir(const char *path, mode_t mode, uid_t owner, char *why, size_t why_len)
{
    DirWalk w = { .owner = owner, .mode = mode, .why = why, .why_len = why_len };
    char todo[PATH_MAX];
    unsigned links = 0;
    if (path[0] != '/')
        return walk_fail(&w, -EINVAL, "%s: must be an absolute path", path);
    if (snprintf(todo, sizeof(todo), "%s", path) >= (int)sizeof(todo))
        return walk_fail(&w, -ENAMETOOLONG, "%s: path too long", path);
    _cleanup_close_ int cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (cur < 0 || fstat(cur, &st) < 0)
        return walk_fail(&w, -errno, "open /: %s", strerror(errno));
    int r = check_dir(&w, &st, false);
    bool checked_last = false;
    for (size_t pos = 0; r >= 0;) {
        while (todo[pos] == '/')
            pos++;
        if (!todo[pos])
            break;
        size_t len = strcspn(todo + pos, "/");
        size_t after = pos + len;
        while (todo[after] == '/')
            after++;
        bool last = todo[after] == '\0';
        if (len == 1 && todo[pos] == '.') {
            pos = after;
            continue;
        }
        char rest[PATH_MAX];
        snprintf(rest, sizeof(rest), "%s", todo + after);
        r = walk_step(&w, &cur, todo + pos, len, last, todo, sizeof(todo), rest, &links);
        if (r == 1) {
            checked_last = last;
            pos = after;
        } else {
            pos = 0;    /* a symlink rewrote todo */
        }
    }
    if (r < 0)
        return r;
    if (!checked_last) {
        /* The path ended in "/" or "." after a parent was checked as a parent: check it as the directory. */
        if (fstat(cur, &st) < 0)
            return walk_fail(&w, -errno, "%s: %s", shown(&w), strerror(errno));
        if ((r = check_dir(&w, &st, true)) < 0)
            return r;
    }
    int fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return walk_fail(&w, -errno, "%s: %s", shown(&w), strerror(errno));
    return fd;
}

/* ---- atomic replacement ---- */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A new, exclusively created temporary file next to `name`: its fd, or -errno. */
static int create_temp(int dirfd, const char *name, char *tmp, size_t tmp_len)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        uint8_t rnd[6];
        char sfx[sizeof(rnd) + 1];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            return -EIO;
        for (size_t i = 0; i < sizeof(rnd); i++)
            sfx[i] = chars[rnd[i] % (sizeof(chars) - 1)];
        sfx[sizeof(rnd)] = '\0';
        if (snprintf(tmp, tmp_len, "%s.tmp-%s", name, sfx) >= (int)tmp_len)
            return -ENAMETOOLONG;
        /* O_EXCL never follows a symlink: a planted one makes it fail, and we try another name. */
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

int fs_write_atomic_at(int dirfd, const char *name, const struct iovec *iov, int iovcnt, mode_t mode)
{
    char tmp[NAME_MAX + 1];
    if (!name[0] || strchr(name, '/'))
        return -EINVAL;
    int fd = create_temp(dirfd, name, tmp, sizeof(tmp));
    if (fd < 0)
        return fd;
    int r = 0;
    for (int i = 0; i < iovcnt && r == 0; i++)
        r = write_all(fd, iov[i].iov_base, iov[i].iov_len);
    if (r == 0 && fchmod(fd, mode) < 0)
        r = -errno;
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    /* rename replaces whatever `name` is, a symlink included, and never writes through it. */
    if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
        r = -errno;
    if (r < 0) {
        unlinkat(dirfd, tmp, 0);
        return r;
    }
    /* Make the rename durable; failing here still leaves a complete file. */
    (void)fsync(dirfd);
    return 0;
}

int fs_write_atomic(const char *path, const struct iovec *iov, int iovcnt, mode_t mode)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (snprintf(dir, sizeof(dir), "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1,
                 slash ? path : ".") >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    return fs_write_atomic_at(dfd, name, iov, iovcnt, mode);
}

int fs_open_regular(const char *path, int extra_flags)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | extra_flags);
    if (fd < 0)
        return -errno;
    struct stat st;
    int fl;
    int r = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
    if (r == 0 && ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
        r = -errno;
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* ---- mounts ---- */

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif
#ifndef __NR_statmount
#define __NR_statmount 457         /* the same number on every architecture of the unified table */
#endif
#define STATMOUNT_MNT_POINT 0x00000010U
#define STATMOUNT_FS_TYPE 0x00000020U

/* <linux/mount.h> of Linux >= 6.8; Debian 12's headers predate it. */
struct cfn_mnt_id_req {
    uint32_t size, spare;
    uint64_t mnt_id, param;
};
struct cfn_statmount {
    uint32_t size, mnt_opts;
    uint64_t mask;
    uint32_t sb_dev_major, sb_dev_minor;
    uint64_t sb_magic;
    uint32_t sb_flags, fs_type;
    uint64_t mnt_id, mnt_parent_id;
    uint32_t mnt_id_old, mnt_parent_id_old;
    uint64_t mnt_attr, mnt_propagation, mnt_peer_group, mnt_master, propagate_from;
    uint32_t mnt_root, mnt_point;
    uint64_t spare[50];
    char str[];                     /* strings, at the offsets above */
};
_Static_assert(offsetof(struct cfn_statmount, str) == 512, "struct statmount layout");

int fs_mount_id(int fd, uint64_t *id)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID_UNIQUE, &sx) < 0)
        return -errno;
    if (!(sx.stx_mask & STATX_MNT_ID_UNIQUE))
        return -EOPNOTSUPP;
    *id = sx.stx_mnt_id;
    return 0;
}

static int copy_str(char *out, size_t out_len, const struct cfn_statmount *sm, size_t buf_len, uint32_t off)
{
    if (!out)
        return 0;
    size_t base = offsetof(struct cfn_statmount, str);
    if (base + off >= buf_len || !memchr(sm->str + off, '\0', buf_len - base - off))
        return -EBADMSG;
    return snprintf(out, out_len, "%s", sm->str + off) >= (int)out_len ? -ENAMETOOLONG : 0;
}

int fs_mount_lookup(uint64_t id, char *point, size_t point_len, char *fstype, size_t fstype_len)
{
    size_t len = offsetof(struct cfn_statmount, str) + 2 * PATH_MAX;
    _cleanup_free_ struct cfn_statmount *sm = calloc(1, len);
    if (!sm)
        return -ENOMEM;
    struct cfn_mnt_id_req req = { .size = 24, .mnt_id = id, .param = STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE };
    if (syscall(__NR_statmount, &req, sm, len, 0) < 0)
        return -errno;
    if ((sm->mask & (STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE)) != (STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE))
        return -EOPNOTSUPP;
    int r = copy_str(point, point_len, sm, len, sm->mnt_point);
    return r < 0 ? r : copy_str(fstype, fstype_len, sm, len, sm->fs_type);
}

int fs_umount_verified(const char *mountpoint, uint64_t id)
{
    char dir[PATH_MAX], via[64 + NAME_MAX];
    const char *slash = strrchr(mountpoint, '/');
    if (mountpoint[0] != '/' || !slash || !slash[1] || strlen(slash + 1) > NAME_MAX)
        return -EINVAL;
    snprintf(dir, sizeof(dir), "%.*s", slash == mountpoint ? 1 : (int)(slash - mountpoint), mountpoint);
    /* The parent stays pinned by its fd; the mount point itself cannot be renamed while mounted. */
    _cleanup_close_ int parent = fs_openat2(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS);
    if (parent < 0)
        return parent;
    uint64_t found;
    int top = fs_openat2(parent, slash + 1, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, FS_RESOLVE_PRIVATE);
    if (top < 0)
        return top == -ENOTDIR || top == -ELOOP ? -ESTALE : top;
    int r = fs_mount_id(top, &found);
    close(top);     /* an open fd on the mount would make umount fail with EBUSY */
    if (r < 0)
        return r;
    if (found != id)
        return -ESTALE;
    snprintf(via, sizeof(via), "/proc/self/fd/%d/%s", parent, slash + 1);
    return umount2(via, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
}
