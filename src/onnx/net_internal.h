/*
 * What the ONNX importer's files share: the graph as loaded (values and
 * nodes, with every shape inferred for the model's fixed input and every
 * constant sub-graph folded), the run-time plan (steps over one arena) and
 * the kernels the steps call. import.c reads the model, import_ops.c
 * knows each operator, net_plan.c fuses, lays out and plans, net_run.c
 * runs, ops.c computes.
 */
#ifndef LUPE_ONNX_NET_INTERNAL_H
#define LUPE_ONNX_NET_INTERNAL_H

#include "lupe/engine.h"
#include "onnx/onnx_internal.h"

#define OX_MAXR 6        /* highest tensor rank handled */
#define OX_MAXIO 64      /* most inputs or outputs of one node (Concat, Split) */
#define OX_MAX_ELEMS ((int64_t)1 << 31) /* largest tensor, in elements */

/* Element types: run-time tensors are always float32; constants may also
 * be integers (shapes, indices) and booleans, kept as int64. */
typedef enum { OX_F32, OX_I64, OX_BOOL } ox_dtype;

/* Physical layout of a run-time tensor: PLAIN is row-major in ONNX's axis
 * order (NCHW for images); NHWC (rank 4 only) is what the convolutions
 * read and write. */
typedef enum { OX_PLAIN, OX_NHWC } ox_layout;

/* A bump allocator over funnel blocks, freed all at once. */
typedef struct ox_pool ox_pool;
void *ox__pool_alloc(ox_pool **p, size_t n); /* 64-byte aligned, zeroed; NULL + LUPE_ENOMEM */
void ox__pool_free(ox_pool **p);
size_t ox__pool_bytes(const ox_pool *p);

typedef struct ox_val {
    const char *name;
    int rank;
    int64_t dims[OX_MAXR];
    int64_t numel;
    ox_dtype dtype;
    /* Constants (initializers, Constant nodes, folded results): data in
     * f (OX_F32) or i (integers and booleans). */
    int is_const;
    float *f;
    int64_t *i;
    int producer; /* node index; -1 for the graph input and constants */
    /* Plan. */
    int nuse;        /* run-time readers (nodes, and the graph output) */
    ox_layout layout;
    int buf;         /* buffer holding it at run time; -1 for constants */
    int as[2];       /* the value converted to PLAIN / NHWC, or -1 */
} ox_val;

/* What a node does at run time, after fusion. */
typedef enum {
    K_NONE, /* folded or fused away */
    K_CONV, K_UNARY, K_BINARY, K_AFFINE, K_CONCAT, K_SLICE, K_MAXPOOL, K_RESIZE, K_SOFTMAX, K_TRANSPOSE, K_EXPAND,
    K_VIEW,  /* Reshape, Flatten, Squeeze, Unsqueeze, Identity, Cast to float: same data, new shape */
    K_SPLIT, /* pieces along a.axis */
} ox_kind;

typedef enum { U_SIGMOID, U_RELU, U_LEAKY_RELU, U_SILU } ox_unary;
typedef enum { B_ADD, B_SUB, B_MUL, B_DIV } ox_binop;

typedef struct ox_node {
    int idx;
    const char *name, *op; /* point into the model (valid while loading) */
    int nin, nout;
    int in[OX_MAXIO], out[OX_MAXIO]; /* value ids; -1 for an absent optional input */
    ox_kind kind;
    union {
        struct {
            int group, kh, kw, sh, sw, pt, pl, pb, pr;
            const float *w, *b; /* OIHW weights and bias (b may be NULL): constants, or batch norm folded in */
            eng_act act;
            float alpha;
        } conv;
        struct {
            ox_unary op;
            float alpha;
        } un;
        ox_binop bin;
        struct {
            float *scale, *shift; /* y = x * scale[c] + shift[c] (inference batch norm) */
        } aff;
        int axis; /* CONCAT, SPLIT */
        struct {
            int64_t start[OX_MAXR], step[OX_MAXR]; /* per axis of the input */
        } slice;
        struct {
            int kh, kw, sh, sw, pt, pl;
        } pool;
        struct {
            int32_t *ymap, *xmap; /* source row / column of each output one */
        } rs;
        struct {
            int64_t outer, n, inner;
        } sm;
        int perm[OX_MAXR]; /* TRANSPOSE */
    } a;
} ox_node;

