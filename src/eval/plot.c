/*
 * Line charts as images: axes with rounded ticks and numbers, grid, title,
 * axis labels, several anti-aliased series and a legend placed in the
 * emptiest corner. Drawn with the image library's rectangles and 5x7 font;
 * the lines themselves are drawn here.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/eval_internal.h"

#define TITLE_SCALE 3
#define LABEL_SCALE 2
#define TICK_SCALE 2
#define FONT_H 7 /* glyph height of the built-in font, before scaling */
#define INK LUPE_RGB(34, 34, 34)
#define GRID LUPE_RGB(228, 228, 228)
#define FRAME LUPE_RGB(90, 90, 90)
#define MAX_SIDE 8192

uint32_t eval__palette(int i)
{
    static const uint32_t tab10[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                     0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    return tab10[(unsigned)i % (sizeof tab10 / sizeof *tab10)];
}

void eval__text_center(lupe_img *im, int cx, int y, const char *text, int scale, uint32_t rgb)
{
    lupe_img_draw_text(im, cx - lupe_img_text_width(text, scale) / 2, y, text, scale, rgb);
}

void eval__text_up(lupe_img *im, int x, int y, const char *text, int scale, uint32_t rgb)
{
    int tw = lupe_img_text_width(text, scale), th = FONT_H * scale;
    if (tw <= 0) return;
    /* Drawn upright into a scratch image, then copied turned: scratch
     * (tx, ty) lands at (x + ty, y + tw - 1 - tx). */
    lupe_img *t = lupe_img_new(tw, th, 1);
    if (!t) return; /* out of memory: the label is left out, the chart is still drawn */
    lupe_img_draw_text(t, 0, 0, text, scale, LUPE_RGB(255, 255, 255));
    for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++)
            if (t->data[(size_t)ty * tw + tx] > 127) lupe_img_fill_rect(im, x + ty, y + tw - 1 - tx, 1, 1, rgb);
    lupe_img_free(t);
}

void eval__text_fit(char *text, int scale, int w)
{
    size_t n = strlen(text);
    if (lupe_img_text_width(text, scale) <= w) return;
    /* Cut to n - 2 characters or fewer before adding "..", so the result is
     * never longer than the text and fits its buffer. */
    for (size_t k = n >= 2 ? n - 2 : 0; k > 0; k--) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%.*s..", (int)k, text);
        if (lupe_img_text_width(tmp, scale) <= w || k == 1) {
            memcpy(text, tmp, strlen(tmp) + 1);
            return;
        }
    }
    text[0] = 0;
}

/* ---- anti-aliased lines ----------------------------------------------------
 * A series is drawn into a coverage buffer (the maximum over its segments,
 * so the many short segments of a curve do not darken each other where they
 * meet), then blended onto the image once. */
typedef struct canvas {
    lupe_img *im;
    float *cov;                 /* [im->h][im->w] */
    int cx0, cy0, cx1, cy1;     /* clip rectangle, exclusive end */
    int bx0, by0, bx1, by1;     /* pixels touched since the last flush */
} canvas;

static void touch(canvas *c, int x, int y)
{
    if (x < c->bx0) c->bx0 = x;
    if (y < c->by0) c->by0 = y;
    if (x + 1 > c->bx1) c->bx1 = x + 1;
    if (y + 1 > c->by1) c->by1 = y + 1;
}

static void plot_cov(canvas *c, int x, int y, double ax, double ay, double dx, double dy, double len2, double r)
{
    if (x < c->cx0 || x >= c->cx1 || y < c->cy0 || y >= c->cy1) return;
    double px = x + 0.5 - ax, py = y + 0.5 - ay;
    double t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = px - t * dx, ey = py - t * dy;
    double a = r + 0.5 - sqrt(ex * ex + ey * ey);
    if (a <= 0) return;
    float v = a >= 1 ? 1.0f : (float)a;
    float *p = &c->cov[(size_t)y * c->im->w + x];
    if (v > *p) *p = v;
    touch(c, x, y);
}

/* A segment of width w with round ends: the pixels within reach are walked
 * along the longer axis, a band across it per step. */
