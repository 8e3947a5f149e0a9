#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Build RAFS v6 images with nydus-mkimage for every compressor x digester x
# ci version x tail layout (plain, --toc, --inline-bootstrap) plus chunk-size
# and dedup variants, and check each one:
#   - determinism: a second build from a copy of the tree at another path
#     gives the same bytes (bootstrap and blob) and the same blob id;
#   - blob id == sha256 of the blob, bootstrap size 4 KiB aligned;
#   - check-blob-tail.py: reverse-tar chain, TOC entries and digests, blob
#     table vs blob header (independent Python, from the format doc);
#   - fsck.erofs --device=<expected cache file> --extract, compared with the
#     source (erofs-utils reads our erofs metadata and chunk indexes);
#   - check-image: the project's RAFS readers parse the bootstrap and ci
#     table, every chunk is decompressed and digest-checked, every file is
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

work=$(mktemp -d /tmp/test-builder.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

"$PY" "$HERE/gen-tree.py" "$work/src" --small || { echo "FAIL: gen-tree"; exit 1; }
cp -a "$work/src" "$work/src-copy"
"$PY" "$HERE/gen-tree.py" "$work/big" || { echo "FAIL: gen-tree"; exit 1; }

# check NAME SRC ARGS...: build, rebuild elsewhere, verify everything.
check() {
    local name=$1 src=$2
    shift 2
    local o1="$work/$name.1" o2="$work/$name.2" id1 id2 before=$fail
    if ! id1=$("$MK" "$@" -o "$o1" --blob-data "$o1.data" "$src" 2>"$work/err"); then
        bad "$name: build failed: $(cat "$work/err")"
        return
    fi
    [[ $id1 =~ ^[0-9a-f]{64}$ ]] || bad "$name: printed blob id '$id1'"
    [ "$(sha256sum "$o1/$id1" | cut -d' ' -f1)" = "$id1" ] || bad "$name: blob id != sha256(blob)"
    [ $(( $(stat -c %s "$o1/image.boot") % 4096 )) -eq 0 ] || bad "$name: bootstrap size not 4 KiB aligned"

    # Determinism: same tree at another path, another output dir.
    if [ "$src" = "$work/src" ]; then
        id2=$("$MK" "$@" -o "$o2" "$work/src-copy" 2>"$work/err") || bad "$name: rebuild failed"
        [ "$id1" = "${id2:-}" ] || bad "$name: blob id differs between builds"
        cmp -s "$o1/image.boot" "$o2/image.boot" || bad "$name: bootstrap differs between builds"
        cmp -s "$o1/$id1" "$o2/${id2:-x}" || bad "$name: blob differs between builds"
    fi

    "$PY" "$HERE/check-blob-tail.py" "$o1/image.boot" "$o1/$id1" >"$work/out" 2>&1 ||
        bad "$name: $(cat "$work/out")"

    if [ -n "$FSCK" ]; then
        rm -rf "$work/x"
        if "$FSCK" --device="$o1.data" --extract="$work/x" --preserve "$o1/image.boot" >"$work/out" 2>&1; then
            "$PY" "$HERE/compare-trees.py" "$src" "$work/x" --no-hardlinks --no-special-bits \
                >"$work/out" 2>&1 || bad "$name: fsck.erofs extract differs: $(cat "$work/out")"
        else
            bad "$name: fsck.erofs: $(cat "$work/out")"
        fi
        rm -rf "$work/x"
    fi

    if [ -n "$CHECK" ]; then
        if "$CHECK" "$o1/image.boot" "$o1/$id1" --source "$src" --cache-file "$work/cache" \
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

# The readers and check-image's erofs walk on a real nydus-made image.
FIXTURE=${CFN_SHARED_DIR:-$HERE/../../../shared}/fixtures/nydus-v6-2.2
if [ -n "$CHECK" ] && [ -f "$FIXTURE/rafs-v6-2.2.boot" ]; then
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
[ -z "$(ls -A "$work/n" 2>/dev/null)" ] && pass=$((pass + 1)) || bad "failed builds left files behind"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
