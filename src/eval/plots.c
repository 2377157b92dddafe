/*
 * The evaluation plots of a run folder: precision-recall, F1, precision and
 * recall curves per class with the class mean, and the confusion matrix with
 * shaded cells and counts, written as PNG files.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/eval_internal.h"

#define MEAN_COLOR LUPE_RGB(20, 40, 120)
#define MANY_COLOR LUPE_RGB(170, 170, 170)
#define MAX_NAMED 10 /* past this many classes, per-class curves are gray and out of the legend */

typedef enum { K_PR, K_F1, K_P, K_R } curve_kind;

static const double *row_of(const eval_result *r, curve_kind k, int c)
{
    const double *base = k == K_PR ? r->pr : k == K_F1 ? r->f1_curve : k == K_P ? r->p_curve : r->r_curve;
    return base + (size_t)c * EVAL_NCURVE;
}

static lupe_status curve_plot(const eval_ctx *e, const eval_result *r, curve_kind kind, const char *path)
{
    static const char *const titles[] = {"Precision-recall curve (IoU 0.5)", "F1-confidence curve",
                                         "Precision-confidence curve", "Recall-confidence curve"};
    static const char *const xl[] = {"Recall", "Confidence", "Confidence", "Confidence"};
    static const char *const yl[] = {"Precision", "F1", "Precision", "Recall"};
    lupe_status st = LUPE_OK;
    const int nc = r->nc;
    double *grid = lupe_malloc(EVAL_NCURVE * sizeof *grid), *mean = lupe_calloc(EVAL_NCURVE, sizeof *mean);
    eval_series *s = lupe_calloc((size_t)nc + 1, sizeof *s);
    char (*names)[96] = lupe_calloc((size_t)nc + 1, sizeof *names);
    if (!grid || !mean || !s || !names) {
        st = lupe_err_ctx(LUPE_ENOMEM, "plot %s", path);
        goto out;
    }
    for (int i = 0; i < EVAL_NCURVE; i++) grid[i] = i / (double)(EVAL_NCURVE - 1);
    int ns = 0;
    const int named = r->ncls_gt <= MAX_NAMED;
    for (int c = 0; c < nc; c++) {
        if (!r->ngt[c]) continue;
        const double *y = row_of(r, kind, c);
        for (int i = 0; i < EVAL_NCURVE; i++) mean[i] += y[i] / r->ncls_gt;
        eval_series *q = &s[ns++];
        q->x = grid, q->y = y, q->n = EVAL_NCURVE, q->width = 2;
        if (named) {
            if (kind == K_PR)
                snprintf(names[c], sizeof names[c], "%s %.3f", eval_class_name(e, c), r->ap50[c]);
            else
                snprintf(names[c], sizeof names[c], "%s", eval_class_name(e, c));
            q->name = names[c];
        } else {
            q->color = MANY_COLOR, q->width = 1;
        }
    }
    /* The class mean, labelled as Ultralytics labels it: mAP50 for the PR
     * curve, otherwise the best mean value and the confidence there. */
    if (r->ncls_gt) {
        int best = 0;
        for (int i = 1; i < EVAL_NCURVE; i++)
            if (mean[i] > mean[best]) best = i;
        if (kind == K_PR)
            snprintf(names[nc], sizeof names[nc], "all classes %.3f mAP50", r->map50);
        else
            snprintf(names[nc], sizeof names[nc], "all classes %.2f at %.3f", mean[best], grid[best]);
        s[ns++] = (eval_series){names[nc], grid, mean, EVAL_NCURVE, MEAN_COLOR, 4};
    }
    eval_chart ch = {titles[kind], xl[kind], yl[kind], 0, 1, 0, 1, 960, 640};
    st = eval_chart_save(path, &ch, s, ns);
out:
    lupe_free(grid);
    lupe_free(mean);
    lupe_free(s);
    lupe_free(names);
    return st;
}

/* White to dark blue through a mid blue, by fraction f in [0, 1]. */
static uint32_t shade(double f)
{
    static const int stops[3][3] = {{247, 251, 255}, {107, 174, 214}, {8, 48, 107}};
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    int i = f < 0.5 ? 0 : 1;
    double t = f < 0.5 ? f * 2 : (f - 0.5) * 2;
    int c[3];
    for (int k = 0; k < 3; k++) c[k] = (int)lround(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * t);
    return LUPE_RGB(c[0], c[1], c[2]);
}

