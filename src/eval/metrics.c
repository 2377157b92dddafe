/*
 * Detection metrics: predictions are matched to ground truth per image as
 * they are added (COCO's greedy matching by score at ten IoU thresholds),
 * then eval_compute builds per-class precision/recall, 101-point AP, the
 * F1-optimal confidence and a confusion matrix. Definitions: docs/evaluation.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_internal.h"

/* Per-image caps: the matching scratch grows with the image's boxes. */
#define EVAL_MAX_IMAGE_GT (1 << 20)
#define EVAL_MAX_IMAGE_PAIRS ((int64_t)1 << 26)

/* One prediction as the metrics need it: the box is gone after matching. */
typedef struct rec {
    float score;
    int32_t cls;
    uint32_t seq; /* order of arrival: breaks ties of score */
    uint16_t tp;  /* bit k: a true positive at IoU threshold k */
} rec;

typedef struct ranked {
    float score;
    int idx;
} ranked;

typedef struct pair {
    double iou;
    int p, g;
} pair;

struct eval_ctx {
    int nc;
    char **names;
    rec *rec;
    size_t n, cap;
    int64_t *ngt;  /* [nc] */
    int64_t *cm;   /* [(nc+1)^2], row = predicted, column = true */
    int nimages;
    /* Scratch of eval_add, kept between calls and grown to the largest image. */
    ranked *order;
    size_t order_cap;
    uint8_t *used;  /* [EVAL_NIOU][ngt] */
    size_t used_cap;
    pair *pairs;
    size_t pairs_cap;
    uint8_t *pmatched, *gmatched;
    size_t pm_cap, gm_cap;
};

double eval__iou_threshold(int k)
{
    return 0.5 + 0.05 * k;
}

/* In double from the float corners, in one fixed order of operations, so
 * the Python oracle (tools/ref/ap.py) gets the same bits. */
static double box_iou(float ax1, float ay1, float ax2, float ay2, float bx1, float by1, float bx2, float by2)
{
    double iw = (double)(ax2 < bx2 ? ax2 : bx2) - (double)(ax1 > bx1 ? ax1 : bx1);
    double ih = (double)(ay2 < by2 ? ay2 : by2) - (double)(ay1 > by1 ? ay1 : by1);
    if (!(iw > 0) || !(ih > 0)) return 0.0;
    double inter = iw * ih;
    double uni = ((double)ax2 - ax1) * ((double)ay2 - ay1) + ((double)bx2 - bx1) * ((double)by2 - by1) - inter;
    return uni > 0 ? inter / uni : 0.0;
}

static double pg_iou(const det_pred *p, const det_box *g)
{
    return box_iou(p->x1, p->y1, p->x2, p->y2, g->x1, g->y1, g->x2, g->y2);
}

lupe_status eval_new(int nc, const char *const *class_names, eval_ctx **out)
{
    eval_ctx *e = NULL;
    lupe_status st = LUPE_OK;
    if (!out) return lupe_err(LUPE_EARG, "eval_new: no output pointer");
    *out = NULL;
    if (nc < 1 || nc > 1000) return lupe_err(LUPE_EARG, "eval_new: %d classes; 1 to 1000 are supported", nc);
    if (!(e = lupe_calloc(1, sizeof *e))) return lupe_err_ctx(LUPE_ENOMEM, "eval_new");
    e->nc = nc;
    e->names = lupe_calloc((size_t)nc, sizeof *e->names);
    e->ngt = lupe_calloc((size_t)nc, sizeof *e->ngt);
    e->cm = lupe_calloc((size_t)(nc + 1) * (nc + 1), sizeof *e->cm);
    if (!e->names || !e->ngt || !e->cm) {
        st = lupe_err_ctx(LUPE_ENOMEM, "eval_new: %d classes", nc);
        goto out;
    }
    for (int c = 0; c < nc; c++) {
        const char *nm = class_names ? class_names[c] : NULL;
        e->names[c] = nm ? lupe_strdup(nm) : lupe_asprintf("class %d", c);
        if (!e->names[c]) {
            st = lupe_err_ctx(LUPE_ENOMEM, "eval_new: class names");
            goto out;
        }
    }
    *out = e;
    e = NULL;
out:
    eval_free(e);
    return st;
}

