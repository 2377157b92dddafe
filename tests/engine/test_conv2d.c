/*
 * Tests of the reference convolution: shape checks and their messages,
 * forward values worked out by hand, agreement with an independent dense
 * formulation on random shapes, and gradients against finite differences.
 */
#include <string.h>

#include "engine/gradcheck.h"
#include "lupe/engine.h"

static eng_conv_dims dims(int n, int h, int w, int c, int o, int k, int s, int p, int g)
{
    eng_conv_dims d;
    if (eng_conv_dims_init(&d, n, h, w, c, o, k, k, s, p, g)) fail_msg("dims: %s", lupe_errmsg());
    return d;
}

static void test_dims_ok(void **state)
{
    (void)state;
    eng_conv_dims d = dims(2, 32, 20, 16, 32, 3, 1, 1, 1);
    assert_int_equal(d.oh, 32);
    assert_int_equal(d.ow, 20);
    d = dims(1, 32, 31, 16, 32, 3, 2, 1, 1); /* (32 + 2 - 3)/2 + 1 = 16, (31 + 2 - 3)/2 + 1 = 16 */
    assert_int_equal(d.oh, 16);
    assert_int_equal(d.ow, 16);
    d = dims(1, 3, 3, 8, 8, 3, 1, 0, 8); /* depthwise, kernel exactly the input */
    assert_int_equal(d.oh, 1);
    assert_int_equal(d.groups, 8);
    d = dims(1, 1, 1, 4, 6, 3, 1, 1, 2); /* kernel fits only thanks to padding */
    assert_int_equal(d.oh, 1);
    assert_int_equal(d.sh, 1);
    assert_int_equal(d.pw, 1);
}

static void expect_bad(const char *needle, int n, int h, int w, int c, int o, int kh, int kw, int s, int p, int g)
{
    eng_conv_dims d;
    lupe_err_clear();
    assert_int_equal(eng_conv_dims_init(&d, n, h, w, c, o, kh, kw, s, p, g), LUPE_EARG);
    if (!strstr(lupe_errmsg(), needle)) fail_msg("message '%s' lacks '%s'", lupe_errmsg(), needle);
}

static void test_dims_errors(void **state)
{
    (void)state;
    expect_bad("batch n must be positive, got 0", 0, 8, 8, 3, 4, 3, 3, 1, 1, 1);
    expect_bad("height h must be positive, got -2", 1, -2, 8, 3, 4, 3, 3, 1, 1, 1);
    expect_bad("width w must be positive, got 0", 1, 8, 0, 3, 4, 3, 3, 1, 1, 1);
    expect_bad("input channels c must be positive, got 0", 1, 8, 8, 0, 4, 3, 3, 1, 1, 1);
    expect_bad("output channels o must be positive, got -1", 1, 8, 8, 3, -1, 3, 3, 1, 1, 1);
    expect_bad("kernel height kh must be positive, got 0", 1, 8, 8, 3, 4, 0, 3, 1, 1, 1);
    expect_bad("kernel width kw must be positive, got 0", 1, 8, 8, 3, 4, 3, 0, 1, 1, 1);
    expect_bad("stride must be positive, got 0", 1, 8, 8, 3, 4, 3, 3, 0, 1, 1);
    expect_bad("groups must be positive, got 0", 1, 8, 8, 3, 4, 3, 3, 1, 1, 0);
    expect_bad("padding must not be negative, got -1", 1, 8, 8, 3, 4, 3, 3, 1, -1, 1);
    expect_bad("groups 2 does not divide input channels 3", 1, 8, 8, 3, 4, 3, 3, 1, 1, 2);
    expect_bad("groups 4 does not divide output channels 6", 1, 8, 8, 4, 6, 3, 3, 1, 1, 4);
    expect_bad("kernel 5x5 does not fit the padded input 4x4 (2x2, pad 1)", 1, 2, 2, 3, 4, 5, 5, 1, 1, 1);
    expect_bad("kernel 3x1 does not fit the padded input 2x8", 1, 2, 8, 3, 4, 3, 1, 1, 0, 1);
    expect_bad("padded input", 1, 8, 8, 3, 4, 3, 3, 1, 2000000000, 1);
    expect_bad("tensor sizes overflow", 1 << 30, 1 << 30, 1 << 30, 4, 4, 1, 1, 1, 0, 1);
}

