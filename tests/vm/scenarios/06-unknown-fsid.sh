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
mount_or_eio "$MNT_BASE/badblob" fsid=boot-notag,device=no-such.blob big.bin "its blob does not exist"
say "unknown blob name: $OUTCOME"
daemon_check "an unknown blob name"
must_mount "$MNT_BASE/good" fsid=two
verify_tree "$MNT_BASE/good" t2
finish
