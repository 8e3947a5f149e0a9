/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "mirrors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

typedef struct Mirror {
    Mirrors *m;
    char *base;                 /* as configured: may carry user:password (the mirror's own) */
    char *origin;               /* scheme://host[:port], without userinfo */
    char *host;                 /* host[:port], without userinfo */
    char *name;                 /* base without userinfo, for log lines */
    char *ping_url;
    char **headers;             /* NULL-terminated */
    uint32_t failure_limit, interval_s, pause_s;
    uint32_t failures;
    bool disabled;
    uint64_t last_use_ns;
    LoopTimer timer;
    HttpXfer ping;
    bool pinging;
} Mirror;

struct Mirrors {
    HttpEngine *eng;
    HttpTransport ping_tp;
    Mirror *v;
    size_t n;
};

static bool header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return false;
    for (const char *p = h; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return false;
    return true;
}

static void mirror_ping_done(HttpXfer *x, int res)
{
    Mirror *mr = cfn_container_of(x, Mirror, ping);
    mr->pinging = false;
    if (res == 0 && x->resp.status > 0 && x->resp.status < 500) {
        log_debug("mirror: %s is back", mr->name);
        mr->disabled = false;
        mr->failures = 0;
    }
    http_xfer_reset(x);
}

static void mirror_timer(LoopTimer *t)
{
    Mirror *mr = cfn_container_of(t, Mirror, timer);
    Mirrors *m = mr->m;
    if (!mr->disabled)
        return;
    uint64_t now = loop_now_ns();
    if (now - mr->last_use_ns < (uint64_t)mr->pause_s * 1000000000ull && !mr->pinging) {
        HttpXfer *x = &mr->ping;
        x->tp = &m->ping_tp;
        x->method = HTTP_GET;
        x->url = mr->ping_url;
        x->done = mirror_ping_done;
        if (http_xfer_submit(m->eng, x) == 0)
            mr->pinging = true;
    }
    loop_timer_arm(http_engine_loop(m->eng), &mr->timer, (uint64_t)mr->interval_s * 1000);
}

/* origin, host and name from base: none of them carries the userinfo. */
static int mirror_names(Mirror *mr)
{
    const char *auth = strstr(mr->base, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', alen);
    const char *h = at ? at + 1 : auth;
    size_t hlen = alen - (size_t)(h - auth);
    if (!hlen)
        return -EINVAL;
    mr->host = strndup(h, hlen);
    if (asprintf(&mr->origin, "%.*s%.*s", (int)(auth - mr->base), mr->base, (int)hlen, h) < 0)
        mr->origin = NULL;
    size_t cap = strlen(mr->base) + 1;
    mr->name = malloc(cap);
    if (mr->name)
        http_url_redact(mr->base, mr->name, cap);
    return mr->host && mr->origin && mr->name ? 0 : -ENOMEM;
}

static int mirror_init(Mirrors *m, Mirror *mr, const MirrorConfig *c)
{
    mr->m = m;
    http_xfer_init(&mr->ping);
    loop_timer_init(&mr->timer, mirror_timer);
    if (!c->host || (strncasecmp(c->host, "http://", 7) != 0 && strncasecmp(c->host, "https://", 8) != 0)) {
        log_debug("mirror: host must be an http(s) URL");
        return -EINVAL;
    }
    if (!hcommon_url_userinfo_ok(c->host)) {
        log_debug("mirror: user:password in a host URL must be percent-encoded");
        return -EINVAL;
    }
    size_t n = strlen(c->host);
    while (n > 8 && c->host[n - 1] == '/')
        n--;
    mr->base = strndup(c->host, n);
    if (!mr->base)
        return -ENOMEM;
    int r = mirror_names(mr);
    if (r < 0)
        return r;
    if (c->ping_url && *c->ping_url) {
        mr->ping_url = strdup(c->ping_url);
    } else {
        size_t l = strlen(mr->base) + sizeof("/v2/");
        mr->ping_url = malloc(l);
        if (mr->ping_url)
            snprintf(mr->ping_url, l, "%s/v2/", mr->base);
    }
    if (!mr->ping_url)
        return -ENOMEM;
    mr->headers = calloc(c->n_headers + 1, sizeof(char *));
    if (!mr->headers)
        return -ENOMEM;
    for (size_t i = 0; i < c->n_headers; i++) {
        if (!header_ok(c->headers[i]))
            return -EINVAL;
        if (!(mr->headers[i] = strdup(c->headers[i])))
            return -ENOMEM;
    }
    mr->failure_limit = c->failure_limit ? c->failure_limit : 5;
    mr->interval_s = c->health_check_interval_s ? c->health_check_interval_s : 5;
    mr->pause_s = c->health_check_pause_elapsed_s ? c->health_check_pause_elapsed_s : 300;
    mr->last_use_ns = loop_now_ns();
    return 0;
}

int mirrors_new(Mirrors **ret, HttpEngine *e, const HttpTransport *tp, const MirrorConfig *cfgs, size_t n)
{
    Mirrors *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->eng = http_engine_ref(e);
    m->ping_tp = *tp;
    m->ping_tp.retry_limit = 0;
    m->v = calloc(n ? n : 1, sizeof(Mirror));
    if (!m->v) {
        mirrors_free(m);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        m->n = i + 1;
        int r = mirror_init(m, &m->v[i], &cfgs[i]);
        if (r < 0) {
            mirrors_free(m);
            return r;
        }
    }
    *ret = m;
    return 0;
}

Mirrors *mirrors_free(Mirrors *m)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        Mirror *mr = &m->v[i];
        loop_timer_cancel(http_engine_loop(m->eng), &mr->timer);
        if (mr->pinging)
            http_xfer_cancel(&mr->ping);
        http_xfer_reset(&mr->ping);
        free(mr->base);
        free(mr->origin);
        free(mr->host);
        free(mr->name);
        free(mr->ping_url);
        for (char **h = mr->headers; h && *h; h++)
            free(*h);
        free(mr->headers);
    }
    free(m->v);
    http_engine_unref(m->eng);
    free(m);
    return NULL;
}

size_t mirrors_count(const Mirrors *m) { return m ? m->n : 0; }
bool mirrors_usable(const Mirrors *m, size_t i) { return !m->v[i].disabled; }
const char *mirrors_base(const Mirrors *m, size_t i) { return m->v[i].base; }
const char *mirrors_host(const Mirrors *m, size_t i) { return m->v[i].host; }
const char *mirrors_origin(const Mirrors *m, size_t i) { return m->v[i].origin; }
const char *mirrors_name(const Mirrors *m, size_t i) { return m->v[i].name; }
const char *const *mirrors_headers(const Mirrors *m, size_t i) { return (const char *const *)m->v[i].headers; }

void mirrors_report(Mirrors *m, size_t i, bool ok)
{
    Mirror *mr = &m->v[i];
    mr->last_use_ns = loop_now_ns();
    if (ok) {
        mr->failures = 0;
        return;
    }
    if (++mr->failures >= mr->failure_limit && !mr->disabled) {
        log_debug("mirror: %s disabled after %u failures", mr->name, mr->failures);
        mr->disabled = true;
        loop_timer_arm(http_engine_loop(m->eng), &mr->timer, (uint64_t)mr->interval_s * 1000);
    }
}
