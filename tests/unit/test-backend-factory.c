/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <errno.h>

#include "cachefilesd-nydus/backend_factory.h"
#include "cachefilesd-nydus/config.h"
#include "test.h"

static int build(const char *backend_yaml, char *err, size_t err_len)
{
    char text[2048];
    snprintf(text, sizeof(text), "cache_dir: /c\nimages:\n  - fsid: a\n    bootstrap: /b\n    backend:\n%s",
             backend_yaml);
    Config *cfg = NULL;
    int r = config_parse(&cfg, "t.yaml", text, strlen(text), err, err_len);
    if (r < 0)
        return r;
    Loop *loop;
    CHECK_EQ_INT(loop_new(&loop, 8), 0);
    Backend *b = NULL;
    r = backend_factory_new(&b, loop, &cfg->images[0].backend, err, err_len);
    backend_free(b);
    /* Let backends reap what they queued on the ring before it goes. */
    for (int i = 0; i < 3; i++)
        loop_run_once(loop, 1);
    loop_free(loop);
    config_free(cfg);
    return r;
}

static void expect(const char *yaml, int want, const char *text)
{
    char err[512] = "";
    int r = build(yaml, err, sizeof(err));
    if (r != want || (text && !strstr(err, text))) {
        fprintf(stderr, "got %d '%s', wanted %d '%s'\n", r, err, want, text ? text : "");
        CHECK(!"backend factory result");
    }
}

static void test_remote_backends(void)
{
    expect("      type: registry\n      host: 127.0.0.1:5000\n      repo: library/app\n      scheme: http\n"
           "      timeout: 10\n      retry_limit: 2\n      proxy:\n        url: http://127.0.0.1:65001\n"
           "        fallback: true\n      mirrors:\n        - host: http://127.0.0.1:5001\n"
           "          headers: [\"X-Test: 1\"]\n", 0, NULL);
    expect("      type: s3\n      endpoint: 127.0.0.1:9000\n      region: us-east-1\n      bucket_name: b\n"
           "      object_prefix: blobs/\n      scheme: http\n", 0, NULL);
    expect("      type: oss\n      endpoint: oss.example\n      bucket_name: b\n", 0, NULL);
    expect("      type: http-proxy\n      addr: /run/dfdaemon.sock\n      path: /blobs\n", 0, NULL);

    expect("      type: registry\n      host: h\n", -EINVAL, "needs 'host' and 'repo'");
    expect("      type: registry\n      host: h\n      repo: r\n      hots: x\n", -EINVAL, "t.yaml:9:13: images[0].backend.hots: unknown key");
    expect("      type: registry\n      host: h\n      repo: r\n      timeout: soon\n", -EINVAL, "timeout: expected a whole number");
    expect("      type: registry\n      host: h\n      repo: r\n      proxy: {url: x, bogus: 1}\n", -EINVAL, "bogus: unknown key");
    expect("      type: registry\n      host: h\n      repo: r\n      mirrors: [{ping_url: x}]\n", -EINVAL, "needs 'host'");
    expect("      type: s3\n      region: r\n", -EINVAL, "needs 'bucket_name'");
    expect("      type: ftp\n", -EINVAL, "unsupported backend type 'ftp'");
    expect("      type: localfs\n      dir: /tmp\n      host: x\n", -EINVAL, "unknown key for a localfs backend");
}

int main(void)
{
    RUN(test_remote_backends);
    return TEST_EXIT();
}
