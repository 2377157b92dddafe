/*
 * Tests of the YOLO reader: class lists (classes.txt, data.yaml in its
 * three shapes), label lines (centre to corner, every bad line with its
 * message), and the folder walk (splits, negatives, labels without images).
 */
#include "formats/fixtures.h"

static lupe_fmt_doc *classes(const char *text, const char *name, lupe_status want)
{
    return fx_parse(lupe_fmt_parse_yolo_classes, text, name, want);
}

static void names_are(const lupe_fmt_doc *doc, const char *const *want, size_t n)
{
    assert_int_equal(doc->nclasses, n);
    for (size_t i = 0; i < n; i++) assert_string_equal(doc->classes[i], want[i]);
}

static void test_classes(void **state)
{
    (void)state;
    static const char *const abc[] = {"scratch", "dent deep", "rust"};
    lupe_fmt_doc *doc = classes("scratch\r\ndent deep\n  rust \n\n\n", "classes.txt", LUPE_OK);
    names_are(doc, abc, 3);
    lupe_fmt_doc_free(doc);
    doc = classes("scratch\n\ndent\n", "obj.names", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "obj.names:2: blank line between class names");
    lupe_fmt_doc_free(doc);
    doc = classes("a\nb\na\n", "classes.txt", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "classes.txt: class 'a' is listed twice");
    lupe_fmt_doc_free(doc);
    doc = classes("\n\n", "classes.txt", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "classes.txt: no class names");
    lupe_fmt_doc_free(doc);

    doc = classes("path: ../x\ntrain: images/train\nnc: 3\nnames: [scratch, 'dent deep', \"rust\"]  # ok\n",
                  "data.yaml", LUPE_OK);
    names_are(doc, abc, 3);
    lupe_fmt_doc_free(doc);
    doc = classes("names:\n  - scratch\n  - 'dent deep'  # comment\n\n  - rust\nnc: 3\n", "data.yaml", LUPE_OK);
    names_are(doc, abc, 3);
    lupe_fmt_doc_free(doc);
    doc = classes("names:\n- scratch\n- dent deep\n- rust\ntrain: x\n", "data.yml", LUPE_OK);
    names_are(doc, abc, 3);
    lupe_fmt_doc_free(doc);
    doc = classes("names:\n  2: rust\n  0: scratch\n  1: dent deep\n", "data.yaml", LUPE_OK);
    names_are(doc, abc, 3);
    lupe_fmt_doc_free(doc);
    doc = classes("names: [\n  'it''s',\n  b\n]\n", "data.yaml", LUPE_OK);
    static const char *const quoted[] = {"it's", "b"};
    names_are(doc, quoted, 2);
    lupe_fmt_doc_free(doc);

    doc = classes("nc: 2\nnames: [a]\n", "data.yaml", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "data.yaml: nc is 2 but names lists 1 classes");
    lupe_fmt_doc_free(doc);
    doc = classes("names:\n  0: a\n  2: c\n", "data.yaml", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "data.yaml:1: names has no name for class 1");
    lupe_fmt_doc_free(doc);
    doc = classes("train: x\n", "data.yaml", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "data.yaml: no 'names:' key");
    lupe_fmt_doc_free(doc);
    doc = classes("names: [a, 'b\n", "data.yaml", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "data.yaml:1: quoted name is not closed");
    lupe_fmt_doc_free(doc);
    doc = classes("names: {0: a}\n", "data.yaml", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "data.yaml:1: names must be a list or a map of index to name");
    lupe_fmt_doc_free(doc);
    doc = classes("names:\n  - a\n  1: b\n", "data.yaml", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "data.yaml:3: names mixes a list and a map");
    lupe_fmt_doc_free(doc);

    /* 10k classes is the cap. */
    char *many = malloc(10001 * 8 + 1);
    size_t o = 0;
    for (int i = 0; i < 10001; i++) o += (size_t)sprintf(many + o, "c%d\n", i);
    doc = classes(many, "classes.txt", LUPE_ELIMIT);
    assert_string_equal(lupe_errmsg(), "classes.txt:10001: more than 10000 classes");
    lupe_fmt_doc_free(doc);
    free(many);
}

