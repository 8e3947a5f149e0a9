#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Independent check of a nydus-mkimage blob tail against its bootstrap.

usage: check-blob-tail.py BOOTSTRAP BLOB

Walks the reverse-tar chain from EOF (Python's tarfile validates each
header checksum), parses the TOC, re-hashes every TOC entry it can, and
compares blob id, blob size, TOC size/digest and ci location with the
bootstrap's blob table. BATCH blobs: the context array fields of the ci
header. SEPARATE (targz-ref) blobs: the meta blob next to BLOB, named
hex(blob_meta_digest), holds ci ‖ header and nothing else; BLOB is the
untouched tarball. Written from nydus-format.md §1.5, §2.1-2.6, §3 only,
sharing no code with the builder or the C readers.
"""
import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zlib


def fail(msg):
    print("check-blob-tail: FAIL: " + msg)
    sys.exit(1)


def unzstd(raw):
    """zstd frames through the zstd CLI (Python has no zstd module here); None if absent."""
    if not shutil.which("zstd"):
        return None
    return subprocess.run(["zstd", "-dc"], input=raw, capture_output=True, check=True).stdout


def load_ci(meta, ci_off, ci_csize, ci_usize, ci_comp):
    """The uncompressed ci table, or None when this script cannot decompress it."""
    raw = meta[ci_off:ci_off + ci_csize]
    ci = raw if ci_comp == 0 else unzstd(raw) if ci_comp == 3 else None
    if ci is not None and len(ci) != ci_usize:
        fail("ci table decompresses to %d bytes, not %d" % (len(ci), ci_usize))
    return ci


def ci_v2(ci, i):
    """(flags, uoff, usize, coff, csize, hi32, lo32) of V2 entry i (docs §2.5)."""
    u, c, d = struct.unpack_from("<QQQ", ci, 24 * i)
    return (u >> 56, (u & 0xFFFFFFFF) << 12, ((u >> 32) & 0xFFFFFF) + 1,
            c & 0xFFFFFFFFFF, c >> 40, d >> 32, d & 0xFFFFFFFF)


class Bits:
    """A deflate bit stream: fields LSB first, Huffman codes MSB first (RFC 1951 §3.1.1)."""
    def __init__(self):
        self.v, self.n = 0, 0

    def put(self, value, nbits):
        self.v |= value << self.n
        self.n += nbits

    def code(self, code, nbits):
        for i in reversed(range(nbits)):
            self.put((code >> i) & 1, 1)


def empty_fixed_block(b):
    """No output, 10 bits: BFINAL 0, BTYPE 01, end-of-block (7 zero bits)."""
    b.put(0, 1)
    b.put(1, 2)
    b.code(0, 7)


def empty_dynamic_block(b):
    """No output, 95 bits (odd, unlike a fixed block): literal/length code {0: '0', 256: '1'},
    no distance codes, code-length code {0: '0', 1: '10', 18: '11'}."""
    b.put(0, 1)
    b.put(2, 2)
    b.put(0, 5)             # HLIT: 257 codes
    b.put(0, 5)             # HDIST: 1 code
    b.put(14, 4)            # HCLEN: 18 code-length code lengths
    cl = {18: 2, 0: 1, 1: 2}
    for sym in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1]:
        b.put(cl.get(sym, 0), 3)
    b.code(2, 2)            # literal 0: length 1
    b.code(3, 2); b.put(127, 7)     # 138 zeros
    b.code(3, 2); b.put(106, 7)     # 117 zeros (literals 1..255)
    b.code(2, 2)            # 256 (end of block): length 1
    b.code(0, 1)            # the distance code: length 0
    b.code(1, 1)            # end of block


def primed(blob, in_off, in_len, bits):
    """The context's input as a byte-aligned raw deflate stream. inflatePrime by hand: empty
    blocks fill 8 - bits bits, then come the pending high bits of the byte before in_off, so
    the original bytes (and their stored-block alignment) start on a byte boundary."""
    data = blob[in_off:in_off + in_len]
    if not bits:
        return data
    b = Bits()
    need = 8 - bits
    if need % 2:
        empty_dynamic_block(b)      # 95 bits = 7 mod 8
        need = (need - 7) % 8
    for _ in range(need // 2):
        empty_fixed_block(b)        # 10 bits = 2 mod 8
    b.put(blob[in_off - 1] >> (8 - bits), bits)
    assert b.n % 8 == 0
    return b.v.to_bytes(b.n // 8, "little") + data


def check_zran(blob, ci, n, zoff, zcount):
    """Inflate every ZranInflateContext with Python's zlib and compare with the tar."""
    tar = gzip.decompress(blob)
    dict_base = zoff + 40 * zcount
    ctx = []
    for i in range(zcount):
        in_off, out_off, d_off, in_len, out_len, d_size, byte, bits = struct.unpack_from(
            "<QQQIIIBB", ci, zoff + 40 * i)
        if bits > 7 or d_size > 32768 or in_off + in_len > len(blob):
            fail("zran context %d out of range" % i)
        if bits and byte != blob[in_off - 1]:
            fail("zran context %d: ctx_byte is not the byte before in_offset" % i)
        data = primed(blob, in_off, in_len, bits)
        zd = ci[dict_base + d_off:dict_base + d_off + d_size]
        d = zlib.decompressobj(-15, zdict=zd) if zd else zlib.decompressobj(-15)
        out = d.decompress(data, out_len)
        if out != tar[out_off:out_off + out_len]:
            fail("zran context %d does not inflate to tar[%d, +%d)" % (i, out_off, out_len))
        ctx.append((out_off, out_len))
    for i in range(n):
        flags, uoff, usize, coff, csize, hi, lo = ci_v2(ci, i)
        if flags != 0x03 or hi >= zcount or lo + usize > ctx[hi][1]:
            fail("ci[%d]: flags %#x / zran %d+%d not a valid ZRAN chunk" % (i, flags, hi, lo))


