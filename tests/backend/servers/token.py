#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""A minimal registry with the distribution bearer-token flow.

/v2/<repo>/blobs/sha256:<d>  GET/HEAD, needs "Bearer <token>" for scope
                             repository:<repo>:pull, else 401 + challenge
/token                       GET ?service=&scope= with Basic user:pass
                             (anonymous too while the 'anon-ok' flag exists),
                             POST grant_type=refresh_token&refresh_token=<identity>
Flags (files in the state dir): short-ttl (expires_in 2), revoke (forget every
token issued so far; the flag is removed), anon-ok.
Every issued token is appended to <state>/tokens.txt so the test can check the
daemon never logged one; a server accepts the tokens any server of the run
issued (a registry whose token realm is another server).

--mode basic: blobs need "Basic <userpass>" (else 401 Basic); --mode open:
blobs for anyone (a mirror). Per-server flag files: <name>.realm holds the
realm URL to name in challenges (default: this server's /token), <name>-503
makes blob requests answer 503, <name>-redirect answers them with 307 to
--redirect-base/objects/<digest>?sig=... (an object store elsewhere).
Every request's Authorization is recorded in <state>/<name>.requests (common.py).
"""
import base64
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402


class TokenHandler(common.Handler):
    def challenge(self, scope=None, error=None):
        host, port = self.server.server_address[:2]
        st = self.server.state
        realm = st.flag_text(f"{st.name}.realm") or f"http://{host}:{port}/token"
        v = f'Bearer realm="{realm}",service="cfn-registry"'
        if scope:
            v += f',scope="{scope}"'
        if error:
            v += f',error="{error}"'
        self.send_plain(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", v)])

    def token_valid(self, scope):
        h = self.headers.get("Authorization", "")
        if not h.startswith("Bearer "):
            return False
        tok = h[7:]
        if tok == self.server.static_token:
            return True
        with self.server.lock:
            ent = self.server.tokens.get(tok)
            revoked = tok in self.server.revoked
        if ent:
            return ent[0] == scope and time.time() < ent[1]
        return not revoked and tok in issued_elsewhere(self.server.state)

    def basic_valid(self):
        good = "Basic " + base64.b64encode(self.server.userpass.encode()).decode()
        return self.headers.get("Authorization") == good

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.server.state
        if st.flag("revoke"):
            with self.server.lock:
                self.server.revoked.update(self.server.tokens)
                self.server.tokens.clear()
            try:
                os.unlink(os.path.join(st.dir, "revoke"))
            except OSError:
                pass
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/token":
            return self.token_get(urllib.parse.parse_qs(url.query))
        if url.path == "/v2/":
            if self.server.mode != "bearer":
                return self.send_plain(200, b"{}")
            return self.challenge()
        parts = url.path.split("/blobs/sha256:")
        if len(parts) != 2 or not url.path.startswith("/v2/"):
            return self.send_plain(404)
        repo, digest = parts[0][4:], parts[1]
        scope = f"repository:{repo}:pull"
        st.inc("blob_requests")
        if "X-Cfn-Tenant" in self.headers:
            st.inc("tenant_header")
        if st.flag(f"{st.name}-503"):
            return self.send_plain(503, b"unavailable")
        if self.server.mode == "basic" and not self.basic_valid():
            st.inc("unauthorized")
            return self.send_plain(401, b"", [("WWW-Authenticate", 'Basic realm="cfn-mirror"')])
        if self.server.mode == "bearer" and not self.token_valid(scope):
            st.inc("unauthorized")
            err = "invalid_token" if self.headers.get("Authorization") else None
            return self.challenge(scope, err)
        if st.flag(f"{st.name}-redirect"):
            loc = f"{self.server.redirect_base}/objects/{digest}?sig={secrets.token_hex(8)}"
            return self.send_plain(307, b"", [("Location", loc)])
        data = common.read_blob(self.server.blobs, digest)
        if data is None:
            return self.send_plain(404)
        st.inc("served")
        self.send_blob(data)

    def issue(self, scope, field):
        tok = "tk-" + secrets.token_urlsafe(24)
        ttl = 2 if self.server.state.flag("short-ttl") else 300
        with self.server.lock:
            self.server.tokens[tok] = (scope, time.time() + ttl)
            with open(os.path.join(self.server.state.dir, "tokens.txt"), "a") as f:
                f.write(tok + "\n")
        body = json.dumps({field: tok, "expires_in": ttl,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self.send_plain(200, body.encode(), [("Content-Type", "application/json")])

    def token_get(self, q):
        st = self.server.state
        st.inc("token_get")
        good = "Basic " + base64.b64encode(self.server.userpass.encode()).decode()
        auth = self.headers.get("Authorization")
        if auth != good and not (auth is None and st.flag("anon-ok")):
            st.inc("token_denied")
            return self.send_plain(401, b"bad credentials")
        if q.get("service", [""])[0] != "cfn-registry":
            return self.send_plain(400, b"bad service")
        self.issue(q.get("scope", [""])[0], "token")

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        if urllib.parse.urlsplit(self.path).path != "/token":
            return self.send_plain(404)
        st.inc("token_post")
        if (form.get("grant_type", [""])[0] != "refresh_token" or
                form.get("refresh_token", [""])[0] != self.server.identity or
                form.get("service", [""])[0] != "cfn-registry"):
            st.inc("token_denied")
            return self.send_plain(401, b"bad refresh token")
        self.issue(form.get("scope", [""])[0], "access_token")


def issued_elsewhere(st):
    try:
        with open(os.path.join(st.dir, "tokens.txt")) as f:
            return set(f.read().split())
    except OSError:
        return set()


def main():
    p = common.base_args(sys.argv)
    p.add_argument("--userpass", required=True)
    p.add_argument("--identity", default="")
    p.add_argument("--static-token", default="")
    p.add_argument("--mode", choices=("bearer", "basic", "open"), default="bearer")
    p.add_argument("--redirect-base", default="")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    args = p.parse_args()
    st = common.State(args.state, args.name)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    common.serve(TokenHandler, st, args.listen, args.ready, tls=tls, blobs=args.blobs, tokens={}, revoked=set(),
                 lock=threading.Lock(), userpass=args.userpass, identity=args.identity or None,
                 static_token=args.static_token or None, mode=args.mode,
                 redirect_base=args.redirect_base)

if __name__ == "__main__":
    main()
