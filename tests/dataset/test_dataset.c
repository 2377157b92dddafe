/*
 * Tests of dataset versions on real metal-tag crops: grouped, deterministic
 * splits; identical ids for identical content, also across workspaces;
 * stable splits across versions; diff and stats.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testutil.h"
#include "lupe/dataset.h"

#define GROUP_RE "image-(.*)-cropped"

/* A workspace holding the first n .jpg crops of the bad/ folder, each with
 * an approved label of one box (a few negatives among them). */
static lupe_ws *make_ws(const char *name, int n)
{
    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_init(tu_path(name), &ws), LUPE_OK);
    const char *dir = tu_shared("datasets/metal-tags/images/bad");
    struct dirent **ents = NULL;
    int m = scandir(dir, &ents, NULL, alphasort), k = 0;
    char **paths = calloc((size_t)m, sizeof *paths);
    for (int i = 0; i < m; i++) {
        size_t len = strlen(ents[i]->d_name);
        if (k < n && len > 4 && strcmp(ents[i]->d_name + len - 4, ".jpg") == 0) {
            paths[k] = malloc(1200);
            snprintf(paths[k], 1200, "%s/%s", dir, ents[i]->d_name);
            k++;
        }
        free(ents[i]);
    }
    free(ents);
    lupe_ingest_opts o = lupe_ingest_default_opts(ws);
    lupe_ingest_summary sum;
    assert_int_equal(lupe_ingest_paths(ws, (const char *const *)paths, k, &o, &sum), LUPE_OK);
    assert_int_equal(sum.stored, n);
    const char *classes[] = {"scratch"};
    assert_int_equal(lupe_labelset_create(ws, "default", classes, 1, "t"), LUPE_OK);
    for (int i = 0; i < k; i++) {
        char hex[65];
        assert_int_equal(lupe_sha256_file(paths[i], hex), LUPE_OK);
        lupe_box b = {0, 10 + i, 20, 30, 40};
        lupe_label_new ln = {.boxes = &b, .nboxes = i % 5 == 4 ? 0 : 1, .status = LUPE_LABEL_APPROVED,
                             .source = LUPE_SRC_IMPORT, .author = "t"};
        assert_int_equal(lupe_label_add(ws, "default", hex, &ln, NULL), LUPE_OK);
        free(paths[i]);
    }
    free(paths);
    return ws;
}

static lupe_dataset_opts opts(void)
{
    lupe_dataset_opts o = lupe_dataset_default_opts();
    o.name = "tags";
    o.group_by = GROUP_RE;
    o.author = "t";
    return o;
}

static void test_grouped_deterministic(void **state)
{
    (void)state;
    lupe_ws *ws = make_ws("ws1", 80);
    lupe_dataset_opts o = opts();
    lupe_dataset_info a, b;
    int unchanged = -1;
    assert_int_equal(lupe_dataset_create(ws, &o, &a, &unchanged), LUPE_OK);
    assert_int_equal(unchanged, 0);
    assert_int_equal(a.version, 1);
    assert_int_equal(a.items, 80);
    assert_int_equal(a.boxes, 64);
    /* 20 photos of 4 crops, 70/15/15 of the groups. */
    assert_int_equal(a.split_items[0] + a.split_items[1] + a.split_items[2], 80);
    assert_true(a.split_items[0] >= 52 && a.split_items[0] <= 60);
    assert_true(a.split_items[1] >= 8 && a.split_items[2] >= 8);
    lupe_manifest *m = NULL;
    assert_int_equal(lupe_dataset_load(ws, "tags@1", &m), LUPE_OK);
    lupe_dataset_stats s;
    assert_int_equal(lupe_dataset_stats_get(m, &s), LUPE_OK);
    assert_int_equal(s.groups_split, 0);
    assert_int_equal(s.groups[0] + s.groups[1] + s.groups[2], 20);
    assert_int_equal(s.negatives[0] + s.negatives[1] + s.negatives[2], 16);
    assert_int_equal(s.class_boxes[0] + s.class_boxes[1] + s.class_boxes[2], 64);
    lupe_dataset_stats_cleanup(&s);
    for (int64_t i = 0; i < m->nitems; i++) {
        assert_non_null(strstr(m->items[i].file_name, m->items[i].group));
        assert_int_equal(m->items[i].width, 450);
    }
    lupe_manifest_free(m);

    /* The same labels and options: no new version, same id. */
    assert_int_equal(lupe_dataset_create(ws, &o, &b, &unchanged), LUPE_OK);
    assert_int_equal(unchanged, 1);
    assert_string_equal(a.id, b.id);
    assert_int_equal(b.version, 1);
    lupe_dataset_info_cleanup(&b);

    /* Another workspace with the same content gives the same id. */
    lupe_ws *ws2 = make_ws("ws2", 80);
    assert_int_equal(lupe_dataset_create(ws2, &o, &b, NULL), LUPE_OK);
    assert_string_equal(a.id, b.id);
    lupe_dataset_info_cleanup(&b);
    /* Another seed splits differently. */
    o.name = "seeded";
    o.seed = 7;
    assert_int_equal(lupe_dataset_create(ws2, &o, &b, NULL), LUPE_OK);
    assert_string_not_equal(a.id, b.id);
    lupe_dataset_info_cleanup(&b);
    lupe_ws_close(ws2);

    /* Lookups. */
    assert_int_equal(lupe_dataset_get(ws, "tags", &b), LUPE_OK);
    assert_string_equal(b.id, a.id);
    lupe_dataset_info_cleanup(&b);
    char prefix[13];
    memcpy(prefix, a.id, 12);
    prefix[12] = 0;
    assert_int_equal(lupe_dataset_get(ws, prefix, &b), LUPE_OK);
    assert_int_equal(b.version, 1);
    lupe_dataset_info_cleanup(&b);
    assert_int_equal(lupe_dataset_get(ws, "tags@9", &b), LUPE_ENOTFOUND);
    assert_int_equal(lupe_dataset_get(ws, "tags@x", &b), LUPE_EARG);
    lupe_dataset_info_cleanup(&a);
    lupe_ws_close(ws);
}

