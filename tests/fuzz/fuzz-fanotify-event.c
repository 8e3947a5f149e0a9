/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * fanotify event parsing. Input: the bytes one read() of a fanotify group
 * returned, walked record by record the way the front-end walks them
 * (step by the event length, or by the skip a bad record allows, stop at 0).
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "uapi/fanotify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    unsigned records = 0;

    while (off < size) {
        FanotifyEvent ev;
        size_t skip = 12345;
        char why[256];
        size_t left = size - off;
        why[0] = '\0';
        int r = fanotify_event_parse(data + off, left, &ev, &skip, why, sizeof(why));
        if (r < 0) {
            FUZZ_ASSERT(r == -EBADMSG);
            FUZZ_ASSERT(why[0] != '\0');
            FUZZ_ASSERT(skip <= left);
            FUZZ_ASSERT(skip == 0 || skip >= sizeof(struct fanotify_event_metadata));
            fuzz_note("event rejected", why);
            if (skip == 0)
                break;
            off += skip;
        } else {
            FUZZ_ASSERT(skip == (size_t)r);
            FUZZ_ASSERT((size_t)r >= sizeof(struct fanotify_event_metadata) && (size_t)r <= left);
            if (ev.has_range) {
                FUZZ_ASSERT(ev.offset + ev.count >= ev.offset);
                FUZZ_ASSERT(ev.offset + ev.count <= (uint64_t)INT64_MAX);
            }
            off += (size_t)r;
        }
        records++;
    }
    FUZZ_ASSERT(records <= size / sizeof(struct fanotify_event_metadata) + 1);
    return 0;
}
