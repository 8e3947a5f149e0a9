/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Small file-system helpers shared by the daemon's state and cache files. */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* mkdir -p: create `path` and its missing parents with `mode`. 0 or -errno. */
int fs_mkdir_p(const char *path, mode_t mode);

/*
 * Replace `path` with the concatenation of `iov` so that a reader (or a crash)
 * sees either the old file or the complete new one: write a temporary file
 * in the same directory, fsync, rename, fsync the directory. 0 or -errno.
 */
int fs_write_atomic(const char *path, const struct iovec *iov, int iovcnt, mode_t mode);

/*
 * Open `path` read-only, only if it is a regular file: O_NONBLOCK so that a
 * FIFO in its place cannot block the caller (it is refused instead, like any
 * other non-regular file: -EINVAL). `extra_flags` are OR'ed in (O_NOFOLLOW).
 * The fd (blocking again, close-on-exec) or -errno.
 */
int fs_open_regular(const char *path, int extra_flags);
