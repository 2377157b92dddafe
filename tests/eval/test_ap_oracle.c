/*
 * The metrics against an independent implementation: tests/eval/data/
 * ap_case.json holds seeded random validation sets (boxes of 2-3 classes,
 * noisy predictions, tied scores, a class never predicted, a class never
 * labelled, no ground truth at all) and the figures that tools/ref/ap.py
 * computed for them (regenerate with `make golden-ap`).
 *
 * Tolerance 1e-9: both sides start from the same float32 values and do the
 * same IEEE double operations in the same order, so they agree to the last
 * bit in practice (the test prints the largest difference); the operating
 * point (an argmax over 1000 confidences) and the confusion counts must be
 * equal exactly.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/eval.h"

#define TOL 1e-9

static double maxdiff;

static const char *case_path(void)
{
    const char *p = getenv("LUPE_AP_CASE");
    return p ? p : "tests/eval/data/ap_case.json";
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) fail_msg("expected.%s is missing or not a number", key);
    return json_number_value(v);
}

static void close_to(const char *cname, const char *what, int idx, double got, double want)
{
    double d = fabs(got - want);
    if (d > maxdiff) maxdiff = d;
    if (!(d <= TOL)) fail_msg("%s: %s[%d] = %.17g, oracle %.17g (diff %.3g)", cname, what, idx, got, want, d);
}

static void per_class(const char *cname, json_t *ex, const char *key, const double *got, int nc)
{
    json_t *a = json_object_get(ex, key);
    if (!json_is_array(a) || (int)json_array_size(a) != nc)
        fail_msg("%s: expected.%s is not %d numbers", cname, key, nc);
    for (int c = 0; c < nc; c++) close_to(cname, key, c, got[c], json_number_value(json_array_get(a, (size_t)c)));
}

static float fnum(json_t *row, size_t i)
{
    /* The oracle wrote float32 values, so the conversion is exact. */
    return (float)json_number_value(json_array_get(row, i));
}

static void run_case(json_t *c)
{
    const char *cname = json_string_value(json_object_get(c, "name"));
    int nc = (int)json_integer_value(json_object_get(c, "nc"));
    json_t *images = json_object_get(c, "images"), *ex = json_object_get(c, "expected");
    assert_non_null(cname);
    assert_true(json_is_array(images) && json_is_object(ex));
    eval_ctx *e = NULL;
    assert_int_equal(eval_new(nc, NULL, &e), LUPE_OK);
    det_pred p[64];
    det_box g[64];
    size_t ii;
    json_t *im;
    int npred = 0;
    json_array_foreach(images, ii, im) {
        json_t *gt = json_object_get(im, "gt"), *pr = json_object_get(im, "pred"), *row;
        size_t k;
        int ng = 0, np = 0;
        assert_true(json_array_size(gt) <= 64 && json_array_size(pr) <= 64);
        json_array_foreach(gt, k, row) {
            g[ng++] = (det_box){0, (int)json_integer_value(json_array_get(row, 0)), fnum(row, 1), fnum(row, 2),
                                fnum(row, 3), fnum(row, 4)};
        }
        json_array_foreach(pr, k, row) {
            p[np++] = (det_pred){fnum(row, 2), fnum(row, 3), fnum(row, 4), fnum(row, 5), fnum(row, 1),
                                 (int)json_integer_value(json_array_get(row, 0))};
        }
        assert_int_equal(eval_add(e, p, np, g, ng), LUPE_OK);
        npred += np;
    }
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    print_message("# %-28s %3zu images %4d predictions: mAP50 %.4f mAP50-95 %.4f P %.4f R %.4f at %.3f\n", cname,
                  json_array_size(images), npred, r.map50, r.map, r.p, r.r, r.conf);

    close_to(cname, "map50", 0, r.map50, num(ex, "map50"));
    close_to(cname, "map", 0, r.map, num(ex, "map"));
    close_to(cname, "p", 0, r.p, num(ex, "p"));
    close_to(cname, "r", 0, r.r, num(ex, "r"));
    close_to(cname, "f1", 0, r.f1, num(ex, "f1"));
    close_to(cname, "conf", 0, r.conf, num(ex, "conf"));
    assert_int_equal(r.conf_index, (int)num(ex, "conf_index"));
    per_class(cname, ex, "ap50", r.ap50, nc);
    per_class(cname, ex, "ap", r.ap, nc);
    per_class(cname, ex, "p_class", r.p_class, nc);
    per_class(cname, ex, "r_class", r.r_class, nc);
    json_t *api = json_object_get(ex, "ap_iou"), *ngt = json_object_get(ex, "ngt");
    json_t *cmx = json_object_get(ex, "confusion");
    for (int cl = 0; cl < nc; cl++) {
        assert_int_equal(r.ngt[cl], json_integer_value(json_array_get(ngt, (size_t)cl)));
        for (int k = 0; k < EVAL_NIOU; k++)
            close_to(cname, "ap_iou", cl * EVAL_NIOU + k, r.ap_iou[cl * EVAL_NIOU + k],
                     json_number_value(json_array_get(json_array_get(api, (size_t)cl), (size_t)k)));
    }
    for (int row = 0; row <= nc; row++)
        for (int col = 0; col <= nc; col++) {
            int64_t want = json_integer_value(json_array_get(json_array_get(cmx, (size_t)row), (size_t)col));
            if (r.confusion[row * (nc + 1) + col] != want)
                fail_msg("%s: confusion[%d][%d] = %lld, oracle %lld", cname, row, col,
                         (long long)r.confusion[row * (nc + 1) + col], (long long)want);
        }
    eval_result_free(&r);
    eval_free(e);
}

static void test_oracle(void **state)
{
    (void)state;
    json_t *root = NULL;
    if (lupe_json_load_file(case_path(), 16u << 20, &root))
        fail_msg("%s (regenerate with make golden-ap)", lupe_errmsg());
    json_t *cases = json_object_get(root, "cases"), *c;
    assert_true(json_is_array(cases) && json_array_size(cases) >= 3);
    size_t i;
    json_array_foreach(cases, i, c) run_case(c);
    print_message("# largest difference from the oracle: %.3g (tolerance %.0e)\n", maxdiff, TOL);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_oracle)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
