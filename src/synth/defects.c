/*
 * Defects on the synthetic tags: scratches (thin curved strokes, bright or
 * dark, tapered, beaded, sometimes broken into dashes or doubled), dents
 * (shaded bumps) and stains (irregular blotches), drawn in image pixels
 * after the scene's geometry, plus faint unlabeled marks in the base image.
 */
#include <math.h>
#include <string.h>

#include "synth/synth_internal.h"

#define MAX_PTS 512

/* ---- canvas operations ---------------------------------------------------- */

static synth_rect rect_clip(const synth_canvas *cv, float x0, float y0, float x1, float y1)
{
    /* Clamped in float first: a point far off the image must not overflow int. */
    x0 = synth__clampf(x0, 0.f, (float)cv->w), x1 = synth__clampf(x1, 0.f, (float)cv->w);
    y0 = synth__clampf(y0, 0.f, (float)cv->h), y1 = synth__clampf(y1, 0.f, (float)cv->h);
    synth_rect r = {(int)floorf(x0), (int)floorf(y0), (int)ceilf(x1), (int)ceilf(y1)};
    return r;
}

static void rect_union(synth_rect *a, synth_rect b)
{
    if (b.x0 >= b.x1 || b.y0 >= b.y1) return;
    if (a->x0 >= a->x1 || a->y0 >= a->y1) {
        *a = b;
        return;
    }
    if (b.x0 < a->x0) a->x0 = b.x0;
    if (b.y0 < a->y0) a->y0 = b.y0;
    if (b.x1 > a->x1) a->x1 = b.x1;
    if (b.y1 > a->y1) a->y1 = b.y1;
}

synth_rect synth__stroke_draw(synth_canvas *cv, const synth_stroke *s)
{
    synth_rect all = {0, 0, 0, 0};
    for (int i = 0; i + 1 < s->n; i++) {
        float ax = s->xy[2 * i], ay = s->xy[2 * i + 1], bx = s->xy[2 * i + 2], by = s->xy[2 * i + 3];
        /* Strokes thinner than a pixel are drawn one pixel wide at a lower
         * amplitude (the same ink per length), or they would flicker
         * between pixel centres. */
        float ra = s->radius[i], rb = s->radius[i + 1];
        float ea = ra < 1.f ? 1.f : ra, eb = rb < 1.f ? 1.f : rb;
        float aa = s->amp[i] * ra / ea, ab = s->amp[i + 1] * rb / eb;
        if (aa <= 0 && ab <= 0) continue;
        float rmax = ea > eb ? ea : eb;
        synth_rect r = rect_clip(cv, fminf(ax, bx) - rmax, fminf(ay, by) - rmax, fmaxf(ax, bx) + rmax,
                                 fmaxf(ay, by) + rmax);
        if (r.x0 >= r.x1 || r.y0 >= r.y1) continue;
        float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
        float inv = len2 > 1e-12f ? 1.f / len2 : 0.f;
        for (int y = r.y0; y < r.y1; y++) {
            float py = (float)y + 0.5f;
            float *row = cv->tmp + (size_t)y * cv->w;
            for (int x = r.x0; x < r.x1; x++) {
                float px = (float)x + 0.5f;
                float t = synth__clampf(((px - ax) * dx + (py - ay) * dy) * inv, 0.f, 1.f);
                float qx = ax + t * dx - px, qy = ay + t * dy - py;
                float d2 = qx * qx + qy * qy, rr = ea + t * (eb - ea);
                if (d2 >= rr * rr) continue;
                float u = 1.f - d2 / (rr * rr);
                float v = (aa + t * (ab - aa)) * u * u;
                if (v > row[x]) row[x] = v;
            }
        }
        rect_union(&all, r);
    }
    return all;
}

void synth__tmp_clear(synth_canvas *cv, synth_rect r)
{
    for (int y = r.y0; y < r.y1; y++)
        memset(cv->tmp + (size_t)y * cv->w + r.x0, 0, (size_t)(r.x1 - r.x0) * sizeof(float));
}

