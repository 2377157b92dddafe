/*
 * Tests of label sets, label revisions, box checks, review rules, the
 * labeling queue and jobs, on a workspace holding three real photos.
 */
#include <string.h>

#include "lib/testutil.h"
#include "lupe/label.h"

static lupe_ws *ws;
static char ids[3][65];

static int collect(void *ud, const lupe_image *im)
{
    int *n = ud;
    if (*n < 3) memcpy(ids[*n], im->id, 65);
    (*n)++;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    lupe_base_init();
    if (lupe_ws_init(tu_path("ws"), &ws)) return -1;
    lupe_ingest_opts o = lupe_ingest_default_opts(ws);
    lupe_ingest_summary sum;
    const char *p[] = {tu_shared("datasets/metal-tags/images/good")};
    if (lupe_ingest_paths(ws, p, 1, &o, &sum) || sum.stored < 3) return -1;
    int n = 0;
    lupe_image_filter f = {.limit = 3};
    lupe_images_each(ws, &f, collect, &n);
    const char *classes[] = {"scratch", "dent"};
    return lupe_labelset_create(ws, "default", classes, 2, "admin") ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    lupe_ws_close(ws);
    return 0;
}

static void test_labelset_ops(void **state)
{
    (void)state;
    const char *c[] = {"a"};
    assert_int_equal(lupe_labelset_create(ws, "default", c, 1, "x"), LUPE_EEXIST);
    assert_int_equal(lupe_labelset_create(ws, "bad,name", c, 1, "x"), LUPE_EARG);
    assert_int_equal(lupe_labelset_create(ws, "other", c, 0, "x"), LUPE_EARG);
    assert_int_equal(lupe_labelset_create(ws, "other", c, 1, "x"), LUPE_OK);
    assert_int_equal(lupe_labelset_add_class(ws, "other", "b", "x"), LUPE_OK);
    assert_int_equal(lupe_labelset_add_class(ws, "other", "b", "x"), LUPE_EEXIST);
    assert_int_equal(lupe_labelset_rename_class(ws, "other", "a", "aa", "y"), LUPE_OK);
    assert_int_equal(lupe_labelset_rename_class(ws, "other", "zz", "q", "y"), LUPE_ENOTFOUND);
    assert_int_equal(lupe_labelset_rename_class(ws, "other", "aa", "b", "y"), LUPE_EEXIST);
    lupe_labelset s;
    assert_int_equal(lupe_labelset_get(ws, "other", &s), LUPE_OK);
    assert_int_equal(s.nclasses, 2);
    assert_string_equal(s.classes[0], "aa"); /* renamed, same id */
    assert_string_equal(s.classes[1], "b");
    assert_int_equal(lupe_labelset_class(&s, "b"), 1);
    assert_int_equal(lupe_labelset_class(&s, "0"), 0);
    assert_int_equal(lupe_labelset_class(&s, "nope"), -1);
    lupe_labelset_cleanup(&s);
    assert_int_equal(lupe_labelset_get(ws, "missing", &s), LUPE_ENOTFOUND);
}

static void test_box_checks(void **state)
{
    (void)state;
    lupe_labelset s;
    assert_int_equal(lupe_labelset_get(ws, "default", &s), LUPE_OK);
    lupe_box in[2] = {{0, 440, 290, 20, 20}, {1, 10, 10, 5, 5}}, out[2];
    int clipped = 0;
    assert_int_equal(lupe_label_check_boxes("abcdef012345", 450, 300, &s, LUPE_OOB_CLIP, in, 2, out, &clipped), LUPE_OK);
    assert_int_equal(clipped, 1);
    assert_true(out[0].w == 10 && out[0].h == 10);
    assert_int_equal(lupe_label_check_boxes("abcdef012345", 450, 300, &s, LUPE_OOB_REJECT, in, 2, out, NULL), LUPE_EARG);
    assert_string_equal(lupe_errmsg(), "image abcdef012345, box 1 (scratch 440,290 20x20): extends past the 450x300 image");
    lupe_box deg = {0, 5, 5, 0.5, 10};
    assert_int_equal(lupe_label_check_boxes("abcdef012345", 450, 300, &s, LUPE_OOB_CLIP, &deg, 1, out, NULL), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "degenerate"));
    lupe_box unknown = {7, 5, 5, 10, 10};
    assert_int_equal(lupe_label_check_boxes("abcdef012345", 450, 300, &s, LUPE_OOB_CLIP, &unknown, 1, out, NULL), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "class 7 is not in label set 'default'"));
    lupe_box outside = {0, 500, 5, 10, 10};
    assert_int_equal(lupe_label_check_boxes("abcdef012345", 450, 300, &s, LUPE_OOB_CLIP, &outside, 1, out, NULL), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "lies outside"));
    lupe_labelset_cleanup(&s);
}

