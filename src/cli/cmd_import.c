/*
 * `lupe import onnx FILE`: loads an ONNX detector made by another tool into
 * lupe's inference engine (which validates every node, shape and weight)
 * and reports what it is: input and output, class names, operators, the
 * plan lupe made; optionally times it and keeps a copy. `lupe import` of
 * labels is in cmd_dataset.c and hands the onnx form over to here.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lupe/engine.h"
#include "lupe/onnx.h"

static const char *shape_text(const int64_t *d, int rank, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static int by_count(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median and best of `runs` forward passes on a mid-grey image, in ms;
 * with step_ms, also each step's median (timed runs: a little slower). */
static lupe_status time_runs(onnx_net *net, int runs, double *median, double *best, double *step_ms)
{
    lupe_status st = LUPE_OK;
    const int ns = onnx_net_steps(net);
    float *in = lupe_malloc(onnx_net_input_numel(net) * sizeof(float));
    float *out = lupe_malloc(onnx_net_output_numel(net) * sizeof(float));
    double *t = lupe_malloc((size_t)runs * sizeof(double));
    double *per = step_ms ? lupe_malloc((size_t)runs * (size_t)(ns ? ns : 1) * sizeof(double)) : NULL;
    double *col = step_ms ? lupe_malloc((size_t)runs * sizeof(double)) : NULL;
    if (!in || !out || !t || (step_ms && (!per || !col))) {
        st = LUPE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < onnx_net_input_numel(net); i++) in[i] = 0.5f;
    if ((st = onnx_net_run(net, in, out))) goto out; /* warm-up: first touch of the arena */
    for (int r = 0; r < runs; r++) {
        const double t0 = lupe_time_mono();
        if ((st = step_ms ? onnx_net_run_timed(net, in, out, per + (size_t)r * ns) : onnx_net_run(net, in, out)))
            goto out;
        t[r] = (lupe_time_mono() - t0) * 1e3;
    }
    *median = median_of(t, runs);
    *best = t[0];
    for (int i = 0; step_ms && i < ns; i++) {
        for (int r = 0; r < runs; r++) col[r] = per[(size_t)r * ns + i];
        step_ms[i] = median_of(col, runs);
    }
out:
    lupe_free(in), lupe_free(out), lupe_free(t), lupe_free(per), lupe_free(col);
    return st;
}

static json_t *shape_json(const int64_t *d, int rank)
{
    json_t *a = json_array();
    for (int i = 0; i < rank; i++) json_array_append_new(a, json_integer(d[i]));
    return a;
}

