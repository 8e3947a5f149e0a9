#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Images from nydus-mkimage, for each compressor x digester x chunk-info
# version, with and without TOC and inlined bootstrap, served through the
# daemon and the fake device: the cache file the daemon writes must equal,
# byte for byte, the one the builder predicts (--blob-data). Then a corrupted
# blob must fail its READs and never put a wrong byte in the cache file.
# Batch (--batch-size) and targz-ref (ZRAN chunks into the original .tar.gz,
# ci table in a separate meta blob) images need the daemon's batch/zran
# decoding and SEPARATE meta-blob support.
set -euo pipefail
mkimage=$1
fill=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A small tree with repeated content (dedup), a multi-chunk file and odd sizes.
src=$work/src
mkdir -p "$src/d/e"
python3 - "$src" <<'PY'
import random, sys
random.seed(7)
open(sys.argv[1] + "/rand", "wb").write(random.randbytes(300000))
open(sys.argv[1] + "/text", "wb").write(b"nydus chunk data\n" * 147059)
PY
cp "$src/text" "$src/d/text-copy"
printf 'x' > "$src/d/e/one"
seq 1 20000 > "$src/d/seq"

passed=0 failed=0
# Each layer of an error message used to prefix the blob id ("blob X: blob X: blob X ci[0] ..."):
# no line of a daemon log may name blob $2 more than once.
names_blob_once() {  # log, blob id
    ! grep -E "$2.*$2" "$1"
}
check() {  # name, mkimage args...   (SRC=... overrides the source: a tarball for --targz-ref)
    local name=$1; shift
    local out=$work/$name
    mkdir -p "$out/work"
    local id
    id=$("$mkimage" -c 64K "$@" --blob-data "$out/expected.cache" -o "$out" "${SRC:-$src}" | tail -n 1)
    if "$fill" "$out/image.boot" "$out" "$id" "$out/got.cache" "$out/work" >"$out/log" 2>&1 &&
        cmp -s "$out/expected.cache" "$out/got.cache"; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"; tail -5 "$out/log"
        failed=$((failed + 1))
    fi
}

for z in none lz4_block zstd; do
    for dg in blake3 sha256; do
        for ci in v1 v2; do
            check "$z-$dg-$ci" -z "$z" -d "$dg" -C "$ci"
        done
        check "$z-$dg-toc" -z "$z" -d "$dg" --toc
        check "$z-$dg-inline" -z "$z" -d "$dg" --inline-bootstrap
    done
done
check "zstd-crc32-v2" -z zstd -C v2 --crc32 --toc

# Batches: chunks smaller than the batch size are compressed together.
for z in none lz4_block zstd; do
    for dg in blake3 sha256; do
        for bs in 4K 32K; do
            check "batch-$bs-$z-$dg" -z "$z" -d "$dg" --batch-size "$bs"
        done
    done
done
check "batch-toc-crc32" -z zstd --batch-size 16K --crc32 --toc

# targz-ref: the blob dir holds the tarball (blob id = its sha256) and the meta blob.
tar --sort=name --mtime=@1600000000 --owner=0 --group=0 --numeric-owner -C "$src" -cf - . |
    gzip -n >"$work/src.tar.gz"
SRC=$work/src.tar.gz check "targz-64k-blake3" --targz-ref
SRC=$work/src.tar.gz check "targz-4k-sha256" --targz-ref -c 4K -d sha256
SRC=$work/src.tar.gz check "targz-1m-no-dedup" --targz-ref -c 1M --no-dedup
# A ZRan chunk table with 4 KiB holes between chunks (nydus-image writes such tables; they
# used to be refused: "dense 4 KiB packing").
SRC=$work/src.tar.gz check "targz-holes" --targz-ref --zran-holes
# Multi-member gzip: the tar cut in two mid-file and each half gzip'd (cat a.gz b.gz), and
# bgzip-like members of 60000 bytes each. Chunks run across member boundaries: the builder
# used to refuse them and the daemon failed them with EBADMSG.
tar --sort=name --mtime=@1600000000 --owner=0 --group=0 --numeric-owner -C "$src" -cf "$work/src.tar" .
python3 - "$work/src.tar" "$work" <<'PY'
import gzip, sys
data = open(sys.argv[1], 'rb').read()
half = len(data) // 2 + 12345
open(sys.argv[2] + '/two.tar.gz', 'wb').write(gzip.compress(data[:half], mtime=0) +
                                              gzip.compress(data[half:], mtime=0))
open(sys.argv[2] + '/bgzip.tar.gz', 'wb').write(
    b''.join(gzip.compress(data[i:i + 60000], mtime=0) for i in range(0, len(data), 60000)))
PY
SRC=$work/two.tar.gz check "targz-two-members" --targz-ref
SRC=$work/bgzip.tar.gz check "targz-bgzip-members" --targz-ref
SRC=$work/bgzip.tar.gz check "targz-bgzip-members-4k-holes" --targz-ref -c 4K --zran-holes

