/*
 * Tests of the evaluation plots: the chart, run-folder plots, previews and
 * montage are PNG or JPEG files that decode, have the expected size, and
 * carry the series' colours and text where the plot should be.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/eval.h"

static lupe_img *load(const char *path)
{
    lupe_img *im = NULL;
    if (lupe_img_load(path, 3, NULL, &im)) fail_msg("loading %s: %s", path, lupe_errmsg());
    return im;
}

/* Pixels within 40 of rgb on every channel, inside [x0, x1) x [y0, y1);
 * the bounding box of those found goes to box (may be NULL). */
static int count_color(const lupe_img *im, uint32_t rgb, int x0, int y0, int x1, int y1, int box[4])
{
    int n = 0, bx0 = im->w, by0 = im->h, bx1 = -1, by1 = -1;
    int want[3] = {(int)(rgb >> 16 & 255), (int)(rgb >> 8 & 255), (int)(rgb & 255)};
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = im->data + ((size_t)y * im->w + x) * 3;
            if (abs(p[0] - want[0]) > 40 || abs(p[1] - want[1]) > 40 || abs(p[2] - want[2]) > 40) continue;
            n++;
            bx0 = x < bx0 ? x : bx0, by0 = y < by0 ? y : by0, bx1 = x > bx1 ? x : bx1, by1 = y > by1 ? y : by1;
        }
    if (box) box[0] = bx0, box[1] = by0, box[2] = bx1, box[3] = by1;
    return n;
}

static int non_white(const lupe_img *im, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = im->data + ((size_t)y * im->w + x) * 3;
            n += p[0] < 250 || p[1] < 250 || p[2] < 250;
        }
    return n;
}

static void test_chart(void **state)
{
    (void)state;
    double x[200], up[200], down[200];
    for (int i = 0; i < 200; i++) {
        x[i] = i / 199.0 * 50.0; /* auto range 0..50 */
        up[i] = x[i] * x[i] / 50.0;
        down[i] = i == 100 ? NAN : 50.0 - x[i]; /* a gap in the middle */
    }
    eval_series s[2] = {{"rising", x, up, 200, LUPE_RGB(214, 39, 40), 3}, {"falling", x, down, 200, 0, 0}};
    const char *path = tu_path("chart.png");
    assert_int_equal(eval_plot_lines(path, "Two curves", "epoch", "loss", s, 2), LUPE_OK);
    lupe_img *im = load(path);
    assert_int_equal(im->w, 960);
    assert_int_equal(im->h, 640);
    /* The red series climbs from bottom left to top right across most of
     * the image; the second takes the first palette colour (blue). */
    int box[4];
    int red = count_color(im, LUPE_RGB(214, 39, 40), 0, 0, im->w, im->h, box);
    print_message("# red pixels %d, box %d,%d..%d,%d\n", red, box[0], box[1], box[2], box[3]);
    assert_true(red > 1500);
    assert_true(box[2] - box[0] > im->w * 2 / 3 && box[3] - box[1] > im->h / 2);
    assert_true(count_color(im, 0x1f77b4, 0, 0, im->w, im->h, NULL) > 800);
    /* Axis numbers, labels and title are dark text in the margins. */
    assert_true(count_color(im, LUPE_RGB(34, 34, 34), 0, 0, 80, im->h, NULL) > 100);      /* y ticks and label */
    assert_true(count_color(im, LUPE_RGB(34, 34, 34), 0, im->h - 60, im->w, im->h, NULL) > 100); /* x */
    assert_true(count_color(im, LUPE_RGB(34, 34, 34), 300, 0, 660, 45, NULL) > 100);     /* title */
    lupe_img_free(im);

    /* Fixed ranges, custom size, no series; and refusals. */
    eval_chart c = {"empty", "x", "y", 0, 1, 0, 1, 400, 300};
    lupe_img *r = NULL;
    assert_int_equal(eval_chart_render(&c, NULL, 0, &r), LUPE_OK);
    assert_int_equal(r->w, 400);
    lupe_img_free(r);
    c.w = 50;
    assert_int_equal(eval_chart_render(&c, NULL, 0, &r), LUPE_EARG);
    eval_series bad = {"x", NULL, NULL, 3, 0, 0};
    c.w = 400;
    assert_int_equal(eval_chart_render(&c, &bad, 1, &r), LUPE_EARG);
    assert_null(r);
    double huge[2] = {-1e308, 1e308};
    eval_series wide = {"x", huge, huge, 2, 0, 0};
    eval_chart autoc = {"auto", "x", "y", 0, 0, 0, 0, 400, 300};
    assert_int_equal(eval_chart_render(&autoc, &wide, 1, &r), LUPE_EARG);
}

