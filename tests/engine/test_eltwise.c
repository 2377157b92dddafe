/*
 * Tests of the reference element-wise ops (SiLU, sigmoid, add): known
 * values, no overflow at extreme inputs, gradients against finite
 * differences, accumulation, and a check that the gradient checker itself
 * catches a wrong gradient.
 */
#include <float.h>
#include <string.h>

#include "engine/gradcheck.h"
#include "lupe/engine.h"

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol * (fabs(want) > 1 ? fabs(want) : 1)))
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

static void test_values(void **state)
{
    (void)state;
    const float x[7] = {0, 1, -1, 100, -100, 1000, -1000};
    float s[7], y[7];
    eng_sigmoid_forward_ref(s, x, 7);
    eng_silu_forward_ref(y, x, 7);
    const double s1 = 1 / (1 + exp(-1.0));
    assert_close(s[0], 0.5, 1e-7);
    assert_close(s[1], s1, 1e-7);
    assert_close(s[2], 1 - s1, 1e-7);
    /* Far from 0 the naive 1/(1+exp(-x)) would overflow exp for x = -1000. */
    assert_true(s[3] == 1.0f && s[5] == 1.0f);
    assert_true(s[4] >= 0 && s[4] < 1e-43f && s[6] == 0.0f);
    assert_close(y[0], 0, 1e-7);
    assert_close(y[1], s1, 1e-7);
    assert_close(y[2], -(1 - s1), 1e-7);
    assert_true(y[3] == 100.0f && y[5] == 1000.0f);
    assert_true(y[4] <= 0 && y[4] > -1e-30f && y[6] == 0.0f);
    for (int i = 0; i < 7; i++) assert_true(isfinite(s[i]) && isfinite(y[i]));

    /* In place is allowed. */
    float z[3] = {0, 1, -1};
    eng_silu_forward_ref(z, z, 3);
    assert_true(z[0] == y[0] && z[1] == y[1] && z[2] == y[2]);

    const float a[3] = {1, 2, 3}, b[3] = {10, 20, -3};
    float c[3];
    eng_add_forward_ref(c, a, b, 3);
    assert_true(c[0] == 11 && c[1] == 22 && c[2] == 0);

    /* Gradients at the extremes stay finite: SiLU' tends to 1 and 0. */
    float g[7] = {0}, ones[7] = {1, 1, 1, 1, 1, 1, 1};
    eng_silu_backward_ref(g, ones, x, 7);
    assert_close(g[0], 0.5, 1e-7);
    assert_close(g[1], s1 * (1 + 1 - s1), 1e-6);
    assert_true(g[3] == 1.0f && g[5] == 1.0f && g[6] == 0.0f && fabsf(g[4]) < 1e-30f);
}

typedef struct {
    int op; /* 0 silu, 1 sigmoid, 2 add (wrt a), 3 add (wrt b) */
    size_t n;
    float *x, *x2, *g, *y;
} ew_ctx;

static double ew_loss(void *p)
{
    ew_ctx *c = p;
    if (c->op == 0) eng_silu_forward_ref(c->y, c->x, c->n);
    else if (c->op == 1) eng_sigmoid_forward_ref(c->y, c->x, c->n);
    else eng_add_forward_ref(c->y, c->x, c->x2, c->n);
    return gc_dot(c->g, c->y, c->n);
}

/* SiLU and sigmoid are smooth: step 1e-2 leaves a truncation error of
 * order 1e-5 relative, but the float rounding of outputs near 1 divided by
 * the step is ~3e-6 absolute, up to ~1e-3 of a small tensor's floor;
 * tolerance 1e-2. Addition is linear: step 0.25, tolerance 1e-3. */
