/*
 * Running a planned graph: each node's forward and backward, on the
 * reference ops or, where one exists and the graph allows it, a fast path.
 * Backward passes accumulate into gradient buffers that eng_graph_backward
 * zeroed, so a tensor consumed twice sums both gradients.
 */
#include <string.h>

#include "engine/graph_internal.h"

static const char *const op_names[] = {"input", "conv", "bn", "silu", "sigmoid", "add", "concat", "slice", "maxpool",
                                       "upsample2", "bn_silu"};

const char *graph__op_name(int op)
{
    return op >= 0 && op < (int)(sizeof op_names / sizeof *op_names) ? op_names[op] : "?";
}

lupe_status graph__prepare(eng_graph *g, g_node *nd, size_t *scratch)
{
    *scratch = 0;
    if (nd->op != OP_CONV || !g->fast) return LUPE_OK;
    eng_conv_fast *cf = NULL;
    lupe_status st = eng_conv_fast_new_prec(&nd->cd, nd->p1 >= 0, (eng_precision)g->precision, &cf);
    if (st == LUPE_EUNSUPPORTED) {
        /* oneDNN has no kernel for this shape: the reference runs it. */
        lupe_log_debug("graph %s: %s runs on the reference convolution: %s", g->name, nd->name, lupe_errmsg());
        return LUPE_OK;
    }
    if (st) return st;
    nd->fast = cf;
    *scratch = eng_conv_fast_scratch(cf);
    return LUPE_OK;
}

void graph__node_cleanup(g_node *nd)
{
    if (nd->op == OP_CONV) eng_conv_fast_free(nd->fast);
    nd->fast = NULL;
}

static size_t numel(const g_tensor *t)
{
    return (size_t)t->n * t->h * t->w * t->c;
}

static size_t rows(const g_tensor *t)
{
    return (size_t)t->n * t->h * t->w;
}

#define D(id) (g->arena + g->t[id].off)
#define GR(id) (g->t[id].goff == SIZE_MAX ? NULL : g->arena + g->t[id].goff)
#define PW(i) (g->arena + g->p[i].off)
#define PG(i) (g->arena + g->p[i].goff)

static size_t bn_stride(int c)
{
    return ((size_t)c + 15) / 16 * 16;
}

