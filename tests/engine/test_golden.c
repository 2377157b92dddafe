/*
 * The engine against PyTorch. tests/engine/data/golden.ckpt was written by
 * tools/ref/golden.py (PyTorch 1.13, regenerate with `make golden`): a
 * small network of conv, batch norm, SiLU, split, concat, residual add,
 * SPPF-style max pooling, upsampling, softmax (DFL-style) and BCE losses.
 * This test builds the same network from the reference ops, loads the same
 * weights, and checks the output, the loss, every gradient, the losses of
 * 10 SGD steps and the final weights and running statistics.
 *
 * Tolerance: max |lupe - torch| / max |torch| <= 1e-5 for every tensor
 * (measured: 1e-7 to 6e-7). Both sides compute in float32 with different
 * summation orders, so agreement to a few ulps of the largest value is
 * what correct code gives; a wrong formula is off by 1e-2 or more.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/engine.h"

#define N 2
#define H 16
#define W 16
#define REG 4
#define NO (4 * REG + 2)
#define M1 ((size_t)N * H * W)          /* rows at full size */
#define M2 ((size_t)N * (H / 2) * (W / 2)) /* rows at half size */
#define BN_EPS 1e-3f
#define BN_MOM 0.03f

static eng_ckpt *gold;

static const eng_tensor_rec *G(const char *name)
{
    const eng_tensor_rec *t = eng_ckpt_find(gold, name);
    if (!t) fail_msg("golden file lacks '%s' (regenerate with make golden)", name);
    return t;
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN-safe: a NaN makes md NaN */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / (mb > 1e-12 ? mb : 1e-12);
}

static void expect_close(const char *name, const float *got, size_t n, double tol)
{
    const eng_tensor_rec *t = G(name);
    if (t->n != n) fail_msg("%s: %zu values, golden has %zu", name, n, t->n);
    double e = rel_err(got, t->data, n);
    print_message("# %-16s rel err %.2e (tolerance %.0e)\n", name, e, tol);
    if (!(e <= tol)) fail_msg("%s: relative error %.3e over %.0e", name, e, tol);
}

/* The network's parameters, in the golden file's names. */
enum { C1W, B1G, B1B, C2W, B2G, B2B, C3W, C3B, C4W, C4B, C5W, C5B, NP };
static const char *const pname[NP] = {"conv1.w", "bn1.g", "bn1.b", "conv2.w", "bn2.g", "bn2.b",
                                      "conv3.w", "conv3.b", "conv4.w", "conv4.b", "conv5.w", "conv5.b"};
static float *pw[NP], *pg[NP];
static size_t pn[NP];
static float rm1[8], rv1[8], rm2[16], rv2[16];

typedef struct net {
    eng_conv_dims d1, d2, d3, d4, d5;
    /* activations */
    float x[M1 * 3], z1[M1 * 8], y1[M1 * 8], a1[M1 * 8], mu1[8], is1[8];
    float z2[M2 * 16], y2[M2 * 16], a2[M2 * 16], mu2[16], is2[16];
    float s0[M2 * 8], s1[M2 * 8], z3[M2 * 8], q3[M2 * 8], a3[M2 * 8], c[M2 * 24];
    float a4[M2 * 16], p1[M2 * 16], p2[M2 * 16], c2[M2 * 48], u[M1 * 48], c3[M1 * 56], out[M1 * NO];
    float dist[M1 * 16], prob[M1 * 16], cls[M1 * 2];
    /* gradients */
    float dout[M1 * NO], dprob[M1 * 16], ddist[M1 * 16], dcls[M1 * 2], dc3[M1 * 56], du[M1 * 48], da1[M1 * 8];
    float dc2[M2 * 48], da4[M2 * 16], dp1[M2 * 16], dp2[M2 * 16], dc[M2 * 24], ds0[M2 * 8], ds1[M2 * 8];
    float da3[M2 * 8], dq3[M2 * 8], dz3[M2 * 8], da2[M2 * 16], dy2[M2 * 16], dz2[M2 * 16], dy1[M1 * 8], dz1[M1 * 8];
} net;

