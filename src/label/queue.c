/*
 * The labeling queue and labeling jobs. The queue is computed, not stored:
 * every image whose newest revision in the label set is not approved, with a
 * priority (uncertain frames from the edge first, then rejected labels,
 * labels awaiting review, unlabeled images, drafts). A job takes a batch of
 * queue items for one labeler and one reviewer.
 */
#include <string.h>

#include "label/label_internal.h"

/* A table q with one row per image that needs work: id, path, newest status
 * (NULL when unlabeled), reason, priority, newest job holding it (0 if none)
 * and whether a job made since its newest revision holds it. */
static const char queue_cte[] =
    "WITH latest AS (SELECT r.image_id, r.status, r.created_at AS at FROM label_revs r JOIN (SELECT image_id, max(id) AS id "
    "  FROM label_revs WHERE set_id = ?1 GROUP BY image_id) m ON m.id = r.id), "
    "q AS (SELECT i.id, i.orig_path, l.status, i.ingested_at, i.rowid AS rid, "
    "  CASE WHEN i.arrival = 'edge' AND (l.status IS NULL OR l.status = 'rejected') THEN 'uncertain at the edge' "
    "       WHEN l.status = 'rejected' THEN 'rejected' WHEN l.status = 'submitted' THEN 'needs review' "
    "       WHEN l.status = 'draft' THEN 'draft' ELSE 'unlabeled' END AS reason, "
    "  CASE WHEN i.arrival = 'edge' AND (l.status IS NULL OR l.status = 'rejected') THEN 40 "
    "       WHEN l.status = 'rejected' THEN 30 WHEN l.status = 'submitted' THEN 20 "
    "       WHEN l.status = 'draft' THEN 5 ELSE 10 END AS priority, "
    "  coalesce((SELECT max(ji.job_id) FROM label_job_items ji JOIN label_jobs j ON j.id = ji.job_id "
    "    WHERE ji.image_id = i.id AND j.set_id = ?1), 0) AS job, "
    "  EXISTS (SELECT 1 FROM label_job_items ji JOIN label_jobs j ON j.id = ji.job_id "
    "    WHERE ji.image_id = i.id AND j.set_id = ?1 AND j.created_at >= coalesce(l.at, 0)) AS held "
    "  FROM images i LEFT JOIN latest l ON l.image_id = i.id WHERE l.status IS NULL OR l.status != 'approved') ";

lupe_status lupe_label_queue(lupe_ws *ws, const char *set, int64_t limit,
                             int (*fn)(void *ud, const lupe_queue_item *it), void *ud)
{
    int64_t sid;
    lupe_status st = label__set_id(ws, set, &sid);
    if (st) return st;
    char sql[sizeof queue_cte + 128];
    snprintf(sql, sizeof sql, "%sSELECT id, reason, priority, orig_path, job FROM q "
             "ORDER BY priority DESC, ingested_at, rid LIMIT ?2", queue_cte);
    sqlite3_stmt *s = NULL;
    if ((st = store__prepare(ws, sql, &s))) return st;
    sqlite3_bind_int64(s, 1, sid);
    sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        lupe_queue_item it = {(const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
                              sqlite3_column_int(s, 2), (const char *)sqlite3_column_text(s, 3),
                              sqlite3_column_int64(s, 4)};
        if (fn(ud, &it)) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "reading the labeling queue");
    sqlite3_finalize(s);
    return st;
}

void lupe_label_job_cleanup(lupe_label_job *j)
{
    lupe_free(j->set);
    lupe_free(j->name);
    lupe_free(j->assignee);
    lupe_free(j->reviewer);
    lupe_free(j->created_by);
    memset(j, 0, sizeof *j);
}

