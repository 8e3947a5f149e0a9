/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum cfn_log_level log_level = CFN_LOG_INFO;
static int log_fd = STDERR_FILENO;

void cfn_log_set_level(enum cfn_log_level level) { log_level = level; }
enum cfn_log_level cfn_log_get_level(void) { return log_level; }
void cfn_log_set_fd(int fd) { log_fd = fd; }

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int cfn_log_level_parse(const char *s, enum cfn_log_level *out)
{
    for (size_t i = 0; i < CFN_ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum cfn_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void cfn_log(enum cfn_log_level level, const char *fmt, ...)
{
    int saved = errno;
    if (level > log_level)
        goto out;

    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : CFN_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
    line[len++] = '\n';
    /* One write per line keeps lines whole across threads. */
    ssize_t w _unused_ = write(log_fd, line, len);
out:
    errno = saved;
}

bool cfn_ratelimit_pass(CfnRateLimit *rl, unsigned *suppressed)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (rl->last_ns && now - rl->last_ns < rl->interval_ms * 1000000ull) {
        rl->suppressed++;
        return false;
    }
    rl->last_ns = now;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}
