/*
 * Tests of the training data loader on small PNGs made here, each holding
 * one rectangle of its own colour: the augmented pixels of that colour must
 * lie in the boxes the loader reports, batches must not depend on the number
 * of workers, and bad samples and odd batch sizes must be handled.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/img.h"
#include "lupe/train.h"
#include "train/loader_internal.h"

#define NFIX 4
#define BG 60

/* Image size, rectangle [x1, x2) x [y1, y2) and colour of each fixture;
 * rectangles keep 10 pixels from the edges so two copies in a mosaic never
 * touch. They cover shrinking (256 -> 128, 200 -> 128), growing (96 -> 128)
 * and no resize at imgsz 128. */
static const struct {
    int w, h, x1, y1, x2, y2;
    uint8_t col[3];
} FIX[NFIX] = {
    {256, 160, 40, 30, 120, 100, {220, 30, 30}},
    {64, 96, 12, 20, 52, 76, {30, 220, 30}},
    {128, 128, 16, 70, 100, 112, {30, 30, 220}},
    {200, 90, 140, 10, 188, 70, {220, 220, 30}},
};

static char fix_path[NFIX][600];
static det_box fix_box[NFIX];

static void make_fixtures(void)
{
    static int done;
    if (done) return;
    for (int i = 0; i < NFIX; i++) {
        lupe_img *im = lupe_img_new(FIX[i].w, FIX[i].h, 3);
        memset(im->data, BG, (size_t)im->w * im->h * 3);
        uint32_t rgb = LUPE_RGB(FIX[i].col[0], FIX[i].col[1], FIX[i].col[2]);
        lupe_img_fill_rect(im, FIX[i].x1, FIX[i].y1, FIX[i].x2 - FIX[i].x1, FIX[i].y2 - FIX[i].y1, rgb);
        char name[32];
        snprintf(name, sizeof name, "fix%d.png", i);
        snprintf(fix_path[i], sizeof fix_path[i], "%s", tu_path(name));
        assert_int_equal(lupe_img_save(im, fix_path[i]), LUPE_OK);
        lupe_img_free(im);
        fix_box[i] = (det_box){0, i, (float)FIX[i].x1, (float)FIX[i].y1, (float)FIX[i].x2, (float)FIX[i].y2};
    }
    done = 1;
}

static void fixture_samples(trn_sample *s, int n)
{
    make_fixtures();
    for (int i = 0; i < n; i++) s[i] = (trn_sample){fix_path[i % NFIX], 1, &fix_box[i % NFIX]};
}

static trn_loader *new_loader(const trn_loader_cfg *c, const trn_sample *s, int n)
{
    trn_loader *l = NULL;
    if (trn_loader_new(c, s, n, &l)) fail_msg("trn_loader_new: %s", lupe_errmsg());
    return l;
}

static trn_loader_cfg small_cfg(int imgsz, int batch, int workers)
{
    trn_loader_cfg c;
    trn_loader_cfg_default(&c);
    c.imgsz = imgsz, c.batch = batch, c.workers = workers, c.seed = 7;
    return c;
}

/* ---- determinism --------------------------------------------------------- */

typedef struct run {
    float *img;          /* every image of the epoch, in order */
    det_box box[256];
    int nbox, nimg;
    int index[64];
} run;

static void run_epoch(trn_loader *l, int epoch, int imgsz, run *r)
{
    size_t vals = (size_t)imgsz * imgsz * 3;
    int cap = 4;
    float *buf = lupe_malloc(cap * vals * sizeof(float));
    trn_meta meta[4];
    trn_loader_epoch(l, epoch, 1);
    r->nbox = r->nimg = 0;
    int k;
    const det_box *b;
    int nb;
    while ((k = trn_loader_next(l, buf, &b, &nb, meta)) > 0) {
        assert_true(k <= cap);
        memcpy(r->img + r->nimg * vals, buf, k * vals * sizeof(float));
        for (int i = 0; i < nb; i++) {
            assert_true(r->nbox < 256);
            assert_in_range(b[i].img, 0, k - 1);
            r->box[r->nbox] = b[i];
            r->box[r->nbox++].img += r->nimg;
        }
        for (int j = 0; j < k; j++) r->index[r->nimg + j] = meta[j].index;
        r->nimg += k;
    }
    assert_int_equal(k, 0);
    lupe_free(buf);
}

