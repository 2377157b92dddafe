/*
 * Helpers shared between the files of the image library (src/img/). Not API:
 * the public interface is include/lupe/img.h. Names carry the img__ prefix.
 */
#ifndef LUPE_IMG_INTERNAL_H
#define LUPE_IMG_INTERNAL_H

#include "lupe/img.h"

/* Checks w x h against the limits; LUPE_ELIMIT naming the size otherwise.
 * `what` names the format for the message ("jpeg", "png"). */
lupe_status img__check_size(const char *what, uint64_t w, uint64_t h, const lupe_img_limits *lim);

/* Decoders for one format; buf/len already sniffed, non-empty and within
 * max_bytes. want_c is 0, 1 or 3. */
lupe_status img__decode_jpeg(const uint8_t *buf, size_t len, int want_c, const lupe_img_limits *lim, lupe_img **out);
lupe_status img__decode_png(const uint8_t *buf, size_t len, int want_c, const lupe_img_limits *lim, lupe_img **out);
lupe_status img__probe_jpeg(const uint8_t *buf, size_t len, lupe_img_info *out);
lupe_status img__probe_png(const uint8_t *buf, size_t len, lupe_img_info *out);

/* ITU-R BT.601 luma, the weights libjpeg uses, in 8-bit fixed point. */
static inline uint8_t img__luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((77 * r + 150 * g + 29 * b + 128) >> 8);
}

/* Checks that an image is usable as input: sizes positive, 1 or 3 channels. */
int img__valid(const lupe_img *im);

/* The 5x7 font: a glyph is 35 characters, 7 rows of 5 columns left to right,
 * '#' for ink and '.' for none. Bytes outside ASCII 32..126 draw as '?'. */
#define IMG_FONT_W 5
#define IMG_FONT_H 7
#define IMG_FONT_ADVANCE 6 /* one blank column between glyphs */
const char *img__glyph(unsigned char ch);

#endif
