#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Runs one scenario file (guest side) with lib.sh loaded. Exit 0 = pass,
# 77 = skip, anything else = fail (reason in $SCEN_DIR/reason).
set -eEuo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# An unexpected command failure ends the scenario; say where.
trap 'rc=$?; [ -s "$SCEN_DIR/reason" ] || echo "unexpected failure (status $rc) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >"$SCEN_DIR/reason"' ERR
# Whatever happens, leave no mount and no daemon behind.
trap 'umount_all; [ -n "$DAEMON_PID" ] && { kill -TERM "$DAEMON_PID" 2>/dev/null; sleep 1; kill -KILL "$DAEMON_PID" 2>/dev/null; } ; true' EXIT
. "$1"
