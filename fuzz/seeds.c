/*
 * Writes the starting corpus for fuzz_img_decode into a folder: small PNGs
 * of every colour type (gray 1/8/16-bit, RGB, palette with transparency,
 * gray+alpha, RGBA 16-bit, interlaced), JPEGs (baseline, gray, progressive,
 * CMYK, with an EXIF date) and, if given, shrunken copies of real images.
 * Usage: seeds OUT_DIR [IMAGE...]. Run by scripts/fuzz; not part of lupe.
 */
#include <stdio.h> /* jpeglib.h needs FILE and size_t first */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "lupe/img.h"

static const char *out_dir;

static void die(const char *what)
{
    fprintf(stderr, "seeds: %s\n", what);
    exit(1);
}

static void save(const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) die(path);
}

static void write_png(const char *name, int w, int h, int ctype, int depth, int interlace, int trns)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) die(path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info || setjmp(png_jmpbuf(png))) die("libpng");
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        for (int i = 0; i < 16; i++) pal[i].red = (png_byte)(i * 16), pal[i].green = (png_byte)(255 - i * 16), pal[i].blue = (png_byte)(i * 7);
        png_set_PLTE(png, info, pal, 16);
        if (trns) {
            png_byte alpha[4] = {0, 64, 128, 255};
            png_set_tRNS(png, info, alpha, 4, NULL);
        }
    } else if (trns) {
        png_color_16 key = {.gray = 3, .red = 3, .green = 4, .blue = 5};
        png_set_tRNS(png, info, NULL, 0, &key);
    }
    char key[] = "Comment", val[] = "lupe fuzz seed";
    png_text text = {.compression = PNG_TEXT_COMPRESSION_zTXt, .key = key, .text = val};
    png_set_text(png, info, &text, 1);
    png_write_info(png, info);
    int ch = ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_PALETTE ? 1
             : ctype == PNG_COLOR_TYPE_GRAY_ALPHA                        ? 2
             : ctype == PNG_COLOR_TYPE_RGB                               ? 3
                                                                         : 4;
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    png_bytep buf = calloc((size_t)h, rowbytes);
    png_bytep *rows = calloc((size_t)h, sizeof *rows);
    if (!buf || !rows) die("out of memory");
    for (int y = 0; y < h; y++) {
        rows[y] = buf + (size_t)y * rowbytes;
        for (size_t i = 0; i < rowbytes; i++) rows[y][i] = (png_byte)(y * 17 + i * 5 + (ctype == PNG_COLOR_TYPE_PALETTE ? 0 : i % 3 * 60));
        if (ctype == PNG_COLOR_TYPE_PALETTE && depth == 8)
            for (size_t i = 0; i < rowbytes; i++) rows[y][i] &= 15; /* stay inside the 16-entry palette */
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(buf);
    if (fclose(f) != 0) die(path);
}

/* JPEG from w x h samples of `comps` components through libjpeg directly. */
static void write_jpeg(const char *name, int w, int h, J_COLOR_SPACE in, int comps, J_COLOR_SPACE out,
                       int progressive, const uint8_t *app1, size_t app1_len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem = NULL;
    unsigned long len = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = in;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, out);
    jpeg_set_quality(&c, 75, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (app1) jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)app1_len);
    uint8_t *row = malloc((size_t)w * comps);
    if (!row) die("out of memory");
    while (c.next_scanline < c.image_height) {
        for (int i = 0; i < w * comps; i++) row[i] = (uint8_t)(i * 3 + c.next_scanline * 11);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    save(name, mem, len);
    free(mem);
    free(row);
}

/* "Exif\0\0" + little-endian TIFF with IFD0 -> EXIF IFD -> DateTimeOriginal. */
static size_t exif_segment(uint8_t *b)
{
    static const uint8_t seg[] = {
        'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0,             /* header, IFD0 at 8 */
        1, 0, 0x69, 0x87, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0, 0, 0, 0, 0,       /* IFD0: ExifIFD at 26 */
        1, 0, 0x03, 0x90, 2, 0, 20, 0, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0,      /* EXIF IFD: DTO at 44 */
        '2', '0', '2', '1', ':', '0', '3', ':', '0', '4', ' ', '0', '5', ':', '0', '6', ':', '0', '7', 0};
    memcpy(b, seg, sizeof seg);
    return sizeof seg;
}

/* A real image, shrunk so the fuzzer runs fast, in both formats. */
static void shrink_real(const char *path, int i)
{
    lupe_img *im = NULL, *small = NULL;
    if (lupe_img_load(path, 0, NULL, &im)) die(lupe_errmsg());
    if (lupe_img_resize(im, 48, 32, LUPE_RESIZE_AREA, &small)) die(lupe_errmsg());
    uint8_t *buf = NULL;
    size_t n = 0;
    char name[64];
    if (lupe_img_encode_jpeg(small, 70, &buf, &n)) die(lupe_errmsg());
    snprintf(name, sizeof name, "real-%d.jpg", i);
    save(name, buf, n);
    lupe_free(buf);
    if (lupe_img_encode_png(small, &buf, &n)) die(lupe_errmsg());
    snprintf(name, sizeof name, "real-%d.png", i);
    save(name, buf, n);
    lupe_free(buf);
    lupe_img_free(small);
    lupe_img_free(im);
}

int main(int argc, char **argv)
{
    if (argc < 2) die("usage: seeds OUT_DIR [IMAGE...]");
    out_dir = argv[1];
    write_png("gray1.png", 13, 7, PNG_COLOR_TYPE_GRAY, 1, 0, 0);
    write_png("gray8-trns.png", 16, 12, PNG_COLOR_TYPE_GRAY, 8, 0, 1);
    write_png("gray16.png", 9, 9, PNG_COLOR_TYPE_GRAY, 16, 0, 0);
    write_png("rgb8.png", 16, 12, PNG_COLOR_TYPE_RGB, 8, 0, 0);
    write_png("rgb8-adam7.png", 17, 11, PNG_COLOR_TYPE_RGB, 8, 1, 0);
    write_png("palette4.png", 15, 10, PNG_COLOR_TYPE_PALETTE, 4, 0, 0);
    write_png("palette8-trns.png", 16, 12, PNG_COLOR_TYPE_PALETTE, 8, 1, 1);
    write_png("gray-alpha.png", 12, 12, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0);
    write_png("rgba16.png", 10, 8, PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 0);
    uint8_t app1[128];
    size_t app1_len = exif_segment(app1);
    write_jpeg("rgb.jpg", 24, 16, JCS_RGB, 3, JCS_YCbCr, 0, NULL, 0);
    write_jpeg("rgb-exif.jpg", 16, 16, JCS_RGB, 3, JCS_YCbCr, 0, app1, app1_len);
    write_jpeg("gray.jpg", 20, 14, JCS_GRAYSCALE, 1, JCS_GRAYSCALE, 0, NULL, 0);
    write_jpeg("progressive.jpg", 32, 24, JCS_RGB, 3, JCS_YCbCr, 1, NULL, 0);
    write_jpeg("cmyk.jpg", 16, 8, JCS_CMYK, 4, JCS_CMYK, 0, NULL, 0);
    write_jpeg("ycck.jpg", 16, 16, JCS_CMYK, 4, JCS_YCCK, 0, NULL, 0);
    for (int i = 2; i < argc; i++) shrink_real(argv[i], i - 2);
    return 0;
}
