/*
 * Tests of the reference batch norm: PyTorch BatchNorm2d's numbers on a
 * hand-worked case, normalized output statistics, running-statistics
 * updates, gradients against finite differences, and folding into a conv;
 * and of the reference batch norm + SiLU: by hand, against finite
 * differences and against the two reference ops composed.
 */
#include <string.h>

#include "engine/gradcheck.h"
#include "lupe/engine.h"

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol * (fabs(want) > 1 ? fabs(want) : 1)))
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

/* One channel of x = 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased
 * 5/3. With eps 0, gamma 2 and beta 1: y = 2 * (x - 2.5) / sqrt(1.25) + 1. */
static void test_by_hand(void **state)
{
    (void)state;
    const float x[4] = {1, 2, 3, 4}, gamma = 2, beta = 1;
    float y[4], mean, invstd;
    eng_bn_forward_train_ref(y, &mean, &invstd, x, &gamma, &beta, 4, 1, 0.0f);
    assert_close(mean, 2.5, 1e-7);
    assert_close(invstd, 1 / sqrt(1.25), 1e-7);
    for (int i = 0; i < 4; i++) assert_close(y[i], 2 * (x[i] - 2.5) / sqrt(1.25) + 1, 1e-6);

    /* PyTorch's momentum: running = (1 - 0.1) * running + 0.1 * batch. */
    float rmean = 0, rvar = 1;
    eng_bn_update_running(&rmean, &rvar, &mean, &invstd, 4, 1, 0.0f, 0.1f);
    assert_close(rmean, 0.25, 1e-6);
    assert_close(rvar, 0.9 + 0.1 * 5.0 / 3.0, 1e-6);

    /* Inference uses the running statistics: (x - 0.25) / sqrt(rvar + eps) * 2 + 1. */
    eng_bn_forward_infer_ref(y, x, &gamma, &beta, &rmean, &rvar, 4, 1, 1e-3f);
    for (int i = 0; i < 4; i++) assert_close(y[i], (x[i] - 0.25) / sqrt(0.9 + 0.5 / 3.0 + 1e-3) * 2 + 1, 1e-6);

    /* eps enters the variance: var 1.25 + eps 0.75 = 2. */
    eng_bn_forward_train_ref(y, &mean, &invstd, x, &gamma, &beta, 4, 1, 0.75f);
    assert_close(invstd, 1 / sqrt(2.0), 1e-7);
}

/* Channels interleave (NHWC): channel 1 of rows 0..2 is x[1], x[3], x[5]. */
static void test_channels_are_strided(void **state)
{
    (void)state;
    const float x[6] = {1, 10, 2, 20, 3, 60}, gamma[2] = {1, 1}, beta[2] = {0, 0};
    float y[6], mean[2], invstd[2];
    eng_bn_forward_train_ref(y, mean, invstd, x, gamma, beta, 3, 2, 0.0f);
    assert_close(mean[0], 2, 1e-7);
    assert_close(mean[1], 30, 1e-7);
    assert_close(invstd[0], 1 / sqrt(2.0 / 3.0), 1e-7);
    assert_close(invstd[1], 1 / sqrt(1400.0 / 3.0), 1e-7);
}

/* With gamma 1 and beta 0, every channel's output has mean 0 and variance
 * 1, even for inputs far from 0 (the two-pass variance holds up). */
static void test_train_normalizes(void **state)
{
    (void)state;
    gc_rng r = gc_seed(21);
    const size_t m = 2 * 7 * 5;
    const int c = 4;
    float *x = gc_zeros(m * c), *y = gc_zeros(m * c), gamma[4], beta[4], mean[4], invstd[4];
    const float offset[4] = {0, 5, -300, 1000}, spread[4] = {1, 3, 0.01f, 50};
    for (size_t i = 0; i < m; i++)
        for (int ch = 0; ch < c; ch++) x[i * c + ch] = offset[ch] + spread[ch] * gc_uniform(&r, -1, 1);
    for (int ch = 0; ch < c; ch++) gamma[ch] = 1, beta[ch] = 0;
    eng_bn_forward_train_ref(y, mean, invstd, x, gamma, beta, m, c, 1e-5f);
    for (int ch = 0; ch < c; ch++) {
        double s = 0, s2 = 0, sx = 0, vx = 0;
        for (size_t i = 0; i < m; i++) s += y[i * c + ch], sx += x[i * c + ch];
        const double mu = s / m, mux = sx / m;
        for (size_t i = 0; i < m; i++) {
            s2 += (y[i * c + ch] - mu) * (y[i * c + ch] - mu);
            vx += (x[i * c + ch] - mux) * (x[i * c + ch] - mux);
        }
        vx /= m;
        assert_close(mu, 0, 1e-5);
        /* The output variance is var / (var + eps): 1 for the wide channels,
         * about 0.77 for channel 2, whose variance (3e-5) is near eps. */
        assert_close(s2 / m, vx / (vx + 1e-5), 1e-4);
        if (ch != 2) assert_close(s2 / m, 1.0, 1e-3);
    }
    free(x), free(y);
}

