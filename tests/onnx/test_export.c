/*
 * Tests of the ONNX export: tiny detectors (scale n, 1 and 3 classes, 64
 * and 96 px) with random weights and batch-norm statistics are saved as
 * checkpoints and exported; the files are read back and checked node by
 * node, and ONNX Runtime (the oracle, skipped when it cannot be installed)
 * runs them on random and real-image inputs: output0 must equal lupe's own
 * forward pass + det_raw_output within 1e-4. A hand-built graph covers the
 * walker's unfolded forms (batch norm alone, SiLU, Slice, a grouped conv).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ort.h"
#include "lib/testutil.h"
#include "lupe/det.h"
#include "lupe/img.h"
#include "lupe/onnx.h"
#include "onnx/export_internal.h"

/* output0 must equal lupe's within TOL: the scores as they are, the boxes
 * in grid cells (pixels / stride), the unit the graph computes them in
 * before its last Mul. In pixels the boxes of stride 32 reach 300-600,
 * where float32 values lie 3e-5 or 6e-5 apart: two float implementations
 * (oneDNN with the batch norm applied after the convolution, ONNX Runtime
 * with it folded in) differ there by a few of those steps, 0.6e-4 to
 * 2e-4 px as measured (printed below), which a bound of 1e-4 px would
 * reject at random. 1e-4 of a cell still catches a batch norm folded with
 * the wrong epsilon, let alone a wrong anchor, stride or bin order. */
#define TOL 1e-4
/* Weight gains that make the random detector behave like a trained one:
 * activations that keep their scale through the layers (He's gain over
 * PyTorch's default range), peaked box distributions and class scores
 * spread over 0..1 instead of all near 0.5. */
#define CONV_GAIN 2.0f
#define HEAD_GAIN 30.0f

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static float urand(float lo, float hi)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return lo + (hi - lo) * (float)((double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* A detector at batch 1 in f32 with weights as planning initialises them
 * (PyTorch's ranges) and batch norms made non-trivial: gamma 0.5..1.5, beta
 * +-0.2, running mean +-0.3, running variance 0.3..2, as after training,
 * and the gains above. */
typedef struct tiny {
    det_arch a;
    eng_graph *g;
    int x, outs[DET_LEVELS];
    eng_tensor_rec state[1024];
    int nstate;
} tiny;

static void tiny_build(tiny *t, int nc, int imgsz)
{
    assert_int_equal(det_arch_init(&t->a, "n", nc, imgsz, 1), LUPE_OK);
    t->g = eng_graph_new("tiny");
    assert_non_null(t->g);
    eng_graph_set_precision(t->g, ENG_PREC_F32);
    assert_int_equal(det_build(t->g, &t->a, &t->x, t->outs), LUPE_OK);
    assert_int_equal(eng_graph_plan(t->g, 0), LUPE_OK);
    t->nstate = eng_graph_state(t->g, t->state, 1024);
    assert_true(t->nstate > 100 && t->nstate < 1024);
    for (int i = 0; i < t->nstate; i++) {
        eng_tensor_rec *r = &t->state[i];
        int bn = strstr(r->name, ".bn.") != NULL;
        for (size_t k = 0; k < r->n; k++) {
            if (bn && ends_with(r->name, ".weight")) r->data[k] = urand(0.5f, 1.5f);
            if (bn && ends_with(r->name, ".bias")) r->data[k] = urand(-0.2f, 0.2f);
            if (ends_with(r->name, ".running_mean")) r->data[k] = urand(-0.3f, 0.3f);
            if (ends_with(r->name, ".running_var")) r->data[k] = urand(0.3f, 2.0f);
            if (ends_with(r->name, "conv.weight")) r->data[k] *= CONV_GAIN;
            if ((strstr(r->name, ".cv2.") || strstr(r->name, ".cv3.")) && ends_with(r->name, ".2.weight"))
                r->data[k] *= HEAD_GAIN;
        }
    }
}

static void tiny_free(tiny *t)
{
    eng_graph_free(t->g);
}

/* Saves t as lupe train does: its state and the metadata the exporter reads. */
static void tiny_save(tiny *t, const char *path, const char *const *classes)
{
    char meta[1024];
    int n = snprintf(meta, sizeof meta,
                     "{\"format\": \"lupe-detector\", \"arch\": {\"family\": \"yolov8\", \"scale\": \"n\", \"nc\": %d, "
                     "\"imgsz\": %d}, \"classes\": [",
                     t->a.nc, t->a.imgsz);
    for (int i = 0; i < t->a.nc; i++) n += snprintf(meta + n, sizeof meta - (size_t)n, "%s\"%s\"", i ? ", " : "", classes[i]);
    snprintf(meta + n, sizeof meta - (size_t)n, "]}");
    assert_int_equal(eng_ckpt_save(path, meta, t->state, (size_t)t->nstate), LUPE_OK);
}

/* lupe's output0 for an NCHW image: the forward pass on its NHWC copy,
 * then det_raw_output. */
static void native_output0(tiny *t, const float *nchw, float *out)
{
    const int s = t->a.imgsz;
    float *x = eng_g_data(t->g, t->x);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < s * s; i++) x[(size_t)i * 3 + c] = nchw[(size_t)c * s * s + i];
    eng_graph_forward(t->g, 0);
    const float *outs[DET_LEVELS];
    for (int l = 0; l < DET_LEVELS; l++) outs[l] = eng_g_data(t->g, t->outs[l]);
    assert_int_equal(det_raw_output(&t->a, outs, 0, out), LUPE_OK);
}

static const char *meta_get(const Onnx__ModelProto *m, const char *key)
{
    for (size_t i = 0; i < m->n_metadata_props; i++)
        if (!strcmp(m->metadata_props[i]->key, key)) return m->metadata_props[i]->value;
    return NULL;
}

static int count_op(const Onnx__GraphProto *g, const char *op)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++) n += !strcmp(g->node[i]->op_type, op);
    return n;
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name)) return g->initializer[i];
    return NULL;
}

