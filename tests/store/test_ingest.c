/*
 * Tests of ingest, listing and fsck on a folder that mixes real metal-tag
 * JPEGs with duplicates, a PNG under a misleading name, and broken files:
 * empty, text, truncated and corrupt. Also sweeps allocation failures
 * through a whole ingest.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libexif/exif-data.h>

#include "lib/testutil.h"
#include "lupe/store.h"

static char good[3][1024];

static void make_inputs(const char *dir)
{
    assert_int_equal(lupe_mkdirs(dir), LUPE_OK);
    const char *src = tu_shared("datasets/metal-tags/images/bad");
    struct dirent **ents = NULL;
    int n = scandir(src, &ents, NULL, alphasort), k = 0;
    assert_true(n > 5);
    for (int i = 0; i < n; i++) {
        if (k < 3 && strstr(ents[i]->d_name, ".jpg")) snprintf(good[k++], sizeof good[0], "%s/%s", src, ents[i]->d_name);
        free(ents[i]);
    }
    free(ents);
    char path[1200];
    size_t len = 0;
    uint8_t *jpg = NULL;
    for (int i = 0; i < 3; i++) {
        uint8_t *b = tu_read(good[i], &len);
        snprintf(path, sizeof path, "%s/good%d.jpg", dir, i);
        tu_write(path, b, len);
        if (i == 0) jpg = b;
        else lupe_free(b);
    }
    len = 0;
    lupe_free(tu_read(good[0], &len));
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(lupe_mkdirs(path), LUPE_OK);
    snprintf(path, sizeof path, "%s/sub/copy.bin", dir); /* same bytes, other name */
    tu_write(path, jpg, len);
    snprintf(path, sizeof path, "%s/sub/truncated.jpg", dir);
    tu_write(path, jpg, len / 2);
    /* An end-of-image marker in the middle of the entropy-coded data. */
    uint8_t *bad = lupe_malloc(len);
    memcpy(bad, jpg, len);
    bad[len / 2] = 0xFF;
    bad[len / 2 + 1] = 0xD9;
    snprintf(path, sizeof path, "%s/sub/corrupt.jpg", dir);
    tu_write(path, bad, len);
    lupe_free(bad);
    lupe_free(jpg);
    snprintf(path, sizeof path, "%s/empty.jpg", dir);
    tu_write(path, "", 0);
    snprintf(path, sizeof path, "%s/notes.jpg", dir);
    tu_write(path, "this is not an image\n", 21);
    /* A real PNG named .txt: content decides, not the name. */
    lupe_img *im = lupe_img_new(20, 10, 3);
    for (int i = 0; i < 20 * 10 * 3; i++) im->data[i] = (uint8_t)(i * 7);
    uint8_t *png = NULL;
    size_t plen = 0;
    assert_int_equal(lupe_img_encode_png(im, &png, &plen), LUPE_OK);
    snprintf(path, sizeof path, "%s/picture.txt", dir);
    tu_write(path, png, plen);
    lupe_free(png);
    lupe_img_free(im);
}

typedef struct seen {
    int stored, dup, rejected;
    char reasons[8][1200];
} seen;

static void on_file(void *ud, const lupe_ingest_event *ev)
{
    seen *s = ud;
    if (ev->outcome == LUPE_INGEST_STORED) s->stored++;
    if (ev->outcome == LUPE_INGEST_DUPLICATE) s->dup++;
    if (ev->outcome == LUPE_INGEST_REJECTED && s->rejected < 8)
        snprintf(s->reasons[s->rejected++], sizeof s->reasons[0], "%s: %s", ev->path, ev->reason);
}

static const char *find_reason(const seen *s, const char *file)
{
    for (int i = 0; i < s->rejected; i++)
        if (strstr(s->reasons[i], file)) return s->reasons[i];
    fail_msg("no rejection for %s", file);
    return NULL;
}

static int count_cb(void *ud, const lupe_image *im)
{
    (*(int *)ud)++;
    assert_true(im->width > 0);
    return 0;
}

