/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* nydus-mkimage: a directory -> a RAFS v6 bootstrap plus one data blob. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "blob_writer.h"
#include "cfn-build-info.h"
#include "erofs_writer.h"
#include "targz.h"
#include "tree.h"
#include "uapi/rafs.h"

typedef struct Args {
    const char *source, *out_dir, *bootstrap, *blob_data;
    MkBlobOptions blob;
    bool ci_version_set, compressor_set;
} Args;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: nydus-mkimage [OPTIONS] -o OUTDIR SOURCE_DIR\n"
        "       nydus-mkimage [OPTIONS] -o OUTDIR --targz-ref FILE.tar.gz\n"
        "\n"
        "Build a Nydus RAFS v6 image from SOURCE_DIR: an erofs bootstrap (for\n"
        "`mount -t erofs none -o fsid=<bootstrap>,device=<blob id>`) and one data\n"
        "blob named by its blob id (sha256 of the blob, 64 hex) in OUTDIR. The\n"
        "blob id is printed on stdout. The same tree always gives the same bytes.\n"
        "\n"
        "  -o, --output-dir DIR       output directory (created if missing)\n"
        "  -B, --bootstrap PATH       bootstrap file (default OUTDIR/image.boot)\n"
        "  -c, --chunk-size SIZE      power of two, 4K..16M (suffix K/M or 0x hex;\n"
        "                             default 1M)\n"
        "  -z, --compressor ALG       chunk compressor: none | lz4_block | zstd\n"
        "                             (default zstd)\n"
        "  -l, --level N              chunk compression level: zstd -100..22, lz4_block\n"
        "                             1..12 (LZ4 HC); default: the library default\n"
        "  -d, --digester ALG         chunk digest: blake3 | sha256 (default blake3)\n"
        "  -C, --chunk-info V         ci table format: v1 | v2 (default v1)\n"
        "      --ci-compressor ALG    ci table compressor: none | lz4_block | zstd\n"
        "                             (default zstd; kept raw if it does not shrink)\n"
        "      --crc32                store crc32c per chunk (v2 only; needs nydusd\n"
        "                             >= 2.3.2)\n"
        "  -t, --toc                  append the chunk digest array (blob.digest) and\n"
        "                             the blob TOC, with reverse tar headers\n"
        "  -i, --inline-bootstrap     also store the bootstrap in the blob as\n"
        "                             image.boot (nydusify default; implies --toc)\n"
        "      --legacy-inline-bootstrap  the same, laid out as nydus-image before 2.2\n"
        "                             did: the blob features lack INLINED_FS_META and\n"
        "                             CAP_TAR_TOC, and the inner bootstrap names the\n"
        "                             blob by the sha256 of its bytes before image.boot\n"
        "      --no-dedup             store identical chunks once per occurrence\n"
        "      --batch-size SIZE      pack chunks smaller than SIZE (power of two,\n"
        "                             4K..chunk size) into batches compressed as one\n"
        "                             piece\n"
        "                             (BATCH blob feature; implies -C v2; nydusd >= 2.3)\n"
        "      --targz-ref            SOURCE is a gzip'd tar: the data blob is that\n"
        "                             file unchanged (blob id = its sha256, written as\n"
        "                             OUTDIR/<blob id>); chunks are ZRAN slices of it\n"
        "                             and the ci table, zran contexts and dictionaries\n"
        "                             go to a separate meta blob OUTDIR/<its sha256>\n"
        "                             (implies -C v2; no -z/--toc/--crc32/--batch-size)\n"
        "      --zran-holes           with --targz-ref: leave a 4 KiB hole in the\n"
        "                             uncompressed address space before every chunk\n"
        "                             but the first (ZRan tables with gaps, as\n"
        "                             nydus-image may write them)\n"
        "      --blob-data PATH       also write the expected cache file (the blob's\n"
        "                             uncompressed address space), a test oracle\n"
        "  -h, --help                 show this help\n"
        "  -V, --version              show the version\n");
}

