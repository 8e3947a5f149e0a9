/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "storage/util/log.h"
#include "storage/util/macros.h"

typedef struct ControlConn {
    ControlRequest req;             /* first: the handler gets &conn->req */
    ControlServer *srv;
    int fd;
    LoopOp poll_op;
    LoopTimer deadline;
    bool dispatched;
    struct ControlConn *prev, *next;
    char buf[CONTROL_MAX_MSG + 1];
} ControlConn;

struct ControlServer {
    Loop *loop;
    int fd;
    int reserve_fd;                 /* given up to accept one connection when out of fds */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    ControlHandler fn;
    void *ctx;
    LoopOp accept_op;
    LoopTimer retry;
    ControlConn *conns;             /* every connection being read or handled */
    unsigned n_conns;
    bool accept_armed;
    bool closing;
    CfnRateLimit accept_warn;
};

static void accept_arm(ControlServer *srv);

static int make_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, strlen(path));
    return 0;
}

static int reserve_open(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

static void reserve_restore(ControlServer *srv)
{
    if (srv->reserve_fd < 0)
        srv->reserve_fd = reserve_open();
}

static void conn_unlink(ControlConn *c)
{
    ControlServer *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
}

static void conn_free(ControlConn *c)
{
    ControlServer *srv = c->srv;
    loop_timer_cancel(srv->loop, &c->deadline);
    if (c->fd >= 0)
        close(c->fd);
    conn_unlink(c);
    reserve_restore(srv);           /* ours back, or one lost to a race retaken */
    free(c);
    accept_arm(srv);
}

/* One small datagram into an empty socket buffer: never blocks. */
static void send_reply(int fd, pid_t pid, int status, const char *fmt, va_list ap)
{
    char msg[CONTROL_MAX_MSG];
    int n = snprintf(msg, sizeof(msg), "%d\n", status);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    if (send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        int r = errno;
        log_warn("control: reply to pid %d lost: %s", (int)pid, strerror(r));
    }
}

static void reply_fd(int fd, pid_t pid, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void reply_fd(int fd, pid_t pid, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_reply(fd, pid, status, fmt, ap);
    va_end(ap);
}

void control_reply(ControlRequest *req, int status, const char *fmt, ...)
{
    ControlConn *c = cfn_container_of(req, ControlConn, req);
    va_list ap;
    va_start(ap, fmt);
    send_reply(c->fd, req->pid, status, fmt, ap);
    va_end(ap);
    conn_free(c);
}

static void conn_deadline(LoopTimer *t)
{
    ControlConn *c = cfn_container_of(t, ControlConn, deadline);
    if (c->dispatched)
        return;
    log_warn("control: client pid %d sent no request within %d ms", (int)c->req.pid, CONTROL_RECV_TIMEOUT_MS);
    /* The poll op still references c: shutting the socket down completes it. */
    shutdown(c->fd, SHUT_RDWR);
}

/* Split the NUL-separated arguments in c->buf (n bytes); false: answered with an error. */
static bool conn_parse(ControlConn *c, size_t n)
{
    c->buf[n] = '\0';
    /* The last argument may or may not carry its NUL. */
    size_t len = n;
    if (len && c->buf[len - 1] == '\0')
        len--;
    c->req.argc = 0;
    for (size_t i = 0; i <= len;) {
        if (c->req.argc == CONTROL_MAX_ARGS) {
            control_reply(&c->req, -E2BIG, "more than %d arguments", CONTROL_MAX_ARGS);
            return false;
        }
        c->req.argv[c->req.argc++] = &c->buf[i];
        i += strlen(&c->buf[i]) + 1;
    }
    c->req.argv[c->req.argc] = NULL;
    return true;
}

static void conn_readable(LoopOp *op, int res)
{
    ControlConn *c = cfn_container_of(op, ControlConn, poll_op);
    ControlServer *srv = c->srv;
    if (res < 0 || srv->closing) {
        conn_free(c);
        return;
    }
    ssize_t n = recv(c->fd, c->buf, CONTROL_MAX_MSG, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        c->poll_op.fn = conn_readable;
        if (loop_poll(srv->loop, &c->poll_op, c->fd, POLLIN) < 0)
            conn_free(c);
        return;
    }
    loop_timer_cancel(srv->loop, &c->deadline);
    if (n <= 0) {
        conn_free(c);
        return;
    }
    c->dispatched = true;
    if (n > CONTROL_MAX_MSG) {
        control_reply(&c->req, -EMSGSIZE, "request longer than %d bytes", CONTROL_MAX_MSG);
        return;
    }
    if (conn_parse(c, (size_t)n))
        srv->fn(srv->ctx, &c->req);
}

static void accept_warn(ControlServer *srv, int err)
{
    unsigned dropped;
    if (!cfn_ratelimit_pass(&srv->accept_warn, &dropped))
        return;
    if (dropped)
        log_warn("control: accept: %s (%u more since the last warning)", strerror(err), dropped);
    else
        log_warn("control: accept: %s", strerror(err));
}

/* Out of file descriptors: give up the reserve for this one connection. */
static int accept_with_reserve(ControlServer *srv)
{
    if (srv->reserve_fd < 0)
        return -EMFILE;
    close(srv->reserve_fd);
    srv->reserve_fd = -1;
    int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        reserve_restore(srv);
        return r;
    }
    return fd;
}

/* A new connection: check the peer, then wait for its request (or answer busy). */
static void conn_start(ControlServer *srv, int fd)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        log_warn("control: refused a client (uid %d)", cl == sizeof(cred) ? (int)cred.uid : -1);
        close(fd);
        reserve_restore(srv);
        return;
    }
    ControlConn *c = srv->n_conns < CONTROL_MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        reply_fd(fd, cred.pid, -EBUSY, "the daemon is busy: %u control requests in progress", srv->n_conns);
        /* Closing with the request unread would make the client's recv fail ECONNRESET, reply unread. */
        for (int i = 0; i < 4 && recv(fd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC) >= 0; i++)
            ;
        close(fd);
        reserve_restore(srv);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->req.uid = cred.uid;
    c->req.pid = cred.pid;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    loop_timer_init(&c->deadline, conn_deadline);
    loop_timer_arm(srv->loop, &c->deadline, CONTROL_RECV_TIMEOUT_MS);
    c->poll_op.fn = conn_readable;
    if (loop_poll(srv->loop, &c->poll_op, fd, POLLIN) < 0)
        conn_free(c);
}

