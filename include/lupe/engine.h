/*
 * lupe engine: the float32 ops the detector is built from, each a pair of
 * plain functions (forward, and a backward that ACCUMULATES into its
 * gradient outputs), with a slow, obviously correct reference version
 * (`_ref`) that the fast paths are tested against. Optimizers, learning-rate
 * schedules and checkpoints live here too.
 *
 * Activations are NHWC: x[((n*H + y)*W + x)*C + c]. Convolution weights are
 * OHWI: w[((o*KH + ky)*KW + kx)*(C/groups) + i]. Buffers are owned by the
 * caller (planned once, one arena); no op allocates.
 *
 *     eng_conv_dims d;
 *     eng_conv_dims_init(&d, 1, 32, 32, 16, 32, 3, 3, 1, 1, 1);  // N H W C O K K S P groups
 *     eng_conv2d_forward_ref(out, in, w, bias, &d);
 *     eng_conv2d_backward_ref(din, dw, dbias, dout, in, w, &d);   // += into din, dw, dbias
 */
#ifndef LUPE_ENGINE_H
#define LUPE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "lupe/base.h"

/* ---- convolution --------------------------------------------------------- */
typedef struct eng_conv_dims {
    int n, h, w, c;        /* input */
    int o, kh, kw;         /* output channels, kernel */
    int sh, sw, ph, pw;    /* stride, zero padding (top/left = bottom/right) */
    int groups;            /* c and o divisible by groups; groups == c == o is depthwise */
    int oh, ow;            /* output size, computed by _init */
} eng_conv_dims;

/* Fills d; returns LUPE_EARG (with a message) if the shapes do not fit. */
lupe_status eng_conv_dims_init(eng_conv_dims *d, int n, int h, int w, int c, int o, int kh, int kw, int stride,
                               int pad, int groups);
/* out [n, oh, ow, o] = conv(in [n, h, w, c], w [o, kh, kw, c/groups]) + b [o] (b may be NULL). */
void eng_conv2d_forward_ref(float *out, const float *in, const float *w, const float *b, const eng_conv_dims *d);
/* din (may be NULL), dw, db (may be NULL) += gradients for dout. */
void eng_conv2d_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                             const eng_conv_dims *d);

/* ---- batch normalization over NHWC, statistics per channel --------------- */
/* Training: uses the batch's mean and (biased) variance over m = N*H*W rows;
 * writes them (mean, invstd = 1/sqrt(var + eps)) for the backward pass. */
void eng_bn_forward_train_ref(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                              const float *beta, size_t m, int c, float eps);
/* running = (1 - momentum) * running + momentum * batch (unbiased variance, as PyTorch). */
void eng_bn_update_running(float *rmean, float *rvar, const float *mean, const float *invstd, size_t m, int c,
                           float eps, float momentum);
void eng_bn_forward_infer_ref(float *out, const float *in, const float *gamma, const float *beta, const float *rmean,
                              const float *rvar, size_t m, int c, float eps);
void eng_bn_backward_ref(float *din, float *dgamma, float *dbeta, const float *dout, const float *in, const float *mean,
                         const float *invstd, const float *gamma, size_t m, int c);
/* Batch norm then SiLU as one op, out = silu(bn(in)) (the tail of YOLOv8's
 * Conv), with the arguments and statistics of the batch-norm functions above.
 * The batch-norm output is not kept: the backward pass recomputes it from in,
 * mean and invstd (hence beta), so dout is the gradient of out. The forward
 * references are eng_bn_forward_*_ref then eng_silu_forward_ref in place;
 * both accept out == in. */
void eng_bn_silu_forward_train_ref(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                                   const float *beta, size_t m, int c, float eps);
void eng_bn_silu_forward_infer_ref(float *out, const float *in, const float *gamma, const float *beta,
                                   const float *rmean, const float *rvar, size_t m, int c, float eps);
/* din (may be NULL), dgamma, dbeta (may be NULL) += gradients for dout. */
void eng_bn_silu_backward_ref(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                              const float *mean, const float *invstd, const float *gamma, const float *beta, size_t m,
                              int c);