static void expect_value_info(const Onnx__ValueInfoProto *v, const char *name, const int64_t *dims, int ndim)
{
    assert_string_equal(v->name, name);
    assert_non_null(v->type);
    assert_int_equal(v->type->value_case, ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE);
    const Onnx__TypeProto__Tensor *tt = v->type->tensor_type;
    assert_int_equal(tt->elem_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    assert_int_equal(tt->shape->n_dim, ndim);
    for (int i = 0; i < ndim; i++) {
        assert_int_equal(tt->shape->dim[i]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE);
        assert_int_equal(tt->shape->dim[i]->dim_value, dims[i]);
    }
}

/* The structure of an exported tiny detector. */
static void check_structure(const char *path, tiny *t, const char *names)
{
    Onnx__ModelProto *m = NULL;
    assert_int_equal(onnx__read(path, &m), LUPE_OK);
    const int nc = t->a.nc, s = t->a.imgsz, n = det_anchors(&t->a);
    assert_int_equal(m->ir_version, 8);
    assert_int_equal(onnx__opset(m), ONNX_EXPORT_OPSET);
    assert_string_equal(m->producer_name, "lupe");
    assert_string_equal(m->producer_version, LUPE_VERSION);
    const Onnx__GraphProto *g = m->graph;
    assert_int_equal(g->n_input, 1);
    assert_int_equal(g->n_output, 1);
    const int64_t in[4] = {1, 3, s, s}, out[3] = {1, 4 + nc, n};
    expect_value_info(g->input[0], "images", in, 4);
    expect_value_info(g->output[0], "output0", out, 3);
    assert_string_equal(g->node[g->n_node - 1]->output[0], "output0");

    assert_string_equal(meta_get(m, "names"), names);
    assert_string_equal(meta_get(m, "stride"), "32");
    assert_string_equal(meta_get(m, "task"), "detect");
    assert_string_equal(meta_get(m, "batch"), "1");
    char imgsz[32];
    snprintf(imgsz, sizeof imgsz, "[%d, %d]", s, s);
    assert_string_equal(meta_get(m, "imgsz"), imgsz);

    /* YOLOv8n's 63 convolutions and DFL's, batch norm folded away, SiLU as
     * Sigmoid * Mul (57 Conv-BN-SiLU blocks), the 8 C2f splits and the
     * head's 2, SPPF's 3 pools, the neck's 2 upsamplings. */
    assert_int_equal(count_op(g, "Conv"), 64);
    assert_int_equal(count_op(g, "BatchNormalization"), 0);
    assert_int_equal(count_op(g, "Sigmoid"), 57 + 1);
    assert_int_equal(count_op(g, "Mul"), 57 + 1);
    assert_int_equal(count_op(g, "Split"), 8 + 2);
    assert_int_equal(count_op(g, "Slice"), 0);
    assert_int_equal(count_op(g, "MaxPool"), 3);
    assert_int_equal(count_op(g, "Resize"), 2);
    assert_int_equal(count_op(g, "Softmax"), 1);
    assert_int_equal(count_op(g, "Transpose"), 1);
    const char *allowed[] = {"Conv", "Sigmoid", "Mul", "Add", "Sub", "Div", "Concat", "Split",
                             "MaxPool", "Resize", "Reshape", "Transpose", "Softmax"};
    for (size_t i = 0; i < g->n_node; i++) {
        int ok = 0;
        for (size_t k = 0; k < sizeof allowed / sizeof *allowed; k++) ok |= !strcmp(g->node[i]->op_type, allowed[k]);
        if (!ok) fail_msg("node %s has op %s", g->node[i]->name, g->node[i]->op_type);
    }

    /* The first convolution: OIHW weights, a bias from the folded batch
     * norm, equal to folding by hand in double. */
    const Onnx__TensorProto *w = find_init(g, "model.0.conv.weight"), *b = find_init(g, "model.0.conv.bias");
    assert_non_null(w);
    assert_non_null(b);
    assert_int_equal(w->n_dims, 4);
    assert_int_equal(w->dims[0], 16);
    assert_int_equal(w->dims[1], 3);
    assert_int_equal(w->dims[2], 3);
    assert_int_equal(w->dims[3], 3);
    assert_int_equal(w->raw_data.len, 16 * 3 * 3 * 3 * sizeof(float));
    const float *wv = (const float *)(const void *)w->raw_data.data, *bv = (const float *)(const void *)b->raw_data.data;
    const float *w0 = NULL, *g0 = NULL, *b0 = NULL, *m0 = NULL, *v0 = NULL;
    for (int i = 0; i < t->nstate; i++) {
        const char *nm = t->state[i].name;
        const float *d = t->state[i].data;
        if (!strcmp(nm, "model.0.conv.weight")) w0 = d;
        if (!strcmp(nm, "model.0.bn.weight")) g0 = d;
        if (!strcmp(nm, "model.0.bn.bias")) b0 = d;
        if (!strcmp(nm, "model.0.bn.running_mean")) m0 = d;
        if (!strcmp(nm, "model.0.bn.running_var")) v0 = d;
    }
    assert_true(w0 && g0 && b0 && m0 && v0);
    for (int o = 0; o < 16; o++) {
        double sc = g0[o] / sqrt(v0[o] + 1e-3);
        assert_true(fabs(bv[o] - (b0[o] - m0[o] * sc)) < 1e-6);
        for (int i = 0; i < 3; i++)
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) {
                    double want = w0[((o * 3 + y) * 3 + x) * 3 + i] * sc; /* OHWI */
                    assert_true(fabs(wv[((o * 3 + i) * 3 + y) * 3 + x] - want) < 1e-6 * (1 + fabs(want)));
                }
    }
    /* Anchors and strides: level by level, row-major, cell centres. */
    const Onnx__TensorProto *an = find_init(g, "detect.anchors"), *st = find_init(g, "detect.strides");
    assert_non_null(an);
    assert_non_null(st);
    const float *av = (const float *)(const void *)an->raw_data.data, *sv = (const float *)(const void *)st->raw_data.data;
    const int g0s = s / 8, g1s = s / 16;
    assert_true(av[0] == 0.5f && av[n] == 0.5f && sv[0] == 8.0f);
    assert_true(av[g0s + 1] == 1.5f && av[n + g0s + 1] == 1.5f); /* level 0, cell (1, 1) */
    int j = g0s * g0s + g1s + 2;                                    /* level 1, cell (2, 1) */
    assert_true(av[j] == 2.5f && av[n + j] == 1.5f && sv[j] == 16.0f);
    assert_true(sv[n - 1] == 32.0f && av[n - 1] == s / 32 - 0.5f);
    onnx__model_free(m);
}

