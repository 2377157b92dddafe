/*
 * Building an ONNX ModelProto in memory: the protobuf-c messages are plain
 * structs linked by pointers, so every message, string and array comes
 * from one pool and the whole model is freed at once after packing. An
 * allocation failure is sticky (see onnx__ex in export_internal.h).
 */
#include <stdarg.h>
#include <string.h>

#include "onnx/export_internal.h"

/* Initializers are written as raw_data, which ONNX defines as
 * little-endian; floats are copied byte for byte. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ONNX exporter writes raw tensor data in host order, which must be little-endian"
#endif

static int vec_push(onnx__vec *v, void *p)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        void **nv = lupe_realloc(v->v, cap * sizeof *nv);
        if (!nv) return -1;
        v->v = nv, v->cap = cap;
    }
    v->v[v->n++] = p;
    return 0;
}

static void *alloc(onnx__ex *e, size_t n)
{
    if (e->oom) return NULL;
    void *p = lupe_calloc(1, n ? n : 1);
    if (!p || vec_push(&e->pool, p)) {
        lupe_free(p);
        e->oom = 1;
        return NULL;
    }
    return p;
}

static void *dup(onnx__ex *e, const void *src, size_t n)
{
    void *p = alloc(e, n);
    if (p && n) memcpy(p, src, n);
    return p;
}

static void push(onnx__ex *e, onnx__vec *v, void *p)
{
    if (!p || e->oom) return;
    if (vec_push(v, p)) e->oom = 1;
}

void onnx__ex_init(onnx__ex *e)
{
    memset(e, 0, sizeof *e);
}

void onnx__ex_cleanup(onnx__ex *e)
{
    for (size_t i = 0; i < e->pool.n; i++) lupe_free(e->pool.v[i]);
    onnx__vec *vs[] = {&e->pool, &e->nodes, &e->inits, &e->inputs, &e->outputs, &e->meta};
    for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) lupe_free(vs[i]->v);
    memset(e, 0, sizeof *e);
}

char *onnx__ex_str(onnx__ex *e, const char *fmt, ...)
{
    if (e->oom) return NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? alloc(e, (size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

Onnx__NodeProto *onnx__ex_node(onnx__ex *e, const char *op, const char *name, const char *const *in, int nin, int nout)
{
    Onnx__NodeProto *n = alloc(e, sizeof *n);
    char **ins = alloc(e, (size_t)nin * sizeof *ins), **outs = alloc(e, (size_t)nout * sizeof *outs);
    if (!n || !ins || !outs) return NULL;
    onnx__node_proto__init(n);
    n->op_type = onnx__ex_str(e, "%s", op);
    n->name = onnx__ex_str(e, "%s", name);
    for (int i = 0; i < nin; i++) ins[i] = onnx__ex_str(e, "%s", in[i] ? in[i] : "");
    for (int i = 0; i < nout; i++) outs[i] = nout == 1 ? n->name : onnx__ex_str(e, "%s.%d", name, i);
    n->n_input = (size_t)nin, n->input = ins;
    n->n_output = (size_t)nout, n->output = outs;
    push(e, &e->nodes, n);
    return e->oom ? NULL : n;
}

static Onnx__AttributeProto *attr(onnx__ex *e, Onnx__NodeProto *n, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    if (!n || e->oom) return NULL;
    Onnx__AttributeProto *a = alloc(e, sizeof *a);
    Onnx__AttributeProto **v = alloc(e, (n->n_attribute + 1) * sizeof *v);
    if (!a || !v) return NULL;
    onnx__attribute_proto__init(a);
    a->name = onnx__ex_str(e, "%s", name);
    a->has_type = 1, a->type = type;
    /* Nodes have a handful of attributes: copying the array is cheaper
     * to reason about than a growable one per node. */
    if (n->n_attribute) memcpy(v, n->attribute, n->n_attribute * sizeof *v);
    v[n->n_attribute] = a;
    n->attribute = v;
    n->n_attribute++;
    return a;
}

void onnx__ex_attr_int(onnx__ex *e, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

void onnx__ex_attr_ints(onnx__ex *e, Onnx__NodeProto *n, const char *name, const int64_t *v, int k)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (a) a->ints = dup(e, v, (size_t)k * sizeof *v), a->n_ints = (size_t)k;
}

