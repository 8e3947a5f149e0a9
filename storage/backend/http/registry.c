/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The registry backend (OCI distribution):
 *   GET  {scheme}://{host}/v2/{repo}/blobs/sha256:{id}  with Range, to read
 *   HEAD the same URL for the size.
 * Routes are the mirrors (in order, while usable) and then the origin; each
 * route has its own authentication state (auth.c) and its own credentials:
 * `auth`, `registry_token` and Authorization among the common headers belong
 * to the origin; a mirror has only its headers, user:password in its URL and
 * its docker-config entry. A 3xx is followed by hand
 * (bounded hops): a Location on another origin gets no Authorization and no
 * configured headers, and the final URL is remembered per blob for later
 * reads until it answers 401/403 (an expired presigned URL) or fails.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "b64.h"
#include "common.h"
#include "dockercfg.h"
#include "mirrors.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

#define REG_MAX_HOPS        5
#define REG_CACHE_BUCKETS   256
#define REG_MAX_HEADERS     (HCOMMON_MAX_HEADERS + 32 + 2)

typedef struct RegRoute {
    char *base;                     /* scheme://[userinfo@]host[:port][/prefix] */
    const char *name;               /* base without userinfo, for log lines */
    char *host;
    AuthRoute *auth;
    const char *const *headers;     /* a mirror's own headers */
    ssize_t mirror;                 /* index in Mirrors, -1 for the origin */
} RegRoute;

typedef struct RedirEntry {
    struct RedirEntry *next;
    uint64_t seq;
    char *url;
    char blob[];
} RedirEntry;

typedef struct RegOp RegOp;

typedef struct Registry {
    Backend base;
    HttpCommon c;
    char *repo;
    Mirrors *mirrors;
    RegRoute *routes;               /* mirrors first, origin last */
    size_t n_routes;
    char *blob_url_scheme;
    char *blob_redirected_host;
    RedirEntry *cache[REG_CACHE_BUCKETS];
    size_t cache_n, cache_max;
    uint64_t cache_seq;
    RegOp *ops;
    bool cancelled;                 /* shutdown: registry_cancel() ran */
    LoopTimer cancel_timer;
} Registry;

enum reg_state { REG_ST_CACHED, REG_ST_ORIGIN, REG_ST_REDIRECT };

struct RegOp {
    Registry *reg;
    BackendRequest *req;
    HttpCall call;
    AuthWaiter waiter;
    size_t route;
    enum reg_state st;
    char *url;
    char *auth_line;
    uint64_t auth_gen;
    const char *hdrs[REG_MAX_HEADERS];
    unsigned hops;
    bool auth_retried;
    bool cache_skipped;
    bool in_submit;
    int sync_res;
    RegOp *prev, *next;
};

static const BackendOps registry_backend_ops;

/* ---- redirect cache ---- */

static size_t reg_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h % REG_CACHE_BUCKETS);
}

static RedirEntry **reg_cache_find(Registry *reg, const char *blob)
{
    RedirEntry **pp = &reg->cache[reg_hash(blob)];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->blob, blob) == 0)
            return pp;
    return pp;
}

static void reg_cache_unlink(Registry *reg, RedirEntry **pp)
{
    RedirEntry *e = *pp;
    *pp = e->next;
    free(e->url);
    free(e);
    reg->cache_n--;
}

static void reg_cache_drop(Registry *reg, const char *blob, const char *url)
{
    RedirEntry **pp = reg_cache_find(reg, blob);
    if (*pp && (!url || strcmp((*pp)->url, url) == 0))
        reg_cache_unlink(reg, pp);
}

