/*
 * Dataset commands: `lupe dataset create|list|show|diff|stats|export` and
 * `lupe import`, which brings labels made by other tools into a label set.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lupe/dataset.h"

static int print_info(void *ud, const lupe_dataset_info *d)
{
    (void)ud;
    char t[32];
    lupe_time_iso(d->created_at, t, sizeof t);
    printf("%s@%-3d %.12s  %s  %-10s %6lld images (%lld/%lld/%lld)  %6lld boxes  labelset %s\n", d->name, d->version,
           d->id, t, d->created_by, (long long)d->items, (long long)d->split_items[0], (long long)d->split_items[1],
           (long long)d->split_items[2], (long long)d->boxes, d->labelset);
    return 0;
}

static int ds_create(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from-labels", required_argument, NULL, 'f'}, {"split", required_argument, NULL, 's'},
        {"group-by", required_argument, NULL, 'g'},    {"seed", required_argument, NULL, 'S'},
        {"labelset", required_argument, NULL, 'L'},    {"split-from", required_argument, NULL, 'F'},
        {"author", required_argument, NULL, 'a'},      {0},
    };
    lupe_dataset_opts o = lupe_dataset_default_opts();
    int c;
    while ((c = getopt_long(argc, argv, "f:s:g:S:L:F:a:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (!strcmp(optarg, "approved")) o.from = LUPE_FROM_APPROVED;
            else if (!strcmp(optarg, "submitted")) o.from = LUPE_FROM_SUBMITTED;
            else return cli_usage_error("dataset", "--from-labels must be approved or submitted, got '%s'", optarg);
            break;
        case 's':
            if (lupe_dataset_parse_ratios(optarg, o.ratios))
                return cli_usage_error("dataset", "--split '%s': expected three percentages summing to 100, as 70/15/15", optarg);
            break;
        case 'g': o.group_by = optarg; break;
        case 'S': {
            char *end;
            o.seed = strtoull(optarg, &end, 10);
            if (*end || !*optarg) return cli_usage_error("dataset", "--seed expects a number, got '%s'", optarg);
            break;
        }
        case 'L': o.labelset = optarg; break;
        case 'F': o.split_from = optarg; break;
        case 'a': o.author = optarg; break;
        default: return cli_usage_error("dataset", "bad option");
        }
    }
    if (optind != argc - 1) return cli_usage_error("dataset", "usage: lupe dataset create NAME [options]");
    o.name = argv[optind];
    lupe_dataset_info d;
    int unchanged = 0;
    if (lupe_dataset_create(ws, &o, &d, &unchanged)) return cli_fail("dataset");
    if (unchanged) printf("unchanged: %s@%d already holds exactly these labels and splits\n", d.name, d.version);
    else if (!ctx->quiet) printf("created ");
    if (!unchanged || !ctx->quiet) print_info(NULL, &d);
    if (!ctx->quiet) printf("id %s\n", d.id);
    lupe_dataset_info_cleanup(&d);
    return EXIT_OK;
}

static void print_stats(const lupe_manifest *m, const lupe_dataset_stats *s)
{
    static const char *const bins[] = {"<8", "8-16", "16-32", "32-64", "64-128", "128-256", "256-512", ">=512"};
    printf("%-22s %8s %8s %8s %8s\n", "", "train", "val", "test", "all");
#define ROW(label, arr)                                                                                         \
    do {                                                                                                        \
        int64_t sum = (arr)[0] + (arr)[1] + (arr)[2];                                                           \
        printf("%-22s %8lld %8lld %8lld %8lld\n", label, (long long)(arr)[0], (long long)(arr)[1],             \
               (long long)(arr)[2], (long long)sum);                                                            \
    } while (0)
    ROW("images", s->images);
    ROW("groups", s->groups);
    ROW("images without boxes", s->negatives);
    ROW("boxes", s->boxes);
    for (int k = 0; k < s->nclasses; k++) {
        char label[64];
        snprintf(label, sizeof label, "  %s", m->classes[k]);
        ROW(label, &s->class_boxes[k * 3]);
    }
#undef ROW
    printf("box size (sqrt of area, px):");
    for (int b = 0; b < 8; b++) printf(" %s:%lld", bins[b], (long long)s->size_hist[b]);
    printf("\nduplicate boxes (same class, IoU > 0.9): %lld\n", (long long)s->duplicate_boxes);
    printf("groups on more than one side: %lld\n", (long long)s->groups_split);
}

static int ds_show_or_stats(lupe_ws *ws, int argc, char **argv, int stats)
{
    if (argc != 2) return cli_usage_error("dataset", "usage: lupe dataset %s NAME[@N]", stats ? "stats" : "show");
    lupe_dataset_info d;
    lupe_manifest *m = NULL;
    lupe_status st = lupe_dataset_get(ws, argv[1], &d);
    if (!st) {
        char ref[160];
        snprintf(ref, sizeof ref, "%s@%d", d.name, d.version);
        st = lupe_dataset_load(ws, ref, &m);
    }
    if (st) return cli_fail("dataset");
    if (!stats) {
        print_info(NULL, &d);
        printf("id       %s\nparent   %s\noptions  %s\n\n", d.id, d.parent[0] ? d.parent : "-", d.params);
    }
    lupe_dataset_stats s;
    if (!lupe_dataset_stats_get(m, &s)) {
        print_stats(m, &s);
        lupe_dataset_stats_cleanup(&s);
    }
    lupe_dataset_info_cleanup(&d);
    lupe_manifest_free(m);
    return EXIT_OK;
}

static void print_line(void *ud, const char *text)
{
    (void)ud;
    printf("%s\n", text);
}

static int ds_diff(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    if (argc != 3) return cli_usage_error("dataset", "usage: lupe dataset diff A B");
    lupe_manifest *a = NULL, *b = NULL;
    lupe_status st = lupe_dataset_load(ws, argv[1], &a);
    if (!st) st = lupe_dataset_load(ws, argv[2], &b);
    lupe_dataset_diff d;
    if (!st) st = lupe_dataset_diff_get(a, b, print_line, NULL, &d);
    lupe_manifest_free(a);
    lupe_manifest_free(b);
    if (st) return cli_fail("dataset");
    printf("%lld added, %lld removed, %lld moved between splits, %lld relabeled (%lld boxes added, %lld removed, "
           "%lld changed)\n",
           (long long)d.added, (long long)d.removed, (long long)d.moved, (long long)d.relabeled,
           (long long)d.boxes_added, (long long)d.boxes_removed, (long long)d.boxes_changed);
    return EXIT_OK;
}

static int ds_export(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'}, {"out", required_argument, NULL, 'o'}, {0}};
    int fmt = -1, c;
    const char *out = NULL;
    while ((c = getopt_long(argc, argv, "f:o:", opts, NULL)) != -1) {
        if (c == 'f') {
            if ((fmt = lupe_fmt_from_name(optarg)) < 0)
                return cli_usage_error("dataset", "--format must be yolo, coco, voc, gt-manifest or gt-csv, got '%s'", optarg);
        } else if (c == 'o') {
            out = optarg;
        } else {
            return cli_usage_error("dataset", "bad option");
        }
    }
    if (optind != argc - 1 || fmt < 0 || !out)
        return cli_usage_error("dataset", "usage: lupe dataset export NAME[@N] --format F --out DIR");
    if (lupe_dataset_export(ws, argv[optind], (lupe_fmt_kind)fmt, out)) return cli_fail("dataset");
    if (!ctx->quiet) printf("exported %s as %s to %s\n", argv[optind], lupe_fmt_name((lupe_fmt_kind)fmt), out);
    return EXIT_OK;
}

static int ds_show(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    return ds_show_or_stats(ws, argc, argv, 0);
}

static int ds_stats(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx;
    return ds_show_or_stats(ws, argc, argv, 1);
}

static int ds_list(cli_ctx *ctx, lupe_ws *ws, int argc, char **argv)
{
    (void)ctx, (void)argv;
    if (argc != 1) return cli_usage_error("dataset", "usage: lupe dataset list");
    return lupe_dataset_each(ws, print_info, NULL) ? cli_fail("dataset") : EXIT_OK;
}

int cmd_dataset(cli_ctx *ctx, int argc, char **argv)
{
    static const cli_verb verbs[] = {{"create", ds_create}, {"list", ds_list},  {"show", ds_show},
                                     {"stats", ds_stats},   {"diff", ds_diff},  {"export", ds_export},
                                     {0}};
    return cli_dispatch(ctx, "dataset", verbs, argc, argv);
}

/* ---- lupe import ---------------------------------------------------------- */
typedef struct import_ui {
    cli_progress bar;
    size_t done;
} import_ui;

