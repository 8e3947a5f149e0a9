/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The fanotify pre-content ABI (Linux >= 6.14): the constants Debian 12's
 * 6.1 uapi headers lack (with #ifndef fallbacks, x86_64/generic values), the
 * event layout, and a parser that validates every length of a record before
 * any field is used. Nothing here makes a syscall.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/fanotify.h>

#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000u          /* pre-content access (6.14) */
#endif
#ifndef FAN_CLASS_PRE_CONTENT
#define FAN_CLASS_PRE_CONTENT 0x00000008u
#endif
#ifndef FAN_UNLIMITED_QUEUE
#define FAN_UNLIMITED_QUEUE 0x00000010u
#endif
#ifndef FAN_REPORT_FD_ERROR
#define FAN_REPORT_FD_ERROR 0x00002000u
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6
#endif
#ifndef FAN_ERRNO_SHIFT
#define FAN_ERRNO_SHIFT 24
#define FAN_ERRNO_MASK 0xffu
#endif
#ifndef FAN_DENY_ERRNO
#define FAN_DENY_ERRNO(err) (FAN_DENY | ((((uint32_t)(err)) & FAN_ERRNO_MASK) << FAN_ERRNO_SHIFT))
#endif
#ifndef FAN_Q_OVERFLOW
#define FAN_Q_OVERFLOW 0x00004000u
#endif
#ifndef FAN_NOFD
#define FAN_NOFD (-1)
#endif

/* Every permission event bit a group can see, old and new. */
#define CFN_FAN_PERM_EVENTS (FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM | FAN_PRE_ACCESS)

/* struct fanotify_event_info_range (6.14), not in the 6.1 headers. */
struct cfn_fanotify_event_info_range {
    struct fanotify_event_info_header hdr;
    uint32_t pad;
    uint64_t offset;
    uint64_t count;
} __attribute__((packed));

_Static_assert(sizeof(struct fanotify_event_metadata) == 24, "fanotify_event_metadata is 24 bytes");
_Static_assert(sizeof(struct fanotify_event_info_header) == 4, "fanotify_event_info_header is 4 bytes");
_Static_assert(sizeof(struct cfn_fanotify_event_info_range) == 24, "fanotify_event_info_range is 24 bytes");
_Static_assert(sizeof(struct fanotify_response) == 8, "fanotify_response is 8 bytes");

/* Deny errnos the kernel accepts in FAN_DENY_ERRNO(); others make the write fail with EINVAL. */
bool fanotify_deny_errno_allowed(int err);

/* One validated event. */
typedef struct FanotifyEvent {
    uint64_t mask;
    int32_t fd;                     /* FAN_NOFD for overflow events */
    int32_t pid;
    bool has_range;
    uint64_t offset, count;         /* from the RANGE record */
    unsigned unknown_records;       /* info records of other types, skipped */
} FanotifyEvent;

/*
 * Parse the event at the start of `buf` (`len` bytes left of one read()).
 * On success returns the event's length (the caller steps by it) and fills
 * *ev. Returns -EBADMSG with a reason in `why` when the record is malformed;
 * then *skip is how many bytes the caller may skip to reach the next record,
 * or 0 when the rest of the buffer cannot be trusted. A malformed record
 * whose fd field could be read still reports it in ev->fd (>= 0 when valid),
 * so that a permission event can be answered and its fd closed.
 */
int fanotify_event_parse(const void *buf, size_t len, FanotifyEvent *ev, size_t *skip,
                         char *why, size_t why_len);
