/*
 * One training or validation image from the cache, as Ultralytics' YOLOv8
 * recipe makes it: 4-image mosaic or letterbox, a random scale-and-translate
 * warp (bilinear, fixed point), box filtering, HSV jitter through lookup
 * tables and flips. All randomness comes from a stream seeded by the image's
 * position in the epoch, so the bytes do not depend on which thread made it.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "train/loader_internal.h"

/* ---- random streams ------------------------------------------------------ */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define GOLDEN 0x9E3779B97F4A7C15ull

void trn__rng_init(trn__rng *r, uint64_t seed, uint64_t epoch, uint64_t pos)
{
    /* Each input goes through the mixer before the next is folded in, so
     * neighbouring (epoch, pos) pairs give unrelated streams. */
    uint64_t h = mix64(seed + GOLDEN);
    h = mix64(h ^ (epoch + 2 * GOLDEN));
    h = mix64(h ^ (pos + 3 * GOLDEN));
    r->state = h;
}

uint64_t trn__rng_next(trn__rng *r)
{
    r->state += GOLDEN;
    return mix64(r->state);
}

double trn__rng_uniform(trn__rng *r, double a, double b)
{
    double u = (double)(trn__rng_next(r) >> 11) * 0x1.0p-53;
    return a + (b - a) * u;
}

