/*
 * libFuzzer target for the YOLO readers. The input is split at its first NUL:
 * a class list (as data.yaml when it says "names:", else classes.txt), then
 * one label file. Same contract and leak checks as the other fmt targets.
 */
#include <stdlib.h>
#include <string.h>

#include "formats/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const char *nul = memchr(buf, 0, size);
    size_t clen = nul ? (size_t)(nul - buf) : size;
    const char *labels = nul ? nul + 1 : buf + size;
    size_t llen = size - (size_t)(labels - buf);

    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    if (!doc) return 0;
    bool yaml = memmem(buf, clen, "names:", 6) != NULL;
    lupe_status st = lupe_fmt_parse_yolo_classes(doc, buf, clen, yaml ? "data.yaml" : "classes.txt");
    if (st && (doc->nclasses || !lupe_errmsg()[0])) abort();
    /* Labels are read whether or not the class list was good: with no
     * classes every line must be skipped, not crash. */
    size_t nclasses = doc->nclasses;
    st = lupe_fmt_parse_yolo_labels(doc, "images/train/a.jpg", labels, llen, "labels/train/a.txt");
    if (st && (doc->nitems || doc->nskipped || doc->nclasses != nclasses)) abort();
    if (!st && (doc->nitems != 1 || !doc->items[0].normalized)) abort();
    if (fmt__doc_check(doc)) abort();
    lupe_fmt_doc_free(doc);
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    if (s.live_bytes != 0) abort(); /* a funnel leak on some path */
    return 0;
}
