/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "proxy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

struct HttpProxy {
    HttpEngine *eng;
    char *url;                      /* may carry the proxy's own user:password */
    char *name;                     /* url without userinfo, for log lines */
    char *ping_url;
    bool fallback, use_http;
    uint32_t interval_s, pause_s;
    bool healthy;
    uint64_t last_use_ns;
    uint64_t unhealthy_since_ns;
    LoopTimer timer;
    HttpTransport ping_tp;
    HttpXfer ping;
    bool pinging;
    HttpProxyStats st;
};

static void hproxy_ping_done(HttpXfer *x, int res)
{
    HttpProxy *p = cfn_container_of(x, HttpProxy, ping);
    p->pinging = false;
    bool ok = res == 0 && x->resp.status >= 200 && x->resp.status < 300;
    if (!ok)
        p->st.ping_failures++;
    if (ok != p->healthy)
        log_debug("proxy: %s is now %s", p->name, ok ? "healthy" : "unhealthy");
    p->healthy = ok;
    if (!ok)
        p->unhealthy_since_ns = loop_now_ns();
    http_xfer_reset(x);
}

static void hproxy_timer(LoopTimer *t)
{
    HttpProxy *p = cfn_container_of(t, HttpProxy, timer);
    uint64_t now = loop_now_ns();
    bool active = now - p->last_use_ns < (uint64_t)p->pause_s * 1000000000ull;
    if (p->ping_url) {
        if (active && !p->pinging) {
            HttpXfer *x = &p->ping;
            x->tp = &p->ping_tp;
            x->method = HTTP_GET;
            x->url = p->ping_url;
            x->buf = NULL;
            x->buf_cap = 0;
            x->done = hproxy_ping_done;
            if (http_xfer_submit(p->eng, x) == 0) {
                p->pinging = true;
                p->st.pings++;
            }
        }
    } else if (!p->healthy && now - p->unhealthy_since_ns >= (uint64_t)p->interval_s * 1000000000ull) {
        p->healthy = true;      /* probe with real traffic again */
    }
    loop_timer_arm(http_engine_loop(p->eng), &p->timer, (uint64_t)p->interval_s * 1000);
}

/* http(s)://, or no scheme (http, as nydusd takes it). curl's error for any
 * other scheme quotes the whole URL, password included. */
