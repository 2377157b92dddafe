/*
 * What the trainer's files share: a built detector graph with its state
 * records, and validation of such a graph over a loader.
 */
#ifndef LUPE_TRAIN_INTERNAL_H
#define LUPE_TRAIN_INTERNAL_H

#include "lupe/eval.h"
#include "lupe/train.h"

typedef struct trn__model {
    det_arch a;
    eng_graph *g;
    int x, outs[DET_LEVELS];
    eng_tensor_rec *state; /* parameters, then batch-norm running statistics */
    int nstate;
} trn__model;

lupe_status trn__model_build(trn__model *m, const char *scale, int nc, int imgsz, int batch, int training,
                             int precision);
void trn__model_cleanup(trn__model *m);
/* Copies a checkpoint's model tensors (names as eng_graph_state gives) in;
 * prefix selects a family ("" the model, "train." the raw weights). */
lupe_status trn__model_load(trn__model *m, const eng_ckpt *c, const char *prefix);

typedef struct trn__vstats {
    double box, cls, dfl; /* mean validation losses per image */
    int images;
    double seconds;
} trn__vstats;

/* Runs m (inference mode) over every batch of vl and computes the metrics
 * into *res (eval_result_free); loss (may be NULL) adds validation losses.
 * What goes into dir: TRN__PREVIEW the first images with their boxes
 * (val_preview.jpg), TRN__PLOTS the PR/F1/P/R curves and confusion matrix. */
enum { TRN__PREVIEW = 1, TRN__PLOTS = 2 };
lupe_status trn__validate(trn__model *m, trn_loader *vl, det_loss *loss, char *const *names, int nc, float conf,
                          float iou, const char *dir, int what, eval_result *res, trn__vstats *vs);
/* A loader for evaluation: letterbox only, images in order. */
lupe_status trn__eval_loader(const trn__model *m, int workers, const trn_sample *s, int n, trn_loader **out);

/* config.json text of a configuration (src/train/config.c). */
char *trn__cfg_json(const trn_cfg *c);

/* Checkpoint metadata helpers (JSON text). */
char *trn__ckpt_meta(const trn__model *m, char *const *classes, int nc, const char *extra_json);

#endif
