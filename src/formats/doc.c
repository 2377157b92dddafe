/*
 * The label document: classes, items with boxes, and the list of what a
 * reader skipped. Holds the format table (names, readers, writers), the caps
 * on growth, and the mark/rollback pair that keeps a failed parse from
 * leaving half an input in the caller's document.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "formats/internal.h"

/* The public struct is the first member, so a lupe_fmt_doc pointer from
 * lupe_fmt_doc_new() can be widened back. The rest is bookkeeping callers
 * need not see: the count of messages past the cap and a name index. */
typedef struct docx {
    lupe_fmt_doc pub;
    size_t skipped_more;
    fmt__map classmap;
    size_t mapped; /* classes[0..mapped) are in classmap */
} docx;

static const fmt__format formats[LUPE_FMT_COUNT] = {
    [LUPE_FMT_GT_CSV] = {"gt-csv", fmt__gt_csv_read, fmt__gt_csv_write, false, false, NULL,
                         "Ground Truth style CSV with a Python-literal annotations column"},
    [LUPE_FMT_GT_MANIFEST] = {"gt-manifest", fmt__gt_manifest_read, fmt__gt_manifest_write, false, false, NULL,
                              "SageMaker Ground Truth augmented manifest (JSON lines)"},
    [LUPE_FMT_YOLO] = {"yolo", fmt__yolo_read, fmt__yolo_write, true, true, fmt__yolo_image_exts,
                       "images/ and labels/ folders, one txt per image, classes file"},
    [LUPE_FMT_COCO] = {"coco", fmt__coco_read, fmt__coco_write, false, false, NULL, "COCO instances JSON"},
    [LUPE_FMT_VOC] = {"voc", fmt__voc_read, fmt__voc_write, false, true, NULL, "Pascal VOC XML per image"},
};

const fmt__format *fmt__format_get(lupe_fmt_kind k)
{
    if ((int)k < 0 || k >= LUPE_FMT_COUNT) return NULL;
    return &formats[k];
}

int lupe_fmt_from_name(const char *name)
{
    if (!name) return -1;
    for (int k = 0; k < LUPE_FMT_COUNT; k++)
        if (strcmp(formats[k].name, name) == 0) return k;
    return -1;
}

const char *lupe_fmt_name(lupe_fmt_kind k)
{
    const fmt__format *f = fmt__format_get(k);
    return f ? f->name : "unknown";
}

const char *fmt__basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

lupe_fmt_doc *lupe_fmt_doc_new(void)
{
    docx *d = lupe_calloc(1, sizeof *d);
    return d ? &d->pub : NULL;
}

static void item_cleanup(lupe_fmt_item *it)
{
    lupe_free(it->image);
    lupe_free(it->boxes);
    lupe_free(it->split);
    lupe_free(it->src_path);
    lupe_free(it->export_name);
    memset(it, 0, sizeof *it);
}

void lupe_fmt_doc_free(lupe_fmt_doc *doc)
{
    if (!doc) return;
    docx *d = (docx *)doc;
    for (size_t i = 0; i < doc->nclasses; i++) lupe_free(doc->classes[i]);
    for (size_t i = 0; i < doc->nitems; i++) item_cleanup(&doc->items[i]);
    for (size_t i = 0; i < doc->nskipped; i++) lupe_free(doc->skipped[i]);
    lupe_free(doc->classes);
    lupe_free(doc->items);
    lupe_free(doc->skipped);
    fmt__map_cleanup(&d->classmap);
    lupe_free(d);
}

/* Makes room for one more element in an array whose capacity is the size
 * of its funnel block, so no capacity field is needed in the public structs. */
static lupe_status grow(void **arr, size_t n, size_t elem)
{
    size_t cap = *arr ? lupe_alloc_size(*arr) / elem : 0;
    if (n < cap) return LUPE_OK;
    size_t ncap = cap ? cap * 2 : 8;
    void *p = lupe_realloc(*arr, ncap * elem);
    if (!p) return LUPE_ENOMEM;
    *arr = p;
    return LUPE_OK;
}

void fmt__doc_mark(const lupe_fmt_doc *doc, fmt__mark *m)
{
    m->nclasses = doc->nclasses;
    m->nitems = doc->nitems;
    m->nskipped = doc->nskipped;
    m->skipped_more = ((const docx *)doc)->skipped_more;
}

static void set_more_message(lupe_fmt_doc *doc)
{
    docx *d = (docx *)doc;
    /* The slot past the cap always exists once skipped_more > 0. */
    char *s = lupe_asprintf("... and %zu more skipped, not listed", d->skipped_more);
    if (!s) return; /* keeps the older count; only the number is stale */
    lupe_free(doc->skipped[FMT_MAX_SKIPPED]);
    doc->skipped[FMT_MAX_SKIPPED] = s;
}

