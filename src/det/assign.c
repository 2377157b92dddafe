/*
 * YOLOv8's task-aligned assigner as Ultralytics runs it, per image, on
 * detached predictions: each box picks its top-k anchors by s^alpha *
 * CIoU^beta, an anchor picked twice goes to the box it overlaps most, and
 * the metric, rescaled per box, becomes the anchor's soft class target.
 */
#include <math.h>

#include "det/loss_internal.h"

void det__group(det_loss *l, const det_box *gt, int ngt)
{
    /* O(batch * ngt), which is nothing next to the assignment; it keeps
     * each image's boxes in the caller's order without a cursor array. */
    int n = 0;
    for (int b = 0; b < l->a.batch; b++) {
        l->img_first[b] = n;
        for (int i = 0; i < ngt; i++)
            if (gt[i].img == b) l->order[n++] = i;
    }
    l->img_first[l->a.batch] = n;
}

/* Ultralytics' select_candidates_in_gts: the centre lies inside the box
 * with every margin above 1e-9 (pixels). */
static int inside(double cx, double cy, const det_box *g)
{
    double d = cx - g->x1;
    if (cy - g->y1 < d) d = cy - g->y1;
    if (g->x2 - cx < d) d = g->x2 - cx;
    if (g->y2 - cy < d) d = g->y2 - cy;
    return d > DET__IN_EPS;
}

/* Predicted box of anchor a of image b in pixels, and its row. */
static const float *pred_px(const det_loss *l, const float *const outs[DET_LEVELS], int b, int a, double box[4])
{
    int lv;
    const float *row = outs[det__level(l, a)] + det__row(l, b, a, &lv);
    double cx, cy, st, d[4];
    det__anchor(l, a, &cx, &cy, &st);
    det__decode(row, d, NULL, NULL);
    box[0] = (cx - d[0]) * st, box[1] = (cy - d[1]) * st;
    box[2] = (cx + d[2]) * st, box[3] = (cy + d[3]) * st;
    return row;
}

static double align_metric(const det_loss *l, const float *row, int cls, double ciou)
{
    double s = 1.0 / (1.0 + exp(-(double)row[DET__NBOX + cls]));
    return pow(s, l->c.alpha) * pow(ciou, l->c.beta);
}

/* Candidate cells of one level for a box: the index range whose centres
 * can lie inside it (the exact test follows), clamped to the grid before
 * converting so that no coordinate can overflow an int. */
static int cell_range(double lo, double hi, double st, int n, int *c0, int *c1)
{
    double a = floor(lo / st - 0.5), b = ceil(hi / st - 0.5);
    if (a < 0) a = 0;
    if (b > n - 1) b = n - 1;
    if (!(a <= b)) return 0;
    *c0 = (int)a, *c1 = (int)b;
    return 1;
}

/* Box in slot p picks its top k anchors: best metric first, ties to the
 * lower anchor number (anchors are visited in increasing order and a tie
 * does not displace). */
static void pick_topk(det_loss *l, int b, int p, const float *const outs[DET_LEVELS], const det_box *g)
{
    const int K = l->c.topk;
    int *sel = l->sel + (size_t)p * K;
    double sm[DET__MAX_TOPK], so[DET__MAX_TOPK];
    const double gp[4] = {g->x1, g->y1, g->x2, g->y2};
    int n = 0;
    for (int lv = 0; lv < DET_LEVELS; lv++) {
        double st = (double)(8 << lv);
        int G = l->grid[lv], x0, x1, y0, y1;
        if (!cell_range(g->x1, g->x2, st, G, &x0, &x1) || !cell_range(g->y1, g->y2, st, G, &y0, &y1)) continue;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                if (!inside((x + 0.5) * st, (y + 0.5) * st, g)) continue;
                int a = l->first[lv] + y * G + x;
                double pb[4];
                const float *row = pred_px(l, outs, b, a, pb);
                double u = det__ciou(pb, gp, NULL);
                if (u < 0) u = 0;
                double m = align_metric(l, row, g->cls, u);
                if (n == K && !(m > sm[K - 1])) continue;
                int i = n < K ? n++ : K - 1;
                for (; i > 0 && sm[i - 1] < m; i--) sm[i] = sm[i - 1], so[i] = so[i - 1], sel[i] = sel[i - 1];
                sm[i] = m, so[i] = u, sel[i] = a;
            }
    }
    for (int i = 0; i < K; i++) {
        l->sel_metric[(size_t)p * K + i] = i < n ? (float)sm[i] : 0.0f;
        l->sel_overlap[(size_t)p * K + i] = i < n ? (float)so[i] : 0.0f;
        if (i >= n) sel[i] = -1;
    }
}

