/*
 * The synthetic tag without defects, modelled on the metal-tag photos: a
 * dark brushed-metal plate with rounded corners and a hole, on a blown-out
 * white background with a clamp at one edge, lit unevenly, sometimes
 * engraved, seen through a slight rotation and perspective, then blurred.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "synth/synth_internal.h"

/* A clamp or stand: a grey block behind the tag at its top or bottom edge,
 * with dark horizontal lines and a shaded part, as in the photos. */
typedef struct clamp {
    int on;
    float x0, x1, y0, y1;
    float level, split, split_level;
    int nlines;
    float line_y[4], line_w[4], line_level;
} clamp;

struct synth_scene {
    int w, h;
    float sc;
    double fwd[9], inv[9];
    float tx0, ty0, tx1, ty1, cr; /* tag rectangle and corner radius */
    float hx, hy, hr;             /* hole */
    float level;                  /* grey of the metal */
    float gx, gy, vig;            /* lighting gradient (levels per pixel) and vignetting */
    float spec_amp, spec_nx, spec_ny, spec_c, spec_w; /* a soft band of reflected light */
    float glare_amp, glare_x, glare_y, glare_r;       /* a round glare */
    float brush_amp, brush_amp2, brush_c, brush_s, brush_fu, brush_fv;
    uint32_t brush_seed, brush_seed2, mottle_seed;
    float mottle_amp, mottle_f;
    float wear_amp, wear_f, wear_thr; /* lighter scuffed patches */
    uint32_t wear_seed;
    float band_w, band_amp;       /* darker strip along the left edge (the plate's side) */
    float rim_amp, rim_w;         /* bright bevel along the outline */
    float hole_ring;              /* dark bevel around the hole */
    float bg, bg_gx, bg_gy;
    float shadow_amp, shadow_w;
    clamp clamps[2];
    lupe_img *engr;               /* engraving mask, NULL when the tag has none */
    float en_x, en_y, en_s, en_depth, en_hi;
    float tint_r, tint_b;
    float noise_sd;
    float blur;
};

/* ---- geometry ------------------------------------------------------------- */

/* Solves the 8x8 system of the homography taking src[i] to dst[i]; 0 on success. */
static int homography(const double src[4][2], const double dst[4][2], double h[9])
{
    double m[8][9];
    for (int i = 0; i < 4; i++) {
        double x = src[i][0], y = src[i][1], u = dst[i][0], v = dst[i][1];
        double r0[9] = {x, y, 1, 0, 0, 0, -u * x, -u * y, u};
        double r1[9] = {0, 0, 0, x, y, 1, -v * x, -v * y, v};
        memcpy(m[2 * i], r0, sizeof r0);
        memcpy(m[2 * i + 1], r1, sizeof r1);
    }
    for (int c = 0; c < 8; c++) {
        int p = c;
        for (int r = c + 1; r < 8; r++)
            if (fabs(m[r][c]) > fabs(m[p][c])) p = r;
        if (fabs(m[p][c]) < 1e-12) return -1;
        if (p != c) {
            double t[9];
            memcpy(t, m[p], sizeof t);
            memcpy(m[p], m[c], sizeof t);
            memcpy(m[c], t, sizeof t);
        }
        for (int r = 0; r < 8; r++) {
            if (r == c) continue;
            double f = m[r][c] / m[c][c];
            for (int k = c; k < 9; k++) m[r][k] -= f * m[c][k];
        }
    }
    for (int i = 0; i < 8; i++) h[i] = m[i][8] / m[i][i];
    h[8] = 1;
    return 0;
}

