/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <errno.h>

#include "test.h"
#include "uapi/cachefiles.h"

static size_t build_open(uint8_t *buf, uint32_t vks, uint32_t cks, const char *keys, size_t keys_len, uint32_t len)
{
    struct cachefiles_msg_hdr h = { .msg_id = 3, .opcode = CACHEFILES_OP_OPEN, .len = len, .object_id = 4 };
    struct cachefiles_open_hdr o = { .volume_key_size = vks, .cookie_key_size = cks, .fd = 9 };
    memcpy(buf, &h, 16);
    memcpy(buf + 16, &o, 16);
    memcpy(buf + 32, keys, keys_len);
    return 32 + keys_len;
}

static void test_open(void)
{
    uint8_t buf[1024];
    CachefilesMsg m;
    int fd;
    char why[128];
    size_t n = build_open(buf, 10, 5, "erofs,img\0img.1", 15, 47);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, n, &m, &fd, why, sizeof(why)), 0);
    CHECK_EQ_INT(m.opcode, CACHEFILES_OP_OPEN);
    CHECK_EQ_INT(m.msg_id, 3);
    CHECK_EQ_INT(m.object_id, 4);
    CHECK_EQ_INT(m.open.fd, 9);
    CHECK(strcmp(m.open.volume_key, "erofs,img") == 0);
    CHECK(strcmp(m.open.cookie_key, "img.1") == 0);

    /* Key sizes past the payload, lying len, missing NUL, non-printable keys, zero sizes. */
    n = build_open(buf, 10, 50, "erofs,img\0img.1", 15, 47);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, n, &m, &fd, why, sizeof(why)), -EBADMSG);
    CHECK_EQ_INT(fd, 9);            /* handed back so the OPEN can be failed */
    n = build_open(buf, 10, 5, "erofs,img\0img.1", 15, 48);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, n, &m, &fd, why, sizeof(why)), -EBADMSG);
    n = build_open(buf, 10, 5, "erofs,imgXimg.1", 15, 47);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, n, &m, &fd, why, sizeof(why)), -EBADMSG);
    n = build_open(buf, 10, 5, "erofs,img\0im\ng1", 15, 47);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, n, &m, &fd, why, sizeof(why)), -EBADMSG);
    n = build_open(buf, 15, 0, "erofs,img\0img.1", 15, 47);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, n, &m, &fd, why, sizeof(why)), -EBADMSG);
    /* Sizes whose sum wraps 32 bits. */
    n = build_open(buf, 0xfffffff0u, 0x1f, "erofs,img\0img.1", 15, 47);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, n, &m, &fd, why, sizeof(why)), -EBADMSG);
    /* Truncated at every length: never accepted, never crashes. */
    n = build_open(buf, 10, 5, "erofs,img\0img.1", 15, 47);
    for (size_t cut = 0; cut < n; cut++)
        CHECK_EQ_INT(cachefiles_msg_parse(buf, cut, &m, &fd, why, sizeof(why)), -EBADMSG);
}

static void test_read_close(void)
{
    uint8_t buf[64] = { 0 };
    CachefilesMsg m;
    int fd;
    char why[128];
    struct cachefiles_msg_hdr h = { .msg_id = 8, .opcode = CACHEFILES_OP_READ, .len = 32, .object_id = 2 };
    struct cachefiles_read_body r = { .off = 4096, .len = 8192 };
    memcpy(buf, &h, 16);
    memcpy(buf + 16, &r, 16);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, 32, &m, &fd, why, sizeof(why)), 0);
    CHECK_EQ_INT(m.read.off, 4096);
    CHECK_EQ_INT(m.read.len, 8192);
    CHECK_EQ_INT(fd, -1);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, 31, &m, &fd, why, sizeof(why)), -EBADMSG);
    r.off = UINT64_MAX;
    memcpy(buf + 16, &r, 16);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, 32, &m, &fd, why, sizeof(why)), -EBADMSG);

    h = (struct cachefiles_msg_hdr){ .msg_id = 9, .opcode = CACHEFILES_OP_CLOSE, .len = 16, .object_id = 2 };
    memcpy(buf, &h, 16);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, 16, &m, &fd, why, sizeof(why)), 0);
    CHECK_EQ_INT(m.opcode, CACHEFILES_OP_CLOSE);
    h.len = 32;
    memcpy(buf, &h, 16);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, 32, &m, &fd, why, sizeof(why)), -EBADMSG);
    h.opcode = 3;
    h.len = 16;
    memcpy(buf, &h, 16);
    CHECK_EQ_INT(cachefiles_msg_parse(buf, 16, &m, &fd, why, sizeof(why)), -EBADMSG);
    CHECK(strstr(why, "opcode") != NULL);
}

static void test_commands(void)
{
    char buf[64];
    CHECK_EQ_INT(cachefiles_cmd_copen(buf, sizeof(buf), 7, 4096), (int)strlen("copen 7,4096"));
    CHECK(strcmp(buf, "copen 7,4096") == 0);
    cachefiles_cmd_copen(buf, sizeof(buf), 7, -ENOENT);
    CHECK(strcmp(buf, "copen 7,-2") == 0);
    CHECK_EQ_INT(cachefiles_cmd_copen(buf, sizeof(buf), 7, -5000), -EINVAL);
    CHECK(cachefiles_cmd_dir(buf, sizeof(buf), "/var/cache/x") > 0 && strcmp(buf, "dir /var/cache/x") == 0);
    CHECK_EQ_INT(cachefiles_cmd_dir(buf, sizeof(buf), "relative"), -EINVAL);
    CHECK_EQ_INT(cachefiles_cmd_dir(buf, sizeof(buf), "/a b"), -EINVAL);
    CHECK_EQ_INT(cachefiles_cmd_dir(buf, 8, "/a/long/path"), -ENAMETOOLONG);
    CHECK(cachefiles_cmd_bind_ondemand(buf, sizeof(buf)) > 0 && strcmp(buf, "bind ondemand") == 0);
    CHECK(cachefiles_cmd_restore(buf, sizeof(buf)) > 0 && strcmp(buf, "restore") == 0);
    CHECK_EQ_INT(CACHEFILES_IOC_READ_COMPLETE, 0x40049801);
}

int main(void)
{
    RUN(test_open);
    RUN(test_read_close);
    RUN(test_commands);
    return TEST_EXIT();
}
