/*
 * The ONNX operators lupe imports: one function each that checks the
 * node's attributes and inputs against the operator's definition (at the
 * model's opset), infers its outputs' shapes, and either folds it (every
 * input constant: the result is computed now, in double, and becomes a
 * constant) or records what it does at run time for the planner.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/net_internal.h"

/* ---- helpers -------------------------------------------------------------- */
static ox_val *IN(ox_ctx *c, const ox_node *n, int i)
{
    return i < n->nin && n->in[i] >= 0 ? &c->v[n->in[i]] : NULL;
}

static ox_val *OUT(ox_ctx *c, const ox_node *n, int i)
{
    return i < n->nout && n->out[i] >= 0 ? &c->v[n->out[i]] : NULL;
}

static int all_const(ox_ctx *c, const ox_node *n)
{
    for (int i = 0; i < n->nin; i++)
        if (n->in[i] >= 0 && !c->v[n->in[i]].is_const) return 0;
    return 1;
}

static const char *shape_str(const ox_val *v, char *buf, size_t sz)
{
    size_t k = (size_t)snprintf(buf, sz, "[");
    for (int i = 0; i < v->rank && k < sz; i++)
        k += (size_t)snprintf(buf + k, sz - k, "%s%lld", i ? ", " : "", (long long)v->dims[i]);
    if (k < sz) snprintf(buf + k, sz - k, "]");
    return buf;
}

static lupe_status need(ox_ctx *c, const ox_node *n, int i, const char *what)
{
    if (!IN(c, n, i)) return ox__node_err(c, n, LUPE_EFORMAT, "input %d (%s) is missing", i, what);
    return LUPE_OK;
}

/* A run-time input must be float: lupe's run-time tensors are. */
static lupe_status need_float(ox_ctx *c, const ox_node *n, int i)
{
    ox_val *v = IN(c, n, i);
    if (v && v->dtype != OX_F32)
        return ox__node_err(c, n, LUPE_EFORMAT, "input '%s' is %s where float is expected", v->name,
                           v->dtype == OX_BOOL ? "bool" : "an integer");
    return LUPE_OK;
}

static lupe_status need_const(ox_ctx *c, const ox_node *n, int i, const char *what)
{
    lupe_status st = need(c, n, i, what);
    if (st) return st;
    if (!IN(c, n, i)->is_const)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED,
                           "input '%s' (%s) is computed at run time; lupe needs it constant (static shapes)",
                           IN(c, n, i)->name, what);
    return LUPE_OK;
}

/* The integers of constant input i (a scalar or 1-D). */
static lupe_status const_ints(ox_ctx *c, const ox_node *n, int i, const char *what, int64_t *out, int max, int *cnt)
{
    lupe_status st = need_const(c, n, i, what);
    if (st) return st;
    const ox_val *v = IN(c, n, i);
    if (v->dtype == OX_F32 || v->rank > 1)
        return ox__node_err(c, n, LUPE_EFORMAT, "input '%s' (%s) should be a 1-D integer tensor", v->name, what);
    if (v->numel > max)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "input '%s' (%s) has %lld values; lupe handles up to %d", v->name,
                           what, (long long)v->numel, max);
    for (int64_t k = 0; k < v->numel; k++) out[k] = v->i[k];
    *cnt = (int)v->numel;
    return LUPE_OK;
}

static lupe_status norm_axis(ox_ctx *c, const ox_node *n, int64_t axis, int rank, int *out)
{
    *out = 0;
    if (axis < -rank || axis >= rank)
        return ox__node_err(c, n, LUPE_EFORMAT, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return LUPE_OK;
}

static lupe_status set_out(ox_ctx *c, const ox_node *n, int k, int rank, const int64_t *dims, ox_dtype t)
{
    ox_val *o = OUT(c, n, k);
    if (!o) return LUPE_OK;
    return ox__val_set_shape(c, n, o, rank, dims, t);
}

static void plain_strides(const int64_t *dims, int rank, int64_t *st)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) st[i] = s, s *= dims[i];
}

/* Strides with which x is read along each axis of a broadcast output of
 * rank orank and dims od (numpy's rule: right-aligned, 1 repeats). */
static void bcast_strides(const ox_val *x, int orank, const int64_t *od, int64_t *st)
{
    int64_t xs[OX_MAXR];
    plain_strides(x->dims, x->rank, xs);
    for (int j = 0; j < orank; j++) {
        int k = j - (orank - x->rank);
        st[j] = k < 0 || (x->dims[k] == 1 && od[j] != 1) ? 0 : xs[k];
    }
}

/* dst[doff + sum j_k ds_k] = src[soff + sum j_k ss_k] over dims: the
 * constant-folding copy behind Transpose, Slice, Expand, Concat... */
static void fold_copy(ox_val *dst, int64_t doff, const int64_t *ds, const ox_val *src, int64_t soff, const int64_t *ss,
                      int rank, const int64_t *dims)
{
    int64_t total = 1, j[OX_MAXR] = {0};
    for (int k = 0; k < rank; k++) total *= dims[k];
    for (int64_t i = 0; i < total; i++) {
        int64_t d = doff, s = soff;
        for (int k = 0; k < rank; k++) d += j[k] * ds[k], s += j[k] * ss[k];
        if (dst->dtype == OX_F32 && src->dtype == OX_F32)
            dst->f[d] = src->f[s];
        else if (dst->dtype != OX_F32 && src->dtype != OX_F32)
            dst->i[d] = src->i[s];
        else
            ox__cset(dst, d, ox__cget(src, s));
        for (int k = rank - 1; k >= 0 && ++j[k] == dims[k]; k--) j[k] = 0;
    }
}

/* Output k becomes a copy of x's data with its own (already set) shape. */
static lupe_status fold_same_data(ox_ctx *c, ox_node *n, int k, const ox_val *x)
{
    ox_val *o = OUT(c, n, k);
    if (!o) return LUPE_OK;
    o->dtype = x->dtype;
    lupe_status st = ox__val_make_const(c, o);
    if (st) return st;
    if (x->dtype == OX_F32)
        memcpy(o->f, x->f, (size_t)x->numel * sizeof(float));
    else
        memcpy(o->i, x->i, (size_t)x->numel * sizeof(int64_t));
    n->kind = K_NONE;
    return LUPE_OK;
}

/* ---- constants and shapes --------------------------------------------------- */
static lupe_status op_constant(ox_ctx *c, ox_node *n)
{
    const Onnx__NodeProto *p = ox__proto(c, n);
    ox_val *o = OUT(c, n, 0);
    const Onnx__AttributeProto *a;
    lupe_status st;
    if (!o) return ox__node_err(c, n, LUPE_EFORMAT, "has no output");
    n->kind = K_NONE;
    if (p->n_attribute != 1) return ox__node_err(c, n, LUPE_EFORMAT, "needs exactly one value attribute");
    if ((a = ox__attr(n, p, "value"))) {
        if (!a->t) return ox__node_err(c, n, LUPE_EFORMAT, "attribute 'value' holds no tensor");
        return ox__tensor_to_val(c, n, a->t, o);
    }
    if ((a = ox__attr(n, p, "value_float")) || (a = ox__attr(n, p, "value_int"))) {
        const int isf = !strcmp(a->name, "value_float");
        if ((st = ox__val_set_shape(c, n, o, 0, NULL, isf ? OX_F32 : OX_I64)) || (st = ox__val_make_const(c, o)))
            return st;
        ox__cset(o, 0, isf ? (double)a->f : (double)a->i);
        return LUPE_OK;
    }
    a = ox__attr(n, p, "value_floats");
    const int isf = a != NULL;
    if (!a) a = ox__attr(n, p, "value_ints");
    const int64_t cnt = isf ? (int64_t)a->n_floats : (int64_t)a->n_ints;
    if ((st = ox__val_set_shape(c, n, o, 1, &cnt, isf ? OX_F32 : OX_I64)) || (st = ox__val_make_const(c, o))) return st;
    for (int64_t i = 0; i < cnt; i++) ox__cset(o, i, isf ? (double)a->floats[i] : (double)a->ints[i]);
    return LUPE_OK;
}

