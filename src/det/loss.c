/*
 * The YOLOv8 training loss (Ultralytics' v8DetectionLoss) on the head
 * outputs: BCE against the assigner's soft targets, CIoU and DFL on the
 * positives, and d total / d outputs in their NHWC layout. Sized once in
 * det_loss_new; det_loss_compute allocates nothing. See docs/detector.md.
 */
#include <math.h>
#include <string.h>

#include "det/loss_internal.h"

#define MAX_GT_CAP (1 << 20)

void det_loss_cfg_default(det_loss_cfg *c)
{
    *c = (det_loss_cfg){.box_gain = 7.5f, .cls_gain = 0.5f, .dfl_gain = 1.5f, .topk = 10, .alpha = 0.5f, .beta = 6.0f,
                        .max_gt = 4096};
}

void det_loss_free(det_loss *l)
{
    if (!l) return;
    lupe_free(l->gt_of);
    lupe_free(l->tscore);
    lupe_free(l->metric);
    lupe_free(l->overlap);
    lupe_free(l->alpha);
    lupe_free(l->nsel);
    lupe_free(l->order);
    lupe_free(l->img_first);
    lupe_free(l->sel);
    lupe_free(l->sel_metric);
    lupe_free(l->sel_overlap);
    lupe_free(l->box_maxm);
    lupe_free(l->box_maxo);
    lupe_free(l);
}

static int finite_nonneg(float x)
{
    return isfinite(x) && x >= 0;
}

lupe_status det_loss_new(const det_arch *a, const det_loss_cfg *cfg, det_loss **out)
{
    lupe_status st = LUPE_OK;
    det_loss *l = NULL;
    det_loss_cfg c;
    *out = NULL;
    if (cfg)
        c = *cfg;
    else
        det_loss_cfg_default(&c);
    if (!a || a->nc < 1 || a->batch < 1 || a->imgsz < 32 || a->imgsz % 32)
        return lupe_err(LUPE_EARG, "det_loss: the architecture is not initialised (det_arch_init)");
    if (!finite_nonneg(c.box_gain) || !finite_nonneg(c.cls_gain) || !finite_nonneg(c.dfl_gain))
        return lupe_err(LUPE_EARG, "det_loss: gains box %g, cls %g, dfl %g must be finite and not negative",
                        (double)c.box_gain, (double)c.cls_gain, (double)c.dfl_gain);
    if (c.topk < 1 || c.topk > DET__MAX_TOPK)
        return lupe_err(LUPE_EARG, "det_loss: top-k %d is not in 1..%d", c.topk, DET__MAX_TOPK);
    if (!finite_nonneg(c.alpha) || !finite_nonneg(c.beta))
        return lupe_err(LUPE_EARG, "det_loss: alpha %g and beta %g must be finite and not negative", (double)c.alpha,
                        (double)c.beta);
    if (c.max_gt < 1 || c.max_gt > MAX_GT_CAP)
        return lupe_err(LUPE_EARG, "det_loss: max_gt %d is not in 1..%d", c.max_gt, MAX_GT_CAP);
    if (!(l = lupe_calloc(1, sizeof *l))) return lupe_err(LUPE_ENOMEM, "det_loss: out of memory");
    l->a = *a;
    l->c = c;
    l->no = DET__NBOX + a->nc;
    for (int lv = 0; lv < DET_LEVELS; lv++) {
        l->grid[lv] = a->imgsz >> (3 + lv);
        l->first[lv] = l->na;
        l->na += l->grid[lv] * l->grid[lv];
    }
    l->first[DET_LEVELS] = l->na;
    size_t nb = (size_t)a->batch * l->na, ng = (size_t)c.max_gt, nk = ng * (size_t)c.topk;
    l->gt_of = lupe_malloc(nb * sizeof *l->gt_of);
    l->tscore = lupe_calloc(nb, sizeof *l->tscore);
    l->metric = lupe_malloc(nb * sizeof *l->metric);
    l->overlap = lupe_malloc(nb * sizeof *l->overlap);
    l->alpha = lupe_calloc(nb, sizeof *l->alpha);
    l->nsel = lupe_malloc(nb * sizeof *l->nsel);
    l->order = lupe_malloc(ng * sizeof *l->order);
    l->img_first = lupe_calloc((size_t)a->batch + 1, sizeof *l->img_first);
    l->sel = lupe_malloc(nk * sizeof *l->sel);
    l->sel_metric = lupe_malloc(nk * sizeof *l->sel_metric);
    l->sel_overlap = lupe_malloc(nk * sizeof *l->sel_overlap);
    l->box_maxm = lupe_malloc(ng * sizeof *l->box_maxm);
    l->box_maxo = lupe_malloc(ng * sizeof *l->box_maxo);
    if (!l->gt_of || !l->tscore || !l->metric || !l->overlap || !l->alpha || !l->nsel || !l->order || !l->img_first ||
        !l->sel || !l->sel_metric || !l->sel_overlap || !l->box_maxm || !l->box_maxo) {
        st = lupe_err(LUPE_ENOMEM, "det_loss: out of memory for %zu anchors and %d boxes", nb, c.max_gt);
        goto out;
    }
    for (size_t i = 0; i < nb; i++) l->gt_of[i] = -1;
    *out = l;
    l = NULL;
out:
    det_loss_free(l);
    return st;
}

