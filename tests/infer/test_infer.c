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
static void check_low(inf_precision prec, double tol, double dscore, double share)
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
    assert_true(found >= share * total);
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
    check_low(INF_BF16, 0.05, 0.05, 0.9);
}

static void test_int8(void **state)
{
    (void)state;
    /* A random network is int8's worst case (no redundancy): measured 20%
     * and 18 of 20; a trained one loses under 0.01 mAP50 (docs/inference.md). */
    check_low(INF_INT8, 0.25, 0.1, 0.75);
}

/* The graph's state as a lupe detector checkpoint at path. */
static void save_ckpt(net *t, const char *path)
{
    eng_tensor_rec recs[1024];
    int n = eng_graph_state(t->g, recs, 1024);
    char meta[256];
    snprintf(meta, sizeof meta,
             "{\"format\": \"lupe-detector\", \"arch\": {\"family\": \"yolov8\", \"scale\": \"n\", \"nc\": %d, "
             "\"imgsz\": %d}, \"classes\": [\"scratch\", \"dent\", \"stain\"]}",
             t->a.nc, t->a.imgsz);
    assert_int_equal(eng_ckpt_save(path, meta, recs, (size_t)n), LUPE_OK);
}

static int same_outputs(inf_model *a, inf_model *b)
{
    const det_arch *x = inf_model_arch(a);
    for (int l = 0; l < DET_LEVELS; l++) {
        size_t n = (size_t)x->batch * (x->imgsz >> (3 + l)) * (x->imgsz >> (3 + l)) * (4 * DET_REG_MAX + x->nc);
        if (memcmp(inf_model_output(a, l), inf_model_output(b, l), n * sizeof(float))) return 0;
    }
    return 1;
}

/* A checkpoint (or its run folder) opens into the same model as the graph
 * it came from; int8's calibration is found next to it, refused when made
 * for another model, and round-trips through its file unchanged. */
static void test_checkpoint_and_calibration(void **state)
{
    (void)state;
    net t;
    net_init(&t, 3, 64, 1);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_path("run/weights"));
    assert_int_equal(lupe_mkdirs(dir), LUPE_OK);
    char ck[4200], run[4200];
    snprintf(ck, sizeof ck, "%s/best.ckpt", dir);
    snprintf(run, sizeof run, "%s", tu_path("run"));
    save_ckpt(&t, ck);
    const size_t n = (size_t)64 * 64 * 3;
    float *images = malloc(n * sizeof *images);
    random_images(images, n);

    inf_model *g = open_graph(&t, INF_F32, 1, NULL), *m = NULL;
    inf_opts o;
    inf_opts_default(&o);
    o.threads = 1;
    assert_int_equal(inf_model_open(run, &o, &m), LUPE_OK);
    assert_string_equal(inf_model_path(m), ck);
    assert_string_equal(inf_model_classes(m)[2], "stain");
    assert_int_equal(inf_model_arch(m)->imgsz, 64);
    run_on(g, images);
    run_on(m, images);
    assert_true(same_outputs(g, m));

    /* int8: no calibration yet. */
    inf_model *q = NULL;
    o.precision = INF_INT8;
    assert_int_equal(inf_model_open(ck, &o, &q), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "best.calib"));
    assert_non_null(strstr(lupe_errmsg(), "--calib"));

    /* A calibration of the graph (no checkpoint behind it) is another
     * model's as far as the checkpoint can tell. */
    inf_calib *cg = NULL;
    assert_int_equal(inf_calib_new(g, &cg), LUPE_OK);
    random_images(inf_model_input(g), n);
    assert_int_equal(inf_calib_add(cg, 1), LUPE_OK);
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s/best.calib", dir);
    char *want = inf_calib_path(ck);
    assert_string_equal(want, cpath);
    lupe_free(want);
    assert_int_equal(inf_calib_save(cg, cpath, "test"), LUPE_OK);
    assert_int_equal(inf_model_open(ck, &o, &q), LUPE_EVERIFY);
    assert_non_null(strstr(lupe_errmsg(), "another model"));

    /* The checkpoint's own calibration, through files. */
    inf_calib *c = NULL, *back = NULL;
    assert_int_equal(inf_calib_new(m, &c), LUPE_OK);
    const char *files[3];
    char f[3][4200];
    for (int i = 0; i < 3; i++) {
        lupe_img *im = lupe_img_new(90 + 7 * i, 60, 3);
        for (size_t k = 0; k < (size_t)im->w * im->h * 3; k++) im->data[k] = (uint8_t)(urand() * 256);
        char name[32];
        snprintf(name, sizeof name, "c%d.png", i);
        snprintf(f[i], sizeof f[i], "%s", tu_path(name));
        assert_int_equal(lupe_img_save(im, f[i]), LUPE_OK);
        lupe_img_free(im);
        files[i] = f[i];
    }
    assert_int_equal(inf_calib_add_files(c, files, 3), LUPE_OK);
    assert_int_equal(inf_calib_images(c), 3);
    const char *missing = tu_path("nothere.jpg");
    assert_int_not_equal(inf_calib_add_files(c, &missing, 1), LUPE_OK);
    assert_non_null(strstr(lupe_errmsg(), "nothere.jpg"));
    assert_int_equal(inf_calib_save(c, cpath, "three noise images"), LUPE_OK);
    assert_int_equal(inf_calib_load(cpath, &back), LUPE_OK);
    inf_calib_free(back);
    back = NULL;
    assert_int_equal(inf_model_open(ck, &o, &q), LUPE_OK);
    inf_model *q2 = NULL;
    assert_int_equal(inf_model_from_graph(t.g, &t.a, t.x, t.outs, &o, c, NULL, &q2), LUPE_OK);
    run_on(q, images);
    run_on(q2, images);
    assert_true(same_outputs(q, q2)); /* the file holds exactly what was collected */

    /* Damaged metadata: not a detector. */
    static char xname[] = "x";
    eng_tensor_rec r = {.name = xname, .ndim = 1, .dims = {1}, .n = 1, .data = images};
    const char *junk = tu_path("junk.ckpt");
    assert_int_equal(eng_ckpt_save(junk, "{}", &r, 1), LUPE_OK);
    o.precision = INF_F32;
    inf_model *q3 = NULL;
    assert_int_equal(inf_model_open(junk, &o, &q3), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "junk.ckpt"));
    assert_int_equal(inf_calib_load(junk, &back) == LUPE_OK, 0);
    inf_calib_free(back);
    inf_calib_free(c);
    inf_calib_free(cg);
    inf_model_free(q);
    inf_model_free(q2);
    inf_model_free(m);
    inf_model_free(g);
    free(images);
    net_free(&t);
}

