#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Start the loopback servers a backend scenario needs, run the C test
binary against them, tear everything down. Exit 77 (skip) when a needed
program is missing: this script never installs anything.

usage: run.py SCENARIO TEST-BINARY
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "servers")
PY = sys.executable

USER, PASSWORD = "cfnuser", "s3cr3t-Pa55w0rd"


def need(*progs):
    for p in progs:
        if not shutil.which(p) and not os.path.exists(p):
            print(f"SKIP: {p} not installed (see tests/backend/README)", file=sys.stderr)
            sys.exit(77)


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(host, port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port}")


class Env:
    def __init__(self, scenario):
        self.scenario = scenario
        self.tmp = tempfile.mkdtemp(prefix=f"cfn-backend-{scenario}-")
        self.blobs = os.path.join(self.tmp, "blobs")
        self.state = os.path.join(self.tmp, "state")
        os.makedirs(self.blobs)
        os.makedirs(self.state)
        self.procs = []
        self.env = dict(os.environ)
        self.env["CFN_T_BLOBS"] = self.blobs
        self.env["CFN_T_STATE"] = self.state
        self.env["CFN_T_TMP"] = self.tmp
        self.env["CFN_T_USER"] = USER
        self.env["CFN_T_PASSWORD"] = PASSWORD
        self.digests = []

    def make_blobs(self, sizes):
        for i, size in enumerate(sizes):
            data = os.urandom(size)
            d = hashlib.sha256(data).hexdigest()
            with open(os.path.join(self.blobs, d), "wb") as f:
                f.write(data)
            self.digests.append(d)
        self.env["CFN_T_DIGESTS"] = ",".join(self.digests)

    def log(self, name):
        return open(os.path.join(self.tmp, name + ".log"), "wb")

    def spawn(self, name, argv, **kw):
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")     # keep the source tree clean
        p = subprocess.Popen(argv, stdout=self.log(name), stderr=subprocess.STDOUT,
                             start_new_session=True, env=env, **kw)
        self.procs.append((name, p))
        return p

    def py_server(self, script, name, listen="127.0.0.1:0", extra=()):
        ready = os.path.join(self.state, name + ".ready")
        self.spawn(name, [PY, os.path.join(SERVERS, script), "--listen", listen, "--state",
                          self.state, "--name", name, "--blobs", self.blobs, "--ready", ready,
                          *extra])
        end = time.time() + 15
        while time.time() < end:
            if os.path.exists(ready):
                with open(ready) as f:
                    return f.read().strip()
            time.sleep(0.02)
        raise RuntimeError(f"{name} did not start")

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def dump_logs(self):
        for f in sorted(os.listdir(self.tmp)):
            if f.endswith(".log"):
                with open(os.path.join(self.tmp, f), "rb") as fh:
                    data = fh.read()[-4000:]
                sys.stderr.write(f"---- {f} (tail) ----\n{data.decode(errors='replace')}\n")


# ---- docker-registry ---------------------------------------------------------

