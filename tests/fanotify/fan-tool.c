/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Helper for the native fanotify tests and the benchmark:
 *   fan-tool probe DIR          exit 0 when this kernel raises pre-content events for
 *                               files in DIR, 77 (meson: skip) with the reason otherwise
 *   fan-tool mount SRC DST [O]  erofs file-backed mount(2), never a loop device (util-linux
 *                               2.38 `mount` always sets one up, which bypasses the hook)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "cachefilesd-nydus/frontend_fanotify.h"

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "probe") == 0) {
        char why[512];
        if (geteuid() != 0) {
            printf("not root: fanotify pre-content marks and mount(2) need CAP_SYS_ADMIN\n");
            return 77;
        }
        int r = fanotify_probe(argv[2], why, sizeof(why));
        if (r < 0) {
            printf("this kernel cannot serve fanotify pre-content mounts: %s\n", why);
            return r == -EINVAL || r == -EOPNOTSUPP || r == -EPERM || r == -ENOSYS ? 77 : 1;
        }
        printf("fanotify pre-content events are supported for files in %s\n", argv[2]);
        return 0;
    }
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "mount") == 0) {
        if (mount(argv[2], argv[3], "erofs", MS_RDONLY | MS_NODEV | MS_NOSUID, argc == 5 ? argv[4] : NULL) < 0) {
            fprintf(stderr, "mount(%s, %s, erofs, %s): %s\n", argv[2], argv[3], argc == 5 ? argv[4] : "", strerror(errno));
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: fan-tool probe DIR | fan-tool mount SRC DST [OPTIONS]\n");
    return 2;
}
