/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Small helpers used everywhere: cleanup attributes, alignment, container_of. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define CFN_PAGE_SIZE 4096u

#define cfn_container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#define CFN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CFN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CFN_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline uint64_t cfn_align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static inline uint64_t cfn_align_down(uint64_t v, uint64_t a) { return v / a * a; }

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _must_check_ __attribute__((warn_unused_result))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static inline void cfn_freep(void *p) { free(*(void **)p); }
static inline void cfn_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
#define _cleanup_free_ _cleanup_(cfn_freep)
#define _cleanup_close_ _cleanup_(cfn_closep)

/* Hand ownership out of a _cleanup_ variable. */
#define CFN_TAKE_PTR(p) ({ __typeof__(p) _t = (p); (p) = NULL; _t; })
#define CFN_TAKE_FD(fd) ({ int _t = (fd); (fd) = -1; _t; })

/* Add a+b into *r; true on overflow. */
#define cfn_add_overflow(a, b, r) __builtin_add_overflow(a, b, r)
