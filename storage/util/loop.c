/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "loop.h"

#include <liburing.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "log.h"
#include "macros.h"

#define LOOP_ASYNC_READ_MIN (64u * 1024)

struct Loop {
    struct io_uring ring;
    bool ring_ok;
    bool quit;
    unsigned pending_sqes;

    LoopTimer **heap;
    size_t heap_len, heap_cap;

    /* Cross-thread posts: a locked LIFO list plus an eventfd to wake us. */
    pthread_mutex_t post_lock;
    LoopPost *posts;
    int post_efd;
    uint64_t post_efd_buf;
    LoopOp post_op;
    bool post_armed;
};

uint64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct io_uring_sqe *loop_get_sqe(Loop *loop)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
    if (!sqe) {
        /* Queue full: flush what we have and try once more. */
        io_uring_submit(&loop->ring);
        loop->pending_sqes = 0;
        sqe = io_uring_get_sqe(&loop->ring);
    }
    if (sqe)
        loop->pending_sqes++;
    return sqe;
}

int loop_poll(Loop *loop, LoopOp *op, int fd, unsigned poll_mask)
{
    struct io_uring_sqe *sqe = loop_get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_add(sqe, fd, poll_mask);
    io_uring_sqe_set_data(sqe, op);
    return 0;
}

int loop_read(Loop *loop, LoopOp *op, int fd, void *buf, unsigned len, uint64_t off)
{
    struct io_uring_sqe *sqe = loop_get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, len, off);
    /* A read served from the page cache completes inside io_uring_enter(), so
     * the loop thread itself would copy it; large ones go to io-wq instead. */
    if (len >= LOOP_ASYNC_READ_MIN)
        sqe->flags |= IOSQE_ASYNC;
    io_uring_sqe_set_data(sqe, op);
    return 0;
}

int loop_write(Loop *loop, LoopOp *op, int fd, const void *buf, unsigned len, uint64_t off)
{
    struct io_uring_sqe *sqe = loop_get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_write(sqe, fd, buf, len, off);
    io_uring_sqe_set_data(sqe, op);
    return 0;
}

int loop_openat(Loop *loop, LoopOp *op, int dirfd, const char *path, int flags)
{
    struct io_uring_sqe *sqe = loop_get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_openat(sqe, dirfd, path, flags, 0);
    sqe->flags |= IOSQE_ASYNC;
    io_uring_sqe_set_data(sqe, op);
    return 0;
}

/* ---- timer heap (min-heap on deadline) ---- */

static void heap_swap(Loop *loop, size_t a, size_t b)
{
    LoopTimer *t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_index = a;
    loop->heap[b]->heap_index = b;
}

static void heap_up(Loop *loop, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->deadline_ns <= loop->heap[i]->deadline_ns)
            break;
        heap_swap(loop, i, parent);
        i = parent;
    }
}

static void heap_down(Loop *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len && loop->heap[l]->deadline_ns < loop->heap[m]->deadline_ns)
            m = l;
        if (r < loop->heap_len && loop->heap[r]->deadline_ns < loop->heap[m]->deadline_ns)
            m = r;
        if (m == i)
            return;
        heap_swap(loop, i, m);
        i = m;
    }
}

void loop_timer_init(LoopTimer *t, void (*fn)(LoopTimer *t))
{
    t->fn = fn;
    t->deadline_ns = 0;
    t->heap_index = SIZE_MAX;
}

void loop_timer_cancel(Loop *loop, LoopTimer *t)
{
    size_t i = t->heap_index;
    if (i == SIZE_MAX)
        return;
    size_t last = --loop->heap_len;
    if (i != last) {
        heap_swap(loop, i, last);
        heap_up(loop, i);
        heap_down(loop, i);
    }
    t->heap_index = SIZE_MAX;
}

void loop_timer_arm(Loop *loop, LoopTimer *t, uint64_t delay_ms)
{
    loop_timer_cancel(loop, t);
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        LoopTimer **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h) {
            /* Out of memory: fire on the next iteration rather than never. */
            log_error("loop: cannot grow timer heap, firing timer early");
            delay_ms = 0;
            if (!loop->heap_cap)
                return;
        } else {
            loop->heap = h;
            loop->heap_cap = cap;
        }
    }
    t->deadline_ns = loop_now_ns() + delay_ms * 1000000ull;
    t->heap_index = loop->heap_len;
    loop->heap[loop->heap_len++] = t;
    heap_up(loop, t->heap_index);
}

static void loop_fire_timers(Loop *loop)
{
    uint64_t now = loop_now_ns();
    while (loop->heap_len && loop->heap[0]->deadline_ns <= now) {
        LoopTimer *t = loop->heap[0];
        loop_timer_cancel(loop, t);
        t->fn(t);
    }
}

