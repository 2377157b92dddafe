/*
 * The inference compiler: reads a planned engine graph (eng_graph_node) and
 * turns it into a list of steps over values with planned storage.
 *   1. ops: each convolution takes the batch norm and SiLU that follow it
 *      (folded weights, fused activation); slices become views; the input
 *      is converted once to the precision's type.
 *   2. types: activations f32, bf16 or s8 by precision; outputs f32.
 *   3. placement: a concatenation member computed by one of lupe's own ops
 *      (add, pooling, upsampling) is written straight into the
 *      concatenation; convolution outputs are copied there, because
 *      oneDNN 2.6 runs its reference kernel (about 1000x slower) on
 *      channel-strided tensors. Convolutions that read a strided view get
 *      one dense copy of it.
 *   4. int8 scales: values that share storage or pass through pooling or
 *      upsampling share one scale; each group's range comes from the
 *      calibration.
 *   5. memory: every storage block is live from its first write to its
 *      last read; blocks are placed in one arena by first fit, largest
 *      first, reusing the memory of dead ones.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/infer_internal.h"

enum { K_CONV, K_CONCAT, K_ADD, K_POOL, K_UP2, K_COPY, K_NONE };

#define MAX_IN 8

typedef struct op_rec {
    int kind;
    int in[MAX_IN], nin, out;
    int k;      /* pooling kernel */
    int conv;   /* K_CONV: index of m->cv */
    int res;    /* K_CONV with a fused residual: the value added (-1 none) */
} op_rec;

typedef struct cstate {
    inf_model *m;
    eng_graph *g, *gw;
    const inf_calib *calib;
    eng_node_info *nodes, *wnodes; /* structure; weights */
    int inq;                       /* the converted input (-1 in f32) */
    int nn, nt;
    int *consumers, *consumer, *is_out, *fused, *vmap;
    op_rec *ops;
    int nops, opcap;
    int *is_out_val; /* per value: an output (f32, kept to the end) */
} cstate;

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return 0;
    int ncap = *cap ? *cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    void *n = lupe_realloc(*p, (size_t)ncap * elem);
    if (!n) return -1;
    memset((char *)n + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
    *p = n;
    *cap = ncap;
    return 0;
}

static int new_val(inf_model *m, const int shape[4], int gt, const char *name)
{
    if (grow((void **)&m->v, &m->vcap, m->nv + 1, sizeof *m->v)) return -1;
    inf__val *v = &m->v[m->nv];
    memset(v, 0, sizeof *v);
    v->n = shape[0], v->h = shape[1], v->w = shape[2], v->c = shape[3];
    v->gt = gt;
    v->view_of = v->place_in = v->dense_twin = -1;
    v->buf = -1;
    v->root = m->nv;
    v->scale = 1.0f;
    v->producer = -1;
    snprintf(v->name, sizeof v->name, "%s", name ? name : "");
    return m->nv++;
}

static void val_shape(const inf__val *v, int s[4])
{
    s[0] = v->n, s[1] = v->h, s[2] = v->w, s[3] = v->c;
}

static int add_op(cstate *cs, int kind, const int *in, int nin, int out)
{
    if (grow((void **)&cs->ops, &cs->opcap, cs->nops + 1, sizeof *cs->ops)) return -1;
    op_rec *o = &cs->ops[cs->nops];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    memcpy(o->in, in, (size_t)nin * sizeof *in);
    o->nin = nin;
    o->out = out;
    o->conv = -1;
    o->res = -1;
    cs->m->v[out].producer = kind;
    return cs->nops++;
}

static const char *op_kind_name(eng_op op)
{
    switch (op) {
    case ENG_OP_INPUT: return "input";
    case ENG_OP_CONV: return "conv";
    case ENG_OP_BN: return "batch norm";
    case ENG_OP_SILU: return "SiLU";
    case ENG_OP_SIGMOID: return "sigmoid";
    case ENG_OP_ADD: return "add";
    case ENG_OP_CONCAT: return "concat";
    case ENG_OP_SLICE: return "slice";
    case ENG_OP_MAXPOOL: return "max pooling";
    case ENG_OP_UPSAMPLE2: return "upsampling";
    case ENG_OP_BN_SILU: return "batch norm + SiLU";
    }
    return "?";
}

/* The single consumer of tensor t that is of kind op, or -1. */
static int sole_consumer(const cstate *cs, int t, eng_op op)
{
    if (cs->is_out[t] || cs->consumers[t] != 1) return -1;
    int j = cs->consumer[t];
    return cs->nodes[j].op == op && cs->nodes[j].in[0] == t ? j : -1;
}

