/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "engine.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "storage/util/log.h"
#include "storage/util/macros.h"

#define ENGINE_EASY_POOL    32u
#define ENGINE_SLOT_KEY_MAX 512u
#define ENGINE_MAX_FD       (1 << 20)
/* abort_err marker: a non-2xx response whose body was too large to drain. */
#define XFER_DRAIN_ABORT    1

/* Everything the engine knows about one socket curl asked it to watch. */
typedef struct HttpSock {
    HttpEngine *eng;
    int fd;
    int want;                   /* CURL_POLL_IN / CURL_POLL_OUT bits */
    bool in_pending, out_pending;
    bool owned;                 /* opened through our opensocket callback: we close it */
    bool closing;               /* curl closed it; close(2) once the polls completed */
    bool detached;              /* no longer in the fd map */
    unsigned busy;
    LoopOp in_op, out_op;
} HttpSock;

struct HttpSlot {
    HttpSlot *next;
    unsigned active;
    unsigned refs;
    char key[];
};

typedef struct XList {
    HttpXfer *head, *tail;
} XList;

struct HttpEngine {
    unsigned refs;
    bool dead;                  /* curl state torn down, waiting for polls to be reaped */
    Loop *loop;
    CURLM *multi;
    CURLSH *share;
    HttpEngineLimits lim;

    LoopTimer timer;            /* curl's timer */
    LoopTimer rearm_timer;      /* retry polls that could not be queued */
    LoopTimer defer_timer;      /* completions that must not run inside submit() */

    HttpSock **socks;           /* indexed by fd */
    size_t socks_cap;
    size_t live_socks;

    XList pending, active, backoff, failed;
    unsigned n_active;
    HttpSlot *hosts, *groups;

    CURL *pool[ENGINE_EASY_POOL];
    unsigned n_pool;

    uint64_t rng;
    bool kicking, kick_again;
    HttpEngineStats st;
};

/* An idle connection older than this is closed rather than reused (curl's default: 118 s). */
#define ENGINE_IDLE_MAX_AGE_S 30

static void engine_kick(HttpEngine *e);
static void engine_final_free(HttpEngine *e);

/* ------------------------------------------------------------------------ */
/* The one place where curl's error domain becomes -errno.                  */

static int engine_curl_errno(CURLcode cc, const char *what, const char *detail)
{
    int r;
    switch (cc) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        r = -EHOSTUNREACH;
        break;
    case CURLE_COULDNT_CONNECT:
        r = -ECONNREFUSED;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        r = -ETIMEDOUT;
        break;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        r = -ECONNRESET;
        break;
    case CURLE_PARTIAL_FILE:
        r = -EPIPE;
        break;
    case CURLE_OUT_OF_MEMORY:
        r = -ENOMEM;
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
        r = -EINVAL;
        break;
    case CURLE_FILESIZE_EXCEEDED:
        r = -EMSGSIZE;
        break;
    case CURLE_SSL_CONNECT_ERROR:
        r = -ECONNABORTED;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        r = -EPROTO;
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_RANGE_ERROR:
        r = -EPROTO;
        break;
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
        r = -ECANCELED;
        break;
    default:
        r = -EIO;
        break;
    }
    /* curl's message names hosts, never credentials; cut any URL query anyway. */
    int dlen = detail ? (int)strcspn(detail, "?\r\n") : 0;
    log_debug("http: %s: curl error %d (%s)%s%.*s -> %s", what, (int)cc, curl_easy_strerror(cc),
              dlen ? ": " : "", dlen, detail ? detail : "", strerror(-r));
    return r;
}

static int engine_curlm_errno(CURLMcode mc, const char *what)
{
    if (mc == CURLM_OK)
        return 0;
    int r = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
    log_debug("http: %s: curl multi error %d (%s)", what, (int)mc, curl_multi_strerror(mc));
    return r;
}

int http_status_to_errno(long status)
{
    if (status >= 200 && status < 300)
        return 0;
    switch (status) {
    case 401:
    case 403:
    case 407:
        return -EACCES;
    case 404:
    case 410:
        return -ENOENT;
    case 416:
        return -ENODATA;
    case 429:
        return -EAGAIN;
    default:
        if (status >= 500)
            return -EIO;
        return -EPROTO;
    }
}

