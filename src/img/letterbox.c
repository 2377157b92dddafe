/*
 * Letterboxing for detector input: scale to fit keeping the aspect ratio,
 * centre, pad with gray 114 (the YOLO convention). The returned parameters
 * map a point back to the source: orig = (p - pad) / scale.
 */
#include <math.h>
#include <string.h>

#include "img/internal.h"

lupe_status lupe_img_letterbox(const lupe_img *src, int w, int h, lupe_img **out, lupe_letterbox *out_lb)
{
    lupe_img *scaled = NULL, *dst = NULL;
    lupe_status st = LUPE_OK;

    if (!out) return lupe_err(LUPE_EARG, "letterbox: no output pointer");
    *out = NULL;
    if (!img__valid(src)) return lupe_err(LUPE_EARG, "letterbox: not a valid image");
    if (w <= 0 || h <= 0) return lupe_err(LUPE_EARG, "letterbox: target size %dx%d is not valid", w, h);

    double sx = (double)w / src->w, sy = (double)h / src->h;
    double scale = sx < sy ? sx : sy;
    /* Rounded, then kept inside the target: the side that decided the scale
     * comes out exactly w or h. */
    int nw = (int)lround(src->w * scale), nh = (int)lround(src->h * scale);
    nw = nw < 1 ? 1 : nw > w ? w : nw;
    nh = nh < 1 ? 1 : nh > h ? h : nh;
    int pad_x = (w - nw) / 2, pad_y = (h - nh) / 2;

    if (!(dst = lupe_img_new(w, h, src->c))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    memset(dst->data, LUPE_LETTERBOX_PAD, (size_t)w * h * src->c);
    st = lupe_img_resize(src, nw, nh, LUPE_RESIZE_BILINEAR, &scaled);
    if (st) goto out;
    size_t row = (size_t)nw * src->c;
    for (int y = 0; y < nh; y++)
        memcpy(dst->data + ((size_t)(y + pad_y) * w + pad_x) * src->c, scaled->data + (size_t)y * row, row);
    if (out_lb) {
        out_lb->scale = (float)scale;
        out_lb->pad_x = pad_x;
        out_lb->pad_y = pad_y;
        out_lb->new_w = nw;
        out_lb->new_h = nh;
    }
    *out = dst;
    dst = NULL;
out:
    lupe_img_free(scaled);
    lupe_img_free(dst);
    return st;
}
