# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# A truncated nydus data blob (zstd, 64 KiB chunks, built here by
# nydus-mkimage), cut in the middle of a compressed chunk of the third of six
# files. The chunk table at the blob's end goes with the cut, so:
#  1. without a cached blob meta the blob's OPEN is refused with a log line
#     that says why, and even a file before the cut fails; mounting the
#     image while its directory still held the intact blob left the blob
#     meta in work_dir (without a TOC it is cached per backend source, so
#     the intact copy is put in the same directory for that mount);
#  2. a new daemon on that work_dir serves the truncated blob: the two files
#     wholly before the cut (and outside its 1 MiB read window) read back
#     with the source's sha256; files that need a chunk past the cut (the
#     cut one, one wholly after it) fail with EIO, never with wrong bytes;
#     the log names the failed read;
#  3. with a 64 KiB read window, the chunk of the cut file just before the
#     cut reads back right, the block after it fails; the same daemon then
#     serves the intact image, every file verified.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
[ -x "$MKIMAGE" ] || skip "nydus-mkimage not built ($MKIMAGE)"
W=/tmp/cfn-trunc
rm -rf "$W"
mkdir -p "$W/full" "$W/cut" "$W/work" "$W/mani"
text_tree "$W/tree" 17 f0.txt:1048576 f1.txt:1048576 f2.txt:300000 f3.txt:200000 f4.txt:200000 f5.txt:150000
id=$("$MKIMAGE" -c 65536 -z zstd --ci-compressor none -o "$W/full" -B "$W/trunc.boot" --blob-data "$W/blob-data" \
    "$W/tree" 2>"$W/mkimage.err" | tail -n 1) || fail "nydus-mkimage failed: $(tail -n 3 "$W/mkimage.err")"
tree_listing "$W/tree" >"$W/mani/ttrunc.list"
tree_sums "$W/tree" >"$W/mani/ttrunc.sha256"
MANI=$W/mani

# Where each file's chunks lie in the compressed blob (ci V1, stored raw),
# and the cut: the middle of the second chunk of the third file in blob order.
python3 - "$W/full/$id" "$W/blob-data" "$W/tree" >"$W/plan.env" <<'PY' || fail "planning the cut failed"
import hashlib, os, struct, sys
blob = open(sys.argv[1], "rb").read()
data = open(sys.argv[2], "rb").read()
root = sys.argv[3]
h = blob[-4096:]
magic, _, comp, n, off, cs, us = struct.unpack_from("<IIIIQQQ", h)
assert magic == 0xB10BB10B and comp == 0 and cs == us == 16 * n, "unexpected ci header"
chunks = []
for i in range(n):
    u, c = struct.unpack_from("<QQ", blob, off + 16 * i)
    chunks.append(dict(uoff=u & 0xFFFFFFFF000, usize=((u >> 44) | ((u & 0xF00) << 12)) + 1,
                       coff=c & 0xFFFFFFFFFF, csize=((c >> 44) | ((c & 0xF0000000000) >> 20)) + 1))
files = []
for name in sorted(os.listdir(root)):
    body = open(os.path.join(root, name), "rb").read()
    start = data.find(body[:65536])
    assert start >= 0 and data[start:start + len(body)] == body, f"{name} not found in the blob data"
    mine = [c for c in chunks if start <= c["uoff"] < start + len(body)]
    assert sum(c["usize"] for c in mine) == len(body), f"{name}: chunk sizes do not add up"
    files.append((start, name, mine, body))
files.sort()
_, sname, smine, sbody = files[2]
victim = smine[1]
assert victim["csize"] < victim["usize"], "the chunk to cut is not compressed"
cut = victim["coff"] + victim["csize"] // 2
before = [f[1] for f in files if all(c["coff"] + c["csize"] <= cut for c in f[2])]
after = [f[1] for f in files if all(c["coff"] >= cut for c in f[2])]
assert len(before) == 2 and len(after) == 3, (before, after)
# The daemon widens every READ to its 1 MiB read window and fetches that in
# one backend read: the files before the cut must not share a window with it.
win = 1 << 20
for start, name, mine, body in files:
    if name in before:
        lo, hi = start // win * win, -(-(start + len(body)) // win) * win
        assert all(c["coff"] + c["csize"] <= cut for c in chunks if lo <= c["uoff"] < hi), name
prefix = 0
for c in smine:
    if c["coff"] + c["csize"] > cut:
        break
    prefix += c["usize"]
assert prefix == 65536
print(f"CUT={cut}")
print(f"FULL_SIZE={len(blob)}")
print(f"CHUNKS={n}")
print(f"BEFORE='{' '.join(before)}'")
print(f"AFTER='{' '.join(after)}'")
print(f"STRADDLE={sname}")
print(f"STRADDLE_BLOCKS={prefix // 4096}")
print(f"CUT_CHUNK='ci[{chunks.index(victim)}] compressed [{victim['coff']}, +{victim['csize']})'")
PY
. "$W/plan.env"
head -c "$CUT" "$W/full/$id" >"$W/cut/$id"
say "blob $id: $CHUNKS zstd chunks, $FULL_SIZE bytes; cut at byte $CUT, inside $CUT_CHUNK of $STRADDLE"
say "wholly before the cut: $BEFORE; wholly after: $AFTER"

