/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon driven through its real cachefiles front-end by a fake device
 * that plays the kernel: OPEN/READ/CLOSE, malformed messages, bad images.
 * No root and no kernel needed; the "cache file" is a plain sparse file.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <stdatomic.h>

#include "cachefilesd-nydus/control.h"
#include "cachefilesd-nydus/daemon.h"
#include "fake_device.h"
#include "storage/codec/codec.h"
#include "storage/util/log.h"
#include "tests/unit/test.h"
#include "uapi/cachefiles.h"
#include "uapi/erofs.h"

typedef struct Env {
    char dir[64];
    Config *cfg;
    Daemon *d;
    FakeDevice *dev;
} Env;

static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* An erofs-looking image: a valid superblock, optional device table, random bytes. */
static uint8_t *write_image(const char *path, size_t size, uint32_t seed, const char *dev_tag, uint32_t dev_blocks)
{
    uint8_t *buf = malloc(size);
    fill_random(buf, size, seed);
    memset(buf, 0, 4096);
    struct erofs_super_block_disk sb = { 0 };
    sb.magic = htole32(EROFS_SUPER_MAGIC_V1);
    sb.blkszbits = 12;
    if (dev_tag) {
        sb.feature_incompat = htole32(EROFS_FEATURE_INCOMPAT_DEVICE_TABLE | EROFS_FEATURE_INCOMPAT_CHUNKED_FILE);
        sb.extra_devices = htole16(1);
        sb.devt_slotoff = htole16(11);
        struct erofs_deviceslot_disk slot = { 0 };
        memcpy(slot.tag, dev_tag, strlen(dev_tag));
        slot.blocks = htole32(dev_blocks);
        memcpy(buf + 11 * 128, &slot, sizeof(slot));
    }
    memcpy(buf + EROFS_SUPER_OFFSET, &sb, sizeof(sb));
    FILE *f = fopen(path, "w");
    CHECK(f && fwrite(buf, 1, size, f) == size);
    fclose(f);
    return buf;
}

/* The daemon with a test config: `extra` adds top-level lines, `images_yaml` the image list. */
static void env_start_with(Env *e, const char *extra, const char *images_yaml)
{
    char text[4096], err[512];
    snprintf(text, sizeof(text),
             "cache_dir: %s/cache\nwork_dir: %s/work\nthreads: 2\nread_window: 256KiB\nraw_chunk_size: 64KiB\n"
             "request_timeout: 5s\n%simages:\n%s", e->dir, e->dir, extra, images_yaml);
    int r = config_parse(&e->cfg, "test.yaml", text, strlen(text), err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "config: %s\n", err);
    CHECK_EQ_INT(r, 0);
    r = daemon_new(&e->d, e->cfg, err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "daemon: %s\n", err);
    CHECK_EQ_INT(r, 0);
    e->dev = fake_device_new();
    CHECK_EQ_INT(daemon_start_cachefiles(e->d, fake_device_base(e->dev)), 0);
}

static void env_start(Env *e, const char *images_yaml) { env_start_with(e, "", images_yaml); }

static void env_stop(Env *e)
{
    daemon_free(e->d);
    config_free(e->cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    CHECK_EQ_INT(system(cmd), 0);
}

static void env_init(Env *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/cfn-fake-XXXXXX");
    CHECK(mkdtemp(e->dir) != NULL);
}

/* Run the loop until msg_id got `want` completions or 5 s passed. */
static void run_until_completed(Env *e, uint32_t msg_id, unsigned want)
{
    for (int i = 0; i < 500 && fake_device_completions(e->dev, msg_id) < want; i++)
        loop_run_once(e->d->loop, 10);
}

static void run_until_copen(Env *e, uint32_t msg_id, int64_t *value)
{
    for (int i = 0; i < 500 && !fake_device_copen_result(e->dev, msg_id, value); i++)
        loop_run_once(e->d->loop, 10);
}

static void run_for(Env *e, int ms)
{
    for (int i = 0; i < ms / 10; i++)
        loop_run_once(e->d->loop, 10);
}

static int open_cache_file(Env *e, const char *name, uint64_t size)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s.cache", e->dir, name);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_EQ_INT(ftruncate(fd, (off_t)((size + 4095) / 4096 * 4096)), 0);
    return fd;
}

/*
 * The kernel's OPEN of blob `cookie` in `volume` as object `object_id`, with a
 * fresh cache file `name` of `size` bytes as the anon fd: runs until the
 * daemon's copen answer (into *copen). Returns the fd.
 */
static int open_object(Env *e, uint32_t msg_id, uint32_t object_id, const char *volume, const char *cookie,
                       const char *name, uint64_t size, int64_t *copen)
{
    int fd = open_cache_file(e, name, size);
    fake_device_push_open(e->dev, msg_id, object_id, volume, cookie, fd);
    run_until_copen(e, msg_id, copen);
    return fd;
}

static bool range_equals(int fd, const uint8_t *src, uint64_t off, uint64_t len)
{
    uint8_t *buf = malloc(len);
    bool ok = pread(fd, buf, len, (off_t)off) == (ssize_t)len && memcmp(buf, src + off, len) == 0;
    free(buf);
    return ok;
}

static bool fd_is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

#define PLAIN_SIZE (256 * 1024)

static void test_plain_image(void)
{
    Env e;
    env_init(&e);
    const size_t size = 3 * 1024 * 1024 + 3 * 4096;
    char path[128], yaml[512];
    snprintf(path, sizeof(path), "%s/plain.img", e.dir);
    uint8_t *src = write_image(path, size, 1, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: plain.img\n    bootstrap: %s\n", path);
    env_start(&e, yaml);

    CHECK(strncmp(fake_device_cmd(e.dev, 0), "dir ", 4) == 0);
    CHECK_EQ_INT(strcmp(fake_device_cmd(e.dev, 1), "bind ondemand"), 0);

    int64_t copen = 0;
    int fd = open_object(&e, 1, 7, "erofs,plain.img", "plain.img", "plain", size, &copen);
    CHECK_EQ_INT(copen, (int64_t)size);

    /* Two READs of one window before the loop runs: one fetch serves both. */
    CacheStats before = cache_service_stats(e.d->cache);
    fake_device_push_read(e.dev, 2, 7, 4096, 8192);
    fake_device_push_read(e.dev, 3, 7, 64 * 1024, 4096);
    run_until_completed(&e, 2, 1);
    run_until_completed(&e, 3, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 2), 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 3), 1);
    CacheStats after = cache_service_stats(e.d->cache);
    CHECK_EQ_INT(after.fetches - before.fetches, 1);
    /* The whole 256 KiB read window was filled. */
    CHECK(range_equals(fd, src, 0, 256 * 1024));

    /* The last block. */
    fake_device_push_read(e.dev, 4, 7, size - 4096, 4096);
    run_until_completed(&e, 4, 1);
    CHECK(range_equals(fd, src, size - 4096, 4096));

    /* Past the end: completed without data, counted as a failure. */
    uint64_t failures = e.d->stats.read_failures;
    fake_device_push_read(e.dev, 5, 7, size + 8192, 4096);
    run_until_completed(&e, 5, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 5), 1);
    CHECK_EQ_INT(e.d->stats.read_failures, failures + 1);

    /* CLOSE closes the anon fd. */
    fake_device_push_close(e.dev, 7);
    run_for(&e, 50);
    CHECK(!fd_is_open(fd));

    /* Re-open the same cache file: what was written is found, not fetched again. */
    int fd2 = open_object(&e, 6, 8, "erofs,plain.img", "plain.img", "plain", size, &copen);
    before = cache_service_stats(e.d->cache);
    fake_device_push_read(e.dev, 7, 8, 0, 4096);
    run_until_completed(&e, 7, 1);
    after = cache_service_stats(e.d->cache);
    CHECK_EQ_INT(after.fetches - before.fetches, 0);
    CHECK_EQ_INT(fake_device_completions(e.dev, 7), 1);

    /* Whole file in 128 KiB READs, as readahead would ask: every byte matches. */
    for (uint64_t off = 0, id = 100; off < size; off += 128 * 1024, id++) {
        fake_device_push_read(e.dev, (uint32_t)id, 8, off, 128 * 1024 < size - off ? 128 * 1024 : ((size - off + 4095) & ~4095ull));
        run_until_completed(&e, (uint32_t)id, 1);
        CHECK_EQ_INT(fake_device_completions(e.dev, (uint32_t)id), 1);
    }
    CHECK(range_equals(fd2, src, 0, size));
    env_stop(&e);
    free(src);
}

