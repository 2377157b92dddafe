/*
 * coco: the COCO "instances" JSON (images, annotations with [x, y, w, h]
 * pixel boxes, categories with sparse ids). Reader of one file or of an
 * export folder (annotations/instances_SPLIT.json beside images/), and
 * writer of that folder with one JSON file per split.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/internal.h"

typedef struct cat {
    long long id;
    const char *name;
    size_t index; /* 1-based position in "categories", for messages */
} cat;

static int cmp_cat(const void *a, const void *b)
{
    const cat *x = a, *y = b;
    /* Ties by position, so the first of two equal ids is the one kept. */
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* "instances_train2017.json" -> "train"; NULL when the name says nothing. */
static const char *split_from_name(const char *name)
{
    const char *base = fmt__basename(name);
    static const char *const splits[] = {"train", "val", "test"};
    if (strncmp(base, "instances_", 10) != 0) return NULL;
    for (size_t i = 0; i < 3; i++)
        if (strncmp(base + 10, splits[i], strlen(splits[i])) == 0) return splits[i];
    return NULL;
}

static void id_key(char *out, size_t n, long long id)
{
    snprintf(out, n, "%lld", id);
}

/* Categories in id order become classes; returns id -> class in *ids. */
static lupe_status read_categories(lupe_fmt_doc *doc, json_t *cats, fmt__map *ids, const char *name)
{
    size_t n = json_array_size(cats), k = 0;
    lupe_status st = LUPE_OK;
    if (n > FMT_MAX_CLASSES) return lupe_err(LUPE_ELIMIT, "%s: more than %zu categories", name, FMT_MAX_CLASSES);
    cat *v = lupe_calloc(n + 1, sizeof *v);
    if (!v) return LUPE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cats, i), *id = json_object_get(c, "id"), *nm = json_object_get(c, "name");
        const char *bad = !json_is_object(c)                             ? "not an object"
                          : !json_is_integer(id)                         ? "id is not an integer"
                          : !json_is_string(nm) || !json_string_length(nm) ? "no name"
                                                                         : NULL;
        if (bad) {
            if ((st = lupe_fmt_doc_skip(doc, "%s: category %zu: %s", name, i + 1, bad))) goto out;
            continue;
        }
        v[k++] = (cat){json_integer_value(id), json_string_value(nm), i + 1};
    }
    if (k > 1) qsort(v, k, sizeof *v, cmp_cat);
    for (size_t i = 0; i < k; i++) {
        if (i && v[i].id == v[i - 1].id) {
            if ((st = lupe_fmt_doc_skip(doc, "%s: category %zu: id %lld appears twice", name, v[i].index, v[i].id)))
                goto out;
            continue;
        }
        int had = fmt__find_class(doc, v[i].name), idx;
        if ((st = fmt__class_index(doc, v[i].name, &idx))) goto out;
        /* Two ids with one name are one class to every trainer that goes
         * by names; merging is said, not silent. */
        bool dup = false;
        for (size_t j = 0; j < i; j++) dup = dup || strcmp(v[j].name, v[i].name) == 0;
        if (had >= 0 && dup &&
            (st = lupe_fmt_doc_skip(doc, "%s: category %zu: name '%s' is also used by another id; merged", name,
                                    v[i].index, v[i].name)))
            goto out;
        char key[32];
        id_key(key, sizeof key, v[i].id);
        if ((st = fmt__map_put(ids, key, (size_t)idx))) goto out;
    }
out:
    lupe_free(v);
    return st;
}