/* One row gives a zero variance; the running update stays finite. */
static void test_running_single_row(void **state)
{
    (void)state;
    const float x = 3, gamma = 1, beta = 0;
    float y, mean, invstd, rmean = 0, rvar = 1;
    eng_bn_forward_train_ref(&y, &mean, &invstd, &x, &gamma, &beta, 1, 1, 1e-5f);
    assert_close(y, 0, 1e-7);
    eng_bn_update_running(&rmean, &rvar, &mean, &invstd, 1, 1, 1e-5f, 0.5f);
    assert_close(rmean, 1.5, 1e-7);
    assert_close(rvar, 0.5, 1e-6);
}

typedef struct {
    size_t m;
    int c;
    float *x, *gamma, *beta, *g, *y, *mean, *invstd;
} bn_ctx;

static double bn_loss(void *p)
{
    bn_ctx *b = p;
    eng_bn_forward_train_ref(b->y, b->mean, b->invstd, b->x, b->gamma, b->beta, b->m, b->c, 1e-5f);
    return gc_dot(b->g, b->y, b->m * b->c);
}

/* L = sum(g * y) is smooth in x (through the batch mean and variance): the
 * step 1e-2 leaves a truncation error of order 1e-4 relative; tolerance
 * 1e-2. gamma and beta enter linearly: step 0.25, tolerance 1e-3. */
static void test_backward_gradcheck(void **state)
{
    (void)state;
    gc_rng r = gc_seed(22);
    const size_t ms[] = {6, 24, 50, 3};
    const int cs[] = {1, 3, 5, 2};
    for (int s = 0; s < 4; s++) {
        bn_ctx b = {.m = ms[s], .c = cs[s]};
        const size_t n = b.m * b.c;
        b.x = gc_random(&r, n, -2, 2), b.g = gc_random(&r, n, -1, 1), b.y = gc_zeros(n);
        b.gamma = gc_random(&r, b.c, 0.5f, 2), b.beta = gc_random(&r, b.c, -1, 1);
        b.mean = gc_zeros(b.c), b.invstd = gc_zeros(b.c);
        for (size_t i = 0; i < n; i++) b.x[i] += (float)(i % b.c); /* per-channel offsets */
        float *dx = gc_zeros(n), *dgamma = gc_zeros(b.c), *dbeta = gc_zeros(b.c);
        bn_loss(&b);
        eng_bn_backward_ref(dx, dgamma, dbeta, b.g, b.x, b.mean, b.invstd, b.gamma, b.m, b.c);
        char what[64];
        snprintf(what, sizeof what, "m %zu c %d dx", b.m, b.c);
        gc_expect(what, bn_loss, &b, b.x, n, dx, 1e-2, 1e-2);
        snprintf(what, sizeof what, "m %zu c %d dgamma", b.m, b.c);
        gc_expect(what, bn_loss, &b, b.gamma, b.c, dgamma, 0.25, 1e-3);
        snprintf(what, sizeof what, "m %zu c %d dbeta", b.m, b.c);
        gc_expect(what, bn_loss, &b, b.beta, b.c, dbeta, 0.25, 1e-3);

        /* A second call doubles everything; NULL outputs are skipped. */
        float *dx2 = gc_zeros(n), *dgamma2 = gc_zeros(b.c), *dbeta2 = gc_zeros(b.c);
        bn_loss(&b);
        eng_bn_backward_ref(dx2, dgamma2, dbeta2, b.g, b.x, b.mean, b.invstd, b.gamma, b.m, b.c);
        eng_bn_backward_ref(dx2, dgamma2, dbeta2, b.g, b.x, b.mean, b.invstd, b.gamma, b.m, b.c);
        eng_bn_backward_ref(NULL, NULL, dbeta2, b.g, b.x, b.mean, b.invstd, b.gamma, b.m, b.c);
        for (size_t i = 0; i < n; i++) assert_true(dx2[i] == 2 * dx[i]);
        for (int i = 0; i < b.c; i++) {
            assert_true(dgamma2[i] == 2 * dgamma[i]);
            assert_close(dbeta2[i], 3 * dbeta[i], 1e-6);
        }
        free(b.x), free(b.g), free(b.y), free(b.gamma), free(b.beta), free(b.mean), free(b.invstd);
        free(dx), free(dgamma), free(dbeta), free(dx2), free(dgamma2), free(dbeta2);
    }
}

