/*
 * Images in, boxes out: the validation loader's letterbox (so a model sees
 * at prediction what it saw in validation), a run, decoding and NMS, and
 * the boxes mapped back to the original image's pixels.
 */
#include <math.h>
#include <string.h>

#include "infer/infer_internal.h"

lupe_status inf_letterbox_image(const lupe_img *im, int imgsz, float *dst, inf_letterbox *lb)
{
    if (!im || !im->data || im->w < 1 || im->h < 1 || (im->c != 1 && im->c != 3))
        return lupe_err(LUPE_EARG, "letterbox: not a gray or RGB image");
    if (imgsz < 1) return lupe_err(LUPE_EARG, "letterbox: size %d", imgsz);
    const int w = im->w, h = im->h;
    const double r = (double)imgsz / (w > h ? w : h);
    int nw = (int)lround(w * r), nh = (int)lround(h * r);
    nw = nw < 1 ? 1 : nw > imgsz ? imgsz : nw;
    nh = nh < 1 ? 1 : nh > imgsz ? imgsz : nh;
    lupe_img *rs = NULL;
    const lupe_img *src = im;
    if (nw != w || nh != h) {
        lupe_status st = lupe_img_resize(im, nw, nh, r < 1 ? LUPE_RESIZE_AREA : LUPE_RESIZE_BILINEAR, &rs);
        if (st) return st;
        src = rs;
    }
    const int px = (imgsz - nw) / 2, py = (imgsz - nh) / 2;
    const float k = 1.0f / 255.0f, pad = LUPE_LETTERBOX_PAD * k;
    const size_t total = (size_t)imgsz * imgsz * 3;
    for (size_t i = 0; i < total; i++) dst[i] = pad;
    for (int y = 0; y < nh; y++) {
        const uint8_t *s = src->data + (size_t)y * nw * src->c;
        float *d = dst + ((size_t)(y + py) * imgsz + px) * 3;
        if (src->c == 3) {
            for (int x = 0; x < 3 * nw; x++) d[x] = s[x] * k;
        } else {
            for (int x = 0; x < nw; x++) d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = s[x] * k;
        }
    }
    lupe_img_free(rs);
    if (lb) *lb = (inf_letterbox){.w = w, .h = h, .new_w = nw, .new_h = nh, .pad_x = px, .pad_y = py, .scale = (float)r};
    return LUPE_OK;
}

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void inf_unletterbox(det_pred *p, int n, const inf_letterbox *lb)
{
    const float inv = 1.0f / lb->scale, W = (float)lb->w, H = (float)lb->h;
    for (int i = 0; i < n; i++) {
        p[i].x1 = clampf((p[i].x1 - lb->pad_x) * inv, 0, W);
        p[i].x2 = clampf((p[i].x2 - lb->pad_x) * inv, 0, W);
        p[i].y1 = clampf((p[i].y1 - lb->pad_y) * inv, 0, H);
        p[i].y2 = clampf((p[i].y2 - lb->pad_y) * inv, 0, H);
    }
}

lupe_status inf_predict(inf_model *m, const lupe_img *im, float conf, float iou, int max_det, det_pred *out, int *n)
{
    *n = 0;
    inf_letterbox lb;
    lupe_status st = inf_letterbox_image(im, m->a.imgsz, inf_model_input(m), &lb);
    if (st || (st = inf_model_run(m))) return st;
    const float *outs[DET_LEVELS];
    inf_model_outputs(m, outs);
    int k = det_detect(&m->a, outs, 0, conf, iou, max_det, out);
    if (k < 0) return lupe_err_ctx(LUPE_EINTERNAL, "decoding the detections");
    inf_unletterbox(out, k, &lb);
    *n = k;
    return LUPE_OK;
}
