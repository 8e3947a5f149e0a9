#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Blob server (http-proxy backend) whose answers wait while a flag file exists.

GET/HEAD /<name> serves <blobs>/<name> (Range honoured). While <state>/hold
exists, every request waits (at most 60 s) before it is answered; the
counter 'held' in <state>/slow.stats says how many waited, so a test knows
the daemon is inside the window it wants to widen.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "backend", "servers"))
import common  # noqa: E402


class SlowHandler(common.Handler):
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.server.state
        st.inc("requests")
        if st.flag("hold"):
            st.inc("held")
            deadline = time.monotonic() + 60
            while st.flag("hold") and time.monotonic() < deadline:
                time.sleep(0.05)
        name = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
        path = os.path.join(self.server.blobs, name)
        if not name or not os.path.isfile(path):
            self.send_plain(404, b"no such blob")
            return
        with open(path, "rb") as f:
            self.send_blob(f.read())


def main():
    args = common.base_args(sys.argv).parse_args()
    st = common.State(args.state, args.name)
    common.serve(SlowHandler, st, args.listen, args.ready, blobs=args.blobs)


if __name__ == "__main__":
    main()