# Corruption: flip a byte in the middle of the first chunk's data.
out=$work/corrupt
mkdir -p "$out/work"
id=$("$mkimage" -c 64K -z zstd -d blake3 --toc --blob-data "$out/expected.cache" -o "$out" "$src" | tail -n 1)
printf '\xff' | dd of="$out/$id" bs=1 seek=100 conv=notrunc status=none
if "$fill" "$out/image.boot" "$out" "$id" "$out/got.cache" "$out/work" >"$out/log" 2>&1; then
    echo "FAIL corrupt-chunk: every READ succeeded on a corrupted blob"
    failed=$((failed + 1))
elif ! grep -q "chunk [0-9]*: blake3 digest mismatch" "$out/log"; then
    echo "FAIL corrupt-chunk: the log does not name the chunk"; tail -3 "$out/log"
    failed=$((failed + 1))
elif ! names_blob_once "$out/log" "$id"; then
    echo "FAIL corrupt-chunk: a log line names the blob more than once"
    failed=$((failed + 1))
else
    # Every byte the daemon did write is the right byte; the corrupt chunk was never written.
    python3 - "$out/expected.cache" "$out/got.cache" <<'PY'
import sys
want = open(sys.argv[1], 'rb').read()
got = open(sys.argv[2], 'rb').read()
assert len(got) >= len(want) - 4096, "cache file has the wrong size"
unwritten = [i for i in range(0, len(want), 4096) if got[i:i+4096] != want[i:i+4096]]
assert unwritten, "the corrupt chunk was written"
bad = [i for i in range(0, len(want), 4096) if got[i:i+4096] not in (want[i:i+4096], bytes(len(want[i:i+4096])))]
assert not bad, f"wrong bytes in blocks {bad[:5]}"
PY
    echo "PASS corrupt-chunk"
    passed=$((passed + 1))
fi
# A corrupt chunk table (ci[1] a copy of ci[0]: overlapping ranges): the OPEN
# fails and the reason, passed up through every layer, names the blob once.
out=$work/corrupt-ci
mkdir -p "$out/work"
id=$("$mkimage" -c 64K -z zstd -C v1 --ci-compressor none -o "$out" "$src" | tail -n 1)
python3 - "$out/$id" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
magic = struct.pack('<I', 0xB10BB10B)
hdr = next(i for i in range(len(data) - 4096, -1, -1)
           if data[i:i+4] == magic and data[i+4092:i+4096] == magic)
ci = struct.unpack_from('<Q', data, hdr + 16)[0]
data[ci+16:ci+32] = data[ci:ci+16]
open(sys.argv[1], 'wb').write(data)
PY
if "$fill" "$out/image.boot" "$out" "$id" "$out/got.cache" "$out/work" >"$out/log" 2>&1; then
    echo "FAIL corrupt-ci: a blob with a corrupt chunk table was served"
    failed=$((failed + 1))
elif ! grep -Eq "blob=$id refused: .*ci\\[1\\] \\(ci byte 16\\): uncompressed range at 0x0 overlaps ci\\[0\\]" "$out/log"; then
    echo "FAIL corrupt-ci: the log does not give the reason"; grep -m3 "ci\[" "$out/log" || true
    failed=$((failed + 1))
elif ! names_blob_once "$out/log" "$id"; then
    echo "FAIL corrupt-ci: a log line names the blob more than once:"; grep -m1 -E "$id.*$id" "$out/log" || true
    failed=$((failed + 1))
else
    echo "PASS corrupt-ci"
    passed=$((passed + 1))
fi

# The work_dir chunk-table cache is keyed by blob id alone. Image A (verify:
# false) serves a copy of blob X whose chunk table was tampered with (a crc32
# changed, so the table still parses); image B serves the real X, with a TOC
# the bootstrap records. A's unverified table must not be cached for B, and
# a cached table that B's TOC does not vouch for is fetched again.
out=$work/meta-cache
mkdir -p "$out/work"
id=$("$mkimage" -c 64K -z zstd -C v2 --crc32 --toc --ci-compressor none --blob-data "$out/expected.cache" \
     -o "$out/b" "$src" | tail -n 1)
cp -r "$out/b" "$out/a"
flip_crc() {  # file, offset of the ci table in it
    python3 - "$1" "$2" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
at = int(sys.argv[2]) + 16           # ci[0].data: crc32 in its low 32 bits
struct.pack_into('<I', data, at, struct.unpack_from('<I', data, at)[0] ^ 0x5a5a)
open(sys.argv[1], 'wb').write(data)
PY
}
ci_offset_of() {  # blob: where its ci table starts (s_ci_offset of the header at its tail)
    python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
magic = struct.pack('<I', 0xB10BB10B)
hdr = next(i for i in range(len(data) - 4096, -1, -1) if data[i:i+4] == magic and data[i+4092:i+4096] == magic)
print(struct.unpack_from('<Q', data, hdr + 16)[0])
PY
}
flip_crc "$out/a/$id" "$(ci_offset_of "$out/a/$id")"
FAKE_FILL_CONFIG="verify: false" "$fill" "$out/a/image.boot" "$out/a" "$id" "$out/a.cache" "$out/work" \
    >"$out/log-a" 2>&1 || true
