/*
 * fsck: checks that the database and the object folder agree. Errors are
 * damage (a referenced object missing, an object whose bytes do not hash to
 * its name, a failed SQLite integrity check); warnings are harmless leftovers
 * of interrupted work (unreferenced objects, temp files), which --repair
 * removes once they are old enough not to belong to a running ingest.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"

#define REPAIR_MIN_AGE 600 /* seconds: younger leftovers may belong to a running ingest */

typedef struct fsck_ctx {
    lupe_ws *ws;
    const lupe_fsck_opts *o;
    lupe_fsck_report *r;
    char (*ids)[LUPE_SHA256_HEX]; /* objects found on disk, sorted */
    size_t nids, cap;
} fsck_ctx;

static void problem(fsck_ctx *c, int is_error, const char *fmt, ...) LUPE_PRINTF(3, 4);
static void problem(fsck_ctx *c, int is_error, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (is_error)
        c->r->errors++;
    else
        c->r->warnings++;
    if (c->o->on_problem) c->o->on_problem(c->o->ud, is_error, msg);
}

static int old_enough(const struct stat *sb)
{
    return lupe_time_unix() - (int64_t)sb->st_mtime >= REPAIR_MIN_AGE;
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[n] == 0;
}

static lupe_status check_db(fsck_ctx *c)
{
    static const char *const checks[] = {"PRAGMA integrity_check", "PRAGMA foreign_key_check"};
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *s = NULL;
        lupe_status st = store__prepare(c->ws, checks[k], &s);
        if (st) return st;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(s, 0);
            if (k == 0 && t && strcmp(t, "ok") == 0) continue;
            problem(c, 1, "database: %s: %s", checks[k] + 7, t ? t : "?");
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) return store__db_err(c->ws, checks[k]);
    }
    return LUPE_OK;
}

static lupe_status add_id(fsck_ctx *c, const char *id)
{
    if (c->nids == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        void *n = lupe_realloc(c->ids, ncap * sizeof *c->ids);
        if (!n) return LUPE_ENOMEM;
        c->ids = n;
        c->cap = ncap;
    }
    memcpy(c->ids[c->nids++], id, LUPE_SHA256_HEX);
    return LUPE_OK;
}

/* Compares the 64 hex digits only: the byte after them is the
 * "referenced" mark set by check_images. */
static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 64);
}

/* Walks objects/: every file must be named by the hash of its bytes. */
static lupe_status scan_objects(fsck_ctx *c)
{
    lupe_status st = LUPE_OK;
    DIR *top = opendir(c->ws->objects);
    if (!top) return lupe_err(LUPE_EIO, "%s: %s", c->ws->objects, strerror(errno));
    struct dirent *e;
    while (!st && (e = readdir(top))) {
        if (e->d_name[0] == '.') continue;
        char *fan = lupe_path_join(c->ws->objects, e->d_name);
        if (!fan) {
            st = LUPE_ENOMEM;
            break;
        }
        DIR *d = is_hex(e->d_name, 2) ? opendir(fan) : NULL;
        if (!d) {
            problem(c, 0, "objects/%s: unexpected entry in the object folder", e->d_name);
            lupe_free(fan);
            continue;
        }
        struct dirent *f;
        while (!st && (f = readdir(d))) {
            if (f->d_name[0] == '.') continue;
            if (!is_hex(f->d_name, 62)) {
                problem(c, 0, "objects/%s/%s: unexpected file in the object folder", e->d_name, f->d_name);
                continue;
            }
            char id[LUPE_SHA256_HEX];
            memcpy(id, e->d_name, 2);
            memcpy(id + 2, f->d_name, 63);
            c->r->objects++;
            if (!c->o->quick) {
                char *path = lupe_path_join(fan, f->d_name);
                char hex[LUPE_SHA256_HEX];
                struct stat sb;
                if (!path) {
                    st = LUPE_ENOMEM;
                    break;
                }
                if (lupe_sha256_file(path, hex) != LUPE_OK) {
                    problem(c, 1, "object %s: cannot be read: %s", id, lupe_errmsg());
                } else if (strcmp(hex, id) != 0) {
                    problem(c, 1, "object %s: its bytes hash to %s (damaged)", id, hex);
                } else if (stat(path, &sb) == 0) {
                    c->r->bytes_hashed += sb.st_size;
                }
                lupe_free(path);
            }
            st = add_id(c, id);
        }
        closedir(d);
        lupe_free(fan);
    }
    closedir(top);
    if (!st && c->nids) qsort(c->ids, c->nids, sizeof *c->ids, cmp_id);
    return st;
}

/* Every image row must have its object, of the recorded size. Marks the
 * referenced ids by blanking their first byte, leaving only orphans. */
