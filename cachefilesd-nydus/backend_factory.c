/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "backend_factory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/backend/http/backend_config.h"
#include "storage/backend/http/common.h"
#include "storage/util/macros.h"

/* Strings the typed configs borrow, freed after the constructor ran. */
typedef struct Scratch {
    const char **strs[8];
    size_t n_strs;
    char **owned;                   /* built strings ("Name: value" headers), wiped when freed */
    size_t n_owned;
    MirrorConfig *mirrors;
    size_t n_mirrors;
} Scratch;

typedef struct Ctx {
    const BackendConfig *cfg;
    char *err;
    size_t err_len;
    Scratch scratch;
} Ctx;

static int fail(Ctx *c, const ConfigNode *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(Ctx *c, const ConfigNode *n, const char *key, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    /* where = "file: path"; insert the position after the file name. */
    const char *where = c->cfg->where ? c->cfg->where : "config: backend";
    const char *sep = strstr(where, ": ");
    int flen = sep ? (int)(sep - where) : 0;
    snprintf(c->err, c->err_len, "%.*s:%zu:%zu: %s%s%s: %s", flen, where, n->line, n->column,
             sep ? sep + 2 : where, key ? "." : "", key ? key : "", what);
    return -EINVAL;
}

static int get_str(Ctx *c, const ConfigNode *map, const char *key, const char **out)
{
    const ConfigNode *n = config_node_get(map, key);
    if (!n)
        return 0;
    if (n->kind != CONFIG_NODE_SCALAR)
        return fail(c, n, key, "expected a string");
    *out = n->value;
    return 0;
}

static int get_bool(Ctx *c, const ConfigNode *map, const char *key, bool *out)
{
    const ConfigNode *n = config_node_get(map, key);
    if (!n)
        return 0;
    if (n->kind == CONFIG_NODE_SCALAR && strcmp(n->value, "true") == 0)
        *out = true;
    else if (n->kind == CONFIG_NODE_SCALAR && strcmp(n->value, "false") == 0)
        *out = false;
    else
        return fail(c, n, key, "expected true or false");
    return 0;
}

static int get_u32(Ctx *c, const ConfigNode *map, const char *key, uint32_t max, uint32_t *out)
{
    const ConfigNode *n = config_node_get(map, key);
    if (!n)
        return 0;
    uint64_t v;
    if (n->kind != CONFIG_NODE_SCALAR || config_parse_number(n->value, &v) < 0)
        return fail(c, n, key, "expected a whole number");
    if (v > max)
        return fail(c, n, key, "%" PRIu64 " is larger than %" PRIu32, v, max);
    *out = (uint32_t)v;
    return 0;
}

/* A list of strings; the array is kept in the scratch area until the backend is built. */
/* A string array for the items of N, owned by the scratch space (freed with it). */
static int scratch_list(Ctx *c, const ConfigNode *n, const char *key, const char ***out)
{
    if (c->scratch.n_strs == CFN_ARRAY_SIZE(c->scratch.strs))
        return fail(c, n, key, "too many lists");
    const char **v = calloc(n->n_items ? n->n_items : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    c->scratch.strs[c->scratch.n_strs++] = v;
    *out = v;
    return 0;
}

static int get_str_list(Ctx *c, const ConfigNode *map, const char *key, const char *const **out, size_t *n_out)
{
    const ConfigNode *n = config_node_get(map, key);
    if (!n)
        return 0;
    if (n->kind != CONFIG_NODE_SEQ)
        return fail(c, n, key, "expected a list of strings");
    const char **v = NULL;
    int r = scratch_list(c, n, key, &v);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n->n_items; i++) {
        if (n->items[i].kind != CONFIG_NODE_SCALAR)
            return fail(c, &n->items[i], key, "expected a string");
        v[i] = n->items[i].value;
    }
    *out = v;
    *n_out = n->n_items;
    return 0;
}

static int scratch_own(Ctx *c, char *str)
{
    char **v = realloc(c->scratch.owned, (c->scratch.n_owned + 1) * sizeof(*v));
    if (!v) {
        free(str);
        return -ENOMEM;
    }
    c->scratch.owned = v;
    v[c->scratch.n_owned++] = str;
    return 0;
}

/* Extra headers: a list of "Name: value" strings, or nydusd's mapping {Name: value}. */
static int get_headers(Ctx *c, const ConfigNode *map, const char *key, const char *const **out, size_t *n_out)
{
    const ConfigNode *n = config_node_get(map, key);
    if (!n || n->kind != CONFIG_NODE_MAP)
        return get_str_list(c, map, key, out, n_out);
    const char **v = NULL;
    int r = scratch_list(c, n, key, &v);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n->n_items; i++) {
        const ConfigNode *h = &n->items[i];
        char *line;
        if (h->kind != CONFIG_NODE_SCALAR)
            return fail(c, h, key, "expected a header value");
        if (asprintf(&line, "%s: %s", h->key, h->value) < 0)
            return -ENOMEM;
        if ((r = scratch_own(c, line)) < 0)
            return r;
        v[i] = line;
    }
    *out = v;
    *n_out = n->n_items;
    return 0;
}