static void segment(canvas *c, double ax, double ay, double bx, double by, double w)
{
    double r = w / 2, dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    if (fabs(dx) >= fabs(dy)) {
        double slope = dx != 0 ? dy / dx : 0, h = (r + 1) * sqrt(1 + slope * slope);
        int x0 = (int)floor((ax < bx ? ax : bx) - r - 1), x1 = (int)ceil((ax > bx ? ax : bx) + r + 1);
        if (x0 < c->cx0) x0 = c->cx0;
        if (x1 > c->cx1) x1 = c->cx1;
        for (int x = x0; x < x1; x++) {
            double t = dx != 0 ? (x + 0.5 - ax) / dx : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double yc = ay + t * dy;
            for (int y = (int)floor(yc - h); y <= (int)ceil(yc + h); y++) plot_cov(c, x, y, ax, ay, dx, dy, len2, r);
        }
    } else {
        double slope = dx / dy, h = (r + 1) * sqrt(1 + slope * slope);
        int y0 = (int)floor((ay < by ? ay : by) - r - 1), y1 = (int)ceil((ay > by ? ay : by) + r + 1);
        if (y0 < c->cy0) y0 = c->cy0;
        if (y1 > c->cy1) y1 = c->cy1;
        for (int y = y0; y < y1; y++) {
            double t = (y + 0.5 - ay) / dy;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double xc = ax + t * dx;
            for (int x = (int)floor(xc - h); x <= (int)ceil(xc + h); x++) plot_cov(c, x, y, ax, ay, dx, dy, len2, r);
        }
    }
}

