/*
 * Drawing for previews and reports: filled and outlined rectangles, text in
 * the built-in 5x7 font, and detection boxes with a label tab. Coordinates
 * may be anywhere (boxes from a model often poke out of the frame); all
 * arithmetic is done in 64 bits and clipped, so nothing is written outside.
 */
#include <limits.h>
#include <string.h>

#include "img/internal.h"

static void fill64(lupe_img *im, int64_t x, int64_t y, int64_t w, int64_t h, uint32_t rgb)
{
    if (!img__valid(im) || w <= 0 || h <= 0) return;
    int64_t x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int64_t x1 = x + w > im->w ? im->w : x + w, y1 = y + h > im->h ? im->h : y + h;
    if (x0 >= x1 || y0 >= y1) return;
    uint8_t r = (uint8_t)(rgb >> 16), g = (uint8_t)(rgb >> 8), b = (uint8_t)rgb;
    for (int64_t yy = y0; yy < y1; yy++) {
        uint8_t *p = im->data + ((size_t)yy * im->w + (size_t)x0) * im->c;
        if (im->c == 1) {
            memset(p, img__luma(r, g, b), (size_t)(x1 - x0));
        } else {
            for (int64_t xx = x0; xx < x1; xx++, p += 3) p[0] = r, p[1] = g, p[2] = b;
        }
    }
}

void lupe_img_fill_rect(lupe_img *im, int x, int y, int w, int h, uint32_t rgb)
{
    fill64(im, x, y, w, h, rgb);
}

static void rect64(lupe_img *im, int64_t x, int64_t y, int64_t w, int64_t h, int64_t t, uint32_t rgb)
{
    if (w <= 0 || h <= 0) return;
    if (t < 1) t = 1;
    if (2 * t >= w || 2 * t >= h) { /* the border meets itself: solid */
        fill64(im, x, y, w, h, rgb);
        return;
    }
    fill64(im, x, y, w, t, rgb);             /* top */
    fill64(im, x, y + h - t, w, t, rgb);     /* bottom */
    fill64(im, x, y + t, t, h - 2 * t, rgb); /* left */
    fill64(im, x + w - t, y + t, t, h - 2 * t, rgb); /* right */
}

void lupe_img_draw_rect(lupe_img *im, int x, int y, int w, int h, int thickness, uint32_t rgb)
{
    rect64(im, x, y, w, h, thickness, rgb);
}

static int64_t text_width64(const char *text, int64_t scale)
{
    if (!text || !*text) return 0;
    if (scale < 1) scale = 1;
    /* No trailing blank column after the last glyph. */
    return ((int64_t)strlen(text) * IMG_FONT_ADVANCE - 1) * scale;
}

static int clamp_int(int64_t v)
{
    return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

int lupe_img_text_width(const char *text, int scale)
{
    return clamp_int(text_width64(text, scale));
}

int lupe_img_draw_text(lupe_img *im, int x, int y, const char *text, int scale, uint32_t rgb)
{
    if (!text) return 0;
    int64_t s = scale < 1 ? 1 : scale;
    if (img__valid(im)) {
        int64_t gx = x;
        for (const char *p = text; *p; p++, gx += IMG_FONT_ADVANCE * s) {
            if (gx >= im->w) break; /* this glyph and all after it are off the right edge */
            if (gx + IMG_FONT_W * s <= 0) continue;
            const char *g = img__glyph((unsigned char)*p);
            for (int r = 0; r < IMG_FONT_H; r++)
                for (int c = 0; c < IMG_FONT_W; c++)
                    if (g[r * IMG_FONT_W + c] == '#') fill64(im, gx + c * s, (int64_t)y + r * s, s, s, rgb);
        }
    }
    return clamp_int(text_width64(text, s));
}

void lupe_img_draw_box(lupe_img *im, int x, int y, int w, int h, uint32_t rgb, const char *label)
{
    if (!img__valid(im)) return;
    /* Line and text grow with the image so previews of large frames stay
     * readable: 1 px up to 400 px, font scale 1 up to 600 px. */
    int min_side = im->w < im->h ? im->w : im->h;
    int64_t t = 1 + min_side / 400, s = 1 + min_side / 600, pad = s;
    rect64(im, x, y, w, h, t, rgb);
    if (!label || !*label) return;

    int64_t tab_w = text_width64(label, s) + 2 * pad, tab_h = IMG_FONT_H * s + 2 * pad;
    int64_t tx = x, ty = (int64_t)y - tab_h;
    if (ty < 0) ty = y; /* no room above: put the tab inside the box */
    if (tx + tab_w > im->w) tx = im->w - tab_w; /* keep it on screen when the box touches the right edge */
    if (tx < 0) tx = 0;
    fill64(im, tx, ty, tab_w, tab_h, rgb);
    unsigned luma = img__luma((rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255);
    uint32_t ink = luma >= 128 ? LUPE_RGB(0, 0, 0) : LUPE_RGB(255, 255, 255);
    lupe_img_draw_text(im, clamp_int(tx + pad), clamp_int(ty + pad), label, (int)s, ink);
}
