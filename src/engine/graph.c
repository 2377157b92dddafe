/*
 * Graphs: a network built once from the engine's ops, then planned into one
 * arena (parameters, gradients, activations, batch-norm state, scratch), so
 * a training step or an inference call allocates nothing. Builders record
 * the first shape error and plan reports it, naming the layer.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph_internal.h"

#define ALIGN 16 /* floats: 64-byte alignment for every buffer */

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static int fail(eng_graph *g, const char *fmt, ...) LUPE_PRINTF(2, 3);
static int fail(eng_graph *g, const char *fmt, ...)
{
    if (g->st == LUPE_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->err, sizeof g->err, fmt, ap);
        va_end(ap);
        g->st = LUPE_EARG;
    }
    return -1;
}

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return 0;
    int ncap = *cap ? *cap * 2 : 32;
    while (ncap < need) ncap *= 2;
    void *n = lupe_realloc(*p, (size_t)ncap * elem);
    if (!n) return -1;
    memset((char *)n + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
    *p = n;
    *cap = ncap;
    return 0;
}

eng_graph *eng_graph_new(const char *name)
{
    eng_graph *g = lupe_calloc(1, sizeof *g);
    if (!g) return NULL;
    snprintf(g->name, sizeof g->name, "%s", name ? name : "graph");
    g->fast = 1;
    g->precision = ENG_PREC_AUTO;
    g->seed = 0x5eed1234abcdULL;
    return g;
}

void eng_graph_free(eng_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->nn; i++) graph__node_cleanup(&g->nodes[i]);
    lupe_free(g->nodes);
    lupe_free(g->t);
    lupe_free(g->p);
    lupe_free(g->params);
    lupe_free(g->arena);
    lupe_free(g);
}

static int valid(eng_graph *g, int x)
{
    if (g->st) return 0;
    if (g->planned) return fail(g, "graph %s: layers added after planning", g->name), 0;
    if (x < 0 || x >= g->nt) return fail(g, "graph %s: tensor %d does not exist", g->name, x), 0;
    return 1;
}

static int new_tensor(eng_graph *g, int n, int h, int w, int c, int producer)
{
    if (grow((void **)&g->t, &g->tcap, g->nt + 1, sizeof *g->t)) return fail(g, "out of memory");
    g_tensor *t = &g->t[g->nt];
    *t = (g_tensor){.n = n, .h = h, .w = w, .c = c, .goff = SIZE_MAX, .producer = producer, .last = -1};
    return g->nt++;
}

static g_node *new_node(eng_graph *g, int op, const char *name)
{
    if (grow((void **)&g->nodes, &g->ncap, g->nn + 1, sizeof *g->nodes)) {
        fail(g, "out of memory");
        return NULL;
    }
    g_node *nd = &g->nodes[g->nn++];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->p0 = nd->p1 = -1;
    if (name)
        snprintf(nd->name, sizeof nd->name, "%s", name);
    else
        snprintf(nd->name, sizeof nd->name, "%s.%d", graph__op_name(op), g->nn - 1);
    return nd;
}

static int new_param(eng_graph *g, const char *layer, const char *what, size_t n, int group, int ndim,
                     const int64_t *dims, float init_lo, float init_hi)
{
    if (grow((void **)&g->p, &g->pcap, g->np + 1, sizeof *g->p)) return fail(g, "out of memory");
    g_param *p = &g->p[g->np];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", layer, what);
    p->n = n;
    p->group = group;
    p->ndim = ndim;
    memcpy(p->dims, dims, (size_t)ndim * sizeof *dims);
    p->lo = init_lo, p->hi = init_hi;
    return g->np++;
}

