/*
 * Tests of the model registry on real SQLite workspaces: registration (what
 * a version records, numbering, refusals, weights outliving the run folder),
 * every allowed and refused status transition with its log rows, aliases
 * and their history, and the gate: absolute rules, champion/challenger
 * better, equal and worse, re-evaluation on another dataset, stored JSON.
 */
#include <jansson.h>
#include <unistd.h>

#include "registry/fixtures.h"

typedef struct log_rows {
    char from[8][16], to[8][16], who[8][32], why[8][128];
    int n;
} log_rows;

static int on_log(void *ud, const reg_status_change *c)
{
    log_rows *l = ud;
    if (l->n < 8) {
        snprintf(l->from[l->n], 16, "%s", c->from ? c->from : "-");
        snprintf(l->to[l->n], 16, "%s", c->to);
        snprintf(l->who[l->n], 32, "%s", c->who);
        snprintf(l->why[l->n], 128, "%s", c->why);
    }
    l->n++;
    return 0;
}

static log_rows status_log(lupe_ws *ws, const char *ref)
{
    log_rows l;
    memset(&l, 0, sizeof l);
    assert_int_equal(reg_status_log_each(ws, ref, on_log, &l), LUPE_OK);
    return l;
}

static int count_version(void *ud, const reg_version *v)
{
    (void)v;
    (*(int *)ud)++;
    return 0;
}

static int versions(lupe_ws *ws, const char *group)
{
    int n = 0;
    assert_int_equal(reg_each(ws, group, count_version, &n), LUPE_OK);
    return n;
}

static reg_status status_of(lupe_ws *ws, const char *ref)
{
    reg_version v;
    assert_int_equal(reg_get(ws, ref, &v), LUPE_OK);
    reg_status s = v.status;
    reg_version_cleanup(&v);
    return s;
}