static void test_ingest_mixed_folder(void **state)
{
    (void)state;
    const char *in = tu_path("in");
    make_inputs(in);
    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_init(tu_path("ws"), &ws), LUPE_OK);
    const char *tags[] = {"line=3", "sku=T-100"};
    lupe_ingest_opts o = lupe_ingest_default_opts(ws);
    o.source = "camera-1";
    o.tags = tags;
    o.ntags = 2;
    seen s = {0};
    o.on_file = on_file;
    o.ud = &s;
    lupe_ingest_summary sum;
    const char *paths[] = {in};
    assert_int_equal(lupe_ingest_paths(ws, paths, 1, &o, &sum), LUPE_OK);
    assert_int_equal(sum.files, 9);
    assert_int_equal(sum.stored, 4);
    assert_int_equal(sum.duplicate, 1);
    assert_int_equal(sum.rejected, 4);
    assert_int_equal(s.stored, 4);
    assert_non_null(strstr(find_reason(&s, "empty.jpg"), "empty file"));
    assert_non_null(strstr(find_reason(&s, "notes.jpg"), "not a JPEG or PNG"));
    find_reason(&s, "truncated.jpg");
    find_reason(&s, "corrupt.jpg");

    /* Records: metadata and tags. */
    int count = 0;
    assert_int_equal(lupe_images_each(ws, NULL, count_cb, &count), LUPE_OK);
    assert_int_equal(count, 4);
    const char *want[] = {"line=3"};
    lupe_image_filter f = {.tags = want, .ntags = 1};
    count = 0;
    assert_int_equal(lupe_images_each(ws, &f, count_cb, &count), LUPE_OK);
    assert_int_equal(count, 4);
    const char *other[] = {"line=4"};
    f.tags = other;
    count = 0;
    assert_int_equal(lupe_images_each(ws, &f, count_cb, &count), LUPE_OK);
    assert_int_equal(count, 0);
    f = (lupe_image_filter){.source = "camera-1", .limit = 2};
    count = 0;
    assert_int_equal(lupe_images_each(ws, &f, count_cb, &count), LUPE_OK);
    assert_int_equal(count, 2);

    char hex[65];
    assert_int_equal(lupe_sha256_file(good[0], hex), LUPE_OK);
    lupe_image im;
    char prefix[13];
    memcpy(prefix, hex, 12);
    prefix[12] = 0;
    assert_int_equal(lupe_image_get(ws, prefix, &im), LUPE_OK);
    assert_string_equal(im.id, hex);
    assert_int_equal(im.width, 450);
    assert_int_equal(im.height, 300);
    assert_int_equal(im.channels, 3);
    assert_string_equal(im.format, "jpeg");
    assert_string_equal(im.source, "camera-1");
    assert_string_equal(im.tags, "line=3,sku=T-100");
    assert_string_equal(im.captured_from, "file");
    assert_non_null(strstr(im.orig_path, "good0.jpg"));
    lupe_image_cleanup(&im);
    assert_int_equal(lupe_image_get(ws, "0000000000", &im), LUPE_ENOTFOUND);
    assert_int_equal(lupe_image_get(ws, "XYZW", &im), LUPE_EARG);

    /* Again: everything is a duplicate, nothing new is stored. */
    memset(&s, 0, sizeof s);
    assert_int_equal(lupe_ingest_paths(ws, paths, 1, &o, &sum), LUPE_OK);
    assert_int_equal(sum.stored, 0);
    assert_int_equal(sum.duplicate, 5);
    assert_int_equal(sum.rejected, 4);
    lupe_ws_stats st;
    assert_int_equal(lupe_ws_stats_get(ws, &st), LUPE_OK);
    assert_int_equal(st.images, 4);
    assert_int_equal(st.paths, 5); /* good0.jpg and sub/copy.bin share one image */
    assert_int_equal(st.by_format[LUPE_IMG_PNG], 1);

    /* A missing path is a rejection, not a failure. */
    const char *missing[] = {tu_path("no-such-file.jpg")};
    memset(&s, 0, sizeof s);
    assert_int_equal(lupe_ingest_paths(ws, missing, 1, &o, &sum), LUPE_OK);
    assert_int_equal(sum.rejected, 1);

    lupe_fsck_report r;
    assert_int_equal(lupe_fsck(ws, NULL, &r), LUPE_OK);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.warnings, 0);
    assert_int_equal(r.images, 4);
    assert_int_equal(r.objects, 4);
    lupe_ws_close(ws);
}

