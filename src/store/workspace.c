/*
 * Opening, creating and configuring a workspace: the .lupe/ folder layout,
 * the SQLite connection with its pragmas, and the workspace config file.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"

static const char *const oob_choices[] = {"clip", "reject", NULL};

static const lupe_cfg_key ws_keys[] = {
    {"ingest.max_file_size", LUPE_CFG_SIZE, offsetof(lupe_ws_config, ingest_max_file_size), 1, 4e9, NULL,
     "largest image file ingest accepts"},
    {"ingest.max_side", LUPE_CFG_INT, offsetof(lupe_ws_config, ingest_max_side), 1, 65535, NULL,
     "largest width or height ingest accepts"},
    {"ingest.max_pixels", LUPE_CFG_INT, offsetof(lupe_ws_config, ingest_max_pixels), 1, 4e9, NULL,
     "largest width x height ingest accepts"},
    {"ingest.default_source", LUPE_CFG_STRING, offsetof(lupe_ws_config, ingest_default_source), 1, 0, NULL,
     "source recorded when ingest is given no --source"},
    {"labels.out_of_bounds", LUPE_CFG_ENUM, offsetof(lupe_ws_config, labels_out_of_bounds), 1, 0, oob_choices,
     "what to do with a box that extends past its image: clip or reject"},
    {0},
};

static const char default_config[] =
    "# lupe workspace settings. Unknown keys are errors; see docs/operations.md.\n"
    "# ingest.max_file_size = 256M\n"
    "# ingest.max_side = 32768\n"
    "# ingest.max_pixels = 67108864\n"
    "# ingest.default_source = camera-1\n"
    "# labels.out_of_bounds = clip\n";

lupe_status store__db_err(lupe_ws *ws, const char *what)
{
    return lupe_err(LUPE_EDB, "%s: %s", what, ws->db ? sqlite3_errmsg(ws->db) : "no database");
}

lupe_status store__exec(lupe_ws *ws, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(ws->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        lupe_status st = lupe_err(LUPE_EDB, "database: %s", msg ? msg : sqlite3_errmsg(ws->db));
        sqlite3_free(msg);
        return st;
    }
    return LUPE_OK;
}

lupe_status store__prepare(lupe_ws *ws, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(ws->db, sql, -1, out, NULL) != SQLITE_OK) return store__db_err(ws, "preparing a query");
    return LUPE_OK;
}

char *store__col_strdup(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return t ? lupe_strdup((const char *)t) : NULL;
}

const char *lupe_ws_root(const lupe_ws *ws)
{
    return ws->root;
}

int lupe_ws_schema_version(const lupe_ws *ws)
{
    return ws->schema;
}

const lupe_ws_config *lupe_ws_get_config(const lupe_ws *ws)
{
    return &ws->cfg;
}

void lupe_ws_close(lupe_ws *ws)
{
    if (!ws) return;
    if (ws->db) sqlite3_close_v2(ws->db);
    lupe_config_cleanup(ws_keys, &ws->cfg);
    lupe_free(ws->root);
    lupe_free(ws->dir);
    lupe_free(ws->objects);
    lupe_free(ws->tmp);
    lupe_free(ws);
}

static lupe_ws *ws_alloc(const char *root)
{
    lupe_ws *ws = lupe_calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->root = lupe_strdup(root);
    ws->dir = ws->root ? lupe_path_join(root, LUPE_WS_DIR) : NULL;
    ws->objects = ws->dir ? lupe_path_join(ws->dir, "objects") : NULL;
    ws->tmp = ws->dir ? lupe_path_join(ws->dir, "tmp") : NULL;
    ws->cfg.ingest_max_file_size = 256ull << 20;
    ws->cfg.ingest_max_side = 32768;
    ws->cfg.ingest_max_pixels = 64ll << 20;
    if (!ws->tmp) {
        lupe_ws_close(ws);
        return NULL;
    }
    return ws;
}

/* Opens the database and sets the pragmas every connection needs. WAL lets
 * readers run during an ingest; synchronous=FULL makes every commit durable,
 * which the crash tests rely on. */
