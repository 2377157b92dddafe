/*
 * libFuzzer target for the checkpoint reader: any bytes must give a clean
 * error or a checkpoint, with nothing leaked. The fuzzer cannot forge the
 * SHA-256 trailer, so the input's last 32 bytes are replaced by the real
 * checksum of the rest: that lets it reach the length checks behind it.
 */
#include <stdlib.h>
#include <string.h>

#include "lupe/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < LUPE_SHA256_BYTES || size > (1u << 20)) return 0;
    uint8_t *buf = malloc(size);
    if (!buf) return 0;
    memcpy(buf, data, size);
    lupe_sha256(buf, size - LUPE_SHA256_BYTES, buf + size - LUPE_SHA256_BYTES);
    eng_ckpt *c = NULL;
    if (eng_ckpt_parse(buf, size, "fuzz", &c) == LUPE_OK) {
        for (size_t i = 0; i < c->nt; i++)
            if (!c->t[i].name || !c->t[i].data || c->t[i].n == 0) abort();
        eng_ckpt_free(c);
    }
    free(buf);
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    if (s.live_bytes) abort();
    return 0;
}
