/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "storage/cache/cache_file.h"
#include "storage/device/blob.h"
#include "test.h"

static void test_raw_mapping(void)
{
    BlobInfo *b;
    CHECK_EQ_INT(blob_info_new_raw(&b, "raw", 3 * 65536 + 100, 65536), 0);
    CHECK_EQ_INT(b->chunk_count, 4);
    CHECK_EQ_INT(b->chunks[3].uncompressed_size, 100);
    CHECK_EQ_INT(blob_find_chunk(b, 0), 0);
    CHECK_EQ_INT(blob_find_chunk(b, 65535), 0);
    CHECK_EQ_INT(blob_find_chunk(b, 65536), 1);
    CHECK_EQ_INT(blob_find_chunk(b, 3 * 65536 + 99), 3);
    CHECK_EQ_INT(blob_find_chunk(b, 3 * 65536 + 100), -ENOENT);

    BlobIoVec v = { 0 };
    CHECK_EQ_INT(blob_iovec_build(&v, b, 65000, 60000), 0);
    CHECK_EQ_INT(v.count, 2);
    CHECK_EQ_INT(v.descs[0].chunk_index, 0);
    CHECK_EQ_INT(v.descs[0].offset, 65000);
    CHECK_EQ_INT(v.descs[0].size, 536);
    CHECK_EQ_INT(v.descs[1].chunk_index, 1);
    CHECK_EQ_INT(v.descs[1].size, 60000 - 536);
    CHECK_EQ_INT(blob_iovec_build(&v, b, 3 * 65536, 4097), -ERANGE);   /* past the 4 KiB-rounded end */
    CHECK_EQ_INT(blob_iovec_build(&v, b, UINT64_MAX, 2), -ERANGE);
    blob_iovec_clear(&v);

    char why[128];
    CHECK_EQ_INT(blob_info_validate(b, why, sizeof(why)), 0);
    b->chunks[2].uncompressed_offset += 4096;    /* overlaps chunk 3 */
    CHECK_EQ_INT(blob_info_validate(b, why, sizeof(why)), -EINVAL);
    b->chunks[2].uncompressed_offset -= 4096 - 512;   /* unaligned */
    CHECK_EQ_INT(blob_info_validate(b, why, sizeof(why)), -EINVAL);
    CHECK(strstr(why, "aligned") != NULL);
    blob_info_free(b);
    CHECK_EQ_INT(blob_info_new_raw(&b, "raw", 100, 1000), -EINVAL);
}

/* Like the nydus fixture: chunks of 16931 and 13400 bytes at 0 and 0x5000. */
static void test_padding_between_chunks(void)
{
    BlobInfo *b;
    CHECK_EQ_INT(blob_info_new(&b, "fx", 2), 0);
    b->uncompressed_size = 0x5000 + 13400;
    b->chunk_size = 1 << 20;
    b->chunks[0] = (BlobChunkInfo){ .uncompressed_offset = 0, .uncompressed_size = 16931 };
    b->chunks[1] = (BlobChunkInfo){ .uncompressed_offset = 0x5000, .uncompressed_size = 13400 };
    BlobIoVec v = { 0 };
    CHECK_EQ_INT(blob_iovec_build(&v, b, 0x4000, 0x1000), 0);     /* last page of chunk 0 */
    CHECK_EQ_INT(v.count, 1);
    CHECK_EQ_INT(v.descs[0].offset, 0x4000);
    CHECK_EQ_INT(v.descs[0].size, 16931 - 0x4000);
    CHECK_EQ_INT(blob_iovec_build(&v, b, 0, 0x9000), 0);          /* everything, padding included */
    CHECK_EQ_INT(v.count, 2);
    CHECK_EQ_INT(v.descs[1].chunk_index, 1);
    CHECK_EQ_INT(v.descs[1].size, 13400);
    CHECK_EQ_INT(blob_iovec_build(&v, b, 0x9000, 0x1000), -ERANGE);
    b->chunks[1].uncompressed_offset = 0x6000;                     /* a real gap at 0x5000 */
    CHECK_EQ_INT(blob_iovec_build(&v, b, 0x5000, 0x1000), -ERANGE);
    blob_iovec_clear(&v);
    blob_info_free(b);
}

static void test_scan_ready(void)
{
    char path[] = "/tmp/cfn-scan-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    BlobInfo *b;
    CHECK_EQ_INT(blob_info_new_raw(&b, "raw", 8 * 65536 - 10, 65536), 0);
    CHECK_EQ_INT(ftruncate(fd, 8 * 65536), 0);
    uint8_t *buf = cache_buf_alloc(65536);
    memset(buf, 0xab, 65536);
    CHECK_EQ_INT(cache_file_write(fd, buf, 65536, 2 * 65536), 0);
    CHECK_EQ_INT(cache_file_write(fd, buf, 65536, 7 * 65536), 0);
    CHECK_EQ_INT(cache_file_write(fd, buf, 4096, 4 * 65536), 0);   /* partial chunk 4 */
    CHECK_EQ_INT(cache_file_write(fd, buf, 100, 0), -EINVAL);      /* unaligned length */
    SegArray ready;
    CHECK_EQ_INT(seg_array_init(&ready, b->chunk_count, 1), 0);
    int n = cache_file_scan_ready(fd, b, &ready);
    /* ext4/xfs/tmpfs report holes; a filesystem without SEEK_HOLE shows all data. */
    if (n != 8) {
        CHECK_EQ_INT(n, 2);
        CHECK(seg_array_u8(&ready, 2) && seg_array_u8(&ready, 7) && !seg_array_u8(&ready, 0) &&
              !seg_array_u8(&ready, 4));
    }
    free(buf);
    /* A file that answers 0 to every seek (a character device) must not loop forever. */
    int null_fd = open("/dev/null", O_RDWR);
    seg_array_reset(&ready);
    CHECK(cache_file_scan_ready(null_fd, b, &ready) < 0);
    close(null_fd);
    seg_array_clear(&ready);
    blob_info_free(b);
    close(fd);
}