static lupe_fmt_doc *two_classes(void)
{
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    assert_int_equal(lupe_fmt_parse_yolo_classes(doc, "scratch\ndent\n", 13, "classes.txt"), LUPE_OK);
    return doc;
}

static void test_labels(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = two_classes();
    const char *t = "0 0.5 0.5 0.25 0.5\n"
                    "\n"
                    "1 0.1 0.2 0.2 0.4 0.9\n"
                    "5 0.5 0.5 0.1 0.1\n"
                    "0 1.5 0.5 0.1 0.1\n"
                    "0 nan 0.5 0.1 0.1\n"
                    "0 0.5 0.5 1e999 0.1\n"
                    "x 0.5 0.5 0.1 0.1\n"
                    "0.5 0.5 0.5 0.1 0.1\n"
                    "0 0.5 0.5 0 0.1\n"
                    "0 0.5 0.5 0.1\n"
                    "1.0 1.0005 0 1 0.2\r\n"
                    "0 -0.0005 0.5 0.1 -0.1";
    assert_int_equal(lupe_fmt_parse_yolo_labels(doc, "images/a.jpg", t, strlen(t), "labels/a.txt"), LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    const lupe_fmt_item *it = &doc->items[0];
    assert_string_equal(it->image, "images/a.jpg");
    assert_int_equal(it->normalized, 1);
    assert_int_equal(it->labeled, 1);
    assert_int_equal(it->width, 0);
    assert_int_equal(it->nboxes, 2);
    fx_box_eq(&it->boxes[0], 0, 0.375, 0.25, 0.25, 0.5); /* centre (0.5, 0.5) -> corner */
    fx_box_eq(&it->boxes[1], 1, 1.0005 - 0.5, -0.1, 1, 0.2);
    fx_skipped(doc, "labels/a.txt:3: 6 fields, expected 5 (class cx cy w h)");
    fx_skipped(doc, "labels/a.txt:4: class 5 is not one of the 2 classes");
    fx_skipped(doc, "labels/a.txt:5: cx '1.5' is outside [0, 1]");
    fx_skipped(doc, "labels/a.txt:6: cx 'nan' is not a number");
    fx_skipped(doc, "labels/a.txt:7: w '1e999' is not a number");
    fx_skipped(doc, "labels/a.txt:8: class 'x' is not a number");
    fx_skipped(doc, "labels/a.txt:9: class '0.5' is not a class index");
    fx_skipped(doc, "labels/a.txt:10: w is 0");
    fx_skipped(doc, "labels/a.txt:11: 4 fields, expected 5 (class cx cy w h)");
    fx_skipped(doc, "labels/a.txt:13: h '-0.1' is outside [0, 1]");
    assert_int_equal(doc->nskipped, 10);
    /* An empty file is a labeled negative. */
    assert_int_equal(lupe_fmt_parse_yolo_labels(doc, "images/b.jpg", "", 0, "labels/b.txt"), LUPE_OK);
    assert_int_equal(doc->items[1].nboxes, 0);
    assert_int_equal(doc->items[1].labeled, 1);
    lupe_fmt_doc_free(doc);
}

static void put(const char *root, const char *rel, const char *text)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    fx_write_str(p, text);
}

static const lupe_fmt_item *find(const lupe_fmt_doc *doc, const char *image)
{
    for (size_t i = 0; i < doc->nitems; i++)
        if (strcmp(doc->items[i].image, image) == 0) return &doc->items[i];
    fail_msg("no item %s", image);
    return NULL;
}