static void flush(canvas *c, uint32_t rgb)
{
    const double col[3] = {(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255};
    for (int y = c->by0; y < c->by1; y++) {
        for (int x = c->bx0; x < c->bx1; x++) {
            float *p = &c->cov[(size_t)y * c->im->w + x];
            if (*p <= 0) continue;
            uint8_t *px = c->im->data + ((size_t)y * c->im->w + x) * 3;
            for (int k = 0; k < 3; k++) px[k] = (uint8_t)lround(px[k] + (col[k] - px[k]) * *p);
            *p = 0;
        }
    }
    c->bx0 = c->by0 = 1 << 30;
    c->bx1 = c->by1 = -(1 << 30);
}

/* ---- axes ------------------------------------------------------------------ */
typedef struct axis {
    double lo, hi, step;
    int decimals; /* -1: %g */
} axis;

static double nice_step(double range, int target)
{
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* The range is the data's, widened to whole steps, unless fixed (lo < hi). */
static void axis_init(axis *a, double fixed_lo, double fixed_hi, double dlo, double dhi, int target)
{
    if (fixed_lo < fixed_hi && isfinite(fixed_lo) && isfinite(fixed_hi)) {
        a->lo = fixed_lo, a->hi = fixed_hi;
        a->step = nice_step(a->hi - a->lo, target);
    } else {
        if (!(dlo <= dhi)) dlo = 0, dhi = 1; /* no finite data */
        if (dlo == dhi) {
            double pad = fabs(dlo) > 0 ? fabs(dlo) * 0.1 : 0.5;
            dlo -= pad, dhi += pad;
        }
        a->step = nice_step(dhi - dlo, target);
        a->lo = floor(dlo / a->step) * a->step;
        a->hi = ceil(dhi / a->step) * a->step;
    }
    double m = fabs(a->lo) > fabs(a->hi) ? fabs(a->lo) : fabs(a->hi);
    if (m >= 1e6 || a->step < 1e-4)
        a->decimals = -1;
    else
        a->decimals = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
}

static void tick_label(const axis *a, double v, char *buf, size_t n)
{
    if (fabs(v) < a->step * 1e-9) v = 0; /* no "-0.0" */
    if (a->decimals < 0)
        snprintf(buf, n, "%g", v);
    else
        snprintf(buf, n, "%.*f", a->decimals, v);
}

/* Ticks at the multiples of the step inside the range. */
static int ticks(const axis *a, double *out, int max)
{
    int n = 0;
    double first = ceil(a->lo / a->step - 1e-9);
    for (double k = first; n < max; k++) {
        double v = k * a->step;
        if (v > a->hi + a->step * 1e-9) break;
        out[n++] = v;
    }
    return n;
}

/* ---- the chart -------------------------------------------------------------- */
typedef struct legend_row {
    const char *name;
    uint32_t color;
    int width;
} legend_row;

static uint32_t series_color(const eval_series *s, int ns, int k)
{
    if (s[k].color) return s[k].color;
    int auto_i = 0;
    for (int i = 0; i < k && i < ns; i++)
        if (!s[i].color) auto_i++;
    return eval__palette(auto_i);
}

/* Pixels of drawn series in a rectangle: the grid and background are light
 * (228 and up on every channel), the series' colours and their smoothed
 * edges are not. */
static int count_ink(const lupe_img *im, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < im->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < im->w; x++) {
            const uint8_t *p = im->data + ((size_t)y * im->w + x) * 3;
            n += p[0] < 215 || p[1] < 215 || p[2] < 215;
        }
    return n;
}

typedef struct frame {
    int x0, y0, x1, y1; /* plot area, exclusive end */
    axis ax, ay;
} frame;

static double map_xy(const frame *f, double v, int is_y)
{
    if (!is_y) return f->x0 + (v - f->ax.lo) / (f->ax.hi - f->ax.lo) * (f->x1 - 1 - f->x0);
    return f->y1 - 1 - (v - f->ay.lo) / (f->ay.hi - f->ay.lo) * (f->y1 - 1 - f->y0);
}

static void draw_legend(lupe_img *im, const frame *f, const eval_series *s, int ns)
{
    int nrows = 0, tw = 0;
    for (int k = 0; k < ns; k++)
        if (s[k].name && *s[k].name) nrows++;
    if (!nrows) return;
    const int row_h = FONT_H * LABEL_SCALE + 10, swatch = 30, pad = 10;
    int fit = (f->y1 - f->y0 - 2 * pad - 20) / row_h;
    if (fit < 1) return;
    int shown = nrows <= fit ? nrows : fit - 1; /* the last row then says how many are left out */
    int max_text = (f->x1 - f->x0) / 2 - swatch - 3 * pad;
    for (int k = 0, r = 0; k < ns && r < shown; k++) {
        if (!s[k].name || !*s[k].name) continue;
        int w = lupe_img_text_width(s[k].name, LABEL_SCALE);
        if (w > tw) tw = w;
        r++;
    }
    if (tw > max_text) tw = max_text;
    int bw = pad + swatch + 8 + tw + pad, bh = 2 * pad + (shown + (shown < nrows)) * row_h - 10;
    /* The corner that hides the least of the curves (counted on the
     * drawn image); on a tie the first: top right, top left, bottom right,
     * bottom left. */
    const int cx[4] = {f->x1 - 12 - bw, f->x0 + 12, f->x1 - 12 - bw, f->x0 + 12};
    const int cy[4] = {f->y0 + 12, f->y0 + 12, f->y1 - 12 - bh, f->y1 - 12 - bh};
    int best = 0, bestn = -1;
    for (int i = 0; i < 4; i++) {
        int n = count_ink(im, cx[i] - 4, cy[i] - 4, cx[i] + bw + 4, cy[i] + bh + 4);
        if (bestn < 0 || n < bestn) best = i, bestn = n;
    }
    int x = cx[best], y = cy[best];
    /* A white frame at 80% opacity, as matplotlib draws legends: what it
     * covers still shows faintly. */
    for (int yy = y < 0 ? 0 : y; yy < y + bh && yy < im->h; yy++)
        for (int xx = x < 0 ? 0 : x; xx < x + bw && xx < im->w; xx++) {
            uint8_t *p = im->data + ((size_t)yy * im->w + xx) * 3;
            for (int k = 0; k < 3; k++) p[k] = (uint8_t)(255 - (255 - p[k]) / 5);
        }
    lupe_img_draw_rect(im, x, y, bw, bh, 1, LUPE_RGB(200, 200, 200));
    int ry = y + pad;
    for (int k = 0, r = 0; k < ns && r < shown; k++) {
        if (!s[k].name || !*s[k].name) continue;
        int lw = s[k].width > 0 ? s[k].width : 2;
        lupe_img_fill_rect(im, x + pad, ry + (FONT_H * LABEL_SCALE - lw) / 2, swatch, lw, series_color(s, ns, k));
        char name[256];
        snprintf(name, sizeof name, "%s", s[k].name);
        eval__text_fit(name, LABEL_SCALE, tw);
        lupe_img_draw_text(im, x + pad + swatch + 8, ry, name, LABEL_SCALE, INK);
        ry += row_h;
        r++;
    }
    if (shown < nrows) {
        char more[64];
        snprintf(more, sizeof more, "+%d more", nrows - shown);
        lupe_img_draw_text(im, x + pad + swatch + 8, ry, more, LABEL_SCALE, INK);
    }
}

static void data_range(const eval_series *s, int ns, int is_y, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double v = is_y ? s[k].y[i] : s[k].x[i];
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
        }
}

