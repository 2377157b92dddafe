/*
 * lupe detector: the YOLOv8 design (Conv-BN-SiLU, C2f, SPPF, PAN neck,
 * anchor-free decoupled head with distribution focal loss, strides 8/16/32)
 * built on the engine's graphs from an architecture table, for any number
 * of classes, scales n and s, and any input size that is a multiple of 32.
 * Layer and parameter names follow Ultralytics ("model.2.m.0.cv1.conv.weight").
 *
 *     det_arch a;
 *     det_arch_init(&a, "n", 1, 480, 16);      // scale, classes, image size, batch
 *     eng_graph *g = eng_graph_new("yolov8n");
 *     int x, outs[3];
 *     if (det_build(g, &a, &x, outs) || eng_graph_plan(g, 1)) die(lupe_errmsg());
 */
#ifndef LUPE_DET_H
#define LUPE_DET_H

#include "lupe/engine.h"

#define DET_REG_MAX 16
#define DET_LEVELS 3

typedef struct det_arch {
    char scale;           /* 'n' or 's' */
    float depth, width;   /* multipliers of the scale */
    int max_channels;
    int nc;               /* classes */
    int imgsz, batch;
} det_arch;

/* LUPE_EARG for an unknown scale, no classes or a size not a multiple of 32. */
lupe_status det_arch_init(det_arch *a, const char *scale, int nc, int imgsz, int batch);
/* Adds the network to g: *input gets the image tensor [batch, imgsz, imgsz, 3]
 * and outs[i] the head output of level i (stride 8 << i) with
 * 4 * DET_REG_MAX + nc channels: box distribution logits, then class logits. */
lupe_status det_build(eng_graph *g, const det_arch *a, int *input, int outs[DET_LEVELS]);
/* After planning: sets the head's output biases as YOLOv8 initialises them
 * (box 1.0, class log(5 / nc / (640 / stride)^2)). */
lupe_status det_init_bias(eng_graph *g, const det_arch *a);

/* One ground-truth box of a batch, corners in pixels of the network input. */
typedef struct det_box {
    int img;              /* index of the image in the batch */
    int cls;
    float x1, y1, x2, y2;
} det_box;

/* One detection, corners in pixels of the network input. */
typedef struct det_pred {
    float x1, y1, x2, y2;
    float score;
    int cls;
} det_pred;

/* ---- Loss (src/det/loss.c, src/det/assign.c) ------------------------------
 * The YOLOv8 training loss: task-aligned assigner (top-k 10, alpha 0.5,
 * beta 6), CIoU box loss, distribution focal loss (reg_max 16) and BCE with
 * the assigner's soft targets, with gains 7.5 / 0.5 / 1.5 (box, cls, dfl). */
typedef struct det_loss_cfg {
    float box_gain, cls_gain, dfl_gain;
    int topk;
    float alpha, beta;
    int max_gt;          /* ground-truth boxes per batch the loss is sized for */
} det_loss_cfg;

typedef struct det_loss_parts {
    float box, cls, dfl; /* gain-weighted components, as Ultralytics logs them */
    float total;         /* (box + cls + dfl) * batch */
    int npos;            /* anchors assigned to a ground-truth box */
} det_loss_parts;

typedef struct det_loss det_loss;

void det_loss_cfg_default(det_loss_cfg *c);
/* Sizes every buffer for a's batch and image size (c NULL: the defaults). */
lupe_status det_loss_new(const det_arch *a, const det_loss_cfg *c, det_loss **out);
void det_loss_free(det_loss *l);
/* Loss of the head outputs outs[i] (NHWC [batch, h_i, w_i, 4*DET_REG_MAX+nc],
 * h_i = imgsz >> (3+i)) against gt; d(total)/d(outs[i]) is WRITTEN to
 * grads[i] (may be NULL to skip gradients). More than max_gt boxes is
 * LUPE_ELIMIT; nothing is allocated. Details in docs/detector.md. */
lupe_status det_loss_compute(det_loss *l, const float *const outs[DET_LEVELS], float *const grads[DET_LEVELS],
                             const det_box *gt, int ngt, det_loss_parts *parts);
/* The same over the first nimg images of the batch only (a short last
 * batch in validation): total is scaled by nimg, and the gradient rows of
 * the other images are left as they are. */
lupe_status det_loss_compute_n(det_loss *l, const float *const outs[DET_LEVELS], float *const grads[DET_LEVELS],
                               const det_box *gt, int ngt, int nimg, det_loss_parts *parts);

/* ---- Decoding and NMS (src/det/decode.c, src/det/nms.c) ------------------ */
/* Decodes image b of the head outputs: box = DFL expectation times stride
 * around the anchor point, scores = sigmoid of the class logits; keeps
 * (box, class) pairs with score >= conf (every class over conf, as for mAP),
 * then class-aware NMS at IoU iou, at most max_det. Returns the count
 * written to out (capacity max_det), best first, or -1 with lupe_err set. */
int det_detect(const det_arch *a, const float *const outs[DET_LEVELS], int b, float conf, float iou, int max_det,
               det_pred *out);
/* Anchor points of an image: sum over the levels of (imgsz >> (3 + l))^2. */
int det_anchors(const det_arch *a);
/* Image b's raw predictions as Ultralytics YOLOv8 exports them (output0
 * without NMS): out is [4 + nc, N] (N = det_anchors(a)), row r holding
 * anchor j at out[r * N + j]. Rows 0-3 are the box centre x, y, width and
 * height in input pixels, rows 4.. the sigmoid score of each class.
 * Anchors run level by level (strides 8, 16, 32), each row-major (y, then
 * x) with its point at the cell centre; the box is the DFL expectation of
 * each side (left, top, right, bottom), in Ultralytics' order of
 * arithmetic: x1 = ax - l, x2 = ax + r, cx = (x1 + x2) / 2 * stride,
 * w = (x2 - x1) * stride. LUPE_EARG for a missing output or b outside the
 * batch. */
lupe_status det_raw_output(const det_arch *a, const float *const outs[DET_LEVELS], int b, float *out);
/* Class-aware NMS in place: sorts by score, keeps at most max_det; returns
 * the count kept. */
int det_nms(det_pred *p, int n, float iou, int max_det);
float det_iou(const det_pred *a, const det_pred *b);

#endif
