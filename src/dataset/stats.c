/*
 * Dataset statistics: images, boxes and labeled negatives per split, boxes
 * per class and split, a histogram of box sizes, and the checks that catch
 * a bad split or sloppy labels (groups on both sides, duplicate boxes).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dataset_internal.h"

double dataset__iou(const lupe_box *a, const lupe_box *b)
{
    double x0 = fmax(a->x, b->x), y0 = fmax(a->y, b->y);
    double x1 = fmin(a->x + a->w, b->x + b->w), y1 = fmin(a->y + a->h, b->y + b->h);
    double inter = fmax(0, x1 - x0) * fmax(0, y1 - y0);
    double uni = a->w * a->h + b->w * b->h - inter;
    return uni > 0 ? inter / uni : 0;
}

static int by_group(const void *a, const void *b)
{
    const lupe_dataset_item *x = *(const lupe_dataset_item *const *)a, *y = *(const lupe_dataset_item *const *)b;
    return strcmp(x->group ? x->group : x->image, y->group ? y->group : y->image);
}

void lupe_dataset_stats_cleanup(lupe_dataset_stats *s)
{
    lupe_free(s->class_boxes);
    memset(s, 0, sizeof *s);
}

lupe_status lupe_dataset_stats_get(const lupe_manifest *m, lupe_dataset_stats *out)
{
    memset(out, 0, sizeof *out);
    out->nclasses = m->nclasses;
    out->class_boxes = lupe_calloc((size_t)(m->nclasses ? m->nclasses : 1) * 3, sizeof *out->class_boxes);
    const lupe_dataset_item **byg = lupe_malloc((size_t)(m->nitems ? m->nitems : 1) * sizeof *byg);
    if (!out->class_boxes || !byg) {
        lupe_free(byg);
        lupe_dataset_stats_cleanup(out);
        return LUPE_ENOMEM;
    }
    for (int64_t i = 0; i < m->nitems; i++) {
        const lupe_dataset_item *it = &m->items[i];
        int sp = it->split;
        byg[i] = it;
        out->images[sp]++;
        out->boxes[sp] += it->nboxes;
        if (it->nboxes == 0) out->negatives[sp]++;
        for (int k = 0; k < it->nboxes; k++) {
            const lupe_box *b = &it->boxes[k];
            out->class_boxes[b->cls * 3 + sp]++;
            double side = sqrt(b->w * b->h);
            int bin = 0;
            for (double lim = 8; bin < 7 && side >= lim; lim *= 2) bin++;
            out->size_hist[bin]++;
            for (int j = k + 1; j < it->nboxes; j++)
                if (it->boxes[j].cls == b->cls && dataset__iou(b, &it->boxes[j]) > 0.9) out->duplicate_boxes++;
        }
    }
    /* Groups: count per split and find any group on more than one side. */
    qsort(byg, (size_t)m->nitems, sizeof *byg, by_group);
    for (int64_t i = 0; i < m->nitems;) {
        int64_t j = i;
        int sides = 0;
        while (j < m->nitems && by_group(&byg[i], &byg[j]) == 0) sides |= 1 << byg[j++]->split;
        for (int s = 0; s < 3; s++)
            if (sides & (1 << s)) out->groups[s]++;
        if (sides & (sides - 1)) out->groups_split++;
        i = j;
    }
    lupe_free(byg);
    return LUPE_OK;
}
