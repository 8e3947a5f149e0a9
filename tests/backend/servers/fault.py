#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Blob server with scripted faults, for the http-proxy backend.

GET/HEAD /<mode>/<digest>. Modes:
  ok           honour Range (206)
  reset<N>     the first N requests per blob reset the connection mid-body
  e503x<N>     the first N requests per blob answer 503
  e429x<N>     the first N requests per blob answer 429 with Retry-After: 1
  badrange     206 whose Content-Range starts one byte late
  wronglen     206 with the right Content-Range but a Content-Length one short
  full200      ignore Range, 200 with the whole object
  short        206 promising the range, then closing early (every time)
  stall        headers, a little body, then silence for 20 s
  stallfirst   stall on the first request per blob only
  bigheader    a 100 KiB header
  slow         ok but 50 ms per 64 KiB of body
  (ok also stalls a blob's ranged reads while the flag file 'stall-<digest>'
  exists, for as long as it exists (at most 120 s); a number N in it stalls
  only ranges starting below N, so that a blob's tail, where nydus keeps its
  chunk table, still answers)
GET /v2/<repo>/blobs/sha256:<digest> is mode ok: a registry without auth.
Every request for a blob, HEAD included, waits before answering while the
flag file 'hold-<digest>' exists (up to 120 s).
GET /ping    -> 200 (503 while the 'down' flag file exists)
"""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402


class FaultHandler(common.Handler):
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.server.state
        st.inc("requests")
        if self.headers.get("Authorization"):
            st.inc("auth_seen")
        path = self.path.split("?", 1)[0]
        if path.endswith("/ping"):
            self.send_plain(503 if st.flag("down") else 200, b"pong")
            return
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2:
            self.send_plain(404)
            return
        mode, digest = parts[-2], parts[-1]
        if mode == "blobs" and digest.startswith("sha256:"):
            mode, digest = "ok", digest[len("sha256:"):]
        if st.flag("hold-" + digest):
            st.inc("held")
            deadline = time.monotonic() + 120
            while st.flag("hold-" + digest) and time.monotonic() < deadline:
                time.sleep(0.05)
        data = common.read_blob(self.server.blobs, digest)
        if data is None:
            self.send_plain(404, b"no such blob")
            return
        with self.server.lock:
            key = (mode, digest)
            n = self.server.seen.get(key, 0)
            self.server.seen[key] = n + 1
        st.inc("mode_" + mode)

        def first_n(prefix):
            return int(mode[len(prefix):]) if mode.startswith(prefix) else 0

        if mode.startswith("reset") and n < first_n("reset"):
            return self.reset_mid_body(data)
        if mode.startswith("e503x") and n < first_n("e503x"):
            return self.send_plain(503, b"busy")
        if mode.startswith("e429x") and n < first_n("e429x"):
            return self.send_plain(429, b"slow down", [("Retry-After", "1")])
        if mode == "badrange":
            rng = common.parse_range(self.headers.get("Range"), len(data))
            a, b = rng
            body = data[a + 1:b + 2]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a + 1}-{a + len(body)}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "wronglen":
            a, b = common.parse_range(self.headers.get("Range"), len(data))
            body = data[a:b]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "full200":
            return self.send_blob(data, honour_range=False)
        if mode == "short":
            a, b = common.parse_range(self.headers.get("Range"), len(data))
            body = data[a:b + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if (mode == "stall" or (mode == "stallfirst" and n == 0) or
                (mode == "ok" and self.stall_flagged(digest, len(data)))):
            a, b = common.parse_range(self.headers.get("Range"), len(data))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            self.send_header("Content-Length", str(b - a + 1))
            self.end_headers()
            self.wfile.write(data[a:a + 16])
            self.wfile.flush()
            st.inc("stalled")
            if mode == "ok":
                # A flagged stall lasts while its flag exists (at most 120 s).
                end = time.time() + 120
                while time.time() < end and self.stall_flagged(digest, len(data)):
                    time.sleep(0.2)
            else:
                time.sleep(20)
            self.close_connection = True
            return
        if mode == "bigheader":
            self.send_response(206 if self.headers.get("Range") else 200)
            for i in range(4):
                self.send_header(f"X-Big-{i}", "a" * (20 * 1024))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "slow" and self.command != "HEAD":
            a, b = common.parse_range(self.headers.get("Range"), len(data))
            body = data[a:b + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i:i + 65536])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.send_blob(data)

    def stall_flagged(self, digest, size):
        path = os.path.join(self.server.state.dir, "stall-" + digest)
        try:
            with open(path) as f:
                below = f.read().strip()
        except OSError:
            return False
        rng = common.parse_range(self.headers.get("Range"), size)
        if not isinstance(rng, tuple):
            return False        # HEAD or a whole-object GET: answered
        return not below or rng[0] < int(below)

    def reset_mid_body(self, data):
        a, b = common.parse_range(self.headers.get("Range"), len(data))
        body = data[a:b + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        s = self.connection
        if s.family != socket.AF_UNIX:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        self.close_connection = True
        self.server.state.inc("resets")


def main():
    args = common.base_args(sys.argv).parse_args()
    st = common.State(args.state, args.name)
    common.serve(FaultHandler, st, args.listen, args.ready, blobs=args.blobs,
                 seen={}, lock=threading.Lock())


if __name__ == "__main__":
    main()
