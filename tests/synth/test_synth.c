/*
 * Synthetic tags: the same (seed, index) gives the same pixels and boxes
 * (in every build: a pinned checksum), boxes are exactly the boxes of the
 * pixels the defects changed (against the same image rendered without
 * them), defect counts follow the settings, and bad settings are refused.
 */
#include <math.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/synth.h"
#include "synth/synth_internal.h"

#define MAXB 64

static synth_cfg all_classes(void)
{
    synth_cfg c;
    synth_cfg_default(&c);
    c.classes = 1 << SYNTH_SCRATCH | 1 << SYNTH_DENT | 1 << SYNTH_STAIN;
    return c;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Checksum of the pixels and the boxes (as integers: they are whole pixels). */
static uint64_t image_hash(const lupe_img *im, const det_box *b, int nb)
{
    uint64_t h = fnv1a(0xcbf29ce484222325ull, im->data, (size_t)im->w * im->h * im->c);
    for (int k = 0; k < nb; k++) {
        int v[5] = {b[k].cls, (int)b[k].x1, (int)b[k].y1, (int)b[k].x2, (int)b[k].y2};
        h = fnv1a(h, v, sizeof v);
    }
    return h;
}

static void test_determinism(void **state)
{
    (void)state;
    synth_cfg c = all_classes();
    lupe_img *a = NULL, *b = NULL, *d = NULL, *e = NULL;
    det_box ba[MAXB], bb[MAXB], bd[MAXB], be[MAXB];
    int na = 0, nb = 0, nd = 0, ne = 0;
    for (uint64_t index = 0; index < 3; index++) {
        assert_int_equal(synth_tag(&c, 7, index, &a, ba, MAXB, &na), LUPE_OK);
        assert_int_equal(synth_tag(&c, 7, index, &b, bb, MAXB, &nb), LUPE_OK);
        assert_int_equal(a->w, 450);
        assert_int_equal(a->h, 300);
        assert_int_equal(a->c, 3);
        assert_memory_equal(a->data, b->data, (size_t)a->w * a->h * 3);
        assert_int_equal(na, nb);
        assert_memory_equal(ba, bb, (size_t)na * sizeof *ba);
        /* The next index and another seed are other pictures. */
        assert_int_equal(synth_tag(&c, 7, index + 1, &d, bd, MAXB, &nd), LUPE_OK);
        assert_int_equal(synth_tag(&c, 8, index, &e, be, MAXB, &ne), LUPE_OK);
        size_t diff_d = 0, diff_e = 0;
        for (size_t i = 0; i < (size_t)a->w * a->h * 3; i++) {
            diff_d += a->data[i] != d->data[i];
            diff_e += a->data[i] != e->data[i];
        }
        assert_true(diff_d > (size_t)a->w * a->h); /* most of the picture, not a few pixels */
        assert_true(diff_e > (size_t)a->w * a->h);
        lupe_img_free(a), lupe_img_free(b), lupe_img_free(d), lupe_img_free(e);
        a = b = d = e = NULL;
    }
    /* Made out of order, an image is still the same. */
    assert_int_equal(synth_tag(&c, 7, 2, &a, ba, MAXB, &na), LUPE_OK);
    assert_int_equal(synth_tag(&c, 7, 0, &b, bb, MAXB, &nb), LUPE_OK);
    assert_int_equal(synth_tag(&c, 7, 2, &d, bd, MAXB, &nd), LUPE_OK);
    assert_memory_equal(a->data, d->data, (size_t)a->w * a->h * 3);
    lupe_img_free(a), lupe_img_free(b), lupe_img_free(d);
}

/* The same bytes in every build (-O0, ASan at -O1, release at -O2 with
 * AVX2 and FMA; also checked by hand with clang and GCC's GNU mode): a
 * change to the generator changes these on purpose, a change of compiler
 * or flags must not. */
static void test_pinned_checksum(void **state)
{
    (void)state;
    static const uint64_t want[3] = {0x3690d2fbccd44651ull, 0xbcb618ca5fb68faeull, 0xac2657e17762ed91ull};
    synth_cfg c = all_classes();
    c.engrave = 0.5f;
    int bad = 0;
    for (int index = 0; index < 3; index++) {
        lupe_img *im = NULL;
        det_box b[MAXB];
        int nb = 0;
        assert_int_equal(synth_tag(&c, 2024, (uint64_t)index, &im, b, MAXB, &nb), LUPE_OK);
        uint64_t h = image_hash(im, b, nb);
        if (h != want[index]) {
            print_error("image %d: checksum 0x%016llx, pinned 0x%016llx\n", index, (unsigned long long)h,
                        (unsigned long long)want[index]);
            bad++;
        }
        lupe_img_free(im);
    }
    assert_int_equal(bad, 0);
}

/* Renders with and without defects and checks the boxes against the
 * difference: every changed pixel lies in a box, and each box has a
 * changed pixel on each of its four sides (so it is tight). */
static void check_boxes(const synth_cfg *c, uint64_t seed, uint64_t index, int *boxes_seen)
{
    lupe_img *im = NULL, *clean = NULL;
    det_box b[MAXB];
    int nb = 0;
    assert_int_equal(synth__render(c, seed, index, &im, &clean, b, MAXB, &nb), LUPE_OK);
    int w = im->w, h = im->h;
    for (int k = 0; k < nb; k++) {
        assert_true(b[k].cls >= 0 && b[k].cls < SYNTH_NCLASSES && (c->classes & (1 << b[k].cls)));
        assert_true(b[k].x1 >= 0 && b[k].y1 >= 0 && b[k].x2 <= (float)w && b[k].y2 <= (float)h);
        assert_true(b[k].x2 > b[k].x1 && b[k].y2 > b[k].y1);
        assert_true(b[k].x1 == floorf(b[k].x1) && b[k].y2 == floorf(b[k].y2));
    }
    int side[MAXB][4];
    memset(side, 0, sizeof side);
    size_t changed = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const uint8_t *p = im->data + 3 * ((size_t)y * w + x), *q = clean->data + 3 * ((size_t)y * w + x);
            if (!memcmp(p, q, 3)) continue;
            changed++;
            int in = 0;
            for (int k = 0; k < nb; k++) {
                int x1 = (int)b[k].x1, y1 = (int)b[k].y1, x2 = (int)b[k].x2, y2 = (int)b[k].y2;
                if (x < x1 || x >= x2 || y < y1 || y >= y2) continue;
                in = 1;
                side[k][0] |= x == x1, side[k][1] |= x == x2 - 1, side[k][2] |= y == y1, side[k][3] |= y == y2 - 1;
            }
            if (!in) fail_msg("seed %llu image %llu: pixel %d,%d changed outside every box", (unsigned long long)seed,
                              (unsigned long long)index, x, y);
        }
    }
    for (int k = 0; k < nb; k++)
        if (!(side[k][0] && side[k][1] && side[k][2] && side[k][3]))
            fail_msg("seed %llu image %llu: box %d (%g,%g)-(%g,%g) is not tight: sides touched %d%d%d%d",
                     (unsigned long long)seed, (unsigned long long)index, k, b[k].x1, b[k].y1, b[k].x2, b[k].y2,
                     side[k][0], side[k][1], side[k][2], side[k][3]);
    assert_int_equal(changed > 0, nb > 0);
    /* Outside the defects the two renders are the same picture. */
    assert_true(changed < (size_t)w * h / 4);
    *boxes_seen += nb;
    lupe_img_free(im);
    lupe_img_free(clean);
}