void fmt__doc_rollback(lupe_fmt_doc *doc, const fmt__mark *m)
{
    docx *d = (docx *)doc;
    while (doc->nitems > m->nitems) item_cleanup(&doc->items[--doc->nitems]);
    if (doc->nclasses > m->nclasses) {
        while (doc->nclasses > m->nclasses) lupe_free(doc->classes[--doc->nclasses]);
        /* Removing keys from open addressing is fiddly; rebuild on demand. */
        fmt__map_cleanup(&d->classmap);
        d->mapped = 0;
    }
    while (doc->nskipped > m->nskipped) lupe_free(doc->skipped[--doc->nskipped]);
    d->skipped_more = m->skipped_more;
    if (d->skipped_more) set_more_message(doc);
}

lupe_status lupe_fmt_doc_skip(lupe_fmt_doc *doc, const char *fmt, ...)
{
    docx *d = (docx *)doc;
    if (doc->nskipped > FMT_MAX_SKIPPED) {
        d->skipped_more++;
        set_more_message(doc);
        return LUPE_OK;
    }
    if (grow((void **)&doc->skipped, doc->nskipped, sizeof *doc->skipped)) return LUPE_ENOMEM;
    char *s = NULL;
    if (doc->nskipped == FMT_MAX_SKIPPED) {
        d->skipped_more = 1;
        s = lupe_asprintf("... and %zu more skipped, not listed", d->skipped_more);
    } else {
        va_list ap, ap2;
        va_start(ap, fmt);
        va_copy(ap2, ap);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n >= 0 && (s = lupe_malloc((size_t)n + 1))) vsnprintf(s, (size_t)n + 1, fmt, ap2);
        va_end(ap2);
    }
    if (!s) {
        if (doc->nskipped == FMT_MAX_SKIPPED) d->skipped_more = 0;
        return LUPE_ENOMEM;
    }
    doc->skipped[doc->nskipped++] = s;
    return LUPE_OK;
}

/* Brings the name index up to date with doc->classes; callers may have
 * appended classes directly, so the index catches up lazily. */
static lupe_status sync_map(docx *d)
{
    lupe_fmt_doc *doc = &d->pub;
    if (d->mapped > doc->nclasses) {
        fmt__map_cleanup(&d->classmap);
        d->mapped = 0;
    }
    for (; d->mapped < doc->nclasses; d->mapped++) {
        size_t v;
        if (fmt__map_get(&d->classmap, doc->classes[d->mapped], &v)) continue; /* first one wins */
        if (fmt__map_put(&d->classmap, doc->classes[d->mapped], d->mapped)) return LUPE_ENOMEM;
    }
    return LUPE_OK;
}

int fmt__find_class(lupe_fmt_doc *doc, const char *name)
{
    docx *d = (docx *)doc;
    size_t v;
    if (sync_map(d) == LUPE_OK) {
        if (fmt__map_get(&d->classmap, name, &v) && v < doc->nclasses && strcmp(doc->classes[v], name) == 0)
            return (int)v;
        return -1;
    }
    /* Out of memory for the index: a linear search still answers. */
    for (size_t i = 0; i < doc->nclasses; i++)
        if (strcmp(doc->classes[i], name) == 0) return (int)i;
    return -1;
}

static lupe_status append_class(lupe_fmt_doc *doc, const char *name, int *out)
{
    size_t len = strlen(name);
    if (len == 0) return lupe_err(LUPE_EARG, "a class name is empty");
    if (len > FMT_MAX_STR)
        return lupe_err(LUPE_ELIMIT, "class name of %zu bytes is over the limit of %zu", len, FMT_MAX_STR);
    if (doc->nclasses >= FMT_MAX_CLASSES)
        return lupe_err(LUPE_ELIMIT, "more than %zu classes", FMT_MAX_CLASSES);
    if (grow((void **)&doc->classes, doc->nclasses, sizeof *doc->classes)) return LUPE_ENOMEM;
    char *s = lupe_strdup(name);
    if (!s) return LUPE_ENOMEM;
    doc->classes[doc->nclasses] = s;
    if (out) *out = (int)doc->nclasses;
    doc->nclasses++;
    return LUPE_OK;
}

lupe_status fmt__class_index(lupe_fmt_doc *doc, const char *name, int *out)
{
    int i = fmt__find_class(doc, name);
    if (i >= 0) {
        *out = i;
        return LUPE_OK;
    }
    return append_class(doc, name, out);
}

lupe_status lupe_fmt_doc_add_class(lupe_fmt_doc *doc, const char *name, int *out_index)
{
    if (!doc || !name) return lupe_err(LUPE_EARG, "lupe_fmt_doc_add_class: NULL argument");
    int i;
    lupe_status st = fmt__class_index(doc, name, &i);
    if (st == LUPE_OK && out_index) *out_index = i;
    return st;
}

