/*
 * Tests of the fast element-wise, batch-norm (also fused with SiLU),
 * concat, slice, pooling and upsampling ops against their references, on
 * shapes with channel counts that are not multiples of the vector width,
 * single rows, extreme inputs, NULL gradients, repeated (accumulating) and
 * overwriting backward calls, each run with 1 thread, 3 threads (more than
 * this machine may have: uneven splits) and all cores. Tolerances are
 * stated per op, as in engine.h.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gradcheck.h"
#include "lupe/engine.h"

/* Thread counts each test runs with; 0 = all cores. */
static const int thread_counts[] = {1, 3, 0};
#define NTHREADS (int)(sizeof thread_counts / sizeof thread_counts[0])

/* Largest |got - want| / max(|want|, floor): floor > 0 makes it relative to
 * a scale near zero (where a relative error means nothing). */
static double max_err(const float *got, const float *want, size_t n, double floor_)
{
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double w = fabs((double)want[i]), d = fabs((double)got[i] - want[i]) / (w > floor_ ? w : floor_);
        if (d > e || isnan(d)) e = d;
    }
    return e;
}

static double max_abs(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}

/* Error relative to the tensor's largest value, for outputs where single
 * elements may cancel to ~0 (batch-norm gradients). */
static double scaled_err(const float *got, const float *want, size_t n)
{
    const double s = max_abs(want, n);
    return max_err(got, want, n, s > 0 ? s : 1e-30);
}

static void expect_err(const char *what, double err, double tol, size_t n, int threads)
{
    if (getenv("GC_VERBOSE")) fprintf(stderr, "# %s n=%zu threads=%d: error %.3g\n", what, n, threads, err);
    if (!(err <= tol)) fail_msg("%s (n %zu, threads %d): error %.3g exceeds %.3g", what, n, threads, err, tol);
}

static float *copy_of(const float *x, size_t n)
{
    float *p = gc_zeros(n);
    memcpy(p, x, n * sizeof(float));
    return p;
}

/* ---- sigmoid and SiLU -------------------------------------------------------
 * Forward: relative 1e-6 (a few ulp: exp's ~1 ulp, a division, a product)
 * with a floor of 1.2e-38 for the values flushed to 0 below exp(-87.5).
 * Backward, added to a random din: 1e-6 of |dy| * max(1, |x|) for SiLU,
 * whose derivative crosses 0 near x = -1.28 (there only an absolute error
 * means anything), and 1e-6 of |dy| for sigmoid; plus 1 ulp of din. */
static void check_eltwise(const float *x, size_t n, gc_rng *r, int threads)
{
    float *want = gc_zeros(n), *got = gc_zeros(n), *dy = gc_random(r, n, -2, 2), *d0 = gc_random(r, n, -1, 1);
    eng_sigmoid_forward_ref(want, x, n);
    eng_sigmoid_forward_fast(got, x, n);
    expect_err("sigmoid forward", max_err(got, want, n, 1.2e-38 / 1e-6), 1e-6, n, threads);
    float *s = copy_of(want, n); /* the backward passes take the output */
    eng_silu_forward_ref(want, x, n);
    eng_silu_forward_fast(got, x, n);
    /* silu(x) = x * sigmoid(x): below -87.5 up to 104 * 1.2e-38 is flushed. */
    expect_err("silu forward", max_err(got, want, n, 1.3e-36 / 1e-6), 1e-6, n, threads);
    /* In place gives the same. */
    float *inplace = copy_of(x, n);
    eng_silu_forward_fast(inplace, inplace, n);
    assert_memory_equal(inplace, got, n * sizeof(float));

    for (int op = 0; op < 2; op++) {
        float *dw = copy_of(d0, n), *dg = copy_of(d0, n);
        if (op == 0) {
            eng_silu_backward_ref(dw, dy, x, n);
            eng_silu_backward_fast(dg, dy, x, n);
        } else {
            eng_sigmoid_backward_ref(dw, dy, s, n);
            eng_sigmoid_backward_fast(dg, dy, s, n);
        }
        double worst = 0.0; /* largest error / tolerance */
        for (size_t i = 0; i < n; i++) {
            const double ax = op == 0 && fabs(x[i]) > 1 ? fabs(x[i]) : 1.0;
            const double tol = 1e-6 * fabs(dy[i]) * ax + 1.2e-7 * fabs(dw[i]) + 1e-38;
            const double q = fabs((double)dg[i] - dw[i]) / tol;
            if (q > worst || isnan(q)) worst = isnan(q) ? INFINITY : q;
        }
        expect_err(op == 0 ? "silu backward (error / tolerance)" : "sigmoid backward (error / tolerance)", worst, 1.0,
                   n, threads);
        free(dw), free(dg);
    }
    free(want), free(got), free(dy), free(d0), free(s), free(inplace);
}

