/*
 * lupe inference: a trained detector compiled for inference. Batch norm is
 * folded into the convolutions, SiLU fused into them (a oneDNN post-op),
 * concatenations written in place where the producer allows, and every
 * activation planned into one arena whose memory is reused by liveness:
 * a run allocates nothing. Precisions f32, bf16 (AMX / AVX512_BF16) and
 * int8 (s8 weights per output channel, s8 activations per tensor, from a
 * calibration file). Details in docs/inference.md.
 *
 *     inf_opts o;
 *     inf_opts_default(&o);
 *     o.precision = INF_BF16;
 *     inf_model *m = NULL;
 *     if (inf_model_open("runs/x", &o, &m)) die(lupe_errmsg());
 *     lupe_img *im = ...;                     // any size, RGB
 *     det_pred p[300];
 *     int n = 0;
 *     inf_predict(m, im, 0.25f, 0.7f, 300, p, &n);   // boxes in im's pixels
 *     inf_model_free(m);
 */
#ifndef LUPE_INFER_H
#define LUPE_INFER_H

#include "lupe/det.h"
#include "lupe/img.h"

typedef enum { INF_F32, INF_BF16, INF_INT8 } inf_precision;

const char *inf_precision_name(inf_precision p); /* "f32", "bf16", "int8" */
/* 0, or -1 when s is none of the names above. */
int inf_precision_parse(const char *s, inf_precision *out);

typedef struct inf_opts {
    inf_precision precision; /* INF_F32 */
    int batch;               /* images per run (1) */
    int threads;             /* compute threads; 0 = eng_get_threads() */
    int imgsz;               /* input size; 0 = the model's */
    /* int8: the calibration file; NULL = inf_calib_path(the checkpoint) */
    const char *calib;
    /* int8: the last 1x1 convolutions of the head (box and class logits)
     * in f32 rather than int8 (1; see docs/inference.md for why) */
    int int8_float_head;
    /* int8: each activation's range is its largest |x| seen in calibration
     * (0), or this percentile of |x| (99.9, 99.99 or 99.999) */
    float int8_percentile;
} inf_opts;

void inf_opts_default(inf_opts *o);

typedef struct inf_model inf_model;
typedef struct inf_calib inf_calib;

/* Opens a model: ref is a lupe checkpoint or a run folder (its
 * weights/best.ckpt). Registry versions, signed packages and .onnx files
 * are resolved by the caller (lupe predict: reg_get, reg_package_verify,
 * inf_onnx_open) and refused here with LUPE_EARG. int8 needs the calibration file (o->calib, or the
 * checkpoint's inf_calib_path): LUPE_ENOTFOUND naming it when missing. */
lupe_status inf_model_open(const char *ref, const inf_opts *o, inf_model **out);
/* The checkpoint file ref names (run folder -> weights/best.ckpt); a funnel
 * string. */
char *inf_model_resolve(const char *ref);
/* Compiles a planned detector graph holding weights (det_build's, input and
 * outputs as it returned them); the graph is only read and may be freed
 * afterwards. calib (may be NULL unless int8) gives int8's ranges. classes
 * may be NULL ("0", "1", ...). */
lupe_status inf_model_from_graph(eng_graph *g, const det_arch *a, int input, const int outs[DET_LEVELS],
                                 const inf_opts *o, const inf_calib *calib, char *const *classes, inf_model **out);
void inf_model_free(inf_model *m);

/* Architecture (nc, imgsz, and batch = images per run). */
const det_arch *inf_model_arch(const inf_model *m);
char *const *inf_model_classes(const inf_model *m);
inf_precision inf_model_precision(const inf_model *m);
int inf_model_threads(const inf_model *m);
/* The checkpoint it came from ("" for a graph). */
const char *inf_model_path(const inf_model *m);
/* Input images, NHWC float 0..1 [batch, imgsz, imgsz, 3] RGB: write, then run. */
float *inf_model_input(inf_model *m);
/* Runs every image slot of the batch; allocates nothing. */
lupe_status inf_model_run(inf_model *m);
/* Head output of level l after a run: NHWC [batch, imgsz >> (3+l), same,
 * 4 * DET_REG_MAX + nc], as det_build's outs (det_detect decodes them). */
const float *inf_model_output(const inf_model *m, int level);
void inf_model_outputs(const inf_model *m, const float *outs[DET_LEVELS]);
/* Bytes of the activation arena (with oneDNN's scratchpad) and of the
 * weights in the kernels' layouts. */
size_t inf_model_arena_bytes(const inf_model *m);
size_t inf_model_weight_bytes(const inf_model *m);
/* One line per step (kind, name, shapes, types, oneDNN kernel) to f. */
void inf_model_describe(const inf_model *m, FILE *f);
/* Diagnostic of a lower precision: runs ref (f32) and m on ref's input
 * and prints, per activation, m's error against ref (relative RMS and
 * largest), with its type and int8 scale. Same architecture, batch and
 * size; allocates copies of every activation. */
