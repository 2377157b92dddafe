/*
 * Tests of the detector's decoding and NMS: hand-built head outputs with
 * near one-hot distribution logits decode to boxes worked out by hand, the
 * candidate cap keeps the best scores, and NMS keeps and drops the boxes
 * that IoU computed on paper says it should; det_raw_output writes the
 * hand-computed boxes in Ultralytics' output layout.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/det.h"

#define NEG -20.0f /* class logit of "nothing here": score 2e-9 */

typedef struct head {
    det_arch a;
    float *lv[DET_LEVELS];
} head;

static void head_init(head *h, int nc, int imgsz, int batch)
{
    assert_int_equal(det_arch_init(&h->a, "n", nc, imgsz, batch), LUPE_OK);
    const int ch = 4 * DET_REG_MAX + nc;
    for (int l = 0; l < DET_LEVELS; l++) {
        int g = imgsz >> (3 + l);
        size_t n = (size_t)batch * g * g * ch;
        h->lv[l] = malloc(n * sizeof(float));
        assert_non_null(h->lv[l]);
        for (size_t i = 0; i < n; i++) h->lv[l][i] = (i % ch) < 4 * DET_REG_MAX ? 0.0f : NEG;
    }
}

static void head_free(head *h)
{
    for (int l = 0; l < DET_LEVELS; l++) free(h->lv[l]);
}

static float *anchor(head *h, int b, int l, int x, int y)
{
    int g = h->a.imgsz >> (3 + l), ch = 4 * DET_REG_MAX + h->a.nc;
    return h->lv[l] + (((size_t)b * g + y) * g + x) * ch;
}

/* Side s (0 l, 1 t, 2 r, 3 b) gets logit 40 on the given bins (0 elsewhere):
 * the softmax is uniform over them to within 16 e^-40. */
static void side(float *v, int s, int bin_a, int bin_b)
{
    for (int k = 0; k < DET_REG_MAX; k++) v[s * DET_REG_MAX + k] = 0.0f;
    v[s * DET_REG_MAX + bin_a] = 40.0f;
    v[s * DET_REG_MAX + bin_b] = 40.0f;
}

