/*
 * Tests of the Pascal VOC reader: corners to x, y, w, h, classes in order
 * of first appearance, bad objects skipped, malformed XML with expat's
 * line, DOCTYPEs and entity bombs refused, caps on nesting and text, and
 * a VOC folder with splits, labels.txt and one broken file.
 */
#include "formats/fixtures.h"

static lupe_fmt_doc *voc(const char *text, lupe_status want)
{
    return fx_parse(lupe_fmt_parse_voc, text, "a.xml", want);
}

static const char good[] = "<?xml version=\"1.0\"?>\n"
                           "<annotation>\n"
                           "  <folder>VOC2012</folder>\n"
                           "  <filename> a &amp; b.jpg </filename>\n"
                           "  <size><width>500</width><height>375.0</height><depth>3</depth></size>\n"
                           "  <object>\n"
                           "    <name>dog</name><difficult>1</difficult>\n"
                           "    <bndbox><xmin>10</xmin><ymin>20.5</ymin><xmax>110</xmax><ymax>220.5</ymax></bndbox>\n"
                           "    <part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
                           "</bndbox></part>\n"
                           "  </object>\n"
                           "  <object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>4</xmax><ymax>8</ymax>"
                           "</bndbox></object>\n"
                           "  <object><name>dog</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>5</xmax><ymax>5</ymax>"
                           "</bndbox></object>\n"
                           "</annotation>\n";

