/*
 * gt-manifest: the SageMaker Ground Truth augmented manifest, one JSON
 * object per line holding a source-ref, a bounding-box label attribute and
 * its "-metadata" sibling with the class map. Reader (a bad line is skipped
 * with its line and column) and writer (output.manifest plus images/).
 */
#define _DEFAULT_SOURCE /* timegm */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/internal.h"

#define OD_TYPE "groundtruth/object-detection"
#define ATTR_OUT "bounding-box"

/* "2021-01-28T09:50:34.000000" (UTC) to unix seconds; 0 when unreadable. */
static int64_t parse_date(const char *s)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &n) != 6 ||
        n < 19)
        return 0;
    if (tm.tm_year < 1970 || tm.tm_year > 9999 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* The label attribute: the key whose "-metadata" sibling says object
 * detection, else the only object value holding "annotations". Returns the
 * key, or NULL with *why set. */
static const char *find_attribute(json_t *obj, const char **why)
{
    const char *key, *found = NULL;
    json_t *val;
    int n = 0;
    json_object_foreach (obj, key, val) {
        char meta[FMT_MAX_STR + 16];
        if (!json_is_object(val) || strlen(key) > FMT_MAX_STR) continue;
        snprintf(meta, sizeof meta, "%s-metadata", key);
        json_t *type = json_object_get(json_object_get(obj, meta), "type");
        if (json_is_string(type) && strcmp(json_string_value(type), OD_TYPE) == 0) found = key, n++;
    }
    if (n == 1) return found;
    if (n > 1) {
        *why = "more than one object-detection label attribute";
        return NULL;
    }
    json_object_foreach (obj, key, val) {
        if (json_is_object(val) && json_object_get(val, "annotations")) found = key, n++;
    }
    if (n == 1) return found;
    *why = n ? "more than one label attribute with annotations" : "no object-detection label attribute";
    return NULL;
}

typedef struct class_entry {
    long long id;
    const char *name;
} class_entry;

static int cmp_entry(const void *a, const void *b)
{
    const class_entry *x = a, *y = b;
    /* "0" and "00" are one id; the tie is broken by name so the order
     * never depends on qsort's whims. */
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Adds the class map's names in id order, so a single job's classes come
 * out in the order of its ids whatever order the JSON keys are in. */
static lupe_status add_class_map(lupe_fmt_doc *doc, json_t *map)
{
    size_t n = json_object_size(map), k = 0;
    if (n == 0) return LUPE_OK;
    if (n > FMT_MAX_CLASSES) return lupe_err(LUPE_ELIMIT, "class-map has more than %zu classes", FMT_MAX_CLASSES);
    class_entry *e = lupe_calloc(n, sizeof *e);
    if (!e) return LUPE_ENOMEM;
    const char *key;
    json_t *val;
    json_object_foreach (map, key, val) {
        long long id;
        /* Entries that are not "number": "name" cannot be referenced by a
         * class_id; a box that tries is skipped with a message below. */
        if (!json_is_string(val) || !json_string_length(val) ||
            fmt__parse_int(key, strlen(key), 0, (long long)FMT_MAX_CLASSES, &id) != 0)
            continue;
        e[k++] = (class_entry){id, json_string_value(val)};
    }
    if (k > 1) qsort(e, k, sizeof *e, cmp_entry);
    lupe_status st = LUPE_OK;
    for (size_t i = 0; i < k && !st; i++) {
        int idx;
        st = fmt__class_index(doc, e[i].name, &idx);
    }
    lupe_free(e);
    return st;
}

static const char *box_number(json_t *box, const char *key, double *out, char *msg, size_t msgsz)
{
    json_t *v = json_object_get(box, key);
    if (!v) return snprintf(msg, msgsz, "no \"%s\"", key), msg;
    if (!json_is_number(v)) return snprintf(msg, msgsz, "\"%s\" is not a number", key), msg;
    double d = json_number_value(v);
    if (!isfinite(d) || fabs(d) > FMT_MAX_COORD) return snprintf(msg, msgsz, "%s %g is out of range", key, d), msg;
    *out = d;
    return NULL;
}

/* Checks one annotation; on success fills b (cls = class_id as written). */
static const char *check_box(json_t *box, lupe_fmt_box *b, long long *cls, char *msg, size_t msgsz)
{
    if (!json_is_object(box)) return "not an object";
    json_t *c = json_object_get(box, "class_id");
    if (!c) return "no \"class_id\"";
    if (!json_is_integer(c)) return "class_id is not an integer";
    *cls = json_integer_value(c);
    if (*cls < 0) return snprintf(msg, msgsz, "class_id %lld is negative", *cls), msg;
    if (*cls >= (long long)FMT_MAX_CLASSES)
        return snprintf(msg, msgsz, "class_id %lld is over the limit of %zu classes", *cls, FMT_MAX_CLASSES), msg;
    const char *bad;
    if ((bad = box_number(box, "left", &b->x, msg, msgsz)) || (bad = box_number(box, "top", &b->y, msg, msgsz)) ||
        (bad = box_number(box, "width", &b->w, msg, msgsz)) || (bad = box_number(box, "height", &b->h, msg, msgsz)))
        return bad;
    if (b->w <= 0) return snprintf(msg, msgsz, "width is %g", b->w), msg;
    if (b->h <= 0) return snprintf(msg, msgsz, "height is %g", b->h), msg;
    return NULL;
}

static lupe_status read_object(lupe_fmt_doc *doc, json_t *obj, int line, const char *name)
{
    lupe_status st = LUPE_OK;
    json_t *src = json_object_get(obj, "source-ref");
    if (!json_is_string(src) || json_string_length(src) == 0)
        return lupe_fmt_doc_skip(doc, "%s:%d: no \"source-ref\"", name, line);
    const char *why = NULL, *attr = find_attribute(obj, &why);
    if (!attr) return lupe_fmt_doc_skip(doc, "%s:%d: %s", name, line, why);
    json_t *label = json_object_get(obj, attr);
    char meta_key[FMT_MAX_STR + 16];
    snprintf(meta_key, sizeof meta_key, "%s-metadata", attr);
    json_t *meta = json_object_get(obj, meta_key);
    json_t *anns = json_object_get(label, "annotations");
    if (!json_is_array(anns))
        return lupe_fmt_doc_skip(doc, "%s:%d: \"%s\" has no annotations list", name, line, attr);
    long long wh[2] = {0, 0};
    json_t *size = json_array_get(json_object_get(label, "image_size"), 0);
    for (int k = 0; size && k < 2; k++) {
        json_t *v = json_object_get(size, k ? "height" : "width");
        if (!v) continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (json_int_t)FMT_MAX_COORD)
            return lupe_fmt_doc_skip(doc, "%s:%d: image_size %s is not a positive integer", name, line,
                                     k ? "height" : "width");
        wh[k] = json_integer_value(v);
    }
    json_t *cmap = json_object_get(meta, "class-map");
    if (json_is_object(cmap) && (st = add_class_map(doc, cmap))) return lupe_err_ctx(st, "%s:%d", name, line);
    lupe_fmt_item *it = NULL;
    if ((st = fmt__add_item(doc, json_string_value(src), json_string_length(src), &it)))
        return lupe_err_ctx(st, "%s:%d", name, line);
    it->width = (int)wh[0];
    it->height = (int)wh[1];
    it->labeled = 1;
    it->line = line;
    json_t *date = json_object_get(meta, "creation-date");
    if (json_is_string(date)) it->time = parse_date(json_string_value(date));
    for (size_t i = 0; i < json_array_size(anns); i++) {
        lupe_fmt_box b;
        long long cls = 0;
        char msg[160];
        const char *bad = check_box(json_array_get(anns, i), &b, &cls, msg, sizeof msg);
        int idx = -1;
        if (!bad) {
            char key[32], numbered[40];
            snprintf(key, sizeof key, "%lld", cls);
            json_t *cname = json_is_object(cmap) ? json_object_get(cmap, key) : NULL;
            if (json_is_object(cmap) && !(json_is_string(cname) && json_string_length(cname))) {
                snprintf(msg, sizeof msg, "class_id %lld is not in the class-map", cls);
                bad = msg;
            } else {
                snprintf(numbered, sizeof numbered, "class%lld", cls);
                const char *cn = cname ? json_string_value(cname) : numbered;
                if ((st = fmt__class_index(doc, cn, &idx))) return lupe_err_ctx(st, "%s:%d", name, line);
            }
        }
        if (bad) {
            if ((st = lupe_fmt_doc_skip(doc, "%s:%d: box %zu: %s", name, line, i + 1, bad))) return st;
            continue;
        }
        if ((st = lupe_fmt_item_add_box(it, idx, b.x, b.y, b.w, b.h))) return lupe_err_ctx(st, "%s:%d", name, line);
    }
    return LUPE_OK;
}

lupe_status lupe_fmt_parse_gt_manifest(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name)
{
    if (!doc || (!buf && len)) return lupe_err(LUPE_EARG, "lupe_fmt_parse_gt_manifest: NULL argument");
    const char *name = source_name ? source_name : "<gt-manifest>";
    lupe_status st = LUPE_OK;
    fmt__mark mark;
    fmt__doc_mark(doc, &mark);
    size_t objects = 0, nonblank = 0;
    char first_err[320] = "";
    int line = 0;
    for (size_t pos = 0; pos < len && !st;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, n = end - pos;
        const char *s = buf + pos;
        pos = end + 1;
        line++;
        if (n && s[n - 1] == '\r') n--;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
        if (k == n) continue;
        nonblank++;
        json_error_t e;
        uint64_t failures = fmt__alloc_failures();
        json_t *obj = json_loadb(s, n, JSON_REJECT_DUPLICATES, &e);
        if (!obj) {
            if (json_error_code(&e) == json_error_out_of_memory || fmt__alloc_failures() != failures) {
                st = lupe_err(LUPE_ENOMEM, "%s:%d: out of memory parsing JSON", name, line);
                break;
            }
            if (!first_err[0]) snprintf(first_err, sizeof first_err, "line %d, column %d: %s", line, e.column, e.text);
            st = lupe_fmt_doc_skip(doc, "%s:%d: column %d: %s", name, line, e.column, e.text);
            continue;
        }
        if (!json_is_object(obj)) {
            if (!first_err[0]) snprintf(first_err, sizeof first_err, "line %d: not a JSON object", line);
            st = lupe_fmt_doc_skip(doc, "%s:%d: not a JSON object", name, line);
        } else {
            objects++;
            st = read_object(doc, obj, line, name);
        }
        json_decref(obj);
    }
    /* One bad line among good ones is a record to skip; no good line at all
     * means this is not a manifest (a COCO file, a CSV) and saying so beats
     * returning a document that is nothing but complaints. */
    if (!st && nonblank && !objects)
        st = lupe_err(LUPE_EFORMAT, "%s: not JSON lines: %s", name, first_err);
    if (st) fmt__doc_rollback(doc, &mark);
    return st;
}

lupe_status fmt__gt_manifest_read(lupe_fmt_doc *doc, const char *path)
{
    return fmt__read_single(doc, path, "output.manifest", lupe_fmt_parse_gt_manifest);
}

/* Integral values as JSON integers (what Ground Truth writes), others as
 * reals, which jansson prints with 17 digits, so they read back exactly. */
static json_t *number(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0) return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *item_json(const lupe_fmt_item *it, const char *rel, json_t *cmap)
{
    char date[40];
    time_t t = (time_t)it->time;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) memset(&tm, 0, sizeof tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S.000000", &tm);
    json_t *anns = json_array();
    for (size_t k = 0; anns && k < it->nboxes; k++) {
        double x, y, w, h;
        fmt__box_pixels(it, k, &x, &y, &w, &h);
        if (json_array_append_new(anns, json_pack("{s:i, s:o, s:o, s:o, s:o}", "class_id", it->boxes[k].cls, "left",
                                                  number(x), "top", number(y), "width", number(w), "height",
                                                  number(h))) != 0) {
            json_decref(anns);
            return NULL;
        }
    }
    /* "o" steals anns even when packing fails, so no leak either way. */
    return json_pack("{s:s, s:{s:[{s:i, s:i, s:i}], s:o}, s:{s:O, s:s, s:s, s:s, s:s}}", "source-ref", rel, ATTR_OUT,
                     "image_size", "width", it->width, "height", it->height, "depth", 3, "annotations", anns,
                     ATTR_OUT "-metadata", "class-map", cmap, "type", OD_TYPE, "human-annotated", "yes",
                     "creation-date", date, "job-name", "labeling-job/lupe");
}

lupe_status fmt__gt_manifest_write(const lupe_fmt_doc *doc, fmt__out *o)
{
    lupe_status st = LUPE_OK;
    fmt__sb b = {0};
    char *rel = NULL, *line = NULL;
    json_t *cmap = json_object();
    if (!cmap) return LUPE_ENOMEM;
    for (size_t c = 0; c < doc->nclasses; c++) {
        char key[32];
        snprintf(key, sizeof key, "%zu", c);
        if (json_object_set_new(cmap, key, json_string(doc->classes[c])) != 0) {
            st = lupe_err(LUPE_ENOMEM, "out of memory building the class map");
            goto out;
        }
    }
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        if (!it->labeled) continue;
        lupe_free(rel);
        if (!(rel = lupe_asprintf("images/%s", fmt__export_name(it)))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = fmt__out_image(o, rel, it))) goto out;
        uint64_t failures = fmt__alloc_failures();
        json_t *j = item_json(it, rel, cmap);
        line = j ? lupe_json_dump(j, 0) : NULL;
        json_decref(j);
        if (!line || fmt__alloc_failures() != failures) {
            st = lupe_err(LUPE_ENOMEM, "out of memory writing the manifest line of %s", rel);
            goto out;
        }
        fmt__sb_puts(&b, line);
        fmt__sb_put(&b, "\n", 1);
        lupe_free(line);
        line = NULL;
    }
    if ((st = fmt__sb_status(&b))) goto out;
    st = fmt__out_file(o, "output.manifest", b.s ? b.s : "", b.len);
out:
    json_decref(cmap);
    lupe_free(rel);
    lupe_free(line);
    fmt__sb_cleanup(&b);
    return st;
}
