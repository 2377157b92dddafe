/*
 * Images from and to files: load reads with the byte cap then decodes by
 * content; save picks the encoder from the file name's extension and writes
 * atomically, so a crash never leaves half an image under the final name.
 */
#include <string.h>
#include <strings.h>

#include "img/internal.h"

/* Quality for lupe_img_save: high enough that previews and crops saved for
 * labelling do not gain visible artefacts. */
#define SAVE_JPEG_QUALITY 95

lupe_status lupe_img_load(const char *path, int want_c, const lupe_img_limits *lim, lupe_img **out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!out) return lupe_err(LUPE_EARG, "load: no output pointer");
    *out = NULL;
    if (!path) return lupe_err(LUPE_EARG, "load: no path");
    lupe_img_limits d = lupe_img_default_limits();
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : d.max_bytes;
    lupe_status st = lupe_file_read(path, max_bytes, &buf, &len);
    if (!st) st = lupe_img_decode(buf, len, want_c, lim, out);
    lupe_free(buf);
    if (st) return lupe_err_ctx(st, "loading image %s", path);
    return LUPE_OK;
}

static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

lupe_status lupe_img_save(const lupe_img *im, const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st;
    if (!path) return lupe_err(LUPE_EARG, "save: no path");
    if (has_ext(path, ".jpg") || has_ext(path, ".jpeg"))
        st = lupe_img_encode_jpeg(im, SAVE_JPEG_QUALITY, &buf, &len);
    else if (has_ext(path, ".png"))
        st = lupe_img_encode_png(im, &buf, &len);
    else
        st = lupe_err(LUPE_EARG, "the extension does not say JPEG (.jpg, .jpeg) or PNG (.png)");
    if (!st) st = lupe_file_write_atomic(path, buf, len);
    lupe_free(buf);
    if (st) return lupe_err_ctx(st, "saving image %s", path);
    return LUPE_OK;
}
