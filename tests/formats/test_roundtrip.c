/*
 * Round trips through every writer and reader (boxes, classes, flags, splits),
 * the real labels.csv through each format, and all-or-nothing exports:
 * OUT.partial, EEXIST, refused documents leaving nothing behind.
 */
#include <math.h>
#include <stdbool.h>
#include <unistd.h>

#include "formats/fixtures.h"

static const char *const class_names[2] = {"scratch", "dent & 'deep' <x>, \"y\""};

typedef struct spec {
    const char *name;
    int w, h;
    const char *split;
    int labeled;
    int64_t time;
    size_t nb;
    lupe_fmt_box boxes[3];
} spec;

/* d.jpg is unlabeled: no format can say "not labeled yet", so writers leave
 * it out rather than turn it into a negative. */
static const spec specs[] = {
    {"a.jpg", 64, 48, "train", 1, 1600000000, 0, {{0}}},
    {"b.jpg", 100, 80, "val", 1, 1600000001, 1, {{1, 10.5, 20.25, 30.125, 40.0625}}},
    {"c.png", 120, 90, "test", 1, 0, 3, {{0, 0, 0, 120, 90}, {1, 0.1, 0.2, 0.3, 0.7}, {0, 59.75, 44.5, 1, 2}}},
    {"d.jpg", 40, 40, "train", 0, 0, 1, {{0, 1, 1, 1, 1}}},
    {"e.jpg", 50, 50, NULL, 1, 7, 1, {{0, 1, 2, 3, 4}}},
};
#define NSPECS (sizeof specs / sizeof *specs)

static lupe_fmt_doc *build_doc(void)
{
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    assert_non_null(doc);
    for (int c = 0; c < 2; c++) assert_int_equal(lupe_fmt_doc_add_class(doc, class_names[c], NULL), LUPE_OK);
    for (size_t i = 0; i < NSPECS; i++) {
        const spec *s = &specs[i];
        const char *src = tu_path(s->name);
        if (!lupe_path_exists(src)) fx_write_str(src, s->name); /* writers never decode images */
        lupe_fmt_item *it = lupe_fmt_doc_add_item(doc, s->name);
        assert_non_null(it);
        it->width = s->w;
        it->height = s->h;
        it->labeled = s->labeled;
        it->time = s->time;
        it->split = s->split ? lupe_strdup(s->split) : NULL;
        it->src_path = lupe_strdup(src);
        it->export_name = lupe_strdup(s->name);
        for (size_t k = 0; k < s->nb; k++) {
            const lupe_fmt_box *b = &s->boxes[k];
            assert_int_equal(lupe_fmt_item_add_box(it, b->cls, b->x, b->y, b->w, b->h), LUPE_OK);
        }
    }
    return doc;
}

static const lupe_fmt_item *find(const lupe_fmt_doc *doc, const char *name)
{
    for (size_t i = 0; i < doc->nitems; i++) {
        const char *s = strrchr(doc->items[i].image, '/');
        if (strcmp(s ? s + 1 : doc->items[i].image, name) == 0) return &doc->items[i];
    }
    fail_msg("no item for %s", name);
    return NULL;
}

static void near(double got, double want, double tol, const char *what, const char *name)
{
    if (!(fabs(got - want) <= tol)) fail_msg("%s: %s %.17g, wanted %.17g (tolerance %g)", name, what, got, want, tol);
}

