/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Where blob bytes come from. Every backend is asynchronous and driven from
 * the loop thread: submit() starts a request and returns at once; the
 * request's done() later runs on the loop thread exactly once with the number
 * of bytes read (always the full requested length) or -errno. A short object
 * is an error (-ENODATA), never a silent short read.
 */
#pragma once

#include <stdint.h>

#include "storage/util/loop.h"

typedef struct Backend Backend;
typedef struct BackendRequest BackendRequest;

enum backend_request_kind {
    BACKEND_READ,       /* read [off, off+len) of the blob into buf */
    BACKEND_SIZE,       /* learn the blob's size into size */
};

struct BackendRequest {
    enum backend_request_kind kind;
    const char *blob_id;            /* must stay valid until done() */
    uint64_t off;
    uint32_t len;
    void *buf;
    uint64_t size;                  /* BACKEND_SIZE result */
    void (*done)(BackendRequest *req, int res);

    /* Backend-private state, so a request needs no extra allocation. */
    LoopOp op;
    int fd;
    uint32_t done_bytes;
    void *priv;
};

typedef struct BackendOps {
    const char *name;
    /* 0 when started (done() follows), or -errno (done() is not called). */
    int (*submit)(Backend *b, BackendRequest *req);
    /*
     * Shutdown, before anything a request points to is freed: from now on
     * submit() fails with -ECANCELED, and every request in flight ends with
     * done(-ECANCELED) on a later loop turn, without waiting for its server.
     * A read the kernel cannot abort (a local file) ends when it completes.
     * May be NULL: requests then end on their own.
     */
    void (*cancel)(Backend *b);
    /* No request may be in flight any more (cancel() and a drained loop see to that). */
    void (*free)(Backend *b);
} BackendOps;

struct Backend {
    const BackendOps *ops;
    Loop *loop;
};

static inline int backend_submit(Backend *b, BackendRequest *req) { return b->ops->submit(b, req); }
static inline void backend_cancel(Backend *b)
{
    if (b && b->ops->cancel)
        b->ops->cancel(b);
}
static inline Backend *backend_free(Backend *b)
{
    if (b)
        b->ops->free(b);
    return NULL;
}

/* Blobs as files named by blob id in `dir`, read through the loop's io_uring. */
int backend_localfs_new(Backend **ret, Loop *loop, const char *dir);
