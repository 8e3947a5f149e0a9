# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# The real nydus image in tests/fixtures (made by nydus-image 2.2) mounted
# with fsid=: lib.rs and sync_io.rs read back through the kernel, and the
# blake3 of each equals the chunk digest stored in the blob's blob.digest.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
[ -n "$FIXTURE_DIGESTS" ] || fail "tests/fixtures/nydus-v6-2.2 was not copied to the VM disk (tests/vm/run)"
command -v b3sum >/dev/null || skip "b3sum is not installed (scripts/setup installs it)"
daemon_start fixture
m=$MNT_BASE/m
must_mount "$m" fsid=rafs-v6-2.2.boot
[ "$(stat -c %s "$m/lib.rs")" = 16931 ] || fail "lib.rs is not 16931 bytes"
[ "$(stat -c %s "$m/sync_io.rs")" = 13400 ] || fail "sync_io.rs is not 13400 bytes"
lib=$(timeout -s KILL "$VERIFY_TIMEOUT" b3sum --no-names "$m/lib.rs") || fail "lib.rs unreadable"
sio=$(timeout -s KILL "$VERIFY_TIMEOUT" b3sum --no-names "$m/sync_io.rs") || fail "sync_io.rs unreadable"
[ "$lib$sio" = "$FIXTURE_DIGESTS" ] || fail "blake3 of the files ($lib $sio) differs from the blob's chunk digests ($FIXTURE_DIGESTS)"
say "lib.rs blake3 $lib and sync_io.rs blake3 $sio equal the chunk digests stored in the blob"
finish