static void test_sigmoid_silu(void **state)
{
    (void)state;
    gc_rng r = gc_seed(71);
    /* A dense sweep over [-100, 100] (every exp range-reduction interval,
     * both sides of the flush at -87.5), then the edges, then random sizes
     * whose ends are not whole vectors. */
    const size_t nsweep = 60001;
    float *sweep = gc_zeros(nsweep + 16);
    for (size_t i = 0; i < nsweep; i++) sweep[i] = (float)(-100.0 + 200.0 * (double)i / (double)(nsweep - 1));
    const float edges[16] = {0.0f, -0.0f, 1e-30f, -1e-30f, 87.5f, -87.5f, 88.7f, -88.7f, 89.0f, -89.0f,
                             1000.0f, -1000.0f, FLT_MAX, -FLT_MAX, -87.49f, -1.2785f};
    memcpy(sweep + nsweep, edges, sizeof edges);
    const size_t sizes[] = {1, 7, 8, 9, 31, 1000, 40001};
    for (int t = 0; t < NTHREADS; t++) {
        eng_set_threads(thread_counts[t]);
        check_eltwise(sweep, nsweep + 16, &r, thread_counts[t]);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            float *x = gc_random(&r, sizes[k], -12, 12);
            check_eltwise(x, sizes[k], &r, thread_counts[t]);
            free(x);
        }
    }
    eng_set_threads(0);
    free(sweep);

    /* Exact values at the extremes, and NaN propagates. */
    const float x[6] = {0.0f, 1000.0f, -1000.0f, 100.0f, -100.0f, NAN};
    float s[6], y[6], g[6] = {0}, ones[6] = {1, 1, 1, 1, 1, 1};
    eng_sigmoid_forward_fast(s, x, 6);
    eng_silu_forward_fast(y, x, 6);
    eng_silu_backward_fast(g, ones, x, 6);
    assert_true(s[0] == 0.5f && s[1] == 1.0f && s[2] == 0.0f && s[3] == 1.0f && s[4] >= 0.0f && s[4] < 1e-37f);
    assert_true(y[0] == 0.0f && y[1] == 1000.0f && y[2] == 0.0f && y[3] == 100.0f);
    assert_true(g[0] == 0.5f && g[1] == 1.0f && g[2] == 0.0f && g[3] == 1.0f);
    assert_true(isnan(s[5]) && isnan(y[5]) && isnan(g[5]));
}

/* ---- add ----------------------------------------------------------------------
 * Float additions in the reference's order: bit-identical. */
static void test_add(void **state)
{
    (void)state;
    gc_rng r = gc_seed(72);
    const size_t sizes[] = {1, 5, 16, 17, 40003};
    for (int t = 0; t < NTHREADS; t++) {
        eng_set_threads(thread_counts[t]);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            const size_t n = sizes[k];
            float *a = gc_random(&r, n, -3, 3), *b = gc_random(&r, n, -3, 3), *dy = gc_random(&r, n, -1, 1);
            float *want = gc_zeros(n), *got = gc_zeros(n);
            eng_add_forward_ref(want, a, b, n);
            eng_add_forward_fast(got, a, b, n);
            assert_memory_equal(got, want, n * sizeof(float));
            /* Separate buffers, twice; one NULL; the same buffer for both. */
            float *wa = copy_of(a, n), *wb = copy_of(b, n), *ga = copy_of(a, n), *gb = copy_of(b, n);
            for (int rep = 0; rep < 2; rep++) {
                eng_add_backward_ref(wa, wb, dy, n);
                eng_add_backward_fast(ga, gb, dy, n);
            }
            eng_add_backward_ref(NULL, wb, dy, n);
            eng_add_backward_fast(NULL, gb, dy, n);
            eng_add_backward_ref(wa, NULL, dy, n);
            eng_add_backward_fast(ga, NULL, dy, n);
            eng_add_backward_ref(wa, wa, dy, n);
            eng_add_backward_fast(ga, ga, dy, n);
            eng_add_backward_fast(NULL, NULL, dy, n);
            assert_memory_equal(ga, wa, n * sizeof(float));
            assert_memory_equal(gb, wb, n * sizeof(float));
            free(a), free(b), free(dy), free(want), free(got), free(wa), free(wb), free(ga), free(gb);
        }
    }
    eng_set_threads(0);
}

/* ---- batch norm ----------------------------------------------------------------
 * Data with per-channel means far from 0 (up to 1000 times the spread) and
 * one constant channel. mean and invstd: relative 1e-6 (a float rounding of
 * the same double value, sums in another order). Outputs and gradients:
 * 1e-5 of the tensor's largest value (float arithmetic; single elements
 * may cancel). dgamma and dbeta: 1e-5 of the largest (double sums). */
typedef struct {
    size_t m;
    int c;
} bn_shape;

