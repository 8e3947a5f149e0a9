/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "common.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfn-build-info.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

#define HCOMMON_PEM_MAX (8u * 1024 * 1024)

void http_common_config_init(HttpCommonConfig *c)
{
    /* The engine's defaults, in the config's units: one source for both. */
    HttpTransport tp;
    HttpEngineLimits lim;
    http_transport_default(&tp);
    http_engine_limits_default(&lim);
    memset(c, 0, sizeof(*c));
    c->timeout_s = tp.timeout_ms / 1000;
    c->connect_timeout_s = tp.connect_timeout_ms / 1000;
    c->retry_limit = tp.retry_limit;
    c->retry_base_ms = tp.retry_base_ms;
    c->retry_max_ms = tp.retry_max_ms;
    c->low_speed_limit = tp.low_speed_limit;
    c->low_speed_time_s = tp.low_speed_time_s;
    c->proxy.fallback = true;
    c->proxy.check_interval_s = 5;
    c->proxy.check_pause_elapsed_s = 300;
    c->max_requests = lim.max_requests;
    c->max_requests_per_host = lim.max_requests_per_host;
    c->max_requests_per_blob = lim.max_requests_per_group;
}

void mirror_config_init(MirrorConfig *c)
{
    memset(c, 0, sizeof(*c));
    c->failure_limit = 5;
    c->health_check_interval_s = 5;
    c->health_check_pause_elapsed_s = 300;
}

void registry_config_init(RegistryConfig *c)
{
    memset(c, 0, sizeof(*c));
    http_common_config_init(&c->http);
    c->scheme = "https";
    c->redirect_cache_max = 1024;
}

void s3_config_init(S3Config *c)
{
    memset(c, 0, sizeof(*c));
    http_common_config_init(&c->http);
    c->scheme = "https";
    c->endpoint = "s3.amazonaws.com";
    c->path_style = true;
}

void oss_config_init(OssConfig *c)
{
    memset(c, 0, sizeof(*c));
    http_common_config_init(&c->http);
    c->scheme = "https";
}

void http_proxy_backend_config_init(HttpProxyBackendConfig *c)
{
    memset(c, 0, sizeof(*c));
    http_common_config_init(&c->http);
}

bool hcommon_header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return false;
    for (const char *p = h; p < colon; p++)
        if (!isgraph((unsigned char)*p))
            return false;
    for (const char *p = colon; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

bool hcommon_header_is_credential(const char *h)
{
    size_t n = strcspn(h, ":");
    return (n == 13 && strncasecmp(h, "Authorization", 13) == 0) ||
           (n == 19 && strncasecmp(h, "Proxy-Authorization", 19) == 0);
}

int hcommon_request_result(BackendRequest *req, uint64_t content_length, int res)
{
    if (res < 0)
        return res;
    if (req->kind == BACKEND_SIZE) {
        if (content_length == UINT64_MAX)
            return -EPROTO;
        req->size = content_length;
        return 0;
    }
    req->done_bytes = req->len;
    return (int)req->len;
}

bool hcommon_host_name_ok(const char *s, const char *extra)
{
    if (!s || !*s)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr(extra, *c)))
            return false;
    return true;
}

bool hcommon_blob_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '.' && id[i] != '_' && id[i] != '-')
            return false;
    return true;
}

bool hcommon_blob_digest_ok(const char *id)
{
    if (strlen(id) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

bool hcommon_url_userinfo_ok(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    p += strcspn(p, "/?#");
    return strchr(p, '@') == NULL;
}

bool hcommon_url_has_userinfo(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    return memchr(p, '@', strcspn(p, "/?#")) != NULL;
}

int hcommon_strdup_trim(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (!n)
        return 0;
    *out = strndup(s, n);
    return *out ? 0 : -ENOMEM;
}

void hcommon_secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* Append a PEM file to the bundle (bounded). */
static int pem_append(HttpCommon *c, const char *path, bool optional)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int r = -errno;
        if (optional)
            return 0;
        log_debug("http: cannot open CA file %s: %s", path, strerror(-r));
        return r;
    }
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
    if (r == 0 && (uint64_t)st.st_size + c->ca_len + 2 > HCOMMON_PEM_MAX)
        r = -EFBIG;
    char *n = NULL;
    if (r == 0 && !(n = realloc(c->ca_blob, c->ca_len + (size_t)st.st_size + 2)))
        r = -ENOMEM;
    if (r == 0) {
        c->ca_blob = n;
        size_t want = (size_t)st.st_size, got = 0;
        while (got < want) {
            ssize_t k = read(fd, c->ca_blob + c->ca_len + got, want - got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                r = k < 0 ? -errno : -EIO;
                break;
            }
            got += (size_t)k;
        }
        if (r == 0) {
            c->ca_len += got;
            c->ca_blob[c->ca_len++] = '\n';
        }
    }
    close(fd);
    if (r < 0 && !optional)
        log_debug("http: cannot read CA file %s: %s", path, strerror(-r));
    return optional ? 0 : r;
}

