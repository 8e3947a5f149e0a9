# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Remote backend in the VM: Debian's docker-registry runs on the guest's
# loopback with htpasswd basic auth and filesystem storage; the data blob of
# a builder image (zstd, blake3, TOC digests) is pushed with the OCI push API
# (POST .../blobs/uploads/, PUT ?digest=); the daemon fetches it with
# "type: registry" (http, 127.0.0.1:PORT, base64 auth) and every file of the
# mount has the source's sha256. A second image with a wrong password must
# fail cleanly (mount error or EIO, a 401 in the log). Neither password nor
# its base64 form may appear in the daemon's log or stderr.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
name=nm-zstd-blake3-toc
case " $NYDUS_MATRIX " in *" $name "*) ;; *) skip "the builder image $name was not built" ;; esac
for tool in docker-registry htpasswd curl base64; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/setup installs it)"
done
boot=$IMG/imgs/$name.boot
blob=$(find "$IMG/blobs-$name" -maxdepth 1 -type f -name '????????????????????????????????????????????????????????????????')
[ -n "$blob" ] && [ "$(printf '%s\n' "$blob" | wc -l)" = 1 ] || fail "expected one data blob in $IMG/blobs-$name"
id=${blob##*/}
[ "$(sha256sum "$blob" | cut -d' ' -f1)" = "$id" ] || fail "blob $id is not named by its sha256"

# The guest boots with lo down (iproute2's ip, else busybox-static's).
{ ip link set lo up || busybox ip link set lo up; } 2>/dev/null || fail "cannot bring up the loopback interface"

R=/tmp/cfn-registry
rm -rf "$R"
mkdir -p "$R/data"
port=5000
repo=cfn/nydus-vm
user=cfnuser
pass="cfn-pw-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
badpass="cfn-bad-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
htpasswd -Bbc "$R/htpasswd" "$user" "$pass" >/dev/null 2>&1 || fail "htpasswd failed"
cat >"$R/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $R/data
http:
  addr: 127.0.0.1:$port
  secret: cfn-vm-test-secret
auth:
  htpasswd:
    realm: cfn-registry
    path: $R/htpasswd
EOF
REG_LOG=$SCEN_DIR/registry.log
docker-registry serve "$R/config.yml" >"$REG_LOG" 2>&1 &
REG_PID=$!
registry_stop() {
    if [ -n "${REG_PID:-}" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=
    fi
}
# Stop it however the scenario ends (run-scenario.sh's EXIT trap cleans up the rest).
eval "$(trap -p EXIT | sed "s/^trap -- '/trap -- 'registry_stop; /")"
code=
for _ in $(seq 1 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
    [ "$code" = 401 ] && break
    kill -0 "$REG_PID" 2>/dev/null || { tail -n 5 "$REG_LOG" | sed 's/^/    | /'; fail "docker-registry exited"; }
    sleep 0.2
done
[ "$code" = 401 ] || fail "docker-registry on 127.0.0.1:$port did not answer /v2/ with 401 within 30 s (last: $code)"
say "docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}') listening on 127.0.0.1:$port (htpasswd auth)"

# Push: POST an upload session, PUT the whole blob with its digest.
loc=$(curl -s -u "$user:$pass" -X POST -D - -o /dev/null "http://127.0.0.1:$port/v2/$repo/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }') || true
[ -n "$loc" ] || fail "the registry gave no upload Location"
case "$loc" in /*) loc="http://127.0.0.1:$port$loc" ;; esac
case "$loc" in *\?*) loc="$loc&digest=sha256:$id" ;; *) loc="$loc?digest=sha256:$id" ;; esac
code=$(curl -s -o /dev/null -w '%{http_code}' -u "$user:$pass" -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$blob" "$loc") || true
[ "$code" = 201 ] || fail "blob upload: PUT answered $code, not 201"
size=$(curl -s -o /dev/null -w '%{size_download}' -u "$user:$pass" "http://127.0.0.1:$port/v2/$repo/blobs/sha256:$id") || true
[ "$size" = "$(stat -c %s "$blob")" ] || fail "the pushed blob reads back as $size bytes, not $(stat -c %s "$blob")"
say "pushed blob $id ($size bytes) to $repo"

auth=$(printf '%s' "$user:$pass" | base64 -w0)
badauth=$(printf '%s' "$user:$badpass" | base64 -w0)
reg_entry() {   # fsid auth
    printf '  - fsid: %s\n    bootstrap: %s\n    backend:\n      type: registry\n      scheme: http\n' "$1" "$boot"
    printf '      host: 127.0.0.1:%s\n      repo: %s\n      auth: %s\n      timeout: 20\n      retry_limit: 1\n' \
        "$port" "$repo" "$2"
}
DAEMON_MORE_IMAGES="$(reg_entry reg-nydus "$auth")
$(reg_entry reg-badauth "$badauth")"
daemon_start registry

m=$MNT_BASE/m
must_mount "$m" fsid=reg-nydus
verify_tree "$m" t2
gets=$(grep -c "\"GET /v2/$repo/blobs/sha256:$id HTTP/[0-9.]*\" 206 " "$REG_LOG" || true)
[ "$gets" -gt 0 ] || fail "the registry log shows no ranged GET (206) of the blob: the data did not come from the registry"
say "the registry answered $gets ranged GETs of the blob with 206"
do_umount "$m"

# A wrong password: the mount fails, or it mounts and reads fail with EIO.
mount_or_eio "$MNT_BASE/bad" fsid=reg-badauth "$(list_files t2 | awk -F'\t' '$1 > 0 { print $2; exit }')" \
    "the password is wrong"
daemon_check "the wrong password"
why=$(grep -E -m1 "volume=erofs,reg-badauth blob=$id refused: .*Permission denied" "$DLOG") ||
    fail "the daemon log does not say that the registry refused the wrong password"
grep -Eq "blobs/sha256:$id -> .*status 401" "$DLOG" || fail "the daemon's debug log does not show the registry's 401"
say "wrong password: $OUTCOME; daemon log: ...${why#*refused: }"

for secret in "$pass" "$auth" "$badpass" "$badauth"; do
    if grep -F -q -- "$secret" "$DLOG" "${DLOG%.log}.stderr"; then
        fail "a credential appears in the daemon's log: $(grep -F -m1 -- "$secret" "$DLOG" "${DLOG%.log}.stderr" | cut -c1-160)"
    fi
done
say "neither password nor its base64 appears in the daemon's log ($(wc -l <"$DLOG") lines, log level ${DAEMON_LOG_LEVEL:-debug})"
finish
registry_stop
