/*
 * Reference 2-D convolution over NHWC activations with OHWI weights, zero
 * padding and groups: the shape check, the forward pass and the gradients
 * for input, weights and bias. Slow on purpose; fast paths are tested
 * against these loops.
 */
#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "lupe/engine.h"

/* Elements in a tensor of these dims, or 0 if the count does not fit the
 * byte size of a float buffer (so the caller can refuse it). */
static size_t count4(long long a, long long b, long long c, long long d)
{
    const size_t lim = SIZE_MAX / sizeof(float);
    size_t n = 1;
    const long long v[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        if ((size_t)v[i] > lim / n) return 0;
        n *= (size_t)v[i];
    }
    return n;
}

lupe_status eng_conv_dims_init(eng_conv_dims *d, int n, int h, int w, int c, int o, int kh, int kw, int stride,
                               int pad, int groups)
{
    assert(d);
    memset(d, 0, sizeof *d);
    const struct {
        const char *name;
        int v;
    } pos[] = {{"batch n", n}, {"height h", h}, {"width w", w}, {"input channels c", c}, {"output channels o", o},
               {"kernel height kh", kh}, {"kernel width kw", kw}, {"stride", stride}, {"groups", groups}};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0) return lupe_err(LUPE_EARG, "conv: %s must be positive, got %d", pos[i].name, pos[i].v);
    if (pad < 0) return lupe_err(LUPE_EARG, "conv: padding must not be negative, got %d", pad);
    if (c % groups) return lupe_err(LUPE_EARG, "conv: groups %d does not divide input channels %d", groups, c);
    if (o % groups) return lupe_err(LUPE_EARG, "conv: groups %d does not divide output channels %d", groups, o);
    /* In long long so that a huge pad cannot overflow int; the ops index
     * padded coordinates in int, so the padded size must fit one. */
    const long long ph = (long long)h + 2LL * pad, pw = (long long)w + 2LL * pad;
    if (ph > INT_MAX || pw > INT_MAX)
        return lupe_err(LUPE_EARG, "conv: padded input %lldx%lld is too large (pad %d)", ph, pw, pad);
    if (kh > ph || kw > pw)
        return lupe_err(LUPE_EARG, "conv: kernel %dx%d does not fit the padded input %lldx%lld (%dx%d, pad %d)", kh, kw,
                        ph, pw, h, w, pad);
    const long long oh = (ph - kh) / stride + 1, ow = (pw - kw) / stride + 1;
    if (!count4(n, h, w, c) || !count4(n, oh, ow, o) || !count4(o, kh, kw, c / groups))
        return lupe_err(LUPE_EARG, "conv: tensor sizes overflow (n %d, %dx%d, c %d, o %d, kernel %dx%d)", n, h, w, c, o,
                        kh, kw);
    *d = (eng_conv_dims){.n = n, .h = h, .w = w, .c = c, .o = o, .kh = kh, .kw = kw, .sh = stride, .sw = stride,
                         .ph = pad, .pw = pad, .groups = groups, .oh = (int)oh, .ow = (int)ow};
    return LUPE_OK;
}

/* Index helpers: NHWC activations and OHWI weights, in size_t so products
 * of large dims do not overflow int. */
static size_t in_at(const eng_conv_dims *d, int n, int y, int x, int c)
{
    return (((size_t)n * d->h + y) * d->w + x) * d->c + c;
}

static size_t out_at(const eng_conv_dims *d, int n, int y, int x, int o)
{
    return (((size_t)n * d->oh + y) * d->ow + x) * d->o + o;
}

static size_t w_at(const eng_conv_dims *d, int o, int ky, int kx, int i)
{
    return (((size_t)o * d->kh + ky) * d->kw + kx) * (d->c / d->groups) + i;
}