static lupe_status confusion_plot(const eval_ctx *e, const eval_result *r, const char *path)
{
    const int n = r->nc + 1, ink = LUPE_RGB(34, 34, 34);
    int cell = 640 / n;
    cell = cell > 140 ? 140 : cell < 6 ? 6 : cell;
    const int M = cell * n;
    if (M > 8192) return lupe_err(LUPE_ELIMIT, "confusion matrix of %d classes is too large to draw", r->nc);
    /* Names: the longest, capped, sets the margins; column names stand
     * upright when they do not fit across a cell. */
    const int ns = cell >= 40 ? 2 : 1, fh = 7 * ns;
    int namew = 0;
    for (int c = 0; c < n; c++) {
        int w = lupe_img_text_width(eval_class_name(e, c < r->nc ? c : -1), ns);
        if (w > namew) namew = w;
    }
    if (namew > 220) namew = 220;
    const int upright = namew > cell - 4;
    int left = 20 + 14 + 16 + namew + 10;
    const int top = 20 + 21 + 12 + 14 + 20, bottom = 10 + (upright ? namew : fh) + 16 + 14 + 20, right = 30;
    int W = left + M + right, H = top + M + bottom;
    if (W < 600) { /* room for the title lines; the matrix moves to the middle */
        left += (600 - W) / 2;
        W = 600;
    }
    lupe_img *im = lupe_img_new(W, H, 3);
    if (!im) return lupe_err_ctx(LUPE_ENOMEM, "plot %s", path);
    memset(im->data, 255, (size_t)W * H * 3);

    const int64_t *cm = r->confusion;
    for (int col = 0; col < n; col++) {
        int64_t sum = 0;
        for (int row = 0; row < n; row++) sum += cm[(size_t)row * n + col];
        for (int row = 0; row < n; row++) {
            int64_t v = cm[(size_t)row * n + col];
            double f = sum ? (double)v / (double)sum : 0;
            int x = left + col * cell, y = top + row * cell;
            if (row == n - 1 && col == n - 1) { /* background as background: not a thing that is counted */
                lupe_img_fill_rect(im, x, y, cell, cell, LUPE_RGB(236, 236, 236));
                continue;
            }
            lupe_img_fill_rect(im, x, y, cell, cell, shade(f));
            char num[32], frac[32];
            snprintf(num, sizeof num, "%" PRId64, v);
            snprintf(frac, sizeof frac, "%.2f", f);
            uint32_t tc = f > 0.5 ? LUPE_RGB(255, 255, 255) : (uint32_t)ink;
            /* The largest font the count fits in, none in cells too small. */
            int s = 0;
            if (cell >= 60 && lupe_img_text_width(num, 3) <= cell - 8)
                s = 3;
            else if (lupe_img_text_width(num, 2) <= cell - 6)
                s = 2;
            else if (cell >= 9 && lupe_img_text_width(num, 1) <= cell - 2)
                s = 1;
            if (!s) continue;
            int two = cell >= 70 && v; /* room for the column share under the count */
            int ty = y + cell / 2 - (two ? 7 * s / 2 + 9 : 7 * s / 2);
            eval__text_center(im, x + cell / 2, ty, num, s, tc);
            if (two) eval__text_center(im, x + cell / 2, ty + 7 * s + 6, frac, 2, tc);
        }
    }
    for (int i = 0; i <= n; i++) { /* cell borders */
        lupe_img_fill_rect(im, left + i * cell, top, 1, M + 1, LUPE_RGB(255, 255, 255));
        lupe_img_fill_rect(im, left, top + i * cell, M + 1, 1, LUPE_RGB(255, 255, 255));
    }
    lupe_img_draw_rect(im, left - 1, top - 1, M + 2, M + 2, 1, LUPE_RGB(90, 90, 90));
    for (int i = 0; i < n; i++) {
        char nm[256];
        snprintf(nm, sizeof nm, "%s", eval_class_name(e, i < r->nc ? i : -1));
        eval__text_fit(nm, ns, namew);
        int w = lupe_img_text_width(nm, ns);
        lupe_img_draw_text(im, left - 10 - w, top + i * cell + cell / 2 - fh / 2, nm, ns, ink);
        if (upright)
            eval__text_up(im, left + i * cell + cell / 2 - fh / 2, top + M + 10, nm, ns, ink);
        else
            eval__text_center(im, left + i * cell + cell / 2, top + M + 10, nm, ns, ink);
    }
    eval__text_center(im, W / 2, 20, "Confusion matrix", 3, ink);
    char sub[96];
    snprintf(sub, sizeof sub, "score > %.2f, IoU > %.2f; shade: share of column", EVAL_CM_CONF, EVAL_CM_IOU);
    eval__text_fit(sub, 2, W - 20);
    eval__text_center(im, W / 2, 20 + 21 + 12, sub, 2, ink);
    eval__text_center(im, left + M / 2, H - 20 - 14, "True", 2, ink);
    eval__text_up(im, 20, top + M / 2 - lupe_img_text_width("Predicted", 2) / 2, "Predicted", 2, ink);
    lupe_status st = lupe_img_save(im, path);
    lupe_img_free(im);
    if (st) return lupe_err_ctx(st, "writing %s", path);
    return LUPE_OK;
}

lupe_status eval_plots(const eval_ctx *e, const eval_result *r, const char *dir)
{
    static const char *const files[] = {"PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png"};
    lupe_status st = LUPE_OK;
    char *path = NULL;
    if (!e || !r || !dir) return lupe_err(LUPE_EARG, "eval_plots: missing context, result or folder");
    if (r->nc != eval__nc(e) || !r->pr || !r->confusion)
        return lupe_err(LUPE_EARG, "eval_plots: the result is not one of this context (%d classes, %d)", r->nc,
                        eval__nc(e));
    if ((st = lupe_mkdirs(dir))) return lupe_err_ctx(st, "eval_plots");
    for (int k = 0; k < 4; k++) {
        if (!(path = lupe_path_join(dir, files[k]))) return lupe_err_ctx(LUPE_ENOMEM, "eval_plots");
        st = curve_plot(e, r, (curve_kind)k, path);
        lupe_free(path);
        if (st) return st;
    }
    if (!(path = lupe_path_join(dir, "confusion_matrix.png"))) return lupe_err_ctx(LUPE_ENOMEM, "eval_plots");
    st = confusion_plot(e, r, path);
    lupe_free(path);
    return st;
}