static lupe_status op_shape(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t start, end;
    lupe_status st;
    if ((st = need(c, n, 0, "data")) || (st = ox__attr_int(c, n, "start", 0, &start)) ||
        (st = ox__attr_int(c, n, "end", x->rank, &end)))
        return st;
    /* Shape-15's slice of the shape, clamped as Slice clamps. */
    if (start < 0) start += x->rank;
    if (end < 0) end += x->rank;
    start = start < 0 ? 0 : start > x->rank ? x->rank : start;
    end = end < start ? start : end > x->rank ? x->rank : end;
    const int64_t k = end - start;
    ox_val *o = OUT(c, n, 0);
    if ((st = set_out(c, n, 0, 1, &k, OX_I64)) || (st = ox__val_make_const(c, o))) return st;
    for (int64_t i = 0; i < k; i++) o->i[i] = x->dims[start + i];
    n->kind = K_NONE;
    return LUPE_OK;
}

static int elem_type(int64_t to, ox_dtype *t)
{
    switch (to) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: *t = OX_F32; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *t = OX_BOOL; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: *t = OX_I64; return 1;
    default: return 0;
    }
}

static lupe_status op_cast(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t to, sat;
    ox_dtype t;
    lupe_status st;
    if ((st = need(c, n, 0, "input")) || (st = ox__attr_int(c, n, "to", -1, &to)) ||
        (st = ox__attr_int(c, n, "saturate", 1, &sat)))
        return st;
    if (to < 0) return ox__node_err(c, n, LUPE_EFORMAT, "attribute 'to' is missing");
    if (!elem_type(to, &t)) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "cast to element type %lld", (long long)to);
    if ((st = set_out(c, n, 0, x->rank, x->dims, t))) return st;
    ox_val *o = OUT(c, n, 0);
    if (x->is_const) {
        if ((st = ox__val_make_const(c, o))) return st;
        for (int64_t i = 0; i < x->numel; i++) ox__cset(o, i, ox__cget(x, i));
        n->kind = K_NONE;
        return LUPE_OK;
    }
    if (t != OX_F32)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "a cast of a run-time tensor to a non-float type (lupe's run-time "
                           "tensors are float)");
    n->kind = K_VIEW;
    return LUPE_OK;
}

static lupe_status op_identity(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    lupe_status st = need(c, n, 0, "input");
    if (st || (st = set_out(c, n, 0, x->rank, x->dims, x->dtype))) return st;
    if (x->is_const) return fold_same_data(c, n, 0, x);
    n->kind = K_VIEW;
    return LUPE_OK;
}

/* Reshape-family: output shape set by the caller; data unchanged. */
static lupe_status view_or_fold(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    if (x->is_const) return fold_same_data(c, n, 0, x);
    lupe_status st = need_float(c, n, 0);
    if (!st) n->kind = K_VIEW;
    return st;
}

static lupe_status op_reshape(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t shape[OX_MAXR + 1], allowzero;
    int k;
    lupe_status st;
    if ((st = need(c, n, 0, "data")) || (st = ox__attr_int(c, n, "allowzero", 0, &allowzero)) ||
        (st = const_ints(c, n, 1, "shape", shape, OX_MAXR + 1, &k)))
        return st;
    if (k > OX_MAXR) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "reshape to rank %d; lupe handles up to %d", k, OX_MAXR);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < k; i++) {
        if (shape[i] == 0 && !allowzero) {
            if (i >= x->rank) return ox__node_err(c, n, LUPE_EFORMAT, "shape copies dimension %d of a rank-%d input", i, x->rank);
            shape[i] = x->dims[i];
        }
        if (shape[i] == -1) {
            if (infer >= 0) return ox__node_err(c, n, LUPE_EFORMAT, "shape has more than one -1");
            infer = i;
            continue;
        }
        if (shape[i] < 0) return ox__node_err(c, n, LUPE_EFORMAT, "shape has the negative dimension %lld", (long long)shape[i]);
        known *= shape[i];
    }
    if (infer >= 0) {
        if (!known || x->numel % known)
            return ox__node_err(c, n, LUPE_EFORMAT, "cannot reshape %lld elements with a -1 beside %lld",
                               (long long)x->numel, (long long)known);
        shape[infer] = x->numel / known;
        known *= shape[infer];
    }
    char b1[128];
    if (known != x->numel)
        return ox__node_err(c, n, LUPE_EFORMAT, "cannot reshape '%s' %s (%lld elements) to %lld elements", x->name,
                           shape_str(x, b1, sizeof b1), (long long)x->numel, (long long)known);
    if ((st = set_out(c, n, 0, k, shape, x->dtype))) return st;
    return view_or_fold(c, n);
}

static lupe_status op_flatten(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t axis;
    lupe_status st;
    if ((st = need(c, n, 0, "input")) || (st = ox__attr_int(c, n, "axis", 1, &axis))) return st;
    if (axis < -x->rank || axis > x->rank)
        return ox__node_err(c, n, LUPE_EFORMAT, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
    if (axis < 0) axis += x->rank;
    int64_t d[2] = {1, 1};
    for (int i = 0; i < x->rank; i++) d[i >= axis] *= x->dims[i];
    if ((st = set_out(c, n, 0, 2, d, x->dtype))) return st;
    return view_or_fold(c, n);
}

/* Axes of Squeeze/Unsqueeze: the attribute before opset 13, an input since. */
static lupe_status squeeze_axes(ox_ctx *c, ox_node *n, int64_t *axes, int *k)
{
    if (c->opset < 13) return ox__attr_ints(c, n, "axes", axes, OX_MAXR, k);
    if (ox__attr(n, ox__proto(c, n), "axes"))
        return ox__node_err(c, n, LUPE_EFORMAT, "attribute 'axes' is an input since opset 13");
    *k = -1;
    if (!IN(c, n, 1)) return LUPE_OK;
    return const_ints(c, n, 1, "axes", axes, OX_MAXR, k);
}

static lupe_status op_unsqueeze(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t axes[OX_MAXR], d[OX_MAXR];
    int k;
    lupe_status st;
    if ((st = need(c, n, 0, "data")) || (st = squeeze_axes(c, n, axes, &k))) return st;
    if (k < 0) return ox__node_err(c, n, LUPE_EFORMAT, "axes are missing");
    const int r = x->rank + k;
    if (r > OX_MAXR) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "output rank %d; lupe handles up to %d", r, OX_MAXR);
    int is_new[OX_MAXR] = {0};
    for (int i = 0; i < k; i++) {
        int a;
        if ((st = norm_axis(c, n, axes[i], r, &a))) return st;
        if (is_new[a]) return ox__node_err(c, n, LUPE_EFORMAT, "axis %lld is repeated", (long long)axes[i]);
        is_new[a] = 1;
    }
    for (int i = 0, j = 0; i < r; i++) d[i] = is_new[i] ? 1 : x->dims[j++];
    if ((st = set_out(c, n, 0, r, d, x->dtype))) return st;
    return view_or_fold(c, n);
}

static lupe_status op_squeeze(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t axes[OX_MAXR], d[OX_MAXR];
    int k, r = 0;
    lupe_status st;
    if ((st = need(c, n, 0, "data")) || (st = squeeze_axes(c, n, axes, &k))) return st;
    int drop[OX_MAXR] = {0};
    for (int i = 0; i < k; i++) {
        int a;
        if ((st = norm_axis(c, n, axes[i], x->rank, &a))) return st;
        if (x->dims[a] != 1)
            return ox__node_err(c, n, LUPE_EFORMAT, "cannot squeeze axis %d of size %lld", a, (long long)x->dims[a]);
        drop[a] = 1;
    }
    for (int i = 0; i < x->rank; i++)
        if (!(k < 0 ? x->dims[i] == 1 : drop[i])) d[r++] = x->dims[i];
    if ((st = set_out(c, n, 0, r, d, x->dtype))) return st;
    return view_or_fold(c, n);
}

