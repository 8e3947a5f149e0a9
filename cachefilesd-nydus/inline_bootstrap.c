/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "inline_bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_factory.h"
#include "images.h"
#include "storage/codec/codec.h"
#include "storage/device/rafs_bootstrap.h"
#include "storage/device/toc.h"
#include "storage/util/fsutil.h"
#include "storage/util/log.h"
#include "uapi/erofs.h"
#include "uapi/rafs.h"

/* Bootstraps are metadata only; anything larger is not one. */
#define INLINE_BOOT_MAX (256u << 20)
#define EROFS_FEATURE_COMPAT_SB_CHKSUM 0x00000001u

#define BAD(...) (snprintf(why, why_len, __VA_ARGS__), -EBADMSG)

/*
 * Does blob `b` of a bootstrap taken out of a blob take that blob's id?
 * Upstream's rule (BlobInfo::blob_id in storage/src/device.rs, applied by
 * RafsSuper::set_blob_id_from_meta_path): a blob carrying its own bootstrap
 * (INLINED_FS_META, not EXTERNAL or SEPARATE), and any blob made before
 * nydus 2.2 (no CAP_TAR_TOC), whose converters named it in its own
 * bootstrap by the digest of the blob without that bootstrap.
 */
static bool takes_outer_id(const RafsBlob *b)
{
    bool inlined = (b->features & RAFS_BLOB_INLINED_FS_META) &&
                   !(b->features & (RAFS_BLOB_EXTERNAL | RAFS_BLOB_SEPARATE));
    return inlined || !(b->features & RAFS_BLOB_CAP_TAR_TOC);
}

/* "a, b, c" (the ids a table lists, for error messages). */
static void list_ids(const RafsBootstrap *bs, char *out, size_t out_len)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < bs->blob_count && n < out_len; i++)
        n += (size_t)snprintf(out + n, out_len - n, "%s%s", i ? ", " : "", bs->blobs[i].id);
}

/* Write `blob_id` into blob i's entry of the blob table and its device slot (the kernel's cookie). */
static void write_blob_id(uint8_t *boot, const RafsBootstrap *bs, uint32_t i, const char *blob_id)
{
    size_t idlen = strlen(blob_id);
    uint8_t *entry = boot + bs->blob_table_offset + (uint64_t)i * sizeof(struct rafs_v6_blob_disk);
    uint8_t *tag = boot + RAFS_DEVT_OFFSET + (uint64_t)i * EROFS_DEVSLOT_SIZE;
    memset(entry, 0, RAFS_BLOB_ID_LEN);
    memcpy(entry, blob_id, idlen);
    memset(tag, 0, EROFS_DEVSLOT_TAG_SIZE);
    memcpy(tag, blob_id, idlen);
}

/*
 * The blob of the table that is `blob_id`, to be retagged: the one with
 * INLINED_FS_META, else the only one made before nydus 2.2. *slot = -1 when
 * the table already lists blob_id (nothing to retag).
 */
static int find_carrier(const RafsBootstrap *bs, const char *blob_id, int64_t *slot, char *why, size_t why_len)
{
    int64_t inlined = -1, legacy = -1;
    uint32_t n_inlined = 0, n_legacy = 0;
    char ids[1024];
    for (uint32_t i = 0; i < bs->blob_count; i++) {
        const RafsBlob *b = &bs->blobs[i];
        if (strcmp(b->id, blob_id) == 0 || !takes_outer_id(b))
            continue;
        if (b->features & RAFS_BLOB_INLINED_FS_META)
            inlined = i, n_inlined++;
        else
            legacy = i, n_legacy++;
    }
    *slot = -1;
    if (rafs_bootstrap_find_blob(bs, blob_id)) {
        if (n_inlined)
            return BAD("blob %" PRId64 " (\"%s\") carries the bootstrap, but blob %s is already in the table",
                       inlined, bs->blobs[inlined].id, blob_id);
        return 0;   /* listed under its own id already: blobs made before 2.2 keep theirs */
    }
    if (n_inlined + n_legacy == 0) {
        list_ids(bs, ids, sizeof(ids));
        return BAD("the bootstrap inside blob %s does not list that blob: it lists %s, none of them "
                   "inline-meta (INLINED_FS_META) or made before nydus 2.2 (without CAP_TAR_TOC)", blob_id, ids);
    }
    if (n_inlined > 1 || (!n_inlined && n_legacy > 1)) {
        list_ids(bs, ids, sizeof(ids));
        return BAD("the bootstrap inside blob %s does not list that blob, and more than one of the blobs it lists "
                   "(%s) could be it", blob_id, ids);
    }
    *slot = n_inlined ? inlined : legacy;
    return 0;
}

