/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* A gzip'd tar -> MkTree + ZRAN chunks (see targz.h). */
#include "targz.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "storage/codec/codec.h"
#include "uapi/erofs_inode.h"
#include "zran.h"

#define TAR_BLOCK 512u
#define TAR_META_MAX (1u << 20)     /* longest GNU long name / pax header we accept */

/* Header fields (POSIX ustar offsets; GNU shares them up to @345). */
typedef struct TarHeader {
    char name[100], mode[8], uid[8], gid[8], size[12], mtime[12], chksum[8];
    char typeflag, linkname[100], magic[6], version[2], uname[32], gname[32];
    char devmajor[8], devminor[8], prefix[155], pad[12];
} TarHeader;
_Static_assert(sizeof(TarHeader) == TAR_BLOCK, "tar header is 512 bytes");

/* What pax / GNU extension records say about the next entry. */
typedef struct Override {
    char *path, *linkpath;
    bool has_size, has_uid, has_gid, has_mtime;
    uint64_t size, uid, gid;
    int64_t mtime;
    uint32_t mtime_nsec;
    MkXattr *xattrs;                /* SCHILY.xattr.* records */
    size_t nxattrs, xattrs_cap;
} Override;

typedef struct Builder {
    MkZran *z;
    MkBlob *blob;
    MkTree *tree;
    CodecCtx *codec;
    enum blob_digester digester;
    uint32_t chunk_size;
    uint8_t *buf;                   /* one chunk */
    Override ov;
    uint64_t entries;
} Builder;

static void xattrs_free(MkXattr *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(x[i].suffix);
        free(x[i].value);
    }
    free(x);
}

static void override_clear(Override *o)
{
    free(o->path);
    free(o->linkpath);
    xattrs_free(o->xattrs, o->nxattrs);
    memset(o, 0, sizeof(*o));
}

/* Read exactly len bytes of the tar stream. */
static int tar_read(Builder *b, void *p, size_t len)
{
    ssize_t n = mk_zran_read(b->z, p, len);
    if (n < 0)
        return (int)n;
    if ((size_t)n != len) {
        mk_err("tar stream ends inside an entry");
        return -EBADMSG;
    }
    return 0;
}

static int tar_skip(Builder *b, uint64_t len)
{
    while (len) {
        size_t n = (size_t)CFN_MIN(len, (uint64_t)b->chunk_size);
        int r = tar_read(b, b->buf, n);
        if (r < 0)
            return r;
        len -= n;
    }
    return 0;
}

static uint64_t pad512(uint64_t n) { return (TAR_BLOCK - n % TAR_BLOCK) % TAR_BLOCK; }

/* An octal field (NUL/space terminated) or GNU base-256 (high bit of the first byte). */
static int parse_num(const char *f, size_t len, uint64_t *out)
{
    const uint8_t *u = (const uint8_t *)f;
    uint64_t v = 0;
    if (u[0] & 0x80) {
        if (u[0] != 0x80)
            return -EBADMSG;        /* negative or too large */
        for (size_t i = 1; i < len; i++) {
            if (v >> 56)
                return -EBADMSG;
            v = v << 8 | u[i];
        }
        *out = v;
        return 0;
    }
    size_t i = 0;
    while (i < len && f[i] == ' ')
        i++;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60)
            return -EBADMSG;
        v = v * 8 + (uint64_t)(f[i] - '0');
    }
    if (i < len && f[i] != ' ' && f[i] != '\0')
        return -EBADMSG;
    *out = v;
    return 0;
}

static bool header_checksum_ok(const uint8_t *h)
{
    uint64_t want;
    if (parse_num((const char *)h + 148, 8, &want) < 0)
        return false;
    uint64_t us = 0;
    int64_t ss = 0;
    for (unsigned i = 0; i < TAR_BLOCK; i++) {
        uint8_t c = i >= 148 && i < 156 ? ' ' : h[i];
        us += c;
        ss += (int8_t)c;            /* some old tars summed signed chars */
    }
    return us == want || (uint64_t)ss == want;
}