typedef struct problems {
    int n;
    char msg[8][1200];
} problems;

static void on_problem(void *ud, int is_error, const char *msg)
{
    problems *p = ud;
    if (p->n < 8) snprintf(p->msg[p->n++], sizeof p->msg[0], "%s %s", is_error ? "E" : "W", msg);
}

static void test_fsck_finds_damage(void **state)
{
    (void)state;
    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_init(tu_path("wsf"), &ws), LUPE_OK);
    lupe_ingest_opts o = lupe_ingest_default_opts(ws);
    lupe_ingest_summary sum;
    const char *paths[] = {good[0], good[1]};
    assert_int_equal(lupe_ingest_paths(ws, paths, 2, &o, &sum), LUPE_OK);
    assert_int_equal(sum.stored, 2);
    char id0[65], id1[65];
    assert_int_equal(lupe_sha256_file(good[0], id0), LUPE_OK);
    assert_int_equal(lupe_sha256_file(good[1], id1), LUPE_OK);

    /* An orphan object and a temp file of a dead process are warnings. */
    char orphan[65];
    assert_int_equal(lupe_obj_put(ws, "orphan", 6, orphan, NULL), LUPE_OK);
    tu_write(tu_path("wsf/.lupe/tmp/x.tmp.999999999.abcdef"), "x", 1);
    problems p = {0};
    lupe_fsck_opts fo = {.on_problem = on_problem, .ud = &p};
    lupe_fsck_report r;
    assert_int_equal(lupe_fsck(ws, &fo, &r), LUPE_OK);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.warnings, 2);
    /* --repair removes the temp file at once, the young orphan not yet. */
    fo.repair = 1;
    p.n = 0;
    assert_int_equal(lupe_fsck(ws, &fo, &r), LUPE_OK);
    assert_int_equal(r.repaired, 1);
    assert_false(lupe_path_exists(tu_path("wsf/.lupe/tmp/x.tmp.999999999.abcdef")));
    fo.repair = 0;

    /* Damage: one object's bytes change, another disappears. */
    char *p0 = lupe_obj_path(ws, id0), *p1 = lupe_obj_path(ws, id1);
    tu_write(p0, "damaged", 7);
    assert_int_equal(unlink(p1), 0);
    p.n = 0;
    assert_int_equal(lupe_fsck(ws, &fo, &r), LUPE_OK);
    assert_int_equal(r.errors, 3); /* bad hash, size mismatch, missing */
    int saw_hash = 0, saw_missing = 0;
    for (int i = 0; i < p.n; i++) {
        saw_hash |= strstr(p.msg[i], "hash to") != NULL;
        saw_missing |= strstr(p.msg[i], "object is missing") != NULL && strstr(p.msg[i], id1) != NULL;
    }
    assert_true(saw_hash);
    assert_true(saw_missing);
    /* Quick mode skips hashing but still sees the missing object. */
    fo.quick = 1;
    assert_int_equal(lupe_fsck(ws, &fo, &r), LUPE_OK);
    assert_int_equal(r.errors, 2);
    /* Re-ingesting heals: the object is written again. */
    unlink(p0);
    assert_int_equal(lupe_ingest_paths(ws, paths, 2, &o, &sum), LUPE_OK);
    assert_int_equal(sum.duplicate, 2);
    fo.quick = 0;
    assert_int_equal(lupe_fsck(ws, &fo, &r), LUPE_OK);
    assert_int_equal(r.errors, 0);
    lupe_free(p0);
    lupe_free(p1);
    lupe_ws_close(ws);
}

/* Fails each allocation of an ingest in turn: every run must end cleanly
 * (success or ENOMEM), leak nothing and leave a workspace fsck accepts. */
