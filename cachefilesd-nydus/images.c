/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "images.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_factory.h"
#include "storage/cache/cache_file.h"
#include "storage/codec/codec.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/util/fsutil.h"
#include "storage/util/log.h"
#include "storage/util/macros.h"

/* Bootstraps are metadata only; anything larger is not one. */
#define BOOTSTRAP_MAX_BYTES (1ull << 30)

typedef struct Image {
    const ImageConfig *cfg;
    const char *volume;             /* domain_id or fsid */
    ErofsImageInfo info;
    bool is_rafs;                   /* a nydus RAFS v6 bootstrap */
    RafsBootstrap rafs;
    uint8_t *chunk_table;           /* RafsV5ChunkInfo[]: digests for blobs without blob.digest */
    size_t chunk_table_len;
    Backend *boot_backend;          /* localfs over the bootstrap's directory */
    const char *boot_name;
    Backend *blob_backend;
    char source_tag[IMAGE_SOURCE_TAG_SIZE];     /* the blob backend, for the chunk-table cache */
    char *error;                    /* why the image is not served (set up failed), or NULL */
} Image;

struct ImageRegistry {
    const Config *cfg;
    Loop *loop;
    WorkPool *pool;
    Image *images;
    size_t n_images;
};

void image_source_tag(const ImageConfig *ic, const char *boot_dir, char out[IMAGE_SOURCE_TAG_SIZE])
{
    static const char *const keys[] = { "scheme", "host", "repo", "endpoint", "region", "bucket_name",
                                        "object_prefix", "addr", "path" };
    char desc[8192];
    size_t n = (size_t)snprintf(desc, sizeof(desc), "type %d", (int)ic->backend.type);
    if (ic->backend.type == BACKEND_TYPE_LOCALFS) {
        n += (size_t)snprintf(desc + n, sizeof(desc) - n, "\ndir %s", ic->backend.dir ? ic->backend.dir : boot_dir);
    } else {
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]) && n < sizeof(desc); k++) {
            const ConfigNode *v = config_node_get(&ic->backend.fields, keys[k]);
            if (v && v->kind == CONFIG_NODE_SCALAR && v->value)
                n += (size_t)snprintf(desc + n, sizeof(desc) - n, "\n%s %s", keys[k], v->value);
        }
    }
    uint8_t d[BLOB_DIGEST_SIZE];
    codec_digest(NULL, BLOB_DIGEST_BLAKE3, desc, n < sizeof(desc) ? n : sizeof(desc) - 1, d);
    snprintf(out, IMAGE_SOURCE_TAG_SIZE, "src-%02x%02x%02x%02x%02x%02x%02x%02x", d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}

