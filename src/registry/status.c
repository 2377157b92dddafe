/*
 * A version's approval status and the aliases that point at versions. Both
 * are small state changes with a history: each change runs in one
 * transaction with its log row, and the rules (which transitions exist,
 * what an alias may point at) are checked inside that transaction, so two
 * people acting at once cannot both pass a check that only one should.
 */
#include <string.h>

#include "registry/registry_internal.h"

/* The allowed transitions, as a table: row = from, column = to. */
static const unsigned char allowed[REG_NSTATUS][REG_NSTATUS] = {
    [REG_PENDING] = {[REG_APPROVED] = 1, [REG_REJECTED] = 1},
    [REG_APPROVED] = {[REG_ARCHIVED] = 1},
    [REG_REJECTED] = {[REG_ARCHIVED] = 1},
};

int reg_transition_allowed(reg_status from, reg_status to)
{
    return (unsigned)from < REG_NSTATUS && (unsigned)to < REG_NSTATUS && allowed[from][to];
}

/* "approved, rejected" or "none (archived is final)" into buf. */
static const char *allowed_from(reg_status from, char *buf, size_t n)
{
    buf[0] = 0;
    for (int to = 0; to < REG_NSTATUS; to++)
        if (allowed[from][to]) {
            size_t used = strlen(buf);
            snprintf(buf + used, n - used, "%s%s", used ? ", " : "", reg_status_name((reg_status)to));
        }
    if (!buf[0]) snprintf(buf, n, "none, %s is final", reg_status_name(from));
    return buf;
}

/* The first alias (by name) that points at version row vid, "" if none. */
static lupe_status alias_on(lupe_ws *ws, int64_t vid, char name[REG_NAME_MAX + 1])
{
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "SELECT name FROM model_aliases WHERE version_id = ?1 ORDER BY name LIMIT 1", &s);
    if (st) return st;
    sqlite3_bind_int64(s, 1, vid);
    name[0] = 0;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) snprintf(name, REG_NAME_MAX + 1, "%s", (const char *)sqlite3_column_text(s, 0));
    else if (rc != SQLITE_DONE) st = store__db_err(ws, "reading aliases");
    sqlite3_finalize(s);
    return st;
}

