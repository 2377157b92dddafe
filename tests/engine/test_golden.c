/*
 * The engine against PyTorch. tests/engine/data/golden.ckpt was written by
 * tools/ref/golden.py (PyTorch 1.13, regenerate with `make golden`): a
 * small network of conv, batch norm, SiLU, split, concat, residual add,
 * SPPF-style max pooling, upsampling, softmax (DFL-style) and BCE losses.
 * This test builds the same network from the reference ops, loads the same
 * weights, and checks the output, the loss, every gradient, the losses of
 * 10 SGD steps and the final weights and running statistics; then the same
 * with the graph API, also with batch norm + SiLU as one fused op.
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
    /* gradients */
    float dout[M1 * NO], dc3[M1 * 56], du[M1 * 48], da1[M1 * 8];
    float dc2[M2 * 48], da4[M2 * 16], dp1[M2 * 16], dp2[M2 * 16], dc[M2 * 24], ds0[M2 * 8], ds1[M2 * 8];
    float da3[M2 * 8], dq3[M2 * 8], dz3[M2 * 8], da2[M2 * 16], dy2[M2 * 16], dz2[M2 * 16], dy1[M1 * 8], dz1[M1 * 8];
} net;

/* The losses on the output: a DFL-style cross-entropy of the softmax of
 * each box side's REG logits against target distributions, and BCE on two
 * class logits, both averaged over pixels. With dout, also writes
 * d loss / d output. */
static float h_dist[M1 * 16], h_prob[M1 * 16], h_cls[M1 * 2], h_dprob[M1 * 16], h_ddist[M1 * 16], h_dcls[M1 * 2];

static double head(const float *out, float *dout, const float *tdist, const float *tcls)
{
    for (size_t r = 0; r < M1; r++) {
        memcpy(&h_dist[r * 16], &out[r * NO], 16 * sizeof(float));
        memcpy(&h_cls[r * 2], &out[r * NO + 16], 2 * sizeof(float));
    }
    eng_softmax_forward_ref(h_prob, h_dist, M1 * 4, REG);
    double l = 0;
    for (size_t i = 0; i < M1 * 16; i++) l -= tdist[i] * log(h_prob[i]);
    l += eng_bce_logits_forward_ref(h_cls, tcls, M1 * 2);
    if (dout) {
        memset(h_ddist, 0, sizeof h_ddist);
        memset(h_dcls, 0, sizeof h_dcls);
        for (size_t i = 0; i < M1 * 16; i++) h_dprob[i] = (float)(-tdist[i] / h_prob[i] / (double)M1);
        eng_softmax_backward_ref(h_ddist, h_dprob, h_prob, M1 * 4, REG);
        eng_bce_logits_backward_ref(h_dcls, h_cls, tcls, M1 * 2, 1.0f / (float)M1);
        for (size_t r = 0; r < M1; r++) {
            memcpy(&dout[r * NO], &h_ddist[r * 16], 16 * sizeof(float));
            memcpy(&dout[r * NO + 16], &h_dcls[r * 2], 2 * sizeof(float));
        }
    }
    return l / (double)M1;
}

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
    return head(t->out, NULL, tdist, tcls);
}