void onnx__ex_attr_float(onnx__ex *e, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = v;
}

void onnx__ex_attr_str(onnx__ex *e, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (a) a->has_s = 1, a->s.len = strlen(v), a->s.data = dup(e, v, strlen(v));
}

static const char *initializer(onnx__ex *e, const char *name, int type, const void *data, size_t elem,
                               const int64_t *dims, int ndim)
{
    Onnx__TensorProto *t = alloc(e, sizeof *t);
    if (!t) return NULL;
    onnx__tensor_proto__init(t);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)dims[i];
    t->name = onnx__ex_str(e, "%s", name);
    t->has_data_type = 1, t->data_type = type;
    t->dims = dup(e, dims, (size_t)ndim * sizeof *dims), t->n_dims = (size_t)ndim;
    t->has_raw_data = 1, t->raw_data.len = n * elem, t->raw_data.data = dup(e, data, n * elem);
    push(e, &e->inits, t);
    return e->oom ? NULL : t->name;
}

const char *onnx__ex_f32(onnx__ex *e, const char *name, const float *data, const int64_t *dims, int ndim)
{
    return initializer(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, data, sizeof(float), dims, ndim);
}

const char *onnx__ex_i64(onnx__ex *e, const char *name, const int64_t *data, const int64_t *dims, int ndim)
{
    return initializer(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, data, sizeof(int64_t), dims, ndim);
}

void onnx__ex_io(onnx__ex *e, int is_output, const char *name, const int64_t *dims, int ndim)
{
    Onnx__ValueInfoProto *v = alloc(e, sizeof *v);
    Onnx__TypeProto *tp = alloc(e, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = alloc(e, sizeof *tt);
    Onnx__TensorShapeProto *sh = alloc(e, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **d = alloc(e, (size_t)ndim * sizeof *d);
    if (!v || !tp || !tt || !sh || !d) return;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < ndim; i++) {
        if (!(d[i] = alloc(e, sizeof *d[i]))) return;
        onnx__tensor_shape_proto__dimension__init(d[i]);
        d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[i]->dim_value = dims[i];
    }
    sh->dim = d, sh->n_dim = (size_t)ndim;
    tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tp->tensor_type = tt;
    v->name = onnx__ex_str(e, "%s", name);
    v->type = tp;
    push(e, is_output ? &e->outputs : &e->inputs, v);
}

void onnx__ex_meta(onnx__ex *e, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *m = alloc(e, sizeof *m);
    if (!m) return;
    onnx__string_string_entry_proto__init(m);
    m->key = onnx__ex_str(e, "%s", key);
    m->value = onnx__ex_str(e, "%s", value);
    push(e, &e->meta, m);
}

lupe_status onnx__ex_write(onnx__ex *e, const char *path, const char *graph_name, const char *doc, int64_t opset)
{
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto os;
    Onnx__OperatorSetIdProto *osv[1] = {&os};
    onnx__model_proto__init(&m);
    onnx__graph_proto__init(&g);
    onnx__operator_set_id_proto__init(&os);
    os.domain = onnx__ex_str(e, "%s", "");
    os.has_version = 1, os.version = opset;
    g.name = (char *)graph_name;
    g.doc_string = (char *)doc;
    g.node = (Onnx__NodeProto **)e->nodes.v, g.n_node = e->nodes.n;
    g.initializer = (Onnx__TensorProto **)e->inits.v, g.n_initializer = e->inits.n;
    g.input = (Onnx__ValueInfoProto **)e->inputs.v, g.n_input = e->inputs.n;
    g.output = (Onnx__ValueInfoProto **)e->outputs.v, g.n_output = e->outputs.n;
    m.has_ir_version = 1, m.ir_version = 8;
    m.opset_import = osv, m.n_opset_import = 1;
    m.producer_name = onnx__ex_str(e, "lupe");
    m.producer_version = onnx__ex_str(e, "%s", LUPE_VERSION);
    m.graph = &g;
    m.metadata_props = (Onnx__StringStringEntryProto **)e->meta.v, m.n_metadata_props = e->meta.n;
    if (e->oom) return lupe_err(LUPE_ENOMEM, "%s: out of memory building the ONNX model", path);
    return onnx__write(path, &m);
}