/* ONNX Runtime on the file versus lupe on the same input; returns the
 * largest absolute difference, or -1 when ONNX Runtime is unavailable. */
static double compare_ort(const char *path, tiny *t, const float *nchw, const char *what)
{
    char why[512];
    ort_session *s = ort_open(path, 1, why, sizeof why);
    if (!s) {
        print_message("# SKIP ONNX Runtime comparison (%s): %s\n", what, why);
        return -1;
    }
    const int n = det_anchors(&t->a), rows = 4 + t->a.nc;
    const int64_t shape[4] = {1, 3, t->a.imgsz, t->a.imgsz};
    int64_t oshape[8];
    int orank = 0;
    float *got = NULL, *want = malloc((size_t)rows * n * sizeof(float));
    assert_non_null(want);
    if (ort_run(s, nchw, shape, 4, &got, oshape, &orank, why, sizeof why)) fail_msg("%s", why);
    assert_int_equal(orank, 3);
    assert_int_equal(oshape[0], 1);
    assert_int_equal(oshape[1], rows);
    assert_int_equal(oshape[2], n);
    native_output0(t, nchw, want);
    const int n0 = (t->a.imgsz / 8) * (t->a.imgsz / 8), n1 = n0 + (t->a.imgsz / 16) * (t->a.imgsz / 16);
    double worst = 0, px = 0, score = 0, wmin = 1e9, wmax = 0, smin = 1, smax = 0;
    int wr = 0, wj = 0;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) {
            double v = want[(size_t)r * n + j], d = fabs((double)got[(size_t)r * n + j] - v);
            double stride = r >= 4 ? 1 : j < n0 ? 8 : j < n1 ? 16 : 32;
            if (!(d / stride <= worst)) worst = d / stride, wr = r, wj = j;
            if (r < 4 && !(d <= px)) px = d;
            if (r >= 4 && !(d <= score)) score = d;
            if (r == 2) wmin = v < wmin ? v : wmin, wmax = v > wmax ? v : wmax;
            if (r >= 4) smin = v < smin ? v : smin, smax = v > smax ? v : smax;
        }
    print_message("# %s, ONNX Runtime %s: max |output0 - lupe|: boxes %.3g px = %.3g cells, scores %.3g "
                  "(widths %.1f..%.1f px, scores %.4f..%.4f)\n",
                  what, ort_version(), px, worst, score, wmin, wmax, smin, smax);
    if (!(worst <= TOL))
        fail_msg("%s: row %d anchor %d is %.6f in ONNX Runtime, %.6f in lupe: over %.0e", what, wr, wj,
                 got[(size_t)wr * n + wj], want[(size_t)wr * n + wj], TOL);
    free(got);
    free(want);
    ort_close(s);
    return worst;
}