int eng_g_input(eng_graph *g, const char *name, int n, int h, int w, int c)
{
    if (g->st) return -1;
    if (n < 1 || h < 1 || w < 1 || c < 1) return fail(g, "input %s: bad shape %dx%dx%dx%d", name, n, h, w, c);
    g_node *nd = new_node(g, OP_INPUT, name);
    if (!nd) return -1;
    int t = new_tensor(g, n, h, w, c, g->nn - 1);
    g->t[t].is_input = 1;
    nd->out = t;
    return t;
}

int eng_g_conv(eng_graph *g, const char *name, int x, int o, int k, int stride, int pad, int groups, int bias)
{
    if (!valid(g, x)) return -1;
    g_tensor in = g->t[x];
    g_node *nd = new_node(g, OP_CONV, name);
    if (!nd) return -1;
    if (eng_conv_dims_init(&nd->cd, in.n, in.h, in.w, in.c, o, k, k, stride, pad, groups) != LUPE_OK)
        return fail(g, "conv %s: %s", nd->name, lupe_errmsg());
    nd->in[0] = x, nd->nin = 1;
    int fan_in = in.c / groups * k * k;
    float bound = 1.0f / sqrtf((float)fan_in);
    int64_t wd[4] = {o, k, k, in.c / groups}, bd[1] = {o};
    nd->p0 = new_param(g, nd->name, "weight", (size_t)o * k * k * (in.c / groups), ENG_GROUP_DECAY, 4, wd, -bound, bound);
    if (bias) nd->p1 = new_param(g, nd->name, "bias", (size_t)o, ENG_GROUP_BIAS, 1, bd, -bound, bound);
    return nd->out = new_tensor(g, in.n, nd->cd.oh, nd->cd.ow, o, g->nn - 1);
}

static int bn_node(eng_graph *g, int op, const char *name, int x, float eps, float momentum)
{
    if (!valid(g, x)) return -1;
    g_tensor in = g->t[x];
    g_node *nd = new_node(g, op, name);
    if (!nd) return -1;
    nd->in[0] = x, nd->nin = 1;
    nd->eps = eps, nd->mom = momentum;
    snprintf(nd->rmean_name, sizeof nd->rmean_name, "%s.running_mean", nd->name);
    snprintf(nd->rvar_name, sizeof nd->rvar_name, "%s.running_var", nd->name);
    int64_t d[1] = {in.c};
    nd->p0 = new_param(g, nd->name, "weight", (size_t)in.c, ENG_GROUP_NORM, 1, d, 1, 1);
    nd->p1 = new_param(g, nd->name, "bias", (size_t)in.c, ENG_GROUP_BIAS, 1, d, 0, 0);
    return nd->out = new_tensor(g, in.n, in.h, in.w, in.c, g->nn - 1);
}

int eng_g_bn(eng_graph *g, const char *name, int x, float eps, float momentum)
{
    return bn_node(g, OP_BN, name, x, eps, momentum);
}

int eng_g_bn_silu(eng_graph *g, const char *name, int x, float eps, float momentum)
{
    return bn_node(g, OP_BN_SILU, name, x, eps, momentum);
}

static int unary(eng_graph *g, int op, int x)
{
    if (!valid(g, x)) return -1;
    g_tensor in = g->t[x];
    g_node *nd = new_node(g, op, NULL);
    if (!nd) return -1;
    nd->in[0] = x, nd->nin = 1;
    return nd->out = new_tensor(g, in.n, in.h, in.w, in.c, g->nn - 1);
}

int eng_g_silu(eng_graph *g, int x)
{
    return unary(g, OP_SILU, x);
}

int eng_g_sigmoid(eng_graph *g, int x)
{
    return unary(g, OP_SIGMOID, x);
}

int eng_g_add(eng_graph *g, int a, int b)
{
    if (!valid(g, a) || !valid(g, b)) return -1;
    g_tensor A = g->t[a], B = g->t[b];
    if (A.n != B.n || A.h != B.h || A.w != B.w || A.c != B.c)
        return fail(g, "add: shapes %dx%dx%dx%d and %dx%dx%dx%d differ", A.n, A.h, A.w, A.c, B.n, B.h, B.w, B.c);
    int t = unary(g, OP_ADD, a);
    if (t >= 0) g->nodes[g->nn - 1].in[1] = b, g->nodes[g->nn - 1].nin = 2;
    return t;
}