/* Folds inference batch norm into the preceding convolution's weights (OHWI)
 * and bias (which must exist; zero it first if the conv had none). */
void eng_bn_fold(float *w, float *b, const float *gamma, const float *beta, const float *rmean, const float *rvar,
                 const eng_conv_dims *d, float eps);

/* ---- element-wise -------------------------------------------------------- */
void eng_silu_forward_ref(float *out, const float *in, size_t n);
void eng_silu_backward_ref(float *din, const float *dout, const float *in, size_t n);
void eng_sigmoid_forward_ref(float *out, const float *in, size_t n);
void eng_sigmoid_backward_ref(float *din, const float *dout, const float *out, size_t n); /* uses the output */
void eng_add_forward_ref(float *out, const float *a, const float *b, size_t n);
void eng_add_backward_ref(float *da, float *db, const float *dout, size_t n);

/* ---- channel concat and split (NHWC, m = N*H*W rows) --------------------- */
/* out [m, sum(cs)] = concat of ins[i] [m, cs[i]]. */
void eng_concat_forward_ref(float *out, const float *const *ins, const int *cs, int k, size_t m);
void eng_concat_backward_ref(float *const *dins, const int *cs, int k, const float *dout, size_t m);
/* Split is concat backwards: outs[i] = channel slice i of in. */
void eng_split_forward_ref(float *const *outs, const int *cs, int k, const float *in, size_t m);
void eng_split_backward_ref(float *din, const float *const *douts, const int *cs, int k, size_t m);
/* One slice: out [m, co] = channels [c0, c0 + co) of in [m, ci]; the
 * backward pass adds dout into those channels of din. */
void eng_slice_forward_ref(float *out, const float *in, size_t m, int ci, int c0, int co);
void eng_slice_backward_ref(float *din, const float *dout, size_t m, int ci, int c0, int co);

/* ---- pooling and resampling ---------------------------------------------- */
/* k x k max pooling, stride 1, padding k/2 (SPPF's), same size out. */
void eng_maxpool_forward_ref(float *out, const float *in, int n, int h, int w, int c, int k);
void eng_maxpool_backward_ref(float *din, const float *dout, const float *in, int n, int h, int w, int c, int k);
/* Nearest-neighbour x2: out [n, 2h, 2w, c]. */
void eng_upsample2_forward_ref(float *out, const float *in, int n, int h, int w, int c);
void eng_upsample2_backward_ref(float *din, const float *dout, int n, int h, int w, int c);

/* ---- softmax over the last axis (rows x cols), for DFL ------------------- */
void eng_softmax_forward_ref(float *out, const float *in, size_t rows, int cols);
void eng_softmax_backward_ref(float *din, const float *dout, const float *out, size_t rows, int cols);

/* ---- reductions and losses ----------------------------------------------- */
double eng_sum_ref(const float *x, size_t n);
/* Binary cross-entropy with logits, summed: -(t log s(x) + (1-t) log(1-s(x))),
 * computed stably; the backward adds scale * (s(x) - t) to dx. */
double eng_bce_logits_forward_ref(const float *x, const float *t, size_t n);
void eng_bce_logits_backward_ref(float *dx, const float *x, const float *t, size_t n, float scale);

/* ---- graphs ----------------------------------------------------------------
 * A network is built once as a graph of the ops above; eng_graph_plan()
 * checks every shape, sizes every tensor and allocates ONE arena holding
 * parameters, their gradients, activations, activation gradients and
 * batch-norm state. Forward and backward then run without allocating.
 * Shape errors are kept and reported by plan, naming the layer:
 *     eng_graph *g = eng_graph_new("tiny");
 *     int x = eng_g_input(g, "images", 2, 64, 64, 3);
 *     int y = eng_g_conv_bn_silu(g, "model.0", x, 16, 3, 2);
 *     if (eng_graph_plan(g, 1)) die(lupe_errmsg());
 *     memcpy(eng_g_data(g, x), pixels, ...); eng_graph_forward(g);
 */
typedef struct eng_graph eng_graph;
typedef struct eng_tensor_rec eng_tensor_rec;
typedef struct eng_param eng_param;
typedef struct eng_ckpt eng_ckpt;

