/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Remote backends against real servers on loopback (started by run.py):
 * fault injection, docker-registry, redirects, bearer tokens, mirrors, the
 * P2P proxy with fallback, S3, OSS and TLS/HTTP/2. Usage: test-http-live SCENARIO
 */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

static Loop *loop;
static HttpEngine *fault_engine;    /* when set, fault backends share it */

#define RUN_SECRETS(list)                                                        \
    do {                                                                         \
        int _before = test_failures;                                             \
        log_check_secrets(list);                                                 \
        fprintf(stderr, "%s log has no secrets\n", test_failures == _before ? "ok  " : "FAIL"); \
    } while (0)

/* ------------------------------------------------------------------------ */
/* fault: the engine's retries, validation, timeouts and isolation          */

static Backend *fault_backend(const char *mode, uint32_t retries, uint32_t timeout_s, bool use_unix)
{
    HttpProxyBackendConfig c;
    http_proxy_backend_config_init(&c);
    char addr[300], path[64];
    if (use_unix)
        snprintf(addr, sizeof(addr), "%s", env_req("CFN_T_FAULT_UNIX"));
    else
        snprintf(addr, sizeof(addr), "http://%s", env_req("CFN_T_FAULT"));
    snprintf(path, sizeof(path), "/%s", mode);
    c.addr = addr;
    c.path = path;
    c.http.retry_limit = retries;
    c.http.timeout_s = timeout_s;
    c.http.retry_base_ms = 50;
    c.http.retry_max_ms = 1500;
    c.http.engine = fault_engine;
    Backend *b = NULL;
    int r = backend_http_proxy_new(&b, loop, &c);
    CHECK_EQ_INT(r, 0);
    return b;
}

static bool untouched(const TReq *t)
{
    const uint8_t *p = t->r.buf;
    for (uint32_t i = 0; i < t->r.len; i++)
        if (p[i] != 0xa5)
            return false;
    return true;
}

static void test_fault_ok(void)
{
    Backend *b = fault_backend("ok", 0, 5, false);
    Blob bl = blob_load(digest(1));
    uint64_t size = 0;
    CHECK_EQ_INT(size_of(loop, b, digest(1), &size), 0);
    CHECK_EQ_INT(size, bl.size);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, (uint32_t)bl.size), (int)bl.size);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 4095, 70001), 70001);
    CHECK_EQ_INT(read_check(loop, b, digest(1), bl.size - 1, 1), 1);
    /* past the end: a short object is an error, never short data */
    TReq t;
    treq_init_read(&t, digest(1), bl.size - 10, 20);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -ENODATA);
    CHECK(untouched(&t));
    treq_fini(&t);
    treq_init_read(&t, digest(1), bl.size + 10, 20);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -ENODATA);
    treq_fini(&t);
    /* unknown blob, bad blob ids */
    const char *missing = "0000000000000000000000000000000000000000000000000000000000000000";
    treq_init_read(&t, missing, 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -ENOENT);
    treq_fini(&t);
    treq_init_read(&t, "../../etc/passwd", 0, 10);
    CHECK_EQ_INT(backend_submit(b, &t.r), -EINVAL);
    treq_fini(&t);
    free(bl.data);
    backend_drop(loop, b);
}

static void test_fault_retries(void)
{
    Backend *b = fault_backend("reset2", 3, 5, false);
    long resets = server_stat("fault", "resets");
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 1 << 20), 1 << 20);
    CHECK_EQ_INT(server_stat("fault", "resets") - resets, 2);
    backend_drop(loop, b);

    b = fault_backend("e503x2", 3, 5, false);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 100, 5000), 5000);
    backend_drop(loop, b);

    /* 429 with Retry-After: 1 -> waits about a second (capped by retry_max_ms) */
    b = fault_backend("e429x1", 3, 5, false);
    uint64_t t0 = loop_now_ns();
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 4096), 4096);
    uint64_t ms = (loop_now_ns() - t0) / 1000000;
    CHECK(ms >= 900 && ms < 5000);
    backend_drop(loop, b);

    /* Retries exhausted: the last status decides. */
    b = fault_backend("e503x9", 2, 5, false);
    TReq t;
    treq_init_read(&t, digest(0), 0, 100);
    CHECK_EQ_INT(run_one(loop, b, &t, 20000), -EIO);
    treq_fini(&t);
    backend_drop(loop, b);

    /* A body that always ends early: retried, then -EPIPE. */
    b = fault_backend("short", 1, 5, false);
    long before = server_stat("fault", "mode_short");
    treq_init_read(&t, digest(0), 0, 200000);
    CHECK_EQ_INT(run_one(loop, b, &t, 20000), -EPIPE);
    CHECK_EQ_INT(server_stat("fault", "mode_short") - before, 2);
    treq_fini(&t);
    backend_drop(loop, b);
}

static void test_fault_validation(void)
{
    TReq t;
    Backend *b = fault_backend("badrange", 3, 5, false);
    long before = server_stat("fault", "mode_badrange");
    treq_init_read(&t, digest(0), 10, 1000);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EPROTO);
    CHECK(untouched(&t));
    CHECK_EQ_INT(server_stat("fault", "mode_badrange") - before, 1);   /* not retried */
    treq_fini(&t);
    backend_drop(loop, b);

    b = fault_backend("wronglen", 3, 5, false);
    treq_init_read(&t, digest(0), 10, 1000);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EPROTO);
    CHECK(untouched(&t));
    treq_fini(&t);
    backend_drop(loop, b);

    /* 200 with the whole object: fine only when the range was the whole object. */
    b = fault_backend("full200", 0, 5, false);
    Blob bl = blob_load(digest(2));
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, (uint32_t)bl.size), (int)bl.size);
    treq_init_read(&t, digest(2), 0, (uint32_t)bl.size - 1);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EPROTO);
    CHECK(untouched(&t));
    treq_fini(&t);
    treq_init_read(&t, digest(2), 1, (uint32_t)bl.size - 1);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EPROTO);
    CHECK(untouched(&t));
    treq_fini(&t);
    treq_init_read(&t, digest(2), 0, (uint32_t)bl.size + 1);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -ENODATA);
    treq_fini(&t);
    free(bl.data);
    backend_drop(loop, b);

    b = fault_backend("bigheader", 0, 5, false);
    treq_init_read(&t, digest(0), 0, 100);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EMSGSIZE);
    treq_fini(&t);
    backend_drop(loop, b);
}

static void test_fault_timeouts(void)
{
    TReq t;
    Backend *b = fault_backend("stall", 0, 1, false);
    uint64_t t0 = loop_now_ns();
    treq_init_read(&t, digest(0), 0, 100000);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -ETIMEDOUT);
    uint64_t ms = (loop_now_ns() - t0) / 1000000;
    CHECK(ms >= 900 && ms < 5000);
    treq_fini(&t);
    backend_drop(loop, b);

    b = fault_backend("stallfirst", 2, 1, false);
    CHECK_EQ_INT(read_check(loop, b, digest(3), 0, 700), 700);
    backend_drop(loop, b);
}

/* A stalled blob must not delay the other blobs' reads. */
static void test_fault_isolation(void)
{
    /* One engine for both, as in the daemon: same host, same connection pool. */
    CHECK_EQ_INT(http_engine_new(&fault_engine, loop, NULL), 0);
    Backend *slow = fault_backend("stall", 0, 30, false);
    Backend *ok = fault_backend("ok", 0, 5, false);
    enum { NSTALL = 8, NOK = 48 };
    TReq st[NSTALL], rq[NOK];
    TReq *okp[NOK];
    for (int i = 0; i < NSTALL; i++) {
        treq_init_read(&st[i], digest(0), (uint64_t)i * 4096, 4096);
        CHECK_EQ_INT(backend_submit(slow, &st[i].r), 0);
    }
    loop_spin(loop, 200);   /* the stalls are in place */
    uint64_t t0 = loop_now_ns();
    for (int i = 0; i < NOK; i++) {
        treq_init_read(&rq[i], digest(1 + i % 3), (uint64_t)(i % 3 == 1 ? 0 : 0), 700);
        okp[i] = &rq[i];
        CHECK_EQ_INT(backend_submit(ok, &rq[i].r), 0);
    }
    CHECK(loop_until(loop, okp, NOK, 10000));
    uint64_t ms = (loop_now_ns() - t0) / 1000000;
    fprintf(stderr, "  %d reads of healthy blobs took %" PRIu64 " ms beside %d stalled reads\n",
            NOK, ms, NSTALL);
    CHECK(ms < 5000);      /* far below the 30 s the stalled reads would take */
    for (int i = 0; i < NOK; i++) {
        CHECK_EQ_INT(rq[i].res, 700);
        treq_fini(&rq[i]);
    }
    for (int i = 0; i < NSTALL; i++)
        CHECK(!st[i].finished);
    /* Freeing a backend completes what it has in flight. */
    backend_free(slow);
    for (int i = 0; i < NSTALL; i++) {
        CHECK(st[i].finished);
        CHECK_EQ_INT(st[i].res, -ECANCELED);
        treq_fini(&st[i]);
    }
    backend_drop(loop, ok);
    fault_engine = http_engine_unref(fault_engine);
    loop_spin(loop, 200);
}