int inline_bootstrap_retag(uint8_t *boot, size_t len, const char *blob_id, char *why, size_t why_len)
{
    RafsBootstrap bs;
    char inner[256];
    int64_t slot;
    int r = rafs_bootstrap_parse(boot, len, &bs, inner, sizeof(inner));
    if (r < 0)
        return snprintf(why, why_len, "image.boot of blob %s is not a valid RAFS v6 bootstrap: %s", blob_id,
                        inner), r;
    r = find_carrier(&bs, blob_id, &slot, why, why_len);
    if (r == 0 && slot >= 0) {
        if (bs.feature_compat & EROFS_FEATURE_COMPAT_SB_CHKSUM)
            r = BAD("the bootstrap inside blob %s has a checksummed superblock; its device table cannot be "
                    "retagged", blob_id);
        else if (!(bs.blobs[slot].features & RAFS_BLOB_INLINED_FS_META))
            log_info("blob %s: its bootstrap (made before nydus 2.2) lists it as %s; taking the blob's id, as nydus does",
                     blob_id, bs.blobs[slot].id);
        if (r == 0)
            write_blob_id(boot, &bs, (uint32_t)slot, blob_id);
    }
    rafs_bootstrap_clear(&bs);
    if (r < 0)
        return r;
    r = rafs_bootstrap_parse(boot, len, &bs, inner, sizeof(inner));
    if (r < 0)
        return snprintf(why, why_len, "the bootstrap inside blob %s, retagged, is rejected: %s", blob_id, inner), r;
    bool found = rafs_bootstrap_find_blob(&bs, blob_id) != NULL;
    rafs_bootstrap_clear(&bs);
    if (!found)
        return BAD("the retagged bootstrap does not list blob %s", blob_id);
    return 0;
}

/* ---- fetching, step by step on the loop ---- */

typedef struct Fetch {
    Loop *loop;
    Backend *backend;
    BackendRequest breq;
    bool done;
    bool pending;               /* submitted, done() not run yet: it still owns breq.buf */
    int res;
} Fetch;

static void fetch_done(BackendRequest *breq, int res)
{
    Fetch *f = cfn_container_of(breq, Fetch, breq);
    f->res = res;
    f->done = true;
    f->pending = false;
}

/* Run the loop until f's request ends or the clock passes `deadline`. */
static void fetch_wait(Fetch *f, uint64_t deadline)
{
    while (!f->done && loop_now_ns() < deadline)
        loop_run_once(f->loop, 50);
}

/* One backend request, run to completion within timeout_ms. */
static int fetch_run(Fetch *f, uint32_t timeout_ms)
{
    f->done = false;
    f->breq.done = fetch_done;
    f->breq.fd = -1;
    int r = backend_submit(f->backend, &f->breq);
    if (r < 0)
        return r;
    f->pending = true;
    fetch_wait(f, loop_now_ns() + (uint64_t)timeout_ms * 1000000u);
    if (f->done)
        return f->res < 0 ? f->res : 0;
    /* Too slow: cancel, so that the request lets go of its buffer and the backend can be freed. */
    backend_cancel(f->backend);
    fetch_wait(f, loop_now_ns() + 1000000000ull);
    return -ETIMEDOUT;
}

static int fetch_range(Fetch *f, const char *id, uint64_t off, uint64_t len, uint8_t **out, uint32_t timeout_ms)
{
    *out = NULL;
    if (len == 0 || len > INLINE_BOOT_MAX)
        return -EFBIG;
    uint8_t *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    f->breq = (BackendRequest){ .kind = BACKEND_READ, .blob_id = id, .off = off, .len = (uint32_t)len, .buf = buf };
    int r = fetch_run(f, timeout_ms);
    if (f->pending)
        return r;           /* the request still owns buf (see resolve_image) */
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    return 0;
}

/* Blob `id` → its bootstrap bytes, sha256 checked, retagged. */
static int extract_from_blob(Fetch *f, CodecCtx *codec, const char *id, uint32_t timeout_ms,
                             uint8_t **boot, size_t *boot_len, char *why, size_t why_len)
{
    char inner[256];
    f->breq = (BackendRequest){ .kind = BACKEND_SIZE, .blob_id = id };
    int r = fetch_run(f, timeout_ms);
    if (r < 0)
        return snprintf(why, why_len, "blob %s: size: %s", id, strerror(-r)), r;
    uint64_t blob_size = f->breq.size;

    uint64_t off, len;
    if ((r = toc_tail_range(NULL, blob_size, &off, &len, inner, sizeof(inner))) < 0)
        return snprintf(why, why_len, "blob %s: %s", id, inner), r;
    uint8_t *tail;
    if ((r = fetch_range(f, id, off, len, &tail, timeout_ms)) < 0)
        return snprintf(why, why_len, "blob %s: reading its TOC: %s", id, strerror(-r)), r;
    Toc toc;
    r = toc_parse(codec, tail, len, off, NULL, &toc, inner, sizeof(inner));
    free(tail);
    if (r < 0)
        return snprintf(why, why_len, "blob %s: %s", id, inner), r;

    const TocEntry *e = toc_find(&toc, "image.boot");
    uint8_t *raw = NULL;
    if (!e) {
        r = -ENOENT;
        snprintf(why, why_len, "blob %s has no image.boot entry: it does not carry its bootstrap", id);
    } else if ((r = toc_entry_range(&toc, e, &off, &len, inner, sizeof(inner))) < 0) {
        snprintf(why, why_len, "blob %s: %s", id, inner);
    } else if ((r = fetch_range(f, id, off, len, &raw, timeout_ms)) < 0) {
        snprintf(why, why_len, "blob %s: reading image.boot: %s", id, strerror(-r));
    } else if ((r = toc_extract_bootstrap(codec, &toc, raw, len, boot, boot_len, inner, sizeof(inner))) < 0) {
        snprintf(why, why_len, "blob %s: %s", id, inner);
    }
    free(raw);
    toc_clear(&toc);
    if (r < 0)
        return r;
    if ((r = inline_bootstrap_retag(*boot, *boot_len, id, why, why_len)) < 0) {   /* names the blob */
        free(*boot);
        *boot = NULL;
        return r;
    }
    return 0;
}