void det__loss_freeze(det_loss *l, int on)
{
    l->frozen = on;
}

/* ---- geometry ----------------------------------------------------------- */

void det__decode(const float *row, double dist[4], double *prob, double *lse)
{
    for (int s = 0; s < 4; s++) {
        const float *x = row + s * DET_REG_MAX;
        double m = x[0], e[DET_REG_MAX], sum = 0, d = 0;
        for (int k = 1; k < DET_REG_MAX; k++)
            if (x[k] > m) m = x[k];
        for (int k = 0; k < DET_REG_MAX; k++) {
            e[k] = exp(x[k] - m);
            sum += e[k];
            d += k * e[k];
        }
        dist[s] = d / sum;
        if (prob)
            for (int k = 0; k < DET_REG_MAX; k++) prob[s * DET_REG_MAX + k] = e[k] / sum;
        if (lse) lse[s] = m + log(sum);
    }
}

#define EPS DET__CIOU_EPS
#define V_SCALE (4.0 / (M_PI * M_PI))

double det__ciou_terms(const double p[4], const double t[4], double *dist, double *v)
{
    double w1 = p[2] - p[0], h1 = p[3] - p[1] + EPS, w2 = t[2] - t[0], h2 = t[3] - t[1] + EPS;
    double iw = fmin(p[2], t[2]) - fmax(p[0], t[0]), ih = fmin(p[3], t[3]) - fmax(p[1], t[1]);
    if (iw < 0) iw = 0;
    if (ih < 0) ih = 0;
    double inter = iw * ih, uni = w1 * h1 + w2 * h2 - inter + EPS;
    double cw = fmax(p[2], t[2]) - fmin(p[0], t[0]), ch = fmax(p[3], t[3]) - fmin(p[1], t[1]);
    double c2 = cw * cw + ch * ch + EPS;
    double dx = t[0] + t[2] - p[0] - p[2], dy = t[1] + t[3] - p[1] - p[3];
    double da = atan(w2 / h2) - atan(w1 / h1);
    *dist = (dx * dx + dy * dy) / 4 / c2;
    *v = V_SCALE * da * da;
    return inter / uni;
}

double det__ciou(const double p[4], const double t[4], double *alpha)
{
    double dist, v, iou = det__ciou_terms(p, t, &dist, &v);
    double al = v / (v - iou + (1 + EPS));
    if (alpha) *alpha = al;
    return iou - (dist + v * al);
}

/* The derivative of iou - dist - alpha * v term by term. Where a min or
 * max ties, the target's side is taken as the larger (measure zero); a
 * clamped intersection side passes no gradient below 0, as PyTorch's clamp. */
void det__ciou_grad(const double p[4], const double t[4], double alpha, double dp[4])
{
    double w1 = p[2] - p[0], h1 = p[3] - p[1] + EPS, w2 = t[2] - t[0], h2 = t[3] - t[1] + EPS;
    double iw_raw = fmin(p[2], t[2]) - fmax(p[0], t[0]), ih_raw = fmin(p[3], t[3]) - fmax(p[1], t[1]);
    double iw = iw_raw > 0 ? iw_raw : 0, ih = ih_raw > 0 ? ih_raw : 0;
    double inter = iw * ih, uni = w1 * h1 + w2 * h2 - inter + EPS;
    double cw = fmax(p[2], t[2]) - fmin(p[0], t[0]), ch = fmax(p[3], t[3]) - fmin(p[1], t[1]);
    double c2 = cw * cw + ch * ch + EPS;
    double dx = t[0] + t[2] - p[0] - p[2], dy = t[1] + t[3] - p[1] - p[3];
    double rho2 = (dx * dx + dy * dy) / 4;
    double da = atan(w2 / h2) - atan(w1 / h1);

    /* d inter / d p through the clamped side lengths */
    double giw = iw_raw >= 0 ? ih : 0, gih = ih_raw >= 0 ? iw : 0;
    double dinter[4] = {-giw * (p[0] > t[0]), -gih * (p[1] > t[1]), giw * (p[2] < t[2]), gih * (p[3] < t[3])};
    /* d (w1 h1) / d p */
    double darea[4] = {-h1, -w1, h1, w1};
    /* d c2 / d p through the enclosing box */
    double dc2[4] = {-2 * cw * (p[0] < t[0]), -2 * ch * (p[1] < t[1]), 2 * cw * (p[2] > t[2]), 2 * ch * (p[3] > t[3])};
    double drho2[4] = {-dx / 2, -dy / 2, -dx / 2, -dy / 2};
    /* d v / d p through w1 and h1: v = V_SCALE (atan(w2/h2) - atan(w1/h1))^2 */
    double q = 2 * V_SCALE * da / (w1 * w1 + h1 * h1);
    double dvw = -q * h1, dvh = q * w1; /* d v / d w1, d v / d h1 */
    double dv[4] = {-dvw, -dvh, dvw, dvh};
    double a = 1 / uni + inter / (uni * uni), b = inter / (uni * uni);
    for (int i = 0; i < 4; i++) {
        double diou = dinter[i] * a - darea[i] * b;
        double ddist = drho2[i] / c2 - rho2 * dc2[i] / (c2 * c2);
        dp[i] = diou - ddist - alpha * dv[i];
    }
}

