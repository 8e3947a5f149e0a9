/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The plain-image data map on synthetic images: a small good one (the data
 * blocks of flat and chunk-based files), and a hostile one whose inodes
 * claim 63 times the image in 4 KiB chunks, each index array running over
 * the next inodes. Walking it must end at once with a reason, not cost one
 * read per chunk index per inode.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachefilesd-nydus/erofs_datamap.h"
#include "storage/util/macros.h"
#include "test.h"
#include "uapi/erofs.h"
#include "uapi/erofs_inode.h"

#define IMAGE_BLOCKS 256u                   /* 1 MiB */
#define META_BLK 1u
#define DIR_BLK 100u                        /* first directory block */
#define DIRENTS_PER_BLOCK (EROFS_BLKSIZ / sizeof(struct erofs_dirent_disk))

typedef struct Image {
    uint8_t *buf;
    uint32_t files;
} Image;

static void put_inode(Image *img, uint32_t nid, uint16_t layout, uint16_t mode, uint16_t xattrs, uint32_t size,
                      uint32_t u)
{
    struct erofs_inode_compact_disk ino = {
        .i_format = htole16((uint16_t)(layout << EROFS_I_DATALAYOUT_BIT)),
        .i_xattr_icount = htole16(xattrs),
        .i_mode = htole16(mode),
        .i_nlink = htole16(1),
        .i_size = htole32(size),
        .i_u = htole32(u),
    };
    memcpy(img->buf + META_BLK * EROFS_BLKSIZ + (size_t)nid * EROFS_ISLOT_SIZE, &ino, sizeof(ino));
}

/* Superblock and a root directory (nid 0, flat, at DIR_BLK) listing nids 1..files. */
static void image_init(Image *img, uint32_t files)
{
    img->buf = calloc(IMAGE_BLOCKS, EROFS_BLKSIZ);
    img->files = files;
    struct erofs_super_block_disk sb = {
        .magic = htole32(EROFS_SUPER_MAGIC_V1),
        .blkszbits = EROFS_BLKSIZ_BITS,
        .meta_blkaddr = htole32(META_BLK),
        .inos = htole64(files + 1),
        .blocks = htole32(IMAGE_BLOCKS),
    };
    memcpy(img->buf + EROFS_SUPER_OFFSET, &sb, sizeof(sb));
    uint32_t blocks = (files + DIRENTS_PER_BLOCK - 1) / DIRENTS_PER_BLOCK;
    put_inode(img, 0, EROFS_INODE_FLAT_PLAIN, S_IFDIR | 0755, 0, blocks * EROFS_BLKSIZ, DIR_BLK);
    for (uint32_t i = 0; i < files; i++) {
        uint32_t in_block = i % DIRENTS_PER_BLOCK;
        uint32_t here = CFN_MIN(files - (i - in_block), (uint32_t)DIRENTS_PER_BLOCK);
        struct erofs_dirent_disk de = {
            .nid = htole64(i + 1),
            .nameoff = htole16((uint16_t)(here * sizeof(de))),     /* names are not read */
        };
        memcpy(img->buf + (DIR_BLK + i / DIRENTS_PER_BLOCK) * EROFS_BLKSIZ + in_block * sizeof(de), &de, sizeof(de));
    }
}

static int walk(const Image *img, ErofsDataMap *map, char *why, size_t why_len)
{
    char path[] = "/tmp/cfn-datamap-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    CHECK(fd >= 0 && write(fd, img->buf, IMAGE_BLOCKS * EROFS_BLKSIZ) == IMAGE_BLOCKS * EROFS_BLKSIZ);
    int r = erofs_datamap_build(fd, IMAGE_BLOCKS * EROFS_BLKSIZ, map, why, why_len);
    close(fd);
    return r;
}

static void test_good_image(void)
{
    Image img;
    image_init(&img, 2);
    /* nid 1: flat, 3 blocks at 200. nid 2: chunk-based, 4 KiB chunks, 2 block addresses (hole, 210). */
    put_inode(&img, 1, EROFS_INODE_FLAT_PLAIN, S_IFREG | 0644, 0, 3 * EROFS_BLKSIZ - 5, 200);
    put_inode(&img, 2, EROFS_INODE_CHUNK_BASED, S_IFREG | 0644, 0, 2 * EROFS_BLKSIZ, 0);
    uint32_t addrs[2] = { htole32(EROFS_NULL_ADDR), htole32(210) };
    memcpy(img.buf + META_BLK * EROFS_BLKSIZ + 2 * EROFS_ISLOT_SIZE + sizeof(struct erofs_inode_compact_disk),
           addrs, sizeof(addrs));
    ErofsDataMap map;
    char why[256] = "";
    CHECK_EQ_INT(walk(&img, &map, why, sizeof(why)), 0);
    CHECK_EQ_INT(map.inodes, 3);
    CHECK_EQ_INT(map.data_blocks, 4);
    CHECK(erofs_datamap_is_data(&map, 200) && erofs_datamap_is_data(&map, 202) && erofs_datamap_is_data(&map, 210));
    CHECK(!erofs_datamap_is_data(&map, 203) && !erofs_datamap_is_data(&map, DIR_BLK));
    erofs_datamap_clear(&map);
    free(img.buf);
}

/*
 * 600 chunk-based inodes of 63 MiB each in 4 KiB chunks (8-byte indexes):
 * 16128 indexes per inode, each array starting inside the inode table and
 * running over the inodes after it. Their bytes decode as holes, other
 * devices or block 0, so nothing stops a walk that trusts the sizes.
 */
static void test_inodes_claiming_63x_the_image(void)
{
    Image img;
    image_init(&img, 600);
    for (uint32_t nid = 1; nid <= img.files; nid++)
        put_inode(&img, nid, EROFS_INODE_CHUNK_BASED, S_IFREG | 0644, 1, 63u * IMAGE_BLOCKS * EROFS_BLKSIZ,
                  EROFS_CHUNK_FORMAT_INDEXES);
    ErofsDataMap map;
    char why[256] = "";
    uint64_t t0 = test_now_ms();
    int r = walk(&img, &map, why, sizeof(why));
    uint64_t ms = test_now_ms() - t0;
    fprintf(stderr, "600 inodes of 63x the image: %d after %llu ms: %s\n", r, (unsigned long long)ms, why);
    CHECK_EQ_INT(r, -EBADMSG);
    CHECK(strstr(why, "chunk indexes take the metadata walked past the 1048576-byte image") != NULL);
    CHECK(ms < 1000);
    if (r == 0)
        erofs_datamap_clear(&map);
    free(img.buf);
}

int main(void)
{
    RUN(test_good_image);
    RUN(test_inodes_claiming_63x_the_image);
    return TEST_EXIT();
}
