/*
 * Resizing. Both modes are separable: each axis gets a table saying which
 * source samples, with which weights, make each output sample, and one loop
 * applies the two tables. Bilinear uses half-pixel centres like OpenCV's
 * INTER_LINEAR; area averages exact boxes with fractional coverage when
 * shrinking and falls back to bilinear on an axis that grows.
 */
#include <math.h>
#include <string.h>

#include "img/internal.h"

/* Taps of output sample i are idx[first[i] .. first[i+1]) with weights wt[]
 * that sum to 1. */
typedef struct axis_map {
    size_t *first;
    int *idx;
    float *wt;
} axis_map;

static void axis_free(axis_map *m)
{
    lupe_free(m->first);
    lupe_free(m->idx);
    lupe_free(m->wt);
    memset(m, 0, sizeof *m);
}

static lupe_status axis_alloc(axis_map *m, int dn, size_t taps)
{
    m->first = lupe_malloc(((size_t)dn + 1) * sizeof *m->first);
    m->idx = lupe_malloc(taps * sizeof *m->idx);
    m->wt = lupe_malloc(taps * sizeof *m->wt);
    if (!m->first || !m->idx || !m->wt) {
        axis_free(m);
        return LUPE_ENOMEM;
    }
    return LUPE_OK;
}

/* Output sample i sits at source coordinate (i + 0.5) * sn/dn - 0.5; outside
 * the first and last sample centres the edge sample is repeated. */
static lupe_status axis_bilinear(axis_map *m, int sn, int dn)
{
    if (axis_alloc(m, dn, (size_t)dn * 2)) return LUPE_ENOMEM;
    double scale = (double)sn / dn;
    size_t t = 0;
    for (int i = 0; i < dn; i++) {
        m->first[i] = t;
        double s = (i + 0.5) * scale - 0.5;
        if (s < 0) s = 0;
        int i0 = (int)s;
        double f = s - i0;
        if (i0 >= sn - 1) i0 = sn - 1, f = 0;
        m->idx[t] = i0;
        m->wt[t++] = (float)(1 - f);
        if (f > 0) {
            m->idx[t] = i0 + 1;
            m->wt[t++] = (float)f;
        }
    }
    m->first[dn] = t;
    return LUPE_OK;
}

/* Box filter for shrinking, in exact integers: measured in units of 1/dn of
 * a source sample, source sample k covers [k*dn, (k+1)*dn) and output sample
 * i covers [i*sn, (i+1)*sn), so each weight is overlap / sn. */
static lupe_status axis_area(axis_map *m, int sn, int dn)
{
    /* Each output box touches at most its share of sources plus one. */
    if (axis_alloc(m, dn, (size_t)sn + (size_t)dn)) return LUPE_ENOMEM;
    size_t t = 0;
    for (int i = 0; i < dn; i++) {
        m->first[i] = t;
        int64_t a = (int64_t)i * sn, b = a + sn;
        for (int64_t k = a / dn; k < sn && k * dn < b; k++) {
            int64_t lo = k * dn > a ? k * dn : a, hi = (k + 1) * dn < b ? (k + 1) * dn : b;
            if (hi <= lo) continue;
            m->idx[t] = (int)k;
            m->wt[t++] = (float)((double)(hi - lo) / sn);
        }
    }
    m->first[dn] = t;
    return LUPE_OK;
}

static lupe_status axis_build(axis_map *m, int sn, int dn, lupe_resize_mode mode)
{
    if (mode == LUPE_RESIZE_AREA && dn < sn) return axis_area(m, sn, dn);
    return axis_bilinear(m, sn, dn);
}

lupe_status lupe_img_resize(const lupe_img *src, int w, int h, lupe_resize_mode mode, lupe_img **out)
{
    axis_map mx = {0}, my = {0};
    float *acc = NULL, *hrow = NULL;
    lupe_img *dst = NULL;
    lupe_status st = LUPE_OK;

    if (!out) return lupe_err(LUPE_EARG, "resize: no output pointer");
    *out = NULL;
    if (!img__valid(src)) return lupe_err(LUPE_EARG, "resize: not a valid image");
    if (w <= 0 || h <= 0) return lupe_err(LUPE_EARG, "resize: target size %dx%d is not valid", w, h);
    if (mode != LUPE_RESIZE_BILINEAR && mode != LUPE_RESIZE_AREA)
        return lupe_err(LUPE_EARG, "resize: unknown mode %d", (int)mode);
    if (w == src->w && h == src->h) {
        *out = lupe_img_clone(src);
        return *out ? LUPE_OK : LUPE_ENOMEM;
    }
    int c = src->c;
    if (axis_build(&mx, src->w, w, mode) || axis_build(&my, src->h, h, mode) || !(dst = lupe_img_new(w, h, c)) ||
        !(acc = lupe_malloc((size_t)w * c * sizeof *acc)) || !(hrow = lupe_malloc((size_t)w * c * sizeof *hrow))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int y = 0; y < h; y++) {
        memset(acc, 0, (size_t)w * c * sizeof *acc);
        for (size_t ty = my.first[y]; ty < my.first[y + 1]; ty++) {
            const uint8_t *srow = src->data + (size_t)my.idx[ty] * src->w * c;
            float wy = my.wt[ty];
            /* Horizontal pass of one source row, then weighted into acc. */
            for (int x = 0; x < w; x++) {
                float s[3] = {0, 0, 0};
                for (size_t tx = mx.first[x]; tx < mx.first[x + 1]; tx++) {
                    const uint8_t *p = srow + (size_t)mx.idx[tx] * c;
                    for (int k = 0; k < c; k++) s[k] += mx.wt[tx] * p[k];
                }
                for (int k = 0; k < c; k++) hrow[x * c + k] = s[k];
            }
            for (size_t i = 0; i < (size_t)w * c; i++) acc[i] += wy * hrow[i];
        }
        uint8_t *d = dst->data + (size_t)y * w * c;
        for (size_t i = 0; i < (size_t)w * c; i++) {
            float v = floorf(acc[i] + 0.5f);
            d[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    *out = dst;
    dst = NULL;
out:
    axis_free(&mx);
    axis_free(&my);
    lupe_free(acc);
    lupe_free(hrow);
    lupe_img_free(dst);
    return st;
}
