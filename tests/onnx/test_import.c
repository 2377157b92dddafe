/*
 * ONNX import: the committed YOLOv8-style detector and operator zoo
 * (tools/ref/onnx_yolo.py, `make golden-onnx`) run by lupe against
 * PyTorch's saved outputs and ONNX Runtime's; small models built here with
 * the protobuf-c types for attributes the exporters rarely emit (checked
 * against ONNX Runtime); every unsupported and malformed case with its
 * message; planning facts (fusions, no allocation while running, threads);
 * out-of-memory paths of loading.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ort.h"
#include "lib/testutil.h"
#include "lupe/det.h"
#include "lupe/engine.h"
#include "lupe/onnx.h"
#include "onnx/onnx_internal.h"

#define DATA "tests/onnx/data/"

static const char *const yolo_files[] = {DATA "yolo_op12.onnx", DATA "yolo_op17_nofold.onnx"};
static const char *const zoo_files[] = {DATA "zoo_op12.onnx", DATA "zoo_op17.onnx"};

static eng_ckpt *io;

static const eng_tensor_rec *io_get(const char *name)
{
    const eng_tensor_rec *t = eng_ckpt_find(io, name);
    if (!t) fail_msg("io.ckpt has no tensor %s", name);
    return t;
}

static double max_diff(const float *a, const float *b, size_t n, size_t *at)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d, *at = i;
    }
    return m;
}

static onnx_net *load_ok(const char *path, int threads)
{
    onnx_net *net = NULL;
    if (onnx_net_load(path, threads, &net)) fail_msg("loading %s: %s", path, lupe_errmsg());
    return net;
}

static float *run_ok(onnx_net *net, const float *in)
{
    float *out = calloc(onnx_net_output_numel(net), sizeof(float));
    assert_non_null(out);
    if (onnx_net_run(net, in, out)) fail_msg("running: %s", lupe_errmsg());
    return out;
}

/* ---- against PyTorch's outputs --------------------------------------------------- */
static void check_torch(const char *path, const char *in_name, const char *f64, const char *f32, double tol)
{
    const eng_tensor_rec *x = io_get(in_name), *y64 = io_get(f64), *y32 = io_get(f32);
    onnx_net *net = load_ok(path, 0);
    assert_int_equal(onnx_net_output_numel(net), y64->n);
    assert_int_equal(onnx_net_input_numel(net), x->n);
    float *out = run_ok(net, x->data);
    size_t a64 = 0, a32 = 0;
    const double d64 = max_diff(out, y64->data, y64->n, &a64), d32 = max_diff(out, y32->data, y32->n, &a32);
    print_message("# %s: max |lupe - torch f64| %.3g (at %zu, %g), max |lupe - torch f32| %.3g\n", path, d64, a64,
                  (double)y64->data[a64], d32);
    if (!(d64 <= tol) || !(d32 <= tol))
        fail_msg("%s: lupe differs from PyTorch by %g (float64) / %g (float32), over %g", path, d64, d32, tol);
    free(out);
    onnx_net_free(net);
}

static void test_yolo_vs_torch(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) check_torch(yolo_files[i], "input", "output.f64", "output.f32", 1e-4);
}

static void test_zoo_vs_torch(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) check_torch(zoo_files[i], "zoo.input", "zoo.output.f64", "zoo.output.f32", 1e-5);
}

/* ---- against ONNX Runtime ---------------------------------------------------------- */
static char ort_why[512];

/* ORT's output for path on in, or NULL (test skipped) when ORT is missing. */
static float *ort_output(const char *path, const float *in, const int64_t *shape, size_t expect)
{
    ort_session *s = ort_open(path, 1, ort_why, sizeof ort_why);
    if (!s) {
        if (strstr(ort_why, "ONNX Runtime")) return NULL;
        fail_msg("ONNX Runtime cannot open %s: %s", path, ort_why);
    }
    float *out = NULL;
    int64_t os[8];
    int orank;
    if (ort_run(s, in, shape, 4, &out, os, &orank, ort_why, sizeof ort_why)) fail_msg("%s: %s", path, ort_why);
    int64_t n = 1;
    for (int i = 0; i < orank; i++) n *= os[i];
    assert_int_equal(n, expect);
    ort_close(s);
    return out;
}

static void check_ort(const char *path, const char *in_name, double tol)
{
    const eng_tensor_rec *x = io_get(in_name);
    onnx_net *net = load_ok(path, 0);
    const int64_t shape[4] = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
    float *want = ort_output(path, x->data, shape, onnx_net_output_numel(net));
    if (!want) {
        onnx_net_free(net);
        print_message("# skipped: %s\n", ort_why);
        skip();
    }
    float *out = run_ok(net, x->data);
    size_t at = 0;
    const double d = max_diff(out, want, onnx_net_output_numel(net), &at);
    print_message("# %s: max |lupe - ONNX Runtime %s| %.3g (at %zu, %g)\n", path, ort_version(), d, at, (double)want[at]);
    if (!(d <= tol)) fail_msg("%s: lupe differs from ONNX Runtime by %g, over %g", path, d, tol);
    free(out), free(want);
    onnx_net_free(net);
}

static void test_yolo_vs_ort(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) check_ort(yolo_files[i], "input", 1e-4);
}

static void test_zoo_vs_ort(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) check_ort(zoo_files[i], "zoo.input", 1e-5);
}

