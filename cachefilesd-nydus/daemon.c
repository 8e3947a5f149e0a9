/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cachefiles_device.h"
#include "storage/util/log.h"

int daemon_new(Daemon **ret, const Config *cfg, char *err, size_t err_len)
{
    Daemon *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->cfg = cfg;
    d->signal_fd = -1;

    int r = loop_new(&d->loop, 256);
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
    r = image_registry_new(&d->images, cfg, d->loop, d->pool, err, err_len);
    if (r < 0)
        goto fail;
    *ret = d;
    return 0;
fail:
    daemon_free(d);
    return r;
}

Daemon *daemon_free(Daemon *d)
{
    if (!d)
        return NULL;
    frontend_free(d->frontend);
    /* The front-end waited for fetches in flight, so no worker still posts to the loop. */
    d->pool = workpool_free(d->pool);
    image_registry_free(d->images);
    cache_service_free(d->cache);
    if (d->signal_fd >= 0)
        close(d->signal_fd);
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
