/*
 * Internals shared by loss.c (losses, gradients) and assign.c (the
 * assigner): the loss object, anchor geometry, DFL decoding and CIoU. Tests
 * read the assignment here and can freeze it for finite differences.
 */
#ifndef LUPE_DET_LOSS_INTERNAL_H
#define LUPE_DET_LOSS_INTERNAL_H

#include <stddef.h>

#include "lupe/det.h"

#define DET__NBOX (4 * DET_REG_MAX) /* box-distribution channels of a head output */
#define DET__CIOU_EPS 1e-7          /* Ultralytics' bbox_iou eps */
#define DET__IN_EPS 1e-9            /* an anchor centre must be this far inside a box */
#define DET__NORM_EPS 1e-9          /* in the metric normalisation */
#define DET__DFL_MAX (DET_REG_MAX - 1 - 0.01) /* DFL targets are clamped to [0, this] */
#define DET__MAX_TOPK 64            /* det_loss_new refuses a larger top-k */

/* Anchors of one image are numbered level by level, row-major within a
 * level (y, then x), as Ultralytics flattens its feature maps. Per-anchor
 * arrays of the batch hold image b's anchors at [b * na, (b + 1) * na). */
struct det_loss {
    det_arch a;
    det_loss_cfg c;
    int na;                     /* anchors per image */
    int no;                     /* channels of a head output: DET__NBOX + nc */
    int grid[DET_LEVELS];       /* cells per side of each level */
    int first[DET_LEVELS + 1];  /* first anchor of each level; first[DET_LEVELS] = na */
    /* Per anchor of the batch. */
    int *gt_of;     /* assigned ground-truth box (index into the caller's array), -1 if none */
    float *tscore;  /* target score at the assigned box's class (the normalised metric) */
    float *metric;  /* alignment metric and clamped CIoU (pixels) of the assigned pair */
    float *overlap;
    double *alpha;  /* CIoU aspect weight of positives, kept for frozen runs */
    int *nsel;      /* how many boxes picked the anchor among their top k */
    /* Per ground-truth box, grouped by image: order[img_first[b] ..
     * img_first[b + 1]) are image b's boxes in the caller's order; slot p
     * of that list owns topk[p * topk ...] and the per-box maxima. */
    int *order, *img_first;
    int *sel;           /* anchors a box picked, best first; -1 past the count */
    float *sel_metric, *sel_overlap;
    float *box_maxm, *box_maxo;
    int frozen;         /* tests: reuse the last assignment and alphas */
    double total;       /* the last total in double, for finite differences */
};

/* Anchor a of an image: level, centre in grid units, stride in pixels. */
static inline int det__level(const det_loss *l, int a)
{
    return a >= l->first[2] ? 2 : a >= l->first[1] ? 1 : 0;
}

static inline void det__anchor(const det_loss *l, int a, double *cx, double *cy, double *stride)
{
    int lv = det__level(l, a), cell = a - l->first[lv], n = l->grid[lv];
    *cx = cell % n + 0.5;
    *cy = cell / n + 0.5;
    *stride = (double)(8 << lv);
}

/* The head-output row (DET__NBOX + nc channels) of anchor a of image b. */
static inline size_t det__row(const det_loss *l, int b, int a, int *level)
{
    int lv = det__level(l, a), n = l->grid[lv];
    *level = lv;
    return ((size_t)b * n * n + (size_t)(a - l->first[lv])) * (size_t)l->no;
}

/* DFL decoding of one row: dist[s] = sum_k k * softmax(row[s*16 ..])_k for
 * the sides l, t, r, b (grid units); prob (may be NULL) gets the 64
 * probabilities and lse (may be NULL) the 4 log-sum-exps. */
void det__decode(const float *row, double dist[4], double *prob, double *lse);

/* CIoU of boxes p and t (corners x1 y1 x2 y2) as Ultralytics' bbox_iou
 * computes it (eps 1e-7 added to the heights and the union):
 * iou - dist - alpha * v with dist = rho^2 / c^2, v the aspect term and
 * alpha = v / (v - iou + 1 + eps). _terms returns iou and gives dist and v;
 * det__ciou gives alpha too (may be NULL). */
double det__ciou_terms(const double p[4], const double t[4], double *dist, double *v);
double det__ciou(const double p[4], const double t[4], double *alpha);
/* d CIoU / d p with alpha held constant (PyTorch computes it under
 * no_grad), into dp. */
void det__ciou_grad(const double p[4], const double t[4], double alpha, double dp[4]);

/* Groups the boxes by image (order, img_first). */
void det__group(det_loss *l, const det_box *gt, int ngt);
/* Assigns image b's anchors (gt_of, tscore, metric, overlap, nsel) from the
 * head outputs, detached. Returns the number of positive anchors. */
int det__assign_image(det_loss *l, int b, const float *const outs[DET_LEVELS], const det_box *gt);

/* Tests: with on, det_loss_compute keeps the assignment and the CIoU alphas
 * of its last call instead of recomputing them, so the loss becomes the
 * smooth function its gradient describes. */
void det__loss_freeze(det_loss *l, int on);

#endif