/* An image cut inside a 4 KiB block is truncated: the cut block must fail, never read as zeros. */
static void test_plain_image_cut_mid_block(void)
{
    Env e;
    env_init(&e);
    const size_t size = 256 * 1024 + 100;
    char path[128], yaml[512];
    snprintf(path, sizeof(path), "%s/cut.img", e.dir);
    uint8_t *src = write_image(path, size, 9, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: cut.img\n    bootstrap: %s\n", path);
    env_start(&e, yaml);
    int64_t copen = 0;
    int fd = open_object(&e, 1, 3, "erofs,cut.img", "cut.img", "cut", size, &copen);
    CHECK_EQ_INT(copen, 256 * 1024);
    uint64_t failures = e.d->stats.read_failures;
    fake_device_push_read(e.dev, 2, 3, 256 * 1024, 4096);
    run_until_completed(&e, 2, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 2), 1);
    CHECK_EQ_INT(e.d->stats.read_failures, failures + 1);
    fake_device_push_read(e.dev, 3, 3, 0, 4096);
    run_until_completed(&e, 3, 1);
    CHECK(range_equals(fd, src, 0, 4096));
    env_stop(&e);
    free(src);
}

static void test_bootstrap_and_blob(void)
{
    Env e;
    env_init(&e);
    char boot[128], blob[128], yaml[512];
    snprintf(boot, sizeof(boot), "%s/boot.img", e.dir);
    snprintf(blob, sizeof(blob), "%s/blob1", e.dir);
    const size_t boot_size = 5 * 4096, blob_size = 2 * 1024 * 1024;
    /* The image claims 4 MiB of blob; the file holds 2 MiB. */
    uint8_t *bsrc = write_image(boot, boot_size, 2, "blob1", 1024);
    uint8_t *dsrc = write_image(blob, blob_size, 3, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: boot.img\n    bootstrap: %s\n", boot);
    env_start(&e, yaml);

    int64_t copen = 0;
    int bfd = open_object(&e, 1, 1, "erofs,boot.img", "boot.img", "boot", boot_size, &copen);
    CHECK_EQ_INT(copen, (int64_t)boot_size);
    run_for(&e, 100);
    /* Prefilled without any READ. */
    CHECK(range_equals(bfd, bsrc, 0, boot_size));

    int dfd = open_object(&e, 2, 2, "erofs,boot.img", "blob1", "blob1", 4 * 1024 * 1024, &copen);
    CHECK_EQ_INT(copen, 4 * 1024 * 1024);       /* the size the image declares */

    fake_device_push_read(e.dev, 3, 2, 1024 * 1024, 65536);
    run_until_completed(&e, 3, 1);
    CHECK(range_equals(dfd, dsrc, 1024 * 1024, 65536));

    /* Past the real end of the blob: completed, nothing written, failure counted. */
    uint64_t failures = e.d->stats.read_failures;
    fake_device_push_read(e.dev, 4, 2, 3 * 1024 * 1024, 65536);
    run_until_completed(&e, 4, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 4), 1);
    CHECK_EQ_INT(e.d->stats.read_failures, failures + 1);
    off_t data = lseek(dfd, 3 * 1024 * 1024, SEEK_DATA);
    CHECK(data < 0);

    /* Unknown blob and unknown fsid: copen -ENOENT and the fd is closed. */
    open_object(&e, 5, 3, "erofs,boot.img", "nosuchblob", "x", 4096, &copen);
    CHECK_EQ_INT(copen, -ENOENT);
    int yfd = open_object(&e, 6, 4, "erofs,other", "other", "y", 4096, &copen);
    CHECK_EQ_INT(copen, -ENOENT);
    CHECK(!fd_is_open(yfd));

    env_stop(&e);
    free(bsrc);
    free(dsrc);
}

/*
 * A device slot declaring 0xffffffff blocks (16 TiB) over a 2 MiB blob: the
 * OPEN is refused (copen -EFBIG) at once, with no per-chunk table built for
 * the declared size. A slot of 4 GiB (within max_blob_size) gets its copen
 * size, reads inside the blob work, and reads past the object's end fail
 * without a backend read.
 */
static void test_huge_device_slot(void)
{
    Env e;
    env_init(&e);
    char boot[128], big[128], blob[128], yaml[512];
    snprintf(boot, sizeof(boot), "%s/huge.img", e.dir);
    snprintf(big, sizeof(big), "%s/big.img", e.dir);
    snprintf(blob, sizeof(blob), "%s/blob1", e.dir);
    uint8_t *bsrc = write_image(boot, 2 * 4096, 2, "blob1", 0xffffffffu);
    uint8_t *gsrc = write_image(big, 2 * 4096, 2, "blob1", 1u << 20);
    uint8_t *dsrc = write_image(blob, 2 << 20, 3, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: huge.img\n    bootstrap: %s\n  - fsid: big.img\n    bootstrap: %s\n",
             boot, big);
    env_start_with(&e, "max_blob_size: 8GiB\n", yaml);

    long rss0 = test_peak_rss_kib();
    uint64_t t0 = test_now_ms();
    int64_t copen = 0;
    open_object(&e, 1, 1, "erofs,huge.img", "blob1", "huge", 4096, &copen);
    uint64_t ms = test_now_ms() - t0;
    long grew = test_peak_rss_kib() - rss0;
    fprintf(stderr, "16 TiB device slot: copen %lld after %llu ms, peak RSS +%ld KiB\n", (long long)copen,
            (unsigned long long)ms, grew);
    CHECK_EQ_INT(copen, -EFBIG);
    CHECK(grew < 32 * 1024);

    int dfd = open_object(&e, 2, 2, "erofs,big.img", "blob1", "big", 1 << 20, &copen);
    CHECK_EQ_INT(copen, 4ll << 30);
    fake_device_push_read(e.dev, 3, 2, 1 << 20, 65536);
    run_until_completed(&e, 3, 1);
    CHECK(range_equals(dfd, dsrc, 1 << 20, 65536));
    uint64_t failures = e.d->stats.read_failures, fetches = cache_service_stats(e.d->cache).fetches;
    fake_device_push_read(e.dev, 4, 2, 3ull << 30, 65536);
    run_until_completed(&e, 4, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 4), 1);
    CHECK_EQ_INT(e.d->stats.read_failures, failures + 1);
    CHECK_EQ_INT(cache_service_stats(e.d->cache).fetches, fetches);
    grew = test_peak_rss_kib() - rss0;
    CHECK(grew < 32 * 1024);

    env_stop(&e);
    free(bsrc);
    free(gsrc);
    free(dsrc);
}

