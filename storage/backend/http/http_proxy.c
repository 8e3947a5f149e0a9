/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * nydusd's http-proxy backend: HEAD {addr}{path}/{blob_id} for the size and
 * GET with Range to read, over TCP (http/https) or a unix socket when addr
 * is an absolute path.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hb.h"
#include "storage/util/log.h"

typedef struct HttpProxyPriv {
    char *base;             /* "{addr}{path}/" */
    char *unix_path;
} HttpProxyPriv;

static const BackendOps http_proxy_backend_ops = {
    .name = "http-proxy",
    .submit = hb_submit,
    .cancel = hb_cancel,
    .free = hb_free,
};

static int hpb_url(HbBackend *b, const char *blob_id, char **out)
{
    return hb_url_join(((HttpProxyPriv *)b->priv)->base, blob_id, out);
}

static void hpb_free_priv(HbBackend *b)
{
    HttpProxyPriv *p = b->priv;
    if (!p)
        return;
    free(p->base);
    free(p->unix_path);
    free(p);
}

static const HbHooks hpb_hooks = { .url = hpb_url, .free_priv = hpb_free_priv };

int backend_http_proxy_new(Backend **ret, Loop *loop, const HttpProxyBackendConfig *cfg)
{
    const char *addr = cfg->addr;
    bool unix_sock = addr && addr[0] == '/';
    if (!addr || (!unix_sock && strncasecmp(addr, "http://", 7) != 0 &&
                  strncasecmp(addr, "https://", 8) != 0)) {
        log_debug("http-proxy: addr must be an http(s) URL or an absolute unix socket path");
        return -EINVAL;
    }
    char path[2048];
    if (http_url_escape(cfg->path ? cfg->path : "", true, path, sizeof(path)) < 0)
        return -EINVAL;
    HbBackend *b = calloc(1, sizeof(*b));
    HttpProxyPriv *p = calloc(1, sizeof(*p));
    if (!b || !p) {
        free(b);
        free(p);
        return -ENOMEM;
    }
    b->base.ops = &http_proxy_backend_ops;
    int r = hb_init(b, loop, &cfg->http, &hpb_hooks, p);
    if (r < 0) {
        hb_free(&b->base);
        return r;
    }
    const char *host = unix_sock ? "http://localhost" : addr;
    size_t hl = strlen(host);
    while (hl > 8 && host[hl - 1] == '/')
        hl--;
    size_t pl = strlen(path);
    while (pl && path[pl - 1] == '/')
        pl--;
    size_t n = hl + pl + 3;
    p->base = malloc(n);
    if (!p->base) {
        hb_free(&b->base);
        return -ENOMEM;
    }
    snprintf(p->base, n, "%.*s%s%.*s/", (int)hl, host, (pl && path[0] != '/') ? "/" : "", (int)pl, path);
    if (unix_sock) {
        if (!(p->unix_path = strdup(addr))) {
            hb_free(&b->base);
            return -ENOMEM;
        }
        b->c.tp.unix_socket = p->unix_path;
    }
    *ret = &b->base;
    return 0;
}
