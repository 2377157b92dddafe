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

/* Runs m (inference mode) over every batch of vl, adding detections and
 * ground truth to e; loss (may be NULL) adds validation losses. If
 * preview_dir is set, the first images are drawn there. */
lupe_status trn__validate(trn__model *m, trn_loader *vl, det_loss *loss, eval_ctx *e, float conf, float iou,
                          const char *preview_dir, char *const *names, trn__vstats *vs);

/* config.json text of a configuration (src/train/config.c). */
char *trn__cfg_json(const trn_cfg *c);

/* Checkpoint metadata helpers (JSON text). */
char *trn__ckpt_meta(const trn__model *m, char *const *classes, int nc, const char *extra_json);

#endif
