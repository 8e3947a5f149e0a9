/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "backend_factory.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"
#include "storage/device/rafs_bootstrap.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_IMAGES 4096

typedef struct Parser {
    yaml_document_t doc;
    const char *name;
    char *err;
    size_t err_len;
    char base_dir[PATH_MAX];        /* relative paths resolve against the config's directory */
} Parser;

static int fail(Parser *p, const yaml_node_t *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(Parser *p, const yaml_node_t *node, const char *path, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (node)
        snprintf(p->err, p->err_len, "%s:%zu:%zu: %s: %s", p->name, node->start_mark.line + 1,
                 node->start_mark.column + 1, path, what);
    else
        snprintf(p->err, p->err_len, "%s: %s: %s", p->name, path, what);
    return -EINVAL;
}

/* A leading unsigned decimal number; *rest points at what follows it. */
static int parse_digits(const char *s, uint64_t *v, const char **rest)
{
    char *end;
    if (!*s || *s == '-' || *s == ' ')
        return -EINVAL;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    *v = n;
    *rest = end;
    return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *end;
    if (parse_digits(s, &v, &end) < 0)
        return -EINVAL;
    static const struct { const char *suffix; uint64_t mul; } units[] = {
        { "", 1 }, { "b", 1 }, { "k", 1ull << 10 }, { "kib", 1ull << 10 }, { "kb", 1ull << 10 },
        { "m", 1ull << 20 }, { "mib", 1ull << 20 }, { "mb", 1ull << 20 },
        { "g", 1ull << 30 }, { "gib", 1ull << 30 }, { "gb", 1ull << 30 },
    };
    for (size_t i = 0; i < CFN_ARRAY_SIZE(units); i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            if (__builtin_mul_overflow(v, units[i].mul, out))
                return -ERANGE;
            return 0;
        }
    }
    return -EINVAL;
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *end;
    if (parse_digits(s, &v, &end) < 0)
        return -EINVAL;
    uint64_t mul;
    if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else
        return -EINVAL;
    if (__builtin_mul_overflow(v, mul, out))
        return -ERANGE;
    return 0;
}

bool config_name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

int config_parse_frontend(const char *s, enum frontend_kind *out)
{
    if (strcmp(s, "auto") == 0)
        *out = FRONTEND_AUTO;
    else if (strcmp(s, "fscache") == 0)
        *out = FRONTEND_FSCACHE;
    else if (strcmp(s, "fanotify") == 0)
        *out = FRONTEND_FANOTIFY;
    else
        return -EINVAL;
    return 0;
}

const char *config_frontend_name(enum frontend_kind k)
{
    return k == FRONTEND_FSCACHE ? "fscache" : k == FRONTEND_FANOTIFY ? "fanotify" : "auto";
}

/* ---- typed accessors over the libyaml document ---- */

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_string(Parser *p, const yaml_node_t *n, const char *path, char **out)
{
    const char *s = scalar(n);
    if (!s)
        return fail(p, n, path, "expected a string");
    if (strlen(s) > PATH_MAX)
        return fail(p, n, path, "value is too long");
    free(*out);
    *out = strdup(s);
    return *out ? 0 : -ENOMEM;
}

static int get_path(Parser *p, const yaml_node_t *n, const char *path, char **out)
{
    int r = get_string(p, n, path, out);
    if (r < 0)
        return r;
    if ((*out)[0] == '\0')
        return fail(p, n, path, "empty path");
    if ((*out)[0] != '/') {
        char full[PATH_MAX];
        if (snprintf(full, sizeof(full), "%s/%s", p->base_dir, *out) >= (int)sizeof(full))
            return fail(p, n, path, "path is too long");
        free(*out);
        *out = strdup(full);
        if (!*out)
            return -ENOMEM;
    }
    return 0;
}

static int get_name(Parser *p, const yaml_node_t *n, const char *path, char **out)
{
    int r = get_string(p, n, path, out);
    if (r < 0)
        return r;
    if (!config_name_is_valid(*out))
        return fail(p, n, path, "'%s' must be 1-200 characters of [A-Za-z0-9._-]", *out);
    return 0;
}

static int get_bool(Parser *p, const yaml_node_t *n, const char *path, bool *out)
{
    const char *s = scalar(n);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0))
        *out = true;
    else if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0))
        *out = false;
    else
        return fail(p, n, path, "expected true or false");
    return 0;
}

