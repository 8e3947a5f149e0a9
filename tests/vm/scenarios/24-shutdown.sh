# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# SIGTERM under load on the real kernel: a nydus image (prefetch on) served
# from a registry path of tests/backend/servers/fault.py on the guest's
# loopback, whose data ranges stall while the chunk table at the blob's tail
# still answers. Readers of the four largest files wait for their READs;
# prefetch and read-ahead are in flight too. On SIGTERM the daemon must exit
# 0 within 5 s (it cancels the transfers instead of waiting for the server),
# every reader must end with EIO or the right sha256 (never wrong bytes,
# never a hang), and the mount must unmount.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
name=nm-zstd-blake3-toc
case " $NYDUS_MATRIX " in *" $name "*) ;; *) skip "the builder image $name was not built" ;; esac
command -v python3 >/dev/null || skip "python3 is not installed"
servers=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../backend/servers" && pwd)
boot=$IMG/imgs/$name.boot
blob=$(find "$IMG/blobs-$name" -maxdepth 1 -type f -name '????????????????????????????????????????????????????????????????')
[ -n "$blob" ] && [ "$(printf '%s\n' "$blob" | wc -l)" = 1 ] || fail "expected one data blob in $IMG/blobs-$name"
id=${blob##*/}

{ ip link set lo up || busybox ip link set lo up; } 2>/dev/null || fail "cannot bring up the loopback interface"
S=$SCEN_DIR/fault-state
mkdir -p "$S"
python3 "$servers/fault.py" --listen 127.0.0.1:0 --state "$S" --name fault --blobs "$IMG/blobs-$name" \
    --ready "$S/fault.ready" >"$SCEN_DIR/fault.log" 2>&1 &
FAULT_PID=$!
fault_stop() {
    if [ -n "${FAULT_PID:-}" ]; then
        kill "$FAULT_PID" 2>/dev/null || true
        wait "$FAULT_PID" 2>/dev/null || true
        FAULT_PID=
    fi
}
eval "$(trap -p EXIT | sed "s/^trap -- '/trap -- 'fault_stop; /")"
for _ in $(seq 1 150); do [ -s "$S/fault.ready" ] && break; sleep 0.2; done
[ -s "$S/fault.ready" ] || fail "fault.py did not start"
addr=$(cat "$S/fault.ready")
# Ranges below 3/4 of the blob (its data) stall; its chunk table at the tail answers.
echo $(( $(stat -c %s "$blob") * 3 / 4 )) >"$S/stall-$id"
stalled() { sed -n 's/^stalled //p' "$S/fault.stats" 2>/dev/null || echo 0; }

DAEMON_MORE_IMAGES=$(printf '  - fsid: sd-nydus\n    bootstrap: %s\n    prefetch: true\n    backend:\n      type: registry\n      scheme: http\n      host: %s\n      repo: cfn/shutdown\n      timeout: 60\n' "$boot" "$addr")
daemon_start shutdown
m=$MNT_BASE/m
must_mount "$m" fsid=sd-nydus

mapfile -t files < <(list_files t2 | sort -k1,1nr | head -n 4 | cut -f2)
for i in "${!files[@]}"; do
    ( rc=0; timeout -s KILL 60 cat "$m/${files[$i]}" >"$SCEN_DIR/rd$i" 2>"$SCEN_DIR/rd$i.err" || rc=$?
      echo "$rc" >"$SCEN_DIR/rd$i.rc" ) &
done
for _ in $(seq 1 150); do [ "$(stalled)" -ge 2 ] && break; sleep 0.2; done
[ "$(stalled)" -ge 2 ] || fail "the transfers did not stall (stalled: $(stalled))"
sleep 1     # every reader is waiting for its READ
say "$(stalled) transfers stalled, $(grep -c 'READ object=' "$DLOG") READs received; SIGTERM"

t0=$(now)
kill -TERM "$DAEMON_PID"
for _ in $(seq 1 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$DAEMON_PID" 2>/dev/null; then
    tail -n 5 "$DLOG" | sed 's/^/    | /'
    fail "the daemon is still running 5 s after SIGTERM"
fi
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
rm -f "$SCEN_DIR/daemon.pid"
[ "$rc" = 0 ] || fail "the daemon exited with status $rc on SIGTERM"
say "the daemon exited 0 in $(elapsed "$t0") s with transfers stalled"

n_eio=0
for i in "${!files[@]}"; do
    for _ in $(seq 1 100); do [ -s "$SCEN_DIR/rd$i.rc" ] && break; sleep 0.1; done
    rc=$(cat "$SCEN_DIR/rd$i.rc" 2>/dev/null || echo hung)
    case "$rc" in
        0) [ "$(sha256sum <"$SCEN_DIR/rd$i" | cut -d' ' -f1)" = "$(expected_sum t2 "${files[$i]}")" ] ||
               fail "${files[$i]} read 'successfully' with WRONG bytes" ;;
        hung|124|137) fail "the reader of ${files[$i]} hung" ;;
        *) grep -q "Input/output error" "$SCEN_DIR/rd$i.err" ||
               fail "the reader of ${files[$i]} failed, but not with EIO: $(cat "$SCEN_DIR/rd$i.err")"
           n_eio=$((n_eio + 1)) ;;
    esac
done
[ "$n_eio" -gt 0 ] || fail "no reader of a stalled range got EIO"
say "readers: $n_eio of ${#files[@]} got EIO, the others the right sha256"
grep -q "still busy\|still outstanding" "$DLOG" && fail "shutdown waited for requests: $(grep -m1 'still' "$DLOG")"
umount_all
fault_stop