static void test_register(void **state)
{
    (void)state;
    lupe_ws *ws = fx_ws("ws-register");
    const char *run = fx_run("run-a", 1, 0.5, 0.45, FX_DATASET_A);
    reg_register_opts o = {.run_dir = run, .group = "tag-scratch", .by = "ann", .note = "first try"};
    reg_version v;
    assert_int_equal(reg_register(ws, &o, &v), LUPE_OK);
    assert_int_equal(v.version, 1);
    assert_int_equal(v.status, REG_PENDING);
    assert_string_equal(v.group, "tag-scratch");
    assert_string_equal(v.arch, "yolov8");
    assert_string_equal(v.scale, "n");
    assert_int_equal(v.imgsz, 64);
    assert_int_equal(v.nc, 1);
    assert_string_equal(v.classes, "[\"scratch\"]");
    assert_string_equal(v.dataset_id, FX_DATASET_A);
    assert_string_equal(v.dataset_name, "tags@1");
    assert_string_equal(v.source_commit, "0123456789ab");
    assert_string_equal(v.registered_by, "ann");
    assert_string_equal(v.note, "first try");
    assert_string_equal(v.run_dir, run); /* tu_path is absolute */
    assert_non_null(strstr(v.hyperparams, "\"imgsz\":64"));
    double m = 0;
    assert_int_equal(reg_metric(v.metrics, "test", "map50_95", &m), LUPE_OK);
    assert_true(m > 0.4499 && m < 0.4501);
    assert_int_equal(reg_metric(v.metrics, "val", "map50", &m), LUPE_OK);
    assert_true(m > 0.7999 && m < 0.8001);
    assert_int_equal(reg_metric(v.metrics, "test", "nope", &m), LUPE_ENOTFOUND);
    assert_null(v.gate);
    /* The weights object is best.ckpt's bytes. */
    char path[1200], hash[LUPE_SHA256_HEX];
    snprintf(path, sizeof path, "%s/weights/best.ckpt", run);
    assert_int_equal(lupe_sha256_file(path, hash), LUPE_OK);
    assert_string_equal(v.weights, hash);
    assert_true(v.results[0] != 0);
    reg_version_cleanup(&v);

    log_rows l = status_log(ws, "tag-scratch:1");
    assert_int_equal(l.n, 1);
    assert_string_equal(l.from[0], "-");
    assert_string_equal(l.to[0], "pending");
    assert_string_equal(l.who[0], "ann");
    assert_non_null(strstr(l.why[0], "first try"));

    /* Numbering, and the newest by group name. */
    assert_int_equal(fx_register(ws, "tag-scratch", fx_run("run-b", 2, 0.5, 0.5, FX_DATASET_A)), 2);
    assert_int_equal(fx_register(ws, "other", fx_run("run-c", 3, 0.5, 0.5, FX_DATASET_A)), 1);
    assert_int_equal(reg_get(ws, "tag-scratch", &v), LUPE_OK);
    assert_int_equal(v.version, 2);
    reg_version_cleanup(&v);

    /* The same weights again: refused, nothing added. */
    assert_int_equal(reg_register(ws, &o, &v), LUPE_EEXIST);
    assert_non_null(strstr(lupe_errmsg(), "already tag-scratch:1"));
    assert_int_equal(versions(ws, "tag-scratch"), 2);

    /* A run that did not finish, a checkpoint changed after evaluation,
     * bad names and references. */
    const char *unfinished = fx_run("run-d", 4, 0.5, 0.5, FX_DATASET_A);
    snprintf(path, sizeof path, "%s/metrics.json", unfinished);
    unlink(path);
    o.run_dir = unfinished;
    assert_int_equal(reg_register(ws, &o, &v), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "metrics.json"));
    const char *changed = fx_run("run-e", 5, 0.5, 0.5, FX_DATASET_A);
    snprintf(path, sizeof path, "%s/weights/best.ckpt", changed);
    FILE *f = fopen(path, "r+b");
    fseek(f, 100, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    o.run_dir = changed;
    assert_int_not_equal(reg_register(ws, &o, &v), LUPE_OK);
    assert_non_null(strstr(lupe_errmsg(), "changed after its evaluation"));
    o.run_dir = run;
    o.group = "bad name";
    assert_int_equal(reg_register(ws, &o, &v), LUPE_EARG);
    assert_int_equal(versions(ws, "tag-scratch"), 2);
    assert_int_equal(reg_get(ws, "tag-scratch:9", &v), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "no version 9"));
    assert_int_equal(reg_get(ws, "nogroup:1", &v), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "no model group 'nogroup'"));
    assert_int_equal(reg_get(ws, "tag-scratch:0", &v), LUPE_EARG);
    assert_int_equal(reg_get(ws, "tag-scratch@", &v), LUPE_EARG);
    assert_int_equal(reg_get(ws, "tag-scratch@nope", &v), LUPE_ENOTFOUND);

    /* The version outlives its run folder: the weights are an object. */
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", run);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(reg_get(ws, "tag-scratch:1", &v), LUPE_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(lupe_obj_get(ws, v.weights, &buf, &len), LUPE_OK);
    assert_int_equal((int64_t)len, v.weights_size);
    lupe_free(buf);
    reg_version_cleanup(&v);

    /* fsck counts the weights as referenced: --repair keeps them, and a
     * missing one is an error naming the version. */
    lupe_fsck_opts fo = {.repair = 1};
    lupe_fsck_report fr;
    assert_int_equal(lupe_fsck(ws, &fo, &fr), LUPE_OK);
    assert_int_equal(fr.errors, 0);
    assert_int_equal(fr.warnings, 0);
    assert_int_equal(reg_get(ws, "tag-scratch:1", &v), LUPE_OK);
    char *op = lupe_obj_path(ws, v.weights);
    assert_int_equal(unlink(op), 0);
    lupe_free(op);
    reg_version_cleanup(&v);
    assert_int_equal(lupe_fsck(ws, NULL, &fr), LUPE_OK);
    assert_int_equal(fr.errors, 1);
    lupe_ws_close(ws);
}