/* A photo of a tag, letterboxed to the input size as lupe's loader does. */
static float *real_image(int s)
{
    lupe_img *im = NULL, *lb = NULL;
    lupe_letterbox info;
    const char *p = tu_shared("datasets/metal-tags/images/bad/image-2020-04-22-11-04-44-46-cropped-left-bottom.jpg");
    if (lupe_img_load(p, 3, NULL, &im)) fail_msg("%s", lupe_errmsg());
    assert_int_equal(lupe_img_letterbox(im, s, s, &lb, &info), LUPE_OK);
    float *x = malloc((size_t)3 * s * s * sizeof(float));
    assert_non_null(x);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < s * s; i++) x[(size_t)c * s * s + i] = lb->data[(size_t)i * 3 + c] / 255.0f;
    lupe_img_free(im);
    lupe_img_free(lb);
    return x;
}

static void export_and_compare(int nc, int imgsz, const char *const *classes, const char *names)
{
    tiny t;
    tiny_build(&t, nc, imgsz);
    char ck[64], ox[64];
    snprintf(ck, sizeof ck, "tiny%d-%d.ckpt", nc, imgsz);
    snprintf(ox, sizeof ox, "tiny%d-%d.onnx", nc, imgsz);
    const char *ckpt = tu_path(ck), *onnx = tu_path(ox);
    tiny_save(&t, ckpt, classes);
    onnx_export_info info;
    assert_int_equal(onnx_export_det(ckpt, onnx, 0, &info), LUPE_OK);
    assert_int_equal(info.nc, nc);
    assert_int_equal(info.imgsz, imgsz);
    assert_int_equal(info.anchors, det_anchors(&t.a));
    assert_int_equal(info.scale, 'n');
    check_structure(onnx, &t, names);

    const int s = imgsz;
    float *x = malloc((size_t)3 * s * s * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < (size_t)3 * s * s; i++) x[i] = urand(0, 1);
    char what[64];
    snprintf(what, sizeof what, "%d class%s at %d, random input", nc, nc > 1 ? "es" : "", s);
    compare_ort(onnx, &t, x, what);
    free(x);
    x = real_image(s);
    snprintf(what, sizeof what, "%d class%s at %d, a photo", nc, nc > 1 ? "es" : "", s);
    compare_ort(onnx, &t, x, what);
    free(x);
    tiny_free(&t);
}

