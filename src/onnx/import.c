/*
 * ONNX import: reads a model file into values and nodes, runs every node's
 * shape inference (and constant folding) in file order, then hands the
 * graph to the planner. Also the small things the other import files
 * share: the temporary pool, errors that name the file and node, value
 * names, attributes and tensor data.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/net_internal.h"

/* ---- pool --------------------------------------------------------------- */
struct ox_pool {
    struct ox_pool *next;
    size_t size, used; /* used starts at the offset that makes data + used 64-byte aligned */
    unsigned char data[];
};

void *ox__pool_alloc(ox_pool **p, size_t n)
{
    n = (n + 63) & ~(size_t)63;
    if (!*p || (*p)->size - (*p)->used < n) {
        size_t sz = n > (1u << 20) ? n : (1u << 20);
        ox_pool *b = lupe_malloc(sizeof *b + sz + 64);
        if (!b) return NULL;
        b->next = *p, b->size = sz, b->used = 0;
        /* The funnel's blocks are 16-byte aligned; oneDNN and the vector
         * loops like 64. */
        uintptr_t off = (64 - ((uintptr_t)b->data & 63)) & 63;
        b->used = off;
        b->size = sz + off;
        *p = b;
    }
    void *r = (*p)->data + (*p)->used;
    (*p)->used += n;
    memset(r, 0, n);
    return r;
}

void ox__pool_free(ox_pool **p)
{
    while (*p) {
        ox_pool *n = (*p)->next;
        lupe_free(*p);
        *p = n;
    }
}

size_t ox__pool_bytes(const ox_pool *p)
{
    size_t n = 0;
    for (; p; p = p->next) n += p->used;
    return n;
}

/* ---- errors -------------------------------------------------------------- */
lupe_status ox__node_err(ox_ctx *c, const ox_node *n, lupe_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!n) return lupe_err(st, "%s: %s", c->path, msg);
    if (n->name && n->name[0]) return lupe_err(st, "%s: node '%s' (%s): %s", c->path, n->name, n->op, msg);
    return lupe_err(st, "%s: node #%d (%s): %s", c->path, n->idx, n->op, msg);
}

/* ---- values ------------------------------------------------------------- */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int val_find(const ox_ctx *c, const char *name)
{
    if (!c->hcap) return -1;
    for (size_t i = hash_str(name) & (c->hcap - 1);; i = (i + 1) & (c->hcap - 1)) {
        int id = c->hash[i];
        if (id < 0) return -1;
        if (!strcmp(c->v[id].name, name)) return id;
    }
}

static lupe_status hash_put(ox_ctx *c, int id)
{
    if ((size_t)(c->nv + 1) * 2 > c->hcap) {
        size_t cap = c->hcap ? c->hcap * 2 : 256;
        int *h = lupe_malloc(cap * sizeof *h);
        if (!h) return LUPE_ENOMEM;
        for (size_t i = 0; i < cap; i++) h[i] = -1;
        lupe_free(c->hash);
        c->hash = h, c->hcap = cap;
        for (int j = 0; j < c->nv; j++)
            if (j != id && c->v[j].name[0]) {
                size_t i = hash_str(c->v[j].name) & (cap - 1);
                while (h[i] >= 0) i = (i + 1) & (cap - 1);
                h[i] = j;
            }
    }
    size_t i = hash_str(c->v[id].name) & (c->hcap - 1);
    while (c->hash[i] >= 0) i = (i + 1) & (c->hcap - 1);
    c->hash[i] = id;
    return LUPE_OK;
}

lupe_status ox__val_reserve(ox_ctx *c, int n)
{
    if (n <= c->cap_v) return LUPE_OK;
    ox_val *v = lupe_realloc(c->v, (size_t)n * sizeof *v);
    if (!v) return LUPE_ENOMEM;
    c->v = v, c->cap_v = n;
    return LUPE_OK;
}