static void accept_ready(LoopOp *op, int res)
{
    ControlServer *srv = cfn_container_of(op, ControlServer, accept_op);
    srv->accept_armed = false;
    if (srv->closing)
        return;
    reserve_restore(srv);
    /* Bounded, so that a flood of connections cannot keep the loop here. */
    for (int i = 0; i < CONTROL_MAX_CONNS; i++) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE))
            fd = accept_with_reserve(srv);
        else if (fd < 0)
            fd = -errno;
        if (fd == -EAGAIN || fd == -EINTR || fd == -ECONNABORTED)
            break;
        if (fd < 0) {
            /* Still out of fds (the reserve is in use) or worse: retry later, quietly. */
            accept_warn(srv, -fd);
            reserve_restore(srv);
            loop_timer_arm(srv->loop, &srv->retry, 100);
            return;
        }
        conn_start(srv, fd);
    }
    accept_arm(srv);
}

static void accept_arm(ControlServer *srv)
{
    if (srv->closing || srv->accept_armed || loop_timer_armed(&srv->retry))
        return;
    srv->accept_op.fn = accept_ready;
    if (loop_poll(srv->loop, &srv->accept_op, srv->fd, POLLIN) < 0) {
        loop_timer_arm(srv->loop, &srv->retry, 10);
        return;
    }
    srv->accept_armed = true;
}

static void retry_fire(LoopTimer *t) { accept_arm(cfn_container_of(t, ControlServer, retry)); }

int control_server_new(ControlServer **ret, Loop *loop, const char *path, ControlHandler fn, void *ctx,
                       char *err, size_t err_len)
{
    struct sockaddr_un sa;
    if (make_addr(path, &sa) < 0) {
        snprintf(err, err_len, "control socket path %s is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int r = -errno;
        snprintf(err, err_len, "control socket: %s", strerror(-r));
        return r;
    }
    /* A socket file nobody answers on is left over from a crash: replace it. */
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        int alive = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(probe);
        if (alive) {
            close(fd);
            snprintf(err, err_len, "another daemon is serving %s", path);
            return -EADDRINUSE;
        }
    }
    unlink(path);
    /* The socket file is created 0666 & ~umask: 0600, connecting needs write permission. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    umask(old);
    if (r == 0 && listen(fd, 64) < 0)
        r = -errno;
    int reserve = r == 0 ? reserve_open() : -1;
    if (r == 0 && reserve < 0)
        r = -errno;
    if (r < 0) {
        close(fd);
        snprintf(err, err_len, "control socket %s: %s", path, strerror(-r));
        return r;
    }
    ControlServer *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        close(reserve);
        close(fd);
        unlink(path);
        return -ENOMEM;
    }
    srv->loop = loop;
    srv->fd = fd;
    srv->reserve_fd = reserve;
    snprintf(srv->path, sizeof(srv->path), "%s", path);
    srv->fn = fn;
    srv->ctx = ctx;
    srv->accept_warn.interval_ms = CONTROL_WARN_INTERVAL_MS;
    loop_timer_init(&srv->retry, retry_fire);
    accept_arm(srv);
    *ret = srv;
    return 0;
}

ControlServer *control_server_free(ControlServer *srv)
{
    if (!srv)
        return NULL;
    /* Called at shutdown, when the loop no longer runs: polls still armed never complete. */
    srv->closing = true;
    loop_timer_cancel(srv->loop, &srv->retry);
    unsigned pending = 0;
    while (srv->conns) {
        ControlConn *c = srv->conns;
        pending += c->dispatched;
        loop_timer_cancel(srv->loop, &c->deadline);
        close(c->fd);
        conn_unlink(c);
        free(c);
    }
    if (pending)
        log_warn("control: %u request(s) still in progress at shutdown", pending);
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    close(srv->fd);
    unlink(srv->path);
    free(srv);
    return NULL;
}

int control_call(const char *path, int argc, char **argv, int timeout_ms, int *status, char *out,
                 size_t out_len)
{
    struct sockaddr_un sa;
    char msg[CONTROL_MAX_MSG];
    size_t len = 0;
    int r = make_addr(path, &sa);
    if (r < 0)
        return r;
    if (argc > CONTROL_MAX_ARGS)
        return -E2BIG;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (len + n > sizeof(msg))
            return -EMSGSIZE;
        memcpy(msg + len, argv[i], n);
        len += n;
    }
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -errno;
    if (send(fd, msg, len, MSG_NOSIGNAL) < 0)
        return -errno;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    for (;;) {
        r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        break;
    }
    ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ECONNRESET;
    msg[n] = '\0';
    char *nl = strchr(msg, '\n');
    char *end;
    long st = strtol(msg, &end, 10);
    if (!nl || end != nl)
        return -EBADMSG;
    *status = (int)st;
    snprintf(out, out_len, "%s", nl + 1);
    return 0;
}