static int invert3(const double a[9], double out[9])
{
    double c0 = a[4] * a[8] - a[5] * a[7], c1 = a[5] * a[6] - a[3] * a[8], c2 = a[3] * a[7] - a[4] * a[6];
    double det = a[0] * c0 + a[1] * c1 + a[2] * c2;
    if (fabs(det) < 1e-12) return -1;
    double inv[9] = {c0,
                     a[2] * a[7] - a[1] * a[8],
                     a[1] * a[5] - a[2] * a[4],
                     c1,
                     a[0] * a[8] - a[2] * a[6],
                     a[2] * a[3] - a[0] * a[5],
                     c2,
                     a[1] * a[6] - a[0] * a[7],
                     a[0] * a[4] - a[1] * a[3]};
    for (int i = 0; i < 9; i++) out[i] = inv[i] / det;
    return 0;
}

void synth__scene_map(const synth_scene *s, double X, double Y, float *x, float *y)
{
    const double *h = s->fwd;
    double d = h[6] * X + h[7] * Y + h[8];
    *x = (float)((h[0] * X + h[1] * Y + h[2]) / d);
    *y = (float)((h[3] * X + h[4] * Y + h[5]) / d);
}

void synth__scene_tag(const synth_scene *s, float *x0, float *y0, float *x1, float *y1, float *hx, float *hy,
                      float *hr)
{
    float m = 8 * s->sc; /* defects keep off the very edge */
    *x0 = s->tx0 + m, *y0 = s->ty0 + m, *x1 = s->tx1 - m, *y1 = s->ty1 - m;
    *hx = s->hx, *hy = s->hy, *hr = s->hr;
}

float synth__scene_scale(const synth_scene *s)
{
    return s->sc;
}

float synth__scene_tag_level(const synth_scene *s)
{
    return s->level;
}

float synth__scene_noise_sd(const synth_scene *s)
{
    return s->noise_sd;
}

void synth__scene_tint(const synth_scene *s, float *r, float *b)
{
    *r = s->tint_r, *b = s->tint_b;
}

/* ---- parameters ------------------------------------------------------------ */

static void make_clamp(clamp *c, synth_rng *r, int top, float w, float h, float ty0, float ty1, float sc)
{
    c->on = 1;
    float cx = w * (float)synth__range(r, 0.3, 0.62), half = w * (float)synth__range(r, 0.12, 0.24);
    c->x0 = cx - half, c->x1 = cx + half;
    if (top) c->y0 = -10, c->y1 = ty0 + 4 * sc;
    else c->y0 = ty1 - 4 * sc, c->y1 = h + 10;
    c->level = (float)synth__range(r, 150, 225);
    c->split = c->x0 + (c->x1 - c->x0) * (float)synth__range(r, 0.45, 0.8);
    c->split_level = (float)synth__range(r, 110, 200);
    c->nlines = synth__int(r, 1, 4);
    c->line_level = (float)synth__range(r, 80, 140);
    float span = (top ? c->y1 : h - c->y0) - 2 * sc;
    for (int i = 0; i < c->nlines; i++) {
        float off = span * (float)synth__range(r, 0.1, 0.9);
        c->line_y[i] = top ? off : h - off;
        c->line_w[i] = sc * (float)synth__range(r, 0.7, 2.0);
    }
}

/* Random engraving: one to three lines of serial-number-like text and a
 * border or rule, drawn in the built-in font into a small mask that the
 * renderer magnifies. */
