/*
 * Creating and finding dataset versions. Creation gathers the chosen label
 * of every image in the label set, groups and splits them, encodes the
 * manifest, stores it as an object (durably) and only then records the
 * version row, so a crash never leaves a version without its manifest.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dataset_internal.h"

lupe_dataset_opts lupe_dataset_default_opts(void)
{
    lupe_dataset_opts o = {0};
    o.labelset = LUPE_DEFAULT_LABELSET;
    o.ratios[0] = 70, o.ratios[1] = 15, o.ratios[2] = 15;
    o.author = lupe_label_default_author();
    return o;
}

int lupe_dataset_parse_ratios(const char *s, int r[3])
{
    int used = 0;
    if (sscanf(s, "%d/%d/%d%n", &r[0], &r[1], &r[2], &used) != 3 || s[used]) return -1;
    if (r[0] < 0 || r[1] < 0 || r[2] < 0 || r[0] + r[1] + r[2] != 100) return -1;
    return 0;
}

void lupe_dataset_info_cleanup(lupe_dataset_info *d)
{
    lupe_free(d->name);
    lupe_free(d->labelset);
    lupe_free(d->created_by);
    lupe_free(d->params);
    memset(d, 0, sizeof *d);
}

#define INFO_COLS "id, name, version, labelset, coalesce(parent, ''), items, boxes, train, val, test, created_by, created_at, params"

static lupe_status read_info(sqlite3_stmt *s, lupe_dataset_info *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->id, sizeof d->id, "%s", (const char *)sqlite3_column_text(s, 0));
    d->name = store__col_strdup(s, 1);
    d->version = sqlite3_column_int(s, 2);
    d->labelset = store__col_strdup(s, 3);
    snprintf(d->parent, sizeof d->parent, "%s", (const char *)sqlite3_column_text(s, 4));
    d->items = sqlite3_column_int64(s, 5);
    d->boxes = sqlite3_column_int64(s, 6);
    for (int k = 0; k < 3; k++) d->split_items[k] = sqlite3_column_int64(s, 7 + k);
    d->created_by = store__col_strdup(s, 10);
    d->created_at = sqlite3_column_int64(s, 11);
    d->params = store__col_strdup(s, 12);
    if (!d->name || !d->labelset || !d->created_by || !d->params) {
        lupe_dataset_info_cleanup(d);
        return LUPE_ENOMEM;
    }
    return LUPE_OK;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) > 100) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}

lupe_status lupe_dataset_get(lupe_ws *ws, const char *ref, lupe_dataset_info *out)
{
    char name[128];
    int version = 0;
    const char *at = strchr(ref, '@');
    sqlite3_stmt *s = NULL;
    lupe_status st;
    if (at) {
        char *end;
        long v = strtol(at + 1, &end, 10);
        if ((size_t)(at - ref) >= sizeof name || *end || v < 1)
            return lupe_err(LUPE_EARG, "'%s' is not a dataset reference (NAME@N, NAME or an id prefix)", ref);
        memcpy(name, ref, (size_t)(at - ref));
        name[at - ref] = 0;
        version = (int)v;
        st = store__prepare(ws, "SELECT " INFO_COLS " FROM datasets WHERE name = ?1 AND version = ?2", &s);
    } else {
        snprintf(name, sizeof name, "%s", ref);
        st = store__prepare(ws, "SELECT " INFO_COLS " FROM datasets WHERE name = ?1 OR (length(?1) >= 8 AND "
                                "id >= ?1 AND id < ?1 || 'g') ORDER BY name = ?1 DESC, version DESC LIMIT 1", &s);
    }
    if (st) return st;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (at) sqlite3_bind_int(s, 2, version);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st = read_info(s, out);
    else if (rc == SQLITE_DONE)
        st = lupe_err(LUPE_ENOTFOUND, "no dataset '%s' (see 'lupe dataset list')", ref);
    else
        st = store__db_err(ws, "looking up a dataset");
    sqlite3_finalize(s);
    return st;
}

lupe_status lupe_dataset_each(lupe_ws *ws, int (*fn)(void *ud, const lupe_dataset_info *d), void *ud)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "SELECT " INFO_COLS " FROM datasets ORDER BY name, version", &s);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        lupe_dataset_info d;
        if ((st = read_info(s, &d))) break;
        int stop = fn(ud, &d);
        lupe_dataset_info_cleanup(&d);
        if (stop) break;
    }
    if (!st && rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "listing datasets");
    sqlite3_finalize(s);
    return st;
}

/* Gathers the chosen revision of every labeled image, sorted by image id. */
static lupe_status gather(lupe_ws *ws, int64_t set_id, lupe_label_from from, lupe_manifest *m)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(
        ws,
        "SELECT r.image_id, r.hash, r.boxes, i.width, i.height, i.orig_path FROM label_revs r JOIN (SELECT image_id, "
        "max(id) AS id FROM label_revs WHERE set_id = ?1 AND (status = 'approved' OR (?2 AND status = 'submitted')) "
        "GROUP BY image_id) m ON m.id = r.id JOIN images i ON i.id = r.image_id ORDER BY r.image_id",
        &s);
    if (st) return st;
    sqlite3_bind_int64(s, 1, set_id);
    sqlite3_bind_int(s, 2, from == LUPE_FROM_SUBMITTED);
    int64_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (m->nitems == DATASET_MAX_ITEMS) {
            st = lupe_err(LUPE_ELIMIT, "a dataset holds at most %d images", DATASET_MAX_ITEMS);
            break;
        }
        if (m->nitems == cap) {
            cap = cap ? cap * 2 : 256;
            lupe_dataset_item *n = lupe_realloc(m->items, (size_t)cap * sizeof *n);
            if (!n) {
                st = LUPE_ENOMEM;
                break;
            }
            m->items = n;
        }
        lupe_dataset_item *it = &m->items[m->nitems];
        memset(it, 0, sizeof *it);
        m->nitems++;
        snprintf(it->image, sizeof it->image, "%s", (const char *)sqlite3_column_text(s, 0));
        snprintf(it->label, sizeof it->label, "%s", (const char *)sqlite3_column_text(s, 1));
        it->split = -1;
        it->width = sqlite3_column_int(s, 3);
        it->height = sqlite3_column_int(s, 4);
        const char *path = (const char *)sqlite3_column_text(s, 5);
        const char *slash = path ? strrchr(path, '/') : NULL;
        it->file_name = lupe_strdup(slash ? slash + 1 : path ? path : it->image);
        if (!it->file_name) {
            st = LUPE_ENOMEM;
            break;
        }
        if ((st = label__boxes_parse((const char *)sqlite3_column_text(s, 2), &it->boxes, &it->nboxes))) break;
    }
    if (!st && rc != SQLITE_DONE) st = store__db_err(ws, "gathering labels");
    sqlite3_finalize(s);
    return st;
}

