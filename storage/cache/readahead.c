/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "readahead.h"

#include <stdbool.h>

#include "storage/util/macros.h"

static ReadAheadStream *stream_for(ReadAheadState *st, const ReadAheadParams *p, uint64_t off)
{
    ReadAheadStream *oldest = &st->streams[0];
    for (unsigned i = 0; i < READAHEAD_STREAMS; i++) {
        ReadAheadStream *s = &st->streams[i];
        /* At the expected place, or inside a read-ahead still in flight (the reader caught up). */
        uint64_t lo = s->size ? s->start : s->expect;
        if (s->used && off >= lo && off <= s->expect + p->slack)
            return s;
        if (s->used < oldest->used)
            oldest = s;
    }
    oldest->size = 0;
    oldest->start = oldest->expect = 0;
    oldest->used = 0;
    return oldest;
}

void readahead_on_miss(ReadAheadState *st, const ReadAheadParams *p, uint64_t off, uint64_t end,
                       uint64_t *from, uint64_t *to)
{
    *from = *to = 0;
    if (!p->max || off >= p->blob_size)
        return;
    uint64_t win = CFN_MAX(p->window, (uint64_t)CFN_PAGE_SIZE);
    uint64_t win_end = CFN_MIN(cfn_align_up(CFN_MAX(end, off + 1), win), p->blob_size);
    ReadAheadStream *s = stream_for(st, p, off);
    bool sequential = s->used != 0;
    s->used = ++st->clock;
    if (!sequential) {
        s->start = s->expect = win_end;
        return;
    }
    s->size = CFN_MIN(s->size ? 2 * s->size : 2 * win, p->max);
    uint64_t lo = CFN_MAX(win_end, s->expect), hi = CFN_MIN(win_end + s->size, p->blob_size);
    if (lo >= hi)
        return;
    s->start = lo;
    s->expect = hi;
    *from = lo;
    *to = hi;
}