bool http_error_is_transport(int res)
{
    switch (res) {
    case -ECONNREFUSED:
    case -ECONNRESET:
    case -ECONNABORTED:
    case -ETIMEDOUT:
    case -EPIPE:
    case -EHOSTUNREACH:
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                           */

void http_url_redact(const char *url, char *out, size_t cap)
{
    if (!cap)
        return;
    if (!url) {
        snprintf(out, cap, "(null)");
        return;
    }
    size_t o = 0;
    const char *p = url;
    const char *sep = strstr(url, "://");
    if (sep) {
        size_t n = (size_t)(sep - url) + 3;
        for (size_t i = 0; i < n && o + 1 < cap; i++)
            out[o++] = url[i];
        p = sep + 3;
        /* authority: drop userinfo */
        size_t alen = strcspn(p, "/?#");
        const char *at = NULL;
        for (size_t i = 0; i < alen; i++)
            if (p[i] == '@')
                at = p + i;
        const char *h = at ? at + 1 : p;
        for (; h < p + alen && o + 1 < cap; h++)
            out[o++] = *h;
        p += alen;
    }
    for (; *p && *p != '?' && *p != '#' && o + 1 < cap; p++)
        out[o++] = (char)((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f ? '?' : *p);
    out[o] = '\0';
}

static uint64_t engine_rand(HttpEngine *e)
{
    /* xorshift64*: jitter only, never security. */
    uint64_t x = e->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void xlist_remove(XList *l, HttpXfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        l->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        l->tail = x->prev;
    x->prev = x->next = NULL;
}

static void xlist_push_back(XList *l, HttpXfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
}

static void xlist_push_front(XList *l, HttpXfer *x)
{
    x->prev = NULL;
    x->next = l->head;
    if (l->head)
        l->head->prev = x;
    else
        l->tail = x;
    l->head = x;
}

static XList *engine_list_of(HttpEngine *e, enum http_xfer_state st)
{
    switch (st) {
    case HTTP_XFER_PENDING:
        return &e->pending;
    case HTTP_XFER_ACTIVE:
        return &e->active;
    case HTTP_XFER_BACKOFF:
        return &e->backoff;
    case HTTP_XFER_FAILED:
        return &e->failed;
    default:
        return NULL;
    }
}

static HttpSlot *slot_get(HttpSlot **list, const char *key, size_t len)
{
    for (HttpSlot *s = *list; s; s = s->next)
        if (strlen(s->key) == len && memcmp(s->key, key, len) == 0) {
            s->refs++;
            return s;
        }
    HttpSlot *s = calloc(1, sizeof(*s) + len + 1);
    if (!s)
        return NULL;
    memcpy(s->key, key, len);
    s->refs = 1;
    s->next = *list;
    *list = s;
    return s;
}

static void slot_put(HttpSlot **list, HttpSlot *slot)
{
    if (!slot || --slot->refs)
        return;
    for (HttpSlot **pp = list; *pp; pp = &(*pp)->next)
        if (*pp == slot) {
            *pp = slot->next;
            break;
        }
    free(slot);
}

/* "scheme://host:port" part of a URL (userinfo dropped), or unix:<path>. */
static int xfer_host_key(const HttpXfer *x, char *key, size_t cap, size_t *len)
{
    int n;
    if (x->tp->unix_socket) {
        n = snprintf(key, cap, "unix:%s", x->tp->unix_socket);
    } else {
        const char *sep = strstr(x->url, "://");
        if (!sep)
            return -EINVAL;
        const char *a = sep + 3;
        size_t alen = strcspn(a, "/?#");
        const char *h = a;
        for (size_t i = 0; i < alen; i++)
            if (a[i] == '@')
                h = a + i + 1;
        n = snprintf(key, cap, "%.*s%.*s", (int)(a - x->url), x->url, (int)(a + alen - h), h);
    }
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    *len = (size_t)n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Sockets: one-shot io_uring polls, re-armed while curl wants the event.   */

static void sock_event(HttpSock *s, int res, int dir);

static void sock_in_done(LoopOp *op, int res)
{
    HttpSock *s = cfn_container_of(op, HttpSock, in_op);
    s->in_pending = false;
    sock_event(s, res, CURL_POLL_IN);
}

static void sock_out_done(LoopOp *op, int res)
{
    HttpSock *s = cfn_container_of(op, HttpSock, out_op);
    s->out_pending = false;
    sock_event(s, res, CURL_POLL_OUT);
}

static HttpSock *sock_new(HttpEngine *e, int fd, bool owned)
{
    if (fd < 0 || fd >= ENGINE_MAX_FD)
        return NULL;
    if ((size_t)fd >= e->socks_cap) {
        size_t cap = CFN_MAX((size_t)fd + 1, e->socks_cap * 2);
        cap = CFN_MAX(cap, (size_t)64);
        HttpSock **n = realloc(e->socks, cap * sizeof(*n));
        if (!n)
            return NULL;
        memset(n + e->socks_cap, 0, (cap - e->socks_cap) * sizeof(*n));
        e->socks = n;
        e->socks_cap = cap;
    }
    HttpSock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->eng = e;
    s->fd = fd;
    s->owned = owned;
    s->in_op.fn = sock_in_done;
    s->out_op.fn = sock_out_done;
    HttpSock *old = e->socks[fd];
    if (old) {
        /* A stale entry for a reused fd number: its poll belongs to the old file. */
        old->detached = true;
        old->want = 0;
    }
    e->socks[fd] = s;
    e->live_socks++;
    return s;
}

/* Free s if nothing refers to it any more; true when freed. */
static bool sock_reap(HttpSock *s)
{
    if (!(s->closing || s->detached) || s->in_pending || s->out_pending || s->busy)
        return false;
    HttpEngine *e = s->eng;
    if (s->closing && s->owned)
        close(s->fd);
    if (!s->detached && (size_t)s->fd < e->socks_cap && e->socks[s->fd] == s)
        e->socks[s->fd] = NULL;
    free(s);
    e->live_socks--;
    if (e->dead && e->live_socks == 0)
        engine_final_free(e);
    return true;
}

static void sock_arm(HttpSock *s)
{
    HttpEngine *e = s->eng;
    if (s->closing || s->detached || e->dead)
        return;
    if ((s->want & CURL_POLL_IN) && !s->in_pending) {
        if (loop_poll(e->loop, &s->in_op, s->fd, POLLIN) == 0)
            s->in_pending = true;
        else
            loop_timer_arm(e->loop, &e->rearm_timer, 1);
    }
    if ((s->want & CURL_POLL_OUT) && !s->out_pending) {
        if (loop_poll(e->loop, &s->out_op, s->fd, POLLOUT) == 0)
            s->out_pending = true;
        else
            loop_timer_arm(e->loop, &e->rearm_timer, 1);
    }
}

static void engine_reap(HttpEngine *e);

static void engine_socket_action(HttpEngine *e, curl_socket_t fd, int flags)
{
    int running = 0;
    CURLMcode mc = curl_multi_socket_action(e->multi, fd, flags, &running);
    if (mc != CURLM_OK)
        engine_curlm_errno(mc, "socket_action");
    engine_reap(e);
}

static void sock_event(HttpSock *s, int res, int dir)
{
    if (sock_reap(s))
        return;
    HttpEngine *e = s->eng;
    if (s->closing || s->detached || e->dead)
        return;
    if (!(s->want & dir))
        return;     /* curl lost interest while the poll was queued */
    int flags = dir == CURL_POLL_IN ? CURL_CSELECT_IN : CURL_CSELECT_OUT;
    if (res < 0 || (res & POLLERR))
        flags |= CURL_CSELECT_ERR;
    http_engine_ref(e);
    s->busy++;
    engine_socket_action(e, s->fd, flags);
    s->busy--;
    if (!sock_reap(s))
        sock_arm(s);
    http_engine_unref(e);
}

static void engine_rearm_fire(LoopTimer *t)
{
    HttpEngine *e = cfn_container_of(t, HttpEngine, rearm_timer);
    for (size_t i = 0; i < e->socks_cap; i++)
        if (e->socks[i])
            sock_arm(e->socks[i]);
}

static int engine_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    HttpEngine *e = userp;
    HttpSock *s = (fd >= 0 && (size_t)fd < e->socks_cap) ? e->socks[fd] : NULL;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            s->want = 0;
            if (!s->owned) {
                /* curl may close a socket it did not open through us
                 * (the resolver's wake-up pair) without telling us. */
                e->socks[fd] = NULL;
                s->detached = true;
                sock_reap(s);
            }
        }
        return 0;
    }
    if (!s) {
        s = sock_new(e, fd, false);
        if (!s)
            return -1;
    }
    s->want = what & (CURL_POLL_IN | CURL_POLL_OUT);
    sock_arm(s);
    return 0;
}

static curl_socket_t engine_opensocket_cb(void *clientp, curlsocktype purpose,
                                          struct curl_sockaddr *addr)
{
    HttpXfer *x = clientp;
    HttpEngine *e = x->eng;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0) {
        /* curl would call running out of fds "couldn't connect" (ECONNREFUSED, retried): say what it is. */
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            x->abort_err = -errno;
        return CURL_SOCKET_BAD;
    }
    if (!sock_new(e, fd, true)) {
        close(fd);
        x->abort_err = -ENOMEM;
        return CURL_SOCKET_BAD;
    }
    e->st.sockets_opened++;
    return fd;
}

static int engine_closesocket_cb(void *clientp, curl_socket_t fd)
{
    HttpEngine *e = clientp;
    HttpSock *s = (fd >= 0 && (size_t)fd < e->socks_cap) ? e->socks[fd] : NULL;
    if (!s || !s->owned) {
        if (s) {
            e->socks[fd] = NULL;
            s->detached = true;
            sock_reap(s);
        }
        close(fd);
        return 0;
    }
    s->closing = true;
    s->want = 0;
    if (s->in_pending || s->out_pending)
        shutdown(fd, SHUT_RDWR);    /* completes the polls; close(2) follows */
    sock_reap(s);
    return 0;
}

static int engine_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    HttpEngine *e = userp;
    if (timeout_ms < 0)
        loop_timer_cancel(e->loop, &e->timer);
    else
        loop_timer_arm(e->loop, &e->timer, (uint64_t)timeout_ms);
    return 0;
}

