# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Nydus blobs whose chunk table (blob meta, ci V1 kept raw in the blob so it
# can be patched here) has overlapping chunks: in one copy a chunk's
# compressed range starts inside the previous chunk's, in the other its
# uncompressed range starts at the previous chunk's. The daemon must refuse
# the table with a log line that names the overlap, and the kernel must see
# a mount error or EIO - never a wrong byte. A fresh work_dir makes sure the
# patched table is parsed (no cached blob meta). The daemon keeps running and
# then serves the unpatched blob: every file verified.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
[ -x "$MKIMAGE" ] || skip "nydus-mkimage not built ($MKIMAGE)"
W=/tmp/cfn-ovl
rm -rf "$W"
mkdir -p "$W/good" "$W/ovl-c" "$W/ovl-u" "$W/work" "$W/mani"
text_tree "$W/tree" 18 g0.txt:200000 g1.txt:200000 g2.txt:200000 g3.txt:100000
id=$("$MKIMAGE" -c 65536 -z zstd --ci-compressor none -o "$W/good" -B "$W/ovl.boot" --blob-data "$W/blob-data" \
    "$W/tree" 2>"$W/mkimage.err" | tail -n 1) || fail "nydus-mkimage failed: $(tail -n 3 "$W/mkimage.err")"
tree_listing "$W/tree" >"$W/mani/tovl.list"
tree_sums "$W/tree" >"$W/mani/tovl.sha256"
MANI=$W/mani

# Patch entry K = the middle chunk: ovl-c gets coff = previous chunk's end - 1,
# ovl-u gets uoff = previous chunk's uoff. Everything else stays valid.
python3 - "$W/good/$id" "$W/blob-data" "$W/tree" "$W/ovl-c/$id" "$W/ovl-u/$id" >"$W/plan.env" <<'PY' ||
import os, struct, sys
src, data_path, root, out_c, out_u = sys.argv[1:]
blob = bytearray(open(src, "rb").read())
data = open(data_path, "rb").read()
magic, _, comp, n, off, cs, us = struct.unpack_from("<IIIIQQQ", blob, len(blob) - 4096)
assert magic == 0xB10BB10B and comp == 0 and cs == us == 16 * n, "unexpected ci header"
def entry(i):
    u, c = struct.unpack_from("<QQ", blob, off + 16 * i)
    return u, c, u & 0xFFFFFFFF000, c & 0xFFFFFFFFFF, ((c >> 44) | ((c & 0xF0000000000) >> 20)) + 1
k = n // 2
pu, pc, puoff, pcoff, pcsize = entry(k - 1)
u, c, uoff, coff, csize = entry(k)
assert coff == pcoff + pcsize and uoff > puoff
victim = None
for name in sorted(os.listdir(root)):
    body = open(os.path.join(root, name), "rb").read()
    start = data.find(body[:65536])
    assert start >= 0, name
    if start <= uoff < start + len(body):
        victim = name
assert victim
bc = bytearray(blob)
struct.pack_into("<QQ", bc, off + 16 * k, u, (c & ~0xFFFFFFFFFF) | (pcoff + pcsize - 1))
open(out_c, "wb").write(bc)
bu = bytearray(blob)
struct.pack_into("<QQ", bu, off + 16 * k, (u & ~0xFFFFFFFF000) | puoff, c)
open(out_u, "wb").write(bu)
print(f"K={k}")
print(f"CHUNKS={n}")
print(f"VICTIM={victim}")
print(f"CI_BYTE={off + 16 * k}")
PY
    fail "patching the chunk table failed"
. "$W/plan.env"
say "blob $id: $CHUNKS chunks; ci[$K] (blob byte $CI_BYTE, in $VICTIM) patched to overlap ci[$((K - 1))]"

DAEMON_MORE_IMAGES="$(image_entry ovl-c "$W/ovl.boot" "$W/ovl-c")
$(image_entry ovl-u "$W/ovl.boot" "$W/ovl-u")
$(image_entry ovl-good "$W/ovl.boot" "$W/good")"
daemon_start ovl "work_dir: $W/work"

# check_refused FSID PATTERN: mount error, or every read either EIO or the
# right bytes (and VICTIM never readable); the log must match PATTERN.
check_refused() {
    local fsid=$1 pattern=$2 mnt=$MNT_BASE/$1 rc=0 f got failed=0 outcome why
    do_mount "$mnt" "fsid=$fsid" || rc=$?
    case "$rc" in
        0) while read -r _ f; do
               f=${f#./}
               if got=$(timeout -s KILL "$BAD_READ_TIMEOUT" cat "$mnt/$f" 2>"$W/err" | sha256sum | cut -d' ' -f1) &&
                   [ ! -s "$W/err" ]; then
                   [ "$got" = "$(expected_sum tovl "$f")" ] || fail "$fsid: $f read with the WRONG bytes"
                   [ "$f" != "$VICTIM" ] || fail "$fsid: $VICTIM, which holds the overlapping chunk, read 'successfully'"
               else
                   grep -q "Input/output error" "$W/err" || fail "$fsid: reading $f failed, but not with EIO: $(cat "$W/err")"
                   failed=$((failed + 1))
               fi
           done <"$MANI/tovl.sha256"
           do_umount "$mnt"
           outcome="it mounted; $failed of $(wc -l <"$MANI/tovl.sha256") files failed with EIO, no wrong byte" ;;
        124|137) fail "mounting $fsid hung (killed after ${MOUNT_TIMEOUT} s)" ;;
        *) outcome="the mount failed (status $rc)" ;;
    esac
    daemon_check "$fsid"
    why=$(grep -E -m1 "$pattern" "$DLOG") || fail "$fsid: the daemon log does not name the overlap"
    say "$fsid: $outcome; daemon log: ...${why#*refused: }"
}
check_refused ovl-c "blob=$id refused: .*ci\[$K\] \(ci byte [0-9]+\): compressed range \[[0-9]+, [0-9]+\) overlaps the previous chunk"
check_refused ovl-u "blob=$id refused: .*ci\[$K\] \(ci byte [0-9]+\): uncompressed range at 0x[0-9a-f]+ overlaps ci\[$((K - 1))\]"
[ ! -e "$W/work/$id.blob.meta" ] || fail "a refused chunk table was saved in work_dir"

must_mount "$MNT_BASE/good" fsid=ovl-good
verify_tree "$MNT_BASE/good" tovl
finish
