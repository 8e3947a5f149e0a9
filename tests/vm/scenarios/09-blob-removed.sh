# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# The blob file is deleted while mounted (after the first read made the
# daemon open it). Reads must not hang and never return wrong bytes; as the
# daemon holds the blob open they should all still succeed.
daemon_start removed
must_mount "$MNT_BASE/m" fsid=rm
first=$(list_files t2 | awk -F'\t' '!found && $1 > 0 { print $2; found = 1 }')
timeout -s KILL "$BAD_READ_TIMEOUT" cat "$MNT_BASE/m/$first" >/dev/null || fail "first read (before the removal) failed"
rm "$IMG/blobs/rm.blob"
sync
drop_caches
say "removed $IMG/blobs/rm.blob after reading $first"
verify_tree "$MNT_BASE/m" t2
finish
