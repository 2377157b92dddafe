/*
 * Hostile input and out-of-memory for every parser, folder reader and writer:
 * each allocation failing in turn, every truncation and thousands of random
 * mutations of a valid file, and a label file over the 1 GiB cap.
 */
#include <fcntl.h>
#include <unistd.h>

#include "formats/fixtures.h"

typedef struct sample {
    const char *name;
    fx_parser parse;
    const char *text;
} sample;

static lupe_status parse_yolo(lupe_fmt_doc *doc, const char *buf, size_t len, const char *name)
{
    /* Classes first, as the folder reader does, then one label file. */
    lupe_status st = lupe_fmt_parse_yolo_classes(doc, "scratch\ndent\n", 13, "classes.txt");
    if (st) return st;
    return lupe_fmt_parse_yolo_labels(doc, "images/a.jpg", buf, len, name);
}

static lupe_status parse_yaml(lupe_fmt_doc *doc, const char *buf, size_t len, const char *name)
{
    (void)name;
    return lupe_fmt_parse_yolo_classes(doc, buf, len, "data.yaml");
}

static const sample samples[] = {
    {"t.csv", lupe_fmt_parse_gt_csv,
     "source_ref,image_width,image_height,image_depth,annotations,event_time,labeling_job,status\n"
     "a.jpg,450,300,3,\"[{'class_id': 0, 'top': 123, 'left': 81, 'height': 97, 'width': 82}, {'class_id': 1, "
     "'top': 1.5, 'left': 2, 'height': 3, 'width': 4}]\",1657199072.0,j,APPROVED\n"
     "b.jpg,450,300,3,[],1657199072.0,j,APPROVED\n"
     "c.jpg,450,300,3,\"[{'class_id': 0, 'top': 1, 'left': 2, 'height': 0, 'width': 4}]\",1,j,APPROVED\n"
     "d.jpg,450,300,3,[],1,j,REJECTED\n"},
    {"m.manifest", lupe_fmt_parse_gt_manifest,
     "{\"source-ref\": \"s3://b/a.jpg\", \"bb\": {\"image_size\": [{\"width\": 450, \"height\": 300, \"depth\": 3}], "
     "\"annotations\": [{\"class_id\": 1, \"left\": 81, \"top\": 123, \"width\": 82, \"height\": 97}]}, "
     "\"bb-metadata\": {\"class-map\": {\"0\": \"scratch\", \"1\": \"dent\"}, \"type\": "
     "\"groundtruth/object-detection\", \"creation-date\": \"2021-01-28T09:50:34.000000\"}}\n"
     "{broken\n"
     "{\"source-ref\": \"b.jpg\", \"bb\": {\"annotations\": [{\"class_id\": 0, \"left\": 1, \"top\": 2, \"width\": 3, "
     "\"height\": 4}]}}\n"},
    {"instances_val.json", lupe_fmt_parse_coco,
     "{\"images\": [{\"id\": 10, \"file_name\": \"a.jpg\", \"width\": 640, \"height\": 480}, {\"id\": 11, "
     "\"file_name\": \"b.jpg\"}], \"annotations\": [{\"image_id\": 10, \"category_id\": 7, \"bbox\": [1.5, 2, 30, "
     "40]}, {\"image_id\": 12, \"category_id\": 7, \"bbox\": [1, 2, 3, 4]}, {\"image_id\": 11, \"category_id\": 3, "
     "\"bbox\": [1, 2, 3, 4]}], \"categories\": [{\"id\": 7, \"name\": \"rust\"}, {\"id\": 3, \"name\": "
     "\"scratch\"}]}"},
    {"a.xml", lupe_fmt_parse_voc,
     "<?xml version=\"1.0\"?>\n<annotation><filename>a &amp; b.jpg</filename>\n"
     "<size><width>500</width><height>375</height></size>\n"
     "<object><name>dog</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax><ymax>220</ymax></bndbox>"
     "</object>\n<object><name>cat</name><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
     "</bndbox></object>\n<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
     "</bndbox></object></annotation>\n"},
    {"labels/a.txt", parse_yolo, "0 0.5 0.5 0.25 0.5\n1 0.1 0.2 0.2 0.4\n7 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n"},
    {"data.yaml", parse_yaml, "nc: 3\nnames:\n  0: scratch\n  2: 'r''ust'\n  1: dent\n"},
};
#define NSAMPLES (sizeof samples / sizeof *samples)

/* A summary to compare documents by: counts and a checksum of the boxes. */
static void summary(const lupe_fmt_doc *doc, char *out, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < doc->nitems; i++)
        for (size_t k = 0; k < doc->items[i].nboxes; k++) {
            const lupe_fmt_box *b = &doc->items[i].boxes[k];
            sum += b->cls + b->x * 3 + b->y * 5 + b->w * 7 + b->h * 11;
        }
    snprintf(out, n, "%zu items, %zu classes, %zu skipped, %zu boxes, sum %.6f", doc->nitems, doc->nclasses,
             doc->nskipped, fx_boxes(doc), sum);
}

