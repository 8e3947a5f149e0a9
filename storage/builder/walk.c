/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Sorted, fd-relative walk of the source directory into an MkTree. */
#include "tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "uapi/erofs_inode.h"

void mk_err(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "nydus-mkimage: %s\n", buf);
}

char *mk_node_path(const MkNode *node)
{
    size_t len = 0;
    for (const MkNode *n = node; n->parent; n = n->parent)
        len += n->name_len + 1;
    char *p = malloc(len + 2);
    if (!p)
        return NULL;
    if (!node->parent)
        return strcpy(p, "/");
    p[len] = '\0';
    for (const MkNode *n = node; n->parent; n = n->parent) {
        len -= n->name_len;
        memcpy(p + len, n->name, n->name_len);
        p[--len] = '/';
    }
    return p;
}

static void node_err(const MkNode *node, const char *what, int err)
{
    _cleanup_free_ char *p = mk_node_path(node);
    mk_err("%s: %s: %s", p ? p : "?", what, strerror(err));
}

/* Hardlink table: (st_dev, st_ino) -> primary node, open addressing. */
typedef struct LinkSlot {
    dev_t dev;
    ino_t ino;
    MkNode *node;
} LinkSlot;

typedef struct Walker {
    MkTree *tree;
    mk_file_fn on_file;
    void *opaque;
    LinkSlot *links;
    size_t nlinks, link_cap;        /* cap is a power of two */
} Walker;

static size_t link_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

static LinkSlot *link_find(Walker *w, dev_t dev, ino_t ino)
{
    size_t mask = w->link_cap - 1;
    for (size_t i = link_hash(dev, ino) & mask;; i = (i + 1) & mask) {
        LinkSlot *s = &w->links[i];
        if (!s->node || (s->dev == dev && s->ino == ino))
            return s;
    }
}

static int link_reserve(Walker *w)
{
    if (w->link_cap && (w->nlinks + 1) * 2 <= w->link_cap)
        return 0;
    size_t cap = w->link_cap ? w->link_cap * 2 : 256;
    LinkSlot *old = w->links;
    size_t old_cap = w->link_cap;
    w->links = calloc(cap, sizeof(*w->links));
    if (!w->links) {
        w->links = old;
        return -ENOMEM;
    }
    w->link_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].node)
            *link_find(w, old[i].dev, old[i].ino) = old[i];
    free(old);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int xattr_cmp(const void *a, const void *b)
{
    const MkXattr *x = a, *y = b;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    size_t n = CFN_MIN(x->suffix_len, y->suffix_len);
    int c = memcmp(x->suffix, y->suffix, n);
    if (c)
        return c;
    return (int)x->suffix_len - (int)y->suffix_len;
}

static const struct {
    const char *prefix;
    uint8_t index;
    bool exact;                     /* the whole name is the prefix (ACLs) */
} xattr_prefixes[] = {
    { "user.", EROFS_XATTR_INDEX_USER, false },
    { "system.posix_acl_access", EROFS_XATTR_INDEX_POSIX_ACL_ACCESS, true },
    { "system.posix_acl_default", EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT, true },
    { "trusted.", EROFS_XATTR_INDEX_TRUSTED, false },
    { "security.", EROFS_XATTR_INDEX_SECURITY, false },
};

int mk_xattr_split(const char *name, uint8_t *index, const char **suffix)
{
    for (size_t i = 0; i < CFN_ARRAY_SIZE(xattr_prefixes); i++) {
        size_t pl = strlen(xattr_prefixes[i].prefix);
        if (xattr_prefixes[i].exact ? strcmp(name, xattr_prefixes[i].prefix) != 0
                                    : strncmp(name, xattr_prefixes[i].prefix, pl) != 0)
            continue;
        *index = xattr_prefixes[i].index;
        *suffix = name + pl;
        return 0;
    }
    return -EOPNOTSUPP;
}