static lupe_status make_engraving(synth_scene *s, synth_rng *r)
{
    static const char *const heads[] = {"SN", "NO", "LOT", "ID", "REF", "TAG", "P/N"};
    s->en_s = s->sc * (float)synth__range(r, 2.0, 3.4);
    int ew = (int)((s->tx1 - s->tx0) / s->en_s), eh = (int)((s->ty1 - s->ty0) / s->en_s);
    if (ew < 16 || eh < 12) return LUPE_OK;
    if (!(s->engr = lupe_img_new(ew, eh, 1))) return lupe_err_ctx(LUPE_ENOMEM, "engraving mask");
    s->en_x = s->tx0, s->en_y = s->ty0;
    int lines = synth__int(r, 1, 3), y = synth__int(r, eh / 5, eh / 2);
    for (int i = 0; i < lines && y + 8 < eh; i++) {
        char text[32];
        int len = 0;
        len += snprintf(text, sizeof text, "%s", heads[synth__int(r, 0, 6)]);
        text[len++] = synth__chance(r, 0.5) ? ' ' : '-';
        int digits = synth__int(r, 3, 7);
        for (int d = 0; d < digits && len < 30; d++) text[len++] = (char)('0' + synth__int(r, 0, 9));
        if (synth__chance(r, 0.4) && len < 30) text[len++] = (char)('A' + synth__int(r, 0, 25));
        text[len] = 0;
        int tw = lupe_img_text_width(text, 1), x = synth__int(r, 3, ew - tw - 3 > 3 ? ew - tw - 3 : 3);
        lupe_img_draw_text(s->engr, x, y, text, 1, LUPE_RGB(255, 255, 255));
        y += synth__int(r, 10, 13);
    }
    if (synth__chance(r, 0.5)) {
        int m = synth__int(r, 2, 4);
        lupe_img_draw_rect(s->engr, m, m, ew - 2 * m, eh - 2 * m, 1, LUPE_RGB(255, 255, 255));
    } else if (synth__chance(r, 0.5)) {
        lupe_img_fill_rect(s->engr, synth__int(r, 3, ew / 4), y, ew / 2, 1, LUPE_RGB(255, 255, 255));
    }
    s->en_depth = (float)synth__range(r, 14, 32);
    s->en_hi = (float)synth__range(r, 10, 30);
    return LUPE_OK;
}

