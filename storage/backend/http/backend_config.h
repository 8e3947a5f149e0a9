/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Typed configuration of the remote backends: registry (OCI distribution),
 * S3, OSS and http-proxy. Field names follow nydusd's backend config
 * (nydus api/src/config.rs) so the YAML/JSON loader can map them one to one.
 *
 * Ownership: every string and array is borrowed for the duration of the
 * constructor call only; the backend copies what it keeps. A NULL string and
 * "" mean "unset". Call the *_config_init() function first: it sets every
 * default documented below, then override what the user configured.
 *
 * Secrets (auth, registry_token, access_key_secret, session_token, passwords
 * in docker config files) are never logged, never put in URLs, and are only
 * sent to the host they belong to.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/backend/backend.h"
#include "storage/util/loop.h"

typedef struct HttpEngine HttpEngine;

/*
 * nydusd's `proxy` section: a forward HTTP proxy such as a Dragonfly
 * dfdaemon that serves blobs peer to peer. Token requests and health pings
 * never go through it.
 */
typedef struct ProxyConfig {
    const char *url;                /* "http://127.0.0.1:65001"; unset = no proxy */
    const char *ping_url;           /* health check URL, GET, healthy on 2xx; unset = health
                                     * learnt from request outcomes only */
    bool fallback;                  /* default true: go direct when the proxy is unhealthy or
                                     * fails (transport error or status >= 500); false: fail */
    uint32_t check_interval_s;      /* default 5: ping (or re-probe) period */
    uint32_t check_pause_elapsed_s; /* default 300: no pings when no request for this long */
    bool use_http;                  /* default false: rewrite https:// to http:// through the
                                     * proxy so it can see (and cache) the request */
} ProxyConfig;

/*
 * One registry mirror (nydusd's removed `mirrors` list, kept for users of
 * older snapshotters). Mirrors are tried in order before the origin.
 */
typedef struct MirrorConfig {
    const char *host;               /* required: "http://m:5000" (scheme://[user:password@]host[:port][/prefix];
                                     * a user:password here is the mirror's own) */
    const char *ping_url;           /* default host + "/v2/": GET, healthy when status < 500 */
    const char *const *headers;     /* extra "Name: value" headers for this mirror only; an
                                     * Authorization here is the mirror's own credential.
                                     * The origin's auth/registry_token never go to a mirror;
                                     * its docker-config entry (by its host) does */
    size_t n_headers;
    uint32_t failure_limit;         /* default 5: consecutive transport/5xx failures before the
                                     * mirror is disabled until its ping succeeds */
    uint32_t health_check_interval_s;       /* default 5 */
    uint32_t health_check_pause_elapsed_s;  /* default 300: no pings when idle this long */
} MirrorConfig;

/* Fields shared by every HTTP backend (nydusd's common backend fields + ours). */
typedef struct HttpCommonConfig {
    bool skip_verify;               /* default false: verify TLS peers and host names */
    const char *const *ca_cert_files; /* extra PEM roots, added to the system bundle; default none */
    size_t n_ca_cert_files;
    uint32_t timeout_s;             /* default 5: whole-request timeout of one attempt; 0 = none */
    uint32_t connect_timeout_s;     /* default 5; 0 = curl's default (300 s) */
    uint32_t retry_limit;           /* default 3: retries after the first attempt on connection
                                     * errors, timeouts, 5xx, 429 and short bodies. (nydusd's
                                     * default is 0, ignored since v2.4.3 which retries 3 times.) */
    uint32_t retry_base_ms;         /* default 200: first back-off; doubles each retry, with
                                     * jitter in [d/2, d] */
    uint32_t retry_max_ms;          /* default 5000: back-off cap, also caps Retry-After */
    uint32_t low_speed_limit;       /* default 1024 bytes/s ... */
    uint32_t low_speed_time_s;      /* ... for default 30 s aborts a stalled attempt; 0 = off */
    const char *const *headers;     /* extra "Name: value" headers on every request to the
                                     * origin/mirror (nydusd's NYDUS_HEADER_*), except that an
                                     * Authorization/Proxy-Authorization goes to the registry
                                     * origin only, never to a mirror; default none */
    size_t n_headers;
    const char *user_agent;         /* default "cachefilesd-nydus/<version>" */
    ProxyConfig proxy;
    /* Engine limits, used when the backend creates its own engine. */
    uint32_t max_requests;          /* default 64: concurrent requests overall */
    uint32_t max_requests_per_host; /* default 32: concurrent requests to one host:port */
    uint32_t max_requests_per_blob; /* default 16: concurrent requests for one blob, so one
                                     * slow blob cannot take every per-host slot */
    /*
     * Runtime, not from the config file: share one engine (connection pool,
     * caps) between several backends. NULL = the backend creates its own.
     * The engine must run on the same Loop.
     */
    HttpEngine *engine;
} HttpCommonConfig;