typedef struct lines {
    int n, changed, added;
} lines;

static void on_line(void *ud, const char *text)
{
    lines *l = ud;
    l->n++;
    l->changed += strstr(text, "box changed") != NULL;
    l->added += strncmp(text, "added ", 6) == 0;
}

static void test_versions_keep_splits(void **state)
{
    (void)state;
    lupe_ws *ws = make_ws("ws3", 40);
    lupe_dataset_opts o = opts();
    lupe_dataset_info v1, v2;
    assert_int_equal(lupe_dataset_create(ws, &o, &v1, NULL), LUPE_OK);
    /* More images arrive, and one label is corrected. */
    const char *more[] = {tu_shared("datasets/metal-tags/images/good")};
    lupe_ingest_opts io = lupe_ingest_default_opts(ws);
    lupe_ingest_summary sum;
    assert_int_equal(lupe_ingest_paths(ws, more, 1, &io, &sum), LUPE_OK);
    lupe_manifest *m1 = NULL;
    assert_int_equal(lupe_dataset_load(ws, "tags@1", &m1), LUPE_OK);
    int added = 0;
    /* Label every good/ image (they join as new groups). */
    {
        lupe_box b = {0, 5, 5, 20, 20};
        lupe_label_new ln = {.boxes = &b, .nboxes = 1, .status = LUPE_LABEL_APPROVED, .source = LUPE_SRC_HUMAN, .author = "t"};
        struct dirent **ents = NULL;
        const char *dir = tu_shared("datasets/metal-tags/images/good");
        int n = scandir(dir, &ents, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            if (ents[i]->d_name[0] != '.') {
                char p[1200], hex[65];
                snprintf(p, sizeof p, "%s/%s", dir, ents[i]->d_name);
                assert_int_equal(lupe_sha256_file(p, hex), LUPE_OK);
                assert_int_equal(lupe_label_add(ws, "default", hex, &ln, NULL), LUPE_OK);
                added++;
            }
            free(ents[i]);
        }
        free(ents);
    }
    lupe_box fixed = {0, 11, 21, 30, 40};
    lupe_label_new ln = {.boxes = &fixed, .nboxes = 1, .status = LUPE_LABEL_APPROVED, .source = LUPE_SRC_HUMAN, .author = "t"};
    assert_int_equal(lupe_label_add(ws, "default", m1->items[0].image, &ln, NULL), LUPE_OK);
    o.ratios[0] = 50, o.ratios[1] = 25, o.ratios[2] = 25; /* even new ratios do not move old images */
    assert_int_equal(lupe_dataset_create(ws, &o, &v2, NULL), LUPE_OK);
    assert_int_equal(v2.version, 2);
    assert_string_equal(v2.parent, v1.id);
    assert_int_equal(v2.items, 40 + added);
    lupe_manifest *m2 = NULL;
    assert_int_equal(lupe_dataset_load(ws, "tags@2", &m2), LUPE_OK);
    lupe_dataset_diff d;
    lines l = {0};
    assert_int_equal(lupe_dataset_diff_get(m1, m2, on_line, &l, &d), LUPE_OK);
    assert_int_equal(d.added, added);
    assert_int_equal(l.added, added);
    assert_int_equal(d.removed, 0);
    assert_int_equal(d.moved, 0);
    assert_int_equal(d.relabeled, 1);
    assert_int_equal(d.boxes_changed + d.boxes_added, 1);
    lupe_manifest_free(m1);
    lupe_manifest_free(m2);
    lupe_dataset_info_cleanup(&v1);
    lupe_dataset_info_cleanup(&v2);
    lupe_ws_close(ws);
}

static void test_bad_options(void **state)
{
    (void)state;
    lupe_ws *ws = make_ws("ws4", 8);
    lupe_dataset_opts o = opts();
    lupe_dataset_info d;
    o.group_by = "([unclosed";
    assert_int_equal(lupe_dataset_create(ws, &o, &d, NULL), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "--group-by"));
    o = opts();
    o.ratios[0] = 90;
    assert_int_equal(lupe_dataset_create(ws, &o, &d, NULL), LUPE_EARG);
    o = opts();
    o.name = "bad name";
    assert_int_equal(lupe_dataset_create(ws, &o, &d, NULL), LUPE_EARG);
    o = opts();
    o.labelset = "nope";
    assert_int_equal(lupe_dataset_create(ws, &o, &d, NULL), LUPE_ENOTFOUND);
    const char *c[] = {"dent"};
    assert_int_equal(lupe_labelset_create(ws, "empty", c, 1, "t"), LUPE_OK);
    o.labelset = "empty";
    assert_int_equal(lupe_dataset_create(ws, &o, &d, NULL), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "no approved labels"));
    int r[3];
    assert_int_equal(lupe_dataset_parse_ratios("80/10/10", r), 0);
    assert_int_equal(r[1], 10);
    assert_int_equal(lupe_dataset_parse_ratios("80/10", r), -1);
    assert_int_equal(lupe_dataset_parse_ratios("80/10/20", r), -1);
    /* Tag grouping, and split lists. */
    o = opts();
    o.group_by = "tag:photo";
    assert_int_equal(lupe_dataset_create(ws, &o, &d, NULL), LUPE_OK);
    assert_int_equal(d.items, 8);
    lupe_dataset_info_cleanup(&d);
    lupe_ws_close(ws);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped_deterministic),
        cmocka_unit_test(test_versions_keep_splits),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
