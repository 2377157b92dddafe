/*
 * The fast convolution: oneDNN primitives for forward, backward-data and
 * backward-weights, created once per shape for NHWC activations and the
 * weight layouts oneDNN picks itself (format `any`; fixed layouts send it to
 * a reference kernel about 1000x slower). Reorders move the caller's OHWI
 * weights in and add the gradients back, so the contracts match the _ref ops.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dnnl_util.h"
#include "lupe/engine.h"

/* A primitive with its scratchpad, which lives in the caller's scratch. */
typedef struct prim {
    dnnl_primitive_t p;
    dnnl_memory_t sp;   /* NULL when the primitive needs none */
    size_t sp_bytes;
} prim;

struct eng_conv_fast {
    eng_conv_dims d;
    int with_bias, threads;
    eng_precision prec; /* ENG_PREC_F32 or ENG_PREC_BF16, as built */
    dnnl_stream_t stream;
    prim fwd, bwd_d, bwd_w;
    prim w_to_fwd, w_to_bwd_d; /* OHWI -> the layout each wants; no .p when it is OHWI */
    prim dw_add;               /* bwd_w's layout -> OHWI, summed into the caller's dw */
    prim din_add;              /* din += NHWC temporary (a binary add, in place) */
    prim in_to_lp, dout_to_lp; /* bf16 mode: f32 input / output gradient -> bf16 in the scratch */
    /* Memory objects over the caller's buffers (handles set per call), and
     * in bf16 mode over the scratch's bf16 copies of in and dout. */
    dnnl_memory_t m_in, m_out, m_w, m_dw, m_b, m_din, m_din_tmp, m_in_lp, m_dout_lp;
    /* Memory objects over the handle's block (handles set once). */
    dnnl_memory_t m_w_fwd, m_w_bwd_d, m_dw_int, m_db_int;
    void *block;        /* one funnel block for the four buffers above */
    float *db_int;
    size_t block_bytes;
    /* scratch: [din temporary][bf16 input][bf16 output gradient][largest
     * scratchpad]; the bf16 parts are 0 bytes in f32 mode. */
    size_t din_bytes, in_lp_bytes, dout_lp_bytes, sp_bytes;
    char impl[3][64];
};

/* OHWI as oneDNN sees it: with groups, weights are 5-D (g, o/g, i/g, kh,
 * kw); OHWI's o = g*(o/g) + oo, so g and oo nest in that order and the
 * strides say the rest. Without groups the 4-D (o, i, kh, kw) form keeps
 * oneDNN on its ungrouped kernels. */
static dnnl_status_t ohwi_md(dnnl_memory_desc_t *md, const eng_conv_dims *d)
{
    const dnnl_dim_t g = d->groups, og = d->o / g, cg = d->c / g, kh = d->kh, kw = d->kw;
    if (g == 1) {
        dnnl_dims_t dims = {d->o, cg, kh, kw}, str = {kh * kw * cg, 1, kw * cg, cg};
        return dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_f32, str);
    }
    dnnl_dims_t dims = {g, og, cg, kh, kw}, str = {og * kh * kw * cg, kh * kw * cg, 1, kw * cg, cg};
    return dnnl_memory_desc_init_by_strides(md, 5, dims, dnnl_f32, str);
}

static dnnl_status_t weights_any_md(dnnl_memory_desc_t *md, const eng_conv_dims *d, dnnl_data_type_t t)
{
    const dnnl_dim_t g = d->groups;
    if (g == 1) {
        dnnl_dims_t dims = {d->o, d->c, d->kh, d->kw};
        return dnnl_memory_desc_init_by_tag(md, 4, dims, t, dnnl_format_tag_any);
    }
    dnnl_dims_t dims = {g, d->o / g, d->c / g, d->kh, d->kw};
    return dnnl_memory_desc_init_by_tag(md, 5, dims, t, dnnl_format_tag_any);
}

static dnnl_status_t nhwc_md(dnnl_memory_desc_t *md, int n, int h, int w, int c, dnnl_data_type_t t)
{
    dnnl_dims_t dims = {n, c, h, w}; /* oneDNN names dims in NCHW order; the tag gives the layout */
    return dnnl_memory_desc_init_by_tag(md, 4, dims, t, dnnl_nhwc);
}

/* Creates the primitive of pd and its scratchpad memory object; destroys
 * pd either way. */