static void engine_timer_fire(LoopTimer *t)
{
    HttpEngine *e = cfn_container_of(t, HttpEngine, timer);
    if (e->dead)
        return;
    http_engine_ref(e);
    engine_socket_action(e, CURL_SOCKET_TIMEOUT, 0);
    http_engine_unref(e);
}

/* ------------------------------------------------------------------------ */
/* Response parsing (curl callbacks: never call back into curl or users).   */

static bool parse_u64(const char *p, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

/* "bytes first-last/complete" (complete may be "*"). */
static bool parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *total)
{
    if (strncasecmp(v, "bytes ", 6) != 0)
        return false;
    const char *p = v + 6;
    const char *dash = strchr(p, '-');
    if (!dash)
        return false;
    const char *slash = strchr(dash, '/');
    if (!slash)
        return false;
    if (!parse_u64(p, (size_t)(dash - p), first) ||
        !parse_u64(dash + 1, (size_t)(slash - dash - 1), last) || *first > *last)
        return false;
    if (strcmp(slash + 1, "*") == 0) {
        *total = UINT64_MAX;
        return true;
    }
    if (!parse_u64(slash + 1, strlen(slash + 1), total) || *last >= *total)
        return false;
    return true;
}

static void resp_clear(HttpResponse *r)
{
    free(r->location);
    free(r->www_authenticate);
    unsigned attempts = r->attempts;
    memset(r, 0, sizeof(*r));
    r->attempts = attempts;
    r->content_length = UINT64_MAX;
    r->object_size = UINT64_MAX;
}

typedef __typeof__(((HttpXfer *)0)->cr) ContentRange;

static int xfer_store_header(HttpXfer *x, const char *name, size_t nlen, const char *val,
                             size_t vlen, ContentRange *cr)
{
#define IS(h) (nlen == sizeof(h) - 1 && strncasecmp(name, h, nlen) == 0)
    if (IS("Location")) {
        if (x->resp.location || vlen >= HTTP_MAX_LOCATION)
            return -EPROTO;
        /* curl's header data is not NUL-terminated: copy exactly vlen bytes (no str* reads). */
        char *loc = malloc(vlen + 1);
        if (!loc)
            return -ENOMEM;
        memcpy(loc, val, vlen);
        loc[vlen] = '\0';
        x->resp.location = loc;
        return 0;
    }
    if (IS("WWW-Authenticate")) {
        size_t old = x->resp.www_authenticate ? strlen(x->resp.www_authenticate) : 0;
        size_t need = old + (old ? 2 : 0) + vlen + 1;
        if (need > HTTP_MAX_WWW_AUTH)
            return -EPROTO;
        char *n = realloc(x->resp.www_authenticate, need);
        if (!n)
            return -ENOMEM;
        if (old)
            memcpy(n + old, ", ", 2), old += 2;
        memcpy(n + old, val, vlen);
        n[old + vlen] = '\0';
        x->resp.www_authenticate = n;
        return 0;
    }
    if (IS("Content-Length")) {
        uint64_t v;
        if (!parse_u64(val, vlen, &v))
            return -EPROTO;
        if (x->resp.content_length != UINT64_MAX && x->resp.content_length != v)
            return -EPROTO;
        x->resp.content_length = v;
        return 0;
    }
    if (IS("Content-Range")) {
        char tmp[96];
        if (cr->have || vlen >= sizeof(tmp)) {
            cr->bad = true;
            return 0;
        }
        memcpy(tmp, val, vlen);
        tmp[vlen] = '\0';
        cr->have = true;
        if (!parse_content_range(tmp, &cr->first, &cr->last, &cr->total))
            cr->bad = true;
        return 0;
    }
    if (IS("Retry-After")) {
        uint64_t v;
        if (parse_u64(val, vlen, &v))
            x->resp.retry_after_s = (uint32_t)CFN_MIN(v, (uint64_t)3600);
        return 0;
    }
#undef IS
    return 0;
}

