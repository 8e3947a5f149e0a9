/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "challenge.h"
#include "json.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

#define AUTH_TOKEN_MAX      16384u
#define AUTH_BODY_MAX       (256u * 1024)
#define AUTH_TTL_DEFAULT_S  60u             /* distribution token spec */
#define AUTH_TTL_MAX_S      (7u * 86400)
#define AUTH_CLIENT_ID      "cachefilesd-nydus"

enum auth_scheme { AUTH_ANON, AUTH_BASIC, AUTH_BEARER };

struct AuthRoute {
    HttpEngine *eng;
    const HttpTransport *tp;
    char *host;
    char *origin;
    char *basic_line;               /* "Authorization: Basic ..." */
    char *identity;
    char *default_scope;
    enum auth_scheme scheme;
    uint64_t gen;

    char *token;                    /* bearer token (static or fetched) */
    uint64_t expiry_ns;             /* 0 = never (static token) */
    bool have_challenge;
    char realm[1024], service[256], scope[1024];

    bool fetching, fetch_post;
    bool realm_warned;              /* said why credentials stay home */
    HttpXfer xfer;
    char *fetch_url;
    char *fetch_body;
    char *post_body;
    char *fetch_auth_line;
    const char *fetch_hdrs[3];
    AuthWaiter *waiters, *waiters_tail;   /* FIFO */
    unsigned fetches;
    unsigned notifying;
    bool dying;                     /* freed while notifying: finish afterwards */
};

static void secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

unsigned auth_route_fetches(const AuthRoute *r) { return r->fetches; }

int auth_route_new(AuthRoute **ret, HttpEngine *e, const HttpTransport *tp, const AuthRouteConfig *c)
{
    AuthRoute *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->eng = http_engine_ref(e);
    r->tp = tp;
    r->host = strdup(c->host ? c->host : "");
    r->origin = strdup(c->origin ? c->origin : "");
    r->default_scope = strdup(c->default_scope ? c->default_scope : "");
    bool oom = !r->host || !r->origin || !r->default_scope;
    if (c->basic && *c->basic) {
        size_t n = strlen(c->basic) + sizeof("Authorization: Basic ");
        r->basic_line = malloc(n);
        if (r->basic_line)
            snprintf(r->basic_line, n, "Authorization: Basic %s", c->basic);
        oom |= !r->basic_line;
    }
    if (c->identity_token && *c->identity_token)
        oom |= !(r->identity = strdup(c->identity_token));
    if (c->static_token && *c->static_token) {
        oom |= !(r->token = strdup(c->static_token));
        r->scheme = AUTH_BEARER;
    }
    r->gen = 1;
    http_xfer_init(&r->xfer);
    if (oom) {
        auth_route_free(r);
        return -ENOMEM;
    }
    *ret = r;
    return 0;
}

static void auth_route_destroy(AuthRoute *r)
{
    http_xfer_reset(&r->xfer);
    http_engine_unref(r->eng);
    free(r->host);
    free(r->origin);
    free(r->default_scope);
    secret_free(r->basic_line);
    secret_free(r->identity);
    secret_free(r->token);
    free(r->fetch_url);
    free(r->fetch_body);
    secret_free(r->post_body);
    secret_free(r->fetch_auth_line);
    free(r);
}

/* Wake waiters one at a time from the live list, so a callback may cancel
 * other waiters or free the route (which is then finished here). */
static void auth_notify(AuthRoute *r, int res)
{
    r->notifying++;
    AuthWaiter *w;
    while ((w = r->waiters)) {
        r->waiters = w->next;
        if (!r->waiters)
            r->waiters_tail = NULL;
        w->next = NULL;
        w->queued = false;
        w->fn(w, r->dying ? -ECANCELED : res);
    }
    if (--r->notifying == 0 && r->dying)
        auth_route_destroy(r);
}

AuthRoute *auth_route_free(AuthRoute *r)
{
    if (!r || r->dying)
        return NULL;
    if (r->fetching)
        http_xfer_cancel(&r->xfer);
    r->fetching = false;
    r->dying = true;
    if (r->notifying)
        return NULL;        /* auth_notify finishes the job */
    auth_notify(r, -ECANCELED);
    return NULL;
}

