/*
 * Tests of the inference convolution (oneDNN, weights reordered once,
 * activation and residual add fused) against eng_conv_infer_ref: every
 * activation, with and without bias and residual, on shapes with stride 2,
 * 1x1, 5x5, groups, depthwise, asymmetric padding (oh/ow set by hand) and
 * batches; that the weights are copied (the caller may free its own); that
 * no shape here runs oneDNN's reference kernel; failed allocations.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/gradcheck.h"
#include "lupe/engine.h"

typedef struct shape {
    int n, h, w, c, o, k, s, p, g, bias;
    int pb; /* bottom/right padding when different from p (asymmetric), else -1 */
} shape;

static const shape shapes[] = {
    {1, 9, 9, 4, 8, 3, 1, 1, 1, 1, -1},     /* plain 3x3, bias */
    {1, 10, 10, 8, 16, 3, 2, 1, 1, 0, -1},  /* stride 2, even input */
    {2, 11, 7, 5, 6, 1, 1, 0, 1, 1, -1},    /* 1x1, odd channels, not square, batch 2 */
    {1, 8, 8, 16, 16, 3, 2, 1, 16, 1, -1},  /* depthwise, stride 2 */
    {1, 9, 9, 8, 12, 3, 1, 1, 4, 1, -1},    /* groups 4 */
    {1, 13, 13, 3, 16, 3, 2, 1, 1, 1, -1},  /* the stem: 3 channels, odd input */
    {1, 6, 6, 32, 24, 5, 1, 2, 1, 1, -1},   /* 5x5, pad 2 */
    {1, 12, 12, 64, 64, 3, 1, 1, 1, 1, -1}, /* wider: blocked kernels */
    {1, 16, 4, 16, 1, 1, 1, 0, 1, 0, -1},   /* YOLOv8's DFL: 16 bins -> 1, no bias */
    {1, 10, 10, 8, 8, 3, 2, 0, 1, 1, 1},    /* SAME_UPPER-style padding: 0 top/left, 1 bottom/right */
    {1, 9, 9, 8, 8, 3, 1, 1, 1, 1, 0},      /* pad 1 top/left, 0 bottom/right: 8x8 out */
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static eng_conv_dims dims_of(const shape *s)
{
    eng_conv_dims d;
    if (eng_conv_dims_init(&d, s->n, s->h, s->w, s->c, s->o, s->k, s->k, s->s, s->p, s->g))
        fail_msg("dims: %s", lupe_errmsg());
    if (s->pb >= 0) {
        d.oh = (s->h + s->p + s->pb - s->k) / s->s + 1;
        d.ow = (s->w + s->p + s->pb - s->k) / s->s + 1;
    }
    return d;
}

static size_t n_in(const eng_conv_dims *d) { return (size_t)d->n * d->h * d->w * d->c; }
static size_t n_out(const eng_conv_dims *d) { return (size_t)d->n * d->oh * d->ow * d->o; }
static size_t n_w(const eng_conv_dims *d) { return (size_t)d->o * d->kh * d->kw * (d->c / d->groups); }

/* max |fast - ref| <= 1e-5 * max |ref| + 1e-6: float sums in another order
 * than the reference's double sums, and oneDNN's own exp in the activations
 * (about 1 ulp). */
static void expect_close(const float *got, const float *ref, size_t n, const char *what, const shape *s, eng_act act,
                         int add)
{
    double maxd = 0, maxr = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - ref[i]);
        if (!(diff <= maxd)) maxd = diff, at = i;
        if (fabs(ref[i]) > maxr) maxr = fabs(ref[i]);
    }
    if (!(maxd <= 1e-5 * maxr + 1e-6))
        fail_msg("%s, act %s%s, shape n%d %dx%d c%d o%d k%d s%d p%d/%d g%d bias %d: max diff %g at %zu (%g vs %g), "
                 "max |ref| %g",
                 what, eng_act_name(act), add ? " + add" : "", s->n, s->h, s->w, s->c, s->o, s->k, s->s, s->p, s->pb,
                 s->g, s->bias, maxd, at, (double)got[at], (double)ref[at], maxr);
}