eng_graph *eng_graph_new(const char *name);
void eng_graph_free(eng_graph *g);
/* Layer builders return a tensor id (>= 0), or -1 after recording an error. */
int eng_g_input(eng_graph *g, const char *name, int n, int h, int w, int c);
int eng_g_conv(eng_graph *g, const char *name, int x, int o, int k, int stride, int pad, int groups, int bias);
int eng_g_bn(eng_graph *g, const char *name, int x, float eps, float momentum);
/* Batch norm then SiLU as one op (parameters and running statistics named as
 * eng_g_bn's): the batch-norm output is not a tensor of the graph, which
 * saves its memory and two passes over it forward and backward. */
int eng_g_bn_silu(eng_graph *g, const char *name, int x, float eps, float momentum);
int eng_g_silu(eng_graph *g, int x);
int eng_g_sigmoid(eng_graph *g, int x);
int eng_g_add(eng_graph *g, int a, int b);
int eng_g_concat(eng_graph *g, const int *xs, int k);
/* Channels [c0, c0 + c) of x. */
int eng_g_slice(eng_graph *g, int x, int c0, int c);
int eng_g_maxpool(eng_graph *g, int x, int k);
int eng_g_upsample2(eng_graph *g, int x);
/* Conv (no bias, pad k/2) + batch norm (eps 1e-3, momentum 0.03) + SiLU: YOLOv8's Conv,
 * as eng_g_conv (NAME.conv) then eng_g_bn_silu (NAME.bn). */
int eng_g_conv_bn_silu(eng_graph *g, const char *name, int x, int o, int k, int stride);

/* Checks shapes and allocates the arena; training = 1 also plans gradients.
 * Parameters start as PyTorch initialises them (uniform +-1/sqrt(fan_in)
 * for conv weights and biases, batch norm 1 and 0), from a fixed seed. */
lupe_status eng_graph_plan(eng_graph *g, int training);
/* Use the oneDNN paths where they exist (default) or only the references;
 * call before planning. */
void eng_graph_set_fast(eng_graph *g, int fast);
/* Precision of the fast convolutions (tensors and weights stay f32): the
 * default ENG_PREC_AUTO computes them in bf16 where the CPU has it
 * (LUPE_PRECISION=f32|bf16 overrides); call before planning. Declared with
 * the fast convolutions below. */
void eng_graph_set_precision(eng_graph *g, int precision);
void eng_graph_shape(const eng_graph *g, int t, int shape[4]); /* n, h, w, c */
float *eng_g_data(eng_graph *g, int t);
float *eng_g_grad(eng_graph *g, int t);  /* NULL unless planned for training */
/* Forward in training mode (batch statistics, running statistics updated)
 * or inference mode (running statistics). */
void eng_graph_forward(eng_graph *g, int training);
/* Zeroes the activation gradients except those of the graph's outputs
 * (set by the caller), then runs every op's backward in reverse order,
 * accumulating parameter gradients. */
void eng_graph_backward(eng_graph *g);
/* Parameters, in creation order, for optimizers and checkpoints. */
int eng_graph_params(eng_graph *g, const eng_param **out);
/* Named tensors to checkpoint: parameters and batch-norm running statistics. */
int eng_graph_state(eng_graph *g, eng_tensor_rec *out, int max);
size_t eng_graph_arena_bytes(const eng_graph *g);
/* Copies named tensors (as eng_graph_state names them) into the graph;
 * every graph tensor must be present with the same size. */
lupe_status eng_graph_load(eng_graph *g, const eng_ckpt *c);

/* ---- reading a built graph (exporters) -----------------------------------
 * The nodes in execution order, read-only: each node's kind, tensors,
 * attributes and parameters, so a writer of another format (ONNX) walks
 * the network that was built instead of keeping a second copy of it.
 * Tensor ids are 0 .. eng_graph_tensors() - 1, each the output of exactly
 * one node; parameter and running-statistic values are there once planned
 * (NULL before).
 *     for (int i = 0; i < eng_graph_nodes(g); i++) {
 *         eng_node_info nd;
 *         eng_graph_node(g, i, &nd);
 *         if (nd.op == ENG_OP_CONV) write_conv(nd.name, nd.in[0], nd.out, &nd.conv, nd.w, nd.b);
 *     } */