static void test_same_seed_any_workers(void **state)
{
    (void)state;
    enum { N = 6, S = 64 };
    trn_sample s[N];
    fixture_samples(s, N);
    s[5].nbox = 0; /* one negative */
    size_t vals = (size_t)S * S * 3;
    run r[3][2];
    for (int w = 0; w < 3; w++) {
        trn_loader_cfg c = small_cfg(S, 4, w);
        c.aug.mosaic = 0.5f; /* both paths */
        trn_loader *l = new_loader(&c, s, N);
        assert_int_equal(trn_loader_batches(l), 2);
        for (int e = 0; e < 2; e++) {
            r[w][e].img = lupe_malloc(N * vals * sizeof(float));
            run_epoch(l, e, S, &r[w][e]);
            assert_int_equal(r[w][e].nimg, N);
            /* The epoch's order is a permutation of the samples. */
            int seen[N] = {0};
            for (int i = 0; i < N; i++) seen[r[w][e].index[i]]++;
            for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
        }
        trn_loader_free(l);
    }
    for (int w = 1; w < 3; w++)
        for (int e = 0; e < 2; e++) {
            assert_memory_equal(r[w][e].img, r[0][e].img, N * vals * sizeof(float));
            assert_int_equal(r[w][e].nbox, r[0][e].nbox);
            assert_memory_equal(r[w][e].box, r[0][e].box, r[0][e].nbox * sizeof(det_box));
            assert_memory_equal(r[w][e].index, r[0][e].index, N * sizeof(int));
        }
    /* Another epoch, another order and other pixels. */
    assert_true(memcmp(r[0][0].index, r[0][1].index, N * sizeof(int)) != 0);
    assert_true(memcmp(r[0][0].img, r[0][1].img, N * vals * sizeof(float)) != 0);
    /* Values are floats in 0..1 and the epoch holds boxes. */
    for (size_t i = 0; i < N * vals; i++) assert_true(r[0][0].img[i] >= 0 && r[0][0].img[i] <= 1);
    assert_true(r[0][0].nbox > 0);
    for (int w = 0; w < 3; w++)
        for (int e = 0; e < 2; e++) lupe_free(r[w][e].img);
}

static void test_restart_and_free_mid_epoch(void **state)
{
    (void)state;
    enum { N = 8, S = 64 };
    trn_sample s[N];
    fixture_samples(s, N);
    size_t vals = (size_t)S * S * 3;
    trn_loader_cfg c = small_cfg(S, 4, 2);
    run a = {.img = lupe_malloc(N * vals * sizeof(float))}, b = {.img = lupe_malloc(N * vals * sizeof(float))};
    trn_loader *l = new_loader(&c, s, N);
    run_epoch(l, 3, S, &a);
    /* Start epoch 3 again after one batch of epoch 5: the same bytes. */
    float *buf = lupe_malloc(4 * vals * sizeof(float));
    const det_box *bx;
    int nb;
    trn_loader_epoch(l, 5, 1);
    assert_int_equal(trn_loader_next(l, buf, &bx, &nb, NULL), 4);
    run_epoch(l, 3, S, &b);
    assert_memory_equal(a.img, b.img, N * vals * sizeof(float));
    assert_int_equal(a.nbox, b.nbox);
    assert_memory_equal(a.box, b.box, a.nbox * sizeof(det_box));
    /* Freed with workers busy on the next batches. */
    trn_loader_epoch(l, 6, 1);
    assert_int_equal(trn_loader_next(l, buf, &bx, &nb, NULL), 4);
    trn_loader_free(l);

    /* A different seed gives other images. */
    c.seed = 8;
    l = new_loader(&c, s, N);
    run_epoch(l, 3, S, &b);
    assert_true(memcmp(a.img, b.img, N * vals * sizeof(float)) != 0);
    trn_loader_free(l);
    lupe_free(buf);
    lupe_free(a.img);
    lupe_free(b.img);
}

/* ---- geometry ------------------------------------------------------------ */

