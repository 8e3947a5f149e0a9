/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachefiles_device.h"
#include "frontend_fanotify.h"
#include "inline_bootstrap.h"
#include "storage/util/fsutil.h"
#include "storage/util/log.h"

/*
 * The root daemon writes below cache_dir and work_dir: refuse them when
 * another user could plant a symlink there (see fs_open_private_dir).
 */
static int open_private_dir(const char *key, const char *path, int *fd, char *err, size_t err_len)
{
    char why[512];
    *fd = fs_open_private_dir(path, 0700, geteuid(), why, sizeof(why));
    if (*fd >= 0)
        return 0;
    snprintf(err, err_len, "%s refused: %s", key, why);
    return *fd;
}

int daemon_new(Daemon **ret, Config *cfg, char *err, size_t err_len)
{
    Daemon *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->cfg = cfg;
    d->signal_fd = d->cache_dir_fd = d->work_dir_fd = -1;

    int r = open_private_dir("cache_dir", cfg->cache_dir, &d->cache_dir_fd, err, err_len);
    if (r == 0)
        r = open_private_dir("work_dir", cfg->work_dir, &d->work_dir_fd, err, err_len);
    if (r < 0)
        goto fail;
    r = loop_new(&d->loop, 256);
    if (r < 0) {
        snprintf(err, err_len, "io_uring setup failed: %s", strerror(-r));
        goto fail;
    }
    r = workpool_new(&d->pool, d->loop, cfg->threads, &cache_worker_hooks);
    if (r < 0) {
        snprintf(err, err_len, "cannot start %u worker threads: %s", cfg->threads, strerror(-r));
        goto fail;
    }
    CacheServiceConfig cc = {
        .read_window = cfg->read_window,
        .merge_limit = cfg->merge_limit,
        .max_inflight_bytes = cfg->max_inflight_bytes,
        .verify = cfg->verify,
    };
    r = cache_service_new(&d->cache, d->loop, d->pool, &cc);
    if (r < 0) {
        snprintf(err, err_len, "cache service: %s", strerror(-r));
        goto fail;
    }
    /* A bad image is logged and reported, never fatal: the others are served. */
    char **image_errors = calloc(cfg->n_images ? cfg->n_images : 1, sizeof(*image_errors));
    if (!image_errors) {
        r = -ENOMEM;
        goto fail;
    }
    r = inline_bootstrap_resolve(cfg, d->loop, image_errors, err, err_len);
    if (r == 0)
        r = image_registry_new(&d->images, cfg, d->loop, d->pool, image_errors, err, err_len);
    for (size_t i = 0; i < cfg->n_images; i++)
        free(image_errors[i]);
    free(image_errors);
    if (r < 0)
        goto fail;
    *ret = d;
    return 0;
fail:
    daemon_free(d);
    return r;
}

/* How long shutdown waits for requests to end after their transfers were cancelled. */
#define SHUTDOWN_DRAIN_MS 10000

/*
 * Shutdown in a defined order, so that nothing in flight outlives what it
 * points to: stop taking work, cancel every backend transfer (their done()
 * run with -ECANCELED on the loop), then turn the loop until the front-end
 * has nothing outstanding: fills ended, workers' results delivered, caches
 * released. Cancelled transfers end at once; only a read the kernel cannot
 * abort (a local file) is waited for. False when something is still
 * outstanding after SHUTDOWN_DRAIN_MS.
 */
static bool daemon_drain(Daemon *d)
{
    Frontend *fe = d->frontend;
    if (!d->stopping) {
        d->stopping = true;
        fe->ops->stop(fe);
    }
    image_registry_cancel(d->images);
    uint64_t t0 = loop_now_ns(), limit = t0 + SHUTDOWN_DRAIN_MS * 1000000ull;
    while (!fe->ops->drain(fe)) {
        if (loop_now_ns() > limit) {
            log_error("shutdown: requests still outstanding %d s after their transfers were cancelled; exiting "
                      "without freeing what they use", SHUTDOWN_DRAIN_MS / 1000);
            return false;
        }
        int r = loop_run_once(d->loop, 10);
        if (r < 0) {
            log_error("shutdown: the event loop failed: %s; exiting without freeing what requests use", strerror(-r));
            return false;
        }
    }
    /* A few more turns without waiting: the HTTP engines reap the polls of the connections the cancel closed. */
    for (int i = 0; i < 3; i++)
        loop_run_once(d->loop, 0);
    log_debug("shutdown: drained in %.3f s", (double)(loop_now_ns() - t0) / 1e9);
    return true;
}

