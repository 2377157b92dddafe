/*
 * Model registry commands: `lupe models register|list|show|approve|reject|
 * archive|alias|aliases|gate|compare|package|verify`, and the registration
 * that `lupe train --register` runs after a finished run.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "lupe/dataset.h"
#include "lupe/onnx.h"
#include "lupe/registry.h"

#define CMD "models"

/* ---- register and gate ---------------------------------------------------- */

/* Gates ref and prints the outcome; EXIT_PARTIAL when it stays pending. */
static int gate_and_report(cli_ctx *ctx, lupe_ws *ws, const char *ref, const char *rules, int threads)
{
    reg_gate_opts g;
    reg_gate_opts_default(&g);
    g.threads = threads;
    if (rules && reg_gate_parse(rules, &g.rules)) return cli_usage_error(CMD, "--gate: %s", lupe_errmsg());
    reg_gate_result r;
    if (reg_gate_run(ws, ref, &g, &r)) return cli_fail(CMD);
    if (r.champion_version && r.reevaluated && !ctx->quiet)
        printf("champion v%d (production) was evaluated again on this version's test split\n", r.champion_version);
    printf("gate: %s\n", r.reason);
    printf("%s: %s\n", ref, r.pass ? "approved" : "stays pending");
    int rc = r.pass ? EXIT_OK : EXIT_PARTIAL;
    reg_gate_result_cleanup(&r);
    return rc;
}

int cli_models_register(cli_ctx *ctx, lupe_ws *ws, const char *run, const char *group, const char *rules, int gate,
                        const char *by, const char *note, int threads)
{
    reg_register_opts o = {.run_dir = run, .group = group, .by = by, .note = note};
    reg_version v;
    if (reg_register(ws, &o, &v)) return cli_fail(CMD);
    char ref[256];
    snprintf(ref, sizeof ref, "%s:%d", v.group, v.version);
    printf("registered %s (pending) from %s\n", ref, v.run_dir);
    reg_version_cleanup(&v);
    return gate ? gate_and_report(ctx, ws, ref, rules, threads) : EXIT_OK;
}

static int m_register(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    enum { O_NOGATE = 1000, O_THREADS };
    static const struct option opts[] = {
        {"group", required_argument, NULL, 'g'}, {"gate", required_argument, NULL, 'G'},
        {"no-gate", no_argument, NULL, O_NOGATE}, {"by", required_argument, NULL, 'b'},
        {"note", required_argument, NULL, 'n'},  {"threads", required_argument, NULL, O_THREADS},
        {0},
    };
    const char *group = NULL, *rules = NULL, *by = NULL, *note = NULL;
    int gate = 1, threads = 0, c;
    while ((c = getopt_long(argc, argv, "g:G:b:n:", opts, NULL)) != -1) {
        switch (c) {
        case 'g': group = optarg; break;
        case 'G': rules = optarg; break;
        case O_NOGATE: gate = 0; break;
        case 'b': by = optarg; break;
        case 'n': note = optarg; break;
        case O_THREADS:
            if (cli_parse_int(optarg, 0, 1024, &threads)) return cli_usage_error(CMD, "bad value '%s' for --threads", optarg);
            break;
        default: return cli_usage_error(CMD, "bad option");
        }
    }
    if (optind != argc - 1 || !group) return cli_usage_error(CMD, "usage: lupe models register RUN --group G");
    if (rules && !gate) return cli_usage_error(CMD, "--gate and --no-gate together");
    if (rules) {
        reg_gate_rules r; /* a bad rule is a usage error before anything is stored */
        if (reg_gate_parse(rules, &r)) return cli_usage_error(CMD, "--gate: %s", lupe_errmsg());
    }
    return cli_models_register(ctx, ws, argv[optind], group, rules, gate, by, note, threads);
}

