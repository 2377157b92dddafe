/*
 * Inputs shared by the image tests: a real metal-tag JPEG from the shared
 * dataset, PNGs of every colour type written with libpng directly (so the
 * decoder is not tested against our own encoder only), CRC-32 for forging
 * chunks, and pixel helpers. Header-only: the build links one file per test.
 */
#ifndef LUPE_TEST_IMG_FIXTURES_H
#define LUPE_TEST_IMG_FIXTURES_H

#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/img.h"

#define FX_JPEG "datasets/metal-tags/images/bad/image-2020-04-22-10-51-14-06-cropped-left-bottom.jpg"

/* CRC-32 as PNG uses it (ISO 3309, the same as zlib's crc32). zlib is not on
 * the test link line, and the check value below pins the implementation. */
static inline uint32_t fx_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static inline void fx_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static inline uint32_t fx_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct fx_buf {
    uint8_t *p;
    size_t len, cap;
} fx_buf;

static inline void fx_png_write(png_structp png, png_bytep data, size_t n)
{
    fx_buf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static inline void fx_png_flush(png_structp png)
{
    (void)png;
}

/* Writes a PNG of any colour type and depth with libpng. `rows` holds the
 * packed samples as libpng expects them (16-bit samples big-endian). For
 * palette images, `plte` has n_plte RGB triples; `trns` (may be NULL) holds
 * n_trns alpha values (palette) or one gray/RGB colour (2 or 6 bytes in
 * png_color_16 order: gray; or red, green, blue). Returns a funnel buffer. */
static inline uint8_t *fx_png(int w, int h, int ctype, int depth, int interlace, const uint8_t *samples,
                              const uint8_t *plte, int n_plte, const png_color_16 *trns_color,
                              const uint8_t *trns_alpha, int n_trns, size_t *len)
{
    fx_buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing a fixture");
    png_set_write_fn(png, &b, fx_png_write, fx_png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (plte) {
        png_color pal[256];
        for (int i = 0; i < n_plte; i++) pal[i].red = plte[3 * i], pal[i].green = plte[3 * i + 1], pal[i].blue = plte[3 * i + 2];
        png_set_PLTE(png, info, pal, n_plte);
    }
    if (trns_color || trns_alpha) png_set_tRNS(png, info, trns_alpha, n_trns, trns_color);
    png_write_info(png, info);
    int channels = ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_PALETTE ? 1
                   : ctype == PNG_COLOR_TYPE_GRAY_ALPHA                        ? 2
                   : ctype == PNG_COLOR_TYPE_RGB                               ? 3
                                                                               : 4;
    size_t rowbytes = ((size_t)w * channels * depth + 7) / 8;
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(samples + (size_t)y * rowbytes);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    uint8_t *out = lupe_malloc(b.len);
    memcpy(out, b.p, b.len);
    free(b.p);
    *len = b.len;
    return out;
}

/* A deterministic RGB or gray test picture with gradients and edges. */
static inline lupe_img *fx_pattern(int w, int h, int c)
{
    lupe_img *im = lupe_img_new(w, h, c);
    assert_non_null(im);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                im->data[((size_t)y * w + x) * c + k] = (uint8_t)((x * 7 + y * 3 + k * 85 + ((x / 8 + y / 8) % 2) * 40) & 255);
    return im;
}

static inline uint8_t *fx_px(const lupe_img *im, int x, int y)
{
    return im->data + ((size_t)y * im->w + x) * im->c;
}

/* Bytes now live in the funnel, to check that failures give everything back. */
static inline size_t fx_live(void)
{
    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    return s.live_bytes;
}

#endif
