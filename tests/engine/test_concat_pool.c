/*
 * Tests of the reference data-movement ops: channel concat and split, max
 * pooling (padding as -inf, ties to the first maximum, NaN propagation) and
 * nearest x2 upsampling, by hand and against finite differences.
 */
#include <string.h>

#include "engine/gradcheck.h"
#include "lupe/engine.h"

static void test_concat_split_by_hand(void **state)
{
    (void)state;
    /* m = 2 rows; input 0 has one channel, input 1 two. */
    const float a[2] = {1, 2}, b[4] = {10, 11, 20, 21};
    const float *ins[2] = {a, b};
    const int cs[2] = {1, 2};
    float out[6];
    eng_concat_forward_ref(out, ins, cs, 2, 2);
    const float want[6] = {1, 10, 11, 2, 20, 21};
    assert_memory_equal(out, want, sizeof want);

    float sa[2], sb[4];
    float *outs[2] = {sa, sb};
    eng_split_forward_ref(outs, cs, 2, out, 2);
    assert_memory_equal(sa, a, sizeof a);
    assert_memory_equal(sb, b, sizeof b);

    /* concat backward hands each input its slice of dout, added; a NULL
     * input is skipped. */
    float da[2] = {100, 100}, db[4] = {0};
    float *dins[2] = {da, db};
    eng_concat_backward_ref(dins, cs, 2, want, 2);
    const float wda[2] = {101, 102};
    assert_memory_equal(da, wda, sizeof wda);
    assert_memory_equal(db, b, sizeof b);
    dins[0] = NULL;
    eng_concat_backward_ref(dins, cs, 2, want, 2);
    assert_memory_equal(da, wda, sizeof wda);
    for (int i = 0; i < 4; i++) assert_true(db[i] == 2 * b[i]);

    /* split backward writes each slice's gradient into its channels; a
     * NULL slice gradient (an unused output) adds nothing. */
    float din[6] = {0};
    const float *douts[2] = {a, NULL};
    eng_split_backward_ref(din, douts, cs, 2, 2);
    const float wdin[6] = {1, 0, 0, 2, 0, 0};
    assert_memory_equal(din, wdin, sizeof wdin);
    douts[1] = b;
    eng_split_backward_ref(din, douts, cs, 2, 2);
    const float wdin2[6] = {2, 10, 11, 4, 20, 21};
    assert_memory_equal(din, wdin2, sizeof wdin2);
}

typedef struct {
    int split; /* 0: L over concat's output; 1: L over split's outputs */
    size_t m;
    const int *cs;
    int k;
    float *ins[3], *whole, *g;
} cat_ctx;

static double cat_loss(void *p)
{
    cat_ctx *c = p;
    size_t ct = 0;
    for (int i = 0; i < c->k; i++) ct += (size_t)c->cs[i];
    if (!c->split) {
        eng_concat_forward_ref(c->whole, (const float *const *)c->ins, c->cs, c->k, c->m);
        return gc_dot(c->g, c->whole, c->m * ct);
    }
    eng_split_forward_ref(c->ins, c->cs, c->k, c->whole, c->m);
    double s = 0;
    size_t off = 0;
    for (int i = 0; i < c->k; i++) {
        s += gc_dot(c->g + off, c->ins[i], c->m * (size_t)c->cs[i]);
        off += c->m * (size_t)c->cs[i];
    }
    return s;
}

/* Both ops are linear: step 0.25, tolerance 1e-3. */
static void test_concat_split_gradcheck(void **state)
{
    (void)state;
    gc_rng r = gc_seed(41);
    const int cs[3] = {2, 1, 3};
    const size_t m = 5, ct = 6;
    cat_ctx c = {.m = m, .cs = cs, .k = 3, .whole = gc_random(&r, m * ct, -1, 1), .g = gc_random(&r, m * ct, -1, 1)};
    float *d[3];
    for (int i = 0; i < 3; i++) c.ins[i] = gc_random(&r, m * cs[i], -1, 1), d[i] = gc_zeros(m * cs[i]);
    eng_concat_backward_ref(d, cs, 3, c.g, m);
    for (int i = 0; i < 3; i++) gc_expect("concat", cat_loss, &c, c.ins[i], m * cs[i], d[i], 0.25, 1e-3);

    /* For split, g is laid out slice after slice. */
    c.split = 1;
    float *dwhole = gc_zeros(m * ct);
    const float *douts[3] = {c.g, c.g + m * 2, c.g + m * 3};
    eng_split_backward_ref(dwhole, douts, cs, 3, m);
    gc_expect("split", cat_loss, &c, c.whole, m * ct, dwhole, 0.25, 1e-3);
    for (int i = 0; i < 3; i++) free(c.ins[i]), free(d[i]);
    free(c.whole), free(c.g), free(dwhole);
}