typedef enum {
    ENG_OP_INPUT, ENG_OP_CONV, ENG_OP_BN, ENG_OP_SILU, ENG_OP_SIGMOID, ENG_OP_ADD, ENG_OP_CONCAT, ENG_OP_SLICE,
    ENG_OP_MAXPOOL, ENG_OP_UPSAMPLE2, ENG_OP_BN_SILU,
} eng_op;
typedef struct eng_node_info {
    eng_op op;
    const char *name;          /* the layer's name ("model.0.conv"), or kind.index ("add.31") */
    int nin;
    const int *in;             /* nin input tensor ids */
    int out;                   /* output tensor id */
    eng_conv_dims conv;        /* ENG_OP_CONV: shapes, stride, padding, groups */
    int k;                     /* ENG_OP_MAXPOOL: kernel (stride 1, padding k/2) */
    int c0;                    /* ENG_OP_SLICE: first channel (the output's width is the count) */
    float eps;                 /* batch norm */
    const char *wname, *bname; /* parameter names ("model.0.conv.weight"); bname NULL without bias */
    const float *w, *b;        /* conv weight (OHWI) and bias (NULL if none); batch norm gamma and beta */
    const float *rmean, *rvar; /* batch norm running statistics */
} eng_node_info;
int eng_graph_nodes(const eng_graph *g);
int eng_graph_tensors(const eng_graph *g);
/* Node i (0 <= i < eng_graph_nodes(g)); the pointers live as long as g. */
void eng_graph_node(const eng_graph *g, int i, eng_node_info *out);

/* ---- parameters, optimizers, schedules ----------------------------------
 * Parameters come in YOLOv8's three groups: weights with decay, norm
 * weights without, and biases without (biases also warm up differently).
 * Backward passes accumulate into g, so gradient accumulation is simply
 * several backward passes before one step. */
enum { ENG_GROUP_DECAY, ENG_GROUP_NORM, ENG_GROUP_BIAS, ENG_NGROUPS };
struct eng_param {
    const char *name;
    float *w, *g;   /* values and gradients, n each */
    size_t n;
    int group;
};

typedef enum { ENG_SGD, ENG_ADAMW } eng_optim_kind;
typedef struct eng_optim_cfg {
    eng_optim_kind kind;
    int nesterov;          /* SGD */
    float weight_decay;    /* applied to ENG_GROUP_DECAY only */
    float beta2, eps;      /* AdamW; beta1 is the momentum passed to step */
} eng_optim_cfg;
typedef struct eng_optim eng_optim;

/* Allocates the optimizer state once (one or two buffers per parameter). */
lupe_status eng_optim_new(const eng_optim_cfg *cfg, const eng_param *params, int np, eng_optim **out);
void eng_optim_free(eng_optim *o);
/* One update with a learning rate per group and the momentum (SGD) or
 * beta1 (AdamW) of this step, as PyTorch's SGD and AdamW compute it. */
void eng_optim_step(eng_optim *o, const float lr[ENG_NGROUPS], float momentum);
void eng_optim_zero_grad(eng_optim *o);
int64_t eng_optim_steps(const eng_optim *o);
/* State buffers of parameter i (s2 is NULL for SGD), for checkpoints. */
void eng_optim_state(eng_optim *o, int i, float **s1, float **s2);
void eng_optim_set_steps(eng_optim *o, int64_t steps);

/* Exponential moving average of weights, as YOLOv8's ModelEMA: after each
 * update k, d = decay * (1 - exp(-k / tau)) and ema = d * ema + (1 - d) * w. */
typedef struct eng_ema eng_ema;
lupe_status eng_ema_new(float *const *w, const size_t *n, int count, float decay, float tau, eng_ema **out);
void eng_ema_update(eng_ema *e);
float *eng_ema_values(eng_ema *e, int i);
int64_t eng_ema_updates(const eng_ema *e);
void eng_ema_set_updates(eng_ema *e, int64_t updates); /* resuming */
void eng_ema_free(eng_ema *e);