if "$fill" "$out/b/image.boot" "$out/b" "$id" "$out/b.cache" "$out/work" >"$out/log-b" 2>&1 &&
    cmp -s "$out/expected.cache" "$out/b.cache"; then
    echo "PASS meta-cache-not-poisoned"
    passed=$((passed + 1))
else
    echo "FAIL meta-cache-not-poisoned: image B used image A's unverified chunk table"; grep -m2 refused "$out/log-b" || true
    failed=$((failed + 1))
fi
# B's run cached the verified table; tamper with the cache file itself.
if [ ! -f "$out/work/$id.blob.meta" ]; then
    echo "FAIL meta-cache-validated: image B did not cache its verified chunk table"
    failed=$((failed + 1))
else
    flip_crc "$out/work/$id.blob.meta" 0
    if "$fill" "$out/b/image.boot" "$out/b" "$id" "$out/b2.cache" "$out/work" >"$out/log-b2" 2>&1 &&
        cmp -s "$out/expected.cache" "$out/b2.cache" && grep -q "does not match the blob's TOC; fetching it again" "$out/log-b2"; then
        echo "PASS meta-cache-validated"
        passed=$((passed + 1))
    else
        echo "FAIL meta-cache-validated: a tampered cached chunk table was not refetched"; grep -m2 refused "$out/log-b2" || true
        failed=$((failed + 1))
    fi
fi
# Without a TOC nothing vouches for a table: it is cached per backend source,
# so A's tampered copy (another directory) still cannot stand in for B's.
out=$work/meta-cache-notoc
mkdir -p "$out/work"
id=$("$mkimage" -c 64K -z zstd -C v2 --crc32 --ci-compressor none --blob-data "$out/expected.cache" \
     -o "$out/b" "$src" | tail -n 1)
cp -r "$out/b" "$out/a"
flip_crc "$out/a/$id" "$(ci_offset_of "$out/a/$id")"
FAKE_FILL_CONFIG="verify: false" "$fill" "$out/a/image.boot" "$out/a" "$id" "$out/a.cache" "$out/work" \
    >"$out/log-a" 2>&1 || true
if "$fill" "$out/b/image.boot" "$out/b" "$id" "$out/b.cache" "$out/work" >"$out/log-b" 2>&1 &&
    cmp -s "$out/expected.cache" "$out/b.cache" && ls "$out/work/$id".src-*.blob.meta >/dev/null 2>&1; then
    echo "PASS meta-cache-per-source"
    passed=$((passed + 1))
else
    echo "FAIL meta-cache-per-source: image B used image A's chunk table"; grep -m2 -E "refused|crc" "$out/log-b" || true
    failed=$((failed + 1))
fi

# Truncation inside a read window: the blob is cut in half after a first
# fill left its chunk table in work_dir. The 4 MiB window's merged read runs
# past the end; the daemon must read the groups one by one so that every
# chunk before the cut is still served, and never write a wrong byte.
out=$work/truncated
mkdir -p "$out/work"
id=$("$mkimage" -c 64K -z zstd -d blake3 --blob-data "$out/expected.cache" -o "$out" "$src" | tail -n 1)
"$fill" "$out/image.boot" "$out" "$id" "$out/first.cache" "$out/work" >"$out/log0" 2>&1 || true
truncate -s $(( $(stat -c %s "$out/$id") / 2 )) "$out/$id"
if FAKE_FILL_WINDOW=4MiB "$fill" "$out/image.boot" "$out" "$id" "$out/got.cache" "$out/work" >"$out/log" 2>&1; then
    echo "FAIL truncated-window: every READ succeeded on a blob cut in half"
    failed=$((failed + 1))
elif ! grep -q "reading their [0-9]* groups one by one" "$out/log"; then
    echo "FAIL truncated-window: the short merged read was not split"; tail -3 "$out/log"
    failed=$((failed + 1))
elif python3 - "$out/expected.cache" "$out/got.cache" <<'PY'
import sys
want = open(sys.argv[1], 'rb').read()
got = open(sys.argv[2], 'rb').read()
blocks = range(0, len(want), 4096)
bad = [i for i in blocks if got[i:i+4096] not in (want[i:i+4096], bytes(len(want[i:i+4096])))]
assert not bad, f"wrong bytes in blocks {bad[:5]}"
served = sum(1 for i in blocks if got[i:i+4096] == want[i:i+4096] and any(want[i:i+4096]))
# zstd halves this tree at most, so well over a third of it lies before the cut.
assert served * 3 > len(blocks), f"only {served} of {len(blocks)} blocks served before the cut"
PY
then
    echo "PASS truncated-window"
    passed=$((passed + 1))
else
    echo "FAIL truncated-window: see above"
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