static void auth_wait(AuthRoute *r, AuthWaiter *w)
{
    w->next = NULL;
    w->queued = true;
    if (r->waiters_tail)
        r->waiters_tail->next = w;
    else
        r->waiters = w;
    r->waiters_tail = w;
}

void auth_route_cancel(AuthRoute *r, AuthWaiter *w)
{
    if (!w->queued)
        return;
    AuthWaiter *prev = NULL;
    for (AuthWaiter *it = r->waiters; it; prev = it, it = it->next) {
        if (it != w)
            continue;
        if (prev)
            prev->next = w->next;
        else
            r->waiters = w->next;
        if (r->waiters_tail == w)
            r->waiters_tail = prev;
        break;
    }
    w->next = NULL;
    w->queued = false;
}

/* Token responses are hostile too: a token must be a plain header-safe word. */
static bool token_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > AUTH_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return false;
    return true;
}

static int auth_parse_token(AuthRoute *r, const char *body, size_t len)
{
    JsonValue root, v;
    if (json_parse(body, len, &root) < 0 || root.type != JSON_OBJECT)
        return -EPROTO;
    char *tok = malloc(AUTH_TOKEN_MAX + 1);
    if (!tok)
        return -ENOMEM;
    int n = -ENOENT;
    if (json_object_get(&root, "token", &v) == 0 && v.type == JSON_STRING)
        n = json_string(&v, tok, AUTH_TOKEN_MAX + 1);
    if ((n <= 0) && json_object_get(&root, "access_token", &v) == 0 && v.type == JSON_STRING)
        n = json_string(&v, tok, AUTH_TOKEN_MAX + 1);
    if (n <= 0 || !token_ok(tok)) {
        explicit_bzero(tok, AUTH_TOKEN_MAX + 1);
        free(tok);
        return -EPROTO;
    }
    uint64_t ttl = AUTH_TTL_DEFAULT_S;
    if (json_object_get(&root, "expires_in", &v) == 0 && json_u64(&v, &ttl) < 0)
        ttl = AUTH_TTL_DEFAULT_S;
    ttl = CFN_MIN(CFN_MAX(ttl, (uint64_t)1), (uint64_t)AUTH_TTL_MAX_S);
    /* Refresh shortly before expiry: a tenth of the lifetime, at most 30 s. */
    uint64_t ttl_ms = ttl * 1000, margin_ms = CFN_MIN(ttl_ms / 10, (uint64_t)30000);
    secret_free(r->token);
    r->token = strdup(tok);
    explicit_bzero(tok, AUTH_TOKEN_MAX + 1);
    free(tok);
    if (!r->token)
        return -ENOMEM;
    r->expiry_ns = loop_now_ns() + (ttl_ms - margin_ms) * 1000000ull;
    r->gen++;
    log_debug("auth: %s: bearer token for scope '%s' valid for %" PRIu64 " s", r->host, r->scope, ttl);
    return 0;
}

static int auth_fetch_start(AuthRoute *r);

static void auth_fetch_done(HttpXfer *x, int res)
{
    AuthRoute *r = cfn_container_of(x, AuthRoute, xfer);
    long st = x->resp.status;
    if (res == 0 && r->fetch_post && (st == 404 || st == 405 || st == 400) ) {
        /* The realm does not speak OAuth2 POST: use the token GET. */
        log_debug("auth: %s: token POST got %ld, trying GET", r->host, st);
        r->fetch_post = false;
        secret_free(r->identity);
        r->identity = NULL;
        http_xfer_reset(x);
        int s = auth_fetch_start(r);
        if (s == 0)
            return;
        res = s;
    }
    if (res == 0) {
        if (st == 200)
            res = auth_parse_token(r, r->fetch_body, x->resp.body_len);
        else
            res = st == 401 || st == 403 ? -EACCES : (http_status_to_errno(st) ?: -EPROTO);
    }
    if (res < 0)
        log_debug("auth: %s: token request failed: %s", r->host, strerror(-res));
    http_xfer_reset(x);
    r->fetching = false;
    auth_notify(r, res < 0 ? res : 0);
}