static void test_transition_table(void **state)
{
    (void)state;
    /* Every pair: exactly the four transitions of the brief. */
    for (int from = 0; from < REG_NSTATUS; from++)
        for (int to = 0; to < REG_NSTATUS; to++) {
            int want = (from == REG_PENDING && (to == REG_APPROVED || to == REG_REJECTED)) ||
                       ((from == REG_APPROVED || from == REG_REJECTED) && to == REG_ARCHIVED);
            assert_int_equal(reg_transition_allowed((reg_status)from, (reg_status)to), want);
        }
    assert_string_equal(reg_status_name(REG_ARCHIVED), "archived");
    assert_int_equal(reg_status_parse("rejected"), REG_REJECTED);
    assert_int_equal(reg_status_parse("gone"), -1);
}

static void test_state_machine(void **state)
{
    (void)state;
    lupe_ws *ws = fx_ws("ws-states");
    for (int i = 1; i <= 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "states-%d", i);
        assert_int_equal(fx_register(ws, "g", fx_run(name, 10 + i, 0.5, 0.5, FX_DATASET_A)), i);
    }
    /* Every refused transition from each state, then the allowed ones. */
    struct { const char *ref; reg_status to; const char *msg; } refused[] = {
        {"g:1", REG_PENDING, "from pending to pending"},
        {"g:1", REG_ARCHIVED, "from pending to archived (allowed from pending: approved, rejected)"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        assert_int_equal(reg_set_status(ws, refused[i].ref, refused[i].to, "ann", "x"), LUPE_EARG);
        assert_non_null(strstr(lupe_errmsg(), refused[i].msg));
    }
    assert_int_equal(reg_set_status(ws, "g:1", REG_APPROVED, "ann", NULL), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "reason"));
    assert_int_equal(reg_set_status(ws, "g:1", REG_APPROVED, "ann", "looks good"), LUPE_OK);
    assert_int_equal(status_of(ws, "g:1"), REG_APPROVED);
    reg_status from_approved[] = {REG_PENDING, REG_APPROVED, REG_REJECTED};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(reg_set_status(ws, "g:1", from_approved[i], "ann", "x"), LUPE_EARG);
        assert_non_null(strstr(lupe_errmsg(), "from approved to"));
        assert_non_null(strstr(lupe_errmsg(), "allowed from approved: archived"));
    }
    assert_int_equal(reg_set_status(ws, "g:1", REG_ARCHIVED, "bob", "superseded"), LUPE_OK);
    for (int to = 0; to < REG_NSTATUS; to++) {
        assert_int_equal(reg_set_status(ws, "g:1", (reg_status)to, "ann", "x"), LUPE_EARG);
        assert_non_null(strstr(lupe_errmsg(), "archived is final"));
    }
    /* pending -> rejected -> archived, with refusals on the way. */
    assert_int_equal(reg_set_status(ws, "g:2", REG_REJECTED, "ann", "false positives"), LUPE_OK);
    reg_status from_rejected[] = {REG_PENDING, REG_APPROVED, REG_REJECTED};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(reg_set_status(ws, "g:2", from_rejected[i], "ann", "x"), LUPE_EARG);
        assert_non_null(strstr(lupe_errmsg(), "from rejected to"));
    }
    assert_int_equal(reg_set_status(ws, "g:2", REG_ARCHIVED, "ann", "cleanup"), LUPE_OK);
    /* who defaults to $LUPE_USER. */
    setenv("LUPE_USER", "envuser", 1);
    assert_int_equal(reg_set_status(ws, "g:3", REG_APPROVED, NULL, "by default"), LUPE_OK);
    unsetenv("LUPE_USER");

    log_rows l = status_log(ws, "g:1");
    assert_int_equal(l.n, 3);
    assert_string_equal(l.from[1], "pending");
    assert_string_equal(l.to[1], "approved");
    assert_string_equal(l.who[1], "ann");
    assert_string_equal(l.why[1], "looks good");
    assert_string_equal(l.from[2], "approved");
    assert_string_equal(l.to[2], "archived");
    assert_string_equal(l.who[2], "bob");
    assert_string_equal(l.why[2], "superseded");
    l = status_log(ws, "g:2");
    assert_int_equal(l.n, 3);
    assert_string_equal(l.to[1], "rejected");
    assert_string_equal(l.to[2], "archived");
    l = status_log(ws, "g:3");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.who[1], "envuser");
    /* Refusals wrote nothing. */
    assert_int_equal(status_of(ws, "g:4"), REG_PENDING);
    assert_int_equal(status_log(ws, "g:4").n, 1);
    lupe_ws_close(ws);
}

