/*
 * Helpers shared by the label-format tests: parsing a string into a fresh
 * document, finding a skip message, counting boxes, and the funnel's live
 * bytes for leak checks. Header-only: the build links one file per test.
 */
#ifndef LUPE_TEST_FORMATS_FIXTURES_H
#define LUPE_TEST_FORMATS_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/testutil.h"
#include "formats/internal.h"
#include "lupe/formats.h"

#define FX_LABELS_CSV "datasets/metal-tags/labels.csv"

typedef lupe_status (*fx_parser)(lupe_fmt_doc *doc, const char *buf, size_t len, const char *name);

static inline size_t fx_live(void)
{
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    return s.live_bytes;
}

/* Parses text into a new document and checks the status; the document is
 * returned either way (empty after an error: parsers roll back). */
static inline lupe_fmt_doc *fx_parse(fx_parser fn, const char *text, const char *name, lupe_status want)
{
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    assert_non_null(doc);
    lupe_status st = fn(doc, text, strlen(text), name);
    if (st != want) fail_msg("%s: status %d (%s), wanted %d", name, st, lupe_errmsg(), want);
    if (st) {
        assert_int_equal(doc->nitems, 0);
        assert_int_equal(doc->nclasses, 0);
        assert_int_equal(doc->nskipped, 0);
    }
    const char *bad = fmt__doc_check(doc);
    if (bad) fail_msg("%s: the document has %s", name, bad);
    return doc;
}

/* Fails unless the current error message contains needle. */
static inline void fx_err_has(const char *needle)
{
    if (!strstr(lupe_errmsg(), needle)) fail_msg("error '%s' lacks '%s'", lupe_errmsg(), needle);
}

/* Fails unless some skip message equals want exactly. */
static inline void fx_skipped(const lupe_fmt_doc *doc, const char *want)
{
    for (size_t i = 0; i < doc->nskipped; i++)
        if (strcmp(doc->skipped[i], want) == 0) return;
    for (size_t i = 0; i < doc->nskipped; i++) fprintf(stderr, "# skipped[%zu] = %s\n", i, doc->skipped[i]);
    fail_msg("no skip message '%s' among %zu", want, doc->nskipped);
}

static inline size_t fx_boxes(const lupe_fmt_doc *doc)
{
    size_t n = 0;
    for (size_t i = 0; i < doc->nitems; i++) n += doc->items[i].nboxes;
    return n;
}

static inline void fx_box_eq(const lupe_fmt_box *b, int cls, double x, double y, double w, double h)
{
    if (b->cls != cls || b->x != x || b->y != y || b->w != w || b->h != h)
        fail_msg("box %d %.17g %.17g %.17g %.17g, wanted %d %.17g %.17g %.17g %.17g", b->cls, b->x, b->y, b->w, b->h,
                 cls, x, y, w, h);
}

static inline void fx_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0) fail_msg("mkdir %s failed", path);
}

/* A whole file as a NUL-terminated funnel string. */
static inline char *fx_slurp(const char *path, size_t *len)
{
    uint8_t *b = tu_read(path, len);
    char *s = lupe_realloc(b, *len + 1);
    assert_non_null(s);
    s[*len] = 0;
    return s;
}

static inline void fx_write_str(const char *path, const char *text)
{
    tu_write(path, text, strlen(text));
}

#endif
