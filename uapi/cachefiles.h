/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The cachefiles on-demand ABI (include/uapi/linux/cachefiles.h, unchanged
 * from 5.19 to 7.1): message layouts, a parser that validates every length
 * before the payload is touched, and encoders for the commands the daemon
 * writes to /dev/cachefiles.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#define CACHEFILES_MSG_MAX_SIZE 1024

enum cachefiles_opcode {
    CACHEFILES_OP_OPEN = 0,
    CACHEFILES_OP_CLOSE = 1,
    CACHEFILES_OP_READ = 2,
};

struct cachefiles_msg_hdr {
    uint32_t msg_id;
    uint32_t opcode;
    uint32_t len;           /* whole message, header included */
    uint32_t object_id;
};

struct cachefiles_open_hdr {
    uint32_t volume_key_size;   /* includes the trailing NUL */
    uint32_t cookie_key_size;   /* raw bytes, no NUL */
    uint32_t fd;
    uint32_t flags;
};

struct cachefiles_read_body {
    uint64_t off;
    uint64_t len;
};

_Static_assert(sizeof(struct cachefiles_msg_hdr) == 16, "cachefiles_msg is 16 bytes");
_Static_assert(sizeof(struct cachefiles_open_hdr) == 16, "cachefiles_open is 16 bytes");
_Static_assert(sizeof(struct cachefiles_read_body) == 16, "cachefiles_read is 16 bytes");

/* The msg_id travels by value despite the _IOW encoding. */
#define CACHEFILES_IOC_READ_COMPLETE _IOW(0x98, 1, int)

/* Keys never exceed 255 bytes in the kernel; anything longer is hostile. */
#define CACHEFILES_KEY_MAX 255

/* A validated message. Key strings are NUL-terminated copies. */
typedef struct CachefilesMsg {
    uint32_t msg_id;
    enum cachefiles_opcode opcode;
    uint32_t object_id;
    union {
        struct {
            char volume_key[CACHEFILES_KEY_MAX + 1];
            char cookie_key[CACHEFILES_KEY_MAX + 1];
            uint32_t volume_key_len, cookie_key_len;
            int fd;
            uint32_t flags;
        } open;
        struct {
            uint64_t off;
            uint64_t len;
        } read;
    };
} CachefilesMsg;

/*
 * Parse the `n` bytes one read() returned. Returns 0 or -EBADMSG with the
 * reason in `why`. For a rejected OPEN whose header was intact, *open_fd is
 * set to the fd the kernel installed (the caller must close it and fail the
 * OPEN); otherwise it is -1.
 */
int cachefiles_msg_parse(const void *buf, size_t n, CachefilesMsg *out, int *open_fd,
                         char *why, size_t why_len);

/*
 * Command encoders: write the command into buf (NUL-terminated) and return
 * its length (without the NUL), or -ENAMETOOLONG / -EINVAL.
 */
int cachefiles_cmd_dir(char *buf, size_t size, const char *path);
int cachefiles_cmd_tag(char *buf, size_t size, const char *tag);
int cachefiles_cmd_bind_ondemand(char *buf, size_t size);
int cachefiles_cmd_restore(char *buf, size_t size);
/* size_or_err >= 0: object size; < 0: -errno in [-4095, -1]. */
int cachefiles_cmd_copen(char *buf, size_t size, uint32_t msg_id, int64_t size_or_err);

/* Tell the kernel a READ is done (data written or not). 0 or -errno. */
int cachefiles_read_complete(int anon_fd, uint32_t msg_id);
