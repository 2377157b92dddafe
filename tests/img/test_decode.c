/*
 * Decoding: sniffing, limits, a real metal-tag JPEG, every PNG colour type
 * and bit depth (written with libpng directly), CMYK and YCCK JPEGs, probing
 * and loading from a file with the path in the error.
 */
#include <stdio.h> /* jpeglib.h needs FILE and size_t first */
#include <string.h>

#include <jpeglib.h>

#include "img/fixtures.h"

static void test_sniff_names_limits(void **state)
{
    (void)state;
    const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xE0}, png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_int_equal(lupe_img_sniff(jpg, sizeof jpg), LUPE_IMG_JPEG);
    assert_int_equal(lupe_img_sniff(jpg, 2), LUPE_IMG_UNKNOWN);
    assert_int_equal(lupe_img_sniff(png, sizeof png), LUPE_IMG_PNG);
    assert_int_equal(lupe_img_sniff(png, 7), LUPE_IMG_UNKNOWN);
    assert_int_equal(lupe_img_sniff((const uint8_t *)"GIF89a", 6), LUPE_IMG_UNKNOWN);
    assert_int_equal(lupe_img_sniff(NULL, 0), LUPE_IMG_UNKNOWN);
    assert_string_equal(lupe_img_format_name(LUPE_IMG_JPEG), "jpeg");
    assert_string_equal(lupe_img_format_name(LUPE_IMG_PNG), "png");
    assert_string_equal(lupe_img_format_name(LUPE_IMG_UNKNOWN), "unknown");
    lupe_img_limits l = lupe_img_default_limits();
    assert_int_equal(l.max_side, 32768);
    assert_int_equal(l.max_pixels, 64ull << 20);
    assert_int_equal(l.max_bytes, 256ull << 20);
}

static void test_real_jpeg(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *buf = tu_read(tu_shared(FX_JPEG), &len);
    lupe_img *rgb = NULL, *gray = NULL, *any = NULL;
    assert_int_equal(lupe_img_decode(buf, len, 3, NULL, &rgb), LUPE_OK);
    assert_int_equal(rgb->w, 450);
    assert_int_equal(rgb->h, 300);
    assert_int_equal(rgb->c, 3);
    assert_int_equal(lupe_img_decode(buf, len, 0, NULL, &any), LUPE_OK);
    assert_int_equal(any->c, 3);
    assert_memory_equal(any->data, rgb->data, (size_t)450 * 300 * 3);
    assert_int_equal(lupe_img_decode(buf, len, 1, NULL, &gray), LUPE_OK);
    assert_int_equal(gray->c, 1);
    /* libjpeg's gray is the Y channel; it must agree with the luma of its
     * own RGB output up to rounding in the colour conversion. */
    long diff = 0;
    int lo = 255, hi = 0;
    for (int i = 0; i < 450 * 300; i++) {
        const uint8_t *p = rgb->data + 3 * i;
        int y = (77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8;
        diff += labs((long)y - gray->data[i]);
        if (gray->data[i] < lo) lo = gray->data[i];
        if (gray->data[i] > hi) hi = gray->data[i];
    }
    assert_true(diff / (450 * 300) <= 1);
    assert_true(hi - lo > 50); /* a photo, not a blank */

    lupe_img_info info;
    assert_int_equal(lupe_img_probe(buf, len, &info), LUPE_OK);
    assert_int_equal(info.format, LUPE_IMG_JPEG);
    assert_int_equal(info.w, 450);
    assert_int_equal(info.h, 300);
    assert_int_equal(info.c, 3);
    lupe_img_free(rgb);
    lupe_img_free(gray);
    lupe_img_free(any);
    lupe_free(buf);
}

static void test_limits(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *buf = tu_read(tu_shared(FX_JPEG), &len);
    lupe_img *im = NULL;
    lupe_img_limits l = lupe_img_default_limits();
    l.max_side = 449;
    assert_int_equal(lupe_img_decode(buf, len, 3, &l, &im), LUPE_ELIMIT);
    assert_non_null(strstr(lupe_errmsg(), "450x300"));
    assert_null(im);
    l = lupe_img_default_limits();
    l.max_pixels = 450 * 300 - 1;
    assert_int_equal(lupe_img_decode(buf, len, 3, &l, &im), LUPE_ELIMIT);
    assert_non_null(strstr(lupe_errmsg(), "135000 pixels"));
    l = lupe_img_default_limits();
    l.max_bytes = 1000;
    assert_int_equal(lupe_img_decode(buf, len, 3, &l, &im), LUPE_ELIMIT);
    /* Zero fields mean the defaults. */
    lupe_img_limits z = {0};
    assert_int_equal(lupe_img_decode(buf, len, 3, &z, &im), LUPE_OK);
    lupe_img_free(im);
    lupe_free(buf);
}

static void test_not_images(void **state)
{
    (void)state;
    lupe_img *im = NULL;
    lupe_img_info info;
    const uint8_t pdf[] = "%PDF-1.4\n";
    assert_int_equal(lupe_img_decode(pdf, 0, 3, NULL, &im), LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "empty file");
    assert_int_equal(lupe_img_probe(pdf, 0, &info), LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "empty file");
    assert_int_equal(lupe_img_decode(pdf, sizeof pdf - 1, 3, NULL, &im), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "not a JPEG or PNG (starts with bytes 25 50 44 46"));
    assert_int_equal(lupe_img_decode(pdf, 2, 3, NULL, &im), LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "not a JPEG or PNG (starts with bytes 25 50)");
    assert_int_equal(lupe_img_probe(pdf, 4, &info), LUPE_EFORMAT);
    assert_int_equal(lupe_img_decode(pdf, sizeof pdf - 1, 2, NULL, &im), LUPE_EARG);
    assert_int_equal(lupe_img_decode(NULL, 5, 3, NULL, &im), LUPE_EARG);
    assert_null(im);
}