static double forward(net *t, const float *tdist, const float *tcls)
{
    eng_conv2d_forward_ref(t->z1, t->x, pw[C1W], NULL, &t->d1);
    eng_bn_forward_train_ref(t->y1, t->mu1, t->is1, t->z1, pw[B1G], pw[B1B], M1, 8, BN_EPS);
    eng_bn_update_running(rm1, rv1, t->mu1, t->is1, M1, 8, BN_EPS, BN_MOM);
    eng_silu_forward_ref(t->a1, t->y1, M1 * 8);
    eng_conv2d_forward_ref(t->z2, t->a1, pw[C2W], NULL, &t->d2);
    eng_bn_forward_train_ref(t->y2, t->mu2, t->is2, t->z2, pw[B2G], pw[B2B], M2, 16, BN_EPS);
    eng_bn_update_running(rm2, rv2, t->mu2, t->is2, M2, 16, BN_EPS, BN_MOM);
    eng_silu_forward_ref(t->a2, t->y2, M2 * 16);
    const int c88[2] = {8, 8}, c888[3] = {8, 8, 8}, c161616[3] = {16, 16, 16}, c488[2] = {48, 8};
    float *const sp[2] = {t->s0, t->s1};
    eng_split_forward_ref(sp, c88, 2, t->a2, M2);
    eng_conv2d_forward_ref(t->z3, t->s1, pw[C3W], pw[C3B], &t->d3);
    eng_silu_forward_ref(t->q3, t->z3, M2 * 8);
    eng_add_forward_ref(t->a3, t->q3, t->s1, M2 * 8);
    const float *const cc[3] = {t->s0, t->s1, t->a3};
    eng_concat_forward_ref(t->c, cc, c888, 3, M2);
    eng_conv2d_forward_ref(t->a4, t->c, pw[C4W], pw[C4B], &t->d4);
    eng_maxpool_forward_ref(t->p1, t->a4, N, H / 2, W / 2, 16, 5);
    eng_maxpool_forward_ref(t->p2, t->p1, N, H / 2, W / 2, 16, 5);
    const float *const cc2[3] = {t->a4, t->p1, t->p2};
    eng_concat_forward_ref(t->c2, cc2, c161616, 3, M2);
    eng_upsample2_forward_ref(t->u, t->c2, N, H / 2, W / 2, 48);
    const float *const cc3[2] = {t->u, t->a1};
    eng_concat_forward_ref(t->c3, cc3, c488, 2, M1);
    eng_conv2d_forward_ref(t->out, t->c3, pw[C5W], pw[C5B], &t->d5);
    /* Heads: 4 x REG distribution logits and 2 class logits per pixel. */
    for (size_t r = 0; r < M1; r++) {
        memcpy(&t->dist[r * 16], &t->out[r * NO], 16 * sizeof(float));
        memcpy(&t->cls[r * 2], &t->out[r * NO + 16], 2 * sizeof(float));
    }
    eng_softmax_forward_ref(t->prob, t->dist, M1 * 4, REG);
    double l = 0;
    for (size_t i = 0; i < M1 * 16; i++) l -= tdist[i] * log(t->prob[i]);
    l += eng_bce_logits_forward_ref(t->cls, tcls, M1 * 2);
    return l / (double)M1;
}

