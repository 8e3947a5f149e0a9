/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the remote backends' parsers and helpers: the JSON reader,
 * WWW-Authenticate parsing, base64, docker config lookup, URL helpers, id
 * validation and config defaults, plus a bounded random/mutation fuzz of the
 * parsers (run under ASan/UBSan in CI).
 */
#include <curl/curl.h>
#include <errno.h>

#include "storage/backend/http/auth.h"
#include "storage/backend/http/b64.h"
#include "storage/backend/http/backend_config.h"
#include "storage/backend/http/challenge.h"
#include "storage/backend/http/common.h"
#include "storage/backend/http/dockercfg.h"
#include "storage/backend/http/engine.h"
#include "storage/backend/http/json.h"
#include "storage/util/macros.h"
#include "tests/unit/test.h"

static int parse(const char *s, JsonValue *v) { return json_parse(s, strlen(s), v); }

static void test_json_valid(void)
{
    JsonValue v, m;
    char buf[64];
    CHECK_EQ_INT(parse(" {\"token\":\"a\\u00e9\\ud83d\\ude00\\n\",\"expires_in\":300,\"x\":[1,2.5e3,true,null,{}]} ", &v), 0);
    CHECK_EQ_INT(v.type, JSON_OBJECT);
    CHECK_EQ_INT(json_object_get(&v, "token", &m), 0);
    CHECK_EQ_INT(json_string(&m, buf, sizeof(buf)), 8);
    CHECK(strcmp(buf, "a\xc3\xa9\xf0\x9f\x98\x80\n") == 0);
    uint64_t n = 0;
    CHECK_EQ_INT(json_object_get(&v, "expires_in", &m), 0);
    CHECK_EQ_INT(json_u64(&m, &n), 0);
    CHECK_EQ_INT(n, 300);
    CHECK_EQ_INT(json_object_get(&v, "missing", &m), -ENOENT);
    CHECK_EQ_INT(json_object_get(&v, "x", &m), 0);
    CHECK_EQ_INT(m.type, JSON_ARRAY);
    CHECK_EQ_INT(json_u64(&m, &n), -EINVAL);
    /* duplicates: the first one wins */
    CHECK_EQ_INT(parse("{\"a\":\"1\",\"a\":\"2\"}", &v), 0);
    CHECK_EQ_INT(json_object_get(&v, "a", &m), 0);
    CHECK_EQ_INT(json_string(&m, buf, sizeof(buf)), 1);
    CHECK(buf[0] == '1');
    /* too small a buffer, embedded NUL */
    CHECK_EQ_INT(parse("\"abcdef\"", &v), 0);
    CHECK_EQ_INT(json_string(&v, buf, 4), -E2BIG);
    CHECK_EQ_INT(parse("\"a\\u0000b\"", &v), 0);
    CHECK_EQ_INT(json_string(&v, buf, sizeof(buf)), -EINVAL);
    CHECK_EQ_INT(parse("18446744073709551615", &v), 0);
    CHECK_EQ_INT(json_u64(&v, &n), 0);
    CHECK(n == UINT64_MAX);
    CHECK_EQ_INT(parse("18446744073709551616", &v), 0);
    CHECK_EQ_INT(json_u64(&v, &n), -ERANGE);
}

static void test_json_invalid(void)
{
    static const char *const bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":}", "{\"a\" 1}", "{a:1}", "01", "1.", ".5", "-", "1e",
        "+1", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\x01\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "[1] [2]", "{\"a\":1,}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    JsonValue v;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &v) != -EINVAL) {
            fprintf(stderr, "accepted bad JSON #%zu\n", i);
            test_failures++;
        }
    }
    /* embedded NUL in the middle of the text */
    CHECK_EQ_INT(json_parse("[1]\0", 4, &v), -EINVAL);
}

