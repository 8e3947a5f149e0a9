# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Shared domain: two bootstraps (fsid domA, domB) with domain_id=shared over
# one data blob (shared.blob). Read both at once, then unmount one and read
# the other again cold: the shared blob must stay usable.
. "$IMG/meta.env"
say "domain set-up: $DOMAIN_MODE"
daemon_start domain
must_mount "$MNT_BASE/a" domain_id=shared,fsid=domA
must_mount "$MNT_BASE/b" domain_id=shared,fsid=domB
( verify_tree "$MNT_BASE/a" "$DOMAIN_TREE_A" ) & pa=$!
( verify_tree "$MNT_BASE/b" tdB ) & pb=$!
ra=0; rb=0
wait "$pa" || ra=$?
wait "$pb" || rb=$?
[ "$ra" = 0 ] && [ "$rb" = 0 ] || fail "reading the two domain mounts: $(cat "$SCEN_DIR/reason" 2>/dev/null)"
n=$(reads_count)
do_umount "$MNT_BASE/a"
drop_caches
verify_tree "$MNT_BASE/b" tdB
say "READs: $n for both mounts, $(( $(reads_count) - n )) more for domB after domA's umount (from the cache: expect 0)"
finish