static void reg_cache_put(Registry *reg, const char *blob, const char *url)
{
    if (!reg->cache_max)
        return;
    RedirEntry **pp = reg_cache_find(reg, blob);
    if (*pp) {
        char *u = strdup(url);
        if (u) {
            free((*pp)->url);
            (*pp)->url = u;
            (*pp)->seq = ++reg->cache_seq;
        }
        return;
    }
    if (reg->cache_n >= reg->cache_max) {
        /* Evict the oldest entry. */
        RedirEntry **old = NULL;
        for (size_t b = 0; b < REG_CACHE_BUCKETS; b++)
            for (RedirEntry **q = &reg->cache[b]; *q; q = &(*q)->next)
                if (!old || (*q)->seq < (*old)->seq)
                    old = q;
        if (old)
            reg_cache_unlink(reg, old);
        pp = reg_cache_find(reg, blob);
    }
    size_t n = strlen(blob);
    RedirEntry *e = malloc(sizeof(*e) + n + 1);
    if (!e)
        return;
    e->url = strdup(url);
    if (!e->url) {
        free(e);
        return;
    }
    memcpy(e->blob, blob, n + 1);
    e->seq = ++reg->cache_seq;
    e->next = NULL;
    *pp = e;
    reg->cache_n++;
}

/* ---- request flow ---- */

static void reg_op_free(RegOp *op)
{
    Registry *reg = op->reg;
    if (op->prev)
        op->prev->next = op->next;
    else if (reg->ops == op)
        reg->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    http_call_reset(&op->call);
    free(op->url);
    hcommon_secret_free(op->auth_line);
    free(op);
}

static void reg_finish(RegOp *op, int res)
{
    BackendRequest *req = op->req;
    res = hcommon_request_result(req, op->call.x.resp.content_length, res);
    if (res < 0)
        log_debug("registry: blob %s: %s", req->blob_id, strerror(-res));
    if (op->in_submit) {
        op->sync_res = res < 0 ? res : -EIO;
        return;
    }
    reg_op_free(op);
    req->done(req, res);
}

static int reg_send(RegOp *op, bool origin)
{
    Registry *reg = op->reg;
    RegRoute *rt = &reg->routes[op->route];
    size_t nh = 0;
    if (origin) {
        /* The common headers go to mirrors too, except credentials: those are the origin's. */
        for (size_t i = 0; i < reg->c.n_headers; i++)
            if (rt->mirror < 0 || !hcommon_header_is_credential(reg->c.headers[i]))
                op->hdrs[nh++] = reg->c.headers[i];
        for (const char *const *h = rt->headers; h && *h && nh < REG_MAX_HEADERS - 2; h++)
            op->hdrs[nh++] = *h;
        if (op->auth_line)
            op->hdrs[nh++] = op->auth_line;
    }
    op->hdrs[nh] = NULL;
    http_call_reset(&op->call);
    HttpXfer *x = &op->call.x;
    BackendRequest *req = op->req;
    x->tp = &reg->c.tp;
    x->url = op->url;
    x->headers = op->hdrs;
    x->group = req->blob_id;
    x->retry_limit = -1;
    if (req->kind == BACKEND_SIZE) {
        x->method = HTTP_HEAD;
        x->ranged = false;
    } else {
        x->method = HTTP_GET;
        x->ranged = true;
        x->range_off = req->off;
        x->range_len = req->len;
        x->buf = req->buf;
    }
    return hproxy_submit(reg->c.proxy, reg->c.eng, &op->call);
}

static int reg_send_origin(RegOp *op)
{
    Registry *reg = op->reg;
    RegRoute *rt = &reg->routes[op->route];
    hcommon_secret_free(op->auth_line);
    op->auth_line = NULL;
    int r = auth_route_header(rt->auth, &op->auth_line, &op->auth_gen);
    if (r < 0)
        return r;
    free(op->url);
    size_t n = strlen(rt->base) + strlen(reg->repo) + strlen(op->req->blob_id) + 32;
    op->url = malloc(n);
    if (!op->url)
        return -ENOMEM;
    snprintf(op->url, n, "%s/v2/%s/blobs/sha256:%s", rt->base, reg->repo, op->req->blob_id);
    op->st = REG_ST_ORIGIN;
    op->hops = 0;
    return reg_send(op, true);
}

static void reg_route_begin(RegOp *op, size_t from);

