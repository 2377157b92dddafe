/*
 * Tests of the COCO reader: sparse category ids made dense in id order,
 * images without annotations as negatives, annotations for unknown images
 * or categories skipped with a message, and broken JSON refused.
 */
#include "formats/fixtures.h"

static lupe_fmt_doc *coco(const char *text, lupe_status want)
{
    return fx_parse(lupe_fmt_parse_coco, text, "instances_val2017.json", want);
}

static void test_good(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = coco("{\"images\": [{\"id\": 10, \"file_name\": \"a.jpg\", \"width\": 640, \"height\": 480},"
                             "            {\"id\": 20, \"file_name\": \"b.jpg\"}],"
                             " \"annotations\": ["
                             "  {\"id\": 1, \"image_id\": 10, \"category_id\": 7, \"bbox\": [1.5, 2, 30, 40.25]},"
                             "  {\"id\": 2, \"image_id\": 10, \"category_id\": 3, \"bbox\": [5, 6, 7, 8], \"iscrowd\": 0}"
                             " ],"
                             " \"categories\": [{\"id\": 7, \"name\": \"rust\"}, {\"id\": 3, \"name\": \"scratch\"},"
                             "                  {\"id\": 90, \"name\": \"unused\"}]}",
                             LUPE_OK);
    assert_int_equal(doc->nskipped, 0);
    assert_int_equal(doc->nclasses, 3);
    assert_string_equal(doc->classes[0], "scratch"); /* id 3 */
    assert_string_equal(doc->classes[1], "rust");    /* id 7 */
    assert_string_equal(doc->classes[2], "unused");  /* id 90 */
    assert_int_equal(doc->nitems, 2);
    const lupe_fmt_item *a = &doc->items[0];
    assert_string_equal(a->image, "a.jpg");
    assert_string_equal(a->split, "val");
    assert_int_equal(a->width, 640);
    assert_int_equal(a->height, 480);
    assert_int_equal(a->line, 1);
    assert_int_equal(a->nboxes, 2);
    fx_box_eq(&a->boxes[0], 1, 1.5, 2, 30, 40.25);
    fx_box_eq(&a->boxes[1], 0, 5, 6, 7, 8);
    const lupe_fmt_item *b = &doc->items[1];
    assert_int_equal(b->labeled, 1); /* listed, no annotation: a negative */
    assert_int_equal(b->nboxes, 0);
    assert_int_equal(b->width, 0);
    lupe_fmt_doc_free(doc);
}