int synth__merge_ok(const synth_canvas *cv, int k, synth_rect r, float a, float b)
{
    int steal[SYNTH_MAX_DEFECTS] = {0};
    int fp = 0, mine = 0, strong = 0;
    for (int y = r.y0; y < r.y1; y++) {
        for (int x = r.x0; x < r.x1; x++) {
            size_t i = (size_t)y * cv->w + x;
            float s = cv->tmp[i];
            if (s == 0) continue;
            float d = fabsf(s * (a + b * cv->g[i]) * cv->mask[i]);
            if (d < 0.5f) continue; /* cannot change a pixel on its own */
            fp++;
            if (d > cv->mag[i]) {
                mine++;
                strong += d >= 12.f;
                if (cv->own[i] != SYNTH_NO_OWNER) steal[cv->own[i]]++;
            }
        }
    }
    /* Plainly visible: a dozen pixels changed by 12 levels or more. */
    if (strong < 12 || 2 * mine < fp) return 0;
    for (int j = 0; j < k; j++)
        if (2 * (cv->owned[j] - steal[j]) < cv->footprint[j]) return 0;
    return 1;
}

void synth__merge(synth_canvas *cv, int k, synth_rect r, float a, float b)
{
    for (int y = r.y0; y < r.y1; y++) {
        for (int x = r.x0; x < r.x1; x++) {
            size_t i = (size_t)y * cv->w + x;
            float s = cv->tmp[i];
            if (s == 0) continue;
            cv->tmp[i] = 0;
            float d = s * (a + b * cv->g[i]) * cv->mask[i];
            if (d == 0) continue;
            cv->acc[i] += d;
            float ad = fabsf(d);
            if (ad >= 0.5f) cv->footprint[k]++;
            if (ad > cv->mag[i]) {
                if (cv->own[i] != SYNTH_NO_OWNER && cv->mag[i] >= 0.5f) cv->owned[cv->own[i]]--;
                cv->mag[i] = ad;
                cv->own[i] = (uint8_t)k;
                if (ad >= 0.5f) cv->owned[k]++;
            }
        }
    }
}

void synth__apply_base(synth_canvas *cv, synth_rect r, float a, float b)
{
    for (int y = r.y0; y < r.y1; y++) {
        for (int x = r.x0; x < r.x1; x++) {
            size_t i = (size_t)y * cv->w + x;
            float s = cv->tmp[i];
            if (s == 0) continue;
            cv->tmp[i] = 0;
            cv->g[i] += s * (a + b * cv->g[i]) * cv->mask[i];
        }
    }
}

/* ---- curves ----------------------------------------------------------------- */

typedef struct curve {
    float p[4][2]; /* cubic Bezier control points, scene coordinates */
} curve;

static void curve_at(const curve *c, float t, float *x, float *y)
{
    float u = 1.f - t, b0 = u * u * u, b1 = 3.f * u * u * t, b2 = 3.f * u * t * t, b3 = t * t * t;
    *x = b0 * c->p[0][0] + b1 * c->p[1][0] + b2 * c->p[2][0] + b3 * c->p[3][0];
    *y = b0 * c->p[0][1] + b1 * c->p[1][1] + b2 * c->p[2][1] + b3 * c->p[3][1];
}

/* A gently bent curve of length about len from (x, y) at angle th; bend
 * is the sideways offset of the two inner control points, in lengths. */
static curve make_curve(float x, float y, float th, float len, float bend1, float bend2)
{
    float dx = (float)synth__cos(th), dy = (float)synth__sin(th), nx = -dy, ny = dx;
    curve c = {{{x, y},
                {x + dx * len / 3 + nx * bend1 * len, y + dy * len / 3 + ny * bend1 * len},
                {x + dx * len * 2 / 3 + nx * bend2 * len, y + dy * len * 2 / 3 + ny * bend2 * len},
                {x + dx * len, y + dy * len}}};
    return c;
}

