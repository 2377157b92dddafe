/*
 * Tests of the gt-csv reader: the real metal-tags labels.csv (235 items,
 * 482 boxes, nothing skipped), header handling, and every kind of bad row
 * or box with the exact message a user would read.
 */
#include <math.h>

#include "formats/fixtures.h"

#define HDR "source_ref,image_width,image_height,image_depth,annotations,event_time,labeling_job,status\n"

static lupe_fmt_doc *csv(const char *text, lupe_status want)
{
    return fx_parse(lupe_fmt_parse_gt_csv, text, "t.csv", want);
}

static void test_real_file(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = NULL;
    assert_int_equal(lupe_fmt_read(LUPE_FMT_GT_CSV, tu_shared(FX_LABELS_CSV), &doc), LUPE_OK);
    assert_int_equal(doc->nitems, 235);
    assert_int_equal(fx_boxes(doc), 482);
    assert_int_equal(doc->nskipped, 0);
    assert_int_equal(doc->nclasses, 1);
    assert_string_equal(doc->classes[0], "class0");
    const lupe_fmt_item *it = &doc->items[0];
    assert_string_equal(it->image, "s3://${bucket}/pipeline/assets/images/2021-01-28-09-50-34/bad/"
                                   "image-2020-04-22-11-07-29-26-cropped-left-top.jpg");
    assert_int_equal(it->width, 450);
    assert_int_equal(it->height, 300);
    assert_int_equal(it->labeled, 1);
    assert_int_equal(it->normalized, 0);
    assert_int_equal(it->time, 1657199072);
    assert_int_equal(it->line, 2);
    assert_null(it->split);
    /* {'class_id': 0, 'top': 123, 'left': 81, 'height': 97, 'width': 82}, ... */
    assert_int_equal(it->nboxes, 3);
    fx_box_eq(&it->boxes[0], 0, 81, 123, 82, 97);
    fx_box_eq(&it->boxes[1], 0, 180, 119, 72, 70);
    fx_box_eq(&it->boxes[2], 0, 286, 79, 52, 82);
    assert_int_equal(doc->items[234].line, 236);
    /* Labeled negatives are rows with an empty list. */
    size_t negatives = 0;
    for (size_t i = 0; i < doc->nitems; i++) {
        assert_true(doc->items[i].labeled);
        negatives += doc->items[i].nboxes == 0;
    }
    assert_true(negatives > 0);
    lupe_fmt_doc_free(doc);
}

static void test_header(void **state)
{
    (void)state;
    /* Any column order, extra columns ignored, optional ones may be absent. */
    lupe_fmt_doc *doc = csv("extra, annotations ,image_height,image_width,source_ref\r\n"
                            "x,\"[{'class_id': 2, 'top': 1.5, 'left': 2, 'height': 3, 'width': 4}]\",30,40,a.jpg\r\n"
                            "y,[],30,40,b.jpg\r\n",
                            LUPE_OK);
    assert_int_equal(doc->nitems, 2);
    assert_int_equal(doc->nclasses, 3); /* class 2 brings class0 and class1 with it */
    assert_string_equal(doc->classes[2], "class2");
    fx_box_eq(&doc->items[0].boxes[0], 2, 2, 1.5, 4, 3);
    assert_int_equal(doc->items[0].width, 40);
    assert_int_equal(doc->items[0].height, 30);
    assert_int_equal(doc->items[1].nboxes, 0);
    assert_int_equal(doc->items[1].labeled, 1);
    assert_int_equal(doc->items[1].time, 0);
    lupe_fmt_doc_free(doc);

    doc = csv("source_ref,image_width,image_height,status\nx,1,1,APPROVED\n", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "t.csv:1: no 'annotations' column in the header");
    lupe_fmt_doc_free(doc);
    doc = csv("source_ref,image_width,image_height,annotations,source_ref\n", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "t.csv:1: column 'source_ref' appears twice");
    lupe_fmt_doc_free(doc);
    doc = csv("", LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "t.csv: empty file, expected a header line");
    lupe_fmt_doc_free(doc);
    /* A header alone is an empty, valid file. */
    doc = csv(HDR, LUPE_OK);
    assert_int_equal(doc->nitems, 0);
    lupe_fmt_doc_free(doc);
}

