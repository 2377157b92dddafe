/*
 * PNG decoding and probing with libpng 1.6. The header is parsed and checked
 * against the limits before libpng is even created; libpng then allocates
 * through the funnel, reads from memory with a callback that names the byte
 * where a truncated file ends, and reports errors by longjmp.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "img/internal.h"
#include "img/png_util.h"

/* Ancillary chunks (text, ICC profiles) are not needed to get pixels; this
 * caps what libpng will allocate to hold or inflate one of them. */
#define PNG_CHUNK_MAX ((png_alloc_size_t)8 << 20)

/* Known ancillary chunks to skip, NUL-separated as libpng wants them; the
 * APNG ones are listed for libpng builds that carry the APNG patch. */
static const png_byte ignored_chunks[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0"
                                         "sCAL\0sPLT\0sRGB\0sTER\0tEXt\0tIME\0zTXt\0acTL\0fcTL\0fdAT";

typedef struct png_ctx {
    const uint8_t *buf;
    size_t len, pos;
    img__png_err e; /* first: libpng's callbacks see it through the struct's address */
} png_ctx;

static void read_mem(png_structp png, png_bytep data, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) {
        snprintf(c->e.msg, sizeof c->e.msg, "file truncated at byte %zu (wanted %zu bytes at offset %zu)", c->len, n,
                 c->pos);
        png_error(png, c->e.msg);
    }
    memcpy(data, c->buf + c->pos, n);
    c->pos += n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

lupe_status img__probe_png(const uint8_t *buf, size_t len, lupe_img_info *out)
{
    /* Signature (8), chunk length (4), "IHDR" (4), 13 bytes of fields. */
    if (len < 8 + 8 + 13) return lupe_err(LUPE_EFORMAT, "png: file truncated at byte %zu, inside the header", len);
    const uint8_t *p = buf + 8;
    if (be32(p) != 13 || memcmp(p + 4, "IHDR", 4) != 0)
        return lupe_err(LUPE_EFORMAT, "png: first chunk at byte 8 is not a 13-byte IHDR");
    p += 8;
    uint32_t w = be32(p), h = be32(p + 4);
    int depth = p[8], ctype = p[9];
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
        return lupe_err(LUPE_EFORMAT, "png: IHDR size %ux%u is not valid", w, h);
    int c, ok;
    switch (ctype) {
    case 0: c = 1, ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16; break;
    case 2: c = 3, ok = depth == 8 || depth == 16; break;
    case 3: c = 3, ok = depth == 1 || depth == 2 || depth == 4 || depth == 8; break;
    case 4: c = 2, ok = depth == 8 || depth == 16; break;
    case 6: c = 4, ok = depth == 8 || depth == 16; break;
    default: c = 0, ok = 0;
    }
    if (!ok) return lupe_err(LUPE_EFORMAT, "png: IHDR colour type %d with bit depth %d is not valid", ctype, depth);
    out->format = LUPE_IMG_PNG;
    out->w = (int)w;
    out->h = (int)h;
    out->c = c;
    return LUPE_OK;
}

/* Walks the chunk list up to IEND without looking inside the chunks. libpng
 * allocates a buffer of the declared length for an ancillary chunk before
 * reading it, and only warns about lengths over the chunk limit (a "benign"
 * error), so a 40-byte file could make it allocate 2 GiB. Here every length
 * must fit in what is left of the file, which also rejects truncated files
 * before any decoding work. */
static lupe_status walk_chunks(const uint8_t *buf, size_t len)
{
    size_t pos = 8;
    for (;;) {
        if (len - pos < 12)
            return lupe_err(LUPE_EFORMAT, "png: file truncated at byte %zu, before the IEND chunk", len);
        uint32_t n = be32(buf + pos);
        const uint8_t *type = buf + pos + 4;
        if (n > 0x7fffffffu) return lupe_err(LUPE_EFORMAT, "png: chunk at byte %zu has a bad length %u", pos, n);
        if (n > len - pos - 12) {
            char name[5];
            for (int i = 0; i < 4; i++) {
                uint8_t ch = type[i] & 0xDF; /* chunk names are ASCII letters; anything else prints as ? */
                name[i] = ch >= 'A' && ch <= 'Z' ? (char)type[i] : '?';
            }
            name[4] = 0;
            return lupe_err(LUPE_EFORMAT,
                            "png: file truncated at byte %zu (chunk %s at byte %zu declares %u bytes, %zu remain)", len,
                            name, pos, n, len - pos - 12);
        }
        if (memcmp(type, "IEND", 4) == 0) return LUPE_OK;
        pos += (size_t)n + 12;
    }
}

/* Deflate cannot do better than about 1032:1 (a 258-byte match in 2 bits),
 * so a file too short to hold the pixel bytes its header announces is
 * lying; saying so here saves allocating the image before finding out.
 * Filter bytes and interlacing only add to the real size, so this is a lower
 * bound; double because w * h * 64 bits can pass 2^64 under loose limits. */
static lupe_status check_plausible(const uint8_t *buf, size_t len, const lupe_img_info *hdr)
{
    int depth = buf[8 + 8 + 8];
    int samples = buf[8 + 8 + 9] == 3 ? 1 : hdr->c; /* palette pixels are one index */
    double raw = (double)hdr->w * hdr->h * samples * depth / 8;
    if (raw / 1032 > (double)len + 1024)
        return lupe_err(LUPE_EFORMAT, "png: %zu bytes cannot hold the %dx%d image the header announces", len, hdr->w,
                        hdr->h);
    return LUPE_OK;
}

lupe_status img__decode_png(const uint8_t *buf, size_t len, int want_c, const lupe_img_limits *lim, lupe_img **out)
{
    png_ctx ctx = {.buf = buf, .len = len};
    png_structp png = NULL;
    png_infop info = NULL;
    /* Written after setjmp and read after longjmp, hence volatile. */
    lupe_img *volatile im = NULL;
    png_bytep *volatile rows = NULL;
    lupe_img_info hdr;
    volatile lupe_status st; /* written after setjmp, read after longjmp */

    /* Our own header check comes first, so an IHDR that claims a huge image
     * costs nothing: libpng is not even created. */
    st = img__probe_png(buf, len, &hdr);
    if (st) return st;
    st = img__check_size("png", (uint64_t)hdr.w, (uint64_t)hdr.h, lim);
    if (st) return st;
    st = check_plausible(buf, len, &hdr);
    if (st) return st;
    st = walk_chunks(buf, len);
    if (st) return st;

    png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &ctx.e, img__png_error, img__png_warning, &ctx.e, img__png_malloc,
                                   img__png_free);
    if (!png) return lupe_err(LUPE_ENOMEM, "png: cannot create the decoder");
    info = png_create_info_struct(png);
    if (!info) {
        st = lupe_err(LUPE_ENOMEM, "png: cannot create the decoder");
        goto out;
    }
    if (setjmp(png_jmpbuf(png))) {
        if (ctx.e.oom)
            st = lupe_err(LUPE_ENOMEM, "png: out of memory");
        else
            st = lupe_err(LUPE_EFORMAT, "png: %s", ctx.e.msg[0] ? ctx.e.msg : "decoding failed");
        goto out;
    }
    png_set_read_fn(png, &ctx, read_mem);
    png_set_user_limits(png, (png_uint_32)lim->max_side, (png_uint_32)lim->max_side);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MAX);
    /* Pixels need IHDR, PLTE, IDAT, IEND and tRNS only. Skipping the rest
     * unread keeps libpng's chunk parsers (text inflation, ICC profiles) out
     * of reach: up to 1000 zTXt chunks of 8 MiB inflated each would
     * otherwise be legal. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks, (int)(sizeof ignored_chunks / 5));
    png_read_info(png, info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
    if ((int)w != hdr.w || (int)h != hdr.h) {
        st = lupe_err(LUPE_EINTERNAL, "png: libpng read %ux%u, the header says %dx%d", w, h, hdr.w, hdr.h);
        goto out;
    }
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    int src_gray = !(ctype & PNG_COLOR_MASK_COLOR);
    int out_c = want_c ? want_c : (src_gray ? 1 : 3);
    if (src_gray && out_c == 3) png_set_gray_to_rgb(png);
    (void)png_set_interlace_handling(png); /* Adam7: png_read_image runs the passes */
    png_read_update_info(png, info);

    /* Colour to gray is done by us afterwards with the same luma as the JPEG
     * path, rather than by libpng with its own weights and gamma handling. */
    int ch = src_gray ? out_c : 3;
    if (png_get_channels(png, info) != ch || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * ch) {
        st = lupe_err(LUPE_EINTERNAL, "png: unexpected row layout after transforms (%d channels, %d bits)",
                      png_get_channels(png, info), png_get_bit_depth(png, info));
        goto out;
    }
    if (!(im = lupe_img_new((int)w, (int)h, ch)) || !(rows = lupe_malloc((size_t)h * sizeof *rows))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = im->data + (size_t)y * w * ch;
    png_read_image(png, rows);
    /* Reads to IEND, so a file cut after the image data is still caught. */
    png_read_end(png, NULL);

    if (ch != out_c) {
        lupe_img *conv = lupe_img_to_channels(im, out_c);
        if (!conv) {
            st = LUPE_ENOMEM;
            goto out;
        }
        lupe_img_free(im);
        im = conv;
    }
out:
    png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    lupe_free(rows);
    if (st) {
        lupe_img_free(im);
        return st;
    }
    *out = im;
    return LUPE_OK;
}