static void fill_bn_input(gc_rng *r, float *x, size_t m, int c)
{
    for (int ch = 0; ch < c; ch++) {
        const float off = ch % 4 == 0 ? 0.0f : ch % 4 == 1 ? 5.0f : ch % 4 == 2 ? -300.0f : 1000.0f;
        const float spread = ch % 5 == 0 ? 1.0f : ch % 5 == 1 ? 3.0f : ch % 5 == 2 ? 0.5f : ch % 5 == 3 ? 50.0f : 0.0f;
        for (size_t i = 0; i < m; i++) x[i * c + ch] = off + spread * gc_uniform(r, -1, 1);
    }
}

static void check_bn(const bn_shape *sh, gc_rng *r, int threads)
{
    const size_t m = sh->m, n = m * (size_t)sh->c;
    const int c = sh->c;
    float *x = gc_zeros(n), *gamma = gc_random(r, c, 0.5f, 2), *beta = gc_random(r, c, -1, 1);
    fill_bn_input(r, x, m, c);
    float *yw = gc_zeros(n), *yg = gc_zeros(n), *mw = gc_zeros(c), *mg = gc_zeros(c), *iw = gc_zeros(c),
          *ig = gc_zeros(c);
    eng_bn_forward_train_ref(yw, mw, iw, x, gamma, beta, m, c, 1e-3f);
    eng_bn_forward_train_fast(yg, mg, ig, x, gamma, beta, m, c, 1e-3f);
    expect_err("bn mean", max_err(mg, mw, c, 1e-30), 1e-6, n, threads);
    expect_err("bn invstd", max_err(ig, iw, c, 1e-30), 1e-6, n, threads);
    expect_err("bn train out", scaled_err(yg, yw, n), 1e-5, n, threads);
    /* In place, as the reference allows. */
    float *inplace = copy_of(x, n);
    eng_bn_forward_train_fast(inplace, mg, ig, inplace, gamma, beta, m, c, 1e-3f);
    assert_memory_equal(inplace, yg, n * sizeof(float));

    float *rmean = gc_random(r, c, -2, 2), *rvar = gc_random(r, c, 0.1f, 3);
    eng_bn_forward_infer_ref(yw, x, gamma, beta, rmean, rvar, m, c, 1e-3f);
    eng_bn_forward_infer_fast(yg, x, gamma, beta, rmean, rvar, m, c, 1e-3f);
    expect_err("bn infer out", scaled_err(yg, yw, n), 1e-5, n, threads);

    /* Backward from the reference's statistics, twice into zeros (must
     * double exactly), then with NULL outputs into random gradients. */
    float *dy = gc_random(r, n, -1, 1);
    float *dxw = gc_zeros(n), *dxg = gc_zeros(n), *dgw = gc_zeros(c), *dgg = gc_zeros(c), *dbw = gc_zeros(c),
          *dbg = gc_zeros(c);
    eng_bn_backward_ref(dxw, dgw, dbw, dy, x, mw, iw, gamma, m, c);
    eng_bn_backward_fast(dxg, dgg, dbg, dy, x, mw, iw, gamma, m, c);
    expect_err("bn backward dx", scaled_err(dxg, dxw, n), 1e-5, n, threads);
    expect_err("bn backward dgamma", scaled_err(dgg, dgw, c), 1e-5, n, threads);
    expect_err("bn backward dbeta", scaled_err(dbg, dbw, c), 1e-5, n, threads);
    float *dx2 = copy_of(dxg, n), *dg2 = copy_of(dgg, c), *db2 = copy_of(dbg, c);
    eng_bn_backward_fast(dx2, dg2, db2, dy, x, mw, iw, gamma, m, c);
    for (size_t i = 0; i < n; i++) assert_true(dx2[i] == 2 * dxg[i]);
    for (int i = 0; i < c; i++) assert_true(dg2[i] == 2 * dgg[i] && db2[i] == 2 * dbg[i]);

    float *start = gc_random(r, n, -1, 1), *cs = gc_random(r, c, -1, 1);
    for (int mask = 0; mask < 8; mask++) { /* which of din, dgamma, dbeta are given */
        float *aw = copy_of(start, n), *ag = copy_of(start, n), *gw = copy_of(cs, c), *gg = copy_of(cs, c);
        float *bw = copy_of(cs, c), *bg = copy_of(cs, c);
        eng_bn_backward_ref(mask & 1 ? aw : NULL, mask & 2 ? gw : NULL, mask & 4 ? bw : NULL, dy, x, mw, iw, gamma,
                            m, c);
        eng_bn_backward_fast(mask & 1 ? ag : NULL, mask & 2 ? gg : NULL, mask & 4 ? bg : NULL, dy, x, mw, iw, gamma,
                             m, c);
        /* Against the change, not the random start. */
        for (size_t i = 0; i < n; i++) aw[i] -= start[i], ag[i] -= start[i];
        for (int i = 0; i < c; i++) gw[i] -= cs[i], gg[i] -= cs[i], bw[i] -= cs[i], bg[i] -= cs[i];
        expect_err("bn backward dx (masked)", scaled_err(ag, aw, n), 2e-5, n, threads);
        expect_err("bn backward dgamma (masked)", scaled_err(gg, gw, c), 2e-5, n, threads);
        expect_err("bn backward dbeta (masked)", scaled_err(bg, bw, c), 2e-5, n, threads);
        if (!(mask & 1)) assert_memory_equal(ag, aw, n * sizeof(float)); /* both untouched: 0 */
        free(aw), free(ag), free(gw), free(gg), free(bw), free(bg);
    }
    free(x), free(gamma), free(beta), free(yw), free(yg), free(mw), free(mg), free(iw), free(ig), free(inplace);
    free(rmean), free(rvar), free(dy), free(dxw), free(dxg), free(dgw), free(dgg), free(dbw), free(dbg);
    free(dx2), free(dg2), free(db2), free(start), free(cs);
}

