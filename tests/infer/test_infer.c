/*
 * Tests of the inference compiler against the training graph in inference
 * mode (eng_graph_forward(g, 0)), on YOLOv8n at 96 pixels with random
 * weights and batch-norm statistics of realistic scale: f32 within 1e-4,
 * bf16 and int8 within their measured tolerances, the decoded detections
 * of the lower precisions against f32's; the memory plan, no allocation per
 * run, the calibration file, and the letterbox mapping on hand-computed
 * cases.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/infer.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static double urand(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* A detector graph with random weights and batch-norm statistics of a
 * realistic scale: those of a training-mode pass over 8 random images
 * through a copy of the network (every activation kept, as training plans
 * them), slightly perturbed, so that no layer's output explodes or fades. */
typedef struct net {
    det_arch a;
    eng_graph *g;
    int x, outs[DET_LEVELS];
} net;

static void random_images(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)urand();
}

static eng_graph *build(det_arch *a, const char *scale, int nc, int imgsz, int batch, int *x, int outs[DET_LEVELS],
                        int training)
{
    assert_int_equal(det_arch_init(a, scale, nc, imgsz, batch), LUPE_OK);
    eng_graph *g = eng_graph_new("test");
    assert_non_null(g);
    eng_graph_set_precision(g, ENG_PREC_F32);
    assert_int_equal(det_build(g, a, x, outs), LUPE_OK);
    assert_int_equal(eng_graph_plan(g, training), LUPE_OK);
    return g;
}

static void net_init_scale(net *t, const char *scale, int nc, int imgsz, int batch)
{
    t->g = build(&t->a, scale, nc, imgsz, batch, &t->x, t->outs, 0);
    const eng_param *p = NULL;
    int np = eng_graph_params(t->g, &p);
    for (int i = 0; i < np; i++) {
        const char *nm = p[i].name;
        size_t len = strlen(nm);
        if (strstr(nm, ".bn.") && !strcmp(nm + len - 7, ".weight"))
            for (size_t k = 0; k < p[i].n; k++) p[i].w[k] = (float)(0.5 + urand());
        else if (!strcmp(nm + len - 5, ".bias"))
            for (size_t k = 0; k < p[i].n; k++) p[i].w[k] = (float)(0.4 * (urand() - 0.5));
        /* The head's last convolutions: logits of a trained model's scale. */
        if (strstr(nm, ".2.weight") && strstr(nm, ".cv"))
            for (size_t k = 0; k < p[i].n; k++) p[i].w[k] *= 4;
        if (strstr(nm, ".2.bias") && strstr(nm, ".cv"))
            for (size_t k = 0; k < p[i].n; k++) p[i].w[k] = (float)(4 * (urand() - 0.5));
    }
    det_arch sa;
    int sx, souts[DET_LEVELS];
    eng_graph *s = build(&sa, scale, nc, imgsz, 8, &sx, souts, 1);
    const eng_param *q = NULL;
    assert_int_equal(eng_graph_params(s, &q), np);
    for (int i = 0; i < np; i++) memcpy(q[i].w, p[i].w, p[i].n * sizeof(float));
    random_images(eng_g_data(s, sx), (size_t)8 * imgsz * imgsz * 3);
    eng_graph_forward(s, 1);
    for (int i = 0; i < eng_graph_nodes(s); i++) {
        eng_node_info nd, td;
        eng_graph_node(s, i, &nd);
        eng_graph_node(t->g, i, &td);
        if (nd.op != ENG_OP_BN_SILU && nd.op != ENG_OP_BN) continue;
        int sh[4];
        eng_graph_shape(s, nd.in[0], sh);
        const float *x = eng_g_data(s, nd.in[0]);
        size_t m = (size_t)sh[0] * sh[1] * sh[2];
        float *rmean = (float *)(uintptr_t)td.rmean, *rvar = (float *)(uintptr_t)td.rvar;
        for (int c = 0; c < sh[3]; c++) {
            double s1 = 0, s2 = 0;
            for (size_t r = 0; r < m; r++) s1 += x[r * sh[3] + c];
            double mean = s1 / m;
            for (size_t r = 0; r < m; r++) s2 += (x[r * sh[3] + c] - mean) * (x[r * sh[3] + c] - mean);
            double var = s2 / m;
            rmean[c] = (float)(mean + 0.05 * sqrt(var) * (urand() - 0.5));
            rvar[c] = (float)(var * (0.9 + 0.2 * urand()) + 1e-2);
        }
    }
    eng_graph_free(s);
}