void eval_free(eval_ctx *e)
{
    if (!e) return;
    if (e->names)
        for (int c = 0; c < e->nc; c++) lupe_free(e->names[c]);
    lupe_free(e->names);
    lupe_free(e->rec);
    lupe_free(e->ngt);
    lupe_free(e->cm);
    lupe_free(e->order);
    lupe_free(e->used);
    lupe_free(e->pairs);
    lupe_free(e->pmatched);
    lupe_free(e->gmatched);
    lupe_free(e);
}

const char *eval_class_name(const eval_ctx *e, int cls)
{
    return e && cls >= 0 && cls < e->nc ? e->names[cls] : "background";
}

int eval__nc(const eval_ctx *e)
{
    return e->nc;
}

/* Grows *buf to hold n items of size sz (doubling, so images of one size
 * stop allocating after the first). */
static lupe_status grow(void **buf, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap) return LUPE_OK;
    size_t nc = *cap ? *cap : 64;
    while (nc < n) nc *= 2;
    void *p = lupe_realloc(*buf, nc * sz);
    if (!p) return lupe_err_ctx(LUPE_ENOMEM, "evaluation scratch for %zu items", n);
    *buf = p;
    *cap = nc;
    return LUPE_OK;
}

static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->iou != y->iou) return x->iou > y->iou ? -1 : 1;
    if (x->p != y->p) return x->p < y->p ? -1 : 1;
    return (x->g > y->g) - (x->g < y->g);
}

static lupe_status check_input(const eval_ctx *e, const det_pred *p, int np, const det_box *gt, int ngt)
{
    if (np < 0 || ngt < 0) return lupe_err(LUPE_EARG, "eval_add: negative count (%d predictions, %d boxes)", np, ngt);
    if ((np && !p) || (ngt && !gt)) return lupe_err(LUPE_EARG, "eval_add: a count without its array");
    for (int i = 0; i < np; i++) {
        if (p[i].cls < 0 || p[i].cls >= e->nc)
            return lupe_err(LUPE_EARG, "eval_add: prediction %d has class %d, outside 0..%d", i, p[i].cls, e->nc - 1);
        if (isnan(p[i].score)) return lupe_err(LUPE_EARG, "eval_add: prediction %d has a NaN score", i);
    }
    for (int g = 0; g < ngt; g++)
        if (gt[g].cls < 0 || gt[g].cls >= e->nc)
            return lupe_err(LUPE_EARG, "eval_add: ground-truth box %d has class %d, outside 0..%d", g, gt[g].cls,
                            e->nc - 1);
    if ((size_t)np > EVAL_MAX_PREDS - e->n)
        return lupe_err(LUPE_ELIMIT, "eval_add: more than %d predictions in one evaluation", EVAL_MAX_PREDS);
    if (ngt > EVAL_MAX_IMAGE_GT || (int64_t)np * ngt > EVAL_MAX_IMAGE_PAIRS)
        return lupe_err(LUPE_ELIMIT, "eval_add: image with %d predictions and %d ground-truth boxes is past the cap",
                        np, ngt);
    return LUPE_OK;
}

/* The confusion matrix of one image: class-agnostic matching of predictions
 * over EVAL_CM_CONF to boxes they overlap by more than EVAL_CM_IOU, greedily
 * by IoU, one to one. */
