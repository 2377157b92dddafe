/*
 * An engine graph as ONNX nodes: the exporter walks the network that was
 * built (eng_graph_node), so whatever det_build makes is what gets written,
 * with no second description of the architecture to drift. Each lupe
 * tensor's ONNX value is named after the node that produced it
 * ("model.0.bn", "add.31"); intermediate values of one lupe node get a
 * suffix ("model.0.bn.sigmoid").
 */
#include <string.h>

#include "onnx/export_internal.h"

typedef struct walk {
    onnx__ex *e;
    const eng_graph *g;
    const char **names;
    int nn;
    char *done;       /* node already written (a folded batch norm, a slice of a Split) */
    int *consumers;   /* per tensor: how many node inputs read it */
} walk;

static int channels(const eng_graph *g, int t)
{
    int s[4];
    eng_graph_shape(g, t, s);
    return s[3];
}

/* The single node that reads tensor t, or -1 (none, or several). */
static int only_consumer(const walk *w, int t)
{
    if (w->consumers[t] != 1) return -1;
    for (int i = 0; i < w->nn; i++) {
        eng_node_info nd;
        eng_graph_node(w->g, i, &nd);
        for (int k = 0; k < nd.nin; k++)
            if (nd.in[k] == t) return i;
    }
    return -1;
}

/* SiLU as ONNX has no operator for it (opset < 22): x * sigmoid(x). The
 * Mul's output carries name. */
static const char *silu(walk *w, const char *x, const char *name)
{
    const char *sig = onnx__ex_str(w->e, "%s.sigmoid", name);
    Onnx__NodeProto *s = onnx__ex_node(w->e, "Sigmoid", sig, &x, 1, 1);
    if (!s) return NULL;
    const char *in[2] = {x, s->output[0]};
    Onnx__NodeProto *m = onnx__ex_node(w->e, "Mul", name, in, 2, 1);
    return m ? m->output[0] : NULL;
}

/* A convolution, with the batch norm of node bn (-1: none) folded into its
 * weights and bias. Weights go from lupe's OHWI to ONNX's OIHW. */
static lupe_status conv(walk *w, const eng_node_info *c, int bn)
{
    const eng_conv_dims *d = &c->conv;
    const int ci = d->c / d->groups;
    const size_t per_o = (size_t)d->kh * d->kw * ci, nw = (size_t)d->o * per_o;
    float *ohwi = lupe_malloc(nw * sizeof(float)), *oihw = lupe_malloc(nw * sizeof(float));
    float *bias = lupe_calloc((size_t)d->o, sizeof(float));
    lupe_status st = LUPE_OK;
    if (!ohwi || !oihw || !bias) {
        st = lupe_err(LUPE_ENOMEM, "layer %s: out of memory copying its weights", c->name);
        goto out;
    }
    memcpy(ohwi, c->w, nw * sizeof(float));
    if (c->b) memcpy(bias, c->b, (size_t)d->o * sizeof(float));
    int with_bias = c->b != NULL;
    if (bn >= 0) {
        eng_node_info b;
        eng_graph_node(w->g, bn, &b);
        eng_bn_fold(ohwi, bias, b.w, b.b, b.rmean, b.rvar, d, b.eps);
        with_bias = 1;
    }
    for (int o = 0; o < d->o; o++)
        for (int y = 0; y < d->kh; y++)
            for (int x = 0; x < d->kw; x++)
                for (int i = 0; i < ci; i++)
                    oihw[(((size_t)o * ci + i) * d->kh + y) * d->kw + x] = ohwi[o * per_o + ((size_t)y * d->kw + x) * ci + i];
    const int64_t wd[4] = {d->o, ci, d->kh, d->kw}, bd[1] = {d->o};
    const char *in[3] = {w->names[c->in[0]], onnx__ex_f32(w->e, c->wname, oihw, wd, 4), NULL};
    if (with_bias) in[2] = onnx__ex_f32(w->e, onnx__ex_str(w->e, "%s.bias", c->name), bias, bd, 1);
    Onnx__NodeProto *n = onnx__ex_node(w->e, "Conv", c->name, in, with_bias ? 3 : 2, 1);
    const int64_t k[2] = {d->kh, d->kw}, s[2] = {d->sh, d->sw}, p[4] = {d->ph, d->pw, d->ph, d->pw}, dil[2] = {1, 1};
    onnx__ex_attr_ints(w->e, n, "kernel_shape", k, 2);
    onnx__ex_attr_ints(w->e, n, "strides", s, 2);
    onnx__ex_attr_ints(w->e, n, "pads", p, 4);
    onnx__ex_attr_ints(w->e, n, "dilations", dil, 2);
    onnx__ex_attr_int(w->e, n, "group", d->groups);
    if (!n) goto out;
    if (bn < 0) {
        w->names[c->out] = n->output[0];
        goto out;
    }
    /* The batch norm is gone; its output is the conv's, through SiLU for
     * the fused op. */
    eng_node_info b;
    eng_graph_node(w->g, bn, &b);
    w->names[b.out] = b.op == ENG_OP_BN_SILU ? silu(w, n->output[0], b.name) : n->output[0];
    w->done[bn] = 1;
out:
    lupe_free(ohwi);
    lupe_free(oihw);
    lupe_free(bias);
    return st;
}

