/*
 * Tests of the gt-manifest reader: finding the label attribute, class maps
 * in id order, bad lines skipped with line and column while the rest is
 * read, and files that are not JSON lines at all refused.
 */
#include "formats/fixtures.h"

static lupe_fmt_doc *man(const char *text, lupe_status want)
{
    return fx_parse(lupe_fmt_parse_gt_manifest, text, "m.manifest", want);
}

#define LINE(src, ann, cmap)                                                                                         \
    "{\"source-ref\": \"s3://b/" src "\", \"tags\": {\"image_size\": [{\"width\": 450, \"height\": 300, "           \
    "\"depth\": 3}], \"annotations\": [" ann "]}, \"tags-metadata\": {\"class-map\": {" cmap "}, \"job-name\": "     \
    "\"labeling-job/x\", \"creation-date\": \"2021-01-28T09:50:34.000000\", \"type\": "                            \
    "\"groundtruth/object-detection\", \"human-annotated\": \"yes\"}}\n"

static void test_good(void **state)
{
    (void)state;
    lupe_fmt_doc *doc =
        man(LINE("a.jpg", "{\"class_id\": 1, \"left\": 81, \"top\": 123, \"width\": 82.5, \"height\": 97}, "
                          "{\"class_id\": 0, \"left\": 1, \"top\": 2, \"width\": 3, \"height\": 4}",
                 "\"1\": \"dent\", \"0\": \"scratch\"")
            "\r\n" LINE("b.jpg", "", "\"0\": \"scratch\""),
            LUPE_OK);
    assert_int_equal(doc->nskipped, 0);
    assert_int_equal(doc->nitems, 2);
    /* Classes in id order, whatever order the keys came in. */
    assert_int_equal(doc->nclasses, 2);
    assert_string_equal(doc->classes[0], "scratch");
    assert_string_equal(doc->classes[1], "dent");
    const lupe_fmt_item *it = &doc->items[0];
    assert_string_equal(it->image, "s3://b/a.jpg");
    assert_int_equal(it->width, 450);
    assert_int_equal(it->height, 300);
    assert_int_equal(it->line, 1);
    assert_int_equal(it->time, 1611827434); /* 2021-01-28T09:50:34Z */
    assert_int_equal(it->nboxes, 2);
    fx_box_eq(&it->boxes[0], 1, 81, 123, 82.5, 97);
    fx_box_eq(&it->boxes[1], 0, 1, 2, 3, 4);
    assert_int_equal(doc->items[1].line, 3);
    assert_int_equal(doc->items[1].nboxes, 0);
    assert_int_equal(doc->items[1].labeled, 1);
    lupe_fmt_doc_free(doc);

    /* No metadata: the only object value with "annotations"; no class map:
     * numbered classes. */
    doc = man("{\"source-ref\": \"x.jpg\", \"job\": {\"annotations\": [{\"class_id\": 1, \"left\": 1, \"top\": 2, "
              "\"width\": 3, \"height\": 4}]}}\n",
              LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    assert_int_equal(doc->nclasses, 1);
    assert_string_equal(doc->classes[0], "class1");
    fx_box_eq(&doc->items[0].boxes[0], 0, 1, 2, 3, 4);
    assert_int_equal(doc->items[0].width, 0);
    lupe_fmt_doc_free(doc);
}

static void test_bad_lines(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = man(
        LINE("a.jpg", "{\"class_id\": 0, \"left\": 1, \"top\": 2, \"width\": 3, \"height\": 4}", "\"0\": \"scratch\"")
        "{\"source-ref\": \"b.jpg\", \"tags\": {\n"
        "[1, 2]\n"
        LINE("c.jpg", "{\"class_id\": 0, \"left\": 1e400, \"top\": 2, \"width\": 3, \"height\": 4}", "\"0\": \"s\"")
        LINE("d.jpg", "{\"class_id\": 0, \"left\": NaN, \"top\": 2, \"width\": 3, \"height\": 4}", "\"0\": \"s\"")
        "{\"tags\": {\"annotations\": []}}\n"
        "{\"source-ref\": \"e.jpg\", \"x\": 1}\n"
        LINE("f.jpg",
             "{\"class_id\": 3, \"left\": 1, \"top\": 2, \"width\": 3, \"height\": 4}, "
             "{\"class_id\": 0, \"left\": 1, \"top\": 2, \"width\": -3, \"height\": 4}, "
             "{\"class_id\": \"0\", \"left\": 1, \"top\": 2, \"width\": 3, \"height\": 4}, "
             "{\"class_id\": 0, \"left\": \"1\", \"top\": 2, \"width\": 3, \"height\": 4}, "
             "{\"class_id\": 0, \"left\": 1, \"top\": 2, \"width\": 3}, "
             "{\"class_id\": 0, \"left\": 1e300, \"top\": 2, \"width\": 3, \"height\": 4}",
             "\"0\": \"scratch\""),
        LUPE_OK);
    assert_int_equal(doc->nitems, 2);
    assert_string_equal(doc->items[1].image, "s3://b/f.jpg");
    assert_int_equal(doc->items[1].line, 8);
    assert_int_equal(doc->items[1].nboxes, 0);
    fx_skipped(doc, "m.manifest:2: column 33: string or '}' expected near end of file");
    fx_skipped(doc, "m.manifest:3: not a JSON object");
    fx_skipped(doc, "m.manifest:4: column 144: real number overflow near '1e400'");
    fx_skipped(doc, "m.manifest:5: column 142: invalid token near 'NaN'");
    fx_skipped(doc, "m.manifest:6: no \"source-ref\"");
    fx_skipped(doc, "m.manifest:7: no object-detection label attribute");
    fx_skipped(doc, "m.manifest:8: box 1: class_id 3 is not in the class-map");
    fx_skipped(doc, "m.manifest:8: box 2: width is -3");
    fx_skipped(doc, "m.manifest:8: box 3: class_id is not an integer");
    fx_skipped(doc, "m.manifest:8: box 4: \"left\" is not a number");
    fx_skipped(doc, "m.manifest:8: box 5: no \"height\"");
    fx_skipped(doc, "m.manifest:8: box 6: left 1e+300 is out of range");
    assert_int_equal(doc->nskipped, 12);
    lupe_fmt_doc_free(doc);

    /* Two object-detection attributes on one line: which one is meant
     * cannot be known, so the line is skipped rather than guessed. */
    doc = man("{\"source-ref\": \"a.jpg\", \"a\": {\"annotations\": []}, \"a-metadata\": {\"type\": "
              "\"groundtruth/object-detection\"}, \"b\": {\"annotations\": []}, \"b-metadata\": {\"type\": "
              "\"groundtruth/object-detection\"}}\n",
              LUPE_OK);
    fx_skipped(doc, "m.manifest:1: more than one object-detection label attribute");
    lupe_fmt_doc_free(doc);
}

static void test_not_json_lines(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = man("source_ref,image_width\na.jpg,3\n", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "m.manifest: not JSON lines: line 1, column 6: '[' or '{' expected near 'source'");
    lupe_fmt_doc_free(doc);
    /* A pretty-printed JSON file is not JSON lines either. */
    doc = man("{\n  \"images\": []\n}\n", LUPE_EFORMAT);
    fx_err_has("m.manifest: not JSON lines: line 1");
    lupe_fmt_doc_free(doc);
    doc = man("[{\"source-ref\": \"a.jpg\"}]\n", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "m.manifest: not JSON lines: line 1: not a JSON object");
    lupe_fmt_doc_free(doc);
    /* Blank lines only: an empty manifest. */
    doc = man("\n  \n", LUPE_OK);
    assert_int_equal(doc->nitems, 0);
    lupe_fmt_doc_free(doc);
    /* A folder means its output.manifest. */
    const char *dir = tu_path("mdir");
    fx_mkdir(dir);
    char p[1100];
    snprintf(p, sizeof p, "%s/output.manifest", dir);
    fx_write_str(p, LINE("a.jpg", "", "\"0\": \"scratch\""));
    assert_int_equal(lupe_fmt_read(LUPE_FMT_GT_MANIFEST, dir, &doc), LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    lupe_fmt_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_not_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