static lupe_status confusion_add(eval_ctx *e, const det_pred *p, int np, const det_box *gt, int ngt)
{
    lupe_status st;
    size_t npairs = 0;
    if ((st = grow((void **)&e->pmatched, &e->pm_cap, (size_t)np + 1, 1))) return st;
    if ((st = grow((void **)&e->gmatched, &e->gm_cap, (size_t)ngt + 1, 1))) return st;
    memset(e->pmatched, 0, (size_t)np);
    memset(e->gmatched, 0, (size_t)ngt);
    for (int i = 0; i < np; i++) {
        if (!(p[i].score > EVAL_CM_CONF)) continue;
        for (int g = 0; g < ngt; g++) {
            double v = pg_iou(&p[i], &gt[g]);
            if (!(v > EVAL_CM_IOU)) continue;
            if ((st = grow((void **)&e->pairs, &e->pairs_cap, npairs + 1, sizeof *e->pairs))) return st;
            e->pairs[npairs++] = (pair){v, i, g};
        }
    }
    if (npairs > 1) qsort(e->pairs, npairs, sizeof *e->pairs, pair_cmp);
    const int nb = e->nc; /* the background row and column */
    const size_t stride = (size_t)e->nc + 1;
    for (size_t k = 0; k < npairs; k++) {
        const pair *m = &e->pairs[k];
        if (e->pmatched[m->p] || e->gmatched[m->g]) continue;
        e->pmatched[m->p] = e->gmatched[m->g] = 1;
        e->cm[(size_t)p[m->p].cls * stride + (size_t)gt[m->g].cls]++;
    }
    for (int g = 0; g < ngt; g++)
        if (!e->gmatched[g]) e->cm[(size_t)nb * stride + (size_t)gt[g].cls]++; /* missed */
    for (int i = 0; i < np; i++)
        if (p[i].score > EVAL_CM_CONF && !e->pmatched[i]) e->cm[(size_t)p[i].cls * stride + (size_t)nb]++;
    return LUPE_OK;
}

lupe_status eval_add(eval_ctx *e, const det_pred *p, int np, const det_box *gt, int ngt)
{
    lupe_status st;
    if (!e) return lupe_err(LUPE_EARG, "eval_add: no context");
    if ((st = check_input(e, p, np, gt, ngt))) return st;
    if ((st = grow((void **)&e->rec, &e->cap, e->n + (size_t)np, sizeof *e->rec))) return st;
    if ((st = grow((void **)&e->order, &e->order_cap, (size_t)np + 1, sizeof *e->order))) return st;
    if ((st = grow((void **)&e->used, &e->used_cap, (size_t)EVAL_NIOU * ngt + 1, 1))) return st;
    if ((st = confusion_add(e, p, np, gt, ngt))) return st;

    /* COCO's matching: predictions in score order (ties: input order), each
     * takes the unmatched box of its class with the highest IoU at or over
     * the threshold (ties: the first box). The ten thresholds keep separate
     * "used" flags, so one pass over the pairs serves all of them. */
    for (int i = 0; i < np; i++) e->order[i] = (ranked){p[i].score, i};
    if (np > 1) qsort(e->order, (size_t)np, sizeof *e->order, ranked_cmp);
    memset(e->used, 0, (size_t)EVAL_NIOU * ngt);
    double thr[EVAL_NIOU];
    for (int k = 0; k < EVAL_NIOU; k++) thr[k] = eval__iou_threshold(k);
    for (int r = 0; r < np; r++) {
        const det_pred *d = &p[e->order[r].idx];
        int best[EVAL_NIOU];
        double bestv[EVAL_NIOU];
        for (int k = 0; k < EVAL_NIOU; k++) best[k] = -1, bestv[k] = 0;
        for (int g = 0; g < ngt; g++) {
            if (gt[g].cls != d->cls) continue;
            double v = pg_iou(d, &gt[g]);
            if (!(v >= thr[0])) continue;
            for (int k = 0; k < EVAL_NIOU && v >= thr[k]; k++) {
                if (e->used[(size_t)k * ngt + g]) continue;
                if (best[k] < 0 || v > bestv[k]) best[k] = g, bestv[k] = v;
            }
        }
        uint16_t tp = 0;
        for (int k = 0; k < EVAL_NIOU; k++) {
            if (best[k] < 0) continue;
            e->used[(size_t)k * ngt + best[k]] = 1;
            tp |= (uint16_t)(1u << k);
        }
        /* Stored in input order: seq is the arrival order across images. */
        size_t at = e->n + (size_t)e->order[r].idx;
        e->rec[at] = (rec){d->score, d->cls, (uint32_t)at, tp};
    }
    e->n += (size_t)np;
    for (int g = 0; g < ngt; g++) e->ngt[gt[g].cls]++;
    e->nimages++;
    return LUPE_OK;
}

