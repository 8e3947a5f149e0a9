#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Build RAFS v6 images with nydus-mkimage for every compressor x digester x
# ci version x tail layout (plain, --toc, --inline-bootstrap) plus chunk-size
# and dedup variants, batch images (--batch-size) and targz-ref images (from
# a deterministic `tar | gzip -n` of the same tree, single- and multi-member
# gzip), and check each one:
#   - determinism: a second build from a copy of the tree at another path
#     gives the same bytes (bootstrap and blob) and the same blob id;
#   - blob id == sha256 of the blob, bootstrap size 4 KiB aligned;
#   - check-blob-tail.py: reverse-tar chain, TOC entries and digests, blob
#     table vs blob header (independent Python, from the format doc);
#   - fsck.erofs --device=<expected cache file> --extract, compared with the
#     source (erofs-utils reads our erofs metadata and chunk indexes);
#   - dump.erofs -S over the same pair;
#   - check-image: the project's RAFS readers parse the bootstrap and ci
#     table (targz-ref: from the separate meta blob), every chunk is
#     decompressed (batches as a whole, ZRAN chunks by raw inflate of the
#     tarball from their checkpoint) and digest-checked, every file is
#     re-read through the erofs metadata and compared with the source, and
#     the rebuilt cache file must equal nydus-mkimage --blob-data.
# usage: test-builder.sh NYDUS_MKIMAGE [CHECK_IMAGE]
set -uo pipefail

MK=$(realpath "$1")
CHECK=${2:+$(realpath "$2")}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
FULL=${BUILDER_TEST_FULL:-0}

command -v "$PY" >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
FSCK=$(command -v fsck.erofs || true)
[ -n "$FSCK" ] || echo "note: fsck.erofs not found (apt-get install erofs-utils); skipping that check"
DUMP=$(command -v dump.erofs || true)