static void test_challenge(void)
{
    AuthChallenge ch[AUTH_CHALLENGES_MAX];
    size_t n = 0;
    CHECK_EQ_INT(auth_challenge_parse("Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
                                      "scope=\"repository:a/b:pull\"", ch, AUTH_CHALLENGES_MAX, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK(strcmp(ch[0].scheme, "Bearer") == 0);
    CHECK(strcmp(ch[0].realm, "https://auth.example/token") == 0);
    CHECK(strcmp(ch[0].service, "registry.example") == 0);
    CHECK(strcmp(ch[0].scope, "repository:a/b:pull") == 0);

    /* several challenges, quoted-pairs, commas inside quotes, tokens, odd spacing */
    CHECK_EQ_INT(auth_challenge_parse("Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", "
                                      "Basic realm=\"simple\" ,, bearer   REALM = \"r,1\" , scope=\"x:y:pull\"",
                                      ch, AUTH_CHALLENGES_MAX, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK(strcmp(ch[0].scheme, "Newauth") == 0 && strcmp(ch[0].realm, "apps") == 0);
    CHECK(strcmp(ch[1].scheme, "Basic") == 0 && strcmp(ch[1].realm, "simple") == 0);
    CHECK(strcmp(ch[2].scheme, "bearer") == 0 && strcmp(ch[2].realm, "r,1") == 0);
    CHECK(strcmp(ch[2].scope, "x:y:pull") == 0);

    /* token68 and bare schemes */
    CHECK_EQ_INT(auth_challenge_parse("Negotiate, NTLM abc123+/==, Basic", ch, AUTH_CHALLENGES_MAX, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK(ch[1].has_token68);
    CHECK(strcmp(ch[2].scheme, "Basic") == 0);

    /* malformed */
    static const char *const bad[] = {
        "Bearer realm=\"unterminated", "Bearer realm=", "=x", "Bearer realm=\"a\" service=\"b\"",
        "Bearer realm=\"a\",realm=\"b\"", "Bearer realm=\"a\x01\"", "Bearer ,realm=a", "B\x7f",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (auth_challenge_parse(bad[i], ch, AUTH_CHALLENGES_MAX, &n) >= 0) {
            fprintf(stderr, "accepted bad challenge #%zu\n", i);
            test_failures++;
        }
    }
    /* bounds */
    char big[4096];
    memset(big, 'a', sizeof(big));
    memcpy(big, "Bearer realm=\"", 14);
    big[sizeof(big) - 2] = '"';
    big[sizeof(big) - 1] = '\0';
    CHECK_EQ_INT(auth_challenge_parse(big, ch, AUTH_CHALLENGES_MAX, &n), -E2BIG);
    CHECK_EQ_INT(auth_challenge_parse("A, B, C", ch, 2, &n), -E2BIG);
}

static void test_b64(void)
{
    char enc[64];
    uint8_t dec[64];
    CHECK_EQ_INT(b64_encode("user:pass", 9, enc, sizeof(enc)), 12);
    CHECK(strcmp(enc, "dXNlcjpwYXNz") == 0);
    CHECK_EQ_INT(b64_encode("ab", 2, enc, sizeof(enc)), 4);
    CHECK(strcmp(enc, "YWI=") == 0);
    CHECK_EQ_INT(b64_decode("YWI=", 4, dec, sizeof(dec)), 2);
    CHECK(memcmp(dec, "ab", 2) == 0);
    CHECK_EQ_INT(b64_decode("YQ==", 4, dec, sizeof(dec)), 1);
    CHECK_EQ_INT(b64_decode("YQ=", 3, dec, sizeof(dec)), -EINVAL);
    CHECK_EQ_INT(b64_decode("Y=Q=", 4, dec, sizeof(dec)), -EINVAL);
    CHECK_EQ_INT(b64_decode("YQ==YQ==", 8, dec, sizeof(dec)), -EINVAL);
    CHECK_EQ_INT(b64_decode("Y Q=", 4, dec, sizeof(dec)), -EINVAL);
    CHECK_EQ_INT(b64_decode("dXNlcjpwYXNz", 12, dec, 3), -E2BIG);
    CHECK_EQ_INT(b64_encode("abcdef", 6, enc, 8), -E2BIG);
}

static void test_dockercfg(void)
{
    const char *cfg = "{\"auths\":{"
                      "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOnB3\"},"
                      "\"http://reg.local:5000/v2/\":{\"auth\":\"bG9jYWw6cHc=\",\"identitytoken\":\"\"},"
                      "\"ghcr.io\":{\"identitytoken\":\"tok123\"}},"
                      "\"credsStore\":\"desktop\"}";
    char *auth = NULL, *id = NULL;
    CHECK_EQ_INT(dockercfg_lookup_mem(cfg, strlen(cfg), "registry-1.docker.io", &auth, &id), 0);
    CHECK(auth && strcmp(auth, "aHViOnB3") == 0 && !id);
    free(auth);
    CHECK_EQ_INT(dockercfg_lookup_mem(cfg, strlen(cfg), "reg.local:5000", &auth, &id), 0);
    CHECK(auth && strcmp(auth, "bG9jYWw6cHc=") == 0 && !id);
    free(auth);
    CHECK_EQ_INT(dockercfg_lookup_mem(cfg, strlen(cfg), "GHCR.io", &auth, &id), 0);
    CHECK(!auth && id && strcmp(id, "tok123") == 0);
    free(id);
    CHECK_EQ_INT(dockercfg_lookup_mem(cfg, strlen(cfg), "reg.local", &auth, &id), -ENOENT);
    CHECK_EQ_INT(dockercfg_lookup_mem("{\"auths\":", 9, "x", &auth, &id), -EINVAL);
    CHECK_EQ_INT(dockercfg_lookup("/nonexistent/config.json", "x", &auth, &id), -ENOENT);
}

static void test_urls(void)
{
    char out[256];
    http_url_redact("https://user:pw@host:5000/v2/a/blobs/sha256:x?X-Amz-Signature=secret#frag", out, sizeof(out));
    CHECK(strcmp(out, "https://host:5000/v2/a/blobs/sha256:x") == 0);
    http_url_redact("http://h/p\x01q", out, sizeof(out));
    CHECK(strcmp(out, "http://h/p?q") == 0);
    http_url_redact("https://host/abc", out, 10);
    CHECK(strlen(out) == 9);

    char *u = NULL;
    CHECK_EQ_INT(http_url_resolve("http://a:1/v2/x/blobs/y", "/data/z", &u), 0);
    CHECK(u && strcmp(u, "http://a:1/data/z") == 0);
    free(u);
    CHECK_EQ_INT(http_url_resolve("http://a:1/v2/x", "https://s3.example/b/k?sig=1", &u), 0);
    CHECK(u && strcmp(u, "https://s3.example/b/k?sig=1") == 0);
    free(u);
    CHECK_EQ_INT(http_url_resolve("http://a:1/v2/x", "file:///etc/passwd", &u), -EINVAL);
    CHECK_EQ_INT(http_url_rewrite("https://objects.invalid:1/o/k?sig=2", "http", "127.0.0.2:8080", &u), 0);
    CHECK(u && strcmp(u, "http://127.0.0.2:8080/o/k?sig=2") == 0);
    free(u);
    CHECK_EQ_INT(http_url_rewrite("https://a:1/o", NULL, "b", &u), 0);
    CHECK(u && strcmp(u, "https://b/o") == 0);
    free(u);
    CHECK(http_url_same_origin("http://a/x", "http://A:80/y"));
    CHECK(!http_url_same_origin("http://a/x", "https://a/x"));
    CHECK(!http_url_same_origin("http://a:1/x", "http://a:2/x"));
    CHECK(!http_url_same_origin("http://a/x", "http://b/x"));
    CHECK_EQ_INT(http_url_escape("repository:a/b:pull push", false, out, sizeof(out)), 32);
    CHECK(strcmp(out, "repository%3Aa%2Fb%3Apull%20push") == 0);
    CHECK_EQ_INT(http_url_escape("a b/c", true, out, sizeof(out)), 7);
    CHECK(strcmp(out, "a%20b/c") == 0);
    CHECK_EQ_INT(http_url_escape("abc", false, out, 3), -E2BIG);
}

/* Where a registry's credentials may go for a token (auth.h). */
static void test_realm_rule(void)
{
    static const struct { const char *origin, *realm; bool ok; } cases[] = {
        { "http://r:5000", "http://r:5000/token", true },           /* the registry itself */
        { "http://r:5000", "http://R:5000/token?x=1", true },
        { "https://r", "https://r:443/token", true },
        { "https://r", "https://auth.example/token", true },         /* another host, https */
        { "http://r:5000", "https://auth.example/token", true },
        { "HTTP://r:5000", "HTTPS://auth.example/token", true },
        { "http://r:5000", "http://auth.example/token", false },    /* another host, plain http */
        { "http://r:5000", "http://r:5001/token", false },          /* another port */
        { "http://r", "http://r:8080/token", false },
        { "https://r", "http://r/token", false },                   /* downgraded scheme */
        { "https://r", "http://r:443/token", false },
        { "http://r:5000", "http://r:5000@evil/token", false },     /* userinfo tricks */
        { "http://r:5000", "http://evil/r:5000/token", false },
        { "http://r:5000", "ftp://r:5000/token", false },
        { "http://r:5000", "", false },
    };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(cases); i++) {
        bool ok = auth_realm_may_get_credentials(cases[i].origin, cases[i].realm);
        if (ok != cases[i].ok) {
            fprintf(stderr, "realm rule: %s -> %s gave %d\n", cases[i].origin, cases[i].realm, ok);
            test_failures++;
        }
    }
}

/* Mirror and proxy URLs whose user:password would leak into logs or be
 * misparsed are refused; well-formed ones are accepted. */
static void test_url_userinfo(void)
{
    CHECK(hcommon_url_userinfo_ok("http://u:p@m:5000/prefix"));
    CHECK(hcommon_url_userinfo_ok("http://u:p%2Fq@m:5000"));
    CHECK(hcommon_url_userinfo_ok("http://m:5000/a?x=1"));
    CHECK(!hcommon_url_userinfo_ok("http://u:pa?ss@m:5000"));
    CHECK(!hcommon_url_userinfo_ok("http://u:pa/ss@m:5000"));
    CHECK(!hcommon_url_userinfo_ok("http://u:pa#ss@m:5000"));
    Loop *loop;
    CHECK_EQ_INT(loop_new(&loop, 8), 0);
    static const struct { const char *mirror, *proxy; int want; } cases[] = {
        { "http://u:p@127.0.0.1:5001", NULL, 0 },
        { "http://u:se/cret@127.0.0.1:5001", NULL, -EINVAL },
        { NULL, "http://u:p@127.0.0.1:65001", 0 },
        { NULL, "http://u:se/cret@127.0.0.1:65001", -EINVAL },
        { NULL, "127.0.0.1:65001", 0 },
        { NULL, "socks9://u:p@127.0.0.1:65001", -EINVAL },
    };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(cases); i++) {
        RegistryConfig c;
        registry_config_init(&c);
        c.host = "127.0.0.1:5000";
        c.repo = "library/app";
        MirrorConfig m;
        mirror_config_init(&m);
        m.host = cases[i].mirror;
        c.mirrors = &m;
        c.n_mirrors = cases[i].mirror ? 1 : 0;
        c.http.proxy.url = cases[i].proxy;
        Backend *b = NULL;
        CHECK_EQ_INT(backend_registry_new(&b, loop, &c), cases[i].want);
        backend_free(b);
    }
    for (int i = 0; i < 3; i++)
        loop_run_once(loop, 1);
    loop_free(loop);
}

static void test_ids_and_defaults(void)
{
    CHECK(hcommon_blob_id_ok("abc.DEF_1-2"));
    CHECK(!hcommon_blob_id_ok(""));
    CHECK(!hcommon_blob_id_ok(".."));
    CHECK(!hcommon_blob_id_ok("a/b"));
    CHECK(!hcommon_blob_id_ok("a?b"));
    CHECK(hcommon_blob_digest_ok("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    CHECK(!hcommon_blob_digest_ok("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
    CHECK(!hcommon_blob_digest_ok("sha256:0123"));
    CHECK(hcommon_header_ok("X-A: b"));
    CHECK(!hcommon_header_ok("X-A b"));
    CHECK(!hcommon_header_ok("X-A: b\r\nX-Evil: 1"));
    CHECK(!hcommon_header_ok(": b"));

    RegistryConfig r;
    registry_config_init(&r);
    CHECK_EQ_INT(r.http.timeout_s, 5);
    CHECK_EQ_INT(r.http.connect_timeout_s, 5);
    CHECK_EQ_INT(r.http.retry_limit, 3);
    CHECK(r.http.proxy.fallback);
    CHECK_EQ_INT(r.http.proxy.check_interval_s, 5);
    CHECK(strcmp(r.scheme, "https") == 0);
    S3Config s;
    s3_config_init(&s);
    CHECK(strcmp(s.endpoint, "s3.amazonaws.com") == 0 && s.path_style);
    MirrorConfig m;
    mirror_config_init(&m);
    CHECK_EQ_INT(m.failure_limit, 5);
}

/* Bounded fuzz: random and mutated inputs must never crash or read out of bounds. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_fuzz(void)
{
    static const char *const seeds[] = {
        "{\"token\":\"abc\",\"access_token\":\"x\",\"expires_in\":60,\"a\":[1,{\"b\":null}]}",
        "{\"auths\":{\"h:1\":{\"auth\":\"dTpw\",\"identitytoken\":\"t\\u00e9\"}}}",
        "Bearer realm=\"https://a/t\",service=\"s\",scope=\"repository:x:pull\", Basic realm=\"r\"",
        "Basic realm=\"a\\\"b\", NTLM abc==, Negotiate",
    };
    char buf[512], out[256];
    AuthChallenge ch[AUTH_CHALLENGES_MAX];
    for (int iter = 0; iter < 200000; iter++) {
        const char *seed = seeds[rnd() % 4];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int muts = 1 + (int)(rnd() % 4);
        for (int k = 0; k < muts; k++) {
            size_t pos = rnd() % (n + 1);
            switch (rnd() % 4) {
            case 0: if (pos < n) buf[pos] = (char)rnd(); break;
            case 1: if (n < sizeof(buf) - 2) { memmove(buf + pos + 1, buf + pos, n - pos); buf[pos] = "{}[]\",:\\= u"[rnd() % 11]; n++; } break;
            case 2: if (pos < n) { memmove(buf + pos, buf + pos + 1, n - pos - 1); n--; } break;
            case 3: n = pos; break;
            }
        }
        /* JSON on an unterminated copy so ASan sees any overread */
        char *heap = malloc(n ? n : 1);
        memcpy(heap, buf, n);
        JsonValue v, k, val;
        if (json_parse(heap, n, &v) == 0) {
            if (v.type == JSON_OBJECT) {
                size_t pos = 0;
                while (json_object_next(&v, &pos, &k, &val) == 1)
                    json_string(&k, out, sizeof(out));
            } else if (v.type == JSON_STRING) {
                json_string(&v, out, sizeof(out));
            }
        }
        char *a = NULL, *id = NULL;
        if (dockercfg_lookup_mem(heap, n, "h:1", &a, &id) == 0) {
            free(a);
            free(id);
        }
        free(heap);
        buf[n] = '\0';
        size_t nc;
        auth_challenge_parse(buf, ch, AUTH_CHALLENGES_MAX, &nc);
        uint8_t d[512];
        b64_decode(buf, n, d, sizeof(d));
        http_url_redact(buf, out, sizeof(out));
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_json_valid);
    RUN(test_json_invalid);
    RUN(test_challenge);
    RUN(test_b64);
    RUN(test_dockercfg);
    RUN(test_urls);
    RUN(test_realm_rule);
    RUN(test_url_userinfo);
    RUN(test_ids_and_defaults);
    RUN(test_fuzz);
    curl_global_cleanup();
    return TEST_EXIT();
}
