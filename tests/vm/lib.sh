# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Helpers for the VM scenarios (sourced in the guest), plus the two tree
# fingerprint functions that the host side (tests/vm/run, scripts/demo,
# scripts/bench-vm) sources too, so that both sides describe a tree in
# exactly the same format.

# tree_listing DIR: one line per entry (type, size, mode, owner, path, link
# target), sorted. Directory sizes are left out: they differ between erofs
# and the host file system.
tree_listing() {
    (cd "$1" && find . -mindepth 1 \
        \( -type l -printf 'l %U:%G %P -> %l\n' \) -o \
        \( -type d -printf 'd %m %U:%G %P\n' \) -o \
        \( -type f -printf 'f %s %m %U:%G %P\n' \) -o \
        -printf '? %y %P\n') | LC_ALL=C sort
}

# tree_sums DIR: sha256sum of every regular file, sorted by path. Unreadable
# files show up as errors on stderr and are missing from stdout.
tree_sums() {
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --)
}

# ---------------------------------------------------------------- guest only

: "${CFN_VM_RESULTS:=/tmp}"
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DAEMON=${CFN_DAEMON:-$REPO/build/cachefilesd-nydus/cachefilesd-nydus}
IMG=${IMG:-${CFN_VM_MNT:-/mnt}/disk1}          # images, blobs and manifests
MANI=$IMG/manifests
SCEN_DIR=${SCEN_DIR:-$CFN_VM_RESULTS}         # this scenario's log directory
MNT_BASE=${MNT_BASE:-/tmp/cfn-mnt}
DAEMON_PID=
DLOG=
MOUNTED=()
# Time limits (s); CFN_TEST_* from the host environment override them.
MOUNT_TIMEOUT=${CFN_TEST_MOUNT_TIMEOUT:-60}
VERIFY_TIMEOUT=${CFN_TEST_VERIFY_TIMEOUT:-300}
BAD_READ_TIMEOUT=${CFN_TEST_BAD_READ_TIMEOUT:-60}

# The image builder, for scenarios that make their own nydus images in the guest.
MKIMAGE=${CFN_NYDUS_MKIMAGE:-$REPO/build/storage/builder/nydus-mkimage}

SCEN_T0=$(date +%s.%N)
# say MSG: progress line, stamped with the seconds since the scenario began.
say() { echo "  [$(awk -v s="$SCEN_T0" -v e="$(date +%s.%N)" 'BEGIN { printf "%6.1f", e - s }')] $*"; }

# fail MSG: end the scenario as failed; MSG becomes the reason on the result line.
fail() {
    local msg=$*
    # A dead daemon explains most failures; say so up front.
    if [ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        msg="daemon died: $msg"
        tail -n 5 "${DLOG%.log}.stderr" 2>/dev/null | sed 's/^/    | stderr: /' || true
    fi
    echo "  FAIL: $msg"
    printf '%s\n' "$msg" >"$SCEN_DIR/reason"
    exit 1
}

skip() {
    echo "  SKIP: $*"
    printf '%s\n' "$*" >"$SCEN_DIR/reason"
    exit 77
}

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }'; }

# daemon_start NAME [YAML_LINES]: start the daemon with a fresh cache dir
# $CFN_VM_CACHE/NAME (unless YAML_LINES name another cache_dir) and every
# test image configured; wait for "ready".
daemon_start() {
    local name=$1 extra=${2:-} cfg i
    [ -x "$DAEMON" ] || fail "daemon binary $DAEMON not found or not executable"
    cfg=$SCEN_DIR/daemon-$name.yaml
    DLOG=$SCEN_DIR/daemon-$name.log
    {
        # Defaults, unless the scenario's lines set the key (a key may be given once).
        local key default
        for default in "cache_dir: $CFN_VM_CACHE/$name" "threads: 2" "request_timeout: 30s"; do
            key=${default%%:*}
            printf '%s\n' "$extra" | grep -q "^$key:" || echo "$default"
        done
        [ -n "$extra" ] && printf '%s\n' "$extra"
        sed "s|@IMG@|$IMG|g" "$IMG/images.yaml"
        # More entries of the images: list (scenarios that build their own images).
        if [ -n "${DAEMON_MORE_IMAGES:-}" ]; then printf '%s\n' "$DAEMON_MORE_IMAGES"; fi
    } >"$cfg"
    : >"$DLOG"
    # The kernel's "dir" wants an existing directory; whether the daemon
    # creates it is not what these scenarios test.
    mkdir -p "$CFN_VM_CACHE/$name"
    # shellcheck disable=SC2086 # DAEMON_EXTRA_ARGS is a word list
    "$DAEMON" --config "$cfg" --log-level "${DAEMON_LOG_LEVEL:-debug}" --log-file "$DLOG" ${DAEMON_EXTRA_ARGS:-} \
        >"$SCEN_DIR/daemon-$name.stderr" 2>&1 &
    DAEMON_PID=$!
    echo "$DAEMON_PID" >"$SCEN_DIR/daemon.pid"
    for i in $(seq 1 200); do
        grep -q 'ready' "$DLOG" "$SCEN_DIR/daemon-$name.stderr" 2>/dev/null && {
            say "daemon pid $DAEMON_PID ready after $((i / 10)).$((i % 10)) s (config $cfg)"
            return 0
        }
        kill -0 "$DAEMON_PID" 2>/dev/null || {
            wait "$DAEMON_PID" && rc=0 || rc=$?
            DAEMON_PID=
            tail -n 20 "$DLOG" "$SCEN_DIR/daemon-$name.stderr" 2>&1 | sed 's/^/    | /' || true
            fail "daemon exited (status $rc) before logging 'ready'"
        }
        sleep 0.1
    done
    fail "daemon did not log 'ready' within 20 s"
}