/* Keys of `map` not in `known` are mistakes worth reporting. */
static int check_keys(Ctx *c, const ConfigNode *map, const char *const *known)
{
    for (size_t i = 0; i < map->n_items; i++) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, map->items[i].key) == 0;
        if (!ok)
            return fail(c, &map->items[i], map->items[i].key, "unknown key");
    }
    return 0;
}

static const char *const http_common_keys[] = {
    "skip_verify", "ca_cert_files", "timeout", "connect_timeout", "retry_limit", "proxy", "headers",
};

static int parse_proxy(Ctx *c, const ConfigNode *n, ProxyConfig *p)
{
    static const char *const keys[] = { "url", "ping_url", "fallback", "check_interval", "use_http",
                                        "check_pause_elapsed", NULL };
    if (n->kind != CONFIG_NODE_MAP)
        return fail(c, n, "proxy", "expected a mapping");
    int r;
    if ((r = check_keys(c, n, keys)) < 0 || (r = get_str(c, n, "url", &p->url)) < 0 ||
        (r = get_str(c, n, "ping_url", &p->ping_url)) < 0 || (r = get_bool(c, n, "fallback", &p->fallback)) < 0 ||
        (r = get_u32(c, n, "check_interval", 86400, &p->check_interval_s)) < 0 ||
        (r = get_u32(c, n, "check_pause_elapsed", 86400, &p->check_pause_elapsed_s)) < 0 ||
        (r = get_bool(c, n, "use_http", &p->use_http)) < 0)
        return r;
    return 0;
}

static int parse_http_common(Ctx *c, const ConfigNode *m, HttpCommonConfig *h)
{
    int r;
    if ((r = get_bool(c, m, "skip_verify", &h->skip_verify)) < 0 ||
        (r = get_str_list(c, m, "ca_cert_files", &h->ca_cert_files, &h->n_ca_cert_files)) < 0 ||
        (r = get_u32(c, m, "timeout", 3600, &h->timeout_s)) < 0 ||
        (r = get_u32(c, m, "connect_timeout", 3600, &h->connect_timeout_s)) < 0 ||
        (r = get_u32(c, m, "retry_limit", 100, &h->retry_limit)) < 0 ||
        (r = get_headers(c, m, "headers", &h->headers, &h->n_headers)) < 0)
        return r;
    const ConfigNode *proxy = config_node_get(m, "proxy");
    return proxy ? parse_proxy(c, proxy, &h->proxy) : 0;
}

static int parse_mirrors(Ctx *c, const ConfigNode *n, RegistryConfig *rc)
{
    static const char *const keys[] = { "host", "ping_url", "headers", "failure_limit",
                                        "health_check_interval", "health_check_pause_elapsed", NULL };
    if (n->kind != CONFIG_NODE_SEQ)
        return fail(c, n, "mirrors", "expected a list");
    c->scratch.mirrors = calloc(n->n_items ? n->n_items : 1, sizeof(MirrorConfig));
    if (!c->scratch.mirrors)
        return -ENOMEM;
    for (size_t i = 0; i < n->n_items; i++) {
        const ConfigNode *m = &n->items[i];
        MirrorConfig *mc = &c->scratch.mirrors[i];
        mirror_config_init(mc);
        c->scratch.n_mirrors = i + 1;
        if (m->kind != CONFIG_NODE_MAP)
            return fail(c, m, "mirrors", "each mirror is a mapping");
        int r;
        if ((r = check_keys(c, m, keys)) < 0 || (r = get_str(c, m, "host", &mc->host)) < 0 ||
            (r = get_str(c, m, "ping_url", &mc->ping_url)) < 0 ||
            (r = get_headers(c, m, "headers", &mc->headers, &mc->n_headers)) < 0 ||
            (r = get_u32(c, m, "failure_limit", 1000, &mc->failure_limit)) < 0 ||
            (r = get_u32(c, m, "health_check_interval", 86400, &mc->health_check_interval_s)) < 0 ||
            (r = get_u32(c, m, "health_check_pause_elapsed", 86400, &mc->health_check_pause_elapsed_s)) < 0)
            return r;
        if (!mc->host)
            return fail(c, m, "mirrors", "a mirror needs 'host'");
    }
    rc->mirrors = c->scratch.mirrors;
    rc->n_mirrors = n->n_items;
    return 0;
}