static void test_malformed_messages(void)
{
    Env e;
    env_init(&e);
    char path[128], yaml[512];
    snprintf(path, sizeof(path), "%s/plain.img", e.dir);
    uint8_t *src = write_image(path, 256 * 1024, 4, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: plain.img\n    bootstrap: %s\n", path);
    env_start(&e, yaml);
    int64_t copen;
    int fd = open_object(&e, 1, 9, "erofs,plain.img", "plain.img", "plain", 256 * 1024, &copen);

    uint8_t m[64] = { 0 };
    struct cachefiles_msg_hdr h;
    /* 1: shorter than a header. */
    fake_device_push_raw(e.dev, m, 8);
    /* 2: len says 64, 16 bytes read. */
    h = (struct cachefiles_msg_hdr){ .msg_id = 50, .opcode = CACHEFILES_OP_READ, .len = 64, .object_id = 9 };
    fake_device_push_raw(e.dev, &h, sizeof(h));
    /* 3: READ with a lying len and short body. */
    h.len = 24;
    memcpy(m, &h, sizeof(h));
    fake_device_push_raw(e.dev, m, 24);
    /* 4: OPEN whose key sizes point past the end. */
    int sfd = open_cache_file(&e, "stray", 4096);
    struct cachefiles_open_hdr oh = { .volume_key_size = 200, .cookie_key_size = 100, .fd = (uint32_t)sfd };
    h = (struct cachefiles_msg_hdr){ .msg_id = 51, .opcode = CACHEFILES_OP_OPEN, .len = 40, .object_id = 10 };
    memcpy(m, &h, sizeof(h));
    memcpy(m + 16, &oh, sizeof(oh));
    memcpy(m + 32, "erofs,x", 8);
    fake_device_push_raw(e.dev, m, 40);
    /* 5: unknown opcode. */
    h = (struct cachefiles_msg_hdr){ .msg_id = 52, .opcode = 77, .len = 16, .object_id = 9 };
    fake_device_push_raw(e.dev, &h, sizeof(h));
    /* 6: READ whose range overflows. */
    fake_device_push_read(e.dev, 53, 9, UINT64_MAX - 100, 4096);
    /* 7: READ for an object that does not exist. */
    fake_device_push_read(e.dev, 54, 12345, 0, 4096);
    /* Then a good READ still works. */
    fake_device_push_read(e.dev, 55, 9, 0, 4096);
    run_until_completed(&e, 55, 1);

    CHECK_EQ_INT(fake_device_completions(e.dev, 55), 1);
    CHECK(range_equals(fd, src, 0, 4096));
    CHECK_EQ_INT(e.d->stats.bad_messages, 6);
    CHECK(fake_device_copen_result(e.dev, 51, &copen) && copen == -EINVAL);
    CHECK(!fd_is_open(sfd));
    env_stop(&e);
    free(src);
}

/* A backend that answers sizes at once but holds every read until released. */
typedef struct StallBackend {
    Backend base;
    Backend *inner;                 /* for sizes */
    BackendRequest *held[16];
    size_t n_held;
} StallBackend;

static int stall_submit(Backend *b, BackendRequest *req)
{
    StallBackend *sb = (StallBackend *)b;
    if (req->kind == BACKEND_SIZE)
        return backend_submit(sb->inner, req);
    if (sb->n_held == 16)
        return -EBUSY;
    sb->held[sb->n_held++] = req;
    return 0;
}

static void stall_free(Backend *b)
{
    StallBackend *sb = (StallBackend *)b;
    backend_free(sb->inner);
    free(sb);
}

static const BackendOps stall_ops = { .name = "stall", .submit = stall_submit, .free = stall_free };

/* A data blob's bytes arrive only when the test says so: submitted to the real backend late. */
static void stall_release(StallBackend *sb, size_t i)
{
    CHECK_EQ_INT(backend_submit(sb->inner, sb->held[i]), 0);
}

/* Run the loop until the stalled backend holds `n` reads or 5 s passed (busy machines, sanitizers). */
static void run_until_held(Env *e, StallBackend *sb, size_t n)
{
    for (int i = 0; i < 500 && sb->n_held < n; i++)
        loop_run_once(e->d->loop, 10);
}

/*
 * The daemon serving boot.img (one device slot: "blob1", 64 blocks) with the
 * data blob behind a StallBackend and the given request_timeout.
 */
static StallBackend *env_start_stalled(Env *e, const char *timeout, uint8_t **bsrc, uint8_t **dsrc)
{
    char boot[128], blob[128], text[1024], err[512];
    snprintf(boot, sizeof(boot), "%s/boot.img", e->dir);
    snprintf(blob, sizeof(blob), "%s/blob1", e->dir);
    *bsrc = write_image(boot, 4096 * 3, 5, "blob1", 64);
    *dsrc = write_image(blob, 64 * 4096, 6, NULL, 0);
    snprintf(text, sizeof(text), "cache_dir: %s/cache\nwork_dir: %s/work\nrequest_timeout: %s\nimages:\n"
             "  - fsid: boot.img\n    bootstrap: %s\n", e->dir, e->dir, timeout, boot);
    CHECK_EQ_INT(config_parse(&e->cfg, "t.yaml", text, strlen(text), err, sizeof(err)), 0);
    CHECK_EQ_INT(daemon_new(&e->d, e->cfg, err, sizeof(err)), 0);
    StallBackend *sb = calloc(1, sizeof(*sb));
    sb->base.ops = &stall_ops;
    sb->base.loop = e->d->loop;
    CHECK_EQ_INT(backend_localfs_new(&sb->inner, e->d->loop, e->dir), 0);
    CHECK_EQ_INT(image_registry_replace_blob_backend(e->d->images, "boot.img", &sb->base), 0);
    e->dev = fake_device_new();
    CHECK_EQ_INT(daemon_start_cachefiles(e->d, fake_device_base(e->dev)), 0);
    return sb;
}

static void test_deadline(void)
{
    Env e;
    env_init(&e);
    uint8_t *bsrc, *dsrc;
    StallBackend *sb = env_start_stalled(&e, "200ms", &bsrc, &dsrc);

    int64_t copen = 0;
    open_object(&e, 1, 1, "erofs,boot.img", "blob1", "blob1", 64 * 4096, &copen);
    CHECK_EQ_INT(copen, 64 * 4096);

    uint64_t t0 = loop_now_ns();
    fake_device_push_read(e.dev, 2, 1, 0, 4096);
    run_until_completed(&e, 2, 1);
    uint64_t waited_ms = (loop_now_ns() - t0) / 1000000;
    CHECK_EQ_INT(fake_device_completions(e.dev, 2), 1);
    CHECK(waited_ms >= 150 && waited_ms < 2000);
    CHECK_EQ_INT(e.d->stats.read_timeouts, 1);
    CHECK_EQ_INT(sb->n_held, 1);

    /* The fetch finally fails: the READ is not answered a second time. */
    sb->held[0]->done(sb->held[0], -EIO);
    run_for(&e, 50);
    CHECK_EQ_INT(fake_device_completions(e.dev, 2), 1);

    /* A later READ of the same range tries again (the chunk went back to missing). */
    fake_device_push_read(e.dev, 3, 1, 0, 4096);
    run_until_held(&e, sb, 2);
    CHECK_EQ_INT(sb->n_held, 2);
    sb->held[1]->done(sb->held[1], -EIO);
    run_until_completed(&e, 3, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 3), 1);
    env_stop(&e);
    free(bsrc);
    free(dsrc);
}

