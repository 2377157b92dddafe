/*
 * What the ONNX files share: the generated protobuf types and whole-file
 * reading and writing of a ModelProto.
 */
#ifndef LUPE_ONNX_INTERNAL_H
#define LUPE_ONNX_INTERNAL_H

#include "lupe/onnx.h"
#include "onnx.pb-c.h"

/* Reads and unpacks path; free with onnx__model_free. */
lupe_status onnx__read(const char *path, Onnx__ModelProto **out);
/* Unpacks n bytes (errors name them `name`); free with onnx__model_free. */
lupe_status onnx__unpack(const uint8_t *buf, size_t n, const char *name, Onnx__ModelProto **out);
void onnx__model_free(Onnx__ModelProto *m);
/* Packs m and writes it atomically to path. */
lupe_status onnx__write(const char *path, const Onnx__ModelProto *m);
/* The opset version of the default domain, or -1 when the model has none. */
int64_t onnx__opset(const Onnx__ModelProto *m);

#endif
