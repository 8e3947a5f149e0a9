#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Guest side of tests/vm/run: runs every scenario in tests/vm/scenarios/
# (or those named on the command line) one after the other in this VM and
# writes "<name> <pass|fail|skip> <seconds> <reason>" lines to
# $CFN_VM_RESULTS/scenarios.txt. Each scenario runs in its own bash with a
# hard time limit, gets its own daemon and cache dir, and is followed by the
# common checks: no daemon left behind, nothing left mounted, and no
# BUG/WARNING/Oops/hung task in dmesg.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
R=$CFN_VM_RESULTS
: "${SCENARIO_TIMEOUT:=420}"
printf 'boot %s\n' "$(cut -d' ' -f1 /proc/uptime)" >"$R/guest-info"
echo "guest: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s, $(nproc) cpus"
: >"$R/scenarios.txt"
# Report tasks stuck in D state (e.g. a reader whose READ is never answered)
# well before the scenario's own time limits kill them.
[ -w /proc/sys/kernel/hung_task_timeout_secs ] && echo 45 >/proc/sys/kernel/hung_task_timeout_secs

mapfile -t all < <(cd "$here/scenarios" && ls -- *.sh | LC_ALL=C sort)
wanted=("$@")

dmesg_lines() { dmesg | wc -l; }

for file in "${all[@]}"; do
    name=${file%.sh}
    name=${name#[0-9][0-9]-}
    if [ "${#wanted[@]}" -gt 0 ] && ! printf '%s\n' "${wanted[@]}" | grep -qx -- "$name"; then
        continue
    fi
    dir=$R/$name
    mkdir -p "$dir"
    echo "=== scenario $name"
    d0=$(dmesg_lines)
    t0=$(date +%s.%N)
    set +e
    SCEN_DIR=$dir MNT_BASE=/tmp/cfn-mnt/$name timeout -k 5 "$SCENARIO_TIMEOUT" \
        bash "$here/run-scenario.sh" "$here/scenarios/$file" 2>&1 | tee "$dir/scenario.log"
    rc=${PIPESTATUS[0]}
    set -e
    secs=$(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    reason=$(head -n 1 "$dir/reason" 2>/dev/null || true)
    case "$rc" in
        0) status=pass ;;
        77) status=skip ;;
        124|137) status=fail; reason="scenario exceeded ${SCENARIO_TIMEOUT} s and was killed${reason:+ ($reason)}" ;;
        *) status=fail; [ -n "$reason" ] || reason="scenario script error (exit $rc), see its log" ;;
    esac

    # Leftovers of a failed scenario must not spoil the next one.
    if [ -s "$dir/daemon.pid" ]; then
        pid=$(cat "$dir/daemon.pid")
        if kill -0 "$pid" 2>/dev/null; then
            grep -q " /tmp/cfn-mnt/$name/" /proc/mounts && {
                awk -v p="/tmp/cfn-mnt/$name/" 'index($2, p) == 1 { print $2 }' /proc/mounts |
                    while read -r m; do timeout -s KILL 30 umount "$m" || umount -l "$m" || true; done
            }
            kill -TERM "$pid" 2>/dev/null || true
            sleep 2
            kill -KILL "$pid" 2>/dev/null || true
            [ "$status" = fail ] || { status=fail; reason="daemon left running after the scenario"; }
        fi
    fi
    awk -v p="/tmp/cfn-mnt/$name/" 'index($2, p) == 1 { print $2 }' /proc/mounts |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done

    # The kernel must not have complained while the scenario ran.
    dmesg | tail -n +"$((d0 + 1))" >"$dir/dmesg.txt" || true
    if grep -E -q 'BUG|WARNING|Oops|hung task|blocked for more than|general protection|Call Trace' "$dir/dmesg.txt"; then
        grep -E -m 5 'BUG|WARNING|Oops|hung task|blocked for more than|general protection|Call Trace' "$dir/dmesg.txt" | sed 's/^/  dmesg| /'
        if [ "$status" != fail ]; then
            status=fail
            reason="kernel complained in dmesg: $(grep -E -m 1 'BUG|WARNING|Oops|hung task|blocked for more than|general protection|Call Trace' "$dir/dmesg.txt")"
        fi
    fi
    echo "=== $name: $status ($secs s)${reason:+: $reason}"
    printf '%s %s %s %s\n' "$name" "$status" "$secs" "$reason" >>"$R/scenarios.txt"
done
echo "guest: all scenarios done, up $(cut -d' ' -f1 /proc/uptime) s"
