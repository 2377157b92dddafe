/*
 * Registering a finished training run as a model version, and finding
 * versions again. Registration reads what the run recorded (metrics.json,
 * config.json, the checkpoint's metadata), stores the weights and the
 * training log as objects (durably, before any row), then writes the rows
 * in one transaction, so a crash leaves at worst an unreferenced object.
 */
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "lupe/engine.h"
#include "registry/registry_internal.h"

#ifndef LUPE_GIT_COMMIT
#define LUPE_GIT_COMMIT "unknown"
#endif

#define WEIGHTS_MAX_BYTES ((size_t)2 << 30)
#define RUN_JSON_MAX_BYTES ((size_t)16 << 20)

static const char *const status_names[REG_NSTATUS] = {"pending", "approved", "rejected", "archived"};

const char *reg_status_name(reg_status s)
{
    return (unsigned)s < REG_NSTATUS ? status_names[s] : "?";
}

int reg_status_parse(const char *s)
{
    for (int i = 0; i < REG_NSTATUS; i++)
        if (!strcmp(s, status_names[i])) return i;
    return -1;
}

const char *reg_default_user(void)
{
    const char *u = getenv("LUPE_USER");
    if (u && *u) return u;
    /* The login name of the process's user; $USER only where there is no
     * password entry (containers run under bare uids). */
    struct passwd *pw = getpwuid(geteuid());
    if (pw && pw->pw_name && *pw->pw_name) return pw->pw_name;
    u = getenv("USER");
    return u && *u ? u : "unknown";
}

int reg__valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REG_NAME_MAX || s[0] == '.') return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}

lupe_status reg__ref_parse(const char *ref, reg__ref *out)
{
    memset(out, 0, sizeof *out);
    const char *sep = strpbrk(ref, ":@");
    size_t gl = sep ? (size_t)(sep - ref) : strlen(ref);
    if (gl == 0 || gl > REG_NAME_MAX) goto bad;
    memcpy(out->group, ref, gl);
    if (!reg__valid_name(out->group)) goto bad;
    if (sep && *sep == ':') {
        char *end;
        long v = strtol(sep + 1, &end, 10);
        if (!sep[1] || *end || v < 1 || v > INT_MAX) goto bad;
        out->version = (int)v;
    } else if (sep) {
        if (strlen(sep + 1) > REG_NAME_MAX || !reg__valid_name(sep + 1)) goto bad;
        strcpy(out->alias, sep + 1);
    }
    return LUPE_OK;
bad:
    return lupe_err(LUPE_EARG, "'%s' is not a model reference (GROUP:VERSION, GROUP@ALIAS or GROUP)", ref);
}

lupe_status reg__group_id(lupe_ws *ws, const char *group, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "SELECT id FROM model_groups WHERE name = ?1", &s);
    if (st) return st;
    sqlite3_bind_text(s, 1, group, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE) st = lupe_err(LUPE_ENOTFOUND, "no model group '%s' (see 'lupe models list')", group);
    else st = store__db_err(ws, "looking up a model group");
    sqlite3_finalize(s);
    return st;
}

