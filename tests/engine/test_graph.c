/*
 * Graph execution with the fast paths against the references, on a network
 * built to exercise the backward pass's gradient bookkeeping: ops that
 * overwrite an input's gradient as its first writer instead of adding to a
 * zeroed buffer, slices that partition a tensor (and slices that overlap or
 * leave channels out), inputs consumed twice by one op, and tensors
 * consumed by several ops; and the read-only node API on that network.
 */
#include <math.h>
#include <string.h>

#include "engine/gradcheck.h"
#include "lupe/engine.h"

#define N 2
#define H 8
#define W 8

/* Returns the graph; *x and *out get its input and output. */
static eng_graph *build(int fast, int *x, int *out)
{
    eng_graph *g = eng_graph_new(fast ? "fast" : "ref");
    eng_graph_set_fast(g, fast);
    eng_graph_set_precision(g, ENG_PREC_F32);
    *x = eng_g_input(g, "images", N, H, W, 3);
    int a = eng_g_conv_bn_silu(g, "c0", *x, 12, 3, 1);
    int p0 = eng_g_slice(g, a, 0, 6), p1 = eng_g_slice(g, a, 6, 6); /* partition a */
    int q = eng_g_slice(g, p1, 1, 3);                                /* part of p1, which the concat also reads */
    int r0 = eng_g_slice(g, q, 0, 2), r1 = eng_g_slice(g, q, 1, 2);  /* overlapping */
    int s = eng_g_add(g, p0, p0);                                    /* x + x */
    const int cat[5] = {r0, r0, r1, s, p1};                          /* r0 twice */
    int h = eng_g_conv(g, "c1", eng_g_concat(g, cat, 5), 6, 1, 1, 0, 1, 1);
    int k = eng_g_add(g, h, s); /* s: read by the concat before, its last consumer here */
    int m = eng_g_maxpool(g, k, 3);
    int u = eng_g_upsample2(g, eng_g_conv_bn_silu(g, "c2", m, 4, 3, 2));
    int sg = eng_g_sigmoid(g, u);
    int v = eng_g_silu(g, eng_g_bn(g, "b3", eng_g_conv(g, "c3", k, 5, 3, 1, 1, 1, 0), 1e-3f, 0.03f));
    int z = eng_g_slice(g, eng_g_conv_bn_silu(g, "c4", m, 8, 1, 1), 2, 4); /* its only consumer, not all of it */
    const int cat2[5] = {u, sg, m, v, z};
    *out = eng_g_conv(g, "head", eng_g_concat(g, cat2, 5), 5, 1, 1, 0, 1, 1);
    return g;
}

static double max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
    return m;
}

/* max |a - b| over max |b|, NaN-safe. */
static double rel(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e;
    }
    const double s = max_abs(b, n);
    return d / (s > 0 ? s : 1e-30);
}

/* Forward in training mode, backward twice from the same output gradient
 * (parameter gradients accumulate, activation gradients must not): the
 * fast graph's output and every parameter gradient within 1e-5 of the
 * reference graph's (oneDNN's f32 convolutions sum in another order). */