static bool proxy_scheme_ok(const char *url)
{
    return !strstr(url, "://") || strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

int hproxy_new(HttpProxy **ret, HttpEngine *e, const ProxyConfig *cfg, const HttpTransport *tp)
{
    if (!proxy_scheme_ok(cfg->url) || !hcommon_url_userinfo_ok(cfg->url)) {
        log_debug("proxy: the URL must be http(s), with any user:password percent-encoded");
        return -EINVAL;
    }
    HttpProxy *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->eng = http_engine_ref(e);
    /* With its scheme spelt out, the URL's userinfo is found and redacted in logs. */
    if (asprintf(&p->url, "%s%s", strstr(cfg->url, "://") ? "" : "http://", cfg->url) < 0)
        p->url = NULL;
    p->name = p->url ? malloc(strlen(p->url) + 1) : NULL;
    if (p->name)
        http_url_redact(p->url, p->name, strlen(p->url) + 1);
    p->ping_url = cfg->ping_url && *cfg->ping_url ? strdup(cfg->ping_url) : NULL;
    p->fallback = cfg->fallback;
    p->use_http = cfg->use_http;
    p->interval_s = CFN_MAX(cfg->check_interval_s, 1u);
    p->pause_s = cfg->check_pause_elapsed_s ? cfg->check_pause_elapsed_s : 300;
    p->healthy = true;
    p->last_use_ns = loop_now_ns();
    p->ping_tp = *tp;
    p->ping_tp.retry_limit = 0;
    p->ping_tp.aws_sigv4 = NULL;
    p->ping_tp.username = p->ping_tp.password = NULL;
    p->ping_tp.unix_socket = NULL;
    p->ping_tp.timeout_ms = CFN_MIN(tp->timeout_ms ? tp->timeout_ms : 5000, p->interval_s * 1000);
    http_xfer_init(&p->ping);
    loop_timer_init(&p->timer, hproxy_timer);
    if (!p->url || !p->name || (cfg->ping_url && *cfg->ping_url && !p->ping_url)) {
        hproxy_free(p);
        return -ENOMEM;
    }
    loop_timer_arm(http_engine_loop(e), &p->timer, (uint64_t)p->interval_s * 1000);
    *ret = p;
    return 0;
}

HttpProxy *hproxy_free(HttpProxy *p)
{
    if (!p)
        return NULL;
    loop_timer_cancel(http_engine_loop(p->eng), &p->timer);
    if (p->pinging)
        http_xfer_cancel(&p->ping);
    http_xfer_reset(&p->ping);
    http_engine_unref(p->eng);
    free(p->url);
    free(p->name);
    free(p->ping_url);
    free(p);
    return NULL;
}

bool hproxy_healthy(const HttpProxy *p) { return p && p->healthy; }

void hproxy_stats(const HttpProxy *p, HttpProxyStats *out)
{
    *out = p->st;
}

void http_call_init(HttpCall *c)
{
    memset(c, 0, sizeof(*c));
    http_xfer_init(&c->x);
}

void http_call_reset(HttpCall *c)
{
    http_xfer_reset(&c->x);
    if (c->orig_url)
        c->x.url = c->orig_url;
    c->orig_url = NULL;
    free(c->proxied_url);
    c->proxied_url = NULL;
}

static void hproxy_call_done(HttpXfer *x, int res);

static int hproxy_start(HttpCall *c, bool via_proxy)
{
    HttpProxy *p = c->p;
    c->via_proxy = via_proxy;
    c->x.done = hproxy_call_done;
    c->x.proxy = NULL;
    if (c->orig_url)
        c->x.url = c->orig_url;
    if (via_proxy) {
        c->x.proxy = p->url;
        c->orig_url = c->x.url;
        if (p->use_http && strncasecmp(c->x.url, "https://", 8) == 0) {
            free(c->proxied_url);
            size_t n = strlen(c->x.url);
            c->proxied_url = malloc(n);
            if (!c->proxied_url)
                return -ENOMEM;
            snprintf(c->proxied_url, n, "http://%s", c->x.url + 8);
            c->x.url = c->proxied_url;
        }
        /* With fallback, a failing proxy is left at once rather than retried. */
        if (p->fallback)
            c->x.retry_limit = 0;
        p->st.proxied++;
    }
    return http_xfer_submit(c->eng, &c->x);
}

static void hproxy_call_done(HttpXfer *x, int res)
{
    HttpCall *c = cfn_container_of(x, HttpCall, x);
    HttpProxy *p = c->p;
    if (c->via_proxy) {
        bool transport = res < 0 && http_error_is_transport(res);
        if (transport && p->healthy) {
            log_debug("proxy: %s failed (%s), marking it unhealthy", p->name, strerror(-res));
            p->healthy = false;
            p->unhealthy_since_ns = loop_now_ns();
        }
        if ((transport || (res == 0 && x->resp.status >= 500)) && p->fallback) {
            p->st.fallbacks++;
            c->x.retry_limit = -1;
            http_xfer_reset(x);
            int s = hproxy_start(c, false);
            if (s == 0)
                return;
            res = s;
        }
    }
    c->done(c, res);
}

int hproxy_submit(HttpProxy *p, HttpEngine *e, HttpCall *c)
{
    c->p = p;
    c->eng = e;
    c->orig_url = NULL;
    if (!p)
        return hproxy_start(c, false);
    p->last_use_ns = loop_now_ns();
    if (p->healthy)
        return hproxy_start(c, true);
    if (!p->fallback)
        return -EHOSTUNREACH;
    p->st.fallbacks++;
    return hproxy_start(c, false);
}

void hproxy_cancel(HttpCall *c)
{
    http_xfer_cancel(&c->x);
}
