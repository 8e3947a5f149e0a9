#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# An image configured by its data blob alone (bootstrap_blob): the daemon
# takes image.boot out of the blob's TOC, retags nydus's placeholder blob id,
# stores the bootstrap in work_dir and serves the blob byte for byte. A later
# run reuses the stored bootstrap; a damaged one is fetched again; a blob
# without image.boot or with a corrupted one is refused with a clear error.
set -euo pipefail
mkimage=$1
fill=$2
retag=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

src=$work/src
mkdir -p "$src/d"
seq 1 60000 >"$src/seq"
cp "$src/seq" "$src/d/copy"
head -c 200000 /dev/urandom >"$src/d/rand"

passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

img=$work/img
id=$("$mkimage" -c 64K -z zstd -d blake3 --inline-bootstrap --blob-data "$work/expected" -o "$img" "$src" | tail -n 1)
rm "$img/image.boot"     # only the blob is left

# 1. From the blob alone.
if "$fill" "blob:$id" "$img" "$id" "$work/got1" "$work/w" >"$work/log1" 2>&1 &&
    cmp -s "$work/expected" "$work/got1" && grep -q "bootstrap taken from blob $id" "$work/log1"; then
    pass from-blob
else
    fail from-blob "$(tail -3 "$work/log1")"
fi

stored=$(ls "$work/w/$id".src-*.image.boot 2>/dev/null | head -n 1 || true)
# 2. The stored bootstrap lists the real id, not the placeholder, in both tables.
if [ -f "$stored" ] && grep -qa "$id" "$stored" && ! grep -qa "$(printf 'x%.0s' $(seq 64))" "$stored"; then
    pass retagged
else
    fail retagged "stored bootstrap missing or still carries the placeholder id"
fi

# 3. A second run reuses it without touching the blob's TOC.
if "$fill" "blob:$id" "$img" "$id" "$work/got2" "$work/w" >"$work/log2" 2>&1 &&
    cmp -s "$work/expected" "$work/got2" && grep -q "bootstrap of blob $id from $stored" "$work/log2"; then
    pass reuse-stored
else
    fail reuse-stored "$(tail -3 "$work/log2")"
fi

# 4. A damaged stored copy is replaced by a fresh extraction.
printf 'garbage' | dd of="$stored" bs=1 seek=1024 conv=notrunc status=none
if "$fill" "blob:$id" "$img" "$id" "$work/got3" "$work/w" >"$work/log3" 2>&1 &&
    cmp -s "$work/expected" "$work/got3" && grep -q "fetching it again" "$work/log3" &&
    grep -q "bootstrap taken from blob" "$work/log3"; then
    pass refetch-damaged
else
    fail refetch-damaged "$(tail -3 "$work/log3")"
fi

# 5. A blob without an inlined bootstrap: a set-up error naming the reason.
plain=$work/plain
pid=$("$mkimage" -c 64K -z zstd -d blake3 --toc -o "$plain" "$src" | tail -n 1)
set +e
"$fill" "blob:$pid" "$plain" "$pid" "$work/got4" "$work/w4" >"$work/log4" 2>&1
rc=$?
set -e
if [ "$rc" = 2 ] && grep -q "has no image.boot entry" "$work/log4"; then
    pass no-image-boot
else
    fail no-image-boot "rc=$rc $(tail -2 "$work/log4")"
fi

