#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# SIGTERM while the fscache front-end (through the fake device) has a
# prefill, a prefetch, READs and read-ahead in flight, for one backend type:
# localfs (a large blob whose fill is still running), or registry, s3, oss,
# http-proxy against tests/backend/servers/fault.py stalling every data range
# for as long as the test runs (the transfers' timeout is 60 s: only a cancel
# ends them in time).
#
#   test-shutdown.sh BACKEND NYDUS_MKIMAGE FAKE_SHUTDOWN
#
# Exit 0 pass, 77 skip (python3 missing), anything else fail.
set -euo pipefail
backend=$1 mkimage=$2 prog=$3
: "${CFN_SOURCE_ROOT:?}"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
work=$(mktemp -d)
server=
cleanup() {
    local rc=$?
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

mkdir -p "$work/src" "$work/img" "$work/state" "$work/run"
# Random data (it does not compress): a blob of about 16 MiB, 64 MiB for localfs.
mib=16
[ "$backend" = localfs ] && mib=64
head -c $((mib << 20)) /dev/urandom >"$work/src/big.bin"
echo small >"$work/src/small.txt"
id=$("$mkimage" -z zstd -d blake3 -t --blob-data "$work/expected" -o "$work/img" "$work/src" | tail -n 1)

if [ "$backend" = localfs ]; then
    yaml="{type: localfs, dir: $work/img}"
    export SHUTDOWN_RUN_MS=100      # some READs done, the prefetch of 64 MiB still running
else
    python3 "$CFN_SOURCE_ROOT/tests/backend/servers/fault.py" --listen 127.0.0.1:0 --state "$work/state" \
        --name fault --blobs "$work/img" --ready "$work/state/fault.ready" >"$work/fault.log" 2>&1 &
    server=$!
    for _ in $(seq 1 150); do [ -s "$work/state/fault.ready" ] && break; sleep 0.1; done
    addr=$(cat "$work/state/fault.ready")
    case "$backend" in
        registry) yaml="{type: registry, scheme: http, host: $addr, repo: library/cfn, timeout: 60}" ;;
        s3) yaml="{type: s3, scheme: http, endpoint: $addr, bucket_name: cfnbucket, object_prefix: ok/, path_style: true, timeout: 60}" ;;
        oss) yaml="{type: oss, scheme: http, endpoint: localhost:${addr##*:}, bucket_name: cfnbucket, object_prefix: ok/, timeout: 60}" ;;
        http-proxy) yaml="{type: http-proxy, addr: http://$addr, path: /ok, timeout: 60}" ;;
        *) echo "unknown backend $backend"; exit 2 ;;
    esac
    # Data ranges stall from the OPEN on; the chunk table at the blob's tail still answers.
    export SHUTDOWN_STALL_FLAG=$work/state/stall-$id
    SHUTDOWN_STALL_BELOW=$(( $(stat -c %s "$work/img/$id") * 3 / 4 ))
    export SHUTDOWN_STALL_BELOW
fi
rc=0
"$prog" "$work/img/image.boot" "$id" "$work/expected" "$work/run" "$yaml" || rc=$?
if [ "$backend" != localfs ]; then
    stalled=$(sed -n 's/^stalled //p' "$work/state/fault.stats" 2>/dev/null)
    echo "fault.py: ${stalled:-0} transfers stalled"
    [ "${stalled:-0}" -gt 0 ] || { echo "FAIL: no transfer stalled: nothing was in flight"; rc=1; }
fi
[ "$rc" = 0 ] && echo "PASS: shutdown-$backend" || echo "FAIL: shutdown-$backend"
exit "$rc"
