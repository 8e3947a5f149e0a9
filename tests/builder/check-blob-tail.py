#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Independent check of a nydus-mkimage blob tail against its bootstrap.

usage: check-blob-tail.py BOOTSTRAP BLOB

Walks the reverse-tar chain from EOF (Python's tarfile validates each
header checksum), parses the TOC, re-hashes every TOC entry it can, and
compares blob id, blob size, TOC size/digest and ci location with the
bootstrap's blob table. Written from nydus-format.md §1.5, §2.1, §3 only,
sharing no code with the builder or the C readers.
"""
import hashlib
import os
import struct
import sys
import tarfile


def fail(msg):
    print("check-blob-tail: FAIL: " + msg)
    sys.exit(1)


def main():
    boot = open(sys.argv[1], "rb").read()
    blob = open(sys.argv[2], "rb").read()
    blob_id = os.path.basename(sys.argv[2])

    if hashlib.sha256(blob).hexdigest() != blob_id:
        fail("blob file name is not sha256 of its bytes")
    (bt_off, bt_size) = struct.unpack_from("<QI", boot, 1152 + 8)
    e = boot[bt_off:bt_off + 256]
    if e[:64].decode() != blob_id:
        fail("blob table id %r != %s" % (e[:64], blob_id))
    if boot[1408:1408 + 64] != e[:64]:
        fail("device slot tag differs from the blob table id")
    (index, chunk_size, chunk_count, comp, dig, features, csize, usize, toc_size,
     ci_comp, ci_off, ci_csize, ci_usize) = struct.unpack_from("<IIIIIIQQIIQQQ", e, 64)
    toc_digest = e[136:168]
    if csize != len(blob):
        fail("compressed_size %d != blob size %d" % (csize, len(blob)))
    entry = 24 if features & 0x4 else 16
    if ci_usize != chunk_count * entry:
        fail("ci_uncompressed_size %d != %d * %d" % (ci_usize, chunk_count, entry))
    hdr = blob[ci_off + ci_csize:ci_off + ci_csize + 4096]
    magic, hfeat, hcomp, hentries, hoff, hcs, hus = struct.unpack_from("<IIIIQQQ", hdr, 0)
    magic2 = struct.unpack_from("<I", hdr, 4092)[0]
    if (magic, magic2) != (0xB10BB10B, 0xB10BB10B):
        fail("blob meta header magic")
    if (hcomp, hentries, hoff, hcs, hus) != (ci_comp, chunk_count, ci_off, ci_csize, ci_usize):
        fail("blob meta header disagrees with the blob table")
    if ci_comp == 0 and ci_csize != ci_usize:
        fail("uncompressed ci with csize != usize")

    has_toc = bool(features & 0x20000000)
    if not has_toc:
        if toc_size or any(toc_digest):
            fail("TOC size/digest set without HAS_TOC")
        if ci_off + ci_csize + 4096 != len(blob):
            fail("blob without TOC does not end with the ci header")
        print("check-blob-tail: ok (no TOC), %d chunks" % chunk_count)
        return

    # Reverse tar chain from EOF.
    names = []
    cur = len(blob)
    sections = {}
    while cur > 0:
        if cur < 512:
            fail("tar chain ends at %d, not 0" % cur)
        try:
            ti = tarfile.TarInfo.frombuf(blob[cur - 512:cur], "utf-8", "surrogateescape")
        except tarfile.HeaderError as ex:
            fail("bad tar header at %d: %s" % (cur - 512, ex))
        if not ti.isreg():
            fail("tar header %s is not a regular file" % ti.name)
        names.append(ti.name)
        sections[ti.name] = (cur - 512 - ti.size, ti.size)
        cur = cur - 512 - ti.size
    names.reverse()
    want = ["image.blob", "blob.meta", "blob.digest", "rafs.blob.toc"]
    # The blob header keeps INLINED_FS_META; the external (merged-style) bootstrap clears it.
    if features & 0x2:
        fail("external bootstrap keeps INLINED_FS_META")
    if hfeat & 0x2:
        want.insert(3, "image.boot")
    if names != want:
        fail("tar chain %s != %s" % (names, want))

    toc_start = len(blob) - toc_size
    if toc_size != sections["rafs.blob.toc"][1] + 512:
        fail("blob_toc_size %d != TOC entries + 512" % toc_size)
    if hashlib.sha256(blob[toc_start:]).digest() != toc_digest:
        fail("blob_toc_digest does not match")
    n = (toc_size - 512) // 128
    toc = {}
    for i in range(n):
        t = blob[toc_start + 128 * i:toc_start + 128 * (i + 1)]
        flags = struct.unpack_from("<I", t, 0)[0]
        name = t[8:24].rstrip(b"\0").decode()
        off, cs, us = struct.unpack_from("<QQQ", t, 56)
        toc[name] = (flags, t[24:56], off, cs, us)
        if bin(flags & 0xF).count("1") != 1:
            fail("TOC entry %s: flags %#x" % (name, flags))
    if sorted(toc) != sorted(["image.blob", "blob.meta", "blob.meta.header", "blob.digest"] +
                              (["image.boot"] if hfeat & 0x2 else [])):
        fail("TOC names %s" % sorted(toc))

    f, d, off, cs, us = toc["image.blob"]
    if off != 0 or cs != sections["image.blob"][1] or us != usize:
        fail("image.blob entry offset/size")
    if hashlib.sha256(blob[0:cs + 512]).digest() != d:
        fail("image.blob digest")
    f, d, off, cs, us = toc["blob.meta"]
    if (off, cs, us) != (ci_off, ci_csize, ci_usize):
        fail("blob.meta entry")
    if ci_comp == 0 and hashlib.sha256(blob[off:off + cs]).digest() != d:
        fail("blob.meta digest")
    f, d, off, cs, us = toc["blob.meta.header"]
    if (off, cs) != (ci_off + ci_csize, 4096) or hashlib.sha256(hdr).digest() != d:
        fail("blob.meta.header entry")
    if sections["blob.meta"] != (ci_off, ci_csize + 4096):
        fail("blob.meta tar section")
    f, d, off, cs, us = toc["blob.digest"]
    if (off, cs) != sections["blob.digest"] or cs != 32 * chunk_count:
        fail("blob.digest entry")
    if hashlib.sha256(blob[off:off + cs]).digest() != d:
        fail("blob.digest digest")
    if "image.boot" in toc:
        f, d, off, cs, us = toc["image.boot"]
        if (off, cs) != sections["image.boot"]:
            fail("image.boot entry")
        if f == 1 and hashlib.sha256(blob[off:off + cs]).digest() != d:
            fail("image.boot digest")
    # Chunk data must end where the image.blob tar header starts (compressed_data_size).
    if sections["image.blob"][1] + 512 != ci_off:
        fail("ci_offset %d != chunk data + tar header" % ci_off)
    print("check-blob-tail: ok, %d chunks, TOC %s" % (chunk_count, names))


if __name__ == "__main__":
    main()
