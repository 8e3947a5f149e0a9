#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Compare a source tree with a tree extracted from an image (fsck.erofs --extract).

usage: compare-trees.py SRC EXTRACTED [--no-owner] [--no-mtime] [--no-hardlinks] [--no-special-bits]
Checks names, types, permission bits, owners, sizes, file contents (sha256),
symlink targets, device numbers, mtimes and hardlink grouping. Prints every
difference and a summary; exits 1 on any difference. erofs-utils 1.5
--extract drops setuid/setgid/sticky bits and hardlinks, hence the
--no-special-bits and --no-hardlinks switches.
"""
import hashlib
import os
import stat
import sys


def entries(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.lstat(p)
    out["."] = os.lstat(root)
    return out


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main():
    src, ext = sys.argv[1], sys.argv[2]
    opts = set(sys.argv[3:])
    a, b = entries(src), entries(ext)
    errors = []
    for p in sorted(set(a) | set(b)):
        if p not in b:
            errors.append("missing in image: %s" % p)
            continue
        if p not in a:
            errors.append("extra in image: %s" % p)
            continue
        x, y = a[p], b[p]
        if stat.S_IFMT(x.st_mode) != stat.S_IFMT(y.st_mode):
            errors.append("%s: type %o != %o" % (p, stat.S_IFMT(x.st_mode), stat.S_IFMT(y.st_mode)))
            continue
        mask = 0o777 if "--no-special-bits" in opts else 0o7777
        if not stat.S_ISLNK(x.st_mode) and x.st_mode & mask != y.st_mode & mask:
            errors.append("%s: mode %o != %o" % (p, stat.S_IMODE(x.st_mode), stat.S_IMODE(y.st_mode)))
        if "--no-owner" not in opts and (x.st_uid, x.st_gid) != (y.st_uid, y.st_gid):
            errors.append("%s: owner %d:%d != %d:%d" % (p, x.st_uid, x.st_gid, y.st_uid, y.st_gid))
        if ("--no-mtime" not in opts and not stat.S_ISLNK(x.st_mode)
                and x.st_mtime_ns // 10**9 != y.st_mtime_ns // 10**9):
            errors.append("%s: mtime %d != %d" % (p, x.st_mtime_ns, y.st_mtime_ns))
        if stat.S_ISREG(x.st_mode):
            if x.st_size != y.st_size:
                errors.append("%s: size %d != %d" % (p, x.st_size, y.st_size))
            elif digest(os.path.join(src, p)) != digest(os.path.join(ext, p)):
                errors.append("%s: content differs" % p)
        elif stat.S_ISLNK(x.st_mode):
            if os.readlink(os.path.join(src, p)) != os.readlink(os.path.join(ext, p)):
                errors.append("%s: symlink target differs" % p)
        elif stat.S_ISCHR(x.st_mode) or stat.S_ISBLK(x.st_mode):
            if x.st_rdev != y.st_rdev:
                errors.append("%s: rdev %x != %x" % (p, x.st_rdev, y.st_rdev))

    if "--no-hardlinks" not in opts:
        def groups(t):
            g = {}
            for p, s in t.items():
                if not stat.S_ISDIR(s.st_mode) and s.st_nlink > 1:
                    g.setdefault((s.st_dev, s.st_ino), []).append(p)
            return sorted(sorted(v) for v in g.values())
        if groups(a) != groups(b):
            errors.append("hardlink groups differ: %s != %s" % (groups(a), groups(b)))

    for e in errors[:50]:
        print("compare: " + e)
    print("compare: %d entries, %d differences" % (len(a), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
