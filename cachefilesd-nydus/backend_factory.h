/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Build the Backend an image's `backend:` section describes. Remote backends
 * take nydusd-compatible field names; every field is checked here and errors
 * name file:line:column and the key.
 */
#pragma once

#include <stddef.h>

#include "config.h"
#include "storage/backend/backend.h"
#include "storage/util/loop.h"

int backend_factory_new(Backend **ret, Loop *loop, const BackendConfig *cfg, char *err, size_t err_len);

/* The key path (within the backend section) of the first field that holds a
 * secret: auth, registry_token, access_key_secret, session_token, a
 * credential header, a password in a proxy or mirror URL. NULL when none. */
const char *backend_config_secret_key(const BackendConfig *cfg, char *buf, size_t cap);
