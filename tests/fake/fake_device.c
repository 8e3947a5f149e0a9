/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "fake_device.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "uapi/cachefiles.h"

typedef struct Msg {
    size_t len;
    uint8_t data[CACHEFILES_MSG_MAX_SIZE * 2];
} Msg;

typedef struct Completion {
    uint32_t msg_id;
    int anon_fd;
} Completion;

struct FakeDevice {
    CachefilesDevice base;
    Msg *queue;
    size_t q_head, q_len, q_cap;
    char **cmds;
    size_t n_cmds;
    Completion *completions;
    size_t n_completions;
    uint32_t next_close_id;
    unsigned refs;                  /* the daemon's, plus fake_device_hold()s */
};

static ssize_t fake_read_msg(CachefilesDevice *base, void *buf, size_t len)
{
    FakeDevice *dev = (FakeDevice *)base;
    if (dev->q_head == dev->q_len) {
        uint64_t v;
        ssize_t n = read(base->poll_fd, &v, sizeof(v));   /* drain: nothing is pending */
        (void)n;
        return 0;
    }
    Msg *m = &dev->queue[dev->q_head];
    if (m->len > len)
        return -EMSGSIZE;
    memcpy(buf, m->data, m->len);
    dev->q_head++;
    return (ssize_t)m->len;
}

static int fake_write_cmd(CachefilesDevice *base, const char *cmd, size_t len)
{
    FakeDevice *dev = (FakeDevice *)base;
    char **c = realloc(dev->cmds, (dev->n_cmds + 1) * sizeof(*c));
    if (!c)
        abort();
    dev->cmds = c;
    dev->cmds[dev->n_cmds++] = strndup(cmd, len);
    return 0;
}

static int fake_read_complete(CachefilesDevice *base, int anon_fd, uint32_t msg_id)
{
    FakeDevice *dev = (FakeDevice *)base;
    Completion *c = realloc(dev->completions, (dev->n_completions + 1) * sizeof(*c));
    if (!c)
        abort();
    dev->completions = c;
    dev->completions[dev->n_completions++] = (Completion){ .msg_id = msg_id, .anon_fd = anon_fd };
    return 0;
}

static void fake_free(CachefilesDevice *base)
{
    FakeDevice *dev = (FakeDevice *)base;
    if (--dev->refs)
        return;
    for (size_t i = 0; i < dev->n_cmds; i++)
        free(dev->cmds[i]);
    free(dev->cmds);
    free(dev->completions);
    free(dev->queue);
    close(base->poll_fd);
    free(dev);
}

static const CachefilesDeviceOps fake_ops = {
    .read_msg = fake_read_msg,
    .write_cmd = fake_write_cmd,
    .read_complete = fake_read_complete,
    .free = fake_free,
};

FakeDevice *fake_device_new(void)
{
    FakeDevice *dev = calloc(1, sizeof(*dev));
    if (!dev)
        abort();
    dev->base.ops = &fake_ops;
    dev->base.poll_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    dev->next_close_id = 1u << 30;
    dev->refs = 1;
    return dev;
}

void fake_device_hold(FakeDevice *dev) { dev->refs++; }
void fake_device_release(FakeDevice *dev) { fake_free(&dev->base); }

CachefilesDevice *fake_device_base(FakeDevice *dev) { return &dev->base; }

void fake_device_push_raw(FakeDevice *dev, const void *msg, size_t len)
{
    if (len > sizeof(dev->queue[0].data))
        abort();
    if (dev->q_len == dev->q_cap) {
        dev->q_cap = dev->q_cap ? dev->q_cap * 2 : 16;
        dev->queue = realloc(dev->queue, dev->q_cap * sizeof(*dev->queue));
        if (!dev->queue)
            abort();
    }
    Msg *m = &dev->queue[dev->q_len++];
    m->len = len;
    memcpy(m->data, msg, len);
    uint64_t one = 1;
    ssize_t n = write(dev->base.poll_fd, &one, sizeof(one));
    (void)n;
}

void fake_device_push_open(FakeDevice *dev, uint32_t msg_id, uint32_t object_id, const char *volume_key,
                           const char *cookie_key, int anon_fd)
{
    uint8_t buf[CACHEFILES_MSG_MAX_SIZE];
    size_t vks = strlen(volume_key) + 1, cks = strlen(cookie_key);
    struct cachefiles_msg_hdr hdr = { .msg_id = msg_id, .opcode = CACHEFILES_OP_OPEN, .object_id = object_id };
    struct cachefiles_open_hdr oh = { .volume_key_size = (uint32_t)vks, .cookie_key_size = (uint32_t)cks,
                                      .fd = (uint32_t)anon_fd };
    hdr.len = (uint32_t)(sizeof(hdr) + sizeof(oh) + vks + cks);
    if (hdr.len > sizeof(buf))
        abort();
    memcpy(buf, &hdr, sizeof(hdr));
    memcpy(buf + sizeof(hdr), &oh, sizeof(oh));
    memcpy(buf + sizeof(hdr) + sizeof(oh), volume_key, vks);
    memcpy(buf + sizeof(hdr) + sizeof(oh) + vks, cookie_key, cks);
    fake_device_push_raw(dev, buf, hdr.len);
}

void fake_device_push_read(FakeDevice *dev, uint32_t msg_id, uint32_t object_id, uint64_t off, uint64_t len)
{
    uint8_t buf[32];
    struct cachefiles_msg_hdr hdr = { .msg_id = msg_id, .opcode = CACHEFILES_OP_READ, .len = 32,
                                      .object_id = object_id };
    struct cachefiles_read_body rb = { .off = off, .len = len };
    memcpy(buf, &hdr, sizeof(hdr));
    memcpy(buf + sizeof(hdr), &rb, sizeof(rb));
    fake_device_push_raw(dev, buf, sizeof(buf));
}

void fake_device_push_close(FakeDevice *dev, uint32_t object_id)
{
    struct cachefiles_msg_hdr hdr = { .msg_id = dev->next_close_id++, .opcode = CACHEFILES_OP_CLOSE,
                                      .len = 16, .object_id = object_id };
    fake_device_push_raw(dev, &hdr, sizeof(hdr));
}

size_t fake_device_n_cmds(const FakeDevice *dev) { return dev->n_cmds; }
const char *fake_device_cmd(const FakeDevice *dev, size_t i) { return i < dev->n_cmds ? dev->cmds[i] : NULL; }

bool fake_device_copen_result(const FakeDevice *dev, uint32_t msg_id, int64_t *value)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "copen %" PRIu32 ",", msg_id);
    for (size_t i = dev->n_cmds; i-- > 0;) {
        if (strncmp(dev->cmds[i], prefix, strlen(prefix)) == 0) {
            *value = strtoll(dev->cmds[i] + strlen(prefix), NULL, 10);
            return true;
        }
    }
    return false;
}

unsigned fake_device_completions(const FakeDevice *dev, uint32_t msg_id)
{
    unsigned n = 0;
    for (size_t i = 0; i < dev->n_completions; i++)
        n += dev->completions[i].msg_id == msg_id;
    return n;
}

size_t fake_device_n_completions(const FakeDevice *dev) { return dev->n_completions; }
uint32_t fake_device_completion_id(const FakeDevice *dev, size_t i)
{
    return i < dev->n_completions ? dev->completions[i].msg_id : 0;
}

int fake_device_completion_fd(const FakeDevice *dev, size_t i)
{
    return i < dev->n_completions ? dev->completions[i].anon_fd : -1;
}
