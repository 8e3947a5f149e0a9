/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * inline-retag BOOTSTRAP BLOB_ID: run inline_bootstrap_retag() on a
 * bootstrap file, as the daemon does on the image.boot it takes out of blob
 * BLOB_ID. Prints "retagged" or the reason it refuses (exit 1). For
 * test-inline-bootstrap.sh, to reach the refusals through tables the builder
 * makes (an image.boot inside a blob is compressed and digested).
 */
#include <stdio.h>
#include <stdlib.h>

#include "cachefilesd-nydus/inline_bootstrap.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: inline-retag BOOTSTRAP BLOB_ID\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    static uint8_t boot[64u << 20];
    size_t len = fread(boot, 1, sizeof(boot), f);
    fclose(f);
    char why[512];
    if (inline_bootstrap_retag(boot, len, argv[2], why, sizeof(why)) < 0) {
        printf("%s\n", why);
        return 1;
    }
    printf("retagged\n");
    return 0;
}
