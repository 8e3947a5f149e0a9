/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Serve one data blob of an image through the daemon and the fake device the
 * way the kernel would (OPEN bootstrap, OPEN blob, READs of 128 KiB in a
 * shuffled order, several in flight) and leave the resulting cache file
 * behind, so a test can compare it with the cache file the image builder
 * predicts.
 *
 *   fake-fill BOOTSTRAP BLOB_DIR BLOB_ID OUT_CACHE_FILE [WORK_DIR]
 *
 * BOOTSTRAP "blob:<id>" takes the bootstrap out of that inline-meta blob.
 * FAKE_FILL_BACKEND replaces the localfs backend with a YAML flow mapping
 * (e.g. "{type: registry, host: ..., repo: ...}"); FAKE_FILL_WINDOW sets the
 * read window (default 128KiB), FAKE_FILL_THREADS the worker threads (default
 * 2), FAKE_FILL_CONFIG adds top-level config lines; FAKE_FILL_READ, _READERS,
 * _DEPTH and _ORDER shape the READs (see main). The fill rate, the READ model
 * and the CPU time spent during the fill are printed at the end.
 *
 * Exits 0 when every READ succeeded, 1 when any failed, 2 on set-up errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cachefilesd-nydus/daemon.h"
#include "fake_device.h"
#include "storage/util/log.h"

/* "128KiB", "8", "1MiB": a count or a size; def when unset. */
static uint64_t parse_size(const char *s, uint64_t def)
{
    if (!s || !*s)
        return def;
    char *end;
    uint64_t v = strtoull(s, &end, 10);
    if (strcmp(end, "KiB") == 0)
        v <<= 10;
    else if (strcmp(end, "MiB") == 0)
        v <<= 20;
    else if (*end)
        return 0;
    return v;
}

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
    const char *threads = getenv("FAKE_FILL_THREADS"), *extra = getenv("FAKE_FILL_CONFIG");
    snprintf(local, sizeof(local), "{type: localfs, dir: %s}", blob_dir);
    snprintf(text, sizeof(text),
             "cache_dir: %s/cache\nwork_dir: %s\nthreads: %s\nread_window: %s\nmerge_limit: 64MiB\n%s%s"
             "images:\n  - fsid: image\n    %s: %s\n    backend: %s\n", work, work, threads ? threads : "2",
             window ? window : "128KiB", extra ? extra : "", extra ? "\n" : "",
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
        daemon_free(d);     /* closes the device, whose queue holds bfd and cfd */
        config_free(cfg);
        return 2;
    }
    /* The kernel sizes the cache file from copen. */
    if (ftruncate(cfd, (off_t)((size + 4095) & ~4095ll)) < 0)
        return 2;

    /* READs of FAKE_FILL_READ bytes (default 128 KiB, the kernel's default
     * readahead window). FAKE_FILL_READERS readers (default 8) each keep
     * FAKE_FILL_DEPTH READs (default 1) outstanding; nobody waits for anybody
     * else. FAKE_FILL_ORDER=shuffle (default): the readers draw READs from one
     * shuffled list; =stream: reader r reads its own 1/READERS slice of the
     * blob front to back, like concurrent sequential readers with readahead. */
    uint64_t step = parse_size(getenv("FAKE_FILL_READ"), 128 * 1024);
    uint64_t readers = parse_size(getenv("FAKE_FILL_READERS"), 8);
    uint64_t depth = parse_size(getenv("FAKE_FILL_DEPTH"), 1);
    const char *order_env = getenv("FAKE_FILL_ORDER");
    bool stream = order_env && strcmp(order_env, "stream") == 0;
    if (!step || step % 4096 || !readers || !depth || readers > 4096 || depth > 64) {
        fprintf(stderr, "fake-fill: bad FAKE_FILL_READ/READERS/DEPTH\n");
        return 2;
    }
    uint64_t n = ((uint64_t)size + step - 1) / step;
    uint64_t *order = malloc(n * sizeof(*order));
    uint64_t *next = calloc(readers, sizeof(*next)), *stop = calloc(readers, sizeof(*stop));
    uint64_t *busy = calloc(readers, sizeof(*busy));
    uint32_t *owner = malloc(n * sizeof(*owner));
    if (!order || !next || !stop || !busy || !owner)
        return 2;
    for (uint64_t i = 0; i < n; i++)
        order[i] = i;
    if (!stream) {
        uint32_t x = 12345;
        for (uint64_t i = n; i > 1; i--) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            uint64_t j = x % i, t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
    }
    /* stream: reader r owns order[r*n/R, (r+1)*n/R); shuffle: all share one cursor (next[0]). */
    for (uint64_t r = 0; r < readers; r++) {
        next[r] = stream ? r * n / readers : 0;
        stop[r] = stream ? (r + 1) * n / readers : n;
    }
    uint64_t done = 0, seen = 0, issued = 0;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t t0 = loop_now_ns(), last_progress = t0;
    while (done < n) {
        for (uint64_t r = 0; r < readers; r++) {
            uint64_t *cur = stream ? &next[r] : &next[0];
            while (busy[r] < depth && *cur < stop[r]) {
                uint64_t k = (*cur)++;
                uint64_t off = order[k] * step;
                uint64_t len = (uint64_t)size - off < step ? (((uint64_t)size - off + 4095) & ~4095ull) : step;
                owner[k] = (uint32_t)r;
                busy[r]++;
                issued++;
                fake_device_push_read(dev, (uint32_t)(100 + k), 2, off, len);
            }
        }
        loop_run_once(d->loop, 10);
        for (; seen < fake_device_n_completions(dev); seen++) {
            uint32_t id = fake_device_completion_id(dev, seen);
            if (id < 100 || id - 100 >= n)
                continue;
            busy[owner[id - 100]]--;
            done++;
            last_progress = loop_now_ns();
        }
        if (loop_now_ns() - last_progress > 30000000000ull) {
            fprintf(stderr, "fake-fill: %" PRIu64 " READs never completed\n", issued - done);
            return 1;
        }
    }
    double secs = (double)(loop_now_ns() - t0) / 1e9;
    getrusage(RUSAGE_SELF, &ru1);
#define TV(a, b) ((double)((b).tv_sec - (a).tv_sec) + (double)((b).tv_usec - (a).tv_usec) / 1e6)
    double cpu_user = TV(ru0.ru_utime, ru1.ru_utime), cpu_sys = TV(ru0.ru_stime, ru1.ru_stime);
#undef TV
    uint64_t failures = d->stats.read_failures;
    printf("fake-fill: blob %s: %" PRIu64 " bytes, %" PRIu64 " READs, %" PRIu64 " failed, %.3f s, %.1f MiB/s\n",
           blob_id, (uint64_t)size, n, failures, secs, (double)size / secs / 1048576.0);
    printf("fake-fill: model: %s, %" PRIu64 " reader(s) x %" PRIu64 " READ(s) of %" PRIu64 " KiB in flight; "
           "cpu %.2f s user + %.2f s sys\n", stream ? "stream" : "shuffle", readers, depth, step >> 10,
           cpu_user, cpu_sys);
    free(order);
    free(next);
    free(stop);
    free(busy);
    free(owner);
    daemon_free(d);
    config_free(cfg);
    return failures ? 1 : 0;
}
