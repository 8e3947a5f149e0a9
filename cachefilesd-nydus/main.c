/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* cachefilesd-nydus: parse_argv() -> setup -> run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cachefiles_device.h"
#include "cfn-build-info.h"
#include "config.h"
#include "daemon.h"
#include "storage/util/log.h"

static const char *arg_config;
static const char *arg_log_file;
static const char *arg_device = "/dev/cachefiles";
static int arg_device_fd = -1;
static enum cfn_log_level arg_log_level = CFN_LOG_INFO;

static void help(void)
{
    printf("Usage: cachefilesd-nydus --config FILE [OPTIONS]\n"
           "\n"
           "Serve erofs images mounted in fscache mode (mount -t erofs none -o fsid=...)\n"
           "by answering the kernel's cachefiles on-demand requests.\n"
           "\n"
           "  -c, --config FILE      YAML configuration (cache_dir, images, tuning)\n"
           "  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
           "      --log-file FILE    append the log to FILE instead of stderr\n"
           "      --device PATH      cachefiles device (default /dev/cachefiles)\n"
           "      --device-fd N      use an already opened and bound device fd\n"
           "  -V, --version          print version and git commit\n"
           "  -h, --help             this help\n");
}

static int parse_argv(int argc, char **argv)
{
    enum { ARG_LOG_FILE = 0x100, ARG_DEVICE, ARG_DEVICE_FD };
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "log-level", required_argument, NULL, 'l' },
        { "log-file", required_argument, NULL, ARG_LOG_FILE },
        { "device", required_argument, NULL, ARG_DEVICE },
        { "device-fd", required_argument, NULL, ARG_DEVICE_FD },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        {}
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:l:Vh", options, NULL)) >= 0) {
        switch (c) {
        case 'c':
            arg_config = optarg;
            break;
        case 'l':
            if (cfn_log_level_parse(optarg, &arg_log_level) < 0) {
                fprintf(stderr, "unknown log level '%s' (error, warn, info, debug)\n", optarg);
                return -EINVAL;
            }
            break;
        case ARG_LOG_FILE:
            arg_log_file = optarg;
            break;
        case ARG_DEVICE:
            arg_device = optarg;
            break;
        case ARG_DEVICE_FD: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 65535) {
                fprintf(stderr, "--device-fd needs a file descriptor number\n");
                return -EINVAL;
            }
            arg_device_fd = (int)v;
            break;
        }
        case 'V':
            printf("cachefilesd-nydus %s\nGit Commit: %s\n", CFN_VERSION, CFN_GIT_COMMIT);
            return 0;
        case 'h':
            help();
            return 0;
        default:
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    if (!arg_config) {
        fprintf(stderr, "--config FILE is required (see --help)\n");
        return -EINVAL;
    }
    return 1;
}

static int run(void)
{
    char err[512];
    Config *cfg = NULL;
    Daemon *d = NULL;
    CachefilesDevice *dev = NULL;

    int r = config_load(&cfg, arg_config, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        return r;
    }
    /* Signals go to signalfd only: block them before any thread exists. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    r = daemon_new(&d, cfg, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        goto out;
    }
    r = cachefiles_device_open(&dev, arg_device, arg_device_fd, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        goto out;
    }
    r = daemon_start_cachefiles(d, dev);
    if (r < 0)
        goto out;
    r = daemon_run(d);
    CacheStats cs = cache_service_stats(d->cache);
    log_info("stopped: %llu opens, %llu reads (%llu failed, %llu timed out, average %.2f ms), %llu closes, "
             "%llu bad messages; %llu fetches, %llu MiB fetched, %llu MiB written",
             (unsigned long long)d->stats.opens, (unsigned long long)d->stats.reads,
             (unsigned long long)d->stats.read_failures, (unsigned long long)d->stats.read_timeouts,
             d->stats.reads ? (double)d->stats.read_latency_ns / (double)d->stats.reads / 1e6 : 0.0,
             (unsigned long long)d->stats.closes, (unsigned long long)d->stats.bad_messages,
             (unsigned long long)cs.fetches, (unsigned long long)(cs.bytes_fetched >> 20),
             (unsigned long long)(cs.bytes_written >> 20));
    log_info("note: closing /dev/cachefiles breaks erofs mounts still using it; unmount them first");
out:
    daemon_free(d);
    config_free(cfg);
    return r;
}

int main(int argc, char **argv)
{
    int r = parse_argv(argc, argv);
    if (r <= 0)
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
    cfn_log_set_level(arg_log_level);
    if (arg_log_file) {
        int fd = open(arg_log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            fprintf(stderr, "cannot open log file %s: %s\n", arg_log_file, strerror(errno));
            return EXIT_FAILURE;
        }
        cfn_log_set_fd(fd);
    }
    /* libcurl's global state must be set up once, before any thread. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    r = run();
    curl_global_cleanup();
    return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