static lupe_status prim_make(prim *p, dnnl_primitive_desc_t pd, dnnl_engine_t eng, const char *what)
{
    lupe_status st = LUPE_OK;
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    p->sp_bytes = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    if (p->sp_bytes) DN(dnnl_memory_create(&p->sp, spmd, eng, DNNL_MEMORY_NONE), what);
    DN(dnnl_primitive_create(&p->p, pd), what);
out:
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static void prim_cleanup(prim *p)
{
    if (p->p) dnnl_primitive_destroy(p->p);
    if (p->sp) dnnl_memory_destroy(p->sp);
    memset(p, 0, sizeof *p);
}

/* Attributes every primitive here is made with: the scratchpad is ours
 * (so executing allocates nothing), and optionally dst += result. */
static lupe_status make_attr(dnnl_primitive_attr_t *attr, int sum)
{
    lupe_status st = LUPE_OK;
    dnnl_post_ops_t po = NULL;
    DN(dnnl_primitive_attr_create(attr), "creating attributes");
    DN(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user), "user scratchpad");
    if (sum) {
        DN(dnnl_post_ops_create(&po), "creating post-ops");
        DN(dnnl_post_ops_append_sum(po, 1.0f), "sum post-op");
        DN(dnnl_primitive_attr_set_post_ops(*attr, po), "setting post-ops");
    }
out:
    if (po) dnnl_post_ops_destroy(po);
    return st;
}

