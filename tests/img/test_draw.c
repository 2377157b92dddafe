/*
 * Drawing: rectangles are clipped exactly, text touches only its own box,
 * the font table is sane, and detection boxes get a readable label tab in
 * the right place even at the edges of the image.
 */
#include <string.h>

#include "img/fixtures.h"
#include "img/internal.h"

static lupe_img *blank(int w, int h, int c, uint8_t v)
{
    lupe_img *im = lupe_img_new(w, h, c);
    memset(im->data, v, (size_t)w * h * c);
    return im;
}

/* Asserts that exactly the pixels inside [x0,x1) x [y0,y1) differ from v. */
static void expect_changed_rect(const lupe_img *im, uint8_t v, int x0, int y0, int x1, int y1)
{
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++) {
            int inside = x >= x0 && x < x1 && y >= y0 && y < y1;
            int changed = fx_px(im, x, y)[0] != v;
            if (inside != changed) fail_msg("pixel %d,%d: inside %d, changed %d", x, y, inside, changed);
        }
}

static void test_fill_rect(void **state)
{
    (void)state;
    lupe_img *im = blank(20, 10, 3, 0);
    lupe_img_fill_rect(im, 2, 3, 4, 5, LUPE_RGB(10, 20, 30));
    expect_changed_rect(im, 0, 2, 3, 6, 8);
    assert_memory_equal(fx_px(im, 2, 3), ((const uint8_t[]){10, 20, 30}), 3);
    /* Partly outside on every side: clipped to the image. */
    lupe_img_fill_rect(im, -5, -5, 8, 7, LUPE_RGB(1, 1, 1));
    lupe_img_fill_rect(im, 18, 8, 100, 100, LUPE_RGB(1, 1, 1));
    assert_int_equal(fx_px(im, 0, 0)[0], 1);
    assert_int_equal(fx_px(im, 2, 1)[0], 1);
    assert_int_equal(fx_px(im, 3, 2)[0], 0);
    assert_int_equal(fx_px(im, 19, 9)[0], 1);
    assert_int_equal(fx_px(im, 17, 9)[0], 0);
    lupe_img_free(im);

    /* Wholly outside, empty, or absurd: nothing changes, nothing breaks. */
    im = blank(20, 10, 3, 7);
    lupe_img_fill_rect(im, 20, 0, 5, 5, LUPE_RGB(255, 255, 255));
    lupe_img_fill_rect(im, -10, 0, 10, 5, LUPE_RGB(255, 255, 255));
    lupe_img_fill_rect(im, 0, 0, -3, 5, LUPE_RGB(255, 255, 255));
    lupe_img_fill_rect(im, 2147483647, 2147483647, 2147483647, 2147483647, LUPE_RGB(255, 255, 255));
    lupe_img_fill_rect(im, -2147483647 - 1, 0, 2147483647, 3, LUPE_RGB(255, 255, 255));
    lupe_img_draw_rect(im, 2147483600, 2147483600, 2147483647, 2147483647, 3, LUPE_RGB(255, 255, 255));
    lupe_img_fill_rect(NULL, 0, 0, 5, 5, 0);
    expect_changed_rect(im, 7, 0, 0, 0, 0);
    lupe_img_free(im);

    /* Gray images take the luma of the colour. */
    im = blank(4, 4, 1, 0);
    lupe_img_fill_rect(im, 0, 0, 4, 4, LUPE_RGB(255, 0, 0));
    assert_int_equal(im->data[5], (77 * 255 + 128) >> 8);
    lupe_img_free(im);
}