static void test_load(void **state)
{
    (void)state;
    lupe_img *im = NULL;
    assert_int_equal(lupe_img_load(tu_shared(FX_JPEG), 1, NULL, &im), LUPE_OK);
    assert_int_equal(im->w, 450);
    assert_int_equal(im->c, 1);
    lupe_img_free(im);

    const char *missing = tu_path("missing.jpg");
    assert_int_not_equal(lupe_img_load(missing, 3, NULL, &im), LUPE_OK);
    assert_non_null(strstr(lupe_errmsg(), missing));

    const char *txt = tu_path("notes.jpg");
    tu_write(txt, "hello world", 11);
    assert_int_equal(lupe_img_load(txt, 3, NULL, &im), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "notes.jpg"));
    assert_non_null(strstr(lupe_errmsg(), "68 65 6c 6c"));

    lupe_img_limits l = lupe_img_default_limits();
    l.max_bytes = 100;
    assert_int_equal(lupe_img_load(tu_shared(FX_JPEG), 3, &l, &im), LUPE_ELIMIT);
    assert_null(im);
}

/* Decodes a PNG fixture, checks size and channels, returns the image. */
static lupe_img *decode_png(const uint8_t *png, size_t len, int want_c, int w, int h, int c)
{
    lupe_img *im = NULL;
    lupe_status st = lupe_img_decode(png, len, want_c, NULL, &im);
    if (st) fail_msg("decode: %s", lupe_errmsg());
    assert_int_equal(im->w, w);
    assert_int_equal(im->h, h);
    assert_int_equal(im->c, c);
    return im;
}

static void test_png_gray(void **state)
{
    (void)state;
    uint8_t g8[4 * 3];
    for (int i = 0; i < 12; i++) g8[i] = (uint8_t)(i * 21);
    size_t len;
    uint8_t *png = fx_png(4, 3, PNG_COLOR_TYPE_GRAY, 8, 0, g8, NULL, 0, NULL, NULL, 0, &len);
    lupe_img *im = decode_png(png, len, 0, 4, 3, 1);
    assert_memory_equal(im->data, g8, 12);
    lupe_img_free(im);
    im = decode_png(png, len, 3, 4, 3, 3);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(im->data[3 * i], g8[i]);
        assert_int_equal(im->data[3 * i + 2], g8[i]);
    }
    lupe_img_free(im);
    lupe_img_info info;
    assert_int_equal(lupe_img_probe(png, len, &info), LUPE_OK);
    assert_int_equal(info.format, LUPE_IMG_PNG);
    assert_int_equal(info.c, 1);
    lupe_free(png);

    /* 1-bit gray, 10 wide: two bytes a row, bits MSB first. */
    uint8_t g1[2 * 2] = {0xA5, 0x80, 0x0F, 0x40};
    png = fx_png(10, 2, PNG_COLOR_TYPE_GRAY, 1, 0, g1, NULL, 0, NULL, NULL, 0, &len);
    im = decode_png(png, len, 1, 10, 2, 1);
    const uint8_t want1[20] = {255, 0, 255, 0, 0, 255, 0, 255, 255, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 255};
    assert_memory_equal(im->data, want1, 20);
    lupe_img_free(im);
    lupe_free(png);

    /* 16-bit gray keeps the high byte. */
    uint8_t g16[3 * 2] = {0x12, 0x34, 0xFF, 0xFF, 0x00, 0x99};
    png = fx_png(3, 1, PNG_COLOR_TYPE_GRAY, 16, 0, g16, NULL, 0, NULL, NULL, 0, &len);
    im = decode_png(png, len, 0, 3, 1, 1);
    assert_int_equal(im->data[0], 0x12);
    assert_int_equal(im->data[1], 0xFF);
    assert_int_equal(im->data[2], 0x00);
    lupe_img_free(im);
    lupe_free(png);

    /* Gray + alpha: alpha dropped. */
    uint8_t ga[2 * 2] = {10, 0, 200, 255};
    png = fx_png(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, ga, NULL, 0, NULL, NULL, 0, &len);
    assert_int_equal(lupe_img_probe(png, len, &info), LUPE_OK);
    assert_int_equal(info.c, 2);
    im = decode_png(png, len, 0, 2, 1, 1);
    assert_int_equal(im->data[0], 10);
    assert_int_equal(im->data[1], 200);
    lupe_img_free(im);
    lupe_free(png);

    /* Gray with a tRNS colour: still plain gray out. */
    png_color_16 key = {.gray = 10};
    png = fx_png(4, 3, PNG_COLOR_TYPE_GRAY, 8, 0, g8, NULL, 0, &key, NULL, 0, &len);
    im = decode_png(png, len, 0, 4, 3, 1);
    assert_memory_equal(im->data, g8, 12);
    lupe_img_free(im);
    lupe_free(png);
}