static void net_init(net *t, int nc, int imgsz, int batch)
{
    net_init_scale(t, "n", nc, imgsz, batch);
}

static void net_free(net *t)
{
    eng_graph_free(t->g);
}

/* Reference outputs for images: the graph in inference mode. */
static float *reference(net *t, const float *images, size_t *lens)
{
    const size_t n = (size_t)t->a.batch * t->a.imgsz * t->a.imgsz * 3;
    memcpy(eng_g_data(t->g, t->x), images, n * sizeof(float));
    eng_graph_forward(t->g, 0);
    size_t total = 0;
    for (int l = 0; l < DET_LEVELS; l++) {
        int s[4];
        eng_graph_shape(t->g, t->outs[l], s);
        lens[l] = (size_t)s[0] * s[1] * s[2] * s[3];
        total += lens[l];
    }
    float *ref = malloc(total * sizeof *ref), *p = ref;
    for (int l = 0; l < DET_LEVELS; l++) {
        memcpy(p, eng_g_data(t->g, t->outs[l]), lens[l] * sizeof *p);
        p += lens[l];
    }
    return ref;
}

/* Largest |model - ref| over the three outputs, and the largest |ref|. */
static double compare(inf_model *m, const float *ref, const size_t *lens, double *refmax)
{
    double worst = 0, big = 0;
    for (int l = 0; l < DET_LEVELS; l++) {
        const float *o = inf_model_output(m, l);
        for (size_t i = 0; i < lens[l]; i++) {
            double d = fabs((double)o[i] - ref[i]);
            if (!(d <= worst)) worst = d; /* NaN counts as worst */
            if (fabs(ref[i]) > big) big = fabs(ref[i]);
        }
        ref += lens[l];
    }
    if (refmax) *refmax = big;
    return worst;
}

static int test_threads = 1;

static inf_model *open_graph(net *t, inf_precision p, int batch, const inf_calib *c)
{
    inf_opts o;
    inf_opts_default(&o);
    o.precision = p;
    o.batch = batch;
    o.threads = test_threads;
    inf_model *m = NULL;
    lupe_status st = inf_model_from_graph(t->g, &t->a, t->x, t->outs, &o, c, NULL, &m);
    if (st) fprintf(stderr, "# %s\n", lupe_errmsg());
    assert_int_equal(st, LUPE_OK);
    assert_int_equal(inf_model_ref_kernels(m), 0);
    return m;
}

static void run_on(inf_model *m, const float *images)
{
    const det_arch *a = inf_model_arch(m);
    memcpy(inf_model_input(m), images, (size_t)a->batch * a->imgsz * a->imgsz * 3 * sizeof(float));
    assert_int_equal(inf_model_run(m), LUPE_OK);
}

static void check_f32(int batch, int threads)
{
    test_threads = threads;
    net t;
    net_init(&t, 2, 96, batch);
    const size_t n = (size_t)batch * 96 * 96 * 3;
    float *images = malloc(n * sizeof *images);
    random_images(images, n);
    size_t lens[DET_LEVELS];
    float *ref = reference(&t, images, lens);
    inf_model *m = open_graph(&t, INF_F32, batch, NULL);
    run_on(m, images);
    double big, d = compare(m, ref, lens, &big);
    printf("# f32 batch %d, %d threads: max |diff| %.3g (outputs up to %.3g)\n", batch, threads, d, big);
    test_threads = 1;
    assert_true(big > 2.0); /* the outputs are not degenerate */
    assert_true(d <= 1e-4);
    /* A second run on the same input gives the same bits: nothing of the
     * first run leaks into the second through the reused memory. */
    run_on(m, images);
    assert_true(compare(m, ref, lens, NULL) == d);
    inf_model_free(m);
    free(ref);
    free(images);
    net_free(&t);
}

static void test_f32_batch1(void **state)
{
    (void)state;
    check_f32(1, 1);
}

static void test_f32_batch3(void **state)
{
    (void)state;
    check_f32(3, 1);
}

/* The steps' own threads and oneDNN's planned for two. */
static void test_f32_two_threads(void **state)
{
    (void)state;
    check_f32(2, 2);
}

/* A run allocates nothing, and the arena reuses memory: it is much
 * smaller than all activations side by side. */
