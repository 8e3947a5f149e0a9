#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Native benchmark of the fanotify front-end (no VM): read every file of a
# ~400 MiB image cold (a) through the daemon, from an empty cache, and (b)
# from a fully present local copy of the same image (erofs file-backed
# mount of the bootstrap with device= the complete uncompressed blob, no
# marks). Page cache dropped before each read. For each compressor: both
# times, the ratio, events handled and the average event latency.
#
#   bench-fanotify.sh [BUILD_DIR]    (env: BENCH_MIB=400, BENCH_RUNS=3,
#                                     BENCH_COMPRESSORS="none zstd raw",
#                                     BENCH_CONFIG="extra daemon config lines",
#                                     BENCH_WARM=1)
#
# Page cache: by default everything is dropped before each read, so both
# cases read the same bytes cold from the same disk (the local copy through
# erofs, the daemon from the source blob). BENCH_WARM=1 instead reads the
# source (the local copy, or the daemon's source blob) into the page cache
# first and drops nothing: only the fresh mount and the new cache file are
# cold, so the ratio is the daemon's whole cost over a memory-speed read.
#
# none and zstd are nydus-mkimage images (blake3 chunk digests verified);
# raw is mkfs.erofs --blobdev (bootstrap + raw blob, nothing to verify).
#
# The bound: for none and raw each run also measures the work floor
# (bench-floor: one thread reading the source blob, hashing it with blake3
# for none, and writing a fresh cache file, nothing else) under the same page
# cache conditions. The daemon must do at least that work for every byte and
# the reader its own, so on N cores the fanotify read cannot take less than
# max(local, (floor + reader CPU) / N). The bound's ratio to local is the best
# any daemon could show on this machine; "reached" is the daemon's share of it.
#
# Exit 77 (skip) with the reason when not root or the kernel has no
# pre-content events.
set -euo pipefail

build=$(cd "${1:-${MESON_BUILD_ROOT:-build}}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
daemon=$build/cachefilesd-nydus/cachefilesd-nydus
mkimage=$build/storage/builder/nydus-mkimage
fantool=$build/tests/fanotify/fan-tool
floor=$build/tests/bench/bench-floor
mib=${BENCH_MIB:-400}
runs=${BENCH_RUNS:-3}
comps=${BENCH_COMPRESSORS:-none zstd raw}

[ "$(id -u)" = 0 ] || { echo "SKIP: not root"; exit 77; }
for f in "$daemon" "$mkimage" "$fantool" "$floor"; do [ -x "$f" ] || { echo "SKIP: $f not built"; exit 77; }; done
W=$(mktemp -d "$build/bench-fanotify.XXXXXX")
MNT=$W/mnt
DPID=
cleanup() {
    mountpoint -q "$MNT" 2>/dev/null && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
    [ -n "$DPID" ] && { kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null || true; }
    rm -rf "$W"
}
trap cleanup EXIT
probe=$("$fantool" probe "$W/probe") || { echo "SKIP: $probe"; exit 77; }
mkdir -p "$MNT"

echo "== bench-fanotify: ${mib} MiB tree, $runs run(s) per case, kernel $(uname -r), $(nproc) cores =="
# Files of 4 KiB .. 16 MiB; half random, half text-like, so zstd has something to do.
python3 - "$W/tree" "$mib" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2]) << 20
rng = random.Random(42)
words = [b"erofs", b"fanotify", b"chunk", b"blob", b"nydus", b"bootstrap", b"daemon", b"\n", b"0123456789"]
i = 0
while total > 0:
    size = min(total, rng.choice([4096, 20000, 100000, 700000, 3 << 20, 16 << 20]))
    path = f"{root}/{i % 16:02d}/{i:05d}.bin"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if i % 2:
        data = rng.randbytes(size)
    else:
        out = bytearray()
        while len(out) < size:
            out += b" ".join(rng.choice(words) for _ in range(512)) + rng.randbytes(64)
        data = bytes(out[:size])
    with open(path, "wb") as f:
        f.write(data)
    total -= size
    i += 1
PY
nfiles=$(find "$W/tree" -type f | wc -l)

cache_state() {  # SOURCE_FILE: the page cache as every contender starts from
    sync
    if [ -n "${BENCH_WARM:-}" ]; then
        cat "$1" >/dev/null
    else
        echo 3 >/proc/sys/vm/drop_caches
    fi
}

read_all() {  # DIR SOURCE_FILE -> "wall_seconds reader_cpu_seconds"
    cache_state "$2"
    /usr/bin/time -f "%e %U %S" -o "$W/time.out" bash -c 'cd "$1" && find . -type f -print0 | xargs -0 -r cat >/dev/null' _ "$1"
    awk '{ printf "%.3f %.2f", $1, $2 + $3 }' "$W/time.out"
}

proc_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