static void test_fast_graph_matches_reference(void **state)
{
    (void)state;
    int xf, of, xr, orf;
    eng_graph *f = build(1, &xf, &of), *r = build(0, &xr, &orf);
    if (eng_graph_plan(f, 1) || eng_graph_plan(r, 1)) fail_msg("%s", lupe_errmsg());
    const eng_param *pf, *pr;
    const int np = eng_graph_params(f, &pf);
    assert_int_equal(eng_graph_params(r, &pr), np);
    gc_rng rng = gc_seed(91);
    const size_t nx = (size_t)N * H * W * 3;
    gc_fill(&rng, eng_g_data(f, xf), nx, -1, 1);
    memcpy(eng_g_data(r, xr), eng_g_data(f, xf), nx * sizeof(float));
    for (int i = 0; i < np; i++) memcpy(pr[i].w, pf[i].w, pf[i].n * sizeof(float)); /* same seed anyway */
    eng_graph_forward(f, 1);
    eng_graph_forward(r, 1);
    int sh[4];
    eng_graph_shape(f, of, sh);
    const size_t no = (size_t)sh[0] * sh[1] * sh[2] * sh[3];
    const double eo = rel(eng_g_data(f, of), eng_g_data(r, orf), no);
    if (!(eo <= 1e-5)) fail_msg("output differs by %.3g", eo);
    float *dout = gc_random(&rng, no, -1, 1);
    for (int pass = 1; pass <= 2; pass++) {
        memcpy(eng_g_grad(f, of), dout, no * sizeof(float));
        memcpy(eng_g_grad(r, orf), dout, no * sizeof(float));
        eng_graph_backward(f);
        eng_graph_backward(r);
        for (int i = 0; i < np; i++) {
            assert_string_equal(pf[i].name, pr[i].name);
            const double e = rel(pf[i].g, pr[i].g, pf[i].n);
            if (getenv("GC_VERBOSE")) fprintf(stderr, "# pass %d %-16s rel err %.2e\n", pass, pf[i].name, e);
            if (!(e <= 1e-5)) fail_msg("pass %d: gradient of %s differs by %.3g", pass, pf[i].name, e);
            if (!(max_abs(pr[i].g, pr[i].n) > 0)) fail_msg("gradient of %s is all zero", pr[i].name);
        }
    }
    free(dout);
    eng_graph_free(f);
    eng_graph_free(r);
}

/* The parameter gradients after two backward passes are twice those of
 * one (in the fast graph, whose first writers overwrite activation
 * gradients: stale values must never leak into a second pass). */
static void test_second_pass_doubles(void **state)
{
    (void)state;
    int x, o;
    eng_graph *g = build(1, &x, &o);
    if (eng_graph_plan(g, 1)) fail_msg("%s", lupe_errmsg());
    gc_rng rng = gc_seed(92);
    gc_fill(&rng, eng_g_data(g, x), (size_t)N * H * W * 3, -1, 1);
    eng_graph_forward(g, 1);
    int sh[4];
    eng_graph_shape(g, o, sh);
    const size_t no = (size_t)sh[0] * sh[1] * sh[2] * sh[3];
    float *dout = gc_random(&rng, no, -1, 1);
    const eng_param *p;
    const int np = eng_graph_params(g, &p);
    float **one = calloc((size_t)np, sizeof *one);
    assert_non_null(one);
    for (int pass = 1; pass <= 2; pass++) {
        memcpy(eng_g_grad(g, o), dout, no * sizeof(float));
        eng_graph_backward(g);
        for (int i = 0; i < np; i++) {
            if (pass == 1) {
                one[i] = gc_zeros(p[i].n);
                memcpy(one[i], p[i].g, p[i].n * sizeof(float));
                continue;
            }
            for (size_t j = 0; j < p[i].n; j++) one[i][j] *= 2;
            const double e = rel(p[i].g, one[i], p[i].n);
            if (!(e <= 1e-6)) fail_msg("%s: two passes give %.3g off twice one", p[i].name, e);
        }
    }
    for (int i = 0; i < np; i++) free(one[i]);
    free(one);
    free(dout);
    eng_graph_free(g);
}

/* The read-only node API on the graph above: kinds, names, tensors in a
 * topological order, attributes, and parameter values that are the
 * graph's own (NULL until planned). */