/* Read a size-byte extension payload (GNU L/K, pax x/g), NUL-terminated. */
static int read_meta(Builder *b, uint64_t size, char **out)
{
    if (size > TAR_META_MAX) {
        mk_err("tar extension header of %" PRIu64 " bytes (limit %u)", size, TAR_META_MAX);
        return -E2BIG;
    }
    char *p = malloc(size + 1);
    if (!p)
        return -ENOMEM;
    int r = tar_read(b, p, size);
    if (r >= 0)
        r = tar_skip(b, pad512(size));
    if (r < 0) {
        free(p);
        return r;
    }
    p[size] = '\0';
    *out = p;
    return 0;
}

static int parse_pax_time(const char *v, int64_t *sec, uint32_t *nsec)
{
    char *end;
    errno = 0;
    long long s = strtoll(v, &end, 10);
    if (errno || end == v)
        return -EBADMSG;
    uint32_t ns = 0;
    if (*end == '.') {
        unsigned digits = 0;
        for (end++; *end >= '0' && *end <= '9'; end++)
            if (digits++ < 9)
                ns = ns * 10 + (uint32_t)(*end - '0');
        for (; digits < 9; digits++)
            ns *= 10;
    }
    if (*end)
        return -EBADMSG;
    if (s < 0 && ns) {              /* -1.5 is 2 s before... keep nsec non-negative */
        s -= 1;
        ns = 1000000000u - ns;
    }
    *sec = s;
    *nsec = ns;
    return 0;
}

/* A pax SCHILY.xattr.NAME record (GNU tar --xattrs; the value is raw bytes). */
static int add_pax_xattr(Builder *b, const char *name, size_t name_len, const char *value, size_t len)
{
    _cleanup_free_ char *n = strndup(name, name_len);
    if (!n)
        return -ENOMEM;
    uint8_t index;
    const char *suffix;
    if (mk_xattr_split(n, &index, &suffix) < 0 || strlen(suffix) > UINT8_MAX || len > UINT16_MAX ||
        strlen(n) != name_len) {
        mk_err("pax xattr \"%s\": erofs stores only user., trusted., security. and POSIX ACL "
               "names with suffixes up to 255 bytes and values up to 65535 bytes", n);
        return -EOPNOTSUPP;
    }
    Override *o = &b->ov;
    if (o->nxattrs == o->xattrs_cap) {
        size_t cap = o->xattrs_cap ? o->xattrs_cap * 2 : 8;
        MkXattr *x = realloc(o->xattrs, cap * sizeof(*x));
        if (!x)
            return -ENOMEM;
        o->xattrs = x;
        o->xattrs_cap = cap;
    }
    MkXattr *x = &o->xattrs[o->nxattrs];
    *x = (MkXattr){ .index = index, .suffix_len = (uint8_t)strlen(suffix), .value_len = (uint16_t)len };
    x->suffix = strdup(suffix);
    x->value = malloc(len ? len : 1);
    if (!x->suffix || !x->value) {
        free(x->suffix);
        free(x->value);
        return -ENOMEM;
    }
    memcpy(x->value, value, len);
    o->nxattrs++;
    return 0;
}

/* Pax records "LEN key=value\n" of an 'x' header into the override. */
static int parse_pax(Builder *b, const char *p, size_t size)
{
    size_t off = 0;
    while (off < size) {
        char *end;
        unsigned long len = strtoul(p + off, &end, 10);
        if (end == p + off || *end != ' ' || len < 5 || len > size - off || p[off + len - 1] != '\n') {
            mk_err("malformed pax record at +%zu", off);
            return -EBADMSG;
        }
        const char *key = end + 1, *rec_end = p + off + len - 1;
        const char *eq = memchr(key, '=', (size_t)(rec_end - key));
        if (!eq) {
            mk_err("pax record without '='");
            return -EBADMSG;
        }
        size_t klen = (size_t)(eq - key), vlen = (size_t)(rec_end - eq - 1);
        if (klen > 13 && !memcmp(key, "SCHILY.xattr.", 13)) {
            int r = add_pax_xattr(b, key + 13, klen - 13, eq + 1, vlen);
            if (r < 0)
                return r;
            off += len;
            continue;
        }
        _cleanup_free_ char *v = strndup(eq + 1, vlen);
        if (!v)
            return -ENOMEM;
#define KEY(s) (klen == strlen(s) && !memcmp(key, s, klen))
        int r = 0;
        char *e;
        if (KEY("path")) {
            free(b->ov.path);
            b->ov.path = CFN_TAKE_PTR(v);
        } else if (KEY("linkpath")) {
            free(b->ov.linkpath);
            b->ov.linkpath = CFN_TAKE_PTR(v);
        } else if (KEY("size") || KEY("uid") || KEY("gid")) {
            errno = 0;
            unsigned long long n = strtoull(v, &e, 10);
            if (errno || e == v || *e)
                r = -EBADMSG;
            else if (KEY("size"))
                b->ov.size = n, b->ov.has_size = true;
            else if (KEY("uid"))
                b->ov.uid = n, b->ov.has_uid = true;
            else
                b->ov.gid = n, b->ov.has_gid = true;
        } else if (KEY("mtime")) {
            r = parse_pax_time(v, &b->ov.mtime, &b->ov.mtime_nsec);
            b->ov.has_mtime = r == 0;
        }
        if (r < 0) {
            mk_err("pax record %.*s: bad value", (int)klen, key);
            return r;
        }
#undef KEY
        off += len;
    }
    return 0;
}