static lupe_status read_images(lupe_fmt_doc *doc, json_t *imgs, fmt__map *ids, const char *prefix, const char *split,
                               const char *name)
{
    lupe_status st = LUPE_OK;
    char *ref = NULL;
    for (size_t i = 0; i < json_array_size(imgs); i++) {
        json_t *im = json_array_get(imgs, i), *id = json_object_get(im, "id"), *fn = json_object_get(im, "file_name");
        const char *bad = !json_is_object(im)                              ? "not an object"
                          : !json_is_integer(id)                           ? "id is not an integer"
                          : !json_is_string(fn) || !json_string_length(fn) ? "no file_name"
                                                                           : NULL;
        long long wh[2] = {0, 0};
        for (int k = 0; !bad && k < 2; k++) {
            json_t *v = json_object_get(im, k ? "height" : "width");
            if (!v) continue;
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)FMT_MAX_COORD)
                bad = k ? "height is not a size" : "width is not a size";
            else wh[k] = json_integer_value(v);
        }
        char key[32];
        size_t prev;
        if (!bad) {
            id_key(key, sizeof key, json_integer_value(id));
            if (fmt__map_get(ids, key, &prev)) bad = "id appears twice";
        }
        if (bad) {
            if ((st = lupe_fmt_doc_skip(doc, "%s: image %zu: %s", name, i + 1, bad))) goto out;
            continue;
        }
        lupe_free(ref);
        if (!(ref = lupe_asprintf("%s%s", prefix, json_string_value(fn)))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        lupe_fmt_item *it = NULL;
        if ((st = fmt__add_item(doc, ref, strlen(ref), &it))) {
            st = lupe_err_ctx(st, "%s: image %zu", name, i + 1);
            goto out;
        }
        it->width = (int)wh[0];
        it->height = (int)wh[1];
        it->labeled = 1; /* listed with no annotation = a negative */
        it->line = (int)(i + 1);
        if (split && !(it->split = lupe_strdup(split))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = fmt__map_put(ids, key, doc->nitems - 1))) goto out;
    }
out:
    lupe_free(ref);
    return st;
}

/* Checks one annotation; returns NULL and fills item index, class and box. */
static const char *check_ann(json_t *a, const fmt__map *imgs, const fmt__map *cats, size_t *item, lupe_fmt_box *b,
                             char *msg, size_t msgsz)
{
    if (!json_is_object(a)) return "not an object";
    json_t *iid = json_object_get(a, "image_id"), *cid = json_object_get(a, "category_id");
    json_t *bbox = json_object_get(a, "bbox"), *crowd = json_object_get(a, "iscrowd");
    char key[32];
    size_t cls;
    if (!json_is_integer(iid)) return "image_id is not an integer";
    id_key(key, sizeof key, json_integer_value(iid));
    if (!fmt__map_get(imgs, key, item)) return snprintf(msg, msgsz, "unknown image_id %s", key), msg;
    if (!json_is_integer(cid)) return "category_id is not an integer";
    id_key(key, sizeof key, json_integer_value(cid));
    if (!fmt__map_get(cats, key, &cls)) return snprintf(msg, msgsz, "unknown category_id %s", key), msg;
    /* A crowd region marks many objects at once; trainers ignore it and so
     * does lupe, with a message. */
    if (crowd && !(json_is_integer(crowd) && json_integer_value(crowd) == 0) && !json_is_false(crowd))
        return "iscrowd region, not a box";
    if (!json_is_array(bbox) || json_array_size(bbox) != 4) return "bbox is not [x, y, w, h]";
    double v[4];
    for (int k = 0; k < 4; k++) {
        json_t *n = json_array_get(bbox, (size_t)k);
        if (!json_is_number(n)) return "bbox holds a value that is not a number";
        v[k] = json_number_value(n);
        if (!isfinite(v[k]) || fabs(v[k]) > FMT_MAX_COORD)
            return snprintf(msg, msgsz, "bbox value %g is out of range", v[k]), msg;
    }
    if (v[2] <= 0) return snprintf(msg, msgsz, "bbox width is %g", v[2]), msg;
    if (v[3] <= 0) return snprintf(msg, msgsz, "bbox height is %g", v[3]), msg;
    *b = (lupe_fmt_box){(int)cls, v[0], v[1], v[2], v[3]};
    return NULL;
}

/* The parser proper; prefix goes before each file_name ("images/" when
 * reading an export folder). */