#define FIXTURE_BLOB "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef"

/* Copy the repo's nydus fixture into the test dir, optionally flipping one blob byte. */
static void copy_fixture(Env *e, long flip_at)
{
    const char *fixture = getenv("CFN_FIXTURE_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp %s/* %s/ && chmod u+w %s/*", fixture ? fixture : "tests/fixtures/nydus-v6-2.2",
             e->dir, e->dir);
    CHECK_EQ_INT(system(cmd), 0);
    if (flip_at >= 0) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", e->dir, FIXTURE_BLOB);
        int fd = open(path, O_RDWR);
        uint8_t c;
        CHECK(pread(fd, &c, 1, flip_at) == 1);
        c ^= 0x40;
        CHECK(pwrite(fd, &c, 1, flip_at) == 1);
        close(fd);
    }
}

static void check_blake3(int fd, uint64_t off, uint32_t len, const char *hex)
{
    uint8_t *buf = malloc(len), d[32];
    char got[65];
    CodecCtx *codec;
    CHECK_EQ_INT(codec_ctx_new(&codec), 0);
    CHECK(pread(fd, buf, len, (off_t)off) == (ssize_t)len);
    codec_digest(codec, BLOB_DIGEST_BLAKE3, buf, len, d);
    for (int i = 0; i < 32; i++)
        snprintf(got + 2 * i, 3, "%02x", d[i]);
    CHECK(strncmp(got, hex, strlen(hex)) == 0);
    codec_ctx_free(codec);
    free(buf);
}

static void nydus_fixture_run(long flip_at)
{
    Env e;
    env_init(&e);
    copy_fixture(&e, flip_at);
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "  - fsid: rafs-v6-2.2.boot\n    bootstrap: %s/rafs-v6-2.2.boot\n", e.dir);
    char text[1024], err[512];
    snprintf(text, sizeof(text), "cache_dir: %s/cache\nwork_dir: %s/work\nimages:\n%s", e.dir, e.dir, yaml);
    CHECK_EQ_INT(config_parse(&e.cfg, "t.yaml", text, strlen(text), err, sizeof(err)), 0);
    int r = daemon_new(&e.d, e.cfg, err, sizeof(err));
    CHECK_EQ_INT(r, 0);
    if (r < 0) {
        fprintf(stderr, "daemon_new: %s\n", err);
        config_free(e.cfg);
        return;
    }
    e.dev = fake_device_new();
    CHECK_EQ_INT(daemon_start_cachefiles(e.d, fake_device_base(e.dev)), 0);

    int64_t copen = 0;
    open_object(&e, 1, 1, "erofs,rafs-v6-2.2.boot", "rafs-v6-2.2.boot", "boot", 20480, &copen);
    CHECK_EQ_INT(copen, 20480);

    int dfd = open_object(&e, 2, 2, "erofs,rafs-v6-2.2.boot", FIXTURE_BLOB, "blob", 0x9000, &copen);
    CHECK_EQ_INT(copen, 0x9000);

    uint64_t failures = e.d->stats.read_failures;
    fake_device_push_read(e.dev, 3, 2, 0x5000, 0x4000);    /* chunk 1: sync_io.rs */
    run_until_completed(&e, 3, 1);
    fake_device_push_read(e.dev, 4, 2, 0, 0x5000);         /* chunk 0: lib.rs */
    run_until_completed(&e, 4, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 3), 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 4), 1);
    /* Whatever was written is exactly the chunk the image's digest names. */
    check_blake3(dfd, 0x5000, 13400, "812465bc");
    if (flip_at < 0) {
        check_blake3(dfd, 0, 16931, "f7e2735f");
        CHECK_EQ_INT(e.d->stats.read_failures, failures);
        char meta[256];
        snprintf(meta, sizeof(meta), "%s/work/%s.blob.meta", e.dir, FIXTURE_BLOB);
        CHECK(access(meta, R_OK) == 0);
    } else {
        /* The corrupt chunk is never written: the reader gets EIO, the other chunk is fine. */
        CHECK_EQ_INT(e.d->stats.read_failures, failures + 1);
        CHECK(lseek(dfd, 0, SEEK_DATA) == 0x5000);
    }
    env_stop(&e);
}

static void test_nydus_fixture(void) { nydus_fixture_run(-1); }
/* A byte inside chunk 0's zstd frame (the blob holds chunk 0 at [0, 4828)). */
static void test_nydus_fixture_corrupt_chunk(void) { nydus_fixture_run(2000); }