static int get_u64(Parser *p, const yaml_node_t *n, const char *path, int (*parse)(const char *, uint64_t *),
                   uint64_t min, uint64_t max, uint64_t *out)
{
    const char *s = scalar(n);
    uint64_t v;
    if (!s || parse(s, &v) < 0)
        return fail(p, n, path, "expected a %s", parse == config_parse_size ? "size (e.g. 1MiB)" :
                    parse == config_parse_duration_ms ? "duration (e.g. 30s, 500ms)" : "number");
    if (v < min || v > max)
        return fail(p, n, path, "%s is out of range [%" PRIu64 ", %" PRIu64 "]", s, min, max);
    *out = v;
    return 0;
}

int config_parse_number(const char *s, uint64_t *out)
{
    const char *end;
    return parse_digits(s, out, &end) < 0 || *end ? -EINVAL : 0;
}

/* Iterate a mapping: for each pair, key string and value node. */
#define FOR_EACH_PAIR(p, map, key, val)                                                   \
    for (yaml_node_pair_t *_pair = (map)->data.mapping.pairs.start;                       \
         _pair < (map)->data.mapping.pairs.top; _pair++)                                   \
        for (const char *key = scalar(yaml_document_get_node(&(p)->doc, _pair->key)); key; key = NULL) \
            for (yaml_node_t *val = yaml_document_get_node(&(p)->doc, _pair->value); val; val = NULL)

/*
 * YAML requires the keys of a mapping to be unique; libyaml does not check.
 * A repeated key would silently override (or leak) what the first one set.
 * Only the pairs before `pair` are compared. The typed loops (top level,
 * images[]) stop at the first unknown key and captured mappings hold at
 * most 256 entries, so this stays cheap on hostile files.
 */
static bool key_repeated(Parser *p, const yaml_node_t *map, const yaml_node_pair_t *pair)
{
    const char *key = scalar(yaml_document_get_node(&p->doc, pair->key));
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; key && q < pair; q++) {
        const char *k = scalar(yaml_document_get_node(&p->doc, q->key));
        if (k && strcmp(k, key) == 0)
            return true;
    }
    return false;
}

void config_node_clear(ConfigNode *n)
{
    for (size_t i = 0; i < n->n_items; i++)
        config_node_clear(&n->items[i]);
    free(n->items);
    free(n->key);
    free(n->value);
    memset(n, 0, sizeof(*n));
}

const ConfigNode *config_node_get(const ConfigNode *map, const char *key)
{
    if (map->kind != CONFIG_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n_items; i++)
        if (strcmp(map->items[i].key, key) == 0)
            return &map->items[i];
    return NULL;
}

/* Copy a YAML subtree; bounded in depth and size since the file is untrusted. */
static int capture_node(Parser *p, yaml_node_t *n, const char *path, unsigned depth, ConfigNode *out)
{
    out->line = n->start_mark.line + 1;
    out->column = n->start_mark.column + 1;
    if (depth > 8)
        return fail(p, n, path, "nested too deeply");
    switch (n->type) {
    case YAML_SCALAR_NODE:
        out->kind = CONFIG_NODE_SCALAR;
        out->value = strdup((const char *)n->data.scalar.value);
        return out->value ? 0 : -ENOMEM;
    case YAML_MAPPING_NODE: {
        out->kind = CONFIG_NODE_MAP;
        size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (count > 256)
            return fail(p, n, path, "more than 256 entries");
        out->items = calloc(count ? count : 1, sizeof(*out->items));
        if (!out->items)
            return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
            yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
            const char *key = scalar(yaml_document_get_node(&p->doc, pair->key));
            if (!key)
                return fail(p, n, path, "keys must be strings");
            char sub[256];
            snprintf(sub, sizeof(sub), "%.120s.%.120s", path, key);
            if (key_repeated(p, n, pair))
                return fail(p, yaml_document_get_node(&p->doc, pair->key), sub, "duplicate key");
            out->n_items = i + 1;
            out->items[i].key = strdup(key);
            if (!out->items[i].key)
                return -ENOMEM;
            int r = capture_node(p, yaml_document_get_node(&p->doc, pair->value), sub, depth + 1, &out->items[i]);
            if (r < 0)
                return r;
        }
        return 0;
    }
    case YAML_SEQUENCE_NODE: {
        out->kind = CONFIG_NODE_SEQ;
        size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (count > 256)
            return fail(p, n, path, "more than 256 items");
        out->items = calloc(count ? count : 1, sizeof(*out->items));
        if (!out->items)
            return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%.200s[%zu]", path, i);
            out->n_items = i + 1;
            int r = capture_node(p, yaml_document_get_node(&p->doc, n->data.sequence.items.start[i]), sub,
                                 depth + 1, &out->items[i]);
            if (r < 0)
                return r;
        }
        return 0;
    }
    default:
        return fail(p, n, path, "unsupported YAML node");
    }
}