/* ---- the tree ------------------------------------------------------------ */

static MkNode *node_new(const char *name, size_t len, MkNode *parent)
{
    MkNode *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->name = strndup(name, len);
    if (!n->name) {
        free(n);
        return NULL;
    }
    n->name_len = len;
    n->parent = parent;
    return n;
}

/* Children are sorted at the end; search newest first (tars list siblings together). */
static MkNode *child_find(MkNode *dir, const char *name, size_t len)
{
    for (size_t i = dir->nchildren; i-- > 0;) {
        MkNode *c = dir->children[i];
        if (c->name_len == len && !memcmp(c->name, name, len))
            return c;
    }
    return NULL;
}

static int child_add(MkNode *dir, MkNode *c)
{
    /* Grow in powers of two. */
    if (!(dir->nchildren & (dir->nchildren - 1))) {
        size_t cap = dir->nchildren ? dir->nchildren * 2 : 4;
        MkNode **n = realloc(dir->children, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        dir->children = n;
    }
    dir->children[dir->nchildren++] = c;
    return 0;
}

/*
 * Split a tar path into components, dropping "", "." (a leading "./" and
 * "/", doubled slashes) and refusing "..". Returns the number of components
 * in comp[]/clen[] (pointers into `path`).
 */
static int split_path(const char *path, const char **comp, size_t *clen, int max)
{
    int n = 0;
    for (const char *p = path; *p;) {
        const char *s = strchr(p, '/');
        size_t len = s ? (size_t)(s - p) : strlen(p);
        if (len == 2 && !memcmp(p, "..", 2)) {
            mk_err("tar entry \"%s\": \"..\" in a path is not allowed", path);
            return -EINVAL;
        }
        if (len && !(len == 1 && p[0] == '.')) {
            if (n == max) {
                mk_err("tar entry \"%s\": nested deeper than %d levels", path, max);
                return -ELOOP;
            }
            if (len > EROFS_NAME_LEN) {
                mk_err("tar entry \"%s\": a name longer than %d bytes", path, EROFS_NAME_LEN);
                return -ENAMETOOLONG;
            }
            comp[n] = p;
            clen[n++] = len;
        }
        p += len + (s ? 1 : 0);
    }
    return n;
}

/* Find the directory holding the last component, creating missing ones. */
static int lookup_parent(Builder *b, const char **comp, const size_t *clen, int n, MkNode **out)
{
    MkNode *d = b->tree->root;
    for (int i = 0; i < n - 1; i++) {
        MkNode *c = child_find(d, comp[i], clen[i]);
        if (!c) {
            c = node_new(comp[i], clen[i], d);
            if (!c || child_add(d, c) < 0) {
                if (c)
                    free(c->name);
                free(c);
                return -ENOMEM;
            }
            c->mode = S_IFDIR | 0755;
            b->tree->inodes++;
        } else if (!S_ISDIR(c->mode)) {
            mk_err("tar entry below \"%.*s\", which is not a directory", (int)clen[i], comp[i]);
            return -ENOTDIR;
        }
        d = c;
    }
    *out = d;
    return 0;
}

/* Resolve a path to an existing node (hardlink targets). */
static MkNode *lookup(Builder *b, const char *path)
{
    const char *comp[MK_MAX_DEPTH];
    size_t clen[MK_MAX_DEPTH];
    int n = split_path(path, comp, clen, MK_MAX_DEPTH);
    if (n < 0)
        return NULL;
    MkNode *d = b->tree->root;
    for (int i = 0; i < n && d; i++)
        d = S_ISDIR(d->mode) ? child_find(d, comp[i], clen[i]) : NULL;
    return d;
}

/* Chunk a regular file's data: ZRAN slices of the gzip stream, deduplicated by digest. */
static int add_file_data(Builder *b, MkNode *node)
{
    uint64_t size = node->size, cs = b->chunk_size;
    uint64_t n = (size + cs - 1) / cs;
    node->nchunks = n;
    if (!n)
        return 0;
    if (n > UINT32_MAX / sizeof(uint32_t))
        return -EFBIG;
    uint64_t cap = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint32_t len = (uint32_t)CFN_MIN(cs, size - k * cs);
        int r = mk_node_chunk_room(node, k, &cap);
        if (r < 0 || (r = mk_zran_begin_chunk(b->z, len)) < 0 || (r = tar_read(b, b->buf, len)) < 0)
            return r;
        uint8_t digest[BLOB_DIGEST_SIZE];
        if ((r = codec_digest(b->codec, b->digester, b->buf, len, digest)) < 0)
            return r;
        if (mk_blob_lookup(b->blob, digest, len, &node->chunk_ci[k]))
            continue;
        MkRefChunk ref;
        if ((r = mk_zran_end_chunk(b->z, &ref)) < 0 ||
            (r = mk_blob_add_ref_chunk(b->blob, node, b->buf, len, digest, k * cs, &ref,
                                       &node->chunk_ci[k])) < 0)
            return r;
    }
    return tar_skip(b, pad512(size));
}

