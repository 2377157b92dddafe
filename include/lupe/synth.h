/*
 * lupe synthetic tags: a procedural generator of images that look like the
 * real metal-tag photos (brushed metal, engraved text, holes, lighting
 * gradients, reflections, sensor noise, blur, slight rotation and
 * perspective) with defects of known extent: scratches (class 0) and,
 * optionally, dents and stains. Deterministic from a seed: the same seed and
 * options give the same bytes on every machine.
 *
 *     synth_cfg c;
 *     synth_cfg_default(&c);
 *     c.classes = 1 << SYNTH_SCRATCH | 1 << SYNTH_DENT;
 *     lupe_img *im = NULL; det_box b[8]; int n = 0;
 *     if (synth_tag(&c, 42, 7, &im, b, 8, &n)) die(lupe_errmsg());
 *     for (int i = 0; i < n; i++)
 *         printf("%s %g %g %g %g\n", synth_class_name(b[i].cls), b[i].x1, b[i].y1, b[i].x2, b[i].y2);
 *     lupe_img_free(im);
 */
#ifndef LUPE_SYNTH_H
#define LUPE_SYNTH_H

#include "lupe/det.h"
#include "lupe/img.h"

enum { SYNTH_SCRATCH = 0, SYNTH_DENT = 1, SYNTH_STAIN = 2, SYNTH_NCLASSES = 3 };

typedef struct synth_cfg {
    int w, h;              /* image size in pixels */
    int classes;           /* bit mask of SYNTH_* classes to plant; scratch only by default */
    int min_defects, max_defects; /* per image */
    float empty_fraction;  /* share of images with no defect */
    float engrave;         /* share of tags with engraved text and rules (the
                              photos have none; variety for pretraining) */
} synth_cfg;

/* 450x300 (the photos' size), scratches only, 1 to 5 defects, 10% empty,
 * 25% engraved. */
void synth_cfg_default(synth_cfg *c);
/* LUPE_EARG naming the field when a setting is out of range. */
lupe_status synth_cfg_check(const synth_cfg *c);
/* Makes image `index` of the stream `seed`: an RGB image and up to max boxes
 * (det_box.img = 0, cls = SYNTH_*, corners in pixels of the image). Each box
 * is the tight box of the pixels its defect changed, after the geometry and
 * rounding: x1, y1 the first changed column and row, x2, y2 one past the
 * last. max must be at least c->max_defects (LUPE_EARG otherwise). */
lupe_status synth_tag(const synth_cfg *c, uint64_t seed, uint64_t index, lupe_img **out, det_box *boxes, int max,
                      int *nbox);
/* "scratch", "dent", "stain"; NULL for any other number. */
const char *synth_class_name(int cls);
/* The class with that name, or -1. */
int synth_class_from_name(const char *name);

#endif