/* ---- the loss ----------------------------------------------------------- */

static lupe_status check_boxes(const det_loss *l, const det_box *gt, int ngt)
{
    if (ngt < 0 || (ngt > 0 && !gt))
        return lupe_err(LUPE_EARG, "det_loss: %d ground-truth boxes at %p", ngt, (const void *)gt);
    if (ngt > l->c.max_gt)
        return lupe_err(LUPE_ELIMIT, "det_loss: %d ground-truth boxes in the batch; the loss holds %d "
                        "(det_loss_cfg.max_gt)", ngt, l->c.max_gt);
    for (int i = 0; i < ngt; i++) {
        const det_box *g = &gt[i];
        if (g->img < 0 || g->img >= l->a.batch)
            return lupe_err(LUPE_EARG, "det_loss: box %d is in image %d of a batch of %d", i, g->img, l->a.batch);
        if (g->cls < 0 || g->cls >= l->a.nc)
            return lupe_err(LUPE_EARG, "det_loss: box %d has class %d of %d", i, g->cls, l->a.nc);
        if (!isfinite(g->x1) || !isfinite(g->y1) || !isfinite(g->x2) || !isfinite(g->y2) || g->x2 < g->x1 ||
            g->y2 < g->y1)
            return lupe_err(LUPE_EARG, "det_loss: box %d (%g %g %g %g) is not finite corners x1 <= x2, y1 <= y2", i,
                            (double)g->x1, (double)g->y1, (double)g->x2, (double)g->y2);
    }
    return LUPE_OK;
}

/* Box and DFL loss of a positive anchor (unweighted sums, times its
 * target score w); with grow, writes the box-distribution gradient.
 * gbox and gdfl are d total / d (box loss sum) and d total / d (dfl sum). */
static void positive(det_loss *l, size_t ia, int a, const float *row, float *grow, const det_box *g, double gbox,
                     double gdfl, double *box, double *dfl)
{
    double d[4], prob[DET__NBOX], lse[4], cx, cy, st, al;
    det__decode(row, d, prob, lse);
    det__anchor(l, a, &cx, &cy, &st);
    /* Both boxes in grid units, as Ultralytics' BboxLoss. */
    const double pb[4] = {cx - d[0], cy - d[1], cx + d[2], cy + d[3]};
    const double tb[4] = {g->x1 / st, g->y1 / st, g->x2 / st, g->y2 / st};
    double dist, v, iou = det__ciou_terms(pb, tb, &dist, &v);
    if (l->frozen)
        al = l->alpha[ia];
    else
        al = l->alpha[ia] = v / (v - iou + (1 + EPS));
    const double w = l->tscore[ia];
    *box += (1 - (iou - (dist + v * al))) * w;
    /* DFL: the target distance of each side split between its two
     * neighbouring bins, cross-entropy on both, weighted by nearness. */
    const double tgt[4] = {cx - tb[0], cy - tb[1], tb[2] - cx, tb[3] - cy};
    int tl[4];
    double wl[4], wr[4], sum = 0;
    for (int s = 0; s < 4; s++) {
        double t = tgt[s] < 0 ? 0 : tgt[s] > DET__DFL_MAX ? DET__DFL_MAX : tgt[s];
        tl[s] = (int)t;
        wl[s] = tl[s] + 1 - t;
        wr[s] = 1 - wl[s];
        const float *x = row + s * DET_REG_MAX;
        sum += (lse[s] - x[tl[s]]) * wl[s] + (lse[s] - x[tl[s] + 1]) * wr[s];
    }
    *dfl += sum / 4 * w;
    if (!grow) return;
    double dp[4];
    det__ciou_grad(pb, tb, al, dp);
    /* d total / d distance of each side: x1 = cx - d_l, y1 = cy - d_t,
     * x2 = cx + d_r, y2 = cy + d_b, and the loss is 1 - CIoU. */
    const double gb = -w * gbox, gd = w * gdfl / 4;
    const double dd[4] = {-dp[0] * gb, -dp[1] * gb, dp[2] * gb, dp[3] * gb};
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < DET_REG_MAX; k++) {
            double p = prob[s * DET_REG_MAX + k];
            double hot = (k == tl[s] ? wl[s] : 0) + (k == tl[s] + 1 ? wr[s] : 0);
            grow[s * DET_REG_MAX + k] = (float)(dd[s] * p * (k - d[s]) + gd * (p - hot));
        }
}

