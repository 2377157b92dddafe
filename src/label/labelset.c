/*
 * Label sets: a name and an ordered list of class names. Class ids are
 * positions in that list and never change; adding a class appends, renaming
 * keeps the id. Both are recorded in label_set_log with author and time.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "label/label_internal.h"

static lupe_status check_name(const char *what, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200) return lupe_err(LUPE_EARG, "%s '%s' must be 1 to 200 bytes", what, s);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == ',')
            return lupe_err(LUPE_EARG, "%s '%s' may not hold commas or control characters", what, s);
    return LUPE_OK;
}

void lupe_labelset_cleanup(lupe_labelset *s)
{
    for (int i = 0; i < s->nclasses; i++) lupe_free(s->classes[i]);
    lupe_free(s->classes);
    lupe_free(s->name);
    memset(s, 0, sizeof *s);
}

lupe_status label__set_id(lupe_ws *ws, const char *name, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "SELECT id FROM label_sets WHERE name = ?1", &s);
    if (st) return st;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        st = lupe_err(LUPE_ENOTFOUND, "no label set '%s' (create it with 'lupe labelset create')", name);
    else
        st = store__db_err(ws, "looking up a label set");
    sqlite3_finalize(s);
    return st;
}

static lupe_status log_op(lupe_ws *ws, int64_t set_id, const char *op, const char *detail, const char *author)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(
        ws, "INSERT INTO label_set_log (set_id, op, detail, author, at) VALUES (?1, ?2, ?3, ?4, ?5)", &s);
    if (st) return st;
    sqlite3_bind_int64(s, 1, set_id);
    sqlite3_bind_text(s, 2, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, detail, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, author, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, lupe_time_unix());
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "recording a label set change");
    sqlite3_finalize(s);
    return st;
}

static lupe_status insert_class(lupe_ws *ws, int64_t set_id, int idx, const char *name)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "INSERT INTO label_classes (set_id, idx, name) VALUES (?1, ?2, ?3)", &s);
    if (st) return st;
    sqlite3_bind_int64(s, 1, set_id);
    sqlite3_bind_int(s, 2, idx);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        st = lupe_err(LUPE_EEXIST, "class '%s' is already in the label set", name);
    else if (rc != SQLITE_DONE)
        st = store__db_err(ws, "adding a class");
    sqlite3_finalize(s);
    return st;
}

lupe_status lupe_labelset_create(lupe_ws *ws, const char *name, const char *const *classes, int n, const char *author)
{
    lupe_status st = check_name("label set name", name);
    if (st) return st;
    if (n < 1 || n > LUPE_LABEL_MAX_CLASSES)
        return lupe_err(LUPE_EARG, "a label set needs 1 to %d classes", LUPE_LABEL_MAX_CLASSES);
    for (int i = 0; i < n; i++)
        if ((st = check_name("class name", classes[i]))) return st;
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) return st;
    sqlite3_stmt *s = NULL;
    char *detail = NULL;
    if ((st = store__prepare(ws, "INSERT INTO label_sets (name, created_at) VALUES (?1, ?2)", &s))) goto out;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, lupe_time_unix());
    int rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        st = lupe_err(LUPE_EEXIST, "label set '%s' already exists", name);
        goto out;
    } else if (rc != SQLITE_DONE) {
        st = store__db_err(ws, "creating a label set");
        goto out;
    }
    int64_t id = sqlite3_last_insert_rowid(ws->db);
    json_t *arr = json_array();
    for (int i = 0; i < n && !st; i++) {
        st = insert_class(ws, id, i, classes[i]);
        json_array_append_new(arr, json_string(classes[i]));
    }
    detail = lupe_json_dump(arr, 0);
    json_decref(arr);
    if (st) goto out;
    if ((st = log_op(ws, id, "create", detail ? detail : "", author))) goto out;
    st = store__exec(ws, "COMMIT");
out:
    sqlite3_finalize(s);
    lupe_free(detail);
    if (st) sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

lupe_status lupe_labelset_get(lupe_ws *ws, const char *name, lupe_labelset *out)
{
    memset(out, 0, sizeof *out);
    int64_t id;
    lupe_status st = label__set_id(ws, name, &id);
    if (st) return st;
    sqlite3_stmt *s = NULL;
    if ((st = store__prepare(ws, "SELECT idx, name, (SELECT created_at FROM label_sets WHERE id = ?1) "
                                 "FROM label_classes WHERE set_id = ?1 ORDER BY idx", &s)))
        return st;
    sqlite3_bind_int64(s, 1, id);
    out->id = id;
    out->name = lupe_strdup(name);
    int rc, cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->nclasses == cap) {
            cap = cap ? cap * 2 : 8;
            char **nc = lupe_realloc(out->classes, (size_t)cap * sizeof *nc);
            if (!nc) {
                st = LUPE_ENOMEM;
                break;
            }
            out->classes = nc;
        }
        out->classes[out->nclasses] = store__col_strdup(s, 1);
        if (!out->classes[out->nclasses]) {
            st = LUPE_ENOMEM;
            break;
        }
        out->nclasses++;
        out->created_at = sqlite3_column_int64(s, 2);
    }
    if (!st && rc != SQLITE_DONE) st = store__db_err(ws, "reading classes");
    sqlite3_finalize(s);
    if (!st && !out->name) st = LUPE_ENOMEM;
    if (st) lupe_labelset_cleanup(out);
    return st;
}

int lupe_labelset_class(const lupe_labelset *s, const char *name)
{
    for (int i = 0; i < s->nclasses; i++)
        if (strcmp(s->classes[i], name) == 0) return i;
    char *end;
    long v = strtol(name, &end, 10);
    if (*name && !*end && v >= 0 && v < s->nclasses) return (int)v;
    return -1;
}

lupe_status lupe_labelset_add_class(lupe_ws *ws, const char *name, const char *cls, const char *author)
{
    lupe_status st = check_name("class name", cls);
    if (st) return st;
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) return st;
    lupe_labelset set = {0};
    if ((st = lupe_labelset_get(ws, name, &set))) goto out;
    if (set.nclasses >= LUPE_LABEL_MAX_CLASSES) {
        st = lupe_err(LUPE_ELIMIT, "label set '%s' has the most classes allowed (%d)", name, LUPE_LABEL_MAX_CLASSES);
        goto out;
    }
    if ((st = insert_class(ws, set.id, set.nclasses, cls))) goto out;
    char detail[512];
    snprintf(detail, sizeof detail, "%d %s", set.nclasses, cls);
    if ((st = log_op(ws, set.id, "add-class", detail, author))) goto out;
    st = store__exec(ws, "COMMIT");
out:
    lupe_labelset_cleanup(&set);
    if (st) sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

lupe_status lupe_labelset_rename_class(lupe_ws *ws, const char *name, const char *from, const char *to,
                                       const char *author)
{
    lupe_status st = check_name("class name", to);
    if (st) return st;
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) return st;
    lupe_labelset set = {0};
    sqlite3_stmt *s = NULL;
    if ((st = lupe_labelset_get(ws, name, &set))) goto out;
    int idx = -1;
    for (int i = 0; i < set.nclasses; i++)
        if (strcmp(set.classes[i], from) == 0) idx = i;
    if (idx < 0) {
        st = lupe_err(LUPE_ENOTFOUND, "label set '%s' has no class '%s'", name, from);
        goto out;
    }
    if (lupe_labelset_class(&set, to) >= 0 && strcmp(to, from) != 0) {
        st = lupe_err(LUPE_EEXIST, "label set '%s' already has a class '%s'", name, to);
        goto out;
    }
    if ((st = store__prepare(ws, "UPDATE label_classes SET name = ?3 WHERE set_id = ?1 AND idx = ?2", &s))) goto out;
    sqlite3_bind_int64(s, 1, set.id);
    sqlite3_bind_int(s, 2, idx);
    sqlite3_bind_text(s, 3, to, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) {
        st = store__db_err(ws, "renaming a class");
        goto out;
    }
    char detail[600];
    snprintf(detail, sizeof detail, "%d %s -> %s", idx, from, to);
    if ((st = log_op(ws, set.id, "rename-class", detail, author))) goto out;
    st = store__exec(ws, "COMMIT");
out:
    sqlite3_finalize(s);
    lupe_labelset_cleanup(&set);
    if (st) sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

lupe_status lupe_labelset_each(lupe_ws *ws, int (*fn)(void *ud, const lupe_labelset *s), void *ud)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "SELECT name FROM label_sets ORDER BY name", &s);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        lupe_labelset set;
        if ((st = lupe_labelset_get(ws, (const char *)sqlite3_column_text(s, 0), &set))) break;
        int stop = fn(ud, &set);
        lupe_labelset_cleanup(&set);
        if (stop) break;
    }
    if (!st && rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "listing label sets");
    sqlite3_finalize(s);
    return st;
}

lupe_status lupe_labelset_log_each(lupe_ws *ws, const char *name, int (*fn)(void *ud, const lupe_labelset_op *op),
                                   void *ud)
{
    int64_t id;
    lupe_status st = label__set_id(ws, name, &id);
    if (st) return st;
    sqlite3_stmt *s = NULL;
    if ((st = store__prepare(ws, "SELECT op, detail, author, at FROM label_set_log WHERE set_id = ?1 ORDER BY id",
                             &s)))
        return st;
    sqlite3_bind_int64(s, 1, id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        lupe_labelset_op op = {(const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
                               (const char *)sqlite3_column_text(s, 2), sqlite3_column_int64(s, 3)};
        if (fn(ud, &op)) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "reading the label set log");
    sqlite3_finalize(s);
    return st;
}