static int parse_backend(Parser *p, yaml_node_t *map, const char *path, BackendConfig *out)
{
    static const struct { const char *name; enum backend_type type; } types[] = {
        { "localfs", BACKEND_TYPE_LOCALFS }, { "registry", BACKEND_TYPE_REGISTRY },
        { "s3", BACKEND_TYPE_S3 }, { "oss", BACKEND_TYPE_OSS }, { "http-proxy", BACKEND_TYPE_HTTP_PROXY },
    };
    if (map->type != YAML_MAPPING_NODE)
        return fail(p, map, path, "expected a mapping");
    int r = capture_node(p, map, path, 0, &out->fields);
    if (r < 0)
        return r;
    if (asprintf(&out->where, "%s: %s", p->name, path) < 0) {
        out->where = NULL;
        return -ENOMEM;
    }
    const ConfigNode *type = config_node_get(&out->fields, "type");
    if (!type || type->kind != CONFIG_NODE_SCALAR)
        return fail(p, map, path, "missing 'type' (localfs, registry, s3, oss or http-proxy)");
    size_t i;
    for (i = 0; i < CFN_ARRAY_SIZE(types) && strcmp(types[i].name, type->value) != 0; i++)
        ;
    if (i == CFN_ARRAY_SIZE(types))
        return fail(p, map, path, "unsupported backend type '%s'", type->value);
    out->type = types[i].type;
    if (out->type != BACKEND_TYPE_LOCALFS)
        return 0;   /* backend_factory checks the remote fields */

    char sub[256];
    FOR_EACH_PAIR(p, map, key, val) {
        snprintf(sub, sizeof(sub), "%.100s.%.100s", path, key);
        if (strcmp(key, "dir") == 0)
            r = get_path(p, val, sub, &out->dir);
        else if (strcmp(key, "type") != 0)
            r = fail(p, val, sub, "unknown key for a localfs backend");
        if (r < 0)
            return r;
    }
    if (!out->dir)
        return fail(p, map, path, "localfs backend needs 'dir'");
    return 0;
}

