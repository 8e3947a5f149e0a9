/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Files holding credentials must be private, as ssh insists for keys: a
 * config file (auth, registry_token, S3 keys, credential headers, passwords
 * in URLs) or a docker config.json that other users can read gets a warning
 * naming the file, its mode and the key; a private one, or one without
 * secrets, gets none. The warning never contains the secret itself. Also:
 * nydusd's mapping form of `headers`.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachefilesd-nydus/backend_factory.h"
#include "cachefilesd-nydus/config.h"
#include "storage/backend/http/backend_config.h"
#include "storage/util/log.h"
#include "tests/unit/test.h"

#define SECRET_B64 "Y2ZudXNlcjpzM2NyZXQtdmFsdWU="     /* cfnuser:s3cret-value */
#define SECRET     "s3cret-value"

static char dir[64];
static char log_file[128];
static int log_fd = -1;

/* Everything logged since the last call. */
static char *log_take(void)
{
    static off_t seen;
    off_t end = lseek(log_fd, 0, SEEK_END);
    size_t n = (size_t)(end - seen);
    char *buf = calloc(1, n + 1);
    CHECK(pread(log_fd, buf, n, seen) == (ssize_t)n);
    seen = end;
    return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    CHECK(chmod(path, mode) == 0);
}

/* Load a config made of `backend` at `mode`; check for the warning naming `key`. */
static void expect_warning(const char *backend, mode_t mode, const char *key)
{
    char path[128], text[2048];
    snprintf(path, sizeof(path), "%s/cfn.yaml", dir);
    snprintf(text, sizeof(text), "cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n    backend:\n%s", backend);
    write_file(path, text, mode);
    Config *cfg = NULL;
    char err[512];
    int r = config_load(&cfg, path, err, sizeof(err));
    CHECK_EQ_INT(r, 0);
    if (r < 0)
        fprintf(stderr, "%s\n", err);
    config_free(cfg);
    char *log = log_take();
    char want_mode[16], want_key[128];
    snprintf(want_mode, sizeof(want_mode), "mode %04o", (unsigned)mode);
    snprintf(want_key, sizeof(want_key), "(images[0].backend.%s)", key ? key : "");
    bool warned = strstr(log, "lets other users read it") != NULL;
    if (warned != (key != NULL) || (key && (!strstr(log, path) || !strstr(log, want_mode) || !strstr(log, want_key)))) {
        fprintf(stderr, "mode %04o, key %s: log was '%s'\n", (unsigned)mode, key ? key : "(none)", log);
        test_failures++;
    }
    CHECK(!strstr(log, SECRET) && !strstr(log, SECRET_B64));
    free(log);
}

static const char registry[] = "      type: registry\n      host: 127.0.0.1:5000\n      repo: library/app\n";

static void test_config_mode(void)
{
    char b[1024];
    snprintf(b, sizeof(b), "%s      auth: %s\n", registry, SECRET_B64);
    expect_warning(b, 0644, "auth");
    expect_warning(b, 0640, "auth");            /* group-readable */
    expect_warning(b, 0604, "auth");
    expect_warning(b, 0600, NULL);
    expect_warning(b, 0400, NULL);
    expect_warning(registry, 0644, NULL);       /* nothing secret in it */
    snprintf(b, sizeof(b), "%s      registry_token: %s\n", registry, SECRET);
    expect_warning(b, 0644, "registry_token");
    snprintf(b, sizeof(b), "%s      mirrors:\n        - host: http://m:5000\n          headers: {Authorization: Basic %s}\n",
             registry, SECRET_B64);
    expect_warning(b, 0644, "mirrors[0].headers");
    snprintf(b, sizeof(b), "%s      mirrors:\n        - host: http://m:5000\n          headers: [\"X-Id: 1\"]\n"
             "        - host: http://u:%s@m:5001\n", registry, SECRET);
    expect_warning(b, 0644, "mirrors[1].host");
    snprintf(b, sizeof(b), "%s      proxy: {url: \"http://u:%s@p:65001\"}\n", registry, SECRET);
    expect_warning(b, 0644, "proxy.url");
    snprintf(b, sizeof(b), "%s      headers: [\"authorization: Bearer %s\"]\n", registry, SECRET);
    expect_warning(b, 0644, "headers");
    snprintf(b, sizeof(b), "      type: s3\n      bucket_name: b\n      region: r\n      access_key_id: AKIA\n"
             "      access_key_secret: %s\n", SECRET);
    expect_warning(b, 0644, "access_key_secret");
    snprintf(b, sizeof(b), "      type: s3\n      bucket_name: b\n      session_token: %s\n", SECRET);
    expect_warning(b, 0644, "session_token");
}

