/*
 * Hostile input: every truncation of a real JPEG and of PNGs, random bytes,
 * flipped bytes, headers that lie about the size (with valid CRCs), bad CRCs,
 * and out-of-memory at each allocation of a decode. The decoder must answer
 * with an error or a valid image, never crash, leak or allocate big.
 */
#include <stdio.h> /* jpeglib.h needs FILE and size_t first */
#include <string.h>

#include <jpeglib.h>

#include "img/fixtures.h"

static uint32_t rng = 2463534242u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5; /* xorshift32 */
    return rng;
}

/* Decodes and checks the contract: error and no image, or a sane image. */
static lupe_status decode_any(const uint8_t *buf, size_t len, const lupe_img_limits *lim)
{
    lupe_img *im = NULL;
    lupe_status st = lupe_img_decode(buf, len, 0, lim, &im);
    if (st) {
        assert_null(im);
        assert_true(lupe_errmsg()[0] != 0);
    } else {
        assert_non_null(im);
        assert_true(im->w > 0 && im->h > 0 && (im->c == 1 || im->c == 3));
        assert_int_equal(lupe_alloc_size(im->data), (size_t)im->w * im->h * im->c);
    }
    lupe_img_free(im);
    lupe_img_info info;
    (void)lupe_img_probe(buf, len, &info);
    int64_t t;
    (void)lupe_img_exif_time(buf, len, &t);
    return st;
}

static size_t peak_above_live(void)
{
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    return s.peak_bytes - s.live_bytes;
}

static uint8_t *real_jpeg(size_t *len)
{
    return tu_read(tu_shared(FX_JPEG), len);
}

static void test_jpeg_truncations(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *buf = real_jpeg(&n);
    size_t live = fx_live();
    assert_int_equal(decode_any(buf, n, NULL), LUPE_OK);
    /* Every length through the headers and first scan lines, then a stride. */
    int errors = 0, tested = 0;
    for (size_t len = 0; len < n; len += len < 3000 ? 1 : 61) {
        /* A copy of exactly len bytes, so ASan sees any read past the end. */
        uint8_t *cut = lupe_malloc(len ? len : 1);
        memcpy(cut, buf, len);
        lupe_status st = decode_any(cut, len, NULL);
        lupe_free(cut);
        tested++;
        if (st) errors++;
    }
    /* Everything short of the EOI marker is refused, not padded with gray. */
    assert_int_equal(errors, tested);
    lupe_img *im = NULL;
    assert_int_equal(lupe_img_decode(buf, n - 2000, 3, NULL, &im), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "Premature end of JPEG file"));
    assert_int_equal(fx_live(), live);
    lupe_free(buf);
}

/* A progressive JPEG of the real image, written with libjpeg, exercises the
 * coefficient-buffer path of the decoder. */
static uint8_t *progressive_jpeg(unsigned long *len)
{
    size_t n = 0;
    uint8_t *buf = real_jpeg(&n);
    lupe_img *im = NULL;
    assert_int_equal(lupe_img_decode(buf, n, 3, NULL, &im), LUPE_OK);
    lupe_free(buf);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *out = NULL;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, len);
    c.image_width = (JDIMENSION)im->w;
    c.image_height = (JDIMENSION)im->h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = im->data + (size_t)c.next_scanline * im->w * 3;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    lupe_img_free(im);
    return out;
}

static void test_progressive_truncations(void **state)
{
    (void)state;
    unsigned long n = 0;
    uint8_t *p = progressive_jpeg(&n);
    lupe_img *im = NULL;
    assert_int_equal(lupe_img_decode(p, n, 3, NULL, &im), LUPE_OK);
    assert_int_equal(im->w, 450);
    lupe_img_free(im);
    for (size_t len = 0; len < n; len += 97) {
        uint8_t *cut = lupe_malloc(len ? len : 1);
        memcpy(cut, p, len);
        assert_int_not_equal(decode_any(cut, len, NULL), LUPE_OK);
        lupe_free(cut);
    }
    free(p);
}