int ox__val_new(ox_ctx *c, const char *name)
{
    if (c->nv == c->cap_v) {
        int cap = c->cap_v ? c->cap_v * 2 : 256;
        ox_val *v = lupe_realloc(c->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        c->v = v, c->cap_v = cap;
    }
    int id = c->nv++;
    ox_val *v = &c->v[id];
    memset(v, 0, sizeof *v);
    v->name = name ? name : "";
    v->producer = -1;
    v->buf = -1;
    v->as[0] = v->as[1] = -1;
    if (v->name[0] && hash_put(c, id)) {
        c->nv--;
        return -1;
    }
    return id;
}

lupe_status ox__val_set_shape(ox_ctx *c, const ox_node *n, ox_val *v, int rank, const int64_t *dims, ox_dtype t)
{
    if (rank < 0 || rank > OX_MAXR)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "'%s' would have rank %d; lupe handles ranks up to %d", v->name,
                           rank, OX_MAXR);
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return ox__node_err(c, n, LUPE_EFORMAT, "'%s' would have a negative dimension", v->name);
        if (dims[i] && numel > OX_MAX_ELEMS / dims[i])
            return ox__node_err(c, n, LUPE_ELIMIT, "'%s' would have more than 2^31 elements", v->name);
        numel *= dims[i];
        v->dims[i] = dims[i];
    }
    v->rank = rank, v->numel = numel, v->dtype = t;
    return LUPE_OK;
}

lupe_status ox__val_make_const(ox_ctx *c, ox_val *v)
{
    size_t n = (size_t)(v->numel ? v->numel : 1);
    v->is_const = 1;
    if (v->dtype == OX_F32)
        v->f = ox__pool_alloc(&c->tmp, n * sizeof(float));
    else
        v->i = ox__pool_alloc(&c->tmp, n * sizeof(int64_t));
    if (!v->f && !v->i) return lupe_err_ctx(LUPE_ENOMEM, "%s: constant '%s'", c->path, v->name);
    return LUPE_OK;
}

double ox__cget(const ox_val *v, int64_t i)
{
    return v->dtype == OX_F32 ? (double)v->f[i] : (double)v->i[i];
}

void ox__cset(ox_val *v, int64_t i, double x)
{
    if (v->dtype == OX_F32)
        v->f[i] = (float)x;
    else if (v->dtype == OX_BOOL)
        v->i[i] = x != 0;
    else
        v->i[i] = (int64_t)x; /* truncates toward zero, as ONNX's integer Div */
}

/* ---- attributes --------------------------------------------------------- */
const Onnx__NodeProto *ox__proto(const ox_ctx *c, const ox_node *n)
{
    return c->model->graph->node[n->idx];
}

const Onnx__AttributeProto *ox__attr(const ox_node *n, const Onnx__NodeProto *p, const char *name)
{
    (void)n;
    for (size_t i = 0; i < p->n_attribute; i++)
        if (p->attribute[i]->name && !strcmp(p->attribute[i]->name, name)) return p->attribute[i];
    return NULL;
}

