/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>

#include "cachefilesd-nydus/config.h"
#include "test.h"

static Config *parse(const char *text, char *err, size_t err_len)
{
    Config *cfg = NULL;
    if (config_parse(&cfg, "/etc/cfn/t.yaml", text, strlen(text), err, err_len) < 0)
        return NULL;
    return cfg;
}

static void test_minimal_and_defaults(void)
{
    char err[512];
    Config *cfg = parse("cache_dir: /var/cache/cfn\nimages:\n  - fsid: img\n    bootstrap: boot.img\n", err, sizeof(err));
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    CHECK(strcmp(cfg->cache_dir, "/var/cache/cfn") == 0);
    CHECK_EQ_INT(cfg->n_images, 1);
    CHECK(strcmp(cfg->images[0].bootstrap, "/etc/cfn/boot.img") == 0);   /* relative to the config */
    CHECK(strcmp(cfg->images[0].backend.dir, "/etc/cfn") == 0);
    CHECK_EQ_INT(cfg->read_window, 1 << 20);
    CHECK_EQ_INT(cfg->readahead, 8 << 20);
    CHECK(cfg->threads >= 1);
    CHECK(cfg->verify);
    CHECK(!cfg->images[0].prefetch);
    config_free(cfg);
}

static void test_full(void)
{
    char err[512];
    Config *cfg = parse("cache_dir: /c\ntag: t1\nthreads: 3\nread_window: 2MiB\nrequest_timeout: 1500ms\n"
                        "merge_limit: 8m\nmax_inflight: 1G\nverify: false\nraw_chunk_size: 64k\nreadahead: 32MiB\n"
                        "images:\n  - fsid: a\n    domain_id: d\n    bootstrap: /b/a\n    prefill_bootstrap: true\n    prefetch: yes\n"
                        "    backend: {type: localfs, dir: /blobs}\n", err, sizeof(err));
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ_INT(cfg->threads, 3);
    CHECK_EQ_INT(cfg->read_window, 2 << 20);
    CHECK_EQ_INT(cfg->request_timeout_ms, 1500);
    CHECK_EQ_INT(cfg->merge_limit, 8 << 20);
    CHECK_EQ_INT(cfg->max_inflight_bytes, 1ull << 30);
    CHECK_EQ_INT(cfg->raw_chunk_size, 65536);
    CHECK_EQ_INT(cfg->readahead, 32 << 20);
    CHECK(!cfg->verify);
    CHECK(strcmp(cfg->images[0].domain_id, "d") == 0);
    CHECK_EQ_INT(cfg->images[0].prefill_bootstrap, 1);
    CHECK(cfg->images[0].prefetch);
    CHECK(strcmp(cfg->images[0].backend.dir, "/blobs") == 0);
    config_free(cfg);
}

static void expect_error(const char *text, const char *where, const char *what)
{
    char err[512] = "";
    Config *cfg = parse(text, err, sizeof(err));
    CHECK(cfg == NULL);
    config_free(cfg);
    if (!strstr(err, where) || !strstr(err, what)) {
        fprintf(stderr, "unexpected error text: %s (wanted %s ... %s)\n", err, where, what);
        CHECK(!"error text");
    }
}

static void test_errors(void)
{
    expect_error("", "t.yaml", "empty");
    expect_error("[1, 2]", "t.yaml:1:1", "mapping");
    expect_error("cache_dir: /c\nbogus: 1\n", "t.yaml:2:8", "unknown key");
    expect_error("images: []\n", "cache_dir", "missing");
    expect_error("cache_dir: /c\nthreads: 0\n", "t.yaml:2:10", "out of range");
    expect_error("cache_dir: /c\nthreads: -1\n", "t.yaml:2:10", "number");
    expect_error("cache_dir: /c\nread_window: 1000\n", "read_window", "4KiB");
    expect_error("cache_dir: /c\nreadahead: 5000\n", "readahead", "4KiB");
    expect_error("cache_dir: /c\nreadahead: 1G\n", "readahead", "");
    expect_error("cache_dir: /c\nread_window: 99999999999999999999999\n", "read_window", "size");
    expect_error("cache_dir: /c\nrequest_timeout: soon\n", "request_timeout", "duration");
    expect_error("cache_dir: /c\nimages:\n  - fsid: ../x\n    bootstrap: /b\n", "t.yaml:3:11", "images[0].fsid");
    expect_error("cache_dir: /c\nimages:\n  - bootstrap: /b\n", "images[0]", "missing 'fsid'");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n    prefetch: maybe\n", "images[0].prefetch", "");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n    backend: {type: ftp}\n",
                 "images[0].backend", "unsupported backend type");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n  - fsid: a\n    bootstrap: /c\n",
                 "images[1].fsid", "twice");
    expect_error("cache_dir: /c\n  bad: indent\n", "t.yaml:2", "YAML error");
    expect_error("cache_dir: [1]\n", "cache_dir", "string");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap_blob: abc\n    bootstrap: /b\n"
                 "    backend: {type: localfs, dir: /d}\n", "images[0]", "not both");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap_blob: abc\n", "images[0]", "needs a 'backend'");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap_blob: "
                 "0123456789012345678901234567890123456789012345678901234567890123456789\n",
                 "images[0].bootstrap_blob", "not a blob id");
}