static void on_skip(void *ud, const char *msg)
{
    import_ui *ui = ud;
    cli_progress_end(&ui->bar);
    fprintf(stderr, "skipped: %s\n", msg);
}

static void on_image(void *ud, const lupe_ingest_event *ev)
{
    import_ui *ui = ud;
    if (!ui->bar.total) cli_progress_start(&ui->bar, ev->total);
    if (ev->outcome == LUPE_INGEST_REJECTED) {
        cli_progress_end(&ui->bar);
        fprintf(stderr, "rejected: %s: %s\n", ev->path, ev->reason);
    }
    cli_progress_update(&ui->bar, ev->index, "images");
}

#define MAX_CLASSES 1000

int cmd_import(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},   {"images", required_argument, NULL, 'i'},
        {"labelset", required_argument, NULL, 'L'}, {"classes", required_argument, NULL, 'c'},
        {"add-classes", no_argument, NULL, 'A'},    {"author", required_argument, NULL, 'a'},
        {"status", required_argument, NULL, 's'},   {"strict", no_argument, NULL, 'S'},
        {"source", required_argument, NULL, 'r'},   {0},
    };
    /* `lupe import onnx FILE` brings a model, not labels (cmd_import.c). */
    if (argc > 1 && !strcmp(argv[1], "onnx")) return cmd_import_onnx(ctx, argc - 1, argv + 1);
    int rc = cli_getopt_help("import", argc, argv);
    if (rc >= 0) return rc;
    lupe_import_opts o = lupe_import_default_opts();
    o.format = -1;
    char *classes_copy = NULL;
    const char *names[MAX_CLASSES];
    int c;
    while ((c = getopt_long(argc, argv, "f:i:L:c:a:s:r:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if ((o.format = lupe_fmt_from_name(optarg)) < 0)
                return cli_usage_error("import", "--format must be gt-csv, gt-manifest, yolo, coco or voc, got '%s'", optarg);
            break;
        case 'i': o.images_dir = optarg; break;
        case 'L': o.labelset = optarg; break;
        case 'c':
            lupe_free(classes_copy);
            classes_copy = lupe_strdup(optarg);
            o.nclasses = 0;
            for (char *save = NULL, *t = strtok_r(classes_copy, ",", &save); t && o.nclasses < MAX_CLASSES;
                 t = strtok_r(NULL, ",", &save))
                names[o.nclasses++] = t;
            o.classes = names;
            break;
        case 'A': o.add_classes = 1; break;
        case 'a': o.author = optarg; break;
        case 's': {
            int s = lupe_label_status_parse(optarg);
            if (s < 0) return cli_usage_error("import", "--status must be draft, submitted or approved, got '%s'", optarg);
            o.status = (lupe_label_status)s;
            break;
        }
        case 'S': o.strict = 1; break;
        case 'r': o.source = optarg; break;
        default: lupe_free(classes_copy); return cli_usage_error("import", "bad option");
        }
    }
    if (optind != argc - 1 || o.format < 0) {
        lupe_free(classes_copy);
        return cli_usage_error("import", "usage: lupe import --format F PATH");
    }
    o.path = argv[optind];
    import_ui ui = {0};
    o.on_skip = on_skip;
    o.on_image = on_image;
    o.ud = &ui;
    lupe_ws *ws = NULL;
    if (cli_open_ws(ctx, &ws)) {
        lupe_free(classes_copy);
        return cli_fail("import");
    }
    lupe_import_summary s;
    lupe_status st = lupe_label_import(ws, &o, &s);
    cli_progress_end(&ui.bar);
    lupe_ws_close(ws);
    lupe_free(classes_copy);
    if (st) return cli_fail("import");
    printf("import: %zu items: %zu labeled (%zu boxes), %zu unchanged, %zu skipped; images: %zu stored, %zu duplicate, "
           "%zu rejected\n",
           s.items, s.labeled, s.boxes, s.unchanged, s.skipped, s.ingest.stored, s.ingest.duplicate, s.ingest.rejected);
    if (s.clipped) printf("import: %zu boxes were clipped to their image\n", s.clipped);
    return s.skipped || s.ingest.rejected ? EXIT_PARTIAL : EXIT_OK;
}
