/*
 * gt-csv: the Ground Truth style CSV the seed project keeps its labels in,
 * one row per image with a Python-literal list of pixel boxes in the
 * annotations column. Reader (columns found by header name, bad rows and
 * boxes skipped with a message) and writer (labels.csv plus images/).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "formats/internal.h"

enum { C_SOURCE, C_WIDTH, C_HEIGHT, C_DEPTH, C_ANN, C_TIME, C_JOB, C_STATUS, NCOLS };

static const struct {
    const char *name;
    bool required;
} cols[NCOLS] = {
    [C_SOURCE] = {"source_ref", true},  [C_WIDTH] = {"image_width", true}, [C_HEIGHT] = {"image_height", true},
    [C_DEPTH] = {"image_depth", false}, [C_ANN] = {"annotations", true},   [C_TIME] = {"event_time", false},
    [C_JOB] = {"labeling_job", false},  [C_STATUS] = {"status", false},
};

/* Header names with surrounding spaces trimmed, matched exactly. */
static lupe_status map_header(const fmt__csv *c, const char *name, int line, int idx[NCOLS])
{
    for (int k = 0; k < NCOLS; k++) idx[k] = -1;
    for (size_t f = 0; f < c->nf; f++) {
        const char *h = fmt__csv_field(c, f);
        size_t n = c->flen[f];
        while (n && (*h == ' ' || *h == '\t')) h++, n--;
        while (n && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
        for (int k = 0; k < NCOLS; k++) {
            if (strlen(cols[k].name) != n || memcmp(cols[k].name, h, n) != 0) continue;
            if (idx[k] >= 0) return lupe_err(LUPE_EFORMAT, "%s:%d: column '%s' appears twice", name, line, cols[k].name);
            idx[k] = (int)f;
        }
    }
    for (int k = 0; k < NCOLS; k++)
        if (cols[k].required && idx[k] < 0)
            return lupe_err(LUPE_EFORMAT, "%s:%d: no '%s' column in the header", name, line, cols[k].name);
    return LUPE_OK;
}

/* Reads one number of a box dict; returns NULL or what is wrong. */
static const char *box_number(const fmt__py *box, const char *key, double *out, char *msg, size_t msgsz)
{
    bool dup;
    const fmt__py *v = fmt__py_get(box, key, &dup);
    if (!v) return snprintf(msg, msgsz, "no '%s'", key), msg;
    if (dup) return snprintf(msg, msgsz, "'%s' appears twice", key), msg;
    if (v->type != FMT_PY_NUM) return snprintf(msg, msgsz, "'%s' is not a number", key), msg;
    if (!isfinite(v->num) || fabs(v->num) > FMT_MAX_COORD)
        return snprintf(msg, msgsz, "%s %g is out of range", key, v->num), msg;
    *out = v->num;
    return NULL;
}

/* Checks one element of the annotations list; on success fills the box. */
static const char *check_box(const fmt__py *box, lupe_fmt_box *b, char *msg, size_t msgsz)
{
    if (box->type != FMT_PY_DICT) return "not a dict";
    bool dup;
    const fmt__py *cls = fmt__py_get(box, "class_id", &dup);
    if (!cls) return "no 'class_id'";
    if (dup) return "'class_id' appears twice";
    if (cls->type != FMT_PY_NUM || !cls->is_int) return "class_id is not an integer";
    if (cls->num < 0) return snprintf(msg, msgsz, "class_id %g is negative", cls->num), msg;
    if (cls->num >= (double)FMT_MAX_CLASSES)
        return snprintf(msg, msgsz, "class_id %g is over the limit of %zu classes", cls->num, FMT_MAX_CLASSES), msg;
    const char *bad;
    if ((bad = box_number(box, "left", &b->x, msg, msgsz)) || (bad = box_number(box, "top", &b->y, msg, msgsz)) ||
        (bad = box_number(box, "width", &b->w, msg, msgsz)) || (bad = box_number(box, "height", &b->h, msg, msgsz)))
        return bad;
    if (b->w <= 0) return snprintf(msg, msgsz, "width is %g", b->w), msg;
    if (b->h <= 0) return snprintf(msg, msgsz, "height is %g", b->h), msg;
    b->cls = (int)cls->num;
    return NULL;
}

/* One data row; LUPE_OK also when the row was skipped with a message. */
static lupe_status read_row(lupe_fmt_doc *doc, const fmt__csv *c, const int idx[NCOLS], size_t ncols, int line,
                            const char *name)
{
    lupe_status st = LUPE_OK;
    fmt__py *ann = NULL;
    char q[64];
    if (c->nf != ncols)
        return lupe_fmt_doc_skip(doc, "%s:%d: %zu fields, the header has %zu", name, line, c->nf, ncols);
#define FIELD(k) (idx[k] >= 0 ? fmt__csv_field(c, (size_t)idx[k]) : NULL)
#define FLEN(k) (idx[k] >= 0 ? c->flen[idx[k]] : 0)
    if (idx[C_STATUS] >= 0 && strcasecmp(fmt__csv_field(c, (size_t)idx[C_STATUS]), "APPROVED") != 0)
        return lupe_fmt_doc_skip(doc, "%s:%d: status is %s, not APPROVED", name, line,
                                 fmt__quote(q, sizeof q, FIELD(C_STATUS), FLEN(C_STATUS)));
    if (FLEN(C_SOURCE) == 0) return lupe_fmt_doc_skip(doc, "%s:%d: source_ref is empty", name, line);
    long long wh[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        int col = k ? C_HEIGHT : C_WIDTH;
        if (FLEN(col) && fmt__parse_int(FIELD(col), FLEN(col), 1, (long long)FMT_MAX_COORD, &wh[k]) != 0)
            return lupe_fmt_doc_skip(doc, "%s:%d: %s %s is not a positive integer", name, line, cols[col].name,
                                     fmt__quote(q, sizeof q, FIELD(col), FLEN(col)));
    }
    double t = 0;
    if (FLEN(C_TIME) && (fmt__parse_number(FIELD(C_TIME), FLEN(C_TIME), &t, NULL) != 0 || !(fabs(t) < 1e11)))
        return lupe_fmt_doc_skip(doc, "%s:%d: event_time %s is not a time in seconds", name, line,
                                 fmt__quote(q, sizeof q, FIELD(C_TIME), FLEN(C_TIME)));
    st = fmt__py_parse(FIELD(C_ANN), FLEN(C_ANN), &ann);
    if (st == LUPE_EFORMAT) return lupe_fmt_doc_skip(doc, "%s:%d: annotations, %s", name, line, lupe_errmsg());
    if (st) return lupe_err_ctx(st, "%s:%d: annotations", name, line);
    if (ann->type != FMT_PY_LIST) {
        st = lupe_fmt_doc_skip(doc, "%s:%d: annotations is not a list", name, line);
        goto out;
    }
    lupe_fmt_item *it = NULL;
    if ((st = fmt__add_item(doc, FIELD(C_SOURCE), FLEN(C_SOURCE), &it))) {
        st = lupe_err_ctx(st, "%s:%d", name, line);
        goto out;
    }
    it->width = (int)wh[0];
    it->height = (int)wh[1];
    it->labeled = 1;
    it->time = (int64_t)floor(t);
    it->line = line;
    for (size_t i = 0; i < ann->len; i++) {
        lupe_fmt_box b;
        char msg[160];
        const char *bad = check_box(&ann->elems[i], &b, msg, sizeof msg);
        if (bad) {
            if ((st = lupe_fmt_doc_skip(doc, "%s:%d: box %zu: %s", name, line, i + 1, bad))) goto out;
            continue;
        }
        if ((st = fmt__ensure_numbered_classes(doc, b.cls)) ||
            (st = lupe_fmt_item_add_box(it, b.cls, b.x, b.y, b.w, b.h))) {
            st = lupe_err_ctx(st, "%s:%d", name, line);
            goto out;
        }
    }
#undef FIELD
#undef FLEN
out:
    fmt__py_free(ann);
    return st;
}

lupe_status lupe_fmt_parse_gt_csv(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name)
{
    if (!doc || (!buf && len)) return lupe_err(LUPE_EARG, "lupe_fmt_parse_gt_csv: NULL argument");
    const char *name = source_name ? source_name : "<gt-csv>";
    lupe_status st = LUPE_OK;
    fmt__mark mark;
    fmt__doc_mark(doc, &mark);
    fmt__csv c;
    fmt__csv_init(&c, buf, len, name);
    int idx[NCOLS], line = 0;
    if ((st = fmt__csv_next(&c, &line))) goto out;
    if (c.nf == 0) {
        st = lupe_err(LUPE_EFORMAT, "%s: empty file, expected a header line", name);
        goto out;
    }
    if ((st = map_header(&c, name, line, idx))) goto out;
    size_t ncols = c.nf;
    for (;;) {
        if ((st = fmt__csv_next(&c, &line))) goto out;
        if (c.nf == 0) break;
        if (c.nf == 1 && c.flen[0] == 0) continue; /* blank line */
        if ((st = read_row(doc, &c, idx, ncols, line, name))) goto out;
    }
out:
    fmt__csv_cleanup(&c);
    if (st) fmt__doc_rollback(doc, &mark);
    return st;
}

lupe_status fmt__gt_csv_read(lupe_fmt_doc *doc, const char *path)
{
    return fmt__read_single(doc, path, "labels.csv", lupe_fmt_parse_gt_csv);
}

lupe_status fmt__gt_csv_write(const lupe_fmt_doc *doc, fmt__out *o)
{
    lupe_status st = LUPE_OK;
    fmt__sb b = {0};
    char *rel = NULL;
    fmt__sb_puts(&b, "source_ref,image_width,image_height,image_depth,annotations,event_time,labeling_job,status\n");
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        if (!it->labeled) continue;
        lupe_free(rel);
        if (!(rel = lupe_asprintf("images/%s", fmt__export_name(it)))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = fmt__out_image(o, rel, it))) goto out;
        fmt__csv_put_field(&b, rel);
        fmt__sb_printf(&b, ",%d,%d,3,\"[", it->width, it->height);
        for (size_t k = 0; k < it->nboxes; k++) {
            double x, y, w, h;
            fmt__box_pixels(it, k, &x, &y, &w, &h);
            fmt__sb_printf(&b, "%s{'class_id': %d, 'top': ", k ? ", " : "", it->boxes[k].cls);
            fmt__sb_double(&b, y);
            fmt__sb_puts(&b, ", 'left': ");
            fmt__sb_double(&b, x);
            fmt__sb_puts(&b, ", 'height': ");
            fmt__sb_double(&b, h);
            fmt__sb_puts(&b, ", 'width': ");
            fmt__sb_double(&b, w);
            fmt__sb_puts(&b, "}");
        }
        fmt__sb_printf(&b, "]\",%lld.0,lupe,APPROVED\n", (long long)it->time);
    }
    if ((st = fmt__sb_status(&b))) goto out;
    st = fmt__out_file(o, "labels.csv", b.s, b.len);
out:
    lupe_free(rel);
    fmt__sb_cleanup(&b);
    return st;
}
