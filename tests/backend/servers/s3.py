#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""An S3 (SigV4) or OSS (V1) object server that verifies every signature.

Objects are <prefix><digest> in --bucket (signed access only) or in
--public-bucket (anonymous reads allowed). Path style (/bucket/key) and
virtual-host style (Host: bucket.<anything>) are both served.
A request for Host example.amazonaws.com echoes its Authorization header
(for the AWS SigV4 test-suite check on the client side).
The verifier checks itself against the AWS test-suite vector at start-up.
"""
import base64
import hashlib
import hmac
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

EMPTY = hashlib.sha256(b"").hexdigest()


def _h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4(secret, date, region, service, string_to_sign):
    k = _h(("AWS4" + secret).encode(), date)
    k = _h(k, region)
    k = _h(k, service)
    k = _h(k, "aws4_request")
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_request(method, raw_path, query, headers, signed, payload_hash):
    q = urllib.parse.parse_qsl(query, keep_blank_values=True)
    cq = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                  for k, v in sorted(q))
    ch = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    return "\n".join([method, raw_path or "/", cq, ch, ";".join(signed), payload_hash])


def verify_v4(method, raw_path, query, headers, auth, keys):
    """headers: lower-case name -> value. Returns None or an error string."""
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "not sigv4"
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    ak, date, region, service, term = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    if ak not in keys or term != "aws4_request":
        return "unknown key"
    for need in ("host", "x-amz-date"):
        if need not in signed:
            return f"{need} not signed"
    amzdate = headers.get("x-amz-date", "").split(",")[0].strip()
    if not amzdate.startswith(date):
        return "date mismatch"
    payload = headers.get("x-amz-content-sha256", EMPTY)
    creq = canonical_request(method, raw_path, query, headers, signed, payload)
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, f"{date}/{region}/{service}/aws4_request",
                     hashlib.sha256(creq.encode()).hexdigest()])
    want = sigv4(keys[ak], date, region, service, sts)
    return None if hmac.compare_digest(want, fields["Signature"]) else "signature mismatch"


def self_test():
    # AWS SigV4 test suite, get-vanilla.
    hdr = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    auth = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    keys = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
    assert verify_v4("GET", "/", "", hdr, auth, keys) is None, "sigv4 verifier self-test failed"


class S3Handler(common.Handler):
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.server.state
        cfg = self.server.cfg
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = headers.get("host", "")
        raw_path, _, query = self.path.partition("?")
        auth = headers.get("authorization")
        if host.startswith("example.amazonaws.com"):
            body = (auth or "").encode()
            return self.send_plain(200, body)
        hostname = host.rsplit(":", 1)[0]
        bucket = None
        for b in (cfg.bucket, cfg.public_bucket):
            if hostname.startswith(b + "."):
                bucket, key = b, urllib.parse.unquote(raw_path[1:])
        if bucket is None:
            parts = raw_path[1:].split("/", 1)
            if len(parts) != 2:
                return self.send_plain(404)
            bucket, key = parts[0], urllib.parse.unquote(parts[1])
            st.inc("path_style")
        else:
            st.inc("virtual_host")
        if bucket not in (cfg.bucket, cfg.public_bucket):
            return self.send_plain(404, b"NoSuchBucket")
        if auth is None:
            if bucket != cfg.public_bucket:
                st.inc("denied")
                return self.send_plain(403, b"AccessDenied")
            st.inc("anonymous")
        else:
            err = self.check_auth(auth, headers, raw_path, query, bucket, key)
            if err:
                st.inc("denied")
                sys.stderr.write(f"denied: {err}\n")
                return self.send_plain(403, b"SignatureDoesNotMatch")
            st.inc("verified")
        if not key.startswith(cfg.prefix):
            return self.send_plain(404)
        data = common.read_blob(self.server.blobs, key[len(cfg.prefix):])
        if data is None:
            return self.send_plain(404, b"NoSuchKey")
        self.send_blob(data)

    def check_auth(self, auth, headers, raw_path, query, bucket, key):
        cfg = self.server.cfg
        keys = {cfg.access_key: cfg.secret}
        if cfg.oss:
            if not auth.startswith("OSS "):
                return "not OSS"
            ak, sig = auth[4:].split(":", 1)
            if ak != cfg.access_key:
                return "unknown key"
            sts = f"{self.command}\n\n\n{headers.get('date', '')}\n/{bucket}/{key}"
            want = base64.b64encode(hmac.new(cfg.secret.encode(), sts.encode(),
                                             hashlib.sha1).digest()).decode()
            return None if hmac.compare_digest(want, sig) else "signature mismatch"
        err = verify_v4(self.command, raw_path, query, headers, auth, keys)
        if err:
            return err
        signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        if "x-amz-content-sha256" not in signed:
            return "payload hash not signed"
        if cfg.session_token:
            if headers.get("x-amz-security-token") != cfg.session_token:
                return "bad session token"
            if "x-amz-security-token" not in signed:
                return "session token not signed"
        return None


def main():
    p = common.base_args(sys.argv)
    p.add_argument("--bucket", required=True)
    p.add_argument("--public-bucket", required=True)
    p.add_argument("--prefix", default="")
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--session-token", default="")
    p.add_argument("--oss", action="store_true")
    args = p.parse_args()
    self_test()
    st = common.State(args.state, args.name)
    common.serve(S3Handler, st, args.listen, args.ready, blobs=args.blobs, cfg=args)


if __name__ == "__main__":
    main()
