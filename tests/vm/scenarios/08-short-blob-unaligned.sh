# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Like short-blob, but the blob ends 100 bytes into a 4 KiB block. Reading
# that block must give EIO (or, impossibly, the right bytes): zero-filling
# the rest of the block would hand the reader wrong data.
. "$IMG/meta.env"
[ "$SHORT_LAYOUT_OK" = 1 ] || skip "blob layout of the short image is not a|b|c as assumed (see dump.erofs)"
daemon_start short2
must_mount "$MNT_BASE/m" fsid=short2
m=$MNT_BASE/m
rc=0
err=$(timeout -s KILL "$BAD_READ_TIMEOUT" dd if="$m/b.bin" of="$SCEN_DIR/cut-block" bs=4096 skip="$SHORT_CUT_BLOCK" count=1 status=none 2>&1) || rc=$?
case "$rc" in
    0) got=$(sha256sum <"$SCEN_DIR/cut-block" | cut -d' ' -f1)
       [ "$got" = "$SHORT_CUT_SHA" ] || fail "the block cut mid-way returned WRONG bytes (sha256 $got; zero-filled past the blob's end?)"
       say "the block cut mid-way read correctly (?)" ;;
    124|137) fail "reading the block cut mid-way hung" ;;
    *) say "the block cut mid-way failed as expected: $err"
       case "$err" in *"Input/output error"*) ;; *) fail "the block cut mid-way failed, but not with EIO: $err" ;; esac ;;
esac
r=0; read_expect_eio "$m/c.bin" || r=$?
[ "$r" = 0 ] || fail "c.bin (past the end) did not fail with EIO (code $r)"
got=$(timeout -s KILL "$BAD_READ_TIMEOUT" sha256sum "$m/a.bin" | cut -d' ' -f1) || fail "a.bin (before the cut) unreadable"
[ "$got" = "$(expected_sum tshort a.bin)" ] || fail "a.bin (before the cut) has the wrong sha256"
say "a.bin (wholly before the cut): sha256 matches the source"
finish