/* The current route could not serve the request: try the next one. */
static void reg_route_failed(RegOp *op, int res, bool count)
{
    Registry *reg = op->reg;
    RegRoute *rt = &reg->routes[op->route];
    if (rt->mirror < 0) {
        reg_finish(op, res);
        return;
    }
    if (count)
        mirrors_report(reg->mirrors, (size_t)rt->mirror, false);
    log_debug("registry: blob %s: mirror %s failed (%s), trying the next route", op->req->blob_id,
              rt->name, strerror(-res));
    reg_route_begin(op, op->route + 1);
}

static void reg_auth_ready(AuthWaiter *w, int res)
{
    RegOp *op = cfn_container_of(w, RegOp, waiter);
    if (res == 0)
        res = reg_send_origin(op);
    if (res < 0)
        reg_route_failed(op, res == -ECANCELED ? res : -EACCES, false);
}

static void reg_route_begin(RegOp *op, size_t from)
{
    Registry *reg = op->reg;
    for (size_t i = from; i < reg->n_routes; i++) {
        RegRoute *rt = &reg->routes[i];
        if (rt->mirror >= 0 && !mirrors_usable(reg->mirrors, (size_t)rt->mirror))
            continue;
        op->route = i;
        op->auth_retried = false;
        int r = auth_route_prepare(rt->auth, &op->waiter);
        if (r == 0)
            return;                 /* reg_auth_ready follows */
        if (r > 0)
            r = reg_send_origin(op);
        if (r == 0)
            return;
        if (rt->mirror < 0) {
            reg_finish(op, r);
            return;
        }
    }
    reg_finish(op, -EIO);           /* not reached: the origin is always last */
}

static void reg_follow(RegOp *op)
{
    Registry *reg = op->reg;
    HttpXfer *x = &op->call.x;
    if (++op->hops > REG_MAX_HOPS) {
        reg_route_failed(op, -ELOOP, false);
        return;
    }
    char *next = NULL, *rewritten = NULL;
    int r = http_url_resolve(op->url, x->resp.location, &next);
    if (r == 0 && op->st == REG_ST_ORIGIN && (reg->blob_url_scheme || reg->blob_redirected_host)) {
        r = http_url_rewrite(next, reg->blob_url_scheme, reg->blob_redirected_host, &rewritten);
        if (r == 0) {
            free(next);
            next = rewritten;
        }
    }
    if (r < 0) {
        free(next);
        reg_route_failed(op, -EPROTO, false);
        return;
    }
    /* Credentials stay with the origin that asked for them. */
    bool keep_auth = op->st == REG_ST_ORIGIN && http_url_same_origin(next, op->url);
    free(op->url);
    op->url = next;
    if (!keep_auth) {
        op->st = REG_ST_REDIRECT;
        hcommon_secret_free(op->auth_line);
        op->auth_line = NULL;
    }
    r = reg_send(op, keep_auth);
    if (r < 0)
        reg_route_failed(op, r, false);
}

static void reg_restart_uncached(RegOp *op)
{
    reg_cache_drop(op->reg, op->req->blob_id, op->url);
    op->cache_skipped = true;
    reg_route_begin(op, 0);
}

static bool is_redirect(long st)
{
    return st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
}