/*
 * Shutdown: backend_cancel() ends every stalled transfer with -ECANCELED on
 * the next loop turn (never inside the call, never after the server's 30 s),
 * and refuses later submits. For the single-URL backends (hb) and for the
 * registry, here pointed at fault.py's registry path with the blob stalled.
 */
static void cancel_check(Backend *b, const char *dig)
{
    enum { N = 4 };
    TReq st[N];
    TReq *p[N];
    for (int i = 0; i < N; i++) {
        treq_init_read(&st[i], dig, (uint64_t)i * 4096, 4096);
        p[i] = &st[i];
        CHECK_EQ_INT(backend_submit(b, &st[i].r), 0);
    }
    loop_spin(loop, 300);   /* the stalls are in place */
    uint64_t t0 = loop_now_ns();
    backend_cancel(b);
    for (int i = 0; i < N; i++)
        CHECK(!st[i].finished);
    CHECK(loop_until(loop, p, N, 1000));
    CHECK((loop_now_ns() - t0) / 1000000 < 1000);
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(st[i].res, -ECANCELED);
        treq_fini(&st[i]);
    }
    TReq later;
    treq_init_read(&later, dig, 0, 100);
    CHECK_EQ_INT(backend_submit(b, &later.r), -ECANCELED);
    treq_fini(&later);
    backend_drop(loop, b);
}

static void test_fault_cancel(void)
{
    cancel_check(fault_backend("stall", 0, 30, false), digest(0));

    char flag[4200];
    snprintf(flag, sizeof(flag), "%s/stall-%s", env_req("CFN_T_STATE"), digest(1));
    close(open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    RegistryConfig c;
    registry_config_init(&c);
    c.scheme = "http";
    c.host = env_req("CFN_T_FAULT");
    c.repo = "library/cfn";
    c.http.timeout_s = 30;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), 0);
    cancel_check(b, digest(1));
    unlink(flag);
}

static void test_fault_unix(void)
{
    Backend *b = fault_backend("ok", 0, 5, true);
    uint64_t size = 0;
    CHECK_EQ_INT(size_of(loop, b, digest(1), &size), 0);
    Blob bl = blob_load(digest(1));
    CHECK_EQ_INT(size, bl.size);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 1000, 300000), 300000);
    free(bl.data);
    backend_drop(loop, b);
    b = fault_backend("reset1", 2, 5, true);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 100000), 100000);
    backend_drop(loop, b);
}

/*
 * Out of file descriptors: a read fails with EMFILE, not with "connection
 * refused" retried with back-off; and under a low open-file limit the
 * engine keeps its connections within a quarter of it (64 -> 16).
 */
static void test_fault_out_of_fds(void)
{
    struct rlimit old;
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
    struct rlimit low = { .rlim_cur = 64, .rlim_max = old.rlim_max };
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
    CHECK_EQ_INT(http_engine_new(&fault_engine, loop, NULL), 0);
    Backend *b = fault_backend("ok", 3, 5, false);
    HttpEngineStats st0, st1;
    http_engine_stats(fault_engine, &st0);

    int spare[64], n_spare = 0;
    for (int fd; n_spare < 64 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
        spare[n_spare++] = fd;
    TReq t;
    treq_init_read(&t, digest(1), 0, 4096);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EMFILE);
    treq_fini(&t);
    http_engine_stats(fault_engine, &st1);
    CHECK_EQ_INT(st1.retries - st0.retries, 0);
    for (int i = 0; i < n_spare; i++)
        close(spare[i]);

    /* 40 reads of 4 blobs the server holds: at most 16 of them get a connection (before: 32). */
    enum { N = 40, BLOBS = 4 };
    TReq rq[N];
    TReq *p[N];
    char hold[BLOBS][100];
    for (int i = 0; i < BLOBS; i++) {
        snprintf(hold[i], sizeof(hold[i]), "hold-%s", digest((unsigned)i));
        server_flag(hold[i], true);
    }
    for (int i = 0; i < N; i++) {
        treq_init_read(&rq[i], digest((unsigned)(i % BLOBS)), (uint64_t)(i / BLOBS) * 50, 100);
        p[i] = &rq[i];
        CHECK_EQ_INT(backend_submit(b, &rq[i].r), 0);
    }
    loop_spin(loop, 500);
    http_engine_stats(fault_engine, &st1);
    fprintf(stderr, "  at an open-file limit of 64: %u requests active, %u waiting\n", st1.active, st1.pending);
    CHECK(st1.active <= 16);
    for (int i = 0; i < BLOBS; i++)
        server_flag(hold[i], false);
    CHECK(loop_until(loop, p, N, 20000));
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(rq[i].res, 100);
        treq_fini(&rq[i]);
    }
    backend_drop(loop, b);
    fault_engine = http_engine_unref(fault_engine);
    loop_spin(loop, 200);
    setrlimit(RLIMIT_NOFILE, &old);
}

static void scenario_fault(void)
{
    RUN(test_fault_ok);
    RUN(test_fault_retries);
    RUN(test_fault_validation);
    RUN(test_fault_timeouts);
    RUN(test_fault_isolation);
    RUN(test_fault_cancel);
    RUN(test_fault_unix);
    RUN(test_fault_out_of_fds);
}


/* ------------------------------------------------------------------------ */
/* registry: Debian's docker-registry (distribution v2) with htpasswd auth   */

/* base64("user:pass") into out[256] */
static char *b64_of(const char *user, const char *pass, char *out)
{
    char in[200];
    snprintf(in, sizeof(in), "%s:%s", user, pass);
    /* tiny encoder for the test side */
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)in[i] << 16 | (i + 1 < n ? (uint32_t)(uint8_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? (uint8_t)in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static char *b64_userpass(void)
{
    static char out[256];
    return b64_of(env_req("CFN_T_USER"), env_req("CFN_T_PASSWORD"), out);
}

static HttpEngine *shared_engine(void)
{
    HttpEngine *e = NULL;
    CHECK_EQ_INT(http_engine_new(&e, loop, NULL), 0);
    return e;
}

static Backend *registry_backend(HttpEngine *e, const char *auth, const char *docker_config)
{
    RegistryConfig c;
    registry_config_init(&c);
    c.scheme = "http";
    c.host = env_req("CFN_T_REGISTRY");
    c.repo = "library/cfn";
    c.auth = auth;
    c.docker_config = docker_config;
    c.http.engine = e;
    c.http.retry_limit = 1;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), 0);
    return b;
}

