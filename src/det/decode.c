/*
 * Decoding of the detector head into boxes: per anchor point, the expected
 * distance of each side under the softmax of its 16 distribution logits,
 * times the stride, and the sigmoid of each class logit as its score; every
 * (anchor, class) over the confidence is a candidate, then class-aware NMS.
 * det_raw_output writes the same decoding for every anchor in the layout
 * Ultralytics exports (the ONNX exporter's reference).
 */
#include <math.h>
#include <string.h>

#include "det/nms.h"

/* Candidates kept for NMS, best by score, as Ultralytics' max_nms: an
 * untrained head at conf 0.001 can put every anchor of every class over the
 * threshold, and NMS time grows with the candidates. */
#define DET_MAX_NMS 30000

/* Logit at or above which sigmoid(x) >= conf may hold, with a margin so the
 * float comparison of the sigmoid itself decides the boundary. Saves the
 * exp() of every class logit of every anchor: most are far below. The
 * margin covers the float error of the sigmoid seen as a logit, which grows
 * as 1 / (conf (1 - conf)) towards a confidence of 1. */
static float logit_floor(float conf)
{
    if (!(conf > 0)) return -INFINITY;
    if (conf >= 1) return 15.0f; /* sigmoidf is below 1 up to about 16.6 */
    return logf(conf / (1.0f - conf)) - (1e-2f + 1e-6f / (conf * (1.0f - conf)));
}

static float sigmoidf_(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* Expected bin of one side: sum_k k * softmax(l)_k, in grid units. */
static float dfl_side(const float *l)
{
    float mx = l[0];
    for (int k = 1; k < DET_REG_MAX; k++)
        if (l[k] > mx) mx = l[k];
    float s = 0, e = 0;
    for (int k = 0; k < DET_REG_MAX; k++) {
        float w = expf(l[k] - mx);
        s += w;
        e += (float)k * w;
    }
    return e / s;
}

/* Distances of the four sides of an anchor's box (left, top, right,
 * bottom: Ultralytics' dist2bbox order), in grid units, from its
 * 4 * DET_REG_MAX distribution logits. */
static void anchor_sides(const float *v, float d[4])
{
    for (int s = 0; s < 4; s++) d[s] = dfl_side(v + s * DET_REG_MAX);
}

/* The checks det_detect and det_raw_output share; who names the caller. */
static lupe_status check_head(const det_arch *a, const float *const outs[DET_LEVELS], int b, const char *who)
{
    if (!a || !outs) return lupe_err(LUPE_EARG, "%s: missing architecture or head outputs", who);
    for (int l = 0; l < DET_LEVELS; l++)
        if (!outs[l]) return lupe_err(LUPE_EARG, "%s: head output of level %d is missing", who, l);
    if (a->nc < 1 || a->imgsz < 32 || a->imgsz % 32)
        return lupe_err(LUPE_EARG, "%s: architecture with %d classes at size %d is not initialised", who, a->nc,
                        a->imgsz);
    if (b < 0 || b >= a->batch) return lupe_err(LUPE_EARG, "%s: image %d is outside the batch of %d", who, b, a->batch);
    return LUPE_OK;
}

/* The candidates go into buf (capacity cap) while it has room; once it is
 * full and more are coming it becomes a heap whose root is the worst kept
 * candidate, which a better newcomer replaces. */
typedef struct topk {
    det_pred *buf;
    int n, cap;
    int heap; /* buf is a heap (set once it filled with more to come) */
} topk;

static int worse(const det_pred *a, const det_pred *b)
{
    return det__pred_cmp(a, b) > 0;
}

static void sift_down(det_pred *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m])) m = l;
        if (r < n && worse(&h[r], &h[m])) m = r;
        if (m == i) return;
        det_pred t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void topk_push(topk *t, const det_pred *p)
{
    if (t->n < t->cap) {
        t->buf[t->n++] = *p;
        return;
    }
    if (!t->heap) {
        for (int i = t->n / 2 - 1; i >= 0; i--) sift_down(t->buf, t->n, i);
        t->heap = 1;
    }
    if (det__pred_cmp(p, &t->buf[0]) >= 0) return; /* not better than the worst kept */
    t->buf[0] = *p;
    sift_down(t->buf, t->n, 0);
}

/* Walks every anchor of image b; counts the candidates when t is NULL,
 * otherwise decodes them into t. The box logits of an anchor are read only
 * when one of its classes is over conf. */
