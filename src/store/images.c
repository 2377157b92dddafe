/*
 * Reading image records: listing with tag and source filters, lookup by id
 * or unique id prefix, and workspace totals.
 */
#include <string.h>

#include "store/store_internal.h"

#define MAX_FILTER_TAGS 32

#define IMAGE_COLS                                                                                               \
    "i.id, i.size, i.width, i.height, i.channels, i.format, i.captured_at, i.captured_from, i.source, "        \
    "i.arrival, i.orig_path, i.ingested_at, "                                                                  \
    "coalesce((SELECT group_concat(kv, ',') FROM (SELECT t.key || '=' || t.value AS kv FROM image_tags t "     \
    "WHERE t.image_id = i.id ORDER BY t.key, t.value)), '')"

void lupe_image_cleanup(lupe_image *im)
{
    lupe_free(im->source);
    lupe_free(im->arrival);
    lupe_free(im->orig_path);
    lupe_free(im->tags);
    memset(im, 0, sizeof *im);
}

static lupe_status read_row(sqlite3_stmt *s, lupe_image *im)
{
    memset(im, 0, sizeof *im);
    const char *id = (const char *)sqlite3_column_text(s, 0);
    const char *fmt = (const char *)sqlite3_column_text(s, 5);
    const char *from = (const char *)sqlite3_column_text(s, 7);
    snprintf(im->id, sizeof im->id, "%s", id ? id : "");
    im->size = sqlite3_column_int64(s, 1);
    im->width = sqlite3_column_int(s, 2);
    im->height = sqlite3_column_int(s, 3);
    im->channels = sqlite3_column_int(s, 4);
    snprintf(im->format, sizeof im->format, "%s", fmt ? fmt : "");
    im->captured_at = sqlite3_column_int64(s, 6);
    snprintf(im->captured_from, sizeof im->captured_from, "%s", from ? from : "");
    im->source = store__col_strdup(s, 8);
    im->arrival = store__col_strdup(s, 9);
    im->orig_path = store__col_strdup(s, 10);
    im->ingested_at = sqlite3_column_int64(s, 11);
    im->tags = store__col_strdup(s, 12);
    if (!im->arrival || !im->orig_path || !im->tags) {
        lupe_image_cleanup(im);
        return LUPE_ENOMEM;
    }
    return LUPE_OK;
}

lupe_status lupe_images_each(lupe_ws *ws, const lupe_image_filter *f, int (*fn)(void *ud, const lupe_image *im),
                             void *ud)
{
    static const lupe_image_filter none = {0};
    if (!f) f = &none;
    if (f->ntags > MAX_FILTER_TAGS) return lupe_err(LUPE_EARG, "at most %d tag filters", MAX_FILTER_TAGS);
    for (int i = 0; i < f->ntags; i++) {
        lupe_status st = lupe_tag_check(f->tags[i]);
        if (st) return st;
    }
    char sql[4096];
    int n = snprintf(sql, sizeof sql, "SELECT " IMAGE_COLS " FROM images i WHERE (?1 IS NULL OR i.source = ?1)");
    for (int i = 0; i < f->ntags; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n,
                      " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.key = ?%d AND "
                      "t.value = ?%d)",
                      2 + 2 * i, 3 + 2 * i);
    snprintf(sql + n, sizeof sql - (size_t)n, " ORDER BY i.ingested_at, i.rowid LIMIT ?%d", 2 + 2 * f->ntags);

    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, sql, &s);
    if (st) return st;
    sqlite3_bind_text(s, 1, f->source, -1, SQLITE_STATIC);
    for (int i = 0; i < f->ntags; i++) {
        const char *eq = strchr(f->tags[i], '=');
        sqlite3_bind_text(s, 2 + 2 * i, f->tags[i], (int)(eq - f->tags[i]), SQLITE_STATIC);
        sqlite3_bind_text(s, 3 + 2 * i, eq + 1, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(s, 2 + 2 * f->ntags, f->limit > 0 ? f->limit : -1);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        lupe_image im;
        if ((st = read_row(s, &im))) break;
        int stop = fn(ud, &im);
        lupe_image_cleanup(&im);
        if (stop) break;
    }
    if (!st && rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "listing images");
    sqlite3_finalize(s);
    return st;
}

lupe_status lupe_image_get(lupe_ws *ws, const char *id, lupe_image *out)
{
    size_t len = strlen(id);
    if (len < 4 || len > 64) return lupe_err(LUPE_EARG, "image id '%s' must be 4 to 64 hex digits", id);
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return lupe_err(LUPE_EARG, "image id '%s' must be lower-case hex digits", id);
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "SELECT " IMAGE_COLS " FROM images i WHERE i.id >= ?1 AND i.id < ?1 || 'g' "
                                        "ORDER BY i.id LIMIT 2", &s);
    if (st) return st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        st = read_row(s, out);
        if (!st && sqlite3_step(s) == SQLITE_ROW) {
            lupe_image_cleanup(out);
            st = lupe_err(LUPE_EARG, "image id prefix '%s' is ambiguous", id);
        }
    } else if (rc == SQLITE_DONE) {
        st = lupe_err(LUPE_ENOTFOUND, "no image with id %s", id);
    } else {
        st = store__db_err(ws, "looking up an image");
    }
    sqlite3_finalize(s);
    return st;
}

lupe_status lupe_ws_stats_get(lupe_ws *ws, lupe_ws_stats *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws,
                                    "SELECT (SELECT count(*) FROM images), (SELECT coalesce(sum(size), 0) FROM images), "
                                    "(SELECT count(*) FROM image_paths), (SELECT count(*) FROM image_tags), "
                                    "(SELECT count(*) FROM images WHERE format = 'jpeg'), "
                                    "(SELECT count(*) FROM images WHERE format = 'png')",
                                    &s);
    if (st) return st;
    if (sqlite3_step(s) == SQLITE_ROW) {
        out->images = sqlite3_column_int64(s, 0);
        out->bytes = sqlite3_column_int64(s, 1);
        out->paths = sqlite3_column_int64(s, 2);
        out->tags = sqlite3_column_int64(s, 3);
        out->by_format[LUPE_IMG_JPEG] = sqlite3_column_int64(s, 4);
        out->by_format[LUPE_IMG_PNG] = sqlite3_column_int64(s, 5);
    } else {
        st = store__db_err(ws, "counting images");
    }
    sqlite3_finalize(s);
    return st;
}