static void compare(lupe_fmt_kind kind, const char *out, const lupe_fmt_doc *back)
{
    bool pixel = kind != LUPE_FMT_YOLO, splits = kind >= LUPE_FMT_YOLO, times = kind <= LUPE_FMT_GT_MANIFEST;
    assert_null(fmt__doc_check((lupe_fmt_doc *)back));
    assert_int_equal(back->nskipped, 0);
    assert_int_equal(back->nitems, NSPECS - 1);
    assert_int_equal(back->nclasses, 2);
    for (int c = 0; c < 2; c++) {
        /* gt-csv holds class numbers only; the store maps them by label set. */
        if (kind == LUPE_FMT_GT_CSV) assert_string_equal(back->classes[c], c ? "class1" : "class0");
        else assert_string_equal(back->classes[c], class_names[c]);
    }
    for (size_t i = 0; i < NSPECS; i++) {
        const spec *s = &specs[i];
        if (!s->labeled) continue;
        const lupe_fmt_item *it = find(back, s->name);
        assert_int_equal(it->labeled, 1);
        assert_int_equal(it->normalized, pixel ? 0 : 1);
        assert_int_equal(it->width, pixel ? s->w : 0);
        assert_int_equal(it->height, pixel ? s->h : 0);
        if (splits && s->split) assert_string_equal(it->split, s->split);
        else assert_null(it->split);
        assert_int_equal(it->time, times ? s->time : 0);
        /* The reference leads to the image: a copy of its source (never a
         * hard link, which would let edits reach the source). */
        char *img = lupe_path_join(out, it->image);
        struct stat a, b;
        if (stat(img, &a) != 0) fail_msg("%s: image %s is not there", lupe_fmt_name(kind), img);
        assert_int_equal(stat(tu_path(s->name), &b), 0);
        assert_int_not_equal(a.st_ino, b.st_ino);
        assert_int_equal(a.st_size, b.st_size);
        lupe_free(img);
        assert_int_equal(it->nboxes, s->nb);
        for (size_t k = 0; k < s->nb; k++) {
            const lupe_fmt_box *w = &s->boxes[k], *g = &it->boxes[k];
            assert_int_equal(g->cls, w->cls);
            if (kind == LUPE_FMT_YOLO) {
                /* Six decimals of a fraction: within 1e-6 of the image size. */
                near(g->x * s->w, w->x, 1e-6 * s->w, "x", s->name);
                near(g->y * s->h, w->y, 1e-6 * s->h, "y", s->name);
                near(g->w * s->w, w->w, 1e-6 * s->w, "w", s->name);
                near(g->h * s->h, w->h, 1e-6 * s->h, "h", s->name);
            } else if (kind == LUPE_FMT_VOC) {
                /* Corners are exact; w = xmax - xmin is one subtraction,
                 * exact for integers and halves, off by an ulp for 0.1s. */
                assert_true(g->x == w->x && g->y == w->y);
                near(g->w, w->w, 1e-12 * (1 + w->w), "w", s->name);
                near(g->h, w->h, 1e-12 * (1 + w->h), "h", s->name);
            } else {
                fx_box_eq(g, w->cls, w->x, w->y, w->w, w->h);
            }
        }
    }
}

static void roundtrip(lupe_fmt_kind kind)
{
    size_t live = fx_live();
    lupe_fmt_doc *doc = build_doc(), *back = NULL;
    char out[1100], partial[1200];
    snprintf(out, sizeof out, "%s", tu_path(lupe_fmt_name(kind)));
    snprintf(partial, sizeof partial, "%s.partial", out);
    if (lupe_fmt_write(kind, doc, out) != LUPE_OK) fail_msg("writing %s: %s", lupe_fmt_name(kind), lupe_errmsg());
    assert_false(lupe_path_exists(partial));
    if (lupe_fmt_read(kind, out, &back) != LUPE_OK) fail_msg("reading %s: %s", lupe_fmt_name(kind), lupe_errmsg());
    compare(kind, out, back);
    lupe_fmt_doc_free(back);
    /* Never over an existing folder. */
    assert_int_equal(lupe_fmt_write(kind, doc, out), LUPE_EEXIST);
    fx_err_has("already exists");
    lupe_fmt_doc_free(doc);
    assert_int_equal(fx_live(), live);
}

static void test_gt_csv(void **state)
{
    (void)state;
    roundtrip(LUPE_FMT_GT_CSV);
}

static void test_gt_manifest(void **state)
{
    (void)state;
    roundtrip(LUPE_FMT_GT_MANIFEST);
}