static int is_col(const float *px, const uint8_t *col)
{
    for (int k = 0; k < 3; k++)
        if (fabsf(px[k] * 255.0f - col[k]) >= 40) return 0;
    return 1;
}

/* Whether pixel (x, y)'s centre lies in box b grown by t on each side. */
static int near_box(const det_box *b, int x, int y, float t)
{
    return x + 0.5f >= b->x1 - t && x + 0.5f <= b->x2 + t && y + 0.5f >= b->y1 - t && y + 0.5f <= b->y2 + t;
}

/* Checks one prepared image against its boxes, colour by colour: each box
 * holds pixels of its class's colour reaching within 2 pixels of each of
 * its sides, and every pixel of that colour lies in such a box, unless its
 * patch is one the loader may drop (2 pixels or less across, or under a
 * tenth of the largest area the rectangle can have). Returns the boxes
 * checked. */
static int check_geometry(const float *img, int S, const det_box *box, int nbox, float scale_gain)
{
    int checked = 0;
    uint8_t *stray = lupe_malloc((size_t)S * S);
    int *stack = lupe_malloc((size_t)S * S * sizeof(int));
    for (int k = 0; k < NFIX; k++) {
        memset(stray, 0, (size_t)S * S);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                if (!is_col(img + ((size_t)y * S + x) * 3, FIX[k].col)) continue;
                int inside = 0;
                for (int i = 0; i < nbox; i++) inside |= box[i].cls == k && near_box(&box[i], x, y, 1.5f);
                stray[y * S + x] = !inside;
            }
        for (int i = 0; i < nbox; i++) {
            const det_box *b = &box[i];
            if (b->cls != k) continue;
            assert_true(b->x1 >= 0 && b->y1 >= 0 && b->x2 <= S && b->y2 <= S);
            assert_true(b->x2 - b->x1 > 2 && b->y2 - b->y1 > 2);
            if (b->x2 - b->x1 < 6 || b->y2 - b->y1 < 6) continue;
            int x0 = S, y0 = S, x1 = -1, y1 = -1;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    if (near_box(b, x, y, 2) && is_col(img + ((size_t)y * S + x) * 3, FIX[k].col)) {
                        x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                        y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                    }
            if (x1 < 0)
                fail_msg("box %d (%.1f %.1f %.1f %.1f) of class %d holds none of its colour", i, b->x1, b->y1, b->x2,
                         b->y2, k);
            if (fabsf(x0 - b->x1) > 2 || fabsf(x1 + 1 - b->x2) > 2 || fabsf(y0 - b->y1) > 2 ||
                fabsf(y1 + 1 - b->y2) > 2)
                fail_msg("box (%.1f %.1f %.1f %.1f) of class %d, its colour spans (%d %d %d %d)", b->x1, b->y1, b->x2,
                         b->y2, k, x0, y0, x1 + 1, y1 + 1);
            checked++;
        }
        /* Stray patches: 4-connected components of colour outside boxes. */
        double r = (double)128 / (FIX[k].w > FIX[k].h ? FIX[k].w : FIX[k].h) * S / 128;
        double amax = (FIX[k].x2 - FIX[k].x1) * r * (FIX[k].y2 - FIX[k].y1) * r * (1 + scale_gain) * (1 + scale_gain);
        for (int p = 0; p < S * S; p++) {
            if (stray[p] != 1) continue;
            int n = 0, bx0 = S, by0 = S, bx1 = -1, by1 = -1;
            stack[n++] = p;
            stray[p] = 2;
            while (n) {
                int q = stack[--n], x = q % S, y = q / S;
                bx0 = x < bx0 ? x : bx0, bx1 = x > bx1 ? x : bx1;
                by0 = y < by0 ? y : by0, by1 = y > by1 ? y : by1;
                const int nx[4] = {x - 1, x + 1, x, x}, ny[4] = {y, y, y - 1, y + 1};
                for (int d = 0; d < 4; d++)
                    if (nx[d] >= 0 && nx[d] < S && ny[d] >= 0 && ny[d] < S && stray[ny[d] * S + nx[d]] == 1) {
                        stray[ny[d] * S + nx[d]] = 2;
                        stack[n++] = ny[d] * S + nx[d];
                    }
            }
            int w = bx1 - bx0 + 1, h = by1 - by0 + 1;
            int thin = w <= 4 || h <= 4, small = (double)(w - 2) * (h - 2) <= 0.1 * amax + 1;
            if (!thin && !small)
                fail_msg("class %d: %dx%d pixels of its colour at (%d, %d) in no box", k, w, h, bx0, by0);
        }
    }
    lupe_free(stray);
    lupe_free(stack);
    return checked;
}