static void test_draw_rect(void **state)
{
    (void)state;
    lupe_img *im = blank(30, 30, 1, 0);
    lupe_img_draw_rect(im, 5, 6, 10, 12, 2, LUPE_RGB(255, 255, 255));
    for (int y = 0; y < 30; y++)
        for (int x = 0; x < 30; x++) {
            int in_outer = x >= 5 && x < 15 && y >= 6 && y < 18;
            int in_inner = x >= 7 && x < 13 && y >= 8 && y < 16;
            assert_int_equal(im->data[y * 30 + x] == 255, in_outer && !in_inner);
        }
    lupe_img_free(im);
    /* A border thicker than half the box fills it. */
    im = blank(30, 30, 1, 0);
    lupe_img_draw_rect(im, 5, 5, 6, 20, 3, LUPE_RGB(255, 255, 255));
    expect_changed_rect(im, 0, 5, 5, 11, 25);
    lupe_img_free(im);
    /* Thickness 0 means 1; partly outside is clipped. */
    im = blank(10, 10, 1, 0);
    lupe_img_draw_rect(im, -2, -2, 6, 6, 0, LUPE_RGB(255, 255, 255));
    assert_int_equal(im->data[3 * 10 + 0], 255); /* bottom edge, row 3 */
    assert_int_equal(im->data[0 * 10 + 3], 255); /* right edge, column 3 */
    assert_int_equal(im->data[1 * 10 + 1], 0);
    lupe_img_free(im);
}

static void test_font_table(void **state)
{
    (void)state;
    for (int a = 32; a <= 126; a++) {
        const char *g = img__glyph((unsigned char)a);
        assert_int_equal(strlen(g), IMG_FONT_W * IMG_FONT_H);
        int ink = 0;
        for (int i = 0; i < IMG_FONT_W * IMG_FONT_H; i++) {
            assert_true(g[i] == '#' || g[i] == '.');
            ink += g[i] == '#';
        }
        assert_int_equal(ink == 0, a == ' ');
        for (int b = 32; b < a; b++)
            if (strcmp(g, img__glyph((unsigned char)b)) == 0) fail_msg("'%c' and '%c' look the same", a, b);
    }
    assert_ptr_equal(img__glyph(200), img__glyph('?'));
    assert_ptr_equal(img__glyph('\n'), img__glyph('?'));
}

static void test_text(void **state)
{
    (void)state;
    assert_int_equal(lupe_img_text_width("", 1), 0);
    assert_int_equal(lupe_img_text_width(NULL, 1), 0);
    assert_int_equal(lupe_img_text_width("A", 1), 5);
    assert_int_equal(lupe_img_text_width("AB", 1), 11);
    assert_int_equal(lupe_img_text_width("AB", 2), 22);
    assert_int_equal(lupe_img_text_width("AB", 0), 11);
    for (int s = 1; s <= 3; s++) {
        lupe_img *im = blank(120, 40, 3, 0);
        const char *t = "scratch 0.91";
        int w = lupe_img_draw_text(im, 7, 9, t, s, LUPE_RGB(255, 255, 255));
        assert_int_equal(w, lupe_img_text_width(t, s));
        int changed = 0;
        for (int y = 0; y < 40; y++)
            for (int x = 0; x < 120; x++)
                if (fx_px(im, x, y)[0]) {
                    changed++;
                    if (x < 7 || x >= 7 + w || y < 9 || y >= 9 + 7 * s) fail_msg("scale %d: pixel %d,%d outside", s, x, y);
                }
        assert_true(changed > 20 * s * s);
        lupe_img_free(im);
    }
    /* The glyph for 'T' at scale 1 is drawn exactly as the table says. */
    lupe_img *im = blank(8, 9, 1, 0);
    lupe_img_draw_text(im, 1, 1, "T", 1, LUPE_RGB(255, 255, 255));
    const char *g = img__glyph('T');
    for (int r = 0; r < 7; r++)
        for (int c = 0; c < 5; c++) assert_int_equal(im->data[(r + 1) * 8 + c + 1] == 255, g[r * 5 + c] == '#');
    /* Off the edges and non-ASCII: clipped, no crash. */
    lupe_img_draw_text(im, -3, -4, "W\xc3\xa9", 2, LUPE_RGB(255, 255, 255));
    lupe_img_draw_text(im, 2147483600, 0, "abc", 1000000, LUPE_RGB(255, 255, 255));
    lupe_img_draw_text(im, -2147483647, -2147483647, "abc", 3, LUPE_RGB(255, 255, 255));
    lupe_img_free(im);
}