static void test_yolo(void **state)
{
    (void)state;
    roundtrip(LUPE_FMT_YOLO);
    /* What a trainer reads besides the labels. */
    char p[1100];
    snprintf(p, sizeof p, "%s/data.yaml", tu_path("yolo"));
    size_t n;
    char *y = fx_slurp(p, &n);
    assert_string_equal(y, "train: images/train\nval: images/val\ntest: images/test\nnc: 2\n"
                           "names: ['scratch', 'dent & ''deep'' <x>, \"y\"']\n");
    lupe_free(y);
    snprintf(p, sizeof p, "%s/labels/val/b.txt", tu_path("yolo"));
    y = fx_slurp(p, &n);
    assert_string_equal(y, "1 0.255625 0.503516 0.301250 0.500781\n");
    lupe_free(y);
    snprintf(p, sizeof p, "%s/labels/train/a.txt", tu_path("yolo"));
    y = fx_slurp(p, &n);
    assert_int_equal(n, 0); /* the negative's empty label file */
    lupe_free(y);
}

static void test_coco(void **state)
{
    (void)state;
    roundtrip(LUPE_FMT_COCO);
    char p[1100];
    static const char *const files[] = {"instances_train.json", "instances_val.json", "instances_test.json",
                                        "instances.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/annotations/%s", tu_path("coco"), files[i]);
        assert_true(lupe_path_exists(p));
    }
}

static void test_voc(void **state)
{
    (void)state;
    roundtrip(LUPE_FMT_VOC);
    char p[1100];
    snprintf(p, sizeof p, "%s/Annotations/b.xml", tu_path("voc"));
    size_t n;
    char *x = fx_slurp(p, &n);
    assert_non_null(strstr(x, "<name>dent &amp; &apos;deep&apos; &lt;x&gt;, &quot;y&quot;</name>"));
    assert_non_null(strstr(x, "<xmin>10.5</xmin>\n\t\t\t<ymin>20.25</ymin>\n\t\t\t<xmax>40.625</xmax>\n"
                              "\t\t\t<ymax>60.3125</ymax>"));
    lupe_free(x);
    snprintf(p, sizeof p, "%s/ImageSets/Main/val.txt", tu_path("voc"));
    x = fx_slurp(p, &n);
    assert_string_equal(x, "b\n");
    lupe_free(x);
}

/* The real labels.csv through every format and back: the same 482 boxes. */
static void test_real_through_all(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = NULL;
    assert_int_equal(lupe_fmt_read(LUPE_FMT_GT_CSV, tu_shared(FX_LABELS_CSV), &doc), LUPE_OK);
    lupe_fmt_doc *named = lupe_fmt_doc_new();
    assert_int_equal(lupe_fmt_doc_add_class(named, "scratch", NULL), LUPE_OK);
    static const char *const splits[3] = {"train", "val", "test"};
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *s = &doc->items[i];
        const char *rel = strstr(s->image, "2021-01-28-09-50-34/");
        assert_non_null(rel);
        rel += strlen("2021-01-28-09-50-34/");
        char img[600];
        snprintf(img, sizeof img, "datasets/metal-tags/images/%s", rel);
        lupe_fmt_item *it = lupe_fmt_doc_add_item(named, s->image);
        it->width = s->width;
        it->height = s->height;
        it->labeled = 1;
        it->time = s->time;
        it->split = lupe_strdup(splits[i % 3]);
        it->src_path = lupe_strdup(tu_shared(img));
        it->export_name = lupe_strdup(strrchr(rel, '/') + 1);
        for (size_t k = 0; k < s->nboxes; k++) {
            const lupe_fmt_box *b = &s->boxes[k];
            assert_int_equal(lupe_fmt_item_add_box(it, b->cls, b->x, b->y, b->w, b->h), LUPE_OK);
        }
    }
    for (int kind = 0; kind < LUPE_FMT_COUNT; kind++) {
        char out[1100];
        snprintf(out, sizeof out, "%s", tu_path("real"));
        snprintf(out + strlen(out), sizeof out - strlen(out), "-%s", lupe_fmt_name((lupe_fmt_kind)kind));
        if (lupe_fmt_write((lupe_fmt_kind)kind, named, out) != LUPE_OK) fail_msg("%s", lupe_errmsg());
        lupe_fmt_doc *back = NULL;
        if (lupe_fmt_read((lupe_fmt_kind)kind, out, &back) != LUPE_OK) fail_msg("%s", lupe_errmsg());
        assert_int_equal(back->nitems, 235);
        assert_int_equal(fx_boxes(back), 482);
        assert_int_equal(back->nskipped, 0);
        for (size_t i = 0; i < named->nitems; i++) {
            const lupe_fmt_item *w = &named->items[i], *g = find(back, w->export_name);
            assert_int_equal(g->nboxes, w->nboxes);
            double sx = g->normalized ? 450 : 1, sy = g->normalized ? 300 : 1;
            for (size_t k = 0; k < w->nboxes; k++) {
                const lupe_fmt_box *a = &w->boxes[k], *b = &g->boxes[k];
                assert_int_equal(b->cls, 0);
                double tol = g->normalized ? 1e-6 * 450 : 0;
                near(b->x * sx, a->x, tol, "x", w->export_name);
                near(b->y * sy, a->y, tol, "y", w->export_name);
                near(b->w * sx, a->w, tol, "w", w->export_name);
                near(b->h * sy, a->h, tol, "h", w->export_name);
            }
        }
        lupe_fmt_doc_free(back);
    }
    lupe_fmt_doc_free(named);
    lupe_fmt_doc_free(doc);
}

