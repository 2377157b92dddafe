/*
 * Tests of the reference softmax (over the last axis), the double sum and
 * binary cross-entropy with logits: known values, stability at extreme
 * inputs, gradients against finite differences, and accumulation.
 */
#include <string.h>

#include "engine/gradcheck.h"
#include "lupe/engine.h"

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol * (fabs(want) > 1 ? fabs(want) : 1)))
        fail_msg("got %.9g, want %.9g (tolerance %g)", got, want, tol);
}

static void test_softmax_values(void **state)
{
    (void)state;
    /* Row 0: exp gives 1, 2, 3, so 1/6, 2/6, 3/6. Row 1 is row 0 plus 50:
     * the same. Row 2 would overflow exp without subtracting the maximum;
     * row 3 would underflow to 0/0. */
    const float x[12] = {0, (float)log(2.0), (float)log(3.0), 50, 50 + (float)log(2.0), 50 + (float)log(3.0),
                         1000, 1000, -1000, -1000, -1000, -1000};
    float y[12];
    eng_softmax_forward_ref(y, x, 4, 3);
    const double want[12] = {1 / 6.0, 2 / 6.0, 3 / 6.0, 1 / 6.0, 2 / 6.0, 3 / 6.0,
                             0.5,     0.5,     0,       1 / 3.0, 1 / 3.0, 1 / 3.0};
    for (int i = 0; i < 12; i++) assert_close(y[i], want[i], 1e-6);

    /* Rows of 16 bins (DFL's reg_max) sum to 1. */
    gc_rng r = gc_seed(51);
    float *z = gc_random(&r, 10 * 16, -20, 20), *p = gc_zeros(10 * 16);
    eng_softmax_forward_ref(p, z, 10, 16);
    for (int row = 0; row < 10; row++) {
        double s = 0;
        for (int j = 0; j < 16; j++) {
            assert_true(p[row * 16 + j] >= 0);
            s += p[row * 16 + j];
        }
        assert_close(s, 1, 1e-6);
    }
    free(z), free(p);
}

typedef struct {
    int bce;
    size_t rows;
    int cols;
    float *x, *t, *g, *y;
} sl_ctx;

static double sl_loss(void *p)
{
    sl_ctx *c = p;
    const size_t n = c->rows * c->cols;
    if (c->bce) return eng_bce_logits_forward_ref(c->x, c->t, n);
    eng_softmax_forward_ref(c->y, c->x, c->rows, c->cols);
    return gc_dot(c->g, c->y, n);
}

/* Softmax is smooth: step 1e-2, and as for the other smooth ops the float
 * rounding of its outputs sets the error floor; tolerance 1e-2. BCE's loss
 * is computed in double from the logits, so only truncation (~1e-5) is
 * left: tolerance 1e-3. */
static void test_gradcheck(void **state)
{
    (void)state;
    gc_rng r = gc_seed(52);
    const size_t shapes[][2] = {{7, 16}, {3, 5}, {1, 1}, {4, 2}};
    for (int s = 0; s < 4; s++) {
        sl_ctx c = {.rows = shapes[s][0], .cols = (int)shapes[s][1]};
        const size_t n = c.rows * c.cols;
        c.x = gc_random(&r, n, -3, 3), c.g = gc_random(&r, n, -1, 1), c.y = gc_zeros(n), c.t = gc_random(&r, n, 0, 1);
        float *dx = gc_zeros(n);
        char what[64];
        if (c.cols > 1) { /* a single column's softmax is constant 1: gradient 0 */
            eng_softmax_forward_ref(c.y, c.x, c.rows, c.cols);
            eng_softmax_backward_ref(dx, c.g, c.y, c.rows, c.cols);
            snprintf(what, sizeof what, "softmax %zux%d", c.rows, c.cols);
            gc_expect(what, sl_loss, &c, c.x, n, dx, 1e-2, 1e-2);
        } else {
            eng_softmax_forward_ref(c.y, c.x, 1, 1);
            eng_softmax_backward_ref(dx, c.g, c.y, 1, 1);
            assert_true(c.y[0] == 1.0f && dx[0] == 0.0f);
        }
        c.bce = 1;
        memset(dx, 0, n * sizeof *dx);
        eng_bce_logits_backward_ref(dx, c.x, c.t, n, 1.0f);
        snprintf(what, sizeof what, "bce %zu", n);
        gc_expect(what, sl_loss, &c, c.x, n, dx, 1e-2, 1e-3);
        free(c.x), free(c.g), free(c.y), free(c.t), free(dx);
    }
}