static int parse_size(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -EINVAL;
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    if (*end || v < MK_CHUNK_SIZE_MIN || v > MK_CHUNK_SIZE_MAX || (v & (v - 1)))
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_compressor(const char *s, enum blob_compressor *out)
{
    if (!strcmp(s, "none"))
        *out = BLOB_COMP_NONE;
    else if (!strcmp(s, "lz4_block") || !strcmp(s, "lz4"))
        *out = BLOB_COMP_LZ4_BLOCK;
    else if (!strcmp(s, "zstd"))
        *out = BLOB_COMP_ZSTD;
    else
        return -EINVAL;
    return 0;
}

enum { OPT_CI_COMPRESSOR = 0x100, OPT_CRC32, OPT_NO_DEDUP, OPT_BLOB_DATA, OPT_BATCH_SIZE, OPT_TARGZ_REF,
       OPT_LEGACY_INLINE, OPT_ZRAN_HOLES };

/* 0 to run, 1 to exit successfully (help/version), -EINVAL on bad usage. */
static int parse_argv(int argc, char **argv, Args *a)
{
    static const struct option opts[] = {
        { "output-dir", required_argument, NULL, 'o' },
        { "bootstrap", required_argument, NULL, 'B' },
        { "chunk-size", required_argument, NULL, 'c' },
        { "compressor", required_argument, NULL, 'z' },
        { "level", required_argument, NULL, 'l' },
        { "digester", required_argument, NULL, 'd' },
        { "chunk-info", required_argument, NULL, 'C' },
        { "ci-compressor", required_argument, NULL, OPT_CI_COMPRESSOR },
        { "crc32", no_argument, NULL, OPT_CRC32 },
        { "toc", no_argument, NULL, 't' },
        { "inline-bootstrap", no_argument, NULL, 'i' },
        { "no-dedup", no_argument, NULL, OPT_NO_DEDUP },
        { "blob-data", required_argument, NULL, OPT_BLOB_DATA },
        { "batch-size", required_argument, NULL, OPT_BATCH_SIZE },
        { "targz-ref", no_argument, NULL, OPT_TARGZ_REF },
        { "legacy-inline-bootstrap", no_argument, NULL, OPT_LEGACY_INLINE },
        { "zran-holes", no_argument, NULL, OPT_ZRAN_HOLES },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        {},
    };
    *a = (Args){ .blob = { .chunk_size = 1u << 20, .compressor = BLOB_COMP_ZSTD,
                           .digester = BLOB_DIGEST_BLAKE3, .ci_version = 1,
                           .ci_compressor = BLOB_COMP_ZSTD, .dedup = true } };
    int c;
    while ((c = getopt_long(argc, argv, "o:B:c:z:l:d:C:tihV", opts, NULL)) >= 0) {
        switch (c) {
        case 'o': a->out_dir = optarg; break;
        case 'B': a->bootstrap = optarg; break;
        case 'c':
            if (parse_size(optarg, &a->blob.chunk_size) < 0) {
                mk_err("--chunk-size %s: need a power of two from 4K to 16M", optarg);
                return -EINVAL;
            }
            break;
        case 'z':
            if (parse_compressor(optarg, &a->blob.compressor) < 0) {
                mk_err("--compressor %s: need none, lz4_block or zstd", optarg);
                return -EINVAL;
            }
            a->compressor_set = true;
            break;
        case 'l': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < -100 || v > 22) {
                mk_err("--level %s: need an integer (zstd: up to 22)", optarg);
                return -EINVAL;
            }
            a->blob.level = (int)v;
            break;
        }
        case 'd':
            if (!strcmp(optarg, "blake3"))
                a->blob.digester = BLOB_DIGEST_BLAKE3;
            else if (!strcmp(optarg, "sha256"))
                a->blob.digester = BLOB_DIGEST_SHA256;
            else {
                mk_err("--digester %s: need blake3 or sha256", optarg);
                return -EINVAL;
            }
            break;
        case 'C':
            if (!strcmp(optarg, "v1") || !strcmp(optarg, "1"))
                a->blob.ci_version = 1;
            else if (!strcmp(optarg, "v2") || !strcmp(optarg, "2"))
                a->blob.ci_version = 2;
            else {
                mk_err("--chunk-info %s: need v1 or v2", optarg);
                return -EINVAL;
            }
            a->ci_version_set = true;
            break;
        case OPT_CI_COMPRESSOR:
            if (parse_compressor(optarg, &a->blob.ci_compressor) < 0) {
                mk_err("--ci-compressor %s: need none, lz4_block or zstd", optarg);
                return -EINVAL;
            }
            break;
        case OPT_CRC32: a->blob.crc32 = true; break;
        case 't': a->blob.toc = true; break;
        case 'i': a->blob.inline_bootstrap = a->blob.toc = true; break;
        case OPT_NO_DEDUP: a->blob.dedup = false; break;
        case OPT_BLOB_DATA: a->blob_data = optarg; break;
        case OPT_BATCH_SIZE:
            if (parse_size(optarg, &a->blob.batch_size) < 0) {
                mk_err("--batch-size %s: need a power of two from 4K to 16M", optarg);
                return -EINVAL;
            }
            break;
        case OPT_TARGZ_REF: a->blob.targz_ref = true; break;
        case OPT_ZRAN_HOLES: a->blob.zran_holes = true; break;
        case OPT_LEGACY_INLINE: a->blob.legacy_inline = a->blob.inline_bootstrap = a->blob.toc = true; break;
        case 'h': usage(stdout); return 1;
        case 'V': printf("nydus-mkimage %s (git %s)\n", CFN_VERSION, CFN_GIT_COMMIT); return 1;
        default: usage(stderr); return -EINVAL;
        }
    }
    if (optind + 1 != argc || !a->out_dir) {
        mk_err("need -o OUTDIR and exactly one SOURCE_DIR (see --help)");
        return -EINVAL;
    }
    /* Batch and ZRAN chunks need V2 entries: the data word holds the context. */
    if ((a->blob.batch_size || a->blob.targz_ref) && a->ci_version_set && a->blob.ci_version != 2) {
        mk_err("--batch-size and --targz-ref need --chunk-info v2");
        return -EINVAL;
    }
    if (a->blob.batch_size || a->blob.targz_ref)
        a->blob.ci_version = 2;
    /* Like nydus-image: a batch never needs to hold more than one chunk's worth. */
    if (a->blob.batch_size > a->blob.chunk_size) {
        mk_err("--batch-size %u is bigger than the chunk size %u", a->blob.batch_size, a->blob.chunk_size);
        return -EINVAL;
    }
    if (a->blob.targz_ref) {
        if (a->compressor_set || a->blob.level || a->blob.toc || a->blob.crc32 || a->blob.batch_size) {
            mk_err("--targz-ref keeps the tarball's gzip data: -z, -l, --toc, --inline-bootstrap, "
                   "--crc32 and --batch-size do not apply");
            return -EINVAL;
        }
        a->blob.compressor = BLOB_COMP_GZIP;
    } else if (a->blob.zran_holes) {
        mk_err("--zran-holes needs --targz-ref");
        return -EINVAL;
    }
    if (a->blob.crc32 && a->blob.ci_version != 2) {
        mk_err("--crc32 needs --chunk-info v2 (v1 entries have no crc field)");
        return -EINVAL;
    }
    if (a->blob.level && (a->blob.compressor == BLOB_COMP_NONE ||
                          (a->blob.compressor == BLOB_COMP_LZ4_BLOCK && (a->blob.level < 0 || a->blob.level > 12)))) {
        mk_err("--level %d: lz4_block takes 1..12 (LZ4 HC), zstd up to 22, none takes no level",
               a->blob.level);
        return -EINVAL;
    }
    a->source = argv[optind];
    return 0;
}

