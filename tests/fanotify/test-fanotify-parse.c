/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The fanotify record parser against well-formed and hostile records: every
 * length is checked before use, a bad record still yields its fd (so the
 * event can be answered), and the caller learns whether the next record can
 * be found. No root, no kernel.
 */
#include <errno.h>
#include <string.h>

#include "tests/unit/test.h"
#include "uapi/fanotify.h"

typedef struct Rec {
    uint8_t b[256];
    size_t len;
} Rec;

static void put_md(Rec *r, uint32_t event_len, uint8_t vers, uint16_t md_len, uint64_t mask, int32_t fd)
{
    struct fanotify_event_metadata md = { .event_len = event_len, .vers = vers, .metadata_len = md_len,
                                          .mask = mask, .fd = fd, .pid = 4242 };
    memcpy(r->b + r->len, &md, sizeof(md));
    r->len += sizeof(md);
}

static void put_range(Rec *r, uint16_t len, uint64_t off, uint64_t count)
{
    struct cfn_fanotify_event_info_range rg = { .hdr = { .info_type = FAN_EVENT_INFO_TYPE_RANGE, .len = len },
                                               .offset = off, .count = count };
    memcpy(r->b + r->len, &rg, sizeof(rg));
    r->len += len;
}

static int parse(const Rec *r, FanotifyEvent *ev, size_t *skip)
{
    char why[160];
    return fanotify_event_parse(r->b, r->len, ev, skip, why, sizeof(why));
}

static void test_good(void)
{
    Rec r = { 0 };
    put_md(&r, 48, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 7);
    put_range(&r, 24, 0x11000, 0x1000);
    /* The raw bytes the kernel sent for a 10-byte read at offset 70000 (fanotify-precontent.md). */
    static const uint8_t raw[24] = { 0x06, 0, 0x18, 0, 0, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0 };
    CHECK(memcmp(r.b + 24, raw, 24) == 0);
    FanotifyEvent ev;
    size_t skip;
    CHECK_EQ_INT(parse(&r, &ev, &skip), 48);
    CHECK_EQ_INT(ev.fd, 7);
    CHECK_EQ_INT(ev.pid, 4242);
    CHECK(ev.has_range);
    CHECK_EQ_INT(ev.offset, 0x11000);
    CHECK_EQ_INT(ev.count, 0x1000);

    /* Two records back to back, an unknown info type skipped. */
    Rec two = { 0 };
    put_md(&two, 56, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 8);
    struct fanotify_event_info_header h = { .info_type = 99, .len = 8 };
    memcpy(two.b + two.len, &h, sizeof(h));
    two.len += 8;
    put_range(&two, 24, 0, 4096);
    put_md(&two, 24, FANOTIFY_METADATA_VERSION, 24, FAN_Q_OVERFLOW, FAN_NOFD);
    CHECK_EQ_INT(parse(&two, &ev, &skip), 56);
    CHECK_EQ_INT(ev.unknown_records, 1);
    CHECK(ev.has_range && ev.count == 4096);
    char why[160];
    CHECK_EQ_INT(fanotify_event_parse(two.b + 56, two.len - 56, &ev, &skip, why, sizeof(why)), 24);
    CHECK(ev.mask & FAN_Q_OVERFLOW);
    CHECK_EQ_INT(ev.fd, FAN_NOFD);
    CHECK(!ev.has_range);
}

static void test_bad(void)
{
    FanotifyEvent ev;
    size_t skip;
    Rec r;

    /* Shorter than the metadata. */
    r = (Rec){ .len = 10 };
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);
    CHECK_EQ_INT(skip, 0);
    CHECK_EQ_INT(ev.fd, FAN_NOFD);

    /* Wrong version: nothing trusted, not even the fd. */
    r = (Rec){ 0 };
    put_md(&r, 48, 2, 24, FAN_PRE_ACCESS, 9);
    put_range(&r, 24, 0, 4096);
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);
    CHECK_EQ_INT(skip, 0);
    CHECK_EQ_INT(ev.fd, FAN_NOFD);

    /* event_len past the buffer: the fd is reported so the event can be denied. */
    r = (Rec){ 0 };
    put_md(&r, 200, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 11);
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);
    CHECK_EQ_INT(ev.fd, 11);
    CHECK_EQ_INT(skip, 0);

    /* event_len shorter than metadata_len. */
    r = (Rec){ 0 };
    put_md(&r, 16, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 12);
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);

    /* metadata_len below 24. */
    r = (Rec){ 0 };
    put_md(&r, 24, FANOTIFY_METADATA_VERSION, 20, FAN_PRE_ACCESS, 13);
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);

    /* Info header length 0 (would loop forever) and past the event. */
    r = (Rec){ 0 };
    put_md(&r, 48, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 14);
    put_range(&r, 24, 0, 4096);
    r.b[26] = 0;
    r.b[27] = 0;
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);
    CHECK_EQ_INT(skip, 48);     /* the record itself is in bounds: the next one can be found */
    CHECK_EQ_INT(ev.fd, 14);
    r.b[26] = 200;
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);

    /* Range record too short for its type. */
    r = (Rec){ 0 };
    put_md(&r, 40, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 15);
    put_range(&r, 16, 0, 4096);
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);

    /* Trailing bytes smaller than an info header. */
    r = (Rec){ 0 };
    put_md(&r, 26, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 16);
    r.len += 2;
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);

    /* Range that overflows. */
    r = (Rec){ 0 };
    put_md(&r, 48, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 17);
    put_range(&r, 24, UINT64_MAX - 10, 4096);
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);

    /* Two range records. */
    r = (Rec){ 0 };
    put_md(&r, 72, FANOTIFY_METADATA_VERSION, 24, FAN_PRE_ACCESS, 18);
    put_range(&r, 24, 0, 4096);
    put_range(&r, 24, 4096, 4096);
    CHECK_EQ_INT(parse(&r, &ev, &skip), -EBADMSG);
}

static void test_deny_errnos(void)
{
    CHECK(fanotify_deny_errno_allowed(EIO));
    CHECK(fanotify_deny_errno_allowed(EPERM));
    CHECK(!fanotify_deny_errno_allowed(ENOENT));
    CHECK_EQ_INT(FAN_DENY_ERRNO(EIO), 0x05000002);
}

int main(void)
{
    RUN(test_good);
    RUN(test_bad);
    RUN(test_deny_errnos);
    return TEST_EXIT();
}