/* Learning rate and momentum at an iteration, YOLOv8's recipe: lr0 times a
 * linear or cosine factor falling to lrf over the epochs; during the first
 * warmup_iters iterations, lr rises from 0 (biases: fall from
 * warmup_bias_lr) and momentum rises from warmup_momentum. */
typedef enum { ENG_SCHED_LINEAR, ENG_SCHED_COSINE } eng_sched_kind;
typedef struct eng_sched {
    eng_sched_kind kind;
    float lr0, lrf;
    int epochs;
    int64_t warmup_iters;
    float warmup_bias_lr, warmup_momentum, momentum;
} eng_sched;
void eng_sched_at(const eng_sched *s, int epoch, int64_t iter, float lr[ENG_NGROUPS], float *momentum);

/* ---- checkpoints ----------------------------------------------------------
 * lupe's own file format for named float32 tensors plus a JSON text of
 * training state (layout in docs/formats.md):
 *   "LUPECKPT" u32 version=1, u32 flags=0, u64 tensor count, u64 meta length,
 *   meta bytes; per tensor: u16 name length, name, u8 dtype (0 = f32),
 *   u8 ndim (1..8), u64 dims[ndim], f32 data; then the SHA-256 of all the
 *   bytes before it. All integers little-endian. */
#define ENG_CKPT_MAX_DIMS 8
struct eng_tensor_rec {
    char *name;
    int ndim;
    int64_t dims[ENG_CKPT_MAX_DIMS];
    size_t n;       /* product of dims */
    float *data;
};

struct eng_ckpt {
    char *meta;     /* NUL-terminated JSON text ("{}" if none) */
    eng_tensor_rec *t;
    size_t nt;
};

/* Writes atomically (temp, fsync, rename, fsync folder). */
lupe_status eng_ckpt_save(const char *path, const char *meta, const eng_tensor_rec *t, size_t nt);
/* Reads and checks every length and the checksum; a truncated or damaged
 * file is LUPE_EFORMAT or LUPE_ECORRUPT naming the byte and the tensor. */
lupe_status eng_ckpt_load(const char *path, eng_ckpt **out);
lupe_status eng_ckpt_parse(const uint8_t *buf, size_t len, const char *source_name, eng_ckpt **out);
const eng_tensor_rec *eng_ckpt_find(const eng_ckpt *c, const char *name);
void eng_ckpt_free(eng_ckpt *c);

/* ---- fast convolution (oneDNN) --------------------------------------------
 * The convolution above run by oneDNN's JIT kernels, with the same buffers
 * and contracts as the _ref functions (NHWC activations, OHWI weights,
 * backward accumulates). The primitives are created once, in _new, for
 * NHWC activations and the weight layout oneDNN prefers; every call then
 * reorders the caller's OHWI weights into that layout (a copy the handle
 * keeps) and reorders gradients back, adding them. Nothing is allocated in
 * the calls: they use the handle's own blocks and the caller's scratch.
 *
 *     eng_conv_fast *cf = NULL;
 *     if ((st = eng_conv_fast_new(&d, 1, &cf))) return st;
 *     void *scratch = lupe_malloc(eng_conv_fast_scratch(cf)); // one, max over all convs
 *     st = eng_conv_fast_forward(cf, out, in, w, b, scratch);
 *     st = eng_conv_fast_backward(cf, din, dw, db, dout, in, w, scratch); // += as _ref
 *     eng_conv_fast_free(cf);
 *
 * Memory: the handle holds the weights in the forward and the backward-data
 * layouts, a weight-gradient buffer and o floats for the bias gradient
 * (eng_conv_fast_bytes). The scratch holds oneDNN's working memory and a
 * copy of the input gradient (n*h*w*c floats), because oneDNN's backward
 * data overwrites and has no summing post-op in 2.6; it is only in use
 * during a call, so all the convolutions of a network run one after the
 * other can share one scratch of the largest size. Any alignment will do.
 * One handle must not be used from two threads at once. */