int cmd_import_onnx(cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    static const struct option opts[] = {
        {"plan", no_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},       {"threads", required_argument, NULL, 't'},
        {"out", required_argument, NULL, 'o'}, {"bench", required_argument, NULL, 'b'}, {0},
    };
    int rc = cli_getopt_help("import", argc, argv);
    if (rc >= 0) return rc;
    int plan = 0, as_json = 0, threads = 0, bench = 0, c;
    const char *out_path = NULL;
    optind = 0;
    while ((c = getopt_long(argc, argv, "pjt:o:b:", opts, NULL)) != -1) {
        switch (c) {
        case 'p': plan = 1; break;
        case 'j': as_json = 1; break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &threads))
                return cli_usage_error("import", "--threads must be 1 to 1024, got '%s'", optarg);
            break;
        case 'o': out_path = optarg; break;
        case 'b':
            if (cli_parse_int(optarg, 1, 100000, &bench))
                return cli_usage_error("import", "--bench must be 1 to 100000 runs, got '%s'", optarg);
            break;
        default: return cli_usage_error("import", "bad option");
        }
    }
    if (optind != argc - 1) return cli_usage_error("import", "usage: lupe import onnx FILE [options]");
    const char *path = argv[optind];

    onnx_info info;
    onnx_net *net = NULL;
    char **names = NULL;
    int nnames = 0;
    json_t *j = NULL;
    double *step_ms = NULL;
    if (onnx_inspect(path, &info) || onnx_net_load(path, threads, &net)) return cli_fail("import onnx");
    const onnx_net_stats *s = onnx_net_get_stats(net);
    int in_dims[4];
    int64_t in64[4], od[6];
    onnx_net_input_shape(net, in_dims);
    for (int i = 0; i < 4; i++) in64[i] = in_dims[i];
    const int orank = onnx_net_output_shape(net, od);
    const char *names_text = onnx_net_meta(net, "names");
    lupe_status nst = names_text ? onnx_parse_names(names_text, &names, &nnames) : LUPE_ENOTFOUND;
    if (names_text && nst) fprintf(stderr, "lupe import onnx: warning: %s\n", lupe_errmsg());
    /* The YOLOv8 layout [1, 4 + nc, anchors], when the names say nc. */
    char layout[160] = "";
    if (orank == 3 && od[0] == 1 && names && od[1] == 4 + nnames)
        snprintf(layout, sizeof layout, "YOLOv8 detection layout: 4 box rows + %d class scores, %lld anchors", nnames,
                 (long long)od[2]);
    else if (names)
        snprintf(layout, sizeof layout, "not the YOLOv8 layout [1, 4 + %d, anchors] that %d class names imply", nnames,
                 nnames);
    double med = 0, best = 0;
    if (bench && plan && !as_json && !(step_ms = lupe_calloc((size_t)onnx_net_steps(net) + 1, sizeof *step_ms))) {
        rc = cli_fail("import onnx");
        goto out;
    }
    if (bench && time_runs(net, bench, &med, &best, step_ms)) {
        rc = cli_fail("import onnx");
        goto out;
    }
    if (out_path) {
        uint8_t *buf = NULL;
        size_t n = 0;
        lupe_status st = lupe_file_read(path, ONNX_MAX_BYTES, &buf, &n);
        if (!st) st = lupe_file_write_atomic(out_path, buf, n);
        lupe_free(buf);
        if (st) {
            rc = cli_fail("import onnx");
            goto out;
        }
    }
    /* Operators by count, most used first. */
    int order[ONNX_NET_MAX_OPS][2];
    for (int i = 0; i < s->nops; i++) order[i][0] = s->ops[i].count, order[i][1] = i;
    qsort(order, (size_t)s->nops, sizeof order[0], by_count);

    char b1[96], b2[96], kb1[32], kb2[32];
    if (as_json) {
        j = json_object();
        json_t *ops = json_object(), *cls = json_array();
        for (int i = 0; i < s->nops; i++) json_object_set_new(ops, s->ops[order[i][1]].op, json_integer(order[i][0]));
        for (int i = 0; i < nnames; i++) json_array_append_new(cls, json_string(names[i]));
        json_object_set_new(j, "file", json_string(path));
        json_object_set_new(j, "producer", json_string(info.producer));
        json_object_set_new(j, "ir_version", json_integer(info.ir_version));
        json_object_set_new(j, "opset", json_integer(s->opset));
        json_object_set_new(j, "input", json_pack("{s:s, s:o}", "name", s->input, "shape", shape_json(in64, 4)));
        json_object_set_new(j, "output", json_pack("{s:s, s:o}", "name", s->output, "shape", shape_json(od, orank)));
        json_object_set_new(j, "classes", names ? cls : (json_decref(cls), json_null()));
        json_object_set_new(j, "yolov8_layout", json_boolean(layout[0] == 'Y'));
        json_object_set_new(j, "nodes", json_integer(s->nodes));
        json_object_set_new(j, "operators", ops);
        json_object_set_new(j, "plan", json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I}", "steps", s->steps,
                                                 "folded", s->folded, "convolutions", s->convs, "fused_batch_norms",
                                                 s->fused_bn, "fused_activations", s->fused_act, "layout_changes",
                                                 s->conversions, "arena_bytes", (json_int_t)s->arena_bytes,
                                                 "weight_bytes", (json_int_t)s->weight_bytes));
        if (bench)
            json_object_set_new(j, "bench", json_pack("{s:i, s:i, s:f, s:f}", "runs", bench, "threads", eng_get_threads(),
                                                      "median_ms", med, "best_ms", best));
        char *text = lupe_json_dump(j, 1);
        if (!text) {
            rc = cli_fail("import onnx");
            goto out;
        }
        printf("%s\n", text);
        lupe_free(text);
    } else {
        printf("onnx: %s: loaded (%s, IR %lld, opset %lld)\n", path, info.producer[0] ? info.producer : "unknown producer",
               (long long)info.ir_version, (long long)s->opset);
        printf("input      %s %s float32\n", s->input, shape_text(in64, 4, b1, sizeof b1));
        printf("output     %s %s float32%s%s\n", s->output, shape_text(od, orank, b2, sizeof b2), layout[0] ? ": " : "",
               layout);
        if (names) {
            printf("classes    %d:", nnames);
            for (int i = 0; i < nnames; i++) printf("%s %s", i ? "," : "", names[i]);
            printf("\n");
        } else {
            printf("classes    none in the metadata (no 'names' entry)\n");
        }
        printf("operators  %d nodes:", s->nodes);
        for (int i = 0; i < s->nops; i++) printf("%s %s %d", i ? "," : "", s->ops[order[i][1]].op, order[i][0]);
        printf("\n");
        printf("plan       %d steps: %d nodes folded at load; %d convolutions on oneDNN with %d batch norms and %d "
               "activations fused; %d layout changes\n",
               s->steps, s->folded, s->convs, s->fused_bn, s->fused_act, s->conversions);
        printf("memory     arena %s, weights and constants %s\n", cli_bytes((double)s->arena_bytes, kb1, sizeof kb1),
               cli_bytes((double)s->weight_bytes, kb2, sizeof kb2));
        if (bench)
            printf("speed      %d runs, %d threads: median %.2f ms, best %.2f ms\n", bench, eng_get_threads(), med, best);
        if (out_path) printf("copied to  %s\n", out_path);
        if (plan) onnx_net_print_plan_timed(net, step_ms, stdout);
    }
    rc = EXIT_OK;
out:
    lupe_free(step_ms);
    json_decref(j);
    onnx_names_free(names, nnames);
    onnx_net_free(net);
    return rc;
}