static void test_registry_reads(void)
{
    HttpEngine *e = shared_engine();
    Backend *b = registry_backend(e, b64_userpass(), NULL);
    for (unsigned i = 0; i < 4; i++) {
        Blob bl = blob_load(digest(i));
        uint64_t size = 0;
        CHECK_EQ_INT(size_of(loop, b, digest(i), &size), 0);
        CHECK_EQ_INT(size, bl.size);
        CHECK_EQ_INT(read_check(loop, b, digest(i), 0, (uint32_t)bl.size), (int)bl.size);
        if (bl.size > 3000)
            CHECK_EQ_INT(read_check(loop, b, digest(i), 1000, 2000), 2000);
        free(bl.data);
    }
    /* 64 concurrent reads across the blobs */
    enum { N = 64 };
    TReq t[N];
    TReq *tp[N];
    Blob bl[4];
    for (unsigned i = 0; i < 4; i++)
        bl[i] = blob_load(digest(i));
    for (unsigned i = 0; i < N; i++) {
        unsigned k = i % 2;             /* the two large blobs */
        uint32_t len = 65536;
        uint64_t off = ((uint64_t)i * 40961) % (bl[k].size - len);
        treq_init_read(&t[i], digest(k), off, len);
        tp[i] = &t[i];
        CHECK_EQ_INT(backend_submit(b, &t[i].r), 0);
    }
    CHECK(loop_until(loop, tp, N, 30000));
    for (unsigned i = 0; i < N; i++) {
        unsigned k = i % 2;
        CHECK_EQ_INT(t[i].res, 65536);
        CHECK(memcmp(t[i].r.buf, bl[k].data + t[i].r.off, 65536) == 0);
        treq_fini(&t[i]);
    }
    for (unsigned i = 0; i < 4; i++)
        free(bl[i].data);
    HttpEngineStats st;
    http_engine_stats(e, &st);
    fprintf(stderr, "  %" PRIu64 " requests over %" PRIu64 " connections, %" PRIu64 " retries\n",
            st.requests, st.sockets_opened, st.retries);
    CHECK(st.sockets_opened <= 40);     /* connections are reused */
    CHECK(st.requests >= 64 + 8);

    /* a missing blob and a range past the end */
    TReq m;
    treq_init_read(&m, "1111111111111111111111111111111111111111111111111111111111111111", 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &m, 10000), -ENOENT);
    treq_fini(&m);
    Blob b3 = blob_load(digest(3));
    treq_init_read(&m, digest(3), b3.size - 5, 10);
    CHECK_EQ_INT(run_one(loop, b, &m, 10000), -ENODATA);
    treq_fini(&m);
    free(b3.data);
    backend_drop(loop, b);
    http_engine_unref(e);
    loop_spin(loop, 50);
}

static void test_registry_auth(void)
{
    /* docker config.json supplies the credentials */
    Backend *b = registry_backend(NULL, NULL, env_req("CFN_T_DOCKER_CONFIG"));
    CHECK_EQ_INT(read_check(loop, b, digest(1), 5, 500), 500);
    backend_drop(loop, b);

    /* anonymous and wrong credentials are refused */
    b = registry_backend(NULL, NULL, NULL);
    TReq t;
    treq_init_read(&t, digest(1), 0, 100);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EACCES);
    treq_fini(&t);
    backend_drop(loop, b);
    b = registry_backend(NULL, "d3Jvbmc6d3Jvbmc=", NULL);       /* wrong:wrong */
    treq_init_read(&t, digest(1), 0, 100);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EACCES);
    treq_fini(&t);
    backend_drop(loop, b);

    /* malformed configs */
    RegistryConfig c;
    registry_config_init(&c);
    c.host = env_req("CFN_T_REGISTRY");
    c.repo = "library/cfn";
    c.auth = "bm9jb2xvbg==";    /* "nocolon" */
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), -EINVAL);
    c.auth = NULL;
    c.repo = "../x";
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), -EINVAL);
}

static void scenario_registry(void)
{
    RUN(test_registry_reads);
    RUN(test_registry_auth);
    const char *secrets[] = { env_req("CFN_T_PASSWORD"), b64_userpass(), NULL };
    RUN_SECRETS(secrets);
}

/* ------------------------------------------------------------------------ */
/* redirect: nginx origin (Basic auth) -> 307 -> object store on 127.0.0.2  */

static long file_count_lines(const char *path, const char *needle)
{
    char *txt = file_read_all(path, NULL);
    long n = 0;
    if (!txt)
        return -1;
    for (char *p = txt; (p = strstr(p, needle)); p++)
        n++;
    free(txt);
    return n;
}

static long origin_hits(const char *log)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", env_req("CFN_T_NGINX_DIR"), log);
    /* nginx logs a request after its response has gone out: count once the log holds still. */
    long n = file_count_lines(path, "/v2/"), prev;
    int tries = 0;
    do {
        prev = n;
        usleep(50 * 1000);
        n = file_count_lines(path, "/v2/");
    } while (n != prev && ++tries < 40);
    return n;
}

static Backend *redirect_backend(const char *host_env, const char *scheme_rw, const char *host_rw)
{
    RegistryConfig c;
    registry_config_init(&c);
    c.scheme = "http";
    c.host = env_req(host_env);
    c.repo = "library/cfn";
    c.auth = b64_userpass();
    c.blob_url_scheme = scheme_rw;
    c.blob_redirected_host = host_rw;
    const char *hdrs[] = { "X-Cfn-Tenant: t1" };
    c.http.headers = hdrs;
    c.http.n_headers = 1;
    c.http.retry_limit = 1;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), 0);
    return b;
}

static void test_redirect_basic(void)
{
    Backend *b = redirect_backend("CFN_T_ORIGIN", NULL, NULL);
    long o0 = origin_hits("origin.log"), s0 = server_stat("objstore", "requests");
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 100000), 100000);
    long o1 = origin_hits("origin.log");
    CHECK(o1 - o0 >= 1 && o1 - o0 <= 2);        /* anonymous 401, then with Basic */
    CHECK_EQ_INT(server_stat("objstore", "requests") - s0, 1);
    /* The redirect URL is remembered per blob: the origin is not asked again. */
    CHECK_EQ_INT(read_check(loop, b, digest(1), 200000, 4096), 4096);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 7, 9), 9);
    CHECK_EQ_INT(origin_hits("origin.log"), o1);
    CHECK_EQ_INT(server_stat("objstore", "requests") - s0, 3);
    /* The presigned URL expires: 403, drop it, go through the origin once more. */
    server_flag("expire", true);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 300000, 50000), 50000);
    CHECK_EQ_INT(origin_hits("origin.log"), o1 + 1);
    CHECK_EQ_INT(server_stat("objstore", "forbidden"), 1);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 10), 10);
    CHECK_EQ_INT(origin_hits("origin.log"), o1 + 1);
    /* HEAD follows the redirect too. */
    uint64_t size = 0;
    Blob bl = blob_load(digest(0));
    CHECK_EQ_INT(size_of(loop, b, digest(0), &size), 0);
    CHECK_EQ_INT(size, bl.size);
    free(bl.data);
    /* concurrent reads of several blobs */
    enum { N = 32 };
    TReq t[N];
    TReq *tp[N];
    for (int i = 0; i < N; i++) {
        treq_init_read(&t[i], digest(i % 3), (uint64_t)i * 13, 777);
        tp[i] = &t[i];
        CHECK_EQ_INT(backend_submit(b, &t[i].r), 0);
    }
    CHECK(loop_until(loop, tp, N, 30000));
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(t[i].res, 777);
        treq_fini(&t[i]);
    }
    /* The point of it all: no Authorization and no configured header at the other host. */
    CHECK_EQ_INT(server_stat("objstore", "auth_seen"), 0);
    CHECK_EQ_INT(server_stat("objstore", "custom_header_seen"), 0);
    CHECK(server_stat("objstore", "requests") > 30);
    backend_drop(loop, b);
}

static void test_redirect_rewrite(void)
{
    /* The origin points at https://objects.invalid:1; blob_url_scheme and
     * blob_redirected_host turn that into the object store. */
    Backend *b = redirect_backend("CFN_T_ORIGIN_REWRITE", "http", env_req("CFN_T_OBJSTORE"));
    long s0 = server_stat("objstore", "requests");
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 4096), 4096);
    CHECK_EQ_INT(server_stat("objstore", "requests") - s0, 1);
    CHECK_EQ_INT(server_stat("objstore", "auth_seen"), 0);
    backend_drop(loop, b);
}

static void test_redirect_same_origin(void)
{
    /* A relative redirect to the same origin keeps the credentials. */
    Backend *b = redirect_backend("CFN_T_ORIGIN_SAME", NULL, NULL);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 12345, 23456), 23456);
    uint64_t size = 0;
    CHECK_EQ_INT(size_of(loop, b, digest(3), &size), 0);
    CHECK_EQ_INT(size, 777);
    backend_drop(loop, b);
}