static int parse_image(Parser *p, yaml_node_t *map, const char *path, ImageConfig *img)
{
    char sub[256];
    img->prefill_bootstrap = -1;
    if (map->type != YAML_MAPPING_NODE)
        return fail(p, map, path, "expected a mapping");
    bool have_backend = false;
    FOR_EACH_PAIR(p, map, key, val) {
        int r;
        snprintf(sub, sizeof(sub), "%.100s.%.100s", path, key);
        if (key_repeated(p, map, _pair))
            return fail(p, val, sub, "duplicate key");
        if (strcmp(key, "fsid") == 0) {
            r = get_name(p, val, sub, &img->fsid);
        } else if (strcmp(key, "domain_id") == 0) {
            r = get_name(p, val, sub, &img->domain_id);
        } else if (strcmp(key, "bootstrap") == 0) {
            r = get_path(p, val, sub, &img->bootstrap);
        } else if (strcmp(key, "bootstrap_blob") == 0) {
            r = get_name(p, val, sub, &img->bootstrap_blob);
            if (r == 0 && !rafs_bootstrap_id_valid(img->bootstrap_blob))
                r = fail(p, val, sub, "not a blob id (at most 64 of [A-Za-z0-9._-])");
        } else if (strcmp(key, "prefill_bootstrap") == 0) {
            bool b;
            r = get_bool(p, val, sub, &b);
            img->prefill_bootstrap = b;
        } else if (strcmp(key, "prefetch") == 0) {
            r = get_bool(p, val, sub, &img->prefetch);
        } else if (strcmp(key, "backend") == 0) {
            r = parse_backend(p, val, sub, &img->backend);
            have_backend = true;
        } else if (strcmp(key, "blobs") == 0) {
            if (val->type != YAML_SEQUENCE_NODE)
                return fail(p, val, sub, "expected a list of blob names");
            size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
            if (n > 256)
                return fail(p, val, sub, "more than 256 blobs");
            img->blobs = calloc(n ? n : 1, sizeof(*img->blobs));
            if (!img->blobs)
                return -ENOMEM;
            r = 0;
            for (size_t i = 0; i < n && r == 0; i++) {
                char item[300];
                snprintf(item, sizeof(item), "%.200s[%zu]", sub, i);
                img->n_blobs = i + 1;
                r = get_name(p, yaml_document_get_node(&p->doc, val->data.sequence.items.start[i]), item,
                             &img->blobs[i]);
            }
        } else {
            r = fail(p, val, sub, "unknown key");
        }
        if (r < 0)
            return r;
    }
    if (!img->fsid)
        return fail(p, map, path, "missing 'fsid'");
    if (!img->bootstrap && !img->bootstrap_blob)
        return fail(p, map, path, "missing 'bootstrap' (or 'bootstrap_blob')");
    if (img->bootstrap && img->bootstrap_blob)
        return fail(p, map, path, "give 'bootstrap' or 'bootstrap_blob', not both");
    if (img->bootstrap_blob && !have_backend)
        return fail(p, map, path, "'bootstrap_blob' needs a 'backend' to fetch the blob from");
    if (!have_backend) {
        /* Data blobs default to the bootstrap's own directory. */
        img->backend.type = BACKEND_TYPE_LOCALFS;
        char *slash = strrchr(img->bootstrap, '/');
        img->backend.dir = strndup(img->bootstrap, slash && slash != img->bootstrap ? (size_t)(slash - img->bootstrap) : 1);
        if (!img->backend.dir)
            return -ENOMEM;
    }
    return 0;
}