_Static_assert(sizeof(((HttpXfer *)0)->errbuf) >= CURL_ERROR_SIZE, "errbuf too small");

static ContentRange *xfer_cr(HttpXfer *x) { return &x->cr; }

static size_t xfer_header_cb(char *p, size_t size, size_t n, void *ud)
{
    HttpXfer *x = ud;
    size_t len = size * n;
    x->hdr_bytes += len;
    if (x->hdr_bytes > HTTP_MAX_HEADER_BYTES) {
        x->abort_err = -EMSGSIZE;
        return 0;
    }
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response starts (1xx, or after a proxy CONNECT): forget the last. */
        HttpResponse keep = { .attempts = x->resp.attempts };
        free(x->resp.location);
        free(x->resp.www_authenticate);
        x->resp = keep;
        x->resp.content_length = UINT64_MAX;
        x->resp.object_size = UINT64_MAX;
        memset(xfer_cr(x), 0, sizeof(ContentRange));
        const char *sp = memchr(p, ' ', len);
        if (!sp || (size_t)(p + len - sp) < 4)
            goto bad;
        long st = 0;
        for (int i = 1; i <= 3; i++) {
            if (sp[i] < '0' || sp[i] > '9')
                goto bad;
            st = st * 10 + (sp[i] - '0');
        }
        x->resp.status = st;
        if (len >= 6 && p[5] == '2')
            x->resp.http_version = 20;
        else if (len >= 8 && memcmp(p + 5, "1.0", 3) == 0)
            x->resp.http_version = 10;
        else
            x->resp.http_version = 11;
        return len;
    }
    /* name: value CRLF */
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len;     /* the empty line, or junk curl already tolerated */
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    for (const char *c = v; c < end; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t')
            goto bad;
    int r = xfer_store_header(x, p, nlen, v, (size_t)(end - v), xfer_cr(x));
    if (r < 0) {
        x->abort_err = r;
        return 0;
    }
    return len;
bad:
    x->abort_err = -EPROTO;
    return 0;
}

/* Decide, once the headers are complete, whether the body may be used. */
static int xfer_check_head(HttpXfer *x)
{
    x->head_checked = true;
    long st = x->resp.status;
    if (st < 200 || st >= 300) {
        x->body_ok = false;
        x->status_final = true;
        return 0;
    }
    if (x->method == HTTP_HEAD) {
        x->body_ok = false;
        return 0;
    }
    if (!x->ranged && !x->buf) {
        x->body_ok = false;     /* nobody wants the body: drain it (bounded) */
        return 0;
    }
    x->body_ok = true;
    if (!x->ranged) {
        if (x->resp.content_length != UINT64_MAX && x->resp.content_length > x->buf_cap)
            return -EMSGSIZE;
        return 0;
    }
    const ContentRange *cr = xfer_cr(x);
    uint64_t want_last = x->range_off + x->range_len - 1;
    if (st == 206) {
        if (!cr->have || cr->bad || cr->first != x->range_off)
            return -EPROTO;
        if (cr->last != want_last) {
            /* The object ends inside the range: a short object, never short data. */
            if (cr->last < want_last && cr->total == cr->last + 1)
                return -ENODATA;
            return -EPROTO;
        }
        if (x->resp.content_length != UINT64_MAX && x->resp.content_length != x->range_len)
            return -EPROTO;
        x->resp.object_size = cr->total;
        return 0;
    }
    if (st == 200) {
        /* The server ignored the range: usable only when it was the whole object. */
        if (cr->have)
            return -EPROTO;
        uint64_t cl = x->resp.content_length;
        if (cl == UINT64_MAX) {
            if (x->range_off != 0)
                return -EPROTO;
            return 0;   /* length checked at the end: exactly range_len */
        }
        if (cl < x->range_off + x->range_len)
            return -ENODATA;
        if (x->range_off != 0 || cl != x->range_len)
            return -EPROTO;
        x->resp.object_size = cl;
        return 0;
    }
    return -EPROTO;
}

static size_t xfer_write_cb(char *p, size_t size, size_t n, void *ud)
{
    HttpXfer *x = ud;
    size_t len = size * n;
    if (!x->head_checked) {
        int r = xfer_check_head(x);
        if (r < 0) {
            x->abort_err = r;
            return 0;
        }
    }
    if (!x->body_ok) {
        x->drained += len;
        if (x->drained > HTTP_MAX_ERROR_BODY) {
            x->abort_err = XFER_DRAIN_ABORT;
            return 0;
        }
        return len;
    }
    size_t cap = x->ranged ? x->range_len : x->buf_cap;
    if (len > cap - x->resp.body_len || !x->buf) {
        x->abort_err = x->ranged ? -EPROTO : -EMSGSIZE;
        return 0;
    }
    memcpy((char *)x->buf + x->resp.body_len, p, len);
    x->resp.body_len += len;
    return len;
}

/* ------------------------------------------------------------------------ */
/* Starting, finishing and retrying transfers.                              */

static CURL *engine_easy_get(HttpEngine *e)
{
    if (e->n_pool) {
        CURL *h = e->pool[--e->n_pool];
        curl_easy_reset(h);
        return h;
    }
    return curl_easy_init();
}

static void engine_easy_put(HttpEngine *e, CURL *h)
{
    if (!h)
        return;
    if (e->n_pool < ENGINE_EASY_POOL && !e->dead)
        e->pool[e->n_pool++] = h;
    else
        curl_easy_cleanup(h);
}