static int m_gate(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    static const struct option opts[] = {{"gate", required_argument, NULL, 'G'}, {"threads", required_argument, NULL, 'T'},
                                         {0}};
    const char *rules = NULL;
    int threads = 0, c;
    while ((c = getopt_long(argc, argv, "G:T:", opts, NULL)) != -1) {
        if (c == 'G') rules = optarg;
        else if (c == 'T' && !cli_parse_int(optarg, 0, 1024, &threads)) continue;
        else return cli_usage_error(CMD, "bad option");
    }
    if (optind != argc - 1) return cli_usage_error(CMD, "usage: lupe models gate G:V [--gate RULES]");
    return gate_and_report(ctx, ws, argv[optind], rules, threads);
}

/* ---- list and show -------------------------------------------------------- */

typedef struct alias_list {
    char text[512];
    int version;
} alias_list;

static int collect_alias(void *ud, const reg_alias *a)
{
    alias_list *l = ud;
    if (a->version != l->version) return 0;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s%s", n ? "," : "", a->name);
    return 0;
}

static void metric_text(const char *metrics, const char *split, const char *metric, char *buf, size_t n)
{
    double v;
    if (reg_metric(metrics, split, metric, &v)) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.3f", v);
    lupe_err_clear();
}

typedef struct list_ctx {
    lupe_ws *ws;
    int count;
} list_ctx;

static int print_row(void *ud, const reg_version *v)
{
    list_ctx *l = ud;
    alias_list al = {.version = v->version};
    reg_alias_each(l->ws, v->group, collect_alias, &al);
    char t[32], m1[16], m2[16], ref[128];
    lupe_time_iso(v->registered_at, t, sizeof t);
    metric_text(v->metrics, "test", "map50_95", m1, sizeof m1);
    metric_text(v->metrics, "test", "map50", m2, sizeof m2);
    if (!l->count++)
        printf("%-22s %-9s %-18s %-20s %-10s %9s %7s  %s\n", "version", "status", "aliases", "registered", "by",
               "mAP50-95", "mAP50", "dataset");
    snprintf(ref, sizeof ref, "%s:%d", v->group, v->version);
    printf("%-22s %-9s %-18s %-20s %-10s %9s %7s  %s\n", ref, reg_status_name(v->status), al.text[0] ? al.text : "-",
           t, v->registered_by, m1, m2, v->dataset_name);
    return 0;
}

static int m_list(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    if (argc > 2) return cli_usage_error(CMD, "usage: lupe models list [GROUP]");
    list_ctx l = {.ws = ws};
    if (reg_each(ws, argc == 2 ? argv[1] : NULL, print_row, &l)) return cli_fail(CMD);
    if (!l.count && !ctx->quiet) printf("no model versions yet (lupe models register RUN --group G)\n");
    return EXIT_OK;
}

static int print_log(void *ud, const reg_status_change *c)
{
    (void)ud;
    char t[32];
    lupe_time_iso(c->at, t, sizeof t);
    printf("  %s  %-9s -> %-9s by %s: %s\n", t, c->from ? c->from : "(new)", c->to, c->who, c->why);
    return 0;
}

static int json_log(void *ud, const reg_status_change *c)
{
    char t[32];
    lupe_time_iso(c->at, t, sizeof t);
    json_array_append_new(ud, json_pack("{s:s?, s:s, s:s, s:s, s:s}", "from", c->from, "to", c->to, "who", c->who,
                                        "at", t, "why", c->why));
    return 0;
}

static json_t *json_text(const char *s)
{
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    return j ? j : json_null();
}