/* A device inherited from a previous daemon is taken over with "restore", never re-bound. */
static void test_takeover_restores(void)
{
    Env e;
    env_init(&e);
    char path[128], yaml[512], text[1024], err[512];
    snprintf(path, sizeof(path), "%s/plain.img", e.dir);
    uint8_t *src = write_image(path, 64 * 4096, 11, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: plain.img\n    bootstrap: %s\n", path);
    snprintf(text, sizeof(text), "cache_dir: %s/cache\nwork_dir: %s/work\nimages:\n%s", e.dir, e.dir, yaml);
    CHECK_EQ_INT(config_parse(&e.cfg, "t.yaml", text, strlen(text), err, sizeof(err)), 0);
    CHECK_EQ_INT(daemon_new(&e.d, e.cfg, err, sizeof(err)), 0);
    e.dev = fake_device_new();
    fake_device_base(e.dev)->bound = true;
    CHECK_EQ_INT(daemon_start_cachefiles(e.d, fake_device_base(e.dev)), 0);
    CHECK_EQ_INT(fake_device_n_cmds(e.dev), 1);
    CHECK(strcmp(fake_device_cmd(e.dev, 0), "restore") == 0);
    /* The re-sent OPEN and READ are served as usual. */
    int64_t copen = 0;
    int fd = open_object(&e, 7, 21, "erofs,plain.img", "plain.img", "plain", 64 * 4096, &copen);
    CHECK_EQ_INT(copen, 64 * 4096);
    fake_device_push_read(e.dev, 8, 21, 0, 4096);
    run_until_completed(&e, 8, 1);
    CHECK(range_equals(fd, src, 0, 4096));
    env_stop(&e);
    free(src);
}

/* Bytes of [off, off+len) present in the cache file (SEEK_DATA/SEEK_HOLE). */
static uint64_t bytes_present(int fd, uint64_t off, uint64_t len)
{
    uint64_t n = 0, end = off + len;
    while (off < end) {
        off_t d = lseek(fd, (off_t)off, SEEK_DATA);
        if (d < 0 || (uint64_t)d >= end)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        uint64_t stop = h < 0 ? end : CFN_MIN((uint64_t)h, end);
        n += stop - (uint64_t)d;
        off = stop;
    }
    return n;
}

/*
 * Run the loop until the cache file holds `want` bytes (5 s at most: slow
 * under sanitizers and a busy machine), then 100 ms more so that anything
 * beyond `want` would show too. Returns the bytes present.
 */
static uint64_t settle_present(Env *e, int fd, uint64_t size, uint64_t want)
{
    for (int i = 0; i < 500 && bytes_present(fd, 0, size) < want; i++)
        loop_run_once(e->d->loop, 10);
    run_for(e, 100);
    return bytes_present(fd, 0, size);
}

/*
 * Sequential READ misses start a read-ahead that doubles up to `readahead`
 * and fills bytes nobody asked for yet; a random miss does not, and
 * `readahead: 0` turns it off.
 */
static void readahead_run(const char *extra, bool expect_readahead)
{
    Env e;
    env_init(&e);
    const size_t size = 8u << 20;
    char path[128], yaml[512];
    snprintf(path, sizeof(path), "%s/plain.img", e.dir);
    uint8_t *src = write_image(path, size, 5, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: plain.img\n    bootstrap: %s\n", path);
    env_start_with(&e, extra, yaml);
    int64_t copen = 0;
    int fd = open_object(&e, 1, 7, "erofs,plain.img", "plain.img", "plain", size, &copen);
    CHECK_EQ_INT(copen, (int64_t)size);

    const uint64_t K = 1024;
    /* First miss: only its 256 KiB window. */
    fake_device_push_read(e.dev, 2, 7, 0, 4096);
    run_until_completed(&e, 2, 1);
    CHECK_EQ_INT(settle_present(&e, fd, size, 256 * K), 256 * K);
    CHECK_EQ_INT(e.d->stats.readaheads, 0);

    /* The next miss where that window ended: its window plus 512 KiB ahead. */
    fake_device_push_read(e.dev, 3, 7, 256 * K, 4096);
    run_until_completed(&e, 3, 1);
    uint64_t after_second = expect_readahead ? 1024 * K : 512 * K;
    CHECK_EQ_INT(settle_present(&e, fd, size, after_second), after_second);

    /* Again at the end of the read-ahead: the window doubles (and is capped at 1 MiB). */
    fake_device_push_read(e.dev, 4, 7, after_second, 4096);
    run_until_completed(&e, 4, 1);
    uint64_t after_third = expect_readahead ? after_second + 256 * K + 1024 * K : after_second + 256 * K;
    CHECK_EQ_INT(settle_present(&e, fd, size, after_third), after_third);
    uint64_t readaheads = e.d->stats.readaheads;
    CHECK(expect_readahead ? readaheads >= 2 : readaheads == 0);

    /* A jump elsewhere is not sequential: its window only. */
    fake_device_push_read(e.dev, 5, 7, 6u << 20, 4096);
    run_until_completed(&e, 5, 1);
    CHECK_EQ_INT(settle_present(&e, fd, size, after_third + 256 * K), after_third + 256 * K);
    CHECK_EQ_INT(e.d->stats.readaheads, readaheads);

    /* Whatever was read ahead is the right data. */
    CHECK(range_equals(fd, src, 0, after_third));
    CHECK(range_equals(fd, src, 6u << 20, 256 * K));
    env_stop(&e);
    free(src);
}

static void test_readahead_sequential(void) { readahead_run("readahead: 1MiB\n", true); }
static void test_readahead_off(void) { readahead_run("readahead: 0\n", false); }

/*
 * images[].prefetch: the whole blob arrives after OPEN with no READ at all,
 * a READ during the prefetch is served, and a CLOSE in the middle of one
 * stops it cleanly. Without the key nothing is fetched ahead of READs.
 */
static void test_prefetch(void)
{
    Env e;
    env_init(&e);
    const size_t size = 8u << 20;
    char path[128], yaml[512];
    snprintf(path, sizeof(path), "%s/plain.img", e.dir);
    uint8_t *src = write_image(path, size, 9, NULL, 0);
    snprintf(yaml, sizeof(yaml),
             "  - fsid: pf.img\n    bootstrap: %s\n    prefetch: true\n"
             "  - fsid: plain.img\n    bootstrap: %s\n", path, path);
    env_start_with(&e, "merge_limit: 512KiB\nmax_inflight: 4MiB\n", yaml);

    int64_t copen = 0;
    int fd = open_object(&e, 1, 7, "erofs,pf.img", "pf.img", "pf", size, &copen);
    CHECK_EQ_INT(copen, (int64_t)size);
    /* A READ while the prefetch runs (its budget is a quarter of max_inflight: 1 MiB). */
    fake_device_push_read(e.dev, 2, 7, 6u << 20, 4096);
    run_until_completed(&e, 2, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 2), 1);
    for (int i = 0; i < 500 && bytes_present(fd, 0, size) < size; i++)
        loop_run_once(e.d->loop, 10);
    CHECK_EQ_INT(bytes_present(fd, 0, size), size);
    CHECK(range_equals(fd, src, 0, size));
    CHECK(e.d->stats.prefetches >= size / (512 * 1024) - 1);
    CHECK_EQ_INT(e.d->stats.reads, 1);

    /* The same blob without prefetch: nothing arrives until a READ asks. */
    uint64_t prefetches = e.d->stats.prefetches;
    int fd2 = open_object(&e, 3, 8, "erofs,plain.img", "plain.img", "plain", size, &copen);
    run_for(&e, 200);
    CHECK_EQ_INT(bytes_present(fd2, 0, size), 0);
    CHECK_EQ_INT(e.d->stats.prefetches, prefetches);

    /* CLOSE in the middle of a prefetch: it stops, nothing leaks (ASan), the daemon goes on. */
    char path3[160];
    snprintf(path3, sizeof(path3), "%s/pf.cache", e.dir);
    unlink(path3);
    int fd3 = open_object(&e, 4, 9, "erofs,pf.img", "pf.img", "pf", size, &copen);
    loop_run_once(e.d->loop, 1);
    fake_device_push_close(e.dev, 9);
    run_for(&e, 200);
    CHECK(!fd_is_open(fd3));
    /* Whatever it wrote before stopping is the source's bytes. */
    int check = open(path3, O_RDONLY);
    CHECK(check >= 0);
    for (off_t d = lseek(check, 0, SEEK_DATA); d >= 0 && (uint64_t)d < size; d = lseek(check, d, SEEK_DATA)) {
        off_t h = lseek(check, d, SEEK_HOLE);
        uint64_t stop = h < 0 ? size : CFN_MIN((uint64_t)h, size);
        CHECK(range_equals(check, src, (uint64_t)d, stop - (uint64_t)d));
        d = (off_t)stop;
    }
    close(check);
    /* And the daemon still serves a READ on the first object. */
    fake_device_push_read(e.dev, 5, 7, 0, 4096);
    run_until_completed(&e, 5, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 5), 1);
    env_stop(&e);
    free(src);
}

/*
 * A prefetched blob of 16 MiB of which only the first MiB can be read: the
 * object is cut short from the start (CUT_FROM_START: prefetch stops where the
 * object ends), or truncated once opened (its size is right, its reads past
 * 1 MiB fail: prefetch gives up after 3 failed ranges). Returns the number of
 * prefetch fills; the first MiB must be in the cache file and nothing past it.
 */