void eng_conv2d_forward_ref(float *out, const float *in, const float *w, const float *b, const eng_conv_dims *d)
{
    assert(out && in && w && d && d->groups > 0);
    const int cg = d->c / d->groups, og = d->o / d->groups;
    for (int n = 0; n < d->n; n++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++)
                for (int o = 0; o < d->o; o++) {
                    const int c0 = (o / og) * cg; /* first input channel of o's group */
                    double s = b ? b[o] : 0.0;
                    for (int ky = 0; ky < d->kh; ky++) {
                        const int iy = oy * d->sh - d->ph + ky;
                        if (iy < 0 || iy >= d->h) continue; /* zero padding */
                        for (int kx = 0; kx < d->kw; kx++) {
                            const int ix = ox * d->sw - d->pw + kx;
                            if (ix < 0 || ix >= d->w) continue;
                            const float *pi = in + in_at(d, n, iy, ix, c0);
                            const float *pw = w + w_at(d, o, ky, kx, 0);
                            for (int i = 0; i < cg; i++) s += (double)pi[i] * pw[i];
                        }
                    }
                    out[out_at(d, n, oy, ox, o)] = (float)s;
                }
}

/* din: each input element gathers from the outputs whose window covers it,
 * so every element's gradient is one double sum added once. */
static void backward_input(float *din, const float *dout, const float *w, const eng_conv_dims *d)
{
    const int cg = d->c / d->groups, og = d->o / d->groups;
    for (int n = 0; n < d->n; n++)
        for (int iy = 0; iy < d->h; iy++)
            for (int ix = 0; ix < d->w; ix++)
                for (int c = 0; c < d->c; c++) {
                    const int g = c / cg, i = c % cg;
                    double s = 0.0;
                    for (int ky = 0; ky < d->kh; ky++) {
                        /* iy = oy*sh - ph + ky  =>  oy = (iy + ph - ky) / sh when it divides. */
                        const int ty = iy + d->ph - ky;
                        if (ty < 0 || ty % d->sh) continue;
                        const int oy = ty / d->sh;
                        if (oy >= d->oh) continue;
                        for (int kx = 0; kx < d->kw; kx++) {
                            const int tx = ix + d->pw - kx;
                            if (tx < 0 || tx % d->sw) continue;
                            const int ox = tx / d->sw;
                            if (ox >= d->ow) continue;
                            const float *pd = dout + out_at(d, n, oy, ox, 0);
                            for (int o = g * og; o < (g + 1) * og; o++)
                                s += (double)pd[o] * w[w_at(d, o, ky, kx, i)];
                        }
                    }
                    din[in_at(d, n, iy, ix, c)] += (float)s;
                }
}

static void backward_weights(float *dw, const float *dout, const float *in, const eng_conv_dims *d)
{
    const int cg = d->c / d->groups, og = d->o / d->groups;
    for (int o = 0; o < d->o; o++) {
        const int c0 = (o / og) * cg;
        for (int ky = 0; ky < d->kh; ky++)
            for (int kx = 0; kx < d->kw; kx++)
                for (int i = 0; i < cg; i++) {
                    double s = 0.0;
                    for (int n = 0; n < d->n; n++)
                        for (int oy = 0; oy < d->oh; oy++) {
                            const int iy = oy * d->sh - d->ph + ky;
                            if (iy < 0 || iy >= d->h) continue;
                            for (int ox = 0; ox < d->ow; ox++) {
                                const int ix = ox * d->sw - d->pw + kx;
                                if (ix < 0 || ix >= d->w) continue;
                                s += (double)dout[out_at(d, n, oy, ox, o)] * in[in_at(d, n, iy, ix, c0 + i)];
                            }
                        }
                    dw[w_at(d, o, ky, kx, i)] += (float)s;
                }
    }
}

static void backward_bias(float *db, const float *dout, const eng_conv_dims *d)
{
    const size_t rows = (size_t)d->n * d->oh * d->ow;
    for (int o = 0; o < d->o; o++) {
        double s = 0.0;
        for (size_t r = 0; r < rows; r++) s += dout[r * d->o + o];
        db[o] += (float)s;
    }
}

void eng_conv2d_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                             const eng_conv_dims *d)
{
    assert(dw && dout && in && w && d && d->groups > 0);
    if (din) backward_input(din, dout, w, d);
    backward_weights(dw, dout, in, d);
    if (db) backward_bias(db, dout, d);
}
