/*
 * Non-maximum suppression for the detector: box IoU, and greedy class-aware
 * NMS in place (a box is dropped when it overlaps a better box of the same
 * class by more than the threshold), in one total order so the result does
 * not depend on the order of the input.
 */
#include <stdlib.h>

#include "det/nms.h"

float det_iou(const det_pred *a, const det_pred *b)
{
    float iw = (a->x2 < b->x2 ? a->x2 : b->x2) - (a->x1 > b->x1 ? a->x1 : b->x1);
    float ih = (a->y2 < b->y2 ? a->y2 : b->y2) - (a->y1 > b->y1 ? a->y1 : b->y1);
    if (!(iw > 0) || !(ih > 0)) return 0.0f;
    float inter = iw * ih;
    float uni = (a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - inter;
    return uni > 0 ? inter / uni : 0.0f;
}

/* Best first: higher score, then lower class, then the corners, so equal
 * scores still give one order whatever the input order (qsort is not stable). */
int det__pred_cmp(const det_pred *a, const det_pred *b)
{
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->cls != b->cls) return a->cls < b->cls ? -1 : 1;
    if (a->x1 != b->x1) return a->x1 < b->x1 ? -1 : 1;
    if (a->y1 != b->y1) return a->y1 < b->y1 ? -1 : 1;
    if (a->x2 != b->x2) return a->x2 < b->x2 ? -1 : 1;
    if (a->y2 != b->y2) return a->y2 < b->y2 ? -1 : 1;
    return 0;
}

static int qcmp(const void *a, const void *b)
{
    return det__pred_cmp(a, b);
}

/* Greedy NMS keeps a box unless a kept box of its class overlaps it by more
 * than iou; the kept boxes are compacted to the front of p as they are
 * found, so no scratch memory is needed. Classes never suppress each other,
 * which is the same as running NMS per class and merging by score; stopping
 * at max_det kept boxes then keeps the best max_det of that merge. */
int det_nms(det_pred *p, int n, float iou, int max_det)
{
    if (!p || n <= 0 || max_det <= 0) return 0;
    qsort(p, (size_t)n, sizeof *p, qcmp);
    int kept = 0;
    for (int i = 0; i < n && kept < max_det; i++) {
        int drop = 0;
        for (int k = 0; k < kept && !drop; k++)
            drop = p[k].cls == p[i].cls && det_iou(&p[k], &p[i]) > iou;
        if (!drop) p[kept++] = p[i];
    }
    return kept;
}
