# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Cold cache, everything at once: 8 readers of different files, 2 readers of
# one file, and 24 random-offset dd reads of big.bin (some across chunk
# edges), each compared with the same range of the source.
. "$IMG/meta.env"
daemon_start conc
must_mount "$MNT_BASE/m" fsid=boot
m=$MNT_BASE/m
out=$SCEN_DIR/conc
mkdir -p "$out"
mapfile -t files < <(list_files t1 | sort -t$'\t' -k1,1nr | awk -F'\t' 'NR <= 8 { print $2 }')
t0=$(now)
pids=()
for f in "${files[@]}"; do
    ( timeout -s KILL "$VERIFY_TIMEOUT" sha256sum "$m/$f" >"$out/${f//\//_}.sum" 2>&1 ) & pids+=($!)
done
mid=$(list_files t1 | awk -F'\t' '!found && $1 > 2000000 && $1 < 30000000 { print $2; found = 1 }')
for i in 1 2; do
    ( timeout -s KILL "$VERIFY_TIMEOUT" sha256sum "$m/$mid" >"$out/same$i.sum" 2>&1 ) & pids+=($!)
done
i=0
while read -r skip count sum; do
    i=$((i + 1))
    ( timeout -s KILL "$VERIFY_TIMEOUT" dd if="$m/$BIG" bs=4096 skip="$skip" count="$count" status=none |
        sha256sum >"$out/range$i.sum" ) & pids+=($!)
done <"$MANI/ranges.txt"
for p in "${pids[@]}"; do wait "$p" || true; done
say "${#pids[@]} concurrent readers finished in $(elapsed "$t0") s"
# Compare everything in one go (process start-up is slow under TCG):
# "label hash" lines, expected vs got.
{
    printf '%s\n' "${files[@]}" | awk 'NR == FNR { want["./" $0] = 1; next }
        (substr($0, 67) in want) { print "file:" substr($0, 69), $1 }' - "$MANI/t1.sha256"
    s=$(expected_sum t1 "$mid"); echo "same1:$mid $s"; echo "same2:$mid $s"
    awk '{ print "range:" $1 "+" $2, $3 }' "$MANI/ranges.txt"
} | LC_ALL=C sort >"$out/expected"
{
    h=
    for f in "${files[@]}"; do read -r h _ <"$out/${f//\//_}.sum" || true; echo "file:$f $h"; done
    for i in 1 2; do read -r h _ <"$out/same$i.sum" || true; echo "same$i:$mid $h"; done
    i=0
    while read -r skip count sum; do
        i=$((i + 1)); read -r h _ <"$out/range$i.sum" || true; echo "range:$skip+$count $h"
    done <"$MANI/ranges.txt"
} | LC_ALL=C sort >"$out/got"
bad=$(diff "$out/expected" "$out/got" | grep -c '^>' || true)
diff "$out/expected" "$out/got" | grep '^>' | head -n 10 | sed 's/^>/    | MISMATCH/' || true
[ "$bad" = 0 ] || fail "$bad of ${#pids[@]} concurrent reads returned wrong data or failed"
say "sha256 compared for ${#files[@]} files, 2 same-file readers and $(wc -l <"$MANI/ranges.txt") ranges of $BIG: all match; daemon handled $(reads_count) READs"
finish