static void backward(net *t, const float *tdist, const float *tcls)
{
#define Z(a) memset(t->a, 0, sizeof t->a)
    Z(ddist), Z(dcls), Z(dc3), Z(du), Z(da1), Z(dc2), Z(da4), Z(dp1), Z(dp2), Z(dc), Z(ds0), Z(ds1), Z(da3);
    Z(dq3), Z(dz3), Z(da2), Z(dy2), Z(dz2), Z(dy1), Z(dz1);
#undef Z
    for (size_t i = 0; i < M1 * 16; i++) t->dprob[i] = (float)(-tdist[i] / t->prob[i] / (double)M1);
    eng_softmax_backward_ref(t->ddist, t->dprob, t->prob, M1 * 4, REG);
    eng_bce_logits_backward_ref(t->dcls, t->cls, tcls, M1 * 2, 1.0f / (float)M1);
    for (size_t r = 0; r < M1; r++) {
        memcpy(&t->dout[r * NO], &t->ddist[r * 16], 16 * sizeof(float));
        memcpy(&t->dout[r * NO + 16], &t->dcls[r * 2], 2 * sizeof(float));
    }
    const int c88[2] = {8, 8}, c888[3] = {8, 8, 8}, c161616[3] = {16, 16, 16}, c488[2] = {48, 8};
    eng_conv2d_backward_ref(t->dc3, pg[C5W], pg[C5B], t->dout, t->c3, pw[C5W], &t->d5);
    float *const d3[2] = {t->du, t->da1};
    eng_concat_backward_ref(d3, c488, 2, t->dc3, M1);
    eng_upsample2_backward_ref(t->dc2, t->du, N, H / 2, W / 2, 48);
    float *const d2[3] = {t->da4, t->dp1, t->dp2};
    eng_concat_backward_ref(d2, c161616, 3, t->dc2, M2);
    eng_maxpool_backward_ref(t->dp1, t->dp2, t->p1, N, H / 2, W / 2, 16, 5);
    eng_maxpool_backward_ref(t->da4, t->dp1, t->a4, N, H / 2, W / 2, 16, 5);
    eng_conv2d_backward_ref(t->dc, pg[C4W], pg[C4B], t->da4, t->c, pw[C4W], &t->d4);
    float *const d1[3] = {t->ds0, t->ds1, t->da3};
    eng_concat_backward_ref(d1, c888, 3, t->dc, M2);
    eng_add_backward_ref(t->dq3, t->ds1, t->da3, M2 * 8);
    eng_silu_backward_ref(t->dz3, t->dq3, t->z3, M2 * 8);
    eng_conv2d_backward_ref(t->ds1, pg[C3W], pg[C3B], t->dz3, t->s1, pw[C3W], &t->d3);
    const float *const dsp[2] = {t->ds0, t->ds1};
    eng_split_backward_ref(t->da2, dsp, c88, 2, M2);
    eng_silu_backward_ref(t->dy2, t->da2, t->y2, M2 * 16);
    eng_bn_backward_ref(t->dz2, pg[B2G], pg[B2B], t->dy2, t->z2, t->mu2, t->is2, pw[B2G], M2, 16);
    eng_conv2d_backward_ref(t->da1, pg[C2W], NULL, t->dz2, t->a1, pw[C2W], &t->d2);
    eng_silu_backward_ref(t->dy1, t->da1, t->y1, M1 * 8);
    eng_bn_backward_ref(t->dz1, pg[B1G], pg[B1B], t->dy1, t->z1, t->mu1, t->is1, pw[B1G], M1, 8);
    eng_conv2d_backward_ref(NULL, pg[C1W], NULL, t->dz1, t->x, pw[C1W], &t->d1);
}

