/*
 * Tests of the YOLOv8 loss: hand-checked CIoU, assigner and DFL, bad input,
 * no allocation, central differences, and a YOLOv8n training step against
 * tests/det/data/det_loss.ckpt (tools/ref/det_loss.py; `make golden-det`).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "det/loss_internal.h"
#include "engine/gradcheck.h"
#include "lib/testutil.h"
#include "lupe/det.h"

/* ---- CIoU -------------------------------------------------------------- */

static void test_ciou_known(void **state)
{
    (void)state;
    double al;
    /* Identical boxes: 1, up to the eps terms. */
    const double a[4] = {10, 20, 30, 60};
    assert_true(fabs(det__ciou(a, a, &al) - 1) < 1e-8);
    assert_true(fabs(al) < 1e-12);
    /* 2x2 squares offset by (1, 1): IoU 1/7, enclosing diagonal^2 18,
     * centre distance^2 2, same aspect: 1/7 - 2/18. */
    const double p[4] = {0, 0, 2, 2}, t[4] = {1, 1, 3, 3};
    assert_true(fabs(det__ciou(p, t, &al) - (1.0 / 7 - 1.0 / 9)) < 1e-6);
    /* 4x2 against the 2x2 at its left: IoU 1/2, c^2 20, rho^2 1, and the
     * aspect term v = 4/pi^2 (atan 1 - atan 2)^2 with alpha = v/(v + 1/2). */
    const double q[4] = {0, 0, 4, 2}, r[4] = {0, 0, 2, 2};
    double v = 4 / (M_PI * M_PI) * pow(atan(1.0) - atan(2.0), 2), alpha = v / (v + 0.5);
    assert_true(fabs(det__ciou(q, r, &al) - (0.5 - 0.05 - alpha * v)) < 1e-6);
    assert_true(fabs(al - alpha) < 1e-6);
    /* Symmetric, as the assigner calls it with the boxes either way. */
    assert_true(fabs(det__ciou(q, r, NULL) - det__ciou(r, q, NULL)) < 1e-12);
    /* Disjoint: IoU 0, the centre term makes it negative. */
    const double f[4] = {10, 10, 12, 12};
    double dist, vv;
    assert_true(det__ciou_terms(p, f, &dist, &vv) == 0);
    assert_true(det__ciou(p, f, NULL) < 0);
}

/* d CIoU / d p with alpha fixed, against central differences in double,
 * for overlapping, containing, disjoint and differently shaped boxes. */
static double ciou_fixed(const double p[4], const double t[4], double alpha)
{
    double dist, v, iou = det__ciou_terms(p, t, &dist, &v);
    return iou - dist - alpha * v;
}

static void test_ciou_grad(void **state)
{
    (void)state;
    const double cases[][8] = {{0, 0, 2, 2, 1, 1, 3, 3},           {0.3, 0.1, 4.2, 2.5, 0, 0, 2, 2},
                               {1, 1, 2, 2.5, 0, 0, 5, 6},         {0, 0, 1, 3, 2, 1, 5, 2.2},
                               {2.2, 3.1, 7.7, 4.4, 2.5, 1.5, 6.0, 8.5}, {5, 5, 9, 11, 0.5, 7.2, 6.1, 9.3}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const double *t = cases[c] + 4;
        double p[4], dp[4], al;
        memcpy(p, cases[c], sizeof p);
        det__ciou(p, t, &al);
        det__ciou_grad(p, t, al, dp);
        for (int i = 0; i < 4; i++) {
            const double h = 1e-6, v = p[i];
            p[i] = v + h;
            double up = ciou_fixed(p, t, al);
            p[i] = v - h;
            double dn = ciou_fixed(p, t, al);
            p[i] = v;
            double num = (up - dn) / (2 * h);
            if (!(fabs(num - dp[i]) < 1e-7 * (1 + fabs(num))))
                fail_msg("case %zu coordinate %d: analytic %.10g, numeric %.10g", c, i, dp[i], num);
        }
    }
}

/* ---- small helpers ------------------------------------------------------- */

typedef struct heads {
    det_arch a;
    float *out[DET_LEVELS], *grad[DET_LEVELS];
    size_t n[DET_LEVELS];
} heads;

static void heads_init(heads *h, int imgsz, int batch, int nc)
{
    assert_int_equal(det_arch_init(&h->a, "n", nc, imgsz, batch), LUPE_OK);
    for (int lv = 0; lv < DET_LEVELS; lv++) {
        int g = imgsz >> (3 + lv);
        h->n[lv] = (size_t)batch * g * g * (DET__NBOX + nc);
        h->out[lv] = gc_zeros(h->n[lv]);
        h->grad[lv] = gc_zeros(h->n[lv]);
    }
}

