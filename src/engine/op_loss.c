/*
 * Reference reductions and losses: a double-precision sum, and binary
 * cross-entropy with logits (the detector's classification loss), summed
 * over elements and computed without overflow for any logit.
 */
#include <assert.h>
#include <math.h>

#include "engine/op_sigmoid.h"
#include "lupe/engine.h"

double eng_sum_ref(const float *x, size_t n)
{
    assert(n == 0 || x);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

/* -(t log s(x) + (1-t) log(1 - s(x))) = max(x, 0) - x*t + log1p(exp(-|x|)):
 * exp() only sees a non-positive argument, and log1p keeps the small tail
 * accurate where log(1 + tiny) would round to 0. */
double eng_bce_logits_forward_ref(const float *x, const float *t, size_t n)
{
    assert(n == 0 || (x && t));
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double xi = x[i];
        s += (xi > 0 ? xi : 0.0) - xi * t[i] + log1p(exp(-fabs(xi)));
    }
    return s;
}

void eng_bce_logits_backward_ref(float *dx, const float *x, const float *t, size_t n, float scale)
{
    assert(n == 0 || (dx && x && t));
    for (size_t i = 0; i < n; i++) dx[i] += (float)(scale * (eng__sigmoid(x[i]) - t[i]));
}
