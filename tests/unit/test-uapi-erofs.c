/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <endian.h>
#include <errno.h>

#include "test.h"
#include "uapi/erofs.h"

static size_t make_image(uint8_t *buf, uint16_t devs, uint16_t slotoff)
{
    memset(buf, 0, 8192);
    struct erofs_super_block_disk sb = { 0 };
    sb.magic = htole32(EROFS_SUPER_MAGIC_V1);
    sb.blkszbits = 12;
    sb.feature_incompat = htole32(EROFS_FEATURE_INCOMPAT_DEVICE_TABLE);
    sb.extra_devices = htole16(devs);
    sb.devt_slotoff = htole16(slotoff);
    memcpy(buf + 1024, &sb, sizeof(sb));
    for (uint16_t i = 0; i < devs; i++) {
        struct erofs_deviceslot_disk s = { 0 };
        snprintf((char *)s.tag, sizeof(s.tag), "blob%u", i);
        s.blocks = htole32(10 + i);
        memcpy(buf + (size_t)slotoff * 128 + (size_t)i * 128, &s, sizeof(s));
    }
    return 8192;
}

static void test_parse(void)
{
    uint8_t buf[8192];
    ErofsImageInfo info;
    char why[128];
    size_t need = 0;
    make_image(buf, 2, 11);
    CHECK_EQ_INT(erofs_image_parse(buf, sizeof(buf), &info, &need, why, sizeof(why)), 0);
    CHECK_EQ_INT(info.block_size, 4096);
    CHECK_EQ_INT(info.extra_devices, 2);
    CHECK(strcmp(info.devices[1].tag, "blob1") == 0);
    CHECK_EQ_INT(info.devices[1].size, 11 * 4096);
    erofs_image_info_clear(&info);

    /* Device table past the buffer: asks for more. */
    CHECK_EQ_INT(erofs_image_parse(buf, 1408 + 100, &info, &need, why, sizeof(why)), -EAGAIN);
    CHECK_EQ_INT(need, 1408 + 256);
    /* Table overlapping the superblock, bad magic, bad block size, short buffer. */
    make_image(buf, 1, 2);
    CHECK_EQ_INT(erofs_image_parse(buf, sizeof(buf), &info, &need, why, sizeof(why)), -EBADMSG);
    make_image(buf, 1, 11);
    buf[1024] ^= 1;
    CHECK_EQ_INT(erofs_image_parse(buf, sizeof(buf), &info, &need, why, sizeof(why)), -EBADMSG);
    CHECK(strstr(why, "magic") != NULL);
    make_image(buf, 1, 11);
    buf[1036] = 40;
    CHECK_EQ_INT(erofs_image_parse(buf, sizeof(buf), &info, &need, why, sizeof(why)), -EBADMSG);
    CHECK_EQ_INT(erofs_image_parse(buf, 1100, &info, &need, why, sizeof(why)), -EBADMSG);
    /* RAFS v5: its own magic at offset 0, no erofs superblock. */
    make_image(buf, 1, 11);
    memset(buf, 0, 2048);
    memcpy(buf, "SFAR", 4);
    CHECK_EQ_INT(erofs_image_parse(buf, sizeof(buf), &info, &need, why, sizeof(why)), -ENOTSUP);
    CHECK(strstr(why, "RAFS v5 is not supported (v6 only)") != NULL);
    /* A tag with control characters is refused (it becomes a cache path). */
    make_image(buf, 1, 11);
    buf[1408 + 2] = '\n';
    CHECK_EQ_INT(erofs_image_parse(buf, sizeof(buf), &info, &need, why, sizeof(why)), -EBADMSG);
}

int main(void)
{
    RUN(test_parse);
    return TEST_EXIT();
}
