/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* cachefilesd-nydus: parse_argv() -> setup -> run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cachefiles_device.h"
#include "cfn-build-info.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "frontend_fanotify.h"
#include "uapi/fanotify.h"
#include "storage/util/log.h"

static const char *arg_config;
static const char *arg_log_file;
static const char *arg_device = "/dev/cachefiles";
static int arg_device_fd = -1;
static enum cfn_log_level arg_log_level = CFN_LOG_INFO;
static const char *arg_frontend;
static int arg_fanotify_fd = -1;
static const char *arg_socket;
static int arg_timeout_s = 120;
static unsigned long arg_rlimit_nofile = 1000000;  /* nydusd's default; 0 leaves the limit alone */
static char **arg_command;              /* mount|umount|status|hold and their arguments */
static int arg_command_argc;
static int saved_argc;
static char **saved_argv;

static void help(void)
{
    printf("Usage: cachefilesd-nydus --config FILE [OPTIONS]\n"
           "       cachefilesd-nydus [--config FILE | --socket PATH] mount FSID MOUNTPOINT\n"
           "       cachefilesd-nydus [--config FILE | --socket PATH] umount MOUNTPOINT\n"
           "       cachefilesd-nydus [--config FILE | --socket PATH] status\n"
           "       cachefilesd-nydus --config FILE [OPTIONS] hold\n"
           "\n"
           "Serve erofs images lazily: in fscache mode (mount -t erofs none -o fsid=...)\n"
           "by answering the kernel's cachefiles on-demand requests, or as erofs\n"
           "file-backed mounts made by the daemon (the mount command) whose blobs are\n"
           "filled on fanotify pre-content events. `hold` keeps the fanotify group open\n"
           "across daemon crashes and restarts the daemon, so readers wait instead of\n"
           "reading holes.\n"
           "\n"
           "  -c, --config FILE      YAML configuration (cache_dir, images, tuning)\n"
           "      --frontend KIND    fscache, fanotify or auto (default: config, else auto)\n"
           "      --fanotify-fd N    adopt an inherited fanotify group (set by `hold`)\n"
           "      --socket PATH      control socket for mount/umount/status\n"
           "                         (default: WORK_DIR/control.sock from the config)\n"
           "      --timeout SECONDS  how long mount/umount/status wait (default 120)\n"
           "      --rlimit-nofile N  raise the open-file limit to N at start, capped by\n"
           "                         fs.file-max and fs.nr_open (default 1000000; 0: keep)\n"
           "  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
           "      --log-file FILE    append the log to FILE instead of stderr\n"
           "      --device PATH      cachefiles device (default /dev/cachefiles)\n"
           "      --device-fd N      use an already opened and bound device fd\n"
           "  -V, --version          print version and git commit\n"
           "  -h, --help             this help\n");
}

