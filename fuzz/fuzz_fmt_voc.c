/*
 * libFuzzer target for the Pascal VOC reader (expat, DOCTYPEs refused, caps
 * on nesting and text). The checks are in fmt_fuzz.h.
 */
#include "fmt_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fmt_fuzz_one(lupe_fmt_parse_voc, data, size, "annotation.xml");
}
