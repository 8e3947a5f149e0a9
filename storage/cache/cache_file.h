/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Writing a cache file that the kernel reads directly. The fd may be a
 * cachefiles anon fd (every write is O_DIRECT underneath: page-aligned
 * offset, page-multiple length, page-aligned buffer) or a plain sparse file;
 * the same rules are safe for both.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "storage/device/blob.h"
#include "storage/util/seg_array.h"

/* A 4 KiB-aligned buffer of align_up(len, 4 KiB) bytes whose padding past len is zero. */
void *cache_buf_alloc(size_t len);

/*
 * pwrite `len` bytes (a multiple of 4 KiB) at `off` (4 KiB aligned), retrying
 * short writes, EINTR and, with back-off, ENOBUFS (cachefiles answers it for
 * a moment after copen). Blocking: call it from a worker, not the loop.
 */
int cache_file_write(int fd, const void *buf, size_t len, uint64_t off);

/*
 * Mark in `ready` (one byte per chunk, 1 = ready) every chunk whose whole
 * 4 KiB-padded range is already data in the file, using SEEK_DATA/SEEK_HOLE.
 * Returns the number of ready chunks or -errno (then reset `ready`: some
 * chunks may be marked).
 */
int cache_file_scan_ready(int fd, const BlobInfo *blob, SegArray *ready);
