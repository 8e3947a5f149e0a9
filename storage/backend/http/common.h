/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What every HTTP backend sets up from HttpCommonConfig: the engine (own or
 * shared), the transport (timeouts, retries, TLS roots), the proxy and the
 * extra headers. Also blob-id validation and the config defaults.
 */
#pragma once

#include "backend_config.h"
#include "engine.h"
#include "proxy.h"

#define HCOMMON_MAX_HEADERS 32

typedef struct HttpCommon {
    HttpEngine *eng;
    HttpTransport tp;
    HttpProxy *proxy;
    char *ca_blob;
    size_t ca_len;
    char *user_agent;
    char *headers[HCOMMON_MAX_HEADERS + 1];   /* NULL-terminated */
    size_t n_headers;
} HttpCommon;

int hcommon_init(HttpCommon *c, Loop *loop, const HttpCommonConfig *cfg);
void hcommon_fini(HttpCommon *c);

/* A header line "Name: value" without control characters. */
bool hcommon_header_ok(const char *h);
/* Is "Name: value" (or a bare "Name") Authorization or Proxy-Authorization? */
bool hcommon_header_is_credential(const char *h);
/*
 * A finished call's result for the backend request: its size (from
 * Content-Length; -EPROTO without one) or its full length, or the error.
 */
int hcommon_request_result(BackendRequest *req, uint64_t content_length, int res);
/* A bucket or endpoint name: non-empty, [A-Za-z0-9] plus the characters in extra. */
bool hcommon_host_name_ok(const char *s, const char *extra);
/* [A-Za-z0-9._-]{1,128} */
bool hcommon_blob_id_ok(const char *id);
/* 64 lowercase hex digits (a sha256 digest) */
bool hcommon_blob_digest_ok(const char *id);
/* False when an '@' follows the URL's authority: most likely a user:password
 * with an unencoded '/', '?' or '#', which curl would misparse and log lines
 * would show. For base URLs (mirrors, proxies), which need no '@' elsewhere. */
bool hcommon_url_userinfo_ok(const char *url);
/* Does the URL's authority carry "user[:password]@"? */
bool hcommon_url_has_userinfo(const char *url);
/* Duplicate with leading/trailing whitespace removed; NULL for unset/blank. */
int hcommon_strdup_trim(const char *s, char **out);
void hcommon_secret_free(char *s);
