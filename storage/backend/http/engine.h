/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The HTTP engine: libcurl's multi-socket API driven from the daemon's
 * io_uring loop. Socket readiness comes from one-shot io_uring polls, curl's
 * timer is a LoopTimer; nothing here ever blocks the loop.
 *
 * An HttpXfer is one logical request. The engine runs it with bounded
 * concurrency (overall, per host:port and per group, where a group is
 * normally a blob), retries connection errors, timeouts, short bodies, 5xx
 * and 429 with exponential back-off and jitter, and validates ranged
 * responses: only 206 with a Content-Range equal to the requested range, or
 * 200 carrying exactly the whole object when the range covered it, with
 * exactly the requested number of bytes, are ever written to the caller's
 * buffer. Everything the network says is bounded: header bytes, the headers
 * kept, body sizes.
 *
 * This is the one place where CURLcode becomes -errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/util/loop.h"

typedef struct HttpEngine HttpEngine;
typedef struct HttpXfer HttpXfer;
typedef struct HttpSlot HttpSlot;

#define HTTP_MAX_HEADER_BYTES   (64u * 1024)   /* all header lines of one response */
#define HTTP_MAX_LOCATION       8192u
#define HTTP_MAX_WWW_AUTH       4096u
#define HTTP_MAX_ERROR_BODY     (64u * 1024)   /* drained from a non-2xx response */

typedef struct HttpEngineLimits {
    unsigned max_requests;            /* default 64 */
    unsigned max_requests_per_host;   /* default 32 */
    unsigned max_requests_per_group;  /* default 16 */
} HttpEngineLimits;

/* Transport settings of one backend; borrowed by its xfers, must outlive them. */
typedef struct HttpTransport {
    uint32_t connect_timeout_ms;      /* 0 = curl default */
    uint32_t timeout_ms;              /* per attempt; 0 = none */
    uint32_t low_speed_limit;         /* bytes/s; with low_speed_time_s */
    uint32_t low_speed_time_s;        /* 0 = off */
    unsigned retry_limit;
    uint32_t retry_base_ms;
    uint32_t retry_max_ms;
    bool skip_verify;
    const void *ca_blob;              /* PEM bundle (system roots + extras) or NULL */
    size_t ca_blob_len;
    const char *unix_socket;          /* connect here instead of the URL's host */
    const char *user_agent;
    const char *aws_sigv4;            /* "aws:amz:<region>:s3"; NULL = no SigV4 */
    const char *username;             /* SigV4 key id (secret-free) */
    const char *password;             /* SigV4 secret: never logged */
} HttpTransport;

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST };

enum http_xfer_state { HTTP_XFER_IDLE, HTTP_XFER_PENDING, HTTP_XFER_ACTIVE,
                       HTTP_XFER_BACKOFF, HTTP_XFER_FAILED };

typedef struct HttpResponse {
    long status;                      /* 0 when no response was received */
    int http_version;                 /* 10, 11, 20 (0 = unknown) */
    uint64_t content_length;          /* UINT64_MAX when absent */
    uint64_t object_size;             /* from Content-Range's complete length, or a 200's
                                       * length; UINT64_MAX when unknown */
    size_t body_len;                  /* bytes stored in buf */
    char *location;                   /* Location value or NULL (engine-owned) */
    char *www_authenticate;           /* all WWW-Authenticate values joined by ", " or NULL */
    uint32_t retry_after_s;
    unsigned attempts;
} HttpResponse;

