# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Names the daemon does not know: the mount must fail (not hang), the daemon
# must keep serving, and a good mount right after must work. Also a known
# bootstrap with an unknown blob name: reads may fail but must not hang.
daemon_start unknown
for try in 1 2; do
    rc=0; do_mount "$MNT_BASE/bad" fsid=no-such-image || rc=$?
    case "$rc" in
        0) fail "mount -o fsid=no-such-image succeeded (attempt $try)" ;;
        124|137) fail "mount -o fsid=no-such-image hung (attempt $try)" ;;
    esac
    say "mount of an unknown fsid failed as expected in ${LAST_MOUNT_SECONDS} s (attempt $try, status $rc)"
    daemon_check "a mount of an unknown fsid"
done
rc=0; do_mount "$MNT_BASE/badblob" fsid=boot-notag,device=no-such.blob || rc=$?
case "$rc" in
    124|137) fail "mount with an unknown device= blob hung" ;;
    0) say "mount with an unknown blob name succeeded; reading a file must fail, not hang"
       read_expect_eio "$MNT_BASE/badblob/big.bin" || {
           r=$?; [ "$r" = 10 ] && fail "big.bin read succeeded although its blob does not exist"
           [ "$r" = 11 ] && fail "reading a file of an unknown blob hung"
           fail "reading a file of an unknown blob failed, but not with EIO: $LAST_ERR"; }
       do_umount "$MNT_BASE/badblob" ;;
    *) say "mount with an unknown blob name failed in ${LAST_MOUNT_SECONDS} s (status $rc)" ;;
esac
daemon_check "an unknown blob name"
must_mount "$MNT_BASE/good" fsid=two
verify_tree "$MNT_BASE/good" t2
finish