daemon_alive() { [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; }

# daemon_check: fail unless the daemon is still running.
daemon_check() {
    daemon_alive && return 0
    local rc=0
    [ -n "$DAEMON_PID" ] && { wait "$DAEMON_PID" || rc=$?; }
    DAEMON_PID=
    tail -n 20 "$DLOG" "${DLOG%.log}.stderr" 2>&1 | sed 's/^/    | /' || true
    fail "daemon died during the scenario (exit status $rc${1:+, after $1})"
}

# daemon_stop: SIGTERM; the daemon must exit within 15 s.
daemon_stop() {
    local i rc=0
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for i in $(seq 1 150); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=
        fail "daemon did not exit within 15 s of SIGTERM"
    fi
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    rm -f "$SCEN_DIR/daemon.pid"
    [ "$rc" = 0 ] || fail "daemon exited with status $rc on SIGTERM"
}

# reads_count: kernel READs the daemon logged so far.
reads_count() {
    sleep 0.3   # let a logging thread catch up
    grep -c 'READ object=' "$DLOG" || true
}

# do_mount MNT OPTIONS: mount -t erofs none -o OPTIONS MNT, bounded in time.
# Returns mount's status (124/137: it hung).
do_mount() {
    local mnt=$1 opts=$2 rc=0 t0
    mkdir -p "$mnt"
    t0=$(now)
    timeout -s KILL "$MOUNT_TIMEOUT" mount -t erofs none -o "$opts" "$mnt" || rc=$?
    LAST_MOUNT_SECONDS=$(elapsed "$t0")
    [ "$rc" = 0 ] && MOUNTED+=("$mnt")
    return "$rc"
}

# must_mount MNT OPTIONS: as do_mount, but fail the scenario on error.
must_mount() {
    local rc=0
    do_mount "$@" || rc=$?
    case "$rc" in
        0) say "mounted -o $2 on $1 in ${LAST_MOUNT_SECONDS} s" ;;
        124|137) fail "mount -o $2 hung (killed after ${MOUNT_TIMEOUT} s)" ;;
        *) dmesg | tail -n 5 | sed 's/^/    | /' || true
           fail "mount -o $2 failed (status $rc)" ;;
    esac
}

do_umount() {
    local mnt=$1 rc=0 m keep=()
    timeout -s KILL "$MOUNT_TIMEOUT" umount "$mnt" || rc=$?
    for m in "${MOUNTED[@]}"; do [ "$m" = "$mnt" ] || keep+=("$m"); done
    MOUNTED=("${keep[@]}")
    [ "$rc" = 0 ] || fail "umount $mnt failed or hung (status $rc)"
}