/* ---- what the plan is ---------------------------------------------------------------- */
static void test_yolo_plan(void **state)
{
    (void)state;
    onnx_net *net = load_ok(yolo_files[0], 0);
    int in[4];
    int64_t out[6];
    onnx_net_input_shape(net, in);
    assert_int_equal(in[0], 1), assert_int_equal(in[1], 3), assert_int_equal(in[2], 96), assert_int_equal(in[3], 96);
    assert_int_equal(onnx_net_output_shape(net, out), 3);
    assert_int_equal(out[0], 1), assert_int_equal(out[1], 4 + 3), assert_int_equal(out[2], 12 * 12 + 6 * 6 + 3 * 3);
    const onnx_net_stats *s = onnx_net_get_stats(net);
    /* 60 convolutions: 57 Conv-BN-SiLU (BN folded by the exporter, SiLU
     * fused here), 6 head 1x1 without activation... the counts: */
    assert_int_equal(s->convs, 60);
    assert_int_equal(s->fused_act, 53); /* every Conv + Sigmoid + Mul; the class sigmoid stays alone */
    assert_int_equal(s->opset, 12);
    assert_true(s->folded > 40);        /* Constants and the anchor computation */
    assert_true(s->steps < 130);
    assert_int_equal(s->conversions, 4); /* the three head outputs to plain, the DFL's input to NHWC */
    int convs = 0;
    for (int i = 0; i < s->nops; i++)
        if (!strcmp(s->ops[i].op, "Conv")) convs = s->ops[i].count;
    assert_int_equal(convs, 60);
    print_message("# yolo_op12: %d nodes, %d folded, %d steps, %d conversions, arena %zu bytes, weights %zu bytes\n",
                  s->nodes, s->folded, s->steps, s->conversions, s->arena_bytes, s->weight_bytes);
    /* Metadata and class names. */
    assert_string_equal(onnx_net_meta(net, "task"), "detect");
    assert_null(onnx_net_meta(net, "nope"));
    char **names = NULL;
    int n = 0;
    assert_int_equal(onnx_parse_names(onnx_net_meta(net, "names"), &names, &n), LUPE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "class0"), assert_string_equal(names[2], "class2");
    onnx_names_free(names, n);
    onnx_net_free(net);
}

static void test_parse_names(void **state)
{
    (void)state;
    char **v = NULL;
    int n = 0;
    assert_int_equal(onnx_parse_names("{1: \"b c\", 0: 'it\\'s'}", &v, &n), LUPE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "it's"), assert_string_equal(v[1], "b c");
    onnx_names_free(v, n);
    const char *bad[] = {"", "{", "{0: 'a'", "{1: 'a'}", "{0: 'a', 0: 'b'}", "[0, 1]", "{0: a}", "{0: 'a'} x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(onnx_parse_names(bad[i], &v, &n), LUPE_EFORMAT);
        assert_null(v);
    }
    assert_int_equal(onnx_parse_names(NULL, &v, &n), LUPE_ENOTFOUND);
}

/* Running allocates nothing, twice gives the same bits, and one thread
 * gives what two do. */
static void test_run_no_alloc_threads(void **state)
{
    (void)state;
    const eng_tensor_rec *x = io_get("input");
    onnx_net *net = load_ok(yolo_files[1], 2);
    float *a = calloc(onnx_net_output_numel(net), sizeof(float)), *b = calloc(onnx_net_output_numel(net), sizeof(float));
    lupe_alloc_stats s0, s1;
    lupe_alloc_get_stats(&s0);
    assert_int_equal(onnx_net_run(net, x->data, a), LUPE_OK);
    assert_int_equal(onnx_net_run(net, x->data, b), LUPE_OK);
    lupe_alloc_get_stats(&s1);
    assert_int_equal(s1.allocs, s0.allocs);
    assert_memory_equal(a, b, onnx_net_output_numel(net) * sizeof(float));
    onnx_net_free(net);
    net = load_ok(yolo_files[1], 1);
    assert_int_equal(onnx_net_run(net, x->data, b), LUPE_OK);
    size_t at = 0;
    const double d = max_diff(a, b, onnx_net_output_numel(net), &at);
    print_message("# 1 thread vs 2 threads: max diff %.3g\n", d);
    assert_true(d <= 1e-5);
    onnx_net_free(net);
    eng_set_threads(0);
    free(a), free(b);
}

/* Every allocation of loading may fail: the error is ENOMEM and nothing leaks. */
static void test_load_out_of_memory(void **state)
{
    (void)state;
    lupe_alloc_stats s0, s1;
    lupe_alloc_get_stats(&s0);
    int failures = 0;
    for (uint64_t nth = 1;; nth++) {
        onnx_net *net = NULL;
        lupe_alloc_fail_nth(nth);
        lupe_status st = onnx_net_load(zoo_files[1], 1, &net);
        lupe_alloc_fail_nth(0);
        if (st == LUPE_OK) {
            onnx_net_free(net);
            break;
        }
        if (st != LUPE_ENOMEM) fail_msg("allocation %llu failing gave %s: %s", (unsigned long long)nth, lupe_strerror(st), lupe_errmsg());
        assert_null(net);
        failures++;
        if (nth > 100000) fail_msg("no end to loading's allocations");
    }
    lupe_alloc_get_stats(&s1);
    assert_int_equal(s1.live_bytes, s0.live_bytes);
    print_message("# loading survived %d failed allocations\n", failures);
    eng_set_threads(0);
}

/* ---- models built here ---------------------------------------------------------------- */
typedef struct mb {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto ops;
    Onnx__OperatorSetIdProto *opsp[1];
    Onnx__NodeProto *nodes[64];
    Onnx__TensorProto *inits[64];
    Onnx__ValueInfoProto *ins[2], *outs[2];
    void *allocs[2048];
    int nallocs;
} mb;

static void *mb_alloc(mb *b, size_t n)
{
    void *p = calloc(1, n);
    assert_non_null(p);
    assert_true(b->nallocs < 2048);
    b->allocs[b->nallocs++] = p;
    return p;
}

static char *mb_str(mb *b, const char *s)
{
    char *p = mb_alloc(b, strlen(s) + 1);
    memcpy(p, s, strlen(s));
    return p;
}

