/*
 * Label revisions: checking boxes, their canonical stored form and hash,
 * adding a revision and reading an image's history. A revision is never
 * changed after it is written; its parent is the image's previous newest
 * revision in the same label set.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "label/label_internal.h"

static const char *const status_names[] = {"draft", "submitted", "approved", "rejected"};
static const char *const source_names[] = {"human", "model", "import"};

const char *lupe_label_status_name(lupe_label_status s)
{
    return (unsigned)s < 4 ? status_names[s] : "?";
}

const char *lupe_label_source_name(lupe_label_source s)
{
    return (unsigned)s < 3 ? source_names[s] : "?";
}

int lupe_label_status_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, status_names[i]) == 0) return i;
    return -1;
}

int lupe_label_source_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, source_names[i]) == 0) return i;
    return -1;
}

const char *lupe_label_default_author(void)
{
    const char *u = getenv("LUPE_USER");
    if (!u || !*u) u = getenv("USER");
    return u && *u ? u : "unknown";
}

void lupe_label_rev_cleanup(lupe_label_rev *r)
{
    lupe_free(r->boxes);
    lupe_free(r->author);
    lupe_free(r->comment);
    lupe_free(r->verdict);
    memset(r, 0, sizeof *r);
}

lupe_status lupe_label_check_boxes(const char *image_id, int iw, int ih, const lupe_labelset *set,
                                   lupe_oob_policy policy, const lupe_box *in, int n, lupe_box *out, int *out_clipped)
{
    int clipped = 0;
    if (n < 0 || n > LUPE_LABEL_MAX_BOXES)
        return lupe_err(LUPE_ELIMIT, "image %.12s: %d boxes, at most %d allowed", image_id, n, LUPE_LABEL_MAX_BOXES);
    for (int i = 0; i < n; i++) {
        lupe_box b = in[i];
        const char *cname = b.cls >= 0 && b.cls < set->nclasses ? set->classes[b.cls] : NULL;
#define BOXERR(...)                                                                                             \
    lupe_err_ctx(lupe_err(LUPE_EARG, __VA_ARGS__), "image %.12s, box %d (%s %g,%g %gx%g)", image_id, i + 1,      \
                 cname ? cname : "?", b.x, b.y, b.w, b.h)
        if (!cname) return BOXERR("class %d is not in label set '%s' (%d classes)", b.cls, set->name, set->nclasses);
        if (!isfinite(b.x) || !isfinite(b.y) || !isfinite(b.w) || !isfinite(b.h))
            return BOXERR("coordinates must be finite numbers");
        if (b.w < 1 || b.h < 1) return BOXERR("degenerate: width and height must be at least 1 pixel");
        double x0 = b.x, y0 = b.y, x1 = b.x + b.w, y1 = b.y + b.h;
        if (x0 < 0 || y0 < 0 || x1 > iw || y1 > ih) {
            if (policy == LUPE_OOB_REJECT) return BOXERR("extends past the %dx%d image", iw, ih);
            x0 = fmax(x0, 0), y0 = fmax(y0, 0), x1 = fmin(x1, iw), y1 = fmin(y1, ih);
            if (x1 - x0 < 1 || y1 - y0 < 1) return BOXERR("lies outside the %dx%d image", iw, ih);
            b.x = x0, b.y = y0, b.w = x1 - x0, b.h = y1 - y0;
            clipped++;
        }
#undef BOXERR
        out[i] = b;
    }
    if (out_clipped) *out_clipped = clipped;
    return LUPE_OK;
}

static double q3(double v)
{
    return round(v * 1000.0) / 1000.0;
}

static int box_cmp(const void *pa, const void *pb)
{
    const lupe_box *a = pa, *b = pb;
    if (a->cls != b->cls) return a->cls < b->cls ? -1 : 1;
    const double ka[4] = {a->y, a->x, a->w, a->h}, kb[4] = {b->y, b->x, b->w, b->h};
    for (int i = 0; i < 4; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

/* Prints a coordinate with at most three decimals and no trailing zeros,
 * so equal boxes always give equal bytes (and equal hashes). */
static int put_num(char *dst, size_t cap, double v)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, "%.3f", q3(v));
    while (n > 0 && tmp[n - 1] == '0') tmp[--n] = 0;
    if (n > 0 && tmp[n - 1] == '.') tmp[--n] = 0;
    if (strcmp(tmp, "-0") == 0) strcpy(tmp, "0"), n = 1;
    return snprintf(dst, cap, "%s", tmp);
}

