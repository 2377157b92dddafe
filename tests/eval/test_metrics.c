/*
 * Tests of the detection metrics on cases small enough to work out on
 * paper: 101-point AP with the trapezoid rule, AP over IoU thresholds,
 * COCO's score-ordered matching, the maximum-F1 operating point, the
 * confusion matrix, and the empty and degenerate cases.
 */
#include <math.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/eval.h"

#define TOL 1e-12

static det_pred P(float x1, float y1, float x2, float y2, float s, int c)
{
    return (det_pred){x1, y1, x2, y2, s, c};
}

static det_box G(float x1, float y1, float x2, float y2, int c)
{
    return (det_box){0, c, x1, y1, x2, y2};
}

static void near(double got, double want, const char *what)
{
    if (!(fabs(got - want) <= TOL)) fail_msg("%s = %.15f, expected %.15f", what, got, want);
}

static int64_t cm(const eval_result *r, int row, int col)
{
    return r->confusion[(size_t)row * (r->nc + 1) + col];
}

/* Two boxes, three predictions ranked TP (0.9), FP (0.8), TP (0.7).
 * recall 0.5, 0.5, 1; precision 1, 1/2, 2/3. Framed by (0, 1) and (1, 0),
 * the envelope over recall is 1 before 0.5, 2/3 from 0.5 (interpolation
 * takes the last point at a repeated recall) to 0.99, and 0 at 1.
 * Trapezoids of width 0.01: 49 x 1 + (1 + 2/3)/2 + 49 x 2/3 + (2/3 + 0)/2,
 * times 0.01: 0.49 + 0.008333 + 0.326667 + 0.003333 = 0.828333 = 497/600.
 *
 * The third prediction overlaps its box by 0.62 only (6.2 x 10 of 100), so
 * from IoU 0.65 on it is a false positive: TP, FP, FP, recall stuck at 0.5,
 * precision 1, 1/2, 1/3; envelope 1 before 0.5, then the line from (0.5,
 * 1/3) to (1, 0): 0.49 + (1 + 1/3)/2 x 0.01 + 0.5 x 0.5 x 1/3 = 0.58.
 * AP50-95 = (3 x 497/600 + 7 x 0.58) / 10 = 0.6545.
 *
 * Max F1: above 0.9 recall is 0; below 0.7 (the lowest score) precision
 * 2/3 and recall 1 give F1 0.8, the highest; ties go to the highest
 * confidence, the last grid point under 0.7: 699/999. */
static void test_ap_hand(void **state)
{
    (void)state;
    eval_ctx *e = NULL;
    const char *names[] = {"scratch"};
    assert_int_equal(eval_new(1, names, &e), LUPE_OK);
    det_box g[2] = {G(0, 0, 10, 10, 0), G(50, 50, 60, 60, 0)};
    det_pred p[3] = {P(100, 100, 110, 110, 0.8f, 0), P(50, 50, 56.2f, 60, 0.7f, 0), P(0, 0, 10, 10, 0.9f, 0)};
    assert_int_equal(eval_add(e, p, 3, g, 2), LUPE_OK);
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    near(r.ap50[0], 497.0 / 600.0, "AP50");
    for (int k = 0; k < EVAL_NIOU; k++) near(r.ap_iou[k], k < 3 ? 497.0 / 600.0 : 0.58, "AP at threshold k");
    near(r.ap[0], 0.6545, "AP50-95");
    near(r.map50, 497.0 / 600.0, "mAP50");
    near(r.map, 0.6545, "mAP50-95");
    assert_int_equal(r.conf_index, 699);
    near(r.conf, 699.0 / 999.0, "conf");
    near(r.f1, 0.8, "F1");
    near(r.p, 2.0 / 3.0, "P");
    near(r.r, 1.0, "R");
    assert_int_equal(r.ngt[0], 2);
    assert_int_equal(r.nimages, 1);
    assert_int_equal(r.npred, 3);
    /* Confusion: two matched, the 0.8 one is a false positive. */
    assert_int_equal(cm(&r, 0, 0), 2);
    assert_int_equal(cm(&r, 0, 1), 1);
    assert_int_equal(cm(&r, 1, 0), 0);
    /* The PR curve is the envelope: 1 at recall 0.25, 2/3 at 0.75. */
    near(r.pr[250], 1.0, "PR at 0.25");
    near(r.pr[750], 2.0 / 3.0, "PR at 0.75");
    eval_result_free(&r);
    eval_free(e);
}

