/*
 * Planning an imported graph once, at load: fusion (batch norm into the
 * convolution's weights; x * sigmoid(x) into SiLU; activations into the
 * convolution as a oneDNN post-op), layouts (the convolutions
 * read and write NHWC; the other ops either follow their input's layout or
 * need ONNX's plain order, and conversions are added where a consumer
 * needs the other one), the run-time steps, and one arena in which buffers
 * whose lifetimes do not overlap share memory.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/net_internal.h"

typedef struct plan {
    ox_ctx *c;
    onnx_net *net;
    ox_step *steps;
    int nsteps, cap_steps;
    ox_buf *bufs;
    int nbufs, cap_bufs;
    int *consumer; /* per value: the one run-time consumer node when nuse == 1 */
    size_t scratch;
    float **cptr;  /* per value: constant data copied for the steps, or NULL */
} plan;

/* ---- uses and fusion --------------------------------------------------------- */
static int reads_at_run_time(const ox_node *n, int i)
{
    /* A convolution's weights and bias are baked into its handle. */
    return !(n->kind == K_CONV && i > 0);
}

static void count_uses(plan *P)
{
    ox_ctx *c = P->c;
    for (int i = 0; i < c->nv; i++) c->v[i].nuse = 0, P->consumer[i] = -1;
    for (int k = 0; k < c->nn; k++) {
        const ox_node *n = &c->n[k];
        if (n->kind == K_NONE) continue;
        for (int i = 0; i < n->nin; i++) {
            const int id = n->in[i];
            if (id < 0 || c->v[id].is_const || !reads_at_run_time(n, i)) continue;
            c->v[id].nuse++;
            P->consumer[id] = k;
        }
    }
    c->v[c->output].nuse++;
    P->consumer[c->output] = -1;
}

/* The node that alone reads value id (and it is not the graph's output), or NULL. */
static ox_node *sole_consumer(plan *P, int id)
{
    if (id < 0 || P->c->v[id].nuse != 1 || id == P->c->output || P->consumer[id] < 0) return NULL;
    return &P->c->n[P->consumer[id]];
}

static void take_output(ox_ctx *c, ox_node *keep, ox_node *gone)
{
    keep->out[0] = gone->out[0];
    c->v[keep->out[0]].producer = keep->idx;
    gone->kind = K_NONE;
}

static lupe_status fuse(plan *P)
{
    ox_ctx *c = P->c;
    onnx_net_stats *s = &P->net->stats;
    /* Batch norm after a convolution: w' = w * k, b' = (b - mean) * k + beta. */
    count_uses(P);
    for (int k = 0; k < c->nn; k++) {
        ox_node *cv = &c->n[k], *bn = cv->kind == K_CONV ? sole_consumer(P, cv->out[0]) : NULL;
        if (!bn || bn->kind != K_AFFINE) continue;
        const ox_val *w = &c->v[cv->in[1]];
        const int64_t o = w->dims[0], per = w->numel / o;
        float *wf = ox__pool_alloc(&c->tmp, (size_t)w->numel * sizeof(float));
        float *bf = ox__pool_alloc(&c->tmp, (size_t)o * sizeof(float));
        if (!wf || !bf) return LUPE_ENOMEM;
        for (int64_t i = 0; i < o; i++) {
            const double sc = bn->a.aff.scale[i];
            for (int64_t j = 0; j < per; j++) wf[i * per + j] = (float)(cv->a.conv.w[i * per + j] * sc);
            bf[i] = (float)((cv->a.conv.b ? cv->a.conv.b[i] : 0.0) * sc + bn->a.aff.shift[i]);
        }
        cv->a.conv.w = wf, cv->a.conv.b = bf;
        take_output(c, cv, bn);
        s->fused_bn++;
    }
    /* x * sigmoid(x) is SiLU. */
    count_uses(P);
    for (int k = 0; k < c->nn; k++) {
        ox_node *m = &c->n[k];
        if (m->kind != K_BINARY || m->a.bin != B_MUL) continue;
        for (int side = 0; side < 2; side++) {
            const int x = m->in[1 - side], y = m->in[side];
            const int py = c->v[y].producer;
            if (c->v[x].is_const || py < 0 || c->v[y].nuse != 1) continue;
            ox_node *sg = &c->n[py];
            if (sg->kind != K_UNARY || sg->a.un.op != U_SIGMOID || sg->in[0] != x) continue;
            sg->kind = K_NONE;
            m->kind = K_UNARY;
            m->a.un.op = U_SILU, m->a.un.alpha = 0;
            m->in[0] = x, m->in[1] = -1, m->nin = 1;
            break;
        }
    }
    /* Activations after a convolution become its post-op. */
    count_uses(P);
    for (int k = 0; k < c->nn; k++) {
        ox_node *cv = &c->n[k], *u = cv->kind == K_CONV ? sole_consumer(P, cv->out[0]) : NULL;
        if (!u || u->kind != K_UNARY) continue;
        static const eng_act acts[] = {[U_SIGMOID] = ENG_ACT_SIGMOID, [U_RELU] = ENG_ACT_RELU,
                                       [U_LEAKY_RELU] = ENG_ACT_LEAKY_RELU, [U_SILU] = ENG_ACT_SILU};
        cv->a.conv.act = acts[u->a.un.op];
        cv->a.conv.alpha = u->a.un.alpha;
        take_output(c, cv, u);
        s->fused_act++;
    }
    /* A residual add after the activation is not fused, although oneDNN
     * can (a binary post-op): in oneDNN 2.6 that moves the convolution from
     * its brgemm kernel to an older one, which costs more than the add
     * saves (docs/onnx.md has the figures). */
    count_uses(P);
    return LUPE_OK;
}