/* 1x3x3x1 input 1..9 and the 2x2 kernel [[1, 2], [3, 4]]. */
static const float in9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const float k4[4] = {1, 2, 3, 4};

static void test_forward_by_hand(void **state)
{
    (void)state;
    float out[16];
    /* stride 1, no padding: out(0,0) = 1*1 + 2*2 + 4*3 + 5*4 = 37, and so on. */
    eng_conv_dims d = dims(1, 3, 3, 1, 1, 2, 1, 0, 1);
    eng_conv2d_forward_ref(out, in9, k4, NULL, &d);
    const float want1[4] = {37, 47, 67, 77};
    assert_memory_equal(out, want1, sizeof want1);

    /* stride 2, padding 1: windows start at -1 and 1. out(0,0) sees only
     * in(0,0)*k(1,1) = 4; out(0,1) = 2*3 + 3*4 = 18; out(1,0) = 4*2 + 7*4 = 36;
     * out(1,1) = 5*1 + 6*2 + 8*3 + 9*4 = 77; plus bias 0.5. */
    d = dims(1, 3, 3, 1, 1, 2, 2, 1, 1);
    assert_int_equal(d.oh, 2);
    const float bias = 0.5f;
    eng_conv2d_forward_ref(out, in9, k4, &bias, &d);
    const float want2[4] = {4.5f, 18.5f, 36.5f, 77.5f};
    assert_memory_equal(out, want2, sizeof want2);

    /* groups = 2, 1x1 kernel, c = o = 4: outputs 0 and 1 read channels 0-1,
     * outputs 2 and 3 read channels 2-3. */
    const float px[4] = {1, 2, 3, 4};
    const float wg[8] = {1, 10, /**/ 2, 20, /**/ 100, 1000, /**/ -1, 1};
    d = dims(1, 1, 1, 4, 4, 1, 1, 0, 2);
    eng_conv2d_forward_ref(out, px, wg, NULL, &d);
    const float want3[4] = {21, 42, 4300, 1};
    assert_memory_equal(out, want3, sizeof want3);

    /* Depthwise 2x2 over a 1x2x2x2 input: channel 0 holds 1..4, channel 1
     * holds 10, 20, 30, 40; kernels [1,2,3,4] and [1,0,0,-1], bias [0, 1]. */
    const float dwin[8] = {1, 10, 2, 20, 3, 30, 4, 40};
    const float dww[8] = {1, 2, 3, 4, /**/ 1, 0, 0, -1};
    const float dwb[2] = {0, 1};
    d = dims(1, 2, 2, 2, 2, 2, 1, 0, 2);
    eng_conv2d_forward_ref(out, dwin, dww, dwb, &d);
    const float want4[2] = {1 + 4 + 9 + 16, 10 - 40 + 1};
    assert_memory_equal(out, want4, sizeof want4);

    /* 1x1 kernel, stride 2 on 3x3: picks positions (0,0), (0,2), (2,0), (2,2). */
    const float one = 2;
    d = dims(1, 3, 3, 1, 1, 1, 2, 0, 1);
    eng_conv2d_forward_ref(out, in9, &one, NULL, &d);
    const float want5[4] = {2, 6, 14, 18};
    assert_memory_equal(out, want5, sizeof want5);
}

/* The random shapes: n h w c o k stride pad groups, covering 1x1, even and
 * odd kernels, stride 2, padding beyond k/2, grouped and depthwise. */