static void heads_free(heads *h)
{
    for (int lv = 0; lv < DET_LEVELS; lv++) free(h->out[lv]), free(h->grad[lv]);
}

/* Random head outputs: logits of a scale seen early in training. */
static void heads_random(heads *h, uint64_t seed)
{
    gc_rng r = gc_seed(seed);
    for (int lv = 0; lv < DET_LEVELS; lv++) gc_fill(&r, h->out[lv], h->n[lv], -2.0f, 2.0f);
}

static lupe_status compute(det_loss *l, heads *h, const det_box *gt, int ngt, det_loss_parts *parts)
{
    const float *o[DET_LEVELS] = {h->out[0], h->out[1], h->out[2]};
    return det_loss_compute(l, o, h->grad, gt, ngt, parts);
}

/* Every box logit 0, or 10 for bin 1: all predictions are squares around
 * their anchors, 15 cells a side from the centre, or 1.005 cells. */
static void set_box_logits(heads *h, int peaked)
{
    for (int lv = 0; lv < DET_LEVELS; lv++)
        for (size_t i = 0; i < h->n[lv]; i++) {
            int ch = (int)(i % (size_t)(DET__NBOX + h->a.nc));
            if (ch < DET__NBOX) h->out[lv][i] = peaked && ch % DET_REG_MAX == 1 ? 10.0f : 0.0f;
        }
}

/* ---- the assigner on a 32x32 image (anchors 0-15 level 0, 16-19 level 1,
 * 20 level 2) with predictions whose shape depends only on the level, so
 * that only the anchor position and the class score matter. */
static void test_assign_tiny(void **state)
{
    (void)state;
    heads h;
    heads_init(&h, 32, 1, 1);
    set_box_logits(&h, 1);
    det_loss_cfg c;
    det_loss_cfg_default(&c);
    det_loss *l = NULL;
    assert_int_equal(det_loss_new(&h.a, &c, &l), LUPE_OK);
    assert_int_equal(l->na, 21);
    det_loss_parts parts;
    /* Anchors inside (0.5, 0.5)-(15.5, 15.5): level-0 cells (0,0) (1,0)
     * (0,1) (1,1) = anchors 0 1 4 5 and the level-1 cell (0,0) = 16; the
     * level-2 centre (16, 16) is outside. Fewer than 10: all are taken. */
    det_box g = {0, 0, 0.5f, 0.5f, 15.5f, 15.5f};
    assert_int_equal(compute(l, &h, &g, 1, &parts), LUPE_OK);
    assert_int_equal(parts.npos, 5);
    const int want[] = {0, 1, 4, 5, 16};
    for (int a = 0, k = 0; a < 21; a++) {
        int pos = k < 5 && want[k] == a;
        assert_int_equal(l->gt_of[a], pos ? 0 : -1);
        k += pos;
    }
    /* The targets: the best-aligned anchor scores the box's best CIoU (the
     * metrics, about 1e-3, are far above the normalisation's eps 1e-9). */
    float best = 0;
    for (int a = 0; a < 21; a++)
        if (l->tscore[a] > best) best = l->tscore[a];
    assert_true(best > 0 && fabs(best - l->overlap[0]) < 1e-6);
    det_loss_free(l);

    /* Top 2: level 0's four anchors tie on CIoU (the box's centre is
     * equally far from each) and beat level 1's larger prediction; a
     * higher class score makes anchor 5 first, and of the tied rest the
     * lowest number, 0, comes second. */
    c.topk = 2;
    assert_int_equal(det_loss_new(&h.a, &c, &l), LUPE_OK);
    h.out[0][5 * (DET__NBOX + 1) + DET__NBOX] = 3.0f;
    assert_int_equal(compute(l, &h, &g, 1, &parts), LUPE_OK);
    assert_int_equal(parts.npos, 2);
    assert_int_equal(l->gt_of[5], 0);
    assert_int_equal(l->gt_of[0], 0);
    /* Anchor 5 aligns best, so its target is the CIoU; anchor 0's is that
     * times its metric over anchor 5's, sqrt(sigmoid(0) / sigmoid(3)). */
    assert_true(fabs(l->tscore[5] - l->overlap[5]) < 1e-6);
    double ratio = sqrt(0.5 / (1 / (1 + exp(-3.0))));
    assert_true(fabs(l->tscore[0] - l->overlap[5] * ratio) < 1e-6);

    /* Two boxes pick anchor 5 (box 0 contains no other anchor; for box 1,
     * 30 pixels wide, anchor 5's score outweighs anchor 10's nearer
     * centre, the predictions being 120-pixel squares now). It goes to the
     * box its prediction overlaps more: box 1, and box 0 is left with no
     * anchor. */
    set_box_logits(&h, 0);
    det_box two[2] = {{0, 0, 9.5f, 9.5f, 14.5f, 14.5f}, {0, 0, 1.5f, 1.5f, 31.5f, 31.5f}};
    assert_int_equal(compute(l, &h, two, 2, &parts), LUPE_OK);
    double cx, cy, st, pb[4], d[4];
    det__anchor(l, 5, &cx, &cy, &st);
    det__decode(h.out[0] + 5 * (DET__NBOX + 1), d, NULL, NULL);
    pb[0] = (cx - d[0]) * st, pb[1] = (cy - d[1]) * st, pb[2] = (cx + d[2]) * st, pb[3] = (cy + d[3]) * st;
    const double b0[4] = {9.5, 9.5, 14.5, 14.5}, b1[4] = {1.5, 1.5, 31.5, 31.5};
    double u0 = det__ciou(pb, b0, NULL), u1 = det__ciou(pb, b1, NULL);
    assert_true(u1 > u0 && u0 > 0);
    assert_int_equal(l->gt_of[5], 1);
    assert_int_equal(parts.npos, 2);
    assert_int_equal(l->gt_of[10], 1);
    for (int a = 0; a < 21; a++) assert_true(l->gt_of[a] != 0);
    det_loss_free(l);
    heads_free(&h);
}