static void test_export_nc1_64(void **state)
{
    (void)state;
    const char *classes[] = {"scratch"};
    export_and_compare(1, 64, classes, "{0: 'scratch'}");
}

/* Three classes at 96, one name needing repr's other quotes. */
static void test_export_nc3_96(void **state)
{
    (void)state;
    const char *classes[] = {"scratch", "dent", "o'ring"};
    export_and_compare(3, 96, classes, "{0: 'scratch', 1: 'dent', 2: \"o'ring\"}");
}

/* A checkpoint trained at 64 exported at 96: same weights, more anchors,
 * and output0 still equal to lupe's at that size. */
static void test_export_imgsz(void **state)
{
    (void)state;
    const char *classes[] = {"scratch"};
    tiny t64, t96;
    tiny_build(&t64, 1, 64);
    tiny_save(&t64, tu_path("t64.ckpt"), classes);
    onnx_export_info info;
    assert_int_equal(onnx_export_det(tu_path("t64.ckpt"), tu_path("t64at96.onnx"), 96, &info), LUPE_OK);
    assert_int_equal(info.imgsz, 96);
    assert_int_equal(info.anchors, 144 + 36 + 9);
    /* lupe at 96 with the 64 checkpoint's weights */
    tiny_build(&t96, 1, 96);
    eng_ckpt *ck = NULL;
    assert_int_equal(eng_ckpt_load(tu_path("t64.ckpt"), &ck), LUPE_OK);
    assert_int_equal(eng_graph_load(t96.g, ck), LUPE_OK);
    eng_ckpt_free(ck);
    float *x = real_image(96);
    compare_ort(tu_path("t64at96.onnx"), &t96, x, "trained at 64, exported at 96");
    free(x);
    tiny_free(&t64);
    tiny_free(&t96);
}

/* A trained checkpoint, when LUPE_EXPORT_CKPT names one (a run's
 * weights/best.ckpt at its own size): the figures docs/onnx.md quotes. */