/* A perfect detector: Ultralytics' trapezoid closes the curve at (1, 0),
 * so the last interval is half: 0.99 + 0.005 = 0.995 at every threshold. */
static void test_perfect(void **state)
{
    (void)state;
    eval_ctx *e = NULL;
    assert_int_equal(eval_new(2, NULL, &e), LUPE_OK);
    assert_string_equal(eval_class_name(e, 1), "class 1");
    for (int i = 0; i < 3; i++) {
        det_box g[2] = {G(10, 10, 40, 40, 0), G(100, 50, 130, 90, 1)};
        det_pred p[2] = {P(10, 10, 40, 40, 0.9f - 0.1f * i, 0), P(100, 50, 130, 90, 0.85f - 0.1f * i, 1)};
        assert_int_equal(eval_add(e, p, 2, g, 2), LUPE_OK);
    }
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    near(r.map50, 0.995, "mAP50");
    near(r.map, 0.995, "mAP50-95");
    near(r.p, 1.0, "P");
    near(r.r, 1.0, "R");
    near(r.f1, 1.0, "F1");
    assert_int_equal(cm(&r, 0, 0), 3);
    assert_int_equal(cm(&r, 1, 1), 3);
    eval_result_free(&r);
    eval_free(e);
}

/* An IoU of exactly 0.5 (100 of 200) is a match at 0.5 and at no higher
 * threshold: AP 0.995 at 0.5 and 0 at the nine others. */
static void test_iou_boundary(void **state)
{
    (void)state;
    eval_ctx *e = NULL;
    assert_int_equal(eval_new(1, NULL, &e), LUPE_OK);
    det_box g = G(0, 0, 10, 10, 0);
    det_pred p = P(0, 0, 10, 20, 0.5f, 0);
    assert_int_equal(eval_add(e, &p, 1, &g, 1), LUPE_OK);
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    near(r.ap_iou[0], 0.995, "AP50");
    for (int k = 1; k < EVAL_NIOU; k++) near(r.ap_iou[k], 0.0, "AP over 0.5");
    near(r.map, 0.0995, "mAP50-95");
    assert_int_equal(cm(&r, 0, 0), 1); /* 0.5 > 0.45 */
    eval_result_free(&r);
    eval_free(e);
}

/* COCO matches by score: the 0.9 prediction takes box 1 (IoU 0.818 beats
 * its 0.667 with box 2), and the 0.5 one, which overlaps box 1 better
 * (0.905) but box 2 by only 0.481, is left a false positive. Matching by
 * IoU first (Ultralytics) would pair 0.5 with box 1 and 0.9 with box 2 and
 * give AP50 0.995. Here: TP, FP over 2 boxes; envelope 1 before 0.5, then
 * the line from (0.5, 0.5) to (1, 0): 0.49 + 0.0075 + 0.125 = 0.6225. */
static void test_matching_by_score(void **state)
{
    (void)state;
    eval_ctx *e = NULL;
    assert_int_equal(eval_new(1, NULL, &e), LUPE_OK);
    det_box g[2] = {G(0, 0, 10, 10, 0), G(3, 0, 13, 10, 0)};
    det_pred p[2] = {P(-0.5f, 0, 9.5f, 10, 0.5f, 0), P(1, 0, 11, 10, 0.9f, 0)};
    assert_int_equal(eval_add(e, p, 2, g, 2), LUPE_OK);
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    near(r.ap50[0], 0.6225, "AP50");
    eval_result_free(&r);
    eval_free(e);
}

/* A class with boxes and no predictions scores 0 and counts in the means;
 * a class with predictions and no boxes is left out of them. */