typedef struct moves {
    char name[8][16];
    int from[8], to[8];
    char who[8][16], why[8][32];
    int n;
} moves;

static int on_move(void *ud, const reg_alias_move *m)
{
    moves *x = ud;
    if (x->n < 8) {
        snprintf(x->name[x->n], 16, "%s", m->name);
        x->from[x->n] = m->from, x->to[x->n] = m->to;
        snprintf(x->who[x->n], 16, "%s", m->who);
        snprintf(x->why[x->n], 32, "%s", m->why ? m->why : "-");
    }
    x->n++;
    return 0;
}

static void test_aliases(void **state)
{
    (void)state;
    lupe_ws *ws = fx_ws("ws-alias");
    for (int i = 1; i <= 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "alias-%d", i);
        fx_register(ws, "g", fx_run(name, 20 + i, 0.5, 0.5, FX_DATASET_A));
    }
    int prev = -1;
    assert_int_equal(reg_alias_set(ws, "g", "staging", 1, "ann", "try it", &prev), LUPE_OK);
    assert_int_equal(prev, 0);
    assert_int_equal(reg_alias_set(ws, "g", "production", 1, "ann", NULL, &prev), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "only at an approved version"));
    assert_int_equal(reg_set_status(ws, "g:1", REG_APPROVED, "ann", "ok"), LUPE_OK);
    assert_int_equal(reg_set_status(ws, "g:2", REG_APPROVED, "ann", "ok"), LUPE_OK);
    assert_int_equal(reg_alias_set(ws, "g", "production", 1, "ann", "first release", &prev), LUPE_OK);
    assert_int_equal(prev, 0);
    assert_int_equal(reg_alias_set(ws, "g", "production", 2, "bob", "better", &prev), LUPE_OK);
    assert_int_equal(prev, 1);
    assert_int_equal(reg_alias_set(ws, "g", "production", 2, "bob", "again", &prev), LUPE_OK);
    assert_int_equal(prev, 2); /* no move: not recorded */
    reg_version v;
    assert_int_equal(reg_get(ws, "g@production", &v), LUPE_OK);
    assert_int_equal(v.version, 2);
    reg_version_cleanup(&v);

    moves m = {0};
    assert_int_equal(reg_alias_log_each(ws, "g", on_move, &m), LUPE_OK);
    assert_int_equal(m.n, 3);
    assert_string_equal(m.name[0], "staging");
    assert_int_equal(m.from[0], 0);
    assert_int_equal(m.to[0], 1);
    assert_string_equal(m.name[2], "production");
    assert_int_equal(m.from[2], 1);
    assert_int_equal(m.to[2], 2);
    assert_string_equal(m.who[2], "bob");
    assert_string_equal(m.why[2], "better");
    assert_string_equal(m.why[1], "first release");

    /* What an alias points at cannot be rejected or archived, and an alias
     * cannot point at a rejected version. */
    assert_int_equal(reg_set_status(ws, "g:2", REG_ARCHIVED, "ann", "x"), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "alias 'production' points at it"));
    assert_int_equal(reg_set_status(ws, "g:1", REG_REJECTED, "ann", "x"), LUPE_EARG); /* approved: not allowed */
    assert_int_equal(reg_set_status(ws, "g:3", REG_REJECTED, "ann", "bad"), LUPE_OK);
    assert_int_equal(reg_alias_set(ws, "g", "staging", 3, "ann", NULL, &prev), LUPE_EARG);
    assert_non_null(strstr(lupe_errmsg(), "is rejected"));
    assert_int_equal(reg_alias_set(ws, "g", "bad name", 1, "ann", NULL, &prev), LUPE_EARG);
    assert_int_equal(reg_alias_set(ws, "g", "staging", 7, "ann", NULL, &prev), LUPE_ENOTFOUND);
    assert_int_equal(reg_alias_set(ws, "nogroup", "staging", 1, "ann", NULL, &prev), LUPE_ENOTFOUND);
    /* Moving production away frees version 2 to be archived. */
    assert_int_equal(reg_alias_set(ws, "g", "production", 1, "ann", "rollback", &prev), LUPE_OK);
    assert_int_equal(reg_set_status(ws, "g:2", REG_ARCHIVED, "ann", "rolled back"), LUPE_OK);
    m.n = 0;
    assert_int_equal(reg_alias_log_each(ws, NULL, on_move, &m), LUPE_OK);
    assert_int_equal(m.n, 4);
    lupe_ws_close(ws);
}

