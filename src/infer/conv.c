/*
 * The inference convolutions on oneDNN 2.6: one forward-inference primitive
 * per convolution, created once for its element types (f32, bf16, or int8
 * with per-output-channel weight scales), with batch norm already folded
 * into its weights and bias and SiLU as an eltwise post-op. Weights are
 * converted and reordered into the kernel's own layout once, at load;
 * memory objects point at the planned arena, so a run only executes.
 *
 * int8 arithmetic (oneDNN 2.x semantics, checked in tests/infer): the
 * kernel computes acc = sum(x_q * w_q) in s32, adds the bias it is given
 * and multiplies by the output scale, then applies the post-ops; so with
 * x = x_q * sx, w = w_q * sw[o], y = y_q * sy:
 *     bias given = b / (sx * sw[o]),  output scale = sx * sw[o],
 *     SiLU post-op with scale 1 / sy (applied after the activation),
 * and without an activation the output scale is sx * sw[o] / sy. A fused
 * residual is a sum post-op with scale 1: the destination's previous
 * contents, in units of sy, are added last.
 */
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "infer/infer_internal.h"

#define DN(call, what)                                                                                                 \
    do {                                                                                                               \
        dnnl_status_t s_ = (call);                                                                                     \
        if (s_ != dnnl_success) {                                                                                      \
            st = inf__dnnl_err(s_, what);                                                                              \
            goto out;                                                                                                  \
        }                                                                                                              \
    } while (0)

lupe_status inf__dnnl_err(dnnl_status_t s, const char *what)
{
    lupe_status st = s == dnnl_out_of_memory ? LUPE_ENOMEM : s == dnnl_unimplemented ? LUPE_EUNSUPPORTED : LUPE_EINTERNAL;
    const char *name = s == dnnl_out_of_memory           ? "out of memory"
                       : s == dnnl_invalid_arguments     ? "invalid arguments"
                       : s == dnnl_unimplemented         ? "no implementation for these shapes and types"
                       : s == dnnl_runtime_error         ? "runtime error"
                                                         : "failure";
    return lupe_err(st, "%s: oneDNN: %s (status %d)", what, name, (int)s);
}

lupe_status inf__dnnl_init(inf_model *m)
{
    lupe_status st = LUPE_OK;
    DN(dnnl_engine_create(&m->eng, dnnl_cpu, 0), "creating the oneDNN CPU engine");
    DN(dnnl_stream_create(&m->stream, m->eng, dnnl_stream_default_flags), "creating a oneDNN stream");
out:
    return st;
}

static dnnl_data_type_t dnnl_type(int dt)
{
    return dt == INF__F32 ? dnnl_f32 : dt == INF__BF16 ? dnnl_bf16 : dt == INF__S8 ? dnnl_s8 : dnnl_u8;
}

static int is_int8(int dt)
{
    return dt == INF__S8 || dt == INF__U8;
}

static dnnl_status_t nhwc_md(dnnl_memory_desc_t *md, int n, int h, int w, int c, int dt)
{
    dnnl_dims_t dims = {n, c, h, w};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_type(dt), dnnl_nhwc);
}

/* Weights as oneDNN names them: (o, i, kh, kw), or (g, o/g, i/g, kh, kw)
 * with groups; `any` lets the kernel choose its layout, OHWI is ours. */
static dnnl_status_t weights_md(dnnl_memory_desc_t *md, const eng_conv_dims *d, dnnl_data_type_t t, int any)
{
    const dnnl_dim_t g = d->groups, og = d->o / g, cg = d->c / g, kh = d->kh, kw = d->kw;
    if (g == 1) {
        dnnl_dims_t dims = {d->o, cg, kh, kw}, str = {kh * kw * cg, 1, kw * cg, cg};
        return any ? dnnl_memory_desc_init_by_tag(md, 4, dims, t, dnnl_format_tag_any)
                   : dnnl_memory_desc_init_by_strides(md, 4, dims, t, str);
    }
    dnnl_dims_t dims = {g, og, cg, kh, kw}, str = {og * kh * kw * cg, kh * kw * cg, 1, kw * cg, cg};
    return any ? dnnl_memory_desc_init_by_tag(md, 5, dims, t, dnnl_format_tag_any)
               : dnnl_memory_desc_init_by_strides(md, 5, dims, t, str);
}