static int parse_root(Parser *p, Config *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node(&p->doc);
    if (!root)
        return fail(p, NULL, "(document)", "the file is empty");
    if (root->type != YAML_MAPPING_NODE)
        return fail(p, root, "(document)", "expected a mapping at the top level");

    FOR_EACH_PAIR(p, root, key, val) {
        int r;
        uint64_t v = 0;
        if (key_repeated(p, root, _pair))
            return fail(p, val, key, "duplicate key");
        if (strcmp(key, "cache_dir") == 0) {
            r = get_path(p, val, key, &cfg->cache_dir);
        } else if (strcmp(key, "work_dir") == 0) {
            r = get_path(p, val, key, &cfg->work_dir);
        } else if (strcmp(key, "tag") == 0) {
            r = get_name(p, val, key, &cfg->tag);
        } else if (strcmp(key, "threads") == 0) {
            r = get_u64(p, val, key, config_parse_number, 1, 256, &v);
            cfg->threads = (unsigned)v;
        } else if (strcmp(key, "read_window") == 0) {
            r = get_u64(p, val, key, config_parse_size, 0, 64u << 20, &v);
            if (r == 0 && v % CFN_PAGE_SIZE)
                r = fail(p, val, key, "must be a multiple of 4KiB");
            cfg->read_window = (uint32_t)v;
        } else if (strcmp(key, "merge_limit") == 0) {
            r = get_u64(p, val, key, config_parse_size, 4096, 64u << 20, &v);
            cfg->merge_limit = (uint32_t)v;
        } else if (strcmp(key, "max_inflight") == 0) {
            r = get_u64(p, val, key, config_parse_size, 1u << 20, 1ull << 40, &v);
            cfg->max_inflight_bytes = v;
        } else if (strcmp(key, "request_timeout") == 0) {
            r = get_u64(p, val, key, config_parse_duration_ms, 100, 3600000, &v);
            cfg->request_timeout_ms = (uint32_t)v;
        } else if (strcmp(key, "raw_chunk_size") == 0) {
            r = get_u64(p, val, key, config_parse_size, 4096, 16u << 20, &v);
            if (r == 0 && v % CFN_PAGE_SIZE)
                r = fail(p, val, key, "must be a multiple of 4KiB");
            cfg->raw_chunk_size = (uint32_t)v;
        } else if (strcmp(key, "max_blob_size") == 0) {
            r = get_u64(p, val, key, config_parse_size, 1u << 20, CONFIG_BLOB_SIZE_LIMIT, &v);
            cfg->max_blob_size = v;
        } else if (strcmp(key, "verify") == 0) {
            r = get_bool(p, val, key, &cfg->verify);
        } else if (strcmp(key, "readahead") == 0) {
            r = get_u64(p, val, key, config_parse_size, 0, 256u << 20, &v);
            if (r == 0 && v % CFN_PAGE_SIZE)
                r = fail(p, val, key, "must be a multiple of 4KiB");
            cfg->readahead = (uint32_t)v;
        } else if (strcmp(key, "fanotify_readahead") == 0) {
            r = get_u64(p, val, key, config_parse_size, 0, 256u << 20, &v);
            cfg->fanotify_readahead = (uint32_t)v;
        } else if (strcmp(key, "frontend") == 0) {
            const char *s = scalar(val);
            r = s ? config_parse_frontend(s, &cfg->frontend) : -EINVAL;
            if (r < 0)
                r = fail(p, val, key, "expected fscache, fanotify or auto");
        } else if (strcmp(key, "images") == 0) {
            if (val->type != YAML_SEQUENCE_NODE)
                return fail(p, val, key, "expected a list of images");
            size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
            if (n > CONFIG_MAX_IMAGES)
                return fail(p, val, key, "more than %d images", CONFIG_MAX_IMAGES);
            cfg->images = calloc(n ? n : 1, sizeof(*cfg->images));
            if (!cfg->images)
                return -ENOMEM;
            for (size_t i = 0; i < n; i++) {
                char sub[64];
                snprintf(sub, sizeof(sub), "images[%zu]", i);
                yaml_node_t *item = yaml_document_get_node(&p->doc, val->data.sequence.items.start[i]);
                cfg->n_images = i + 1;
                r = parse_image(p, item, sub, &cfg->images[i]);
                if (r < 0)
                    return r;
            }
            r = 0;
        } else {
            r = fail(p, val, key, "unknown key");
        }
        if (r < 0)
            return r;
    }
    if (!cfg->cache_dir)
        return fail(p, root, "cache_dir", "missing (the cachefiles cache directory, on ext4 or xfs)");
    if (!cfg->work_dir && !(cfg->work_dir = strdup("/var/lib/cachefilesd-nydus")))
        return -ENOMEM;

    /* An fsid must be unique within its volume: the kernel keys cookies that way. */
    for (size_t i = 0; i < cfg->n_images; i++)
        for (size_t j = 0; j < i; j++) {
            const ImageConfig *a = &cfg->images[i], *b = &cfg->images[j];
            const char *va = a->domain_id ? a->domain_id : a->fsid;
            const char *vb = b->domain_id ? b->domain_id : b->fsid;
            if (strcmp(va, vb) == 0 && strcmp(a->fsid, b->fsid) == 0) {
                char sub[64];
                snprintf(sub, sizeof(sub), "images[%zu].fsid", i);
                return fail(p, NULL, sub, "'%s' is declared twice in the same volume", a->fsid);
            }
        }
    return 0;
}

static void config_defaults(Config *cfg)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cores > 0 ? (unsigned)CFN_MIN(cores, 64) : 1;
    cfg->read_window = 1u << 20;
    cfg->merge_limit = 4u << 20;
    cfg->max_inflight_bytes = 64ull << 20;
    cfg->request_timeout_ms = 60000;
    cfg->raw_chunk_size = 1u << 20;
    cfg->max_blob_size = CONFIG_DEFAULT_MAX_BLOB_SIZE;
    cfg->verify = true;
    cfg->readahead = 8u << 20;
    cfg->fanotify_readahead = 16u << 20;
}

/* The anchor an event defines, or for an alias the anchor it refers to; NULL when none. */
static const yaml_char_t *event_anchor(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_ALIAS_EVENT: return ev->data.alias.anchor;
    case YAML_SCALAR_EVENT: return ev->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT: return ev->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT: return ev->data.mapping_start.anchor;
    default: return NULL;
    }
}

/*
 * Anchors and aliases are refused before the document is built: every alias
 * is copied again where it is used, so a few hundred bytes of nested aliases
 * ("billion laughs") would expand into gigabytes. Nothing here needs them.
 * Syntax errors are left to yaml_parser_load(), which reports them.
 */