static lupe_status reorder_make(prim *p, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst, int sum,
                                dnnl_engine_t eng, const char *what)
{
    lupe_status st = LUPE_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if ((st = make_attr(&attr, sum))) goto out;
    DN(dnnl_reorder_primitive_desc_create(&pd, src, eng, dst, eng, attr), what);
    st = prim_make(p, pd, eng, what);
out:
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

static void impl_name(char *dst, size_t n, const prim *p)
{
    const_dnnl_primitive_desc_t pd = NULL;
    const char *s = NULL;
    if (dnnl_primitive_get_primitive_desc(p->p, &pd) != dnnl_success ||
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s)
        s = "?";
    snprintf(dst, n, "%s", s);
}

static int any_ref(const eng_conv_fast *c)
{
    for (int p = 0; p < 3; p++)
        if (strncmp(c->impl[p], "ref", 3) == 0) return 1;
    return 0;
}

/* Builds everything for c->prec; on failure the caller tears c down.
 * f32 mode: every tensor f32. bf16 mode: the convolutions read bf16 (src,
 * weights, diff_dst) and write f32 (dst, diff_src, diff_weights, bias and
 * its gradient); `src`/`dst` below are the f32 tensors the caller sees,
 * `src_c`/`dst_c` what the convolutions read. */
static lupe_status build(eng_conv_fast *c, dnnl_engine_t eng)
{
    const eng_conv_dims *d = &c->d;
    const int lp = c->prec == ENG_PREC_BF16;
    const dnnl_data_type_t ct = lp ? dnnl_bf16 : dnnl_f32;
    lupe_status st = LUPE_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
    dnnl_memory_desc_t src, dst, src_c, dst_c, w_any, dw_any, w_ohwi, bias, w_fwd, w_bwd_d, dw_int;
    DN(nhwc_md(&src, d->n, d->h, d->w, d->c, dnnl_f32), "input layout");
    DN(nhwc_md(&dst, d->n, d->oh, d->ow, d->o, dnnl_f32), "output layout");
    DN(nhwc_md(&src_c, d->n, d->h, d->w, d->c, ct), "input layout");
    DN(nhwc_md(&dst_c, d->n, d->oh, d->ow, d->o, ct), "output layout");
    DN(weights_any_md(&w_any, d, ct), "weights layout");
    DN(weights_any_md(&dw_any, d, dnnl_f32), "weights layout");
    DN(ohwi_md(&w_ohwi, d), "OHWI layout");
    dnnl_dims_t bdims = {d->o};
    DN(dnnl_memory_desc_init_by_tag(&bias, 1, bdims, dnnl_f32, dnnl_a), "bias layout");

    /* The reference pads ph on both sides and floors the output size; the
     * right padding oneDNN needs is what the last window actually uses,
     * which may be less than ph (never negative). */
    const dnnl_dim_t pr_h = (dnnl_dim_t)(d->oh - 1) * d->sh + d->kh - d->h - d->ph;
    const dnnl_dim_t pr_w = (dnnl_dim_t)(d->ow - 1) * d->sw + d->kw - d->w - d->pw;
    dnnl_dims_t strides = {d->sh, d->sw}, pl = {d->ph, d->pw}, pr = {pr_h > 0 ? pr_h : 0, pr_w > 0 ? pr_w : 0};
    const dnnl_memory_desc_t *bias_md = c->with_bias ? &bias : NULL;

    if ((st = make_attr(&attr, 0))) goto out;
    dnnl_convolution_desc_t cd;
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src_c, &w_any,
                                          bias_md, &dst, strides, pl, pr),
       "forward convolution");
    DN(dnnl_primitive_desc_create(&fwd_pd, &cd, attr, eng, NULL), "forward convolution");
    w_fwd = *dnnl_primitive_desc_query_md(fwd_pd, dnnl_query_weights_md, 0);

    DN(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src, &w_any, &dst_c, strides, pl, pr),
       "backward-data convolution");
    DN(dnnl_primitive_desc_create(&pd, &cd, attr, eng, fwd_pd), "backward-data convolution");
    w_bwd_d = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    st = prim_make(&c->bwd_d, pd, eng, "backward-data convolution");
    pd = NULL;
    if (st) goto out;

    DN(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src_c, &dw_any, bias_md, &dst_c,
                                                   strides, pl, pr),
       "backward-weights convolution");
    DN(dnnl_primitive_desc_create(&pd, &cd, attr, eng, fwd_pd), "backward-weights convolution");
    dw_int = *dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0);
    st = prim_make(&c->bwd_w, pd, eng, "backward-weights convolution");
    pd = NULL;
    if (st) goto out;
    st = prim_make(&c->fwd, fwd_pd, eng, "forward convolution");
    fwd_pd = NULL;
    if (st) goto out;

    /* The handle's block: weights in each layout that is not OHWI, the
     * weight gradient in backward-weights' layout, the bias gradient. */
    const int fwd_ohwi = dnnl_memory_desc_equal(&w_fwd, &w_ohwi), bwd_ohwi = dnnl_memory_desc_equal(&w_bwd_d, &w_ohwi);
    const size_t b_fwd = fwd_ohwi ? 0 : eng__dnnl_round(dnnl_memory_desc_get_size(&w_fwd));
    const size_t b_bwd = bwd_ohwi ? 0 : eng__dnnl_round(dnnl_memory_desc_get_size(&w_bwd_d));
    const size_t b_dw = eng__dnnl_round(dnnl_memory_desc_get_size(&dw_int));
    const size_t b_db = eng__dnnl_round((size_t)d->o * sizeof(float));
    c->block_bytes = ENG__DNNL_ALIGN + b_fwd + b_bwd + b_dw + b_db;
    c->block = lupe_calloc(1, c->block_bytes);
    if (!c->block) {
        st = lupe_err_ctx(LUPE_ENOMEM, "fast convolution weights");
        goto out;
    }
    char *blk = eng__dnnl_align(c->block);
    if (!fwd_ohwi) DN(dnnl_memory_create(&c->m_w_fwd, &w_fwd, eng, blk), "forward weights");
    if (!bwd_ohwi) DN(dnnl_memory_create(&c->m_w_bwd_d, &w_bwd_d, eng, blk + b_fwd), "backward weights");
    DN(dnnl_memory_create(&c->m_dw_int, &dw_int, eng, blk + b_fwd + b_bwd), "weight gradient");
    c->db_int = (float *)(void *)(blk + b_fwd + b_bwd + b_dw); /* 64-byte aligned */
    DN(dnnl_memory_create(&c->m_db_int, &bias, eng, c->db_int), "bias gradient");

    /* Memory objects for the caller's buffers: handles come with each call. */
    DN(dnnl_memory_create(&c->m_in, &src, eng, DNNL_MEMORY_NONE), "input");
    DN(dnnl_memory_create(&c->m_din, &src, eng, DNNL_MEMORY_NONE), "input gradient");
    DN(dnnl_memory_create(&c->m_din_tmp, &src, eng, DNNL_MEMORY_NONE), "input gradient");
    DN(dnnl_memory_create(&c->m_out, &dst, eng, DNNL_MEMORY_NONE), "output");
    DN(dnnl_memory_create(&c->m_w, &w_ohwi, eng, DNNL_MEMORY_NONE), "weights");
    DN(dnnl_memory_create(&c->m_dw, &w_ohwi, eng, DNNL_MEMORY_NONE), "weight gradient");
    DN(dnnl_memory_create(&c->m_b, &bias, eng, DNNL_MEMORY_NONE), "bias");
    if (lp) {
        DN(dnnl_memory_create(&c->m_in_lp, &src_c, eng, DNNL_MEMORY_NONE), "bf16 input");
        DN(dnnl_memory_create(&c->m_dout_lp, &dst_c, eng, DNNL_MEMORY_NONE), "bf16 output gradient");
        if ((st = reorder_make(&c->in_to_lp, &src, &src_c, 0, eng, "input to bf16"))) goto out;
        if ((st = reorder_make(&c->dout_to_lp, &dst, &dst_c, 0, eng, "output gradient to bf16"))) goto out;
        c->in_lp_bytes = eng__dnnl_round(dnnl_memory_desc_get_size(&src_c));
        c->dout_lp_bytes = eng__dnnl_round(dnnl_memory_desc_get_size(&dst_c));
    }

    if (!fwd_ohwi && (st = reorder_make(&c->w_to_fwd, &w_ohwi, &w_fwd, 0, eng, "weights to forward layout")))
        goto out;
    if (!bwd_ohwi && (st = reorder_make(&c->w_to_bwd_d, &w_ohwi, &w_bwd_d, 0, eng, "weights to backward layout")))
        goto out;
    if ((st = reorder_make(&c->dw_add, &dw_int, &w_ohwi, 1, eng, "adding the weight gradient"))) goto out;
    /* A reorder with a sum post-op would do too, but for NHWC to NHWC
     * oneDNN 2.6 picks its generic element-wise reorder; binary add is a
     * JIT kernel at memory speed. */
    dnnl_binary_desc_t bd;
    DN(dnnl_binary_desc_init(&bd, dnnl_binary_add, &src, &src, &src), "adding the input gradient");
    DN(dnnl_primitive_desc_create(&pd, &bd, attr, eng, NULL), "adding the input gradient");
    st = prim_make(&c->din_add, pd, eng, "adding the input gradient");
    pd = NULL;
    if (st) goto out;

    c->din_bytes = eng__dnnl_round(dnnl_memory_desc_get_size(&src));
    const prim *all[] = {&c->fwd,    &c->bwd_d,   &c->bwd_w,    &c->w_to_fwd,  &c->w_to_bwd_d,
                         &c->dw_add, &c->din_add, &c->in_to_lp, &c->dout_to_lp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->sp_bytes > c->sp_bytes) c->sp_bytes = all[i]->sp_bytes;
    c->sp_bytes = eng__dnnl_round(c->sp_bytes);
    impl_name(c->impl[ENG_CONV_FWD], sizeof c->impl[0], &c->fwd);
    impl_name(c->impl[ENG_CONV_BWD_DATA], sizeof c->impl[0], &c->bwd_d);
    impl_name(c->impl[ENG_CONV_BWD_WEIGHTS], sizeof c->impl[0], &c->bwd_w);
    DN(dnnl_stream_create(&c->stream, eng, dnnl_stream_default_flags), "creating a stream");
out:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

int eng_bf16_supported(void)
{
    /* Effective: what oneDNN will use, so ONEDNN_MAX_CPU_ISA limits it too.
     * The enum is not ordered by capability (avx2_vnni is above amx). */
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}

/* What AUTO means now: LUPE_PRECISION if set (f32 or bf16), else bf16
 * where the CPU has it. An unknown value is warned about and ignored. */
static eng_precision resolve_auto(void)
{
    const char *e = getenv("LUPE_PRECISION");
    if (e && *e) {
        if (strcmp(e, "f32") == 0) return ENG_PREC_F32;
        if (strcmp(e, "bf16") == 0) return ENG_PREC_BF16;
        lupe_log_warn("LUPE_PRECISION='%s' is neither f32 nor bf16: ignored", e);
    }
    return ENG_PREC_BF16;
}

/* Frees what build made, leaving the dims and settings, so that c can be
 * built again (the bf16 -> f32 fallback) or freed. */
static void teardown(eng_conv_fast *c)
{
    prim *ps[] = {&c->fwd,    &c->bwd_d,   &c->bwd_w,    &c->w_to_fwd,  &c->w_to_bwd_d,
                  &c->dw_add, &c->din_add, &c->in_to_lp, &c->dout_to_lp};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) prim_cleanup(ps[i]);
    dnnl_memory_t *ms[] = {&c->m_in,    &c->m_out,     &c->m_w,     &c->m_dw,       &c->m_b,      &c->m_din,
                           &c->m_din_tmp, &c->m_in_lp, &c->m_dout_lp, &c->m_w_fwd, &c->m_w_bwd_d, &c->m_dw_int,
                           &c->m_db_int};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        if (*ms[i]) dnnl_memory_destroy(*ms[i]), *ms[i] = NULL;
    if (c->stream) dnnl_stream_destroy(c->stream), c->stream = NULL;
    lupe_free(c->block);
    c->block = NULL, c->db_int = NULL, c->block_bytes = 0;
    c->din_bytes = c->in_lp_bytes = c->dout_lp_bytes = c->sp_bytes = 0;
    memset(c->impl, 0, sizeof c->impl);
}