/* The head of an image up to the end of its device table. */
static int read_image_head(const char *path, ErofsImageInfo *info, char *err, size_t err_len)
{
    _cleanup_close_ int fd = fs_open_regular(path, 0);
    if (fd < 0) {
        int r = fd;
        snprintf(err, err_len, "bootstrap %s: %s", path, r == -EINVAL ? "not a regular file" : strerror(-r));
        return r;
    }
    size_t want = 4096;
    for (int attempt = 0; attempt < 2; attempt++) {
        _cleanup_free_ uint8_t *buf = calloc(1, want);
        if (!buf)
            return -ENOMEM;
        ssize_t n = pread(fd, buf, want, 0);
        if (n < 0) {
            int r = -errno;
            snprintf(err, err_len, "bootstrap %s: %s", path, strerror(-r));
            return r;
        }
        char why[160];
        size_t need = 0;
        int r = erofs_image_parse(buf, (size_t)n, info, &need, why, sizeof(why));
        if (r == -EAGAIN && attempt == 0 && need <= (1u << 20) && (size_t)n == want) {
            want = need;
            continue;
        }
        if (r == -EAGAIN)
            snprintf(why, sizeof(why), "device table ends past the end of the file");
        if (r < 0) {
            snprintf(err, err_len, "bootstrap %s is not a usable erofs image: %s", path, why);
            return -EINVAL;
        }
        if (info->block_size != CFN_PAGE_SIZE) {
            snprintf(err, err_len, "bootstrap %s: block size %u; fscache mode needs 4096", path,
                     info->block_size);
            erofs_image_info_clear(info);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

/* A nydus bootstrap is read whole and checked the way nydusd checks it; its chunk table is kept. */
static int read_rafs_bootstrap(const char *path, Image *img, char *err, size_t err_len)
{
    RafsBootstrap *rafs = &img->rafs;
    _cleanup_close_ int fd = fs_open_regular(path, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int r = fd < 0 ? fd : -errno;
        snprintf(err, err_len, "bootstrap %s: %s", path, r == -EINVAL ? "not a regular file" : strerror(-r));
        return r;
    }
    if ((uint64_t)st.st_size > BOOTSTRAP_MAX_BYTES) {
        snprintf(err, err_len, "bootstrap %s: %lld bytes is too large for a bootstrap", path, (long long)st.st_size);
        return -EFBIG;
    }
    _cleanup_free_ uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return -ENOMEM;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (n <= 0) {
            snprintf(err, err_len, "bootstrap %s: short read", path);
            return -EIO;
        }
        got += (size_t)n;
    }
    char why[256];
    int r = rafs_bootstrap_parse(buf, got, rafs, why, sizeof(why));
    if (r < 0) {
        snprintf(err, err_len, "bootstrap %s is not a valid RAFS v6 image: %s", path, why);
        return r;
    }
    if (rafs->chunk_table_size) {
        /* The parser checked that the table lies inside the file. */
        img->chunk_table = malloc(rafs->chunk_table_size);
        if (!img->chunk_table)
            return -ENOMEM;
        memcpy(img->chunk_table, buf + rafs->chunk_table_offset, rafs->chunk_table_size);
        img->chunk_table_len = rafs->chunk_table_size;
    }
    return 0;
}

/* Drop what a failed set-up left, so that nothing looks the image up half-made. */
static void image_clear(Image *img)
{
    erofs_image_info_clear(&img->info);
    rafs_bootstrap_clear(&img->rafs);
    img->is_rafs = false;
    free(img->chunk_table);
    img->chunk_table = NULL;
    img->chunk_table_len = 0;
    img->boot_backend = backend_free(img->boot_backend);
    img->blob_backend = backend_free(img->blob_backend);
}

/* Read the image's bootstrap and make its backends. */
static int image_setup(Image *img, Loop *loop, char *err, size_t err_len)
{
    const ImageConfig *ic = img->cfg;
    int r = read_image_head(ic->bootstrap, &img->info, err, err_len);
    if (r < 0)
        return r;
    if (img->info.feature_compat & EROFS_FEATURE_COMPAT_RAFS_V6) {
        img->is_rafs = true;
        r = read_rafs_bootstrap(ic->bootstrap, img, err, err_len);
        if (r < 0)
            return r;
    }
    char dir[4096];
    const char *slash = strrchr(ic->bootstrap, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash == ic->bootstrap ? 1 : (int)(slash - ic->bootstrap), ic->bootstrap);
    img->boot_name = slash + 1;
    r = backend_localfs_new(&img->boot_backend, loop, dir);
    if (r < 0) {
        snprintf(err, err_len, "cannot open %.300s: %s", dir, strerror(-r));
        return r;
    }
    r = backend_factory_new(&img->blob_backend, loop, &ic->backend, err, err_len);
    if (r < 0)
        return r;
    image_source_tag(ic, dir, img->source_tag);
    return 0;
}

static int image_mark_unserved(Image *img, const char *why)
{
    image_clear(img);
    img->error = strdup(why);
    if (!img->error)
        return -ENOMEM;
    log_error("image %s is not served: %s", img->cfg->fsid, why);
    return 0;
}

int image_registry_new(ImageRegistry **ret, const Config *cfg, Loop *loop, WorkPool *pool, char **setup_errors,
                       char *err, size_t err_len)
{
    ImageRegistry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return -ENOMEM;
    reg->cfg = cfg;
    reg->loop = loop;
    reg->pool = pool;
    reg->images = calloc(cfg->n_images ? cfg->n_images : 1, sizeof(*reg->images));
    if (!reg->images) {
        free(reg);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_images; i++) {
        const ImageConfig *ic = &cfg->images[i];
        Image *img = &reg->images[i];
        reg->n_images = i + 1;
        img->cfg = ic;
        img->volume = ic->domain_id ? ic->domain_id : ic->fsid;
        char why[512];
        int r = 0;
        /* One bad image must not cost the others: it is logged, reported by `status` and refused. */
        if (setup_errors && setup_errors[i])
            r = image_mark_unserved(img, setup_errors[i]);
        else if (!ic->bootstrap)
            r = image_mark_unserved(img, "it has no bootstrap");
        else if ((r = image_setup(img, loop, why, sizeof(why))) == -ENOMEM)
            ;
        else if (r < 0)
            r = image_mark_unserved(img, why);
        if (r < 0) {
            snprintf(err, err_len, "image %s: out of memory", ic->fsid);
            image_registry_free(reg);
            return r;
        }
    }
    *ret = reg;
    return 0;
}

const char *image_registry_error(const ImageRegistry *reg, const char *fsid)
{
    for (size_t i = 0; i < reg->n_images; i++)
        if (strcmp(reg->images[i].cfg->fsid, fsid) == 0)
            return reg->images[i].error;
    return NULL;
}

size_t image_registry_render_errors(const ImageRegistry *reg, char *out, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < reg->n_images && n < len; i++)
        if (reg->images[i].error)
            n += (size_t)snprintf(out + n, len - n, "image %s not served: %s\n", reg->images[i].cfg->fsid,
                                  reg->images[i].error);
    return n < len ? n : len ? len - 1 : 0;
}

void image_registry_cancel(ImageRegistry *reg)
{
    for (size_t i = 0; reg && i < reg->n_images; i++) {
        backend_cancel(reg->images[i].boot_backend);
        backend_cancel(reg->images[i].blob_backend);
    }
}

ImageRegistry *image_registry_free(ImageRegistry *reg)
{
    if (!reg)
        return NULL;
    for (size_t i = 0; i < reg->n_images; i++) {
        image_clear(&reg->images[i]);
        free(reg->images[i].error);
    }
    free(reg->images);
    free(reg);
    return NULL;
}

int image_registry_replace_blob_backend(ImageRegistry *reg, const char *fsid, Backend *backend)
{
    for (size_t i = 0; i < reg->n_images; i++) {
        if (strcmp(reg->images[i].cfg->fsid, fsid) == 0) {
            backend_free(reg->images[i].blob_backend);
            reg->images[i].blob_backend = backend;
            return 0;
        }
    }
    backend_free(backend);
    return -ENOENT;
}

int image_registry_lookup(ImageRegistry *reg, const char *volume_key, const char *cookie_key,
                          BlobSource *out, char *why, size_t why_len)
{
    static const char prefix[] = "erofs,";
    if (strncmp(volume_key, prefix, sizeof(prefix) - 1) != 0) {
        snprintf(why, why_len, "volume key '%s' is not an erofs volume", volume_key);
        return -ENOENT;
    }
    const char *volume = volume_key + sizeof(prefix) - 1;
    if (!config_name_is_valid(cookie_key)) {
        snprintf(why, why_len, "cookie key is not a valid blob name");
        return -ENOENT;
    }

    Image *device_name_owner = NULL;
    for (size_t i = 0; i < reg->n_images; i++) {
        Image *img = &reg->images[i];
        if (strcmp(img->volume, volume) != 0)
            continue;
        if (img->error) {
            if (strcmp(img->cfg->fsid, cookie_key) == 0) {
                snprintf(why, why_len, "image %s is not served: %s", img->cfg->fsid, img->error);
                return -EIO;
            }
            continue;
        }
        if (strcmp(img->cfg->fsid, cookie_key) == 0) {
            /* A bootstrap holding only metadata is small and read block by block: prefill it. */
            bool prefill = img->cfg->prefill_bootstrap >= 0 ? img->cfg->prefill_bootstrap
                                                             : img->info.extra_devices > 0;
            *out = (BlobSource){ .role = BLOB_ROLE_BOOTSTRAP, .image = img->cfg,
                                 .backend = img->boot_backend, .backend_id = img->boot_name,
                                 .prefill = prefill, .prefetch = img->cfg->prefetch };
            return 0;
        }
        if (img->is_rafs) {
            const RafsBlob *rb = rafs_bootstrap_find_blob(&img->rafs, cookie_key);
            if (rb) {
                *out = (BlobSource){ .role = BLOB_ROLE_DATA, .image = img->cfg,
                                     .backend = img->blob_backend, .backend_id = rb->id,
                                     .declared_size = rb->uncompressed_size, .rafs_blob = rb,
                                     .prefetch = img->cfg->prefetch };
                return 0;
            }
            continue;   /* nydus blobs are named by id only */
        }
        for (unsigned d = 0; d < img->info.extra_devices; d++) {
            if (strcmp(img->info.devices[d].tag, cookie_key) == 0) {
                *out = (BlobSource){ .role = BLOB_ROLE_DATA, .image = img->cfg,
                                     .backend = img->blob_backend, .backend_id = cookie_key,
                                     .declared_size = img->info.devices[d].size,
                                     .prefetch = img->cfg->prefetch };
                return 0;
            }
        }
        if (img->info.extra_devices && !device_name_owner)
            device_name_owner = img;
    }
    if (device_name_owner) {
        /* A device= mount option replaces the tag: serve the blob of that name. */
        Image *img = device_name_owner;
        *out = (BlobSource){ .role = BLOB_ROLE_DATA, .image = img->cfg, .backend = img->blob_backend,
                             .backend_id = cookie_key,
                             .declared_size = img->info.extra_devices == 1 ? img->info.devices[0].size : 0,
                             .prefetch = img->cfg->prefetch };
        return 0;
    }
    snprintf(why, why_len, "no image declares blob '%s' in volume '%s'", cookie_key, volume);
    return -ENOENT;
}

/* Worker: which chunks the cache file holds already (a restart keeps what was written). */
static void scan_work(WorkItem *item, void *ctx)
{
    BlobOpenRequest *req = cfn_container_of(item, BlobOpenRequest, work);
    if (seg_array_init(&req->ready, req->blob->chunk_count, 1) < 0)
        return;
    req->ready_count = cache_file_scan_ready(req->cache_fd, req->blob, &req->ready);
    if (req->ready_count < 0)
        seg_array_clear(&req->ready);
}

static void scan_done(WorkItem *item)
{
    BlobOpenRequest *req = cfn_container_of(item, BlobOpenRequest, work);
    req->done(req, 0);
}

/* Every open ends here on the loop: a described blob gets its cache file scanned first when asked. */
static void open_finish(BlobOpenRequest *req, int res)
{
    req->ready_count = -1;
    if (res < 0 || !req->scan_cache) {
        req->done(req, res);
        return;
    }
    req->work = (WorkItem){ .work = scan_work, .done = scan_done };
    workpool_submit(req->reg->pool, &req->work);
}

/* Worker: the raw blob's chunk table, one entry per raw_chunk_size of the bytes that exist. */
static void raw_table_work(WorkItem *item, void *ctx)
{
    BlobOpenRequest *req = cfn_container_of(item, BlobOpenRequest, work);
    req->res = blob_info_new_raw_cut(&req->blob, req->src.backend_id, req->size, req->object_size,
                                     req->reg->cfg->raw_chunk_size);
    if (req->res < 0)
        snprintf(req->why, sizeof(req->why), "cannot describe a %" PRIu64 "-byte blob: %s", req->size,
                 strerror(-req->res));
}

static void raw_table_done(WorkItem *item)
{
    BlobOpenRequest *req = cfn_container_of(item, BlobOpenRequest, work);
    open_finish(req, req->res);
}

/* A size the image (or for a plain image, its file) declares must stay within max_blob_size. */
static int check_blob_size(BlobOpenRequest *req, const char *what, uint64_t size)
{
    uint64_t max = req->reg->cfg->max_blob_size;
    if (size <= max)
        return 0;
    snprintf(req->why, sizeof(req->why), "%s %" PRIu64 " bytes, more than max_blob_size (%" PRIu64
             " bytes); raise max_blob_size if the image is right", what, size, max);
    return -EFBIG;
}

static void open_blob_sized(BackendRequest *breq, int res)
{
    BlobOpenRequest *req = cfn_container_of(breq, BlobOpenRequest, breq);
    const BlobSource *src = &req->src;
    if (res < 0) {
        snprintf(req->why, sizeof(req->why), "%s", strerror(-res));
        req->done(req, -ENOENT);
        return;
    }
    /* The size the image declares wins: the cache file size must be deterministic. */
    uint64_t size = src->declared_size ? src->declared_size : breq->size;
    int r = check_blob_size(req, src->declared_size ? "the image declares" : "the object is", size);
    if (r < 0) {
        req->done(req, r);
        return;
    }
    /*
     * erofs images and their raw data blobs are whole 4 KiB blocks. A partial
     * last block means the blob was cut short: serve only the whole blocks so
     * that reads of the cut one fail instead of returning zero padding as data.
     */
    if (!src->declared_size && size % CFN_PAGE_SIZE) {
        snprintf(req->why, sizeof(req->why), "%" PRIu64 " bytes, not a whole number of 4 KiB "
                 "blocks: it looks truncated; reads of its last %" PRIu64 " bytes will fail",
                 size, size % CFN_PAGE_SIZE);
        size = cfn_align_down(size, CFN_PAGE_SIZE);
    }
    /* A cut blob: the cache file keeps the declared size, the chunk table only what exists. */
    if (src->declared_size && breq->size < src->declared_size)
        snprintf(req->why, sizeof(req->why), "%" PRIu64 " bytes but the image declares %" PRIu64
                 "; reads past its end will fail", breq->size, src->declared_size);
    req->size = size;
    req->object_size = src->declared_size ? breq->size : size;
    req->work = (WorkItem){ .work = raw_table_work, .done = raw_table_done };
    workpool_submit(req->reg->pool, &req->work);
}

static const Image *image_of_rafs_blob(const ImageRegistry *reg, const RafsBlob *rb)
{
    for (size_t i = 0; i < reg->n_images; i++) {
        const Image *img = &reg->images[i];
        if (img->is_rafs && img->rafs.blobs && rb >= img->rafs.blobs && rb < img->rafs.blobs + img->rafs.blob_count)
            return img;
    }
    return NULL;
}

/*
 * A blob without a blob.digest array is still verified when the bootstrap's
 * chunk table lists its chunks (nydus writes one unless the digests are
 * inlined in the blob). A table that contradicts the blob meta means the two
 * do not belong together: refuse the blob rather than serve it unchecked.
 */
static int adopt_chunk_table_digests(BlobOpenRequest *req)
{
    const Image *img = image_of_rafs_blob(req->reg, req->src.rafs_blob);
    BlobInfo *blob = req->blob;
    if (!req->reg->cfg->verify || blob->digests || blob->digester == BLOB_DIGEST_NONE || !img || !img->chunk_table)
        return 0;
    char why[200];
    int r = rafs_chunk_table_digests(img->chunk_table, img->chunk_table_len, req->src.rafs_blob->index, blob, why,
                                     sizeof(why));
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        snprintf(req->why, sizeof(req->why), "bootstrap chunk table: %.200s", why);
    return r;
}

static void open_nydus_done(NydusBlobOpen *nreq, int res)
{
    BlobOpenRequest *req = cfn_container_of(nreq, BlobOpenRequest, nydus);
    snprintf(req->why, sizeof(req->why), "%s", nreq->why[0] || res >= 0 ? nreq->why : strerror(-res));
    req->blob = nreq->blob;
    if (res == 0 && req->blob && (res = adopt_chunk_table_digests(req)) < 0)
        req->blob = blob_info_free(req->blob);
    else if (res == 0 && req->reg->cfg->verify && !req->blob->digests && (req->src.rafs_blob->features & RAFS_BLOB_ZRAN))
        /* Raw deflate has no check value: a flipped bit can inflate into wrong bytes unnoticed. */
        snprintf(req->why, sizeof(req->why), "ZRAN chunks without chunk digests (neither blob.digest "
                 "nor a bootstrap chunk table): corrupt .tar.gz data cannot be detected");
    open_finish(req, res);
}

void image_registry_open_blob(ImageRegistry *reg, BlobOpenRequest *req)
{
    req->reg = reg;
    req->blob = NULL;
    req->why[0] = '\0';
    req->ready = (SegArray){ 0 };
    req->ready_count = -1;
    if (req->src.rafs_blob) {
        int r = check_blob_size(req, "the image declares", req->src.rafs_blob->uncompressed_size);
        if (r < 0) {
            req->done(req, r);
            return;
        }
        const Image *owner = image_of_rafs_blob(reg, req->src.rafs_blob);
        req->nydus = (NydusBlobOpen){
            .loop = reg->loop, .pool = reg->pool, .backend = req->src.backend,
            .backend_id = req->src.backend_id, .rb = req->src.rafs_blob,
            .work_dir = reg->cfg->work_dir, .source_tag = owner ? owner->source_tag : NULL,
            .want_digests = reg->cfg->verify,
            .done = open_nydus_done,
        };
        nydus_blob_open(&req->nydus);
        return;
    }
    /* Asking the source for the size also proves the blob exists and keeps it open. */
    req->breq = (BackendRequest){ .kind = BACKEND_SIZE, .blob_id = req->src.backend_id,
                                  .done = open_blob_sized, .fd = -1 };
    int r = backend_submit(req->src.backend, &req->breq);
    if (r < 0)
        open_blob_sized(&req->breq, r);
}
