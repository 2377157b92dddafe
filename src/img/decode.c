/*
 * The front door of decoding: default limits, content sniffing, and the
 * checks every input gets before a codec sees it (empty, too large, not an
 * image). The codecs themselves are in decode_jpeg.c and decode_png.c.
 */
#include <stdio.h>
#include <string.h>

#include "img/internal.h"

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

lupe_img_limits lupe_img_default_limits(void)
{
    lupe_img_limits lim = {.max_side = 32768, .max_pixels = (uint64_t)64 << 20, .max_bytes = (size_t)256 << 20};
    return lim;
}

/* A zero (or negative) field means "the default", so callers can tighten one
 * limit without spelling out the others. */
static lupe_img_limits effective_limits(const lupe_img_limits *lim)
{
    lupe_img_limits d = lupe_img_default_limits();
    if (!lim) return d;
    lupe_img_limits l = *lim;
    if (l.max_side <= 0) l.max_side = d.max_side;
    if (l.max_pixels == 0) l.max_pixels = d.max_pixels;
    if (l.max_bytes == 0) l.max_bytes = d.max_bytes;
    return l;
}

lupe_img_format lupe_img_sniff(const uint8_t *buf, size_t len)
{
    if (!buf) return LUPE_IMG_UNKNOWN;
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return LUPE_IMG_JPEG;
    if (len >= sizeof png_sig && memcmp(buf, png_sig, sizeof png_sig) == 0) return LUPE_IMG_PNG;
    return LUPE_IMG_UNKNOWN;
}

const char *lupe_img_format_name(lupe_img_format f)
{
    switch (f) {
    case LUPE_IMG_JPEG: return "jpeg";
    case LUPE_IMG_PNG: return "png";
    default: return "unknown";
    }
}

lupe_status img__check_size(const char *what, uint64_t w, uint64_t h, const lupe_img_limits *lim)
{
    if (w == 0 || h == 0) return lupe_err(LUPE_EFORMAT, "%s: image size %llux%llu is empty", what,
                                          (unsigned long long)w, (unsigned long long)h);
    if (w > (uint64_t)lim->max_side || h > (uint64_t)lim->max_side)
        return lupe_err(LUPE_ELIMIT, "%s: image is %llux%llu, over the limit of %d pixels per side", what,
                        (unsigned long long)w, (unsigned long long)h, lim->max_side);
    if (w * h > lim->max_pixels)
        return lupe_err(LUPE_ELIMIT, "%s: image is %llux%llu = %llu pixels, over the limit of %llu", what,
                        (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
                        (unsigned long long)lim->max_pixels);
    return LUPE_OK;
}

/* The first bytes in hex tell a user more than "bad format" does: 25 50 44 46
 * is a PDF, 47 49 46 38 a GIF, 3c 21 44 4f an HTML error page. */
static lupe_status not_an_image(const uint8_t *buf, size_t len)
{
    char hex[3 * 8 + 1] = "";
    size_t n = len < 8 ? len : 8, at = 0;
    for (size_t i = 0; i < n; i++) at += (size_t)snprintf(hex + at, sizeof hex - at, i ? " %02x" : "%02x", buf[i]);
    return lupe_err(LUPE_EFORMAT, "not a JPEG or PNG (starts with bytes %s)", hex);
}

/* Checks shared by decode and probe. */
static lupe_status precheck(const uint8_t *buf, size_t len, size_t max_bytes)
{
    if (!buf && len) return lupe_err(LUPE_EARG, "image buffer is NULL");
    if (len == 0) return lupe_err(LUPE_EFORMAT, "empty file");
    if (len > max_bytes)
        return lupe_err(LUPE_ELIMIT, "image file is %zu bytes, over the limit of %zu", len, max_bytes);
    return LUPE_OK;
}

lupe_status lupe_img_decode(const uint8_t *buf, size_t len, int want_c, const lupe_img_limits *lim, lupe_img **out)
{
    if (!out) return lupe_err(LUPE_EARG, "decode: no output pointer");
    *out = NULL;
    if (want_c != 0 && want_c != 1 && want_c != 3)
        return lupe_err(LUPE_EARG, "decode: channels must be 0, 1 or 3, not %d", want_c);
    lupe_img_limits l = effective_limits(lim);
    lupe_status st = precheck(buf, len, l.max_bytes);
    if (st) return st;
    switch (lupe_img_sniff(buf, len)) {
    case LUPE_IMG_JPEG: return img__decode_jpeg(buf, len, want_c, &l, out);
    case LUPE_IMG_PNG: return img__decode_png(buf, len, want_c, &l, out);
    default: return not_an_image(buf, len);
    }
}

lupe_status lupe_img_probe(const uint8_t *buf, size_t len, lupe_img_info *out)
{
    if (!out) return lupe_err(LUPE_EARG, "probe: no output pointer");
    memset(out, 0, sizeof *out);
    /* Probing reads a header only, so the byte cap does not apply. */
    lupe_status st = precheck(buf, len, SIZE_MAX);
    if (st) return st;
    switch (lupe_img_sniff(buf, len)) {
    case LUPE_IMG_JPEG: return img__probe_jpeg(buf, len, out);
    case LUPE_IMG_PNG: return img__probe_png(buf, len, out);
    default: return not_an_image(buf, len);
    }
}