static void test_memory(void **state)
{
    (void)state;
    net t;
    net_init(&t, 3, 128, 2);
    inf_model *m = open_graph(&t, INF_F32, 2, NULL);
    random_images(inf_model_input(m), (size_t)2 * 128 * 128 * 3);
    assert_int_equal(inf_model_run(m), LUPE_OK); /* oneDNN's first-run work */
    lupe_alloc_stats a, b;
    lupe_alloc_get_stats(&a);
    random_images(inf_model_input(m), (size_t)2 * 128 * 128 * 3);
    assert_int_equal(inf_model_run(m), LUPE_OK);
    lupe_alloc_get_stats(&b);
    assert_int_equal(b.allocs, a.allocs);
    size_t all = 0;
    for (int i = 0; i < eng_graph_tensors(t.g); i++) {
        int sh[4];
        eng_graph_shape(t.g, i, sh);
        all += (size_t)sh[0] * sh[1] * sh[2] * sh[3] * sizeof(float);
    }
    printf("# arena %zu bytes for %zu bytes of graph tensors (%.0f%%)\n", inf_model_arena_bytes(m), all,
           100.0 * inf_model_arena_bytes(m) / all);
    assert_true(inf_model_arena_bytes(m) < all / 3);
    inf_model_free(m);
    net_free(&t);
}

/* The detections of model m (image b) that match f32's top k: same
 * class, IoU >= 0.9 and scores within dscore. Returns how many of the top
 * k found a match. */
static int matching_top(const det_arch *a, const float *const ref[DET_LEVELS], inf_model *m, int b, int k,
                        double dscore, int *nref)
{
    det_pred p[300], q[300];
    int np = det_detect(a, ref, b, 0.25f, 0.7f, 300, p);
    const float *outs[DET_LEVELS];
    inf_model_outputs(m, outs);
    int nq = det_detect(inf_model_arch(m), outs, b, 0.2f, 0.7f, 300, q);
    assert_true(np >= 0 && nq >= 0);
    *nref = np < k ? np : k;
    int found = 0;
    for (int i = 0; i < *nref; i++) {
        int ok = 0;
        for (int j = 0; j < nq && !ok; j++)
            ok = q[j].cls == p[i].cls && det_iou(&p[i], &q[j]) >= 0.9f && fabs(q[j].score - p[i].score) <= dscore;
        found += ok;
    }
    return found;
}

/* bf16 or int8 against the f32 graph: the largest error relative to the
 * largest output, and the top detections. */
static void check_low(inf_precision prec, double tol, double dscore)
{
    const int B = 2;
    net t;
    net_init(&t, 2, 96, B);
    const size_t n = (size_t)B * 96 * 96 * 3;
    float *images = malloc(n * sizeof *images);
    inf_calib *c = NULL;
    if (prec == INF_INT8) {
        /* Calibration on other images than the test's. */
        inf_model *f = open_graph(&t, INF_F32, B, NULL);
        assert_int_equal(inf_calib_new(f, &c), LUPE_OK);
        for (int k = 0; k < 4; k++) {
            random_images(inf_model_input(f), n);
            assert_int_equal(inf_calib_add(c, B), LUPE_OK);
        }
        assert_int_equal(inf_calib_images(c), 4 * B);
        inf_model_free(f);
    }
    random_images(images, n);
    size_t lens[DET_LEVELS];
    float *ref = reference(&t, images, lens);
    inf_model *m = open_graph(&t, prec, B, c);
    run_on(m, images);
    double big, d = compare(m, ref, lens, &big);
    const float *refo[DET_LEVELS] = {ref, ref + lens[0], ref + lens[0] + lens[1]};
    int nref = 0, found = 0, total = 0;
    for (int b = 0; b < B; b++) {
        found += matching_top(&t.a, refo, m, b, 10, dscore, &nref);
        total += nref;
    }
    if (getenv("INF_TRACE")) {
        inf_model *f = open_graph(&t, INF_F32, B, NULL);
        memcpy(inf_model_input(f), images, n * sizeof *images);
        assert_int_equal(inf_model_trace(f, m, stdout), LUPE_OK);
        inf_model_free(f);
    }
    printf("# %s: max |diff| %.3g = %.3g of the largest output %.3g; top detections matched %d of %d\n",
           inf_precision_name(prec), d, d / big, big, found, total);
    assert_true(d / big <= tol);
    assert_true(total >= 10);
    assert_true(found >= total - total / 10);
    inf_model_free(m);
    inf_calib_free(c);
    free(ref);
    free(images);
    net_free(&t);
}

static void test_bf16(void **state)
{
    (void)state;
    if (!eng_bf16_supported()) {
        skip();
        return;
    }
    check_low(INF_BF16, 0.05, 0.05);
}

static void test_int8(void **state)
{
    (void)state;
    check_low(INF_INT8, 0.25, 0.1);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_batch1),
        cmocka_unit_test(test_f32_batch3),
        cmocka_unit_test(test_f32_two_threads),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_int8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
