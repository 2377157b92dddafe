/*
 * Encoding: PNG round trips exactly, JPEG within a tolerance and smaller at
 * lower quality, bad arguments are refused, save picks the format from the
 * extension, and running out of memory at any allocation fails cleanly.
 */
#include <stdlib.h>
#include <string.h>

#include "img/fixtures.h"

static void test_png_roundtrip(void **state)
{
    (void)state;
    for (int c = 1; c <= 3; c += 2) {
        lupe_img *im = fx_pattern(37, 23, c), *back = NULL;
        uint8_t *png = NULL;
        size_t n = 0;
        assert_int_equal(lupe_img_encode_png(im, &png, &n), LUPE_OK);
        assert_int_equal(lupe_img_sniff(png, n), LUPE_IMG_PNG);
        assert_int_equal(lupe_alloc_size(png), n); /* trimmed to the data */
        lupe_img_info info;
        assert_int_equal(lupe_img_probe(png, n, &info), LUPE_OK);
        assert_int_equal(info.w, 37);
        assert_int_equal(info.h, 23);
        assert_int_equal(info.c, c);
        assert_int_equal(lupe_img_decode(png, n, 0, NULL, &back), LUPE_OK);
        assert_int_equal(back->c, c);
        assert_memory_equal(back->data, im->data, (size_t)37 * 23 * c);
        lupe_img_free(back);
        lupe_img_free(im);
        lupe_free(png);
    }
}

static double mean_abs_diff(const lupe_img *a, const lupe_img *b)
{
    size_t n = (size_t)a->w * a->h * a->c;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += abs(a->data[i] - b->data[i]);
    return s / n;
}

static void test_jpeg_roundtrip(void **state)
{
    (void)state;
    /* Smooth content, which JPEG is meant for. */
    lupe_img *im = lupe_img_new(64, 48, 3), *back = NULL;
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 64; x++) {
            uint8_t *p = fx_px(im, x, y);
            p[0] = (uint8_t)(x * 4), p[1] = (uint8_t)(y * 5), p[2] = (uint8_t)(128 + (x - y));
        }
    uint8_t *hi = NULL, *lo = NULL;
    size_t nhi = 0, nlo = 0;
    assert_int_equal(lupe_img_encode_jpeg(im, 95, &hi, &nhi), LUPE_OK);
    assert_int_equal(lupe_img_encode_jpeg(im, 10, &lo, &nlo), LUPE_OK);
    assert_int_equal(lupe_img_sniff(hi, nhi), LUPE_IMG_JPEG);
    assert_true(nlo < nhi);
    assert_int_equal(lupe_img_decode(hi, nhi, 3, NULL, &back), LUPE_OK);
    assert_int_equal(back->w, 64);
    assert_int_equal(back->h, 48);
    double d95 = mean_abs_diff(im, back);
    lupe_img_free(back);
    assert_int_equal(lupe_img_decode(lo, nlo, 3, NULL, &back), LUPE_OK);
    double d10 = mean_abs_diff(im, back);
    lupe_img_free(back);
    assert_true(d95 < 2.0);
    assert_true(d10 > d95);
    assert_true(d10 < 20.0);

    /* A real photo survives a quality 90 round trip closely. */
    size_t len = 0;
    uint8_t *buf = tu_read(tu_shared(FX_JPEG), &len), *re = NULL;
    lupe_img *photo = NULL;
    assert_int_equal(lupe_img_decode(buf, len, 3, NULL, &photo), LUPE_OK);
    size_t nre = 0;
    assert_int_equal(lupe_img_encode_jpeg(photo, 90, &re, &nre), LUPE_OK);
    assert_int_equal(lupe_img_decode(re, nre, 3, NULL, &back), LUPE_OK);
    assert_true(mean_abs_diff(photo, back) < 3.0);
    lupe_img_free(back);
    lupe_img_free(photo);
    lupe_free(re);
    lupe_free(buf);
    lupe_free(hi);
    lupe_free(lo);
    lupe_img_free(im);
}

