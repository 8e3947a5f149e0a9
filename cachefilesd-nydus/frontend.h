/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A kernel front-end turns kernel events into "fill this range of this
 * blob" requests on storage and reports the outcome back to the kernel.
 * Two exist by design: cachefiles on-demand (fscache mode, 5.19-7.1) and
 * fanotify pre-content events (erofs file-backed mounts, 6.14+).
 */
#pragma once

#include <stdbool.h>

typedef struct Daemon Daemon;
typedef struct Frontend Frontend;

typedef struct FrontendOps {
    const char *name;
    /* Start serving; errors are logged with what the operator must fix. */
    int (*start)(Frontend *fe);
    /* Stop taking new work (called on SIGTERM). */
    void (*stop)(Frontend *fe);
    /*
     * Shutdown, after stop() and once the backends were cancelled: let go of
     * what the front-end holds in storage. Called with the loop turning in
     * between until it returns true: no fill, fetch, open or job of the
     * front-end is outstanding any more, so nothing will call back into it.
     */
    bool (*drain)(Frontend *fe);
    /* Only after drain() returned true. */
    void (*free)(Frontend *fe);
} FrontendOps;

struct Frontend {
    const FrontendOps *ops;
    Daemon *daemon;
};

static inline Frontend *frontend_free(Frontend *fe)
{
    if (fe)
        fe->ops->free(fe);
    return (Frontend *)0;
}
