# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Builder images for every compressor (none, lz4_block, zstd) x digester
# (blake3, sha256) x layout (ci V1; ci V2 with crc32; blob TOC; inlined
# bootstrap), each mounted in turn: every file's sha256 equals the source
# (whole-file reads); then, remounted on a cold page cache, the middle 4 KiB
# block of every file is read at its offset and compared with the source's.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
[ -n "$NYDUS_MATRIX" ] || skip "no matrix images were built"
daemon_start nydus-matrix
n=0
for name in $NYDUS_MATRIX; do
    must_mount "$MNT_BASE/$name" "fsid=$name"
    verify_tree "$MNT_BASE/$name" t2
    do_umount "$MNT_BASE/$name"
    n=$((n + 1))
done
drop_caches
checked=0
for name in $NYDUS_MATRIX; do
    must_mount "$MNT_BASE/$name" "fsid=$name"
    while read -r path block want; do
        got=$(timeout -s KILL "$VERIFY_TIMEOUT" dd if="$MNT_BASE/$name/$path" bs=4096 skip="$block" count=1 status=none |
            sha256sum | cut -d' ' -f1)
        [ "$got" = "$want" ] || fail "$name: 4 KiB block $block of $path differs from the source"
        checked=$((checked + 1))
    done <"$MANI/t2-mid.txt"
    do_umount "$MNT_BASE/$name"
done
say "$n images (compressor x digester x layout) verified whole; $checked random-offset blocks match the source"
finish
