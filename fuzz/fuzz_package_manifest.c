/*
 * libFuzzer target for the model package manifest reader: any bytes must
 * give a clean error or a manifest whose file names are plain and whose
 * fields are in range, with nothing leaked. The reader runs only after the
 * signature verified, but a signing key can leak, so it is fuzzed anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "lupe/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) init = lupe_base_init() == LUPE_OK;
    if (size > (1u << 20)) return 0;
    reg_manifest *m = malloc(sizeof *m);
    if (!m) return 0;
    if (reg_manifest_parse((const char *)data, size, m) == LUPE_OK) {
        if (m->nfiles < 1 || m->nfiles > REG_PACKAGE_MAX_FILES || m->format_version != REG_PACKAGE_VERSION) abort();
        for (int i = 0; i < m->nfiles; i++)
            if (!m->files[i].name[0] || strchr(m->files[i].name, '/') || m->files[i].name[0] == '.' ||
                m->files[i].size < 0 || strlen(m->files[i].sha256) != 64)
                abort();
    }
    free(m);
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    if (s.live_bytes) abort();
    return 0;
}