static double sigm(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static void expect_pred(const det_pred *p, int cls, double score, double x1, double y1, double x2, double y2)
{
    assert_int_equal(p->cls, cls);
    if (fabs(p->score - score) > 1e-6) fail_msg("score %.7f, expected %.7f", p->score, score);
    const double got[4] = {p->x1, p->y1, p->x2, p->y2}, want[4] = {x1, y1, x2, y2};
    for (int k = 0; k < 4; k++)
        if (fabs(got[k] - want[k]) > 1e-3)
            fail_msg("corner %d is %.4f, expected %.4f (box %.3f %.3f %.3f %.3f)", k, got[k], want[k], got[0], got[1],
                     got[2], got[3]);
}

static void test_decode_hand(void **state)
{
    (void)state;
    head h;
    head_init(&h, 2, 64, 2); /* grids 8x8, 4x4, 2x2 */
    /* Image 1, level 0 (stride 8), anchor (3, 2): centre (28, 20) px.
     * l = bin 2, t = bin 1, r = bin 3, b = bins 0 and 1 (expectation 0.5):
     * box (28 - 16, 20 - 8, 28 + 24, 20 + 4) = (12, 12, 52, 24). */
    float *v = anchor(&h, 1, 0, 3, 2);
    side(v, 0, 2, 2), side(v, 1, 1, 1), side(v, 2, 3, 3), side(v, 3, 0, 1);
    v[64 + 1] = 2.0f;
    /* Image 1, level 2 (stride 32), anchor (1, 0): centre (48, 16) px; every
     * side 1 bin = 32 px: (16, -16, 80, 48), clipped to the 64 px frame.
     * Two classes over conf: two detections with the same box. */
    v = anchor(&h, 1, 2, 1, 0);
    for (int s = 0; s < 4; s++) side(v, s, 1, 1);
    v[64 + 0] = 1.0f;
    v[64 + 1] = 0.5f;
    /* Image 0, level 1 (stride 16), anchor (0, 3): centre (8, 56); sides of
     * 0.5 bin: (0, 48, 16, 64). */
    v = anchor(&h, 0, 1, 0, 3);
    for (int s = 0; s < 4; s++) side(v, s, 0, 1);
    v[64 + 0] = 3.0f;

    const float *outs[DET_LEVELS] = {h.lv[0], h.lv[1], h.lv[2]};
    det_pred p[16];
    int n = det_detect(&h.a, outs, 1, 0.25f, 0.7f, 16, p);
    assert_int_equal(n, 3);
    expect_pred(&p[0], 1, sigm(2.0), 12, 12, 52, 24);
    expect_pred(&p[1], 0, sigm(1.0), 16, 0, 64, 48);
    expect_pred(&p[2], 1, sigm(0.5), 16, 0, 64, 48);

    assert_int_equal(det_detect(&h.a, outs, 1, 0.7f, 0.7f, 16, p), 2); /* 0.62 is under 0.7 */
    assert_int_equal(det_detect(&h.a, outs, 1, 0.9f, 0.7f, 16, p), 0);
    assert_int_equal(det_detect(&h.a, outs, 1, 0.25f, 0.7f, 1, p), 1); /* max_det */
    assert_int_equal(p[0].cls, 1);

    n = det_detect(&h.a, outs, 0, 0.25f, 0.7f, 16, p);
    assert_int_equal(n, 1);
    expect_pred(&p[0], 0, sigm(3.0), 0, 48, 16, 64);

    /* At conf 0.001 the -20 logits (2e-9) stay out: still one. */
    assert_int_equal(det_detect(&h.a, outs, 0, 0.001f, 0.7f, 16, p), 1);

    assert_int_equal(det_detect(&h.a, outs, 2, 0.25f, 0.7f, 16, p), -1);
    assert_non_null(strstr(lupe_errmsg(), "batch"));
    assert_int_equal(det_detect(&h.a, outs, 0, 0.25f, 0.7f, 0, p), -1);
    head_free(&h);
}

/* A soft distribution: the expectation is the softmax-weighted mean bin,
 * here computed in double from the same logits. */
static void test_decode_soft(void **state)
{
    (void)state;
    head h;
    head_init(&h, 1, 96, 1); /* grids 12x12, 6x6, 3x3 */
    float *v = anchor(&h, 0, 0, 4, 4); /* centre (36, 36), stride 8 */
    double want[4];
    for (int s = 0; s < 4; s++) {
        double z = 0, e = 0;
        for (int k = 0; k < DET_REG_MAX; k++) {
            float l = k == 1 + s ? 6.0f : k == 2 + s ? 5.0f : (float)(k % 3) * 0.25f;
            v[s * DET_REG_MAX + k] = l;
            z += exp(l), e += k * exp(l);
        }
        want[s] = e / z;
    }
    v[64] = 0.0f; /* score 0.5 */
    const float *outs[DET_LEVELS] = {h.lv[0], h.lv[1], h.lv[2]};
    det_pred p[4];
    assert_int_equal(det_detect(&h.a, outs, 0, 0.5f, 0.7f, 4, p), 1);
    print_message("# soft sides %.4f %.4f %.4f %.4f bins\n", want[0], want[1], want[2], want[3]);
    expect_pred(&p[0], 0, 0.5, 36 - 8 * want[0], 36 - 8 * want[1], 36 + 8 * want[2], 36 + 8 * want[3]);
    head_free(&h);
}

/* The boundary is score >= conf, decided on the float sigmoid itself: for
 * logits packed around logit(conf) (84 anchors at 64 px, one cell boxes
 * that do not suppress each other), det_detect finds exactly the anchors
 * whose sigmoid reaches conf, also close to a confidence of 1, where a
 * logit-space shortcut would need a wide margin. */
static void test_decode_threshold(void **state)
{
    (void)state;
    const float confs[] = {0.001f, 0.25f, 0.5f, 0.9f, 0.9999f, 0.99999f};
    for (size_t ci = 0; ci < sizeof confs / sizeof *confs; ci++) {
        const float conf = confs[ci];
        head h;
        head_init(&h, 1, 64, 1);
        const double center = log((double)conf / (1.0 - conf));
        const double spread = 1e-6 / (conf * (1.0 - conf)) + 1e-4;
        int a = 0, want = 0;
        for (int l = 0; l < DET_LEVELS; l++) {
            int g = 64 >> (3 + l);
            for (int y = 0; y < g; y++)
                for (int x = 0; x < g; x++, a++) {
                    float *v = anchor(&h, 0, l, x, y);
                    for (int s = 0; s < 4; s++) side(v, s, 0, 1);
                    v[64] = (float)(center + spread * (a - 42) / 42.0);
                    want += 1.0f / (1.0f + expf(-v[64])) >= conf;
                }
        }
        const float *outs[DET_LEVELS] = {h.lv[0], h.lv[1], h.lv[2]};
        det_pred p[84];
        int n = det_detect(&h.a, outs, 0, conf, 0.7f, 84, p);
        print_message("# conf %.5f: %d of 84 anchors at or over it\n", conf, n);
        assert_int_equal(n, want);
        assert_true(want > 0 && want < 84);
        head_free(&h);
    }
}

static void expect_col(const float *out, int n, int j, double cx, double cy, double w, double h)
{
    const double want[4] = {cx, cy, w, h};
    for (int r = 0; r < 4; r++)
        if (fabs(out[r * n + j] - want[r]) > 1e-4)
            fail_msg("anchor %d row %d is %.5f, expected %.5f (%.4f %.4f %.4f %.4f)", j, r, out[r * n + j], want[r],
                     out[j], out[n + j], out[2 * n + j], out[3 * n + j]);
}

/* det_raw_output at 32 px (grids 4x4, 2x2, 1x1: 21 anchors) with one-hot
 * distributions, whose xywh are whole pixels worked out by hand, in the
 * anchor order and row layout of Ultralytics' output0. */
static void test_raw_output(void **state)
{
    (void)state;
    head h;
    head_init(&h, 2, 32, 2);
    assert_int_equal(det_anchors(&h.a), 21);
    /* Image 1, level 0 (stride 8), cell x 2, y 1: anchor 1 * 4 + 2 = 6 at
     * (2.5, 1.5) cells. l 2, t 1, r 3, b 0 bins: x1 0.5, x2 5.5, y1 0.5,
     * y2 1.5 cells, so centre (3, 1) * 8 = (24, 8), size (5, 1) * 8 = (40, 8). */
    float *v = anchor(&h, 1, 0, 2, 1);
    side(v, 0, 2, 2), side(v, 1, 1, 1), side(v, 2, 3, 3), side(v, 3, 0, 0);
    v[64 + 0] = 0.0f, v[64 + 1] = 2.0f;
    /* Level 2 (stride 32), the one cell: anchor 16 + 4 = 20 at (0.5, 0.5);
     * l = t = 0, r = b = 15: x1 0.5, x2 15.5, centre 8 * 32 = 256, size 480. */
    v = anchor(&h, 1, 2, 0, 0);
    side(v, 0, 0, 0), side(v, 1, 0, 0), side(v, 2, 15, 15), side(v, 3, 15, 15);
    v[64 + 0] = 1.0f;
    /* Level 1 (stride 16), cell x 1, y 0: anchor 16 + 1 = 17 at (1.5, 0.5);
     * every side half a bin (bins 0 and 1): a one-cell box, 16 x 16 px
     * centred on (24, 8). */
    v = anchor(&h, 1, 1, 1, 0);
    for (int s = 0; s < 4; s++) side(v, s, 0, 1);

    const float *outs[DET_LEVELS] = {h.lv[0], h.lv[1], h.lv[2]};
    const int n = 21;
    float out[(4 + 2) * 21];
    assert_int_equal(det_raw_output(&h.a, outs, 1, out), LUPE_OK);
    expect_col(out, n, 6, 24, 8, 40, 8);
    expect_col(out, n, 20, 256, 256, 480, 480);
    expect_col(out, n, 17, 24, 8, 16, 16);
    /* Untouched anchors have flat distributions (all logits 0): every side
     * 7.5 bins, a 15-cell box on the anchor: level 0 cell (3, 3) is anchor
     * 15 at (28, 28) px, 120 px wide. */
    expect_col(out, n, 15, 28, 28, 120, 120);
    assert_true(fabs(out[4 * n + 6] - 0.5) < 1e-6);
    assert_true(fabs(out[5 * n + 6] - sigm(2.0)) < 1e-6);
    assert_true(fabs(out[4 * n + 20] - sigm(1.0)) < 1e-6);
    assert_true(fabs(out[5 * n + 20] - sigm(-20.0)) < 1e-12);
    /* Image 0 is all flat: its anchor 6 is the plain 15-cell box at
     * (20, 12) px. */
    assert_int_equal(det_raw_output(&h.a, outs, 0, out), LUPE_OK);
    expect_col(out, n, 6, 20, 12, 120, 120);
    expect_col(out, n, 20, 16, 16, 480, 480);

    assert_int_equal(det_raw_output(&h.a, outs, 2, out), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "batch"));
    assert_int_equal(det_raw_output(&h.a, outs, 0, NULL), LUPE_EARG);
    const float *missing[DET_LEVELS] = {h.lv[0], NULL, h.lv[2]};
    assert_int_equal(det_raw_output(&h.a, missing, 0, out), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "level 1"));
    head_free(&h);
}