static int show_json(lupe_ws *ws, const char *ref, const reg_version *v, const char *aliases)
{
    char t[32];
    lupe_time_iso(v->registered_at, t, sizeof t);
    json_t *log = json_array(), *al = json_array();
    for (const char *p = aliases; *p;) {
        size_t n = strcspn(p, ",");
        json_array_append_new(al, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    if (reg_status_log_each(ws, ref, json_log, log)) {
        json_decref(log);
        json_decref(al);
        return cli_fail(CMD);
    }
    json_t *j = json_pack("{s:s, s:i, s:s, s:o, s:s, s:s, s:i, s:o, s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:I, s:s?, "
                          "s:o, s:s?, s:s, s:s, s:o}",
                          "group", v->group, "version", v->version, "status", reg_status_name(v->status), "aliases", al,
                          "arch", v->arch, "scale", v->scale, "imgsz", v->imgsz, "classes", json_text(v->classes),
                          "dataset_id", v->dataset_id, "dataset_name", v->dataset_name, "source_commit",
                          v->source_commit, "hyperparameters", json_text(v->hyperparams), "run_dir", v->run_dir,
                          "metrics", json_text(v->metrics), "weights", v->weights, "weights_size",
                          (json_int_t)v->weights_size, "results", v->results[0] ? v->results : NULL, "gate",
                          json_text(v->gate), "note", v->note, "registered_by", v->registered_by, "registered_at", t,
                          "status_log", log);
    char *text = j ? lupe_json_dump(j, 1) : NULL;
    json_decref(j);
    if (!text) return cli_fail(CMD);
    printf("%s\n", text);
    lupe_free(text);
    return EXIT_OK;
}

static void print_split(const char *metrics, const char *split)
{
    json_t *j = json_loads(metrics, 0, NULL), *s = json_object_get(j, split);
    if (!json_is_object(s)) {
        printf("%-5s -\n", split);
        json_decref(j);
        return;
    }
    printf("%-5s %5lld images  P %.3f  R %.3f  mAP50 %.3f  mAP50-95 %.3f  conf at max F1 %.3f\n", split,
           (long long)json_integer_value(json_object_get(s, "images")), json_number_value(json_object_get(s, "p")),
           json_number_value(json_object_get(s, "r")), json_number_value(json_object_get(s, "map50")),
           json_number_value(json_object_get(s, "map50_95")), json_number_value(json_object_get(s, "conf")));
    json_t *cls = json_object_get(s, "classes");
    if (json_array_size(cls) > 1)
        for (size_t i = 0; i < json_array_size(cls); i++) {
            json_t *c = json_array_get(cls, i);
            printf("      %-14s AP50 %.3f  AP50-95 %.3f  P %.3f  R %.3f\n",
                   json_string_value(json_object_get(c, "name")), json_number_value(json_object_get(c, "ap50")),
                   json_number_value(json_object_get(c, "ap50_95")), json_number_value(json_object_get(c, "p")),
                   json_number_value(json_object_get(c, "r")));
        }
    json_decref(j);
}

static int m_show(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
    int json = 0, c;
    while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else return cli_usage_error(CMD, "bad option");
    }
    if (optind != argc - 1) return cli_usage_error(CMD, "usage: lupe models show G:V|G@ALIAS [--json]");
    reg_version v;
    if (reg_get(ws, argv[optind], &v)) return cli_fail(CMD);
    char ref[256];
    snprintf(ref, sizeof ref, "%s:%d", v.group, v.version);
    alias_list al = {.version = v.version};
    int rc = EXIT_OK;
    if (reg_alias_each(ws, v.group, collect_alias, &al)) {
        rc = cli_fail(CMD);
        goto out;
    }
    if (json) {
        rc = show_json(ws, ref, &v, al.text);
        goto out;
    }
    char t[32];
    lupe_time_iso(v.registered_at, t, sizeof t);
    printf("%s  %s%s%s\n", ref, reg_status_name(v.status), al.text[0] ? "  aliases: " : "", al.text);
    printf("model     %s%s, input %d, classes %s\n", v.arch, v.scale, v.imgsz, v.classes);
    printf("data      %s%s%s\n", v.dataset_name, v.dataset_id[0] ? "  id " : "", v.dataset_id);
    printf("trained   by lupe %s in %s\n", v.source_commit, v.run_dir);
    printf("weights   object %s (%lld bytes)%s%s\n", v.weights, (long long)v.weights_size,
           v.results[0] ? "; training log object " : "", v.results);
    printf("registered %s by %s%s%s\n", t, v.registered_by, v.note ? ": " : "", v.note ? v.note : "");
    print_split(v.metrics, "val");
    print_split(v.metrics, "test");
    if (v.gate) {
        json_t *g = json_loads(v.gate, 0, NULL);
        printf("gate      %s\n", json_string_value(json_object_get(g, "reason")));
        json_decref(g);
    }
    printf("history\n");
    if (reg_status_log_each(ws, ref, print_log, NULL)) rc = cli_fail(CMD);
out:
    reg_version_cleanup(&v);
    return rc;
}

/* ---- status and aliases --------------------------------------------------- */

static int set_status(lupe_ws *ws, int argc, char **argv, reg_status to)
{
    static const struct option opts[] = {{"why", required_argument, NULL, 'w'}, {"by", required_argument, NULL, 'b'},
                                         {0}};
    const char *why = NULL, *by = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "w:b:", opts, NULL)) != -1) {
        if (c == 'w') why = optarg;
        else if (c == 'b') by = optarg;
        else return cli_usage_error(CMD, "bad option");
    }
    if (optind != argc - 1 || !why || !*why)
        return cli_usage_error(CMD, "usage: lupe models %s G:V --why TEXT [--by NAME]", argv[0]);
    if (reg_set_status(ws, argv[optind], to, by, why)) return cli_fail(CMD);
    printf("%s: %s\n", argv[optind], reg_status_name(to));
    return EXIT_OK;
}