static lupe_status op_gather(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0), *ix = IN(c, n, 1);
    int64_t axis;
    int a;
    lupe_status st;
    if ((st = need(c, n, 0, "data")) || (st = need(c, n, 1, "indices")) ||
        (st = ox__attr_int(c, n, "axis", 0, &axis)) || (st = norm_axis(c, n, axis, x->rank, &a)))
        return st;
    if (ix->dtype == OX_F32) return ox__node_err(c, n, LUPE_EFORMAT, "indices '%s' are not integers", ix->name);
    const int r = x->rank - 1 + ix->rank;
    if (r > OX_MAXR) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "output rank %d; lupe handles up to %d", r, OX_MAXR);
    int64_t d[OX_MAXR];
    int k = 0;
    for (int i = 0; i < a; i++) d[k++] = x->dims[i];
    for (int i = 0; i < ix->rank; i++) d[k++] = ix->dims[i];
    for (int i = a + 1; i < x->rank; i++) d[k++] = x->dims[i];
    if ((st = set_out(c, n, 0, r, d, x->dtype))) return st;
    if (!x->is_const || !ix->is_const)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "Gather is folded at load time only; here '%s' is computed at run "
                           "time",
                           x->is_const ? ix->name : x->name);
    ox_val *o = OUT(c, n, 0);
    if ((st = ox__val_make_const(c, o))) return st;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < a; i++) outer *= x->dims[i];
    for (int i = a + 1; i < x->rank; i++) inner *= x->dims[i];
    for (int64_t q = 0; q < ix->numel; q++) {
        int64_t j = ix->i[q];
        if (j < -x->dims[a] || j >= x->dims[a])
            return ox__node_err(c, n, LUPE_EFORMAT, "index %lld is out of range for axis of size %lld", (long long)j,
                               (long long)x->dims[a]);
        if (j < 0) j += x->dims[a];
        for (int64_t u = 0; u < outer; u++)
            for (int64_t w = 0; w < inner; w++)
                ox__cset(o, (u * ix->numel + q) * inner + w, ox__cget(x, (u * x->dims[a] + j) * inner + w));
    }
    n->kind = K_NONE;
    return LUPE_OK;
}

static lupe_status op_constant_of_shape(ox_ctx *c, ox_node *n)
{
    int64_t shape[OX_MAXR];
    int k;
    lupe_status st = const_ints(c, n, 0, "shape", shape, OX_MAXR, &k);
    if (st) return st;
    const Onnx__AttributeProto *a = ox__attr(n, ox__proto(c, n), "value");
    double fill = 0;
    ox_dtype t = OX_F32;
    if (a) {
        ox_val tmp = {.name = "value"};
        if (!a->t) return ox__node_err(c, n, LUPE_EFORMAT, "attribute 'value' holds no tensor");
        if ((st = ox__tensor_to_val(c, n, a->t, &tmp))) return st;
        if (tmp.numel != 1) return ox__node_err(c, n, LUPE_EFORMAT, "attribute 'value' should hold one element");
        fill = ox__cget(&tmp, 0), t = tmp.dtype;
    }
    ox_val *o = OUT(c, n, 0);
    if ((st = set_out(c, n, 0, k, shape, t)) || (st = ox__val_make_const(c, o))) return st;
    for (int64_t i = 0; i < o->numel; i++) ox__cset(o, i, fill);
    n->kind = K_NONE;
    return LUPE_OK;
}

static lupe_status op_range(ox_ctx *c, ox_node *n)
{
    lupe_status st;
    for (int i = 0; i < 3; i++) {
        static const char *const what[] = {"start", "limit", "delta"};
        if ((st = need_const(c, n, i, what[i]))) return st;
        if (IN(c, n, i)->numel != 1) return ox__node_err(c, n, LUPE_EFORMAT, "%s is not a scalar", what[i]);
    }
    const ox_val *s = IN(c, n, 0);
    const double start = ox__cget(s, 0), limit = ox__cget(IN(c, n, 1), 0), delta = ox__cget(IN(c, n, 2), 0);
    if (delta == 0) return ox__node_err(c, n, LUPE_EFORMAT, "delta is 0");
    double cnt = ceil((limit - start) / delta);
    if (!(cnt <= (double)OX_MAX_ELEMS)) return ox__node_err(c, n, LUPE_ELIMIT, "range of over 2^31 elements");
    const int64_t k = cnt > 0 ? (int64_t)cnt : 0;
    ox_val *o = OUT(c, n, 0);
    if ((st = set_out(c, n, 0, 1, &k, s->dtype)) || (st = ox__val_make_const(c, o))) return st;
    for (int64_t i = 0; i < k; i++) ox__cset(o, i, start + (double)i * delta);
    n->kind = K_NONE;
    return LUPE_OK;
}

/* ---- element-wise ----------------------------------------------------------- */
static lupe_status bcast_shape(ox_ctx *c, ox_node *n, int nin, int *rank, int64_t *d)
{
    int r = 0;
    for (int i = 0; i < nin; i++)
        if (IN(c, n, i)->rank > r) r = IN(c, n, i)->rank;
    for (int j = 0; j < r; j++) d[j] = 1;
    for (int i = 0; i < nin; i++) {
        const ox_val *x = IN(c, n, i);
        for (int k = 0; k < x->rank; k++) {
            int64_t *o = &d[r - x->rank + k];
            if (x->dims[k] == *o || x->dims[k] == 1) continue;
            if (*o == 1) {
                *o = x->dims[k];
                continue;
            }
            char b1[128], b2[128];
            return ox__node_err(c, n, LUPE_EFORMAT, "shapes %s ('%s') and %s ('%s') do not broadcast",
                               shape_str(IN(c, n, 0), b1, sizeof b1), IN(c, n, 0)->name,
                               shape_str(IN(c, n, i), b2, sizeof b2), IN(c, n, i)->name);
        }
    }
    *rank = r;
    return LUPE_OK;
}

/* Folds an element-wise op of nin broadcast inputs: f gets the values. */
typedef double (*ew_fn)(const double *x, const void *arg);
static lupe_status fold_ew(ox_ctx *c, ox_node *n, int nin, ox_dtype t, ew_fn f, const void *arg)
{
    int r;
    int64_t d[OX_MAXR], st_in[3][OX_MAXR], j[OX_MAXR] = {0};
    lupe_status st = bcast_shape(c, n, nin, &r, d);
    if (st) return st;
    ox_val *o = OUT(c, n, 0);
    if ((st = set_out(c, n, 0, r, d, t)) || (st = ox__val_make_const(c, o))) return st;
    for (int i = 0; i < nin; i++) bcast_strides(IN(c, n, i), r, d, st_in[i]);
    for (int64_t q = 0; q < o->numel; q++) {
        double x[3];
        for (int i = 0; i < nin; i++) {
            int64_t off = 0;
            for (int k = 0; k < r; k++) off += j[k] * st_in[i][k];
            x[i] = ox__cget(IN(c, n, i), off);
        }
        ox__cset(o, q, f(x, arg));
        for (int k = r - 1; k >= 0 && ++j[k] == d[k]; k--) j[k] = 0;
    }
    n->kind = K_NONE;
    return LUPE_OK;
}

static double f_add(const double *x, const void *a) { (void)a; return x[0] + x[1]; }
static double f_sub(const double *x, const void *a) { (void)a; return x[0] - x[1]; }
static double f_mul(const double *x, const void *a) { (void)a; return x[0] * x[1]; }
static double f_div(const double *x, const void *a)
{
    /* Integer division truncates (as ONNX Runtime's); a 0 divisor is
     * caught before folding. */
    const int ints = *(const int *)a;
    return ints ? trunc(x[0] / x[1]) : x[0] / x[1];
}
static double f_equal(const double *x, const void *a) { (void)a; return x[0] == x[1]; }
static double f_where(const double *x, const void *a) { (void)a; return x[0] != 0 ? x[1] : x[2]; }

