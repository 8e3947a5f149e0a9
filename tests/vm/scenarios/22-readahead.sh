# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Read-ahead on the real kernel: big.bin (about 40 MiB) read cold from start
# to end through a plain image, once with the default readahead and once with
# `readahead: 0`. Both reads must match the source byte for byte; with
# read-ahead the kernel must send far fewer READs (it only asks for missing
# bytes, so every window filled ahead is a READ that never happens).
. "$IMG/meta.env"
want=$(expected_sum t1 "$BIG")
[ -n "$want" ] || fail "no source sha256 for $BIG"

# read_big NAME EXTRA_CONFIG: a fresh daemon and cache, one cold sequential
# read; sets READS (READs the daemon handled) and AHEAD (its read-ahead fills).
read_big() {
    local got
    daemon_start "$1" "$2"
    must_mount "$MNT_BASE/$1" fsid=plain
    drop_caches
    got=$(timeout -s KILL "$VERIFY_TIMEOUT" sha256sum "$MNT_BASE/$1/$BIG" | cut -d' ' -f1) ||
        fail "$1: reading $BIG failed or hung"
    [ "$got" = "$want" ] || fail "$1: sha256 of $BIG is $got, the source's is $want"
    READS=$(reads_count)
    do_umount "$MNT_BASE/$1"
    daemon_check "$1"
    daemon_stop
    AHEAD=$(sed -n 's/.*bad messages, \([0-9]*\) read-ahead fills.*/\1/p' "$DLOG" | tail -n 1)
    say "$1: $BIG matches the source; $READS READs, ${AHEAD:-?} read-ahead fills"
}

read_big ra-on ""
on_reads=$READS on_ahead=${AHEAD:-0}
read_big ra-off "readahead: 0"
off_reads=$READS off_ahead=${AHEAD:-0}

[ "$on_ahead" -gt 0 ] || fail "no read-ahead fill with the default readahead"
[ "$off_ahead" = 0 ] || fail "readahead: 0 still filled ahead ($off_ahead fills)"
[ $((on_reads * 2)) -lt "$off_reads" ] ||
    fail "read-ahead did not halve the READs of a sequential read ($on_reads with, $off_reads without)"
say "READs for one sequential read of $BIG: $on_reads with read-ahead, $off_reads without"