static const char *attr_type_name(int t)
{
    static const char *const names[] = {"undefined", "float", "int", "string", "tensor", "graph", "floats", "ints",
                                        "strings", "tensors", "graphs", "sparse tensor", "sparse tensors",
                                        "type proto", "type protos"};
    return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

/* The attribute's type, or what its fields say when an old writer left
 * the type out. */
static int attr_type(const Onnx__AttributeProto *a)
{
    if (a->has_type && a->type) return (int)a->type;
    if (a->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    if (a->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (a->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (a->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    if (a->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (a->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    return 0;
}

static lupe_status want_type(ox_ctx *c, const ox_node *n, const Onnx__AttributeProto *a, int t)
{
    int got = attr_type(a);
    if (got == t) return LUPE_OK;
    return ox__node_err(c, n, LUPE_EFORMAT, "attribute '%s' should be of type %s, not %s", a->name, attr_type_name(t),
                       attr_type_name(got));
}

lupe_status ox__attr_int(ox_ctx *c, const ox_node *n, const char *name, int64_t dflt, int64_t *out)
{
    const Onnx__AttributeProto *a = ox__attr(n, ox__proto(c, n), name);
    *out = dflt;
    if (!a) return LUPE_OK;
    lupe_status st = want_type(c, n, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!st) *out = a->i;
    return st;
}

lupe_status ox__attr_float(ox_ctx *c, const ox_node *n, const char *name, float dflt, float *out)
{
    const Onnx__AttributeProto *a = ox__attr(n, ox__proto(c, n), name);
    *out = dflt;
    if (!a) return LUPE_OK;
    lupe_status st = want_type(c, n, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!st) *out = a->f;
    return st;
}

lupe_status ox__attr_ints(ox_ctx *c, const ox_node *n, const char *name, int64_t *out, int max, int *count)
{
    const Onnx__AttributeProto *a = ox__attr(n, ox__proto(c, n), name);
    *count = -1;
    if (!a) return LUPE_OK;
    lupe_status st = want_type(c, n, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (st) return st;
    if (a->n_ints > (size_t)max)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "attribute '%s' has %zu values; lupe handles up to %d", name,
                           a->n_ints, max);
    memcpy(out, a->ints, a->n_ints * sizeof *out);
    *count = (int)a->n_ints;
    return LUPE_OK;
}

lupe_status ox__attr_str(ox_ctx *c, const ox_node *n, const char *name, const char *dflt, char *buf, size_t bufsz)
{
    const Onnx__AttributeProto *a = ox__attr(n, ox__proto(c, n), name);
    snprintf(buf, bufsz, "%s", dflt);
    if (!a) return LUPE_OK;
    lupe_status st = want_type(c, n, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (st) return st;
    if (a->s.len >= bufsz || memchr(a->s.data, 0, a->s.len))
        return ox__node_err(c, n, LUPE_EFORMAT, "attribute '%s' is not a short string", name);
    memcpy(buf, a->s.data, a->s.len);
    buf[a->s.len] = 0;
    return LUPE_OK;
}

/* ---- tensors ------------------------------------------------------------ */
static const char *dtype_name(int t)
{
    static const char *const names[] = {"undefined", "float",  "uint8",   "int8",      "uint16",     "int16",
                                        "int32",     "int64",  "string",  "bool",      "float16",    "double",
                                        "uint32",    "uint64", "complex64", "complex128", "bfloat16"};
    return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

static float half_to_float(uint16_t h)
{
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(m | 1024), e - 25);
    return s ? -v : v;
}

static uint64_t le_bytes(const uint8_t *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

lupe_status ox__tensor_to_val(ox_ctx *c, const ox_node *n, const Onnx__TensorProto *t, ox_val *v)
{
    const char *tn = t->name && t->name[0] ? t->name : v->name;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED,
                           "tensor '%s' keeps its data in an external file; lupe reads self-contained models "
                           "(save the model with its weights inside)",
                           tn);
    if (t->segment) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "tensor '%s' is segmented", tn);
    const int dt = t->has_data_type ? t->data_type : 0;
    int esz;
    ox_dtype to;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: esz = 4, to = OX_F32; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: esz = 8, to = OX_F32; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: esz = 2, to = OX_F32; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: esz = 8, to = OX_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: esz = 8, to = OX_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: esz = 4, to = OX_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: esz = 4, to = OX_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: esz = 2, to = OX_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: esz = 2, to = OX_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: esz = 1, to = OX_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: esz = 1, to = OX_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: esz = 1, to = OX_BOOL; break;
    default:
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "tensor '%s' has element type %s (%d), which lupe does not read",
                           tn, dtype_name(dt), dt);
    }
    if (t->n_dims > OX_MAXR)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "tensor '%s' has rank %zu; lupe handles up to %d", tn, t->n_dims,
                           OX_MAXR);
    lupe_status st = ox__val_set_shape(c, n, v, (int)t->n_dims, t->dims, to);
    if (st) return lupe_err_ctx(st, "tensor '%s'", tn);
    if ((st = ox__val_make_const(c, v))) return st;
    const int64_t cnt = v->numel;
    /* Where the values are: raw little-endian bytes, or the typed field
     * the type calls for (float16, bool and small ints go in int32_data). */
    if (t->has_raw_data) {
        if (t->raw_data.len != (size_t)cnt * (size_t)esz)
            return ox__node_err(c, n, LUPE_EFORMAT, "tensor '%s' of %lld %s values has %zu bytes of data, not %lld", tn,
                               (long long)cnt, dtype_name(dt), t->raw_data.len, (long long)cnt * esz);
        const uint8_t *p = t->raw_data.data;
        for (int64_t i = 0; i < cnt; i++, p += esz) {
            uint64_t x = le_bytes(p, esz);
            double d;
            switch (dt) {
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
                uint32_t u = (uint32_t)x;
                float f;
                memcpy(&f, &u, 4);
                d = f;
                break;
            }
            case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: memcpy(&d, &x, 8); break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: d = half_to_float((uint16_t)x); break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: d = (double)(int64_t)x; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: d = (int32_t)(uint32_t)x; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: d = (int16_t)(uint16_t)x; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: d = (int8_t)(uint8_t)x; break;
            default: d = (double)x; break;
            }
            if (to == OX_F32)
                v->f[i] = (float)d;
            else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
                v->i[i] = (int64_t)x; /* exactly, beyond 2^53 too */
            else
                v->i[i] = to == OX_BOOL ? d != 0 : (int64_t)d;
        }
        return LUPE_OK;
    }
    size_t have;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: have = t->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: have = t->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: have = t->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: have = t->n_uint64_data; break;
    default: have = t->n_int32_data; break;
    }
    if (have != (size_t)cnt)
        return ox__node_err(c, n, LUPE_EFORMAT, "tensor '%s' of %lld %s values holds %zu", tn, (long long)cnt,
                           dtype_name(dt), have);
    for (int64_t i = 0; i < cnt; i++) switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: v->f[i] = t->float_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: v->f[i] = (float)t->double_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: v->f[i] = half_to_float((uint16_t)t->int32_data[i]); break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: v->i[i] = t->int64_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: v->i[i] = (int64_t)t->uint64_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: v->i[i] = t->int32_data[i] != 0; break;
        default: v->i[i] = t->int32_data[i]; break;
        }
    return LUPE_OK;
}

/* ---- the graph ------------------------------------------------------------ */
static int is_initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name)) return 1;
    return 0;
}

