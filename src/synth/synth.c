/*
 * synth_tag: one synthetic tag image from (seed, index). Draws the scene,
 * plants the defects, then adds sensor noise and rounds to bytes, keeping
 * for each defect the box of the pixels whose bytes it really changed.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "synth/synth_internal.h"

static const char *const class_names[SYNTH_NCLASSES] = {"scratch", "dent", "stain"};

void synth_cfg_default(synth_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->w = 450;
    c->h = 300;
    c->classes = 1 << SYNTH_SCRATCH;
    c->min_defects = 1;
    c->max_defects = 5;
    c->empty_fraction = 0.1f;
    c->engrave = 0.25f;
}

lupe_status synth_cfg_check(const synth_cfg *c)
{
    if (!c) return lupe_err(LUPE_EARG, "synthetic tags: no settings");
    if (c->w < 64 || c->h < 64 || c->w > 8192 || c->h > 8192)
        return lupe_err(LUPE_EARG, "synthetic tags: size %dx%d is outside 64x64 .. 8192x8192", c->w, c->h);
    if (c->classes <= 0 || c->classes >= (1 << SYNTH_NCLASSES))
        return lupe_err(LUPE_EARG, "synthetic tags: class mask %d names no class or an unknown one", c->classes);
    if (c->min_defects < 0 || c->max_defects < c->min_defects || c->max_defects > SYNTH_MAX_DEFECTS)
        return lupe_err(LUPE_EARG, "synthetic tags: defects per image %d..%d must satisfy 0 <= min <= max <= %d",
                        c->min_defects, c->max_defects, SYNTH_MAX_DEFECTS);
    if (!(c->empty_fraction >= 0 && c->empty_fraction <= 1))
        return lupe_err(LUPE_EARG, "synthetic tags: empty_fraction %g is outside [0, 1]", (double)c->empty_fraction);
    if (!(c->engrave >= 0 && c->engrave <= 1))
        return lupe_err(LUPE_EARG, "synthetic tags: engrave %g is outside [0, 1]", (double)c->engrave);
    return LUPE_OK;
}

const char *synth_class_name(int cls)
{
    return cls >= 0 && cls < SYNTH_NCLASSES ? class_names[cls] : NULL;
}

int synth_class_from_name(const char *name)
{
    for (int k = 0; name && k < SYNTH_NCLASSES; k++)
        if (strcmp(name, class_names[k]) == 0) return k;
    return -1;
}

static inline uint8_t to_byte(float v)
{
    return v <= 0.f ? 0 : v >= 255.f ? 255 : (uint8_t)(v + 0.5f);
}

/* Sensor noise, one draw per pixel in raster order whether or not there are
 * defects, so the image with and without them differ only where they are. */
static inline float pixel_noise(synth_rng *r)
{
    uint64_t z = synth__rng_next(r);
    uint32_t s = (uint32_t)(z & 0xffff) + (uint32_t)((z >> 16) & 0xffff) + (uint32_t)((z >> 32) & 0xffff) +
                 (uint32_t)(z >> 48);
    return ((float)s * (1.f / 65536.f) - 2.f) * 1.7320508f;
}