static void reg_call_done(HttpCall *c, int res)
{
    RegOp *op = cfn_container_of(c, RegOp, call);
    Registry *reg = op->reg;
    RegRoute *rt = &reg->routes[op->route];
    HttpXfer *x = &c->x;
    long st = x->resp.status;
    bool mirror = rt->mirror >= 0 && op->st == REG_ST_ORIGIN;

    if (res < 0) {
        if (res == -ENODATA) {
            reg_finish(op, res);
        } else if (op->st == REG_ST_CACHED) {
            reg_restart_uncached(op);
        } else {
            reg_route_failed(op, res, op->st == REG_ST_ORIGIN && http_error_is_transport(res));
        }
        return;
    }
    if (mirror)
        mirrors_report(reg->mirrors, (size_t)rt->mirror, st < 500);
    if (st >= 200 && st < 300) {
        if (op->st == REG_ST_REDIRECT && op->req->kind == BACKEND_READ)
            reg_cache_put(reg, op->req->blob_id, op->url);
        reg_finish(op, 0);
        return;
    }
    if (is_redirect(st) && x->resp.location) {
        reg_follow(op);
        return;
    }
    if (st == 416) {
        reg_finish(op, -ENODATA);
        return;
    }
    if (op->st == REG_ST_CACHED) {
        /* An expired presigned URL (401/403) or any other failure: start over once. */
        reg_restart_uncached(op);
        return;
    }
    if (st == 401 && op->st == REG_ST_ORIGIN && !op->auth_retried) {
        op->auth_retried = true;
        int r = auth_route_challenge(rt->auth, x->resp.www_authenticate, op->auth_gen, &op->waiter);
        if (r > 0)
            r = reg_send_origin(op);
        if (r < 0)
            reg_route_failed(op, r == -ENOMEM ? r : -EACCES, false);
        return;
    }
    res = http_status_to_errno(st);
    reg_route_failed(op, res ? res : -EPROTO, false);
}

static int registry_submit(Backend *b, BackendRequest *req)
{
    Registry *reg = cfn_container_of(b, Registry, base);
    if (reg->cancelled)
        return -ECANCELED;
    if (!req->blob_id || !hcommon_blob_digest_ok(req->blob_id) || !req->done)
        return -EINVAL;
    if (req->kind == BACKEND_READ && (!req->len || !req->buf || req->len > INT32_MAX))
        return -EINVAL;
    RegOp *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->reg = reg;
    op->req = req;
    op->waiter.fn = reg_auth_ready;
    http_call_init(&op->call);
    op->call.done = reg_call_done;
    op->next = reg->ops;
    if (reg->ops)
        reg->ops->prev = op;
    reg->ops = op;
    req->priv = op;
    req->done_bytes = 0;
    op->in_submit = true;

    RedirEntry **pp = req->kind == BACKEND_READ ? reg_cache_find(reg, req->blob_id) : NULL;
    if (pp && *pp && (op->url = strdup((*pp)->url))) {
        op->st = REG_ST_CACHED;
        op->route = reg->n_routes - 1;
        int r = reg_send(op, false);
        if (r < 0)
            reg_restart_uncached(op);
    } else {
        reg_route_begin(op, 0);
    }
    op->in_submit = false;
    if (op->sync_res < 0) {
        int r = op->sync_res;
        reg_op_free(op);
        return r;
    }
    return 0;
}

/* Stop op's transfer or its wait for a token; done() is the caller's to run. */
static void reg_op_stop(RegOp *op)
{
    hproxy_cancel(&op->call);
    if (op->waiter.queued)
        auth_route_cancel(op->reg->routes[op->route].auth, &op->waiter);
}

/* Every op was stopped by registry_cancel(): now tell their owners. */
static void registry_cancelled_fire(LoopTimer *t)
{
    Registry *reg = cfn_container_of(t, Registry, cancel_timer);
    while (reg->ops)
        reg_finish(reg->ops, -ECANCELED);
}

static void registry_cancel(Backend *b)
{
    Registry *reg = cfn_container_of(b, Registry, base);
    reg->cancelled = true;
    for (RegOp *op = reg->ops; op; op = op->next)
        reg_op_stop(op);
    if (reg->ops)
        loop_timer_arm(reg->base.loop, &reg->cancel_timer, 0);
}

