/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Helpers for the backend tests that run against loopback servers started by
 * run.py: environment, blob files, driving the loop until requests finish,
 * server counters and flag files, and the log-secrets check.
 */
#pragma once

/* Not every scenario uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include <curl/curl.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/backend/backend.h"
#include "storage/backend/http/backend_config.h"
#include "storage/backend/http/engine.h"
#include "storage/util/log.h"
#include "storage/util/loop.h"
#include "tests/unit/test.h"

static const char *env_req(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "missing %s (run through tests/backend/run.py)\n", name);
        exit(2);
    }
    return v;
}

/* i-th digest of CFN_T_DIGESTS */
static const char *digest(unsigned i)
{
    static char buf[16][65];
    const char *all = env_req("CFN_T_DIGESTS");
    for (unsigned k = 0; k < i; k++) {
        all = strchr(all, ',');
        if (!all) {
            fprintf(stderr, "no digest #%u\n", i);
            exit(2);
        }
        all++;
    }
    snprintf(buf[i % 16], sizeof(buf[0]), "%.64s", all);
    return buf[i % 16];
}

typedef struct Blob {
    uint8_t *data;
    size_t size;
} Blob;

static Blob blob_load(const char *dig)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", env_req("CFN_T_BLOBS"), dig);
    Blob b = { 0 };
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    b.size = (size_t)st.st_size;
    b.data = malloc(b.size ? b.size : 1);
    size_t got = 0;
    while (got < b.size) {
        ssize_t n = read(fd, b.data + got, b.size - got);
        if (n <= 0)
            exit(2);
        got += (size_t)n;
    }
    close(fd);
    return b;
}

/* ---- log capture ---- */

static char log_path[512];

static void log_capture_start(void)
{
    snprintf(log_path, sizeof(log_path), "%s/daemon.log", env_req("CFN_T_TMP"));
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        exit(2);
    cfn_log_set_fd(fd);
    cfn_log_set_level(CFN_LOG_DEBUG);
}

static char *file_read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* No configured secret may appear in the daemon's log. */
static void log_check_secrets(const char *const *secrets)
{
    size_t len;
    char *log = file_read_all(log_path, &len);
    CHECK(log != NULL);
    if (!log)
        return;
    CHECK(len > 0);     /* debug logging was on: the check is not vacuous */
    for (const char *const *s = secrets; *s; s++) {
        if (!**s)
            continue;
        if (memmem(log, len, *s, strlen(*s))) {
            fprintf(stderr, "log contains a secret (%zu chars starting '%.3s')\n", strlen(*s), *s);
            test_failures++;
        }
    }
    CHECK(memmem(log, len, "Authorization", 13) == NULL);
    free(log);
}

/* ---- server state ---- */

static long server_stat(const char *server, const char *key)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.stats", env_req("CFN_T_STATE"), server);
    char *txt = file_read_all(path, NULL);
    long v = 0;
    if (!txt)
        return -1;
    size_t kl = strlen(key);
    for (char *line = txt; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(txt);
    return v;
}

/* Requests `server` received whose Authorization header contains `needle`
 * (NULL: any Authorization at all), from <state>/<server>.requests. */
static long server_auth_count(const char *server, const char *needle)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.requests", env_req("CFN_T_STATE"), server);
    char *txt = file_read_all(path, NULL);
    long n = 0;
    if (!txt)
        return 0;       /* no request at all */
    for (char *save = NULL, *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *auth = strchr(line, '\t');
        if (!auth || strcmp(auth + 1, "-") == 0)
            continue;
        n += !needle || strstr(auth + 1, needle) != NULL;
    }
    free(txt);
    return n;
}

/* A flag file holding text (a server reads it per request); NULL removes it. */
static void server_flag_text(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", env_req("CFN_T_STATE"), name);
    if (!text) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void server_flag(const char *name, bool on)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", env_req("CFN_T_STATE"), name);
    if (on) {
        int fd = open(path, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0)
            close(fd);
    } else {
        unlink(path);
    }
}

/* ---- driving requests ---- */

typedef struct TReq {
    BackendRequest r;
    int res;
    bool finished;
    uint64_t t_done_ns;
} TReq;

static void treq_done(BackendRequest *r, int res)
{
    TReq *t = cfn_container_of(r, TReq, r);
    if (t->finished) {
        fprintf(stderr, "done() called twice\n");
        test_failures++;
    }
    t->finished = true;
    t->res = res;
    t->t_done_ns = loop_now_ns();
}

static void treq_init_read(TReq *t, const char *blob, uint64_t off, uint32_t len)
{
    memset(t, 0, sizeof(*t));
    t->r.kind = BACKEND_READ;
    t->r.blob_id = blob;
    t->r.off = off;
    t->r.len = len;
    t->r.buf = malloc(len ? len : 1);
    memset(t->r.buf, 0xa5, len ? len : 1);
    t->r.done = treq_done;
    t->res = 1;
}

static void treq_init_size(TReq *t, const char *blob)
{
    memset(t, 0, sizeof(*t));
    t->r.kind = BACKEND_SIZE;
    t->r.blob_id = blob;
    t->r.done = treq_done;
    t->res = 1;
}

static void treq_fini(TReq *t)
{
    free(t->r.buf);
    t->r.buf = NULL;
}

/* Run the loop until every request finished or timeout_ms passed. */
static bool loop_until(Loop *loop, TReq *const *reqs, size_t n, int timeout_ms)
{
    uint64_t end = loop_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += !reqs[i]->finished;
        if (!left)
            return true;
        if (loop_now_ns() >= end)
            return false;
        loop_run_once(loop, 50);
    }
}

static void loop_spin(Loop *loop, int ms)
{
    uint64_t end = loop_now_ns() + (uint64_t)ms * 1000000ull;
    while (loop_now_ns() < end)
        loop_run_once(loop, 10);
}

/* Submit one request and wait for it; returns done()'s result. */
static int run_one(Loop *loop, Backend *b, TReq *t, int timeout_ms)
{
    int r = backend_submit(b, &t->r);
    if (r < 0)
        return r;
    TReq *one[] = { t };
    if (!loop_until(loop, one, 1, timeout_ms)) {
        fprintf(stderr, "request timed out in the test\n");
        test_failures++;
        return -ETIME;
    }
    return t->res;
}

/* Read [off, off+len) and compare with the blob file; returns done()'s result. */
static int read_check(Loop *loop, Backend *b, const char *dig, uint64_t off, uint32_t len)
{
    TReq t;
    treq_init_read(&t, dig, off, len);
    int r = run_one(loop, b, &t, 60000);
    if (r == (int)len) {
        Blob bl = blob_load(dig);
        if (off + len > bl.size || memcmp(bl.data + off, t.r.buf, len) != 0) {
            fprintf(stderr, "data mismatch reading %s [%" PRIu64 ", +%u)\n", dig, off, len);
            test_failures++;
        }
        free(bl.data);
    }
    treq_fini(&t);
    return r;
}

static int size_of(Loop *loop, Backend *b, const char *dig, uint64_t *size)
{
    TReq t;
    treq_init_size(&t, dig);
    int r = run_one(loop, b, &t, 60000);
    *size = t.r.size;
    return r;
}

/* Free a backend and let the loop reap the engine's sockets. */
static void backend_drop(Loop *loop, Backend *b)
{
    backend_free(b);
    loop_spin(loop, 100);
}
