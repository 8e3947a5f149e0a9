/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The fanotify pre-content front-end (Linux >= 6.14, erofs file-backed
 * mounts): see the comment at the top of frontend_fanotify.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "frontend.h"

/*
 * Serve through a fanotify group: a new one (group_fd < 0) or an inherited
 * one (group_fd >= 0, e.g. from `cachefilesd-nydus hold`, whose marks
 * survived a daemon crash).
 */
int frontend_fanotify_new(Frontend **ret, Daemon *d, int group_fd);

/*
 * Can this kernel raise pre-content events for files in `dir`? Creates a
 * temporary file there, marks it, removes it. 0 when it can, else -errno
 * with the reason (old kernel, tmpfs, not root) in why.
 */
int fanotify_probe(const char *dir, char *why, size_t why_len);

/* The control socket of a daemon whose work dir is `work_dir`. */
int fanotify_control_path(const char *work_dir, char *out, size_t out_len);