static void registry_free(Backend *b)
{
    Registry *reg = cfn_container_of(b, Registry, base);
    loop_timer_cancel(reg->base.loop, &reg->cancel_timer);
    while (reg->ops) {
        RegOp *op = reg->ops;
        reg_op_stop(op);
        reg_finish(op, -ECANCELED);
    }
    for (size_t i = 0; i < reg->n_routes; i++) {
        RegRoute *rt = &reg->routes[i];
        auth_route_free(rt->auth);
        free(rt->base);
        free(rt->host);
    }
    free(reg->routes);
    for (size_t i = 0; i < REG_CACHE_BUCKETS; i++)
        while (reg->cache[i])
            reg_cache_unlink(reg, &reg->cache[i]);
    mirrors_free(reg->mirrors);
    free(reg->repo);
    free(reg->blob_url_scheme);
    free(reg->blob_redirected_host);
    hcommon_fini(&reg->c);
    free(reg);
}

static const BackendOps registry_backend_ops = {
    .name = "registry",
    .submit = registry_submit,
    .cancel = registry_cancel,
    .free = registry_free,
};

/* ---- construction ---- */

static bool reg_host_ok(const char *h)
{
    if (!h || !*h || strlen(h) > 255)
        return false;
    for (const char *c = h; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr(".-:[]_", *c)))
            return false;
    return true;
}

static bool reg_repo_ok(const char *r)
{
    if (!r || !*r || strlen(r) > 255 || r[0] == '/' || strstr(r, "..") || strstr(r, "//"))
        return false;
    for (const char *c = r; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("._/-", *c)))
            return false;
    return r[strlen(r) - 1] != '/';
}

/* `auth` must be base64 of "user:pass" (nydusd refuses anything else). */
static int reg_auth_valid(const char *b64)
{
    uint8_t buf[4096];
    int n = b64_decode(b64, strlen(b64), buf, sizeof(buf));
    bool ok = n > 0 && memchr(buf, ':', (size_t)n) != NULL;
    explicit_bzero(buf, sizeof(buf));
    return ok ? 0 : -EINVAL;
}

/* Credentials for `host` from the docker config (NULLs when it has none). */
static int reg_dockercfg_auth(const RegistryConfig *cfg, const char *host, char **auth, char **identity)
{
    *auth = *identity = NULL;
    if (!cfg->docker_config || !*cfg->docker_config)
        return 0;
    int r = dockercfg_lookup(cfg->docker_config, host, auth, identity);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        log_debug("registry: cannot use docker config %s: %s", cfg->docker_config, strerror(-r));
        return r;
    }
    if (*auth && reg_auth_valid(*auth) < 0) {
        hcommon_secret_free(*auth);
        hcommon_secret_free(*identity);
        *auth = *identity = NULL;
        log_debug("registry: docker config auth for %s is not base64(user:pass)", host);
        return -EINVAL;
    }
    return 0;
}

static bool headers_have_credential(const char *const *h)
{
    for (; h && *h; h++)
        if (hcommon_header_is_credential(*h))
            return true;
    return false;
}

/* One route: its URL base, the origin its credentials belong to, and those
 * credentials (auth_b64 and token are NULL for a mirror: they are the origin's). */
static int reg_route_init(Registry *reg, RegRoute *rt, const RegistryConfig *cfg, const char *base,
                          const char *origin, const char *name, const char *host, ssize_t mirror,
                          const char *auth_b64, const char *token, char *scope)
{
    rt->mirror = mirror;
    rt->base = strdup(base);
    rt->host = strdup(host);
    rt->name = name ? name : rt->base;
    if (!rt->base || !rt->host)
        return -ENOMEM;
    if (mirror >= 0)
        rt->headers = mirrors_headers(reg->mirrors, (size_t)mirror);
    char *dc_auth = NULL, *dc_identity = NULL;
    /* A mirror whose own headers authenticate it needs nothing more. */
    if (!auth_b64 && !headers_have_credential(rt->headers)) {
        int r = reg_dockercfg_auth(cfg, host, &dc_auth, &dc_identity);
        if (r < 0)
            return r;
    }
    AuthRouteConfig ac = {
        .host = host,
        .origin = origin,
        .basic = auth_b64 ? auth_b64 : dc_auth,
        .identity_token = dc_identity,
        .static_token = token,
        .default_scope = scope,
    };
    int r = auth_route_new(&rt->auth, reg->c.eng, &reg->c.tp, &ac);
    hcommon_secret_free(dc_auth);
    hcommon_secret_free(dc_identity);
    return r;
}

