/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The JSON reader (registry token responses, docker config.json). Input: a
 * document. An accepted one is walked completely: every member's key and
 * value decoded into buffers too small and large enough, every number read;
 * then it is read as a docker config the way the registry backend does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/backend/http/dockercfg.h"
#include "storage/backend/http/json.h"

static void check_string(const JsonValue *v)
{
    char small[8], big[4096];
    int n = json_string(v, big, sizeof(big));
    if (v->type != JSON_STRING) {
        FUZZ_ASSERT(n == -EINVAL);
        return;
    }
    FUZZ_ASSERT(n == -EINVAL || n == -E2BIG || (n >= 0 && (size_t)n < sizeof(big)));
    if (n >= 0) {
        FUZZ_ASSERT(strlen(big) == (size_t)n);  /* no U+0000 inside */
        int s = json_string(v, small, sizeof(small));
        FUZZ_ASSERT((size_t)n < sizeof(small) ? s == n : s == -E2BIG);
    }
}

static void walk(const JsonValue *v, unsigned depth)
{
    FUZZ_ASSERT(depth <= JSON_MAX_DEPTH + 1);
    check_string(v);
    uint64_t u;
    int r = json_u64(v, &u);
    FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ERANGE);
    if (v->type != JSON_OBJECT)
        return;
    JsonValue key, val, got;
    size_t pos = 0;
    while ((r = json_object_next(v, &pos, &key, &val)) == 1) {
        FUZZ_ASSERT(key.type == JSON_STRING);
        FUZZ_ASSERT(val.p >= v->p && val.p + val.len <= v->p + v->len);
        char name[256];
        if (json_string(&key, name, sizeof(name)) >= 0)
            FUZZ_ASSERT(json_object_get(v, name, &got) == 0);
        walk(&val, depth + 1);
    }
    FUZZ_ASSERT(r == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    JsonValue root;
    const char *text = (const char *)data;

    if (json_parse(text, size, &root) < 0)
        return 0;
    FUZZ_ASSERT(root.type != JSON_NONE);
    FUZZ_ASSERT(root.p >= text && root.p + root.len <= text + size);
    walk(&root, 0);

    static const char *const hosts[] = { "registry.example.com", "docker.io", "" };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char *auth = NULL, *identity = NULL;
        int r = dockercfg_lookup_mem(text, size, hosts[i], &auth, &identity);
        FUZZ_ASSERT(r == 0 || r == -ENOENT || r == -EINVAL || r == -E2BIG);
        FUZZ_ASSERT(r == 0 ? (auth || identity) : (!auth && !identity));
        free(auth);
        free(identity);
    }
    return 0;
}