static void test_good(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = voc(good, LUPE_OK);
    assert_int_equal(doc->nskipped, 0);
    assert_int_equal(doc->nclasses, 2);
    assert_string_equal(doc->classes[0], "dog");
    assert_string_equal(doc->classes[1], "cat");
    assert_int_equal(doc->nitems, 1);
    const lupe_fmt_item *it = &doc->items[0];
    assert_string_equal(it->image, "a & b.jpg");
    assert_int_equal(it->width, 500);
    assert_int_equal(it->height, 375);
    assert_int_equal(it->labeled, 1);
    assert_int_equal(it->nboxes, 3);
    fx_box_eq(&it->boxes[0], 0, 10, 20.5, 100, 200); /* x = xmin, w = xmax - xmin */
    fx_box_eq(&it->boxes[1], 1, 1, 2, 3, 6);
    fx_box_eq(&it->boxes[2], 0, 0, 0, 5, 5);
    lupe_fmt_doc_free(doc);
    /* No objects: a labeled negative. */
    doc = voc("<annotation><filename>n.jpg</filename></annotation>", LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    assert_int_equal(doc->items[0].nboxes, 0);
    assert_int_equal(doc->items[0].width, 0);
    lupe_fmt_doc_free(doc);
}

static void test_bad_objects(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = voc("<annotation><filename>a.jpg</filename>\n"
                            "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>\n"
                            "<object><name>x</name></object>\n"
                            "<object><name>x</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax></bndbox></object>\n"
                            "<object><name>x</name><bndbox><xmin>nan</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
                            "</bndbox></object>\n"
                            "<object><name>x</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>1e999</xmax><ymax>2</ymax>"
                            "</bndbox></object>\n"
                            "<object><name>x</name><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
                            "</bndbox></object>\n"
                            "<object><name>x</name><bndbox><xmin>1</xmin><ymin>3</ymin><xmax>2</xmax><ymax>3</ymax>"
                            "</bndbox></object>\n"
                            "<object><name>x</name><name>y</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>"
                            "<ymax>2</ymax></bndbox></object>\n"
                            "<object><name>ok</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
                            "</bndbox></object>\n"
                            "</annotation>",
                            LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    assert_int_equal(doc->items[0].nboxes, 1);
    assert_int_equal(doc->nclasses, 1);
    assert_string_equal(doc->classes[0], "ok");
    fx_skipped(doc, "a.xml:2: object 1: no <name>");
    fx_skipped(doc, "a.xml:3: object 2: no <bndbox>");
    fx_skipped(doc, "a.xml:4: object 3: no <ymax>");
    fx_skipped(doc, "a.xml:5: object 4: <xmin> 'nan' is not a number");
    fx_skipped(doc, "a.xml:6: object 5: <xmax> '1e999' is out of range");
    fx_skipped(doc, "a.xml:7: object 6: xmax 2 is not greater than xmin 5");
    fx_skipped(doc, "a.xml:8: object 7: ymax 3 is not greater than ymin 3");
    fx_skipped(doc, "a.xml:9: object 8: <name> appears twice");
    assert_int_equal(doc->nskipped, 8);
    lupe_fmt_doc_free(doc);

    doc = voc("<annotation><size><width>5</width></size></annotation>", LUPE_OK);
    assert_int_equal(doc->nitems, 0);
    fx_skipped(doc, "a.xml: no <filename>");
    lupe_fmt_doc_free(doc);
    doc = voc("<annotation><filename>a</filename><size><width>wide</width></size></annotation>", LUPE_OK);
    fx_skipped(doc, "a.xml: <width> 'wide' is not an image size");
    lupe_fmt_doc_free(doc);
}

static void test_hostile(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = voc("<annotation>\n<filename>a.jpg</filename>\n<object><name>x</nme></object>\n</annotation>",
                            LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "a.xml:3: column 18: mismatched tag");
    lupe_fmt_doc_free(doc);
    doc = voc("<annotation><filename>a.jpg</filename>", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "a.xml:1: column 39: no element found");
    lupe_fmt_doc_free(doc);
    doc = voc("", LUPE_EFORMAT);
    fx_err_has("a.xml:1: column 1: no element found");
    lupe_fmt_doc_free(doc);
    doc = voc("<voc><filename>a.jpg</filename></voc>", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "a.xml:1: the root element is not <annotation>");
    lupe_fmt_doc_free(doc);
    /* Billion laughs: refused at the DOCTYPE, before any entity exists. */
    doc = voc("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
              " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
              " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n]>\n"
              "<annotation><filename>&lol3;</filename></annotation>",
              LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "a.xml:2: DOCTYPE is not allowed in a label file");
    lupe_fmt_doc_free(doc);
    doc = voc("<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><annotation><filename>a</filename></annotation>",
              LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "a.xml:1: DOCTYPE is not allowed in a label file");
    lupe_fmt_doc_free(doc);
    /* Without a DTD an entity is undefined: expat's own error. */
    doc = voc("<annotation><filename>&xxe;</filename></annotation>", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "a.xml:1: column 23: undefined entity");
    lupe_fmt_doc_free(doc);
    /* Caps: nesting and text. */
    char *deep = malloc(40 * 8 + 100);
    size_t o = (size_t)sprintf(deep, "<annotation>");
    for (int i = 0; i < 40; i++) o += (size_t)sprintf(deep + o, "<a>");
    doc = voc(deep, LUPE_ELIMIT);
    assert_string_equal(lupe_errmsg(), "a.xml:1: elements nested deeper than 32 levels");
    lupe_fmt_doc_free(doc);
    free(deep);
    char *longtext = malloc(5000 + 100);
    o = (size_t)sprintf(longtext, "<annotation><filename>");
    memset(longtext + o, 'x', 5000);
    sprintf(longtext + o + 5000, "</filename></annotation>");
    doc = voc(longtext, LUPE_ELIMIT);
    assert_string_equal(lupe_errmsg(), "a.xml:1: element text longer than 4096 bytes");
    lupe_fmt_doc_free(doc);
    free(longtext);
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

static void test_folder(void **state)
{
    (void)state;
    const char *root = tu_path("voc1");
    fx_mkdir(root);
    put(root, "JPEGImages/a.jpg", "A");
    put(root, "labels.txt", "cat\ndog\nunused\n");
    put(root, "Annotations/a.xml", good);
    put(root, "Annotations/b.xml", "<annotation><filename>b.jpg</filename></annotation>");
    put(root, "Annotations/c.xml", "<annotation><filename>c.jpg</filename>\n<bad></annotation>");
    put(root, "Annotations/notes.txt", "not xml");
    put(root, "ImageSets/Main/train.txt", "a\n");
    put(root, "ImageSets/Main/val.txt", "b  1\n");
    lupe_fmt_doc *doc = NULL;
    assert_int_equal(lupe_fmt_read(LUPE_FMT_VOC, root, &doc), LUPE_OK);
    assert_int_equal(doc->nclasses, 3);
    assert_string_equal(doc->classes[0], "cat"); /* labels.txt order */
    assert_string_equal(doc->classes[1], "dog");
    assert_string_equal(doc->classes[2], "unused");
    assert_int_equal(doc->nitems, 2);
    assert_string_equal(doc->items[0].image, "JPEGImages/a & b.jpg");
    assert_string_equal(doc->items[0].split, "train");
    assert_int_equal(doc->items[0].line, 1);
    fx_box_eq(&doc->items[0].boxes[0], 1, 10, 20.5, 100, 200);
    assert_string_equal(doc->items[1].image, "JPEGImages/b.jpg");
    assert_string_equal(doc->items[1].split, "val");
    assert_int_equal(doc->items[1].nboxes, 0);
    fx_skipped(doc, "Annotations/c.xml:2: column 8: mismatched tag");
    assert_int_equal(doc->nskipped, 1);
    lupe_fmt_doc_free(doc);

    /* A plain folder of .xml files, and a single file. */
    const char *root2 = tu_path("voc2");
    fx_mkdir(root2);
    put(root2, "x.xml", "<annotation><filename>x.jpg</filename></annotation>");
    assert_int_equal(lupe_fmt_read(LUPE_FMT_VOC, root2, &doc), LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    assert_string_equal(doc->items[0].image, "x.jpg");
    lupe_fmt_doc_free(doc);
    char p[1100];
    snprintf(p, sizeof p, "%s/x.xml", root2);
    assert_int_equal(lupe_fmt_read(LUPE_FMT_VOC, p, &doc), LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    lupe_fmt_doc_free(doc);
    put(root2, "y.xml", "<annotation><filename>y.jpg</filename></annotation");
    snprintf(p, sizeof p, "%s/y.xml", root2);
    assert_int_equal(lupe_fmt_read(LUPE_FMT_VOC, p, &doc), LUPE_EFORMAT);
    fx_err_has("y.xml:1: column 39: unclosed token");
    const char *empty = tu_path("voc3");
    fx_mkdir(empty);
    assert_int_equal(lupe_fmt_read(LUPE_FMT_VOC, empty, &doc), LUPE_ENOTFOUND);
    fx_err_has("no .xml files");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad_objects),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