static void test_missing_classes(void **state)
{
    (void)state;
    eval_ctx *e = NULL;
    assert_int_equal(eval_new(3, NULL, &e), LUPE_OK);
    det_box g[2] = {G(0, 0, 10, 10, 0), G(50, 50, 60, 60, 1)};
    det_pred p[2] = {P(0, 0, 10, 10, 0.9f, 0), P(20, 20, 30, 30, 0.8f, 2)};
    assert_int_equal(eval_add(e, p, 2, g, 2), LUPE_OK);
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    assert_int_equal(r.ncls_gt, 2);
    near(r.ap50[0], 0.995, "AP50 of class 0");
    near(r.ap50[1], 0.0, "AP50 of class 1");
    near(r.ap50[2], 0.0, "AP50 of class 2");
    near(r.map50, 0.995 / 2, "mAP50");
    /* Mean F1 is (1 + 0) / 2 at every confidence up to 0.9. */
    near(r.f1, 0.5, "F1");
    near(r.p, 0.5, "P");
    near(r.r, 0.5, "R");
    assert_int_equal(cm(&r, 0, 0), 1);
    assert_int_equal(cm(&r, 3, 1), 1); /* class 1 box missed */
    assert_int_equal(cm(&r, 2, 3), 1); /* class 2 false positive */
    eval_result_free(&r);
    eval_free(e);
}

static void expect_all_zero(const eval_result *r)
{
    near(r->map50, 0, "mAP50");
    near(r->map, 0, "mAP50-95");
    near(r->p, 0, "P");
    near(r->r, 0, "R");
    near(r->f1, 0, "F1");
}

static void test_empty(void **state)
{
    (void)state;
    eval_ctx *e = NULL;
    eval_result r;
    /* Nothing added at all. */
    assert_int_equal(eval_new(2, NULL, &e), LUPE_OK);
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    expect_all_zero(&r);
    assert_int_equal(r.ncls_gt, 0);
    eval_result_free(&r);
    /* Empty images, and predictions where there is no ground truth. */
    assert_int_equal(eval_add(e, NULL, 0, NULL, 0), LUPE_OK);
    det_pred p = P(0, 0, 10, 10, 0.9f, 1);
    assert_int_equal(eval_add(e, &p, 1, NULL, 0), LUPE_OK);
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    expect_all_zero(&r);
    assert_int_equal(r.nimages, 2);
    assert_int_equal(cm(&r, 1, 2), 1);
    eval_result_free(&r);
    eval_free(e);

    /* Ground truth and no predictions. */
    assert_int_equal(eval_new(1, NULL, &e), LUPE_OK);
    det_box g[2] = {G(0, 0, 10, 10, 0), G(5, 5, 15, 15, 0)};
    assert_int_equal(eval_add(e, NULL, 0, g, 2), LUPE_OK);
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    expect_all_zero(&r);
    assert_int_equal(r.ncls_gt, 1);
    assert_int_equal(cm(&r, 1, 0), 2);
    eval_result_free(&r);
    eval_free(e);
}

/* Class-agnostic matching over score 0.25: a box found as the wrong class
 * lands off the diagonal, a weak prediction does not count, the better
 * overlap wins a box and the other prediction is a false positive. */
static void test_confusion(void **state)
{
    (void)state;
    eval_ctx *e = NULL;
    assert_int_equal(eval_new(2, NULL, &e), LUPE_OK);
    det_box g[3] = {G(0, 0, 10, 10, 0), G(50, 50, 60, 60, 1), G(100, 100, 110, 110, 1)};
    det_pred p[5] = {
        P(0, 0, 10, 10, 0.9f, 1),       /* class 0 box seen as class 1 */
        P(50, 50, 60, 60, 0.2f, 1),     /* under 0.25: not counted */
        P(100, 100, 110, 110, 0.3f, 1), /* IoU 1 */
        P(101, 100, 111, 110, 0.95f, 1),/* IoU 0.82, loses the box to the one above */
        P(0, 0, 10, 10, 0.25f, 0),      /* exactly 0.25: not over it */
    };
    assert_int_equal(eval_add(e, p, 5, g, 3), LUPE_OK);
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    assert_int_equal(cm(&r, 1, 0), 1);
    assert_int_equal(cm(&r, 1, 1), 1);
    assert_int_equal(cm(&r, 1, 2), 1); /* the 0.95 one */
    assert_int_equal(cm(&r, 2, 1), 1); /* the box only the 0.2 one found */
    assert_int_equal(cm(&r, 0, 0) + cm(&r, 0, 1) + cm(&r, 0, 2) + cm(&r, 2, 0), 0);
    eval_result_free(&r);
    eval_free(e);
}