/*
 * "Billion laughs": nine levels of nine aliases each, 677 bytes that expand
 * into 9^9 scalars. Refused at the first anchor, at once and without memory.
 */
static void test_alias_bomb(void)
{
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof(text), "cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n"
                                "    backend:\n      type: localfs\n      dir: /d\n      l0: &l0 [x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i <= 8; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "      l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
                              i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    long rss0 = test_peak_rss_kib();
    uint64_t t0 = test_now_ms();
    expect_error(text, "t.yaml:8:11", "anchor 'l0': anchors and aliases are not supported");
    uint64_t ms = test_now_ms() - t0;
    long grew = test_peak_rss_kib() - rss0;
    fprintf(stderr, "alias bomb (%zu bytes): refused in %" PRIu64 " ms, peak RSS +%ld KiB\n", n, ms, grew);
    CHECK(ms < 1000);
    CHECK(grew < 16 * 1024);
    /* An alias without its anchor is named too. */
    expect_error("cache_dir: /c\nwork_dir: *w\n", "t.yaml:2:11", "alias 'w'");
}

static void test_max_blob_size(void)
{
    char err[512];
    Config *cfg = parse("cache_dir: /c\nmax_blob_size: 64GiB\n", err, sizeof(err));
    CHECK(cfg && cfg->max_blob_size == 64ull << 30);
    config_free(cfg);
    cfg = parse("cache_dir: /c\n", err, sizeof(err));
    CHECK(cfg && cfg->max_blob_size == CONFIG_DEFAULT_MAX_BLOB_SIZE);
    config_free(cfg);
    expect_error("cache_dir: /c\nmax_blob_size: 32768GiB\n", "max_blob_size", "out of range");
}

/* A key given twice in one mapping is refused (it used to override silently, or leak the first list). */
static void test_duplicate_keys(void)
{
    expect_error("cache_dir: /c\ncache_dir: /d\n", "t.yaml:2:12: cache_dir", "duplicate key");
    expect_error("cache_dir: /c\nimages: []\nimages: []\n", "t.yaml:3:9: images", "duplicate key");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n    fsid: b\n",
                 "images[0].fsid", "duplicate key");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n    blobs: [x]\n    blobs: [y]\n",
                 "images[0].blobs", "duplicate key");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n"
                 "    backend: {type: localfs, dir: /d}\n    backend: {type: localfs, dir: /e}\n",
                 "images[0].backend", "duplicate key");
    expect_error("cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n"
                 "    backend: {type: registry, host: a.example, repo: r, host: b.example}\n",
                 "t.yaml:5:57: images[0].backend.host", "duplicate key");
}

static void test_units(void)
{
    uint64_t v;
    CHECK(config_parse_size("4096", &v) == 0 && v == 4096);
    CHECK(config_parse_size("1MiB", &v) == 0 && v == 1 << 20);
    CHECK(config_parse_size("2g", &v) == 0 && v == 2ull << 30);
    CHECK_EQ_INT(config_parse_size("1.5M", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_size("-1", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_size("99999999999G", &v), -ERANGE);
    CHECK(config_parse_duration_ms("30s", &v) == 0 && v == 30000);
    CHECK(config_parse_duration_ms("250ms", &v) == 0 && v == 250);
    CHECK(config_parse_duration_ms("2m", &v) == 0 && v == 120000);
    CHECK(config_parse_duration_ms("10", &v) == 0 && v == 10000);
    CHECK(config_name_is_valid("sha256-abc_1.2"));
    CHECK(!config_name_is_valid(".."));
    CHECK(!config_name_is_valid("a b"));
}

int main(void)
{
    RUN(test_minimal_and_defaults);
    RUN(test_full);
    RUN(test_errors);
    RUN(test_duplicate_keys);
    RUN(test_units);
    RUN(test_alias_bomb);
    RUN(test_max_blob_size);
    return TEST_EXIT();
}
