/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Registry authentication for one host (the origin or a mirror): anonymous,
 * HTTP Basic, a static bearer token, and the distribution token flow. A 401
 * carries WWW-Authenticate challenges (parsed by RFC 7235 rules); for Bearer
 * a token is fetched from the realm with service and scope (GET with Basic
 * credentials, or POST grant_type=refresh_token when an identity token is
 * configured), cached until shortly before it expires, and refreshed once
 * when a request sent with it still gets a 401. Concurrent requests share one
 * fetch. Token requests go directly to the realm, never through the proxy.
 *
 * Secrets never reach a log line. Credentials (Basic user:password, the
 * identity token) go only to the origin they were configured for and to the
 * token realm that origin names, and to that realm only when it is https or
 * is the same origin (scheme, host and port). Docker and containerd likewise
 * send credentials to whatever realm the registry names; TLS is what keeps
 * them from an eavesdropper or a spoofed host. A realm that may not have them
 * is asked for an anonymous token.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

typedef struct AuthRoute AuthRoute;
typedef struct AuthWaiter AuthWaiter;

struct AuthWaiter {
    void (*fn)(AuthWaiter *w, int res);   /* 0 = retry with the new header */
    AuthWaiter *next;
    bool queued;
};

typedef struct AuthRouteConfig {
    const char *host;               /* for log lines (no userinfo) */
    const char *origin;             /* "scheme://host[:port]" the credentials belong to */
    const char *basic;              /* base64("user:pass") or NULL */
    const char *identity_token;     /* OAuth2 refresh token (docker identitytoken) or NULL */
    const char *static_token;       /* bearer token used until a challenge says otherwise */
    const char *default_scope;      /* "repository:<repo>:pull" when a challenge has none */
} AuthRouteConfig;

int auth_route_new(AuthRoute **ret, HttpEngine *e, const HttpTransport *tp, const AuthRouteConfig *c);
/* Waiters still queued get -ECANCELED. */
AuthRoute *auth_route_free(AuthRoute *r);

/* Before sending: 1 = go ahead, 0 = a token refresh is running and w->fn follows. */
int auth_route_prepare(AuthRoute *r, AuthWaiter *w);
/* A malloc'd "Authorization: ..." line (NULL when anonymous) and the credential
 * generation it belongs to. 0 or -ENOMEM. */
int auth_route_header(AuthRoute *r, char **line, uint64_t *gen);
/* A request sent with credential `gen` got 401 with this WWW-Authenticate.
 * 1 = retry now (new credentials), 0 = w->fn follows, -errno = give up. */
int auth_route_challenge(AuthRoute *r, const char *www_auth, uint64_t gen, AuthWaiter *w);
void auth_route_cancel(AuthRoute *r, AuthWaiter *w);

/* May credentials for `origin` go to the token realm URL `realm`? (https, or the same origin) */
bool auth_realm_may_get_credentials(const char *origin, const char *realm);

/* For tests: token fetches performed so far. */
unsigned auth_route_fetches(const AuthRoute *r);