/* A batch norm that follows no convolution of its own (a graph det_build
 * never makes, but one the walk must not get wrong). */
static void batchnorm(walk *w, const eng_node_info *b)
{
    const int c = channels(w->g, b->in[0]);
    const int64_t d[1] = {c};
    const char *in[5] = {w->names[b->in[0]], onnx__ex_f32(w->e, b->wname, b->w, d, 1),
                         onnx__ex_f32(w->e, b->bname, b->b, d, 1),
                         onnx__ex_f32(w->e, onnx__ex_str(w->e, "%s.running_mean", b->name), b->rmean, d, 1),
                         onnx__ex_f32(w->e, onnx__ex_str(w->e, "%s.running_var", b->name), b->rvar, d, 1)};
    int fused = b->op == ENG_OP_BN_SILU;
    const char *name = fused ? onnx__ex_str(w->e, "%s.bn", b->name) : b->name;
    Onnx__NodeProto *n = onnx__ex_node(w->e, "BatchNormalization", name, in, 5, 1);
    onnx__ex_attr_float(w->e, n, "epsilon", b->eps);
    if (n) w->names[b->out] = fused ? silu(w, n->output[0], b->name) : n->output[0];
}

/* The slices of tensor t, if every reader of t is a slice and together
 * they cover its channels exactly once: their node indices by first
 * channel into idx (capacity max), and the count; else 0. */
static int partition(const walk *w, int t, int *idx, int max)
{
    int n = 0, covered = 0;
    for (int i = 0; i < w->nn; i++) {
        eng_node_info nd;
        eng_graph_node(w->g, i, &nd);
        for (int k = 0; k < nd.nin; k++) {
            if (nd.in[k] != t) continue;
            if (nd.op != ENG_OP_SLICE || n == max) return 0;
            idx[n++] = i;
            covered += channels(w->g, nd.out);
        }
    }
    /* Insertion sort by first channel, then the ranges must abut. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            eng_node_info a, b;
            eng_graph_node(w->g, idx[j - 1], &a);
            eng_graph_node(w->g, idx[j], &b);
            if (a.c0 <= b.c0) break;
            int s = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = s;
        }
    int next = 0;
    for (int i = 0; i < n; i++) {
        eng_node_info s;
        eng_graph_node(w->g, idx[i], &s);
        if (s.c0 != next) return 0;
        next += channels(w->g, s.out);
    }
    return covered == channels(w->g, t) && next == covered ? n : 0;
}

#define MAX_SPLIT 64

static void slice(walk *w, const eng_node_info *s)
{
    int idx[MAX_SPLIT];
    int n = partition(w, s->in[0], idx, MAX_SPLIT);
    const char *x = w->names[s->in[0]];
    if (n > 1) {
        /* C2f's split: one Split whose outputs are named after the slices. */
        int64_t sizes[MAX_SPLIT];
        for (int i = 0; i < n; i++) {
            eng_node_info nd;
            eng_graph_node(w->g, idx[i], &nd);
            sizes[i] = channels(w->g, nd.out);
        }
        const int64_t d[1] = {n};
        const char *in[2] = {x, onnx__ex_i64(w->e, onnx__ex_str(w->e, "%s.split_sizes", x), sizes, d, 1)};
        Onnx__NodeProto *sp = onnx__ex_node(w->e, "Split", onnx__ex_str(w->e, "%s.split", x), in, 2, n);
        onnx__ex_attr_int(w->e, sp, "axis", 1);
        if (!sp) return;
        for (int i = 0; i < n; i++) {
            eng_node_info nd;
            eng_graph_node(w->g, idx[i], &nd);
            if (!(sp->output[i] = onnx__ex_str(w->e, "%s", nd.name))) return;
            w->names[nd.out] = sp->output[i];
            w->done[idx[i]] = 1;
        }
        return;
    }
    const int64_t one[1] = {1}, st[1] = {s->c0}, en[1] = {s->c0 + channels(w->g, s->out)}, ax[1] = {1};
    const char *in[4] = {x, onnx__ex_i64(w->e, onnx__ex_str(w->e, "%s.starts", s->name), st, one, 1),
                         onnx__ex_i64(w->e, onnx__ex_str(w->e, "%s.ends", s->name), en, one, 1),
                         onnx__ex_i64(w->e, onnx__ex_str(w->e, "%s.axes", s->name), ax, one, 1)};
    Onnx__NodeProto *n1 = onnx__ex_node(w->e, "Slice", s->name, in, 4, 1);
    if (n1) w->names[s->out] = n1->output[0];
}