static void test_png_color(void **state)
{
    (void)state;
    enum { W = 13, H = 11 };
    uint8_t rgb[W * H * 3], rgba[W * H * 4], rgb16[W * H * 6];
    for (int i = 0; i < W * H; i++) {
        for (int k = 0; k < 3; k++) {
            rgb[3 * i + k] = (uint8_t)(i * 5 + k * 70);
            rgba[4 * i + k] = rgb[3 * i + k];
            rgb16[6 * i + 2 * k] = rgb[3 * i + k];
            rgb16[6 * i + 2 * k + 1] = (uint8_t)(i * 3);
        }
        rgba[4 * i + 3] = (uint8_t)i;
    }
    size_t len;
    lupe_img_info info;
    for (int interlace = 0; interlace <= 1; interlace++) {
        uint8_t *png = fx_png(W, H, PNG_COLOR_TYPE_RGB, 8, interlace, rgb, NULL, 0, NULL, NULL, 0, &len);
        lupe_img *im = decode_png(png, len, 0, W, H, 3);
        assert_memory_equal(im->data, rgb, sizeof rgb);
        lupe_img_free(im);
        /* Gray from colour uses the BT.601 luma. */
        im = decode_png(png, len, 1, W, H, 1);
        for (int i = 0; i < W * H; i++) {
            const uint8_t *p = rgb + 3 * i;
            assert_int_equal(im->data[i], (77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8);
        }
        lupe_img_free(im);
        lupe_free(png);
    }
    uint8_t *png = fx_png(W, H, PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, rgba, NULL, 0, NULL, NULL, 0, &len);
    assert_int_equal(lupe_img_probe(png, len, &info), LUPE_OK);
    assert_int_equal(info.c, 4);
    lupe_img *im = decode_png(png, len, 3, W, H, 3);
    assert_memory_equal(im->data, rgb, sizeof rgb);
    lupe_img_free(im);
    lupe_free(png);

    png = fx_png(W, H, PNG_COLOR_TYPE_RGB, 16, 1, rgb16, NULL, 0, NULL, NULL, 0, &len);
    im = decode_png(png, len, 0, W, H, 3);
    assert_memory_equal(im->data, rgb, sizeof rgb);
    lupe_img_free(im);
    lupe_free(png);
}

static void test_png_palette(void **state)
{
    (void)state;
    const uint8_t plte[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 99, 199};
    /* 2-bit indices 0,1,2,3,3 in one row: 00 01 10 11 | 11 000000 */
    const uint8_t idx2[2] = {0x1B, 0xC0};
    size_t len;
    uint8_t *png = fx_png(5, 1, PNG_COLOR_TYPE_PALETTE, 2, 0, idx2, plte, 4, NULL, NULL, 0, &len);
    lupe_img_info info;
    assert_int_equal(lupe_img_probe(png, len, &info), LUPE_OK);
    assert_int_equal(info.c, 3);
    lupe_img *im = decode_png(png, len, 0, 5, 1, 3);
    const uint8_t want[15] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 99, 199, 9, 99, 199};
    assert_memory_equal(im->data, want, 15);
    lupe_img_free(im);
    lupe_free(png);

    /* 8-bit palette with transparency: colours kept, alpha dropped. */
    const uint8_t idx8[5] = {3, 2, 1, 0, 3};
    const uint8_t alpha[4] = {0, 128, 255, 7};
    png = fx_png(5, 1, PNG_COLOR_TYPE_PALETTE, 8, 0, idx8, plte, 4, NULL, alpha, 4, &len);
    im = decode_png(png, len, 0, 5, 1, 3);
    const uint8_t want8[15] = {9, 99, 199, 0, 0, 255, 0, 255, 0, 255, 0, 0, 9, 99, 199};
    assert_memory_equal(im->data, want8, 15);
    lupe_img_free(im);
    im = decode_png(png, len, 1, 5, 1, 1);
    assert_int_equal(im->data[3], (77 * 255 + 128) >> 8);
    lupe_img_free(im);
    lupe_free(png);
}

