/*
 * libFuzzer target for the COCO reader (sparse category ids, image ids,
 * annotations). The checks are in fmt_fuzz.h.
 */
#include "fmt_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fmt_fuzz_one(lupe_fmt_parse_coco, data, size, "instances_train.json");
}