/* ---- layouts ------------------------------------------------------------------ */
static void lay_strides(const ox_val *v, ox_layout l, int64_t *st)
{
    if (l == OX_NHWC) {
        const int64_t *d = v->dims; /* N C H W */
        st[0] = d[1] * d[2] * d[3], st[1] = 1, st[2] = d[3] * d[1], st[3] = d[1];
        return;
    }
    int64_t s = 1;
    for (int i = v->rank - 1; i >= 0; i--) st[i] = s, s *= v->dims[i];
}

/* NHWC and plain are the same bytes when the channels or the pixels are
 * one (the DFL's 1-channel output, a 1x1 feature map). */
static int same_bytes(const ox_val *v)
{
    return v->rank == 4 && (v->dims[1] == 1 || v->dims[2] * v->dims[3] == 1);
}

static lupe_status grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return LUPE_OK;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *q = lupe_realloc(*p, (size_t)nc * elem);
    if (!q) return LUPE_ENOMEM;
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *p = q, *cap = nc;
    return LUPE_OK;
}

static ox_step *step_new(plan *P, ox_step_kind kind, int node, int out, int in0, int in1)
{
    if (grow((void **)&P->steps, &P->cap_steps, P->nsteps + 1, sizeof *P->steps)) return NULL;
    ox_step *s = &P->steps[P->nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind, s->node = node, s->out = out, s->in[0] = in0, s->in[1] = in1;
    return s;
}

/* Gives value id a buffer of its own, in layout l. */
static lupe_status def_out(plan *P, int id, ox_layout l)
{
    ox_val *v = &P->c->v[id];
    if (grow((void **)&P->bufs, &P->cap_bufs, P->nbufs + 1, sizeof *P->bufs)) return LUPE_ENOMEM;
    ox_buf *b = &P->bufs[P->nbufs];
    b->floats = v->numel ? v->numel : 1;
    b->first = INT_MAX, b->last = -1;
    v->buf = P->nbufs++;
    v->layout = l;
    return LUPE_OK;
}

/* Copies a constant's data for the steps (once). */
static lupe_status keep_const(plan *P, int id)
{
    ox_val *v = &P->c->v[id];
    if (P->cptr[id]) return LUPE_OK;
    float *f = ox__pool_alloc(&P->net->keep, (size_t)(v->numel ? v->numel : 1) * sizeof(float));
    if (!f) return LUPE_ENOMEM;
    if (v->numel) memcpy(f, v->f, (size_t)v->numel * sizeof(float));
    P->cptr[id] = f;
    return LUPE_OK;
}

/* A new value with v's shape (for conversions); -1 when the room
 * reserved at the start is used up, which cannot happen (two per value). */
static int twin(plan *P, int id)
{
    ox_ctx *c = P->c;
    if (c->nv >= c->cap_v) return -1; /* ox_val_new would move c->v */
    const int t = ox__val_new(c, "");
    if (t < 0) return -1;
    ox_val *v = &c->v[t];
    const ox_val *src = &c->v[id];
    v->rank = src->rank, v->numel = src->numel, v->dtype = OX_F32;
    memcpy(v->dims, src->dims, sizeof v->dims);
    return t;
}

/* Value id in layout want (OX_PLAIN or OX_NHWC), converting once if needed;
 * want < 0 takes any layout. Out: *out. */
static lupe_status get_in(plan *P, int id, int want, int *out)
{
    ox_ctx *c = P->c;
    lupe_status st;
    ox_val *v = &c->v[id];
    *out = id;
    if (v->is_const) {
        if ((st = keep_const(P, id))) return st;
        if (want != OX_NHWC) return LUPE_OK;
    } else if (want < 0 || v->layout == (ox_layout)want) {
        return LUPE_OK;
    }
    if (want == OX_NHWC && c->v[id].rank != 4) return lupe_err(LUPE_EINTERNAL, "NHWC wanted for rank %d", v->rank);
    if (c->v[id].as[want] >= 0) {
        *out = c->v[id].as[want];
        return LUPE_OK;
    }
    const int t = twin(P, id);
    if (t < 0) return lupe_err(LUPE_EINTERNAL, "out of room for layout conversions");
    if (!v->is_const && same_bytes(v)) {
        c->v[t].buf = v->buf, c->v[t].layout = (ox_layout)want; /* the same bytes, another name */
    } else {
        if ((st = def_out(P, t, (ox_layout)want))) return st;
        int64_t ds[OX_MAXR], ss[OX_MAXR];
        lay_strides(&c->v[t], (ox_layout)want, ds);
        lay_strides(v, v->is_const ? OX_PLAIN : v->layout, ss);
        ox_step *s = step_new(P, S_COPY, -1, t, id, -1);
        if (!s) return LUPE_ENOMEM;
        ox__cpy_make(&s->p.cpy, v->rank, v->dims, ds, ss);
        P->net->stats.conversions++;
    }
    c->v[id].as[want] = t;
    *out = t;
    return LUPE_OK;
}

/* ---- steps per node kind ------------------------------------------------------- */
static lupe_status plan_conv(plan *P, ox_node *n)
{
    ox_ctx *c = P->c;
    lupe_status st;
    int x;
    if ((st = get_in(P, n->in[0], OX_NHWC, &x))) return st;
    if ((st = def_out(P, n->out[0], OX_NHWC))) return st;
    const ox_val *xi = &c->v[x], *y = &c->v[n->out[0]], *w = &c->v[n->in[1]];
    const int maxpad = n->a.conv.pt > n->a.conv.pb ? n->a.conv.pt : n->a.conv.pb;
    const int maxpw = n->a.conv.pl > n->a.conv.pr ? n->a.conv.pl : n->a.conv.pr;
    eng_conv_dims d;
    /* Checked with the larger padding (the kernel fits), then the exact
     * top/left padding and output size ONNX gives. */
    if ((st = eng_conv_dims_init(&d, (int)xi->dims[0], (int)xi->dims[2], (int)xi->dims[3], (int)xi->dims[1],
                                 (int)y->dims[1], n->a.conv.kh, n->a.conv.kw, n->a.conv.sh,
                                 maxpad > maxpw ? maxpad : maxpw, n->a.conv.group)))
        return ox__node_err(c, n, LUPE_EFORMAT, "%s", lupe_errmsg());
    d.sw = n->a.conv.sw, d.ph = n->a.conv.pt, d.pw = n->a.conv.pl;
    d.oh = (int)y->dims[2], d.ow = (int)y->dims[3];
    /* OIHW -> OHWI, the engine's order. */
    const int64_t o = w->dims[0], ci = w->dims[1], kh = w->dims[2], kw = w->dims[3];
    float *ohwi = ox__pool_alloc(&c->tmp, (size_t)w->numel * sizeof(float));
    if (!ohwi) return LUPE_ENOMEM;
    for (int64_t a = 0; a < o; a++)
        for (int64_t i = 0; i < ci; i++)
            for (int64_t yk = 0; yk < kh; yk++)
                for (int64_t xk = 0; xk < kw; xk++)
                    ohwi[((a * kh + yk) * kw + xk) * ci + i] = n->a.conv.w[((a * ci + i) * kh + yk) * kw + xk];
    ox_step *s = step_new(P, S_CONV, n->idx, n->out[0], x, -1);
    if (!s) return LUPE_ENOMEM;
    st = eng_conv_infer_new(&d, ohwi, n->a.conv.b, n->a.conv.act, n->a.conv.alpha, 0, &s->p.conv.h);
    if (st) return ox__node_err(c, n, st, "%s", lupe_errmsg());
    const size_t sc = eng_conv_infer_scratch(s->p.conv.h);
    if (sc > P->scratch) P->scratch = sc;
    P->net->stats.convs++;
    P->net->stats.weight_bytes += eng_conv_infer_bytes(s->p.conv.h);
    return LUPE_OK;
}

/* Strides with which x (in its layout) is read along each axis of the
 * broadcast output dims od (rank r). */
static void read_strides(plan *P, int x, int r, const int64_t *od, int64_t *st)
{
    const ox_val *v = &P->c->v[x];
    int64_t vs[OX_MAXR];
    lay_strides(v, v->is_const ? OX_PLAIN : v->layout, vs);
    for (int j = 0; j < r; j++) {
        const int k = j - (r - v->rank);
        st[j] = k < 0 || (v->dims[k] == 1 && od[j] != 1) ? 0 : vs[k];
    }
}

static lupe_status plan_binary(plan *P, ox_node *n)
{
    ox_ctx *c = P->c;
    lupe_status st;
    int a, b;
    if ((st = get_in(P, n->in[0], -1, &a)) || (st = get_in(P, n->in[1], -1, &b))) return st;
    ox_val *y = &c->v[n->out[0]];
    ox_layout l = OX_PLAIN;
    for (int i = 0; i < 2; i++) {
        const ox_val *x = &c->v[i ? b : a];
        if (!x->is_const && x->layout == OX_NHWC && y->rank == 4 && !memcmp(x->dims, y->dims, sizeof x->dims))
            l = OX_NHWC;
    }
    if ((st = def_out(P, n->out[0], l))) return st;
    int64_t os[OX_MAXR], as[OX_MAXR], bs[OX_MAXR];
    lay_strides(y, l, os);
    read_strides(P, a, y->rank, y->dims, as);
    read_strides(P, b, y->rank, y->dims, bs);
    ox_step *s = step_new(P, S_BINARY, n->idx, n->out[0], a, b);
    if (!s) return LUPE_ENOMEM;
    ox__bin_make(&s->p.bin, n->a.bin, y->rank, y->dims, os, as, bs);
    return LUPE_OK;
}

static lupe_status plan_copy(plan *P, ox_node *n, int x, int out, int64_t ioff, const int64_t *ss)
{
    const ox_val *y = &P->c->v[out];
    int64_t ds[OX_MAXR];
    lay_strides(y, y->layout, ds);
    ox_step *s = step_new(P, S_COPY, n->idx, out, x, -1);
    if (!s) return LUPE_ENOMEM;
    s->ioff = ioff;
    ox__cpy_make(&s->p.cpy, y->rank, y->dims, ds, ss);
    return LUPE_OK;
}

static lupe_status plan_concat(plan *P, ox_node *n)
{
    ox_ctx *c = P->c;
    lupe_status st;
    const int axis = n->a.axis, out = n->out[0];
    int nhwc = 0, xs[OX_MAXIO];
    for (int i = 0; i < n->nin; i++) {
        const ox_val *x = &c->v[n->in[i]];
        if (!x->is_const && x->layout == OX_NHWC) nhwc = 1;
    }
    nhwc = nhwc && c->v[out].rank == 4;
    /* Channel concat of NHWC tensors: rows of m = N*H*W pixels, each the
     * inputs' channels one after the other (YOLOv8's C2f, SPPF, neck). */
    const int by_channel = nhwc && axis == 1;
    for (int i = 0; i < n->nin; i++)
        if ((st = get_in(P, n->in[i], by_channel ? OX_NHWC : -1, &xs[i]))) return st;
    if ((st = def_out(P, out, nhwc ? OX_NHWC : OX_PLAIN))) return st;
    const ox_val *y = &c->v[out];
    ox_step *s;
    if (by_channel) {
        if (!(s = step_new(P, S_CONCAT_C, n->idx, out, -1, -1))) return LUPE_ENOMEM;
        for (int i = 0; i < n->nin; i++)
            if (c->v[xs[i]].dims[1]) {
                s->p.cat.ins[s->p.cat.k] = xs[i];
                s->p.cat.cs[s->p.cat.k++] = (int)c->v[xs[i]].dims[1];
            }
        s->p.cat.m = y->dims[0] * y->dims[2] * y->dims[3];
        return LUPE_OK;
    }
    int64_t ds[OX_MAXR], off = 0;
    lay_strides(y, y->layout, ds);
    for (int i = 0; i < n->nin; i++) {
        const ox_val *xv = &c->v[xs[i]];
        if (xv->dims[axis]) {
            int64_t ss[OX_MAXR];
            lay_strides(xv, xv->is_const ? OX_PLAIN : xv->layout, ss);
            if (!(s = step_new(P, S_COPY, n->idx, out, xs[i], -1))) return LUPE_ENOMEM;
            s->ooff = off * ds[axis];
            ox__cpy_make(&s->p.cpy, xv->rank, xv->dims, ds, ss);
        }
        off += xv->dims[axis];
    }
    return LUPE_OK;
}

/* Split and Slice: windows of the input, in its layout. */
static lupe_status plan_window(plan *P, ox_node *n, int x, int out, const int64_t *start, const int64_t *step)
{
    ox_ctx *c = P->c;
    const ox_val *xv = &c->v[x], *y = &c->v[out];
    lupe_status st;
    if ((st = def_out(P, out, xv->layout))) return st;
    int chan_only = xv->layout == OX_NHWC;
    for (int k = 0; k < 4 && chan_only; k++)
        chan_only = k == 1 ? step[k] == 1 : start[k] == 0 && step[k] == 1 && y->dims[k] == xv->dims[k];
    if (chan_only) {
        ox_step *s = step_new(P, S_SLICE_C, n->idx, out, x, -1);
        if (!s) return LUPE_ENOMEM;
        s->p.sl.m = y->dims[0] * y->dims[2] * y->dims[3];
        s->p.sl.ci = (int)xv->dims[1], s->p.sl.c0 = (int)start[1], s->p.sl.co = (int)y->dims[1];
        return LUPE_OK;
    }
    int64_t xs[OX_MAXR], ss[OX_MAXR], off = 0;
    lay_strides(xv, xv->layout, xs);
    for (int k = 0; k < xv->rank; k++) off += start[k] * xs[k], ss[k] = step[k] * xs[k];
    return plan_copy(P, n, x, out, off, ss);
}

static lupe_status plan_node(plan *P, ox_node *n)
{
    ox_ctx *c = P->c;
    lupe_status st;
    int x = -1;
    ox_step *s;
    switch (n->kind) {
    case K_NONE: return LUPE_OK;
    case K_CONV: return plan_conv(P, n);
    case K_BINARY: return plan_binary(P, n);
    case K_CONCAT: return plan_concat(P, n);
    case K_UNARY:
    case K_AFFINE:
    case K_MAXPOOL:
    case K_RESIZE:
    case K_SPLIT:
    case K_SLICE:
    case K_TRANSPOSE:
    case K_EXPAND:
        if ((st = get_in(P, n->in[0], -1, &x))) return st;
        break;
    case K_SOFTMAX:
    case K_VIEW: break;
    }
    const ox_val *xv = x >= 0 ? &c->v[x] : NULL;
    const ox_layout xl = xv && !xv->is_const ? xv->layout : OX_PLAIN;
    switch (n->kind) {
    case K_UNARY:
        if ((st = def_out(P, n->out[0], xl))) return st;
        if (!(s = step_new(P, S_UNARY, n->idx, n->out[0], x, -1))) return LUPE_ENOMEM;
        s->p.un.op = n->a.un.op, s->p.un.alpha = n->a.un.alpha, s->p.un.n = xv->numel;
        return LUPE_OK;
    case K_AFFINE: {
        if ((st = def_out(P, n->out[0], xl))) return st;
        if (!(s = step_new(P, S_AFFINE, n->idx, n->out[0], x, -1))) return LUPE_ENOMEM;
        const int64_t ch = xv->dims[1];
        float *sc = ox__pool_alloc(&P->net->keep, (size_t)ch * 2 * sizeof(float));
        if (!sc) return LUPE_ENOMEM;
        memcpy(sc, n->a.aff.scale, (size_t)ch * sizeof(float));
        memcpy(sc + ch, n->a.aff.shift, (size_t)ch * sizeof(float));
        s->p.aff.scale = sc, s->p.aff.shift = sc + ch, s->p.aff.c = ch;
        int64_t inner = 1;
        for (int i = 2; i < xv->rank; i++) inner *= xv->dims[i];
        if (xl == OX_NHWC)
            s->p.aff.outer = xv->dims[0] * inner, s->p.aff.inner = 1;
        else
            s->p.aff.outer = xv->dims[0], s->p.aff.inner = inner;
        return LUPE_OK;
    }
    case K_MAXPOOL: {
        if ((st = def_out(P, n->out[0], xl))) return st;
        const ox_val *y = &c->v[n->out[0]];
        const int k = n->a.pool.kh;
        const int same = xl == OX_NHWC && k == n->a.pool.kw && (k & 1) && n->a.pool.sh == 1 && n->a.pool.sw == 1 &&
                         n->a.pool.pt == k / 2 && n->a.pool.pl == k / 2 && y->dims[2] == xv->dims[2] &&
                         y->dims[3] == xv->dims[3];
        if (!(s = step_new(P, same ? S_MAXPOOL_SAME : S_MAXPOOL, n->idx, n->out[0], x, -1))) return LUPE_ENOMEM;
        s->p.mp.n = (int)xv->dims[0], s->p.mp.c = (int)xv->dims[1], s->p.mp.h = (int)xv->dims[2];
        s->p.mp.w = (int)xv->dims[3], s->p.mp.oh = (int)y->dims[2], s->p.mp.ow = (int)y->dims[3];
        s->p.mp.kh = n->a.pool.kh, s->p.mp.kw = n->a.pool.kw, s->p.mp.sh = n->a.pool.sh, s->p.mp.sw = n->a.pool.sw;
        s->p.mp.pt = n->a.pool.pt, s->p.mp.pl = n->a.pool.pl;
        lay_strides(xv, xl, s->p.mp.is);
        lay_strides(y, xl, s->p.mp.os);
        return LUPE_OK;
    }
    case K_RESIZE: {
        if ((st = def_out(P, n->out[0], xl))) return st;
        const ox_val *y = &c->v[n->out[0]];
        if (!(s = step_new(P, S_RESIZE, n->idx, n->out[0], x, -1))) return LUPE_ENOMEM;
        int32_t *maps = ox__pool_alloc(&P->net->keep, (size_t)(y->dims[2] + y->dims[3]) * sizeof(int32_t));
        if (!maps) return LUPE_ENOMEM;
        memcpy(maps, n->a.rs.ymap, (size_t)y->dims[2] * sizeof(int32_t));
        memcpy(maps + y->dims[2], n->a.rs.xmap, (size_t)y->dims[3] * sizeof(int32_t));
        s->p.rs.ymap = maps, s->p.rs.xmap = maps + y->dims[2];
        s->p.rs.n = (int)y->dims[0], s->p.rs.c = (int)y->dims[1], s->p.rs.oh = (int)y->dims[2];
        s->p.rs.ow = (int)y->dims[3];
        lay_strides(xv, xl, s->p.rs.is);
        lay_strides(y, xl, s->p.rs.os);
        return LUPE_OK;
    }
    case K_SPLIT: {
        int64_t start[OX_MAXR] = {0}, step[OX_MAXR];
        for (int k = 0; k < OX_MAXR; k++) step[k] = 1;
        for (int i = 0; i < n->nout; i++) {
            if (n->out[i] >= 0 && c->v[n->out[i]].nuse &&
                (st = plan_window(P, n, x, n->out[i], start, step)))
                return st;
            start[n->a.axis] += c->v[n->out[i] >= 0 ? n->out[i] : x].dims[n->a.axis];
        }
        return LUPE_OK;
    }
    case K_SLICE: return plan_window(P, n, x, n->out[0], n->a.slice.start, n->a.slice.step);
    case K_TRANSPOSE:
    case K_EXPAND: {
        if ((st = def_out(P, n->out[0], OX_PLAIN))) return st;
        const ox_val *y = &c->v[n->out[0]];
        int64_t xs[OX_MAXR], ss[OX_MAXR];
        if (n->kind == K_TRANSPOSE) {
            lay_strides(xv, xl, xs);
            for (int i = 0; i < y->rank; i++) ss[i] = xs[n->a.perm[i]];
        } else {
            read_strides(P, x, y->rank, y->dims, ss);
        }
        return plan_copy(P, n, x, n->out[0], 0, ss);
    }
    case K_SOFTMAX: {
        if ((st = get_in(P, n->in[0], OX_PLAIN, &x)) || (st = def_out(P, n->out[0], OX_PLAIN))) return st;
        if (!(s = step_new(P, S_SOFTMAX, n->idx, n->out[0], x, -1))) return LUPE_ENOMEM;
        s->p.sm.outer = n->a.sm.outer, s->p.sm.n = n->a.sm.n, s->p.sm.inner = n->a.sm.inner;
        return LUPE_OK;
    }
    case K_VIEW: {
        const ox_val *in = &c->v[n->in[0]];
        ox_val *y = &c->v[n->out[0]];
        /* Same shape (Identity, Cast): any layout; else the plain order. */
        const int same = in->rank == y->rank && !memcmp(in->dims, y->dims, sizeof y->dims);
        if ((st = get_in(P, n->in[0], same ? -1 : OX_PLAIN, &x))) return st;
        y->buf = c->v[x].buf;
        y->layout = same ? c->v[x].layout : OX_PLAIN;
        return LUPE_OK;
    }
    default: return lupe_err(LUPE_EINTERNAL, "node kind %d", (int)n->kind);
    }
}

/* ---- buffers and the arena ------------------------------------------------------- */
static void touch(plan *P, int id, int step, int write)
{
    if (id < 0) return;
    const ox_val *v = &P->c->v[id];
    if (v->is_const || v->buf < 0) return;
    ox_buf *b = &P->bufs[v->buf];
    if (write && step < b->first) b->first = step;
    if (step > b->last) b->last = step;
}

static int by_size(const void *a, const void *b)
{
    const ox_buf *x = *(ox_buf *const *)a, *y = *(ox_buf *const *)b;
    return x->floats < y->floats ? 1 : x->floats > y->floats ? -1 : (x < y ? -1 : x > y);
}

#define ALIGNF 16 /* buffer offsets in floats: 64 bytes */

static lupe_status assign_offsets(plan *P, size_t *total_floats)
{
    ox_buf **order = lupe_malloc((size_t)(P->nbufs ? P->nbufs : 1) * sizeof *order);
    if (!order) return LUPE_ENOMEM;
    for (int i = 0; i < P->nbufs; i++) order[i] = &P->bufs[i];
    qsort(order, (size_t)P->nbufs, sizeof *order, by_size);
    size_t top = 0;
    for (int i = 0; i < P->nbufs; i++) {
        ox_buf *b = order[i];
        const size_t need = ((size_t)b->floats + ALIGNF - 1) / ALIGNF * ALIGNF;
        /* Lowest offset free of every placed buffer alive at the same time:
         * try 0 and the end of each such buffer. */
        size_t best = SIZE_MAX;
        for (int j = -1; j < i; j++) {
            const size_t cand = j < 0 ? 0 : order[j]->off + ((size_t)order[j]->floats + ALIGNF - 1) / ALIGNF * ALIGNF;
            if (j >= 0 && (order[j]->last < b->first || b->last < order[j]->first)) continue;
            if (cand >= best) continue;
            int ok = 1;
            for (int k = 0; k < i && ok; k++) {
                const ox_buf *o = order[k];
                if (o->last < b->first || b->last < o->first) continue;
                const size_t oe = o->off + ((size_t)o->floats + ALIGNF - 1) / ALIGNF * ALIGNF;
                ok = cand + need <= o->off || cand >= oe;
            }
            if (ok) best = cand;
        }
        b->off = best;
        if (best + need > top) top = best + need;
    }
    lupe_free(order);
    *total_floats = top;
    return LUPE_OK;
}

static const char *const step_names[] = {"conv", "copy", "unary", "binary", "affine", "concat_c", "slice_c",
                                         "maxpool", "maxpool_same", "resize", "softmax"};

/* "conv silu   /model.2/cv1/conv/Conv (Conv) -> [1, 32, 120, 120] nhwc, brgconv:avx512_core" */
static lupe_status describe(plan *P, ox_step *s)
{
    ox_ctx *c = P->c;
    char buf[512], dims[128];
    const ox_val *y = &c->v[s->out];
    size_t k = (size_t)snprintf(dims, sizeof dims, "[");
    for (int i = 0; i < y->rank && k < sizeof dims; i++)
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%lld", i ? ", " : "", (long long)y->dims[i]);
    if (k < sizeof dims) snprintf(dims + k, sizeof dims - k, "]");
    char kind[64];
    snprintf(kind, sizeof kind, "%s", step_names[s->kind]);
    if (s->kind == S_CONV)
        snprintf(kind, sizeof kind, "conv%s%s", eng_conv_infer_act(s->p.conv.h) ? " " : "",
                 eng_conv_infer_act(s->p.conv.h) ? eng_act_name(eng_conv_infer_act(s->p.conv.h)) : "");
    const ox_node *n = s->node >= 0 ? &c->n[s->node] : NULL;
    snprintf(buf, sizeof buf, "%-16s %s%s%s%s -> %s %s%s%s", kind, n ? n->name : "(layout change)", n ? " (" : "",
             n ? n->op : "", n ? ")" : "", dims, y->layout == OX_NHWC ? "nhwc" : "plain",
             s->kind == S_CONV ? ", " : "", s->kind == S_CONV ? eng_conv_infer_impl(s->p.conv.h) : "");
    char *d = ox__pool_alloc(&P->net->keep, strlen(buf) + 1);
    if (!d) return LUPE_ENOMEM;
    memcpy(d, buf, strlen(buf));
    s->desc = d;
    return LUPE_OK;
}

void onnx_net_print_plan_timed(const onnx_net *net, const double *step_ms, FILE *f)
{
    for (int i = 0; i < net->nsteps; i++) {
        if (step_ms) fprintf(f, "%4d %8.3f ms  %s\n", i, step_ms[i], net->steps[i].desc ? net->steps[i].desc : "?");
        else fprintf(f, "%4d  %s\n", i, net->steps[i].desc ? net->steps[i].desc : "?");
    }
}

void onnx_net_print_plan(const onnx_net *net, FILE *f)
{
    onnx_net_print_plan_timed(net, NULL, f);
}

void ox__step_cleanup(ox_step *s)
{
    if (s->kind == S_CONV) eng_conv_infer_free(s->p.conv.h);
    s->p.conv.h = NULL;
}

lupe_status ox__plan(ox_ctx *c, onnx_net *net)
{
    lupe_status st;
    plan P = {.c = c, .net = net};
    /* Room for the layout conversions (at most one per value and layout),
     * so that no pointer into c->v moves while planning. */
    if ((st = ox__val_reserve(c, 3 * c->nv + 16))) return st;
    P.consumer = lupe_malloc((size_t)c->cap_v * sizeof *P.consumer);
    P.cptr = lupe_calloc((size_t)c->cap_v, sizeof *P.cptr);
    if (!P.consumer || !P.cptr) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if ((st = fuse(&P))) goto out;

    /* The input: NHWC when a convolution reads it and nothing needs it plain. */
    ox_val *in = &c->v[c->input];
    int convs = 0, plain = 0;
    for (int k = 0; k < c->nn; k++) {
        const ox_node *n = &c->n[k];
        for (int i = 0; i < n->nin; i++)
            if (n->in[i] == c->input && n->kind != K_NONE) {
                if (n->kind == K_CONV) convs++;
                if (n->kind == K_SOFTMAX || n->kind == K_VIEW) plain++;
            }
    }
    if ((st = def_out(&P, c->input, convs && !plain ? OX_NHWC : OX_PLAIN))) goto out;
    for (int k = 0; k < c->nn; k++)
        if ((st = plan_node(&P, &c->n[k]))) goto out;

    /* Lifetimes: the input is written before step 0, the output read after
     * the last one. */
    for (int i = 0; i < P.nsteps; i++) {
        const ox_step *s = &P.steps[i];
        touch(&P, s->out, i, 1);
        touch(&P, s->in[0], i, 0);
        touch(&P, s->in[1], i, 0);
        if (s->kind == S_CONCAT_C)
            for (int k = 0; k < s->p.cat.k; k++) touch(&P, s->p.cat.ins[k], i, 0);
    }
    if (in->buf >= 0) P.bufs[in->buf].first = -1;
    const ox_val *ov = &c->v[c->output];
    if (!ov->is_const) P.bufs[ov->buf].last = P.nsteps;
    else if ((st = keep_const(&P, c->output))) goto out;
    for (int i = 0; i < P.nbufs; i++)
        if (P.bufs[i].first > P.bufs[i].last) P.bufs[i].first = P.bufs[i].last = -1; /* never used */

    size_t floats;
    if ((st = assign_offsets(&P, &floats))) goto out;
    net->scratch_off = floats * sizeof(float);
    net->arena_bytes = net->scratch_off + P.scratch + 64;
    if (!(net->arena = lupe_malloc(net->arena_bytes))) {
        st = lupe_err_ctx(LUPE_ENOMEM, "%s: the arena (%zu bytes)", c->path, net->arena_bytes);
        goto out;
    }
    float *base = (float *)(((uintptr_t)net->arena + 63) & ~(uintptr_t)63);
    net->scratch_off = (size_t)((char *)(base + floats) - (char *)net->arena);

    for (int i = 0; i < P.nsteps; i++)
        if ((st = describe(&P, &P.steps[i]))) goto out;
    /* Pointers of every value the steps see. */
    net->ptr = ox__pool_alloc(&net->keep, (size_t)c->nv * sizeof *net->ptr);
    if (!net->ptr) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int i = 0; i < c->nv; i++)
        net->ptr[i] = c->v[i].is_const ? P.cptr[i] : c->v[i].buf >= 0 ? base + P.bufs[c->v[i].buf].off : NULL;
    net->steps = P.steps, net->nsteps = P.nsteps;
    P.steps = NULL;
    net->input = c->input, net->output = c->output;
    for (int i = 0; i < 4; i++) net->in_dims[i] = (int)in->dims[i];
    net->in_numel = in->numel;
    net->out_rank = ov->rank;
    memcpy(net->out_dims, ov->dims, sizeof net->out_dims);
    net->out_numel = ov->numel;
    int64_t ds[OX_MAXR], ss[OX_MAXR];
    lay_strides(in, in->layout, ds);
    lay_strides(in, OX_PLAIN, ss);
    ox__cpy_make(&net->cpy_in, in->rank, in->dims, ds, ss);
    lay_strides(ov, OX_PLAIN, ds);
    lay_strides(ov, ov->is_const ? OX_PLAIN : ov->layout, ss);
    ox__cpy_make(&net->cpy_out, ov->rank, ov->dims, ds, ss);
    net->stats.steps = net->nsteps;
    net->stats.arena_bytes = net->arena_bytes;
    net->stats.weight_bytes += ox__pool_bytes(net->keep); /* the convolutions' and the constants */
out:
    if (P.steps) {
        for (int i = 0; i < P.nsteps; i++) ox__step_cleanup(&P.steps[i]);
        lupe_free(P.steps);
    }
    lupe_free(P.bufs);
    lupe_free(P.consumer);
    lupe_free(P.cptr);
    return st;
}