int eng_g_concat(eng_graph *g, const int *xs, int k)
{
    if (k < 1 || k > G_MAX_IN) return fail(g, "concat: %d inputs (1 to %d allowed)", k, G_MAX_IN);
    int c = 0;
    for (int i = 0; i < k; i++) {
        if (!valid(g, xs[i])) return -1;
        g_tensor a = g->t[xs[i]], b = g->t[xs[0]];
        if (a.n != b.n || a.h != b.h || a.w != b.w)
            return fail(g, "concat: input %d is %dx%dx%d, input 0 is %dx%dx%d", i, a.n, a.h, a.w, b.n, b.h, b.w);
        c += a.c;
    }
    g_tensor b = g->t[xs[0]];
    g_node *nd = new_node(g, OP_CONCAT, NULL);
    if (!nd) return -1;
    memcpy(nd->in, xs, (size_t)k * sizeof *xs);
    nd->nin = k;
    return nd->out = new_tensor(g, b.n, b.h, b.w, c, g->nn - 1);
}

int eng_g_slice(eng_graph *g, int x, int c0, int c)
{
    if (!valid(g, x)) return -1;
    g_tensor in = g->t[x];
    if (c0 < 0 || c < 1 || c0 + c > in.c) return fail(g, "slice: channels [%d, %d) of %d", c0, c0 + c, in.c);
    int t = unary(g, OP_SLICE, x);
    if (t >= 0) {
        g->nodes[g->nn - 1].c0 = c0;
        g->t[t].c = c;
    }
    return t;
}

int eng_g_maxpool(eng_graph *g, int x, int k)
{
    if (k < 1 || k % 2 == 0) return fail(g, "maxpool: kernel %d must be odd", k);
    int t = unary(g, OP_MAXPOOL, x);
    if (t >= 0) g->nodes[g->nn - 1].k = k;
    return t;
}

int eng_g_upsample2(eng_graph *g, int x)
{
    int t = unary(g, OP_UP2, x);
    if (t >= 0) g->t[t].h *= 2, g->t[t].w *= 2;
    return t;
}

int eng_g_conv_bn_silu(eng_graph *g, const char *name, int x, int o, int k, int stride)
{
    char cn[96], bn[96];
    snprintf(cn, sizeof cn, "%s.conv", name);
    snprintf(bn, sizeof bn, "%s.bn", name);
    int t = eng_g_conv(g, cn, x, o, k, stride, k / 2, 1, 0);
    return t < 0 ? -1 : eng_g_bn_silu(g, bn, t, 1e-3f, 0.03f);
}

/* xorshift64*: a small deterministic generator for initial weights. */
static double rnd(uint64_t *s)
{
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* A buffer to place: it lives from node `from` to node `to` (inclusive).
 * Buffers whose lives do not overlap may share memory. */
typedef struct slot {
    size_t n, off;
    int from, to;
    int tensor, grad;
} slot;

static int by_size_desc(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return x->tensor - y->tensor;
}

/* Places slots at the lowest offsets that clash with no placed slot whose
 * life overlaps, largest first (a greedy plan as TFLite's arena planner
 * makes). Returns the bytes the region needs, in floats. */
static size_t place_slots(slot *s, int n)
{
    qsort(s, (size_t)n, sizeof *s, by_size_desc);
    size_t top = 0;
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int k = 0; k < i; k++) {
                if (s[k].to < s[i].from || s[i].to < s[k].from) continue; /* lives apart */
                if (off + s[i].n <= s[k].off || s[k].off + s[k].n <= off) continue; /* memory apart */
                off = s[k].off + s[k].n;
                moved = 1;
            }
        }
        s[i].off = off;
        if (off + s[i].n > top) top = off + s[i].n;
    }
    return top;
}

