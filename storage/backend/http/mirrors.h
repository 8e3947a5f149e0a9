/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Registry mirrors (nydusd's former `mirrors`): an ordered list tried before
 * the origin. Each failure (transport error or 5xx) counts; after
 * failure_limit consecutive ones the mirror is skipped until its ping_url
 * answers with a status < 500. Pings run every health_check_interval while
 * the mirror saw use within health_check_pause_elapsed.
 *
 * A mirror gets only credentials of its own: its headers, user:password in
 * its URL, or its entry in the docker config; never the origin's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "backend_config.h"
#include "engine.h"

typedef struct Mirrors Mirrors;

int mirrors_new(Mirrors **ret, HttpEngine *e, const HttpTransport *tp, const MirrorConfig *cfgs, size_t n);
Mirrors *mirrors_free(Mirrors *m);

size_t mirrors_count(const Mirrors *m);
bool mirrors_usable(const Mirrors *m, size_t i);
/* "scheme://[user:password@]host[:port][/prefix]" without a trailing '/'. */
const char *mirrors_base(const Mirrors *m, size_t i);
/* "host[:port]" (no userinfo) for credential lookups. */
const char *mirrors_host(const Mirrors *m, size_t i);
/* "scheme://host[:port]" (no userinfo): where the mirror's own credentials may go. */
const char *mirrors_origin(const Mirrors *m, size_t i);
/* The base without userinfo, for log lines. */
const char *mirrors_name(const Mirrors *m, size_t i);
/* NULL-terminated extra headers of mirror i. */
const char *const *mirrors_headers(const Mirrors *m, size_t i);
/* Outcome of a request to mirror i: ok = it answered (< 500). */
void mirrors_report(Mirrors *m, size_t i, bool ok);
