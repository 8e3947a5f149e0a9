/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * SIGTERM while the fscache front-end has work in flight: a bootstrap
 * prefill, the image's whole-blob prefetch, READs and their read-ahead.
 * The daemon runs through the fake device the way main() runs it (signalfd,
 * daemon_run, daemon_free); the test checks that shutdown ends within a few
 * seconds, that no READ is answered twice and that every byte in the cache
 * file is either still a hole or the right one. READs the daemon leaves
 * unanswered are failed by the kernel with EIO when the device closes (or
 * re-sent to the next daemon by "restore").
 *
 *   fake-shutdown BOOTSTRAP BLOB_ID EXPECTED_CACHE WORK_DIR BACKEND_YAML
 *
 * EXPECTED_CACHE is the cache file the builder predicts (--blob-data).
 * SHUTDOWN_STALL_FLAG: a file to create after the blob's OPEN, holding
 * SHUTDOWN_STALL_BELOW (fault.py then stalls the data ranges); with it, at
 * least one READ must still be in flight at SIGTERM. SHUTDOWN_RUN_MS: how
 * long the READs run before SIGTERM (default 300).
 * Exits 0 when every check held, 1 otherwise, 2 on set-up errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachefilesd-nydus/daemon.h"
#include "fake_device.h"
#include "storage/util/log.h"

#define N_READS 6
#define READ_LEN (128u * 1024)
#define SHUTDOWN_LIMIT_MS 5000

