/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * HTTP response handling of the engine: the header and body callbacks curl
 * calls (status line, Content-Length, Content-Range, Location,
 * WWW-Authenticate, Retry-After) and the final verdict on a ranged GET.
 * The callbacks are static, so engine.c is compiled into this target.
 *
 * Input: 1 byte of request flags, 8 bytes range offset, 4 bytes range
 * length (all little-endian), then the response as curl delivers it: header
 * lines up to the first empty one, each handed over on its own, then the body
 * in chunks of up to 97 bytes. The promise checked: a ranged GET that ends
 * well holds exactly the requested bytes of the requested range, never more.
 */
#include "storage/backend/http/engine.c"

#include "fuzz.h"
#include "storage/backend/http/challenge.h"
#include "storage/backend/http/common.h"

enum { F_RANGED = 1, F_HEAD = 2, F_BUF = 4 };

static uint64_t le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* The check on configured extra request headers (hcommon_header_ok), on the same lines. */
static void check_request_header_rule(const char *line, size_t len)
{
    char *h = malloc(len + 1);      /* the line is not NUL-terminated */
    if (!h)
        abort();
    memcpy(h, line, len);
    h[len] = '\0';
    h[strcspn(h, "\r\n")] = '\0';
    if (hcommon_header_ok(h)) {
        const char *colon = strchr(h, ':');
        FUZZ_ASSERT(colon && colon > h);
        for (const char *c = h; *c; c++)
            FUZZ_ASSERT(*c == '\t' || ((unsigned char)*c >= 0x20 && *c != 0x7f));
    }
    free(h);
}

/* Feed header lines; returns the offset of the body or SIZE_MAX when a callback refused. */
static size_t feed_headers(HttpXfer *x, const uint8_t *data, size_t size, size_t off)
{
    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
        char *line = malloc(len);       /* exact size: ASan sees any overread */
        if (!line)
            abort();
        memcpy(line, data + off, len);
        check_request_header_rule(line, len);
        size_t r = xfer_header_cb(line, 1, len, x);
        free(line);
        if (r != len) {
            FUZZ_ASSERT(r == 0 && x->abort_err < 0);
            return SIZE_MAX;
        }
        off += len;
        if (len <= 2 && (len == 1 || data[off - 2] == '\r'))
            break;      /* the empty line */
    }
    return off;
}

static void check_response(const HttpXfer *x)
{
    if (x->resp.location)
        FUZZ_ASSERT(strlen(x->resp.location) < HTTP_MAX_LOCATION);
    if (x->resp.www_authenticate)
        FUZZ_ASSERT(strlen(x->resp.www_authenticate) < HTTP_MAX_WWW_AUTH);
    FUZZ_ASSERT(x->resp.retry_after_s <= 3600);
    FUZZ_ASSERT(x->resp.status >= 0 && x->resp.status <= 999);
}

/* What a caller is given when the transfer ends without error. */
static void check_success(const HttpXfer *x, const uint8_t *body, size_t body_len)
{
    if (!x->body_ok)
        return;
    if (!x->ranged) {
        FUZZ_ASSERT(x->resp.body_len <= x->buf_cap);
        return;
    }
    FUZZ_ASSERT(x->resp.body_len == x->range_len && body_len >= x->range_len);
    FUZZ_ASSERT(memcmp(x->buf, body, x->range_len) == 0);
    if (x->resp.status == 206) {
        FUZZ_ASSERT(x->cr.have && !x->cr.bad);
        FUZZ_ASSERT(x->cr.first == x->range_off && x->cr.last == x->range_off + x->range_len - 1);
    } else {
        FUZZ_ASSERT(x->resp.status == 200 && x->range_off == 0 && !x->cr.have);
        FUZZ_ASSERT(x->resp.object_size == x->range_len);
    }
}

static void check_follow_ups(const HttpXfer *x)
{
    if (x->resp.location) {
        char *url = NULL;
        if (http_url_resolve("https://registry.example.com/v2/r/blobs/sha256:00", x->resp.location, &url) == 0)
            FUZZ_ASSERT(url && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)));
        free(url);
    }
    if (x->resp.www_authenticate) {
        AuthChallenge ch[AUTH_CHALLENGES_MAX];
        size_t n;
        if (auth_challenge_parse(x->resp.www_authenticate, ch, AUTH_CHALLENGES_MAX, &n) == 0)
            FUZZ_ASSERT(n <= AUTH_CHALLENGES_MAX);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t sink[65536];
    HttpXfer x;

    if (size < 13)
        return 0;
    http_xfer_init(&x);
    x.url = "https://registry.example.com/v2/r/blobs/sha256:00";
    x.method = (data[0] & F_HEAD) ? HTTP_HEAD : HTTP_GET;
    x.ranged = (data[0] & F_RANGED) && x.method == HTTP_GET;
    x.range_off = le(data + 1, 8);
    x.range_len = (uint32_t)(le(data + 9, 4) % sizeof(sink)) + 1;
    if (x.ranged && x.range_off > UINT64_MAX - x.range_len)
        x.range_off = UINT64_MAX - x.range_len;     /* what http_xfer_submit() allows */
    if (x.ranged || (data[0] & F_BUF)) {
        x.buf = sink;
        x.buf_cap = x.range_len;
    }

    size_t off = feed_headers(&x, data, size, 13);
    int res = x.abort_err;
    if (off != SIZE_MAX) {
        const uint8_t *body = data + off;
        size_t body_len = size - off;
        for (size_t o = 0; o < body_len && !x.abort_err;) {
            size_t n = CFN_MIN(body_len - o, (size_t)97);
            size_t r = xfer_write_cb((char *)(uintptr_t)(body + o), 1, n, &x);
            FUZZ_ASSERT(r == n || (r == 0 && x.abort_err != 0));
            o += n;
        }
        res = x.abort_err ? x.abort_err : xfer_result(&x, CURLE_OK);
        if (res == 0)
            check_success(&x, body, body_len);
    }
    check_response(&x);
    check_follow_ups(&x);
    http_xfer_reset(&x);
    return 0;
}