static void test_boxes_are_the_changed_pixels(void **state)
{
    (void)state;
    synth_cfg c = all_classes();
    c.min_defects = 2, c.max_defects = 8, c.empty_fraction = 0;
    int seen = 0;
    for (uint64_t i = 0; i < 8; i++) check_boxes(&c, 11, i, &seen);
    assert_true(seen >= 16);
    /* Another size and aspect, scratches only, some engraved. */
    synth_cfg_default(&c);
    c.w = 320, c.h = 400, c.engrave = 1;
    for (uint64_t i = 0; i < 4; i++) check_boxes(&c, 12, i, &seen);
    /* An image without defects is the clean image itself. */
    c.empty_fraction = 1;
    int none = 0;
    check_boxes(&c, 13, 0, &none);
    assert_int_equal(none, 0);
}

static void test_counts(void **state)
{
    (void)state;
    synth_cfg c;
    synth_cfg_default(&c);
    c.w = 128, c.h = 96;
    c.min_defects = 2, c.max_defects = 4, c.empty_fraction = 0.25f;
    int empty = 0, hist[MAXB] = {0};
    lupe_img *im = NULL;
    det_box b[MAXB];
    int nb = 0;
    for (uint64_t i = 0; i < 120; i++) {
        assert_int_equal(synth_tag(&c, 3, i, &im, b, MAXB, &nb), LUPE_OK);
        lupe_img_free(im);
        if (nb == 0) {
            empty++;
            continue;
        }
        if (nb < 2 || nb > 4) fail_msg("image %llu: %d defects, settings say 2 to 4", (unsigned long long)i, nb);
        hist[nb]++;
    }
    /* Binomial(120, 0.25): mean 30, standard deviation 4.7. */
    assert_true(empty >= 16 && empty <= 44);
    assert_true(hist[2] > hist[4] && hist[4] > 0 && hist[3] > 0);

    /* Exact counts, one class at a time. */
    c.min_defects = c.max_defects = 3, c.empty_fraction = 0;
    for (int cls = 0; cls < SYNTH_NCLASSES; cls++) {
        c.classes = 1 << cls;
        for (uint64_t i = 0; i < 25; i++) {
            assert_int_equal(synth_tag(&c, 4, i, &im, b, MAXB, &nb), LUPE_OK);
            lupe_img_free(im);
            assert_int_equal(nb, 3);
            for (int k = 0; k < nb; k++) assert_int_equal(b[k].cls, cls);
        }
    }
    /* All empty; and a mix of classes gives every class. */
    c.classes = 1, c.empty_fraction = 1;
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(synth_tag(&c, 5, i, &im, b, MAXB, &nb), LUPE_OK);
        lupe_img_free(im);
        assert_int_equal(nb, 0);
    }
    c.classes = 7, c.empty_fraction = 0, c.min_defects = 1, c.max_defects = 6;
    int per_class[SYNTH_NCLASSES] = {0};
    for (uint64_t i = 0; i < 30; i++) {
        assert_int_equal(synth_tag(&c, 6, i, &im, b, MAXB, &nb), LUPE_OK);
        lupe_img_free(im);
        assert_true(nb >= 1 && nb <= 6);
        for (int k = 0; k < nb; k++) per_class[b[k].cls]++;
    }
    assert_true(per_class[0] > per_class[1] && per_class[1] > 0 && per_class[2] > 0);
}

