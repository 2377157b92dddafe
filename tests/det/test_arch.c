/*
 * Tests of the YOLOv8 architecture table: parameter counts equal
 * Ultralytics' for the same scale and classes, output shapes follow the
 * strides, and bad arguments are refused.
 */
#include <string.h>

#include "lib/testutil.h"
#include "lupe/det.h"

static size_t count(const char *scale, int nc, int imgsz, int outs_c[3], int outs_hw[3])
{
    det_arch a;
    assert_int_equal(det_arch_init(&a, scale, nc, imgsz, 1), LUPE_OK);
    eng_graph *g = eng_graph_new("yolo");
    int x, outs[3];
    assert_int_equal(det_build(g, &a, &x, outs), LUPE_OK);
    assert_int_equal(eng_graph_plan(g, 0), LUPE_OK);
    const eng_param *p = NULL;
    int np = eng_graph_params(g, &p);
    size_t n = 0;
    for (int i = 0; i < np; i++) n += p[i].n;
    for (int l = 0; l < 3; l++) {
        int s[4];
        eng_graph_shape(g, outs[l], s);
        outs_c[l] = s[3];
        outs_hw[l] = s[1];
    }
    eng_graph_free(g);
    return n;
}

static void test_param_counts(void **state)
{
    (void)state;
    int c[3], hw[3];
    /* Ultralytics 8.0 reports 3,011,043 parameters for YOLOv8n with one
     * class and 11,135,987 for YOLOv8s; both include the 16 fixed weights
     * of the DFL decoding conv, which lupe computes without parameters. */
    assert_int_equal(count("n", 1, 480, c, hw), 3011043 - 16);
    assert_int_equal(c[0], 64 + 1);
    assert_int_equal(hw[0], 60);
    assert_int_equal(hw[1], 30);
    assert_int_equal(hw[2], 15);
    assert_int_equal(count("s", 1, 320, c, hw), 11135987 - 16);
    assert_int_equal(count("n", 80, 640, c, hw), 3157200 - 16);
    assert_int_equal(c[2], 64 + 80);
    assert_int_equal(hw[0], 80);
}

static void test_bad_args(void **state)
{
    (void)state;
    det_arch a;
    assert_int_equal(det_arch_init(&a, "x", 1, 480, 1), LUPE_EARG);
    assert_int_equal(det_arch_init(&a, "n", 0, 480, 1), LUPE_EARG);
    assert_int_equal(det_arch_init(&a, "n", 1, 470, 1), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "multiple of 32"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_param_counts), cmocka_unit_test(test_bad_args)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
