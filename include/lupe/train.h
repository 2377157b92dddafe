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

#endif
