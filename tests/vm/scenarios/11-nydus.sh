# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# A Nydus RAFS v6 image made by the project's builder (nydus-mkimage) with
# its default options: bootstrap + one compressed data blob named by its id.
# The daemon decompresses chunks into the cache file; every file must match.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
daemon_start nydus
must_mount "$MNT_BASE/m" fsid=nydus
verify_tree "$MNT_BASE/m" t1
say "daemon handled $(reads_count) READs"
finish