static uint64_t prefetch_readable_first_mib(bool cut_from_start)
{
    Env e;
    env_init(&e);
    char boot[128], blob[128], yaml[512];
    snprintf(boot, sizeof(boot), "%s/boot.img", e.dir);
    snprintf(blob, sizeof(blob), "%s/blob1", e.dir);
    const size_t boot_size = 5 * 4096, readable = 1u << 20, declared = 16u << 20;
    uint8_t *bsrc = write_image(boot, boot_size, 2, "blob1", declared / 4096);
    uint8_t *dsrc = write_image(blob, cut_from_start ? readable : declared, 3, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: boot.img\n    bootstrap: %s\n    prefetch: true\n", boot);
    env_start_with(&e, "merge_limit: 512KiB\nmax_inflight: 4MiB\n", yaml);
    int64_t copen = 0;
    open_object(&e, 1, 1, "erofs,boot.img", "boot.img", "boot", boot_size, &copen);
    int dfd = open_object(&e, 2, 2, "erofs,boot.img", "blob1", "blob1", declared, &copen);
    CHECK_EQ_INT(copen, (int64_t)declared);
    if (!cut_from_start)
        CHECK(truncate(blob, (off_t)readable) == 0);
    /* Wait for the fills (slow under sanitizers), then long enough to see a prefetch that goes on. */
    uint64_t want = cut_from_start ? 2 : 5;
    for (int i = 0; i < 500 && e.d->stats.prefetches < want; i++)
        loop_run_once(e.d->loop, 10);
    run_for(&e, 300);
    CHECK(range_equals(dfd, dsrc, 0, readable));
    CHECK(lseek(dfd, (off_t)readable, SEEK_DATA) < 0);
    fake_device_push_read(e.dev, 3, 2, 4096, 4096);
    run_until_completed(&e, 3, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 3), 1);
    uint64_t fills = e.d->stats.prefetches;
    env_stop(&e);
    free(bsrc);
    free(dsrc);
    return fills;
}

/* 32 ranges of 512 KiB declared; the object holds 2: nothing past them is asked of the backend. */
static void test_prefetch_stops_on_failures(void)
{
    CHECK_EQ_INT(prefetch_readable_first_mib(true), 2);
}

/* 2 good ranges, then 3 failures (plus what was in flight), then no more: not all 32. */
static void test_prefetch_gives_up_after_failures(void)
{
    uint64_t fills = prefetch_readable_first_mib(false);
    CHECK(fills >= 5);
    CHECK(fills <= 8);
}
/* The control socket's answer to `status`, run from a thread while the loop serves it. */
typedef struct StatusCall {
    char sock[128];
    char out[CONTROL_MAX_MSG];
    int status, res;
    atomic_bool done;       /* polled by the loop thread; volatile would be a data race */
} StatusCall;

static void *status_thread(void *p)
{
    StatusCall *c = p;
    char *argv[] = { "status" };
    c->res = control_call(c->sock, 1, argv, 5000, &c->status, c->out, sizeof(c->out));
    atomic_store(&c->done, true);
    return NULL;
}

/*
 * One bad image among good ones: the daemon starts and serves the good ones;
 * the bad one is logged, refused at OPEN with its reason, and `status` names
 * it. (It used to fail daemon_new for every image.)
 */
static void test_bad_image_does_not_stop_the_others(void)
{
    Env e;
    env_init(&e);
    char good[128], bad[128], inl[128], yaml[1024];
    snprintf(good, sizeof(good), "%s/good.img", e.dir);
    snprintf(bad, sizeof(bad), "%s/bad.img", e.dir);
    uint8_t *src = write_image(good, 16 * 4096, 21, NULL, 0);
    FILE *f = fopen(bad, "w");
    CHECK(f && fputs("not an erofs image\n", f) >= 0);
    fclose(f);
    snprintf(inl, sizeof(inl), "%s/no-blobs", e.dir);
    CHECK_EQ_INT(mkdir(inl, 0700), 0);
    /* A FIFO as bootstrap: opening it must not hang the start-up (it did, waiting for a writer). */
    char fifo[128];
    snprintf(fifo, sizeof(fifo), "%s/fifo.img", e.dir);
    CHECK_EQ_INT(mkfifo(fifo, 0600), 0);
    alarm(60);
    snprintf(yaml, sizeof(yaml),
             "  - fsid: fifo\n    bootstrap: %s\n"
             "  - fsid: bad\n    bootstrap: %s\n"
             "  - fsid: good\n    bootstrap: %s\n"
             "  - fsid: gone\n    bootstrap_blob: %064d\n    backend: {type: localfs, dir: %s}\n", fifo, bad, good, 0,
             inl);
    env_start(&e, yaml);

    int64_t copen = 0;
    int fd = open_object(&e, 1, 1, "erofs,good", "good", "good", 16 * 4096, &copen);
    CHECK_EQ_INT(copen, 16 * 4096);
    fake_device_push_read(e.dev, 2, 1, 0, 4096);
    run_until_completed(&e, 2, 1);
    CHECK(range_equals(fd, src, 0, 4096));

    int bfd = open_object(&e, 3, 2, "erofs,bad", "bad", "bad", 0, &copen);
    CHECK_EQ_INT(copen, -EIO);
    int gfd = open_object(&e, 4, 3, "erofs,gone", "gone", "gone", 0, &copen);
    CHECK_EQ_INT(copen, -EIO);

    StatusCall call = { .res = 1 };
    snprintf(call.sock, sizeof(call.sock), "%s/work/control.sock", e.dir);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, status_thread, &call), 0);
    for (int i = 0; i < 500 && !atomic_load(&call.done); i++)
        loop_run_once(e.d->loop, 10);
    pthread_join(t, NULL);
    CHECK_EQ_INT(call.res, 0);
    CHECK_EQ_INT(call.status, 0);
    CHECK(strstr(call.out, "frontend=fscache") != NULL);
    CHECK(strstr(call.out, "image bad not served: bootstrap ") != NULL);
    CHECK(strstr(call.out, "is not a usable erofs image") != NULL);
    CHECK(strstr(call.out, "image gone not served: ") != NULL);
    CHECK(strstr(call.out, "image fifo not served: bootstrap ") != NULL && strstr(call.out, "not a regular file"));
    alarm(0);
    CHECK(strstr(call.out, "image good") == NULL);
    if (call.res == 0)
        fprintf(stderr, "status:\n%s", call.out);
    close(bfd);
    close(gfd);
    env_stop(&e);
    free(src);
}

/*
 * A FIFO named like a data blob in the blob directory: its OPEN is refused
 * with a clear reason, and the daemon keeps answering the other blob's READs
 * meanwhile. (Opening the FIFO on the loop thread hung the whole daemon.)
 */
static void test_fifo_blob(void)
{
    Env e;
    env_init(&e);
    char boot[128], blob[128], fifo[128], yaml[512];
    snprintf(boot, sizeof(boot), "%s/boot.img", e.dir);
    snprintf(blob, sizeof(blob), "%s/boot2.img", e.dir);
    snprintf(fifo, sizeof(fifo), "%s/fifoblob", e.dir);
    uint8_t *bsrc = write_image(boot, 4 * 4096, 31, "fifoblob", 64);
    uint8_t *gsrc = write_image(blob, 16 * 4096, 32, NULL, 0);
    CHECK_EQ_INT(mkfifo(fifo, 0600), 0);
    alarm(60);
    snprintf(yaml, sizeof(yaml), "  - fsid: boot.img\n    bootstrap: %s\n  - fsid: boot2.img\n    bootstrap: %s\n",
             boot, blob);
    env_start(&e, yaml);

    int64_t copen = 0, fcopen = 1;
    int gfd = open_object(&e, 1, 1, "erofs,boot2.img", "boot2.img", "good", 16 * 4096, &copen);
    CHECK_EQ_INT(copen, 16 * 4096);
    int ffd = open_cache_file(&e, "fifo", 64 * 4096);
    fake_device_push_open(e.dev, 2, 2, "erofs,boot.img", "fifoblob", ffd);
    fake_device_push_read(e.dev, 3, 1, 0, 4096);
    run_until_completed(&e, 3, 1);
    CHECK(range_equals(gfd, gsrc, 0, 4096));
    run_until_copen(&e, 2, &fcopen);
    CHECK(fcopen < 0);
    alarm(0);
    env_stop(&e);
    free(bsrc);
    free(gsrc);
}


