/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A fake /dev/cachefiles that plays the kernel's part in-process: tests push
 * OPEN/READ/CLOSE messages (well-formed or not), and the fake records every
 * command the daemon writes and every READ completion.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cachefilesd-nydus/cachefiles_device.h"

typedef struct FakeDevice FakeDevice;

FakeDevice *fake_device_new(void);
/* The CachefilesDevice view handed to the daemon (which then owns the fake). */
CachefilesDevice *fake_device_base(FakeDevice *fd);
/* Keep the record readable after the daemon freed its device: the test releases it. */
void fake_device_hold(FakeDevice *dev);
void fake_device_release(FakeDevice *dev);

void fake_device_push_raw(FakeDevice *dev, const void *msg, size_t len);
void fake_device_push_open(FakeDevice *dev, uint32_t msg_id, uint32_t object_id, const char *volume_key,
                           const char *cookie_key, int anon_fd);
void fake_device_push_read(FakeDevice *dev, uint32_t msg_id, uint32_t object_id, uint64_t off, uint64_t len);
void fake_device_push_close(FakeDevice *dev, uint32_t object_id);

/* Recorded commands ("dir ...", "copen 5,4096", ...), in order. */
size_t fake_device_n_cmds(const FakeDevice *dev);
const char *fake_device_cmd(const FakeDevice *dev, size_t i);
/* The last "copen <msg_id>,X" reply: true and X in *value when one exists. */
bool fake_device_copen_result(const FakeDevice *dev, uint32_t msg_id, int64_t *value);
/* How many READ_COMPLETEs were sent for msg_id. */
unsigned fake_device_completions(const FakeDevice *dev, uint32_t msg_id);
/* Every READ_COMPLETE sent so far, in order: how many, and the msg_id of the i-th. */
size_t fake_device_n_completions(const FakeDevice *dev);
uint32_t fake_device_completion_id(const FakeDevice *dev, size_t i);
/* The anon fd the i-th READ_COMPLETE went through (-1 when there is none). */
int fake_device_completion_fd(const FakeDevice *dev, size_t i);