static int count_colour(const lupe_img *im, int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b)
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = fx_px(im, x, y);
            n += p[0] == r && p[1] == g && p[2] == b;
        }
    return n;
}

static void test_draw_box(void **state)
{
    (void)state;
    /* 300 px: 1 px lines, font scale 1, tab 9 px high (7 + 1 px padding each side). */
    lupe_img *im = blank(300, 300, 3, 0);
    lupe_img_draw_box(im, 50, 100, 80, 60, LUPE_RGB(0, 0, 160), "dent 0.5");
    int tw = lupe_img_text_width("dent 0.5", 1) + 2;
    assert_memory_equal(fx_px(im, 50, 100), ((const uint8_t[]){0, 0, 160}), 3); /* outline corner */
    assert_memory_equal(fx_px(im, 129, 159), ((const uint8_t[]){0, 0, 160}), 3);
    assert_int_equal(fx_px(im, 51, 101)[2], 0); /* inside untouched */
    /* Tab above the box: box colour with white text on the dark blue. */
    int white = count_colour(im, 50, 100 - 9, 50 + tw, 100, 255, 255, 255);
    int blue = count_colour(im, 50, 100 - 9, 50 + tw, 100, 0, 0, 160);
    assert_true(white > 20);
    assert_int_equal(white + blue, tw * 9);
    assert_int_equal(count_colour(im, 50 + tw, 90, 300, 100, 0, 0, 160), 0);
    lupe_img_free(im);

    /* At the top there is no room above: the tab goes inside, and a light
     * colour gets black text. */
    im = blank(300, 300, 3, 0);
    lupe_img_draw_box(im, 10, 0, 100, 50, LUPE_RGB(255, 255, 0), "scratch");
    assert_memory_equal(fx_px(im, 12, 1), ((const uint8_t[]){255, 255, 0}), 3);
    int black = 0;
    for (int y = 1; y < 8; y++)
        for (int x = 11; x < 11 + lupe_img_text_width("scratch", 1); x++) black += fx_px(im, x, y)[0] == 0;
    assert_true(black > 20);
    lupe_img_free(im);

    /* At the right edge the tab slides left to stay readable. */
    im = blank(100, 100, 3, 0);
    lupe_img_draw_box(im, 95, 50, 20, 20, LUPE_RGB(200, 0, 0), "long label");
    int tab_w = lupe_img_text_width("long label", 1) + 2;
    assert_int_equal(fx_px(im, 99, 45)[0] == 200 || fx_px(im, 99, 45)[0] == 255, 1);
    assert_int_equal(fx_px(im, 100 - tab_w, 45)[0] == 200 || fx_px(im, 100 - tab_w, 45)[0] == 255, 1);
    assert_int_equal(fx_px(im, 100 - tab_w - 1, 45)[0], 0);
    lupe_img_free(im);

    /* Partly or wholly outside, NULL or empty labels, gray images. */
    im = blank(64, 48, 1, 0);
    lupe_img_draw_box(im, -10, -10, 30, 30, LUPE_RGB(0, 255, 0), "x");
    lupe_img_draw_box(im, 1000, 1000, 30, 30, LUPE_RGB(0, 255, 0), "far");
    lupe_img_draw_box(im, -2147483647, 2147483000, 2147483647, 2147483647, LUPE_RGB(0, 255, 0), "huge");
    lupe_img_draw_box(im, 5, 20, 20, 20, LUPE_RGB(0, 255, 0), NULL);
    lupe_img_draw_box(im, 30, 20, 20, 20, LUPE_RGB(0, 255, 0), "");
    lupe_img_draw_box(NULL, 0, 0, 1, 1, 0, "x");
    assert_int_equal(im->data[19 * 64 + 0], (150 * 255 + 128) >> 8); /* bottom of the clipped box */
    assert_int_equal(im->data[19 * 64 + 30], 0); /* no tab for an empty label */
    lupe_img_free(im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_rect), cmocka_unit_test(test_draw_rect), cmocka_unit_test(test_font_table),
        cmocka_unit_test(test_text),      cmocka_unit_test(test_draw_box),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