lupe_status eval_chart_render(const eval_chart *c, const eval_series *s, int ns, lupe_img **out)
{
    lupe_status st = LUPE_OK;
    lupe_img *im = NULL;
    canvas cv = {0};
    if (!out) return lupe_err(LUPE_EARG, "chart: no output pointer");
    *out = NULL;
    if (!c || ns < 0 || (ns && !s)) return lupe_err(LUPE_EARG, "chart: missing options or series");
    for (int k = 0; k < ns; k++)
        if (s[k].n < 0 || (s[k].n && (!s[k].x || !s[k].y)))
            return lupe_err(LUPE_EARG, "chart: series %d has %d points without arrays", k, s[k].n);
    int W = c->w ? c->w : 960, H = c->h ? c->h : 640;
    if (W < 200 || H < 150 || W > MAX_SIDE || H > MAX_SIDE)
        return lupe_err(LUPE_EARG, "chart: size %dx%d is outside 200x150 .. %dx%d", W, H, MAX_SIDE, MAX_SIDE);

    frame f;
    double lo, hi;
    data_range(s, ns, 0, &lo, &hi);
    axis_init(&f.ax, c->xmin, c->xmax, lo, hi, W >= 640 ? 10 : 5);
    data_range(s, ns, 1, &lo, &hi);
    axis_init(&f.ay, c->ymin, c->ymax, lo, hi, H >= 480 ? 10 : 5);
    if (!(f.ax.step > 0 && isfinite(f.ax.hi - f.ax.lo) && f.ay.step > 0 && isfinite(f.ay.hi - f.ay.lo)))
        return lupe_err(LUPE_EARG, "chart: the values span more than a double can hold");

    double tv[64];
    char buf[64];
    int nyt = ticks(&f.ay, tv, 64), ytw = 0;
    for (int i = 0; i < nyt; i++) {
        tick_label(&f.ay, tv[i], buf, sizeof buf);
        int w = lupe_img_text_width(buf, TICK_SCALE);
        if (w > ytw) ytw = w;
    }
    const int fh = FONT_H * LABEL_SCALE, th = FONT_H * TITLE_SCALE, tick = 6;
    f.x0 = 14 + (c->ylabel && *c->ylabel ? fh + 14 : 0) + ytw + tick + 6;
    f.x1 = W - 36;
    f.y0 = (c->title && *c->title ? 16 + th : 0) + 20;
    f.y1 = H - (14 + fh + tick + 10 + (c->xlabel && *c->xlabel ? fh + 14 : 0));
    if (f.x1 - f.x0 < 50 || f.y1 - f.y0 < 50) return lupe_err(LUPE_EARG, "chart: %dx%d leaves no room to plot", W, H);

    if (!(im = lupe_img_new(W, H, 3)) || !(cv.cov = lupe_calloc((size_t)W * H, sizeof *cv.cov))) {
        st = lupe_err_ctx(LUPE_ENOMEM, "chart of %dx%d", W, H);
        goto out;
    }
    memset(im->data, 255, (size_t)W * H * 3);

    /* Grid and ticks. */
    int nxt = ticks(&f.ax, tv, 64);
    for (int i = 0; i < nxt; i++) {
        int x = (int)lround(map_xy(&f, tv[i], 0));
        lupe_img_fill_rect(im, x, f.y0, 1, f.y1 - f.y0, GRID);
        lupe_img_fill_rect(im, x, f.y1, 1, tick, FRAME);
        tick_label(&f.ax, tv[i], buf, sizeof buf);
        eval__text_center(im, x, f.y1 + tick + 4, buf, TICK_SCALE, INK);
    }
    nyt = ticks(&f.ay, tv, 64);
    for (int i = 0; i < nyt; i++) {
        int y = (int)lround(map_xy(&f, tv[i], 1));
        lupe_img_fill_rect(im, f.x0, y, f.x1 - f.x0, 1, GRID);
        lupe_img_fill_rect(im, f.x0 - tick, y, tick, 1, FRAME);
        tick_label(&f.ay, tv[i], buf, sizeof buf);
        int w = lupe_img_text_width(buf, TICK_SCALE);
        lupe_img_draw_text(im, f.x0 - tick - 4 - w, y - FONT_H * TICK_SCALE / 2, buf, TICK_SCALE, INK);
    }

    /* Series, first to last (the last drawn is on top). */
    cv.im = im;
    cv.cx0 = f.x0, cv.cy0 = f.y0, cv.cx1 = f.x1, cv.cy1 = f.y1;
    cv.bx0 = cv.by0 = 1 << 30;
    cv.bx1 = cv.by1 = -(1 << 30);
    for (int k = 0; k < ns; k++) {
        double w = s[k].width > 0 ? s[k].width : 2;
        int have = 0;
        double px = 0, py = 0;
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) {
                have = 0;
                continue;
            }
            double qx = map_xy(&f, s[k].x[i], 0) + 0.5, qy = map_xy(&f, s[k].y[i], 1) + 0.5;
            /* Far outside the frame only the clipped part matters; keep the
             * numbers small so the walk along the segment stays short. */
            qx = qx < -1e5 ? -1e5 : qx > 1e5 ? 1e5 : qx;
            qy = qy < -1e5 ? -1e5 : qy > 1e5 ? 1e5 : qy;
            segment(&cv, have ? px : qx, have ? py : qy, qx, qy, w);
            px = qx, py = qy, have = 1;
        }
        flush(&cv, series_color(s, ns, k));
    }
    lupe_img_draw_rect(im, f.x0 - 1, f.y0 - 1, f.x1 - f.x0 + 2, f.y1 - f.y0 + 2, 1, FRAME);
    draw_legend(im, &f, s, ns);

    if (c->title && *c->title) eval__text_center(im, (f.x0 + f.x1) / 2, 16, c->title, TITLE_SCALE, INK);
    if (c->xlabel && *c->xlabel)
        eval__text_center(im, (f.x0 + f.x1) / 2, H - 14 - fh, c->xlabel, LABEL_SCALE, INK);
    if (c->ylabel && *c->ylabel)
        eval__text_up(im, 14, (f.y0 + f.y1) / 2 - lupe_img_text_width(c->ylabel, LABEL_SCALE) / 2, c->ylabel,
                      LABEL_SCALE, INK);
    *out = im;
    im = NULL;
out:
    lupe_free(cv.cov);
    lupe_img_free(im);
    return st;
}

lupe_status eval_chart_save(const char *path, const eval_chart *c, const eval_series *s, int ns)
{
    lupe_img *im = NULL;
    if (!path) return lupe_err(LUPE_EARG, "chart: no path");
    lupe_status st = eval_chart_render(c, s, ns, &im);
    if (!st) st = lupe_img_save(im, path);
    lupe_img_free(im);
    if (st) return lupe_err_ctx(st, "writing chart %s", path);
    return LUPE_OK;
}

lupe_status eval_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                            const eval_series *s, int ns)
{
    eval_chart c = {.title = title, .xlabel = xlabel, .ylabel = ylabel};
    return eval_chart_save(path, &c, s, ns);
}
