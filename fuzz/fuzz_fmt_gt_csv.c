/*
 * libFuzzer target for the Ground-Truth CSV reader (RFC 4180 quoting,
 * Python-literal annotations). The checks are in fmt_fuzz.h.
 */
#include "fmt_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fmt_fuzz_one(lupe_fmt_parse_gt_csv, data, size, "labels.csv");
}