lupe_status inf__conv_create(inf_model *m, int i)
{
    inf__conv *c = &m->cv[i];
    const eng_conv_dims *d = &c->d;
    const inf__val *sv = &m->v[c->src], *dv = &m->v[c->dst];
    const int q = is_int8(sv->dt);
    const dnnl_data_type_t wt = q ? dnnl_s8 : dnnl_type(sv->dt);
    lupe_status st = LUPE_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    float *oscale = NULL;
    char what[160];
    snprintf(what, sizeof what, "convolution %s (%s -> %s)", dv->name, inf__dt_name(sv->dt), inf__dt_name(dv->dt));
    if (q && dv->dt == INF__BF16) return lupe_err(LUPE_EINTERNAL, "%s: int8 to bf16 is not planned", what);

    dnnl_memory_desc_t src, dst, wany, bias;
    DN(nhwc_md(&src, d->n, d->h, d->w, d->c, sv->dt), what);
    DN(nhwc_md(&dst, d->n, d->oh, d->ow, d->o, dv->dt), what);
    DN(weights_md(&wany, d, wt, 1), what);
    dnnl_dims_t bdims = {d->o};
    DN(dnnl_memory_desc_init_by_tag(&bias, 1, bdims, dnnl_f32, dnnl_a), what);
    /* Right padding: what the last window uses (see conv_dnnl.c). */
    const dnnl_dim_t pr_h = (dnnl_dim_t)(d->oh - 1) * d->sh + d->kh - d->h - d->ph;
    const dnnl_dim_t pr_w = (dnnl_dim_t)(d->ow - 1) * d->sw + d->kw - d->w - d->pw;
    dnnl_dims_t strides = {d->sh, d->sw}, pl = {d->ph, d->pw}, pr = {pr_h > 0 ? pr_h : 0, pr_w > 0 ? pr_w : 0};

    DN(dnnl_primitive_attr_create(&attr), what);
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), what);
    DN(dnnl_post_ops_create(&po), what);
    float act_scale = 1.0f;
    if (q) {
        /* Per output channel: the largest |w| maps to 127. */
        const size_t per = (size_t)d->kh * d->kw * (d->c / d->groups);
        c->wscale = lupe_malloc((size_t)d->o * sizeof *c->wscale);
        oscale = lupe_malloc((size_t)d->o * sizeof *oscale);
        if (!c->wscale || !oscale) {
            st = LUPE_ENOMEM;
            goto out;
        }
        const float sy = is_int8(dv->dt) ? dv->scale : 1.0f;
        for (int o = 0; o < d->o; o++) {
            float a = 0;
            for (size_t k = 0; k < per; k++) a = fmaxf(a, fabsf(c->w[(size_t)o * per + k]));
            c->wscale[o] = a > 0 ? a / 127.0f : 1.0f;
            oscale[o] = sv->scale * c->wscale[o] / (c->act ? 1.0f : sy);
        }
        act_scale = c->act ? 1.0f / sy : 1.0f;
        DN(dnnl_primitive_attr_set_output_scales(attr, d->o, 1 << 1, oscale), what);
    }
    if (c->act) DN(dnnl_post_ops_append_eltwise(po, act_scale, dnnl_eltwise_swish, 1.0f, 0.0f), what);
    /* A residual: the destination holds it (in the destination's type and
     * int8 scale, which the planner made the same) before the call. */
    if (c->sum) DN(dnnl_post_ops_append_sum(po, 1.0f), what);
    DN(dnnl_primitive_attr_set_post_ops(attr, po), what);

    dnnl_convolution_desc_t cd;
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wany, &bias,
                                          &dst, strides, pl, pr),
       what);
    DN(dnnl_primitive_desc_create(&pd, &cd, attr, m->eng, NULL), what);
    c->wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    c->w_bytes = dnnl_memory_desc_get_size(&c->wmd);
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    c->sp_bytes = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) impl = "?";
    snprintf(c->impl, sizeof c->impl, "%s", impl);
    if (!strncmp(c->impl, "ref", 3))
        lupe_log_warn("%s: oneDNN chose its reference kernel '%s': it is very slow", what, c->impl);
    DN(dnnl_primitive_create(&c->p, pd), what);
out:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    lupe_free(oscale);
    return st;
}

/* Runs a one-off reorder of src (at from) into dst (at to); scales: per
 * output channel multipliers (the weights' first dimensions), or NULL. */