typedef struct cand {
    float logit;
    int l, x, y, c;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *p = a, *q = b;
    return (p->logit < q->logit) - (p->logit > q->logit);
}

/* 8 classes at 480: 4725 anchors x 8 = 37800 candidates, more than the
 * 30000 kept for NMS. Boxes are one cell each, so nothing overlaps by more
 * than 0.25 and the result must be the best 300 scores of all, including
 * the ones found after the buffer filled (level 2 is decoded last). */
static void test_decode_cap(void **state)
{
    (void)state;
    head h;
    const int nc = 8;
    head_init(&h, nc, 480, 1);
    cand *all = malloc(37800 * sizeof *all);
    assert_non_null(all);
    int a = 0, nall = 0;
    for (int l = 0; l < DET_LEVELS; l++) {
        int g = 480 >> (3 + l);
        for (int y = 0; y < g; y++)
            for (int x = 0; x < g; x++, a++) {
                float *v = anchor(&h, 0, l, x, y);
                for (int s = 0; s < 4; s++) side(v, s, 0, 1);
                for (int c = 0; c < nc; c++) {
                    /* 7919 is prime to 37800: a permutation of the ranks. */
                    long rank = ((long)(a * nc + c) * 7919) % 37800;
                    v[64 + c] = -5.0f + 10.0f * (float)rank / 37800.0f;
                    all[nall++] = (cand){v[64 + c], l, x, y, c};
                }
            }
    }
    assert_int_equal(nall, 37800);
    qsort(all, (size_t)nall, sizeof *all, cand_cmp);
    const float *outs[DET_LEVELS] = {h.lv[0], h.lv[1], h.lv[2]};
    det_pred *p = malloc(300 * sizeof *p);
    int n = det_detect(&h.a, outs, 0, 0.001f, 0.7f, 300, p);
    assert_int_equal(n, 300);
    int late = 0;
    for (int i = 0; i < n; i++) {
        const cand *w = &all[i];
        float s = 8 << w->l;
        assert_int_equal(p[i].cls, w->c);
        assert_true(p[i].score == 1.0f / (1.0f + expf(-w->logit)));
        assert_true(fabsf(p[i].x1 - w->x * s) < 1e-3f && fabsf(p[i].y2 - (w->y + 1) * s) < 1e-3f);
        if (w->l == 2) late++;
    }
    print_message("# best 300 of 37800 kept; %d of them from the last level\n", late);
    assert_true(late > 0);
    free(p);
    free(all);
    head_free(&h);
}

