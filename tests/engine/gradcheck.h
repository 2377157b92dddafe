/*
 * Header-only helpers for the engine op tests: a fixed-seed xorshift PRNG so
 * every run sees the same "random" tensors, and a central-difference
 * gradient check of L(p) = sum(g * f(p)) against an op's backward pass.
 */
#ifndef LUPE_TESTS_ENGINE_GRADCHECK_H
#define LUPE_TESTS_ENGINE_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"

/* ---- deterministic random numbers (xorshift64*) -------------------------- */
typedef struct gc_rng {
    uint64_t s;
} gc_rng;

static inline gc_rng gc_seed(uint64_t seed)
{
    return (gc_rng){seed ? seed : 0x9E3779B97F4A7C15ull};
}

static inline uint64_t gc_next(gc_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi), from the top 24 bits so it is exact in float. */
static inline float gc_uniform(gc_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)(gc_next(r) >> 40) * (1.0f / 16777216.0f);
}

static inline void gc_fill(gc_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = gc_uniform(r, lo, hi);
}

/* A zeroed float buffer; fails the test if memory runs out. */
static inline float *gc_zeros(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) fail_msg("out of memory for %zu floats", n);
    return p;
}

static inline float *gc_random(gc_rng *r, size_t n, float lo, float hi)
{
    float *p = gc_zeros(n);
    gc_fill(r, p, n, lo, hi);
    return p;
}

/* sum(g * y) in double: the scalar whose gradient with respect to y is g. */
static inline double gc_dot(const float *g, const float *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * y[i];
    return s;
}

/* ---- gradient check --------------------------------------------------------
 * loss(ctx) recomputes L from the current parameter values. For every
 * element p[j] the numeric derivative is the central difference
 *   (L(p[j] + eps) - L(p[j] - eps)) / (actual float step),
 * with the step measured after rounding to float so that rounding of the
 * perturbed value does not count as error.
 *
 * Error of element j = |analytic - numeric| / max(|numeric|, 1e-2 * scale),
 * scale = the largest |numeric| in the tensor. The floor is there because L
 * is a sum of float outputs: each carries a rounding error of about 6e-8
 * times its size, which becomes an absolute noise in the numeric derivative
 * proportional to the tensor's scale, not to the element's own gradient. A
 * wrong index or a missing term gives errors of order 1, far above the
 * tolerances used (1e-3 to 1e-2). Returns the largest error; *scale_out (may
 * be NULL) receives the scale so a test can insist that it is not ~0. */
typedef double (*gc_loss_fn)(void *ctx);

static inline double gc_max_error(gc_loss_fn loss, void *ctx, float *p, size_t n, const float *analytic, double eps,
                                  double *scale_out, size_t *worst_out)
{
    double *num = malloc((n ? n : 1) * sizeof(double));
    if (!num) fail_msg("out of memory");
    double scale = 0.0;
    for (size_t j = 0; j < n; j++) {
        const float v = p[j];
        const float xp = (float)(v + eps), xm = (float)(v - eps);
        p[j] = xp;
        const double lp = loss(ctx);
        p[j] = xm;
        const double lm = loss(ctx);
        p[j] = v;
        num[j] = (lp - lm) / ((double)xp - (double)xm);
        if (fabs(num[j]) > scale) scale = fabs(num[j]);
    }
    double worst = 0.0;
    size_t wj = 0;
    for (size_t j = 0; j < n; j++) {
        const double floor_ = 1e-2 * scale > 1e-30 ? 1e-2 * scale : 1e-30;
        const double den = fabs(num[j]) > floor_ ? fabs(num[j]) : floor_;
        const double e = fabs(analytic[j] - num[j]) / den;
        if (e > worst) worst = e, wj = j;
    }
    if (getenv("GC_VERBOSE") && n)
        fprintf(stderr, "# gradcheck n=%zu scale=%.3g worst=%.3g at %zu (analytic %.6g numeric %.6g)\n", n, scale,
                worst,
                wj, analytic[wj], num[wj]);
    free(num);
    if (scale_out) *scale_out = scale;
    if (worst_out) *worst_out = wj;
    return worst;
}

/* Fails the test, naming what and where, unless the gradient of every
 * element of p passes at tolerance tol and the gradient is not all ~0. */
static inline void gc_expect(const char *what, gc_loss_fn loss, void *ctx, float *p, size_t n, const float *analytic,
                             double eps, double tol)
{
    double scale = 0.0;
    size_t wj = 0;
    const double err = gc_max_error(loss, ctx, p, n, analytic, eps, &scale, &wj);
    if (!(scale > 1e-4)) fail_msg("%s: numeric gradient is ~0 (scale %g), the check would prove nothing", what, scale);
    if (!(err < tol))
        fail_msg("%s: gradient error %.3g at element %zu exceeds %.3g (analytic %.6g)", what, err, wj, tol,
                 analytic[wj]);
}

/* Largest |a - b| / max(1, max|a|) over n elements: a relative error that is
 * measured against the tensor's own magnitude. */
static inline double gc_rel_diff(const float *a, const float *b, size_t n)
{
    double mx = 1.0, d = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > mx) mx = fabs(a[i]);
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d / mx;
}

#endif
