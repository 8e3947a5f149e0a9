#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Generate a deterministic source tree that exercises every nydus-mkimage feature.

usage: gen-tree.py DIR [--small]
Root-only pieces (device nodes, chown) are skipped when not root.
"""
import os
import random
import socket
import stat
import sys

MTIME_NS = 1_600_000_000_123_456_789


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def setx(path, name, value, follow=True):
    try:
        os.setxattr(path, name, value, follow_symlinks=follow)
        return True
    except OSError:
        return False


def main():
    root = sys.argv[1]
    small = "--small" in sys.argv
    rng = random.Random(20240601)
    is_root = os.geteuid() == 0
    os.makedirs(root)
    os.chmod(root, 0o755)
    j = lambda *p: os.path.join(root, *p)

    # Regular files: empty, tiny, block-exact, multi-chunk, incompressible, sparse.
    write(j("empty"), b"")
    write(j("tiny.txt"), b"hello, nydus\n")
    write(j("block4k"), bytes(range(256)) * 16)
    text = b"".join(b"line %08d of a compressible file\n" % i for i in range(60000 if not small else 6000))
    write(j("text.log"), text)
    write(j("random.bin"), rng.randbytes((3 << 20) + 12345 if not small else 300000), 0o600)
    with open(j("sparse.img"), "wb") as f:
        f.truncate((24 << 20) if not small else (3 << 20))
        f.seek((9 << 20) + 100 if not small else (1 << 20) + 100)
        f.write(b"data in the middle of a hole" * 100)

    # Identical content in several files: dedup.
    os.makedirs(j("dup"))
    blob = rng.randbytes(200000)
    for i in range(4):
        write(j("dup", "copy%d" % i), blob)
    write(j("dup", "prefix"), blob[:65536])

    # Hardlinks (one in another directory), symlinks short and long.
    os.link(j("tiny.txt"), j("hardlink-a"))
    os.link(j("tiny.txt"), j("dup", "hardlink-b"))
    os.symlink("tiny.txt", j("link-short"))
    os.symlink("d/" * 1990 + "target", j("link-long"))       # 3986 bytes, needs a block
    os.symlink("/nonexistent/absolute", j("link-dangling"))

    # Special files.
    os.mkfifo(j("fifo"))
    s = socket.socket(socket.AF_UNIX)
    s.bind(j("socket"))
    s.close()
    if is_root:
        os.mknod(j("null-chr"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(j("blk-dev"), 0o660 | stat.S_IFBLK, os.makedev(259, 0x12345))

    # A large directory whose dirents span many 4 KiB blocks; odd names sort before ".".
    os.makedirs(j("bigdir"))
    for i in range(2000 if not small else 400):
        name = "entry-%05d-%s" % (i, "x" * (i % 200))
        write(j("bigdir", name), b"%d\n" % i)
    for name in ["!bang", "#hash", "-dash", "+plus", " space", "ünïcødé", "a.b", "a", "A"]:
        write(j("bigdir", name), name.encode())
    write(j("bigdir", "n" * 255), b"longest name\n")

    # Deep nesting.
    d = j("deep")
    for i in range(60):
        d = os.path.join(d, "level%02d" % i)
    os.makedirs(d)
    write(os.path.join(d, "bottom"), b"bottom of the tree\n")

    # Modes and owners.
    write(j("setuid"), b"#!/bin/sh\n", 0o4755)
    os.makedirs(j("sticky"))
    os.chmod(j("sticky"), 0o1777)
    write(j("owned"), b"owned\n", 0o640)
    if is_root:
        os.chown(j("owned"), 1234, 5678)
        os.chown(j("sticky"), 70000, 70001, follow_symlinks=False)
        os.chown(j("link-short"), 4321, 8765, follow_symlinks=False)

    # Xattrs: user.* and security.*, inline, a big one, on a dir and on the root.
    have_xattr = setx(j("tiny.txt"), "user.comment", b"a small value")
    if have_xattr:
        setx(j("tiny.txt"), "user.empty", b"")
        setx(j("tiny.txt"), "security.capability", b"\x01\x00\x00\x02" + b"\x00" * 16)
        setx(j("text.log"), "user.big", bytes(rng.randrange(256) for _ in range(3000)))
        setx(j("bigdir"), "user.dir", b"on a directory")
        setx(root, "user.root", b"on the root")
        setx(j("link-long"), "security.label", b"symlink label", follow=False)
        for i in range(20):
            setx(j("random.bin"), "user.k%02d" % i, b"v" * i)

    # Fixed mtimes everywhere (deepest first so parents keep theirs).
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            p = os.path.join(dirpath, n)
            os.utime(p, ns=(MTIME_NS, MTIME_NS + len(n)), follow_symlinks=False)
        os.utime(dirpath, ns=(MTIME_NS, MTIME_NS))


if __name__ == "__main__":
    main()