best() { tr ' ' '\n' | grep -v '^$' | sort -n | head -n 1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-6s %9s %8s %10s %7s %8s %7s %10s %8s %10s %10s %10s\n' comp image_MiB local_s fanotify_s ratio events fills avg_lat_us MiB_fetch cpu_local cpu_fan cpu_daemon
for comp in $comps; do
    out=$W/img-$comp
    mkdir -p "$out"
    if [ "$comp" = raw ]; then
        # Plain mkfs.erofs bootstrap + raw blob: no compression, no digests.
        mkfs.erofs --chunksize=1048576 --blobdev="$out/raw.blob" -Eforce-chunk-indexes "$out/image.boot" "$W/tree" \
            >"$W/mkimage.log" 2>&1 || { cat "$W/mkimage.log"; exit 1; }
        echo raw.blob >"$out.id"
        ln "$out/raw.blob" "$out/local.blob"
        blobs_line="    blobs: [raw.blob]"
    else
        "$mkimage" -z "$comp" -t -o "$out" -B "$out/image.boot" --blob-data "$out/local.blob" "$W/tree" >"$out.id" \
            2>"$W/mkimage.log" || { cat "$W/mkimage.log"; exit 1; }
        blobs_line=""
    fi
    blobsz=$(stat -c %s "$out/$(cat "$out.id")")
    local_times="" fan_times="" local_cpu="" fan_cpu="" daemon_cpu="" floor_cpu="" floor_line=""
    for r in $(seq 1 "$runs"); do
        # (b) the fully present local copy, no daemon, no marks.
        "$fantool" mount "$out/image.boot" "$MNT" "device=$out/local.blob"
        set -- $(read_all "$MNT" "$out/local.blob")
        local_times+=" $1"
        local_cpu+=" $2"
        umount "$MNT"
        # (a) through the fanotify front-end from an empty cache (interleaved with (b)).
        rm -rf "$W/cache" "$W/work"
        cat >"$W/cfg.yaml" <<EOF
cache_dir: $W/cache
work_dir: $W/work
frontend: fanotify
request_timeout: 60s
${BENCH_CONFIG:-}
images:
  - fsid: bench
    bootstrap: $out/image.boot
$blobs_line
EOF
        "$daemon" --config "$W/cfg.yaml" --log-level warn --log-file "$W/daemon.log" </dev/null >"$W/daemon.err" 2>&1 &
        DPID=$!
        for _ in $(seq 1 100); do [ -S "$W/work/control.sock" ] && break; sleep 0.1; done
        "$daemon" --config "$W/cfg.yaml" mount bench "$MNT"
        c0=$(proc_cpu "$DPID")
        set -- $(read_all "$MNT" "$out/$(cat "$out.id")")
        fan_times+=" $1"
        c1=$(proc_cpu "$DPID")
        fan_cpu+=" $(awk -v r="$2" -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", r + b - a }')"
        daemon_cpu+=" $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')"
        st=$("$daemon" --config "$W/cfg.yaml" status | head -n 1)
        "$daemon" --config "$W/cfg.yaml" umount "$MNT"
        kill -TERM "$DPID"
        wait "$DPID" || { echo "daemon exited with an error:"; tail "$W/daemon.log" "$W/daemon.err"; exit 1; }
        DPID=
        val() { echo "$st" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
        [ "$(val denies)" = 0 ] || { echo "denied events during the benchmark:"; tail "$W/daemon.log"; exit 1; }
        ev=$(val events) fills=$(val fills) lat=$(val avg_latency_us) fetched=$(( $(val bytes_fetched) >> 20 ))
        # (c) the work floor of the same bytes, from the same page cache state (uncompressed images only).
        if [ "$comp" = none ] || [ "$comp" = raw ]; then
            cache_state "$out/$(cat "$out.id")"
            fl=$("$floor" "$out/$(cat "$out.id")" "$W/floor.cache" $([ "$comp" = raw ] && echo --no-digest))
            fl_cpu=$(echo "$fl" | tr ' ' '\n' | sed -n 's/^cpu_s=//p')
            floor_cpu+=" $fl_cpu"
            # Keep the step breakdown of the cheapest run.
            [ "$(echo "$floor_cpu" | best)" = "$fl_cpu" ] && floor_line=$fl
        fi
    done
    lb=$(echo "$local_times" | best)
    fb=$(echo "$fan_times" | best)
    ratio=$(awk -v a="$fb" -v b="$lb" 'BEGIN { printf "%.2f", a / b }')
    printf '%-6s %9d %8s %10s %7s %8s %7s %10s %8s %10s %10s %10s\n' "$comp" $((blobsz >> 20)) "$lb" "$fb" "${ratio}x" "$ev" "$fills" \
        "$lat" "$fetched" "$(echo "$local_cpu" | median)" "$(echo "$fan_cpu" | median)" "$(echo "$daemon_cpu" | median)"
    echo "       wall s: local [${local_times# }] fanotify [${fan_times# }]; cpu s (reader, + daemon for fanotify): local [${local_cpu# }] fanotify [${fan_cpu# }]"
    if [ -n "$floor_line" ]; then
        fc=$(echo "$floor_cpu" | best) rc=$(echo "$local_cpu" | best)
        awk -v f="$fc" -v r="$rc" -v n="$(nproc)" -v l="$lb" -v a="$fb" -v fl="$floor_line" 'BEGIN {
            split(fl, kv, " "); for (i in kv) { split(kv[i], p, "="); step[p[1]] = p[2] }
            b = (f + r) / n; if (b < l) b = l
            printf "       bound: floor %.2f CPU-s (read %.2f, blake3 %.2f, write %.2f; one thread) + reader %.2f CPU-s on %d cores -> fanotify >= %.3f s = %.2fx local; reached %.0f%% of the bound\n",
                f, step["read_s"], step["digest_s"], step["write_s"], r, n, b, b / l, 100 * b / a }'
    fi
done
echo "best of $runs interleaved runs; $nfiles files read by one reader (find | xargs cat), $([ -n "${BENCH_WARM:-}" ] &&
    echo "source warm, only the mount and the cache file cold" || echo "page cache dropped before every read");"
echo "events, fills and latency (daemon-side, read to answer) from the last fanotify run; load average $(cut -d' ' -f1-3 /proc/loadavg)"
