/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * S3: the object is {prefix}{blob_id} in a bucket, path style
 * ({endpoint}/{bucket}/{key}, nydusd's form) or virtual-host style
 * ({bucket}.{endpoint}/{key}). Requests are signed with libcurl's AWS SigV4
 * (CURLOPT_AWS_SIGV4) over host, range, x-amz-date, x-amz-content-sha256 and,
 * with STS credentials, x-amz-security-token. Without keys the requests are
 * anonymous, for public buckets.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hb.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct S3Priv {
    char *base;             /* scheme://host/[bucket/]prefix (escaped) */
    char *sigv4;
    char *key_id;
    char *secret;
    char *token_line;       /* "x-amz-security-token: ..." */
} S3Priv;

static const BackendOps s3_backend_ops = {
    .name = "s3",
    .submit = hb_submit,
    .cancel = hb_cancel,
    .free = hb_free,
};

static int s3_url(HbBackend *b, const char *blob_id, char **out)
{
    return hb_url_join(((S3Priv *)b->priv)->base, blob_id, out);
}

static int s3_sign(HbBackend *b, enum http_method m, const char *blob_id, char **out, size_t *n)
{
    S3Priv *p = b->priv;
    *n = 0;
    if (!p->sigv4)
        return 0;
    if (!(out[(*n)++] = strdup("x-amz-content-sha256: " S3_EMPTY_SHA256)))
        return -ENOMEM;
    if (p->token_line && !(out[(*n)++] = strdup(p->token_line)))
        return -ENOMEM;
    return 0;
}

static void s3_free_priv(HbBackend *b)
{
    S3Priv *p = b->priv;
    if (!p)
        return;
    free(p->base);
    free(p->sigv4);
    free(p->key_id);
    hcommon_secret_free(p->secret);
    hcommon_secret_free(p->token_line);
    free(p);
}

static const HbHooks s3_hooks = { .url = s3_url, .sign = s3_sign, .free_priv = s3_free_priv };

int backend_s3_new(Backend **ret, Loop *loop, const S3Config *cfg)
{
    const char *endpoint = cfg->endpoint && *cfg->endpoint ? cfg->endpoint : "s3.amazonaws.com";
    if (!hcommon_host_name_ok(cfg->bucket_name, ".-_") || !hcommon_host_name_ok(endpoint, ".-:[]")) {
        log_debug("s3: bucket_name and endpoint are required and must be host-name safe");
        return -EINVAL;
    }
    bool keys = cfg->access_key_id && *cfg->access_key_id;
    if (keys != (cfg->access_key_secret && *cfg->access_key_secret)) {
        log_debug("s3: access_key_id and access_key_secret go together");
        return -EINVAL;
    }
    if (keys && !hcommon_host_name_ok(cfg->region, "-_")) {
        log_debug("s3: region is required for signed requests");
        return -EINVAL;
    }
    HbBackend *b = calloc(1, sizeof(*b));
    S3Priv *p = calloc(1, sizeof(*p));
    if (!b || !p) {
        free(b);
        free(p);
        return -ENOMEM;
    }
    b->base.ops = &s3_backend_ops;
    int r = hb_init(b, loop, &cfg->http, &s3_hooks, p);
    if (r < 0) {
        hb_free(&b->base);
        return r;
    }
    const char *scheme = cfg->scheme && strcasecmp(cfg->scheme, "http") == 0 ? "http" : "https";
    char prefix[2048];
    if (http_url_escape(cfg->object_prefix ? cfg->object_prefix : "", true, prefix, sizeof(prefix)) < 0) {
        hb_free(&b->base);
        return -EINVAL;
    }
    size_t n = strlen(scheme) + strlen(endpoint) + strlen(cfg->bucket_name) + strlen(prefix) + 8;
    p->base = malloc(n);
    if (!p->base)
        goto oom;
    if (cfg->path_style)
        snprintf(p->base, n, "%s://%s/%s/%s", scheme, endpoint, cfg->bucket_name, prefix);
    else
        snprintf(p->base, n, "%s://%s.%s/%s", scheme, cfg->bucket_name, endpoint, prefix);
    if (keys) {
        size_t sn = strlen(cfg->region) + sizeof("aws:amz::s3");
        p->sigv4 = malloc(sn);
        if (!p->sigv4)
            goto oom;
        snprintf(p->sigv4, sn, "aws:amz:%s:s3", cfg->region);
        p->key_id = strdup(cfg->access_key_id);
        p->secret = strdup(cfg->access_key_secret);
        if (!p->key_id || !p->secret)
            goto oom;
        if (cfg->session_token && *cfg->session_token) {
            size_t tn = strlen(cfg->session_token) + sizeof("x-amz-security-token: ");
            p->token_line = malloc(tn);
            if (!p->token_line)
                goto oom;
            snprintf(p->token_line, tn, "x-amz-security-token: %s", cfg->session_token);
            if (!hcommon_header_ok(p->token_line)) {
                hb_free(&b->base);
                return -EINVAL;
            }
        }
        b->c.tp.aws_sigv4 = p->sigv4;
        b->c.tp.username = p->key_id;
        b->c.tp.password = p->secret;
    }
    *ret = &b->base;
    return 0;
oom:
    hb_free(&b->base);
    return -ENOMEM;
}