static void xfer_release(HttpEngine *e, HttpXfer *x)
{
    if (x->easy) {
        engine_easy_put(e, x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->slist);
    x->slist = NULL;
}

static int xfer_setup(HttpEngine *e, HttpXfer *x, CURL *h)
{
    const HttpTransport *tp = x->tp;
    CURLcode cc = CURLE_OK;
#define SET(opt, val) do { if (cc == CURLE_OK) cc = curl_easy_setopt(h, opt, val); } while (0)
    SET(CURLOPT_URL, x->url);
    SET(CURLOPT_PRIVATE, x);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SHARE, e->share);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_HEADERFUNCTION, xfer_header_cb);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, xfer_write_cb);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_OPENSOCKETFUNCTION, engine_opensocket_cb);
    SET(CURLOPT_OPENSOCKETDATA, x);
    SET(CURLOPT_CLOSESOCKETFUNCTION, engine_closesocket_cb);
    SET(CURLOPT_CLOSESOCKETDATA, e);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Wait for a multiplexed connection only where HTTP/2 is possible (TLS);
     * on plain HTTP/1.1 it would hold requests behind a stalled first one. */
    if (strncasecmp(x->url, "https://", 8) == 0 && !x->proxy)
        SET(CURLOPT_PIPEWAIT, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_MAXAGE_CONN, (long)ENGINE_IDLE_MAX_AGE_S);
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_PROXY, x->proxy ? x->proxy : "");   /* "" also ignores *_proxy env vars */
    if (x->ranged && x->range_len >= 256 * 1024)
        SET(CURLOPT_BUFFERSIZE, 256L * 1024);
    if (tp->connect_timeout_ms)
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long)tp->connect_timeout_ms);
    if (tp->timeout_ms)
        SET(CURLOPT_TIMEOUT_MS, (long)tp->timeout_ms);
    if (tp->low_speed_time_s) {
        SET(CURLOPT_LOW_SPEED_LIMIT, (long)CFN_MAX(tp->low_speed_limit, 1u));
        SET(CURLOPT_LOW_SPEED_TIME, (long)tp->low_speed_time_s);
    }
    if (tp->skip_verify) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (tp->ca_blob) {
        struct curl_blob blob = { .data = (void *)tp->ca_blob, .len = tp->ca_blob_len,
                                  .flags = CURL_BLOB_NOCOPY };
        SET(CURLOPT_CAINFO_BLOB, &blob);
    }
    if (tp->unix_socket)
        SET(CURLOPT_UNIX_SOCKET_PATH, tp->unix_socket);
    if (tp->user_agent)
        SET(CURLOPT_USERAGENT, tp->user_agent);
    if (tp->aws_sigv4) {
        SET(CURLOPT_AWS_SIGV4, tp->aws_sigv4);
        SET(CURLOPT_USERNAME, tp->username ? tp->username : "");
        SET(CURLOPT_PASSWORD, tp->password ? tp->password : "");
    }
    switch (x->method) {
    case HTTP_HEAD:
        SET(CURLOPT_NOBODY, 1L);
        break;
    case HTTP_POST:
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->post_len);
        SET(CURLOPT_COPYPOSTFIELDS, x->post_body ? x->post_body : "");
        break;
    case HTTP_GET:
        SET(CURLOPT_HTTPGET, 1L);
        break;
    }
    if (!x->ranged && x->method != HTTP_HEAD)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->buf_cap);
#undef SET
    if (cc != CURLE_OK)
        return engine_curl_errno(cc, "setopt", NULL);

    struct curl_slist *sl = NULL;
    char range[64];
    if (x->ranged) {
        snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, x->range_off,
                 x->range_off + x->range_len - 1);
        sl = curl_slist_append(sl, range);
        if (!sl)
            return -ENOMEM;
    }
    for (const char *const *hh = x->headers; hh && *hh; hh++) {
        struct curl_slist *n = curl_slist_append(sl, *hh);
        if (!n) {
            curl_slist_free_all(sl);
            return -ENOMEM;
        }
        sl = n;
    }
    if (x->method == HTTP_POST) {
        /* No 100-continue round trip. (Not on GET/HEAD: SigV4 would sign it.) */
        struct curl_slist *n = curl_slist_append(sl, "Expect:");
        if (!n) {
            curl_slist_free_all(sl);
            return -ENOMEM;
        }
        sl = n;
    }
    x->slist = sl;
    cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    if (cc != CURLE_OK)
        return engine_curl_errno(cc, "setopt", NULL);
    return 0;
}

static int xfer_start(HttpEngine *e, HttpXfer *x)
{
    CURL *h = engine_easy_get(e);
    if (!h)
        return -ENOMEM;
    x->easy = h;
    resp_clear(&x->resp);
    x->resp.attempts++;
    x->abort_err = 0;
    x->head_checked = x->body_ok = x->status_final = false;
    x->hdr_bytes = x->drained = 0;
    x->errbuf[0] = '\0';
    int r = xfer_setup(e, x, h);
    if (r < 0) {
        xfer_release(e, x);
        return r;
    }
    CURLMcode mc = curl_multi_add_handle(e->multi, h);
    if (mc != CURLM_OK) {
        r = engine_curlm_errno(mc, "add_handle");
        xfer_release(e, x);
        return r;
    }
    x->state = HTTP_XFER_ACTIVE;
    xlist_push_back(&e->active, x);
    e->n_active++;
    x->host_slot->active++;
    if (x->group_slot)
        x->group_slot->active++;
    e->st.attempts++;
    return 0;
}

/* Leave the ACTIVE state: the transfer is no longer in curl. */
static void xfer_deactivate(HttpEngine *e, HttpXfer *x)
{
    xlist_remove(&e->active, x);
    if (x->easy)
        curl_multi_remove_handle(e->multi, x->easy);
    e->n_active--;
    x->host_slot->active--;
    if (x->group_slot)
        x->group_slot->active--;
    xfer_release(e, x);
}

static void xfer_unslot(HttpEngine *e, HttpXfer *x)
{
    slot_put(&e->hosts, x->host_slot);
    slot_put(&e->groups, x->group_slot);
    x->host_slot = x->group_slot = NULL;
}