static void test_accumulates(void **state)
{
    (void)state;
    gc_rng r = gc_seed(53);
    const size_t rows = 5, n = rows * 8;
    float *x = gc_random(&r, n, -3, 3), *g = gc_random(&r, n, -1, 1), *y = gc_zeros(n), *t = gc_random(&r, n, 0, 1);
    float *d1 = gc_zeros(n), *d2 = gc_zeros(n), *b1 = gc_zeros(n), *b2 = gc_zeros(n);
    eng_softmax_forward_ref(y, x, rows, 8);
    eng_softmax_backward_ref(d1, g, y, rows, 8);
    eng_softmax_backward_ref(d2, g, y, rows, 8);
    eng_softmax_backward_ref(d2, g, y, rows, 8);
    /* BCE's scale multiplies the gradient: 0.5 and then 1.5 add up to 2x. */
    eng_bce_logits_backward_ref(b1, x, t, n, 1.0f);
    eng_bce_logits_backward_ref(b2, x, t, n, 0.5f);
    eng_bce_logits_backward_ref(b2, x, t, n, 1.5f);
    for (size_t i = 0; i < n; i++) {
        assert_true(d2[i] == 2 * d1[i]);
        assert_close(b2[i], 2 * b1[i], 1e-6);
    }
    free(x), free(g), free(y), free(t), free(d1), free(d2), free(b1), free(b2);
}

static void test_sum(void **state)
{
    (void)state;
    /* In float, 1e8 + 1 rounds back to 1e8 and the 1 is lost. */
    const float x[3] = {1e8f, 1, -1e8f};
    assert_true(eng_sum_ref(x, 3) == 1.0);
    assert_true(eng_sum_ref(x, 0) == 0.0);
    assert_true(eng_sum_ref(NULL, 0) == 0.0);
    const float y[4] = {0.5f, -2, 3.25f, 0};
    assert_true(eng_sum_ref(y, 4) == 1.75);
}

static void test_bce_values(void **state)
{
    (void)state;
    /* At x = 0 the loss is log 2 whatever the target. */
    const float x0[3] = {0, 0, 0}, t0[3] = {0, 0.3f, 1};
    assert_close(eng_bce_logits_forward_ref(x0, t0, 3), 3 * log(2.0), 1e-12);

    /* Moderate logits and soft targets: the naive formula is fine here. */
    const float x[4] = {2, -1.5f, 0.25f, 4}, t[4] = {0.3f, 1, 0, 0.9f};
    double want = 0;
    for (int i = 0; i < 4; i++) {
        const double s = 1 / (1 + exp(-(double)x[i]));
        want += -(t[i] * log(s) + (1 - t[i]) * log(1 - s));
    }
    assert_close(eng_bce_logits_forward_ref(x, t, 4), want, 1e-12);

    /* Extreme logits: the naive formula would take log(0); the stable one
     * gives ~0 for a confident right answer and |x| for a confident wrong one. */
    const float xe[4] = {100, 100, -100, -1000}, te[4] = {1, 0, 1, 0};
    assert_true(eng_bce_logits_forward_ref(xe, te, 1) < 1e-40);
    assert_close(eng_bce_logits_forward_ref(xe + 1, te + 1, 1), 100, 1e-12);
    assert_close(eng_bce_logits_forward_ref(xe + 2, te + 2, 1), 100, 1e-12);
    assert_true(eng_bce_logits_forward_ref(xe + 3, te + 3, 1) == 0.0);

    /* The gradient is s(x) - t: bounded, finite at any logit. */
    float dx[4] = {0};
    eng_bce_logits_backward_ref(dx, xe, te, 4, 2.0f);
    assert_close(dx[0], 0, 1e-7);
    assert_close(dx[1], 2, 1e-7);
    assert_close(dx[2], -2, 1e-7);
    assert_close(dx[3], 0, 1e-7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_values), cmocka_unit_test(test_gradcheck), cmocka_unit_test(test_accumulates),
        cmocka_unit_test(test_sum),            cmocka_unit_test(test_bce_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