static void test_gate_rules(void **state)
{
    (void)state;
    reg_gate_rules r;
    assert_int_equal(reg_gate_parse("map50_95>=0.4, val.map50 > 0.8,test.p<=1", &r), LUPE_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.r[0].split, "test");
    assert_string_equal(r.r[0].metric, "map50_95");
    assert_string_equal(r.r[0].op, ">=");
    assert_true(r.r[0].threshold == 0.4);
    assert_string_equal(r.r[1].split, "val");
    assert_string_equal(r.r[1].op, ">");
    assert_string_equal(r.r[2].op, "<=");
    const char *bad[] = {"", "map50_95", "map50_95>=", "map50_95=>0.4", "mAP>=0.4", "train.map50>=0.1",
                         "map50>=0.4x", "map50>=nan", "map50>=0.4,,r>0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(reg_gate_parse(bad[i], &r), LUPE_EARG);
        assert_non_null(strstr(lupe_errmsg(), "gate rule"));
    }
    char many[512] = "";
    for (int i = 0; i < REG_GATE_MAX_RULES + 1; i++) strcat(many, i ? ",p>0" : "p>0");
    assert_int_equal(reg_gate_parse(many, &r), LUPE_EARG);

    /* The decision alone. */
    char a[700], b[700], ma[1500], mb[1500];
    fx_split(a, sizeof a, 0.5);
    fx_split(b, sizeof b, 0.3);
    snprintf(ma, sizeof ma, "{\"val\": %s, \"test\": %s}", a, a);
    snprintf(mb, sizeof mb, "{\"val\": %s, \"test\": %s}", b, b);
    assert_int_equal(reg_gate_parse("map50_95>=0.4,map50>=0.8", &r), LUPE_OK);
    reg_gate_result g;
    assert_int_equal(reg_gate_decide(&r, ma, NULL, 0, &g), LUPE_OK);
    assert_true(g.pass);
    assert_non_null(strstr(g.reason, "passed"));
    reg_gate_result_cleanup(&g);
    assert_int_equal(reg_gate_decide(&r, mb, NULL, 0, &g), LUPE_OK);
    assert_false(g.pass);
    assert_non_null(strstr(g.reason, "test.map50_95 0.3000 is not >= 0.4"));
    assert_non_null(strstr(g.reason, "test.map50 0.6000 is not >= 0.8"));
    reg_gate_result_cleanup(&g);
    /* Against a champion: better passes, equal and worse fail. */
    assert_int_equal(reg_gate_parse("map50_95>=0", &r), LUPE_OK);
    assert_int_equal(reg_gate_decide(&r, ma, mb, 4, &g), LUPE_OK);
    assert_true(g.pass);
    assert_int_equal(g.champion_version, 4);
    assert_non_null(strstr(g.reason, "beats the champion v4 (test mAP50-95 0.5000 > 0.3000)"));
    reg_gate_result_cleanup(&g);
    assert_int_equal(reg_gate_decide(&r, ma, ma, 4, &g), LUPE_OK);
    assert_false(g.pass);
    assert_non_null(strstr(g.reason, "not better than the champion v4 (test mAP50-95 0.5000 <= 0.5000)"));
    reg_gate_result_cleanup(&g);
    assert_int_equal(reg_gate_decide(&r, mb, ma, 4, &g), LUPE_OK);
    assert_false(g.pass);
    reg_gate_result_cleanup(&g);
}