static void test_batchnorm(void **state)
{
    (void)state;
    gc_rng r = gc_seed(73);
    /* m = 1; c below, at and above the vector width; more channels than a
     * chunk (1024); big enough for every thread to get rows. */
    const bn_shape shapes[] = {{1, 3}, {1, 16}, {5, 17}, {64, 8}, {200, 33}, {40, 1030}, {3000, 16}, {4001, 24}};
    for (int t = 0; t < NTHREADS; t++) {
        eng_set_threads(thread_counts[t]);
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) check_bn(&shapes[k], &r, thread_counts[t]);
    }
    eng_set_threads(0);
}

/* The variance survives a mean 1e4 times the spread, and a constant
 * channel gives invstd = 1/sqrt(eps) exactly as the reference. */
static void test_batchnorm_cancellation(void **state)
{
    (void)state;
    gc_rng r = gc_seed(74);
    const size_t m = 5000;
    const int c = 9;
    float *x = gc_zeros(m * c), gamma[9], beta[9], mw[9], mg[9], iw[9], ig[9];
    for (size_t i = 0; i < m; i++)
        for (int ch = 0; ch < c; ch++) x[i * c + ch] = ch == 8 ? 7.0f : 1e4f * (float)(ch + 1) + gc_uniform(&r, -1, 1);
    for (int ch = 0; ch < c; ch++) gamma[ch] = 1, beta[ch] = 0;
    float *yw = gc_zeros(m * c), *yg = gc_zeros(m * c);
    eng_bn_forward_train_ref(yw, mw, iw, x, gamma, beta, m, c, 1e-5f);
    eng_bn_forward_train_fast(yg, mg, ig, x, gamma, beta, m, c, 1e-5f);
    expect_err("bn far mean: invstd", max_err(ig, iw, c, 1e-30), 1e-6, m * c, 0);
    expect_err("bn far mean: out", scaled_err(yg, yw, m * c), 1e-5, m * c, 0);
    assert_true(ig[8] == iw[8] && yg[8] == 0.0f);
    free(x), free(yw), free(yg);
}

/* ---- batch norm + SiLU ---------------------------------------------------------
 * The fused fast op against the fused reference on the batch-norm shapes
 * and data: mean and invstd relative 1e-6; outputs, input gradients,
 * dgamma and dbeta 1e-5 of the tensor's largest value, as batch norm (the
 * fast path rounds y and dy to float, the reference keeps them in double);
 * the accumulating, masked and overwriting backward forms; and results that
 * do not change from one run to the next (same threads, bit-identical). */