DAEMON_MORE_IMAGES="$(image_entry ntrunc "$W/trunc.boot" "$W/cut")
$(image_entry ntrunc-full "$W/trunc.boot" "$W/full")"
m=$MNT_BASE/m

# 1. No cached blob meta: the chunk table is not in the truncated blob.
daemon_start trunc1 "work_dir: $W/work"
# The kernel (6.1) may mount anyway and look the blob up in the background;
# then even a file before the cut must fail.
mount_or_eio "$m" fsid=ntrunc "${BEFORE%% *}" "the blob's chunk table is cut off"
daemon_check "the failed mount"
why=$(grep -m1 -E "blob=$id refused: .*outside the [0-9]+-byte object" "$DLOG") ||
    fail "the daemon log does not say why the truncated blob cannot be opened"
say "no cached blob meta: $OUTCOME; daemon log: ${why#* warn  }"
daemon_stop
# Mounting the image while the intact blob is in its directory saves the blob meta.
cp "$W/full/$id" "$W/cut/$id.full" && mv "$W/cut/$id" "$W/cut/$id.cut" && mv "$W/cut/$id.full" "$W/cut/$id"
daemon_start trunc1b "work_dir: $W/work"
must_mount "$m" fsid=ntrunc
do_umount "$m"
daemon_stop
mv "$W/cut/$id.cut" "$W/cut/$id"
meta=$(ls "$W/work/$id".src-*.blob.meta 2>/dev/null | head -n 1)
[ -s "$meta" ] || fail "the daemon did not save the blob meta in work_dir ($W/work)"
say "the intact blob mounted; its blob meta is now cached in $meta"

# 2. Blob meta from work_dir, data from the truncated blob.
eio_pattern="blob $id: chunks [0-9]+-[0-9]+: backend read of [0-9]+ bytes at 0x[0-9a-f]+ failed: No data available"
daemon_start trunc2 "work_dir: $W/work"
must_mount "$m" fsid=ntrunc
must_eio "$m/${AFTER%% *}" "its chunks lie past the cut"
daemon_check "reading past the cut"
for f in $BEFORE; do
    got=$(timeout -s KILL "$VERIFY_TIMEOUT" sha256sum "$m/$f" | cut -d' ' -f1) || fail "$f (before the cut) unreadable"
    [ "$got" = "$(expected_sum ttrunc "$f")" ] || fail "$f (before the cut) has the wrong sha256"
done
say "files before the cut ($BEFORE): sha256 match the source"
for f in $STRADDLE; do
    must_eio "$m/$f" "it needs chunks past the cut"
done
daemon_check "reading past the cut"
why=$(grep -E -m1 "$eio_pattern" "$DLOG") || fail "the daemon log does not name the failed backend read of the truncated blob"
say "daemon log: ${why#* error }"
do_umount "$m"
daemon_stop

# 3. Chunk precision: with a 64 KiB read window, the chunk of the cut file
# just before the cut reads back right, the one across the cut fails.
daemon_start trunc3 "work_dir: $W/work
read_window: 64KiB"
must_mount "$m" fsid=ntrunc
got=$(timeout -s KILL "$VERIFY_TIMEOUT" dd if="$m/$STRADDLE" bs=4096 count="$STRADDLE_BLOCKS" status=none | sha256sum | cut -d' ' -f1) ||
    fail "the first $STRADDLE_BLOCKS blocks of $STRADDLE (before the cut) are unreadable"
[ "$got" = "$(dd if="$W/tree/$STRADDLE" bs=4096 count="$STRADDLE_BLOCKS" status=none | sha256sum | cut -d' ' -f1)" ] ||
    fail "the first $STRADDLE_BLOCKS blocks of $STRADDLE (before the cut) have the wrong sha256"
say "$STRADDLE: its first $STRADDLE_BLOCKS blocks (the chunk before the cut) match the source"
err=$(timeout -s KILL "$BAD_READ_TIMEOUT" dd if="$m/$STRADDLE" of=/dev/null bs=4096 skip="$STRADDLE_BLOCKS" count=1 status=none 2>&1) &&
    fail "the block of $STRADDLE right after the chunk before the cut read 'successfully'"
case "$err" in *"Input/output error"*) ;; *) fail "reading across the cut failed, but not with EIO: $err" ;; esac
say "the first block of the chunk across the cut fails: $err"
grep -Eq "$eio_pattern" "$DLOG" || fail "the daemon log does not name the failed backend read of the truncated blob"
daemon_check "reading past the cut"
do_umount "$m"

# The same daemon still serves the intact image.
must_mount "$m" fsid=ntrunc-full
verify_tree "$m" ttrunc
finish