/* Known keys = the type's own keys + the common HTTP keys + "type". */
static int check_remote_keys(Ctx *c, const ConfigNode *m, const char *const *own)
{
    const char *known[48];
    size_t n = 0;
    known[n++] = "type";
    for (size_t i = 0; i < CFN_ARRAY_SIZE(http_common_keys); i++)
        known[n++] = http_common_keys[i];
    for (; *own && n < CFN_ARRAY_SIZE(known) - 1; own++)
        known[n++] = *own;
    known[n] = NULL;
    return check_keys(c, m, known);
}

static int build_remote(Ctx *c, Backend **ret, Loop *loop)
{
    const ConfigNode *m = &c->cfg->fields;
    int r;
    switch (c->cfg->type) {
    case BACKEND_TYPE_REGISTRY: {
        static const char *const keys[] = { "scheme", "host", "repo", "auth", "registry_token", "docker_config",
                                            "blob_url_scheme", "blob_redirected_host", "mirrors", NULL };
        RegistryConfig rc;
        registry_config_init(&rc);
        if ((r = check_remote_keys(c, m, keys)) < 0 || (r = parse_http_common(c, m, &rc.http)) < 0 ||
            (r = get_str(c, m, "scheme", &rc.scheme)) < 0 || (r = get_str(c, m, "host", &rc.host)) < 0 ||
            (r = get_str(c, m, "repo", &rc.repo)) < 0 || (r = get_str(c, m, "auth", &rc.auth)) < 0 ||
            (r = get_str(c, m, "registry_token", &rc.registry_token)) < 0 ||
            (r = get_str(c, m, "docker_config", &rc.docker_config)) < 0 ||
            (r = get_str(c, m, "blob_url_scheme", &rc.blob_url_scheme)) < 0 ||
            (r = get_str(c, m, "blob_redirected_host", &rc.blob_redirected_host)) < 0)
            return r;
        const ConfigNode *mirrors = config_node_get(m, "mirrors");
        if (mirrors && (r = parse_mirrors(c, mirrors, &rc)) < 0)
            return r;
        if (!rc.host || !rc.repo)
            return fail(c, m, NULL, "a registry backend needs 'host' and 'repo'");
        r = backend_registry_new(ret, loop, &rc);
        break;
    }
    case BACKEND_TYPE_S3: {
        static const char *const keys[] = { "scheme", "endpoint", "region", "bucket_name", "object_prefix",
                                            "access_key_id", "access_key_secret", "session_token", "path_style",
                                            NULL };
        S3Config sc;
        s3_config_init(&sc);
        if ((r = check_remote_keys(c, m, keys)) < 0 || (r = parse_http_common(c, m, &sc.http)) < 0 ||
            (r = get_str(c, m, "scheme", &sc.scheme)) < 0 || (r = get_str(c, m, "endpoint", &sc.endpoint)) < 0 ||
            (r = get_str(c, m, "region", &sc.region)) < 0 || (r = get_str(c, m, "bucket_name", &sc.bucket_name)) < 0 ||
            (r = get_str(c, m, "object_prefix", &sc.object_prefix)) < 0 ||
            (r = get_str(c, m, "access_key_id", &sc.access_key_id)) < 0 ||
            (r = get_str(c, m, "access_key_secret", &sc.access_key_secret)) < 0 ||
            (r = get_str(c, m, "session_token", &sc.session_token)) < 0 ||
            (r = get_bool(c, m, "path_style", &sc.path_style)) < 0)
            return r;
        if (!sc.bucket_name)
            return fail(c, m, NULL, "an s3 backend needs 'bucket_name'");
        r = backend_s3_new(ret, loop, &sc);
        break;
    }
    case BACKEND_TYPE_OSS: {
        static const char *const keys[] = { "scheme", "endpoint", "bucket_name", "object_prefix", "access_key_id",
                                            "access_key_secret", NULL };
        OssConfig oc;
        oss_config_init(&oc);
        if ((r = check_remote_keys(c, m, keys)) < 0 || (r = parse_http_common(c, m, &oc.http)) < 0 ||
            (r = get_str(c, m, "scheme", &oc.scheme)) < 0 || (r = get_str(c, m, "endpoint", &oc.endpoint)) < 0 ||
            (r = get_str(c, m, "bucket_name", &oc.bucket_name)) < 0 ||
            (r = get_str(c, m, "object_prefix", &oc.object_prefix)) < 0 ||
            (r = get_str(c, m, "access_key_id", &oc.access_key_id)) < 0 ||
            (r = get_str(c, m, "access_key_secret", &oc.access_key_secret)) < 0)
            return r;
        if (!oc.endpoint || !oc.bucket_name)
            return fail(c, m, NULL, "an oss backend needs 'endpoint' and 'bucket_name'");
        r = backend_oss_new(ret, loop, &oc);
        break;
    }
    case BACKEND_TYPE_HTTP_PROXY: {
        static const char *const keys[] = { "addr", "path", NULL };
        HttpProxyBackendConfig hc;
        http_proxy_backend_config_init(&hc);
        if ((r = check_remote_keys(c, m, keys)) < 0 || (r = parse_http_common(c, m, &hc.http)) < 0 ||
            (r = get_str(c, m, "addr", &hc.addr)) < 0 || (r = get_str(c, m, "path", &hc.path)) < 0)
            return r;
        if (!hc.addr)
            return fail(c, m, NULL, "an http-proxy backend needs 'addr'");
        r = backend_http_proxy_new(ret, loop, &hc);
        break;
    }
    default:
        return -EINVAL;
    }
    if (r < 0)
        return fail(c, m, NULL, "the backend rejected this configuration: %s (details at --log-level debug)",
                    strerror(-r));
    return 0;
}