/* An anchor picked by several boxes goes to the box with the highest
 * clamped CIoU among ALL the image's boxes, counting 0 for boxes that do
 * not contain it, first box on ties: Ultralytics' argmax over its masked
 * overlaps (select_highest_overlaps). */
static void settle(det_loss *l, int b, int a, const float *const outs[DET_LEVELS], const det_box *gt)
{
    size_t ia = (size_t)b * l->na + (size_t)a;
    double cx, cy, st, pb[4];
    det__anchor(l, a, &cx, &cy, &st);
    const float *row = pred_px(l, outs, b, a, pb);
    int best = -1;
    double bestv = -1, bestm = 0;
    for (int p = l->img_first[b]; p < l->img_first[b + 1]; p++) {
        const det_box *g = &gt[l->order[p]];
        double v = 0, m = 0;
        if (inside(cx * st, cy * st, g)) {
            const double gp[4] = {g->x1, g->y1, g->x2, g->y2};
            v = det__ciou(pb, gp, NULL);
            if (v < 0) v = 0;
            m = align_metric(l, row, g->cls, v);
        }
        if (v > bestv) best = p, bestv = v, bestm = m;
    }
    l->gt_of[ia] = best;
    l->metric[ia] = (float)bestm;
    l->overlap[ia] = (float)bestv;
}

int det__assign_image(det_loss *l, int b, const float *const outs[DET_LEVELS], const det_box *gt)
{
    const int na = l->na, K = l->c.topk, p0 = l->img_first[b], p1 = l->img_first[b + 1];
    const size_t o = (size_t)b * na;
    for (int a = 0; a < na; a++) l->gt_of[o + a] = -1, l->nsel[o + a] = 0, l->tscore[o + a] = 0;
    if (p0 == p1) return 0;
    /* While assigning, gt_of holds slots (positions in order[]). */
    for (int p = p0; p < p1; p++) {
        pick_topk(l, b, p, outs, &gt[l->order[p]]);
        for (int i = 0; i < K && l->sel[(size_t)p * K + i] >= 0; i++) {
            size_t ia = o + (size_t)l->sel[(size_t)p * K + i];
            if (l->nsel[ia]++ == 0) {
                l->gt_of[ia] = p;
                l->metric[ia] = l->sel_metric[(size_t)p * K + i];
                l->overlap[ia] = l->sel_overlap[(size_t)p * K + i];
            }
        }
    }
    for (int a = 0; a < na; a++)
        if (l->nsel[o + a] > 1) settle(l, b, a, outs, gt);
    /* Per box, the largest metric and CIoU over the anchors it kept; the
     * metric rescaled so that the box's best anchor scores its best CIoU. */
    for (int p = p0; p < p1; p++) l->box_maxm[p] = 0, l->box_maxo[p] = 0;
    for (int a = 0; a < na; a++) {
        int p = l->gt_of[o + a];
        if (p < 0) continue;
        if (l->metric[o + a] > l->box_maxm[p]) l->box_maxm[p] = l->metric[o + a];
        if (l->overlap[o + a] > l->box_maxo[p]) l->box_maxo[p] = l->overlap[o + a];
    }
    int npos = 0;
    for (int a = 0; a < na; a++) {
        int p = l->gt_of[o + a];
        if (p < 0) continue;
        l->tscore[o + a] = (float)((double)l->metric[o + a] * l->box_maxo[p] / (l->box_maxm[p] + DET__NORM_EPS));
        l->gt_of[o + a] = l->order[p];
        npos++;
    }
    return npos;
}
