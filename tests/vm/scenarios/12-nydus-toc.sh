# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# As nydus, with the blob TOC appended (nydus-mkimage --toc), the layout
# nydusify produces.
. "$IMG/meta.env"
[ -z "$NYDUS_SKIP" ] || skip "$NYDUS_SKIP"
daemon_start nydus-toc
must_mount "$MNT_BASE/m" fsid=nydus-toc
verify_tree "$MNT_BASE/m" t1
say "daemon handled $(reads_count) READs"
finish