static const int shapes[][9] = {
    {1, 5, 5, 3, 4, 3, 1, 1, 1}, {2, 6, 5, 4, 6, 3, 2, 1, 2}, {1, 7, 6, 4, 4, 3, 2, 1, 4}, {2, 4, 4, 2, 3, 1, 1, 0, 1},
    {1, 6, 7, 3, 2, 2, 2, 0, 1}, {1, 5, 4, 6, 6, 3, 1, 2, 3}, {2, 3, 5, 2, 4, 5, 1, 2, 2}, {1, 8, 8, 3, 3, 3, 3, 1, 3},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static eng_conv_dims shape_dims(int i)
{
    const int *s = shapes[i];
    return dims(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]);
}

static size_t n_in(const eng_conv_dims *d)
{
    return (size_t)d->n * d->h * d->w * d->c;
}
static size_t n_out(const eng_conv_dims *d)
{
    return (size_t)d->n * d->oh * d->ow * d->o;
}
static size_t n_w(const eng_conv_dims *d)
{
    return (size_t)d->o * d->kh * d->kw * (d->c / d->groups);
}

/* An independent formulation: copy the input into an explicitly
 * zero-padded buffer, expand the grouped weights to a dense [o][ky][kx][c]
 * kernel that is zero across groups, and convolve densely. */
static void dense_conv(float *out, const float *in, const float *w, const float *b, const eng_conv_dims *d)
{
    const int hp = d->h + 2 * d->ph, wp = d->w + 2 * d->pw, cg = d->c / d->groups, og = d->o / d->groups;
    float *pad = gc_zeros((size_t)d->n * hp * wp * d->c);
    float *full = gc_zeros((size_t)d->o * d->kh * d->kw * d->c);
    for (int n = 0; n < d->n; n++)
        for (int y = 0; y < d->h; y++)
            for (int x = 0; x < d->w; x++)
                for (int c = 0; c < d->c; c++)
                    pad[((n * hp + y + d->ph) * wp + x + d->pw) * d->c + c] =
                        in[((n * d->h + y) * d->w + x) * d->c + c];
    for (int o = 0; o < d->o; o++)
        for (int k = 0; k < d->kh * d->kw; k++)
            for (int i = 0; i < cg; i++)
                full[(o * d->kh * d->kw + k) * d->c + (o / og) * cg + i] = w[(o * d->kh * d->kw + k) * cg + i];
    for (int n = 0; n < d->n; n++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++)
                for (int o = 0; o < d->o; o++) {
                    double s = b ? b[o] : 0;
                    for (int ky = 0; ky < d->kh; ky++)
                        for (int kx = 0; kx < d->kw; kx++)
                            for (int c = 0; c < d->c; c++)
                                s += (double)pad[((n * hp + oy * d->sh + ky) * wp + ox * d->sw + kx) * d->c + c] *
                                     full[((o * d->kh + ky) * d->kw + kx) * d->c + c];
                    out[((n * d->oh + oy) * d->ow + ox) * d->o + o] = (float)s;
                }
    free(pad);
    free(full);
}

static void test_forward_matches_dense(void **state)
{
    (void)state;
    gc_rng r = gc_seed(11);
    for (size_t s = 0; s < NSHAPES; s++) {
        eng_conv_dims d = shape_dims((int)s);
        float *in = gc_random(&r, n_in(&d), -1, 1), *w = gc_random(&r, n_w(&d), -1, 1);
        float *b = gc_random(&r, (size_t)d.o, -1, 1);
        float *out = gc_zeros(n_out(&d)), *want = gc_zeros(n_out(&d));
        eng_conv2d_forward_ref(out, in, w, s % 2 ? b : NULL, &d);
        dense_conv(want, in, w, s % 2 ? b : NULL, &d);
        /* Both sum in double and round once, in different orders. */
        if (gc_rel_diff(want, out, n_out(&d)) > 1e-6) fail_msg("shape %zu: forward differs from dense", s);
        free(in), free(w), free(b), free(out), free(want);
    }
}

typedef struct {
    eng_conv_dims d;
    float *in, *w, *b, *g, *out;
} conv_ctx;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    eng_conv2d_forward_ref(c->out, c->in, c->w, c->b, &c->d);
    return gc_dot(c->g, c->out, n_out(&c->d));
}

/* The convolution is linear in each argument, so a central difference has
 * no truncation error and a large step (0.25) makes the float rounding of L
 * negligible: tolerance 1e-3. */
