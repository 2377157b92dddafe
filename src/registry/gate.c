/*
 * The approval gate: absolute rules on a version's metrics, and
 * champion/challenger against the version the `production` alias points
 * to, on the same test split. The decision is a pure function of the
 * metrics (reg_gate_decide); reg_gate_run gathers them, re-evaluating the
 * champion when it was measured on another dataset, stores the comparison
 * on the version and approves it when it passes.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lupe/dataset.h"
#include "lupe/eval.h"
#include "lupe/train.h"
#include "registry/registry_internal.h"

/* The champion comparison's metric: the one best.ckpt is chosen by. */
#define CHAMPION_SPLIT "test"
#define CHAMPION_METRIC "map50_95"

static const char *const metric_names[] = {"p", "r", "f1", "map50", "map50_95", NULL};
static const char *const ops[] = {">=", "<=", ">", "<", NULL}; /* two-character ones first */

void reg_gate_opts_default(reg_gate_opts *o)
{
    memset(o, 0, sizeof *o);
    reg_gate_parse(REG_GATE_DEFAULT, &o->rules);
    o->champion_alias = "production";
    o->by = "gate";
}

void reg_gate_result_cleanup(reg_gate_result *r)
{
    lupe_free(r->reason);
    lupe_free(r->json);
    memset(r, 0, sizeof *r);
}

/* One rule, "[val.|test.]METRIC OP NUMBER", spaces allowed around parts. */
static lupe_status parse_rule(const char *s, size_t len, reg_gate_rule *r)
{
    char buf[96];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < sizeof buf; i++)
        if (!isspace((unsigned char)s[i])) buf[n++] = s[i];
    buf[n] = 0;
    if (n + 1 >= sizeof buf && len >= sizeof buf) goto bad;
    memset(r, 0, sizeof *r);
    const char *p = buf;
    strcpy(r->split, "test");
    if (!strncmp(p, "val.", 4)) strcpy(r->split, "val"), p += 4;
    else if (!strncmp(p, "test.", 5)) p += 5;
    size_t ml = strcspn(p, "<>=");
    int k;
    for (k = 0; metric_names[k]; k++)
        if (strlen(metric_names[k]) == ml && !strncmp(p, metric_names[k], ml)) break;
    if (!metric_names[k]) {
        return lupe_err(LUPE_EARG, "gate rule '%.*s': unknown metric '%.*s' (p, r, f1, map50 or map50_95)", (int)len,
                        s, (int)ml, p);
    }
    strcpy(r->metric, metric_names[k]);
    p += ml;
    for (k = 0; ops[k]; k++)
        if (!strncmp(p, ops[k], strlen(ops[k]))) break;
    if (!ops[k]) goto bad;
    strcpy(r->op, ops[k]);
    p += strlen(ops[k]);
    char *end;
    r->threshold = strtod(p, &end);
    if (end == p || *end || !isfinite(r->threshold)) goto bad;
    return LUPE_OK;
bad:
    return lupe_err(LUPE_EARG, "gate rule '%.*s' is not METRIC>=NUMBER (operators >=, >, <=, <; such as "
                               "map50_95>=0.4 or val.map50>0.8)", (int)(len > 80 ? 80 : len), s);
}

lupe_status reg_gate_parse(const char *text, reg_gate_rules *out)
{
    memset(out, 0, sizeof *out);
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        if (out->n == REG_GATE_MAX_RULES)
            return lupe_err(LUPE_EARG, "more than %d gate rules", REG_GATE_MAX_RULES);
        lupe_status st = parse_rule(p, len, &out->r[out->n]);
        if (st) return st;
        out->n++;
        if (!p[len]) break;
        p += len + 1;
    }
    return LUPE_OK;
}

static int rule_holds(const reg_gate_rule *r, double v)
{
    if (!strcmp(r->op, ">=")) return v >= r->threshold;
    if (!strcmp(r->op, ">")) return v > r->threshold;
    if (!strcmp(r->op, "<=")) return v <= r->threshold;
    return v < r->threshold;
}

