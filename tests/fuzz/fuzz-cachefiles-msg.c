/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The /dev/cachefiles message parser. Input: the bytes one read() of the
 * device returned (OPEN, CLOSE, READ or anything else). Checks that an
 * accepted message is what the ABI allows and that a rejected one leaves
 * nothing behind but, for an intact OPEN header, its fd.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "uapi/cachefiles.h"

static void check_key(const char *key, uint32_t len)
{
    FUZZ_ASSERT(len <= CACHEFILES_KEY_MAX);
    FUZZ_ASSERT(strlen(key) == len);
    for (uint32_t i = 0; i < len; i++)
        FUZZ_ASSERT(key[i] >= 0x20 && key[i] <= 0x7e);
}

static void check_accepted(const CachefilesMsg *m, int open_fd, size_t size)
{
    switch (m->opcode) {
    case CACHEFILES_OP_OPEN:
        FUZZ_ASSERT(m->open.fd >= 0 && m->open.fd == open_fd);
        FUZZ_ASSERT(m->open.volume_key_len >= 1 && m->open.cookie_key_len >= 1);
        FUZZ_ASSERT(size == sizeof(struct cachefiles_msg_hdr) + sizeof(struct cachefiles_open_hdr) +
                            m->open.volume_key_len + 1 + m->open.cookie_key_len);
        check_key(m->open.volume_key, m->open.volume_key_len);
        check_key(m->open.cookie_key, m->open.cookie_key_len);
        break;
    case CACHEFILES_OP_CLOSE:
        FUZZ_ASSERT(open_fd == -1 && size == sizeof(struct cachefiles_msg_hdr));
        break;
    case CACHEFILES_OP_READ:
        FUZZ_ASSERT(open_fd == -1);
        FUZZ_ASSERT(m->read.off + m->read.len >= m->read.off);
        break;
    default:
        FUZZ_ASSERT(!"unknown opcode accepted");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CachefilesMsg m;
    char why[256];
    int open_fd = 12345;    /* must be overwritten */

    why[0] = '\0';
    int r = cachefiles_msg_parse(data, size, &m, &open_fd, why, sizeof(why));
    FUZZ_ASSERT(open_fd >= -1);
    if (r < 0) {
        FUZZ_ASSERT(r == -EBADMSG);
        FUZZ_ASSERT(why[0] != '\0' && strnlen(why, sizeof(why)) < sizeof(why));
        /* Only an OPEN with an intact header hands back an fd to close. */
        uint32_t opcode = 0;
        if (size >= 8)
            memcpy(&opcode, data + 4, sizeof(opcode));
        if (size < 32 || opcode != CACHEFILES_OP_OPEN)
            FUZZ_ASSERT(open_fd == -1);
        fuzz_note("message rejected", why);
        return 0;
    }
    FUZZ_ASSERT(r == 0);
    check_accepted(&m, open_fd, size);
    /* The answer the daemon would write for it must always fit the device's command buffer. */
    char cmd[64];
    FUZZ_ASSERT(cachefiles_cmd_copen(cmd, sizeof(cmd), m.msg_id, -4095) > 0);
    FUZZ_ASSERT(cachefiles_cmd_copen(cmd, sizeof(cmd), m.msg_id, INT64_MAX) > 0);
    return 0;
}