/* No boxes at all: box and DFL are 0, classes are pushed to 0 with BCE
 * summed over every anchor and class (divided by max(0, 1) = 1). */
static void test_no_boxes(void **state)
{
    (void)state;
    heads h;
    heads_init(&h, 64, 2, 2);
    heads_random(&h, 11);
    det_loss *l = NULL;
    assert_int_equal(det_loss_new(&h.a, NULL, &l), LUPE_OK);
    det_loss_parts parts;
    for (int lv = 0; lv < DET_LEVELS; lv++) memset(h.grad[lv], 0x7f, h.n[lv] * sizeof(float)); /* must be overwritten */
    assert_int_equal(compute(l, &h, NULL, 0, &parts), LUPE_OK);
    assert_int_equal(parts.npos, 0);
    assert_true(parts.box == 0 && parts.dfl == 0);
    double bce = 0;
    for (int lv = 0; lv < DET_LEVELS; lv++)
        for (size_t i = 0; i < h.n[lv]; i++) {
            int ch = (int)(i % (DET__NBOX + 2));
            double x = h.out[lv][i];
            if (ch < DET__NBOX) {
                assert_true(h.grad[lv][i] == 0);
                continue;
            }
            bce += log(1 + exp(x));
            double want = 0.5 * 2 / (1 + exp(-x)); /* cls_gain * batch * sigmoid */
            assert_true(fabs(h.grad[lv][i] - want) < 1e-6);
        }
    assert_true(fabs(parts.cls - 0.5 * bce) < 1e-5 * (0.5 * bce));
    assert_true(fabs(parts.total - 2 * parts.cls) < 1e-5 * parts.total);
    det_loss_free(l);
    heads_free(&h);
}

/* One image of the batch without boxes: its anchors are all negatives
 * (zero box gradients), and its box logits do not change the loss. */
static void test_empty_image(void **state)
{
    (void)state;
    heads h;
    heads_init(&h, 64, 2, 2);
    heads_random(&h, 12);
    det_loss *l = NULL;
    assert_int_equal(det_loss_new(&h.a, NULL, &l), LUPE_OK);
    det_box gt[2] = {{0, 1, 5.5f, 7.25f, 30.5f, 40.75f}, {0, 0, 20.25f, 3.5f, 60.5f, 28.25f}};
    det_loss_parts p1, p2;
    assert_int_equal(compute(l, &h, gt, 2, &p1), LUPE_OK);
    assert_true(p1.npos > 0 && p1.box > 0 && p1.dfl > 0);
    for (int lv = 0; lv < DET_LEVELS; lv++) {
        size_t half = h.n[lv] / 2; /* image 1 is the second half */
        for (size_t i = half; i < h.n[lv]; i++) {
            int ch = (int)(i % (DET__NBOX + 2));
            if (ch < DET__NBOX) {
                assert_true(h.grad[lv][i] == 0);
                h.out[lv][i] += 1.0f; /* now move it */
            }
        }
    }
    assert_int_equal(compute(l, &h, gt, 2, &p2), LUPE_OK);
    assert_true(p1.total == p2.total && p1.npos == p2.npos);
    det_loss_free(l);
    heads_free(&h);
}

/* The loss of the first image of a batch of 2 equals that of a batch of 1
 * holding the same image: a short validation batch is measured right. */
