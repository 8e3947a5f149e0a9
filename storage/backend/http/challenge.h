/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * WWW-Authenticate parsing by RFC 7235 (§2.1, §4.1) and RFC 7230 list,
 * token and quoted-string rules: one or more challenges, each a scheme
 * followed by a token68 or by comma-separated auth-params whose values are
 * tokens or quoted-strings. Bounded: every kept value has a fixed maximum.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define AUTH_CHALLENGES_MAX 8

typedef struct AuthChallenge {
    char scheme[32];        /* as sent; compare case-insensitively */
    char realm[1024];
    char service[256];
    char scope[1024];
    char error[64];
    bool has_token68;
} AuthChallenge;

/* 0 and *n challenges, or -EINVAL for a malformed header / -E2BIG when a
 * kept value or the number of challenges exceeds its bound. */
int auth_challenge_parse(const char *hdr, AuthChallenge *out, size_t max, size_t *n);
