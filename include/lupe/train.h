/*
 * lupe training: the data loader (decoding, caching, mosaic and the other
 * augmentations, letterbox, in worker threads, reproducible from a seed) and
 * the trainer that runs the YOLOv8 recipe on a dataset version.
 */
#ifndef LUPE_TRAIN_H
#define LUPE_TRAIN_H

#include "lupe/det.h"

/* ---- Data loader (src/train/loader.c, src/train/augment.c) --------------- */

/* One image of a split: a file and its boxes in pixels of that file. */
typedef struct trn_sample {
    const char *path;
    int nbox;
    const det_box *boxes; /* det_box.img ignored; corners in image pixels */
} trn_sample;

/* Augmentation settings; the defaults are Ultralytics' YOLOv8 ones. */
typedef struct trn_aug {
    float hsv_h, hsv_s, hsv_v; /* 0.015, 0.7, 0.4: gains of random hue, saturation, value jitter */
    float translate;           /* 0.1: fraction of the image */
    float scale;               /* 0.5: gain, scale drawn from [1-scale, 1+scale] */
    float fliplr, flipud;      /* 0.5, 0.0: probabilities */
    float mosaic;              /* 1.0: probability of a 4-image mosaic */
} trn_aug;

typedef struct trn_loader_cfg {
    int imgsz, batch;
    int workers;      /* decoding/augmentation threads; 0 = inline */
    uint64_t seed;
    int augment;      /* 0: letterbox only, images in order (validation) */
    trn_aug aug;
    /* Optional: trn_loader_new decodes every image into the cache before it
     * returns; this is called after each one with (done, total), from the
     * decoding threads, one call at a time. */
    void (*progress)(void *ctx, int done, int total);
    void *progress_ctx;
} trn_loader_cfg;

/* Where the letterbox put image i of a batch: input = original * scale + pad.
 * Augmented images (augment = 1) have no such mapping: scale and pad are 0. */
typedef struct trn_meta {
    int index;            /* index in the sample array */
    int w, h;             /* original size */
    float scale, padx, pady;
} trn_meta;

typedef struct trn_loader trn_loader;

void trn_aug_default(trn_aug *a);
void trn_loader_cfg_default(trn_loader_cfg *c);
lupe_status trn_loader_new(const trn_loader_cfg *c, const trn_sample *s, int n, trn_loader **out);
void trn_loader_free(trn_loader *l);
/* Batches in one epoch (the last one may be short). */
int trn_loader_batches(const trn_loader *l);
/* Starts epoch e: the order and every random choice come from (seed, e, index),
 * so results do not depend on the number of workers. mosaic = 0 switches the
 * mosaic off (the last epochs of the recipe). */
void trn_loader_epoch(trn_loader *l, int epoch, int mosaic);
/* The next batch of the epoch: images as NHWC float 0..1 [batch, imgsz,
 * imgsz, 3] into `images`; *boxes (owned by the loader, valid until the
 * next call) get det_box.img = index in the batch; meta (may be NULL) gets
 * one entry per image. Returns the number of images, 0 at the end of the
 * epoch, -1 with lupe_err set. A short batch leaves the rest of `images`
 * as it was. Call _epoch and _next from one thread. */
int trn_loader_next(trn_loader *l, float *images, const det_box **boxes, int *nbox, trn_meta *meta);

/* ---- Training data (src/train/data.c) -------------------------------------
 * The splits of a dataset version (contract 3: a manifest and the objects
 * it names) or of a YOLO folder (images/{train,val,test}/..., labels/...;
 * a folder without splits is all train), as sample arrays for the loader. */
typedef struct trn_data {
    char **classes;
    int nc;
    trn_sample *split[3]; /* LUPE_SPLIT_TRAIN, _VAL, _TEST order */
    int n[3];
    char id[65];          /* dataset version id, or "" for a folder */
    char *name;           /* "metal-tags@1" or the folder */
    /* owned storage */
    det_box *boxes;
    char **paths;
    size_t nboxes, npaths;
} trn_data;

/* ref: a folder, or a dataset reference ("NAME@N", "NAME", id prefix) in
 * the workspace found from ws_dir (NULL: the current folder). */
lupe_status trn_data_load(const char *ref, const char *ws_dir, trn_data **out);
void trn_data_free(trn_data *d);

