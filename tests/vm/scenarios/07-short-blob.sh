# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# A raw data blob shorter than the image says (cut 64 KiB into b.bin's
# second chunk, block aligned): a.bin, wholly before the cut, reads fine;
# b.bin and c.bin fail with EIO within a bounded time, never with wrong
# bytes; b.bin's first chunk (before the cut) still reads correctly.
. "$IMG/meta.env"
[ "$SHORT_LAYOUT_OK" = 1 ] || skip "blob layout of the short image is not a|b|c as assumed (see dump.erofs)"
daemon_start short
must_mount "$MNT_BASE/m" fsid=short
m=$MNT_BASE/m
got=$(timeout -s KILL "$BAD_READ_TIMEOUT" sha256sum "$m/a.bin" | cut -d' ' -f1) || fail "a.bin (before the cut) unreadable"
[ "$got" = "$(expected_sum tshort a.bin)" ] || fail "a.bin (before the cut) has the wrong sha256"
say "a.bin (wholly before the cut): sha256 matches the source"
for f in b.bin c.bin; do
    r=0; read_expect_eio "$m/$f" || r=$?
    case "$r" in
        0) ;;
        10) got=$(sha256sum "$m/$f" | cut -d' ' -f1)
            [ "$got" = "$(expected_sum tshort "$f")" ] && fail "$f read completely although its blob is cut short?!"
            fail "$f read 'successfully' with WRONG bytes (sha256 $got) although its blob is cut short" ;;
        11) fail "reading $f (past the end of the blob) hung for ${BAD_READ_TIMEOUT} s" ;;
        *) fail "reading $f failed, but not with EIO: $LAST_ERR" ;;
    esac
    daemon_check "reading $f"
done
got=$(timeout -s KILL "$BAD_READ_TIMEOUT" dd if="$m/b.bin" bs=4096 count="$SHORT_PREFIX_BLOCKS" status=none | sha256sum | cut -d' ' -f1) ||
    fail "b.bin's first chunk (before the cut) unreadable"
[ "$got" = "$SHORT_PREFIX_SHA" ] || fail "b.bin's first chunk (before the cut) has the wrong sha256"
say "b.bin's first 1 MiB (before the cut): sha256 matches the source"
got=$(timeout -s KILL "$BAD_READ_TIMEOUT" sha256sum "$m/a.bin" | cut -d' ' -f1) || fail "a.bin unreadable after the failed reads"
[ "$got" = "$(expected_sum tshort a.bin)" ] || fail "a.bin wrong after the failed reads"
finish
