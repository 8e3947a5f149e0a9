/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Aliyun OSS: {scheme}://{bucket}.{endpoint}/{prefix}{blob_id}, signed with
 * OSS V1 (as nydusd): Authorization: OSS <ak>:base64(HMAC-SHA1(secret,
 * "VERB\n\n\n<Date>\n/<bucket>/<prefix><blob_id>")). Anonymous without keys.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "b64.h"
#include "hb.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

typedef struct OssPriv {
    char *base;             /* scheme://bucket.endpoint/prefix (escaped) */
    char *resource;         /* /bucket/prefix (unescaped, as signed) */
    char *key_id;
    char *secret;
} OssPriv;

static const BackendOps oss_backend_ops = {
    .name = "oss",
    .submit = hb_submit,
    .cancel = hb_cancel,
    .free = hb_free,
};

static int oss_url(HbBackend *b, const char *blob_id, char **out)
{
    return hb_url_join(((OssPriv *)b->priv)->base, blob_id, out);
}

static void oss_http_date(char *buf, size_t cap)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int oss_sign(HbBackend *b, enum http_method m, const char *blob_id, char **out, size_t *n)
{
    OssPriv *p = b->priv;
    *n = 0;
    if (!p->key_id)
        return 0;
    char date[64];
    oss_http_date(date, sizeof(date));
    char sts[4096];
    int l = snprintf(sts, sizeof(sts), "%s\n\n\n%s\n%s%s", m == HTTP_HEAD ? "HEAD" : "GET", date,
                     p->resource, blob_id);
    if (l < 0 || (size_t)l >= sizeof(sts))
        return -E2BIG;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha1(), p->secret, (int)strlen(p->secret), (const unsigned char *)sts, (size_t)l,
              mac, &maclen))
        return -EIO;
    char sig[64];
    if (b64_encode(mac, maclen, sig, sizeof(sig)) < 0)
        return -EIO;
    explicit_bzero(mac, sizeof(mac));
    size_t dn = strlen(date) + sizeof("Date: ");
    size_t an = strlen(p->key_id) + strlen(sig) + sizeof("Authorization: OSS :");
    out[0] = malloc(dn);
    out[1] = malloc(an);
    if (!out[0] || !out[1]) {
        free(out[0]);
        free(out[1]);
        return -ENOMEM;
    }
    snprintf(out[0], dn, "Date: %s", date);
    snprintf(out[1], an, "Authorization: OSS %s:%s", p->key_id, sig);
    *n = 2;
    return 0;
}

static void oss_free_priv(HbBackend *b)
{
    OssPriv *p = b->priv;
    if (!p)
        return;
    free(p->base);
    free(p->resource);
    free(p->key_id);
    hcommon_secret_free(p->secret);
    free(p);
}

static const HbHooks oss_hooks = { .url = oss_url, .sign = oss_sign, .free_priv = oss_free_priv };

int backend_oss_new(Backend **ret, Loop *loop, const OssConfig *cfg)
{
    if (!hcommon_host_name_ok(cfg->bucket_name, ".-_") || !hcommon_host_name_ok(cfg->endpoint, ".-:[]")) {
        log_debug("oss: bucket_name and endpoint are required and must be host-name safe");
        return -EINVAL;
    }
    bool keys = cfg->access_key_id && *cfg->access_key_id;
    if (keys != (cfg->access_key_secret && *cfg->access_key_secret)) {
        log_debug("oss: access_key_id and access_key_secret go together");
        return -EINVAL;
    }
    const char *prefix = cfg->object_prefix ? cfg->object_prefix : "";
    for (const char *c = prefix; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return -EINVAL;
    HbBackend *b = calloc(1, sizeof(*b));
    OssPriv *p = calloc(1, sizeof(*p));
    if (!b || !p) {
        free(b);
        free(p);
        return -ENOMEM;
    }
    b->base.ops = &oss_backend_ops;
    int r = hb_init(b, loop, &cfg->http, &oss_hooks, p);
    if (r < 0) {
        hb_free(&b->base);
        return r;
    }
    const char *scheme = cfg->scheme && strcasecmp(cfg->scheme, "http") == 0 ? "http" : "https";
    char eprefix[2048];
    if (http_url_escape(prefix, true, eprefix, sizeof(eprefix)) < 0) {
        hb_free(&b->base);
        return -EINVAL;
    }
    size_t n = strlen(scheme) + strlen(cfg->endpoint) + strlen(cfg->bucket_name) + strlen(eprefix) + 8;
    size_t rn = strlen(cfg->bucket_name) + strlen(prefix) + 3;
    p->base = malloc(n);
    p->resource = malloc(rn);
    if (!p->base || !p->resource)
        goto oom;
    snprintf(p->base, n, "%s://%s.%s/%s", scheme, cfg->bucket_name, cfg->endpoint, eprefix);
    snprintf(p->resource, rn, "/%s/%s", cfg->bucket_name, prefix);
    if (keys) {
        p->key_id = strdup(cfg->access_key_id);
        p->secret = strdup(cfg->access_key_secret);
        if (!p->key_id || !p->secret)
            goto oom;
    }
    *ret = &b->base;
    return 0;
oom:
    hb_free(&b->base);
    return -ENOMEM;
}
