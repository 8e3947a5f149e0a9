/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Small file-system helpers shared by the daemon's state and cache files.
 *
 * The daemon runs as root; the directories it keeps files in must not let
 * another user redirect its writes. Paths below cache_dir and work_dir are
 * opened relative to a directory fd and never through a symlink
 * (FS_RESOLVE_PRIVATE), and fs_open_private_dir refuses, at start-up, a
 * directory that another user could plant links in.
 */
#pragma once

#include <linux/openat2.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Below a trusted directory fd: no symlink, no magic link, no escape by "..". */
#define FS_RESOLVE_PRIVATE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* mkdir -p: create `path` and its missing parents with `mode` (a trusted path). 0 or -errno. */
int fs_mkdir_p(const char *path, mode_t mode);

/* openat2(2): open `path` relative to `dirfd` with RESOLVE_* flags `resolve`. An fd or -errno. */
int fs_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve);

/*
 * Create directory `name` in `dirfd` unless it exists, and open it
 * (O_DIRECTORY, FS_RESOLVE_PRIVATE). An existing one must be a directory
 * owned by root or the daemon's user that no one else can write: else
 * -EPERM. An fd or -errno (-ELOOP: a symlink).
 */
int fs_mkdirat_private(int dirfd, const char *name, mode_t mode);

/*
 * Open (creating it and its missing parents with `mode` when `mode` is not
 * 0) the directory `path`, where the daemon running as `owner` keeps files,
 * refusing one that another user could plant files or links in, the way
 * ssh's StrictModes does: every directory on the way, the symlinks the path
 * takes included, must be owned by root or `owner`; the directory itself
 * must not be writable by group or others; its parents may be only if they
 * are sticky (as /tmp is: nobody else can rename or remove what root owns
 * there). Returns an O_DIRECTORY fd or -errno with the reason in `why`.
 */
int fs_open_private_dir(const char *path, mode_t mode, uid_t owner, char *why, size_t why_len);

/*
 * Replace `path` with the concatenation of `iov` so that a reader (or a crash)
 * sees either the old file or the complete new one: write a temporary file
 * in the same directory, fsync, rename, fsync the directory. 0 or -errno.
 * The name itself is never followed: a symlink there is replaced, not written through.
 */
int fs_write_atomic(const char *path, const struct iovec *iov, int iovcnt, mode_t mode);
/* The same for `name` (one component) in the directory `dirfd`. */
int fs_write_atomic_at(int dirfd, const char *name, const struct iovec *iov, int iovcnt, mode_t mode);

/*
 * Open `path` read-only, only if it is a regular file: O_NONBLOCK so that a
 * FIFO in its place cannot block the caller (it is refused instead, like any
 * other non-regular file: -EINVAL). `extra_flags` are OR'ed in (O_NOFOLLOW).
 * The fd (blocking again, close-on-exec) or -errno.
 */
int fs_open_regular(const char *path, int extra_flags);

/* ---- mounts, identified by the kernel's unique 64-bit mount id (Linux >= 6.8) ---- */

/* The unique id of the mount `fd` is on. 0 or -errno (-EOPNOTSUPP: kernel older than 6.8). */
int fs_mount_id(int fd, uint64_t *id);

/*
 * Where mount `id` is now (its mount point, as this process sees it) and its
 * file system type; either buffer may be NULL. 0, -ENOENT when it no longer
 * exists, or -errno.
 */
int fs_mount_lookup(uint64_t id, char *point, size_t point_len, char *fstype, size_t fstype_len);

/*
 * umount(2) the mount `id` at the absolute path `mountpoint`, never through
 * a symlink, and only if the mount on top of that path is `id` (-ESTALE when
 * another mount or directory is there). The umount goes through the parent
 * directory's fd, so a concurrent rename cannot send it elsewhere. 0 or -errno.
 */
int fs_umount_verified(const char *mountpoint, uint64_t id);
