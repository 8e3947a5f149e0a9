/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's configuration: one YAML file, parsed with libyaml into one
 * typed, validated, immutable struct. Every error names file:line:column and
 * the key path.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum backend_type {
    BACKEND_TYPE_LOCALFS,
    BACKEND_TYPE_REGISTRY,
    BACKEND_TYPE_S3,
    BACKEND_TYPE_OSS,
    BACKEND_TYPE_HTTP_PROXY,
};

/*
 * A YAML subtree kept as parsed, with its position, for sections whose
 * fields belong to another module (the remote backends: backend_factory.c).
 */
typedef struct ConfigNode ConfigNode;
enum config_node_kind { CONFIG_NODE_SCALAR, CONFIG_NODE_MAP, CONFIG_NODE_SEQ };
struct ConfigNode {
    enum config_node_kind kind;
    char *key;                      /* in a mapping: this entry's key */
    char *value;                    /* scalars */
    ConfigNode *items;              /* mapping entries or sequence items */
    size_t n_items;
    size_t line, column;            /* 1-based */
};

typedef struct BackendConfig {
    enum backend_type type;
    char *dir;                      /* localfs: directory of blobs named by id */
    ConfigNode fields;              /* the whole backend mapping (remote types) */
    char *where;                    /* "file" and key path, for messages: "f.yaml: images[0].backend" */
} BackendConfig;

typedef struct ImageConfig {
    char *fsid;                     /* mount -o fsid= */
    char *domain_id;                /* mount -o domain_id=, or NULL */
    char *bootstrap;                /* local file served for the fsid cookie */
    char *bootstrap_blob;           /* or: the data blob that carries it (inline_bootstrap.h) */
    int prefill_bootstrap;          /* -1 auto (when the image has data blobs), 0 no, 1 yes */
    bool prefetch;                  /* fill every blob in the background after OPEN */
    BackendConfig backend;
    /* fanotify: blob names of the device-table slots, in order, for images whose
     * tags are empty (mkfs.erofs 1.5 --blobdev); a non-empty tag wins. */
    char **blobs;
    size_t n_blobs;
} ImageConfig;

/* Which kernel interface serves the images. */
enum frontend_kind {
    FRONTEND_AUTO = 0,              /* fscache when on-demand cachefiles exists, else fanotify */
    FRONTEND_FSCACHE,
    FRONTEND_FANOTIFY,
};

/* max_blob_size: default, and the most it may be set to (nydus's own 2^44 limit). */
#define CONFIG_DEFAULT_MAX_BLOB_SIZE (UINT64_C(1) << 40)
#define CONFIG_BLOB_SIZE_LIMIT (UINT64_C(1) << 44)

typedef struct Config {
    char *cache_dir;                /* cachefiles "dir" */
    char *tag;                      /* cachefiles "tag", or NULL */
    char *work_dir;                 /* daemon state (blob meta cache); created on demand */
    unsigned threads;               /* worker threads */
    uint32_t read_window;           /* READs widened to aligned windows of this size */
    uint32_t merge_limit;           /* largest single backend read */
    uint64_t max_inflight_bytes;    /* fetch buffer budget */
    uint32_t request_timeout_ms;    /* deadline for each kernel request */
    uint32_t raw_chunk_size;        /* granule of raw (uncompressed, tableless) blobs */
    uint64_t max_blob_size;         /* largest blob (cache file) an image may declare */
    bool verify;                    /* check chunk digests where the image has them */
    enum frontend_kind frontend;    /* `frontend:` fscache | fanotify | auto */
    uint32_t readahead;             /* fscache: largest read-ahead after sequential READ misses, 0 = off */
    uint32_t fanotify_readahead;    /* fanotify: bytes filled ahead of a reader in blob order, 0 = off */
    ImageConfig *images;
    size_t n_images;
} Config;

/* Parse and validate. On failure returns -errno and writes "file:line:col: what" into err. */
int config_load(Config **ret, const char *path, char *err, size_t err_len);
/* Same, from memory; `name` is used in messages. */
int config_parse(Config **ret, const char *name, const char *text, size_t len, char *err, size_t err_len);
Config *config_free(Config *cfg);

void config_node_clear(ConfigNode *n);
const ConfigNode *config_node_get(const ConfigNode *map, const char *key);

/* "4096" -> 4096: digits only, no sign, no suffix. */
int config_parse_number(const char *s, uint64_t *out);
/* "1MiB", "512k", "4096" -> bytes; "30s", "250ms", "2m", "10" (seconds) -> ms. */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration_ms(const char *s, uint64_t *out);
/* fsid, domain_id and blob names: [A-Za-z0-9._-], 1..200 bytes (they become cache paths). */
bool config_name_is_valid(const char *s);
/* "fscache", "fanotify", "auto" -> kind; -EINVAL otherwise. */
int config_parse_frontend(const char *s, enum frontend_kind *out);
const char *config_frontend_name(enum frontend_kind k);
