/*
 * JPEG decoding and probing with libjpeg-turbo. libjpeg reports errors by
 * calling error_exit, which must not return, so we longjmp back; it reports
 * damaged data (truncation, bad Huffman codes) only as warnings and carries
 * on with grey blocks, so warnings are errors here too.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "img/internal.h"

/* Real progressive files have about ten scans; each extra scan costs a pass
 * over the whole coefficient buffer, so a tiny hostile file with thousands of
 * empty scans would burn CPU. libjpeg-turbo suggests this kind of cap. */
#define JPEG_MAX_SCANS 256

typedef struct jerr_ctx {
    struct jpeg_error_mgr pub; /* first: libjpeg casts cinfo->err to this */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    lupe_status status;
    char msg[JMSG_LENGTH_MAX + 64];
} jerr_ctx;

static _Noreturn void fail_jump(j_common_ptr cinfo)
{
    jerr_ctx *e = (jerr_ctx *)cinfo->err;
    longjmp(e->jb, 1);
}

static void on_error_exit(j_common_ptr cinfo)
{
    jerr_ctx *e = (jerr_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    if (cinfo->err->msg_code == JERR_OUT_OF_MEMORY)
        e->status = LUPE_ENOMEM;
    else if (cinfo->err->msg_code == JERR_NO_BACKING_STORE) {
        /* jmemnobs asks for backing store only once max_memory_to_use is hit. */
        e->status = LUPE_ELIMIT;
        snprintf(e->msg, sizeof e->msg, "decoding needs more than %ld bytes of working memory",
                 cinfo->mem ? cinfo->mem->max_memory_to_use : 0L);
    } else
        e->status = LUPE_EFORMAT;
    fail_jump(cinfo);
}

/* Level -1 is a warning ("Premature end of JPEG file", "Corrupt JPEG data:
 * ..."); levels 0 and up are trace output, which we do not want. */
static void on_emit_message(j_common_ptr cinfo, int level)
{
    if (level >= 0) return;
    jerr_ctx *e = (jerr_ctx *)cinfo->err;
    cinfo->err->num_warnings++;
    (*cinfo->err->format_message)(cinfo, e->msg);
    e->status = LUPE_EFORMAT;
    fail_jump(cinfo);
}

static void on_progress(j_common_ptr cinfo)
{
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jerr_ctx *e = (jerr_ctx *)cinfo->err;
        snprintf(e->msg, sizeof e->msg, "more than %d scans", JPEG_MAX_SCANS);
        e->status = LUPE_ELIMIT;
        fail_jump(cinfo);
    }
}

static void err_init(jerr_ctx *e, struct jpeg_decompress_struct *cinfo)
{
    memset(e, 0, sizeof *e);
    memset(cinfo, 0, sizeof *cinfo);
    cinfo->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error_exit;
    e->pub.emit_message = on_emit_message;
    e->progress.progress_monitor = on_progress;
    e->status = LUPE_EFORMAT;
}

/* Bound on libjpeg's own memory, which cannot go through the funnel: the
 * coefficient buffer of a progressive file is 2 bytes per sample, at most 4
 * samples per pixel, plus room for tables and row buffers. */
static long work_limit(const lupe_img_limits *lim)
{
    uint64_t n = lim->max_pixels * 8 + ((uint64_t)16 << 20);
    return n > (uint64_t)LONG_MAX ? LONG_MAX : (long)n;
}

/* CMYK as Photoshop writes it (flagged by an Adobe APP14 marker) is stored
 * inverted; plain CMYK is not. Either way the conversion to RGB is the naive
 * one, which is what other decoders do without a colour profile. */
static void cmyk_row_to_rgb(const uint8_t *src, uint8_t *dst, int w, int out_c, int inverted)
{
    for (int x = 0; x < w; x++, src += 4) {
        unsigned c = src[0], m = src[1], y = src[2], k = src[3];
        if (!inverted) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
        unsigned r = (c * k + 127) / 255, g = (m * k + 127) / 255, b = (y * k + 127) / 255;
        if (out_c == 1)
            *dst++ = img__luma(r, g, b);
        else
            *dst++ = (uint8_t)r, *dst++ = (uint8_t)g, *dst++ = (uint8_t)b;
    }
}