struct HttpXfer {
    /* ---- request, set by the caller before http_xfer_submit() ---- */
    const HttpTransport *tp;
    enum http_method method;
    const char *url;                  /* borrowed until done() */
    const char *const *headers;       /* NULL-terminated "Name: value" list, borrowed */
    const void *post_body;            /* HTTP_POST (copied at start) */
    size_t post_len;
    const char *group;                /* concurrency group (blob id) or NULL; borrowed */
    const char *proxy;                /* proxy URL for this request or NULL (env proxies are
                                       * always ignored) */
    bool ranged;                      /* GET [range_off, range_off + range_len) into buf */
    uint64_t range_off;
    uint32_t range_len;
    void *buf;                        /* body sink of a 2xx response: exactly range_len bytes
                                       * when ranged, at most buf_cap bytes otherwise */
    size_t buf_cap;
    int retry_limit;                  /* < 0: tp->retry_limit */
    void (*done)(HttpXfer *x, int res);   /* on the loop thread, never inside submit():
                                           * 0 = a response is in resp (any status; for a
                                           * ranged 2xx the data is complete and checked),
                                           * or -errno */
    /* ---- result ---- */
    HttpResponse resp;

    /* ---- engine-private ---- */
    HttpEngine *eng;
    enum http_xfer_state state;
    void *easy;
    void *slist;
    HttpXfer *prev, *next;
    HttpSlot *host_slot, *group_slot;
    LoopTimer backoff;
    int abort_err;                    /* why a callback aborted the transfer */
    int deferred_res;
    bool head_checked, body_ok, status_final;
    struct { bool have, bad; uint64_t first, last, total; } cr;   /* Content-Range */
    size_t hdr_bytes, drained;
    char errbuf[256];
};

int http_engine_new(HttpEngine **ret, Loop *loop, const HttpEngineLimits *limits);
HttpEngine *http_engine_ref(HttpEngine *e);
/* Drops a reference. The last one cancels leftover xfers (without done()),
 * closes every connection and frees the engine once the loop has reaped its
 * pending polls (keep running the loop a little before loop_free()). */
HttpEngine *http_engine_unref(HttpEngine *e);
Loop *http_engine_loop(const HttpEngine *e);

void http_engine_limits_default(HttpEngineLimits *l);
void http_transport_default(HttpTransport *tp);

/* Initialise x (all zero, retry_limit -1) before filling the request fields. */
void http_xfer_init(HttpXfer *x);
/* 0: queued, done() follows; -errno: rejected, done() will not run. */
int http_xfer_submit(HttpEngine *e, HttpXfer *x);
/* Stop x if it is queued, running or waiting to retry; done() will not run. */
void http_xfer_cancel(HttpXfer *x);
/* Free the response strings; x can then be resubmitted or dropped. */
void http_xfer_reset(HttpXfer *x);

/* Map a final HTTP status to -errno (2xx -> 0). */
int http_status_to_errno(long status);
/* True for results worth trying elsewhere (mirror/proxy fallback). */
bool http_error_is_transport(int res);

typedef struct HttpEngineStats {
    uint64_t requests;                /* xfers completed */
    uint64_t attempts;                /* transfers started (including retries) */
    uint64_t retries;
    uint64_t sockets_opened;
    uint64_t h2_responses;
    uint64_t bytes;                   /* body bytes stored */
    unsigned active, pending;
} HttpEngineStats;
void http_engine_stats(const HttpEngine *e, HttpEngineStats *out);

/* URL with userinfo, query and fragment removed, for logs. Always NUL-terminated. */
void http_url_redact(const char *url, char *out, size_t cap);

/* URL helpers on curl's URL parser (http and https only). 0 or -errno. */
/* Resolve a (possibly relative) Location against the request URL. */
int http_url_resolve(const char *base, const char *location, char **out);
/* Replace the scheme and/or "host[:port]" of url (NULL/"" = keep). */
int http_url_rewrite(const char *url, const char *scheme, const char *hostport, char **out);
/* Same scheme, host and (effective) port. */
bool http_url_same_origin(const char *a, const char *b);
/* Percent-encode everything but RFC 3986 unreserved characters (and '/' when
 * keep_slash). Returns the length, or -E2BIG when it does not fit in cap. */
int http_url_escape(const char *in, bool keep_slash, char *out, size_t cap);

/* libcurl's built-in CA bundle path (malloc'd) or -ENOENT. */
int http_default_ca_path(char **out);