static void test_export_trained(void **state)
{
    (void)state;
    const char *ckpt = getenv("LUPE_EXPORT_CKPT");
    if (!ckpt || !*ckpt) {
        print_message("# SKIP a trained model: set LUPE_EXPORT_CKPT to a checkpoint to compare one\n");
        return;
    }
    onnx_export_info info;
    if (onnx_export_det(ckpt, tu_path("trained.onnx"), 0, &info)) fail_msg("%s", lupe_errmsg());
    char scale[2] = {info.scale, 0};
    tiny t = {0};
    assert_int_equal(det_arch_init(&t.a, scale, info.nc, info.imgsz, 1), LUPE_OK);
    t.g = eng_graph_new("trained");
    assert_non_null(t.g);
    eng_graph_set_precision(t.g, ENG_PREC_F32);
    assert_int_equal(det_build(t.g, &t.a, &t.x, t.outs), LUPE_OK);
    assert_int_equal(eng_graph_plan(t.g, 0), LUPE_OK);
    eng_ckpt *ck = NULL;
    assert_int_equal(eng_ckpt_load(ckpt, &ck), LUPE_OK);
    assert_int_equal(eng_graph_load(t.g, ck), LUPE_OK);
    eng_ckpt_free(ck);
    float *x = real_image(info.imgsz);
    char what[64];
    snprintf(what, sizeof what, "trained YOLOv8%c at %d, a photo", info.scale, info.imgsz);
    compare_ort(tu_path("trained.onnx"), &t, x, what);
    free(x);
    tiny_free(&t);
}

/* Errors name the file and what was wrong. */
static void test_export_errors(void **state)
{
    (void)state;
    const char *classes[] = {"scratch"};
    assert_int_equal(onnx_export_det(tu_path("missing.ckpt"), tu_path("x.onnx"), 0, NULL), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "missing.ckpt"));

    char wname[] = "w";
    float wdata[2] = {1, 2};
    eng_tensor_rec r = {.name = wname, .ndim = 1, .dims = {2}, .n = 2, .data = wdata};
    assert_int_equal(eng_ckpt_save(tu_path("other.ckpt"), "{\"epoch\": 1}", &r, 1), LUPE_OK);
    assert_int_equal(onnx_export_det(tu_path("other.ckpt"), tu_path("x.onnx"), 0, NULL), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "other.ckpt: not a lupe detector checkpoint"));

    /* The metadata of a detector, the tensors of something else. */
    const char *meta = "{\"format\": \"lupe-detector\", \"arch\": {\"family\": \"yolov8\", \"scale\": \"n\", \"nc\": 1, "
                       "\"imgsz\": 64}, \"classes\": [\"scratch\"]}";
    assert_int_equal(eng_ckpt_save(tu_path("hollow.ckpt"), meta, &r, 1), LUPE_OK);
    assert_int_equal(onnx_export_det(tu_path("hollow.ckpt"), tu_path("x.onnx"), 0, NULL), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "hollow.ckpt"));
    assert_non_null(strstr(lupe_errmsg(), "model.0.conv.weight"));

    const char *bad_nc = "{\"format\": \"lupe-detector\", \"arch\": {\"family\": \"yolov8\", \"scale\": \"n\", \"nc\": 2, "
                         "\"imgsz\": 64}, \"classes\": [\"scratch\"]}";
    assert_int_equal(eng_ckpt_save(tu_path("badnc.ckpt"), bad_nc, &r, 1), LUPE_OK);
    assert_int_equal(onnx_export_det(tu_path("badnc.ckpt"), tu_path("x.onnx"), 0, NULL), LUPE_EFORMAT);
    assert_non_null(strstr(lupe_errmsg(), "2 classes in arch but 1 class names"));

    tiny t;
    tiny_build(&t, 1, 64);
    tiny_save(&t, tu_path("ok.ckpt"), classes);
    assert_int_equal(onnx_export_det(tu_path("ok.ckpt"), tu_path("x.onnx"), 100, NULL), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "100"));
    assert_int_equal(onnx_export_det(tu_path("ok.ckpt"), tu_path("no/such/dir/x.onnx"), 0, NULL), LUPE_EIO);
    assert_non_null(strstr(lupe_errmsg(), "no/such/dir"));
    /* Nothing half-written was left behind by the failures. */
    FILE *f = fopen(tu_path("x.onnx"), "rb");
    assert_null(f);

    /* A graph at batch 2 is refused, naming the shape. */
    det_arch a2;
    assert_int_equal(det_arch_init(&a2, "n", 1, 64, 2), LUPE_OK);
    eng_graph *g2 = eng_graph_new("b2");
    int x2, o2[DET_LEVELS];
    assert_int_equal(det_build(g2, &a2, &x2, o2), LUPE_OK);
    eng_graph_set_fast(g2, 0);
    assert_int_equal(eng_graph_plan(g2, 0), LUPE_OK);
    assert_int_equal(onnx_export_det_graph(tu_path("b2.onnx"), g2, &a2, x2, o2, classes, NULL), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "batch 1"));
    eng_graph_free(g2);
    tiny_free(&t);
}