/* The validation loader's padding value, pixel 114 times 1/255. */
#define PAD (114 * (1.0f / 255.0f))

/* Letterbox and its inverse on hand-computed cases. */
static void test_letterbox(void **state)
{
    (void)state;
    const int S = 96;
    float *dst = malloc((size_t)S * S * 3 * sizeof *dst);
    inf_letterbox lb;
    /* 200x100, flat colour (10, 20, 30): scale 0.48, 96x48 centred, 24 rows
     * of padding above and below. */
    lupe_img *im = lupe_img_new(200, 100, 3);
    for (int i = 0; i < 200 * 100; i++) im->data[3 * i] = 10, im->data[3 * i + 1] = 20, im->data[3 * i + 2] = 30;
    assert_int_equal(inf_letterbox_image(im, S, dst, &lb), LUPE_OK);
    assert_int_equal(lb.new_w, 96);
    assert_int_equal(lb.new_h, 48);
    assert_int_equal(lb.pad_x, 0);
    assert_int_equal(lb.pad_y, 24);
    assert_true(fabsf(lb.scale - 0.48f) < 1e-7f);
    assert_true(dst[0] == PAD);                                  /* (0, 0): padding */
    assert_true(dst[((size_t)23 * S + 50) * 3] == PAD);          /* last padding row */
    assert_true(fabsf(dst[((size_t)24 * S + 50) * 3 + 1] - 20.0f / 255.0f) < 1e-6f); /* first image row */
    assert_true(fabsf(dst[((size_t)71 * S + 95) * 3 + 2] - 30.0f / 255.0f) < 1e-6f); /* last image row */
    assert_true(dst[((size_t)72 * S) * 3] == PAD);
    /* Boxes back: x = (x' - 0) / 0.48, y = (y' - 24) / 0.48, clipped. */
    det_pred p[2] = {{.x1 = 12, .y1 = 36, .x2 = 48, .y2 = 60}, {.x1 = -5, .y1 = 0, .x2 = 100, .y2 = 96}};
    inf_unletterbox(p, 2, &lb);
    assert_true(fabsf(p[0].x1 - 25.0f) < 1e-4f && fabsf(p[0].y1 - 25.0f) < 1e-4f);
    assert_true(fabsf(p[0].x2 - 100.0f) < 1e-4f && fabsf(p[0].y2 - 75.0f) < 1e-4f);
    assert_true(p[1].x1 == 0 && p[1].y1 == 0 && p[1].x2 == 200 && p[1].y2 == 100);
    lupe_img_free(im);
    /* 30x40 gray, grown: scale 2.4, 72x96, 12 columns of padding left. */
    im = lupe_img_new(30, 40, 1);
    memset(im->data, 200, 30 * 40);
    assert_int_equal(inf_letterbox_image(im, S, dst, &lb), LUPE_OK);
    assert_int_equal(lb.new_w, 72);
    assert_int_equal(lb.new_h, 96);
    assert_int_equal(lb.pad_x, 12);
    assert_int_equal(lb.pad_y, 0);
    assert_true(dst[(size_t)11 * 3] == PAD);
    for (int k = 0; k < 3; k++) assert_true(fabsf(dst[(size_t)12 * 3 + k] - 200.0f / 255.0f) < 1e-6f);
    det_pred g = {.x1 = 36, .y1 = 48, .x2 = 60, .y2 = 72};
    inf_unletterbox(&g, 1, &lb);
    assert_true(fabsf(g.x1 - 10.0f) < 1e-4f && fabsf(g.y1 - 20.0f) < 1e-4f);
    assert_true(fabsf(g.x2 - 20.0f) < 1e-4f && fabsf(g.y2 - 30.0f) < 1e-4f);
    lupe_img_free(im);
    assert_int_equal(inf_letterbox_image(NULL, S, dst, &lb), LUPE_EARG);
    free(dst);
}

