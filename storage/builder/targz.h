/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * targz-ref: build the MkTree from a gzip'd tar and map every regular file's
 * chunks onto the original .tar.gz (ZRAN chunks, see zran.h), so the data
 * blob is the tarball itself, unchanged.
 *
 * Tar dialects: ustar (prefix field), GNU (L/K long names, base-256
 * numbers), pax (x: path, linkpath, size, uid, gid, mtime with fraction,
 * SCHILY.xattr.*; g: ignored). Entry types: regular (0, NUL, 7), hardlink (1), symlink (2),
 * char/block devices (3, 4), directories (5), fifos (6). Missing parent
 * directories are created (0755, root-owned, mtime 0). Paths are normalised
 * ("./a//b" = "a/b"; "..", GNU sparse and multi-volume entries are
 * refused). A repeated directory entry updates its metadata; any other
 * repeated path is refused (it would orphan chunks). Pax xattrs
 * (SCHILY.xattr.*, GNU tar --xattrs) become inline erofs xattrs; other pax
 * keys (atime, ctime, uname, LIBARCHIVE.*) are ignored. OCI whiteouts
 * (.wh.*) are kept as the plain files they are in the tar.
 */
#pragma once

#include "blob_writer.h"
#include "tree.h"

/*
 * Read `path` (.tar.gz), fill `blob` (which must be in targz_ref mode) and
 * return the tree. The blob then knows the tarball's id, size and contexts.
 */
int mk_targz_build(const char *path, MkBlob *blob, uint32_t chunk_size, enum blob_digester digester,
                   MkTree **ret);
