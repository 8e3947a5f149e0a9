/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "dockercfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

static bool is_docker_hub(const char *h, size_t n)
{
    static const char *const hub[] = { "docker.io", "index.docker.io", "registry-1.docker.io" };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(hub); i++)
        if (strlen(hub[i]) == n && strncasecmp(h, hub[i], n) == 0)
            return true;
    return false;
}

/* host part of a config key: drop "scheme://" and anything from the first '/'. */
static void key_host(const char *key, const char **h, size_t *n)
{
    const char *p = strstr(key, "://");
    p = p ? p + 3 : key;
    *h = p;
    *n = strcspn(p, "/");
}

static bool key_matches(const char *key, const char *host)
{
    const char *kh;
    size_t kn;
    key_host(key, &kh, &kn);
    size_t hn = strlen(host);
    if (kn == hn && strncasecmp(kh, host, hn) == 0)
        return true;
    return is_docker_hub(kh, kn) && is_docker_hub(host, hn);
}

static int dup_string(const JsonValue *obj, const char *name, char **out)
{
    JsonValue v;
    char buf[16384];
    if (json_object_get(obj, name, &v) < 0 || v.type != JSON_STRING)
        return 0;
    int n = json_string(&v, buf, sizeof(buf));
    if (n < 0)
        return n;
    if (n == 0)
        return 0;
    *out = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return *out ? 0 : -ENOMEM;
}

int dockercfg_lookup_mem(const char *json, size_t len, const char *host, char **auth,
                         char **identity_token)
{
    JsonValue root, auths, key, val;
    *auth = *identity_token = NULL;
    if (json_parse(json, len, &root) < 0 || root.type != JSON_OBJECT)
        return -EINVAL;
    if (json_object_get(&root, "auths", &auths) < 0 || auths.type != JSON_OBJECT)
        return -ENOENT;
    size_t pos = 0;
    int r;
    char kb[512];
    while ((r = json_object_next(&auths, &pos, &key, &val)) == 1) {
        if (val.type != JSON_OBJECT || json_string(&key, kb, sizeof(kb)) < 0 || !key_matches(kb, host))
            continue;
        r = dup_string(&val, "auth", auth);
        if (r == 0)
            r = dup_string(&val, "identitytoken", identity_token);
        if (r < 0) {
            free(*auth);
            free(*identity_token);
            *auth = *identity_token = NULL;
            return r;
        }
        return (*auth || *identity_token) ? 0 : -ENOENT;
    }
    return r < 0 ? -EINVAL : -ENOENT;
}

int dockercfg_lookup(const char *path, const char *host, char **auth, char **identity_token)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL
                                        : st.st_size > DOCKERCFG_MAX_SIZE ? -EFBIG : 0;
    if (r < 0) {
        close(fd);
        return r;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            close(fd);
            free(buf);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap) {       /* grew while we read it */
            close(fd);
            free(buf);
            return -EFBIG;
        }
    }
    close(fd);
    r = dockercfg_lookup_mem(buf, len, host, auth, identity_token);
    explicit_bzero(buf, len);
    free(buf);
    if (r == 0 && (st.st_mode & 077))   /* as ssh does for private keys */
        log_warn("docker config %s: mode %04o lets other users read it, and it holds credentials for %s: "
                 "chmod 600 it", path, (unsigned)(st.st_mode & 07777), host);
    return r;
}