static int refuse_aliases(const char *name, const char *text, size_t len, char *err, size_t err_len)
{
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp))
        return -ENOMEM;
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
    int r = 0;
    for (bool end = false; !end && r == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&yp, &ev))
            break;
        const yaml_char_t *anchor = event_anchor(&ev);
        if (anchor) {
            snprintf(err, err_len, "%s:%zu:%zu: YAML %s '%.64s': anchors and aliases are not supported",
                     name, ev.start_mark.line + 1, ev.start_mark.column + 1,
                     ev.type == YAML_ALIAS_EVENT ? "alias" : "anchor", (const char *)anchor);
            r = -EINVAL;
        }
        end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&yp);
    return r;
}

int config_parse(Config **ret, const char *name, const char *text, size_t len, char *err, size_t err_len)
{
    Parser p = { .name = name, .err = err, .err_len = err_len };
    yaml_parser_t yp;
    int r;

    err[0] = '\0';
    const char *slash = strrchr(name, '/');
    if (slash)
        snprintf(p.base_dir, sizeof(p.base_dir), "%.*s", (int)(slash - name), name);
    else if (!getcwd(p.base_dir, sizeof(p.base_dir)))
        snprintf(p.base_dir, sizeof(p.base_dir), ".");
    if (p.base_dir[0] == '\0')
        snprintf(p.base_dir, sizeof(p.base_dir), "/");

    Config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return -ENOMEM;
    config_defaults(cfg);

    r = refuse_aliases(name, text, len, err, err_len);
    if (r < 0) {
        free(cfg);
        return r;
    }
    if (!yaml_parser_initialize(&yp)) {
        free(cfg);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
    if (!yaml_parser_load(&yp, &p.doc)) {
        snprintf(err, err_len, "%s:%zu:%zu: YAML error: %s", name, yp.problem_mark.line + 1,
                 yp.problem_mark.column + 1, yp.problem ? yp.problem : "parse failed");
        yaml_parser_delete(&yp);
        free(cfg);
        return -EINVAL;
    }
    r = parse_root(&p, cfg);
    yaml_document_delete(&p.doc);
    yaml_parser_delete(&yp);
    if (r < 0) {
        if (!err[0])
            snprintf(err, err_len, "%s: %s", name, strerror(-r));
        config_free(cfg);
        return r;
    }
    *ret = cfg;
    return 0;
}

/* As ssh does for private keys: a file holding a secret should be its owner's alone. */
static void warn_exposed_secrets(const char *path, mode_t mode, const Config *cfg)
{
    if (!(mode & 077))
        return;
    for (size_t i = 0; i < cfg->n_images; i++) {
        char key[128];
        if (backend_config_secret_key(&cfg->images[i].backend, key, sizeof(key))) {
            log_warn("%s: mode %04o lets other users read it, and it holds a secret "
                     "(images[%zu].backend.%s): chmod 600 it", path, (unsigned)(mode & 07777), i, key);
            return;
        }
    }
}

int config_load(Config **ret, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int r = -errno;
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(-r));
        return r;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0)
        st.st_mode = 0;
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    int read_err = ferror(f);
    fclose(f);
    int r;
    if (read_err) {
        snprintf(err, err_len, "%s: read error", path);
        r = -EIO;
    } else if (n > CONFIG_MAX_BYTES) {
        snprintf(err, err_len, "%s: larger than %u bytes", path, CONFIG_MAX_BYTES);
        r = -EFBIG;
    } else {
        char abs[PATH_MAX];
        const char *name = path;
        if (path[0] != '/' && realpath(path, abs))
            name = abs;
        r = config_parse(ret, name, buf, n, err, err_len);
        if (r == 0)
            warn_exposed_secrets(name, st.st_mode, *ret);
    }
    free(buf);
    return r;
}

Config *config_free(Config *cfg)
{
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < cfg->n_images; i++) {
        ImageConfig *img = &cfg->images[i];
        free(img->fsid);
        free(img->domain_id);
        free(img->bootstrap);
        free(img->bootstrap_blob);
        free(img->backend.dir);
        free(img->backend.where);
        config_node_clear(&img->backend.fields);
        for (size_t b = 0; b < img->n_blobs; b++)
            free(img->blobs[b]);
        free(img->blobs);
    }
    free(cfg->images);
    free(cfg->cache_dir);
    free(cfg->tag);
    free(cfg->work_dir);
    free(cfg);
    return NULL;
}
