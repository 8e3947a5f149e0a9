/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Fill throughput of the storage READ path for a zstd blob with 1 MiB chunks
 * (localfs backend, source blob warm in the page cache, blake3 verification
 * on), with 1 worker and with N workers, against single-threaded zstd
 * decompression of the same chunks measured in the same run. Each fill runs
 * in a child process so that its peak RSS is measured on its own.
 *
 * Every figure is the best of --rounds interleaved rounds (a shared machine
 * is noisy). A "work floor" is measured too: one thread doing only the
 * per-chunk work a fill cannot avoid (decompress, verify, write into a
 * cache file), in a plain loop. N x that floor is what N workers could reach
 * with no daemon around them at all, so fill / (N x floor) is the daemon's
 * own efficiency, separate from the machine's speed.
 *
 *   bench-fill [--size-mib 1024] [--workers N] [--rounds 3] [--dir /dev/shm] [--no-verify]
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "storage/cache/blob_cache.h"
#include "storage/cache/cache_file.h"
#include "storage/codec/codec.h"
#include "storage/util/loop.h"
#include "storage/util/macros.h"

#define CHUNK (1u << 20)

extern char **environ;

typedef struct Bench {
    bool verify;
    char dir[256];
    char blob_path[300], cache_path[300];
    uint32_t chunks;
    BlobInfo *blob;
} Bench;

/* Text-like data: words from a small vocabulary plus some noise (about 3:1 with zstd). */
static void make_chunk(uint8_t *p, size_t n, uint32_t seed)
{
    static const char *words[] = { "erofs ", "chunk ", "cache ", "nydus ", "blob ", "kernel ", "read ",
                                   "fscache ", "layer ", "image ", "mount ", "digest ", "{\"a\":", "0x7f, " };
    uint32_t x = seed * 2654435761u + 7;
    size_t i = 0;
    while (i < n) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        if ((x & 7) == 0) {
            p[i++] = (uint8_t)(x >> 8);
            continue;
        }
        const char *w = words[(x >> 4) % CFN_ARRAY_SIZE(words)];
        for (; *w && i < n; w++)
            p[i++] = (uint8_t)*w;
    }
}

static int build_blob(Bench *b, uint32_t chunks)
{
    CodecCtx *codec;
    if (codec_ctx_new(&codec) < 0 || blob_info_new(&b->blob, "blob", chunks) < 0)
        return -ENOMEM;
    BlobInfo *blob = b->blob;
    blob->chunk_size = CHUNK;
    blob->compressor = BLOB_COMP_ZSTD;
    blob->digester = BLOB_DIGEST_BLAKE3;
    blob->digests = calloc(chunks, BLOB_DIGEST_SIZE);
    uint8_t *raw = malloc(CHUNK);
    size_t cap = codec_compress_bound(BLOB_COMP_ZSTD, CHUNK);
    uint8_t *comp = malloc(cap);
    FILE *f = fopen(b->blob_path, "w");
    if (!blob->digests || !raw || !comp || !f)
        return -ENOMEM;
    uint64_t off = 0;
    for (uint32_t i = 0; i < chunks; i++) {
        make_chunk(raw, CHUNK, i);
        ssize_t n = codec_compress(BLOB_COMP_ZSTD, 3, raw, CHUNK, comp, cap);
        if (n < 0 || fwrite(comp, 1, (size_t)n, f) != (size_t)n)
            return -EIO;
        codec_digest(codec, BLOB_DIGEST_BLAKE3, raw, CHUNK, blob->digests[i]);
        blob->chunks[i] = (BlobChunkInfo){ .compressed_offset = off, .compressed_size = (uint32_t)n,
                                           .uncompressed_offset = (uint64_t)i * CHUNK,
                                           .uncompressed_size = CHUNK, .flags = BLOB_CHUNK_COMPRESSED };
        off += (uint64_t)n;
    }
    fclose(f);
    blob->compressed_size = off;
    blob->uncompressed_size = (uint64_t)chunks * CHUNK;
    free(raw);
    free(comp);
    codec_ctx_free(codec);
    return 0;
}

static double now_s(void) { return (double)loop_now_ns() / 1e9; }

