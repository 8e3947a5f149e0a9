# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Failover: a holder (this shell) keeps /dev/cachefiles open and bound; the
# daemon takes the inherited fd (--device-fd). The daemon is SIGKILLed in
# the middle of a read; a new daemon on the same fd writes "restore", gets
# the re-sent OPEN and the pending READs, and every file of the mount reads
# back with the right sha256.
. "$IMG/meta.env"
cache=$CFN_VM_CACHE/failover
mkdir -p "$cache"
exec 3<>/dev/cachefiles
printf 'dir %s' "$cache" >&3
printf 'bind ondemand' >&3
DAEMON_EXTRA_ARGS="--device-fd 3" daemon_start failover "cache_dir: $cache"
must_mount "$MNT_BASE/m" fsid=plain
# Read half of the big file, then kill the daemon while a reader is working.
timeout -s KILL "$VERIFY_TIMEOUT" dd if="$MNT_BASE/m/$BIG" of=/dev/null bs=1M count=8 status=none ||
    fail "first read of $BIG failed"
( timeout -s KILL "$VERIFY_TIMEOUT" sha256sum "$MNT_BASE/m/$BIG" >"$SCEN_DIR/big.sum" 2>&1 ) &
reader=$!
sleep 0.3
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
say "daemon $DAEMON_PID killed with SIGKILL while a reader was running"
DAEMON_PID=
first_log=$DLOG
DAEMON_EXTRA_ARGS="--device-fd 3" daemon_start failover2 "cache_dir: $cache"
grep -q "took over the cache device" "$DLOG" || fail "the new daemon did not take over the device"
wait "$reader" || fail "the reader running across the crash failed: $(cat "$SCEN_DIR/big.sum")"
[ "$(cut -d' ' -f1 "$SCEN_DIR/big.sum")" = "$(expected_sum t1 "$BIG")" ] ||
    fail "$BIG read across the crash has the wrong sha256"
say "the reader running across the crash got the right sha256 of $BIG"
verify_tree "$MNT_BASE/m" t1
say "READs: $(grep -c 'READ object=' "$first_log") before the crash, $(reads_count) after it"
finish