/* Runs epochs of the fixtures with the given augmentation and checks each
 * image; returns the boxes checked. */
static int geometry_epochs(const trn_aug *aug, int mosaic, int epochs)
{
    enum { N = 8, S = 128, B = 4 };
    trn_sample s[N];
    fixture_samples(s, N);
    trn_loader_cfg c = small_cfg(S, B, 0);
    c.aug = *aug;
    trn_loader *l = new_loader(&c, s, N);
    size_t vals = (size_t)S * S * 3;
    float *buf = lupe_malloc(B * vals * sizeof(float));
    int checked = 0;
    for (int e = 0; e < epochs; e++) {
        trn_loader_epoch(l, e, mosaic);
        int k, nb;
        const det_box *b;
        while ((k = trn_loader_next(l, buf, &b, &nb, NULL)) > 0) {
            for (int j = 0; j < k; j++) {
                det_box mine[64];
                int m = 0;
                for (int i = 0; i < nb; i++)
                    if (b[i].img == j) mine[m++] = b[i];
                checked += check_geometry(buf + j * vals, S, mine, m, aug->scale);
            }
        }
    }
    lupe_free(buf);
    trn_loader_free(l);
    return checked;
}

static trn_aug geometry_aug(void)
{
    trn_aug a;
    trn_aug_default(&a);
    a.hsv_h = a.hsv_s = a.hsv_v = 0; /* colours must stay recognisable */
    return a;
}

static void test_geometry_mosaic(void **state)
{
    (void)state;
    trn_aug a = geometry_aug();
    a.scale = 0.5f, a.translate = 0.1f, a.fliplr = 0.5f;
    assert_true(geometry_epochs(&a, 1, 3) >= 24);
    a.fliplr = 1, a.flipud = 1;
    assert_true(geometry_epochs(&a, 1, 2) >= 16);
}

static void test_geometry_letterbox_affine(void **state)
{
    (void)state;
    trn_aug a = geometry_aug();
    a.scale = 0.5f, a.translate = 0.2f;
    assert_true(geometry_epochs(&a, 0, 3) >= 16);
    a.fliplr = 1, a.flipud = 1;
    assert_true(geometry_epochs(&a, 0, 2) >= 10);
    /* mosaic = 1.0 in the settings, but the epoch switches it off. */
    a.scale = 0, a.translate = 0, a.fliplr = 0, a.flipud = 0;
    assert_int_equal(geometry_epochs(&a, 0, 1), 8);
}

/* Same seed, flips forced on: exactly the mirror of the unflipped images,
 * because every random draw is made whatever the probabilities. */
static void test_flips_mirror(void **state)
{
    (void)state;
    enum { N = 4, S = 64 };
    trn_sample s[N];
    fixture_samples(s, N);
    size_t vals = (size_t)S * S * 3;
    run r[3];
    for (int f = 0; f < 3; f++) {
        trn_loader_cfg c = small_cfg(S, 4, 0);
        c.aug.fliplr = f == 1 ? 1.0f : 0.0f;
        c.aug.flipud = f == 2 ? 1.0f : 0.0f;
        trn_loader *l = new_loader(&c, s, N);
        r[f].img = lupe_malloc(N * vals * sizeof(float));
        run_epoch(l, 2, S, &r[f]);
        trn_loader_free(l);
    }
    for (int i = 0; i < N; i++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const float *p = r[0].img + i * vals + ((size_t)y * S + x) * 3;
                const float *lr = r[1].img + i * vals + ((size_t)y * S + (S - 1 - x)) * 3;
                const float *ud = r[2].img + i * vals + ((size_t)(S - 1 - y) * S + x) * 3;
                assert_memory_equal(p, lr, 3 * sizeof(float));
                assert_memory_equal(p, ud, 3 * sizeof(float));
            }
    assert_int_equal(r[1].nbox, r[0].nbox);
    assert_int_equal(r[2].nbox, r[0].nbox);
    for (int i = 0; i < r[0].nbox; i++) {
        const det_box *b = &r[0].box[i], *lr = &r[1].box[i], *ud = &r[2].box[i];
        assert_float_equal(lr->x1, S - b->x2, 1e-4);
        assert_float_equal(lr->x2, S - b->x1, 1e-4);
        assert_float_equal(lr->y1, b->y1, 1e-4);
        assert_float_equal(ud->y1, S - b->y2, 1e-4);
        assert_float_equal(ud->y2, S - b->y1, 1e-4);
        assert_float_equal(ud->x1, b->x1, 1e-4);
    }
    for (int f = 0; f < 3; f++) lupe_free(r[f].img);
}