static lupe_status node(walk *w, int i, int input, const char *input_name, const char **resize_scales)
{
    eng_node_info nd;
    eng_graph_node(w->g, i, &nd);
    onnx__ex *e = w->e;
    const char *x = nd.nin > 0 ? w->names[nd.in[0]] : NULL;
    if (nd.nin > 0 && !x && !e->oom)
        return lupe_err(LUPE_EINTERNAL, "node %s: its input has no ONNX value", nd.name);
    Onnx__NodeProto *n = NULL;
    switch (nd.op) {
    case ENG_OP_INPUT:
        if (nd.out != input)
            return lupe_err(LUPE_EUNSUPPORTED, "node %s: a second graph input (only one image input is exported)",
                            nd.name);
        w->names[nd.out] = input_name;
        return LUPE_OK;
    case ENG_OP_CONV: {
        int bn = only_consumer(w, nd.out);
        if (bn >= 0) {
            eng_node_info b;
            eng_graph_node(w->g, bn, &b);
            if (b.op != ENG_OP_BN && b.op != ENG_OP_BN_SILU) bn = -1;
        }
        return conv(w, &nd, bn);
    }
    case ENG_OP_BN:
    case ENG_OP_BN_SILU: batchnorm(w, &nd); return LUPE_OK;
    case ENG_OP_SILU: w->names[nd.out] = silu(w, x, nd.name); return LUPE_OK;
    case ENG_OP_SIGMOID: n = onnx__ex_node(e, "Sigmoid", nd.name, &x, 1, 1); break;
    case ENG_OP_ADD: {
        const char *in[2] = {x, w->names[nd.in[1]]};
        n = onnx__ex_node(e, "Add", nd.name, in, 2, 1);
        break;
    }
    case ENG_OP_CONCAT: {
        const char *in[16];
        for (int k = 0; k < nd.nin && k < 16; k++) in[k] = w->names[nd.in[k]];
        n = onnx__ex_node(e, "Concat", nd.name, in, nd.nin < 16 ? nd.nin : 16, 1);
        onnx__ex_attr_int(e, n, "axis", 1);
        break;
    }
    case ENG_OP_SLICE: slice(w, &nd); return LUPE_OK;
    case ENG_OP_MAXPOOL: {
        n = onnx__ex_node(e, "MaxPool", nd.name, &x, 1, 1);
        const int64_t k[2] = {nd.k, nd.k}, s[2] = {1, 1}, p[4] = {nd.k / 2, nd.k / 2, nd.k / 2, nd.k / 2};
        onnx__ex_attr_ints(e, n, "kernel_shape", k, 2);
        onnx__ex_attr_ints(e, n, "strides", s, 2);
        onnx__ex_attr_ints(e, n, "pads", p, 4);
        break;
    }
    case ENG_OP_UPSAMPLE2: {
        if (!*resize_scales) {
            const float sc[4] = {1, 1, 2, 2};
            const int64_t d[1] = {4};
            *resize_scales = onnx__ex_f32(e, "upsample2.scales", sc, d, 1);
        }
        /* torch's nn.Upsample(scale_factor=2, mode="nearest") as it
         * exports: output pixel (y, x) reads input (floor(y/2), floor(x/2)). */
        const char *in[3] = {x, "", *resize_scales};
        n = onnx__ex_node(e, "Resize", nd.name, in, 3, 1);
        onnx__ex_attr_str(e, n, "mode", "nearest");
        onnx__ex_attr_str(e, n, "coordinate_transformation_mode", "asymmetric");
        onnx__ex_attr_str(e, n, "nearest_mode", "floor");
        break;
    }
    default: return lupe_err(LUPE_EUNSUPPORTED, "node %s: op kind %d has no ONNX form", nd.name, (int)nd.op);
    }
    if (n) w->names[nd.out] = n->output[0];
    return LUPE_OK;
}

lupe_status onnx__ex_graph(onnx__ex *e, const eng_graph *g, int input, const char *input_name, const char **names)
{
    walk w = {.e = e, .g = g, .names = names, .nn = eng_graph_nodes(g)};
    const int nt = eng_graph_tensors(g);
    const char *resize_scales = NULL;
    lupe_status st = LUPE_OK;
    memset(names, 0, (size_t)nt * sizeof *names);
    w.done = lupe_calloc((size_t)(w.nn ? w.nn : 1), 1);
    w.consumers = lupe_calloc((size_t)(nt ? nt : 1), sizeof *w.consumers);
    if (!w.done || !w.consumers) {
        st = lupe_err(LUPE_ENOMEM, "out of memory walking the graph");
        goto out;
    }
    for (int i = 0; i < w.nn; i++) {
        eng_node_info nd;
        eng_graph_node(g, i, &nd);
        if ((nd.op == ENG_OP_CONV || nd.op == ENG_OP_BN || nd.op == ENG_OP_BN_SILU) && !nd.w) {
            st = lupe_err(LUPE_EARG, "node %s: the graph is not planned (no weights to export)", nd.name);
            goto out;
        }
        for (int k = 0; k < nd.nin; k++) w.consumers[nd.in[k]]++;
    }
    for (int i = 0; i < w.nn && !st && !e->oom; i++)
        if (!w.done[i]) st = node(&w, i, input, input_name, &resize_scales);
    if (!st && e->oom) st = lupe_err(LUPE_ENOMEM, "out of memory building the ONNX graph");
out:
    lupe_free(w.done);
    lupe_free(w.consumers);
    return st;
}
