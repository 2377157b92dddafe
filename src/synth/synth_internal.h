/*
 * What the synthetic-tag files share: the random streams and value noise
 * (noise.c), the scene that tag.c draws, the canvas that defects.c draws
 * into, and the one entry point that can also give the defect-free image.
 */
#ifndef LUPE_SYNTH_INTERNAL_H
#define LUPE_SYNTH_INTERNAL_H

#include <stdint.h>

#include "lupe/synth.h"

/* Same bytes everywhere also means no fused multiply-adds: a*b+c rounded
 * once gives other bits than rounded twice. GCC in ISO C mode (the
 * Makefile's -std=c11) does not fuse, in GNU mode it does; clang fuses
 * within an expression. Both are told not to in every file that includes
 * this (checked: GCC -O0..-O3 and clang, with and without FMA, agree). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- random streams and noise (noise.c) ---------------------------------
 * xoshiro256** seeded through splitmix64 from (seed, index, stream), so
 * every image and every purpose within it has its own stream and the
 * images of a seed can be made in any order. Nothing here calls libm's
 * transcendental functions: their last bits differ between C libraries,
 * and the generator promises the same bytes everywhere. For the same
 * reason a stream is drawn from at most once per expression (or in
 * operands C sequences: ?:, &&, the comma operator, separate
 * declarators): the order of calls within `f(a(r), b(r))` or
 * `a(r) * b(r)` is the compiler's choice. */
typedef struct synth_rng {
    uint64_t s[4];
} synth_rng;

enum { SYNTH_STREAM_SCENE = 1, SYNTH_STREAM_MARKS = 2, SYNTH_STREAM_DEFECTS = 3, SYNTH_STREAM_PIXELS = 4 };

void synth__rng_seed(synth_rng *r, uint64_t seed, uint64_t index, uint64_t stream);
uint64_t synth__rng_next(synth_rng *r);
double synth__uniform(synth_rng *r);                       /* [0, 1) */
double synth__range(synth_rng *r, double lo, double hi);   /* [lo, hi) */
int synth__int(synth_rng *r, int lo, int hi);              /* [lo, hi], inclusive */
int synth__chance(synth_rng *r, double p);                 /* 1 with probability p */
/* Approximately standard normal (sum of four uniforms, rescaled). */
double synth__gauss(synth_rng *r);
/* A 32-bit value from the stream, for noise seeds. */
uint32_t synth__seed32(synth_rng *r);

/* Deterministic elementary functions (plain arithmetic, no libm). */
double synth__exp(double x);
double synth__log(double x);          /* x > 0 */
double synth__pow(double x, double p); /* x >= 0 */
double synth__sin(double x);
double synth__cos(double x);
#define SYNTH_PI 3.14159265358979323846

/* Value noise in [-1, 1]: smooth interpolation of hashed lattice values. */
float synth__vnoise(float x, float y, uint32_t seed);
/* One-dimensional value noise in [-1, 1]. */
float synth__vnoise1(float x, uint32_t seed);
/* A hash of one integer into [0, 2^32). */
uint32_t synth__hash32(uint32_t x);

static inline float synth__clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static inline float synth__smooth(float t) /* smoothstep on [0, 1] */
{
    t = synth__clampf(t, 0.f, 1.f);
    return t * t * (3.f - 2.f * t);
}

/* ---- canvas (defects.c) ---------------------------------------------------
 * The image while it is made, as floats in 0..255 (gray; colour is a final
 * tint). Defects add into `acc`; `mag` and `own` remember which defect
 * changed a pixel most, so every changed pixel has one owner and each
 * defect's box is the box of the pixels it owns that really changed. */
#define SYNTH_MAX_DEFECTS 64
#define SYNTH_NO_OWNER 0xff

typedef struct synth_canvas {
    int w, h;
    float *g;      /* the defect-free image */
    float *mask;   /* 0..1: how much of the pixel is tag (defects only touch the tag) */
    float *acc;    /* sum of the defects' changes */
    float *mag;    /* largest |change| of one defect so far */
    uint8_t *own;  /* that defect's number, or SYNTH_NO_OWNER */
    float *tmp;    /* one shape's strength while it is drawn; zero elsewhere */
    float *line;   /* max(w, h) floats of scratch space for the blur */
    int footprint[SYNTH_MAX_DEFECTS]; /* pixels each defect changed when merged */
    int owned[SYNTH_MAX_DEFECTS];     /* of those, how many it still owns */
} synth_canvas;

