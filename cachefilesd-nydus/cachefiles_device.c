/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "cachefiles_device.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uapi/cachefiles.h"

typedef struct RealDevice {
    CachefilesDevice base;
} RealDevice;

static ssize_t real_read_msg(CachefilesDevice *dev, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(dev->poll_fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? 0 : -errno;
    }
}

static int real_write_cmd(CachefilesDevice *dev, const char *cmd, size_t len)
{
    for (;;) {
        ssize_t n = write(dev->poll_fd, cmd, len);
        if (n >= 0)
            return (size_t)n == len ? 0 : -EIO;
        if (errno != EINTR)
            return -errno;
    }
}

static int real_read_complete(CachefilesDevice *dev, int anon_fd, uint32_t msg_id)
{
    return cachefiles_read_complete(anon_fd, msg_id);
}

static void real_free(CachefilesDevice *dev)
{
    if (dev->poll_fd >= 0)
        close(dev->poll_fd);
    free(dev);
}

static const CachefilesDeviceOps real_ops = {
    .read_msg = real_read_msg,
    .write_cmd = real_write_cmd,
    .read_complete = real_read_complete,
    .free = real_free,
};

int cachefiles_device_open(CachefilesDevice **ret, const char *path, int fd, char *err, size_t err_len)
{
    bool inherited = fd >= 0;
    if (fd < 0) {
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            int r = -errno;
            if (r == -EBUSY)
                snprintf(err, err_len, "%s is busy: another cache daemon (cachefilesd, nydusd) holds it; "
                         "only one may use it system-wide", path);
            else if (r == -ENOENT || r == -ENODEV || r == -ENXIO)
                snprintf(err, err_len, "%s is missing: the kernel needs CONFIG_CACHEFILES (load the "
                         "cachefiles module), CONFIG_CACHEFILES_ONDEMAND and CONFIG_EROFS_FS_ONDEMAND", path);
            else if (r == -EPERM || r == -EACCES)
                snprintf(err, err_len, "%s: %s (CAP_SYS_ADMIN is required)", path, strerror(-r));
            else
                snprintf(err, err_len, "%s: %s", path, strerror(-r));
            return r;
        }
    }
    RealDevice *dev = calloc(1, sizeof(*dev));
    if (!dev) {
        close(fd);
        return -ENOMEM;
    }
    dev->base.ops = &real_ops;
    dev->base.poll_fd = fd;
    dev->base.bound = inherited;
    *ret = &dev->base;
    return 0;
}