typedef struct eng_conv_fast eng_conv_fast;
/* Creates the forward, backward-data and backward-weights primitives for
 * these dims, planned for the thread count eng_set_threads gives now.
 * with_bias: the conv has a bias (b and db are used). Out: *out. Fails with
 * LUPE_EUNSUPPORTED if oneDNN has no kernel for the shape. */
lupe_status eng_conv_fast_new(const eng_conv_dims *d, int with_bias, eng_conv_fast **out);
void eng_conv_fast_free(eng_conv_fast *c);
/* Bytes of scratch the calls below need. */
size_t eng_conv_fast_scratch(const eng_conv_fast *c);
/* Bytes the handle holds through the funnel (weight copies, gradients). */
size_t eng_conv_fast_bytes(const eng_conv_fast *c);
/* out = conv(in, w) + b, as eng_conv2d_forward_ref (b NULL unless with_bias). */
lupe_status eng_conv_fast_forward(eng_conv_fast *c, float *out, const float *in, const float *w, const float *b,
                                  void *scratch);
/* din += gradient of the input for dout. */
lupe_status eng_conv_fast_backward_data(eng_conv_fast *c, float *din, const float *dout, const float *w,
                                        void *scratch);
/* din = gradient of the input (overwrites): for a din that no other op
 * adds to, this skips the add pass, about a sixth of backward-data's time. */
lupe_status eng_conv_fast_backward_data_set(eng_conv_fast *c, float *din, const float *dout, const float *w,
                                            void *scratch);
/* dw += gradient of the weights; db (may be NULL; only with_bias) += sum of dout. */
lupe_status eng_conv_fast_backward_weights(eng_conv_fast *c, float *dw, float *db, const float *dout,
                                           const float *in, void *scratch);
/* Both of the above, as eng_conv2d_backward_ref (din may be NULL: skipped). */
lupe_status eng_conv_fast_backward(eng_conv_fast *c, float *din, float *dw, float *db, const float *dout,
                                   const float *in, const float *w, void *scratch);
/* oneDNN's name for the kernel it chose ("brgconv:avx512_core", ...). */
typedef enum { ENG_CONV_FWD, ENG_CONV_BWD_DATA, ENG_CONV_BWD_WEIGHTS } eng_conv_pass;
const char *eng_conv_fast_impl(const eng_conv_fast *c, eng_conv_pass pass);
/* Threads of the fast ops: 0 = all cores (the default). Applies to handles
 * created afterwards (oneDNN plans its work split at creation). */
void eng_set_threads(int n);
int eng_get_threads(void);
/* Mixed precision: in bf16 mode the convolutions read bf16 copies of the
 * input, the output gradient and the weights (converted in each call: the
 * activations into the scratch, the f32 master weights into the handle's
 * layouts) and accumulate and write in f32, so every buffer the caller
 * passes stays f32 and the contracts above hold unchanged (to bf16's
 * accuracy: inputs rounded to 8 mantissa bits). The scratch grows by
 * n*h*w*c + n*oh*ow*o bf16 values. AUTO is bf16 where the CPU has it
 * (eng_bf16_supported), else f32; the environment's LUPE_PRECISION=f32 or
 * bf16 overrides AUTO. bf16 on a CPU without it, or for a shape oneDNN has
 * no fast bf16 kernel for, builds an f32 handle instead (not an error):
 * eng_conv_fast_precision says which it is. eng_conv_fast_new is f32. */
typedef enum { ENG_PREC_F32, ENG_PREC_BF16, ENG_PREC_AUTO } eng_precision;
lupe_status eng_conv_fast_new_prec(const eng_conv_dims *d, int with_bias, eng_precision p, eng_conv_fast **out);
/* 1 if oneDNN will use AVX512_BF16 or AMX-BF16 on this CPU. */
int eng_bf16_supported(void);
/* ENG_PREC_F32 or ENG_PREC_BF16: what the handle computes in. */
eng_precision eng_conv_fast_precision(const eng_conv_fast *c);