static void xfer_finish(HttpEngine *e, HttpXfer *x, int res)
{
    xfer_unslot(e, x);
    x->state = HTTP_XFER_IDLE;
    e->st.requests++;
    if (res == 0 && x->body_ok)
        e->st.bytes += x->resp.body_len;
    if (res == 0 && x->resp.http_version == 20)
        e->st.h2_responses++;
    if (cfn_log_get_level() >= CFN_LOG_DEBUG) {
        char u[256];
        http_url_redact(x->url, u, sizeof(u));
        log_debug("http: %s %s -> %d status %ld, %zu bytes, %u attempt(s)",
                  x->method == HTTP_HEAD ? "HEAD" : x->method == HTTP_POST ? "POST" : "GET", u,
                  res, x->resp.status, x->resp.body_len, x->resp.attempts);
    }
    x->done(x, res);
}

static bool xfer_retryable(const HttpXfer *x, int res)
{
    if (res < 0)
        return http_error_is_transport(res);
    return x->resp.status >= 500 || x->resp.status == 429;
}

static void xfer_backoff_fire(LoopTimer *t)
{
    HttpXfer *x = cfn_container_of(t, HttpXfer, backoff);
    HttpEngine *e = x->eng;
    xlist_remove(&e->backoff, x);
    x->state = HTTP_XFER_PENDING;
    xlist_push_front(&e->pending, x);
    http_engine_ref(e);
    engine_kick(e);
    http_engine_unref(e);
}

static int xfer_result(HttpXfer *x, CURLcode cc)
{
    if (cc != CURLE_OK) {
        if (x->abort_err == XFER_DRAIN_ABORT)
            return 0;       /* a non-2xx response with a large body: the status is the answer */
        char u[160];
        http_url_redact(x->url, u, sizeof(u));
        int r = engine_curl_errno(cc, u, x->errbuf);
        return x->abort_err < 0 ? x->abort_err : r;
    }
    if (!x->head_checked) {
        int r = xfer_check_head(x);
        if (r < 0)
            return r;
    }
    if (x->body_ok) {
        if (x->ranged && x->resp.body_len != x->range_len)
            return -EPIPE;
        if (!x->ranged && x->resp.content_length != UINT64_MAX &&
            x->resp.body_len != x->resp.content_length)
            return -EPIPE;
    }
    if (x->ranged && x->body_ok && x->resp.status == 200)
        x->resp.object_size = x->resp.body_len;
    return 0;
}

static void xfer_attempt_done(HttpEngine *e, HttpXfer *x, CURLcode cc)
{
    int res = xfer_result(x, cc);
    xfer_deactivate(e, x);
    int limit = x->retry_limit >= 0 ? x->retry_limit : (int)x->tp->retry_limit;
    if (xfer_retryable(x, res) && (int)x->resp.attempts <= limit) {
        uint64_t d = (uint64_t)CFN_MAX(x->tp->retry_base_ms, 1u) << CFN_MIN(x->resp.attempts - 1, 20u);
        d = CFN_MIN(d, (uint64_t)CFN_MAX(x->tp->retry_max_ms, 1u));
        d = d / 2 + engine_rand(e) % (d / 2 + 1);
        if (res == 0 && x->resp.retry_after_s)
            d = CFN_MAX(d, CFN_MIN((uint64_t)x->resp.retry_after_s * 1000,
                                   (uint64_t)CFN_MAX(x->tp->retry_max_ms, 1u)));
        char u[256];
        http_url_redact(x->url, u, sizeof(u));
        char why[64];
        if (res < 0)
            snprintf(why, sizeof(why), "%s", strerror(-res));
        else
            snprintf(why, sizeof(why), "status %ld", x->resp.status);
        log_warn("http: %s attempt %u/%d failed (%s), retrying in %" PRIu64 " ms", u,
                 x->resp.attempts, limit + 1, why, d);
        e->st.retries++;
        x->state = HTTP_XFER_BACKOFF;
        xlist_push_back(&e->backoff, x);
        loop_timer_arm(e->loop, &x->backoff, d);
        engine_kick(e);
        return;
    }
    engine_kick(e);
    xfer_finish(e, x, res);
}