static int inside(float x, float y, float x0, float y0, float x1, float y1)
{
    return x >= x0 && x <= x1 && y >= y0 && y <= y1;
}

/* Samples the curve into image points every ~1.5 pixels; returns the count. */
static int curve_points(const synth_scene *s, const curve *c, float len, float *xy, float *t_out)
{
    int n = (int)(len / 1.5f) + 2;
    if (n > MAX_PTS) n = MAX_PTS;
    for (int i = 0; i < n; i++) {
        float t = (float)i / (float)(n - 1), X, Y;
        curve_at(c, t, &X, &Y);
        synth__scene_map(s, X, Y, &xy[2 * i], &xy[2 * i + 1]);
        t_out[i] = t;
    }
    return n;
}

/* ---- scratches ------------------------------------------------------------- */

typedef struct region {
    float x0, y0, x1, y1; /* tag interior, scene coordinates */
    float hx, hy, hr;     /* hole */
    float sc;
} region;

static region tag_region(const synth_scene *s)
{
    region g;
    synth__scene_tag(s, &g.x0, &g.y0, &g.x1, &g.y1, &g.hx, &g.hy, &g.hr);
    g.sc = synth__scene_scale(s);
    return g;
}

static int clear_of_hole(const region *g, float x, float y)
{
    float dx = x - g->hx, dy = y - g->hy, m = g->hr + 6 * g->sc;
    return dx * dx + dy * dy > m * m;
}

/* A point of the tag; scratches gather towards the middle as in the
 * photos (their centres lie mostly in the central half). */
static void tag_point(const region *g, synth_rng *r, float *x, float *y)
{
    float u = (float)(synth__uniform(r) + synth__uniform(r)) * 0.5f;
    float v = (float)(synth__uniform(r) + synth__uniform(r)) * 0.5f;
    if (synth__chance(r, 0.35)) u = (float)synth__uniform(r), v = (float)synth__uniform(r);
    *x = g->x0 + u * (g->x1 - g->x0);
    *y = g->y0 + v * (g->y1 - g->y0);
}

