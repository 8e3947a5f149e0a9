/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <stdatomic.h>

#include "cpu.h"

/* Bit 31 marks "resolved", so 0 can mean "not looked at yet". */
#define CPU_RESOLVED (1u << 31)

static unsigned cpu_detect(void)
{
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc's cpuinfo already checks XCR0, so AVX2 here means usable. */
    if (__builtin_cpu_supports("sse4.1"))
        f |= CODEC_CPU_SSE41;
    if (__builtin_cpu_supports("sse4.2"))
        f |= CODEC_CPU_SSE42;
    if (__builtin_cpu_supports("pclmul"))
        f |= CODEC_CPU_PCLMUL;
    if (__builtin_cpu_supports("avx2"))
        f |= CODEC_CPU_AVX2;
#endif
    return f;
}

unsigned codec_cpu_features(void)
{
    /* The one process-wide cache: the value never changes once computed. */
    static atomic_uint cached;
    unsigned v = atomic_load_explicit(&cached, memory_order_relaxed);

    if (!(v & CPU_RESOLVED)) {
        v = cpu_detect() | CPU_RESOLVED;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v & ~CPU_RESOLVED;
}