static void engine_reap(HttpEngine *e)
{
    CURLMsg *m;
    int left;
    while (!e->dead && (m = curl_multi_info_read(e->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        HttpXfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x || x->state != HTTP_XFER_ACTIVE)
            continue;
        xfer_attempt_done(e, x, m->data.result);
    }
}

static void engine_defer_fire(LoopTimer *t)
{
    HttpEngine *e = cfn_container_of(t, HttpEngine, defer_timer);
    http_engine_ref(e);
    HttpXfer *x;
    while ((x = e->failed.head)) {
        xlist_remove(&e->failed, x);
        xfer_finish(e, x, x->deferred_res);
    }
    http_engine_unref(e);
}

static void engine_kick(HttpEngine *e)
{
    if (e->kicking) {
        e->kick_again = true;
        return;
    }
    e->kicking = true;
    do {
        e->kick_again = false;
        HttpXfer *next;
        for (HttpXfer *x = e->pending.head; x && e->n_active < e->lim.max_requests; x = next) {
            next = x->next;
            if (x->host_slot->active >= e->lim.max_requests_per_host)
                continue;
            if (x->group_slot && x->group_slot->active >= e->lim.max_requests_per_group)
                continue;
            xlist_remove(&e->pending, x);
            int r = xfer_start(e, x);
            if (r < 0) {
                x->state = HTTP_XFER_FAILED;
                x->deferred_res = r;
                xlist_push_back(&e->failed, x);
                loop_timer_arm(e->loop, &e->defer_timer, 0);
            }
        }
    } while (e->kick_again);
    e->kicking = false;
}

/* ------------------------------------------------------------------------ */
/* Public API.                                                              */

void http_engine_limits_default(HttpEngineLimits *l)
{
    l->max_requests = 64;
    l->max_requests_per_host = 32;
    l->max_requests_per_group = 16;
}

void http_transport_default(HttpTransport *tp)
{
    memset(tp, 0, sizeof(*tp));
    tp->connect_timeout_ms = 5000;
    tp->timeout_ms = 5000;
    tp->low_speed_limit = 1024;
    tp->low_speed_time_s = 30;
    tp->retry_limit = 3;
    tp->retry_base_ms = 200;
    tp->retry_max_ms = 5000;
}

void http_xfer_init(HttpXfer *x)
{
    memset(x, 0, sizeof(*x));
    x->retry_limit = -1;
    x->resp.content_length = UINT64_MAX;
    x->resp.object_size = UINT64_MAX;
    loop_timer_init(&x->backoff, xfer_backoff_fire);
}

void http_xfer_reset(HttpXfer *x)
{
    free(x->resp.location);
    free(x->resp.www_authenticate);
    memset(&x->resp, 0, sizeof(x->resp));
    x->resp.content_length = UINT64_MAX;
    x->resp.object_size = UINT64_MAX;
}

int http_xfer_submit(HttpEngine *e, HttpXfer *x)
{
    if (e->dead || !x->tp || !x->url || !x->done || x->state != HTTP_XFER_IDLE)
        return -EINVAL;
    if (x->ranged && (x->range_len == 0 || x->method != HTTP_GET ||
                      x->range_off > UINT64_MAX - x->range_len))
        return -EINVAL;
    char key[ENGINE_SLOT_KEY_MAX];
    size_t klen;
    int r = xfer_host_key(x, key, sizeof(key), &klen);
    if (r < 0)
        return r;
    x->eng = e;
    x->host_slot = slot_get(&e->hosts, key, klen);
    if (!x->host_slot)
        return -ENOMEM;
    if (x->group) {
        x->group_slot = slot_get(&e->groups, x->group, strlen(x->group));
        if (!x->group_slot) {
            xfer_unslot(e, x);
            return -ENOMEM;
        }
    }
    http_xfer_reset(x);
    x->resp.attempts = 0;
    x->state = HTTP_XFER_PENDING;
    xlist_push_back(&e->pending, x);
    engine_kick(e);
    return 0;
}

void http_xfer_cancel(HttpXfer *x)
{
    HttpEngine *e = x->eng;
    if (!e || x->state == HTTP_XFER_IDLE)
        return;
    switch (x->state) {
    case HTTP_XFER_ACTIVE:
        xfer_deactivate(e, x);
        break;
    case HTTP_XFER_BACKOFF:
        loop_timer_cancel(e->loop, &x->backoff);
        xlist_remove(&e->backoff, x);
        break;
    default:
        xlist_remove(engine_list_of(e, x->state), x);
        break;
    }
    xfer_unslot(e, x);
    x->state = HTTP_XFER_IDLE;
    if (!e->dead)
        engine_kick(e);
}

/*
 * Connections (busy or idle, cached for reuse) hold file descriptors the rest
 * of the daemon needs too (cache files, permission events, the control
 * socket): at most a quarter of the open-file limit; requests beyond wait.
 * The connection cache is as large as the request limit, since a smaller
 * one closes connections returned during a burst instead of reusing them.
 */
static void engine_fit_limits(HttpEngineLimits *l)
{
    struct rlimit rl;
    unsigned fd_budget = UINT_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < UINT_MAX)
        fd_budget = (unsigned)(rl.rlim_cur / 4);
    fd_budget = CFN_MAX(fd_budget, 1u);
    l->max_requests = CFN_MIN(CFN_MAX(l->max_requests, 1u), fd_budget);
    l->max_requests_per_host = CFN_MIN(CFN_MAX(l->max_requests_per_host, 1u), l->max_requests);
}

int http_engine_new(HttpEngine **ret, Loop *loop, const HttpEngineLimits *limits)
{
    HttpEngine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->refs = 1;
    e->loop = loop;
    if (limits)
        e->lim = *limits;
    else
        http_engine_limits_default(&e->lim);
    engine_fit_limits(&e->lim);
    if (!e->lim.max_requests_per_group)
        e->lim.max_requests_per_group = e->lim.max_requests_per_host;
    loop_timer_init(&e->timer, engine_timer_fire);
    loop_timer_init(&e->rearm_timer, engine_rearm_fire);
    loop_timer_init(&e->defer_timer, engine_defer_fire);
    if (getrandom(&e->rng, sizeof(e->rng), GRND_NONBLOCK) != sizeof(e->rng) || !e->rng)
        e->rng = loop_now_ns() | 1;

    e->share = curl_share_init();
    e->multi = curl_multi_init();
    if (!e->share || !e->multi) {
        e->dead = true;
        engine_final_free(e);
        return -ENOMEM;
    }
    CURLSHcode sc = curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    CURLMcode mc = CURLM_OK;
#define MSET(opt, val) do { if (mc == CURLM_OK) mc = curl_multi_setopt(e->multi, opt, val); } while (0)
    MSET(CURLMOPT_SOCKETFUNCTION, engine_socket_cb);
    MSET(CURLMOPT_SOCKETDATA, e);
    MSET(CURLMOPT_TIMERFUNCTION, engine_timer_cb);
    MSET(CURLMOPT_TIMERDATA, e);
    MSET(CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    MSET(CURLMOPT_MAX_HOST_CONNECTIONS, (long)e->lim.max_requests_per_host);
    MSET(CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)e->lim.max_requests);
    MSET(CURLMOPT_MAXCONNECTS, (long)e->lim.max_requests);
#undef MSET
    if (sc != CURLSHE_OK || mc != CURLM_OK) {
        int r = mc != CURLM_OK ? engine_curlm_errno(mc, "multi_setopt") : -ENOMEM;
        e->dead = true;
        curl_multi_cleanup(e->multi);
        e->multi = NULL;
        engine_final_free(e);
        return r;
    }
    *ret = e;
    return 0;
}

HttpEngine *http_engine_ref(HttpEngine *e)
{
    if (e)
        e->refs++;
    return e;
}

Loop *http_engine_loop(const HttpEngine *e) { return e->loop; }

static void engine_final_free(HttpEngine *e)
{
    if (e->share)
        curl_share_cleanup(e->share);
    free(e->socks);
    free(e);
}