/* The order of predictions inside an image does not matter when their
 * scores differ. (Equal scores are ranked in arrival order, as COCO's
 * stable sort ranks them, and that order can move AP: the curve passes
 * through a point after the first of the tied predictions.) */
static void test_order_invariance(void **state)
{
    (void)state;
    det_box g[3] = {G(0, 0, 10, 10, 0), G(3, 0, 13, 10, 0), G(40, 40, 60, 60, 0)};
    det_pred p[5] = {P(-0.5f, 0, 9.5f, 10, 0.5f, 0), P(1, 0, 11, 10, 0.9f, 0), P(40, 40, 58, 60, 0.45f, 0),
                     P(41, 40, 60, 61, 0.7f, 0), P(200, 200, 210, 210, 0.6f, 0)};
    double first = -1;
    for (int rot = 0; rot < 5; rot++) {
        det_pred q[5];
        for (int i = 0; i < 5; i++) q[i] = p[(i + rot) % 5];
        eval_ctx *e = NULL;
        assert_int_equal(eval_new(1, NULL, &e), LUPE_OK);
        assert_int_equal(eval_add(e, q, 5, g, 3), LUPE_OK);
        eval_result r;
        assert_int_equal(eval_compute(e, &r), LUPE_OK);
        if (first < 0) first = r.map;
        near(r.map, first, "mAP50-95 after reordering");
        eval_result_free(&r);
        eval_free(e);
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    eval_ctx *e = NULL;
    assert_int_equal(eval_new(0, NULL, &e), LUPE_EARG);
    assert_int_equal(eval_new(2, NULL, &e), LUPE_OK);
    det_pred p = P(0, 0, 1, 1, 0.5f, 2);
    assert_int_equal(eval_add(e, &p, 1, NULL, 0), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "class 2"));
    p.cls = 0, p.score = NAN;
    assert_int_equal(eval_add(e, &p, 1, NULL, 0), LUPE_EARG);
    det_box g = G(0, 0, 1, 1, -1);
    assert_int_equal(eval_add(e, NULL, 0, &g, 1), LUPE_EARG);
    assert_int_equal(eval_add(e, NULL, 1, NULL, 0), LUPE_EARG);
    assert_int_equal(eval_add(e, NULL, 0, NULL, -1), LUPE_EARG);
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK); /* the refused images left no trace */
    assert_int_equal(r.nimages, 0);
    eval_result_free(&r);
    eval_free(e);
    eval_free(NULL);
    eval_result_free(NULL);
}

/* Every allocation of eval_new, eval_add and eval_compute failing in turn:
 * an error each time, never a leak or a crash. */
static void test_out_of_memory(void **state)
{
    (void)state;
    det_box g[2] = {G(0, 0, 10, 10, 0), G(50, 50, 60, 60, 1)};
    det_pred p[3] = {P(0, 0, 10, 10, 0.9f, 0), P(50, 50, 60, 60, 0.8f, 1), P(5, 5, 9, 9, 0.3f, 0)};
    lupe_alloc_stats before, after;
    lupe_alloc_get_stats(&before);
    int ok = 0;
    for (uint64_t nth = 1; nth < 200 && !ok; nth++) {
        eval_ctx *e = NULL;
        eval_result r;
        lupe_alloc_fail_nth(nth);
        lupe_status st = eval_new(2, NULL, &e);
        if (!st) st = eval_add(e, p, 3, g, 2);
        if (!st) st = eval_compute(e, &r);
        lupe_alloc_fail_nth(0);
        if (!st) {
            near(r.map50, 0.995, "mAP50");
            eval_result_free(&r);
            ok = 1;
        } else {
            assert_int_equal(st, LUPE_ENOMEM);
        }
        eval_free(e);
    }
    assert_true(ok);
    lupe_alloc_get_stats(&after);
    assert_int_equal(after.live_bytes, before.live_bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_hand),          cmocka_unit_test(test_perfect),
        cmocka_unit_test(test_iou_boundary),     cmocka_unit_test(test_matching_by_score),
        cmocka_unit_test(test_missing_classes),  cmocka_unit_test(test_empty),
        cmocka_unit_test(test_confusion),        cmocka_unit_test(test_order_invariance),
        cmocka_unit_test(test_bad_input),        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