/* Baseline: one thread, ZSTD_decompressDCtx over every chunk, data already in memory. */
static double zstd_baseline(const Bench *b)
{
    int fd = open(b->blob_path, O_RDONLY);
    uint8_t *comp = malloc(b->blob->compressed_size), *out = malloc(CHUNK);
    if (fd < 0 || !comp || !out || pread(fd, comp, b->blob->compressed_size, 0) != (ssize_t)b->blob->compressed_size)
        return 0;
    close(fd);
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    double t0 = now_s();
    for (uint32_t i = 0; i < b->chunks; i++) {
        const BlobChunkInfo *c = &b->blob->chunks[i];
        size_t n = ZSTD_decompressDCtx(dctx, out, CHUNK, comp + c->compressed_offset, c->compressed_size);
        if (ZSTD_isError(n) || n != CHUNK)
            return 0;
    }
    double t = now_s() - t0;
    ZSTD_freeDCtx(dctx);
    free(comp);
    free(out);
    return (double)b->blob->uncompressed_size / t / (1 << 20);
}

/*
 * The same chunks through the zstd command line tool (the blob is a plain
 * sequence of zstd frames), output to /dev/null: the issue's literal
 * baseline. 0 when zstd is not installed.
 */
static double zstd_cli_baseline(const Bench *b)
{
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0)
        return 0;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, STDOUT_FILENO);
    char *args[] = { "zstd", "-d", "-q", "-c", "--", (char *)b->blob_path, NULL };
    double t0 = now_s();
    pid_t pid;
    int status = -1;
    if (posix_spawnp(&pid, "zstd", &fa, NULL, args, environ) == 0)
        waitpid(pid, &status, 0);
    double t = now_s() - t0;
    posix_spawn_file_actions_destroy(&fa);
    close(devnull);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 0;
    return (double)b->blob->uncompressed_size / t / (1 << 20);
}

/*
 * Write and delete a scratch file as large as the image next to the cache
 * file, right before each contender that writes one, so every contender
 * gets the same warm free pages. On VMs that hand freed guest memory back to
 * the host (virtio-balloon free page reporting) the first touch of such a
 * page faults in the host, and a page-cache write then costs several times
 * more: without this the results depend on the order of the contenders.
 */