lupe_status reg__tx(lupe_ws *ws, lupe_status (*fn)(lupe_ws *ws, void *ud), void *ud)
{
    lupe_status st = store__exec(ws, "BEGIN IMMEDIATE");
    if (st) return st;
    if ((st = fn(ws, ud)) || (st = store__exec(ws, "COMMIT"))) {
        /* Keep the first error's message: the rollback's is not news. */
        sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return st;
}

char *reg__weights_path(lupe_ws *ws, const reg_version *v)
{
    return lupe_obj_path(ws, v->weights);
}

char *reg__version_data(const reg_version *v)
{
    if (v->dataset_id[0]) return lupe_strdup(v->dataset_id);
    if (v->dataset_name && v->dataset_name[0] == '/' && lupe_path_exists(v->dataset_name))
        return lupe_strdup(v->dataset_name);
    return NULL;
}

/* ---- reading rows -------------------------------------------------------- */

void reg_version_cleanup(reg_version *v)
{
    lupe_free(v->group);
    lupe_free(v->arch);
    lupe_free(v->classes);
    lupe_free(v->dataset_name);
    lupe_free(v->source_commit);
    lupe_free(v->hyperparams);
    lupe_free(v->run_dir);
    lupe_free(v->metrics);
    lupe_free(v->gate);
    lupe_free(v->note);
    lupe_free(v->registered_by);
    memset(v, 0, sizeof *v);
}

#define VERSION_COLS                                                                                             \
    "v.id, g.name, v.version, v.arch, v.scale, v.imgsz, v.classes, v.dataset_id, v.dataset_name, v.source_commit, " \
    "v.hyperparams, v.run_dir, v.metrics, v.weights, v.weights_size, coalesce(v.results, ''), v.gate, v.note, "    \
    "v.status, v.registered_by, v.registered_at FROM model_versions v JOIN model_groups g ON g.id = v.group_id "

static void copy_hex(char dst[LUPE_SHA256_HEX], sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    snprintf(dst, LUPE_SHA256_HEX, "%s", t ? t : "");
}

static lupe_status read_version(sqlite3_stmt *s, reg_version *v)
{
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(s, 0);
    v->group = store__col_strdup(s, 1);
    v->version = sqlite3_column_int(s, 2);
    v->arch = store__col_strdup(s, 3);
    const char *sc = (const char *)sqlite3_column_text(s, 4);
    v->scale[0] = sc ? sc[0] : '?';
    v->imgsz = sqlite3_column_int(s, 5);
    v->classes = store__col_strdup(s, 6);
    copy_hex(v->dataset_id, s, 7);
    v->dataset_name = store__col_strdup(s, 8);
    v->source_commit = store__col_strdup(s, 9);
    v->hyperparams = store__col_strdup(s, 10);
    v->run_dir = store__col_strdup(s, 11);
    v->metrics = store__col_strdup(s, 12);
    copy_hex(v->weights, s, 13);
    v->weights_size = sqlite3_column_int64(s, 14);
    copy_hex(v->results, s, 15);
    v->gate = store__col_strdup(s, 16);
    v->note = store__col_strdup(s, 17);
    int stt = reg_status_parse((const char *)sqlite3_column_text(s, 18));
    v->status = stt < 0 ? REG_PENDING : (reg_status)stt;
    v->registered_by = store__col_strdup(s, 19);
    v->registered_at = sqlite3_column_int64(s, 20);
    json_t *cls = v->classes ? json_loads(v->classes, 0, NULL) : NULL;
    v->nc = (int)json_array_size(cls);
    json_decref(cls);
    if (!v->group || !v->arch || !v->classes || !v->dataset_name || !v->source_commit || !v->hyperparams ||
        !v->run_dir || !v->metrics || !v->registered_by || (sqlite3_column_type(s, 16) != SQLITE_NULL && !v->gate) ||
        (sqlite3_column_type(s, 17) != SQLITE_NULL && !v->note)) {
        reg_version_cleanup(v);
        return LUPE_ENOMEM;
    }
    return LUPE_OK;
}

lupe_status reg_get(lupe_ws *ws, const char *ref, reg_version *out)
{
    memset(out, 0, sizeof *out);
    reg__ref r;
    lupe_status st = reg__ref_parse(ref, &r);
    if (st) return st;
    sqlite3_stmt *s = NULL;
    if (r.alias[0])
        st = store__prepare(ws, "SELECT " VERSION_COLS "JOIN model_aliases a ON a.version_id = v.id "
                                "WHERE g.name = ?1 AND a.name = ?2", &s);
    else if (r.version)
        st = store__prepare(ws, "SELECT " VERSION_COLS "WHERE g.name = ?1 AND v.version = ?2", &s);
    else
        st = store__prepare(ws, "SELECT " VERSION_COLS "WHERE g.name = ?1 ORDER BY v.version DESC LIMIT 1", &s);
    if (st) return st;
    sqlite3_bind_text(s, 1, r.group, -1, SQLITE_STATIC);
    if (r.alias[0]) sqlite3_bind_text(s, 2, r.alias, -1, SQLITE_STATIC);
    else if (r.version) sqlite3_bind_int(s, 2, r.version);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        st = read_version(s, out);
    } else if (rc == SQLITE_DONE) {
        int64_t gid;
        if (reg__group_id(ws, r.group, &gid)) st = LUPE_ENOTFOUND; /* the message names the group */
        else if (r.alias[0]) st = lupe_err(LUPE_ENOTFOUND, "model group '%s' has no alias '%s'", r.group, r.alias);
        else st = lupe_err(LUPE_ENOTFOUND, "model group '%s' has no version %d", r.group, r.version);
    } else {
        st = store__db_err(ws, "looking up a model version");
    }
    sqlite3_finalize(s);
    return st;
}