def start_registry(e, auth=True):
    need("docker-registry", "htpasswd")
    port = free_port()
    root = os.path.join(e.tmp, "registry")
    os.makedirs(root)
    conf = os.path.join(e.tmp, "registry.yml")
    lines = ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
             f"    rootdirectory: {root}", "  delete:", "    enabled: true", "http:",
             f"  addr: 127.0.0.1:{port}", "  secret: cfn-test-secret"]
    if auth:
        htp = os.path.join(e.tmp, "htpasswd")
        subprocess.run(["htpasswd", "-Bbc", htp, USER, PASSWORD], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines += ["auth:", "  htpasswd:", "    realm: cfn-registry", f"    path: {htp}"]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    e.spawn("registry", ["docker-registry", "serve", conf])
    wait_port("127.0.0.1", port)
    return f"127.0.0.1:{port}"


def registry_push(addr, repo, path, digest, auth=True):
    """Monolithic blob upload through the distribution push API."""
    hdr = {}
    if auth:
        hdr["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(f"http://{addr}/v2/{repo}/blobs/uploads/", method="POST",
                                 headers=hdr, data=b"")
    with urllib.request.urlopen(req) as r:
        loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = f"http://{addr}{loc}"
    sep = "&" if "?" in loc else "?"
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        req = urllib.request.Request(f"{loc}{sep}digest=sha256:{digest}", method="PUT", data=f,
                                     headers={**hdr, "Content-Length": str(size),
                                              "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 201, r.status


# ---- nginx -------------------------------------------------------------------

def start_nginx(e, servers):
    """servers: list of 'server { ... }' blocks."""
    need("nginx")
    d = os.path.join(e.tmp, "nginx")
    os.makedirs(os.path.join(d, "tmp"))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 10000;
    limit_req_zone $server_port zone=rl:1m rate=20r/s;
    {''.join(servers)}
}}
""")
    e.spawn("nginx", ["nginx", "-c", conf, "-p", d, "-e", f"{d}/error.log"])
    return d


# ---- scenarios ----------------------------------------------------------------

SIZES = [1 << 20, 3 * (1 << 20) + 12345, 4096, 777]


def sc_fault(e):
    e.make_blobs(SIZES)
    e.env["CFN_T_FAULT"] = e.py_server("fault.py", "fault")
    sock = os.path.join(e.tmp, "fault.sock")
    e.py_server("fault.py", "faultunix", listen=sock)
    e.env["CFN_T_FAULT_UNIX"] = sock


def sc_registry(e):
    need("docker-registry", "htpasswd")
    e.make_blobs(SIZES)
    addr = start_registry(e)
    for d in e.digests:
        registry_push(addr, "library/cfn", os.path.join(e.blobs, d), d)
    e.env["CFN_T_REGISTRY"] = addr
    cfg = os.path.join(e.tmp, "docker-config.json")
    with open(cfg, "w") as f:
        json.dump({"auths": {f"http://{addr}/v1/": {
            "auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}, f)
    e.env["CFN_T_DOCKER_CONFIG"] = cfg


def basic_header():
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def sc_redirect(e):
    need("nginx")
    e.make_blobs(SIZES)
    obj = e.py_server("objstore.py", "objstore", listen="127.0.0.2:0")
    p_origin, p_rewrite, p_same = free_port(), free_port(), free_port()
    blob_re = r"^/v2/[^/]+/[^/]+/blobs/sha256:([0-9a-f]{64})$"
    auth_check = (f'if ($http_authorization != "{basic_header()}") {{ '
                  f'add_header WWW-Authenticate \'Basic realm="cfn"\' always; return 401; }}')
    d = start_nginx(e, [
        f"""server {{ listen 127.0.0.1:{p_origin}; access_log {e.tmp}/nginx/origin.log;
            location ~ "{blob_re}" {{ {auth_check} return 307 http://{obj}/objects/$1?sig=$request_id; }} }}
""",
        f"""server {{ listen 127.0.0.1:{p_rewrite};
            location ~ "{blob_re}" {{ {auth_check}
                return 302 https://objects.invalid:1/objects/$1?sig=$request_id; }} }}
""",
        f"""server {{ listen 127.0.0.1:{p_same}; access_log {e.tmp}/nginx/same.log;
            location ~ "{blob_re}" {{ {auth_check} return 307 /data/$1; }}
            location /data/ {{ {auth_check} alias {e.blobs}/; }} }}
"""])
    for p in (p_origin, p_rewrite, p_same):
        wait_port("127.0.0.1", p)
    e.env["CFN_T_ORIGIN"] = f"127.0.0.1:{p_origin}"
    e.env["CFN_T_ORIGIN_REWRITE"] = f"127.0.0.1:{p_rewrite}"
    e.env["CFN_T_ORIGIN_SAME"] = f"127.0.0.1:{p_same}"
    e.env["CFN_T_OBJSTORE"] = obj
    e.env["CFN_T_NGINX_DIR"] = d


def sc_token(e):
    e.make_blobs(SIZES)
    e.env["CFN_T_IDENTITY"] = "identity-" + base64.b32encode(os.urandom(10)).decode()
    e.env["CFN_T_STATIC_TOKEN"] = "static-" + base64.b32encode(os.urandom(10)).decode()
    addr = e.py_server("token.py", "token", extra=[
        "--userpass", f"{USER}:{PASSWORD}", "--identity", e.env["CFN_T_IDENTITY"],
        "--static-token", e.env["CFN_T_STATIC_TOKEN"]])
    e.env["CFN_T_REGISTRY"] = addr
    cfg = os.path.join(e.tmp, "docker-config.json")
    with open(cfg, "w") as f:
        json.dump({"auths": {addr: {"auth": "", "identitytoken": e.env["CFN_T_IDENTITY"]},
                             "other.example:5000": {"auth": "eDp5"}}}, f)
    e.env["CFN_T_DOCKER_CONFIG"] = cfg


def blob_server(port, log, extra=""):
    return f"""server {{ listen 127.0.0.1:{port}; access_log {log};
        location = /v2/ {{ return 200 "{{}}"; }}
        location ~ "^/v2/[^/]+/[^/]+/blobs/sha256:([0-9a-f]{{64}})$" {{ {extra} alias BLOBS/$1; }} }}
"""


def sc_mirror(e):
    need("nginx")
    e.make_blobs(SIZES)
    p_origin, p_bad, p_good, p_refused = free_port(), free_port(), free_port(), free_port()
    n = os.path.join(e.tmp, "nginx")
    servers = [
        blob_server(p_origin, f"{n}/origin.log"),
        blob_server(p_bad, f"{n}/bad.log", "return 503;"),
        blob_server(p_good, f"{n}/good.log",
                    'if ($http_x_mirror_token != "m1") { return 403; }'),
    ]
    start_nginx(e, [s.replace("BLOBS", e.blobs) for s in servers])
    for p in (p_origin, p_bad, p_good):
        wait_port("127.0.0.1", p)
    e.env["CFN_T_ORIGIN"] = f"127.0.0.1:{p_origin}"
    e.env["CFN_T_MIRROR_BAD"] = f"http://127.0.0.1:{p_bad}"
    e.env["CFN_T_MIRROR_GOOD"] = f"http://127.0.0.1:{p_good}"
    e.env["CFN_T_MIRROR_REFUSED"] = f"http://127.0.0.1:{p_refused}"
    e.env["CFN_T_NGINX_DIR"] = n


def sc_ratelimit(e):
    need("nginx")
    e.make_blobs(SIZES)
    port = free_port()
    n = os.path.join(e.tmp, "nginx")
    srv = blob_server(port, f"{n}/origin.log",
                      "limit_req zone=rl burst=4 nodelay; limit_req_status 429;")
    start_nginx(e, [srv.replace("BLOBS", e.blobs)])
    wait_port("127.0.0.1", port)
    e.env["CFN_T_ORIGIN"] = f"127.0.0.1:{port}"
    e.env["CFN_T_NGINX_DIR"] = n


def sc_proxy(e):
    e.make_blobs(SIZES)
    e.env["CFN_T_FAULT"] = e.py_server("fault.py", "fault")
    e.env["CFN_T_PROXY"] = e.py_server("proxy.py", "proxy")


S3_KEY, S3_SECRET, S3_TOKEN = "AKIACFNTEST", "cfn/s3+Secret=Key/0123456789", "FwoSTS-session-token-cfn"


def sc_s3(e, oss=False):
    e.make_blobs(SIZES)
    extra = ["--bucket", "cfnbucket", "--public-bucket", "cfnpublic", "--prefix", "layers/v1/",
             "--access-key", S3_KEY, "--secret", S3_SECRET]
    if oss:
        extra.append("--oss")
    else:
        extra += ["--session-token", S3_TOKEN]
    e.env["CFN_T_S3"] = e.py_server("s3.py", "s3", extra=extra)
    e.env["CFN_T_S3_KEY"] = S3_KEY
    e.env["CFN_T_S3_SECRET"] = S3_SECRET
    e.env["CFN_T_S3_TOKEN"] = S3_TOKEN


def make_pki(e, san, name="srv"):
    """A CA and a server certificate for `san` (e.g. "IP:127.0.0.1"), made by
    openssl at run time. Returns (ca.pem, cert, key)."""
    need("openssl")
    d = os.path.join(e.tmp, "pki")
    os.makedirs(d, exist_ok=True)

    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, cwd=d, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if not os.path.exists(os.path.join(d, "ca.pem")):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=cfn test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
         "-subj", f"/CN={san.split(':', 1)[1]}")
    with open(os.path.join(d, f"{name}.cnf"), "w") as f:
        f.write(f"subjectAltName={san}\n")
    ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.cnf")
    return (os.path.join(d, "ca.pem"), os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key"))


def sc_tls(e):
    need("nginx", "openssl")
    e.make_blobs(SIZES)
    ca, cert, key = make_pki(e, "IP:127.0.0.1,DNS:localhost")
    port = free_port()
    n = os.path.join(e.tmp, "nginx")
    start_nginx(e, [f"""server {{ listen 127.0.0.1:{port} ssl http2; access_log {n}/tls.log;
        ssl_certificate {cert}; ssl_certificate_key {key};
        location /blobs/ {{ alias {e.blobs}/; }} }}
"""])
    wait_port("127.0.0.1", port)
    e.env["CFN_T_TLS"] = f"127.0.0.1:{port}"
    e.env["CFN_T_CA"] = ca


MIRROR_USER, MIRROR_PASSWORD = "mirroruser", "m1rr0r-Pa55"


def sc_creds(e):
    """Where credentials go: a bearer registry (token.py) whose realm can be
    named per test (its own /token, another host over http, another port,
    another host over https), an open mirror and a mirror with Basic auth of
    its own, and an object store on another host for redirects. Every server
    records the Authorization of every request it received."""
    need("openssl")
    e.make_blobs(SIZES)
    e.env["CFN_T_IDENTITY"] = "identity-" + base64.b32encode(os.urandom(10)).decode()
    e.env["CFN_T_STATIC_TOKEN"] = "static-" + base64.b32encode(os.urandom(10)).decode()
    obj = e.py_server("objstore.py", "objstore", listen="127.0.0.2:0")
    ca, cert, key = make_pki(e, "IP:127.0.0.2", "realm")
    userpass = ["--userpass", f"{USER}:{PASSWORD}", "--identity", e.env["CFN_T_IDENTITY"]]
    redirect = ["--redirect-base", f"http://{obj}"]
    e.env["CFN_T_ORIGIN"] = e.py_server("token.py", "origin", extra=[
        *userpass, *redirect,
        "--static-token", e.env["CFN_T_STATIC_TOKEN"]])
    e.env["CFN_T_REALM_HOST"] = e.py_server("token.py", "realmhost", listen="127.0.0.2:0",
                                            extra=userpass)
    e.env["CFN_T_REALM_PORT"] = e.py_server("token.py", "realmport", extra=userpass)
    e.env["CFN_T_REALM_TLS"] = e.py_server("token.py", "realmtls", listen="127.0.0.2:0", extra=[
        *userpass, "--tls-cert", cert, "--tls-key", key])
    e.env["CFN_T_MIRROR_OPEN"] = e.py_server("token.py", "mopen", extra=[
        *userpass, *redirect, "--mode", "open"])
    e.env["CFN_T_MIRROR_BASIC"] = e.py_server("token.py", "mbasic", extra=[
        "--userpass", f"{MIRROR_USER}:{MIRROR_PASSWORD}", *redirect, "--mode", "basic"])
    e.env["CFN_T_MIRROR_USER"] = MIRROR_USER
    e.env["CFN_T_MIRROR_PASSWORD"] = MIRROR_PASSWORD
    e.env["CFN_T_OBJSTORE"] = obj
    e.env["CFN_T_CA"] = ca
    cfg = os.path.join(e.tmp, "docker-config.json")
    with open(cfg, "w") as f:
        json.dump({"auths": {
            e.env["CFN_T_MIRROR_BASIC"]: {"auth": base64.b64encode(
                f"{MIRROR_USER}:{MIRROR_PASSWORD}".encode()).decode()},
            e.env["CFN_T_ORIGIN"]: {"auth": "", "identitytoken": e.env["CFN_T_IDENTITY"]}}}, f)
    os.chmod(cfg, 0o600)
    e.env["CFN_T_DOCKER_CONFIG"] = cfg


SCENARIOS = {
    "fault": sc_fault,
    "registry": sc_registry,
    "redirect": sc_redirect,
    "token": sc_token,
    "mirror": sc_mirror,
    "ratelimit": sc_ratelimit,
    "proxy-fallback": sc_proxy,
    "s3": sc_s3,
    "oss": lambda e: sc_s3(e, oss=True),
    "tls": sc_tls,
    "creds": sc_creds,
}


def main():
    scenario, binary = sys.argv[1], sys.argv[2]
    e = Env(scenario)
    rc = 1
    try:
        SCENARIOS[scenario](e)
        p = subprocess.run([binary, scenario], env=e.env)
        rc = p.returncode
    except SystemExit as ex:
        rc = ex.code
    finally:
        e.stop()
        if rc not in (0, 77) or os.environ.get("CFN_T_VERBOSE"):
            e.dump_logs()
        if not os.environ.get("CFN_T_KEEP"):
            shutil.rmtree(e.tmp, ignore_errors=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
