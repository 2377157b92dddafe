/*
 * lupe image library: 8-bit gray or RGB images, JPEG and PNG decoding and
 * encoding that is safe on hostile input, resizing, cropping, letterboxing
 * and drawing boxes with labels. Used by ingest, training, inference and the
 * edge agent alike, so it depends on the base library only.
 *
 *     lupe_img *im = NULL;
 *     lupe_img_limits lim = lupe_img_default_limits();
 *     if (lupe_img_decode(buf, len, 3, &lim, &im)) fail(lupe_errmsg());
 *     lupe_img *lb = NULL; lupe_letterbox lbx;
 *     lupe_img_letterbox(im, 480, 480, &lb, &lbx);
 *     lupe_img_draw_box(lb, 10, 10, 50, 40, LUPE_RGB(255, 0, 0), "scratch 0.91");
 *     lupe_img_encode_png(lb, &png, &png_len);
 *     lupe_img_free(im); lupe_img_free(lb); lupe_free(png);
 */
#ifndef LUPE_IMG_H
#define LUPE_IMG_H

#include <stddef.h>
#include <stdint.h>

#include "lupe/base.h"

typedef enum { LUPE_IMG_UNKNOWN = 0, LUPE_IMG_JPEG, LUPE_IMG_PNG } lupe_img_format;

/* Pixels are interleaved, row-major, no padding: data[(y*w + x)*c + k]. */
typedef struct lupe_img {
    int w, h, c; /* c is 1 (gray) or 3 (RGB) */
    uint8_t *data;
} lupe_img;

/* Caps checked before any pixel memory is allocated. */
typedef struct lupe_img_limits {
    int max_side;          /* each of width and height; default 32768 */
    uint64_t max_pixels;   /* width * height; default 64M */
    size_t max_bytes;      /* encoded input size; default 256 MiB */
} lupe_img_limits;

typedef struct lupe_img_info {
    lupe_img_format format;
    int w, h, c;           /* c: channels as stored (1, 2, 3 or 4) */
} lupe_img_info;

lupe_img_limits lupe_img_default_limits(void);
/* Content sniffing from the first bytes; never trusts a file name. */
lupe_img_format lupe_img_sniff(const uint8_t *buf, size_t len);
const char *lupe_img_format_name(lupe_img_format f); /* "jpeg", "png", "unknown" */

lupe_img *lupe_img_new(int w, int h, int c); /* zero-filled; NULL + LUPE_ENOMEM on failure */
void lupe_img_free(lupe_img *im);
lupe_img *lupe_img_clone(const lupe_img *im);

/* Decodes JPEG or PNG (sniffed). want_c: 1 = gray, 3 = RGB, 0 = gray if the
 * source is gray else RGB. Alpha is dropped, 16-bit is reduced to 8, palettes
 * are expanded. Truncated or corrupt data, lying headers and images past the
 * limits are LUPE_EFORMAT or LUPE_ELIMIT with a message naming the byte or
 * field; never a crash and never an allocation sized from an unchecked header.
 * lim may be NULL for the defaults. */
lupe_status lupe_img_decode(const uint8_t *buf, size_t len, int want_c, const lupe_img_limits *lim, lupe_img **out);
/* Reads only the header: format, size and channels. Does not validate the rest. */
lupe_status lupe_img_probe(const uint8_t *buf, size_t len, lupe_img_info *out);
lupe_status lupe_img_load(const char *path, int want_c, const lupe_img_limits *lim, lupe_img **out);

/* EXIF capture time (DateTimeOriginal, else DateTime) of a JPEG as a unix
 * time, read as UTC. LUPE_ENOTFOUND when there is none. */
lupe_status lupe_img_exif_time(const uint8_t *buf, size_t len, int64_t *out_unix);

/* Encoders return a funnel buffer the caller frees with lupe_free. */
lupe_status lupe_img_encode_jpeg(const lupe_img *im, int quality, uint8_t **out, size_t *out_len);
lupe_status lupe_img_encode_png(const lupe_img *im, uint8_t **out, size_t *out_len);
/* Encodes by the file name's extension (.jpg/.jpeg or .png) and writes atomically. */
lupe_status lupe_img_save(const lupe_img *im, const char *path);

typedef enum { LUPE_RESIZE_BILINEAR, LUPE_RESIZE_AREA } lupe_resize_mode;
lupe_status lupe_img_resize(const lupe_img *src, int w, int h, lupe_resize_mode mode, lupe_img **out);
/* Crops [x, x+w) x [y, y+h); the rectangle must lie inside the image. */
lupe_status lupe_img_crop(const lupe_img *src, int x, int y, int w, int h, lupe_img **out);
lupe_img *lupe_img_to_channels(const lupe_img *src, int c);

/* Letterbox: scale to fit w x h keeping the aspect ratio (bilinear), centre
 * it and pad with gray 114. The mapping back is orig = (p - pad) / scale. */
typedef struct lupe_letterbox {
    float scale;
    int pad_x, pad_y;   /* left and top padding in output pixels */
    int new_w, new_h;   /* size of the scaled image inside the output */
} lupe_letterbox;
#define LUPE_LETTERBOX_PAD 114
lupe_status lupe_img_letterbox(const lupe_img *src, int w, int h, lupe_img **out, lupe_letterbox *out_lb);

/* Drawing, for previews and reports. Colours are 0xRRGGBB; on gray images
 * the luma is used. Everything is clipped to the image. */
#define LUPE_RGB(r, g, b) ((uint32_t)(((r) & 255) << 16 | ((g) & 255) << 8 | ((b) & 255)))
void lupe_img_fill_rect(lupe_img *im, int x, int y, int w, int h, uint32_t rgb);
void lupe_img_draw_rect(lupe_img *im, int x, int y, int w, int h, int thickness, uint32_t rgb);
/* Built-in 5x7 font, printable ASCII; scale >= 1 multiplies the glyph size.
 * Returns the width in pixels of the drawn text. */
int lupe_img_draw_text(lupe_img *im, int x, int y, const char *text, int scale, uint32_t rgb);
int lupe_img_text_width(const char *text, int scale);
/* Box outline plus a filled label tab above it (inside if there is no room)
 * holding `label` (for example "scratch 0.91"); label may be NULL. */
void lupe_img_draw_box(lupe_img *im, int x, int y, int w, int h, uint32_t rgb, const char *label);

#endif