static void test_bad_rows(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = csv(HDR
                            "a.jpg,450,300,3,\"[{'class_id': 0, 'top': 1, 'left': 2, 'height': 3, 'width': 4}]\",1.5,j,REJECTED\n"
                            "b.jpg,450,300,3,\"{'class_id': 0}\",1,j,APPROVED\n"
                            "c.jpg,450,300,3,\"[{'class_id' 0}]\",1,j,APPROVED\n"
                            "d.jpg,450,300,3,\"[nan]\",1,j,APPROVED\n"
                            "e.jpg,wide,300,3,[],1,j,APPROVED\n"
                            "f.jpg,450,300,3,[],yesterday,j,APPROVED\n"
                            ",450,300,3,[],1,j,APPROVED\n"
                            "g.jpg,450,300,3,[]\n"
                            "\n"
                            "h.jpg,,,3,[],,j,approved\n",
                            LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    assert_string_equal(doc->items[0].image, "h.jpg");
    assert_int_equal(doc->items[0].line, 11);
    assert_int_equal(doc->items[0].width, 0);
    fx_skipped(doc, "t.csv:2: status is 'REJECTED', not APPROVED");
    fx_skipped(doc, "t.csv:3: annotations is not a list");
    fx_skipped(doc, "t.csv:4: annotations, byte 14: expected ':' after a dict key");
    fx_skipped(doc, "t.csv:5: annotations, byte 2: unexpected name 'nan'");
    fx_skipped(doc, "t.csv:6: image_width 'wide' is not a positive integer");
    fx_skipped(doc, "t.csv:7: event_time 'yesterday' is not a time in seconds");
    fx_skipped(doc, "t.csv:8: source_ref is empty");
    fx_skipped(doc, "t.csv:9: 5 fields, the header has 8");
    assert_int_equal(doc->nskipped, 8);
    lupe_fmt_doc_free(doc);
}

static void test_bad_boxes(void **state)
{
    (void)state;
    lupe_fmt_doc *doc = csv(HDR "a.jpg,450,300,3,\"["
                                "{'class_id': 0, 'top': 1, 'left': 1e300, 'height': 3, 'width': 4}, "
                                "{'class_id': 0, 'top': 1, 'left': 2, 'height': 3, 'width': 0}, "
                                "{'class_id': -1, 'top': 1, 'left': 2, 'height': 3, 'width': 4}, "
                                "{'class_id': 0, 'top': '1', 'left': 2, 'height': 3, 'width': 4}, "
                                "{'class_id': 0, 'top': 1, 'left': 2, 'width': 4}, "
                                "{'class_id': 0.0, 'top': 1, 'left': 2, 'height': 3, 'width': 4}, "
                                "{'class_id': 0, 'top': 1e999, 'left': 2, 'height': 3, 'width': 4}, "
                                "{'class_id': 0, 'top': 1, 'left': 2, 'height': -3, 'width': 4}, "
                                "{'class_id': 99999, 'top': 1, 'left': 2, 'height': 3, 'width': 4}, "
                                "{'class_id': 0, 'top': 1, 'left': 2, 'height': 3, 'width': 4, 'width': 5}, "
                                "7, "
                                "{'class_id': 1, 'top': 5, 'left': 6, 'height': 7, 'width': 8, 'label': 'x'}"
                                "]\",1,j,APPROVED\n",
                            LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    assert_int_equal(doc->items[0].nboxes, 1);
    fx_box_eq(&doc->items[0].boxes[0], 1, 6, 5, 8, 7);
    fx_skipped(doc, "t.csv:2: box 1: left 1e+300 is out of range");
    fx_skipped(doc, "t.csv:2: box 2: width is 0");
    fx_skipped(doc, "t.csv:2: box 3: class_id -1 is negative");
    fx_skipped(doc, "t.csv:2: box 4: 'top' is not a number");
    fx_skipped(doc, "t.csv:2: box 5: no 'height'");
    fx_skipped(doc, "t.csv:2: box 6: class_id is not an integer");
    fx_skipped(doc, "t.csv:2: box 7: top inf is out of range");
    fx_skipped(doc, "t.csv:2: box 8: height is -3");
    fx_skipped(doc, "t.csv:2: box 9: class_id 99999 is over the limit of 10000 classes");
    fx_skipped(doc, "t.csv:2: box 10: 'width' appears twice");
    fx_skipped(doc, "t.csv:2: box 11: not a dict");
    assert_int_equal(doc->nskipped, 11);
    lupe_fmt_doc_free(doc);
}

static void test_hard_errors(void **state)
{
    (void)state;
    /* Broken quoting is fatal, and the document the caller passed in comes
     * back exactly as it was. */
    lupe_fmt_doc *doc = csv(HDR "a.jpg,450,300,3,[],1,j,APPROVED\n", LUPE_OK);
    const char *broken = HDR "b.jpg,450,300,3,[],1,j,APPROVED\n"
                             "c.jpg,450,300,3,\"[{'class_id': 5, 'top': 1, 'left': 1, 'height': 1, 'width': 1}],1,j,APPROVED\n"
                             "d.jpg,450,300,3,[],1,j,APPROVED\n";
    assert_int_equal(lupe_fmt_parse_gt_csv(doc, broken, strlen(broken), "t.csv"), LUPE_EFORMAT);
    assert_string_equal(lupe_errmsg(), "t.csv: line 3, column 17: quoted field is not closed before the end of the file");
    assert_int_equal(doc->nitems, 1);
    assert_int_equal(doc->nclasses, 0);
    lupe_fmt_doc_free(doc);

    /* Caps: 10k boxes per image, 4096-byte image references. */
    size_t n = 10001, cap = n * 80 + 200;
    char *big = malloc(cap);
    size_t o = (size_t)snprintf(big, cap, HDR "a.jpg,450,300,3,\"[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s{'class_id': 0, 'top': 1, 'left': 1, 'height': 1, 'width': 1}",
                              i ? ", " : "");
    snprintf(big + o, cap - o, "]\",1,j,APPROVED\n");
    doc = csv(big, LUPE_ELIMIT);
    assert_string_equal(lupe_errmsg(), "t.csv:2: more than 10000 boxes for one image");
    lupe_fmt_doc_free(doc);
    o = (size_t)snprintf(big, cap, HDR);
    memset(big + o, 'x', 5000);
    snprintf(big + o + 5000, cap - o - 5000, ",450,300,3,[],1,j,APPROVED\n");
    doc = csv(big, LUPE_ELIMIT);
    assert_string_equal(lupe_errmsg(), "t.csv:2: image reference of 5000 bytes is over the limit of 4096");
    lupe_fmt_doc_free(doc);
    free(big);

    /* lupe_fmt_read: a folder means its labels.csv; errors say which file. */
    const char *dir = tu_path("gtdir");
    fx_mkdir(dir);
    char p[1100];
    snprintf(p, sizeof p, "%s/labels.csv", dir);
    fx_write_str(p, HDR "a.jpg,450,300,3,[],1,j,APPROVED\n");
    assert_int_equal(lupe_fmt_read(LUPE_FMT_GT_CSV, dir, &doc), LUPE_OK);
    assert_int_equal(doc->nitems, 1);
    lupe_fmt_doc_free(doc);
    fx_write_str(p, HDR "a.jpg,450,300,3,\"[],1,j,APPROVED\n");
    doc = (lupe_fmt_doc *)1;
    assert_int_equal(lupe_fmt_read(LUPE_FMT_GT_CSV, p, &doc), LUPE_EFORMAT);
    assert_null(doc);
    fx_err_has("reading gt-csv labels from ");
    fx_err_has("labels.csv: labels.csv: line 2, column 17: quoted field is not closed");
    assert_int_equal(lupe_fmt_read(LUPE_FMT_GT_CSV, tu_path("nope.csv"), &doc), LUPE_ENOTFOUND);
    assert_int_equal(lupe_fmt_read(LUPE_FMT_COUNT, p, &doc), LUPE_EARG);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const names[] = {"gt-csv", "gt-manifest", "yolo", "coco", "voc"};
    for (int k = 0; k < LUPE_FMT_COUNT; k++) {
        assert_string_equal(lupe_fmt_name((lupe_fmt_kind)k), names[k]);
        assert_int_equal(lupe_fmt_from_name(names[k]), k);
    }
    assert_int_equal(lupe_fmt_from_name("csv"), -1);
    assert_int_equal(lupe_fmt_from_name(NULL), -1);
    assert_string_equal(lupe_fmt_name(LUPE_FMT_COUNT), "unknown");
}

static void test_doc_helpers(void **state)
{
    (void)state;
    size_t live = fx_live();
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    int idx = -1;
    assert_int_equal(lupe_fmt_doc_add_class(doc, "scratch", &idx), LUPE_OK);
    assert_int_equal(idx, 0);
    assert_int_equal(lupe_fmt_doc_add_class(doc, "dent", &idx), LUPE_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(lupe_fmt_doc_add_class(doc, "scratch", &idx), LUPE_OK); /* names are unique */
    assert_int_equal(idx, 0);
    assert_int_equal(doc->nclasses, 2);
    assert_int_equal(lupe_fmt_doc_add_class(doc, "", &idx), LUPE_EARG);
    lupe_fmt_item *it = lupe_fmt_doc_add_item(doc, "a.jpg");
    assert_non_null(it);
    assert_int_equal(it->line, 1);
    assert_int_equal(lupe_fmt_item_add_box(it, 1, 1, 2, 3, 4), LUPE_OK);
    assert_int_equal(lupe_fmt_item_add_box(it, -1, 1, 2, 3, 4), LUPE_EARG);
    assert_int_equal(lupe_fmt_item_add_box(it, 0, NAN, 2, 3, 4), LUPE_EARG);
    assert_int_equal(it->nboxes, 1);
    /* Messages past the cap are counted in one closing line. */
    for (int i = 0; i < 10050; i++) assert_int_equal(lupe_fmt_doc_skip(doc, "row %d", i), LUPE_OK);
    assert_int_equal(doc->nskipped, 10001);
    assert_string_equal(doc->skipped[9999], "row 9999");
    assert_string_equal(doc->skipped[10000], "... and 50 more skipped, not listed");
    lupe_fmt_doc_free(doc);
    lupe_fmt_doc_free(NULL);
    assert_int_equal(fx_live(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_file),  cmocka_unit_test(test_header),      cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_bad_boxes),  cmocka_unit_test(test_hard_errors), cmocka_unit_test(test_names),
        cmocka_unit_test(test_doc_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
