/*
 * What the inference files share: the compiled model (values, storage
 * buffers, steps, convolutions), the compiler's entry points, the element
 * types and the ops of ops.c.
 */
#ifndef LUPE_INFER_INTERNAL_H
#define LUPE_INFER_INTERNAL_H

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>

#include "lupe/infer.h"

/* Element types of activations. */
enum { INF__F32, INF__BF16, INF__S8, INF__U8 };
static inline size_t inf__dsize(int dt)
{
    return dt == INF__F32 ? 4 : dt == INF__BF16 ? 2 : 1;
}
const char *inf__dt_name(int dt);

#define INF__NAME 96

/* A tensor of the compiled model. Its elements live in buffer `buf`, which
 * holds [n, h, w, ld] elements of type dt: the value is channels
 * [off, off + c) of it (off 0 and ld c: dense). Views (slices) and
 * concatenation members written in place share their buffer. */
typedef struct inf__val {
    int n, h, w, c;
    int dt;
    float scale;       /* int8: real value = q * scale */
    int buf, off, ld;  /* storage, resolved by the planner */
    int gt;            /* graph tensor id, -1 for the compiler's own */
    int view_of;       /* slice: the parent value (-1 if none) */
    int c0;            /* slice: first channel in the parent */
    int place_in;      /* concatenation member written in place: the concat's value (-1 if none) */
    int place_off;     /* its channel offset there */
    int root;          /* union-find: values that must share one int8 scale */
    int producer;      /* op kind that computes it (OP_*), for the planner */
    int dense_twin;    /* a dense copy for convolutions that read a strided view (-1 none) */
    float lo, hi;      /* calibrated range (int8), 0 0 if unknown */
    char name[INF__NAME]; /* the graph node that produced it: the calibration key */
} inf__val;

/* One block of the arena: live from step `first` to step `last`. */
typedef struct inf__buf {
    size_t bytes, off;
    int first, last;
} inf__buf;

/* A convolution with batch norm folded in and SiLU fused, on oneDNN. */
typedef struct inf__conv {
    eng_conv_dims d;
    int act;               /* 1: SiLU */
    int sum;               /* 1: adds the destination's previous contents (a residual) after the SiLU */
    float *w, *b;          /* folded f32 OHWI weights and bias (freed once the kernel has them) */
    int src, dst;          /* values */
    dnnl_primitive_t p;
    dnnl_memory_t m_src, m_w, m_b, m_dst, m_sp;
    size_t w_off, w_bytes; /* weights in the kernel's layout, in the model's weight block */
    size_t b_off;          /* bias as the kernel takes it (float, int8: divided by the input scales) */
    size_t sp_bytes;
    dnnl_memory_desc_t wmd; /* the kernel's weight layout */
    float *wscale;         /* int8: per output channel, weights = q * wscale */
    char impl[64];
} inf__conv;

enum { ST_CONV, ST_COPY, ST_ADD, ST_POOL, ST_UP2 };

/* One thing a run does, in order. */
typedef struct inf__step {
    int kind;
    int in[2], out;     /* values; ST_COPY copies in[0] into out's storage */
    int k;              /* ST_POOL: kernel */
    int conv;           /* ST_CONV: index into convs */
    int observe;        /* the step completes a value worth calibrating (out) */
} inf__step;

struct inf_model {
    det_arch a;
    inf_precision prec;
    int threads;
    int float_head;
    float pct;              /* int8 range: 0 = min/max, else a stored percentile of |x| */
    char path[4096];
    char sha[LUPE_SHA256_HEX];  /* of the checkpoint file ("" for a graph) */
    char **classes;
    inf__val *v;
    int nv, vcap;
    inf__buf *b;
    int nb, bcap;
    inf__step *s;
    int ns, scap;
    inf__conv *cv;
    int ncv, cvcap;
    int input;              /* value the caller writes (f32) */
    int outs[DET_LEVELS];   /* f32 output values */
    void *arena;            /* activations, then oneDNN's scratchpad */
    char *base;             /* arena rounded up to 64 bytes */
    size_t arena_bytes, act_bytes, sp_bytes;
    void *wblock;           /* weights and biases of every convolution */
    char *wbase;            /* wblock rounded up to 64 bytes */
    size_t wbytes;
    dnnl_engine_t eng;
    dnnl_stream_t stream;
};

/* The ranges of a calibration, by value name. */
typedef struct inf__range {
    char name[INF__NAME];
    float min, max, p[3];   /* percentiles of |x|: 99.9, 99.99, 99.999 */
} inf__range;
extern const float inf__pcts[3];

/* compile.c: the graph into m's values, steps and convolutions, then the
 * arena plan and the kernels. g gives the structure and shapes; gw (the
 * same graph, or one built the same way at another size) the weights and
 * batch-norm statistics, node for node. */
lupe_status inf__compile(inf_model *m, eng_graph *g, eng_graph *gw, int input, const int outs[DET_LEVELS],
                         const inf_calib *calib);
/* Runs every step; after each, hook(ctx, step index) if hook is set. */
typedef lupe_status (*inf__hook)(void *ctx, const inf_model *m, int step);
lupe_status inf__run(inf_model *m, inf__hook hook, void *ctx);
/* Calibrated range of a name, or NULL. */
const inf__range *inf__calib_find(const inf_calib *c, const char *name);
/* LUPE_EVERIFY when the calibration at path was made for another model
 * (model_sha: the checkpoint's SHA-256; "" skips the check). */
lupe_status inf__calib_check(const inf_calib *c, const char *model_sha, const char *path);
const char *inf__model_sha(const inf_model *m);

/* conv.c: the oneDNN side. */
lupe_status inf__dnnl_init(inf_model *m);
/* Creates conv i's primitive for m's types and scales; sizes its weights
 * (w_bytes) and scratchpad. */
lupe_status inf__conv_create(inf_model *m, int i);
/* Writes conv i's weights and bias, converted and reordered, into the
 * weight block, and binds its memory objects to the arena. */
lupe_status inf__conv_bind(inf_model *m, int i);
lupe_status inf__conv_run(inf_model *m, int i);
void inf__conv_cleanup(inf__conv *c);
lupe_status inf__dnnl_err(dnnl_status_t s, const char *what);

/* ops.c: the steps that are not convolutions, on any element type. A view
 * is (pointer to element 0 of channel off, row stride ld in elements). */
typedef struct inf__view {
    void *p;
    int n, h, w, c, ld, dt;
    float scale;
} inf__view;
inf__view inf__view_of(const inf_model *m, int v);
void inf__copy(const inf__view *dst, const inf__view *src, int threads);
void inf__add(const inf__view *dst, const inf__view *a, const inf__view *b, int threads);
void inf__maxpool(const inf__view *dst, const inf__view *src, int k, int threads);
void inf__upsample2(const inf__view *dst, const inf__view *src, int threads);
/* Element conversions, one row of n values. */
void inf__to_f32(float *dst, const void *src, int dt, float scale, int n);
void inf__from_f32(void *dst, const float *src, int dt, float scale, int n);
uint16_t inf__bf16(float x);
float inf__bf16_f32(uint16_t h);

#endif
