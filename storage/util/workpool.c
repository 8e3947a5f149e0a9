/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "macros.h"

struct WorkPool {
    Loop *loop;
    WorkPoolHooks hooks;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    WorkItem *head, *tail;
    bool stopping;
    unsigned n_threads;
    pthread_t *threads;
};

static void item_done_on_loop(LoopPost *p)
{
    WorkItem *item = cfn_container_of(p, WorkItem, post);
    item->done(item);
}

static void *worker_main(void *arg)
{
    WorkPool *pool = arg;
    void *ctx = pool->hooks.ctx_new ? pool->hooks.ctx_new(pool->hooks.arg) : NULL;

    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->cond, &pool->lock);
        WorkItem *item = pool->head;
        if (item) {
            pool->head = item->next;
            if (!pool->head)
                pool->tail = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
        if (!item)
            break;
        item->work(item, ctx);
        loop_post(pool->loop, &item->post, item_done_on_loop);
    }
    if (pool->hooks.ctx_free)
        pool->hooks.ctx_free(ctx);
    return NULL;
}

int workpool_new(WorkPool **ret, Loop *loop, unsigned threads, const WorkPoolHooks *hooks)
{
    if (threads == 0)
        return -EINVAL;
    WorkPool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pool->loop = loop;
    if (hooks)
        pool->hooks = *hooks;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    pool->threads = calloc(threads, sizeof(*pool->threads));
    if (!pool->threads) {
        workpool_free(pool);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < threads; i++) {
        int r = pthread_create(&pool->threads[i], NULL, worker_main, pool);
        if (r != 0) {
            workpool_free(pool);
            return -r;
        }
        pool->n_threads++;
        /* Named so that `top -H` and perf tell the workers from the event loop. */
        char name[16];
        snprintf(name, sizeof(name), "cfn-worker-%u", i % 1000u);   /* 15 chars at most */
        pthread_setname_np(pool->threads[i], name);
    }
    *ret = pool;
    return 0;
}

WorkPool *workpool_free(WorkPool *pool)
{
    if (!pool)
        return NULL;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->cond);
    free(pool->threads);
    free(pool);
    return NULL;
}

void workpool_submit(WorkPool *pool, WorkItem *item)
{
    item->next = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->tail)
        pool->tail->next = item;
    else
        pool->head = item;
    pool->tail = item;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

unsigned workpool_threads(const WorkPool *pool) { return pool->n_threads; }
