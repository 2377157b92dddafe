/*
 * Previews of validation images for a run folder: ground truth and
 * predictions drawn on the image in different colours with class names and
 * scores, and a montage that tiles several previews into one picture.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/eval_internal.h"

#define GT_COLOR LUPE_RGB(40, 210, 60)
#define MONTAGE_GAP 4
#define MONTAGE_MAX_SIDE 16384

/* Prediction colours: none of them green, so ground truth stands apart. */
static uint32_t pred_color(int cls)
{
    static const uint32_t c[] = {0xff3b30, 0xff9500, 0x2f7bff, 0xc040e0, 0xffd60a, 0xff2d78, 0x40d0ff, 0xa2845e};
    return c[(unsigned)cls % (sizeof c / sizeof *c)];
}

static void class_label(char *buf, size_t n, const char *const *names, int cls)
{
    if (names && cls >= 0 && names[cls])
        snprintf(buf, n, "%s", names[cls]);
    else
        snprintf(buf, n, "%d", cls);
}

static int to_px(float v)
{
    if (!(v > -1e6f)) return -1000000; /* also NaN */
    if (v > 1e6f) return 1000000;
    return (int)lroundf(v);
}

void eval_draw_boxes(lupe_img *im, const det_box *gt, int ngt, const det_pred *p, int np, float conf,
                     const char *const *names)
{
    if (!im || !im->data || im->w < 1 || im->h < 1) return;
    int min_side = im->w < im->h ? im->w : im->h;
    int t = 1 + min_side / 400, s = 1 + min_side / 600, pad = s;
    char lab[160];
    /* Ground truth: outline, and the name in a tab under the box (inside
     * its bottom edge when the box touches the bottom of the frame), so it
     * does not cover a prediction's tab above the same box. */
    for (int g = 0; gt && g < ngt; g++) {
        int x1 = to_px(gt[g].x1), y1 = to_px(gt[g].y1), x2 = to_px(gt[g].x2), y2 = to_px(gt[g].y2);
        lupe_img_draw_rect(im, x1, y1, x2 - x1, y2 - y1, t, GT_COLOR);
        class_label(lab, sizeof lab, names, gt[g].cls);
        int tw = lupe_img_text_width(lab, s) + 2 * pad, th = 7 * s + 2 * pad;
        int ty = y2 + th <= im->h ? y2 : y2 - th;
        int tx = x1 + tw > im->w ? im->w - tw : x1;
        if (tx < 0) tx = 0;
        lupe_img_fill_rect(im, tx, ty, tw, th, GT_COLOR);
        lupe_img_draw_text(im, tx + pad, ty + pad, lab, s, LUPE_RGB(0, 0, 0));
    }
    /* Predictions from last to first: det_detect lists the best first, so
     * the best end up on top. */
    for (int i = np - 1; p && i >= 0; i--) {
        if (!(p[i].score >= conf)) continue;
        int x1 = to_px(p[i].x1), y1 = to_px(p[i].y1), x2 = to_px(p[i].x2), y2 = to_px(p[i].y2);
        char nm[128];
        class_label(nm, sizeof nm, names, p[i].cls);
        snprintf(lab, sizeof lab, "%s %.2f", nm, p[i].score);
        lupe_img_draw_box(im, x1, y1, x2 - x1, y2 - y1, pred_color(p[i].cls), lab);
    }
}

lupe_status eval_preview(const char *path, const lupe_img *im, const det_box *gt, int ngt, const det_pred *p,
                         int np, float conf, const char *const *names)
{
    if (!path || !im || !im->data) return lupe_err(LUPE_EARG, "preview: missing path or image");
    lupe_img *c = lupe_img_to_channels(im, 3);
    if (!c) return lupe_err_ctx(LUPE_ENOMEM, "preview %s", path);
    eval_draw_boxes(c, gt, ngt, p, np, conf, names);
    lupe_status st = lupe_img_save(c, path);
    lupe_img_free(c);
    if (st) return lupe_err_ctx(st, "writing preview %s", path);
    return LUPE_OK;
}