/* A tensor consumed only by slices whose channel ranges are disjoint and
 * cover all its channels (C2f's split) gets its whole gradient from them:
 * each slice can overwrite its channels, and nothing needs zeroing. */
static void mark_splits(eng_graph *g)
{
    for (int i = 0; i < g->nn; i++) {
        const g_node *a = &g->nodes[i];
        if (a->op != OP_SLICE) continue;
        g_tensor *t = &g->t[a->in[0]];
        if (t->split) continue; /* decided at its first slice */
        int covered = 0, ok = 1;
        for (int j = 0; j < g->nn && ok; j++) {
            const g_node *b = &g->nodes[j];
            for (int k = 0; k < b->nin && ok; k++) {
                if (b->in[k] != a->in[0]) continue;
                if (b->op != OP_SLICE) {
                    ok = 0;
                    break;
                }
                covered += g->t[b->out].c;
                for (int q = 0; q < j; q++) { /* disjoint from every earlier slice of t */
                    const g_node *e = &g->nodes[q];
                    if (e->op == OP_SLICE && e->in[0] == a->in[0] && e->c0 < b->c0 + g->t[b->out].c &&
                        b->c0 < e->c0 + g->t[e->out].c)
                        ok = 0;
                }
            }
        }
        t->split = ok && covered == t->c;
    }
}

/* Activations and gradients. A gradient lives during the backward pass
 * from the last op that consumes its tensor (which runs first, backwards)
 * to the op that produced it, so most gradients can share memory; the
 * graph's outputs (consumed by none) live from the start of the backward
 * pass. In training every activation is kept for the backward pass; in an
 * inference plan an activation lives from its producer to its last
 * consumer, so activations share too. */
static lupe_status place_tensors(eng_graph *g, int training, size_t *off)
{
    int *last = lupe_malloc((size_t)(g->nt ? g->nt : 1) * sizeof *last);
    slot *s = lupe_calloc((size_t)(2 * g->nt + 1), sizeof *s);
    if (!last || !s) {
        lupe_free(last);
        lupe_free(s);
        return lupe_err(LUPE_ENOMEM, "graph %s: out of memory planning", g->name);
    }
    for (int i = 0; i < g->nt; i++) last[i] = -1;
    for (int i = 0; i < g->nn; i++)
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (i > last[g->nodes[i].in[k]]) last[g->nodes[i].in[k]] = i;
    int ns = 0;
    for (int i = 0; i < g->nt; i++) {
        g_tensor *t = &g->t[i];
        g->t[i].last = last[i];
        size_t n = align_up((size_t)t->n * t->h * t->w * t->c);
        if (training) {
            t->off = *off, *off += n;
            if (!t->is_input) s[ns++] = (slot){n, 0, t->producer, last[i] < 0 ? g->nn : last[i], i, 1};
        } else {
            s[ns++] = (slot){n, 0, t->is_input ? -1 : t->producer, last[i] < 0 ? g->nn : last[i], i, 0};
        }
    }
    size_t region = place_slots(s, ns);
    for (int k = 0; k < ns; k++) {
        if (s[k].grad)
            g->t[s[k].tensor].goff = *off + s[k].off;
        else
            g->t[s[k].tensor].off = *off + s[k].off;
    }
    *off += region;
    mark_splits(g);
    lupe_free(last);
    lupe_free(s);
    return LUPE_OK;
}

