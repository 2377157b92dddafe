/*
 * lupe ONNX files: reading and writing ONNX models (protobuf, through the C
 * code protoc-c generates from the onnx.proto Debian's libonnx-dev ships).
 * The exporter writes lupe's detector in the output layout Ultralytics
 * YOLOv8 exports; the importer loads such graphs for lupe's inference.
 *
 *     onnx_info in;
 *     if (onnx_inspect("model.onnx", &in)) die(lupe_errmsg());
 *     printf("%s, opset %lld, %d nodes\n", in.producer, (long long)in.opset, in.nodes);
 *
 *     onnx_export_info ex;                     // a trained run's best weights
 *     if (onnx_export_det("runs/a/weights/best.ckpt", "best.onnx", 0, &ex)) die(lupe_errmsg());
 */
#ifndef LUPE_ONNX_H
#define LUPE_ONNX_H

#include "lupe/base.h"
#include "lupe/det.h"

#define ONNX_MAX_BYTES ((size_t)1 << 30) /* larger files are refused */

typedef struct onnx_info {
    int64_t ir_version, opset; /* opset of the default ("ai.onnx") domain */
    char producer[64];         /* producer name and version */
    int nodes, inputs, outputs, initializers;
} onnx_info;

/* Parses the file and summarises its graph. A file that is not an ONNX
 * model is LUPE_EFORMAT naming the file. */
lupe_status onnx_inspect(const char *path, onnx_info *out);

/* ---- export (src/onnx/export*.c; layout in docs/onnx.md) -----------------
 * The detector as Ultralytics YOLOv8 exports it: input `images`
 * [1, 3, H, W] float32 RGB in 0..1 (NCHW), output `output0` [1, 4 + nc, N]
 * = det_raw_output's rows (box centre x, y, width, height in input pixels,
 * then the sigmoid score of each class; no NMS), opset ONNX_EXPORT_OPSET,
 * IR version 8, producer "lupe" LUPE_VERSION, Ultralytics' metadata
 * (names, stride, imgsz, task, batch). Batch norm is folded into the
 * convolutions. */
#define ONNX_EXPORT_OPSET 17

typedef struct onnx_export_info {
    char scale;          /* 'n' or 's' */
    int nc, imgsz;
    int anchors;         /* N of output0 */
    int nodes, initializers;
} onnx_export_info;

/* Writes the detector graph g (det_build for a, at batch 1, planned, with
 * its weights and running statistics) to path: input is det_build's image
 * tensor, outs its head outputs, classes the a->nc class names. info (may
 * be NULL) gets a summary. The file appears whole or not at all. */
lupe_status onnx_export_det_graph(const char *path, const eng_graph *g, const det_arch *a, int input,
                                  const int outs[DET_LEVELS], const char *const *classes, onnx_export_info *info);
/* Exports a lupe detector checkpoint (as lupe train writes; its EMA
 * weights) at imgsz (0: the size it was trained at; any multiple of 32). */
lupe_status onnx_export_det(const char *ckpt, const char *path, int imgsz, onnx_export_info *info);

#endif