/* conv then inference batch norm equals the folded conv, for plain, grouped
 * and depthwise convolutions, with and without a conv bias. */
static void test_fold(void **state)
{
    (void)state;
    gc_rng r = gc_seed(23);
    const int shapes[][9] = {{2, 6, 5, 3, 4, 3, 1, 1, 1}, {1, 7, 7, 4, 6, 3, 2, 1, 2}, {1, 5, 6, 4, 4, 3, 1, 1, 4},
                             {2, 4, 4, 5, 3, 1, 1, 0, 1}};
    for (int s = 0; s < 4; s++) {
        const int *p = shapes[s];
        eng_conv_dims d;
        assert_int_equal(eng_conv_dims_init(&d, p[0], p[1], p[2], p[3], p[4], p[5], p[5], p[6], p[7], p[8]), LUPE_OK);
        const size_t nin = (size_t)d.n * d.h * d.w * d.c, nout = (size_t)d.n * d.oh * d.ow * d.o;
        const size_t nw = (size_t)d.o * d.kh * d.kw * (d.c / d.groups);
        float *x = gc_random(&r, nin, -1, 1), *w = gc_random(&r, nw, -1, 1), *b = gc_zeros(d.o);
        if (s % 2) gc_fill(&r, b, d.o, -1, 1);
        float *gamma = gc_random(&r, d.o, 0.5f, 2), *beta = gc_random(&r, d.o, -1, 1);
        float *rmean = gc_random(&r, d.o, -0.5f, 0.5f), *rvar = gc_random(&r, d.o, 0.1f, 3);
        float *y = gc_zeros(nout), *want = gc_zeros(nout), *got = gc_zeros(nout);
        eng_conv2d_forward_ref(y, x, w, s % 2 ? b : NULL, &d);
        eng_bn_forward_infer_ref(want, y, gamma, beta, rmean, rvar, nout / d.o, d.o, 1e-3f);
        eng_bn_fold(w, b, gamma, beta, rmean, rvar, &d, 1e-3f);
        eng_conv2d_forward_ref(got, x, w, b, &d);
        const double diff = gc_rel_diff(want, got, nout);
        if (diff > 1e-5) fail_msg("shape %d: folded conv differs by %g relative", s, diff);
        free(x), free(w), free(b), free(gamma), free(beta), free(rmean), free(rvar), free(y), free(want), free(got);
    }
}

/* ---- batch norm + SiLU ---------------------------------------------------- */
static double silu_d(double y)
{
    return y / (1.0 + exp(-y));
}

/* x = 1, 2, 3, 4 as test_by_hand: out = silu(2 * (x - 2.5) / sqrt(1.25) + 1),
 * and in inference silu of the running-statistics normalization. */
static void test_bn_silu_by_hand(void **state)
{
    (void)state;
    const float x[4] = {1, 2, 3, 4}, gamma = 2, beta = 1, rmean = 0.5f, rvar = 2;
    float y[4], mean, invstd;
    eng_bn_silu_forward_train_ref(y, &mean, &invstd, x, &gamma, &beta, 4, 1, 0.0f);
    assert_close(mean, 2.5, 1e-7);
    assert_close(invstd, 1 / sqrt(1.25), 1e-7);
    for (int i = 0; i < 4; i++) assert_close(y[i], silu_d(2 * (x[i] - 2.5) / sqrt(1.25) + 1), 1e-6);
    eng_bn_silu_forward_infer_ref(y, x, &gamma, &beta, &rmean, &rvar, 4, 1, 1e-3f);
    for (int i = 0; i < 4; i++) assert_close(y[i], silu_d((x[i] - 0.5) / sqrt(2.001) * 2 + 1), 1e-6);
    /* In place, as both reference ops allow. */
    float z[4] = {1, 2, 3, 4};
    eng_bn_silu_forward_infer_ref(z, z, &gamma, &beta, &rmean, &rvar, 4, 1, 1e-3f);
    assert_memory_equal(z, y, sizeof z);
}

static double bn_silu_loss(void *p)
{
    bn_ctx *b = p;
    eng_bn_silu_forward_train_ref(b->y, b->mean, b->invstd, b->x, b->gamma, b->beta, b->m, b->c, 1e-5f);
    return gc_dot(b->g, b->y, b->m * b->c);
}

/* Gradients of L = sum(g * silu(bn(x))) against central differences (as
 * test_backward_gradcheck; beta is no longer linear: the smooth step and
 * tolerance), and against the composition the fused op replaces: the
 * batch-norm output kept, eng_silu_backward_ref, eng_bn_backward_ref. The
 * composition rounds y and dy to float, the fused reference does not:
 * agreement within 1e-5 of each tensor's largest value. */