/* A convolution and the batch norm / SiLU it absorbs. */
static lupe_status conv_op(cstate *cs, int i)
{
    inf_model *m = cs->m;
    const eng_node_info *nd = &cs->nodes[i], *wn = &cs->wnodes[i];
    if (grow((void **)&m->cv, &m->cvcap, m->ncv + 1, sizeof *m->cv)) return LUPE_ENOMEM;
    inf__conv *c = &m->cv[m->ncv];
    memset(c, 0, sizeof *c);
    c->d = nd->conv;
    /* One image per kernel call in the graph is the batch the model runs. */
    c->d.n = m->a.batch;
    const size_t nw = (size_t)c->d.o * c->d.kh * c->d.kw * (c->d.c / c->d.groups);
    c->w = lupe_malloc(nw * sizeof *c->w);
    c->b = lupe_calloc((size_t)c->d.o, sizeof *c->b);
    if (!c->w || !c->b) {
        lupe_free(c->w), lupe_free(c->b);
        return LUPE_ENOMEM;
    }
    m->ncv++;
    if (!wn->w) return lupe_err(LUPE_EARG, "conv %s: the graph has no weights (not planned?)", nd->name);
    memcpy(c->w, wn->w, nw * sizeof *c->w);
    if (wn->b) memcpy(c->b, wn->b, (size_t)c->d.o * sizeof *c->b);
    int t = nd->out, last = i, j;
    if ((j = sole_consumer(cs, t, ENG_OP_BN_SILU)) >= 0 || (j = sole_consumer(cs, t, ENG_OP_BN)) >= 0) {
        const eng_node_info *bn = &cs->nodes[j], *wb = &cs->wnodes[j];
        if (!wb->rmean || !wb->rvar || !wb->w || !wb->b)
            return lupe_err(LUPE_EARG, "batch norm %s: the graph has no parameters or running statistics", bn->name);
        eng_bn_fold(c->w, c->b, wb->w, wb->b, wb->rmean, wb->rvar, &nd->conv, bn->eps);
        c->act = bn->op == ENG_OP_BN_SILU;
        cs->fused[j] = 1;
        t = bn->out, last = j;
    }
    if (!c->act && (j = sole_consumer(cs, t, ENG_OP_SILU)) >= 0) {
        c->act = 1;
        cs->fused[j] = 1;
        t = cs->nodes[j].out, last = j;
    }
    int s[4];
    eng_graph_shape(cs->g, t, s);
    s[0] = m->a.batch;
    int src = cs->vmap[nd->in[0]];
    int out = new_val(m, s, t, cs->nodes[last].name);
    if (out < 0) return LUPE_ENOMEM;
    cs->vmap[t] = out;
    c->src = src, c->dst = out;
    int o = add_op(cs, K_CONV, &src, 1, out);
    if (o < 0) return LUPE_ENOMEM;
    cs->ops[o].conv = m->ncv - 1;
    return LUPE_OK;
}