/* An evaluator that records what it was asked and answers a fixed test
 * mAP50-95, standing in for trn_val on another dataset. */
typedef struct fake_eval {
    double answer;
    char weights[1024], data[128];
    int calls;
} fake_eval;

static lupe_status fake_evaluate(void *ud, lupe_ws *ws, const char *weights, const char *data, char **out)
{
    (void)ws;
    fake_eval *f = ud;
    f->calls++;
    snprintf(f->weights, sizeof f->weights, "%s", weights);
    snprintf(f->data, sizeof f->data, "%s", data);
    char buf[700];
    fx_split(buf, sizeof buf, f->answer);
    *out = lupe_strdup(buf);
    return LUPE_OK;
}

static json_t *stored_gate(lupe_ws *ws, const char *ref)
{
    reg_version v;
    assert_int_equal(reg_get(ws, ref, &v), LUPE_OK);
    assert_non_null(v.gate);
    json_t *j = json_loads(v.gate, 0, NULL);
    assert_non_null(j);
    reg_version_cleanup(&v);
    return j;
}

static void test_gate_run(void **state)
{
    (void)state;
    lupe_ws *ws = fx_ws("ws-gate");
    reg_gate_opts o;
    reg_gate_opts_default(&o);
    reg_gate_result g;

    /* No champion: the absolute rule alone (default test mAP50-95 >= 0.4). */
    fx_register(ws, "g", fx_run("gate-1", 31, 0.5, 0.5, FX_DATASET_A));
    assert_int_equal(reg_gate_run(ws, "g:1", &o, &g), LUPE_OK);
    assert_true(g.pass);
    assert_int_equal(g.champion_version, 0);
    reg_gate_result_cleanup(&g);
    assert_int_equal(status_of(ws, "g:1"), REG_APPROVED);
    log_rows l = status_log(ws, "g:1");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.who[1], "gate");
    assert_non_null(strstr(l.why[1], "passed: test.map50_95 0.5000 >= 0.4"));
    json_t *j = stored_gate(ws, "g:1");
    assert_true(json_is_true(json_object_get(j, "pass")));
    assert_true(json_is_null(json_object_get(j, "champion")));
    json_t *rule = json_array_get(json_object_get(j, "rules"), 0);
    assert_string_equal(json_string_value(json_object_get(rule, "rule")), "test.map50_95>=0.4");
    assert_true(json_real_value(json_object_get(rule, "value")) == 0.5);
    json_decref(j);
    assert_int_equal(reg_gate_run(ws, "g:1", &o, &g), LUPE_EARG); /* approved: not gated again */
    assert_non_null(strstr(lupe_errmsg(), "only a pending version"));

    /* Below the threshold, and without a test split: stays pending. */
    fx_register(ws, "g", fx_run("gate-2", 32, 0.5, 0.3, FX_DATASET_A));
    assert_int_equal(reg_gate_run(ws, "g:2", &o, &g), LUPE_OK);
    assert_false(g.pass);
    assert_non_null(strstr(g.reason, "0.3000 is not >= 0.4"));
    reg_gate_result_cleanup(&g);
    assert_int_equal(status_of(ws, "g:2"), REG_PENDING);
    assert_int_equal(status_log(ws, "g:2").n, 1);
    j = stored_gate(ws, "g:2");
    assert_true(json_is_false(json_object_get(j, "pass")));
    json_decref(j);
    fx_register(ws, "g", fx_run("gate-3", 33, 0.5, -1, FX_DATASET_A));
    assert_int_equal(reg_gate_run(ws, "g:3", &o, &g), LUPE_OK);
    assert_false(g.pass);
    assert_non_null(strstr(g.reason, "no test map50_95"));
    reg_gate_result_cleanup(&g);

    /* Champion on the same dataset: better passes, equal and worse fail;
     * the comparison is stored. */
    assert_int_equal(reg_alias_set(ws, "g", "production", 1, "ann", NULL, NULL), LUPE_OK);
    fx_register(ws, "g", fx_run("gate-4", 34, 0.5, 0.6, FX_DATASET_A));
    assert_int_equal(reg_gate_run(ws, "g:4", &o, &g), LUPE_OK);
    assert_true(g.pass);
    assert_int_equal(g.champion_version, 1);
    assert_int_equal(g.reevaluated, 0);
    reg_gate_result_cleanup(&g);
    j = stored_gate(ws, "g:4");
    json_t *c = json_object_get(j, "champion");
    assert_int_equal(json_integer_value(json_object_get(c, "version")), 1);
    assert_true(json_real_value(json_object_get(c, "champion")) == 0.5);
    assert_true(json_real_value(json_object_get(c, "challenger")) == 0.6);
    assert_true(json_is_true(json_object_get(c, "pass")));
    assert_true(json_is_false(json_object_get(c, "reevaluated")));
    assert_true(json_real_value(json_object_get(json_object_get(c, "metrics"), "map50_95")) == 0.5);
    assert_true(json_real_value(json_object_get(json_object_get(j, "challenger"), "map50_95")) == 0.6);
    json_decref(j);
    fx_register(ws, "g", fx_run("gate-5", 35, 0.5, 0.5, FX_DATASET_A));
    assert_int_equal(reg_gate_run(ws, "g:5", &o, &g), LUPE_OK);
    assert_false(g.pass); /* equal is not better */
    assert_non_null(strstr(g.reason, "not better than the champion v1"));
    reg_gate_result_cleanup(&g);
    fx_register(ws, "g", fx_run("gate-6", 36, 0.5, 0.45, FX_DATASET_A));
    assert_int_equal(reg_gate_run(ws, "g:6", &o, &g), LUPE_OK);
    assert_false(g.pass);
    reg_gate_result_cleanup(&g);
    assert_int_equal(status_of(ws, "g:6"), REG_PENDING);

    /* Champion measured on another dataset: evaluated again on this
     * version's test split, with the champion's weights. */
    fake_eval fe = {.answer = 0.7};
    o.evaluate = fake_evaluate, o.evaluate_ud = &fe;
    fx_register(ws, "g", fx_run("gate-7", 37, 0.5, 0.65, FX_DATASET_B));
    assert_int_equal(reg_gate_run(ws, "g:7", &o, &g), LUPE_OK);
    assert_false(g.pass);
    assert_int_equal(g.reevaluated, 1);
    assert_non_null(strstr(g.reason, "0.6500 <= 0.7000"));
    reg_gate_result_cleanup(&g);
    assert_int_equal(fe.calls, 1);
    assert_string_equal(fe.data, FX_DATASET_B);
    reg_version champ;
    assert_int_equal(reg_get(ws, "g@production", &champ), LUPE_OK);
    char *cp = lupe_obj_path(ws, champ.weights);
    assert_string_equal(fe.weights, cp);
    lupe_free(cp);
    reg_version_cleanup(&champ);
    j = stored_gate(ws, "g:7");
    c = json_object_get(j, "champion");
    assert_true(json_is_true(json_object_get(c, "reevaluated")));
    assert_true(json_real_value(json_object_get(c, "champion")) == 0.7);
    json_decref(j);
    fe.answer = 0.6;
    assert_int_equal(reg_gate_run(ws, "g:7", &o, &g), LUPE_OK); /* still pending: gated again */
    assert_true(g.pass);
    reg_gate_result_cleanup(&g);
    assert_int_equal(status_of(ws, "g:7"), REG_APPROVED);

    /* A folder that is gone cannot host the champion's re-evaluation. */
    o.evaluate = NULL;
    fx_register(ws, "g", fx_run("gate-8", 38, 0.5, 0.9, ""));
    assert_int_equal(reg_gate_run(ws, "g:8", &o, &g), LUPE_ENOTFOUND);
    assert_non_null(strstr(lupe_errmsg(), "/nonexistent/syn"));
    assert_int_equal(status_of(ws, "g:8"), REG_PENDING);
    lupe_ws_close(ws);
}

int main(void)
{
    lupe_base_init();
    unsetenv("LUPE_USER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register),   cmocka_unit_test(test_transition_table),
        cmocka_unit_test(test_state_machine), cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_gate_rules), cmocka_unit_test(test_gate_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