/* Appends "; " and a formatted piece to a funnel string. */
static lupe_status append(char **s, const char *fmt, ...) LUPE_PRINTF(2, 3);
static lupe_status append(char **s, const char *fmt, ...)
{
    char piece[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(piece, sizeof piece, fmt, ap);
    va_end(ap);
    char *n = lupe_asprintf("%s%s%s", *s ? *s : "", *s ? "; " : "", piece);
    if (!n) return LUPE_ENOMEM;
    lupe_free(*s);
    *s = n;
    return LUPE_OK;
}

/* The decision as JSON, and its one-line reason. */
static lupe_status decide(const reg_gate_rules *rules, const char *challenger, const char *champion, int champ_version,
                          json_t **out_json, char **out_reason, int *out_pass)
{
    json_t *j = json_object(), *arr = json_array(), *cj = NULL;
    char *passed = NULL, *failed = NULL;
    lupe_status st = !j || !arr ? LUPE_ENOMEM : LUPE_OK;
    int pass = 1;
    for (int i = 0; !st && i < rules->n; i++) {
        const reg_gate_rule *r = &rules->r[i];
        double v = 0;
        char name[64];
        snprintf(name, sizeof name, "%s.%s%s%g", r->split, r->metric, r->op, r->threshold);
        int have = reg_metric(challenger, r->split, r->metric, &v) == LUPE_OK;
        int ok = have && rule_holds(r, v);
        pass &= ok;
        json_array_append_new(arr, json_pack("{s:s, s:o, s:b}", "rule", name, "value", have ? json_real(v) : json_null(),
                                             "pass", ok));
        if (!have) st = append(&failed, "%s: the version has no %s %s (no %s split?)", name, r->split, r->metric, r->split);
        else if (ok) st = append(&passed, "%s.%s %.4f %s %g", r->split, r->metric, v, r->op, r->threshold);
        else st = append(&failed, "%s.%s %.4f is not %s %g", r->split, r->metric, v, r->op, r->threshold);
    }
    lupe_err_clear();
    if (!st) json_object_set_new(j, "rules", arr), arr = NULL;
    if (!st && champion) {
        double a = 0, b = 0;
        int ha = reg_metric(challenger, CHAMPION_SPLIT, CHAMPION_METRIC, &a) == LUPE_OK;
        int hb = reg_metric(champion, CHAMPION_SPLIT, CHAMPION_METRIC, &b) == LUPE_OK;
        lupe_err_clear();
        int ok = ha && hb && a > b;
        pass &= ok;
        json_t *champ_test = NULL;
        json_t *cm = json_loads(champion, 0, NULL);
        champ_test = json_incref(json_object_get(cm, CHAMPION_SPLIT));
        json_decref(cm);
        cj = json_pack("{s:i, s:s, s:o, s:o, s:b, s:o}", "version", champ_version, "metric",
                       CHAMPION_SPLIT "." CHAMPION_METRIC, "challenger", ha ? json_real(a) : json_null(), "champion",
                       hb ? json_real(b) : json_null(), "pass", ok, "metrics", champ_test ? champ_test : json_null());
        if (!ha || !hb)
            st = append(&failed, "cannot compare with the champion v%d: %s has no test mAP50-95", champ_version,
                        ha ? "the champion" : "this version");
        else if (ok)
            st = append(&passed, "beats the champion v%d (test mAP50-95 %.4f > %.4f)", champ_version, a, b);
        else
            st = append(&failed, "not better than the champion v%d (test mAP50-95 %.4f <= %.4f)", champ_version, a, b);
    }
    if (!st) json_object_set_new(j, "champion", cj ? cj : json_null()), cj = NULL;
    if (!st) {
        json_t *cm = json_loads(challenger, 0, NULL);
        json_object_set(j, "challenger", json_object_get(cm, CHAMPION_SPLIT) ? json_object_get(cm, CHAMPION_SPLIT)
                                                                             : json_null());
        json_decref(cm);
    }
    char *reason = NULL;
    if (!st) {
        if (pass) reason = lupe_asprintf("passed: %s", passed ? passed : "no rules");
        else reason = lupe_asprintf("failed: %s", failed ? failed : "?");
        if (!reason) st = LUPE_ENOMEM;
    }
    if (!st) {
        json_object_set_new(j, "pass", json_boolean(pass));
        json_object_set_new(j, "reason", json_string(reason));
        *out_json = j, j = NULL;
        *out_reason = reason, reason = NULL;
        *out_pass = pass;
    }
    json_decref(j);
    json_decref(arr);
    json_decref(cj);
    lupe_free(passed);
    lupe_free(failed);
    lupe_free(reason);
    return st;
}

lupe_status reg_gate_decide(const reg_gate_rules *rules, const char *challenger_metrics, const char *champion_metrics,
                            int champion_version, reg_gate_result *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = NULL;
    lupe_status st = decide(rules, challenger_metrics, champion_metrics, champion_version, &j, &out->reason, &out->pass);
    if (st) return st;
    out->champion_version = champion_metrics ? champion_version : 0;
    out->json = lupe_json_dump(j, 0);
    json_decref(j);
    if (!out->json) {
        reg_gate_result_cleanup(out);
        return LUPE_ENOMEM;
    }
    return LUPE_OK;
}

/* ---- running it ---------------------------------------------------------- */

typedef struct default_eval {
    int threads;
} default_eval;

/* trn_val on the test split, as `lupe val` would. */
static lupe_status eval_with_trn_val(void *ud, lupe_ws *ws, const char *weights, const char *data, char **out)
{
    const default_eval *d = ud;
    trn_val_cfg c;
    trn_val_cfg_default(&c);
    c.weights = weights;
    c.data = data;
    c.ws_dir = lupe_ws_root(ws);
    c.split = LUPE_SPLIT_TEST;
    c.threads = d->threads;
    eval_result r;
    char **classes = NULL;
    int nc = 0;
    lupe_status st = trn_val(&c, &r, &classes, &nc);
    if (st) return st;
    json_t *j = trn_metrics_json(&r, classes, nc);
    *out = j ? lupe_json_dump(j, 0) : NULL;
    json_decref(j);
    for (int i = 0; i < nc; i++) lupe_free(classes[i]);
    lupe_free(classes);
    eval_result_free(&r);
    return *out ? LUPE_OK : LUPE_ENOMEM;
}

/* Was the champion measured on the challenger's test split? */
static int same_test_split(const reg_version *a, const reg_version *b)
{
    if (a->dataset_id[0] || b->dataset_id[0]) return !strcmp(a->dataset_id, b->dataset_id);
    return !strcmp(a->dataset_name, b->dataset_name); /* two folders: the same one */
}

/* The champion's metrics on the challenger's test split (a funnel string
 * {"test": ...}, or its own stored metrics when the split is the same). */
static lupe_status champion_metrics(lupe_ws *ws, const reg_gate_opts *o, const reg_version *champ,
                                    const reg_version *v, char **out, int *reevaluated)
{
    *reevaluated = 0;
    if (same_test_split(champ, v)) return (*out = lupe_strdup(champ->metrics)) ? LUPE_OK : LUPE_ENOMEM;
    char *data = reg__version_data(v), *weights = reg__weights_path(ws, champ), *test = NULL;
    lupe_status st = LUPE_OK;
    if (!data) {
        st = lupe_err(LUPE_ENOTFOUND, "%s:%d was trained on %s, which is gone: the champion cannot be evaluated on its "
                                      "test split", v->group, v->version, v->dataset_name);
        goto out;
    }
    if (!weights) {
        st = LUPE_ENOMEM;
        goto out;
    }
    default_eval d = {.threads = o->threads};
    st = o->evaluate ? o->evaluate(o->evaluate_ud, ws, weights, data, &test) : eval_with_trn_val(&d, ws, weights, data, &test);
    if (st) {
        st = lupe_err_ctx(st, "evaluating the champion %s:%d on the test split of %s", champ->group, champ->version,
                          v->dataset_name);
        goto out;
    }
    *out = lupe_asprintf("{\"test\": %s}", test);
    st = *out ? LUPE_OK : LUPE_ENOMEM;
    *reevaluated = 1;
out:
    lupe_free(data);
    lupe_free(weights);
    lupe_free(test);
    return st;
}

typedef struct gate_store {
    const char *ref, *by, *json, *reason;
    int pass;
} gate_store;

static lupe_status store_tx(lupe_ws *ws, void *ud)
{
    gate_store *g = ud;
    reg_version v;
    lupe_status st = reg_get(ws, g->ref, &v);
    if (st) return st;
    if (v.status != REG_PENDING) {
        st = lupe_err(LUPE_EARG, "%s:%d became %s while it was being gated", v.group, v.version,
                      reg_status_name(v.status));
        goto out;
    }
    sqlite3_stmt *s = NULL;
    if ((st = store__prepare(ws, "UPDATE model_versions SET gate = ?1 WHERE id = ?2", &s))) goto out;
    sqlite3_bind_text(s, 1, g->json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v.id);
    if (sqlite3_step(s) != SQLITE_DONE) st = store__db_err(ws, "storing the gate's result");
    sqlite3_finalize(s);
    if (!st && g->pass) st = reg__set_status_tx(ws, &v, REG_APPROVED, g->by, g->reason);
out:
    reg_version_cleanup(&v);
    return st;
}

lupe_status reg_gate_run(lupe_ws *ws, const char *ref, const reg_gate_opts *o, reg_gate_result *out)
{
    memset(out, 0, sizeof *out);
    reg_version v = {0}, champ = {0};
    char *cm = NULL, *canon = NULL;
    json_t *j = NULL;
    int have_champ = 0, reevaluated = 0;
    lupe_status st = reg_get(ws, ref, &v);
    if (st) goto out;
    if (v.status != REG_PENDING) {
        st = lupe_err(LUPE_EARG, "%s:%d is %s: only a pending version is gated", v.group, v.version,
                      reg_status_name(v.status));
        goto out;
    }
    char cref[2 * REG_NAME_MAX + 8];
    snprintf(cref, sizeof cref, "%s@%s", v.group, o->champion_alias ? o->champion_alias : "production");
    st = reg_get(ws, cref, &champ);
    if (st == LUPE_ENOTFOUND) {
        st = LUPE_OK; /* no champion yet: the absolute rules decide alone */
        lupe_err_clear();
    } else if (st) {
        goto out;
    } else {
        have_champ = champ.id != v.id;
    }
    if (have_champ && (st = champion_metrics(ws, o, &champ, &v, &cm, &reevaluated))) goto out;
    if ((st = decide(&o->rules, v.metrics, have_champ ? cm : NULL, champ.version, &j, &out->reason, &out->pass)))
        goto out;
    char when[32];
    lupe_time_iso(lupe_time_unix(), when, sizeof when);
    json_object_set_new(j, "at", json_string(when));
    json_object_set_new(j, "alias", json_string(o->champion_alias ? o->champion_alias : "production"));
    json_t *cj = json_object_get(j, "champion");
    if (json_is_object(cj)) {
        json_object_set_new(cj, "reevaluated", json_boolean(reevaluated));
        json_object_set_new(cj, "dataset", json_string(reevaluated ? v.dataset_name : champ.dataset_name));
    }
    if (!(canon = lupe_json_dump(j, 0))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    gate_store g = {.ref = ref, .by = o->by ? o->by : "gate", .json = canon, .reason = out->reason, .pass = out->pass};
    /* The version is named exactly: ref may be an alias that moves. */
    char exact[2 * REG_NAME_MAX + 16];
    snprintf(exact, sizeof exact, "%s:%d", v.group, v.version);
    g.ref = exact;
    if ((st = reg__tx(ws, store_tx, &g))) goto out;
    out->champion_version = have_champ ? champ.version : 0;
    out->reevaluated = reevaluated;
    out->json = canon, canon = NULL;
out:
    if (st) {
        lupe_free(out->reason);
        out->reason = NULL;
        st = lupe_err_ctx(st, "gating %s", ref);
    }
    json_decref(j);
    lupe_free(cm);
    lupe_free(canon);
    reg_version_cleanup(&v);
    reg_version_cleanup(&champ);
    return st;
}