static long scan(const det_arch *a, const float *const outs[DET_LEVELS], int b, float conf, topk *t)
{
    const int nc = a->nc, ch = 4 * DET_REG_MAX + nc;
    const float floor_ = logit_floor(conf);
    long count = 0;
    for (int l = 0; l < DET_LEVELS; l++) {
        const int g = a->imgsz >> (3 + l);
        const float stride = (float)(8 << l);
        const float *base = outs[l] + (size_t)b * g * g * ch;
        for (int y = 0; y < g; y++) {
            for (int x = 0; x < g; x++) {
                const float *v = base + ((size_t)y * g + x) * ch;
                const float *cls = v + 4 * DET_REG_MAX;
                int decoded = 0;
                det_pred p;
                for (int c = 0; c < nc; c++) {
                    if (!(cls[c] >= floor_)) continue;
                    float s = sigmoidf_(cls[c]);
                    if (!(s >= conf)) continue;
                    count++;
                    if (!t) continue;
                    if (!decoded) {
                        float ax = (float)x + 0.5f, ay = (float)y + 0.5f, d[4];
                        anchor_sides(v, d);
                        p.x1 = (ax - d[0]) * stride;
                        p.y1 = (ay - d[1]) * stride;
                        p.x2 = (ax + d[2]) * stride;
                        p.y2 = (ay + d[3]) * stride;
                        decoded = 1;
                    }
                    p.score = s;
                    p.cls = c;
                    topk_push(t, &p);
                }
            }
        }
    }
    return count;
}

static float clampf_(float v, float hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

int det_detect(const det_arch *a, const float *const outs[DET_LEVELS], int b, float conf, float iou, int max_det,
               det_pred *out)
{
    if (!out) {
        lupe_err(LUPE_EARG, "det_detect: missing output buffer");
        return -1;
    }
    if (check_head(a, outs, b, "det_detect")) return -1;
    if (max_det < 1) {
        lupe_err(LUPE_EARG, "det_detect: max_det %d must be at least 1", max_det);
        return -1;
    }

    /* Counting first sizes the buffer exactly (one bounded allocation per
     * call, none when nothing is over conf). */
    long count = scan(a, outs, b, conf, NULL);
    if (count == 0) return 0;
    topk t = {0};
    t.cap = count < DET_MAX_NMS ? (int)count : DET_MAX_NMS;
    t.buf = lupe_malloc((size_t)t.cap * sizeof *t.buf);
    if (!t.buf) {
        lupe_err_ctx(LUPE_ENOMEM, "det_detect: %d candidates", t.cap);
        return -1;
    }
    scan(a, outs, b, conf, &t);
    int n = det_nms(t.buf, t.n, iou, max_det);
    /* Clipped after NMS, as Ultralytics clips when it maps boxes back to
     * the image; boxes may reach past the frame before that. */
    const float side = (float)a->imgsz;
    for (int i = 0; i < n; i++) {
        out[i] = t.buf[i];
        out[i].x1 = clampf_(out[i].x1, side);
        out[i].y1 = clampf_(out[i].y1, side);
        out[i].x2 = clampf_(out[i].x2, side);
        out[i].y2 = clampf_(out[i].y2, side);
    }
    lupe_free(t.buf);
    return n;
}

int det_anchors(const det_arch *a)
{
    int n = 0;
    for (int l = 0; l < DET_LEVELS; l++) n += (a->imgsz >> (3 + l)) * (a->imgsz >> (3 + l));
    return n;
}

lupe_status det_raw_output(const det_arch *a, const float *const outs[DET_LEVELS], int b, float *out)
{
    if (!out) return lupe_err(LUPE_EARG, "det_raw_output: missing output buffer");
    lupe_status st = check_head(a, outs, b, "det_raw_output");
    if (st) return st;
    const int nc = a->nc, ch = 4 * DET_REG_MAX + nc;
    const size_t n = (size_t)det_anchors(a);
    size_t j = 0; /* anchor index */
    for (int l = 0; l < DET_LEVELS; l++) {
        const int g = a->imgsz >> (3 + l);
        const float stride = (float)(8 << l);
        const float *base = outs[l] + (size_t)b * g * g * ch;
        for (int y = 0; y < g; y++) {
            for (int x = 0; x < g; x++, j++) {
                const float *v = base + ((size_t)y * g + x) * ch;
                float ax = (float)x + 0.5f, ay = (float)y + 0.5f, d[4];
                anchor_sides(v, d);
                /* dist2bbox(xywh=True) then the stride, as the exported
                 * graph computes it, so the two agree to float rounding. */
                float x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
                out[0 * n + j] = (x1 + x2) / 2 * stride;
                out[1 * n + j] = (y1 + y2) / 2 * stride;
                out[2 * n + j] = (x2 - x1) * stride;
                out[3 * n + j] = (y2 - y1) * stride;
                for (int c = 0; c < nc; c++) out[(size_t)(4 + c) * n + j] = sigmoidf_(v[4 * DET_REG_MAX + c]);
            }
        }
    }
    return LUPE_OK;
}