static void engine_shutdown(HttpEngine *e)
{
    /* Leftover xfers are dropped silently: their owners are gone. */
    XList *lists[] = { &e->pending, &e->active, &e->backoff, &e->failed };
    e->dead = true;
    for (size_t i = 0; i < CFN_ARRAY_SIZE(lists); i++) {
        HttpXfer *x;
        while ((x = lists[i]->head))
            http_xfer_cancel(x);
    }
    /* Socket reaping must not free the engine while we are still in here. */
    e->live_socks++;
    loop_timer_cancel(e->loop, &e->timer);
    loop_timer_cancel(e->loop, &e->rearm_timer);
    loop_timer_cancel(e->loop, &e->defer_timer);
    while (e->n_pool)
        curl_easy_cleanup(e->pool[--e->n_pool]);
    /* Closes every connection through engine_closesocket_cb. */
    curl_multi_cleanup(e->multi);
    e->multi = NULL;
    for (size_t i = 0; i < e->socks_cap; i++) {
        HttpSock *s = e->socks[i];
        if (!s)
            continue;
        e->socks[i] = NULL;
        s->detached = true;
        if (s->owned && !s->closing) {
            s->closing = true;
            shutdown(s->fd, SHUT_RDWR);
        }
        sock_reap(s);   /* may free e when it was the last one: not while live_socks > 0 */
    }
    if (--e->live_socks == 0)
        engine_final_free(e);
}

HttpEngine *http_engine_unref(HttpEngine *e)
{
    if (!e)
        return NULL;
    if (--e->refs == 0 && !e->dead)
        engine_shutdown(e);
    return NULL;
}

void http_engine_stats(const HttpEngine *e, HttpEngineStats *out)
{
    *out = e->st;
    out->active = e->n_active;
    unsigned n = 0;
    for (HttpXfer *x = e->pending.head; x; x = x->next)
        n++;
    out->pending = n;
}

/* ------------------------------------------------------------------------ */
/* URL helpers (curl's URL API; its error domain stays in this file).       */

static int engine_curlu_errno(CURLUcode uc)
{
    if (uc == CURLUE_OK)
        return 0;
    log_debug("http: URL error %d (%s)", (int)uc, curl_url_strerror(uc));
    return uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

static int url_check_scheme(CURLU *u)
{
    char *scheme = NULL;
    CURLUcode uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc != CURLUE_OK)
        return engine_curlu_errno(uc);
    bool ok = strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0;
    curl_free(scheme);
    return ok ? 0 : -EINVAL;
}

static int url_take(CURLU *u, char **out)
{
    char *s = NULL;
    int r = url_check_scheme(u);
    if (r < 0)
        return r;
    CURLUcode uc = curl_url_get(u, CURLUPART_URL, &s, 0);
    if (uc != CURLUE_OK)
        return engine_curlu_errno(uc);
    *out = strdup(s);
    curl_free(s);
    return *out ? 0 : -ENOMEM;
}

int http_url_resolve(const char *base, const char *location, char **out)
{
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, base, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_set(u, CURLUPART_URL, location, 0);
    int r = uc == CURLUE_OK ? url_take(u, out) : engine_curlu_errno(uc);
    curl_url_cleanup(u);
    return r;
}

int http_url_rewrite(const char *url, const char *scheme, const char *hostport, char **out)
{
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK && scheme && *scheme)
        uc = curl_url_set(u, CURLUPART_SCHEME, scheme, 0);
    if (uc == CURLUE_OK && hostport && *hostport) {
        /* Parse "host[:port]" by letting curl read it as a URL authority. */
        char tmp[600];
        int n = snprintf(tmp, sizeof(tmp), "http://%s/", hostport);
        CURLU *h = curl_url();
        if (!h || n < 0 || (size_t)n >= sizeof(tmp)) {
            curl_url_cleanup(h);
            curl_url_cleanup(u);
            return h ? -EINVAL : -ENOMEM;
        }
        char *host = NULL, *port = NULL;
        uc = curl_url_set(h, CURLUPART_URL, tmp, 0);
        if (uc == CURLUE_OK)
            uc = curl_url_get(h, CURLUPART_HOST, &host, 0);
        if (uc == CURLUE_OK) {
            uc = curl_url_set(u, CURLUPART_HOST, host, 0);
            if (uc == CURLUE_OK && curl_url_get(h, CURLUPART_PORT, &port, 0) == CURLUE_OK)
                uc = curl_url_set(u, CURLUPART_PORT, port, 0);
            else if (uc == CURLUE_OK)
                uc = curl_url_set(u, CURLUPART_PORT, NULL, 0);
        }
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(h);
    }
    int r = uc == CURLUE_OK ? url_take(u, out) : engine_curlu_errno(uc);
    curl_url_cleanup(u);
    return r;
}

bool http_url_same_origin(const char *a, const char *b)
{
    CURLU *ua = curl_url(), *ub = curl_url();
    bool same = false;
    if (ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
        curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK) {
        static const CURLUPart parts[] = { CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT };
        same = true;
        for (size_t i = 0; i < CFN_ARRAY_SIZE(parts) && same; i++) {
            char *pa = NULL, *pb = NULL;
            unsigned flags = parts[i] == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0;
            if (curl_url_get(ua, parts[i], &pa, flags) != CURLUE_OK ||
                curl_url_get(ub, parts[i], &pb, flags) != CURLUE_OK || strcasecmp(pa, pb) != 0)
                same = false;
            curl_free(pa);
            curl_free(pb);
        }
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

int http_url_escape(const char *in, bool keep_slash, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
        size_t need = plain ? 1 : 3;
        if (o + need >= cap)
            return -E2BIG;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= cap)
        return -E2BIG;
    out[o] = '\0';
    return (int)o;
}

int http_default_ca_path(char **out)
{
    CURL *h = curl_easy_init();
    if (!h)
        return -ENOMEM;
    char *p = NULL;
    CURLcode cc = curl_easy_getinfo(h, CURLINFO_CAINFO, &p);
    int r = cc != CURLE_OK ? engine_curl_errno(cc, "getinfo(CAINFO)", NULL) : !p ? -ENOENT : 0;
    if (r == 0)
        r = (*out = strdup(p)) ? 0 : -ENOMEM;
    curl_easy_cleanup(h);
    return r;
}
