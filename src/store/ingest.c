/*
 * Ingest: walks files and folders, checks that each file really is an image
 * (by content, never by name), stores its bytes as an object and records its
 * metadata. The object is durable before the database row that refers to it,
 * so a crash at any moment leaves at worst an unreferenced object, which the
 * next ingest of the same file adopts.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store_internal.h"

typedef struct path_list {
    char **v;
    size_t n, cap, max;
    int overflow;
} path_list;

static lupe_status list_push(path_list *l, char *p)
{
    if (!p) return LUPE_ENOMEM;
    if (l->n >= l->max) {
        l->overflow = 1;
        lupe_free(p);
        return LUPE_OK;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        char **nv = lupe_realloc(l->v, ncap * sizeof *nv);
        if (!nv) {
            lupe_free(p);
            return LUPE_ENOMEM;
        }
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = p;
    return LUPE_OK;
}

static void list_free(path_list *l)
{
    for (size_t i = 0; i < l->n; i++) lupe_free(l->v[i]);
    lupe_free(l->v);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Adds path to the list, descending into folders in name order. Symbolic
 * links to folders are not followed, which rules out cycles; anything that
 * is not a folder is listed and judged by ingest_one. */
static lupe_status walk(path_list *l, const char *path, int depth, const char *include)
{
    struct stat sb;
    if (depth > 64 || lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        const char *slash = strrchr(path, '/');
        if (depth > 0 && include && fnmatch(include, slash ? slash + 1 : path, 0) != 0) return LUPE_OK;
        return list_push(l, lupe_strdup(path));
    }
    struct dirent **ents = NULL;
    int n = scandir(path, &ents, NULL, by_name);
    if (n < 0) return list_push(l, lupe_strdup(path)); /* reported when ingested */
    lupe_status st = LUPE_OK;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (!st && strcmp(name, ".") && strcmp(name, "..") && strcmp(name, LUPE_WS_DIR)) {
            char *child = lupe_path_join(path, name);
            st = child ? walk(l, child, depth + 1, include) : LUPE_ENOMEM;
            lupe_free(child);
        }
        free(ents[i]); /* scandir allocates with malloc */
    }
    free(ents);
    return st;
}

lupe_status lupe_tag_check(const char *tag)
{
    const char *eq = strchr(tag, '=');
    if (!eq || eq == tag) return lupe_err(LUPE_EARG, "tag '%s' is not key=value", tag);
    for (const char *p = tag; p < eq; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return lupe_err(LUPE_EARG, "tag '%s': the key may hold only letters, digits, '_', '.' and '-'", tag);
    }
    if (strlen(tag) > 512) return lupe_err(LUPE_EARG, "tag '%.40s...' is longer than 512 bytes", tag);
    /* Listings join tags as "k=v,k=v", so a comma in a value would split it. */
    for (const char *p = eq + 1; *p; p++)
        if (*p == ',' || (unsigned char)*p < 0x20)
            return lupe_err(LUPE_EARG, "tag '%s': the value may not hold commas or control characters", tag);
    return LUPE_OK;
}

lupe_ingest_opts lupe_ingest_default_opts(const lupe_ws *ws)
{
    lupe_ingest_opts o = {0};
    o.source = ws->cfg.ingest_default_source;
    o.arrival = "ingest";
    o.limits = lupe_img_default_limits();
    o.limits.max_bytes = (size_t)ws->cfg.ingest_max_file_size;
    o.limits.max_side = (int)ws->cfg.ingest_max_side;
    o.limits.max_pixels = (uint64_t)ws->cfg.ingest_max_pixels;
    o.max_files = 10000000;
    return o;
}

typedef struct file_meta {
    char id[LUPE_SHA256_HEX];
    size_t size;
    lupe_img_info info;
    int64_t captured_at;
    const char *captured_from;
} file_meta;

/* Reads and validates one file. Returns LUPE_OK with the metadata filled, or
 * an error whose message is the rejection reason. */