/* Loading context: the model, its values and nodes. */
typedef struct ox_ctx {
    const char *path;
    Onnx__ModelProto *model;
    int64_t opset;
    ox_val *v;
    int nv, cap_v;
    ox_node *n;
    int nn;
    int input, output; /* value ids of the graph's input and output */
    /* name -> value id, open addressing */
    int *hash;
    size_t hcap;
    ox_pool *tmp; /* freed when loading ends */
    int threads;
} ox_ctx;

/* Errors name the file and the node: "m.onnx: node 'x' (Conv): ..." */
lupe_status ox__node_err(ox_ctx *c, const ox_node *n, lupe_status st, const char *fmt, ...) LUPE_PRINTF(4, 5);

/* Values. */
int ox__val_new(ox_ctx *c, const char *name); /* -1 on ENOMEM */
lupe_status ox__val_reserve(ox_ctx *c, int n);  /* room for n values: ox_val_new will not move c->v */
lupe_status ox__val_set_shape(ox_ctx *c, const ox_node *n, ox_val *v, int rank, const int64_t *dims, ox_dtype t);
/* Allocates the data of a constant whose shape is set. */
lupe_status ox__val_make_const(ox_ctx *c, ox_val *v);
double ox__cget(const ox_val *v, int64_t i);
void ox__cset(ox_val *v, int64_t i, double x);

/* Attributes of the node's proto. */
const Onnx__AttributeProto *ox__attr(const ox_node *n, const Onnx__NodeProto *p, const char *name);
lupe_status ox__attr_int(ox_ctx *c, const ox_node *n, const char *name, int64_t dflt, int64_t *out);
lupe_status ox__attr_float(ox_ctx *c, const ox_node *n, const char *name, float dflt, float *out);
/* ints attribute: *count = -1 when absent. */
lupe_status ox__attr_ints(ox_ctx *c, const ox_node *n, const char *name, int64_t *out, int max, int *count);
/* string attribute into buf ("" default when absent). */
lupe_status ox__attr_str(ox_ctx *c, const ox_node *n, const char *name, const char *dflt, char *buf, size_t bufsz);
/* A tensor (initializer, Constant's value) into a constant value. */
lupe_status ox__tensor_to_val(ox_ctx *c, const ox_node *n, const Onnx__TensorProto *t, ox_val *v);

/* Operators: each checks its attributes and inputs, sets its outputs'
 * shapes, folds when its inputs are constant and sets n->kind for the
 * plan otherwise. */
typedef struct ox_op {
    const char *name;
    int min_in, max_in, min_out, max_out;
    const char *attrs; /* the attributes it knows, space-separated */
    lupe_status (*infer)(ox_ctx *c, ox_node *n);
} ox_op;
const ox_op *ox__op_find(const char *name);
void ox__op_list(char *buf, size_t n); /* "Add, BatchNormalization, ..." */
const Onnx__NodeProto *ox__proto(const ox_ctx *c, const ox_node *n);

/* ---- run-time plan ---------------------------------------------------- */
/* A strided copy of an n-d block, axes ordered and merged at plan time. */
typedef struct ox_cpy {
    int rank;
    int64_t dims[OX_MAXR], ds[OX_MAXR], ss[OX_MAXR];
} ox_cpy;
void ox__cpy_make(ox_cpy *c, int rank, const int64_t *dims, const int64_t *ds, const int64_t *ss);

