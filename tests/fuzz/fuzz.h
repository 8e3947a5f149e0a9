/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* What every fuzz target exports; replay-main.c drives it without libFuzzer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a finding: crash loudly so libFuzzer saves the input. */
#define FUZZ_ASSERT(cond)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* FUZZ_VERBOSE=1: say why each input was rejected (for checking seeds). */
static inline void fuzz_note(const char *what, const char *why)
{
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "%s: %s\n", what, why);
}