static void check_bn_silu(const bn_shape *sh, gc_rng *r, int threads)
{
    const size_t m = sh->m, n = m * (size_t)sh->c;
    const int c = sh->c;
    float *x = gc_zeros(n), *gamma = gc_random(r, c, 0.5f, 2), *beta = gc_random(r, c, -1, 1);
    fill_bn_input(r, x, m, c);
    float *yw = gc_zeros(n), *yg = gc_zeros(n), *mw = gc_zeros(c), *mg = gc_zeros(c), *iw = gc_zeros(c),
          *ig = gc_zeros(c);
    eng_bn_silu_forward_train_ref(yw, mw, iw, x, gamma, beta, m, c, 1e-3f);
    eng_bn_silu_forward_train_fast(yg, mg, ig, x, gamma, beta, m, c, 1e-3f);
    expect_err("bn+silu mean", max_err(mg, mw, c, 1e-30), 1e-6, n, threads);
    expect_err("bn+silu invstd", max_err(ig, iw, c, 1e-30), 1e-6, n, threads);
    expect_err("bn+silu train out", scaled_err(yg, yw, n), 1e-5, n, threads);
    /* Equal to the two fast ops one after the other, but for the rounding
     * of the batch-norm value to float between them. */
    float *two = gc_zeros(n);
    eng_bn_forward_train_fast(two, mg, ig, x, gamma, beta, m, c, 1e-3f);
    eng_silu_forward_fast(two, two, n);
    expect_err("bn+silu train out against bn then silu", scaled_err(yg, two, n), 1e-6, n, threads);
    /* In place, and again: bit-identical. */
    float *inplace = copy_of(x, n);
    eng_bn_silu_forward_train_fast(inplace, mg, ig, inplace, gamma, beta, m, c, 1e-3f);
    assert_memory_equal(inplace, yg, n * sizeof(float));

    float *rmean = gc_random(r, c, -2, 2), *rvar = gc_random(r, c, 0.1f, 3);
    eng_bn_silu_forward_infer_ref(yw, x, gamma, beta, rmean, rvar, m, c, 1e-3f);
    eng_bn_silu_forward_infer_fast(yg, x, gamma, beta, rmean, rvar, m, c, 1e-3f);
    expect_err("bn+silu infer out", scaled_err(yg, yw, n), 1e-5, n, threads);

    /* Backward from the reference's statistics, into zeros, then again
     * (must double exactly) and once more from zeros (bit-identical). */
    float *dy = gc_random(r, n, -1, 1);
    float *dxw = gc_zeros(n), *dxg = gc_zeros(n), *dgw = gc_zeros(c), *dgg = gc_zeros(c), *dbw = gc_zeros(c),
          *dbg = gc_zeros(c);
    eng_bn_silu_backward_ref(dxw, dgw, dbw, dy, x, mw, iw, gamma, beta, m, c);
    eng_bn_silu_backward_fast(dxg, dgg, dbg, dy, x, mw, iw, gamma, beta, m, c);
    expect_err("bn+silu backward dx", scaled_err(dxg, dxw, n), 1e-5, n, threads);
    expect_err("bn+silu backward dgamma", scaled_err(dgg, dgw, c), 1e-5, n, threads);
    expect_err("bn+silu backward dbeta", scaled_err(dbg, dbw, c), 1e-5, n, threads);
    float *dx2 = copy_of(dxg, n), *dg2 = copy_of(dgg, c), *db2 = copy_of(dbg, c);
    eng_bn_silu_backward_fast(dx2, dg2, db2, dy, x, mw, iw, gamma, beta, m, c);
    for (size_t i = 0; i < n; i++) assert_true(dx2[i] == 2 * dxg[i]);
    for (int i = 0; i < c; i++) assert_true(dg2[i] == 2 * dgg[i] && db2[i] == 2 * dbg[i]);
    float *dx3 = gc_zeros(n), *dg3 = gc_zeros(c), *db3 = gc_zeros(c);
    eng_bn_silu_backward_fast(dx3, dg3, db3, dy, x, mw, iw, gamma, beta, m, c);
    assert_memory_equal(dx3, dxg, n * sizeof(float));
    assert_memory_equal(dg3, dgg, c * sizeof(float));
    assert_memory_equal(db3, dbg, c * sizeof(float));
    /* The overwriting form equals adding into zeros, whatever din held. */
    gc_fill(r, dx3, n, -100, 100);
    eng_bn_silu_backward_set_fast(dx3, dg3, db3, dy, x, mw, iw, gamma, beta, m, c);
    assert_memory_equal(dx3, dxg, n * sizeof(float));
    for (int i = 0; i < c; i++) assert_true(dg3[i] == 2 * dgg[i] && db3[i] == 2 * dbg[i]);

    float *start = gc_random(r, n, -1, 1), *cs = gc_random(r, c, -1, 1);
    for (int mask = 0; mask < 8; mask++) { /* which of din, dgamma, dbeta are given */
        float *aw = copy_of(start, n), *ag = copy_of(start, n), *gw = copy_of(cs, c), *gg = copy_of(cs, c);
        float *bw = copy_of(cs, c), *bg = copy_of(cs, c);
        eng_bn_silu_backward_ref(mask & 1 ? aw : NULL, mask & 2 ? gw : NULL, mask & 4 ? bw : NULL, dy, x, mw, iw,
                                 gamma, beta, m, c);
        eng_bn_silu_backward_fast(mask & 1 ? ag : NULL, mask & 2 ? gg : NULL, mask & 4 ? bg : NULL, dy, x, mw, iw,
                                  gamma, beta, m, c);
        for (size_t i = 0; i < n; i++) aw[i] -= start[i], ag[i] -= start[i];
        for (int i = 0; i < c; i++) gw[i] -= cs[i], gg[i] -= cs[i], bw[i] -= cs[i], bg[i] -= cs[i];
        expect_err("bn+silu backward dx (masked)", scaled_err(ag, aw, n), 2e-5, n, threads);
        expect_err("bn+silu backward dgamma (masked)", scaled_err(gg, gw, c), 2e-5, n, threads);
        expect_err("bn+silu backward dbeta (masked)", scaled_err(bg, bw, c), 2e-5, n, threads);
        if (!(mask & 1)) assert_memory_equal(ag, aw, n * sizeof(float));
        free(aw), free(ag), free(gw), free(gg), free(bw), free(bg);
    }
    float *bufs[] = {x, gamma, beta, yw, yg, mw, mg, iw, ig, two, inplace, rmean, rvar, dy, dxw, dxg, dgw, dgg, dbw,
                     dbg, dx2, dg2, db2, dx3, dg3, db3, start, cs};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

static void test_bn_silu(void **state)
{
    (void)state;
    gc_rng r = gc_seed(78);
    const bn_shape shapes[] = {{1, 3}, {1, 16}, {5, 17}, {64, 8}, {200, 33}, {40, 1030}, {3000, 16}, {4001, 24}};
    for (int t = 0; t < NTHREADS; t++) {
        eng_set_threads(thread_counts[t]);
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) check_bn_silu(&shapes[k], &r, thread_counts[t]);
    }
    eng_set_threads(0);
}

