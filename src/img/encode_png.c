/*
 * PNG encoding with libpng 1.6 into a growing funnel buffer. libpng itself
 * allocates through the funnel too, so an encode can be made to fail at any
 * allocation in tests.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "img/internal.h"
#include "img/png_util.h"

typedef struct wctx {
    uint8_t *buf; /* funnel memory */
    size_t len, cap;
    img__png_err e; /* libpng's callbacks see it through its own address */
} wctx;

static void write_mem(png_structp png, png_bytep data, size_t n)
{
    wctx *c = png_get_io_ptr(png);
    if (n > c->cap - c->len) {
        size_t ncap = c->cap ? c->cap : 4096;
        while (ncap - c->len < n) {
            if (ncap > SIZE_MAX / 2) png_error(png, "output too large");
            ncap *= 2;
        }
        uint8_t *nb = lupe_realloc(c->buf, ncap);
        if (!nb) {
            c->e.oom = 1;
            png_error(png, "out of memory");
        }
        c->buf = nb;
        c->cap = ncap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
}

static void flush_mem(png_structp png)
{
    (void)png;
}

lupe_status lupe_img_encode_png(const lupe_img *im, uint8_t **out, size_t *out_len)
{
    wctx c;
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *volatile rows = NULL;
    volatile lupe_status st = LUPE_OK; /* written after setjmp, read after longjmp */

    if (!out || !out_len) return lupe_err(LUPE_EARG, "encode png: no output pointer");
    *out = NULL;
    *out_len = 0;
    if (!img__valid(im)) return lupe_err(LUPE_EARG, "encode png: not a valid image");

    memset(&c, 0, sizeof c);
    png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &c.e, img__png_error, img__png_warning, &c.e, img__png_malloc,
                                    img__png_free);
    if (!png) return lupe_err(LUPE_ENOMEM, "encode png: cannot create the encoder");
    if (!(info = png_create_info_struct(png))) {
        st = lupe_err(LUPE_ENOMEM, "encode png: cannot create the encoder");
        goto out;
    }
    if (!(rows = lupe_malloc((size_t)im->h * sizeof *rows))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int y = 0; y < im->h; y++) rows[y] = (png_bytep)(im->data + (size_t)y * im->w * im->c);
    if (setjmp(png_jmpbuf(png))) {
        st = c.e.oom ? lupe_err(LUPE_ENOMEM, "encode png: out of memory")
                   : lupe_err(LUPE_EINTERNAL, "encode png: %s", c.e.msg[0] ? c.e.msg : "encoding failed");
        goto out;
    }
    png_set_write_fn(png, &c, write_mem, flush_mem);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8,
                 im->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);

    uint8_t *shrunk = lupe_realloc(c.buf, c.len);
    if (shrunk) c.buf = shrunk;
    *out = c.buf;
    *out_len = c.len;
    c.buf = NULL;
out:
    png_destroy_write_struct(&png, info ? &info : NULL);
    lupe_free(rows);
    lupe_free(c.buf);
    return st;
}