/* A refused document or a failing write leaves neither OUT nor OUT.partial. */
static void refused(lupe_fmt_kind kind, lupe_fmt_doc *doc, lupe_status want, const char *msg)
{
    const char *out = tu_path("refused");
    char partial[1200];
    snprintf(partial, sizeof partial, "%s.partial", out);
    assert_int_equal(lupe_fmt_write(kind, doc, out), want);
    fx_err_has(msg);
    assert_false(lupe_path_exists(out));
    assert_false(lupe_path_exists(partial));
}

static void test_refused(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = build_doc();
    lupe_fmt_item *b = &doc->items[1];
    lupe_free(b->export_name);
    b->export_name = lupe_strdup("a.jpg");
    refused(LUPE_FMT_COCO, doc, LUPE_EARG, "item 2: export name 'a.jpg' is used twice");
    lupe_free(b->export_name);
    b->export_name = lupe_strdup("a.png");
    refused(LUPE_FMT_VOC, doc, LUPE_EARG, "item 2: 'a.png' has the same stem as another image; voc names label files by stem");
    lupe_free(b->export_name);
    b->export_name = lupe_strdup("../b.jpg");
    refused(LUPE_FMT_GT_CSV, doc, LUPE_EARG, "item 2: export name '../b.jpg' is not a plain file name");
    lupe_free(b->export_name);
    b->export_name = lupe_strdup("b.gif");
    refused(LUPE_FMT_YOLO, doc, LUPE_EARG, "item 2: 'b.gif' needs a .jpg, .jpeg or .png extension for yolo tools");
    lupe_free(b->export_name);
    b->export_name = lupe_strdup("b.jpg");
    b->boxes[0].cls = 2;
    refused(LUPE_FMT_COCO, doc, LUPE_EARG, "item 2 (b.jpg): box 1: class 2 is not one of the 2 classes");
    b->boxes[0].cls = 1;
    b->boxes[0].w = 0;
    refused(LUPE_FMT_COCO, doc, LUPE_EARG, "item 2 (b.jpg): box 1: needs finite coordinates and a positive size");
    b->boxes[0].w = 1;
    lupe_free(b->split);
    b->split = lupe_strdup("dev");
    refused(LUPE_FMT_VOC, doc, LUPE_EARG, "item 2: split 'dev' is not train, val or test");
    lupe_free(b->split);
    b->split = NULL;
    b->normalized = 1;
    b->width = 0;
    refused(LUPE_FMT_COCO, doc, LUPE_EARG, "item 2 (b.jpg): coco needs the image size to convert its normalized boxes");
    b->normalized = 0;
    refused(LUPE_FMT_YOLO, doc, LUPE_EARG, "item 2 (b.jpg): yolo needs the image size to convert its pixel boxes");
    b->width = 100;
    lupe_free(doc->classes[1]);
    doc->classes[1] = lupe_strdup("bad\nname");
    refused(LUPE_FMT_VOC, doc, LUPE_EARG, "class 1: a name must be non-empty UTF-8 text without control characters");
    lupe_free(doc->classes[1]);
    doc->classes[1] = lupe_strdup("dent");
    /* A source image that is not there fails the write midway: nothing of
     * it stays on disk. */
    lupe_free(b->src_path);
    b->src_path = lupe_strdup(tu_path("missing.jpg"));
    refused(LUPE_FMT_YOLO, doc, LUPE_ENOTFOUND, "missing.jpg");
    fx_err_has("writing yolo to ");
    lupe_fmt_doc_free(doc);
}