/* Validation: sample order, letterbox only; meta maps the boxes back to
 * the file's pixels, and the rectangle's colour sits in its box. */
static void test_validation_letterbox(void **state)
{
    (void)state;
    enum { N = 4, S = 96 };
    trn_sample s[N];
    fixture_samples(s, N);
    trn_loader_cfg c = small_cfg(S, 3, 1);
    c.augment = 0;
    trn_loader *l = new_loader(&c, s, N);
    assert_int_equal(trn_loader_batches(l), 2);
    size_t vals = (size_t)S * S * 3;
    float *buf = lupe_malloc(3 * vals * sizeof(float));
    trn_meta meta[3];
    const det_box *b;
    int nb, seen = 0;
    for (int e = 0; e < 2; e++) {
        trn_loader_epoch(l, e, 1);
        seen = 0;
        int k;
        while ((k = trn_loader_next(l, buf, &b, &nb, meta)) > 0) {
            assert_int_equal(nb, k);
            for (int j = 0; j < k; j++) {
                int i = seen + j;
                assert_int_equal(meta[j].index, i);
                assert_int_equal(meta[j].w, FIX[i].w);
                assert_int_equal(meta[j].h, FIX[i].h);
                float want = (float)S / (FIX[i].w > FIX[i].h ? FIX[i].w : FIX[i].h);
                assert_float_equal(meta[j].scale, want, 1e-6);
                /* Centred: the short side's padding, zero on the long side. */
                float nw = FIX[i].w * want, nh = FIX[i].h * want;
                assert_true(fabsf(2 * meta[j].padx + nw - S) <= 1.5f && fabsf(2 * meta[j].pady + nh - S) <= 1.5f);
                assert_int_equal(b[j].img, j);
                assert_int_equal(b[j].cls, i);
                assert_float_equal((b[j].x1 - meta[j].padx) / meta[j].scale, FIX[i].x1, 1.0);
                assert_float_equal((b[j].y1 - meta[j].pady) / meta[j].scale, FIX[i].y1, 1.0);
                assert_float_equal((b[j].x2 - meta[j].padx) / meta[j].scale, FIX[i].x2, 1.0);
                assert_float_equal((b[j].y2 - meta[j].pady) / meta[j].scale, FIX[i].y2, 1.0);
                assert_int_equal(check_geometry(buf + j * vals, S, &b[j], 1, 0), 1);
                /* Padding is 114 gray. */
                const float *corner = meta[j].padx >= 1 ? buf + j * vals : buf + j * vals + (size_t)(S - 1) * S * 3;
                if (meta[j].padx >= 1 || meta[j].pady >= 1) assert_float_equal(corner[0], 114 / 255.0f, 1e-6);
            }
            seen += k;
        }
        assert_int_equal(seen, N);
    }
    trn_loader_free(l);
    lupe_free(buf);
}

/* ---- HSV ----------------------------------------------------------------- */

static void hsv1(uint8_t r, uint8_t g, uint8_t b, float gh, float gs, float gv, int wr, int wg, int wb)
{
    uint8_t px[3] = {r, g, b};
    trn__hsv(px, 1, gh, gs, gv);
    if (abs(px[0] - wr) > 1 || abs(px[1] - wg) > 1 || abs(px[2] - wb) > 1)
        fail_msg("hsv(%d %d %d; %g %g %g) = %d %d %d, want %d %d %d", r, g, b, gh, gs, gv, px[0], px[1], px[2], wr, wg,
                 wb);
}