/* A valid gray progressive JPEG with a great many scans: the DC and the
 * first `n_ac` AC coefficients are each sent one bit at a time (a first scan
 * at Al = 10, libjpeg's maximum for 8-bit samples, and 10 refinement scans),
 * 11 scans per coefficient. */
static uint8_t *many_scans_jpeg(int n_ac, int *n_scans, unsigned long *len)
{
    static jpeg_scan_info scans[64 * 11];
    int n = 0;
    for (int k = 0; k <= n_ac; k++) {
        scans[n++] = (jpeg_scan_info){1, {0}, k, k, 0, 10};
        for (int ah = 10; ah >= 1; ah--) scans[n++] = (jpeg_scan_info){1, {0}, k, k, ah, ah - 1};
    }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *out = NULL;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, len);
    c.image_width = 32;
    c.image_height = 32;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    c.scan_info = scans;
    c.num_scans = n;
    jpeg_start_compress(&c, TRUE);
    uint8_t row[32];
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < 32; x++) row[x] = (uint8_t)(x * 8 ^ c.next_scanline * 5);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *n_scans = n;
    return out;
}

static void test_jpeg_scan_limit(void **state)
{
    (void)state;
    int n = 0;
    unsigned long len = 0;
    lupe_img *im = NULL;
    uint8_t *ok = many_scans_jpeg(20, &n, &len); /* 231 scans: legal and decoded */
    assert_int_equal(n, 231);
    assert_int_equal(lupe_img_decode(ok, len, 0, NULL, &im), LUPE_OK);
    assert_int_equal(im->w, 32);
    assert_int_equal(im->c, 1);
    lupe_img_free(im);
    free(ok);
    uint8_t *many = many_scans_jpeg(24, &n, &len); /* 275 scans: over the cap */
    assert_int_equal(n, 275);
    assert_int_equal(lupe_img_decode(many, len, 0, NULL, &im), LUPE_ELIMIT);
    assert_non_null(strstr(lupe_errmsg(), "more than 256 scans"));
    assert_null(im);
    free(many);
}

static uint8_t *small_png(int interlace, size_t *len)
{
    lupe_img *im = fx_pattern(40, 30, 3);
    uint8_t *png = fx_png(40, 30, PNG_COLOR_TYPE_RGB, 8, interlace, im->data, NULL, 0, NULL, NULL, 0, len);
    lupe_img_free(im);
    return png;
}

static void test_png_truncations(void **state)
{
    (void)state;
    for (int interlace = 0; interlace <= 1; interlace++) {
        size_t n = 0;
        uint8_t *png = small_png(interlace, &n);
        size_t live = fx_live();
        assert_int_equal(decode_any(png, n, NULL), LUPE_OK);
        for (size_t len = 0; len < n; len++) {
            uint8_t *cut = lupe_malloc(len ? len : 1);
            memcpy(cut, png, len);
            /* Even a file cut inside IEND is refused. */
            if (decode_any(cut, len, NULL) == LUPE_OK) fail_msg("truncated at %zu of %zu accepted", len, n);
            lupe_free(cut);
        }
        lupe_img *im = NULL;
        assert_int_equal(lupe_img_decode(png, n - 100, 3, NULL, &im), LUPE_EFORMAT);
        char want[64];
        snprintf(want, sizeof want, "truncated at byte %zu", n - 100);
        assert_non_null(strstr(lupe_errmsg(), want));
        assert_int_equal(fx_live(), live);
        lupe_free(png);
    }
}

