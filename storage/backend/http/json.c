/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "json.h"

#include <errno.h>
#include <string.h>

typedef struct JsonCur {
    const char *p, *end;
} JsonCur;

static void skip_ws(JsonCur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int read_hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return -EINVAL;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -EINVAL;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Length of one well-formed UTF-8 sequence at p, or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char b = p[0];
    size_t n;
    uint32_t cp;
    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf)
        n = 2, cp = b & 0x1f;
    else if (b >= 0xe0 && b <= 0xef)
        n = 3, cp = b & 0x0f;
    else if (b >= 0xf0 && b <= 0xf4)
        n = 4, cp = b & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/*
 * Walk a string starting at the opening quote. With out != NULL, decode into
 * out (cap bytes incl. NUL). Returns decoded length, or -EINVAL / -E2BIG.
 */
static int walk_string(JsonCur *c, char *out, size_t cap)
{
    if (c->p >= c->end || *c->p != '"')
        return -EINVAL;
    c->p++;
    size_t o = 0;
    bool too_big = false;
#define EMIT(ch) do { if (out) { if (o + 1 < cap) out[o] = (char)(ch); else too_big = true; } o++; } while (0)
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            if (out) {
                if (too_big || o + 1 > cap)
                    return -E2BIG;
                out[o] = '\0';
            }
            return o > (size_t)INT32_MAX ? -E2BIG : (int)o;
        }
        if (ch < 0x20)
            return -EINVAL;
        if (ch == '\\') {
            if (c->end - c->p < 2)
                return -EINVAL;
            char e = c->p[1];
            c->p += 2;
            switch (e) {
            case '"': EMIT('"'); break;
            case '\\': EMIT('\\'); break;
            case '/': EMIT('/'); break;
            case 'b': EMIT('\b'); break;
            case 'f': EMIT('\f'); break;
            case 'n': EMIT('\n'); break;
            case 'r': EMIT('\r'); break;
            case 't': EMIT('\t'); break;
            case 'u': {
                unsigned u;
                if (read_hex4(c->p, c->end, &u) < 0)
                    return -EINVAL;
                c->p += 4;
                uint32_t cp = u;
                if (u >= 0xd800 && u <= 0xdbff) {
                    unsigned lo;
                    if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
                        read_hex4(c->p + 2, c->end, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                        return -EINVAL;
                    c->p += 6;
                    cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                } else if (u >= 0xdc00 && u <= 0xdfff) {
                    return -EINVAL;
                }
                if (cp == 0 && out)
                    return -EINVAL;     /* no NULs in C strings */
                if (cp < 0x80) {
                    EMIT(cp);
                } else if (cp < 0x800) {
                    EMIT(0xc0 | cp >> 6);
                    EMIT(0x80 | (cp & 0x3f));
                } else if (cp < 0x10000) {
                    EMIT(0xe0 | cp >> 12);
                    EMIT(0x80 | ((cp >> 6) & 0x3f));
                    EMIT(0x80 | (cp & 0x3f));
                } else {
                    EMIT(0xf0 | cp >> 18);
                    EMIT(0x80 | ((cp >> 12) & 0x3f));
                    EMIT(0x80 | ((cp >> 6) & 0x3f));
                    EMIT(0x80 | (cp & 0x3f));
                }
                break;
            }
            default:
                return -EINVAL;
            }
            continue;
        }
        size_t n = utf8_seq((const unsigned char *)c->p, (const unsigned char *)c->end);
        if (!n)
            return -EINVAL;
        for (size_t i = 0; i < n; i++)
            EMIT(c->p[i]);
        c->p += n;
    }
#undef EMIT
    return -EINVAL;
}

static int walk_number(JsonCur *c)
{
    const char *p = c->p;
    if (p < c->end && *p == '-')
        p++;
    if (p >= c->end)
        return -EINVAL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return -EINVAL;
    }
    if (p < c->end && *p == '.') {
        p++;
        if (p >= c->end || *p < '0' || *p > '9')
            return -EINVAL;
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < c->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= c->end || *p < '0' || *p > '9')
            return -EINVAL;
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    }
    c->p = p;
    return 0;
}

static int walk_literal(JsonCur *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return -EINVAL;
    c->p += n;
    return 0;
}