/*
 * A raw blob declared far larger than its object (a device slot saying
 * 0xffffffff blocks, 16 TiB, over a 1 MiB object): the chunk table follows
 * the object, reads past its whole blocks map to nothing.
 */
static void test_raw_cut(void)
{
    BlobInfo *b;
    uint64_t declared = 0xffffffffull * 4096;
    long rss0 = test_peak_rss_kib();
    CHECK_EQ_INT(blob_info_new_raw_cut(&b, "cut", declared, (1 << 20) + 100, 65536), 0);
    CHECK(test_peak_rss_kib() - rss0 < 4096);
    CHECK_EQ_INT(b->uncompressed_size, declared);
    CHECK(b->cut);
    CHECK_EQ_INT(b->cut_at, 1 << 20);               /* the cut block is not served as zeros */
    CHECK_EQ_INT(b->chunk_count, 16);
    CHECK_EQ_INT(blob_readable_end(b), 1 << 20);
    char why[160];
    CHECK_EQ_INT(blob_info_validate(b, why, sizeof(why)), 0);
    BlobIoVec v = { 0 };
    CHECK_EQ_INT(blob_iovec_build(&v, b, (1 << 20) - 4096, 4096), 0);
    CHECK_EQ_INT(blob_iovec_build(&v, b, 1 << 20, 4096), -ERANGE);
    blob_iovec_clear(&v);
    blob_info_free(b);
    /* An object at least as large as the declaration is whole. */
    CHECK_EQ_INT(blob_info_new_raw_cut(&b, "whole", 8192, 9000, 4096), 0);
    CHECK(!b->cut);
    CHECK_EQ_INT(b->chunk_count, 2);
    blob_info_free(b);
    /* Less than one block left: nothing is mapped, and it is still a cut blob. */
    CHECK_EQ_INT(blob_info_new_raw_cut(&b, "tiny", 8192, 100, 4096), 0);
    CHECK(b->cut);
    CHECK_EQ_INT(b->chunk_count, 0);
    CHECK_EQ_INT(blob_readable_end(b), 0);
    blob_info_free(b);
}

/* Per-chunk state for 16M chunks costs nothing until touched, then one segment. */
static void test_seg_array(void)
{
    SegArray a;
    long rss0 = test_peak_rss_kib();
    CHECK_EQ_INT(seg_array_init(&a, 1u << 24, sizeof(void *)), 0);
    CHECK_EQ_INT(seg_array_bytes(&a), 0);
    CHECK(seg_array_ptr(&a, 12345678) == NULL);
    CHECK_EQ_INT(seg_array_set_ptr(&a, 12345678, NULL), 0);
    CHECK_EQ_INT(seg_array_bytes(&a), 0);
    CHECK_EQ_INT(seg_array_set_ptr(&a, 12345678, &a), 0);
    CHECK(seg_array_ptr(&a, 12345678) == &a);
    CHECK(seg_array_ptr(&a, 12345677) == NULL);
    CHECK_EQ_INT(seg_array_bytes(&a), SEG_ARRAY_SEGMENT * sizeof(void *));
    CHECK_EQ_INT(seg_array_set_ptr(&a, 1u << 24, &a), -ERANGE);
    CHECK(test_peak_rss_kib() - rss0 < 1024);
    seg_array_reset(&a);
    CHECK(seg_array_ptr(&a, 12345678) == NULL);
    seg_array_clear(&a);
    SegArray u, c;
    CHECK_EQ_INT(seg_array_init(&u, 10, 1), 0);
    CHECK_EQ_INT(seg_array_init(&c, 10, 1), 0);
    CHECK_EQ_INT(seg_array_set_u8(&u, 3, 1), 0);
    CHECK_EQ_INT(seg_array_copy(&c, &u), 0);
    CHECK_EQ_INT(seg_array_u8(&c, 3), 1);
    CHECK_EQ_INT(seg_array_u8(&c, 4), 0);
    seg_array_clear(&c);
    CHECK_EQ_INT(seg_array_init(&c, 11, 1), 0);
    CHECK_EQ_INT(seg_array_copy(&c, &u), -EINVAL);
    seg_array_clear(&c);
    CHECK_EQ_INT(seg_array_set_u8(&u, 9, 2), 0);
    CHECK_EQ_INT(seg_array_u8(&u, 9), 2);
    CHECK_EQ_INT(seg_array_u8(&u, 8), 0);
    CHECK_EQ_INT(seg_array_u8(&u, 10), 0);
    seg_array_clear(&u);
}

int main(void)
{
    RUN(test_raw_cut);
    RUN(test_seg_array);
    RUN(test_raw_mapping);
    RUN(test_padding_between_chunks);
    RUN(test_scan_ready);
    return TEST_EXIT();
}