/* What creating a registry backend for 127.0.0.1:5000 with DOCKER_CONFIG logs (the caller frees it). */
static char *registry_log_with_docker_config(Loop *loop, const char *docker_config)
{
    RegistryConfig c;
    registry_config_init(&c);
    c.host = "127.0.0.1:5000";
    c.repo = "library/app";
    c.docker_config = docker_config;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), 0);
    backend_free(b);
    return log_take();
}

static void test_docker_config_mode(void)
{
    char path[128], json[512];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    snprintf(json, sizeof(json), "{\"auths\": {\"127.0.0.1:5000\": {\"auth\": \"%s\"}}}", SECRET_B64);
    Loop *loop;
    CHECK_EQ_INT(loop_new(&loop, 8), 0);
    static const mode_t modes[] = { 0644, 0640, 0600 };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(modes); i++) {
        write_file(path, json, modes[i]);
        char *log = registry_log_with_docker_config(loop, path);
        char want[64];
        snprintf(want, sizeof(want), "mode %04o", (unsigned)modes[i]);
        bool warned = strstr(log, "lets other users read it") && strstr(log, path) && strstr(log, want);
        CHECK_EQ_INT(warned, modes[i] != 0600);
        CHECK(!strstr(log, SECRET_B64));
        free(log);
    }
    /* A docker config without an entry for this host holds nothing of its: no warning. */
    write_file(path, "{\"auths\": {\"other:5000\": {\"auth\": \"eDp5\"}}}", 0644);
    char *log = registry_log_with_docker_config(loop, path);
    CHECK(!strstr(log, "lets other users read it"));
    free(log);
    for (int i = 0; i < 3; i++)
        loop_run_once(loop, 1);
    loop_free(loop);
}

/* nydusd's mirrors carry `headers` as a mapping; the list form works as well. */
static void test_headers_mapping(void)
{
    static const char *const forms[] = {
        "          headers: {Authorization: \"Basic eDp5\", X-Extra: \"1\"}\n",
        "          headers: [\"Authorization: Basic eDp5\"]\n",
    };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(forms); i++) {
        char text[1024], err[512] = "";
        snprintf(text, sizeof(text), "cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n    backend:\n%s"
                 "      mirrors:\n        - host: http://127.0.0.1:5001\n%s", registry, forms[i]);
        Config *cfg = NULL;
        CHECK_EQ_INT(config_parse(&cfg, "t.yaml", text, strlen(text), err, sizeof(err)), 0);
        Loop *loop;
        CHECK_EQ_INT(loop_new(&loop, 8), 0);
        Backend *b = NULL;
        int r = backend_factory_new(&b, loop, &cfg->images[0].backend, err, sizeof(err));
        CHECK_EQ_INT(r, 0);
        if (r < 0)
            fprintf(stderr, "%s\n", err);
        backend_free(b);
        for (int k = 0; k < 3; k++)
            loop_run_once(loop, 1);
        loop_free(loop);
        config_free(cfg);
    }
    char text[1024], err[512] = "";
    snprintf(text, sizeof(text), "cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n    backend:\n%s"
             "      mirrors:\n        - host: http://127.0.0.1:5001\n          headers: {X-A: [1, 2]}\n", registry);
    Config *cfg = NULL;
    CHECK_EQ_INT(config_parse(&cfg, "t.yaml", text, strlen(text), err, sizeof(err)), 0);
    Loop *loop;
    CHECK_EQ_INT(loop_new(&loop, 8), 0);
    Backend *b = NULL;
    CHECK_EQ_INT(backend_factory_new(&b, loop, &cfg->images[0].backend, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "headers: expected a header value") != NULL);
    loop_free(loop);
    config_free(cfg);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cfn-creds-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    snprintf(log_file, sizeof(log_file), "%s/log", dir);
    log_fd = open(log_file, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return 2;
    cfn_log_set_fd(log_fd);
    cfn_log_set_level(CFN_LOG_DEBUG);
    RUN(test_config_mode);
    RUN(test_docker_config_mode);
    RUN(test_headers_mapping);
    cfn_log_set_fd(2);
    close(log_fd);
    static const char *const files[] = { "cfn.yaml", "config.json", "log" };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(files); i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0);
    return TEST_EXIT();
}