umount_all() {
    local m
    for m in "${MOUNTED[@]}"; do
        timeout -s KILL "$MOUNT_TIMEOUT" umount "$m" 2>/dev/null ||
            umount -l "$m" 2>/dev/null || true
    done
    MOUNTED=()
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

export -f tree_listing tree_sums

# verify_tree MNT TREE: compare the listing and the sha256 of every file under
# MNT with the manifests the host made from source tree TREE.
verify_tree() {
    local mnt=$1 tree=$2 out=$SCEN_DIR/verify-$2-$BASHPID t0 rc=0 nfiles nbytes bad
    t0=$(now)
    timeout -s KILL "$VERIFY_TIMEOUT" bash -c 'tree_listing "$1" >"$2.list" && tree_sums "$1" >"$2.sums" 2>"$2.err"' \
        _ "$mnt" "$out" || rc=$?
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && fail "reading $tree at $mnt hung (killed after ${VERIFY_TIMEOUT} s)"
    if ! diff -u "$MANI/$tree.list" "$out.list" >"$out.listdiff"; then
        head -n 20 "$out.listdiff" | sed 's/^/    | /' || true
        fail "$tree: directory tree at $mnt differs from the source (listing diff above)"
    fi
    if [ -s "$out.err" ] || ! cmp -s "$MANI/$tree.sha256" "$out.sums"; then
        bad=$(diff "$MANI/$tree.sha256" "$out.sums" | grep -c '^<' || true)
        head -n 10 "$out.err" | sed 's/^/    | /' || true
        diff "$MANI/$tree.sha256" "$out.sums" | head -n 10 | sed 's/^/    | /' || true
        fail "$tree: $bad file(s) unreadable or with a wrong sha256 at $mnt"
    fi
    nfiles=$(wc -l <"$out.sums")
    nbytes=$(awk '$1 == "f" { s += $2 } END { print s + 0 }' "$out.list")
    LAST_VERIFY_SECONDS=$(elapsed "$t0")
    say "verified $tree at $mnt: $nfiles files, $nbytes bytes, sha256 of every file compared with the source: all match (${LAST_VERIFY_SECONDS} s)"
    rm -f "$out".*
}

# list_files TREE: "size<TAB>path" of every regular file of the source tree.
list_files() {
    awk '$1 == "f" { p = $0; for (i = 0; i < 4; i++) sub(/^[^ ]+ /, "", p); print $2 "\t" p }' "$MANI/$1.list"
}

# expected_sum TREE PATH: the source's sha256 of one file.
expected_sum() {
    awk -v p="./$2" 'substr($0, 67) == p { print $1; exit }' "$MANI/$1.sha256"
}

# read_expect_eio FILE: reading FILE must fail (EIO) within BAD_READ_TIMEOUT
# and must not produce the wrong bytes. Prints what happened.
read_expect_eio() {
    local f=$1 t0 rc=0 err
    t0=$(now)
    err=$(timeout -s KILL "$BAD_READ_TIMEOUT" cat "$f" 2>&1 >/dev/null) || rc=$?
    case "$rc" in
        0) return 10 ;;                               # read succeeded
        124|137) return 11 ;;                         # hung
    esac
    LAST_ERR="$err"
    say "reading $f failed as expected in $(elapsed "$t0") s: $err"
    case "$err" in *"Input/output error"*) return 0 ;; *) return 12 ;; esac
}

# mount_or_eio MNT OPTIONS FILE WHY: a mount the daemon cannot serve may
# fail, or succeed (the kernel may look a blob up only when it is read);
# if it mounts, reading MNT/FILE must fail with EIO (WHY says why it must),
# then it is unmounted. A hang fails the scenario. Sets OUTCOME.
mount_or_eio() {
    local mnt=$1 opts=$2 file=$3 why=$4 rc=0
    do_mount "$mnt" "$opts" || rc=$?
    case "$rc" in
        0) must_eio "$mnt/$file" "$why"
           do_umount "$mnt"
           OUTCOME="it mounted, $file failed with EIO" ;;
        124|137) fail "mount -o $opts hung (killed after ${MOUNT_TIMEOUT} s)" ;;
        *) OUTCOME="the mount failed (status $rc)" ;;
    esac
}

# finish: the common end of every scenario: the daemon must still be
# running, then unmount everything and stop it.
finish() {
    daemon_check "the scenario's reads"
    umount_all
    daemon_check "unmounting"
    daemon_stop
}

# image_entry FSID BOOTSTRAP DIR: an images: list entry (localfs backend DIR)
# for DAEMON_MORE_IMAGES.
image_entry() {
    printf '  - fsid: %s\n    bootstrap: %s\n    backend:\n      type: localfs\n      dir: %s\n' "$1" "$2" "$3"
}

# text_tree DIR SEED NAME:SIZE...: files of pseudo-random text over a
# 17-symbol alphabet (zstd shrinks it to about half; no two 4 KiB blocks
# alike), the same for the same seed; for scenarios that build their own images.
text_tree() {
    python3 - "$@" <<'PY'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
table = bytes(b"abcdefghijklmnop "[i % 17] for i in range(256))
os.makedirs(root, exist_ok=True)
for n, spec in enumerate(sys.argv[3:]):
    name, size = spec.rsplit(":", 1)
    with open(os.path.join(root, name), "wb") as f:
        f.write(random.Random(seed * 1000 + n).randbytes(int(size)).translate(table))
PY
}

# must_eio FILE [WHY]: reading FILE must fail with EIO (read_expect_eio);
# otherwise the scenario fails. WHY says why it must not read.
must_eio() {
    local r=0
    read_expect_eio "$1" || r=$?
    case "$r" in
        0) ;;
        10) fail "$1 read 'successfully'${2:+ although $2}" ;;
        11) fail "reading $1 hung for ${BAD_READ_TIMEOUT} s" ;;
        *) fail "reading $1 failed, but not with EIO: $LAST_ERR" ;;
    esac
}