static void test_first_images_only(void **state)
{
    (void)state;
    heads h2, h1;
    heads_init(&h2, 64, 2, 2);
    heads_init(&h1, 64, 1, 2);
    heads_random(&h2, 21);
    for (int lv = 0; lv < DET_LEVELS; lv++) memcpy(h1.out[lv], h2.out[lv], h1.n[lv] * sizeof(float));
    det_loss *l2 = NULL, *l1 = NULL;
    assert_int_equal(det_loss_new(&h2.a, NULL, &l2), LUPE_OK);
    assert_int_equal(det_loss_new(&h1.a, NULL, &l1), LUPE_OK);
    det_box gt[2] = {{0, 1, 5.5f, 7.25f, 30.5f, 40.75f}, {0, 0, 20.25f, 3.5f, 60.5f, 28.25f}};
    det_loss_parts p1, p2;
    assert_int_equal(compute(l1, &h1, gt, 2, &p1), LUPE_OK);
    const float *o[DET_LEVELS] = {h2.out[0], h2.out[1], h2.out[2]};
    assert_int_equal(det_loss_compute_n(l2, o, NULL, gt, 2, 1, &p2), LUPE_OK);
    assert_true(p1.npos == p2.npos && p1.npos > 0);
    assert_float_equal(p1.total, p2.total, 1e-5 * fabs(p1.total));
    assert_float_equal(p1.cls, p2.cls, 1e-6 * fabs(p1.cls));
    det_box late = {1, 0, 1, 1, 20, 20};
    assert_int_equal(det_loss_compute_n(l2, o, NULL, &late, 1, 1, &p2), LUPE_EARG);
    assert_int_equal(det_loss_compute_n(l2, o, NULL, gt, 2, 3, &p2), LUPE_EARG);
    det_loss_free(l1);
    det_loss_free(l2);
    heads_free(&h1);
    heads_free(&h2);
}

static void test_errors(void **state)
{
    (void)state;
    heads h;
    heads_init(&h, 64, 2, 2);
    det_loss_cfg c;
    det_loss_cfg_default(&c);
    det_loss *l = NULL;
    c.topk = 0;
    assert_int_equal(det_loss_new(&h.a, &c, &l), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "top-k 0"));
    det_loss_cfg_default(&c);
    c.box_gain = NAN;
    assert_int_equal(det_loss_new(&h.a, &c, &l), LUPE_EARG);
    det_loss_cfg_default(&c);
    c.max_gt = 3;
    assert_int_equal(det_loss_new(&h.a, &c, &l), LUPE_OK);
    det_loss_parts parts;
    det_box gt[4] = {{0, 0, 1, 1, 9, 9}, {1, 1, 1, 1, 9, 9}, {0, 0, 1, 1, 9, 9}, {1, 0, 1, 1, 9, 9}};
    assert_int_equal(compute(l, &h, gt, 4, &parts), LUPE_ELIMIT);
    assert_non_null(strstr(lupe_errmsg(), "4 ground-truth boxes"));
    assert_non_null(strstr(lupe_errmsg(), "max_gt"));
    gt[1].img = 2;
    assert_int_equal(compute(l, &h, gt, 2, &parts), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "box 1 is in image 2"));
    gt[1].img = 1, gt[1].cls = 2;
    assert_int_equal(compute(l, &h, gt, 2, &parts), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "class 2"));
    gt[1].cls = 0, gt[1].x2 = 0.5f;
    assert_int_equal(compute(l, &h, gt, 2, &parts), LUPE_EARG);
    gt[1].x2 = NAN;
    assert_int_equal(compute(l, &h, gt, 2, &parts), LUPE_EARG);
    gt[1].x2 = 9;
    assert_int_equal(compute(l, &h, gt, 3, &parts), LUPE_OK);
    const float *o[DET_LEVELS] = {h.out[0], NULL, h.out[2]};
    assert_int_equal(det_loss_compute(l, o, NULL, gt, 3, &parts), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "level 1"));
    det_loss_free(l);
    det_loss_free(NULL);
    heads_free(&h);
}

/* Nothing is allocated per call, with or without gradients. */
static void test_no_alloc(void **state)
{
    (void)state;
    heads h;
    heads_init(&h, 96, 2, 1);
    heads_random(&h, 13);
    det_loss *l = NULL;
    assert_int_equal(det_loss_new(&h.a, NULL, &l), LUPE_OK);
    det_box gt[3] = {{0, 0, 3.5f, 4.5f, 50.25f, 60.5f}, {1, 0, 10.5f, 20.5f, 30.5f, 33.5f}, {1, 0, 0, 0, 96, 96}};
    det_loss_parts parts;
    lupe_alloc_stats s0, s1;
    lupe_alloc_get_stats(&s0);
    assert_int_equal(compute(l, &h, gt, 3, &parts), LUPE_OK);
    const float *o[DET_LEVELS] = {h.out[0], h.out[1], h.out[2]};
    assert_int_equal(det_loss_compute(l, o, NULL, gt, 3, &parts), LUPE_OK);
    lupe_alloc_get_stats(&s1);
    assert_true(s1.allocs == s0.allocs);
    assert_true(parts.npos > 0);
    det_loss_free(l);
    heads_free(&h);
}