/* Validate and skip one value (leading whitespace skipped). */
static int walk_value(JsonCur *c, unsigned depth, JsonValue *v)
{
    skip_ws(c);
    if (c->p >= c->end)
        return -EINVAL;
    const char *start = c->p;
    JsonType t;
    int r;
    switch (*c->p) {
    case '{':
    case '[': {
        bool obj = *c->p == '{';
        char close = obj ? '}' : ']';
        t = obj ? JSON_OBJECT : JSON_ARRAY;
        if (depth >= JSON_MAX_DEPTH)
            return -EINVAL;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            break;
        }
        for (;;) {
            if (obj) {
                skip_ws(c);
                r = walk_string(c, NULL, 0);
                if (r < 0)
                    return r;
                skip_ws(c);
                if (c->p >= c->end || *c->p != ':')
                    return -EINVAL;
                c->p++;
            }
            r = walk_value(c, depth + 1, NULL);
            if (r < 0)
                return r;
            skip_ws(c);
            if (c->p >= c->end)
                return -EINVAL;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p == close) {
                c->p++;
                break;
            }
            return -EINVAL;
        }
        break;
    }
    case '"':
        t = JSON_STRING;
        r = walk_string(c, NULL, 0);
        if (r < 0)
            return r;
        break;
    case 't':
        t = JSON_TRUE;
        if (walk_literal(c, "true") < 0)
            return -EINVAL;
        break;
    case 'f':
        t = JSON_FALSE;
        if (walk_literal(c, "false") < 0)
            return -EINVAL;
        break;
    case 'n':
        t = JSON_NULL;
        if (walk_literal(c, "null") < 0)
            return -EINVAL;
        break;
    default:
        t = JSON_NUMBER;
        if (walk_number(c) < 0)
            return -EINVAL;
        break;
    }
    if (v) {
        v->type = t;
        v->p = start;
        v->len = (size_t)(c->p - start);
    }
    return 0;
}

int json_parse(const char *text, size_t len, JsonValue *root)
{
    JsonCur c = { text, text + len };
    int r = walk_value(&c, 0, root);
    if (r < 0)
        return -EINVAL;
    skip_ws(&c);
    return c.p == c.end ? 0 : -EINVAL;
}

int json_object_next(const JsonValue *obj, size_t *pos, JsonValue *key, JsonValue *val)
{
    if (obj->type != JSON_OBJECT)
        return -EINVAL;
    JsonCur c = { obj->p + (*pos ? *pos : 1), obj->p + obj->len };
    skip_ws(&c);
    if (c.p < c.end && *c.p == ',')
        c.p++;
    skip_ws(&c);
    if (c.p >= c.end || *c.p == '}')
        return 0;
    const char *ks = c.p;
    if (walk_string(&c, NULL, 0) < 0)
        return -EINVAL;
    key->type = JSON_STRING;
    key->p = ks;
    key->len = (size_t)(c.p - ks);
    skip_ws(&c);
    if (c.p >= c.end || *c.p != ':')
        return -EINVAL;
    c.p++;
    if (walk_value(&c, 1, val) < 0)
        return -EINVAL;
    *pos = (size_t)(c.p - obj->p);
    return 1;
}

int json_object_get(const JsonValue *obj, const char *key, JsonValue *out)
{
    size_t pos = 0;
    JsonValue k, v;
    char kb[256];
    int r;
    while ((r = json_object_next(obj, &pos, &k, &v)) == 1) {
        int n = json_string(&k, kb, sizeof(kb));
        if (n >= 0 && strcmp(kb, key) == 0) {
            *out = v;
            return 0;
        }
    }
    return r < 0 ? r : -ENOENT;
}

int json_string(const JsonValue *v, char *buf, size_t cap)
{
    if (v->type != JSON_STRING || !cap)
        return -EINVAL;
    JsonCur c = { v->p, v->p + v->len };
    return walk_string(&c, buf, cap);
}

int json_u64(const JsonValue *v, uint64_t *out)
{
    if (v->type != JSON_NUMBER || v->len == 0 || v->p[0] == '-')
        return -EINVAL;
    uint64_t n = 0;
    for (size_t i = 0; i < v->len; i++) {
        char ch = v->p[i];
        if (ch < '0' || ch > '9')
            return -EINVAL;
        if (n > (UINT64_MAX - (uint64_t)(ch - '0')) / 10)
            return -ERANGE;
        n = n * 10 + (uint64_t)(ch - '0');
    }
    *out = n;
    return 0;
}