char *label__boxes_json(const lupe_box *boxes, int n)
{
    lupe_box *sorted = lupe_malloc((size_t)(n ? n : 1) * sizeof *sorted);
    size_t cap = 3 + (size_t)n * 120; /* "[", "]", NUL and at most 120 bytes a box */
    char *s = lupe_malloc(cap);
    if (!sorted || !s) {
        lupe_free(sorted);
        lupe_free(s);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        sorted[i] = boxes[i];
        sorted[i].x = q3(sorted[i].x), sorted[i].y = q3(sorted[i].y);
        sorted[i].w = q3(sorted[i].w), sorted[i].h = q3(sorted[i].h);
    }
    qsort(sorted, (size_t)n, sizeof *sorted, box_cmp);
    size_t len = 0;
    s[len++] = '[';
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%s[%d,", i ? "," : "", sorted[i].cls);
        len += (size_t)put_num(s + len, cap - len, sorted[i].x);
        s[len++] = ',';
        len += (size_t)put_num(s + len, cap - len, sorted[i].y);
        s[len++] = ',';
        len += (size_t)put_num(s + len, cap - len, sorted[i].w);
        s[len++] = ',';
        len += (size_t)put_num(s + len, cap - len, sorted[i].h);
        s[len++] = ']';
    }
    s[len++] = ']';
    s[len] = 0;
    lupe_free(sorted);
    return s;
}

lupe_status label__boxes_parse(const char *text, lupe_box **out, int *n)
{
    json_t *j = NULL;
    lupe_status st = lupe_json_parse(text, strlen(text), "stored boxes", &j);
    if (st) return lupe_err_ctx(LUPE_ECORRUPT, "label revision");
    size_t cnt = json_is_array(j) ? json_array_size(j) : 0;
    lupe_box *b = lupe_calloc(cnt ? cnt : 1, sizeof *b);
    if (!b) {
        json_decref(j);
        return LUPE_ENOMEM;
    }
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(j, i);
        if (!json_is_array(e) || json_array_size(e) != 5) {
            st = lupe_err(LUPE_ECORRUPT, "stored box %zu is not [cls, x, y, w, h]", i);
            break;
        }
        b[i].cls = (int)json_integer_value(json_array_get(e, 0));
        b[i].x = json_number_value(json_array_get(e, 1));
        b[i].y = json_number_value(json_array_get(e, 2));
        b[i].w = json_number_value(json_array_get(e, 3));
        b[i].h = json_number_value(json_array_get(e, 4));
    }
    json_decref(j);
    if (st) {
        lupe_free(b);
        return st;
    }
    *out = b;
    *n = (int)cnt;
    return LUPE_OK;
}

void label__hash(const char *image_id, const char *boxes_json, char out[LUPE_SHA256_HEX])
{
    lupe_sha256_ctx h;
    uint8_t d[LUPE_SHA256_BYTES];
    lupe_sha256_init(&h);
    lupe_sha256_update(&h, "lupe-label-v1\n", 14);
    lupe_sha256_update(&h, image_id, strlen(image_id));
    lupe_sha256_update(&h, "\n", 1);
    lupe_sha256_update(&h, boxes_json, strlen(boxes_json));
    lupe_sha256_final(&h, d);
    lupe_hex(d, sizeof d, out);
}

lupe_status label__image(lupe_ws *ws, const char *image, char id[LUPE_SHA256_HEX], int *w, int *h)
{
    lupe_image im;
    lupe_status st = lupe_image_get(ws, image, &im);
    if (st) return st;
    memcpy(id, im.id, LUPE_SHA256_HEX);
    *w = im.width;
    *h = im.height;
    lupe_image_cleanup(&im);
    return LUPE_OK;
}

#define REV_COLS "id, coalesce(parent_id, 0), coalesce(job_id, 0), image_id, hash, boxes, status, source, author, comment, verdict, created_at"

static lupe_status read_rev(sqlite3_stmt *s, lupe_label_rev *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(s, 0);
    r->parent_id = sqlite3_column_int64(s, 1);
    r->job_id = sqlite3_column_int64(s, 2);
    snprintf(r->image_id, sizeof r->image_id, "%s", (const char *)sqlite3_column_text(s, 3));
    snprintf(r->hash, sizeof r->hash, "%s", (const char *)sqlite3_column_text(s, 4));
    lupe_status st = label__boxes_parse((const char *)sqlite3_column_text(s, 5), &r->boxes, &r->nboxes);
    if (st) return lupe_err_ctx(st, "label revision %lld", (long long)r->id);
    r->status = (lupe_label_status)lupe_label_status_parse((const char *)sqlite3_column_text(s, 6));
    r->source = (lupe_label_source)lupe_label_source_parse((const char *)sqlite3_column_text(s, 7));
    r->author = store__col_strdup(s, 8);
    r->comment = store__col_strdup(s, 9);
    r->verdict = store__col_strdup(s, 10);
    r->created_at = sqlite3_column_int64(s, 11);
    if (!r->author) {
        lupe_label_rev_cleanup(r);
        return LUPE_ENOMEM;
    }
    return LUPE_OK;
}

