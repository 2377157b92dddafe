/*
 * Reference channel concatenation, split and slice over NHWC rows (m = N*H*W
 * rows): concat lays the inputs' channels side by side in order, split cuts
 * them apart again (a slice is one piece), and each one's backward pass is
 * the other's forward, added.
 */
#include <assert.h>
#include <string.h>

#include "lupe/engine.h"

static size_t total_channels(const int *cs, int k)
{
    size_t t = 0;
    for (int i = 0; i < k; i++) {
        assert(cs[i] >= 0);
        t += (size_t)cs[i];
    }
    return t;
}

void eng_concat_forward_ref(float *out, const float *const *ins, const int *cs, int k, size_t m)
{
    assert(out && ins && cs && k > 0);
    const size_t ct = total_channels(cs, k);
    for (size_t r = 0; r < m; r++) {
        size_t off = 0;
        for (int i = 0; i < k; i++) {
            memcpy(out + r * ct + off, ins[i] + r * (size_t)cs[i], (size_t)cs[i] * sizeof(float));
            off += (size_t)cs[i];
        }
    }
}

/* A NULL dins[i] is an input that needs no gradient. */
void eng_concat_backward_ref(float *const *dins, const int *cs, int k, const float *dout, size_t m)
{
    assert(dins && cs && dout && k > 0);
    const size_t ct = total_channels(cs, k);
    for (size_t r = 0; r < m; r++) {
        size_t off = 0;
        for (int i = 0; i < k; i++) {
            if (dins[i])
                for (int j = 0; j < cs[i]; j++) dins[i][r * (size_t)cs[i] + j] += dout[r * ct + off + j];
            off += (size_t)cs[i];
        }
    }
}

void eng_split_forward_ref(float *const *outs, const int *cs, int k, const float *in, size_t m)
{
    assert(outs && cs && in && k > 0);
    const size_t ct = total_channels(cs, k);
    for (size_t r = 0; r < m; r++) {
        size_t off = 0;
        for (int i = 0; i < k; i++) {
            memcpy(outs[i] + r * (size_t)cs[i], in + r * ct + off, (size_t)cs[i] * sizeof(float));
            off += (size_t)cs[i];
        }
    }
}

/* A NULL douts[i] is a slice nobody used: it contributes no gradient. */
void eng_split_backward_ref(float *din, const float *const *douts, const int *cs, int k, size_t m)
{
    assert(din && douts && cs && k > 0);
    const size_t ct = total_channels(cs, k);
    for (size_t r = 0; r < m; r++) {
        size_t off = 0;
        for (int i = 0; i < k; i++) {
            if (douts[i])
                for (int j = 0; j < cs[i]; j++) din[r * ct + off + j] += douts[i][r * (size_t)cs[i] + j];
            off += (size_t)cs[i];
        }
    }
}

void eng_slice_forward_ref(float *out, const float *in, size_t m, int ci, int c0, int co)
{
    assert(out && in && ci > 0 && c0 >= 0 && co > 0 && c0 + co <= ci);
    for (size_t r = 0; r < m; r++)
        for (int j = 0; j < co; j++) out[r * (size_t)co + j] = in[r * (size_t)ci + c0 + j];
}

void eng_slice_backward_ref(float *din, const float *dout, size_t m, int ci, int c0, int co)
{
    assert(din && dout && ci > 0 && c0 >= 0 && co > 0 && c0 + co <= ci);
    for (size_t r = 0; r < m; r++)
        for (int j = 0; j < co; j++) din[r * (size_t)ci + c0 + j] += dout[r * (size_t)co + j];
}
