/*
 * libFuzzer target for the Pascal VOC reader (expat, DOCTYPEs refused, caps
 * on nesting and text): the document keeps the reader contract, stays empty
 * after an error, and leaves the funnel empty (expat included) once freed.
 */
#include <stdlib.h>

#include "formats/internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    lupe_json_use_funnel(); /* so jansson's memory is counted and leaks show */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    if (!doc) return 0;
    lupe_status st = lupe_fmt_parse_voc(doc, (const char *)data, size, "annotation.xml");
    if (st && (doc->nitems || doc->nclasses || doc->nskipped || !lupe_errmsg()[0])) abort();
    if (fmt__doc_check(doc)) abort();
    lupe_fmt_doc_free(doc);
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    if (s.live_bytes != 0) abort(); /* a funnel leak on some path */
    return 0;
}
