/*
 * The inference convolution: one oneDNN forward-inference primitive per
 * shape, its weights reordered once into the layout oneDNN picks (format
 * `any`), an activation (SiLU, ReLU, leaky ReLU, sigmoid) and optionally a
 * residual add fused as post-ops, so a Conv-BN-SiLU block followed by a
 * shortcut is one pass over memory. NHWC activations, OHWI weights.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/dnnl_util.h"
#include "lupe/engine.h"

struct eng_conv_infer {
    eng_conv_dims d;
    eng_act act;
    float alpha;
    int with_add, threads;
    dnnl_stream_t stream;
    dnnl_primitive_t p;
    dnnl_memory_t m_in, m_out, m_add, m_w, m_b, m_sp;
    void *block; /* the reordered weights and the bias, one funnel block */
    size_t block_bytes, sp_bytes;
    char impl[64];
};

const char *eng_act_name(eng_act a)
{
    switch (a) {
    case ENG_ACT_NONE: return "none";
    case ENG_ACT_SILU: return "silu";
    case ENG_ACT_RELU: return "relu";
    case ENG_ACT_LEAKY_RELU: return "leaky_relu";
    case ENG_ACT_SIGMOID: return "sigmoid";
    }
    return "?";
}

static float act_ref(eng_act a, float alpha, double x)
{
    switch (a) {
    case ENG_ACT_NONE: return (float)x;
    case ENG_ACT_SILU: return (float)(x / (1.0 + exp(-x)));
    case ENG_ACT_RELU: return x > 0 ? (float)x : 0.0f;
    case ENG_ACT_LEAKY_RELU: return x > 0 ? (float)x : (float)(alpha * x);
    case ENG_ACT_SIGMOID: return (float)(1.0 / (1.0 + exp(-x)));
    }
    return (float)x;
}

void eng_conv_infer_ref(float *out, const float *in, const float *w, const float *b, const float *add,
                        const eng_conv_dims *d, eng_act act, float alpha)
{
    eng_conv2d_forward_ref(out, in, w, b, d);
    const size_t n = (size_t)d->n * d->oh * d->ow * d->o;
    for (size_t i = 0; i < n; i++) {
        float y = act_ref(act, alpha, out[i]);
        out[i] = add ? y + add[i] : y;
    }
}

static dnnl_status_t nhwc_md(dnnl_memory_desc_t *md, int n, int h, int w, int c)
{
    dnnl_dims_t dims = {n, c, h, w}; /* oneDNN names dims in NCHW order; the tag gives the layout */
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nhwc);
}

/* OHWI, and the same dims in the layout oneDNN may choose; as in
 * conv_dnnl.c, groups make the weights 5-D (g, o/g, i/g, kh, kw). */
static dnnl_status_t weights_md(dnnl_memory_desc_t *ohwi, dnnl_memory_desc_t *any, const eng_conv_dims *d)
{
    const dnnl_dim_t g = d->groups, og = d->o / g, cg = d->c / g, kh = d->kh, kw = d->kw;
    dnnl_status_t s;
    if (g == 1) {
        dnnl_dims_t dims = {d->o, cg, kh, kw}, str = {kh * kw * cg, 1, kw * cg, cg};
        if ((s = dnnl_memory_desc_init_by_strides(ohwi, 4, dims, dnnl_f32, str)) != dnnl_success) return s;
        return dnnl_memory_desc_init_by_tag(any, 4, dims, dnnl_f32, dnnl_format_tag_any);
    }
    dnnl_dims_t dims = {g, og, cg, kh, kw}, str = {og * kh * kw * cg, kh * kw * cg, 1, kw * cg, cg};
    if ((s = dnnl_memory_desc_init_by_strides(ohwi, 5, dims, dnnl_f32, str)) != dnnl_success) return s;
    return dnnl_memory_desc_init_by_tag(any, 5, dims, dnnl_f32, dnnl_format_tag_any);
}

static dnnl_alg_kind_t act_alg(eng_act a)
{
    switch (a) {
    case ENG_ACT_SILU: return dnnl_eltwise_swish;
    case ENG_ACT_RELU:
    case ENG_ACT_LEAKY_RELU: return dnnl_eltwise_relu;
    case ENG_ACT_SIGMOID: return dnnl_eltwise_logistic;
    default: return dnnl_alg_kind_undef;
    }
}

/* Builds the primitive and the weights for c (dims, act, with_add set);
 * on failure the caller frees c. */
