/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's single event loop, on io_uring.
 *
 * Every asynchronous operation embeds a LoopOp whose callback runs on the
 * loop thread with the CQE result (>= 0 or -errno). The op's memory must stay
 * valid until its callback ran. Timers live in a user-space heap: the loop
 * waits for completions with a timeout equal to the nearest deadline, which
 * keeps arming and cancelling a timer free of kernel round trips.
 * loop_post() is the only function that may be called from other threads.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

typedef struct Loop Loop;
typedef struct LoopOp LoopOp;
typedef struct LoopTimer LoopTimer;
typedef struct LoopPost LoopPost;

struct LoopOp {
    void (*fn)(LoopOp *op, int res);
};

struct LoopTimer {
    void (*fn)(LoopTimer *t);
    uint64_t deadline_ns;
    size_t heap_index;          /* SIZE_MAX while not armed */
};

struct LoopPost {
    void (*fn)(LoopPost *p);
    LoopPost *next;
};

int loop_new(Loop **ret, unsigned queue_depth);
Loop *loop_free(Loop *loop);

/* One-shot poll; res is the revents mask. */
int loop_poll(Loop *loop, LoopOp *op, int fd, unsigned poll_mask);
int loop_read(Loop *loop, LoopOp *op, int fd, void *buf, unsigned len, uint64_t off);
int loop_write(Loop *loop, LoopOp *op, int fd, const void *buf, unsigned len, uint64_t off);
/*
 * openat(2) on io-wq, never inline: a hung network file system or a FIFO
 * cannot stall the loop. res is the new fd. `path` must stay valid until the
 * callback runs.
 */
int loop_openat(Loop *loop, LoopOp *op, int dirfd, const char *path, int flags);

void loop_timer_init(LoopTimer *t, void (*fn)(LoopTimer *t));
void loop_timer_arm(Loop *loop, LoopTimer *t, uint64_t delay_ms);
void loop_timer_cancel(Loop *loop, LoopTimer *t);
static inline bool loop_timer_armed(const LoopTimer *t) { return t->heap_index != SIZE_MAX; }

/* Thread-safe: queue fn to run on the loop thread soon. */
void loop_post(Loop *loop, LoopPost *p, void (*fn)(LoopPost *p));

/* Run until loop_quit(); returns 0 or -errno on a ring failure. */
int loop_run(Loop *loop);
void loop_quit(Loop *loop);
/* Run callbacks that are ready now, waiting at most timeout_ms; for tests. */
int loop_run_once(Loop *loop, int timeout_ms);

uint64_t loop_now_ns(void);