static lupe_status check_file(const char *path, const lupe_ingest_opts *o, uint8_t **out_buf, file_meta *m)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return lupe_err(LUPE_ENOTFOUND, "%s", strerror(errno));
    if (S_ISDIR(sb.st_mode)) return lupe_err(LUPE_EARG, "symbolic link to a folder, not followed");
    if (!S_ISREG(sb.st_mode)) return lupe_err(LUPE_EARG, "not a regular file");
    if (sb.st_size == 0) return lupe_err(LUPE_EFORMAT, "empty file (0 bytes)");
    uint8_t *buf = NULL;
    size_t len = 0;
    lupe_status st = lupe_file_read(path, o->limits.max_bytes, &buf, &len);
    if (st) return st;
    if (len == 0) {
        st = lupe_err(LUPE_EFORMAT, "empty file (0 bytes)");
        goto fail;
    }
    /* A full decode is the only way to know the file is whole: headers of
     * truncated or corrupt files often look fine. */
    lupe_img *im = NULL;
    if ((st = lupe_img_decode(buf, len, 0, &o->limits, &im))) goto fail;
    lupe_img_free(im);
    if ((st = lupe_img_probe(buf, len, &m->info))) goto fail;
    m->size = len;
    int64_t t;
    if (m->info.format == LUPE_IMG_JPEG && lupe_img_exif_time(buf, len, &t) == LUPE_OK) {
        m->captured_at = t;
        m->captured_from = "exif";
    } else {
        m->captured_at = (int64_t)sb.st_mtime;
        m->captured_from = "file";
    }
    *out_buf = buf;
    return LUPE_OK;
fail:
    lupe_free(buf);
    return st;
}

static lupe_status bind_text(lupe_ws *ws, sqlite3_stmt *s, int i, const char *v)
{
    if (sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) != SQLITE_OK) return store__db_err(ws, "binding a value");
    return LUPE_OK;
}

static lupe_status step_done(lupe_ws *ws, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) return store__db_err(ws, what);
    return LUPE_OK;
}

/* Records the image (or, for a duplicate, only its extra path and tags) in
 * one transaction. *out_dup says whether the image was already known. */
