/*
 * Resizing, cropping, channel conversion and letterboxing, checked against
 * hand-computed values and against slow reference resamplers written out
 * directly from the definitions (half-pixel bilinear, exact box average).
 */
#include <math.h>
#include <string.h>

#include "img/fixtures.h"

static lupe_img *from_gray(int w, int h, const uint8_t *v)
{
    lupe_img *im = lupe_img_new(w, h, 1);
    memcpy(im->data, v, (size_t)w * h);
    return im;
}

static lupe_img *resize(const lupe_img *src, int w, int h, lupe_resize_mode m)
{
    lupe_img *out = NULL;
    if (lupe_img_resize(src, w, h, m, &out)) fail_msg("resize: %s", lupe_errmsg());
    assert_int_equal(out->w, w);
    assert_int_equal(out->h, h);
    assert_int_equal(out->c, src->c);
    return out;
}

static void test_constant_stays_constant(void **state)
{
    (void)state;
    const int sizes[][2] = {{3, 2}, {20, 20}, {13, 9}, {1, 1}, {100, 3}, {7, 5}, {450, 301}};
    lupe_img *src = lupe_img_new(7, 5, 3);
    for (int i = 0; i < 7 * 5; i++) src->data[3 * i] = 17, src->data[3 * i + 1] = 200, src->data[3 * i + 2] = 255;
    for (int m = 0; m < 2; m++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            lupe_img *out = resize(src, sizes[s][0], sizes[s][1], (lupe_resize_mode)m);
            for (int i = 0; i < out->w * out->h; i++) {
                assert_int_equal(out->data[3 * i], 17);
                assert_int_equal(out->data[3 * i + 1], 200);
                assert_int_equal(out->data[3 * i + 2], 255);
            }
            lupe_img_free(out);
        }
    lupe_img_free(src);
}

static void test_area_known_values(void **state)
{
    (void)state;
    /* 2x downscale: each output is the mean of a 2x2 block, rounded half up. */
    const uint8_t v[4 * 4] = {10, 20, 30, 41, /**/ 50, 61, 70, 80, /**/ 0, 0, 255, 255, /**/ 1, 0, 255, 254};
    lupe_img *src = from_gray(4, 4, v);
    lupe_img *out = resize(src, 2, 2, LUPE_RESIZE_AREA);
    /* (10+20+50+61)/4 = 35.25, (30+41+70+80)/4 = 55.25, 1/4 = 0.25, 1019/4 = 254.75 */
    const uint8_t want[4] = {35, 55, 0, 255};
    assert_memory_equal(out->data, want, 4);
    lupe_img_free(out);
    /* (10+20+50+62)/4 = 35.5 rounds up */
    src->data[5] = 62;
    out = resize(src, 2, 2, LUPE_RESIZE_AREA);
    assert_int_equal(out->data[0], 36);
    lupe_img_free(out);
    lupe_img_free(src);

    /* Fractional coverage, 3 -> 2: outputs cover [0, 1.5) and [1.5, 3).
     * (0 + 0.5*90) / 1.5 = 30 and (0.5*90 + 180) / 1.5 = 150. */
    const uint8_t row[3] = {0, 90, 180};
    src = from_gray(3, 1, row);
    out = resize(src, 2, 1, LUPE_RESIZE_AREA);
    assert_int_equal(out->data[0], 30);
    assert_int_equal(out->data[1], 150);
    lupe_img_free(out);
    lupe_img_free(src);

    /* 5 -> 2 vertically: (a + b + c/2) / 2.5 and (c/2 + d + e) / 2.5. */
    const uint8_t col[5] = {100, 50, 200, 0, 25};
    src = from_gray(1, 5, col);
    out = resize(src, 1, 2, LUPE_RESIZE_AREA);
    assert_int_equal(out->data[0], 100); /* 250 / 2.5 */
    assert_int_equal(out->data[1], 50);  /* 125 / 2.5 */
    lupe_img_free(out);
    lupe_img_free(src);
}