static void mb_init(mb *b, int64_t opset)
{
    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->m);
    onnx__graph_proto__init(&b->g);
    onnx__operator_set_id_proto__init(&b->ops);
    b->ops.has_version = 1, b->ops.version = opset;
    b->opsp[0] = &b->ops;
    b->m.has_ir_version = 1, b->m.ir_version = 8;
    b->m.n_opset_import = 1, b->m.opset_import = b->opsp;
    b->m.producer_name = mb_str(b, "lupe test");
    b->m.graph = &b->g;
    b->g.name = mb_str(b, "t");
    b->g.node = b->nodes, b->g.initializer = b->inits, b->g.input = b->ins, b->g.output = b->outs;
}

/* A float graph input (dims[i] < 0: symbolic) or output (dims NULL). */
static Onnx__ValueInfoProto *mb_value(mb *b, const char *name, int rank, const int64_t *dims)
{
    Onnx__ValueInfoProto *v = mb_alloc(b, sizeof *v);
    Onnx__TypeProto *t = mb_alloc(b, sizeof *t);
    Onnx__TypeProto__Tensor *tt = mb_alloc(b, sizeof *tt);
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    v->name = mb_str(b, name), v->type = t;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, t->tensor_type = tt;
    tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (dims) {
        Onnx__TensorShapeProto *sh = mb_alloc(b, sizeof *sh);
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)rank, sh->dim = mb_alloc(b, (size_t)rank * sizeof *sh->dim);
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = mb_alloc(b, sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] >= 0)
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d->dim_value = dims[i];
            else
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d->dim_param = mb_str(b, "height");
            sh->dim[i] = d;
        }
        tt->shape = sh;
    }
    return v;
}

static void mb_io(mb *b, const int64_t in_dims[4])
{
    b->ins[b->g.n_input++] = mb_value(b, "x", 4, in_dims);
    b->outs[b->g.n_output++] = mb_value(b, "y", 0, NULL);
}

