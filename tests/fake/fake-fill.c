/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Serve one data blob of an image through the daemon and the fake device the
 * way the kernel would (OPEN bootstrap, OPEN blob, READs of 128 KiB in a
 * shuffled order) and leave the resulting cache file behind, so a test can
 * compare it with the cache file the image builder predicts.
 *
 *   fake-fill BOOTSTRAP BLOB_DIR BLOB_ID OUT_CACHE_FILE [WORK_DIR]
 *
 * BOOTSTRAP "blob:<id>" takes the bootstrap out of that inline-meta blob.
 * FAKE_FILL_BACKEND replaces the localfs backend with a YAML flow mapping
 * (e.g. "{type: registry, host: ..., repo: ...}"); FAKE_FILL_WINDOW sets the
 * read window (default 128KiB). The fill rate is printed at the end.
 *
 * Exits 0 when every READ succeeded, 1 when any failed, 2 on set-up errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cachefilesd-nydus/daemon.h"
#include "fake_device.h"
#include "storage/util/log.h"

static bool run_until(Daemon *d, FakeDevice *dev, uint32_t msg_id, bool copen)
{
    int64_t v;
    for (int i = 0; i < 3000; i++) {
        if (copen ? fake_device_copen_result(dev, msg_id, &v) : fake_device_completions(dev, msg_id) > 0)
            return true;
        loop_run_once(d->loop, 10);
    }
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: fake-fill BOOTSTRAP BLOB_DIR BLOB_ID OUT_CACHE_FILE [WORK_DIR]\n");
        return 2;
    }
    const char *boot = argv[1], *blob_dir = argv[2], *blob_id = argv[3], *out = argv[4];
    const char *work = argc == 6 ? argv[5] : "/tmp";
    cfn_log_set_level(getenv("FAKE_FILL_DEBUG") ? CFN_LOG_DEBUG : CFN_LOG_INFO);
    char text[8192], err[512], local[4200];
    const char *backend = getenv("FAKE_FILL_BACKEND"), *window = getenv("FAKE_FILL_WINDOW");
    snprintf(local, sizeof(local), "{type: localfs, dir: %s}", blob_dir);
    snprintf(text, sizeof(text),
             "cache_dir: %s/cache\nwork_dir: %s\nthreads: 2\nread_window: %s\nmerge_limit: 64MiB\n"
             "images:\n  - fsid: image\n    %s: %s\n    backend: %s\n", work, work, window ? window : "128KiB",
             strncmp(boot, "blob:", 5) ? "bootstrap" : "bootstrap_blob", strncmp(boot, "blob:", 5) ? boot : boot + 5,
             backend ? backend : local);
    Config *cfg = NULL;
    Daemon *d;
    if (config_parse(&cfg, "fake-fill.yaml", text, strlen(text), err, sizeof(err)) < 0 ||
        daemon_new(&d, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "fake-fill: %s\n", err);
        config_free(cfg);
        return 2;
    }
    FakeDevice *dev = fake_device_new();
    if (daemon_start_cachefiles(d, fake_device_base(dev)) < 0)
        return 2;

    int bfd = open("/dev/null", O_WRONLY);
    fake_device_push_open(dev, 1, 1, "erofs,image", "image", bfd);
    int cfd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
    fake_device_push_open(dev, 2, 2, "erofs,image", blob_id, cfd);
    int64_t size = -1;
    if (cfd < 0 || !run_until(d, dev, 2, true) || !fake_device_copen_result(dev, 2, &size) || size < 0) {
        fprintf(stderr, "fake-fill: OPEN of blob %s failed (copen %" PRId64 ")\n", blob_id, size);
        return 2;
    }
    /* The kernel sizes the cache file from copen. */
    if (ftruncate(cfd, (off_t)((size + 4095) & ~4095ll)) < 0)
        return 2;

    /* 128 KiB READs in a shuffled order, several in flight, like concurrent readers. */
    const uint64_t step = 128 * 1024;
    uint64_t n = ((uint64_t)size + step - 1) / step;
    uint64_t *order = malloc(n * sizeof(*order));
    for (uint64_t i = 0; i < n; i++)
        order[i] = i;
    uint32_t x = 12345;
    for (uint64_t i = n; i > 1; i--) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        uint64_t j = x % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    uint64_t t0 = loop_now_ns();
    for (uint64_t i = 0; i < n; i += 8) {
        for (uint64_t k = i; k < n && k < i + 8; k++) {
            uint64_t off = order[k] * step;
            uint64_t len = (uint64_t)size - off < step ? (((uint64_t)size - off + 4095) & ~4095ull) : step;
            fake_device_push_read(dev, (uint32_t)(100 + k), 2, off, len);
        }
        for (uint64_t k = i; k < n && k < i + 8; k++)
            if (!run_until(d, dev, (uint32_t)(100 + k), false)) {
                fprintf(stderr, "fake-fill: READ %" PRIu64 " never completed\n", k);
                return 1;
            }
    }
    double secs = (double)(loop_now_ns() - t0) / 1e9;
    uint64_t failures = d->stats.read_failures;
    printf("fake-fill: blob %s: %" PRIu64 " bytes, %" PRIu64 " READs, %" PRIu64 " failed, %.3f s, %.1f MiB/s\n",
           blob_id, (uint64_t)size, n, failures, secs, (double)size / secs / 1048576.0);
    free(order);
    daemon_free(d);
    config_free(cfg);
    return failures ? 1 : 0;
}