static void test_golden(void **state)
{
    (void)state;
    const char *path = getenv("LUPE_GOLDEN");
    char def[1024];
    snprintf(def, sizeof def, "%s", "tests/engine/data/golden.ckpt");
    if (eng_ckpt_load(path ? path : def, &gold) != LUPE_OK) fail_msg("%s", lupe_errmsg());
    net *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(eng_conv_dims_init(&t->d1, N, H, W, 3, 8, 3, 3, 1, 1, 1), LUPE_OK);
    assert_int_equal(eng_conv_dims_init(&t->d2, N, H, W, 8, 16, 3, 3, 2, 1, 1), LUPE_OK);
    assert_int_equal(eng_conv_dims_init(&t->d3, N, H / 2, W / 2, 8, 8, 3, 3, 1, 1, 2), LUPE_OK);
    assert_int_equal(eng_conv_dims_init(&t->d4, N, H / 2, W / 2, 24, 16, 1, 1, 1, 0, 1), LUPE_OK);
    assert_int_equal(eng_conv_dims_init(&t->d5, N, H, W, 56, NO, 1, 1, 1, 0, 1), LUPE_OK);
    for (int i = 0; i < NP; i++) {
        char name[64];
        snprintf(name, sizeof name, "w0.%s", pname[i]);
        const eng_tensor_rec *r = G(name);
        pn[i] = r->n;
        pw[i] = malloc(r->n * sizeof(float));
        pg[i] = calloc(r->n, sizeof(float));
        memcpy(pw[i], r->data, r->n * sizeof(float));
    }
    for (int i = 0; i < 16; i++) {
        rv2[i] = 1;
        if (i < 8) rv1[i] = 1;
    }
    memcpy(t->x, G("input")->data, sizeof t->x);
    const float *tdist = G("target.dist")->data, *tcls = G("target.cls")->data;

    /* One forward and backward: output, loss, every gradient. */
    float loss = (float)forward(t, tdist, tcls);
    expect_close("act.a1", t->a1, M1 * 8, 1e-5);
    expect_close("act.a2", t->a2, M2 * 16, 1e-5);
    expect_close("act.c", t->c, M2 * 24, 1e-5);
    expect_close("act.a4", t->a4, M2 * 16, 1e-5);
    expect_close("act.c2", t->c2, M2 * 48, 1e-5);
    expect_close("act.c3", t->c3, M1 * 56, 1e-5);
    expect_close("output", t->out, M1 * NO, 1e-5);
    expect_close("loss", &loss, 1, 1e-5);
    backward(t, tdist, tcls);
    for (int i = 0; i < NP; i++) {
        char name[64];
        snprintf(name, sizeof name, "grad.%s", pname[i]);
        expect_close(name, pg[i], pn[i], 1e-5);
    }

    /* Ten SGD steps from the start, as the golden run. */
    for (int i = 0; i < NP; i++) {
        char name[64];
        snprintf(name, sizeof name, "w0.%s", pname[i]);
        memcpy(pw[i], G(name)->data, pn[i] * sizeof(float));
    }
    eng_param params[NP];
    for (int i = 0; i < NP; i++) {
        int is_conv_w = strncmp(pname[i], "conv", 4) == 0 && strstr(pname[i], ".w") != NULL;
        params[i] = (eng_param){pname[i], pw[i], pg[i], pn[i], is_conv_w ? ENG_GROUP_DECAY : ENG_GROUP_NORM};
    }
    eng_optim_cfg cfg = {.kind = ENG_SGD, .nesterov = 1, .weight_decay = 5e-4f};
    eng_optim *o = NULL;
    assert_int_equal(eng_optim_new(&cfg, params, NP, &o), LUPE_OK);
    const float lr[ENG_NGROUPS] = {0.01f, 0.01f, 0.01f};
    float losses[10];
    for (int s = 0; s < 10; s++) {
        eng_optim_zero_grad(o);
        losses[s] = (float)forward(t, tdist, tcls);
        backward(t, tdist, tcls);
        eng_optim_step(o, lr, 0.9f);
    }
    expect_close("steps.loss", losses, 10, 1e-5);
    for (int i = 0; i < NP; i++) {
        char name[64];
        snprintf(name, sizeof name, "w10.%s", pname[i]);
        expect_close(name, pw[i], pn[i], 1e-5);
    }
    expect_close("w10.bn1.rmean", rm1, 8, 1e-5);
    expect_close("w10.bn1.rvar", rv1, 8, 1e-5);
    expect_close("w10.bn2.rmean", rm2, 16, 1e-5);
    expect_close("w10.bn2.rvar", rv2, 16, 1e-5);
    eng_optim_free(o);
    for (int i = 0; i < NP; i++) {
        free(pw[i]);
        free(pg[i]);
    }
    free(t);
    eng_ckpt_free(gold);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_golden)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