lupe_status eng_conv_fast_new_prec(const eng_conv_dims *d, int with_bias, eng_precision p, eng_conv_fast **out)
{
    assert(d && out && d->groups > 0 && d->oh > 0 && d->ow > 0);
    assert(p == ENG_PREC_F32 || p == ENG_PREC_BF16 || p == ENG_PREC_AUTO);
    *out = NULL;
    dnnl_engine_t eng = NULL;
    lupe_status st = eng__dnnl_engine(&eng);
    if (st) return st;
    if (p == ENG_PREC_AUTO) p = resolve_auto();
    /* bf16 without the instructions would be oneDNN's emulation or its
     * reference kernels, slower than f32: not what anyone asking wants. */
    if (p == ENG_PREC_BF16 && !eng_bf16_supported()) p = ENG_PREC_F32;
    /* oneDNN 2.6's bf16 1x1 backward-data kernel for AVX512_BF16 without
     * AMX (jit_bf16_1x1:avx512_core_bf16, AMD Zen 5) returns a wrong input
     * gradient when the output channels are not a multiple of 16, at some
     * sizes (60x60 and 30x30 but not 40x40: relative error 0.25-1.0; 3x3
     * kernels are right); the detector's class convolutions (1x1, o = nc)
     * hit it at 480 and stopped learning. Such convolutions are the head's
     * last, tiny ones: f32 costs nothing measurable. test_conv_dnnl.c keeps
     * the case. */
    if (p == ENG_PREC_BF16 && d->kh == 1 && d->kw == 1 && d->o % 16 != 0) p = ENG_PREC_F32;
    eng_conv_fast *c = lupe_calloc(1, sizeof *c);
    if (!c) return lupe_err_ctx(LUPE_ENOMEM, "fast convolution");
    c->d = *d;
    c->with_bias = with_bias != 0;
    c->threads = eng__threads_apply();
    c->prec = p;
    st = build(c, eng);
    /* A shape oneDNN has no bf16 kernel for (or only its reference one)
     * runs in f32 instead: slower than bf16, but not an error. Out of
     * memory stays an error. */
    if (c->prec == ENG_PREC_BF16 && (st == LUPE_EUNSUPPORTED || (!st && any_ref(c)))) {
        teardown(c);
        c->prec = ENG_PREC_F32;
        st = build(c, eng);
    }
    if (st) {
        eng_conv_fast_free(c);
        return lupe_err_ctx(st, "fast convolution n %d, %dx%d, c %d -> o %d, kernel %dx%d, stride %d, groups %d", d->n,
                            d->h, d->w, d->c, d->o, d->kh, d->kw, d->sh, d->groups);
    }
    for (int i = 0; i < 3; i++)
        if (strncmp(c->impl[i], "ref", 3) == 0)
            lupe_log_warn("oneDNN chose its reference kernel '%s' for a convolution: it is very slow", c->impl[i]);
    *out = c;
    return LUPE_OK;
}

lupe_status eng_conv_fast_new(const eng_conv_dims *d, int with_bias, eng_conv_fast **out)
{
    return eng_conv_fast_new_prec(d, with_bias, ENG_PREC_F32, out);
}

eng_precision eng_conv_fast_precision(const eng_conv_fast *c)
{
    return c->prec;
}

void eng_conv_fast_free(eng_conv_fast *c)
{
    if (!c) return;
    teardown(c);
    lupe_free(c);
}

size_t eng_conv_fast_scratch(const eng_conv_fast *c)
{
    return ENG__DNNL_ALIGN + c->din_bytes + c->in_lp_bytes + c->dout_lp_bytes + c->sp_bytes;
}