static void test_bad_settings(void **state)
{
    (void)state;
    synth_cfg c;
    synth_cfg_default(&c);
    assert_int_equal(synth_cfg_check(&c), LUPE_OK);
    lupe_img *im = NULL;
    det_box b[MAXB];
    int nb = -1;
    assert_int_equal(synth_tag(&c, 1, 0, &im, b, 4, &nb), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "room for 4 boxes"));
    assert_null(im);
    assert_int_equal(nb, 0);
    assert_int_equal(synth_tag(&c, 1, 0, NULL, b, MAXB, &nb), LUPE_EARG);
    assert_int_equal(synth_tag(&c, 1, 0, &im, NULL, MAXB, &nb), LUPE_EARG);
    synth_cfg bad = c;
    bad.w = 10;
    assert_int_equal(synth_tag(&bad, 1, 0, &im, b, MAXB, &nb), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "size 10x300"));
    bad = c, bad.classes = 0;
    assert_int_equal(synth_cfg_check(&bad), LUPE_EARG);
    bad = c, bad.classes = 8;
    assert_int_equal(synth_cfg_check(&bad), LUPE_EARG);
    bad = c, bad.min_defects = 3, bad.max_defects = 2;
    assert_int_equal(synth_cfg_check(&bad), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "3..2"));
    bad = c, bad.empty_fraction = NAN;
    assert_int_equal(synth_cfg_check(&bad), LUPE_EARG);
    bad = c, bad.engrave = 1.5f;
    assert_int_equal(synth_cfg_check(&bad), LUPE_EARG);
    assert_null(im);

    assert_string_equal(synth_class_name(SYNTH_SCRATCH), "scratch");
    assert_string_equal(synth_class_name(SYNTH_STAIN), "stain");
    assert_null(synth_class_name(3));
    assert_null(synth_class_name(-1));
    assert_int_equal(synth_class_from_name("dent"), SYNTH_DENT);
    assert_int_equal(synth_class_from_name("Dent"), -1);
    assert_int_equal(synth_class_from_name(NULL), -1);
}