void graph__forward(eng_graph *g, g_node *nd, int training)
{
    const g_tensor *in = &g->t[nd->in[0]], *out = &g->t[nd->out];
    switch (nd->op) {
    case OP_INPUT: break;
    case OP_CONV:
        /* The fast path fails only on a oneDNN runtime error; the reference
         * then computes the same result. */
        if (!nd->fast || eng_conv_fast_forward(nd->fast, D(nd->out), D(nd->in[0]), PW(nd->p0),
                                               nd->p1 >= 0 ? PW(nd->p1) : NULL, g->arena + g->scratch_off))
            eng_conv2d_forward_ref(D(nd->out), D(nd->in[0]), PW(nd->p0), nd->p1 >= 0 ? PW(nd->p1) : NULL, &nd->cd);
        break;
    case OP_BN: {
        float *st = g->arena + nd->st_off;
        size_t s = bn_stride(in->c);
        if (training) {
            (g->fast ? eng_bn_forward_train_fast : eng_bn_forward_train_ref)(D(nd->out), st, st + s, D(nd->in[0]),
                                                                          PW(nd->p0), PW(nd->p1), rows(in), in->c,
                                                                          nd->eps);
            eng_bn_update_running(st + 2 * s, st + 3 * s, st, st + s, rows(in), in->c, nd->eps, nd->mom);
        } else {
            (g->fast ? eng_bn_forward_infer_fast : eng_bn_forward_infer_ref)(
                D(nd->out), D(nd->in[0]), PW(nd->p0), PW(nd->p1), st + 2 * s, st + 3 * s, rows(in), in->c, nd->eps);
        }
        break;
    }
    case OP_BN_SILU: {
        float *st = g->arena + nd->st_off;
        size_t s = bn_stride(in->c);
        if (training) {
            (g->fast ? eng_bn_silu_forward_train_fast : eng_bn_silu_forward_train_ref)(
                D(nd->out), st, st + s, D(nd->in[0]), PW(nd->p0), PW(nd->p1), rows(in), in->c, nd->eps);
            eng_bn_update_running(st + 2 * s, st + 3 * s, st, st + s, rows(in), in->c, nd->eps, nd->mom);
        } else {
            (g->fast ? eng_bn_silu_forward_infer_fast : eng_bn_silu_forward_infer_ref)(
                D(nd->out), D(nd->in[0]), PW(nd->p0), PW(nd->p1), st + 2 * s, st + 3 * s, rows(in), in->c, nd->eps);
        }
        break;
    }
    case OP_SILU: (g->fast ? eng_silu_forward_fast : eng_silu_forward_ref)(D(nd->out), D(nd->in[0]), numel(in)); break;
    case OP_SIGMOID:
        (g->fast ? eng_sigmoid_forward_fast : eng_sigmoid_forward_ref)(D(nd->out), D(nd->in[0]), numel(in));
        break;
    case OP_ADD:
        (g->fast ? eng_add_forward_fast : eng_add_forward_ref)(D(nd->out), D(nd->in[0]), D(nd->in[1]), numel(in));
        break;
    case OP_CONCAT: {
        const float *ins[G_MAX_IN];
        int cs[G_MAX_IN];
        for (int k = 0; k < nd->nin; k++) ins[k] = D(nd->in[k]), cs[k] = g->t[nd->in[k]].c;
        (g->fast ? eng_concat_forward_fast : eng_concat_forward_ref)(D(nd->out), ins, cs, nd->nin, rows(in));
        break;
    }
    case OP_SLICE:
        (g->fast ? eng_slice_forward_fast : eng_slice_forward_ref)(D(nd->out), D(nd->in[0]), rows(in), in->c, nd->c0,
                                                                   out->c);
        break;
    case OP_MAXPOOL:
        (g->fast ? eng_maxpool_forward_fast : eng_maxpool_forward_ref)(D(nd->out), D(nd->in[0]), in->n, in->h, in->w,
                                                                       in->c, nd->k);
        break;
    case OP_UP2:
        (g->fast ? eng_upsample2_forward_fast : eng_upsample2_forward_ref)(D(nd->out), D(nd->in[0]), in->n, in->h,
                                                                           in->w, in->c);
        break;
    }
}

int graph__first_writer_sets(const eng_graph *g, const g_node *nd, int i, int k)
{
    const g_tensor *t = &g->t[nd->in[k]];
    if (t->goff == SIZE_MAX) return 0;
    if (nd->op == OP_CONV) return nd->fast && t->last == i;
    if (!g->fast) return 0;
    if (nd->op == OP_SLICE) return t->split;
    for (int j = 0; j < k; j++)
        if (nd->in[j] == nd->in[k]) return 0; /* x + x, concat(x, x): the second adds */
    if (nd->op == OP_ADD && nd->in[0] == nd->in[1]) return 0;
    switch (nd->op) {
    case OP_BN:
    case OP_BN_SILU:
    case OP_SILU:
    case OP_ADD:
    case OP_CONCAT:
    case OP_UP2: return t->last == i;
    default: return 0;
    }
}

