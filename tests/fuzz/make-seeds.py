#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Regenerate the seed corpora in corpus/<target>/ from the nydus fixture.

Usage: make-seeds.py [--mkimage BUILDDIR/storage/builder/nydus-mkimage] [SHARED_DIR]
(SHARED_DIR defaults to $CFN_SHARED_DIR or /work/shared.) Needs the `zstd`
command. With --mkimage, images built by nydus-mkimage with several option
sets are added too (V2, crc32, lz4_block, sha256, TOC, inline bootstrap).
Inputs the fuzzers found are kept next to these seeds (found-*).
"""
import hashlib
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
MKIMAGE = None
if args[:1] == ["--mkimage"]:
    MKIMAGE, args = args[1], args[2:]
SHARED = args[0] if args else os.environ.get("CFN_SHARED_DIR", "/work/shared")
FIX = os.path.join(SHARED, "fixtures", "nydus-v6-2.2")
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

# ---- images from nydus-mkimage ---------------------------------------------------
if MKIMAGE:
    import shutil
    import tempfile
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