static lupe_status parse(lupe_fmt_doc *doc, const char *buf, size_t len, const char *name, const char *prefix)
{
    lupe_status st = LUPE_OK;
    fmt__mark mark;
    fmt__doc_mark(doc, &mark);
    fmt__map imgs = {0}, cats = {0};
    json_error_t e;
    uint64_t failures = fmt__alloc_failures();
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        if (json_error_code(&e) == json_error_out_of_memory || fmt__alloc_failures() != failures)
            st = lupe_err(LUPE_ENOMEM, "%s: out of memory parsing JSON", name);
        else
            st = lupe_err(LUPE_EFORMAT, "%s: line %d, column %d: %s", name, e.line, e.column, e.text);
        goto out;
    }
    json_t *jimgs = json_object_get(root, "images"), *janns = json_object_get(root, "annotations");
    json_t *jcats = json_object_get(root, "categories");
    const char *missing = !json_is_object(root)  ? "the top level is not an object"
                          : !json_is_array(jimgs) ? "no \"images\" list"
                          : !json_is_array(janns) ? "no \"annotations\" list"
                          : !json_is_array(jcats) ? "no \"categories\" list"
                                                  : NULL;
    if (missing) {
        st = lupe_err(LUPE_EFORMAT, "%s: %s, not a COCO instances file", name, missing);
        goto out;
    }
    if ((st = read_categories(doc, jcats, &cats, name)) ||
        (st = read_images(doc, jimgs, &imgs, prefix, split_from_name(name), name)))
        goto out;
    for (size_t i = 0; i < json_array_size(janns); i++) {
        size_t item = 0;
        lupe_fmt_box b;
        char msg[160];
        const char *bad = check_ann(json_array_get(janns, i), &imgs, &cats, &item, &b, msg, sizeof msg);
        if (bad) {
            if ((st = lupe_fmt_doc_skip(doc, "%s: annotation %zu: %s", name, i + 1, bad))) goto out;
            continue;
        }
        if ((st = lupe_fmt_item_add_box(&doc->items[item], b.cls, b.x, b.y, b.w, b.h))) {
            st = lupe_err_ctx(st, "%s: annotation %zu", name, i + 1);
            goto out;
        }
    }
out:
    json_decref(root);
    fmt__map_cleanup(&imgs);
    fmt__map_cleanup(&cats);
    if (st) fmt__doc_rollback(doc, &mark);
    return st;
}

lupe_status lupe_fmt_parse_coco(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name)
{
    if (!doc || (!buf && len)) return lupe_err(LUPE_EARG, "lupe_fmt_parse_coco: NULL argument");
    return parse(doc, buf, len, source_name ? source_name : "<coco>", "");
}

static bool is_json(const char *name)
{
    return fmt__ends_with_ci(name, ".json");
}

static lupe_status read_one(lupe_fmt_doc *doc, const char *path, const char *name, const char *prefix)
{
    char *buf = NULL;
    size_t len = 0;
    lupe_status st = fmt__read_file(path, &buf, &len);
    if (!st) st = parse(doc, buf, len, name, prefix);
    lupe_free(buf);
    return st;
}

lupe_status fmt__coco_read(lupe_fmt_doc *doc, const char *path)
{
    if (!fmt__is_dir(path)) return read_one(doc, path, fmt__basename(path), "");
    /* An export folder: the .json files in annotations/, images under images/. */
    lupe_status st = LUPE_OK;
    fmt__list l = {0};
    char *ann = lupe_path_join(path, "annotations"), *img = lupe_path_join(path, "images"), *full = NULL;
    if (!ann || !img) {
        st = LUPE_ENOMEM;
        goto out;
    }
    bool sub = fmt__is_dir(ann);
    const char *prefix = fmt__is_dir(img) ? "images/" : "";
    if ((st = fmt__list_files(path, sub ? "annotations" : "", false, is_json, &l))) goto out;
    if (l.n == 0) {
        st = lupe_err(LUPE_ENOTFOUND, "%s: no COCO .json file%s", path, sub ? " in annotations/" : "");
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        lupe_free(full);
        if (!(full = lupe_path_join(path, l.paths[i]))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = read_one(doc, full, l.paths[i], prefix))) goto out;
    }