/* ---- slices and the overwriting forms of concat, add, upsampling ---------------
 * Slices: copies and float additions as the reference: bit-identical. The
 * overwriting forms equal adding into zeros (compared as floats: a -0.0
 * gradient may stay -0.0), whatever the buffer held, and leave the inputs
 * they do not overwrite accumulating. */
static void expect_equal_floats(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(got[i] == want[i])) fail_msg("%s: element %zu is %.9g, want %.9g", what, i, got[i], want[i]);
}

static void test_slices_and_set_forms(void **state)
{
    (void)state;
    gc_rng r = gc_seed(79);
    const int sl[][3] = {{5, 0, 2}, {5, 2, 3}, {16, 8, 8}, {33, 1, 31}, {1, 0, 1}}; /* ci, c0, co */
    const size_t ms[] = {1, 9, 3001};
    for (int t = 0; t < NTHREADS; t++) {
        eng_set_threads(thread_counts[t]);
        for (int s = 0; s < 5; s++)
            for (int mi = 0; mi < 3; mi++) {
                const int ci = sl[s][0], c0 = sl[s][1], co = sl[s][2];
                const size_t m = ms[mi], ni = m * (size_t)ci, no = m * (size_t)co;
                float *x = gc_random(&r, ni, -1, 1), *yw = gc_zeros(no), *yg = gc_random(&r, no, -1, 1);
                eng_slice_forward_ref(yw, x, m, ci, c0, co);
                eng_slice_forward_fast(yg, x, m, ci, c0, co);
                assert_memory_equal(yg, yw, no * sizeof(float));
                float *dy = gc_random(&r, no, -1, 1), *dw = gc_random(&r, ni, -1, 1), *dg = copy_of(dw, ni);
                for (int rep = 0; rep < 2; rep++) {
                    eng_slice_backward_ref(dw, dy, m, ci, c0, co);
                    eng_slice_backward_fast(dg, dy, m, ci, c0, co);
                }
                assert_memory_equal(dg, dw, ni * sizeof(float));
                /* Overwriting: the slice's channels become dy, the others keep their values. */
                float *ds = copy_of(dw, ni);
                eng_slice_backward_set_fast(ds, dy, m, ci, c0, co);
                for (size_t i = 0; i < m; i++)
                    for (int j = 0; j < ci; j++) {
                        const float want = j >= c0 && j < c0 + co ? dy[i * co + j - c0] : dw[i * ci + j];
                        if (!(ds[i * ci + j] == want)) fail_msg("slice set: row %zu channel %d", i, j);
                    }
                free(x), free(yw), free(yg), free(dy), free(dw), free(dg), free(ds);
            }

        /* concat: every mask of 3 inputs, one of them NULL in half the runs. */
        const int cs[3] = {3, 8, 5};
        const size_t m = 777, ct = 16;
        float *dy = gc_random(&r, m * ct, -1, 1);
        for (unsigned mask = 0; mask < 16; mask++) {
            float *start[3], *want[3], *got[3];
            for (int i = 0; i < 3; i++) {
                start[i] = gc_random(&r, m * cs[i], -1, 1);
                want[i] = copy_of(start[i], m * cs[i]);
                got[i] = copy_of(start[i], m * cs[i]);
                if (mask >> i & 1u) memset(want[i], 0, m * cs[i] * sizeof(float)); /* overwritten: from zero */
            }
            float *wptr[3] = {want[0], want[1], mask & 8u ? NULL : want[2]};
            float *gptr[3] = {got[0], got[1], mask & 8u ? NULL : got[2]};
            eng_concat_backward_ref(wptr, cs, 3, dy, m);
            eng_concat_backward_set_fast(gptr, mask & 7u, cs, 3, dy, m);
            for (int i = 0; i < 3; i++) {
                expect_equal_floats("concat set", got[i], mask & 8u && i == 2 ? start[2] : want[i], m * cs[i]);
                free(start[i]), free(want[i]), free(got[i]);
            }
        }
        free(dy);

        /* add: the four masks on distinct buffers, and with one side NULL. */
        const size_t n = 4099;
        float *d = gc_random(&r, n, -1, 1), *a0 = gc_random(&r, n, -1, 1), *b0 = gc_random(&r, n, -1, 1);
        for (unsigned set = 0; set < 4; set++)
            for (int nulls = 0; nulls < 3; nulls++) { /* 0: both, 1: no da, 2: no db */
                float *aw = copy_of(a0, n), *bw = copy_of(b0, n), *ag = copy_of(a0, n), *bg = copy_of(b0, n);
                if (set & 1u) memset(aw, 0, n * sizeof(float));
                if (set & 2u) memset(bw, 0, n * sizeof(float));
                eng_add_backward_ref(nulls == 1 ? NULL : aw, nulls == 2 ? NULL : bw, d, n);
                eng_add_backward_set_fast(nulls == 1 ? NULL : ag, nulls == 2 ? NULL : bg, d, n, set);
                expect_equal_floats("add set da", ag, nulls == 1 ? a0 : aw, n);
                expect_equal_floats("add set db", bg, nulls == 2 ? b0 : bw, n);
                free(aw), free(bw), free(ag), free(bg);
            }
        free(d), free(a0), free(b0);

        /* upsampling */
        const int un = 2, uh = 5, uw = 3, uc = 11;
        const size_t usz = (size_t)un * uh * uw * uc;
        float *udy = gc_random(&r, 4 * usz, -1, 1), *uw0 = gc_zeros(usz), *ug = gc_random(&r, usz, -5, 5);
        eng_upsample2_backward_ref(uw0, udy, un, uh, uw, uc);
        eng_upsample2_backward_set_fast(ug, udy, un, uh, uw, uc);
        expect_equal_floats("upsample2 set", ug, uw0, usz);
        free(udy), free(uw0), free(ug);
    }
    eng_set_threads(0);
}

