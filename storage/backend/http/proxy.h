/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * nydusd's `proxy` setting: send requests through a forward HTTP proxy (a
 * Dragonfly dfdaemon serving blobs peer to peer) while it is healthy, and
 * directly otherwise. A request through the proxy that fails with a
 * transport error or a status >= 500 is re-sent directly when fallback is
 * on; a transport error also marks the proxy unhealthy until a ping of
 * ping_url succeeds (or, without ping_url, until check_interval passed).
 * Pings run every check_interval while there was a request within
 * check_pause_elapsed.
 */
#pragma once

#include "backend_config.h"
#include "engine.h"

typedef struct HttpProxy HttpProxy;
typedef struct HttpCall HttpCall;

/* One request that may go through the proxy. Fill `x`'s request fields
 * (except done and proxy) and `done`, then hproxy_submit(). */
struct HttpCall {
    HttpXfer x;
    void (*done)(HttpCall *c, int res);   /* as HttpXfer's done */
    /* private */
    HttpProxy *p;
    HttpEngine *eng;
    const char *orig_url;
    char *proxied_url;
    bool via_proxy;
};

int hproxy_new(HttpProxy **ret, HttpEngine *e, const ProxyConfig *cfg, const HttpTransport *tp);
HttpProxy *hproxy_free(HttpProxy *p);

void http_call_init(HttpCall *c);
/* p may be NULL (always direct). 0, or -errno (done will not run;
 * -EHOSTUNREACH when the proxy is down and fallback is off). */
int hproxy_submit(HttpProxy *p, HttpEngine *e, HttpCall *c);
void hproxy_cancel(HttpCall *c);
/* Drop response strings and the rewritten URL. */
void http_call_reset(HttpCall *c);

bool hproxy_healthy(const HttpProxy *p);
typedef struct HttpProxyStats {
    uint64_t proxied, fallbacks, pings, ping_failures;
} HttpProxyStats;
void hproxy_stats(const HttpProxy *p, HttpProxyStats *out);
