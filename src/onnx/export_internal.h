/*
 * What the exporter's files share: a builder of one ONNX model (nodes,
 * initializers, graph inputs and outputs, metadata) whose every string and
 * array lives in a pool freed at once, and the walk of an engine graph into
 * ONNX nodes.
 */
#ifndef LUPE_ONNX_EXPORT_INTERNAL_H
#define LUPE_ONNX_EXPORT_INTERNAL_H

#include "lupe/engine.h"
#include "onnx/onnx_internal.h"

/* Growable array of message pointers; the builder owns the array, the pool
 * the messages. */
typedef struct onnx__vec {
    void **v;
    size_t n, cap;
} onnx__vec;

/* A model under construction. Builder calls never fail outright: an
 * allocation failure sets oom, every later call does nothing and returns
 * NULL, and onnx__ex_write reports LUPE_ENOMEM. Callers only need to check
 * at the end (or before reading what a call returned). */
typedef struct onnx__ex {
    onnx__vec pool;  /* every allocation, freed by onnx__ex_cleanup */
    onnx__vec nodes, inits, inputs, outputs, meta;
    int oom;
} onnx__ex;

void onnx__ex_init(onnx__ex *e);
void onnx__ex_cleanup(onnx__ex *e);
/* A pool copy of the formatted string. */
char *onnx__ex_str(onnx__ex *e, const char *fmt, ...) LUPE_PRINTF(2, 3);
/* Appends node `name` of type op reading nin values; its nout outputs are
 * named name (nout 1) or name.0, name.1, ... (read them from ->output). An
 * empty input name ("") is an omitted optional input. */
Onnx__NodeProto *onnx__ex_node(onnx__ex *e, const char *op, const char *name, const char *const *in, int nin, int nout);
void onnx__ex_attr_int(onnx__ex *e, Onnx__NodeProto *n, const char *name, int64_t v);
void onnx__ex_attr_ints(onnx__ex *e, Onnx__NodeProto *n, const char *name, const int64_t *v, int k);
void onnx__ex_attr_float(onnx__ex *e, Onnx__NodeProto *n, const char *name, float v);
void onnx__ex_attr_str(onnx__ex *e, Onnx__NodeProto *n, const char *name, const char *v);
/* Initializers (raw little-endian data); return their name. */
const char *onnx__ex_f32(onnx__ex *e, const char *name, const float *data, const int64_t *dims, int ndim);
const char *onnx__ex_i64(onnx__ex *e, const char *name, const int64_t *data, const int64_t *dims, int ndim);
/* A float32 graph input or output of a fixed shape. */
void onnx__ex_io(onnx__ex *e, int is_output, const char *name, const int64_t *dims, int ndim);
void onnx__ex_meta(onnx__ex *e, const char *key, const char *value);
/* Assembles the model (IR version 8, the default domain at opset, the
 * producer "lupe" LUPE_VERSION) and writes it atomically to path. */
lupe_status onnx__ex_write(onnx__ex *e, const char *path, const char *graph_name, const char *doc, int64_t opset);

/* Adds the nodes of the planned graph g to e, as ONNX computes them in
 * NCHW (lupe's NHWC tensors have the same values; only the layout of
 * activations and weights differs). Tensor `input` becomes the value
 * input_name; names[t] (eng_graph_tensors(g) entries) receives the ONNX
 * value of every tensor that has one. A convolution whose only consumer is
 * a batch norm gets the batch norm folded into its weights and bias; SiLU
 * is Sigmoid then Mul; slices that partition a tensor's channels are one
 * Split. Another graph input, or a graph not planned, is an error naming
 * the node. */
lupe_status onnx__ex_graph(onnx__ex *e, const eng_graph *g, int input, const char *input_name, const char **names);

#endif
