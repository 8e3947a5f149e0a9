/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The YAML config loader, from memory (config_parse; config_load reads the
 * file, calls it and looks for secrets in each backend section, as done
 * here too). Input: a config file. An accepted config must hold what the
 * validation promises; a refused one must say why.
 */
#include <string.h>

#include "cachefilesd-nydus/backend_factory.h"
#include "cachefilesd-nydus/config.h"
#include "fuzz.h"

static void check_config(const Config *cfg)
{
    FUZZ_ASSERT(cfg->cache_dir && cfg->cache_dir[0]);
    FUZZ_ASSERT(cfg->work_dir && cfg->work_dir[0]);
    FUZZ_ASSERT(cfg->threads > 0);
    FUZZ_ASSERT(cfg->read_window % 4096 == 0 && cfg->merge_limit >= 4096);
    for (size_t i = 0; i < cfg->n_images; i++) {
        const ImageConfig *im = &cfg->images[i];
        FUZZ_ASSERT(config_name_is_valid(im->fsid));
        FUZZ_ASSERT(!im->domain_id || config_name_is_valid(im->domain_id));
        FUZZ_ASSERT(im->bootstrap || im->bootstrap_blob);
        for (size_t j = 0; j < im->n_blobs; j++)
            FUZZ_ASSERT(config_name_is_valid(im->blobs[j]));
        if (im->backend.type != BACKEND_TYPE_LOCALFS)
            FUZZ_ASSERT(im->backend.fields.kind == CONFIG_NODE_MAP);
        /* What config_load asks of each backend section (the file-mode warning). */
        char key[64];
        const char *secret = backend_config_secret_key(&im->backend, key, sizeof(key));
        FUZZ_ASSERT(!secret || strnlen(secret, sizeof(key)) < sizeof(key));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Config *cfg = NULL;
    char err[512];

    err[0] = '\0';
    int r = config_parse(&cfg, "fuzz.yaml", (const char *)data, size, err, sizeof(err));
    if (r < 0) {
        FUZZ_ASSERT(cfg == NULL);
        FUZZ_ASSERT(err[0] != '\0' && strnlen(err, sizeof(err)) < sizeof(err));
        fuzz_note("config rejected", err);
        return 0;
    }
    FUZZ_ASSERT(cfg != NULL);
    check_config(cfg);
    config_free(cfg);
    return 0;
}