static int entry_mode(char type, uint64_t perm, mode_t *mode)
{
    mode_t t;
    switch (type) {
    case '0': case '\0': case '7': case '1': t = S_IFREG; break;
    case '2': t = S_IFLNK; break;
    case '3': t = S_IFCHR; break;
    case '4': t = S_IFBLK; break;
    case '5': t = S_IFDIR; break;
    case '6': t = S_IFIFO; break;
    default: return -EOPNOTSUPP;
    }
    *mode = t | (mode_t)(perm & 07777);
    return 0;
}

/* One file-system entry (header already parsed, extensions applied). */
static int add_entry(Builder *b, const TarHeader *h, const char *path, const char *link, uint64_t size)
{
    uint64_t perm, uid, gid, mtime, ma = 0, mi = 0;
    if (parse_num(h->mode, sizeof(h->mode), &perm) < 0 || parse_num(h->uid, sizeof(h->uid), &uid) < 0 ||
        parse_num(h->gid, sizeof(h->gid), &gid) < 0 || parse_num(h->mtime, sizeof(h->mtime), &mtime) < 0 ||
        ((h->typeflag == '3' || h->typeflag == '4') &&
         (parse_num(h->devmajor, sizeof(h->devmajor), &ma) < 0 ||
          parse_num(h->devminor, sizeof(h->devminor), &mi) < 0))) {
        mk_err("tar entry \"%s\": malformed numeric field", path);
        return -EBADMSG;
    }
    if (b->ov.has_uid)
        uid = b->ov.uid;
    if (b->ov.has_gid)
        gid = b->ov.gid;
    mode_t mode;
    if (entry_mode(h->typeflag, perm, &mode) < 0) {
        mk_err("tar entry \"%s\": type '%c' is not supported", path, h->typeflag);
        return -EOPNOTSUPP;
    }
    if (uid > UINT32_MAX || gid > UINT32_MAX || ma > 0xfff || mi > 0xfffff) {
        mk_err("tar entry \"%s\": owner or device number out of range", path);
        return -ERANGE;
    }

    const char *comp[MK_MAX_DEPTH];
    size_t clen[MK_MAX_DEPTH];
    int nc = split_path(path, comp, clen, MK_MAX_DEPTH);
    if (nc < 0)
        return nc;
    MkNode *n;
    if (nc == 0) {
        /* "./": the root directory's own metadata. */
        if (!S_ISDIR(mode)) {
            mk_err("tar entry \"%s\" names the root but is not a directory", path);
            return -EINVAL;
        }
        n = b->tree->root;
    } else {
        MkNode *dir;
        int r = lookup_parent(b, comp, clen, nc, &dir);
        if (r < 0)
            return r;
        n = child_find(dir, comp[nc - 1], clen[nc - 1]);
        if (n && !(S_ISDIR(n->mode) && S_ISDIR(mode))) {
            mk_err("tar entry \"%s\" appears twice (not supported)", path);
            return -EEXIST;
        }
        if (!n) {
            n = node_new(comp[nc - 1], clen[nc - 1], dir);
            if (!n)
                return -ENOMEM;
            if (child_add(dir, n) < 0) {
                free(n->name);
                free(n);
                return -ENOMEM;
            }
            if (h->typeflag != '1')
                b->tree->inodes++;
        }
    }

    n->mode = mode;
    n->uid = (uint32_t)uid;
    n->gid = (uint32_t)gid;
    n->mtime = b->ov.has_mtime ? b->ov.mtime : (int64_t)mtime;
    n->mtime_nsec = b->ov.has_mtime ? b->ov.mtime_nsec : 0;
    n->rdev = makedev((unsigned)ma, (unsigned)mi);
    n->nlink = 1;
    if (h->typeflag != '1' && b->ov.nxattrs) {
        /* A repeated directory entry replaces the xattrs, like tar extraction. */
        xattrs_free(n->xattrs, n->nxattrs);
        n->xattrs = CFN_TAKE_PTR(b->ov.xattrs);
        n->nxattrs = b->ov.nxattrs;
        b->ov.nxattrs = b->ov.xattrs_cap = 0;
        int r = mk_node_sort_xattrs(n);
        if (r < 0)
            return r;
        b->tree->has_xattrs = true;
    }

    switch (h->typeflag) {
    case '1': {
        MkNode *t = lookup(b, link);
        if (!t || S_ISDIR(t->mode) || t == n) {
            mk_err("tar hardlink \"%s\" -> \"%s\": no such earlier file", path, link);
            return -ENOENT;
        }
        MkNode *p = mk_node_inode(t);
        n->primary = p;
        n->mode = p->mode;
        p->nlink++;
        return tar_skip(b, size + pad512(size));
    }
    case '2': {
        size_t len = strlen(link);
        if (!len || len >= EROFS_BLKSIZ) {
            mk_err("tar symlink \"%s\": target length %zu out of range (1..4095)", path, len);
            return -ENAMETOOLONG;
        }
        n->symlink = strdup(link);
        if (!n->symlink)
            return -ENOMEM;
        n->size = len;
        return tar_skip(b, size + pad512(size));
    }
    case '0': case '\0': case '7':
        n->size = size;
        return add_file_data(b, n);
    default:
        return tar_skip(b, size + pad512(size));
    }
}

