/*
 * The database schema as a list of migrations. Version N of the schema is
 * what migrations 1..N produce; PRAGMA user_version records it. A migration
 * runs in one transaction with its version bump, so a crash leaves either
 * the old schema or the new one. Never edit a released migration: add one.
 */
#include "store/store_internal.h"

typedef struct migration {
    int version;
    const char *what;
    const char *sql;
} migration;

static const migration migrations[] = {
    {1, "images, their paths and tags",
     "CREATE TABLE meta (\n"
     "  key   TEXT PRIMARY KEY,\n"
     "  value TEXT NOT NULL\n"
     ") STRICT;\n"
     "CREATE TABLE images (\n"
     "  id            TEXT PRIMARY KEY CHECK (length(id) = 64),\n"
     "  size          INTEGER NOT NULL CHECK (size > 0),\n"
     "  width         INTEGER NOT NULL CHECK (width > 0),\n"
     "  height        INTEGER NOT NULL CHECK (height > 0),\n"
     "  channels      INTEGER NOT NULL,\n"
     "  format        TEXT NOT NULL,\n"
     "  captured_at   INTEGER NOT NULL,\n"
     "  captured_from TEXT NOT NULL CHECK (captured_from IN ('exif', 'file')),\n"
     "  source        TEXT,\n"
     "  arrival       TEXT NOT NULL DEFAULT 'ingest',\n"
     "  orig_path     TEXT NOT NULL,\n"
     "  ingested_at   INTEGER NOT NULL\n"
     ") STRICT;\n"
     "CREATE INDEX images_ingested ON images (ingested_at);\n"
     "CREATE TABLE image_paths (\n"
     "  image_id TEXT NOT NULL REFERENCES images (id),\n"
     "  path     TEXT NOT NULL,\n"
     "  seen_at  INTEGER NOT NULL,\n"
     "  PRIMARY KEY (image_id, path)\n"
     ") STRICT;\n"
     "CREATE TABLE image_tags (\n"
     "  image_id TEXT NOT NULL REFERENCES images (id),\n"
     "  key      TEXT NOT NULL,\n"
     "  value    TEXT NOT NULL,\n"
     "  PRIMARY KEY (image_id, key, value)\n"
     ") STRICT;\n"
     "CREATE INDEX image_tags_kv ON image_tags (key, value);\n"},
    {2, "label sets, label revisions and labeling jobs",
     "CREATE TABLE label_sets (\n"
     "  id         INTEGER PRIMARY KEY,\n"
     "  name       TEXT NOT NULL UNIQUE,\n"
     "  created_at INTEGER NOT NULL\n"
     ") STRICT;\n"
     "CREATE TABLE label_classes (\n"
     "  set_id INTEGER NOT NULL REFERENCES label_sets (id),\n"
     "  idx    INTEGER NOT NULL,\n"
     "  name   TEXT NOT NULL,\n"
     "  PRIMARY KEY (set_id, idx),\n"
     "  UNIQUE (set_id, name)\n"
     ") STRICT;\n"
     "CREATE TABLE label_set_log (\n"
     "  id     INTEGER PRIMARY KEY,\n"
     "  set_id INTEGER NOT NULL REFERENCES label_sets (id),\n"
     "  op     TEXT NOT NULL,\n"
     "  detail TEXT NOT NULL,\n"
     "  author TEXT NOT NULL,\n"
     "  at     INTEGER NOT NULL\n"
     ") STRICT;\n"
     "CREATE TABLE label_jobs (\n"
     "  id         INTEGER PRIMARY KEY,\n"
     "  set_id     INTEGER NOT NULL REFERENCES label_sets (id),\n"
     "  name       TEXT,\n"
     "  assignee   TEXT,\n"
     "  reviewer   TEXT,\n"
     "  created_by TEXT NOT NULL,\n"
     "  created_at INTEGER NOT NULL\n"
     ") STRICT;\n"
     "CREATE TABLE label_job_items (\n"
     "  job_id   INTEGER NOT NULL REFERENCES label_jobs (id),\n"
     "  image_id TEXT NOT NULL REFERENCES images (id),\n"
     "  pos      INTEGER NOT NULL,\n"
     "  PRIMARY KEY (job_id, image_id)\n"
     ") STRICT;\n"
     "CREATE TABLE label_revs (\n"
     "  id         INTEGER PRIMARY KEY,\n"
     "  image_id   TEXT NOT NULL REFERENCES images (id),\n"
     "  set_id     INTEGER NOT NULL REFERENCES label_sets (id),\n"
     "  parent_id  INTEGER REFERENCES label_revs (id),\n"
     "  boxes      TEXT NOT NULL,\n"
     "  nboxes     INTEGER NOT NULL,\n"
     "  hash       TEXT NOT NULL,\n"
     "  status     TEXT NOT NULL CHECK (status IN ('draft', 'submitted', 'approved', 'rejected')),\n"
     "  source     TEXT NOT NULL CHECK (source IN ('human', 'model', 'import')),\n"
     "  author     TEXT NOT NULL,\n"
     "  comment    TEXT,\n"
     "  verdict    TEXT,\n"
     "  job_id     INTEGER REFERENCES label_jobs (id),\n"
     "  created_at INTEGER NOT NULL\n"
     ") STRICT;\n"
     "CREATE INDEX label_revs_image ON label_revs (set_id, image_id, id);\n"},
    {3, "dataset versions",
     "CREATE TABLE datasets (\n"
     "  seq        INTEGER PRIMARY KEY,\n"
     "  id         TEXT NOT NULL CHECK (length(id) = 64),\n"
     "  name       TEXT NOT NULL,\n"
     "  version    INTEGER NOT NULL CHECK (version > 0),\n"
     "  labelset   TEXT NOT NULL,\n"
     "  parent     TEXT,\n"
     "  items      INTEGER NOT NULL,\n"
     "  boxes      INTEGER NOT NULL,\n"
     "  train      INTEGER NOT NULL,\n"
     "  val        INTEGER NOT NULL,\n"
     "  test       INTEGER NOT NULL,\n"
     "  params     TEXT NOT NULL,\n"
     "  created_by TEXT NOT NULL,\n"
     "  created_at INTEGER NOT NULL,\n"
     "  UNIQUE (name, version)\n"
     ") STRICT;\n"
     "CREATE INDEX datasets_id ON datasets (id);\n"},
    /* The model registry (src/registry/). A version's weights and training
     * log are objects, so a version outlives its run folder; rows of the
     * two logs are only ever added. */
    {4, "model registry: groups, versions, status and alias history",
     "CREATE TABLE model_groups (\n"
     "  id         INTEGER PRIMARY KEY,\n"
     "  name       TEXT NOT NULL UNIQUE,\n"
     "  created_by TEXT NOT NULL,\n"
     "  created_at INTEGER NOT NULL\n"
     ") STRICT;\n"
     "CREATE TABLE model_versions (\n"
     "  id            INTEGER PRIMARY KEY,\n"
     "  group_id      INTEGER NOT NULL REFERENCES model_groups (id),\n"
     "  version       INTEGER NOT NULL CHECK (version > 0),\n"
     "  arch          TEXT NOT NULL,\n"
     "  scale         TEXT NOT NULL,\n"
     "  imgsz         INTEGER NOT NULL CHECK (imgsz > 0),\n"
     "  classes       TEXT NOT NULL,\n"
     "  dataset_id    TEXT NOT NULL,\n"
     "  dataset_name  TEXT NOT NULL,\n"
     "  source_commit TEXT NOT NULL,\n"
     "  hyperparams   TEXT NOT NULL,\n"
     "  run_dir       TEXT NOT NULL,\n"
     "  metrics       TEXT NOT NULL,\n"
     "  weights       TEXT NOT NULL CHECK (length(weights) = 64),\n"
     "  weights_size  INTEGER NOT NULL CHECK (weights_size > 0),\n"
     "  results       TEXT CHECK (results IS NULL OR length(results) = 64),\n"
     "  gate          TEXT,\n"
     "  note          TEXT,\n"
     "  status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'archived')),\n"
     "  registered_by TEXT NOT NULL,\n"
     "  registered_at INTEGER NOT NULL,\n"
     "  UNIQUE (group_id, version)\n"
     ") STRICT;\n"
     "CREATE TABLE model_status_log (\n"
     "  id          INTEGER PRIMARY KEY,\n"
     "  version_id  INTEGER NOT NULL REFERENCES model_versions (id),\n"
     "  from_status TEXT,\n"
     "  to_status   TEXT NOT NULL,\n"
     "  who         TEXT NOT NULL,\n"
     "  at          INTEGER NOT NULL,\n"
     "  why         TEXT NOT NULL\n"
     ") STRICT;\n"
     "CREATE INDEX model_status_log_version ON model_status_log (version_id, id);\n"
     "CREATE TABLE model_aliases (\n"
     "  group_id   INTEGER NOT NULL REFERENCES model_groups (id),\n"
     "  name       TEXT NOT NULL,\n"
     "  version_id INTEGER NOT NULL REFERENCES model_versions (id),\n"
     "  PRIMARY KEY (group_id, name)\n"
     ") STRICT;\n"
     "CREATE TABLE model_alias_log (\n"
     "  id           INTEGER PRIMARY KEY,\n"
     "  group_id     INTEGER NOT NULL REFERENCES model_groups (id),\n"
     "  name         TEXT NOT NULL,\n"
     "  from_version INTEGER,\n"
     "  to_version   INTEGER NOT NULL,\n"
     "  who          TEXT NOT NULL,\n"
     "  at           INTEGER NOT NULL,\n"
     "  why          TEXT\n"
     ") STRICT;\n"
     "CREATE INDEX model_alias_log_name ON model_alias_log (group_id, name, id);\n"},
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int lupe_ws_schema_latest(void)
{
    return migrations[N_MIGRATIONS - 1].version;
}

static lupe_status user_version(lupe_ws *ws, int *out)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "PRAGMA user_version", &s);
    if (st) return st;
    if (sqlite3_step(s) != SQLITE_ROW) st = store__db_err(ws, "reading the schema version");
    else *out = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return st;
}