static lupe_status record(lupe_ws *ws, const char *path, const file_meta *m, const lupe_ingest_opts *o, int *out_dup)
{
    lupe_status st = LUPE_OK;
    sqlite3_stmt *s = NULL;
    int64_t now = lupe_time_unix();
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) return st;

    if ((st = store__prepare(ws, "SELECT 1 FROM images WHERE id = ?1", &s))) goto out;
    if ((st = bind_text(ws, s, 1, m->id))) goto out;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        st = store__db_err(ws, "looking up the image");
        goto out;
    }
    *out_dup = rc == SQLITE_ROW;
    sqlite3_finalize(s);
    s = NULL;

    if (!*out_dup) {
        if ((st = store__prepare(ws,
                                 "INSERT INTO images (id, size, width, height, channels, format, captured_at, "
                                 "captured_from, source, arrival, orig_path, ingested_at) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                                 &s)))
            goto out;
        bind_text(ws, s, 1, m->id);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)m->size);
        sqlite3_bind_int(s, 3, m->info.w);
        sqlite3_bind_int(s, 4, m->info.h);
        sqlite3_bind_int(s, 5, m->info.c);
        bind_text(ws, s, 6, lupe_img_format_name(m->info.format));
        sqlite3_bind_int64(s, 7, m->captured_at);
        bind_text(ws, s, 8, m->captured_from);
        bind_text(ws, s, 9, o->source);
        bind_text(ws, s, 10, o->arrival ? o->arrival : "ingest");
        bind_text(ws, s, 11, path);
        sqlite3_bind_int64(s, 12, now);
        if ((st = step_done(ws, s, "recording the image"))) goto out;
        sqlite3_finalize(s);
        s = NULL;
    }

    if ((st = store__prepare(ws, "INSERT OR IGNORE INTO image_paths (image_id, path, seen_at) VALUES (?1, ?2, ?3)",
                             &s)))
        goto out;
    bind_text(ws, s, 1, m->id);
    bind_text(ws, s, 2, path);
    sqlite3_bind_int64(s, 3, now);
    if ((st = step_done(ws, s, "recording the image's path"))) goto out;
    sqlite3_finalize(s);
    s = NULL;

    if (o->ntags) {
        if ((st = store__prepare(ws, "INSERT OR IGNORE INTO image_tags (image_id, key, value) VALUES (?1, ?2, ?3)",
                                 &s)))
            goto out;
        for (int i = 0; i < o->ntags; i++) {
            const char *eq = strchr(o->tags[i], '=');
            sqlite3_reset(s);
            bind_text(ws, s, 1, m->id);
            sqlite3_bind_text(s, 2, o->tags[i], (int)(eq - o->tags[i]), SQLITE_STATIC);
            bind_text(ws, s, 3, eq + 1);
            if ((st = step_done(ws, s, "recording a tag"))) goto out;
        }
    }
    st = store__exec(ws, "COMMIT");
out:
    sqlite3_finalize(s);
    if (st) sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* Ingests one file. Returns an error only for workspace failures; a bad
 * file is reported through ev with outcome REJECTED. */
static lupe_status ingest_one(lupe_ws *ws, const char *path, const lupe_ingest_opts *o, lupe_ingest_event *ev,
                              char *reason, size_t reasonsz, char id[LUPE_SHA256_HEX], lupe_ingest_summary *sum)
{
    file_meta m = {0};
    uint8_t *buf = NULL;
    char *abs = realpath(path, NULL);
    const char *shown = abs ? abs : path;
    lupe_err_clear();
    lupe_status st = check_file(path, o, &buf, &m);
    if (st) {
        if (st == LUPE_ENOMEM) goto out; /* our problem, not the file's */
        snprintf(reason, reasonsz, "%s", lupe_errmsg()[0] ? lupe_errmsg() : lupe_strerror(st));
        ev->outcome = LUPE_INGEST_REJECTED;
        ev->reason = reason;
        sum->rejected++;
        st = LUPE_OK;
        goto out;
    }
    int existed = 0, dup = 0;
    if ((st = lupe_obj_put(ws, buf, m.size, m.id, &existed))) goto out;
    if ((st = record(ws, shown, &m, o, &dup))) goto out;
    ev->outcome = dup ? LUPE_INGEST_DUPLICATE : LUPE_INGEST_STORED;
    memcpy(id, m.id, LUPE_SHA256_HEX);
    ev->id = id;
    if (dup) {
        sum->duplicate++;
    } else {
        sum->stored++;
        sum->bytes_stored += m.size;
    }
out:
    if (st) st = lupe_err_ctx(st, "ingesting %s", shown);
    free(abs);
    lupe_free(buf);
    return st;
}

lupe_status lupe_ingest_paths(lupe_ws *ws, const char *const *paths, int npaths, const lupe_ingest_opts *o,
                              lupe_ingest_summary *out)
{
    lupe_status st = LUPE_OK;
    path_list l = {.max = o->max_files ? o->max_files : 10000000};
    memset(out, 0, sizeof *out);
    for (int i = 0; i < npaths && !st; i++) st = walk(&l, paths[i], 0, o->include);
    if (st) goto out;
    if (l.overflow) {
        st = lupe_err(LUPE_ELIMIT, "more than %zu files given; ingest them in smaller batches", l.max);
        goto out;
    }
    char reason[1100], id[LUPE_SHA256_HEX];
    for (size_t i = 0; i < l.n; i++) {
        lupe_ingest_event ev = {.path = l.v[i], .index = i + 1, .total = l.n};
        if ((st = ingest_one(ws, l.v[i], o, &ev, reason, sizeof reason, id, out))) break;
        out->files++;
        if (o->on_file) o->on_file(o->ud, &ev);
    }
out:
    list_free(&l);
    return st;
}