/* Pass 1: graph nodes into ops over values. */
static lupe_status build_ops(cstate *cs, int input)
{
    inf_model *m = cs->m;
    lupe_status st;
    for (int i = 0; i < cs->nn; i++) {
        if (cs->fused[i]) continue;
        const eng_node_info *nd = &cs->nodes[i];
        int s[4];
        eng_graph_shape(cs->g, nd->out, s);
        s[0] = m->a.batch;
        for (int k = 0; k < nd->nin; k++)
            if (cs->vmap[nd->in[k]] < 0)
                return lupe_err(LUPE_EINTERNAL, "node %s reads a tensor no earlier node made", nd->name);
        int in[MAX_IN];
        if (nd->nin > MAX_IN) return lupe_err(LUPE_EUNSUPPORTED, "node %s has %d inputs (at most %d)", nd->name, nd->nin, MAX_IN);
        for (int k = 0; k < nd->nin; k++) in[k] = cs->vmap[nd->in[k]];
        int v;
        switch (nd->op) {
        case ENG_OP_INPUT:
            if (nd->out != input)
                return lupe_err(LUPE_EUNSUPPORTED, "input %s: inference takes one input (the images)", nd->name);
            if (s[3] != 3) return lupe_err(LUPE_EUNSUPPORTED, "input %s has %d channels, not 3", nd->name, s[3]);
            if ((v = new_val(m, s, nd->out, nd->name)) < 0) return LUPE_ENOMEM;
            m->input = v;
            m->v[v].producer = K_COPY; /* the caller writes it */
            cs->vmap[nd->out] = v;
            if (m->prec != INF_F32) {
                /* Converted once: bf16, or u8 at 1/255 (pixels k/255 come back exactly). */
                int q = new_val(m, s, -1, "images.q");
                if (q < 0 || add_op(cs, K_COPY, &v, 1, q) < 0) return LUPE_ENOMEM;
                cs->vmap[nd->out] = q;
                cs->inq = q;
            }
            break;
        case ENG_OP_CONV:
            if ((st = conv_op(cs, i))) return st;
            break;
        case ENG_OP_SLICE:
            if ((v = new_val(m, s, nd->out, nd->name)) < 0) return LUPE_ENOMEM;
            m->v[v].view_of = in[0];
            m->v[v].c0 = nd->c0;
            m->v[v].producer = K_COPY;
            cs->vmap[nd->out] = v;
            break;
        case ENG_OP_CONCAT:
        case ENG_OP_ADD:
        case ENG_OP_MAXPOOL:
        case ENG_OP_UPSAMPLE2: {
            if ((v = new_val(m, s, nd->out, nd->name)) < 0) return LUPE_ENOMEM;
            int kind = nd->op == ENG_OP_CONCAT ? K_CONCAT : nd->op == ENG_OP_ADD ? K_ADD
                     : nd->op == ENG_OP_MAXPOOL ? K_POOL : K_UP2;
            int o = add_op(cs, kind, in, nd->nin, v);
            if (o < 0) return LUPE_ENOMEM;
            cs->ops[o].k = nd->k;
            cs->vmap[nd->out] = v;
            break;
        }
        case ENG_OP_BN:
        case ENG_OP_BN_SILU:
        case ENG_OP_SILU:
        case ENG_OP_SIGMOID:
            return lupe_err(LUPE_EUNSUPPORTED,
                            "node %s (%s): inference folds batch norm and fuses SiLU into the convolution before "
                            "them, and this one follows no convolution it can join",
                            nd->name, op_kind_name(nd->op));
        }
    }
    return LUPE_OK;
}

static int dt_of_prec(inf_precision p)
{
    return p == INF_F32 ? INF__F32 : p == INF_BF16 ? INF__BF16 : INF__S8;
}

/* Pass 2: element types. */
static void assign_types(cstate *cs)
{
    inf_model *m = cs->m;
    const int base = dt_of_prec(m->prec);
    for (int v = 0; v < m->nv; v++) m->v[v].dt = base;
    m->v[m->input].dt = INF__F32;
    if (cs->inq >= 0) {
        m->v[cs->inq].dt = m->prec == INF_INT8 ? INF__U8 : INF__BF16;
        m->v[cs->inq].scale = 1.0f / 255.0f;
    }
    for (int l = 0; l < DET_LEVELS; l++) m->v[m->outs[l]].dt = INF__F32;
    /* The convolutions that write straight into the outputs: f32 results
     * (copied into the output as they are); with int8's float head, f32
     * compute too, so their inputs, computed by convolutions, are f32. */
    for (int i = 0; i < cs->nops; i++) {
        const op_rec *o = &cs->ops[i];
        if (o->kind != K_CONCAT || m->v[o->out].dt != INF__F32) continue;
        for (int k = 0; k < o->nin; k++) {
            inf__val *mv = &m->v[o->in[k]];
            if (mv->producer != K_CONV) continue;
            mv->dt = INF__F32;
            if (m->prec != INF_INT8 || !m->float_head) continue;
            for (int c = 0; c < m->ncv; c++)
                if (m->cv[c].dst == o->in[k] && m->v[m->cv[c].src].producer == K_CONV) m->v[m->cv[c].src].dt = INF__F32;
        }
    }
}

static int find(inf_model *m, int v)
{
    while (m->v[v].root != v) v = m->v[v].root = m->v[m->v[v].root].root;
    return v;
}

static void unite(inf_model *m, int a, int b)
{
    a = find(m, a), b = find(m, b);
    if (a != b) m->v[b].root = a;
}

/* Values whose storage is a strided view of another's (an alias of a
 * whole dense value is not). */
static int strided(const inf_model *m, int v)
{
    const inf__val *x = &m->v[v];
    if (x->place_in >= 0) return 1;
    if (x->view_of < 0) return 0;
    return x->c0 != 0 || x->c != m->v[x->view_of].c || strided(m, x->view_of);
}