# 6. A corrupted image.boot (a byte flipped inside the compressed bootstrap,
#    found through the TOC) is refused; nothing is stored.
bad=$work/bad
cp -r "$img" "$bad"
off=$(python3 - "$bad/$id" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
# The TOC is the last 128-byte entries before the final 512-byte tar header;
# entry layout (docs §3): flags u32, reserved u32, name[16], digest[32],
# compressed_offset u64 @56, compressed_size u64 @64.
import struct
for at in range(len(data) - 512 - 128, max(0, len(data) - 512 - 128 * 32), -128):
    name = data[at + 8:at + 24].rstrip(b'\0')
    if name == b'image.boot':
        coff, csize = struct.unpack_from('<QQ', data, at + 56)
        print(coff + csize // 2)
        break
PY
)
if [ -z "$off" ]; then
    fail corrupt-image-boot "no image.boot entry found in the test blob"
else
    printf '\x5a' | dd of="$bad/$id" bs=1 seek="$off" conv=notrunc status=none
    set +e
    "$fill" "blob:$id" "$bad" "$id" "$work/got5" "$work/w5" >"$work/log5" 2>&1
    rc=$?
    set -e
    if [ "$rc" = 2 ] && grep -qi "image.boot" "$work/log5" && ! ls "$work/w5/$id".*image.boot >/dev/null 2>&1; then
        pass corrupt-image-boot
    else
        fail corrupt-image-boot "rc=$rc $(tail -2 "$work/log5")"
    fi
fi

# 7. A blob made before nydus 2.2: image.boot names the blob by another id
#    (the digest of the blob without its bootstrap) and the blob features
#    have neither INLINED_FS_META nor CAP_TAR_TOC. nydus gives such a blob the
#    id it was loaded by; so does the daemon.
old=$work/old
oid=$("$mkimage" -c 64K -z zstd -d blake3 --legacy-inline-bootstrap --blob-data "$work/expected-old" -o "$old" "$src" |
      tail -n 1)
rm "$old/image.boot"
if "$fill" "blob:$oid" "$old" "$oid" "$work/got6" "$work/w6" >"$work/log6" 2>&1 &&
    cmp -s "$work/expected-old" "$work/got6" && grep -q "made before nydus 2.2) lists it as [0-9a-f]\{64\}" "$work/log6" &&
    grep -qa "$oid" "$work/w6/$oid".src-*.image.boot; then
    pass legacy-inline
else
    fail legacy-inline "$(grep -m2 -E "error|refus" "$work/log6")"
fi

# 8. Still refused when no blob of the table can be this one (a 2.2+ blob
#    without INLINED_FS_META listed under another id), and the reason names
#    the id the table does list.
other=$(printf '0%.0s' $(seq 64))
why=$("$retag" "$plain/image.boot" "$other" || true)
if [[ "$why" == *"the bootstrap inside blob $other does not list that blob: it lists $pid"* ]]; then
    pass refused-names-listed-id
else
    fail refused-names-listed-id "$why"
fi

# 9. The stored bootstrap is kept per backend source: image A, whose directory holds other
#    bytes under blob id $id (another tree's inline blob), must not hand image B its
#    bootstrap. B runs after A on the same work_dir and must serve its own tree.
src2=$work/src2
mkdir -p "$src2"
seq 5 70000 >"$src2/other"
evil=$work/evil
eid=$("$mkimage" -c 64K -z zstd -d blake3 --inline-bootstrap -o "$evil" "$src2" | tail -n 1)
mv "$evil/$eid" "$evil/$id"
rm "$evil/image.boot"
"$fill" "blob:$id" "$evil" "$id" "$work/got8a" "$work/w8" >"$work/log8a" 2>&1 || true
if "$fill" "blob:$id" "$img" "$id" "$work/got8" "$work/w8" >"$work/log8" 2>&1 &&
    cmp -s "$work/expected" "$work/got8" && grep -q "bootstrap taken from blob $id" "$work/log8"; then
    pass stored-bootstrap-per-source
else
    fail stored-bootstrap-per-source "image B reused image A's bootstrap: $(grep -m1 -E "bootstrap|refused" "$work/log8")"
fi

# 10. A registry that stalls past request_timeout: a set-up error within seconds, and the
#     transfer is cancelled so the backend is freed (no leak report under ASan).
mkdir -p "$work/state"
python3 "$CFN_SOURCE_ROOT/tests/backend/servers/fault.py" --listen 127.0.0.1:0 --state "$work/state" \
    --name fault --blobs "$img" --ready "$work/state/fault.ready" >"$work/fault.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 150); do [ -s "$work/state/fault.ready" ] && break; sleep 0.1; done
: >"$work/state/stall-$id"
t0=$(date +%s)
set +e
FAKE_FILL_BACKEND="{type: registry, scheme: http, host: $(cat "$work/state/fault.ready"), repo: library/cfn}" \
    FAKE_FILL_CONFIG="request_timeout: 1s" "$fill" "blob:$id" "$img" "$id" "$work/got10" "$work/w10" >"$work/log10" 2>&1
rc=$?
set -e
secs=$(( $(date +%s) - t0 ))
if [ "$rc" = 2 ] && grep -q "timed out" "$work/log10" && ! grep -q "Sanitizer" "$work/log10" && [ "$secs" -lt 10 ]; then
    pass stalled-registry
else
    fail stalled-registry "rc=$rc after ${secs}s: $(grep -m1 -E 'Sanitizer|timed out' "$work/log10")"
fi

echo "inline-bootstrap: $passed passed, $failed failed"
[ "$failed" = 0 ]
