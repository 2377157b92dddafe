/*
 * Reference element-wise ops: SiLU, sigmoid and addition with their
 * gradients. Forward passes may run in place (out == in); backward passes
 * add into din.
 */
#include <assert.h>

#include "engine/op_sigmoid.h"
#include "lupe/engine.h"

void eng_silu_forward_ref(float *out, const float *in, size_t n)
{
    assert(n == 0 || (out && in));
    for (size_t i = 0; i < n; i++) out[i] = (float)(in[i] * eng__sigmoid(in[i]));
}

/* d/dx x*s(x) = s(x) + x*s(x)*(1 - s(x)) = s(x) * (1 + x*(1 - s(x))). */
void eng_silu_backward_ref(float *din, const float *dout, const float *in, size_t n)
{
    assert(n == 0 || (din && dout && in));
    for (size_t i = 0; i < n; i++) {
        const double x = in[i], s = eng__sigmoid(x);
        din[i] += (float)(dout[i] * s * (1.0 + x * (1.0 - s)));
    }
}

void eng_sigmoid_forward_ref(float *out, const float *in, size_t n)
{
    assert(n == 0 || (out && in));
    for (size_t i = 0; i < n; i++) out[i] = (float)eng__sigmoid(in[i]);
}

/* From the output, s' = s*(1 - s), so the input need not be kept. */
void eng_sigmoid_backward_ref(float *din, const float *dout, const float *out, size_t n)
{
    assert(n == 0 || (din && dout && out));
    for (size_t i = 0; i < n; i++) {
        const double s = out[i];
        din[i] += (float)(dout[i] * s * (1.0 - s));
    }
}

void eng_add_forward_ref(float *out, const float *a, const float *b, size_t n)
{
    assert(n == 0 || (out && a && b));
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* A NULL da or db is an input that needs no gradient. */
void eng_add_backward_ref(float *da, float *db, const float *dout, size_t n)
{
    assert(n == 0 || dout);
    for (size_t i = 0; i < n; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}
