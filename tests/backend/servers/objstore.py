#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Object storage stand-in for redirect tests: GET/HEAD /objects/<d>?sig=<s>.
Counts requests and every request that carried an Authorization header
(which must never happen). The 'expire' flag makes every signature seen so
far answer 403 from then on (an expired presigned URL)."""
import os
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402


class ObjHandler(common.Handler):
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.server.state
        st.inc("requests")
        if "Authorization" in self.headers:
            st.inc("auth_seen")
        if any(h.lower().startswith("x-cfn-") for h in self.headers.keys()):
            st.inc("custom_header_seen")
        url = urllib.parse.urlsplit(self.path)
        sig = urllib.parse.parse_qs(url.query).get("sig", [""])[0]
        with self.server.lock:
            if st.flag("expire"):
                self.server.expired |= self.server.seen
                os.unlink(os.path.join(st.dir, "expire"))
            self.server.seen.add(sig)
            expired = sig in self.server.expired
        if not sig or expired:
            st.inc("forbidden")
            return self.send_plain(403, b"<Error><Code>AccessDenied</Code></Error>")
        digest = url.path.rsplit("/", 1)[-1]
        data = common.read_blob(self.server.blobs, digest)
        if data is None:
            return self.send_plain(404)
        self.send_blob(data)


def main():
    args = common.base_args(sys.argv).parse_args()
    st = common.State(args.state, args.name)
    common.serve(ObjHandler, st, args.listen, args.ready, blobs=args.blobs, seen=set(),
                 expired=set(), lock=threading.Lock())


if __name__ == "__main__":
    main()
