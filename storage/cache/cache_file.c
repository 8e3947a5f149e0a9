/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "cache_file.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/util/macros.h"

void *cache_buf_alloc(size_t len)
{
    size_t n = cfn_align_up(len ? len : 1, CFN_PAGE_SIZE);
    void *p = NULL;
    if (posix_memalign(&p, CFN_PAGE_SIZE, n) != 0)
        return NULL;
    /* Callers fill [0, len); only the padding must be zero. */
    memset((uint8_t *)p + len, 0, n - len);
    return p;
}

int cache_file_write(int fd, const void *buf, size_t len, uint64_t off)
{
    if (off % CFN_PAGE_SIZE || len % CFN_PAGE_SIZE || (uintptr_t)buf % CFN_PAGE_SIZE)
        return -EINVAL;     /* the kernel would silently move an unaligned write */
    const uint8_t *p = buf;
    unsigned enobufs_tries = 0;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            int r = -errno;
            if (r == -EINTR)
                continue;
            /* Right after copen the kernel may not have attached the file yet. */
            if (r == -ENOBUFS && enobufs_tries < 12) {
                struct timespec ts = { 0, (long)(5000000l << CFN_MIN(enobufs_tries, 6u)) };
                nanosleep(&ts, NULL);
                enobufs_tries++;
                continue;
            }
            return r;
        }
        if (n == 0)
            return -EIO;
        /* Older kernels report page-rounded lengths; never step past the request. */
        size_t step = CFN_MIN((size_t)n, len);
        step = cfn_align_down(step, CFN_PAGE_SIZE);
        if (step == 0)
            return -EIO;
        p += step;
        off += step;
        len -= step;
    }
    return 0;
}

int cache_file_scan_ready(int fd, const BlobInfo *blob, SegArray *ready)
{
    int count = 0;
    uint32_t i = 0;
    while (i < blob->chunk_count) {
        const BlobChunkInfo *c = &blob->chunks[i];
        off_t data = lseek(fd, (off_t)c->uncompressed_offset, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)
                break;      /* no data from here to the end */
            return -errno;
        }
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        /* Files that ignore SEEK_DATA/SEEK_HOLE (character devices answer 0) tell nothing. */
        if ((uint64_t)data < c->uncompressed_offset || hole <= data)
            return -EOPNOTSUPP;
        /* Every chunk wholly inside [data, hole) is ready. */
        for (; i < blob->chunk_count; i++) {
            const BlobChunkInfo *ci = &blob->chunks[i];
            uint64_t end = ci->uncompressed_offset + cfn_align_up(ci->uncompressed_size, CFN_PAGE_SIZE);
            if (end > (uint64_t)hole)
                break;
            if (ci->uncompressed_offset >= (uint64_t)data) {
                if (seg_array_set_u8(ready, i, 1) < 0)
                    return -ENOMEM;
                count++;
            }
        }
        /* Chunks that straddle the hole are not ready; resume after it. */
        while (i < blob->chunk_count && blob->chunks[i].uncompressed_offset < (uint64_t)hole)
            i++;
    }
    return count;
}
