# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# A nydus image (zstd, blake3, TOC) with one byte flipped inside bad.bin's
# first compressed chunk: reading bad.bin fails with EIO within a bounded
# time and never returns wrong bytes; good.bin reads correctly; the daemon
# keeps running and names the chunk in its log.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
daemon_start nydus-corrupt
m=$MNT_BASE/m
must_mount "$m" fsid=nydus-corrupt
r=0; read_expect_eio "$m/bad.bin" || r=$?
case "$r" in
    0) ;;
    10) fail "bad.bin read 'successfully' from a corrupted chunk" ;;
    11) fail "reading bad.bin hung for ${BAD_READ_TIMEOUT} s" ;;
    *) fail "reading bad.bin failed, but not with EIO: $LAST_ERR" ;;
esac
daemon_check "reading the corrupt file"
got=$(timeout -s KILL "$VERIFY_TIMEOUT" sha256sum "$m/good.bin" | cut -d' ' -f1) || fail "good.bin unreadable"
[ "$got" = "$(expected_sum tcorrupt good.bin)" ] || fail "good.bin has the wrong sha256"
say "good.bin: sha256 matches the source"
grep -Eq "chunk [0-9]+: (blake3 digest mismatch|zstd decompression failed)" "$DLOG" ||
    fail "the daemon log does not name the corrupt chunk"
say "daemon log: $(grep -Eo -m1 'chunk [0-9]+: (blake3 digest mismatch|zstd decompression failed)' "$DLOG")"
finish
