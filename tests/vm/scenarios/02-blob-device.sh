# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Bootstrap plus raw data blob (mkfs.erofs --blobdev). Mounted once with
# -o device=blob1.img over the untouched bootstrap (mkfs.erofs 1.5 writes an
# empty tag) and once with the blob name taken from the device-table tag.
# Different fsids, so both mounts really go through the daemon.
daemon_start blob
must_mount "$MNT_BASE/notag" fsid=boot-notag,device=blob1.img
verify_tree "$MNT_BASE/notag" t1
n1=$(reads_count)
must_mount "$MNT_BASE/tag" fsid=boot
verify_tree "$MNT_BASE/tag" t1
n2=$(reads_count)
[ "$n1" -gt 0 ] && [ "$n2" -gt "$n1" ] || fail "expected READs for both mounts (device=: $n1, tag: $((n2 - n1)))"
say "READs: $n1 with device=, $((n2 - n1)) with the tag"
finish
