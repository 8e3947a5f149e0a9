/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * storage/util/fsutil: the daemon (root) never writes through a symlink
 * below cache_dir or work_dir, and refuses at start-up a cache_dir or
 * work_dir that another user could plant links in. Runs as any user: as
 * root, "another user" is uid 65534 (lchown); otherwise the daemon's user
 * is pretended to be someone else.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachefilesd-nydus/config.h"
#include "cachefilesd-nydus/daemon.h"
#include "storage/util/fsutil.h"
#include "test.h"

#define OTHER_UID 65534u

static char base[256];

static const char *at(const char *rel)
{
    static char bufs[4][PATH_MAX];
    static int i;
    char *p = bufs[i++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", base, rel);
    return p;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static bool file_is(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

/* Make `path` (not followed) belong to another user; returns the uid the daemon must pretend to be. */
static uid_t make_foreign(const char *path)
{
    if (geteuid() == 0) {
        CHECK_EQ_INT(lchown(path, OTHER_UID, OTHER_UID), 0);
        return 0;
    }
    return geteuid() + 1;   /* everything the test made is then someone else's */
}

/* `path` refused with EPERM and a reason naming `needle`. */
static void check_refused(const char *path, uid_t owner, const char *needle)
{
    char why[512] = "";
    int fd = fs_open_private_dir(path, 0700, owner, why, sizeof(why));
    CHECK_EQ_INT(fd, -EPERM);
    if (!strstr(why, needle)) {
        fprintf(stderr, "  %s: reason \"%s\" lacks \"%s\"\n", path, why, needle);
        test_failures++;
    }
    if (fd >= 0)
        close(fd);
}

static void test_private_dir_created(void)
{
    char why[512] = "";
    int fd = fs_open_private_dir(at("new/a/b"), 0700, geteuid(), why, sizeof(why));
    CHECK(fd >= 0);
    struct stat st;
    CHECK_EQ_INT(stat(at("new/a/b"), &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ_INT(st.st_mode & 0077, 0);
    if (fd >= 0)
        close(fd);
    /* Trailing slashes, "." and ".." are walked like the kernel does. */
    fd = fs_open_private_dir(at("new/a/./b/../b/"), 0, geteuid(), why, sizeof(why));
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    fd = fs_open_private_dir("relative/dir", 0700, geteuid(), why, sizeof(why));
    CHECK_EQ_INT(fd, -EINVAL);
}

static void test_private_dir_writable_by_others(void)
{
    CHECK_EQ_INT(mkdir(at("w1777"), 0700), 0);
    CHECK_EQ_INT(chmod(at("w1777"), 01777), 0);
    check_refused(at("w1777"), geteuid(), "writable by others");
    /* Below a sticky directory (as /tmp), a private directory is fine... */
    CHECK_EQ_INT(mkdir(at("w1777/mine"), 0700), 0);
    char why[512] = "";
    int fd = fs_open_private_dir(at("w1777/mine"), 0, geteuid(), why, sizeof(why));
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    /* ...but not below one without the sticky bit, nor a group-writable one itself. */
    CHECK_EQ_INT(mkdir(at("w0777"), 0700), 0);
    CHECK_EQ_INT(mkdir(at("w0777/mine"), 0700), 0);
    CHECK_EQ_INT(chmod(at("w0777"), 0777), 0);
    check_refused(at("w0777/mine"), geteuid(), "parent directory");
    CHECK_EQ_INT(mkdir(at("g0770"), 0700), 0);
    CHECK_EQ_INT(chmod(at("g0770"), 0770), 0);
    check_refused(at("g0770"), geteuid(), "writable by its group");
    /* Creating a missing directory below an unsafe parent is refused too (before it is made). */
    check_refused(at("w0777/new"), geteuid(), "parent directory");
}

static void test_private_dir_foreign(void)
{
    CHECK_EQ_INT(mkdir(at("theirs"), 0755), 0);
    uid_t me = make_foreign(at("theirs"));
    check_refused(at("theirs"), me, "owned by uid");
    /* A symlink on the way must belong to root or the daemon's user, like a directory. */
    CHECK_EQ_INT(mkdir(at("real"), 0700), 0);
    CHECK_EQ_INT(symlink(at("real"), at("link")), 0);
    char why[512] = "";
    int fd = fs_open_private_dir(at("link"), 0, geteuid(), why, sizeof(why));
    CHECK(fd >= 0);     /* the admin's own symlink is followed */
    if (fd >= 0)
        close(fd);
    me = make_foreign(at("link"));
    check_refused(at("link"), me, geteuid() == 0 ? "symlink" : "owned by uid");
}

static void test_mkdirat_private(void)
{
    int root = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(root >= 0);
    int fd = fs_mkdirat_private(root, "vol", 0700);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    /* A planted directory symlink: refused, nothing created where it points. */
    CHECK_EQ_INT(mkdir(at("elsewhere"), 0700), 0);
    CHECK_EQ_INT(symlink(at("elsewhere"), at("planted")), 0);
    CHECK_EQ_INT(fs_mkdirat_private(root, "planted", 0700), -ELOOP);
    CHECK_EQ_INT(mkdir(at("open"), 0700), 0);
    CHECK_EQ_INT(chmod(at("open"), 0777), 0);
    CHECK_EQ_INT(fs_mkdirat_private(root, "open", 0700), -EPERM);
    /* Files below it: never through a symlink, at the end or on the way, nor out by "..". */
    write_file(at("victim"), "root's file\n");
    CHECK_EQ_INT(symlink(at("victim"), at("vol/blob")), 0);
    CHECK_EQ_INT(fs_openat2(root, "vol/blob", O_RDWR | O_CREAT | O_CLOEXEC, 0600, FS_RESOLVE_PRIVATE), -ELOOP);
    CHECK_EQ_INT(fs_openat2(root, "planted/blob", O_RDWR | O_CREAT | O_CLOEXEC, 0600, FS_RESOLVE_PRIVATE), -ELOOP);
    CHECK_EQ_INT(fs_openat2(root, "../x", O_RDWR | O_CREAT | O_CLOEXEC, 0600, FS_RESOLVE_PRIVATE), -EXDEV);
    CHECK(file_is(at("victim"), "root's file\n"));
    CHECK_EQ_INT(access(at("elsewhere/blob"), F_OK), -1);
    close(root);
}

static void test_write_atomic_replaces_symlink(void)
{
    int dir = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    write_file(at("victim2"), "keep me\n");
    CHECK_EQ_INT(symlink(at("victim2"), at("state")), 0);
    struct iovec iov = { .iov_base = (void *)"new state\n", .iov_len = 10 };
    CHECK_EQ_INT(fs_write_atomic_at(dir, "state", &iov, 1, 0600), 0);
    struct stat st;
    CHECK_EQ_INT(lstat(at("state"), &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ_INT(st.st_mode & 07777, 0600);
    CHECK(file_is(at("state"), "new state\n"));
    CHECK(file_is(at("victim2"), "keep me\n"));
    /* The path form writes in the same way. */
    CHECK_EQ_INT(symlink(at("victim2"), at("meta")), 0);
    CHECK_EQ_INT(fs_write_atomic(at("meta"), &iov, 1, 0644), 0);
    CHECK(file_is(at("meta"), "new state\n"));
    CHECK(file_is(at("victim2"), "keep me\n"));
    CHECK_EQ_INT(fs_write_atomic_at(dir, "a/b", &iov, 1, 0600), -EINVAL);
    close(dir);
}

/* daemon_new refuses the configured directories with the key, the path and the reason. */
static void check_daemon_refuses(const char *cache_dir, const char *work_dir, const char *needle)
{
    char text[2 * PATH_MAX + 256], err[1024] = "";
    Config *cfg = NULL;
    Daemon *d = NULL;
    snprintf(text, sizeof(text), "cache_dir: %s\nwork_dir: %s\nthreads: 1\nimages:\n  - fsid: x\n    bootstrap: /nonexistent\n",
             cache_dir, work_dir);
    CHECK_EQ_INT(config_parse(&cfg, "t.yaml", text, strlen(text), err, sizeof(err)), 0);
    int r = daemon_new(&d, cfg, err, sizeof(err));
    CHECK_EQ_INT(r, -EPERM);
    if (!strstr(err, needle)) {
        fprintf(stderr, "  daemon_new: \"%s\" lacks \"%s\"\n", err, needle);
        test_failures++;
    }
    fprintf(stderr, "  refused: %s\n", err);
    daemon_free(r == 0 ? d : NULL);
    config_free(cfg);
}

static void test_daemon_refuses_shared_dirs(void)
{
    CHECK_EQ_INT(mkdir(at("d"), 0700), 0);
    CHECK_EQ_INT(mkdir(at("d/shared"), 0700), 0);
    CHECK_EQ_INT(chmod(at("d/shared"), 01777), 0);
    char cache[PATH_MAX], work[PATH_MAX];
    snprintf(cache, sizeof(cache), "%s", at("d/cache"));
    snprintf(work, sizeof(work), "%s", at("d/work"));
    check_daemon_refuses(at("d/shared"), work, "writable by others");
    check_daemon_refuses(cache, at("d/shared"), "work_dir refused: directory");
}

int main(void)
{
    snprintf(base, sizeof(base), "/tmp/test-fsutil-XXXXXX");
    if (!mkdtemp(base))
        return 1;
    RUN(test_private_dir_created);
    RUN(test_private_dir_writable_by_others);
    RUN(test_private_dir_foreign);
    RUN(test_mkdirat_private);
    RUN(test_write_atomic_replaces_symlink);
    RUN(test_daemon_refuses_shared_dirs);
    char cmd[2 * sizeof(base) + 64];
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", base, base);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", base);
    return TEST_EXIT();
}