lupe_status synth__render(const synth_cfg *c, uint64_t seed, uint64_t index, lupe_img **out, lupe_img **clean,
                          det_box *boxes, int max, int *nbox)
{
    lupe_status st = LUPE_OK;
    synth_scene *s = NULL;
    lupe_img *im = NULL, *cl = NULL;
    void *block = NULL;
    if (out) *out = NULL;
    if (clean) *clean = NULL;
    if (nbox) *nbox = 0;
    if (!out || !nbox || (max > 0 && !boxes)) return lupe_err(LUPE_EARG, "synth_tag: NULL argument");
    if ((st = synth_cfg_check(c))) return st;
    if (max < c->max_defects)
        return lupe_err(LUPE_EARG, "synth_tag: room for %d boxes, but up to %d defects are planted", max,
                        c->max_defects);

    int w = c->w, h = c->h;
    size_t n = (size_t)w * h, line = (size_t)(w > h ? w : h);
    /* One block: g, mask, acc, mag, tmp, line (floats), then own (bytes). */
    size_t floats = 5 * n + line;
    if (!(block = lupe_malloc(floats * sizeof(float) + n))) {
        st = lupe_err_ctx(LUPE_ENOMEM, "synthetic tag %dx%d", w, h);
        goto out;
    }
    memset(block, 0, floats * sizeof(float));
    synth_canvas cv = {.w = w, .h = h};
    float *f = block;
    cv.g = f, cv.mask = f + n, cv.acc = f + 2 * n, cv.mag = f + 3 * n, cv.tmp = f + 4 * n, cv.line = f + 5 * n;
    cv.own = (uint8_t *)(f + floats);
    memset(cv.own, SYNTH_NO_OWNER, n);

    if ((st = synth__scene_new(c, seed, index, &s))) goto out;
    synth_rng rm, rd, rp;
    synth__rng_seed(&rm, seed, index, SYNTH_STREAM_MARKS);
    synth__rng_seed(&rd, seed, index, SYNTH_STREAM_DEFECTS);
    synth__rng_seed(&rp, seed, index, SYNTH_STREAM_PIXELS);
    synth__scene_render(s, &cv, &rm);
    int classes[SYNTH_MAX_DEFECTS];
    int planted = synth__plant(c, s, &cv, &rd, classes);

    if (!(im = lupe_img_new(w, h, 3)) || (clean && !(cl = lupe_img_new(w, h, 3)))) {
        st = lupe_err_ctx(LUPE_ENOMEM, "synthetic tag %dx%d", w, h);
        goto out;
    }
    int bx0[SYNTH_MAX_DEFECTS], by0[SYNTH_MAX_DEFECTS], bx1[SYNTH_MAX_DEFECTS], by1[SYNTH_MAX_DEFECTS];
    for (int k = 0; k < planted; k++) bx0[k] = by0[k] = INT_MAX, bx1[k] = by1[k] = -1;
    float tr, tb, sd = synth__scene_noise_sd(s);
    synth__scene_tint(s, &tr, &tb);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float base = cv.g[i] + sd * pixel_noise(&rp), v = base + cv.acc[i];
            uint8_t *p = im->data + 3 * i;
            p[0] = to_byte(v * tr), p[1] = to_byte(v), p[2] = to_byte(v * tb);
            if (cv.own[i] == SYNTH_NO_OWNER && !cl) continue;
            uint8_t q[3] = {to_byte(base * tr), to_byte(base), to_byte(base * tb)};
            if (cl) memcpy(cl->data + 3 * i, q, 3);
            int k = cv.own[i];
            if (k == SYNTH_NO_OWNER || (p[0] == q[0] && p[1] == q[1] && p[2] == q[2])) continue;
            if (x < bx0[k]) bx0[k] = x;
            if (x > bx1[k]) bx1[k] = x;
            if (y < by0[k]) by0[k] = y;
            if (y > by1[k]) by1[k] = y;
        }
    }
    /* A defect that changed no byte after all (rounding, saturation) has
     * nothing to box and is left out. */
    int nb = 0;
    for (int k = 0; k < planted; k++) {
        if (bx1[k] < 0) continue;
        det_box b = {0, classes[k], (float)bx0[k], (float)by0[k], (float)(bx1[k] + 1), (float)(by1[k] + 1)};
        boxes[nb++] = b;
    }
    *nbox = nb;
    *out = im, im = NULL;
    if (clean) *clean = cl, cl = NULL;
out:
    synth__scene_free(s);
    lupe_free(block);
    lupe_img_free(im);
    lupe_img_free(cl);
    if (st) lupe_err_ctx(st, "synthetic tag %llu of seed %llu", (unsigned long long)index, (unsigned long long)seed);
    return st;
}

lupe_status synth_tag(const synth_cfg *c, uint64_t seed, uint64_t index, lupe_img **out, det_box *boxes, int max,
                      int *nbox)
{
    return synth__render(c, seed, index, out, NULL, boxes, max, nbox);
}