static int count_revs(void *ud, const lupe_label_rev *r)
{
    int *n = ud;
    (*n)++;
    assert_int_equal(r->id > 0, 1);
    return 0;
}

static void test_revisions_and_review(void **state)
{
    (void)state;
    lupe_box b[2] = {{1, 50, 60, 20, 10}, {0, 10.5, 20, 30, 40}};
    lupe_label_new n = {.boxes = b, .nboxes = 2, .status = LUPE_LABEL_SUBMITTED, .source = LUPE_SRC_HUMAN, .author = "ana"};
    int64_t r1, r2, r3, r4;
    char prefix[9];
    memcpy(prefix, ids[0], 8);
    prefix[8] = 0;
    assert_int_equal(lupe_label_add(ws, "default", prefix, &n, &r1), LUPE_OK);
    /* The reviewer may not be the author, and only submitted labels are reviewed. */
    lupe_review rv = {.action = LUPE_REVIEW_APPROVE, .reviewer = "ana"};
    assert_int_equal(lupe_label_review(ws, "default", ids[0], &rv, &r2), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "cannot also review"));
    rv = (lupe_review){.action = LUPE_REVIEW_REJECT, .reviewer = "ben", .verdict = "missed_object", .comment = "left edge"};
    assert_int_equal(lupe_label_review(ws, "default", ids[0], &rv, &r2), LUPE_OK);
    assert_int_equal(lupe_label_review(ws, "default", ids[0], &rv, &r3), LUPE_EARG); /* rejected, not submitted */
    assert_non_null(strstr(lupe_errmsg(), "is rejected"));
    /* Resubmitted with the boxes in another order: same canonical hash. */
    lupe_box b2[2] = {b[1], b[0]};
    n.boxes = b2;
    assert_int_equal(lupe_label_add(ws, "default", ids[0], &n, &r3), LUPE_OK);
    lupe_label_rev a, c;
    assert_int_equal(lupe_label_get(ws, r1, &a), LUPE_OK);
    assert_int_equal(lupe_label_get(ws, r3, &c), LUPE_OK);
    assert_string_equal(a.hash, c.hash);
    assert_int_equal(c.parent_id, r2);
    assert_int_equal(a.parent_id, 0);
    assert_int_equal(c.nboxes, 2);
    assert_int_equal(c.boxes[0].cls, 0); /* canonical order: by class */
    assert_true(c.boxes[0].x == 10.5);
    lupe_label_rev_cleanup(&a);
    lupe_label_rev_cleanup(&c);
    lupe_box fixed = {0, 12, 20, 30, 40};
    rv = (lupe_review){.action = LUPE_REVIEW_ADJUST, .reviewer = "ben", .boxes = &fixed, .nboxes = 1};
    assert_int_equal(lupe_label_review(ws, "default", ids[0], &rv, &r4), LUPE_OK);
    lupe_label_rev cur;
    assert_int_equal(lupe_label_latest(ws, "default", ids[0], &cur), LUPE_OK);
    assert_int_equal(cur.id, r4);
    assert_int_equal(cur.status, LUPE_LABEL_APPROVED);
    assert_string_equal(cur.author, "ben");
    assert_string_equal(cur.verdict, "box_inaccurate");
    assert_int_equal(cur.nboxes, 1);
    assert_true(cur.boxes[0].x == 12);
    lupe_label_rev_cleanup(&cur);
    int count = 0;
    assert_int_equal(lupe_label_history(ws, "default", ids[0], count_revs, &count), LUPE_OK);
    assert_int_equal(count, 4);
    assert_int_equal(lupe_label_latest(ws, "default", ids[2], &cur), LUPE_ENOTFOUND);
}