lupe_status img__decode_jpeg(const uint8_t *buf, size_t len, int want_c, const lupe_img_limits *lim, lupe_img **out)
{
    struct jpeg_decompress_struct cinfo;
    jerr_ctx err;
    /* Written after setjmp and read after longjmp, hence volatile. */
    lupe_img *volatile im = NULL;
    uint8_t *volatile cmyk_row = NULL;
    volatile lupe_status st = LUPE_OK; /* written after setjmp, read after longjmp */

    err_init(&err, &cinfo);
    if (setjmp(err.jb)) {
        st = lupe_err(err.status, "jpeg: %s", err.msg);
        goto out;
    }
    jpeg_create_decompress(&cinfo);
    cinfo.mem->max_memory_to_use = work_limit(lim);
    cinfo.progress = &err.progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);

    /* Before anything is sized from the header. */
    st = img__check_size("jpeg", cinfo.image_width, cinfo.image_height, lim);
    if (st) goto out;

    int cmyk = 0, src_c;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: src_c = 1; break;
    case JCS_YCbCr:
    case JCS_RGB: src_c = 3; break;
    case JCS_CMYK:
    case JCS_YCCK: src_c = 3, cmyk = 1; break;
    default:
        st = lupe_err(LUPE_EUNSUPPORTED, "jpeg: unsupported colour space (%d components)", cinfo.num_components);
        goto out;
    }
    int out_c = want_c ? want_c : src_c;
    if (cmyk)
        cinfo.out_color_space = JCS_CMYK; /* libjpeg turns YCCK into CMYK; we do the rest */
    else
        cinfo.out_color_space = out_c == 1 ? JCS_GRAYSCALE : JCS_RGB;

    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (w != (int)cinfo.image_width || h != (int)cinfo.image_height ||
        cinfo.output_components != (cmyk ? 4 : out_c)) {
        st = lupe_err(LUPE_EINTERNAL, "jpeg: decoder output %dx%dx%d does not match the header", w, h,
                      cinfo.output_components);
        goto out;
    }
    im = lupe_img_new(w, h, out_c);
    if (!im) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if (cmyk && !(cmyk_row = lupe_malloc((size_t)w * 4))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    size_t stride = (size_t)w * out_c;
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = im->data + (size_t)cinfo.output_scanline * stride;
        JSAMPROW row = cmyk ? cmyk_row : dst;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            /* Only a suspending data source returns 0, and ours never does. */
            st = lupe_err(LUPE_EINTERNAL, "jpeg: decoder stalled at row %u", cinfo.output_scanline);
            goto out;
        }
        if (cmyk) cmyk_row_to_rgb(cmyk_row, dst, w, out_c, cinfo.saw_Adobe_marker);
    }
    /* Reads up to EOI, so a file cut after the last scan is still caught. */
    jpeg_finish_decompress(&cinfo);

out:
    jpeg_destroy_decompress(&cinfo);
    lupe_free(cmyk_row);
    if (st) {
        lupe_img_free(im);
        return st;
    }
    *out = im;
    return LUPE_OK;
}

lupe_status img__probe_jpeg(const uint8_t *buf, size_t len, lupe_img_info *out)
{
    struct jpeg_decompress_struct cinfo;
    jerr_ctx err;
    volatile lupe_status st = LUPE_OK; /* written after setjmp, read after longjmp */

    err_init(&err, &cinfo);
    if (setjmp(err.jb)) {
        st = lupe_err(err.status, "jpeg: %s", err.msg);
        goto out;
    }
    jpeg_create_decompress(&cinfo);
    /* The header alone needs little memory; a few MiB covers any tables. */
    cinfo.mem->max_memory_to_use = 16L << 20;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    out->format = LUPE_IMG_JPEG;
    out->w = (int)cinfo.image_width;
    out->h = (int)cinfo.image_height;
    out->c = cinfo.num_components;
out:
    jpeg_destroy_decompress(&cinfo);
    return st;
}
