/*
 * Reference softmax over the last axis of a rows x cols matrix (the
 * distribution focal loss takes it over reg_max bins), stable for any input
 * scale, with its gradient computed from the output.
 */
#include <assert.h>
#include <math.h>

#include "lupe/engine.h"

void eng_softmax_forward_ref(float *out, const float *in, size_t rows, int cols)
{
    assert(out && in && cols > 0);
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * (size_t)cols;
        float *y = out + r * (size_t)cols;
        /* Subtracting the row maximum keeps exp() in (0, 1]: no overflow,
         * and at least one term is 1 so the sum is never 0. */
        float mx = x[0];
        for (int j = 1; j < cols; j++)
            if (x[j] > mx) mx = x[j];
        double s = 0.0;
        for (int j = 0; j < cols; j++) s += exp((double)x[j] - mx);
        for (int j = 0; j < cols; j++) y[j] = (float)(exp((double)x[j] - mx) / s);
    }
}

/* dx_j = y_j * (dy_j - sum_k dy_k y_k). */
void eng_softmax_backward_ref(float *din, const float *dout, const float *out, size_t rows, int cols)
{
    assert(din && dout && out && cols > 0);
    for (size_t r = 0; r < rows; r++) {
        const size_t o = r * (size_t)cols;
        double dot = 0.0;
        for (int j = 0; j < cols; j++) dot += (double)dout[o + j] * out[o + j];
        for (int j = 0; j < cols; j++) din[o + j] += (float)(out[o + j] * (dout[o + j] - dot));
    }
}