static void test_hsv(void **state)
{
    (void)state;
    /* Gains of 1 keep primaries and grays. */
    hsv1(255, 0, 0, 1, 1, 1, 255, 0, 0);
    hsv1(0, 0, 255, 1, 1, 1, 0, 0, 255);
    hsv1(114, 114, 114, 1, 1, 1, 114, 114, 114);
    /* Value gain scales every channel, clipped at 255. */
    hsv1(200, 100, 50, 1, 1, 0.5f, 100, 50, 25);
    hsv1(100, 100, 100, 1, 1, 1.5f, 150, 150, 150);
    hsv1(200, 200, 200, 1, 1, 1.5f, 255, 255, 255);
    /* Saturation gain 0: the gray of the maximum. */
    hsv1(200, 100, 50, 1, 0, 1, 200, 200, 200);
    /* Saturation 0.5 of pure red: min rises to half of max. */
    hsv1(255, 0, 0, 1, 0.5f, 1, 255, 128, 128);
    /* Green is hue 60 (of 180); gain 1.5 -> 90, cyan; gain 0.5 -> 30, yellow. */
    hsv1(0, 255, 0, 1.5f, 1, 1, 0, 255, 255);
    hsv1(0, 255, 0, 0.5f, 1, 1, 255, 255, 0);
    /* Hue wraps modulo 180: blue (120) * 1.75 = 210 -> 30, yellow. */
    hsv1(0, 0, 255, 1.75f, 1, 1, 255, 255, 0);
    /* Round trip with unit gains moves no channel by more than the hue
     * quantisation: hue steps of 2 degrees are a 30th of a sector, up to
     * 255/30 levels of the middle channel, so half a step rounds to 5 at
     * most ((0, 5, 246) -> hue 119.8 -> 120 -> (0, 0, 246)). */
    int worst = 0;
    for (int r = 0; r < 256; r += 15)
        for (int g = 0; g < 256; g += 15)
            for (int b = 0; b < 256; b += 15) {
                uint8_t px[3] = {(uint8_t)r, (uint8_t)g, (uint8_t)b};
                trn__hsv(px, 1, 1, 1, 1);
                int d = abs(px[0] - r) > abs(px[1] - g) ? abs(px[0] - r) : abs(px[1] - g);
                d = abs(px[2] - b) > d ? abs(px[2] - b) : d;
                worst = d > worst ? d : worst;
                /* The maximum channel (the value) survives exactly. */
                int v = r > g ? r : g;
                v = b > v ? b : v;
                int v2 = px[0] > px[1] ? px[0] : px[1];
                assert_int_equal(px[2] > v2 ? px[2] : v2, v);
            }
    assert_true(worst <= 5);
}

static void test_rng(void **state)
{
    (void)state;
    trn__rng a, b;
    trn__rng_init(&a, 1, 2, 3);
    trn__rng_init(&b, 1, 2, 3);
    assert_true(trn__rng_next(&a) == trn__rng_next(&b));
    trn__rng_init(&b, 1, 2, 4);
    trn__rng_init(&a, 1, 2, 3);
    assert_true(trn__rng_next(&a) != trn__rng_next(&b));
    /* Uniform draws: mean and range. */
    double sum = 0;
    int hist[10] = {0};
    for (int i = 0; i < 10000; i++) {
        double u = trn__rng_uniform(&a, -1, 1);
        assert_true(u >= -1 && u < 1);
        sum += u;
        hist[trn__rng_below(&a, 10)]++;
    }
    assert_true(fabs(sum / 10000) < 0.03);
    for (int i = 0; i < 10; i++) assert_in_range(hist[i], 850, 1150);
}

/* ---- edge cases ---------------------------------------------------------- */