static int m_approve(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    return set_status(ws, argc, argv, REG_APPROVED);
}

static int m_reject(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    return set_status(ws, argc, argv, REG_REJECTED);
}

static int m_archive(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    return set_status(ws, argc, argv, REG_ARCHIVED);
}

static int m_alias(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    static const struct option opts[] = {{"why", required_argument, NULL, 'w'}, {"by", required_argument, NULL, 'b'},
                                         {0}};
    const char *why = NULL, *by = NULL;
    int c, version = 0, prev = 0;
    while ((c = getopt_long(argc, argv, "w:b:", opts, NULL)) != -1) {
        if (c == 'w') why = optarg;
        else if (c == 'b') by = optarg;
        else return cli_usage_error(CMD, "bad option");
    }
    if (optind != argc - 3) return cli_usage_error(CMD, "usage: lupe models alias GROUP NAME VERSION [--why TEXT]");
    if (cli_parse_int(argv[optind + 2], 1, 1 << 30, &version))
        return cli_usage_error(CMD, "VERSION must be a version number, got '%s'", argv[optind + 2]);
    if (reg_alias_set(ws, argv[optind], argv[optind + 1], version, by, why, &prev)) return cli_fail(CMD);
    if (prev == version) printf("%s@%s already points at version %d\n", argv[optind], argv[optind + 1], version);
    else if (prev) printf("%s@%s: version %d -> %d\n", argv[optind], argv[optind + 1], prev, version);
    else printf("%s@%s: version %d (new alias)\n", argv[optind], argv[optind + 1], version);
    return EXIT_OK;
}

static int print_alias(void *ud, const reg_alias *a)
{
    (void)ud;
    printf("%s@%s -> %s:%d\n", a->group, a->name, a->group, a->version);
    return 0;
}

static int print_move(void *ud, const reg_alias_move *m)
{
    (void)ud;
    char t[32], from[16];
    lupe_time_iso(m->at, t, sizeof t);
    snprintf(from, sizeof from, m->from ? "%d" : "(new)", m->from);
    printf("  %s  %s@%s  %s -> %d  by %s%s%s\n", t, m->group, m->name, from, m->to, m->who, m->why ? ": " : "",
           m->why ? m->why : "");
    return 0;
}

static int m_aliases(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    if (argc > 2) return cli_usage_error(CMD, "usage: lupe models aliases [GROUP]");
    const char *g = argc == 2 ? argv[1] : NULL;
    if (reg_alias_each(ws, g, print_alias, NULL)) return cli_fail(CMD);
    printf("history\n");
    return reg_alias_log_each(ws, g, print_move, NULL) ? cli_fail(CMD) : EXIT_OK;
}