static void test_backward_gradcheck(void **state)
{
    (void)state;
    gc_rng r = gc_seed(12);
    for (size_t s = 0; s < NSHAPES; s++) {
        conv_ctx c = {.d = shape_dims((int)s)};
        const eng_conv_dims *d = &c.d;
        c.in = gc_random(&r, n_in(d), -1, 1), c.w = gc_random(&r, n_w(d), -1, 1);
        c.b = gc_random(&r, (size_t)d->o, -1, 1), c.g = gc_random(&r, n_out(d), -1, 1);
        c.out = gc_zeros(n_out(d));
        float *din = gc_zeros(n_in(d)), *dw = gc_zeros(n_w(d)), *db = gc_zeros((size_t)d->o);
        eng_conv2d_backward_ref(din, dw, db, c.g, c.in, c.w, d);
        char what[64];
        snprintf(what, sizeof what, "shape %zu din", s);
        gc_expect(what, conv_loss, &c, c.in, n_in(d), din, 0.25, 1e-3);
        snprintf(what, sizeof what, "shape %zu dw", s);
        gc_expect(what, conv_loss, &c, c.w, n_w(d), dw, 0.25, 1e-3);
        snprintf(what, sizeof what, "shape %zu db", s);
        gc_expect(what, conv_loss, &c, c.b, (size_t)d->o, db, 0.25, 1e-3);
        free(c.in), free(c.w), free(c.b), free(c.g), free(c.out), free(din), free(dw), free(db);
    }
}

/* Backward adds: a second call doubles the gradients, a pre-filled buffer
 * keeps its contents, and NULL din / db are skipped. */
static void test_backward_accumulates(void **state)
{
    (void)state;
    gc_rng r = gc_seed(13);
    eng_conv_dims d = shape_dims(1);
    float *in = gc_random(&r, n_in(&d), -1, 1), *w = gc_random(&r, n_w(&d), -1, 1);
    float *g = gc_random(&r, n_out(&d), -1, 1);
    float *din = gc_zeros(n_in(&d)), *dw = gc_zeros(n_w(&d)), *db = gc_zeros((size_t)d.o);
    float *din2 = gc_zeros(n_in(&d)), *dw2 = gc_zeros(n_w(&d)), *db2 = gc_zeros((size_t)d.o);
    eng_conv2d_backward_ref(din, dw, db, g, in, w, &d);
    eng_conv2d_backward_ref(din2, dw2, db2, g, in, w, &d);
    eng_conv2d_backward_ref(din2, dw2, db2, g, in, w, &d);
    for (size_t i = 0; i < n_in(&d); i++) assert_true(din2[i] == 2 * din[i]);
    for (size_t i = 0; i < n_w(&d); i++) assert_true(dw2[i] == 2 * dw[i]);
    for (int i = 0; i < d.o; i++) assert_true(db2[i] == 2 * db[i]);
    /* Only dw asked for: it gains one more gradient; the others are untouched. */
    eng_conv2d_backward_ref(NULL, dw2, NULL, g, in, w, &d);
    for (size_t i = 0; i < n_w(&d); i++) assert_true(fabsf(dw2[i] - 3 * dw[i]) <= 1e-6f * (1 + fabsf(dw[i])));
    /* A pre-filled buffer is added to, not overwritten. */
    for (size_t i = 0; i < n_in(&d); i++) din2[i] = 1.0f;
    eng_conv2d_backward_ref(din2, dw2, NULL, g, in, w, &d);
    for (size_t i = 0; i < n_in(&d); i++) assert_true(din2[i] == 1.0f + din[i]);
    free(in), free(w), free(g), free(din), free(dw), free(db), free(din2), free(dw2), free(db2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dims_ok),
        cmocka_unit_test(test_dims_errors),
        cmocka_unit_test(test_forward_by_hand),
        cmocka_unit_test(test_forward_matches_dense),
        cmocka_unit_test(test_backward_gradcheck),
        cmocka_unit_test(test_backward_accumulates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
