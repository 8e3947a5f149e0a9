/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * How the cachefiles front-end reaches /dev/cachefiles. Tests replace the
 * real device with a fake that plays the kernel's part through the same
 * calls: it hands out messages, records commands and completions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct CachefilesDevice CachefilesDevice;

typedef struct CachefilesDeviceOps {
    /* One message per call: bytes read, 0 when nothing is pending, or -errno. */
    ssize_t (*read_msg)(CachefilesDevice *dev, void *buf, size_t len);
    /* One command per call (dir, tag, bind, copen, restore): 0 or -errno. */
    int (*write_cmd)(CachefilesDevice *dev, const char *cmd, size_t len);
    /* CACHEFILES_IOC_READ_COMPLETE on the object's anon fd. */
    int (*read_complete)(CachefilesDevice *dev, int anon_fd, uint32_t msg_id);
    void (*free)(CachefilesDevice *dev);
} CachefilesDeviceOps;

struct CachefilesDevice {
    const CachefilesDeviceOps *ops;
    int poll_fd;                    /* becomes readable when messages may be pending */
    bool bound;                     /* inherited after dir/bind: take over with "restore" */
};

/*
 * Open the real device, or adopt an inherited fd (fd >= 0) that a previous
 * daemon or a holder process already bound. On failure err explains what
 * the operator must fix.
 */
int cachefiles_device_open(CachefilesDevice **ret, const char *path, int fd, char *err, size_t err_len);

static inline CachefilesDevice *cachefiles_device_free(CachefilesDevice *dev)
{
    if (dev)
        dev->ops->free(dev);
    return NULL;
}