/* ---- compare -------------------------------------------------------------- */

static int m_compare(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'}, {"split", required_argument, NULL, 's'},
        {"conf", required_argument, NULL, 'c'}, {"top", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'T'}, {0},
    };
    reg_compare_opts o;
    reg_compare_opts_default(&o);
    int c;
    while ((c = getopt_long(argc, argv, "d:s:c:t:T:", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'd': o.data = optarg; break;
        case 's': bad = (o.split = lupe_split_parse(optarg)) < 0; break;
        case 'c': bad = cli_parse_float(optarg, 0, 1, &o.conf); break;
        case 't': bad = cli_parse_int(optarg, 1, 1000, &o.top); break;
        case 'T': bad = cli_parse_int(optarg, 0, 1024, &o.threads); break;
        default: return cli_usage_error(CMD, "bad option");
        }
        if (bad) return cli_usage_error(CMD, "bad value '%s' for %s", optarg, argv[optind - 1]);
    }
    if (optind != argc - 2) return cli_usage_error(CMD, "usage: lupe models compare A B");
    const char *ra = argv[optind], *rb = argv[optind + 1];
    reg_version a, b;
    if (reg_get(ws, ra, &a)) return cli_fail(CMD);
    if (reg_get(ws, rb, &b)) {
        reg_version_cleanup(&a);
        return cli_fail(CMD);
    }
    char na[128], nb[128];
    snprintf(na, sizeof na, "%s:%d", a.group, a.version);
    snprintf(nb, sizeof nb, "%s:%d", b.group, b.version);
    printf("%-22s %14s %14s\n", "", na, nb);
    printf("%-22s %14s %14s\n", "status", reg_status_name(a.status), reg_status_name(b.status));
    printf("%-22s %13s%s %13s%s\n", "model", a.arch, a.scale, b.arch, b.scale);
    printf("%-22s %14d %14d\n", "input size", a.imgsz, b.imgsz);
    printf("%-22s %14.12s %14.12s\n", "dataset", a.dataset_id[0] ? a.dataset_id : a.dataset_name,
           b.dataset_id[0] ? b.dataset_id : b.dataset_name);
    static const char *const splits[] = {"val", "test"};
    static const char *const keys[] = {"p", "r", "map50", "map50_95", "conf"};
    static const char *const labels[] = {"P", "R", "mAP50", "mAP50-95", "conf at max F1"};
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 5; k++) {
            char x[16], y[16], label[40];
            metric_text(a.metrics, splits[s], keys[k], x, sizeof x);
            metric_text(b.metrics, splits[s], keys[k], y, sizeof y);
            snprintf(label, sizeof label, "%s %s", splits[s], labels[k]);
            printf("%-22s %14s %14s\n", label, x, y);
        }
    if (strcmp(a.dataset_id, b.dataset_id))
        printf("(the two were evaluated on different datasets: their figures are not directly comparable)\n");
    reg_version_cleanup(&a);
    reg_version_cleanup(&b);
    reg_disagreement *d = NULL;
    int n = 0, nimages = 0;
    if (reg_compare(ws, ra, rb, &o, &d, &n, &nimages)) return cli_fail(CMD);
    printf("\nimages of the %s split where they disagree most (boxes with score >= %.2f; of %d images):\n",
           lupe_split_name(o.split), (double)o.conf, nimages);
    printf("%-4s %-64s %6s %6s %7s %8s %6s\n", "rank", "image", "boxesA", "boxesB", "paired", "meanIoU", "score");
    for (int i = 0; i < n; i++)
        printf("%-4d %-64s %6d %6d %7d %8.3f %6.3f\n", i + 1, d[i].image, d[i].na, d[i].nb, d[i].matched,
               d[i].mean_iou, d[i].score);
    lupe_free(d);
    return EXIT_OK;
}

/* ---- package and verify ---------------------------------------------------- */