static void test_bad_args(void **state)
{
    (void)state;
    lupe_img *im = fx_pattern(8, 8, 3);
    uint8_t *out = (uint8_t *)"x";
    size_t n = 5;
    assert_int_equal(lupe_img_encode_jpeg(im, 0, &out, &n), LUPE_EARG);
    assert_null(out);
    assert_int_equal(n, 0);
    assert_int_equal(lupe_img_encode_jpeg(im, 101, &out, &n), LUPE_EARG);
    assert_int_equal(lupe_img_encode_jpeg(NULL, 50, &out, &n), LUPE_EARG);
    assert_int_equal(lupe_img_encode_png(NULL, &out, &n), LUPE_EARG);
    lupe_img two = {.w = 8, .h = 8, .c = 2, .data = im->data};
    assert_int_equal(lupe_img_encode_png(&two, &out, &n), LUPE_EARG);
    assert_int_equal(lupe_img_encode_jpeg(&two, 50, &out, &n), LUPE_EARG);
    assert_int_equal(lupe_img_encode_png(im, NULL, &n), LUPE_EARG);
    lupe_img_free(im);
}

static void test_save(void **state)
{
    (void)state;
    lupe_img *im = fx_pattern(30, 20, 3), *back = NULL;
    const char *png = tu_path("a.png"), *jpg = tu_path("b.JPEG"), *bmp = tu_path("c.bmp");
    assert_int_equal(lupe_img_save(im, png), LUPE_OK);
    assert_int_equal(lupe_img_load(png, 0, NULL, &back), LUPE_OK);
    assert_memory_equal(back->data, im->data, 30 * 20 * 3);
    lupe_img_free(back);
    assert_int_equal(lupe_img_save(im, jpg), LUPE_OK);
    size_t n = 0;
    uint8_t *bytes = tu_read(jpg, &n);
    assert_int_equal(lupe_img_sniff(bytes, n), LUPE_IMG_JPEG);
    lupe_free(bytes);
    assert_int_equal(lupe_img_save(im, bmp), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "c.bmp"));
    assert_false(lupe_path_exists(bmp));
    lupe_img_free(im);
}

/* Fails the k-th funnel allocation for k = 1, 2, ... until the operation
 * gets through; every failure must be reported and leave no bytes behind. */
typedef lupe_status (*op_fn)(const void *arg);

static void oom_sweep(op_fn op, const void *arg, lupe_status expect_fail)
{
    int failures = 0;
    for (uint64_t k = 1; k < 10000; k++) {
        size_t live = fx_live();
        lupe_alloc_fail_nth(k);
        lupe_status st = op(arg);
        lupe_alloc_fail_nth(0);
        assert_int_equal(fx_live(), live);
        if (st == LUPE_OK) {
            assert_true(failures > 0); /* the sweep really exercised failures */
            return;
        }
        if (st != expect_fail) fail_msg("allocation %llu: got %s: %s", (unsigned long long)k, lupe_strerror(st),
                                        lupe_errmsg());
        failures++;
    }
    fail_msg("operation never succeeded");
}

static lupe_status enc_png(const void *arg)
{
    uint8_t *out = NULL;
    size_t n = 0;
    lupe_status st = lupe_img_encode_png(arg, &out, &n);
    lupe_free(out);
    return st;
}

static lupe_status enc_jpeg(const void *arg)
{
    uint8_t *out = NULL;
    size_t n = 0;
    lupe_status st = lupe_img_encode_jpeg(arg, 80, &out, &n);
    lupe_free(out);
    return st;
}

static void test_encode_oom(void **state)
{
    (void)state;
    /* Noise compresses badly, so the JPEG output buffer has to grow. */
    lupe_img *im = lupe_img_new(200, 150, 3);
    uint32_t r = 1;
    for (size_t i = 0; i < (size_t)200 * 150 * 3; i++) im->data[i] = (uint8_t)((r = r * 1103515245 + 12345) >> 24);
    oom_sweep(enc_png, im, LUPE_ENOMEM);
    oom_sweep(enc_jpeg, im, LUPE_ENOMEM);
    lupe_img_free(im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_roundtrip), cmocka_unit_test(test_jpeg_roundtrip),
        cmocka_unit_test(test_bad_args),      cmocka_unit_test(test_save),
        cmocka_unit_test(test_encode_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