static lupe_status op_binary(ox_ctx *c, ox_node *n, ox_binop op)
{
    const ox_val *a = IN(c, n, 0), *b = IN(c, n, 1);
    lupe_status st;
    if ((st = need(c, n, 0, "A")) || (st = need(c, n, 1, "B"))) return st;
    if ((a->dtype == OX_F32) != (b->dtype == OX_F32))
        return ox__node_err(c, n, LUPE_EFORMAT, "inputs '%s' and '%s' have different element types", a->name, b->name);
    if (a->is_const && b->is_const) {
        static const ew_fn fs[] = {f_add, f_sub, f_mul, f_div};
        const int ints = a->dtype != OX_F32;
        if (op == B_DIV && ints)
            for (int64_t i = 0; i < b->numel; i++)
                if (b->i[i] == 0) return ox__node_err(c, n, LUPE_EFORMAT, "integer division by zero");
        return fold_ew(c, n, 2, a->dtype == OX_F32 ? OX_F32 : OX_I64, fs[op], &ints);
    }
    if ((st = need_float(c, n, 0)) || (st = need_float(c, n, 1))) return st;
    int r;
    int64_t d[OX_MAXR];
    if ((st = bcast_shape(c, n, 2, &r, d)) || (st = set_out(c, n, 0, r, d, OX_F32))) return st;
    n->kind = K_BINARY;
    n->a.bin = op;
    return LUPE_OK;
}

static lupe_status op_add(ox_ctx *c, ox_node *n) { return op_binary(c, n, B_ADD); }
static lupe_status op_sub(ox_ctx *c, ox_node *n) { return op_binary(c, n, B_SUB); }
static lupe_status op_mul(ox_ctx *c, ox_node *n) { return op_binary(c, n, B_MUL); }
static lupe_status op_div(ox_ctx *c, ox_node *n) { return op_binary(c, n, B_DIV); }

static lupe_status op_equal(ox_ctx *c, ox_node *n)
{
    lupe_status st;
    if ((st = need(c, n, 0, "A")) || (st = need(c, n, 1, "B"))) return st;
    if (!all_const(c, n))
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "Equal is folded at load time only; here an input is computed at "
                           "run time");
    return fold_ew(c, n, 2, OX_BOOL, f_equal, NULL);
}

static lupe_status op_where(ox_ctx *c, ox_node *n)
{
    lupe_status st;
    if ((st = need(c, n, 0, "condition")) || (st = need(c, n, 1, "X")) || (st = need(c, n, 2, "Y"))) return st;
    if (!all_const(c, n))
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "Where is folded at load time only; here an input is computed at "
                           "run time");
    return fold_ew(c, n, 3, IN(c, n, 1)->dtype, f_where, NULL);
}

static double f_unary(const double *x, const void *arg)
{
    const ox_node *n = arg;
    const double v = x[0];
    switch (n->a.un.op) {
    case U_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case U_RELU: return v > 0 ? v : 0;
    case U_LEAKY_RELU: return v >= 0 ? v : v * n->a.un.alpha;
    case U_SILU: return v / (1.0 + exp(-v));
    }
    return v;
}

static lupe_status op_unary(ox_ctx *c, ox_node *n, ox_unary op, float alpha)
{
    const ox_val *x = IN(c, n, 0);
    lupe_status st;
    if ((st = need(c, n, 0, "X")) || (st = need_float(c, n, 0))) return st;
    n->a.un.op = op, n->a.un.alpha = alpha;
    if (x->is_const) return fold_ew(c, n, 1, OX_F32, f_unary, n);
    if ((st = set_out(c, n, 0, x->rank, x->dims, OX_F32))) return st;
    n->kind = K_UNARY;
    return LUPE_OK;
}

static lupe_status op_sigmoid(ox_ctx *c, ox_node *n) { return op_unary(c, n, U_SIGMOID, 0); }
static lupe_status op_relu(ox_ctx *c, ox_node *n) { return op_unary(c, n, U_RELU, 0); }
static lupe_status op_leaky_relu(ox_ctx *c, ox_node *n)
{
    float alpha;
    lupe_status st = ox__attr_float(c, n, "alpha", 0.01f, &alpha);
    return st ? st : op_unary(c, n, U_LEAKY_RELU, alpha);
}

static lupe_status op_batchnorm(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    float eps, mom;
    int64_t spatial, training;
    lupe_status st;
    if ((st = need(c, n, 0, "X")) || (st = need_float(c, n, 0)) || (st = ox__attr_float(c, n, "epsilon", 1e-5f, &eps)) ||
        (st = ox__attr_float(c, n, "momentum", 0.9f, &mom)) || (st = ox__attr_int(c, n, "spatial", 1, &spatial)) ||
        (st = ox__attr_int(c, n, "training_mode", 0, &training)))
        return st;
    if (!spatial) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "spatial = 0 (per-activation statistics)");
    if (training || n->nout > 1)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "training mode (batch statistics, running-statistics outputs); "
                           "export the model in inference mode");
    if (x->rank < 2) return ox__node_err(c, n, LUPE_EFORMAT, "input '%s' has rank %d, below 2", x->name, x->rank);
    const int64_t ch = x->dims[1];
    static const char *const what[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++) {
        if ((st = need_const(c, n, i, what[i]))) return st;
        const ox_val *p = IN(c, n, i);
        if (p->rank != 1 || p->dims[0] != ch || p->dtype != OX_F32)
            return ox__node_err(c, n, LUPE_EFORMAT, "%s '%s' should be %lld floats (the channels of '%s')", what[i],
                               p->name, (long long)ch, x->name);
    }
    float *scale = ox__pool_alloc(&c->tmp, (size_t)ch * sizeof(float));
    float *shift = ox__pool_alloc(&c->tmp, (size_t)ch * sizeof(float));
    if (!scale || !shift) return LUPE_ENOMEM;
    for (int64_t k = 0; k < ch; k++) {
        const double s = IN(c, n, 1)->f[k] / sqrt((double)IN(c, n, 4)->f[k] + eps);
        scale[k] = (float)s;
        shift[k] = (float)(IN(c, n, 2)->f[k] - IN(c, n, 3)->f[k] * s);
    }
    n->a.aff.scale = scale, n->a.aff.shift = shift;
    if ((st = set_out(c, n, 0, x->rank, x->dims, OX_F32))) return st;
    if (x->is_const) {
        ox_val *o = OUT(c, n, 0);
        if ((st = ox__val_make_const(c, o))) return st;
        int64_t inner = 1;
        for (int i = 2; i < x->rank; i++) inner *= x->dims[i];
        for (int64_t i = 0; i < x->numel; i++) {
            const int64_t k = (i / inner) % ch;
            o->f[i] = (float)((double)x->f[i] * scale[k] + shift[k]);
        }
        n->kind = K_NONE;
        return LUPE_OK;
    }
    n->kind = K_AFFINE;
    return LUPE_OK;
}

static lupe_status op_softmax(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t axis;
    int a;
    lupe_status st;
    if ((st = need(c, n, 0, "input")) || (st = need_float(c, n, 0)) ||
        (st = ox__attr_int(c, n, "axis", c->opset < 13 ? 1 : -1, &axis)) || (st = norm_axis(c, n, axis, x->rank, &a)))
        return st;
    /* Before opset 13 the input is seen as 2-D [prod(dims before axis),
     * prod(dims from axis)] and each row is normalised; since, only the
     * one axis is. */
    int64_t outer = 1, len = 1, inner = 1;
    for (int i = 0; i < a; i++) outer *= x->dims[i];
    if (c->opset < 13) {
        for (int i = a; i < x->rank; i++) len *= x->dims[i];
    } else {
        len = x->dims[a];
        for (int i = a + 1; i < x->rank; i++) inner *= x->dims[i];
    }
    n->a.sm.outer = outer, n->a.sm.n = len, n->a.sm.inner = inner;
    if ((st = set_out(c, n, 0, x->rank, x->dims, OX_F32))) return st;
    if (!x->is_const) {
        n->kind = K_SOFTMAX;
        return LUPE_OK;
    }
    ox_val *o = OUT(c, n, 0);
    if ((st = ox__val_make_const(c, o))) return st;
    for (int64_t u = 0; u < outer; u++)
        for (int64_t w = 0; w < inner; w++) {
            const float *p = x->f + u * len * inner + w;
            float *q = o->f + u * len * inner + w;
            double m = -INFINITY, s = 0;
            for (int64_t k = 0; k < len; k++) m = p[k * inner] > m ? p[k * inner] : m;
            for (int64_t k = 0; k < len; k++) s += exp(p[k * inner] - m);
            for (int64_t k = 0; k < len; k++) q[k * inner] = (float)(exp(p[k * inner] - m) / s);
        }
    n->kind = K_NONE;
    return LUPE_OK;
}

