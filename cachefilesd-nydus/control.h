/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The control socket: how `cachefilesd-nydus mount|umount|status` reach the
 * running daemon, which owns the fanotify group and so must do the marking
 * and the mount(2) itself.
 *
 * A unix SOCK_SEQPACKET socket (mode 0600) in the work dir: one request
 * message (arguments separated by NUL bytes, at most CONTROL_MAX_MSG bytes
 * and CONTROL_MAX_ARGS arguments), one reply message ("<status>\n<text>",
 * status 0 or -errno), then the server closes the connection. Only root or
 * the daemon's own user may talk to it.
 *
 * Up to CONTROL_MAX_CONNS connections are served at once, so a request that
 * waits (a mount behind a slow backend) never holds up `status` or another
 * request; one more is answered -EBUSY at once. A client must send its
 * request within CONTROL_RECV_TIMEOUT_MS of connecting or it is dropped, so
 * a silent client holds a slot only that long. When the process is out of
 * file descriptors, a reserved one is given up to accept a connection, so
 * `status` still answers; accept errors are logged at most every
 * CONTROL_WARN_INTERVAL_MS.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "storage/util/loop.h"

#define CONTROL_MAX_MSG 4096
#define CONTROL_MAX_ARGS 8
#define CONTROL_RECV_TIMEOUT_MS 2000
#define CONTROL_MAX_CONNS 16
#define CONTROL_WARN_INTERVAL_MS 10000

typedef struct ControlServer ControlServer;
typedef struct ControlRequest ControlRequest;

struct ControlRequest {
    int argc;
    char *argv[CONTROL_MAX_ARGS + 1];
    uid_t uid;
    pid_t pid;
};

/* Runs on the loop; must lead to exactly one control_reply(), now or later (several may be pending). */
typedef void (*ControlHandler)(void *ctx, ControlRequest *req);

/* Bind `path` (a stale socket file is replaced; a live one is -EADDRINUSE). */
int control_server_new(ControlServer **ret, Loop *loop, const char *path, ControlHandler fn, void *ctx,
                       char *err, size_t err_len);
/* Answer the request (its memory is freed); status 0 or -errno. */
void control_reply(ControlRequest *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Closes the socket and unlinks it. Requests still being handled are
 * dropped (logged) and their memory freed: the handler must not answer
 * them afterwards, so answer or forget them first.
 */
ControlServer *control_server_free(ControlServer *srv);

/*
 * Client side (blocking, for the CLI): send argv, wait at most timeout_ms
 * for the reply. Returns 0 with the daemon's status in *status and its text
 * in out, or -errno when the daemon could not be reached.
 */
int control_call(const char *path, int argc, char **argv, int timeout_ms, int *status, char *out,
                 size_t out_len);