/* 1x3x3x1 input 1..9: a 3x3 window clipped at the borders. */
static const float in9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static void test_maxpool_by_hand(void **state)
{
    (void)state;
    float out[9];
    eng_maxpool_forward_ref(out, in9, 1, 3, 3, 1, 3);
    const float want[9] = {5, 6, 6, 8, 9, 9, 8, 9, 9};
    assert_memory_equal(out, want, sizeof want);
    eng_maxpool_forward_ref(out, in9, 1, 3, 3, 1, 1); /* k = 1 is the identity */
    assert_memory_equal(out, in9, sizeof in9);

    /* Padding is -inf, not 0: an all-negative input never yields 0. */
    float neg[9];
    for (int i = 0; i < 9; i++) neg[i] = -in9[i];
    eng_maxpool_forward_ref(out, neg, 1, 3, 3, 1, 3);
    const float wneg[9] = {-1, -1, -2, -1, -1, -2, -4, -4, -5};
    assert_memory_equal(out, wneg, sizeof wneg);

    /* k = 5 covers the whole 3x3 input from every position. */
    eng_maxpool_forward_ref(out, neg, 1, 3, 3, 1, 5);
    for (int i = 0; i < 9; i++) assert_true(out[i] == -1);

    /* Backward routes each output's gradient to its window's maximum. */
    float din[9] = {0};
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    eng_maxpool_backward_ref(din, ones, in9, 1, 3, 3, 1, 3);
    const float wdin[9] = {0, 0, 0, 0, 1, 2, 0, 2, 4};
    assert_memory_equal(din, wdin, sizeof wdin);
}

/* On ties the first maximum in scan order (ky, then kx) takes the
 * gradient: for a constant input that is each window's top-left in-bounds
 * position. PyTorch's CPU kernel also keeps the first maximum (strict '>'),
 * but other backends may pick another tied element; this is lupe's rule,
 * not a promise about other libraries. */
static void test_maxpool_ties(void **state)
{
    (void)state;
    float flat[9], din[9] = {0}, out[9];
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 9; i++) flat[i] = 7;
    eng_maxpool_forward_ref(out, flat, 1, 3, 3, 1, 3);
    for (int i = 0; i < 9; i++) assert_true(out[i] == 7);
    eng_maxpool_backward_ref(din, ones, flat, 1, 3, 3, 1, 3);
    /* Outputs (0,0) (0,1) (1,0) (1,1) start at (0,0); (0,2) (1,2) at (0,1);
     * (2,0) (2,1) at (1,0); (2,2) at (1,1). */
    const float want[9] = {4, 2, 0, 2, 1, 0, 0, 0, 0};
    assert_memory_equal(din, want, sizeof want);
}

/* A NaN in a window makes that output NaN, as in PyTorch, so a diverged
 * activation is not hidden by pooling. */
static void test_maxpool_nan(void **state)
{
    (void)state;
    float x[9], out[9];
    memcpy(x, in9, sizeof x);
    x[0] = NAN;
    eng_maxpool_forward_ref(out, x, 1, 3, 3, 1, 3);
    const int nan_at[9] = {1, 1, 0, 1, 1, 0, 0, 0, 0};
    for (int i = 0; i < 9; i++) assert_int_equal(isnan(out[i]) ? 1 : 0, nan_at[i]);
    x[0] = 1, x[4] = NAN;
    eng_maxpool_forward_ref(out, x, 1, 3, 3, 1, 3);
    for (int i = 0; i < 9; i++) assert_true(isnan(out[i]));
}

typedef struct {
    int up; /* 0 maxpool, 1 upsample */
    int n, h, w, c, k;
    float *x, *g, *y;
} pool_ctx;

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    size_t ny = (size_t)c->n * c->h * c->w * c->c;
    if (c->up) eng_upsample2_forward_ref(c->y, c->x, c->n, c->h, c->w, c->c), ny *= 4;
    else eng_maxpool_forward_ref(c->y, c->x, c->n, c->h, c->w, c->c, c->k);
    return gc_dot(c->g, c->y, ny);
}