static void test_bn_silu_backward(void **state)
{
    (void)state;
    gc_rng r = gc_seed(24);
    const size_t ms[] = {6, 24, 50, 3};
    const int cs[] = {1, 3, 5, 2};
    for (int s = 0; s < 4; s++) {
        bn_ctx b = {.m = ms[s], .c = cs[s]};
        const size_t n = b.m * b.c;
        b.x = gc_random(&r, n, -2, 2), b.g = gc_random(&r, n, -1, 1), b.y = gc_zeros(n);
        b.gamma = gc_random(&r, b.c, 0.5f, 2), b.beta = gc_random(&r, b.c, -1, 1);
        b.mean = gc_zeros(b.c), b.invstd = gc_zeros(b.c);
        for (size_t i = 0; i < n; i++) b.x[i] += (float)(i % b.c);
        float *dx = gc_zeros(n), *dgamma = gc_zeros(b.c), *dbeta = gc_zeros(b.c);
        bn_silu_loss(&b);
        eng_bn_silu_backward_ref(dx, dgamma, dbeta, b.g, b.x, b.mean, b.invstd, b.gamma, b.beta, b.m, b.c);
        char what[64];
        snprintf(what, sizeof what, "bn+silu m %zu c %d dx", b.m, b.c);
        gc_expect(what, bn_silu_loss, &b, b.x, n, dx, 1e-2, 1e-2);
        snprintf(what, sizeof what, "bn+silu m %zu c %d dgamma", b.m, b.c);
        gc_expect(what, bn_silu_loss, &b, b.gamma, b.c, dgamma, 1e-2, 1e-2);
        snprintf(what, sizeof what, "bn+silu m %zu c %d dbeta", b.m, b.c);
        gc_expect(what, bn_silu_loss, &b, b.beta, b.c, dbeta, 1e-2, 1e-2);

        /* The composition, from the same statistics. */
        bn_silu_loss(&b);
        float *y = gc_zeros(n), *dy = gc_zeros(n), *cx = gc_zeros(n), *cg = gc_zeros(b.c), *cb = gc_zeros(b.c);
        float *m2 = gc_zeros(b.c), *i2 = gc_zeros(b.c);
        eng_bn_forward_train_ref(y, m2, i2, b.x, b.gamma, b.beta, b.m, b.c, 1e-5f);
        assert_memory_equal(m2, b.mean, b.c * sizeof(float));
        eng_silu_backward_ref(dy, b.g, y, n);
        eng_bn_backward_ref(cx, cg, cb, dy, b.x, b.mean, b.invstd, b.gamma, b.m, b.c);
        if (gc_rel_diff(cx, dx, n) > 1e-5 || gc_rel_diff(cg, dgamma, b.c) > 1e-5 || gc_rel_diff(cb, dbeta, b.c) > 1e-5)
            fail_msg("shape %d: fused reference differs from the composition: dx %g, dgamma %g, dbeta %g", s,
                     gc_rel_diff(cx, dx, n), gc_rel_diff(cg, dgamma, b.c), gc_rel_diff(cb, dbeta, b.c));

        /* A second call doubles everything; NULL outputs are skipped. */
        float *dx2 = gc_zeros(n), *dgamma2 = gc_zeros(b.c), *dbeta2 = gc_zeros(b.c);
        for (int k = 0; k < 2; k++)
            eng_bn_silu_backward_ref(dx2, dgamma2, dbeta2, b.g, b.x, b.mean, b.invstd, b.gamma, b.beta, b.m, b.c);
        eng_bn_silu_backward_ref(NULL, NULL, dbeta2, b.g, b.x, b.mean, b.invstd, b.gamma, b.beta, b.m, b.c);
        for (size_t i = 0; i < n; i++) assert_true(dx2[i] == 2 * dx[i]);
        for (int i = 0; i < b.c; i++) {
            assert_true(dgamma2[i] == 2 * dgamma[i]);
            assert_close(dbeta2[i], 3 * dbeta[i], 1e-6);
        }
        free(b.x), free(b.g), free(b.y), free(b.gamma), free(b.beta), free(b.mean), free(b.invstd);
        free(dx), free(dgamma), free(dbeta), free(dx2), free(dgamma2), free(dbeta2);
        free(y), free(dy), free(cx), free(cg), free(cb), free(m2), free(i2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_channels_are_strided),
        cmocka_unit_test(test_train_normalizes),
        cmocka_unit_test(test_running_single_row),
        cmocka_unit_test(test_backward_gradcheck),
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_bn_silu_by_hand),
        cmocka_unit_test(test_bn_silu_backward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
