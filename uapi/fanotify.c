/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "fanotify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool fanotify_deny_errno_allowed(int err)
{
    /* fs/notify/fanotify/fanotify_user.c: fanotify_is_valid_errno() (6.14). */
    switch (err) {
    case EPERM: case EIO: case EAGAIN: case EBUSY: case ETXTBSY: case ENOSPC: case EDQUOT:
        return true;
    default:
        return false;
    }
}

int fanotify_event_parse(const void *buf, size_t len, FanotifyEvent *ev, size_t *skip,
                         char *why, size_t why_len)
{
    struct fanotify_event_metadata md;
    const uint8_t *p = buf;

    memset(ev, 0, sizeof(*ev));
    ev->fd = FAN_NOFD;
    *skip = 0;
    if (len < sizeof(md)) {
        snprintf(why, why_len, "%zu bytes left, shorter than the 24-byte metadata", len);
        return -EBADMSG;
    }
    memcpy(&md, p, sizeof(md));
    /* Read the fd first: even a bad record may carry an fd that must be answered and closed. */
    if (md.vers == FANOTIFY_METADATA_VERSION && md.metadata_len >= sizeof(md)) {
        ev->fd = md.fd;
        ev->pid = md.pid;
        ev->mask = md.mask;
    }
    if (md.vers != FANOTIFY_METADATA_VERSION) {
        snprintf(why, why_len, "metadata version %u, expected %u", md.vers, FANOTIFY_METADATA_VERSION);
        return -EBADMSG;    /* the layout itself is unknown: trust nothing after it */
    }
    if (md.metadata_len < sizeof(md)) {
        snprintf(why, why_len, "metadata_len %u < %zu", md.metadata_len, sizeof(md));
        return -EBADMSG;
    }
    if (md.event_len < md.metadata_len || md.event_len > len) {
        snprintf(why, why_len, "event_len %u outside [metadata_len %u, %zu bytes read]", md.event_len,
                 md.metadata_len, len);
        return -EBADMSG;
    }
    *skip = md.event_len;   /* in bounds: the next record can still be found after a bad one */

    size_t off = md.metadata_len;
    while (off < md.event_len) {
        struct fanotify_event_info_header hdr;
        size_t left = md.event_len - off;
        if (left < sizeof(hdr)) {
            snprintf(why, why_len, "%zu trailing bytes after the info records", left);
            return -EBADMSG;
        }
        memcpy(&hdr, p + off, sizeof(hdr));
        if (hdr.len < sizeof(hdr) || hdr.len > left) {
            snprintf(why, why_len, "info record type %u has length %u (%zu bytes left)", hdr.info_type,
                     hdr.len, left);
            return -EBADMSG;
        }
        if (hdr.info_type == FAN_EVENT_INFO_TYPE_RANGE) {
            struct cfn_fanotify_event_info_range r;
            if (hdr.len < sizeof(r)) {
                snprintf(why, why_len, "range record of %u bytes, expected %zu", hdr.len, sizeof(r));
                return -EBADMSG;
            }
            if (ev->has_range) {
                snprintf(why, why_len, "two range records in one event");
                return -EBADMSG;
            }
            memcpy(&r, p + off, sizeof(r));
            uint64_t end;
            if (__builtin_add_overflow(r.offset, r.count, &end) || end > (uint64_t)INT64_MAX) {
                snprintf(why, why_len, "range offset %llu count %llu overflows",
                         (unsigned long long)r.offset, (unsigned long long)r.count);
                return -EBADMSG;
            }
            ev->has_range = true;
            ev->offset = r.offset;
            ev->count = r.count;
        } else {
            ev->unknown_records++;
        }
        off += hdr.len;
    }
    return (int)md.event_len;
}