/* ---- copies: Concat, Split, Slice, Transpose, Expand ---------------------------- */
static lupe_status op_concat(ox_ctx *c, ox_node *n)
{
    const ox_val *x0 = IN(c, n, 0);
    int64_t axis;
    int a;
    lupe_status st;
    if (n->nin < 1 || !x0) return ox__node_err(c, n, LUPE_EFORMAT, "has no inputs");
    if ((st = ox__attr_int(c, n, "axis", INT64_MIN, &axis))) return st;
    if (axis == INT64_MIN) return ox__node_err(c, n, LUPE_EFORMAT, "attribute 'axis' is missing");
    if ((st = norm_axis(c, n, axis, x0->rank, &a))) return st;
    int64_t d[OX_MAXR];
    memcpy(d, x0->dims, sizeof d);
    d[a] = 0;
    for (int i = 0; i < n->nin; i++) {
        const ox_val *x = IN(c, n, i);
        if (!x) return ox__node_err(c, n, LUPE_EFORMAT, "input %d is empty", i);
        char b1[128], b2[128];
        int ok = x->rank == x0->rank && (x->dtype == OX_F32) == (x0->dtype == OX_F32);
        for (int k = 0; ok && k < x->rank; k++) ok = k == a || x->dims[k] == x0->dims[k];
        if (!ok)
            return ox__node_err(c, n, LUPE_EFORMAT, "input '%s' %s does not fit '%s' %s along axis %d", x->name,
                               shape_str(x, b1, sizeof b1), x0->name, shape_str(x0, b2, sizeof b2), a);
        d[a] += x->dims[a];
    }
    if ((st = set_out(c, n, 0, x0->rank, d, x0->dtype))) return st;
    n->a.axis = a;
    if (!all_const(c, n)) {
        for (int i = 0; i < n->nin; i++)
            if ((st = need_float(c, n, i))) return st;
        n->kind = K_CONCAT;
        return LUPE_OK;
    }
    ox_val *o = OUT(c, n, 0);
    if ((st = ox__val_make_const(c, o))) return st;
    int64_t os[OX_MAXR], xs[OX_MAXR], off = 0;
    plain_strides(o->dims, o->rank, os);
    for (int i = 0; i < n->nin; i++) {
        const ox_val *x = IN(c, n, i);
        plain_strides(x->dims, x->rank, xs);
        fold_copy(o, off * os[a], os, x, 0, xs, x->rank, x->dims);
        off += x->dims[a];
    }
    n->kind = K_NONE;
    return LUPE_OK;
}

static lupe_status op_split(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t axis, split[OX_MAXIO], nout_attr;
    int a, k = -1;
    lupe_status st;
    if ((st = need(c, n, 0, "input")) || (st = ox__attr_int(c, n, "axis", 0, &axis)) ||
        (st = norm_axis(c, n, axis, x->rank, &a)) || (st = ox__attr_int(c, n, "num_outputs", 0, &nout_attr)))
        return st;
    if (c->opset < 13)
        st = ox__attr_ints(c, n, "split", split, OX_MAXIO, &k);
    else if (ox__attr(n, ox__proto(c, n), "split"))
        st = ox__node_err(c, n, LUPE_EFORMAT, "attribute 'split' is an input since opset 13");
    else if (IN(c, n, 1))
        st = const_ints(c, n, 1, "split", split, OX_MAXIO, &k);
    if (st) return st;
    const int64_t dim = x->dims[a];
    if (k < 0) {
        /* Equal parts (num_outputs, opset 18: the last one may be smaller). */
        const int64_t parts = n->nout, each = (dim + parts - 1) / parts;
        if (nout_attr && nout_attr != parts)
            return ox__node_err(c, n, LUPE_EFORMAT, "num_outputs %lld but %d outputs", (long long)nout_attr, n->nout);
        if (!nout_attr && dim % parts)
            return ox__node_err(c, n, LUPE_EFORMAT, "cannot split %lld into %lld equal parts", (long long)dim,
                               (long long)parts);
        for (int i = 0; i < n->nout; i++) split[i] = i < n->nout - 1 ? each : dim - each * (parts - 1);
        k = n->nout;
    }
    if (k != n->nout)
        return ox__node_err(c, n, LUPE_EFORMAT, "split has %d sizes for %d outputs", k, n->nout);
    for (int i = 0; i < k; i++)
        if (!OUT(c, n, i)) return ox__node_err(c, n, LUPE_EFORMAT, "output %d has no name", i);
    int64_t sum = 0;
    for (int i = 0; i < k; i++) {
        if (split[i] < 0) return ox__node_err(c, n, LUPE_EFORMAT, "split size %lld is negative", (long long)split[i]);
        sum += split[i];
    }
    if (sum != dim)
        return ox__node_err(c, n, LUPE_EFORMAT, "split sizes add up to %lld, not %lld (axis %d of '%s')",
                           (long long)sum, (long long)dim, a, x->name);
    int64_t xs[OX_MAXR], off = 0;
    plain_strides(x->dims, x->rank, xs);
    for (int i = 0; i < k; i++) {
        int64_t d[OX_MAXR];
        memcpy(d, x->dims, sizeof d);
        d[a] = split[i];
        if ((st = set_out(c, n, i, x->rank, d, x->dtype))) return st;
        ox_val *o = OUT(c, n, i);
        if (x->is_const && o) {
            int64_t os[OX_MAXR];
            if ((st = ox__val_make_const(c, o))) return st;
            plain_strides(o->dims, o->rank, os);
            fold_copy(o, 0, os, x, off * xs[a], xs, o->rank, o->dims);
        }
        off += split[i];
    }
    n->a.axis = a;
    if (x->is_const) {
        n->kind = K_NONE;
        return LUPE_OK;
    }
    if ((st = need_float(c, n, 0))) return st;
    n->kind = K_SPLIT;
    return LUPE_OK;
}