/* Draws one scratch into tmp; *a, *b say how its strength becomes a change. */
static synth_rect draw_scratch(const synth_scene *s, synth_canvas *cv, synth_rng *r, float *a, float *b)
{
    region g = tag_region(s);
    float xy[2 * MAX_PTS], rad[MAX_PTS], amp[MAX_PTS], ts[MAX_PTS];
    /* Lengths for boxes like the photos' (sides 11 to 256 px at 450x300,
     * median 80): 30 to 280 px, steep ones shorter, before the taper and
     * before long ones are shortened to fit. The centre is placed. */
    float u = (float)synth__uniform(r);
    float len = g.sc * (30.f + 250.f * (float)synth__pow(u, 0.8));
    float th = (float)synth__range(r, 0, SYNTH_PI);
    len *= 1.f - 0.3f * (float)synth__sin(th); /* steep ones are shorter, as in the photos */
    /* Straight or gently curved, now and then an S. */
    float bs = synth__chance(r, 0.4) ? 0.015f : 0.05f;
    float bend1 = (float)synth__gauss(r) * bs, bend2 = synth__chance(r, 0.8) ? bend1 : (float)synth__gauss(r) * bs;
    curve c = {{{0}}};
    for (int tries = 0;; tries++) {
        float cx, cy;
        tag_point(&g, r, &cx, &cy);
        float dx = (float)synth__cos(th), dy = (float)synth__sin(th);
        c = make_curve(cx - dx * len / 2, cy - dy * len / 2, th, len, bend1, bend2);
        int ok = 1;
        for (int i = 0; i <= 8 && ok; i++) {
            float x, y;
            curve_at(&c, (float)i / 8, &x, &y);
            ok = inside(x, y, g.x0, g.y0, g.x1, g.y1) && clear_of_hole(&g, x, y);
        }
        if (ok) break;
        if (tries > 12 && len > 30 * g.sc) len *= 0.9f; /* a long one that will not fit: shorten it */
        if (tries > 40) break;
    }
    int n = curve_points(s, &c, len, xy, ts);

    /* The photos' scratches are 2 to 5 px wide, a string of glints. */
    float r0 = g.sc * (synth__chance(r, 0.2) ? (float)synth__range(r, 1.8, 2.8) : (float)synth__range(r, 0.9, 1.9));
    float taper = (float)synth__range(r, 0.04, 0.2);
    float bead = (float)synth__range(r, 0.15, 0.75), bead_period = (float)synth__range(r, 2.0, 6.0) * g.sc;
    int dashed = synth__chance(r, 0.3);
    float dash_thr = (float)synth__range(r, -0.45, 0.05), dash_period = (float)synth__range(r, 5, 16) * g.sc;
    float jitter = (float)synth__range(r, 0.0, 0.5) * g.sc, halo = (float)synth__range(r, 0.0, 0.25);
    uint32_t n1 = synth__seed32(r), n2 = synth__seed32(r), n3 = synth__seed32(r), n4 = synth__seed32(r);
    for (int i = 0; i < n; i++) {
        float t = ts[i], along = t * len;
        float e = synth__smooth(t / taper) * synth__smooth((1.f - t) / taper);
        /* A string of glints: the brightness swings along the groove, and
         * the peaks overshoot (the core saturates there). */
        float glint = 0.5f + 0.5f * synth__vnoise1(along / bead_period, n1);
        float bd = (1.f - bead) + bead * 1.5f * glint;
        float dash = dashed ? synth__smooth((synth__vnoise1(along / dash_period, n2) - dash_thr) / 0.12f) : 1.f;
        amp[i] = e * bd * dash;
        rad[i] = r0 * (1.f + 0.3f * synth__vnoise1(along / (6.f * g.sc), n3)) * (0.6f + 0.4f * e);
    }
    /* The groove wanders a little sideways. */
    for (int i = 1; i + 1 < n && jitter > 0; i++) {
        float tx = xy[2 * i + 2] - xy[2 * i - 2], ty = xy[2 * i + 3] - xy[2 * i - 1];
        float l = sqrtf(tx * tx + ty * ty);
        if (l <= 0) continue;
        float o = jitter * synth__vnoise1(ts[i] * len / (8.f * g.sc), n4) / l;
        xy[2 * i] += -ty * o, xy[2 * i + 1] += tx * o;
    }
    synth_stroke st = {xy, rad, amp, n};
    synth_rect box = {0, 0, 0, 0};
    if (halo > 0.03f) {
        /* A faint glow around the groove, drawn first: the max keeps the core. */
        float hrad[MAX_PTS], hamp[MAX_PTS];
        for (int i = 0; i < n; i++) hrad[i] = rad[i] * 2.5f, hamp[i] = amp[i] * halo;
        synth_stroke hs = {xy, hrad, hamp, n};
        box = synth__stroke_draw(cv, &hs);
    }
    rect_union(&box, synth__stroke_draw(cv, &st));
    /* Sometimes a fainter twin beside part of it (two grains of grit). */
    if (synth__chance(r, 0.25)) {
        float off = (float)synth__range(r, 2.5, 5.0) * g.sc;
        if (synth__chance(r, 0.5)) off = -off;
        float t0 = (float)synth__range(r, 0.0, 0.5), t1 = t0 + (float)synth__range(r, 0.2, 0.5);
        float k = (float)synth__range(r, 0.3, 0.7);
        float dx = (float)synth__cos(th + SYNTH_PI / 2) * off, dy = (float)synth__sin(th + SYNTH_PI / 2) * off;
        curve c2 = c;
        for (int j = 0; j < 4; j++) c2.p[j][0] += dx, c2.p[j][1] += dy;
        n = curve_points(s, &c2, len, xy, ts);
        for (int i = 0; i < n; i++) {
            float t = ts[i];
            amp[i] = k * synth__smooth((t - t0) / 0.05f) * synth__smooth((t1 - t) / 0.05f) *
                     (0.6f + 0.4f * synth__vnoise1(t * len / bead_period, n1 ^ 0x9e37u));
            rad[i] = r0 * 0.7f;
        }
        st.n = n;
        rect_union(&box, synth__stroke_draw(cv, &st));
    }
    float level = synth__scene_tag_level(s);
    if (synth__chance(r, 0.9)) {
        /* Bright: pulled towards a target grey well above the metal, often
         * past white, so that the core saturates as in the photos. */
        float target = (float)synth__range(r, 180, 300);
        if (target < level + 80) target = level + 80;
        *a = target, *b = -1.f;
    } else {
        *a = 0.f, *b = -(float)synth__range(r, 0.35, 0.65); /* dark: a share of the grey removed */
    }
    return box;
}

