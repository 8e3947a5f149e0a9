/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * HTTP engine benchmarks, driven by bench-http.py (which starts the servers):
 *
 *   bench-http fill HOST:PORT REPO DIGEST SIZE [CHUNK_MIB] [INFLIGHT]
 *       Fill a whole blob cold from a docker-registry through the registry
 *       backend with CHUNK-sized ranged reads, INFLIGHT at a time, into one
 *       buffer; verify its sha256; print MiB/s.
 *   bench-http stall HOST:PORT STATE_DIR DIGEST...(8)
 *       64 concurrent 256 KiB reads across 8 blobs through the http-proxy
 *       backend, first with every blob healthy, then with the first blob
 *       stalled; print the healthy reads' latencies in both runs.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "storage/backend/backend.h"
#include "storage/backend/http/backend_config.h"
#include "storage/util/log.h"
#include "storage/util/loop.h"
#include "storage/util/macros.h"

typedef struct Rd {
    BackendRequest r;
    int res;
    bool done;
    uint64_t t0, t1;
} Rd;

static void rd_done(BackendRequest *r, int res)
{
    Rd *d = cfn_container_of(r, Rd, r);
    d->res = res;
    d->done = true;
    d->t1 = loop_now_ns();
}

static int bench_fill(int argc, char **argv)
{
    if (argc < 6)
        return 2;
    const char *host = argv[2], *repo = argv[3], *digest = argv[4];
    uint64_t size = strtoull(argv[5], NULL, 10);
    uint32_t chunk = (uint32_t)((argc > 6 ? strtoul(argv[6], NULL, 10) : 4) << 20);
    unsigned inflight = argc > 7 ? (unsigned)strtoul(argv[7], NULL, 10) : 8;
    Loop *loop;
    if (loop_new(&loop, 256) < 0)
        return 1;
    RegistryConfig c;
    registry_config_init(&c);
    c.scheme = "http";
    c.host = host;
    c.repo = repo;
    c.http.timeout_s = 60;
    Backend *b;
    int r = backend_registry_new(&b, loop, &c);
    if (r < 0) {
        fprintf(stderr, "backend: %s\n", strerror(-r));
        return 1;
    }
    uint8_t *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (buf == MAP_FAILED)
        return 1;
    uint64_t nreq = (size + chunk - 1) / chunk, next = 0, done = 0;
    Rd *rd = calloc(inflight, sizeof(*rd));
    bool *busy = calloc(inflight, sizeof(bool));
    uint64_t t0 = loop_now_ns();
    int failed = 0;
    while (done < nreq && !failed) {
        for (unsigned i = 0; i < inflight && !failed; i++) {
            Rd *d = &rd[i];
            if (busy[i] && d->done) {
                if (d->res < 0) {
                    fprintf(stderr, "read failed: %s\n", strerror(-d->res));
                    failed = 1;
                }
                done++;
                busy[i] = false;
            }
            if (!busy[i] && next < nreq) {
                uint64_t off = next * chunk;
                memset(d, 0, sizeof(*d));
                d->r.kind = BACKEND_READ;
                d->r.blob_id = digest;
                d->r.off = off;
                d->r.len = (uint32_t)CFN_MIN((uint64_t)chunk, size - off);
                d->r.buf = buf + off;
                d->r.done = rd_done;
                if (backend_submit(b, &d->r) < 0) {
                    failed = 1;
                    break;
                }
                busy[i] = true;
                next++;
            }
        }
        if (done < nreq)
            loop_run_once(loop, 100);
    }
    double secs = (double)(loop_now_ns() - t0) / 1e9;
    /* verify what was filled */
    unsigned char md[32];
    unsigned mdlen = 0;
    EVP_Digest(buf, size, md, &mdlen, EVP_sha256(), NULL);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    bool ok = !failed && strcmp(hex, digest) == 0;
    printf("engine: %.1f MiB/s (%" PRIu64 " MiB in %.2f s, %u MiB reads, %u in flight), sha256 %s\n",
           (double)size / 1048576 / secs, size >> 20, secs, chunk >> 20, inflight, ok ? "ok" : "MISMATCH");
    backend_free(b);
    for (int i = 0; i < 20; i++)
        loop_run_once(loop, 10);
    loop_free(loop);
    munmap(buf, size);
    free(rd);
    free(busy);
    return ok ? 0 : 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int stall_round(Loop *loop, const HttpProxyBackendConfig *cfg, char **digests, bool stalled,
                       const char *state)
{
    Backend *b;
    if (backend_http_proxy_new(&b, loop, cfg) < 0)
        return 1;
    enum { NBLOB = 8, PER = 8, N = NBLOB * PER, LEN = 256 * 1024 };
    char flag[512];
    snprintf(flag, sizeof(flag), "%s/stall-%s", state, digests[0]);
    if (stalled)
        close(open(flag, O_WRONLY | O_CREAT, 0644));
    Rd *rd = calloc(N, sizeof(*rd));
    uint8_t *bufs = malloc((size_t)N * LEN);
    uint64_t t0 = loop_now_ns();
    for (int i = 0; i < N; i++) {
        rd[i].r.kind = BACKEND_READ;
        rd[i].r.blob_id = digests[i % NBLOB];
        rd[i].r.off = (uint64_t)(i / NBLOB) * LEN;
        rd[i].r.len = LEN;
        rd[i].r.buf = bufs + (size_t)i * LEN;
        rd[i].r.done = rd_done;
        rd[i].t0 = t0;
        if (backend_submit(b, &rd[i].r) < 0)
            return 1;
    }
    /* wait for the healthy ones (all, when nothing stalls) */
    uint64_t end = t0 + 20000000000ull;
    for (;;) {
        int left = 0;
        for (int i = 0; i < N; i++)
            if (!(stalled && i % NBLOB == 0) && !rd[i].done)
                left++;
        if (!left || loop_now_ns() > end)
            break;
        loop_run_once(loop, 50);
    }
    uint64_t lat[N];
    int n = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        if (stalled && i % NBLOB == 0)
            continue;
        if (!rd[i].done || rd[i].res != LEN)
            bad++;
        lat[n++] = rd[i].done ? rd[i].t1 - rd[i].t0 : UINT64_MAX;
    }
    qsort(lat, (size_t)n, sizeof(lat[0]), cmp_u64);
    int stalled_pending = 0;
    for (int i = 0; i < N; i += NBLOB)
        stalled_pending += !rd[i].done;
    printf("%-9s %d healthy reads of 256 KiB: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed; "
           "reads of the stalled blob still pending: %d\n",
           stalled ? "stalled:" : "baseline:", n, lat[n / 2] / 1e6, lat[n * 99 / 100] / 1e6,
           lat[n - 1] / 1e6, bad, stalled_pending);
    unlink(flag);
    /* Freeing the backend completes the stalled reads (-ECANCELED) before
     * their buffers go away. */
    backend_free(b);
    for (int i = 0; i < 20; i++)
        loop_run_once(loop, 10);
    free(bufs);
    free(rd);
    return bad ? 1 : 0;
}

static int bench_stall(int argc, char **argv)
{
    if (argc < 12)
        return 2;
    Loop *loop;
    if (loop_new(&loop, 256) < 0)
        return 1;
    HttpProxyBackendConfig c;
    http_proxy_backend_config_init(&c);
    char addr[300];
    snprintf(addr, sizeof(addr), "http://%s", argv[2]);
    c.addr = addr;
    c.path = "/ok";
    c.http.timeout_s = 60;
    c.http.retry_limit = 0;
    int r = stall_round(loop, &c, argv + 4, false, argv[3]);
    r |= stall_round(loop, &c, argv + 4, true, argv[3]);
    loop_free(loop);
    return r;
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cfn_log_set_level(CFN_LOG_ERROR);
    int r = 2;
    if (argc > 1 && strcmp(argv[1], "fill") == 0)
        r = bench_fill(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "stall") == 0)
        r = bench_stall(argc, argv);
    else
        fprintf(stderr, "usage: %s fill|stall ...\n", argv[0]);
    curl_global_cleanup();
    return r;
}