static lupe_status op_slice(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t starts[OX_MAXR], ends[OX_MAXR], axes[OX_MAXR], steps[OX_MAXR];
    int ns, ne, na = -1, nst = -1;
    lupe_status st;
    if ((st = need(c, n, 0, "data"))) return st;
    if (c->opset < 10) {
        if ((st = ox__attr_ints(c, n, "starts", starts, OX_MAXR, &ns)) ||
            (st = ox__attr_ints(c, n, "ends", ends, OX_MAXR, &ne)) || (st = ox__attr_ints(c, n, "axes", axes, OX_MAXR, &na)))
            return st;
        if (ns < 0 || ne < 0) return ox__node_err(c, n, LUPE_EFORMAT, "attributes 'starts' and 'ends' are required");
    } else {
        if ((st = const_ints(c, n, 1, "starts", starts, OX_MAXR, &ns)) ||
            (st = const_ints(c, n, 2, "ends", ends, OX_MAXR, &ne)))
            return st;
        if (IN(c, n, 3) && (st = const_ints(c, n, 3, "axes", axes, OX_MAXR, &na))) return st;
        if (IN(c, n, 4) && (st = const_ints(c, n, 4, "steps", steps, OX_MAXR, &nst))) return st;
    }
    if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return ox__node_err(c, n, LUPE_EFORMAT, "starts, ends, axes and steps have different lengths");
    int64_t start[OX_MAXR], step[OX_MAXR], d[OX_MAXR];
    int seen[OX_MAXR] = {0};
    for (int k = 0; k < x->rank; k++) start[k] = 0, step[k] = 1, d[k] = x->dims[k];
    for (int i = 0; i < ns; i++) {
        int a;
        if ((st = norm_axis(c, n, na >= 0 ? axes[i] : i, x->rank, &a))) return st;
        if (seen[a]++) return ox__node_err(c, n, LUPE_EFORMAT, "axis %d is sliced twice", a);
        const int64_t dim = x->dims[a], s = nst >= 0 ? steps[i] : 1;
        if (s == 0) return ox__node_err(c, n, LUPE_EFORMAT, "step 0 on axis %d", a);
        int64_t b = starts[i], e = ends[i];
        /* ONNX's clamping: negative counts from the end; then into
         * [0, dim] going forward and [-1, dim - 1] going backward. */
        if (b < 0) b += dim;
        if (e < 0 && e > INT64_MIN / 2) e += dim;
        if (s > 0) {
            b = b < 0 ? 0 : b > dim ? dim : b;
            e = e < 0 ? 0 : e > dim ? dim : e;
        } else {
            b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
        }
        const int64_t len = s > 0 ? (e - b + s - 1) / s : (b - e + (-s) - 1) / (-s);
        d[a] = len > 0 ? len : 0;
        start[a] = d[a] ? b : 0, step[a] = s;
    }
    if ((st = set_out(c, n, 0, x->rank, d, x->dtype))) return st;
    memcpy(n->a.slice.start, start, sizeof start);
    memcpy(n->a.slice.step, step, sizeof step);
    if (!x->is_const) {
        if ((st = need_float(c, n, 0))) return st;
        n->kind = K_SLICE;
        return LUPE_OK;
    }
    ox_val *o = OUT(c, n, 0);
    int64_t xs[OX_MAXR], ss[OX_MAXR], os[OX_MAXR], off = 0;
    if ((st = ox__val_make_const(c, o))) return st;
    plain_strides(x->dims, x->rank, xs);
    plain_strides(o->dims, o->rank, os);
    for (int k = 0; k < x->rank; k++) off += start[k] * xs[k], ss[k] = step[k] * xs[k];
    fold_copy(o, 0, os, x, off, ss, o->rank, o->dims);
    n->kind = K_NONE;
    return LUPE_OK;
}

static lupe_status op_transpose(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t perm[OX_MAXR], d[OX_MAXR];
    int k;
    lupe_status st;
    if ((st = need(c, n, 0, "data")) || (st = ox__attr_ints(c, n, "perm", perm, OX_MAXR, &k))) return st;
    if (k < 0)
        for (k = 0; k < x->rank; k++) perm[k] = x->rank - 1 - k;
    if (k != x->rank) return ox__node_err(c, n, LUPE_EFORMAT, "perm has %d axes for rank %d", k, x->rank);
    int seen[OX_MAXR] = {0};
    for (int i = 0; i < k; i++) {
        if (perm[i] < 0 || perm[i] >= k || seen[perm[i]]++)
            return ox__node_err(c, n, LUPE_EFORMAT, "perm is not a permutation of 0..%d", k - 1);
        d[i] = x->dims[perm[i]];
        n->a.perm[i] = (int)perm[i];
    }
    if ((st = set_out(c, n, 0, k, d, x->dtype))) return st;
    if (!x->is_const) {
        if ((st = need_float(c, n, 0))) return st;
        n->kind = K_TRANSPOSE;
        return LUPE_OK;
    }
    ox_val *o = OUT(c, n, 0);
    int64_t xs[OX_MAXR], ss[OX_MAXR], os[OX_MAXR];
    if ((st = ox__val_make_const(c, o))) return st;
    plain_strides(x->dims, x->rank, xs);
    plain_strides(o->dims, o->rank, os);
    for (int i = 0; i < k; i++) ss[i] = xs[perm[i]];
    fold_copy(o, 0, os, x, 0, ss, k, o->dims);
    n->kind = K_NONE;
    return LUPE_OK;
}

static lupe_status op_expand(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t shape[OX_MAXR], d[OX_MAXR];
    int k;
    lupe_status st;
    if ((st = need(c, n, 0, "input")) || (st = const_ints(c, n, 1, "shape", shape, OX_MAXR, &k))) return st;
    const int r = k > x->rank ? k : x->rank;
    for (int j = 0; j < r; j++) {
        const int xi = j - (r - x->rank), si = j - (r - k);
        const int64_t a = xi >= 0 ? x->dims[xi] : 1, b = si >= 0 ? shape[si] : 1;
        if (a != b && a != 1 && b != 1)
            return ox__node_err(c, n, LUPE_EFORMAT, "dimension %lld of '%s' does not broadcast to %lld", (long long)a,
                               x->name, (long long)b);
        d[j] = a == 1 ? b : a;
    }
    if ((st = set_out(c, n, 0, r, d, x->dtype))) return st;
    if (!x->is_const) {
        if ((st = need_float(c, n, 0))) return st;
        n->kind = K_EXPAND;
        return LUPE_OK;
    }
    ox_val *o = OUT(c, n, 0);
    int64_t ss[OX_MAXR], os[OX_MAXR];
    if ((st = ox__val_make_const(c, o))) return st;
    bcast_strides(x, r, d, ss);
    plain_strides(d, r, os);
    fold_copy(o, 0, os, x, 0, ss, r, d);
    n->kind = K_NONE;
    return LUPE_OK;
}

/* ---- convolution, pooling, resizing ----------------------------------------- */
/* Pads of Conv and MaxPool: auto_pad or the pads attribute. */
static lupe_status spatial_pads(ox_ctx *c, ox_node *n, const int64_t *in, const int64_t *k, const int64_t *s,
                                int64_t *pads /* t, l, b, r */)
{
    char ap[32];
    int np;
    lupe_status st;
    if ((st = ox__attr_str(c, n, "auto_pad", "NOTSET", ap, sizeof ap)) ||
        (st = ox__attr_ints(c, n, "pads", pads, 4, &np)))
        return st;
    if (!strcmp(ap, "NOTSET")) {
        if (np < 0) memset(pads, 0, 4 * sizeof *pads);
        else if (np != 4) return ox__node_err(c, n, LUPE_EFORMAT, "pads has %d values, not 4", np);
        for (int i = 0; i < 4; i++)
            if (pads[i] < 0 || pads[i] > 65536)
                return ox__node_err(c, n, LUPE_EFORMAT, "pad %lld is out of range", (long long)pads[i]);
        return LUPE_OK;
    }
    if (np >= 0) return ox__node_err(c, n, LUPE_EFORMAT, "both pads and auto_pad %s", ap);
    if (!strcmp(ap, "VALID")) {
        memset(pads, 0, 4 * sizeof *pads);
        return LUPE_OK;
    }
    const int upper = !strcmp(ap, "SAME_UPPER");
    if (!upper && strcmp(ap, "SAME_LOWER"))
        return ox__node_err(c, n, LUPE_EFORMAT, "auto_pad '%s' is none of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
    for (int i = 0; i < 2; i++) {
        /* Output ceil(in / stride); the padding it takes, the odd one at
         * the end (SAME_UPPER) or at the start (SAME_LOWER). */
        const int64_t out = (in[i] + s[i] - 1) / s[i], total = (out - 1) * s[i] + k[i] - in[i];
        const int64_t t = total > 0 ? total : 0;
        pads[i] = upper ? t / 2 : t - t / 2;
        pads[i + 2] = t - pads[i];
    }
    return LUPE_OK;
}

static lupe_status spatial_attrs(ox_ctx *c, ox_node *n, int64_t *k, int64_t *s, int need_kernel)
{
    int nk, ns, nd;
    int64_t dil[2];
    lupe_status st;
    if ((st = ox__attr_ints(c, n, "kernel_shape", k, 2, &nk)) || (st = ox__attr_ints(c, n, "strides", s, 2, &ns)) ||
        (st = ox__attr_ints(c, n, "dilations", dil, 2, &nd)))
        return st;
    if (need_kernel && nk < 0) return ox__node_err(c, n, LUPE_EFORMAT, "attribute 'kernel_shape' is missing");
    if (nk >= 0 && nk != 2) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "kernel_shape has %d axes; lupe runs 2-D", nk);
    if (ns < 0) s[0] = s[1] = 1;
    else if (ns != 2) return ox__node_err(c, n, LUPE_EFORMAT, "strides has %d values, not 2", ns);
    if (nd >= 0 && (nd != 2 || dil[0] != 1 || dil[1] != 1))
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "dilations other than 1 are not supported");
    for (int i = 0; i < 2; i++)
        if (s[i] < 1 || s[i] > 65536 || (nk >= 0 && (k[i] < 1 || k[i] > 65536)))
            return ox__node_err(c, n, LUPE_EFORMAT, "kernel or stride out of range");
    return LUPE_OK;
}