static lupe_status read_input(ox_ctx *c, const Onnx__ValueInfoProto *vi)
{
    const char *name = vi->name ? vi->name : "";
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return lupe_err(LUPE_EUNSUPPORTED, "%s: input '%s' is not a tensor", c->path, name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (!tt->has_elem_type || tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return lupe_err(LUPE_EUNSUPPORTED, "%s: input '%s' has element type %s; lupe feeds float32 images", c->path,
                        name, dtype_name(tt->has_elem_type ? tt->elem_type : 0));
    if (!tt->shape || tt->shape->n_dim != 4)
        return lupe_err(LUPE_EUNSUPPORTED, "%s: input '%s' has %s; lupe feeds [N, C, H, W] images", c->path, name,
                        tt->shape ? "another rank than 4" : "no shape");
    int64_t dims[4];
    static const char *const axis[] = {"batch", "channels", "height", "width"};
    for (int i = 0; i < 4; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value > 0) {
            dims[i] = d->dim_value;
        } else if (i == 0) {
            dims[i] = 1; /* a symbolic batch runs one image at a time */
        } else {
            const char *p = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param
                                ? d->dim_param
                                : "?";
            return lupe_err(LUPE_EUNSUPPORTED,
                            "%s: input '%s' has a symbolic %s '%s'; lupe plans for a fixed input size (export with a "
                            "fixed imgsz, without dynamic axes)",
                            c->path, name, axis[i], p);
        }
        if (dims[i] > 65536)
            return lupe_err(LUPE_ELIMIT, "%s: input '%s' has %s %lld, over 65536", c->path, name, axis[i],
                            (long long)dims[i]);
    }
    int id = ox__val_new(c, name);
    if (id < 0) return LUPE_ENOMEM;
    c->input = id;
    return ox__val_set_shape(c, NULL, &c->v[id], 4, dims, OX_F32);
}

static void count_op(onnx_net_stats *s, const char *op)
{
    for (int i = 0; i < s->nops; i++)
        if (!strcmp(s->ops[i].op, op)) {
            s->ops[i].count++;
            return;
        }
    if (s->nops < ONNX_NET_MAX_OPS) {
        snprintf(s->ops[s->nops].op, sizeof s->ops[0].op, "%s", op);
        s->ops[s->nops++].count = 1;
    }
}

static lupe_status read_graph(ox_ctx *c, onnx_net_stats *stats)
{
    const Onnx__GraphProto *g = c->model->graph;
    lupe_status st;
    c->input = c->output = -1;
    if (g->n_sparse_initializer) return lupe_err(LUPE_EUNSUPPORTED, "%s: sparse initializers are not supported", c->path);
    /* The input: graph inputs that no initializer names (before IR 4,
     * initializers were listed among the inputs too). */
    int ninputs = 0;
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = g->input[i]->name ? g->input[i]->name : "";
        if (is_initializer(g, name)) continue;
        if (++ninputs > 1)
            return lupe_err(LUPE_EUNSUPPORTED, "%s: the model has more than one input ('%s', '%s'...); lupe imports "
                            "single-input models",
                            c->path, c->v[c->input].name, name);
        if ((st = read_input(c, g->input[i]))) return st;
    }
    if (!ninputs) return lupe_err(LUPE_EFORMAT, "%s: the graph has no input", c->path);
    if (g->n_output != 1)
        return lupe_err(g->n_output ? LUPE_EUNSUPPORTED : LUPE_EFORMAT,
                        "%s: the model has %zu outputs; lupe imports single-output models", c->path, g->n_output);
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (!t->name || !t->name[0]) return lupe_err(LUPE_EFORMAT, "%s: initializer #%zu has no name", c->path, i);
        if (val_find(c, t->name) >= 0)
            return lupe_err(LUPE_EFORMAT, "%s: initializer '%s' is defined twice", c->path, t->name);
        int id = ox__val_new(c, t->name);
        if (id < 0) return LUPE_ENOMEM;
        if ((st = ox__tensor_to_val(c, NULL, t, &c->v[id]))) return st;
    }
    stats->initializers = (int)g->n_initializer;
    stats->nodes = (int)g->n_node;

    c->n = lupe_calloc(g->n_node ? g->n_node : 1, sizeof *c->n);
    if (!c->n) return LUPE_ENOMEM;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *p = g->node[k];
        ox_node *n = &c->n[c->nn++];
        n->idx = (int)k;
        n->name = p->name ? p->name : "";
        n->op = p->op_type ? p->op_type : "";
        count_op(stats, n->op);
        if (p->domain && p->domain[0] && strcmp(p->domain, "ai.onnx"))
            return ox__node_err(c, n, LUPE_EUNSUPPORTED, "operator domain '%s' is not supported (only the default, "
                               "ai.onnx)",
                               p->domain);
        const ox_op *def = ox__op_find(n->op);
        if (!def) {
            char list[512];
            ox__op_list(list, sizeof list);
            return ox__node_err(c, n, LUPE_EUNSUPPORTED, "operator %s is not supported; lupe runs %s",
                               n->op[0] ? n->op : "''", list);
        }
        if (p->n_input < (size_t)def->min_in || p->n_input > (size_t)def->max_in)
            return ox__node_err(c, n, LUPE_EFORMAT, "has %zu inputs; %s takes %d to %d", p->n_input, n->op, def->min_in,
                               def->max_in);
        if (p->n_output < (size_t)def->min_out || p->n_output > (size_t)def->max_out)
            return ox__node_err(c, n, LUPE_EFORMAT, "has %zu outputs; %s gives %d to %d", p->n_output, n->op,
                               def->min_out, def->max_out);
        for (size_t i = 0; i < p->n_attribute; i++) {
            const char *an = p->attribute[i]->name ? p->attribute[i]->name : "";
            /* Known attribute names, space-separated. */
            const char *s = def->attrs;
            size_t len = strlen(an);
            int known = 0;
            while (*s && !known) {
                const char *e = strchr(s, ' ');
                size_t l = e ? (size_t)(e - s) : strlen(s);
                known = l == len && len && !strncmp(s, an, l);
                s += l + (e != NULL);
            }
            if (!known) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "attribute '%s' is not supported", an);
            if (p->attribute[i]->ref_attr_name && p->attribute[i]->ref_attr_name[0])
                return ox__node_err(c, n, LUPE_EUNSUPPORTED, "attribute '%s' refers to a function attribute", an);
        }
        n->nin = (int)p->n_input, n->nout = (int)p->n_output;
        for (int i = 0; i < n->nin; i++) {
            const char *in = p->input[i] ? p->input[i] : "";
            n->in[i] = -1;
            if (!in[0]) continue; /* an omitted optional input */
            if ((n->in[i] = val_find(c, in)) < 0)
                return ox__node_err(c, n, LUPE_EFORMAT,
                                   "input '%s' is neither the graph's input, an initializer nor an output of an earlier "
                                   "node",
                                   in);
        }
        for (int i = 0; i < n->nout; i++) {
            const char *on = p->output[i] ? p->output[i] : "";
            n->out[i] = -1;
            if (!on[0]) continue;
            if (val_find(c, on) >= 0) return ox__node_err(c, n, LUPE_EFORMAT, "output '%s' is defined twice", on);
            if ((n->out[i] = ox__val_new(c, on)) < 0) return LUPE_ENOMEM;
            c->v[n->out[i]].producer = (int)k;
        }
        if ((st = def->infer(c, n))) return st;
        if (n->kind == K_NONE) stats->folded++;
    }
    const char *oname = g->output[0]->name ? g->output[0]->name : "";
    if ((c->output = val_find(c, oname)) < 0)
        return lupe_err(LUPE_EFORMAT, "%s: the graph's output '%s' is not computed by any node", c->path, oname);
    const ox_val *o = &c->v[c->output];
    snprintf(stats->input, sizeof stats->input, "%s", c->v[c->input].name);
    snprintf(stats->output, sizeof stats->output, "%s", o->name);
    if (o->dtype != OX_F32)
        return lupe_err(LUPE_EUNSUPPORTED, "%s: the graph's output '%s' is not float; lupe runs float models", c->path,
                        oname);
    return LUPE_OK;
}