/* Read all xattrs of `path` (not following a final symlink) into node. */
static int read_xattrs(Walker *w, MkNode *node, const char *path)
{
    _cleanup_free_ char *list = NULL;
    ssize_t len;
    for (;;) {
        len = llistxattr(path, NULL, 0);
        if (len < 0) {
            int r = -errno;
            if (r == -EOPNOTSUPP || r == -ENOTSUP)
                return 0;
            node_err(node, "listing xattrs", -r);
            return r;
        }
        if (len == 0)
            return 0;
        free(list);
        list = malloc((size_t)len);
        if (!list)
            return -ENOMEM;
        ssize_t got = llistxattr(path, list, (size_t)len);
        if (got >= 0) {
            len = got;
            break;
        }
        if (errno != ERANGE) {
            int r = -errno;
            node_err(node, "listing xattrs", -r);
            return r;
        }
    }

    size_t count = 0;
    for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1)
        count++;
    node->xattrs = calloc(count, sizeof(*node->xattrs));
    if (!node->xattrs)
        return -ENOMEM;

    for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1) {
        const char *name = list + i, *suffix;
        uint8_t index;
        if (mk_xattr_split(name, &index, &suffix) < 0) {
            _cleanup_free_ char *p = mk_node_path(node);
            mk_err("%s: xattr \"%s\" has a prefix erofs cannot store "
                   "(only user., trusted., security. and POSIX ACLs)", p ? p : "?", name);
            return -EOPNOTSUPP;
        }
        size_t sl = strlen(suffix);
        if (sl > UINT8_MAX) {
            _cleanup_free_ char *p = mk_node_path(node);
            mk_err("%s: xattr \"%s\": name longer than 255 bytes after the prefix",
                   p ? p : "?", name);
            return -ENAMETOOLONG;
        }
        ssize_t vl = lgetxattr(path, name, NULL, 0);
        if (vl < 0) {
            int r = -errno;
            node_err(node, "reading an xattr", -r);
            return r;
        }
        if (vl > UINT16_MAX) {
            _cleanup_free_ char *p = mk_node_path(node);
            mk_err("%s: xattr \"%s\": value of %zd bytes, erofs holds at most 65535",
                   p ? p : "?", name, vl);
            return -E2BIG;
        }
        MkXattr *x = &node->xattrs[node->nxattrs++];
        x->index = index;
        x->suffix_len = (uint8_t)sl;
        x->suffix = strndup(suffix, sl);
        x->value = malloc(vl ? (size_t)vl : 1);
        if (!x->suffix || !x->value)
            return -ENOMEM;
        ssize_t got = lgetxattr(path, name, x->value, (size_t)vl);
        if (got != vl) {
            int r = got < 0 ? -errno : -EAGAIN;
            node_err(node, "xattr changed while reading it", -r);
            return r;
        }
        x->value_len = (uint16_t)vl;
    }
    int r = mk_node_sort_xattrs(node);
    if (r < 0)
        return r;
    if (node->nxattrs)
        w->tree->has_xattrs = true;
    return 0;
}

int mk_node_sort_xattrs(MkNode *node)
{
    if (node->nxattrs)
        qsort(node->xattrs, node->nxattrs, sizeof(*node->xattrs), xattr_cmp);
    for (size_t i = 1; i < node->nxattrs; i++) {
        if (xattr_cmp(&node->xattrs[i - 1], &node->xattrs[i]) == 0) {
            node_err(node, "duplicate xattr name", EINVAL);
            return -EINVAL;
        }
    }
    return 0;
}

static void node_set_stat(MkNode *n, const struct stat *st)
{
    n->mode = st->st_mode;
    n->uid = st->st_uid;
    n->gid = st->st_gid;
    n->rdev = st->st_rdev;
    n->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
    n->mtime = st->st_mtim.tv_sec;
    n->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
    n->nlink = S_ISDIR(st->st_mode) ? 2 : 1;
}