/* Out of memory at any allocation of an export: LUPE_ENOMEM, no file,
 * nothing leaked (the builder's sticky failure and its one pool). */
static void test_export_oom(void **state)
{
    (void)state;
    const char *classes[] = {"scratch"};
    tiny t;
    tiny_build(&t, 1, 64);
    const char *path = tu_path("oom.onnx");
    lupe_alloc_stats s0, s1;
    lupe_alloc_get_stats(&s0);
    assert_int_equal(onnx_export_det_graph(path, t.g, &t.a, t.x, t.outs, classes, NULL), LUPE_OK);
    lupe_alloc_get_stats(&s1);
    const uint64_t total = s1.allocs - s0.allocs;
    assert_int_equal(s1.live_bytes, s0.live_bytes);
    remove(path);
    /* Every allocation of the first 400 (the walk's start, its error
     * paths), then every 37th to the end (the pattern repeats per layer). */
    int tried = 0;
    for (uint64_t nth = 1; nth <= total; nth += nth < 400 ? 1 : 37, tried++) {
        lupe_alloc_fail_nth(nth);
        lupe_status st = onnx_export_det_graph(path, t.g, &t.a, t.x, t.outs, classes, NULL);
        lupe_alloc_fail_nth(0);
        if (st != LUPE_ENOMEM) fail_msg("allocation %llu failing gave %s: %s", (unsigned long long)nth, lupe_strerror(st), lupe_errmsg());
        lupe_alloc_get_stats(&s1);
        if (s1.live_bytes != s0.live_bytes)
            fail_msg("allocation %llu failing leaked %zd bytes", (unsigned long long)nth,
                     (ssize_t)(s1.live_bytes - s0.live_bytes));
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            fail_msg("allocation %llu failing left %s", (unsigned long long)nth, path);
        }
    }
    print_message("# an export makes %llu allocations; %d of them failed in turn\n", (unsigned long long)total, tried);
    tiny_free(&t);
}

/* The walker's other forms on a small graph: a convolution read twice (so
 * its batch norm stays a BatchNormalization), SiLU, a partial slice
 * (Slice), a batch norm + SiLU straight on the input, sigmoid, pooling,
 * upsampling and a grouped strided convolution, against lupe's forward. */