static int append(char *buf, size_t cap, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n >= cap)
        return -E2BIG;
    memcpy(buf + *o, s, n + 1);
    *o += n;
    return 0;
}

static int append_param(char *buf, size_t cap, size_t *o, const char *sep, const char *name,
                        const char *val)
{
    char enc[4096];
    if (http_url_escape(val, false, enc, sizeof(enc)) < 0)
        return -E2BIG;
    int r = append(buf, cap, o, sep);
    if (r == 0)
        r = append(buf, cap, o, name);
    if (r == 0)
        r = append(buf, cap, o, "=");
    if (r == 0)
        r = append(buf, cap, o, enc);
    return r;
}

bool auth_realm_may_get_credentials(const char *origin, const char *realm)
{
    return strncasecmp(realm, "https://", 8) == 0 || http_url_same_origin(origin, realm);
}

static int auth_fetch_start(AuthRoute *r)
{
    if (strncasecmp(r->realm, "https://", 8) != 0 && strncasecmp(r->realm, "http://", 7) != 0)
        return -EACCES;
    bool send_creds = auth_realm_may_get_credentials(r->origin, r->realm);
    if (!send_creds && (r->basic_line || r->identity) && !r->realm_warned) {
        /* Once per route: a private registry would otherwise fail with a bare EACCES. */
        char u[256];
        http_url_redact(r->realm, u, sizeof(u));
        log_warn("auth: %s: its token realm %s is another origin over plain http: asking it for an "
                 "anonymous token, since credentials go to another origin over https only", r->host, u);
        r->realm_warned = true;
    }
    const char *scope = r->scope[0] ? r->scope : r->default_scope;
    size_t cap = 8192, o = 0;
    char *url = malloc(cap);
    if (!url)
        return -ENOMEM;
    int res = append(url, cap, &o, r->realm);
    r->fetch_post = r->identity != NULL && send_creds;
    free(r->post_body);
    r->post_body = NULL;
    if (!r->fetch_post) {
        const char *sep = strchr(r->realm, '?') ? "&" : "?";
        if (res == 0 && r->service[0]) {
            res = append_param(url, cap, &o, sep, "service", r->service);
            sep = "&";
        }
        if (res == 0 && scope[0])
            res = append_param(url, cap, &o, sep, "scope", scope);
    } else {
        size_t pcap = 8192 + strlen(r->identity) * 3, po = 0;
        r->post_body = malloc(pcap);
        if (!r->post_body)
            res = -ENOMEM;
        if (res == 0) {
            r->post_body[0] = '\0';
            res = append_param(r->post_body, pcap, &po, "", "grant_type", "refresh_token");
        }
        if (res == 0)
            res = append_param(r->post_body, pcap, &po, "&", "service", r->service);
        if (res == 0)
            res = append_param(r->post_body, pcap, &po, "&", "scope", scope);
        if (res == 0)
            res = append_param(r->post_body, pcap, &po, "&", "client_id", AUTH_CLIENT_ID);
        if (res == 0) {
            /* The refresh token may be long: encode it straight in. */
            res = append(r->post_body, pcap, &po, "&refresh_token=");
            if (res == 0) {
                int n = http_url_escape(r->identity, false, r->post_body + po, pcap - po);
                res = n < 0 ? n : 0;
                if (n >= 0)
                    po += (size_t)n;
            }
        }
    }
    if (res < 0) {
        free(url);
        return res;
    }
    free(r->fetch_url);
    r->fetch_url = url;
    if (!r->fetch_body && !(r->fetch_body = malloc(AUTH_BODY_MAX)))
        return -ENOMEM;

    size_t nh = 0;
    secret_free(r->fetch_auth_line);
    r->fetch_auth_line = NULL;
    if (r->fetch_post) {
        r->fetch_hdrs[nh++] = "Content-Type: application/x-www-form-urlencoded";
    } else if (r->basic_line && send_creds) {
        r->fetch_hdrs[nh++] = r->basic_line;
    }
    r->fetch_hdrs[nh] = NULL;

    HttpXfer *x = &r->xfer;
    x->tp = r->tp;
    x->method = r->fetch_post ? HTTP_POST : HTTP_GET;
    x->url = r->fetch_url;
    x->headers = r->fetch_hdrs;
    x->post_body = r->post_body;
    x->post_len = r->post_body ? strlen(r->post_body) : 0;
    x->buf = r->fetch_body;
    x->buf_cap = AUTH_BODY_MAX;
    x->proxy = NULL;
    x->done = auth_fetch_done;
    int s = http_xfer_submit(r->eng, x);
    if (s < 0)
        return s;
    r->fetching = true;
    r->fetches++;
    return 0;
}

