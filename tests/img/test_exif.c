/*
 * EXIF capture time: JPEGs with hand-built EXIF segments in both byte orders,
 * DateTimeOriginal preferred over DateTime, strict date parsing, and hostile
 * segments (truncated, flipped bytes, out of memory) that must not crash.
 */
#include <string.h>

#include "img/fixtures.h"

typedef struct wbuf {
    uint8_t b[4096];
    size_t n;
    int be; /* big-endian TIFF ("MM") */
} wbuf;

static void put16(wbuf *w, size_t at, unsigned v)
{
    if (w->be)
        w->b[at] = (uint8_t)(v >> 8), w->b[at + 1] = (uint8_t)v;
    else
        w->b[at] = (uint8_t)v, w->b[at + 1] = (uint8_t)(v >> 8);
}

static void put32(wbuf *w, size_t at, uint32_t v)
{
    if (w->be) {
        put16(w, at, v >> 16);
        put16(w, at + 2, v & 0xFFFF);
    } else {
        put16(w, at, v & 0xFFFF);
        put16(w, at + 2, v >> 16);
    }
}

/* One IFD entry; offsets are from the start of the TIFF header. */
static void entry(wbuf *t, size_t at, unsigned tag, unsigned type, uint32_t count, uint32_t value)
{
    put16(t, at, tag);
    put16(t, at + 2, type);
    put32(t, at + 4, count);
    put32(t, at + 8, value);
}

/* Builds a TIFF block: IFD0 holding DateTime (if given), Orientation, and a
 * pointer to an EXIF IFD holding DateTimeOriginal (if given). */
static size_t make_tiff(wbuf *t, int be, const char *dt, const char *dto)
{
    memset(t, 0, sizeof *t);
    t->be = be;
    memcpy(t->b, be ? "MM" : "II", 2);
    put16(t, 2, 42);
    put32(t, 4, 8);
    size_t ifd0 = 8, n0 = 3;
    size_t exif_ifd = ifd0 + 2 + n0 * 12 + 4;
    size_t data = exif_ifd + 2 + 12 + 4;
    put16(t, ifd0, (unsigned)n0);
    size_t e = ifd0 + 2;
    entry(t, e, 0x0112, 3, 1, 0); /* Orientation = 1, SHORT in the value field */
    put16(t, e + 8, 1);
    e += 12;
    if (dt) {
        entry(t, e, 0x0132, 2, (uint32_t)strlen(dt) + 1, (uint32_t)data);
        memcpy(t->b + data, dt, strlen(dt) + 1);
        data += strlen(dt) + 1;
    } else {
        entry(t, e, 0x0131, 2, 4, 0); /* Software "lup" fits in the value field */
        memcpy(t->b + e + 8, "lup", 4);
    }
    e += 12;
    entry(t, e, 0x8769, 4, 1, (uint32_t)exif_ifd);
    put32(t, e + 12, 0); /* no IFD1 */
    put16(t, exif_ifd, 1);
    if (dto) {
        entry(t, exif_ifd + 2, 0x9003, 2, (uint32_t)strlen(dto) + 1, (uint32_t)data);
        memcpy(t->b + data, dto, strlen(dto) + 1);
        data += strlen(dto) + 1;
    } else {
        entry(t, exif_ifd + 2, 0xA001, 3, 1, 0); /* ColorSpace */
        put16(t, exif_ifd + 2 + 8, 1);
    }
    put32(t, exif_ifd + 14, 0);
    t->n = data;
    return data;
}

/* SOI, [APP0 first,] APP1 "Exif\0\0" + TIFF, then the rest of a real JPEG. */
static uint8_t *exif_jpeg(int be, const char *dt, const char *dto, int app0_first, size_t *len)
{
    wbuf t;
    make_tiff(&t, be, dt, dto);
    lupe_img *im = fx_pattern(16, 16, 3);
    uint8_t *j = NULL;
    size_t jn = 0;
    assert_int_equal(lupe_img_encode_jpeg(im, 80, &j, &jn), LUPE_OK);
    lupe_img_free(im);
    /* Our encoder writes SOI then a JFIF APP0 of 18 bytes. */
    assert_true(j[2] == 0xFF && j[3] == 0xE0);
    size_t app0 = 2 + 2 + ((size_t)j[4] << 8 | j[5]);
    size_t seg = 2 + 6 + t.n;
    uint8_t *out = lupe_malloc(jn + 4 + 6 + t.n);
    size_t n = 0;
    memcpy(out, j, 2), n = 2;
    if (app0_first) memcpy(out + n, j + 2, app0 - 2), n += app0 - 2;
    out[n++] = 0xFF, out[n++] = 0xE1, out[n++] = (uint8_t)(seg >> 8), out[n++] = (uint8_t)seg;
    memcpy(out + n, "Exif\0\0", 6), n += 6;
    memcpy(out + n, t.b, t.n), n += t.n;
    memcpy(out + n, j + app0, jn - app0), n += jn - app0;
    lupe_free(j);
    *len = n;
    return out;
}

static lupe_status exif_time(int be, const char *dt, const char *dto, int64_t *t)
{
    size_t n = 0;
    uint8_t *j = exif_jpeg(be, dt, dto, 0, &n);
    lupe_status st = lupe_img_exif_time(j, n, t);
    lupe_free(j);
    return st;
}