/* ---- Trainer (src/train/trainer.c, src/train/validate.c) ----------------- */
typedef struct trn_cfg {
    const char *data;        /* as trn_data_load's ref */
    const char *ws_dir;
    const char *out;         /* run folder; NULL: runs/train-N, the first free N */
    const char *scale;       /* "n" or "s" */
    int imgsz, batch, nbs;   /* 480, 16, nominal batch 64 (accumulation) */
    int epochs;              /* 100; fitted to time_budget when that is set */
    double time_budget;      /* seconds of wall time, 0 = none */
    int close_mosaic;        /* 10: last epochs without mosaic */
    const char *optimizer;   /* "auto" (YOLOv8's choice), "sgd", "adamw" */
    float lr0, lrf, momentum, weight_decay;
    float warmup_epochs, warmup_momentum, warmup_bias_lr;
    int cos_lr;
    float ema_decay, ema_tau;
    float clip_norm;         /* 10: gradients clipped to this global norm */
    uint64_t seed;
    int workers, threads;    /* threads 0 = all cores */
    int precision;           /* ENG_PREC_* */
    int val_every;           /* epochs between validations (the last is always validated) */
    const char *init;        /* checkpoint whose model weights start the run */
    int resume;              /* continue the run in `out` from weights/last.ckpt */
    int previews;            /* validation images drawn into the run folder */
    trn_aug aug;
    int quiet;
    int64_t stop_after;      /* act as on SIGINT after this many iterations (0 = never) */
} trn_cfg;

void trn_cfg_default(trn_cfg *c);

/* Per-epoch figures of a run, as written to results.csv. */
typedef struct trn_epoch_stats {
    int epoch;
    double box, cls, dfl;          /* mean training losses */
    double p, r, map50, map;       /* validation, EMA weights */
    double vbox, vcls, vdfl;       /* validation losses */
    double lr[3];
    double seconds, images_per_s;
    double fitness;
} trn_epoch_stats;

/* What a run reached: the run folder (funnel string, caller frees), whether
 * it was stopped early, and the final evaluation of best.ckpt. */
typedef struct trn_result {
    char *dir;
    int stopped;
    int epochs;                   /* epochs completed */
    double seconds;               /* wall time of the whole run */
    double train_images_per_s;    /* training loop only (no validation) */
    double val[4], test[4];       /* P, R, mAP50, mAP50-95; test -1 without a test split */
} trn_result;

/* Runs (or resumes) a training run; SIGINT (see trn_request_stop) stops it
 * cleanly after saving weights/last.ckpt. Writes the run folder's files;
 * progress lines go to progress (may be NULL). */
typedef void (*trn_progress_fn)(void *ud, const char *line, int done);
lupe_status trn_train(const trn_cfg *c, trn_progress_fn progress, void *ud, trn_result *res);
void trn_request_stop(void);
int trn_stop_requested(void);

/* Reads a run's config.json back into c (strings point into storage the
 * caller frees with lupe_free). */
lupe_status trn_cfg_load(trn_cfg *c, const char *path, char **storage);

/* Evaluation of a checkpoint on a split (src/train/validate.c). */
typedef struct trn_val_cfg {
    const char *weights;     /* a checkpoint, or a run folder (its best.ckpt) */
    const char *data;
    const char *ws_dir;
    int split;               /* LUPE_SPLIT_* */
    int imgsz, batch;        /* 0: from the checkpoint */
    float conf, iou;         /* 0.001, 0.7 */
    const char *plots;       /* folder for plots and previews, NULL none */
    int threads, precision;
} trn_val_cfg;
void trn_val_cfg_default(trn_val_cfg *c);
struct eval_result;
/* Evaluates; out gets the metrics (eval_result_free) and class names. */
lupe_status trn_val(const trn_val_cfg *c, struct eval_result *out, char ***classes, int *nc);

/* Runs a checkpoint over a split in inference mode, set up as trn_val is
 * (weights, data, ws_dir, split, imgsz, batch, conf, iou, threads,
 * precision; plots unused), and calls fn for each image in the order of the
 * split's samples with its detections, best first, at most 300, in pixels
 * of the original image. fn returns nonzero to stop. */
typedef int (*trn_detect_fn)(void *ud, int index, const trn_sample *s, const det_pred *p, int np);
lupe_status trn_detect(const trn_val_cfg *c, trn_detect_fn fn, void *ud);

/* One split's metrics as a JSON object, the form of a run's metrics.json
 * and of the registry: {"images", "boxes", "p", "r", "f1", "map50",
 * "map50_95", "conf", "classes": [{"name", "boxes", "p", "r", "ap50",
 * "ap50_95"}]}; P and R are at conf, the confidence of maximum F1. NULL if
 * out of memory. (src/train/metrics.c) */
struct json_t *trn_metrics_json(const struct eval_result *r, char *const *classes, int nc);

#endif
