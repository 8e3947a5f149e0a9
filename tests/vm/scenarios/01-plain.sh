# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# A plain erofs image mounted with fsid=: the daemon serves the image file
# itself as the one blob. Every file read through the mount must match.
daemon_start plain
must_mount "$MNT_BASE/plain" fsid=plain
verify_tree "$MNT_BASE/plain" t1
n=$(reads_count)
[ "$n" -gt 0 ] || fail "the daemon logged no 'READ object=' line: is --log-level debug honoured?"
say "daemon handled $n READs"
finish