size_t eng_conv_fast_bytes(const eng_conv_fast *c)
{
    return sizeof *c + c->block_bytes;
}

const char *eng_conv_fast_impl(const eng_conv_fast *c, eng_conv_pass pass)
{
    assert(pass >= ENG_CONV_FWD && pass <= ENG_CONV_BWD_WEIGHTS);
    return c->impl[pass];
}

/* Points a memory object at a caller's buffer. oneDNN takes void * for
 * every buffer; it does not write the inputs it is given. */
static lupe_status bind(dnnl_memory_t m, const void *p)
{
    lupe_status st = LUPE_OK;
    DN(dnnl_memory_set_data_handle(m, (void *)(uintptr_t)p), "binding a buffer");
out:
    return st;
}

#define MAX_ARGS 6

/* Runs p with args (up to MAX_ARGS - 1) plus its scratchpad at sp. */
static lupe_status run(eng_conv_fast *c, prim *p, const dnnl_exec_arg_t *args, int nargs, char *sp, const char *what)
{
    lupe_status st = LUPE_OK;
    dnnl_exec_arg_t all[MAX_ARGS];
    assert(nargs < MAX_ARGS);
    memcpy(all, args, (size_t)nargs * sizeof *args);
    if (p->sp) {
        if ((st = bind(p->sp, sp))) goto out;
        all[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->sp};
    }
    DN(dnnl_primitive_execute(p->p, c->stream, nargs, all), what);
out:
    return st;
}

/* The caller's scratch, aligned and cut up: [din temporary][bf16 input]
 * [bf16 output gradient][scratchpad]. */
typedef struct parts {
    char *din_tmp, *in_lp, *dout_lp, *sp;
} parts;

static parts scratch_parts(const eng_conv_fast *c, void *scratch)
{
    parts p;
    p.din_tmp = eng__dnnl_align(scratch);
    p.in_lp = p.din_tmp + c->din_bytes;
    p.dout_lp = p.in_lp + c->in_lp_bytes;
    p.sp = p.dout_lp + c->dout_lp_bytes;
    return p;
}

/* The memory the convolutions read for a caller's f32 tensor: the tensor
 * itself in f32 mode; in bf16 mode its bf16 copy at lp, made now unless
 * ready (the backward-weights pass reuses backward-data's copy of dout). */
static lupe_status to_compute(eng_conv_fast *c, prim *re, dnnl_memory_t f32m, dnnl_memory_t lpm, char *lp, char *sp,
                              int ready, dnnl_memory_t *use)
{
    lupe_status st;
    *use = f32m;
    if (c->prec != ENG_PREC_BF16) return LUPE_OK;
    if ((st = bind(lpm, lp))) return st;
    *use = lpm;
    if (ready) return LUPE_OK;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, f32m}, {DNNL_ARG_TO, lpm}};
    return run(c, re, a, 2, sp, "converting to bf16");
}

lupe_status eng_conv_fast_forward(eng_conv_fast *c, float *out, const float *in, const float *w, const float *b,
                                  void *scratch)
{
    assert(c && out && in && w && (b != NULL) == c->with_bias && scratch);
    lupe_status st;
    const parts sc = scratch_parts(c, scratch);
    eng__threads_use(c->threads);
    if ((st = bind(c->m_in, in)) || (st = bind(c->m_out, out)) || (st = bind(c->m_w, w))) return st;
    dnnl_memory_t wm = c->m_w, im;
    if (c->w_to_fwd.p) {
        dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, c->m_w}, {DNNL_ARG_TO, c->m_w_fwd}};
        if ((st = run(c, &c->w_to_fwd, a, 2, sc.sp, "reordering weights"))) return st;
        wm = c->m_w_fwd;
    }
    if ((st = to_compute(c, &c->in_to_lp, c->m_in, c->m_in_lp, sc.in_lp, sc.sp, 0, &im))) return st;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, im}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, c->m_out}, {DNNL_ARG_BIAS, c->m_b}};
    if (c->with_bias && (st = bind(c->m_b, b))) return st;
    return run(c, &c->fwd, a, c->with_bias ? 4 : 3, sc.sp, "forward convolution");
}

/* The input gradient into din (add = 0) or into the scratch's temporary
 * and then added to din. */