/* ---- dents and stains ------------------------------------------------------ */

/* A point for a round defect of radius R, the whole of it on the tag. */
static void blob_point(const synth_scene *s, synth_rng *r, float R, float *cx, float *cy)
{
    region g = tag_region(s);
    float X, Y;
    g.x0 += R, g.y0 += R, g.x1 -= R, g.y1 -= R, g.hr += R;
    if (g.x1 < g.x0) g.x0 = g.x1 = (g.x0 + g.x1) / 2; /* a small tag: as central as it gets */
    if (g.y1 < g.y0) g.y0 = g.y1 = (g.y0 + g.y1) / 2;
    for (int tries = 0; tries < 50; tries++) {
        tag_point(&g, r, &X, &Y);
        if (clear_of_hole(&g, X, Y)) break;
    }
    synth__scene_map(s, X, Y, cx, cy);
}

static synth_rect draw_dent(const synth_scene *s, synth_canvas *cv, synth_rng *r, float *a, float *b)
{
    float sc = synth__scene_scale(s), cx, cy;
    float R = sc * (float)synth__range(r, 3.5, 11), e = (float)synth__range(r, 0.55, 1.0);
    blob_point(s, r, 2 * R, &cx, &cy);
    float phi = (float)synth__range(r, 0, SYNTH_PI), lam = (float)synth__range(r, 0, 2 * SYNTH_PI);
    float k = (float)synth__range(r, 18, 40);
    float cp = (float)synth__cos(phi), sp = (float)synth__sin(phi);
    float lx = (float)synth__cos(lam), ly = (float)synth__sin(lam);
    synth_rect box = rect_clip(cv, cx - 2 * R - 1, cy - 2 * R - 1, cx + 2 * R + 2, cy + 2 * R + 2);
    for (int y = box.y0; y < box.y1; y++) {
        for (int x = box.x0; x < box.x1; x++) {
            float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            float u = (dx * cp + dy * sp) / R, v = (-dx * sp + dy * cp) / (R * e);
            float q = (u * u + v * v) * 0.25f;
            if (q >= 1.f) continue;
            /* Height (1-q)^3 over a disc of radius 2R; the change is its
             * slope towards the light (a dent is lit on the far side)
             * and a slight darkening in the hollow. */
            float w = 1.f - q, gq = -3.f * w * w * 0.5f;
            float gx = gq * (u * cp / R - v * sp / (R * e)), gy = gq * (u * sp / R + v * cp / (R * e));
            float shade = -(gx * lx + gy * ly) * R;
            float val = k * 1.6f * shade - 0.12f * k * w * w * w;
            if (val != 0) cv->tmp[(size_t)y * cv->w + x] = val;
        }
    }
    *a = 1.f, *b = 0.f;
    return box;
}