/* backend_type "registry" */
typedef struct RegistryConfig {
    HttpCommonConfig http;
    const char *scheme;             /* "http" only when literally "http"; anything else = https */
    const char *host;               /* required: "host[:port]" */
    const char *repo;               /* required: "namespace/name" (no tag) */
    const char *auth;               /* base64("user:pass"); must decode to "a:b"; trimmed */
    const char *registry_token;     /* static bearer token; trimmed */
    const char *docker_config;      /* path of a docker config.json whose auths.<host>.auth or
                                     * .identitytoken supply credentials when `auth` is unset;
                                     * read once by the constructor; default unset */
    const char *blob_url_scheme;    /* rewrite the scheme of a redirect Location; default unset */
    const char *blob_redirected_host; /* rewrite the host[:port] of a redirect Location */
    const MirrorConfig *mirrors;    /* tried in order before the origin; default none */
    size_t n_mirrors;
    uint32_t redirect_cache_max;    /* default 1024 blobs whose redirect URL is remembered */
} RegistryConfig;

/* backend_type "s3" */
typedef struct S3Config {
    HttpCommonConfig http;
    const char *scheme;             /* default "https"; "http" when literally "http" */
    const char *endpoint;           /* default "s3.amazonaws.com": host[:port] */
    const char *region;             /* required when signing */
    const char *bucket_name;        /* required */
    const char *object_prefix;      /* default "": the key is prefix + blob id */
    const char *access_key_id;      /* unset (with the secret unset) = anonymous, unsigned */
    const char *access_key_secret;
    const char *session_token;      /* STS: sent as x-amz-security-token; default unset */
    bool path_style;                /* default true (nydusd): {endpoint}/{bucket}/{key};
                                     * false: virtual host {bucket}.{endpoint}/{key} */
} S3Config;

/* backend_type "oss" */
typedef struct OssConfig {
    HttpCommonConfig http;
    const char *scheme;             /* default "https" */
    const char *endpoint;           /* required: host[:port]; URL is {bucket}.{endpoint} */
    const char *bucket_name;        /* required */
    const char *object_prefix;      /* default "" */
    const char *access_key_id;      /* unset = anonymous (unsigned) */
    const char *access_key_secret;
} OssConfig;

/* backend_type "http-proxy": HEAD/GET {addr}{path}/{blob_id} */
typedef struct HttpProxyBackendConfig {
    HttpCommonConfig http;
    const char *addr;               /* required: "http://h:p", "https://h:p" or an absolute path
                                     * of a unix socket */
    const char *path;               /* default "": URL path prefix */
} HttpProxyBackendConfig;

void http_common_config_init(HttpCommonConfig *c);
void registry_config_init(RegistryConfig *c);
void mirror_config_init(MirrorConfig *c);
void s3_config_init(S3Config *c);
void oss_config_init(OssConfig *c);
void http_proxy_backend_config_init(HttpProxyBackendConfig *c);

/*
 * Constructors. 0 or -errno (-EINVAL for a bad config, with the reason
 * logged at debug). The backend runs on `loop`'s thread. Freeing a backend
 * with requests in flight completes them with -ECANCELED first.
 * BACKEND_READ needs blob ids that are 64 lowercase hex digits for the
 * registry, and [A-Za-z0-9._-]{1,128} for the others.
 */
int backend_registry_new(Backend **ret, Loop *loop, const RegistryConfig *cfg);
int backend_s3_new(Backend **ret, Loop *loop, const S3Config *cfg);
int backend_oss_new(Backend **ret, Loop *loop, const OssConfig *cfg);
int backend_http_proxy_new(Backend **ret, Loop *loop, const HttpProxyBackendConfig *cfg);
