/*
 * lupe evaluation: COCO-style average precision (101-point interpolation at
 * IoU 0.50:0.05:0.95), precision and recall at the maximum-F1 confidence,
 * per-class AP, a confusion matrix, and the plots of a run folder (PR and F1
 * curves, loss and mAP curves, prediction previews) drawn as PNG images.
 *
 *     eval_ctx *e;
 *     eval_new(nc, names, &e);
 *     for each image: eval_add(e, preds, np, gt, ngt);
 *     eval_result r;
 *     eval_compute(e, &r);
 *     eval_plots(e, &r, "runs/x");
 *     eval_result_free(&r); eval_free(e);
 */
#ifndef LUPE_EVAL_H
#define LUPE_EVAL_H

#include "lupe/det.h"

#define EVAL_NIOU 10 /* IoU thresholds 0.50, 0.55, ... 0.95 */

typedef struct eval_ctx eval_ctx;

typedef struct eval_result {
    int nc;
    double map50, map;       /* mean over classes that have ground truth */
    double p, r, f1, conf;   /* at the confidence of maximum mean F1 */
    double *ap50, *ap;       /* [nc] */
    double *p_class, *r_class; /* [nc], at conf */
    int *ngt;                /* [nc] ground-truth boxes per class */
    /* (nc+1)x(nc+1) counts, row = predicted class (nc = background),
     * column = true class (nc = background), at conf and IoU 0.45 */
    int64_t *confusion;
} eval_result;

lupe_status eval_new(int nc, const char *const *class_names, eval_ctx **out);
void eval_free(eval_ctx *e);
/* Adds one image's predictions (any order) and ground truth (det_box.img
 * ignored), in the same coordinates. */
lupe_status eval_add(eval_ctx *e, const det_pred *p, int np, const det_box *gt, int ngt);
lupe_status eval_compute(eval_ctx *e, eval_result *r);
void eval_result_free(eval_result *r);
/* Writes PR_curve.png, F1_curve.png, P_curve.png, R_curve.png and
 * confusion_matrix.png into dir. */
lupe_status eval_plots(const eval_ctx *e, const eval_result *r, const char *dir);

/* A line chart as a PNG: series k has n[k] points (x[k][i], y[k][i]). */
typedef struct eval_series {
    const char *name;
    const double *x, *y;
    int n;
} eval_series;
lupe_status eval_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                            const eval_series *s, int ns);

#endif