lupe_status synth__scene_new(const synth_cfg *c, uint64_t seed, uint64_t index, synth_scene **out)
{
    *out = NULL;
    synth_scene *s = lupe_calloc(1, sizeof *s);
    if (!s) return lupe_err_ctx(LUPE_ENOMEM, "synthetic scene");
    synth_rng rr, *r = &rr;
    synth__rng_seed(r, seed, index, SYNTH_STREAM_SCENE);
    float W = (float)c->w, H = (float)c->h;
    float sc = sqrtf((W / 450.f) * (H / 300.f));
    s->w = c->w, s->h = c->h, s->sc = sc;

    /* Layout in the scene: the tag fills most of the frame, as in the
     * photos, leaving room for the clamp at the top. */
    s->tx0 = W * (float)synth__range(r, 0.035, 0.08);
    s->tx1 = W * (1 - (float)synth__range(r, 0.03, 0.07));
    s->ty0 = H * (float)synth__range(r, 0.07, 0.13);
    s->ty1 = H * (1 - (float)synth__range(r, 0.04, 0.09));
    s->cr = sc * (float)synth__range(r, 5, 12);
    s->hr = sc * (float)synth__range(r, 7, 11);
    s->hx = s->tx0 + sc * (float)synth__range(r, 17, 30);
    s->hy = s->ty0 + sc * (float)synth__range(r, 15, 28);
    s->hole_ring = (float)synth__range(r, 0, 40);

    /* Light: the metal reads 65-115 in the photos, nearly flat. */
    s->level = (float)synth__range(r, 72, 115);
    s->gx = (float)synth__range(r, -12, 12) / W;
    s->gy = (float)synth__range(r, -10, 10) / H;
    s->vig = (float)synth__range(r, 0, 10);
    if (synth__chance(r, 0.5)) {
        double a = synth__range(r, 0, SYNTH_PI);
        s->spec_nx = (float)synth__cos(a), s->spec_ny = (float)synth__sin(a);
        float px = W * (float)synth__range(r, 0.1, 0.9), py = H * (float)synth__range(r, 0.1, 0.9);
        s->spec_c = s->spec_nx * px + s->spec_ny * py;
        s->spec_w = sc * (float)synth__range(r, 25, 120);
        s->spec_amp = (float)synth__range(r, 4, 26);
    }
    if (synth__chance(r, 0.25)) {
        s->glare_x = W * (float)synth__range(r, 0.15, 0.85), s->glare_y = H * (float)synth__range(r, 0.2, 0.8);
        s->glare_r = sc * (float)synth__range(r, 30, 110);
        s->glare_amp = (float)synth__range(r, 4, 16);
    }
    /* Brushing: streaks along one direction (near horizontal or vertical),
     * long along it and a pixel or two across. */
    double ba = synth__chance(r, 0.7) ? 0 : SYNTH_PI / 2;
    ba += synth__gauss(r) * 0.03;
    s->brush_c = (float)synth__cos(ba), s->brush_s = (float)synth__sin(ba);
    s->brush_fu = 1.f / (sc * (float)synth__range(r, 25, 90));
    s->brush_fv = 1.f / (sc * (float)synth__range(r, 0.8, 2.0));
    s->brush_amp = (float)synth__range(r, 0.5, 3.0);
    s->brush_amp2 = (float)synth__range(r, 0.0, 2.5);
    s->brush_seed = synth__seed32(r), s->brush_seed2 = synth__seed32(r), s->mottle_seed = synth__seed32(r);
    s->mottle_amp = (float)synth__range(r, 0.5, 5);
    s->mottle_f = 1.f / (sc * (float)synth__range(r, 30, 90));
    s->wear_amp = synth__chance(r, 0.6) ? (float)synth__range(r, 0, 6) : 0.f;
    s->wear_f = 1.f / (sc * (float)synth__range(r, 8, 30));
    s->wear_thr = (float)synth__range(r, 0.3, 0.6);
    s->wear_seed = synth__seed32(r);
    if (synth__chance(r, 0.75)) {
        s->band_w = sc * (float)synth__range(r, 3, 10);
        s->band_amp = (float)synth__range(r, 8, 35);
    }
    s->rim_w = sc * (float)synth__range(r, 1, 2.5);
    s->rim_amp = (float)synth__range(r, -10, 25);

    /* Background: white paper overexposed to 255 in most photos. */
    s->bg = (float)synth__range(r, 236, 300);
    s->bg_gx = (float)synth__range(r, -20, 20) / W, s->bg_gy = (float)synth__range(r, -20, 20) / H;
    s->shadow_amp = (float)synth__range(r, 0, 60);
    s->shadow_w = sc * (float)synth__range(r, 1.5, 6);
    if (synth__chance(r, 0.85)) make_clamp(&s->clamps[0], r, 1, W, H, s->ty0, s->ty1, sc);
    if (synth__chance(r, 0.45)) make_clamp(&s->clamps[1], r, 0, W, H, s->ty0, s->ty1, sc);

    s->noise_sd = (float)synth__range(r, 0.8, 3.2);
    s->blur = (float)synth__range(r, 0.05, 0.24);
    s->tint_r = s->tint_b = 1.f;
    if (synth__chance(r, 0.15)) {
        s->tint_r = 1.f + (float)synth__range(r, -0.04, 0.04);
        s->tint_b = 1.f + (float)synth__range(r, -0.04, 0.04);
    }

    /* The camera: the scene's corners go to the image's, turned, scaled and
     * shifted a little, each corner nudged on its own for perspective; a
     * third of the tags hang the other way up (hole at the bottom right). */
    double th = synth__gauss(r) * 0.012, scale = synth__range(r, 0.96, 1.03);
    double tx = synth__range(r, -0.015, 0.015) * W, ty = synth__range(r, -0.015, 0.015) * H;
    int flip = synth__chance(r, 0.3);
    double src[4][2] = {{0, 0}, {W, 0}, {W, H}, {0, H}}, dst[4][2];
    double ct = synth__cos(th + (flip ? SYNTH_PI : 0)), st = synth__sin(th + (flip ? SYNTH_PI : 0));
    for (int i = 0; i < 4; i++) {
        double dx = (src[i][0] - W / 2) * scale, dy = (src[i][1] - H / 2) * scale;
        dst[i][0] = W / 2 + ct * dx - st * dy + tx + synth__range(r, -0.006, 0.006) * W;
        dst[i][1] = H / 2 + st * dx + ct * dy + ty + synth__range(r, -0.006, 0.006) * H;
    }
    lupe_status stt = LUPE_OK;
    if (homography(src, dst, s->fwd) || invert3(s->fwd, s->inv)) {
        stt = lupe_err(LUPE_EINTERNAL, "synthetic tag %llu: degenerate camera", (unsigned long long)index);
        goto out;
    }
    if (synth__uniform(r) < c->engrave && (stt = make_engraving(s, r))) goto out;
out:
    if (stt) {
        synth__scene_free(s);
        return stt;
    }
    *out = s;
    return LUPE_OK;
}