/* model.onnx of a package: the ONNX export of the version's weights at the
 * size it was trained at (docs/onnx.md). */
static lupe_status package_onnx(void *ud, const reg_version *v, const char *weights_path, const char *dir)
{
    (void)ud, (void)v;
    char *path = lupe_path_join(dir, "model.onnx");
    if (!path) return LUPE_ENOMEM;
    onnx_export_info ex;
    lupe_status st = onnx_export_det(weights_path, path, 0, &ex);
    lupe_free(path);
    return st ? lupe_err_ctx(st, "exporting model.onnx") : LUPE_OK;
}

static int m_package(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'}, {"out", required_argument, NULL, 'o'},
                                         {"by", required_argument, NULL, 'b'},  {0}};
    const char *key = NULL, *out = NULL, *by = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "k:o:b:", opts, NULL)) != -1) {
        if (c == 'k') key = optarg;
        else if (c == 'o') out = optarg;
        else if (c == 'b') by = optarg;
        else return cli_usage_error(CMD, "bad option");
    }
    if (optind != argc - 1 || !key || !out)
        return cli_usage_error(CMD, "usage: lupe models package G:V --key NAME --out DIR");
    uint8_t pk[LUPE_ED25519_PK], sk[LUPE_ED25519_SK];
    if (reg_key_load(ws, key, pk, sk)) return cli_fail(CMD);
    reg_package_opts o = {.out = out, .pk = pk, .sk = sk, .by = by, .extra_files = package_onnx};
    lupe_status st = reg_package(ws, argv[optind], &o);
    memset(sk, 0, sizeof sk);
    if (st) return cli_fail(CMD);
    char id[REG_KEY_ID_HEX];
    reg_key_id(pk, id);
    if (!ctx->quiet) printf("packaged %s into %s, signed with key %s (id %s)\n", argv[optind], out, key, id);
    return EXIT_OK;
}

/* Not a verb of cli_dispatch: a device or a CI job verifies a package
 * with a public key alone, without a workspace. */
static int m_verify(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"pubkey", required_argument, NULL, 'p'}, {"key", required_argument, NULL, 'k'},
                                         {0}};
    const char *hex = NULL, *key = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "p:k:", opts, NULL)) != -1) {
        if (c == 'p') hex = optarg;
        else if (c == 'k') key = optarg;
        else return cli_usage_error(CMD, "bad option");
    }
    if (optind != argc - 1 || (!hex == !key))
        return cli_usage_error(CMD, "usage: lupe models verify DIR (--pubkey HEX | --key NAME)");
    uint8_t pk[LUPE_ED25519_PK];
    if (hex) {
        if (reg_pubkey_parse(hex, pk)) return cli_usage_error(CMD, "--pubkey: %s", lupe_errmsg());
    } else {
        lupe_ws *ws = NULL;
        lupe_status st = cli_open_ws(ctx, &ws);
        if (!st) st = reg_key_public(ws, key, pk);
        lupe_ws_close(ws);
        if (st) return cli_fail(CMD);
    }
    reg_verify_report r;
    if (reg_package_verify(argv[optind], pk, &r)) return cli_fail(CMD);
    printf("%s: verified (key %s; signature, manifest and %d files)\n", argv[optind], r.key_id, r.nfiles);
    return EXIT_OK;
}

int cmd_models(cli_ctx *ctx, int argc, char **argv)
{
    static const cli_verb verbs[] = {
        {"register", m_register}, {"list", m_list},       {"show", m_show},       {"approve", m_approve},
        {"reject", m_reject},     {"archive", m_archive}, {"alias", m_alias},     {"aliases", m_aliases},
        {"gate", m_gate},         {"compare", m_compare}, {"package", m_package}, {0},
    };
    if (argc >= 2 && !strcmp(argv[1], "verify")) {
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return cli_print_help(CMD);
        return m_verify(ctx, argc - 1, argv + 1);
    }
    return cli_dispatch(ctx, CMD, verbs, argc, argv);
}