static lupe_status open_db(lupe_ws *ws, int create)
{
    char *path = lupe_path_join(ws->dir, "lupe.db");
    if (!path) return LUPE_ENOMEM;
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &ws->db, flags, NULL);
    lupe_status st = LUPE_OK;
    if (rc != SQLITE_OK) {
        st = lupe_err(LUPE_EDB, "%s: %s", path, ws->db ? sqlite3_errmsg(ws->db) : sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_busy_timeout(ws->db, 10000);
    sqlite3_extended_result_codes(ws->db, 1);
    if ((st = store__exec(ws, "PRAGMA journal_mode = WAL"))) goto out;
    if ((st = store__exec(ws, "PRAGMA synchronous = FULL"))) goto out;
    if ((st = store__exec(ws, "PRAGMA foreign_keys = ON"))) goto out;
    st = store__migrate(ws);
out:
    if (st) st = lupe_err_ctx(st, "opening the database %s", path);
    lupe_free(path);
    return st;
}

static lupe_status load_config(lupe_ws *ws)
{
    char *path = lupe_path_join(ws->dir, "config");
    if (!path) return LUPE_ENOMEM;
    lupe_status st = LUPE_OK;
    if (lupe_path_exists(path)) st = lupe_config_load(ws_keys, &ws->cfg, path);
    lupe_free(path);
    return st;
}

lupe_status lupe_ws_init(const char *dir, lupe_ws **out)
{
    lupe_status st = LUPE_OK;
    lupe_ws *ws = NULL;
    char *abs = NULL, *cfg = NULL;
    if ((st = lupe_mkdirs(dir))) return st;
    abs = realpath(dir, NULL);
    if (!abs) return lupe_err(LUPE_EIO, "%s: %s", dir, strerror(errno));
    if (!(ws = ws_alloc(abs))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if (lupe_path_exists(ws->dir)) {
        st = lupe_err(LUPE_EEXIST, "%s already holds a workspace (%s)", abs, ws->dir);
        goto out;
    }
    if ((st = lupe_mkdirs(ws->objects)) || (st = lupe_mkdirs(ws->tmp))) goto out;
    if ((st = open_db(ws, 1))) goto out;
    uint8_t rnd[16];
    char wsid[33], now[32], sql[256];
    lupe_random_bytes(rnd, sizeof rnd);
    lupe_hex(rnd, sizeof rnd, wsid);
    lupe_time_iso(lupe_time_unix(), now, sizeof now);
    snprintf(sql, sizeof sql, "INSERT INTO meta (key, value) VALUES ('workspace_id', '%s'), ('created_at', '%s')",
             wsid, now);
    if ((st = store__exec(ws, sql))) goto out;
    cfg = lupe_path_join(ws->dir, "config");
    if (!cfg) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if ((st = lupe_file_write_atomic(cfg, default_config, sizeof default_config - 1))) goto out;
    if ((st = lupe_fsync_dir(ws->dir)) || (st = lupe_fsync_dir(ws->root))) goto out;
    *out = ws;
    ws = NULL;
out:
    if (st) st = lupe_err_ctx(st, "creating a workspace in %s", dir);
    lupe_ws_close(ws);
    free(abs); /* realpath uses malloc */
    lupe_free(cfg);
    return st;
}

lupe_status lupe_ws_open(const char *dir, int flags, lupe_ws **out)
{
    lupe_status st = LUPE_OK;
    lupe_ws *ws = NULL;
    char *abs = realpath(dir, NULL);
    if (!abs) return lupe_err(LUPE_ENOTFOUND, "%s: %s", dir, strerror(errno));
    /* Walk up from abs looking for .lupe/, as git looks for .git/. */
    char *cur = lupe_strdup(abs);
    free(abs);
    if (!cur) return LUPE_ENOMEM;
    for (;;) {
        char *probe = lupe_path_join(cur, LUPE_WS_DIR "/lupe.db");
        int found = probe && lupe_path_exists(probe);
        lupe_free(probe);
        if (found) break;
        char *slash = strrchr(cur, '/');
        if (!(flags & LUPE_WS_FIND) || !slash || slash == cur) {
            st = lupe_err(LUPE_ENOTFOUND, "no lupe workspace in %s%s (create one with 'lupe init')", dir,
                          (flags & LUPE_WS_FIND) ? " or its parents" : "");
            goto out;
        }
        *slash = 0;
    }
    if (!(ws = ws_alloc(cur))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if ((st = load_config(ws))) goto out;
    if ((st = lupe_mkdirs(ws->objects)) || (st = lupe_mkdirs(ws->tmp))) goto out;
    if ((st = open_db(ws, 0))) goto out;
    *out = ws;
    ws = NULL;
out:
    lupe_ws_close(ws);
    lupe_free(cur);
    return st;
}