def check_batches(blob, ci, n, zoff, zcount, comp):
    """Batch members point at their batch; each batch decompresses to its size."""
    batches = [struct.unpack_from("<II", ci, zoff + 40 * i) for i in range(zcount)]
    starts = {}
    for i in range(n):
        flags, uoff, usize, coff, csize, hi, lo = ci_v2(ci, i)
        if not flags & 0x04:
            continue
        if flags & 0x10 or csize != 0 or hi >= zcount or lo + usize > batches[hi][1]:
            fail("ci[%d]: bad batch member (flags %#x, csize %d, batch %d+%d)" % (i, flags, csize, hi, lo))
        if starts.setdefault(hi, coff) != coff:
            fail("ci[%d]: batch %d members disagree on its offset" % (i, hi))
    for b, (cs, us) in enumerate(batches):
        if b not in starts:
            fail("batch %d has no members" % b)
        raw = blob[starts[b]:starts[b] + cs]
        if cs == us:
            continue
        out = unzstd(raw) if comp == 3 else None
        if out is not None and len(out) != us:
            fail("batch %d decompresses to %d bytes, not %d" % (b, len(out), us))


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
    ctx_kind = features & (0x80 | 0x8)      # BATCH or ZRAN: contexts follow the entries
    if ctx_kind and not features & 0x4:
        fail("BATCH/ZRAN without CHUNK_INFO_V2")
    if (ci_usize < chunk_count * entry) if ctx_kind else (ci_usize != chunk_count * entry):
        fail("ci_uncompressed_size %d vs %d * %d" % (ci_usize, chunk_count, entry))
    meta = blob
    if features & 0x10:
        # SEPARATE: the ci table lives in the meta blob; BLOB is the original tarball.
        if not features & 0x8 or comp != 2:
            fail("SEPARATE blob without ZRAN / gzip compression")
        meta_id = e[168:200].hex()
        (meta_size,) = struct.unpack_from("<Q", e, 200)
        meta = open(os.path.join(os.path.dirname(sys.argv[2]), meta_id), "rb").read()
        if hashlib.sha256(meta).hexdigest() != meta_id or len(meta) != meta_size:
            fail("meta blob name/size != sha256/blob_meta_size")
        if ci_off + ci_csize + 4096 != len(meta) or toc_size or any(toc_digest):
            fail("meta blob is not exactly ci + header, or a TOC is set")
        if blob[:2] != b"\x1f\x8b":
            fail("SEPARATE data blob is not gzip")
    hdr = meta[ci_off + ci_csize:ci_off + ci_csize + 4096]
    magic, hfeat, hcomp, hentries, hoff, hcs, hus = struct.unpack_from("<IIIIQQQ", hdr, 0)
    zoff, zsize, zcount = struct.unpack_from("<QQI", hdr, 40)
    if ctx_kind:
        if zoff != chunk_count * 24 or zoff + zsize != ci_usize:
            fail("ci zran offset/size %d/%d do not cover the ci after the entries" % (zoff, zsize))
        if (features & 0x80 and zsize != 40 * zcount) or zsize < 40 * zcount or zcount > chunk_count:
            fail("ci context count %d vs size %d" % (zcount, zsize))
    elif (zoff, zsize, zcount) != (0, 0, 0):
        fail("ci zran fields set without BATCH/ZRAN")
    ci = load_ci(meta, ci_off, ci_csize, ci_usize, ci_comp) if ctx_kind else None
    if ci is not None and features & 0x8:
        check_zran(blob, ci, chunk_count, zoff, zcount)
    elif ci is not None:
        check_batches(blob, ci, chunk_count, zoff, zcount, comp)
    ctx_note = "" if not ctx_kind else ", %d %s contexts %s" % (
        zcount, "zran" if features & 0x8 else "batch",
        "checked" if ci is not None else "not checked (ci compressor %d)" % ci_comp)
    magic2 = struct.unpack_from("<I", hdr, 4092)[0]
    if (magic, magic2) != (0xB10BB10B, 0xB10BB10B):
        fail("blob meta header magic")
    if (hcomp, hentries, hoff, hcs, hus) != (ci_comp, chunk_count, ci_off, ci_csize, ci_usize):
        fail("blob meta header disagrees with the blob table")
    if ci_comp == 0 and ci_csize != ci_usize:
        fail("uncompressed ci with csize != usize")

    has_toc = bool(features & 0x20000000)
    if features & 0x10:
        print("check-blob-tail: ok (separate meta blob), %d chunks%s" % (chunk_count, ctx_note))
        return
    if not has_toc:
        if toc_size or any(toc_digest):
            fail("TOC size/digest set without HAS_TOC")
        if ci_off + ci_csize + 4096 != len(blob):
            fail("blob without TOC does not end with the ci header")
        print("check-blob-tail: ok (no TOC), %d chunks%s" % (chunk_count, ctx_note))
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
    print("check-blob-tail: ok, %d chunks, TOC %s%s" % (chunk_count, names, ctx_note))


if __name__ == "__main__":
    main()
