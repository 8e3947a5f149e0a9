/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Logging: one line per write(2), so lines from worker threads never
 * interleave. The level and the output fd are the only process-wide state
 * (set once at start-up, before any thread exists).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macros.h"

enum cfn_log_level { CFN_LOG_ERROR, CFN_LOG_WARN, CFN_LOG_INFO, CFN_LOG_DEBUG };

void cfn_log_set_level(enum cfn_log_level level);
enum cfn_log_level cfn_log_get_level(void);
void cfn_log_set_fd(int fd);
int cfn_log_level_parse(const char *s, enum cfn_log_level *out);

void cfn_log(enum cfn_log_level level, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) cfn_log(CFN_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  cfn_log(CFN_LOG_WARN, __VA_ARGS__)
#define log_info(...)  cfn_log(CFN_LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (cfn_log_get_level() >= CFN_LOG_DEBUG) cfn_log(CFN_LOG_DEBUG, __VA_ARGS__); } while (0)

/*
 * A warning that can repeat as fast as its cause (e.g. EMFILE on every
 * retry) goes through a rate limit: at most one line per interval, the next
 * one saying how many were suppressed. Not thread-safe: one owner thread.
 */
typedef struct CfnRateLimit {
    uint64_t interval_ms;
    uint64_t last_ns;
    unsigned suppressed;
} CfnRateLimit;

/* true: log now, with *suppressed the number dropped since the last line. */
bool cfn_ratelimit_pass(CfnRateLimit *rl, unsigned *suppressed);