static void test_bilinear_known_values(void **state)
{
    (void)state;
    const uint8_t v[4] = {0, 100, 200, 50};
    lupe_img *src = from_gray(2, 2, v);
    lupe_img *out = resize(src, 4, 4, LUPE_RESIZE_BILINEAR);
    /* Output x maps to (x + 0.5) / 2 - 0.5: -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1). */
    const uint8_t row0[4] = {0, 25, 75, 100};
    assert_memory_equal(out->data, row0, 4);
    const uint8_t row3[4] = {200, 163, 88, 50}; /* 162.5 and 87.5 round up */
    assert_memory_equal(out->data + 12, row3, 4);
    /* (1,1): 0.75 * 25 + 0.25 * 162.5 = 59.375 */
    assert_int_equal(out->data[4 + 1], 59);
    lupe_img_free(out);
    lupe_img_free(src);

    /* 2x down: output x sits at 2x + 0.5, halfway between two inputs. */
    const uint8_t r4[4] = {0, 100, 200, 40};
    src = from_gray(4, 1, r4);
    out = resize(src, 2, 1, LUPE_RESIZE_BILINEAR);
    assert_int_equal(out->data[0], 50);
    assert_int_equal(out->data[1], 120);
    lupe_img_free(out);
    /* Area on an axis that grows is bilinear. */
    out = resize(src, 8, 1, LUPE_RESIZE_AREA);
    lupe_img *bl = resize(src, 8, 1, LUPE_RESIZE_BILINEAR);
    assert_memory_equal(out->data, bl->data, 8);
    lupe_img_free(bl);
    lupe_img_free(out);
    lupe_img_free(src);
}

/* Reference bilinear: the formula, one output sample at a time, in double. */
static double ref_bilinear(const lupe_img *s, int w, int h, int x, int y, int k)
{
    double sx = (x + 0.5) * s->w / w - 0.5, sy = (y + 0.5) * s->h / h - 0.5;
    sx = sx < 0 ? 0 : sx, sy = sy < 0 ? 0 : sy;
    int x0 = (int)sx, y0 = (int)sy;
    double fx = sx - x0, fy = sy - y0;
    int x1 = x0 + 1 < s->w ? x0 + 1 : s->w - 1, y1 = y0 + 1 < s->h ? y0 + 1 : s->h - 1;
    if (x0 >= s->w - 1) x0 = x1 = s->w - 1, fx = 0;
    if (y0 >= s->h - 1) y0 = y1 = s->h - 1, fy = 0;
    double a = fx_px(s, x0, y0)[k], b = fx_px(s, x1, y0)[k], c = fx_px(s, x0, y1)[k], d = fx_px(s, x1, y1)[k];
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d);
}

/* Reference area: integrates the source over the output box, sample by
 * sample, with the overlap of each source pixel computed directly. */
static double ref_area(const lupe_img *s, int w, int h, int x, int y, int k)
{
    double x0 = (double)x * s->w / w, x1 = (double)(x + 1) * s->w / w;
    double y0 = (double)y * s->h / h, y1 = (double)(y + 1) * s->h / h;
    double sum = 0;
    for (int sy = 0; sy < s->h; sy++)
        for (int sx = 0; sx < s->w; sx++) {
            double ox = fmin(x1, sx + 1) - fmax(x0, sx), oy = fmin(y1, sy + 1) - fmax(y0, sy);
            if (ox > 0 && oy > 0) sum += ox * oy * fx_px(s, sx, sy)[k];
        }
    return sum / ((x1 - x0) * (y1 - y0));
}