static void test_random_bytes(void **state)
{
    (void)state;
    static const uint8_t jpeg_sig[] = {0xFF, 0xD8, 0xFF}, png_sig[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t live = fx_live();
    for (int i = 0; i < 3000; i++) {
        size_t len = 1 + next_rand() % 2048;
        uint8_t *b = lupe_malloc(len);
        for (size_t k = 0; k < len; k++) b[k] = (uint8_t)next_rand();
        if (i % 3 == 1 && len >= sizeof jpeg_sig) memcpy(b, jpeg_sig, sizeof jpeg_sig);
        if (i % 3 == 2 && len >= sizeof png_sig) memcpy(b, png_sig, sizeof png_sig);
        assert_int_not_equal(decode_any(b, len, NULL), LUPE_OK);
        lupe_free(b);
    }
    assert_int_equal(fx_live(), live);
}

/* Rewrites the IHDR of a PNG and fixes its CRC so only the size check can
 * object. */
static void set_ihdr_size(uint8_t *png, uint32_t w, uint32_t h)
{
    fx_put32(png + 16, w);
    fx_put32(png + 20, h);
    fx_put32(png + 29, fx_crc32(0, png + 12, 4 + 13));
}

static void test_png_lying_header(void **state)
{
    (void)state;
    assert_int_equal(fx_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    size_t n = 0;
    uint8_t *png = small_png(0, &n);
    /* The CRC libpng wrote over IHDR is the one we compute. */
    assert_int_equal(fx_get32(png + 29), fx_crc32(0, png + 12, 17));

    lupe_img *im = NULL;
    lupe_img_info info;
    size_t live = fx_live();
    set_ihdr_size(png, 100000, 100000);
    lupe_alloc_reset_peak();
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_ELIMIT);
    assert_non_null(strstr(lupe_errmsg(), "100000x100000"));
    assert_true(peak_above_live() < 64 * 1024);
    assert_int_equal(lupe_img_probe(png, n, &info), LUPE_OK); /* probe reports, decode refuses */
    assert_int_equal(info.w, 100000);

    set_ihdr_size(png, 30000, 30000); /* within a side, over the pixel count */
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_ELIMIT);
    assert_non_null(strstr(lupe_errmsg(), "900000000 pixels"));

    /* Within the limits, but far more pixels than the file can hold. */
    set_ihdr_size(png, 8000, 8000);
    lupe_alloc_reset_peak();
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "cannot hold"));
    assert_true(peak_above_live() < 64 * 1024);

    /* An ancillary chunk whose length runs past the end of the file (found
     * by the fuzzer): libpng would allocate the declared 368 MiB first. */
    set_ihdr_size(png, 40, 30);
    uint8_t *big = lupe_malloc(n + 12);
    memcpy(big, png, 33);
    memcpy(big + 33, "\x17\x00\x00\x1fzTXtComment\0", 12);
    memcpy(big + 45, png + 33, n - 33);
    lupe_alloc_reset_peak();
    assert_int_equal(lupe_img_decode(big, n + 12, 3, NULL, &im), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "chunk zTXt at byte 33 declares 385875999 bytes"));
    assert_true(peak_above_live() < 64 * 1024);
    lupe_free(big);

    /* Slightly larger than the data: libpng runs out of image data. */
    set_ihdr_size(png, 40, 31);
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_EFORMAT);
    set_ihdr_size(png, 0, 30);
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_EFORMAT);
    set_ihdr_size(png, 0x80000000u, 30);
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_EFORMAT);
    assert_null(im);
    assert_int_equal(fx_live(), live);
    lupe_free(png);
}

