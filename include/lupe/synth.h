/*
 * lupe synthetic tags: a procedural generator of images that look like the
 * real metal-tag photos (brushed metal, engraved text, holes, lighting
 * gradients, reflections, sensor noise, blur, slight rotation and
 * perspective) with defects of known extent: scratches (class 0) and,
 * optionally, dents and stains. Deterministic from a seed: the same seed and
 * options give the same bytes on every machine.
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
} synth_cfg;

void synth_cfg_default(synth_cfg *c);
/* Makes image `index` of the stream `seed`: an RGB image and up to max boxes
 * (det_box.img = 0, cls = SYNTH_*, corners in pixels of the image). */
lupe_status synth_tag(const synth_cfg *c, uint64_t seed, uint64_t index, lupe_img **out, det_box *boxes, int max,
                      int *nbox);
const char *synth_class_name(int cls);

#endif