static void test_exif_times(void **state)
{
    (void)state;
    for (int be = 0; be <= 1; be++) {
        int64_t t = 0;
        assert_int_equal(exif_time(be, "2019:12:31 23:59:58", "2021:03:04 05:06:07", &t), LUPE_OK);
        assert_int_equal(t, 1614834367);
        assert_int_equal(exif_time(be, "2019:12:31 23:59:58", NULL, &t), LUPE_OK);
        assert_int_equal(t, 1577836798);
        assert_int_equal(exif_time(be, NULL, "2024:02:29 12:00:00", &t), LUPE_OK);
        assert_int_equal(t, 1709208000);
        assert_int_equal(exif_time(be, NULL, "1969:12:31 23:59:59", &t), LUPE_OK);
        assert_int_equal(t, -1);
        /* A bad DateTimeOriginal falls back to DateTime. */
        assert_int_equal(exif_time(be, "2000:01:01 00:00:00", "2021:02:29 00:00:00", &t), LUPE_OK);
        assert_int_equal(t, 946684800);
        /* Neither tag: not found, and the output is left alone. */
        t = 42;
        assert_int_equal(exif_time(be, NULL, NULL, &t), LUPE_ENOTFOUND);
        assert_int_equal(t, 42);
    }
    /* EXIF after a JFIF APP0 segment is found too. */
    size_t n = 0;
    int64_t t = 0;
    uint8_t *j = exif_jpeg(0, NULL, "2021:03:04 05:06:07", 1, &n);
    assert_int_equal(lupe_img_exif_time(j, n, &t), LUPE_OK);
    assert_int_equal(t, 1614834367);
    /* The image itself still decodes with the extra segment. */
    lupe_img *im = NULL;
    assert_int_equal(lupe_img_decode(j, n, 3, NULL, &im), LUPE_OK);
    lupe_img_free(im);
    lupe_free(j);
}

static void test_exif_strict_dates(void **state)
{
    (void)state;
    const char *bad[] = {"0000:00:00 00:00:00", "2021:02:29 00:00:00", "2100:02:29 00:00:00", "2021:13:01 00:00:00",
                         "2021:04:31 00:00:00", "2021:01:01 24:00:00", "2021:01:01 00:60:00", "2021:01:01 00:00:60",
                         "2021-01-01 00:00:00", "2021:01:01T00:00:00", "2021:01:01 00:00:0x", "2021:1:01 00:00:00",
                         "2021:01:01 00:00", "    :  :     :  :  ", "2021:01:01 00:00:00 extra"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t = 0;
        if (exif_time(i & 1, NULL, bad[i], &t) != LUPE_ENOTFOUND) fail_msg("accepted '%s' as %lld", bad[i], (long long)t);
    }
    int64_t t = 0;
    assert_int_equal(exif_time(0, NULL, "2000:02:29 00:00:00", &t), LUPE_OK); /* 2000 is a leap year */
}

static void test_exif_not_there(void **state)
{
    (void)state;
    int64_t t = 0;
    size_t n = 0;
    uint8_t *real = tu_read(tu_shared(FX_JPEG), &n);
    assert_int_equal(lupe_img_exif_time(real, n, &t), LUPE_ENOTFOUND);
    lupe_free(real);
    const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    assert_int_equal(lupe_img_exif_time(png, sizeof png, &t), LUPE_ENOTFOUND);
    assert_int_equal(lupe_img_exif_time(png, 0, &t), LUPE_ENOTFOUND);
    assert_int_equal(lupe_img_exif_time(NULL, 5, &t), LUPE_EARG);
    assert_int_equal(lupe_img_exif_time(png, sizeof png, NULL), LUPE_EARG);
}

static void test_exif_hostile(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *j = exif_jpeg(1, "2019:12:31 23:59:58", "2021:03:04 05:06:07", 0, &n);
    size_t live = fx_live();
    /* Every truncation: either the right answer or not found. */
    for (size_t len = 0; len <= n; len++) {
        int64_t t = 0;
        lupe_status st = lupe_img_exif_time(j, len, &t);
        assert_true(st == LUPE_ENOTFOUND || (st == LUPE_OK && (t == 1614834367 || t == 1577836798)));
    }
    /* Flipped bytes in the segment and its length field. */
    uint32_t r = 12345;
    for (int i = 0; i < 3000; i++) {
        uint8_t *c = lupe_malloc(n);
        memcpy(c, j, n);
        for (int f = 0; f < 1 + i % 4; f++) {
            r = r * 1103515245 + 12345;
            size_t at = 2 + (r >> 8) % 200;
            c[at] ^= (uint8_t)(1 + (r >> 3) % 255);
        }
        int64_t t;
        lupe_status st = lupe_img_exif_time(c, n, &t);
        assert_true(st == LUPE_OK || st == LUPE_ENOTFOUND);
        lupe_free(c);
    }
    assert_int_equal(fx_live(), live);
    /* Out of memory at each allocation libexif makes. */
    int failed = 0;
    for (uint64_t k = 1;; k++) {
        int64_t t = 0;
        lupe_alloc_fail_nth(k);
        lupe_status st = lupe_img_exif_time(j, n, &t);
        lupe_alloc_fail_nth(0);
        assert_int_equal(fx_live(), live);
        if (st == LUPE_OK) {
            assert_int_equal(t, 1614834367);
            break;
        }
        assert_int_equal(st, LUPE_ENOMEM);
        failed++;
    }
    assert_true(failed > 2);
    lupe_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exif_times),
        cmocka_unit_test(test_exif_strict_dates),
        cmocka_unit_test(test_exif_not_there),
        cmocka_unit_test(test_exif_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
