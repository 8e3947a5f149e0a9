/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "erofs.h"
#include "rafs.h"
#include "why.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define bad(why, why_len, ...) why_fail(-EBADMSG, why, why_len, __VA_ARGS__)

int erofs_image_parse(const void *buf, size_t len, ErofsImageInfo *out, size_t *need,
                      char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (len < EROFS_SUPER_END)
        return bad(why, why_len, "image is %zu bytes, shorter than an erofs superblock", len);

    struct erofs_super_block_disk sb;
    memcpy(&sb, (const uint8_t *)buf + EROFS_SUPER_OFFSET, sizeof(sb));
    if (le32toh(sb.magic) != EROFS_SUPER_MAGIC_V1 && rafs_is_v5(buf, len))
        return why_fail(-ENOTSUP, why, why_len, RAFS_V5_NOT_SUPPORTED);
    if (le32toh(sb.magic) != EROFS_SUPER_MAGIC_V1)
        return bad(why, why_len, "bad erofs magic 0x%08x at offset %d", le32toh(sb.magic),
                   EROFS_SUPER_OFFSET);
    if (sb.blkszbits < 9 || sb.blkszbits > 16)
        return bad(why, why_len, "erofs block size bits %u out of range", sb.blkszbits);

    out->block_size = 1u << sb.blkszbits;
    out->feature_compat = le32toh(sb.feature_compat);
    out->feature_incompat = le32toh(sb.feature_incompat);
    out->blocks = le32toh(sb.blocks);
    out->extra_devices = le16toh(sb.extra_devices);
    out->devt_offset = (uint32_t)le16toh(sb.devt_slotoff) * EROFS_DEVSLOT_SIZE;

    if (!(out->feature_incompat & EROFS_FEATURE_INCOMPAT_DEVICE_TABLE) || out->extra_devices == 0) {
        out->extra_devices = 0;
        return 0;
    }
    if (out->devt_offset < EROFS_SUPER_END)
        return bad(why, why_len, "device table offset %u overlaps the superblock", out->devt_offset);

    size_t end = (size_t)out->devt_offset + (size_t)out->extra_devices * EROFS_DEVSLOT_SIZE;
    if (end > len) {
        if (need)
            *need = end;
        return -EAGAIN;
    }
    out->devices = calloc(out->extra_devices, sizeof(*out->devices));
    if (!out->devices)
        return -ENOMEM;
    for (unsigned i = 0; i < out->extra_devices; i++) {
        struct erofs_deviceslot_disk slot;
        memcpy(&slot, (const uint8_t *)buf + out->devt_offset + (size_t)i * EROFS_DEVSLOT_SIZE,
               sizeof(slot));
        ErofsDevice *d = &out->devices[i];
        memcpy(d->tag, slot.tag, EROFS_DEVSLOT_TAG_SIZE);
        d->tag[EROFS_DEVSLOT_TAG_SIZE] = '\0';
        d->size = (uint64_t)le32toh(slot.blocks) << sb.blkszbits;
        for (const char *p = d->tag; *p; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
                int r = bad(why, why_len, "device slot %u has a non-printable tag", i);
                erofs_image_info_clear(out);
                return r;
            }
        }
    }
    return 0;
}

void erofs_image_info_clear(ErofsImageInfo *info)
{
    free(info->devices);
    info->devices = NULL;
    info->extra_devices = 0;
}
