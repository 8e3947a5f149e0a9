/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Helpers shared by the RAFS reader tests: fixture loading, hex, byte pokes. */
#pragma once

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/test.h"

#define FIXTURE_BOOT "rafs-v6-2.2.boot"
#define FIXTURE_BLOB_ID "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef"

/* Substring check that prints the message on failure. */
#define CHECK_WHY(why, sub)                                                              \
    do {                                                                                 \
        if (!strstr((why), (sub))) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" does not contain \"%s\"\n",     \
                    __FILE__, __LINE__, (why), (sub));                                   \
            test_failures++;                                                             \
        }                                                                                \
    } while (0)

/* The nydus-image fixture in the repo (meson sets CFN_FIXTURE_DIR; by hand, run from the source root). */
static inline const char *tu_fixture_dir(void)
{
    const char *d = getenv("CFN_FIXTURE_DIR");
    return d && *d ? d : "tests/fixtures/nydus-v6-2.2";
}

static inline uint8_t *tu_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *buf = NULL;
    if (fd < 0 || fstat(fd, &st) < 0)
        goto out;
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf)
        goto out;
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
        if (n <= 0) {
            free(buf);
            buf = NULL;
            goto out;
        }
        done += (size_t)n;
    }
    *len = done;
out:
    if (fd >= 0)
        close(fd);
    if (!buf)
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
    return buf;
}

/* A fixture file, or exit(1): nothing else can be tested without it. */
static inline uint8_t *tu_fixture(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", tu_fixture_dir(), name);
    uint8_t *b = tu_read_file(path, len);
    if (!b)
        exit(1);
    return b;
}

static inline uint8_t *tu_dup(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (!d)
        abort();
    memcpy(d, p, n);
    return d;
}

static inline bool tu_hex_eq(const uint8_t *d, size_t n, const char *hex)
{
    char buf[3];
    if (strlen(hex) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf), "%02x", d[i]);
        if (memcmp(buf, hex + 2 * i, 2))
            return false;
    }
    return true;
}

static inline uint16_t tu_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static inline uint32_t tu_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t tu_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static inline void tu_put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static inline void tu_put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void tu_put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

/* A fresh empty directory under TMPDIR for cache files. */
static inline char *tu_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    char *p;
    if (asprintf(&p, "%s/cfn-rafs-XXXXXX", t && *t ? t : "/tmp") < 0 || !mkdtemp(p))
        abort();
    return p;
}