static void test_bad_config_is_reported(void)
{
    Config *cfg = NULL;
    char err[512];
    const char *text = "cache_dir: /tmp\nimages:\n  - fsid: a/b\n    bootstrap: /x\n";
    CHECK(config_parse(&cfg, "bad.yaml", text, strlen(text), err, sizeof(err)) < 0);
    CHECK(strstr(err, "bad.yaml:3:") != NULL);
    CHECK(strstr(err, "images[0].fsid") != NULL);
}

/* ---- kernel-protocol corner cases ---- */

/* The daemon with plain.img (PLAIN_SIZE bytes) open as object 7 through the returned fd. */
static int env_start_plain(Env *e, uint8_t **src)
{
    char path[128], yaml[512];
    snprintf(path, sizeof(path), "%s/plain.img", e->dir);
    *src = write_image(path, PLAIN_SIZE, 11, NULL, 0);
    snprintf(yaml, sizeof(yaml), "  - fsid: plain.img\n    bootstrap: %s\n", path);
    env_start(e, yaml);
    int64_t copen = 0;
    int fd = open_object(e, 1, 7, "erofs,plain.img", "plain.img", "plain", PLAIN_SIZE, &copen);
    CHECK_EQ_INT(copen, PLAIN_SIZE);
    return fd;
}

/* An OPEN the daemon must refuse with `want`: its anon fd is closed and no object exists. */
static void check_open_refused(Env *e, uint32_t msg_id, uint32_t object_id, const char *volume,
                               const char *cookie, int64_t want)
{
    int64_t copen = 0;
    int fd = open_object(e, msg_id, object_id, volume, cookie, "refused", 4096, &copen);
    if (copen != want)
        fprintf(stderr, "OPEN volume='%s' cookie='%s': copen %" PRId64 ", expected %" PRId64 "\n",
                volume, cookie, copen, want);
    CHECK_EQ_INT(copen, want);
    CHECK(!fd_is_open(fd));
    /* No object behind that id: a READ for it is never answered through any fd. */
    size_t before = fake_device_n_completions(e->dev);
    fake_device_push_read(e->dev, msg_id + 1000, object_id, 0, 4096);
    run_for(e, 30);
    CHECK_EQ_INT(fake_device_n_completions(e->dev), before);
}

/*
 * Keys are names the kernel got from a mount option: "..", "/", spaces and
 * control bytes must never reach a path. Printable ones find no image
 * (-ENOENT); control bytes make the message malformed (-EINVAL).
 */
static void test_hostile_keys(void)
{
    Env e;
    env_init(&e);
    uint8_t *src;
    env_start_plain(&e, &src);
    uint32_t id = 100;
    static const char *const cookies[] = { "..", ".", "../plain.img", "plain.img/..", "/plain.img",
                                           "sub/plain.img", "plain img", " plain.img", "plain.img " };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(cookies); i++, id++)
        check_open_refused(&e, id, id, "erofs,plain.img", cookies[i], -ENOENT);
    static const char *const volumes[] = { "erofs,..", "erofs,../plain.img", "erofs,/plain.img",
                                           "erofs,plain.img/..", "erofs, plain.img", "erofs,plain img",
                                           "../erofs,plain.img", "erofs" };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(volumes); i++, id++)
        check_open_refused(&e, id, id, volumes[i], "plain.img", -ENOENT);

    uint64_t bad = e.d->stats.bad_messages;
    static const char *const ctl_cookies[] = { "plain\x01img", "plain.img\n", "\x1b[2Jplain.img", "plain\x7f" };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(ctl_cookies); i++, id++)
        check_open_refused(&e, id, id, "erofs,plain.img", ctl_cookies[i], -EINVAL);
    check_open_refused(&e, id, id, "erofs,plain\timg", "plain.img", -EINVAL);
    id++;
    CHECK_EQ_INT(e.d->stats.bad_messages, bad + CFN_ARRAY_SIZE(ctl_cookies) + 1);

    /* Nothing was created next to the cache directory from those names. */
    char path[160];
    struct stat st;
    snprintf(path, sizeof(path), "%s/plain img", e.dir);
    CHECK(stat(path, &st) < 0 && errno == ENOENT);
    env_stop(&e);
    free(src);
}

/* An OPEN message with the given raw key sizes and `payload` bytes of keys after the headers. */
static void push_open_sizes(Env *e, uint32_t msg_id, uint32_t object_id, uint32_t vsize, uint32_t csize,
                            const char *payload, size_t payload_len, int fd)
{
    uint8_t m[CACHEFILES_MSG_MAX_SIZE];
    struct cachefiles_msg_hdr h = { .msg_id = msg_id, .opcode = CACHEFILES_OP_OPEN,
                                    .len = (uint32_t)(32 + payload_len), .object_id = object_id };
    struct cachefiles_open_hdr oh = { .volume_key_size = vsize, .cookie_key_size = csize, .fd = (uint32_t)fd };
    memcpy(m, &h, sizeof(h));
    memcpy(m + 16, &oh, sizeof(oh));
    memcpy(m + 32, payload, payload_len);
    fake_device_push_raw(e->dev, m, h.len);
}

/* Key sizes whose 32-bit sum wraps around to the payload size are refused, never trusted. */
static void test_key_sizes_overflow(void)
{
    Env e;
    env_init(&e);
    uint8_t *src;
    env_start_plain(&e, &src);
    static const char payload[] = "erofs,plain.img\0plain.img";    /* 16 + 9 bytes */
    enum { PLEN = sizeof(payload) - 1 };
    const size_t plen = PLEN;
    static const uint32_t sizes[][2] = {     /* each sum is PLEN modulo 2^32 */
        { 0xffffffffu, PLEN + 1 },
        { 0xfffffff0u, PLEN + 16 },
        { 0x80000000u, 0x80000000u + PLEN },
        { 0, PLEN },                        /* the sum matches, the volume key is empty */
        { PLEN, 0 },                        /* ... the cookie key is empty */
    };
    uint64_t bad = e.d->stats.bad_messages;
    for (uint32_t i = 0; i < CFN_ARRAY_SIZE(sizes); i++) {
        int fd = open_cache_file(&e, "overflow", 4096);
        push_open_sizes(&e, 20 + i, 20 + i, sizes[i][0], sizes[i][1], payload, plen, fd);
        int64_t copen = 0;
        run_until_copen(&e, 20 + i, &copen);
        CHECK_EQ_INT(copen, -EINVAL);
        CHECK(!fd_is_open(fd));
    }
    CHECK_EQ_INT(e.d->stats.bad_messages, bad + CFN_ARRAY_SIZE(sizes));
    /* The right sizes for the same bytes open the object. */
    int fd = open_cache_file(&e, "right", PLAIN_SIZE);
    push_open_sizes(&e, 30, 30, 16, (uint32_t)(plen - 16), payload, plen, fd);
    int64_t copen = 0;
    run_until_copen(&e, 30, &copen);
    CHECK_EQ_INT(copen, PLAIN_SIZE);
    env_stop(&e);
    free(src);
}