/* DFL by hand: with box logits x_k = 0.3 k, the cross-entropy of bin j is
 * lse - 0.3 j, so a side's DFL is lse - 0.3 t for its target distance t
 * clamped to [0, 14.99] (t = wl * tl + wr * (tl + 1)). A 251-pixel box on a
 * 256-pixel image puts level-0 targets beyond 15 cells: the clamp counts. */
static void test_dfl_by_hand(void **state)
{
    (void)state;
    heads h;
    heads_init(&h, 256, 1, 1);
    for (int lv = 0; lv < DET_LEVELS; lv++)
        for (size_t i = 0; i < h.n[lv]; i++) {
            int ch = (int)(i % (DET__NBOX + 1));
            h.out[lv][i] = ch < DET__NBOX ? 0.3f * (float)(ch % DET_REG_MAX) : 0.0f;
        }
    det_loss *l = NULL;
    assert_int_equal(det_loss_new(&h.a, NULL, &l), LUPE_OK);
    det_box g = {0, 0, 2.5f, 2.5f, 253.5f, 253.5f};
    det_loss_parts parts;
    assert_int_equal(compute(l, &h, &g, 1, &parts), LUPE_OK);
    assert_true(parts.npos > 0);
    double lse = 0, sum = 0, tss = 0;
    for (int k = 0; k < DET_REG_MAX; k++) lse += exp(0.3 * k);
    lse = log(lse);
    int clamped = 0;
    for (int a = 0; a < l->na; a++) {
        if (l->gt_of[a] < 0) continue;
        double cx, cy, st;
        det__anchor(l, a, &cx, &cy, &st);
        const double t[4] = {cx - g.x1 / st, cy - g.y1 / st, g.x2 / st - cx, g.y2 / st - cy};
        double side = 0;
        for (int s = 0; s < 4; s++) {
            double tc = t[s] > DET_REG_MAX - 1.01 ? DET_REG_MAX - 1.01 : t[s];
            clamped += tc != t[s];
            side += lse - 0.3 * tc;
        }
        sum += side / 4 * l->tscore[a];
        tss += l->tscore[a];
    }
    assert_true(clamped > 0);
    double want = 1.5 * sum / (tss > 1 ? tss : 1);
    print_message("# DFL by hand %.6f, computed %.6f (%d clamped sides)\n", want, (double)parts.dfl, clamped);
    assert_true(fabs(parts.dfl - want) < 1e-5 * want);
    det_loss_free(l);
    heads_free(&h);
}

/* ---- gradient against central differences --------------------------------
 * imgsz 64, batch 2, 2 classes, random outputs and boxes in both images.
 * The assignment and the CIoU alphas are frozen after the first call (they
 * carry no gradient by definition), which makes the loss the smooth
 * function whose derivative det_loss_compute writes. Checked entries: every
 * box and class channel of every positive anchor and a spread of negatives.
 * The total is taken in double (det_loss.total), the step is 1e-3 and the
 * error is |analytic - numeric| / max(|numeric|, 1e-2 * largest). */
typedef struct fd_ctx {
    det_loss *l;
    heads *h;
    const det_box *gt;
    int ngt;
} fd_ctx;

static double fd_total(void *p)
{
    fd_ctx *c = p;
    det_loss_parts parts;
    const float *o[DET_LEVELS] = {c->h->out[0], c->h->out[1], c->h->out[2]};
    if (det_loss_compute(c->l, o, NULL, c->gt, c->ngt, &parts)) fail_msg("%s", lupe_errmsg());
    return c->l->total;
}