lupe_status reg_each(lupe_ws *ws, const char *group, int (*fn)(void *ud, const reg_version *v), void *ud)
{
    int64_t gid = 0;
    lupe_status st = group ? reg__group_id(ws, group, &gid) : LUPE_OK;
    if (st) return st;
    sqlite3_stmt *s = NULL;
    if ((st = store__prepare(ws, "SELECT " VERSION_COLS "WHERE ?1 = 0 OR g.id = ?1 ORDER BY g.name, v.version", &s)))
        return st;
    sqlite3_bind_int64(s, 1, gid);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        reg_version v;
        if ((st = read_version(s, &v))) break;
        int stop = fn(ud, &v);
        reg_version_cleanup(&v);
        if (stop) break;
    }
    if (!st && rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "listing model versions");
    sqlite3_finalize(s);
    return st;
}

lupe_status reg_metric(const char *metrics_json, const char *split, const char *metric, double *out)
{
    json_t *j = metrics_json ? json_loads(metrics_json, 0, NULL) : NULL;
    json_t *v = json_object_get(json_object_get(j, split), metric);
    lupe_status st = LUPE_OK;
    if (json_is_number(v)) *out = json_number_value(v);
    else if (!json_is_object(json_object_get(j, split))) st = lupe_err(LUPE_ENOTFOUND, "no %s metrics", split);
    else st = lupe_err(LUPE_ENOTFOUND, "the %s metrics have no '%s'", split, metric);
    json_decref(j);
    return st;
}

/* ---- registering --------------------------------------------------------- */

/* What a run folder says about itself, gathered before anything is stored. */
typedef struct run_facts {
    char *dir;                      /* absolute */
    json_t *metrics;                /* metrics.json */
    char *hyperparams;              /* config.json, compact */
    char *metrics_text;             /* {"val": ..., "test": ...} */
    char *classes;                  /* JSON array */
    const char *commit, *dataset_id, *dataset_name;
    char family[16], scale[2];
    int imgsz, nc;
    uint8_t *weights;
    size_t weights_len;
    uint8_t *results;               /* results.csv, NULL if the run has none */
    size_t results_len;
} run_facts;

static void run_facts_cleanup(run_facts *f)
{
    free(f->dir); /* realpath's */
    json_decref(f->metrics);
    lupe_free(f->hyperparams);
    lupe_free(f->metrics_text);
    lupe_free(f->classes);
    lupe_free(f->weights);
    lupe_free(f->results);
    memset(f, 0, sizeof *f);
}

/* The checkpoint's own metadata names the architecture and classes; the
 * file is parsed whole, so a damaged checkpoint is refused here. */
static lupe_status read_checkpoint_meta(run_facts *f, const char *path)
{
    eng_ckpt *ck = NULL;
    lupe_status st = eng_ckpt_parse(f->weights, f->weights_len, path, &ck);
    if (st) return st;
    json_t *m = json_loads(ck->meta, 0, NULL), *cls = NULL;
    const char *fmt = NULL, *family = NULL, *scale = NULL;
    if (!m || json_unpack(m, "{s:s, s:{s:s, s:s, s:i, s:i}, s:o}", "format", &fmt, "arch", "family", &family, "scale",
                          &scale, "nc", &f->nc, "imgsz", &f->imgsz, "classes", &cls) ||
        strcmp(fmt, "lupe-detector") || !json_is_array(cls) || (int)json_array_size(cls) != f->nc || f->nc <= 0 ||
        strlen(family) >= sizeof f->family || strlen(scale) != 1) {
        st = lupe_err(LUPE_EFORMAT, "%s: not a lupe detector checkpoint (metadata lacks format, arch or classes)", path);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(cls); i++)
        if (!json_is_string(json_array_get(cls, i))) {
            st = lupe_err(LUPE_EFORMAT, "%s: class %zu is not a name", path, i);
            goto out;
        }
    strcpy(f->family, family);
    f->scale[0] = scale[0];
    if (!(f->classes = lupe_json_dump(cls, 0))) st = LUPE_ENOMEM;
out:
    json_decref(m);
    eng_ckpt_free(ck);
    return st;
}