static void test_ingest_out_of_memory(void **state)
{
    (void)state;
    char in[1024];
    snprintf(in, sizeof in, "%s", tu_path("in"));
    const char *paths[] = {in};
    int completed = 0;
    for (int k = 1; k <= 2000 && !completed; k++) {
        char name[32];
        snprintf(name, sizeof name, "oom%d", k);
        lupe_ws *ws = NULL;
        assert_int_equal(lupe_ws_init(tu_path(name), &ws), LUPE_OK);
        lupe_ingest_opts o = lupe_ingest_default_opts(ws);
        lupe_ingest_summary sum;
        lupe_alloc_stats a, b;
        lupe_alloc_get_stats(&a);
        lupe_alloc_fail_nth((uint64_t)k);
        lupe_status st = lupe_ingest_paths(ws, paths, 1, &o, &sum);
        lupe_alloc_get_stats(&b);
        lupe_alloc_fail_nth(0);
        if (b.failures == a.failures) {
            assert_int_equal(st, LUPE_OK);
            assert_int_equal(sum.stored, 4);
            completed = 1;
        } else if (st != LUPE_OK) {
            assert_int_equal(st, LUPE_ENOMEM);
        }
        assert_int_equal(b.live_bytes, a.live_bytes);
        lupe_fsck_report r;
        assert_int_equal(lupe_fsck(ws, NULL, &r), LUPE_OK);
        assert_int_equal(r.errors, 0);
        lupe_ws_close(ws);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_path(name));
        assert_int_equal(system(cmd), 0);
    }
    assert_true(completed);
}

/* A JPEG whose EXIF says when it was taken: ingest records that time, not
 * the file's. The EXIF block is made with libexif and put in an APP1
 * segment right after the start-of-image marker. */
static void test_ingest_exif_time(void **state)
{
    (void)state;
    lupe_img *im = lupe_img_new(16, 8, 3);
    uint8_t *jpg = NULL;
    size_t jlen = 0;
    assert_int_equal(lupe_img_encode_jpeg(im, 90, &jpg, &jlen), LUPE_OK);
    lupe_img_free(im);
    ExifData *ed = exif_data_new();
    exif_data_set_byte_order(ed, EXIF_BYTE_ORDER_INTEL);
    ExifEntry *e = exif_entry_new();
    exif_content_add_entry(ed->ifd[EXIF_IFD_EXIF], e);
    exif_entry_initialize(e, EXIF_TAG_DATE_TIME_ORIGINAL);
    const char *when = "2021:03:04 05:06:07";
    free(e->data);
    e->data = (unsigned char *)strdup(when);
    e->size = e->components = strlen(when) + 1;
    exif_entry_unref(e);
    unsigned char *ex = NULL;
    unsigned int exlen = 0;
    exif_data_save_data(ed, &ex, &exlen);
    exif_data_unref(ed);
    assert_non_null(ex);
    size_t n = jlen + 4 + exlen;
    uint8_t *out = malloc(n);
    memcpy(out, jpg, 2); /* SOI */
    out[2] = 0xFF, out[3] = 0xE1, out[4] = (uint8_t)((exlen + 2) >> 8), out[5] = (uint8_t)(exlen + 2);
    memcpy(out + 6, ex, exlen);
    memcpy(out + 6 + exlen, jpg + 2, jlen - 2);
    free(ex);
    lupe_free(jpg);
    const char *path = tu_path("exif.jpg");
    tu_write(path, out, n);
    free(out);

    lupe_ws *ws = NULL;
    assert_int_equal(lupe_ws_init(tu_path("wse"), &ws), LUPE_OK);
    lupe_ingest_opts o = lupe_ingest_default_opts(ws);
    lupe_ingest_summary sum;
    const char *paths[] = {path};
    assert_int_equal(lupe_ingest_paths(ws, paths, 1, &o, &sum), LUPE_OK);
    assert_int_equal(sum.stored, 1);
    char hex[65];
    assert_int_equal(lupe_sha256_file(path, hex), LUPE_OK);
    lupe_image rec;
    assert_int_equal(lupe_image_get(ws, hex, &rec), LUPE_OK);
    assert_string_equal(rec.captured_from, "exif");
    assert_int_equal(rec.captured_at, 1614834367); /* 2021-03-04T05:06:07Z */
    lupe_image_cleanup(&rec);
    lupe_ws_close(ws);
}

int main(void)
{
    lupe_base_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_mixed_folder),
        cmocka_unit_test(test_fsck_finds_damage),
        cmocka_unit_test(test_ingest_out_of_memory),
        cmocka_unit_test(test_ingest_exif_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
