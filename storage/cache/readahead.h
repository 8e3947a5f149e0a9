/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Read-ahead planning for a front-end that only hears about misses.
 *
 * The kernel sends a READ only for bytes missing from the cache file, so a
 * reader moving forward through a blob shows up as misses that each start
 * where the previous fill ended. Each such miss plans a read-ahead past its
 * window that doubles per miss up to a maximum: a file streamed from a
 * remote backend then costs a few round trips instead of one per window.
 * Any other miss starts a new stream without read-ahead, so random access
 * never pays for bytes it does not use. Several streams are tracked per
 * blob (readers of different files share one blob); the least recently
 * used is replaced.
 *
 * Pure bookkeeping: the caller issues the fills.
 */
#pragma once

#include <stdint.h>

#define READAHEAD_STREAMS 8

typedef struct ReadAheadStream {
    uint64_t start, expect;         /* the last read-ahead range; a sequential reader's
                                       next miss falls in [start, expect + slack] */
    uint64_t size;                  /* its length, 0 = no read-ahead yet */
    uint64_t used;                  /* last use, for replacement */
} ReadAheadStream;

typedef struct ReadAheadState {
    ReadAheadStream streams[READAHEAD_STREAMS];
    uint64_t clock;
} ReadAheadState;

typedef struct ReadAheadParams {
    uint64_t blob_size;
    uint64_t window;                /* a READ is filled to this alignment (read_window) */
    uint64_t slack;                 /* how far past `expect` a miss still counts as sequential */
    uint64_t max;                   /* largest read-ahead, 0 = off */
} ReadAheadParams;

/*
 * Account a miss [off, end) and return the range to fill ahead of it in
 * [*from, *to) (empty when from == to).
 */
void readahead_on_miss(ReadAheadState *st, const ReadAheadParams *p, uint64_t off, uint64_t end,
                       uint64_t *from, uint64_t *to);