static int on_file(void *opaque, MkNode *node, int fd)
{
    return mk_blob_add_file(opaque, node, fd);
}

/* Write `len` bytes to `path` atomically (temporary file + rename). */
static int write_file(const char *path, const uint8_t *buf, size_t len)
{
    _cleanup_free_ char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
        return -ENOMEM;
    _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        mk_err("%s: %s", path, strerror(-r));
        return r;
    }
    int r = fchmod(fd, 0644) < 0 ? -errno : 0;
    for (size_t done = 0; r == 0 && done < len;) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno != EINTR)
            r = -errno;
        else if (n > 0)
            done += (size_t)n;
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        mk_err("%s: %s", path, strerror(-r));
        unlink(tmp);
    }
    return r;
}

static int run(const Args *a)
{
    if (mkdir(a->out_dir, 0755) < 0 && errno != EEXIST) {
        int r = -errno;
        mk_err("%s: %s", a->out_dir, strerror(-r));
        return r;
    }
    _cleanup_(mk_blob_freep) MkBlob *blob = NULL;
    int r = mk_blob_new(&blob, &a->blob, a->out_dir, a->blob_data);
    if (r < 0)
        return r;
    _cleanup_(mk_tree_freep) MkTree *tree = NULL;
    if (a->blob.targz_ref)
        r = mk_targz_build(a->source, blob, a->blob.chunk_size, a->blob.digester, &tree);
    else
        r = mk_tree_walk(a->source, on_file, blob, &tree);
    if (r < 0)
        return r;
    if ((r = mk_blob_finish_meta(blob)) < 0)
        return r;

    MkLayout lay;
    if ((r = mk_erofs_layout(tree, mk_blob_chunk_count(blob), &lay)) < 0)
        return r;
    MkBlobDesc desc;
    if (a->blob.inline_bootstrap) {
        /* The inlined copy names the blob "xxx…" (its id is not known yet), like nydus;
         * before nydus 2.2, by the digest of the blob without its bootstrap. */
        _cleanup_free_ uint8_t *inl = NULL;
        mk_blob_describe(blob, &desc);
        if (a->blob.legacy_inline && (r = mk_blob_partial_id(blob, desc.id)) < 0)
            return r;
        r = mk_bootstrap_build(tree, &lay, &desc, &inl);
        if (r >= 0)
            r = mk_blob_append_bootstrap(blob, inl, lay.size);
    }
    if (r >= 0)
        r = mk_blob_finish(blob);
    _cleanup_free_ uint8_t *boot = NULL;
    if (r >= 0) {
        /* The external bootstrap is a merged one: real id, no INLINED_FS_META. */
        mk_blob_describe(blob, &desc);
        desc.features &= ~RAFS_BLOB_INLINED_FS_META;
        r = mk_bootstrap_build(tree, &lay, &desc, &boot);
    }
    /* The blob first, so that a bootstrap never names a blob that is not there. */
    if (r >= 0)
        r = mk_blob_commit(blob);
    _cleanup_free_ char *boot_path = NULL;
    if (r >= 0) {
        if (a->bootstrap)
            boot_path = strdup(a->bootstrap);
        else if (asprintf(&boot_path, "%s/image.boot", a->out_dir) < 0)
            boot_path = NULL;
        r = boot_path ? write_file(boot_path, boot, lay.size) : -ENOMEM;
    }
    if (r >= 0)
        printf("%s\n", desc.id);
    mk_erofs_layout_clear(&lay);
    return r;
}

int main(int argc, char **argv)
{
    Args a;
    int r = parse_argv(argc, argv, &a);
    if (r)
        return r > 0 ? EXIT_SUCCESS : EXIT_FAILURE;

    /* Deep trees hold one fd per level: allow as many as the hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    r = run(&a);
    if (r < 0) {
        mk_err("failed: %s", strerror(-r));
        return EXIT_FAILURE;
    }
    return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
