/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The erofs superblock and device-table parser (plain erofs images and the
 * head of every bootstrap). Input: the first bytes of an image. Parsed the
 * way images.c does: when the device table lies further, the parser says how
 * much it needs and is called again with that much (zero-padded here).
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "uapi/erofs.h"

static void check_info(const ErofsImageInfo *info)
{
    FUZZ_ASSERT(info->block_size >= 512 && (info->block_size & (info->block_size - 1)) == 0);
    FUZZ_ASSERT(info->extra_devices == 0 || info->devices != NULL);
    for (uint16_t i = 0; i < info->extra_devices; i++)
        FUZZ_ASSERT(strnlen(info->devices[i].tag, sizeof(info->devices[i].tag)) < sizeof(info->devices[i].tag));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ErofsImageInfo info;
    char why[256];
    size_t need = 0;

    int r = erofs_image_parse(data, size, &info, &need, why, sizeof(why));
    if (r == -EAGAIN) {
        FUZZ_ASSERT(need > size);
        if (need > (1u << 20))
            return 0;
        uint8_t *more = calloc(1, need);
        if (!more)
            abort();
        memcpy(more, data, size);
        size_t need2 = 0;
        r = erofs_image_parse(more, need, &info, &need2, why, sizeof(why));
        FUZZ_ASSERT(r != -EAGAIN);
        free(more);
    }
    if (r < 0) {
        FUZZ_ASSERT(r == -EBADMSG);
        fuzz_note("image rejected", why);
        return 0;
    }
    FUZZ_ASSERT(r == 0);
    check_info(&info);
    erofs_image_info_clear(&info);
    return 0;
}