static lupe_status check_images(fsck_ctx *c)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(c->ws, "SELECT id, size, orig_path FROM images ORDER BY id", &s);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        int64_t size = sqlite3_column_int64(s, 1);
        const char *orig = (const char *)sqlite3_column_text(s, 2);
        c->r->images++;
        char (*hit)[LUPE_SHA256_HEX] = id && c->nids ? bsearch(id, c->ids, c->nids, sizeof *c->ids, cmp_id) : NULL;
        if (!hit) {
            problem(c, 1, "image %s (from %s): its object is missing", id ? id : "?", orig ? orig : "?");
            continue;
        }
        char *path = lupe_obj_path(c->ws, id);
        struct stat sb;
        if (path && stat(path, &sb) == 0 && sb.st_size != size)
            problem(c, 1, "image %s: object is %lld bytes, the database says %lld", id, (long long)sb.st_size,
                    (long long)size);
        lupe_free(path);
        (*hit)[LUPE_SHA256_HEX - 1] = 1; /* referenced */
    }
    if (rc != SQLITE_DONE) st = store__db_err(c->ws, "reading images");
    sqlite3_finalize(s);
    return st;
}

/* Dataset manifests are objects too: each version's must exist. */
static lupe_status check_datasets(fsck_ctx *c)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(c->ws, "SELECT DISTINCT id, name, version FROM datasets ORDER BY id", &s);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        char (*hit)[LUPE_SHA256_HEX] = id && c->nids ? bsearch(id, c->ids, c->nids, sizeof *c->ids, cmp_id) : NULL;
        if (!hit) {
            problem(c, 1, "dataset %s@%d: its manifest object %s is missing", sqlite3_column_text(s, 1),
                    sqlite3_column_int(s, 2), id ? id : "?");
            continue;
        }
        (*hit)[LUPE_SHA256_HEX - 1] = 1;
    }
    if (rc != SQLITE_DONE) st = store__db_err(c->ws, "reading datasets");
    sqlite3_finalize(s);
    return st;
}

/* Registered model versions keep their weights and training log as
 * objects: each must exist, and they are referenced, so --repair never
 * removes a version's weights. */
static lupe_status check_models(fsck_ctx *c)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(c->ws,
                                    "SELECT g.name, v.version, v.weights, v.results FROM model_versions v "
                                    "JOIN model_groups g ON g.id = v.group_id ORDER BY v.id",
                                    &s);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int col = 2; col <= 3; col++) {
            const char *id = (const char *)sqlite3_column_text(s, col);
            if (!id) continue; /* no training log recorded */
            char (*hit)[LUPE_SHA256_HEX] = c->nids ? bsearch(id, c->ids, c->nids, sizeof *c->ids, cmp_id) : NULL;
            if (!hit) {
                problem(c, 1, "model %s:%d: its %s object %s is missing", sqlite3_column_text(s, 0),
                        sqlite3_column_int(s, 1), col == 2 ? "weights" : "training log", id);
                continue;
            }
            (*hit)[LUPE_SHA256_HEX - 1] = 1;
        }
    }
    if (rc != SQLITE_DONE) st = store__db_err(c->ws, "reading model versions");
    sqlite3_finalize(s);
    return st;
}

static void check_orphans(fsck_ctx *c)
{
    for (size_t i = 0; i < c->nids; i++) {
        char *id = c->ids[i];
        if (id[LUPE_SHA256_HEX - 1]) continue;
        char *path = lupe_obj_path(c->ws, id);
        struct stat sb;
        if (c->o->repair && path && stat(path, &sb) == 0 && old_enough(&sb) && unlink(path) == 0) {
            c->r->repaired++;
        } else {
            problem(c, 0, "object %.12s is not referenced by any image, dataset or model (left by interrupted work; harmless)",
                    id);
        }
        lupe_free(path);
    }
}

/* Temp files carry their writer's pid; those of live processes are left. */
static void check_tmp(fsck_ctx *c)
{
    DIR *d = opendir(c->ws->tmp);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *path = lupe_path_join(c->ws->tmp, e->d_name);
        struct stat sb;
        const char *p = strstr(e->d_name, ".tmp.");
        long pid = p ? strtol(p + 5, NULL, 10) : 0;
        int alive = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
        if (c->o->repair && path && !alive && stat(path, &sb) == 0 && unlink(path) == 0)
            c->r->repaired++;
        else
            problem(c, 0, "tmp/%s: temp file left by an interrupted write%s", e->d_name,
                    alive ? " (its process is still running)" : "");
        lupe_free(path);
    }
    closedir(d);
}

lupe_status lupe_fsck(lupe_ws *ws, const lupe_fsck_opts *o, lupe_fsck_report *out)
{
    static const lupe_fsck_opts none = {0};
    fsck_ctx c = {.ws = ws, .o = o ? o : &none, .r = out};
    memset(out, 0, sizeof *out);
    lupe_status st;
    /* One read transaction gives a consistent snapshot of the database
     * while an ingest may be adding rows. */
    if ((st = store__exec(ws, "BEGIN"))) return st;
    if ((st = check_db(&c))) goto out;
    if ((st = scan_objects(&c))) goto out;
    if ((st = check_images(&c))) goto out;
    if ((st = check_datasets(&c))) goto out;
    if ((st = check_models(&c))) goto out;
    check_orphans(&c);
    check_tmp(&c);
out:
    sqlite3_exec(ws->db, "COMMIT", NULL, NULL, NULL);
    lupe_free(c.ids);
    if (st) st = lupe_err_ctx(st, "checking %s", ws->dir);
    return st;
}