static void scenario_redirect(void)
{
    RUN(test_redirect_basic);
    RUN(test_redirect_rewrite);
    RUN(test_redirect_same_origin);
    const char *secrets[] = { env_req("CFN_T_PASSWORD"), b64_userpass(), "sig=", NULL };
    RUN_SECRETS(secrets);
}

/* ------------------------------------------------------------------------ */
/* token: the distribution bearer flow against a scripted token server      */

static Backend *token_backend(const char *auth, const char *token, const char *docker_config)
{
    RegistryConfig c;
    registry_config_init(&c);
    c.scheme = "http";
    c.host = env_req("CFN_T_REGISTRY");
    c.repo = "library/cfn";
    c.auth = auth;
    c.registry_token = token;
    c.docker_config = docker_config;
    c.http.retry_limit = 1;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), 0);
    return b;
}

static void test_token_flow(void)
{
    Backend *b = token_backend(b64_userpass(), NULL, NULL);
    long f0 = server_stat("token", "token_get");
    enum { N = 64 };
    TReq t[N];
    TReq *tp[N];
    for (int i = 0; i < N; i++) {
        treq_init_read(&t[i], digest(i % 2), (uint64_t)i * 1000, 5000);
        tp[i] = &t[i];
        CHECK_EQ_INT(backend_submit(b, &t[i].r), 0);
    }
    CHECK(loop_until(loop, tp, N, 30000));
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(t[i].res, 5000);
        treq_fini(&t[i]);
    }
    /* 64 concurrent 401s share one token request */
    CHECK_EQ_INT(server_stat("token", "token_get") - f0, 1);
    long u0 = server_stat("token", "unauthorized");
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 1 << 20), 1 << 20);
    CHECK_EQ_INT(server_stat("token", "unauthorized"), u0);   /* the cached token is used */

    /* A revoked token: 401, refreshed once, then served. */
    server_flag("revoke", true);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 10, 10), 10);
    CHECK_EQ_INT(server_stat("token", "token_get") - f0, 2);
    CHECK_EQ_INT(server_stat("token", "unauthorized"), u0 + 1);
    backend_drop(loop, b);

    /* Tokens are refreshed shortly before they expire, without a 401. */
    server_flag("short-ttl", true);
    b = token_backend(b64_userpass(), NULL, NULL);
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 4096), 4096);
    long f1 = server_stat("token", "token_get"), u1 = server_stat("token", "unauthorized");
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 100), 100);
    CHECK_EQ_INT(server_stat("token", "token_get"), f1);
    loop_spin(loop, 2100);      /* expires_in 2 s */
    CHECK_EQ_INT(read_check(loop, b, digest(2), 100, 100), 100);
    CHECK_EQ_INT(server_stat("token", "token_get"), f1 + 1);
    CHECK_EQ_INT(server_stat("token", "unauthorized"), u1);
    server_flag("short-ttl", false);
    backend_drop(loop, b);
}

static void test_token_variants(void)
{
    TReq t;
    /* wrong password: the realm refuses, the read fails cleanly */
    Backend *b = token_backend("d3Jvbmc6d3Jvbmc=", NULL, NULL);
    treq_init_read(&t, digest(0), 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EACCES);
    treq_fini(&t);
    backend_drop(loop, b);

    /* no credentials: refused, unless the realm grants anonymous tokens */
    b = token_backend(NULL, NULL, NULL);
    treq_init_read(&t, digest(0), 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EACCES);
    treq_fini(&t);
    server_flag("anon-ok", true);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 10), 10);
    server_flag("anon-ok", false);
    backend_drop(loop, b);

    /* a static registry_token is sent as is */
    long f0 = server_stat("token", "token_get"), p0 = server_stat("token", "token_post");
    b = token_backend(NULL, env_req("CFN_T_STATIC_TOKEN"), NULL);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 1000), 1000);
    CHECK_EQ_INT(server_stat("token", "token_get"), f0);
    backend_drop(loop, b);

    /* docker config.json with an identitytoken: OAuth2 refresh-token POST */
    b = token_backend(NULL, NULL, env_req("CFN_T_DOCKER_CONFIG"));
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 1000), 1000);
    CHECK_EQ_INT(server_stat("token", "token_post") - p0, 1);
    backend_drop(loop, b);
}

/* Freeing the backend from inside done() while other reads wait for a token. */
static Backend *free_me;
static int freed_calls;
static void free_in_done(BackendRequest *r, int res)
{
    treq_done(r, res);
    if (free_me) {
        Backend *b = free_me;
        free_me = NULL;
        backend_free(b);
    }
    freed_calls++;
}

static void test_token_free_in_done(void)
{
    /* The realm refuses these credentials: the waiters are failed from
     * inside the token callback, and the first done() frees the backend. */
    free_me = token_backend("d3Jvbmc6d3Jvbmc=", NULL, NULL);
    enum { N = 16 };
    TReq t[N];
    TReq *tp[N];
    for (int i = 0; i < N; i++) {
        treq_init_read(&t[i], digest(0), (uint64_t)i, 10);
        t[i].r.done = free_in_done;
        tp[i] = &t[i];
        CHECK_EQ_INT(backend_submit(free_me, &t[i].r), 0);
    }
    CHECK(loop_until(loop, tp, N, 20000));
    CHECK_EQ_INT(freed_calls, N);
    CHECK(free_me == NULL);
    int cancelled = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        cancelled += t[i].res == -ECANCELED;
        refused += t[i].res == -EACCES;
        treq_fini(&t[i]);
    }
    CHECK_EQ_INT(refused, 1);
    CHECK_EQ_INT(cancelled, N - 1);
    loop_spin(loop, 100);
}

static char **issued_tokens(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tokens.txt", env_req("CFN_T_STATE"));
    char *txt = file_read_all(path, NULL);
    size_t n = 0;
    char **v = calloc(256, sizeof(char *));
    for (char *save = NULL, *tok = txt ? strtok_r(txt, "\n", &save) : NULL; tok && n < 250;
         tok = strtok_r(NULL, "\n", &save))
        v[n++] = strdup(tok);
    free(txt);
    return v;
}

/*
 * No log line may hold a token the token server issued (at least MIN_ISSUED
 * of them) or any of SECRETS (NULL-terminated).
 */
static void run_secrets_with_issued_tokens(const char *const *secrets, size_t min_issued)
{
    char **issued = issued_tokens();
    size_t n_issued = 0, n_secrets = 0;
    while (issued[n_issued])
        n_issued++;
    while (secrets[n_secrets])
        n_secrets++;
    CHECK(n_issued >= min_issued);
    const char **all = calloc(n_issued + n_secrets + 1, sizeof(*all));
    CHECK(all != NULL);
    if (all) {
        memcpy(all, issued, n_issued * sizeof(*all));
        memcpy(all + n_issued, secrets, n_secrets * sizeof(*all));
        RUN_SECRETS(all);
    }
    free(all);
    for (size_t i = 0; i < n_issued; i++)
        free(issued[i]);
    free(issued);
}

static void scenario_token(void)
{
    RUN(test_token_flow);
    RUN(test_token_variants);
    RUN(test_token_free_in_done);
    const char *secrets[] = { env_req("CFN_T_PASSWORD"), b64_userpass(), env_req("CFN_T_IDENTITY"),
                              env_req("CFN_T_STATIC_TOKEN"), NULL };
    run_secrets_with_issued_tokens(secrets, 4);
}

/* ------------------------------------------------------------------------ */
/* mirror: nginx mirrors tried in order, failure limit, health check, origin */

static Backend *mirror_backend(const MirrorConfig *m, size_t n)
{
    RegistryConfig c;
    registry_config_init(&c);
    c.scheme = "http";
    c.host = env_req("CFN_T_ORIGIN");
    c.repo = "library/cfn";
    c.mirrors = m;
    c.n_mirrors = n;
    c.http.retry_limit = 0;
    c.http.connect_timeout_s = 2;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), 0);
    return b;
}

