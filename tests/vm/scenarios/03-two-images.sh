# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Two different images mounted at the same time and read concurrently.
daemon_start two
must_mount "$MNT_BASE/a" fsid=plain
must_mount "$MNT_BASE/b" fsid=two
( verify_tree "$MNT_BASE/a" t1 ) & pa=$!
( verify_tree "$MNT_BASE/b" t2 ) & pb=$!
ra=0; rb=0
wait "$pa" || ra=$?
wait "$pb" || rb=$?
[ "$ra" = 0 ] && [ "$rb" = 0 ] || fail "concurrent reads of two images: $(cat "$SCEN_DIR/reason" 2>/dev/null)"
finish