static void test_gradcheck(void **state)
{
    (void)state;
    gc_rng r = gc_seed(31);
    const size_t n = 200;
    ew_ctx c = {.n = n, .x = gc_random(&r, n, -6, 6), .x2 = gc_random(&r, n, -1, 1), .g = gc_random(&r, n, -1, 1),
                .y = gc_zeros(n)};
    float *dx = gc_zeros(n), *dx2 = gc_zeros(n), *out = gc_zeros(n);

    c.op = 0;
    eng_silu_backward_ref(dx, c.g, c.x, n);
    gc_expect("silu", ew_loss, &c, c.x, n, dx, 1e-2, 1e-2);

    c.op = 1;
    memset(dx, 0, n * sizeof *dx);
    eng_sigmoid_forward_ref(out, c.x, n);
    eng_sigmoid_backward_ref(dx, c.g, out, n);
    gc_expect("sigmoid", ew_loss, &c, c.x, n, dx, 1e-2, 1e-2);

    c.op = 2;
    memset(dx, 0, n * sizeof *dx);
    eng_add_backward_ref(dx, dx2, c.g, n);
    gc_expect("add a", ew_loss, &c, c.x, n, dx, 0.25, 1e-3);
    gc_expect("add b", ew_loss, &c, c.x2, n, dx2, 0.25, 1e-3);
    free(c.x), free(c.x2), free(c.g), free(c.y), free(dx), free(dx2), free(out);
}

static void test_accumulates(void **state)
{
    (void)state;
    gc_rng r = gc_seed(32);
    const size_t n = 50;
    float *x = gc_random(&r, n, -4, 4), *g = gc_random(&r, n, -1, 1), *s = gc_zeros(n);
    float *d1 = gc_zeros(n), *d2 = gc_zeros(n), *e1 = gc_zeros(n), *e2 = gc_zeros(n);
    eng_sigmoid_forward_ref(s, x, n);
    eng_silu_backward_ref(d1, g, x, n);
    eng_silu_backward_ref(d2, g, x, n);
    eng_silu_backward_ref(d2, g, x, n);
    eng_sigmoid_backward_ref(e1, g, s, n);
    eng_sigmoid_backward_ref(e2, g, s, n);
    eng_sigmoid_backward_ref(e2, g, s, n);
    for (size_t i = 0; i < n; i++) assert_true(d2[i] == 2 * d1[i] && e2[i] == 2 * e1[i]);

    /* add: NULL skips an input; the same buffer for both inputs (x + x)
     * receives both gradients. */
    float *a = gc_zeros(n);
    eng_add_backward_ref(a, NULL, g, n);
    eng_add_backward_ref(NULL, a, g, n);
    for (size_t i = 0; i < n; i++) assert_true(a[i] == 2 * g[i]);
    eng_add_backward_ref(a, a, g, n);
    for (size_t i = 0; i < n; i++) assert_true(a[i] == 4 * g[i]);
    free(x), free(g), free(s), free(d1), free(d2), free(e1), free(e2), free(a);
}

/* The checker must be able to fail: a gradient with one element wrong by
 * 5%, or with the largest and smallest elements swapped, is caught. */
static void test_gradcheck_catches_errors(void **state)
{
    (void)state;
    gc_rng r = gc_seed(33);
    const size_t n = 40;
    ew_ctx c = {.op = 0, .n = n, .x = gc_random(&r, n, -3, 3), .g = gc_random(&r, n, -1, 1), .y = gc_zeros(n)};
    float *dx = gc_zeros(n);
    eng_silu_backward_ref(dx, c.g, c.x, n);
    assert_true(gc_max_error(ew_loss, &c, c.x, n, dx, 1e-2, NULL, NULL) < 1e-2);
    size_t big = 0, small = 0;
    for (size_t i = 1; i < n; i++) {
        if (fabsf(dx[i]) > fabsf(dx[big])) big = i;
        if (fabsf(dx[i]) < fabsf(dx[small])) small = i;
    }
    dx[big] *= 1.05f;
    assert_true(gc_max_error(ew_loss, &c, c.x, n, dx, 1e-2, NULL, NULL) > 2e-2);
    dx[big] /= 1.05f;
    const float t = dx[big];
    dx[big] = dx[small], dx[small] = t;
    assert_true(gc_max_error(ew_loss, &c, c.x, n, dx, 1e-2, NULL, NULL) > 2e-2);
    free(c.x), free(c.g), free(c.y), free(dx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_accumulates),
        cmocka_unit_test(test_gradcheck_catches_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
