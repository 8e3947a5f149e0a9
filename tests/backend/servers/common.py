# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Shared bits of the loopback test servers: blob files, ranges, stats, flags."""
import http.server
import json
import os
import re
import socket
import socketserver
import ssl
import sys
import threading

BLOB_RE = re.compile(r"([0-9a-f]{64})$")


class State:
    """Counters written to <state>/<name>.stats ("key value" lines) and
    flag files the C tests create to change a server's behaviour."""

    def __init__(self, state_dir, name):
        self.dir = state_dir
        self.name = name
        self.lock = threading.Lock()
        self.counts = {}
        self.flush()

    def inc(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n
            self._flush_locked()

    def get(self, key):
        with self.lock:
            return self.counts.get(key, 0)

    def flush(self):
        with self.lock:
            self._flush_locked()

    def _flush_locked(self):
        tmp = os.path.join(self.dir, f".{self.name}.stats.tmp")
        with open(tmp, "w") as f:
            for k, v in sorted(self.counts.items()):
                f.write(f"{k} {v}\n")
        os.replace(tmp, os.path.join(self.dir, f"{self.name}.stats"))

    def flag(self, name):
        return os.path.exists(os.path.join(self.dir, name))

    def flag_text(self, name):
        """Contents of a flag file (stripped), or None when it does not exist."""
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def record(self, method, path, authorization):
        """One line per request in <state>/<name>.requests: what the client sent,
        so tests can assert which credentials reached which server."""
        with self.lock:
            with open(os.path.join(self.dir, f"{self.name}.requests"), "a") as f:
                f.write(f"{method} {path}\t{authorization or '-'}\n")


def parse_range(value, size):
    """Single 'bytes=a-b' range -> (first, last) clipped to size, or None."""
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", value or "")
    if not m:
        return None
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        return "unsatisfiable"
    return first, min(last, size - 1)


def read_blob(blob_dir, digest):
    path = os.path.join(blob_dir, digest)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cfn-test"

    def parse_request(self):
        ok = super().parse_request()
        if ok:
            self.server.state.record(self.command, self.path, self.headers.get("Authorization"))
        return ok

    def log_message(self, fmt, *args):
        if os.environ.get("CFN_T_VERBOSE"):
            sys.stderr.write("%s: %s\n" % (self.server.state.name, fmt % args))

    def send_plain(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_blob(self, data, honour_range=True, extra=()):
        rng = parse_range(self.headers.get("Range"), len(data)) if honour_range else None
        if rng == "unsatisfiable":
            self.send_plain(416, b"", [("Content-Range", f"bytes */{len(data)}")])
            return
        if rng is None:
            self.send_response(200)
            body = data
        else:
            first, last = rng
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
            body = data[first:last + 1]
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        sock, _ = super().get_request()
        return sock, ("127.0.0.1", 0)


def serve(handler_cls, state, listen, ready_file, tls=None, **attrs):
    """listen: 'HOST:PORT' (PORT may be 0) or a unix socket path;
    tls: (certificate file, key file) to serve https."""
    if listen.startswith("/"):
        if os.path.exists(listen):
            os.unlink(listen)
        srv = UnixServer(listen, handler_cls)
        where = listen
    else:
        host, port = listen.rsplit(":", 1)
        srv = TCPServer((host, int(port)), handler_cls)
        where = f"{host}:{srv.server_address[1]}"
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.state = state
    for k, v in attrs.items():
        setattr(srv, k, v)
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(where + "\n")
    os.replace(tmp, ready_file)
    srv.serve_forever()


def base_args(argv):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--blobs", required=True)
    p.add_argument("--ready", required=True)
    return p