lupe_status label__latest_by_id(lupe_ws *ws, int64_t set_id, const char *image_id, lupe_label_rev *out)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "SELECT " REV_COLS " FROM label_revs WHERE set_id = ?1 AND image_id = ?2 "
                                        "ORDER BY id DESC LIMIT 1", &s);
    if (st) return st;
    sqlite3_bind_int64(s, 1, set_id);
    sqlite3_bind_text(s, 2, image_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st = read_rev(s, out);
    else if (rc == SQLITE_DONE)
        st = lupe_err(LUPE_ENOTFOUND, "image %.12s has no label yet", image_id);
    else
        st = store__db_err(ws, "reading a label");
    sqlite3_finalize(s);
    return st;
}

lupe_status label__insert(lupe_ws *ws, int64_t set_id, const char *image_id, const lupe_label_new *n, int64_t *out_rev)
{
    lupe_status st = LUPE_OK;
    sqlite3_stmt *s = NULL;
    char *json = label__boxes_json(n->boxes, n->nboxes);
    if (!json) return LUPE_ENOMEM;
    char hash[LUPE_SHA256_HEX];
    label__hash(image_id, json, hash);
    if (!n->author || !*n->author) {
        st = lupe_err(LUPE_EARG, "a label revision needs an author");
        goto out;
    }
    if ((st = store__prepare(ws,
                             "INSERT INTO label_revs (image_id, set_id, parent_id, boxes, nboxes, hash, status, source, "
                             "author, comment, verdict, job_id, created_at) VALUES (?1, ?2, (SELECT max(id) FROM "
                             "label_revs WHERE set_id = ?2 AND image_id = ?1), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                             "nullif(?11, 0), ?12)",
                             &s)))
        goto out;
    sqlite3_bind_text(s, 1, image_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, set_id);
    sqlite3_bind_text(s, 3, json, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, n->nboxes);
    sqlite3_bind_text(s, 5, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, lupe_label_status_name(n->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, lupe_label_source_name(n->source), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, n->author, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, n->comment, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, n->verdict, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 11, n->job_id);
    sqlite3_bind_int64(s, 12, lupe_time_unix());
    if (sqlite3_step(s) != SQLITE_DONE) {
        st = store__db_err(ws, "recording a label revision");
        goto out;
    }
    if (out_rev) *out_rev = sqlite3_last_insert_rowid(ws->db);
out:
    sqlite3_finalize(s);
    lupe_free(json);
    return st;
}

lupe_status lupe_label_add(lupe_ws *ws, const char *set, const char *image, const lupe_label_new *n, int64_t *out_rev)
{
    lupe_labelset ls = {0};
    lupe_box *checked = NULL;
    char id[LUPE_SHA256_HEX];
    int w, h;
    lupe_status st = lupe_labelset_get(ws, set, &ls);
    if (st) return st;
    if ((st = label__image(ws, image, id, &w, &h))) goto out;
    if (!(checked = lupe_malloc((size_t)(n->nboxes > 0 ? n->nboxes : 1) * sizeof *checked))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    int clipped = 0;
    if ((st = lupe_label_check_boxes(id, w, h, &ls, (lupe_oob_policy)ws->cfg.labels_out_of_bounds, n->boxes,
                                     n->nboxes, checked, &clipped)))
        goto out;
    if (clipped) lupe_log_warn("image %.12s: %d box%s clipped to the %dx%d image", id, clipped, clipped == 1 ? "" : "es", w, h);
    lupe_label_new copy = *n;
    copy.boxes = checked;
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) goto out;
    if ((st = label__insert(ws, ls.id, id, &copy, out_rev))) {
        sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    st = store__exec(ws, "COMMIT");
out:
    lupe_free(checked);
    lupe_labelset_cleanup(&ls);
    return st;
}

lupe_status lupe_label_latest(lupe_ws *ws, const char *set, const char *image, lupe_label_rev *out)
{
    int64_t sid;
    char id[LUPE_SHA256_HEX];
    int w, h;
    lupe_status st = label__set_id(ws, set, &sid);
    if (!st) st = label__image(ws, image, id, &w, &h);
    if (!st) st = label__latest_by_id(ws, sid, id, out);
    return st;
}

lupe_status lupe_label_get(lupe_ws *ws, int64_t rev_id, lupe_label_rev *out)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "SELECT " REV_COLS " FROM label_revs WHERE id = ?1", &s);
    if (st) return st;
    sqlite3_bind_int64(s, 1, rev_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st = read_rev(s, out);
    else if (rc == SQLITE_DONE)
        st = lupe_err(LUPE_ENOTFOUND, "no label revision %lld", (long long)rev_id);
    else
        st = store__db_err(ws, "reading a label revision");
    sqlite3_finalize(s);
    return st;
}