typedef struct qseen {
    int n;
    char reason[16][32];
    char id[16][65];
} qseen;

static int collect_q(void *ud, const lupe_queue_item *it)
{
    qseen *q = ud;
    if (q->n < 16) {
        snprintf(q->reason[q->n], 32, "%s", it->reason);
        memcpy(q->id[q->n], it->image_id, 65);
    }
    q->n++;
    return 0;
}

static void test_queue_and_jobs(void **state)
{
    (void)state;
    qseen q = {0};
    assert_int_equal(lupe_label_queue(ws, "default", 0, collect_q, &q), LUPE_OK);
    int total = q.n;
    /* ids[0] is approved, so it is not in the queue. */
    for (int i = 0; i < q.n && i < 16; i++) assert_string_not_equal(q.id[i], ids[0]);
    /* A labeled negative (approved, no boxes) leaves the queue too. */
    lupe_label_new neg = {.nboxes = 0, .status = LUPE_LABEL_SUBMITTED, .source = LUPE_SRC_HUMAN, .author = "ana"};
    int64_t r;
    assert_int_equal(lupe_label_add(ws, "default", ids[1], &neg, &r), LUPE_OK);
    memset(&q, 0, sizeof q);
    assert_int_equal(lupe_label_queue(ws, "default", 0, collect_q, &q), LUPE_OK);
    assert_int_equal(q.n, total);
    assert_string_equal(q.reason[0], "needs review"); /* priority over unlabeled */
    assert_string_equal(q.id[0], ids[1]);
    lupe_review rv = {.action = LUPE_REVIEW_APPROVE, .reviewer = "ben"};
    assert_int_equal(lupe_label_review(ws, "default", ids[1], &rv, &r), LUPE_OK);
    memset(&q, 0, sizeof q);
    assert_int_equal(lupe_label_queue(ws, "default", 0, collect_q, &q), LUPE_OK);
    assert_int_equal(q.n, total - 1);
    /* A rejected label goes to the front. */
    lupe_label_new sub = {.nboxes = 0, .status = LUPE_LABEL_SUBMITTED, .source = LUPE_SRC_HUMAN, .author = "ana"};
    assert_int_equal(lupe_label_add(ws, "default", ids[2], &sub, &r), LUPE_OK);
    rv = (lupe_review){.action = LUPE_REVIEW_REJECT, .reviewer = "ben", .verdict = "missed_object"};
    assert_int_equal(lupe_label_review(ws, "default", ids[2], &rv, &r), LUPE_OK);
    memset(&q, 0, sizeof q);
    assert_int_equal(lupe_label_queue(ws, "default", 2, collect_q, &q), LUPE_OK);
    assert_int_equal(q.n, 2);
    assert_string_equal(q.reason[0], "rejected");
    assert_string_equal(q.reason[1], "unlabeled");

    /* Jobs take queue work and do not hand the same image out twice. */
    int64_t j1, j2;
    int n1, n2;
    assert_int_equal(lupe_label_job_create(ws, "default", 2, "first", "ana", "ana", "boss", &j1, &n1), LUPE_EARG);
    assert_int_equal(lupe_label_job_create(ws, "default", 2, "first", "ana", "ben", "boss", &j1, &n1), LUPE_OK);
    assert_int_equal(n1, 2);
    assert_int_equal(lupe_label_job_create(ws, "default", 1000, "rest", "cy", "ben", "boss", &j2, &n2), LUPE_OK);
    assert_int_equal(n1 + n2, total - 1); /* every image that needs labeling, once */
    lupe_label_job j;
    assert_int_equal(lupe_label_job_get(ws, j1, &j), LUPE_OK);
    assert_int_equal(j.items, 2);
    assert_string_equal(j.assignee, "ana");
    assert_int_equal(j.rejected, 1); /* ids[2] went first */
    lupe_label_job_cleanup(&j);
    assert_int_equal(lupe_label_job_create(ws, "default", 5, NULL, NULL, NULL, "boss", &j2, &n2), LUPE_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labelset_ops),          cmocka_unit_test(test_box_checks),
        cmocka_unit_test(test_revisions_and_review), cmocka_unit_test(test_queue_and_jobs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
