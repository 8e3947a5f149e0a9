#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Native (no VM) tests of the fanotify front-end against this machine's
# kernel: real erofs file-backed mounts made by the daemon, real reads, the
# sha256 of every file compared with its source.
#
#   fanotify-test.sh SCENARIO
#
# Exit 0 pass, 77 skip (the reason is printed: not root, kernel without
# pre-content events, a missing tool), anything else fail. Every wait is
# bounded, and mounts, daemons and files are cleaned up on any exit.
# Environment (set by meson): CFN_DAEMON, FAN_TOOL, GEN_TREE, NYDUS_MKIMAGE,
# FAN_TEST_DIR (a directory on the build's file system, never tmpfs),
# BACKEND_SERVERS (tests/backend/servers, for the shutdown scenarios).
set -eEuo pipefail

SCEN=${1:?usage: fanotify-test.sh SCENARIO}
: "${CFN_DAEMON:?}" "${FAN_TOOL:?}" "${GEN_TREE:?}" "${FAN_TEST_DIR:?}"
READ_TIMEOUT=${READ_TIMEOUT:-120}

say() { echo "  $*"; }
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

W=
MOUNTS=()
PIDS=()
DPID=
cleanup() {
    local rc=$? m p
    for m in "${MOUNTS[@]}"; do
        timeout -s KILL 30 umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    # The holder's daemon is its child: stop it by pid too, whatever state the holder is in.
    local all=("${PIDS[@]}")
    for p in "${PIDS[@]}"; do
        all+=($(ps -o pid= --ppid "$p" 2>/dev/null || true))
    done
    for p in "${all[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${all[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$W" ]; then
        for f in "$W"/*.log; do [ -f "$f" ] && { echo "---- $f (tail)"; tail -n 25 "$f"; }; done
    fi
    [ -n "$W" ] && rm -rf "$W"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP    # meson's timeout sends SIGTERM: still clean up
trap 'echo "FAIL: unexpected failure (status $?) at line $LINENO: $BASH_COMMAND"' ERR

[ "$(id -u)" = 0 ] || skip "not root: fanotify pre-content marks and mount(2) need CAP_SYS_ADMIN"
command -v mkfs.erofs >/dev/null || skip "mkfs.erofs (erofs-utils) is not installed"
mkdir -p "$FAN_TEST_DIR"
W=$(mktemp -d "$FAN_TEST_DIR/$SCEN.XXXXXX")
probe=$("$FAN_TOOL" probe "$W/cache") || { rc=$?; echo "$probe"; [ $rc = 77 ] && skip "$probe"; fail "$probe"; }
say "$probe ($(uname -r))"

# ---- helpers ----

# make_tree NAME [gen-tree args]: source tree plus its sha256 manifest.
make_tree() {
    local name=$1; shift
    python3 "$GEN_TREE" "$@" "$W/$name" >/dev/null
    (cd "$W/$name" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --) >"$W/$name.sha256"
}

# Images, written as config entries to $W/images.yaml.
img_plain() {       # FSID TREE
    mkfs.erofs "$W/$1.erofs" "$W/$2" >"$W/mkfs-$1.log" 2>&1 || fail "mkfs.erofs failed for $1"
    printf '  - fsid: %s\n    bootstrap: %s\n' "$1" "$W/$1.erofs" >>"$W/images.yaml"
}
img_blobdev() {     # FSID TREE [BACKEND]: bootstrap + raw blob named FSID.blob (empty device tag)
    local backend=${3:-}
    [ -n "$backend" ] || backend="{type: localfs, dir: $W/blobs}"
    mkdir -p "$W/blobs"
    mkfs.erofs --chunksize=1048576 --blobdev="$W/blobs/$1.blob" -Eforce-chunk-indexes "$W/$1.boot" "$W/$2" \
        >"$W/mkfs-$1.log" 2>&1 || fail "mkfs.erofs --blobdev failed for $1"
    printf '  - fsid: %s\n    bootstrap: %s\n    backend: %s\n    blobs: [%s]\n' \
        "$1" "$W/$1.boot" "$backend" "$1.blob" >>"$W/images.yaml"
}

# fault_stat NAME: a counter of fault.py (see fault_server below), 0 until set.
fault_stat() { sed -n "s/^$1 //p" "$W/state/fault.stats" 2>/dev/null | grep . || echo 0; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
img_nydus() {       # FSID TREE COMPRESSOR [DIGESTER]: RAFS v6 bootstrap + one blob named by its id
    [ -n "${NYDUS_MKIMAGE:-}" ] && [ -x "$NYDUS_MKIMAGE" ] || skip "nydus-mkimage was not built"
    mkdir -p "$W/ny-$1"
    "$NYDUS_MKIMAGE" -z "$3" -d "${4:-blake3}" -t -o "$W/ny-$1" -B "$W/ny-$1/image.boot" "$W/$2" \
        >"$W/ny-$1.id" 2>"$W/mkimage-$1.log" || fail "nydus-mkimage -z $3 failed: $(tail -n 3 "$W/mkimage-$1.log")"
    printf '  - fsid: %s\n    bootstrap: %s\n' "$1" "$W/ny-$1/image.boot" >>"$W/images.yaml"
}

# daemon_start [hold]: the daemon (or the holder running it) with every image configured.
daemon_start() {
    local mode=${1:-} log
    if [ ! -f "$W/cfg.yaml" ]; then
        {
            echo "cache_dir: $W/cache"
            echo "work_dir: $W/work"
            echo "threads: 2"
            echo "request_timeout: ${REQUEST_TIMEOUT:-30s}"
            echo "frontend: fanotify"
            [ -z "${EXTRA_CONFIG:-}" ] || printf '%s\n' "$EXTRA_CONFIG"
            echo "images:"
            cat "$W/images.yaml"
        } >"$W/cfg.yaml"
    fi
    DSEQ=$(( ${DSEQ:-0} + 1 ))
    log=$W/daemon$DSEQ.log
    DLOG=$log
    # DAEMON_ULIMIT: `ulimit` options for the daemon alone (e.g. "-n 40"); DAEMON_ARGS: extra options.
    if [ "$mode" = hold ]; then
        "$CFN_DAEMON" --config "$W/cfg.yaml" --log-level debug --log-file "$log" hold </dev/null >"$log.stderr" 2>&1 &
    else
        ( [ -z "${DAEMON_ULIMIT:-}" ] || ulimit $DAEMON_ULIMIT
          exec "$CFN_DAEMON" --config "$W/cfg.yaml" --log-level debug --log-file "$log" ${DAEMON_ARGS:-} \
              </dev/null >"$log.stderr" 2>&1 ) &
    fi
    DPID=$!
    PIDS+=("$DPID")
    wait_ready "$log"
}

wait_ready() {  # LOG [COUNT]: wait for COUNT "ready" lines
    local i n want=${2:-1}
    for i in $(seq 1 200); do
        n=$(grep -c 'ready: serving' "$1" 2>/dev/null || true)
        [ "${n:-0}" -ge "$want" ] && return 0
        kill -0 "$DPID" 2>/dev/null || { cat "$1.stderr" "$1" 2>/dev/null | tail -n 20; fail "daemon exited before 'ready'"; }
        sleep 0.1
    done
    fail "daemon not ready within 20 s"
}

# daemon_stop: SIGTERM; it must exit 0 (under ASan: also no leak) within 15 s.
daemon_stop() {
    local rc=0 i
    kill -TERM "$DPID"
    for i in $(seq 1 150); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$DPID" 2>/dev/null && fail "daemon did not exit within 15 s of SIGTERM"
    wait "$DPID" || rc=$?
    [ "$rc" = 0 ] || { tail -n 30 "$DLOG.stderr"; fail "daemon exited with status $rc on SIGTERM"; }
}

ctl() { timeout -s KILL 90 "$CFN_DAEMON" --config "$W/cfg.yaml" --timeout 60 "$@"; }

# stat_of FIELD: a number from the daemon's status line.
stat_of() { ctl status | head -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"; }

fan_mount() {   # FSID DIR
    mkdir -p "$2"
    ctl mount "$1" "$2" || fail "cachefilesd-nydus mount $1 $2 failed"
    MOUNTS+=("$2")
}

forget_mount() {     # DIR: no longer unmounted by cleanup
    local keep=() m
    for m in "${MOUNTS[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
    MOUNTS=("${keep[@]}")
}

fan_umount() {
    ctl umount "$1" || fail "cachefilesd-nydus umount $1 failed"
    forget_mount "$1"
}

# verify DIR TREE: every file's sha256 equals the source's.
verify() {
    local out=$W/verify.$$ rc=0
    timeout -s KILL "$READ_TIMEOUT" bash -c 'cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --' \
        _ "$1" >"$out" 2>"$out.err" || rc=$?
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && fail "reading $1 hung (killed after $READ_TIMEOUT s)"
    if [ -s "$out.err" ] || ! cmp -s "$W/$2.sha256" "$out"; then
        head -n 5 "$out.err"
        diff "$W/$2.sha256" "$out" | head -n 6
        fail "$2 at $1: files unreadable or with a wrong sha256"
    fi
    say "verified $2 at $1: $(wc -l <"$out") files, sha256 of every file matches the source"
}

expected_sum() { awk -v f="./$2" 'substr($0, 67) == f { print $1 }' "$W/$1.sha256"; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---- scenarios ----

scen_plain() {
    make_tree t1 --profile full --big-mib 12 --seed 1
    img_plain plain t1
    daemon_start
    fan_mount plain "$W/m"
    verify "$W/m" t1
    say "events $(stat_of events), fills $(stat_of fills), fetches $(stat_of fetches), marks removed $(stat_of marks_removed)"
    [ "$(stat_of fills)" -gt 0 ] || fail "no fill: the image was not read lazily"
    fan_umount "$W/m"
    daemon_stop
}

scen_blobdev() {
    make_tree t1 --profile full --big-mib 12 --seed 2
    img_blobdev boot t1
    daemon_start
    fan_mount boot "$W/m"
    [ "$(stat_of events)" = 0 ] || fail "mount raised events (metadata must come from the local bootstrap)"
    ls -lR "$W/m" >/dev/null
    [ "$(stat_of events)" = 0 ] || fail "ls -lR raised events (metadata must come from the local bootstrap)"
    verify "$W/m" t1
    say "events $(stat_of events), fills $(stat_of fills), fetches $(stat_of fetches)"
    fan_umount "$W/m"
    daemon_stop
}

scen_nydus() {  # COMPRESSOR [DIGESTER]
    make_tree t1 --profile full --big-mib 12 --seed 3
    img_nydus ny t1 "$1" "${2:-blake3}"
    daemon_start
    fan_mount ny "$W/m"
    verify "$W/m" t1
    say "nydus -z $1 -d ${2:-blake3}: events $(stat_of events), fills $(stat_of fills), fetches $(stat_of fetches), chunk errors $(stat_of chunk_errors)"
    [ "$(stat_of chunk_errors)" = 0 ] || fail "chunk errors on a good image"
    fan_umount "$W/m"
    daemon_stop
}

# read_all_expect_eio DIR TREE: every file reads correctly or fails with EIO;
# never wrong bytes, never a hang. Prints the number of EIO files.
read_all_expect_eio() {    # DIR TREE: writes $W/n_eio and the correct files' names to $W/ok.list
    local f want got err rc n_eio=0 n_ok=0
    : >"$W/ok.list"
    while IFS= read -r -d '' f; do
        want=$(expected_sum "$2" "${f#./}")
        rc=0
        got=$(cd "$1" && timeout -s KILL "$READ_TIMEOUT" sha256sum -- "$f" 2>"$W/err") || rc=$?
        err=$(cat "$W/err")
        case "$rc" in
            0) [ "${got%% *}" = "$want" ] || fail "$f: read 'successfully' with WRONG bytes"
               n_ok=$((n_ok + 1)); printf '%s\0' "$f" >>"$W/ok.list" ;;
            124|137) fail "$f: read hung" ;;
            *) case "$err" in *"Input/output error"*) n_eio=$((n_eio + 1)) ;; *) fail "$f: failed, but not with EIO: $err" ;; esac ;;
        esac
    done < <(cd "$1" && find . -type f -print0)
    say "$n_ok files correct, $n_eio failed with EIO"
    echo "$n_eio" >"$W/n_eio"
}

scen_corrupt() {
    make_tree t1 --profile full --big-mib 12 --seed 4
    img_nydus bad t1 zstd
    local blob
    blob=$W/ny-bad/$(cat "$W/ny-bad.id")
    # Flip bytes in the middle of the chunk data (big.bin's chunks): digest or zstd frame check fails.
    python3 - "$blob" <<'PY'
import os, sys
p = sys.argv[1]
size = os.path.getsize(p)
with open(p, "r+b") as f:
    for off in (size // 3, size // 3 + 4096):
        f.seek(off)
        b = f.read(16)
        f.seek(off)
        f.write(bytes(x ^ 0x5A for x in b))
PY
    daemon_start
    fan_mount bad "$W/m"
    read_all_expect_eio "$W/m" t1
    [ "$(cat "$W/n_eio")" -gt 0 ] || fail "no file failed although chunk data was corrupted"
    [ "$(stat_of chunk_errors)" -gt 0 ] || fail "the daemon reported no chunk error"
    [ "$(stat_of denies)" -gt 0 ] || fail "no event was denied"
    say "chunk errors $(stat_of chunk_errors), denied events $(stat_of denies)"
    # A second pass fails the same way (nothing wrong was cached) and the daemon keeps serving.
    drop_caches
    read_all_expect_eio "$W/m" t1
    fan_umount "$W/m"
    daemon_stop
}

scen_short_blob() {
    make_tree t1 --profile list --file a.bin:3000000 --file b.bin:3000000 --file c.bin:3000000 --seed 5
    img_blobdev short t1
    # Cut the raw blob in the middle: the image still declares the full size.
    local size
    size=$(stat -c %s "$W/blobs/short.blob")
    truncate -s $((size / 2)) "$W/blobs/short.blob"
    daemon_start
    fan_mount short "$W/m"
    read_all_expect_eio "$W/m" t1
    [ "$(cat "$W/n_eio")" -gt 0 ] || fail "no file failed although the blob was cut short"
    say "denied events $(stat_of denies)"
    fan_umount "$W/m"
    daemon_stop
}

# set_slot_blocks IMAGE SLOT BLOCKS: rewrite a device slot's block count (what the image declares).
set_slot_blocks() {
    python3 - "$@" <<'PY'
import struct, sys
path, slot, blocks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(1024 + 88)
    slotoff = struct.unpack("<H", f.read(2))[0]
    f.seek(slotoff * 128 + slot * 128 + 64)
    f.write(struct.pack("<I", blocks))
    # The superblock checksum covers the device table: drop COMPAT_SB_CHKSUM rather than recompute it.
    f.seek(1024 + 8)
    compat = struct.unpack("<I", f.read(4))[0]
    f.seek(1024 + 8)
    f.write(struct.pack("<I", compat & ~1))
PY
}

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$DPID/status"; }

# An 8 KiB bootstrap whose device slot declares 0xffffffff blocks (16 TiB):
# refused at once, naming max_blob_size, without per-chunk tables or a
# 16 TiB cache file. A slot declaring 8 GiB over a 3 MiB blob (within the
# limit) mounts and reads right, its state following the bytes that exist.
scen_huge_slot() {
    make_tree t1 --profile list --file a.bin:1000000 --file b.bin:2000000 --seed 12
    img_blobdev huge t1
    img_blobdev big t1
    img_blobdev ok t1
    set_slot_blocks "$W/huge.boot" 0 $((0xffffffff))
    set_slot_blocks "$W/big.boot" 0 $((8 << 18))
    daemon_start
    local rss0 rss1 t0 t1 out rc=0
    rss0=$(hwm_kib)
    mkdir -p "$W/m"
    t0=$(date +%s%N)
    out=$(ctl mount huge "$W/m" 2>&1) || rc=$?
    t1=$(date +%s%N)
    rss1=$(hwm_kib)
    say "16 TiB slot: mount answered in $(( (t1 - t0) / 1000000 )) ms, daemon peak RSS $rss0 -> $rss1 KiB: $out"
    mountpoint -q "$W/m" && MOUNTS+=("$W/m")
    [ "$rc" != 0 ] || fail "a device slot declaring 16 TiB was mounted"
    case "$out" in *"more than max_blob_size"*) ;; *) fail "the refusal does not name max_blob_size: $out" ;; esac
    [ $((rss1 - rss0)) -lt 65536 ] || fail "the refused mount grew the daemon's peak RSS by $((rss1 - rss0)) KiB"
    [ $(( (t1 - t0) / 1000000 )) -lt 5000 ] || fail "the refusal took $(( (t1 - t0) / 1000000 )) ms"
    local big
    big=$(find "$W/cache" -type f -size +1G -printf '%s %p\n' | head -n 1)
    [ -z "$big" ] || fail "a huge cache file was created: $big"

    fan_mount big "$W/m"
    verify "$W/m" t1
    rss1=$(hwm_kib)
    say "8 GiB slot over a $(stat -c %s "$W/blobs/big.blob")-byte blob: mounted and verified, peak RSS $rss0 -> $rss1 KiB; $(ctl status | grep '^blob big.blob')"
    [ $((rss1 - rss0)) -lt 65536 ] || fail "serving the 8 GiB slot grew the daemon's peak RSS by $((rss1 - rss0)) KiB"
    ctl status | grep -q '^blob big.blob .*marked=1' || fail "a blob shorter than its slot lost its mark (reads past its end would see zeros)"
    fan_umount "$W/m"
    fan_mount ok "$W/m"
    verify "$W/m" t1
    fan_umount "$W/m"
    daemon_stop
}

scen_readers8() {
    make_tree t1 --profile full --big-mib 24 --seed 6
    img_blobdev conc t1
    daemon_start
    fan_mount conc "$W/m"
    local m=$W/m out=$W/conc pids=() f i bad=0
    mkdir -p "$out"
    mapfile -t files < <(cd "$W/t1" && find . -type f -printf '%s\t%P\n' | sort -k1,1nr | cut -f2 | head -n 8)
    for f in "${files[@]}"; do
        ( cd "$m" && timeout -s KILL "$READ_TIMEOUT" sha256sum -- "$f" >"$out/$(echo "$f" | tr / _).sum" 2>&1 ) & pids+=($!)
    done
    for i in 1 2; do   # two more readers of the largest file, racing the first one
        ( cd "$m" && timeout -s KILL "$READ_TIMEOUT" sha256sum -- "${files[0]}" >"$out/same$i.sum" 2>&1 ) & pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    for f in "${files[@]}"; do
        [ "$(cut -d' ' -f1 "$out/$(echo "$f" | tr / _).sum")" = "$(expected_sum t1 "$f")" ] || { say "MISMATCH $f"; bad=$((bad + 1)); }
    done
    for i in 1 2; do
        [ "$(cut -d' ' -f1 "$out/same$i.sum")" = "$(expected_sum t1 "${files[0]}")" ] || { say "MISMATCH same-file reader $i"; bad=$((bad + 1)); }
    done
    [ "$bad" = 0 ] || fail "$bad of ${#pids[@]} concurrent readers got wrong data"
    say "${#pids[@]} concurrent readers (8 files + 2 on the same file): all sha256 match; events $(stat_of events), fills $(stat_of fills), max latency $(stat_of max_latency_us) us"
    verify "$m" t1
    fan_umount "$m"
    daemon_stop
}

scen_restart() {
    make_tree t1 --profile full --big-mib 12 --seed 7
    img_blobdev rs t1
    daemon_start
    fan_mount rs "$W/m"
    local got
    got=$(timeout -s KILL "$READ_TIMEOUT" sha256sum "$W/m/big.bin" | cut -d' ' -f1)
    [ "$got" = "$(expected_sum t1 big.bin)" ] || fail "big.bin wrong before the restart"
    # Let readahead in flight land first: what is fetched but not yet written would be fetched again.
    local f1 i
    for i in $(seq 1 100); do
        [ "$(stat_of live_events)" = 0 ] && [ "$(stat_of bytes_fetched)" = "$(stat_of bytes_written)" ] && break
        sleep 0.1
    done
    f1=$(stat_of bytes_fetched)
    say "daemon 1 fetched $f1 bytes for big.bin (and readahead); killing it (SIGKILL) with the mount in place"
    kill -KILL "$DPID"
    wait "$DPID" 2>/dev/null || true
    daemon_start
    grep -q "re-attaching $W/m" "$DLOG" || fail "the restarted daemon did not re-attach $W/m"
    drop_caches
    got=$(timeout -s KILL "$READ_TIMEOUT" sha256sum "$W/m/big.bin" | cut -d' ' -f1)
    [ "$got" = "$(expected_sum t1 big.bin)" ] || fail "big.bin wrong after the restart"
    local ev fills
    ev=$(stat_of events)
    fills=$(stat_of fills)
    say "daemon 2: re-reading big.bin cold raised $ev events, $fills of them needed a fill"
    [ "$ev" -gt 0 ] || fail "re-reading after drop_caches raised no event: the blob was not re-marked"
    [ "$fills" = 0 ] || fail "daemon 2 did not find big.bin's chunks present ($fills fills)"
    verify "$W/m" t1
    local f2 size
    f2=$(stat_of bytes_fetched)
    size=$(stat -c %s "$W/blobs/rs.blob")
    say "whole tree verified: daemon 1 fetched $f1 + daemon 2 fetched $f2 bytes = blob size $size"
    [ "$f2" -gt 0 ] || fail "the rest of the tree needed no fetch?"
    [ $((f1 + f2)) = "$size" ] || fail "some chunks were fetched twice (or never): $f1 + $f2 != $size"
    fan_umount "$W/m"
    daemon_stop
}

scen_hold() {
    make_tree t1 --profile full --big-mib 12 --seed 8
    img_blobdev hd t1
    daemon_start hold
    local holder=$DPID child
    fan_mount hd "$W/m"
    local got
    got=$(timeout -s KILL "$READ_TIMEOUT" sha256sum "$W/m/a/f00-1.bin" | cut -d' ' -f1)
    child=$(stat_of pid)
    say "holder $holder, daemon $child; killing the daemon (SIGKILL)"
    kill -KILL "$child"
    for _ in $(seq 1 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
    # The group is still open: this read must wait for the next daemon, not read holes.
    local t0 t1
    t0=$(date +%s.%N)
    got=$(timeout -s KILL "$READ_TIMEOUT" sha256sum "$W/m/big.bin" | cut -d' ' -f1)
    t1=$(date +%s.%N)
    [ "$got" = "$(expected_sum t1 big.bin)" ] || fail "big.bin read while the daemon was down is WRONG (holes?)"
    wait_ready "$DLOG" 2
    say "big.bin read across the crash is correct; it waited $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s for the restarted daemon"
    grep -q 'hold: daemon killed by signal 9; restarting' "$DLOG" || fail "the holder did not restart the daemon"
    verify "$W/m" t1
    fan_umount "$W/m"
    daemon_stop     # SIGTERM to the holder: forwarded, the daemon exits 0, so does the holder
}

# images[].prefetch: mounted and left alone, the blob fills in the background;
# then every file verifies without an event (the complete blob lost its mark).
scen_prefetch() {
    make_tree t1 --profile full --big-mib 12 --seed 11
    img_nydus pf t1 zstd
    printf '    prefetch: true\n' >>"$W/images.yaml"
    daemon_start
    fan_mount pf "$W/m"
    local i
    for i in $(seq 1 300); do
        grep -q 'prefetch of .* done' "$DLOG" && break
        grep -q 'prefetch of .* stopped after' "$DLOG" && fail "prefetch failed: $(grep 'prefetch of' "$DLOG" | tail -n 1)"
        sleep 0.1
    done
    grep -q 'prefetch of .* done' "$DLOG" || fail "no 'prefetch ... done' in the daemon log after 30 s"
    say "$(grep -o 'prefetch of .* done.*' "$DLOG" | tail -n 1)"
    local e0
    e0=$(stat_of events)
    drop_caches
    verify "$W/m" t1
    say "events: $e0 up to the end of the prefetch, $(( $(stat_of events) - e0 )) while every file was read"
    [ "$(stat_of events)" = "$e0" ] || fail "reads after a complete prefetch still raised events"
    [ "$(stat_of prefetches)" -gt 0 ] || fail "no prefetch fill counted"
    fan_umount "$W/m"
    daemon_stop
}

scen_reuse() {
    make_tree t1 --profile full --big-mib 8 --seed 9
    img_nydus re t1 lz4_block
    daemon_start
    fan_mount re "$W/m"
    verify "$W/m" t1
    fan_umount "$W/m"
    local e1 f1
    e1=$(stat_of events)
    f1=$(stat_of fetches)
    drop_caches
    fan_mount re "$W/m"
    verify "$W/m" t1
    say "pass 1: $e1 events, $f1 fetches; pass 2 (umount, mount): $(( $(stat_of events) - e1 )) events, $(( $(stat_of fetches) - f1 )) fetches"
    [ "$(stat_of fetches)" = "$f1" ] || fail "the second mount fetched again"
    [ "$(stat_of events)" = "$e1" ] || fail "a complete blob still raised events (it should not be marked)"
    fan_umount "$W/m"
    daemon_stop
}

scen_errors() {
    make_tree t1 --profile small --big-mib 1 --seed 10
    img_blobdev ok t1
    img_blobdev gone t1
    rm "$W/blobs/gone.blob"
    # A bootstrap that is not an image: the daemon still starts and serves the others.
    head -c 100 /dev/urandom >"$W/broken.img"
    printf '  - fsid: broken\n    bootstrap: %s\n' "$W/broken.img" >>"$W/images.yaml"
    daemon_start
    local out rc=0
    grep -q "image broken is not served: bootstrap $W/broken.img is not a usable erofs image" "$DLOG" ||
        fail "the daemon log does not name the broken image and why"
    out=$(ctl status) || fail "status failed"
    case "$out" in *"image broken not served: bootstrap $W/broken.img is not a usable erofs image"*) ;;
        *) fail "status does not report the broken image: $out" ;; esac
    mkdir -p "$W/m"
    rc=0
    out=$(ctl mount broken "$W/m" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "mounting the broken image succeeded"
    case "$out" in *"image broken is not served: bootstrap"*) ;; *) fail "mount of the broken image: $out" ;; esac
    say "broken image: $out"
    rc=0
    out=$(ctl mount no-such-image "$W/m" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "mounting an unknown fsid succeeded"
    say "unknown fsid: $out"
    rc=0
    out=$(ctl mount gone "$W/m" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "mounting an image whose blob is missing succeeded"
    say "missing blob: $out"
    mountpoint -q "$W/m" && fail "a failed mount left $W/m mounted"
    rc=0
    out=$(ctl umount "$W/m" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "umount of a directory the daemon did not mount succeeded"
    fan_mount ok "$W/m"
    rc=0
    out=$(ctl mount ok "$W/m" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "a second mount on the same directory succeeded"
    verify "$W/m" t1
    fan_umount "$W/m"
    daemon_stop
}

# frontend: auto picks fanotify where /dev/cachefiles is missing; explicit
# choices that cannot work fail at once with the reason.
scen_frontend_choice() {
    make_tree t1 --profile small --big-mib 1 --seed 11
    img_blobdev fc t1
    daemon_start    # writes cfg.yaml (frontend: fanotify)
    daemon_stop
    local out rc
    sed 's/^frontend: fanotify$/frontend: auto/' "$W/cfg.yaml" >"$W/auto.yaml"
    if [ ! -e /dev/cachefiles ]; then
        "$CFN_DAEMON" --config "$W/auto.yaml" --log-file "$W/auto.log" </dev/null >/dev/null 2>&1 & DPID=$!
        PIDS+=("$DPID")
        wait_ready "$W/auto.log"
        grep -q 'frontend auto: using fanotify' "$W/auto.log" || fail "auto did not choose fanotify without /dev/cachefiles"
        say "frontend auto without /dev/cachefiles: $(grep -o 'frontend auto: using [a-z]*' "$W/auto.log")"
        daemon_stop
        rc=0
        out=$(timeout 20 "$CFN_DAEMON" --config "$W/auto.yaml" --frontend fscache 2>&1) || rc=$?
        [ "$rc" != 0 ] || fail "--frontend fscache started without /dev/cachefiles"
        case "$out" in *"/dev/cachefiles"*) say "frontend fscache: $(echo "$out" | tail -n 1 | cut -c 26-)" ;;
            *) fail "--frontend fscache failed without naming /dev/cachefiles: $out" ;; esac
    else
        say "/dev/cachefiles exists here: not checking auto's fallback"
    fi
    if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
        sed "s|^cache_dir: .*|cache_dir: /dev/shm/cfn-fan-test-$$|" "$W/cfg.yaml" >"$W/tmpfs.yaml"
        rc=0
        out=$(timeout 20 "$CFN_DAEMON" --config "$W/tmpfs.yaml" 2>&1) || rc=$?
        rm -rf "/dev/shm/cfn-fan-test-$$"
        [ "$rc" != 0 ] || fail "a cache_dir on tmpfs was accepted"
        case "$out" in *"ext4, xfs or btrfs"*) say "cache_dir on tmpfs: $(echo "$out" | tail -n 1 | cut -c 26-)" ;;
            *) fail "a cache_dir on tmpfs failed without saying why: $out" ;; esac
    fi
}

# ---- shutdown under load ----

# fault_server BLOB_DIR: tests/backend/servers/fault.py on loopback (stopped by cleanup); sets FAULT_ADDR.
fault_server() {
    mkdir -p "$W/state"
    python3 "${BACKEND_SERVERS:?}/fault.py" --listen 127.0.0.1:0 --state "$W/state" --name fault --blobs "$1" \
        --ready "$W/state/fault.ready" >"$W/fault.log" 2>&1 &
    PIDS+=($!)
    local i
    for i in $(seq 1 150); do
        [ -s "$W/state/fault.ready" ] && { FAULT_ADDR=$(cat "$W/state/fault.ready"); return 0; }
        sleep 0.1
    done
    fail "fault.py did not start"
}

# backend_yaml TYPE HOST:PORT: a backend of TYPE whose blob requests reach fault.py (mode ok).
backend_yaml() {
    case "$1" in
        registry) echo "{type: registry, scheme: http, host: $2, repo: library/cfn, timeout: 60}" ;;
        s3) echo "{type: s3, scheme: http, endpoint: $2, bucket_name: cfnbucket, object_prefix: ok/, path_style: true, timeout: 60}" ;;
        oss) echo "{type: oss, scheme: http, endpoint: localhost:${2##*:}, bucket_name: cfnbucket, object_prefix: ok/, timeout: 60}" ;;
        http-proxy) echo "{type: http-proxy, addr: http://$2, path: /ok, timeout: 60}" ;;
        *) fail "unknown backend type $1" ;;
    esac
}

# A reader of one 4 KiB block of big.bin at block K: one read(2), one event.
start_block_reader() {   # K
    ( rc=0; cd "$W/m" && timeout -s KILL 60 dd if=big.bin of="$W/rd.$1" bs=4096 count=1 skip="$1" status=none \
        2>"$W/rd.$1.err" || rc=$?; echo "$rc" >"$W/rd.$1.rc" ) &
    READERS+=("$1")
}

# Each reader ended with EIO or with the right bytes: never wrong bytes, never a hang.
check_block_readers() {
    local k rc n_eio=0 n_ok=0
    for k in "${READERS[@]}"; do
        for _ in $(seq 1 100); do [ -s "$W/rd.$k.rc" ] && break; sleep 0.1; done
        rc=$(cat "$W/rd.$k.rc" 2>/dev/null || echo hung)
        case "$rc" in
            0) dd if="$W/t1/big.bin" bs=4096 count=1 skip="$k" status=none | cmp -s - "$W/rd.$k" ||
                   fail "reader of block $k got WRONG bytes"; n_ok=$((n_ok + 1)) ;;
            hung|124|137) fail "reader of block $k hung" ;;
            *) grep -q "Input/output error" "$W/rd.$k.err" || fail "reader of block $k failed, but not with EIO: $(cat "$W/rd.$k.err")"
               n_eio=$((n_eio + 1)) ;;
        esac
    done
    say "readers: $n_ok got the right bytes, $n_eio got EIO"
    echo "$n_eio" >"$W/n_eio"
}

# SIGTERM to DPID: it must exit 0 within 5 s, with no sanitizer report. Sets SECS.
sigterm_timed() {
    local t0 t1 rc=0 i
    t0=$(date +%s.%N)
    kill -TERM "$DPID"
    for i in $(seq 1 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    t1=$(date +%s.%N)
    if kill -0 "$DPID" 2>/dev/null; then
        tail -n 5 "$DLOG"
        fail "still running 5 s after SIGTERM"
    fi
    wait "$DPID" || rc=$?
    grep -q "Sanitizer" "$DLOG.stderr" && { grep -A12 "Sanitizer" "$DLOG.stderr" | head -n 30; fail "sanitizer report at shutdown"; }
    [ "$rc" = 0 ] || { tail -n 20 "$DLOG.stderr"; fail "exit status $rc on SIGTERM"; }
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

# shutdown BACKEND [hold]: SIGTERM while prefetch, read-ahead and readers' fills are
# in flight. Remote backends stall every data range (fault.py); localfs cannot
# stall, so its prefetch of a large blob is simply still running.
scen_shutdown() {
    local backend=$1 mode=${2:-} id size
    READERS=()
    if [ "$backend" = localfs ]; then
        make_tree t1 --profile list --file big.bin:67108864 --seed 12
        img_nydus sd t1 zstd
        printf '    prefetch: true\n' >>"$W/images.yaml"
    else
        make_tree t1 --profile list --file big.bin:16777216 --file small.txt:1000 --seed 12
        img_nydus sd t1 zstd
        id=$(cat "$W/ny-sd.id")
        fault_server "$W/ny-sd"
        printf '    prefetch: true\n    backend: %s\n' "$(backend_yaml "$backend" "$FAULT_ADDR")" >>"$W/images.yaml"
        # Data ranges hang from the start; the chunk table at the blob's tail still answers, so the mount works.
        size=$(stat -c %s "$W/ny-sd/$id")
        echo $((size * 3 / 4)) >"$W/state/stall-$id"
    fi
    daemon_start $mode
    fan_mount sd "$W/m"
    local k
    for k in 5 700 1900 3100; do start_block_reader "$k"; done
    if [ "$backend" != localfs ]; then
        for _ in $(seq 1 100); do
            [ "$(grep -s '^stalled ' "$W/state/fault.stats" | cut -d' ' -f2)" -ge 4 ] 2>/dev/null &&
                [ "$(stat_of live_events)" -ge 4 ] && break
            sleep 0.1
        done
        [ "$(stat_of live_events)" -ge 4 ] || fail "the readers are not waiting for their fills"
        say "$backend: $(grep '^stalled ' "$W/state/fault.stats" | cut -d' ' -f2) transfers stalled, $(stat_of live_events) readers waiting, prefetch and read-ahead in flight"
    else
        grep -q 'prefetch of .* done' "$DLOG" && fail "the prefetch ended before SIGTERM: nothing was in flight"
    fi
    if [ "$mode" = hold ]; then
        local child
        child=$(stat_of pid)
        sigterm_timed
        kill -0 "$child" 2>/dev/null && fail "the daemon outlived its holder"
        grep -q 'hold: daemon exited cleanly' "$DLOG" || fail "the holder did not see a clean exit: $(grep 'hold:' "$DLOG" | tail -n 1)"
        grep -q '; restarting it' "$DLOG" && fail "the holder restarted the daemon: $(grep '; restarting it' "$DLOG")"
    else
        sigterm_timed
    fi
    say "SIGTERM with fills in flight: clean exit in $SECS s"
    check_block_readers
    [ "$backend" = localfs ] || [ "$(cat "$W/n_eio")" -gt 0 ] || fail "no reader of a stalled range got EIO"
    grep -q "still busy\|still outstanding" "$DLOG" && fail "shutdown waited for requests: $(grep 'still' "$DLOG" | tail -n 1)"
    fan_umount_after_exit "$W/m"
}

# SIGTERM while a mount job waits for a stalled backend (the blob's chunk table):
# the daemon exits within 5 s, the mount command fails, nothing is mounted.
scen_shutdown_mount() {
    make_tree t1 --profile list --file big.bin:4194304 --seed 14
    img_nydus sm t1 zstd
    local id rc
    id=$(cat "$W/ny-sm.id")
    fault_server "$W/ny-sm"
    printf '    backend: %s\n' "$(backend_yaml registry "$FAULT_ADDR")" >>"$W/images.yaml"
    : >"$W/state/stall-$id"     # every ranged read stalls
    daemon_start
    mkdir -p "$W/m"
    MOUNTS+=("$W/m")            # cleanup, should it be mounted after all
    ( rc=0; ctl mount sm "$W/m" >"$W/mount.out" 2>&1 || rc=$?; echo "$rc" >"$W/mount.rc" ) &
    for _ in $(seq 1 100); do
        [ "$(grep -s '^stalled ' "$W/state/fault.stats" | cut -d' ' -f2)" -ge 1 ] 2>/dev/null && break
        sleep 0.1
    done
    [ "$(grep -s '^stalled ' "$W/state/fault.stats" | cut -d' ' -f2)" -ge 1 ] 2>/dev/null || fail "the mount never reached the backend"
    sigterm_timed
    for _ in $(seq 1 50); do [ -s "$W/mount.rc" ] && break; sleep 0.1; done
    rc=$(cat "$W/mount.rc" 2>/dev/null || echo hung)
    [ "$rc" = hung ] && fail "the mount command did not return after the daemon exited"
    [ "$rc" != 0 ] || fail "the mount succeeded while the daemon was stopping"
    mountpoint -q "$W/m" && fail "$W/m was mounted during shutdown"
    say "SIGTERM during a stalled mount: clean exit in $SECS s; mount: $(tail -n 1 "$W/mount.out")"
}

# hold: the daemon dies (SIGKILL) while it is stopping on the holder's SIGTERM:
# the holder must end, not restart it (it was told to stop).
scen_hold_crash_at_stop() {
    make_tree t1 --profile small --big-mib 1 --seed 13
    img_blobdev hc t1
    daemon_start hold
    local holder=$DPID child rc=0
    fan_mount hc "$W/m"
    child=$(stat_of pid)
    kill -STOP "$child"                 # it cannot act on the SIGTERM yet
    kill -TERM "$holder"
    sleep 0.5                           # the holder forwarded it
    kill -KILL "$child"
    for _ in $(seq 1 50); do kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$holder" 2>/dev/null; then
        grep 'hold:' "$DLOG" | tail -n 3
        fail "the holder is still running 5 s after SIGTERM (it restarted the daemon?)"
    fi
    wait "$holder" || rc=$?
    grep -q '; restarting it' "$DLOG" && fail "the holder restarted the daemon after SIGTERM"
    grep -q 'killed by signal 9 while stopping; not restarting' "$DLOG" || fail "no 'not restarting' in the log"
    [ "$rc" != 0 ] || fail "the holder exited 0 although its daemon was killed"
    say "holder ended (status $rc) without restarting the daemon killed while stopping"
    fan_umount_after_exit "$W/m"
}

# The daemon is gone: unmount without it.
fan_umount_after_exit() {
    umount "$1" || fail "umount $1 failed"
    local keep=() m
    for m in "${MOUNTS[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
    MOUNTS=("${keep[@]}")
}

# ctl_within MS ARGS...: a control request must be answered (successfully) within MS ms.
ctl_within() {
    local limit=$1 t0 took rc=0 out
    shift
    t0=$(now_ms)
    out=$(timeout -s KILL 30 "$CFN_DAEMON" --config "$W/cfg.yaml" --timeout 10 "$@" 2>&1) || rc=$?
    took=$(( $(now_ms) - t0 ))
    [ "$rc" = 0 ] || fail "'$*' failed after $took ms: $out"
    [ "$took" -le "$limit" ] || fail "'$*' took $took ms (bound $limit ms)"
    say "'$*' answered in $took ms"
}

# A mount whose backend stalls (its HEAD held by fault.py) holds up neither
# status, nor umount, nor another mount, and fails at its deadline (twice
# request_timeout) with a clear error; once the backend answers, the job has
# cleaned up and the same mount succeeds. The control socket is mode 0600.
scen_control_stall() {
    make_tree t1 --profile small --big-mib 1 --seed 12
    mkdir -p "$W/blobs"
    fault_server "$W/blobs"
    img_blobdev slow t1 "$(backend_yaml http-proxy "$FAULT_ADDR")"
    img_blobdev fast t1 "$(backend_yaml http-proxy "$FAULT_ADDR")"
    img_blobdev other t1
    REQUEST_TIMEOUT=2s daemon_start
    local mode
    mode=$(stat -c %a "$W/work/control.sock")
    [ "$mode" = 600 ] || fail "the control socket is mode $mode, not 600"
    say "control socket mode $mode"
    fan_mount other "$W/m2"
    touch "$W/state/hold-slow.blob"
    mkdir -p "$W/m1" "$W/m3"
    local t0 rc
    t0=$(now_ms)
    ( rc=0; timeout -s KILL 60 "$CFN_DAEMON" --config "$W/cfg.yaml" --timeout 30 mount slow "$W/m1" >"$W/slow.out" 2>&1 || rc=$?
      echo "$rc $(( $(now_ms) - t0 ))" >"$W/slow.rc" ) &
    local i
    for i in $(seq 1 100); do [ "$(fault_stat held)" -ge 1 ] && break; sleep 0.1; done
    [ "$(fault_stat held)" -ge 1 ] || fail "the slow mount never reached the backend"
    say "mount slow: its HEAD is held by the backend"
    # A second mount of the same image waits behind the first (same cache files), within its own deadline.
    mkdir -p "$W/m4"
    ( rc=0; timeout -s KILL 60 "$CFN_DAEMON" --config "$W/cfg.yaml" --timeout 30 mount slow "$W/m4" >"$W/slow2.out" 2>&1 || rc=$?
      echo "$rc" >"$W/slow2.rc" ) &
    ctl_within 1000 status
    ctl_within 1000 umount "$W/m2"
    ctl_within 2000 mount fast "$W/m3"
    MOUNTS+=("$W/m3")
    verify "$W/m3" t1
    for i in $(seq 1 150); do [ -s "$W/slow.rc" ] && break; sleep 0.1; done
    [ -s "$W/slow.rc" ] || fail "the stalled mount did not fail within 15 s"
    read -r rc took <"$W/slow.rc"
    say "stalled mount: exit $rc after $took ms: $(cat "$W/slow.out")"
    [ "$rc" != 0 ] || fail "the stalled mount succeeded?"
    grep -q "did not finish within 4000 ms" "$W/slow.out" || fail "the stalled mount failed without naming its deadline"
    [ "$took" -ge 3500 ] && [ "$took" -le 8000 ] || fail "the stalled mount failed after $took ms, not at its 4 s deadline"
    mountpoint -q "$W/m1" && fail "the timed-out mount left $W/m1 mounted"
    for i in $(seq 1 50); do [ -s "$W/slow2.rc" ] && break; sleep 0.1; done
    say "second mount of the stalled image: exit $(cat "$W/slow2.rc" 2>/dev/null): $(cat "$W/slow2.out")"
    [ "$(cat "$W/slow2.rc" 2>/dev/null)" = 1 ] && grep -q "waited 4000 ms for another mount" "$W/slow2.out" ||
        fail "the mount queued behind the stalled one did not fail at its deadline"
    mountpoint -q "$W/m4" && fail "the queued mount left $W/m4 mounted"
    # The backend answers at last: the abandoned job cleans up, and the mount works.
    rm "$W/state/hold-slow.blob"
    for i in $(seq 1 100); do grep -q "mount slow on $W/m1 failed" "$DLOG" && break; sleep 0.1; done
    grep -q "mount slow on $W/m1 failed: did not finish" "$DLOG" || fail "the abandoned mount job did not finish"
    fan_mount slow "$W/m1"
    verify "$W/m1" t1
    fan_umount "$W/m1"
    fan_umount "$W/m3"
    daemon_stop
}

# Out of file descriptors (the daemon kept at `ulimit -n 24` with
# --rlimit-nofile 0): 32 readers whose fetches the backend holds, so the
# events in flight keep every fd taken. Readers get their bytes or EIO,
# `status` keeps answering, and the log has no warning flood. Then without
# the option, the daemon raises its own limit and says so.
scen_fd_exhaustion() {
    local args=() i f
    for i in $(seq -w 1 32); do args+=(--file "f$i.bin:1048576"); done
    make_tree t1 --profile list "${args[@]}" --seed 13
    mkdir -p "$W/blobs"
    fault_server "$W/blobs"
    img_blobdev many t1 "$(backend_yaml http-proxy "$FAULT_ADDR")"
    DAEMON_ULIMIT="-n ${FD_LIMIT:-24}" DAEMON_ARGS="--rlimit-nofile 0" daemon_start
    grep -q "open file limit" "$DLOG" && fail "--rlimit-nofile 0 still changed the limit"
    fan_mount many "$W/m"
    touch "$W/state/hold-many.blob"
    local out=$W/rd pids=()
    mkdir -p "$out"
    for i in $(seq -w 1 32); do
        ( rc=0; cd "$W/m" && timeout -s KILL "$READ_TIMEOUT" sha256sum -- "f$i.bin" >"$out/$i.sum" 2>"$out/$i.err" || rc=$?
          echo "$rc" >"$out/$i.rc" ) &
        pids+=($!)
    done
    for i in $(seq 1 50); do [ "$(fault_stat held)" -ge 1 ] && break; sleep 0.1; done
    say "fetches held by the backend: $(fault_stat held); daemon fds: $(ls "/proc/$DPID/fd" | wc -l) of ${FD_LIMIT:-24}"
    for i in 1 2 3; do
        ctl_within 1500 status
        sleep 0.5
    done
    rm "$W/state/hold-many.blob"
    for i in "${pids[@]}"; do wait "$i" || true; done
    local ok=0 eio=0
    for i in $(seq -w 1 32); do
        case "$(cat "$out/$i.rc")" in
            0) [ "$(cut -d' ' -f1 "$out/$i.sum")" = "$(expected_sum t1 "f$i.bin")" ] || fail "f$i.bin read with WRONG bytes"
               ok=$((ok + 1)) ;;
            137) fail "reading f$i.bin hung" ;;
            *) grep -q "Input/output error" "$out/$i.err" || fail "f$i.bin failed, but not with EIO: $(cat "$out/$i.err")"
               eio=$((eio + 1)) ;;
        esac
    done
    # A line (numbers aside) repeated more often than there are readers is a flood: a retry loop logging.
    awk '$2 == "warn" || $2 == "error"' "$DLOG" | cut -d' ' -f2- | sed 's/[0-9]\+/N/g' | sort | uniq -c | sort -rn >"$W/warnings"
    say "32 readers at ulimit -n ${FD_LIMIT:-24}: $ok correct, $eio EIO; warnings and errors in the log:"
    head -n 6 "$W/warnings" | cut -c1-160 | sed 's/^/    /'
    local flood
    flood=$(awk 'NR == 1 { print $1 }' "$W/warnings")
    [ "${flood:-0}" -le 32 ] || fail "one warning repeated ${flood} times: a flood"
    ctl_within 3000 status
    # Let read-ahead still in flight land before the stop.
    local last=-1 now
    for i in $(seq 1 50); do
        now=$(fault_stat requests)
        [ "$now" = "$last" ] && [ "$(stat_of live_events)" = 0 ] && break
        last=$now
        sleep 0.5
    done
    # Unmounted once the daemon is gone: at this limit the daemon's own umount may find no fd left.
    daemon_stop
    fan_umount_after_exit "$W/m"
    # The soft limit only: without CAP_SYS_RESOURCE the hard limit is as far as it can go.
    DAEMON_ULIMIT="-Sn 64" daemon_start
    local soft
    soft=$(awk '/^Max open files/ { print $4 }' "/proc/$DPID/limits")
    say "started at ulimit -n 64: $(grep -o 'open file limit.*' "$DLOG" | head -n 1); /proc says $soft"
    [ "$soft" -gt 64 ] || fail "the daemon did not raise its open file limit"
    daemon_stop
}

# A full cache file system (no limit configured): reads fail with EIO, never
# with wrong bytes or a hang; a restart keeps (and does not refetch) what was
# written; once space is freed the same reads succeed.
scen_enospc() {
    command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 (e2fsprogs) is not installed"
    # 24 files of 1 MiB, read one chunk each (no read-ahead): about a third fit.
    local files=() i
    for i in $(seq -w 1 24); do files+=(--file "f$i:1048576"); done
    make_tree t1 --profile list --seed 12 "${files[@]}"
    img_blobdev es t1
    EXTRA_CONFIG="fanotify_readahead: 0"
    truncate -s 40M "$W/cachefs.img"
    mkfs.ext4 -q -F "$W/cachefs.img"
    mkdir -p "$W/cache"
    mount -o loop "$W/cachefs.img" "$W/cache" || skip "cannot loop-mount an ext4 image here"
    MOUNTS+=("$W/cache")
    # Leave about 8 MiB of the 40 MiB: a third of the 24 MiB image.
    local avail_kib
    avail_kib=$(df --output=avail -k "$W/cache" | tail -n 1)
    fallocate -l $(( (avail_kib - 8192) * 1024 )) "$W/cache/filler"
    say "cache file system: 40 MiB ext4, $(df --output=avail -k "$W/cache" | tail -n 1) KiB free for a 24 MiB image"
    daemon_start
    fan_mount es "$W/m"
    read_all_expect_eio "$W/m" t1
    [ "$(cat "$W/n_eio")" -gt 0 ] || fail "nothing failed: the cache never filled up"
    [ -s "$W/ok.list" ] || fail "nothing could be read with 8 MiB free"
    grep -q "No space left on device" "$DLOG" || fail "the daemon log does not name ENOSPC"
    daemon_stop
    daemon_start
    grep -q "re-attaching $W/m" "$DLOG" || fail "the restarted daemon did not re-attach $W/m"
    drop_caches
    local f want got n=0
    while IFS= read -r -d '' f; do
        want=$(expected_sum t1 "${f#./}")
        got=$(cd "$W/m" && timeout -s KILL "$READ_TIMEOUT" sha256sum -- "$f") || fail "$f: readable before the restart, not after"
        [ "${got%% *}" = "$want" ] || fail "$f: wrong bytes after the restart"
        n=$((n + 1))
    done <"$W/ok.list"
    [ "$(stat_of fills)" = 0 ] || fail "the restarted daemon refetched what its cache held ($(stat_of fills) fills)"
    say "after the restart: the $n files read before verify again with no fill"
    rm -f "$W/cache/filler"
    sync
    drop_caches
    verify "$W/m" t1
    fan_umount "$W/m"
    daemon_stop
    umount "$W/cache"
    forget_mount "$W/cache"
}

# ---- paths the root daemon must never be tricked into (issue 11, items 4 and 5) ----

# slow_server_start BLOBDIR: the scripted http-proxy blob server; sets SLOW_ADDR and SLOW_STATE.
slow_server_start() {
    SLOW_STATE=$W/slow-state
    mkdir -p "$SLOW_STATE"
    python3 "$(dirname "$0")/slow-server.py" --listen 127.0.0.1:0 --state "$SLOW_STATE" --name slow \
        --blobs "$1" --ready "$SLOW_STATE/ready" >"$W/slow-server.log" 2>&1 &
    PIDS+=("$!")
    local i
    for i in $(seq 1 100); do [ -s "$SLOW_STATE/ready" ] && break; sleep 0.1; done
    [ -s "$SLOW_STATE/ready" ] || fail "the slow blob server did not start: $(tail -n 3 "$W/slow-server.log")"
    SLOW_ADDR=http://$(cat "$SLOW_STATE/ready")
}
slow_stat() { sed -n "s/^$1 //p" "$SLOW_STATE/slow.stats" 2>/dev/null; }

# Item 4: while the daemon waits for the backend during `mount`, the mount
# point is swapped for a symlink to a root-owned directory. The mount must
# not land there (nor anywhere else), and the daemon must not record it.
scen_mount_race() {
    make_tree t1 --profile small --big-mib 2 --seed 21
    img_nydus race t1 zstd
    slow_server_start "$W/ny-race"
    printf '    backend: {type: http-proxy, addr: "%s"}\n' "$SLOW_ADDR" >>"$W/images.yaml"
    daemon_start
    mkdir -p "$W/user/m" "$W/rootdir"
    echo "root's directory" >"$W/rootdir/file"
    MOUNTS+=("$W/rootdir" "$W/user/m.old")     # cleanup, should the mount land there
    touch "$SLOW_STATE/hold"
    local out rc=0 i
    ( rc=0; ctl mount race "$W/user/m" >"$W/race.out" 2>&1 || rc=$?; echo "$rc" >"$W/race.rc" ) &
    for i in $(seq 1 200); do [ "$(slow_stat held)" ] && break; sleep 0.05; done
    [ "$(slow_stat held)" ] || fail "the mount request never reached the backend"
    mv "$W/user/m" "$W/user/m.old"
    ln -s "$W/rootdir" "$W/user/m"
    say "mount point swapped for a symlink to $W/rootdir while the daemon waited for the backend"
    rm -f "$SLOW_STATE/hold"
    for i in $(seq 1 600); do [ -s "$W/race.rc" ] && break; sleep 0.1; done
    rc=$(cat "$W/race.rc" 2>/dev/null || echo hung)
    out=$(cat "$W/race.out")
    mountpoint -q "$W/rootdir" && fail "the erofs mount landed on the symlink's target $W/rootdir"
    mountpoint -q "$W/user/m.old" && fail "the erofs mount landed on the moved directory $W/user/m.old"
    [ "$rc" != 0 ] || fail "mount reported success although nothing is mounted where asked"
    case "$out" in *"moved or replaced"*) ;; *) fail "the refusal does not say why: $out" ;; esac
    say "refused: $out"
    ctl status | grep -q '^mount ' && fail "the daemon records a mount that does not exist: $(ctl status | grep '^mount ')"
    # A symlinked mount point is refused outright, and the real directory still works.
    rc=0
    out=$(printf 'mount\0race\0%s' "$W/user/m" | timeout 20 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1]); s.send(sys.stdin.buffer.read())
print(s.recv(8192).decode())' "$W/work/control.sock" 2>&1) || rc=$?
    case "$out" in -*symlink*) say "symlinked mount point: $(echo "$out" | tail -n 1)" ;;
        *) fail "a mount point through a symlink was not refused: $out" ;; esac
    rm "$W/user/m" && mv "$W/user/m.old" "$W/user/m"
    fan_mount race "$W/user/m"
    verify "$W/user/m" t1
    fan_umount "$W/user/m"
    daemon_stop
}

# Item 4: a umount that cannot find the mount where it was made (a parent
# directory was renamed) must fail and keep serving it; only a mount that
# is really gone is forgotten.
scen_umount_moved() {
    make_tree t1 --profile full --big-mib 8 --seed 22
    img_blobdev mv t1
    daemon_start
    mkdir -p "$W/p/m"
    fan_mount mv "$W/p/m"
    MOUNTS+=("$W/q/m")
    mv "$W/p" "$W/q"
    mkdir -p "$W/p/m"
    local out rc=0
    out=$(ctl umount "$W/p/m" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "umount of $W/p/m reported success, but the mount is at $W/q/m (still mounted: $(mountpoint -q "$W/q/m" && echo yes || echo no))"
    case "$out" in *"$W/q/m"*) say "refused: $out" ;; *) fail "the refusal does not say where the mount is: $out" ;; esac
    mountpoint -q "$W/q/m" || fail "the moved mount was taken down"
    ctl status | grep -q "^mount mv $W/q/m\$" || fail "status does not list the mount at its new place: $(ctl status | grep '^mount')"
    drop_caches
    verify "$W/q/m" t1      # its blobs are still marked and served: no zeros
    # A restarted daemon finds it by its mount id, although the state file names the old path.
    kill -KILL "$DPID"
    wait "$DPID" 2>/dev/null || true
    daemon_start
    grep -q "now mounted at $W/q/m" "$DLOG" || fail "the restarted daemon did not find the moved mount"
    ctl status | grep -q "^mount mv $W/q/m\$" || fail "after the restart, status does not list $W/q/m"
    fan_umount "$W/q/m"
    mountpoint -q "$W/q/m" && fail "umount at the new place left it mounted"
    # Unmounted behind the daemon's back: that one is forgotten.
    fan_mount mv "$W/p/m"
    umount "$W/p/m"
    ctl umount "$W/p/m" || fail "umount of a mount already gone was not accepted"
    ctl status | grep -q '^mount ' && fail "a mount that is gone is still recorded"
    daemon_stop
}

# sha256 of every file below $W/victims (the root-owned files a planted symlink points at).
victims_sum() {
    (cd "$W/victims" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum -- &&
        find . -printf '%y %p %s %m %T@\n' | LC_ALL=C sort)
}

# Item 5: symlinks planted below cache_dir and work_dir are never written through.
scen_symlinks() {
    make_tree t1 --profile small --big-mib 2 --seed 23
    img_plain plain t1
    img_blobdev bd t1
    img_nydus ny t1 zstd
    # An image configured by its blob alone: the daemon stores its bootstrap in work_dir.
    mkdir -p "$W/ny-ib"
    "$NYDUS_MKIMAGE" -z zstd -i -o "$W/ny-ib" "$W/t1" >"$W/ny-ib.id" 2>"$W/mkimage-ib.log" || fail "nydus-mkimage -i failed"
    printf '  - fsid: ib\n    bootstrap_blob: %s\n    backend: {type: localfs, dir: %s}\n' "$(cat "$W/ny-ib.id")" \
        "$W/ny-ib" >>"$W/images.yaml"
    daemon_start
    daemon_stop
    local stored
    stored=$(ls "$W/work/$(cat "$W/ny-ib.id")".*image.boot 2>/dev/null | head -n 1)
    [ -f "$stored" ] || fail "the daemon stored no bootstrap for image ib in $W/work"
    mkdir -p "$W/victims/dir" "$W/cache/fanotify/plain"
    echo "root's precious file" >"$W/victims/file"
    echo "another root file" >"$W/victims/state"
    echo "and one more" >"$W/victims/meta"
    # The stored bootstrap as a symlink to a copy someone else controls: never taken for the daemon's own.
    mv "$stored" "$W/victims/boot"
    ln -s "$W/victims/boot" "$stored"
    ln -s "$W/victims/file" "$W/cache/fanotify/plain/plain"      # the blob's cache file
    ln -s "$W/victims/dir" "$W/cache/fanotify/bd"                # the image's directory
    ln -s "$W/victims/state" "$W/work/fanotify-mounts"          # the state file
    ln -s "$W/victims/meta" "$W/work/$(cat "$W/ny-ny.id").blob.meta"   # the blob meta cache
    local before out rc=0
    before=$(victims_sum)
    daemon_start
    mkdir -p "$W/m1" "$W/m2" "$W/m3"
    out=$(ctl mount plain "$W/m1" 2>&1) || rc=$?
    MOUNTS+=("$W/m1")
    [ "$rc" != 0 ] || fail "mount through a planted cache-file symlink succeeded"
    case "$out" in *symlink*) say "cache file symlink: $out" ;; *) fail "not refused as a symlink: $out" ;; esac
    rc=0
    out=$(ctl mount bd "$W/m2" 2>&1) || rc=$?
    MOUNTS+=("$W/m2")
    [ "$rc" != 0 ] || fail "mount through a planted directory symlink succeeded"
    case "$out" in *symlink*) say "cache directory symlink: $out" ;; *) fail "not refused as a symlink: $out" ;; esac
    fan_mount ny "$W/m3"        # writes the state file and the blob meta cache: replaced, not followed
    verify "$W/m3" t1
    [ -L "$stored" ] && fail "the daemon took a symlinked stored bootstrap for its own"
    fan_mount ib "$W/m4"
    verify "$W/m4" t1
    fan_umount "$W/m4"
    [ "$(victims_sum)" = "$before" ] || { diff <(echo "$before") <(victims_sum); fail "a file outside the cache was changed"; }
    [ -z "$(ls -A "$W/victims/dir")" ] || fail "files were created through the directory symlink: $(ls "$W/victims/dir")"
    [ -f "$W/work/fanotify-mounts" ] && [ ! -L "$W/work/fanotify-mounts" ] || fail "the state file is not a plain file"
    say "every target unchanged (sha256 of $(find "$W/victims" -type f | wc -l) files and the directory listing)"
    fan_umount "$W/m3"
    daemon_stop
}

# Item 5: a cache_dir or work_dir that other users can write (or reach through
# a directory or symlink they own) is refused at start-up, with the reason.
scen_unsafe_dirs() {
    make_tree t1 --profile small --big-mib 1 --seed 24
    img_blobdev ud t1
    daemon_start    # writes cfg.yaml
    daemon_stop
    local out rc
    refused() {     # CACHE_DIR WORK_DIR EXPECTED
        sed -e "s|^cache_dir: .*|cache_dir: $1|" -e "s|^work_dir: .*|work_dir: $2|" "$W/cfg.yaml" >"$W/unsafe.yaml"
        rc=0
        out=$(timeout 20 "$CFN_DAEMON" --config "$W/unsafe.yaml" 2>&1) || rc=$?
        [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "the daemon started (status $rc) with cache_dir $1, work_dir $2"
        case "$out" in *"$3"*) say "refused: $(echo "$out" | tail -n 1 | cut -c 26-)" ;;
            *) fail "refused without saying '$3': $out" ;; esac
    }
    mkdir -p "$W/shared" "$W/grp" "$W/open/inner" "$W/byother"
    chmod 1777 "$W/shared"
    chmod 2770 "$W/grp"
    chmod 0777 "$W/open"
    chown 65534 "$W/byother"
    ln -s "$W/cache" "$W/link-by-other" && chown -h 65534 "$W/link-by-other"
    refused "$W/shared" "$W/work" "cache_dir refused: directory $W/shared is writable by others"
    refused "$W/cache" "$W/shared" "work_dir refused: directory $W/shared is writable by others"
    refused "$W/grp" "$W/work" "writable by its group"
    refused "$W/open/inner" "$W/work" "parent directory $W/open is writable by others"
    refused "$W/byother" "$W/work" "owned by uid 65534"
    refused "$W/link-by-other" "$W/work" "symlink $W/link-by-other is owned by uid 65534"
    refused "$W/open/new-cache" "$W/work" "parent directory $W/open"
    [ -e "$W/open/new-cache" ] && fail "a cache_dir was created below a directory others can write"
    # The same directories made private are accepted.
    chmod 0700 "$W/shared"
    sed -e "s|^cache_dir: .*|cache_dir: $W/shared|" "$W/cfg.yaml" >"$W/cfg2.yaml" && mv "$W/cfg2.yaml" "$W/cfg.yaml"
    daemon_start
    daemon_stop
}

case "$SCEN" in
    plain) scen_plain ;;
    blobdev) scen_blobdev ;;
    nydus-none) scen_nydus none ;;
    nydus-lz4) scen_nydus lz4_block ;;
    nydus-zstd) scen_nydus zstd ;;
    nydus-zstd-sha256) scen_nydus zstd sha256 ;;
    corrupt) scen_corrupt ;;
    short-blob) scen_short_blob ;;
    huge-slot) scen_huge_slot ;;
    readers8) scen_readers8 ;;
    restart) scen_restart ;;
    hold) scen_hold ;;
    reuse) scen_reuse ;;
    prefetch) scen_prefetch ;;
    errors) scen_errors ;;
    frontend-choice) scen_frontend_choice ;;
    enospc) scen_enospc ;;
    shutdown-localfs) scen_shutdown localfs ;;
    shutdown-registry) scen_shutdown registry ;;
    shutdown-s3) scen_shutdown s3 ;;
    shutdown-oss) scen_shutdown oss ;;
    shutdown-http-proxy) scen_shutdown http-proxy ;;
    shutdown-hold) scen_shutdown registry hold ;;
    hold-crash-at-stop) scen_hold_crash_at_stop ;;
    shutdown-mount) scen_shutdown_mount ;;

    mount-race) scen_mount_race ;;
    umount-moved) scen_umount_moved ;;
    symlinks) scen_symlinks ;;
    unsafe-dirs) scen_unsafe_dirs ;;
    control-stall) scen_control_stall ;;
    fd-exhaustion) scen_fd_exhaustion ;;
    *) fail "unknown scenario $SCEN" ;;
esac
echo "PASS: $SCEN"