static void backward(net *t, const float *tdist, const float *tcls)
{
#define Z(a) memset(t->a, 0, sizeof t->a)
    Z(dc3), Z(du), Z(da1), Z(dc2), Z(da4), Z(dp1), Z(dp2), Z(dc), Z(ds0), Z(ds1), Z(da3);
    Z(dq3), Z(dz3), Z(da2), Z(dy2), Z(dz2), Z(dy1), Z(dz1);
#undef Z
    head(t->out, t->dout, tdist, tcls);
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

/* The same network built with the graph API: the planned arena, the
 * builders' wiring and the graph's backward must give the same numbers. */
/* Golden parameter names to the graph's. */
static const char *const map[][2] = {{"conv1.w", "conv1.weight"}, {"bn1.g", "bn1.weight"}, {"bn1.b", "bn1.bias"},
                                     {"conv2.w", "conv2.weight"}, {"bn2.g", "bn2.weight"}, {"bn2.b", "bn2.bias"},
                                     {"conv3.w", "conv3.weight"}, {"conv3.b", "conv3.bias"},
                                     {"conv4.w", "conv4.weight"}, {"conv4.b", "conv4.bias"},
                                     {"conv5.w", "conv5.weight"}, {"conv5.b", "conv5.bias"}};

/* The golden network with the graph API; t[] gets the tensors images,
 * a1, a4 and output. fused: batch norm and SiLU as one op (eng_g_bn_silu,
 * as YOLOv8's Conv is built), else as two. */
static eng_graph *build_golden_as(int t[4], int fused)
{
    eng_graph *g = eng_graph_new("golden");
    int x = eng_g_input(g, "images", N, H, W, 3);
    int z1 = eng_g_conv(g, "conv1", x, 8, 3, 1, 1, 1, 0);
    int a1 = fused ? eng_g_bn_silu(g, "bn1", z1, BN_EPS, BN_MOM)
                   : eng_g_silu(g, eng_g_bn(g, "bn1", z1, BN_EPS, BN_MOM));
    int z2 = eng_g_conv(g, "conv2", a1, 16, 3, 2, 1, 1, 0);
    int a2 = fused ? eng_g_bn_silu(g, "bn2", z2, BN_EPS, BN_MOM)
                   : eng_g_silu(g, eng_g_bn(g, "bn2", z2, BN_EPS, BN_MOM));
    int s0 = eng_g_slice(g, a2, 0, 8), s1 = eng_g_slice(g, a2, 8, 8);
    int a3 = eng_g_add(g, eng_g_silu(g, eng_g_conv(g, "conv3", s1, 8, 3, 1, 1, 2, 1)), s1);
    int c[3] = {s0, s1, a3};
    int a4 = eng_g_conv(g, "conv4", eng_g_concat(g, c, 3), 16, 1, 1, 0, 1, 1);
    int p1 = eng_g_maxpool(g, a4, 5), p2 = eng_g_maxpool(g, p1, 5);
    int c2[3] = {a4, p1, p2};
    int c3[2] = {eng_g_upsample2(g, eng_g_concat(g, c2, 3)), a1};
    int out = eng_g_conv(g, "conv5", eng_g_concat(g, c3, 2), NO, 1, 1, 0, 1, 1);
    t[0] = x, t[1] = a1, t[2] = a4, t[3] = out;
    return g;
}

static eng_graph *build_golden(int t[4])
{
    return build_golden_as(t, 0);
}

static void run_graph(int fast, int precision, int fused)
{
    const char *path = getenv("LUPE_GOLDEN");
    assert_int_equal(eng_ckpt_load(path ? path : "tests/engine/data/golden.ckpt", &gold), LUPE_OK);
    int t[4];
    eng_graph *g = build_golden_as(t, fused);
    int x = t[0], a1 = t[1], a4 = t[2], out = t[3];
    eng_graph_set_fast(g, fast);
    eng_graph_set_precision(g, precision);
    if (eng_graph_plan(g, 1)) fail_msg("%s", lupe_errmsg());
    const eng_param *ps = NULL;
    int np = eng_graph_params(g, &ps);
    assert_int_equal(np, 12);
    for (int i = 0; i < 12; i++) {
        char gname[64];
        snprintf(gname, sizeof gname, "w0.%s", map[i][0]);
        const eng_tensor_rec *r = G(gname);
        int found = 0;
        for (int k = 0; k < np; k++)
            if (strcmp(ps[k].name, map[i][1]) == 0) {
                assert_int_equal(ps[k].n, r->n);
                memcpy(ps[k].w, r->data, r->n * sizeof(float));
                found = 1;
            }
        assert_true(found);
    }
    memcpy(eng_g_data(g, x), G("input")->data, M1 * 3 * sizeof(float));
    eng_graph_forward(g, 1);
    expect_close("act.a1", eng_g_data(g, a1), M1 * 8, 1e-5);
    expect_close("act.a4", eng_g_data(g, a4), M2 * 16, 1e-5);
    expect_close("output", eng_g_data(g, out), M1 * NO, 1e-5);
    float loss = (float)head(eng_g_data(g, out), eng_g_grad(g, out), G("target.dist")->data, G("target.cls")->data);
    expect_close("loss", &loss, 1, 1e-5);
    eng_graph_backward(g);
    for (int i = 0; i < 12; i++) {
        char gname[64];
        snprintf(gname, sizeof gname, "grad.%s", map[i][0]);
        for (int k = 0; k < np; k++)
            if (strcmp(ps[k].name, map[i][1]) == 0) expect_close(gname, ps[k].g, ps[k].n, 1e-5);
    }
    /* Checkpoint the graph's state and load it into a fresh plan. */
    eng_tensor_rec recs[32];
    int nrec = eng_graph_state(g, recs, 32);
    assert_int_equal(nrec, 12 + 4);
    const char *ck = tu_path("graph.ckpt");
    assert_int_equal(eng_ckpt_save(ck, NULL, recs, (size_t)nrec), LUPE_OK);
    eng_ckpt *saved = NULL;
    assert_int_equal(eng_ckpt_load(ck, &saved), LUPE_OK);
    assert_int_equal(eng_graph_load(g, saved), LUPE_OK);
    eng_ckpt_free(saved);
    eng_graph_free(g);
    eng_ckpt_free(gold);
}

static void test_golden_graph(void **state)
{
    (void)state;
    run_graph(0, ENG_PREC_F32, 0);
}

/* The same with the oneDNN convolutions, whose summation order differs
 * from the reference's; the same 1e-5 bound holds (measured <= 1e-6). */
static void test_golden_graph_fast(void **state)
{
    (void)state;
    run_graph(1, ENG_PREC_F32, 0);
}

/* Batch norm + SiLU fused (eng_g_bn_silu), on the references and on the
 * fast paths: the same numbers, the same bound. */
static void test_golden_graph_fused(void **state)
{
    (void)state;
    run_graph(0, ENG_PREC_F32, 1);
}

static void test_golden_graph_fused_fast(void **state)
{
    (void)state;
    run_graph(1, ENG_PREC_F32, 1);
}

/* Ten Nesterov SGD steps through the graph and the engine's optimizer, as
 * the golden run: in f32 every tensor must match PyTorch within 1e-5; with
 * bf16 convolutions (fp32 master weights, losses and everything else) the
 * loss curve and the weights must stay within 2e-2 of PyTorch's fp32 run,
 * which shows mixed precision trains like fp32 on this network. */
static void train_graph(int precision, double tol, int fused)
{
    const char *path = getenv("LUPE_GOLDEN");
    assert_int_equal(eng_ckpt_load(path ? path : "tests/engine/data/golden.ckpt", &gold), LUPE_OK);
    int t[4];
    eng_graph *g = build_golden_as(t, fused);
    eng_graph_set_precision(g, precision);
    assert_int_equal(eng_graph_plan(g, 1), LUPE_OK);
    const eng_param *ps = NULL;
    int np = eng_graph_params(g, &ps);
    int idx[12];
    for (int i = 0; i < 12; i++) {
        char gname[64];
        snprintf(gname, sizeof gname, "w0.%s", map[i][0]);
        idx[i] = -1;
        for (int k = 0; k < np; k++)
            if (strcmp(ps[k].name, map[i][1]) == 0) idx[i] = k;
        assert_true(idx[i] >= 0);
        memcpy(ps[idx[i]].w, G(gname)->data, ps[idx[i]].n * sizeof(float));
    }
    memcpy(eng_g_data(g, t[0]), G("input")->data, M1 * 3 * sizeof(float));
    /* The golden run decays conv weights only; biases and norms get none. */
    eng_optim_cfg cfg = {.kind = ENG_SGD, .nesterov = 1, .weight_decay = 5e-4f};
    eng_optim *o = NULL;
    assert_int_equal(eng_optim_new(&cfg, ps, np, &o), LUPE_OK);
    const float lr[ENG_NGROUPS] = {0.01f, 0.01f, 0.01f};
    float losses[10];
    /* The golden run's first forward (for the gradients) also moved the
     * running statistics once before its 10 steps. */
    eng_graph_forward(g, 1);
    for (int s = 0; s < 10; s++) {
        eng_optim_zero_grad(o);
        eng_graph_forward(g, 1);
        losses[s] = (float)head(eng_g_data(g, t[3]), eng_g_grad(g, t[3]), G("target.dist")->data, G("target.cls")->data);
        eng_graph_backward(g);
        eng_optim_step(o, lr, 0.9f);
    }
    expect_close("steps.loss", losses, 10, tol);
    for (int i = 0; i < 12; i++) {
        char gname[64];
        snprintf(gname, sizeof gname, "w10.%s", map[i][0]);
        expect_close(gname, ps[idx[i]].w, ps[idx[i]].n, tol);
    }
    eng_tensor_rec recs[32];
    int nrec = eng_graph_state(g, recs, 32);
    for (int i = 0; i < nrec; i++) {
        const char *gn = strcmp(recs[i].name, "bn1.running_mean") == 0 ? "w10.bn1.rmean"
                         : strcmp(recs[i].name, "bn1.running_var") == 0 ? "w10.bn1.rvar"
                         : strcmp(recs[i].name, "bn2.running_mean") == 0 ? "w10.bn2.rmean"
                         : strcmp(recs[i].name, "bn2.running_var") == 0 ? "w10.bn2.rvar"
                                                                         : NULL;
        if (gn) expect_close(gn, recs[i].data, recs[i].n, tol);
    }
    eng_optim_free(o);
    eng_graph_free(g);
    eng_ckpt_free(gold);
}

static void test_train_graph_f32(void **state)
{
    (void)state;
    train_graph(ENG_PREC_F32, 1e-5, 0);
}

static void test_train_graph_bf16(void **state)
{
    (void)state;
    if (!eng_bf16_supported()) {
        print_message("# this CPU has no bf16: checking that AUTO trains in f32 instead\n");
        train_graph(ENG_PREC_AUTO, 1e-5, 0);
        return;
    }
    train_graph(ENG_PREC_BF16, 2e-2, 0);
}

/* Ten steps with batch norm + SiLU fused (its running statistics too). */
static void test_train_graph_fused(void **state)
{
    (void)state;
    train_graph(ENG_PREC_F32, 1e-5, 1);
    if (eng_bf16_supported()) train_graph(ENG_PREC_BF16, 2e-2, 1);
}

/* The fused op keeps no batch-norm output: the training arena loses at
 * least the two batch-norm outputs (their gradients share memory with
 * others, so they may or may not shrink it further), and the fused and
 * unfused graphs compute the same output, forward and in inference. */
static void test_fused_arena(void **state)
{
    (void)state;
    int ta[4], tb[4];
    eng_graph *a = build_golden_as(ta, 0), *b = build_golden_as(tb, 1);
    eng_graph_set_precision(a, ENG_PREC_F32);
    eng_graph_set_precision(b, ENG_PREC_F32);
    assert_int_equal(eng_graph_plan(a, 1), LUPE_OK);
    assert_int_equal(eng_graph_plan(b, 1), LUPE_OK);
    const size_t saved = (M1 * 8 + M2 * 16) * sizeof(float);
    print_message("# training arena: %zu KiB unfused, %zu KiB fused (batch-norm outputs: %zu KiB)\n",
                  eng_graph_arena_bytes(a) >> 10, eng_graph_arena_bytes(b) >> 10, saved >> 10);
    assert_true(eng_graph_arena_bytes(b) + saved <= eng_graph_arena_bytes(a));
    const eng_param *pa, *pb;
    int np = eng_graph_params(a, &pa);
    assert_int_equal(eng_graph_params(b, &pb), np);
    for (int i = 0; i < np; i++) {
        assert_string_equal(pa[i].name, pb[i].name);
        assert_memory_equal(pa[i].w, pb[i].w, pa[i].n * sizeof(float)); /* same seed */
    }
    uint64_t seed = 9;
    float *xa = eng_g_data(a, ta[0]), *xb = eng_g_data(b, tb[0]);
    for (size_t i = 0; i < M1 * 3; i++) {
        seed = seed * 6364136223846793005ULL + 1;
        xa[i] = xb[i] = (float)(seed >> 40) / 16777216.0f - 0.5f;
    }
    for (int training = 1; training >= 0; training--) {
        eng_graph_forward(a, training);
        eng_graph_forward(b, training);
        const double e = rel_err(eng_g_data(b, tb[3]), eng_g_data(a, ta[3]), M1 * NO);
        print_message("# fused against unfused, %s: output rel err %.2e\n", training ? "training" : "inference", e);
        assert_true(e <= 1e-6);
    }
    eng_graph_free(a);
    eng_graph_free(b);
}

/* An inference plan shares activation memory between tensors whose lives
 * do not overlap: it must be smaller and compute the same output as a
 * training plan in inference mode. */
static void test_inference_plan(void **state)
{
    (void)state;
    int ta[4], tb[4];
    eng_graph *a = build_golden(ta), *b = build_golden(tb);
    /* f32 convolutions: bf16 ones need a larger shared scratch, which in
     * a network this small hides what the sharing of activations saves. */
    eng_graph_set_precision(a, ENG_PREC_F32);
    eng_graph_set_precision(b, ENG_PREC_F32);
    assert_int_equal(eng_graph_plan(a, 1), LUPE_OK);
    assert_int_equal(eng_graph_plan(b, 0), LUPE_OK);
    const eng_param *pa, *pb;
    int np = eng_graph_params(a, &pa);
    assert_int_equal(eng_graph_params(b, &pb), np);
    for (int i = 0; i < np; i++) memcpy(pb[i].w, pa[i].w, pa[i].n * sizeof(float)); /* same seed anyway */
    uint64_t seed = 7;
    float *xa = eng_g_data(a, ta[0]), *xb = eng_g_data(b, tb[0]);
    for (size_t i = 0; i < M1 * 3; i++) {
        seed = seed * 6364136223846793005ULL + 1;
        xa[i] = xb[i] = (float)(seed >> 40) / 16777216.0f - 0.5f;
    }
    eng_graph_forward(a, 0);
    eng_graph_forward(b, 0);
    assert_memory_equal(eng_g_data(a, ta[3]), eng_g_data(b, tb[3]), M1 * NO * sizeof(float));
    print_message("# arena: training plan %zu KiB, inference plan %zu KiB\n", eng_graph_arena_bytes(a) >> 10,
                  eng_graph_arena_bytes(b) >> 10);
    assert_true(eng_graph_arena_bytes(b) * 2 < eng_graph_arena_bytes(a));
    assert_null(eng_g_grad(b, tb[3]));
    eng_graph_free(a);
    eng_graph_free(b);
}

static void test_graph_errors(void **state)
{
    (void)state;
    eng_graph *g = eng_graph_new("bad");
    int x = eng_g_input(g, "images", 1, 8, 8, 3);
    int y = eng_g_conv(g, "conv", x, 4, 3, 1, 1, 2, 0); /* 3 channels in 2 groups */
    assert_int_equal(y, -1);
    assert_int_equal(eng_g_silu(g, y), -1);
    assert_int_equal(eng_graph_plan(g, 1), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "conv conv:"));
    eng_graph_free(g);
    g = eng_graph_new("bad2");
    int a = eng_g_input(g, "a", 1, 8, 8, 3), b = eng_g_input(g, "b", 1, 4, 4, 3);
    assert_int_equal(eng_g_add(g, a, b), -1);
    assert_int_equal(eng_graph_plan(g, 0), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "add: shapes 1x8x8x3 and 1x4x4x3 differ"));
    eng_graph_free(g);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_golden), cmocka_unit_test(test_golden_graph), cmocka_unit_test(test_golden_graph_fast),
                                       cmocka_unit_test(test_inference_plan), cmocka_unit_test(test_train_graph_f32),
                                       cmocka_unit_test(test_train_graph_bf16),
                                       cmocka_unit_test(test_golden_graph_fused),
                                       cmocka_unit_test(test_golden_graph_fused_fast),
                                       cmocka_unit_test(test_train_graph_fused),
                                       cmocka_unit_test(test_fused_arena),
                                       cmocka_unit_test(test_graph_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