lupe_status inf_model_trace(inf_model *ref, inf_model *m, FILE *f);
/* Runs the model `runs` times and prints, from each step's fastest time
 * (robust to other processes on the cores), the time of each kind of step
 * and of the 40 slowest steps (on its input as it is). */
lupe_status inf_model_profile(inf_model *m, int runs, FILE *f);
/* Convolutions whose oneDNN kernel is a slow reference one (0 normally). */
int inf_model_ref_kernels(const inf_model *m);

/* ---- images in, boxes out -------------------------------------------------
 * The letterbox of training's validation loader: the long side scaled to
 * imgsz (area filter when shrinking, bilinear when growing), centred on a
 * gray 114 square; input pixel p shows original pixel p / scale - pad. */
typedef struct inf_letterbox {
    int w, h;          /* original size */
    int new_w, new_h;  /* scaled size inside the square */
    int pad_x, pad_y;  /* left and top padding */
    float scale;       /* imgsz / max(w, h) */
} inf_letterbox;

/* Letterboxes im (gray or RGB) into dst, NHWC float 0..1 [imgsz, imgsz, 3]. */
lupe_status inf_letterbox_image(const lupe_img *im, int imgsz, float *dst, inf_letterbox *lb);
/* Maps boxes from network input pixels to the original image's, clipped to
 * it: x = (x' - pad_x) / scale. */
void inf_unletterbox(det_pred *p, int n, const inf_letterbox *lb);
/* Letterbox, run (image slot 0 of the batch), decode and class-aware NMS
 * (det_detect), boxes mapped back to im's pixels. out has room for max_det;
 * *n gets the count, best first. */
lupe_status inf_predict(inf_model *m, const lupe_img *im, float conf, float iou, int max_det, det_pred *out,
                        int *n);

/* ---- ONNX detectors (src/infer/onnx_det.c) ----------------------------------
 * A YOLOv8-layout ONNX file (input [1, 3, N, N], output [1, 4 + nc, anchors]
 * of box centre, size and class scores, no NMS: lupe's export, Ultralytics'
 * or torch.onnx.export's) run through the ONNX import part (lupe/onnx.h),
 * in f32, with the letterbox, filter, NMS and mapping back of inf_predict.
 * Class names come from the file's "names" metadata, else "0", "1"... */
typedef struct inf_onnx inf_onnx;
/* threads as onnx_net_load's. Refuses other layouts naming the file. */
lupe_status inf_onnx_open(const char *path, int threads, inf_onnx **out);
void inf_onnx_free(inf_onnx *m);
int inf_onnx_imgsz(const inf_onnx *m);
int inf_onnx_nc(const inf_onnx *m);
char *const *inf_onnx_classes(const inf_onnx *m);
lupe_status inf_onnx_predict(inf_onnx *m, const lupe_img *im, float conf, float iou, int max_det, det_pred *out,
                             int *n);
/* Decodes one raw output [4 + nc, nanchors] (as above, or det_raw_output's):
 * every (anchor, class) with score >= conf becomes a corner box in cand
 * (room for nanchors * nc), then class-aware NMS; the best max_det go to dst
 * (room for max_det). Returns their count. */
int inf_onnx_decode(const float *out, int nc, int nanchors, float conf, float iou, int max_det, det_pred *cand,
                    det_pred *dst);

/* ---- int8 calibration -------------------------------------------------------
 * Runs the f32 model over calibration images and records, for every
 * activation the int8 model stores, its range: the minimum, the maximum and
 * a high percentile of |x| (from a histogram). Saved next to the model
 * (inf_calib_path) so it is done once; format in docs/inference.md.
 *     inf_calib *c = NULL;
 *     inf_calib_new(f32_model, &c);
 *     for each batch: fill inf_model_input(f32_model); inf_calib_add(c, n);
 *     inf_calib_save(c, inf_calib_path(ckpt), "metal-tags@1 train, 32 images");
 */
/* model must be f32; it stays the caller's and must outlive c. */
lupe_status inf_calib_new(inf_model *f32, inf_calib **out);
/* Runs the model on its input and adds the first n images' ranges. */
lupe_status inf_calib_add(inf_calib *c, int n);
/* Letterboxes and adds image files (JPEG or PNG), a batch at a time; a
 * file that cannot be read is an error naming it. */
lupe_status inf_calib_add_files(inf_calib *c, const char *const *paths, int n);
int inf_calib_images(const inf_calib *c);
/* Writes the ranges atomically; source says where the images came from. */
lupe_status inf_calib_save(const inf_calib *c, const char *path, const char *source);
/* Reads a calibration file; LUPE_ENOTFOUND when there is none. */
lupe_status inf_calib_load(const char *path, inf_calib **out);
void inf_calib_free(inf_calib *c);
/* The calibration file of a checkpoint: "X.ckpt" -> "X.calib"; funnel string. */
char *inf_calib_path(const char *ckpt_path);

#endif