int backend_registry_new(Backend **ret, Loop *loop, const RegistryConfig *cfg)
{
    if (!reg_host_ok(cfg->host) || !reg_repo_ok(cfg->repo)) {
        log_debug("registry: host and repo are required (host[:port], namespace/name)");
        return -EINVAL;
    }
    char *auth = NULL, *token = NULL;
    int r = hcommon_strdup_trim(cfg->auth, &auth);
    if (r == 0)
        r = hcommon_strdup_trim(cfg->registry_token, &token);
    if (r == 0 && auth && reg_auth_valid(auth) < 0) {
        log_debug("registry: auth is not base64(user:pass)");
        r = -EINVAL;
    }
    if (r == 0 && token) {
        for (const char *c = token; *c; c++)
            if ((unsigned char)*c <= 0x20 || *c == 0x7f)
                r = -EINVAL;
    }
    Registry *reg = r == 0 ? calloc(1, sizeof(*reg)) : NULL;
    if (!reg) {
        hcommon_secret_free(auth);
        hcommon_secret_free(token);
        return r < 0 ? r : -ENOMEM;
    }
    reg->base.ops = &registry_backend_ops;
    reg->base.loop = loop;
    loop_timer_init(&reg->cancel_timer, registry_cancelled_fire);
    reg->cache_max = cfg->redirect_cache_max;
    char scope[512];
    r = hcommon_init(&reg->c, loop, &cfg->http);
    if (r < 0)
        goto fail;
    reg->repo = strdup(cfg->repo);
    if (cfg->blob_url_scheme && *cfg->blob_url_scheme)
        reg->blob_url_scheme = strdup(cfg->blob_url_scheme);
    if (cfg->blob_redirected_host && *cfg->blob_redirected_host)
        reg->blob_redirected_host = strdup(cfg->blob_redirected_host);
    r = -ENOMEM;
    if (!reg->repo || (cfg->blob_url_scheme && *cfg->blob_url_scheme && !reg->blob_url_scheme) ||
        (cfg->blob_redirected_host && *cfg->blob_redirected_host && !reg->blob_redirected_host))
        goto fail;
    if (cfg->n_mirrors) {
        r = mirrors_new(&reg->mirrors, reg->c.eng, &reg->c.tp, cfg->mirrors, cfg->n_mirrors);
        if (r < 0)
            goto fail;
    }
    snprintf(scope, sizeof(scope), "repository:%s:pull", cfg->repo);
    reg->routes = calloc(cfg->n_mirrors + 1, sizeof(RegRoute));
    r = -ENOMEM;
    if (!reg->routes)
        goto fail;
    for (size_t i = 0; i < cfg->n_mirrors; i++) {
        reg->n_routes = i + 1;
        r = reg_route_init(reg, &reg->routes[i], cfg, mirrors_base(reg->mirrors, i),
                           mirrors_origin(reg->mirrors, i), mirrors_name(reg->mirrors, i),
                           mirrors_host(reg->mirrors, i), (ssize_t)i, NULL, NULL, scope);
        if (r < 0)
            goto fail;
    }
    bool https = !(cfg->scheme && strcmp(cfg->scheme, "http") == 0);
    char base[300];
    snprintf(base, sizeof(base), "%s://%s", https ? "https" : "http", cfg->host);
    reg->n_routes = cfg->n_mirrors + 1;
    r = reg_route_init(reg, &reg->routes[cfg->n_mirrors], cfg, base, base, NULL, cfg->host, -1, auth,
                       token, scope);
    if (r < 0)
        goto fail;
    hcommon_secret_free(auth);
    hcommon_secret_free(token);
    *ret = &reg->base;
    return 0;
fail:
    hcommon_secret_free(auth);
    hcommon_secret_free(token);
    registry_free(&reg->base);
    return r;
}
