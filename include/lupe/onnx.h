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

/* ---- import: ONNX models on lupe's inference engine -----------------------
 * Loads a single-input, single-output float32 model with a fixed input size
 * (a YOLOv8-style detector exported by torch.onnx.export or Ultralytics)
 * and plans it once: every shape inferred, constant sub-graphs folded,
 * convolutions on oneDNN with batch norm and activations fused, one arena
 * with buffers reused by liveness. Running allocates
 * nothing. Operators and what is folded: docs/onnx.md.
 *
 *     onnx_net *net = NULL;
 *     if (onnx_net_load("yolov8n.onnx", 0, &net)) die(lupe_errmsg());
 *     int in[4];
 *     onnx_net_input_shape(net, in);                      // 1, 3, H, W
 *     float *out = malloc(onnx_net_output_numel(net) * sizeof(float));
 *     if (onnx_net_run(net, pixels_nchw, out)) die(lupe_errmsg());
 *     onnx_net_free(net);
 *
 * Errors: an operator, attribute or data type lupe does not run is
 * LUPE_EUNSUPPORTED, a malformed file (missing initializer, shapes that do
 * not fit, bad attribute) LUPE_EFORMAT; both name the file and the node:
 * "m.onnx: node '/model.0/conv/Conv' (Conv): ...". */
typedef struct onnx_net onnx_net;

#define ONNX_NET_MAX_OPS 64
typedef struct onnx_net_stats {
    char input[64], output[64]; /* the graph's input and output names */
    int nodes, initializers; /* in the file */
    int folded;              /* nodes computed at load time */
    int steps;               /* run-time steps after fusion */
    int convs;               /* convolutions run on oneDNN */
    int fused_bn, fused_act; /* batch norms and activations merged into them */
    int conversions;         /* layout changes (NCHW <-> NHWC) at run time */
    size_t arena_bytes;      /* activations and scratch */
    size_t weight_bytes;     /* weights held by the convolutions and constants the steps read */
    int64_t opset;
    int nops;                /* distinct operators of the file, and their counts */
    struct {
        char op[32];
        int count;
    } ops[ONNX_NET_MAX_OPS];
} onnx_net_stats;

/* threads: for the convolutions and kernels; 0 = the engine's setting
 * (eng_set_threads), otherwise it becomes the engine's setting, as
 * eng_set_threads(threads) would. Out: *out. */
lupe_status onnx_net_load(const char *path, int threads, onnx_net **out);
void onnx_net_free(onnx_net *net);
/* The input's shape: N, C, H, W. */
void onnx_net_input_shape(const onnx_net *net, int dims[4]);
/* The output's shape into dims (up to 6); returns its rank. */
int onnx_net_output_shape(const onnx_net *net, int64_t dims[6]);
size_t onnx_net_input_numel(const onnx_net *net);
size_t onnx_net_output_numel(const onnx_net *net);
/* input: N*C*H*W floats in NCHW order; output: onnx_net_output_numel
 * floats in the output's ONNX order. One run at a time per net. */
lupe_status onnx_net_run(onnx_net *net, const float *input_nchw, float *output);
const onnx_net_stats *onnx_net_get_stats(const onnx_net *net);
/* onnx_net_run that also measures each step: step_ms[onnx_net_steps(net)]
 * receives the wall time of every step, in the order onnx_net_print_plan
 * lists them (for profiling; the clock reads cost a little). */
lupe_status onnx_net_run_timed(onnx_net *net, const float *input_nchw, float *output, double *step_ms);
int onnx_net_steps(const onnx_net *net);
/* The run-time steps, one line each: what runs (convolutions with their
 * fused activation and oneDNN's kernel), for which node,
 * the output's shape and layout. */
void onnx_net_print_plan(const onnx_net *net, FILE *f);
/* The same with a time per step (ms, or NULL for none) in front of each line. */
void onnx_net_print_plan_timed(const onnx_net *net, const double *step_ms, FILE *f);
/* A metadata_props value of the file ("names", "stride", "imgsz"...), or NULL. */
const char *onnx_net_meta(const onnx_net *net, const char *key);
/* Class names from Ultralytics' "names" metadata, "{0: 'a', 1: 'b'}"
 * (ids 0..n-1, any order): a funnel array of funnel strings, freed with
 * onnx_names_free. LUPE_ENOTFOUND without the key, LUPE_EFORMAT if the text
 * is not such a dict. */
lupe_status onnx_parse_names(const char *text, char ***names, int *n);
void onnx_names_free(char **names, int n);

#endif