lupe_status det_loss_compute(det_loss *l, const float *const outs[DET_LEVELS], float *const grads[DET_LEVELS],
                             const det_box *gt, int ngt, det_loss_parts *parts)
{
    return det_loss_compute_n(l, outs, grads, gt, ngt, l ? l->a.batch : 0, parts);
}

lupe_status det_loss_compute_n(det_loss *l, const float *const outs[DET_LEVELS], float *const grads[DET_LEVELS],
                               const det_box *gt, int ngt, int nimg, det_loss_parts *parts)
{
    lupe_status st;
    if (!l || !parts) return lupe_err(LUPE_EARG, "det_loss: no loss or no parts to write");
    if (nimg < 1 || nimg > l->a.batch)
        return lupe_err(LUPE_EARG, "det_loss: %d images asked of a batch of %d", nimg, l->a.batch);
    memset(parts, 0, sizeof *parts);
    for (int lv = 0; lv < DET_LEVELS; lv++)
        if (!outs || !outs[lv] || (grads && !grads[lv]))
            return lupe_err(LUPE_EARG, "det_loss: the head output or gradient of level %d is missing", lv);
    if ((st = check_boxes(l, gt, ngt))) return st;
    for (int i = 0; i < ngt; i++)
        if (gt[i].img >= nimg)
            return lupe_err(LUPE_EARG, "det_loss: box %d is in image %d, past the %d images asked", i, gt[i].img, nimg);
    const int B = nimg, na = l->na, nc = l->a.nc;
    int npos = 0;
    if (!l->frozen) {
        det__group(l, gt, ngt);
        for (int b = 0; b < B; b++) npos += det__assign_image(l, b, outs, gt);
    } else {
        for (size_t i = 0; i < (size_t)B * na; i++) npos += l->gt_of[i] >= 0;
    }
    double tss = 0;
    for (size_t i = 0; i < (size_t)B * na; i++) tss += l->tscore[i];
    if (tss < 1) tss = 1;
    /* d total / d (each loss sum): total = batch * sum of gain * sum / tss */
    const double k = B / tss, gcls = l->c.cls_gain * k, gbox = l->c.box_gain * k, gdfl = l->c.dfl_gain * k;
    double box = 0, cls = 0, dfl = 0;
    for (int b = 0; b < B; b++)
        for (int a = 0; a < na; a++) {
            size_t ia = (size_t)b * na + a;
            int lv;
            size_t r = det__row(l, b, a, &lv);
            const float *row = outs[lv] + r;
            float *grow = grads ? grads[lv] + r : NULL;
            int j = l->gt_of[ia];
            int tc = j >= 0 ? gt[j].cls : -1;
            for (int c = 0; c < nc; c++) {
                /* BCE with logits, stably: max(x, 0) - x t + log(1 + e^-|x|) */
                double x = row[DET__NBOX + c], t = c == tc ? l->tscore[ia] : 0, e = exp(-fabs(x));
                cls += (x > 0 ? x : 0) - x * t + log1p(e);
                if (grow) grow[DET__NBOX + c] = (float)(((x >= 0 ? 1 : e) / (1 + e) - t) * gcls);
            }
            if (j >= 0)
                positive(l, ia, a, row, grow, &gt[j], gbox, gdfl, &box, &dfl);
            else if (grow)
                memset(grow, 0, DET__NBOX * sizeof *grow);
        }
    parts->box = (float)(l->c.box_gain * box / tss);
    parts->cls = (float)(l->c.cls_gain * cls / tss);
    parts->dfl = (float)(l->c.dfl_gain * dfl / tss);
    l->total = (l->c.box_gain * box + l->c.cls_gain * cls + l->c.dfl_gain * dfl) / tss * B;
    parts->total = (float)l->total;
    parts->npos = npos;
    return LUPE_OK;
}