/* ---- concat -----------------------------------------------------------------
 * Copies and float additions in the reference's order: bit-identical. */
static void test_concat(void **state)
{
    (void)state;
    gc_rng r = gc_seed(75);
    const int csets[][4] = {{3, 16, 0, 5}, {32, 32, 32, 32}, {1, 1, 1, 1}};
    const size_t ms[] = {1, 7, 700};
    for (int t = 0; t < NTHREADS; t++) {
        eng_set_threads(thread_counts[t]);
        for (int s = 0; s < 3; s++)
            for (int mi = 0; mi < 3; mi++) {
                const int *cs = csets[s], k = 4;
                const size_t m = ms[mi], ct = (size_t)cs[0] + cs[1] + cs[2] + cs[3];
                float *ins[4], *dw[4], *dg[4];
                for (int i = 0; i < k; i++) {
                    ins[i] = gc_random(&r, m * cs[i], -1, 1);
                    dw[i] = gc_random(&r, m * cs[i], -1, 1);
                    dg[i] = copy_of(dw[i], m * cs[i]);
                }
                float *want = gc_zeros(m * ct), *got = gc_zeros(m * ct), *dy = gc_random(&r, m * ct, -1, 1);
                eng_concat_forward_ref(want, (const float *const *)ins, cs, k, m);
                eng_concat_forward_fast(got, (const float *const *)ins, cs, k, m);
                assert_memory_equal(got, want, m * ct * sizeof(float));
                /* Twice, and once with input 1 needing no gradient. */
                eng_concat_backward_ref(dw, cs, k, dy, m);
                eng_concat_backward_fast(dg, cs, k, dy, m);
                eng_concat_backward_ref(dw, cs, k, dy, m);
                eng_concat_backward_fast(dg, cs, k, dy, m);
                float *part_w[4] = {dw[0], NULL, dw[2], dw[3]}, *part_g[4] = {dg[0], NULL, dg[2], dg[3]};
                eng_concat_backward_ref(part_w, cs, k, dy, m);
                eng_concat_backward_fast(part_g, cs, k, dy, m);
                for (int i = 0; i < k; i++) {
                    assert_memory_equal(dg[i], dw[i], m * cs[i] * sizeof(float));
                    free(ins[i]), free(dw[i]), free(dg[i]);
                }
                free(want), free(got), free(dy);
            }
    }
    eng_set_threads(0);
}

/* ---- max pooling and upsampling ------------------------------------------------
 * The reference's scan and tie rule on 8 channels at once, copies and
 * double sums in the reference's order: bit-identical, including ties
 * (values on a coarse grid), NaNs and negative inputs. */