/* A small evaluation of two classes; the five plots of a run folder. */
static void test_run_plots(void **state)
{
    (void)state;
    const char *names[] = {"scratch", "dent"};
    eval_ctx *e = NULL;
    assert_int_equal(eval_new(2, names, &e), LUPE_OK);
    for (int i = 0; i < 20; i++) {
        float o = (float)(i % 5);
        det_box g[2] = {{0, 0, 10 + o, 10, 60 + o, 40}, {0, 1, 100, 100 + o, 150, 160}};
        det_pred p[4] = {{10 + o, 10, 60 + o, 40, 0.3f + 0.03f * i, 0},
                         {100, 100 + o, 150 - 3 * o, 160, 0.9f - 0.02f * i, 1},
                         {200, 200, 220, 230, 0.05f + 0.04f * i, 0},
                         {10 + o, 10, 60 + o, 40, 0.5f, 1}};
        assert_int_equal(eval_add(e, p, 4, g, 2), LUPE_OK);
    }
    eval_result r;
    assert_int_equal(eval_compute(e, &r), LUPE_OK);
    const char *dir = tu_path("run/val");
    assert_int_equal(eval_plots(e, &r, dir), LUPE_OK);
    static const char *const files[] = {"PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png"};
    for (int k = 0; k < 4; k++) {
        char *p = lupe_path_join(dir, files[k]);
        lupe_img *im = load(p);
        assert_int_equal(im->w, 960);
        assert_int_equal(im->h, 640);
        /* Inside the axes: curves in the class colours and the mean. */
        int inside = non_white(im, 120, 80, 900, 540);
        int mean = count_color(im, LUPE_RGB(20, 40, 120), 120, 80, 900, 560, NULL);
        print_message("# %s: %d non-white pixels inside, %d of the mean curve\n", files[k], inside, mean);
        assert_true(inside > 5000 && mean > 500);
        assert_true(count_color(im, 0x1f77b4, 0, 0, im->w, im->h, NULL) > 200); /* class 0 */
        lupe_img_free(im);
        lupe_free(p);
    }
    char *p = lupe_path_join(dir, "confusion_matrix.png");
    lupe_img *im = load(p);
    print_message("# confusion matrix %dx%d\n", im->w, im->h);
    assert_true(im->w >= 400 && im->h >= 400);
    /* Three classes' worth of cells, at least one dark (a full column). */
    assert_true(count_color(im, LUPE_RGB(8, 48, 107), 0, 0, im->w, im->h, NULL) > 1000);
    lupe_img_free(im);
    lupe_free(p);
    eval_result_free(&r);

    /* Nothing evaluated: the plots are still drawn (axes, no curves). */
    eval_ctx *empty = NULL;
    assert_int_equal(eval_new(1, NULL, &empty), LUPE_OK);
    assert_int_equal(eval_compute(empty, &r), LUPE_OK);
    assert_int_equal(eval_plots(empty, &r, tu_path("run/empty")), LUPE_OK);
    assert_int_equal(eval_plots(e, &r, tu_path("run/mismatch")), LUPE_EARG); /* result of another context */
    eval_result_free(&r);
    eval_free(empty);
    eval_free(e);
}

static void test_preview_montage(void **state)
{
    (void)state;
    lupe_img *im = lupe_img_new(320, 240, 3);
    memset(im->data, 90, (size_t)320 * 240 * 3);
    det_box g = {0, 0, 40, 50, 140, 120};
    det_pred p[2] = {{44, 48, 150, 118, 0.87f, 0}, {200, 150, 260, 200, 0.1f, 0}};
    const char *names[] = {"scratch"};
    const char *path = tu_path("preview.png");
    assert_int_equal(eval_preview(path, im, &g, 1, p, 2, 0.25f, names), LUPE_OK);
    lupe_img *out = load(path);
    assert_int_equal(out->w, 320);
    assert_int_equal(out->h, 240);
    int gbox[4], pbox[4];
    int green = count_color(out, LUPE_RGB(40, 210, 60), 0, 0, 320, 240, gbox);
    int red = count_color(out, 0xff3b30, 0, 0, 320, 240, pbox);
    print_message("# preview: ground truth %d px in %d,%d..%d,%d; prediction %d px in %d,%d..%d,%d\n", green, gbox[0],
                  gbox[1], gbox[2], gbox[3], red, pbox[0], pbox[1], pbox[2], pbox[3]);
    assert_true(green > 300 && red > 300);
    assert_int_equal(gbox[0], 40);
    assert_int_equal(gbox[1], 50);
    assert_true(pbox[2] >= 149 && pbox[2] < 200); /* the 0.1 box (up to 260) is under conf: not drawn */
    assert_true(pbox[1] < 48);                    /* the label tab above the box */
    assert_int_equal(count_color(out, LUPE_RGB(90, 90, 90), 0, 0, 320, 240, NULL) > 60000, 1);

    const lupe_img *tiles[3] = {out, im, out};
    const char *caps[3] = {"a.jpg", NULL, "c.jpg"};
    lupe_img *m = NULL;
    assert_int_equal(eval_montage(tiles, caps, 3, 0, 200, &m), LUPE_OK);
    assert_int_equal(m->w, 2 * 200 + 3 * 4); /* 2 columns, 2 rows */
    assert_int_equal(m->h, 2 * 200 + 3 * 4);
    /* The second tile (the plain gray image) at 200/320 scale: 200 x 150
     * centred in its tile, whose background is 114 gray. */
    const uint8_t *c = m->data + ((size_t)(4 + 100) * m->w + (204 + 100)) * 3;
    assert_int_equal(c[0], 90);
    const uint8_t *bg = m->data + ((size_t)(4 + 10) * m->w + (204 + 100)) * 3;
    assert_int_equal(bg[0], 114);
    lupe_img_free(m);
    assert_int_equal(eval_montage(tiles, NULL, 3, 0, 8, &m), LUPE_EARG);
    assert_null(m);
    assert_int_equal(eval_montage(tiles, NULL, 0, 0, 100, &m), LUPE_EARG);
    lupe_img *mm = NULL;
    assert_int_equal(eval_montage(tiles, NULL, 3, 3, 100, &mm), LUPE_OK);
    assert_int_equal(mm->w, 3 * 100 + 4 * 4);
    lupe_img_free(mm);
    lupe_img_free(out);
    lupe_img_free(im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_chart), cmocka_unit_test(test_run_plots),
                                       cmocka_unit_test(test_preview_montage)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
