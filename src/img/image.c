/*
 * The image container: allocation through the funnel, copies, channel
 * conversion and cropping. Everything here is plain memory work; the codecs
 * and the resamplers live in their own files.
 */
#include <string.h>

#include "img/internal.h"

int img__valid(const lupe_img *im)
{
    return im && im->data && im->w > 0 && im->h > 0 && (im->c == 1 || im->c == 3);
}

lupe_img *lupe_img_new(int w, int h, int c)
{
    lupe_img *im = NULL;
    if (w <= 0 || h <= 0 || (c != 1 && c != 3)) {
        lupe_err(LUPE_EARG, "image size %dx%dx%d is not valid", w, h, c);
        return NULL;
    }
    /* w, h < 2^31 and c <= 3, so the product fits in 64 bits; lupe_calloc
     * then refuses what does not fit in size_t. */
    uint64_t n = (uint64_t)w * (uint64_t)h * (uint64_t)c;
    if (n > SIZE_MAX) {
        lupe_err(LUPE_ENOMEM, "image of %dx%dx%d is too large", w, h, c);
        return NULL;
    }
    im = lupe_malloc(sizeof *im);
    if (!im) return NULL;
    im->data = lupe_calloc((size_t)n, 1);
    if (!im->data) {
        lupe_free(im);
        return NULL;
    }
    im->w = w;
    im->h = h;
    im->c = c;
    return im;
}

void lupe_img_free(lupe_img *im)
{
    if (!im) return;
    lupe_free(im->data);
    lupe_free(im);
}

lupe_img *lupe_img_clone(const lupe_img *im)
{
    if (!img__valid(im)) {
        lupe_err(LUPE_EARG, "clone: not a valid image");
        return NULL;
    }
    lupe_img *cp = lupe_img_new(im->w, im->h, im->c);
    if (cp) memcpy(cp->data, im->data, (size_t)im->w * im->h * im->c);
    return cp;
}

lupe_img *lupe_img_to_channels(const lupe_img *src, int c)
{
    if (!img__valid(src) || (c != 1 && c != 3)) {
        lupe_err(LUPE_EARG, "to_channels: need a valid image and 1 or 3 channels, got %d", c);
        return NULL;
    }
    if (src->c == c) return lupe_img_clone(src);
    lupe_img *dst = lupe_img_new(src->w, src->h, c);
    if (!dst) return NULL;
    size_t n = (size_t)src->w * src->h;
    const uint8_t *s = src->data;
    uint8_t *d = dst->data;
    if (c == 1) {
        for (size_t i = 0; i < n; i++, s += 3) d[i] = img__luma(s[0], s[1], s[2]);
    } else {
        for (size_t i = 0; i < n; i++, d += 3) d[0] = d[1] = d[2] = s[i];
    }
    return dst;
}

lupe_status lupe_img_crop(const lupe_img *src, int x, int y, int w, int h, lupe_img **out)
{
    *out = NULL;
    if (!img__valid(src)) return lupe_err(LUPE_EARG, "crop: not a valid image");
    /* Written as differences so that huge x + w cannot overflow. */
    if (x < 0 || y < 0 || w <= 0 || h <= 0 || x > src->w - w || y > src->h - h)
        return lupe_err(LUPE_EARG, "crop: rectangle %d,%d %dx%d is not inside the %dx%d image", x, y, w, h, src->w,
                        src->h);
    lupe_img *dst = lupe_img_new(w, h, src->c);
    if (!dst) return LUPE_ENOMEM;
    size_t row = (size_t)w * src->c;
    for (int r = 0; r < h; r++)
        memcpy(dst->data + (size_t)r * row, src->data + (((size_t)(y + r) * src->w) + x) * src->c, row);
    *out = dst;
    return LUPE_OK;
}