out:
    fmt__list_cleanup(&l);
    lupe_free(ann);
    lupe_free(img);
    lupe_free(full);
    return st;
}

static json_t *number(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0) return json_integer((json_int_t)v);
    return json_real(v);
}

/* One instances file for the items whose split is `split` (NULL: none). */
static lupe_status write_split(const lupe_fmt_doc *doc, fmt__out *o, const char *split)
{
    lupe_status st = LUPE_OK;
    char *text = NULL, *rel = NULL;
    uint64_t failures = fmt__alloc_failures();
    json_t *imgs = json_array(), *anns = json_array(), *cats = json_array();
    json_t *root = json_pack("{s:{s:s}, s:[], s:o, s:o, s:o}", "info", "description", "exported by lupe", "licenses",
                             "images", imgs, "annotations", anns, "categories", cats);
    if (!root) {
        st = lupe_err(LUPE_ENOMEM, "out of memory building COCO JSON");
        goto out;
    }
    int fail = 0;
    for (size_t c = 0; c < doc->nclasses; c++)
        fail |= json_array_append_new(cats, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)c + 1, "name",
                                                      doc->classes[c], "supercategory", ""));
    json_int_t image_id = 0, ann_id = 0;
    for (size_t i = 0; i < doc->nitems && !fail; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        if (!it->labeled || (split ? !it->split || strcmp(split, it->split) : it->split != NULL)) continue;
        const char *name = fmt__export_name(it);
        lupe_free(rel);
        if (!(rel = lupe_asprintf("images/%s", name))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = fmt__out_image(o, rel, it))) goto out;
        image_id++;
        fail |= json_array_append_new(imgs, json_pack("{s:I, s:s, s:i, s:i}", "id", image_id, "file_name", name,
                                                      "width", it->width, "height", it->height));
        for (size_t k = 0; k < it->nboxes && !fail; k++) {
            double x, y, w, h;
            fmt__box_pixels(it, k, &x, &y, &w, &h);
            fail |= json_array_append_new(
                anns, json_pack("{s:I, s:I, s:I, s:[o, o, o, o], s:o, s:i}", "id", ++ann_id, "image_id", image_id,
                                "category_id", (json_int_t)it->boxes[k].cls + 1, "bbox", number(x), number(y),
                                number(w), number(h), "area", number(w * h), "iscrowd", 0));
        }
    }
    if (fail || !(text = lupe_json_dump(root, 0)) || fmt__alloc_failures() != failures) {
        st = lupe_err(LUPE_ENOMEM, "out of memory building COCO JSON");
        goto out;
    }
    lupe_free(rel);
    rel = split ? lupe_asprintf("annotations/instances_%s.json", split) : lupe_strdup("annotations/instances.json");
    if (!rel) {
        st = LUPE_ENOMEM;
        goto out;
    }
    st = fmt__out_file(o, rel, text, strlen(text));
out:
    json_decref(root);
    lupe_free(text);
    lupe_free(rel);
    return st;
}

lupe_status fmt__coco_write(const lupe_fmt_doc *doc, fmt__out *o)
{
    static const char *const splits[] = {"train", "val", "test"};
    bool seen[4] = {false, false, false, false}; /* train, val, test, none */
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        if (!it->labeled) continue;
        int s = 3;
        for (int k = 0; k < 3; k++)
            if (it->split && strcmp(it->split, splits[k]) == 0) s = k;
        seen[s] = true;
    }
    /* An empty document still gets one file, so the export says "no images"
     * rather than looking unfinished. */
    if (!seen[0] && !seen[1] && !seen[2]) seen[3] = true;
    lupe_status st = LUPE_OK;
    for (int k = 0; k < 4 && !st; k++)
        if (seen[k]) st = write_split(doc, o, k < 3 ? splits[k] : NULL);
    return st;
}