void graph__backward(eng_graph *g, g_node *nd, int i)
{
    const g_tensor *in = &g->t[nd->in[0]], *out = &g->t[nd->out];
    const float *dout = GR(nd->out);
    if (!dout) return; /* inference plan: no gradients */
    float *din = nd->op == OP_INPUT ? NULL : GR(nd->in[0]);
    const int set_din = nd->op != OP_INPUT && graph__first_writer_sets(g, nd, i, 0);
    switch (nd->op) {
    case OP_INPUT: break;
    case OP_CONV: {
        float *db = nd->p1 >= 0 ? PG(nd->p1) : NULL;
        void *scratch = g->arena + g->scratch_off;
        if (nd->fast && set_din) {
            if (eng_conv_fast_backward_data_set(nd->fast, din, dout, PW(nd->p0), scratch) == LUPE_OK &&
                eng_conv_fast_backward_weights(nd->fast, PG(nd->p0), db, dout, D(nd->in[0]), scratch) == LUPE_OK)
                break;
            /* A oneDNN runtime error: start the gradient over on the reference. */
            memset(din, 0, numel(in) * sizeof(float));
        } else if (nd->fast && eng_conv_fast_backward(nd->fast, din, PG(nd->p0), db, dout, D(nd->in[0]), PW(nd->p0),
                                                      scratch) == LUPE_OK) {
            break;
        }
        eng_conv2d_backward_ref(din, PG(nd->p0), db, dout, D(nd->in[0]), PW(nd->p0), &nd->cd);
        break;
    }
    case OP_BN: {
        float *st = g->arena + nd->st_off;
        (set_din ? eng_bn_backward_set_fast : g->fast ? eng_bn_backward_fast : eng_bn_backward_ref)(
            din, PG(nd->p0), PG(nd->p1), dout, D(nd->in[0]), st, st + bn_stride(in->c), PW(nd->p0), rows(in), in->c);
        break;
    }
    case OP_BN_SILU: {
        float *st = g->arena + nd->st_off;
        (set_din ? eng_bn_silu_backward_set_fast : g->fast ? eng_bn_silu_backward_fast : eng_bn_silu_backward_ref)(
            din, PG(nd->p0), PG(nd->p1), dout, D(nd->in[0]), st, st + bn_stride(in->c), PW(nd->p0), PW(nd->p1),
            rows(in), in->c);
        break;
    }
    case OP_SILU:
        if (din)
            (set_din ? eng_silu_backward_set_fast : g->fast ? eng_silu_backward_fast : eng_silu_backward_ref)(
                din, dout, D(nd->in[0]), numel(in));
        break;
    case OP_SIGMOID:
        if (din) (g->fast ? eng_sigmoid_backward_fast : eng_sigmoid_backward_ref)(din, dout, D(nd->out), numel(in));
        break;
    case OP_ADD:
        /* Both accept a NULL side (an input with no gradient). */
        if (g->fast)
            eng_add_backward_set_fast(din, GR(nd->in[1]), dout, numel(in),
                                      (unsigned)set_din | (unsigned)graph__first_writer_sets(g, nd, i, 1) << 1);
        else
            eng_add_backward_ref(din, GR(nd->in[1]), dout, numel(in));
        break;
    case OP_CONCAT: {
        float *dins[G_MAX_IN];
        int cs[G_MAX_IN];
        unsigned set = 0;
        for (int k = 0; k < nd->nin; k++) {
            dins[k] = GR(nd->in[k]), cs[k] = g->t[nd->in[k]].c;
            set |= (unsigned)graph__first_writer_sets(g, nd, i, k) << k;
        }
        if (g->fast)
            eng_concat_backward_set_fast(dins, set, cs, nd->nin, dout, rows(in));
        else
            eng_concat_backward_ref(dins, cs, nd->nin, dout, rows(in));
        break;
    }
    case OP_SLICE:
        if (din)
            (set_din ? eng_slice_backward_set_fast : g->fast ? eng_slice_backward_fast : eng_slice_backward_ref)(
                din, dout, rows(in), in->c, nd->c0, out->c);
        break;
    case OP_MAXPOOL:
        if (din)
            (g->fast ? eng_maxpool_backward_fast : eng_maxpool_backward_ref)(din, dout, D(nd->in[0]), in->n, in->h,
                                                                             in->w, in->c, nd->k);
        break;
    case OP_UP2:
        if (din)
            (set_din ? eng_upsample2_backward_set_fast : g->fast ? eng_upsample2_backward_fast
                                                                 : eng_upsample2_backward_ref)(din, dout, in->n, in->h,
                                                                                               in->w, in->c);
        break;
    }
}