static void test_mirror_order(void)
{
    static const char *const good_hdrs[] = { "X-Mirror-Token: m1" };
    MirrorConfig m[2];
    mirror_config_init(&m[0]);
    mirror_config_init(&m[1]);
    m[0].host = env_req("CFN_T_MIRROR_REFUSED");
    m[0].failure_limit = 2;
    m[0].health_check_interval_s = 60;
    m[1].host = env_req("CFN_T_MIRROR_GOOD");
    m[1].headers = good_hdrs;
    m[1].n_headers = 1;
    Backend *b = mirror_backend(m, 2);
    long o0 = origin_hits("origin.log"), g0 = origin_hits("good.log");
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(read_check(loop, b, digest(i % 2), (uint64_t)i * 100, 1000), 1000);
    CHECK_EQ_INT(origin_hits("good.log") - g0, 4);
    CHECK_EQ_INT(origin_hits("origin.log"), o0);
    uint64_t size = 0;
    CHECK_EQ_INT(size_of(loop, b, digest(3), &size), 0);
    CHECK_EQ_INT(size, 777);
    backend_drop(loop, b);

    /* Without its header the good mirror says 403: the origin serves. */
    m[1].n_headers = 0;
    b = mirror_backend(&m[1], 1);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 1000), 1000);
    CHECK_EQ_INT(origin_hits("origin.log"), o0 + 1);
    backend_drop(loop, b);
}

static void test_mirror_failover(void)
{
    MirrorConfig m;
    mirror_config_init(&m);
    m.host = env_req("CFN_T_MIRROR_BAD");      /* 503 for blobs, 200 for /v2/ */
    m.failure_limit = 3;
    m.health_check_interval_s = 1;
    Backend *b = mirror_backend(&m, 1);
    long o0 = origin_hits("origin.log"), b0 = origin_hits("bad.log");
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(read_check(loop, b, digest(0), (uint64_t)i, 100), 100);
    /* three failures disable the mirror, the origin served all six */
    CHECK_EQ_INT(origin_hits("bad.log") - b0, 3);
    CHECK_EQ_INT(origin_hits("origin.log") - o0, 6);
    /* its health check (/v2/ answers 200) brings it back */
    loop_spin(loop, 1600);
    long b1 = origin_hits("bad.log");
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 100), 100);
    CHECK_EQ_INT(origin_hits("bad.log") - b1, 1);
    backend_drop(loop, b);
}

static void scenario_mirror(void)
{
    RUN(test_mirror_order);
    RUN(test_mirror_failover);
}

/* ------------------------------------------------------------------------ */
/* ratelimit: nginx limit_req answers 429; the engine backs off and retries */

static void test_ratelimit(void)
{
    HttpEngine *e = shared_engine();
    RegistryConfig c;
    registry_config_init(&c);
    c.scheme = "http";
    c.host = env_req("CFN_T_ORIGIN");
    c.repo = "library/cfn";
    c.http.engine = e;
    c.http.retry_limit = 10;
    c.http.retry_base_ms = 100;
    c.http.retry_max_ms = 800;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), 0);
    enum { N = 40 };
    TReq t[N];
    TReq *tp[N];
    for (int i = 0; i < N; i++) {
        treq_init_read(&t[i], digest(i % 4 == 3 ? 0 : i % 4), (uint64_t)i, 600);
        tp[i] = &t[i];
        CHECK_EQ_INT(backend_submit(b, &t[i].r), 0);
    }
    CHECK(loop_until(loop, tp, N, 60000));
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(t[i].res, 600);
        treq_fini(&t[i]);
    }
    HttpEngineStats st;
    http_engine_stats(e, &st);
    fprintf(stderr, "  %d reads needed %" PRIu64 " retries after 429s\n", N, st.retries);
    CHECK(st.retries > 0);
    backend_drop(loop, b);
    http_engine_unref(e);
    loop_spin(loop, 50);
}

/* ------------------------------------------------------------------------ */
/* proxy-fallback: a dfdaemon-like forward proxy with health checks         */

static Backend *proxied_backend(bool fallback)
{
    HttpProxyBackendConfig c;
    http_proxy_backend_config_init(&c);
    char addr[300], purl[300], ping[300];
    snprintf(addr, sizeof(addr), "http://%s", env_req("CFN_T_FAULT"));
    snprintf(purl, sizeof(purl), "http://%s", env_req("CFN_T_PROXY"));
    snprintf(ping, sizeof(ping), "http://%s/server/ping", env_req("CFN_T_PROXY"));
    c.addr = addr;
    c.path = "/ok";
    c.http.proxy.url = purl;
    c.http.proxy.ping_url = ping;
    c.http.proxy.fallback = fallback;
    c.http.proxy.check_interval_s = 1;
    c.http.retry_limit = 1;
    c.http.retry_base_ms = 50;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_http_proxy_new(&b, loop, &c), 0);
    return b;
}

static void test_proxy_fallback(void)
{
    Backend *b = proxied_backend(true);
    long p0 = server_stat("proxy", "proxied"), d0 = server_stat("fault", "requests");
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 100000), 100000);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 5, 5), 5);
    CHECK_EQ_INT(server_stat("proxy", "proxied") - p0, 2);
    CHECK_EQ_INT(server_stat("fault", "requests") - d0, 2);    /* fetched by the proxy */

    /* The proxy dies: the request falls back to the origin, later ones go direct. */
    server_flag("proxy-down", true);
    long f0 = server_stat("fault", "requests");
    CHECK_EQ_INT(read_check(loop, b, digest(1), 1000, 1000), 1000);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 2000, 1000), 1000);
    CHECK(server_stat("proxy", "dropped") >= 1);
    CHECK_EQ_INT(server_stat("fault", "requests") - f0, 2);
    /* It comes back: the ping notices and traffic returns to it. */
    server_flag("proxy-down", false);
    loop_spin(loop, 2300);
    long p1 = server_stat("proxy", "proxied");
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 4096), 4096);
    CHECK_EQ_INT(server_stat("proxy", "proxied") - p1, 1);
    CHECK(server_stat("proxy", "pings") >= 2);

    /* A 5xx from the proxy also falls back, without marking it down. */
    server_flag("proxy-5xx", true);
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 100), 100);
    server_flag("proxy-5xx", false);
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 100), 100);
    CHECK_EQ_INT(server_stat("proxy", "proxied") - p1, 2);
    backend_drop(loop, b);
}

static void test_proxy_no_fallback(void)
{
    Backend *b = proxied_backend(false);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 100), 100);
    server_flag("proxy-down", true);
    TReq t;
    treq_init_read(&t, digest(0), 0, 100);
    int r = run_one(loop, b, &t, 10000);
    CHECK(r == -ECONNRESET || r == -EPIPE || r == -EHOSTUNREACH);
    treq_fini(&t);
    treq_init_read(&t, digest(0), 0, 100);
    CHECK_EQ_INT(backend_submit(b, &t.r), -EHOSTUNREACH);
    treq_fini(&t);
    server_flag("proxy-down", false);
    backend_drop(loop, b);
}

static void scenario_proxy(void)
{
    RUN(test_proxy_fallback);
    RUN(test_proxy_no_fallback);
}

/* ------------------------------------------------------------------------ */
/* s3 / oss: scripted servers that verify every signature                    */

/* The AWS SigV4 test suite (get-vanilla, get-vanilla-query-order-key-case)
 * through the engine's SigV4 path. The server echoes the Authorization. */
typedef struct SigCase {
    const char *path;
    const char *want;
} SigCase;

typedef struct SigXfer {
    HttpXfer x;
    int res;
    bool finished;
} SigXfer;

static void sig_done(HttpXfer *x, int res)
{
    SigXfer *s = cfn_container_of(x, SigXfer, x);
    s->res = res;
    s->finished = true;
}