lupe_status fmt__ensure_numbered_classes(lupe_fmt_doc *doc, int cls)
{
    if (cls < 0 || (size_t)cls >= FMT_MAX_CLASSES)
        return lupe_err(LUPE_ELIMIT, "class %d is over the limit of %zu classes", cls, FMT_MAX_CLASSES);
    while (doc->nclasses <= (size_t)cls) {
        char name[32];
        snprintf(name, sizeof name, "class%zu", doc->nclasses);
        lupe_status st = append_class(doc, name, NULL);
        if (st) return st;
    }
    return LUPE_OK;
}

lupe_status fmt__add_item(lupe_fmt_doc *doc, const char *image, size_t len, lupe_fmt_item **out)
{
    *out = NULL;
    if (len > FMT_MAX_STR)
        return lupe_err(LUPE_ELIMIT, "image reference of %zu bytes is over the limit of %zu", len, FMT_MAX_STR);
    if (doc->nitems >= FMT_MAX_ITEMS) return lupe_err(LUPE_ELIMIT, "more than %zu items", FMT_MAX_ITEMS);
    if (grow((void **)&doc->items, doc->nitems, sizeof *doc->items)) return LUPE_ENOMEM;
    char *s = lupe_strndup(image, len);
    if (!s) return LUPE_ENOMEM;
    lupe_fmt_item *it = &doc->items[doc->nitems++];
    memset(it, 0, sizeof *it);
    it->image = s;
    *out = it;
    return LUPE_OK;
}

lupe_fmt_item *lupe_fmt_doc_add_item(lupe_fmt_doc *doc, const char *image)
{
    if (!doc || !image) {
        lupe_err(LUPE_EARG, "lupe_fmt_doc_add_item: NULL argument");
        return NULL;
    }
    lupe_fmt_item *it = NULL;
    (void)fmt__add_item(doc, image, strlen(image), &it);
    if (it) it->line = (int)doc->nitems;
    return it;
}

lupe_status lupe_fmt_item_add_box(lupe_fmt_item *it, int cls, double x, double y, double w, double h)
{
    if (!it) return lupe_err(LUPE_EARG, "lupe_fmt_item_add_box: NULL item");
    if (cls < 0) return lupe_err(LUPE_EARG, "box class %d is negative", cls);
    if (!isfinite(x) || !isfinite(y) || !isfinite(w) || !isfinite(h))
        return lupe_err(LUPE_EARG, "box coordinates must be finite numbers");
    if (it->nboxes >= FMT_MAX_BOXES)
        return lupe_err(LUPE_ELIMIT, "more than %zu boxes for one image", FMT_MAX_BOXES);
    if (grow((void **)&it->boxes, it->nboxes, sizeof *it->boxes)) return LUPE_ENOMEM;
    it->boxes[it->nboxes++] = (lupe_fmt_box){cls, x, y, w, h};
    return LUPE_OK;
}

const char *fmt__doc_check(lupe_fmt_doc *doc)
{
    if (doc->nclasses > FMT_MAX_CLASSES) return "too many classes";
    if (doc->nitems > FMT_MAX_ITEMS) return "too many items";
    if (doc->nskipped > FMT_MAX_SKIPPED + 1) return "too many skip messages";
    for (size_t i = 0; i < doc->nskipped; i++)
        if (!doc->skipped[i] || !doc->skipped[i][0]) return "an empty skip message";
    for (size_t c = 0; c < doc->nclasses; c++) {
        if (!doc->classes[c] || !doc->classes[c][0]) return "an unnamed class";
        if (strlen(doc->classes[c]) > FMT_MAX_STR) return "a class name over the cap";
        if (fmt__find_class(doc, doc->classes[c]) != (int)c) return "two classes with one name";
    }
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        if (!it->image || strlen(it->image) > FMT_MAX_STR) return "an item without a usable image reference";
        if (it->labeled != 1) return "a read item that is not labeled";
        if (it->width < 0 || it->height < 0 || it->width > FMT_MAX_COORD || it->height > FMT_MAX_COORD)
            return "an image size out of range";
        if (it->split && strcmp(it->split, "train") && strcmp(it->split, "val") && strcmp(it->split, "test"))
            return "an unknown split";
        if (it->nboxes > FMT_MAX_BOXES) return "too many boxes";
        double lim = it->normalized ? 2 : FMT_MAX_COORD;
        for (size_t k = 0; k < it->nboxes; k++) {
            const lupe_fmt_box *b = &it->boxes[k];
            if (b->cls < 0 || (size_t)b->cls >= doc->nclasses) return "a box with a class out of range";
            if (!(b->w > 0) || !(b->h > 0)) return "a box without a positive size";
            /* A size is a difference of two coordinates in VOC: up to 2 lim. */
            if (!(fabs(b->x) <= lim) || !(fabs(b->y) <= lim) || !(b->w <= 2 * lim) || !(b->h <= 2 * lim))
                return "a box out of range";
        }
    }
    return NULL;
}