/* Parses with the contract checked: on error no trace in the document. */
static lupe_status parse_checked(const sample *s, const char *buf, size_t len)
{
    size_t live = fx_live();
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    assert_non_null(doc);
    lupe_status st = s->parse(doc, buf, len, s->name);
    if (st) {
        assert_true(lupe_errmsg()[0] != 0);
        assert_int_equal(doc->nitems + doc->nclasses + doc->nskipped, 0);
    }
    const char *bad = fmt__doc_check(doc);
    if (bad) fail_msg("%s: a mutated input gave a document with %s", s->name, bad);
    lupe_fmt_doc_free(doc);
    assert_int_equal(fx_live(), live);
    return st;
}

static void test_oom_parsers(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        const sample *s = &samples[i];
        size_t len = strlen(s->text), live = fx_live();
        char want[200], got[200];
        lupe_fmt_doc *ref = lupe_fmt_doc_new();
        assert_int_equal(s->parse(ref, s->text, len, s->name), LUPE_OK);
        summary(ref, want, sizeof want);
        lupe_fmt_doc_free(ref);
        int failures = 0;
        for (uint64_t n = 1;; n++) {
            lupe_fmt_doc *doc = lupe_fmt_doc_new();
            assert_non_null(doc);
            lupe_alloc_fail_nth(n);
            lupe_status st = s->parse(doc, s->text, len, s->name);
            lupe_alloc_fail_nth(0);
            if (st == LUPE_OK) {
                summary(doc, got, sizeof got);
                lupe_fmt_doc_free(doc);
                assert_string_equal(got, want);
                break;
            }
            if (st != LUPE_ENOMEM) fail_msg("%s, allocation %llu failing: status %d: %s", s->name,
                                            (unsigned long long)n, st, lupe_errmsg());
            assert_int_equal(doc->nitems + doc->nclasses + doc->nskipped, 0);
            lupe_fmt_doc_free(doc);
            assert_int_equal(fx_live(), live);
            failures++;
        }
        printf("# %s: %d allocations failed in turn, each cleanly\n", s->name, failures);
        assert_true(failures > 3);
    }
}

