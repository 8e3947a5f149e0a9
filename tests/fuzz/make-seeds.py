#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Regenerate the seed corpora in corpus/<target>/ from the nydus fixture.

Usage: make-seeds.py [--mkimage BUILDDIR/storage/builder/nydus-mkimage] [FIXTURE_DIR]
(FIXTURE_DIR defaults to $CFN_FIXTURE_DIR or the repo's tests/fixtures/nydus-v6-2.2.) Needs the `zstd`
command. With --mkimage, images built by nydus-mkimage with several option
sets are added too (V2, crc32, lz4_block, sha256, TOC, inline bootstrap).
Inputs the fuzzers found are kept next to these seeds (found-*).
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
MKIMAGE = None
if args[:1] == ["--mkimage"]:
    MKIMAGE, args = args[1], args[2:]
FIX = args[0] if args else os.environ.get(
    "CFN_FIXTURE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "nydus-v6-2.2"))
BLOB_ID = "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef"
boot = open(os.path.join(FIX, "rafs-v6-2.2.boot"), "rb").read()
blob = open(os.path.join(FIX, BLOB_ID), "rb").read()


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-3", "--no-check"], input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def put(buf, off, fmt, *v):
    struct.pack_into("<" + fmt, buf, off, *v)


def tar(name, size):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:107] = b"0000644"
    h[124:135] = b"%011o" % size
    h[136:147] = b"00000000000"
    h[156:157] = b"0"
    h[257:265] = b"ustar  \0"
    h[148:156] = b" " * 8
    h[148:155] = b"%06o\0" % sum(h)
    return bytes(h)


def toc_entry(flags, name, content, off, csize):
    e = bytearray(128)
    put(e, 0, "I", flags)
    e[8:8 + len(name)] = name.encode()
    e[24:56] = hashlib.sha256(content).digest() if content is not None else bytes(32)
    put(e, 56, "QQQ", off, csize, len(content) if content is not None else csize)
    return bytes(e)


# ---- rafs-bootstrap ------------------------------------------------------
out("rafs-bootstrap", "fixture", boot)
b = bytearray(boot)                     # two blobs
put(b, 1024 + 86, "H", 2)
put(b, 1152 + 16, "I", 0x200)
b[1536:1664] = b[1408:1536]
b[1536] = ord("c")
b[0x1100:0x1200] = b[0x1000:0x1100]
b[0x1100] = ord("c")
put(b, 0x1100 + 64, "I", 1)
out("rafs-bootstrap", "two-blobs", bytes(b))
b = bytearray(boot)                     # prefetch table
put(b, 0x1100, "IIII", 133, 136, 0, 128)
put(b, 1152 + 40, "Q", 0x1100)
put(b, 1152 + 48, "I", 16)
out("rafs-bootstrap", "prefetch", bytes(b))
b = bytearray(boot)                     # v2.1 layout
put(b, 1152, "Q", 0x94)
put(b, 0x1000 + 84, "I", 0x1)
put(b, 0x1000 + 88, "Q", 7802)
put(b, 0x1000 + 104, "I", 0)
b[0x1000 + 136:0x1000 + 168] = bytes(32)
out("rafs-bootstrap", "v2.1", bytes(b))
b = bytearray(boot)                     # SEPARATE + ZRAN v2
put(b, 1152, "Q", 0x94 | 0x01000000)
put(b, 0x1000 + 84, "I", 0x1d)
put(b, 0x1000 + 128, "Q", 48 + 80)
b[0x1000 + 168:0x1000 + 200] = bytes(range(0xa0, 0xc0))
out("rafs-bootstrap", "separate-zran", bytes(b))
b = bytearray(boot)                     # encrypted (refused later)
put(b, 1152, "Q", 0x194 | 0x02000000)
put(b, 0x1000 + 84, "I", 0x70000125)
put(b, 0x1000 + 128, "Q", 48)
put(b, 0x1000 + 216, "I", 1)
out("rafs-bootstrap", "encrypted", bytes(b))
out("rafs-bootstrap", "one-block", boot[:4096])

# ---- blob-meta: mode byte || 256-byte blob entry || bytes --------------------
entry = boot[0x1000:0x1100]
out("blob-meta", "fixture-blob", b"\0" + entry + blob[8314:8314 + 32 + 4096])
out("blob-meta", "fixture-cache", b"\1" + entry + blob[8314:8346] + bytes(4096 - 32) + blob[8346:8346 + 4096])


def v1(coff, csize, uoff, usize):
    us, cs = usize - 1, csize - 1
    u = ((us & 0xfffff) << 44) | (uoff & 0xffffffff000) | ((us & 0xf00000) >> 12)
    c = ((cs & 0xfffff) << 44) | ((cs & 0xf00000) << 20) | coff
    return struct.pack("<QQ", u, c)


def v2(coff, csize, uoff, usize, flags, data):
    u = (flags << 56) | ((usize - 1) << 32) | (uoff >> 12)
    return struct.pack("<QQQ", u, (csize << 40) | coff, data)


def meta_seed(name, features, n, ci, data_size, usize, comp=0, zoff=0, zsize=0, zcount=0, separate_digest=False):
    cdata = zstd(ci) if comp == 3 else ci
    if comp == 3 and len(cdata) >= len(ci):
        return
    e = bytearray(256)
    e[0:64] = b"a" * 64
    put(e, 64, "IIIIII", 0, 0x100000, n, 3, 0, features)
    sep = features & 0x10
    ci_off = 0 if sep else data_size
    put(e, 88, "QQ", data_size if sep else data_size + len(cdata) + 4096, usize)
    put(e, 108, "IQQQ", comp, ci_off, len(cdata), len(ci))
    if separate_digest:
        e[168:200] = b"\x5a" * 32
    h = bytearray(4096)
    put(h, 0, "IIIIQQQQQI", 0xB10BB10B, features, comp, n, ci_off, len(cdata), len(ci), zoff, zsize, zcount)
    put(h, 4092, "I", 0xB10BB10B)
    out("blob-meta", name, b"\0" + bytes(e) + cdata + bytes(h))
    pad = (-len(ci)) % 4096
    out("blob-meta", name + "-cache", b"\1" + bytes(e) + ci + bytes(pad) + bytes(h))


ci = v1(0, 100, 0, 5000) + v1(100, 4096, 0x2000, 4096) + v1(4196, 50, 0x3000, 1)
meta_seed("v1", 0x40000001, 3, ci, 4246, 0x3001)
ci = b"".join(v1(i * 1000, 1000, i * 4096, 4096) for i in range(64))
meta_seed("v1-zstd", 0x40000001, 64, ci, 64000, 64 * 4096, comp=3)
ci = v2(0, 100, 0, 5000, 0x11, 0xdeadbeef) + v2(100, 4096, 0x2000, 4096, 0, 0) + v2(4196, 50, 0x3000, 1, 1, 0)
meta_seed("v2-crc", 0x40000005, 3, ci, 4246, 0x3001)
ci = (v2(0, 0, 0, 100, 0x05, 0) + v2(0, 0, 0x1000, 200, 0x05, 100) + v2(60, 10, 0x2000, 4096, 1, 0) +
      struct.pack("<II", 60, 300) + bytes(32))
meta_seed("batch", 0x400000a5, 3, ci, 70, 0x3000, zoff=72, zsize=40, zcount=1)
zctx = (struct.pack("<QQQIIIBBH", 0, 0, 0, 1000, 8192, 16, 0x55, 3, 0) +
        struct.pack("<QQQIIIBBH", 1000, 8192, 16, 500, 4096, 16, 0, 0, 0) + bytes(range(32)))
ci = (v2(0, 1000, 0, 4096, 0x03, 0) + v2(0, 1000, 0x1000, 4096, 0x03, 4096) +
      v2(1000, 500, 0x2000, 4096, 0x03, 1 << 32) + zctx)
meta_seed("zran", 0x1d, 3, ci, 1500, 0x3000, zoff=72, zsize=112, zcount=2, separate_digest=True)
meta_seed("zran-zstd", 0x1d, 3, ci, 1500, 0x3000, comp=3, zoff=72, zsize=112, zcount=2, separate_digest=True)

# ---- toc: a whole blob, or its tail read as a small blob ----------------------
out("toc", "fixture-blob", blob)
out("toc", "fixture-1024", blob[-1024:])
out("toc", "fixture-4096", blob[-4096:])
digests = blob[12954:13018]
zb, zd = zstd(boot), zstd(digests)
base = 0                                # fuzz-toc reads the input as a whole blob
body = bytearray(b"\x77" * 16)
boot_off = base + len(body)
body += zb + tar("image.boot", len(zb))
dig_off = base + len(body)
body += zd + tar("blob.digest", len(zd))
toc = toc_entry(2, "image.boot", boot, boot_off, len(zb)) + toc_entry(2, "blob.digest", digests, dig_off, len(zd))
body += toc + tar("rafs.blob.toc", len(toc))
out("toc", "inline-zstd", bytes(body))
body = bytearray(b"\x77" * 16)
raw_off = base + len(body)
body += digests + tar("blob.digest", 64)
toc = toc_entry(1, "blob.digest", digests, raw_off, 64)
body += toc + tar("rafs.blob.toc", len(toc))
out("toc", "digest-raw", bytes(body))
out("toc", "bare-image-boot", b"\x77" * 16 + boot + tar("image.boot", len(boot)))

# ---- cachefiles-msg: one read() of /dev/cachefiles ----------------------------
def cf_msg(msg_id, opcode, object_id, body=b"", length=None):
    n = 16 + len(body)
    return struct.pack("<IIII", msg_id, opcode, n if length is None else length, object_id) + body


def cf_open(vkey, ckey, fd=5, flags=0, vsize=None, csize=None):
    hdr = struct.pack("<IIII", len(vkey) if vsize is None else vsize,
                      len(ckey) if csize is None else csize, fd, flags)
    return cf_msg(1, 0, 7, hdr + vkey + ckey)


out("cachefiles-msg", "open", cf_open(b"erofs,myimage\0", b"myimage"))
out("cachefiles-msg", "open-domain", cf_open(b"erofs,domain\0", b"blob-0123"))
out("cachefiles-msg", "open-dotdot", cf_open(b"erofs,..\0", b"../../etc"))
out("cachefiles-msg", "open-space-ctl", cf_open(b"erofs,a b\0", b"x\x01y\x7f"))
out("cachefiles-msg", "open-key-overflow", cf_open(b"erofs,x\0", b"y", vsize=0xffffffff, csize=10))
out("cachefiles-msg", "open-bad-fd", cf_open(b"erofs,x\0", b"y", fd=0xffffffff))
out("cachefiles-msg", "open-no-nul", cf_open(b"erofs,xy", b"y"))
out("cachefiles-msg", "close", cf_msg(3, 1, 7))
out("cachefiles-msg", "read", cf_msg(4, 2, 7, struct.pack("<QQ", 4096, 65536)))
out("cachefiles-msg", "read-len0", cf_msg(5, 2, 7, struct.pack("<QQ", 4096, 0)))
out("cachefiles-msg", "read-overflow", cf_msg(6, 2, 7, struct.pack("<QQ", 2**64 - 4096, 8192)))
out("cachefiles-msg", "bad-len", cf_msg(7, 2, 7, struct.pack("<QQ", 0, 1), length=1000))
out("cachefiles-msg", "bad-opcode", cf_msg(8, 3, 7))

# ---- fanotify-event: one read() of a fanotify group -----------------------------
FAN_PRE_ACCESS, FAN_OPEN_PERM, FAN_Q_OVERFLOW = 0x00100000, 0x00010000, 0x00004000


def fan_event(mask, fd=4, pid=100, records=b"", vers=3, mlen=24, elen=None):
    n = 24 + len(records)
    return struct.pack("<IBBHQii", n if elen is None else elen, vers, 0, mlen, mask, fd, pid) + records


def fan_range(off, count, rlen=24, rtype=6):
    return struct.pack("<BBHIQQ", rtype, 0, rlen, 0, off, count)


out("fanotify-event", "pre-access", fan_event(FAN_PRE_ACCESS, records=fan_range(0, 4096)))
out("fanotify-event", "two-events", fan_event(FAN_PRE_ACCESS, records=fan_range(8192, 100)) +
    fan_event(FAN_OPEN_PERM))
out("fanotify-event", "unknown-record", fan_event(FAN_PRE_ACCESS, records=struct.pack("<BBH", 1, 0, 12) +
    bytes(8) + fan_range(0, 1)))
out("fanotify-event", "overflow", fan_event(FAN_Q_OVERFLOW, fd=-1))
out("fanotify-event", "range-overflow", fan_event(FAN_PRE_ACCESS, records=fan_range(2**63, 2**63)))
out("fanotify-event", "short-range", fan_event(FAN_PRE_ACCESS, records=fan_range(0, 1)[:20]))
out("fanotify-event", "bad-event-len", fan_event(FAN_PRE_ACCESS, elen=4000) + fan_event(FAN_OPEN_PERM))
out("fanotify-event", "bad-version", fan_event(FAN_OPEN_PERM, vers=2))
out("fanotify-event", "big-metadata", fan_event(FAN_OPEN_PERM, mlen=32, records=bytes(8)))

# ---- config: YAML files --------------------------------------------------------
out("config", "readme", b"""cache_dir: /var/cache/fscache
images:
  - fsid: myimage                      # mount -o fsid=myimage
    bootstrap: /srv/images/myimage.erofs
    backend: {type: localfs, dir: /srv/blobs}
""")
out("config", "all-keys", b"""cache_dir: /c
work_dir: /w
tag: t1
threads: 4
read_window: 1MiB
merge_limit: 4MiB
max_inflight: 64MiB
request_timeout: 30s
raw_chunk_size: 1MiB
verify: false
readahead: 0
fanotify_readahead: 16MiB
frontend: fanotify
images:
  - fsid: a
    domain_id: d
    bootstrap: /b
    prefill_bootstrap: true
    prefetch: true
    blobs: [blob-0, blob-1]
    backend: {type: localfs, dir: /blobs}
""")
out("config", "registry", b"""cache_dir: /c
images:
  - fsid: layer0
    bootstrap_blob: f999683eacaa865e4220e688ec427401963defb5a6d61c0c96002bcb74e6d42a
    backend:
      type: registry
      scheme: https
      host: registry.example.com
      repo: library/app
      auth: dXNlcjpwYXNz
      timeout: 30
      proxy: {url: "http://127.0.0.1:65001", fallback: true}
      mirrors: [{host: "http://mirror.local:5000"}]
  - fsid: s3img
    bootstrap: /b
    backend: {type: s3, endpoint: s3.example.com, region: us-east-1, bucket_name: b, object_prefix: p/}
  - fsid: ossimg
    bootstrap: /b
    backend: {type: oss, endpoint: oss.example.com, bucket_name: b}
  - fsid: proxyimg
    bootstrap: /b
    backend: {type: http-proxy, addr: /run/p.sock, path: /blobs}
""")
out("config", "secrets", b"""cache_dir: /c
images:
  - fsid: a
    bootstrap: /b
    backend:
      type: registry
      host: r.example
      repo: x/y
      headers: ["Authorization: Bearer t", "X-Other: 1"]
      proxy: {url: "http://user:pw@127.0.0.1:3128"}
      mirrors:
        - {host: "https://m1.example", headers: ["X-A: b"]}
        - {host: "https://u:p@m2.example"}
""")
out("config", "errors", b"cache_dir: /c\nthreads: 0\nimages:\n  - fsid: ../x\n    bootstrap: /b\n")
out("config", "anchors", b"cache_dir: &c /c\nwork_dir: *c\nimages: []\n")
out("config", "flow-json", b'{"cache_dir": "/c", "images": [{"fsid": "x", "bootstrap": "/b"}]}\n')
out("config", "tags-doc", b"%YAML 1.1\n---\ncache_dir: !!str /c\nverify: !!bool yes\n...\n")

# ---- json: registry token responses and docker config.json -------------------------
out("json", "token", b'{"token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","access_token":"eyJ","expires_in":300,'
    b'"issued_at":"2024-01-01T00:00:00Z"}')
out("json", "dockercfg", b'{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},'
    b'"registry.example.com":{"auth":"","identitytoken":"refresh-\\u00e9\\ud83d\\ude00"}}}')
out("json", "values", b' [1, -0.5, 1e308, 18446744073709551615, 18446744073709551616, true, false, null,'
    b' "\\"\\\\\\/\\b\\f\\n\\r\\t", {}, []] ')
out("json", "deep", b'{"a":' * 31 + b'{}' + b'}' * 31)
out("json", "too-deep", b'[' * 40 + b']' * 40)
out("json", "utf8", '{"k\u00e9y":"\u4e2d\u6587 \U0001f600"}'.encode())
out("json", "dup-keys", b'{"auths":{"docker.io":{"auth":"YQ=="}},"auths":1}')
out("json", "bad-surrogate", b'{"a":"\\ud800"}')

# ---- www-authenticate: header values -----------------------------------------------
for name, v in {
    "bearer": 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:library/ubuntu:pull"',
    "basic": 'Basic realm="Registry Realm"',
    "two": 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    "token68": 'Negotiate YWJjZGVm==, Bearer realm=x',
    "error": 'Bearer realm="https://a/t",error="invalid_token",error_description="expired"',
    "empty-elements": ', ,Basic realm=a,, ,',
    "dup-param": 'Bearer realm=a, realm=b',
}.items():
    out("www-authenticate", name, v.encode())

# ---- http-headers: flags, range offset (8), range length (4), header lines, body -------
def http_seed(flags, off, length, head, body=b""):
    return struct.pack("<BQI", flags, off, length - 1) + head + b"\r\n" + body


RANGED, HEAD, BUF = 1, 2, 4
out("http-headers", "206", http_seed(RANGED, 100, 10, b"HTTP/1.1 206 Partial Content\r\n"
    b"Content-Range: bytes 100-109/1000\r\nContent-Length: 10\r\n", b"0123456789"))
out("http-headers", "206-h2-short-object", http_seed(RANGED, 100, 10, b"HTTP/2 206\r\n"
    b"content-range: bytes 100-104/105\r\n", b"01234"))
out("http-headers", "200-whole", http_seed(RANGED, 0, 10, b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n",
    b"0123456789"))
out("http-headers", "100-then-206", http_seed(RANGED, 0, 4, b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 206 OK\r\nContent-Range: bytes 0-3/*\r\n", b"abcd"))
out("http-headers", "401", http_seed(RANGED, 0, 4, b"HTTP/1.1 401 Unauthorized\r\n"
    b'WWW-Authenticate: Bearer realm="https://auth.example.com/token",service="r"\r\n'
    b'WWW-Authenticate: Basic realm="r"\r\n', b'{"errors":[]}'))
out("http-headers", "307", http_seed(RANGED, 0, 4, b"HTTP/1.1 307 Temporary Redirect\r\n"
    b"Location: https://bucket.s3.example.com/blob?X-Amz-Signature=abc\r\n"))
out("http-headers", "429", http_seed(RANGED, 0, 4, b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7200\r\n"))
out("http-headers", "head", http_seed(HEAD, 0, 1, b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n"))
out("http-headers", "token-body", http_seed(BUF, 0, 64, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
    b'{"token":"t"}'))
out("http-headers", "bad-range", http_seed(RANGED, 5, 4, b"HTTP/1.1 206 OK\r\n"
    b"Content-Range: bytes 5-8/8\r\nContent-Length: 4\r\nContent-Length: 5\r\n", b"abcd"))

# ---- erofs-image / erofs-datamap: plain erofs images from mkfs.erofs ----------------
out("erofs-image", "rafs-fixture-head", boot[:4096])
out("erofs-image", "rafs-fixture-two-blobs",
    open(os.path.join(HERE, "corpus", "rafs-bootstrap", "two-blobs"), "rb").read()[:0x1200])
if shutil.which("mkfs.erofs"):
    tmp = tempfile.mkdtemp()
    src = os.path.join(tmp, "src")
    os.makedirs(os.path.join(src, "dir", "sub"))
    open(os.path.join(src, "small"), "wb").write(b"hello\n")
    open(os.path.join(src, "dir", "two-blocks"), "wb").write(bytes(range(256)) * 40)
    open(os.path.join(src, "dir", "sub", "tail"), "wb").write(b"x" * 5000)
    os.symlink("small", os.path.join(src, "link"))
    fixed = ["-T0", "-U00000000-0000-0000-0000-000000000001", "--all-root", "-x-1"]
    for name, opts in {"flat": [], "chunked": ["--chunksize=4096"], "lz4": ["-zlz4"]}.items():
        img = os.path.join(tmp, name + ".erofs")
        subprocess.run(["mkfs.erofs", "--quiet"] + fixed + opts + [img, src], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data = open(img, "rb").read()
        out("erofs-datamap", name, data)
        out("erofs-image", "mkfs-" + name, data[:4096])
    shutil.rmtree(tmp)

# ---- images from nydus-mkimage ---------------------------------------------------
if MKIMAGE:
    tmp = tempfile.mkdtemp()
    src = os.path.join(tmp, "src")
    os.makedirs(os.path.join(src, "sub"))
    # Deterministic content: two text-like files, zeros, a duplicate, a small file.
    text = b"".join(b"line %d: the quick brown fox\n" % i for i in range(700))
    open(os.path.join(src, "a.txt"), "wb").write(text)
    open(os.path.join(src, "sub", "b.txt"), "wb").write(text[::-1])
    open(os.path.join(src, "zeros"), "wb").write(bytes(9000))
    open(os.path.join(src, "dup.txt"), "wb").write(text)
    open(os.path.join(src, "small"), "wb").write(b"hello\n")
    configs = {
        "v1-zstd-toc": ["-c", "4K", "-t"],
        "v2-crc-lz4-inline": ["-c", "4K", "-C", "v2", "--crc32", "-z", "lz4_block", "--ci-compressor", "lz4_block", "-i"],
        "v2-sha256-none": ["-c", "8K", "-C", "v2", "-d", "sha256", "-z", "none", "--ci-compressor", "none"],
        "v1-lz4-inline": ["-c", "16K", "-z", "lz4_block", "-i"],
    }
    for name, opts in configs.items():
        o = os.path.join(tmp, name)
        blob_id = subprocess.run([MKIMAGE, "-o", o] + opts + [src], check=True,
                                 stdout=subprocess.PIPE).stdout.decode().strip()
        mboot = open(os.path.join(o, "image.boot"), "rb").read()
        mblob = open(os.path.join(o, blob_id), "rb").read()
        out("rafs-bootstrap", "mk-" + name, mboot)
        if "-t" in opts or "-i" in opts:
            out("toc", "mk-" + name, mblob)
        bt, = struct.unpack_from("<Q", mboot, 1152 + 8)
        ent = mboot[bt:bt + 256]
        ci_off, ci_c, ci_u = struct.unpack_from("<QQQ", ent, 112)
        out("blob-meta", "mk-" + name, b"\0" + ent + mblob[ci_off:ci_off + ci_c + 4096])
    shutil.rmtree(tmp)
