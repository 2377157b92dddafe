/*
 * lupe ONNX files: reading and writing ONNX models (protobuf, through the C
 * code protoc-c generates from the onnx.proto Debian's libonnx-dev ships).
 * The exporter writes lupe's detector in the output layout Ultralytics
 * YOLOv8 exports; the importer loads such graphs for lupe's inference.
 *
 *     onnx_info in;
 *     if (onnx_inspect("model.onnx", &in)) die(lupe_errmsg());
 *     printf("%s, opset %lld, %d nodes\n", in.producer, (long long)in.opset, in.nodes);
 */
#ifndef LUPE_ONNX_H
#define LUPE_ONNX_H

#include "lupe/base.h"

#define ONNX_MAX_BYTES ((size_t)1 << 30) /* larger files are refused */

typedef struct onnx_info {
    int64_t ir_version, opset; /* opset of the default ("ai.onnx") domain */
    char producer[64];         /* producer name and version */
    int nodes, inputs, outputs, initializers;
} onnx_info;

/* Parses the file and summarises its graph. A file that is not an ONNX
 * model is LUPE_EFORMAT naming the file. */
lupe_status onnx_inspect(const char *path, onnx_info *out);

#endif
