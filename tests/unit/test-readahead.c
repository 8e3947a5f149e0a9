/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Read-ahead planning: when a miss is sequential, how far ahead, several streams. */
#include "storage/cache/readahead.h"
#include "tests/unit/test.h"

#define K 1024ull
#define M (1024ull * 1024)

static const ReadAheadParams params = { .blob_size = 64 * M, .window = 1 * M, .slack = 1 * M, .max = 8 * M };

/* The read-ahead planned for a miss of one page at off, as [from, to). */
static void miss(ReadAheadState *st, const ReadAheadParams *p, uint64_t off, uint64_t *from, uint64_t *to)
{
    readahead_on_miss(st, p, off, off + 4 * K, from, to);
}

static void test_sequential_doubles_to_max(void)
{
    ReadAheadState st = { 0 };
    uint64_t from, to;
    miss(&st, &params, 0, &from, &to);          /* first miss: a new stream, nothing ahead */
    CHECK_EQ_INT(to - from, 0);
    miss(&st, &params, 1 * M, &from, &to);      /* where its window ended: 2 windows ahead */
    CHECK_EQ_INT(from, 2 * M);
    CHECK_EQ_INT(to, 4 * M);
    miss(&st, &params, 4 * M, &from, &to);      /* where that ended: doubled */
    CHECK_EQ_INT(from, 5 * M);
    CHECK_EQ_INT(to, 9 * M);
    miss(&st, &params, 9 * M, &from, &to);
    CHECK_EQ_INT(from, 10 * M);
    CHECK_EQ_INT(to, 18 * M);
    miss(&st, &params, 18 * M, &from, &to);     /* capped at max */
    CHECK_EQ_INT(from, 19 * M);
    CHECK_EQ_INT(to, 27 * M);
}

static void test_caught_up_and_slack(void)
{
    ReadAheadState st = { 0 };
    uint64_t from, to;
    miss(&st, &params, 0, &from, &to);
    miss(&st, &params, 1 * M, &from, &to);      /* read-ahead [2M, 4M) */
    /* The reader misses inside the read-ahead still in flight: extend past it, do not restart. */
    miss(&st, &params, 2 * M + 8 * K, &from, &to);
    CHECK_EQ_INT(from, 4 * M);
    CHECK_EQ_INT(to, 7 * M);
    /* A miss up to `slack` past the end (fills cover whole chunks) is still sequential. */
    miss(&st, &params, 7 * M + 512 * K, &from, &to);
    CHECK_EQ_INT(from, 8 * M);
    CHECK_EQ_INT(to, 16 * M);
}

static void test_random_never_reads_ahead(void)
{
    ReadAheadState st = { 0 };
    uint64_t from, to, total = 0;
    static const uint64_t offs[] = { 40, 3, 17, 9, 55, 28, 1, 33, 12, 47, 21, 6 };
    for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        miss(&st, &params, offs[i] * M, &from, &to);
        total += to - from;
    }
    CHECK_EQ_INT(total, 0);
    /* A miss behind a stream (a jump back) is not sequential either. */
    ReadAheadState st2 = { 0 };
    miss(&st2, &params, 10 * M, &from, &to);
    miss(&st2, &params, 11 * M, &from, &to);    /* read-ahead [12M, 14M) */
    miss(&st2, &params, 5 * M, &from, &to);
    CHECK_EQ_INT(to - from, 0);
}

static void test_interleaved_streams(void)
{
    /* 8 readers in their own eighths of the blob, misses interleaved: each is its own stream. */
    ReadAheadState st = { 0 };
    ReadAheadParams big = params;
    big.blob_size = 128 * M;
    uint64_t from, to, ahead[8] = { 0 };
    for (uint64_t step = 0; step < 3; step++)
        for (uint64_t r = 0; r < 8; r++) {
            uint64_t base = r * 8 * M;
            /* Reader r misses at the end of what it has: its own window, then its read-ahead. */
            uint64_t off = step == 0 ? base : step == 1 ? base + 1 * M : base + 4 * M;
            miss(&st, &big, off, &from, &to);
            ahead[r] += to - from;
        }
    for (unsigned r = 0; r < 8; r++)
        CHECK_EQ_INT(ahead[r], 2 * M + 4 * M);
    /* A ninth stream replaces the least recently used one, whose next miss then starts over. */
    miss(&st, &big, 100 * M, &from, &to);
    miss(&st, &big, 9 * M, &from, &to);
    CHECK_EQ_INT(to - from, 0);
}

static void test_edges(void)
{
    ReadAheadState st = { 0 };
    uint64_t from, to;
    ReadAheadParams off = params;
    off.max = 0;
    miss(&st, &off, 0, &from, &to);
    miss(&st, &off, 1 * M, &from, &to);
    CHECK_EQ_INT(to - from, 0);                 /* readahead: 0 */
    /* Clamped at the end of the blob, and nothing planned past it. */
    ReadAheadParams small = params;
    small.blob_size = 3 * M + 100;
    ReadAheadState st2 = { 0 };
    miss(&st2, &small, 0, &from, &to);
    miss(&st2, &small, 1 * M, &from, &to);
    CHECK_EQ_INT(from, 2 * M);
    CHECK_EQ_INT(to, 3 * M + 100);
    miss(&st2, &small, 3 * M, &from, &to);
    CHECK_EQ_INT(to - from, 0);
    miss(&st2, &small, 5 * M, &from, &to);      /* a miss past the end plans nothing */
    CHECK_EQ_INT(to - from, 0);
    /* Offsets near 2^64 do not wrap. */
    ReadAheadParams huge = params;
    huge.blob_size = UINT64_MAX - 4 * M;
    ReadAheadState st3 = { 0 };
    miss(&st3, &huge, UINT64_MAX - 16 * M, &from, &to);
    miss(&st3, &huge, UINT64_MAX - 15 * M, &from, &to);
    CHECK(from <= to && to <= huge.blob_size);
}

int main(void)
{
    RUN(test_sequential_doubles_to_max);
    RUN(test_caught_up_and_slack);
    RUN(test_random_never_reads_ahead);
    RUN(test_interleaved_streams);
    RUN(test_edges);
    return TEST_EXIT();
}