lupe_status eng_graph_plan(eng_graph *g, int training)
{
    if (g->st) return lupe_err(g->st, "%s", g->err);
    if (g->planned) return lupe_err(LUPE_EARG, "graph %s is already planned", g->name);
    g->training = training;
    size_t off = 0;
    /* Parameters and their gradients first, so they sit together. */
    for (int i = 0; i < g->np; i++) g->p[i].off = off, off += align_up(g->p[i].n);
    for (int i = 0; i < g->np; i++) {
        g->p[i].goff = training ? off : SIZE_MAX;
        if (training) off += align_up(g->p[i].n);
    }
    lupe_status st = place_tensors(g, training, &off);
    if (st) return st;
    size_t scratch = 0;
    for (int i = 0; i < g->nn; i++) {
        g_node *nd = &g->nodes[i];
        if (graph__has_bn(nd->op)) {
            nd->st_off = off;
            off += 4 * align_up((size_t)g->t[nd->in[0]].c); /* mean, invstd, running mean, running var */
        }
        size_t s = 0;
        if ((st = graph__prepare(g, nd, &s))) return lupe_err_ctx(st, "graph %s: layer %s", g->name, nd->name);
        if (s > scratch) scratch = s;
    }
    g->scratch_off = off;
    off += align_up((scratch + sizeof(float) - 1) / sizeof(float));
    g->arena_floats = off;
    g->arena = lupe_calloc(off ? off : 1, sizeof(float));
    g->params = lupe_calloc((size_t)(g->np ? g->np : 1), sizeof *g->params);
    if (!g->arena || !g->params)
        return lupe_err(LUPE_ENOMEM, "graph %s: an arena of %zu MiB does not fit", g->name, off * 4 >> 20);
    uint64_t seed = g->seed;
    for (int i = 0; i < g->np; i++) {
        g_param *p = &g->p[i];
        float *w = g->arena + p->off;
        for (size_t k = 0; k < p->n; k++) w[k] = (float)(p->lo + (p->hi - p->lo) * rnd(&seed));
        g->params[i] = (eng_param){p->name, w, training ? g->arena + p->goff : NULL, p->n, p->group};
    }
    for (int i = 0; i < g->nn; i++) {
        g_node *nd = &g->nodes[i];
        if (!graph__has_bn(nd->op)) continue;
        int c = g->t[nd->in[0]].c;
        float *rvar = g->arena + nd->st_off + 3 * align_up((size_t)c);
        for (int k = 0; k < c; k++) rvar[k] = 1.0f;
    }
    g->planned = 1;
    return LUPE_OK;
}

void eng_graph_set_fast(eng_graph *g, int fast)
{
    g->fast = fast;
}

void eng_graph_set_precision(eng_graph *g, int precision)
{
    g->precision = precision;
}

void eng_graph_shape(const eng_graph *g, int t, int shape[4])
{
    shape[0] = g->t[t].n, shape[1] = g->t[t].h, shape[2] = g->t[t].w, shape[3] = g->t[t].c;
}

float *eng_g_data(eng_graph *g, int t)
{
    return g->arena + g->t[t].off;
}

float *eng_g_grad(eng_graph *g, int t)
{
    return g->t[t].goff == SIZE_MAX ? NULL : g->arena + g->t[t].goff;
}

size_t eng_graph_arena_bytes(const eng_graph *g)
{
    return g->arena_floats * sizeof(float);
}

int eng_graph_params(eng_graph *g, const eng_param **out)
{
    *out = g->params;
    return g->np;
}

void eng_graph_forward(eng_graph *g, int training)
{
    for (int i = 0; i < g->nn; i++) graph__forward(g, &g->nodes[i], training);
}

void eng_graph_backward(eng_graph *g)
{
    /* A consumed tensor's gradient starts at zero just before its last
     * consumer (the first to run backwards) adds to it: gradients share
     * memory, so it cannot be zeroed earlier. Outputs (consumed by none)
     * hold what the caller put there. */
    for (int i = g->nn - 1; i >= 0; i--) {
        g_node *nd = &g->nodes[i];
        /* An op with an overwriting backward that is its input's first
         * writer sets the gradient instead of adding to zeros: no memset,
         * no read of the zeros. */
        for (int k = 0; k < nd->nin; k++) {
            g_tensor *t = &g->t[nd->in[k]];
            int dup = 0;
            for (int j = 0; j < k; j++) dup |= nd->in[j] == nd->in[k];
            if (t->goff != SIZE_MAX && t->last == i && !dup && !graph__first_writer_sets(g, nd, i, k))
                memset(g->arena + t->goff, 0, (size_t)t->n * t->h * t->w * t->c * sizeof(float));
        }
        graph__backward(g, nd, i);
    }
}