static int parse_argv(int argc, char **argv)
{
    enum { ARG_LOG_FILE = 0x100, ARG_DEVICE, ARG_DEVICE_FD, ARG_FRONTEND, ARG_FANOTIFY_FD, ARG_SOCKET, ARG_TIMEOUT,
           ARG_RLIMIT_NOFILE };
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "log-level", required_argument, NULL, 'l' },
        { "log-file", required_argument, NULL, ARG_LOG_FILE },
        { "device", required_argument, NULL, ARG_DEVICE },
        { "device-fd", required_argument, NULL, ARG_DEVICE_FD },
        { "frontend", required_argument, NULL, ARG_FRONTEND },
        { "fanotify-fd", required_argument, NULL, ARG_FANOTIFY_FD },
        { "socket", required_argument, NULL, ARG_SOCKET },
        { "timeout", required_argument, NULL, ARG_TIMEOUT },
        { "rlimit-nofile", required_argument, NULL, ARG_RLIMIT_NOFILE },
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
        case ARG_FRONTEND: {
            enum frontend_kind k;
            if (config_parse_frontend(optarg, &k) < 0) {
                fprintf(stderr, "--frontend takes fscache, fanotify or auto\n");
                return -EINVAL;
            }
            arg_frontend = optarg;
            break;
        }
        case ARG_FANOTIFY_FD:
        case ARG_TIMEOUT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 65535) {
                fprintf(stderr, "--%s needs a number\n", c == ARG_TIMEOUT ? "timeout" : "fanotify-fd");
                return -EINVAL;
            }
            if (c == ARG_TIMEOUT)
                arg_timeout_s = (int)v;
            else
                arg_fanotify_fd = (int)v;
            break;
        }
        case ARG_SOCKET:
            arg_socket = optarg;
            break;
        case ARG_RLIMIT_NOFILE: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || !*optarg || errno || optarg[0] == '-') {
                fprintf(stderr, "--rlimit-nofile needs a number\n");
                return -EINVAL;
            }
            arg_rlimit_nofile = v;
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
        static const struct { const char *name; int args; } cmds[] = {
            { "mount", 2 }, { "umount", 1 }, { "status", 0 }, { "hold", 0 },
        };
        bool known = false;
        for (size_t i = 0; i < CFN_ARRAY_SIZE(cmds); i++)
            if (strcmp(argv[optind], cmds[i].name) == 0) {
                known = true;
                if (argc - optind - 1 != cmds[i].args) {
                    fprintf(stderr, "%s takes %d argument(s) (see --help)\n", cmds[i].name, cmds[i].args);
                    return -EINVAL;
                }
            }
        if (!known) {
            fprintf(stderr, "unexpected argument '%s'\n", argv[optind]);
            return -EINVAL;
        }
        arg_command = argv + optind;
        arg_command_argc = argc - optind;
        if (strcmp(arg_command[0], "hold") != 0) {
            if (!arg_config && !arg_socket)
                arg_config = "/etc/cachefilesd-nydus.yaml";
            return 1;
        }
    }
    if (!arg_config) {
        fprintf(stderr, "--config FILE is required (see --help)\n");
        return -EINVAL;
    }
    return 1;
}