static synth_rect draw_stain(const synth_scene *s, synth_canvas *cv, synth_rng *r, float *a, float *b)
{
    float sc = synth__scene_scale(s), cx, cy;
    float R = sc * (float)synth__range(r, 7, 26), e = (float)synth__range(r, 0.5, 1.0);
    blob_point(s, r, 1.3f * R, &cx, &cy);
    float phi = (float)synth__range(r, 0, SYNTH_PI);
    float ring = synth__chance(r, 0.5) ? (float)synth__range(r, 0.3, 0.8) : 0.f;
    float cp = (float)synth__cos(phi), sp = (float)synth__sin(phi);
    uint32_t n1 = synth__seed32(r), n2 = synth__seed32(r);
    float m = 1.5f * R + 2;
    synth_rect box = rect_clip(cv, cx - m, cy - m, cx + m + 1, cy + m + 1);
    for (int y = box.y0; y < box.y1; y++) {
        for (int x = box.x0; x < box.x1; x++) {
            float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            float u = (dx * cp + dy * sp) / R, v = (-dx * sp + dy * cp) / (R * e);
            float rho = sqrtf(u * u + v * v);
            if (rho >= 1.45f) continue;
            /* A ragged edge: the radius wobbles with low-frequency noise. */
            float edge = 1.f + 0.3f * synth__vnoise(u * 1.7f, v * 1.7f, n1);
            float in = synth__smooth((edge - rho) / 0.2f);
            float rim = ring * synth__smooth(1.f - fabsf(edge - 0.08f - rho) / 0.12f);
            float val = in * (0.75f + 0.25f * synth__vnoise(u * 5.f, v * 5.f, n2)) + rim;
            if (val > 0) cv->tmp[(size_t)y * cv->w + x] = val;
        }
    }
    if (synth__chance(r, 0.75)) {
        *a = 0.f, *b = -(float)synth__range(r, 0.15, 0.35); /* darker residue */
    } else {
        *a = (float)synth__range(r, 150, 190), *b = -(float)synth__range(r, 0.2, 0.4); /* dried, whitish */
        *a *= -*b;
    }
    return box;
}

/* ---- planting ----------------------------------------------------------------- */

int synth__plant(const synth_cfg *c, const synth_scene *s, synth_canvas *cv, synth_rng *r, int *classes)
{
    int n = 0;
    if (!synth__chance(r, c->empty_fraction)) {
        /* Fewer defects are likelier (the photos: mostly one to three):
         * the smaller of two uniforms gives 1..5 with 36, 28, 20, 12 and 4%. */
        int span = c->max_defects - c->min_defects + 1;
        double u = synth__uniform(r), v = synth__uniform(r);
        n = c->min_defects + (int)(span * (u < v ? u : v));
        if (n > c->max_defects) n = c->max_defects;
    }
    if (n > SYNTH_MAX_DEFECTS) n = SYNTH_MAX_DEFECTS;
    static const int weight[SYNTH_NCLASSES] = {4, 1, 1};
    int total = 0;
    for (int k = 0; k < SYNTH_NCLASSES; k++)
        if (c->classes & (1 << k)) total += weight[k];
    if (total == 0) return 0;
    int planted = 0;
    for (int k = 0; k < n; k++) {
        int pick = synth__int(r, 0, total - 1), cls = 0;
        for (cls = 0; cls < SYNTH_NCLASSES; cls++) {
            if (!(c->classes & (1 << cls))) continue;
            if (pick < weight[cls]) break;
            pick -= weight[cls];
        }
        /* A defect that would hide, or be hidden by, an earlier one is
         * drawn again elsewhere: every box must show its defect. */
        for (int tries = 0; tries < 60; tries++) {
            float a = 0, b = 0;
            synth_rect box = cls == SYNTH_SCRATCH ? draw_scratch(s, cv, r, &a, &b)
                             : cls == SYNTH_DENT  ? draw_dent(s, cv, r, &a, &b)
                                                  : draw_stain(s, cv, r, &a, &b);
            if (synth__merge_ok(cv, planted, box, a, b)) {
                synth__merge(cv, planted, box, a, b);
                classes[planted++] = cls;
                break;
            }
            synth__tmp_clear(cv, box);
        }
    }
    return planted;
}