static void warm_pages(const Bench *b)
{
    char path[320];
    snprintf(path, sizeof(path), "%s.warm", b->cache_path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    uint8_t *buf = calloc(1, CHUNK);
    for (uint64_t off = 0; fd >= 0 && buf && off < b->blob->uncompressed_size; off += CHUNK)
        if (pwrite(fd, buf, CHUNK, (off_t)off) != CHUNK)
            break;
    free(buf);
    if (fd >= 0)
        close(fd);
    unlink(path);
}

/*
 * The work floor: decompress, verify (when on) and pwrite every chunk in one
 * thread, compressed data already in memory, into a fresh cache file.
 */
typedef struct Floor {
    double total, decompress, digest, write;    /* MiB/s of each step alone */
} Floor;

static Floor work_floor(const Bench *b)
{
    Floor fl = { 0 };
    int fd = open(b->blob_path, O_RDONLY);
    /* Page-aligned like the daemon's buffers: an unaligned source makes the page-cache copy slower. */
    uint8_t *comp = malloc(b->blob->compressed_size), *out = cache_buf_alloc(CHUNK);
    CodecCtx *codec;
    if (fd < 0 || !comp || !out || codec_ctx_new(&codec) < 0 ||
        pread(fd, comp, b->blob->compressed_size, 0) != (ssize_t)b->blob->compressed_size)
        return fl;
    close(fd);
    unlink(b->cache_path);
    int cfd = open(b->cache_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (cfd < 0 || ftruncate(cfd, (off_t)b->blob->uncompressed_size) < 0)
        return fl;
    double t0 = now_s(), td = 0, th = 0, tw = 0;
    for (uint32_t i = 0; i < b->chunks; i++) {
        const BlobChunkInfo *c = &b->blob->chunks[i];
        uint8_t digest[BLOB_DIGEST_SIZE];
        double t1 = now_s();
        if (codec_decompress(codec, BLOB_COMP_ZSTD, comp + c->compressed_offset, c->compressed_size, out, CHUNK) < 0)
            return fl;
        double t2 = now_s();
        if (b->verify && (codec_digest(codec, BLOB_DIGEST_BLAKE3, out, CHUNK, digest) < 0 ||
                          memcmp(digest, b->blob->digests[i], BLOB_DIGEST_SIZE) != 0))
            return fl;
        double t3 = now_s();
        if (pwrite(cfd, out, CHUNK, (off_t)c->uncompressed_offset) != CHUNK)
            return fl;
        td += t2 - t1, th += t3 - t2, tw += now_s() - t3;
    }
    double t = now_s() - t0;
    close(cfd);
    unlink(b->cache_path);
    codec_ctx_free(codec);
    free(comp);
    free(out);
    double mib = (double)b->blob->uncompressed_size / (1 << 20);
    fl = (Floor){ .total = mib / t, .decompress = mib / td, .digest = th > 0 ? mib / th : 0, .write = mib / tw };
    return fl;
}

typedef struct Filler {
    FillRequest req;
    struct FillCtx *ctx;
} Filler;

typedef struct FillCtx {
    Loop *loop;
    BlobCache *bc;
    uint64_t next_off, size;
    unsigned outstanding;
    int errors;
} FillCtx;

static void filler_issue(FillCtx *fc, Filler *f);

static void filler_done(FillRequest *req, int res)
{
    Filler *f = cfn_container_of(req, Filler, req);
    FillCtx *fc = f->ctx;
    if (res < 0) {
        fprintf(stderr, "fill failed: %s\n", req->why);
        fc->errors++;
    }
    fc->outstanding--;
    filler_issue(fc, f);
}

static void filler_issue(FillCtx *fc, Filler *f)
{
    if (fc->next_off >= fc->size)
        return;
    f->req.off = fc->next_off;
    f->req.len = CFN_MIN((uint64_t)CHUNK, fc->size - fc->next_off);
    f->req.done = filler_done;
    fc->next_off += f->req.len;
    fc->outstanding++;
    blob_cache_fill(fc->bc, &f->req);
}

/* Fill the whole blob through BlobCache with `workers` threads; returns MiB/s. Runs in a child. */
static int fill_child(Bench *b, unsigned workers, int report_fd)
{
    Loop *loop;
    WorkPool *pool;
    CacheService *svc;
    Backend *backend;
    BlobCache *bc;
    unlink(b->cache_path);
    int cfd = open(b->cache_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (cfd < 0 || ftruncate(cfd, (off_t)b->blob->uncompressed_size) < 0)
        return 1;
    CacheServiceConfig cc = { .read_window = CHUNK, .merge_limit = 4u << 20,
                              .max_inflight_bytes = 64ull << 20, .verify = b->verify };
    if (loop_new(&loop, 256) < 0 || workpool_new(&pool, loop, workers, &cache_worker_hooks) < 0 ||
        cache_service_new(&svc, loop, pool, &cc) < 0 || backend_localfs_new(&backend, loop, b->dir) < 0 ||
        blob_cache_new(&bc, svc, b->blob, backend, "blob", cfd) < 0)
        return 1;
    FillCtx fc = { .loop = loop, .bc = bc, .size = b->blob->uncompressed_size };
    Filler fillers[32];
    double t0 = now_s();
    for (size_t i = 0; i < CFN_ARRAY_SIZE(fillers); i++) {
        fillers[i].ctx = &fc;
        filler_issue(&fc, &fillers[i]);
    }
    while (fc.outstanding)
        loop_run_once(loop, 100);
    double mibs = (double)fc.size / (now_s() - t0) / (1 << 20);
    CacheStats st = cache_service_stats(svc);
    double out[3] = { fc.errors ? -1 : mibs, (double)st.fetches, (double)st.chunks_written };
    ssize_t w = write(report_fd, out, sizeof(out));
    (void)w;
    unlink(b->cache_path);
    return fc.errors ? 1 : 0;
}

static int run_fill(Bench *b, unsigned workers, double *mibs, long *rss_kib, double *fetches)
{
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(fill_child(b, workers, p[1]));
    }
    close(p[1]);
    double out[3] = { -1, 0, 0 };
    ssize_t n = read(p[0], out, sizeof(out));
    close(p[0]);
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    if (n != sizeof(out) || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || out[0] < 0)
        return -EIO;
    *mibs = out[0];
    *fetches = out[1];
    *rss_kib = ru.ru_maxrss;
    return 0;
}

int main(int argc, char **argv)
{
    Bench b = { .verify = true };
    unsigned size_mib = 1024;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned workers = cores > 0 ? (unsigned)cores : 1, rounds = 3;
    snprintf(b.dir, sizeof(b.dir), "/dev/shm");
    static const struct option opts[] = { { "size-mib", required_argument, NULL, 's' },
                                          { "workers", required_argument, NULL, 'w' },
                                          { "rounds", required_argument, NULL, 'r' },
                                          { "dir", required_argument, NULL, 'd' },
                                          { "no-verify", no_argument, NULL, 'n' }, {} };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
        if (c == 's')
            size_mib = (unsigned)atoi(optarg);
        else if (c == 'w')
            workers = (unsigned)atoi(optarg);
        else if (c == 'r')
            rounds = (unsigned)atoi(optarg);
        else if (c == 'n')
            b.verify = false;
        else if (c == 'd')
            snprintf(b.dir, sizeof(b.dir), "%s", optarg);
        else
            return 2;
    }
    if (size_mib == 0 || workers == 0 || rounds == 0)
        return 2;
    snprintf(b.blob_path, sizeof(b.blob_path), "%s/blob", b.dir);
    snprintf(b.cache_path, sizeof(b.cache_path), "%s/bench-fill.cache", b.dir);
    b.chunks = size_mib;
    printf("bench-fill: building a %u MiB zstd blob (1 MiB chunks, blake3 digests) in %s ...\n", size_mib, b.dir);
    fflush(stdout);
    if (build_blob(&b, b.chunks) < 0) {
        fprintf(stderr, "cannot build the blob\n");
        return 1;
    }
    printf("  compressed %.1f MiB -> %.1f MiB (ratio %.2f)\n", b.blob->uncompressed_size / 1048576.0,
           b.blob->compressed_size / 1048576.0, (double)b.blob->uncompressed_size / b.blob->compressed_size);

    /* Best of each over interleaved rounds. */
    Floor floor = { 0 };
    double zstd = 0, zstd_cli = 0, one = 0, many = 0, fetches1 = 0, fetchesn = 0;
    long rss1 = 0, rssn = 0;
    for (unsigned r = 0; r < rounds; r++) {
        double z = zstd_baseline(&b), zc = zstd_cli_baseline(&b), o, m, f1, fn;
        Floor fl;
        long r1, rn;
        warm_pages(&b);
        fl = work_floor(&b);
        warm_pages(&b);
        int r1_ok = run_fill(&b, 1, &o, &r1, &f1);
        warm_pages(&b);
        if (z <= 0 || fl.total <= 0 || r1_ok < 0 || run_fill(&b, workers, &m, &rn, &fn) < 0) {
            fprintf(stderr, "bench-fill: a run failed\n");
            return 1;
        }
        zstd = CFN_MAX(zstd, z), zstd_cli = CFN_MAX(zstd_cli, zc);
        if (fl.total > floor.total)
            floor = fl;
        one = CFN_MAX(one, o), many = CFN_MAX(many, m);
        rss1 = CFN_MAX(rss1, r1), rssn = CFN_MAX(rssn, rn), fetches1 = f1, fetchesn = fn;
    }
    double load[3] = { 0 };
    getloadavg(load, 3);
    printf("  chunk verification: %s; best of %u round(s); load average %.2f\n", b.verify ? "blake3, on" : "off",
           rounds, load[0]);
    printf("  zstd -d, 1 thread (baseline):  %8.1f MiB/s  (libzstd in process, input and output in memory)\n", zstd);
    if (zstd_cli > 0)
        printf("  zstd -d command, 1 thread:     %8.1f MiB/s  (the zstd tool, output to /dev/null)\n", zstd_cli);
    else
        printf("  zstd -d command:               not installed\n");
    printf("  work floor, 1 thread:          %8.1f MiB/s  (decompress%s + write, nothing else;\n"
           "                                                each alone: %.0f / %.0f / %.0f MiB/s)\n",
           floor.total, b.verify ? " + blake3" : "", floor.decompress, floor.digest, floor.write);
    printf("  fill, 1 worker:                %8.1f MiB/s  (%.2fx zstd, %.2fx floor)  peak RSS %ld KiB  %.0f fetches\n",
           one, one / zstd, one / floor.total, rss1, fetches1);
    printf("  fill, %u workers:               %8.1f MiB/s  (%.2fx zstd, %.2fx zstd -d command; goal >= %.2fx)\n",
           workers, many, many / zstd, zstd_cli > 0 ? many / zstd_cli : 0.0, 0.8 * workers);
    printf("                                 = %.0f%% of %u x floor; peak RSS %ld KiB  %.0f fetches\n",
           100.0 * many / (workers * floor.total), workers, rssn, fetchesn);
    unlink(b.blob_path);
    blob_info_free(b.blob);
    return 0;
}
