/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The shared body of the single-URL backends (S3, OSS, http-proxy): one
 * object per blob, HEAD for its size, GET with Range for reads, through the
 * proxy layer and the engine. Each backend supplies the URL and its signing.
 */
#pragma once

#include "common.h"

#define HB_MAX_SIGN_HEADERS 4

typedef struct HbBackend HbBackend;
typedef struct HbOp HbOp;

typedef struct HbHooks {
    /* The blob's URL, malloc'd. */
    int (*url)(HbBackend *b, const char *blob_id, char **out);
    /* Per-request headers (signing): up to HB_MAX_SIGN_HEADERS malloc'd lines in out. */
    int (*sign)(HbBackend *b, enum http_method m, const char *blob_id, char **out, size_t *n);
    void (*free_priv)(HbBackend *b);
} HbHooks;

struct HbBackend {
    Backend base;
    HttpCommon c;
    const HbHooks *hooks;
    void *priv;
    HbOp *ops;          /* in flight, for cancellation */
    bool cancelled;     /* shutdown: hb_cancel() ran */
    LoopTimer cancel_timer;
};

/* base followed by blob_id, malloc'd: how each of these backends names a blob. */
int hb_url_join(const char *base, const char *blob_id, char **out);

/* Set up b (allocated by the caller with b->base.ops set) from cfg. */
int hb_init(HbBackend *b, Loop *loop, const HttpCommonConfig *cfg, const HbHooks *hooks, void *priv);
int hb_submit(Backend *base, BackendRequest *req);
/* Shutdown: stops every transfer now; their done(-ECANCELED) run on the next loop turn. */
void hb_cancel(Backend *base);
/* Cancels in-flight requests (done(-ECANCELED)), frees priv and b. */
void hb_free(Backend *base);