lupe_status lupe_label_history(lupe_ws *ws, const char *set, const char *image,
                               int (*fn)(void *ud, const lupe_label_rev *r), void *ud)
{
    int64_t sid;
    char id[LUPE_SHA256_HEX];
    int w, h;
    lupe_status st = label__set_id(ws, set, &sid);
    if (!st) st = label__image(ws, image, id, &w, &h);
    if (st) return st;
    sqlite3_stmt *s = NULL;
    if ((st = store__prepare(ws, "SELECT " REV_COLS " FROM label_revs WHERE set_id = ?1 AND image_id = ?2 ORDER BY id",
                             &s)))
        return st;
    sqlite3_bind_int64(s, 1, sid);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        lupe_label_rev r;
        if ((st = read_rev(s, &r))) break;
        int stop = fn(ud, &r);
        lupe_label_rev_cleanup(&r);
        if (stop) break;
    }
    if (!st && rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "reading label history");
    sqlite3_finalize(s);
    return st;
}

static const char *const verdicts[] = {"correct", "missed_object", "box_inaccurate", "wrong_class", "other", NULL};

lupe_status lupe_label_review(lupe_ws *ws, const char *set, const char *image, const lupe_review *rv, int64_t *out_rev)
{
    lupe_labelset ls = {0};
    lupe_label_rev cur = {0};
    lupe_box *checked = NULL;
    char id[LUPE_SHA256_HEX];
    int w, h;
    lupe_status st = LUPE_OK;
    if (!rv->reviewer || !*rv->reviewer) return lupe_err(LUPE_EARG, "a review needs a reviewer");
    const char *verdict = rv->action == LUPE_REVIEW_APPROVE ? "correct" : rv->verdict;
    if (rv->action == LUPE_REVIEW_REJECT && !verdict) verdict = "other";
    if (rv->action == LUPE_REVIEW_ADJUST && !verdict) verdict = "box_inaccurate";
    int known = 0;
    for (int i = 0; verdicts[i]; i++) known |= strcmp(verdicts[i], verdict) == 0;
    if (!known)
        return lupe_err(LUPE_EARG, "verdict '%s' is not one of correct, missed_object, box_inaccurate, wrong_class, other",
                        verdict);
    if ((st = lupe_labelset_get(ws, set, &ls))) return st;
    if ((st = label__image(ws, image, id, &w, &h))) goto out;
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) goto out;
    if ((st = label__latest_by_id(ws, ls.id, id, &cur))) goto rollback;
    if (cur.status != LUPE_LABEL_SUBMITTED) {
        st = lupe_err(LUPE_EARG, "image %.12s: the newest label (revision %lld) is %s; only submitted labels are reviewed",
                      id, (long long)cur.id, lupe_label_status_name(cur.status));
        goto rollback;
    }
    if (strcmp(cur.author, rv->reviewer) == 0) {
        st = lupe_err(LUPE_EARG, "image %.12s: %s made this label and cannot also review it", id, rv->reviewer);
        goto rollback;
    }
    lupe_label_new n = {.boxes = cur.boxes, .nboxes = cur.nboxes, .source = cur.source, .author = rv->reviewer,
                        .comment = rv->comment, .verdict = verdict, .job_id = cur.job_id};
    n.status = rv->action == LUPE_REVIEW_REJECT ? LUPE_LABEL_REJECTED : LUPE_LABEL_APPROVED;
    if (rv->action == LUPE_REVIEW_ADJUST) {
        if (!(checked = lupe_malloc((size_t)(rv->nboxes > 0 ? rv->nboxes : 1) * sizeof *checked))) {
            st = LUPE_ENOMEM;
            goto rollback;
        }
        if ((st = lupe_label_check_boxes(id, w, h, &ls, (lupe_oob_policy)ws->cfg.labels_out_of_bounds, rv->boxes,
                                         rv->nboxes, checked, NULL)))
            goto rollback;
        n.boxes = checked;
        n.nboxes = rv->nboxes;
        n.source = LUPE_SRC_HUMAN;
    }
    if ((st = label__insert(ws, ls.id, id, &n, out_rev))) goto rollback;
    st = store__exec(ws, "COMMIT");
    goto out;
rollback:
    sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
out:
    lupe_free(checked);
    lupe_label_rev_cleanup(&cur);
    lupe_labelset_cleanup(&ls);
    return st;
}