lupe_status store__migrate(lupe_ws *ws)
{
    int have = 0;
    lupe_status st = user_version(ws, &have);
    if (st) return st;
    if (have > lupe_ws_schema_latest()) {
        return lupe_err(LUPE_EUNSUPPORTED,
                        "the workspace has schema version %d, newer than this lupe knows (%d): upgrade lupe", have,
                        lupe_ws_schema_latest());
    }
    for (int i = 0; i < N_MIGRATIONS; i++) {
        const migration *m = &migrations[i];
        if (m->version <= have) continue;
        /* IMMEDIATE takes the write lock first, so two processes opening an
         * old workspace at once do not both migrate it. */
        if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) return st;
        int now = 0;
        if ((st = user_version(ws, &now))) goto fail;
        if (now >= m->version) {
            store__exec(ws, "COMMIT");
            continue;
        }
        if ((st = store__exec(ws, m->sql))) goto fail;
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", m->version);
        if ((st = store__exec(ws, bump))) goto fail;
        if ((st = store__exec(ws, "COMMIT"))) goto fail;
        lupe_log_debug("workspace schema migrated to version %d (%s)", m->version, m->what);
        continue;
    fail:
        sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
        return lupe_err_ctx(st, "migrating the schema to version %d (%s)", m->version, m->what);
    }
    ws->schema = lupe_ws_schema_latest();
    return LUPE_OK;
}
