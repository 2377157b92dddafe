/*
 * lupe evaluation: COCO-style average precision (101-point interpolation at
 * IoU 0.50:0.05:0.95), precision and recall at the maximum-F1 confidence,
 * per-class AP, a confusion matrix, and the plots of a run folder (PR and F1
 * curves, loss and mAP curves, prediction previews) drawn as PNG images.
 * The definitions are in docs/evaluation.md.
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
#include "lupe/img.h"

#define EVAL_NIOU 10 /* IoU thresholds 0.50, 0.55, ... 0.95 */
#define EVAL_NCURVE 1000 /* points of the curves: x_i = i / (EVAL_NCURVE - 1) */
#define EVAL_CM_CONF 0.25 /* the confusion matrix counts predictions with score > this */
#define EVAL_CM_IOU 0.45  /* and matches boxes that overlap by more than this */
#define EVAL_MAX_PREDS (1 << 24) /* predictions one context holds (LUPE_ELIMIT past it) */

typedef struct eval_ctx eval_ctx;

typedef struct eval_result {
    int nc;
    double map50, map;       /* mean over classes that have ground truth */
    double p, r, f1, conf;   /* at the confidence of maximum mean F1 */
    double *ap50, *ap;       /* [nc] */
    double *p_class, *r_class; /* [nc], at conf */
    int *ngt;                /* [nc] ground-truth boxes per class */
    /* (nc+1)x(nc+1) counts, row = predicted class (nc = background),
     * column = true class (nc = background), at EVAL_CM_CONF and EVAL_CM_IOU */
    int64_t *confusion;
    /* Added for the plots and reports: */
    int nimages;             /* images added */
    int64_t npred;           /* predictions added */
    int ncls_gt;             /* classes with ground truth (the means are over these) */
    int conf_index;          /* index of conf on the curves' grid */
    double *ap_iou;          /* [nc][EVAL_NIOU] AP at each IoU threshold */
    /* [nc][EVAL_NCURVE], at IoU 0.5; zero for a class without ground truth:
     * pr = precision envelope at recall x_i, the others at confidence x_i. */
    double *pr, *p_curve, *r_curve, *f1_curve;
} eval_result;

lupe_status eval_new(int nc, const char *const *class_names, eval_ctx **out);
void eval_free(eval_ctx *e);
/* Adds one image's predictions (any order) and ground truth (det_box.img
 * ignored), in the same coordinates. */
lupe_status eval_add(eval_ctx *e, const det_pred *p, int np, const det_box *gt, int ngt);
lupe_status eval_compute(eval_ctx *e, eval_result *r);
void eval_result_free(eval_result *r);
/* Writes PR_curve.png, F1_curve.png, P_curve.png, R_curve.png and
 * confusion_matrix.png into dir (created if missing). */
lupe_status eval_plots(const eval_ctx *e, const eval_result *r, const char *dir);
/* Class names as given to eval_new ("class N" where none were). */
const char *eval_class_name(const eval_ctx *e, int cls);

/* A line chart as a PNG: series k has n[k] points (x[k][i], y[k][i]).
 * Points that are not finite break the line. */
typedef struct eval_series {
    const char *name;        /* legend entry; NULL = not in the legend */
    const double *x, *y;
    int n;
    uint32_t color;          /* LUPE_RGB; 0 = the next palette colour */
    int width;               /* line width in pixels; 0 = 2 */
} eval_series;
lupe_status eval_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                            const eval_series *s, int ns);

/* The same with fixed axis ranges and size. A range with min >= max is
 * taken from the data; w, h of 0 mean 960 x 640. */
typedef struct eval_chart {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax;
    int w, h;
} eval_chart;
/* Draws the chart into a new RGB image (*out; free with lupe_img_free). */
lupe_status eval_chart_render(const eval_chart *c, const eval_series *s, int ns, lupe_img **out);
lupe_status eval_chart_save(const char *path, const eval_chart *c, const eval_series *s, int ns);

/* ---- Previews (src/eval/preview.c) --------------------------------------
 * Ground truth in green with the class name in a tab below the box;
 * predictions with score >= conf in class colours with "name 0.87" above.
 * names may be NULL (class numbers are shown). */
void eval_draw_boxes(lupe_img *im, const det_box *gt, int ngt, const det_pred *p, int np, float conf,
                     const char *const *names);
/* A copy of im with the boxes drawn, written to path (.png or .jpg). */
lupe_status eval_preview(const char *path, const lupe_img *im, const det_box *gt, int ngt, const det_pred *p,
                         int np, float conf, const char *const *names);
/* Grid of n images, cols per row (0 = about square), each scaled to fit a
 * cell x cell tile keeping its aspect; captions (may be NULL, or hold NULLs)
 * are written on the tiles. *out is a new RGB image. */
lupe_status eval_montage(const lupe_img *const *ims, const char *const *captions, int n, int cols, int cell,
                         lupe_img **out);

#endif