void synth__scene_free(synth_scene *s)
{
    if (!s) return;
    lupe_img_free(s->engr);
    lupe_free(s);
}

/* ---- drawing ------------------------------------------------------------------ */

/* Signed distance to the rounded rectangle, negative inside. */
static float rrect_sd(const synth_scene *s, float X, float Y)
{
    float cx = (s->tx0 + s->tx1) * 0.5f, cy = (s->ty0 + s->ty1) * 0.5f;
    float qx = fabsf(X - cx) - ((s->tx1 - s->tx0) * 0.5f - s->cr);
    float qy = fabsf(Y - cy) - ((s->ty1 - s->ty0) * 0.5f - s->cr);
    float ox = qx > 0 ? qx : 0, oy = qy > 0 ? qy : 0;
    float in = qx > qy ? qx : qy;
    return sqrtf(ox * ox + oy * oy) + (in < 0 ? in : 0) - s->cr;
}

static float bump(float t) /* (1 - t^2)^2 on |t| < 1: a Gaussian-like bump without exp */
{
    if (t <= -1.f || t >= 1.f) return 0;
    float u = 1.f - t * t;
    return u * u;
}

static float engr_at(const lupe_img *m, float ex, float ey)
{
    if (ex < 0 || ey < 0 || ex >= (float)(m->w - 1) || ey >= (float)(m->h - 1)) return 0;
    int ix = (int)ex, iy = (int)ey;
    float fx = ex - (float)ix, fy = ey - (float)iy;
    const uint8_t *p = m->data + (size_t)iy * m->w + ix;
    float top = p[0] + (p[1] - p[0]) * fx, bot = p[m->w] + (p[m->w + 1] - p[m->w]) * fx;
    return (top + (bot - top) * fy) * (1.f / 255.f);
}

static float background(const synth_scene *s, float X, float Y, float sd)
{
    float v = s->bg + s->bg_gx * X + s->bg_gy * Y;
    for (int k = 0; k < 2; k++) {
        const clamp *c = &s->clamps[k];
        if (!c->on || X < c->x0 || X > c->x1 || Y < c->y0 || Y > c->y1) continue;
        float e = synth__smooth(fminf(X - c->x0, c->x1 - X)); /* a soft vertical edge */
        float cv = X < c->split ? c->level : c->split_level + 40.f * (X - c->split) / (c->x1 - c->split + 1.f);
        for (int i = 0; i < c->nlines; i++) cv += (c->line_level - cv) * bump((Y - c->line_y[i]) / c->line_w[i]);
        v += (cv - v) * e;
    }
    if (sd > 0) v -= s->shadow_amp * (1.f - synth__smooth(sd / s->shadow_w));
    return v;
}

