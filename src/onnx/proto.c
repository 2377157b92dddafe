/*
 * ONNX model files as whole protobuf messages. protobuf-c allocates through
 * a ProtobufCAllocator; ours routes into lupe's allocation funnel, so memory
 * limits and failure injection cover the parser too.
 */
#include <string.h>

#include "onnx/onnx_internal.h"

/* Set when the funnel refuses protobuf-c an allocation: unpacking then
 * fails like a malformed message would, and this tells the two apart. */
static _Thread_local int pb_failed;

static void *pb_alloc(void *ud, size_t n)
{
    (void)ud;
    void *p = lupe_malloc(n ? n : 1);
    if (!p) pb_failed = 1;
    return p;
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    lupe_free(p);
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

lupe_status onnx__read(const char *path, Onnx__ModelProto **out)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    *out = NULL;
    lupe_status st = lupe_file_read(path, ONNX_MAX_BYTES, &buf, &n);
    if (st) return st;
    pb_failed = 0;
    Onnx__ModelProto *m = onnx__model_proto__unpack(&pb_allocator, n, buf);
    lupe_free(buf);
    if (!m && pb_failed) return lupe_err(LUPE_ENOMEM, "%s: out of memory unpacking the model", path);
    if (!m) return lupe_err(LUPE_EFORMAT, "%s: not an ONNX model (the %zu bytes are not a valid ModelProto message)", path, n);
    if (!m->graph) {
        onnx__model_free(m);
        return lupe_err(LUPE_EFORMAT, "%s: ONNX model without a graph", path);
    }
    *out = m;
    return LUPE_OK;
}

void onnx__model_free(Onnx__ModelProto *m)
{
    if (m) onnx__model_proto__free_unpacked(m, &pb_allocator);
}

lupe_status onnx__write(const char *path, const Onnx__ModelProto *m)
{
    size_t n = onnx__model_proto__get_packed_size(m);
    if (n > ONNX_MAX_BYTES) return lupe_err(LUPE_ELIMIT, "%s: the model packs to %zu bytes, over the 1 GiB cap", path, n);
    uint8_t *buf = lupe_malloc(n ? n : 1);
    if (!buf) return LUPE_ENOMEM;
    onnx__model_proto__pack(m, buf);
    lupe_status st = lupe_file_write_atomic(path, buf, n);
    lupe_free(buf);
    return st;
}

int64_t onnx__opset(const Onnx__ModelProto *m)
{
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) return o->has_version ? o->version : -1;
    }
    return -1;
}

lupe_status onnx_inspect(const char *path, onnx_info *out)
{
    Onnx__ModelProto *m = NULL;
    memset(out, 0, sizeof *out);
    lupe_status st = onnx__read(path, &m);
    if (st) return st;
    out->ir_version = m->has_ir_version ? m->ir_version : 0;
    out->opset = onnx__opset(m);
    snprintf(out->producer, sizeof out->producer, "%s%s%s", m->producer_name ? m->producer_name : "",
             m->producer_version && m->producer_version[0] ? " " : "", m->producer_version ? m->producer_version : "");
    out->nodes = (int)m->graph->n_node;
    out->inputs = (int)m->graph->n_input;
    out->outputs = (int)m->graph->n_output;
    out->initializers = (int)m->graph->n_initializer;
    onnx__model_free(m);
    return LUPE_OK;
}
