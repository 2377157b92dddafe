/*
 * What the label-format fuzz targets share: jansson counted by the funnel,
 * and the checks after each input (an error leaves the document empty and
 * names a reason; a success keeps the reader's contract; nothing leaks).
 */
#ifndef LUPE_FMT_FUZZ_H
#define LUPE_FMT_FUZZ_H

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

typedef lupe_status (*fmt_parser)(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name);

/* Parses one input with a whole-document reader and checks the result. */
static inline int fmt_fuzz_one(fmt_parser parse, const uint8_t *data, size_t size, const char *name)
{
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    if (!doc) return 0;
    lupe_status st = parse(doc, (const char *)data, size, name);
    if (st && (doc->nitems || doc->nclasses || doc->nskipped || !lupe_errmsg()[0])) abort();
    if (fmt__doc_check(doc)) abort();
    lupe_fmt_doc_free(doc);
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    if (s.live_bytes != 0) abort(); /* a funnel leak on some path */
    return 0;
}

#endif
