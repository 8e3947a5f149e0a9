# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# images[].prefetch on the real kernel: the nydus image, configured again
# with `prefetch: true`, is mounted and left alone. The daemon fills the
# whole data blob in the background; after that, reading every file must
# match the source without a single READ reaching the daemon.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
DAEMON_MORE_IMAGES="$(image_entry nydus-pf "$IMG/imgs/nydus.boot" "$IMG/blobs-nydus")
    prefetch: true"
daemon_start prefetch
must_mount "$MNT_BASE/m" fsid=nydus-pf
t0=$(now)
for _ in $(seq 1 600); do
    grep -q 'prefetch of .* done' "$DLOG" && break
    grep -q 'prefetch of .* stopped after' "$DLOG" && fail "the prefetch had failures: $(grep 'prefetch of' "$DLOG" | tail -n 1)"
    sleep 0.1
done
grep -q 'prefetch of .* done' "$DLOG" || fail "no 'prefetch ... done' line in the daemon log after 60 s"
say "$(grep -o 'prefetch of .* done.*' "$DLOG" | tail -n 1) (seen after $(elapsed "$t0") s)"
n0=$(reads_count)
verify_tree "$MNT_BASE/m" t1
n1=$(reads_count)
[ "$n1" = "$n0" ] || fail "reading after the prefetch caused $((n1 - n0)) READs; expected 0"
say "READs: $n0 before the prefetch ended (mount-time metadata), 0 while every file was read"
finish