static unsigned long read_proc_ulong(const char *path)
{
    FILE *f = fopen(path, "re");
    unsigned long v = 0;
    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/*
 * Every permission event, cache file and backend connection takes a file
 * descriptor; the usual 1024 runs out under load. Raise the limit the way
 * nydusd does (--rlimit-nofile, capped by fs.file-max and fs.nr_open, the
 * hard limit too when privileged) and say what we got.
 */
static void raise_nofile_limit(unsigned long want)
{
    struct rlimit rl;
    if (want == 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    unsigned long file_max = read_proc_ulong("/proc/sys/fs/file-max");
    unsigned long nr_open = read_proc_ulong("/proc/sys/fs/nr_open");
    if (file_max && want > file_max)
        want = file_max;
    if (nr_open && want > nr_open)
        want = nr_open;
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur >= want) {
        log_info("open file limit: %llu (already at least %lu)", (unsigned long long)was, want);
        return;
    }
    struct rlimit raised = { .rlim_cur = want, .rlim_max = CFN_MAX(rl.rlim_max, (rlim_t)want) };
    if (setrlimit(RLIMIT_NOFILE, &raised) < 0) {
        /* Unprivileged: the hard limit is as far as we may go. */
        raised = (struct rlimit){ .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
        if (rl.rlim_max <= rl.rlim_cur || setrlimit(RLIMIT_NOFILE, &raised) < 0)
            raised.rlim_cur = was;
    }
    log_info("open file limit: %llu (was %llu, asked for %lu)", (unsigned long long)raised.rlim_cur,
             (unsigned long long)was, want);
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
    enum frontend_kind want = cfg->frontend, kind;
    if (arg_frontend)
        config_parse_frontend(arg_frontend, &want);
    if (arg_fanotify_fd >= 0)
        want = FRONTEND_FANOTIFY;
    if (arg_device_fd >= 0 && want == FRONTEND_AUTO)
        want = FRONTEND_FSCACHE;
    if (arg_fanotify_fd >= 0 || arg_device_fd >= 0) {
        kind = want;        /* an inherited fd is proof enough */
    } else if ((r = daemon_select_frontend(want, cfg, arg_device, &kind, err, sizeof(err))) < 0) {
        log_error("%s", err);
        goto out;
    }
    if (want == FRONTEND_AUTO)
        log_info("frontend auto: using %s", config_frontend_name(kind));
    if (kind == FRONTEND_FANOTIFY) {
        r = daemon_start_fanotify(d, arg_fanotify_fd);
    } else {
        r = cachefiles_device_open(&dev, arg_device, arg_device_fd, err, sizeof(err));
        if (r < 0) {
            log_error("%s", err);
            goto out;
        }
        r = daemon_start_cachefiles(d, dev);
    }
    if (r < 0)
        goto out;
    r = daemon_run(d);
    CacheStats cs = cache_service_stats(d->cache);
    log_info("stopped: %llu opens, %llu reads (%llu failed, %llu timed out, average %.2f ms), %llu closes, "
             "%llu bad messages, %llu read-ahead fills, %llu prefetch fills; %llu fetches, %llu MiB fetched, %llu MiB written",
             (unsigned long long)d->stats.opens, (unsigned long long)d->stats.reads,
             (unsigned long long)d->stats.read_failures, (unsigned long long)d->stats.read_timeouts,
             d->stats.reads ? (double)d->stats.read_latency_ns / (double)d->stats.reads / 1e6 : 0.0,
             (unsigned long long)d->stats.closes, (unsigned long long)d->stats.bad_messages,
             (unsigned long long)d->stats.readaheads, (unsigned long long)d->stats.prefetches,
             (unsigned long long)cs.fetches, (unsigned long long)(cs.bytes_fetched >> 20),
             (unsigned long long)(cs.bytes_written >> 20));
    if (kind == FRONTEND_FSCACHE)
        log_info("note: closing /dev/cachefiles breaks erofs mounts still using it; unmount them first");
out:
    daemon_free(d);
    config_free(cfg);
    return r;
}

/* mount/umount/status: ask the running daemon over its control socket. */
static int run_client(void)
{
    char sock[4096], text[CONTROL_MAX_MSG], err[512], mnt[4096];
    if (arg_socket) {
        snprintf(sock, sizeof(sock), "%s", arg_socket);
    } else {
        Config *cfg = NULL;
        int r = config_load(&cfg, arg_config, err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "%s\n", err);
            return r;
        }
        r = fanotify_control_path(cfg->work_dir, sock, sizeof(sock));
        config_free(cfg);
        if (r < 0) {
            fprintf(stderr, "work_dir is too long for a socket path\n");
            return r;
        }
    }
    char *argv[4];
    int argc = 0;
    for (int i = 0; i < arg_command_argc && i < 3; i++)
        argv[argc++] = arg_command[i];
    /* The daemon runs elsewhere: hand it an absolute, resolved mount point. */
    char *dir = strcmp(argv[0], "mount") == 0 ? argv[2] : strcmp(argv[0], "umount") == 0 ? argv[1] : NULL;
    if (dir) {
        if (!realpath(dir, mnt)) {
            int r = -errno;
            fprintf(stderr, "%s: %s\n", dir, strerror(-r));
            return r;
        }
        argv[argc - 1] = mnt;
    }
    int status = 0;
    int r = control_call(sock, argc, argv, arg_timeout_s * 1000, &status, text, sizeof(text));
    if (r < 0) {
        fprintf(stderr, "cannot reach the daemon at %s: %s%s\n", sock, strerror(-r),
                r == -ENOENT || r == -ECONNREFUSED ? " (is the daemon running, with this work_dir?)" : "");
        return r;
    }
    if (status < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], text);
        return status;
    }
    if (strcmp(argv[0], "status") == 0)
        fputs(text, stdout);
    return 0;
}