static void test_gradcheck(void **state)
{
    (void)state;
    heads h;
    heads_init(&h, 64, 2, 2);
    heads_random(&h, 14);
    /* Levels 1 and 2 predict smaller boxes (in cells), so that some boxes
     * align best with them. */
    for (int lv = 1; lv < DET_LEVELS; lv++)
        for (size_t i = 0; i < h.n[lv]; i++) {
            int ch = (int)(i % (DET__NBOX + 2));
            if (ch < DET__NBOX && ch % DET_REG_MAX == 1) h.out[lv][i] += 4.0f;
        }
    det_loss *l = NULL;
    assert_int_equal(det_loss_new(&h.a, NULL, &l), LUPE_OK);
    const det_box gt[5] = {{0, 0, 3.5f, 5.25f, 18.5f, 14.75f}, {0, 1, 20.25f, 17.5f, 58.5f, 61.25f},
                           {0, 0, 30.5f, 2.25f, 62.75f, 30.5f}, {1, 1, 6.25f, 10.5f, 45.5f, 36.75f},
                           {1, 0, 40.5f, 40.25f, 52.5f, 62.5f}};
    det_loss_parts parts;
    assert_int_equal(compute(l, &h, gt, 5, &parts), LUPE_OK);
    assert_true(parts.npos >= 20);
    det__loss_freeze(l, 1);
    fd_ctx ctx = {l, &h, gt, 5};
    double worst = 0, scale = 0;
    int checked = 0, levels_hit[DET_LEVELS] = {0};
    /* Numeric derivatives first, to know the scale. */
    enum { MAXCHK = 6000 };
    static double num[MAXCHK], ana[MAXCHK];
    for (int b = 0; b < 2; b++)
        for (int a = 0; a < l->na; a++) {
            int lv, pos = l->gt_of[(size_t)b * l->na + a] >= 0;
            size_t r = det__row(l, b, a, &lv);
            if (!pos && a % 7 != 3) continue;
            levels_hit[lv] += pos;
            for (int ch = 0; ch < l->no; ch++) {
                if (!pos && ch < DET__NBOX && ch % 5 != 0) continue;
                if (checked == MAXCHK) fail_msg("more entries than the check holds");
                float *x = &h.out[lv][r + ch], v = *x, xp = v + 1e-3f, xm = v - 1e-3f;
                *x = xp;
                double up = fd_total(&ctx);
                *x = xm;
                double dn = fd_total(&ctx);
                *x = v;
                num[checked] = (up - dn) / ((double)xp - xm);
                ana[checked] = h.grad[lv][r + ch];
                if (fabs(num[checked]) > scale) scale = fabs(num[checked]);
                checked++;
            }
        }
    for (int i = 0; i < checked; i++) {
        double den = fmax(fabs(num[i]), 1e-2 * scale), e = fabs(ana[i] - num[i]) / den;
        if (e > worst) worst = e;
    }
    print_message("# gradcheck: %d entries, %d positives (levels %d %d %d), scale %.3g, worst error %.2e\n", checked,
                  parts.npos, levels_hit[0], levels_hit[1], levels_hit[2], scale, worst);
    assert_true(levels_hit[0] > 0 && levels_hit[1] > 0 && levels_hit[2] > 0);
    assert_true(worst < 1e-4);
    /* Unfrozen, the same call gives the same analytic gradient. */
    det__loss_freeze(l, 0);
    assert_int_equal(compute(l, &h, gt, 5, &parts), LUPE_OK);
    det_loss_free(l);
    heads_free(&h);
}

/* ---- golden: one training step of YOLOv8n against PyTorch ------------------ */

#define G_IMGSZ 96
#define G_BATCH 2
#define G_NC 2
#define G_FULL 2304
#define G_SAMPLES 64

static eng_ckpt *gold;

/* The golden tensor called prefix + name. */
static const eng_tensor_rec *G(const char *prefix, const char *name)
{
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const eng_tensor_rec *t = eng_ckpt_find(gold, key);
    if (!t) fail_msg("golden file lacks '%s' (regenerate with make golden-det)", key);
    return t;
}

/* The weight and input formula of tools/ref/det_loss.py: splitmix64's
 * finaliser of fnv1a(name) + i * golden ratio, top 24 bits. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ULL;
    return h;
}

static double uniform(uint64_t key, size_t i)
{
    uint64_t x = key + (uint64_t)i * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return (double)(x >> 40) / 16777216.0;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static void fill_param(const eng_tensor_rec *r)
{
    static const double centre[3] = {1.0, 1.5, 1.3};
    uint64_t key = fnv1a(r->name);
    for (size_t i = 0; i < r->n; i++) {
        double u = uniform(key, i), v = 0;
        if (r->ndim == 4)
            v = (2 * u - 1) * sqrt(3.0 / (double)(r->dims[1] * r->dims[2] * r->dims[3]));
        else if (ends_with(r->name, ".bn.weight"))
            v = 1 + 0.4 * (u - 0.5);
        else if (ends_with(r->name, ".bn.bias"))
            v = 0.4 * (u - 0.5);
        else if (strncmp(r->name, "model.22.cv2.", 13) == 0 && ends_with(r->name, ".2.bias")) {
            double k = (double)(i % DET_REG_MAX) - centre[r->name[13] - '0'];
            v = -0.5 * (k * k) + 0.2 * (u - 0.5);
        } else if (strncmp(r->name, "model.22.cv3.", 13) == 0 && ends_with(r->name, ".2.bias"))
            v = -1.0 + 0.4 * (u - 0.5);
        else
            fail_msg("no formula for parameter %s", r->name);
        r->data[i] = (float)v;
    }
}

static void expect_wstat(const char *name, const float *x, size_t n)
{
    const eng_tensor_rec *t = G("wstat.", name);
    double s = 0, q = 0;
    for (size_t i = 0; i < n; i++) s += x[i], q += (double)x[i] * x[i];
    if (!(fabs(s - t->data[0]) <= 1e-6 * (fabs(t->data[0]) + sqrt(q) + 1e-3) && fabs(q - t->data[1]) <= 1e-6 * q))
        fail_msg("%s: the formula gives sum %.9g and sum of squares %.9g, PyTorch's %.9g and %.9g", name, s, q,
                 (double)t->data[0], (double)t->data[1]);
}

/* max |got - want| / max |want| */
static double rel_err(const float *got, const float *want, size_t n, double scale)
{
    double md = 0, mw = scale;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= md)) md = d; /* NaN-safe */
        if (fabs(want[i]) > mw) mw = fabs(want[i]);
    }
    return md / (mw > 1e-30 ? mw : 1e-30);
}