/* Applies a split given as lists of file names; unlisted images are left
 * out (and counted), since mixing in a computed split would defeat it. */
static lupe_status split_from_lists(lupe_manifest *m, const char *dir)
{
    lupe_status st = LUPE_OK;
    int64_t unlisted = 0, kept = 0;
    for (int sp = 0; sp < 3 && !st; sp++) {
        char *path = lupe_asprintf("%s/%s.txt", dir, lupe_split_name(sp));
        uint8_t *buf = NULL;
        size_t len = 0;
        if (!path) return LUPE_ENOMEM;
        st = lupe_file_read(path, 64u << 20, &buf, &len);
        lupe_free(path);
        if (st == LUPE_ENOTFOUND) {
            st = LUPE_OK;
            continue;
        }
        if (st) break;
        char *text = lupe_strndup((const char *)buf, len);
        lupe_free(buf);
        if (!text) return LUPE_ENOMEM;
        for (char *save = NULL, *line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
            for (int64_t i = 0; i < m->nitems; i++)
                if (m->items[i].split < 0 && strcmp(m->items[i].file_name, line) == 0) m->items[i].split = sp;
        lupe_free(text);
    }
    if (st) return lupe_err_ctx(st, "reading the split lists in %s", dir);
    for (int64_t i = 0; i < m->nitems; i++) {
        if (m->items[i].split < 0) {
            unlisted++;
            dataset__item_cleanup(&m->items[i]);
        } else {
            m->items[kept++] = m->items[i];
        }
    }
    m->nitems = kept;
    if (unlisted) lupe_log_warn("%lld labeled images are in none of %s/{train,val,test}.txt: left out", (long long)unlisted, dir);
    return LUPE_OK;
}

lupe_status lupe_dataset_create(lupe_ws *ws, const lupe_dataset_opts *o, lupe_dataset_info *out, int *out_unchanged)
{
    if (!o->name || !valid_name(o->name))
        return lupe_err(LUPE_EARG, "dataset name '%s' must be 1-100 letters, digits, '_', '-' or '.'", o->name ? o->name : "");
    if (o->ratios[0] < 0 || o->ratios[1] < 0 || o->ratios[2] < 0 || o->ratios[0] + o->ratios[1] + o->ratios[2] != 100)
        return lupe_err(LUPE_EARG, "split ratios must be three non-negative percentages summing to 100");
    lupe_status st = LUPE_OK;
    lupe_labelset ls = {0};
    lupe_manifest *m = NULL, *prev = NULL;
    lupe_dataset_info last = {0};
    char *text = NULL, *params = NULL;
    int have_last = 0;
    if (out_unchanged) *out_unchanged = 0;
    if ((st = lupe_labelset_get(ws, o->labelset, &ls))) return st;
    if (!(m = lupe_calloc(1, sizeof *m))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    m->name = lupe_strdup(o->name);
    m->labelset = lupe_strdup(ls.name);
    m->classes = ls.classes;
    m->nclasses = ls.nclasses;
    ls.classes = NULL; /* moved into the manifest */
    ls.nclasses = 0;
    if (!m->name || !m->labelset) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if ((st = gather(ws, ls.id, o->from, m))) goto out;
    if (m->nitems == 0) {
        st = lupe_err(LUPE_ENOTFOUND, "label set '%s' has no %s labels to make a dataset from", ls.name,
                      o->from == LUPE_FROM_APPROVED ? "approved" : "approved or submitted");
        goto out;
    }
    if ((st = dataset__groups(ws, m->items, m->nitems, o->group_by))) goto out;
    st = lupe_dataset_get(ws, o->name, &last);
    if (st == LUPE_OK) {
        have_last = 1;
        if (strcmp(last.name, o->name) != 0) {
            /* The reference matched an id prefix, not this name. */
            lupe_dataset_info_cleanup(&last);
            have_last = 0;
        }
    } else if (st != LUPE_ENOTFOUND) {
        goto out;
    }
    st = LUPE_OK;
    if (have_last) {
        char ref[160];
        snprintf(ref, sizeof ref, "%s@%d", last.name, last.version);
        if ((st = lupe_dataset_load(ws, ref, &prev))) goto out;
    }
    if (o->split_from) {
        if ((st = split_from_lists(m, o->split_from))) goto out;
    } else if ((st = dataset__assign_splits(m->items, m->nitems, o->ratios, o->seed, prev))) {
        goto out;
    }
    {
        json_t *p = json_pack("{s:[i,i,i], s:s?, s:I, s:s, s:s?}", "ratios", o->ratios[0], o->ratios[1], o->ratios[2],
                              "group_by", o->group_by, "seed", (json_int_t)o->seed, "from",
                              o->from == LUPE_FROM_APPROVED ? "approved" : "submitted", "split_from",
                              o->split_from ? "lists" : NULL);
        params = p ? lupe_json_dump(p, 0) : NULL;
        json_decref(p);
    }
    if (!params || !(text = dataset__encode(m, params))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    char id[LUPE_SHA256_HEX];
    if ((st = lupe_obj_put(ws, text, strlen(text), id, NULL))) goto out;
    if (have_last && strcmp(last.id, id) == 0) {
        if (out_unchanged) *out_unchanged = 1;
        *out = last;
        memset(&last, 0, sizeof last);
        goto out;
    }
    int64_t counts[3] = {0, 0, 0}, boxes = 0;
    for (int64_t i = 0; i < m->nitems; i++) {
        counts[m->items[i].split]++;
        boxes += m->items[i].nboxes;
    }
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) goto out;
    sqlite3_stmt *s = NULL;
    if ((st = store__prepare(ws,
                             "INSERT INTO datasets (id, name, version, labelset, parent, items, boxes, train, val, test, "
                             "params, created_by, created_at) VALUES (?1, ?2, (SELECT coalesce(max(version), 0) + 1 FROM "
                             "datasets WHERE name = ?2), ?3, nullif(?4, ''), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                             &s)))
        goto rollback;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, m->labelset, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, have_last ? last.id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, m->nitems);
    sqlite3_bind_int64(s, 6, boxes);
    for (int k = 0; k < 3; k++) sqlite3_bind_int64(s, 7 + k, counts[k]);
    sqlite3_bind_text(s, 10, params, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, o->author ? o->author : "unknown", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 12, lupe_time_unix());
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        st = store__db_err(ws, "recording the dataset version");
        goto rollback;
    }
    if ((st = store__exec(ws, "COMMIT"))) goto rollback;
    st = lupe_dataset_get(ws, o->name, out); /* the newest version of the name: this one */
    goto out;
rollback:
    sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
out:
    if (st) st = lupe_err_ctx(st, "creating dataset %s", o->name);
    lupe_labelset_cleanup(&ls);
    lupe_manifest_free(m);
    lupe_manifest_free(prev);
    lupe_dataset_info_cleanup(&last);
    lupe_free(text);
    lupe_free(params);
    return st;
}
