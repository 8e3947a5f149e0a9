/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The WWW-Authenticate parser. Input: one header value (all values of a
 * response joined by ", ", as the engine hands them over; cut at the first
 * NUL, as a C string). Every kept value must be bounded and terminated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/backend/http/challenge.h"

/* Terminated inside its array, and no control byte but TAB (values end up in URLs and logs). */
#define FIELD_OK(ch, f) check_field((ch)->f, sizeof((ch)->f))

static void check_field(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    FUZZ_ASSERT(n < cap);
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(s[i] == '\t' || ((unsigned char)s[i] >= 0x20 && s[i] != 0x7f));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    AuthChallenge ch[AUTH_CHALLENGES_MAX];
    char *hdr = malloc(size + 1);
    if (!hdr)
        abort();
    memcpy(hdr, data, size);
    hdr[size] = '\0';

    /* Both the full bound and a bound of one (the second challenge must be refused). */
    static const size_t bounds[] = { AUTH_CHALLENGES_MAX, 1 };
    for (size_t b = 0; b < 2; b++) {
        size_t n = 999;
        int r = auth_challenge_parse(hdr, ch, bounds[b], &n);
        if (r < 0) {
            FUZZ_ASSERT(r == -EINVAL || r == -E2BIG);
            continue;
        }
        FUZZ_ASSERT(r == 0 && n <= bounds[b]);
        for (size_t i = 0; i < n; i++) {
            FIELD_OK(&ch[i], scheme);
            FIELD_OK(&ch[i], realm);
            FIELD_OK(&ch[i], service);
            FIELD_OK(&ch[i], scope);
            FIELD_OK(&ch[i], error);
            FUZZ_ASSERT(ch[i].scheme[0] != '\0');
            FUZZ_ASSERT(strchr(ch[i].scheme, ' ') == NULL && strchr(ch[i].scheme, ',') == NULL);
        }
    }
    free(hdr);
    return 0;
}