/* Residual adds folded into the convolution that computes their other
 * operand, as a sum post-op. It fits where the residual is a slice that
 * convolutions read through a dense copy (C2f's first bottleneck reads its
 * half of cv1's output so), that copy has no reader after the convolution,
 * and the convolution's output feeds only the add: the convolution then
 * writes residual + SiLU(conv) over the copy, and the add and the tensor
 * it consumed disappear. (Where the residual is a dense tensor read later,
 * as in a C2f's second bottleneck, the add stays, written straight into
 * the concatenation.) */
static void fuse_adds(cstate *cs, const int *uses)
{
    inf_model *m = cs->m;
    for (int i = 0; i < cs->nops; i++) {
        op_rec *o = &cs->ops[i];
        if (o->kind != K_ADD || cs->is_out_val[o->out]) continue;
        for (int side = 0; side < 2; side++) {
            const int res = o->in[side], h = o->in[1 - side];
            if (res == h || uses[h] != 1 || cs->is_out_val[h] || m->v[h].producer != K_CONV) continue;
            if (m->v[res].view_of < 0 || m->v[res].dt != m->v[h].dt || m->v[o->out].dt != m->v[h].dt) continue;
            int ci = -1;
            for (int j = 0; j < i; j++)
                if (cs->ops[j].kind == K_CONV && cs->ops[j].out == h) ci = j;
            if (ci < 0) continue;
            int late = 0; /* a convolution reading the residual's dense copy after ci */
            for (int j = ci; j < cs->nops; j++)
                if (cs->ops[j].kind == K_CONV && cs->ops[j].in[0] == res) late = 1;
            if (late) continue;
            op_rec *c = &cs->ops[ci];
            c->out = o->out;
            c->res = res;
            m->cv[c->conv].dst = o->out;
            m->cv[c->conv].sum = 1;
            m->v[o->out].producer = K_CONV;
            m->v[h].gt = -1; /* never computed: nothing to calibrate */
            o->kind = K_NONE;
            break;
        }
    }
}

/* Pass 3: concatenation members written in place. */
static void place_members(cstate *cs)
{
    inf_model *m = cs->m;
    for (int i = 0; i < cs->nops; i++) {
        const op_rec *o = &cs->ops[i];
        if (o->kind != K_CONCAT) continue;
        int off = 0;
        for (int k = 0; k < o->nin; k++) {
            const int mv = o->in[k];
            inf__val *v = &m->v[mv];
            int twice = 0;
            for (int q = 0; q < o->nin; q++) twice |= q != k && o->in[q] == mv;
            int own = v->producer == K_ADD || v->producer == K_POOL || v->producer == K_UP2;
            if (own && !twice && !cs->is_out_val[mv] && v->place_in < 0 && v->view_of < 0 &&
                v->dt == m->v[o->out].dt) {
                v->place_in = o->out;
                v->place_off = off;
            }
            off += v->c;
        }
    }
}