static void test_batch_sizes(void **state)
{
    (void)state;
    enum { S = 32 };
    trn_sample s[5];
    fixture_samples(s, 5);
    size_t vals = (size_t)S * S * 3;
    float *buf = lupe_malloc(10 * vals * sizeof(float));
    const det_box *b;
    int nb;
    for (int w = 0; w < 2; w++) {
        /* A batch bigger than the dataset: one short batch. */
        trn_loader_cfg c = small_cfg(S, 10, w);
        trn_loader *l = new_loader(&c, s, 3);
        assert_int_equal(trn_loader_batches(l), 1);
        assert_int_equal(trn_loader_next(l, buf, &b, &nb, NULL), 3); /* no epoch call: epoch 0 */
        assert_int_equal(trn_loader_next(l, buf, &b, &nb, NULL), 0);
        assert_int_equal(nb, 0);
        assert_int_equal(trn_loader_next(l, buf, &b, &nb, NULL), 0);
        trn_loader_free(l);
        /* 5 images by 2: 2, 2, then the short 1. */
        c.batch = 2;
        l = new_loader(&c, s, 5);
        assert_int_equal(trn_loader_batches(l), 3);
        for (int e = 0; e < 2; e++) {
            trn_loader_epoch(l, e, e == 0);
            assert_int_equal(trn_loader_next(l, buf, &b, &nb, NULL), 2);
            assert_int_equal(trn_loader_next(l, buf, &b, &nb, NULL), 2);
            assert_int_equal(trn_loader_next(l, buf, &b, &nb, NULL), 1);
            for (int i = 0; i < nb; i++) assert_int_equal(b[i].img, 0);
            assert_int_equal(trn_loader_next(l, buf, &b, &nb, NULL), 0);
        }
        trn_loader_free(l);
    }
    lupe_free(buf);
}

static void test_boxes_outside_and_none(void **state)
{
    (void)state;
    enum { S = 64 };
    make_fixtures();
    /* Image a (256x160, scale 1/4 at 64): a box half outside on the right,
     * one wholly outside, one inside; image b with none. */
    const det_box bx[3] = {{0, 0, 200, 20, 300, 60}, {0, 0, 300, 10, 400, 50}, {0, 0, 40, 30, 120, 100}};
    trn_sample s[2] = {{fix_path[0], 3, bx}, {fix_path[1], 0, NULL}};
    trn_loader_cfg c = small_cfg(S, 2, 0);
    c.augment = 0;
    trn_loader *l = new_loader(&c, s, 2);
    float *buf = lupe_malloc(2 * (size_t)S * S * 3 * sizeof(float));
    const det_box *b;
    int nb;
    trn_meta meta[2];
    assert_int_equal(trn_loader_next(l, buf, &b, &nb, meta), 2);
    assert_int_equal(nb, 2);
    assert_int_equal(b[0].img, 0);
    assert_float_equal(b[0].x1, 200 * 0.25f + meta[0].padx, 1e-4);
    assert_float_equal(b[0].x2, 256 * 0.25f + meta[0].padx, 1e-4); /* clipped at the image's edge */
    assert_float_equal(b[1].x1, 40 * 0.25f + meta[0].padx, 1e-4);
    assert_float_equal(b[1].y2, 100 * 0.25f + meta[0].pady, 1e-4);
    trn_loader_free(l);

    /* Training: the negative image alone gives no boxes, mosaic or not. */
    c = small_cfg(S, 2, 1);
    l = new_loader(&c, &s[1], 1);
    for (int e = 0; e < 3; e++) {
        trn_loader_epoch(l, e, e != 1);
        assert_int_equal(trn_loader_next(l, buf, &b, &nb, meta), 1);
        assert_int_equal(nb, 0);
        assert_int_equal(meta[0].index, 0);
    }
    trn_loader_free(l);
    lupe_free(buf);
}