/* ---- inference convolution (oneDNN) ---------------------------------------
 * A forward-only convolution for planned inference: the weights (OHWI) and
 * bias are copied at creation into the layout oneDNN picks, so a call only
 * runs the kernel; an activation and optionally a residual add are fused
 * as post-ops: out = act(conv(in, w) + b) [+ add]. The dims are those of
 * eng_conv_dims_init, except that the caller may set ph/pw (top/left
 * padding) and oh/ow itself for asymmetric padding: the bottom/right
 * padding is then whatever the last window reaches. Threads as
 * eng_conv_fast (fixed at creation); the scratch is only busy during a call
 * and may be shared by all the handles of a network.
 *
 *     eng_conv_infer *ci = NULL;
 *     if ((st = eng_conv_infer_new(&d, w, b, ENG_ACT_SILU, 0, 0, &ci))) return st;
 *     st = eng_conv_infer_forward(ci, out, in, NULL, scratch);   // scratch: eng_conv_infer_scratch(ci) bytes
 */
typedef enum { ENG_ACT_NONE, ENG_ACT_SILU, ENG_ACT_RELU, ENG_ACT_LEAKY_RELU, ENG_ACT_SIGMOID } eng_act;
typedef struct eng_conv_infer eng_conv_infer;
/* w [o, kh, kw, c/groups], b [o] or NULL; alpha: leaky ReLU's slope;
 * with_add: the forward call passes a tensor of the output's shape to add
 * after the activation. Out: *out. LUPE_EUNSUPPORTED when oneDNN has no
 * kernel for the shape. */
lupe_status eng_conv_infer_new(const eng_conv_dims *d, const float *w, const float *b, eng_act act, float alpha,
                               int with_add, eng_conv_infer **out);
void eng_conv_infer_free(eng_conv_infer *c);
size_t eng_conv_infer_scratch(const eng_conv_infer *c);
/* Bytes the handle holds through the funnel (the reordered weights). */
size_t eng_conv_infer_bytes(const eng_conv_infer *c);
const char *eng_conv_infer_impl(const eng_conv_infer *c);
eng_act eng_conv_infer_act(const eng_conv_infer *c);
/* out [n, oh, ow, o] = act(conv(in) + b) + add (add NULL unless with_add). */
lupe_status eng_conv_infer_forward(eng_conv_infer *c, float *out, const float *in, const float *add, void *scratch);
/* The reference: eng_conv2d_forward_ref, then the activation (in double)
 * and the add; add may be NULL. */
void eng_conv_infer_ref(float *out, const float *in, const float *w, const float *b, const float *add,
                        const eng_conv_dims *d, eng_act act, float alpha);
const char *eng_act_name(eng_act a);

/* ---- fast element-wise, batch norm, concat, slices, pooling ---------------
 * The _ref ops above with the same buffers, shapes and contracts (backward
 * passes accumulate; NULL din/dgamma/dbeta, da/db and dins[i] are skipped;
 * element-wise forwards and batch norm accept out == in), vectorised and run
 * on eng_get_threads() OpenMP threads (fewer for small tensors; one when
 * built without OpenMP). Nothing is allocated: per-thread sums live on the
 * threads' stacks. Differences from the references, which compute in double
 * (tested in tests/engine/test_fast_ops.c):
 *   - add, concat, slices, max pooling, upsampling: bit-identical.
 *   - sigmoid, SiLU: float arithmetic with a polynomial exp of about 1 ulp;
 *     outputs within a few ulp (relative 1e-6), 0 instead of a value below
 *     1.2e-38 (sigmoid(x) for x < -87.5); gradients within 1e-6 of
 *     |dy| * max(1, |x|) (SiLU) or |dy| (sigmoid).
 *   - batch norm (also fused with SiLU): mean and invstd within a float
 *     rounding of the reference's (relative 1e-6: sums of float blocks
 *     added in double, the variance's shifted to avoid cancellation), the
 *     normalisation and gradients in float: relative 1e-5 of the tensor's
 *     largest value, also for means far from 0. Above 1024 channels
 *     inference batch norm runs the reference.
 * Release builds (with FMA) round some multiply-adds once where debug
 * builds round twice: the last bits differ between the two, within the
 * same tolerances. Results do not depend on timing; the batch-norm sums
 * depend on the thread count only in their last bits. */