/* The sorted entry names of a directory (without . and ..). */
static int read_names(MkNode *dir, int dirfd, char ***ret, size_t *ret_n)
{
    int fd = dup(dirfd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int r = -errno;
        close(fd);
        return r;
    }
    rewinddir(d);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            r = -errno;
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (strlen(de->d_name) > EROFS_NAME_LEN) {
            r = -ENAMETOOLONG;
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof(*names));
            if (!nn) {
                r = -ENOMEM;
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            r = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (r < 0) {
        node_err(dir, "reading directory", -r);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return r;
    }
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    *ret = names;
    *ret_n = n;
    return 0;
}

static int walk_dir(Walker *w, MkNode *dir, int dirfd, unsigned depth);

static int walk_entry(Walker *w, MkNode *dir, int dirfd, MkNode *n, unsigned depth)
{
    struct stat st;
    if (fstatat(dirfd, n->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        int r = -errno;
        node_err(n, "stat", -r);
        return r;
    }
    node_set_stat(n, &st);

    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        int r = link_reserve(w);
        if (r < 0)
            return r;
        LinkSlot *s = link_find(w, st.st_dev, st.st_ino);
        if (s->node) {
            n->primary = s->node;
            s->node->nlink++;
            return 0;
        }
        *s = (LinkSlot){ .dev = st.st_dev, .ino = st.st_ino, .node = n };
        w->nlinks++;
    }
    w->tree->inodes++;

    char xpath[64 + EROFS_NAME_LEN];
    snprintf(xpath, sizeof(xpath), "/proc/self/fd/%d/%s", dirfd, n->name);
    int r = read_xattrs(w, n, xpath);
    if (r < 0)
        return r;

    switch (st.st_mode & S_IFMT) {
    case S_IFDIR: {
        if (depth + 1 > MK_MAX_DEPTH) {
            _cleanup_free_ char *p = mk_node_path(n);
            mk_err("directories nested deeper than %d levels (not supported) at %s", MK_MAX_DEPTH,
                   p ? p : "?");
            return -ELOOP;
        }
        _cleanup_close_ int fd = openat(dirfd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            r = -errno;
            node_err(n, "open directory", -r);
            return r;
        }
        dir->nlink++;               /* the child's ".." */
        return walk_dir(w, n, fd, depth + 1);
    }
    case S_IFREG: {
        _cleanup_close_ int fd = openat(dirfd, n->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            r = -errno;
            node_err(n, "open", -r);
            return r;
        }
        return w->on_file(w->opaque, n, fd);
    }
    case S_IFLNK: {
        if (st.st_size <= 0 || st.st_size >= (off_t)EROFS_BLKSIZ) {
            node_err(n, "symlink target length out of range (1..4095)", ENAMETOOLONG);
            return -ENAMETOOLONG;
        }
        n->symlink = malloc((size_t)st.st_size + 1);
        if (!n->symlink)
            return -ENOMEM;
        ssize_t got = readlinkat(dirfd, n->name, n->symlink, (size_t)st.st_size + 1);
        if (got != st.st_size) {
            r = got < 0 ? -errno : -EAGAIN;
            node_err(n, "readlink (target changed while reading?)", -r);
            return r;
        }
        n->size = (uint64_t)got;
        return 0;
    }
    case S_IFCHR:
    case S_IFBLK:
        /* i_u holds the kernel's new_encode_dev(): 12-bit major, 20-bit minor. */
        if (major(st.st_rdev) > 0xfff || minor(st.st_rdev) > 0xfffff) {
            node_err(n, "device number does not fit erofs (major < 4096, minor < 2^20)", ERANGE);
            return -ERANGE;
        }
        return 0;
    case S_IFIFO:
    case S_IFSOCK:
        return 0;
    default:
        node_err(n, "unknown file type", EINVAL);
        return -EINVAL;
    }
}

static int walk_dir(Walker *w, MkNode *dir, int dirfd, unsigned depth)
{
    char **names = NULL;
    size_t n = 0;
    int r = read_names(dir, dirfd, &names, &n);
    if (r < 0)
        return r;
    if (n) {
        dir->children = calloc(n, sizeof(*dir->children));
        if (!dir->children)
            r = -ENOMEM;
    }
    for (size_t i = 0; i < n && r >= 0; i++) {
        MkNode *c = calloc(1, sizeof(*c));
        if (!c) {
            r = -ENOMEM;
            break;
        }
        c->name = CFN_TAKE_PTR(names[i]);
        c->name_len = strlen(c->name);
        c->parent = dir;
        dir->children[dir->nchildren++] = c;
        r = walk_entry(w, dir, dirfd, c, depth);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

static void node_free(MkNode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nchildren; i++)
        node_free(n->children[i]);
    for (size_t i = 0; i < n->nxattrs; i++) {
        free(n->xattrs[i].suffix);
        free(n->xattrs[i].value);
    }
    free(n->xattrs);
    free(n->children);
    free(n->symlink);
    free(n->chunk_ci);
    free(n->name);
    free(n);
}

MkTree *mk_tree_free(MkTree *tree)
{
    if (tree) {
        node_free(tree->root);
        free(tree);
    }
    return NULL;
}

int mk_tree_walk(const char *path, mk_file_fn on_file, void *opaque, MkTree **ret)
{
    _cleanup_(mk_tree_freep) MkTree *tree = calloc(1, sizeof(*tree));
    if (!tree)
        return -ENOMEM;
    Walker w = { .tree = tree, .on_file = on_file, .opaque = opaque };

    _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        mk_err("%s: %s", path, strerror(-r));
        return r;
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    MkNode *root = calloc(1, sizeof(*root));
    if (!root)
        return -ENOMEM;
    tree->root = root;
    root->name = strdup("/");
    if (!root->name)
        return -ENOMEM;
    root->name_len = 1;
    node_set_stat(root, &st);
    tree->inodes = 1;

    /* "/." so that the l*xattr calls act on the directory, not the proc link. */
    char xpath[64];
    snprintf(xpath, sizeof(xpath), "/proc/self/fd/%d/.", fd);
    int r = read_xattrs(&w, root, xpath);
    if (r >= 0)
        r = walk_dir(&w, root, fd, 0);
    free(w.links);
    if (r < 0)
        return r;
    *ret = CFN_TAKE_PTR(tree);
    return 0;
}
