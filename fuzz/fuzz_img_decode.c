/*
 * libFuzzer target for the image parsers: decode (JPEG and PNG, with small
 * limits so a lying header cannot eat the fuzzer's memory), probe and EXIF
 * time. A decoded image is also round-tripped through the PNG encoder, which
 * must give back the same pixels, and the funnel must be empty afterwards.
 * Built and run by scripts/fuzz.
 */
#include <stdlib.h>
#include <string.h>

#include "lupe/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lupe_img_limits lim = lupe_img_default_limits();
    lim.max_side = 8192;
    lim.max_pixels = 4u << 20;
    lim.max_bytes = 4u << 20;
    /* The channel request changes code paths (gray from colour, colour from
     * gray, CMYK to either); take it from the size so inputs stay raw bytes. */
    static const int wants[3] = {0, 1, 3};
    int want_c = wants[size % 3];

    lupe_img *im = NULL, *back = NULL;
    if (lupe_img_decode(data, size, want_c, &lim, &im) == LUPE_OK) {
        if (!im || im->w <= 0 || im->h <= 0 || (want_c && im->c != want_c)) abort();
        if (lupe_alloc_size(im->data) != (size_t)im->w * im->h * im->c) abort();
        /* Small images only: the round trip is an oracle, not the target. */
        if ((size_t)im->w * im->h <= 256 * 256) {
            uint8_t *png = NULL;
            size_t n = 0;
            if (lupe_img_encode_png(im, &png, &n) != LUPE_OK) abort();
            if (lupe_img_decode(png, n, 0, NULL, &back) != LUPE_OK) abort();
            if (back->w != im->w || back->h != im->h || back->c != im->c ||
                memcmp(back->data, im->data, (size_t)im->w * im->h * im->c) != 0)
                abort();
            lupe_free(png);
            lupe_img_free(back);
        }
        lupe_img_free(im);
    } else if (im) {
        abort(); /* an error must not hand out an image */
    }

    lupe_img_info info;
    (void)lupe_img_probe(data, size, &info);
    int64_t t;
    (void)lupe_img_exif_time(data, size, &t);

    lupe_alloc_stats s;
    lupe_alloc_get_stats(&s);
    if (s.live_bytes != 0) abort(); /* a funnel leak on some path */
    return 0;
}