static void test_sigv4_suite(void)
{
    static const SigCase cases[] = {
        { "/", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
               "SignedHeaders=host;x-amz-date, "
               "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
        /* The vector of get-vanilla-query-order-key-case, with the query already
         * sorted: libcurl 7.88 signs the query string in the order given. */
        { "/?Param1=value1&Param2=value2",
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
          "SignedHeaders=host;x-amz-date, "
          "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
    };
    HttpEngine *e = shared_engine();
    HttpTransport tp;
    http_transport_default(&tp);
    tp.aws_sigv4 = "aws:amz:us-east-1:service";
    tp.username = "AKIDEXAMPLE";
    tp.password = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    for (size_t i = 0; i < CFN_ARRAY_SIZE(cases); i++) {
        char url[300], body[512];
        snprintf(url, sizeof(url), "http://%s%s", env_req("CFN_T_S3"), cases[i].path);
        const char *hdrs[] = { "Host: example.amazonaws.com", "X-Amz-Date: 20150830T123600Z", NULL };
        SigXfer sx = { 0 };
        HttpXfer *x = &sx.x;
        http_xfer_init(x);
        x->tp = &tp;
        x->url = url;
        x->headers = hdrs;
        x->buf = body;
        x->buf_cap = sizeof(body) - 1;
        x->done = sig_done;
        CHECK_EQ_INT(http_xfer_submit(e, x), 0);
        for (int k = 0; k < 200 && !sx.finished; k++)
            loop_run_once(loop, 50);
        CHECK(sx.finished);
        CHECK_EQ_INT(sx.res, 0);
        CHECK_EQ_INT(x->resp.status, 200);
        body[x->resp.body_len] = '\0';
        if (strcmp(body, cases[i].want) != 0) {
            fprintf(stderr, "sigv4 case %s:\n got  %s\n want %s\n", cases[i].path, body, cases[i].want);
            test_failures++;
        }
        http_xfer_reset(x);
    }
    http_engine_unref(e);
    loop_spin(loop, 50);
}

static Backend *s3_backend(const char *bucket, bool path_style, const char *secret, bool token)
{
    S3Config c;
    s3_config_init(&c);
    char ep[300];
    snprintf(ep, sizeof(ep), "%s%s", path_style ? "" : "localhost:",
             path_style ? env_req("CFN_T_S3") : strchr(env_req("CFN_T_S3"), ':') + 1);
    c.scheme = "http";
    c.endpoint = ep;
    c.region = "eu-west-1";
    c.bucket_name = bucket;
    c.object_prefix = "layers/v1/";
    c.access_key_id = secret ? env_req("CFN_T_S3_KEY") : NULL;
    c.access_key_secret = secret;
    c.session_token = token ? env_req("CFN_T_S3_TOKEN") : NULL;
    c.path_style = path_style;
    c.http.retry_limit = 0;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_s3_new(&b, loop, &c), 0);
    return b;
}

static void test_s3(void)
{
    const char *secret = env_req("CFN_T_S3_SECRET");
    Blob bl = blob_load(digest(1));
    for (int style = 0; style < 2; style++) {
        Backend *b = s3_backend("cfnbucket", style == 0, secret, true);
        long v0 = server_stat("s3", "verified");
        uint64_t size = 0;
        CHECK_EQ_INT(size_of(loop, b, digest(1), &size), 0);
        CHECK_EQ_INT(size, bl.size);
        CHECK_EQ_INT(read_check(loop, b, digest(1), 0, (uint32_t)bl.size), (int)bl.size);
        CHECK_EQ_INT(read_check(loop, b, digest(1), 99, 99999), 99999);
        CHECK_EQ_INT(server_stat("s3", "verified") - v0, 3);
        backend_drop(loop, b);
    }
    CHECK(server_stat("s3", "path_style") >= 3);
    CHECK(server_stat("s3", "virtual_host") >= 3);
    CHECK_EQ_INT(server_stat("s3", "denied"), 0);
    free(bl.data);

    TReq t;
    /* a wrong secret, a missing session token, anonymous on a private bucket */
    Backend *b = s3_backend("cfnbucket", true, "not-the-secret", true);
    treq_init_read(&t, digest(0), 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EACCES);
    treq_fini(&t);
    backend_drop(loop, b);
    b = s3_backend("cfnbucket", true, secret, false);
    treq_init_read(&t, digest(0), 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EACCES);
    treq_fini(&t);
    backend_drop(loop, b);
    b = s3_backend("cfnbucket", true, NULL, false);
    treq_init_read(&t, digest(0), 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EACCES);
    treq_fini(&t);
    backend_drop(loop, b);
    /* anonymous access to a public bucket */
    long a0 = server_stat("s3", "anonymous");
    b = s3_backend("cfnpublic", false, NULL, false);
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 4096), 4096);
    CHECK_EQ_INT(server_stat("s3", "anonymous") - a0, 1);
    backend_drop(loop, b);
}

static void scenario_s3(void)
{
    RUN(test_sigv4_suite);
    RUN(test_s3);
    const char *secrets[] = { env_req("CFN_T_S3_SECRET"), env_req("CFN_T_S3_TOKEN"),
                              "wJalrXUtnFEMI", NULL };
    RUN_SECRETS(secrets);
}

static Backend *oss_backend(const char *bucket, const char *secret)
{
    OssConfig c;
    oss_config_init(&c);
    char ep[300];
    snprintf(ep, sizeof(ep), "localhost:%s", strchr(env_req("CFN_T_S3"), ':') + 1);
    c.scheme = "http";
    c.endpoint = ep;
    c.bucket_name = bucket;
    c.object_prefix = "layers/v1/";
    c.access_key_id = secret ? env_req("CFN_T_S3_KEY") : NULL;
    c.access_key_secret = secret;
    c.http.retry_limit = 0;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_oss_new(&b, loop, &c), 0);
    return b;
}

static void test_oss(void)
{
    Backend *b = oss_backend("cfnbucket", env_req("CFN_T_S3_SECRET"));
    Blob bl = blob_load(digest(0));
    uint64_t size = 0;
    CHECK_EQ_INT(size_of(loop, b, digest(0), &size), 0);
    CHECK_EQ_INT(size, bl.size);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, (uint32_t)bl.size), (int)bl.size);
    CHECK_EQ_INT(server_stat("s3", "verified"), 2);
    free(bl.data);
    backend_drop(loop, b);
    TReq t;
    b = oss_backend("cfnbucket", "wrong");
    treq_init_read(&t, digest(0), 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &t, 10000), -EACCES);
    treq_fini(&t);
    backend_drop(loop, b);
    b = oss_backend("cfnpublic", NULL);
    CHECK_EQ_INT(read_check(loop, b, digest(3), 0, 777), 777);
    backend_drop(loop, b);
}

static void scenario_oss(void)
{
    RUN(test_oss);
    const char *secrets[] = { env_req("CFN_T_S3_SECRET"), NULL };
    RUN_SECRETS(secrets);
}

/* ------------------------------------------------------------------------ */
/* tls: nginx over TLS with HTTP/2                                          */

static Backend *tls_backend(HttpEngine *e, const char *ca, bool skip)
{
    HttpProxyBackendConfig c;
    http_proxy_backend_config_init(&c);
    char addr[300];
    snprintf(addr, sizeof(addr), "https://%s", env_req("CFN_T_TLS"));
    const char *cas[] = { ca };
    c.addr = addr;
    c.path = "/blobs";
    c.http.engine = e;
    c.http.ca_cert_files = cas;
    c.http.n_ca_cert_files = ca ? 1 : 0;
    c.http.skip_verify = skip;
    c.http.retry_limit = 0;
    Backend *b = NULL;
    CHECK_EQ_INT(backend_http_proxy_new(&b, loop, &c), 0);
    return b;
}