/* Queue w for the token; one fetch serves every waiter. 0, or -errno when the fetch cannot start. */
static int auth_fetch_and_wait(AuthRoute *r, AuthWaiter *w)
{
    if (!r->fetching) {
        int s = auth_fetch_start(r);
        if (s < 0)
            return s;
    }
    auth_wait(r, w);
    return 0;
}

int auth_route_prepare(AuthRoute *r, AuthWaiter *w)
{
    if (r->scheme != AUTH_BEARER || !r->have_challenge)
        return 1;
    if (r->token && (r->expiry_ns == 0 || loop_now_ns() < r->expiry_ns))
        return 1;
    return auth_fetch_and_wait(r, w);
}

int auth_route_header(AuthRoute *r, char **line, uint64_t *gen)
{
    *gen = r->gen;
    *line = NULL;
    if (r->scheme == AUTH_BASIC && r->basic_line) {
        *line = strdup(r->basic_line);
        return *line ? 0 : -ENOMEM;
    }
    if (r->scheme == AUTH_BEARER && r->token) {
        size_t n = strlen(r->token) + sizeof("Authorization: Bearer ");
        *line = malloc(n);
        if (!*line)
            return -ENOMEM;
        snprintf(*line, n, "Authorization: Bearer %s", r->token);
    }
    return 0;
}

int auth_route_challenge(AuthRoute *r, const char *www_auth, uint64_t gen, AuthWaiter *w)
{
    AuthChallenge ch[AUTH_CHALLENGES_MAX];
    size_t n = 0;
    if (!www_auth || auth_challenge_parse(www_auth, ch, AUTH_CHALLENGES_MAX, &n) < 0 || !n) {
        log_debug("auth: %s: 401 without a usable WWW-Authenticate", r->host);
        return -EACCES;
    }
    const AuthChallenge *bearer = NULL, *basic = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!bearer && strcasecmp(ch[i].scheme, "Bearer") == 0)
            bearer = &ch[i];
        else if (!basic && strcasecmp(ch[i].scheme, "Basic") == 0)
            basic = &ch[i];
    }
    if (bearer) {
        if (!bearer->realm[0])
            return -EACCES;
        bool same = r->have_challenge && strcmp(r->realm, bearer->realm) == 0 &&
                    strcmp(r->service, bearer->service) == 0 && strcmp(r->scope, bearer->scope) == 0;
        if (same && r->token && r->gen != gen && !r->fetching &&
            (r->expiry_ns == 0 || loop_now_ns() < r->expiry_ns))
            return 1;       /* someone refreshed it while this request was out */
        if (!same && !r->fetching) {
            snprintf(r->realm, sizeof(r->realm), "%s", bearer->realm);
            snprintf(r->service, sizeof(r->service), "%s", bearer->service);
            snprintf(r->scope, sizeof(r->scope), "%s", bearer->scope);
            r->have_challenge = true;
        }
        if (r->scheme != AUTH_BEARER || r->gen == gen) {
            /* The credential this request used is stale. */
            secret_free(r->token);
            r->token = NULL;
        }
        r->scheme = AUTH_BEARER;
        return auth_fetch_and_wait(r, w);
    }
    if (basic && r->basic_line) {
        if (r->scheme == AUTH_BASIC && r->gen == gen)
            return -EACCES;     /* these credentials were refused */
        if (r->scheme != AUTH_BASIC) {
            r->scheme = AUTH_BASIC;
            r->gen++;
        }
        return 1;
    }
    log_debug("auth: %s: no credentials for the offered challenge", r->host);
    return -EACCES;
}