typedef struct worst {
    double out, loss, score, dout, grad;
    char grad_name[96];
} worst;

static void check(const char *what, double err, double tol, double *track)
{
    if (err > *track) *track = err;
    if (!(err <= tol)) fail_msg("%s: relative error %.3e over %.0e", what, err, tol);
}

/* Tolerances (f32 lupe against f64 PyTorch): outputs and loss 1e-5,
 * target scores (CIoU^6 amplifies rounding sixfold) and head-output
 * gradients 1e-4 of the largest, parameter gradients 5e-4 (see
 * docs/detector.md for the measured values). */
#define TOL_OUT 1e-5
#define TOL_SCORE 1e-4
#define TOL_LOSS 1e-5
#define TOL_DOUT 1e-4
#define TOL_GRAD 5e-4

static void golden_step(int fast)
{
    const char *path = getenv("LUPE_GOLDEN_DET");
    if (eng_ckpt_load(path ? path : "tests/det/data/det_loss.ckpt", &gold) != LUPE_OK) fail_msg("%s", lupe_errmsg());
    det_arch a;
    assert_int_equal(det_arch_init(&a, "n", G_NC, G_IMGSZ, G_BATCH), LUPE_OK);
    eng_graph *g = eng_graph_new("yolov8n");
    int x, outs[DET_LEVELS];
    assert_int_equal(det_build(g, &a, &x, outs), LUPE_OK);
    eng_graph_set_fast(g, fast);
    eng_graph_set_precision(g, ENG_PREC_F32);
    if (eng_graph_plan(g, 1)) fail_msg("%s", lupe_errmsg());

    /* Weights and input from the formula; their sums prove both sides
     * built the same network with the same values. */
    const eng_param *ps = NULL;
    int np = eng_graph_params(g, &ps);
    eng_tensor_rec *recs = calloc((size_t)np + 256, sizeof *recs);
    assert_non_null(recs);
    int nrec = eng_graph_state(g, recs, np + 256);
    assert_true(nrec > np);
    for (int i = 0; i < np; i++) {
        fill_param(&recs[i]);
        expect_wstat(recs[i].name, recs[i].data, recs[i].n);
    }
    float *img = eng_g_data(g, x);
    size_t nimg = (size_t)G_BATCH * G_IMGSZ * G_IMGSZ * 3;
    uint64_t key = fnv1a("images");
    for (size_t i = 0; i < nimg; i++) img[i] = (float)uniform(key, i);
    expect_wstat("images", img, nimg);

    worst w = {0};
    eng_graph_forward(g, 1);
    const float *o[DET_LEVELS];
    float *gr[DET_LEVELS];
    for (int lv = 0; lv < DET_LEVELS; lv++) {
        char name[16];
        snprintf(name, sizeof name, "%d", lv);
        int s[4];
        eng_graph_shape(g, outs[lv], s);
        size_t n = (size_t)s[0] * s[1] * s[2] * s[3];
        const eng_tensor_rec *t = G("out.", name);
        assert_int_equal(t->n, n);
        o[lv] = eng_g_data(g, outs[lv]);
        gr[lv] = eng_g_grad(g, outs[lv]);
        check("head output", rel_err(o[lv], t->data, n, 0), TOL_OUT, &w.out);
    }

    /* The loss and its gradient. */
    const eng_tensor_rec *gt = G("", "gt");
    int ngt = (int)gt->dims[0];
    det_box boxes[16];
    assert_true(ngt <= 16 && gt->dims[1] == 6);
    for (int i = 0; i < ngt; i++) {
        const float *r = gt->data + 6 * i;
        boxes[i] = (det_box){(int)r[0], (int)r[1], r[2], r[3], r[4], r[5]};
    }
    det_loss *l = NULL;
    assert_int_equal(det_loss_new(&a, NULL, &l), LUPE_OK);
    det_loss_parts parts;
    assert_int_equal(det_loss_compute(l, o, gr, boxes, ngt, &parts), LUPE_OK);
    const float *want = G("", "loss")->data;
    print_message("# loss box %.6f cls %.6f dfl %.6f total %.6f, %d positives (PyTorch %.6f %.6f %.6f %.6f, %d)\n",
                  (double)parts.box, (double)parts.cls, (double)parts.dfl, (double)parts.total, parts.npos,
                  (double)want[0], (double)want[1], (double)want[2], (double)want[3], (int)want[4]);
    const float got[4] = {parts.box, parts.cls, parts.dfl, parts.total};
    for (int i = 0; i < 4; i++) check("loss part", fabs(got[i] - want[i]) / fabs(want[i]), TOL_LOSS, &w.loss);
    assert_int_equal(parts.npos, (int)want[4]);
    const eng_tensor_rec *ag = G("", "assign.gt"), *as = G("", "assign.score");
    assert_int_equal(ag->n, (size_t)G_BATCH * l->na);
    for (size_t i = 0; i < ag->n; i++)
        if (l->gt_of[i] != (int)ag->data[i])
            fail_msg("anchor %zu of the batch: assigned box %d, PyTorch's %d", i, l->gt_of[i], (int)ag->data[i]);
    check("target scores", rel_err(l->tscore, as->data, as->n, 0), TOL_SCORE, &w.score);
    for (int lv = 0; lv < DET_LEVELS; lv++) {
        char name[16];
        snprintf(name, sizeof name, "%d", lv);
        const eng_tensor_rec *t = G("dout.", name);
        check("head-output gradient", rel_err(gr[lv], t->data, t->n, 0), TOL_DOUT, &w.dout);
    }

    /* Backward through the network: every parameter's gradient. */
    eng_graph_backward(g);
    for (int i = 0; i < np; i++) {
        const float *pg = ps[i].g;
        size_t n = ps[i].n;
        const float *st = G("gstat.", ps[i].name)->data; /* norm, sum g r, sum |g r|, max |g| */
        char projkey[160];
        snprintf(projkey, sizeof projkey, "proj.%s", ps[i].name);
        uint64_t pk = fnv1a(projkey);
        double nrm = 0, proj = 0, mx = 0;
        for (size_t k = 0; k < n; k++) {
            nrm += (double)pg[k] * pg[k];
            proj += pg[k] * (2 * uniform(pk, k) - 1);
            if (fabs(pg[k]) > mx) mx = fabs(pg[k]);
        }
        nrm = sqrt(nrm);
        double e = fmax(fabs(nrm - st[0]) / st[0], fabs(proj - st[1]) / st[2]);
        e = fmax(e, fabs(mx - st[3]) / st[3]);
        if (n <= G_FULL) {
            e = fmax(e, rel_err(pg, G("grad.", ps[i].name)->data, n, st[3]));
        } else {
            const float *smp = G("gsample.", ps[i].name)->data;
            for (size_t k = 0; k < G_SAMPLES; k++) {
                size_t idx = (2 * k + 1) * n / (2 * G_SAMPLES);
                e = fmax(e, fabs(pg[idx] - smp[k]) / st[3]);
            }
        }
        if (e > w.grad) snprintf(w.grad_name, sizeof w.grad_name, "%s", ps[i].name);
        char what[160];
        snprintf(what, sizeof what, "gradient of %s", ps[i].name);
        check(what, e, TOL_GRAD, &w.grad);
    }
    print_message("# %s ops: worst relative error: outputs %.1e, loss %.1e, target scores %.1e, head-output gradients "
                  "%.1e, parameter gradients %.1e (%s)\n",
                  fast ? "fast" : "reference", w.out, w.loss, w.score, w.dout, w.grad, w.grad_name);
    det_loss_free(l);
    free(recs);
    eng_graph_free(g);
    eng_ckpt_free(gold);
    gold = NULL;
}

static void test_golden_reference(void **state)
{
    (void)state;
    golden_step(0);
}

static void test_golden_fast(void **state)
{
    (void)state;
    golden_step(1);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ciou_known),  cmocka_unit_test(test_ciou_grad),         cmocka_unit_test(test_assign_tiny),
        cmocka_unit_test(test_no_boxes),    cmocka_unit_test(test_empty_image), cmocka_unit_test(test_first_images_only),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_no_alloc),    cmocka_unit_test(test_dfl_by_hand),       cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_golden_fast), cmocka_unit_test(test_golden_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
