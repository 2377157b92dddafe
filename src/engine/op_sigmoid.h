/*
 * The logistic function shared by the element-wise ops and the BCE loss,
 * written so that neither branch overflows: exp() only ever sees a
 * non-positive argument.
 */
#ifndef LUPE_ENGINE_OP_SIGMOID_H
#define LUPE_ENGINE_OP_SIGMOID_H

#include <math.h>

static inline double eng__sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

#endif