static lupe_status read_run(run_facts *f, const char *run_dir)
{
    char *p = NULL, *w = NULL;
    json_t *cfg = NULL, *out = NULL;
    lupe_status st = LUPE_OK;
    if (!(f->dir = realpath(run_dir, NULL))) return lupe_err(LUPE_ENOTFOUND, "run folder %s does not exist", run_dir);
    if (!(p = lupe_path_join(f->dir, "metrics.json"))) return LUPE_ENOMEM;
    if (!lupe_path_exists(p)) {
        st = lupe_err(LUPE_ENOTFOUND, "%s has no metrics.json: the run did not finish its final evaluation "
                                      "(finish it with 'lupe train --resume %s')", run_dir, run_dir);
        goto out;
    }
    if ((st = lupe_json_load_file(p, RUN_JSON_MAX_BYTES, &f->metrics))) goto out;
    const char *fmt = NULL, *wrel = NULL, *wsha = NULL, *dpath = NULL;
    json_t *val = NULL, *test = NULL;
    int fv = 0;
    if (json_unpack(f->metrics, "{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "format", &fmt, "format_version",
                    &fv, "lupe_commit", &f->commit, "dataset", &f->dataset_id, "dataset_name", &f->dataset_name,
                    "weights", &wrel, "weights_sha256", &wsha, "val", &val, "test", &test) ||
        strcmp(fmt, "lupe-run-metrics") || fv != 1 || !json_is_object(val) || !(json_is_object(test) || json_is_null(test))) {
        st = lupe_err(LUPE_EFORMAT, "%s: not a lupe run's metrics.json (format lupe-run-metrics, version 1, with "
                                    "lupe_commit, dataset, weights, weights_sha256, val and test)", p);
        goto out;
    }
    dpath = json_string_value(json_object_get(f->metrics, "dataset_path")); /* null for a dataset version */
    if (dpath) f->dataset_name = dpath; /* a folder: where it is, not how it was typed */
    if (strlen(f->dataset_id) != 0 && !lupe_obj_id_valid(f->dataset_id)) {
        st = lupe_err(LUPE_EFORMAT, "%s: \"dataset\" is not a dataset id", p);
        goto out;
    }
    /* The weights must be the checkpoint that was evaluated. */
    if (strstr(wrel, "..") || wrel[0] == '/') {
        st = lupe_err(LUPE_EFORMAT, "%s: \"weights\" must name a file inside the run", p);
        goto out;
    }
    if (!(w = lupe_path_join(f->dir, wrel))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if ((st = lupe_file_read(w, WEIGHTS_MAX_BYTES, &f->weights, &f->weights_len))) goto out;
    uint8_t d[LUPE_SHA256_BYTES];
    char hex[LUPE_SHA256_HEX];
    lupe_sha256(f->weights, f->weights_len, d);
    lupe_hex(d, sizeof d, hex);
    if (strcmp(hex, wsha)) {
        st = lupe_err(LUPE_ECORRUPT, "%s changed after its evaluation (it hashes to %.12s, metrics.json says %.12s)",
                      w, hex, wsha);
        goto out;
    }
    if ((st = read_checkpoint_meta(f, w))) goto out;
    /* config.json: the hyperparameters, kept in compact canonical form. */
    lupe_free(p);
    if (!(p = lupe_path_join(f->dir, "config.json"))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if ((st = lupe_json_load_file(p, RUN_JSON_MAX_BYTES, &cfg))) goto out;
    if (!json_is_object(cfg)) {
        st = lupe_err(LUPE_EFORMAT, "%s: expected a JSON object", p);
        goto out;
    }
    out = json_pack("{s:O, s:O}", "val", val, "test", test);
    if (!(f->hyperparams = lupe_json_dump(cfg, 0)) || !out || !(f->metrics_text = lupe_json_dump(out, 0))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    /* The training log travels with the version when the run has one. */
    lupe_free(p);
    if (!(p = lupe_path_join(f->dir, "results.csv"))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    if (lupe_path_exists(p)) st = lupe_file_read(p, RUN_JSON_MAX_BYTES, &f->results, &f->results_len);
out:
    json_decref(cfg);
    json_decref(out);
    lupe_free(p);
    lupe_free(w);
    return st;
}

typedef struct reg_insert {
    const reg_register_opts *o;
    const run_facts *f;
    const char *by;
    const char *weights_id, *results_id;
    int version;
} reg_insert;

static lupe_status insert_tx(lupe_ws *ws, void *ud)
{
    reg_insert *x = ud;
    const run_facts *f = x->f;
    int64_t now = lupe_time_unix(), gid = 0, vid = 0;
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "INSERT OR IGNORE INTO model_groups (name, created_by, created_at) "
                                        "VALUES (?1, ?2, ?3)", &s);
    if (st) return st;
    sqlite3_bind_text(s, 1, x->o->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, x->by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "creating the model group");
    sqlite3_finalize(s);
    if (st || (st = reg__group_id(ws, x->o->group, &gid))) return st;
    /* The same weights twice in one group would be two names for one model. */
    if ((st = store__prepare(ws, "SELECT version FROM model_versions WHERE group_id = ?1 AND weights = ?2", &s)))
        return st;
    sqlite3_bind_int64(s, 1, gid);
    sqlite3_bind_text(s, 2, x->weights_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st = lupe_err(LUPE_EEXIST, "these weights are already %s:%d", x->o->group, sqlite3_column_int(s, 0));
    else if (rc != SQLITE_DONE)
        st = store__db_err(ws, "looking for the weights");
    sqlite3_finalize(s);
    if (st) return st;
    /* The write lock is held (BEGIN IMMEDIATE): max + 1 cannot race. */
    if ((st = store__prepare(ws, "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE group_id = ?1", &s)))
        return st;
    sqlite3_bind_int64(s, 1, gid);
    if (sqlite3_step(s) == SQLITE_ROW) x->version = sqlite3_column_int(s, 0);
    else st = store__db_err(ws, "numbering the version");
    sqlite3_finalize(s);
    if (st) return st;
    if ((st = store__prepare(ws, "INSERT INTO model_versions (group_id, version, arch, scale, imgsz, classes, "
                                 "dataset_id, dataset_name, source_commit, hyperparams, run_dir, metrics, weights, "
                                 "weights_size, results, note, status, registered_by, registered_at) VALUES (?1, ?2, "
                                 "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 'pending', ?17, ?18)",
                             &s)))
        return st;
    sqlite3_bind_int64(s, 1, gid);
    sqlite3_bind_int(s, 2, x->version);
    sqlite3_bind_text(s, 3, f->family, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, f->scale, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, f->imgsz);
    sqlite3_bind_text(s, 6, f->classes, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, f->dataset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, f->dataset_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, f->commit, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, f->hyperparams, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, f->dir, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, f->metrics_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 13, x->weights_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 14, (sqlite3_int64)f->weights_len);
    if (x->results_id) sqlite3_bind_text(s, 15, x->results_id, -1, SQLITE_STATIC);
    if (x->o->note) sqlite3_bind_text(s, 16, x->o->note, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 17, x->by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 18, now);
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "recording the model version");
    sqlite3_finalize(s);
    if (st) return st;
    vid = sqlite3_last_insert_rowid(ws->db);
    if ((st = store__prepare(ws, "INSERT INTO model_status_log (version_id, from_status, to_status, who, at, why) "
                                 "VALUES (?1, NULL, 'pending', ?2, ?3, ?4)", &s)))
        return st;
    char *why = lupe_asprintf("registered from %s%s%s", f->dir, x->o->note ? ": " : "", x->o->note ? x->o->note : "");
    if (!why) {
        sqlite3_finalize(s);
        return LUPE_ENOMEM;
    }
    sqlite3_bind_int64(s, 1, vid);
    sqlite3_bind_text(s, 2, x->by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_text(s, 4, why, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "logging the registration");
    sqlite3_finalize(s);
    lupe_free(why);
    return st;
}

lupe_status reg_register(lupe_ws *ws, const reg_register_opts *o, reg_version *out)
{
    memset(out, 0, sizeof *out);
    if (!o->group || !reg__valid_name(o->group))
        return lupe_err(LUPE_EARG, "'%s' is not a model group name ([A-Za-z0-9_.-], at most %d characters)",
                        o->group ? o->group : "", REG_NAME_MAX);
    run_facts f = {0};
    lupe_status st = read_run(&f, o->run_dir);
    char wid[LUPE_SHA256_HEX], rid[LUPE_SHA256_HEX];
    if (st) goto out;
    /* Objects first and durable: a row never names a missing object. */
    if ((st = lupe_obj_put(ws, f.weights, f.weights_len, wid, NULL))) goto out;
    if (f.results && (st = lupe_obj_put(ws, f.results, f.results_len, rid, NULL))) goto out;
    reg_insert x = {.o = o, .f = &f, .by = o->by ? o->by : reg_default_user(), .weights_id = wid,
                    .results_id = f.results ? rid : NULL};
    if ((st = reg__tx(ws, insert_tx, &x))) goto out;
    char ref[REG_NAME_MAX + 16];
    snprintf(ref, sizeof ref, "%s:%d", o->group, x.version);
    st = reg_get(ws, ref, out);
out:
    if (st) st = lupe_err_ctx(st, "registering %s", o->run_dir);
    run_facts_cleanup(&f);
    return st;
}