/* Sort children by name bytes and set directory link counts (2 + subdirectories). */
static int compare_nodes(const void *x, const void *y)
{
    const MkNode *a = *(MkNode *const *)x, *c = *(MkNode *const *)y;
    int r = memcmp(a->name, c->name, CFN_MIN(a->name_len, c->name_len));
    return r ? r : (a->name_len > c->name_len) - (a->name_len < c->name_len);
}

static void finish_dir(MkNode *d)
{
    d->nlink = 2;
    if (d->nchildren)
        qsort(d->children, d->nchildren, sizeof(*d->children), compare_nodes);
    for (size_t i = 0; i < d->nchildren; i++) {
        MkNode *c = d->children[i];
        if (S_ISDIR(c->mode)) {
            d->nlink++;
            finish_dir(c);
        }
    }
}

/* Parse the whole archive. */
static int parse_tar(Builder *b)
{
    uint8_t block[TAR_BLOCK];
    char name[sizeof(((TarHeader *)0)->prefix) + 1 + sizeof(((TarHeader *)0)->name) + 1];
    char link[sizeof(((TarHeader *)0)->linkname) + 1];
    unsigned zero_blocks = 0;
    for (;;) {
        ssize_t got = mk_zran_read(b->z, block, sizeof(block));
        if (got < 0)
            return (int)got;
        if (got == 0)
            return 0;               /* no end-of-archive blocks: accept */
        if ((size_t)got != sizeof(block)) {
            mk_err("tar stream ends inside a header");
            return -EBADMSG;
        }
        bool zero = true;
        for (unsigned i = 0; i < sizeof(block) && zero; i++)
            zero = !block[i];
        if (zero) {
            if (++zero_blocks == 2)
                return 0;
            continue;
        }
        zero_blocks = 0;
        if (!header_checksum_ok(block)) {
            mk_err("tar header checksum mismatch (not a tar archive?)");
            return -EBADMSG;
        }
        TarHeader h;
        memcpy(&h, block, sizeof(h));
        uint64_t size;
        if (parse_num(h.size, sizeof(h.size), &size) < 0) {
            mk_err("tar header with a malformed size");
            return -EBADMSG;
        }
        if (b->ov.has_size)
            size = b->ov.size;

        int r;
        char *meta = NULL;
        switch (h.typeflag) {
        case 'L':
        case 'K':
            if ((r = read_meta(b, size, &meta)) < 0)
                return r;
            free(h.typeflag == 'L' ? b->ov.path : b->ov.linkpath);
            *(h.typeflag == 'L' ? &b->ov.path : &b->ov.linkpath) = meta;
            continue;
        case 'x':
            if ((r = read_meta(b, size, &meta)) < 0)
                return r;
            r = parse_pax(b, meta, size);
            free(meta);
            if (r < 0)
                return r;
            continue;
        case 'g':
            if ((r = read_meta(b, size, &meta)) < 0)
                return r;
            free(meta);
            continue;
        default:
            break;
        }

        /* ustar splits long names into prefix/name; GNU ("ustar  ") uses that space otherwise. */
        bool posix = !memcmp(h.magic, "ustar", 6);
        if (posix && h.prefix[0])
            snprintf(name, sizeof(name), "%.*s/%.*s", (int)sizeof(h.prefix), h.prefix,
                     (int)sizeof(h.name), h.name);
        else
            snprintf(name, sizeof(name), "%.*s", (int)sizeof(h.name), h.name);
        snprintf(link, sizeof(link), "%.*s", (int)sizeof(h.linkname), h.linkname);
        const char *path = b->ov.path ? b->ov.path : name;
        const char *target = b->ov.linkpath ? b->ov.linkpath : link;
        r = add_entry(b, &h, path, target, size);
        override_clear(&b->ov);
        if (r < 0)
            return r;
        b->entries++;
    }
}