lupe_status eval_montage(const lupe_img *const *ims, const char *const *captions, int n, int cols, int cell,
                         lupe_img **out)
{
    lupe_status st = LUPE_OK;
    lupe_img *m = NULL, *rgb = NULL, *small = NULL;
    if (!out) return lupe_err(LUPE_EARG, "montage: no output pointer");
    *out = NULL;
    if (!ims || n < 1) return lupe_err(LUPE_EARG, "montage: no images");
    if (cell < 16 || cell > 4096) return lupe_err(LUPE_EARG, "montage: tile size %d is outside 16..4096", cell);
    if (cols <= 0) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    int64_t W = (int64_t)cols * cell + (int64_t)(cols + 1) * MONTAGE_GAP;
    int64_t H = (int64_t)rows * cell + (int64_t)(rows + 1) * MONTAGE_GAP;
    if (W > MONTAGE_MAX_SIDE || H > MONTAGE_MAX_SIDE)
        return lupe_err(LUPE_ELIMIT, "montage: %d images of %d px make %lldx%lld, over %d", n, cell, (long long)W,
                        (long long)H, MONTAGE_MAX_SIDE);
    if (!(m = lupe_img_new((int)W, (int)H, 3))) return lupe_err_ctx(LUPE_ENOMEM, "montage");
    memset(m->data, 255, (size_t)W * H * 3);
    const int cs = cell >= 400 ? 2 : 1;
    for (int i = 0; i < n; i++) {
        const lupe_img *src = ims[i];
        int tx = MONTAGE_GAP + (i % cols) * (cell + MONTAGE_GAP), ty = MONTAGE_GAP + (i / cols) * (cell + MONTAGE_GAP);
        lupe_img_fill_rect(m, tx, ty, cell, cell, LUPE_RGB(114, 114, 114));
        if (!src || !src->data || src->w < 1 || src->h < 1) continue;
        double sc = fmin((double)cell / src->w, (double)cell / src->h);
        int nw = (int)lround(src->w * sc), nh = (int)lround(src->h * sc);
        nw = nw < 1 ? 1 : nw > cell ? cell : nw;
        nh = nh < 1 ? 1 : nh > cell ? cell : nh;
        if (!(rgb = lupe_img_to_channels(src, 3))) {
            st = lupe_err_ctx(LUPE_ENOMEM, "montage: image %d", i);
            goto out;
        }
        if ((st = lupe_img_resize(rgb, nw, nh, sc < 1 ? LUPE_RESIZE_AREA : LUPE_RESIZE_BILINEAR, &small))) {
            lupe_err_ctx(st, "montage: image %d", i);
            goto out;
        }
        int ox = tx + (cell - nw) / 2, oy = ty + (cell - nh) / 2;
        for (int y = 0; y < nh; y++)
            memcpy(m->data + ((size_t)(oy + y) * (size_t)W + (size_t)ox) * 3, small->data + (size_t)y * nw * 3,
                   (size_t)nw * 3);
        lupe_img_free(rgb);
        lupe_img_free(small);
        rgb = small = NULL;
        if (captions && captions[i] && *captions[i]) {
            char cap[256];
            snprintf(cap, sizeof cap, "%s", captions[i]);
            eval__text_fit(cap, cs, cell - 8);
            int w = lupe_img_text_width(cap, cs);
            lupe_img_fill_rect(m, tx, ty, w + 8, 7 * cs + 8, LUPE_RGB(0, 0, 0));
            lupe_img_draw_text(m, tx + 4, ty + 4, cap, cs, LUPE_RGB(255, 255, 255));
        }
    }
    *out = m;
    m = NULL;
out:
    lupe_img_free(m);
    lupe_img_free(rgb);
    lupe_img_free(small);
    return st;
}
