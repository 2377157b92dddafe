/*
 * The manifest: one canonical JSON document per dataset version, stored as
 * an object so that its id is the SHA-256 of its bytes. Canonical means
 * sorted keys, items sorted by image id, boxes in the label's canonical
 * order, and nothing that varies between runs (no times, no user names),
 * so the same labels and options always give the same id.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dataset_internal.h"

static const char *const split_names[] = {"train", "val", "test"};

const char *lupe_split_name(int split)
{
    return split >= 0 && split < 3 ? split_names[split] : "?";
}

int lupe_split_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, split_names[i]) == 0) return i;
    return -1;
}

void dataset__item_cleanup(lupe_dataset_item *it)
{
    lupe_free(it->group);
    lupe_free(it->file_name);
    lupe_free(it->boxes);
    it->group = it->file_name = NULL;
    it->boxes = NULL;
}

void lupe_manifest_free(lupe_manifest *m)
{
    if (!m) return;
    for (int64_t i = 0; i < m->nitems; i++) dataset__item_cleanup(&m->items[i]);
    lupe_free(m->items);
    for (int i = 0; i < m->nclasses; i++) lupe_free(m->classes[i]);
    lupe_free(m->classes);
    lupe_free(m->name);
    lupe_free(m->labelset);
    lupe_free(m);
}

char *dataset__encode(const lupe_manifest *m, const char *params)
{
    json_t *root = json_object(), *classes = json_array(), *items = json_array();
    json_t *p = NULL;
    if (params) {
        json_error_t e;
        p = json_loads(params, 0, &e);
    }
    for (int i = 0; i < m->nclasses; i++) json_array_append_new(classes, json_string(m->classes[i]));
    for (int64_t i = 0; i < m->nitems; i++) {
        const lupe_dataset_item *it = &m->items[i];
        json_t *boxes = json_array();
        for (int k = 0; k < it->nboxes; k++) {
            const lupe_box *b = &it->boxes[k];
            json_array_append_new(boxes, json_pack("[i,f,f,f,f]", b->cls, b->x, b->y, b->w, b->h));
        }
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s?, s:s, s:o}", "image", it->image, "label",
                                               it->label, "split", lupe_split_name(it->split), "width", it->width,
                                               "height", it->height, "group", it->group, "file", it->file_name,
                                               "boxes", boxes));
    }
    json_object_set_new(root, "format", json_string("lupe-dataset"));
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "name", json_string(m->name));
    json_object_set_new(root, "labelset", json_pack("{s:s, s:o}", "name", m->labelset, "classes", classes));
    json_object_set_new(root, "options", p ? p : json_object());
    json_object_set_new(root, "items", items);
    char *s = lupe_json_dump(root, 0);
    json_decref(root);
    return s;
}

static lupe_status bad(const char *id, const char *what)
{
    return lupe_err(LUPE_ECORRUPT, "dataset manifest %.12s: %s", id, what);
}

lupe_status dataset__decode(const char *id, const char *text, size_t len, lupe_manifest **out)
{
    json_t *root = NULL;
    lupe_status st = lupe_json_parse(text, len, "dataset manifest", &root);
    if (st) return lupe_err_ctx(LUPE_ECORRUPT, "dataset %.12s", id);
    lupe_manifest *m = lupe_calloc(1, sizeof *m);
    if (!m) {
        json_decref(root);
        return LUPE_ENOMEM;
    }
    snprintf(m->id, sizeof m->id, "%s", id);
    json_t *items = json_object_get(root, "items"), *ls = json_object_get(root, "labelset");
    json_t *classes = json_object_get(ls, "classes");
    if (strcmp(json_string_value(json_object_get(root, "format")) ? json_string_value(json_object_get(root, "format")) : "",
               "lupe-dataset") != 0 ||
        json_integer_value(json_object_get(root, "version")) != 1) {
        st = bad(id, "not a version 1 lupe dataset manifest");
        goto out;
    }
    if (!json_is_array(items) || !json_is_array(classes) || !json_is_string(json_object_get(root, "name")) ||
        !json_is_string(json_object_get(ls, "name"))) {
        st = bad(id, "missing name, labelset or items");
        goto out;
    }
    m->name = lupe_strdup(json_string_value(json_object_get(root, "name")));
    m->labelset = lupe_strdup(json_string_value(json_object_get(ls, "name")));
    m->nclasses = (int)json_array_size(classes);
    m->classes = lupe_calloc((size_t)m->nclasses + 1, sizeof *m->classes);
    m->nitems = (int64_t)json_array_size(items);
    m->items = lupe_calloc((size_t)m->nitems + 1, sizeof *m->items);
    if (!m->name || !m->labelset || !m->classes || !m->items) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (int i = 0; i < m->nclasses; i++) {
        const char *c = json_string_value(json_array_get(classes, (size_t)i));
        if (!c || !(m->classes[i] = lupe_strdup(c))) {
            st = c ? LUPE_ENOMEM : bad(id, "a class name is not a string");
            goto out;
        }
    }
    for (int64_t i = 0; i < m->nitems; i++) {
        json_t *e = json_array_get(items, (size_t)i), *boxes = json_object_get(e, "boxes");
        lupe_dataset_item *it = &m->items[i];
        const char *img = json_string_value(json_object_get(e, "image"));
        const char *lab = json_string_value(json_object_get(e, "label"));
        const char *spl = json_string_value(json_object_get(e, "split"));
        const char *file = json_string_value(json_object_get(e, "file"));
        const char *grp = json_string_value(json_object_get(e, "group"));
        if (!img || strlen(img) != 64 || !lab || strlen(lab) != 64 || !spl || lupe_split_parse(spl) < 0 || !file ||
            !json_is_array(boxes)) {
            st = bad(id, "an item lacks image, label, split, file or boxes");
            goto out;
        }
        memcpy(it->image, img, 65);
        memcpy(it->label, lab, 65);
        it->split = lupe_split_parse(spl);
        it->width = (int)json_integer_value(json_object_get(e, "width"));
        it->height = (int)json_integer_value(json_object_get(e, "height"));
        it->file_name = lupe_strdup(file);
        it->group = grp ? lupe_strdup(grp) : NULL;
        it->nboxes = (int)json_array_size(boxes);
        it->boxes = lupe_calloc((size_t)it->nboxes + 1, sizeof *it->boxes);
        if (!it->file_name || !it->boxes || (grp && !it->group)) {
            st = LUPE_ENOMEM;
            goto out;
        }
        for (int k = 0; k < it->nboxes; k++) {
            json_t *b = json_array_get(boxes, (size_t)k);
            it->boxes[k] = (lupe_box){(int)json_integer_value(json_array_get(b, 0)),
                                      json_number_value(json_array_get(b, 1)), json_number_value(json_array_get(b, 2)),
                                      json_number_value(json_array_get(b, 3)), json_number_value(json_array_get(b, 4))};
            if (it->boxes[k].cls < 0 || it->boxes[k].cls >= m->nclasses) {
                st = bad(id, "a box has a class outside the label set");
                goto out;
            }
        }
    }
    *out = m;
    m = NULL;
out:
    json_decref(root);
    lupe_manifest_free(m);
    return st;
}

lupe_status lupe_dataset_load(lupe_ws *ws, const char *ref, lupe_manifest **out)
{
    lupe_dataset_info d;
    lupe_status st = lupe_dataset_get(ws, ref, &d);
    if (st) return st;
    uint8_t *buf = NULL;
    size_t len = 0;
    if ((st = lupe_obj_get(ws, d.id, &buf, &len))) {
        st = lupe_err_ctx(st, "loading dataset %s@%d", d.name, d.version);
    } else {
        st = dataset__decode(d.id, (const char *)buf, len, out);
    }
    lupe_free(buf);
    lupe_dataset_info_cleanup(&d);
    return st;
}