/* Max pooling is piecewise linear. Inputs are a shuffled grid with spacing
 * 0.1, so a step of 1e-2 never changes which element is a window's
 * maximum and the difference is exact up to rounding: tolerance 1e-3. */
static void test_pool_gradcheck(void **state)
{
    (void)state;
    gc_rng r = gc_seed(42);
    const int shapes[][5] = {{1, 4, 5, 2, 3}, {2, 5, 3, 3, 5}, {1, 6, 6, 1, 3}, {2, 3, 4, 2, 1}, {1, 7, 5, 2, 5}};
    for (int s = 0; s < 5; s++) {
        pool_ctx c = {.n = shapes[s][0], .h = shapes[s][1], .w = shapes[s][2], .c = shapes[s][3], .k = shapes[s][4]};
        const size_t n = (size_t)c.n * c.h * c.w * c.c;
        c.x = gc_zeros(n), c.g = gc_random(&r, 4 * n, -1, 1), c.y = gc_zeros(4 * n);
        for (size_t i = 0; i < n; i++) c.x[i] = (float)((double)i - n / 2.0) * 0.1f;
        for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            const size_t j = gc_next(&r) % (i + 1);
            const float t = c.x[i];
            c.x[i] = c.x[j], c.x[j] = t;
        }
        float *dx = gc_zeros(n);
        eng_maxpool_backward_ref(dx, c.g, c.x, c.n, c.h, c.w, c.c, c.k);
        char what[64];
        snprintf(what, sizeof what, "maxpool shape %d", s);
        gc_expect(what, pool_loss, &c, c.x, n, dx, 1e-2, 1e-3);

        /* Upsampling is linear: step 0.25. */
        c.up = 1;
        memset(dx, 0, n * sizeof *dx);
        eng_upsample2_backward_ref(dx, c.g, c.n, c.h, c.w, c.c);
        snprintf(what, sizeof what, "upsample shape %d", s);
        gc_expect(what, pool_loss, &c, c.x, n, dx, 0.25, 1e-3);

        /* Both backward passes add: a second call doubles. */
        float *dx2 = gc_zeros(n), *dm = gc_zeros(n);
        eng_upsample2_backward_ref(dx2, c.g, c.n, c.h, c.w, c.c);
        eng_upsample2_backward_ref(dx2, c.g, c.n, c.h, c.w, c.c);
        for (size_t i = 0; i < n; i++) assert_true(dx2[i] == 2 * dx[i]);
        memset(dx, 0, n * sizeof *dx);
        eng_maxpool_backward_ref(dx, c.g, c.x, c.n, c.h, c.w, c.c, c.k);
        eng_maxpool_backward_ref(dm, c.g, c.x, c.n, c.h, c.w, c.c, c.k);
        eng_maxpool_backward_ref(dm, c.g, c.x, c.n, c.h, c.w, c.c, c.k);
        for (size_t i = 0; i < n; i++) assert_true(fabsf(dm[i] - 2 * dx[i]) <= 1e-6f * (1 + fabsf(dx[i])));
        free(c.x), free(c.g), free(c.y), free(dx), free(dx2), free(dm);
    }
}

static void test_upsample_by_hand(void **state)
{
    (void)state;
    /* 1x1x2x2: pixels [1,10] and [2,20] -> 1x2x4x2. */
    const float x[4] = {1, 10, 2, 20};
    float y[16];
    eng_upsample2_forward_ref(y, x, 1, 1, 2, 2);
    const float want[16] = {1, 10, 1, 10, 2, 20, 2, 20, /**/ 1, 10, 1, 10, 2, 20, 2, 20};
    assert_memory_equal(y, want, sizeof want);
    /* Each input pixel's gradient is the sum of its 2x2 block. */
    float g[16], dx[4] = {0};
    for (int i = 0; i < 16; i++) g[i] = (float)i;
    eng_upsample2_backward_ref(dx, g, 1, 1, 2, 2);
    const float wdx[4] = {0 + 2 + 8 + 10, 1 + 3 + 9 + 11, 4 + 6 + 12 + 14, 5 + 7 + 13 + 15};
    assert_memory_equal(dx, wdx, sizeof wdx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concat_split_by_hand), cmocka_unit_test(test_concat_split_gradcheck),
        cmocka_unit_test(test_maxpool_by_hand),      cmocka_unit_test(test_maxpool_ties),
        cmocka_unit_test(test_maxpool_nan),          cmocka_unit_test(test_pool_gradcheck),
        cmocka_unit_test(test_upsample_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
