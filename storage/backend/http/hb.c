/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "hb.h"

#include <stdio.h>
#include <string.h>

#include "storage/util/log.h"
#include "storage/util/macros.h"

struct HbOp {
    HbBackend *b;
    BackendRequest *req;
    HttpCall call;
    char *url;
    char *sign[HB_MAX_SIGN_HEADERS];
    size_t n_sign;
    const char *hdrs[HCOMMON_MAX_HEADERS + HB_MAX_SIGN_HEADERS + 1];
    HbOp *prev, *next;
};

static void hb_op_free(HbOp *op)
{
    HbBackend *b = op->b;
    if (op->prev)
        op->prev->next = op->next;
    else if (b->ops == op)
        b->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    http_call_reset(&op->call);
    for (size_t i = 0; i < op->n_sign; i++)
        hcommon_secret_free(op->sign[i]);
    free(op->url);
    free(op);
}

int hb_url_join(const char *base, const char *blob_id, char **out)
{
    size_t n = strlen(base) + strlen(blob_id) + 1;
    *out = malloc(n);
    if (!*out)
        return -ENOMEM;
    snprintf(*out, n, "%s%s", base, blob_id);
    return 0;
}

static void hb_complete(HbOp *op, int res)
{
    BackendRequest *req = op->req;
    res = hcommon_request_result(req, op->call.x.resp.content_length, res);
    hb_op_free(op);
    req->done(req, res);
}

static void hb_call_done(HttpCall *c, int res)
{
    HbOp *op = cfn_container_of(c, HbOp, call);
    if (res == 0) {
        long st = c->x.resp.status;
        res = http_status_to_errno(st);
        if (res == 0 && st != 200 && st != 206)
            res = -EPROTO;
        if (res < 0)
            log_debug("%s: blob %s: HTTP status %ld", op->b->base.ops->name, op->req->blob_id, st);
    }
    hb_complete(op, res);
}

int hb_submit(Backend *base, BackendRequest *req)
{
    HbBackend *b = cfn_container_of(base, HbBackend, base);
    if (b->cancelled)
        return -ECANCELED;
    if (!req->blob_id || !hcommon_blob_id_ok(req->blob_id) || !req->done)
        return -EINVAL;
    if (req->kind == BACKEND_READ && (!req->len || !req->buf || req->len > INT32_MAX))
        return -EINVAL;
    HbOp *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->b = b;
    op->req = req;
    http_call_init(&op->call);
    enum http_method m = req->kind == BACKEND_SIZE ? HTTP_HEAD : HTTP_GET;
    int r = b->hooks->url(b, req->blob_id, &op->url);
    if (r == 0 && b->hooks->sign)
        r = b->hooks->sign(b, m, req->blob_id, op->sign, &op->n_sign);
    if (r < 0) {
        for (size_t i = 0; i < op->n_sign; i++)
            hcommon_secret_free(op->sign[i]);
        free(op->url);
        free(op);
        return r;
    }
    size_t nh = 0;
    for (size_t i = 0; i < b->c.n_headers; i++)
        op->hdrs[nh++] = b->c.headers[i];
    for (size_t i = 0; i < op->n_sign; i++)
        op->hdrs[nh++] = op->sign[i];
    op->hdrs[nh] = NULL;

    HttpXfer *x = &op->call.x;
    x->tp = &b->c.tp;
    x->method = m;
    x->url = op->url;
    x->headers = op->hdrs;
    x->group = req->blob_id;
    if (m == HTTP_GET) {
        x->ranged = true;
        x->range_off = req->off;
        x->range_len = req->len;
        x->buf = req->buf;
    }
    op->call.done = hb_call_done;
    op->next = b->ops;
    if (b->ops)
        b->ops->prev = op;
    b->ops = op;
    req->done_bytes = 0;
    req->priv = op;
    r = hproxy_submit(b->c.proxy, b->c.eng, &op->call);
    if (r < 0) {
        hb_op_free(op);
        return r;
    }
    return 0;
}

/* Every transfer was stopped by hb_cancel(): now tell their owners. */
static void hb_cancelled_fire(LoopTimer *t)
{
    HbBackend *b = cfn_container_of(t, HbBackend, cancel_timer);
    while (b->ops)
        hb_complete(b->ops, -ECANCELED);
}

void hb_cancel(Backend *base)
{
    HbBackend *b = cfn_container_of(base, HbBackend, base);
    b->cancelled = true;
    for (HbOp *op = b->ops; op; op = op->next)
        hproxy_cancel(&op->call);
    if (b->ops)
        loop_timer_arm(b->base.loop, &b->cancel_timer, 0);
}

int hb_init(HbBackend *b, Loop *loop, const HttpCommonConfig *cfg, const HbHooks *hooks, void *priv)
{
    loop_timer_init(&b->cancel_timer, hb_cancelled_fire);
    b->base.loop = loop;
    b->hooks = hooks;
    b->priv = priv;
    return hcommon_init(&b->c, loop, cfg);
}

void hb_free(Backend *base)
{
    HbBackend *b = cfn_container_of(base, HbBackend, base);
    if (b->cancelled)
        loop_timer_cancel(b->base.loop, &b->cancel_timer);
    while (b->ops) {
        HbOp *op = b->ops;
        hproxy_cancel(&op->call);
        hb_complete(op, -ECANCELED);
    }
    if (b->hooks && b->hooks->free_priv)
        b->hooks->free_priv(b);
    hcommon_fini(&b->c);
    free(b);
}