static void test_node_info(void **state)
{
    (void)state;
    int x, out;
    eng_graph *g = build(0, &x, &out);
    const int nn = eng_graph_nodes(g), nt = eng_graph_tensors(g);
    eng_node_info nd;
    eng_graph_node(g, 1, &nd);
    assert_int_equal(nd.op, ENG_OP_CONV);
    assert_string_equal(nd.wname, "c0.conv.weight");
    assert_null(nd.w); /* not planned yet */
    assert_int_equal(eng_graph_plan(g, 0), LUPE_OK);

    int *made = calloc((size_t)nt, sizeof *made);
    assert_non_null(made);
    int kinds[ENG_OP_BN_SILU + 1] = {0};
    for (int i = 0; i < nn; i++) {
        eng_graph_node(g, i, &nd);
        kinds[nd.op]++;
        assert_true(nd.out >= 0 && nd.out < nt);
        made[nd.out]++;
        for (int k = 0; k < nd.nin; k++) assert_true(made[nd.in[k]]); /* produced by an earlier node */
        int sh[4];
        eng_graph_shape(g, nd.out, sh);
        if (nd.op == ENG_OP_MAXPOOL) assert_int_equal(nd.k, 3);
        if (nd.op == ENG_OP_CONV) {
            assert_int_equal(nd.conv.o, sh[3]);
            assert_int_equal(nd.conv.oh, sh[1]);
        }
    }
    for (int t = 0; t < nt; t++) assert_int_equal(made[t], 1);
    free(made);
    assert_int_equal(kinds[ENG_OP_INPUT], 1);
    assert_int_equal(kinds[ENG_OP_CONV], 6);
    assert_int_equal(kinds[ENG_OP_BN_SILU], 3);
    assert_int_equal(kinds[ENG_OP_BN], 1);
    assert_int_equal(kinds[ENG_OP_SLICE], 6);
    assert_int_equal(kinds[ENG_OP_UPSAMPLE2], 1);

    eng_graph_node(g, 0, &nd);
    assert_int_equal(nd.op, ENG_OP_INPUT);
    assert_string_equal(nd.name, "images");
    assert_int_equal(nd.out, x);
    assert_int_equal(nd.nin, 0);
    eng_graph_node(g, 1, &nd);
    assert_int_equal(nd.in[0], x);
    assert_int_equal(nd.conv.c, 3);
    assert_int_equal(nd.conv.kh, 3);
    assert_int_equal(nd.conv.ph, 1);
    assert_null(nd.bname);
    assert_null(nd.b);
    const eng_param *p = NULL;
    int np = eng_graph_params(g, &p);
    assert_true(np > 0);
    assert_ptr_equal(nd.w, p[0].w); /* c0.conv.weight is the first parameter */
    eng_graph_node(g, 2, &nd);
    assert_int_equal(nd.op, ENG_OP_BN_SILU);
    assert_string_equal(nd.name, "c0.bn");
    assert_string_equal(nd.wname, "c0.bn.weight");
    assert_string_equal(nd.bname, "c0.bn.bias");
    assert_true(fabsf(nd.eps - 1e-3f) < 1e-9f);
    eng_tensor_rec st[64];
    int ns = eng_graph_state(g, st, 64);
    const float *rmean = NULL, *rvar = NULL;
    for (int i = 0; i < ns; i++) {
        if (!strcmp(st[i].name, "c0.bn.running_mean")) rmean = st[i].data;
        if (!strcmp(st[i].name, "c0.bn.running_var")) rvar = st[i].data;
    }
    assert_ptr_equal(nd.rmean, rmean);
    assert_ptr_equal(nd.rvar, rvar);
    assert_true(nd.rvar[0] == 1.0f);
    eng_graph_node(g, 3, &nd);
    assert_int_equal(nd.op, ENG_OP_SLICE);
    assert_int_equal(nd.c0, 0);
    eng_graph_node(g, 4, &nd);
    assert_int_equal(nd.c0, 6);
    eng_graph_node(g, nn - 1, &nd);
    assert_string_equal(nd.name, "head");
    assert_int_equal(nd.out, out);
    assert_string_equal(nd.bname, "head.bias");
    assert_non_null(nd.b);
    eng_graph_free(g);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_graph_matches_reference),
        cmocka_unit_test(test_second_pass_doubles),
        cmocka_unit_test(test_node_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