/* A bootstrap an earlier run stored: usable when it parses and lists the blob. */
static bool stored_bootstrap_ok(const char *path, const char *id)
{
    int fd = fs_open_regular(path, O_NOFOLLOW);
    if (fd < 0)
        return false;
    struct stat st;
    bool ok = false;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size <= INLINE_BOOT_MAX &&
        (buf = malloc((size_t)st.st_size)) && pread(fd, buf, (size_t)st.st_size, 0) == st.st_size) {
        RafsBootstrap bs;
        char why[256];
        if (rafs_bootstrap_parse(buf, (size_t)st.st_size, &bs, why, sizeof(why)) == 0) {
            ok = rafs_bootstrap_find_blob(&bs, id) != NULL;
            rafs_bootstrap_clear(&bs);
        } else {
            log_warn("stored bootstrap %s is not usable (%s); fetching it again", path, why);
        }
    }
    free(buf);
    close(fd);
    return ok;
}

static int resolve_image(const Config *cfg, ImageConfig *ic, Loop *loop, CodecCtx *codec, char *err, size_t err_len)
{
    char path[4096], why[512], tag[IMAGE_SOURCE_TAG_SIZE];
    /* Per backend source: another image's backend may hold other bytes under the same blob id. */
    image_source_tag(ic, cfg->work_dir, tag);
    if (snprintf(path, sizeof(path), "%s/%s.%s.image.boot", cfg->work_dir, ic->bootstrap_blob, tag) >=
        (int)sizeof(path))
        return snprintf(err, err_len, "work_dir path is too long"), -ENAMETOOLONG;

    if (!stored_bootstrap_ok(path, ic->bootstrap_blob)) {
        Fetch *f = calloc(1, sizeof(*f));
        if (!f)
            return -ENOMEM;
        f->loop = loop;
        int r = backend_factory_new(&f->backend, loop, &ic->backend, err, err_len);
        if (r < 0) {
            free(f);
            return r;
        }
        uint8_t *boot = NULL;
        size_t len = 0;
        uint64_t t0 = loop_now_ns();
        r = extract_from_blob(f, codec, ic->bootstrap_blob, cfg->request_timeout_ms, &boot, &len, why, sizeof(why));
        if (!f->pending) {
            backend_free(f->backend);
            free(f);
        }
        /* else a request the cancel could not end (a local read) may still complete
         * into f: it is left alone, and the daemon exits on this error anyway. */
        if (r < 0)
            return snprintf(err, err_len, "%s", why), r;
        struct iovec iov = { .iov_base = boot, .iov_len = len };
        r = fs_mkdir_p(cfg->work_dir, 0755);
        if (r == 0)
            r = fs_write_atomic(path, &iov, 1, 0644);
        free(boot);
        if (r < 0)
            return snprintf(err, err_len, "storing %.600s: %s", path, strerror(-r)), r;
        log_info("image %s: bootstrap taken from blob %s (%zu bytes, %.0f ms) into %s", ic->fsid,
                 ic->bootstrap_blob, len, (double)(loop_now_ns() - t0) / 1e6, path);
    } else {
        log_info("image %s: bootstrap of blob %s from %s", ic->fsid, ic->bootstrap_blob, path);
    }
    ic->bootstrap = strdup(path);
    return ic->bootstrap ? 0 : -ENOMEM;
}

int inline_bootstrap_resolve(Config *cfg, Loop *loop, char **errors, char *err, size_t err_len)
{
    CodecCtx *codec = NULL;
    int r = 0;
    for (size_t i = 0; i < cfg->n_images && r == 0; i++) {
        ImageConfig *ic = &cfg->images[i];
        if (!ic->bootstrap_blob || ic->bootstrap)
            continue;
        if (!codec && (r = codec_ctx_new(&codec)) < 0) {
            snprintf(err, err_len, "no memory for a codec context");
            break;
        }
        char why[1024] = "";
        r = resolve_image(cfg, ic, loop, codec, why, sizeof(why));
        if (r == -ENOMEM)
            snprintf(err, err_len, "image %s: %s", ic->fsid, why[0] ? why : "out of memory");
        else if (r < 0 && !(errors[i] = strdup(why)))
            r = -ENOMEM;
        else
            r = 0;      /* this image is not served; the others are */
    }
    codec_ctx_free(codec);
    return r;
}