static void test_png_bad_crc(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *png = small_png(0, &n);
    lupe_img *im = NULL;
    /* IHDR CRC. */
    png[29] ^= 1;
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "CRC"));
    png[29] ^= 1;
    /* A byte of IDAT data, so its CRC no longer matches. */
    size_t idat = 8 + 25;
    assert_memory_equal(png + idat + 4, "IDAT", 4);
    png[idat + 8 + 10] ^= 0x40;
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_EFORMAT);
    /* zlib's own checksum may notice first: either way IDAT is named. */
    assert_non_null(strstr(lupe_errmsg(), "IDAT"));
    png[idat + 8 + 10] ^= 0x40;
    assert_int_equal(lupe_img_decode(png, n, 3, NULL, &im), LUPE_OK);
    lupe_img_free(im);

    /* An ancillary chunk with a bad CRC is dropped, the image still decodes. */
    uint8_t text[12 + 9] = {0, 0, 0, 9, 't', 'E', 'X', 't', 'k', 'e', 'y', 0, 'v', 'a', 'l', 'u', 'e', 1, 2, 3, 4};
    uint8_t *with = lupe_malloc(n + sizeof text);
    memcpy(with, png, 33);
    memcpy(with + 33, text, sizeof text);
    memcpy(with + 33 + sizeof text, png + 33, n - 33);
    assert_int_equal(lupe_img_decode(with, n + sizeof text, 3, NULL, &im), LUPE_OK);
    lupe_img_free(im);
    lupe_free(with);

    /* Flipped bytes inside IDAT with the CRC fixed up, so zlib and the row
     * filters see the damage: errors or wrong pixels, never a crash. */
    uint32_t idat_len = fx_get32(png + idat);
    for (int i = 0; i < 400; i++) {
        uint8_t *c = lupe_malloc(n);
        memcpy(c, png, n);
        for (int f = 0; f < 1 + i % 3; f++) c[idat + 8 + next_rand() % idat_len] ^= (uint8_t)(1 + next_rand() % 255);
        fx_put32(c + idat + 8 + idat_len, fx_crc32(0, c + idat + 4, 4 + idat_len));
        (void)decode_any(c, n, NULL);
        lupe_free(c);
    }
    lupe_free(png);
}

/* A 4x4 gray PNG carrying `n` zTXt chunks of 1 MiB of text each, which
 * deflate squeezes to about 1 KiB apiece. */
static uint8_t *text_bomb_png(int n, size_t *len)
{
    fx_buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing the text bomb");
    png_set_write_fn(png, &b, fx_png_write, fx_png_flush);
    png_set_IHDR(png, info, 4, 4, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    char *big = malloc(1 << 20), key[] = "Comment";
    memset(big, 'a', 1 << 20);
    big[(1 << 20) - 1] = 0;
    png_text t[8];
    for (int i = 0; i < n; i++) t[i] = (png_text){.compression = PNG_TEXT_COMPRESSION_zTXt, .key = key, .text = big};
    png_set_text(png, info, t, n);
    png_write_info(png, info);
    uint8_t px[16] = {0};
    for (int y = 0; y < 4; y++) png_write_row(png, px + 4 * y);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(big);
    uint8_t *out = lupe_malloc(b.len);
    memcpy(out, b.p, b.len);
    free(b.p);
    *len = b.len;
    return out;
}

static void test_png_text_bomb(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *png = text_bomb_png(8, &n);
    assert_true(n < 64 * 1024); /* 8 MiB of text in a small file */
    lupe_img *im = NULL;
    lupe_alloc_reset_peak();
    assert_int_equal(lupe_img_decode(png, n, 0, NULL, &im), LUPE_OK);
    /* The text is skipped, never inflated. */
    assert_true(peak_above_live() < 256 * 1024);
    assert_int_equal(im->w, 4);
    lupe_img_free(im);
    lupe_free(png);
}

/* Offset of the first SOFn marker's length field in a JPEG. */
static size_t find_sof(const uint8_t *b, size_t n)
{
    for (size_t i = 2; i + 9 < n; i++)
        if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC1 || b[i + 1] == 0xC2)) return i + 2;
    fail_msg("no SOF marker");
    return 0;
}