void eng_bn_forward_train_fast(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                               const float *beta, size_t m, int c, float eps);
void eng_bn_forward_infer_fast(float *out, const float *in, const float *gamma, const float *beta, const float *rmean,
                               const float *rvar, size_t m, int c, float eps);
void eng_bn_backward_fast(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                          const float *mean, const float *invstd, const float *gamma, size_t m, int c);
void eng_silu_forward_fast(float *out, const float *in, size_t n);
/* Overwriting forms of two backward passes (din = ... instead of +=), for
 * an op that is the first to write its input's gradient: no memset, and
 * din is not read. dgamma and dbeta still accumulate. */
void eng_silu_backward_set_fast(float *din, const float *dout, const float *in, size_t n);
void eng_bn_backward_set_fast(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                              const float *mean, const float *invstd, const float *gamma, size_t m, int c);
void eng_silu_backward_fast(float *din, const float *dout, const float *in, size_t n);
/* Batch norm + SiLU in one op: the statistics pass, then ONE pass writing
 * silu(bn(x)) (the batch-norm value stays in registers); the backward pass
 * recomputes dy = dout * silu'(y) from x in its sums pass and in its din
 * pass, so no intermediate tensor is read or written. Same tolerances as
 * batch norm; the _set form overwrites din as eng_bn_backward_set_fast. */
void eng_bn_silu_forward_train_fast(float *out, float *mean, float *invstd, const float *in, const float *gamma,
                                    const float *beta, size_t m, int c, float eps);
void eng_bn_silu_forward_infer_fast(float *out, const float *in, const float *gamma, const float *beta,
                                    const float *rmean, const float *rvar, size_t m, int c, float eps);
void eng_bn_silu_backward_fast(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                               const float *mean, const float *invstd, const float *gamma, const float *beta, size_t m,
                               int c);
void eng_bn_silu_backward_set_fast(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                                   const float *mean, const float *invstd, const float *gamma, const float *beta,
                                   size_t m, int c);
void eng_sigmoid_forward_fast(float *out, const float *in, size_t n);
void eng_sigmoid_backward_fast(float *din, const float *dout, const float *out, size_t n);
void eng_add_forward_fast(float *out, const float *a, const float *b, size_t n);
void eng_add_backward_fast(float *da, float *db, const float *dout, size_t n);
void eng_concat_forward_fast(float *out, const float *const *ins, const int *cs, int k, size_t m);
void eng_concat_backward_fast(float *const *dins, const int *cs, int k, const float *dout, size_t m);
void eng_slice_forward_fast(float *out, const float *in, size_t m, int ci, int c0, int co);
void eng_slice_backward_fast(float *din, const float *dout, size_t m, int ci, int c0, int co);
void eng_maxpool_forward_fast(float *out, const float *in, int n, int h, int w, int c, int k);
void eng_maxpool_backward_fast(float *din, const float *dout, const float *in, int n, int h, int w, int c, int k);
void eng_upsample2_forward_fast(float *out, const float *in, int n, int h, int w, int c);
void eng_upsample2_backward_fast(float *din, const float *dout, int n, int h, int w, int c);
/* More overwriting backward forms, for graphs: an op that is the first to
 * write an input's gradient copies instead of adding to zeros (the same
 * values, but that a -0.0 gradient stays -0.0). concat and add take a bit
 * mask of the inputs to overwrite (bit i: dins[i]; add: bit 0 da, bit 1 db;
 * da == db cannot be overwritten); a slice overwrites only its channels. */
void eng_concat_backward_set_fast(float *const *dins, unsigned set, const int *cs, int k, const float *dout, size_t m);
void eng_add_backward_set_fast(float *da, float *db, const float *dout, size_t n, unsigned set);
void eng_slice_backward_set_fast(float *din, const float *dout, size_t m, int ci, int c0, int co);
void eng_upsample2_backward_set_fast(float *din, const float *dout, int n, int h, int w, int c);

#endif