work=$(mktemp -d /tmp/test-builder.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

"$PY" "$HERE/gen-tree.py" "$work/src" --small || { echo "FAIL: gen-tree"; exit 1; }
cp -a "$work/src" "$work/src-copy"
"$PY" "$HERE/gen-tree.py" "$work/big" || { echo "FAIL: gen-tree"; exit 1; }

# targz-ref inputs: tar drops sockets; owners are forced to 0 and mtimes to
# whole seconds (check-image --tar, compare --no-owner). src: pax format with
# xattrs (SCHILY.xattr, path/linkpath records; atime/ctime dropped and fixed
# header names for determinism); big: GNU format (L/K long names), no xattrs.
mktar() {  # TREE OUT.tar.gz FORMAT
    local fmt=(--format=gnu)
    [ "$3" = posix ] && fmt=(--format=posix --xattrs --xattrs-include='*'
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
    tar "${fmt[@]}" --sort=name --mtime=@1600000000 --owner=0 --group=0 --numeric-owner \
        -C "$1" -cf - . | gzip -n -6 >"$2"
}
for t in src src-copy big; do
    cp -a "$work/$t" "$work/$t-tar"
    find "$work/$t-tar" -type s -delete
    touch -m -d @1600000000 "$work/$t-tar"
    mktar "$work/$t-tar" "$work/$t.tar.gz" "$([ $t = big ] && echo gnu || echo posix)" ||
        { echo "FAIL: tar"; exit 1; }
done
cmp -s "$work/src.tar.gz" "$work/src-copy.tar.gz" || { echo "FAIL: tar | gzip -n is not deterministic"; exit 1; }
# The same tar as two gzip members, split between entries (a context never spans members).
"$PY" - "$work/src.tar.gz" "$work/src-2m.tar.gz" <<'PY' || { echo "FAIL: split tar"; exit 1; }
import gzip, io, sys, tarfile, zlib
raw = gzip.decompress(open(sys.argv[1], "rb").read())
offsets = [m.offset for m in tarfile.open(fileobj=io.BytesIO(raw))]
cut = offsets[len(offsets) // 2]     # a header in the middle: each member holds whole entries
def gz(b):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(b) + c.flush()
open(sys.argv[2], "wb").write(gz(raw[:cut]) + gz(raw[cut:]))
PY

# check NAME SRC ARGS...: build, rebuild elsewhere, verify everything.
check() {
    local name=$1 src=$2
    shift 2
    local o1="$work/$name.1" o2="$work/$name.2" id1 id2 before=$fail
    # A tarball (targz-ref) is checked against the tree it was made from.
    local tree=$src copy=$work/src-copy ck=() cmpopt=()
    if [[ $src == *.tar.gz ]]; then
        tree=${src%.tar.gz}-tar copy=$work/src-copy.tar.gz ck=(--tar) cmpopt=(--no-owner)
        [[ $src == */src-2m.tar.gz ]] && tree=$work/src-tar
        [[ $src == */big.tar.gz ]] && ck+=(--no-xattrs)
    fi
    if ! id1=$("$MK" "$@" -o "$o1" --blob-data "$o1.data" "$src" 2>"$work/err"); then
        bad "$name: build failed: $(cat "$work/err")"
        return
    fi
    [[ $id1 =~ ^[0-9a-f]{64}$ ]] || bad "$name: printed blob id '$id1'"
    [ "$(sha256sum "$o1/$id1" | cut -d' ' -f1)" = "$id1" ] || bad "$name: blob id != sha256(blob)"
    [ $(( $(stat -c %s "$o1/image.boot") % 4096 )) -eq 0 ] || bad "$name: bootstrap size not 4 KiB aligned"

    # Determinism: same tree at another path, another output dir.
    if [ "$src" = "$work/src" ] || [ "$src" = "$work/src.tar.gz" ]; then
        id2=$("$MK" "$@" -o "$o2" "$copy" 2>"$work/err") || bad "$name: rebuild failed"
        [ "$id1" = "${id2:-}" ] || bad "$name: blob id differs between builds"
        cmp -s "$o1/image.boot" "$o2/image.boot" || bad "$name: bootstrap differs between builds"
        cmp -s "$o1/$id1" "$o2/${id2:-x}" || bad "$name: blob differs between builds"
        diff -rq "$o1" "$o2" >/dev/null || bad "$name: output directories differ (meta blob?)"
    fi

    "$PY" "$HERE/check-blob-tail.py" "$o1/image.boot" "$o1/$id1" >"$work/out" 2>&1 ||
        bad "$name: $(cat "$work/out")"

    if [ -n "$FSCK" ]; then
        rm -rf "$work/x"
        if "$FSCK" --device="$o1.data" --extract="$work/x" --preserve "$o1/image.boot" >"$work/out" 2>&1; then
            "$PY" "$HERE/compare-trees.py" "$tree" "$work/x" --no-hardlinks --no-special-bits "${cmpopt[@]}" \
                >"$work/out" 2>&1 || bad "$name: fsck.erofs extract differs: $(cat "$work/out")"
        else
            bad "$name: fsck.erofs: $(cat "$work/out")"
        fi
        rm -rf "$work/x"
    fi
    # dump.erofs -S walks every inode of the bootstrap.
    if [ -n "$DUMP" ] && ! "$DUMP" --device="$o1.data" -S "$o1/image.boot" >"$work/out" 2>&1; then
        bad "$name: dump.erofs: $(tail -n 5 "$work/out")"
    fi

    if [ -n "$CHECK" ]; then
        if "$CHECK" "$o1/image.boot" "$o1/$id1" --source "$tree" --cache-file "$work/cache" "${ck[@]}" \
            >"$work/out" 2>&1; then
            cmp -s "$work/cache" "$o1.data" || bad "$name: cache rebuilt from the blob != --blob-data"
        else
            bad "$name: check-image: $(tail -n 20 "$work/out")"
        fi
        rm -f "$work/cache"
    fi
    [ "$fail" -eq "$before" ] && pass=$((pass + 1))
    [ "$fail" -eq "$before" ] && echo "ok   $name ($(stat -c %s "$o1/$id1") B blob, $(tail -n1 "$work/out" 2>/dev/null | cut -c1-90))"
    rm -rf "$o1" "$o2" "$o1.data"
}

for z in none lz4_block zstd; do
    for d in sha256 blake3; do
        for ci in v1 v2; do
            for tail in plain toc inline; do
                extra=()
                [ "$tail" = toc ] && extra=(--toc)
                [ "$tail" = inline ] && extra=(--inline-bootstrap)
                check "$z-$d-$ci-$tail" "$work/src" -c 64K -z "$z" -d "$d" -C "$ci" "${extra[@]}"
            done
        done
    done
done
check defaults "$work/src"
check chunk-4k-crc "$work/src" -c 4K -C v2 --crc32 --inline-bootstrap
check chunk-16m "$work/src" -c 16M -z lz4_block -d sha256 --toc
check no-dedup "$work/src" -c 64K --no-dedup --toc
check ci-raw "$work/src" -C v2 --ci-compressor none
check ci-lz4 "$work/src" -c 4K --ci-compressor lz4_block -z zstd -l 19
check big-default "$work/big" --toc
check big-4k "$work/big" -c 4K -z lz4_block -C v2 --inline-bootstrap
if [ "$FULL" = 1 ]; then
    check big-none "$work/big" -c 1M -z none -d sha256
fi

# Batches: small chunks (file tails, small files) packed and compressed together.
for z in none lz4_block zstd; do
    for d in sha256 blake3; do
        for bs in 4K 32K; do
            check "batch-$bs-$z-$d" "$work/src" -c 64K --batch-size "$bs" -z "$z" -d "$d"
        done
    done
done
check batch-toc-crc "$work/src" -c 16K --batch-size 8K --crc32 --toc
check batch-inline "$work/src" -c 1M --batch-size 1M -z lz4_block --inline-bootstrap
check batch-16m "$work/src" -c 16M --batch-size 16M --no-dedup --ci-compressor none
check batch-big "$work/big" -c 64K --batch-size 64K

# targz-ref: the data blob is the tarball; ZRAN chunks, separate meta blob.
check targz-64k "$work/src.tar.gz" -c 64K --targz-ref
check targz-4k-sha256 "$work/src.tar.gz" -c 4K -d sha256 --targz-ref
check targz-default "$work/src.tar.gz" --targz-ref
check targz-no-dedup "$work/src.tar.gz" -c 16K --no-dedup --ci-compressor none --targz-ref
check targz-2-members "$work/src-2m.tar.gz" -c 64K --targz-ref
check targz-big "$work/big.tar.gz" -c 256K --targz-ref

# The readers and check-image's erofs walk on a real nydus-made image.
FIXTURE=${CFN_FIXTURE_DIR:-$HERE/../fixtures/nydus-v6-2.2}
if [ -n "$CHECK" ]; then
    "$CHECK" "$FIXTURE/rafs-v6-2.2.boot" \
        "$FIXTURE/be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef" \
        --allow-id-mismatch >"$work/out" 2>&1 && pass=$((pass + 1)) ||
        bad "check-image on the nydus fixture: $(cat "$work/out")"
fi

# Dedup must shrink the blob: four identical 200 KB files are stored once.
a=$("$MK" -o "$work/dd1" -c 64K "$work/src") && b=$("$MK" -o "$work/dd2" -c 64K --no-dedup "$work/src") &&
    [ "$(stat -c %s "$work/dd1/$a")" -lt "$(stat -c %s "$work/dd2/$b")" ] && pass=$((pass + 1)) ||
    bad "dedup does not shrink the blob"

# Bad input gets a clear error and a non-zero exit.
expect_fail() {
    local name=$1 want=$2
    shift 2
    if "$MK" "$@" >/dev/null 2>"$work/err"; then
        bad "$name: succeeded"
    elif ! grep -q -- "$want" "$work/err"; then
        bad "$name: message '$(cat "$work/err")' lacks '$want'"
    else
        pass=$((pass + 1))
    fi
}
mkdir -p "$work/empty/sub"
expect_fail chunk-size-odd "power of two" -o "$work/n" -c 3000 "$work/src"
expect_fail chunk-size-big "power of two" -o "$work/n" -c 32M "$work/src"
expect_fail crc-v1 "crc32" -o "$work/n" --crc32 "$work/src"
expect_fail no-source "No such file" -o "$work/n" "$work/missing"
expect_fail no-data "no file data" -o "$work/n" "$work/empty"
expect_fail compressor "compressor" -o "$work/n" -z gzip "$work/src"
expect_fail batch-v1 "chunk-info v2" -o "$work/n" --batch-size 64K -C v1 "$work/src"
expect_fail batch-size "power of two" -o "$work/n" --batch-size 3000 "$work/src"
expect_fail batch-over-chunk "bigger than the chunk size" -o "$work/n" -c 64K --batch-size 128K "$work/src"
expect_fail targz-z "targz-ref" -o "$work/n" --targz-ref -z zstd "$work/src.tar.gz"
expect_fail targz-batch "targz-ref" -o "$work/n" --targz-ref --batch-size 64K "$work/src.tar.gz"
expect_fail targz-not-gzip "gzip" -o "$work/n" --targz-ref "$HERE/gen-tree.py"
head -c 100000 "$work/src.tar.gz" >"$work/cut.tar.gz"
expect_fail targz-truncated "truncated" -o "$work/n" --targz-ref "$work/cut.tar.gz"
printf 'plain text, not a tar' | gzip -n >"$work/notar.tar.gz"
expect_fail targz-not-tar "tar" -o "$work/n" --targz-ref "$work/notar.tar.gz"
# A 1 KiB tar.gz whose one file claims 4 TiB (base-256 size): 2^30 - 1 chunks of 4 KiB. The
# chunk table follows the data actually read, so this costs no 4 GiB table (nor its ASan shadow).
"$PY" - "$work/claims-4t.tar.gz" <<'PY' || bad "writing claims-4t.tar.gz"
import gzip, sys
size = ((1 << 30) - 1) * 4096
h = bytearray(512)
h[0:7] = b"big.bin"
h[100:108] = b"0000644\0"; h[108:116] = b"0000000\0"; h[116:124] = b"0000000\0"
h[124:136] = bytes([0x80]) + size.to_bytes(11, "big")
h[136:148] = b"00000000000\0"; h[156:157] = b"0"; h[257:265] = b"ustar\x0000"
h[148:156] = b" " * 8
h[148:156] = b"%06o\0 " % sum(h)
with gzip.GzipFile(sys.argv[1], "wb", mtime=0) as f:
    f.write(bytes(h) + b"x" * 1024)
PY
if command -v /usr/bin/time >/dev/null; then
    /usr/bin/time -f %M -o "$work/rss" "$MK" -o "$work/n" -c 4K --targz-ref "$work/claims-4t.tar.gz" \
        >/dev/null 2>"$work/err" && bad "claims-4t: succeeded"
    grep -q "tar stream ends inside an entry" "$work/err" || bad "claims-4t: message '$(head -c 300 "$work/err")' lacks 'tar stream ends inside an entry'"
    echo "claims-4t: refused with peak RSS $(tail -n 1 "$work/rss") KiB: $(head -n 1 "$work/err")"
    [ "$(tail -n 1 "$work/rss")" -lt 262144 ] && pass=$((pass + 1)) ||
        bad "claims-4t: peak RSS $(tail -n 1 "$work/rss") KiB for a 1 KiB input"
else
    expect_fail targz-claims-4t "tar stream ends inside an entry" -o "$work/n" -c 4K --targz-ref "$work/claims-4t.tar.gz"
fi
[ -z "$(ls -A "$work/n" 2>/dev/null)" ] && pass=$((pass + 1)) || bad "failed builds left files behind"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
