/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "storage/util/loop.h"
#include "storage/util/macros.h"
#include "storage/util/workpool.h"
#include "test.h"

static int fired[4];
static int order[4], n_order;

typedef struct T { LoopTimer t; int id; } T;
static void on_t(LoopTimer *t)
{
    T *x = cfn_container_of(t, T, t);
    fired[x->id]++;
    order[n_order++] = x->id;
}

static void test_timers(void)
{
    Loop *loop;
    CHECK_EQ_INT(loop_new(&loop, 8), 0);
    T a = { .id = 0 }, b = { .id = 1 }, c = { .id = 2 };
    loop_timer_init(&a.t, on_t);
    loop_timer_init(&b.t, on_t);
    loop_timer_init(&c.t, on_t);
    loop_timer_arm(loop, &a.t, 30);
    loop_timer_arm(loop, &b.t, 10);
    loop_timer_arm(loop, &c.t, 20);
    loop_timer_cancel(loop, &c.t);
    uint64_t start = loop_now_ns();
    while (n_order < 2 && loop_now_ns() - start < 2000000000ull)
        loop_run_once(loop, 100);
    CHECK_EQ_INT(n_order, 2);
    CHECK_EQ_INT(order[0], 1);
    CHECK_EQ_INT(order[1], 0);
    CHECK_EQ_INT(fired[2], 0);
    CHECK(!loop_timer_armed(&a.t));
    loop_free(loop);
}

typedef struct Job { WorkItem item; int in, out, done_on_loop; } Job;
static void job_work(WorkItem *it, void *ctx) { Job *j = cfn_container_of(it, Job, item); j->out = j->in * 2; }
static void job_done(WorkItem *it) { cfn_container_of(it, Job, item)->done_on_loop = 1; }

static void test_workpool(void)
{
    Loop *loop;
    WorkPool *pool;
    CHECK_EQ_INT(loop_new(&loop, 8), 0);
    CHECK_EQ_INT(workpool_new(&pool, loop, 3, NULL), 0);
    Job jobs[100];
    for (int i = 0; i < 100; i++) {
        jobs[i] = (Job){ .in = i };
        jobs[i].item.work = job_work;
        jobs[i].item.done = job_done;
        workpool_submit(pool, &jobs[i].item);
    }
    int done = 0;
    uint64_t start = loop_now_ns();
    while (done < 100 && loop_now_ns() - start < 5000000000ull) {
        loop_run_once(loop, 50);
        done = 0;
        for (int i = 0; i < 100; i++)
            done += jobs[i].done_on_loop;
    }
    CHECK_EQ_INT(done, 100);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(jobs[i].out, 2 * i);
    workpool_free(pool);
    loop_free(loop);
}

int main(void)
{
    RUN(test_timers);
    RUN(test_workpool);
    return TEST_EXIT();
}