static void test_partial_and_labels_only(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = build_doc();
    /* A crashed run's OUT.partial is cleared away, not merged with. */
    const char *out = tu_path("again");
    char partial[1200], junk[1300];
    snprintf(partial, sizeof partial, "%s.partial", out);
    fx_mkdir(partial);
    snprintf(junk, sizeof junk, "%s/labels.csv", partial);
    fx_write_str(junk, "junk from a crashed export");
    snprintf(junk, sizeof junk, "%s/images", partial);
    fx_mkdir(junk);
    assert_int_equal(symlink("/", tu_path("again.partial/images/root")), 0); /* removed, never followed */
    assert_int_equal(lupe_fmt_write(LUPE_FMT_GT_CSV, doc, out), LUPE_OK);
    assert_false(lupe_path_exists(partial));
    lupe_fmt_doc *back = NULL;
    assert_int_equal(lupe_fmt_read(LUPE_FMT_GT_CSV, out, &back), LUPE_OK);
    assert_int_equal(back->nitems, NSPECS - 1);
    lupe_fmt_doc_free(back);

    /* No src_path: labels only. A trailing slash names the same folder. */
    for (size_t i = 0; i < doc->nitems; i++) {
        lupe_free(doc->items[i].src_path);
        doc->items[i].src_path = NULL;
    }
    char slash[1100];
    snprintf(slash, sizeof slash, "%s/", tu_path("labels-only"));
    assert_int_equal(lupe_fmt_write(LUPE_FMT_COCO, doc, slash), LUPE_OK);
    char p[1200];
    snprintf(p, sizeof p, "%s/images", tu_path("labels-only"));
    assert_false(lupe_path_exists(p));
    assert_int_equal(lupe_fmt_read(LUPE_FMT_COCO, tu_path("labels-only"), &back), LUPE_OK);
    assert_int_equal(fx_boxes(back), 5);
    lupe_fmt_doc_free(back);
    lupe_fmt_doc_free(doc);

    /* An empty document still makes a readable export. */
    doc = lupe_fmt_doc_new();
    assert_int_equal(lupe_fmt_write(LUPE_FMT_VOC, doc, tu_path("empty-voc")), LUPE_OK);
    assert_int_equal(lupe_fmt_write(LUPE_FMT_COCO, doc, tu_path("empty-coco")), LUPE_OK);
    assert_int_equal(lupe_fmt_read(LUPE_FMT_COCO, tu_path("empty-coco"), &back), LUPE_OK);
    assert_int_equal(back->nitems, 0);
    lupe_fmt_doc_free(back);
    lupe_fmt_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gt_csv),     cmocka_unit_test(test_gt_manifest),      cmocka_unit_test(test_yolo),
        cmocka_unit_test(test_coco),       cmocka_unit_test(test_voc),              cmocka_unit_test(test_real_through_all),
        cmocka_unit_test(test_refused),    cmocka_unit_test(test_partial_and_labels_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
