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
    char buf[CONTROL_MAX_MSG + 1];
} ControlConn;

struct ControlServer {
    Loop *loop;
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    ControlHandler fn;
    void *ctx;
    LoopOp accept_op;
    LoopTimer retry;
    ControlConn *conn;              /* the one request in progress */
    bool accept_armed;
    bool closing;
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

static void conn_free(ControlConn *c)
{
    ControlServer *srv = c->srv;
    loop_timer_cancel(srv->loop, &c->deadline);
    if (c->fd >= 0)
        close(c->fd);
    if (srv->conn == c)
        srv->conn = NULL;
    free(c);
    accept_arm(srv);
}

void control_reply(ControlRequest *req, int status, const char *fmt, ...)
{
    ControlConn *c = cfn_container_of(req, ControlConn, req);
    char msg[CONTROL_MAX_MSG];
    int n = snprintf(msg, sizeof(msg), "%d\n", status);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One small datagram into an empty socket buffer: never blocks. */
    if (send(c->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        int r = errno;
        log_warn("control: reply to pid %d lost: %s", (int)req->pid, strerror(r));
    }
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
    c->buf[n] = '\0';
    /* Arguments are NUL-separated; the last one may or may not carry its NUL. */
    size_t len = (size_t)n;
    if (len && c->buf[len - 1] == '\0')
        len--;
    c->req.argc = 0;
    for (size_t i = 0; i <= len;) {
        if (c->req.argc == CONTROL_MAX_ARGS) {
            control_reply(&c->req, -E2BIG, "more than %d arguments", CONTROL_MAX_ARGS);
            return;
        }
        c->req.argv[c->req.argc++] = &c->buf[i];
        i += strlen(&c->buf[i]) + 1;
    }
    c->req.argv[c->req.argc] = NULL;
    srv->fn(srv->ctx, &c->req);
}

static void accept_ready(LoopOp *op, int res)
{
    ControlServer *srv = cfn_container_of(op, ControlServer, accept_op);
    srv->accept_armed = false;
    if (srv->closing || srv->conn)
        return;
    int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        int r = errno;
        if (r != EAGAIN && r != EINTR && r != ECONNABORTED) {
            log_warn("control: accept: %s", strerror(r));
            loop_timer_arm(srv->loop, &srv->retry, 100);    /* e.g. EMFILE: do not spin */
            return;
        }
        accept_arm(srv);
        return;
    }
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        log_warn("control: refused a client (uid %d)", cl == sizeof(cred) ? (int)cred.uid : -1);
        close(fd);
        accept_arm(srv);
        return;
    }
    ControlConn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        accept_arm(srv);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->req.uid = cred.uid;
    c->req.pid = cred.pid;
    srv->conn = c;
    loop_timer_init(&c->deadline, conn_deadline);
    loop_timer_arm(srv->loop, &c->deadline, CONTROL_RECV_TIMEOUT_MS);
    c->poll_op.fn = conn_readable;
    if (loop_poll(srv->loop, &c->poll_op, fd, POLLIN) < 0)
        conn_free(c);
}

static void accept_arm(ControlServer *srv)
{
    if (srv->closing || srv->conn || srv->accept_armed)
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
    mode_t old = umask(0077);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    umask(old);
    if (r == 0 && listen(fd, 16) < 0)
        r = -errno;
    if (r < 0) {
        close(fd);
        snprintf(err, err_len, "control socket %s: %s", path, strerror(-r));
        return r;
    }
    ControlServer *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        close(fd);
        unlink(path);
        return -ENOMEM;
    }
    srv->loop = loop;
    srv->fd = fd;
    snprintf(srv->path, sizeof(srv->path), "%s", path);
    srv->fn = fn;
    srv->ctx = ctx;
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
    if (srv->conn) {
        if (srv->conn->dispatched)
            log_warn("control: a request was still in progress at shutdown");
        loop_timer_cancel(srv->loop, &srv->conn->deadline);
        close(srv->conn->fd);
        free(srv->conn);
    }
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