static float metal(const synth_scene *s, float X, float Y, float sd, float dh)
{
    float W = (float)s->w, H = (float)s->h;
    float v = s->level + s->gx * (X - W * 0.5f) + s->gy * (Y - H * 0.5f);
    float nx = (X - W * 0.5f) / (W * 0.5f), ny = (Y - H * 0.5f) / (H * 0.5f);
    v -= s->vig * (nx * nx + ny * ny);
    if (s->spec_amp > 0) v += s->spec_amp * bump((s->spec_nx * X + s->spec_ny * Y - s->spec_c) / s->spec_w);
    if (s->glare_amp > 0) {
        float dx = X - s->glare_x, dy = Y - s->glare_y;
        v += s->glare_amp * bump(sqrtf(dx * dx + dy * dy) / s->glare_r);
    }
    float u = X * s->brush_c + Y * s->brush_s, w = -X * s->brush_s + Y * s->brush_c;
    v += s->brush_amp * synth__vnoise(u * s->brush_fu, w * s->brush_fv, s->brush_seed);
    v += s->brush_amp2 * synth__vnoise(u * s->brush_fu * 4.f, w * s->brush_fv * 0.5f, s->brush_seed2);
    v += s->mottle_amp * synth__vnoise(X * s->mottle_f, Y * s->mottle_f, s->mottle_seed);
    if (s->wear_amp > 0) {
        float n = synth__vnoise(X * s->wear_f, Y * s->wear_f, s->wear_seed) - s->wear_thr;
        if (n > 0) v += s->wear_amp * n / (1.f - s->wear_thr);
    }
    if (s->band_amp > 0) v -= s->band_amp * (1.f - synth__smooth((X - s->tx0) / s->band_w));
    v += s->rim_amp * (1.f - synth__smooth(-sd / s->rim_w));
    if (s->hole_ring > 0) v -= s->hole_ring * (1.f - synth__smooth(dh / (2.f * s->sc)));
    if (s->engr) {
        /* An engraved groove: darker, with a highlight on the wall that
         * faces the light (one mask sample up and to the left). */
        float ex = (X - s->en_x) / s->en_s, ey = (Y - s->en_y) / s->en_s;
        float m = engr_at(s->engr, ex, ey), m2 = engr_at(s->engr, ex - 0.35f, ey - 0.35f);
        v += -s->en_depth * m + s->en_hi * (m2 > m ? m2 - m : 0);
    }
    return v;
}

static void blur3(synth_canvas *cv, float a)
{
    /* Separable [a, 1-2a, a], edges repeated. */
    int w = cv->w, h = cv->h;
    float b = 1.f - 2.f * a, *line = cv->line;
    for (int y = 0; y < h; y++) {
        float *row = cv->g + (size_t)y * w;
        memcpy(line, row, (size_t)w * sizeof *line);
        for (int x = 0; x < w; x++) {
            float l = line[x > 0 ? x - 1 : 0], r = line[x + 1 < w ? x + 1 : w - 1];
            row[x] = b * line[x] + a * (l + r);
        }
    }
    for (int x = 0; x < w; x++) {
        for (int y = 0; y < h; y++) line[y] = cv->g[(size_t)y * w + x];
        for (int y = 0; y < h; y++) {
            float u = line[y > 0 ? y - 1 : 0], d = line[y + 1 < h ? y + 1 : h - 1];
            cv->g[(size_t)y * w + x] = b * line[y] + a * (u + d);
        }
    }
}

void synth__scene_render(const synth_scene *s, synth_canvas *cv, synth_rng *r)
{
    float iv[9];
    for (int i = 0; i < 9; i++) iv[i] = (float)s->inv[i];
    for (int y = 0; y < cv->h; y++) {
        float py = (float)y + 0.5f;
        for (int x = 0; x < cv->w; x++) {
            float px = (float)x + 0.5f;
            float d = iv[6] * px + iv[7] * py + iv[8];
            float X = (iv[0] * px + iv[1] * py + iv[2]) / d, Y = (iv[3] * px + iv[4] * py + iv[5]) / d;
            float sd = rrect_sd(s, X, Y);
            float hdx = X - s->hx, hdy = Y - s->hy, dh = sqrtf(hdx * hdx + hdy * hdy) - s->hr;
            float m = synth__clampf(0.5f - sd, 0.f, 1.f) * synth__clampf(0.5f + dh, 0.f, 1.f);
            float v = background(s, X, Y, sd);
            if (m > 0) v += (metal(s, X, Y, sd, dh) - v) * m;
            size_t i = (size_t)y * cv->w + x;
            cv->g[i] = v;
            cv->mask[i] = m;
        }
    }
    synth__faint_marks(s, cv, r);
    blur3(cv, s->blur);
}