static void test_tls_h2(void)
{
    HttpEngine *e = shared_engine();
    Backend *b = tls_backend(e, env_req("CFN_T_CA"), false);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 1 << 20), 1 << 20);
    enum { N = 48 };
    TReq t[N];
    TReq *tp[N];
    Blob bl = blob_load(digest(1));
    for (int i = 0; i < N; i++) {
        treq_init_read(&t[i], digest(1), (uint64_t)i * 50000, 20000);
        tp[i] = &t[i];
        CHECK_EQ_INT(backend_submit(b, &t[i].r), 0);
    }
    CHECK(loop_until(loop, tp, N, 30000));
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(t[i].res, 20000);
        CHECK(memcmp(t[i].r.buf, bl.data + t[i].r.off, 20000) == 0);
        treq_fini(&t[i]);
    }
    free(bl.data);
    HttpEngineStats st;
    http_engine_stats(e, &st);
    fprintf(stderr, "  %" PRIu64 " requests, %" PRIu64 " over HTTP/2, %" PRIu64 " connection(s)\n",
            st.requests, st.h2_responses, st.sockets_opened);
    CHECK_EQ_INT(st.h2_responses, st.requests);
    CHECK(st.sockets_opened <= 2);      /* multiplexed */
    backend_drop(loop, b);
    http_engine_unref(e);
    loop_spin(loop, 50);

    /* an unknown CA is refused; skip_verify accepts it */
    b = tls_backend(NULL, NULL, false);
    TReq x;
    treq_init_read(&x, digest(0), 0, 10);
    CHECK_EQ_INT(run_one(loop, b, &x, 10000), -EPROTO);
    treq_fini(&x);
    backend_drop(loop, b);
    b = tls_backend(NULL, NULL, true);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 10), 10);
    backend_drop(loop, b);
}

/* ------------------------------------------------------------------------ */
/* creds: which server receives which credentials (every server records the  */
/* Authorization of each request it got)                                     */

typedef struct CredsCfg {
    const char *auth;               /* the origin's base64 user:pass */
    const char *token;              /* the origin's static registry_token */
    const char *docker_config;
    const MirrorConfig *mirrors;
    size_t n_mirrors;
    const char *proxy_url, *proxy_ping;
    const char *const *headers;     /* common headers */
    size_t n_headers;
} CredsCfg;

static Backend *creds_backend(const CredsCfg *cc)
{
    static const char *ca[1];
    ca[0] = env_req("CFN_T_CA");
    RegistryConfig c;
    registry_config_init(&c);
    c.scheme = "http";
    c.host = env_req("CFN_T_ORIGIN");
    c.repo = "library/cfn";
    c.auth = cc->auth;
    c.registry_token = cc->token;
    c.docker_config = cc->docker_config;
    c.mirrors = cc->mirrors;
    c.n_mirrors = cc->n_mirrors;
    c.http.ca_cert_files = ca;
    c.http.n_ca_cert_files = 1;
    c.http.retry_limit = 0;
    c.http.connect_timeout_s = 2;
    c.http.headers = cc->headers;
    c.http.n_headers = cc->n_headers;
    if (cc->proxy_url) {
        c.http.proxy.url = cc->proxy_url;
        c.http.proxy.ping_url = cc->proxy_ping;
        c.http.proxy.check_interval_s = 1;
    }
    Backend *b = NULL;
    CHECK_EQ_INT(backend_registry_new(&b, loop, &c), 0);
    return b;
}

static char *origin_basic(void)
{
    static char line[300];
    snprintf(line, sizeof(line), "Basic %s", b64_userpass());
    return line;
}

static char *mirror_basic(void)
{
    static char b64[256], line[300];
    snprintf(line, sizeof(line), "Basic %s", b64_of(env_req("CFN_T_MIRROR_USER"), env_req("CFN_T_MIRROR_PASSWORD"), b64));
    return line;
}

static MirrorConfig creds_mirror(const char *env)
{
    static char url[4][300];
    static unsigned k;
    MirrorConfig m;
    mirror_config_init(&m);
    char *u = url[k++ % 4];
    snprintf(u, sizeof(url[0]), "http://%s", env_req(env));
    m.host = u;
    return m;
}

/* (1) A static registry_token belongs to the origin: never sent to a mirror. */
static void test_creds_token_not_to_mirror(void)
{
    MirrorConfig m = creds_mirror("CFN_T_MIRROR_OPEN");
    CredsCfg cc = { .token = env_req("CFN_T_STATIC_TOKEN"), .auth = b64_userpass(), .mirrors = &m, .n_mirrors = 1 };
    Backend *b = creds_backend(&cc);
    long served = server_stat("mopen", "served");
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 4096), 4096);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 10, 100), 100);
    CHECK_EQ_INT(server_stat("mopen", "served") - served, 2);       /* the mirror served them */
    CHECK_EQ_INT(server_auth_count("mopen", NULL), 0);
    /* The origin still gets it when the mirror is down. */
    server_flag("mopen-503", true);
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 100), 100);
    server_flag("mopen-503", false);
    CHECK(server_auth_count("origin", env_req("CFN_T_STATIC_TOKEN")) >= 1);
    CHECK_EQ_INT(server_auth_count("mopen", NULL), 0);
    backend_drop(loop, b);
    /* Nor an Authorization among the common headers (the other headers do go). */
    char hdr[300];
    snprintf(hdr, sizeof(hdr), "authorization: Bearer %s", env_req("CFN_T_STATIC_TOKEN"));
    const char *hdrs[] = { "X-Cfn-Tenant: t1", hdr };
    cc = (CredsCfg){ .mirrors = &m, .n_mirrors = 1, .headers = hdrs, .n_headers = 2 };
    b = creds_backend(&cc);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 100), 100);
    CHECK_EQ_INT(server_stat("mopen", "served") - served, 3);
    CHECK_EQ_INT(server_stat("mopen", "tenant_header"), 1);
    CHECK_EQ_INT(server_auth_count("mopen", NULL), 0);
    backend_drop(loop, b);
}

/* (2) A mirror answering 401 Basic does not get the origin's Basic credentials. */
static void test_creds_basic_not_to_mirror(void)
{
    MirrorConfig m = creds_mirror("CFN_T_MIRROR_BASIC");
    CredsCfg cc = { .auth = b64_userpass(), .mirrors = &m, .n_mirrors = 1 };
    Backend *b = creds_backend(&cc);
    long unauth = server_stat("mbasic", "unauthorized"), served = server_stat("origin", "served");
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 1000), 1000);
    CHECK(server_stat("mbasic", "unauthorized") - unauth >= 1);     /* it was asked, and said 401 */
    CHECK_EQ_INT(server_stat("origin", "served") - served, 1);      /* the origin served */
    CHECK_EQ_INT(server_auth_count("mbasic", NULL), 0);
    backend_drop(loop, b);
}

/* (3) Basic credentials go to the token realm the registry names only when
 * it is the registry's own origin or https. */
static void realm_case(const char *scheme, const char *addr_env, const char *server, bool anon_ok, long want_basic)
{
    char realm[300];
    snprintf(realm, sizeof(realm), "%s://%s/token", scheme, env_req(addr_env));
    server_flag_text("origin.realm", realm);
    server_flag("anon-ok", anon_ok);
    long get0 = server_stat(server, "token_get"), post0 = server_stat(server, "token_post");
    long basic0 = server_auth_count(server, origin_basic());
    CredsCfg cc = { .auth = b64_userpass() };
    Backend *b = creds_backend(&cc);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 2000), 2000);
    backend_drop(loop, b);
    CHECK_EQ_INT(server_stat(server, "token_get") - get0, 1);
    CHECK_EQ_INT(server_auth_count(server, origin_basic()) - basic0, want_basic);
    if (!want_basic) {
        CHECK_EQ_INT(server_auth_count(server, NULL), 0);
        char *log = file_read_all(log_path, NULL);        /* the user is told why */
        CHECK(log && strstr(log, realm) && strstr(log, "is another origin over plain http"));
        free(log);
    }
    /* An identity (refresh) token is a credential too: the same rule. */
    cc = (CredsCfg){ .docker_config = env_req("CFN_T_DOCKER_CONFIG") };
    b = creds_backend(&cc);
    TReq t;
    treq_init_read(&t, digest(1), 0, 100);
    int r = run_one(loop, b, &t, 10000);
    treq_fini(&t);
    backend_drop(loop, b);
    CHECK_EQ_INT(server_stat(server, "token_post") - post0, want_basic);
    CHECK_EQ_INT(r, want_basic || anon_ok ? 100 : -EACCES);
    server_flag("anon-ok", false);
    server_flag_text("origin.realm", NULL);
}

static void test_creds_realm(void)
{
    realm_case("http", "CFN_T_REALM_HOST", "realmhost", true, 0);  /* another host, plain http: anonymous */
    realm_case("http", "CFN_T_REALM_PORT", "realmport", true, 0);  /* another port is another origin */
    realm_case("https", "CFN_T_REALM_TLS", "realmtls", false, 1);  /* another host over https: sent, as
                                                                    * docker and containerd do */
    realm_case("http", "CFN_T_ORIGIN", "origin", false, 1);        /* the registry's own origin: sent */
}