static void test_walk_forms(void **state)
{
    (void)state;
    eng_graph *g = eng_graph_new("forms");
    int x = eng_g_input(g, "images", 1, 16, 16, 3);
    int c1 = eng_g_conv(g, "c1", x, 8, 3, 1, 1, 1, 1);
    int b1 = eng_g_bn(g, "b1", c1, 1e-3f, 0.03f);
    int s1 = eng_g_silu(g, b1);
    int a1 = eng_g_add(g, c1, s1);
    int sl = eng_g_slice(g, a1, 2, 4);
    int sg = eng_g_sigmoid(g, sl);
    int bs = eng_g_bn_silu(g, "bs", x, 1e-3f, 0.03f);
    int mp = eng_g_maxpool(g, a1, 5);
    int up = eng_g_upsample2(g, mp);
    int c2 = eng_g_conv(g, "c2", up, 4, 3, 2, 1, 4, 0);
    int parts[3] = {sg, c2, bs};
    int cat = eng_g_concat(g, parts, 3);
    eng_graph_set_precision(g, ENG_PREC_F32);
    assert_int_equal(eng_graph_plan(g, 0), LUPE_OK);
    eng_tensor_rec st[64];
    int ns = eng_graph_state(g, st, 64);
    for (int i = 0; i < ns; i++)
        for (size_t k = 0; k < st[i].n; k++) {
            if (ends_with(st[i].name, "running_mean") || ends_with(st[i].name, "b1.bias") ||
                ends_with(st[i].name, "bs.bias"))
                st[i].data[k] = urand(-0.5f, 0.5f);
            if (ends_with(st[i].name, "running_var") || ends_with(st[i].name, "b1.weight") ||
                ends_with(st[i].name, "bs.weight"))
                st[i].data[k] = urand(0.5f, 2.0f);
        }

    onnx__ex e;
    onnx__ex_init(&e);
    const char *names[64];
    assert_int_equal(eng_graph_tensors(g), 12);
    assert_int_equal(onnx__ex_graph(&e, g, x, "images", names), LUPE_OK);
    const int64_t ind[4] = {1, 3, 16, 16}, outd[4] = {1, 11, 16, 16};
    onnx__ex_io(&e, 0, "images", ind, 4);
    onnx__ex_io(&e, 1, names[cat], outd, 4);
    assert_int_equal(onnx__ex_write(&e, tu_path("forms.onnx"), "forms", "", ONNX_EXPORT_OPSET), LUPE_OK);
    onnx__ex_cleanup(&e);

    Onnx__ModelProto *m = NULL;
    assert_int_equal(onnx__read(tu_path("forms.onnx"), &m), LUPE_OK);
    const Onnx__GraphProto *og = m->graph;
    assert_int_equal(count_op(og, "BatchNormalization"), 2);
    assert_int_equal(count_op(og, "Slice"), 1);
    assert_int_equal(count_op(og, "Split"), 0);
    assert_int_equal(count_op(og, "Sigmoid"), 3);
    assert_int_equal(count_op(og, "Conv"), 2);
    for (size_t i = 0; i < og->n_node; i++)
        if (!strcmp(og->node[i]->op_type, "Conv") && !strcmp(og->node[i]->name, "c2")) {
            assert_int_equal(og->node[i]->n_input, 2); /* no bias, nothing folded */
            int group = 0;
            for (size_t k = 0; k < og->node[i]->n_attribute; k++)
                if (!strcmp(og->node[i]->attribute[k]->name, "group")) group = (int)og->node[i]->attribute[k]->i;
            assert_int_equal(group, 4);
        }
    onnx__model_free(m);

    char why[512];
    ort_session *s = ort_open(tu_path("forms.onnx"), 1, why, sizeof why);
    if (!s) {
        print_message("# SKIP ONNX Runtime comparison of the walker's forms: %s\n", why);
        eng_graph_free(g);
        return;
    }
    float in[3 * 16 * 16], *got = NULL;
    for (int i = 0; i < 3 * 256; i++) in[i] = urand(-1, 1);
    float *xd = eng_g_data(g, x);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 256; i++) xd[i * 3 + c] = in[c * 256 + i];
    eng_graph_forward(g, 0);
    const float *want = eng_g_data(g, cat);
    int64_t oshape[8];
    int orank;
    if (ort_run(s, in, ind, 4, &got, oshape, &orank, why, sizeof why)) fail_msg("%s", why);
    assert_int_equal(orank, 4);
    assert_int_equal(oshape[1], 11);
    double worst = 0;
    for (int c = 0; c < 11; c++)
        for (int i = 0; i < 256; i++) {
            double d = fabs((double)got[c * 256 + i] - want[i * 11 + c]);
            if (!(d <= worst)) worst = d;
        }
    print_message("# walker forms: max |ONNX Runtime - lupe| = %.3g\n", worst);
    assert_true(worst <= TOL);
    free(got);
    ort_close(s);
    eng_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_nc1_64), cmocka_unit_test(test_export_nc3_96),
        cmocka_unit_test(test_export_imgsz),  cmocka_unit_test(test_export_trained),
        cmocka_unit_test(test_export_errors), cmocka_unit_test(test_export_oom),
        cmocka_unit_test(test_walk_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
