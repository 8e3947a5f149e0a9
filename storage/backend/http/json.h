/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A minimal, strict, bounded JSON reader (RFC 8259) for the few documents
 * the backends read: registry token responses and docker config.json. The
 * whole document is validated first (UTF-8, escapes, numbers, nesting depth
 * at most JSON_MAX_DEPTH); values are then spans into the caller's text,
 * decoded on demand into caller buffers. No allocation, no recursion beyond
 * the depth limit, safe on any input.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32

typedef enum JsonType {
    JSON_NONE, JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_NUMBER, JSON_TRUE, JSON_FALSE, JSON_NULL,
} JsonType;

typedef struct JsonValue {
    JsonType type;
    const char *p;      /* first byte of the value's text */
    size_t len;         /* length of the value's text */
} JsonValue;

/* Validate text[0..len) as one JSON document; 0 or -EINVAL. */
int json_parse(const char *text, size_t len, JsonValue *root);
/* Member `key` of an object (first one when duplicated); 0 or -ENOENT/-EINVAL. */
int json_object_get(const JsonValue *obj, const char *key, JsonValue *out);
/* Iterate an object: *pos starts at 0; 1 = a member was returned, 0 = end. */
int json_object_next(const JsonValue *obj, size_t *pos, JsonValue *key, JsonValue *val);
/* Decode a string into buf (NUL-terminated); -E2BIG when it does not fit,
 * -EINVAL when it is not a string or contains U+0000. Returns the length. */
int json_string(const JsonValue *v, char *buf, size_t cap);
/* A non-negative integer without fraction or exponent; -ERANGE on overflow. */
int json_u64(const JsonValue *v, uint64_t *out);
