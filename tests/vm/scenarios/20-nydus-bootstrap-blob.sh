# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# An image configured by its data blob alone (bootstrap_blob: <id>): the
# blob was built with --inline-bootstrap and no image.boot file is given.
# The daemon takes the bootstrap out of the blob's TOC, retags nydus's
# placeholder blob id, and the kernel mounts and reads it; every file's
# sha256 matches the source. A second daemon on the same work_dir reuses the
# stored bootstrap without reading the blob's TOC again.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
[ -x "$MKIMAGE" ] || skip "nydus-mkimage not built ($MKIMAGE)"
W=/tmp/cfn-bootblob
rm -rf "$W"
mkdir -p "$W/blobs" "$W/work" "$W/mani" "$W/tree/sub"
text_tree "$W/tree" 20 a.txt:300000 b.txt:70000 sub/c.txt:1200000 sub/d.txt:5
id=$("$MKIMAGE" -c 65536 -z zstd -d blake3 --inline-bootstrap -o "$W/blobs" "$W/tree" 2>"$W/mkimage.err" |
    tail -n 1) || fail "nydus-mkimage failed: $(tail -n 3 "$W/mkimage.err")"
rm -f "$W/blobs/image.boot"
[ "$(ls "$W/blobs")" = "$id" ] || fail "expected only the blob in $W/blobs, found: $(ls "$W/blobs")"
tree_listing "$W/tree" >"$W/mani/tboot.list"
tree_sums "$W/tree" >"$W/mani/tboot.sha256"
MANI=$W/mani

DAEMON_MORE_IMAGES=$(printf '  - fsid: bootblob\n    bootstrap_blob: %s\n    backend:\n      type: localfs\n      dir: %s\n' \
    "$id" "$W/blobs")
m=$MNT_BASE/m

daemon_start bootblob1 "work_dir: $W/work"
grep -q "bootstrap taken from blob $id" "$DLOG" || fail "the daemon did not log taking the bootstrap from blob $id"
stored=$(ls "$W/work/$id".src-*.image.boot 2>/dev/null | head -n 1)
[ -s "$stored" ] || fail "no stored bootstrap $W/work/$id.src-*.image.boot"
must_mount "$m" fsid=bootblob
verify_tree "$m" tboot
do_umount "$m"
daemon_stop
say "bootstrap from blob $id: mounted and verified; stored as $stored"

daemon_start bootblob2 "work_dir: $W/work"
grep -q "bootstrap of blob $id from $stored" "$DLOG" ||
    fail "the second daemon did not reuse the stored bootstrap"
must_mount "$m" fsid=bootblob
verify_tree "$m" tboot
say "second daemon reused the stored bootstrap; daemon handled $(reads_count) READs"
finish