static void test_pool_upsample(void **state)
{
    (void)state;
    gc_rng r = gc_seed(76);
    const int shapes[][5] = {{1, 1, 1, 1, 5}, {2, 5, 4, 3, 3}, {1, 6, 7, 13, 5}, {2, 10, 10, 16, 5}, {1, 4, 9, 8, 1},
                             {8, 10, 10, 20, 5}};
    for (int t = 0; t < NTHREADS; t++) {
        eng_set_threads(thread_counts[t]);
        for (int s = 0; s < 6; s++) {
            const int n = shapes[s][0], h = shapes[s][1], w = shapes[s][2], c = shapes[s][3], k = shapes[s][4];
            const size_t sz = (size_t)n * h * w * c;
            float *x = gc_zeros(sz);
            for (size_t i = 0; i < sz; i++) x[i] = (float)(int)gc_uniform(&r, -4, 2); /* many ties */
            if (sz > 20) x[sz / 3] = NAN, x[sz / 2] = -0.0f;
            float *want = gc_zeros(sz), *got = gc_zeros(sz), *dy = gc_random(&r, sz, -1, 1);
            eng_maxpool_forward_ref(want, x, n, h, w, c, k);
            eng_maxpool_forward_fast(got, x, n, h, w, c, k);
            assert_memory_equal(got, want, sz * sizeof(float));
            float *dw = gc_random(&r, sz, -1, 1), *dg = copy_of(dw, sz);
            for (int rep = 0; rep < 2; rep++) {
                eng_maxpool_backward_ref(dw, dy, x, n, h, w, c, k);
                eng_maxpool_backward_fast(dg, dy, x, n, h, w, c, k);
            }
            assert_memory_equal(dg, dw, sz * sizeof(float));

            float *uw = gc_zeros(4 * sz), *ug = gc_zeros(4 * sz), *udy = gc_random(&r, 4 * sz, -1, 1);
            eng_upsample2_forward_ref(uw, x, n, h, w, c);
            eng_upsample2_forward_fast(ug, x, n, h, w, c);
            assert_memory_equal(ug, uw, 4 * sz * sizeof(float));
            for (int rep = 0; rep < 2; rep++) {
                eng_upsample2_backward_ref(dw, udy, n, h, w, c);
                eng_upsample2_backward_fast(dg, udy, n, h, w, c);
            }
            assert_memory_equal(dg, dw, sz * sizeof(float));
            free(x), free(want), free(got), free(dy), free(dw), free(dg), free(uw), free(ug), free(udy);
        }
    }
    eng_set_threads(0);
}

/* The overwriting backward forms equal accumulating into zeros, whatever
 * din held before; the parameter gradients still accumulate. */
static void test_set_forms(void **state)
{
    (void)state;
    gc_rng r = gc_seed(77);
    const size_t m = 37;
    const int c = 21;
    const size_t n = m * (size_t)c;
    float *x = gc_random(&r, n, -6, 6), *dy = gc_random(&r, n, -1, 1);
    float *acc = gc_zeros(n), *set = gc_random(&r, n, -100, 100);
    eng_silu_backward_fast(acc, dy, x, n);
    eng_silu_backward_set_fast(set, dy, x, n);
    assert_memory_equal(acc, set, n * sizeof(float));

    float *gamma = gc_random(&r, (size_t)c, 0.5f, 1.5f), *beta = gc_random(&r, (size_t)c, -1, 1);
    float *y = gc_zeros(n), *mean = gc_zeros((size_t)c), *invstd = gc_zeros((size_t)c);
    eng_bn_forward_train_fast(y, mean, invstd, x, gamma, beta, m, c, 1e-3f);
    float *dg1 = gc_zeros((size_t)c), *db1 = gc_zeros((size_t)c), *dg2 = gc_zeros((size_t)c), *db2 = gc_zeros((size_t)c);
    memset(acc, 0, n * sizeof(float));
    gc_fill(&r, set, n, -100, 100);
    eng_bn_backward_fast(acc, dg1, db1, dy, x, mean, invstd, gamma, m, c);
    eng_bn_backward_set_fast(set, dg2, db2, dy, x, mean, invstd, gamma, m, c);
    assert_memory_equal(acc, set, n * sizeof(float));
    assert_memory_equal(dg1, dg2, (size_t)c * sizeof(float));
    eng_bn_backward_set_fast(set, dg2, db2, dy, x, mean, invstd, gamma, m, c);
    assert_memory_equal(acc, set, n * sizeof(float)); /* din set again, not doubled */
    for (int k = 0; k < c; k++) assert_true(dg2[k] == 2 * dg1[k] || fabsf(dg2[k] - 2 * dg1[k]) <= 1e-6f * fabsf(dg1[k]));
    float *bufs[] = {x, dy, acc, set, gamma, beta, y, mean, invstd, dg1, db1, dg2, db2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigmoid_silu),         cmocka_unit_test(test_add),
        cmocka_unit_test(test_batchnorm),            cmocka_unit_test(test_batchnorm_cancellation),
        cmocka_unit_test(test_concat),               cmocka_unit_test(test_pool_upsample),
        cmocka_unit_test(test_set_forms),            cmocka_unit_test(test_bn_silu),
        cmocka_unit_test(test_slices_and_set_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