int hcommon_init(HttpCommon *c, Loop *loop, const HttpCommonConfig *cfg)
{
    memset(c, 0, sizeof(*c));
    int r;
    if (cfg->engine) {
        if (http_engine_loop(cfg->engine) != loop)
            return -EINVAL;
        c->eng = http_engine_ref(cfg->engine);
    } else {
        HttpEngineLimits lim = {
            .max_requests = cfg->max_requests,
            .max_requests_per_host = cfg->max_requests_per_host,
            .max_requests_per_group = cfg->max_requests_per_blob,
        };
        r = http_engine_new(&c->eng, loop, &lim);
        if (r < 0)
            return r;
    }
    HttpTransport *tp = &c->tp;
    http_transport_default(tp);
    tp->timeout_ms = CFN_MIN(cfg->timeout_s, 86400u) * 1000;
    tp->connect_timeout_ms = CFN_MIN(cfg->connect_timeout_s, 86400u) * 1000;
    tp->retry_limit = cfg->retry_limit;
    tp->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : 200;
    tp->retry_max_ms = cfg->retry_max_ms ? cfg->retry_max_ms : 5000;
    tp->low_speed_limit = cfg->low_speed_limit;
    tp->low_speed_time_s = cfg->low_speed_time_s;
    tp->skip_verify = cfg->skip_verify;

    if (cfg->user_agent && *cfg->user_agent)
        c->user_agent = strdup(cfg->user_agent);
    else
        c->user_agent = strdup("cachefilesd-nydus/" CFN_VERSION);
    if (!c->user_agent)
        goto oom;
    tp->user_agent = c->user_agent;

    if (cfg->n_ca_cert_files && !cfg->skip_verify) {
        char *def = NULL;
        if (http_default_ca_path(&def) == 0) {
            pem_append(c, def, true);
            free(def);
        }
        for (size_t i = 0; i < cfg->n_ca_cert_files; i++) {
            r = pem_append(c, cfg->ca_cert_files[i], false);
            if (r < 0)
                goto fail;
        }
        tp->ca_blob = c->ca_blob;
        tp->ca_blob_len = c->ca_len;
    }

    if (cfg->n_headers > HCOMMON_MAX_HEADERS) {
        r = -E2BIG;
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_headers; i++) {
        if (!hcommon_header_ok(cfg->headers[i])) {
            log_debug("http: malformed extra header #%zu", i);
            r = -EINVAL;
            goto fail;
        }
        if (!(c->headers[c->n_headers] = strdup(cfg->headers[i])))
            goto oom;
        c->n_headers++;
    }

    if (cfg->proxy.url && *cfg->proxy.url) {
        r = hproxy_new(&c->proxy, c->eng, &cfg->proxy, tp);
        if (r < 0)
            goto fail;
    }
    return 0;
oom:
    r = -ENOMEM;
fail:
    hcommon_fini(c);
    return r;
}

void hcommon_fini(HttpCommon *c)
{
    c->proxy = hproxy_free(c->proxy);
    for (size_t i = 0; i < c->n_headers; i++)
        hcommon_secret_free(c->headers[i]);
    c->n_headers = 0;
    free(c->ca_blob);
    c->ca_blob = NULL;
    free(c->user_agent);
    c->user_agent = NULL;
    c->eng = http_engine_unref(c->eng);
}