/* (4) A mirror configured with credentials of its own gets those, and only those. */
static void test_creds_mirror_own(void)
{
    char hdr[300];
    snprintf(hdr, sizeof(hdr), "Authorization: %s", mirror_basic());
    const char *hdrs[] = { hdr };
    MirrorConfig m = creds_mirror("CFN_T_MIRROR_BASIC");
    m.headers = hdrs;
    m.n_headers = 1;
    /* its own header */
    CredsCfg cc = { .auth = b64_userpass(), .token = env_req("CFN_T_STATIC_TOKEN"), .mirrors = &m, .n_mirrors = 1 };
    Backend *b = creds_backend(&cc);
    long served = server_stat("mbasic", "served"), mine = server_auth_count("mbasic", mirror_basic());
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 1000), 1000);
    backend_drop(loop, b);
    CHECK_EQ_INT(server_stat("mbasic", "served") - served, 1);
    CHECK_EQ_INT(server_auth_count("mbasic", mirror_basic()) - mine, 1);
    /* its entry in the docker config (after its 401 Basic challenge) */
    m.n_headers = 0;
    cc.docker_config = env_req("CFN_T_DOCKER_CONFIG");
    b = creds_backend(&cc);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 1000), 1000);
    backend_drop(loop, b);
    CHECK_EQ_INT(server_stat("mbasic", "served") - served, 2);
    CHECK_EQ_INT(server_auth_count("mbasic", mirror_basic()) - mine, 2);
    /* user:password in its URL */
    char url[300];
    snprintf(url, sizeof(url), "http://%s:%s@%s", env_req("CFN_T_MIRROR_USER"), env_req("CFN_T_MIRROR_PASSWORD"),
             env_req("CFN_T_MIRROR_BASIC"));
    m.host = url;
    cc.docker_config = NULL;
    b = creds_backend(&cc);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 1000), 1000);
    backend_drop(loop, b);
    CHECK_EQ_INT(server_stat("mbasic", "served") - served, 3);
    /* never the origin's */
    CHECK_EQ_INT(server_auth_count("mbasic", b64_userpass()), 0);
    CHECK_EQ_INT(server_auth_count("mbasic", "Bearer"), 0);
}

/* (5) A redirect to another host carries no credentials, whichever kind. */
static void test_creds_redirect(void)
{
    long s0 = server_stat("objstore", "requests");
    server_flag("origin-redirect", true);
    CredsCfg cc = { .token = env_req("CFN_T_STATIC_TOKEN") };      /* sent unsolicited */
    Backend *b = creds_backend(&cc);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 0, 3000), 3000);
    backend_drop(loop, b);
    cc = (CredsCfg){ .auth = b64_userpass() };                      /* a fetched bearer token */
    b = creds_backend(&cc);
    CHECK_EQ_INT(read_check(loop, b, digest(1), 100, 3000), 3000);
    backend_drop(loop, b);
    server_flag("origin-redirect", false);
    /* a mirror's own header stays with the mirror */
    char hdr[300];
    snprintf(hdr, sizeof(hdr), "Authorization: %s", mirror_basic());
    const char *hdrs[] = { hdr };
    MirrorConfig m = creds_mirror("CFN_T_MIRROR_BASIC");
    m.headers = hdrs;
    m.n_headers = 1;
    server_flag("mbasic-redirect", true);
    cc = (CredsCfg){ .mirrors = &m, .n_mirrors = 1 };
    b = creds_backend(&cc);
    CHECK_EQ_INT(read_check(loop, b, digest(2), 0, 4096), 4096);
    backend_drop(loop, b);
    server_flag("mbasic-redirect", false);
    CHECK_EQ_INT(server_stat("objstore", "requests") - s0, 3);
    CHECK(server_auth_count("origin", "Bearer ") >= 2);
    CHECK_EQ_INT(server_stat("objstore", "auth_seen"), 0);
    CHECK_EQ_INT(server_auth_count("objstore", NULL), 0);
}

/* (6) Passwords in mirror and proxy URLs never reach the log, on any line
 * that names them (failure, disabled, back, proxy health). */
static void test_creds_url_password_log(void)
{
    char url[300], purl[300], ping[300];
    snprintf(url, sizeof(url), "http://%s:%s@%s", env_req("CFN_T_MIRROR_USER"), env_req("CFN_T_MIRROR_PASSWORD"),
             env_req("CFN_T_MIRROR_BASIC"));
    MirrorConfig m = creds_mirror("CFN_T_MIRROR_BASIC");
    m.host = url;
    m.failure_limit = 1;
    m.health_check_interval_s = 1;
    /* a proxy that refuses connections, with a password in its URL, healthy again by its ping */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    /* bound, not listening: refused; schemeless, as nydusd accepts it */
    snprintf(purl, sizeof(purl), "proxyuser:%s@127.0.0.1:%u", env_req("CFN_T_MIRROR_PASSWORD"), ntohs(sa.sin_port));
    snprintf(ping, sizeof(ping), "http://%s/v2/", env_req("CFN_T_MIRROR_OPEN"));
    CredsCfg cc = { .auth = b64_userpass(), .mirrors = &m, .n_mirrors = 1, .proxy_url = purl, .proxy_ping = ping };
    Backend *b = creds_backend(&cc);
    server_flag("mbasic-503", true);
    CHECK_EQ_INT(read_check(loop, b, digest(0), 0, 100), 100);      /* proxy fails, direct; mirror 503, origin */
    server_flag("mbasic-503", false);
    /* Pings every second bring both back: wait for those lines (10 s at most). */
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        loop_spin(loop, 100);
        free(log);
        log = file_read_all(log_path, NULL);
        if (log && strstr(log, "is back") && strstr(log, "is now healthy"))
            break;
    }
    backend_drop(loop, b);
    close(fd);
    CHECK(log && strstr(log, "disabled after") && strstr(log, "is back") && strstr(log, "is now healthy"));
    CHECK(log && !strstr(log, env_req("CFN_T_MIRROR_PASSWORD")));
    free(log);
}

static void scenario_creds(void)
{
    RUN(test_creds_token_not_to_mirror);
    RUN(test_creds_basic_not_to_mirror);
    RUN(test_creds_realm);
    RUN(test_creds_mirror_own);
    RUN(test_creds_redirect);
    RUN(test_creds_url_password_log);
    const char *secrets[] = { env_req("CFN_T_PASSWORD"), b64_userpass(), env_req("CFN_T_MIRROR_PASSWORD"),
                              mirror_basic() + 6, env_req("CFN_T_IDENTITY"), env_req("CFN_T_STATIC_TOKEN"), NULL };
    run_secrets_with_issued_tokens(secrets, 0);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCENARIO\n", argv[0]);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_capture_start();
    if (loop_new(&loop, 256) < 0)
        return 2;
    const char *sc = argv[1];
    if (strcmp(sc, "fault") == 0)
        scenario_fault();
    else if (strcmp(sc, "registry") == 0)
        scenario_registry();
    else if (strcmp(sc, "redirect") == 0)
        scenario_redirect();
    else if (strcmp(sc, "token") == 0)
        scenario_token();
    else if (strcmp(sc, "mirror") == 0)
        scenario_mirror();
    else if (strcmp(sc, "ratelimit") == 0)
        RUN(test_ratelimit);
    else if (strcmp(sc, "proxy-fallback") == 0)
        scenario_proxy();
    else if (strcmp(sc, "s3") == 0)
        scenario_s3();
    else if (strcmp(sc, "oss") == 0)
        scenario_oss();
    else if (strcmp(sc, "tls") == 0)
        RUN(test_tls_h2);
    else if (strcmp(sc, "creds") == 0)
        scenario_creds();
    else {
        fprintf(stderr, "unknown scenario %s\n", sc);
        return 2;
    }
    loop_spin(loop, 100);
    loop_free(loop);
    curl_global_cleanup();
    return TEST_EXIT();
}
