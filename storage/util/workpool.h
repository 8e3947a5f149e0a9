/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A small pool of worker threads for CPU work and blocking cache writes.
 * work() runs on a worker with that worker's private context (codec state,
 * buffers); done() then runs on the loop thread. The queue is unbounded by
 * design: callers bound it by bounding what they have in flight.
 */
#pragma once

#include "loop.h"

typedef struct WorkPool WorkPool;
typedef struct WorkItem WorkItem;

struct WorkItem {
    void (*work)(WorkItem *item, void *worker_ctx);
    void (*done)(WorkItem *item);
    WorkItem *next;
    LoopPost post;
};

typedef struct WorkPoolHooks {
    /* Create/free a worker's private context; may be NULL. */
    void *(*ctx_new)(void *arg);
    void (*ctx_free)(void *ctx);
    void *arg;
} WorkPoolHooks;

int workpool_new(WorkPool **ret, Loop *loop, unsigned threads, const WorkPoolHooks *hooks);
/* Stops the threads after the queued items ran; done() of those still runs on the next loop turn. */
WorkPool *workpool_free(WorkPool *pool);
void workpool_submit(WorkPool *pool, WorkItem *item);
unsigned workpool_threads(const WorkPool *pool);