static lupe_status add_step(inf_model *m, int kind, int in0, int in1, int out)
{
    if (grow((void **)&m->s, &m->scap, m->ns + 1, sizeof *m->s)) return LUPE_ENOMEM;
    inf__step *s = &m->s[m->ns++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->in[0] = in0, s->in[1] = in1, s->out = out;
    s->conv = -1;
    return LUPE_OK;
}

/* A dense copy of strided value v for the convolutions that read it. */
static lupe_status dense_twin(inf_model *m, int v, int *out)
{
    if (m->v[v].dense_twin >= 0) {
        *out = m->v[v].dense_twin;
        return LUPE_OK;
    }
    int s[4];
    val_shape(&m->v[v], s);
    char name[INF__NAME];
    snprintf(name, sizeof name, "%.80s.dense", m->v[v].name);
    int t = new_val(m, s, -1, name);
    if (t < 0) return LUPE_ENOMEM;
    inf__val *tv = &m->v[t], *vv = &m->v[v];
    tv->dt = vv->dt;
    tv->producer = K_COPY;
    vv->dense_twin = t;
    unite(m, v, t);
    *out = t;
    return add_step(m, ST_COPY, v, -1, t);
}

/* Pass 4: the steps, with the copies placement asks for. */
static lupe_status emit_steps(cstate *cs)
{
    inf_model *m = cs->m;
    lupe_status st;
    for (int i = 0; i < cs->nops; i++) {
        const op_rec *o = &cs->ops[i];
        switch (o->kind) {
        case K_NONE: break;
        case K_CONV: {
            inf__conv *c = &m->cv[o->conv];
            if (strided(m, c->src) && (st = dense_twin(m, c->src, &c->src))) return st;
            if (o->res >= 0) {
                /* The output is the residual's dense copy, overwritten. */
                int t;
                if ((st = dense_twin(m, o->res, &t))) return st;
                m->v[o->out].view_of = t;
                m->v[o->out].c0 = 0;
                unite(m, t, o->out);
            }
            if ((st = add_step(m, ST_CONV, c->src, -1, o->out))) return st;
            m->s[m->ns - 1].conv = o->conv;
            m->s[m->ns - 1].observe = 1;
            break;
        }
        case K_COPY:
            if ((st = add_step(m, ST_COPY, o->in[0], -1, o->out))) return st;
            break;
        case K_ADD:
            if ((st = add_step(m, ST_ADD, o->in[0], o->in[1], o->out))) return st;
            m->s[m->ns - 1].observe = 1;
            break;
        case K_POOL:
            unite(m, o->in[0], o->out);
            if ((st = add_step(m, ST_POOL, o->in[0], -1, o->out))) return st;
            m->s[m->ns - 1].k = o->k;
            m->s[m->ns - 1].observe = 1;
            break;
        case K_UP2:
            unite(m, o->in[0], o->out);
            if ((st = add_step(m, ST_UP2, o->in[0], -1, o->out))) return st;
            m->s[m->ns - 1].observe = 1;
            break;
        case K_CONCAT: {
            int off = 0;
            for (int k = 0; k < o->nin; k++) {
                const int mv = o->in[k];
                if (m->v[mv].place_in == o->out && m->v[mv].place_off == off) {
                    unite(m, o->out, mv);
                    off += m->v[mv].c;
                    continue;
                }
                /* Members that are adjacent slices of one tensor (C2f's
                 * two halves) are copied together, in one pass. */
                int src = mv, k1 = k, cc = m->v[mv].c;
                while (m->v[mv].view_of >= 0 && k1 + 1 < o->nin) {
                    const inf__val *nx = &m->v[o->in[k1 + 1]];
                    if (nx->view_of != m->v[mv].view_of || nx->c0 != m->v[mv].c0 + cc || nx->place_in >= 0) break;
                    cc += nx->c;
                    k1++;
                }
                int s[4];
                val_shape(&m->v[mv], s);
                s[3] = cc;
                char name[INF__NAME];
                if (k1 > k) {
                    snprintf(name, sizeof name, "%.70s[%d-%d]", m->v[o->out].name, k, k1);
                    int vw = new_val(m, s, -1, name);
                    if (vw < 0) return LUPE_ENOMEM;
                    m->v[vw].view_of = m->v[mv].view_of, m->v[vw].c0 = m->v[mv].c0;
                    m->v[vw].dt = m->v[mv].dt, m->v[vw].producer = K_COPY;
                    src = vw;
                    for (int q = k; q <= k1; q++) unite(m, o->out, o->in[q]);
                } else {
                    snprintf(name, sizeof name, "%.80s[%d]", m->v[o->out].name, k);
                }
                /* A region of the concatenation to copy the member(s) into. */
                int r = new_val(m, s, -1, name);
                if (r < 0) return LUPE_ENOMEM;
                m->v[r].dt = m->v[o->out].dt;
                m->v[r].place_in = o->out, m->v[r].place_off = off;
                m->v[r].producer = K_COPY;
                unite(m, o->out, r);
                /* The member shares the concatenation's int8 scale, so the
                 * copy is a memcpy: requantizing copies took 1.5 ms of
                 * YOLOv8n's 11 at 480, and sharing cost no measured
                 * accuracy (docs/inference.md). */
                unite(m, o->out, src);
                if ((st = add_step(m, ST_COPY, src, -1, r))) return st;
                off += cc;
                k = k1;
            }
            break;
        }
        }
    }
    for (int v = 0; v < m->nv; v++)
        if (m->v[v].view_of >= 0) unite(m, m->v[v].view_of, v);
    return LUPE_OK;
}

/* Largest |x| int8 must represent for v (0 when unknown), from the
 * calibration, or from what v is made of. */
static float amax_of(cstate *cs, int v, int depth)
{
    inf_model *m = cs->m;
    const inf__val *vv = &m->v[v];
    if (depth > 64) return 0;
    const inf__range *r = vv->gt >= 0 && vv->name[0] ? inf__calib_find(cs->calib, vv->name) : NULL;
    if (!r && vv->view_of >= 0) return amax_of(cs, vv->view_of, depth + 1);
    if (r) {
        if (m->pct > 0) {
            for (int i = 0; i < 3; i++)
                if (fabsf(inf__pcts[i] - m->pct) < 1e-4f) return r->p[i];
        }
        return fmaxf(fabsf(r->min), fabsf(r->max));
    }
    float a = 0;
    for (int i = 0; i < cs->nops; i++) /* a concatenation: its members */
        if (cs->ops[i].kind == K_CONCAT && cs->ops[i].out == v)
            for (int k = 0; k < cs->ops[i].nin; k++) a = fmaxf(a, amax_of(cs, cs->ops[i].in[k], depth + 1));
    return a;
}

/* Pass 5: int8 scales, one per group of values sharing storage. */
static lupe_status assign_scales(cstate *cs)
{
    inf_model *m = cs->m;
    if (m->prec != INF_INT8) return LUPE_OK;
    if (m->pct > 0) {
        int ok = 0;
        for (int i = 0; i < 3; i++) ok |= fabsf(inf__pcts[i] - m->pct) < 1e-4f;
        if (!ok) return lupe_err(LUPE_EARG, "int8 range percentile %g: the calibration keeps 99.9, 99.99 and 99.999", (double)m->pct);
    }
    float *amax = lupe_calloc((size_t)m->nv, sizeof *amax);
    if (!amax) return LUPE_ENOMEM;
    for (int v = 0; v < m->nv; v++) {
        inf__val *vv = &m->v[v];
        if (vv->dt != INF__S8) continue;
        const int computed = vv->producer == K_CONV || vv->producer == K_ADD;
        if (computed && vv->gt >= 0 && !inf__calib_find(cs->calib, vv->name)) {
            lupe_free(amax);
            return lupe_err(LUPE_ENOTFOUND,
                            "the calibration has no range for %s: it was made for another model; calibrate again",
                            vv->name);
        }
        float a = amax_of(cs, v, 0);
        int r = find(m, v);
        if (a > amax[r]) amax[r] = a;
    }
    for (int v = 0; v < m->nv; v++) {
        inf__val *vv = &m->v[v];
        if (vv->dt != INF__S8) continue;
        float a = amax[find(m, v)];
        vv->scale = (a > 1e-6f ? a : 1e-6f) / 127.0f;
    }
    lupe_free(amax);
    return LUPE_OK;
}

/* Storage of v: its own block, or a window of another value's. */
static lupe_status resolve_storage(inf_model *m, int v, int depth)
{
    inf__val *vv = &m->v[v];
    if (vv->buf >= 0) return LUPE_OK;
    if (depth > 64) return lupe_err(LUPE_EINTERNAL, "inference plan: storage of %s is circular", vv->name);
    lupe_status st;
    int base = vv->view_of >= 0 ? vv->view_of : vv->place_in;
    if (base >= 0) {
        if ((st = resolve_storage(m, base, depth + 1))) return st;
        vv = &m->v[v];
        const inf__val *bv = &m->v[base];
        vv->buf = bv->buf;
        vv->ld = bv->ld;
        vv->off = bv->off + (vv->view_of >= 0 ? vv->c0 : vv->place_off);
        return LUPE_OK;
    }
    if (grow((void **)&m->b, &m->bcap, m->nb + 1, sizeof *m->b)) return LUPE_ENOMEM;
    inf__buf *b = &m->b[m->nb];
    memset(b, 0, sizeof *b);
    b->bytes = ((size_t)vv->n * vv->h * vv->w * vv->c * inf__dsize(vv->dt) + 63) / 64 * 64;
    b->first = INT32_MAX, b->last = -1;
    vv->buf = m->nb++;
    vv->off = 0, vv->ld = vv->c;
    return LUPE_OK;
}

static int by_size_desc(const void *a, const void *b, void *ctx)
{
    const inf__buf *bb = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (bb[x].bytes != bb[y].bytes) return bb[x].bytes < bb[y].bytes ? 1 : -1;
    return x - y;
}

static int by_off(const void *a, const void *b)
{
    const size_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Pass 6: lifetimes and offsets in the arena. */
static lupe_status plan_memory(cstate *cs)
{
    inf_model *m = cs->m;
    lupe_status st;
    for (int v = 0; v < m->nv; v++)
        if ((st = resolve_storage(m, v, 0))) return st;
    for (int i = 0; i < m->ns; i++) {
        const inf__step *s = &m->s[i];
        for (int k = 0; k < 2; k++)
            if (s->in[k] >= 0) {
                inf__buf *b = &m->b[m->v[s->in[k]].buf];
                if (i > b->last) b->last = i;
                if (i < b->first) b->first = i;
            }
        inf__buf *b = &m->b[m->v[s->out].buf];
        if (i < b->first) b->first = i;
        if (i > b->last) b->last = i;
    }
    m->b[m->v[m->input].buf].first = -1;
    for (int l = 0; l < DET_LEVELS; l++) m->b[m->v[m->outs[l]].buf].last = m->ns;
    int *order = lupe_malloc((size_t)m->nb * sizeof *order);
    size_t *iv = lupe_malloc((size_t)m->nb * 2 * sizeof *iv);
    if (!order || !iv) {
        lupe_free(order), lupe_free(iv);
        return LUPE_ENOMEM;
    }
    for (int i = 0; i < m->nb; i++) order[i] = i;
    qsort_r(order, (size_t)m->nb, sizeof *order, by_size_desc, m->b);
    size_t top = 0;
    for (int i = 0; i < m->nb; i++) {
        inf__buf *b = &m->b[order[i]];
        if (b->last < b->first) { /* never used */
            b->off = 0;
            continue;
        }
        int n = 0;
        for (int j = 0; j < i; j++) {
            const inf__buf *o = &m->b[order[j]];
            if (o->last < o->first || o->last < b->first || b->last < o->first) continue;
            iv[2 * n] = o->off, iv[2 * n + 1] = o->off + o->bytes;
            n++;
        }
        qsort(iv, (size_t)n, 2 * sizeof *iv, by_off);
        size_t at = 0;
        for (int j = 0; j < n; j++) {
            if (iv[2 * j] >= at + b->bytes) break;
            if (iv[2 * j + 1] > at) at = iv[2 * j + 1];
        }
        b->off = at;
        if (at + b->bytes > top) top = at + b->bytes;
    }
    lupe_free(order);
    lupe_free(iv);
    m->act_bytes = top;
    return LUPE_OK;
}

inf__view inf__view_of(const inf_model *m, int v)
{
    const inf__val *vv = &m->v[v];
    const char *base = m->base;
    inf__view w = {
        .p = (void *)(uintptr_t)(base + m->b[vv->buf].off + (size_t)vv->off * inf__dsize(vv->dt)),
        .n = vv->n, .h = vv->h, .w = vv->w, .c = vv->c, .ld = vv->ld, .dt = vv->dt, .scale = vv->scale,
    };
    return w;
}

static lupe_status compile(cstate *cs, int input, const int outs[DET_LEVELS])
{
    inf_model *m = cs->m;
    lupe_status st;
    cs->nn = eng_graph_nodes(cs->g);
    cs->nt = eng_graph_tensors(cs->g);
    if (eng_graph_nodes(cs->gw) != cs->nn || eng_graph_tensors(cs->gw) != cs->nt)
        return lupe_err(LUPE_EINTERNAL, "inference: the weights' graph differs from the model's");
    cs->nodes = lupe_calloc((size_t)cs->nn, sizeof *cs->nodes);
    cs->wnodes = lupe_calloc((size_t)cs->nn, sizeof *cs->wnodes);
    cs->consumers = lupe_calloc((size_t)cs->nt, sizeof(int));
    cs->consumer = lupe_calloc((size_t)cs->nt, sizeof(int));
    cs->is_out = lupe_calloc((size_t)cs->nt, sizeof(int));
    cs->fused = lupe_calloc((size_t)cs->nn, sizeof(int));
    cs->vmap = lupe_malloc((size_t)cs->nt * sizeof(int));
    if (!cs->nodes || !cs->wnodes || !cs->consumers || !cs->consumer || !cs->is_out || !cs->fused || !cs->vmap) return LUPE_ENOMEM;
    for (int t = 0; t < cs->nt; t++) cs->vmap[t] = -1;
    for (int l = 0; l < DET_LEVELS; l++) {
        if (outs[l] < 0 || outs[l] >= cs->nt) return lupe_err(LUPE_EARG, "output %d is not a tensor of the graph", l);
        cs->is_out[outs[l]] = 1;
    }
    if (input < 0 || input >= cs->nt) return lupe_err(LUPE_EARG, "the input is not a tensor of the graph");
    for (int i = 0; i < cs->nn; i++) {
        eng_graph_node(cs->g, i, &cs->nodes[i]);
        eng_graph_node(cs->gw, i, &cs->wnodes[i]);
        if (cs->nodes[i].op != cs->wnodes[i].op || strcmp(cs->nodes[i].name, cs->wnodes[i].name))
            return lupe_err(LUPE_EINTERNAL, "inference: node %d is %s in one graph, %s in the other", i,
                            cs->nodes[i].name, cs->wnodes[i].name);
        for (int k = 0; k < cs->nodes[i].nin; k++) {
            cs->consumers[cs->nodes[i].in[k]]++;
            cs->consumer[cs->nodes[i].in[k]] = i;
        }
    }
    if ((st = build_ops(cs, input))) return st;
    for (int l = 0; l < DET_LEVELS; l++) {
        m->outs[l] = cs->vmap[outs[l]];
        if (m->outs[l] < 0) return lupe_err(LUPE_EINTERNAL, "output %d was never computed", l);
        int s[4];
        val_shape(&m->v[m->outs[l]], s);
        if (s[3] != 4 * DET_REG_MAX + m->a.nc || s[1] != m->a.imgsz >> (3 + l))
            return lupe_err(LUPE_EARG, "output %d is %dx%dx%d, not a detector head's", l, s[1], s[2], s[3]);
    }
    cs->is_out_val = lupe_calloc((size_t)m->nv + 1, sizeof(int));
    if (!cs->is_out_val) return LUPE_ENOMEM;
    for (int l = 0; l < DET_LEVELS; l++) cs->is_out_val[m->outs[l]] = 1;
    cs->is_out_val[m->input] = 1;
    assign_types(cs);
    int *uses = lupe_calloc((size_t)m->nv, sizeof *uses);
    if (!uses) return LUPE_ENOMEM;
    for (int i = 0; i < cs->nops; i++)
        for (int k = 0; k < cs->ops[i].nin; k++) uses[cs->ops[i].in[k]]++;
    fuse_adds(cs, uses);
    lupe_free(uses);
    place_members(cs);
    if ((st = emit_steps(cs))) return st;
    if ((st = assign_scales(cs))) return st;
    for (int i = 0; i < m->ncv; i++)
        if ((st = inf__conv_create(m, i))) return st;
    if ((st = plan_memory(cs))) return st;
    m->sp_bytes = 0;
    size_t wtotal = 0;
    for (int i = 0; i < m->ncv; i++) {
        if (m->cv[i].sp_bytes > m->sp_bytes) m->sp_bytes = m->cv[i].sp_bytes;
        m->cv[i].w_off = wtotal;
        wtotal += (m->cv[i].w_bytes + 63) / 64 * 64;
        m->cv[i].b_off = wtotal;
        wtotal += ((size_t)m->cv[i].d.o * sizeof(float) + 63) / 64 * 64;
    }
    m->arena_bytes = 64 + m->act_bytes + (m->sp_bytes + 63) / 64 * 64;
    m->wbytes = 64 + wtotal;
    if (!(m->arena = lupe_calloc(1, m->arena_bytes)) || !(m->wblock = lupe_calloc(1, m->wbytes)))
        return lupe_err(LUPE_ENOMEM, "inference arena of %zu bytes", m->arena_bytes);
    m->base = (char *)(((uintptr_t)m->arena + 63) / 64 * 64);
    m->wbase = (char *)(((uintptr_t)m->wblock + 63) / 64 * 64);
    for (int i = 0; i < m->ncv; i++)
        if ((st = inf__conv_bind(m, i))) return st;
    for (int i = 0; i < m->ns; i++)
        if (m->s[i].observe && m->v[m->s[i].out].gt < 0) m->s[i].observe = 0;
    return LUPE_OK;
}

lupe_status inf__compile(inf_model *m, eng_graph *g, eng_graph *gw, int input, const int outs[DET_LEVELS],
                         const inf_calib *calib)
{
    cstate cs = {.m = m, .g = g, .gw = gw, .calib = calib, .inq = -1};
    lupe_status st = inf__dnnl_init(m);
    if (!st) st = compile(&cs, input, outs);
    lupe_free(cs.nodes);
    lupe_free(cs.wnodes);
    lupe_free(cs.consumers);
    lupe_free(cs.consumer);
    lupe_free(cs.is_out);
    lupe_free(cs.fused);
    lupe_free(cs.vmap);
    lupe_free(cs.ops);
    lupe_free(cs.is_out_val);
    for (int i = 0; i < m->ncv; i++) {
        lupe_free(m->cv[i].w), lupe_free(m->cv[i].b), lupe_free(m->cv[i].wscale);
        m->cv[i].w = m->cv[i].b = m->cv[i].wscale = NULL;
    }
    return st;
}