/* ---- metadata and class names -------------------------------------------- */
static void skip_ws(const char **p)
{
    while (isspace((unsigned char)**p)) (*p)++;
}

void onnx_names_free(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) lupe_free(names[i]);
    lupe_free(names);
}

lupe_status onnx_parse_names(const char *text, char ***names, int *count)
{
    *names = NULL, *count = 0;
    if (!text) return lupe_err(LUPE_ENOTFOUND, "no class names");
    enum { MAXN = 4096 };
    char **v = lupe_calloc(MAXN, sizeof *v);
    if (!v) return LUPE_ENOMEM;
    lupe_status st = LUPE_OK;
    int maxid = -1, n = 0;
    const char *p = text;
    skip_ws(&p);
    if (*p++ != '{') goto bad;
    skip_ws(&p);
    while (*p != '}') {
        char *end;
        long id = strtol(p, &end, 10);
        if (end == p || id < 0 || id >= MAXN) goto bad;
        p = end;
        skip_ws(&p);
        if (*p++ != ':') goto bad;
        skip_ws(&p);
        const char q = *p++;
        if (q != '\'' && q != '"') goto bad;
        char buf[256];
        size_t len = 0;
        for (; *p && *p != q; p++) {
            if (*p == '\\' && p[1]) p++;
            if (len + 1 >= sizeof buf) goto bad;
            buf[len++] = *p;
        }
        if (*p++ != q || v[id]) goto bad;
        buf[len] = 0;
        if (!(v[id] = lupe_strdup(buf))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        n++;
        if (id > maxid) maxid = (int)id;
        skip_ws(&p);
        if (*p == ',') p++, skip_ws(&p);
        else if (*p != '}') goto bad;
    }
    p++;
    skip_ws(&p);
    if (*p || n != maxid + 1) goto bad;
    *names = v, *count = n;
    return LUPE_OK;
bad:
    st = lupe_err(LUPE_EFORMAT, "class names '%.80s' are not a dict of ids 0..n-1 to quoted names", text);
out:
    onnx_names_free(v, MAXN);
    return st;
}

/* ---- loading ------------------------------------------------------------- */
static void ctx_cleanup(ox_ctx *c)
{
    onnx__model_free(c->model);
    lupe_free(c->v);
    lupe_free(c->n);
    lupe_free(c->hash);
    ox__pool_free(&c->tmp);
}

void onnx_net_free(onnx_net *net)
{
    if (!net) return;
    for (int i = 0; i < net->nsteps; i++) ox__step_cleanup(&net->steps[i]);
    lupe_free(net->steps);
    lupe_free(net->arena);
    ox__pool_free(&net->keep);
    lupe_free(net);
}

lupe_status onnx_net_load(const char *path, int threads, onnx_net **out)
{
    *out = NULL;
    if (threads > 0) eng_set_threads(threads);
    ox_ctx c = {.path = path, .threads = eng_get_threads()};
    onnx_net *net = lupe_calloc(1, sizeof *net);
    if (!net) return LUPE_ENOMEM;
    net->threads = c.threads;
    lupe_status st = onnx__read(path, &c.model);
    if (st) goto out;
    c.opset = onnx__opset(c.model);
    net->stats.opset = c.opset;
    if (c.opset < 7 || c.opset > 21) {
        st = lupe_err(LUPE_EUNSUPPORTED, "%s: opset %lld; lupe imports opsets 7 to 21 (tested: 12 and 17)", path,
                      (long long)c.opset);
        goto out;
    }
    if ((st = read_graph(&c, &net->stats))) goto out;
    /* Metadata: kept as key/value pairs for onnx_net_meta. */
    const Onnx__ModelProto *m = c.model;
    net->nmeta = 0;
    if (m->n_metadata_props) {
        net->meta = ox__pool_alloc(&net->keep, 2 * m->n_metadata_props * sizeof(char *));
        if (!net->meta) goto nomem;
        for (size_t i = 0; i < m->n_metadata_props; i++) {
            const char *k = m->metadata_props[i]->key ? m->metadata_props[i]->key : "";
            const char *v = m->metadata_props[i]->value ? m->metadata_props[i]->value : "";
            char *kc = ox__pool_alloc(&net->keep, strlen(k) + 1), *vc = ox__pool_alloc(&net->keep, strlen(v) + 1);
            if (!kc || !vc) goto nomem;
            memcpy(kc, k, strlen(k)), memcpy(vc, v, strlen(v));
            net->meta[2 * net->nmeta] = kc, net->meta[2 * net->nmeta + 1] = vc;
            net->nmeta++;
        }
    }
    if ((st = ox__plan(&c, net))) goto out;
    *out = net;
    net = NULL;
    goto out;
nomem:
    st = lupe_err_ctx(LUPE_ENOMEM, "%s", path);
out:
    ctx_cleanup(&c);
    onnx_net_free(net);
    return st;
}

const char *onnx_net_meta(const onnx_net *net, const char *key)
{
    for (int i = 0; i < net->nmeta; i++)
        if (!strcmp(net->meta[2 * i], key)) return net->meta[2 * i + 1];
    return NULL;
}
