/*
 * libFuzzer target for the Ground Truth augmented-manifest reader (JSON
 * lines). The checks are in fmt_fuzz.h.
 */
#include "fmt_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fmt_fuzz_one(lupe_fmt_parse_gt_manifest, data, size, "output.manifest");
}