static void test_jpeg_lying_header(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *buf = real_jpeg(&n);
    size_t sof = find_sof(buf, n); /* length(2) precision(1) height(2) width(2) */
    assert_int_equal(buf[sof + 3] << 8 | buf[sof + 4], 300);
    assert_int_equal(buf[sof + 5] << 8 | buf[sof + 6], 450);
    lupe_img *im = NULL;
    size_t live = fx_live();
    buf[sof + 3] = 65000 >> 8, buf[sof + 4] = 65000 & 255, buf[sof + 5] = 65000 >> 8, buf[sof + 6] = 65000 & 255;
    lupe_alloc_reset_peak();
    assert_int_equal(lupe_img_decode(buf, n, 3, NULL, &im), LUPE_ELIMIT);
    assert_non_null(strstr(lupe_errmsg(), "65000x65000"));
    assert_true(peak_above_live() < 64 * 1024);
    lupe_img_info info;
    assert_int_equal(lupe_img_probe(buf, n, &info), LUPE_OK);
    assert_int_equal(info.w, 65000);
    /* Zero height: libjpeg would need a DNL marker, which it does not do. */
    buf[sof + 3] = 0, buf[sof + 4] = 0, buf[sof + 5] = 1, buf[sof + 6] = 194;
    assert_int_equal(lupe_img_decode(buf, n, 3, NULL, &im), LUPE_EFORMAT);
    /* Taller than the data: the decoder runs out of data and says so. */
    buf[sof + 3] = 1, buf[sof + 4] = 100;
    assert_int_equal(lupe_img_decode(buf, n, 3, NULL, &im), LUPE_EFORMAT);
    /* Within limits only when the limit is loose: a tight one refuses. */
    lupe_img_limits lim = lupe_img_default_limits();
    lim.max_pixels = 1000;
    assert_int_equal(lupe_img_decode(buf, n, 3, &lim, &im), LUPE_ELIMIT);
    assert_null(im);
    assert_int_equal(fx_live(), live);
    lupe_free(buf);
}

static void test_jpeg_flipped_bytes(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *buf = real_jpeg(&n);
    size_t live = fx_live();
    int errors = 0;
    for (int i = 0; i < 400; i++) {
        uint8_t *c = lupe_malloc(n);
        memcpy(c, buf, n);
        /* Half the flips land in the headers, where they do the most harm. */
        for (int f = 0; f < 1 + i % 4; f++) {
            size_t at = 2 + (i % 2 ? next_rand() % 700 : next_rand() % (n - 2));
            c[at] ^= (uint8_t)(1 + next_rand() % 255);
        }
        if (decode_any(c, n, NULL)) errors++;
        lupe_free(c);
    }
    assert_true(errors > 40); /* damage is noticed, not silently decoded */
    assert_int_equal(fx_live(), live);
    lupe_free(buf);
}

/* Out of memory at each funnel allocation of a decode (the image for JPEG;
 * libpng's and zlib's own allocations too for PNG). */
static void oom_sweep(const uint8_t *buf, size_t n)
{
    int failed = 0;
    for (uint64_t k = 1; k < 1000; k++) {
        size_t live = fx_live();
        lupe_img *im = NULL;
        lupe_alloc_fail_nth(k);
        lupe_status st = lupe_img_decode(buf, n, 1, NULL, &im);
        lupe_alloc_fail_nth(0);
        if (st == LUPE_OK) {
            lupe_img_free(im);
            assert_int_equal(fx_live(), live);
            assert_true(failed > 0);
            return;
        }
        if (st != LUPE_ENOMEM) fail_msg("allocation %llu: %s: %s", (unsigned long long)k, lupe_strerror(st), lupe_errmsg());
        assert_null(im);
        assert_int_equal(fx_live(), live);
        failed++;
    }
    fail_msg("decode never succeeded");
}

static void test_decode_oom(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *buf = real_jpeg(&n);
    oom_sweep(buf, n);
    lupe_free(buf);
    for (int interlace = 0; interlace <= 1; interlace++) {
        uint8_t *png = small_png(interlace, &n);
        oom_sweep(png, n);
        lupe_free(png);
    }
    /* A funnel limit works the same way as a failing allocation. */
    buf = real_jpeg(&n);
    lupe_img *im = NULL;
    lupe_alloc_set_limit(fx_live() + 1000);
    assert_int_equal(lupe_img_decode(buf, n, 3, NULL, &im), LUPE_ENOMEM);
    lupe_alloc_set_limit(0);
    lupe_free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jpeg_truncations),  cmocka_unit_test(test_progressive_truncations),
        cmocka_unit_test(test_png_truncations),   cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_png_lying_header),  cmocka_unit_test(test_png_bad_crc),
        cmocka_unit_test(test_png_text_bomb),
        cmocka_unit_test(test_jpeg_lying_header), cmocka_unit_test(test_jpeg_flipped_bytes),
        cmocka_unit_test(test_jpeg_scan_limit),   cmocka_unit_test(test_decode_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