/*
 * hold: own the fanotify group and run the daemon as a child that inherits
 * it. When the daemon crashes, the group (and so every mark) stays: readers
 * of missing data block instead of reading holes, and the restarted daemon
 * picks up the events still queued. A daemon that exits cleanly (status 0,
 * e.g. on SIGTERM) ends the holder too, which closes the group. Once the
 * holder was told to stop (SIGTERM/SIGINT), it never restarts the daemon:
 * one that fails while stopping ends the holder too, with an error.
 */
static int run_hold(void)
{
    int g = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE, O_RDWR | O_LARGEFILE);
    if (g < 0) {
        int r = -errno;
        log_error("hold: cannot create a pre-content fanotify group: %s", strerror(-r));
        return r;
    }
    char fdarg[32];
    snprintf(fdarg, sizeof(fdarg), "--fanotify-fd=%d", g);
    char **child_argv = calloc((size_t)saved_argc + 2, sizeof(*child_argv));
    if (!child_argv)
        return -ENOMEM;
    int n = 0;
    for (int i = 0; i < saved_argc; i++)
        if (strcmp(saved_argv[i], "hold") != 0)
            child_argv[n++] = saved_argv[i];
    child_argv[n++] = fdarg;
    child_argv[n] = NULL;

    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, &old);
    unsigned quick_failures = 0;
    bool stopping = false;
    int r = 0;
    for (;;) {
        time_t started = time(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            r = -errno;
            log_error("hold: fork: %s", strerror(-r));
            break;
        }
        if (pid == 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            execv("/proc/self/exe", child_argv);
            _exit(127);
        }
        log_info("hold: daemon pid %d started with the group as fd %d", (int)pid, g);
        int status = 0;
        for (;;) {
            /* Forward SIGTERM/SIGINT; reap the child. */
            struct timespec ts = { 0, 200000000 };
            int sig = sigtimedwait(&mask, NULL, &ts);
            if (sig > 0) {
                kill(pid, sig);
                stopping = true;
            }
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                break;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            log_info("hold: daemon exited cleanly; closing the group");
            break;
        }
        if (stopping) {
            log_error("hold: daemon %s %d while stopping; not restarting it (the group closes)",
                      WIFSIGNALED(status) ? "killed by signal" : "exited with status",
                      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            r = -ECHILD;
            break;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
            log_error("hold: cannot run the daemon");
            r = -ENOEXEC;
            break;
        }
        quick_failures = time(NULL) - started < 10 ? quick_failures + 1 : 0;
        if (quick_failures >= 5) {
            log_error("hold: the daemon failed 5 times within 10 s of starting; giving up (the group closes: "
                      "reads of missing data now return zeros)");
            r = -ECHILD;
            break;
        }
        log_warn("hold: daemon %s %d; restarting it (readers of missing data wait meanwhile)",
                 WIFSIGNALED(status) ? "killed by signal" : "exited with status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        /* A pause before the restart; told to stop meanwhile, there is no daemon to stop: end here. */
        struct timespec pause = { 1, 0 };
        if (sigtimedwait(&mask, NULL, &pause) > 0) {
            log_info("hold: told to stop while the daemon was down; closing the group");
            break;
        }
    }
    free(child_argv);
    close(g);
    return r;
}

int main(int argc, char **argv)
{
    saved_argc = argc;
    saved_argv = argv;
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
    if (arg_command && strcmp(arg_command[0], "hold") == 0)
        return run_hold() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
    if (arg_command)
        return run_client() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
    raise_nofile_limit(arg_rlimit_nofile);
    /* libcurl's global state must be set up once, before any thread. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    r = run();
    curl_global_cleanup();
    return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
