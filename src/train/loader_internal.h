/*
 * What loader.c (cache, threads, ring of batches) and augment.c (one image:
 * mosaic, letterbox, affine warp, HSV, flips) share: the cached samples, the
 * per-thread scratch buffers, the seeded random streams and the pixel kernels
 * the tests reach directly.
 */
#ifndef LUPE_TRAIN_LOADER_INTERNAL_H
#define LUPE_TRAIN_LOADER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lupe/img.h"
#include "lupe/train.h"

/* The gray of letterbox and mosaic padding (Ultralytics' 114). */
#define TRN_PAD LUPE_LETTERBOX_PAD

/* One sample as cached: RGB resized so its long side is imgsz, boxes scaled
 * by the same factor and clipped to it (boxes that end up empty are gone). */
typedef struct trn__item {
    lupe_img *im;
    int ow, oh;      /* size of the file's image */
    float scale;     /* imgsz / max(ow, oh) */
    int nbox;
    det_box *boxes;  /* cached pixels; det_box.img unused */
} trn__item;

/* Everything that decides the pixels of one prepared image. Read-only while
 * workers run; trn_loader_epoch changes it only when they are idle. */
typedef struct trn__ctx {
    const trn__item *items;
    int n;
    int imgsz;
    int augment;
    int mosaic_on;   /* the epoch's switch; the probability is aug.mosaic */
    trn_aug aug;
    uint64_t seed;
    int epoch;
} trn__ctx;

/* Per-thread work memory, sized at trn_loader_new so nothing is allocated per
 * image: the padded canvas the warp reads from and the warp's tap tables. */
typedef struct trn__scratch {
    uint8_t *canvas;      /* (2*imgsz + 2)^2 * 3: mosaic canvas with a 1-pixel border of pad */
    int *col0, *col1;     /* imgsz each: byte offsets of the two horizontal taps */
    int *row0, *row1;     /* imgsz each: byte offsets of the two vertical taps */
    uint8_t *colw, *roww; /* imgsz each: weight of the second tap, 0..128 */
    det_box *tmp;         /* box_cap: boxes on the canvas before the warp */
    int box_cap;
} trn__scratch;

lupe_status trn__scratch_init(trn__scratch *s, int imgsz, int box_cap);
void trn__scratch_cleanup(trn__scratch *s);

/* Seeded random stream (splitmix64). One per image: seeded from (seed,
 * epoch, position in the epoch), so no draw depends on thread timing. */
typedef struct trn__rng {
    uint64_t state;
} trn__rng;

void trn__rng_init(trn__rng *r, uint64_t seed, uint64_t epoch, uint64_t pos);
uint64_t trn__rng_next(trn__rng *r);
/* Uniform in [a, b). */
double trn__rng_uniform(trn__rng *r, double a, double b);
/* Uniform integer in [0, n), n >= 1. */
int trn__rng_below(trn__rng *r, int n);
/* Epoch order: a Fisher-Yates shuffle of 0..n-1 from (seed, epoch). */
void trn__shuffle(int *order, int n, uint64_t seed, int epoch);

/* Prepares the image at position pos of the epoch, sample `index`, into out
 * (imgsz * imgsz * 3 bytes) and its boxes (network-input pixels, img = 0)
 * into boxes (capacity s->box_cap); fills *meta. Returns the box count.
 * Never fails: every buffer it touches was sized beforehand. */
int trn__make_image(const trn__ctx *c, trn__scratch *s, int pos, int index, uint8_t *out, det_box *boxes,
                    trn_meta *meta);

/* HSV jitter in place on npix RGB pixels: OpenCV's 8-bit RGB -> HSV (hue
 * 0..179), the hue gain modulo 180 and the saturation and value gains
 * clipped to 255 through 256-entry tables, and back to RGB. */
void trn__hsv(uint8_t *px, size_t npix, float gain_h, float gain_s, float gain_v);

/* dst[i] = src[i] / 255. */
void trn__to_float(float *dst, const uint8_t *src, size_t n);

#endif