static lupe_status op_conv(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0), *w = IN(c, n, 1), *b = IN(c, n, 2);
    int64_t k[2] = {0, 0}, s[2], pads[4], group;
    lupe_status st;
    char b1[128], b2[128];
    if ((st = need(c, n, 0, "X")) || (st = need_float(c, n, 0)) || (st = need_const(c, n, 1, "W")) ||
        (st = ox__attr_int(c, n, "group", 1, &group)))
        return st;
    if (x->rank != 4)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "input '%s' %s: lupe runs 2-D convolutions on [N, C, H, W]",
                           x->name, shape_str(x, b1, sizeof b1));
    if (w->rank != 4 || w->dtype != OX_F32)
        return ox__node_err(c, n, LUPE_EFORMAT, "weights '%s' %s should be float [M, C/group, kH, kW]", w->name,
                           shape_str(w, b1, sizeof b1));
    k[0] = w->dims[2], k[1] = w->dims[3];
    int64_t ka[2];
    if ((st = spatial_attrs(c, n, ka, s, 0))) return st;
    int nk;
    if ((st = ox__attr_ints(c, n, "kernel_shape", ka, 2, &nk))) return st;
    if (nk == 2 && (ka[0] != k[0] || ka[1] != k[1]))
        return ox__node_err(c, n, LUPE_EFORMAT, "kernel_shape %lldx%lld does not match weights '%s' %s",
                           (long long)ka[0], (long long)ka[1], w->name, shape_str(w, b1, sizeof b1));
    const int64_t cin = x->dims[1], m = w->dims[0];
    if (group < 1 || cin % group || m % group || w->dims[1] * group != cin)
        return ox__node_err(c, n, LUPE_EFORMAT, "weights '%s' %s do not fit input '%s' %s with group %lld", w->name,
                           shape_str(w, b1, sizeof b1), x->name, shape_str(x, b2, sizeof b2), (long long)group);
    if (b && (!b->is_const || b->rank != 1 || b->dims[0] != m || b->dtype != OX_F32))
        return ox__node_err(c, n, b->is_const ? LUPE_EFORMAT : LUPE_EUNSUPPORTED,
                           "bias '%s' should be a constant of %lld floats", b->name, (long long)m);
    if ((st = spatial_pads(c, n, x->dims + 2, k, s, pads))) return st;
    int64_t d[4] = {x->dims[0], m, 0, 0};
    for (int i = 0; i < 2; i++) {
        const int64_t span = x->dims[2 + i] + pads[i] + pads[i + 2] - k[i];
        if (span < 0)
            return ox__node_err(c, n, LUPE_EFORMAT, "kernel %lldx%lld does not fit input '%s' %s with its padding",
                               (long long)k[0], (long long)k[1], x->name, shape_str(x, b1, sizeof b1));
        d[2 + i] = span / s[i] + 1;
    }
    if ((st = set_out(c, n, 0, 4, d, OX_F32))) return st;
    n->kind = K_CONV;
    n->a.conv.group = (int)group;
    n->a.conv.kh = (int)k[0], n->a.conv.kw = (int)k[1], n->a.conv.sh = (int)s[0], n->a.conv.sw = (int)s[1];
    n->a.conv.pt = (int)pads[0], n->a.conv.pl = (int)pads[1], n->a.conv.pb = (int)pads[2], n->a.conv.pr = (int)pads[3];
    n->a.conv.w = w->f, n->a.conv.b = b ? b->f : NULL;
    n->a.conv.act = ENG_ACT_NONE;
    return LUPE_OK;
}

static lupe_status op_maxpool(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    int64_t k[2], s[2], pads[4], ceil_mode, order;
    lupe_status st;
    char b1[128];
    if ((st = need(c, n, 0, "X")) || (st = need_float(c, n, 0)) || (st = spatial_attrs(c, n, k, s, 1)) ||
        (st = ox__attr_int(c, n, "ceil_mode", 0, &ceil_mode)) || (st = ox__attr_int(c, n, "storage_order", 0, &order)))
        return st;
    if (x->rank != 4)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "input '%s' %s: lupe pools [N, C, H, W]", x->name,
                           shape_str(x, b1, sizeof b1));
    if (OUT(c, n, 1)) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "the Indices output is not supported");
    if ((st = spatial_pads(c, n, x->dims + 2, k, s, pads))) return st;
    int64_t d[4] = {x->dims[0], x->dims[1], 0, 0};
    for (int i = 0; i < 2; i++) {
        if (pads[i] >= k[i] || pads[i + 2] >= k[i])
            return ox__node_err(c, n, LUPE_EFORMAT, "padding %lld is not smaller than the kernel %lld",
                               (long long)(pads[i] > pads[i + 2] ? pads[i] : pads[i + 2]), (long long)k[i]);
        const int64_t span = x->dims[2 + i] + pads[i] + pads[i + 2] - k[i];
        if (span < 0)
            return ox__node_err(c, n, LUPE_EFORMAT, "kernel %lldx%lld does not fit input '%s' %s with its padding",
                               (long long)k[0], (long long)k[1], x->name, shape_str(x, b1, sizeof b1));
        d[2 + i] = (ceil_mode ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
    }
    if ((st = set_out(c, n, 0, 4, d, OX_F32))) return st;
    n->kind = K_MAXPOOL;
    n->a.pool.kh = (int)k[0], n->a.pool.kw = (int)k[1], n->a.pool.sh = (int)s[0], n->a.pool.sw = (int)s[1];
    n->a.pool.pt = (int)pads[0], n->a.pool.pl = (int)pads[1];
    return LUPE_OK;
}

typedef enum { CT_HALF_PIXEL, CT_ASYMMETRIC, CT_ALIGN_CORNERS, CT_PYTORCH_HALF_PIXEL, CT_TF_HALF_PIXEL_NN } ctm;
typedef enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL } nmode;

/* Where output index o of an axis (in -> out, scale) reads its input, as
 * the ONNX Resize definition says for mode nearest. */
static int32_t nearest_src(int64_t o, int64_t in, int64_t out, double scale, ctm t, nmode m)
{
    double x;
    switch (t) {
    case CT_ASYMMETRIC: x = o / scale; break;
    case CT_ALIGN_CORNERS: x = out > 1 ? (double)o * (in - 1) / (out - 1) : 0; break;
    case CT_PYTORCH_HALF_PIXEL: x = out > 1 ? (o + 0.5) / scale - 0.5 : 0; break;
    case CT_TF_HALF_PIXEL_NN: x = (o + 0.5) / scale; break;
    default: x = (o + 0.5) / scale - 0.5; break;
    }
    double r;
    switch (m) {
    case NM_FLOOR: r = floor(x); break;
    case NM_CEIL: r = ceil(x); break;
    case NM_ROUND_PREFER_CEIL: r = x - floor(x) == 0.5 ? ceil(x) : round(x); break;
    default: r = x - floor(x) == 0.5 ? floor(x) : round(x); break;
    }
    return (int32_t)(r < 0 ? 0 : r > in - 1 ? in - 1 : r);
}

