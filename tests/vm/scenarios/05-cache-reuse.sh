# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Unmount (CLOSE) and mount again: the second pass must be served from the
# cache files alone: the daemon must see no READ at all.
daemon_start reuse
must_mount "$MNT_BASE/m" fsid=boot
verify_tree "$MNT_BASE/m" t1
do_umount "$MNT_BASE/m"
n1=$(reads_count)
[ "$n1" -gt 0 ] || fail "pass 1 logged no READ"
daemon_check "the first umount"
must_mount "$MNT_BASE/m" fsid=boot
verify_tree "$MNT_BASE/m" t1
do_umount "$MNT_BASE/m"
n2=$(reads_count)
say "READs: pass 1 $n1, pass 2 $((n2 - n1))"
[ "$n2" = "$n1" ] || { grep 'READ object=' "$DLOG" | tail -n +"$((n1 + 1))" | head -n 5 | sed 's/^/    | /' || true
    fail "pass 2 (after umount and mount) caused $((n2 - n1)) new READs; expected 0"; }
finish