static lupe_status build(eng_conv_infer *c, const float *w, const float *b, dnnl_engine_t eng)
{
    const eng_conv_dims *d = &c->d;
    lupe_status st = LUPE_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t m_w_ohwi = NULL;
    dnnl_memory_desc_t src, dst, w_ohwi, w_any, bias;
    DN(nhwc_md(&src, d->n, d->h, d->w, d->c), "input layout");
    DN(nhwc_md(&dst, d->n, d->oh, d->ow, d->o), "output layout");
    DN(weights_md(&w_ohwi, &w_any, d), "weights layout");
    dnnl_dims_t bdims = {d->o};
    DN(dnnl_memory_desc_init_by_tag(&bias, 1, bdims, dnnl_f32, dnnl_a), "bias layout");

    /* Padding as in conv_dnnl.c: the right/bottom padding is what the last
     * window uses, so top/left padding and the output size say it all
     * (asymmetric ONNX pads included). */
    const dnnl_dim_t pr_h = (dnnl_dim_t)(d->oh - 1) * d->sh + d->kh - d->h - d->ph;
    const dnnl_dim_t pr_w = (dnnl_dim_t)(d->ow - 1) * d->sw + d->kw - d->w - d->pw;
    dnnl_dims_t strides = {d->sh, d->sw}, pl = {d->ph, d->pw}, pr = {pr_h > 0 ? pr_h : 0, pr_w > 0 ? pr_w : 0};

    DN(dnnl_primitive_attr_create(&attr), "creating attributes");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "user scratchpad");
    if (c->act != ENG_ACT_NONE || c->with_add) {
        DN(dnnl_post_ops_create(&po), "creating post-ops");
        if (c->act == ENG_ACT_SILU)
            DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f), "SiLU post-op");
        else if (c->act != ENG_ACT_NONE)
            DN(dnnl_post_ops_append_eltwise(po, 1.0f, act_alg(c->act), c->act == ENG_ACT_LEAKY_RELU ? c->alpha : 0.0f,
                                            0.0f),
               "activation post-op");
        if (c->with_add) DN(dnnl_post_ops_append_binary(po, dnnl_binary_add, &dst), "residual add post-op");
        DN(dnnl_primitive_attr_set_post_ops(attr, po), "setting post-ops");
    }
    dnnl_convolution_desc_t cd;
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &w_any,
                                          b ? &bias : NULL, &dst, strides, pl, pr),
       "inference convolution");
    DN(dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL), "inference convolution");
    const dnnl_memory_desc_t w_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    c->sp_bytes = spmd ? eng__dnnl_round(dnnl_memory_desc_get_size(spmd)) : 0;
    if (c->sp_bytes) DN(dnnl_memory_create(&c->m_sp, spmd, eng, DNNL_MEMORY_NONE), "scratchpad");
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) impl = "?";
    snprintf(c->impl, sizeof c->impl, "%s", impl);
    DN(dnnl_primitive_create(&c->p, pd), "inference convolution");

    /* The handle's block: weights in the primitive's layout, then the bias. */
    const size_t wb = eng__dnnl_round(dnnl_memory_desc_get_size(&w_md));
    c->block_bytes = ENG__DNNL_ALIGN + wb + eng__dnnl_round((size_t)d->o * sizeof(float));
    if (!(c->block = lupe_malloc(c->block_bytes))) {
        st = lupe_err_ctx(LUPE_ENOMEM, "inference convolution weights");
        goto out;
    }
    char *blk = eng__dnnl_align(c->block);
    DN(dnnl_memory_create(&c->m_w, &w_md, eng, blk), "weights");
    if (b) {
        memcpy(blk + wb, b, (size_t)d->o * sizeof(float));
        DN(dnnl_memory_create(&c->m_b, &bias, eng, blk + wb), "bias");
    }
    /* One reorder, now, from the caller's OHWI weights. */
    DN(dnnl_memory_create(&m_w_ohwi, &w_ohwi, eng, (void *)(uintptr_t)w), "weights");
    DN(dnnl_reorder_primitive_desc_create(&rpd, &w_ohwi, eng, &w_md, eng, NULL), "reordering weights");
    DN(dnnl_primitive_create(&reorder, rpd), "reordering weights");
    DN(dnnl_stream_create(&c->stream, eng, dnnl_stream_default_flags), "creating a stream");
    dnnl_exec_arg_t ra[] = {{DNNL_ARG_FROM, m_w_ohwi}, {DNNL_ARG_TO, c->m_w}};
    DN(dnnl_primitive_execute(reorder, c->stream, 2, ra), "reordering weights");
    DN(dnnl_stream_wait(c->stream), "reordering weights");

    DN(dnnl_memory_create(&c->m_in, &src, eng, DNNL_MEMORY_NONE), "input");
    DN(dnnl_memory_create(&c->m_out, &dst, eng, DNNL_MEMORY_NONE), "output");
    if (c->with_add) DN(dnnl_memory_create(&c->m_add, &dst, eng, DNNL_MEMORY_NONE), "residual");
out:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (m_w_ohwi) dnnl_memory_destroy(m_w_ohwi);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

lupe_status eng_conv_infer_new(const eng_conv_dims *d, const float *w, const float *b, eng_act act, float alpha,
                               int with_add, eng_conv_infer **out)
{
    assert(d && w && out && d->groups > 0 && d->oh > 0 && d->ow > 0);
    assert(act >= ENG_ACT_NONE && act <= ENG_ACT_SIGMOID);
    *out = NULL;
    dnnl_engine_t eng = NULL;
    lupe_status st = eng__dnnl_engine(&eng);
    if (st) return st;
    eng_conv_infer *c = lupe_calloc(1, sizeof *c);
    if (!c) return lupe_err_ctx(LUPE_ENOMEM, "inference convolution");
    c->d = *d;
    c->act = act;
    c->alpha = alpha;
    c->with_add = with_add != 0;
    c->threads = eng__threads_apply();
    if ((st = build(c, w, b, eng))) {
        eng_conv_infer_free(c);
        return lupe_err_ctx(st, "inference convolution n %d, %dx%d, c %d -> o %d, kernel %dx%d, stride %dx%d, groups %d",
                            d->n, d->h, d->w, d->c, d->o, d->kh, d->kw, d->sh, d->sw, d->groups);
    }
    if (strncmp(c->impl, "ref", 3) == 0)
        lupe_log_warn("oneDNN chose its reference kernel '%s' for an inference convolution: it is very slow", c->impl);
    *out = c;
    return LUPE_OK;
}

void eng_conv_infer_free(eng_conv_infer *c)
{
    if (!c) return;
    if (c->p) dnnl_primitive_destroy(c->p);
    dnnl_memory_t ms[] = {c->m_in, c->m_out, c->m_add, c->m_w, c->m_b, c->m_sp};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        if (ms[i]) dnnl_memory_destroy(ms[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    lupe_free(c->block);
    lupe_free(c);
}

size_t eng_conv_infer_scratch(const eng_conv_infer *c)
{
    return ENG__DNNL_ALIGN + c->sp_bytes;
}

size_t eng_conv_infer_bytes(const eng_conv_infer *c)
{
    return sizeof *c + c->block_bytes;
}

const char *eng_conv_infer_impl(const eng_conv_infer *c)
{
    return c->impl;
}

eng_act eng_conv_infer_act(const eng_conv_infer *c)
{
    return c->act;
}

static lupe_status bind(dnnl_memory_t m, const void *p)
{
    lupe_status st = LUPE_OK;
    DN(dnnl_memory_set_data_handle(m, (void *)(uintptr_t)p), "binding a buffer");
out:
    return st;
}

lupe_status eng_conv_infer_forward(eng_conv_infer *c, float *out, const float *in, const float *add, void *scratch)
{
    assert(c && out && in && (add != NULL) == c->with_add && scratch);
    lupe_status st;
    eng__threads_use(c->threads);
    if ((st = bind(c->m_in, in)) || (st = bind(c->m_out, out))) return st;
    dnnl_exec_arg_t a[6] = {{DNNL_ARG_SRC, c->m_in}, {DNNL_ARG_WEIGHTS, c->m_w}, {DNNL_ARG_DST, c->m_out}};
    int n = 3;
    if (c->m_b) a[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, c->m_b};
    if (c->with_add) {
        if ((st = bind(c->m_add, add))) return st;
        /* The binary post-op's second input: the post-op's index in the
         * chain (after the activation, if any) says which. */
        const int idx = c->act != ENG_ACT_NONE ? 1 : 0;
        a[n++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, c->m_add};
    }
    if (c->m_sp) {
        if ((st = bind(c->m_sp, eng__dnnl_align(scratch)))) return st;
        a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, c->m_sp};
    }
    lupe_status s2 = LUPE_OK;
    dnnl_status_t s = dnnl_primitive_execute(c->p, c->stream, n, a);
    if (s != dnnl_success) s2 = eng__dnnl_err(s, "inference convolution");
    return s2;
}
