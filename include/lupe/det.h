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

#endif