/* Every allocation can fail; the error is reported and nothing leaks. */
static void test_out_of_memory(void **state)
{
    (void)state;
    synth_cfg c = all_classes();
    c.engrave = 1;
    int failures = 0;
    for (uint64_t n = 1; n < 12; n++) {
        lupe_img *im = NULL;
        det_box b[MAXB];
        int nb = 0;
        lupe_alloc_fail_nth(n);
        lupe_status st = synth_tag(&c, 9, 0, &im, b, MAXB, &nb);
        lupe_alloc_fail_nth(0);
        if (st == LUPE_OK) {
            lupe_img_free(im);
            break;
        }
        assert_int_equal(st, LUPE_ENOMEM);
        assert_null(im);
        assert_non_null(strstr(lupe_errmsg(), "synthetic tag 0 of seed 9"));
        failures++;
    }
    assert_true(failures >= 3); /* the canvas, the scene, the engraving, the image */
}

/* The streams and the libm-free functions. */
static void test_rng_and_math(void **state)
{
    (void)state;
    synth_rng a, b, d, e;
    synth__rng_seed(&e, 1, 2, 4);
    synth__rng_seed(&a, 1, 2, 3);
    synth__rng_seed(&b, 1, 2, 3);
    synth__rng_seed(&d, 2, 1, 3);
    int same = 0;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t x = synth__rng_next(&a);
        assert_true(x == synth__rng_next(&b));
        same += x == synth__rng_next(&d);
        double g = synth__gauss(&e);
        sum += g, sum2 += g * g;
        int k = synth__int(&e, -3, 3);
        assert_true(k >= -3 && k <= 3);
        double u = synth__range(&e, 2, 5);
        assert_true(u >= 2 && u < 5);
    }
    assert_int_equal(same, 0);
    assert_true(fabs(sum / 20000) < 0.03 && fabs(sum2 / 20000 - 1) < 0.05);
    for (double x = -40; x <= 40; x += 0.37) {
        assert_true(fabs(synth__sin(x) - sin(x)) < 1e-12);
        assert_true(fabs(synth__cos(x) - cos(x)) < 1e-12);
        assert_true(fabs(synth__exp(x) / exp(x) - 1) < 1e-13);
    }
    assert_true(synth__exp(-800) == 0);
    for (double x = 1e-6; x < 1e6; x *= 1.7) {
        assert_true(fabs(synth__log(x) - log(x)) < 1e-13 * (1 + fabs(log(x))));
        assert_true(fabs(synth__pow(x, 0.8) / pow(x, 0.8) - 1) < 1e-12);
    }
    for (float x = -3; x < 3; x += 0.013f) {
        float v = synth__vnoise(x * 3.1f, x * -1.7f + 0.5f, 77), v1 = synth__vnoise1(x * 4.3f, 78);
        assert_true(v >= -1 && v <= 1 && v1 >= -1 && v1 <= 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),   cmocka_unit_test(test_pinned_checksum),
        cmocka_unit_test(test_boxes_are_the_changed_pixels),
        cmocka_unit_test(test_counts),        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_out_of_memory), cmocka_unit_test(test_rng_and_math),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