/* ---- faint marks ----------------------------------------------------------- */

void synth__faint_marks(const synth_scene *s, synth_canvas *cv, synth_rng *r)
{
    region g = tag_region(s);
    float xy[2 * MAX_PTS], rad[MAX_PTS], amp[MAX_PTS], ts[MAX_PTS];
    /* Thin dark lines, long and faint: the photos have many and they are
     * not labeled, so the detector must learn to leave them alone. */
    int lines = synth__int(r, 0, 7);
    for (int k = 0; k < lines; k++) {
        float len = g.sc * (float)synth__range(r, 30, 320), th = (float)synth__range(r, 0, SYNTH_PI), x, y;
        tag_point(&g, r, &x, &y);
        float dx = (float)synth__cos(th), dy = (float)synth__sin(th);
        float b1 = (float)(synth__gauss(r) * 0.05), b2 = (float)(synth__gauss(r) * 0.05);
        curve c = make_curve(x - dx * len / 2, y - dy * len / 2, th, len, b1, b2);
        int n = curve_points(s, &c, len, xy, ts);
        float k0 = (float)synth__range(r, 0.08, 0.25), r0 = (float)synth__range(r, 0.5, 1.0) * g.sc;
        uint32_t ns = synth__seed32(r);
        for (int i = 0; i < n; i++) {
            float t = ts[i];
            amp[i] = k0 * synth__smooth(t / 0.15f) * synth__smooth((1 - t) / 0.15f) *
                     (0.5f + 0.5f * synth__vnoise1(t * len / 20.f, ns));
            rad[i] = r0;
        }
        synth_stroke st = {xy, rad, amp, n};
        synth__apply_base(cv, synth__stroke_draw(cv, &st), 0.f, -1.f);
    }
    /* Fine light scratches of wear: short, thin and faint, everywhere. */
    int wear = synth__int(r, 0, 30);
    for (int k = 0; k < wear; k++) {
        float len = g.sc * (float)synth__range(r, 6, 60), th = (float)synth__range(r, 0, SYNTH_PI), x, y;
        tag_point(&g, r, &x, &y);
        float dx = (float)synth__cos(th), dy = (float)synth__sin(th);
        float b1 = (float)(synth__gauss(r) * 0.1), b2 = (float)(synth__gauss(r) * 0.1);
        curve c = make_curve(x - dx * len / 2, y - dy * len / 2, th, len, b1, b2);
        int n = curve_points(s, &c, len, xy, ts);
        float k0 = (float)synth__range(r, 0.05, 0.14), r0 = (float)synth__range(r, 0.5, 1.1) * g.sc;
        for (int i = 0; i < n; i++) {
            amp[i] = k0 * synth__smooth(ts[i] / 0.2f) * synth__smooth((1 - ts[i]) / 0.2f);
            rad[i] = r0;
        }
        synth_stroke st = {xy, rad, amp, n};
        synth__apply_base(cv, synth__stroke_draw(cv, &st), 255.f, -1.f);
    }
    /* Specks of dust or pits: a few pixels each, bright or dark. */
    int specks = synth__int(r, 0, 14);
    for (int k = 0; k < specks; k++) {
        float X, Y;
        tag_point(&g, r, &X, &Y);
        synth__scene_map(s, X, Y, &xy[0], &xy[1]);
        xy[2] = xy[0] + (float)synth__range(r, -1.5, 1.5), xy[3] = xy[1] + (float)synth__range(r, -1.5, 1.5);
        rad[0] = rad[1] = (float)synth__range(r, 0.6, 1.4) * g.sc;
        amp[0] = amp[1] = (float)synth__range(r, 0.1, 0.45);
        synth_stroke st = {xy, rad, amp, 2};
        int bright = synth__chance(r, 0.6);
        synth__apply_base(cv, synth__stroke_draw(cv, &st), bright ? 255.f : 0.f, -1.f);
    }
}