static void test_folder(void **state)
{
    (void)state;
    const char *root = tu_path("yolo1");
    fx_mkdir(root);
    put(root, "classes.txt", "scratch\ndent\n");
    put(root, "data.yaml", "names: [ignored]\n"); /* classes.txt wins */
    put(root, "images/train/a.jpg", "A");
    put(root, "labels/train/a.txt", "1 0.5 0.5 0.5 0.5\n");
    put(root, "images/train/sub/b.JPEG", "B");
    put(root, "labels/train/sub/b.txt", "0 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.5 0.5\n");
    put(root, "images/valid/c.png", "C"); /* no label file: a negative */
    put(root, "images/d.jpg", "D");
    put(root, "labels/d.txt", "");
    put(root, "labels/test/e.txt", "0 0.5 0.5 0.5 0.5\n"); /* no image */
    put(root, "images/test/f.jpg", "F");                   /* two images, one stem */
    put(root, "images/test/f.png", "F");
    put(root, "labels/test/f.txt", "0 0.5 0.5 0.5 0.5\n");
    put(root, "images/test/notes.md", "not an image");
    put(root, "images/test/.g.jpg", "hidden");
    lupe_fmt_doc *doc = NULL;
    assert_int_equal(lupe_fmt_read(LUPE_FMT_YOLO, root, &doc), LUPE_OK);
    static const char *const names[] = {"scratch", "dent"};
    names_are(doc, names, 2);
    assert_int_equal(doc->nitems, 4);
    const lupe_fmt_item *a = find(doc, "images/train/a.jpg");
    assert_string_equal(a->split, "train");
    assert_int_equal(a->nboxes, 1);
    fx_box_eq(&a->boxes[0], 1, 0.25, 0.25, 0.5, 0.5);
    const lupe_fmt_item *b = find(doc, "images/train/sub/b.JPEG");
    assert_int_equal(b->nboxes, 2);
    const lupe_fmt_item *c = find(doc, "images/valid/c.png");
    assert_string_equal(c->split, "val");
    assert_int_equal(c->labeled, 1);
    assert_int_equal(c->nboxes, 0);
    const lupe_fmt_item *d = find(doc, "images/d.jpg");
    assert_null(d->split);
    assert_int_equal(d->nboxes, 0);
    fx_skipped(doc, "labels/test/e.txt: no image images/test/e.jpg, .jpeg or .png");
    fx_skipped(doc, "images/test/f.jpg: another image has the same name up to the extension");
    fx_skipped(doc, "images/test/f.png: another image has the same name up to the extension");
    assert_int_equal(doc->nskipped, 3);
    lupe_fmt_doc_free(doc);

    /* data.yaml when it is the only class list; a bad label line is named
     * by its file and line. */
    const char *root2 = tu_path("yolo2");
    fx_mkdir(root2);
    put(root2, "data.yaml", "names:\n  0: scratch\n");
    put(root2, "images/a.jpg", "A");
    put(root2, "labels/a.txt", "0 0.5 0.5 0.5 0.5\n3 0.5 0.5 0.5 0.5\n");
    assert_int_equal(lupe_fmt_read(LUPE_FMT_YOLO, root2, &doc), LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    fx_skipped(doc, "labels/a.txt:2: class 3 is not one of the 1 classes");
    lupe_fmt_doc_free(doc);

    /* What a YOLO folder must have. */
    const char *root3 = tu_path("yolo3");
    fx_mkdir(root3);
    put(root3, "images/a.jpg", "A");
    assert_int_equal(lupe_fmt_read(LUPE_FMT_YOLO, root3, &doc), LUPE_ENOTFOUND);
    fx_err_has("no classes.txt, obj.names or data.yaml");
    put(root3, "classes.txt", "a\n");
    assert_int_equal(lupe_fmt_read(LUPE_FMT_YOLO, root3, &doc), LUPE_ENOTFOUND);
    fx_err_has("yolo3: no labels/ folder");
    char p[1100];
    snprintf(p, sizeof p, "%s/classes.txt", root3);
    assert_int_equal(lupe_fmt_read(LUPE_FMT_YOLO, p, &doc), LUPE_EARG);
    fx_err_has("yolo labels are read from a folder");
    assert_null(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