/* Resize (opsets 10+) and its ancestor Upsample (7, 9). */
static lupe_status op_resize(ox_ctx *c, ox_node *n)
{
    const ox_val *x = IN(c, n, 0);
    const int upsample = !strcmp(n->op, "Upsample");
    char mode[32], ct[32], nm[32], b1[128];
    int64_t excl, antialias;
    lupe_status st;
    if ((st = need(c, n, 0, "X")) || (st = need_float(c, n, 0)) || (st = ox__attr_str(c, n, "mode", "nearest", mode, sizeof mode)) ||
        (st = ox__attr_str(c, n, "coordinate_transformation_mode", upsample || c->opset < 11 ? "asymmetric" : "half_pixel",
                          ct, sizeof ct)) ||
        (st = ox__attr_str(c, n, "nearest_mode", upsample || c->opset < 11 ? "floor" : "round_prefer_floor", nm,
                          sizeof nm)) ||
        (st = ox__attr_int(c, n, "exclude_outside", 0, &excl)) || (st = ox__attr_int(c, n, "antialias", 0, &antialias)))
        return st;
    if (strcmp(mode, "nearest"))
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "mode '%s'; lupe resizes with mode nearest", mode);
    if (antialias) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "antialias");
    static const char *const cts[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                      "tf_half_pixel_for_nn"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    int t = -1, m = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(ct, cts[i])) t = i;
    for (int i = 0; i < 4; i++)
        if (!strcmp(nm, nms[i])) m = i;
    if (t < 0) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "coordinate_transformation_mode '%s'", ct);
    if (m < 0) return ox__node_err(c, n, LUPE_EUNSUPPORTED, "nearest_mode '%s'", nm);
    if (x->rank != 4)
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "input '%s' %s: lupe resizes [N, C, H, W]", x->name,
                           shape_str(x, b1, sizeof b1));
    /* Scales or sizes: Upsample-7's attribute, Upsample-9 and Resize-10's
     * second input, Resize-11+'s third or fourth. */
    double scale[4];
    int64_t d[4];
    const ox_val *sc = NULL, *sz = NULL;
    if (upsample && c->opset < 9) {
        const Onnx__AttributeProto *a = ox__attr(n, ox__proto(c, n), "scales");
        if (!a || a->n_floats != 4) return ox__node_err(c, n, LUPE_EFORMAT, "attribute 'scales' needs 4 values");
        for (int i = 0; i < 4; i++) scale[i] = a->floats[i];
    } else if (upsample || c->opset < 11) {
        if ((st = need_const(c, n, 1, "scales"))) return st;
        sc = IN(c, n, 1);
    } else {
        sc = IN(c, n, 2) && IN(c, n, 2)->numel ? IN(c, n, 2) : NULL;
        sz = IN(c, n, 3) && IN(c, n, 3)->numel ? IN(c, n, 3) : NULL;
        if ((sc && (st = need_const(c, n, 2, "scales"))) || (sz && (st = need_const(c, n, 3, "sizes")))) return st;
        if (!sc == !sz) return ox__node_err(c, n, LUPE_EFORMAT, "needs exactly one of scales and sizes");
    }
    if (sc) {
        if (sc->numel != 4 || sc->dtype != OX_F32)
            return ox__node_err(c, n, LUPE_EFORMAT, "scales '%s' should be 4 floats", sc->name);
        for (int i = 0; i < 4; i++) scale[i] = sc->f[i];
    }
    for (int i = 0; i < 4; i++) {
        if (sz) {
            if (sz->numel != 4 || sz->dtype == OX_F32)
                return ox__node_err(c, n, LUPE_EFORMAT, "sizes '%s' should be 4 integers", sz->name);
            d[i] = sz->i[i];
            scale[i] = x->dims[i] ? (double)d[i] / x->dims[i] : 1;
        } else {
            if (!(scale[i] > 0 && scale[i] < 65536))
                return ox__node_err(c, n, LUPE_EFORMAT, "scale %g is out of range", scale[i]);
            d[i] = (int64_t)floor(x->dims[i] * scale[i]);
        }
        if (d[i] < 1 || d[i] > 65536)
            return ox__node_err(c, n, LUPE_EFORMAT, "output size %lld is out of range", (long long)d[i]);
    }
    if (d[0] != x->dims[0] || d[1] != x->dims[1])
        return ox__node_err(c, n, LUPE_EUNSUPPORTED, "resizing the batch or channel axis");
    if ((st = set_out(c, n, 0, 4, d, OX_F32))) return st;
    int32_t *ym = ox__pool_alloc(&c->tmp, (size_t)d[2] * sizeof *ym), *xm = ox__pool_alloc(&c->tmp, (size_t)d[3] * sizeof *xm);
    if (!ym || !xm) return LUPE_ENOMEM;
    for (int64_t o = 0; o < d[2]; o++) ym[o] = nearest_src(o, x->dims[2], d[2], scale[2], (ctm)t, (nmode)m);
    for (int64_t o = 0; o < d[3]; o++) xm[o] = nearest_src(o, x->dims[3], d[3], scale[3], (ctm)t, (nmode)m);
    n->a.rs.ymap = ym, n->a.rs.xmap = xm;
    n->kind = K_RESIZE;
    return LUPE_OK;
}

/* ---- the table ----------------------------------------------------------------- */
static const ox_op ops[] = {
    {"Add", 2, 2, 1, 1, "", op_add},
    {"BatchNormalization", 5, 5, 1, 5, "epsilon momentum spatial training_mode", op_batchnorm},
    {"Cast", 1, 1, 1, 1, "to saturate", op_cast},
    {"Concat", 1, OX_MAXIO, 1, 1, "axis", op_concat},
    {"Constant", 0, 0, 1, 1, "value value_float value_floats value_int value_ints", op_constant},
    {"ConstantOfShape", 1, 1, 1, 1, "value", op_constant_of_shape},
    {"Conv", 2, 3, 1, 1, "auto_pad dilations group kernel_shape pads strides", op_conv},
    {"Div", 2, 2, 1, 1, "", op_div},
    {"Equal", 2, 2, 1, 1, "", op_equal},
    {"Expand", 2, 2, 1, 1, "", op_expand},
    {"Flatten", 1, 1, 1, 1, "axis", op_flatten},
    {"Gather", 2, 2, 1, 1, "axis", op_gather},
    {"Identity", 1, 1, 1, 1, "", op_identity},
    {"LeakyRelu", 1, 1, 1, 1, "alpha", op_leaky_relu},
    {"MaxPool", 1, 1, 1, 2, "auto_pad ceil_mode dilations kernel_shape pads storage_order strides", op_maxpool},
    {"Mul", 2, 2, 1, 1, "", op_mul},
    {"Range", 3, 3, 1, 1, "", op_range},
    {"Relu", 1, 1, 1, 1, "", op_relu},
    {"Reshape", 2, 2, 1, 1, "allowzero", op_reshape},
    {"Resize", 1, 4, 1, 1,
     "mode coordinate_transformation_mode nearest_mode cubic_coeff_a exclude_outside extrapolation_value antialias",
     op_resize},
    {"Shape", 1, 1, 1, 1, "start end", op_shape},
    {"Sigmoid", 1, 1, 1, 1, "", op_sigmoid},
    {"Slice", 1, 5, 1, 1, "starts ends axes", op_slice},
    {"Softmax", 1, 1, 1, 1, "axis", op_softmax},
    {"Split", 1, 2, 1, OX_MAXIO, "axis split num_outputs", op_split},
    {"Squeeze", 1, 2, 1, 1, "axes", op_squeeze},
    {"Sub", 2, 2, 1, 1, "", op_sub},
    {"Transpose", 1, 1, 1, 1, "perm", op_transpose},
    {"Unsqueeze", 1, 2, 1, 1, "axes", op_unsqueeze},
    {"Upsample", 1, 2, 1, 1, "mode scales", op_resize},
    {"Where", 3, 3, 1, 1, "", op_where},
};

const ox_op *ox__op_find(const char *name)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(ops[i].name, name)) return &ops[i];
    return NULL;
}

void ox__op_list(char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0] && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", ops[i].name);
}
