/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The work floor of filling uncompressed data: one thread reads SRC in
 * 1 MiB pieces, hashes each piece with blake3 (unless --no-digest) and
 * writes it into a new sparse file DST, with nothing else around it (no
 * loop, no events, no scheduling between threads). Every byte the daemon
 * serves from an uncompressed blob costs at least this much CPU, so the
 * benchmarks use it to print the best time a machine with N cores could
 * reach at all, next to what the daemon reached.
 *
 *   bench-floor SRC DST [--no-digest]
 *
 * Prints one line of key=value pairs, CPU seconds of this thread:
 *   floor mib=400.0 cpu_s=0.331 read_s=0.061 digest_s=0.139 write_s=0.131 wall_s=0.402
 * DST is created (it must not exist) and removed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/cache/cache_file.h"
#include "storage/codec/codec.h"
#include "storage/util/macros.h"

#define PIECE (1u << 20)

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--no-digest") != 0)) {
        fprintf(stderr, "usage: bench-floor SRC DST [--no-digest]\n");
        return 2;
    }
    bool digest = argc == 3;
    int src = open(argv[1], O_RDONLY | O_CLOEXEC);
    int dst = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    uint8_t *buf = cache_buf_alloc(PIECE);
    CodecCtx *codec = NULL;
    off_t size = src >= 0 ? lseek(src, 0, SEEK_END) : -1;
    if (src < 0 || dst < 0 || size < 0 || !buf || codec_ctx_new(&codec) < 0 || ftruncate(dst, size) < 0) {
        fprintf(stderr, "bench-floor: cannot set up %s -> %s: %s\n", argv[1], argv[2], strerror(errno));
        if (dst >= 0)
            unlink(argv[2]);
        return 1;
    }
    double wall0 = clock_s(CLOCK_MONOTONIC), cpu0 = cpu_s(), t_read = 0, t_digest = 0, t_write = 0;
    int rc = 0;
    for (off_t off = 0; off < size && rc == 0; off += PIECE) {
        size_t n = (size_t)(size - off < PIECE ? size - off : PIECE);
        size_t padded = cfn_align_up(n, CFN_PAGE_SIZE);
        uint8_t hash[BLOB_DIGEST_SIZE];
        double t1 = cpu_s();
        if (pread(src, buf, n, off) != (ssize_t)n)
            rc = 1;
        memset(buf + n, 0, padded - n);
        double t2 = cpu_s();
        if (rc == 0 && digest && codec_digest(codec, BLOB_DIGEST_BLAKE3, buf, n, hash) < 0)
            rc = 1;
        double t3 = cpu_s();
        /* The daemon's own write: page-aligned, through the same helper. */
        if (rc == 0 && cache_file_write(dst, buf, padded, (uint64_t)off) < 0)
            rc = 1;
        t_read += t2 - t1, t_digest += t3 - t2, t_write += cpu_s() - t3;
    }
    double cpu = cpu_s() - cpu0, wall = clock_s(CLOCK_MONOTONIC) - wall0;
    if (rc)
        fprintf(stderr, "bench-floor: %s -> %s failed: %s\n", argv[1], argv[2], strerror(errno));
    else
        printf("floor mib=%.1f cpu_s=%.3f read_s=%.3f digest_s=%.3f write_s=%.3f wall_s=%.3f\n",
               (double)size / (1 << 20), cpu, t_read, t_digest, t_write, wall);
    unlink(argv[2]);
    codec_ctx_free(codec);
    free(buf);
    close(src);
    close(dst);
    return rc;
}