/* A box of pixels [x0, x1) x [y0, y1). */
typedef struct synth_rect {
    int x0, y0, x1, y1;
} synth_rect;

/* A polyline with a radius and an amplitude (0..1) at every point, in
 * image pixels; drawn as the max of round-capped tapered segments. */
typedef struct synth_stroke {
    const float *xy;     /* 2n values */
    const float *radius; /* n values */
    const float *amp;    /* n values */
    int n;
} synth_stroke;

/* Draws a stroke's strength into tmp (max-combined); returns the rect it
 * touched, empty (x0 >= x1) when it lies outside the image. */
synth_rect synth__stroke_draw(synth_canvas *cv, const synth_stroke *s);
/* Turns the strength in tmp (inside r) into a change of defect k,
 * delta = s * (a + b * g) * mask, adds it to acc and clears tmp. */
void synth__merge(synth_canvas *cv, int k, synth_rect r, float a, float b);
/* The same change applied to the base image g instead (marks that are not
 * defects: faint lines, specks); clears tmp. */
void synth__apply_base(synth_canvas *cv, synth_rect r, float a, float b);
/* How defect k would fare if merged now: 1 when it is plainly visible
 * (a dozen pixels changed by 12 levels or more), would own at least half
 * of its own footprint and would leave every earlier defect at least half
 * of its footprint, so that no defect ends up hidden under another. */
int synth__merge_ok(const synth_canvas *cv, int k, synth_rect r, float a, float b);
void synth__tmp_clear(synth_canvas *cv, synth_rect r);

/* ---- scene (tag.c) --------------------------------------------------------
 * The layout is drawn in "scene" coordinates, a nominal frame the size of
 * the image with the tag's hole at the top left; a homography (rotation,
 * scale, shift, slight perspective, optionally a half turn) maps the scene
 * to the image. */
typedef struct synth_scene synth_scene;

lupe_status synth__scene_new(const synth_cfg *c, uint64_t seed, uint64_t index, synth_scene **out);
void synth__scene_free(synth_scene *s);
/* Draws the defect-free tag into cv->g and cv->mask (then faint unlabeled
 * marks, then the blur). */
void synth__scene_render(const synth_scene *s, synth_canvas *cv, synth_rng *r);
/* Scene point -> image point. */
void synth__scene_map(const synth_scene *s, double X, double Y, float *x, float *y);
/* The tag's interior in scene coordinates, less a margin, and the hole. */
void synth__scene_tag(const synth_scene *s, float *x0, float *y0, float *x1, float *y1, float *hx, float *hy,
                      float *hr);
float synth__scene_scale(const synth_scene *s); /* feature scale, 1 at 450x300 */
float synth__scene_tag_level(const synth_scene *s);
float synth__scene_noise_sd(const synth_scene *s);
void synth__scene_tint(const synth_scene *s, float *r, float *b);

/* ---- defects (defects.c) ------------------------------------------------- */
/* Plants defects of the classes in c->classes, their number drawn from
 * c's min/max/empty_fraction, into cv->acc; classes[k] gets defect k's
 * class. Returns the number planted. */
int synth__plant(const synth_cfg *c, const synth_scene *s, synth_canvas *cv, synth_rng *r, int *classes);
/* Faint marks that are not defects and carry no box (the real photos have
 * them: thin dark lines, specks), drawn into the base image. */
void synth__faint_marks(const synth_scene *s, synth_canvas *cv, synth_rng *r);

/* ---- whole images (synth.c) ---------------------------------------------- */
/* synth_tag, and with clean != NULL also the same image without its
 * defects (same pixels everywhere else: the oracle of the box tests). */
lupe_status synth__render(const synth_cfg *c, uint64_t seed, uint64_t index, lupe_img **out, lupe_img **clean,
                          det_box *boxes, int max, int *nbox);

#endif