static lupe_status reorder(inf_model *m, const dnnl_memory_desc_t *src, const void *from, const dnnl_memory_desc_t *dst,
                           void *to, const float *scales, int nscales, int mask)
{
    lupe_status st = LUPE_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t p = NULL;
    dnnl_memory_t ms = NULL, md = NULL;
    DN(dnnl_primitive_attr_create(&attr), "weights reorder");
    if (scales) DN(dnnl_primitive_attr_set_output_scales(attr, nscales, mask, scales), "weights reorder");
    DN(dnnl_reorder_primitive_desc_create(&pd, src, m->eng, dst, m->eng, attr), "weights reorder");
    DN(dnnl_primitive_create(&p, pd), "weights reorder");
    DN(dnnl_memory_create(&ms, src, m->eng, (void *)(uintptr_t)from), "weights reorder");
    DN(dnnl_memory_create(&md, dst, m->eng, to), "weights reorder");
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
    DN(dnnl_primitive_execute(p, m->stream, 2, a), "weights reorder");
    DN(dnnl_stream_wait(m->stream), "weights reorder");
out:
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    if (p) dnnl_primitive_destroy(p);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

lupe_status inf__conv_bind(inf_model *m, int i)
{
    inf__conv *c = &m->cv[i];
    const eng_conv_dims *d = &c->d;
    const inf__val *sv = &m->v[c->src], *dv = &m->v[c->dst];
    const int q = is_int8(sv->dt);
    lupe_status st = LUPE_OK;
    float *inv = NULL;
    char *w = m->wbase + c->w_off;
    float *b = (float *)(void *)(m->wbase + c->b_off);
    char what[160];
    snprintf(what, sizeof what, "convolution %s", dv->name);

    /* Weights: f32 OHWI into the kernel's layout and type; int8 through
     * the reorder's output scales 1 / sw[o] (round to nearest even). */
    dnnl_memory_desc_t ohwi;
    DN(weights_md(&ohwi, d, dnnl_f32, 0), what);
    if (q) {
        if (!(inv = lupe_malloc((size_t)d->o * sizeof *inv))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        for (int o = 0; o < d->o; o++) inv[o] = 1.0f / c->wscale[o];
        /* Output channels are dimension 0, or 0 and 1 with groups. */
        if ((st = reorder(m, &ohwi, c->w, &c->wmd, w, inv, d->o, d->groups == 1 ? 1 : 3))) goto out;
        for (int o = 0; o < d->o; o++) b[o] = c->b[o] / (sv->scale * c->wscale[o]);
    } else {
        if ((st = reorder(m, &ohwi, c->w, &c->wmd, w, NULL, 0, 0))) goto out;
        memcpy(b, c->b, (size_t)d->o * sizeof *b);
    }

    dnnl_memory_desc_t src, dst, bias;
    DN(nhwc_md(&src, d->n, d->h, d->w, d->c, sv->dt), what);
    DN(nhwc_md(&dst, d->n, d->oh, d->ow, d->o, dv->dt), what);
    dnnl_dims_t bdims = {d->o};
    DN(dnnl_memory_desc_init_by_tag(&bias, 1, bdims, dnnl_f32, dnnl_a), what);
    inf__view vs = inf__view_of(m, c->src), vd = inf__view_of(m, c->dst);
    DN(dnnl_memory_create(&c->m_src, &src, m->eng, vs.p), what);
    DN(dnnl_memory_create(&c->m_dst, &dst, m->eng, vd.p), what);
    DN(dnnl_memory_create(&c->m_w, &c->wmd, m->eng, w), what);
    DN(dnnl_memory_create(&c->m_b, &bias, m->eng, b), what);
    if (c->sp_bytes) {
        dnnl_memory_desc_t sp;
        dnnl_dims_t sdims = {(dnnl_dim_t)c->sp_bytes};
        DN(dnnl_memory_desc_init_by_tag(&sp, 1, sdims, dnnl_u8, dnnl_a), what);
        DN(dnnl_memory_create(&c->m_sp, &sp, m->eng, m->base + m->act_bytes), what);
    }
out:
    lupe_free(inv);
    return st;
}

lupe_status inf__conv_run(inf_model *m, int i)
{
    inf__conv *c = &m->cv[i];
    lupe_status st = LUPE_OK;
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, c->m_src}, {DNNL_ARG_WEIGHTS, c->m_w}, {DNNL_ARG_BIAS, c->m_b},
                            {DNNL_ARG_DST, c->m_dst}, {DNNL_ARG_SCRATCHPAD, c->m_sp}};
    DN(dnnl_primitive_execute(c->p, m->stream, c->m_sp ? 5 : 4, a), m->v[c->dst].name);
out:
    return st;
}

void inf__conv_cleanup(inf__conv *c)
{
    if (c->p) dnnl_primitive_destroy(c->p);
    dnnl_memory_t ms[] = {c->m_src, c->m_w, c->m_b, c->m_dst, c->m_sp};
    for (size_t k = 0; k < sizeof ms / sizeof *ms; k++)
        if (ms[k]) dnnl_memory_destroy(ms[k]);
    lupe_free(c->w), lupe_free(c->b), lupe_free(c->wscale);
    memset(c, 0, sizeof *c);
}