static void test_skips(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = coco(
        "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}, {\"id\": 1, \"file_name\": \"dup.jpg\"},"
        "  {\"id\": \"2\", \"file_name\": \"b.jpg\"}, {\"id\": 3}, {\"id\": 4, \"file_name\": \"c.jpg\", \"width\": -5}],"
        " \"annotations\": ["
        "  {\"image_id\": 99, \"category_id\": 1, \"bbox\": [1, 2, 3, 4]},"
        "  {\"image_id\": 1, \"category_id\": 5, \"bbox\": [1, 2, 3, 4]},"
        "  {\"image_id\": 1, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"iscrowd\": 1},"
        "  {\"image_id\": 1, \"category_id\": 1, \"bbox\": [1, 2, 3]},"
        "  {\"image_id\": 1, \"category_id\": 1, \"bbox\": [1, 2, 0, 4]},"
        "  {\"image_id\": 1, \"category_id\": 1, \"bbox\": [1e300, 2, 3, 4]},"
        "  {\"image_id\": 1, \"category_id\": 1, \"bbox\": [1, \"2\", 3, 4]},"
        "  {\"image_id\": 1.5, \"category_id\": 1, \"bbox\": [1, 2, 3, 4]},"
        "  [],"
        "  {\"image_id\": 1, \"category_id\": 2, \"bbox\": [1, 2, 3, 4]}"
        " ],"
        " \"categories\": [{\"id\": 1, \"name\": \"scratch\"}, {\"id\": 2, \"name\": \"scratch\"},"
        "   {\"id\": 1, \"name\": \"other\"}, {\"name\": \"noid\"}]}",
        LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    assert_int_equal(doc->nclasses, 1);
    assert_int_equal(doc->items[0].nboxes, 1); /* category 2 merged into "scratch" */
    fx_box_eq(&doc->items[0].boxes[0], 0, 1, 2, 3, 4);
    fx_skipped(doc, "instances_val2017.json: category 4: id is not an integer");
    fx_skipped(doc, "instances_val2017.json: category 3: id 1 appears twice");
    fx_skipped(doc, "instances_val2017.json: category 2: name 'scratch' is also used by another id; merged");
    fx_skipped(doc, "instances_val2017.json: image 2: id appears twice");
    fx_skipped(doc, "instances_val2017.json: image 3: id is not an integer");
    fx_skipped(doc, "instances_val2017.json: image 4: no file_name");
    fx_skipped(doc, "instances_val2017.json: image 5: width is not a size");
    fx_skipped(doc, "instances_val2017.json: annotation 1: unknown image_id 99");
    fx_skipped(doc, "instances_val2017.json: annotation 2: unknown category_id 5");
    fx_skipped(doc, "instances_val2017.json: annotation 3: iscrowd region, not a box");
    fx_skipped(doc, "instances_val2017.json: annotation 4: bbox is not [x, y, w, h]");
    fx_skipped(doc, "instances_val2017.json: annotation 5: bbox width is 0");
    fx_skipped(doc, "instances_val2017.json: annotation 6: bbox value 1e+300 is out of range");
    fx_skipped(doc, "instances_val2017.json: annotation 7: bbox holds a value that is not a number");
    fx_skipped(doc, "instances_val2017.json: annotation 8: image_id is not an integer");
    fx_skipped(doc, "instances_val2017.json: annotation 9: not an object");
    assert_int_equal(doc->nskipped, 16);
    lupe_fmt_doc_free(doc);
}

static void test_errors(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = coco("{\"images\": [\n{\"id\": 1,, }]}", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "instances_val2017.json: line 2, column 10: string or '}' expected near ','");
    lupe_fmt_doc_free(doc);
    doc = coco("[1, 2]", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "instances_val2017.json: the top level is not an object, not a COCO instances file");
    lupe_fmt_doc_free(doc);
    doc = coco("{\"images\": [], \"categories\": []}", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "instances_val2017.json: no \"annotations\" list, not a COCO instances file");
    lupe_fmt_doc_free(doc);
    doc = coco("{\"images\": [], \"annotations\": [{\"bbox\": [NaN, 1, 2, 3]}], \"categories\": []}", LUPE_EFORMAT);
    fx_err_has("invalid token near 'NaN'");
    lupe_fmt_doc_free(doc);
    doc = coco("{\"images\": [], \"images\": [], \"annotations\": [], \"categories\": []}", LUPE_EFORMAT);
    fx_err_has("duplicate object key");
    lupe_fmt_doc_free(doc);
    doc = coco("{\"images\": [{\"id\": 99999999999999999999999}], \"annotations\": [], \"categories\": []}",
               LUPE_EFORMAT);
    fx_err_has("too big integer");
    lupe_fmt_doc_free(doc);

    /* A folder: every .json under annotations/, images under images/. */
    const char *dir = tu_path("cocodir");
    char p[1100];
    fx_mkdir(dir);
    snprintf(p, sizeof p, "%s/annotations", dir);
    fx_mkdir(p);
    snprintf(p, sizeof p, "%s/images", dir);
    fx_mkdir(p);
    assert_int_equal(lupe_fmt_read(LUPE_FMT_COCO, dir, &doc), LUPE_ENOTFOUND);
    fx_err_has("no COCO .json file in annotations/");
    snprintf(p, sizeof p, "%s/annotations/instances_train.json", dir);
    fx_write_str(p, "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}], \"annotations\": [], \"categories\": "
                    "[{\"id\": 1, \"name\": \"scratch\"}]}");
    snprintf(p, sizeof p, "%s/annotations/instances_test.json", dir);
    fx_write_str(p, "{\"images\": [{\"id\": 1, \"file_name\": \"b.jpg\"}], \"annotations\": [{\"image_id\": 1, "
                    "\"category_id\": 4, \"bbox\": [1, 2, 3, 4]}], \"categories\": [{\"id\": 4, \"name\": \"scratch\"}]}");
    assert_int_equal(lupe_fmt_read(LUPE_FMT_COCO, dir, &doc), LUPE_OK);
    assert_int_equal(doc->nitems, 2);
    assert_int_equal(doc->nclasses, 1);
    assert_string_equal(doc->items[0].image, "images/b.jpg"); /* files in name order: test before train */
    assert_string_equal(doc->items[0].split, "test");
    assert_int_equal(doc->items[0].nboxes, 1);
    assert_string_equal(doc->items[1].image, "images/a.jpg");
    assert_string_equal(doc->items[1].split, "train");
    lupe_fmt_doc_free(doc);
    fx_write_str(p, "{\"images\": [");
    assert_int_equal(lupe_fmt_read(LUPE_FMT_COCO, dir, &doc), LUPE_EFORMAT);
    fx_err_has("annotations/instances_test.json: line 1, column 12:");
    assert_null(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_skips),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