static void check(const shape *s, eng_act act, float alpha, int with_add)
{
    eng_conv_dims d = dims_of(s);
    gc_rng r = gc_seed(0xc0417 + (uint64_t)s->c * 131 + (uint64_t)s->o * 7 + (uint64_t)act * 3 + (uint64_t)with_add);
    float *in = gc_random(&r, n_in(&d), -1, 1), *w = gc_random(&r, n_w(&d), -1, 1);
    float *b = s->bias ? gc_random(&r, (size_t)d.o, -1, 1) : NULL;
    float *add = with_add ? gc_random(&r, n_out(&d), -1, 1) : NULL;
    float *out_f = gc_zeros(n_out(&d)), *out_r = gc_zeros(n_out(&d));
    /* The handle keeps its own copy: the caller's weights are garbage by
     * the time the forward pass runs. */
    float *w_copy = malloc(n_w(&d) * sizeof(float)), *b_copy = b ? malloc((size_t)d.o * sizeof(float)) : NULL;
    assert_non_null(w_copy);
    memcpy(w_copy, w, n_w(&d) * sizeof(float));
    if (b) memcpy(b_copy, b, (size_t)d.o * sizeof(float));

    eng_conv_infer *c = NULL;
    if (eng_conv_infer_new(&d, w_copy, b_copy, act, alpha, with_add, &c)) fail_msg("new: %s", lupe_errmsg());
    if (strncmp(eng_conv_infer_impl(c), "ref", 3) == 0)
        fail_msg("shape c%d o%d k%d g%d act %s runs oneDNN's reference kernel %s", s->c, s->o, s->k, s->g,
                 eng_act_name(act), eng_conv_infer_impl(c));
    memset(w_copy, 0xff, n_w(&d) * sizeof(float)); /* NaNs */
    if (b_copy) memset(b_copy, 0xff, (size_t)d.o * sizeof(float));
    char *scratch = malloc(eng_conv_infer_scratch(c) + 1);
    assert_non_null(scratch);
    memset(scratch, 0x7f, eng_conv_infer_scratch(c) + 1);
    assert_int_equal(eng_conv_infer_forward(c, out_f, in, add, scratch + 1), LUPE_OK);
    eng_conv_infer_ref(out_r, in, w, b, add, &d, act, alpha);
    expect_close(out_f, out_r, n_out(&d), "forward", s, act, with_add);
    /* A second call gives the same bits: nothing of the first remains. */
    float *again = gc_zeros(n_out(&d));
    assert_int_equal(eng_conv_infer_forward(c, again, in, add, scratch + 1), LUPE_OK);
    assert_memory_equal(again, out_f, n_out(&d) * sizeof(float));
    eng_conv_infer_free(c);
    free(scratch), free(w_copy), free(b_copy), free(again);
    free(in), free(w), free(b), free(add), free(out_f), free(out_r);
}

static void test_shapes_activations(void **state)
{
    (void)state;
    const eng_act acts[] = {ENG_ACT_NONE, ENG_ACT_SILU, ENG_ACT_RELU, ENG_ACT_LEAKY_RELU, ENG_ACT_SIGMOID};
    for (size_t i = 0; i < NSHAPES; i++)
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) check(&shapes[i], acts[a], 0.1f, 0);
}

static void test_residual_add(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSHAPES; i++) {
        check(&shapes[i], ENG_ACT_SILU, 0, 1);
        check(&shapes[i], ENG_ACT_NONE, 0, 1);
    }
}

/* The reference itself on a case worked by hand: 1x2x2x1 input, 1x1
 * kernel of weight 2, bias -1: x = 1, 2, -3, 0 -> conv 1, 3, -7, -1. */
static void test_reference_by_hand(void **state)
{
    (void)state;
    eng_conv_dims d;
    assert_int_equal(eng_conv_dims_init(&d, 1, 2, 2, 1, 1, 1, 1, 1, 0, 1), LUPE_OK);
    const float in[4] = {1, 2, -3, 0}, w[1] = {2}, b[1] = {-1}, add[4] = {10, 20, 30, 40};
    float out[4];
    eng_conv_infer_ref(out, in, w, b, NULL, &d, ENG_ACT_RELU, 0);
    const float relu[4] = {1, 3, 0, 0};
    assert_memory_equal(out, relu, sizeof relu);
    eng_conv_infer_ref(out, in, w, b, add, &d, ENG_ACT_LEAKY_RELU, 0.5f);
    const float leaky[4] = {11, 23, 26.5f, 39.5f};
    assert_memory_equal(out, leaky, sizeof leaky);
    eng_conv_infer_ref(out, in, w, b, NULL, &d, ENG_ACT_SILU, 0);
    assert_float_equal(out[0], 1 / (1 + exp(-1.0)), 1e-7);
    assert_float_equal(out[2], -7 / (1 + exp(7.0)), 1e-7);
    eng_conv_infer_ref(out, in, w, b, NULL, &d, ENG_ACT_SIGMOID, 0);
    assert_float_equal(out[1], 1 / (1 + exp(-3.0)), 1e-7);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    const shape s = {1, 9, 9, 8, 8, 3, 1, 1, 1, 1, -1};
    eng_conv_dims d = dims_of(&s);
    float *w = gc_zeros(n_w(&d)), *b = gc_zeros((size_t)d.o);
    lupe_alloc_stats st0, st1;
    lupe_alloc_get_stats(&st0);
    for (uint64_t nth = 1; nth <= 2; nth++) {
        eng_conv_infer *c = NULL;
        lupe_alloc_fail_nth(nth);
        lupe_status st = eng_conv_infer_new(&d, w, b, ENG_ACT_SILU, 0, 0, &c);
        lupe_alloc_fail_nth(0);
        assert_int_equal(st, LUPE_ENOMEM);
        assert_null(c);
    }
    lupe_alloc_get_stats(&st1);
    assert_int_equal(st1.live_bytes, st0.live_bytes);
    eng_conv_infer *c = NULL;
    assert_int_equal(eng_conv_infer_new(&d, w, b, ENG_ACT_SILU, 0, 0, &c), LUPE_OK);
    assert_true(eng_conv_infer_bytes(c) > n_w(&d) * sizeof(float));
    eng_conv_infer_free(c);
    eng_conv_infer_free(NULL);
    free(w), free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_by_hand),
        cmocka_unit_test(test_shapes_activations),
        cmocka_unit_test(test_residual_add),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
