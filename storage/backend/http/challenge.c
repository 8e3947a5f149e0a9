/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "challenge.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* RFC 7230 tchar */
static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_t68char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~+/", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static size_t token_len(const char *p)
{
    size_t n = 0;
    while (is_tchar(p[n]))
        n++;
    return n;
}

/* Is p (after a scheme and its SP) a token68? It must be followed by end or ','. */
static size_t token68_len(const char *p)
{
    size_t n = 0;
    while (is_t68char(p[n]))
        n++;
    if (!n)
        return 0;
    while (p[n] == '=')
        n++;
    const char *q = skip_ows(p + n);
    return (*q == '\0' || *q == ',') ? n : 0;
}

/* Does p start an auth-param ("token BWS =")? */
static bool at_param(const char *p)
{
    size_t n = token_len(p);
    if (!n)
        return false;
    const char *q = skip_ows(p + n);
    return *q == '=';
}

static int put(char *dst, size_t cap, const char *src, size_t n)
{
    if (!dst)
        return 0;
    if (n >= cap)
        return -E2BIG;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Parse a token or quoted-string value into dst (NULL = discard). */
static int parse_value(const char **pp, char *dst, size_t cap)
{
    const char *p = *pp;
    if (*p == '"') {
        p++;
        size_t o = 0;
        for (;;) {
            unsigned char c = (unsigned char)*p;
            if (c == '\0')
                return -EINVAL;
            if (c == '"') {
                p++;
                break;
            }
            if (c == '\\') {
                unsigned char q = (unsigned char)p[1];
                if (!(q == '\t' || (q >= 0x20 && q != 0x7f)))
                    return -EINVAL;
                c = q;
                p += 2;
            } else {
                if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
                    return -EINVAL;
                p++;
            }
            if (dst) {
                if (o + 1 >= cap)
                    return -E2BIG;
                dst[o++] = (char)c;
            }
        }
        if (dst)
            dst[o] = '\0';
        *pp = p;
        return 0;
    }
    size_t n = token_len(p);
    if (!n)
        return -EINVAL;
    int r = put(dst, cap, p, n);
    if (r < 0)
        return r;
    *pp = p + n;
    return 0;
}

int auth_challenge_parse(const char *hdr, AuthChallenge *out, size_t max, size_t *n)
{
    const char *p = hdr;
    size_t cnt = 0;
    *n = 0;
    for (;;) {
        /* #rule: empty list elements are allowed */
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t sl = token_len(p);
        if (!sl)
            return -EINVAL;
        if (cnt == max)
            return -E2BIG;
        AuthChallenge *ch = &out[cnt++];
        memset(ch, 0, sizeof(*ch));
        if (put(ch->scheme, sizeof(ch->scheme), p, sl) < 0)
            return -E2BIG;
        p += sl;
        if (*p != ' ' && *p != '\t' && *p != ',' && *p != '\0')
            return -EINVAL;
        p = skip_ows(p);
        if (!*p || *p == ',')
            continue;           /* a scheme without parameters */
        size_t t68 = at_param(p) ? 0 : token68_len(p);
        if (t68) {
            ch->has_token68 = true;
            p = skip_ows(p + t68);
            continue;
        }
        /* auth-param list; a token not followed by '=' starts the next challenge */
        unsigned seen = 0;
        for (;;) {
            if (!at_param(p))
                return -EINVAL;
            size_t nl = token_len(p);
            const char *name = p;
            p = skip_ows(p + nl);
            p = skip_ows(p + 1);   /* '=' */
            char *dst = NULL;
            size_t cap = 0;
            unsigned bit = 0;
#define NAME(s) (nl == sizeof(s) - 1 && strncasecmp(name, s, nl) == 0)
            if (NAME("realm"))
                dst = ch->realm, cap = sizeof(ch->realm), bit = 1;
            else if (NAME("service"))
                dst = ch->service, cap = sizeof(ch->service), bit = 2;
            else if (NAME("scope"))
                dst = ch->scope, cap = sizeof(ch->scope), bit = 4;
            else if (NAME("error"))
                dst = ch->error, cap = sizeof(ch->error), bit = 8;
#undef NAME
            if (bit && (seen & bit))
                return -EINVAL;     /* a parameter name occurs at most once */
            seen |= bit;
            int r = parse_value(&p, dst, cap);
            if (r < 0)
                return r;
            p = skip_ows(p);
            if (!*p)
                break;
            if (*p != ',')
                return -EINVAL;
            /* skip empty elements, then: another param, or the next challenge */
            const char *q = p;
            while (*q == ',' || *q == ' ' || *q == '\t')
                q++;
            if (!*q) {
                p = q;
                break;
            }
            if (!at_param(q)) {
                p = q;
                break;
            }
            p = q;
        }
    }
    *n = cnt;
    return 0;
}
