# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# The two shared-context chunk kinds on the real kernel:
#  - batch images (small chunks packed into batches, nydus-mkimage
#    --batch-size) for zstd, lz4_block and none;
#  - a targz-ref image: the data blob is the original .tar.gz, served
#    through zran contexts, its ci table in a separate meta blob;
#  - a targz-ref image of a multi-member (bgzip-like) .tar.gz whose chunks
#    run across member boundaries, with holes between its ZRan chunks;
# every file's sha256 matches the source. Then a byte flipped inside the
# .tar.gz: the files whose chunks it spoils fail with EIO (chunk digests
# from the bootstrap's chunk table), the others still verify, and the
# daemon keeps running.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
[ -x "$MKIMAGE" ] || skip "nydus-mkimage not built ($MKIMAGE)"
W=/tmp/cfn-batch
rm -rf "$W"
mkdir -p "$W/mani" "$W/tree/small" "$W/tree/big"
# Many small files (batch members), a few multi-chunk ones.
text_tree "$W/tree" 21 small/a:1000 small/b:3000 small/c:9000 small/d:17000 small/e:100 small/f:12000 \
    big/g:400000 big/h:150000 big/i:1300000
for n in $(seq 1 40); do head -c $((n * 211)) "$W/tree/big/g" >"$W/tree/small/s$n"; done
tree_listing "$W/tree" >"$W/mani/tbatch.list"
tree_sums "$W/tree" >"$W/mani/tbatch.sha256"
MANI=$W/mani

more=
for z in zstd lz4_block none; do
    mkdir -p "$W/$z"
    "$MKIMAGE" -c 65536 --batch-size 16K -z "$z" -d blake3 -o "$W/$z" "$W/tree" >/dev/null 2>"$W/mkimage-$z.err" ||
        fail "nydus-mkimage --batch-size -z $z failed: $(tail -n 3 "$W/mkimage-$z.err")"
    more="$more$(image_entry "batch-$z" "$W/$z/image.boot" "$W/$z")
"
done
(cd "$W/tree" && tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -cf - .) | gzip -n -6 >"$W/layer.tar.gz" ||
    fail "making the tarball failed"
mkdir -p "$W/targz" "$W/targz-bad"
tid=$("$MKIMAGE" --targz-ref -c 65536 -d blake3 -o "$W/targz" "$W/layer.tar.gz" 2>"$W/mkimage-targz.err" | tail -n 1) ||
    fail "nydus-mkimage --targz-ref failed: $(tail -n 3 "$W/mkimage-targz.err")"
[ -f "$W/targz/$tid" ] || fail "targz-ref: no data blob $tid"
cp "$W/targz"/* "$W/targz-bad/"
# Flip one byte in the middle of the compressed tar stream.
size=$(stat -c %s "$W/targz-bad/$tid")
python3 - "$W/targz-bad/$tid" "$((size / 2))" <<'PY'
import sys
p, at = sys.argv[1], int(sys.argv[2])
d = bytearray(open(p, "rb").read())
d[at] ^= 0x20
open(p, "wb").write(d)
PY
# bgzip-like: the tar in members of 50000 bytes each, so chunks cross member boundaries.
(cd "$W/tree" && tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -cf - .) >"$W/layer.tar"
python3 - "$W/layer.tar" "$W/layer-mm.tar.gz" <<'PY'
import gzip, sys
d = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(b"".join(gzip.compress(d[i:i + 50000], mtime=0) for i in range(0, len(d), 50000)))
PY
mkdir -p "$W/targz-mm"
"$MKIMAGE" --targz-ref --zran-holes -c 65536 -d blake3 -o "$W/targz-mm" "$W/layer-mm.tar.gz" >/dev/null \
    2>"$W/mkimage-targz-mm.err" || fail "nydus-mkimage --targz-ref (multi-member) failed: $(tail -n 3 "$W/mkimage-targz-mm.err")"
more="$more$(image_entry targz-mm "$W/targz-mm/image.boot" "$W/targz-mm")
"
more="$more$(image_entry targz "$W/targz/image.boot" "$W/targz")
$(image_entry targz-bad "$W/targz-bad/image.boot" "$W/targz-bad")"
DAEMON_MORE_IMAGES=$more
m=$MNT_BASE/m

daemon_start batch "work_dir: $W/work"
for img in batch-zstd batch-lz4_block batch-none targz targz-mm; do
    must_mount "$m" "fsid=$img"
    verify_tree "$m" tbatch
    do_umount "$m"
done
say "batch (zstd, lz4_block, none) and targz-ref images (one of a multi-member gzip, with ZRan holes) verified"

must_mount "$m" fsid=targz-bad
bad=0 good=0
while read -r sum path; do
    f=$m/${path#./}
    rc=0
    got=$(timeout -s KILL "$BAD_READ_TIMEOUT" sha256sum "$f" 2>"$W/err" | cut -d' ' -f1) || rc=$?
    if [ "$rc" = 0 ]; then
        [ "$got" = "$sum" ] || fail "$path read back with a wrong sha256 from the corrupted tarball"
        good=$((good + 1))
    else
        [ "$rc" = 124 ] || [ "$rc" = 137 ] && fail "reading $path hung"
        grep -q "Input/output error" "$W/err" || fail "reading $path failed, but not with EIO: $(cat "$W/err")"
        bad=$((bad + 1))
    fi
done <"$MANI/tbatch.sha256"
[ "$bad" -gt 0 ] || fail "no read failed although a byte of the tarball was flipped"
[ "$good" -gt 0 ] || fail "every file failed; the corruption should spoil only some"
grep -Eq "chunk [0-9]+ \(zran context [0-9]+\): blake3 digest mismatch|zran|inflate" "$DLOG" ||
    fail "the daemon log does not name the corrupt zran chunk"
say "corrupted tarball: $bad file(s) failed with EIO, $good verified; log: $(grep -E -m1 'digest mismatch|inflate' "$DLOG" | cut -c1-160)"
do_umount "$m"
finish
