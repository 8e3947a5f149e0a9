#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""A forward HTTP proxy standing in for a Dragonfly dfdaemon.

Absolute-form GET/HEAD requests are fetched from the origin (Range kept)
and relayed. /server/ping answers 200. Flags: proxy-down (drop every
connection at once, ping 503), proxy-5xx (answer 502 to proxied requests).
"""
import http.client
import os
import socket
import struct
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402


class ProxyHandler(common.Handler):
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.server.state
        down = st.flag("proxy-down")
        if self.path.startswith("/"):
            st.inc("pings")
            return self.send_plain(503 if down else 200, b"pong")
        if down:
            st.inc("dropped")
            s = self.connection
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            self.close_connection = True
            return
        if st.flag("proxy-5xx"):
            st.inc("bad_gateway")
            return self.send_plain(502, b"bad gateway")
        st.inc("proxied")
        if "X-Dragonfly-Use-P2P" in self.headers:
            st.inc("dragonfly_header")
        u = urllib.parse.urlsplit(self.path)
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() in ("range", "authorization", "user-agent")}
        conn.request(self.command, u.path + ("?" + u.query if u.query else ""), headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        self.send_response(r.status)
        for k in ("Content-Range", "Location", "WWW-Authenticate", "Content-Type"):
            if r.getheader(k):
                self.send_header(k, r.getheader(k))
        self.send_header("Content-Length", r.getheader("Content-Length") or str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        conn.close()


def main():
    args = common.base_args(sys.argv).parse_args()
    st = common.State(args.state, args.name)
    common.serve(ProxyHandler, st, args.listen, args.ready, blobs=args.blobs)


if __name__ == "__main__":
    main()