/* Running statistics are named after their layer, like PyTorch's buffers. */
int eng_graph_state(eng_graph *g, eng_tensor_rec *out, int max)
{
    int n = 0;
    for (int i = 0; i < g->np && n < max; i++, n++) {
        g_param *p = &g->p[i];
        out[n] = (eng_tensor_rec){.name = p->name, .ndim = p->ndim, .n = p->n, .data = g->arena + p->off};
        memcpy(out[n].dims, p->dims, (size_t)p->ndim * sizeof *p->dims);
    }
    for (int i = 0; i < g->nn; i++) {
        g_node *nd = &g->nodes[i];
        if (!graph__has_bn(nd->op)) continue;
        int c = g->t[nd->in[0]].c;
        for (int k = 0; k < 2 && n < max; k++, n++) {
            out[n] = (eng_tensor_rec){.name = k ? nd->rvar_name : nd->rmean_name, .ndim = 1, .dims = {c}, .n = (size_t)c,
                                      .data = g->arena + nd->st_off + (size_t)(2 + k) * align_up((size_t)c)};
        }
    }
    return n;
}

lupe_status eng_graph_load(eng_graph *g, const eng_ckpt *c)
{
    int max = g->np + 2 * g->nn;
    eng_tensor_rec *recs = lupe_malloc((size_t)(max ? max : 1) * sizeof *recs);
    if (!recs) return LUPE_ENOMEM;
    int n = eng_graph_state(g, recs, max);
    lupe_status st = LUPE_OK;
    for (int i = 0; i < n && !st; i++) {
        const eng_tensor_rec *r = eng_ckpt_find(c, recs[i].name);
        if (!r)
            st = lupe_err(LUPE_ENOTFOUND, "graph %s: the checkpoint has no tensor '%s'", g->name, recs[i].name);
        else if (r->n != recs[i].n)
            st = lupe_err(LUPE_EFORMAT, "graph %s: tensor '%s' has %zu values in the checkpoint, %zu in the graph",
                          g->name, recs[i].name, r->n, recs[i].n);
        else
            memcpy(recs[i].data, r->data, r->n * sizeof(float));
    }
    lupe_free(recs);
    return st;
}

int eng_graph_nodes(const eng_graph *g)
{
    return g->nn;
}

int eng_graph_tensors(const eng_graph *g)
{
    return g->nt;
}

void eng_graph_node(const eng_graph *g, int i, eng_node_info *out)
{
    const g_node *nd = &g->nodes[i];
    memset(out, 0, sizeof *out);
    out->op = (eng_op)nd->op;
    out->name = nd->name;
    out->nin = nd->nin;
    out->in = nd->in;
    out->out = nd->out;
    if (nd->op == OP_CONV) out->conv = nd->cd;
    out->k = nd->k;
    out->c0 = nd->c0;
    out->eps = nd->eps;
    if (nd->p0 >= 0) {
        out->wname = g->p[nd->p0].name;
        if (g->arena) out->w = g->arena + g->p[nd->p0].off;
    }
    if (nd->p1 >= 0) {
        out->bname = g->p[nd->p1].name;
        if (g->arena) out->b = g->arena + g->p[nd->p1].off;
    }
    if (graph__has_bn(nd->op) && g->arena) {
        size_t s = align_up((size_t)g->t[nd->in[0]].c);
        out->rmean = g->arena + nd->st_off + 2 * s;
        out->rvar = g->arena + nd->st_off + 3 * s;
    }
}