/* Writes a flat CMYK or YCCK JPEG with libjpeg; `adobe` controls the APP14
 * marker that says the samples are stored inverted. */
static uint8_t *cmyk_jpeg(J_COLOR_SPACE cs, int adobe, const uint8_t px[4], unsigned long *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *out = NULL;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, len);
    c.image_width = 16;
    c.image_height = 8;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, cs);
    c.write_Adobe_marker = adobe ? TRUE : FALSE;
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[16 * 4];
    for (int x = 0; x < 16; x++) memcpy(row + 4 * x, px, 4);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return out;
}

static void expect_rgb(const lupe_img *im, int r, int g, int b)
{
    for (int i = 0; i < im->w * im->h; i++) {
        const uint8_t *p = im->data + 3 * i;
        if (abs(p[0] - r) > 3 || abs(p[1] - g) > 3 || abs(p[2] - b) > 3)
            fail_msg("pixel %d is %d,%d,%d, want %d,%d,%d", i, p[0], p[1], p[2], r, g, b);
    }
}

static void test_cmyk_jpeg(void **state)
{
    (void)state;
    /* With the Adobe marker samples are stored inverted, 255 meaning no
     * ink: stored 255,0,0,255 is no cyan, full magenta and yellow, no black,
     * which is red. */
    const uint8_t inv_red[4] = {255, 0, 0, 255}, plain_red[4] = {0, 255, 255, 0};
    unsigned long n = 0;
    lupe_img *im = NULL;
    lupe_img_info info;
    J_COLOR_SPACE spaces[2] = {JCS_CMYK, JCS_YCCK};
    for (int s = 0; s < 2; s++) {
        uint8_t *j = cmyk_jpeg(spaces[s], 1, inv_red, &n);
        assert_int_equal(lupe_img_probe(j, n, &info), LUPE_OK);
        assert_int_equal(info.c, 4);
        assert_int_equal(lupe_img_decode(j, n, 0, NULL, &im), LUPE_OK);
        assert_int_equal(im->c, 3);
        expect_rgb(im, 255, 0, 0);
        lupe_img_free(im);
        assert_int_equal(lupe_img_decode(j, n, 1, NULL, &im), LUPE_OK);
        assert_int_equal(im->c, 1);
        assert_true(abs(im->data[0] - ((77 * 255 + 128) >> 8)) <= 3);
        lupe_img_free(im);
        free(j);
    }
    /* Without the Adobe marker CMYK is taken as not inverted. */
    uint8_t *j = cmyk_jpeg(JCS_CMYK, 0, plain_red, &n);
    assert_int_equal(lupe_img_decode(j, n, 3, NULL, &im), LUPE_OK);
    expect_rgb(im, 255, 0, 0);
    lupe_img_free(im);
    free(j);
}

static void test_gray_jpeg(void **state)
{
    (void)state;
    lupe_img *g = fx_pattern(40, 24, 1), *im = NULL;
    uint8_t *j = NULL;
    size_t n = 0;
    assert_int_equal(lupe_img_encode_jpeg(g, 90, &j, &n), LUPE_OK);
    lupe_img_info info;
    assert_int_equal(lupe_img_probe(j, n, &info), LUPE_OK);
    assert_int_equal(info.c, 1);
    assert_int_equal(lupe_img_decode(j, n, 0, NULL, &im), LUPE_OK);
    assert_int_equal(im->c, 1);
    lupe_img_free(im);
    assert_int_equal(lupe_img_decode(j, n, 3, NULL, &im), LUPE_OK);
    assert_int_equal(im->c, 3);
    for (int i = 0; i < 40 * 24; i++) {
        assert_int_equal(im->data[3 * i], im->data[3 * i + 1]);
        assert_int_equal(im->data[3 * i], im->data[3 * i + 2]);
    }
    lupe_img_free(im);
    lupe_img_free(g);
    lupe_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff_names_limits), cmocka_unit_test(test_real_jpeg),
        cmocka_unit_test(test_limits),             cmocka_unit_test(test_not_images),
        cmocka_unit_test(test_load),               cmocka_unit_test(test_png_gray),
        cmocka_unit_test(test_png_color),          cmocka_unit_test(test_png_palette),
        cmocka_unit_test(test_cmyk_jpeg),          cmocka_unit_test(test_gray_jpeg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