int trn__rng_below(trn__rng *r, int n)
{
    /* Multiply-shift: the high half of a 32x32 product is uniform enough for
     * dataset sizes, and it has no modulo bias worth caring about here. */
    return (int)(((trn__rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

void trn__shuffle(int *order, int n, uint64_t seed, int epoch)
{
    trn__rng r;
    /* Position UINT64_MAX is never an image's position, so the order's
     * stream is distinct from every image's stream. */
    trn__rng_init(&r, seed, (uint64_t)epoch, UINT64_MAX);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = trn__rng_below(&r, i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* ---- scratch --------------------------------------------------------------- */

lupe_status trn__scratch_init(trn__scratch *s, int imgsz, int box_cap)
{
    memset(s, 0, sizeof *s);
    size_t side = 2 * (size_t)imgsz + 2;
    s->canvas = lupe_malloc(side * side * 3);
    s->col0 = lupe_malloc((size_t)imgsz * sizeof(int));
    s->col1 = lupe_malloc((size_t)imgsz * sizeof(int));
    s->row0 = lupe_malloc((size_t)imgsz * sizeof(int));
    s->row1 = lupe_malloc((size_t)imgsz * sizeof(int));
    s->colw = lupe_malloc((size_t)imgsz);
    s->roww = lupe_malloc((size_t)imgsz);
    s->tmp = lupe_malloc((size_t)box_cap * sizeof(det_box));
    s->box_cap = box_cap;
    if (!s->canvas || !s->col0 || !s->col1 || !s->row0 || !s->row1 || !s->colw || !s->roww || !s->tmp) {
        trn__scratch_cleanup(s);
        return lupe_err(LUPE_ENOMEM, "loader: no memory for the %dx%d augmentation canvas", imgsz, imgsz);
    }
    return LUPE_OK;
}

void trn__scratch_cleanup(trn__scratch *s)
{
    lupe_free(s->canvas);
    lupe_free(s->col0);
    lupe_free(s->col1);
    lupe_free(s->row0);
    lupe_free(s->row1);
    lupe_free(s->colw);
    lupe_free(s->roww);
    lupe_free(s->tmp);
    memset(s, 0, sizeof *s);
}

/* ---- placing cached images on the canvas --------------------------------- */

/* The canvas is C x C pixels surrounded by a 1-pixel frame of pad, so the
 * warp can clamp its taps to the frame instead of testing every sample. */
static uint8_t *canvas_at(const trn__scratch *s, int C, int x, int y)
{
    return s->canvas + (((size_t)y + 1) * ((size_t)C + 2) + (size_t)x + 1) * 3;
}

/* Copies the rectangle [xb, xb+w) x [yb, yb+h) of the item's image to canvas
 * position (xa, ya), and appends its boxes shifted by (xa - xb, ya - yb) and
 * clipped to the canvas; boxes left with no area are dropped. */
static int place(const trn__item *it, trn__scratch *s, int C, int xa, int ya, int xb, int yb, int w, int h,
                 int nb)
{
    const lupe_img *im = it->im;
    for (int y = 0; y < h; y++)
        memcpy(canvas_at(s, C, xa, ya + y), im->data + (((size_t)yb + y) * im->w + xb) * 3, (size_t)w * 3);
    float dx = (float)(xa - xb), dy = (float)(ya - yb);
    for (int i = 0; i < it->nbox && nb < s->box_cap; i++) {
        det_box b = it->boxes[i];
        b.x1 = fminf(fmaxf(b.x1 + dx, 0.0f), (float)C);
        b.x2 = fminf(fmaxf(b.x2 + dx, 0.0f), (float)C);
        b.y1 = fminf(fmaxf(b.y1 + dy, 0.0f), (float)C);
        b.y2 = fminf(fmaxf(b.y2 + dy, 0.0f), (float)C);
        if (b.x2 > b.x1 && b.y2 > b.y1) s->tmp[nb++] = b;
    }
    return nb;
}

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* Ultralytics' 4-image mosaic: a 2s x 2s canvas of pad, a centre (xc, yc),
 * image k in quadrant k (top-left, top-right, bottom-left, bottom-right),
 * each touching the centre with a corner and cut at the canvas edge. */
static int mosaic4(const trn__ctx *c, trn__scratch *s, const int idx[4], int xc, int yc)
{
    int C = 2 * c->imgsz, nb = 0;
    memset(s->canvas, TRN_PAD, ((size_t)C + 2) * ((size_t)C + 2) * 3);
    for (int k = 0; k < 4; k++) {
        const trn__item *it = &c->items[idx[k]];
        int w = it->im->w, h = it->im->h;
        int x1a, y1a, x2a, y2a, x1b, y1b;
        if (k == 0) {
            x1a = imax(xc - w, 0), y1a = imax(yc - h, 0), x2a = xc, y2a = yc;
            x1b = w - (x2a - x1a), y1b = h - (y2a - y1a);
        } else if (k == 1) {
            x1a = xc, y1a = imax(yc - h, 0), x2a = imin(xc + w, C), y2a = yc;
            x1b = 0, y1b = h - (y2a - y1a);
        } else if (k == 2) {
            x1a = imax(xc - w, 0), y1a = yc, x2a = xc, y2a = imin(yc + h, C);
            x1b = w - (x2a - x1a), y1b = 0;
        } else {
            x1a = xc, y1a = yc, x2a = imin(xc + w, C), y2a = imin(yc + h, C);
            x1b = 0, y1b = 0;
        }
        if (x2a > x1a && y2a > y1a) nb = place(it, s, C, x1a, y1a, x1b, y1b, x2a - x1a, y2a - y1a, nb);
    }
    return nb;
}

/* The cached image centred on an s x s canvas (its long side is s already). */
static int letterbox(const trn__ctx *c, trn__scratch *s, const trn__item *it, int *padx, int *pady)
{
    int C = c->imgsz, w = it->im->w, h = it->im->h;
    *padx = (C - w) / 2;
    *pady = (C - h) / 2;
    memset(s->canvas, TRN_PAD, ((size_t)C + 2) * ((size_t)C + 2) * 3);
    return place(it, s, C, *padx, *pady, 0, 0, w, h, 0);
}

/* ---- warp ---------------------------------------------------------------- */

/* Tap table of one axis. Output index i shows warped index j (j = s-1-i when
 * flipped), which reads canvas position (j - t) / sc + C/2, the inverse of
 * Ultralytics' p' = sc * (p - C/2) + t with OpenCV's warpAffine convention of
 * integer pixel positions. Offsets include the canvas frame; taps beyond it
 * clamp onto it, so far-away samples read pad. */
static void axis_taps(int *t0, int *t1, uint8_t *w1, int s, int C, double sc, double t, int flip, size_t stride)
{
    for (int i = 0; i < s; i++) {
        int j = flip ? s - 1 - i : i;
        double p = (j - t) / sc + C / 2.0 + 1.0;
        double fl = floor(p);
        int a, q;
        if (fl < -1) {
            a = -1, q = 0;
        } else if (fl > C + 2) {
            a = C + 2, q = 0;
        } else {
            a = (int)fl;
            q = (int)lround((p - fl) * 128);
            if (q == 128) a++, q = 0;
        }
        int a0 = a < 0 ? 0 : a > C + 1 ? C + 1 : a;
        int a1 = a + 1 < 0 ? 0 : a + 1 > C + 1 ? C + 1 : a + 1;
        t0[i] = (int)((size_t)a0 * stride);
        t1[i] = (int)((size_t)a1 * stride);
        w1[i] = (uint8_t)q;
    }
}

/* Bilinear in 7-bit fixed point: each tap weight is a multiple of 1/128, the
 * two passes' products fit in 32 bits and the result is rounded once. */
static void warp(const trn__scratch *s, int S, uint8_t *out)
{
    for (int y = 0; y < S; y++) {
        const uint8_t *r0 = s->canvas + s->row0[y], *r1 = s->canvas + s->row1[y];
        int wy = s->roww[y], wy0 = 128 - wy;
        uint8_t *o = out + (size_t)y * S * 3;
        for (int x = 0; x < S; x++) {
            int c0 = s->col0[x], c1 = s->col1[x], wx = s->colw[x], wx0 = 128 - wx;
            for (int k = 0; k < 3; k++) {
                int top = r0[c0 + k] * wx0 + r0[c1 + k] * wx;
                int bot = r1[c0 + k] * wx0 + r1[c1 + k] * wx;
                o[3 * x + k] = (uint8_t)((top * wy0 + bot * wy + (1 << 13)) >> 14);
            }
        }
    }
}

/* The identity warp (scale 1, no shift, canvas the size of the output):
 * a copy, with the flips. */
static void copy_flipped(const trn__scratch *s, int S, int flipx, int flipy, uint8_t *out)
{
    for (int y = 0; y < S; y++) {
        const uint8_t *src = canvas_at(s, S, 0, flipy ? S - 1 - y : y);
        uint8_t *o = out + (size_t)y * S * 3;
        if (!flipx) {
            memcpy(o, src, (size_t)S * 3);
            continue;
        }
        for (int x = 0; x < S; x++) memcpy(o + 3 * x, src + 3 * (size_t)(S - 1 - x), 3);
    }
}

/* ---- HSV ----------------------------------------------------------------- */

/* OpenCV's fixed-point divisions for 8-bit RGB -> HSV (12 fractional bits). */
#define HSV_SHIFT 12
static int sdiv_table[256], hdiv_table[256];
static pthread_once_t hsv_once = PTHREAD_ONCE_INIT;

static void hsv_tables(void)
{
    sdiv_table[0] = hdiv_table[0] = 0;
    for (int i = 1; i < 256; i++) {
        sdiv_table[i] = (int)lround((255 << HSV_SHIFT) / (double)i);
        hdiv_table[i] = (int)lround((180 << HSV_SHIFT) / (6.0 * i));
    }
}

static uint8_t clip255(double v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

void trn__hsv(uint8_t *px, size_t npix, float gain_h, float gain_s, float gain_v)
{
    pthread_once(&hsv_once, hsv_tables);
    /* Ultralytics: hue (x * gain) % 180, saturation and value x * gain
     * clipped, each truncated to 8 bits. Hue 180 can come out of the forward
     * conversion's rounding, so the table covers it. */
    uint8_t lh[256], ls[256], lv[256];
    for (int x = 0; x < 256; x++) {
        lh[x] = (uint8_t)fmod(x * (double)gain_h, 180.0);
        ls[x] = clip255(x * (double)gain_s);
        lv[x] = clip255(x * (double)gain_v);
    }
    for (size_t i = 0; i < npix; i++, px += 3) {
        int r = px[0], g = px[1], b = px[2];
        int v = r > g ? r : g, mn = r < g ? r : g;
        v = b > v ? b : v;
        mn = b < mn ? b : mn;
        int diff = v - mn;
        int sat = (diff * sdiv_table[v] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
        int hue = v == r ? g - b : v == g ? b - r + 2 * diff : r - g + 4 * diff;
        hue = (hue * hdiv_table[diff] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
        if (hue < 0) hue += 180;
        int H = lh[hue], S = ls[sat], V = lv[v];
        if (S == 0) {
            px[0] = px[1] = px[2] = (uint8_t)V;
            continue;
        }
        /* OpenCV's HSV -> RGB in float: sector of the hue circle, then the
         * four candidate levels of that sector. */
        float h = H * (6.0f / 180.0f), sf = S * (1.0f / 255.0f), vf = (float)V;
        int sector = (int)h;
        h -= (float)sector;
        if (sector >= 6) sector = 0, h = 0;
        float t0 = vf, t1 = vf * (1 - sf), t2 = vf * (1 - sf * h), t3 = vf * (1 - sf * (1 - h));
        float rf, gf, bf;
        switch (sector) {
        case 0: rf = t0, gf = t3, bf = t1; break;
        case 1: rf = t2, gf = t0, bf = t1; break;
        case 2: rf = t1, gf = t0, bf = t3; break;
        case 3: rf = t1, gf = t2, bf = t0; break;
        case 4: rf = t3, gf = t1, bf = t0; break;
        default: rf = t0, gf = t1, bf = t2; break;
        }
        px[0] = (uint8_t)(rf + 0.5f);
        px[1] = (uint8_t)(gf + 0.5f);
        px[2] = (uint8_t)(bf + 0.5f);
    }
}

void trn__to_float(float *dst, const uint8_t *src, size_t n)
{
    const float k = 1.0f / 255.0f;
    for (size_t i = 0; i < n; i++) dst[i] = src[i] * k;
}

/* ---- one image ----------------------------------------------------------- */

/* Ultralytics' box_candidates: keep a box wider and taller than 2 pixels,
 * with more than 10% of its area before the warp (scaled) left, and an
 * aspect ratio under 100. */
static int candidate(const det_box *before, const det_box *after, double sc)
{
    double w1 = (before->x2 - before->x1) * sc, h1 = (before->y2 - before->y1) * sc;
    double w2 = after->x2 - after->x1, h2 = after->y2 - after->y1;
    double ar = fmax(w2 / (h2 + 1e-16), h2 / (w2 + 1e-16));
    return w2 > 2 && h2 > 2 && w2 * h2 / (w1 * h1 + 1e-16) > 0.1 && ar < 100;
}

static int validation_image(const trn__ctx *c, int index, uint8_t *out, det_box *boxes, trn_meta *meta)
{
    const trn__item *it = &c->items[index];
    int S = c->imgsz, w = it->im->w, h = it->im->h;
    int padx = (S - w) / 2, pady = (S - h) / 2;
    memset(out, TRN_PAD, (size_t)S * S * 3);
    for (int y = 0; y < h; y++)
        memcpy(out + (((size_t)y + pady) * S + padx) * 3, it->im->data + (size_t)y * w * 3, (size_t)w * 3);
    for (int i = 0; i < it->nbox; i++) {
        boxes[i] = it->boxes[i];
        boxes[i].img = 0;
        boxes[i].x1 += (float)padx, boxes[i].x2 += (float)padx;
        boxes[i].y1 += (float)pady, boxes[i].y2 += (float)pady;
    }
    meta->index = index;
    meta->w = it->ow, meta->h = it->oh;
    meta->scale = it->scale;
    meta->padx = (float)padx, meta->pady = (float)pady;
    return it->nbox;
}

int trn__make_image(const trn__ctx *c, trn__scratch *s, int pos, int index, uint8_t *out, det_box *boxes,
                    trn_meta *meta)
{
    if (!c->augment) return validation_image(c, index, out, boxes, meta);

    const trn_aug *a = &c->aug;
    int S = c->imgsz, C, nb;
    trn__rng r;
    trn__rng_init(&r, c->seed, (uint64_t)c->epoch, (uint64_t)pos);

    /* Every draw happens in a fixed order whatever the settings. */
    int use_mosaic = trn__rng_uniform(&r, 0, 1) < a->mosaic && c->mosaic_on;
    if (use_mosaic) {
        int idx[4] = {index, 0, 0, 0};
        int xc = (int)trn__rng_uniform(&r, S / 2.0, 1.5 * S), yc = (int)trn__rng_uniform(&r, S / 2.0, 1.5 * S);
        for (int k = 1; k < 4; k++) idx[k] = trn__rng_below(&r, c->n);
        C = 2 * S;
        nb = mosaic4(c, s, idx, xc, yc);
    } else {
        int padx, pady;
        C = S;
        nb = letterbox(c, s, &c->items[index], &padx, &pady);
    }
    double sc = trn__rng_uniform(&r, 1 - a->scale, 1 + a->scale);
    double tx = trn__rng_uniform(&r, 0.5 - a->translate, 0.5 + a->translate) * S;
    double ty = trn__rng_uniform(&r, 0.5 - a->translate, 0.5 + a->translate) * S;
    double gh = trn__rng_uniform(&r, -1, 1) * a->hsv_h + 1;
    double gs = trn__rng_uniform(&r, -1, 1) * a->hsv_s + 1;
    double gv = trn__rng_uniform(&r, -1, 1) * a->hsv_v + 1;
    int flipy = trn__rng_uniform(&r, 0, 1) < a->flipud;
    int flipx = trn__rng_uniform(&r, 0, 1) < a->fliplr;

    if (C == S && sc == 1.0 && tx == S / 2.0 && ty == S / 2.0) {
        copy_flipped(s, S, flipx, flipy, out);
    } else {
        axis_taps(s->col0, s->col1, s->colw, S, C, sc, tx, flipx, 3);
        axis_taps(s->row0, s->row1, s->roww, S, C, sc, ty, flipy, ((size_t)C + 2) * 3);
        warp(s, S, out);
    }
    if (a->hsv_h != 0 || a->hsv_s != 0 || a->hsv_v != 0) trn__hsv(out, (size_t)S * S, (float)gh, (float)gs, (float)gv);

    /* Boxes: the warp's forward map, clipped to the output, filtered, then
     * flipped. */
    int kept = 0;
    double half = C / 2.0;
    for (int i = 0; i < nb; i++) {
        const det_box *b = &s->tmp[i];
        det_box o = *b;
        o.img = 0;
        o.x1 = (float)fmin(fmax(sc * (b->x1 - half) + tx, 0), S);
        o.x2 = (float)fmin(fmax(sc * (b->x2 - half) + tx, 0), S);
        o.y1 = (float)fmin(fmax(sc * (b->y1 - half) + ty, 0), S);
        o.y2 = (float)fmin(fmax(sc * (b->y2 - half) + ty, 0), S);
        if (!candidate(b, &o, sc)) continue;
        if (flipy) {
            float y1 = (float)S - o.y2;
            o.y2 = (float)S - o.y1, o.y1 = y1;
        }
        if (flipx) {
            float x1 = (float)S - o.x2;
            o.x2 = (float)S - o.x1, o.x1 = x1;
        }
        boxes[kept++] = o;
    }
    const trn__item *it = &c->items[index];
    meta->index = index;
    meta->w = it->ow, meta->h = it->oh;
    /* No single scale and pad map an augmented image back to its file. */
    meta->scale = 0, meta->padx = 0, meta->pady = 0;
    return kept;
}