lupe_status lupe_label_job_create(lupe_ws *ws, const char *set, int count, const char *name, const char *assignee,
                                  const char *reviewer, const char *creator, int64_t *out_id, int *out_items)
{
    if (count < 1) return lupe_err(LUPE_EARG, "a job needs at least one image (count %d)", count);
    if (assignee && reviewer && strcmp(assignee, reviewer) == 0)
        return lupe_err(LUPE_EARG, "the reviewer must be someone other than the labeler (%s)", assignee);
    int64_t sid;
    lupe_status st = label__set_id(ws, set, &sid);
    if (st) return st;
    sqlite3_stmt *s = NULL;
    if ((st = store__exec(ws, "BEGIN IMMEDIATE"))) return st;
    if ((st = store__prepare(ws, "INSERT INTO label_jobs (set_id, name, assignee, reviewer, created_by, created_at) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s)))
        goto fail;
    sqlite3_bind_int64(s, 1, sid);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, assignee, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, reviewer, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, creator, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, lupe_time_unix());
    if (sqlite3_step(s) != SQLITE_DONE) {
        st = store__db_err(ws, "creating a labeling job");
        goto fail;
    }
    sqlite3_finalize(s);
    s = NULL;
    int64_t jid = sqlite3_last_insert_rowid(ws->db);
    /* Work to hand out: unlabeled, rejected or edge images not already held
     * by a job. An image is held by a job made after its newest revision, so
     * a label rejected after its job was made frees the image for a new one. */
    char sql[sizeof queue_cte + 512];
    snprintf(sql, sizeof sql,
             "INSERT INTO label_job_items (job_id, image_id, pos) %s"
             "SELECT ?2, id, row_number() OVER (ORDER BY priority DESC, ingested_at, rid) FROM (SELECT * FROM q "
             "WHERE (status IS NULL OR status = 'rejected') AND NOT held ORDER BY priority DESC, ingested_at, rid "
             "LIMIT ?3)",
             queue_cte);
    if ((st = store__prepare(ws, sql, &s))) goto fail;
    sqlite3_bind_int64(s, 1, sid);
    sqlite3_bind_int64(s, 2, jid);
    sqlite3_bind_int(s, 3, count);
    if (sqlite3_step(s) != SQLITE_DONE) {
        st = store__db_err(ws, "filling a labeling job");
        goto fail;
    }
    int n = sqlite3_changes(ws->db);
    if (n == 0) {
        st = lupe_err(LUPE_ENOTFOUND, "nothing in label set '%s' needs labeling that is not already in a job", set);
        goto fail;
    }
    sqlite3_finalize(s);
    if ((st = store__exec(ws, "COMMIT"))) return st;
    *out_id = jid;
    *out_items = n;
    return LUPE_OK;
fail:
    sqlite3_finalize(s);
    sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

static const char job_sql[] =
    "SELECT j.id, s.name, j.name, j.assignee, j.reviewer, j.created_by, j.created_at, "
    "  (SELECT count(*) FROM label_job_items WHERE job_id = j.id), "
    "  (SELECT count(*) FROM label_job_items ji JOIN label_revs r ON r.id = (SELECT max(id) FROM label_revs "
    "     WHERE set_id = j.set_id AND image_id = ji.image_id) WHERE ji.job_id = j.id AND r.status = 'approved'), "
    "  (SELECT count(*) FROM label_job_items ji JOIN label_revs r ON r.id = (SELECT max(id) FROM label_revs "
    "     WHERE set_id = j.set_id AND image_id = ji.image_id) WHERE ji.job_id = j.id AND r.status = 'submitted'), "
    "  (SELECT count(*) FROM label_job_items ji JOIN label_revs r ON r.id = (SELECT max(id) FROM label_revs "
    "     WHERE set_id = j.set_id AND image_id = ji.image_id) WHERE ji.job_id = j.id AND r.status = 'rejected') "
    "FROM label_jobs j JOIN label_sets s ON s.id = j.set_id ";

static lupe_status read_job(sqlite3_stmt *s, lupe_label_job *j)
{
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(s, 0);
    j->set = store__col_strdup(s, 1);
    j->name = store__col_strdup(s, 2);
    j->assignee = store__col_strdup(s, 3);
    j->reviewer = store__col_strdup(s, 4);
    j->created_by = store__col_strdup(s, 5);
    j->created_at = sqlite3_column_int64(s, 6);
    j->items = sqlite3_column_int(s, 7);
    j->approved = sqlite3_column_int(s, 8);
    j->submitted = sqlite3_column_int(s, 9);
    j->rejected = sqlite3_column_int(s, 10);
    if (!j->set || !j->created_by) {
        lupe_label_job_cleanup(j);
        return LUPE_ENOMEM;
    }
    return LUPE_OK;
}

lupe_status lupe_label_job_get(lupe_ws *ws, int64_t id, lupe_label_job *out)
{
    char sql[sizeof job_sql + 32];
    snprintf(sql, sizeof sql, "%sWHERE j.id = ?1", job_sql);
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, sql, &s);
    if (st) return st;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st = read_job(s, out);
    else if (rc == SQLITE_DONE)
        st = lupe_err(LUPE_ENOTFOUND, "no labeling job %lld", (long long)id);
    else
        st = store__db_err(ws, "reading a labeling job");
    sqlite3_finalize(s);
    return st;
}

lupe_status lupe_label_job_each(lupe_ws *ws, int (*fn)(void *ud, const lupe_label_job *j), void *ud)
{
    char sql[sizeof job_sql + 32];
    snprintf(sql, sizeof sql, "%sORDER BY j.id", job_sql);
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, sql, &s);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        lupe_label_job j;
        if ((st = read_job(s, &j))) break;
        int stop = fn(ud, &j);
        lupe_label_job_cleanup(&j);
        if (stop) break;
    }
    if (!st && rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "listing labeling jobs");
    sqlite3_finalize(s);
    return st;
}

lupe_status lupe_label_job_items(lupe_ws *ws, int64_t id, int (*fn)(void *ud, const char *image_id, const char *status),
                                 void *ud)
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(
        ws,
        "SELECT ji.image_id, coalesce((SELECT status FROM label_revs WHERE set_id = j.set_id AND image_id = "
        "ji.image_id ORDER BY id DESC LIMIT 1), 'unlabeled') FROM label_job_items ji JOIN label_jobs j ON j.id = "
        "ji.job_id WHERE ji.job_id = ?1 ORDER BY ji.pos",
        &s);
    if (st) return st;
    sqlite3_bind_int64(s, 1, id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (fn(ud, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1))) break;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "reading a job's images");
    sqlite3_finalize(s);
    return st;
}