static bool wait_copen(Daemon *d, FakeDevice *dev, uint32_t msg_id, int64_t *size)
{
    for (int i = 0; i < 3000; i++) {
        if (fake_device_copen_result(dev, msg_id, size))
            return true;
        loop_run_once(d->loop, 10);
    }
    return false;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
    close(fd);
    if (n != st.st_size) {
        free(buf);
        return NULL;
    }
    *len = (size_t)st.st_size;
    return buf;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Every 4 KiB page is a hole (zeros) or exactly what the builder predicts. Returns the pages written. */
static long check_cache_file(const char *path, const uint8_t *want, size_t want_len)
{
    size_t len;
    uint8_t *got = read_file(path, &len);
    if (!got)
        return -1;
    long written = 0;
    for (size_t off = 0; off < len; off += 4096) {
        size_t n = len - off < 4096 ? len - off : 4096;
        if (all_zero(got + off, n))
            continue;
        if (off + n > want_len || memcmp(got + off, want + off, n) != 0) {
            fprintf(stderr, "fake-shutdown: WRONG bytes in the cache file at 0x%zx\n", off);
            free(got);
            return -1;
        }
        written++;
    }
    free(got);
    return written;
}

static bool range_present(const char *path, const uint8_t *want, size_t want_len, uint64_t off, uint64_t len)
{
    size_t got_len;
    uint8_t *got = read_file(path, &got_len);
    bool ok = got && off + len <= got_len && off + len <= want_len && memcmp(got + off, want + off, len) == 0;
    free(got);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: fake-shutdown BOOTSTRAP BLOB_ID EXPECTED_CACHE WORK_DIR BACKEND_YAML\n");
        return 2;
    }
    const char *boot = argv[1], *blob_id = argv[2], *expected = argv[3], *work = argv[4], *backend = argv[5];
    const char *flag = getenv("SHUTDOWN_STALL_FLAG"), *below = getenv("SHUTDOWN_STALL_BELOW");
    int run_ms = getenv("SHUTDOWN_RUN_MS") ? atoi(getenv("SHUTDOWN_RUN_MS")) : 300;
    cfn_log_set_level(getenv("SHUTDOWN_DEBUG") ? CFN_LOG_DEBUG : CFN_LOG_INFO);

    size_t want_len;
    uint8_t *want = read_file(expected, &want_len);
    char text[8192], err[512], cache_path[4200];
    snprintf(text, sizeof(text),
             "cache_dir: %s/cache\nwork_dir: %s\nthreads: 2\nread_window: 128KiB\nrequest_timeout: 60s\n"
             "images:\n  - fsid: image\n    bootstrap: %s\n    prefill_bootstrap: true\n    prefetch: true\n"
             "    backend: %s\n", work, work, boot, backend);
    snprintf(cache_path, sizeof(cache_path), "%s/blob.cache", work);
    Config *cfg = NULL;
    Daemon *d = NULL;
    /* As main() does, before any thread exists: SIGTERM reaches the daemon through its signalfd only. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    if (!want || config_parse(&cfg, "fake-shutdown.yaml", text, strlen(text), err, sizeof(err)) < 0 ||
        daemon_new(&d, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "fake-shutdown: %s\n", want ? err : "cannot read the expected cache file");
        return 2;
    }
    FakeDevice *dev = fake_device_new();
    fake_device_hold(dev);
    if (daemon_start_cachefiles(d, fake_device_base(dev)) < 0)
        return 2;
    fake_device_push_open(dev, 1, 1, "erofs,image", "image", open("/dev/null", O_WRONLY | O_CLOEXEC));
    int cfd = open(cache_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fake_device_push_open(dev, 2, 2, "erofs,image", blob_id, cfd);
    int64_t size = -1;
    if (cfd < 0 || !wait_copen(d, dev, 2, &size) || size <= 0 || ftruncate(cfd, (size + 4095) & ~4095ll) < 0) {
        fprintf(stderr, "fake-shutdown: OPEN of blob %s failed (copen %" PRId64 ")\n", blob_id, size);
        return 2;
    }
    if (flag) {
        FILE *f = fopen(flag, "w");
        if (!f || fprintf(f, "%s\n", below ? below : "") < 0 || fclose(f) != 0)
            return 2;
    }
    uint64_t offs[N_READS];
    for (int i = 0; i < N_READS; i++) {
        offs[i] = ((uint64_t)size / N_READS * (uint64_t)i) & ~(uint64_t)(READ_LEN - 1);
        fake_device_push_read(dev, 100 + (uint32_t)i, 2, offs[i], READ_LEN);
    }
    for (int i = 0; i < run_ms / 10; i++)
        loop_run_once(d->loop, 10);

    kill(getpid(), SIGTERM);
    uint64_t t0 = loop_now_ns();
    int r = daemon_run(d);
    d = daemon_free(d);
    unsigned ms = (unsigned)((loop_now_ns() - t0) / 1000000);
    config_free(cfg);

    int failures = 0;
    unsigned answered = 0;
    if (r < 0 || ms > SHUTDOWN_LIMIT_MS) {
        fprintf(stderr, "fake-shutdown: shutdown took %u ms (limit %u), daemon_run %d\n", ms, SHUTDOWN_LIMIT_MS, r);
        failures++;
    }
    for (int i = 0; i < N_READS; i++) {
        unsigned n = fake_device_completions(dev, 100 + (uint32_t)i);
        uint64_t len = CFN_MIN((uint64_t)READ_LEN, (uint64_t)size - offs[i]);
        if (n > 1) {
            fprintf(stderr, "fake-shutdown: READ %d answered %u times\n", i, n);
            failures++;
        } else if (n == 1 && !range_present(cache_path, want, want_len, offs[i], len)) {
            fprintf(stderr, "fake-shutdown: READ %d answered without its bytes in the cache file\n", i);
            failures++;
        }
        answered += n;
    }
    long pages = check_cache_file(cache_path, want, want_len);
    if (pages < 0)
        failures++;
    if (flag && answered == N_READS) {
        fprintf(stderr, "fake-shutdown: no READ was in flight at SIGTERM: nothing was tested\n");
        failures++;
    }
    printf("fake-shutdown: SIGTERM to exit %u ms; %u of %d READs answered with their data, %u left to the kernel "
           "(EIO); %ld pages in the cache file, all correct\n", ms, answered, N_READS, N_READS - answered, pages);
    fake_device_release(dev);
    free(want);
    return failures ? 1 : 0;
}