/* Element-wise binary op with broadcasting, strides per output axis (0 =
 * broadcast), merged like ox_cpy. */
typedef struct ox_bin {
    ox_binop op;
    int rank;
    int64_t dims[OX_MAXR], os[OX_MAXR], as[OX_MAXR], bs[OX_MAXR];
} ox_bin;
void ox__bin_make(ox_bin *b, ox_binop op, int rank, const int64_t *dims, const int64_t *os, const int64_t *as,
                 const int64_t *bs);

typedef enum {
    S_CONV, S_COPY, S_UNARY, S_BINARY, S_AFFINE, S_CONCAT_C, S_SLICE_C, S_MAXPOOL, S_MAXPOOL_SAME, S_RESIZE,
    S_SOFTMAX,
} ox_step_kind;

typedef struct ox_step {
    ox_step_kind kind;
    int node;      /* the node it runs (for messages), or -1 */
    const char *desc; /* one line for onnx_net_print_plan */
    int out, in[2]; /* value ids (in[1] = -1 if none) */
    int64_t ooff, ioff; /* offsets in floats into out and in[0] (copies into a concat's part, slices) */
    union {
        struct {
            eng_conv_infer *h;
        } conv;
        ox_cpy cpy;
        struct {
            ox_unary op;
            float alpha;
            int64_t n;
        } un;
        ox_bin bin;
        struct {
            const float *scale, *shift;
            int64_t outer, c, inner;
        } aff;
        struct {
            int k;
            int ins[OX_MAXIO];
            int cs[OX_MAXIO];
            int64_t m;
        } cat; /* channel concat of NHWC tensors */
        struct {
            int64_t m;
            int ci, c0, co;
        } sl; /* channel slice of an NHWC tensor */
        struct {
            int n, c, h, w, oh, ow, kh, kw, sh, sw, pt, pl;
            int64_t is[4], os[4]; /* strides of n, c, h, w */
        } mp;
        struct {
            int n, c, oh, ow;
            const int32_t *ymap, *xmap;
            int64_t is[4], os[4];
        } rs;
        struct {
            int64_t outer, n, inner;
        } sm;
    } p;
} ox_step;

typedef struct ox_buf {
    int64_t floats;
    int first, last; /* steps that write it first and read it last */
    size_t off;      /* in floats, from the arena's aligned start */
} ox_buf;

/* Plans the loaded graph into net (defined in net_plan.c). */
struct onnx_net {
    int threads;
    int in_dims[4], out_rank;
    int64_t out_dims[OX_MAXR];
    int64_t in_numel, out_numel;
    /* values as the steps see them: data pointers resolved after planning */
    float **ptr;
    int input, output;
    ox_cpy cpy_in, cpy_out;
    ox_step *steps;
    int nsteps;
    void *arena;
    size_t arena_bytes, scratch_off;
    ox_pool *keep; /* constants the steps read, index maps */
    /* what import reported */
    char **meta;   /* metadata_props: key, value, key, value... */
    int nmeta;
    onnx_net_stats stats;
};

lupe_status ox__plan(ox_ctx *c, onnx_net *net);
void ox__step_cleanup(ox_step *s);

/* ---- kernels (ops.c) ------------------------------------------------- */
void ox__copy(float *dst, const float *src, const ox_cpy *c, int threads);
void ox__binary(float *out, const float *a, const float *b, const ox_bin *p, int threads);
void ox__unary_run(float *out, const float *in, int64_t n, ox_unary op, float alpha, int threads);
void ox__affine(float *out, const float *in, const float *scale, const float *shift, int64_t outer, int64_t c,
               int64_t inner, int threads);
void ox__softmax(float *out, const float *in, int64_t outer, int64_t n, int64_t inner, int threads);
void ox__maxpool(float *out, const float *in, const ox_step *s, int threads);
void ox__resize_nearest(float *out, const float *in, const ox_step *s, int threads);

#endif
