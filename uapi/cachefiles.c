/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "cachefiles.h"
#include "why.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define reject(why, why_len, ...) why_fail(-EBADMSG, why, why_len, __VA_ARGS__)

/* Keys become directory names in the cache and log fields: printable only. */
static int copy_key(char *dst, const uint8_t *src, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        if (src[i] < 0x20 || src[i] > 0x7e)
            return -EBADMSG;
        dst[i] = (char)src[i];
    }
    dst[len] = '\0';
    return 0;
}

int cachefiles_msg_parse(const void *buf, size_t n, CachefilesMsg *out, int *open_fd,
                         char *why, size_t why_len)
{
    const uint8_t *p = buf;
    struct cachefiles_msg_hdr hdr;

    *open_fd = -1;
    memset(out, 0, sizeof(*out));
    if (n < sizeof(hdr))
        return reject(why, why_len, "short message: %zu bytes, header needs %zu", n, sizeof(hdr));
    memcpy(&hdr, p, sizeof(hdr));
    if (hdr.len != n)
        return reject(why, why_len, "length field %" PRIu32 " does not match the %zu bytes read",
                      hdr.len, n);
    out->msg_id = hdr.msg_id;
    out->object_id = hdr.object_id;

    switch (hdr.opcode) {
    case CACHEFILES_OP_OPEN: {
        struct cachefiles_open_hdr oh;
        if (n < sizeof(hdr) + sizeof(oh))
            return reject(why, why_len, "OPEN of %zu bytes has no open header", n);
        memcpy(&oh, p + sizeof(hdr), sizeof(oh));
        /* The fd is installed by now; hand it back so a bad OPEN can be failed. */
        *open_fd = (int)oh.fd;
        if ((int)oh.fd < 0)
            *open_fd = -1;
        size_t payload = n - sizeof(hdr) - sizeof(oh);
        uint64_t keys = (uint64_t)oh.volume_key_size + oh.cookie_key_size;
        if (keys != payload)
            return reject(why, why_len,
                          "OPEN key sizes %" PRIu32 "+%" PRIu32 " do not match payload of %zu bytes",
                          oh.volume_key_size, oh.cookie_key_size, payload);
        if (oh.volume_key_size < 2 || oh.volume_key_size > CACHEFILES_KEY_MAX + 1)
            return reject(why, why_len, "OPEN volume key size %" PRIu32 " out of range",
                          oh.volume_key_size);
        if (oh.cookie_key_size < 1 || oh.cookie_key_size > CACHEFILES_KEY_MAX)
            return reject(why, why_len, "OPEN cookie key size %" PRIu32 " out of range",
                          oh.cookie_key_size);
        if (*open_fd < 0)
            return reject(why, why_len, "OPEN carries an invalid fd %" PRIu32, oh.fd);
        const uint8_t *vkey = p + sizeof(hdr) + sizeof(oh);
        const uint8_t *ckey = vkey + oh.volume_key_size;
        if (vkey[oh.volume_key_size - 1] != '\0')
            return reject(why, why_len, "OPEN volume key is not NUL-terminated");
        if (copy_key(out->open.volume_key, vkey, oh.volume_key_size - 1) < 0 ||
            copy_key(out->open.cookie_key, ckey, oh.cookie_key_size) < 0)
            return reject(why, why_len, "OPEN key holds non-printable bytes");
        out->opcode = CACHEFILES_OP_OPEN;
        out->open.volume_key_len = oh.volume_key_size - 1;
        out->open.cookie_key_len = oh.cookie_key_size;
        out->open.fd = *open_fd;
        out->open.flags = oh.flags;
        return 0;
    }
    case CACHEFILES_OP_CLOSE:
        if (n != sizeof(hdr))
            return reject(why, why_len, "CLOSE of %zu bytes, expected %zu", n, sizeof(hdr));
        out->opcode = CACHEFILES_OP_CLOSE;
        return 0;
    case CACHEFILES_OP_READ: {
        struct cachefiles_read_body rb;
        if (n != sizeof(hdr) + sizeof(rb))
            return reject(why, why_len, "READ of %zu bytes, expected %zu", n, sizeof(hdr) + sizeof(rb));
        memcpy(&rb, p + sizeof(hdr), sizeof(rb));
        uint64_t end;
        if (__builtin_add_overflow(rb.off, rb.len, &end))
            return reject(why, why_len, "READ range off=%" PRIu64 " len=%" PRIu64 " overflows",
                          rb.off, rb.len);
        out->opcode = CACHEFILES_OP_READ;
        out->read.off = rb.off;
        out->read.len = rb.len;
        return 0;
    }
    default:
        return reject(why, why_len, "unknown opcode %" PRIu32, hdr.opcode);
    }
}

static int cmd_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cmd_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= size)
        return -ENAMETOOLONG;
    return n;
}

/* The kernel takes one whitespace-free argument per command. */
static int check_arg(const char *s)
{
    if (!s || !*s)
        return -EINVAL;
    for (; *s; s++)
        if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
            return -EINVAL;
    return 0;
}

int cachefiles_cmd_dir(char *buf, size_t size, const char *path)
{
    if (check_arg(path) < 0 || path[0] != '/')
        return -EINVAL;
    return cmd_format(buf, size, "dir %s", path);
}

int cachefiles_cmd_tag(char *buf, size_t size, const char *tag)
{
    if (check_arg(tag) < 0)
        return -EINVAL;
    return cmd_format(buf, size, "tag %s", tag);
}

int cachefiles_cmd_bind_ondemand(char *buf, size_t size)
{
    return cmd_format(buf, size, "bind ondemand");
}

int cachefiles_cmd_restore(char *buf, size_t size)
{
    return cmd_format(buf, size, "restore");
}

int cachefiles_cmd_copen(char *buf, size_t size, uint32_t msg_id, int64_t size_or_err)
{
    if (size_or_err < 0 && size_or_err < -4095)
        return -EINVAL;
    return cmd_format(buf, size, "copen %" PRIu32 ",%" PRId64, msg_id, size_or_err);
}

int cachefiles_read_complete(int anon_fd, uint32_t msg_id)
{
    if (ioctl(anon_fd, CACHEFILES_IOC_READ_COMPLETE, (unsigned long)msg_id) < 0)
        return -errno;
    return 0;
}
