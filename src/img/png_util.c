/*
 * libpng callbacks shared by the PNG decoder and encoder (see png_util.h).
 */
#include <stdio.h>

#include "img/png_util.h"
#include "lupe/base.h"

png_voidp img__png_malloc(png_structp png, png_alloc_size_t n)
{
    void *p = lupe_malloc(n);
    img__png_err *e = png_get_mem_ptr(png);
    if (!p && e) e->oom = 1;
    return p;
}

void img__png_free(png_structp png, png_voidp p)
{
    (void)png;
    lupe_free(p);
}

void img__png_error(png_structp png, png_const_charp msg)
{
    img__png_err *e = png_get_error_ptr(png);
    /* Keep the first message: the read callback writes its own before
     * calling png_error, and libpng may add a second one on the way out. */
    if (e && !e->msg[0]) snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings are benign by libpng's own judgement (a bad CRC on an ancillary
 * chunk, which is then dropped; an unknown sRGB profile): ignore them. */
void img__png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}
