/*
 * JPEG encoding with libjpeg-turbo into a growing funnel buffer. A custom
 * destination manager writes straight into funnel memory, so there is no
 * malloc'd copy from jpeg_mem_dest to hand back.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "img/internal.h"

typedef struct enc_ctx {
    struct jpeg_error_mgr err; /* first: libjpeg casts cinfo->err to this */
    struct jpeg_destination_mgr dest;
    jmp_buf jb;
    lupe_status status;
    char msg[JMSG_LENGTH_MAX];
    uint8_t *buf; /* funnel memory */
    size_t cap;
} enc_ctx;

static void on_error_exit(j_common_ptr cinfo)
{
    enc_ctx *e = (enc_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    if (!e->status) e->status = cinfo->err->msg_code == JERR_OUT_OF_MEMORY ? LUPE_ENOMEM : LUPE_EINTERNAL;
    longjmp(e->jb, 1);
}

/* The compressor has no data warnings worth stopping for; drop trace text. */
static void on_emit_message(j_common_ptr cinfo, int level)
{
    (void)cinfo;
    (void)level;
}

static void dest_init(j_compress_ptr cinfo)
{
    enc_ctx *e = (enc_ctx *)cinfo->err;
    e->dest.next_output_byte = e->buf;
    e->dest.free_in_buffer = e->cap;
}

/* Called when the buffer is full: libjpeg wants the whole buffer flushed,
 * so we double it and hand out the new second half. */
static boolean dest_grow(j_compress_ptr cinfo)
{
    enc_ctx *e = (enc_ctx *)cinfo->err;
    size_t used = e->cap, ncap = e->cap * 2;
    uint8_t *nb = lupe_realloc(e->buf, ncap);
    if (!nb) {
        e->status = LUPE_ENOMEM;
        snprintf(e->msg, sizeof e->msg, "out of memory growing the output to %zu bytes", ncap);
        longjmp(e->jb, 1);
    }
    e->buf = nb;
    e->cap = ncap;
    e->dest.next_output_byte = nb + used;
    e->dest.free_in_buffer = ncap - used;
    return TRUE;
}

static void dest_term(j_compress_ptr cinfo)
{
    (void)cinfo; /* the length is read from free_in_buffer afterwards */
}

lupe_status lupe_img_encode_jpeg(const lupe_img *im, int quality, uint8_t **out, size_t *out_len)
{
    struct jpeg_compress_struct cinfo;
    enc_ctx e;
    volatile lupe_status st = LUPE_OK; /* written after setjmp, read after longjmp */

    if (!out || !out_len) return lupe_err(LUPE_EARG, "encode jpeg: no output pointer");
    *out = NULL;
    *out_len = 0;
    if (!img__valid(im)) return lupe_err(LUPE_EARG, "encode jpeg: not a valid image");
    if (quality < 1 || quality > 100) return lupe_err(LUPE_EARG, "encode jpeg: quality %d is not in 1..100", quality);
    if (im->w > JPEG_MAX_DIMENSION || im->h > JPEG_MAX_DIMENSION)
        return lupe_err(LUPE_EARG, "encode jpeg: %dx%d is larger than JPEG allows (%d per side)", im->w, im->h,
                        (int)JPEG_MAX_DIMENSION);

    memset(&cinfo, 0, sizeof cinfo);
    memset(&e, 0, sizeof e);
    /* A first guess of a quarter byte per sample avoids most regrowth. */
    e.cap = (size_t)im->w * im->h * im->c / 4 + 4096;
    if (!(e.buf = lupe_malloc(e.cap))) return LUPE_ENOMEM;
    cinfo.err = jpeg_std_error(&e.err);
    e.err.error_exit = on_error_exit;
    e.err.emit_message = on_emit_message;
    if (setjmp(e.jb)) {
        st = lupe_err(e.status ? e.status : LUPE_EINTERNAL, "encode jpeg: %s", e.msg);
        goto out;
    }
    jpeg_create_compress(&cinfo);
    e.dest.init_destination = dest_init;
    e.dest.empty_output_buffer = dest_grow;
    e.dest.term_destination = dest_term;
    cinfo.dest = &e.dest;
    cinfo.image_width = (JDIMENSION)im->w;
    cinfo.image_height = (JDIMENSION)im->h;
    cinfo.input_components = im->c;
    cinfo.in_color_space = im->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)im->w * im->c;
    while (cinfo.next_scanline < cinfo.image_height) {
        /* libjpeg's row type is not const but it only reads input rows. */
        JSAMPROW row = (JSAMPROW)(im->data + (size_t)cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);

    size_t len = e.cap - e.dest.free_in_buffer;
    /* Give back the slack; if shrinking fails the larger block is still valid. */
    uint8_t *shrunk = lupe_realloc(e.buf, len);
    if (shrunk) e.buf = shrunk;
    *out = e.buf;
    *out_len = len;
    e.buf = NULL;
out:
    jpeg_destroy_compress(&cinfo);
    lupe_free(e.buf);
    return st;
}