/* A second OPEN of an object id that is live fails with EALREADY; the first object keeps working. */
static void test_duplicate_open(void)
{
    Env e;
    env_init(&e);
    uint8_t *src;
    int fd = env_start_plain(&e, &src);
    int64_t copen = 0;
    int fd2 = open_object(&e, 2, 7, "erofs,plain.img", "plain.img", "plain2", PLAIN_SIZE, &copen);
    CHECK_EQ_INT(copen, -EALREADY);
    CHECK(!fd_is_open(fd2));
    CHECK(fd_is_open(fd));

    fake_device_push_read(e.dev, 3, 7, 0, 4096);
    run_until_completed(&e, 3, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 3), 1);
    CHECK_EQ_INT(fake_device_completion_fd(e.dev, fake_device_n_completions(e.dev) - 1), fd);
    CHECK(range_equals(fd, src, 0, 4096));

    /* Two OPENs of one new id in one batch, resolving concurrently: exactly one wins, in either order. */
    int fd3 = open_cache_file(&e, "plain3", PLAIN_SIZE), fd4 = open_cache_file(&e, "plain4", PLAIN_SIZE);
    fake_device_push_open(e.dev, 4, 8, "erofs,plain.img", "plain.img", fd3);
    fake_device_push_open(e.dev, 5, 8, "erofs,plain.img", "plain.img", fd4);
    int64_t copen4 = 0, copen5 = 0;
    run_until_copen(&e, 4, &copen4);
    run_until_copen(&e, 5, &copen5);
    bool first_won = copen4 == PLAIN_SIZE;
    CHECK_EQ_INT(first_won ? copen5 : copen4, -EALREADY);
    CHECK_EQ_INT(first_won ? copen4 : copen5, PLAIN_SIZE);
    CHECK(fd_is_open(first_won ? fd3 : fd4) && !fd_is_open(first_won ? fd4 : fd3));
    env_stop(&e);
    free(src);
}

/*
 * READs of length 0 and past EOF: a zero-length READ (even at the end) is
 * completed at once without fetching; one reaching past the end is
 * completed as a failure (the kernel then returns EIO) and writes nothing.
 */
static void test_read_lengths_and_eof(void)
{
    Env e;
    env_init(&e);
    uint8_t *src;
    int fd = env_start_plain(&e, &src);
    uint64_t failures = e.d->stats.read_failures;
    CacheStats before = cache_service_stats(e.d->cache);

    fake_device_push_read(e.dev, 2, 7, 0, 0);
    fake_device_push_read(e.dev, 3, 7, PLAIN_SIZE, 0);
    fake_device_push_read(e.dev, 4, 7, PLAIN_SIZE, 4096);
    fake_device_push_read(e.dev, 5, 7, PLAIN_SIZE - 4096, 8192);
    fake_device_push_read(e.dev, 6, 7, 1ull << 62, 1ull << 62);
    fake_device_push_read(e.dev, 7, 7, UINT64_MAX, 0);
    run_until_completed(&e, 7, 1);
    run_for(&e, 50);
    for (uint32_t id = 2; id <= 7; id++)
        CHECK_EQ_INT(fake_device_completions(e.dev, id), 1);
    CacheStats after = cache_service_stats(e.d->cache);
    CHECK_EQ_INT(after.fetches - before.fetches, 0);
    CHECK_EQ_INT(e.d->stats.read_failures, failures + 4);       /* 4 to 7 */
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == PLAIN_SIZE);
    CHECK_EQ_INT(bytes_present(fd, 0, PLAIN_SIZE), 0);

    /* The last page still reads right. */
    fake_device_push_read(e.dev, 8, 7, PLAIN_SIZE - 4096, 4096);
    run_until_completed(&e, 8, 1);
    CHECK(range_equals(fd, src, PLAIN_SIZE - 4096, 4096));
    env_stop(&e);
    free(src);
}

/*
 * CLOSE while a READ's fetch is in flight, then the kernel reuses the object
 * id for a new OPEN: when the old fetch lands, no completion may reach the
 * new object (its fd, its msg ids); the new object's own READ is answered
 * once, through its own fd, with the right bytes.
 */
static void test_id_reused_after_close(void)
{
    Env e;
    env_init(&e);
    uint8_t *bsrc, *dsrc;
    StallBackend *sb = env_start_stalled(&e, "5s", &bsrc, &dsrc);
    int64_t copen = 0;
    int old_fd = open_object(&e, 1, 1, "erofs,boot.img", "blob1", "blob1-old", 64 * 4096, &copen);
    CHECK_EQ_INT(copen, 64 * 4096);
    fake_device_push_read(e.dev, 2, 1, 0, 4096);
    run_until_held(&e, sb, 1);
    CHECK_EQ_INT(sb->n_held, 1);

    fake_device_push_close(e.dev, 1);
    run_for(&e, 50);
    int new_fd = open_object(&e, 3, 1, "erofs,boot.img", "blob1", "blob1-new", 64 * 4096, &copen);
    CHECK_EQ_INT(copen, 64 * 4096);
    size_t completions = fake_device_n_completions(e.dev);

    /* The old fetch lands: nothing is completed, least of all through the new fd. */
    stall_release(sb, 0);
    for (int i = 0; i < 500 && fd_is_open(old_fd); i++)     /* closed once storage let it go */
        loop_run_once(e.d->loop, 10);
    run_for(&e, 100);
    CHECK(!fd_is_open(old_fd));
    CHECK_EQ_INT(fake_device_completions(e.dev, 2), 0);
    CHECK_EQ_INT(fake_device_n_completions(e.dev), completions);
    CHECK_EQ_INT(bytes_present(new_fd, 0, 64 * 4096), 0);      /* nor its bytes */

    /* The new object's READ: answered once, through the new fd, with the blob's bytes. */
    fake_device_push_read(e.dev, 4, 1, 0, 4096);
    run_until_held(&e, sb, 2);
    CHECK_EQ_INT(sb->n_held, 2);
    stall_release(sb, 1);
    run_until_completed(&e, 4, 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 4), 1);
    CHECK_EQ_INT(fake_device_completions(e.dev, 2), 0);
    CHECK_EQ_INT(fake_device_n_completions(e.dev), completions + 1);
    CHECK_EQ_INT(fake_device_completion_fd(e.dev, completions), new_fd);
    CHECK(range_equals(new_fd, dsrc, 0, 4096));
    env_stop(&e);
    free(bsrc);
    free(dsrc);
}

int main(void)
{
    cfn_log_set_level(getenv("CFN_TEST_DEBUG") ? CFN_LOG_DEBUG : CFN_LOG_INFO);
    RUN(test_plain_image);
    RUN(test_plain_image_cut_mid_block);
    RUN(test_bootstrap_and_blob);
    RUN(test_huge_device_slot);
    RUN(test_malformed_messages);
    RUN(test_deadline);
    RUN(test_hostile_keys);
    RUN(test_key_sizes_overflow);
    RUN(test_duplicate_open);
    RUN(test_read_lengths_and_eof);
    RUN(test_id_reused_after_close);
    RUN(test_nydus_fixture);
    RUN(test_nydus_fixture_corrupt_chunk);
    RUN(test_takeover_restores);
    RUN(test_readahead_sequential);
    RUN(test_readahead_off);
    RUN(test_prefetch);
    RUN(test_prefetch_stops_on_failures);
    RUN(test_prefetch_gives_up_after_failures);
    RUN(test_bad_config_is_reported);
    RUN(test_bad_image_does_not_stop_the_others);
    RUN(test_fifo_blob);
    return TEST_EXIT();
}
