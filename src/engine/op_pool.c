/*
 * Reference max pooling (k x k, stride 1, padding k/2, as in SPPF) and
 * nearest-neighbour x2 upsampling over NHWC activations, with gradients.
 */
#include <assert.h>
#include <math.h>

#include "lupe/engine.h"

/* Index into in [n, h, w, c] of the window maximum for output (b, y, x, ch).
 * Padding acts as -inf, so only in-bounds positions compete. Ties go to the
 * FIRST maximum in scan order (ky, then kx): strict '>' never replaces an
 * equal value. A NaN wins and stays, so NaNs propagate as in PyTorch. */
static size_t window_argmax(const float *in, int b, int y, int x, int ch, int h, int w, int c, int k)
{
    const int r = k / 2;
    const int y0 = y - r < 0 ? 0 : y - r, y1 = y + r >= h ? h - 1 : y + r;
    const int x0 = x - r < 0 ? 0 : x - r, x1 = x + r >= w ? w - 1 : x + r;
    size_t best = (((size_t)b * h + y0) * w + x0) * c + ch;
    for (int iy = y0; iy <= y1; iy++)
        for (int ix = x0; ix <= x1; ix++) {
            const size_t at = (((size_t)b * h + iy) * w + ix) * c + ch;
            const float v = in[at], m = in[best];
            if (!isnan(m) && (v > m || isnan(v))) best = at;
        }
    return best;
}

void eng_maxpool_forward_ref(float *out, const float *in, int n, int h, int w, int c, int k)
{
    /* An even k with padding k/2 would not give a same-size output. */
    assert(out && in && n > 0 && h > 0 && w > 0 && c > 0 && k > 0 && k % 2 == 1);
    for (int b = 0; b < n; b++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    out[(((size_t)b * h + y) * w + x) * c + ch] = in[window_argmax(in, b, y, x, ch, h, w, c, k)];
}

/* Each output's gradient goes to the one input the forward pass picked. */
void eng_maxpool_backward_ref(float *din, const float *dout, const float *in, int n, int h, int w, int c, int k)
{
    assert(din && dout && in && n > 0 && h > 0 && w > 0 && c > 0 && k > 0 && k % 2 == 1);
    for (int b = 0; b < n; b++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    din[window_argmax(in, b, y, x, ch, h, w, c, k)] += dout[(((size_t)b * h + y) * w + x) * c + ch];
}

void eng_upsample2_forward_ref(float *out, const float *in, int n, int h, int w, int c)
{
    assert(out && in && n > 0 && h > 0 && w > 0 && c > 0);
    const int oh = 2 * h, ow = 2 * w;
    for (int b = 0; b < n; b++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int ch = 0; ch < c; ch++)
                    out[(((size_t)b * oh + y) * ow + x) * c + ch] = in[(((size_t)b * h + y / 2) * w + x / 2) * c + ch];
}

/* Each input pixel was copied to a 2x2 block: its gradient is the block's sum. */
void eng_upsample2_backward_ref(float *din, const float *dout, int n, int h, int w, int c)
{
    assert(din && dout && n > 0 && h > 0 && w > 0 && c > 0);
    const int oh = 2 * h, ow = 2 * w;
    for (int b = 0; b < n; b++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) {
                    double s = 0.0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            s += dout[(((size_t)b * oh + 2 * y + dy) * ow + 2 * x + dx) * c + ch];
                    din[(((size_t)b * h + y) * w + x) * c + ch] += (float)s;
                }
}
