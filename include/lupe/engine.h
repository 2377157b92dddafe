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

/* ---- parameters, optimizers, schedules ----------------------------------
 * Parameters come in YOLOv8's three groups: weights with decay, norm
 * weights without, and biases without (biases also warm up differently).
 * Backward passes accumulate into g, so gradient accumulation is simply
 * several backward passes before one step. */
enum { ENG_GROUP_DECAY, ENG_GROUP_NORM, ENG_GROUP_BIAS, ENG_NGROUPS };
typedef struct eng_param {
    const char *name;
    float *w, *g;   /* values and gradients, n each */
    size_t n;
    int group;
} eng_param;

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
typedef struct eng_tensor_rec {
    char *name;
    int ndim;
    int64_t dims[ENG_CKPT_MAX_DIMS];
    size_t n;       /* product of dims */
    float *data;
} eng_tensor_rec;

typedef struct eng_ckpt {
    char *meta;     /* NUL-terminated JSON text ("{}" if none) */
    eng_tensor_rec *t;
    size_t nt;
} eng_ckpt;

/* Writes atomically (temp, fsync, rename, fsync folder). */
lupe_status eng_ckpt_save(const char *path, const char *meta, const eng_tensor_rec *t, size_t nt);
/* Reads and checks every length and the checksum; a truncated or damaged
 * file is LUPE_EFORMAT or LUPE_ECORRUPT naming the byte and the tensor. */
lupe_status eng_ckpt_load(const char *path, eng_ckpt **out);
lupe_status eng_ckpt_parse(const uint8_t *buf, size_t len, const char *source_name, eng_ckpt **out);
const eng_tensor_rec *eng_ckpt_find(const eng_ckpt *c, const char *name);
void eng_ckpt_free(eng_ckpt *c);

#endif
