/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The erofs inode walker of the fanotify front-end (which blocks of a plain
 * erofs image are file data). Input: a whole image, handed over as a memfd
 * since the walker preads. An accepted image's map stays inside the image.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cachefilesd-nydus/erofs_datamap.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;     /* harness state, reused across inputs */
    ErofsDataMap map;
    char why[256];

    if (fd < 0 && (fd = memfd_create("fuzz-erofs", MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    int r = erofs_datamap_build(fd, size, &map, why, sizeof(why));
    if (r < 0) {
        FUZZ_ASSERT(why[0] != '\0');
        FUZZ_ASSERT(map.data == NULL);
        fuzz_note("image rejected", why);
        return 0;
    }
    FUZZ_ASSERT(map.blocks == (size + 4095) / 4096);
    FUZZ_ASSERT(map.data_blocks <= map.blocks);
    uint64_t marked = 0;
    for (uint64_t b = 0; b < map.blocks; b++)
        marked += erofs_datamap_is_data(&map, b) ? 1 : 0;
    FUZZ_ASSERT(marked == map.data_blocks);
    erofs_datamap_clear(&map);
    return 0;
}