Daemon *daemon_free(Daemon *d)
{
    if (!d)
        return NULL;
    /*
     * Freeing anything a request still points to would be a use-after-free
     * (the request's done() runs later): when requests cannot be drained,
     * leave it all to the process exit.
     */
    if (d->frontend && !daemon_drain(d))
        return NULL;
    frontend_free(d->frontend);
    /* Nothing is outstanding, so no worker still posts to the loop. */
    d->pool = workpool_free(d->pool);
    image_registry_free(d->images);
    cache_service_free(d->cache);
    if (d->signal_fd >= 0)
        close(d->signal_fd);
    if (d->cache_dir_fd >= 0)
        close(d->cache_dir_fd);
    if (d->work_dir_fd >= 0)
        close(d->work_dir_fd);
    loop_free(d->loop);
    free(d);
    return NULL;
}

int daemon_start_cachefiles(Daemon *d, CachefilesDevice *dev)
{
    int r = frontend_cachefiles_new(&d->frontend, d, dev);
    if (r < 0)
        return r;
    return d->frontend->ops->start(d->frontend);
}

int daemon_start_fanotify(Daemon *d, int group_fd)
{
    int r = frontend_fanotify_new(&d->frontend, d, group_fd);
    if (r < 0) {
        if (group_fd >= 0)
            close(group_fd);
        return r;
    }
    return d->frontend->ops->start(d->frontend);
}

/*
 * On-demand cachefiles: the device exists and the kernel has the on-demand
 * code. kallsyms names the functions of built-in and loaded code; if it
 * cannot be read, trust the device and let "bind ondemand" say the rest.
 */
static bool ondemand_available(const char *device, char *why, size_t why_len)
{
    struct stat st;
    if (stat(device, &st) < 0) {
        int r = errno;
        snprintf(why, why_len, "%s: %s", device, strerror(r));
        return false;
    }
    FILE *f = fopen("/proc/kallsyms", "re");
    if (!f)
        return true;
    char line[512];
    bool any = false, ondemand = false;
    while (!ondemand && fgets(line, sizeof(line), f)) {
        if (strstr(line, " cachefiles_ondemand_"))
            ondemand = true;
        else if (strstr(line, " cachefiles_"))
            any = true;
    }
    fclose(f);
    if (!ondemand && any) {
        snprintf(why, why_len, "%s exists, but the kernel lacks CONFIG_CACHEFILES_ONDEMAND", device);
        return false;
    }
    return true;
}

int daemon_select_frontend(enum frontend_kind requested, const Config *cfg, const char *device,
                           enum frontend_kind *out, char *why, size_t why_len)
{
    char fs_why[256] = "", fan_why[256] = "";
    if (requested != FRONTEND_FANOTIFY && ondemand_available(device, fs_why, sizeof(fs_why))) {
        *out = FRONTEND_FSCACHE;
        return 0;
    }
    if (requested == FRONTEND_FSCACHE) {
        snprintf(why, why_len, "frontend fscache: %s", fs_why);
        return -EOPNOTSUPP;
    }
    int r = fanotify_probe(cfg->cache_dir, fan_why, sizeof(fan_why));
    if (r == 0) {
        *out = FRONTEND_FANOTIFY;
        return 0;
    }
    if (requested == FRONTEND_FANOTIFY)
        snprintf(why, why_len, "frontend fanotify: %s", fan_why);
    else
        snprintf(why, why_len, "no usable front-end: fscache: %s; fanotify: %s", fs_why, fan_why);
    return r;
}

void daemon_stop(Daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    if (d->frontend)
        d->frontend->ops->stop(d->frontend);
    loop_quit(d->loop);
}

static void signal_arm(Daemon *d);

static void signal_ready(LoopOp *op, int res)
{
    Daemon *d = cfn_container_of(op, Daemon, signal_op);
    if (res == (int)sizeof(struct signalfd_siginfo)) {
        struct signalfd_siginfo si;
        memcpy(&si, d->signal_buf, sizeof(si));
        log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
        daemon_stop(d);
        return;
    }
    if (res < 0 && res != -EINTR && res != -EAGAIN) {
        log_error("signalfd read failed: %s", strerror(-res));
        daemon_stop(d);
        return;
    }
    signal_arm(d);
}

static void signal_arm(Daemon *d)
{
    d->signal_op.fn = signal_ready;
    if (loop_read(d->loop, &d->signal_op, d->signal_fd, d->signal_buf,
                  sizeof(struct signalfd_siginfo), 0) < 0)
        log_error("cannot watch signals: submission queue full");
}

int daemon_run(Daemon *d)
{
    /* main() blocked these before any thread existed, so only signalfd sees them. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    d->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (d->signal_fd < 0) {
        int r = -errno;
        log_error("signalfd: %s", strerror(-r));
        return r;
    }
    signal_arm(d);
    return loop_run(d->loop);
}