static Onnx__TensorProto *mb_tensor(mb *b, const char *name, int rank, const int64_t *dims, int type)
{
    Onnx__TensorProto *t = mb_alloc(b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = mb_str(b, name);
    t->n_dims = (size_t)rank;
    t->dims = mb_alloc(b, (size_t)(rank ? rank : 1) * sizeof *t->dims);
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->has_data_type = 1, t->data_type = type;
    return t;
}

static int64_t count_of(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    return n;
}

/* Float initializer with values from f (or random in [-1, 1) when NULL), as raw little-endian data. */
static Onnx__TensorProto *mb_init_f(mb *b, const char *name, int rank, const int64_t *dims, const float *f,
                                    uint64_t *seed)
{
    Onnx__TensorProto *t = mb_tensor(b, name, rank, dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    const int64_t n = count_of(rank, dims);
    float *v = mb_alloc(b, (size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = f ? f[i] : (float)((*seed >> 40) * (1.0 / 16777216.0) * 2 - 1);
    }
    t->has_raw_data = 1, t->raw_data.len = (size_t)n * 4, t->raw_data.data = (uint8_t *)v; /* little-endian host */
    b->inits[b->g.n_initializer++] = t;
    return t;
}

static void mb_init_i(mb *b, const char *name, int rank, const int64_t *dims, const int64_t *v)
{
    Onnx__TensorProto *t = mb_tensor(b, name, rank, dims, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    const int64_t n = count_of(rank, dims);
    t->n_int64_data = (size_t)n;
    t->int64_data = mb_alloc(b, (size_t)(n ? n : 1) * sizeof(int64_t));
    memcpy(t->int64_data, v, (size_t)n * sizeof *v);
    b->inits[b->g.n_initializer++] = t;
}

/* A node; ins and outs are comma-separated names ("" parts: omitted optional inputs). */
static Onnx__NodeProto *mb_node(mb *b, const char *op, const char *name, const char *ins, const char *outs)
{
    Onnx__NodeProto *n = mb_alloc(b, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = mb_str(b, op), n->name = mb_str(b, name);
    n->attribute = mb_alloc(b, 16 * sizeof *n->attribute);
    const char *lists[2] = {ins, outs};
    for (int k = 0; k < 2; k++) {
        char **arr = mb_alloc(b, 64 * sizeof *arr);
        size_t cnt = 0;
        const char *s = lists[k];
        while (*s || (cnt && s[-1] == ',')) {
            const char *e = strchr(s, ',');
            const size_t l = e ? (size_t)(e - s) : strlen(s);
            char *p = mb_alloc(b, l + 1);
            memcpy(p, s, l);
            arr[cnt++] = p;
            s += l + (e != NULL);
            if (!e) break;
        }
        if (k == 0) n->input = arr, n->n_input = cnt;
        else n->output = arr, n->n_output = cnt;
    }
    b->nodes[b->g.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *mb_attr(mb *b, Onnx__NodeProto *n, const char *name, int type)
{
    Onnx__AttributeProto *a = mb_alloc(b, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = mb_str(b, name);
    a->has_type = 1, a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void mb_ai(mb *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1, a->i = v;
}

static void mb_af(mb *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1, a->f = v;
}

static void mb_ais(mb *b, Onnx__NodeProto *n, const char *name, int k, const int64_t *v)
{
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)k, a->ints = mb_alloc(b, (size_t)k * sizeof(int64_t));
    memcpy(a->ints, v, (size_t)k * sizeof *v);
}

static void mb_as(mb *b, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1, a->s.len = strlen(v), a->s.data = (uint8_t *)mb_str(b, v);
}

static const char *mb_write(mb *b, const char *file)
{
    const char *path = tu_path(file);
    if (onnx__write(path, &b->m)) fail_msg("writing %s: %s", path, lupe_errmsg());
    for (int i = 0; i < b->nallocs; i++) free(b->allocs[i]);
    b->nallocs = 0;
    return path;
}

/* ---- small models against ONNX Runtime -------------------------------------------------- */
typedef void (*build_fn)(mb *b, uint64_t *seed);

static void run_case(const char *name, int64_t opset, const int64_t in_dims[4], build_fn build, int want_steps_max)
{
    mb b;
    uint64_t seed = 0x1234 + (uint64_t)strlen(name) * 977;
    mb_init(&b, opset);
    mb_io(&b, in_dims);
    build(&b, &seed);
    char file[128];
    snprintf(file, sizeof file, "%s.onnx", name);
    const char *path = mb_write(&b, file);
    onnx_net *net = NULL;
    if (onnx_net_load(path, 0, &net)) fail_msg("case %s: %s", name, lupe_errmsg());
    const int64_t n = count_of(4, in_dims);
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((seed >> 40) * (1.0 / 16777216.0) * 4 - 2);
    }
    float *got = run_ok(net, x), *want = ort_output(path, x, in_dims, onnx_net_output_numel(net));
    if (want) {
        double maxr = 0;
        for (size_t i = 0; i < onnx_net_output_numel(net); i++) maxr = fabs(want[i]) > maxr ? fabs(want[i]) : maxr;
        size_t at = 0;
        const double d = max_diff(got, want, onnx_net_output_numel(net), &at);
        if (!(d <= 1e-5 * maxr + 1e-6))
            fail_msg("case %s: lupe differs from ONNX Runtime by %g at %zu (%g vs %g), max |y| %g", name, d, at,
                     (double)got[at], (double)want[at], maxr);
        print_message("# case %s: max diff %.2g (max |y| %.3g), %d steps\n", name, d, maxr,
                      onnx_net_get_stats(net)->steps);
    }
    if (want_steps_max && onnx_net_get_stats(net)->steps > want_steps_max)
        fail_msg("case %s: %d steps, expected at most %d", name, onnx_net_get_stats(net)->steps, want_steps_max);
    free(x), free(got), free(want);
    onnx_net_free(net);
}

static void b_conv_asym_relu(mb *b, uint64_t *s)
{
    const int64_t wd[4] = {6, 4, 3, 3}, bd[1] = {6}, pads[4] = {0, 1, 1, 0}, st[2] = {2, 2};
    mb_init_f(b, "w", 4, wd, NULL, s), mb_init_f(b, "b", 1, bd, NULL, s);
    Onnx__NodeProto *c = mb_node(b, "Conv", "conv", "x,w,b", "c");
    mb_ais(b, c, "pads", 4, pads), mb_ais(b, c, "strides", 2, st);
    mb_node(b, "Relu", "relu", "c", "y");
}

static void b_conv_same_sigmoid(mb *b, uint64_t *s)
{
    const int64_t wd[4] = {6, 2, 3, 3}, st[2] = {2, 2};
    mb_init_f(b, "w", 4, wd, NULL, s);
    Onnx__NodeProto *c = mb_node(b, "Conv", "conv", "x,w", "c");
    mb_as(b, c, "auto_pad", "SAME_UPPER"), mb_ais(b, c, "strides", 2, st), mb_ai(b, c, "group", 2);
    mb_node(b, "Sigmoid", "sig", "c", "y");
}

/* conv1 -> leaky relu -> conv2 + shortcut; then batch norm on the plain
 * layout (after a transpose). */
static void b_residual_bn(mb *b, uint64_t *s)
{
    const int64_t wd[4] = {4, 4, 1, 1}, w2[4] = {4, 4, 3, 3}, ch[1] = {4}, pads[4] = {1, 1, 1, 1}, perm[4] = {0, 1, 3, 2};
    mb_init_f(b, "w1", 4, wd, NULL, s), mb_init_f(b, "w2", 4, w2, NULL, s);
    const float var[4] = {0.5f, 1, 2, 0.25f};
    mb_init_f(b, "g", 1, ch, NULL, s), mb_init_f(b, "be", 1, ch, NULL, s), mb_init_f(b, "m", 1, ch, NULL, s);
    mb_init_f(b, "v", 1, ch, var, s);
    mb_node(b, "Conv", "conv1", "x,w1", "c1");
    Onnx__NodeProto *l = mb_node(b, "LeakyRelu", "leaky", "c1", "a1");
    mb_af(b, l, "alpha", 0.2f);
    Onnx__NodeProto *c = mb_node(b, "Conv", "conv2", "a1,w2", "c2");
    mb_ais(b, c, "pads", 4, pads);
    mb_node(b, "Add", "add", "a1,c2", "r");
    Onnx__NodeProto *t = mb_node(b, "Transpose", "t", "r", "rt");
    mb_ais(b, t, "perm", 4, perm);
    Onnx__NodeProto *n = mb_node(b, "BatchNormalization", "bn", "rt,g,be,m,v", "y");
    mb_af(b, n, "epsilon", 1e-3f);
}

static void resize_case(mb *b, const char *ct, const char *nm, const int64_t *sizes, const float *scales)
{
    const int64_t four[1] = {4}, zero[1] = {0};
    uint64_t s = 1;
    mb_init_f(b, "roi", 1, zero, NULL, &s);
    if (sizes) mb_init_i(b, "sizes", 1, four, sizes);
    else mb_init_f(b, "scales", 1, four, scales, &s);
    Onnx__NodeProto *r = mb_node(b, "Resize", "resize", sizes ? "x,roi,,sizes" : "x,roi,scales", "y");
    mb_as(b, r, "mode", "nearest"), mb_as(b, r, "coordinate_transformation_mode", ct);
    mb_as(b, r, "nearest_mode", nm);
}

static void b_resize_hp(mb *b, uint64_t *s)
{
    (void)s;
    const int64_t sizes[4] = {1, 3, 9, 11};
    resize_case(b, "half_pixel", "round_prefer_floor", sizes, NULL);
}
static void b_resize_ac(mb *b, uint64_t *s)
{
    (void)s;
    const int64_t sizes[4] = {1, 3, 13, 7};
    resize_case(b, "align_corners", "round_prefer_ceil", sizes, NULL);
}
static void b_resize_phpx(mb *b, uint64_t *s)
{
    (void)s;
    const float sc[4] = {1, 1, 1.5f, 0.5f};
    resize_case(b, "pytorch_half_pixel", "floor", NULL, sc);
}
static void b_resize_tf(mb *b, uint64_t *s)
{
    (void)s;
    const float sc[4] = {1, 1, 3, 2};
    resize_case(b, "tf_half_pixel_for_nn", "ceil", NULL, sc);
}

static void b_softmax(mb *b, uint64_t *s)
{
    (void)s;
    Onnx__NodeProto *n = mb_node(b, "Softmax", "sm", "x", "y");
    mb_ai(b, n, "axis", 1);
}

/* Slices with negative and positive steps; Split into equal parts along H;
 * the parts concatenated along W (not the channels). */
static void b_slices(mb *b, uint64_t *s)
{
    (void)s;
    const int64_t one[1] = {1}, st[1] = {-1}, en[1] = {-1000}, ax[1] = {3}, sp[1] = {-2};
    const int64_t st2[1] = {1}, en2[1] = {100}, ax2[1] = {1}, sp2[1] = {2};
    mb_init_i(b, "st", 1, one, st), mb_init_i(b, "en", 1, one, en), mb_init_i(b, "ax", 1, one, ax);
    mb_init_i(b, "sp", 1, one, sp);
    mb_init_i(b, "st2", 1, one, st2), mb_init_i(b, "en2", 1, one, en2), mb_init_i(b, "ax2", 1, one, ax2);
    mb_init_i(b, "sp2", 1, one, sp2);
    mb_node(b, "Slice", "s1", "x,st,en,ax,sp", "a");   /* [1, 4, 6, 4] */
    mb_node(b, "Slice", "s2", "a,st2,en2,ax2,sp2", "c"); /* channels 1, 3: [1, 2, 6, 4] */
    Onnx__NodeProto *p = mb_node(b, "Split", "split", "c", "p0,p1");
    mb_ai(b, p, "axis", 2);
    Onnx__NodeProto *k = mb_node(b, "Concat", "cat", "p1,p0,p1", "y");
    mb_ai(b, k, "axis", 3);
}

/* Broadcast arithmetic with constants on either side, and a conv output in NHWC. */
static void b_broadcast(mb *b, uint64_t *s)
{
    const int64_t cd[4] = {1, 3, 1, 1}, wd[1] = {7}, sc[1] = {0}, wc[4] = {3, 3, 1, 1};
    const float two[1] = {2};
    mb_init_f(b, "pc", 4, cd, NULL, s), mb_init_f(b, "pw", 1, wd, NULL, s), mb_init_f(b, "two", 0, sc, two, s);
    mb_init_f(b, "w", 4, wc, NULL, s);
    mb_node(b, "Conv", "conv", "x,w", "c");
    mb_node(b, "Mul", "mul", "c,pc", "a");
    mb_node(b, "Add", "add", "a,two", "a2");
    mb_node(b, "Div", "div", "pw,a2", "a3");
    mb_node(b, "Sub", "sub", "a3,x", "y");
}

static void b_pools(mb *b, uint64_t *s)
{
    const int64_t wd[4] = {4, 3, 1, 1}, k3[2] = {3, 3}, k5[2] = {5, 5}, k2[2] = {2, 2}, s2[2] = {2, 2}, s1[2] = {1, 1};
    const int64_t p1[4] = {1, 1, 1, 1}, p2[4] = {2, 2, 2, 2};
    mb_init_f(b, "w", 4, wd, NULL, s);
    mb_node(b, "Conv", "conv", "x,w", "c");
    Onnx__NodeProto *a = mb_node(b, "MaxPool", "sppf", "c", "m5");
    mb_ais(b, a, "kernel_shape", 2, k5), mb_ais(b, a, "strides", 2, s1), mb_ais(b, a, "pads", 4, p2);
    Onnx__NodeProto *q = mb_node(b, "MaxPool", "pool3", "m5", "m3");
    mb_ais(b, q, "kernel_shape", 2, k3), mb_ais(b, q, "strides", 2, s2), mb_ais(b, q, "pads", 4, p1);
    Onnx__NodeProto *r = mb_node(b, "MaxPool", "pool2", "m3", "m2");
    mb_ais(b, r, "kernel_shape", 2, k2), mb_ais(b, r, "strides", 2, s2), mb_ai(b, r, "ceil_mode", 1);
    Onnx__NodeProto *t = mb_node(b, "MaxPool", "same", "x", "ms");
    mb_ais(b, t, "kernel_shape", 2, k3), mb_ais(b, t, "strides", 2, s2), mb_as(b, t, "auto_pad", "SAME_UPPER");
    mb_node(b, "Flatten", "f1", "m2", "f1o");
    mb_node(b, "Flatten", "f2", "ms", "f2o");
    Onnx__NodeProto *k = mb_node(b, "Concat", "cat", "f1o,f2o", "y");
    mb_ai(b, k, "axis", 1);
}

/* Shape arithmetic folded at load: Shape, Gather, Unsqueeze, Concat,
 * Reshape, Cast, ConstantOfShape, Range, Equal, Where, Expand, Squeeze,
 * Identity. */
static void b_folding(mb *b, uint64_t *s)
{
    (void)s;
    const int64_t one[1] = {1}, two_i[1] = {2}, zero_d[1] = {0}, m1[1] = {-1}, start[1] = {0}, lim[1] = {5};
    const int64_t ax0[1] = {0};
    mb_init_i(b, "idx", 1, one, two_i);
    mb_init_i(b, "m1", 1, one, m1), mb_init_i(b, "ax0", 1, one, ax0);
    mb_init_i(b, "r0", 0, zero_d, start), mb_init_i(b, "r1", 0, zero_d, lim), mb_init_i(b, "rd", 0, zero_d, one);
    mb_init_i(b, "two", 0, zero_d, two_i);
    mb_node(b, "Shape", "shape", "x", "sh");           /* [1, 3, 4, 5] */
    mb_node(b, "Gather", "gather", "sh,idx", "h");     /* [4] */
    mb_ai(b, mb_node(b, "Concat", "cat", "m1,h", "newshape"), "axis", 0); /* [-1, 4] */
    mb_node(b, "Reshape", "reshape", "x,newshape", "xr"); /* [15, 4] */
    mb_node(b, "Range", "range", "r0,r1,rd", "rg");    /* 0..4 */
    mb_node(b, "Equal", "eq", "rg,two", "isq");        /* [F, F, T, F, F] */
    Onnx__NodeProto *c = mb_node(b, "Cast", "cast", "rg", "rgf");
    mb_ai(b, c, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    Onnx__NodeProto *k = mb_node(b, "ConstantOfShape", "cos", "h", "zeros"); /* 4 zeros */
    (void)k;
    mb_node(b, "Slice", "sl", "rgf,ax0,h", "rg4");    /* 0..3 as float */
    mb_node(b, "Where", "where", "isq,rgf,rgf", "w5"); /* = rgf */
    mb_node(b, "Slice", "sl2", "w5,ax0,h", "w4");
    mb_node(b, "Add", "addz", "rg4,zeros", "bias4");
    mb_node(b, "Add", "add", "xr,bias4", "sum");       /* [15, 4] + [4] */
    mb_node(b, "Add", "add2", "sum,w4", "sum2");
    mb_node(b, "Unsqueeze", "unsq", "sum2,ax0", "u");  /* [1, 15, 4] */
    mb_node(b, "Squeeze", "sq", "u,ax0", "q");
    mb_node(b, "Identity", "id", "q", "y");
}

static void b_fold_resize_sizes(mb *b, uint64_t *s)
{
    (void)s;
    /* Expand a per-channel constant to the input's shape at run time. */
    const int64_t cd[3] = {3, 1, 1}, shp[1] = {4}, sv[4] = {1, 3, 4, 5};
    uint64_t seed = 7;
    mb_init_f(b, "pc", 3, cd, NULL, &seed);
    mb_init_i(b, "shp", 1, shp, sv);
    mb_node(b, "Relu", "relu", "x", "r");
    mb_node(b, "Expand", "expand", "r,shp", "e");
    mb_node(b, "Mul", "mul", "e,pc", "y");
}

static void test_small_models_vs_ort(void **state)
{
    (void)state;
    char why[256];
    ort_session *probe = ort_open(DATA "zoo_op17.onnx", 1, why, sizeof why);
    if (!probe) {
        print_message("# skipped: %s\n", why);
        skip();
    }
    ort_close(probe);
    const int64_t d4[4] = {1, 4, 9, 8}, d3[4] = {1, 3, 6, 7}, d5[4] = {1, 3, 4, 5}, d7[4] = {1, 3, 13, 12};
    run_case("conv_asym_relu", 17, d4, b_conv_asym_relu, 2);   /* conversion in, conv+relu */
    run_case("conv_same_sigmoid", 13, d4, b_conv_same_sigmoid, 2);
    run_case("residual_bn", 17, d4, b_residual_bn, 5); /* conv, conv, add, transpose, affine */
    run_case("resize_half_pixel", 13, d3, b_resize_hp, 1);
    run_case("resize_align_corners", 13, d3, b_resize_ac, 1);
    run_case("resize_pytorch_half_pixel", 11, d3, b_resize_phpx, 1);
    run_case("resize_tf_half_pixel", 13, d3, b_resize_tf, 1);
    run_case("softmax_op11", 11, d5, b_softmax, 1);  /* over all of C*H*W */
    run_case("softmax_op13", 13, d5, b_softmax, 1);  /* over C only */
    run_case("slices", 13, (const int64_t[4]){1, 4, 12, 7}, b_slices, 0);
    run_case("broadcast", 13, d3, b_broadcast, 0);
    run_case("pools", 13, d7, b_pools, 0);
    run_case("folding", 13, d5, b_folding, 2);   /* two adds of folded constants: 17 nodes */
    run_case("expand", 13, d5, b_fold_resize_sizes, 3);
}

/* ---- lupe's own export, imported back ------------------------------------------------------ */
/* A YOLOv8n detector (3 classes, 96 px) with the weights planning gives
 * and batch-norm statistics as after training, exported by lupe's exporter
 * and imported: the imported net's output0 equals the native forward pass
 * + det_raw_output. The two compute differently (the native graph applies
 * batch norm after each convolution, the import has it folded into the
 * weights; the DFL softmax and dist2bbox are the exporter's nodes), so boxes
 * are compared in grid cells of the coarsest stride (32 px), as the export
 * test does: 1e-4 of a cell; scores within 1e-5. */
static void test_lupe_export_roundtrip(void **state)
{
    (void)state;
    det_arch a;
    int x, outs[DET_LEVELS];
    assert_int_equal(det_arch_init(&a, "n", 3, 96, 1), LUPE_OK);
    eng_graph *g = eng_graph_new("roundtrip");
    eng_graph_set_precision(g, ENG_PREC_F32);
    assert_int_equal(det_build(g, &a, &x, outs), LUPE_OK);
    assert_int_equal(eng_graph_plan(g, 0), LUPE_OK);
    eng_tensor_rec st[1024];
    const int ns = eng_graph_state(g, st, 1024);
    uint64_t seed = 99;
    for (int i = 0; i < ns; i++)
        for (size_t k = 0; k < st[i].n; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            const float u = (float)((seed >> 40) * (1.0 / 16777216.0));
            if (strstr(st[i].name, "running_mean")) st[i].data[k] = 0.6f * u - 0.3f;
            if (strstr(st[i].name, "running_var")) st[i].data[k] = 0.3f + 1.7f * u;
            if (strstr(st[i].name, ".bn.weight")) st[i].data[k] = 0.5f + u;
        }
    const char *classes[] = {"scratch", "dent", "stain"};
    const char *path = tu_path("lupe_export.onnx");
    if (onnx_export_det_graph(path, g, &a, x, outs, classes, NULL)) fail_msg("export: %s", lupe_errmsg());
    onnx_net *net = load_ok(path, 0);
    const size_t n = onnx_net_output_numel(net), anchors = n / (4 + 3);
    float *in = malloc(3 * 96 * 96 * sizeof(float)), *want = malloc(n * sizeof(float));
    for (int i = 0; i < 3 * 96 * 96; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        in[i] = (float)((seed >> 40) * (1.0 / 16777216.0));
    }
    float *nhwc = eng_g_data(g, x);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 96 * 96; i++) nhwc[i * 3 + c] = in[c * 96 * 96 + i];
    eng_graph_forward(g, 0);
    const float *o[DET_LEVELS];
    for (int l = 0; l < DET_LEVELS; l++) o[l] = eng_g_data(g, outs[l]);
    assert_int_equal(det_raw_output(&a, o, 0, want), LUPE_OK);
    float *got = run_ok(net, in);
    double dbox = 0, dscore = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - want[i]);
        if (i < 4 * anchors) dbox = d > dbox ? d : dbox;
        else dscore = d > dscore ? d : dscore;
    }
    const onnx_net_stats *s = onnx_net_get_stats(net);
    print_message("# lupe's export imported: %d nodes, %d steps, %d convolutions (%d batch norms and %d activations "
                  "fused); max |import - native|: boxes %.3g px = %.3g cells, scores %.3g\n",
                  s->nodes, s->steps, s->convs, s->fused_bn, s->fused_act, dbox, dbox / 32, dscore);
    assert_true(dbox / 32 <= 1e-4);
    assert_true(dscore <= 1e-5);
    char **names = NULL;
    int nn = 0;
    assert_int_equal(onnx_parse_names(onnx_net_meta(net, "names"), &names, &nn), LUPE_OK);
    assert_int_equal(nn, 3);
    assert_string_equal(names[1], "dent");
    onnx_names_free(names, nn);
    free(in), free(want), free(got);
    onnx_net_free(net);
    eng_graph_free(g);
}

/* ---- what lupe refuses, and says ----------------------------------------------------------- */
static const int64_t d_small[4] = {1, 4, 8, 8};

/* Loads the model b describes and expects st with every fragment in the message. */
static void expect_refused(mb *b, const char *file, lupe_status want, const char *const *frags)
{
    const char *path = mb_write(b, file);
    onnx_net *net = NULL;
    lupe_status st = onnx_net_load(path, 1, &net);
    if (st != want) fail_msg("%s: %s (%s), expected %s", file, lupe_strerror(st), lupe_errmsg(), lupe_strerror(want));
    assert_null(net);
    for (; *frags; frags++)
        if (!strstr(lupe_errmsg(), *frags)) fail_msg("%s: message '%s' lacks '%s'", file, lupe_errmsg(), *frags);
    if (!strstr(lupe_errmsg(), path)) fail_msg("%s: message '%s' does not name the file", file, lupe_errmsg());
    print_message("# %s\n", lupe_errmsg());
}

#define FRAGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_unsupported(void **state)
{
    (void)state;
    mb b;
    uint64_t s = 1;
    const int64_t wd[4] = {4, 4, 3, 3}, two[2] = {2, 2};

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_node(&b, "GridSample", "/model.9/grid", "x,x", "y");
    expect_refused(&b, "op.onnx", LUPE_EUNSUPPORTED, FRAGS("node '/model.9/grid' (GridSample)", "not supported", "Conv"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_init_f(&b, "w", 4, wd, NULL, &s);
    mb_ais(&b, mb_node(&b, "Conv", "dilated", "x,w", "y"), "dilations", 2, two);
    expect_refused(&b, "dil.onnx", LUPE_EUNSUPPORTED, FRAGS("node 'dilated' (Conv)", "dilations"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_ai(&b, mb_node(&b, "Relu", "r", "x", "y"), "foo", 1);
    expect_refused(&b, "attr.onnx", LUPE_EUNSUPPORTED, FRAGS("node 'r' (Relu)", "attribute 'foo'"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_as(&b, mb_node(&b, "Resize", "up", "x,,", "y"), "mode", "linear");
    expect_refused(&b, "linear.onnx", LUPE_EUNSUPPORTED, FRAGS("node 'up' (Resize)", "mode 'linear'"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_node(&b, "Relu", "r", "x", "y")->domain = mb_str(&b, "com.microsoft");
    expect_refused(&b, "domain.onnx", LUPE_EUNSUPPORTED, FRAGS("node 'r' (Relu)", "com.microsoft"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_node(&b, "Shape", "s", "x", "sh");
    mb_node(&b, "Gather", "g", "x,sh", "y");
    expect_refused(&b, "gather.onnx", LUPE_EUNSUPPORTED, FRAGS("node 'g' (Gather)", "folded at load time only"));

    const int64_t dyn[4] = {1, 3, -1, 64};
    mb_init(&b, 13);
    b.ins[b.g.n_input++] = mb_value(&b, "x", 4, dyn);
    b.outs[b.g.n_output++] = mb_value(&b, "y", 0, NULL);
    mb_node(&b, "Relu", "r", "x", "y");
    expect_refused(&b, "dynamic.onnx", LUPE_EUNSUPPORTED, FRAGS("symbolic height 'height'", "fixed"));

    mb_init(&b, 13), mb_io(&b, d_small);
    b.outs[b.g.n_output++] = mb_value(&b, "z", 0, NULL);
    mb_node(&b, "Relu", "r", "x", "y"), mb_node(&b, "Sigmoid", "s", "x", "z");
    expect_refused(&b, "two.onnx", LUPE_EUNSUPPORTED, FRAGS("2 outputs"));

    mb_init(&b, 5), mb_io(&b, d_small);
    mb_node(&b, "Relu", "r", "x", "y");
    expect_refused(&b, "opset.onnx", LUPE_EUNSUPPORTED, FRAGS("opset 5"));

    mb_init(&b, 13), mb_io(&b, d_small);
    Onnx__TensorProto *t = mb_init_f(&b, "w", 4, wd, NULL, &s);
    t->has_data_location = 1, t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    mb_node(&b, "Conv", "c", "x,w", "y");
    expect_refused(&b, "external.onnx", LUPE_EUNSUPPORTED, FRAGS("tensor 'w'", "external file"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_ai(&b, mb_node(&b, "BatchNormalization", "bn", "x,x,x,x,x", "y"), "training_mode", 1);
    expect_refused(&b, "train.onnx", LUPE_EUNSUPPORTED, FRAGS("node 'bn' (BatchNormalization)", "training mode"));
}

static void test_malformed(void **state)
{
    (void)state;
    mb b;
    uint64_t s = 1;
    const int64_t wd[4] = {4, 4, 3, 3}, w5[4] = {4, 5, 3, 3}, cd[4] = {1, 2, 8, 8}, sh3[1] = {3};
    const int64_t bad_shape[3] = {1, 4, 65};

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_node(&b, "Conv", "/model.0/conv/Conv", "x,model.0.conv.weight", "y");
    expect_refused(&b, "missing.onnx", LUPE_EFORMAT,
                   FRAGS("node '/model.0/conv/Conv' (Conv)", "input 'model.0.conv.weight'", "initializer"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_init_f(&b, "c", 4, cd, NULL, &s);
    mb_node(&b, "Add", "add", "x,c", "y");
    expect_refused(&b, "bcast.onnx", LUPE_EFORMAT, FRAGS("node 'add' (Add)", "[1, 4, 8, 8]", "[1, 2, 8, 8]", "broadcast"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_init_f(&b, "w", 4, w5, NULL, &s);
    mb_node(&b, "Conv", "c", "x,w", "y");
    expect_refused(&b, "group.onnx", LUPE_EFORMAT, FRAGS("node 'c' (Conv)", "weights 'w' [4, 5, 3, 3]", "group 1"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_node(&b, "Concat", "cat", "x,x", "y");
    expect_refused(&b, "axis.onnx", LUPE_EFORMAT, FRAGS("node 'cat' (Concat)", "'axis' is missing"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_init_i(&b, "shape", 1, sh3, bad_shape);
    mb_node(&b, "Reshape", "rs", "x,shape", "y");
    expect_refused(&b, "reshape.onnx", LUPE_EFORMAT, FRAGS("node 'rs' (Reshape)", "256 elements", "260"));

    mb_init(&b, 13), mb_io(&b, d_small);
    Onnx__TensorProto *t = mb_init_f(&b, "w", 4, wd, NULL, &s);
    t->raw_data.len -= 4;
    mb_node(&b, "Conv", "c", "x,w", "y");
    expect_refused(&b, "short.onnx", LUPE_EFORMAT, FRAGS("tensor 'w'", "572 bytes", "576"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_as(&b, mb_node(&b, "Relu", "r", "x", "y"), "alpha", "x");
    expect_refused(&b, "attrtype.onnx", LUPE_EUNSUPPORTED, FRAGS("node 'r' (Relu)", "attribute 'alpha'"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_as(&b, mb_node(&b, "LeakyRelu", "l", "x", "y"), "alpha", "x");
    expect_refused(&b, "attrtype2.onnx", LUPE_EFORMAT, FRAGS("node 'l' (LeakyRelu)", "'alpha' should be of type float"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_node(&b, "Relu", "r", "x", "z");
    expect_refused(&b, "noout.onnx", LUPE_EFORMAT, FRAGS("output 'y' is not computed"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_node(&b, "Relu", "r", "x", "y"), mb_node(&b, "Relu", "r2", "x", "y");
    expect_refused(&b, "twice.onnx", LUPE_EFORMAT, FRAGS("node 'r2' (Relu)", "'y' is defined twice"));

    mb_init(&b, 13), mb_io(&b, d_small);
    mb_node(&b, "Add", "a", "x", "y");
    expect_refused(&b, "arity.onnx", LUPE_EFORMAT, FRAGS("node 'a' (Add)", "1 inputs"));
}

static void test_truncated_and_missing(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *buf = tu_read(yolo_files[0], &n);
    const char *path = tu_path("truncated.onnx");
    onnx_net *net = NULL;
    /* Cut in the middle of the weights, and after a few bytes. */
    const size_t cuts[] = {n / 2, n - 1, 7};
    for (size_t i = 0; i < 3; i++) {
        tu_write(path, buf, cuts[i]);
        lupe_status st = onnx_net_load(path, 1, &net);
        if (st != LUPE_EFORMAT) fail_msg("cut at %zu: %s: %s", cuts[i], lupe_strerror(st), lupe_errmsg());
        assert_null(net);
        assert_non_null(strstr(lupe_errmsg(), path));
        assert_non_null(strstr(lupe_errmsg(), "not an ONNX model"));
    }
    print_message("# %s\n", lupe_errmsg());
    lupe_free(buf);
    assert_int_not_equal(onnx_net_load(tu_path("nothing.onnx"), 1, &net), LUPE_OK);
    assert_non_null(strstr(lupe_errmsg(), "nothing.onnx"));
    onnx_net_free(NULL);
}

static int setup(void **state)
{
    (void)state;
    lupe_base_init();
    if (eng_ckpt_load(DATA "io.ckpt", &io)) {
        fprintf(stderr, "%s\n", lupe_errmsg());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    eng_ckpt_free(io);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yolo_vs_torch),
        cmocka_unit_test(test_zoo_vs_torch),
        cmocka_unit_test(test_yolo_vs_ort),
        cmocka_unit_test(test_zoo_vs_ort),
        cmocka_unit_test(test_yolo_plan),
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_run_no_alloc_threads),
        cmocka_unit_test(test_small_models_vs_ort),
        cmocka_unit_test(test_lupe_export_roundtrip),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated_and_missing),
        cmocka_unit_test(test_load_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