static det_pred P(float x1, float y1, float x2, float y2, float s, int c)
{
    return (det_pred){x1, y1, x2, y2, s, c};
}

static void test_iou(void **state)
{
    (void)state;
    det_pred a = P(0, 0, 10, 10, 1, 0), b = P(1, 0, 11, 10, 1, 0), c = P(20, 20, 30, 30, 1, 0);
    assert_float_equal(det_iou(&a, &b), 90.0f / 110.0f, 1e-6);
    assert_float_equal(det_iou(&a, &a), 1.0f, 0);
    assert_float_equal(det_iou(&a, &c), 0.0f, 0);
    det_pred z = P(5, 5, 5, 5, 1, 0); /* no area */
    assert_float_equal(det_iou(&z, &z), 0.0f, 0);
    det_pred t = P(10, 0, 20, 10, 1, 0); /* touching */
    assert_float_equal(det_iou(&a, &t), 0.0f, 0);
}

static void test_nms(void **state)
{
    (void)state;
    /* A-B: IoU 90/110 = 0.82 > 0.7, B goes. A-C: 50/150 = 0.33, C stays.
     * D is B's box in another class: stays. */
    det_pred p[8] = {P(5, 0, 15, 10, 0.7f, 0), P(0, 0, 10, 10, 0.9f, 0), P(1, 0, 11, 10, 0.8f, 0),
                     P(1, 0, 11, 10, 0.6f, 1)};
    int n = det_nms(p, 4, 0.7f, 300);
    assert_int_equal(n, 3);
    assert_true(p[0].score == 0.9f && p[1].score == 0.7f && p[2].score == 0.6f && p[2].cls == 1);

    /* At a threshold of 0.9, 0.82 is not enough: all four stay. */
    det_pred q[4] = {P(0, 0, 10, 10, 0.9f, 0), P(1, 0, 11, 10, 0.8f, 0), P(5, 0, 15, 10, 0.7f, 0)};
    assert_int_equal(det_nms(q, 3, 0.9f, 300), 3);

    /* IoU exactly 0.5 (100 / 200) is not over 0.5: kept. */
    det_pred e[2] = {P(0, 0, 10, 10, 0.9f, 0), P(0, 0, 10, 20, 0.8f, 0)};
    assert_int_equal(det_nms(e, 2, 0.5f, 300), 2);
    assert_int_equal(det_nms(e, 2, 0.49f, 300), 1);

    /* max_det: the best ones, in order. */
    det_pred m[5];
    for (int i = 0; i < 5; i++) m[i] = P(20.0f * i, 0, 20.0f * i + 10, 10, 0.1f * (i + 1), 0);
    assert_int_equal(det_nms(m, 5, 0.7f, 2), 2);
    assert_true(m[0].score == 0.5f && m[1].score == 0.4f);

    /* Ties: equal scores overlapping; the lower class, then the left-most
     * box wins, whatever the input order. */
    det_pred t1[3] = {P(1, 0, 11, 10, 0.5f, 0), P(0, 0, 10, 10, 0.5f, 0), P(0, 0, 10, 10, 0.5f, 1)};
    det_pred t2[3] = {t1[2], t1[0], t1[1]};
    assert_int_equal(det_nms(t1, 3, 0.7f, 300), 2);
    assert_int_equal(det_nms(t2, 3, 0.7f, 300), 2);
    for (int i = 0; i < 2; i++) assert_memory_equal(&t1[i], &t2[i], sizeof t1[i]);
    assert_true(t1[0].cls == 0 && t1[0].x1 == 0.0f && t1[1].cls == 1);

    /* A chain: B overlaps A and C, but C is compared only with kept boxes
     * (A), so C stays after B is dropped. */
    det_pred ch[3] = {P(0, 0, 10, 10, 0.9f, 0), P(2, 0, 12, 10, 0.8f, 0), P(4, 0, 14, 10, 0.7f, 0)};
    assert_int_equal(det_nms(ch, 3, 0.6f, 300), 2); /* A-B 80/120 = 0.67 > 0.6; A-C 60/140 = 0.43 */
    assert_true(ch[1].score == 0.7f);

    assert_int_equal(det_nms(NULL, 0, 0.7f, 300), 0);
    assert_int_equal(det_nms(p, 3, 0.7f, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_hand), cmocka_unit_test(test_decode_soft), cmocka_unit_test(test_decode_threshold),
        cmocka_unit_test(test_decode_cap),  cmocka_unit_test(test_raw_output),
        cmocka_unit_test(test_iou),         cmocka_unit_test(test_nms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