static void test_bad_files(void **state)
{
    (void)state;
    make_fixtures();
    const char *bad = tu_path("corrupt.png");
    tu_write(bad, "not an image at all", 19);
    const char *missing = tu_path("missing.jpg");
    for (int w = 0; w < 3; w += 2) {
        trn_sample s[4];
        fixture_samples(s, 4);
        trn_loader_cfg c = small_cfg(32, 2, w);
        trn_loader *l = (trn_loader *)&c;
        s[2].path = bad;
        assert_int_not_equal(trn_loader_new(&c, s, 4, &l), LUPE_OK);
        assert_null(l);
        assert_non_null(strstr(lupe_errmsg(), bad));
        assert_non_null(strstr(lupe_errmsg(), "sample 2"));
        /* Two bad samples: the first by index is reported. */
        s[1].path = missing;
        assert_int_not_equal(trn_loader_new(&c, s, 4, &l), LUPE_OK);
        assert_non_null(strstr(lupe_errmsg(), missing));
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    trn_sample s[2];
    fixture_samples(s, 2);
    trn_loader *l = NULL;
    trn_loader_cfg c = small_cfg(32, 2, 0);
    assert_int_equal(trn_loader_new(&c, s, 0, &l), LUPE_EARG);
    c.imgsz = 0;
    assert_int_equal(trn_loader_new(&c, s, 2, &l), LUPE_EARG);
    c = small_cfg(32, 0, 0);
    assert_int_equal(trn_loader_new(&c, s, 2, &l), LUPE_EARG);
    c = small_cfg(32, 2, 0);
    c.aug.scale = 1.0f;
    assert_int_equal(trn_loader_new(&c, s, 2, &l), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "scale"));
    c.aug.scale = 0.5f;
    c.aug.fliplr = NAN;
    assert_int_equal(trn_loader_new(&c, s, 2, &l), LUPE_EARG);
    c.aug.fliplr = 0.5f;
    det_box inverted = {0, 0, 10, 10, 5, 20};
    s[1].boxes = &inverted;
    assert_int_equal(trn_loader_new(&c, s, 2, &l), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "sample 1"));
    assert_null(l);
    trn_loader_free(NULL);
}

typedef struct progress_log {
    int calls, last, total, ordered;
} progress_log;

static void on_progress(void *ctx, int done, int total)
{
    progress_log *p = ctx;
    p->ordered &= done == p->last + 1;
    p->calls++, p->last = done, p->total = total;
}

/* The cache fill reports each decoded image once, in order, from any thread. */
static void test_progress(void **state)
{
    (void)state;
    trn_sample s[7];
    fixture_samples(s, 7);
    for (int w = 0; w < 3; w++) {
        progress_log p = {.ordered = 1};
        trn_loader_cfg c = small_cfg(32, 2, w);
        c.progress = on_progress, c.progress_ctx = &p;
        trn_loader *l = new_loader(&c, s, 7);
        assert_int_equal(p.calls, 7);
        assert_int_equal(p.last, 7);
        assert_int_equal(p.total, 7);
        assert_true(p.ordered);
        trn_loader_free(l);
    }
}

/* Every allocation of trn_loader_new failing in turn: an error, never a
 * crash or a leak (ASan checks the leaks). */
static void test_out_of_memory(void **state)
{
    (void)state;
    trn_sample s[3];
    fixture_samples(s, 3);
    for (int w = 0; w < 2; w++) {
        trn_loader_cfg c = small_cfg(32, 2, w);
        int failures = 0, ok = 0;
        for (uint64_t nth = 1; nth < 1000 && !ok; nth++) {
            trn_loader *l = NULL;
            lupe_alloc_fail_nth(nth);
            lupe_status st = trn_loader_new(&c, s, 3, &l);
            lupe_alloc_fail_nth(0);
            if (st == LUPE_OK) {
                float buf[2 * 32 * 32 * 3];
                const det_box *b;
                int nb;
                assert_int_equal(trn_loader_next(l, buf, &b, &nb, NULL), 2);
                trn_loader_free(l);
                ok = 1;
                continue;
            }
            assert_null(l);
            assert_true(lupe_errmsg()[0] != 0);
            failures++;
        }
        assert_true(ok);
        assert_true(failures > 10);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_any_workers),
        cmocka_unit_test(test_restart_and_free_mid_epoch),
        cmocka_unit_test(test_geometry_mosaic),
        cmocka_unit_test(test_geometry_letterbox_affine),
        cmocka_unit_test(test_flips_mirror),
        cmocka_unit_test(test_validation_letterbox),
        cmocka_unit_test(test_hsv),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_batch_sizes),
        cmocka_unit_test(test_boxes_outside_and_none),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
