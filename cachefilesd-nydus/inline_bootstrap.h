/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Bootstraps taken out of inline-meta data blobs (nydusify's default: each
 * layer blob carries its own bootstrap as the TOC entry `image.boot`), so an
 * image can be configured by blob id alone (`bootstrap_blob:`).
 *
 * At start-up, for every such image: use <work_dir>/<blob id>.image.boot
 * when an earlier run left a valid one, else fetch the blob's TOC and the
 * `image.boot` entry from the image's backend, check its sha256, replace
 * nydus's placeholder blob id ("x" * 64, written before the blob's own id is
 * known) with the real id in the blob table and the device table, validate
 * the result as a RAFS v6 bootstrap and store it. The image's `bootstrap`
 * then names that file, so both front-ends serve it like any other.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "storage/util/loop.h"

/*
 * Resolve every image of cfg that names a bootstrap_blob and no bootstrap.
 * Runs `loop` until done (the daemon's loop, before any front-end starts);
 * each fetch step is bounded by cfg->request_timeout. An image that fails
 * keeps no bootstrap and gets its reason in errors[i] (malloc'd; errors has
 * cfg->n_images slots): the others are still resolved. 0, or -ENOMEM with
 * err.
 */
int inline_bootstrap_resolve(Config *cfg, Loop *loop, char **errors, char *err, size_t err_len);

/*
 * Give the blob that carries `boot` its real id `blob_id`, in the blob table
 * and the device table, then validate. That blob is the one with
 * INLINED_FS_META (nydus's placeholder id), else the one made before nydus
 * 2.2 (no CAP_TAR_TOC: its bootstrap names it by the digest of the blob
 * without image.boot), as nydus's BlobInfo::blob_id decides. Refused, naming
 * the ids the table does list, when no blob or more than one could be it.
 * Exposed for tests. 0 or -EBADMSG with why (which names blob_id).
 */
int inline_bootstrap_retag(uint8_t *boot, size_t len, const char *blob_id, char *why, size_t why_len);
