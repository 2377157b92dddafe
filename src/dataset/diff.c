/*
 * Differences between two dataset versions: images added and removed,
 * split moves, and for images whose label changed, which boxes were added,
 * removed or moved. Boxes are paired by class and overlap (IoU >= 0.5),
 * best pairs first, so a nudged box reads as "changed", not as a removal
 * plus an addition.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dataset_internal.h"

static void say(void (*line)(void *, const char *), void *ud, const char *fmt, ...) LUPE_PRINTF(3, 4);
static void say(void (*line)(void *, const char *), void *ud, const char *fmt, ...)
{
    if (!line) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    line(ud, buf);
}

static const char *cname(const lupe_manifest *m, int c)
{
    return c >= 0 && c < m->nclasses ? m->classes[c] : "?";
}

static lupe_status diff_boxes(const lupe_manifest *ma, const lupe_dataset_item *a, const lupe_manifest *mb,
                              const lupe_dataset_item *b, void (*line)(void *, const char *), void *ud,
                              lupe_dataset_diff *d)
{
    int na = a->nboxes, nb = b->nboxes;
    int *pa = lupe_malloc((size_t)(na + 1) * sizeof *pa), *pb = lupe_malloc((size_t)(nb + 1) * sizeof *pb);
    if (!pa || !pb) {
        lupe_free(pa);
        lupe_free(pb);
        return LUPE_ENOMEM;
    }
    for (int i = 0; i < na; i++) pa[i] = -1;
    for (int j = 0; j < nb; j++) pb[j] = -1;
    /* Greedy pairing by best IoU; box lists are small. */
    for (;;) {
        double best = 0.5;
        int bi = -1, bj = -1;
        for (int i = 0; i < na; i++) {
            if (pa[i] >= 0) continue;
            for (int j = 0; j < nb; j++) {
                if (pb[j] >= 0 || strcmp(cname(ma, a->boxes[i].cls), cname(mb, b->boxes[j].cls)) != 0) continue;
                double v = dataset__iou(&a->boxes[i], &b->boxes[j]);
                if (v >= best) best = v, bi = i, bj = j;
            }
        }
        if (bi < 0) break;
        pa[bi] = bj;
        pb[bj] = bi;
    }
    for (int i = 0; i < na; i++) {
        const lupe_box *x = &a->boxes[i];
        if (pa[i] < 0) {
            d->boxes_removed++;
            say(line, ud, "label %.12s: box removed %s %g,%g %gx%g", a->image, cname(ma, x->cls), x->x, x->y, x->w, x->h);
        } else {
            const lupe_box *y = &b->boxes[pa[i]];
            /* Under a hundredth of a pixel is rounding (as through YOLO's
             * normalised coordinates), not a change. */
            if (fabs(x->x - y->x) > 0.01 || fabs(x->y - y->y) > 0.01 || fabs(x->w - y->w) > 0.01 ||
                fabs(x->h - y->h) > 0.01) {
                d->boxes_changed++;
                say(line, ud, "label %.12s: box changed %s %g,%g %gx%g -> %g,%g %gx%g", a->image, cname(ma, x->cls),
                    x->x, x->y, x->w, x->h, y->x, y->y, y->w, y->h);
            }
        }
    }
    for (int j = 0; j < nb; j++) {
        const lupe_box *y = &b->boxes[j];
        if (pb[j] < 0) {
            d->boxes_added++;
            say(line, ud, "label %.12s: box added %s %g,%g %gx%g", b->image, cname(mb, y->cls), y->x, y->y, y->w, y->h);
        }
    }
    lupe_free(pa);
    lupe_free(pb);
    return LUPE_OK;
}

lupe_status lupe_dataset_diff_get(const lupe_manifest *a, const lupe_manifest *b,
                                  void (*line)(void *ud, const char *text), void *ud, lupe_dataset_diff *out)
{
    memset(out, 0, sizeof *out);
    int64_t i = 0, j = 0;
    lupe_status st = LUPE_OK;
    /* Both item lists are sorted by image id: one merge pass. */
    while ((i < a->nitems || j < b->nitems) && !st) {
        int c = i >= a->nitems ? 1 : j >= b->nitems ? -1 : strcmp(a->items[i].image, b->items[j].image);
        if (c < 0) {
            const lupe_dataset_item *x = &a->items[i++];
            out->removed++;
            say(line, ud, "removed %.12s (%s, %d boxes)", x->image, lupe_split_name(x->split), x->nboxes);
        } else if (c > 0) {
            const lupe_dataset_item *y = &b->items[j++];
            out->added++;
            say(line, ud, "added %.12s (%s, %d boxes)", y->image, lupe_split_name(y->split), y->nboxes);
        } else {
            const lupe_dataset_item *x = &a->items[i++], *y = &b->items[j++];
            if (x->split != y->split) {
                out->moved++;
                say(line, ud, "moved %.12s %s -> %s", x->image, lupe_split_name(x->split), lupe_split_name(y->split));
            }
            if (strcmp(x->label, y->label) != 0) {
                out->relabeled++;
                st = diff_boxes(a, x, b, y, line, ud, out);
            }
        }
    }
    return st;
}