static void test_against_reference(void **state)
{
    (void)state;
    lupe_img *src = fx_pattern(37, 29, 3);
    const int sizes[][2] = {{10, 7}, {18, 14}, {5, 29}, {36, 28}, {80, 61}, {37, 12}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        lupe_img *bl = resize(src, w, h, LUPE_RESIZE_BILINEAR);
        lupe_img *ar = resize(src, w, h, LUPE_RESIZE_AREA);
        int grows = w > src->w || h > src->h;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < 3; k++) {
                    double rb = ref_bilinear(src, w, h, x, y, k);
                    if (fabs(fx_px(bl, x, y)[k] - rb) > 0.5 + 1e-3)
                        fail_msg("bilinear %dx%d at %d,%d: %d vs %.3f", w, h, x, y, fx_px(bl, x, y)[k], rb);
                    if (grows) continue; /* area with growth is covered above */
                    double ra = ref_area(src, w, h, x, y, k);
                    if (fabs(fx_px(ar, x, y)[k] - ra) > 0.5 + 1e-3)
                        fail_msg("area %dx%d at %d,%d: %d vs %.3f", w, h, x, y, fx_px(ar, x, y)[k], ra);
                }
        lupe_img_free(bl);
        lupe_img_free(ar);
    }
    /* Same size is an exact copy in both modes. */
    lupe_img *same = resize(src, 37, 29, LUPE_RESIZE_AREA);
    assert_memory_equal(same->data, src->data, 37 * 29 * 3);
    lupe_img_free(same);
    lupe_img_free(src);
}

static void test_resize_errors(void **state)
{
    (void)state;
    lupe_img *src = fx_pattern(4, 4, 1), *out = NULL;
    assert_int_equal(lupe_img_resize(src, 0, 4, LUPE_RESIZE_AREA, &out), LUPE_EARG);
    assert_int_equal(lupe_img_resize(src, 4, -1, LUPE_RESIZE_AREA, &out), LUPE_EARG);
    assert_int_equal(lupe_img_resize(src, 4, 4, (lupe_resize_mode)7, &out), LUPE_EARG);
    assert_int_equal(lupe_img_resize(NULL, 4, 4, LUPE_RESIZE_AREA, &out), LUPE_EARG);
    assert_null(out);
    /* Out of memory at every allocation of a resize: reported, nothing kept. */
    int failed = 0;
    for (uint64_t k = 1;; k++) {
        size_t live = fx_live();
        lupe_alloc_fail_nth(k);
        lupe_status st = lupe_img_resize(src, 3, 3, LUPE_RESIZE_AREA, &out);
        lupe_alloc_fail_nth(0);
        if (st == LUPE_OK) break;
        assert_int_equal(st, LUPE_ENOMEM);
        assert_null(out);
        assert_int_equal(fx_live(), live);
        failed++;
    }
    assert_true(failed >= 5);
    lupe_img_free(out);
    lupe_img_free(src);
}

