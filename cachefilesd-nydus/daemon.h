/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon context: everything the daemon owns hangs off one Daemon that
 * is passed explicitly (no global state besides the log level).
 */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "frontend.h"
#include "images.h"
#include "storage/cache/blob_cache.h"
#include "storage/util/loop.h"
#include "storage/util/workpool.h"

typedef struct CachefilesDevice CachefilesDevice;

typedef struct DaemonStats {
    uint64_t opens, open_failures, closes;
    uint64_t reads, read_failures, read_timeouts;
    uint64_t read_latency_ns;       /* sum over answered READs, for the average */
    uint64_t bad_messages;
    uint64_t readaheads;            /* read-ahead fills started (fscache front-end) */
    uint64_t prefetches;            /* background prefetch fills started (images[].prefetch) */
} DaemonStats;

struct Daemon {
    const Config *cfg;
    Loop *loop;
    WorkPool *pool;
    CacheService *cache;
    ImageRegistry *images;
    Frontend *frontend;
    DaemonStats stats;
    /* cache_dir and work_dir, checked at start-up (fs_open_private_dir): files below them are opened from these. */
    int cache_dir_fd, work_dir_fd;

    int signal_fd;
    LoopOp signal_op;
    uint8_t signal_buf[128];
    bool stopping;
};

/*
 * Build the context (loop, workers, cache service, images); err says what
 * failed. cache_dir and work_dir are created if missing and refused when
 * another user could plant files or symlinks in them (or above them). Images configured by bootstrap_blob get their bootstrap fetched
 * here, and cfg records where it was stored.
 */
int daemon_new(Daemon **ret, Config *cfg, char *err, size_t err_len);
Daemon *daemon_free(Daemon *d);

/* Serve fscache mounts through `dev` (ownership taken). */
int daemon_start_cachefiles(Daemon *d, CachefilesDevice *dev);

/* Serve erofs file-backed mounts through fanotify pre-content events;
 * group_fd < 0 creates the group, >= 0 adopts an inherited one (ownership taken). */
int daemon_start_fanotify(Daemon *d, int group_fd);

/*
 * Resolve the configured front-end: auto picks fscache when `device` exists
 * with on-demand support, else fanotify when the kernel raises pre-content
 * events for files in the cache dir, else fails with both reasons in why.
 * An explicit choice is checked the same way, so its error is clear too.
 */
int daemon_select_frontend(enum frontend_kind requested, const Config *cfg, const char *device,
                           enum frontend_kind *out, char *why, size_t why_len);

/* Handle SIGTERM/SIGINT through the loop and run until stopped. */
int daemon_run(Daemon *d);
void daemon_stop(Daemon *d);

/* The cachefiles front-end (frontend_cachefiles.c). */
int frontend_cachefiles_new(Frontend **ret, Daemon *d, CachefilesDevice *dev);