static void test_mutations(void **state)
{
    (void)state;
    uint32_t rng = 2463534242u;
    static const char spice[] = "\"'[]{}<>,:;\n\r\t\\&#-.0e9 \0\xff";
    for (size_t i = 0; i < NSAMPLES; i++) {
        const sample *s = &samples[i];
        size_t len = strlen(s->text);
        int ok = 0, bad = 0;
        /* Every truncation: where a file cut short by a crash can end. */
        for (size_t cut = 0; cut <= len; cut++) {
            if (parse_checked(s, s->text, cut)) bad++;
            else ok++;
        }
        char *buf = malloc(len + 16);
        for (int round = 0; round < 3000; round++) {
            memcpy(buf, s->text, len);
            size_t n = len;
            int edits = 1 + (int)(rng % 4);
            for (int e = 0; e < edits; e++) {
                rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
                size_t at = rng % n;
                char c = spice[(rng >> 8) % (sizeof spice - 1)];
                if ((rng >> 16) % 3 == 0 && n < len + 15) { /* insert */
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                } else if ((rng >> 16) % 3 == 1 && n > 1) { /* delete */
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                } else {
                    buf[at] = c;
                }
            }
            if (parse_checked(s, buf, n)) bad++;
            else ok++;
        }
        free(buf);
        printf("# %s: %d inputs read, %d refused\n", s->name, ok, bad);
    }
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

/* Folder readers: every allocation failing in turn. */
static void test_oom_folders(void **state)
{
    (void)state;
    const char *y = tu_path("oom-yolo"), *v = tu_path("oom-voc"), *c = tu_path("oom-coco");
    fx_mkdir(y);
    put(y, "classes.txt", "scratch\ndent\n");
    put(y, "images/train/a.jpg", "A");
    put(y, "images/val/b.png", "B");
    put(y, "labels/train/a.txt", "0 0.5 0.5 0.25 0.5\n1 0.1 0.2 0.2 0.4\n");
    put(y, "labels/test/c.txt", "0 0.5 0.5 0.25 0.5\n");
    fx_mkdir(v);
    put(v, "labels.txt", "cat\n");
    put(v, "JPEGImages/a.jpg", "A");
    put(v, "Annotations/a.xml", samples[3].text);
    put(v, "Annotations/b.xml", "<annotation><bad></annotation>");
    put(v, "ImageSets/Main/train.txt", "a\n");
    fx_mkdir(c);
    put(c, "images/a.jpg", "A");
    put(c, "annotations/instances_train.json", samples[2].text);
    const struct {
        lupe_fmt_kind kind;
        const char *path;
    } cases[] = {{LUPE_FMT_YOLO, y}, {LUPE_FMT_VOC, v}, {LUPE_FMT_COCO, c}};
    for (size_t i = 0; i < 3; i++) {
        size_t live = fx_live();
        lupe_fmt_doc *doc = NULL;
        char want[200], got[200];
        assert_int_equal(lupe_fmt_read(cases[i].kind, cases[i].path, &doc), LUPE_OK);
        summary(doc, want, sizeof want);
        lupe_fmt_doc_free(doc);
        for (uint64_t n = 1;; n++) {
            lupe_alloc_fail_nth(n);
            lupe_status st = lupe_fmt_read(cases[i].kind, cases[i].path, &doc);
            lupe_alloc_fail_nth(0);
            if (st == LUPE_OK) {
                summary(doc, got, sizeof got);
                lupe_fmt_doc_free(doc);
                assert_string_equal(got, want);
                break;
            }
            if (st != LUPE_ENOMEM) fail_msg("%s, allocation %llu failing: %s", cases[i].path, (unsigned long long)n,
                                            lupe_errmsg());
            assert_null(doc);
            assert_int_equal(fx_live(), live);
        }
    }
}

/* Writers: every allocation failing in turn leaves neither OUT nor
 * OUT.partial, and the next attempt succeeds. */
static void test_oom_writers(void **state)
{
    (void)state;
    const char *src = tu_path("img.jpg");
    fx_write_str(src, "not really a jpeg");
    lupe_fmt_doc *doc = lupe_fmt_doc_new();
    assert_int_equal(lupe_fmt_doc_add_class(doc, "scratch", NULL), LUPE_OK);
    assert_int_equal(lupe_fmt_doc_add_class(doc, "dent", NULL), LUPE_OK);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%d.jpg", i);
        lupe_fmt_item *it = lupe_fmt_doc_add_item(doc, name);
        it->width = 100, it->height = 80, it->labeled = 1;
        it->split = i ? lupe_strdup(i == 1 ? "val" : "test") : NULL;
        it->src_path = lupe_strdup(src);
        it->export_name = lupe_strdup(name);
        for (int k = 0; k < i; k++) assert_int_equal(lupe_fmt_item_add_box(it, k % 2, 1, 2, 3.5, 4), LUPE_OK);
    }
    for (int kind = 0; kind < LUPE_FMT_COUNT; kind++) {
        char out[1100], partial[1200];
        snprintf(out, sizeof out, "%s-oom", tu_path(lupe_fmt_name((lupe_fmt_kind)kind)));
        snprintf(partial, sizeof partial, "%s.partial", out);
        size_t live = fx_live();
        int failures = 0;
        for (uint64_t n = 1;; n++) {
            lupe_alloc_fail_nth(n);
            lupe_status st = lupe_fmt_write((lupe_fmt_kind)kind, doc, out);
            lupe_alloc_fail_nth(0);
            if (st == LUPE_OK) break;
            if (st != LUPE_ENOMEM) fail_msg("%s, allocation %llu failing: %s", out, (unsigned long long)n, lupe_errmsg());
            assert_false(lupe_path_exists(out));
            assert_false(lupe_path_exists(partial));
            assert_int_equal(fx_live(), live);
            failures++;
        }
        assert_false(lupe_path_exists(partial));
        lupe_fmt_doc *back = NULL;
        assert_int_equal(lupe_fmt_read((lupe_fmt_kind)kind, out, &back), LUPE_OK);
        assert_int_equal(back->nitems, 3);
        assert_int_equal(fx_boxes(back), 3);
        lupe_fmt_doc_free(back);
        printf("# %s writer: %d allocations failed in turn, each cleanly\n", lupe_fmt_name((lupe_fmt_kind)kind),
               failures);
    }
    lupe_fmt_doc_free(doc);
}

static void test_file_cap(void **state)
{
    (void)state;
    /* A sparse file one byte over 1 GiB: refused from its size alone. */
    const char *p = tu_path("huge.csv");
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, ((off_t)1 << 30) + 1), 0);
    close(fd);
    lupe_fmt_doc *doc = NULL;
    assert_int_equal(lupe_fmt_read(LUPE_FMT_GT_CSV, p, &doc), LUPE_ELIMIT);
    fx_err_has("1073741825 bytes is over the limit of 1073741824");
    assert_null(doc);
    unlink(p);
}

int main(void)
{
    /* jansson's allocations go through the funnel, so they count and fail. */
    lupe_json_use_funnel();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_parsers), cmocka_unit_test(test_mutations), cmocka_unit_test(test_oom_folders),
        cmocka_unit_test(test_oom_writers), cmocka_unit_test(test_file_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