static void test_crop_and_channels(void **state)
{
    (void)state;
    lupe_img *src = fx_pattern(10, 8, 3), *out = NULL;
    assert_int_equal(lupe_img_crop(src, 3, 2, 4, 5, &out), LUPE_OK);
    assert_int_equal(out->w, 4);
    assert_int_equal(out->h, 5);
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 4; x++) assert_memory_equal(fx_px(out, x, y), fx_px(src, x + 3, y + 2), 3);
    lupe_img_free(out);
    assert_int_equal(lupe_img_crop(src, 0, 0, 10, 8, &out), LUPE_OK);
    assert_memory_equal(out->data, src->data, 240);
    lupe_img_free(out);
    const int bad[][4] = {{-1, 0, 2, 2}, {0, -1, 2, 2}, {0, 0, 0, 2}, {0, 0, 2, 0}, {9, 0, 2, 2},
                          {0, 7, 2, 2},  {1, 1, 2147483647, 2}, {2147483647, 0, 1, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(lupe_img_crop(src, bad[i][0], bad[i][1], bad[i][2], bad[i][3], &out), LUPE_EARG);
        assert_null(out);
    }

    lupe_img *g = lupe_img_to_channels(src, 1);
    assert_int_equal(g->c, 1);
    for (int i = 0; i < 80; i++) {
        const uint8_t *p = src->data + 3 * i;
        assert_int_equal(g->data[i], (77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8);
    }
    lupe_img *rgb = lupe_img_to_channels(g, 3);
    for (int i = 0; i < 80; i++) {
        assert_int_equal(rgb->data[3 * i], g->data[i]);
        assert_int_equal(rgb->data[3 * i + 1], g->data[i]);
        assert_int_equal(rgb->data[3 * i + 2], g->data[i]);
    }
    assert_null(lupe_img_to_channels(src, 2));
    assert_null(lupe_img_new(0, 4, 3));
    assert_null(lupe_img_new(4, 4, 4));
    lupe_img_free(rgb);
    lupe_img_free(g);
    lupe_img_free(src);
    lupe_img_free(NULL);
}

static void letterbox_case(int sw, int sh, int w, int h, int nw, int nh, int px, int py)
{
    lupe_img *src = lupe_img_new(sw, sh, 3), *out = NULL;
    for (int i = 0; i < sw * sh; i++) src->data[3 * i + 2] = 255; /* blue */
    lupe_letterbox lb;
    assert_int_equal(lupe_img_letterbox(src, w, h, &out, &lb), LUPE_OK);
    assert_int_equal(out->w, w);
    assert_int_equal(out->h, h);
    double scale = fmin((double)w / sw, (double)h / sh);
    assert_true(fabs(lb.scale - scale) < 1e-6);
    assert_int_equal(lb.new_w, nw);
    assert_int_equal(lb.new_h, nh);
    assert_int_equal(lb.pad_x, px);
    assert_int_equal(lb.pad_y, py);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = fx_px(out, x, y);
            int inside = x >= px && x < px + nw && y >= py && y < py + nh;
            if (inside ? (p[0] != 0 || p[1] != 0 || p[2] != 255) : (p[0] != 114 || p[1] != 114 || p[2] != 114))
                fail_msg("letterbox %dx%d->%dx%d: pixel %d,%d is %d,%d,%d", sw, sh, w, h, x, y, p[0], p[1], p[2]);
        }
    lupe_img_free(out);
    lupe_img_free(src);
}

static void test_letterbox(void **state)
{
    (void)state;
    letterbox_case(450, 300, 480, 480, 480, 320, 0, 80); /* the metal-tag images */
    letterbox_case(300, 600, 640, 640, 320, 640, 160, 0);
    letterbox_case(1000, 500, 320, 320, 320, 160, 0, 80);
    letterbox_case(100, 33, 64, 64, 64, 21, 0, 21); /* 33 * 0.64 = 21.12; (64 - 21) / 2 = 21 */
    letterbox_case(64, 64, 64, 64, 64, 64, 0, 0);

    /* Mapping back: a marked source pixel lands where (p - pad) / scale says. */
    size_t len = 0;
    uint8_t *buf = tu_read(tu_shared(FX_JPEG), &len);
    lupe_img *im = NULL, *out = NULL;
    assert_int_equal(lupe_img_decode(buf, len, 3, NULL, &im), LUPE_OK);
    lupe_img_fill_rect(im, 200, 100, 30, 30, LUPE_RGB(255, 0, 0));
    lupe_letterbox lb;
    assert_int_equal(lupe_img_letterbox(im, 480, 480, &out, &lb), LUPE_OK);
    const uint8_t pad[3] = {114, 114, 114};
    assert_memory_equal(fx_px(out, 0, 0), pad, 3);
    int ox = (int)(215 * lb.scale) + lb.pad_x, oy = (int)(115 * lb.scale) + lb.pad_y;
    const uint8_t *p = fx_px(out, ox, oy);
    assert_int_equal(p[0], 255);
    assert_int_equal(p[1], 0);
    double bx = (ox - lb.pad_x) / lb.scale, by = (oy - lb.pad_y) / lb.scale;
    assert_true(fabs(bx - 215) < 1.5 && fabs(by - 115) < 1.5);
    lupe_img_free(out);
    lupe_img_free(im);
    lupe_free(buf);
    assert_int_equal(lupe_img_letterbox(NULL, 480, 480, &out, &lb), LUPE_EARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_stays_constant), cmocka_unit_test(test_area_known_values),
        cmocka_unit_test(test_bilinear_known_values),   cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_resize_errors),           cmocka_unit_test(test_crop_and_channels),
        cmocka_unit_test(test_letterbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
