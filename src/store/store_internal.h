/*
 * What the store's files share and nobody else sees: the workspace struct,
 * the on-disk layout and small SQLite helpers.
 */
#ifndef LUPE_STORE_INTERNAL_H
#define LUPE_STORE_INTERNAL_H

#include <sqlite3.h>

#include "lupe/store.h"

struct lupe_ws {
    char *root;     /* folder holding .lupe/ */
    char *dir;      /* root/.lupe */
    char *objects;  /* dir/objects */
    char *tmp;      /* dir/tmp: temp files before they are renamed into objects/ */
    sqlite3 *db;
    int schema;
    lupe_ws_config cfg;
};

/* Sets the detail message from the database's last error, with context. */
lupe_status store__db_err(lupe_ws *ws, const char *what);
/* Runs SQL with no results. */
lupe_status store__exec(lupe_ws *ws, const char *sql);
lupe_status store__prepare(lupe_ws *ws, const char *sql, sqlite3_stmt **out);
/* Brings the schema to the latest version; sets ws->schema. */
lupe_status store__migrate(lupe_ws *ws);
/* Text column as a funnel string, NULL for SQL NULL. */
char *store__col_strdup(sqlite3_stmt *s, int col);

#endif