int backend_factory_new(Backend **ret, Loop *loop, const BackendConfig *cfg, char *err, size_t err_len)
{
    if (cfg->type == BACKEND_TYPE_LOCALFS) {
        int r = backend_localfs_new(ret, loop, cfg->dir);
        if (r < 0)
            snprintf(err, err_len, "localfs backend: cannot open %s: %s", cfg->dir, strerror(-r));
        return r;
    }
    Ctx c = { .cfg = cfg, .err = err, .err_len = err_len };
    int r = build_remote(&c, ret, loop);
    for (size_t i = 0; i < c.scratch.n_strs; i++)
        free(c.scratch.strs[i]);
    for (size_t i = 0; i < c.scratch.n_owned; i++) {
        explicit_bzero(c.scratch.owned[i], strlen(c.scratch.owned[i]));
        free(c.scratch.owned[i]);
    }
    free(c.scratch.owned);
    free(c.scratch.mirrors);
    return r;
}

/* ---- which keys hold secrets (for the config file's mode check) ---- */

/* A `headers` list ("Name: value") or mapping with a credential header. */
static bool headers_hold_secret(const ConfigNode *h)
{
    for (size_t i = 0; h && i < h->n_items; i++) {
        const ConfigNode *it = &h->items[i];
        if (h->kind == CONFIG_NODE_MAP && hcommon_header_is_credential(it->key))
            return true;
        if (h->kind == CONFIG_NODE_SEQ && it->kind == CONFIG_NODE_SCALAR && hcommon_header_is_credential(it->value))
            return true;
    }
    return false;
}

static bool scalar_set(const ConfigNode *map, const char *key)
{
    const ConfigNode *n = config_node_get(map, key);
    return n && n->kind == CONFIG_NODE_SCALAR && n->value[0];
}

static bool url_key_holds_secret(const ConfigNode *map, const char *key)
{
    const ConfigNode *n = config_node_get(map, key);
    return n && n->kind == CONFIG_NODE_SCALAR && hcommon_url_has_userinfo(n->value);
}

static const char *key_path(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *key_path(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return buf;
}

const char *backend_config_secret_key(const BackendConfig *cfg, char *buf, size_t cap)
{
    static const char *const keys[] = { "auth", "registry_token", "access_key_secret", "session_token" };
    const ConfigNode *m = &cfg->fields;
    if (cfg->type == BACKEND_TYPE_LOCALFS || m->kind != CONFIG_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < CFN_ARRAY_SIZE(keys); i++)
        if (scalar_set(m, keys[i]))
            return key_path(buf, cap, "%s", keys[i]);
    if (headers_hold_secret(config_node_get(m, "headers")))
        return key_path(buf, cap, "headers");
    const ConfigNode *proxy = config_node_get(m, "proxy");
    if (proxy && url_key_holds_secret(proxy, "url"))
        return key_path(buf, cap, "proxy.url");
    const ConfigNode *mirrors = config_node_get(m, "mirrors");
    for (size_t i = 0; mirrors && mirrors->kind == CONFIG_NODE_SEQ && i < mirrors->n_items; i++) {
        const ConfigNode *mi = &mirrors->items[i];
        if (headers_hold_secret(config_node_get(mi, "headers")))
            return key_path(buf, cap, "mirrors[%zu].headers", i);
        if (url_key_holds_secret(mi, "host"))
            return key_path(buf, cap, "mirrors[%zu].host", i);
    }
    return NULL;
}