lupe_status reg__set_status_tx(lupe_ws *ws, const reg_version *v, reg_status to, const char *who, const char *why)
{
    char buf[64];
    if (!reg_transition_allowed(v->status, to))
        return lupe_err(LUPE_EARG, "cannot change %s:%d from %s to %s (allowed from %s: %s)", v->group, v->version,
                        reg_status_name(v->status), reg_status_name(to), reg_status_name(v->status),
                        allowed_from(v->status, buf, sizeof buf));
    if (to == REG_REJECTED || to == REG_ARCHIVED) {
        /* An alias is a promise that its version can be used. */
        char alias[REG_NAME_MAX + 1];
        lupe_status st = alias_on(ws, v->id, alias);
        if (st) return st;
        if (alias[0])
            return lupe_err(LUPE_EARG, "cannot change %s:%d to %s: alias '%s' points at it (move the alias first)",
                            v->group, v->version, reg_status_name(to), alias);
    }
    sqlite3_stmt *s = NULL;
    lupe_status st = store__prepare(ws, "UPDATE model_versions SET status = ?1 WHERE id = ?2 AND status = ?3", &s);
    if (st) return st;
    sqlite3_bind_text(s, 1, reg_status_name(to), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v->id);
    sqlite3_bind_text(s, 3, reg_status_name(v->status), -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "changing the status");
    else if (sqlite3_changes(ws->db) != 1)
        st = lupe_err(LUPE_EINTERNAL, "%s:%d changed status while being changed", v->group, v->version);
    sqlite3_finalize(s);
    if (st) return st;
    if ((st = store__prepare(ws, "INSERT INTO model_status_log (version_id, from_status, to_status, who, at, why) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s)))
        return st;
    sqlite3_bind_int64(s, 1, v->id);
    sqlite3_bind_text(s, 2, reg_status_name(v->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, reg_status_name(to), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, who, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, lupe_time_unix());
    sqlite3_bind_text(s, 6, why, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "logging the status change");
    sqlite3_finalize(s);
    return st;
}

typedef struct status_args {
    const char *ref, *who, *why;
    reg_status to;
} status_args;

static lupe_status status_tx(lupe_ws *ws, void *ud)
{
    status_args *a = ud;
    reg_version v;
    /* Read inside the transaction: the status checked is the one changed. */
    lupe_status st = reg_get(ws, a->ref, &v);
    if (st) return st;
    st = reg__set_status_tx(ws, &v, a->to, a->who, a->why);
    reg_version_cleanup(&v);
    return st;
}

lupe_status reg_set_status(lupe_ws *ws, const char *ref, reg_status to, const char *who, const char *why)
{
    if ((unsigned)to >= REG_NSTATUS) return lupe_err(LUPE_EARG, "no such status");
    if (!why || !*why) return lupe_err(LUPE_EARG, "a status change needs a reason (why)");
    status_args a = {.ref = ref, .who = who && *who ? who : reg_default_user(), .why = why, .to = to};
    return reg__tx(ws, status_tx, &a);
}

lupe_status reg_status_log_each(lupe_ws *ws, const char *ref, int (*fn)(void *ud, const reg_status_change *c),
                                 void *ud)
{
    reg_version v;
    lupe_status st = reg_get(ws, ref, &v);
    if (st) return st;
    sqlite3_stmt *s = NULL;
    if ((st = store__prepare(ws, "SELECT from_status, to_status, who, at, why FROM model_status_log "
                                 "WHERE version_id = ?1 ORDER BY id", &s)))
        goto out;
    sqlite3_bind_int64(s, 1, v.id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        reg_status_change c = {.version = v.version, .from = (const char *)sqlite3_column_text(s, 0),
                               .to = (const char *)sqlite3_column_text(s, 1),
                               .who = (const char *)sqlite3_column_text(s, 2), .at = sqlite3_column_int64(s, 3),
                               .why = (const char *)sqlite3_column_text(s, 4)};
        if (fn(ud, &c)) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "reading the status log");
    sqlite3_finalize(s);
out:
    reg_version_cleanup(&v);
    return st;
}

/* ---- aliases ------------------------------------------------------------- */

typedef struct alias_args {
    const char *group, *name, *who, *why;
    int version;
    int prev;
} alias_args;

static lupe_status alias_tx(lupe_ws *ws, void *ud)
{
    alias_args *a = ud;
    char ref[2 * REG_NAME_MAX + 16];
    reg_version v = {0};
    int64_t gid = 0;
    sqlite3_stmt *s = NULL;
    snprintf(ref, sizeof ref, "%s:%d", a->group, a->version);
    lupe_status st = reg_get(ws, ref, &v);
    if (st || (st = reg__group_id(ws, a->group, &gid))) goto out;
    if (v.status == REG_REJECTED || v.status == REG_ARCHIVED) {
        st = lupe_err(LUPE_EARG, "%s is %s: an alias may not point at it", ref, reg_status_name(v.status));
        goto out;
    }
    if (!strcmp(a->name, "production") && v.status != REG_APPROVED) {
        st = lupe_err(LUPE_EARG, "%s is %s: 'production' may point only at an approved version", ref,
                      reg_status_name(v.status));
        goto out;
    }
    if ((st = store__prepare(ws, "SELECT v.version FROM model_aliases a JOIN model_versions v ON v.id = a.version_id "
                                 "WHERE a.group_id = ?1 AND a.name = ?2", &s)))
        goto out;
    sqlite3_bind_int64(s, 1, gid);
    sqlite3_bind_text(s, 2, a->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) a->prev = sqlite3_column_int(s, 0);
    else if (rc != SQLITE_DONE) st = store__db_err(ws, "reading the alias");
    sqlite3_finalize(s);
    s = NULL;
    if (st || a->prev == a->version) goto out; /* already there: nothing moves, nothing to record */
    if ((st = store__prepare(ws, "INSERT INTO model_aliases (group_id, name, version_id) VALUES (?1, ?2, ?3) "
                                 "ON CONFLICT (group_id, name) DO UPDATE SET version_id = excluded.version_id", &s)))
        goto out;
    sqlite3_bind_int64(s, 1, gid);
    sqlite3_bind_text(s, 2, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, v.id);
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "moving the alias");
    sqlite3_finalize(s);
    s = NULL;
    if (st) goto out;
    if ((st = store__prepare(ws, "INSERT INTO model_alias_log (group_id, name, from_version, to_version, who, at, why) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &s)))
        goto out;
    sqlite3_bind_int64(s, 1, gid);
    sqlite3_bind_text(s, 2, a->name, -1, SQLITE_STATIC);
    if (a->prev) sqlite3_bind_int(s, 3, a->prev);
    sqlite3_bind_int(s, 4, a->version);
    sqlite3_bind_text(s, 5, a->who, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, lupe_time_unix());
    if (a->why) sqlite3_bind_text(s, 7, a->why, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "logging the alias move");
    sqlite3_finalize(s);
out:
    reg_version_cleanup(&v);
    return st;
}

lupe_status reg_alias_set(lupe_ws *ws, const char *group, const char *name, int version, const char *who,
                          const char *why, int *out_prev)
{
    if (!reg__valid_name(group)) return lupe_err(LUPE_EARG, "'%s' is not a model group name", group);
    if (!reg__valid_name(name))
        return lupe_err(LUPE_EARG, "'%s' is not an alias name ([A-Za-z0-9_.-], at most %d characters)", name,
                        REG_NAME_MAX);
    alias_args a = {.group = group, .name = name, .who = who && *who ? who : reg_default_user(),
                    .why = why && *why ? why : NULL, .version = version};
    lupe_status st = reg__tx(ws, alias_tx, &a);
    if (!st && out_prev) *out_prev = a.prev;
    return st;
}

lupe_status reg_alias_each(lupe_ws *ws, const char *group, int (*fn)(void *ud, const reg_alias *a), void *ud)
{
    int64_t gid = 0;
    lupe_status st = group ? reg__group_id(ws, group, &gid) : LUPE_OK;
    sqlite3_stmt *s = NULL;
    if (st || (st = store__prepare(ws, "SELECT g.name, a.name, v.version FROM model_aliases a "
                                       "JOIN model_groups g ON g.id = a.group_id "
                                       "JOIN model_versions v ON v.id = a.version_id "
                                       "WHERE ?1 = 0 OR g.id = ?1 ORDER BY g.name, a.name", &s)))
        return st;
    sqlite3_bind_int64(s, 1, gid);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        reg_alias a = {(const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
                       sqlite3_column_int(s, 2)};
        if (fn(ud, &a)) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "listing aliases");
    sqlite3_finalize(s);
    return st;
}

lupe_status reg_alias_log_each(lupe_ws *ws, const char *group, int (*fn)(void *ud, const reg_alias_move *m), void *ud)
{
    int64_t gid = 0;
    lupe_status st = group ? reg__group_id(ws, group, &gid) : LUPE_OK;
    sqlite3_stmt *s = NULL;
    if (st || (st = store__prepare(ws, "SELECT g.name, l.name, coalesce(l.from_version, 0), l.to_version, l.who, "
                                       "l.at, l.why FROM model_alias_log l JOIN model_groups g ON g.id = l.group_id "
                                       "WHERE ?1 = 0 OR g.id = ?1 ORDER BY l.id", &s)))
        return st;
    sqlite3_bind_int64(s, 1, gid);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        reg_alias_move m = {(const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
                            sqlite3_column_int(s, 2),                 sqlite3_column_int(s, 3),
                            (const char *)sqlite3_column_text(s, 4), (const char *)sqlite3_column_text(s, 6),
                            sqlite3_column_int64(s, 5)};
        if (fn(ud, &m)) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = store__db_err(ws, "reading the alias history");
    sqlite3_finalize(s);
    return st;
}