int mk_targz_build(const char *path, MkBlob *blob, uint32_t chunk_size, enum blob_digester digester,
                   MkTree **ret)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        mk_err("%s: %s", path, strerror(-r));
        return r;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        mk_err("%s: not a regular file", path);
        return -EINVAL;
    }
    /* Declared before the first goto: cleanups must never see uninitialised values. */
    _cleanup_(mk_tree_freep) MkTree *tree = calloc(1, sizeof(*tree));
    _cleanup_free_ uint8_t *ctx = NULL;
    Builder b = { .blob = blob, .tree = tree, .digester = digester, .chunk_size = chunk_size };
    int r = -ENOMEM;
    if (!tree || !(tree->root = node_new("/", 1, NULL)) || !(b.buf = malloc(chunk_size)))
        goto out;
    tree->root->mode = S_IFDIR | 0755;
    tree->inodes = 1;
    if ((r = codec_ctx_new(&b.codec)) < 0 || (r = mk_zran_new(&b.z, fd, path)) < 0)
        goto out;
    if ((r = parse_tar(&b)) < 0)
        goto out;
    finish_dir(tree->root);

    uint64_t size;
    char id[MK_BLOB_ID_LEN + 1];
    size_t ctx_len;
    uint32_t count;
    if ((r = mk_zran_finish(b.z, &size, id, &ctx, &ctx_len, &count)) < 0)
        goto out;
    if ((uint64_t)st.st_size != size) {
        mk_err("%s: changed while reading it", path);
        r = -EAGAIN;
        goto out;
    }
    if ((r = mk_blob_set_ref(blob, path, id, size, ctx, ctx_len, count)) < 0)
        goto out;
    *ret = CFN_TAKE_PTR(tree);
out:
    override_clear(&b.ov);
    mk_zran_free(b.z);
    codec_ctx_free(b.codec);
    free(b.buf);
    return r;
}
