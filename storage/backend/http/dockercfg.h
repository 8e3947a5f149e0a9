/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Credentials from a docker config.json: auths.<key>.auth (base64 of
 * "user:pass") and auths.<key>.identitytoken (an OAuth2 refresh token).
 * Keys match a registry host when equal after dropping a scheme and a path
 * ("https://host:5000/v1/" matches "host:5000"); Docker Hub's hosts match
 * "https://index.docker.io/v1/". Credential helpers are not supported.
 */
#pragma once

#include <stddef.h>

#define DOCKERCFG_MAX_SIZE (1024 * 1024)

/* From a document in memory; outputs are malloc'd or NULL. 0, -ENOENT (no
 * entry for host) or -EINVAL (malformed). */
int dockercfg_lookup_mem(const char *json, size_t len, const char *host, char **auth,
                         char **identity_token);
/* Same, reading the file at path (at most DOCKERCFG_MAX_SIZE bytes). Warns,
 * as ssh does for keys, when the file holds credentials for host and other
 * users may read it (mode & 077). */
int dockercfg_lookup(const char *path, const char *host, char **auth, char **identity_token);