/* What the compiler refuses, with the node named. */
static void test_refusals(void **state)
{
    (void)state;
    eng_graph *g = eng_graph_new("odd");
    int x = eng_g_input(g, "images", 1, 64, 64, 3);
    int y = eng_g_conv_bn_silu(g, "model.0", x, 16, 3, 2);
    int z = eng_g_silu(g, y);
    assert_int_equal(eng_graph_plan(g, 0), LUPE_OK);
    det_arch a;
    assert_int_equal(det_arch_init(&a, "n", 1, 64, 1), LUPE_OK);
    int outs[DET_LEVELS] = {z, z, z};
    inf_opts o;
    inf_opts_default(&o);
    inf_model *m = NULL;
    assert_int_equal(inf_model_from_graph(g, &a, x, outs, &o, NULL, NULL, &m), LUPE_EUNSUPPORTED);
    assert_non_null(strstr(lupe_errmsg(), "silu"));
    assert_null(m);
    o.precision = INF_INT8;
    assert_int_equal(inf_model_from_graph(g, &a, x, outs, &o, NULL, NULL, &m), LUPE_EARG);
    o.precision = INF_F32, o.batch = 0;
    assert_int_equal(inf_model_from_graph(g, &a, x, outs, &o, NULL, NULL, &m), LUPE_EARG);
    eng_graph_free(g);
    inf_precision p;
    assert_int_equal(inf_precision_parse("int8", &p), 0);
    assert_int_equal(p, INF_INT8);
    assert_int_equal(inf_precision_parse("fp16", &p), -1);
}

/* The ONNX layout's decoding by hand: 2 classes, 4 anchors. Anchor 0 and
 * 1 overlap (IoU 0.905) in class 0, so NMS keeps the better; anchor 2's
 * class-1 score sits exactly on conf (kept: >=), its class-0 score under it;
 * anchor 3 is NaN (never a detection). */
static void test_onnx_decode(void **state)
{
    (void)state;
    enum { NC = 2, N = 4 };
    const float out[(4 + NC) * N] = {
        /* cx */ 50, 51, 200, 10,
        /* cy */ 50, 50, 100, 10,
        /* w  */ 20, 20, 40, 4,
        /* h  */ 10, 10, 60, 4,
        /* class 0 */ 0.9f, 0.8f, 0.2f, NAN,
        /* class 1 */ 0.1f, 0.7f, 0.25f, 0.2f,
    };
    det_pred cand[N * NC], dst[8];
    int k = inf_onnx_decode(out, NC, N, 0.25f, 0.7f, 8, cand, dst);
    assert_int_equal(k, 3);
    /* Best first: anchor 0 class 0 (anchor 1 class 0 suppressed), anchor 1
     * class 1 (another class: kept), anchor 2 class 1. */
    assert_int_equal(dst[0].cls, 0);
    assert_float_equal(dst[0].score, 0.9f, 0);
    assert_float_equal(dst[0].x1, 40, 1e-6);
    assert_float_equal(dst[0].y1, 45, 1e-6);
    assert_float_equal(dst[0].x2, 60, 1e-6);
    assert_float_equal(dst[0].y2, 55, 1e-6);
    assert_int_equal(dst[1].cls, 1);
    assert_float_equal(dst[1].score, 0.7f, 0);
    assert_float_equal(dst[1].x1, 41, 1e-6);
    assert_int_equal(dst[2].cls, 1);
    assert_float_equal(dst[2].x1, 180, 1e-6);
    assert_float_equal(dst[2].y2, 130, 1e-6);
    /* max_det keeps the best. */
    assert_int_equal(inf_onnx_decode(out, NC, N, 0.25f, 0.7f, 1, cand, dst), 1);
    assert_float_equal(dst[0].score, 0.9f, 0);
    /* A high threshold leaves none. */
    assert_int_equal(inf_onnx_decode(out, NC, N, 0.95f, 0.7f, 8, cand, dst), 0);
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
        cmocka_unit_test(test_checkpoint_and_calibration),
        cmocka_unit_test(test_letterbox),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_onnx_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