/* ---- cross-thread posts ---- */

static void post_arm(Loop *loop);

static void post_ready(LoopOp *op, int res)
{
    Loop *loop = cfn_container_of(op, Loop, post_op);
    loop->post_armed = false;

    pthread_mutex_lock(&loop->post_lock);
    LoopPost *list = loop->posts;
    loop->posts = NULL;
    pthread_mutex_unlock(&loop->post_lock);

    /* Reverse the LIFO list so posts run in submission order. */
    LoopPost *ordered = NULL;
    while (list) {
        LoopPost *next = list->next;
        list->next = ordered;
        ordered = list;
        list = next;
    }
    while (ordered) {
        LoopPost *next = ordered->next;
        ordered->fn(ordered);
        ordered = next;
    }
    if (res < 0 && res != -EAGAIN)
        log_error("loop: eventfd read failed: %s", strerror(-res));
    post_arm(loop);
}

static void post_arm(Loop *loop)
{
    if (loop->post_armed)
        return;
    if (loop_read(loop, &loop->post_op, loop->post_efd, &loop->post_efd_buf,
                  sizeof(loop->post_efd_buf), 0) == 0)
        loop->post_armed = true;
}

void loop_post(Loop *loop, LoopPost *p, void (*fn)(LoopPost *p))
{
    p->fn = fn;
    pthread_mutex_lock(&loop->post_lock);
    p->next = loop->posts;
    loop->posts = p;
    pthread_mutex_unlock(&loop->post_lock);
    uint64_t one = 1;
    ssize_t w _unused_ = write(loop->post_efd, &one, sizeof(one));
}

/* ---- lifecycle ---- */

int loop_new(Loop **ret, unsigned queue_depth)
{
    Loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    pthread_mutex_init(&loop->post_lock, NULL);
    loop->post_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->post_efd < 0) {
        int r = -errno;
        loop_free(loop);
        return r;
    }
    int r = io_uring_queue_init(queue_depth, &loop->ring, 0);
    if (r < 0) {
        loop_free(loop);
        return r;
    }
    loop->ring_ok = true;
    loop->post_op.fn = post_ready;
    post_arm(loop);
    *ret = loop;
    return 0;
}

Loop *loop_free(Loop *loop)
{
    if (!loop)
        return NULL;
    if (loop->ring_ok)
        io_uring_queue_exit(&loop->ring);
    if (loop->post_efd >= 0)
        close(loop->post_efd);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop->heap);
    free(loop);
    return NULL;
}

void loop_quit(Loop *loop) { loop->quit = true; }

int loop_run_once(Loop *loop, int timeout_ms)
{
    /* No check of `quit` here: shutdown drains in-flight work through this call. */
    loop_fire_timers(loop);

    uint64_t wait_ns = timeout_ms < 0 ? UINT64_MAX : (uint64_t)timeout_ms * 1000000ull;
    if (loop->heap_len) {
        uint64_t now = loop_now_ns(), d = loop->heap[0]->deadline_ns;
        wait_ns = CFN_MIN(wait_ns, d > now ? d - now : 0);
    }
    struct io_uring_cqe *cqe = NULL;
    int r;
    if (wait_ns == UINT64_MAX) {
        r = io_uring_submit_and_wait(&loop->ring, 1);
    } else {
        struct __kernel_timespec ts = { .tv_sec = (long long)(wait_ns / 1000000000ull),
                                        .tv_nsec = (long long)(wait_ns % 1000000000ull) };
        r = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &ts, NULL);
    }
    loop->pending_sqes = 0;
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
        return r;

    /* Reap a batch; callbacks may queue new SQEs, submitted next round. */
    unsigned head, seen = 0;
    LoopOp *batch[64];
    int results[64];
    io_uring_for_each_cqe(&loop->ring, head, cqe) {
        batch[seen] = io_uring_cqe_get_data(cqe);
        results[seen] = cqe->res;
        if (++seen == CFN_ARRAY_SIZE(batch))
            break;
    }
    io_uring_cq_advance(&loop->ring, seen);
    for (unsigned i = 0; i < seen; i++)
        if (batch[i])
            batch[i]->fn(batch[i], results[i]);

    loop_fire_timers(loop);
    return 0;
}

int loop_run(Loop *loop)
{
    while (!loop->quit) {
        int r = loop_run_once(loop, -1);
        if (r < 0) {
            log_error("loop: io_uring wait failed: %s", strerror(-r));
            return r;
        }
    }
    return 0;
}