/* numpy.interp's definition for nondecreasing xs (ties allowed): left of
 * xs[0] gives left, at or right of xs[n-1] gives ys[n-1], otherwise the
 * line between the last xs[j] <= q and xs[j+1] (> q, so never a division
 * by zero). */
double eval__interp(double q, const double *xs, const double *ys, size_t n, double left)
{
    if (q < xs[0]) return left;
    if (q >= xs[n - 1]) return ys[n - 1];
    size_t lo = 0, hi = n - 1; /* xs[lo] <= q < xs[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (xs[mid] <= q)
            lo = mid;
        else
            hi = mid;
    }
    return ys[lo] + (q - xs[lo]) * (ys[hi] - ys[lo]) / (xs[hi] - xs[lo]);
}

/* AP of one class at one threshold, as Ultralytics' compute_ap ("interp"):
 * recall and precision of the ranked predictions framed by the points
 * (0, 1) and (1, 0), the precision made non-increasing from the right (the
 * envelope), sampled at recall 0, 0.01, ..., 1 by linear interpolation and
 * integrated with the trapezoid rule. mrec and mpre hold n + 2 values and
 * come back holding the frame and the envelope. */
double eval__ap101(const double *recall, const double *precision, size_t n, double *mrec, double *mpre)
{
    mrec[0] = 0.0, mpre[0] = 1.0;
    for (size_t j = 0; j < n; j++) mrec[j + 1] = recall[j], mpre[j + 1] = precision[j];
    mrec[n + 1] = 1.0, mpre[n + 1] = 0.0;
    for (size_t j = n + 1; j-- > 0;)
        if (mpre[j + 1] > mpre[j]) mpre[j] = mpre[j + 1];
    double area = 0.0, x0 = 0.0, y0 = eval__interp(0.0, mrec, mpre, n + 2, 1.0);
    for (int i = 1; i <= 100; i++) {
        double x1 = i / 100.0, y1 = eval__interp(x1, mrec, mpre, n + 2, 1.0);
        area += (x1 - x0) * (y0 + y1) / 2.0;
        x0 = x1, y0 = y1;
    }
    return area;
}

static int rec_cmp(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

void eval_result_free(eval_result *r)
{
    if (!r) return;
    lupe_free(r->ap50);
    lupe_free(r->ap);
    lupe_free(r->p_class);
    lupe_free(r->r_class);
    lupe_free(r->ngt);
    lupe_free(r->confusion);
    lupe_free(r->ap_iou);
    lupe_free(r->pr);
    lupe_free(r->p_curve);
    lupe_free(r->r_curve);
    lupe_free(r->f1_curve);
    memset(r, 0, sizeof *r);
}

static lupe_status result_alloc(eval_result *r, int nc)
{
    size_t n = (size_t)nc, nk = (size_t)nc * EVAL_NCURVE;
    r->nc = nc;
    r->ap50 = lupe_calloc(n, sizeof *r->ap50);
    r->ap = lupe_calloc(n, sizeof *r->ap);
    r->p_class = lupe_calloc(n, sizeof *r->p_class);
    r->r_class = lupe_calloc(n, sizeof *r->r_class);
    r->ngt = lupe_calloc(n, sizeof *r->ngt);
    r->confusion = lupe_calloc((n + 1) * (n + 1), sizeof *r->confusion);
    r->ap_iou = lupe_calloc(n * EVAL_NIOU, sizeof *r->ap_iou);
    r->pr = lupe_calloc(nk, sizeof *r->pr);
    r->p_curve = lupe_calloc(nk, sizeof *r->p_curve);
    r->r_curve = lupe_calloc(nk, sizeof *r->r_curve);
    r->f1_curve = lupe_calloc(nk, sizeof *r->f1_curve);
    if (!r->ap50 || !r->ap || !r->p_class || !r->r_class || !r->ngt || !r->confusion || !r->ap_iou || !r->pr ||
        !r->p_curve || !r->r_curve || !r->f1_curve)
        return lupe_err_ctx(LUPE_ENOMEM, "evaluation result for %d classes", nc);
    return LUPE_OK;
}

/* Scratch of eval_compute for one class's n ranked predictions. */
typedef struct work {
    double *negconf, *recall, *precision, *rec0, *prec0, *mrec, *mpre;
} work;

static void class_metrics(eval_result *r, int c, const rec *pr, size_t n, int64_t ngt, const work *w)
{
    double *pr_row = r->pr + (size_t)c * EVAL_NCURVE, *pc = r->p_curve + (size_t)c * EVAL_NCURVE;
    double *rc = r->r_curve + (size_t)c * EVAL_NCURVE, *fc = r->f1_curve + (size_t)c * EVAL_NCURVE;
    for (size_t j = 0; j < n; j++) w->negconf[j] = -(double)pr[j].score;
    double sum = 0.0;
    for (int k = 0; k < EVAL_NIOU; k++) {
        double tpc = 0.0, fpc = 0.0;
        for (size_t j = 0; j < n; j++) {
            if (pr[j].tp >> k & 1)
                tpc += 1.0;
            else
                fpc += 1.0;
            w->recall[j] = tpc / (double)ngt;
            w->precision[j] = tpc / (tpc + fpc);
        }
        double ap = eval__ap101(w->recall, w->precision, n, w->mrec, w->mpre);
        r->ap_iou[(size_t)c * EVAL_NIOU + (size_t)k] = ap;
        sum += ap;
        if (k == 0) {
            memcpy(w->rec0, w->recall, n * sizeof *w->rec0);
            memcpy(w->prec0, w->precision, n * sizeof *w->prec0);
            for (int i = 0; i < EVAL_NCURVE; i++)
                pr_row[i] = eval__interp(i / (double)(EVAL_NCURVE - 1), w->mrec, w->mpre, n + 2, 1.0);
        }
    }
    r->ap50[c] = r->ap_iou[(size_t)c * EVAL_NIOU];
    r->ap[c] = sum / EVAL_NIOU;
    /* Precision and recall at confidence x: interpolated between the ranked
     * predictions' scores; above the best score precision is 1 and recall 0. */
    for (int i = 0; i < EVAL_NCURVE; i++) {
        double q = -(i / (double)(EVAL_NCURVE - 1));
        double p = eval__interp(q, w->negconf, w->prec0, n, 1.0);
        double rr = eval__interp(q, w->negconf, w->rec0, n, 0.0);
        pc[i] = p, rc[i] = rr;
        fc[i] = p + rr > 0 ? 2.0 * p * rr / (p + rr) : 0.0;
    }
}

lupe_status eval_compute(eval_ctx *e, eval_result *r)
{
    lupe_status st = LUPE_OK;
    rec *sorted = NULL, *tmp = NULL;
    size_t *start = NULL, *fill = NULL;
    work w = {0};
    double *buf = NULL;
    if (!r) return lupe_err(LUPE_EARG, "eval_compute: no result");
    memset(r, 0, sizeof *r);
    if (!e) return lupe_err(LUPE_EARG, "eval_compute: no context");
    const int nc = e->nc;
    if ((st = result_alloc(r, nc))) goto out;

    /* Ranked by score (ties: arrival), then grouped by class keeping rank. */
    size_t n = e->n;
    sorted = lupe_malloc((n ? n : 1) * sizeof *sorted);
    tmp = lupe_malloc((n ? n : 1) * sizeof *tmp);
    start = lupe_calloc((size_t)nc + 1, sizeof *start);
    fill = lupe_calloc((size_t)nc + 1, sizeof *fill);
    if (!sorted || !tmp || !start || !fill) {
        st = lupe_err_ctx(LUPE_ENOMEM, "eval_compute: ranking %zu predictions", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) start[e->rec[i].cls + 1]++;
    for (int c = 0; c < nc; c++) start[c + 1] += start[c];
    if (n) memcpy(tmp, e->rec, n * sizeof *tmp); /* rec is NULL before the first prediction */
    if (n > 1) qsort(tmp, n, sizeof *tmp, rec_cmp);
    memcpy(fill, start, ((size_t)nc + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++) sorted[fill[tmp[i].cls]++] = tmp[i];
    size_t maxn = 0;
    for (int c = 0; c < nc; c++)
        if (start[c + 1] - start[c] > maxn) maxn = start[c + 1] - start[c];
    if (!(buf = lupe_malloc((7 * maxn + 4) * sizeof *buf))) {
        st = lupe_err_ctx(LUPE_ENOMEM, "eval_compute: curves of %zu predictions", maxn);
        goto out;
    }
    w.negconf = buf, w.recall = buf + maxn, w.precision = buf + 2 * maxn, w.rec0 = buf + 3 * maxn;
    w.prec0 = buf + 4 * maxn, w.mrec = buf + 5 * maxn, w.mpre = buf + 6 * maxn + 2;

    int ncls = 0;
    for (int c = 0; c < nc; c++) {
        r->ngt[c] = (int)e->ngt[c];
        size_t nci = start[c + 1] - start[c];
        if (e->ngt[c] == 0) continue; /* no AP without ground truth; curves stay 0 */
        ncls++;
        if (nci) class_metrics(r, c, sorted + start[c], nci, e->ngt[c], &w);
    }
    r->ncls_gt = ncls;
    r->nimages = e->nimages;
    r->npred = (int64_t)n;
    memcpy(r->confusion, e->cm, (size_t)(nc + 1) * (nc + 1) * sizeof *r->confusion);
    if (ncls == 0) goto out; /* nothing to average: every figure stays 0 */

    /* The confidence of the highest class-mean F1, and the class means
     * there. Ties go to the highest confidence: below the lowest score the
     * curves are flat, so the first maximum would always be confidence 0. */
    int best = 0;
    double bestf = -1.0;
    for (int i = 0; i < EVAL_NCURVE; i++) {
        double s = 0.0;
        for (int c = 0; c < nc; c++)
            if (e->ngt[c]) s += r->f1_curve[(size_t)c * EVAL_NCURVE + (size_t)i];
        s /= ncls;
        if (s >= bestf) bestf = s, best = i;
    }
    double m50 = 0, m = 0, mp = 0, mr = 0;
    for (int c = 0; c < nc; c++) {
        r->p_class[c] = r->p_curve[(size_t)c * EVAL_NCURVE + (size_t)best];
        r->r_class[c] = r->r_curve[(size_t)c * EVAL_NCURVE + (size_t)best];
        if (!e->ngt[c]) continue;
        m50 += r->ap50[c], m += r->ap[c], mp += r->p_class[c], mr += r->r_class[c];
    }
    r->map50 = m50 / ncls, r->map = m / ncls, r->p = mp / ncls, r->r = mr / ncls;
    r->f1 = bestf;
    r->conf_index = best;
    r->conf = best / (double)(EVAL_NCURVE - 1);
out:
    if (st) eval_result_free(r);
    lupe_free(sorted);
    lupe_free(tmp);
    lupe_free(start);
    lupe_free(fill);
    lupe_free(buf);
    return st;
}
