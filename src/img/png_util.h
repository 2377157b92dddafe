/*
 * libpng callbacks shared by the PNG decoder and encoder: allocation
 * through the funnel (noting a refusal, so it reads as out of memory rather
 * than as a broken file), and errors kept as the first message.
 */
#ifndef LUPE_IMG_PNG_UTIL_H
#define LUPE_IMG_PNG_UTIL_H

#include <png.h>

/* Passed to libpng as both the memory and the error pointer. */
typedef struct img__png_err {
    int oom;       /* the funnel refused an allocation */
    char msg[256]; /* first error message */
} img__png_err;

png_voidp img__png_malloc(png_structp png, png_alloc_size_t n);
void img__png_free(png_structp png, png_voidp p);
void img__png_error(png_structp png, png_const_charp msg);
void img__png_warning(png_structp png, png_const_charp msg);

#endif