static lupe_status backward_data(eng_conv_fast *c, float *din, const float *dout, const float *w, void *scratch, int add)
{
    assert(c && din && dout && w && scratch);
    lupe_status st;
    const parts sc = scratch_parts(c, scratch);
    eng__threads_use(c->threads);
    if ((st = bind(c->m_out, dout)) || (st = bind(c->m_w, w)) || (st = bind(c->m_din, din)) ||
        (st = bind(c->m_din_tmp, sc.din_tmp)))
        return st;
    dnnl_memory_t wm = c->m_w, gm;
    if (c->w_to_bwd_d.p) {
        dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, c->m_w}, {DNNL_ARG_TO, c->m_w_bwd_d}};
        if ((st = run(c, &c->w_to_bwd_d, a, 2, sc.sp, "reordering weights"))) return st;
        wm = c->m_w_bwd_d;
    }
    if ((st = to_compute(c, &c->dout_to_lp, c->m_out, c->m_dout_lp, sc.dout_lp, sc.sp, 0, &gm))) return st;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_DIFF_DST, gm}, {DNNL_ARG_WEIGHTS, wm},
                           {DNNL_ARG_DIFF_SRC, add ? c->m_din_tmp : c->m_din}};
    if ((st = run(c, &c->bwd_d, a, 3, sc.sp, "backward-data convolution")) || !add) return st;
    dnnl_exec_arg_t s[] = {{DNNL_ARG_SRC_0, c->m_din}, {DNNL_ARG_SRC_1, c->m_din_tmp}, {DNNL_ARG_DST, c->m_din}};
    return run(c, &c->din_add, s, 3, sc.sp, "adding the input gradient");
}

lupe_status eng_conv_fast_backward_data(eng_conv_fast *c, float *din, const float *dout, const float *w, void *scratch)
{
    return backward_data(c, din, dout, w, scratch, 1);
}

lupe_status eng_conv_fast_backward_data_set(eng_conv_fast *c, float *din, const float *dout, const float *w,
                                            void *scratch)
{
    return backward_data(c, din, dout, w, scratch, 0);
}

/* dout_ready: the scratch already holds dout in bf16 (bf16 mode, right
 * after backward_data on the same dout). */
static lupe_status backward_weights(eng_conv_fast *c, float *dw, float *db, const float *dout, const float *in,
                                    void *scratch, int dout_ready)
{
    assert(c && dw && dout && in && scratch && (c->with_bias || !db));
    lupe_status st;
    const parts sc = scratch_parts(c, scratch);
    eng__threads_use(c->threads);
    if ((st = bind(c->m_in, in)) || (st = bind(c->m_out, dout)) || (st = bind(c->m_dw, dw))) return st;
    dnnl_memory_t im, gm;
    if ((st = to_compute(c, &c->in_to_lp, c->m_in, c->m_in_lp, sc.in_lp, sc.sp, 0, &im)) ||
        (st = to_compute(c, &c->dout_to_lp, c->m_out, c->m_dout_lp, sc.dout_lp, sc.sp, dout_ready, &gm)))
        return st;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, im}, {DNNL_ARG_DIFF_DST, gm}, {DNNL_ARG_DIFF_WEIGHTS, c->m_dw_int},
                           {DNNL_ARG_DIFF_BIAS, c->m_db_int}};
    if ((st = run(c, &c->bwd_w, a, c->with_bias ? 4 : 3, sc.sp, "backward-weights convolution"))) return st;
    dnnl_exec_arg_t s[] = {{DNNL_ARG_FROM, c->m_dw_int}, {DNNL_ARG_TO, c->m_dw}};
    if ((st = run(c, &c->dw_add, s, 2, sc.sp, "adding the weight gradient"))) return st;
    if (db)
        for (int o = 0; o < c->d.o; o++) db[o] += c->db_int[o];
    return LUPE_OK;
}

lupe_status eng_conv_fast_backward_weights(eng_conv_fast *c, float *dw, float *db, const float *dout, const float *in,
                                           void *scratch)
{
    return backward_weights(c, dw, db, dout, in, scratch, 0);
}

lupe_status eng_conv_fast_backward(eng_conv_fast *c, float *din, float *dw, float *db, const float *dout,
                                   const float *in, const float *w, void *scratch)
{
    lupe_status st;
    if (din && (st = eng_conv_fast_backward_data(c, din, dout, w, scratch))) return st;
    return backward_weights(c, dw, db, dout, in, scratch, din != NULL);
}
